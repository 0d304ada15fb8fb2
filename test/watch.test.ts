// watch(): samples and a live line; renderChart(): an SVG of pool, in use, host available and
// pressure over time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { MMSA, type Sample, renderChart, renderClasses, sample, watch } from '../src/node/index.js';
import { throwsCode } from './helpers.js';

const MiB = 1024 * 1024;

test('sample and watch: the pool as it grows, one line per sample on a non-terminal', async () => {
  const mm = new MMSA({ name: 'w', arenaSize: 4 * MiB, housekeeping: false, memStats: () => ({ total: 8 * 2 ** 30, free: 6 * 2 ** 30, available: 6 * 2 ** 30 }), env: {} });
  mm.init();
  const lines: string[] = [];
  const out = new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } });
  const w = watch(mm, { intervalMs: 20, out });
  const held = Array.from({ length: 40 }, () => mm.allocSize(65536));
  await new Promise((r) => setTimeout(r, 100));
  const samples = w.stop();
  assert.ok(samples.length >= 3);
  assert.is(samples[0].pool, 0);
  assert.is(samples.at(-1)!.pool, 4 * MiB);
  assert.is(samples.at(-1)!.inUse, 40 * 65536);
  assert.is(samples.at(-1)!.available, 6 * 2 ** 30);
  assert.is(lines.length, samples.length);
  assert.match(lines.at(-1)!, /pool +4.00 MiB +in use +2.50 MiB +host available +6.00 GiB +pressure low\n$/);
  assert.equal(sample(mm, 5).t, 5);
  held.forEach((b) => mm.free(b));
  mm.terminate();
});

test('renderChart: an SVG with a line each for pool, in use and host available, and a pressure band', () => {
  const samples: Sample[] = Array.from({ length: 20 }, (_, i) => ({
    t: i * 250, pool: (i < 10 ? i : 20 - i) * 16 * MiB, inUse: (i < 8 ? i : 0) * 12 * MiB, available: 8 * 2 ** 30 - i * MiB, pressure: i < 15 ? 0 : 2,
  }));
  const svg = renderChart(samples, 'a <burst> & quiet');
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.endsWith('</svg>'));
  const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) => m[1].split(' ').length);
  assert.equal(lines, [20, 20, 20], 'three lines of 20 points');
  assert.is([...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="14" fill="#ffe0b2">/g)].length, 5, 'five samples at High');
  assert.ok(svg.includes('a &lt;burst&gt; &amp; quiet'), 'the title is escaped');
  for (const tag of ['svg', 'text', 'rect', 'title']) {
    const open = (svg.match(new RegExp(`<${tag}[ >]`, 'g')) ?? []).length;
    const closed = (svg.match(new RegExp(`</${tag}>|<${tag}[^>]*/>`, 'g')) ?? []).length;
    assert.is(open, closed, `<${tag}> balanced`);
  }
});

test('watch stops by itself after terminate; a chart of 200 000 samples; bad options; maxSamples caps the samples kept', async () => {
  const mm = new MMSA({ name: 'gone', housekeeping: false, env: {} });
  mm.init();
  const out = new Writable({ write(_c, _e, cb) { cb(); } });
  const w = watch(mm, { intervalMs: 10, out });
  mm.terminate();
  await new Promise((r) => setTimeout(r, 60)); // a sample after terminate would throw from the timer
  assert.is(w.samples.length, 1);
  const many: Sample[] = Array.from({ length: 200_000 }, (_, i) => ({ t: i, pool: i, inUse: i / 2, pressure: 0 }));
  assert.match(renderChart(many, 'long'), /<polyline/);
  const live = new MMSA({ name: 'opts', housekeeping: false, env: {} });
  live.init();
  for (const [o, why] of [[{ intervalMs: 0 }, 'intervalMs 0'], [{ intervalMs: 2 ** 31 }, 'intervalMs 2147483648'], [{ maxSamples: 0 }, 'maxSamples 0']] as const) {
    let msg = '';
    try { watch(live, { ...o, out }); } catch (e) { msg = (e as Error).message; }
    assert.ok(msg.includes(why), msg);
  }
  const capped = watch(live, { intervalMs: 5, maxSamples: 3, out });
  await new Promise((r) => setTimeout(r, 60));
  assert.is(capped.stop().length, 3, 'the oldest samples go');
  live.terminate();
});

test('renderClasses: a bar per class holding buffers, in use then free, on one scale', () => {
  const mm = new MMSA({ name: 'c', arenaSize: 4 * MiB, housekeeping: false, memStats: () => undefined, env: {} });
  mm.init();
  assert.match(renderClasses(mm.stats(), 'empty'), /no class holds buffers/);
  const big = Array.from({ length: 10 }, () => mm.allocSize(65536));
  const small = Array.from({ length: 3 }, () => mm.allocSize(4096));
  mm.free(big.pop()!);
  const svg = renderClasses(mm.stats(), 'classes');
  assert.match(svg, /^<svg [^>]*>[\s\S]*<\/svg>$/);
  const labels = [...svg.matchAll(/text-anchor="end" font-size="11">([^<]+)</g)].map((m) => m[1]);
  assert.equal(labels, ['4.00 KiB', '64.0 KiB'], 'only the two classes in use, smallest first');
  const used = [...svg.matchAll(/fill="#c62828"\/>/g)].length;
  assert.is(used, 3, 'two bars of bytes in use, and the legend');
  assert.match(svg, />576.0 KiB \/ [\d.]+ (KiB|MiB)</, '9 × 64 KiB in use');
  for (const b of [...big, ...small]) mm.free(b);
  mm.terminate();
});

test('sample, renderChart and renderClasses refuse what is not theirs, naming it', () => {
  const mm = new MMSA({ name: 'bad', arenaSize: 4 * MiB, housekeeping: false, memStats: () => undefined, env: {} });
  mm.init();
  const good: Sample = { t: 0, pool: 0, inUse: 0, pressure: 0 };
  throwsCode(() => sample({} as MMSA, 0), 'ERR_MEMSYS_INVALID_ARG', 'mm Object', 'must be an MMSA');
  throwsCode(() => sample(mm, NaN), 'ERR_MEMSYS_INVALID_ARG', 't NaN', 'finite');
  throwsCode(() => renderChart(undefined as never, 't'), 'ERR_MEMSYS_INVALID_ARG', 'samples undefined', 'array of samples');
  throwsCode(() => renderChart([good, { ...good, pool: -Infinity }], 't'), 'ERR_MEMSYS_INVALID_ARG', 'samples[1]', 'finite t, pool');
  throwsCode(() => renderChart([{ ...good, pressure: 5 }], 't'), 'ERR_MEMSYS_INVALID_ARG', 'samples[0]', 'pressure 0 … 4');
  throwsCode(() => renderChart([null as never], 't'), 'ERR_MEMSYS_INVALID_ARG', 'samples[0] null');
  throwsCode(() => renderChart([good], 7 as never), 'ERR_MEMSYS_INVALID_ARG', 'title 7', 'must be a string');
  throwsCode(() => renderChart([good], 't', 42 as never), 'ERR_MEMSYS_INVALID_ARG', 'available 42', 'must be a string');
  throwsCode(() => renderClasses(undefined as never, 't'), 'ERR_MEMSYS_INVALID_ARG', 'stats undefined', 'mm.stats()');
  throwsCode(() => renderClasses(mm.stats(), null as never), 'ERR_MEMSYS_INVALID_ARG', 'title null');
  assert.match(renderChart([{ ...good, available: MiB }], 't', 'budget left'), /budget left \(right axis\)/);
  mm.terminate();
});

test.run();
