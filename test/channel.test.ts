// Channels: buffers and SGLs handed to another realm through shared memory; wrap-around, a full
// ring, bad input, and a worker round trip that names an arena the receiver has not seen yet.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { MMSA, SGL } from '../src/index.js';
import { inUse, throwsCode } from './helpers.js';

test('a buffer and an SGL go through a channel; the sender can no longer use them', async () => {
  const mm = new MMSA({ name: 'c1', arenaSize: 4 << 20, env: {} });
  mm.init();
  const tx = mm.openChannel();
  const rx = mm.openChannel(tx.port());
  assert.is(rx.tryReceive(), undefined, 'nothing waiting');
  const b = mm.allocSize(5000);
  b.fill(9);
  tx.send(b);
  throwsCode(() => mm.free(b), 'ERR_MEMSYS_MOVED');
  const got = rx.tryReceive() as Uint8Array;
  assert.is(got.length, 8192);
  assert.ok(got.every((x) => x === 9));
  mm.free(got);
  const s = mm.newSGL(0, 4096);
  s.writeString('x'.repeat(10000) + '\nend');
  s.read(new Uint8Array(3));
  tx.send(s);
  throwsCode(() => s.readByte(), 'ERR_MEMSYS_MOVED');
  const r = (await rx.receive(1000)) as SGL;
  assert.ok(r instanceof SGL);
  assert.is(r.size, 10004);
  assert.is(r.offset, 3, 'offsets travel');
  assert.is(r.nextLine(), 'x'.repeat(9997));
  assert.is(r.nextLine(), 'end');
  r.free();
  let code = '';
  const t0 = performance.now();
  try { await rx.receive(30); } catch (e) { code = (e as { code: string }).code; }
  assert.is(code, 'ERR_MEMSYS_STATE', 'an empty channel times out');
  assert.ok(performance.now() - t0 >= 25);
  assert.is(inUse(mm), 0);
  mm.terminate();
});

test('records wrap around the ring; a full ring refuses and hands off nothing', () => {
  const mm = new MMSA({ name: 'c2', small: true, arenaSize: 16 << 20, env: {} });
  mm.init();
  const tx = mm.openChannel();
  const rx = mm.openChannel(tx.port());
  // 3000 SGLs of 20 buffers: 49 words each, ~147 000 words through a 65 536-word ring.
  for (let i = 0; i < 3000; i++) {
    const s = mm.newSGL(20 * 128, 128);
    s.write(new Uint8Array(20 * 128).fill(i & 255));
    tx.send(s);
    if (i % 3 === 2) {
      for (let k = 0; k < 3; k++) {
        const r = rx.tryReceive() as SGL;
        assert.is(r.size, 2560);
        assert.is(r.readAll()[2559], (i - 2 + k) & 255, `record ${i - 2 + k} intact`);
        r.free();
      }
    }
  }
  assert.is(rx.tryReceive(), undefined);
  // Fill it: the send that does not fit throws and leaves its SGL usable here.
  const sent: SGL[] = [];
  let refused: SGL | undefined;
  for (let i = 0; i < 2000 && !refused; i++) {
    const s = mm.newSGL(20 * 128, 128);
    try { tx.send(s); sent.push(s); } catch (e) {
      assert.is((e as { code: string }).code, 'ERR_MEMSYS_STATE');
      assert.match((e as Error).message, /no room/);
      refused = s;
    }
  }
  assert.ok(refused, 'the ring filled up');
  assert.ok(sent.length > 1000);
  refused!.write(new Uint8Array(1));
  refused!.free();
  for (let r = rx.tryReceive(); r; r = rx.tryReceive()) (r as SGL).free();
  assert.is(inUse(mm), 0);
  mm.terminate();
});

