// The budget controller: how large the pool should be, following demand as "memory on demand"
// sizes a guest (a Xen cloud's MOD agent; reference/sources) and Xen's self-balloon sizes it:
// grow at once, shrink slowly, stay between a floor and a ceiling.
//
//   demand   = bytes in use (every realm) + reserve          never the pool's own idle free
//              + the magazines of classes allocated          memory: a controller that counts
//                from since the last pass                    what it holds as free grows itself
//   target'  = demand                    if demand > target   without end (the article's
//            = target                    for `hold` passes    feedback loop)
//            = target − (target − demand) · shrink  after
//   target'  = clamp(target', floor, ceiling(pressure))
//
// The magazines of active classes are demand because a pass reads what is out at one instant: a
// steady stream of requests each done before the next arrives reads as nothing in use, and a
// target that followed that reading would drop the arena every request is about to map again.
// A magazine is bounded and is flushed once its class goes idle, so this adds no feedback.
//
// `hold` is the anti-thrash: demand that drops and comes back within `hold` passes (a request
// rate that oscillates) leaves the target, and so the pool's arenas, where they are.
//
//   ceiling(pressure) = ceiling × 1, 0.9, 0.75, 0.5, 0.25 for Low … OOM
//
// The MMSA lets its pool grow to the target and no further than the effective ceiling (a new
// arena above it is refused with ERR_MEMSYS_BUDGET), and gives back what the pool holds above the
// target at each housekeeping pass (empty arenas at once, free buffers to depth 0).

import { invalidArg } from '../errors.js';
import type { PressureLevel } from './pressure.js';

/** How an MMSA sizes its pool on demand (the MMSA's `budget` option). Every field is optional. */
export interface BudgetOptions {
  /** The pool is never sized below this, bytes. Default 0. */
  floor?: number;
  /** Never above this, bytes (lowered under pressure). Default: no ceiling. */
  ceiling?: number;
  /** Bytes of free buffers kept ready on top of what is in use. Default 0. */
  reserve?: number;
  /** Fraction of the excess over demand given up per pass, 0 < shrink ≤ 1. Default 1/8 (Xen's
   * self-balloon down-hysteresis). */
  shrink?: number;
  /** Passes demand must stay below the target before it shrinks. Default 3. */
  hold?: number;
}

const PRESSURE_SCALE = [1, 0.9, 0.75, 0.5, 0.25];

/**
 * The pool size a budget aims at, pass by pass: it follows demand (bytes in use plus the reserve)
 * up at once, and down by `shrink` of the excess per pass once demand has stayed below it for
 * `hold` passes, between the floor and the ceiling (lowered under pressure). An MMSA with a
 * `budget` option runs one at each housekeeping pass (`mm.budget` shows its figures).
 */
export class BudgetController {
  /** The smallest target, bytes. */
  readonly floor: number;
  /** The largest target at Low pressure, bytes; Number.MAX_SAFE_INTEGER for none. */
  readonly ceiling: number;
  /** Bytes of free buffers kept on top of what is in use. */
  readonly reserve: number;
  /** Fraction of the excess over demand given up per pass. */
  readonly shrink: number;
  /** Passes demand must stay below the target before it shrinks. */
  readonly hold: number;
  /** The pool size aimed at now, bytes; starts at the floor. */
  target: number;
  private below = 0; // passes since demand last reached the target

  /** Throws ERR_MEMSYS_INVALID_ARG for an option that is not an object, a size that is not a
   * non-negative integer of bytes, a ceiling below the floor, a shrink outside 0 < shrink ≤ 1, or a
   * hold that is not a non-negative integer. */
  constructor(o: BudgetOptions = {}) {
    if (typeof o !== 'object' || o === null) throw invalidArg('option budget', o, 'must be an object');
    const bytes = (k: 'floor' | 'ceiling' | 'reserve', dflt: number) => {
      const v = o[k];
      if (v === undefined) return dflt;
      if (!Number.isSafeInteger(v) || v < 0) throw invalidArg(`option budget.${k}`, v, 'must be a non-negative integer number of bytes');
      return v;
    };
    this.floor = bytes('floor', 0);
    this.ceiling = bytes('ceiling', Number.MAX_SAFE_INTEGER);
    this.reserve = bytes('reserve', 0);
    if (this.ceiling < this.floor) throw invalidArg('option budget.ceiling', this.ceiling, `must not be below the floor (${this.floor})`);
    const s = o.shrink ?? 1 / 8;
    if (typeof s !== 'number' || !(s > 0 && s <= 1)) throw invalidArg('option budget.shrink', s, 'must be a fraction 0 < shrink <= 1');
    this.shrink = s;
    const h = o.hold ?? 3;
    if (!Number.isSafeInteger(h) || h < 0) throw invalidArg('option budget.hold', h, 'must be a non-negative integer number of passes');
    this.hold = h;
    this.target = this.floor;
  }

  /** The ceiling under pressure `p`, bytes: the ceiling × 1, 0.9, 0.75, 0.5, 0.25 for Low … OOM. */
  ceilingAt(p: PressureLevel): number {
    return this.ceiling === Number.MAX_SAFE_INTEGER ? this.ceiling : Math.floor(this.ceiling * PRESSURE_SCALE[p]);
  }

  /** One pass: the new target, bytes, for `inUse` bytes in use at pressure `p` (also kept in
   * `target`). An MMSA's housekeeper counts the magazines of its active classes in `inUse`. */
  update(inUse: number, p: PressureLevel): number {
    const demand = inUse + this.reserve;
    let t = this.target;
    if (demand >= this.target) {
      t = demand;
      this.below = 0;
    } else if (++this.below > this.hold) {
      t = this.target - (this.target - demand) * this.shrink;
    }
    this.target = Math.min(Math.max(Math.ceil(t), this.floor), Math.max(this.floor, this.ceilingAt(p)));
    return this.target;
  }
}
