// The budget controller against recorded demand curves (a burst, a slow ramp, an oscillation), its
// bounds, its options; and an MMSA that holds to its ceiling and gives back what is above target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BudgetController, MMSA, type MemStats, Pressure } from '../src/index.js';
import { throwsCode } from './helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// Runs a demand curve (MiB per pass) through a controller; returns the target per pass (MiB).
function drive(c: BudgetController, curve: number[], p: (i: number) => 0 | 1 | 2 | 3 | 4 = () => 0): number[] {
  return curve.map((d, i) => c.update(d * MiB, p(i)) / MiB);
}

test('a burst: the target meets it at once, holds, then shrinks by an eighth of the excess per pass to the floor', () => {
  const c = new BudgetController({ floor: 64 * MiB, reserve: 16 * MiB });
  const curve = [...Array(5).fill(0), ...Array(10).fill(800), ...Array(60).fill(0)];
  const t = drive(c, curve);
  assert.equal(t.slice(0, 5), Array(5).fill(64), 'floor before the burst (demand 0 + reserve 16 < floor)');
  assert.is(t[5], 816, 'no lag: the first pass of the burst reaches demand + reserve');
  assert.ok(t.slice(5, 15).every((x) => x === 816));
  assert.equal(t.slice(15, 18), [816, 816, 816], 'held for 3 passes after demand fell');
  assert.is(t[18], Math.ceil((816 - (816 - 16) / 8) * MiB) / MiB, 'then an eighth of the excess');
  for (let i = 19; i < t.length; i++) assert.ok(t[i] <= t[i - 1], 'never grows while demand is low');
  assert.is(t.at(-1), 64, 'down to the floor');
});

test('a slow ramp is tracked exactly, an oscillation does not thrash', () => {
  const ramp = drive(new BudgetController(), Array.from({ length: 50 }, (_, i) => 10 * i));
  assert.equal(ramp, Array.from({ length: 50 }, (_, i) => 10 * i));
  const osc = drive(new BudgetController(), Array.from({ length: 100 }, (_, i) => (i % 2 ? 900 : 100)));
  const changes = osc.filter((x, i) => i > 0 && x !== osc[i - 1]).length;
  assert.is(changes, 1, 'one rise to the peak, then no movement while demand keeps coming back');
  assert.ok(osc.slice(1).every((x) => x === 900));
  // A slower oscillation (down for 6 passes, longer than the hold) shrinks a little and regrows:
  // movement stays a fraction of the demand's swing.
  const slow = drive(new BudgetController(), Array.from({ length: 120 }, (_, i) => (Math.floor(i / 6) % 2 ? 100 : 900)));
  const swing = Math.max(...slow.slice(12)) - Math.min(...slow.slice(12));
  assert.ok(swing < 800 * 0.45, `target swing ${swing.toFixed(0)} MiB against a demand swing of 800`);
});

test('floor and ceiling hold; pressure lowers the ceiling', () => {
  const c = new BudgetController({ floor: 100 * MiB, ceiling: 1 * GiB });
  assert.equal(drive(c, [0, 5000, 5000]), [100, 1024, 1024]);
  const levels = [Pressure.Low, Pressure.Moderate, Pressure.High, Pressure.Extreme, Pressure.OOM];
  assert.equal(levels.map((p) => c.ceilingAt(p) / MiB), [1024, Math.floor(1024 * 0.9 * MiB) / MiB, 768, 512, 256]);
  assert.equal(drive(c, [5000, 5000], () => Pressure.High), [768, 768]);
  assert.equal(drive(c, [0], () => Pressure.OOM), [256]);
  const tight = new BudgetController({ floor: 600 * MiB, ceiling: 1 * GiB });
  assert.equal(drive(tight, [5000], () => Pressure.OOM), [600], 'never below the floor, even under OOM');
});

test('bad budget options are typed errors', () => {
  const bad: [unknown, string][] = [
    [null, 'option budget null'], [{ floor: -1 }, 'budget.floor -1'], [{ ceiling: 1.5 }, 'budget.ceiling 1.5'],
    [{ reserve: '1' }, 'budget.reserve "1"'], [{ floor: 10, ceiling: 5 }, 'must not be below the floor'],
    [{ shrink: 0 }, 'budget.shrink 0'], [{ shrink: 2 }, 'budget.shrink 2'], [{ hold: -1 }, 'budget.hold -1'],
  ];
  for (const [o, why] of bad) {
    throwsCode(() => new BudgetController(o as never), 'ERR_MEMSYS_INVALID_ARG', why);
    throwsCode(() => new MMSA({ name: 'b', budget: o as never }), 'ERR_MEMSYS_INVALID_ARG', why);
  }
});

