// Housekeeping with a fake clock and a fake statistics provider: every idle tier, every pressure
// depth, idle magazines, arenas dropped once empty for their idle time, events, freeMem, the timer
// chain; and a real process whose RSS falls back after a 1 GiB burst goes idle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { MMSA, type MemStats, Pressure } from '../src/index.js';
import { throwsCode } from './helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const C32K = 39; // class of 32 KiB buffers

function setup(opts: { arenaSize?: number } = {}) {
  let t = 1_000_000;
  let host: MemStats = { total: 64 * GiB, free: 60 * GiB, available: 60 * GiB };
  const mm = new MMSA({ name: 'hk', arenaSize: opts.arenaSize ?? 8 * MiB, timeIval: 20_000, housekeeping: false,
    now: () => t, memStats: () => host, minFree: 2 * GiB, env: {} });
  mm.init();
  const events: { type: string; detail: unknown }[] = [];
  for (const type of ['tick', 'trim', 'arena-added', 'arena-dropped', 'pressure']) {
    mm.addEventListener(type, (e) => events.push({ type, detail: (e as unknown as { detail: unknown }).detail }));
  }
  return {
    mm, events,
    advance: (ms: number) => { t += ms; },
    setFree: (bytes: number) => { host = { total: 64 * GiB, free: bytes, available: bytes }; },
    cls: (c: number) => mm.stats().classes[c],
  };
}

// Allocates n 32 KiB buffers and frees them: the magazine keeps some, the runs keep the rest.
function burst(mm: MMSA, n: number): void {
  const held: Uint8Array[] = [];
  for (let i = 0; i < n; i++) held.push(mm.allocSize(32768));
  for (const b of held) mm.free(b);
}

test('idle tiers at Low: > 45 s keep 64, > 90 s keep 32, > 180 s keep none; idle magazines flushed', () => {
  const { mm, advance, cls } = setup({ arenaSize: 16 * MiB });
  burst(mm, 400);
  assert.is(cls(C32K).free + cls(C32K).cached, 400, 'all 400 free, ready for reuse');
  let r = mm.housekeep();
  assert.is(r.pressure, Pressure.Low);
  assert.is(r.released, 0, 'not idle yet');
  assert.is(r.flushed, 0, 'the magazine was used since the last pass (none)');
  advance(46_000);
  r = mm.housekeep();
  assert.is(r.flushed, 32, 'the magazine (1 MiB of 32 KiB) went back: no allocation since the last pass');
  assert.is(cls(C32K).cached, 0);
  assert.is(cls(C32K).free, 64, 'tier > 45 s: 64 kept, whole runs beyond released');
  advance(45_000);
  mm.housekeep();
  assert.is(cls(C32K).free, 32, 'tier > 90 s: 32 kept');
  advance(90_000);
  mm.housekeep();
  assert.is(cls(C32K).free, 0, 'tier > 180 s: nothing kept');
  assert.is(cls(C32K).runs, 0);
  // Any allocation makes the class busy again.
  mm.free(mm.allocSize(32768));
  advance(10_000);
  r = mm.housekeep();
  assert.is(r.released, 0);
  mm.terminate();
});

