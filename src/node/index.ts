// The Node entry: what `memsys` resolves to in Node (package.json's `node` condition), and
// `memsys/node`. Everything of the browser-safe entry, plus the Node adapters. Loading it makes
// /proc and the process's cgroup the default source of host memory figures for every MMSA's init,
// gives SGLs Node streams, and gives free pages back to the kernel in place (the native page helper)
// or has V8 collect dropped arenas; and makes mm.place() move arenas between NUMA nodes.

import type { Readable, Writable } from 'node:stream';
import { setDefaultMemStats, setNodeStreams, setPageOps, setPlacement, setPressureEvents } from '../index.js';
import { createHostStats } from './hoststats.js';
import { nodePlacement } from './mover.js';
import { setSidecar } from './numa.js';
import { nodePageOps } from './pages.js';
import { nodePressureEvents } from './psi.js';
import { sidecar } from './sidecar.js';
import { sglReadable, sglWritable } from './streams.js';

// The browser-safe types leave what toReadable() / toWritable() return empty, so that they name no
// Node module; wherever this entry's types are loaded, those are Node's stream classes.
declare module '../sgl/sgl.js' {
  /** Node's Readable: what sgl.toReadable() returns. */
  interface NodeReadable extends Readable {}
  /** Node's Writable: what sgl.toWritable() returns. */
  interface NodeWritable extends Writable {}
}

setDefaultMemStats(createHostStats());
setNodeStreams({ readable: sglReadable, writable: sglWritable });
setPageOps(nodePageOps());
setPlacement(nodePlacement());
setSidecar(sidecar);
setPressureEvents(nodePressureEvents());

export * from '../index.js';
export { createHostStats, readHostStats } from './hoststats.js';
export type { HostStatsOptions } from './hoststats.js';
export { parseLimit, parseMeminfo, parsePsi } from './proc.js';
export { NumaError, errnoName, memoryMaps, movePages, numaMaps, parseCpuList, topology, whereAre } from './numa.js';
export type { MemoryMapping, MoveOptions, NumaMapping, NumaNode, SidecarClient, Topology } from './numa.js';
export { nodePressureEvents, psiPath } from './psi.js';
export type { PsiOptions } from './psi.js';
export { BodyError, DEFAULT_BODY_LIMIT, freeOnClose, hasBody, readBody, sendSGL } from './http.js';
export type { BodyErrorType, BodyOptions, BodyRequest, BodyResponse, ReadOptions, SendOptions } from './http.js';
export { takeBodies } from './wire.js';
export type { TakeOptions } from './wire.js';
export { expressBody } from './express.js';
export type { BodyType, ExpressBodyOptions, Middleware } from './express.js';
export { fastifyBody } from './fastify.js';
export type { FastifyBodyOptions, FastifyPlugin } from './fastify.js';
export { statusLine, watch } from './watch.js';
export type { WatchOptions } from './watch.js';
