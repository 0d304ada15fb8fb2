// memsys benchmark: `npm run bench` (node --expose-gc --import tsx bench/run.ts).
//
//   1. alloc+free of 32 KiB buffers: memsys slab.alloc/free and mm.alloc/free against a plain JS
//      array pool, Buffer.allocUnsafe and new Uint8Array; in this process, which has touched no
//      other size class ("fresh"), and in a child process that first used the other page classes
//      and attached a worker, as a server does ("mixed", bench/mixed.ts).
//   2. alloc+free of random sizes 1..131072: memsys mm.allocSize/free against Buffer.allocUnsafe,
//      new Uint8Array and a plain JS pool keyed by size class.
//   3. scaling: part 1's slab loop in 1 worker and in 2 concurrent workers sharing one MMSA.
//
// Every ring contender runs the same pattern: a ring of 8 live buffers; each step allocates a new
// buffer, writes its first byte, and frees the oldest (for allocUnsafe and new Uint8Array "free"
// is dropping the reference, and the garbage collector's work is part of the time). Allocating
// before freeing means the allocator does not simply hand back the buffer just freed. Each
// contender is its own function (monomorphic call sites); the contenders of a part are timed side
// by side, alternating (bench/measure.ts), and each ratio is read from the rounds, against the JS
// pool timed in the same process (the allocating contenders in rounds of their own, their ratios
// of medians). Finally the same results are printed as markdown, for bench/RESULTS.md.

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { MMSA, type Slab, type ShareDescriptor } from '../src/node/index.js';
import { startWorker as startTsWorker } from './boot.js';
import { ArrayPool, CheckedPool, FloorPool, MASK, RING, SIZE, checkedRing, floorLifo, floorRing, mmRing, poolLifo, poolRing, slabLifo, slabRing } from './loops.js';
import { REPS, REP_MS, type Result, WARM_MS, checksum, ratio, side } from './measure.js';

const MAX = 128 * 1024;
const SCALE_ROUNDS = 5;        // per configuration (1 worker, 2 workers), alternating
const SCALE_ROUND_MS = 500;    // target duration of one worker's loop

let sink = 0; // part 3's checksums go here

// ---- contenders, part 1: 32 KiB ------------------------------------------------------------------

const mm = new MMSA({ name: 'bench' });
{
  const err = mm.init();
  if (err) console.warn(`note: mm.init() returned ${err.message}`);
}
const slab: Slab = mm.getSlab(SIZE);

const pool32 = new ArrayPool(SIZE, 2 * RING);

const checked32 = new CheckedPool(SIZE, 2 * RING);

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
console.log(`method: ring of ${RING} live buffers, allocate then free the oldest, touch byte 0; warm-up ${WARM_MS} ms, then ${REPS} alternating rounds of ~${REP_MS} ms, median (best)`);

const log = (r: Result) => process.stdout.write(`  ${r.name.padEnd(34)} ${fmtNs(r.median).padStart(9)} ns/op (best ${fmtNs(r.best)}, ${r.iters} ops x ${REPS})\n`);

console.log('\n1. alloc+free, 32 KiB, this process (fresh)');
const floor32 = new FloorPool(SIZE, 4 * RING);
const [slab1, mm1, pool1, checked1, floor1, slabLifo1, poolLifo1, floorLifo1] = side([
  { name: 'memsys slab.alloc/free', run: (n) => slabRing(slab, n) },
  { name: 'memsys mm.alloc/mm.free', run: (n) => mmRing(mm, n) },
  { name: 'JS array pool pop/push', run: (n) => poolRing(pool32, n) },
  { name: 'JS pool that refuses double frees', run: (n) => checkedRing(checked32, n) },
  { name: 'safety floor: that pool + a shared state byte', run: (n) => floorRing(floor32, n) },
  { name: 'memsys slab.alloc/free, LIFO', run: (n) => slabLifo(slab, n) },
  { name: 'JS array pool, LIFO', run: (n) => poolLifo(pool32, n) },
  { name: 'safety floor, LIFO', run: (n) => floorLifo(floor32, n) },
], log);
// The allocating contenders in rounds of their own: the garbage they leave has every collection
// move the pools' objects, which the pools then time.
const [unsafe1, u8_1] = side([
  { name: 'Buffer.allocUnsafe(32768)', run: allocUnsafe32 },
  { name: 'new Uint8Array(32768)', run: newU8_32 },
], log);

