// Hostile and careless input: descriptors that cannot be received or were changed, and the small
// gaps (null frees, options of the wrong type, a provider's NaN, foreign arrays). Each is a typed
// error with a stable code, or works, and leaves the pool's state intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MMSA, type MemStats } from '../src/index.js';
import { inUse, throwsCode } from './helpers.js';

const GiB = 1 << 30;
const roomy = (): MemStats => ({ total: 64 * GiB, free: 60 * GiB, available: 60 * GiB });
function pool(opts: Record<string, unknown> = {}): MMSA {
  const mm = new MMSA({ name: 'hostile', arenaSize: 4 << 20, housekeeping: false, memStats: roomy, minFree: 0, env: {}, ...opts });
  mm.init();
  return mm;
}

test('a buffer of an arena a realm knows only by a posted buffer can be handed off, and the descriptor received', () => {
  const mm = pool();
  const other = MMSA.attach(mm.share()); // attached before the arena exists; its announcement is not delivered yet
  const b = mm.allocSize(4096);
  b.fill(3);
  other.free(new Uint8Array(b.buffer, b.byteOffset, b.length)); // as a posted view is freed in a worker
  const c = other.allocSize(4096);        // the same buffer, from other's magazine
  assert.is(c.byteOffset, b.byteOffset);
  const d = structuredClone(other.handoff(c));
  assert.is(d.memories.length, 0, 'other has no memory of the arena to send');
  assert.is(d.buffers?.length, 1, 'so the descriptor carries the buffer it knows it by');
  const got = other.receive(d) as Uint8Array;
  assert.is(got[0], 3);
  const sgl = other.newSGL(0, 4096);
  other.free(got);
  sgl.free();
  const again = other.allocSize(4096);
  const d2 = other.handoff(again);
  const there = mm.receive(structuredClone(d2)) as Uint8Array; // in the realm that made the arena, too
  assert.is(there.byteOffset, again.byteOffset);
  mm.free(there);
  assert.is(inUse(mm), 0);
  other.terminate();
  mm.terminate();
});

