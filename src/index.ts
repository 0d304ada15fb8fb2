// memsys: the browser-safe entry. Nothing here or below imports a Node module; `memsys/node`
// adds the Node adapters.

export { MMSA } from './mmsa.js';
export { BudgetController } from './budget.js';
export type { BudgetOptions } from './budget.js';
export { MemsysEvent } from './housekeep.js';
export type { HousekeepReport, MemsysEventType } from './housekeep.js';
export type { ClassStats, MMSAOptions, MMSAStats, Portlike, ShareDescriptor } from './mmsa.js';
export { Slab } from './slab.js';
export { SGL, SGLReader, setNodeStreams } from './sgl.js';
export type { SGLHandoff, NodeStreamFactory } from './sgl.js';
export type { BufferHandoff, Handoff } from './handoff.js';
export { Channel } from './channel.js';
export type { ChannelPort } from './channel.js';
export { copyOption } from './streams.js';
export type { ByteChunk, ByteSink, ByteSource, ChunkOptions, NodeWritableLike } from './streams.js';
export { MemsysError, MemsysRangeError, MemsysTypeError } from './errors.js';
export type { MemsysErrorCode } from './errors.js';
export type { MemStats, MemStatsProvider, PsiLine } from './host.js';
export { Pressure, lowWatermark, pressureLevel, pressureName } from './pressure.js';
export type { PressureInputs, PressureLevel, PressureName } from './pressure.js';
export { setDefaultMemStats } from './host.js';
export { browserMemStats } from './browserstats.js';
export type { BrowserStatsOptions } from './browserstats.js';
export { KiB, MiB, GiB, MAX_SIZE, classSize, parseSize, formatBytes } from './sizes.js';
export { init, initError, pageMM, byteMM } from './global.js';
