// memsys benchmark: `npm run bench` (node --expose-gc --import tsx bench/run.ts).
//
//   1. alloc+free of 32 KiB buffers: memsys slab.alloc/free and mm.alloc/free against a plain JS
//      array pool, Buffer.allocUnsafe and new Uint8Array.
//   2. alloc+free of random sizes 1..131072: memsys mm.allocSize/free against Buffer.allocUnsafe,
//      new Uint8Array and a plain JS pool keyed by size class.
//   3. scaling: part 1's slab loop in 1 worker and in 2 concurrent workers sharing one MMSA.
//
// Every contender runs the same pattern: a ring of 8 live buffers; each step allocates a new
// buffer, writes its first byte, and frees the oldest (for allocUnsafe and new Uint8Array "free"
// is dropping the reference, and the garbage collector's work is part of the time). Allocating
// before freeing means the allocator does not simply hand back the buffer just freed. Each
// contender is its own function (monomorphic call sites), warmed up before timing, then timed
// REPS times after a gc(); the table shows the median and the best, ratios use the median.
// Finally the same results are printed as markdown, for bench/RESULTS.md.

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { MMSA, type Slab, type ShareDescriptor } from '../src/node/index.js';
import { startWorker as startTsWorker } from './boot.js';
import { ArrayPool, CheckedPool, MASK, RING, SIZE, checkedRing, poolRing, slabRing } from './loops.js';

const MAX = 128 * 1024;
const WARM_MS = 300;   // warm-up per contender
const REP_MS = 200;    // target duration of one timed repetition
const REPS = 7;
const SCALE_ROUNDS = 5;        // per configuration (1 worker, 2 workers), alternating
const SCALE_ROUND_MS = 500;    // target duration of one worker's loop

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const now = () => process.hrtime.bigint();
let sink = 0; // every loop's checksum goes here

// ---- contenders, part 1: 32 KiB ------------------------------------------------------------------

const mm = new MMSA({ name: 'bench' });
{
  const err = mm.init();
  if (err) console.warn(`note: mm.init() returned ${err.message}`);
}
const slab: Slab = mm.getSlab(SIZE);

const pool32 = new ArrayPool(SIZE, 2 * RING);

const slab32 = (iters: number) => slabRing(slab, iters);
const pool32Loop = (iters: number) => poolRing(pool32, iters);
const checked32 = new CheckedPool(SIZE, 2 * RING);
const checked32Loop = (iters: number) => checkedRing(checked32, iters);

// LIFO: free the buffer just allocated (a request handler that uses one buffer at a time).
function slab32Lifo(iters: number): number {
  const s = slab;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const b = s.alloc();
    b[0] = i;
    sum += b[0];
    s.free(b);
  }
  return sum;
}

function pool32Lifo(iters: number): number {
  const p = pool32;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const b = p.alloc();
    b[0] = i;
    sum += b[0];
    p.free(b);
  }
  return sum;
}

function mm32(iters: number): number {
  const m = mm;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = m.alloc(); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = m.alloc();
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    m.free(old);
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) { sum += ring[j][0]; m.free(ring[j]); }
  return sum;
}

function allocUnsafe32(iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = Buffer.allocUnsafe(SIZE); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = Buffer.allocUnsafe(SIZE);
    b[0] = i;
    ring[k] = b;
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) sum += ring[j][0];
  return sum;
}

function newU8_32(iters: number): number {
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = new Uint8Array(SIZE); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = new Uint8Array(SIZE);
    b[0] = i;
    ring[k] = b;
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) sum += ring[j][0];
  return sum;
}

// ---- contenders, part 2: random sizes ------------------------------------------------------------

const NSIZES = 1 << 16;
const SMASK = NSIZES - 1;
const sizes = new Int32Array(NSIZES);
{
  let x = 0x9e3779b9 | 0; // xorshift32, fixed seed: the same sizes on every run
  for (let i = 0; i < NSIZES; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    sizes[i] = 1 + ((x >>> 0) % MAX);
  }
}

