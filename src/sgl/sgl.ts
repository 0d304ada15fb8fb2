// SGL: a scatter-gather list. A growable byte sequence kept in equal-size buffers of one slab, the
// way servers hold request and response bodies without one large allocation (AIStore's SGL).
//
//   buffer i   arenas[i].u8 at offs[i] ... + bsize       (a slot of the slab's class, LIVE)
//   bytes      [ buffer 0     ][ buffer 1     ][ buffer 2     ]
//              0 ...... roff ......................... woff ...... cap
//                       |<----------- len ----------->|<- room ->|
//                       next read                     next write
//
// Byte p lives in buffer floor(p / bsize) at p % bsize. The SGL holds its buffers as slots
// (arena, offset), not as views: growing by thousands of buffers makes no object for the
// collector (a view per buffer cost ~14 ms of GC per GiB collected; bench/RESULTS.md), and slots
// come from and go back to the arenas a batch per core call. Writes copy in and grow as needed;
// reads copy out, except the chunk readers (streams, writeTo, iteration), which hand out views of
// the buffers themselves: zero-copy, valid until the SGL is freed, reset or written over.
//
// After free() every read ends (end of data) and every write throws; free() is idempotent. After
// handoff() to another worker (handoff.ts) every use throws: the bytes belong to the receiver.

import type { Arena } from '../core/arena.js';
import { MemsysError, invalidArg, show } from '../errors.js';
import type { Slab } from '../pool/slab.js';
import { type SGLHandoff, packSlots } from '../pool/tickets.js';
import { type ByteSink, type ByteSource, type ChunkOptions, type WriteOptions, drainTo, fillFrom, readableStream, writableStream } from './streams.js';

const OPEN = 0;
const FREED = 1;
const MOVED = 2;

const encoder = new TextEncoder();
// Browsers' encodeInto refuses a view of shared memory ("must not be shared", Chromium); Node
// accepts it. Probed once, where shared memory exists.
let encodesIntoShared: boolean | undefined;
function intoSharedOk(): boolean {
  if (encodesIntoShared === undefined) {
    try {
      encoder.encodeInto('', new Uint8Array(new SharedArrayBuffer(1)));
      encodesIntoShared = true;
    } catch {
      encodesIntoShared = false;
    }
  }
  return encodesIntoShared;
}
const decoder = new TextDecoder();
const NL = 10;
const CR = 13;

// The explicit resource management symbol, declared as @types/node declares it, so that these
// declarations compile in a project whose lib stops at ES2022 and has no Node types (the
// declarations merge with TypeScript's own esnext.disposable and with Node's).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/**
 * What `sgl.toReadable()` returns: a Node `Readable`. Empty in the browser-safe types, so that
 * they name no Node module; the Node entry's types (`memsys` in Node, `memsys/node`) merge Node's
 * `Readable` into it.
 */
export interface NodeReadable {}
/**
 * What `sgl.toWritable()` returns: a Node `Writable`. Empty in the browser-safe types; the Node
 * entry's types merge Node's `Writable` into it.
 */
export interface NodeWritable {}

/** @internal Node's stream classes come from memsys/node, which registers these; the core never
 * imports Node. */
export interface NodeStreamFactory {
  readable(sgl: SGL, opts: ChunkOptions): NodeReadable;
  writable(sgl: SGL): NodeWritable;
}
let nodeStreams: NodeStreamFactory | undefined;
/** @internal */
export function setNodeStreams(f: NodeStreamFactory): void {
  nodeStreams = f;
}

/**
 * A scatter-gather list: a growable byte sequence held in equal-size buffers of one slab, for
 * bodies too large or of unknown size for one buffer. Made by `mm.newSGL()`.
 *
 * Writes append and grow it a buffer at a time; reads consume from the read offset. Chunk readers
 * (`writeTo`, streams, `for await`) hand out views of the buffers themselves, valid until the SGL
 * is freed, reset or written over. After `free()` reads end and writes throw
 * ERR_MEMSYS_SGL_FREED; after `handoff()` every use throws ERR_MEMSYS_MOVED. Growing throws what
 * the MMSA's allocation throws (ERR_MEMSYS_OUT_OF_MEMORY, ERR_MEMSYS_BUDGET, ERR_MEMSYS_STATE
 * after terminate()).
 */
