// Streams glue for SGLs, browser-safe: what an SGL reads from (Node Readables, WHATWG
// ReadableStreams, (async) iterables) and writes to (Node Writables, WHATWG WritableStreams), with
// back-pressure. Node's own stream classes are built in node/streams.ts; here a Node stream is
// recognised by its methods, so this file imports nothing from Node.

import { MemsysError, invalidArg } from '../errors.js';

// What the stream glue writes into (an SGL).
/** @internal */
export interface ByteWriter {
  write(chunk: ArrayBufferView | ArrayBufferLike): number;
  writeString(s: string): number;
  room(max: number): Uint8Array;
  rooms(max: number): Uint8Array[];
  commit(n: number): void;
  trim(): void;
  pin(): void;
  unpin(): void;
}

/** A chunk an SGL takes in: bytes (a view or an ArrayBuffer, copied in) or a string (as UTF-8). */
export type ByteChunk = ArrayBufferView | ArrayBufferLike | string;
/** A file sgl.readFrom() reads into the SGL's buffers: Node's FileHandle (`fs/promises` open()),
 * or anything with its `fd` and its `read(buffer, offset, length, position)`. When it has
 * `readv(buffers)`, each call reads into the room of every buffer the SGL holds (up to 1024), so an
 * SGL sized up front (`mm.newSGL(size)`) fills in one call; else a buffer a call. */
export interface FileSource {
  readonly fd: number;
  read(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesRead: number }>;
  readv?(buffers: Uint8Array[]): Promise<{ bytesRead: number }>;
}
/** What sgl.readFrom() reads: a Node Readable (an async iterable), a WHATWG ReadableStream, any
 * (async) iterable of chunks, or a file. */
export type ByteSource = AsyncIterable<ByteChunk> | Iterable<ByteChunk> | ReadableStream<ByteChunk> | FileSource;

/** The subset of a Node Writable that writeTo uses, recognised by these methods (so that the
 * browser-safe code needs no Node types). */
export interface NodeWritableLike {
  /** Writes `chunk`; false asks the writer to wait for 'drain'. */
  write(chunk: Uint8Array, cb: (err?: Error | null) => void): boolean;
  /** Listens for 'drain', 'error' and 'close'. */
  on(event: string, fn: (...a: unknown[]) => void): unknown;
  /** Stops listening. */
  removeListener(event: string, fn: (...a: unknown[]) => void): unknown;
}
/** What sgl.writeTo() and writeAllTo() write to: a Node Writable or a WHATWG WritableStream. */
export type ByteSink = NodeWritableLike | WritableStream<Uint8Array>;

/** Options of the chunk readers (writeTo, writeAllTo, toReadableStream, toReadable). Options
 * that are not an object, or a `copy` that is not a boolean, throw ERR_MEMSYS_INVALID_ARG. */
export interface ChunkOptions {
  /** Hand out copies instead of views of the SGL's buffers, for consumers that keep chunks after
   * the SGL is freed, reset or written over. Default false. */
  copy?: boolean;
}

/** Options of `writeTo` and `writeAllTo`: the chunk options, and how far they may run ahead of
 * the destination. */
export interface WriteOptions extends ChunkOptions {
  /** Bytes they may hand to the destination beyond what it says it accepts: they keep taking
   * chunks while the bytes handed over and not yet processed (a Node Writable's write callbacks, a
   * WritableStream's write promises) are at most this. Default 0: a chunk is taken only when the
   * destination accepts more. The chunks are views, so a window costs no memory, only the
   * destination's queue entries; `Infinity` hands every chunk over at once (a response body goes
   * to the socket in one writev instead of a wait for 'drain' per chunk). Chunks handed over are
   * consumed even if the destination fails before it processed them. A non-negative number of
   * bytes, or Infinity; anything else throws ERR_MEMSYS_INVALID_ARG. */
  window?: number;
}

type Next = () => Uint8Array | undefined;

// ---- sources -------------------------------------------------------------------------------------

