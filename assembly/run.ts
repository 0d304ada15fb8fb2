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

import { classSize, runPages, slotsPerRun } from "./classes";
import {
  GRANULES_PER_PAGE, GRANULE_SHIFT, KIND_HEAD, KIND_INNER, PAGE_SHIFT, ST_FREE, ST_OUT, availHead, availTail,
  bitsWord, freeSlots, headEntry, headTag, innerEntry, innerHead, kindOf, mapAt, nextOf, outSlots,
  prevOf, runFree, runsOf, setAvailHead, setAvailTail, setBitsWord, setFreeSlots, setMap, setNext,
  setOutSlots, setOwner, setPrev, setRunFree, setRuns, setState, setTaken, slotState, takenOf,
} from "./layout";
import { spanAlloc, spanFree } from "./span";
import { realmTag } from "./lock";

function listAppend(c: u32, p: u32): void {
  const tail = availTail(c);
  setNext(p, 0);
  setPrev(p, tail);
  if (tail) setNext(tail, p);
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

// Marks pages p … p+len-1 as one used span tagged `tag` (a class, or TAG_RAW).
export function markSpan(p: u32, len: u32, tag: u32): void {
  setMap(p, headEntry(tag, len));
  for (let i: u32 = 1; i < len; i++) setMap(p + i, innerEntry(p));
}

// The first page of the used span holding page `p`, or 0 if `p` is not in one.
export function spanHead(p: u32): u32 {
  const e = mapAt(p);
  const k = kindOf(e);
  if (k == KIND_HEAD) return p;
  if (k == KIND_INNER) return innerHead(e);
  return 0;
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
  listAppend(c, p);
  return p;
}

// Takes the lowest free slot of class c and returns its offset, or 0 when the arena has no room.
export function takeSlot(c: u32): u32 {
  let p = availHead(c);
  if (!p) p = carve(c);
  if (!p) return 0;
  let w = p * GRANULES_PER_PAGE >>> 5;
  let word = bitsWord(w);
  while (!word) word = bitsWord(++w); // the run has a free slot, so some word is non-zero
  const g = (w << 5) + <u32>ctz(word);
  setBitsWord(w, word & (word - 1));
  setOwner(g, realmTag());
  setState(g, slotState(c, ST_OUT));
  const left = runFree(p) - 1;
  setRunFree(p, left);
  if (!left) listRemove(c, p);
  setFreeSlots(c, freeSlots(c) - 1);
  setOutSlots(c, outSlots(c) + 1);
  setTaken(c, takenOf(c) + 1);
  return g << GRANULE_SHIFT;
}

// Returns one OUT/LIVE slot of class c at byte offset `off` (already validated) to its run.
export function putSlot(c: u32, off: u32): void {
  const g = off >>> GRANULE_SHIFT;
  const p = spanHead(off >>> PAGE_SHIFT);
  setState(g, slotState(c, ST_FREE));
  const w = g >>> 5;
  setBitsWord(w, bitsWord(w) | (1 << (g & 31)));
  const n = runFree(p);
  setRunFree(p, n + 1);
  if (!n) listAppend(c, p);
  setFreeSlots(c, freeSlots(c) + 1);
  setOutSlots(c, outSlots(c) - 1);
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
