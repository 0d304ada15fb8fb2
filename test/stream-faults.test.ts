// Streams that fail: every path into and out of an SGL (Node and WHATWG, both directions) rejects
// or errors cleanly, never by an unhandled 'error' event, and leaves the SGL usable (or freed, by
// its owner) with what it had.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWriteStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MMSA, type SGL } from '../src/node/index.js';
import { inUse, pattern } from './helpers.js';

const mm = new MMSA({ name: 'faults', arenaSize: 16 << 20, env: {}, housekeeping: false });
mm.init();
const data = pattern(200_000);

function filled(): SGL {
  const sgl = mm.newSGL(0, 4096);
  sgl.write(data);
  return sgl;
}

// Runs fn and reports what escaped as an uncaught exception or an unhandled rejection meanwhile
// (and for two macrotasks after).
async function escapes(fn: () => Promise<unknown>): Promise<{ result: unknown; escaped: unknown[] }> {
  const escaped: unknown[] = [];
  const onErr = (e: unknown) => escaped.push(e);
  const mocha = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  let result: unknown;
  try {
    result = await fn().then((v) => ({ ok: v }), (e) => ({ err: e }));
    await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
  } finally {
    process.removeListener('uncaughtException', onErr);
    process.removeListener('unhandledRejection', onErr);
    for (const l of mocha) process.on('uncaughtException', l);
  }
  return { result, escaped };
}

const errOf = (r: unknown) => (r as { err?: Error }).err;

// The SGL still works: its unread bytes read back as the tail of `data`.
function usable(sgl: SGL): void {
  const rest = sgl.len;
  const out = new Uint8Array(rest);
  assert.is(sgl.read(out), rest);
  assert.equal(out, data.subarray(data.length - rest));
  sgl.write(data.subarray(0, 10));
  assert.is(sgl.len, 10);
  sgl.free();
}

for (const autoDestroy of [true, false]) {
  test(`writeTo a Node Writable whose write callback fails (autoDestroy ${autoDestroy}): rejects, nothing escapes`, async () => {
    const sgl = filled();
    const sink = new Writable({ autoDestroy, write(_c, _e, cb) { cb(new Error('sink broke')); } });
    const { result, escaped } = await escapes(() => sgl.writeTo(sink));
    assert.is(errOf(result)?.message, 'sink broke');
    assert.equal(escaped, []);
    assert.is(sgl.len, data.length - 4096, 'the chunk that failed was taken; the rest is unread');
    usable(sgl);
  });
}

test('writeTo a Node Writable that fails after some chunks, and one destroyed meanwhile', async () => {
  for (const how of ['cb', 'destroy', 'throw'] as const) {
    const sgl = filled();
    let n = 0;
    const sink: Writable = new Writable({
      highWaterMark: 4096,
      write(_c, _e, cb) {
        if (++n < 5) return void setTimeout(cb, 1);
        if (how === 'cb') cb(new Error('late'));
        else if (how === 'destroy') sink.destroy(new Error('late'));
        else throw new Error('late');
      },
    });
    const { result, escaped } = await escapes(() => sgl.writeTo(sink));
    assert.ok(errOf(result), `${how}: rejected`);
    assert.equal(escaped, [], `${how}: nothing escaped`);
    assert.ok(sgl.len > 0 && sgl.len < data.length, how);
    usable(sgl);
  }
});

test('writeTo a real failing stream (fs.WriteStream to /dev/full, which emits its error after an asynchronous close) rejects, nothing escapes', async () => {
  const sgl = filled();
  const { result, escaped } = await escapes(async () => {
    const r = await sgl.writeTo(createWriteStream('/dev/full')).then((v) => ({ ok: v }), (e) => ({ err: e }));
    await new Promise((res) => setTimeout(res, 50)); // the stream closes and emits meanwhile
    if ('err' in r) throw r.err;
    return r.ok;
  });
  assert.is((errOf(result) as { code?: string })?.code, 'ENOSPC');
  assert.equal(escaped, []);
  usable(sgl);
});

test('writeTo a Node Writable already ended or destroyed rejects', async () => {
  for (const how of ['end', 'destroy'] as const) {
    const sgl = filled();
    const sink = new Writable({ write(_c, _e, cb) { cb(); } });
    if (how === 'end') sink.end(); else sink.destroy();
    await new Promise((r) => setImmediate(r));
    const { result, escaped } = await escapes(() => sgl.writeTo(sink));
    assert.ok(errOf(result), `${how}: rejected`);
    assert.equal(escaped, [], how);
    usable(sgl);
  }
});

