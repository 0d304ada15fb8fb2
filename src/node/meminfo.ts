// Host memory from /proc/meminfo, as AIStore's `sys` reads it: free counts reclaimable page
// cache, bounded by MemAvailable. Re-read on every call (MemTotal changes under a balloon).
// Issue #4 extends this with cgroups, swap, PSI and overcommit.

import { readFileSync } from 'node:fs';
import type { HostMemory } from '../host.js';

export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out.set(m[1], Number(m[2]) * (line.includes('kB') ? 1024 : 1));
  }
  return out;
}

export function hostMemory(root = ''): HostMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`${root}/proc/meminfo`, 'utf8');
  } catch {
    return undefined;
  }
  const m = parseMeminfo(text);
  const total = m.get('MemTotal');
  const free = m.get('MemFree');
  if (total === undefined || free === undefined) return undefined;
  const cache = (m.get('Cached') ?? 0) + (m.get('Buffers') ?? 0);
  const available = m.get('MemAvailable') ?? free + cache;
  return { total, free: Math.min(free + cache, available) };
}
