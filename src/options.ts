// An MMSA's options and environment: what each means, its default, and the checks that turn a bad
// value into a typed error naming it (before anything is made).

import { WASM_PAGE } from './core/arena.js';
import { MemsysError, MemsysTypeError, invalidArg, invalidSize, isIntIn } from './errors.js';
import { type MemStatsProvider, isNode, sharedAvailable } from './platform/host.js';
import { type BudgetOptions, BudgetController } from './policy/budget.js';
import type { MadviseMode } from './pool/giveback.js';
import { GiB, KiB, MiB, exactClass } from './sizes.js';

/** How an MMSA is made: `new MMSA(options)`. Only `name` is required. */
export interface MMSAOptions {
  /** The pool's name, in errors, statistics and metrics. */
  name: string;
  /** Housekeeping interval, ms (AIStore's TimeIval), 1 ms … 24 h. Default 3 minutes. */
  timeIval?: number;
  /** Minimum free host memory, bytes: below it pressure is High or worse. */
  minFree?: number;
  /** Minimum free memory as a percentage of total memory. */
  minPctTotal?: number;
  /** Minimum free memory as a percentage of the memory free at init. */
  minPctFree?: number;
  /** Bytes per arena, a multiple of 64 KiB from 1 MiB to 4 GiB. Default 64 MiB (Node), 16 MiB elsewhere. */
  arenaSize?: number;
  /** A small-buffer MMSA: default buffer 1 KiB, and 4 KiB is the small class. */
  small?: boolean;
  /** Size of `alloc()`'s buffers, a slab size. Default 32 KiB, or 1 KiB for a small MMSA. */
  defaultSize?: number;
  /** Shared arenas (workers). Default: wherever SharedArrayBuffer is usable. */
  shared?: boolean;
  /** Debug mode: DEADBEEF-filled free buffers, every invariant checked on every call. Default: AIS_DEBUG. */
  debug?: boolean;
  /** Bytes a magazine may cache per class, per realm, 0 … 1 GiB. Default 1 MiB. */
  magazineBytes?: number;
  /** How free pages go back to the kernel where memsys/node's native page helper is built:
   * 'dontneed' (default: at once, the cgroup's usage falls now; a page faults in zeroed when next
   * used) or 'free' (MADV_FREE: the kernel takes the pages only when it needs memory, so reuse
   * soon after costs no fault, but the usage stays charged until then). */
  madvise?: MadviseMode;
  /** Run housekeeping on a timer (unref'd in Node). Default true; `mm.housekeep()` runs one pass. */
  housekeeping?: boolean;
  /** Also run a housekeeping pass as soon as the host reports memory pressure, between ticks:
   * in Node, a PSI trigger on the process's cgroup (or the system) through memsys/node's sidecar,
   * which it starts. Default false; where there is no source of events, the timer alone runs.
   * It adds to the timer: with `housekeeping: false` there are none. */
  pressureEvents?: boolean;
  /** Size the pool on demand between a floor and a ceiling (policy/budget.ts). Default: no budget. */
  budget?: BudgetOptions;
  /** Host memory figures for init's minimum-free check and pressure. Default: memsys/node's reader, if loaded. */
  memStats?: MemStatsProvider;
  /** Environment (AIS_MINMEM_*, AIS_DEBUG). Default: process.env where there is one. */
  env?: Record<string, string | undefined>;
  /** Clock, ms, for idle times. Default performance.now. */
  now?: () => number;
}

/** @internal */
export type Env = Record<string, string | undefined>;

/** @internal The options checked, with their defaults filled in. */
export interface Resolved {
  name: string;
  small: boolean;
  timeIval: number;
  arenaSize: number;
  defaultSize: number;
  magazineBytes: number;
  madvise: MadviseMode;
  shared: boolean;
  budget: BudgetController | undefined;
  now: () => number;
}

const MIN_ARENA = 1 * MiB;
const MAX_ARENA = 4 * GiB;
const DEFAULT_TIME_IVAL = 3 * 60_000;

