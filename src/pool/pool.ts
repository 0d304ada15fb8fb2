// The pool, as one realm sees it: its slabs and their magazines, the arenas behind them, and the
// paths below the hot path.
//
//   Slab (slab.ts)       alloc = pop, free = push: no call into WebAssembly, no new object
//   Pool (here)          refills and flushes magazines a batch at a time, picks or adds arenas,
//                        takes and gives slots for SGLs, routes frees that the fast path cannot
//                        prove (buffers posted from another realm, foreign arrays, misuse) and
//                        turns every misuse into a typed error
//   Arenas (arenas.ts)   which arenas there are, and how each comes and goes
//   core (wasm)          per arena: takes and returns slots under the arena lock, so any number
//                        of realms can share one arena
//
// Buffers in use are counted without touching the hot path: in this realm a class has
// `base - mag.length` out (base: taken from the arenas minus given back), published to the control
// block's shared counters now and then (`publish`).

import type { Arena } from '../core/arena.js';
import { BATCH_MAX, readHeader, stateTable } from '../core/arena.js';
import { granuleOf, offsetOf } from '../core/granule.js';
import { CSTAT_OUT, ST_LIVE, ST_OUT } from '#abi';
import { MemsysError, invalidArg, show } from '../errors.js';
import { Pressure, type PressureLevel } from '../policy/pressure.js';
import { NUM_CLASSES, classSize } from '../sizes.js';
import { Arenas, type Emit } from './arenas.js';
import { isBusy } from './busy.js';
import type { PoolConfig } from './config.js';
import type { Control } from './control.js';
import { deadbeef, poison, writtenWhileFree } from './debug.js';
import { describe, handedOff, notLive, notOwned, postedClass, wrongSlab } from './frees.js';
import { adoptOrphans, orphan } from './orphans.js';
import { DebugSlab, SLOT_FREE, SLOT_MOVED, Slab, type SlabBuffer, type SlabOwner, kArena, kSlab, kSlot, kState } from './slab.js';

const NONE: readonly number[] = [];

// Slots on their way, as (arena, offset) pairs, with no view made: taken for a magazine before they
// become views, or a magazine's views on their way back. The pool keeps one of each, empty between
// calls; `busy` while a call uses it, since an event listener that runs inside one (arena-added, a
// lock recovered) may call back into the pool, which then takes a pair of its own.
class Slots {
  readonly arenas: Arena[] = [];
  readonly offs: number[] = [];
  private busy = false;

  // These, or a pair of its own for a call inside one that uses these.
  claim(): Slots {
    if (this.busy) return new Slots().claim();
    this.busy = true;
    return this;
  }

  release(): void {
    this.arenas.length = this.offs.length = 0;
    this.busy = false;
  }
}

/** @internal */
export class Pool implements SlabOwner {
  readonly cfg: PoolConfig;
  readonly slabs: Slab[] = [];
  readonly arenas: Arenas;
  /** The pressure level last seen (housekeeping sets it): at High a refill reclaims first. */
  level: PressureLevel = Pressure.Low;
  private state: 'new' | 'ready' | 'terminated' = 'new';
  private pattern: Uint32Array | undefined;   // debug mode's DEADBEEF
  // Received (posted) views already freed here: such a view cannot be marked stale the way our own
  // views are, so a second free of the same object must be refused by identity.
  private readonly freedPosted = new WeakSet<Uint8Array>();
  private readonly got = new Slots();  // refill's; a take may flush a magazine, hence two
  private readonly gone = new Slots(); // flush's

  constructor(cfg: PoolConfig, emit: Emit) {
    this.cfg = cfg;
    this.arenas = new Arenas(cfg, emit, () => this.bytesInUse());
  }

  get name(): string { return this.cfg.name; }
  get id(): number { return this.cfg.id; }
  get control(): Control { return this.cfg.control; }
  get usable(): boolean { return this.state === 'ready'; }
  get terminated(): boolean { return this.state === 'terminated'; }

  ready(): void {
    if (this.state === 'ready') return;
    throw new MemsysError('ERR_MEMSYS_STATE', this.state === 'new'
      ? `MMSA ${show(this.name)} is not initialised: call init() first`
      : `MMSA ${show(this.name)} is terminated`);
  }

