// Server benchmark (`npm run bench` part 10; alone: `node --import tsx bench/server.ts`,
// `BENCH_QUICK=1` for a short run): an upload / echo / download server on 127.0.0.1 (bench/server/
// app.ts) driven by a load generator in another process (bench/server/load.ts: Debian's wrk, or
// autocannon where wrk is not installed), for each way of holding
// a body: memsys SGLs (readBody / sendSGL, on a plain server and on one whose bodies takeBodies()
// reads off the socket), raw-body (Express's reader), Buffer.concat of the
// chunks, Fastify's collector, and a floor that drops the body. Bodies of 64 KiB, 1 MiB and
// 16 MiB at a few concurrency levels.
//
// Each strategy has a server process of its own, so that GC time and RSS are its alone; per body
// size (a "set") all of them start together and wait while another is measured. For each route
// and concurrency (a "cell") the strategies run back to back in an order that rotates from cell to
// cell: a warm-up, then the measured run: with wrk a run of whole seconds, whose last exchanges
// (up to one per connection) are cut off and leave their part of the server's work in its totals,
// so that CPU and GC compare per request answered; with autocannon bounded by a number of
// requests (the same for every strategy) and by a duration. After a set's last cell, the RSS of each
// server as it falls. A rep is one set per size with fresh processes; the tables show medians over
// REPS reps, each ratio against raw-body the median of the same rep's ratios.
//
// Knobs for a narrower or a diagnostic run: BENCH_STRATEGIES, BENCH_SIZES, BENCH_ROUTES (also
// 'send', not in the default run), BENCH_REPS, BENCH_SCALE, BENCH_AFTER (ms, comma list),
// MEMSYS_OPTS (the memsys server's MMSA options, JSON),
// BENCH_SERVER_FLAGS (node flags for the servers: --cpu-prof, --trace-gc), BENCH_PIN=1 (pinned to cores),
// BENCH_LOAD=autocannon (autocannon even where wrk is installed).

import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Generator, LoadResult, LoadSpec } from './server/load.js';

type Strategy = 'memsys' | 'memsys-wire' | 'raw-body' | 'concat' | 'fastify' | 'drain';
type Route = 'upload' | 'echo' | 'download' | 'send';
const ALL: Strategy[] = ['memsys', 'memsys-wire', 'raw-body', 'concat', 'fastify', 'drain'];
// The strategies the goals are judged on.
const MEMSYS: Strategy[] = ['memsys', 'memsys-wire'];
// 'drain' is the floor, upload only: the body read and dropped.
const runs = (s: Strategy, r: Route) => s !== 'drain' || r === 'upload';
// BENCH_STRATEGIES=memsys,concat, BENCH_SIZES='1 MiB' and BENCH_ROUTES=echo narrow a run (raw-body
// is always kept: the ratios are against it).
const STRATEGIES = process.env.BENCH_STRATEGIES ? ALL.filter((s) => s === 'raw-body' || process.env.BENCH_STRATEGIES!.split(',').includes(s)) : ALL;
const BASE: Strategy = 'raw-body';
// 'send' (a body held from the start, sent: the sending alone) runs only when BENCH_ROUTES names it.
const ROUTES = process.env.BENCH_ROUTES ? process.env.BENCH_ROUTES.split(',') as Route[] : ['upload', 'echo', 'download'] as Route[];
const QUICK = process.env.BENCH_QUICK === '1';
const REPS = Number(process.env.BENCH_REPS ?? (QUICK ? 1 : 3));
const KiB = 1024, MiB = 1024 * KiB;

