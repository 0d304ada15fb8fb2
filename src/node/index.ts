// memsys/node: everything of `memsys`, plus the Node adapters. Loading it makes /proc and the process's
// cgroup the default source of host memory figures for every MMSA's init, and gives SGLs Node streams.

import { setDefaultMemStats, setNodeStreams } from '../index.js';
import { createHostStats } from './hoststats.js';
import { sglReadable, sglWritable } from './streams.js';

setDefaultMemStats(createHostStats());
setNodeStreams({ readable: sglReadable, writable: sglWritable });

export * from '../index.js';
export { createHostStats, readHostStats } from './hoststats.js';
export type { HostStatsOptions } from './hoststats.js';
export { parseLimit, parseMeminfo, parsePsi } from './proc.js';
export { statusLine, watch } from './watch.js';
export type { WatchOptions } from './watch.js';
