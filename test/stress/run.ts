// The stress runner: `npm run stress -- --duration 2m [--run sleep|nosleep] [--workers N]`.
//
// AIStore's stress scenarios for memsys: many concurrent tasks (here: worker threads × tasks per
// thread; Test_Sleep has 100 goroutines that pause 1–101 ms, Test_NoSleep 500 that do not)
// allocate, fill, check and free buffers and SGLs of random sizes (1 KiB–10 MiB), while the main
// thread frees memory concurrently (freeMem, housekeeping) and walks the host's free memory
// through every pressure level. At the end every count must balance and no byte may have been
// wrong. The MMSA reads the AIS_MINMEM_* variables as any other does.

import { MMSA } from '../../src/index.js';

// minOps: the threads go on past the duration until they have done this many operations together.
export interface StressOptions { durationMs: number; mode: 'sleep' | 'nosleep'; workers?: number; minOps?: number }
export interface StressResult {
  mode: string; workers: number; tasks: number; seconds: number;
  ops: number; sgls: number; buffers: number; bytes: number; mismatches: number; refused: number;
  freeMemCalls: number; pressureSeen: number[]; inUseAtEnd: number; outAtEnd: number; arenasPeak: number;
}

const MiB = 2 ** 20;
// Free memory (MiB) the knob walks through: Low, Moderate, High, Extreme for a 2 GiB minimum.
const LEVELS = [60_000, 20_000, 5_000, 1_500];

export async function runStress(o: StressOptions): Promise<StressResult> {
  const workers = o.workers ?? 4;
  const tasks = (o.mode === 'sleep' ? 100 : 500) / 4; // AIStore's goroutine counts, spread over 4 threads
  const knob = new SharedArrayBuffer(8); // [0] free memory, MiB, for every realm; [1] operations done
  const k = new Int32Array(knob);
  Atomics.store(k, 0, LEVELS[0]);
  const mm = new MMSA({
    name: 'stress', arenaSize: 64 * MiB, timeIval: 250, minFree: 2048 * MiB,
    memStats: () => ({ total: 64 * 2 ** 30, free: Atomics.load(k, 0) * MiB, available: Atomics.load(k, 0) * MiB }),
  });
  mm.init();
  const desc = mm.share();
  const deadline = Date.now() + o.durationMs;
  const started = Date.now();
  const entry = new URL('./worker.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  const { Worker } = await import('node:worker_threads');
  const results = Array.from({ length: workers }, (_, i) => new Promise<Record<string, number>>((resolve, reject) => {
    const w = new Worker(boot, { eval: true, workerData: { desc, knob, deadline, minOps: o.minOps ?? 0, mode: o.mode, tasks, seed: 0x9e3779b9 + i * 7919 } });
    w.once('message', resolve);
    w.once('error', reject);
  }));
  let freeMemCalls = 0;
  let arenasPeak = 0;
  const pressureSeen = new Set<number>();
  let step = 0;
  const done = Promise.all(results);
  let finished = false;
  void done.then(() => { finished = true; }, () => { finished = true; });
  while (!finished) {
    await new Promise((r) => setTimeout(r, 100));
    Atomics.store(k, 0, LEVELS[Math.floor(step++ / 5) % LEVELS.length]);
    pressureSeen.add(mm.pressure());
    arenasPeak = Math.max(arenasPeak, mm.stats().arenas);
    if (step % 5 === 0) { mm.freeMem({ toOS: true }); freeMemCalls++; }
  }
  const per = await done;
  await new Promise((r) => setTimeout(r, 50));
  const sum = (key: string) => per.reduce((n, r) => n + r[key], 0);
  const st = mm.stats();
  const inUseAtEnd = st.classes.reduce((n, c) => n + c.inUse, 0);
  // Slots the cores count as handed out, less what this realm's magazines cache: must be none.
  const outAtEnd = st.classes.reduce((n, c, i) => n + mm.coreOut(i) - c.cached, 0);
  mm.check(); // every arena's invariants
  mm.terminate();
  return {
    mode: o.mode, workers, tasks: tasks * workers, seconds: (Date.now() - started) / 1000,
    ops: sum('ops'), sgls: sum('sgls'), buffers: sum('buffers'), bytes: sum('bytes'), mismatches: sum('mismatches'),
    refused: sum('refused'), freeMemCalls, pressureSeen: [...pressureSeen].sort(), inUseAtEnd, outAtEnd, arenasPeak,
  };
}

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new Error(`--duration ${JSON.stringify(s)}: expected a number with ms, s, m or h (such as 2m)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms'];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const get = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const durationMs = parseDuration(get('--duration') ?? '30s');
  const modes = get('--run') ? [get('--run') as 'sleep' | 'nosleep'] : ['sleep', 'nosleep'] as const;
  for (const m of modes) if (m !== 'sleep' && m !== 'nosleep') throw new Error(`--run ${JSON.stringify(m)}: expected sleep or nosleep`);
  let bad = false;
  for (const mode of modes) {
    const r = await runStress({ durationMs: durationMs / modes.length, mode, workers: Number(get('--workers') ?? 4) });
    console.log(`${mode}: ${r.tasks} tasks on ${r.workers} threads, ${r.seconds.toFixed(1)} s: ${r.ops} ops (${r.sgls} SGLs, ` +
      `${r.buffers} buffers, ${(r.bytes / 2 ** 30).toFixed(2)} GiB through SGLs), ${r.mismatches} with a wrong byte, ${r.refused} refused, ` +
      `freeMem ${r.freeMemCalls}×, pressure levels ${r.pressureSeen.join(',')}, peak ${r.arenasPeak} arenas, in use at the end ${r.inUseAtEnd}, out at the end ${r.outAtEnd}`);
    if (r.mismatches || r.inUseAtEnd || r.outAtEnd) bad = true;
  }
  process.exitCode = bad ? 1 : 0;
}
