// What a pool is, fixed when it is made (or attached), but for debug mode: the figures every part
// of it reads.

import type { BudgetController } from '../policy/budget.js';
import type { Control } from './control.js';
import type { MadviseMode } from './giveback.js';

/** @internal */
export interface PoolConfig {
  /** Debug mode: decided at init (the option, else AIS_DEBUG), before the first slab is made. */
  debug: boolean;
  readonly name: string;
  readonly id: number;             // the pool's id, the same in every realm (arena headers name it)
  readonly realm: number;          // this realm's tag (lock words, owner table)
  readonly control: Control;
  readonly shared: boolean;
  readonly small: boolean;
  readonly arenaSize: number;
  readonly magazineBytes: number;
  readonly madvise: MadviseMode;
  readonly budget: BudgetController | undefined;
}
