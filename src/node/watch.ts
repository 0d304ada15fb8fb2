// Watching a pool from a terminal: samples (chart.ts) every interval and a live status line.

import { type MMSA, MemsysTypeError, type Sample, formatBytes, pressureName, sample } from '../index.js';

/** One line of a sample for a terminal: seconds, pool, bytes in use, host available, pressure. */
export function statusLine(s: Sample): string {
  return `${(s.t / 1000).toFixed(1).padStart(6)} s  pool ${formatBytes(s.pool).padStart(10)}  in use ${formatBytes(s.inUse).padStart(10)}` +
    `  host available ${s.available === undefined ? '?' : formatBytes(s.available).padStart(10)}  pressure ${pressureName(s.pressure as 0)}`;
}

/** Options of watch(). */
export interface WatchOptions {
  /** Sampling interval, ms. Default 250. */
  intervalMs?: number;
  /** Samples kept (the oldest go). Default 100 000. */
  maxSamples?: number;
  /** Where the live line goes. Default process.stdout; on a terminal it is redrawn in place. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Samples `mm` every `intervalMs` and writes the latest status line to `out`; the timer does not
 * keep the process alive, and ends by itself once `mm` is terminated or `out` fails. `stop()` ends
 * it and returns the samples (also in `samples` meanwhile), ready for renderChart(). Throws
 * ERR_MEMSYS_INVALID_ARG for an interval outside 1 … 2^31 − 1 ms or a maxSamples that is not a
 * positive integer. */
export function watch(mm: MMSA, o: WatchOptions = {}): { samples: Sample[]; stop(): Sample[] } {
  const every = o.intervalMs ?? 250;
  const keep = o.maxSamples ?? 100_000;
  const bad = (what: string, v: unknown, rule: string) => new MemsysTypeError('ERR_MEMSYS_INVALID_ARG', `option ${what} ${String(v)} ${rule}`);
  if (!(every >= 1 && every < 2 ** 31)) throw bad('intervalMs', every, 'must be 1 … 2^31 − 1 milliseconds');
  if (!(Number.isSafeInteger(keep) && keep > 0)) throw bad('maxSamples', keep, 'must be a positive integer');
  const out = o.out ?? process.stdout;
  const t0 = performance.now();
  const samples: Sample[] = [];
  const tick = () => {
    if (!mm.usable) return clearInterval(timer); // terminated: nothing more to watch
    const s = sample(mm, performance.now() - t0);
    samples.push(s);
    if (samples.length > keep) samples.splice(0, samples.length - keep);
    out.write(out.isTTY ? `\r${statusLine(s)}\x1b[K` : `${statusLine(s)}\n`);
  };
  const timer = setInterval(tick, every);
  tick();
  timer.unref();
  out.once?.('error', () => clearInterval(timer)); // a closed pipe (watch | head) ends it quietly
  return {
    samples,
    stop() {
      clearInterval(timer);
      if (out.isTTY) out.write('\n');
      return samples;
    },
  };
}
