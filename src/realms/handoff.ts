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
//   control block (mmsa.ts)   i32 head[1]: last ticket · head[4]: key · i32 tickets[N] · i32 digests[N]

import { MemsysError, MemsysTypeError, show } from '../errors.js';
import type { MMSA } from '../mmsa.js';
import { type Arena, readHeader } from '../core/arena.js';
import { type SGLHandoff, type SlotsHandoff, SGL } from '../sgl/sgl.js';
import { type Slab, type SlabBuffer, kArena, kSlab, kSlot, kState } from '../pool/slab.js';
import { NUM_CLASSES } from '../sizes.js';

export const TICKETS = 16384; // more than a channel's ring can hold (~5 900 records)
export const SLOT_MOVED = -2; // kSlot of a view whose buffer was handed off

/** What mm.handoff(buf) returns: post it to another realm, and `mm.receive()` it there. */
export interface BufferHandoff extends SlotsHandoff {
  kind: 'memsys.buf';
}
export type Handoff = BufferHandoff | SGLHandoff;

/** @internal Names a buffer (one view of this realm) for a handoff, and marks the view moved. */
export function packView(mm: MMSA, v: SlabBuffer, slab: Slab): SlotsHandoff {
  if (v[kSlab] !== slab || v[kState]![v[kSlot]!] !== slab.liveState) {
    throw new MemsysError('ERR_MEMSYS_NOT_LIVE',
      `cannot hand off ${show(v)}: only a buffer in use that this realm allocated or received can be handed off`);
  }
  const d = packSlots(mm, slab, [v[kArena]!], [v[kSlot]! * 128]);
  v[kSlot] = SLOT_MOVED;
  return d;
}

