// One stress worker thread: `tasks` concurrent tasks allocate, fill, check and free buffers and SGLs
// of random sizes until the deadline, pausing 1–101 ms between steps (sleep) or only yielding
// (nosleep), as AIStore's Test_Sleep / Test_NoSleep goroutines do. Reports what it did.
import { parentPort, workerData } from 'node:worker_threads';
import { MMSA, type ShareDescriptor, setDefaultMemStats } from '../../src/index.js';

interface Data { desc: ShareDescriptor; knob: SharedArrayBuffer; deadline: number; minOps: number; mode: 'sleep' | 'nosleep'; tasks: number; seed: number }
const d = workerData as Data;
const knob = new Int32Array(d.knob);
// Host figures from the main thread's knob: it moves free memory through the pressure levels.
setDefaultMemStats(() => ({ total: 64 * 2 ** 30, free: Atomics.load(knob, 0) * 2 ** 20, available: Atomics.load(knob, 0) * 2 ** 20 }));
const mm = MMSA.attach(d.desc);

let x = d.seed | 1;
const rand = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32; };
const sizeBetween = (lo: number, hi: number) => Math.floor(lo * (hi / lo) ** rand()); // log-uniform
const pause = () => (d.mode === 'sleep'
  ? new Promise((r) => setTimeout(r, 1 + Math.floor(rand() * 100)))
  : new Promise((r) => setImmediate(r)));

const stats = { ops: 0, sgls: 0, buffers: 0, bytes: 0, mismatches: 0, refused: 0 }; // mismatches: objects with a wrong byte

// The byte at position p of a stamped object: depends on its stamp, so that any mix-up shows.
const fill = (b: Uint8Array, stamp: number, from = 0) => { for (let i = 0; i < b.length; i++) b[i] = (stamp + (from + i) * 7) & 255; };
const same = (b: Uint8Array, stamp: number, from = 0) => { for (let i = 0; i < b.length; i += 61) if (b[i] !== ((stamp + (from + i) * 7) & 255)) return false; return true; };

async function sglStep(stamp: number): Promise<void> {
  const size = sizeBetween(1024, 10 * 2 ** 20);
  const a = mm.newSGL(rand() < 0.5 ? size : 0);
  const chunk = new Uint8Array(Math.min(size, 64 * 1024));
  for (let off = 0; off < size; off += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, size - off));
    fill(part, stamp, off);
    a.write(part);
  }
  await pause();
  // Copy into a second SGL through a reader, as TestSGLStressN does, and compare both.
  const b = mm.newSGL(128);
  const r = a.open();
  const buf = new Uint8Array(4096 + Math.floor(rand() * 60000));
  for (let n = r.read(buf); n > 0; n = r.read(buf)) b.write(buf.subarray(0, n));
  let off = 0;
  for (let n = b.read(buf); n > 0; n = b.read(buf)) { if (!same(buf.subarray(0, n), stamp, off)) stats.mismatches++; off += n; }
  if (off !== size || a.size !== size) stats.mismatches++;
  a.free();
  b.free();
  stats.sgls++;
  stats.bytes += 2 * size;
}

async function bufferStep(stamp: number): Promise<void> {
  const held: Uint8Array[] = [];
  for (let k = 1 + Math.floor(rand() * 16); k > 0; k--) {
    const b = mm.allocSize(sizeBetween(1, 128 * 1024));
    fill(b, stamp + k);
    held.push(b);
  }
  await pause();
  held.forEach((b, i) => { if (!same(b, stamp + held.length - i)) stats.mismatches++; mm.free(b); });
  stats.buffers += held.length;
}

async function task(id: number): Promise<void> {
  let stamp = id * 1_000_003;
  // Until the deadline, and past it until the threads together have done minOps: a loaded machine
  // runs the same scenario, only slower.
  while (Date.now() < d.deadline || Atomics.load(knob, 1) < d.minOps) {
    stamp += 17;
    try {
      await (rand() < 0.4 ? sglStep(stamp) : bufferStep(stamp));
      stats.ops++;
      Atomics.add(knob, 1, 1);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_MEMSYS_OUT_OF_MEMORY' || code === 'ERR_MEMSYS_BUDGET') stats.refused++;
      else throw e;
    }
  }
}

await Promise.all(Array.from({ length: d.tasks }, (_, i) => task(i)));
mm.terminate();
parentPort!.postMessage(stats);
