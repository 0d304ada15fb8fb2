// Request and response bodies of Node's http servers as SGLs: what a server does with a body
// (collect it under a limit, send it back with its length, free it when the exchange is over) in
// one call each, for `http`, Express and Fastify alike (express.ts and fastify.ts wrap these).
//
// The request is read through its 'data' events, not its async iterator: leaving an iterator
// early destroys the stream, and with it the socket, so a client over the limit would see a reset
// instead of the 413. Once a body is refused, the rest of it is read and dropped (as body-parser
// does), so that the client can finish sending and read the answer, and the connection stays
// usable; Node's requestTimeout bounds a client that never stops.
//
// Memory a client makes the server hold is bounded by what it sends: a declared Content-Length
// picks the SGL's buffer size and is checked against the limit before a byte is read, but
// reserves at most PRESIZE, one buffer of the largest size, before the bytes arrive (a client
// that declares a large body and sends nothing holds that much, per request, until Node's
// requestTimeout; the SGL grows without copying, so reserving more would buy little).
//
// HTTP/2's compatibility API (http2.createServer's request and response) works too: its request
// is a Readable like IncomingMessage, and its response says it has closed only through its stream.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { MMSA, SGL } from '../index.js';
import { MAX_SIZE, MemsysError, MMSA as MMSAClass, SGL as SGLClass, invalidArg, show } from '../index.js';

/** The default body limit, bytes: 1 MiB, as Fastify's `bodyLimit`. */
export const DEFAULT_BODY_LIMIT = 1 << 20;
const PRESIZE = MAX_SIZE;

/** A request readBody() reads: Node's http (`IncomingMessage`) or HTTP/2's compatibility API. */
export type BodyRequest = IncomingMessage | Http2ServerRequest;
/** A response sendSGL() and freeOnClose() work with: Node's http or HTTP/2's compatibility API. */
export type BodyResponse = ServerResponse | Http2ServerResponse;

/** Options of readBody() and the framework adapters. */
export interface BodyOptions {
  /** Most bytes a body may have (a non-negative integer, or Infinity). Default 1 MiB. */
  limit?: number;
  /** Size of the SGL's buffers (a slab size of the MMSA, checked against its slabs, so the MMSA
   * must be initialised); default: from the declared length. */
  sbufSize?: number;
}

/** Options of readBody() and the framework adapters' readers. */
export interface ReadOptions extends BodyOptions {
  /** Decode a body in a Content-Encoding of gzip, deflate or br (the limit applies to the decoded
   * bytes, and to the encoded ones as they arrive); false refuses any encoding but identity with a 415, as
   * body-parser's `inflate: false`. Default true. */
  inflate?: boolean;
}

/** A request body that could not be taken: `status` is the HTTP status to answer with (413 for
 * ERR_MEMSYS_BODY_TOO_LARGE, 415 for ERR_MEMSYS_BODY_ENCODING, 400 for ERR_MEMSYS_BODY), as Express's and Fastify's error handlers
 * read it (`status`, `statusCode`; `expose`: the message is safe to show the client). */
export class BodyError extends MemsysError {
  /** The HTTP status to answer with. */
  readonly status: 400 | 413 | 415;
  /** The same, under the name Fastify and Node's own code use. */
  readonly statusCode: 400 | 413 | 415;
  /** The message names only sizes, so it may go to the client. */
  readonly expose = true;
  /** The limit in force, bytes. */
  readonly limit: number;
  /** The Content-Length the client declared, if any. */
  readonly length: number | undefined;
  /** Bytes received when the body was refused. */
  readonly received: number;
  /** What body-parser's errors name it, for error handlers written against Express's readers:
   * 'entity.too.large' (413), 'encoding.unsupported' (415), 'request.aborted' (the client went
   * away), 'request.size.invalid' (a body unlike its Content-Length); and 'encoding.invalid' (a
   * body that is not valid data of its Content-Encoding). */
  readonly type: BodyErrorType;
  /** @internal */
  constructor(type: BodyErrorType, message: string, m: Meter) {
    const [code, status] = type === 'entity.too.large' ? ['ERR_MEMSYS_BODY_TOO_LARGE', 413] as const
      : type === 'encoding.unsupported' ? ['ERR_MEMSYS_BODY_ENCODING', 415] as const : ['ERR_MEMSYS_BODY', 400] as const;
    super(code, message);
    this.name = 'BodyError';
    this.type = type;
    this.status = this.statusCode = status;
    this.limit = m.limit;
    this.length = m.length;
    this.received = m.received;
  }
}

