// MMSA: memory manager and slab allocator.
//
// Design
//
// An MMSA hands out fixed-size buffers (`Uint8Array`s) of 64 size classes, 128 B … 128 KiB, and
// takes them back, without the garbage collector ever seeing a new ArrayBuffer. Its memory is a
// set of arenas (arena.ts): WebAssembly memories whose initial size is their maximum, so no view
// into them is ever detached. Inside each arena the core (assembly/, a WebAssembly module) keeps
// all allocator state in the arena itself: page spans, runs of slots, one state byte per slot.
//
// Three layers, fastest first:
//
//   Slab (slab.ts)   per class, per realm: a magazine of cached views. alloc = pop, free = push,
//                    plus one state-byte store. No call into WebAssembly, no new object.
//   MMSA (here)      refills and flushes magazines a batch at a time, picks or adds arenas,
//                    routes frees that the fast path cannot prove (buffers posted from another
//                    worker, foreign arrays, misuse) and turns every misuse into a typed error.
//   core (wasm)      per arena: takes and returns slots under the arena lock, so any number of
//                    realms can share one arena.
//
// Giving memory back: linear memory cannot shrink, so the unit returned to the OS is a whole
// arena, dropped when it is empty (housekeeping, issue #5). Sharing: `share()` gives a descriptor
// that a worker passes to `MMSA.attach`; arenas created later by any realm are announced on a
// BroadcastChannel, and a buffer posted before its arena's announcement is still freed correctly
// (its state byte is in the SharedArrayBuffer that came with it).

import { Arena, BATCH_MAX, PAGE, WASM_PAGE, readHeader } from './core/arena.js';
import { H_STATE, ST_LIVE, ST_OUT, CSTAT_FREE, CSTAT_OUT, CSTAT_RUNS, adoptCore, coreModule } from './core/module.js';
import {
  MemsysError, MemsysRangeError, MemsysTypeError, invalidArg, invalidSize, show,
} from './errors.js';
import { type MemStats, type MemStatsProvider, defaultMemStats, isNode, processEnv, saneStats, sharedAvailable } from './platform/host.js';
import { type MadviseMode, Retired, discardFree } from './pool/giveback.js';
import { pageOps } from './platform/pages.js';
import { metricsText } from './report/metrics.js';
import { type MinFree, insufficient, minFree } from './policy/minfree.js';
import { ARENA_IDLE_MS, depthFor, idleDepth, nextInterval } from './policy/tiers.js';
import { type HousekeepReport, MemsysEvent, type MemsysEventType } from './events.js';
import { Pressure, type PressureLevel, SwapTrend, lowWatermark, pressureLevel, pressureName } from './policy/pressure.js';
import { type BudgetOptions, BudgetController } from './policy/budget.js';
import { type Channel, type ChannelPort, openChannel } from './realms/channel.js';
import { type BufferHandoff, type Handoff, SLOT_MOVED, TICKETS, packSlots, packView, receive as receiveHandoff } from './realms/handoff.js';
import { SGL, type SGLHandoff, type SlotsHandoff } from './sgl/sgl.js';
import { DebugSlab, Slab, type SlabBuffer, kArena, kSlab, kSlot, kState } from './pool/slab.js';
import {
  GiB, KiB, MAX_SIZE, MiB, NUM_CLASSES, classSize, exactClass, fitClass, fitClassOf, formatBytes, sglClass,
} from './sizes.js';

export interface MMSAOptions {
  name: string;
  /** Housekeeping interval, ms (AIStore's TimeIval). Default 3 minutes. */
  timeIval?: number;
  /** Minimum free host memory, bytes. */
  minFree?: number;
  /** Minimum free memory as a percentage of total memory. */
  minPctTotal?: number;
  /** Minimum free memory as a percentage of the memory free at init. */
  minPctFree?: number;
  /** Bytes per arena, a multiple of 64 KiB from 1 MiB to 4 GiB. Default 64 MiB (Node), 16 MiB elsewhere. */
  arenaSize?: number;
  /** A small-buffer MMSA: default buffer 1 KiB, and 4 KiB is the small class. */
  small?: boolean;
  /** Size of `alloc()`'s buffers. Default 32 KiB, or 1 KiB for a small MMSA. */
  defaultSize?: number;
  /** Shared arenas (workers). Default: wherever SharedArrayBuffer is usable. */
  shared?: boolean;
  /** Debug mode: DEADBEEF-filled free buffers, every invariant checked on every call. Default: AIS_DEBUG. */
  debug?: boolean;
  /** Bytes a magazine may cache per class, per realm. Default 1 MiB. */
  magazineBytes?: number;
  /** How free pages go back to the kernel where memsys/node's native page helper is built:
   * 'dontneed' (default: at once, the cgroup's usage falls now; a page faults in zeroed when next
   * used) or 'free' (MADV_FREE: the kernel takes the pages only when it needs memory, so reuse
   * soon after costs no fault, but the usage stays charged until then). */
  madvise?: MadviseMode;
  /** Run housekeeping on a timer (unref'd in Node). Default true; `mm.housekeep()` runs one pass. */
  housekeeping?: boolean;
  /** Size the pool on demand between a floor and a ceiling (budget.ts). Default: no budget. */
  budget?: BudgetOptions;
  /** Host memory figures for init's minimum-free check. Default: memsys/node's reader, if loaded. */
  memStats?: MemStatsProvider;
  /** Environment (AIS_MINMEM_*, AIS_DEBUG). Default: process.env where there is one. */
  env?: Record<string, string | undefined>;
  /** Clock, ms, for idle times. Default performance.now. */
  now?: () => number;
}

export interface ClassStats {
  size: number;
  hits: number;    // allocations served, all realms (as published; this realm's exactly)
  inUse: number;   // buffers in users' hands
  cached: number;  // buffers in this realm's magazine
  free: number;    // free buffers in the arenas' runs
  runs: number;
  idle: number;    // ms since the last allocation seen
}

export interface MMSAStats {
  name: string;
  mode: 'shared' | 'single-threaded';
  debug: boolean;
  arenas: number;
  arenaSize: number;
  bytes: number;      // all arenas
  freeBytes: number;  // pages in no run of any class
  returnedBytes: number; // of those, given back to the OS in place (they fault in again when used)
  retired: number;    // arenas dropped pool-wide whose memory may still be resident (not yet collected)
  minFree: number;
  classes: ClassStats[];
}

/** What carries arena announcements between realms besides the BroadcastChannel. */
export interface Portlike {
  postMessage(message: unknown): void;
  addEventListener?(type: 'message', fn: (e: { data: unknown }) => void): void;
  removeEventListener?(type: 'message', fn: (e: { data: unknown }) => void): void;
  on?(type: 'message', fn: (data: unknown) => void): unknown;
  off?(type: 'message', fn: (data: unknown) => void): unknown;
}

type Announcement = { arena?: WebAssembly.Memory; want?: number; hello?: boolean; drop?: number; realm?: number };

// Runs f; false if an arena it called stayed locked by another realm (ERR_MEMSYS_BUSY: what f did
// before is kept, the rest waits for another time). Any other error passes on.
function unlessBusy(f: () => void): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (e instanceof MemsysError && e.code === 'ERR_MEMSYS_BUSY') return false;
    throw e;
  }
}

type WebLocks = { request(name: string, fn: () => unknown): Promise<unknown> };
function webLocks(): WebLocks | undefined {
  const l = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks;
  return typeof l?.request === 'function' ? l : undefined;
}

// Listens for messages on a port, whichever event API it has (DOM: addEventListener and
// MessageEvent; Node's Worker: on('message', data)); returns the listener to remove later.
function listenPort(p: Portlike, fn: (data: unknown) => void): (data: unknown) => void {
  if (typeof p.addEventListener === 'function') {
    const h = (e: { data: unknown }) => fn(e.data);
    p.addEventListener('message', h);
    return h as unknown as (data: unknown) => void;
  }
  p.on?.('message', fn);
  return fn;
}

function checkPort(p: Portlike): void {
  if (typeof p !== 'object' || p === null || typeof (p as { postMessage?: unknown }).postMessage !== 'function') {
    throw invalidArg('port', p, 'must be a Worker, a MessagePort or another object with postMessage');
  }
}

function unlistenPort(p: Portlike, h: (data: unknown) => void): void {
  if (typeof p.removeEventListener === 'function') p.removeEventListener('message', h as unknown as (e: { data: unknown }) => void);
  else p.off?.('message', h);
}

export interface ShareDescriptor {
  kind: 'memsys.mmsa';
  v: 1;
  id: number;
  name: string;
  small: boolean;
  defaultSize: number;
  arenaSize: number;
  magazineBytes: number;
  timeIval: number;
  debug: boolean;
  control: SharedArrayBuffer;
  arenas: WebAssembly.Memory[];
  /** The sharer's pressure thresholds (bytes), so that every realm reports the same levels. */
  minFree?: number;
  lowWM?: number;
  /** The sharer's budget: every realm holds the pool to it. */
  budget?: BudgetOptions;
  /** The compiled core, so that an attaching realm need not fetch or compile it again. */
  core?: WebAssembly.Module;
}

const MIN_ARENA = 1 * MiB;
const MAX_ARENA = 4 * GiB;
const DEFAULT_TIME_IVAL = 3 * 60_000;
const DEADBEEF = 0xefbeadde; // little-endian bytes DE AD BE EF

type Env = Record<string, string | undefined>;


