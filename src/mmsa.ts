// MMSA: memory manager and slab allocator.
//
// Design
//
// An MMSA hands out fixed-size buffers (`Uint8Array`s) of 64 size classes, 128 B … 128 KiB, and
// takes them back, without the garbage collector ever seeing a new ArrayBuffer. Its memory is a
// set of arenas (core/arena.ts): WebAssembly memories whose initial size is their maximum, so no
// view into them is ever detached. Inside each arena the core (assembly/, a WebAssembly module)
// keeps all allocator state in the arena itself: page spans, runs of slots, one state byte per slot.
//
// Three layers, fastest first:
//
//   Slab (pool/slab.ts)   per class, per realm: a magazine of cached views. alloc = pop, free =
//                         push, plus one state-byte store. No call into WebAssembly, no new object.
//   Pool (pool/pool.ts)   refills and flushes magazines a batch at a time, picks or adds arenas,
//                         routes frees the fast path cannot prove and turns every misuse into a
//                         typed error.
//   core (wasm)           per arena: takes and returns slots under the arena lock, so any number
//                         of realms can share one arena.
//
// Around them: the housekeeper (housekeeper.ts) gives memory back on a timer and under pressure,
// by the rules in policy/; the realms layer (realms/) joins workers to one pool: share() and
// attach(), the announcements that carry new arenas between realms, what happens when a realm
// dies, and handoffs of buffers and SGLs. Giving memory back: free pages go back to the kernel in
// place where the host can discard them (memsys/node's page helper); otherwise the unit returned
// is a whole arena, dropped when it is empty.
//
// This class holds the public API and wires the parts together in its constructor; init() and
// attach() settle what the options and the environment leave open (debug mode, the minimum free
// memory and the watermark), and the only state it keeps itself is the two fields the hot path
// reads.

import { adoptCore, coreModule } from './core/module.js';
import { type HousekeepReport, MemsysEvent, type MemsysEventType } from './events.js';
import { MemsysError, MemsysRangeError, invalidArg, invalidSize, isIntIn, show } from './errors.js';
import { type FreeMemOptions, Housekeeper } from './housekeeper.js';
import { type Env, type MMSAOptions, debugFromEnv, resolveOptions } from './options.js';
import { type MemStats, processEnv } from './platform/host.js';
import { type MoveReport, type PlaceOptions, placement } from './platform/placement.js';
import { type Portlike, checkPort } from './platform/ports.js';
import { insufficient, minFree } from './policy/minfree.js';
import { type PressureLevel, lowWatermark } from './policy/pressure.js';
import type { PoolConfig } from './pool/config.js';
import { Control, randomId } from './pool/control.js';
import { notOwned } from './pool/frees.js';
import { Pool } from './pool/pool.js';
import { Slab, type SlabBuffer, kSlab, viewKeys } from './pool/slab.js';
import { type Channel, type ChannelPort, openChannel } from './realms/channel.js';
import { Deaths } from './realms/deaths.js';
import type { BufferHandoff, Handoff, SGLHandoff } from './pool/tickets.js';
import { packView, receive as receiveHandoff } from './realms/handoff.js';
import { Links } from './realms/links.js';
import { type ShareDescriptor, checkDescriptor, shareCheck } from './realms/share.js';
import { metricsText } from './report/metrics.js';
import { type MMSAStats, poolStats } from './report/stats.js';
import { SGL } from './sgl/sgl.js';
import { MAX_SIZE, NUM_CLASSES, exactClass, fitClass, fitClassOf, formatBytes, sglClass } from './sizes.js';

export type { MMSAOptions } from './options.js';
export type { ClassStats, MMSAStats } from './report/stats.js';
export type { ShareDescriptor } from './realms/share.js';
export type { Portlike } from './platform/ports.js';

// The pool an MMSA being attached joins (set by attach() around its constructor call).
let joining: { id: number; control: Control } | undefined;

