// Handoff: moving buffers (one, or an SGL's) to another realm of the same MMSA without copying.
//
// A handoff names each buffer by arena id and offset, and carries a ticket:
//
//   sender                                     receiver (any realm attached to the MMSA)
//   check: each view LIVE, ours, this slab     check: MMSA id, class, no buffer twice, each one
//   ticket t = ++head[1]; tickets[t % N] = t     LIVE of that class, digest[t % N] matches
//   digest[t % N] = hash(key, what it names)   claim: compareExchange(tickets[t % N], t, 0) === t
//   views' slot := MOVED (a later free or      make this realm's own views of the buffers
//   use here says "handed off")
//
// The buffers stay LIVE throughout: only the right to use and free them moves. The ticket makes a
// descriptor good for one receipt, in whichever realm claims it first, even if it was posted to
// several; a ticket not claimed before N = TICKETS later handoffs expires (its buffers stay in use until
// terminate()). The arenas' memories travel along, so a realm that missed an arena's
// announcement can still map the buffers at once (an arena the sender knows only by a posted
// buffer travels as that buffer). The digest, keyed by a secret of the pool, makes a descriptor
// whose buffer list was changed after it was made fail before anything is taken: otherwise a
// changed offset could hand out a buffer its user still holds.
//
//   control block (pool/control.ts)   last ticket · key · i32 tickets[N] · i32 digests[N]

import { type Arena, readHeader } from '../core/arena.js';
import { GRANULE, granuleOf, offsetOf, onGranule } from '../core/granule.js';
import { MemsysError, show } from '../errors.js';
import { type Control, TICKETS } from '../pool/control.js';
import type { Pool } from '../pool/pool.js';
import { SLOT_MOVED, type Slab, type SlabBuffer, kArena, kSlab, kSlot, kState } from '../pool/slab.js';
import { NUM_CLASSES } from '../sizes.js';
import { DescriptorCheck } from './descriptor.js';

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
export type Handoff = BufferHandoff | SGLHandoff;

/** @internal Names a buffer (one view of this realm) for a handoff, and marks the view moved. */
export function packView(pool: Pool, v: SlabBuffer, slab: Slab): SlotsHandoff {
  if (v[kSlab] !== slab || v[kState]![v[kSlot]!] !== slab.liveState) {
    throw new MemsysError('ERR_MEMSYS_NOT_LIVE',
      `cannot hand off ${show(v)}: only a buffer in use that this realm allocated or received can be handed off`);
  }
  const d = packSlots(pool, slab, [v[kArena]!], [offsetOf(v[kSlot]!)]);
  v[kSlot] = SLOT_MOVED;
  return d;
}

/** @internal Names slots (LIVE, of slab's class) for a handoff and issues its ticket. */
export function packSlots(pool: { id: number; control: Control }, slab: Slab, arenas: readonly Arena[], offs: readonly number[], extent?: { woff: number; roff: number }): SlotsHandoff {
  const memories = new Set<WebAssembly.Memory>();
  const buffers = new Set<SharedArrayBuffer>();
  for (const a of arenas) {
    if (a.memory) memories.add(a.memory);
    else buffers.add(a.buffer as SharedArrayBuffer);
  }
  const t = pool.control;
  const ticket = t.nextTicket();
  const ids = arenas.map((a) => a.id);
  Atomics.store(t.digests, ticket % TICKETS, digest(t.key, slab.cls, ticket, ids, offs, extent));
  Atomics.store(t.tickets, ticket % TICKETS, ticket);
  const d: SlotsHandoff = { v: 1, mm: pool.id, cls: slab.cls, ticket, arenas: ids, offs: [...offs], memories: [...memories] };
  if (buffers.size) d.buffers = [...buffers];
  return d;
}

