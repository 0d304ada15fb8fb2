// STAND-IN for memsys/node's HTTP glue (src/node/http.ts: readBody, sendSGL, BodyError), with the
// same signatures, for the server benchmark until that module is on this branch: the benchmark
// then imports the real functions from '../../src/node/index.js' and this file goes.
//
// Built only from the public SGL API (newSGL, readFrom, writeTo, free), so the figures measure
// what those give a server; the real glue may do better or worse.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MMSA, SGL } from '../../src/node/index.js';

const DEFAULT_LIMIT = 1 << 20;

export class BodyError extends Error {
  readonly code: 'ERR_MEMSYS_BODY_TOO_LARGE' | 'ERR_MEMSYS_BODY';
  readonly status: number;
  constructor(code: 'ERR_MEMSYS_BODY_TOO_LARGE' | 'ERR_MEMSYS_BODY', message: string) {
    super(message);
    this.name = 'BodyError';
    this.code = code;
    this.status = code === 'ERR_MEMSYS_BODY_TOO_LARGE' ? 413 : 400;
  }
}

/** Collects `req`'s body into a new SGL of `mm` (pre-sized from Content-Length). */
export async function readBody(mm: MMSA, req: IncomingMessage, opts: { limit?: number; sbufSize?: number } = {}): Promise<SGL> {
  const limit = opts.limit ?? DEFAULT_LIMIT;
  const cl = req.headers['content-length'];
  const expected = cl === undefined ? undefined : Number(cl);
  if (expected !== undefined && !(Number.isSafeInteger(expected) && expected >= 0)) {
    req.resume();
    throw new BodyError('ERR_MEMSYS_BODY', `bad Content-Length ${JSON.stringify(cl)}`);
  }
  if (expected !== undefined && expected > limit) {
    req.resume();
    throw new BodyError('ERR_MEMSYS_BODY_TOO_LARGE', `body of ${expected} bytes is over the limit of ${limit}`);
  }
  const sgl = mm.newSGL(expected ?? 0, opts.sbufSize);
  try {
    await sgl.readFrom(req);
  } catch (e) {
    sgl.free();
    throw new BodyError('ERR_MEMSYS_BODY', `the client aborted the body: ${(e as Error).message}`);
  }
  // Checked after the fact: the public readFrom has no per-chunk limit (the real glue stops early).
  if (sgl.len > limit) {
    sgl.free();
    throw new BodyError('ERR_MEMSYS_BODY_TOO_LARGE', `body over the limit of ${limit}`);
  }
  if (expected !== undefined && sgl.len !== expected) {
    const n = sgl.len;
    sgl.free();
    throw new BodyError('ERR_MEMSYS_BODY', `body of ${n} bytes, Content-Length ${expected}`);
  }
  return sgl;
}

/** Sends `sgl`'s unread bytes as the response body and ends the response; frees the SGL when the
 * response closes unless `free: false`. */
export async function sendSGL(res: ServerResponse, sgl: SGL, opts: { free?: boolean; contentType?: string; status?: number } = {}): Promise<void> {
  // The views handed to the socket stay queued until the response closes, finished or not.
  if (opts.free !== false) res.once('close', () => sgl.free());
  if (!res.headersSent) {
    res.statusCode = opts.status ?? 200;
    res.setHeader('Content-Type', opts.contentType ?? 'application/octet-stream');
    res.setHeader('Content-Length', sgl.len);
  }
  await sgl.writeTo(res);
  res.end();
}
