// memsys: the browser-safe entry (`memsys` for browsers and other platforms, `memsys/inline`).
// Nothing here or below imports a Node module; the Node entry (node/index.ts: `memsys` in Node,
// and `memsys/node`) adds the Node adapters.

import { browserMemStats } from './platform/browserstats.js';
import { isNode, setDefaultMemStats } from './platform/host.js';

export { MMSA } from './mmsa.js';
export { loadCore } from './core/module.js';
export type { LoadCoreOptions } from './core/module.js';
export { BudgetController } from './policy/budget.js';
export type { BudgetOptions } from './policy/budget.js';
export { MemsysEvent } from './events.js';
export type { HousekeepReport, MemsysEventType } from './events.js';
export type { ClassStats, MMSAOptions, MMSAStats, Portlike, ShareDescriptor } from './mmsa.js';
export type { FreeMemOptions } from './housekeeper.js';
export { Slab } from './pool/slab.js';
export { SGL, SGLReader } from './sgl/sgl.js';
export type { NodeReadable, NodeWritable } from './sgl/sgl.js';
// The Node entry registers its stream classes through this entry rather than sgl.ts, so that its
// bundle uses this bundle's SGL and not a copy of it; not part of the API.
/** @internal */
export { setNodeStreams } from './sgl/sgl.js';
/** @internal */
export type { NodeStreamFactory } from './sgl/sgl.js';
export type { BufferHandoff, Handoff, SGLHandoff, SlotsHandoff } from './pool/tickets.js';
export { Channel } from './realms/channel.js';
export type { ChannelPort } from './realms/channel.js';
// memsys/node's stream classes read their options as the browser-safe ones do.
/** @internal */
export { copyOption } from './sgl/streams.js';
export type { ByteChunk, ByteSink, ByteSource, ChunkOptions, FileSource, NodeWritableLike, WriteOptions } from './sgl/streams.js';
export { MemsysError, MemsysRangeError, MemsysTypeError } from './errors.js';
export type { MemsysErrorCode } from './errors.js';
// memsys/node names bad values and holds its handles as the browser-safe code does, through this
// entry (its bundle shares this one).
/** @internal */
export { invalidArg, show } from './errors.js';
/** @internal */
export { unref } from './platform/timers.js';
export type { MemStats, MemStatsProvider, PsiLine } from './platform/host.js';
export { Pressure, lowWatermark, pressureLevel, pressureName } from './policy/pressure.js';
export type { PressureInputs, PressureLevel, PressureName } from './policy/pressure.js';
export { setDefaultMemStats } from './platform/host.js';
export { setPressureEvents } from './platform/pressure-events.js';
export type { PressureEvents } from './platform/pressure-events.js';
export { pageOps, setPageOps } from './platform/pages.js';
export type { PageOps } from './platform/pages.js';
export { type MoveReport, type PlaceOptions, type PlacedMemory, type PlaceRequest, type Placement, placement, setPlacement } from './platform/placement.js';
export type { MadviseMode } from './pool/giveback.js';
export { browserMemStats } from './platform/browserstats.js';
export type { BrowserStatsOptions } from './platform/browserstats.js';
export { KiB, MiB, GiB, MAX_SIZE, classSize, parseSize, formatBytes } from './sizes.js';
export { init, initError, pageMM, byteMM } from './global.js';
export { renderChart, renderClasses, sample } from './report/chart.js';
export type { Sample, Sampled } from './report/chart.js';

// In a browser (a page or a worker) pressure comes from the browser provider by default: a quarter
// of navigator.deviceMemory, the pool, and measureUserAgentSpecificMemory where the page may call
// it. A page with a budget of its own passes browserMemStats({ budget }) to setDefaultMemStats or
// as an MMSA's memStats. Node's provider comes with the Node entry.
if (!isNode() && typeof navigator === 'object') setDefaultMemStats(browserMemStats());