/** @internal Names slots (LIVE, of slab's class) for a handoff and issues its ticket. */
export function packSlots(mm: MMSA, slab: Slab, arenas: readonly Arena[], offs: readonly number[], extent?: { woff: number; roff: number }): SlotsHandoff {
  const memories = new Set<WebAssembly.Memory>();
  const buffers = new Set<SharedArrayBuffer>();
  for (const a of arenas) {
    if (a.memory) memories.add(a.memory);
    else buffers.add(a.buffer as SharedArrayBuffer);
  }
  const t = mm.control;
  const ticket = (Atomics.add(t.head, 1, 1) & 0x3fffffff) + 1;
  const ids = arenas.map((a) => a.id);
  Atomics.store(t.digests, ticket % TICKETS, digest(t.key, slab.cls, ticket, ids, offs, extent));
  Atomics.store(t.tickets, ticket % TICKETS, ticket);
  const d: SlotsHandoff = { v: 1, mm: mm.id, cls: slab.cls, ticket, arenas: ids, offs: [...offs], memories: [...memories] };
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
  for (let i = 0; i < ids.length; i++) { mix(ids[i]); mix(offs[i] / 128); }
  if (extent) { mix(extent.woff); mix(extent.woff / 2 ** 32); mix(extent.roff); mix(extent.roff / 2 ** 32); }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/** @internal Checks a handoff, claims its ticket and makes this realm's views of its buffers. */
export function receive(mm: MMSA, d: unknown): Uint8Array | SGL {
  const h = checkShape(d);
  if (h.mm !== mm.id) throw bad(`it was made by another MMSA (id ${h.mm}, this is ${mm.id})`);
  const seen = new Set<number>();
  h.arenas.forEach((id, i) => {
    const key = id * 2 ** 25 + h.offs[i] / 128;
    if (seen.has(key)) throw bad(`buffer ${i} (arena ${id}, offset ${h.offs[i]}) is named twice`);
    seen.add(key);
  });
  // The ticket and digest need no arena: check them before adopting any memory the descriptor
  // brings, and adopt only those of arenas it names that the pool has made.
  const slot = h.ticket % TICKETS;
  const extent = h.kind === 'memsys.sgl' ? { woff: h.woff, roff: h.roff } : undefined;
  checkTicket(mm, h, slot, extent);
  const named = new Set(h.arenas);
  const made = Atomics.load(mm.control.head, 0);
  const ours = (buf: ArrayBufferLike) => {
    const id = readHeader(buf)?.id;
    return id !== undefined && named.has(id) && id <= made;
  };
  for (const m of h.memories) if (ours(m.buffer)) mm.adopt(m);
  for (const b of h.buffers ?? []) if (ours(b)) mm.knowBuffer(b);
  const slab = mm.slabs[h.cls];
  const live = slab.liveState;
  const arenas = h.arenas.map((id, i) => {
    const a = mm.byId.get(id);
    if (!a) throw bad(`arena ${id} of buffer ${i} is unknown here (post the handoff as it was made, memories and buffers included)`);
    const off = h.offs[i];
    if (off % 128 !== 0 || off < 0 || off + slab.size > a.bytes || a.state[off / 128] !== live) {
      throw new MemsysError('ERR_MEMSYS_NOT_LIVE', `buffer ${i} of the handoff (arena ${id}, offset ${off}) is not a ${slab.size}-byte buffer in use`);
    }
    return a;
  });
  if (h.kind === 'memsys.sgl' && !(h.roff <= h.woff && h.woff <= h.offs.length * slab.size)) {
    throw bad(`offsets roff ${h.roff}, woff ${h.woff} do not fit ${h.offs.length} buffers of ${slab.size} bytes`);
  }
  if (Atomics.compareExchange(mm.control.tickets, slot, h.ticket, 0) !== h.ticket) {
    throw gone(h.ticket);
  }
  // The buffers are this realm's now: should their sender die, they are not its to give back.
  h.offs.forEach((off, i) => arenas[i].claim(off));
  if (h.kind === 'memsys.buf') return mm.view(slab, arenas[0], h.offs[0]);
  const sgl = new SGL(slab);
  sgl.arenas = arenas;
  sgl.offs = h.offs;
  sgl.woff = h.woff;
  sgl.roff = h.roff;
  return sgl;
}

// The ticket is current (not received, not expired) and was issued for what the descriptor names.
function checkTicket(mm: MMSA, h: Handoff, slot: number, extent: { woff: number; roff: number } | undefined): void {
  if (Atomics.load(mm.control.tickets, slot) !== h.ticket) {
    throw gone(h.ticket);
  }
  if (Atomics.load(mm.control.digests, slot) !== digest(mm.control.key, h.cls, h.ticket, h.arenas, h.offs, extent)) {
    throw bad(`its class, buffers or offsets are not the ones handoff ticket ${h.ticket} was issued for (changed after it was made?)`);
  }
}

function gone(ticket: number): MemsysError {
  return new MemsysError('ERR_MEMSYS_MOVED',
    `handoff ticket ${ticket} was already received, or expired (more than ${TICKETS} handoffs were made after it)`);
}

function checkShape(d: unknown): Handoff {
  if (typeof d !== 'object' || d === null) throw bad(`got ${show(d)} (make one with mm.handoff(buf) or sgl.handoff())`);
  const h = d as Record<string, unknown>;
  if (h.kind !== 'memsys.buf' && h.kind !== 'memsys.sgl') throw bad(`kind ${show(h.kind)} is not "memsys.buf" or "memsys.sgl"`);
  if (h.v !== 1) throw bad(`version ${show(h.v)} is not 1`);
  const int = (k: string, lo: number, hi: number) => {
    if (!Number.isSafeInteger(h[k]) || (h[k] as number) < lo || (h[k] as number) > hi) throw bad(`${k} ${show(h[k])} is not an integer ${lo} … ${hi}`);
  };
  int('mm', 0, 2 ** 32);
  int('cls', 0, NUM_CLASSES - 1);
  int('ticket', 1, 2 ** 30);
  const ints = (k: string) => Array.isArray(h[k]) && (h[k] as unknown[]).every((x) => Number.isSafeInteger(x));
  if (!ints('arenas') || !ints('offs') || (h.arenas as unknown[]).length !== (h.offs as unknown[]).length) {
    throw bad('arenas and offs must be lists of integers of the same length');
  }
  if (h.kind === 'memsys.buf' && (h.offs as unknown[]).length !== 1) throw bad('a buffer handoff names exactly one buffer');
  if (!Array.isArray(h.memories) || !h.memories.every((m) => m instanceof WebAssembly.Memory)) throw bad('memories is not a list of WebAssembly.Memory');
  if (h.buffers !== undefined && !(Array.isArray(h.buffers) && h.buffers.every((b) => typeof SharedArrayBuffer === 'function' && b instanceof SharedArrayBuffer))) {
    throw bad('buffers is not a list of SharedArrayBuffer');
  }
  if (h.kind === 'memsys.sgl') {
    int('woff', 0, Number.MAX_SAFE_INTEGER);
    int('roff', 0, Number.MAX_SAFE_INTEGER);
  }
  return d as Handoff;
}

function bad(why: string): MemsysTypeError {
  return new MemsysTypeError('ERR_MEMSYS_DESCRIPTOR', `not a handoff: ${why}`);
}
