// What an MMSA tells its listeners (it is an EventTarget), and the report of a housekeeping pass
// that its 'tick' events carry.

import type { PressureLevel } from './policy/pressure.js';

/** What one housekeeping pass did: what `mm.housekeep()` and `mm.freeMem()` return and a 'tick'
 * event carries. */
export interface HousekeepReport {
  /** The pressure level the pass acted on. */
  pressure: PressureLevel;
  /** Free buffers whose runs went back to the arenas' free pages. */
  released: number;
  /** Buffers flushed from this realm's magazines. */
  flushed: number;
  /** Arenas closed and let go. */
  dropped: number;
  /** Bytes of free pages given back to the kernel in place (0 without the native page helper). */
  returned: number;
  /** Arenas left. */
  arenas: number;
  /** Bytes the pool holds after the pass. */
  bytes: number;
  /** The budget's target, bytes (with a budget only). */
  target?: number;
  /** Milliseconds to the next tick (timer ticks only). */
  next?: number;
}

/**
 * Events an MMSA emits (it is an EventTarget), and what `event.detail` carries:
 * - `'tick'`: a HousekeepReport, after each housekeeping pass;
 * - `'trim'`: `{ size, depth, released }`, a class's free buffers reduced to `depth`;
 * - `'arena-added'`, `'arena-dropped'`: `{ id, bytes, arenas }` (dropped: also `returned`);
 * - `'pressure'`: `{ from, to }`, the level changed;
 * - `'realm-dead'`: `{ realm, returned, held }`, another realm of the pool died: the `returned`
 *   buffers it had cached went back; `held` bytes of buffers it had in use stay out until whoever
 *   holds them frees them;
 * - `'arena-recovered'`, `'arena-quarantined'`: `{ id, realm }`, an arena a dead realm held
 *   locked was checked and used on, or found broken and set aside;
 * - `'arena-refused'`: `{ id, code, message }`, an arena another realm announced was made by a
 *   core of another ABI version (ERR_MEMSYS_ABI): this realm does not touch it.
 */
export type MemsysEventType = 'tick' | 'trim' | 'arena-added' | 'arena-dropped' | 'pressure' |
  'realm-dead' | 'arena-recovered' | 'arena-quarantined' | 'arena-refused';

/** The events an MMSA dispatches: `mm.addEventListener(type, (e) => e.detail)`. */
export class MemsysEvent<T = unknown> extends Event {
  /** The event's figures (a HousekeepReport for 'tick'). */
  readonly detail: T;
  /** An event of `type` carrying `detail`. */
  constructor(type: MemsysEventType, detail: T) {
    super(type);
    this.detail = detail;
  }
}