export class MMSA extends EventTarget {
  /** The pool's name (errors, statistics, metrics). */
  readonly name: string;
  /** A small-buffer MMSA (its 4 KiB class is the small family's). */
  readonly small: boolean;
  /** Size of `alloc()`'s buffers, bytes. */
  readonly defaultSize: number;
  /** Bytes per arena. */
  readonly arenaSize: number;
  /** Housekeeping interval, ms. */
  readonly timeIval: number;
  /** True if the arenas are shared memories (the pool can be shared with workers). */
  readonly shared: boolean;
  /** @internal */ readonly pool: Pool;
  private readonly cfg: PoolConfig;
  private readonly opts: MMSAOptions;
  private readonly now: () => number;
  private readonly hk: Housekeeper;
  private readonly links: Links;
  private readonly deaths: Deaths;
  // What the hot path reads. Before init every class is one empty slab whose refill throws the
  // pool's "not initialised", and after terminate the real slabs' refills throw (terminate empties
  // every magazine), so alloc tests nothing of its own and `defaultSlab` only ever holds a slab.
  // `declare`d, set in the constructor: a field that starts as undefined (a class field's default)
  // or ever holds undefined is one the JIT cannot know the class of, and each alloc then waited
  // for a load of the slab's map before it could load the magazine.
  private declare slabs: Slab[];
  private declare defaultSlab: Slab;
  /** @internal The view property that names a view's slab, as `free` reads it (viewKeys). */
  declare readonly kSlab: typeof kSlab;

  /** A new MMSA; call `init()` before use. Throws a typed error naming any bad option. */
  constructor(options: MMSAOptions) {
    super();
    const r = resolveOptions(options);
    this.name = r.name;
    this.small = r.small;
    this.defaultSize = r.defaultSize;
    this.arenaSize = r.arenaSize;
    this.timeIval = r.timeIval;
    this.shared = r.shared;
    this.opts = options;
    this.now = r.now;
    const control = joining?.control ?? new Control(undefined, r.shared);
    this.cfg = {
      name: r.name, id: joining?.id ?? randomId(), realm: control.newRealm(), control, shared: r.shared, debug: false,
      small: r.small, arenaSize: r.arenaSize, magazineBytes: r.magazineBytes, madvise: r.madvise, budget: r.budget,
    };
    const emit = (type: MemsysEventType, detail: unknown) => { this.dispatchEvent(new MemsysEvent(type, detail)); };
    this.pool = new Pool(this.cfg, emit);
    const unready = new Slab(this.pool, 0, r.defaultSize, 2);
    this.slabs = Array.from({ length: NUM_CLASSES }, () => unready);
    this.defaultSlab = unready;
    this.links = new Links(this.pool);
    this.deaths = new Deaths(this.pool, emit);
    this.hk = new Housekeeper(this.pool, { timeIval: r.timeIval, timer: options.housekeeping !== false, events: options.pressureEvents === true, memStats: options.memStats, now: r.now }, emit);
    this.pool.arenas.hooks = {
      added: (a) => this.links.added(a),
      wanted: (id) => this.links.wanted(id),
      closed: (a) => this.links.closed(a),
      dropped: (a) => this.deaths.forget(a),
      busy: (a) => this.deaths.recoverFrom(a),
    };
    this.links.onRealm = (port, tag) => this.deaths.watch(port, tag);
    this.links.onRefused = (id, why) => emit('arena-refused', { id, code: why.code, message: why.message });
    this.hk.beforePass = () => this.deaths.retry();
  }

  /** @internal The pool's id, the same in every realm. */
  get id(): number { return this.cfg.id; }

  /** Debug mode (decided at init: the option, else AIS_DEBUG). */
  get debug(): boolean { return this.cfg.debug; }

  /** True between init() and terminate(). */
  get usable(): boolean { return this.pool.usable; }

  /** Resolves once the realm this MMSA was attached from can learn of this realm's death (in a
   * browser, once this realm holds its Web Lock, which needs its event loop to turn): await it
   * before work that never yields, or a terminate() of this worker goes unnoticed there. */
  get watched(): Promise<void> { return this.deaths.watched; }

  // ---- life cycle --------------------------------------------------------------------------------