// `amount`: autocannon's requests, sized for ~0.5-1 s per measured run on the development VM at
// the slower strategies. `wrk`: a wrk run's seconds, measured and at the common rate, long enough
// that the answered requests far outnumber the connections, and that a p99 at the common rate is
// not decided by the few slowest requests (16 MiB: ~20 req/s, so 6 s for ~100 requests; 1 MiB:
// 6 s for ~1000-1500, where 2 s give ~450 and one loop stall of the host's decides the p99).
interface SizeSpec { label: string; bytes: number; cells: { c: number; amount: number }[]; wrk: [number, number] }
const ALL_SIZES: SizeSpec[] = QUICK
  ? [
    { label: '64 KiB', bytes: 64 * KiB, cells: [{ c: 16, amount: 1000 }], wrk: [1, 1] },
    { label: '1 MiB', bytes: MiB, cells: [{ c: 16, amount: 200 }], wrk: [1, 1] },
    { label: '16 MiB', bytes: 16 * MiB, cells: [{ c: 4, amount: 16 }], wrk: [1, 2] },
  ]
  : [
    { label: '64 KiB', bytes: 64 * KiB, cells: [{ c: 1, amount: 1000 }, { c: 16, amount: 2000 }, { c: 64, amount: 2000 }], wrk: [1, 2] },
    { label: '1 MiB', bytes: MiB, cells: [{ c: 1, amount: 200 }, { c: 16, amount: 300 }, { c: 64, amount: 320 }], wrk: [1, 6] },
    { label: '16 MiB', bytes: 16 * MiB, cells: [{ c: 1, amount: 12 }, { c: 8, amount: 24 }], wrk: [3, 6] },
  ];
// BENCH_SCALE multiplies every amount and wrk's seconds (rounded to whole seconds: longer runs,
// e.g. under a profiler).
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SIZES = ALL_SIZES.filter((s) => !process.env.BENCH_SIZES || process.env.BENCH_SIZES.split(',').includes(s.label))
  .map((s) => ({ ...s, cells: s.cells.map((x) => ({ c: x.c, amount: Math.round(x.amount * SCALE) })) }));
const MAX_MS = 5000;               // the duration bound of a measured run
const AFTER_MS = process.env.BENCH_AFTER ? process.env.BENCH_AFTER.split(',').map(Number) : [1000, 3000];

// The memsys server's MMSA: housekeeping on, a pass every ~0.5 s at Low pressure (twice timeIval),
// free pages back with MADV_DONTNEED, and a budget that follows demand down once it has stayed
// below for 2 passes: at Low pressure nothing else gives memory back before 45-180 s idle.
// Single-threaded arenas: the server hands no SGL to a worker, and V8 copies into shared memory
// more slowly (readBody's copy; bench/RESULTS.md part 10).
const MEMSYS_OPTS = process.env.MEMSYS_OPTS ?? JSON.stringify({ timeIval: 250, madvise: 'dontneed', housekeeping: true, shared: false, budget: { hold: 2, shrink: 1 } });

// ---- child processes ----------------------------------------------------------------------------