test('writeTo a WritableStream whose write rejects, or whose controller errors it, rejects', async () => {
  for (const how of ['reject', 'error'] as const) {
    const sgl = filled();
    let n = 0;
    let ctl: WritableStreamDefaultController | undefined;
    const ws = new WritableStream<Uint8Array>({
      start(c) { ctl = c; },
      write() {
        if (++n < 3) return;
        if (how === 'reject') throw new Error('web sink broke');
        ctl!.error(new Error('errored'));
      },
    });
    const { result, escaped } = await escapes(() => sgl.writeTo(ws));
    assert.ok(errOf(result), `${how}: rejected`);
    assert.equal(escaped, [], how);
    usable(sgl);
  }
});

test('readFrom a failing Node Readable, ReadableStream and async iterable: rejects, the SGL keeps what arrived', async () => {
  const part = data.subarray(0, 5000);
  const sources = {
    node: () => new Readable({ read() { this.push(part); this.destroy(new Error('source broke')); } }),
    web: () => new ReadableStream<Uint8Array>({ start(c) { c.enqueue(part); c.error(new Error('source broke')); } }),
    iterable: () => (async function* () { yield part; throw new Error('source broke'); })(),
  };
  for (const [name, make] of Object.entries(sources)) {
    const sgl = mm.newSGL(0, 4096);
    const { result, escaped } = await escapes(() => sgl.readFrom(make()));
    assert.is(errOf(result)?.message, 'source broke', name);
    assert.equal(escaped, [], name);
    assert.ok(sgl.len === part.length || sgl.len === 0, `${name}: ${sgl.len}`);
    sgl.free();
  }
});

test('a consumer that stops early: Node Readable destroyed, ReadableStream cancelled, iteration broken', async () => {
  for (const how of ['node', 'web', 'iter'] as const) {
    const sgl = filled();
    const { escaped } = await escapes(async () => {
      if (how === 'node') {
        const r = sgl.toReadable();
        await new Promise<void>((res) => { r.once('data', () => { r.destroy(); res(); }); });
      } else if (how === 'web') {
        const rd = sgl.toReadableStream().getReader();
        await rd.read();
        await rd.cancel();
      } else {
        for await (const _ of sgl) break;
      }
    });
    assert.equal(escaped, [], how);
    assert.ok(sgl.len < data.length, `${how}: what was read is consumed`);
    usable(sgl);
  }
});

test('writing into an SGL from a failing pipeline, and a pipeTo that is aborted', async () => {
  const sgl = mm.newSGL(0, 4096);
  const src = new Readable({ read() { this.push(data.subarray(0, 1000)); this.destroy(new Error('upstream')); } });
  const { result, escaped } = await escapes(() => pipeline(src, sgl.toWritable()));
  assert.is(errOf(result)?.message, 'upstream');
  assert.equal(escaped, []);
  sgl.free();
  const sgl2 = mm.newSGL(0, 4096);
  const ac = new AbortController();
  const web = new ReadableStream<Uint8Array>({ pull(c) { c.enqueue(data.subarray(0, 100)); if (sgl2.len > 1000) ac.abort(); } });
  const r2 = await escapes(() => web.pipeTo(sgl2.toWritableStream(), { signal: ac.signal }));
  assert.ok(errOf(r2.result), 'aborted');
  assert.equal(r2.escaped, []);
  assert.ok(sgl2.len > 1000);
  sgl2.free();
  // A freed SGL as a sink: the writes fail, the stream errors, nothing escapes.
  const sgl3 = mm.newSGL(0, 4096);
  const w = sgl3.toWritable();
  sgl3.free();
  const r3 = await escapes(() => pipeline(Readable.from([data.subarray(0, 10)]), w));
  assert.is((errOf(r3.result) as { code?: string })?.code, 'ERR_MEMSYS_SGL_FREED');
  assert.equal(r3.escaped, []);
});

test('a writeTo that fails for a reason of its own (the SGL handed off meanwhile) leaves no listener on a healthy sink', async () => {
  const sink = new Writable({ highWaterMark: 16, write(_c, _e, cb) { setTimeout(cb, 1); } });
  const before = sink.listenerCount('error') + sink.listenerCount('close');
  for (let i = 0; i < 12; i++) {
    const sgl = filled();
    const p = sgl.writeTo(sink);
    const d = sgl.handoff();
    await p.catch(() => {});
    mm.receive(d).free();
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.is(sink.listenerCount('error') + sink.listenerCount('close'), before);
});

test('after every fault above, nothing is in use', () => {
  assert.is(inUse(mm), 0);
  mm.check();
});

test.run();
