// Arena layout: where every piece of core state lives in linear memory.
//
// One arena is one WebAssembly.Memory that never grows. All allocator state lives inside it,
// none in module globals, so any number of core instances (one per worker) can work on the
// same shared arena; they agree on nothing but this layout and the lock word.
//
//   offset 0     ┌──────────────────────────────────────────────┐  page 0
//                │ header (256 B): magic, ABI, geometry, lock,   │
//                │   ids, span buckets, offsets of the tables    │
//          256   ├──────────────────────────────────────────────┤
//                │ class records: 64 × 32 B                      │
//         2304   ├──────────────────────────────────────────────┤
//                │ span list tails: 33 × u32                     │
//         2436   ├──────────────────────────────────────────────┤
//                │ (unused to the end of page 0)                 │
//         4096   ├──────────────────────────────────────────────┤  page 1
//                │ page map   u32 × pages   what each page is    │
//                │ page next  u32 × pages   list links, by the   │
//                │ page prev  u32 × pages     first page of a    │
//                │                            span or a run      │
//                │ run free   u32 × pages   free slots of a run  │
//                │ slot state u8  × granules one byte per 128 B  │
//                │ free bits  u32 × granules/32: free slot starts│
//                │ owners     u16 × granules: realm that took it │
//                ├──────────────────────────────────────────────┤  page `data` (4 KiB aligned)
//                │ data pages: runs of slots, free spans, raw    │
//                │   spans; never touched by the allocator       │
//                └──────────────────────────────────────────────┘  arena end
//
// Metadata is kept out of band so that a free buffer's bytes belong to nobody: a write after
// free cannot corrupt the allocator, and debug mode can fill free buffers with DEADBEEF.
// A page is 4 KiB; a granule is 128 B, the smallest class and the alignment of every slot, so
// `offset >> 7` indexes the slot state of any buffer without a lookup.

export const MAGIC: u32 = 0x41534d4d; // "MMSA" little-endian
export const ABI_VERSION: u32 = 4;

export const PAGE_SHIFT: u32 = 12;
export const GRANULE_SHIFT: u32 = 7;
export const WASM_PAGE_SHIFT: u32 = 16; // memory.size() counts 64 KiB WebAssembly pages
export const GRANULES_PER_PAGE: u32 = 1 << (PAGE_SHIFT - GRANULE_SHIFT); // 32

// ---- header -------------------------------------------------------------------------------------
//
//    0 magic      4 abi        8 pages      12 data      16 lock      20 flags
//   24 owner     28 arena id  32 free pgs  36 raw pgs   40 bucket mask (u64)
//   48 bucket heads: 33 × u32 (lengths 1..32, then all longer spans)
//  192 page map  196 next    200 prev     204 run free  208 state    212 free bits
//  216 broken: the first failed invariant check in debug mode, or found by recover() or an alloc
//      (0 while none)
//  220 clean pgs: free pages whose bytes were given back to the OS (or never touched): they read
//      as zero, or, after MADV_FREE, as zero or their old bytes
//  224 owners: offset of the owner table (the low 16 bits of the realm tag that last took each
//      slot from the core, or that a host recorded since: see index.ts reclaim)

const H_MAGIC: usize = 0;
const H_ABI: usize = 4;
const H_PAGES: usize = 8;
const H_DATA: usize = 12;
export const H_LOCK: usize = 16;
const H_FLAGS: usize = 20;
const H_OWNER: usize = 24;
const H_ARENA: usize = 28;
const H_FREE_PAGES: usize = 32;
const H_RAW_PAGES: usize = 36;
const H_BUCKET_MASK: usize = 40;
const H_BUCKET_HEADS: usize = 48;
const H_MAP: usize = 192;
const H_NEXT: usize = 196;
const H_PREV: usize = 200;
const H_RUN_FREE: usize = 204;
const H_STATE: usize = 208;
const H_BITS: usize = 212;
const H_BROKEN: usize = 216;
const H_CLEAN_PAGES: usize = 220;
const H_OWNERS: usize = 224;

export const BUCKETS: u32 = 33;
const BUCKET_TAILS: usize = 2304;
export const CLASS_BASE: usize = 256;
export const CLASS_RECORD: usize = 32;

export const FLAG_DEBUG: u32 = 1;
export const FLAG_CLOSED: u32 = 2;   // set by close(): nothing more is handed out
export const FLAG_QUARANTINED: u32 = 4; // the arena was found broken: nothing more is handed out

