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
// reserves at most PRESIZE before the bytes arrive.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MMSA, SGL } from '../index.js';
import { MemsysError, MMSA as MMSAClass, SGL as SGLClass, invalidArg } from '../index.js';

/** The default body limit, bytes: 1 MiB, as Fastify's `bodyLimit`. */
export const DEFAULT_BODY_LIMIT = 1 << 20;
const PRESIZE = 1 << 20;

/** Options of readBody() and the framework adapters. */
export interface BodyOptions {
  /** Most bytes a body may have (a non-negative integer, or Infinity). Default 1 MiB. */
  limit?: number;
  /** Size of the SGL's buffers (a slab size of the MMSA); default: from the declared length. */
  sbufSize?: number;
}

/** A request body that could not be taken: `status` is the HTTP status to answer with (413 for
 * ERR_MEMSYS_BODY_TOO_LARGE, 400 for ERR_MEMSYS_BODY), as Express's and Fastify's error handlers
 * read it (`status`, `statusCode`; `expose`: the message is safe to show the client). */
export class BodyError extends MemsysError {
  /** The HTTP status to answer with. */
  readonly status: 400 | 413;
  /** The same, under the name Fastify and Node's own code use. */
  readonly statusCode: 400 | 413;
  /** The message names only sizes, so it may go to the client. */
  readonly expose = true;
  /** The limit in force, bytes. */
  readonly limit: number;
  /** The Content-Length the client declared, if any. */
  readonly length: number | undefined;
  /** Bytes received when the body was refused. */
  readonly received: number;
  /** @internal */
  constructor(code: 'ERR_MEMSYS_BODY_TOO_LARGE' | 'ERR_MEMSYS_BODY', message: string, m: Meter) {
    super(code, message);
    this.name = 'BodyError';
    this.status = this.statusCode = code === 'ERR_MEMSYS_BODY_TOO_LARGE' ? 413 : 400;
    this.limit = m.limit;
    this.length = m.length;
    this.received = m.received;
  }
}

// What a body may still take, and what its end must match.
interface Meter {
  readonly limit: number;
  length: number | undefined;
  received: number;
}

/** True when `req` carries a body (a Content-Length or a Transfer-Encoding header), as
 * `type-is`'s hasBody decides: a GET without either has none. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined;
}

/**
 * Collects `req`'s body into a new SGL of `mm`. Resolves to the SGL (yours to free; the adapters
 * free it when the response closes). Rejects, having freed what it took, with a BodyError:
 * ERR_MEMSYS_BODY_TOO_LARGE (413) when the declared length or the bytes received pass `limit`,
 * ERR_MEMSYS_BODY (400) when the client goes away early or sends other than its Content-Length;
 * with the pool's error when it has no room (ERR_MEMSYS_BUDGET, ERR_MEMSYS_OUT_OF_MEMORY); or with
 * the request's own error; ERR_MEMSYS_INVALID_SIZE for an `sbufSize` that is not a slab size.
 * Bodies are taken as sent: a Content-Encoding is not decoded. Throws ERR_MEMSYS_INVALID_ARG for
 * bad arguments, ERR_MEMSYS_STATE for a body already read.
 */
