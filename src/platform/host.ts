// Host memory statistics: what a provider reports, and where the MMSA gets its provider.
//
// The browser-safe core knows no host. `memsys/node` installs a provider that reads /proc and the
// process's cgroup (node/hoststats.ts); a browser page uses a budget (browserstats.ts); tests and
// embedders inject their own. Every figure but `total` and `free` is optional: a provider reports
// what it could read, and `sources` says where each came from.

/** One line of a PSI memory file (`some` or `full`). */
export interface PsiLine {
  /** % of the last 10 s with a task stalled on memory. */
  avg10: number;
  /** % of the last 60 s. */
  avg60: number;
  /** % of the last 300 s. */
  avg300: number;
  /** Microseconds stalled, cumulative. */
  total: number;
}

/** Host memory figures, as a MemStatsProvider reports them; every size in bytes. Only `total`
 * and `free` are always there: a provider leaves out what it could not read. */
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
  /** Swap space: its growth raises pressure (the swap trend). */
  swap?: {
    /** SwapTotal, bytes. */
    total: number;
    /** SwapFree, bytes. */
    free: number;
    /** Swap in use, bytes. */
    used: number;
  };
  /** The kernel's overcommit accounting. */
  commit?: {
    /** vm.overcommit_memory: 0 heuristic, 1 always, 2 strict. */
    mode: number;
    /** vm.overcommit_ratio, %. */
    ratio?: number;
    /** vm.overcommit_kbytes, KiB. */
    kbytes?: number;
    /** CommitLimit, bytes. */
    limit?: number;
    /** Committed_AS, bytes. */
    committed?: number;
    /** Strict mode only: bytes left before a new mapping fails with ENOMEM (CommitLimit −
     * Committed_AS). */
    headroom?: number;
  };
  /** The process's memory cgroup: the tightest hard limit and soft limit (memory.high) over it and its
   * ancestors, and its usage and inactive page cache, bytes. */
  cgroup?: {
    /** cgroup v1 or v2. */
    version: 1 | 2;
    /** The process's cgroup, as /proc/self/cgroup names it. */
    path: string;
    /** The tightest hard limit (memory.max, memory.limit_in_bytes) of it and its ancestors. */
    limit?: number;
    /** The cgroup whose limit is the tightest. */
    limitFrom?: string;
    /** The tightest soft limit (memory.high). */
    high?: number;
    /** Memory charged to it. */
    usage?: number;
    /** Page cache it may drop (inactive_file). */
    inactiveFile?: number;
  };
  /** Pressure stall information for memory (the cgroup's, or the host's). */
  psi?: {
    /** Some task stalled on memory. */
    some: PsiLine;
    /** Every task stalled on memory at once. */
    full?: PsiLine;
    /** Microseconds some task stalled since the provider's previous reading. */
    stallUs?: number;
    /** Milliseconds since that reading. */
    sinceMs?: number;
  };
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
/** @internal */
export function saneStats(s: unknown): MemStats | undefined {
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (typeof s !== 'object' || s === null) return undefined;
  const m = s as MemStats;
  if (!ok(m.total) || !ok(m.free)) return undefined;
  if (m.available !== undefined && !ok(m.available)) return { ...m, available: undefined };
  return m;
}

let defaultProvider: MemStatsProvider | undefined;

/** Sets the provider every MMSA without a `memStats` option reads, from its next reading on;
 * undefined for none. The Node entry installs its /proc and cgroup reader; in a browser the
 * default is browserMemStats(). */
export function setDefaultMemStats(p: MemStatsProvider | undefined): void {
  defaultProvider = p;
}

/** @internal */
export function defaultMemStats(): MemStatsProvider | undefined {
  return defaultProvider;
}

/** @internal */
export function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
}

// Shared memories: SharedArrayBuffer exists and, in a browser, the page is cross-origin isolated.
/** @internal */
export function sharedAvailable(): boolean {
  return typeof SharedArrayBuffer === 'function' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
}

// The process environment where there is one (Node, Deno, Bun); browsers have none.
/** @internal */
export function processEnv(): Record<string, string | undefined> {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env ?? {};
}