/** @internal */
export function fillFrom(sgl: ByteWriter, source: ByteSource): Promise<number> {
  const put = (c: ByteChunk) => (typeof c === 'string' ? sgl.writeString(c) : sgl.write(c));
  const s = source as unknown as Record<PropertyKey, unknown>;
  if (isReadableStream(source)) return fromReader(source.getReader(), put);
  if (s !== null && typeof s === 'object' && typeof s[Symbol.asyncIterator] === 'function') {
    return fromAsync(source as AsyncIterable<ByteChunk>, put);
  }
  if (s !== null && typeof s === 'object' && typeof s[Symbol.iterator] === 'function' && !ArrayBuffer.isView(s)) {
    let n = 0;
    for (const c of source as Iterable<ByteChunk>) n += put(c);
    return Promise.resolve(n);
  }
  if (s !== null && typeof s === 'object' && typeof s.read === 'function' && typeof s.fd === 'number') return fromFile(sgl, source as FileSource);
  throw invalidArg('source', source, 'must be a Node Readable, a ReadableStream, an (async) iterable of byte chunks, or a FileHandle');
}

// A file's reads go straight into the room at the SGL's end: with readv, into all the buffers it
// holds (for Node's FileHandle one trip to the thread pool for them all), else a buffer a call.
async function fromFile(sgl: ByteWriter, f: FileSource): Promise<number> {
  let n = 0;
  for (;;) {
    const rooms = f.readv ? sgl.rooms(IOV_MAX) : undefined;
    const room = rooms ? undefined : sgl.room(Infinity);
    let got: number;
    sgl.pin();
    try {
      ({ bytesRead: got } = await (rooms ? f.readv!(rooms) : f.read(room!, 0, room!.length, null)));
    } finally {
      sgl.unpin();
    }
    sgl.commit(got);   // at the end too (0 bytes): a freed SGL rejects
    if (got === 0) {
      sgl.trim();
      return n;
    }
    n += got;
  }
}

// The most buffers one readv(2) takes on Linux and macOS: libuv reads no more a call, so a longer
// list would only read short.
const IOV_MAX = 1024;

async function fromReader(r: ReadableStreamDefaultReader<ByteChunk>, put: (c: ByteChunk) => number): Promise<number> {
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await r.read();
      if (done) return n;
      n += put(value);
    }
  } catch (e) {
    await r.cancel(e).catch(() => {});
    throw e;
  } finally {
    r.releaseLock();
  }
}

async function fromAsync(src: AsyncIterable<ByteChunk>, put: (c: ByteChunk) => number): Promise<number> {
  let n = 0;
  for await (const c of src) n += put(c);
  return n;
}

// ---- sinks ---------------------------------------------------------------------------------------

// Writes the chunks `next` yields to `dest`. A chunk is taken from the SGL only when `dest` can
// accept it, so a failed or stalled write leaves the rest unread. Resolves once `dest` has
// processed the last chunk: after that, the views it was given are no longer needed by it.
// With a window (WriteOptions), chunks keep being taken past the destination's refusal while the
// bytes it has not processed stay within it.
/** @internal */
export function drainTo(dest: ByteSink, next: Next, opts: WriteOptions): Promise<number> {
  const copy = copyOption(opts);
  const window = windowOption(opts);
  const take: Next = copy ? () => next()?.slice() : next;
  if (isWritableStream(dest)) return drainWeb(dest, take, window);
  const d = dest as unknown as Record<string, unknown>;
  if (d !== null && typeof d === 'object' && typeof d.write === 'function' && typeof d.on === 'function' && typeof d.removeListener === 'function') {
    return drainNode(dest as NodeWritableLike, take, window);
  }
  throw invalidArg('destination', dest, 'must be a Node Writable or a WritableStream');
}

async function drainWeb(ws: WritableStream<Uint8Array>, next: Next, window: number): Promise<number> {
  const w = ws.getWriter();
  let n = 0;
  let inFlight = 0; // bytes written whose write promise has not settled
  let last: Promise<void> | undefined;
  try {
    for (;;) {
      if (window === 0 || inFlight > window) await w.ready;
      const c = next();
      if (!c) break;
      const len = c.length;
      n += len;
      inFlight += len;
      last = w.write(c);
      // A failure surfaces through ready or the final await.
      if (window === 0) last.catch(() => {});
      else last.then(() => { inFlight -= len; }, () => {});
    }
    await last;
    return n;
  } finally {
    w.releaseLock();
  }
}

