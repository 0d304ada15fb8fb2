// The control block: one SharedArrayBuffer per pool, shared by every realm attached to it, holding
// the counters no single arena can (every realm's budget sees the arenas open; handoff tickets are
// good in whichever realm claims them; a realm that dies is known dead to all).
//
//   Int32Array head[8] at byte 0
//   ┌────────────┬────────┬──────┬─────────┬─────┬────────────┬──────────┬───────┐
//   │ last arena │ last   │ open │ retired │ key │ last realm │ keep one │ alive │
//   │ id         │ ticket │      │         │     │ tag        │          │       │
//   └────────────┴────────┴──────┴─────────┴─────┴────────────┴──────────┴───────┘
//   open      arenas open pool-wide (the budget's count)
//   retired   arenas dropped, not given back in place, not yet collected (the budget counts them)
//   key       the secret that keys handoff digests
//   keep one  1 once any realm found that a new arena may fail to map: never drop the last one
//   alive     realms attached and not known gone
//
//   BigInt64 hits[64] at byte 32          allocations served per class, all realms
//   Int32 inUse[64] after them            buffers in users' hands per class, all realms
//   Int32 tickets[TICKETS], digests[TICKETS]   (realms/handoff.ts)
//   Int32 realms[REALM_SLOTS × 2]         per slot (tag mod REALM_SLOTS): the tag of the realm
//                                         there (negative once it is gone), the arenas it retired
//   Int32 orphans[1 + ORPHANS × 3]        (orphans.ts)
//
// No two live realms share a realm slot, so a realm's slot holding anything but its tag means the
// realm is gone.

import { OWNER_MASK } from '../core/arena.js';
import { MemsysError } from '../errors.js';
import { NUM_CLASSES } from '../sizes.js';

/** @internal */
export const TICKETS = 16384;     // more than a channel's ring can hold (~5 900 records)
const ORPHANS = 1024;
const REALM_SLOTS = 4096;  // realms alive at once, at most (the owner table keeps 16 bits of a tag)

const HEAD_WORDS = 8;
const H_ARENA_ID = 0;
const H_TICKET = 1;
const H_OPEN = 2;
const H_RETIRED = 3;
const H_KEY = 4;
const H_REALM = 5;     // tags start at 2; 1 is a bare core's
const H_KEEP_ONE = 6;
const H_ALIVE = 7;

const HITS_AT = HEAD_WORDS * 4;
const IN_USE_AT = HITS_AT + NUM_CLASSES * 8;
const TICKETS_AT = IN_USE_AT + NUM_CLASSES * 4;
const DIGESTS_AT = TICKETS_AT + TICKETS * 4;
const REALMS_AT = DIGESTS_AT + TICKETS * 4;
const ORPHANS_AT = REALMS_AT + REALM_SLOTS * 8;
/** @internal */
export const CONTROL_BYTES = ORPHANS_AT + (1 + ORPHANS * 3) * 4;

/** @internal */
export class Control {
  readonly sab: SharedArrayBuffer | ArrayBuffer;
  private readonly head: Int32Array;
  readonly hits: BigInt64Array;
  readonly inUse: Int32Array;
  readonly tickets: Int32Array;
  readonly digests: Int32Array;
  private readonly realms: Int32Array;
  readonly orphans: Int32Array;

  // A new block (shared unless the pool is single-threaded), or the one a share descriptor brought.
  constructor(sab?: SharedArrayBuffer | ArrayBuffer, shared = true) {
    this.sab = sab ?? (shared ? new SharedArrayBuffer(CONTROL_BYTES) : new ArrayBuffer(CONTROL_BYTES));
    this.head = new Int32Array(this.sab, 0, HEAD_WORDS);
    this.hits = new BigInt64Array(this.sab, HITS_AT, NUM_CLASSES);
    this.inUse = new Int32Array(this.sab, IN_USE_AT, NUM_CLASSES);
    this.tickets = new Int32Array(this.sab, TICKETS_AT, TICKETS);
    this.digests = new Int32Array(this.sab, DIGESTS_AT, TICKETS);
    this.realms = new Int32Array(this.sab, REALMS_AT, REALM_SLOTS * 2);
    this.orphans = new Int32Array(this.sab, ORPHANS_AT, 1 + ORPHANS * 3);
    if (!sab) this.head[H_KEY] = randomId() | 0;
  }

  get key(): number {
    return this.head[H_KEY];
  }

  // ---- arena ids and counts ----------------------------------------------------------------------

