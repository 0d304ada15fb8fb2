// Several worker_threads share one MMSA: each allocates, each frees buffers the other allocated
// (posted as plain Uint8Arrays), contents are checked, and the pool balances at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageChannel, Worker } from 'node:worker_threads';
import { MMSA } from '../src/index.js';

test('three workers in a ring allocate and free each other\'s buffers; every count balances', async () => {
  const mm = new MMSA({ name: 'w', arenaSize: 4 << 20, env: {} });
  mm.init();
  const warm = mm.alloc(); // one arena exists before share(); the workers add more
  const desc = mm.share();
  const n = 3;
  const rounds = 60;
  const links = Array.from({ length: n }, () => new MessageChannel()); // link i: worker i → i+1
  const run = (id: number) => new Promise<{ sent: number; received: number; bad: number }>((resolve, reject) => {
    const next = links[id].port1;
    const from = links[(id + n - 1) % n].port2;
    const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
      workerData: { entry: new URL('./fixtures/worker.ts', import.meta.url).href, desc, id, prev: (id + n - 1) % n, rounds, next, from },
      transferList: [next, from],
    });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
  const res = await Promise.all(Array.from({ length: n }, (_, id) => run(id)));
  for (let id = 0; id < n; id++) {
    assert.is(res[id].bad, 0, `worker ${id}: every received buffer had its sender's stamp`);
    assert.is(res[id].sent, rounds * 20);
    assert.is(res[id].received, res[(id + n - 1) % n].sent);
  }
  mm.free(warm);
  // Arenas the workers created reached this realm by announcement.
  await new Promise((r) => setTimeout(r, 50));
  const s = mm.stats();
  assert.ok(s.arenas > 1, `workers grew the pool (${s.arenas} arenas)`);
  mm.terminate();
  // After both workers terminated (flushing their magazines) and we did, nothing is out.
  const check = MMSA.attach(desc);
  for (let c = 0; c < 64; c++) {
    assert.is(check.stats().classes[c].inUse, 0, `class ${c} in use`);
  }
  let out = 0;
  for (let c = 0; c < 64; c++) out += check.coreOut(c);
  assert.is(out, 0, 'every slot is back in the arenas');
  check.check();
  check.terminate();
});

test('buffers posted in one message before their arena is announced are all freed correctly', async () => {
  const mm = new MMSA({ name: 'early', arenaSize: 1 << 20, env: {} });
  mm.init();
  const desc = mm.share(); // no arena yet: the worker creates the first one
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/early.ts', import.meta.url).href, desc },
  });
  const bufs = await new Promise<Uint8Array[]>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  bufs.forEach((b, i) => assert.ok(b.every((x) => x === i + 1)));
  mm.free(bufs[0]); // maybe before the announcement
  await new Promise((r) => setTimeout(r, 50)); // now the memory has arrived
  mm.free(bufs[1]); // same message, same SharedArrayBuffer: still a posted buffer
  mm.free(bufs[2]);
  assert.throws(() => mm.free(bufs[1]), /not in use/);
  // This realm has published its 3 frees; the worker publishes its 3 allocations when it flushes.
  assert.is(mm.stats().classes[33].inUse, -3);
  w.postMessage('bye');
  await new Promise((r) => w.once('message', r));
  assert.is(mm.stats().classes[33].inUse, 0, 'balanced once the worker terminated');
  await w.terminate();
  mm.terminate();
});

test('a worker that missed an arena\'s announcement asks for it, and gives its buffers back', async () => {
  const mm = new MMSA({ name: 'late', arenaSize: 1 << 20, env: {} });
  mm.init();
  const desc = mm.share(); // made before any arena exists
  const bufs = [mm.allocSize(8192), mm.allocSize(8192), mm.allocSize(8192)]; // arena 1, announced to no one
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/late.ts', import.meta.url).href, desc },
  });
  await new Promise((r, j) => { w.once('message', r); w.once('error', j); });
  w.postMessage({ bufs });
  const res = await new Promise<{ bound: number; cached: number; after: string }>((r) => w.once('message', r));
  await w.terminate();
  assert.is(res.bound, 1, 'the worker has the arena');
  assert.is(res.cached, 3);
  assert.is(res.after, 'ERR_MEMSYS_STATE', 'alloc after terminate throws');
  assert.is(mm.coreOut(33), mm.stats().classes[33].cached, 'every slot out of the core is in this realm\'s magazine');
  assert.is(mm.stats().classes[33].inUse, 0);
  mm.terminate();
});