// What a user would write: one free list per size class, the same classes as memsys (128 B steps
// up to 4 KiB, 4 KiB steps above), class found from the request size and, on free, from length.
function poolClass(n: number): number {
  return n <= 4096 ? ((n + 127) >>> 7) - 1 : 31 + ((n + 4095) >>> 12);
}
class SizePool {
  private readonly lists: Uint8Array[][] = [];
  constructor() {
    for (let c = 0; c < 64; c++) this.lists.push([]);
  }
  alloc(n: number): Uint8Array {
    const c = poolClass(n);
    const b = this.lists[c].pop();
    return b !== undefined ? b : new Uint8Array(c < 32 ? (c + 1) << 7 : (c - 31) << 12);
  }
  free(b: Uint8Array): void {
    this.lists[poolClass(b.length)].push(b);
  }
}
const sizePool = new SizePool();

function mmRandom(iters: number): number {
  const m = mm;
  const sz = sizes;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = m.allocSize(sz[j]); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = m.allocSize(sz[i & SMASK]);
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    m.free(old);
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) { sum += ring[j][0]; m.free(ring[j]); }
  return sum;
}

function poolRandom(iters: number): number {
  const p = sizePool;
  const sz = sizes;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = p.alloc(sz[j]); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = p.alloc(sz[i & SMASK]);
    b[0] = i;
    const old = ring[k];
    ring[k] = b;
    p.free(old);
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) { sum += ring[j][0]; p.free(ring[j]); }
  return sum;
}

function allocUnsafeRandom(iters: number): number {
  const sz = sizes;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = Buffer.allocUnsafe(sz[j]); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = Buffer.allocUnsafe(sz[i & SMASK]);
    b[0] = i;
    ring[k] = b;
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) sum += ring[j][0];
  return sum;
}

function newU8Random(iters: number): number {
  const sz = sizes;
  const ring: Uint8Array[] = [];
  for (let j = 0; j < RING; j++) { const b = new Uint8Array(sz[j]); b[0] = j; ring.push(b); }
  for (let i = 0; i < iters; i++) {
    const k = i & MASK;
    const b = new Uint8Array(sz[i & SMASK]);
    b[0] = i;
    ring[k] = b;
  }
  let sum = 0;
  for (let j = 0; j < RING; j++) sum += ring[j][0];
  return sum;
}

// ---- harness -------------------------------------------------------------------------------------

interface Result {
  name: string;
  iters: number;
  median: number; // ns/op
  best: number;   // ns/op
}

function timeRun(run: (n: number) => number, iters: number): number {
  const t0 = now();
  sink += run(iters);
  return Number(now() - t0);
}

function measure(name: string, run: (n: number) => number): Result {
  // Warm-up, doubling the iterations until one call takes a fair share of WARM_MS, which also
  // gives the rate used to size the timed repetitions.
  let iters = 1000;
  let spent = 0;
  let nsPerOp = 0;
  while (spent < WARM_MS * 1e6) {
    const t = timeRun(run, iters);
    spent += t;
    nsPerOp = t / iters;
    if (t < WARM_MS * 1e6 / 4) iters *= 2;
  }
  iters = Math.max(1000, Math.round((REP_MS * 1e6) / nsPerOp));
  const samples: number[] = [];
  for (let r = 0; r < REPS; r++) {
    gc();
    samples.push(timeRun(run, iters) / iters);
  }
  samples.sort((a, b) => a - b);
  const res = { name, iters, median: samples[samples.length >> 1], best: samples[0] };
  process.stdout.write(`  ${name.padEnd(34)} ${fmtNs(res.median).padStart(9)} ns/op (best ${fmtNs(res.best)}, ${iters} ops x ${REPS})\n`);
  return res;
}

// ---- part 3: workers -----------------------------------------------------------------------------

interface ScaleResult {
  mode: 'slab' | 'pool';
  iters: number;
  one: number;        // aggregate ops/s, 1 worker (median of rounds)
  two: number;        // aggregate ops/s, 2 workers (median of rounds)
  oneNs: number;      // ns/op of the single worker
  twoNs: number[];    // ns/op of each of the two workers, in the median round
}