/** The kinds of BodyError, by body-parser's names. */
export type BodyErrorType = 'entity.too.large' | 'encoding.unsupported' | 'encoding.invalid' | 'request.aborted' | 'request.size.invalid';

/** @internal What a body may still take, and what its end must match. */
export interface Meter {
  limit: number;
  length: number | undefined;
  received: number;
}

// A Meter of nothing received and no length to match.
const unread = (limit: number): Meter => ({ limit, length: undefined, received: 0 });

/** True when `req` carries a body (a Content-Length or a Transfer-Encoding header), as
 * `type-is`'s hasBody decides: a GET without either has none. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined;
}

/**
 * Collects `req`'s body into a new SGL of `mm`. Resolves to the SGL (yours to free; the adapters
 * free it when the response closes). Rejects, having freed what it took, with a BodyError:
 * ERR_MEMSYS_BODY_TOO_LARGE (413) when the declared length or the bytes received pass `limit`,
 * ERR_MEMSYS_BODY (400) when the client goes away (before the body is read, or during it) or sends
 * other than its Content-Length; with the pool's error when it has no room (ERR_MEMSYS_BUDGET,
 * ERR_MEMSYS_OUT_OF_MEMORY); or with the request's own error. A body in a Content-Encoding of
 * gzip, deflate or br is decoded (unless `inflate: false`), with its decoded bytes under the limit
 * and ERR_MEMSYS_BODY (400, 'encoding.invalid') for data that does not decode; another encoding
 * is ERR_MEMSYS_BODY_ENCODING (415). Throws, leaving the request alone, ERR_MEMSYS_INVALID_ARG for
 * bad arguments (a request with an encoding set by setEncoding() among them: its bytes would
 * arrive decoded), ERR_MEMSYS_INVALID_SIZE for an `sbufSize` that is not a slab size, and
 * ERR_MEMSYS_STATE for a body already read or being read, in part or whole. A body takeBodies()
 * reads is the SGL it fills (its `sbufSize`, not this call's; the lower of the two limits); asked
 * for after its response closed, ERR_MEMSYS_STATE (rejected with the BodyError 'request.aborted'
 * when the client went away).
 */
export function readBody(mm: MMSA, req: BodyRequest, opts: ReadOptions = {}): Promise<SGL> {
  const { limit, sbufSize, inflate } = readOptions(mm, opts);
  if (!isRequest(req)) throw invalidArg('request', req, 'must be an http.IncomingMessage or an http2.Http2ServerRequest');
  const t = takenOf(req);
  if (t) {
    const body = t.claim(mm, limit);
    const { decoder, refused } = encodingOf(req, unread(limit), inflate);
    if (refused) {
      body.then((sgl) => sgl.free(), () => {});
      return Promise.reject(refused);
    }
    return decoder ? body.then((sgl) => decodeSGL(mm, req, sgl, decoder, limit, sbufSize)) : body;
  }
  if (typeof req.readableEncoding === 'string') {
    throw invalidArg('request', req, `must give bytes, but has the encoding ${show(req.readableEncoding)} set (setEncoding)`);
  }
  const { m, refused } = meterOf(req, limit);
  // A client gone before this call left nothing to wait for: no 'aborted' or 'close' comes again.
  // HTTP/2 ends (and dumps) such a request rather than destroying it, hence `aborted`.
  if (req.aborted || (req.destroyed && !req.readableEnded)) return Promise.reject(wentAway(m, false));
  if (req.readableEnded || req.readableFlowing === true || req.readableDidRead) {
    throw new MemsysError('ERR_MEMSYS_STATE', 'the request body is already being read, or was read');
  }
  const { decoder, refused: encoding } = encodingOf(req, m, inflate);
  if (refused || encoding) {
    req.resume();
    return Promise.reject(refused ?? encoding);
  }
  if (!decoder) return collect(mm, req, m, sbufSize, req);
  // The decoded bytes have another length than the Content-Length, which only the encoded ones
  // match; those are held to the limit too, as they arrive (a chunked body declares none).
  const z = decoder.make();
  const count = (c: Buffer) => {
    m.received += c.length;
    if (m.received <= limit) return;
    req.removeListener('data', count);
    z.destroy(tooLarge(m));
  };
  req.on('data', count);
  req.pipe(z);
  return collect(mm, z, unread(limit), sbufSize, req, decoder.name);
}

