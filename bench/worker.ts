// Scaling benchmark worker (bench/run.ts starts it). It attaches the shared MMSA from the main
// thread (or, in 'pool' mode, uses a plain JS array pool as a reference for what the machine
// itself scales to) and runs the same 32 KiB alloc+free ring loop as part 1 of run.ts, once per
// 'run' message, starting together with the other workers at a barrier in shared memory.
//
// workerData: { mode: 'slab' | 'pool', desc: ShareDescriptor, ctl: SharedArrayBuffer, warmIters }
// in:  { cmd: 'run', round, iters }   out: { ready: true } once warm, then { round, t0, t1, sum }

import { parentPort, workerData } from 'node:worker_threads';
import { MMSA, type ShareDescriptor } from '../src/node/index.js';

interface Data {
  mode: 'slab' | 'pool';
  desc: ShareDescriptor;
  ctl: SharedArrayBuffer;
  warmIters: number;
}

const RING = 8;
const MASK = RING - 1;
const SIZE = 32 * 1024;
const data = workerData as Data;
const ctl = new Int32Array(data.ctl); // [0] workers armed, [1] round released

const mm = MMSA.attach(data.desc);
const slab = mm.getSlab(SIZE);

// The same loop as run.ts's slab32: allocate a new buffer, touch it, free the oldest of the ring.
function slabLoop(iters: number): number {
  const s = slab;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = s.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = s.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    s.free(old);
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) { sum += ring[j][0]; s.free(ring[j]); }
  return sum;
}

class ArrayPool {
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
const pool = new ArrayPool(SIZE, 2 * RING);

function poolLoop(iters: number): number {
  const p = pool;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = p.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = p.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    p.free(old);
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) { sum += ring[j][0]; p.free(ring[j]); }
  return sum;
}

const loop = data.mode === 'slab' ? slabLoop : poolLoop;

// JIT warm-up before anything is timed.
for (let r = 0; r < 5; r++) loop(data.warmIters);

parentPort!.on('message', (m: { cmd: string; round: number; iters: number }) => {
  if (m.cmd === 'stop') {
    mm.terminate();
    parentPort!.close();
    return;
  }
  Atomics.add(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  for (;;) {
    const g = Atomics.load(ctl, 1);
    if (g >= m.round) break;
    Atomics.wait(ctl, 1, g);
  }
  const t0 = process.hrtime.bigint();
  const sum = loop(m.iters);
  const t1 = process.hrtime.bigint();
  parentPort!.postMessage({ round: m.round, t0, t1, sum });
});
parentPort!.postMessage({ ready: true });
