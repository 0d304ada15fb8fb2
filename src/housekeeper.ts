// The housekeeper: what an MMSA does on its own timer to give memory back, as AIStore's MMSA does,
// and the readings it goes by. The rules are pure functions in policy/ (pressure levels, the
// minimum free, the budget, the idle tiers and depths); this file applies them to the pool.
//
//   each pass   read the host's figures → pressure (and the swap trend) → reduce classes (idle
//               ones by tier at Low, every one to the level's depth above it) → flush magazines
//               idle in this realm → drop arenas empty for long enough (at once under pressure,
//               or as many as the budget's excess covers) → under pressure or above the budget's
//               target, give the kept arenas' free pages back to the kernel in place
//
// "Depth" is the free buffers a class keeps ready: this realm's magazine plus free slots in
// carved runs (the core's trim releases whole runs beyond it).

import { type HousekeepReport, type MemsysEventType } from './events.js';
import { invalidArg } from './errors.js';
import { type MemStats, type MemStatsProvider, defaultMemStats, saneStats } from './platform/host.js';
import { pressureEvents } from './platform/pressure-events.js';
import { unref } from './platform/timers.js';
import type { MinFree } from './policy/minfree.js';
import { Pressure, type PressureLevel, SwapTrend, pressureLevel } from './policy/pressure.js';
import { ARENA_IDLE_MS, depthFor, idleDepth, nextInterval } from './policy/tiers.js';
import { discardFree } from './pool/giveback.js';
import type { Pool } from './pool/pool.js';
import type { Slab } from './pool/slab.js';

/** @internal */
export interface HousekeeperOptions {
  timeIval: number;
  timer: boolean;                  // run on a timer (else only housekeep() and freeMem())
  events: boolean;                 // also run a pass on the host's pressure events
  memStats: MemStatsProvider | undefined;
  now: () => number;
}

/** What `mm.freeMem()` takes. */
export interface FreeMemOptions {
  /** Empty the classes with no allocation for at least this long, ms (AIStore's IdleDuration). */
  idle?: number;
  /** Empty every class: all cached buffers back. */
  totally?: boolean;
  /** Then drop every empty arena at once (default true). */
  toOS?: boolean;
}

/** @internal */
export class Housekeeper {
  /** The minimum free memory pressure is judged by, and where it came from. */
  min: MinFree = { bytes: 0, source: 'not initialised' };
  /** AIStore's low watermark, bytes (pressure.ts). */
  lowWM = 0;
  /** Run before each pass (the reclaims a dead realm's locked arena kept back). */
  beforePass: () => void = () => {};
  private readonly swap = new SwapTrend();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private highDepth = 128;             // High's depth, halved each High tick down to 32 (tiers.ts)
  private levelKnown = false;         // a first level was read (the one 'pressure' events change from)
  private readonly idle: { hits: number; since: number }[] = [];
  private unsubscribe: (() => void) | undefined;
  private lastEventPass = -Infinity;

  constructor(private readonly pool: Pool, private readonly opts: HousekeeperOptions,
    private readonly emit: (type: MemsysEventType, detail: unknown) => void) {}