  // Makes the slabs, one per class, each magazine holding up to magazineBytes (4 … 128 buffers).
  setup(): void {
    for (let c = 0; c < NUM_CLASSES; c++) {
      const size = classSize(c);
      const cap = Math.max(4, Math.min(128, Math.floor(this.cfg.magazineBytes / size)));
      this.slabs.push(new (this.cfg.debug ? DebugSlab : Slab)(this, c, size, cap & ~1));
    }
    if (this.cfg.debug) this.pattern = deadbeef();
    this.state = 'ready';
  }

  // Empties every magazine and lets go of every arena. What is left in a magazine are buffers freed
  // here (posted to us) in arenas whose memory has not arrived yet: this realm has no core to give
  // them back with, so they are left to a realm that has one.
  terminate(): void {
    this.adoptOrphans();
    for (const s of this.slabs) {
      this.flush(s, s.mag.length);
      for (const v of s.mag) {
        v[kArena]!.disown(offsetOf(v[kSlot]!));
        orphan(this.control.orphans, v[kArena]!.id, s.cls, v[kSlot]!);
      }
      s.base -= s.mag.length;
      s.mag.length = 0;
      this.publish(s);
    }
    for (const s of this.slabs) s.liveState = -1; // every free is refused from now on
    this.arenas.clear();
    this.state = 'terminated';
  }

  // ---- magazines ---------------------------------------------------------------------------------

  // Fills an empty magazine with a batch from the arenas, adding an arena if all are full.
  refill(s: Slab): void {
    this.ready();
    this.adoptOrphans();
    this.publish(s);
    const got = this.got.claim();
    const { arenas: as, offs: os } = got;
    let written: MemsysError | undefined;
    try {
      this.take(s, Math.min(s.batch, BATCH_MAX), true, as, os);
    } finally {
      for (let i = 0; i < os.length; i++) {
        const v = this.view(s, as[i], os[i]);
        if (this.pattern) {
          written ??= writtenWhileFree(as[i], os[i], s.size, true);
          poison(v, this.pattern);
        }
        s.mag.push(v);
      }
      got.release();
    }
    if (written) throw written; // the buffers are in the magazine, poisoned again
  }

  // Gives the n oldest views of a magazine back to their arenas.
  flush(s: Slab, n: number): void {
    this.publish(s);
    const out = s.mag.splice(0, n);
    s.base -= out.length;
    const gone = this.gone.claim();
    const { arenas: as, offs: os } = gone;
    for (const v of out) {
      as.push(v[kArena]!);
      os.push(offsetOf(v[kSlot]!));
    }
    let kept: readonly number[];
    try {
      kept = this.giveBack(s, as, os);
    } finally {
      gone.release();
    }
    for (let i = 0, k = 0; i < out.length; i++) {
      if (kept[k] === i) k++;
      else out[i][kSlot] = SLOT_FREE;
    }
    if (kept.length) {
      s.mag.unshift(...kept.map((i) => out[i]));
      s.base += kept.length;
    }
  }

  // n buffers of s's class for an SGL, as slots pushed onto `arenas` and `offs` with no view made:
  // marked LIVE, counted in use and as hits. All or none: on out-of-memory the slots taken so far
  // go back, and the arenas this request mapped go again.
  takeSlots(s: Slab, n: number, arenas: Arena[], offs: number[]): void {
    this.ready();
    const from = offs.length;
    const before = this.arenas.list.length; // a take adds arenas only at the end of the list
    try {
      this.take(s, n, false, arenas, offs);
    } catch (e) {
      const oom = this.arenas.oom; // a rollback is not memory freed
      if (offs.length > from) this.giveSlots(s, arenas.splice(from), offs.splice(from));
      const keepOne = this.arenas.keepOne();
      for (const a of this.arenas.list.slice(before)) this.arenas.dropIfEmpty(a, keepOne);
      if (oom) this.arenas.failedToMap();
      throw e;
    }
    for (let i = from; i < offs.length; i++) arenas[i].state[granuleOf(offs[i])] = s.liveState;
    if (this.pattern) {
      let written: MemsysError | undefined;
      for (let i = from; i < offs.length; i++) written ??= writtenWhileFree(arenas[i], offs[i], s.size, true);
      if (written) {
        this.giveSlots(s, arenas.splice(from), offs.splice(from)); // poisoned again on the way back
        throw written;
      }
      for (let i = from; i < offs.length; i++) poison(arenas[i].u8.subarray(offs[i], offs[i] + s.size), this.pattern);
    }
    s.hits += n;
    this.publish(s);
  }

