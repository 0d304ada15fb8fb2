// Housekeeping: what an MMSA does on its own timer to give memory back, as AIStore's MMSA does.
//
//   next tick in   Low: 2 × timeIval · Moderate: timeIval · High and above: timeIval / 2,
//                  with AIStore's jitter d + n·d/128, n = (now & 7) − 4 (−3.1 % … +2.3 %)
//
//   each tick      pressure (and the swap trend) → at Low: idle classes by tier; above Low:
//                  every class to the level's depth → magazines idle in this realm flushed →
//                  arenas with nothing out for 180 s (at High and above: at once) closed and
//                  dropped (the only way RSS goes down: linear memory cannot shrink, a whole
//                  WebAssembly.Memory can be let go)
//
//   idle tiers     a class with no allocation (in any realm) for > 180 s: all free buffers back
//   (AIStore)      (depth 0); > 90 s: keep 32; > 45 s: keep 64
//   depth by level Moderate 64 · High 64 then 32 on later ticks · Extreme and OOM 4
//
// "Depth" is the free buffers a class keeps ready: this realm's magazine plus free slots in
// carved runs (the core's trim releases whole runs beyond it).

import { Pressure, type PressureLevel } from './pressure.js';

export const IDLE_TIERS: readonly (readonly [idleMs: number, depth: number])[] = [[180_000, 0], [90_000, 32], [45_000, 64]];
// An arena with nothing out is let go once it has stayed so for the last tier's time (its free
// buffers would all be released by then anyway); at High and above, at once.
export const ARENA_IDLE_MS = IDLE_TIERS[0][0];
export const DEPTH_MODERATE = 64;
export const DEPTH_HIGH_MIN = 32;
export const DEPTH_EXTREME = 4;

export function nextInterval(p: PressureLevel, timeIval: number, now: number): number {
  const d = p === Pressure.Low ? 2 * timeIval : p === Pressure.Moderate ? timeIval : timeIval / 2;
  return d + ((Math.floor(now) & 7) - 4) * (d / 128);
}

// The depth every class is reduced to above Low; `high` is the depth High used last tick.
export function depthFor(p: PressureLevel, high: number): number {
  if (p >= Pressure.Extreme) return DEPTH_EXTREME;
  if (p === Pressure.High) return Math.max(high / 2, DEPTH_HIGH_MIN);
  return DEPTH_MODERATE;
}

// The depth an idle class is reduced to at Low, or undefined while it is not idle enough.
export function idleDepth(idleMs: number): number | undefined {
  for (const [ms, depth] of IDLE_TIERS) if (idleMs > ms) return depth;
  return undefined;
}
