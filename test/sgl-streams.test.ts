// SGL streams: readFrom each kind of source (a file read straight into the buffers among them), writeTo / writeAllTo with back-pressure and errors,
// WHATWG streams with pipeTo, Node streams in stream.pipeline, and a 256 MiB file through an SGL
// checked by SHA-256.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MMSA } from '../src/node/index.js';
import { inUse, pattern, throwsCode, until } from './helpers.js';

const mm = new MMSA({ name: 'streams', arenaSize: 64 << 20, env: {} });
mm.init();

function chunked(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.slice(i, i + size));
  return out;
}

// A Node Writable that keeps copies of what it is given and takes `delay` ms per chunk.
function slowSink(delay: number, hwm = 1024) {
  const got: Uint8Array[] = [];
  const w = new Writable({
    highWaterMark: hwm,
    write(c: Buffer, _e, cb) { got.push(Uint8Array.from(c)); setTimeout(cb, delay); },
  });
  return { w, got: () => Buffer.concat(got) };
}

test('readFrom: a Node Readable, a ReadableStream, an async generator, an iterable, strings', async () => {
  const data = pattern(100000, 2);
  const sources: [string, () => unknown][] = [
    ['Node Readable', () => Readable.from(chunked(data, 7000))],
    ['ReadableStream', () => new ReadableStream({ start(c) { for (const x of chunked(data, 333)) c.enqueue(x); c.close(); } })],
    ['async generator', () => (async function* () { for (const x of chunked(data, 4096)) yield x; })()],
    ['array of chunks', () => chunked(data, 65536)],
  ];
  for (const [name, make] of sources) {
    const s = mm.newSGL(0, 4096);
    assert.is(await s.readFrom(make() as Iterable<Uint8Array>), data.length, name);
    assert.equal(s.readAll(), data, name);
    assert.is(s.cap, Math.ceil(data.length / 4096) * 4096, `${name}: grew one buffer at a time`);
    s.free();
  }
  const t = mm.newSGL(0, 128);
  assert.is(await t.readFrom(Readable.from(['héllo ', 'wörld'])), 13);
  assert.is(t.nextLine(), 'héllo wörld');
  assert.is(await t.readFrom([]), 0, 'an empty source');
  t.free();
});

test('readFrom: bad sources and bad chunks are typed errors; what came before stays', async () => {
  const s = mm.newSGL(0, 128);
  for (const bad of [null, 42, 'text', new Uint8Array(4), {}]) {
    throwsCode(() => s.readFrom(bad as never), 'ERR_MEMSYS_INVALID_ARG', 'source', 'iterable');
  }
  let err: { code?: string } | undefined;
  try {
    await s.readFrom((async function* () { yield new Uint8Array([1, 2]); yield 7 as unknown as Uint8Array; })());
  } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'ERR_MEMSYS_INVALID_ARG');
  assert.equal([...s.readAll()], [1, 2], 'the chunks before the bad one are kept');
  // A ReadableStream that fails: the error comes through, the stream is released.
  const rs = new ReadableStream({ pull(c) { c.error(new Error('source broke')); } });
  let msg = '';
  try { await s.readFrom(rs); } catch (e) { msg = (e as Error).message; }
  assert.is(msg, 'source broke');
  assert.is(rs.locked, false);
  s.free();
});

test('writeTo: a Node Writable gets every byte in order; back-pressure limits what is taken', async () => {
  const data = pattern(300000, 3);
  const s = mm.newSGL(0, 16384);
  s.write(data);
  s.read(new Uint8Array(1000));
  // A sink that holds every write's callback until it is opened: while held, write() returns
  // false after the first chunk (highWaterMark 1 byte) and writeTo must take nothing more.
  const got: Uint8Array[] = [];
  const held: (() => void)[] = [];
  let open = false;
  const w = new Writable({
    highWaterMark: 1,
    write(c: Buffer, _e, cb) { got.push(Uint8Array.from(c)); if (open) setImmediate(cb); else held.push(() => cb()); },
  });
  const p = s.writeTo(w);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.is(got.length, 1, 'one chunk taken while the sink is full');
  assert.is(s.len, data.length - 16384, 'the rest is still unread');
  open = true;
  held.splice(0).forEach((f) => f());
  assert.is(await p, data.length - 1000);
  assert.equal(Buffer.concat(got), Buffer.from(data.subarray(1000)));
  assert.is(s.len, 0, 'consumed');
  assert.is(s.size, data.length);
  assert.is(w.writableEnded, false, 'the destination is not ended');
  // writeAllTo: from offset 0, offset untouched.
  s.rewind();
  s.read(new Uint8Array(5));
  const second = slowSink(0, 65536);
  assert.is(await s.writeAllTo(second.w), data.length);
  assert.equal(second.got(), Buffer.from(data));
  assert.is(s.offset, 5);
  s.free();
});

