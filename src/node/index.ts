// memsys/node: everything of `memsys`, plus the Node adapters. Loading it makes /proc and the process's
// cgroup the default source of host memory figures for every MMSA's init, gives SGLs Node streams,
// and gives free pages back to the kernel in place (the native page helper) or has V8 collect dropped arenas.

import { setDefaultMemStats, setNodeStreams, setPageOps } from '../index.js';
import { createHostStats } from './hoststats.js';
import { nodePageOps } from './pages.js';
import { sglReadable, sglWritable } from './streams.js';

setDefaultMemStats(createHostStats());
setNodeStreams({ readable: sglReadable, writable: sglWritable });
setPageOps(nodePageOps());

export * from '../index.js';
export { createHostStats, readHostStats } from './hoststats.js';
export type { HostStatsOptions } from './hoststats.js';
export { parseLimit, parseMeminfo, parsePsi } from './proc.js';
export { statusLine, watch } from './watch.js';
export type { WatchOptions } from './watch.js';