  // `host`: the figures init read, for the first pressure level.
  start(host: MemStats | undefined): void {
    const now = this.opts.now();
    for (let c = 0; c < this.pool.slabs.length; c++) this.idle.push({ hits: 0, since: now });
    this.pressureOf(host);
    this.schedule(this.opts.timeIval);
    const events = this.opts.events && this.opts.timer ? pressureEvents() : undefined;
    this.unsubscribe = events?.(() => this.onPressureEvent());
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  // The host reported a stall: a pass now, and the timer counts from it. A second event within a
  // second of the last pass changes nothing (a trigger fires at most once per window anyway).
  private onPressureEvent(): void {
    const now = this.opts.now();
    if (!this.pool.usable || now - this.lastEventPass < 1000) return;
    this.lastEventPass = now;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.pass();
  }

  /** The pressure level last seen (the pool keeps it: a refill reads it). */
  get level(): PressureLevel {
    return this.pool.level;
  }

  // Host memory statistics from the provider; undefined without one, or when it fails (a
  // provider's failure never escapes: it only lowers what is known).
  hostStats(): MemStats | undefined {
    const p = this.opts.memStats ?? defaultMemStats();
    if (!p) return undefined;
    try {
      return saneStats(p({ poolBytes: this.pool.arenas.held * this.pool.cfg.arenaSize }));
    } catch {
      return undefined;
    }
  }

  // The level for figures already read. The swap trend moves only at passes (as in AIStore), so
  // that watching or scraping the level does not change it.
  pressureOf(s: MemStats | undefined): PressureLevel {
    this.pool.ready();
    const arenas = this.pool.arenas;
    if (arenas.oom && this.pool.bytesInUse() < arenas.oomInUse) arenas.oom = false; // memory was freed since
    const p = pressureLevel(s, { minFree: this.min.bytes, lowWM: this.lowWM, crit: this.swap.crit, oom: arenas.oom });
    this.notePressure(p);
    return p;
  }

  private notePressure(p: PressureLevel): void {
    const from = this.pool.level;
    this.pool.level = p;
    if (this.levelKnown && from !== p) this.emit('pressure', { from, to: p });
    this.levelKnown = true;
  }

  private schedule(ms: number): void {
    if (!this.opts.timer || !this.pool.usable) return;
    this.timer = unref(setTimeout(() => {
      if (this.pool.usable) this.pass();
    }, ms));
  }

  // A pass and the timer set for the next one, as the timer and pressure events run them.
  private pass(): void {
    this.timer = undefined;
    let next: number;
    try {
      next = this.housekeep().next!;
    } catch {
      next = Math.max(this.opts.timeIval, 60_000); // as AIStore after a failed memory reading
    }
    this.schedule(next);
  }

  // One pass, as the timer runs it; returns what it did and when the next is due.
  housekeep(): HousekeepReport {
    const pool = this.pool;
    pool.ready();
    this.beforePass();
    const now = this.opts.now();
    const stats = this.hostStats();
    this.swap.update(stats?.swap?.used);
    const p = this.pressureOf(stats);
    let released = 0;
    if (p === Pressure.Low) {
      this.highDepth = 128;
      for (const s of pool.slabs) {
        const depth = idleDepth(this.idleFor(s.cls, now));
        if (depth !== undefined) released += this.reduce(s, depth);
      }
    } else {
      const depth = depthFor(p, this.highDepth);
      if (p === Pressure.High) this.highDepth = depth;
      for (const s of pool.slabs) released += this.reduce(s, depth);
    }
    // With a budget, what the pool holds above its target goes back now: free buffers, and as
    // many arenas with nothing out as the excess covers, newest first. Arenas dropped already and
    // not yet collected are not excess: they go on their own, and dropping open ones in their
    // stead would take the pool below its target.
    const target = pool.cfg.budget?.update(pool.bytesInUseAll() + this.cycling(), p);
    const excess = target === undefined ? 0 : pool.arenas.list.length * pool.cfg.arenaSize - target;
    if (excess >= pool.cfg.arenaSize) for (const s of pool.slabs) released += this.reduce(s, 0);
    const flushed = this.flushIdleMagazines();
    const dropped = this.dropEmpty(now, p >= Pressure.High ? 0 : ARENA_IDLE_MS, Math.max(0, excess), pool.arenas.keepOne(stats));
    // Under pressure, or above the budget's target, the free pages of the arenas kept go back to
    // the kernel in place (where the native page helper is built).
    const returned = p >= Pressure.High || excess > 0 ? this.returnFree() : 0;
    return this.report(true, { pressure: p, released, flushed, dropped, returned, target, next: nextInterval(p, this.opts.timeIval, now) });
  }

  // Gives memory back now (mm.freeMem).
  freeMem(opts: FreeMemOptions = {}): HousekeepReport {
    const pool = this.pool;
    pool.ready();
    if (typeof opts !== 'object' || opts === null) throw invalidArg('options', opts, 'must be an object');
    for (const k of ['totally', 'toOS'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw invalidArg(`option ${k}`, opts[k], 'must be a boolean');
    }
    if (opts.idle !== undefined && !(typeof opts.idle === 'number' && opts.idle >= 0)) {
      throw invalidArg('option idle', opts.idle, 'must be a non-negative number of milliseconds');
    }
    const now = this.opts.now();
    let released = 0;
    for (const s of pool.slabs) {
      const idle = this.idleFor(s.cls, now);
      const depth = opts.totally ? 0 : opts.idle !== undefined ? (idle >= opts.idle && idle > 0 ? 0 : undefined) : idleDepth(idle);
      if (depth !== undefined) released += this.reduce(s, depth);
    }
    const flushed = opts.totally ? 0 : this.flushIdleMagazines();
    const toOS = opts.toOS !== false;
    const dropped = toOS ? this.dropEmpty(now, 0, 0, pool.arenas.keepOne(this.hostStats())) : 0;
    const returned = toOS ? this.returnFree() : 0;
    return this.report(false, { pressure: this.level, released, flushed, dropped, returned });
  }

  private report(tick: boolean, r: Omit<HousekeepReport, 'arenas' | 'bytes'>): HousekeepReport {
    const n = this.pool.arenas.list.length;
    const full: HousekeepReport = { ...r, arenas: n, bytes: n * this.pool.cfg.arenaSize };
    if (tick) this.emit('tick', full);
    return full;
  }

  // How long class c has gone without an allocation in any realm, ms (0 if it never had one).
  idleFor(c: number, now: number): number {
    this.pool.publish(this.pool.slabs[c]);
    const hits = Number(Atomics.load(this.pool.control.hits, c));
    const idle = this.idle[c];
    if (hits !== idle.hits) { idle.hits = hits; idle.since = now; }
    return hits === 0 ? 0 : now - idle.since;
  }

  // Keeps `depth` free buffers of s's class ready: the magazine down to it, then whole free runs
  // beyond it back to the arenas' free pages. Returns the buffers released.
  private reduce(s: Slab, depth: number): number {
    if (s.mag.length > depth) this.pool.flush(s, s.mag.length - depth);
    const keep = depth - s.mag.length;
    let n = 0;
    this.pool.arenas.eachOpen((a) => { n += a.trim(s.cls, keep); });
    if (n) this.emit('trim', { size: s.size, depth, released: n });
    return n;
  }

  // Bytes in the magazines of classes this realm has allocated from since the last pass (after
  // bytesInUseAll has published them): the buffers a steady stream of short requests cycles
  // through, which a reading of what is out at one instant misses between two requests.
  private cycling(): number {
    let n = 0;
    for (const s of this.pool.slabs) if (s.allocs !== s.allocsSeen) n += s.mag.length * s.size;
    return n;
  }

  // Magazines of classes this realm has not allocated from since the last pass go back whole.
  private flushIdleMagazines(): number {
    let n = 0;
    for (const s of this.pool.slabs) {
      this.pool.publish(s);
      if (s.allocs === s.allocsSeen && s.mag.length > 0) {
        n += s.mag.length;
        this.pool.flush(s, s.mag.length);
      }
      s.allocsSeen = s.allocs;
    }
    return n;
  }

  // Gives the free pages of every open arena back to the kernel in place; returns the bytes.
  private returnFree(): number {
    let n = 0;
    this.pool.arenas.eachOpen((a) => { n += discardFree(a, this.pool.cfg.madvise); });
    return n;
  }

  // Closes and lets go of arenas nothing of which has been out for `idleMs`, and, newest first,
  // of empty ones to cover `excess` bytes at once (closed ones another realm closed, at once).
  // `keepOne`: the last open arena stays (emptied, and its free pages given back in place).
  private dropEmpty(now: number, idleMs: number, excess: number, keepOne: boolean): number {
    const arenas = this.pool.arenas;
    let dropped = 0;
    for (const a of [...arenas.list].reverse()) {
      if (!a.core) continue;
      if (!a.closed) {
        if (a.outSlots() > 0) { arenas.emptySince.delete(a); continue; }
        const since = arenas.emptySince.get(a) ?? now;
        arenas.emptySince.set(a, since);
        const forBudget = excess >= a.bytes; // whole arenas only: the pool never drops below its target
        if (!forBudget && now - since < idleMs) continue;
        if (!arenas.dropIfEmpty(a, keepOne)) continue;
        if (forBudget) excess -= a.bytes;
      } else {
        arenas.drop(a, false); // another realm closed it
      }
      dropped++;
    }
    return dropped;
  }
}
