// Parsers for the /proc files memsys reads. Each takes the file's text and returns what it could
// make of it; nothing here throws on odd input (a field that does not parse is left out).

import type { PsiLine } from '../platform/host.js';

/** The fields of /proc/meminfo's text, "Key:   123 kB" → bytes (values without a unit, such as
 * HugePages_Total, as they are). Lines that do not parse are skipped. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)(\s+kB)?/.exec(line);
    if (m) out.set(m[1], Number(m[2]) * (m[3] ? 1024 : 1));
  }
  return out;
}

/** The `some` and `full` lines of /proc/pressure/memory's or a cgroup's memory.pressure text
 * ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0"); a line that does not parse is left out. */
export function parsePsi(text: string): { some?: PsiLine; full?: PsiLine } {
  const out: { some?: PsiLine; full?: PsiLine } = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full)\s+avg10=([\d.]+)\s+avg60=([\d.]+)\s+avg300=([\d.]+)\s+total=(\d+)/.exec(line);
    if (m) out[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), total: Number(m[5]) };
  }
  return out;
}

/** A cgroup limit file's text as bytes; undefined for "max", for v1's unlimited values (2^63 −
 * 4096 and the like) and for anything that is not a number. */
// The unlimited values lie beyond 2^53: compared as BigInt before any conversion.
export function parseLimit(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = BigInt(t);
  return n >= 1n << 62n ? undefined : Number(n);
}

// "key value" lines (memory.stat): values as numbers; huge ones (v1's unlimited
// hierarchical_memory_limit) as undefined through parseLimit.
/** @internal */
export function parseKeyValues(text: string): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)\s*$/.exec(line);
    if (m) out.set(m[1], parseLimit(m[2]));
  }
  return out;
}

// /proc/self/cgroup lines: "hierarchy-id:controllers:path".
/** @internal */
export function parseProcCgroup(text: string): { id: number; controllers: string[]; path: string }[] {
  const out: { id: number; controllers: string[]; path: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m) out.push({ id: Number(m[1]), controllers: m[2] ? m[2].split(',') : [], path: m[3] });
  }
  return out;
}

/** @internal */
export interface Mount { root: string; point: string; fstype: string; superopts: string[] }

// /proc/self/mountinfo: "id parent maj:min root mountpoint opts [optional…] - fstype source superopts".
/** @internal */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const a = line.slice(0, dash).split(' ');
    const b = line.slice(dash + 3).split(' ');
    if (a.length < 5 || b.length < 3) continue;
    out.push({ root: unescape(a[3]), point: unescape(a[4]), fstype: b[0], superopts: b[2].split(',') });
  }
  return out;
}

// Mount paths escape space, tab, newline and backslash as octal (\040).
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
