// Scaling benchmark worker (bench/run.ts starts it). It attaches the shared MMSA from the main
// thread (or, in 'pool' mode, uses a plain JS array pool as a reference for what the machine
// itself scales to) and runs the same 32 KiB alloc+free ring loop as part 1 of run.ts, once per
// 'run' message, starting together with the other workers at a barrier in shared memory.
//
// workerData: { mode: 'slab' | 'pool', desc: ShareDescriptor, ctl: SharedArrayBuffer, warmIters }
// in:  { cmd: 'run', round, iters }   out: { ready: true } once warm, then { round, t0, t1, sum }

import { parentPort, workerData } from 'node:worker_threads';
import { MMSA, type ShareDescriptor } from '../src/node/index.js';
import { ArrayPool, RING, SIZE, poolRing, slabRing } from './loops.js';

interface Data {
  mode: 'slab' | 'pool';
  desc: ShareDescriptor;
  ctl: SharedArrayBuffer;
  warmIters: number;
}

const data = workerData as Data;
const ctl = new Int32Array(data.ctl); // [0] workers armed, [1] round released

const mm = MMSA.attach(data.desc);
const slab = mm.getSlab(SIZE);

const pool = new ArrayPool(SIZE, 2 * RING);

const loop = data.mode === 'slab' ? (n: number) => slabRing(slab, n) : (n: number) => poolRing(pool, n);

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
