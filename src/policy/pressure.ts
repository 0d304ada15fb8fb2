// Memory pressure levels, computed as AIStore's memsys computes them, with two further inputs.
//
//   inputs    free       min(free + cache, available), bounded by cgroup and commit headroom
//             available  MemAvailable, bounded likewise ("ActualFree" in AIStore)
//             minFree    the floor (minfree.ts); lowWM the watermark set at init (below)
//             crit       swap criticality 0..4: +1 on each reading where swap use grew, −1 otherwise
//             oom        an arena could not be created since memory was last given back
//
//   decision, first match:          oom → OOM · crit > 2 → OOM · crit > 1 → Extreme ·
//     available ≤ minFree → Extreme · crit > 0 → High · free ≤ minFree → High ·
//     free > lowWM + lowWM/16 → Low · x = (free − minFree)·100 / (lowWM − minFree): x < 40 → High,
//     else Moderate
//
// PSI raises the level (never lowers it): memory `full` avg10 ≥ 10 % → Extreme, `full` avg10 ≥ 1 %
// or `some` avg10 ≥ 10 % → High, `some` avg10 ≥ 1 % → Moderate. (systemd-oomd kills at full 60 %
// for 30 s; GLib's monitor calls some 5 % over 2 s medium.) Strict overcommit enters through free
// and available: the provider bounds both by the commit headroom.

import type { MemStats } from '../platform/host.js';
import { MiB } from '../sizes.js';

/** The pressure levels, lowest first, as `mm.pressure()` returns them: compare them as numbers. */
export const Pressure = { Low: 0, Moderate: 1, High: 2, Extreme: 3, OOM: 4 } as const;
/** A pressure level, 0 (Low) … 4 (OOM). */
export type PressureLevel = (typeof Pressure)[keyof typeof Pressure];
const NAMES = ['low', 'moderate', 'high', 'extreme', 'OOM'] as const;
/** A pressure level's name, for messages: 'low' … 'OOM'. */
export type PressureName = (typeof NAMES)[number];

/** The name of level `p`: 'low', 'moderate', 'high', 'extreme' or 'OOM'. */
export function pressureName(p: PressureLevel): PressureName {
  return NAMES[p];
}

/** @internal */
export const SWAP_CRIT_MAX = 4;
const HIGH_LOW_THRESHOLD = 40;
const WM_FLOOR = 128 * MiB;

/** The low watermark, bytes (free memory above it, and a sixteenth more, is Low pressure), from
 * the minimum free memory and the memory free at init, both bytes: AIStore's 7/16 of their sum,
 * at least minFree + 128 MiB; minFree + 128 MiB when free memory is already short. */
// The 128 MiB is capped at an eighth of the free memory, so that a small budget (a browser page's
// 64 MiB) still has a Low level; from 1 GiB free on it is AIStore's rule exactly.
export function lowWatermark(minFree: number, freeAtInit: number): number {
  const floor = minFree + Math.min(WM_FLOOR, freeAtInit / 8);
  if (freeAtInit < Math.min(2 * minFree, minFree + 1536 * MiB)) return floor;
  const sum = minFree + freeAtInit;
  return Math.max(sum / 2 - sum / 16, floor);
}

// The swap trend: criticality rises while swap use grows, falls otherwise.
/** @internal */
export class SwapTrend {
  crit = 0;
  private last: number | undefined;

  update(used: number | undefined): number {
    if (used === undefined) return this.crit;
    if (this.last !== undefined) {
      this.crit = used > this.last ? Math.min(SWAP_CRIT_MAX, this.crit + 1) : Math.max(0, this.crit - 1);
    }
    this.last = used;
    return this.crit;
  }
}

/** What pressureLevel() weighs besides the host's figures. */
export interface PressureInputs {
  /** The minimum free memory, bytes. */
  minFree: number;
  /** The low watermark, bytes (lowWatermark()). */
  lowWM: number;
  /** Swap criticality 0 … 4: rises by one at each reading where swap use grew, falls otherwise. */
  crit: number;
  /** An arena could not be created since memory was last given back. */
  oom: boolean;
}

/**
 * The pressure level for host figures `s` (undefined: none known) and inputs `p`, as AIStore
 * computes it: OOM when `oom` or crit > 2; Extreme when crit > 1 or available ≤ minFree; High
 * when crit > 0, free ≤ minFree, or free lies less than 40 % of the way from minFree to the
 * watermark; Low when free > lowWM + lowWM/16; Moderate otherwise. PSI stalls raise it (never
 * lower it): full avg10 ≥ 10 % Extreme, full ≥ 1 % or some ≥ 10 % High, some ≥ 1 % Moderate.
 */
export function pressureLevel(s: MemStats | undefined, p: PressureInputs): PressureLevel {
  if (p.oom || p.crit > 2) return Pressure.OOM;
  if (p.crit > 1) return Pressure.Extreme;
  if (!s) return p.crit > 0 ? Pressure.High : Pressure.Low;
  return Math.max(aisLevel(s, p), psiLevel(s)) as PressureLevel;
}

function aisLevel(s: MemStats, p: PressureInputs): PressureLevel {
  if ((s.available ?? s.free) <= p.minFree) return Pressure.Extreme;
  if (p.crit > 0 || s.free <= p.minFree) return Pressure.High;
  if (s.free > p.lowWM + p.lowWM / 16) return Pressure.Low;
  const x = ((s.free - p.minFree) * 100) / Math.max(1, p.lowWM - p.minFree);
  return x < HIGH_LOW_THRESHOLD ? Pressure.High : Pressure.Moderate;
}

function psiLevel(s: MemStats): PressureLevel {
  const some = s.psi?.some.avg10 ?? 0;
  const full = s.psi?.full?.avg10 ?? 0;
  if (full >= 10) return Pressure.Extreme;
  if (full >= 1 || some >= 10) return Pressure.High;
  if (some >= 1) return Pressure.Moderate;
  return Pressure.Low;
}