test('above Low every class goes to the level\'s depth: Moderate 64, High 64 then 32, Extreme 4', () => {
  const { mm, events, setFree, cls } = setup({ arenaSize: 16 * MiB });
  const ramp = (n: number) => { burst(mm, n); };
  ramp(400);
  setFree(20 * GiB); // lowWM at init (2 + 60 GiB) × 7/16 = 27.1 GiB: 20 GiB is Moderate
  let r = mm.housekeep();
  assert.is(r.pressure, Pressure.Moderate);
  assert.is(cls(C32K).free + cls(C32K).cached, 64 + 0 * 1, 'Moderate: depth 64 (magazine included)');
  ramp(400);
  setFree(5 * GiB); // x = (5 − 2) / (27.1 − 2) = 12 %: High
  r = mm.housekeep();
  assert.is(r.pressure, Pressure.High);
  assert.is(cls(C32K).free + cls(C32K).cached, 64, 'first High tick: 64');
  ramp(400);
  mm.housekeep();
  assert.is(cls(C32K).free + cls(C32K).cached, 32, 'next High tick: 32');
  ramp(400);
  setFree(1 * GiB);
  r = mm.housekeep();
  assert.is(r.pressure, Pressure.Extreme);
  assert.ok(cls(C32K).free + cls(C32K).cached <= 4 + 0, 'Extreme: depth 4');
  const changes = events.filter((e) => e.type === 'pressure').map((e) => e.detail);
  assert.equal(changes, [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 3 }]);
  assert.ok(events.some((e) => e.type === 'trim'));
  assert.is(events.filter((e) => e.type === 'tick').length, 4);
  mm.terminate();
});

test('arenas empty for their idle time (180 s) are closed and dropped; at High at once', () => {
  const { mm, events, advance, setFree } = setup({ arenaSize: 4 * MiB });
  burst(mm, 300); // about 3 arenas of 4 MiB
  const arenas = mm.stats().arenas;
  assert.ok(arenas >= 3);
  assert.ok(events.filter((e) => e.type === 'arena-added').length === arenas);
  mm.freeMem({ totally: true, toOS: false });
  assert.is(mm.stats().arenas, arenas, 'toOS false: runs released, arenas kept');
  let r = mm.housekeep();
  assert.is(r.dropped, 0, 'empty, but not for long enough');
  advance(179_000);
  r = mm.housekeep();
  assert.is(r.dropped, 0, 'still not');
  advance(1_000);
  r = mm.housekeep();
  assert.is(r.dropped, arenas, 'empty for 180 s: dropped');
  assert.is(r.arenas, 0);
  assert.is(r.bytes, 0);
  assert.is(events.filter((e) => e.type === 'arena-dropped').length, arenas);
  // The pool works as before afterwards, in a new arena.
  const b = mm.allocSize(32768);
  b.fill(7);
  mm.free(b);
  assert.is(mm.stats().arenas, 1);
  // Under High pressure an empty arena goes at the first pass.
  mm.freeMem({ totally: true, toOS: false });
  setFree(5 * GiB);
  r = mm.housekeep();
  assert.is(r.dropped, 1);
  mm.terminate();
});

test('freeMem: totally gives every cached buffer back and drops the empty arenas; bad options', () => {
  const { mm } = setup({ arenaSize: 2 * MiB });
  const keep = mm.allocSize(4096);
  burst(mm, 200);
  const r = mm.freeMem({ totally: true });
  assert.is(mm.stats().classes[C32K].cached, 0);
  assert.is(mm.stats().classes[C32K].free, 0);
  assert.ok(r.dropped >= 1, 'arenas with nothing out dropped at once');
  assert.is(r.arenas, 1, 'the arena with a buffer in use stays');
  mm.free(keep);
  mm.freeMem({ totally: true, toOS: false });
  mm.housekeep(); // notes when each arena became empty
  const emptySince = mm.pool.arenas.emptySince;
  assert.ok(emptySince.size > 0);
  for (const bad of [{ totally: 1 }, { toOS: 'yes' }, { idle: -1 }, { idle: '5s' }]) throwsCode(() => mm.freeMem(bad as never), 'ERR_MEMSYS_INVALID_ARG', 'option');
  throwsCode(() => mm.freeMem(null as never), 'ERR_MEMSYS_INVALID_ARG', 'options null');
  throwsCode(() => new MMSA({ name: 'x', housekeeping: 'no' as unknown as boolean }), 'ERR_MEMSYS_INVALID_ARG', 'option housekeeping "no"');
  mm.terminate();
  assert.is(emptySince.size, 0, 'terminate lets go of every arena, this map included');
  throwsCode(() => mm.housekeep(), 'ERR_MEMSYS_STATE', 'terminated');
});