interface Decoder { name: string; make(): Transform }

// The decoders of the Content-Encodings readBody() takes (RFC 9110 8.4.1: x-gzip is gzip).
const DECODERS = new Map<string, () => Transform>([
  ['gzip', zlib.createGunzip], ['x-gzip', zlib.createGunzip], ['deflate', zlib.createInflate], ['br', zlib.createBrotliDecompress],
]);

// The decoder `req`'s Content-Encoding needs (none for identity), or the 415 it earns.
function encodingOf(req: BodyRequest, m: Meter, inflate: boolean): { decoder?: Decoder; refused?: BodyError } {
  const ce = req.headers['content-encoding'];
  const name = ce?.trim().toLowerCase();
  if (!name || name === 'identity') return {};
  const make = inflate ? DECODERS.get(name) : undefined;
  if (make) return { decoder: { name, make } };
  const why = inflate ? 'gzip, deflate, br or identity' : 'identity (inflate: false)';
  return { refused: new BodyError('encoding.unsupported', `the request's Content-Encoding ${JSON.stringify(ce)} is not one this reader takes: ${why}`, m) };
}

// A taken body's encoded bytes, decoded into an SGL of their own (the encoded one goes back).
function decodeSGL(mm: MMSA, req: BodyRequest, sgl: SGL, decoder: Decoder, limit: number, sbufSize: number | undefined): Promise<SGL> {
  const z = decoder.make();
  const out = collect(mm, z, unread(limit), sbufSize, req, decoder.name);
  for (let c = sgl.nextChunk(); c; c = sgl.nextChunk()) z.write(c);
  z.end();
  const done = () => sgl.free();
  out.then(done, done);
  return out;
}

// The Meter of `req`'s body under `limit`, and the BodyError its Content-Length earns before a
// byte is read: one that is not a byte count, or is past the limit (past 2^53 too: no limit
// takes it).
function meterOf(req: BodyRequest, limit: number): { m: Meter; refused?: BodyError } {
  const declared = req.headers['transfer-encoding'] === undefined ? req.headers['content-length'] : undefined;
  const m = unread(limit);
  if (declared === undefined) return { m };
  if (!/^\d+$/.test(declared)) {
    return { m, refused: new BodyError('request.size.invalid', `the request's Content-Length ${JSON.stringify(declared)} is not a byte count`, m) };
  }
  const length = Number(declared);
  if (!Number.isSafeInteger(length)) {
    return { m, refused: new BodyError('entity.too.large', `the request body is larger than its limit of ${limit} bytes: its Content-Length is ${declared}`, m) };
  }
  m.length = length;
  return length > limit ? { m, refused: tooLarge(m) } : { m };
}

/** @internal A body that a framework's hook put a stream of its own in front of (Fastify's
 * preParsing: a decoder, a meter), read from that stream under `limit`. The client's Content-Length
 * is checked against the limit before a byte is read, as Fastify does, but not against what the
 * stream gives, which a decoder changes. */