export class SGL implements AsyncIterable<Uint8Array> {
  /** The slab whose buffers hold the bytes; `slab.size` is the buffer size, bytes. */
  readonly slab: Slab;
  /** @internal */ arenas: Arena[] = [];
  /** @internal */ offs: number[] = [];
  /** @internal */ woff = 0;
  /** @internal */ roff = 0;
  /** @internal */ st: typeof OPEN | typeof FREED | typeof MOVED = OPEN;
  private readonly bsize: number;
  // Reads in flight into the room (a file's, the socket's): until the last ends, free() keeps the
  // buffers from the slab, since the reads may still write into them, and handoff() is refused.
  private pins = 0;
  private held: { arenas: Arena[]; offs: number[] } | undefined;

  // The published declarations keep only the `never` overload: a constructor that is stripped
  // whole would leave an implicit `new SGL()` that type-checks and then fails.
  /** @internal */
  constructor(slab: Slab);
  /** SGLs are made by `mm.newSGL()` (and `mm.receive()`), not by `new`. */
  constructor(made: never);
  constructor(slab: Slab) {
    this.slab = slab;
    this.bsize = slab.size;
  }

  /** @internal An SGL over slots received from another realm (LIVE, this realm's). */
  static received(slab: Slab, arenas: Arena[], offs: number[], extent: { woff: number; roff: number }): SGL {
    const sgl = new SGL(slab);
    sgl.arenas = arenas;
    sgl.offs = offs;
    sgl.woff = extent.woff;
    sgl.roff = extent.roff;
    return sgl;
  }

  /** Unread bytes: from the read offset to the end of what was written. */
  get len(): number { return this.woff - this.roff; }
  /** Bytes written (from offset 0), read or not. */
  get size(): number { return this.woff; }
  /** Bytes the buffers hold: the size it can reach before it takes another buffer. */
  get cap(): number { return this.offs.length * this.bsize; }
  /** The read offset, bytes from the start. */
  get offset(): number { return this.roff; }
  /** True once free() was called (or the SGL was handed off). */
  get freed(): boolean { return this.st !== OPEN; }

  // ---- writing -----------------------------------------------------------------------------------

  /** Appends `chunk` (copied in), growing one buffer at a time. Returns the bytes written. Throws
   * ERR_MEMSYS_INVALID_ARG for anything but an ArrayBufferView or (Shared)ArrayBuffer. */
  write(chunk: ArrayBufferView | ArrayBufferLike): number {
    this.appendable('write');
    const src = bytesOf(chunk, 'chunk');
    const n = src.length;
    if (n === 0) return 0;
    this.grow(this.woff + n);
    this.copyIn(src, this.woff);
    this.woff += n;
    return n;
  }

  /** Appends one byte. Throws ERR_MEMSYS_INVALID_ARG unless `b` is an integer 0 … 255. */
  writeByte(b: number): void {
    this.appendable('writeByte');
    if (!Number.isInteger(b) || b < 0 || b > 255) throw invalidArg('byte', b, 'must be an integer 0 … 255');
    if (this.woff === this.cap) this.grow(this.woff + 1);
    const i = (this.woff / this.bsize) | 0;
    this.arenas[i].u8[this.offs[i] + this.woff - i * this.bsize] = b;
    this.woff++;
  }

  /** Appends `s` as UTF-8. Returns the bytes written (not the string's length). */
  writeString(s: string): number {
    this.appendable('writeString');
    if (typeof s !== 'string') throw invalidArg('string', s, 'must be a string');
    if (s.length === 0) return 0;
    // Encode straight into the last buffer when the worst case (3 bytes per UTF-16 unit) fits;
    // otherwise encode once and copy, so that a character is never split by a buffer boundary
    // (encodeInto stops short of one, which would leave a gap).
    const at = this.woff % this.bsize;
    if (this.woff < this.cap && at + s.length * 3 <= this.bsize) {
      const i = (this.woff / this.bsize) | 0;
      if (this.arenas[i].shared && !intoSharedOk()) return this.write(encoder.encode(s));
      const { written } = encoder.encodeInto(s, this.arenas[i].u8.subarray(this.offs[i] + at, this.offs[i] + this.bsize));
      this.woff += written;
      return written;
    }
    return this.write(encoder.encode(s));
  }

  /** Overwrites bytes already written, at byte offset `off` (the read offset does not matter);
   * never grows. Returns the bytes written. Throws ERR_MEMSYS_INVALID_ARG when they would not all
   * lie within the bytes written. */
  writeAt(chunk: ArrayBufferView | ArrayBufferLike, off: number): number {
    this.writable('writeAt');
    const src = bytesOf(chunk, 'chunk');
    if (!Number.isSafeInteger(off) || off < 0 || off + src.length > this.woff) {
      throw new MemsysError('ERR_MEMSYS_INVALID_ARG',
        `writeAt offset ${show(off)} with ${src.length} bytes must lie within the ${this.woff} bytes written`);
    }
    this.copyIn(src, off);
    return src.length;
  }

