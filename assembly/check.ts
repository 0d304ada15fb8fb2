// The invariant checker: walks every table of an arena and proves they agree. Debug mode runs it
// after every call that changes state; `check()` runs it on demand. Returns 0 or the negative
// code of the first broken invariant (docs/abi.md lists them).

import { NUM_CLASSES, NUM_SMALL, classSize, runPages, slotsPerRun } from "./classes";
import {
  BUCKETS, GRANULES_PER_PAGE, KIND_FREE, KIND_HEAD, KIND_INNER, ST_FREE, TAG_RAW, availHead,
  bitsWord, bucketHead, bucketTail, bucketMask, dataPage, freePages, freeSlots, headLen, headTag, hintOf, innerHead,
  cleanPages, isClean, kindOf, mapAt, nextOf, outSlots, pages, prevOf, rawPages, runFree, runsOf, spanLen, stateAt,
} from "./layout";

export const E_CHECK_SPAN: i32 = -101;     // a span's head and tail disagree, or it leaves the arena
export const E_CHECK_INNER: i32 = -102;    // a page inside a used span does not point to its head
export const E_CHECK_SLOT: i32 = -103;     // a slot's state or free bit is wrong
export const E_CHECK_RUN_FREE: i32 = -104; // a run's free count differs from its free slots
export const E_CHECK_CLASS: i32 = -105;    // a class's counters or hint differ from its runs
export const E_CHECK_PAGES: i32 = -106;    // free, clean or raw page totals differ from the page map
export const E_CHECK_BUCKET: i32 = -107;   // a free-span list is inconsistent with the page map
export const E_CHECK_AVAIL: i32 = -108;    // a class's list of runs with a free slot is wrong

function checkRun(p: u32, c: u32): i32 {
  const n = slotsPerRun(c);
  const step = classSize(c) >>> 7;
  const g0 = p * GRANULES_PER_PAGE;
  const gEnd = g0 + runPages(c) * GRANULES_PER_PAGE;
  let free: u32 = 0;
  let next = g0;
  for (let g = g0; g < gEnd; g++) {
    const s = stateAt(g);
    const bit = (bitsWord(g >>> 5) >>> (g & 31)) & 1;
    if (g == next && g < g0 + n * step) {
      if ((s >>> 2) != c || (s & 3) == 0) return E_CHECK_SLOT;
      if (((s & 3) == ST_FREE) != (bit == 1)) return E_CHECK_SLOT;
      if ((s & 3) == ST_FREE) free++;
      next += step;
    } else if (s != 0 || bit != 0) return E_CHECK_SLOT;
  }
  if (free != runFree(p)) return E_CHECK_RUN_FREE;
  // The class's hint, if it lies in this run, has no free slot below it there (layout.ts).
  const h = hintOf(c);
  if (h - p < runPages(c)) {
    for (let w = p; w < h; w++) if (bitsWord(w)) return E_CHECK_CLASS;
  }
  return 0;
}

function checkLists(): i32 {
  let listed: u32 = 0;
  const mask = bucketMask();
  for (let b: u32 = 0; b < BUCKETS; b++) {
    let p = bucketHead(b);
    if ((p != 0) != (((mask >>> b) & 1) == 1)) return E_CHECK_BUCKET;
    let prev: u32 = 0;
    let seenClean = false;
    while (p) {
      const e = mapAt(p);
      if (kindOf(e) != KIND_FREE || prevOf(p) != prev) return E_CHECK_BUCKET;
      const len = spanLen(e);
      if ((len < BUCKETS ? len - 1 : BUCKETS - 1) != b) return E_CHECK_BUCKET;
      if (isClean(e)) seenClean = true;
      else if (seenClean) return E_CHECK_BUCKET; // a dirty span after a clean one
      listed += len;
      prev = p;
      p = nextOf(p);
    }
    if (bucketTail(b) != prev) return E_CHECK_BUCKET;
  }
  return listed == freePages() ? 0 : E_CHECK_BUCKET;
}

export function checkAll(): i32 {
  const end = pages();
  let free: u32 = 0;
  let clean: u32 = 0;
  let raw: u32 = 0;
  let prevFree = false;
  let p = dataPage();
  while (p < end) {
    const e = mapAt(p);
    const k = kindOf(e);
    if (k == KIND_FREE) {
      const len = spanLen(e);
      if (prevFree || !len || p + len > end || mapAt(p + len - 1) != e) return E_CHECK_SPAN;
      free += len;
      if (isClean(e)) clean += len;
      p += len;
      prevFree = true;
      continue;
    }
    if (k != KIND_HEAD) return E_CHECK_SPAN;
    const len = headLen(e);
    if (!len || p + len > end) return E_CHECK_SPAN;
    for (let i: u32 = 1; i < len; i++) {
      const ie = mapAt(p + i);
      if (kindOf(ie) != KIND_INNER || innerHead(ie) != p) return E_CHECK_INNER;
    }
    const tag = headTag(e);
    if (tag == TAG_RAW) raw += len;
    else {
      if (tag >= NUM_CLASSES || len != runPages(tag)) return E_CHECK_SPAN;
      const r = checkRun(p, tag);
      if (r) return r;
    }
    p += len;
    prevFree = false;
  }
  if (free != freePages() || raw != rawPages() || clean != cleanPages()) return E_CHECK_PAGES;
  const l = checkLists();
  if (l) return l;
  return checkClasses();
}

// Per class: the runs on the page map add up to the counters, and the avail list holds exactly
// the runs that have a free slot.
function checkClasses(): i32 {
  const end = pages();
  for (let c: u32 = 0; c < NUM_CLASSES; c++) {
    let runs: u32 = 0, free: u32 = 0, withFree: u32 = 0;
    for (let p = dataPage(); p < end; ) {
      const e = mapAt(p);
      if (kindOf(e) == KIND_FREE) { p += spanLen(e); continue; }
      if (headTag(e) == c) {
        runs++;
        free += runFree(p);
        if (runFree(p)) withFree++;
      }
      p += headLen(e);
    }
    if (c >= NUM_SMALL && hintOf(c)) return E_CHECK_CLASS; // a page class keeps none
    const total = runs * slotsPerRun(c);
    if (runs != runsOf(c) || free != freeSlots(c) || total - free != outSlots(c)) return E_CHECK_CLASS;
    let listed: u32 = 0;
    for (let p = availHead(c); p; p = nextOf(p)) {
      const e = mapAt(p);
      if (kindOf(e) != KIND_HEAD || headTag(e) != c || !runFree(p)) return E_CHECK_AVAIL;
      if (++listed > withFree) return E_CHECK_AVAIL;
    }
    if (listed != withFree) return E_CHECK_AVAIL;
  }
  return 0;
}
