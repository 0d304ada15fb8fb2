// Handoff: buffers and SGLs move between realms of one MMSA without a copy; ownership moves
// with them; each bad descriptor is refused and changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { MMSA, type SGLHandoff } from '../src/index.js';
import { inUse, throwsCode } from './helpers.js';

test('an SGL handed off in one realm is received once; the sender can no longer use it', () => {
  const mm = new MMSA({ name: 'h1', arenaSize: 4 << 20, env: {} });
  mm.init();
  const s = mm.newSGL(0, 4096);
  s.writeString('a'.repeat(10000));
  s.read(new Uint8Array(100));
  const r = s.open();
  const h = s.handoff();
  assert.is(h.kind, 'memsys.sgl');
  assert.is(h.offs.length, 3);
  assert.is(JSON.stringify(h).length < 300, true, 'a small descriptor');
  for (const fn of [
    () => s.read(new Uint8Array(1)), () => s.readByte(), () => s.write(new Uint8Array(1)), () => s.nextLine(),
    () => s.readAll(), () => s.rewind(), () => s.open(), () => s.handoff(), () => r.read(new Uint8Array(1)), () => r.seek(0),
  ]) throwsCode(fn, 'ERR_MEMSYS_MOVED', 'handed off');
  s.free(); // a no-op: `using` scopes that end after a handoff must not throw
  const got = mm.receive(h);
  assert.is(got.size, 10000);
  assert.is(got.offset, 100, 'the read offset travels');
  assert.is(got.len, 9900);
  assert.is(got.nextLine(), 'a'.repeat(9900));
  throwsCode(() => mm.receive(h), 'ERR_MEMSYS_MOVED', `ticket ${h.ticket}`, 'already received');
  got.free();
  assert.is(inUse(mm), 0);
  mm.terminate();
});

