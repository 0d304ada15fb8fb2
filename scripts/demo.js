// `npm start`: a short tour of what memsys does, printed as it happens.
import { Worker } from 'node:worker_threads';
import { MMSA, formatBytes } from '../build/node.js';

const line = (s = '') => console.log(s);
const mm = new MMSA({ name: 'demo', arenaSize: 16 << 20 });
const err = mm.init();
line(`MMSA "demo": ${err ? `init warning: ${err.message}` : 'initialised'}; min free ${formatBytes(mm.stats().minFree)}`);

// Slabs: exact sizes, and the smallest class that fits.
const slab = mm.getSlab(32768);
const held = [];
for (let i = 0; i < 200; i++) held.push(slab.alloc());
for (const n of [100, 3000, 5000, 70000]) held.push(mm.allocSize(n));
line(`allocated ${held.length} buffers: 200 × 32 KiB from getSlab(32768), and allocSize(100/3000/5000/70000) → ${held.slice(-4).map((b) => b.length).join('/')} B`);

// Reuse without garbage: a million alloc+free pairs, against a plain JS array pool doing the same
// in this run. Each loop is its own function, warmed before it is timed; the two alternate, and the
// ratio is the median of their ratios in each round (this process has used other classes already,
// as a server's has).
{
  const PAIRS = 1e6;
  const slabPairs = (s, n) => { for (let i = 0; i < n; i++) s.free(s.alloc()); };
  const items = Array.from({ length: 16 }, () => new Uint8Array(32768));
  const pool = { alloc: () => items.pop() ?? new Uint8Array(32768), free: (b) => { items.push(b); } };
  const poolPairs = (p, n) => { for (let i = 0; i < n; i++) p.free(p.alloc()); };
  const time = (f, on) => { const t0 = process.hrtime.bigint(); f(on, PAIRS); return Number(process.hrtime.bigint() - t0) / PAIRS; };
  for (let r = 0; r < 3; r++) { time(slabPairs, slab); time(poolPairs, pool); }
  const ns = [];
  const ratios = [];
  for (let r = 0; r < 7; r++) {
    let x, b;
    if (r & 1) { b = time(poolPairs, pool); x = time(slabPairs, slab); } else { x = time(slabPairs, slab); b = time(poolPairs, pool); }
    ns.push(x);
    ratios.push(x / b);
  }
  const median = (xs) => xs.sort((p, q) => p - q)[xs.length >> 1];
  line(`1,000,000 alloc+free pairs of 32 KiB: ${median(ns).toFixed(1)} ns per pair, ${median(ratios).toFixed(2)}x a plain JS array pool, no new ArrayBuffer`);
}

// Misuse is a typed error, and changes nothing.
const b = held.pop();
mm.free(b);
for (const [what, fn] of [['double free', () => mm.free(b)], ['subarray', () => mm.free(held[0].subarray(8))], ['foreign array', () => mm.free(new Uint8Array(64))]]) {
  try { fn(); } catch (e) { line(`${what.padEnd(13)} → ${e.code}: ${e.message}`); }
}

// Workers: two threads attach the same pool and free each other's buffers.
const desc = mm.share();
const src = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.url).then(({ MMSA }) => {
    const mm = MMSA.attach(workerData.desc);
    parentPort.on('message', (m) => {
      if (m === 'alloc') { const bufs = []; for (let i = 0; i < 50; i++) { const x = mm.allocSize(8192); x[0] = 42; bufs.push(x); } parentPort.postMessage(bufs); }
      else if (m === 'bye') { mm.terminate(); parentPort.postMessage('done'); }
      else { let ok = 0; for (const x of m) { if (x[0] === 42) ok++; mm.free(x); } parentPort.postMessage(ok); }
    });
  });`;
const url = new URL('../build/node.js', import.meta.url).href;
const [w1, w2] = [0, 1].map(() => new Worker(src, { eval: true, workerData: { desc, url } }));
const ask = (w, m) => new Promise((r) => { w.once('message', r); w.postMessage(m); });
const bufs = await ask(w1, 'alloc');
const ok = await ask(w2, bufs);
line(`worker 1 allocated 50 × 8 KiB, worker 2 checked ${ok}/50 and freed them (zero copies: same shared memory)`);
await ask(w1, 'bye');
await ask(w2, 'bye');
await Promise.all([w1.terminate(), w2.terminate()]);

// SGLs: collect a stream of any length in slab buffers, read lines back, stream it out.
const { Readable, Writable } = await import('node:stream');
const { pipeline } = await import('node:stream/promises');
const sgl = mm.newSGL(0, 4096); // in TypeScript: `using sgl = …` frees it at the end of the scope
try {
  const parts = Array.from({ length: 300 }, (_, i) => `line ${i}: ${'x'.repeat(i % 40)}\n`);
  await pipeline(Readable.from(parts), sgl.toWritable());
  line(`SGL: collected ${formatBytes(sgl.size)} from a Readable in ${sgl.cap / 4096} buffers of 4 KiB; first line "${sgl.nextLine()}"`);
  let n = 0;
  sgl.rewind();
  await pipeline(sgl.toReadable(), new Writable({ write(c, _e, cb) { n += c.length; cb(); } }));
  line(`SGL: streamed ${formatBytes(n)} out as views of its buffers (no copy)`);
  // Zero-copy handoff: ownership moves, the bytes stay where they are.
  const other = mm.receive(sgl.handoff());
  try { sgl.readByte(); } catch (e) { line(`SGL: after handoff the sender gets ${e.code}; the receiver reads ${formatBytes(other.size)}`); }
  other.free();
} finally {
  sgl.free(); // a no-op after the handoff
}

// Host memory and pressure, as the pool sees them.
{
  const { pressureName } = await import('../build/node.js');
  const h = mm.hostStats();
  const cg = h?.cgroup ? `cgroup v${h.cgroup.version} ${h.cgroup.limit === undefined ? 'without a limit' : `limit ${formatBytes(h.cgroup.limit)}`}` : 'no memory cgroup';
  line(`host: ${formatBytes(h?.available ?? 0)} available of ${formatBytes(h?.total ?? 0)}, ${cg}, PSI some ${h?.psi?.some.avg10 ?? '?'}%; pressure ${pressureName(mm.pressure())} (min free ${formatBytes(mm.watermarks.minFree)}, low watermark ${formatBytes(mm.watermarks.lowWM)}); \`npx memsys doctor\` explains`);
}