test('writeTo with a window takes chunks past a full destination, up to the window', async () => {
  const data = pattern(200000, 5);
  // A sink that holds every write's callback until released, and refuses more after the first
  // chunk (highWaterMark 1 byte): what writeTo takes from the SGL is what its window allows (the
  // Writable queues what it took beyond the first, unprocessed).
  const heldSink = () => {
    const got: Uint8Array[] = [];
    const held: (() => void)[] = [];
    const w = new Writable({ highWaterMark: 1, write(c: Buffer, _e, cb) { got.push(Uint8Array.from(c)); held.push(() => cb()); } });
    const release = () => { for (let f; (f = held.shift());) f(); };
    return { w, got, held, release };
  };
  const turns = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };
  for (const [window, taken] of [[40000, 3], [Infinity, Math.ceil(data.length / 16384)]] as const) {
    const s = mm.newSGL(0, 16384);
    s.write(data);
    const k = heldSink();
    const p = s.writeTo(k.w, { window });
    await turns();
    assert.is(k.got.length, 1, `window ${window}: one chunk processed`);
    assert.is(s.len, Math.max(0, data.length - taken * 16384), `window ${window}: ${taken} chunks taken, the rest unread`);
    // Released callbacks let 'drain' come, and the rest follows.
    for (let i = 0; i < 100 && s.len + k.held.length > 0; i++) { k.release(); await turns(); }
    assert.is(await p, data.length);
    assert.equal(Buffer.concat(k.got), Buffer.from(data));
    s.free();
  }
  // A WritableStream: with window Infinity every chunk is written before the first write finishes.
  const s = mm.newSGL(0, 16384);
  s.write(data);
  const got: Uint8Array[] = [];
  let gate!: () => void;
  const opened = new Promise<void>((r) => { gate = r; });
  const ws = new WritableStream<Uint8Array>({ async write(c) { got.push(c.slice()); await opened; } }, { highWaterMark: 1 });
  const p = s.writeTo(ws, { window: Infinity });
  await turns();
  assert.is(s.len, 0, 'every chunk handed to the writer');
  gate();
  assert.is(await p, data.length);
  assert.equal(Buffer.concat(got), Buffer.from(data));
  for (const bad of [-1, NaN, '1', null]) throwsCode(() => s.writeTo(new PassThrough(), { window: bad as never }), 'ERR_MEMSYS_INVALID_ARG', 'option window');
  s.free();
});

test('writeTo: a destination that fails rejects with its error and leaves the rest unread', async () => {
  const s = mm.newSGL(0, 4096);
  s.write(pattern(40960));
  let n = 0;
  const w = new Writable({
    write(_c, _e, cb) { n++; cb(n === 3 ? new Error('disk full') : null); },
  });
  w.on('error', () => {});
  let msg = '';
  try { await s.writeTo(w); } catch (e) { msg = (e as Error).message; }
  assert.is(msg, 'disk full');
  assert.ok(s.len > 0 && s.len <= 40960 - 3 * 4096, `unread bytes kept (${s.len})`);
  // A destroyed stream: rejected, not hung.
  const d = new PassThrough();
  d.destroy();
  let code = '';
  try { await s.writeTo(d); } catch (e) { code = (e as { code?: string }).code ?? (e as Error).message; }
  assert.ok(code !== '', 'rejected');
  throwsCode(() => s.writeTo({} as never), 'ERR_MEMSYS_INVALID_ARG', 'destination', 'Writable');
  throwsCode(() => s.writeTo(new PassThrough(), { copy: 1 } as never), 'ERR_MEMSYS_INVALID_ARG', 'option copy 1');
  s.free();
});

test('writeTo rejects, and nothing escapes, when the SGL is handed off while it waits for drain', async () => {
  const s = mm.newSGL(0, 4096);
  s.write(new Uint8Array(64 * 1024));
  const dest = new Writable({ highWaterMark: 4096, write(_c, _e, cb) { setTimeout(cb, 5); } });
  const p = s.writeTo(dest).then(() => 'resolved', (e) => (e as { code: string }).code);
  await new Promise((r) => setTimeout(r, 1));
  const h = s.handoff();
  assert.is(await p, 'ERR_MEMSYS_MOVED');
  mm.receive(h).free();
});