  // Gives an SGL's slots back to their arenas (they are LIVE).
  giveSlots(s: Slab, arenas: readonly Arena[], offs: readonly number[]): void {
    for (let i = 0; i < offs.length; i++) {
      arenas[i].state[granuleOf(offs[i])] = s.outState;
      if (this.pattern) poison(arenas[i].u8.subarray(offs[i], offs[i] + s.size), this.pattern);
    }
    const kept = this.giveBack(s, arenas, offs);
    for (const i of kept) { // cached for now, as flush keeps them
      arenas[i].claim(offs[i]);
      s.mag.push(this.view(s, arenas[i], offs[i]));
    }
    s.base -= offs.length - kept.length;
    this.publish(s);
  }

  // Gives the slots (arenas[i], offs[i]) of s's class back to their arenas, BATCH_MAX of one arena
  // a core call. Returns the indices of the ones that stay with the caller, ascending: their
  // arena's memory has not arrived yet, or it stayed locked by another realm.
  private giveBack(s: Slab, arenas: readonly Arena[], offs: readonly number[]): readonly number[] {
    for (let i = 1; i < arenas.length; i++) {
      if (arenas[i] === arenas[i - 1]) continue;
      for (let j = 0; j < i; j++) if (arenas[j] === arenas[i]) return this.giveBackByArena(s, arenas, offs);
    }
    return this.giveBackRuns(s, arenas, offs); // an arena's slots in one run (an SGL's are)
  }

  // Slots whose arenas come and go (a magazine of a pool of several arenas, views posted from other
  // realms) are grouped by arena first: in the order they were freed, runs of one arena would be a
  // buffer or two long, and each a core call (the arena's lock and a crossing into the core).
  private giveBackByArena(s: Slab, arenas: readonly Arena[], offs: readonly number[]): readonly number[] {
    const order = Array.from(offs, (_, i) => i).sort((x, y) => arenas[x].id - arenas[y].id || x - y);
    const kept = this.giveBackRuns(s, order.map((i) => arenas[i]), order.map((i) => offs[i]));
    return kept.length ? kept.map((k) => order[k]).sort((x, y) => x - y) : NONE;
  }

  // Runs of one arena, BATCH_MAX at most a core call.
  private giveBackRuns(s: Slab, arenas: readonly Arena[], offs: readonly number[]): readonly number[] {
    let kept: number[] | undefined;
    for (let i = 0; i < offs.length;) {
      const a = arenas[i];
      let j = i + 1;
      while (j < offs.length && j - i < BATCH_MAX && arenas[j] === a) j++;
      let went = 0;
      if (a.core) {
        this.arenas.oom = false;
        went = a.give(s.cls, offs, i, j - i);
        if (this.cfg.debug && arenas[j] !== a) a.check();
      }
      for (let k = i + went; k < j; k++) (kept ??= []).push(k);
      i = j;
    }
    return kept ?? NONE;
  }

  // Takes n slots of s's class from the arenas, oldest first (live data packs into them and the
  // newest drain, to be dropped), adding arenas while all are full, or throws. A refill (`partial`)
  // needs one: it takes what the arenas hold, up to n, and adds an arena only when they hold none,
  // since the rest of a magazine's batch is not worth one.
  private take(s: Slab, n: number, partial: boolean, arenas: Arena[], offs: number[]): void {
    const want = offs.length + n;
    const need = partial ? offs.length + 1 : want;
    this.takeFromArenas(s, want, arenas, offs);
    // Buffers this realm caches in the slab's magazine count before a new arena (an SGL takes
    // slots from the arenas, not from the magazine).
    if (offs.length < need && s.mag.length > 0) {
      this.flush(s, s.mag.length);
      this.takeFromArenas(s, want, arenas, offs);
    }
    // Under pressure, memory the pool holds in other classes is used before a new arena is mapped.
    let reclaimed = false;
    if (offs.length < need && this.level >= Pressure.High) {
      reclaimed = true;
      this.reclaim();
      this.takeFromArenas(s, want, arenas, offs);
    }
    while (offs.length < need) {
      let a: Arena;
      try {
        a = this.arenas.add(this.level);
      } catch (e) {
        // Reclaim before refuse: every magazine of this realm and every empty run of every class
        // go back to the arenas, and the request is tried on them once more.
        if (!reclaimed) {
          reclaimed = true;
          this.reclaim();
          this.takeFromArenas(s, want, arenas, offs);
          continue;
        }
        throw e;
      }
      const more = this.takeFrom(s, a, want, arenas, offs);
      this.arenas.announce(a);
      if (more === 0) {
        if (a.reused) continue; // a reopened arena may hold less than a fresh one: try the next
        throw new MemsysError('ERR_MEMSYS_OUT_OF_MEMORY', `a new ${a.bytes}-byte arena has no room for a ${s.size}-byte buffer`);
      }
    }
  }