@inline export function magic(): u32 { return load<u32>(H_MAGIC); }
@inline export function abi(): u32 { return load<u32>(H_ABI); }
@inline export function pages(): u32 { return load<u32>(H_PAGES); }
@inline export function dataPage(): u32 { return load<u32>(H_DATA); }
@inline export function flags(): u32 { return load<u32>(H_FLAGS); }
@inline export function setFlags(f: u32): void { store<u32>(H_FLAGS, f); }
// A broken invariant found outside a check (recover, or a run with no free slot where its count
// says it has one): no more hand-outs, frees still taken, `code` kept for check().
@inline export function quarantine(code: i32): void {
  setFlags(flags() | FLAG_QUARANTINED);
  if (!broken()) setBroken(code);
}
@inline export function owner(): u32 { return load<u32>(H_OWNER); }
@inline export function arenaId(): u32 { return load<u32>(H_ARENA); }
@inline export function setArenaId(id: u32): void { store<u32>(H_ARENA, id); }
@inline export function freePages(): u32 { return load<u32>(H_FREE_PAGES); }
@inline export function setFreePages(n: u32): void { store<u32>(H_FREE_PAGES, n); }
@inline export function rawPages(): u32 { return load<u32>(H_RAW_PAGES); }
@inline export function setRawPages(n: u32): void { store<u32>(H_RAW_PAGES, n); }
@inline export function cleanPages(): u32 { return load<u32>(H_CLEAN_PAGES); }
@inline export function setCleanPages(n: u32): void { store<u32>(H_CLEAN_PAGES, n); }
@inline export function broken(): i32 { return load<i32>(H_BROKEN); }
@inline export function setBroken(code: i32): void { store<i32>(H_BROKEN, code); }
@inline export function bucketMask(): u64 { return load<u64>(H_BUCKET_MASK); }
@inline export function setBucketMask(m: u64): void { store<u64>(H_BUCKET_MASK, m); }
@inline export function bucketHead(b: u32): u32 { return load<u32>(H_BUCKET_HEADS + (<usize>b << 2)); }
@inline export function setBucketHead(b: u32, p: u32): void { store<u32>(H_BUCKET_HEADS + (<usize>b << 2), p); }
@inline export function bucketTail(b: u32): u32 { return load<u32>(BUCKET_TAILS + (<usize>b << 2)); }
@inline export function setBucketTail(b: u32, p: u32): void { store<u32>(BUCKET_TAILS + (<usize>b << 2), p); }

// ---- page tables ---------------------------------------------------------------------------------
//
// page map entry (u32):   31..30 kind   29..0 payload
//   KIND_NONE   0         metadata page, or the inside of a free span (never read there)
//   KIND_FREE   1         first and last page of a free span; 29 clean (the span's pages were
//                         given back to the OS since last used, see scavenge), 28..0 length
//   KIND_HEAD   2         first page of a run or raw span; 23..16 class (TAG_RAW for raw),
//                         15..0 length in pages
//   KIND_INNER  3         any other page of a run or raw span; payload = its first page
//
// next/prev link the first pages of free spans (per length bucket) and of runs that have a free
// slot (per class); 0 is "none", which is safe because page 0 is the header.

export const KIND_NONE: u32 = 0;
export const KIND_FREE: u32 = 1;
export const KIND_HEAD: u32 = 2;
export const KIND_INNER: u32 = 3;
export const TAG_RAW: u32 = 0xff;

@inline export function mapAt(p: u32): u32 { return load<u32>(load<u32>(H_MAP) + (p << 2)); }
@inline export function setMap(p: u32, e: u32): void { store<u32>(load<u32>(H_MAP) + (p << 2), e); }
@inline export function kindOf(e: u32): u32 { return e >>> 30; }
export const FREE_CLEAN: u32 = 1 << 29;
@inline export function freeEntry(len: u32, clean: bool): u32 { return (KIND_FREE << 30) | (clean ? FREE_CLEAN : 0) | len; }
@inline export function isClean(e: u32): bool { return (e & FREE_CLEAN) != 0; }
@inline export function headEntry(tag: u32, len: u32): u32 { return (KIND_HEAD << 30) | (tag << 16) | len; }
@inline export function innerEntry(head: u32): u32 { return (KIND_INNER << 30) | head; }
@inline export function spanLen(e: u32): u32 { return e & 0x1fffffff; }
@inline export function headLen(e: u32): u32 { return e & 0xffff; }
@inline export function headTag(e: u32): u32 { return (e >>> 16) & 0xff; }
@inline export function innerHead(e: u32): u32 { return e & 0x3fffffff; }