function startWorker(data: unknown): Worker {
  return startTsWorker(new URL('./worker.ts', import.meta.url), data);
}

function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: T) => { w.off('error', onErr); resolve(m); };
    const onErr = (e: Error) => { w.off('message', onMsg); reject(e); };
    w.once('message', onMsg);
    w.once('error', onErr);
  });
}

async function scaling(mode: 'slab' | 'pool', nsPerOp: number): Promise<ScaleResult> {
  const shared = new MMSA({ name: 'bench-mt', shared: true });
  shared.init();
  // One allocation so the MMSA has an arena when it is shared: both workers then start on the
  // same arena rather than each creating its own.
  shared.getSlab(SIZE).free(shared.getSlab(SIZE).alloc());
  const desc: ShareDescriptor = shared.share();
  const ctl = new SharedArrayBuffer(8);
  const c = new Int32Array(ctl);
  const iters = Math.max(1e6, Math.round((SCALE_ROUND_MS * 1e6) / nsPerOp / 1e6) * 1e6);
  const warmIters = Math.min(iters, 2_000_000);
  const workers = [0, 1].map(() => startWorker({ mode, desc, ctl, warmIters }));
  await Promise.all(workers.map((w) => nextMessage<{ ready: boolean }>(w)));

  let round = 0;
  let armed = 0;
  type Done = { round: number; t0: bigint; t1: bigint; sum: number };
  const runRound = async (n: number): Promise<{ opsPerSec: number; ns: number[] }> => {
    round++;
    const ws = workers.slice(0, n);
    const done = Promise.all(ws.map((w) => nextMessage<Done>(w)));
    for (const w of ws) w.postMessage({ cmd: 'run', round, iters });
    // Release them together once all are armed (the main thread sleeps meanwhile).
    armed += n;
    for (let v; (v = Atomics.load(c, 0)) < armed;) Atomics.wait(c, 0, v, 1000);
    Atomics.store(c, 1, round);
    Atomics.notify(c, 1);
    const res = await done;
    let t0 = res[0].t0;
    let t1 = res[0].t1;
    for (const r of res) {
      if (r.t0 < t0) t0 = r.t0;
      if (r.t1 > t1) t1 = r.t1;
      sink += r.sum;
    }
    return {
      opsPerSec: (n * iters) / (Number(t1 - t0) / 1e9),
      ns: res.map((r) => Number(r.t1 - r.t0) / iters),
    };
  };

  const ones: { opsPerSec: number; ns: number[] }[] = [];
  const twos: { opsPerSec: number; ns: number[] }[] = [];
  for (let r = 0; r < SCALE_ROUNDS; r++) {
    ones.push(await runRound(1));
    twos.push(await runRound(2));
  }
  for (const w of workers) w.postMessage({ cmd: 'stop' });
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  shared.terminate();

  const med = (xs: { opsPerSec: number; ns: number[] }[]) =>
    [...xs].sort((a, b) => a.opsPerSec - b.opsPerSec)[xs.length >> 1];
  const one = med(ones);
  const two = med(twos);
  const res: ScaleResult = { mode, iters, one: one.opsPerSec, two: two.opsPerSec, oneNs: one.ns[0], twoNs: two.ns };
  const label = mode === 'slab' ? 'memsys slab (shared MMSA)' : 'JS array pool (reference)';
  process.stdout.write(`  ${label.padEnd(34)} 1 worker ${fmtMops(res.one)} Mops/s, 2 workers ${fmtMops(res.two)} Mops/s, x${(res.two / res.one).toFixed(2)} (${iters} ops/worker, median of ${SCALE_ROUNDS})\n`);
  return res;
}

// ---- formatting ----------------------------------------------------------------------------------