console.log('1. the same loops in a process that used the other page classes and attached a worker (mixed, bench/mixed.ts)');
const mixedOut = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', new URL('./mixed.ts', import.meta.url).pathname], { encoding: 'utf8' });
const mixed = JSON.parse(mixedOut.trim().split('\n').at(-1)!) as { mixed: number; results: Result[] };
const [slabMixed, poolMixed, slabLifoMixed, poolLifoMixed, mmMixed, floorMixed, floorLifoMixed] = mixed.results;
for (const r of mixed.results) log(r);

console.log('\n2. alloc+free, random sizes 1..131072');
const [mm2, pool2] = side([
  { name: 'memsys mm.allocSize(n)/mm.free', run: mmRandom },
  { name: 'JS pool by size class', run: poolRandom },
], log);
const [unsafe2, u8_2] = side([
  { name: 'Buffer.allocUnsafe(n)', run: allocUnsafeRandom },
  { name: 'new Uint8Array(n)', run: newU8Random },
], log);

{
  let inUse = 0;
  for (const c of mm.stats().classes) inUse += c.inUse;
  if (inUse !== 0) console.log(`warning: ${inUse} memsys buffers still in use after parts 1 and 2`);
}
mm.terminate();

console.log('\n3. scaling, 32 KiB slab loop, 1 vs 2 concurrent workers on one shared MMSA');
const r3 = await scaling('slab', slab1.median);
const r3ref = await scaling('pool', pool1.median);

// ---- tables --------------------------------------------------------------------------------------

// Part 1: every ratio is to the JS pool of the same process, ring to ring and LIFO to LIFO.
// The memsys rows also against the safety floor of the same process and loop.
const head1 = ['contender', 'process', 'ns/op (median)', 'best', 'Mops/s', 'vs pool', 'vs floor'];
const row1 = (name: string, proc: string, r: Result, base: Result, floor?: Result): Row => [
  name, proc, fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median), `${fmtX(ratio(r, base))}x`, floor ? `${fmtX(ratio(r, floor))}x` : '',
];
const rows1: Row[] = [
  ...[slab1, mm1].map((r) => row1(r.name, 'fresh', r, pool1, floor1)),
  ...[pool1, checked1, floor1].map((r) => row1(r.name, 'fresh', r, pool1)),
  ...[unsafe1, u8_1].map((r): Row => [r.name, 'fresh', fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median), `${fmtX(r.median / pool1.median)}x`, '']),
  row1(slabLifo1.name, 'fresh', slabLifo1, poolLifo1, floorLifo1),
  ...[poolLifo1, floorLifo1].map((r) => row1(r.name, 'fresh', r, poolLifo1)),
  row1(slab1.name, 'mixed', slabMixed, poolMixed, floorMixed),
  row1(mm1.name, 'mixed', mmMixed, poolMixed, floorMixed),
  ...[poolMixed, floorMixed].map((r) => row1(r.name, 'mixed', r, poolMixed)),
  row1(slabLifo1.name, 'mixed', slabLifoMixed, poolLifoMixed, floorLifoMixed),
  ...[poolLifoMixed, floorLifoMixed].map((r) => row1(r.name, 'mixed', r, poolLifoMixed)),
];
const head2 = ['contender', 'ns/op (median)', 'best', 'Mops/s', 'vs pool', 'vs memsys'];
// The allocating rows were timed in other rounds than the pools: their ratios are of medians.
const rows2: Row[] = [mm2, pool2, unsafe2, u8_2].map((r) => {
  const x = (base: Result) => (r === mm2 || r === pool2 ? ratio(r, base) : r.median / base.median);
  return [r.name, fmtNs(r.median), fmtNs(r.best), fmtMops(1e9 / r.median), `${fmtX(x(pool2))}x`, `${fmtX(x(mm2))}x`];
});
const head3 = ['loop (32 KiB, ring of 8)', 'ops/worker', '1 worker Mops/s', '2 workers Mops/s', '2w/1w', 'ns/op 1w', 'ns/op 2w (each)'];
const rows3: Row[] = [r3, r3ref].map((r) => [
  r.mode === 'slab' ? 'memsys slab, shared MMSA' : 'JS array pool (reference)',
  String(r.iters), fmtMops(r.one), fmtMops(r.two), `${(r.two / r.one).toFixed(2)}x`,
  fmtNs(r.oneNs), r.twoNs.map(fmtNs).join(' / '),
]);

