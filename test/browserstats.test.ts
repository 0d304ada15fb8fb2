// The browser provider, with the browser's globals stood in: budget, deviceMemory, the UA memory
// measurement, the pool's own size, and bad options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, Pressure, browserMemStats } from '../src/index.js';
import { throwsCode } from './helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('a budget: total is the budget, the pool\'s arenas count as used', () => {
  const p = browserMemStats({ budget: 64 * MiB, env: {} });
  assert.equal(p({ poolBytes: 16 * MiB }), { total: 64 * MiB, free: 48 * MiB, available: 48 * MiB, pool: 16 * MiB, sources: ['budget', 'pool'] });
  const mm = new MMSA({ name: 'b', arenaSize: 16 * MiB, memStats: p, minFree: 8 * MiB, env: {} });
  assert.is(mm.init(), null);
  assert.is(mm.pressure(), Pressure.Low);
  const held: Uint8Array[] = [];
  while (mm.stats().arenas < 3) held.push(mm.allocSize(131072)); // three 16 MiB arenas of a 64 MiB budget
  assert.is(mm.hostStats()!.free, 16 * MiB);
  assert.ok(mm.pressure() >= Pressure.Moderate, 'the pool itself raises the pressure');
  held.forEach((b) => mm.free(b));
  mm.terminate();
});

test('no budget: a quarter of navigator.deviceMemory; nothing known at all: no figures', () => {
  const p = browserMemStats({ env: { navigator: { deviceMemory: 8 } } });
  const s = p({ poolBytes: 0 })!;
  assert.is(s.total, 2 * GiB);
  assert.equal(s.sources, ['navigator.deviceMemory', 'pool']);
  assert.is(browserMemStats({ env: {} })(), undefined);
});

test('measureUserAgentSpecificMemory is sampled in the background (isolated pages only) and counted', async () => {
  let calls = 0;
  const performance = { measureUserAgentSpecificMemory: async () => { calls++; return { bytes: 40 * MiB }; } };
  const p = browserMemStats({ budget: 100 * MiB, env: { performance, crossOriginIsolated: true } });
  assert.is(p({ poolBytes: 10 * MiB })!.free, 90 * MiB, 'first reading: the measurement is still pending');
  await new Promise((r) => setTimeout(r, 0));
  const s = p({ poolBytes: 10 * MiB })!;
  assert.is(s.free, 60 * MiB);
  assert.ok(s.sources!.includes('performance.measureUserAgentSpecificMemory'));
  assert.is(calls, 1, 'at most one sample per minute');
  const notIsolated = browserMemStats({ budget: 100 * MiB, env: { performance, crossOriginIsolated: false } });
  notIsolated();
  assert.is(calls, 1, 'not called without cross-origin isolation');
});

test('bad options are typed errors', () => {
  for (const b of [0, -1, 1.5, '1GiB', NaN]) throwsCode(() => browserMemStats({ budget: b as number }), 'ERR_MEMSYS_INVALID_ARG', 'option budget');
  throwsCode(() => browserMemStats({ budget: MiB, sampleMs: -5 }), 'ERR_MEMSYS_INVALID_ARG', 'option sampleMs -5');
});

test.run();