  private takeFromArenas(s: Slab, want: number, arenas: Arena[], offs: number[]): void {
    for (const a of this.arenas.list) {
      if (offs.length >= want) return;
      if (a.core && !a.closed && !a.quarantined) this.takeFrom(s, a, want, arenas, offs); // a locked one gives 0
    }
  }

  // Takes slots of s's class from one arena until `offs` holds `want`; returns how many it took.
  // What the calls before a failed one took is ours, and counted.
  private takeFrom(s: Slab, a: Arena, want: number, arenas: Arena[], offs: number[]): number {
    const from = offs.length;
    try {
      while (offs.length < want && a.take(s.cls, Math.min(want - offs.length, BATCH_MAX), arenas, offs) > 0);
    } catch (e) {
      if (!isBusy(e)) throw e; // locked by another realm
    } finally {
      s.base += offs.length - from;
    }
    if (this.cfg.debug) a.check();
    return offs.length - from;
  }

  // Everything this realm holds free goes back to the arenas: every magazine, then every fully
  // free run of every class to the span allocator, where any class can carve it.
  reclaim(): void {
    this.adoptOrphans();
    for (const sl of this.slabs) if (sl.mag.length > 0) this.flush(sl, sl.mag.length);
    this.arenas.eachOpen((a) => a.release());
  }

  // The one view this realm hands out for the buffer at `off`, tagged for the hot path.
  view(s: Slab, a: Arena, off: number): SlabBuffer {
    const v = new Uint8Array(a.buffer, off, s.size) as SlabBuffer;
    v[kSlab] = s;
    v[kState] = a.state;
    v[kSlot] = granuleOf(off); // a small integer (Smi): a double here costs ~2 ns per use on the hot path
    v[kArena] = a;
    return v;
  }

  // Adds this realm's hits and buffers in use of a class to the control block's counters.
  publish(s: Slab): void {
    if (s.hits) {
      Atomics.add(this.control.hits, s.cls, BigInt(s.hits));
      s.allocs += s.hits;
    }
    s.hits = 0;
    const inUse = s.base - s.mag.length;
    if (inUse !== s.published) Atomics.add(this.control.inUse, s.cls, inUse - s.published);
    s.published = inUse;
  }

  // Bytes in use in this realm.
  bytesInUse(): number {
    let n = 0;
    for (const s of this.slabs) n += (s.base - s.mag.length) * s.size;
    return n;
  }

  // Bytes in use in every realm (the shared counters), for the budget.
  bytesInUseAll(): number {
    let n = 0;
    for (const s of this.slabs) {
      this.publish(s);
      n += Math.max(0, Atomics.load(this.control.inUse, s.cls)) * s.size;
    }
    return n;
  }

  // Buffers the arenas' cores count as handed out, per class (tests and debug).
  coreOut(c: number): number {
    let n = 0;
    for (const a of this.arenas.list) if (a.core) n += a.core.class_stat(c, CSTAT_OUT);
    return n;
  }

  // The arena of id `id` this realm knows, if any.
  arena(id: number): Arena | undefined {
    return this.arenas.byId.get(id);
  }

  // The arena of a posted buffer of this pool, known from that buffer if it is new here.
  know(buffer: SharedArrayBuffer): Arena | undefined {
    return this.arenas.know(buffer);
  }

  adoptOrphans(): void {
    adoptOrphans(this.control.orphans, this.arenas.byId);
  }

  // ---- arenas from other realms -------------------------------------------------------------------

  // An arena's memory arrived (share descriptor, announcement, handoff).
  adopt(memory: WebAssembly.Memory): void {
    if (this.state === 'terminated') return;
    const r = this.arenas.adopt(memory);
    if (!r) return;
    if (r.rebound) {
      // The views this realm cached for it were made over the posted buffer; remake them over
      // the memory's own, so that a subarray of one is recognised as ours once it is handed out.
      for (const sl of this.slabs) {
        sl.mag.forEach((v, i) => {
          if (v[kArena] === r.arena) sl.mag[i] = this.view(sl, r.arena, offsetOf(v[kSlot]!));
        });
      }
    }
    this.adoptOrphans();
  }

  // ---- frees the fast path cannot prove ----------------------------------------------------------