function optInt(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalidSize(`option ${key}`, v, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

// AIS_DEBUG as in AIStore: "memsys", "memsys=4", or a comma list of module=level.
function debugFromEnv(env: Env): boolean {
  const v = env.AIS_DEBUG;
  if (v === undefined || v.trim() === '') return false;
  let on = false;
  for (const part of v.split(',')) {
    const m = /^\s*([\w.-]+)\s*(?:=\s*(\S*))?\s*$/.exec(part);
    if (!m || (m[2] !== undefined && !/^\d+$/.test(m[2]))) {
      throw new MemsysError('ERR_MEMSYS_ENV',
        `cannot parse AIS_DEBUG ${JSON.stringify(v)}: expected a comma list of module or module=level, such as memsys=4`);
    }
    if (m[1] === 'memsys' && (m[2] === undefined || Number(m[2]) > 0)) on = true;
  }
  return on;
}

// Per-MMSA counters shared by every realm:
//   i32 head[8]: last arena id, last handoff ticket, arenas open (the budget's count), arenas
//   retired (dropped, not given back, not yet collected: the budget counts them too), the key of
//   handoff digests, the last realm tag, 1 once mapping may fail (never drop the last arena) ·
//   BigInt64 hits[64] at byte 32 · i32 live[64] at byte 544 · i32 tickets[TICKETS] and
//   i32 digests[TICKETS] (handoff.ts) ·
//   i32 realms[REALM_SLOTS × 2]: per slot (tag mod REALM_SLOTS) the tag of the realm there
//   (negative once it is gone) and the arenas it retired; no two live realms share a slot ·
//   i32 orphans[1 + ORPHANS * 3] after them: a count, then (arena id, class, offset / 128) of
//   buffers a realm could not give back itself (see terminate); arena id 0: free, −1: being written
const ORPHANS = 1024;
const HEAD_BYTES = 32;
const H_OPEN = 2; // head[2]: arenas open
const H_RETIRED = 3; // head[3]: arenas dropped whose memory may still be resident
const H_KEY = 4;     // head[4]: the key of handoff digests
const H_REALMS = 5;  // head[5]: the last realm tag handed out (tags start at 2; 1 is a bare core's)
const H_LIVE = 7;    // head[7]: realms alive (not known gone)
const H_KEEP_ONE = 6; // head[6]: 1 once any realm found that a new arena may fail to map
const REALM_SLOTS = 4096; // realms alive at once, at most (the owner table keeps 16 bits of a tag)
const CONTROL_BYTES = HEAD_BYTES + NUM_CLASSES * 12 + TICKETS * 8 + REALM_SLOTS * 8 + (1 + ORPHANS * 3) * 4;
class Control {
  readonly sab: SharedArrayBuffer | ArrayBuffer;
  readonly head: Int32Array;
  readonly hits: BigInt64Array;
  readonly live: Int32Array;
  readonly tickets: Int32Array;
  readonly digests: Int32Array;
  readonly realms: Int32Array;
  readonly orphans: Int32Array;
  constructor(sab?: SharedArrayBuffer | ArrayBuffer, shared = true) {
    this.sab = sab ?? (shared ? new SharedArrayBuffer(CONTROL_BYTES) : new ArrayBuffer(CONTROL_BYTES));
    this.head = new Int32Array(this.sab, 0, HEAD_BYTES / 4);
    this.hits = new BigInt64Array(this.sab, HEAD_BYTES, NUM_CLASSES);
    this.live = new Int32Array(this.sab, HEAD_BYTES + NUM_CLASSES * 8, NUM_CLASSES);
    this.tickets = new Int32Array(this.sab, HEAD_BYTES + NUM_CLASSES * 12, TICKETS);
    this.digests = new Int32Array(this.sab, HEAD_BYTES + NUM_CLASSES * 12 + TICKETS * 4, TICKETS);
    this.realms = new Int32Array(this.sab, HEAD_BYTES + NUM_CLASSES * 12 + TICKETS * 8, REALM_SLOTS * 2);
    this.orphans = new Int32Array(this.sab, HEAD_BYTES + NUM_CLASSES * 12 + TICKETS * 8 + REALM_SLOTS * 8, 1 + ORPHANS * 3);
    if (!sab) this.head[H_KEY] = randomId() | 0;
  }

  // A new realm's tag, in a slot no live realm holds (a gone realm's slot is reused).
  newRealm(): number {
    for (let tries = 0; tries <= REALM_SLOTS; tries++) {
      const tag = (Atomics.add(this.head, H_REALMS, 1) >>> 0) % 0x7ffffffd + 2;
      const at = (tag % REALM_SLOTS) * 2;
      const was = Atomics.load(this.realms, at);
      if (was > 0 || Atomics.compareExchange(this.realms, at, was, tag) !== was) continue;
      Atomics.add(this.head, H_LIVE, 1);
      return tag;
    }
    throw new MemsysError('ERR_MEMSYS_STATE', `more than ${REALM_SLOTS} realms are attached to this pool at once`);
  }

  // Realm `tag` is gone: it no longer counts as alive, nor do the arenas it retired (its
  // references to them went with it).
  setDead(tag: number): void {
    const at = (tag % REALM_SLOTS) * 2;
    if (Atomics.load(this.realms, at) !== tag) return;
    const retired = Atomics.exchange(this.realms, at + 1, 0); // before the slot can be reused
    if (Atomics.compareExchange(this.realms, at, tag, -tag) !== tag) {
      Atomics.add(this.realms, at + 1, retired);
      return;
    }
    Atomics.sub(this.head, H_LIVE, 1);
    Atomics.sub(this.head, H_RETIRED, retired);
  }

  // A live realm always holds its slot: an issued tag whose slot holds anything else is gone (its
  // slot may be another realm's by now).
  isDead(tag: number): boolean {
    return tag >= 2 && tag < Atomics.load(this.head, H_REALMS) + 2 && Atomics.load(this.realms, (tag % REALM_SLOTS) * 2) !== tag;
  }

  // The low 16 bits of a gone realm's tag (what the owner table keeps) name no live realm.
  ownerFree(tag: number): boolean {
    const now = Atomics.load(this.realms, (tag % REALM_SLOTS) * 2);
    return now <= 0 || (now & 0xffff) !== (tag & 0xffff);
  }

  get alive(): number {
    return Atomics.load(this.head, H_LIVE);
  }

  // Arenas dropped pool-wide whose memory may still be resident.
  get retired(): number {
    return Math.max(0, Atomics.load(this.head, H_RETIRED));
  }

  // One more (or, n = -1, one fewer) arena retired by realm `tag`.
  retire(tag: number, n: 1 | -1): void {
    const at = (tag % REALM_SLOTS) * 2;
    if (Atomics.load(this.realms, at) !== tag) return; // gone: its count went with it
    Atomics.add(this.realms, at + 1, n);
    Atomics.add(this.head, H_RETIRED, n);
  }

  get key(): number {
    return this.head[H_KEY];
  }
}

export class MMSA extends EventTarget {
  readonly name: string;
  readonly small: boolean;
  readonly defaultSize: number;
  readonly arenaSize: number;
  readonly timeIval: number;
  readonly shared: boolean;
  /** @internal */ debug = false;
  private readonly opts: MMSAOptions;
  private readonly magazineBytes: number;
  private readonly now: () => number;
  /** @internal */ id: number;
  /** @internal */ control: Control;
  /** @internal */ readonly slabs: Slab[] = [];
  private readonly arenas: Arena[] = [];
  /** @internal */ readonly byId = new Map<number, Arena>();
  private readonly byBuffer = new WeakMap<ArrayBufferLike, Arena>();
  // Received (posted) views already freed here: such a view cannot be marked stale the way our own
  // views are, so a second free of the same object must be refused by identity.
  private readonly freedPosted = new WeakSet<Uint8Array>();
  private channel: BroadcastChannel | undefined;
  private readonly ports = new Map<Portlike, (data: unknown) => void>(); // links to other realms
  private state: 'new' | 'ready' | 'terminated' = 'new';
  private min: MinFree = { bytes: 0, source: 'not initialised' };
  private lowWM = 0;                   // AIStore's low watermark, set at init (pressure.ts)
  private readonly swap = new SwapTrend();
  private oom = false;                 // an arena could not be created since memory was last freed
  private oomInUse = 0;                // bytes in use in this realm when it could not
  private hkTimer: ReturnType<typeof setTimeout> | undefined;
  private highDepth = 128;             // High's depth, halved each High tick down to 32 (housekeep.ts)
  private lastPressure: PressureLevel | undefined;
  private readonly emptySince = new Map<Arena, number>();
  private readonly retired = new Retired();
  private readonly madvise: MadviseMode;
  /** @internal This realm's tag in the arenas' lock words. */ realm: number;
  private readonly portRealms = new Map<Portlike, Set<number>>(); // realms reached through each port
  private readonly toReclaim = new Map<number, Set<Arena>>();   // dead realms' arenas locked at their death
  /** Resolves once the realm this MMSA was attached from can learn of this realm's death (in a
   * browser, once this realm holds its Web Lock, which needs its event loop to turn): await it
   * before work that never yields, or a terminate() of this worker goes unnoticed there. */
  watched: Promise<void> = Promise.resolve();
  private readonly budgetCtl: BudgetController | undefined;
  private readonly idle: { hits: number; since: number }[] = [];
  private pattern: Uint32Array | undefined;
  private defaultSlab: Slab | undefined;            // set by init; terminate empties every magazine,
                                                    // so a refill is where a terminated MMSA throws

  constructor(options: MMSAOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw invalidArg('options', options, 'must be an object with at least a name');
    }
    const o = options as unknown as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '') throw invalidArg('option name', o.name, 'must be a non-empty string');
    this.name = o.name;
    this.opts = options;
    for (const k of ['small', 'shared', 'debug', 'housekeeping'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidArg(`option ${k}`, o[k], 'must be a boolean');
    }
    this.small = options.small === true;
    this.timeIval = optInt(o, 'timeIval', 1, 24 * 3600_000) ?? DEFAULT_TIME_IVAL;
    optInt(o, 'minFree', 0, Number.MAX_SAFE_INTEGER);
    optInt(o, 'minPctTotal', 0, 100);
    optInt(o, 'minPctFree', 0, 100);
    const arena = optInt(o, 'arenaSize', MIN_ARENA, MAX_ARENA) ?? (isNode() ? 64 * MiB : 16 * MiB);
    if (arena % WASM_PAGE !== 0) throw invalidSize('option arenaSize', arena, 'must be a multiple of 64 KiB (65536)');
    this.arenaSize = arena;
    const def = options.defaultSize ?? (this.small ? 1 * KiB : 32 * KiB);
    exactClass(def, this.small);
    this.defaultSize = def;
    this.magazineBytes = optInt(o, 'magazineBytes', 0, 1 * GiB) ?? 1 * MiB;
    for (const k of ['memStats', 'now'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'function') throw invalidArg(`option ${k}`, o[k], 'must be a function');
    }
    if (o.env !== undefined) {
      const env = o.env as Record<string, unknown>;
      if (typeof env !== 'object' || env === null) throw invalidArg('option env', env, 'must be an object of strings');
      for (const [k, v] of Object.entries(env)) {
        if (v !== undefined && typeof v !== 'string') throw invalidArg(`option env.${k}`, v, 'must be a string, as an environment variable is');
      }
    }
    if (o.madvise !== undefined && o.madvise !== 'dontneed' && o.madvise !== 'free') throw invalidArg('option madvise', o.madvise, "must be 'dontneed' or 'free'");
    this.madvise = options.madvise ?? 'dontneed';
    this.budgetCtl = options.budget === undefined ? undefined : new BudgetController(options.budget);
    if (this.budgetCtl && this.budgetCtl.ceiling < this.arenaSize) {
      throw invalidArg('option budget.ceiling', this.budgetCtl.ceiling, `must hold at least one arena (arenaSize ${this.arenaSize})`);
    }
    if (options.shared === true && !sharedAvailable()) {
      throw new MemsysTypeError('ERR_MEMSYS_STATE',
        'option shared true needs SharedArrayBuffer, which this page lacks (it must be cross-origin isolated)');
    }
    this.shared = options.shared ?? sharedAvailable();
    this.now = options.now ?? (() => performance.now());
    this.id = randomId();
    this.control = new Control(undefined, this.shared);
    this.realm = this.control.newRealm();
  }

  // ---- life cycle --------------------------------------------------------------------------------

  // Reads the environment, checks free memory against the minimum and makes the MMSA usable.
  // Returns the error (the MMSA is initialised all the same), or throws it when panicOnErr.
  init(panicOnErr = false): MemsysError | null {
    if (this.state !== 'new') {
      throw new MemsysError('ERR_MEMSYS_STATE', `MMSA ${show(this.name)} is already ${this.state === 'ready' ? 'initialised' : 'terminated'}`);
    }
    const env: Env = this.opts.env ?? processEnv();
    let err: MemsysError | null = null;
    let host: MemStats | undefined;
    let debug = false;
    try {
      debug = this.opts.debug ?? debugFromEnv(env);
    } catch (e) {
      if (!(e instanceof MemsysError)) throw e;
      err = e;
    }
    coreModule(this.shared, debug); // the browser bundle's core must be loaded: nothing is changed yet
    this.debug = debug;
    try {
      host = this.hostStats();
      const min = minFree(env, this.opts, host);
      this.min = { bytes: min.bytes, source: min.source };
      if (min.error) err ??= min.error;
      if (host) this.lowWM = lowWatermark(this.min.bytes, host.free);
      if (host && host.free < this.min.bytes) err ??= insufficient(host.free, this.min);
    } catch (e) {
      if (!(e instanceof MemsysError)) throw e;
      err ??= e;
    }
    this.setup(host);
    if (err && panicOnErr) throw err;
    return err;
  }

  // `host`: the figures init read, for the first pressure level (attach reads its own).
  private setup(host = this.hostStats()): void {
    for (let c = 0; c < NUM_CLASSES; c++) {
      const size = classSize(c);
      const cap = Math.max(4, Math.min(128, Math.floor(this.magazineBytes / size)));
      this.slabs.push(new (this.debug ? DebugSlab : Slab)(this, c, size, cap & ~1));
      this.idle.push({ hits: 0, since: this.now() });
    }
    if (this.debug) this.pattern = new Uint32Array(MAX_SIZE / 4).fill(DEADBEEF);
    this.defaultSlab = this.slabs[exactClass(this.defaultSize, this.small)];
    this.state = 'ready';
    this.lastPressure = this.pressureOf(host); // the level 'pressure' events change from
    this.schedule(this.timeIval);
  }

  // Frees every slab and drops every arena of this realm. Buffers still in use become invalid:
  // freeing one afterwards is an error, and their memory goes when the last view of it does.
  terminate(): void {
    if (this.state === 'terminated') return;
    if (this.hkTimer !== undefined) clearTimeout(this.hkTimer);
    this.hkTimer = undefined;
    this.adoptOrphans();
    for (const s of this.slabs) {
      this.flush(s, s.mag.length);
      // What is left are buffers freed here (posted to us) in arenas whose memory has not
      // arrived yet: this realm has no core to give them back with. Leave them to a realm that
      // has one.
      for (const v of s.mag) {
        v[kArena]!.disown(v[kSlot]! * 128);
        this.orphan(v[kArena]!.id, s.cls, v[kSlot]!);
      }
      s.base -= s.mag.length;
      s.mag.length = 0;
      this.publish(s);
    }
    this.defaultSlab = undefined;
    for (const s of this.slabs) s.liveState = -1;
    for (const a of this.arenas) {
      unlessBusy(() => { a.returnPending(); a.releaseAll(); }); // locked: its scratch page stays
      a.mm = null;
    }
    this.arenas.length = 0;
    this.byId.clear();
    this.emptySince.clear();
    this.toReclaim.clear();
    this.channel?.close();
    this.channel = undefined;
    for (const [p, fn] of this.ports) unlistenPort(p, fn);
    this.ports.clear();
    this.control.setDead(this.realm); // it holds no lock now: a lock word with its tag is stale
    this.state = 'terminated';
  }

  /** @internal False before init() and after terminate(). */
  get live(): boolean {
    return this.state === 'ready';
  }

  private ready(): void {
    if (this.state === 'ready') return;
    throw new MemsysError('ERR_MEMSYS_STATE', this.state === 'new'
      ? `MMSA ${show(this.name)} is not initialised: call init() first`
      : `MMSA ${show(this.name)} is terminated`);
  }

  // ---- allocation --------------------------------------------------------------------------------

  // The slab of buffers of exactly `size` bytes.
  getSlab(size: number): Slab {
    this.ready();
    return this.slabs[exactClass(size, this.small)];
  }

  // A buffer of the default size.
  alloc(): Uint8Array {
    const s = this.defaultSlab;
    if (s === undefined) return this.ready() as never;
    return s.alloc();
  }

  // A buffer of the smallest class that holds `n` bytes; its length is the class size.
  allocSize(n: number): Uint8Array {
    // Fast path for the usual argument (an integer 0 … 128 KiB); everything else, including every
    // bad value, goes through fitClass and its errors.
    if (typeof n === 'number' && (n >>> 0) === n && n <= MAX_SIZE && this.state === 'ready') return this.slabs[fitClassOf(n, this.small)].alloc();
    this.ready();
    return this.slabs[fitClass(n, this.small)].alloc();
  }

  free(buf: Uint8Array): void {
    const slab = (buf as SlabBuffer | null | undefined)?.[kSlab];
    if (slab === undefined || slab.mm !== this) return this.freeSlow(buf, undefined);
    slab.free(buf);
  }

  // The slab a buffer of this MMSA belongs to.
  slabOf(buf: Uint8Array): Slab {
    this.ready();
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array from this MMSA');
    // The state byte knows the class (4 KiB buffers exist in both families); a view that is not a
    // live one of ours falls back to its length.
    const slab = (buf as SlabBuffer)[kSlab];
    if (slab !== undefined && slab.mm === this) return slab;
    // A view posted from another realm of this pool: its arena's header and state byte say.
    const hdr = typeof SharedArrayBuffer === 'function' && buf.buffer instanceof SharedArrayBuffer ? readHeader(buf.buffer) : undefined;
    if (hdr?.owner === this.id && buf.byteOffset % 128 === 0) {
      const s = new Uint8Array(buf.buffer, new Uint32Array(buf.buffer, 0, 64)[H_STATE] + buf.byteOffset / 128, 1)[0];
      if ((s & 3) !== 0 && classSize(s >>> 2) === buf.byteLength) return this.slabs[s >>> 2];
    }
    throw new MemsysError('ERR_MEMSYS_NOT_OWNED', `${describe(buf)} is not a buffer of MMSA ${show(this.name)}`);
  }

  // An orphan entry's arena id is its state: 0 free, −1 being written, > 0 published. A writer
  // reserves an entry (0 → −1) before filling it; a reader claims one by compare-exchange on the
  // published id, so exactly one realm gives each buffer back. A full table leaves the buffer out
  // of use until the arena is dropped.
  private orphan(arena: number, cls: number, slot: number): void {
    const o = this.control.orphans;
    for (let e = 1; e < o.length; e += 3) {
      if (Atomics.compareExchange(o, e, 0, -1) !== 0) continue;
      Atomics.store(o, e + 1, cls);
      Atomics.store(o, e + 2, slot);
      Atomics.store(o, e, arena);
      Atomics.add(o, 0, 1);
      return;
    }
  }

  // Gives back the orphans in arenas this realm has a core for (on refill and on adopting an arena).
  private adoptOrphans(): void {
    const o = this.control.orphans;
    if (Atomics.load(o, 0) === 0) return;
    for (let e = 1; e < o.length; e += 3) {
      const id = Atomics.load(o, e);
      if (id <= 0) continue;
      const a = this.byId.get(id);
      if (!a?.core) continue;
      const cls = Atomics.load(o, e + 1);
      const slot = Atomics.load(o, e + 2);
      if (Atomics.compareExchange(o, e, id, 0) !== id) continue;
      Atomics.sub(o, 0, 1);
      if (a.give(cls, 1, () => slot * 128) === 0) this.orphan(id, cls, slot); // locked: another time
    }
  }

  // ---- pressure ----------------------------------------------------------------------------------

  // The memory pressure now: Pressure.Low … Pressure.OOM (pressure.ts). Reads the statistics
  // provider. The swap trend moves only at housekeeping passes (as in AIStore), so that watching
  // or scraping the level does not change it.
  pressure(): PressureLevel {
    return this.pressureOf(this.hostStats());
  }

  /** @internal The level for figures already read, so that a level shown beside them (metrics,
   * watch, the CLI) comes from the same reading, and the provider is read once. */
  pressureOf(s: MemStats | undefined): PressureLevel {
    this.ready();
    if (this.oom && this.bytesInUse() < this.oomInUse) this.oom = false; // memory was freed since
    const p = pressureLevel(s, { minFree: this.min.bytes, lowWM: this.lowWM, crit: this.swap.crit, oom: this.oom });
    this.notePressure(p);
    return p;
  }

  // Host memory statistics from this MMSA's provider; undefined without one, or when it fails (a
  // provider's failure never escapes: it only lowers what is known).
  hostStats(): MemStats | undefined {
    const p = this.opts.memStats ?? defaultMemStats();
    if (!p) return undefined;
    try {
      return saneStats(p({ poolBytes: this.heldArenas() * this.arenaSize }));
    } catch {
      return undefined;
    }
  }

  // This realm's arenas and the pool's retired ones: what the pool holds that is not given back.
  private heldArenas(): number {
    return this.arenas.length + this.control.retired;
  }

  // Bytes in use in every realm (the shared counters), for the budget.
  private bytesInUseAll(): number {
    let n = 0;
    for (const s of this.slabs) {
      this.publish(s);
      n += Math.max(0, Atomics.load(this.control.live, s.cls)) * s.size;
    }
    return n;
  }

  /** The budget's figures, if the MMSA has one: the target the pool follows and its bounds. */
  get budget(): { target: number; floor: number; ceiling: number; effectiveCeiling: number; reserve: number } | undefined {
    const b = this.budgetCtl;
    if (!b) return undefined;
    return { target: b.target, floor: b.floor, ceiling: b.ceiling, effectiveCeiling: b.ceilingAt(this.lastPressure ?? Pressure.Low), reserve: b.reserve };
  }

  private bytesInUse(): number {
    let n = 0;
    for (const s of this.slabs) n += (s.base - s.mag.length) * s.size;
    return n;
  }

  // The pool's figures in Prometheus text format, for a server's /metrics.
  metrics(): string {
    const st = this.stats();
    const host = this.hostStats();
    return metricsText({
      name: this.name, arenas: st.arenas, bytes: st.bytes, classes: st.classes,
      pressure: this.pressureOf(host), minFree: this.min.bytes, lowWM: this.lowWM, host,
    });
  }

  /** The thresholds pressure() applies, in bytes. */
  get watermarks(): { minFree: number; lowWM: number; source: string } {
    return { minFree: this.min.bytes, lowWM: this.lowWM, source: this.min.source };
  }

  // ---- SGLs and handoffs ---------------------------------------------------------------------------

  // An SGL, AIStore's way: `sbufSize` names its buffers' size; otherwise `immediateSize` picks the
  // smallest buffer of this MMSA's family that holds it, or, for more than the largest, a
  // sixteenth of it (so that about 16 buffers hold it). The SGL starts with room for it.
  newSGL(immediateSize = 0, sbufSize?: number): SGL {
    this.ready();
    if (!Number.isSafeInteger(immediateSize) || immediateSize < 0) {
      throw invalidSize('immediateSize', immediateSize, 'must be a non-negative integer');
    }
    // An expected size from outside (a Content-Length) must not make the pool map arenas for
    // memory the host does not have.
    const total = immediateSize > this.arenaSize ? this.hostStats()?.total : undefined;
    if (total !== undefined && immediateSize > total) {
      throw new MemsysRangeError('ERR_MEMSYS_SIZE_TOO_LARGE', `immediateSize ${immediateSize} is more than this host's memory (${total} bytes)`);
    }
    const ceiling = this.budget?.effectiveCeiling;
    if (ceiling !== undefined && immediateSize > ceiling) {
      throw new MemsysError('ERR_MEMSYS_BUDGET', `immediateSize ${immediateSize} is more than the budget's ceiling ${formatBytes(ceiling)}`);
    }
    const cls = sbufSize === undefined
      ? (immediateSize === 0 ? exactClass(this.defaultSize, this.small) : sglClass(immediateSize, this.small))
      : exactClass(sbufSize, this.small);
    const sgl = new SGL(this.slabs[cls]);
    sgl.grow(immediateSize);
    return sgl;
  }

  // Hands a buffer in use to another realm of this MMSA: post the result, `receive` it there.
  handoff(buf: Uint8Array): BufferHandoff {
    this.ready();
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array from this MMSA');
    const slab = (buf as SlabBuffer)[kSlab];
    if (slab === undefined || slab.mm !== this) {
      throw notOwned(buf, 'only a buffer this realm allocated or received can be handed off');
    }
    return { kind: 'memsys.buf', ...packView(this, buf as SlabBuffer, slab) };
  }

  /** @internal */
  handoffSlots(slab: Slab, arenas: readonly Arena[], offs: readonly number[], extent: { woff: number; roff: number }): SlotsHandoff {
    this.ready();
    return packSlots(this, slab, arenas, offs, extent);
  }

  // The buffer or SGL of a handoff, now this realm's to use and free.
  receive(handoff: BufferHandoff): Uint8Array;
  receive(handoff: SGLHandoff): SGL;
  receive(handoff: Handoff): Uint8Array | SGL;
  receive(handoff: Handoff): Uint8Array | SGL {
    this.ready();
    return receiveHandoff(this, handoff);
  }

  // A channel to hand buffers and SGLs to one other realm through shared memory (channel.ts);
  // with a port from the other end's `channel.port()`, that channel's receiving end.
  openChannel(port?: ChannelPort): Channel {
    this.ready();
    return openChannel(this, port);
  }

  /** @internal True if this realm has a core for arena `id`; otherwise asks the realms that
   * have its memory to send it. */
  requestArena(id: number): boolean {
    if (this.byId.get(id)?.core) return true;
    this.listen();
    this.broadcast({ want: id });
    return false;
  }

  /** @internal Resolves once this realm has a core for arena `id`, asking the other realms for its
   * memory; rejects at `deadline` (a performance.now() time). */
  async arenaKnown(id: number, deadline: number): Promise<void> {
    if (this.requestArena(id)) return;
    while (!this.byId.get(id)?.core) {
      if (performance.now() >= deadline || this.state !== 'ready') {
        throw new MemsysError('ERR_MEMSYS_DESCRIPTOR', `arena ${id} did not reach this realm in time (is the realm that made it alive?)`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  // ---- magazines ---------------------------------------------------------------------------------

  /** @internal Fills an empty magazine with a batch from the arenas, adding an arena if all are full. */
  refill(s: Slab): void {
    this.ready();
    this.adoptOrphans();
    this.publish(s);
    let written: MemsysError | undefined;
    this.take(s, Math.min(s.batch, BATCH_MAX), true, (a, off) => {
      const v = this.view(s, a, off);
      if (this.pattern) {
        written ??= writtenWhileFree(a, off, s.size);
        fillPattern(v, this.pattern);
      }
      s.mag.push(v);
    });
    if (written) throw written; // the buffers are in the magazine, poisoned again
  }

  // Takes n slots of s's class from the arenas, oldest first (live data packs into them and the
  // newest drain, to be dropped), adding arenas while all are full. When no arena can be added,
  // `partial` takes what there was (a refill); otherwise the error is thrown.
  private take(s: Slab, n: number, partial: boolean, each: (a: Arena, off: number) => void): void {
    let got = 0;
    const fromArenas = () => {
      for (const a of this.arenas) {
        if (got === n) break;
        if (a.core && !a.closed && !a.quarantined) got += this.takeFrom(s, a, n - got, each); // a locked one gives 0
      }
    };
    fromArenas();
    // Buffers this realm caches in the slab's magazine count before a new arena (an SGL takes
    // slots from the arenas, not from the magazine).
    if (got < n && s.mag.length > 0) {
      this.flush(s, s.mag.length);
      fromArenas();
    }
    // Under pressure, memory the pool holds in other classes is used before a new arena is mapped.
    let reclaimed = false;
    if (got < n && (this.lastPressure ?? Pressure.Low) >= Pressure.High) {
      reclaimed = true;
      this.reclaim();
      fromArenas();
    }
    while (got < n) {
      let a: Arena;
      try {
        a = this.addArena();
      } catch (e) {
        if (partial && got > 0) return;
        // Reclaim before refuse: every magazine of this realm and every empty run of every class
        // go back to the arenas, and the request is tried on them once more.
        if (!reclaimed) {
          reclaimed = true;
          this.reclaim();
          fromArenas();
          continue;
        }
        throw e;
      }
      const more = this.takeFrom(s, a, n - got, each);
      this.announce(a);
      if (more === 0) {
        if (a.reused) continue; // a reopened arena may hold less than a fresh one: try the next
        if (partial && got > 0) return;
        throw new MemsysError('ERR_MEMSYS_OUT_OF_MEMORY', `a new ${a.bytes}-byte arena has no room for a ${s.size}-byte buffer`);
      }
      got += more;
    }
  }

  // Everything this realm holds free goes back to the arenas: every magazine, then every fully
  // free run of every class to the span allocator, where any class can carve it.
  private reclaim(): void {
    this.adoptOrphans();
    for (const sl of this.slabs) if (sl.mag.length > 0) this.flush(sl, sl.mag.length);
    for (const a of this.arenas) {
      if (!a.core || a.closed) continue;
      unlessBusy(() => a.release());
    }
  }

  private takeFrom(s: Slab, a: Arena, n: number, each: (a: Arena, off: number) => void): number {
    let got = 0;
    unlessBusy(() => { // locked by another realm: what was taken before is ours
      while (got < n) {
        const k = a.take(s.cls, Math.min(n - got, BATCH_MAX), (off) => each(a, off));
        if (k === 0) break;
        got += k;
      }
    });
    s.base += got;
    if (this.debug) a.check();
    return got;
  }

  /** @internal n buffers of s's class for an SGL, as slots (arena, offset) with no view made:
   * marked LIVE, counted in use and as hits. All or none: on out-of-memory the slots taken so far
   * go back. */
  takeSlots(s: Slab, n: number, each: (a: Arena, off: number) => void): void {
    this.ready();
    const arenas: Arena[] = [];
    const offs: number[] = [];
    const had = new Set(this.arenas);
    try {
      this.take(s, n, false, (a, off) => {
        a.state[off >>> 7] = s.liveState;
        arenas.push(a);
        offs.push(off);
      });
    } catch (e) {
      const oom = this.oom; // a rollback is not memory freed
      if (offs.length) this.giveSlots(s, arenas, offs);
      // All or nothing: the arenas this request mapped go again.
      const keepOne = this.keepOne(undefined);
      for (const a of [...this.arenas]) if (!had.has(a)) this.dropIfEmpty(a, keepOne);
      if (oom) {
        this.oom = true;
        this.oomInUse = this.bytesInUse();
      }
      throw e;
    }
    if (this.pattern) {
      let written: MemsysError | undefined;
      for (let i = 0; i < offs.length; i++) written ??= writtenWhileFree(arenas[i], offs[i], s.size);
      if (written) {
        this.giveSlots(s, arenas, offs); // poisoned again on the way back
        throw written;
      }
      for (let i = 0; i < offs.length; i++) fillPattern(arenas[i].u8.subarray(offs[i], offs[i] + s.size), this.pattern);
    }
    for (let i = 0; i < offs.length; i++) each(arenas[i], offs[i]);
    s.hits += n;
    this.publish(s);
  }

  /** @internal Gives an SGL's slots back to their arenas (they are LIVE). */
  giveSlots(s: Slab, arenas: readonly Arena[], offs: readonly number[]): void {
    const byArena = new Map<Arena, number[]>();
    let kept = 0;
    for (let i = 0; i < offs.length; i++) {
      const a = arenas[i];
      a.state[offs[i] >>> 7] = s.outState;
      if (this.pattern) fillPattern(a.u8.subarray(offs[i], offs[i] + s.size), this.pattern);
      if (!a.core) { // its memory has not arrived (a received SGL): cached until it does, as flush does
        a.claim(offs[i]);
        s.mag.push(this.view(s, a, offs[i]));
        kept++;
        continue;
      }
      let list = byArena.get(a);
      if (!list) byArena.set(a, (list = []));
      list.push(offs[i]);
    }
    for (const [a, list] of byArena) {
      this.oom = false;
      for (let i = 0; i < list.length; i += BATCH_MAX) {
        const part = list.slice(i, i + BATCH_MAX);
        const given = a.give(s.cls, part.length, (j) => part[j]);
        for (const off of part.slice(given)) { a.claim(off); s.mag.push(this.view(s, a, off)); } // locked: cached for now
        kept += part.length - given;
      }
      if (this.debug) a.check();
    }
    s.base -= offs.length - kept;
    this.publish(s);
  }

  // The one view this realm hands out for the buffer at `off`, tagged for the hot path.
  /** @internal */
  view(s: Slab, a: Arena, off: number): SlabBuffer {
    const v = new Uint8Array(a.buffer, off, s.size) as SlabBuffer;
    v[kSlab] = s;
    v[kState] = a.state;
    v[kSlot] = off >>> 7; // a small integer (Smi): a double here costs ~2 ns per use on the hot path
    v[kArena] = a;
    return v;
  }

  /** @internal Gives the n oldest views of a magazine back to their arenas. */
  flush(s: Slab, n: number): void {
    this.publish(s);
    const out = s.mag.splice(0, n);
    s.base -= out.length;
    const keep: SlabBuffer[] = [];
    const byArena = new Map<Arena, SlabBuffer[]>();
    for (const v of out) {
      const a = v[kArena]!;
      if (!a.core) { keep.push(v); continue; } // its memory has not arrived yet
      let list = byArena.get(a);
      if (!list) byArena.set(a, (list = []));
      list.push(v);
    }
    for (const [a, list] of byArena) {
      this.oom = false;
      for (let i = 0; i < list.length; i += BATCH_MAX) {
        const part = list.slice(i, i + BATCH_MAX);
        const given = a.give(s.cls, part.length, (j) => part[j][kSlot]! << 7);
        for (const v of part.slice(0, given)) v[kSlot] = -1;
        keep.push(...part.slice(given)); // the arena is locked by another realm: they stay cached
      }
      if (this.debug) a.check();
    }
    if (keep.length) {
      s.mag.unshift(...keep);
      s.base += keep.length;
    }
  }

  private publish(s: Slab): void {
    if (s.hits) {
      Atomics.add(this.control.hits, s.cls, BigInt(s.hits));
      s.allocs += s.hits;
    }
    s.hits = 0;
    const live = s.base - s.mag.length;
    if (live !== s.published) Atomics.add(this.control.live, s.cls, live - s.published);
    s.published = live;
  }

  // ---- arenas ------------------------------------------------------------------------------------

  // A new arena, counted in the control block (every realm's budget sees it). It is announced to
  // the other realms by `announce`, after its creator has taken its first buffers: announced
  // empty, another realm could close it first.
  //
  // A retired arena (dropped by this realm, its memory not yet collected) is reused before a new
  // one is mapped: it is still resident, and under an address-space limit it is what keeps a new
  // mapping from succeeding. The budget's ceiling counts retired arenas with the open ones.
  private addArena(): Arena {
    const head = this.control.head;
    const count = Atomics.add(head, H_OPEN, 1) + 1;
    const b = this.budgetCtl;
    const p = this.lastPressure ?? Pressure.Low;
    const ceiling = b ? Math.max(b.ceilingAt(p), this.arenaSize) : Infinity; // one arena, whatever the pressure
    if (count * this.arenaSize <= ceiling) {
      const reused = this.reuseRetired();
      if (reused) return reused;
    }
    if (b) {
      const retired = this.control.retired;
      const held = (count + retired) * this.arenaSize;
      if (held > ceiling) {
        Atomics.sub(head, H_OPEN, 1);
        throw new MemsysError('ERR_MEMSYS_BUDGET', `a new ${formatBytes(this.arenaSize)} arena would take the pool to ` +
          `${formatBytes(held)}${retired ? ` (${retired} dropped arenas not yet collected included)` : ''}, above its ceiling ` +
          `${formatBytes(ceiling)} (${formatBytes(b.ceiling)} at ${pressureName(p)} pressure)`);
      }
    }
    const id = Atomics.add(head, 0, 1) + 1;
    let a: Arena;
    try {
      a = Arena.create(this.arenaSize, this.shared, this.debug, this.id, id, this.realm);
    } catch (e) {
      Atomics.sub(head, H_OPEN, 1);
      if (e instanceof MemsysError && e.code === 'ERR_MEMSYS_OUT_OF_MEMORY') {
        this.oom = true;
        this.oomInUse = this.bytesInUse();
        Atomics.store(head, H_KEEP_ONE, 1); // mapping can fail here: never drop the last arena
      }
      throw e;
    }
    this.oom = false;
    this.register(a);
    return a;
  }

  // The caller has counted the arena open already. Only a realm alone in its pool reuses: another
  // live realm may still hold the arena under its old id, or be about to let go of it.
  private reuseRetired(): Arena | undefined {
    const head = this.control.head;
    if (!this.aloneInPool()) return undefined;
    for (let r = this.retired.take(); r; r = this.retired.take()) {
      if (r.counted) this.control.retire(this.realm, -1);
      if (!r.arena.reopen(Atomics.add(head, 0, 1) + 1)) continue;
      r.arena.reused = true;
      this.register(r.arena);
      return r.arena;
    }
    return undefined;
  }

  private announce(a: Arena): void {
    if (a.memory) this.broadcast({ arena: a.memory });
    this.emit('arena-added', { id: a.id, bytes: a.bytes, arenas: this.arenas.length });
  }

  // `local`: a.buffer is this realm's own buffer of the arena (not one that came with a posted
  // view), so a view over it that we did not make is a subarray or copy of one of ours.
  private register(a: Arena, local = true): void {
    a.mm = this;
    a.onBusy = (x) => this.recoverFrom(x);
    this.arenas.push(a);
    this.byId.set(a.id, a);
    if (local) this.byBuffer.set(a.buffer, a);
  }

  // An arena's memory arrived (share descriptor or announcement): adopt it, or bind the arena
  // that a posted buffer made known first.
  /** @internal */
  adopt(memory: WebAssembly.Memory): void {
    if (this.state === 'terminated') return;
    const hdr = readHeader(memory.buffer);
    if (!hdr || hdr.owner !== this.id || hdr.closed) return;
    const known = this.byId.get(hdr.id);
    if (known?.core) return;
    if (known) {
      // The posted buffer it was known by is not registered as ours: other views that came in the
      // same message share it and must still be taken as posted, not as subarrays.
      known.bind(memory);
      this.byBuffer.set(known.buffer, known);
      // The views this realm cached for it were made over the posted buffer; remake them over
      // the memory's own, so that a subarray of one is recognised as ours once it is handed out.
      for (const sl of this.slabs) {
        sl.mag.forEach((v, i) => {
          if (v[kArena] === known) sl.mag[i] = this.view(sl, known, v[kSlot]! * 128);
        });
      }
    } else {
      this.register(Arena.adopt(memory, this.debug, this.realm));
    }
    this.adoptOrphans();
  }

  // ---- frees the fast path cannot prove ----------------------------------------------------------

  /** @internal A buffer that is not a view this realm made for this MMSA. */
  freeSlow(buf: Uint8Array, slab: Slab | undefined): void {
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array handed out by this MMSA');
    this.ready();
    const other = (buf as SlabBuffer)[kSlab];
    if (other !== undefined) {
      if (other.mm === this) return this.freeRejected(buf as SlabBuffer, slab ?? other);
      throw notOwned(buf, other.mm.state === 'terminated' ? 'its MMSA was terminated' : `it belongs to MMSA ${show(other.mm.name)}, not ${show(this.name)}`);
    }
    const ab = buf.buffer;
    if (this.byBuffer.has(ab)) {
      throw notOwned(buf, 'it is a view made from a buffer (a subarray or copy of the view); free the buffer itself');
    }
    const hdr = typeof SharedArrayBuffer === 'function' && ab instanceof SharedArrayBuffer ? readHeader(ab) : undefined;
    if (!hdr) throw notOwned(buf, 'it is not memsys memory');
    if (hdr.owner !== this.id) throw notOwned(buf, 'it belongs to another MMSA');
    const a = this.knowBuffer(ab as SharedArrayBuffer)!;
    // A posted view of a whole buffer is that buffer; anything else is a part of one.
    const off = buf.byteOffset;
    const g = Math.floor(off / 128);
    const s = a.state[g];
    if ((off & 127) !== 0 || s === 0) throw notOwned(buf, `offset ${off} is not the start of a buffer (a subarray?)`);
    const cls = s >>> 2;
    const size = classSize(cls);
    if (buf.byteLength !== size) throw notOwned(buf, `it is ${buf.byteLength} bytes of a ${size}-byte buffer (a subarray?)`);
    if (slab && slab.cls !== cls) throw wrongSlab(buf, slab, size);
    // Ours before the state says so: a realm reclaiming a dead realm's cached slots must not
    // take this one for the dead realm's.
    const was = a.claim(off);
    if ((s & 3) !== ST_LIVE || this.freedPosted.has(buf) ||
        Atomics.compareExchange(a.state, g, s, (cls << 2) | ST_OUT) !== s) {
      a.unclaim(off, was);
      throw notLive(buf);
    }
    this.freedPosted.add(buf);
    const target = this.slabs[cls];
    const v = this.view(target, a, off);
    if (this.pattern) fillPattern(v, this.pattern);
    target.push(v);
  }

  /** @internal The arena of a posted SharedArrayBuffer of this pool. One not yet announced to this
   * realm (or whose announcement it missed) is worked from that buffer, and the realms that hold
   * its memory are asked to send it. Undefined if the buffer is not an arena of this pool. */
  knowBuffer(ab: SharedArrayBuffer): Arena | undefined {
    const hdr = readHeader(ab);
    if (!hdr || hdr.owner !== this.id) return undefined;
    const known = this.byId.get(hdr.id);
    if (known) return known;
    const a = Arena.fromBuffer(ab, hdr.id, this.debug, this.realm);
    this.register(a, false);
    this.broadcast({ want: a.id });
    return a;
  }

  /** @internal A view of ours whose state is not LIVE for this slab: say exactly why, change nothing. */
  freeRejected(v: SlabBuffer, slab: Slab): never {
    this.ready();
    const i = v[kSlot]!;
    if (i === SLOT_MOVED) throw new MemsysError('ERR_MEMSYS_MOVED', `the ${v.length}-byte buffer was handed off to another realm; free it there`);
    const s = i >= 0 ? v[kState]![i] : 0;
    if ((s & 3) === ST_LIVE && s >>> 2 !== slab.cls) throw wrongSlab(v, slab, classSize(s >>> 2));
    throw notLive(v);
  }

  // ---- debug mode --------------------------------------------------------------------------------

  /** @internal A view leaving the magazine must still hold DEADBEEF; if not, it goes back
   * (refilled with the pattern) and the error says where it was written. */
  debugAlloc(v: SlabBuffer, s: Slab): void {
    const w = new Uint32Array(v.buffer, v.byteOffset, v.byteLength >>> 2);
    for (let i = 0; i < w.length; i++) {
      if (w[i] !== DEADBEEF) {
        fillPattern(v, this.pattern!);
        s.mag.push(v);
        throw new MemsysError('ERR_MEMSYS_USE_AFTER_FREE',
          `buffer at offset ${v.byteOffset} of arena ${v[kArena]!.id} was written at byte ${i * 4} while free`);
      }
    }
    this.checkArenas();
  }

  /** @internal */
  debugFree(v: SlabBuffer): void {
    fillPattern(v, this.pattern!);
    this.checkArenas();
  }

  private checkArenas(): void {
    for (const a of this.arenas) a.check();
  }

  // ---- sharing -----------------------------------------------------------------------------------

  // A descriptor to post to a worker, where MMSA.attach(descriptor) returns this MMSA over the
  // same arenas. Buffers then pass between the realms as they are (postMessage of the Uint8Array).
  //
  // `port` (a Worker, a MessagePort, or anything with postMessage and message events) also carries
  // the realms' arena announcements: browsers do not deliver a shared WebAssembly.Memory over a
  // BroadcastChannel (Chromium, measured), so there every realm must be linked by a port; the
  // other end passes its own side to MMSA.attach. This realm relays between its ports.
  share(port?: Portlike): ShareDescriptor {
    this.ready();
    if (!this.shared) {
      throw new MemsysError('ERR_MEMSYS_STATE', `MMSA ${show(this.name)} is single-threaded (no SharedArrayBuffer): it cannot be shared`);
    }
    if (port !== undefined) this.linkPort(port);
    this.listen();
    return {
      kind: 'memsys.mmsa', v: 1, id: this.id, name: this.name, small: this.small,
      defaultSize: this.defaultSize, arenaSize: this.arenaSize, magazineBytes: this.magazineBytes,
      timeIval: this.timeIval, debug: this.debug, control: this.control.sab as SharedArrayBuffer,
      minFree: this.min.bytes, lowWM: this.lowWM, budget: this.opts.budget,
      arenas: this.arenas.filter((a) => a.memory).map((a) => a.memory!),
      core: coreModule(true, this.debug),
    };
  }

  static attach(d: ShareDescriptor, port?: Portlike): MMSA {
    const bad = (why: string) => new MemsysTypeError('ERR_MEMSYS_DESCRIPTOR', `not a share descriptor: ${why}`);
    if (typeof d !== 'object' || d === null || d.kind !== 'memsys.mmsa') throw bad(`got ${show(d)} (make one with mm.share())`);
    if (d.v !== 1) throw bad(`version ${show(d.v)} is not 1`);
    if (!(d.control instanceof SharedArrayBuffer)) throw bad('control is not a SharedArrayBuffer');
    if (!Array.isArray(d.arenas) || !d.arenas.every((m) => m instanceof WebAssembly.Memory)) throw bad('arenas is not a list of WebAssembly.Memory');
    if (d.control.byteLength !== CONTROL_BYTES) throw bad(`control is ${d.control.byteLength} bytes, not ${CONTROL_BYTES}`);
    if (d.core !== undefined && !(d.core instanceof WebAssembly.Module)) throw bad(`core ${show(d.core)} is not a WebAssembly.Module`);
    if (!Number.isSafeInteger(d.id) || d.id < 1 || d.id > 0xffffffff) throw bad(`id ${show(d.id)} is not a pool id (an integer 1 … 2^32 − 1)`);
    for (const k of ['minFree', 'lowWM'] as const) {
      if (d[k] !== undefined && !(typeof d[k] === 'number' && Number.isFinite(d[k]) && d[k]! >= 0)) throw bad(`${k} ${show(d[k])} is not a number of bytes`);
    }
    if (port !== undefined) checkPort(port);
    const mm = new MMSA({
      name: d.name, small: d.small, defaultSize: d.defaultSize, arenaSize: d.arenaSize,
      magazineBytes: d.magazineBytes, timeIval: d.timeIval, debug: d.debug, shared: true, env: {}, budget: d.budget,
    });
    // Every part checked: only now may the descriptor's core join this realm's modules.
    if (d.core !== undefined && !adoptCore(d.core, Boolean(d.debug))) throw bad('core is not a memsys core for shared memories');
    coreModule(true, Boolean(d.debug)); // without a core in the descriptor, the browser bundle's must be loaded
    mm.id = d.id;
    mm.control = new Control(d.control);
    mm.realm = mm.control.newRealm();
    mm.debug = d.debug;
    if (Number.isFinite(d.minFree) && Number.isFinite(d.lowWM)) {
      mm.min = { bytes: d.minFree!, source: 'the sharing realm' };
      mm.lowWM = d.lowWM!;
    }
    try {
      mm.setup();
      for (const m of d.arenas) mm.adopt(m);
    } catch (e) {
      mm.terminate(); // a realm that never was: not counted alive, no timer left
      throw e;
    }
    if (port !== undefined) {
      mm.linkPort(port);
      mm.announceRealm(port);
    }
    mm.listen();
    // Arenas made after the descriptor was: every realm that holds one answers with its memory.
    mm.broadcast({ hello: true });
    return mm;
  }

  // Sends an announcement to every other realm: on the BroadcastChannel and on each port.
  private broadcast(msg: Announcement, except?: Portlike): void {
    this.channel?.postMessage(msg);
    for (const p of this.ports.keys()) if (p !== except) p.postMessage({ memsys: this.id, msg });
  }

  private linkPort(p: Portlike): void {
    checkPort(p);
    if (this.ports.has(p)) return;
    const fn = (data: unknown) => {
      const d = data as { memsys?: unknown; msg?: Announcement } | null;
      if (d?.memsys !== this.id || !d.msg) return;
      const tag = d.msg.realm;
      if (typeof tag === 'number' && Number.isSafeInteger(tag) && tag > 1) this.watchRealm(p, tag);
      else this.announced(d.msg, p);
    };
    this.ports.set(p, listenPort(p, fn));
  }

  private listen(): void {
    if (this.channel || typeof BroadcastChannel !== 'function') return;
    const ch = new BroadcastChannel(`memsys:${this.id}`);
    // Messages: {arena: memory} an arena to adopt; {want: id} a realm has buffers of arena `id`
    // but not its memory; {hello} a realm attached and wants every arena made since its descriptor;
    // {drop: id} arena `id` was closed: let go of it.
    ch.onmessage = (e: MessageEvent) => this.announced(e.data as Announcement);
    (ch as unknown as { unref?: () => void }).unref?.(); // never keep a Node process alive
    this.channel = ch;
  }

  // An announcement from another realm, by the BroadcastChannel or by a port (`from`, to which
  // answers go; announcements that came by port are relayed to this realm's other ports).
  private announced(d: Announcement | null, from?: Portlike): void {
    if (d?.arena instanceof WebAssembly.Memory) {
      const id = readHeader(d.arena.buffer)?.id;
      const had = id !== undefined && this.byId.get(id)?.core !== undefined;
      this.adopt(d.arena);
      if (from && !had) this.broadcast(d, from); // new here: pass it on (a relay ends where it is known)
    } else if (typeof d?.drop === 'number') {
      const a = this.byId.get(d.drop);
      if (a?.closed) this.dropArena(a, false);
      if (from && a) this.broadcast(d, from);
    } else if (this.state === 'ready' && (d?.hello || typeof d?.want === 'number')) {
      for (const a of this.arenas) {
        if (!a.memory || !(d.hello || a.id === d.want)) continue;
        if (from) from.postMessage({ memsys: this.id, msg: { arena: a.memory } });
        else this.channel?.postMessage({ arena: a.memory });
      }
    }
  }

  // ---- realms that die -----------------------------------------------------------------------------
  //
  // A realm can die at any instruction (worker.terminate()), also inside a core call, holding an
  // arena's lock. The lock word holds the holder's realm tag, and a core call that finds it taken
  // for too long returns E_BUSY instead of spinning forever. A realm is known dead once the realm
  // that linked its port sees it go (a Node Worker's 'exit'; in a browser, the Web Lock the realm
  // holds for its life is granted) or it terminates its MMSA; then any realm that meets its lock
  // takes it over and checks the arena (core `recover`): consistent, it is used on; broken, it is
  // quarantined.

  // No other realm of the pool is alive (every other tag handed out is marked dead).
  private aloneInPool(): boolean {
    return this.control.alive === 1 && !this.control.isDead(this.realm);
  }

  // Called by an arena whose lock stayed taken: true if its holder is dead and the lock recovered.
  private recoverFrom(a: Arena): boolean {
    const holder = a.lockHolder;
    if (holder === 0) return true; // released meanwhile
    if (!this.control.isDead(holder)) return false;
    const r = a.recover(holder);
    if (r === 'ok') this.emit('arena-recovered', { id: a.id, realm: holder });
    if (r === 'quarantined') this.emit('arena-quarantined', { id: a.id, realm: holder });
    return r !== false || a.lockHolder !== holder;
  }

  // Tells the realm at the other end of `port` this realm's tag, so that it can recover what this
  // realm leaves if it dies. Where there are Web Locks (browsers), it first takes a lock named
  // after the tag and never lets go of it: the browser releases it only once this realm is gone,
  // which is how the other realm learns of it (see watchRealm).
  private announceRealm(port: Portlike): void {
    const say = () => port.postMessage({ memsys: this.id, msg: { realm: this.realm } });
    const locks = webLocks();
    if (!locks) {
      say();
      return;
    }
    this.watched = new Promise<void>((resolve) => {
      void locks.request(this.lockName(this.realm), () => {
        say();
        resolve();
        return new Promise<void>(() => {});
      });
    });
  }

  private lockName(tag: number): string {
    return `memsys:${this.id}:${tag}`;
  }

  // A realm reached through port `p` said its tag: learn when it dies. A Node Worker emits 'exit'
  // once its thread is gone; in a browser the realm's Web Lock is granted to us only then (a
  // Worker's terminate() returns long before a busy worker has stopped: measured over 100 ms).
  private watchRealm(p: Portlike, tag: number): void {
    const w = p as { on?: (e: string, f: () => void) => unknown; threadId?: unknown };
    if (typeof w.on === 'function' && typeof w.threadId === 'number') {
      let tags = this.portRealms.get(p);
      if (!tags) {
        this.portRealms.set(p, (tags = new Set()));
        w.on('exit', () => { for (const t of tags!) this.realmGone(t); this.portRealms.delete(p); });
      }
      tags.add(tag);
      return;
    }
    void webLocks()?.request(this.lockName(tag), () => this.realmGone(tag));
  }

  // Realm `tag` is gone: marked dead, its locks recovered, the buffers in its magazines given
  // back, and the ones it held counted ('realm-dead': `returned` buffers, `held` bytes).
  private realmGone(tag: number): void {
    this.control.setDead(tag);
    const r = this.reclaimFrom(tag, this.arenas);
    this.emit('realm-dead', { realm: tag, returned: r.returned, held: r.held });
  }

  // Gives back what realm `tag` had cached in `arenas`; an arena locked meanwhile is tried again at
  // the next housekeeping pass, for as long as no live realm shares the tag's low 16 bits.
  private reclaimFrom(tag: number, arenas: readonly Arena[]): { returned: number; held: number } {
    let returned = 0;
    let held = 0;
    if (this.state !== 'ready' || !this.control.ownerFree(tag)) return { returned, held };
    for (const a of arenas) {
      if (a.lockHolder === tag) this.recoverFrom(a);
      if (!a.core || a.quarantined) continue;
      const done = unlessBusy(() => {
        const r = a.reclaimDead(tag);
        returned += r.returned;
        held += r.held;
      });
      if (!done) {
        let later = this.toReclaim.get(tag);
        if (!later) this.toReclaim.set(tag, (later = new Set()));
        later.add(a);
      }
    }
    return { returned, held };
  }

  private retryReclaims(): void {
    for (const [tag, arenas] of [...this.toReclaim]) {
      this.toReclaim.delete(tag);
      this.reclaimFrom(tag, [...arenas].filter((a) => this.arenas.includes(a)));
    }
  }

  // ---- housekeeping (housekeep.ts) ---------------------------------------------------------------

  private schedule(ms: number): void {
    if (this.opts.housekeeping === false || this.state !== 'ready') return;
    const t = setTimeout(() => {
      this.hkTimer = undefined;
      if (this.state !== 'ready') return;
      let next: number;
      try {
        next = this.housekeep().next!;
      } catch {
        next = Math.max(this.timeIval, 60_000); // as AIStore after a failed memory reading
      }
      this.schedule(next);
    }, ms);
    (t as unknown as { unref?: () => void }).unref?.(); // never keep a Node process alive
    this.hkTimer = t;
  }

  // One housekeeping pass, as the timer runs it; returns what it did and when the next is due.
  housekeep(): HousekeepReport {
    this.ready();
    this.retryReclaims();
    const now = this.now();
    const stats = this.hostStats();
    this.swap.update(stats?.swap?.used);
    const p = this.pressureOf(stats);
    let released = 0;
    if (p === Pressure.Low) {
      this.highDepth = 128;
      for (const s of this.slabs) {
        const depth = idleDepth(this.idleFor(s.cls, now));
        if (depth !== undefined) released += this.reduce(s, depth);
      }
    } else {
      const depth = depthFor(p, this.highDepth);
      if (p === Pressure.High) this.highDepth = depth;
      for (const s of this.slabs) released += this.reduce(s, depth);
    }
    // With a budget, what the pool holds above its target goes back now: free buffers, and as
    // many arenas with nothing out as the excess covers, newest first.
    const target = this.budgetCtl?.update(this.bytesInUseAll(), p);
    const excess = target === undefined ? 0 : this.heldArenas() * this.arenaSize - target;
    if (excess >= this.arenaSize) for (const s of this.slabs) released += this.reduce(s, 0);
    const flushed = this.flushIdleMagazines();
    const dropped = this.dropEmptyArenas(now, p >= Pressure.High ? 0 : ARENA_IDLE_MS, Math.max(0, excess), this.keepOne(stats));
    // Under pressure, or above the budget's target, the free pages of the arenas kept go back to
    // the kernel in place (where the native page helper is built).
    const returned = p >= Pressure.High || excess > 0 ? this.returnFree() : 0;
    return this.report('tick', { pressure: p, released, flushed, dropped, returned, target, next: nextInterval(p, this.timeIval, now) });
  }

  // Gives memory back now: `totally` empties every class (all cached buffers back); `idle` (ms)
  // empties the classes with no allocation for at least that long (AIStore's IdleDuration);
  // otherwise the classes idle long enough by AIStore's tiers. `toOS` (default) then drops every
  // arena that is empty, without waiting for it to stay empty.
  freeMem(opts: { idle?: number; totally?: boolean; toOS?: boolean } = {}): HousekeepReport {
    this.ready();
    if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
    for (const k of ['totally', 'toOS'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw invalidArg(`option ${k}`, opts[k], 'must be a boolean');
    }
    if (opts.idle !== undefined && !(typeof opts.idle === 'number' && opts.idle >= 0)) {
      throw invalidArg('option idle', opts.idle, 'must be a non-negative number of milliseconds');
    }
    const now = this.now();
    let released = 0;
    for (const s of this.slabs) {
      const idle = this.idleFor(s.cls, now);
      const depth = opts.totally ? 0 : opts.idle !== undefined ? (idle >= opts.idle && idle > 0 ? 0 : undefined) : idleDepth(idle);
      if (depth !== undefined) released += this.reduce(s, depth);
    }
    const flushed = opts.totally ? 0 : this.flushIdleMagazines();
    const toOS = opts.toOS !== false;
    const dropped = toOS ? this.dropEmptyArenas(now, 0, 0, this.keepOne(this.hostStats())) : 0;
    const returned = toOS ? this.returnFree() : 0;
    return this.report('trim', { pressure: this.lastPressure ?? Pressure.Low, released, flushed, dropped, returned });
  }

  private report(type: 'tick' | 'trim', r: Omit<HousekeepReport, 'arenas' | 'bytes'>): HousekeepReport {
    const full: HousekeepReport = { ...r, arenas: this.arenas.length, bytes: this.arenas.length * this.arenaSize };
    if (type === 'tick') this.emit('tick', full);
    return full;
  }

  private notePressure(p: PressureLevel): void {
    const from = this.lastPressure;
    this.lastPressure = p;
    if (from !== undefined && from !== p) this.emit('pressure', { from, to: p });
  }

  // How long class c has gone without an allocation in any realm, ms (0 if it never had one).
  private idleFor(c: number, now: number): number {
    this.publish(this.slabs[c]);
    const hits = Number(Atomics.load(this.control.hits, c));
    const idle = this.idle[c];
    if (hits !== idle.hits) { idle.hits = hits; idle.since = now; }
    return hits === 0 ? 0 : now - idle.since;
  }

  // Keeps `depth` free buffers of s's class ready: the magazine down to it, then whole free runs
  // beyond it back to the arenas' free pages. Returns the buffers released.
  private reduce(s: Slab, depth: number): number {
    if (s.mag.length > depth) this.flush(s, s.mag.length - depth);
    const keep = depth - s.mag.length;
    let n = 0;
    for (const a of this.arenas) {
      if (!a.core || a.closed) continue;
      unlessBusy(() => { n += a.trim(s.cls, keep); });
    }
    if (n) this.emit('trim', { size: s.size, depth, released: n });
    return n;
  }

  // Magazines of classes this realm has not allocated from since the last pass go back whole.
  private flushIdleMagazines(): number {
    let n = 0;
    for (const s of this.slabs) {
      this.publish(s);
      if (s.allocs === s.allocsSeen && s.mag.length > 0) {
        n += s.mag.length;
        this.flush(s, s.mag.length);
      }
      s.allocsSeen = s.allocs;
    }
    return n;
  }

  // Where mapping a new arena may fail (an address-space limit, or a mapping that failed before),
  // the pool never drops its last arena: it could not get one back.
  // Pool-wide: the realms share one address space, whichever of them has the figures.
  private keepOne(stats: MemStats | undefined): boolean {
    const head = this.control.head;
    if (stats?.addressSpace !== undefined) Atomics.store(head, H_KEEP_ONE, 1);
    return Atomics.load(head, H_KEEP_ONE) === 1;
  }

  // Gives the free pages of every open arena back to the kernel in place; returns the bytes.
  private returnFree(): number {
    let n = 0;
    for (const a of this.arenas) {
      if (!a.core || a.closed) continue;
      unlessBusy(() => { n += discardFree(a, this.madvise); });
    }
    return n;
  }

  // Closes and lets go of arenas nothing of which has been out for `idleMs`, and, newest first,
  // of empty ones to cover `excess` bytes at once (closed ones another realm closed, at once).
  // `keepOne`: the last open arena stays (emptied, and its free pages given back in place).
  private dropEmptyArenas(now: number, idleMs: number, excess = 0, keepOne = false): number {
    let dropped = 0;
    for (const a of [...this.arenas].reverse()) {
      if (!a.core) continue;
      if (!a.closed) {
        if (a.outSlots() > 0) { this.emptySince.delete(a); continue; }
        const since = this.emptySince.get(a) ?? now;
        this.emptySince.set(a, since);
        const forBudget = excess >= a.bytes; // whole arenas only: the pool never drops below its target
        if (!forBudget && now - since < idleMs) continue;
        if (!this.dropIfEmpty(a, keepOne)) continue;
        if (forBudget) excess -= a.bytes;
      } else {
        this.dropArena(a, false); // another realm closed it
      }
      dropped++;
    }
    return dropped;
  }

  // Closes an arena nothing of which is out, in any realm, and lets go of it; false if buffers are.
  // `keepOne`: never the pool's last open arena; the open count is lowered before the close, so
  // that two realms cannot each close one of the last two.
  private dropIfEmpty(a: Arena, keepOne = false): boolean {
    const head = this.control.head;
    if (keepOne) {
      for (;;) {
        const n = Atomics.load(head, H_OPEN);
        if (n <= 1) return false;
        if (Atomics.compareExchange(head, H_OPEN, n, n - 1) === n) break;
      }
    }
    let closed = false as 'closed' | 'already' | false; // set inside the closure
    unlessBusy(() => {
      a.release(); // its runs; this realm's scratch page stays, to give the pages back after the close
      a.ensureScratch();
      closed = a.close();
    });
    if (closed !== 'closed') {
      if (keepOne) Atomics.add(head, H_OPEN, 1); // not ours to count
      if (!closed) return false;
    } else if (!keepOne) {
      Atomics.sub(head, H_OPEN, 1); // the one realm that closed it counts
    }
    this.broadcast({ drop: a.id });
    this.dropArena(a, closed === 'closed');
    return true;
  }

  // `closedHere`: this realm closed it, so it gives the memory back: in place where it can (every
  // free page; the tables go with the memory), otherwise it is retired, counted until collected,
  // and a collection is requested. Every realm gives back its scratch page and keeps a weak
  // reference for reuse (which only a realm alone in its pool may do).
  private dropArena(a: Arena, closedHere: boolean): void {
    const i = this.arenas.indexOf(a);
    if (i >= 0) this.arenas.splice(i, 1);
    this.byId.delete(a.id);
    this.emptySince.delete(a);
    for (const later of this.toReclaim.values()) later.delete(a);
    a.mm = null;
    let given = false;
    if (closedHere && pageOps().discard) {
      unlessBusy(() => {
        discardFree(a, this.madvise);
        given = a.cleanPages >= a.freePages; // every free page went back (raw pages are realms' scratch)
      });
    }
    unlessBusy(() => { a.returnPending(); a.releaseScratch(); });
    if (closedHere && !given && a.memory) {
      this.control.retire(this.realm, 1);
      // Bound, not a closure: a closure made here would share this call's scope with the ones
      // above, which hold `a`, and the registry holding it would keep the memory alive for good.
      this.retired.add(a, this.control.retire.bind(this.control, this.realm, -1), true);
    } else {
      // Given back in place, the memory still holds its address space until collected.
      this.retired.add(a, undefined, !pageOps().discard || Atomics.load(this.control.head, H_KEEP_ONE) === 1);
    }
    this.emit('arena-dropped', { id: a.id, bytes: a.bytes, arenas: this.arenas.length, returned: given });
  }

  private emit(type: MemsysEventType, detail: unknown): void {
    this.dispatchEvent(new MemsysEvent(type, detail));
  }

  // ---- statistics --------------------------------------------------------------------------------

  stats(): MMSAStats {
    const now = this.now();
    const classes: ClassStats[] = [];
    let freePages = 0;
    let cleanPages = 0;
    this.adoptOrphans();
    for (const a of this.arenas) { freePages += a.freePages; cleanPages += a.cleanPages; }
    for (let c = 0; c < this.slabs.length; c++) {
      const s = this.slabs[c];
      this.publish(s);
      let free = 0;
      let runs = 0;
      for (const a of this.arenas) {
        if (!a.core) continue;
        free += a.core.class_stat(c, CSTAT_FREE);
        runs += a.core.class_stat(c, CSTAT_RUNS);
      }
      const hits = Number(Atomics.load(this.control.hits, c));
      classes.push({
        size: s.size, hits, inUse: Atomics.load(this.control.live, c), cached: s.mag.length,
        free, runs, idle: this.idleFor(c, now),
      });
    }
    return {
      name: this.name, mode: this.shared ? 'shared' : 'single-threaded', debug: this.debug,
      arenas: this.arenas.length, arenaSize: this.arenaSize, bytes: this.arenas.length * this.arenaSize,
      freeBytes: freePages * PAGE, returnedBytes: cleanPages * PAGE,
      retired: this.control.retired, minFree: this.min.bytes, classes,
    };
  }

  /** @internal Buffers the arenas' cores count as handed out, per class (tests and debug). */
  coreOut(c: number): number {
    let n = 0;
    for (const a of this.arenas) if (a.core) n += a.core.class_stat(c, CSTAT_OUT);
    return n;
  }

  /** @internal Runs the core's invariant check on every arena. */
  check(): void {
    this.checkArenas();
  }
}

function randomId(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) return c.getRandomValues(new Uint32Array(1))[0] || 1;
  return (Math.random() * 0xffffffff) >>> 0 || 1;
}

// Debug mode: a free slot holds DEADBEEF, or zero where its pages were never used or were given
// back to the OS; anything else was written after it was freed. The error names the first word.
function writtenWhileFree(a: Arena, off: number, size: number): MemsysError | undefined {
  const w = new Uint32Array(a.buffer, off, size >>> 2);
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    if (x !== DEADBEEF && x !== 0) {
      return new MemsysError('ERR_MEMSYS_USE_AFTER_FREE',
        `buffer at offset ${off} of arena ${a.id} was written at byte ${i * 4} while free (after it went back to the arena)`);
    }
  }
  return undefined;
}

function fillPattern(v: Uint8Array, pattern: Uint32Array): void {
  new Uint32Array(v.buffer, v.byteOffset, v.byteLength >>> 2).set(pattern.subarray(0, v.byteLength >>> 2));
}

function describe(buf: Uint8Array): string {
  return `Uint8Array(${buf.byteLength}) at offset ${buf.byteOffset}`;
}

function notOwned(buf: Uint8Array, why: string): MemsysError {
  return new MemsysError('ERR_MEMSYS_NOT_OWNED', `cannot free ${describe(buf)}: ${why}`);
}

function notLive(buf: Uint8Array): MemsysError {
  return new MemsysError('ERR_MEMSYS_NOT_LIVE', `cannot free ${describe(buf)}: it is not in use (a double free, or a view kept after free)`);
}

function wrongSlab(buf: Uint8Array, slab: Slab, size: number): MemsysError {
  return new MemsysError('ERR_MEMSYS_WRONG_SLAB', `cannot free ${describe(buf)} to the ${slab.size}-byte slab: it is a ${size}-byte buffer`);
}

