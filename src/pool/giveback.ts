// Giving memory back to the OS: the platform's means, and an arena's free pages through them.
//
// Linear memory cannot shrink and WebAssembly cannot discard a page, so what a pool can give back
// depends on its host:
//
//   discard   native code in the process (memsys/node's page helper, native/pages.c) madvises
//             free spans in place: the cgroup's usage falls at once, the arena stays mapped and
//             is reused, its pages fault in again as they are next used
//   collect   otherwise whole empty arenas are dropped, and the engine is asked to collect them
//             now (Node: V8's gc; a browser offers nothing): a dropped memory stays resident
//             until its last object is collected, in every realm that held it
//
// Until a dropped arena is known to be collected it is *retired*: still counted against the
// budget's ceiling (the kernel still charges it), and reused before a new arena is mapped.
//
//   core (under its lock)           host, outside the lock             core
//   scavenge(out, max) ──pairs──▶   discard(offset, length) each ──▶   scavenged(offset): clean
//   free spans that may hold data   (nothing can hand them out:        (not taken again until
//   become raw spans                 they are raw spans meanwhile)      reused and freed)

import { type Arena, PAGE } from '../core/arena.js';
import { pageOps } from '../platform/pages.js';

/** How free pages are given back in place: 'dontneed' (at once, the default) or 'free' (lazily). */
export type MadviseMode = 'dontneed' | 'free';

// Gives the free spans of an arena that may hold data back to the kernel; returns the bytes.
// Spans the kernel refused go back to the arena as they were (not clean). Works on a closed arena
// too (its closer gives all its free pages back before letting go of it): spans are discarded only
// while they are raw spans of this realm, so nothing else can hand them out meanwhile, and other
// realms' raw spans are never touched.
/** @internal */
export function discardFree(a: Arena, mode: MadviseMode): number {
  const discard = pageOps().discard;
  if (!discard || !a.core) return 0;
  let bytes = 0;
  // A round takes at most 512 spans or 32 MiB; enough rounds for a whole arena of one-page spans.
  const rounds = Math.ceil(a.bytes / PAGE / 512) + 1;
  if (!a.returnPending()) return 0; // spans taken before are still waiting for the lock
  for (let round = 0; round < rounds; round++) {
    const spans = a.scavenge();
    if (spans.length === 0) break;
    for (let i = 0; i < spans.length; i += 2) {
      const ok = discard(a.u8, spans[i], spans[i + 1], mode === 'free') === 0;
      if (ok) bytes += spans[i + 1];
      a.scavenged(spans[i], ok); // kept for the next call if the arena is locked meanwhile
    }
  }
  return bytes;
}

// Dropped arenas this realm let go of, while they may still be resident. The realm that closed an
// arena it could not give back in place counts it (the pool's retired count, lowered by `gone`
// once the engine has collected the memory); every realm keeps a weak reference to reuse it.
/** @internal */
export class Retired {
  private readonly list: { ref: WeakRef<Arena>; counted: boolean }[] = [];
  private readonly registry: FinalizationRegistry<() => void> | undefined;
  private collectQueued = false;

  constructor() {
    this.registry = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((gone) => gone()) : undefined;
  }

  // Without a FinalizationRegistry `gone` never runs, and the count falls only as arenas are reused.
  // `gone` must not reach `a`, even through a closure's scope: the registry holds it strongly.
  // `collect`: ask the engine to collect now (the memory is still resident, or its address space
  // is what a new arena may fail to map).
  add(a: Arena, gone: (() => void) | undefined, collect: boolean): void {
    if (typeof WeakRef === 'function' && a.memory) {
      this.list.push({ ref: new WeakRef(a), counted: gone !== undefined });
      if (gone) this.registry?.register(a.memory, gone, a);
    }
    if (collect) this.queueCollect();
  }

  // A retired arena still alive, taken off the list (its `gone` will not run: the caller lowers the
  // count if it was counted), or undefined.
  take(): { arena: Arena; counted: boolean } | undefined {
    while (this.list.length) {
      const e = this.list.pop()!;
      const arena = e.ref.deref();
      if (!arena?.memory) continue;
      if (e.counted) this.registry?.unregister(arena);
      return { arena, counted: e.counted };
    }
    return undefined;
  }

  // One collection after the current task, however many arenas were dropped in it (their last
  // references go when the caller returns).
  private queueCollect(): void {
    const collect = pageOps().collect;
    if (!collect || this.collectQueued) return;
    this.collectQueued = true;
    const t = setTimeout(() => { this.collectQueued = false; collect(); }, 0);
    (t as unknown as { unref?: () => void }).unref?.();
  }
}