export function readBody(mm: MMSA, req: IncomingMessage, opts: BodyOptions = {}): Promise<SGL> {
  if (!(mm instanceof MMSAClass)) throw invalidArg('mm', mm, 'must be an MMSA');
  if (!isRequest(req)) throw invalidArg('request', req, 'must be an http.IncomingMessage');
  const { limit, sbufSize } = bodyOptions(opts);
  if (req.readableEnded || req.readableFlowing === true) {
    throw new MemsysError('ERR_MEMSYS_STATE', 'the request body is already being read, or was read');
  }
  const m: Meter = { limit, length: undefined, received: 0 };
  const declared = req.headers['transfer-encoding'] === undefined ? req.headers['content-length'] : undefined;
  if (declared !== undefined) {
    m.length = /^\d+$/.test(declared) ? Number(declared) : NaN;
    if (!Number.isSafeInteger(m.length)) {
      req.resume();
      return Promise.reject(new BodyError('ERR_MEMSYS_BODY', `the request's Content-Length ${JSON.stringify(declared)} is not a byte count`, m));
    }
  }
  if (m.length !== undefined && m.length > limit) {
    req.resume();
    return Promise.reject(tooLarge(m));
  }
  let sgl: SGL;
  try {
    sgl = mm.newSGL(Math.min(m.length ?? 0, limit, PRESIZE), sbufSize);
  } catch (e) {
    req.resume();
    return Promise.reject(e);
  }
  return new Promise<SGL>((resolve, reject) => {
    const fail = (e: unknown) => {
      detach();
      req.resume();
      sgl.free();
      reject(e);
    };
    const onData = (c: Buffer | string) => {
      const n = typeof c === 'string' ? Buffer.byteLength(c) : c.length;
      m.received += n;
      if (m.received > limit) return fail(tooLarge(m));
      try {
        if (typeof c === 'string') sgl.writeString(c); else sgl.write(c);
      } catch (e) {
        fail(e);
      }
    };
    const onEnd = () => {
      if (m.length !== undefined && m.received !== m.length) {
        return fail(new BodyError('ERR_MEMSYS_BODY', `the request body has ${m.received} bytes, not its Content-Length ${m.length}`, m));
      }
      detach();
      resolve(sgl);
    };
    const onClose = () => fail(new BodyError('ERR_MEMSYS_BODY', `the client went away after ${m.received}${m.length === undefined ? '' : ` of ${m.length}`} bytes of the request body`, m));
    const detach = () => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', fail);
      req.removeListener('aborted', onClose);
      req.removeListener('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', fail);
    req.on('aborted', onClose);
    req.on('close', onClose);
  });
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

/**
 * Sends `sgl`'s unread bytes as the body of `res` and ends it: with Content-Length (and the
 * status and Content-Type) unless the headers were sent, at the pace the client reads (chunks are
 * views of the SGL's buffers, no copy). Resolves to true once the response has finished, false
 * when the client went away first; it never rejects, so a handler need not await it. Unless
 * `free: false`, the SGL is freed when the response closes, either way.
 * Throws ERR_MEMSYS_INVALID_ARG for bad arguments, ERR_MEMSYS_SGL_FREED for a freed SGL.
 */
export function sendSGL(res: ServerResponse, sgl: SGL, opts: SendOptions = {}): Promise<boolean> {
  if (!isResponse(res)) throw invalidArg('response', res, 'must be an http.ServerResponse');
  if (!(sgl instanceof SGLClass)) throw invalidArg('sgl', sgl, 'must be an SGL');
  const { free, contentType, status } = sendOptions(opts);
  if (sgl.freed) throw new MemsysError('ERR_MEMSYS_SGL_FREED', 'sendSGL: the SGL was freed');
  if (free) freeOnClose(res, sgl);
  if (!res.headersSent) {
    if (status !== undefined) res.statusCode = status;
    if (contentType !== undefined || !res.hasHeader('content-type')) res.setHeader('content-type', contentType ?? 'application/octet-stream');
    res.setHeader('content-length', sgl.len);
  }
  return new Promise<boolean>((resolve) => {
    if (res.destroyed) return resolve(false);
    const onClose = () => resolve(res.writableFinished);
    res.once('close', onClose);
    sgl.writeTo(res).then(() => res.end(), () => res.destroy());
  });
}

/** Frees `sgl` when `res` closes: when the response has finished or the client went away. To keep
 * a body past its response, take it over first: `mm.receive(sgl.handoff())` (nothing is copied;
 * the freeing then finds nothing to free). */
export function freeOnClose(res: ServerResponse, sgl: SGL): void {
  if (!isResponse(res)) throw invalidArg('response', res, 'must be an http.ServerResponse');
  if (!(sgl instanceof SGLClass)) throw invalidArg('sgl', sgl, 'must be an SGL');
  if (res.destroyed || res.writableFinished) sgl.free();
  else res.once('close', () => sgl.free());
}

// ---- helpers -------------------------------------------------------------------------------------

/** @internal The options of readBody() and the adapters, checked. */
export function bodyOptions(opts: BodyOptions): { limit: number; sbufSize: number | undefined } {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
  const { limit = DEFAULT_BODY_LIMIT, sbufSize } = opts;
  if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw invalidArg('option limit', limit, 'must be a non-negative integer (bytes) or Infinity');
  }
  return { limit, sbufSize };
}

function sendOptions(opts: SendOptions): { free: boolean; contentType: string | undefined; status: number | undefined } {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
  const { free = true, contentType, status } = opts;
  if (typeof free !== 'boolean') throw invalidArg('option free', free, 'must be a boolean');
  if (contentType !== undefined && typeof contentType !== 'string') throw invalidArg('option contentType', contentType, 'must be a string');
  if (status !== undefined && !(Number.isInteger(status) && status >= 100 && status <= 999)) {
    throw invalidArg('option status', status, 'must be an HTTP status code, 100 … 999');
  }
  return { free, contentType, status };
}

function tooLarge(m: Meter): BodyError {
  const what = m.received === 0 && m.length !== undefined ? `its Content-Length is ${m.length}` : `${m.received} bytes arrived`;
  return new BodyError('ERR_MEMSYS_BODY_TOO_LARGE', `the request body is larger than its limit of ${m.limit} bytes: ${what}`, m);
}

function isRequest(v: unknown): v is IncomingMessage {
  const r = v as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.on === 'function' && typeof r.pause === 'function' && typeof r.headers === 'object' && r.headers !== null;
}

function isResponse(v: unknown): v is ServerResponse {
  const r = v as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.setHeader === 'function' && typeof r.end === 'function' && typeof r.once === 'function';
}