  /** Appends everything `source` yields: a Node Readable, a WHATWG ReadableStream, any (async)
   * iterable of byte chunks or strings (as UTF-8), or a file (Node's FileHandle, read from its
   * current position to its end straight into the SGL's buffers, no copy). Resolves to the bytes
   * read; rejects with the source's error (what was read before it stays written), and with
   * ERR_MEMSYS_SGL_FREED when the SGL is freed while a file read is in flight. While one is, what
   * would move the SGL's end (write, writeByte, writeString, reset, another readFrom, handoff)
   * throws ERR_MEMSYS_STATE; writeAt and reading work. */
  readFrom(source: ByteSource): Promise<number> {
    this.appendable('readFrom');
    return fillFrom(this, source);
  }

  // ---- reading -----------------------------------------------------------------------------------

  /** Copies unread bytes into `into` (as many as fit) and consumes them. Returns the count; 0 at
   * the end and after free(). */
  read(into: Uint8Array): number {
    const dst = bytesOf(into, 'into');
    if (!this.readable()) return 0;
    const n = Math.min(dst.length, this.woff - this.roff);
    this.copyOut(this.roff, this.roff + n, dst, 0);
    this.roff += n;
    return n;
  }

  /** The next byte, consumed; -1 at the end and after free(). */
  readByte(): number {
    if (!this.readable() || this.roff >= this.woff) return -1;
    return this.byteAt(this.roff++);
  }

  /** Steps the read offset back one byte. Throws ERR_MEMSYS_STATE at offset 0. */
  unreadByte(): void {
    this.usable();
    if (this.roff === 0) throw new MemsysError('ERR_MEMSYS_STATE', 'cannot unread a byte at offset 0');
    this.roff--;
  }

  /** The next line, without its "\n" and a "\r" before it, decoded as UTF-8; null at the end. A
   * last line without "\n" is returned too (less a final "\r", as Go's bufio.ScanLines does). With
   * advance false, the offset stays. The line is a copy. */
  nextLine(advance = true): string | null {
    if (!this.readable() || this.roff >= this.woff) return null;
    const bs = this.bsize;
    let end = this.woff; // the newline's position, or woff
    for (let p = this.roff; p < this.woff;) {
      const i = (p / bs) | 0;
      const base = this.offs[i];
      const k = this.arenas[i].u8.subarray(base, base + Math.min(bs, this.woff - i * bs)).indexOf(NL, p - i * bs);
      if (k >= 0) { end = i * bs + k; break; }
      p = (i + 1) * bs;
    }
    let stop = end;
    if (stop > this.roff && this.byteAt(stop - 1) === CR) stop--;
    // TextDecoder refuses views of shared memory in browsers: decode a private copy.
    const line = new Uint8Array(stop - this.roff);
    this.copyOut(this.roff, stop, line, 0);
    if (advance) this.roff = Math.min(end + 1, this.woff);
    return decoder.decode(line);
  }

  /** A copy of everything written, from offset 0 (the read offset is ignored and kept). */
  readAll(): Uint8Array {
    const out = new Uint8Array(this.readable() ? this.woff : 0);
    this.copyOut(0, out.length, out, 0);
    return out;
  }

  /** Everything written, from offset 0: a view of the first buffer (no copy) when it all lies in
   * it, else a copy. The view is valid until the SGL is freed, reset or written over. */
  bytes(): Uint8Array {
    if (this.readable() && this.offs.length > 0 && this.woff <= this.bsize) return this.arenas[0].u8.subarray(this.offs[0], this.offs[0] + this.woff);
    return this.readAll();
  }

  /** Writes the unread bytes to `dest` (a Node Writable or a WHATWG WritableStream), consuming
   * them, honouring back-pressure (up to `window` bytes ahead of it: WriteOptions), and resolves
   * to the bytes written once `dest` has taken the last chunk. Chunks are views of the SGL's
   * buffers (no copy) unless `copy`. `dest` is not ended. Rejects with the destination's error, or
   * ERR_MEMSYS_STREAM when it closes before it took every chunk; the chunks not yet taken stay
   * unread. */
  writeTo(dest: ByteSink, opts: WriteOptions = {}): Promise<number> {
    this.usable();
    return drainTo(dest, () => this.nextChunk(), opts);
  }

