// Handoff: moving buffers (one, or an SGL's) to another realm of the same MMSA without copying.
//
// A handoff names each buffer by arena id and offset, and carries a ticket:
//
//   sender                                     receiver (any realm attached to the MMSA)
//   check: each view LIVE, ours, this slab     check: MMSA id, class, each buffer LIVE of that class
//   ticket t = ++head[1]; tickets[t % N] = t   claim: compareExchange(tickets[t % N], t, 0) === t
//   views' slot := MOVED (a later free or      make this realm's own views of the buffers
//   use here says "handed off")
//
// The buffers stay LIVE throughout: only the right to use and free them moves. The ticket makes a
// descriptor good for one receipt, in whichever realm claims it first, even if it was posted to
// several; a ticket not claimed before N = TICKETS later handoffs expires (its buffers stay in use until
// terminate()). The arenas' memories travel along, so a realm that missed an arena's
// announcement can still map the buffers at once.
//
//   control block (mmsa.ts)   i32 head[1]: last ticket   ·   i32 tickets[N]

import { MemsysError, MemsysTypeError, show } from './errors.js';
import type { MMSA } from './mmsa.js';
import type { Arena } from './arena.js';
import { type SGLHandoff, type SlotsHandoff, SGL } from './sgl.js';
import { type Slab, type SlabBuffer, kArena, kSlab, kSlot, kState } from './slab.js';
import { NUM_CLASSES } from './sizes.js';

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
export function packSlots(mm: MMSA, slab: Slab, arenas: readonly Arena[], offs: readonly number[]): SlotsHandoff {
  const memories = new Set<WebAssembly.Memory>();
  for (const a of arenas) if (a.memory) memories.add(a.memory);
  const t = mm.control;
  const ticket = (Atomics.add(t.head, 1, 1) & 0x3fffffff) + 1;
  Atomics.store(t.tickets, ticket % TICKETS, ticket);
  return { v: 1, mm: mm.id, cls: slab.cls, ticket, arenas: arenas.map((a) => a.id), offs: [...offs], memories: [...memories] };
}

/** @internal Checks a handoff, claims its ticket and makes this realm's views of its buffers. */
export function receive(mm: MMSA, d: unknown): Uint8Array | SGL {
  const h = checkShape(d);
  if (h.mm !== mm.id) throw bad(`it was made by another MMSA (id ${h.mm}, this is ${mm.id})`);
  for (const m of h.memories) mm.adopt(m);
  const slab = mm.slabs[h.cls];
  const live = slab.liveState;
  const arenas = h.arenas.map((id, i) => {
    const a = mm.byId.get(id);
    if (!a?.x) throw bad(`arena ${id} of buffer ${i} is unknown here (post the handoff as it was made, memories included)`);
    const off = h.offs[i];
    if (off % 128 !== 0 || off < 0 || off + slab.size > a.bytes || a.state[off / 128] !== live) {
      throw new MemsysError('ERR_MEMSYS_NOT_LIVE', `buffer ${i} of the handoff (arena ${id}, offset ${off}) is not a ${slab.size}-byte buffer in use`);
    }
    return a;
  });
  if (h.kind === 'memsys.sgl' && !(h.roff <= h.woff && h.woff <= h.offs.length * slab.size)) {
    throw bad(`offsets roff ${h.roff}, woff ${h.woff} do not fit ${h.offs.length} buffers of ${slab.size} bytes`);
  }
  if (Atomics.compareExchange(mm.control.tickets, h.ticket % TICKETS, h.ticket, 0) !== h.ticket) {
    throw new MemsysError('ERR_MEMSYS_MOVED',
      `handoff ticket ${h.ticket} was already received, or expired (more than ${TICKETS} handoffs were made after it)`);
  }
  if (h.kind === 'memsys.buf') return mm.view(slab, arenas[0], h.offs[0]);
  const sgl = new SGL(slab);
  sgl.arenas = arenas;
  sgl.offs = h.offs;
  sgl.woff = h.woff;
  sgl.roff = h.roff;
  return sgl;
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
  if (h.kind === 'memsys.sgl') {
    int('woff', 0, Number.MAX_SAFE_INTEGER);
    int('roff', 0, Number.MAX_SAFE_INTEGER);
  }
  return d as Handoff;
}

function bad(why: string): MemsysTypeError {
  return new MemsysTypeError('ERR_MEMSYS_DESCRIPTOR', `not a handoff: ${why}`);
}
