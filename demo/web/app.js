// The live view's workload and drawing. The page and two module workers share one MMSA; every
// cycle is a burst (buffers of several classes held and churned, SGLs collected from a generated
// stream, buffers crossing realms) and then a quiet spell in which nothing is held, so that
// housekeeping and the budget controller give the pool back. Charts: memsys's own SVG renderers.
import { MMSA, browserMemStats, formatBytes, loadCore, pressureName, renderChart, renderClasses, sample } from '/build/browser.js';

const MiB = 1 << 20;
const params = new URLSearchParams(location.search);
const speed = Math.max(1, Number(params.get('speed')) || 1); // the test runs the cycle faster
const BURST_MS = 8000 / speed;
const QUIET_MS = 12000 / speed;
const BUDGET = 256 * MiB;
const WINDOW_MS = 90_000; // the timeline shows the last 90 s

await loadCore();
const mm = new MMSA({
  name: 'live', arenaSize: 8 * MiB, minFree: 64 * MiB, timeIval: 1000 / speed,
  memStats: browserMemStats({ budget: BUDGET }),
  budget: { ceiling: 224 * MiB, reserve: 8 * MiB, shrink: 0.5, hold: 1 },
});
mm.init();
const mode = mm.stats().mode;
const shared = mode === 'shared';
document.getElementById('budget').textContent = formatBytes(BUDGET);

// What the page shows, and what the test reads: `log` has the pool's peak in each burst and its
// size at the end of the quiet spell after it.
const state = { mode, phase: 'start', cycles: 0, refused: 0, errors: [], samples: [], peak: 0, log: [], workers: 0, fromWorkers: 0 };
globalThis.demo = state;
addEventListener('error', (e) => state.errors.push(String(e.message)));
addEventListener('unhandledrejection', (e) => state.errors.push(String(e.reason)));

// ---- workers (isolated pages only: shared memories need cross-origin isolation) ----
const workers = [];
if (shared) {
  for (let i = 0; i < 2; i++) {
    const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    w.onmessage = (e) => {
      const d = e.data;
      if (d.memsys) return; // memsys's own announcements on this port
      if (d.ready) state.workers++;
      if (d.error) state.errors.push(`worker: ${d.error}`);
      if (d.bufs) for (const b of d.bufs) { mm.free(b); state.fromWorkers++; } // buffers another realm made
      if (d.refused) state.refused += d.refused;
    };
    w.postMessage({ desc: mm.share(w), speed });
    workers.push(w);
  }
}

// ---- the page's own share of the burst ----
const SIZES = [1024, 4096, 16384, 65536, 131072];
let held = [];
let heldBytes = 0;
let sgls = [];
// A new arena refused (the budget's ceiling, or the browser's memory): counted, and the burst goes on.
const refusal = (e) => {
  if (e.code !== 'ERR_MEMSYS_BUDGET' && e.code !== 'ERR_MEMSYS_OUT_OF_MEMORY') throw e;
  state.refused++;
};
const chunk = new Uint8Array(256 * 1024).map((_, i) => i & 255);
const stream = (bytes) => new ReadableStream({
  pull(c) { if (bytes <= 0) return c.close(); c.enqueue(chunk.subarray(0, Math.min(chunk.length, bytes))); bytes -= chunk.length; },
});

function churn() {
  try {
    for (let i = 0; i < 40; i++) {
      const b = mm.allocSize(SIZES[(Math.random() * SIZES.length) | 0]);
      b[0] = 1;
      held.push(b);
      heldBytes += b.length;
    }
    // Keep a working set of ~60 MiB: the oldest go back as new ones come.
    while (heldBytes > 60 * MiB) { const b = held.shift(); heldBytes -= b.length; mm.free(b); }
  } catch (e) {
    refusal(e);
  }
}

async function collect() {
  const sgl = mm.newSGL();
  try {
    await sgl.readFrom(stream(16 * MiB));
    sgls.push(sgl);
    if (sgls.length > 3) sgls.shift().free();
  } catch (e) {
    sgl.free();
    refusal(e);
  }
}

function quiet() {
  for (const b of held) mm.free(b);
  for (const s of sgls) s.free();
  held = [];
  heldBytes = 0;
  sgls = [];
}

async function cycle() {
  for (;;) {
    state.phase = 'burst';
    state.peak = 0;
    for (const w of workers) w.postMessage({ phase: 'burst' });
    const end = performance.now() + BURST_MS;
    let n = 0;
    while (performance.now() < end) {
      churn();
      if (n++ % 5 === 0) await collect();
      await new Promise((r) => setTimeout(r, 50));
    }
    state.phase = 'quiet';
    for (const w of workers) w.postMessage({ phase: 'quiet' });
    quiet();
    await new Promise((r) => setTimeout(r, QUIET_MS));
    state.log.push({ peak: state.peak, after: mm.stats().bytes });
    state.cycles++;
  }
}

// ---- drawing ----
const t0 = performance.now();
const status = document.getElementById('status');
const timeline = document.getElementById('timeline');
const classes = document.getElementById('classes');

function draw() {
  const s = sample(mm, performance.now() - t0);
  state.samples.push(s);
  state.peak = Math.max(state.peak, s.pool);
  while (state.samples.length && state.samples[0].t < s.t - WINDOW_MS) state.samples.shift();
  const st = mm.stats();
  const b = mm.budget;
  const cell = (k, v, cls = '') => `<span>${k}</span><b class="${cls}">${v}</b>`;
  status.innerHTML = [
    cell('mode', `${st.mode}${shared ? `, ${state.workers} workers` : ''}`),
    cell('phase', `${state.phase} (cycle ${state.cycles + 1})`),
    cell('pool', `${formatBytes(s.pool)} in ${st.arenas} arenas`),
    cell('in use', formatBytes(s.inUse)),
    cell('pressure', pressureName(s.pressure), `pressure-${s.pressure}`),
    cell('budget target', b ? `${formatBytes(b.target)} (ceiling ${formatBytes(b.effectiveCeiling)})` : '-'),
    cell('refused (budget)', String(state.refused)),
    cell('from workers', `${state.fromWorkers} buffers freed here`),
  ].join('');
  // Times relative to the window's start, so the chart scrolls.
  const first = state.samples[0].t;
  timeline.innerHTML = renderChart(state.samples.map((x) => ({ ...x, t: x.t - first })), 'the pool over the last 90 s', 'budget left');
  classes.innerHTML = renderClasses(st, 'bytes per size class: in use and free');
}

setInterval(draw, 250);
draw();
cycle().catch((e) => state.errors.push(String(e)));
