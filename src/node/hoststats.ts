// Host memory statistics for Node: /proc/meminfo, overcommit settings, the memory cgroup (cgroup.ts)
// and PSI, combined into what the pressure logic reads. Re-read on every call: MemTotal changes
// under a balloon or hotplug, and limits change at run time. A file that is missing or odd lowers
// what is known and is left out of `sources`; nothing here throws.
//
//   total      min(MemTotal, cgroup limit)
//   available  min(MemAvailable, limit − max(0, usage − inactive_file), strict-mode headroom)
//   free       min(MemFree + Cached + Buffers, MemAvailable), bounded like available
//   headroom   CommitLimit − Committed_AS, in strict mode (vm.overcommit_memory = 2) only: there a
//              new arena fails with out-of-memory while RAM is free
//   addressSpace  the soft RLIMIT_AS from /proc/self/limits, when it is not unlimited

import type { MemStats, MemStatsProvider } from '../platform/host.js';
import { type Reader, cgroupRoom, cgroupStats, findCgroup, reader } from './cgroup.js';
import { parseMeminfo, parsePsi } from './proc.js';

/** Options of createHostStats(). */
export interface HostStatsOptions {
  /** A directory that stands for `/` (fixture trees in tests). Default: the real root. */
  root?: string;
  /** Milliseconds clock, for PSI stall deltas. Default performance.now. */
  now?: () => number;
}

/** A host memory provider (the Node entry's default) that reads /proc and the process's memory
 * cgroup at every call (readHostStats) and remembers the last PSI reading, so that each reading
 * also says how long tasks stalled since the previous one (`psi.stallUs`, `psi.sinceMs`). */
export function createHostStats(opts: HostStatsOptions = {}): MemStatsProvider {
  const root = opts.root ?? '';
  const now = opts.now ?? (() => performance.now());
  let last: { total: number; at: number } | undefined;
  return () => {
    const s = readHostStats(root);
    if (s?.psi) {
      const at = now();
      if (last) { s.psi.stallUs = Math.max(0, s.psi.some.total - last.total); s.psi.sinceMs = at - last.at; }
      last = { total: s.psi.some.total, at };
    }
    return s;
  };
}

/** The host's memory figures now, from /proc/meminfo, the overcommit settings, the memory cgroup,
 * PSI and RLIMIT_AS, read under `root` (default the real root): `total` is the tighter of RAM and
 * the cgroup limit, `free` and `available` are bounded by the cgroup and the strict-overcommit
 * headroom. Undefined where /proc/meminfo cannot be read (not Linux); never throws. */
export function readHostStats(root = ''): MemStats | undefined {
  const sources: string[] = [];
  const read = reader(root, sources);
  const text = read('/proc/meminfo');
  if (text === undefined) return undefined;
  const m = parseMeminfo(text);
  const memTotal = m.get('MemTotal');
  const memFree = m.get('MemFree');
  if (memTotal === undefined || memFree === undefined) return undefined;
  const buffCache = (m.get('Cached') ?? 0) + (m.get('Buffers') ?? 0);
  let available = m.get('MemAvailable') ?? memFree + buffCache;
  let free = Math.min(memFree + buffCache, available);
  let total = memTotal;
  const s: MemStats = { total, free, available, buffCache, sources };

  const swapTotal = m.get('SwapTotal');
  const swapFree = m.get('SwapFree');
  if (swapTotal !== undefined && swapFree !== undefined) s.swap = { total: swapTotal, free: swapFree, used: swapTotal - swapFree };

  const mode = intFile(read, '/proc/sys/vm/overcommit_memory');
  if (mode !== undefined) {
    const limit = m.get('CommitLimit');
    const committed = m.get('Committed_AS');
    s.commit = { mode, ratio: intFile(read, '/proc/sys/vm/overcommit_ratio'), kbytes: intFile(read, '/proc/sys/vm/overcommit_kbytes'), limit, committed };
    if (mode === 2 && limit !== undefined && committed !== undefined) {
      const headroom = Math.max(0, limit - committed);
      s.commit.headroom = headroom;
      available = Math.min(available, headroom);
      free = Math.min(free, headroom);
    }
  }

  const dirs = findCgroup(read);
  if (dirs) {
    const cg = cgroupStats(read, dirs);
    s.cgroup = cg;
    if (cg.limit !== undefined) {
      total = Math.min(total, cg.limit);
      const room = cgroupRoom(cg)!;
      available = Math.min(available, room);
      free = Math.min(free, room);
    }
    const psiText = dirs.version === 2 ? read(`${dirs.dirs[0]}/memory.pressure`) : undefined;
    setPsi(s, psiText ?? read('/proc/pressure/memory'));
  } else {
    setPsi(s, read('/proc/pressure/memory'));
  }
  const limits = read('/proc/self/limits');
  const as = limits === undefined ? undefined : /^Max address space\s+(\d+)\s/m.exec(limits);
  if (as) s.addressSpace = Number(as[1]);
  s.total = total;
  s.free = free;
  s.available = available;
  return s;
}

function setPsi(s: MemStats, text: string | undefined): void {
  const p = text === undefined ? {} : parsePsi(text);
  if (p.some) s.psi = { some: p.some, full: p.full };
}

function intFile(read: Reader, path: string): number | undefined {
  const t = read(path)?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}