  nextArenaId(): number {
    return Atomics.add(this.head, H_ARENA_ID, 1) + 1;
  }

  // Arena ids handed out so far: a higher one names no arena of the pool.
  get lastArenaId(): number {
    return Atomics.load(this.head, H_ARENA_ID);
  }

  nextTicket(): number {
    return (Atomics.add(this.head, H_TICKET, 1) & 0x3fffffff) + 1;
  }

  // Counts one more arena open; returns the count with it.
  countOpen(): number {
    return Atomics.add(this.head, H_OPEN, 1) + 1;
  }

  // Arenas open pool-wide.
  get open(): number {
    return Atomics.load(this.head, H_OPEN);
  }

  uncountOpen(): void {
    Atomics.sub(this.head, H_OPEN, 1);
  }

  // Counts one arena fewer open unless it is the last; false if it is.
  uncountOpenUnlessLast(): boolean {
    for (;;) {
      const n = Atomics.load(this.head, H_OPEN);
      if (n <= 1) return false;
      if (Atomics.compareExchange(this.head, H_OPEN, n, n - 1) === n) return true;
    }
  }

  // Arenas dropped pool-wide whose memory may still be resident.
  get retired(): number {
    return Math.max(0, Atomics.load(this.head, H_RETIRED));
  }

  // One more (or, n = -1, one fewer) arena retired by realm `tag`.
  retire(tag: number, n: 1 | -1): void {
    const at = (tag % REALM_SLOTS) * 2;
    if (Atomics.load(this.realms, at) !== tag) return; // gone: its count went with it
    Atomics.add(this.realms, at + 1, n);
    Atomics.add(this.head, H_RETIRED, n);
  }

  get keepOne(): boolean {
    return Atomics.load(this.head, H_KEEP_ONE) === 1;
  }

  // Mapping a new arena may fail (an address-space limit, or a mapping failed): from now on the
  // pool never drops its last arena, whichever realm drops it.
  setKeepOne(): void {
    Atomics.store(this.head, H_KEEP_ONE, 1);
  }

  // ---- realms --------------------------------------------------------------------------------------

  // A new realm's tag, in a slot no live realm holds (a gone realm's slot is reused).
  newRealm(): number {
    for (let tries = 0; tries <= REALM_SLOTS; tries++) {
      const tag = (Atomics.add(this.head, H_REALM, 1) >>> 0) % 0x7ffffffd + 2;
      const at = (tag % REALM_SLOTS) * 2;
      const was = Atomics.load(this.realms, at);
      if (was > 0 || Atomics.compareExchange(this.realms, at, was, tag) !== was) continue;
      Atomics.add(this.head, H_ALIVE, 1);
      return tag;
    }
    throw new MemsysError('ERR_MEMSYS_STATE', `more than ${REALM_SLOTS} realms are attached to this pool at once`);
  }

  // Realm `tag` is gone: it no longer counts as alive, nor do the arenas it retired (its
  // references to them went with it).
  setDead(tag: number): void {
    const at = (tag % REALM_SLOTS) * 2;
    if (Atomics.load(this.realms, at) !== tag) return;
    const retired = Atomics.exchange(this.realms, at + 1, 0); // before the slot can be reused
    if (Atomics.compareExchange(this.realms, at, tag, -tag) !== tag) {
      Atomics.add(this.realms, at + 1, retired);
      return;
    }
    Atomics.sub(this.head, H_ALIVE, 1);
    Atomics.sub(this.head, H_RETIRED, retired);
  }

  // A live realm always holds its slot: an issued tag whose slot holds anything else is gone (its
  // slot may be another realm's by now).
  isDead(tag: number): boolean {
    return tag >= 2 && tag < Atomics.load(this.head, H_REALM) + 2 && Atomics.load(this.realms, (tag % REALM_SLOTS) * 2) !== tag;
  }

  // The low 16 bits of a gone realm's tag (what the owner table keeps) name no live realm.
  ownerFree(tag: number): boolean {
    const now = Atomics.load(this.realms, (tag % REALM_SLOTS) * 2);
    return now <= 0 || (now & OWNER_MASK) !== (tag & OWNER_MASK);
  }

  // No realm but `tag` is alive in the pool (every other tag handed out is marked dead).
  alone(tag: number): boolean {
    return Atomics.load(this.head, H_ALIVE) === 1 && !this.isDead(tag);
  }
}

/** @internal */
export function randomId(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) return c.getRandomValues(new Uint32Array(1))[0] || 1;
  return (Math.random() * 0xffffffff) >>> 0 || 1;
}
