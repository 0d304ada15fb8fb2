// What an MMSA tells its listeners (it is an EventTarget), and the report of a housekeeping pass
// that its 'tick' events carry.

import type { PressureLevel } from './policy/pressure.js';

/** What one housekeeping pass did. */
export interface HousekeepReport {
  pressure: PressureLevel;
  released: number;       // free buffers whose runs went back to the arenas' free pages
  flushed: number;        // buffers flushed from this realm's magazines
  dropped: number;        // arenas closed and let go
  returned: number;       // bytes of free pages given back to the kernel in place (native page helper)
  arenas: number;         // arenas left
  bytes: number;          // bytes the pool holds after it
  target?: number;        // the budget's target, bytes (with a budget)
  next?: number;          // ms to the next tick (timer ticks only)
}

/** Events an MMSA emits (it is an EventTarget): `event.detail` carries the figures. */
export type MemsysEventType = 'tick' | 'trim' | 'arena-added' | 'arena-dropped' | 'pressure' |
  'realm-dead' | 'arena-recovered' | 'arena-quarantined';

export class MemsysEvent<T = unknown> extends Event {
  readonly detail: T;
  constructor(type: MemsysEventType, detail: T) {
    super(type);
    this.detail = detail;
  }
}