  /** Like writeTo, but writes everything written from offset 0 and leaves the read offset alone. */
  writeAllTo(dest: ByteSink, opts: WriteOptions = {}): Promise<number> {
    this.usable();
    let pos = 0;
    return drainTo(dest, () => {
      const c = this.chunkAt(pos);
      if (c) pos += c.length;
      return c;
    }, opts);
  }

  /** Unread bytes as chunks: views of the buffers (no copy), consumed as they are yielded. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    this.usable();
    for (let c = this.nextChunk(); c; c = this.nextChunk()) yield c;
  }

  /** A WHATWG ReadableStream of the unread bytes, consumed as they are pulled (none is read
   * ahead). Chunks are views of the buffers unless `copy`. */
  toReadableStream(opts: ChunkOptions = {}): ReadableStream<Uint8Array> {
    this.usable();
    return readableStream(() => this.nextChunk(), opts);
  }

  /** A WHATWG WritableStream that appends to this SGL; strings are written as UTF-8. */
  toWritableStream(): WritableStream<ArrayBufferView | ArrayBufferLike | string> {
    this.writable('toWritableStream');
    return writableStream(this);
  }

  /** A Node Readable of the unread bytes, consumed as they are read; chunks are views of the
   * buffers unless `copy`. Needs the Node entry (`memsys` imported in Node, or `memsys/node`):
   * elsewhere it throws ERR_MEMSYS_UNSUPPORTED (use toReadableStream). */
  toReadable(opts: ChunkOptions = {}): NodeReadable {
    this.usable();
    return this.node().readable(this, opts);
  }

  /** A Node Writable that appends to this SGL. Needs the Node entry, as toReadable does: elsewhere
   * it throws ERR_MEMSYS_UNSUPPORTED (use toWritableStream). */
  toWritable(): NodeWritable {
    this.writable('toWritable');
    return this.node().writable(this);
  }

  /** An independent reader at offset 0 over what is written, with its own offset and seek; it
   * consumes nothing of the SGL's. */
  open(): SGLReader {
    this.usable();
    return new SGLReader(this);
  }

  // ---- state -------------------------------------------------------------------------------------

  /** Moves the read offset back to 0, so that everything written reads again. */
  rewind(): void {
    this.usable();
    this.roff = 0;
  }

  /** Forgets the content (size and offset 0) and keeps the buffers for the next writes. */
  reset(): void {
    this.appendable('reset');
    this.woff = this.roff = 0;
  }

  /** Gives every buffer back to its slab. Idempotent; also a no-op after handoff(). Views it
   * handed out (chunks, bytes()) must not be used after it: the buffers are reused. */
  free(): void {
    if (this.st !== OPEN) return;
    const { arenas, offs } = this;
    this.arenas = [];
    this.offs = [];
    this.woff = this.roff = 0;
    this.st = FREED;
    if (this.pins > 0) this.held = { arenas, offs };
    else this.giveBack(arenas, offs);
  }

  private giveBack(arenas: Arena[], offs: number[]): void {
    // After terminate() the buffers went with their arenas.
    if (this.slab.pool.usable && offs.length > 0) this.slab.pool.giveSlots(this.slab, arenas, offs);
  }

  /** free(), for `using sgl = mm.newSGL()`. */
  [Symbol.dispose](): void {
    this.free();
  }