test('freeMem({ idle }): the classes idle at least that long are emptied, the others kept', () => {
  const { mm, advance, cls } = setup({ arenaSize: 16 * MiB });
  burst(mm, 100);                 // 32 KiB: idle from now
  mm.stats();                      // idle time counts from when a pass (or stats) sees the hits
  advance(10_000);
  const busy: Uint8Array[] = [];
  for (let i = 0; i < 50; i++) busy.push(mm.allocSize(4096));
  busy.forEach((b) => mm.free(b)); // 4 KiB: busy now
  const ready4k = cls(32).free + cls(32).cached; // (stats also notes the hits)
  assert.ok(ready4k >= 50);
  advance(5_000);
  mm.freeMem({ idle: 12_000, toOS: false });
  assert.is(cls(C32K).free + cls(C32K).cached, 0, '32 KiB, idle 15 s: emptied');
  assert.is(cls(32).free + cls(32).cached, ready4k, '4 KiB, idle 5 s: kept');
  mm.terminate();
});

test('the timer chain: next interval by level with AIStore\'s jitter; unref\'d; stopped by terminate', () => {
  const { mm, setFree } = setup();
  const within = (v: number, d: number) => v >= d * (1 - 4 / 128) && v <= d * (1 + 3 / 128);
  assert.ok(within(mm.housekeep().next!, 40_000), 'Low: 2 × timeIval');
  setFree(20 * GiB);
  assert.ok(within(mm.housekeep().next!, 20_000), 'Moderate: timeIval');
  setFree(1 * GiB);
  assert.ok(within(mm.housekeep().next!, 10_000), 'Extreme: timeIval / 2');
  mm.terminate();
  // A process that leaves an MMSA initialised (its timer running) still exits at once.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { MMSA } from './build/index.js'; const mm = new MMSA({ name: 't', timeIval: 50 }); mm.init(); mm.free(mm.alloc()); setTimeout(() => console.log(\`ticks \${mm.stats().classes.length}\`), 300);`],
    { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname, timeout: 10_000 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /ticks 64/, r.stderr);
  // A real timer ticks: with timeIval 10 ms, a tick event arrives.
  const live = new MMSA({ name: 'live', timeIval: 10, memStats: () => undefined, env: {} });
  live.init();
  return new Promise<void>((resolve, reject) => {
    // The chain's timer is unref'd: this one keeps the test process alive meanwhile.
    const guard = setTimeout(() => reject(new Error('no tick within 5 s')), 5000);
    live.addEventListener('tick', () => { clearTimeout(guard); live.terminate(); resolve(); }, { once: true });
  });
});

test('a real process: RSS falls back near its baseline after a 1 GiB burst goes idle', () => {
  const script = `
    import { MMSA } from './build/node.js';
    const rss = () => process.memoryUsage.rss() / 2 ** 20;
    const mm = new MMSA({ name: 'rss', arenaSize: 64 << 20, housekeeping: false, minFree: 0, env: {} });
    mm.init();
    gc();
    const base = rss();
    const held = [];
    for (let i = 0; i < (1 << 30) / 32768; i++) { const b = mm.allocSize(32768); b.fill(1); held.push(b); }
    const peak = rss();
    for (const b of held) mm.free(b);
    held.length = 0;
    const r = mm.freeMem({ totally: true });
    for (let i = 0; i < 3; i++) { gc(); await new Promise((res) => setTimeout(res, 50)); }
    console.log(JSON.stringify({ base, peak, after: rss(), dropped: r.dropped, arenas: r.arenas }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname, timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.ok(out.peak - out.base > 1000, `the burst touched 1 GiB (RSS ${out.base.toFixed(0)} → ${out.peak.toFixed(0)} MiB)`);
  assert.is(out.arenas, 0);
  assert.ok(out.dropped >= 16);
  assert.ok(out.after - out.base < 100, `RSS back near its baseline: ${out.base.toFixed(0)} → ${out.peak.toFixed(0)} → ${out.after.toFixed(0)} MiB`);
});

test.run();
