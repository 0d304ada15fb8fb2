// Handoff tickets: what makes a handoff descriptor good for one receipt, and the descriptor's
// wire format. Any holder of LIVE slots (a buffer's view, an SGL) issues one; realms/handoff.ts
// receives it.
//
//   sender                                     receiver (any realm attached to the pool)
//   ticket t = next ticket; tickets[t % N] = t   tickets[t % N] === t (not received, not expired)
//   digest[t % N] = hash(key, what it names)   digest[t % N] matches what the descriptor names
//                                              claim: compareExchange(tickets[t % N], t, 0) === t
//
// A ticket not claimed before N = TICKETS later handoffs expires (its buffers stay in use until
// terminate()). The digest, keyed by a secret of the pool, makes a descriptor whose buffer list was
// changed after it was made fail before anything is taken: otherwise a changed offset could hand
// out a buffer its user still holds.
//
//   control block (control.ts)   last ticket · key · i32 tickets[N] · i32 digests[N]

import type { Arena } from '../core/arena.js';
import { GRANULE } from '../core/granule.js';
import { MemsysError } from '../errors.js';
import { type Control, TICKETS } from './control.js';

/** What sgl.handoff() returns: post it (structured clone) to another realm of the same MMSA and
 * pass it to `mm.receive()` there. */
export interface SGLHandoff extends SlotsHandoff {
  /** Tells an SGL's handoff from a buffer's. */
  kind: 'memsys.sgl';
  /** Bytes written. */
  woff: number;
  /** The read offset. */
  roff: number;
}

/** The part of a handoff (SGLHandoff, BufferHandoff) that names the buffers. Its fields are for
 * `mm.receive()`; pass the object on unchanged. */
export interface SlotsHandoff {
  /** The descriptor's format version. */
  v: 1;
  /** The id of the MMSA the buffers belong to. */
  mm: number;
  /** Every buffer's size class. */
  cls: number;
  /** Lets the handoff be received once. */
  ticket: number;
  /** The arena id of each buffer. */
  arenas: number[];
  /** Each buffer's byte offset in its arena. */
  offs: number[];
  /** The arenas named, for a realm that has not seen them yet. */
  memories: WebAssembly.Memory[];
  /** Arenas the sender knows only by a posted buffer (no memory yet). */
  buffers?: SharedArrayBuffer[];
}

/** What mm.handoff(buf) returns: post it to another realm, and `mm.receive()` it there. */
export interface BufferHandoff extends SlotsHandoff {
  kind: 'memsys.buf';
}
/** A handoff of either kind. */
export type Handoff = BufferHandoff | SGLHandoff;

/** @internal The extent of an SGL's bytes, which its handoff's digest covers too. */
export interface Extent { woff: number; roff: number }

/** @internal Names slots (LIVE, of slab's class) for a handoff and issues its ticket. */
export function packSlots(pool: { id: number; control: Control }, cls: number, arenas: readonly Arena[], offs: readonly number[], extent?: Extent): SlotsHandoff {
  const memories = new Set<WebAssembly.Memory>();
  const buffers = new Set<SharedArrayBuffer>();
  for (const a of arenas) {
    if (a.memory) memories.add(a.memory);
    else buffers.add(a.buffer as SharedArrayBuffer);
  }
  const t = pool.control;
  const ticket = t.nextTicket();
  const ids = arenas.map((a) => a.id);
  Atomics.store(t.digests, ticket % TICKETS, digest(t.key, cls, ticket, ids, offs, extent));
  Atomics.store(t.tickets, ticket % TICKETS, ticket);
  const d: SlotsHandoff = { v: 1, mm: pool.id, cls, ticket, arenas: ids, offs: [...offs], memories: [...memories] };
  if (buffers.size) d.buffers = [...buffers];
  return d;
}

// A keyed 32-bit digest of what a handoff names (murmur3's mixing steps over its words).
function digest(key: number, cls: number, ticket: number, ids: readonly number[], offs: readonly number[], extent?: Extent): number {
  let h = key ^ ids.length;
  const mix = (w: number) => {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  };
  mix(cls);
  mix(ticket);
  for (let i = 0; i < ids.length; i++) { mix(ids[i]); mix(offs[i] / GRANULE); }
  if (extent) { mix(extent.woff); mix(extent.woff / 2 ** 32); mix(extent.roff); mix(extent.roff / 2 ** 32); }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/** @internal The ticket is current (not received, not expired) and was issued for what the
 * descriptor names; throws ERR_MEMSYS_MOVED or `bad(why)`. */
export function checkTicket(c: Control, h: Handoff, extent: Extent | undefined, bad: (why: string) => Error): void {
  const slot = h.ticket % TICKETS;
  if (Atomics.load(c.tickets, slot) !== h.ticket) throw gone(h.ticket);
  if (Atomics.load(c.digests, slot) !== digest(c.key, h.cls, h.ticket, h.arenas, h.offs, extent)) {
    throw bad(`its class, buffers or offsets are not the ones handoff ticket ${h.ticket} was issued for (changed after it was made?)`);
  }
}

/** @internal Claims the ticket: true for exactly one receiver. */
export function claimTicket(c: Control, h: Handoff): void {
  if (Atomics.compareExchange(c.tickets, h.ticket % TICKETS, h.ticket, 0) !== h.ticket) throw gone(h.ticket);
}

function gone(ticket: number): MemsysError {
  return new MemsysError('ERR_MEMSYS_MOVED',
    `handoff ticket ${ticket} was already received, or expired (more than ${TICKETS} handoffs were made after it)`);
}