test('a received view freed twice is refused even after its slot was handed out again', () => {
  const mm = new MMSA({ name: 'posted', arenaSize: 1 << 20, env: {}, magazineBytes: 0 });
  mm.init();
  mm.share();
  const slab = mm.getSlab(1024);
  const v = slab.alloc();
  const p = structuredClone(v); // what a worker receives: same memory, another SharedArrayBuffer
  assert.is.not(p.buffer, v.buffer);
  mm.free(p);
  const churn = Array.from({ length: 8 }, () => slab.alloc());
  for (const b of churn) slab.free(b); // p's slot goes back to the core (magazine of 4)
  const again = Array.from({ length: 8 }, () => slab.alloc());
  assert.ok(again.some((b) => b.byteOffset === p.byteOffset), 'the slot has a new owner');
  assert.throws(() => mm.free(p), (e: { code?: string }) => e.code === 'ERR_MEMSYS_NOT_LIVE');
  for (const b of again) slab.free(b);
  mm.check();
  mm.terminate();
});

test('once a placeholder arena is bound, a subarray of a new buffer is still refused', async () => {
  const mm = new MMSA({ name: 'bind', arenaSize: 1 << 20, env: {}, magazineBytes: 0 });
  mm.init();
  // `other` stands for a worker: attached before the arena exists, it meets the arena first as a
  // posted buffer (a placeholder over that buffer), and gets its memory a moment later.
  const other = MMSA.attach(mm.share());
  const first = mm.allocSize(8192);
  const posted = structuredClone(first);
  other.free(posted);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(other.stats().arenas, 1);
  const v = other.allocSize(8192);
  assert.throws(() => other.free(v.subarray(0)), (e: { code?: string }) => e.code === 'ERR_MEMSYS_NOT_OWNED');
  other.free(v);
  other.terminate();
  mm.terminate();
});

test('two realms terminating at once each write their orphans; every buffer is given back once', async () => {
  for (let round = 0; round < 5; round++) {
    const mm = new MMSA({ name: 'orph', arenaSize: 4 << 20, env: {} });
    mm.init();
    const first = mm.allocSize(128);
    const desc = mm.share();
    const flag = new SharedArrayBuffer(8);
    const start = () => new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
      workerData: { entry: new URL('./fixtures/orphans.ts', import.meta.url).href, desc, flag },
    });
    const ws = [start(), start()];
    const msg = (w: Worker) => new Promise((r, j) => { w.once('message', r); w.once('error', j); });
    await Promise.all(ws.map(msg));
    // A second arena, made after the workers attached and closed their channels.
    const hold: Uint8Array[] = [];
    while (mm.stats().arenas < 2) hold.push(mm.allocSize(4096));
    for (let i = 0; i < 600; i++) hold.push(mm.allocSize(4096));
    const late = hold.slice(-600);
    ws[0].postMessage(late.slice(0, 300));
    ws[1].postMessage(late.slice(300));
    const f = new Int32Array(flag);
    while (Atomics.load(f, 1) < 2) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(f, 0, 1);
    await Promise.all(ws.map(msg));
    await Promise.all(ws.map((w) => w.terminate()));
    mm.stats(); // gives the orphans back: a slot listed twice would fail here as "already free"
    for (const b of hold.slice(0, -600)) mm.free(b);
    mm.free(first);
    assert.is(mm.coreOut(32), mm.stats().classes[32].cached, `round ${round}: every 4 KiB slot not cached here is back in the arenas`);
    assert.is(mm.stats().classes[32].inUse, 0);
    mm.terminate();
  }
});

