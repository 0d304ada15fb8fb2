// mm.metrics(): Prometheus text exposition that a scraper accepts, with the pool's own figures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA } from '../src/index.js';

const MiB = 1024 * 1024;

// The text format's grammar, strictly enough: comments, then samples name{labels} value.
function parse(text: string): Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }> {
  const out = new Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }>();
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (m) continue;
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$/.exec(line);
    if (m) { assert.ok(!out.has(m[1]), `one TYPE line for ${m[1]}`); out.set(m[1], { type: m[2], samples: [] }); continue; }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_]\w*="(?:[^"\\\n]|\\["\\n])*",?)*)\} (-?[\d.e+]+|NaN)$/.exec(line);
    assert.ok(m, `a valid sample line: ${JSON.stringify(line)}`);
    const fam = out.get(m![1]);
    assert.ok(fam, `${m![1]} follows its TYPE line`);
    const labels: Record<string, string> = {};
    for (const l of m![2].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    fam!.samples.push({ labels, value: Number(m![3]) });
  }
  return out;
}

test('metrics: valid exposition text with the pool\'s figures, per class, pressure and host', () => {
  const host = { total: 8 * 1024 * MiB, free: 6 * 1024 * MiB, available: 6 * 1024 * MiB, swap: { total: 0, free: 0, used: 0 },
    psi: { some: { avg10: 1.5, avg60: 0, avg300: 0, total: 9 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 0 } } };
  const mm = new MMSA({ name: 'web "front"\\1', arenaSize: 4 * MiB, memStats: () => host, minFree: 256 * MiB, env: {} });
  mm.init();
  const held = [mm.allocSize(32768), mm.allocSize(32768), mm.allocSize(100)];
  const m = parse(mm.metrics());
  const one = (name: string) => m.get(name)!.samples[0];
  assert.is(one('memsys_pool_bytes').value, 4 * MiB);
  assert.is(one('memsys_pool_bytes').labels.mmsa, 'web \\"front\\"\\\\1', 'quote and backslash escaped');
  assert.is(one('memsys_arenas').value, 1);
  assert.is(m.get('memsys_buffer_allocs_total')!.type, 'counter');
  const inUse = Object.fromEntries(m.get('memsys_buffers_in_use')!.samples.map((s) => [s.labels.size, s.value]));
  assert.equal(inUse, { 128: 1, 32768: 2 }, 'per buffer size');
  assert.is(one('memsys_pressure').value, 1, 'PSI some 1.5 %: moderate');
  assert.is(one('memsys_min_free_bytes').value, 256 * MiB);
  assert.is(one('memsys_host_available_bytes').value, 6 * 1024 * MiB);
  assert.equal(m.get('memsys_host_psi_memory_avg10')!.samples.map((s) => [s.labels.kind, s.value]), [['some', 1.5], ['full', 0]]);
  held.forEach((b) => mm.free(b));
  mm.terminate();
});

test('metrics without host figures leave the host families out', () => {
  const mm = new MMSA({ name: 'bare', memStats: () => undefined, env: {} });
  mm.init();
  const m = parse(mm.metrics());
  assert.ok(m.has('memsys_pool_bytes'));
  assert.ok(![...m.keys()].some((k) => k.startsWith('memsys_host_')));
  mm.terminate();
});

test.run();