  // The slab a buffer of this pool belongs to: its own view's, or for a view posted from another
  // realm, the class its arena's state byte names (4 KiB buffers exist in both families).
  slabOf(buf: Uint8Array): Slab {
    this.ready();
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array from this MMSA');
    const slab = (buf as SlabBuffer)[kSlab];
    if (slab !== undefined && slab.pool === this) return slab;
    const state = postedHeader(buf)?.owner === this.id ? stateTable(buf.buffer) : undefined;
    const c = state ? postedClass(buf, state) : undefined;
    if (typeof c === 'number') return this.slabs[c];
    throw new MemsysError('ERR_MEMSYS_NOT_OWNED', `${describe(buf)} is not a buffer of MMSA ${show(this.name)}`);
  }

  // A buffer that is not a view this realm made for this pool (`slab`: the one it was freed to).
  freeSlow(buf: Uint8Array, slab: Slab | undefined): void {
    if (!(buf instanceof Uint8Array)) throw invalidArg('buffer', buf, 'must be a Uint8Array handed out by this MMSA');
    this.ready();
    const other = (buf as SlabBuffer)[kSlab];
    if (other !== undefined) {
      if (other.pool === this) return this.freeRejected(buf as SlabBuffer, slab ?? other);
      throw notOwned(buf, !other.pool.usable ? 'its MMSA was terminated' : `it belongs to MMSA ${show(other.pool.name)}, not ${show(this.name)}`);
    }
    const ab = buf.buffer;
    if (this.arenas.isOwnBuffer(ab)) {
      throw notOwned(buf, 'it is a view made from a buffer (a subarray or copy of the view); free the buffer itself');
    }
    const hdr = postedHeader(buf);
    if (!hdr) throw notOwned(buf, 'it is not memsys memory');
    if (hdr.owner !== this.id) throw notOwned(buf, 'it belongs to another MMSA');
    const a = this.arenas.know(ab as SharedArrayBuffer)!;
    const cls = postedClass(buf, a.state);
    if (typeof cls === 'string') throw notOwned(buf, cls);
    if (slab && slab.cls !== cls) throw wrongSlab(buf, slab.size, classSize(cls));
    // Ours before the state says so: a realm reclaiming a dead realm's cached slots must not
    // take this one for the dead realm's.
    const off = buf.byteOffset;
    const g = granuleOf(off);
    const s = a.state[g];
    const was = a.claim(off);
    if ((s & 3) !== ST_LIVE || this.freedPosted.has(buf) ||
        Atomics.compareExchange(a.state, g, s, (cls << 2) | ST_OUT) !== s) {
      a.unclaim(off, was);
      throw notLive(buf);
    }
    this.freedPosted.add(buf);
    const target = this.slabs[cls];
    const v = this.view(target, a, off);
    if (this.pattern) poison(v, this.pattern);
    target.push(v);
  }

  // A view of ours whose state is not LIVE for this slab: say exactly why, change nothing.
  freeRejected(v: SlabBuffer, slab: Slab): never {
    this.ready();
    const i = v[kSlot]!;
    if (i === SLOT_MOVED) throw handedOff(v);
    const s = i >= 0 ? v[kState]![i] : 0;
    if ((s & 3) === ST_LIVE && s >>> 2 !== slab.cls) throw wrongSlab(v, slab.size, classSize(s >>> 2));
    throw notLive(v);
  }

  // ---- debug mode --------------------------------------------------------------------------------

  // A view leaving the magazine must still hold DEADBEEF; if not, it goes back (refilled with the
  // pattern) and the error says where it was written.
  debugAlloc(v: SlabBuffer, s: Slab): void {
    const written = writtenWhileFree(v[kArena]!, v.byteOffset, v.byteLength, false);
    if (written) {
      poison(v, this.pattern!);
      s.mag.push(v);
      throw written;
    }
    this.check();
  }

  debugFree(v: SlabBuffer): void {
    poison(v, this.pattern!);
    this.check();
  }

  // Runs the core's invariant check on every arena.
  check(): void {
    for (const a of this.arenas.list) a.check();
  }
}

// The header of the arena a view lies in, if its buffer is shared memory with one: a buffer posted
// from another realm of some pool.
function postedHeader(buf: Uint8Array): ReturnType<typeof readHeader> {
  const ab = buf.buffer;
  return typeof SharedArrayBuffer === 'function' && ab instanceof SharedArrayBuffer ? readHeader(ab) : undefined;
}
