// Pressure levels: AIStore's thresholds driven through every transition by a fake provider, PSI as
// a further input, and OOM after an arena that could not be created (a child under `ulimit -v`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { MMSA, type MemStats, Pressure, lowWatermark, pressureName } from '../src/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('the low watermark is AIStore\'s: 7/16 of minFree + free at init, floored, and short memory', () => {
  assert.is(lowWatermark(2 * GiB, 64 * GiB), 28.875 * GiB);
  assert.is(lowWatermark(1 * GiB, 1 * GiB), 1 * GiB + 128 * MiB, 'free below 2 × minFree: minFree + 128 MiB');
  assert.is(lowWatermark(100 * MiB, 300 * MiB), 175 * MiB, '7/16 of 400 MiB; the floor\'s 128 MiB is capped at free / 8');
  assert.is(lowWatermark(8 * MiB, 12 * MiB), 9.5 * MiB, 'short (below 2 × minFree): minFree + free / 8');
});

test('a fake provider drives every level: Low, Moderate, High, Extreme, and back', () => {
  let now: MemStats = { total: 128 * GiB, free: 64 * GiB, available: 64 * GiB };
  const mm = new MMSA({ name: 'p', memStats: () => now, minFree: 2 * GiB, env: {} });
  assert.is(mm.init(), null);
  assert.equal(mm.watermarks, { minFree: 2 * GiB, lowWM: 28.875 * GiB, source: 'options' });
  const at = (free: number, available = free) => { now = { total: 128 * GiB, free, available }; return pressureName(mm.pressure()); };
  // Low above lowWM + lowWM/16 (30.68 GiB); Moderate down to x = 40 % of the way (12.75 GiB); High
  // below it and at minFree; Extreme when available is at or below minFree.
  assert.is(at(31 * GiB), 'low');
  assert.is(at(30 * GiB), 'moderate');
  assert.is(at(12.8 * GiB), 'moderate');
  assert.is(at(12.7 * GiB), 'high');
  assert.is(at(2 * GiB, 3 * GiB), 'high');
  assert.is(at(3 * GiB, 2 * GiB), 'extreme');
  assert.is(at(1 * GiB), 'extreme');
  assert.is(at(40 * GiB), 'low');
  // PSI raises the level, never lowers it.
  const psi = (some: number, full: number) => ({ some: { avg10: some, avg60: 0, avg300: 0, total: 0 }, full: { avg10: full, avg60: 0, avg300: 0, total: 0 } });
  const withPsi = (some: number, full: number, free = 40 * GiB) => { now = { total: 128 * GiB, free, available: free, psi: psi(some, full) }; return pressureName(mm.pressure()); };
  assert.is(withPsi(0.5, 0), 'low');
  assert.is(withPsi(2, 0), 'moderate');
  assert.is(withPsi(15, 0), 'high');
  assert.is(withPsi(2, 1.5), 'high');
  assert.is(withPsi(30, 12), 'extreme');
  assert.is(withPsi(0, 0, 1 * GiB), 'extreme', 'quiet PSI does not lower a low-memory level');
  assert.equal([0, 1, 2, 3, 4].map((p) => pressureName(p as 0)), ['low', 'moderate', 'high', 'extreme', 'OOM']);
  assert.is(Pressure.OOM, 4);
  mm.terminate();
  throwsState(() => mm.pressure());
});

test('without a provider (a browser with no budget) the level is Low unless an arena failed', () => {
  const mm = new MMSA({ name: 'none', memStats: () => undefined, env: {} });
  mm.init();
  assert.is(mm.pressure(), Pressure.Low);
  assert.equal(mm.watermarks, { minFree: 0, lowWM: 0, source: 'no host memory figures' });
  mm.terminate();
});

test('an arena that cannot be created: a typed error, OOM until memory is freed, the pool intact', () => {
  // V8 reserves ~10 GiB of address space per wasm memory: under `ulimit -v` 12 GB the first arena
  // fits and the second does not.
  const script = `
    import { MMSA, Pressure } from './build/index.js';
    const mm = new MMSA({ name: 'oom', arenaSize: 1 << 20, memStats: () => ({ total: 64 * 2 ** 30, free: 32 * 2 ** 30 }), minFree: 1 << 20, env: {} });
    mm.init();
    const out = { before: mm.pressure() };
    const sgl = mm.newSGL(0, 65536);
    sgl.write(new Uint8Array(100));
    const held = [];
    try { for (;;) held.push(mm.allocSize(65536)); } catch (e) { out.code = e.code; out.message = e.message; }
    out.held = held.length;
    out.during = mm.pressure();
    try { mm.allocSize(65536); } catch (e) { out.again = e.code; }
    try { sgl.write(new Uint8Array(4 << 20)); } catch (e) { out.sglCode = e.code; }
    out.sglKept = [sgl.size, sgl.cap];
    out.stillOOM = mm.pressure();
    sgl.free();
    held.forEach((b) => mm.free(b));
    out.after = mm.pressure();
    const big = mm.newSGL(0, 65536);
    big.write(new Uint8Array(held.length * 65536)); // the freed buffers sit in the magazine: an SGL gets them
    out.sglAfter = big.size;
    big.free();
    const b = mm.allocSize(65536); b.fill(1); mm.free(b);
    out.reuse = true;
    console.log(JSON.stringify(out));`;
  const r = spawnSync('sh', ['-c', `ulimit -v 12000000 && exec "${process.execPath}" --input-type=module -e "$0"`, script],
    { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.is(out.before, Pressure.Low);
  assert.is(out.code, 'ERR_MEMSYS_OUT_OF_MEMORY');
  assert.match(out.message, /cannot create a 1.00 MiB arena/);
  assert.ok(out.held > 0, 'the first arena served buffers');
  assert.is(out.during, Pressure.OOM);
  assert.is(out.again, 'ERR_MEMSYS_OUT_OF_MEMORY');
  assert.is(out.sglCode, 'ERR_MEMSYS_OUT_OF_MEMORY', 'an SGL that cannot grow');
  assert.equal(out.sglKept, [100, 65536], 'and keeps what it had, no more');
  assert.is(out.stillOOM, Pressure.OOM);
  assert.is(out.after, Pressure.Low, 'memory freed: no longer OOM');
  assert.is(out.sglAfter, out.held * 65536, 'an SGL grows into buffers the magazine cached');
  assert.is(out.reuse, true);
});

function throwsState(fn: () => unknown): void {
  try { fn(); } catch (e) { assert.is((e as { code?: string }).code, 'ERR_MEMSYS_STATE'); return; }
  assert.unreachable('expected ERR_MEMSYS_STATE');
}

test.run();