// The tables' byte offsets, for the hot paths (run.ts takeFrom, putSlot) to read into locals
// before their first store: a header load after a store is done again (the store could have
// written the header), and through wasm2c it also reloads the memory's base pointer. Only a few:
// each local holds a register for the whole call, and once they run out a C compiler saves more.
@inline export function mapTable(): u32 { return load<u32>(H_MAP); }
@inline export function nextTable(): u32 { return load<u32>(H_NEXT); }
@inline export function prevTable(): u32 { return load<u32>(H_PREV); }
@inline export function stateTable(): u32 { return load<u32>(H_STATE); }
@inline export function bitsTable(): u32 { return load<u32>(H_BITS); }
// An entry of a u32-per-page table (map, next, prev, run free) or of the free bits, by table offset.
@inline export function wordIn(table: u32, i: u32): u32 { return load<u32>(table + (i << 2)); }
@inline export function setWordIn(table: u32, i: u32, v: u32): void { store<u32>(table + (i << 2), v); }

@inline export function nextOf(p: u32): u32 { return load<u32>(load<u32>(H_NEXT) + (p << 2)); }
@inline export function setNext(p: u32, q: u32): void { store<u32>(load<u32>(H_NEXT) + (p << 2), q); }
@inline export function prevOf(p: u32): u32 { return load<u32>(load<u32>(H_PREV) + (p << 2)); }
@inline export function setPrev(p: u32, q: u32): void { store<u32>(load<u32>(H_PREV) + (p << 2), q); }
@inline export function runFree(p: u32): u32 { return load<u32>(load<u32>(H_RUN_FREE) + (p << 2)); }
@inline export function setRunFree(p: u32, n: u32): void { store<u32>(load<u32>(H_RUN_FREE) + (p << 2), n); }

// ---- slot state ------------------------------------------------------------------------------------
//
// One byte per granule; non-zero only at the first granule of a slot:
//   7..2 class   1..0 state: 1 FREE (in the core), 2 OUT (handed to a host cache), 3 LIVE
// The core moves slots between FREE and OUT. A host that caches buffers (the TypeScript
// magazines) flips OUT <-> LIVE itself with plain byte stores to tell "in my cache" from "in the
// user's hands"; the core treats OUT and LIVE alike. A byte of 0 is "not the start of a slot".

export const ST_FREE: u32 = 1;
export const ST_OUT: u32 = 2;
export const ST_LIVE: u32 = 3;

@inline export function stateAt(g: u32): u32 { return load<u8>(load<u32>(H_STATE) + g); }
// The same, ordered with hosts' atomic stores (an owner recorded before a state flip).
@inline export function stateAtomic(g: u32): u32 {
  if (ASC_FEATURE_THREADS) return atomic.load<u8>(load<u32>(H_STATE) + g);
  return stateAt(g);
}
@inline export function setState(g: u32, s: u32): void { store<u8>(load<u32>(H_STATE) + g, <u8>s); }
@inline export function slotState(cls: u32, st: u32): u32 { return (cls << 2) | st; }

// Owners: u16 per granule, meaningful at the first granule of a slot that is OUT or LIVE. Atomic,
// because hosts record owners without the lock (a buffer posted to a realm and freed there).
@inline export function ownerAt(g: u32): u32 {
  const at = load<u32>(H_OWNERS) + (g << 1);
  if (ASC_FEATURE_THREADS) return atomic.load<u16>(at);
  return load<u16>(at);
}
@inline export function setOwner(g: u32, tag: u32): void {
  const at = load<u32>(H_OWNERS) + (g << 1);
  if (ASC_FEATURE_THREADS) atomic.store<u16>(at, <u16>tag);
  else store<u16>(at, <u16>tag);
}

// Free bits: bit g set <=> granule g starts a FREE slot. Runs are 32-granule (page) aligned, so a
// run's bits are whole words and `ctz` finds the lowest free slot.
@inline export function bitsWord(w: u32): u32 { return load<u32>(load<u32>(H_BITS) + (w << 2)); }
@inline export function setBitsWord(w: u32, v: u32): void { store<u32>(load<u32>(H_BITS) + (w << 2), v); }

