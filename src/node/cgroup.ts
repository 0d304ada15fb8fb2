// The process's memory cgroup: which hierarchy holds the memory controller (v1, v2, or both on a
// hybrid host), the cgroup's directory, and the tightest limits over it and its ancestors.
//
//   /proc/self/cgroup   4:memory:/a/b        (v1)      0::/a/b        (v2; on hybrid hosts both)
//   /proc/self/mountinfo  … /sys/fs/cgroup/memory … - cgroup cgroup rw,memory
//                         … /sys/fs/cgroup        … - cgroup2 cgroup2 rw
//   directory = mount point + (path less the mount's root)      walk: leaf, parent, … mount point
//
// On a hybrid host the v2 mount may have no controllers enabled: the v1 memory hierarchy wins when
// the process has one; v2 is used when its root lists `memory` in cgroup.controllers.

import { readFileSync } from 'node:fs';
import type { MemStats } from '../platform/host.js';
import { type Mount, parseKeyValues, parseLimit, parseMountinfo, parseProcCgroup } from './proc.js';

export type CgroupStats = NonNullable<MemStats['cgroup']>;

export interface CgroupDirs {
  version: 1 | 2;
  path: string;     // as /proc/self/cgroup names it
  dirs: string[];   // the leaf first, then each ancestor up to the mount point (with `root` prefixed)
}

// Reads a file under `root`, or undefined; `sources` collects what was read.
export type Reader = (path: string) => string | undefined;

export function reader(root: string, sources: string[]): Reader {
  return (path) => {
    try {
      const t = readFileSync(root + path, 'utf8');
      sources.push(path);
      return t;
    } catch {
      return undefined;
    }
  };
}

export function findCgroup(read: Reader): CgroupDirs | undefined {
  const cg = read('/proc/self/cgroup');
  const mi = read('/proc/self/mountinfo');
  if (cg === undefined || mi === undefined) return undefined;
  const lines = parseProcCgroup(cg);
  const mounts = parseMountinfo(mi);
  const v1 = lines.find((l) => l.id !== 0 && l.controllers.includes('memory'));
  const v1mount = mounts.find((m) => m.fstype === 'cgroup' && m.superopts.includes('memory'));
  if (v1 && v1mount) return { version: 1, path: v1.path, dirs: walk(v1mount, v1.path) };
  const v2 = lines.find((l) => l.id === 0);
  const v2mount = mounts.find((m) => m.fstype === 'cgroup2');
  if (v2 && v2mount && (read(`${v2mount.point}/cgroup.controllers`) ?? '').split(/\s+/).includes('memory')) {
    return { version: 2, path: v2.path, dirs: walk(v2mount, v2.path) };
  }
  return undefined;
}

function walk(m: Mount, path: string): string[] {
  let rel: string;
  if (m.root === '/') rel = path;
  else if (path === m.root || path.startsWith(m.root + '/')) rel = path.slice(m.root.length);
  else rel = ''; // outside the mount's root (a cgroup namespace shows /../..): the mount itself
  if (rel.includes('/..')) rel = '';
  const parts = rel.split('/').filter(Boolean);
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push([m.point.replace(/\/$/, ''), ...parts.slice(0, n)].join('/'));
  return dirs;
}

// Limits: the minimum over the leaf and its ancestors (v1 also hierarchical_memory_limit);
// usage and inactive file pages from the leaf.
export function cgroupStats(read: Reader, c: CgroupDirs): CgroupStats {
  const out: CgroupStats = { version: c.version, path: c.path };
  const [maxFile, highFile, usageFile, inactiveKey] = c.version === 2
    ? ['memory.max', 'memory.high', 'memory.current', 'inactive_file']
    : ['memory.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.usage_in_bytes', 'total_inactive_file'];
  const tighter = (v: number | undefined, cur: number | undefined) => v !== undefined && (cur === undefined || v < cur);
  for (const dir of c.dirs) {
    const max = parseLimitFile(read(`${dir}/${maxFile}`));
    if (tighter(max, out.limit)) { out.limit = max; out.limitFrom = dir; }
    const high = parseLimitFile(read(`${dir}/${highFile}`));
    if (tighter(high, out.high)) out.high = high;
  }
  const leaf = c.dirs[0];
  const usage = parseLimitFile(read(`${leaf}/${usageFile}`));
  if (usage !== undefined) out.usage = usage;
  const stat = parseKeyValues(read(`${leaf}/memory.stat`) ?? '');
  const inactive = stat.get(inactiveKey) ?? stat.get('inactive_file');
  if (inactive !== undefined) out.inactiveFile = inactive;
  if (c.version === 1) {
    const h = stat.get('hierarchical_memory_limit');
    if (tighter(h, out.limit)) { out.limit = h; out.limitFrom = `${leaf} (hierarchical_memory_limit)`; }
  }
  return out;
}

// What the cgroup leaves this process, bytes: its limit less the working set (usage less inactive
// file pages, which the kernel reclaims before it charges a new page against the limit);
// undefined without a limit.
export function cgroupRoom(cg: CgroupStats): number | undefined {
  if (cg.limit === undefined) return undefined;
  return Math.max(0, cg.limit - Math.max(0, (cg.usage ?? 0) - (cg.inactiveFile ?? 0)));
}

function parseLimitFile(t: string | undefined): number | undefined {
  return t === undefined ? undefined : parseLimit(t);
}
