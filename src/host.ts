// Host memory, as the MMSA needs it at init: how much there is and how much is free. The browser-
// safe core knows no host; `memsys/node` installs a provider that reads /proc, a browser page
// passes its own (a budget) in the options. Issue #4 grows this into the full statistics.

export interface HostMemory {
  total: number;  // bytes the process may use at most (host RAM or its cgroup limit)
  free: number;   // bytes free now, page cache counted as free (AIStore's min(free + cache, available))
}

export type MemStatsProvider = () => HostMemory | undefined;

let defaultProvider: MemStatsProvider | undefined;

export function setDefaultMemStats(p: MemStatsProvider | undefined): void {
  defaultProvider = p;
}

export function defaultMemStats(): MemStatsProvider | undefined {
  return defaultProvider;
}

// The process environment where there is one (Node, Deno, Bun); browsers have none.
export function processEnv(): Record<string, string | undefined> {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env ?? {};
}