/** @internal */
export function resolveOptions(options: MMSAOptions): Resolved {
  if (typeof options !== 'object' || options === null) {
    throw invalidArg('options', options, 'must be an object with at least a name');
  }
  const o = options as unknown as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw invalidArg('option name', o.name, 'must be a non-empty string');
  for (const k of ['small', 'shared', 'debug', 'housekeeping', 'pressureEvents'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidArg(`option ${k}`, o[k], 'must be a boolean');
  }
  const small = options.small === true;
  const timeIval = optInt(o, 'timeIval', 1, 24 * 3600_000) ?? DEFAULT_TIME_IVAL;
  optInt(o, 'minFree', 0, Number.MAX_SAFE_INTEGER);
  optInt(o, 'minPctTotal', 0, 100);
  optInt(o, 'minPctFree', 0, 100);
  const arenaSize = optInt(o, 'arenaSize', MIN_ARENA, MAX_ARENA) ?? (isNode() ? 64 * MiB : 16 * MiB);
  if (arenaSize % WASM_PAGE !== 0) throw invalidSize('option arenaSize', arenaSize, 'must be a multiple of 64 KiB (65536)');
  const defaultSize = options.defaultSize ?? (small ? 1 * KiB : 32 * KiB);
  exactClass(defaultSize, small);
  const magazineBytes = optInt(o, 'magazineBytes', 0, 1 * GiB) ?? 1 * MiB;
  for (const k of ['memStats', 'now'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function') throw invalidArg(`option ${k}`, o[k], 'must be a function');
  }
  if (o.env !== undefined) {
    const env = o.env as Record<string, unknown>;
    if (typeof env !== 'object' || env === null) throw invalidArg('option env', env, 'must be an object of strings');
    for (const [k, v] of Object.entries(env)) {
      if (v !== undefined && typeof v !== 'string') throw invalidArg(`option env.${k}`, v, 'must be a string, as an environment variable is');
    }
  }
  if (o.madvise !== undefined && o.madvise !== 'dontneed' && o.madvise !== 'free') throw invalidArg('option madvise', o.madvise, "must be 'dontneed' or 'free'");
  const budget = options.budget === undefined ? undefined : new BudgetController(options.budget);
  if (budget && budget.ceiling < arenaSize) {
    throw invalidArg('option budget.ceiling', budget.ceiling, `must hold at least one arena (arenaSize ${arenaSize})`);
  }
  if (options.shared === true && !sharedAvailable()) {
    throw new MemsysTypeError('ERR_MEMSYS_STATE',
      'option shared true needs SharedArrayBuffer, which this page lacks (it must be cross-origin isolated)');
  }
  return {
    name: o.name, small, timeIval, arenaSize, defaultSize, magazineBytes, madvise: options.madvise ?? 'dontneed',
    shared: options.shared ?? sharedAvailable(), budget, now: options.now ?? (() => performance.now()),
  };
}

function optInt(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isIntIn(v, min, max)) throw invalidSize(`option ${key}`, v, `must be an integer from ${min} to ${max}`);
  return v;
}

// AIS_DEBUG as in AIStore: "memsys", "memsys=4", or a comma list of module=level.
/** @internal */
export function debugFromEnv(env: Env): boolean {
  const v = env.AIS_DEBUG;
  if (v === undefined || v.trim() === '') return false;
  let on = false;
  for (const part of v.split(',')) {
    const m = /^\s*([\w.-]+)\s*(?:=\s*(\S*))?\s*$/.exec(part);
    if (!m || (m[2] !== undefined && !/^\d+$/.test(m[2]))) {
      throw new MemsysError('ERR_MEMSYS_ENV',
        `cannot parse AIS_DEBUG ${JSON.stringify(v)}: expected a comma list of module or module=level, such as memsys=4`);
    }
    if (m[1] === 'memsys' && (m[2] === undefined || Number(m[2]) > 0)) on = true;
  }
  return on;
}