test('a changed buffer list is refused before anything is taken; the genuine descriptor still works', () => {
  const mm = pool();
  const a = mm.allocSize(4096);
  const b = mm.allocSize(4096);
  const d = mm.handoff(a);
  const forged = { ...d, offs: [b.byteOffset] };
  throwsCode(() => mm.receive(forged), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones handoff ticket');
  throwsCode(() => mm.receive({ ...d, cls: 33, offs: [b.byteOffset] }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  // A forged memory in a descriptor is not adopted: its ticket and digest are checked first.
  const alien = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });
  throwsCode(() => mm.receive({ ...d, ticket: d.ticket + 1000, memories: [alien] }), 'ERR_MEMSYS_MOVED');
  assert.is(mm.stats().arenas, 1, 'nothing adopted');
  const got = mm.receive(d) as Uint8Array;
  assert.is(got.byteOffset, a.byteOffset);
  mm.free(got);
  b[0] = 1;
  mm.free(b);
  throwsCode(() => mm.free(b), 'ERR_MEMSYS_NOT_LIVE');
  const sgl = mm.newSGL(0, 4096);
  sgl.write(new Uint8Array(3 * 4096).fill(7));
  const sd = sgl.handoff();
  throwsCode(() => mm.receive({ ...sd, arenas: [sd.arenas[0], sd.arenas[0], sd.arenas[2]], offs: [sd.offs[0], sd.offs[0], sd.offs[2]] }), 'ERR_MEMSYS_DESCRIPTOR', 'named twice');
  throwsCode(() => mm.receive({ ...sd, offs: [sd.offs[1], sd.offs[0], sd.offs[2]] }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  throwsCode(() => mm.receive({ ...sd, woff: sd.woff - 1 }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  // An offset beyond 2^32 shares its low bits with a real one: the digest covers all of it.
  throwsCode(() => mm.receive({ ...sd, offs: [sd.offs[0] + 2 ** 32, sd.offs[1], sd.offs[2]] }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  const s2 = mm.receive(sd);
  assert.is(s2.len, 3 * 4096);
  s2.free();
  assert.is(inUse(mm), 0);
  mm.check();
  mm.terminate();
});

test('an attach whose port cannot be listened on fails and leaves the pool as it was', () => {
  const mm = new MMSA({ name: 'port-fault', env: {}, housekeeping: false });
  mm.init();
  const d = mm.share();
  const port = { postMessage() {}, addEventListener() { throw new Error('no listener here'); } };
  assert.throws(() => MMSA.attach(d, port), /no listener here/);
  assert.ok(mm.pool.control.alone(mm.pool.cfg.realm), 'the realm that never was is not counted alive');
  mm.alloc();
  mm.check();
  mm.terminate();
});

test('null and undefined frees, and frees of things that are not buffers, are typed errors', () => {
  const mm = pool();
  const slab = mm.getSlab(4096);
  for (const v of [null, undefined, 0, 'buf', {}, new Uint8Array(4096)]) {
    for (const f of [() => mm.free(v as never), () => slab.free(v as never)]) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      assert.ok(err instanceof Error && typeof (err as { code?: string }).code === 'string', `${String(v)}: ${err}`);
    }
  }
  throwsCode(() => mm.free(null as never), 'ERR_MEMSYS_INVALID_ARG', 'null');
  throwsCode(() => slab.free(undefined as never), 'ERR_MEMSYS_INVALID_ARG', 'undefined');
  throwsCode(() => mm.slabOf(new Uint8Array(4096)), 'ERR_MEMSYS_NOT_OWNED');
  const b = mm.allocSize(4096);
  assert.is(mm.slabOf(b), slab);
  mm.free(b);
  mm.terminate();
});

test('options of the wrong type are typed errors at construction', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ shared: 'no' }, 'option shared'],
    [{ debug: 'no' }, 'option debug'],
    [{ small: 1 }, 'option small'],
    [{ env: { AIS_DEBUG: 4 } }, 'option env.AIS_DEBUG'],
    [{ env: { AIS_MINMEM_FREE: 123 } }, 'option env.AIS_MINMEM_FREE'],
    [{ madvise: 'sometimes' }, 'option madvise'],
  ];
  for (const [o, part] of cases) throwsCode(() => new MMSA({ name: 'x', ...o } as never), 'ERR_MEMSYS_INVALID_ARG', part);
});

test('a provider that returns NaN or garbage lowers what is known; thresholds stay numbers', () => {
  for (const bad of [{ total: NaN, free: NaN }, { total: 1e12, free: -5 }, 'lots', { total: 1e12, free: 1e11, available: NaN }]) {
    const mm = new MMSA({ name: 'nan', housekeeping: false, memStats: () => bad as never, env: {} });
    mm.init();
    assert.ok(Number.isFinite(mm.watermarks.lowWM), `${JSON.stringify(bad)}: lowWM ${mm.watermarks.lowWM}`);
    assert.ok(Number.isInteger(mm.pressure()));
    const h = mm.hostStats();
    assert.ok(h === undefined || Number.isFinite(h.free));
    mm.terminate();
  }
});

test('attach checks the pool id and the thresholds of a descriptor', () => {
  const mm = pool();
  const d = mm.share();
  for (const [k, v] of [['id', 'x'], ['id', 0], ['id', 2 ** 40], ['minFree', NaN], ['lowWM', -1], ['small', 'yes']] as const) {
    let err: { code?: string } = {};
    try { MMSA.attach({ ...d, [k]: v } as never); } catch (e) { err = e as typeof err; }
    assert.ok(err.code === 'ERR_MEMSYS_DESCRIPTOR' || err.code === 'ERR_MEMSYS_INVALID_ARG', `${k} ${String(v)}: ${err.code}`);
  }
  const ok = MMSA.attach(d);
  ok.terminate();
  mm.terminate();
});

test('debug mode catches a write to a freed buffer after a flush, after freeMem, and through a kept chunk of a freed SGL', () => {
  const mm = pool({ debug: true, magazineBytes: 0 });
  const slab = mm.getSlab(4096);
  // After a flush: a magazine of 4 buffers; freeing 5 flushes two back to the arena.
  const held = Array.from({ length: 8 }, () => slab.alloc());
  held.forEach((b) => slab.free(b));
  mm.freeMem({ totally: true, toOS: false }); // every cached buffer back to the arena
  held[2][9] = 1;                             // a stale view written after it went back
  let err: { code?: string; message?: string } = {};
  try { for (let i = 0; i < 64; i++) held.push(slab.alloc()); } catch (e) { err = e as typeof err; }
  assert.is(err.code, 'ERR_MEMSYS_USE_AFTER_FREE');
  assert.match(err.message!, /written at byte 8 while free \(after it went back to the arena\)/);
  held.splice(8).forEach((b) => slab.free(b));
  mm.check();
  // Through a kept chunk of a freed SGL.
  const sgl = mm.newSGL(0, 4096);
  sgl.write(new Uint8Array(8192).fill(1));
  const chunk = sgl.nextChunk()!;
  sgl.free();
  chunk[0] = 2;
  let sglErr = '';
  try { const s2 = mm.newSGL(64 * 4096, 4096); s2.free(); } catch (e) { sglErr = (e as { code: string }).code; }
  assert.is(sglErr, 'ERR_MEMSYS_USE_AFTER_FREE');
  assert.is(inUse(mm), 0, 'the refused SGL gave its buffers back');
  const s3 = mm.newSGL(64 * 4096, 4096); // and the pool serves the next one (the slot poisoned again)
  s3.free();
  mm.check();
  mm.terminate();
});

test.run();
