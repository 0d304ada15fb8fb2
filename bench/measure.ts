// Timing loops side by side, for bench/run.ts (parts 1 and 2) and bench/mixed.ts.
//
// Each contender is warmed up on its own, doubling its iterations until one call takes a fair
// share of WARM_MS, which also gives the iterations for ~REP_MS per timed call. Then REPS rounds:
// in each, every contender is timed once after a gc(), in an order that reverses every round.
// The shared VM's speed drifts by 20-30 % over seconds, so a ratio is read from the rounds (the
// median of one contender's time over the other's in the same round), not from two medians that
// were taken seconds apart.

export const WARM_MS = 300;  // warm-up per contender
export const REP_MS = 200;   // target duration of one timed call
export const REPS = 9;       // rounds

export interface Contender {
  name: string;
  run: (iters: number) => number;
}

export interface Result {
  name: string;
  iters: number;
  median: number;     // ns/op
  best: number;       // ns/op
  samples: number[];  // ns/op, one per round, in round order
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const now = () => process.hrtime.bigint();
let sink = 0; // every loop's checksum goes here

/** The checksum of every loop timed so far (printed, so that no loop is dead code). */
export function checksum(): number {
  return sink & 0xffff;
}

function timeRun(run: (n: number) => number, iters: number): number {
  const t0 = now();
  sink += run(iters);
  return Number(now() - t0);
}

// Warms one contender up and returns the iterations for one timed call.
function warm(run: (n: number) => number): number {
  let iters = 1000;
  let spent = 0;
  let nsPerOp = 0;
  while (spent < WARM_MS * 1e6) {
    const t = timeRun(run, iters);
    spent += t;
    nsPerOp = t / iters;
    if (t < WARM_MS * 1e6 / 4) iters *= 2;
  }
  return Math.max(1000, Math.round((REP_MS * 1e6) / nsPerOp));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Times the contenders side by side (see the top of this file); `log` prints each as it is done. */
export function side(contenders: Contender[], log: (r: Result) => void = () => {}): Result[] {
  const iters = contenders.map((c) => warm(c.run));
  const samples: number[][] = contenders.map(() => []);
  for (let r = 0; r < REPS; r++) {
    const order = contenders.map((_, i) => (r & 1 ? contenders.length - 1 - i : i));
    for (const i of order) {
      gc();
      samples[i].push(timeRun(contenders[i].run, iters[i]) / iters[i]);
    }
  }
  return contenders.map((c, i) => {
    const res = { name: c.name, iters: iters[i], median: median(samples[i]), best: Math.min(...samples[i]), samples: samples[i] };
    log(res);
    return res;
  });
}

/** How many times `a` took `b`'s time: the median over the rounds of a/b in the same round. */
export function ratio(a: Result, b: Result): number {
  return median(a.samples.map((x, i) => x / b.samples[i]));
}
