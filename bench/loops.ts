// The 32 KiB loops that bench/run.ts (part 1), bench/mixed.ts (part 1's mixed process) and
// bench/worker.ts (part 3) time, and the plain JS pools they compare with. Each loop takes one kind
// of allocator, so its call sites stay monomorphic: the contenders are deliberately separate
// functions, not one loop over an interface, or the JIT would time a polymorphic dispatch instead
// of the allocator.

import type { MMSA, Slab } from '../src/node/index.js';

export const RING = 8;
export const MASK = RING - 1;
export const SIZE = 32 * 1024;
// The loops read bindings of their own: an exported binding is a live cell to V8, which a loop
// loads and checks on every iteration, a cost of the harness that also grew with the register
// pressure of the allocator's code in the same loop.
const ringLen = RING;
const ringMask = MASK;

export class ArrayPool {
  private readonly items: Uint8Array[] = [];
  constructor(readonly size: number, n: number) {
    for (let i = 0; i < n; i++) this.items.push(new Uint8Array(size));
  }
  alloc(): Uint8Array {
    const b = this.items.pop();
    return b !== undefined ? b : new Uint8Array(this.size);
  }
  free(b: Uint8Array): void {
    this.items.push(b);
  }
}

// The least a JS pool must do to refuse a double free or a foreign array, as memsys does: a
// symbol-keyed owner on each buffer, set on alloc and cleared on free. It sees only its own realm
// (a buffer posted to a worker and freed there escapes it); memsys's state byte is shared.
const kOwner: unique symbol = Symbol('checked-pool.owner');
type Owned = Uint8Array & { [kOwner]?: CheckedPool | null };

export class CheckedPool {
  private readonly items: Owned[] = [];
  constructor(readonly size: number, n: number) {
    for (let i = 0; i < n; i++) { const b: Owned = new Uint8Array(size); b[kOwner] = null; this.items.push(b); }
  }
  alloc(): Uint8Array {
    let b = this.items.pop();
    if (b === undefined) { b = new Uint8Array(this.size) as Owned; }
    b[kOwner] = this;
    return b;
  }
  free(buf: Uint8Array): void {
    const b = buf as Owned;
    if (b[kOwner] !== this) throw new Error('not a live buffer of this pool');
    b[kOwner] = null;
    this.items.push(b);
  }
}

// The floor of what memsys's safety costs (docs/architecture.md): the pool that refuses double
// frees, plus a state byte per buffer in shared memory, stored on alloc and checked and stored on
// free (what makes a free in another worker visible), and a magazine refilled from and flushed to
// a backing list in batches, as memsys's is. Its keys are read off the prototype, as memsys's are.
const fOwner: unique symbol = Symbol('floor.owner');
const fState: unique symbol = Symbol('floor.state');
const fSlot: unique symbol = Symbol('floor.slot');
type FloorView = Uint8Array & { [fOwner]?: FloorPool | null; [fState]?: Uint8Array; [fSlot]?: number };
const LIVE = 2;
const OUT = 1;

// The backing list is an object of its own that the magazine calls, as memsys's slab calls its
// pool. With the batch loops as the magazine's own methods, the JIT inlines them into a caller's
// loop once they have run (they have in any process that used the pool for a while), and the ring
// loop then takes ~1.6x its time in a fresh process: a floor slower than what it bounds.
class FloorDepot {
  private readonly items: FloorView[] = [null].slice(1) as unknown as FloorView[];
  add(v: FloorView): void {
    this.items.push(v);
  }
  refill(mag: FloorView[], batch: number): void {
    const items = this.items;
    for (let k = 0; k < batch && items.length > 0; k++) mag.push(items.pop()!);
    if (mag.length === 0) throw new Error('floor pool: out of buffers');
  }
  flush(mag: FloorView[], batch: number): void {
    for (let k = 0; k < batch; k++) this.items.push(mag.pop()!);
  }
}

