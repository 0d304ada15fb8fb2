// A slab: the buffers of one size class, as this realm sees them, with its magazine.
//
// The magazine is a stack of cached views (Bonwick's magazine layer). `alloc` pops and `free`
// pushes; the core is reached only to refill an empty magazine or flush a full one, a batch at a
// time through the MMSA. Each buffer's view is made once, when it enters the magazine, and
// carries symbol-keyed properties: the slab that made it (which settles "is it ours, and this
// size" in one compare), its arena's state table, its slot (granule index), and its arena (off the
// hot path). Reading those is a monomorphic property load, its key a constant to the JIT
// (viewKeys, below the class); `byteOffset`, `byteLength` and `buffer`
// cost 10–20 ns each on Node 20 (bench/RESULTS.md), more than the whole hot path. Going through
// the arena for the state table and the pool cost ~2 ns more per pair (docs/architecture.md).
//
// The slab calls down into its pool only through `SlabOwner`, a refill or flush a batch at a time
// and the frees it cannot prove; SGLs take and give slots through the same door.
//
// The slot's state byte in the arena (OUT: in a magazine, LIVE: in the user's hands) is the
// truth that makes a double free or a stale view fail: plain byte stores on the hot path, since
// an atomic compare-exchange costs ~4x the whole alloc+free pair. Only a free racing another
// free of the same buffer in another thread can slip through; docs/architecture.md.

import type { Arena } from '../core/arena.js';
import { ST_LIVE, ST_OUT } from '#abi';
import type { Control } from './control.js';

/** @internal */
export const kSlab: unique symbol = Symbol('memsys.slab');
/** @internal */
export const kState: unique symbol = Symbol('memsys.state');
/** @internal */
export const kSlot: unique symbol = Symbol('memsys.slot');
/** @internal */
export const kArena: unique symbol = Symbol('memsys.arena');

// kSlot of a view whose buffer went back to the core, and of one handed off to another realm.
/** @internal */
export const SLOT_FREE = -1;
/** @internal */
export const SLOT_MOVED = -2;

// A view this realm made for a buffer.
/** @internal */
export interface SlabBuffer extends Uint8Array {
  [kSlab]?: Slab;
  [kState]?: Uint8Array;
  [kSlot]?: number;
  [kArena]?: Arena;
}

// What a slab, and an SGL through its slab, may ask of its pool.
/** @internal */
export interface SlabOwner {
  readonly name: string;
  readonly id: number;          // the pool's id (handoffs name it)
  readonly control: Control;
  /** False before init() and after terminate(). */
  readonly usable: boolean;
  /** Throws unless usable. */
  ready(): void;
  refill(s: Slab): void;
  flush(s: Slab, n: number): void;
  freeSlow(buf: Uint8Array, s: Slab | undefined): void;
  freeRejected(v: SlabBuffer, s: Slab): never;
  debugAlloc(v: SlabBuffer, s: Slab): void;
  debugFree(v: SlabBuffer): void;
  takeSlots(s: Slab, n: number, arenas: Arena[], offs: number[]): void;
  giveSlots(s: Slab, arenas: readonly Arena[], offs: readonly number[]): void;
}

export class Slab {
  // Every field is set in the constructor, always in this order and each with its own kind of value:
  // a class field declared without one would start as undefined, and the JIT would then treat the
  // numbers the hot path reads as any value (a double conversion per use). So they are `declare`d.
  /** Buffer size, bytes. */
  declare readonly size: number;
  /** @internal */ declare readonly cls: number;
  /** @internal */ declare readonly pool: SlabOwner;
  /** @internal */ declare readonly mag: SlabBuffer[];
  /** @internal */ declare readonly cap: number;    // magazine capacity; a flush gives back half
  /** @internal */ declare readonly batch: number;  // buffers per refill or flush
  /** @internal */ declare hits: number;            // allocations since the last publish
  /** @internal */ declare allocs: number;          // allocations in this realm, published ones (housekeeping)
  /** @internal */ declare allocsSeen: number;      // `allocs` at the last housekeeping tick
  // Buffers in use are not counted on the hot path: in this realm they are always
  // `base - mag.length` (base: taken from the arenas minus given back), since alloc pops and
  // free pushes. A posted buffer freed here lowers this realm's count and its sender's stays
  // raised, so the sum over realms is right.
  /** @internal */ declare base: number;
  /** @internal */ declare published: number;       // the `base - mag.length` last added to the control block
  /** @internal */ declare liveState: number;       // -1 once the MMSA is terminated: every free is refused
  /** @internal */ declare readonly outState: number;
  // The view properties' keys as the hot path names them (viewKeys, below the class).
  /** @internal */ declare readonly kSlab: typeof kSlab;
  /** @internal */ declare readonly kState: typeof kState;
  /** @internal */ declare readonly kSlot: typeof kSlot;

