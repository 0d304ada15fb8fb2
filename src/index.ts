// memsys: the browser-safe entry. Nothing here or below imports a Node module; `memsys/node`
// adds the Node adapters.

import { browserMemStats } from './browserstats.js';
import { isNode, setDefaultMemStats } from './host.js';

export { MMSA } from './mmsa.js';
export { loadCore } from './core.js';
export type { LoadCoreOptions } from './core.js';
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
export { pageOps, setPageOps } from './giveback.js';
export type { MadviseMode, PageOps } from './giveback.js';
export { browserMemStats } from './browserstats.js';
export type { BrowserStatsOptions } from './browserstats.js';
export { KiB, MiB, GiB, MAX_SIZE, classSize, parseSize, formatBytes } from './sizes.js';
export { init, initError, pageMM, byteMM } from './global.js';
export { renderChart, renderClasses, sample } from './chart.js';
export type { Sample } from './chart.js';

// In a browser (a page or a worker) pressure comes from the browser provider by default: a quarter
// of navigator.deviceMemory, the pool, and measureUserAgentSpecificMemory where the page may call
// it. A page with a budget of its own passes browserMemStats({ budget }) to setDefaultMemStats or
// as an MMSA's memStats. Node's provider comes with memsys/node.
if (!isNode() && typeof navigator === 'object') setDefaultMemStats(browserMemStats());