test('a single buffer: handoff, receive, and the sender\'s view can no longer be freed', () => {
  const mm = new MMSA({ name: 'h2', arenaSize: 4 << 20, env: {} });
  mm.init();
  const b = mm.allocSize(1000);
  b.fill(7);
  const h = mm.handoff(b);
  assert.is(h.kind, 'memsys.buf');
  throwsCode(() => mm.free(b), 'ERR_MEMSYS_MOVED', '1024-byte buffer', 'handed off');
  throwsCode(() => mm.slabOf(b).free(b), 'ERR_MEMSYS_MOVED');
  throwsCode(() => mm.handoff(b), 'ERR_MEMSYS_NOT_LIVE', 'hand off');
  const c = mm.receive(h);
  assert.ok(c !== b, 'a view of this realm\'s own');
  assert.ok(c.every((x) => x === 7));
  mm.free(c);
  throwsCode(() => mm.handoff(c), 'ERR_MEMSYS_NOT_LIVE', 'only a buffer in use');
  throwsCode(() => mm.handoff(new Uint8Array(8)), 'ERR_MEMSYS_NOT_OWNED', 'allocated or received');
  throwsCode(() => mm.handoff('x' as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'buffer "x"');
  assert.is(inUse(mm), 0);
  mm.terminate();
});

test('bad handoff descriptors are refused with the reason, and claim nothing', () => {
  const mm = new MMSA({ name: 'h3', arenaSize: 4 << 20, env: {} });
  mm.init();
  const other = new MMSA({ name: 'h3-other', arenaSize: 1 << 20, env: {} });
  other.init();
  const s = mm.newSGL(5000, 4096);
  s.write(new Uint8Array(5000).fill(1));
  const h = s.handoff();
  const bad: [unknown, string][] = [
    [null, 'got null'],
    [{ ...h, kind: 'x' }, 'kind "x"'],
    [{ ...h, v: 2 }, 'version 2'],
    [{ ...h, cls: 64 }, 'cls 64'],
    [{ ...h, ticket: 0 }, 'ticket 0'],
    [{ ...h, offs: [0] }, 'same length'],
    [{ ...h, offs: ['0', '4096'] }, 'lists of integers'],
    [{ ...h, memories: [{}] }, 'memories'],
    [{ ...h, woff: -1 }, 'woff -1'],
    [{ ...h, woff: 9000 }, 'not the ones handoff ticket'],
    [{ ...h, roff: 6000 }, 'not the ones handoff ticket'],
    [{ ...h, arenas: [999, 999] }, 'not the ones handoff ticket'],
    [{ ...h, kind: 'memsys.buf' }, 'exactly one buffer'],
  ];
  for (const [d, why] of bad) throwsCode(() => mm.receive(d as SGLHandoff), 'ERR_MEMSYS_DESCRIPTOR', 'not a handoff', why);
  throwsCode(() => other.receive(h), 'ERR_MEMSYS_DESCRIPTOR', 'another MMSA');
  throwsCode(() => mm.receive({ ...h, offs: [h.offs[0] + 128, h.offs[1]] }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  throwsCode(() => mm.receive({ ...h, cls: h.cls + 1 }), 'ERR_MEMSYS_DESCRIPTOR', 'not the ones');
  const got = mm.receive(h); // none of the refusals claimed the ticket
  assert.is(got.size, 5000);
  got.free();
  assert.is(inUse(mm), 0);
  mm.terminate();
  other.terminate();
});

test('a handoff received after 16384 later ones has expired, and says so', () => {
  const mm = new MMSA({ name: 'h4', arenaSize: 4 << 20, env: {} });
  mm.init();
  const b = mm.allocSize(128);
  const h = mm.handoff(b);
  for (let i = 0; i < 16384; i++) mm.free(mm.receive(mm.handoff(mm.allocSize(128))));
  throwsCode(() => mm.receive(h), 'ERR_MEMSYS_MOVED', 'expired');
  mm.terminate();
});

test('workers: an SGL and a buffer go to a worker and back with no copy, content checked both ways', async () => {
  const mm = new MMSA({ name: 'h5', arenaSize: 1 << 20, env: {} });
  mm.init();
  const desc = mm.share();
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/handoff.ts', import.meta.url).href, desc, fill: 300 },
  });
  const reply = <T>() => new Promise<T>((res, rej) => { w.once('message', res); w.once('error', rej); });
  try {
    const s = mm.newSGL(0, 4096);
    s.writeString('header line\n');
    const body = new Uint8Array(200000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 255;
    s.write(body);
    let sum = 0;
    for (const x of s.readAll()) sum = (sum + x) >>> 0;
    const size = s.size;
    w.postMessage({ sgl: s.handoff() });
    const r1 = await reply<{ size: number; sum: number; first: string; back: SGLHandoff }>();
    assert.is(r1.first, 'header line');
    assert.is(r1.sum, sum, 'the worker read the same bytes');
    const back = mm.receive(r1.back);
    assert.is(back.size, r1.size);
    assert.ok(back.size > size);
    assert.is(back.offset, 12, 'the worker\'s read offset came back with it');
    back.rewind();
    assert.is(back.nextLine(), 'header line');
    const mid = new Uint8Array(body.length);
    assert.is(back.read(mid), body.length);
    assert.equal(mid, body);
    assert.is(back.nextLine(), '');
    assert.is(back.nextLine(), 'seen by worker: header line');
    back.free();

    const b = mm.allocSize(65536);
    for (let i = 0; i < b.length; i++) b[i] = i & 255;
    w.postMessage({ buf: mm.handoff(b) });
    const r2 = await reply<{ ok: boolean; back: import('../src/index.js').BufferHandoff }>();
    assert.ok(r2.ok, 'the worker saw the bytes');
    const c = mm.receive(r2.back);
    assert.ok(c.every((x, i) => x === (~i & 255)), 'and its changes came back');
    mm.free(c);
    w.postMessage({ end: true });
    await reply();
    assert.is(inUse(mm), 0, 'every count balances over both realms');
  } finally {
    await w.terminate();
    mm.terminate();
  }
});

test.run();
