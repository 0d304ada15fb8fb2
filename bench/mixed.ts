// Part 1's mixed process (bench/run.ts starts it): the 32 KiB loops timed the way a server runs
// them, in a process that has allocated from the other size classes and has a worker attached.
// A fresh process times differently: the JIT compiles a slow path (a magazine's refill) that has
// never run with feedback as a deoptimization, and one that has as code in the loop.
//
// Before anything is timed: an MMSA, a worker attached to it (share / MMSA.attach), and MIXED
// mm.allocSize + mm.free over the 32 page classes (4 KiB … 128 KiB). Then the ring and LIFO loops
// of the slab, and mm.alloc / mm.free, side by side with the JS array pool's and the safety
// floor's (bench/loops.ts; bench/measure.ts).
// Prints { mixed: MIXED, results } as one line of JSON.
//
//   node --expose-gc --import tsx bench/mixed.ts

import { MMSA } from '../src/node/index.js';
import { startWorker } from './boot.js';
import { ArrayPool, FloorPool, RING, SIZE, floorLifo, floorRing, mmRing, poolLifo, poolRing, slabLifo, slabRing } from './loops.js';
import { side } from './measure.js';

const MIXED = 200_000;

const mm = new MMSA({ name: 'bench-mixed' });
mm.init();
// Warmed with no loop to run (it attaches and waits; bench/worker.ts).
const worker = startWorker(new URL('./worker.ts', import.meta.url), { mode: 'slab', desc: mm.share(), ctl: new SharedArrayBuffer(8), warmIters: 0 });
await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });

for (let i = 0; i < MIXED; i++) mm.free(mm.allocSize(4096 * (1 + (i & 31))));

const slab = mm.getSlab(SIZE);
const pool = new ArrayPool(SIZE, 2 * RING);
const floor = new FloorPool(SIZE, 4 * RING);
// The floor's slow paths too have run before, as memsys's have: its refill and flush with feedback.
for (let i = 0; i < MIXED >> 4; i++) { const held = Array.from({ length: 3 * RING }, () => floor.alloc()); for (const b of held) floor.free(b); }
const results = side([
  { name: 'slab ring', run: (n) => slabRing(slab, n) },
  { name: 'pool ring', run: (n) => poolRing(pool, n) },
  { name: 'slab LIFO', run: (n) => slabLifo(slab, n) },
  { name: 'pool LIFO', run: (n) => poolLifo(pool, n) },
  { name: 'mm ring', run: (n) => mmRing(mm, n) },
  { name: 'floor ring', run: (n) => floorRing(floor, n) },
  { name: 'floor LIFO', run: (n) => floorLifo(floor, n) },
]);

worker.postMessage({ cmd: 'stop' });
await new Promise((resolve) => worker.once('exit', resolve));
mm.terminate();
process.stdout.write(`${JSON.stringify({ mixed: MIXED, results })}\n`);
