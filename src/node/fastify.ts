// A Fastify plugin: a content-type parser that yields the request body as an SGL in
// `request.body`, freed when the response closes. Fastify is not a dependency: the plugin is a
// plain function with the markers fastify-plugin would set (it applies to the instance it is
// registered on, not an encapsulated child).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { MMSA } from '../index.js';
import { invalidArg } from '../index.js';
import { type ReadOptions, bodyFor, readOptions } from './http.js';

/** Options of fastifyBody(). */
export interface FastifyBodyOptions extends ReadOptions {
  /** The content types to parse (Fastify's addContentTypeParser: a string, a list, or '*' for
   * all the others); default 'application/octet-stream'. `limit` defaults to the route's
   * `bodyLimit` (Fastify's own default: 1 MiB). */
  contentTypes?: string | readonly string[];
}

// The parts of Fastify's instance, request and reply the plugin uses.
interface FastifyRequestLike { raw: IncomingMessage; routeOptions?: { bodyLimit?: number } }
interface FastifyReplyLike { raw: ServerResponse }
interface FastifyLike {
  addContentTypeParser(types: string | readonly string[], parser: (req: FastifyRequestLike, payload: Readable, done: (err: unknown, body?: unknown) => void) => void): unknown;
  addHook(name: 'onRequest', hook: (req: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) => void): unknown;
}

// Each request's response, on the request: in a WeakMap the response (which holds its request)
// would keep both alive through every young-generation collection.
const kResponse = Symbol('memsys.response');
type Tied = IncomingMessage & { [kResponse]?: ServerResponse };

/** A Fastify plugin, for `fastify.register()` (generic in the instance, so that it is one whatever
 * Fastify's types make of the server). */
export type FastifyPlugin = <I>(instance: I, opts: unknown, done: (err?: Error) => void) => void;

/**
 * A plugin for `fastify.register(fastifyBody(mm, opts))`: the bodies of `contentTypes` are read
 * into SGLs of `mm` (readBody()) as `request.body`, and freed when the response closes (take one
 * over with `mm.receive(request.body.handoff())` to keep it). A body a preParsing hook replaced
 * with a stream of its own (a decoder) is read from that stream as it gives it, under the same
 * limit; what that stream fails with is a 400. A BodyError's `statusCode` (413, 415, 400) is what
 * Fastify answers with. Send an SGL with `reply.header('content-length', sgl.len)
 * .send(sgl.toReadable())`; one that is not a request body is yours to free, when the response
 * closes with `freeOnClose(reply.raw, sgl)`. Throws ERR_MEMSYS_INVALID_ARG for bad arguments,
 * ERR_MEMSYS_INVALID_SIZE for an `sbufSize` that is not a slab size.
 */
export function fastifyBody(mm: MMSA, opts: FastifyBodyOptions = {}): FastifyPlugin {
  const { limit, sbufSize, inflate } = readOptions(mm, opts);
  const explicit = opts.limit !== undefined;
  const types = opts.contentTypes ?? 'application/octet-stream';
  const list: readonly unknown[] = Array.isArray(types) ? types : [types];
  if (list.length === 0 || !list.every((t) => typeof t === 'string' && t.length > 0)) {
    throw invalidArg('option contentTypes', types, "must be a content type such as 'application/octet-stream', '*', or a list of them");
  }
  const plugin = (instance: FastifyLike, _opts: unknown, done: (err?: Error) => void) => {
    instance.addHook('onRequest', (req, reply, next) => {
      (req.raw as Tied)[kResponse] = reply.raw;
      next();
    });
    instance.addContentTypeParser(types, (req, payload, parsed) => {
      const bodyLimit = explicit ? limit : req.routeOptions?.bodyLimit ?? limit;
      bodyFor(mm, req.raw, (req.raw as Tied)[kResponse], { limit: bodyLimit, sbufSize, inflate }, parsed, payload);
    });
    done();
  };
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'memsys' });
  return plugin as unknown as FastifyPlugin;
}