// The per-class table.
for (const x of held) mm.free(x);
const s = mm.stats();
line();
line(`${s.mode} pool: ${s.arenas} arena(s) of ${formatBytes(s.arenaSize)}, ${formatBytes(s.freeBytes)} in no run`);
line('  size      hits   in use  cached    free  runs');
for (const c of s.classes.filter((c) => c.hits || c.runs)) {
  line(`  ${formatBytes(c.size).padEnd(9)} ${String(c.hits).padStart(7)} ${String(c.inUse).padStart(7)} ${String(c.cached).padStart(7)} ${String(c.free).padStart(7)} ${String(c.runs).padStart(5)}`);
}
mm.terminate();
line(`terminated: ${mm.stats().arenas} arenas left`);

// A burst and a quiet spell, watched: three workers stream data through SGLs for a while, then
// stop; the pool, with a budget, grows at once and gives memory back pass by pass afterwards.
{
  const { watch, renderChart } = await import('../build/node.js');
  const { writeFileSync } = await import('node:fs');
  const burstMs = 2500;
  const pool = new MMSA({ name: 'burst', arenaSize: 16 << 20, timeIval: 150, budget: { hold: 2, shrink: 1 / 4 } });
  pool.init();
  line();
  line(`burst: 3 workers stream through SGLs for ${burstMs / 1000} s, then stop; sampling every 250 ms`);
  const w = watch(pool, { intervalMs: 250 });
  const wsrc = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(async ({ MMSA }) => {
      const mm = MMSA.attach(workerData.desc);
      const chunk = new Uint8Array(1 << 20).fill(7);
      let bytes = 0;
      const end = Date.now() + workerData.ms;
      while (Date.now() < end) {
        const sgls = [];
        for (let i = 0; i < 4; i++) { const s = mm.newSGL(); for (let j = 0; j < 8; j++) s.write(chunk); sgls.push(s); }
        await new Promise((r) => setTimeout(r, 20));
        for (const s of sgls) { for (let c = s.open(), b = new Uint8Array(65536); c.read(b) > 0;) bytes += 0; bytes += s.size; s.free(); }
      }
      mm.terminate();
      parentPort.postMessage(bytes);
    });`;
  const workers = [0, 1, 2].map(() => new Worker(wsrc, { eval: true, workerData: { desc: pool.share(), url, ms: burstMs } }));
  const streamed = await Promise.all(workers.map((x) => new Promise((r) => x.once('message', r))));
  await Promise.all(workers.map((x) => x.terminate()));
  await new Promise((r) => setTimeout(r, 3500)); // quiet: housekeeping gives the memory back
  const samples = w.stop();
  const peak = Math.max(...samples.map((x) => x.pool));
  line(`burst: ${formatBytes(streamed.reduce((a, b) => a + b, 0))} streamed; pool peaked at ${formatBytes(peak)}, ${formatBytes(samples.at(-1).pool)} after the quiet spell (budget target ${formatBytes(pool.budget.target)})`);
  const st = pool.stats();
  line('  size      hits   in use  cached    free  runs');
  for (const c of st.classes.filter((c) => c.hits)) {
    line(`  ${formatBytes(c.size).padEnd(9)} ${String(c.hits).padStart(7)} ${String(c.inUse).padStart(7)} ${String(c.cached).padStart(7)} ${String(c.free).padStart(7)} ${String(c.runs).padStart(5)}`);
  }
  const chart = new URL('../build/demo-chart.svg', import.meta.url);
  writeFileSync(chart, renderChart(samples, 'memsys: a burst of SGL traffic from 3 workers, then quiet'));
  line(`chart: ${chart.pathname}`);
  pool.terminate();
}