// BENCH_PIN=1: the servers on the first core, the load generator on the others (util-linux's
// taskset). A diagnostic, not the default: on the 2-core VM it halved every strategy's throughput
// (the kernel's loopback TCP work then shares the server's core) and moved the ratios.
const PIN = process.env.BENCH_PIN === '1' && os.cpus().length >= 2 ? { servers: '0', load: `1-${os.cpus().length - 1}` } : undefined;
function pin(p: Proc, cpus: string | undefined): boolean {
  if (cpus === undefined) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(p.child.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
let pinned = PIN !== undefined;

const live = new Set<ChildProcess>();
function killAll(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
  live.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { killAll(); process.exit(130); });

interface Proc { child: ChildProcess; call<T>(msg: object, timeoutMs?: number): Promise<T>; first: Promise<Record<string, unknown>> }

function start(file: string, args: string[], env: NodeJS.ProcessEnv = process.env, flags: string[] = []): Proc {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, {
    execArgv: [...flags, '--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let id = 0;
  const waiting = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  let onFirst: (m: Record<string, unknown>) => void;
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    onFirst = resolve;
    child.once('exit', (code, sig) => reject(new Error(`${file} ${args.join(' ')} exited (${code ?? sig}) before it was ready`)));
    setTimeout(() => reject(new Error(`${file} ${args.join(' ')} not ready after 30 s`)), 30_000).unref();
  });
  first.catch(() => {});
  child.on('message', (m: { id?: number; error?: string }) => {
    if (m.id === undefined) { onFirst(m as Record<string, unknown>); return; }
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) w?.reject(new Error(m.error)); else w?.resolve(m as never);
  });
  child.on('exit', (code, sig) => {
    for (const w of waiting.values()) w.reject(new Error(`${file} ${args.join(' ')} exited (${code ?? sig})`));
    waiting.clear();
  });
  const call = <T>(msg: object, timeoutMs = 60_000) => new Promise<T>((resolve, reject) => {
    const n = ++id;
    const t = setTimeout(() => { waiting.delete(n); reject(new Error(`${file}: no reply to ${JSON.stringify(msg).slice(0, 80)} in ${timeoutMs} ms`)); }, timeoutMs);
    waiting.set(n, { resolve: (v) => { clearTimeout(t); resolve(v); }, reject: (e) => { clearTimeout(t); reject(e); } });
    child.send({ id: n, ...msg });
  });
  return { child, call, first };
}

async function stop(p: Proc): Promise<void> {
  const c = p.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  try { c.send({ id: 0, cmd: 'exit' }); } catch { /* channel already closed */ }
  const t = setTimeout(() => process.kill(c.pid!, 'SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

// ---- one set: every strategy at one body size --------------------------------------------------

interface PoolFigures { arenas: number; kept: number; retired: number; ticks: number }
interface HeapFigures { heapTotal: number; external: number }
interface ServerRead {
  gcMs: number; gcCount: number; gcMajorMs: number; gcMaxMs: number; loopMaxMs: number; peak: number; rss: number; served: number; failed: number; lastError: string;
  cpuMs: number; faults: number; pool?: PoolFigures; serverP99: number;
}
// `paced`: the same requests at a rate common to every strategy of the cell (half the slowest's):
// at saturation a closed-loop client's latency is its concurrency over the throughput, and the
// tail is the load generator's own queue as much as the server's.
interface Cell { route: Route; c: number; load: LoadResult; server: ServerRead; paced?: LoadResult; pacedServer?: ServerRead; rate?: number }
interface After { at: number; rss: number; pool?: PoolFigures; heap: HeapFigures }
interface Block { rep: number; strategy: Strategy; size: SizeSpec; port: number; idle: number; idleHeap: HeapFigures; cells: Cell[]; after: After[] }

const problems: string[] = [];
let generator: Generator | undefined;

// One server per strategy, all started together and idle but for the one under load; each cell
// (route, concurrency) runs the strategies back to back, in an order that rotates from cell to
// cell, so that what else the machine does at that moment falls on all of them. One load
// generator serves them all.
async function sizeSet(rep: number, size: SizeSpec): Promise<Block[]> {
  const env = { ...process.env, MEMSYS_OPTS };
  const flags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
  const servers = new Map(STRATEGIES.map((s) => [s, start('./server/app.ts', [s], env, flags)]));
  const load = start('./server/load.ts', []);
  try {
    const blocks = new Map<Strategy, Block>();
    const first = !generator;
    generator = (await load.first).generator as Generator;
    if (first) console.log(`  load generator: ${generator === 'wrk' ? 'wrk (Debian), one thread' : 'autocannon (wrk is not installed, or BENCH_LOAD=autocannon)'}`);
    pinned = pin(load, PIN?.load) && pinned;
    for (const [s, p] of servers) {
      const ready = await p.first as { port: number; rss: number; heap: HeapFigures };
      pinned = pin(p, PIN?.servers) && pinned;
      blocks.set(s, { rep, strategy: s, size, port: ready.port, idle: ready.rss, idleHeap: ready.heap, cells: [], after: [] });
    }
    let turn = rep;
    for (const route of ROUTES) {
      for (const { c, amount } of size.cells) {
        const here = STRATEGIES.filter((s) => runs(s, route));
        const k = turn++ % here.length;
        const order = [...here.slice(k), ...here.slice(0, k)];
        const specOf = (strategy: Strategy): LoadSpec => {
          const base = `http://127.0.0.1:${blocks.get(strategy)!.port}`;
          return {
            url: route === 'download' || route === 'send' ? `${base}/${route}/${size.bytes}` : `${base}/${route}`,
            method: route === 'download' || route === 'send' ? 'GET' : 'POST',
            bodyBytes: route === 'download' || route === 'send' ? 0 : size.bytes,
            connections: c, amount, maxMs: MAX_MS, seconds: size.wrk[0] * SCALE,
          };
        };
        for (const strategy of order) {
          const server = servers.get(strategy)!;
          const b = blocks.get(strategy)!;
          const spec = specOf(strategy);
          await load.call({ cmd: 'run', spec: { ...spec, amount: Math.max(2 * c, Math.min(amount >> 3, 4 * c)), maxMs: 3000, warm: true } });
          await server.call({ cmd: 'mark' });
          const { result } = await load.call<{ result: LoadResult }>({ cmd: 'run', spec }, MAX_MS + 30_000);
          const read = await server.call<ServerRead>({ cmd: 'read' });
          const where = `${strategy} ${size.label} ${route} c=${c}`;
          // A wrk run ends at its time, cutting off the exchanges in flight: up to one per connection
          // fails in the server (the client went away), and is not a fault of the strategy.
          const cut = generator === 'wrk' ? c : 0;
          if (result.non2xx || result.errors || read.failed > cut) {
            problems.push(`${where}: ${result.non2xx} non-2xx, ${result.errors} errors (${result.timeouts} timeouts), server failures ${read.failed}${read.lastError ? ` (last: ${read.lastError})` : ''}`);
          }
          if (result.stopped) problems.push(`${where}: stopped by the ${MAX_MS} ms bound after ${result.ok} of ${amount} requests`);
          b.cells.push({ route, c, load: result, server: read });
          process.stdout.write(`  ${where.padEnd(34)} ${f0(result.rps).padStart(6)} req/s  p50 ${f2(result.p50).padStart(7)}  p99 ${f2(result.p99).padStart(7)} ms (in the server ${f2(read.serverP99)}${clientStall(result)})  GC ${f1(read.gcMs).padStart(6)} ms (${read.gcCount}, longest ${f1(read.gcMaxMs)})  stall ${f1(read.loopMaxMs).padStart(5)} ms  CPU ${f2(read.cpuMs / Math.max(1, result.ok)).padStart(5)} ms/req  faults ${f0(read.faults / Math.max(1, result.ok)).padStart(5)}/req  peak ${mib(read.peak)} MiB  ${f0(result.ms)} ms\n`);
        }
        // The same cell at a rate every strategy sustains: half the slowest's, ~0.8-2 s of requests.
        const rate = Math.max(1, 0.5 * Math.min(...order.map((st) => blocks.get(st)!.cells.at(-1)!.load.rps)));
        for (const strategy of order) {
          // autocannon's first c requests are a burst whatever the rate, and not timed (bench/server/load.ts).
          const spec = { ...specOf(strategy), rate, amount: c + Math.min(Math.max(4 * c, Math.round(rate * 0.8)), Math.round(rate * 2) + 1), seconds: size.wrk[1] * SCALE };
          const server = servers.get(strategy)!;
          await server.call({ cmd: 'mark' });
          const { result } = await load.call<{ result: LoadResult }>({ cmd: 'run', spec }, MAX_MS + 30_000);
          const read = await server.call<ServerRead>({ cmd: 'read' });
          const cell = blocks.get(strategy)!.cells.at(-1)!;
          cell.paced = result;
          cell.pacedServer = read;
          cell.rate = rate;
          process.stdout.write(`  ${`${strategy} ${size.label} ${route} c=${c}`.padEnd(34)} at ${f0(rate).padStart(5)} req/s (reached ${f0(result.rps)}, ${result.timed} timed): p50 ${f2(result.p50).padStart(7)}  p99 ${f2(result.p99).padStart(7)} ms (in the server ${f2(read.serverP99)}${clientStall(result)}, server stall ${f1(read.loopMaxMs)}, GC longest ${f1(read.gcMaxMs)})\n`);
        }
      }
    }
    // The RSS of every server as it falls after the last load (they are all idle now).
    await Promise.all([...servers].map(async ([s, p]) => {
      blocks.get(s)!.after = (await p.call<{ after: After[] }>({ cmd: 'after', at: AFTER_MS }, AFTER_MS.at(-1)! + 10_000)).after;
    }));
    for (const b of blocks.values()) {
      process.stdout.write(`  ${`${b.strategy} ${size.label}`.padEnd(34)} idle ${mib(b.idle)} MiB, after ${b.after.map((a) => `${a.at / 1000} s: ${mib(a.rss)}${a.pool ? ` (${a.pool.arenas} arenas, ${mib(a.pool.kept)} MiB kept, ${a.pool.retired} retired, pass ${a.pool.ticks})` : ''}`).join(', ')} MiB; V8 heap ${mib(b.idleHeap.heapTotal)} -> ${mib(b.after.at(-1)!.heap.heapTotal)} MiB\n`);
    }
    return [...blocks.values()];
  } finally {
    await Promise.all([stop(load), ...[...servers.values()].map(stop)]);
  }
}

// ---- formatting ----------------------------------------------------------------------------------

const f0 = (x: number) => x.toFixed(0);
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const mib = (b: number) => (b / MiB).toFixed(0);
// The load generator's own longest stall, where it has one (autocannon; wrk has no event loop).
const clientStall = (r: LoadResult) => (Number.isFinite(r.stall) ? `, client stall ${f1(r.stall)}` : '');
const fx = (x: number) => (!Number.isFinite(x) ? (Number.isNaN(x) ? '–' : '∞') : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
// GC per request, so that a run cut short by the duration bound still compares; a strategy with no
// GC at all against one with some reads 0.
const gcRatio = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b);

// `text`: how many leading columns are text (left-aligned); the rest are figures.
function markdown(head: string[], rows: string[][], text = 3): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(head), `|${head.map((_, i) => (i < text ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---- main ----------------------------------------------------------------------------------------

const started = Date.now();
const cpus = os.cpus();
const loadStart = os.loadavg()[0];
console.log(`\n10. HTTP server: upload / echo / download on 127.0.0.1, a load generator in another process${QUICK ? ' (BENCH_QUICK)' : ''}`);
console.log(`  ${cpus.length} cores, node ${process.version}; ${REPS} rep(s), strategies rotate; memsys options ${MEMSYS_OPTS}; load average ${os.loadavg()[0].toFixed(1)}`);

const blocks: Block[] = [];
for (let rep = 0; rep < REPS; rep++) for (const size of SIZES) blocks.push(...await sizeSet(rep, size));

interface Agg { rps: number; p50: number; p99: number; serverP99: number; cpu: number; gcMs: number; gcCount: number; gcPerReq: number; stall: number; gcMax: number; peak: number; rate: number; reached: number; pacedP99: number; pacedServerP99: number }
const KEYS: (keyof Agg)[] = ['rps', 'p50', 'p99', 'serverP99', 'cpu', 'gcMs', 'gcCount', 'gcPerReq', 'stall', 'gcMax', 'peak', 'rate', 'reached', 'pacedP99', 'pacedServerP99'];
const cellsOf = (strategy: Strategy, size: SizeSpec, route: Route, c: number) =>
  Array.from({ length: REPS }, (_, rep) => blocks.find((b) => b.rep === rep && b.strategy === strategy && b.size === size)!.cells.find((x) => x.route === route && x.c === c)!);
const figures = (x: Cell): Agg => {
  const n = Math.max(1, x.load.ok);
  return { rps: x.load.rps, p50: x.load.p50, p99: x.load.p99, serverP99: x.server.serverP99, cpu: x.server.cpuMs / n, gcMs: x.server.gcMs, gcCount: x.server.gcCount, gcPerReq: x.server.gcMs / n, stall: x.server.loopMaxMs, gcMax: x.server.gcMaxMs, peak: x.server.peak,
    rate: x.rate ?? NaN, reached: x.paced?.rps ?? NaN, pacedP99: x.paced?.p99 ?? NaN, pacedServerP99: x.pacedServer?.serverP99 ?? NaN };
};
// Medians over the reps, and each ratio the median of the reps' ratios: both strategies of a ratio
// ran in the same rep one after the other.
function agg(strategy: Strategy, size: SizeSpec, route: Route, c: number): { abs: Agg; vs: Agg } {
  const a = cellsOf(strategy, size, route, c).map(figures);
  const b = cellsOf(BASE, size, route, c).map(figures);
  const med = (k: keyof Agg) => median(a.map((x) => x[k]));
  const ratio = (k: keyof Agg) => median(a.map((x, i) => (k === 'gcPerReq' ? gcRatio(x[k], b[i][k]) : x[k] / b[i][k])));
  return { abs: Object.fromEntries(KEYS.map((k) => [k, med(k)])) as unknown as Agg, vs: Object.fromEntries(KEYS.map((k) => [k, ratio(k)])) as unknown as Agg };
}
interface Mem { idle: number; peak: number; after: number[]; heapIdle: number; heapAfter: number; pool?: PoolFigures }
function mem(strategy: Strategy, size: SizeSpec): Mem {
  const bs = blocks.filter((b) => b.strategy === strategy && b.size === size);
  const last = bs.map((b) => b.after.at(-1)!);
  return {
    idle: median(bs.map((b) => b.idle)),
    peak: median(bs.map((b) => Math.max(...b.cells.map((x) => x.server.peak)))),
    after: AFTER_MS.map((_, i) => median(bs.map((b) => b.after[i].rss))),
    heapIdle: median(bs.map((b) => b.idleHeap.heapTotal)),
    heapAfter: median(last.map((a) => a.heap.heapTotal)),
    pool: last[0].pool && { arenas: median(last.map((a) => a.pool!.arenas)), kept: median(last.map((a) => a.pool!.kept)), retired: median(last.map((a) => a.pool!.retired)), ticks: 0 },
  };
}

const md: string[] = [];
const out: string[] = [];
const head = ['route', 'conc.', 'strategy', 'req/s', 'vs rb', 'p50 ms', 'vs rb', 'p99 ms', 'vs rb', 'p99 in the server ms', 'server CPU ms/req', 'vs rb', 'GC ms (collections)', 'GC/req vs rb', 'longest stall ms (GC)', 'peak RSS MiB', 'vs rb', 'common rate req/s (reached)', 'p99 there ms', 'vs rb', 'p99 in the server there ms'];
type Ratios = { rps: number; p99: number; pacedP99: number; gc: number; route: Route; c: number };
const memsysRatios = new Map<string, Ratios[]>();
for (const size of SIZES) {
  const rows: string[][] = [];
  for (const route of ROUTES) {
    for (const { c } of size.cells) {
      for (const s of STRATEGIES.filter((x) => runs(x, route))) {
        const { abs: a, vs } = agg(s, size, route, c);
        if (MEMSYS.includes(s)) {
          const key = `${s} ${size.label}`;
          memsysRatios.set(key, [...memsysRatios.get(key) ?? [], { rps: vs.rps, p99: vs.p99, pacedP99: vs.pacedP99, gc: vs.gcPerReq, route, c }]);
        }
        rows.push([route, String(c), s, f0(a.rps), fx(vs.rps), f2(a.p50), fx(vs.p50), f2(a.p99), fx(vs.p99), f2(a.serverP99), f2(a.cpu), fx(vs.cpu),
          `${f1(a.gcMs)} (${f0(a.gcCount)})`, fx(vs.gcPerReq), `${f1(a.stall)} (${f1(a.gcMax)})`, mib(a.peak), fx(vs.peak), `${f0(a.rate)} (${f0(a.reached)})`, f2(a.pacedP99), fx(vs.pacedP99), f2(a.pacedServerP99)]);
      }
    }
  }
  md.push(`#### ${size.label} bodies`, '', markdown(head, rows), '');
  out.push(`${size.label} bodies`, ...rows.map((r) => `  ${r[0].padEnd(8)} c=${r[1].padEnd(3)} ${r[2].padEnd(11)} ${r[3].padStart(6)} req/s ${r[4].padStart(6)}  p50 ${r[5].padStart(6)} ${r[6].padStart(6)}  p99 ${r[7].padStart(6)} ${r[8].padStart(6)} (in the server ${r[9]})  CPU ${r[10].padStart(6)} ${r[11].padStart(6)}  GC ${r[12].padStart(12)} ${r[13].padStart(6)}  stall ${r[14].padStart(11)}  peak ${r[15].padStart(5)} ${r[16].padStart(6)}  at ${r[17].padStart(11)} req/s p99 ${r[18].padStart(6)} ${r[19].padStart(6)} (in the server ${r[20]})`), '');
}

// RSS: idle before any load, the highest peak of the set, and as it falls after the last load.
const lastS = `${AFTER_MS.at(-1)! / 1000} s`;
const memHead = ['body', 'strategy', 'idle MiB', 'peak MiB', ...AFTER_MS.map((a) => `${a / 1000} s after MiB`), `${lastS} after − idle MiB`, 'share of the rise kept', 'V8 heap idle → after MiB', 'memsys pool after'];
const memRows: string[][] = [];
const memsysBack: { s: Strategy; size: SizeSpec; m: Mem }[] = [];
const kept = (m: Mem) => (m.after.at(-1)! - m.idle) / Math.max(1, m.peak - m.idle);
for (const size of SIZES) {
  for (const s of STRATEGIES) {
    const m = mem(s, size);
    if (MEMSYS.includes(s)) memsysBack.push({ s, size, m });
    memRows.push([size.label, s === 'drain' ? 'drain (upload only)' : s, mib(m.idle), mib(m.peak), ...m.after.map(mib), mib(m.after.at(-1)! - m.idle), `${f0(100 * kept(m))} %`,
      `${mib(m.heapIdle)} → ${mib(m.heapAfter)}`, m.pool ? `${m.pool.arenas} arenas, ${mib(m.pool.kept)} MiB not given back` : '']);
  }
}

// Goals: every cell must meet one for it to be met; the geometric mean and the worst cell shown.
const goalRows: string[][] = [];
type Judged = { x: number; route: Route; c: number };
const judge = (what: string, xs: Judged[], ok: (x: number) => boolean, target: string, worstIsMax: boolean) => {
  const worst = xs.reduce((w, v) => ((worstIsMax ? v.x > w.x : v.x < w.x) ? v : w));
  const n = xs.filter((v) => ok(v.x)).length;
  const finite = xs.map((v) => v.x).filter((x) => Number.isFinite(x) && x > 0);
  goalRows.push([what, target, finite.length ? fx(geomean(finite)) : '–', `${fx(worst.x)} (${worst.route}, c=${worst.c})`,
    n === xs.length ? 'met' : `NOT MET (${n} of ${xs.length} cells)`]);
};
const goal = (what: string, sizes: SizeSpec[], pick: (r: Ratios) => number, ok: (x: number) => boolean, target: string, worstIsMax: boolean) => {
  for (const size of sizes) for (const s of MEMSYS.filter((x) => STRATEGIES.includes(x))) {
    judge(`${s}: ${what}, ${size.label}`, memsysRatios.get(`${s} ${size.label}`)!.map((r) => ({ x: pick(r), route: r.route, c: r.c })), ok, target, worstIsMax);
  }
};
const big = SIZES.filter((s) => s.bytes >= MiB);
goal('p99 latency at a common rate vs raw-body', big, (r) => r.pacedP99, (x) => x <= 0.7, '<= 0.7x', true);
goal('p99 latency at saturation vs raw-body', big, (r) => r.p99, (x) => x <= 0.7, '<= 0.7x', true);
goal('GC time per request vs raw-body', big, (r) => r.gc, (x) => x <= 0.1, '<= 0.1x', true);
// Below 1 MiB a body is a small part of what a request leaves for the collector (its head, the
// request and response objects), and raw-body's GC is mostly Node's own: the drain floor (the
// body read and dropped) measures that, and there the goal is to add nothing to it.
for (const size of SIZES.filter((x) => x.bytes < MiB)) {
  for (const s of MEMSYS.filter((x) => STRATEGIES.includes(x))) {
    const what = `${s}: GC time per request vs the drain floor (upload), ${size.label}`;
    if (!STRATEGIES.includes('drain') || !ROUTES.includes('upload')) {
      goalRows.push([what, '<= 1.0x', '–', '–', 'not judged (no drain or no upload in this run)']);
      continue;
    }
    judge(what, size.cells.map(({ c }) => {
      const a = cellsOf(s, size, 'upload', c).map(figures);
      const d = cellsOf('drain', size, 'upload', c).map(figures);
      return { x: median(a.map((f, i) => gcRatio(f.gcPerReq, d[i].gcPerReq))), route: 'upload', c };
    }), (x) => x <= 1, '<= 1.0x', true);
  }
}
goal('throughput vs raw-body', SIZES, (r) => r.rps, (x) => x >= 1.0, '>= 1.0x', false);
// "Near idle": no more than a tenth of the rise from idle to the peak still held. The pool's own
// part is judged apart: what it holds and has not given back.
for (const { s, size, m } of memsysBack) {
  goalRows.push([`${s}: RSS back near idle ${lastS} after, ${size.label}`, '<= 10 % of the rise kept', `${f0(100 * kept(m))} % (${mib(m.after.at(-1)! - m.idle)} MiB)`, `peak ${mib(m.peak)} MiB, idle ${mib(m.idle)} MiB`, kept(m) <= 0.1 ? 'met' : 'NOT MET']);
  if (m.pool) goalRows.push([`${s}: memsys pool given back ${lastS} after, ${size.label}`, '<= 1 MiB not given back', `${mib(m.pool.kept)} MiB`, `${m.pool.arenas} arenas`, m.pool.kept <= MiB ? 'met' : 'NOT MET']);
}

console.log('\n== results (medians over reps; ratios against raw-body) ==\n');
console.log(out.join('\n'));
console.log(memRows.map((r) => `  ${r.join('  ')}`).join('\n'));
console.log('\ngoals (memsys, memsys-wire):');
for (const r of goalRows) console.log(`  ${r[0]}: target ${r[1]}; geomean ${r[2]}, worst ${r[3]}: ${r[4]}`);
if (problems.length) {
  console.log('\n!!! PROBLEMS: these runs had errors or were cut short; their figures are not comparable:');
  for (const p of problems) console.log(`!!!   ${p}`);
}

const mdAll = [
  '### 10. HTTP server: upload, echo, download',
  '',
  `${cpus[0]?.model ?? 'cpu'}, ${cpus.length} cores; node ${process.version}; ${REPS} rep(s), medians; ${new Date().toISOString().slice(0, 10)}; load average ${loadStart.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end; ${pinned ? `servers on core ${PIN!.servers}, the load generator on ${PIN!.load} (taskset)` : 'not pinned to cores'}; memsys \`${MEMSYS_OPTS}\`; load generator ${generator === 'wrk' ? 'wrk, one thread' : 'autocannon'}.`,
  '',
  `"Longest stall": the server's longest event-loop delay in the measured run (monitorEventLoopDelay), and in brackets its longest collection. The measured run is closed-loop at saturation, where latency is the concurrency over the throughput and the tail is the load generator's queue as much as the server's; "p99 there" is the same cell run again at a rate common to every strategy (half the slowest's), the latency under equal load: ${generator === 'wrk' ? "wrk's connections each wait a random think time before each request (uniform, its mean the connections over the rate), so the rate reached (in brackets) is below the one asked for by the latency's share of each cycle" : "autocannon's overallRate, of the requests sent after the first burst of one per connection has drained"}. "In the server": the p99 of each exchange's time from its head to its last byte handed to the kernel; a client p99 far above it is time outside the server's code (the kernel's queues, the load generator's own loop).`,
  '',
  ...md,
  '#### RSS of the server process',
  '',
  markdown(memHead, memRows, 2),
  '',
  '#### Goals (memsys and memsys-wire)',
  '',
  markdown(['goal', 'target', 'geomean over cells', 'worst cell', 'status'], goalRows, 5),
  ...(problems.length ? ['', '**Runs with errors or cut short (not comparable):**', '', ...problems.map((p) => `- ${p}`)] : []),
];
console.log('\n== markdown (bench/RESULTS.md) ==\n');
console.log(mdAll.join('\n'));
console.log(`\n(server part: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
if (problems.length) process.exitCode = 1;