export function readWrapped(mm: MMSA, req: BodyRequest, stream: Readable, opts: BodyOptions): Promise<SGL> {
  const { limit, sbufSize } = bodyOptions(mm, opts);
  const { m, refused } = meterOf(req, limit);
  if (req.aborted || (req.destroyed && !req.readableEnded)) return Promise.reject(wentAway(m, false));
  if (refused) {
    stream.resume();
    return Promise.reject(refused);
  }
  m.length = undefined;
  // What the hook's stream fails with (a decoder's corrupt data) is the client's: a 400, as
  // Fastify's own body reader makes it.
  stream.prependListener('error', (e: { statusCode?: unknown } | null) => {
    if (typeof e === 'object' && e !== null && !(typeof e.statusCode === 'number' && e.statusCode >= 400)) e.statusCode = 400;
  });
  return collect(mm, stream, m, sbufSize, req);
}

/** @internal Reads `stream` to its end into a new SGL of `mm` under the Meter `m` (its limit, and
 * its length, which the end must match, if set), as readBody() does; `from` is the request whose
 * client going away ends the read: `stream` itself, or the request that feeds it (a decoder of
 * the Content-Encoding `decoding`, or a stream a framework's hook put in front of it). */
export function collect(mm: MMSA, stream: Readable, m: Meter, sbufSize: number | undefined, from: BodyRequest,
  decoding?: string): Promise<SGL> {
  // What is not read goes on being read and dropped, from the request itself: a stream in front of
  // it is taken off and destroyed, so that it decodes no more.
  const drop = () => {
    if (stream === from) return void stream.resume();
    from.unpipe();
    from.resume();
    stream.on('error', () => {});
    stream.destroy();
  };
  let sgl: SGL;
  try {
    sgl = bodySGL(mm, m, sbufSize);
  } catch (e) {
    drop();
    return Promise.reject(e);
  }
  return new Promise<SGL>((resolve, reject) => {
    const fail = (e: unknown) => {
      detach();
      drop();
      sgl.free();
      reject(e);
    };
    const onError = (e: unknown) => fail(decoding === undefined || e instanceof BodyError ? e
      : new BodyError('encoding.invalid', `the request body is not valid ${decoding} data: ${(e as Error).message}`, m));
    const onData = (c: Buffer) => {
      m.received += c.length;
      if (m.received > m.limit) {
        return fail(decoding === undefined ? tooLarge(m)
          : new BodyError('entity.too.large', `the request body is larger than its limit of ${m.limit} bytes once decoded (${decoding})`, m));
      }
      try {
        sgl.write(c);
      } catch (e) {
        fail(e);
      }
    };
    const onEnd = () => {
      if (m.length !== undefined && m.received !== m.length) {
        return fail(new BodyError('request.size.invalid', `the request body has ${m.received} bytes, not its Content-Length ${m.length}`, m));
      }
      detach();
      resolve(sgl);
    };
    // A taken body refused ends its request as a client gone would: the refusal says why.
    const onClose = () => fail(takenOf(from)?.refusal ?? wentAway(m, true));
    // A wrapped stream's own 'close' comes after its end; of the request, only 'aborted' says that
    // its client went away then.
    const gone = stream === from ? ['aborted', 'close'] : ['aborted'];
    const detach = () => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
      for (const ev of gone) from.removeListener(ev, onClose);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    for (const ev of gone) from.on(ev, onClose);
    stream.resume(); // 'data' alone does not start a request that was paused
  });
}

/** @internal The SGL for a body: its buffers sized by the declared length, at most PRESIZE reserved
 * before the bytes arrive. */
export function bodySGL(mm: MMSA, m: Meter, sbufSize: number | undefined): SGL {
  return mm.newSGL(Math.min(m.length ?? 0, m.limit, PRESIZE), sbufSize);
}

/** @internal A body takeBodies() reads off the socket (wire.ts): readBody() claims it. */
export interface TakenBody {
  /** readBody() has asked for it. */
  readonly claimed: boolean;
  /** What it was refused with, if it was. */
  readonly refusal: unknown;
  claim(mm: MMSA, limit: number): Promise<SGL>;
}

