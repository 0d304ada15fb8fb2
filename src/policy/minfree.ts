// Minimum free memory, with the precedence of AIStore's memsys README:
//   1. AIS_MINMEM_FREE (a size such as 2GiB)
//   2. AIS_MINMEM_PCT_TOTAL and/or AIS_MINMEM_PCT_FREE (% of total, % of free at init)
//   3. the fields minFree, minPctTotal, minPctFree
//   4. the built-in 1.5 GiB
// Where one tier gives several values, the smallest wins (as AIStore's code does). Percentages
// need the host's figures; without a host (a browser with no budget) they cannot apply.

import { MemsysError } from '../errors.js';
import type { MemStats } from '../platform/host.js';
import { GiB, formatBytes, parseSize } from '../sizes.js';

/** @internal */
export const DEFAULT_MIN_FREE = 1.5 * GiB;

/** @internal */
export interface MinFreeFields {
  minFree?: number;
  minPctTotal?: number;
  minPctFree?: number;
}

/** @internal */
export interface MinFree {
  bytes: number;
  source: string; // which rule set it, for stats and messages
}

function envError(name: string, value: string, rule: string): MemsysError {
  return new MemsysError('ERR_MEMSYS_ENV', `cannot parse ${name} ${JSON.stringify(value)}: ${rule}`);
}

function envPct(env: Record<string, string | undefined>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\s*\d+\s*$/.test(v)) throw envError(name, v, 'expected an integer percentage 0..100');
  const n = Number(v);
  if (n > 100) throw envError(name, v, 'a percentage must be within 0..100');
  return n;
}

function smallest(values: (number | undefined)[]): number | undefined {
  const given = values.filter((v): v is number => v !== undefined && v > 0);
  return given.length ? Math.min(...given) : undefined;
}

// A variable that does not parse is skipped as if unset (the next rule applies, as AIStore falls
// back) and reported in `error`, the first one's ERR_MEMSYS_ENV.
/** @internal */
export function minFree(env: Record<string, string | undefined>, f: MinFreeFields, host: MemStats | undefined): MinFree & { error?: MemsysError } {
  let error: MemsysError | undefined;
  const found = (bytes: number, source: string) => (error ? { bytes, source, error } : { bytes, source });
  const tryEnv = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof MemsysError)) throw e;
      error ??= e;
      return undefined;
    }
  };
  const raw = env.AIS_MINMEM_FREE;
  const fixed = raw === undefined || raw === '' ? undefined : tryEnv(() => {
    const n = parseSize(raw);
    if (n === undefined) throw envError('AIS_MINMEM_FREE', raw, 'expected a size such as 2GiB, 512MiB or a number of bytes');
    return n;
  });
  if (fixed !== undefined) return found(fixed, 'AIS_MINMEM_FREE');
  const pctTotal = tryEnv(() => envPct(env, 'AIS_MINMEM_PCT_TOTAL'));
  const pctFree = tryEnv(() => envPct(env, 'AIS_MINMEM_PCT_FREE'));
  if (pctTotal !== undefined || pctFree !== undefined) {
    const n = smallest([pct(host?.total, pctTotal), pct(host?.free, pctFree)]);
    return found(n ?? 0, pctTotal !== undefined ? 'AIS_MINMEM_PCT_TOTAL' : 'AIS_MINMEM_PCT_FREE');
  }
  const n = smallest([f.minFree, pct(host?.total, f.minPctTotal), pct(host?.free, f.minPctFree)]);
  if (n !== undefined) return found(n, 'options');
  return found(host ? DEFAULT_MIN_FREE : 0, host ? 'default' : 'no host memory figures');
}

function pct(of: number | undefined, p: number | undefined): number | undefined {
  return of === undefined || p === undefined ? undefined : Math.floor((of * p) / 100);
}

/** @internal */
export function insufficient(free: number, min: MinFree): MemsysError {
  return new MemsysError('ERR_MEMSYS_INSUFFICIENT_MEMORY',
    `insufficient free memory ${formatBytes(free)}, minimum required ${formatBytes(min.bytes)} (set by ${min.source}; ` +
    'lower it with AIS_MINMEM_FREE or the minFree / minPctTotal / minPctFree options)');
}