test('an MMSA with a budget: refused above the ceiling (lower under pressure), gives back above its target', () => {
  let host: MemStats = { total: 64 * GiB, free: 60 * GiB, available: 60 * GiB };
  let t = 0;
  const mm = new MMSA({ name: 'bud', arenaSize: 4 * MiB, housekeeping: false, now: () => t, memStats: () => host,
    minFree: 2 * GiB, budget: { ceiling: 16 * MiB, hold: 0, shrink: 1 / 2 }, env: {} });
  mm.init();
  const held: Uint8Array[] = [];
  let err: { code?: string; message?: string } = {};
  try { for (;;) held.push(mm.allocSize(65536)); } catch (e) { err = e as typeof err; }
  assert.is(err.code, 'ERR_MEMSYS_BUDGET');
  assert.match(err.message!, /above its ceiling 16.0 MiB/);
  assert.is(mm.stats().arenas, 4, 'four 4 MiB arenas: the ceiling');
  assert.is(mm.pressure(), Pressure.Low);
  const high = mm.housekeep();
  assert.is(high.target, held.length * 65536, 'a pass while it is all in use: the target is the demand');
  assert.is(high.bytes, 16 * MiB, 'nothing given back at the target');
  held.forEach((b) => mm.free(b));
  held.length = 0;
  // Demand gone: the target halves each pass (hold 0, shrink 1/2) and the pool follows it down.
  const bytes: number[] = [];
  const targets: number[] = [high.target!];
  for (let i = 0; i < 4; i++) { t += 1000; const r = mm.housekeep(); bytes.push(r.bytes); targets.push(r.target!); }
  for (let i = 1; i < targets.length; i++) assert.is(targets[i], Math.ceil(targets[i - 1] / 2));
  for (let i = 0; i < bytes.length; i++) {
    assert.ok(bytes[i] >= targets[i + 1], `pass ${i}: the pool (${bytes[i]}) never drops below the target (${targets[i + 1]})`);
    assert.ok(bytes[i] < targets[i + 1] + 4 * MiB, 'and follows it down, whole arenas at a time');
  }
  assert.is(bytes.at(-1), 4 * MiB, 'one arena left for a target of ~1 MiB');
  // Pressure lowers the ceiling: at Moderate 0.9 × 16 MiB leaves room for three arenas.
  host = { total: 64 * GiB, free: 20 * GiB, available: 20 * GiB };
  assert.is(mm.pressure(), Pressure.Moderate);
  try { for (;;) held.push(mm.allocSize(65536)); } catch (e) { err = e as typeof err; }
  assert.is(err.code, 'ERR_MEMSYS_BUDGET');
  assert.is(mm.stats().arenas, 3);
  assert.equal(mm.budget, { target: targets[4], floor: 0, ceiling: 16 * MiB, effectiveCeiling: Math.floor(16 * MiB * 0.9), reserve: 0 });
  held.forEach((b) => mm.free(b));
  mm.terminate();
  assert.is(new MMSA({ name: 'none' }).budget, undefined);
});

test('a reserve inside steady use does not thrash; attached realms keep to the same ceiling; a ceiling below one arena is refused', () => {
  let t = 0;
  const mm = new MMSA({ name: 'r', arenaSize: MiB, housekeeping: false, now: () => t, budget: { reserve: 512 * 1024, ceiling: 4 * MiB }, env: {} });
  mm.init();
  let added = 0;
  let dropped = 0;
  mm.addEventListener('arena-added', () => added++);
  mm.addEventListener('arena-dropped', () => dropped++);
  const base: Uint8Array[] = [];
  while (mm.stats().arenas < 2) base.push(mm.allocSize(65536));
  mm.free(base.pop()!);
  for (let pass = 0; pass < 6; pass++) {
    const burst = Array.from({ length: 4 }, () => mm.allocSize(65536)); // inside the reserve
    burst.forEach((b) => mm.free(b));
    t += 1000;
    const r = mm.housekeep();
    assert.ok(r.bytes >= r.target!, `pass ${pass}: the pool (${r.bytes}) stays at or above its target (${r.target})`);
  }
  assert.is(added, 2, 'no arena made again');
  assert.is(dropped, 0, 'and none dropped');
  // A realm attached to the pool counts the same arenas against the same ceiling.
  const other = MMSA.attach(mm.share());
  let code = '';
  const theirs: Uint8Array[] = [];
  try { for (;;) theirs.push(other.allocSize(65536)); } catch (e) { code = (e as { code: string }).code; }
  assert.is(code, 'ERR_MEMSYS_BUDGET');
  assert.is(other.stats().arenas, 4, 'two more arenas: four in all, the ceiling');
  theirs.forEach((b) => other.free(b));
  other.terminate();
  base.forEach((b) => mm.free(b));
  mm.terminate();
  throwsCode(() => new MMSA({ name: 'small', arenaSize: 64 * MiB, budget: { ceiling: 32 * MiB } }), 'ERR_MEMSYS_INVALID_ARG',
    'budget.ceiling 33554432', 'at least one arena');
});

test('a steady rate whose requests are all done at each pass keeps its arena; once it stops, the pool goes to its floor', () => {
  let t = 0;
  const mm = new MMSA({ name: 'steady', arenaSize: 4 * MiB, housekeeping: false, now: () => t, budget: { hold: 2, shrink: 1 }, env: {} });
  mm.init();
  let added = 0;
  let dropped = 0;
  mm.addEventListener('arena-added', () => added++);
  mm.addEventListener('arena-dropped', () => dropped++);
  // One request per pass interval, each done before the pass reads the demand: nothing is out at
  // any pass, yet the class cycles its buffers all the time.
  for (let pass = 0; pass < 8; pass++) {
    const body = Array.from({ length: 8 }, () => mm.allocSize(128 * 1024));
    body.forEach((b) => mm.free(b));
    t += 500;
    const r = mm.housekeep();
    assert.ok(r.target! >= 1 * MiB, `pass ${pass}: the target (${r.target}) counts the body the class cycles`);
  }
  assert.is(added, 1, 'one arena made');
  assert.is(dropped, 0, 'and kept while requests come');
  const bytes: number[] = [];
  for (let pass = 0; pass < 5; pass++) { t += 500; bytes.push(mm.housekeep().bytes); }
  // The first pass after the last request sees the class idle; hold 2 more passes, then shrink 1.
  assert.equal(bytes, [4 * MiB, 4 * MiB, 0, 0, 0], 'the load gone, the arena goes at the hold + 1st pass');
  assert.is(dropped, 1);
  mm.terminate();
});

test.run();
