// Memory statistics in a browser, where there is no host to read: a budget (bytes the page may
// use), what the browser reports when it can, and the pool's own size.
//
//   total      the budget; without one, a quarter of navigator.deviceMemory (Chromium; GiB, rounded)
//   used       the larger of the pool's bytes and the last performance.measureUserAgentSpecificMemory()
//              result (cross-origin-isolated pages; resolves at a later GC, so it is sampled in the
//              background and the last figure used)
//   free       total − used
//
// The hard signal in a browser is an arena that cannot be created, which the MMSA turns into
// OOM on its own (pressure.ts).

import { invalidArg } from '../errors.js';
import type { MemStats, MemStatsProvider } from './host.js';
import { GiB } from '../sizes.js';

/** Options of browserMemStats(). */
export interface BrowserStatsOptions {
  /** Bytes this page may use. Default: a quarter of navigator.deviceMemory, when known. */
  budget?: number;
  /** How often to sample measureUserAgentSpecificMemory, ms. Default 60 000; 0: never. */
  sampleMs?: number;
  /** Stand-ins for `globalThis` (tests). */
  env?: {
    /** Stands for `navigator`: its deviceMemory, GiB. */
    navigator?: { deviceMemory?: number };
    /** Stands for `performance`: its measureUserAgentSpecificMemory is sampled. */
    performance?: unknown;
    /** Stands for `crossOriginIsolated`: the measurement needs it true. */
    crossOriginIsolated?: boolean;
  };
}

type Measure = () => Promise<{ bytes: number }>;

/**
 * A memory statistics provider for a browser page or worker: `total` is the budget (or a quarter
 * of navigator.deviceMemory), and `free` and `available` what is left of it after the larger of
 * the pool's bytes and the last measureUserAgentSpecificMemory() result (cross-origin-isolated
 * pages, sampled in the background). Without a budget or deviceMemory it reports nothing
 * (undefined), and pressure then comes only from arenas that cannot be created. Throws
 * ERR_MEMSYS_INVALID_ARG for a budget that is not a positive integer of bytes, or a negative or
 * non-finite sampleMs.
 */
export function browserMemStats(opts: BrowserStatsOptions = {}): MemStatsProvider {
  if (opts.budget !== undefined && !(Number.isSafeInteger(opts.budget) && opts.budget > 0)) {
    throw invalidArg('option budget', opts.budget, 'must be a positive integer number of bytes');
  }
  const sampleMs = opts.sampleMs ?? 60_000;
  if (!(Number.isFinite(sampleMs) && sampleMs >= 0)) throw invalidArg('option sampleMs', sampleMs, 'must be a non-negative number');
  const env = opts.env ?? (globalThis as BrowserStatsOptions['env'] & object);
  const device = env.navigator?.deviceMemory;
  const budget = opts.budget ?? (typeof device === 'number' && device > 0 ? (device * GiB) / 4 : undefined);
  const perf = env.performance as { measureUserAgentSpecificMemory?: Measure } | undefined;
  const measure = env.crossOriginIsolated && typeof perf?.measureUserAgentSpecificMemory === 'function'
    ? perf.measureUserAgentSpecificMemory.bind(perf) : undefined;
  let measured: number | undefined;
  let pending = false;
  let last = -Infinity;
  const sample = () => {
    if (!measure || pending || sampleMs === 0 || performance.now() - last < sampleMs) return;
    pending = true;
    last = performance.now();
    measure().then((r) => { measured = r.bytes; }, () => {}).finally(() => { pending = false; });
  };
  return (ctx) => {
    if (budget === undefined) return undefined;
    sample();
    const pool = ctx?.poolBytes ?? 0;
    const used = Math.max(pool, measured ?? 0);
    const free = Math.max(0, budget - used);
    const sources = [opts.budget !== undefined ? 'budget' : 'navigator.deviceMemory', 'pool'];
    if (measured !== undefined) sources.push('performance.measureUserAgentSpecificMemory');
    const s: MemStats = { total: budget, free, available: free, pool, sources };
    return s;
  };
}
