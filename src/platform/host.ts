// Host memory statistics: what a provider reports, and where the MMSA gets its provider.
//
// The browser-safe core knows no host. `memsys/node` installs a provider that reads /proc and the
// process's cgroup (node/hoststats.ts); a browser page uses a budget (browserstats.ts); tests and
// embedders inject their own. Every figure but `total` and `free` is optional: a provider reports
// what it could read, and `sources` says where each came from.

export interface PsiLine {
  avg10: number;   // % of the last 10 s with a task stalled on memory
  avg60: number;
  avg300: number;
  total: number;   // µs stalled, cumulative
}

export interface MemStats {
  /** Bytes this process may use at most: host RAM, or the tightest cgroup limit below it. */
  total: number;
  /** Bytes free now, reclaimable page cache counted as free (AIStore: min(free + cache, available)),
   * bounded by the cgroup and, under strict overcommit, by the commit headroom. */
  free: number;
  /** Bytes a new workload can take without swapping: MemAvailable, bounded by the cgroup
   * (limit − (usage − inactive_file)) and by the commit headroom under strict overcommit. */
  available?: number;
  /** Page cache and buffers (host), bytes. */
  buffCache?: number;
  swap?: { total: number; free: number; used: number };
  /** Overcommit: the mode (vm.overcommit_memory), CommitLimit, Committed_AS and, in strict mode (2),
   * the headroom left before a new mapping fails with ENOMEM. */
  commit?: { mode: number; ratio?: number; kbytes?: number; limit?: number; committed?: number; headroom?: number };
  /** The process's memory cgroup: the tightest hard limit and soft limit (memory.high) over it and its
   * ancestors, and its usage and inactive page cache. */
  cgroup?: {
    version: 1 | 2;
    path: string;
    limit?: number;
    limitFrom?: string;  // the cgroup whose limit is the tightest
    high?: number;
    usage?: number;
    inactiveFile?: number;
  };
  /** Pressure stall information for memory (the cgroup's, or the host's). */
  psi?: { some: PsiLine; full?: PsiLine; stallUs?: number; sinceMs?: number };
  /** The process's address-space limit (RLIMIT_AS), bytes; absent when unlimited. Each arena
   * reserves far more address space than it holds (~10 GiB in V8), so under a limit the pool
   * keeps its last arena rather than drop it and fail to map another. */
  addressSpace?: number;
  /** Bytes held by memsys pools in this realm (browser providers count them against the budget). */
  pool?: number;
  /** What was read: file names, or browser API names. */
  sources?: string[];
}

/** Reads host memory statistics; `poolBytes` is what this MMSA's arenas hold. Never throws: what
 * cannot be read is left out (or the result is undefined). */
export type MemStatsProvider = (ctx?: { poolBytes: number }) => MemStats | undefined;

// A provider's figures as the pressure logic may trust them: undefined unless `total` and `free`
// are non-negative finite numbers; an optional figure that is not is left out.
export function saneStats(s: unknown): MemStats | undefined {
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (typeof s !== 'object' || s === null) return undefined;
  const m = s as MemStats;
  if (!ok(m.total) || !ok(m.free)) return undefined;
  if (m.available !== undefined && !ok(m.available)) return { ...m, available: undefined };
  return m;
}

let defaultProvider: MemStatsProvider | undefined;

export function setDefaultMemStats(p: MemStatsProvider | undefined): void {
  defaultProvider = p;
}

export function defaultMemStats(): MemStatsProvider | undefined {
  return defaultProvider;
}

export function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
}

// Shared memories: SharedArrayBuffer exists and, in a browser, the page is cross-origin isolated.
export function sharedAvailable(): boolean {
  return typeof SharedArrayBuffer === 'function' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
}

// The process environment where there is one (Node, Deno, Bun); browsers have none.
export function processEnv(): Record<string, string | undefined> {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env ?? {};
}