function fmtNs(ns: number): string {
  return ns >= 1000 ? ns.toFixed(0) : ns >= 100 ? ns.toFixed(1) : ns.toFixed(2);
}
function fmtMops(opsPerSec: number): string {
  return (opsPerSec / 1e6).toFixed(1);
}
function fmtX(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

type Row = string[];
function table(head: Row, rows: Row[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: Row) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
function markdown(head: Row, rows: Row[]): string {
  const line = (r: Row) => `| ${r.join(' | ')} |`;
  return [line(head), `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---- main ----------------------------------------------------------------------------------------

const started = Date.now();
const cpus = os.cpus();
const machine = [
  `cpu: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores`,
  `memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  `node: ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.release()} ${os.arch()}`,
];
console.log('memsys benchmark');
for (const l of machine) console.log(l);
if (!(globalThis as { gc?: unknown }).gc) console.log('note: gc() unavailable (run with --expose-gc); repetitions are not preceded by a collection');
console.log(`method: ring of ${RING} live buffers, allocate then free the oldest, touch byte 0; warm-up ${WARM_MS} ms, then ${REPS} reps of ~${REP_MS} ms, median (best)`);

console.log('\n1. alloc+free, 32 KiB');
const r1 = {
  slab: measure('memsys slab.alloc/free', slab32),
  mm: measure('memsys mm.alloc/mm.free', mm32),
  pool: measure('JS array pool pop/push', pool32Loop),
  checked: measure('JS pool that refuses double frees', checked32Loop),
  unsafe: measure('Buffer.allocUnsafe(32768)', allocUnsafe32),
  u8: measure('new Uint8Array(32768)', newU8_32),
  slabLifo: measure('memsys slab.alloc/free, LIFO', slab32Lifo),
  poolLifo: measure('JS array pool, LIFO', pool32Lifo),
};

console.log('\n2. alloc+free, random sizes 1..131072');
const r2 = {
  mm: measure('memsys mm.allocSize(n)/mm.free', mmRandom),
  pool: measure('JS pool by size class', poolRandom),
  unsafe: measure('Buffer.allocUnsafe(n)', allocUnsafeRandom),
  u8: measure('new Uint8Array(n)', newU8Random),
};

{
  let inUse = 0;
  for (const c of mm.stats().classes) inUse += c.inUse;
  if (inUse !== 0) console.log(`warning: ${inUse} memsys buffers still in use after parts 1 and 2`);
}
mm.terminate();

console.log('\n3. scaling, 32 KiB slab loop, 1 vs 2 concurrent workers on one shared MMSA');
const r3 = await scaling('slab', r1.slab.median);
const r3ref = await scaling('pool', r1.pool.median);

// ---- tables --------------------------------------------------------------------------------------

const head1 = ['contender', 'ns/op (median)', 'best', 'Mops/s', 'vs pool', 'vs slab.alloc'];
const rows1: Row[] = [r1.slab, r1.mm, r1.pool, r1.checked, r1.unsafe, r1.u8].map((r) => [
  r.name, fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median),
  `${fmtX(r.median / r1.pool.median)}x`, `${fmtX(r.median / r1.slab.median)}x`,
]);
// The LIFO rows compare with the LIFO pool.
for (const r of [r1.slabLifo, r1.poolLifo]) {
  rows1.push([r.name, fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median),
    `${fmtX(r.median / r1.poolLifo.median)}x (LIFO pool)`, `${fmtX(r.median / r1.slab.median)}x`]);
}
const head2 = ['contender', 'ns/op (median)', 'best', 'Mops/s', 'vs pool', 'vs memsys'];
const rows2: Row[] = [r2.mm, r2.pool, r2.unsafe, r2.u8].map((r) => [
  r.name, fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median),
  `${fmtX(r.median / r2.pool.median)}x`, `${fmtX(r.median / r2.mm.median)}x`,
]);
const head3 = ['loop (32 KiB, ring of 8)', 'ops/worker', '1 worker Mops/s', '2 workers Mops/s', '2w/1w', 'ns/op 1w', 'ns/op 2w (each)'];
const rows3: Row[] = [r3, r3ref].map((r) => [
  r.mode === 'slab' ? 'memsys slab, shared MMSA' : 'JS array pool (reference)',
  String(r.iters), fmtMops(r.one), fmtMops(r.two), `${(r.two / r.one).toFixed(2)}x`,
  fmtNs(r.oneNs), r.twoNs.map(fmtNs).join(' / '),
]);

