// Watching a pool: samples of its size, bytes in use, host memory and pressure over time, a live
// status line in the terminal, and a chart of a run (SVG), like the memory-on-demand article's
// graphs: allocated memory, occupied memory, free memory.

import { type MMSA, MemsysTypeError, formatBytes, pressureName } from '../index.js';

export interface Sample {
  t: number;          // ms since the watch started
  pool: number;       // bytes the pool's arenas hold (this realm's view)
  inUse: number;      // bytes of buffers in use, all realms
  available?: number; // host memory available, bytes
  pressure: number;   // 0 low … 4 OOM
}

export function sample(mm: MMSA, t: number): Sample {
  const st = mm.stats();
  let inUse = 0;
  for (const c of st.classes) inUse += Math.max(0, c.inUse) * c.size;
  const host = mm.hostStats();
  return { t, pool: st.bytes, inUse, available: host?.available, pressure: mm.pressureOf(host) };
}

export function statusLine(s: Sample): string {
  return `${(s.t / 1000).toFixed(1).padStart(6)} s  pool ${formatBytes(s.pool).padStart(10)}  in use ${formatBytes(s.inUse).padStart(10)}` +
    `  host available ${s.available === undefined ? '?' : formatBytes(s.available).padStart(10)}  pressure ${pressureName(s.pressure as 0)}`;
}

export interface WatchOptions {
  /** Sampling interval, ms. Default 250. */
  intervalMs?: number;
  /** Samples kept (the oldest go). Default 100 000. */
  maxSamples?: number;
  /** Where the live line goes. Default process.stdout; on a terminal it is redrawn in place. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

// Samples `mm` every interval and shows the latest; stop() ends it and returns the samples.
export function watch(mm: MMSA, o: WatchOptions = {}): { samples: Sample[]; stop(): Sample[] } {
  const every = o.intervalMs ?? 250;
  const keep = o.maxSamples ?? 100_000;
  const bad = (what: string, v: unknown, rule: string) => new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `option ${what} ${String(v)} ${rule}`);
  if (!(every >= 1 && every < 2 ** 31)) throw bad('intervalMs', every, 'must be 1 … 2^31 − 1 milliseconds');
  if (!(Number.isSafeInteger(keep) && keep > 0)) throw bad('maxSamples', keep, 'must be a positive integer');
  const out = o.out ?? process.stdout;
  const t0 = performance.now();
  const samples: Sample[] = [];
  const tick = () => {
    if (!mm.live) return clearInterval(timer); // terminated: nothing more to watch
    const s = sample(mm, performance.now() - t0);
    samples.push(s);
    if (samples.length > keep) samples.splice(0, samples.length - keep);
    out.write(out.isTTY ? `\r${statusLine(s)}\x1b[K` : `${statusLine(s)}\n`);
  };
  const timer = setInterval(tick, every);
  tick();
  timer.unref();
  out.once?.('error', () => clearInterval(timer)); // a closed pipe (watch | head) ends it quietly
  return {
    samples,
    stop() {
      clearInterval(timer);
      if (out.isTTY) out.write('\n');
      return samples;
    },
  };
}

// An SVG chart of samples: pool size and bytes in use as lines over time (left axis), host
// available memory on its own scale (right axis: it is usually far larger), pressure as a shaded
// band along the bottom.
export function renderChart(samples: Sample[], title: string): string {
  const W = 900, H = 420, L = 80, R = 80, T = 40, B = 70;
  // Loops, not Math.max(...spread): a long watch has more samples than a call takes arguments.
  let tMax = 1, yMax = 1, aMax = 1, showAvail = false;
  for (const s of samples) {
    tMax = Math.max(tMax, s.t);
    yMax = Math.max(yMax, s.pool, s.inUse);
    if (s.available !== undefined) { aMax = Math.max(aMax, s.available); showAvail = true; }
  }
  yMax *= 1.1;
  aMax *= 1.1;
  const x = (t: number) => (L + (t / tMax) * (W - L - R)).toFixed(1);
  const yAt = (v: number, max: number) => (T + (1 - v / max) * (H - T - B)).toFixed(1);
  const y = (v: number) => yAt(v, yMax);
  const line = (get: (s: Sample) => number | undefined, color: string, max = yMax) => {
    const pts = samples.filter((s) => get(s) !== undefined).map((s) => `${x(s.t)},${yAt(get(s)!, max)}`).join(' ');
    return pts ? `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>` : '';
  };
  const shades = ['#e8f5e9', '#fff8e1', '#ffe0b2', '#ffcdd2', '#ef9a9a'];
  const band = samples.map((s, i) => {
    const next = samples[i + 1]?.t ?? s.t;
    return `<rect x="${x(s.t)}" y="${H - B + 8}" width="${Math.max(0.5, Number(x(next)) - Number(x(s.t))).toFixed(1)}" height="14" fill="${shades[s.pressure]}"><title>${pressureName(s.pressure as 0)}</title></rect>`;
  }).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = yMax * f;
    const right = showAvail ? `<text x="${W - R + 6}" y="${y(v)}" dominant-baseline="middle" font-size="11" fill="#b28704">${formatBytes(aMax * f)}</text>` : '';
    return `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${L - 6}" y="${y(v)}" text-anchor="end" dominant-baseline="middle" font-size="11">${formatBytes(v)}</text>${right}`;
  }).join('');
  const legend = [['#1565c0', 'pool (allocated)'], ['#c62828', 'in use (occupied)'], ...(showAvail ? [['#f9a825', 'host available (right axis)']] : [])]
    .map(([c, n], i) => `<rect x="${L + i * 170}" y="${H - 30}" width="12" height="12" fill="${c}"/><text x="${L + i * 170 + 18}" y="${H - 20}" font-size="12">${n}</text>`).join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="24" font-size="15">${escapeXml(title)}</text>`,
    ticks,
    `<text x="${W - R}" y="${H - B + 36}" text-anchor="end" font-size="11">${(tMax / 1000).toFixed(1)} s</text>`,
    `<text x="${L}" y="${H - B + 36}" font-size="11">pressure: green low, amber moderate, orange high, red extreme</text>`,
    line((s) => s.pool, '#1565c0'),
    line((s) => s.inUse, '#c62828'),
    showAvail ? line((s) => s.available, '#f9a825', aMax) : '',
    band,
    legend,
    '</svg>',
  ].join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
