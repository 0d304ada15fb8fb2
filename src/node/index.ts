// memsys/node: everything of `memsys`, plus the Node adapters. Loading it makes /proc/meminfo the
// default source of host memory figures for every MMSA's init, and gives SGLs Node streams.

import { setDefaultMemStats, setNodeStreams } from '../index.js';
import { hostMemory } from './meminfo.js';
import { sglReadable, sglWritable } from './streams.js';

setDefaultMemStats(() => hostMemory());
setNodeStreams({ readable: sglReadable, writable: sglWritable });

export * from '../index.js';
export { hostMemory, parseMeminfo } from './meminfo.js';