const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const atMost = (what: string, x: number, goal: number): [string, number, string, boolean] => [what, x, `<= ${goal}`, x <= goal];
const atLeast = (what: string, x: number, goal: number): [string, number, string, boolean] => [what, x, `>= ${goal}`, x >= goal];
const targets = [
  atMost('32 KiB slab.alloc/free vs JS pool, ring, fresh process', ratio(slab1, pool1), 1.6),
  atMost('32 KiB slab.alloc/free vs JS pool, ring, mixed process', ratio(slabMixed, poolMixed), 1.6),
  atMost('32 KiB slab.alloc/free vs JS pool, LIFO, fresh process', ratio(slabLifo1, poolLifo1), 1.6),
  atMost('32 KiB slab.alloc/free vs JS pool, LIFO, mixed process', ratio(slabLifoMixed, poolLifoMixed), 1.6),
  atMost('32 KiB mm.alloc/mm.free vs JS pool, ring, fresh process', ratio(mm1, pool1), 1.6),
  atMost('32 KiB mm.alloc/mm.free vs JS pool, ring, mixed process', ratio(mmMixed, poolMixed), 1.6),
  atMost('32 KiB slab.alloc/free vs the safety floor, ring, fresh process', ratio(slab1, floor1), 1.1),
  atMost('32 KiB slab.alloc/free vs the safety floor, ring, mixed process', ratio(slabMixed, floorMixed), 1.1),
  atMost('32 KiB slab.alloc/free vs the safety floor, LIFO, fresh process', ratio(slabLifo1, floorLifo1), 1.1),
  atMost('32 KiB slab.alloc/free vs the safety floor, LIFO, mixed process', ratio(slabLifoMixed, floorLifoMixed), 1.1),
  atMost('32 KiB mm.alloc/mm.free vs the safety floor, ring, fresh process', ratio(mm1, floor1), 1.1),
  atMost('32 KiB mm.alloc/mm.free vs the safety floor, ring, mixed process', ratio(mmMixed, floorMixed), 1.1),
  atLeast('32 KiB Buffer.allocUnsafe vs slab.alloc/free', unsafe1.median / slab1.median, 50),
  atLeast('32 KiB Buffer.allocUnsafe vs mm.alloc/mm.free', unsafe1.median / mm1.median, 50),
  atLeast('scaling, 2 workers / 1 worker (slab)', r3.two / r3.one, 1.6),
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
console.log(`note: mm.alloc/mm.free costs ${fmtX(ratio(mm1, slab1))}x slab.alloc/free; the JS pool scales x${(r3ref.two / r3ref.one).toFixed(2)} on this machine (the ceiling for part 3)`);

// ---- markdown ------------------------------------------------------------------------------------

const md = [
  '## Machine',
  '',
  ...machine.map((l) => `- ${l}`),
  `- date: ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Method: a ring of ${RING} live buffers; each step allocates a buffer, writes its byte 0 and frees the oldest (for Buffer.allocUnsafe and new Uint8Array, drops it: GC time is included). Warm-up ${WARM_MS} ms per contender, then ${REPS} rounds in which every contender of a part runs ~${REP_MS} ms after a gc(), in an order that reverses every round; median, and best. A ratio is the median over the rounds of the two contenders' times in the same round. Buffer.allocUnsafe and new Uint8Array run in rounds of their own (the garbage they leave has every collection move the pools' objects), and their ratios are of medians.`,
  '',
  '### 1. alloc+free, 32 KiB',
  '',
  `"fresh": this process, which had touched no other size class. "mixed": a child process (bench/mixed.ts) that first attached a worker to its MMSA and ran ${mixed.mixed} mm.allocSize + mm.free over the 32 page classes, as a server would have. Each ratio is to the JS pool timed in the same process, the LIFO rows to the LIFO pool.`,
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
console.log(`\n(total ${((Date.now() - started) / 1000).toFixed(1)} s; checksum ${(checksum() + sink) & 0xffff})`);