// ---- class records ---------------------------------------------------------------------------------
//
//    0 avail head   4 avail tail   8 runs   12 free slots   16 out slots   20 hint
//   24 taken (u64): slots handed out by the core, ever
//
// hint (small classes; a page class's is 0, its run being one slot): a page h such that, if h is
// a page of a run of the class, no FREE slot of that run starts on a page below h. alloc scans the
// free bits of the run at the head of the list from h when h lies in that run (else from its
// first page), so a run whose low slots stay out is not scanned from its first word on every
// alloc, which costs a mispredicted branch or more when the classes come in no order:
//
//   run p … p+15, one bits word per page:    p    p+1   p+2   p+3   p+4  …
//                                           [ 0 ][ 0  ][ 0  ][0110][1111] …
//                                                              ^ hint
//
// The word alloc found its slot in becomes the hint; a free below the hint, in the hint's run,
// lowers it; a new run sets it to its first page (an old hint may lie among the new run's pages).
// A hint on no run of the class (its run went back to the span allocator) is never used.

@inline function rec(c: u32): usize { return CLASS_BASE + <usize>c * CLASS_RECORD; }
@inline export function availHead(c: u32): u32 { return load<u32>(rec(c)); }
@inline export function setAvailHead(c: u32, p: u32): void { store<u32>(rec(c), p); }
@inline export function availTail(c: u32): u32 { return load<u32>(rec(c), 4); }
@inline export function setAvailTail(c: u32, p: u32): void { store<u32>(rec(c), p, 4); }
@inline export function runsOf(c: u32): u32 { return load<u32>(rec(c), 8); }
@inline export function setRuns(c: u32, n: u32): void { store<u32>(rec(c), n, 8); }
@inline export function freeSlots(c: u32): u32 { return load<u32>(rec(c), 12); }
@inline export function setFreeSlots(c: u32, n: u32): void { store<u32>(rec(c), n, 12); }
@inline export function outSlots(c: u32): u32 { return load<u32>(rec(c), 16); }
@inline export function setOutSlots(c: u32, n: u32): void { store<u32>(rec(c), n, 16); }
// A take moves one slot from free (+12) to out (+16), a give-back the other way: one u64 add on
// the pair does both (little-endian: free is the low half). Taking, free >= 1, so the low half's
// wrap-around carries the +1 into out; giving back, free + 1 cannot wrap and out >= 1.
@inline export function countTake(c: u32): void { store<u64>(rec(c), load<u64>(rec(c), 12) + 0xffffffff, 12); }
@inline export function countPut(c: u32): void { store<u64>(rec(c), load<u64>(rec(c), 12) + 0xffffffff00000001, 12); }
@inline export function hintOf(c: u32): u32 { return load<u32>(rec(c), 20); }
@inline export function setHint(c: u32, h: u32): void { store<u32>(rec(c), h, 20); }
@inline export function takenOf(c: u32): u64 { return load<u64>(rec(c), 24); }
@inline export function setTaken(c: u32, n: u64): void { store<u64>(rec(c), n, 24); }

// ---- formatting ------------------------------------------------------------------------------------

// Lays out an arena of `totalPages` 4 KiB pages whose bytes are all zero. Returns the first data
// page, or 0 if the arena is too small to hold its tables and one 128 KiB run.
// The first data page of an arena of `totalPages`: its header page and tables come before it.
export function firstDataPage(totalPages: u32): u32 {
  const granules = totalPages << (PAGE_SHIFT - GRANULE_SHIFT);
  const tables = (1 << PAGE_SHIFT) + (totalPages << 4) + granules + (granules >>> 3) + (granules << 1);
  return (tables + (1 << PAGE_SHIFT) - 1) >>> PAGE_SHIFT;
}

export function format(totalPages: u32, flagBits: u32, ownerId: u32, id: u32): u32 {
  const granules = totalPages << (PAGE_SHIFT - GRANULE_SHIFT);
  let at: u32 = 1 << PAGE_SHIFT;
  const map = at; at += totalPages << 2;
  const next = at; at += totalPages << 2;
  const prev = at; at += totalPages << 2;
  const runFreeAt = at; at += totalPages << 2;
  const state = at; at += granules;
  const bits = at; at += granules >>> 3;
  const owners = at; at += granules << 1;
  const data = firstDataPage(totalPages);
  if (data + 32 > totalPages) return 0;
  store<u32>(H_MAGIC, MAGIC);
  store<u32>(H_ABI, ABI_VERSION);
  store<u32>(H_PAGES, totalPages);
  store<u32>(H_DATA, data);
  store<u32>(H_FLAGS, flagBits);
  store<u32>(H_OWNER, ownerId);
  store<u32>(H_ARENA, id);
  store<u32>(H_MAP, map);
  store<u32>(H_NEXT, next);
  store<u32>(H_PREV, prev);
  store<u32>(H_RUN_FREE, runFreeAt);
  store<u32>(H_STATE, state);
  store<u32>(H_BITS, bits);
  store<u32>(H_OWNERS, owners);
  return data;
}
