// Charts of a pool, as SVG text: its size, bytes in use, host memory and pressure over time, like
// the memory-on-demand article's graphs (allocated, occupied, free memory), and the bytes of each
// size class. Plain strings, no DOM and no charting library: the same code draws `memsys watch
// --chart` in Node and the live view in a browser (demo/web).

import { invalidArg } from '../errors.js';
import { pressureName } from '../policy/pressure.js';
import type { MemStats } from '../platform/host.js';
import type { PressureLevel } from '../policy/pressure.js';
import { formatBytes } from '../sizes.js';
import type { ClassStats, MMSAStats } from './stats.js';

/** What sample() reads: an MMSA. */
export interface Sampled {
  stats(): MMSAStats;
  hostStats(): MemStats | undefined;
  pressureOf(s: MemStats | undefined): PressureLevel;
}

/** A pool's figures at one moment, as sample() takes them and renderChart() draws them. */
export interface Sample {
  /** Milliseconds since the watch started. */
  t: number;
  /** Bytes the pool's arenas hold (this realm's view). */
  pool: number;
  /** Bytes of buffers in use, all realms. */
  inUse: number;
  /** Host memory available, bytes (undefined without host figures). */
  available?: number;
  /** The pressure level, 0 (low) … 4 (OOM). */
  pressure: number;
}

/** The figures of `mm` now, stamped `t` (ms): reads its stats and its provider once. Throws
 * ERR_MEMSYS_INVALID_ARG unless `mm` is an MMSA and `t` a finite number, and ERR_MEMSYS_STATE
 * for an MMSA that is not initialised or was terminated. */
export function sample(mm: Sampled, t: number): Sample {
  if (typeof (mm as { stats?: unknown } | null)?.stats !== 'function') throw invalidArg('mm', mm, 'must be an MMSA');
  if (!Number.isFinite(t)) throw invalidArg('t', t, 'must be a finite number of milliseconds');
  const st = mm.stats();
  let inUse = 0;
  for (const c of st.classes) inUse += Math.max(0, c.inUse) * c.size;
  const host = mm.hostStats();
  return { t, pool: st.bytes, inUse, available: host?.available, pressure: mm.pressureOf(host) };
}

/** An SVG chart (a string) of `samples`: pool size and bytes in use as lines over time (left
 * axis), available memory on its own scale (right axis: it is usually far larger), pressure as a
 * shaded band along the bottom. `available` names the right axis's figure (a browser's is what
 * is left of its budget). Throws ERR_MEMSYS_INVALID_ARG for a sample that is not one, or a title
 * that is not a string; text is escaped for XML. */
export function renderChart(samples: Sample[], title: string, available = 'host available'): string {
  if (!Array.isArray(samples)) throw invalidArg('samples', samples, 'must be an array of samples');
  samples.forEach((s, i) => {
    const ok = typeof s === 'object' && s !== null && Number.isFinite(s.t) && Number.isFinite(s.pool) && Number.isFinite(s.inUse) &&
      Number.isInteger(s.pressure) && s.pressure >= 0 && s.pressure <= 4 && (s.available === undefined || Number.isFinite(s.available));
    if (!ok) throw invalidArg(`samples[${i}]`, s, 'must be a sample: finite t, pool, inUse (and available), pressure 0 … 4');
  });
  texts({ title, available });
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
  const legend = [['#1565c0', 'pool (allocated)'], ['#c62828', 'in use (occupied)'], ...(showAvail ? [['#f9a825', `${available} (right axis)`]] : [])]
    .map(([c, n], i) => swatch(L + i * 170, H - 30, c, n)).join('');
  return [
    svgHead(W, H, L, title),
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

/** An SVG chart (a string) of the bytes of each size class that holds any, from `mm.stats()`: in
 * use (all realms) and free (in its runs and this realm's magazine), as horizontal bars on one
 * scale. Throws ERR_MEMSYS_INVALID_ARG when `st` is not what mm.stats() returns or `title` is not
 * a string. */
export function renderClasses(st: MMSAStats, title: string): string {
  if (!Array.isArray((st as { classes?: unknown } | null)?.classes)) throw invalidArg('stats', st, 'must be what mm.stats() returns');
  texts({ title });
  const rows = st.classes.filter((c) => c.inUse > 0 || c.runs > 0);
  const free = (c: ClassStats) => (c.free + c.cached) * c.size;
  const W = 900, L = 80, R = 150, T = 40, row = 20;
  const H = T + Math.max(1, rows.length) * row + 40;
  let max = 1;
  for (const c of rows) max = Math.max(max, Math.max(0, c.inUse) * c.size + free(c));
  const w = (bytes: number) => ((bytes / max) * (W - L - R)).toFixed(1);
  const bars = rows.map((c, i) => {
    const y = T + i * row;
    const used = Math.max(0, c.inUse) * c.size;
    return `<text x="${L - 6}" y="${y + 12}" text-anchor="end" font-size="11">${formatBytes(c.size)}</text>` +
      `<rect x="${L}" y="${y + 2}" width="${w(used)}" height="${row - 6}" fill="#c62828"/>` +
      `<rect x="${(L + Number(w(used))).toFixed(1)}" y="${y + 2}" width="${w(free(c))}" height="${row - 6}" fill="#90caf9"/>` +
      `<text x="${W - R + 6}" y="${y + 12}" font-size="11">${formatBytes(used)} / ${formatBytes(used + free(c))}</text>`;
  }).join('');
  return [
    svgHead(W, H, L, title),
    rows.length ? bars : `<text x="${L}" y="${T + 12}" font-size="12">no class holds buffers</text>`,
    swatch(L, H - 26, '#c62828', 'in use'),
    swatch(L + 120, H - 26, '#90caf9', 'free'),
    '</svg>',
  ].join('\n');
}

// The opening of a chart: the canvas, a white ground and the title at the left margin `L`.
function svgHead(W: number, H: number, L: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n` +
    `<rect width="${W}" height="${H}" fill="white"/>\n` +
    `<text x="${L}" y="24" font-size="15">${escapeXml(title)}</text>`;
}

// A legend entry: a colour square at (x, y) and its label beside it.
function swatch(x: number, y: number, color: string, label: string): string {
  return `<rect x="${x}" y="${y}" width="12" height="12" fill="${color}"/><text x="${x + 18}" y="${y + 10}" font-size="12">${escapeXml(label)}</text>`;
}

function texts(t: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(t)) if (typeof v !== 'string') throw invalidArg(k, v, 'must be a string');
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