test('an arena one realm closes is dropped by the others, and their allocations go elsewhere', async () => {
  const mm = new MMSA({ name: 'drop', arenaSize: 2 << 20, housekeeping: false, env: {} });
  mm.init();
  const keep = mm.allocSize(128);
  const desc = mm.share();
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/arenas.ts', import.meta.url).href, desc },
  });
  const ask = (m: string) => new Promise<unknown>((r, j) => { w.once('message', r); w.once('error', j); w.postMessage(m); });
  await new Promise((r) => w.once('message', r)); // ready
  const held: Uint8Array[] = [];
  while (mm.stats().arenas < 3) held.push(mm.allocSize(65536));
  await new Promise((r) => setTimeout(r, 50)); // announcements
  assert.is(await ask('count'), 3, 'the worker adopted the new arenas');
  held.forEach((b) => mm.free(b));
  const r = mm.freeMem({ totally: true });
  assert.is(r.dropped, 2, 'the two arenas with nothing out');
  assert.is(r.arenas, 1);
  await new Promise((res) => setTimeout(res, 50)); // the {drop} messages
  assert.is(await ask('count'), 1, 'the worker let go of them too');
  assert.is(await ask('alloc'), 1, 'and allocates in the open arena');
  await ask('end');
  await w.terminate();
  mm.free(keep);
  mm.terminate();
});

test('a realm that frees eagerly never closes an arena another realm has just made', async () => {
  const mm = new MMSA({ name: 'fresh', arenaSize: 1 << 20, housekeeping: false, env: {} });
  mm.init();
  const keep = mm.allocSize(128);
  const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/trimmer.ts', import.meta.url).href, desc: mm.share() },
  });
  try {
    await new Promise((r) => w.once('message', r));
    const held: Uint8Array[] = [];
    // A new 1 MiB arena every 15 buffers, each announced to the trimmer while this loop runs on.
    for (let i = 0; i < 4000; i++) held.push(mm.allocSize(65536));
    assert.ok(mm.stats().arenas >= 250, 'every allocation succeeded');
    held.forEach((b) => mm.free(b));
    w.postMessage('stop');
    await new Promise((r) => w.once('message', r));
  } finally {
    await w.terminate();
    mm.free(keep);
    mm.terminate();
  }
});

test('realms linked only by ports (no BroadcastChannel, as in browsers) learn arenas through the sharer', async () => {
  const g = globalThis as { BroadcastChannel?: unknown };
  const saved = g.BroadcastChannel;
  g.BroadcastChannel = undefined; // this realm has none; the workers close theirs
  const mm = new MMSA({ name: 'linked', arenaSize: 1 << 20, housekeeping: false, env: {} });
  const start = (desc: unknown) => new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { entry: new URL('./fixtures/linked.ts', import.meta.url).href, desc, grow: 3 },
  });
  const reply = (w: Worker, m?: string) => new Promise<unknown>((res, rej) => {
    const on = (d: unknown) => { if (typeof d === 'number' || typeof d === 'string') { w.off('message', on); res(d); } };
    w.on('message', on);
    w.once('error', rej);
    if (m !== undefined) w.postMessage(m);
  });
  let a: Worker | undefined;
  let b: Worker | undefined;
  try {
    mm.init();
    const desc = mm.share();
    a = start(desc);
    b = start(desc);
    const ready = [reply(a), reply(b)];
    mm.share(a); // link each worker's port
    mm.share(b);
    await Promise.all(ready);
    assert.is(await reply(a, 'alloc'), 3, 'worker a made three arenas');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(await reply(b, 'count'), 3, 'worker b heard of them: relayed by the sharer over the ports');
    assert.is(mm.stats().arenas, 3);
    await reply(a, 'free');
    await reply(a, 'end');
    await reply(b, 'end');
    const r = mm.freeMem({ totally: true });
    assert.is(r.dropped, 3, 'the sharer holds their memories: it can close and drop them');
  } finally {
    g.BroadcastChannel = saved;
    await a?.terminate();
    await b?.terminate();
    mm.terminate();
  }
});

test.run();