  /** Hands the SGL to another realm of the same pool: post the result, and `mm.receive()` it
   * there, once. Nothing is copied; this SGL can no longer be used. Throws ERR_MEMSYS_SGL_FREED
   * after free(), ERR_MEMSYS_STATE after the MMSA's terminate(). */
  handoff(): SGLHandoff {
    this.appendable('handoff');
    this.slab.pool.ready();
    const d = packSlots(this.slab.pool, this.slab.cls, this.arenas, this.offs, { woff: this.woff, roff: this.roff });
    const out: SGLHandoff = { kind: 'memsys.sgl', ...d, woff: this.woff, roff: this.roff };
    this.arenas = [];
    this.offs = [];
    this.woff = this.roff = 0;
    this.st = MOVED;
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** @internal The next unread chunk (a view within one buffer), consumed. */
  nextChunk(): Uint8Array | undefined {
    if (!this.readable()) return undefined;
    const c = this.chunkAt(this.roff);
    if (c) this.roff += c.length;
    return c;
  }

  /** @internal The bytes from `pos` to the end of its buffer or of the data, as a view. */
  chunkAt(pos: number, max = Infinity): Uint8Array | undefined {
    if (this.st !== OPEN || pos >= this.woff) return undefined;
    const i = (pos / this.bsize) | 0;
    const at = this.offs[i] + pos - i * this.bsize;
    return this.arenas[i].u8.subarray(at, at + Math.min(this.bsize - (pos - i * this.bsize), this.woff - pos, max));
  }

  /** @internal The room after the written bytes, at most `max` bytes within one buffer, as a view
   * (a buffer added first when the last is full): what a reader writes into, then counts in with
   * `woff`. Throws the pool's error when it has no room. */
  room(max: number): Uint8Array {
    this.appendable('readFrom');
    if (this.woff === this.cap) this.grow(this.woff + 1);
    const i = (this.woff / this.bsize) | 0;
    const o = this.woff - i * this.bsize;
    const at = this.offs[i] + o;
    return this.arenas[i].u8.subarray(at, at + Math.min(this.bsize - o, max));
  }

  /** @internal The room after the written bytes in every buffer the SGL holds, at most `max`
   * views (a buffer added first when the last is full): what a vectored read fills, then counts
   * in with commit(). Throws the pool's error when it has no room. */
  rooms(max: number): Uint8Array[] {
    this.appendable('readFrom');
    if (this.woff === this.cap) this.grow(this.woff + 1);
    const first = (this.woff / this.bsize) | 0;
    const end = Math.min(this.offs.length, first + max);
    const out: Uint8Array[] = [];
    for (let i = first, o = this.woff - first * this.bsize; i < end; i++, o = 0) {
      out.push(this.arenas[i].u8.subarray(this.offs[i] + o, this.offs[i] + this.bsize));
    }
    return out;
  }

  /** @internal `n` bytes were read into room() or rooms(): they are the SGL's now. Throws
   * ERR_MEMSYS_SGL_FREED when it was freed meanwhile. */
  commit(n: number): void {
    this.writable('readFrom');
    this.woff += n;
  }

  /** @internal Gives back the buffers wholly past the written bytes (a room taken and not used). */
  trim(): void {
    const keep = Math.ceil(this.woff / this.bsize);
    if (keep >= this.offs.length || this.pins > 0 || this.st !== OPEN) return;
    this.giveBack(this.arenas.splice(keep), this.offs.splice(keep));
  }

  /** @internal A read into room() is in flight: the buffers stay out of the slab until unpin(). */
  pin(): void {
    this.pins++;
  }

  /** @internal */
  unpin(): void {
    if (this.pins === 0) throw new MemsysError('ERR_MEMSYS_STATE', 'unpin: no read into the SGL is in flight');
    if (--this.pins > 0 || !this.held) return;
    const { arenas, offs } = this.held;
    this.held = undefined;
    this.giveBack(arenas, offs);
  }

  /** @internal Copies [from, to) into dst at dstOff. */
  copyOut(from: number, to: number, dst: Uint8Array, dstOff: number): void {
    const bs = this.bsize;
    for (let p = from; p < to;) {
      const i = (p / bs) | 0;
      const o = p - i * bs;
      const n = Math.min(bs - o, to - p);
      const at = this.offs[i] + o;
      dst.set(this.arenas[i].u8.subarray(at, at + n), dstOff);
      dstOff += n;
      p += n;
    }
  }

  private copyIn(src: Uint8Array, at: number): void {
    const bs = this.bsize;
    for (let s = 0; s < src.length;) {
      const i = (at / bs) | 0;
      const o = at - i * bs;
      const n = Math.min(bs - o, src.length - s);
      this.arenas[i].u8.set(n === src.length ? src : src.subarray(s, s + n), this.offs[i] + o);
      s += n;
      at += n;
    }
  }

  private byteAt(p: number): number {
    const i = (p / this.bsize) | 0;
    return this.arenas[i].u8[this.offs[i] + p - i * this.bsize];
  }

  /** @internal Adds buffers until the SGL holds `bytes`, in one batch. */
  grow(bytes: number): void {
    const n = Math.ceil(bytes / this.bsize) - this.offs.length;
    if (n > 0) this.slab.pool.takeSlots(this.slab, n, this.arenas, this.offs);
  }

  // false after free(); throws after handoff()
  private readable(): boolean {
    if (this.st === MOVED) throw moved();
    return this.st === OPEN;
  }

  private usable(): void {
    if (this.st === MOVED) throw moved();
  }

  private writable(op: string): void {
    this.ensureOpen(op, 'cannot write to an SGL after free()');
  }

  /** @internal Throws unless the SGL is open: ERR_MEMSYS_MOVED after handoff(), else
   * ERR_MEMSYS_SGL_FREED, for `op`. */
  ensureOpen(op: string, why = 'the SGL was freed'): void {
    if (this.st === OPEN) return;
    if (this.st === MOVED) throw moved();
    throw new MemsysError('ERR_MEMSYS_SGL_FREED', `${op}: ${why}`);
  }

  // What moves the end of the written bytes waits for a read into the room: it would land after
  // bytes the read does not know of, or be overwritten by it.
  private appendable(op: string): void {
    this.writable(op);
    if (this.pins > 0) throw new MemsysError('ERR_MEMSYS_STATE', `${op}: a read into the SGL is in flight`);
  }

  private node(): NodeStreamFactory {
    if (nodeStreams) return nodeStreams;
    throw new MemsysError('ERR_MEMSYS_UNSUPPORTED',
      "Node streams need the Node entry: import from 'memsys/node' (or use toReadableStream / toWritableStream)");
  }
}

/** An independent cursor over an SGL (sgl.open()): its own offset over everything written,
 * seekable, consuming nothing of the SGL's. After sgl.free() reads return 0 (seek throws
 * ERR_MEMSYS_SGL_FREED); after sgl.handoff() every use throws ERR_MEMSYS_MOVED. */
export class SGLReader {
  /** The SGL it reads. */
  readonly sgl: SGL;
  private off = 0;

