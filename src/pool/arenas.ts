// The arenas a realm of the pool knows: made here, adopted from another realm, or known only by a
// posted buffer; and how each comes and goes.
//
//   add      reuse a retired arena (alone in the pool) or map a new one, within the budget
//   adopt    an arena's memory arrived (descriptor, announcement, handoff): bind a core to it
//   know     a posted buffer of an arena not seen yet: work from that buffer, ask for the memory
//   drop     close it if nothing of it is out anywhere, give its pages back, let go of it
//
// A retired arena (dropped by this realm, its memory not yet collected) is reused before a new
// one is mapped: it is still resident, and under an address-space limit it is what keeps a new
// mapping from succeeding. The budget's ceiling counts retired arenas with the open ones.

import { Arena, readHeader } from '../core/arena.js';
import type { MemsysEventType } from '../events.js';
import { MemsysError } from '../errors.js';
import type { MemStats } from '../platform/host.js';
import { pageOps } from '../platform/pages.js';
import { type PressureLevel, pressureName } from '../policy/pressure.js';
import { formatBytes } from '../sizes.js';
import { unlessBusy } from './busy.js';
import type { PoolConfig } from './config.js';
import { Retired, discardFree } from './giveback.js';

// What the realms layer does when arenas come and go (announcing them, recovering locks).
/** @internal */
export interface ArenaHooks {
  /** A new arena took its first buffers: tell the other realms. */
  added(a: Arena): void;
  /** This realm has buffers of arena `id` but not its memory: ask the realms that have it. */
  wanted(id: number): void;
  /** This realm closed or let go of arena `a`: tell the other realms to let go of it. */
  closed(a: Arena): void;
  /** Arena `a` is no longer this realm's. */
  dropped(a: Arena): void;
  /** Arena `a` stayed locked: true if its holder was found dead and the lock recovered. */
  busy(a: Arena): boolean;
}

/** @internal */
export type Emit = (type: MemsysEventType, detail: unknown) => void;

/** @internal */
export class Arenas {
  readonly list: Arena[] = [];
  readonly byId = new Map<number, Arena>();
  // This realm's own buffer of each arena: a view over one that we did not make is a subarray or
  // copy of one of ours.
  private readonly byBuffer = new WeakMap<ArrayBufferLike, Arena>();
  readonly emptySince = new Map<Arena, number>();   // arenas with nothing out, since when
  private readonly retired = new Retired();
  // An arena could not be mapped since memory was last freed, with this many bytes in use here.
  oom = false;
  oomInUse = 0;
  hooks: ArenaHooks | undefined;

  constructor(private readonly cfg: PoolConfig, private readonly emit: Emit, private readonly inUse: () => number) {}

  // What the pool holds that is not given back: this realm's arenas and the pool's retired ones.
  get held(): number {
    return this.list.length + this.cfg.control.retired;
  }

  // A new arena, counted open in the control block (every realm's budget sees it). The caller
  // announces it (`announce`) once it has taken its first buffers: announced empty, another realm
  // could close it first.
  add(level: PressureLevel): Arena {
    const { control, arenaSize, budget } = this.cfg;
    const count = control.countOpen();
    const ceiling = budget ? Math.max(budget.ceilingAt(level), arenaSize) : Infinity; // one arena, whatever the pressure
    if (count * arenaSize <= ceiling) {
      const reused = this.reuseRetired();
      if (reused) return reused;
    }
    if (budget) {
      const retired = control.retired;
      const held = (count + retired) * arenaSize;
      if (held > ceiling) {
        control.uncountOpen();
        throw new MemsysError('ERR_MEMSYS_BUDGET', `a new ${formatBytes(arenaSize)} arena would take the pool to ` +
          `${formatBytes(held)}${retired ? ` (${retired} dropped arenas not yet collected included)` : ''}, above its ceiling ` +
          `${formatBytes(ceiling)} (${formatBytes(budget.ceiling)} at ${pressureName(level)} pressure)`);
      }
    }
    const id = control.nextArenaId();
    let a: Arena;
    try {
      a = Arena.create(arenaSize, this.cfg.shared, this.cfg.debug, this.cfg.id, id, this.cfg.realm);
    } catch (e) {
      control.uncountOpen();
      if (e instanceof MemsysError && e.code === 'ERR_MEMSYS_OUT_OF_MEMORY') {
        this.failedToMap();
        control.setKeepOne(); // mapping can fail here: never drop the last arena
      }
      throw e;
    }
    this.oom = false;
    this.register(a);
    return a;
  }

  failedToMap(): void {
    this.oom = true;
    this.oomInUse = this.inUse();
  }

  // The caller has counted the arena open already. Only a realm alone in its pool reuses: another
  // live realm may still hold the arena under its old id, or be about to let go of it.
  private reuseRetired(): Arena | undefined {
    const { control, realm } = this.cfg;
    if (!control.alone(realm)) return undefined;
    for (let r = this.retired.take(); r; r = this.retired.take()) {
      if (r.counted) control.retire(realm, -1);
      if (!r.arena.reopen(control.nextArenaId())) continue;
      r.arena.reused = true;
      this.register(r.arena);
      return r.arena;
    }
    return undefined;
  }

  announce(a: Arena): void {
    this.hooks?.added(a);
    this.emit('arena-added', { id: a.id, bytes: a.bytes, arenas: this.list.length });
  }