  /** @internal */
  constructor(pool: SlabOwner, cls: number, size: number, cap: number);
  /** Slabs are made by the MMSA (`mm.getSlab(size)`), not by `new`. */
  constructor(made: never, ...rest: never[]);
  constructor(pool: SlabOwner, cls: number, size: number, cap: number) {
    this.size = size;
    this.cls = cls;
    this.pool = pool;
    // An array of objects from the start: `[]` begins as an array of small integers, and a
    // magazine that never held a view would reach the hot path's `pop` in another shape.
    this.mag = [null].slice(1) as unknown as SlabBuffer[];
    this.cap = cap;
    this.batch = Math.max(1, cap >>> 1);
    this.hits = 0;
    this.allocs = 0;
    this.allocsSeen = 0;
    this.base = 0;
    this.published = 0;
    this.liveState = (cls << 2) | ST_LIVE;
    this.outState = (cls << 2) | ST_OUT;
  }

  // ---- hot path ----------------------------------------------------------------------------------
  // No slow path rejoins the fast path in the middle of its work. Once a slow path has run in a
  // process (a refill has, in any process that used a few classes), the JIT compiles it into the
  // caller's loop instead of leaving a deoptimization there, and the code after the join knows
  // nothing it knew before, so every check runs again. So alloc's refill comes before the pop that
  // every call makes, free's flush after its work, and the other exits leave for good.

  /** A buffer of this slab's size (its contents are what the last user left). */
  alloc(): Uint8Array {
    let v = this.mag.pop();
    if (v === undefined) {
      this.pool.refill(this); // leaves at least one view in the magazine, or throws
      v = this.mag.pop()!;
    }
    v[this.kState]![v[this.kSlot]!] = this.liveState;
    this.hits++;
    return v;
  }

  /** Gives a buffer of this slab back. Throws a typed error, changing nothing, for one that is not
   * in use, of another size (ERR_MEMSYS_WRONG_SLAB) or not this pool's. */
  free(buf: Uint8Array): void {
    const v = buf as SlabBuffer | null;
    if (v === null || v === undefined || v[this.kSlab] !== this) return this.pool.freeSlow(buf, this);
    const st = v[this.kState]!;
    const i = v[this.kSlot]!;
    if (st[i] !== this.liveState) return this.pool.freeRejected(v, this);
    st[i] = this.outState;
    const mag = this.mag;
    mag.push(v);
    if (mag.length > this.cap) this.pool.flush(this, this.batch);
  }

  // ---- end of hot path ---------------------------------------------------------------------------

  /** @internal */
  push(v: SlabBuffer): void {
    this.mag.push(v);
    if (this.mag.length > this.cap) this.pool.flush(this, this.batch);
  }
}

// Hot-path code names a view's properties through `this` (`v[this.kSlab]`), with the keys as
// read-only properties of its class's prototype: the JIT folds such a property into its code as a
// constant. The module's own bindings are not constants to it (an export is a live binding, and a
// bundler turns a top-level `const` into a `var`), and each access through one costs a load and a
// compare of the key: ~1 ns per alloc+free pair (docs/architecture.md).
/** @internal */
export function viewKeys(proto: object): void {
  for (const [name, key] of [['kSlab', kSlab], ['kState', kState], ['kSlot', kSlot]] as const) {
    Object.defineProperty(proto, name, { value: key });
  }
}
viewKeys(Slab.prototype);

// Debug mode: the same slab, with every buffer checked for DEADBEEF as it leaves the magazine and
// poisoned as it returns, and every arena's invariants checked on each call. A subclass, so that
// release mode pays not even a flag test.
/** @internal */
export class DebugSlab extends Slab {
  override alloc(): Uint8Array {
    let v = this.mag.pop();
    if (v === undefined) {
      this.pool.refill(this);
      v = this.mag.pop()!;
    }
    this.pool.debugAlloc(v, this);
    v[this.kState]![v[this.kSlot]!] = this.liveState;
    this.hits++;
    return v;
  }

  override free(buf: Uint8Array): void {
    const v = buf as SlabBuffer | null;
    if (v === null || v === undefined || v[this.kSlab] !== this) return this.pool.freeSlow(buf, this);
    const st = v[this.kState]!;
    const i = v[this.kSlot]!;
    if (st[i] !== this.liveState) return this.pool.freeRejected(v, this);
    st[i] = this.outState;
    this.pool.debugFree(v);
    this.push(v);
  }
}