test('WHATWG: toReadableStream pipes to a WritableStream, toWritableStream is a pipeTo target', async () => {
  const data = pattern(50000, 4);
  const src = mm.newSGL(0, 4096);
  src.write(data);
  const dst = mm.newSGL(0, 128);
  await src.toReadableStream().pipeTo(dst.toWritableStream());
  assert.equal(dst.readAll(), data);
  assert.is(src.len, 0, 'the readable consumed the source');
  // A WritableStream as writeTo's destination, with a slow sink.
  const got: Uint8Array[] = [];
  const ws = new WritableStream<Uint8Array>({ async write(c) { got.push(c.slice()); await new Promise((r) => setTimeout(r, 1)); } }, { highWaterMark: 2 });
  src.rewind();
  assert.is(await src.writeTo(ws), data.length);
  assert.equal(Buffer.concat(got), Buffer.from(data));
  // Strings into the writable stream.
  const t = mm.newSGL(0, 128);
  const tw = t.toWritableStream().getWriter();
  await tw.write('line one\n');
  await tw.write(new Uint8Array([0x6f, 0x6b]));
  await tw.close();
  assert.is(t.nextLine(), 'line one');
  assert.is(t.nextLine(), 'ok');
  src.free(); dst.free(); t.free();
});

test('chunks are views of the SGL unless copy is asked for', async () => {
  const s = mm.newSGL(0, 4096);
  s.write(pattern(10000));
  const views: Uint8Array[] = [];
  for await (const c of s) views.push(c);
  assert.equal(views.map((c) => c.length), [4096, 4096, 1808]);
  assert.ok(views[0].buffer === s.bytes().buffer || views[0].buffer instanceof SharedArrayBuffer, 'a view of arena memory');
  s.rewind();
  const reader = s.toReadableStream({ copy: true }).getReader();
  const first = (await reader.read()).value!;
  assert.ok(first.buffer instanceof ArrayBuffer && !(first.buffer instanceof SharedArrayBuffer), 'a private copy');
  first[0] ^= 0xff;
  assert.is.not(s.readAll()[0], first[0]);
  reader.releaseLock();
  s.free();
});

test('Node streams: toReadable and toWritable in stream.pipeline', async () => {
  const data = pattern(200000, 5);
  const a = mm.newSGL(0, 8192);
  await pipeline(Readable.from(chunked(data, 10000)), a.toWritable());
  assert.equal(a.readAll(), data);
  const b = mm.newSGL(0, 128);
  await pipeline(a.toReadable(), new PassThrough(), b.toWritable());
  assert.equal(b.readAll(), data);
  const h = createHash('sha256');
  b.rewind();
  await pipeline(b.toReadable({ copy: true }), h);
  assert.is(h.digest('hex'), createHash('sha256').update(data).digest('hex'));
  a.free(); b.free();
  assert.is(inUse(mm), 0);
});

