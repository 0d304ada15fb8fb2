// Runs: spans carved into the slots of one class, and the per-class lists of runs with a free slot.
//
//   run of class c, first page p, runPages(c) pages, slotsPerRun(c) slots of classSize(c):
//
//     page map   p: HEAD(c, len)   p+1 … p+len-1: INNER(p)
//     run free   p: number of FREE slots
//     granules   g0 = p·32 …       slot i starts at granule g0 + i·size/128
//     state      g0+i·step: (c << 2) | FREE/OUT/LIVE, all other granules 0
//     free bits  one bit per granule, set at the start of each FREE slot
//     ┌──────────┬──────────┬──────────┬─────┬──────┐
//     │ slot 0   │ slot 1   │ slot 2   │ …   │ tail │  (tail: the run's waste, see classes.ts)
//     └──────────┴──────────┴──────────┴─────┴──────┘
//
// Slots are taken lowest address first (ctz over the run's bit words): live data packs into the
// low slots of a run, so the other runs of the class are the ones that empty out and can go back
// to the span allocator. A run with a free slot is on its class's list; a full run is on none.

import { NUM_SMALL, SMALL_RUN_PAGES, classSize, runPages, slotsPerRun } from "./classes";
import {
  GRANULES_PER_PAGE, GRANULE_SHIFT, KIND_INNER, PAGE_SHIFT, ST_FREE, ST_OUT, availHead, availTail, bitsTable,
  bitsWord, countPut, countTake, freeSlots, headEntry, hintOf, innerEntry, innerHead, kindOf, mapTable, nextOf,
  nextTable, prevOf, prevTable, runFree, runsOf, setAvailHead, setAvailTail, setBitsWord, setFreeSlots, setHint,
  setMap, setNext, setOwner, setPrev, setRunFree, setRuns, setState, setTaken, setWordIn, slotState, stateTable,
  takenOf, wordIn, headLen, quarantine,
} from "./layout";
import { E_CHECK_RUN_FREE } from "./check";
import { spanAlloc, spanFree } from "./span";
import { realmTag } from "./lock";

// (listAppend and listPop read the tables' offsets before their first store: layout.ts mapTable.)
@inline function listAppend(c: u32, p: u32): void {
  const next = nextTable(), prev = prevTable();
  const tail = availTail(c);
  setWordIn(next, p, 0);
  setWordIn(prev, p, tail);
  if (tail) setWordIn(next, tail, p);
  else setAvailHead(c, p);
  setAvailTail(c, p);
}

function listRemove(c: u32, p: u32): void {
  const next = nextOf(p);
  const prev = prevOf(p);
  if (prev) setNext(prev, next);
  else setAvailHead(c, next);
  if (next) setPrev(next, prev);
  else setAvailTail(c, prev);
}

// listRemove of the list's head, whose prev is 0.
@inline function listPop(c: u32, p: u32): void {
  const prev = prevTable();
  const next = nextOf(p);
  setAvailHead(c, next);
  if (next) setWordIn(prev, next, 0);
  else setAvailTail(c, 0);
}

// Marks pages p … p+len-1 as one used span tagged `tag` (a class, or TAG_RAW).
export function markSpan(p: u32, len: u32, tag: u32): void {
  setMap(p, headEntry(tag, len));
  for (let i: u32 = 1; i < len; i++) setMap(p + i, innerEntry(p));
}

// Carves a new run for class c; returns its first page, or 0 when the arena has no room.
function carve(c: u32): u32 {
  const len = runPages(c);
  const p = spanAlloc(len);
  if (!p) return 0;
  markSpan(p, len, c);
  const n = slotsPerRun(c);
  const step = classSize(c) >>> GRANULE_SHIFT;
  const g0 = p * GRANULES_PER_PAGE;
  const free = slotState(c, ST_FREE);
  for (let i: u32 = 0, g = g0; i < n; i++, g += step) {
    setState(g, free);
    const w = g >>> 5;
    setBitsWord(w, bitsWord(w) | (1 << (g & 31)));
  }
  setRunFree(p, n);
  setRuns(c, runsOf(c) + 1);
  setFreeSlots(c, freeSlots(c) + n);
  if (c < NUM_SMALL) setHint(c, p); // (layout.ts: an old hint may lie among the new run's pages)
  listAppend(c, p);
  return p;
}

