// Orphans: buffers freed in a realm that has no core for their arena (it knows the arena only by
// a posted buffer, its memory not yet arrived) when that realm terminates. It cannot give them
// back itself, so it leaves them in the control block for a realm that can.
//
//   Int32 orphans[0]              entries published
//   Int32 orphans[1 + 3e ...]     (arena id, class, granule) of entry e
//                                 arena id 0: free · −1: being written · > 0: published
//
// A writer reserves an entry (0 → −1) before filling it; a reader claims one by compare-exchange
// on the published id, so exactly one realm gives each buffer back. A full table leaves the
// buffer out of use until its arena is dropped.

import type { Arena } from '../core/arena.js';
import { offsetOf } from '../core/granule.js';

export function orphan(o: Int32Array, arena: number, cls: number, granule: number): void {
  for (let e = 1; e < o.length; e += 3) {
    if (Atomics.compareExchange(o, e, 0, -1) !== 0) continue;
    Atomics.store(o, e + 1, cls);
    Atomics.store(o, e + 2, granule);
    Atomics.store(o, e, arena);
    Atomics.add(o, 0, 1);
    return;
  }
}

// Gives back the orphans in arenas this realm has a core for (`arenas`: this realm's, by id).
export function adoptOrphans(o: Int32Array, arenas: ReadonlyMap<number, Arena>): void {
  if (Atomics.load(o, 0) === 0) return;
  for (let e = 1; e < o.length; e += 3) {
    const id = Atomics.load(o, e);
    if (id <= 0) continue;
    const a = arenas.get(id);
    if (!a?.core) continue;
    const cls = Atomics.load(o, e + 1);
    const g = Atomics.load(o, e + 2);
    if (Atomics.compareExchange(o, e, id, 0) !== id) continue;
    Atomics.sub(o, 0, 1);
    if (a.give(cls, [offsetOf(g)], 0, 1) === 0) orphan(o, id, cls, g); // locked: another time
  }
}