test('without memsys/node, toReadable and toWritable say where Node streams are', () => {
  const code = `import { MMSA } from './build/index.js';
    const mm = new MMSA({ name: 'x', env: {} }); mm.init();
    const s = mm.newSGL();
    for (const f of ['toReadable', 'toWritable']) { try { s[f](); console.log('no error'); } catch (e) { console.log(e.code, e.message); } }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2);
  for (const l of lines) assert.match(l, /^ERR_MEMSYS_UNSUPPORTED .*memsys\/node/);
});

test('readFrom a FileHandle: straight into the buffers, from its position to its end, no spare buffer kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memsys-file-'));
  try {
    for (const [n, bs] of [[0, 4096], [1, 4096], [4096, 4096], [3 * 4096, 4096], [1_000_003, 131072]] as const) {
      const data = pattern(n, n & 255);
      const file = join(dir, `f${n}`);
      writeFileSync(file, data);
      const fh = await open(file);
      const sgl = mm.newSGL(0, bs);
      try {
        assert.is(await sgl.readFrom(fh), n, `${n} bytes`);
        assert.is(sgl.size, n);
        assert.is(sgl.cap, Math.ceil(n / bs) * bs, `${n} bytes: the buffer taken for the read that found the end is given back`);
        assert.equal(sgl.readAll(), data);
      } finally {
        sgl.free();
        await fh.close();
      }
    }
    // From the handle's position on, appended to what the SGL holds.
    const file = join(dir, 'f1000003');
    const fh = await open(file);
    await fh.read(new Uint8Array(10), 0, 10, null);
    const sgl = mm.newSGL(0, 4096);
    sgl.write(new Uint8Array([1, 2, 3]));
    assert.is(await sgl.readFrom(fh), 1_000_003 - 10);
    assert.is(sgl.size, 1_000_003 - 10 + 3);
    assert.equal([...sgl.bytes().subarray(0, 4)], [1, 2, 3, pattern(1_000_003, 1_000_003 & 255)[10]]);
    sgl.free();
    await fh.close();
    // A body sized up front: one readv fills every buffer, one more (into a buffer added for it,
    // given back) finds the end; readv takes at most 1024 buffers a call.
    for (const [n, bs, want] of [[1 << 20, 131072, [8, 1]], [1025 * 4096, 4096, [1024, 1, 1]]] as const) {
      const data = pattern(n, 3);
      const f = join(dir, `sized${n}`);
      writeFileSync(f, data);
      const fh2 = await open(f);
      const calls: number[] = [];
      const spy = { fd: fh2.fd, read: fh2.read.bind(fh2), readv: (b: Uint8Array[]) => { calls.push(b.length); return fh2.readv(b); } };
      const sized = mm.newSGL(n, bs);
      try {
        assert.is(await sized.readFrom(spy), n);
        assert.equal(calls, want);
        assert.is(sized.cap, n, `${n} bytes: the buffer of the read that found the end is given back`);
        assert.equal(sized.readAll(), data);
      } finally {
        sized.free();
        await fh2.close();
      }
    }
    assert.is(inUse(mm), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readFrom a file through readv: freed while the read is in flight, every buffer under it waits for the read', async () => {
  let release!: () => void;
  const slow = {
    fd: 96,
    read: () => Promise.reject(new Error('readv is there')),
    readv(bufs: Uint8Array[]) {
      return new Promise<{ bytesRead: number }>((r) => { release = () => { for (const b of bufs) b.fill(7); r({ bytesRead: bufs.reduce((k, b) => k + b.length, 0) }); }; });
    },
  };
  const sgl = mm.newSGL(3 * 4096, 4096);
  sgl.write(new Uint8Array(100));
  const reading = sgl.readFrom(slow);
  await new Promise((r) => setTimeout(r, 5));
  sgl.free();
  assert.is(inUse(mm), 3, 'the three buffers under the read stay out of the slab');
  release();
  let err: { code?: string } | undefined;
  try { await reading; } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'ERR_MEMSYS_SGL_FREED');
  assert.is(inUse(mm), 0, 'given back once the read ended');
});

test('readFrom a file through readv: short reads go on where they ended; a failing readv rejects and keeps what was read', async () => {
  const data = pattern(3 * 4096 + 10, 5);
  let at = 0;
  const calls: number[] = [];
  const short = {
    fd: 95,
    read: () => Promise.reject(new Error('readv is there')),
    async readv(bufs: Uint8Array[]) {
      calls.push(bufs.length);
      if (calls.length === 3) throw Object.assign(new Error('EIO'), { code: 'EIO' });
      let n = 0;
      for (const b of bufs) { // at most 5000 bytes a call
        const k = Math.min(b.length, 5000 - n, data.length - at);
        b.set(data.subarray(at, at + k));
        at += k;
        n += k;
        if (n === 5000) break;
      }
      return { bytesRead: n };
    },
  };
  const sgl = mm.newSGL(data.length, 4096);
  let err: { code?: string } | undefined;
  try { await sgl.readFrom(short); } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'EIO');
  assert.equal(calls, [4, 3, 2], 'each call reads into the room of the buffers left');
  assert.equal(sgl.readAll(), data.subarray(0, 2 * 5000), 'what the calls before read stays');
  sgl.free();
  assert.is(inUse(mm), 0);
});

test('readFrom a file: freed while a read is in flight, the buffers wait for the read; a failing read rejects', async () => {
  // A file whose read is held until released: the read's buffer must not go back to the slab
  // (and to another SGL) while the read may still write into it.
  let release!: () => void;
  let target: Uint8Array | undefined;
  const slow = {
    fd: 99,
    read(buf: Uint8Array, off: number, len: number) {
      target = buf;
      return new Promise<{ bytesRead: number }>((r) => { release = () => { buf.fill(7, off, off + len); r({ bytesRead: len }); }; });
    },
  };
  const sgl = mm.newSGL(0, 4096);
  const reading = sgl.readFrom(slow);
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(target && target.length === 4096);
  throwsCode(() => sgl.handoff(), 'ERR_MEMSYS_STATE', 'in flight');
  sgl.free();
  assert.is(inUse(mm), 1, 'the buffer under the read stays out of the slab');
  const other = mm.newSGL(4096, 4096);
  other.write(new Uint8Array(4096));
  release();
  let err: { code?: string } | undefined;
  try { await reading; } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'ERR_MEMSYS_SGL_FREED');
  assert.is(inUse(mm), 1, 'given back once the read ended');
  assert.equal([other.size, [...other.bytes()].filter((b) => b === 7).length], [4096, 0], 'the other SGL did not get the late bytes');
  other.free();

  const broken = { fd: 98, read: () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' })) };
  const s2 = mm.newSGL(0, 4096);
  s2.write(new Uint8Array([5]));
  err = undefined;
  try { await s2.readFrom(broken); } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'EIO');
  assert.equal([...s2.readAll()], [5], 'what was there stays');
  s2.free();
  assert.is(inUse(mm), 0);
});

// A file whose every read is held until the test releases it, with what it then reads.
function heldFile(): { fd: number; read(buf: Uint8Array, off: number, len: number): Promise<{ bytesRead: number }>; release(bytes: number): void; reads: number } {
  let pending: ((n: number) => void) | undefined;
  const f = {
    fd: 97,
    reads: 0,
    read(buf: Uint8Array, off: number, len: number) {
      f.reads++;
      return new Promise<{ bytesRead: number }>((r) => { pending = (n) => { buf.fill(9, off, off + Math.min(n, len)); r({ bytesRead: Math.min(n, len) }); }; });
    },
    release(n: number) {
      const p = pending!;
      pending = undefined;
      p(n);
    },
  };
  return f;
}

test('readFrom a file: while a read is in flight, appending and reset are refused (ERR_MEMSYS_STATE) and leave the bytes alone', async () => {
  const f = heldFile();
  const sgl = mm.newSGL(0, 4096);
  sgl.write(new Uint8Array([1, 2, 3]));
  const reading = sgl.readFrom(f);
  await until(() => f.reads === 1, 'the first read began');
  throwsCode(() => sgl.write(new Uint8Array([4])), 'ERR_MEMSYS_STATE', 'write', 'in flight');
  throwsCode(() => sgl.writeByte(4), 'ERR_MEMSYS_STATE', 'writeByte', 'in flight');
  throwsCode(() => sgl.writeString('x'), 'ERR_MEMSYS_STATE', 'writeString', 'in flight');
  throwsCode(() => sgl.reset(), 'ERR_MEMSYS_STATE', 'reset', 'in flight');
  throwsCode(() => sgl.readFrom(heldFile()), 'ERR_MEMSYS_STATE', 'readFrom', 'in flight');
  assert.is(sgl.writeAt(new Uint8Array([8]), 0), 1, 'overwriting bytes already written is not appending');
  f.release(5000);
  await until(() => f.reads === 2, 'the second read began');
  f.release(0);
  assert.is(await reading, 4093);
  const all = sgl.readAll();
  assert.equal([sgl.size, ...all.subarray(0, 3)], [3 + 4093, 8, 2, 3]);
  assert.ok(all.subarray(3).every((b) => b === 9), "the file's bytes follow, whole");
  sgl.write(new Uint8Array([4]));
  assert.is(sgl.size, 4097, 'appending works again once the read ended');
  sgl.free();
  assert.is(inUse(mm), 0);
});

test('readFrom a file: freed while the read that finds the end is in flight, it rejects with ERR_MEMSYS_SGL_FREED', async () => {
  const f = heldFile();
  const sgl = mm.newSGL(0, 4096);
  const reading = sgl.readFrom(f);
  await until(() => f.reads === 1, 'the read began');
  sgl.free();
  f.release(0);
  let err: { code?: string } | undefined;
  try { await reading; } catch (e) { err = e as { code?: string }; }
  assert.is(err?.code, 'ERR_MEMSYS_SGL_FREED');
  assert.is(inUse(mm), 0);
});

test('a 256 MiB file streams into an SGL and out again with the same SHA-256', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memsys-sgl-'));
  try {
    const file = join(dir, 'in.bin');
    const out = join(dir, 'out.bin');
    const total = 256 << 20;
    const block = pattern(1 << 20, 9);
    const want = createHash('sha256');
    await pipeline(
      (function* () { for (let i = 0; i < total >> 20; i++) { block[0] = i; want.update(block); yield Buffer.from(block); } })(),
      createWriteStream(file),
    );
    assert.is(statSync(file).size, total);
    const sgl = mm.newSGL(total);
    assert.is(sgl.slab.size, 131072);
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), sgl.toWritable());
    assert.is(sgl.size, total);
    assert.is(sgl.cap, total, 'preallocated exactly');
    const got = createHash('sha256');
    await pipeline(sgl.toReadable(), new PassThrough(), createWriteStream(out));
    for await (const c of createReadStream(out)) got.update(c as Buffer);
    assert.is(got.digest('hex'), want.digest('hex'));
    sgl.free();
    assert.is(inUse(mm), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