  /** Reads the environment, checks free host memory against the minimum and makes the MMSA usable.
   * Returns the error (too little free memory, a bad variable; the MMSA is initialised all the
   * same), or throws it when `panicOnErr`. Throws ERR_MEMSYS_STATE if called twice. */
  init(panicOnErr = false): MemsysError | null {
    if (this.pool.usable || this.pool.terminated) {
      throw new MemsysError('ERR_MEMSYS_STATE', `MMSA ${show(this.name)} is already ${this.pool.usable ? 'initialised' : 'terminated'}`);
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
    this.cfg.debug = debug;
    try {
      host = this.hk.hostStats();
      const min = minFree(env, this.opts, host);
      this.hk.min = { bytes: min.bytes, source: min.source };
      if (min.error) err ??= min.error;
      if (host) this.hk.lowWM = lowWatermark(min.bytes, host.free);
      if (host && host.free < min.bytes) err ??= insufficient(host.free, this.hk.min);
    } catch (e) {
      if (!(e instanceof MemsysError)) throw e;
      err ??= e;
    }
    this.setup(host);
    if (err && panicOnErr) throw err;
    return err;
  }

  // `host`: the figures already read, for the first pressure level.
  private setup(host: MemStats | undefined): void {
    this.pool.setup();
    this.slabs = this.pool.slabs;
    this.defaultSlab = this.slabs[exactClass(this.defaultSize, this.small)];
    this.hk.start(host);
  }

  /** Frees every slab and drops every arena of this realm. Buffers still in use become invalid:
   * freeing one afterwards is an error, and their memory goes when the last view of it does. */
  terminate(): void {
    if (this.pool.terminated) return;
    this.hk.stop();
    this.pool.terminate();
    this.deaths.clear();
    this.links.close();
    this.cfg.control.setDead(this.cfg.realm); // it holds no lock now: a lock word with its tag is stale
  }

  // ---- allocation --------------------------------------------------------------------------------

  /** The slab of buffers of exactly `size` bytes (a slab size: a multiple of 128 B up to 4 KiB or
   * of 4 KiB up to 128 KiB). */
  getSlab(size: number): Slab {
    this.pool.ready();
    return this.slabs[exactClass(size, this.small)];
  }

  /** A buffer of the default size. */
  alloc(): Uint8Array {
    return this.defaultSlab.alloc();
  }

  /** A buffer of the smallest class that holds `n` bytes (0 … 128 KiB); its length is the class
   * size. Above 128 KiB use an SGL (ERR_MEMSYS_SIZE_TOO_LARGE). */
  allocSize(n: number): Uint8Array {
    // Fast path for the usual argument (an integer 0 … 128 KiB); everything else, including every
    // bad value, goes through fitClass and its errors.
    if (typeof n === 'number' && (n >>> 0) === n && n <= MAX_SIZE) return this.slabs[fitClassOf(n, this.small)].alloc();
    this.pool.ready();
    return this.slabs[fitClass(n, this.small)].alloc();
  }

  /** Gives a buffer back. Throws a typed error, changing nothing, for a buffer that is not one in
   * use of this MMSA (a double free, a subarray, another pool's). */
  free(buf: Uint8Array): void {
    const v = buf as SlabBuffer | null | undefined;
    if (v === null || v === undefined) return this.pool.freeSlow(buf, undefined);
    const slab = v[this.kSlab];
    if (slab === undefined) return this.pool.freeSlow(buf, undefined);
    // A buffer of the default size goes to the slab this MMSA holds, the same one: through it the
    // free need not wait for the loads that found the view's slab (~1 ns per alloc+free pair).
    const d = this.defaultSlab;
    if (slab === d) return d.free(buf);
    if (slab.pool !== this.pool) return this.pool.freeSlow(buf, undefined);
    slab.free(buf);
  }

  /** The slab a buffer of this MMSA belongs to (also one posted from another realm of the pool). */
  slabOf(buf: Uint8Array): Slab {
    return this.pool.slabOf(buf);
  }

  // ---- pressure and figures ----------------------------------------------------------------------

  /** The memory pressure now: Pressure.Low … Pressure.OOM, from the statistics provider's figures.
   * The swap trend moves only at housekeeping passes (as in AIStore), so that watching or scraping
   * the level does not change it. */
  pressure(): PressureLevel {
    return this.hk.pressureOf(this.hk.hostStats());
  }

  /** The pressure level for host figures already read (`hostStats()`), so that a level shown
   * beside them comes from the same reading and the provider is read once. */
  pressureOf(s: MemStats | undefined): PressureLevel {
    return this.hk.pressureOf(s);
  }

  /** Host memory statistics from this MMSA's provider; undefined without one, or when it fails. */
  hostStats(): MemStats | undefined {
    return this.hk.hostStats();
  }

  /** The budget's figures, if the MMSA has one: the target the pool follows and its bounds, bytes. */
  get budget(): { target: number; floor: number; ceiling: number; effectiveCeiling: number; reserve: number } | undefined {
    const b = this.cfg.budget;
    if (!b) return undefined;
    return { target: b.target, floor: b.floor, ceiling: b.ceiling, effectiveCeiling: b.ceilingAt(this.hk.level), reserve: b.reserve };
  }

  /** The thresholds pressure() applies, in bytes, and where the minimum came from. */
  get watermarks(): { minFree: number; lowWM: number; source: string } {
    return { minFree: this.hk.min.bytes, lowWM: this.hk.lowWM, source: this.hk.min.source };
  }

  /** The pool's figures in Prometheus text format, for a server's /metrics. */
  metrics(): string {
    const st = this.stats();
    const host = this.hk.hostStats();
    return metricsText({
      name: this.name, arenas: st.arenas, bytes: st.bytes, classes: st.classes,
      pressure: this.hk.pressureOf(host), minFree: this.hk.min.bytes, lowWM: this.hk.lowWM, host,
    });
  }

  /** The pool's figures as this realm sees them: arenas, bytes, and per class hits, buffers in
   * use, cached and free. */
  stats(): MMSAStats {
    return poolStats(this.pool, this.hk.min.bytes, (c, now) => this.hk.idleFor(c, now), this.now());
  }

  // ---- SGLs and handoffs -------------------------------------------------------------------------

  /** An SGL, AIStore's way: `sbufSize` names its buffers' size; otherwise `immediateSize` picks the
   * smallest buffer of this MMSA's family that holds it, or, for more than the largest, a
   * sixteenth of it (so that about 16 buffers hold it). The SGL starts with room for it. An
   * expected size beyond the host's memory or the budget's ceiling is refused. */
  newSGL(immediateSize = 0, sbufSize?: number): SGL {
    this.pool.ready();
    if (!isIntIn(immediateSize, 0, Number.MAX_SAFE_INTEGER)) {
      throw invalidSize('immediateSize', immediateSize, 'must be a non-negative integer');
    }
    // An expected size from outside (a Content-Length) must not make the pool map arenas for
    // memory the host does not have.
    const total = immediateSize > this.arenaSize ? this.hk.hostStats()?.total : undefined;
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

  /** Hands a buffer in use to another realm of this MMSA: post the result, `receive` it there.
   * The buffer can no longer be used or freed here. */
  handoff(buf: Uint8Array): BufferHandoff {
    this.pool.ready();
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array from this MMSA');
    const slab = (buf as SlabBuffer)[kSlab];
    if (slab === undefined || slab.pool !== this.pool) {
      throw notOwned(buf, 'only a buffer this realm allocated or received can be handed off');
    }
    return { kind: 'memsys.buf', ...packView(this.pool, buf as SlabBuffer, slab) };
  }

  /** The buffer or SGL of a handoff, now this realm's to use and free. A handoff is received
   * once, in whichever realm claims it first. */
  receive(handoff: BufferHandoff): Uint8Array;
  /** The SGL of an SGL's handoff, now this realm's to use and free. */
  receive(handoff: SGLHandoff): SGL;
  /** The buffer or SGL of a handoff of either kind. */
  receive(handoff: Handoff): Uint8Array | SGL;
  receive(handoff: Handoff): Uint8Array | SGL {
    this.pool.ready();
    const r = receiveHandoff(this.pool, handoff);
    return r.extent ? SGL.received(r.slab, r.arenas, r.offs, r.extent) : this.pool.view(r.slab, r.arenas[0], r.offs[0]);
  }

  /** A channel to hand buffers and SGLs to one other realm through shared memory; with a port from
   * the other end's `channel.port()`, that channel's receiving end. */
  openChannel(port?: ChannelPort): Channel {
    this.pool.ready();
    return openChannel(this, this.shared, port);
  }

  /** @internal */
  requestArena(id: number): boolean {
    return this.links.request(id);
  }

  /** @internal */
  arenaKnown(id: number, deadline: number): Promise<void> {
    return this.links.known(id, deadline);
  }

  // ---- sharing -----------------------------------------------------------------------------------

  /** A descriptor to post to a worker, where `MMSA.attach(descriptor)` returns this MMSA over the
   * same arenas. Buffers then pass between the realms as they are (postMessage of the Uint8Array).
   *
   * `port` (a Worker, a MessagePort, or anything with postMessage and message events) also carries
   * the realms' arena announcements: browsers do not deliver a shared WebAssembly.Memory over a
   * BroadcastChannel, so there every realm must be linked by a port; the other end passes its own
   * side to MMSA.attach. This realm relays between its ports. A Node Worker passed here is known
   * dead on its 'exit', and what it held is recovered. */
  share(port?: Portlike): ShareDescriptor {
    this.pool.ready();
    if (!this.shared) {
      throw new MemsysError('ERR_MEMSYS_STATE', `MMSA ${show(this.name)} is single-threaded (no SharedArrayBuffer): it cannot be shared`);
    }
    if (port !== undefined) this.links.linkPort(port);
    this.links.listen();
    return {
      kind: 'memsys.mmsa', v: 1, id: this.cfg.id, name: this.name, small: this.small,
      defaultSize: this.defaultSize, arenaSize: this.arenaSize, magazineBytes: this.cfg.magazineBytes,
      timeIval: this.timeIval, debug: this.cfg.debug, control: this.cfg.control.sab as SharedArrayBuffer,
      minFree: this.hk.min.bytes, lowWM: this.hk.lowWM, budget: this.opts.budget,
      arenas: this.links.memories(), core: coreModule(true, this.cfg.debug),
    };
  }

  /** This realm's MMSA over the pool a share descriptor names (from `mm.share()` in another realm),
   * ready to use. `port`: this realm's side of the port the sharer passed to share(). */
  static attach(d: ShareDescriptor, port?: Portlike): MMSA {
    checkDescriptor(d);
    if (port !== undefined) checkPort(port);
    const options: MMSAOptions = {
      name: d.name, small: d.small, defaultSize: d.defaultSize, arenaSize: d.arenaSize,
      magazineBytes: d.magazineBytes, timeIval: d.timeIval, debug: d.debug, shared: true, env: {}, budget: d.budget,
    };
    resolveOptions(options);
    // Every part checked: only now may the descriptor's core join this realm's modules.
    if (d.core !== undefined && !adoptCore(d.core, Boolean(d.debug))) throw shareCheck.bad('core is not a memsys core for shared memories');
    coreModule(true, Boolean(d.debug)); // without a core in the descriptor, the browser bundle's must be loaded
    let mm: MMSA;
    joining = { id: d.id, control: new Control(d.control) };
    try {
      mm = new MMSA(options);
    } finally {
      joining = undefined;
    }
    mm.cfg.debug = Boolean(d.debug);
    if (Number.isFinite(d.minFree) && Number.isFinite(d.lowWM)) {
      mm.hk.min = { bytes: d.minFree!, source: 'the sharing realm' };
      mm.hk.lowWM = d.lowWM!;
    }
    try {
      mm.setup(mm.hk.hostStats());
      for (const m of d.arenas) mm.pool.adopt(m);
      if (port !== undefined) {
        mm.links.linkPort(port);
        mm.deaths.announce(() => mm.links.tell(port, { realm: mm.cfg.realm }));
      }
      mm.links.listen();
      mm.links.hello();
    } catch (e) {
      mm.terminate(); // a realm that never was: not counted alive, no timer left, no listener
      throw e;
    }
    return mm;
  }

  // ---- housekeeping ------------------------------------------------------------------------------

  /** One housekeeping pass, as the timer runs it; returns what it did and when the next is due. */
  housekeep(): HousekeepReport {
    return this.hk.housekeep();
  }

  /** Gives memory back now: `totally` empties every class (all cached buffers back); `idle` (ms)
   * empties the classes with no allocation for at least that long (AIStore's IdleDuration);
   * otherwise the classes idle long enough by AIStore's tiers. `toOS` (default) then drops every
   * arena that is empty, without waiting for it to stay empty, and gives free pages back. */
  freeMem(opts: FreeMemOptions = {}): HousekeepReport {
    return this.hk.freeMem(opts);
  }

  /** Moves every arena of this realm to NUMA node `node` now, and each arena added later until
   * place() is called again or the MMSA is terminated; resolves what the first move did. `bind`:
   * also binds the arenas to the node (mbind with MPOL_MF_MOVE), so that automatic NUMA balancing
   * does not move their pages back; `bandwidth`: MiB/s at most. Needs memsys/node (its sidecar
   * moves the pages, its native page helper finds and binds them): elsewhere rejects
   * ERR_MEMSYS_UNSUPPORTED; a node that does not exist or a move that fails rejects ERR_MEMSYS_NUMA. */
  async place(node: number, opts: PlaceOptions = {}): Promise<MoveReport> {
    const p = placement();
    if (!p) throw new MemsysError('ERR_MEMSYS_UNSUPPORTED', 'place() needs memsys/node: moving memory between NUMA nodes takes its sidecar and native page helper');
    this.pool.ready();
    const arenas = this.pool.arenas;
    const mem = (a: { id: number; memory?: WebAssembly.Memory; u8: Uint8Array } | undefined) => (a?.memory ? { id: a.id, view: a.u8 } : undefined);
    return p.place({
      node, options: opts, owner: this, live: () => this.pool.usable,
      memories: () => arenas.list.flatMap((a) => mem(a) ?? []), memory: (id) => mem(arenas.byId.get(id)),
    });
  }

  // ---- tests and debug ---------------------------------------------------------------------------

  /** @internal Buffers the arenas' cores count as handed out, per class. */
  coreOut(c: number): number {
    return this.pool.coreOut(c);
  }

  /** @internal Runs the core's invariant check on every arena. */
  check(): void {
    this.pool.check();
  }
}

viewKeys(MMSA.prototype);