const ratios = {
  slabPool: r1.slab.median / r1.pool.median,
  mmPool: r1.mm.median / r1.pool.median,
  unsafeSlab: r1.unsafe.median / r1.slab.median,
  unsafeMm: r1.unsafe.median / r1.mm.median,
  mmSlab: r1.mm.median / r1.slab.median,
  scale: r3.two / r3.one,
  scaleRef: r3ref.two / r3ref.one,
};
const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const targets: [string, number, string, boolean][] = [
  ['32 KiB slab.alloc/free vs JS pool', ratios.slabPool, '<= 1.5', ratios.slabPool <= 1.5],
  ['32 KiB mm.alloc/mm.free vs JS pool', ratios.mmPool, '<= 1.5', ratios.mmPool <= 1.5],
  ['32 KiB Buffer.allocUnsafe vs slab.alloc/free', ratios.unsafeSlab, '>= 50', ratios.unsafeSlab >= 50],
  ['32 KiB Buffer.allocUnsafe vs mm.alloc/mm.free', ratios.unsafeMm, '>= 50', ratios.unsafeMm >= 50],
  ['scaling, 2 workers / 1 worker (slab)', ratios.scale, '>= 1.6', ratios.scale >= 1.6],
  ['32 KiB slab.alloc/free vs JS pool, LIFO (not the headline)', r1.slabLifo.median / r1.poolLifo.median, '<= 1.5', r1.slabLifo.median / r1.poolLifo.median <= 1.5],
];

console.log('\n== results ==\n');
console.log('1. alloc+free, 32 KiB\n');
console.log(table(head1, rows1));
console.log('\n2. alloc+free, random sizes 1..131072 (uniform, same 65536 pre-generated sizes for all)\n');
console.log(table(head2, rows2));
console.log(`\n3. scaling (${cpus.length} cores)\n`);
console.log(table(head3, rows3));
console.log('');
for (const [what, x, goal, ok] of targets) {
  console.log(`targets: ${what}: ${fmtX(x)}x (target ${goal}): ${met(ok)}`);
}
console.log(`note: mm.alloc/mm.free costs ${fmtX(ratios.mmSlab)}x slab.alloc/free; the JS pool scales x${ratios.scaleRef.toFixed(2)} on this machine (the ceiling for part 3)`);

// ---- markdown ------------------------------------------------------------------------------------

const md = [
  '## Machine',
  '',
  ...machine.map((l) => `- ${l}`),
  `- date: ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Method: a ring of ${RING} live buffers; each step allocates a buffer, writes its byte 0 and frees the oldest (for Buffer.allocUnsafe and new Uint8Array, drops it: GC time is included). Warm-up ${WARM_MS} ms per contender, then ${REPS} repetitions of ~${REP_MS} ms, each after gc(); median, and best.`,
  '',
  '### 1. alloc+free, 32 KiB',
  '',
  markdown(head1, rows1),
  '',
  '### 2. alloc+free, random sizes 1..131072',
  '',
  'Uniform sizes, the same 65536 pre-generated sizes for every contender. The JS pool keeps one free list per size class (128 B steps up to 4 KiB, 4 KiB steps above, as memsys).',
  '',
  markdown(head2, rows2),
  '',
  '### 3. scaling: 1 vs 2 concurrent workers',
  '',
  `The 32 KiB loop of part 1, a fixed number of operations per worker; memsys workers attach one shared MMSA (\`share()\` / \`MMSA.attach\`). Aggregate ops/s over the span from the first worker's start to the last one's end, median of ${SCALE_ROUNDS} rounds. The JS pool rows show what the machine itself scales to.`,
  '',
  markdown(head3, rows3),
  '',
  '### Targets',
  '',
  markdown(['target', 'measured', 'goal', 'status'], targets.map(([what, x, goal, ok]) => [what, `${fmtX(x)}x`, goal, met(ok)])),
];
console.log('\n== markdown (bench/RESULTS.md) ==\n');
console.log(md.join('\n'));
console.log(`\n(total ${((Date.now() - started) / 1000).toFixed(1)} s; checksum ${sink & 0xffff})`);
