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

import {
  BUCKETS, KIND_FREE, bucketHead, bucketMask, dataPage, freeEntry, freePages, kindOf, mapAt,
  nextOf, pages, prevOf, setBucketHead, setBucketMask, setFreePages, setMap, setNext, setPrev,
  spanLen,
} from "./layout";

@inline function bucketOf(len: u32): u32 {
  return len < BUCKETS ? len - 1 : BUCKETS - 1;
}

function link(p: u32, len: u32): void {
  const b = bucketOf(len);
  const head = bucketHead(b);
  setMap(p, freeEntry(len));
  setMap(p + len - 1, freeEntry(len));
  setPrev(p, 0);
  setNext(p, head);
  if (head) setPrev(head, p);
  setBucketHead(b, p);
  setBucketMask(bucketMask() | (<u64>1 << b));
}

function unlink(p: u32, len: u32): void {
  const b = bucketOf(len);
  const next = nextOf(p);
  const prev = prevOf(p);
  if (prev) setNext(prev, next);
  else {
    setBucketHead(b, next);
    if (!next) setBucketMask(bucketMask() & ~(<u64>1 << b));
  }
  if (next) setPrev(next, prev);
}

// Puts every data page in one free span. Called once, by `format`'s caller.
export function spanInit(): void {
  const first = dataPage();
  const len = pages() - first;
  link(first, len);
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
  unlink(p, have);
  if (have > len) link(p + len, have - len);
  setFreePages(freePages() - len);
  return p;
}

// Gives back `len` pages starting at `p`, merging with free neighbours.
export function spanFree(p: u32, len: u32): void {
  setFreePages(freePages() + len);
  if (p > dataPage()) {
    const left = mapAt(p - 1);
    if (kindOf(left) == KIND_FREE) {
      const l = spanLen(left);
      p -= l;
      len += l;
      unlink(p, l);
    }
  }
  const end = p + len;
  if (end < pages()) {
    const right = mapAt(end);
    if (kindOf(right) == KIND_FREE) {
      const r = spanLen(right);
      unlink(end, r);
      len += r;
    }
  }
  link(p, len);
}
