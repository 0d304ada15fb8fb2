// Express (and Connect-style) middleware: the request body as an SGL in `req.body`, as
// body-parser's raw() gives a Buffer, freed when the response closes. Express is not a
// dependency: the middleware is a plain (req, res, next) function.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MMSA } from '../index.js';
import { invalidArg } from '../index.js';
import { type ReadOptions, bodyFor, bodyRead, hasBody, readOptions } from './http.js';

/** Which requests' bodies expressBody() takes, by Content-Type: a media type
 * ('application/octet-stream'), a wildcard ('image/*', '*\/*', 'application/*+cbor'), a list of
 * those, or a test. */
export type BodyType = string | readonly string[] | ((req: IncomingMessage) => boolean);

/** Options of expressBody(). */
export interface ExpressBodyOptions extends ReadOptions {
  /** The bodies to take; default 'application/octet-stream', as body-parser's raw(). */
  type?: BodyType;
}

/** A Connect-style middleware. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Middleware that reads a matching request body into an SGL of `mm` (readBody()) and sets
 * `req.body` to it; the SGL is freed when the response closes (take it over with
 * `mm.receive(req.body.handoff())` to keep it longer). Failures go to `next(err)` with the
 * BodyError's `status` (413, 415, 400), which Express's error handler answers with. Requests without a
 * body, of another type, or already parsed (`req.body` set, or the body read to its end by
 * another reader, as body-parser skips it) pass through untouched. Throws ERR_MEMSYS_INVALID_ARG
 * for bad arguments, ERR_MEMSYS_INVALID_SIZE for an `sbufSize` that is not a slab size.
 */
export function expressBody(mm: MMSA, opts: ExpressBodyOptions = {}): Middleware {
  const checked = readOptions(mm, opts);
  const accepts = typeTest(opts.type ?? 'application/octet-stream');
  return (req, res, next) => {
    const r = req as IncomingMessage & { body?: unknown };
    if (r.body !== undefined || bodyRead(req) || !hasBody(req) || !accepts(req)) return next();
    bodyFor(mm, req, res, checked, (err, sgl) => {
      if (err) return next(err);
      r.body = sgl;
      next();
    });
  };
}

// A test of a request's Content-Type against a BodyType.
function typeTest(type: BodyType): (req: IncomingMessage) => boolean {
  if (typeof type === 'function') return type;
  const list = typeof type === 'string' ? [type] : type;
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && /^[^/\s]+\/[^/\s]+$/.test(t))) {
    throw invalidArg('option type', type, "must be a media type such as 'application/octet-stream' or 'image/*', a list of them, or a function");
  }
  const want = list.map((t) => t.toLowerCase().split('/'));
  return (req) => {
    const ct = req.headers['content-type'];
    if (ct === undefined) return false;
    const [top, sub = ''] = ct.split(';', 1)[0].trim().toLowerCase().split('/');
    return want.some(([t, s]) => (t === '*' || t === top) && subtypeIs(sub, s));
  };
}

// A subtype against a wanted one: itself, '*', or '*+suffix' (RFC 6839's structured syntax
// suffixes, as type-is takes 'application/*+json').
function subtypeIs(sub: string, want: string): boolean {
  if (want === '*' || want === sub) return true;
  return want.startsWith('*+') && sub.length > want.length - 1 && sub.endsWith(want.slice(1));
}