// Takes the lowest free slot of class c and returns its offset, or 0 when the arena has no room.
export function takeSlot(c: u32): u32 {
  let p = availHead(c);
  if (!p) p = carve(c);
  if (!p) return 0;
  return takeFrom(c, p);
}

// Takes the lowest free slot of run p, the head of class c's list. Inlined into alloc's path that
// calls no function (index.ts alloc) and into takeSlot.
@inline export function takeFrom(c: u32, p: u32): u32 {
  const bits = bitsTable();
  // A page's 32 granules are one bits word, so run p's words are words p … p+len-1. The scan
  // starts at the class's hint if it lies in the run (layout.ts; a page class's hint, 0, never
  // does, so the length of a small run bounds both), and the run has a free slot there or above.
  // A run whose bits hold no free slot where its count says one is (a table written over from
  // outside) quarantines the arena, and the scan never leaves the run.
  const h = hintOf(c);
  const start = h - p < SMALL_RUN_PAGES ? h : p;
  const from = bits + (start << 2);
  let at = from;
  let word = load<u32>(at);
  if (!word) {
    const end = bits + ((p + headLen(wordIn(mapTable(), p))) << 2);
    do {
      at += 4;
      if (at >= end) { quarantine(E_CHECK_RUN_FREE); return 0; }
      word = load<u32>(at);
    } while (!word);
  }
  store<u32>(at, word & (word - 1));
  if (at != from) setHint(c, (at - bits) >>> 2);
  const g = ((at - bits) << 3) + <u32>ctz(word);
  setOwner(g, realmTag());
  setState(g, slotState(c, ST_OUT));
  const left = runFree(p) - 1;
  setRunFree(p, left);
  if (!left) listPop(c, p);
  countTake(c);
  setTaken(c, takenOf(c) + 1);
  return g << GRANULE_SHIFT;
}

// Returns one OUT/LIVE slot of class c at byte offset `off` (already validated) to its run.
// Inlined into free, free_batch and reclaim: a call costs more than most of its work.
@inline export function putSlot(c: u32, off: u32): void {
  const g = off >>> GRANULE_SHIFT;
  const bits = bitsTable(), state = stateTable();
  // The run's first page: the slot's page is a run's head or an inner page pointing to it.
  let p = off >>> PAGE_SHIFT;
  const e = wordIn(mapTable(), p);
  if (kindOf(e) == KIND_INNER) p = innerHead(e);
  store<u8>(state + g, <u8>slotState(c, ST_FREE));
  const w = g >>> 5;
  setWordIn(bits, w, wordIn(bits, w) | (1 << (g & 31)));
  const h = hintOf(c);
  if (w < h && h - p < SMALL_RUN_PAGES) setHint(c, w); // a free below the hint, in its run
  const n = runFree(p);
  setRunFree(p, n + 1);
  if (!n) listAppend(c, p);
  countPut(c);
}

// Gives back to the span allocator the runs of class c whose slots are all free, for as long as
// the class keeps at least `depth` free slots. Returns how many slots were released.
export function trimClass(c: u32, depth: u32): u32 {
  const n = slotsPerRun(c);
  const len = runPages(c);
  const step = classSize(c) >>> GRANULE_SHIFT;
  let released: u32 = 0;
  let p = availHead(c);
  // (compared as free - n >= depth: depth + n could wrap)
  while (p && freeSlots(c) >= n && freeSlots(c) - n >= depth) {
    const next = nextOf(p);
    if (runFree(p) == n) {
      listRemove(c, p);
      const g0 = p * GRANULES_PER_PAGE;
      for (let i: u32 = 0, g = g0; i < n; i++, g += step) setState(g, 0);
      for (let w = g0 >>> 5, end = w + len; w < end; w++) setBitsWord(w, 0);
      setRunFree(p, 0);
      setRuns(c, runsOf(c) - 1);
      setFreeSlots(c, freeSlots(c) - n);
      spanFree(p, len, false);
      released += n;
    }
    p = next;
  }
  return released;
}
