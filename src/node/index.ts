// memsys/node: everything of `memsys`, plus the Node adapters. Loading it makes /proc/meminfo the
// default source of host memory figures for every MMSA's init.

import { setDefaultMemStats } from '../index.js';
import { hostMemory } from './meminfo.js';

setDefaultMemStats(() => hostMemory());

export * from '../index.js';
export { hostMemory, parseMeminfo } from './meminfo.js';