  /** @internal */
  constructor(sgl: SGL);
  /** Readers are made by `sgl.open()`, not by `new`. */
  constructor(made: never);
  constructor(sgl: SGL) {
    this.sgl = sgl;
  }

  /** The reader's offset, bytes from the start (may lie past the end after a seek). */
  get offset(): number { return this.off; }
  /** Bytes from the offset to the end of the data (0 past it). */
  get len(): number { return Math.max(0, this.sgl.woff - this.off); }

  /** Copies bytes from the offset into `into` (as many as fit) and advances. Returns the count;
   * 0 at the end. */
  read(into: Uint8Array): number {
    const dst = bytesOf(into, 'into');
    if (this.sgl.freed) return this.ended();
    const n = Math.max(0, Math.min(dst.length, this.sgl.woff - this.off));
    this.sgl.copyOut(this.off, this.off + n, dst, 0);
    this.off += n;
    return n;
  }

  /** The byte at the offset, advancing; -1 at the end. */
  readByte(): number {
    if (this.sgl.freed) { this.ended(); return -1; }
    const c = this.sgl.chunkAt(this.off, 1);
    if (!c) return -1;
    this.off++;
    return c[0];
  }

  /** Moves the offset to `offset` bytes from the start, the current offset or the end; past the
   * end is allowed (reads then return 0). Returns the new offset. Throws ERR_MEMSYS_INVALID_ARG
   * for a non-integer offset, another `whence`, or a move before the start. */
  seek(offset: number, whence: 'start' | 'current' | 'end' = 'start'): number {
    if (this.sgl.freed) {
      this.ended();
      throw new MemsysError('ERR_MEMSYS_SGL_FREED', 'cannot seek in an SGL after free()');
    }
    if (!Number.isSafeInteger(offset)) throw invalidArg('offset', offset, 'must be an integer');
    const base = whence === 'start' ? 0 : whence === 'current' ? this.off : whence === 'end' ? this.sgl.woff : NaN;
    if (Number.isNaN(base)) throw invalidArg('whence', whence, "must be 'start', 'current' or 'end'");
    if (base + offset < 0) throw invalidArg('offset', offset, `would move before the start (to ${base + offset})`);
    this.off = base + offset;
    return this.off;
  }

  /** Another independent reader at offset 0. */
  open(): SGLReader {
    return this.sgl.open();
  }

  // 0 after free(); a handed-off SGL's readers throw, as the SGL does.
  private ended(): number {
    if (this.sgl.st === MOVED) throw moved();
    return 0;
  }
}

function moved(): MemsysError {
  return new MemsysError('ERR_MEMSYS_MOVED', 'this SGL was handed off to another realm; it can no longer be used here');
}

/** @internal The bytes of a view or buffer, as a Uint8Array (no copy). */
export function bytesOf(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) return new Uint8Array(v);
  throw invalidArg(what, v, 'must be a Uint8Array, another ArrayBufferView or an ArrayBuffer');
}