// On the request itself: in a WeakMap the body (which holds the response, and so the request)
// would keep both alive through every young-generation collection (under load: scavenges of
// 5-11 ms, the heap twice its size).
const kTaken = Symbol('memsys.takenBody');
const takenOf = (req: object) => (req as { [kTaken]?: TakenBody })[kTaken];

/** @internal */
export function setTaken(req: IncomingMessage, body: TakenBody): void {
  (req as { [kTaken]?: TakenBody })[kTaken] = body;
}

/** @internal True when another reader has `req`'s body: read to its end, or (taken by
 * takeBodies(), whose request stream stays empty) asked for with readBody(). */
export function bodyRead(req: IncomingMessage): boolean {
  const t = takenOf(req);
  return t ? t.claimed : req.readableEnded;
}

/** Options of sendSGL(). */
export interface SendOptions {
  /** Free the SGL when the response closes (finished, or the client went away). Default true. */
  free?: boolean;
  /** The Content-Type, unless one is set already; default application/octet-stream. */
  contentType?: string;
  /** The status code, unless the headers were sent; default what `res.statusCode` holds. */
  status?: number;
}

// Responses a sendSGL() is writing to: a second one would interleave its chunks and end the
// response under the first.
const sending = new WeakSet<object>();

/**
 * Sends `sgl`'s unread bytes as the body of `res` and ends it: with Content-Length (and the
 * status and Content-Type) unless the headers were sent, at the pace the client reads (chunks are
 * views of the SGL's buffers, no copy). No Content-Length goes with a Transfer-Encoding already
 * set (the body is then chunked) or a 204; a HEAD, 204 or 304 gets the headers alone. Resolves
 * to true once the response has finished, false when the client went away first (before the
 * call, too) or Node refused a write; it never rejects, so a handler need not await it. Unless
 * `free: false`, the SGL is freed when the response closes, either way.
 * Throws, changing nothing, ERR_MEMSYS_INVALID_ARG for bad arguments, ERR_MEMSYS_SGL_FREED for a
 * freed SGL, ERR_MEMSYS_MOVED for one handed off, ERR_MEMSYS_STATE for a response already ended or
 * being sent an SGL.
 */
