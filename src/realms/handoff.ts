// Handoff: moving buffers (one, or an SGL's) to another realm of the same pool without copying.
// A handoff names each buffer by arena id and offset and carries a ticket (pool/tickets.ts); here
// the receiving side checks it:
//
//   receiver (any realm attached to the pool)
//   check: pool id, class, no buffer twice, the ticket and its digest (before any memory the
//   descriptor brings is adopted), each buffer LIVE of that class · claim the ticket · the buffers
//   are this realm's (owner table) · the caller makes its own views, or an SGL, over them
//
// The buffers stay LIVE throughout: only the right to use and free them moves. The arenas'
// memories travel along, so a realm that missed an arena's announcement can still map the buffers
// at once (an arena the sender knows only by a posted buffer travels as that buffer).

import { type Arena, readHeader } from '../core/arena.js';
import { granuleOf, offsetOf, onGranule } from '../core/granule.js';
import { MemsysError, show } from '../errors.js';
import type { Control } from '../pool/control.js';
import { SLOT_MOVED, type Slab, type SlabBuffer, kArena, kSlab, kSlot, kState } from '../pool/slab.js';
import { type Handoff, type SlotsHandoff, checkTicket, claimTicket, packSlots } from '../pool/tickets.js';
import { NUM_CLASSES } from '../sizes.js';
import { DescriptorCheck } from './descriptor.js';

/** @internal What receiving a handoff needs of the pool. */
export interface HandoffHost {
  readonly id: number;
  readonly control: Control;
  readonly slabs: readonly Slab[];
  /** Adopts an arena's memory that came with the handoff. */
  adopt(memory: WebAssembly.Memory): void;
  /** The arena of a posted buffer, known from it if not yet. */
  know(buffer: SharedArrayBuffer): Arena | undefined;
  arena(id: number): Arena | undefined;
}

/** @internal Names a buffer (one view of this realm) for a handoff, and marks the view moved. */
export function packView(pool: { id: number; control: Control }, v: SlabBuffer, slab: Slab): SlotsHandoff {
  if (v[kSlab] !== slab || v[kState]![v[kSlot]!] !== slab.liveState) {
    throw new MemsysError('ERR_MEMSYS_NOT_LIVE',
      `cannot hand off ${show(v)}: only a buffer in use that this realm allocated or received can be handed off`);
  }
  const d = packSlots(pool, slab.cls, [v[kArena]!], [offsetOf(v[kSlot]!)]);
  v[kSlot] = SLOT_MOVED;
  return d;
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
export function receive(pool: HandoffHost, d: unknown): Received {
  const h = checkShape(d);
  if (h.mm !== pool.id) throw check.bad(`it was made by another MMSA (id ${h.mm}, this is ${pool.id})`);
  const seen = new Set<string>();
  h.arenas.forEach((id, i) => {
    const key = `${id}:${h.offs[i]}`;
    if (seen.has(key)) throw check.bad(`buffer ${i} (arena ${id}, offset ${h.offs[i]}) is named twice`);
    seen.add(key);
  });
  // The ticket and digest need no arena: check them before adopting any memory the descriptor
  // brings, and adopt only those of arenas it names that the pool has made.
  const extent = h.kind === 'memsys.sgl' ? { woff: h.woff, roff: h.roff } : undefined;
  checkTicket(pool.control, h, extent, (why) => check.bad(why));
  const named = new Set(h.arenas);
  const made = pool.control.lastArenaId;
  const ours = (buf: ArrayBufferLike) => {
    const id = readHeader(buf)?.id;
    return id !== undefined && named.has(id) && id <= made;
  };
  for (const m of h.memories) if (ours(m.buffer)) pool.adopt(m);
  for (const b of h.buffers ?? []) if (ours(b)) pool.know(b);
  const slab = pool.slabs[h.cls];
  const live = slab.liveState;
  const arenas = h.arenas.map((id, i) => {
    const a = pool.arena(id);
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
  claimTicket(pool.control, h);
  // The buffers are this realm's now: should their sender die, they are not its to give back.
  h.offs.forEach((off, i) => arenas[i].claim(off));
  return { slab, arenas, offs: h.offs, extent };
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