test('channels refuse bad values and ports with the reason', async () => {
  const mm = new MMSA({ name: 'c3', arenaSize: 1 << 20, env: {} });
  mm.init();
  const other = new MMSA({ name: 'c3-other', arenaSize: 1 << 20, env: {} });
  other.init();
  const tx = mm.openChannel();
  throwsCode(() => tx.send('x' as unknown as Uint8Array), 'ERR_MEMSYS_INVALID_ARG', 'value "x"');
  throwsCode(() => tx.send(new Uint8Array(8)), 'ERR_MEMSYS_NOT_OWNED');
  throwsCode(() => tx.send(other.allocSize(100)), 'ERR_MEMSYS_NOT_OWNED', 'allocated or received');
  const freed = mm.newSGL();
  freed.free();
  throwsCode(() => tx.send(freed), 'ERR_MEMSYS_SGL_FREED', 'handoff');
  for (const [p, why] of [
    [null, 'got null'], [{ kind: 'x' }, 'got Object'], [{ ...tx.port(), v: 2 }, 'version 2'],
    [{ ...tx.port(), sab: new SharedArrayBuffer(8) }, 'sab'],
  ] as const) throwsCode(() => mm.openChannel(p as never), 'ERR_MEMSYS_DESCRIPTOR', 'not a channel port', why);
  throwsCode(() => other.openChannel(tx.port()), 'ERR_MEMSYS_DESCRIPTOR', 'another MMSA');
  const rx = mm.openChannel(tx.port());
  let code = '';
  try { await rx.receive(-1); } catch (e) { code = (e as { code: string }).code; }
  assert.is(code, 'ERR_MEMSYS_INVALID_ARG');
  assert.is(rx.tryReceive(), undefined, 'nothing was written by the refused sends');
  const st = new MMSA({ name: 'c3-st', shared: false, arenaSize: 1 << 20, env: {} });
  st.init();
  throwsCode(() => st.openChannel(), 'ERR_MEMSYS_STATE', 'single-threaded');
  mm.terminate(); other.terminate(); st.terminate();
});

test('workers: SGLs and buffers round-trip through two channels, content checked, counts balance', async () => {
  const mm = new MMSA({ name: 'c4', arenaSize: 1 << 20, env: {} });
  mm.init();
  const toWorker = mm.openChannel();
  const toMain = mm.openChannel();
  const rounds = 40;
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/channel.ts', import.meta.url).href, desc: mm.share(), toWorker: toWorker.port(), toMain: toMain.port(), rounds, fill: 20 },
  });
  const msg = () => new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
  try {
    await msg(); // ready: the worker has filled an arena of its own
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        const s = mm.newSGL(0, 4096);
        s.writeString(`round ${i} ` + 'y'.repeat(i * 300));
        toWorker.send(s);
        const back = (await toMain.receive(5000)) as SGL;
        back.rewind();
        assert.is(back.nextLine(), `round ${i} ` + 'y'.repeat(i * 300));
        assert.is(back.nextLine(), `back ${i}: round ${i} ` + 'y'.repeat(i * 300));
        back.free();
      } else {
        const b = mm.allocSize(65536);
        for (let j = 0; j < b.length; j++) b[j] = (j + i) & 255;
        toWorker.send(b);
        const back = (await toMain.receive(5000)) as Uint8Array;
        assert.ok(back.every((x, j) => x === (~(j + i) & 255)), `round ${i}: the worker's changes came back`);
        mm.free(back);
      }
    }
    await msg(); // done
    assert.is(inUse(mm), 0);
  } finally {
    await w.terminate();
    mm.terminate();
  }
});

test('a foreign SGL is refused; a record naming an arena not yet known waits in the ring; as many records as a ring holds, none expired', async () => {
  const mm = new MMSA({ name: 'c5', arenaSize: 1 << 20, env: {} });
  mm.init();
  const other = new MMSA({ name: 'c5-other', arenaSize: 1 << 20, env: {} });
  other.init();
  const tx = mm.openChannel();
  const foreign = other.newSGL(100, 4096);
  throwsCode(() => tx.send(foreign), 'ERR_MEMSYS_NOT_OWNED', 'c5-other');
  assert.is(foreign.freed, false, 'refused before any handoff: still usable');
  foreign.free();
  // A buffer of an arena the receiving realm has not heard of yet: tryReceive waits (undefined)
  // and keeps the record; once the arena is announced, the buffer arrives.
  mm.allocSize(4096);
  const there = MMSA.attach(mm.share());
  const rx = there.openChannel(tx.port());
  const hold: Uint8Array[] = [];
  while (mm.stats().arenas < 2) hold.push(mm.allocSize(65536));
  const late = hold.pop()!;
  late.fill(5);
  tx.send(late);
  const early = rx.tryReceive();
  if (early === undefined) await new Promise((r) => setTimeout(r, 50));
  const got = (early ?? rx.tryReceive()) as Uint8Array;
  assert.ok(got instanceof Uint8Array && got.length === 65536 && got.every((x) => x === 5), 'not lost while its arena was unknown');
  there.free(got);
  hold.forEach((b) => mm.free(b));
  // As many records as the ring takes: none expires before it is read.
  const N = 5000;
  const rx2 = mm.openChannel(tx.port());
  for (let i = 0; i < N; i++) tx.send(mm.allocSize(128));
  let ok = 0;
  for (let r = rx2.tryReceive(); r; r = rx2.tryReceive()) { mm.free(r as Uint8Array); ok++; }
  assert.is(ok, N);
  there.terminate();
  mm.terminate();
  other.terminate();
});

test.run();
