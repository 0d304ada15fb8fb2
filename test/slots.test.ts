// Slots between the arenas and what holds them: an SGL that cannot grow keeps what it held; a
// magazine of buffers from several arenas goes back to each, or stays where an arena is locked; an
// event listener that allocates while a refill is under way gets buffers of its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { W_LOCK } from '#abi';
import { MMSA } from '../src/index.js';
import { inUse, pattern } from './helpers.js';

const MiB = 1 << 20;
const KiB64 = 65536;

function pool(opts: Record<string, unknown> = {}): MMSA {
  const mm = new MMSA({ name: 'slots', arenaSize: MiB, housekeeping: false, env: {}, ...opts });
  mm.init();
  return mm;
}

test('an SGL that cannot grow under the ceiling keeps its buffers and bytes, and the arena it mapped goes', () => {
  const mm = pool({ budget: { ceiling: 2 * MiB } });
  const sgl = mm.newSGL(0, KiB64);
  const first = pattern(10 * KiB64, 7);
  sgl.write(first);
  assert.is(mm.stats().arenas, 1);
  let code = '';
  try { sgl.write(new Uint8Array(40 * KiB64)); } catch (e) { code = (e as { code: string }).code; }
  assert.is(code, 'ERR_MEMSYS_BUDGET');
  assert.equal([sgl.len, sgl.cap, inUse(mm)], [10 * KiB64, 10 * KiB64, 10], 'the ten buffers it held, no more');
  assert.equal(sgl.readAll(), first);
  assert.is(mm.stats().arenas, 1, 'the arena mapped for the refused write is dropped again');
  sgl.write(new Uint8Array(5 * KiB64).fill(1)); // and the SGL grows where there is room
  assert.is(sgl.len, 15 * KiB64);
  sgl.free();
  assert.is(inUse(mm), 0);
  mm.check();
  mm.terminate();
});

for (const debug of [false, true]) {
  test(`a magazine holding buffers of three arenas, freed interleaved, goes back to each${debug ? ' (debug mode)' : ''}`, () => {
    const mm = pool({ debug });
    const held: Uint8Array[] = [];
    while (mm.stats().arenas < 3) held.push(mm.allocSize(KiB64));
    const n = held.length;
    const stride = Math.ceil(n / 3); // buffers of the three arenas, in turn
    for (let k = 0; k < stride; k++) {
      for (let i = k; i < n; i += stride) mm.free(held[i]);
    }
    assert.is(inUse(mm), 0);
    mm.check();
    const r = mm.freeMem({ totally: true });
    assert.is(r.arenas, 0, 'every arena emptied and dropped');
    const again = Array.from({ length: n }, (_, i) => mm.allocSize(KiB64).fill(i));
    again.forEach((b, i) => assert.ok(b.every((x) => x === i), `buffer ${i} handed out twice`));
    again.forEach((b) => mm.free(b));
    mm.check();
    mm.terminate();
  });
}

test('a flush over three arenas, one locked by another realm: its buffers stay cached, the others go back, none is handed out twice', () => {
  const mm = pool();
  const held: Uint8Array[] = [];
  while (mm.stats().arenas < 3) held.push(mm.allocSize(KiB64));
  const n = held.length;
  const stride = Math.ceil(n / 3);
  const locked = mm.pool.arenas.list[0];
  Atomics.store(locked.u32, W_LOCK, 0x7ff0); // a realm not known dead holds its lock
  let again: Uint8Array[];
  try {
    for (let k = 0; k < stride; k++) {
      for (let i = k; i < n; i += stride) mm.free(held[i]);
    }
    mm.freeMem({ totally: true, toOS: false });
    const cached = mm.stats().classes.find((c) => c.size === KiB64)!.cached;
    assert.ok(cached > 0 && cached < n, `${cached} of ${n} cached: the locked arena's`);
    again = Array.from({ length: n }, (_, i) => mm.allocSize(KiB64).fill(i));
    again.forEach((b, i) => assert.ok(b.every((x) => x === i), `buffer ${i} handed out twice`));
  } finally {
    Atomics.store(locked.u32, W_LOCK, 0);
  }
  again.forEach((b) => mm.free(b));
  mm.freeMem({ totally: true });
  assert.is(inUse(mm), 0);
  mm.check();
  mm.terminate();
});

test('an arena-added listener that allocates during a refill gets buffers of its own class, none shared', () => {
  const mm = pool();
  const inner: Uint8Array[] = [];
  mm.addEventListener('arena-added', () => {
    inner.push(mm.allocSize(4096));
    const tmp = mm.allocSize(8192);
    mm.free(tmp);
  });
  const outer: Uint8Array[] = [];
  while (mm.stats().arenas < 4) outer.push(mm.allocSize(KiB64));
  for (let i = 0; i < 40; i++) inner.push(mm.allocSize(4096)); // the 4 KiB magazine, drained
  assert.ok(outer.every((b) => b.length === KiB64) && inner.every((b) => b.length === 4096));
  const all = [...outer, ...inner];
  all.forEach((b, i) => b.fill(i & 255));
  all.forEach((b, i) => assert.ok(b.every((x) => x === (i & 255)), `buffer ${i} (${b.length} B) was written by another`));
  all.forEach((b) => mm.free(b));
  assert.is(inUse(mm), 0);
  mm.check();
  mm.terminate();
});

test('an arena-recovered listener that frees into the arena a flush waits on: each flush gives back its own buffers', () => {
  const mm = pool({ magazineBytes: 0 });
  const other = MMSA.attach(mm.share());
  const dead = other.pool.cfg.realm;
  other.terminate(); // known dead from here
  const xs = Array.from({ length: 8 }, () => mm.allocSize(4096));
  const ys = Array.from({ length: 8 }, () => mm.allocSize(4096));
  const a = mm.pool.arenas.list[0];
  let recovered = 0;
  mm.addEventListener('arena-recovered', () => {
    recovered++;
    ys.splice(0).forEach((b) => mm.free(b));
  });
  Atomics.store(a.u32, W_LOCK, dead); // it died holding the lock
  xs.forEach((b) => mm.free(b));
  mm.freeMem({ totally: true, toOS: false });
  assert.is(recovered, 1);
  assert.is(inUse(mm), 0);
  mm.check();
  const again = Array.from({ length: 16 }, (_, i) => mm.allocSize(4096).fill(i));
  again.forEach((b, i) => assert.ok(b.every((x) => x === i), `buffer ${i} handed out twice`));
  again.forEach((b) => mm.free(b));
  mm.check();
  mm.terminate();
});

test.run();