export class FloorPool {
  declare readonly kOwner: typeof fOwner;
  declare readonly kState: typeof fState;
  declare readonly kSlot: typeof fSlot;
  private readonly mag: FloorView[];
  private readonly depot = new FloorDepot();
  private readonly cap: number;
  private readonly batch: number;
  constructor(readonly size: number, n: number) {
    this.mag = [null].slice(1) as unknown as FloorView[];
    this.cap = 16;
    this.batch = 8;
    const mem = new SharedArrayBuffer(n * size + n);
    const state = new Uint8Array(mem, n * size, n);
    for (let i = 0; i < n; i++) {
      const v: FloorView = new Uint8Array(mem, i * size, size);
      v[fOwner] = this;
      v[fState] = state;
      v[fSlot] = i;
      state[i] = OUT;
      this.depot.add(v);
    }
  }
  alloc(): Uint8Array {
    let v = this.mag.pop();
    if (v === undefined) {
      this.depot.refill(this.mag, this.batch);
      v = this.mag.pop()!;
    }
    v[this.kState]![v[this.kSlot]!] = LIVE;
    return v;
  }
  free(buf: Uint8Array): void {
    const v = buf as FloorView;
    if (v[this.kOwner] !== this) throw new Error('not a buffer of this pool');
    const st = v[this.kState]!;
    const i = v[this.kSlot]!;
    if (st[i] !== LIVE) throw new Error('not a live buffer');
    st[i] = OUT;
    const mag = this.mag;
    mag.push(v);
    if (mag.length > this.cap) this.depot.flush(mag, this.batch);
  }
}
for (const [name, key] of [['kOwner', fOwner], ['kState', fState], ['kSlot', fSlot]] as const) {
  Object.defineProperty(FloorPool.prototype, name, { value: key, writable: false, enumerable: false, configurable: false });
}

export function floorRing(p: FloorPool, iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < ringLen; j++) { const b = p.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & ringMask;
    const b = p.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    p.free(old);
  }
  let sum = 0;
  for (let j = 0; j < ringLen; j++) { sum += ring[j][0]; p.free(ring[j]); }
  return sum;
}

export function floorLifo(p: FloorPool, iters: number): number {
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const b = p.alloc();
    b[0] = i;
    sum += b[0];
    p.free(b);
  }
  return sum;
}

// Allocate a new buffer, touch it, free the oldest of the ring.
export function slabRing(s: Slab, iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < ringLen; j++) { const b = s.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & ringMask;
    const b = s.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    s.free(old);
  }
  let sum = 0;
  for (let j = 0; j < ringLen; j++) { sum += ring[j][0]; s.free(ring[j]); }
  return sum;
}

export function poolRing(p: ArrayPool, iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < ringLen; j++) { const b = p.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & ringMask;
    const b = p.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    p.free(old);
  }
  let sum = 0;
  for (let j = 0; j < ringLen; j++) { sum += ring[j][0]; p.free(ring[j]); }
  return sum;
}

export function checkedRing(p: CheckedPool, iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < ringLen; j++) { const b = p.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & ringMask;
    const b = p.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    p.free(old);
  }
  let sum = 0;
  for (let j = 0; j < ringLen; j++) { sum += ring[j][0]; p.free(ring[j]); }
  return sum;
}

// The ring loop through the MMSA: mm.alloc() (its default size) and mm.free.
export function mmRing(m: MMSA, iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < ringLen; j++) { const b = m.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & ringMask;
    const b = m.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    m.free(old);
  }
  let sum = 0;
  for (let j = 0; j < ringLen; j++) { sum += ring[j][0]; m.free(ring[j]); }
  return sum;
}

// LIFO: free the buffer just allocated (a request handler that uses one buffer at a time).
export function slabLifo(s: Slab, iters: number): number {
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const b = s.alloc();
    b[0] = i;
    sum += b[0];
    s.free(b);
  }
  return sum;
}

export function poolLifo(p: ArrayPool, iters: number): number {
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const b = p.alloc();
    b[0] = i;
    sum += b[0];
    p.free(b);
  }
  return sum;
}
