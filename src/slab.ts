// A slab: the buffers of one size class, as this realm sees them, with its magazine.
//
// The magazine is a stack of cached views (Bonwick's magazine layer). `alloc` pops and `free`
// pushes; the core is reached only to refill an empty magazine or flush a full one, a batch at a
// time through the MMSA. Each buffer's view is made once, when it enters the magazine, and
// carries two symbol-keyed properties: its arena and its slot (offset / 128). Reading those is a
// monomorphic property load; `byteOffset`, `byteLength` and `buffer` cost 10–20 ns each on Node 20
// (bench/RESULTS.md), more than the whole hot path.
//
// The slot's state byte in the arena (OUT: in a magazine, LIVE: in the user's hands) is the
// truth that makes a double free or a stale view fail: plain byte stores on the hot path, since
// an atomic compare-exchange costs ~4x the whole alloc+free pair. Only a free racing another
// free of the same buffer in another thread can slip through; docs/architecture.md.

import type { Arena } from './arena.js';
import { ST_LIVE, ST_OUT } from './core.js';
import type { MMSA } from './mmsa.js';

export const kArena: unique symbol = Symbol('memsys.arena');
export const kSlot: unique symbol = Symbol('memsys.slot');

// A view this realm made for a buffer. kSlot is -1 once the buffer went back to the core.
export interface SlabBuffer extends Uint8Array {
  [kArena]?: Arena;
  [kSlot]?: number;
}

export class Slab {
  readonly size: number;
  /** @internal */ readonly cls: number;
  /** @internal */ readonly mm: MMSA;
  /** @internal */ readonly mag: SlabBuffer[] = [];
  /** @internal */ readonly cap: number;    // magazine capacity; a flush gives back half
  /** @internal */ readonly batch: number;  // buffers per refill or flush
  /** @internal */ hits = 0;                // allocations since the last publish
  /** @internal */ live = 0;                // change in buffers in use since the last publish
  /** @internal */ readonly liveState: number;
  /** @internal */ readonly outState: number;
  private readonly debug: boolean;

  /** @internal */
  constructor(mm: MMSA, cls: number, size: number, cap: number, debug: boolean) {
    this.mm = mm;
    this.cls = cls;
    this.size = size;
    this.cap = cap;
    this.batch = Math.max(1, cap >>> 1);
    this.liveState = (cls << 2) | ST_LIVE;
    this.outState = (cls << 2) | ST_OUT;
    this.debug = debug;
  }

  // ---- hot path ----------------------------------------------------------------------------------

  alloc(): Uint8Array {
    const v = this.mag.pop();
    if (v === undefined) return this.refill();
    if (this.debug) this.mm.debugAlloc(v, this);
    v[kArena]!.state[v[kSlot]!] = this.liveState;
    this.hits++;
    this.live++;
    return v;
  }

  free(buf: Uint8Array): void {
    const v = buf as SlabBuffer;
    const a = v[kArena];
    if (a === undefined || a.mm !== this.mm) return this.mm.freeSlow(buf, this);
    const i = v[kSlot]!;
    const st = a.state;
    if (st[i] !== this.liveState) return this.mm.freeRejected(v, this);
    st[i] = this.outState;
    this.live--;
    if (this.debug) this.mm.debugFree(v);
    this.push(v);
  }

  // ---- end of hot path ---------------------------------------------------------------------------

  /** @internal */
  push(v: SlabBuffer): void {
    if (this.mag.length >= this.cap) this.mm.flush(this, this.batch);
    this.mag.push(v);
  }

  private refill(): Uint8Array {
    this.mm.refill(this);
    return this.alloc();
  }
}