function drainNode(dest: NodeWritableLike, next: Next, window: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    let pending = 0;   // writes whose callback has not run
    let inFlight = 0;  // their bytes
    let drained = false; // next() ran dry
    let settled = false;
    // `fromWrite`: the failure came from a write callback, which runs before the stream emits that
    // 'error' (a later tick, or after an asynchronous close, as fs.WriteStream does): the listener
    // stays until the stream has emitted 'error' or 'close', or the error would kill the process.
    const onError = (e: unknown) => finish(e);
    const finish = (err?: unknown, fromWrite = false) => {
      if (settled) return;
      settled = true;
      if (!fromWrite) dest.removeListener('error', onError);
      else {
        const done = () => { dest.removeListener('error', onError); dest.removeListener('error', done); dest.removeListener('close', done); };
        dest.on('error', done);
        dest.on('close', done);
      }
      dest.removeListener('close', closed);
      dest.removeListener('drain', pump);
      if (err) reject(err); else resolve(n);
    };
    const closed = () => finish(new MemsysError('ERR_MEMSYS_STREAM', 'the destination closed before it took every chunk'));
    const done = (err?: Error | null) => {
      pending--;
      if (err) finish(err, true);
      else if (drained && pending === 0) finish();
    };
    // Runs first from here and then from 'drain': a throw (the SGL handed off meanwhile) settles
    // the promise instead of escaping from an event listener.
    function pump(): void {
      try {
        fill();
      } catch (e) {
        finish(e);
      }
    }
    function fill(): void {
      while (!settled) {
        const c = next();
        if (!c) {
          drained = true;
          if (pending === 0) finish();
          return;
        }
        const len = c.length;
        n += len;
        pending++;
        inFlight += len;
        const more = window === 0 ? dest.write(c, done) : dest.write(c, (err) => { inFlight -= len; done(err); });
        if (!more && (window === 0 || inFlight > window)) return; // 'drain' calls pump again
      }
    }
    dest.on('error', onError);
    dest.on('close', closed);
    dest.on('drain', pump);
    pump();
  });
}

// ---- WHATWG streams over an SGL ------------------------------------------------------------------

/** @internal */
export function readableStream(next: Next, opts: ChunkOptions): ReadableStream<Uint8Array> {
  const copy = copyOption(opts);
  // highWaterMark 0: a chunk is consumed only when somebody reads it.
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      const c = next();
      if (c) ctrl.enqueue(copy ? c.slice() : c);
      else ctrl.close();
    },
  }, { highWaterMark: 0 });
}

/** @internal */
export function writableStream(sgl: ByteWriter): WritableStream<ByteChunk> {
  return new WritableStream<ByteChunk>({
    write(c) {
      if (typeof c === 'string') sgl.writeString(c);
      else sgl.write(c);
    },
  });
}

// ---- helpers -------------------------------------------------------------------------------------

/** @internal The `copy` option of `opts`, checked. */
export function copyOption(opts: ChunkOptions): boolean {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
  if (opts.copy !== undefined && typeof opts.copy !== 'boolean') throw invalidArg('option copy', opts.copy, 'must be a boolean');
  return opts.copy === true;
}

/** @internal The `window` option of `opts` (WriteOptions), checked; 0 when absent. */
export function windowOption(opts: WriteOptions): number {
  const w = opts.window;
  if (w === undefined) return 0;
  if (typeof w !== 'number' || !(w >= 0)) throw invalidArg('option window', w, 'must be a non-negative number of bytes, or Infinity');
  return w;
}

function isReadableStream(v: unknown): v is ReadableStream<ByteChunk> {
  return typeof ReadableStream === 'function' && v instanceof ReadableStream;
}

function isWritableStream(v: unknown): v is WritableStream<Uint8Array> {
  return typeof WritableStream === 'function' && v instanceof WritableStream;
}