// A keyed 32-bit digest of what a handoff names (murmur3's mixing steps over its words).
function digest(key: number, cls: number, ticket: number, ids: readonly number[], offs: readonly number[], extent?: { woff: number; roff: number }): number {
  let h = key ^ ids.length;
  const mix = (w: number) => {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  };
  mix(cls);
  mix(ticket);
  for (let i = 0; i < ids.length; i++) { mix(ids[i]); mix(granuleOf(offs[i])); }
  if (extent) { mix(extent.woff); mix(extent.woff / 2 ** 32); mix(extent.roff); mix(extent.roff / 2 ** 32); }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/** @internal What a received handoff names, now this realm's: its buffers, LIVE, claimed. */
export interface Received {
  slab: Slab;
  arenas: Arena[];
  offs: number[];
  /** An SGL's extent; undefined for a single buffer. */
  extent: { woff: number; roff: number } | undefined;
}

/** @internal Checks a handoff and claims its ticket; the caller makes the view or the SGL. */
export function receive(pool: Pool, d: unknown): Received {
  const h = checkShape(d);
  if (h.mm !== pool.id) throw check.bad(`it was made by another MMSA (id ${h.mm}, this is ${pool.id})`);
  const seen = new Set<number>();
  h.arenas.forEach((id, i) => {
    const key = id * 2 ** 25 + h.offs[i] / GRANULE;
    if (seen.has(key)) throw check.bad(`buffer ${i} (arena ${id}, offset ${h.offs[i]}) is named twice`);
    seen.add(key);
  });
  // The ticket and digest need no arena: check them before adopting any memory the descriptor
  // brings, and adopt only those of arenas it names that the pool has made.
  const slot = h.ticket % TICKETS;
  const extent = h.kind === 'memsys.sgl' ? { woff: h.woff, roff: h.roff } : undefined;
  checkTicket(pool.control, h, slot, extent);
  const named = new Set(h.arenas);
  const made = pool.control.lastArenaId;
  const ours = (buf: ArrayBufferLike) => {
    const id = readHeader(buf)?.id;
    return id !== undefined && named.has(id) && id <= made;
  };
  for (const m of h.memories) if (ours(m.buffer)) pool.adopt(m);
  for (const b of h.buffers ?? []) if (ours(b)) pool.arenas.know(b);
  const slab = pool.slabs[h.cls];
  const live = slab.liveState;
  const arenas = h.arenas.map((id, i) => {
    const a = pool.arenas.byId.get(id);
    if (!a) throw check.bad(`arena ${id} of buffer ${i} is unknown here (post the handoff as it was made, memories and buffers included)`);
    const off = h.offs[i];
    if (!onGranule(off) || off < 0 || off + slab.size > a.bytes || a.state[granuleOf(off)] !== live) {
      throw new MemsysError('ERR_MEMSYS_NOT_LIVE', `buffer ${i} of the handoff (arena ${id}, offset ${off}) is not a ${slab.size}-byte buffer in use`);
    }
    return a;
  });
  if (extent && !(extent.roff <= extent.woff && extent.woff <= h.offs.length * slab.size)) {
    throw check.bad(`offsets roff ${extent.roff}, woff ${extent.woff} do not fit ${h.offs.length} buffers of ${slab.size} bytes`);
  }
  if (Atomics.compareExchange(pool.control.tickets, slot, h.ticket, 0) !== h.ticket) {
    throw gone(h.ticket);
  }
  // The buffers are this realm's now: should their sender die, they are not its to give back.
  h.offs.forEach((off, i) => arenas[i].claim(off));
  return { slab, arenas, offs: h.offs, extent };
}

// The ticket is current (not received, not expired) and was issued for what the descriptor names.
function checkTicket(c: Control, h: Handoff, slot: number, extent: { woff: number; roff: number } | undefined): void {
  if (Atomics.load(c.tickets, slot) !== h.ticket) {
    throw gone(h.ticket);
  }
  if (Atomics.load(c.digests, slot) !== digest(c.key, h.cls, h.ticket, h.arenas, h.offs, extent)) {
    throw check.bad(`its class, buffers or offsets are not the ones handoff ticket ${h.ticket} was issued for (changed after it was made?)`);
  }
}

function gone(ticket: number): MemsysError {
  return new MemsysError('ERR_MEMSYS_MOVED',
    `handoff ticket ${ticket} was already received, or expired (more than ${TICKETS} handoffs were made after it)`);
}

const check = new DescriptorCheck('a handoff', 'mm.handoff(buf) or sgl.handoff()');

function checkShape(d: unknown): Handoff {
  const h = check.shape(d, ['memsys.buf', 'memsys.sgl']);
  check.int(h, 'mm', 0, 2 ** 32);
  check.int(h, 'cls', 0, NUM_CLASSES - 1);
  check.int(h, 'ticket', 1, 2 ** 30);
  const ints = (k: string) => Array.isArray(h[k]) && (h[k] as unknown[]).every((x) => Number.isSafeInteger(x));
  if (!ints('arenas') || !ints('offs') || (h.arenas as unknown[]).length !== (h.offs as unknown[]).length) {
    throw check.bad('arenas and offs must be lists of integers of the same length');
  }
  if (h.kind === 'memsys.buf' && (h.offs as unknown[]).length !== 1) throw check.bad('a buffer handoff names exactly one buffer');
  if (!Array.isArray(h.memories) || !h.memories.every((m) => m instanceof WebAssembly.Memory)) throw check.bad('memories is not a list of WebAssembly.Memory');
  if (h.buffers !== undefined && !(Array.isArray(h.buffers) && h.buffers.every((b) => typeof SharedArrayBuffer === 'function' && b instanceof SharedArrayBuffer))) {
    throw check.bad('buffers is not a list of SharedArrayBuffer');
  }
  if (h.kind === 'memsys.sgl') {
    check.int(h, 'woff', 0, Number.MAX_SAFE_INTEGER);
    check.int(h, 'roff', 0, Number.MAX_SAFE_INTEGER);
  }
  return d as Handoff;
}