  // `local`: a.buffer is this realm's own buffer of the arena (not one that came with a posted
  // view).
  private register(a: Arena, local = true): void {
    a.onBusy = (x) => this.hooks?.busy(x) ?? false;
    this.list.push(a);
    this.byId.set(a.id, a);
    if (local) this.byBuffer.set(a.buffer, a);
  }

  // Runs f on every open arena this realm has a core for; one another realm keeps locked is passed
  // over (what f did on it before is kept).
  eachOpen(f: (a: Arena) => void): void {
    for (const a of this.list) {
      if (!a.core || a.closed) continue;
      unlessBusy(() => f(a));
    }
  }

  // True if `ab` is this realm's own buffer of one of its arenas.
  isOwnBuffer(ab: ArrayBufferLike): boolean {
    return this.byBuffer.has(ab);
  }

  // An arena's memory arrived: adopt it, or bind the arena that a posted buffer made known first
  // (`rebound`: views made over the posted buffer should be remade over the memory's own).
  // Undefined if the memory is not an open arena of this pool, or is known already.
  adopt(memory: WebAssembly.Memory): { arena: Arena; rebound: boolean } | undefined {
    const hdr = readHeader(memory.buffer);
    if (!hdr || hdr.owner !== this.cfg.id || hdr.closed) return undefined;
    const known = this.byId.get(hdr.id);
    if (known?.core) return undefined;
    if (known) {
      // The posted buffer it was known by is not registered as ours: other views that came in the
      // same message share it and must still be taken as posted, not as subarrays.
      known.bind(memory);
      this.byBuffer.set(known.buffer, known);
      return { arena: known, rebound: true };
    }
    const a = Arena.adopt(memory, this.cfg.debug, this.cfg.realm);
    this.register(a);
    return { arena: a, rebound: false };
  }

  // The arena of a posted SharedArrayBuffer of this pool. One not yet announced to this realm (or
  // whose announcement it missed) is worked from that buffer, and the realms that hold its memory
  // are asked to send it. Undefined if the buffer is not an arena of this pool.
  know(ab: SharedArrayBuffer): Arena | undefined {
    const hdr = readHeader(ab);
    if (!hdr || hdr.owner !== this.cfg.id) return undefined;
    const known = this.byId.get(hdr.id);
    if (known) return known;
    const a = Arena.fromBuffer(ab, hdr.id, this.cfg.debug, this.cfg.realm);
    this.register(a, false);
    this.hooks?.wanted(a.id);
    return a;
  }

  // Where mapping a new arena may fail (an address-space limit, or a mapping that failed before),
  // the pool never drops its last arena: it could not get one back. Pool-wide: the realms share
  // one address space, whichever of them has the figures.
  keepOne(stats?: MemStats): boolean {
    if (stats?.addressSpace !== undefined) this.cfg.control.setKeepOne();
    return this.cfg.control.keepOne;
  }

  // Closes an arena nothing of which is out, in any realm, and lets go of it; false if buffers are.
  // `keepOne`: never the pool's last open arena; the open count is lowered before the close, so
  // that two realms cannot each close one of the last two.
  dropIfEmpty(a: Arena, keepOne = false): boolean {
    const { control } = this.cfg;
    if (keepOne && !control.uncountOpenUnlessLast()) return false;
    let closed = false as 'closed' | 'already' | false; // set inside the closure
    unlessBusy(() => {
      a.release(); // its runs; this realm's scratch page stays, to give the pages back after the close
      a.ensureScratch();
      closed = a.close();
    });
    if (closed !== 'closed') {
      if (keepOne) control.countOpen(); // not ours to count
      if (!closed) return false;
    } else if (!keepOne) {
      control.uncountOpen(); // the one realm that closed it counts
    }
    this.hooks?.closed(a);
    this.drop(a, closed === 'closed');
    return true;
  }

  // Lets go of an arena. `closedHere`: this realm closed it, so it gives the memory back: in place
  // where it can (every free page; the tables go with the memory), otherwise it is retired, counted
  // until collected, and a collection is requested. Every realm gives back its scratch page and
  // keeps a weak reference for reuse (which only a realm alone in its pool may do).
  drop(a: Arena, closedHere: boolean): void {
    const { control, realm, madvise } = this.cfg;
    const i = this.list.indexOf(a);
    if (i >= 0) this.list.splice(i, 1);
    this.byId.delete(a.id);
    this.emptySince.delete(a);
    this.hooks?.dropped(a);
    let given = false;
    if (closedHere && pageOps().discard) {
      unlessBusy(() => {
        discardFree(a, madvise);
        given = a.cleanPages >= a.freePages; // every free page went back (raw pages are realms' scratch)
      });
    }
    unlessBusy(() => { a.returnPending(); a.releaseScratch(); });
    if (closedHere && !given && a.memory) {
      control.retire(realm, 1);
      // Bound, not a closure: a closure made here would share this call's scope with the ones
      // above, which hold `a`, and the registry holding it would keep the memory alive for good.
      this.retired.add(a, control.retire.bind(control, realm, -1), true);
    } else {
      // Given back in place, the memory still holds its address space until collected.
      this.retired.add(a, undefined, !pageOps().discard || control.keepOne);
    }
    this.emit('arena-dropped', { id: a.id, bytes: a.bytes, arenas: this.list.length, returned: given });
  }

  // Every arena let go of, as terminate() does: what can go back does, nothing is counted.
  clear(): void {
    for (const a of this.list) unlessBusy(() => { a.returnPending(); a.releaseAll(); }); // locked: its scratch page stays
    this.list.length = 0;
    this.byId.clear();
    this.emptySince.clear();
  }
}