export function sendSGL(res: BodyResponse, sgl: SGL, opts: SendOptions = {}): Promise<boolean> {
  checkPair(res, sgl);
  const { free, contentType, status } = sendOptions(opts);
  sgl.ensureOpen('sendSGL');
  if (sending.has(res)) throw new MemsysError('ERR_MEMSYS_STATE', 'sendSGL: the response is already being sent an SGL');
  if (res.writableEnded) throw new MemsysError('ERR_MEMSYS_STATE', 'sendSGL: the response was already ended');
  if (closed(res)) {
    if (free) sgl.free();
    return Promise.resolve(false);
  }
  if (!res.headersSent) {
    if (status !== undefined) res.statusCode = status;
    if (contentType !== undefined || !res.hasHeader('content-type')) res.setHeader('content-type', contentType ?? 'application/octet-stream');
    // RFC 9112 6.2 and RFC 9110 8.6: never with a Transfer-Encoding, never in a 204.
    if (res.statusCode !== 204 && !res.hasHeader('transfer-encoding')) res.setHeader('content-length', sgl.len);
  }
  sending.add(res);
  return new Promise<boolean>((resolve) => {
    whenClosed(res, () => {
      sending.delete(res);
      if (free) sgl.free();
      resolve(res.writableFinished);
    });
    // What Node throws at a write or an end (a length other than the one declared, under
    // strictContentLength) ends the response as a failed write does: destroyed, resolved false.
    const end = () => {
      try {
        res.end();
      } catch {
        res.destroy();
      }
    };
    try {
      // HEAD, 204 and 304 take the headers alone (a server with rejectNonStandardBodyWrites
      // throws at a body; HTTP/2 resets a stream written after them).
      if (res.req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return end();
      if (sgl.len > SEND_WINDOW) {
        sgl.writeTo(res, { window: SEND_WINDOW }).then(end, () => res.destroy());
        return;
      }
      // Within the window: every chunk at once and the end, as res.end(buffer) would. Nothing here
      // waits, so none of writeTo's listeners and callbacks is made (a 64 KiB echo: server CPU per
      // request 0.51-0.64x raw-body's, against 0.65-0.75x through writeTo; bench part 10).
      const out = res as { write(chunk: Uint8Array): boolean };
      for (let c = sgl.nextChunk(); c; c = sgl.nextChunk()) out.write(c);
      end();
    } catch {
      res.destroy();
    }
  });
}

// How far sendSGL() writes ahead of the socket: the chunks are views of bytes the SGL holds anyway,
// so a window costs no memory, and a window of them goes out in one writev instead of a wait for
// 'drain' after each buffer (which cost 1.2-2.3x the CPU of res.end(buffer); bench/RESULTS.md).
// As large as Linux's largest default send buffer (tcp_wmem's 4 MiB): with 1 MiB, a 16 MiB echo
// to one wrk connection over loopback stalled 113-155 ms in 6 of 8 runs of 10 s (the socket
// rwnd-limited, its peer's window below one 64 KiB segment, a zero-window probe pending), never
// with 4 MiB (client p99 25-30 ms against 63-155 ms).
const SEND_WINDOW = 4 << 20;

/** Frees `sgl` when `res` closes: when the response has finished or the client went away (at
 * once if it has). To keep a body past its response, take it over first:
 * `mm.receive(sgl.handoff())` (nothing is copied; the freeing then finds nothing to free). */
export function freeOnClose(res: BodyResponse, sgl: SGL): void {
  checkPair(res, sgl);
  freeAtClose(res, sgl);
}

/** @internal Reads `req`'s body (readBody, options already checked) and ties the SGL to `res`
 * (freed when it closes), reporting through `done` as the frameworks' callbacks want: an error
 * thrown or rejected, or the SGL. A `payload` other than `req` is a stream a framework's hook put
 * in front of it (readWrapped). */
export function bodyFor(mm: MMSA, req: BodyRequest, res: BodyResponse | undefined, opts: ReadOptions,
  done: (err: unknown, sgl?: SGL) => void, payload: Readable = req): void {
  let body;
  try {
    body = payload === req ? readBody(mm, req, opts) : readWrapped(mm, req, payload, opts);
  } catch (e) {
    return done(e);
  }
  body.then((sgl) => {
    if (res) freeAtClose(res, sgl);
    done(null, sgl);
  }, done);
}

// ---- helpers -------------------------------------------------------------------------------------

function checkPair(res: BodyResponse, sgl: SGL): void {
  if (!isResponse(res)) throw invalidArg('response', res, 'must be an http.ServerResponse or an http2.Http2ServerResponse');
  if (!(sgl instanceof SGLClass)) throw invalidArg('sgl', sgl, 'must be an SGL');
}

function freeAtClose(res: BodyResponse, sgl: SGL): void {
  if (closed(res) || res.writableFinished) sgl.free();
  else whenClosed(res, () => sgl.free());
}

// The socket a response waits for: one queued behind earlier responses on its connection
// (pipelining) has none of its own yet, and if the client goes away first Node drops it with the
// connection, without a 'close'.
function queuedOn(res: BodyResponse): Socket | undefined {
  const r = res as { socket?: Socket | null; req?: { socket?: Socket } };
  return r.socket === null ? r.req?.socket : undefined;
}

// Calls `f` once, when `res` closes or the connection it is queued on does. A connection's queued
// responses share one listener on its socket.
const kQueued = Symbol('memsys.queued');
type Queuing = Socket & { [kQueued]?: Set<() => void> };

function whenClosed(res: BodyResponse, f: () => void): void {
  const s = queuedOn(res) as Queuing | undefined;
  let waiting: Set<() => void> | undefined;
  if (s) {
    waiting = s[kQueued];
    if (!waiting) {
      const all = waiting = s[kQueued] = new Set();
      s.once('close', () => { for (const g of [...all]) g(); });
    }
  }
  const once = () => {
    res.removeListener('close', once);
    waiting?.delete(once);
    f();
  };
  res.once('close', once);
  waiting?.add(once);
}

// True once `res` has closed (its 'close' will not come again): Node's ServerResponse is destroyed
// then, or its connection is while it waits in the queue; HTTP/2's compatibility response has no
// such flag, its stream has.
function closed(res: BodyResponse): boolean {
  return (res as { destroyed?: boolean }).destroyed === true || (res as { stream?: { closed: boolean } }).stream?.closed === true
    || queuedOn(res)?.destroyed === true;
}

/** @internal The MMSA and options of readBody() and the adapters, checked (an `sbufSize`
 * against the MMSA's slabs). */
export function bodyOptions(mm: MMSA, opts: BodyOptions): { limit: number; sbufSize: number | undefined } {
  if (!(mm instanceof MMSAClass)) throw invalidArg('mm', mm, 'must be an MMSA');
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
  const { limit = DEFAULT_BODY_LIMIT, sbufSize } = opts;
  if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw invalidArg('option limit', limit, 'must be a non-negative integer (bytes) or Infinity');
  }
  if (sbufSize !== undefined) mm.getSlab(sbufSize);
  return { limit, sbufSize };
}

