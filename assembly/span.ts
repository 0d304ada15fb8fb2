// The page-span allocator: hands out and takes back runs of contiguous 4 KiB data pages.
//
// Free spans sit in 33 doubly linked lists by length: lengths 1..32 one list each (every class
// run is at most 32 pages, so a request finds a fitting list with one `ctz` on the mask of
// non-empty lists), and one list for everything longer. A span's first and last page carry its
// length in the page map, so a freed span merges with both neighbours in O(1).
//
//     page:   p-1        p … p+len-1         p+len
//           ┌──────┬────────────────────┬──────────┐
//           │ FREE │   span being freed │   FREE   │   tail of left neighbour, head of right:
//           │ len=a│                    │  len=b   │   one span of a+len+b pages results
//           └──────┴────────────────────┴──────────┘
//
// A free span is *clean* when its pages were given back to the OS since they were last used (or
// never touched): the host took it with `scavenge`, discarded its pages and returned it with
// `scavenged`. Merging keeps a span clean only if every part was, so a clean span never hides a
// page that may hold data, and the next scavenge finds every page that does. Each list keeps its
// dirty spans before its clean ones (dirty pushed at the head, clean appended at the tail), so
// allocation reuses pages that are still resident first, and a list's head says whether it has a
// dirty span at all.
//
//   bucket b:  head → [dirty] ⇄ [dirty] ⇄ [clean] ⇄ [clean] ← tail

import {
  BUCKETS, KIND_FREE, bucketHead, bucketMask, bucketTail, cleanPages, dataPage, freeEntry, freePages, isClean,
  kindOf, mapAt, nextOf, pages, prevOf, setBucketHead, setBucketMask, setBucketTail, setCleanPages, setFreePages,
  setMap, setNext,
  setPrev, spanLen,
} from "./layout";

@inline function bucketOf(len: u32): u32 {
  return len < BUCKETS ? len - 1 : BUCKETS - 1;
}

function link(p: u32, len: u32, clean: bool): void {
  const b = bucketOf(len);
  setMap(p, freeEntry(len, clean));
  setMap(p + len - 1, freeEntry(len, clean));
  const head = bucketHead(b);
  if (clean) {
    setCleanPages(cleanPages() + len);
    const tail = bucketTail(b);
    setNext(p, 0);
    setPrev(p, tail);
    if (tail) setNext(tail, p);
    else setBucketHead(b, p);
    setBucketTail(b, p);
  } else {
    setPrev(p, 0);
    setNext(p, head);
    if (head) setPrev(head, p);
    else setBucketTail(b, p);
    setBucketHead(b, p);
  }
  setBucketMask(bucketMask() | (<u64>1 << b));
}

function unlink(p: u32, len: u32): void {
  if (isClean(mapAt(p))) setCleanPages(cleanPages() - len);
  const b = bucketOf(len);
  const next = nextOf(p);
  const prev = prevOf(p);
  if (prev) setNext(prev, next);
  else {
    setBucketHead(b, next);
    if (!next) setBucketMask(bucketMask() & ~(<u64>1 << b));
  }
  if (next) setPrev(next, prev);
  else setBucketTail(b, prev);
}

// Puts every data page in one free span, clean: a fresh memory is zero. Called once, by `format`'s
// caller.
export function spanInit(): void {
  const first = dataPage();
  const len = pages() - first;
  link(first, len, true);
  setFreePages(len);
}

// Takes `len` pages; returns the first page, or 0 when no free span is long enough.
export function spanAlloc(len: u32): u32 {
  const mask = bucketMask() & (<u64>-1 << <u64>(bucketOf(len)));
  if (!mask) return 0;
  const b = <u32>ctz(mask);
  let p = bucketHead(b);
  let have = b + 1;
  if (b == BUCKETS - 1) {
    // Longer spans: first fit. Requests above 32 pages only come from raw spans.
    while (p && spanLen(mapAt(p)) < len) p = nextOf(p);
    if (!p) return 0;
    have = spanLen(mapAt(p));
  }
  const clean = isClean(mapAt(p));
  unlink(p, have);
  if (have > len) link(p + len, have - len, clean);
  setFreePages(freePages() - len);
  return p;
}

// The first page of a free span whose pages may hold data (not clean), or 0: a list has one iff
// its head is dirty.
export function dirtySpan(): u32 {
  for (let b: u32 = 0; b < BUCKETS; b++) {
    const p = bucketHead(b);
    if (p && !isClean(mapAt(p))) return p;
  }
  return 0;
}

// Takes the whole free span at `p` out of the lists (the caller marks its pages used).
export function spanTake(p: u32): u32 {
  const len = spanLen(mapAt(p));
  unlink(p, len);
  setFreePages(freePages() - len);
  return len;
}

// Gives back `len` pages starting at `p`, merging with free neighbours; `clean` if the host has
// given their bytes back to the OS. Every page map entry left inside the merged span is cleared,
// so that no stale head of a used span survives there (a second raw_free must find nothing).
export function spanFree(p: u32, len: u32, clean: bool): void {
  setFreePages(freePages() + len);
  setMap(p, 0);
  setMap(p + len - 1, 0);
  if (p > dataPage()) {
    const left = mapAt(p - 1);
    if (kindOf(left) == KIND_FREE) {
      const l = spanLen(left);
      clean = clean && isClean(left);
      p -= l;
      len += l;
      unlink(p, l);
      setMap(p + l - 1, 0);
    }
  }
  const end = p + len;
  if (end < pages()) {
    const right = mapAt(end);
    if (kindOf(right) == KIND_FREE) {
      const r = spanLen(right);
      clean = clean && isClean(right);
      unlink(end, r);
      setMap(end, 0);
      len += r;
    }
  }
  link(p, len, clean);
}