/** @internal readBody()'s options, checked. */
export function readOptions(mm: MMSA, opts: ReadOptions): Required<Pick<ReadOptions, 'limit' | 'inflate'>> & { sbufSize: number | undefined } {
  const { limit, sbufSize } = bodyOptions(mm, opts);
  const { inflate = true } = opts;
  if (typeof inflate !== 'boolean') throw invalidArg('option inflate', inflate, 'must be a boolean');
  return { limit, sbufSize, inflate };
}

function sendOptions(opts: SendOptions): { free: boolean; contentType: string | undefined; status: number | undefined } {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
  const { free = true, contentType, status } = opts;
  if (typeof free !== 'boolean') throw invalidArg('option free', free, 'must be a boolean');
  // Node's own rule for a header value, so that setHeader() cannot throw after the checks passed.
  if (contentType !== undefined && (typeof contentType !== 'string' || !/^[\t\x20-\x7e\x80-\xff]+$/.test(contentType))) {
    throw invalidArg('option contentType', contentType, 'must be a header value: a non-empty string without line breaks or control characters');
  }
  // A 1xx is never the final answer (RFC 9110 15.2): Node would send it and leave the body waiting.
  if (status !== undefined && !(Number.isInteger(status) && status >= 200 && status <= 999)) {
    throw invalidArg('option status', status, 'must be the status code of a final answer, 200 … 999');
  }
  return { free, contentType, status };
}

/** @internal */
export function wentAway(m: Meter, reading: boolean): BodyError {
  const of = m.length === undefined ? '' : ` of ${m.length}`;
  return new BodyError('request.aborted', reading
    ? `the client went away after ${m.received}${of} bytes of the request body`
    : 'the client went away before its request body was read', m);
}

/** @internal */
export function tooLarge(m: Meter, chunk?: number): BodyError {
  const what = chunk !== undefined ? `${m.received} bytes arrived, then a chunk of ${chunk} was declared`
    : m.received === 0 && m.length !== undefined ? `its Content-Length is ${m.length}` : `${m.received} bytes arrived`;
  return new BodyError('entity.too.large', `the request body is larger than its limit of ${m.limit} bytes: ${what}`, m);
}

function isRequest(v: unknown): v is BodyRequest {
  const r = v as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.on === 'function' && typeof r.pause === 'function' && typeof r.headers === 'object' && r.headers !== null;
}

function isResponse(v: unknown): v is BodyResponse {
  const r = v as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.setHeader === 'function' && typeof r.end === 'function' && typeof r.once === 'function';
}

