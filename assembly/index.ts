// memsys core: the exported ABI of one arena. docs/abi.md is the contract; this file is its
// implementation. Every export is a plain C-like function of numbers (offsets, counts, class
// ids). Every call that changes state takes the arena lock; every error is a negative return
// code, never a trap, so a host needs nothing of ours to use the module.

import { NUM_CLASSES, classSize, runPages, slotsPerRun } from "./classes";
import { checkAll } from "./check";
import {
  ABI_VERSION, FLAG_CLOSED, FLAG_DEBUG, FLAG_QUARANTINED, availHead, broken, quarantine, setBroken, GRANULE_SHIFT, KIND_HEAD, MAGIC, PAGE_SHIFT, ST_FREE, ST_LIVE, ST_OUT, TAG_RAW, abi, arenaId,
  cleanPages, dataPage, flags, setArenaId, setFlags, format, freePages, freeSlots, headLen, headTag, magic, mapAt,
  outSlots, owner, ownerAt, pages, stateAtomic, rawPages, runsOf, setRawPages, setState, slotState, spanLen, stateAt,
  takenOf, WASM_PAGE_SHIFT, firstDataPage,
} from "./layout";
import { lock, lockWord, realmTag, setRealm, takeOver, unlock } from "./lock";
import { markSpan, putSlot, takeFrom, takeSlot, trimClass } from "./run";
import { dirtySpan, spanAlloc, spanFree, spanInit, spanTake } from "./span";

export const E_CLASS: i32 = -1;      // class id not in 0..63
export const E_OFFSET: i32 = -2;     // offset outside the data pages, or not 128-byte aligned
export const E_NOT_SLOT: i32 = -3;   // offset is not the start of a buffer
export const E_WRONG_CLASS: i32 = -4;// the buffer there belongs to another class
export const E_NOT_OUT: i32 = -5;    // the buffer there is free (a double free)
export const E_FORMAT: i32 = -6;     // no arena header, another ABI, or init on a used arena
export const E_TOO_SMALL: i32 = -7;  // arena too small for its tables and one largest run
export const E_ARG: i32 = -8;        // a count or array out of range
export const E_BUSY: i32 = -9;       // the lock stayed taken (its holder may have died): nothing changed
export const E_NOT_HELD: i32 = -10;  // recover: that realm does not hold the lock

// The header's flags, exported as globals with the rest of the ABI's constants.
export { FLAG_DEBUG, FLAG_CLOSED, FLAG_QUARANTINED };
const NO_HANDOUT: u32 = FLAG_CLOSED | FLAG_QUARANTINED;
export const MAX_BATCH: u32 = 1 << 24; // free_batch's error encoding must fit in an i32

// ---- helpers ---------------------------------------------------------------------------------------

@inline function memBytes(): u64 { return <u64>memory.size() << WASM_PAGE_SHIFT; }

// Is [ptr, ptr + 4n) a u32 array inside the data pages, and n small enough for batchError?
function arrayOk(ptr: u32, n: u32): bool {
  return n <= MAX_BATCH && (ptr & 3) == 0 && ptr >= dataPage() << PAGE_SHIFT &&
    <u64>ptr + (<u64>n << 2) <= memBytes();
}

// Is `off` a buffer of class c handed out by the core (OUT or LIVE)? validSlot's checks in one
// test on the state byte, which is then (c << 2) | 2 or 3: the byte xor c << 2 is 2 or 3 (never
// for a class of 64 or more, the byte having 8 bits).
@inline function slotOk(off: u32, c: u32): bool {
  return (off & ((1 << GRANULE_SHIFT) - 1)) == 0 && off >>> PAGE_SHIFT >= dataPage() && <u64>off < memBytes() &&
    (stateAt(off >>> GRANULE_SHIFT) ^ (c << 2)) >>> 1 == 1;
}

// Checks that `off` is a buffer of class c handed out by the core (OUT or LIVE): returns its
// state (2 or 3), or the code of the first check it fails.
function validSlot(off: u32, c: u32): i32 {
  if (c >= NUM_CLASSES) return E_CLASS;
  if ((off & ((1 << GRANULE_SHIFT) - 1)) != 0 || off >>> PAGE_SHIFT < dataPage() ||
      <u64>off >= memBytes()) return E_OFFSET;
  const s = stateAt(off >>> GRANULE_SHIFT);
  if (!s) return E_NOT_SLOT;
  if (s >>> 2 != c) return E_WRONG_CLASS;
  if ((s & 3) == ST_FREE) return E_NOT_OUT;
  return <i32>(s & 3);
}

// In debug mode a mutating call ends with a full check. A failure is a bug in the core: the call
// has already happened and cannot be undone, so its result stands and the first failure is kept
// in the header, where `check()` reports it (a result code could not carry it unambiguously).
@inline function done(r: i32): i32 {
  if (flags() & FLAG_DEBUG && !broken()) setBroken(checkAll());
  unlock();
  return r;
}

// Is [0, end) all zero? `init` formats only a fresh memory: its header and the tables it will
// lay out after it (the data pages it leaves alone).
function blank(end: u32): bool {
  for (let p: usize = 0; p < end; p += 8) if (load<u64>(p)) return false;
  return true;
}

// Before init (no magic in the header) every call but init, attach and set_realm refuses and
// writes nothing: E_FORMAT, or 0 from alloc and raw_alloc, or -1 from the stats.
@inline function formatted(): bool { return magic() == MAGIC; }

// ---- arena -----------------------------------------------------------------------------------------

// Formats a zeroed memory as an arena. `ownerId` and `id` are the host's: memsys stores its MMSA
// and arena ids there so that any worker can tell which arena a shared buffer belongs to.
// Call it once, before any other instance sees the memory: it takes no lock (a non-zero lock word
// in a memory that is not fresh would spin forever), and `attach` in another instance reads a
// header that `init` is writing.
export function init(flagBits: u32, ownerId: u32, id: u32): i32 {
  if (flagBits & ~FLAG_DEBUG) return E_ARG; // the other flags are the core's to set
  const total = <u32>(memBytes() >>> PAGE_SHIFT);
  if (!blank(min(firstDataPage(total), total) << PAGE_SHIFT)) return E_FORMAT;
  if (!format(total, flagBits, ownerId, id)) return E_TOO_SMALL;
  spanInit();
  if (flagBits & FLAG_DEBUG) setBroken(checkAll());
  return 0;
}

// ---- realms and the lock -----------------------------------------------------------------------------

// Names this instance's realm (1 … 2^32 − 1) for the lock word, so that a host can tell which realm
// holds the lock and recover it from one that died. Default 1. Returns 0 or E_ARG.
export function set_realm(tag: u32): i32 {
  if (!tag) return E_ARG;
  setRealm(tag);
  return 0;
}

// Takes over the lock from realm `dead`, which its host knows died inside a call, and checks the
// arena: 0, it is consistent (the dead realm's call had not started changing it, or had
// finished); 1, it is not, and is quarantined (FLAG_QUARANTINED: nothing is handed out from it
// any more, frees are still taken, and its host drops it once nothing is out). E_NOT_HELD if
// `dead` does not hold the lock, E_ARG if it is 0 or this instance's own realm.
export function recover(dead: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (!dead || dead == realmTag()) return E_ARG;
  if (!takeOver(dead)) return E_NOT_HELD;
  const r = checkAll();
  if (r) quarantine(r);
  unlock();
  return r ? 1 : 0;
}

// Gives back the slots a dead realm had cached: every OUT slot whose owner is `dead` (low 16 bits)
// goes back to its run, as `free` would. Returns how many. A host that takes a slot over outside
// the core (a buffer posted to its realm and freed into its cache) records itself as the owner
// first (an atomic u16 store at the owner table, header word 224), then flips the state byte.
export function reclaim(dead: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (!dead || dead == realmTag()) return E_ARG;
  if (!lock()) return E_BUSY;
  const tag = dead & 0xffff;
  let n: u32 = 0;
  const end = pages() << (PAGE_SHIFT - GRANULE_SHIFT);
  for (let g = dataPage() << (PAGE_SHIFT - GRANULE_SHIFT); g < end; g++) {
    const st = stateAtomic(g);
    if ((st & 3) == ST_OUT && ownerAt(g) == tag) {
      putSlot(st >>> 2, g << GRANULE_SHIFT);
      n++;
    }
  }
  return done(<i32>n);
}

// Bytes of the LIVE slots whose owner is `dead`: in its user's hands when it died, or passed on
// to another realm. Takes no lock.
export function held(dead: u32): f64 {
  if (!formatted()) return -1;
  const tag = dead & 0xffff;
  let bytes: f64 = 0;
  const end = pages() << (PAGE_SHIFT - GRANULE_SHIFT);
  for (let g = dataPage() << (PAGE_SHIFT - GRANULE_SHIFT); g < end; g++) {
    const st = stateAt(g);
    if ((st & 3) == ST_LIVE && ownerAt(g) == tag) bytes += classSize(st >>> 2);
  }
  return bytes;
}

// Checks that this memory holds an arena of our ABI; a second instance calls it before use.
export function attach(): i32 {
  return magic() == MAGIC && abi() == ABI_VERSION && <u64>pages() << PAGE_SHIFT == memBytes()
    ? 0 : E_FORMAT;
}

// 0, or the code of the first broken invariant (one found by debug mode earlier, else now).
export function check(): i32 {
  if (!formatted()) return E_FORMAT;
  if (!lock()) return E_BUSY;
  const r = broken() ? broken() : checkAll();
  unlock();
  return r;
}

// ---- slots -----------------------------------------------------------------------------------------

// One buffer of class c; returns its offset, or 0 when the arena is full or c is not a class.
export function alloc(c: u32): u32 {
  if (!formatted()) return 0;
  if (c >= NUM_CLASSES || !lock()) return 0;
  // The common call (a run on the list, no flag set) calls no function, so that compiled to C by
  // wasm2c it needs no stack frame and saves next to no registers. allocSlow has two call sites,
  // both tail calls, because Binaryen inlines a function called from one place.
  const p = availHead(c);
  if (!p) return allocSlow(c);
  if (flags() & (NO_HANDOUT | FLAG_DEBUG)) return allocSlow(c);
  const off = takeFrom(c, p);
  unlock();
  return off;
}

function allocSlow(c: u32): u32 {
  if (flags() & NO_HANDOUT) return <u32>done(0);
  return <u32>done(<i32>takeSlot(c));
}

// Takes up to n buffers of class c into the u32 array at `out`. Returns how many (fewer when the
// arena fills up).
export function alloc_batch(c: u32, out: u32, n: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (c >= NUM_CLASSES) return E_CLASS;
  if (!arrayOk(out, n)) return E_ARG;
  if (!lock()) return E_BUSY;
  let got: u32 = 0;
  if (flags() & NO_HANDOUT) n = 0;
  for (; got < n; got++) {
    const off = takeSlot(c);
    if (!off) break;
    store<u32>(<usize>out + (<usize>got << 2), off);
  }
  return done(<i32>got);
}

// Gives back one buffer of class c.
export function free(off: u32, c: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (!lock()) return E_BUSY;
  // As in alloc: the common call (a good slot, no debug mode) calls no function.
  if (!slotOk(off, c)) return freeSlow(off, c);
  if (flags() & FLAG_DEBUG) return freeSlow(off, c);
  putSlot(c, off);
  unlock();
  return 0;
}

// free under the lock, with the result code of a bad slot and debug mode's check.
function freeSlow(off: u32, c: u32): i32 {
  const v = validSlot(off, c);
  if (v < 0) { unlock(); return v; }
  putSlot(c, off);
  return done(0);
}

// A failed entry of a batch: -16·(i + 1) + code, so r <= -16 means entry (-r >> 4) - 1 failed
// with code -(-r & 15), and -15 … -1 are errors of the call itself.
@inline function batchError(i: u32, code: i32): i32 { return -16 * <i32>(i + 1) + code; }

// Gives back the n buffers of class c whose offsets are in the u32 array at `ptr`. All or nothing:
// if any entry is invalid, including the same buffer twice, nothing changes.
export function free_batch(c: u32, ptr: u32, n: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (c >= NUM_CLASSES) return E_CLASS;
  if (!arrayOk(ptr, n)) return E_ARG;
  if (!lock()) return E_BUSY;
  // Pass 1 marks each slot FREE in its state byte only, so that a duplicate fails validation; the
  // old state (OUT or LIVE) waits in the entry's low bits, which are zero in any valid offset.
  for (let i: u32 = 0; i < n; i++) {
    const at = <usize>ptr + (<usize>i << 2);
    const off = load<u32>(at);
    const v = validSlot(off, c);
    if (v < 0) {
      for (let j: u32 = 0; j < i; j++) {
        const bt = <usize>ptr + (<usize>j << 2);
        const e = load<u32>(bt);
        setState(e >>> GRANULE_SHIFT, slotState(c, e & 3));
        store<u32>(bt, e & ~<u32>3);
      }
      unlock();
      return batchError(i, v);
    }
    setState(off >>> GRANULE_SHIFT, slotState(c, ST_FREE));
    store<u32>(at, off | <u32>v);
  }
  for (let i: u32 = 0; i < n; i++) {
    const at = <usize>ptr + (<usize>i << 2);
    const off = load<u32>(at) & ~<u32>3;
    store<u32>(at, off);
    putSlot(c, off);
  }
  return done(<i32>n);
}

// Is `off` a buffer of class c that the core has handed out? Returns 2 (OUT) or 3 (LIVE), or the
// error code that `free` would return.
export function validate(off: u32, c: u32): i32 {
  if (!formatted()) return E_FORMAT;
  return validSlot(off, c);
}

// Releases fully free runs of class c to the span allocator while the class keeps at least
// `depth` free slots. Returns the number of slots released.
export function trim(c: u32, depth: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (c >= NUM_CLASSES) return E_CLASS;
  if (!lock()) return E_BUSY;
  return done(<i32>trimClass(c, depth));
}

// Releases every fully free run of every class. Returns the number of pages given back to the
// span allocator; the arena is empty when `arena_stat(STAT_FREE_PAGES)` equals its data pages.
export function release(): i32 {
  if (!formatted()) return E_FORMAT;
  if (!lock()) return E_BUSY;
  const before = freePages();
  for (let c: u32 = 0; c < NUM_CLASSES; c++) trimClass(c, 0);
  return done(<i32>(freePages() - before));
}

// Closes the arena if no buffer of any class is out: from then on alloc, alloc_batch and raw_alloc
// hand out nothing, in every instance, so each can let go of the memory. Raw spans (memsys's
// scratch pages) do not keep it open. Returns 1 if this call closed it, 2 if it was closed
// already (so that exactly one caller counts the closing), 0 if buffers are out (nothing changes).
export function close(): i32 {
  if (!formatted()) return E_FORMAT;
  if (!lock()) return E_BUSY;
  if (flags() & FLAG_CLOSED) return done(2);
  for (let c: u32 = 0; c < NUM_CLASSES; c++) {
    if (outSlots(c)) { unlock(); return 0; }
  }
  setFlags(flags() | FLAG_CLOSED);
  return done(1);
}

// Opens a closed arena again under a new arena id, so that a host that let go of it under the old
// id (another instance) takes it for a new arena. Returns 0, or E_FORMAT if it was not closed.
export function reopen(id: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (!lock()) return E_BUSY;
  const f = flags();
  if (!(f & FLAG_CLOSED) || f & FLAG_QUARANTINED) { unlock(); return E_FORMAT; }
  setArenaId(id);
  setFlags(f & ~FLAG_CLOSED);
  return done(0);
}

// ---- raw spans -------------------------------------------------------------------------------------

// n contiguous pages for the host's own use (memsys keeps its batch arrays in one). Returns the
// byte offset, or 0 when no span is long enough.
export function raw_alloc(n: u32): u32 {
  if (!formatted()) return 0;
  if (!n || n > 0xffff || !lock()) return 0;
  if (flags() & NO_HANDOUT) return <u32>done(0);
  const p = spanAlloc(n);
  if (p) {
    markSpan(p, n, TAG_RAW);
    setRawPages(rawPages() + n);
  }
  return <u32>done(<i32>(p << PAGE_SHIFT));
}

export function raw_free(off: u32): i32 {
  if (!formatted()) return E_FORMAT;
  return rawFree(off, false);
}

function rawFree(off: u32, clean: bool): i32 {
  if ((off & ((1 << PAGE_SHIFT) - 1)) != 0 || off >>> PAGE_SHIFT < dataPage() ||
      <u64>off >= memBytes()) return E_OFFSET;
  if (!lock()) return E_BUSY;
  const p = off >>> PAGE_SHIFT;
  const e = mapAt(p);
  if (e >>> 30 != KIND_HEAD || headTag(e) != TAG_RAW) { unlock(); return E_NOT_SLOT; }
  const n = headLen(e);
  setRawPages(rawPages() - n);
  spanFree(p, n, clean);
  return done(0);
}

// ---- giving pages back to the OS -------------------------------------------------------------------
//
// The core cannot give pages back itself (WebAssembly has no such instruction); the host can
// (madvise in a native host). So the host takes the free spans whose pages may hold data out of
// the free lists as raw spans, where nothing can hand them out while it discards them outside the
// lock, and returns each one clean:
//
//   n = scavenge(out, max)            out: u32 pairs (byte offset, byte length), n pairs
//   for each pair: madvise(base + offset, length, MADV_DONTNEED)
//   for each pair: scavenged(offset)
//
// A span longer than 65535 pages comes as several pairs (a 4 GiB arena's one span: 17); a call
// takes whole spans only. Clean free pages (arena_stat STAT_CLEAN_PAGES) are not taken again, so
// a host may call it as often as it likes; a span merges clean only with clean neighbours.

const RAW_MAX: u32 = 0xffff;
// Pages one call takes at most (whole spans, so a longer one still comes whole): the host
// discards them in ~2 ms, while other realms find those pages missing from the free lists.
const SCAVENGE_PAGES: u32 = 8192;

@inline function pieces(len: u32): u32 { return (len + RAW_MAX - 1) / RAW_MAX; }

export function scavenge(out: u32, max: u32): i32 {
  if (!formatted()) return E_FORMAT;
  if (max > MAX_BATCH || !arrayOk(out, max << 1)) return E_ARG;
  if (!lock()) return E_BUSY;
  let n: u32 = 0;
  let taken: u32 = 0;
  for (let p = dirtySpan(); p && taken < SCAVENGE_PAGES && n + pieces(spanLen(mapAt(p))) <= max; p = dirtySpan()) {
    let len = spanTake(p);
    taken += len;
    while (len) {
      const k = len < RAW_MAX ? len : RAW_MAX;
      markSpan(p, k, TAG_RAW);
      setRawPages(rawPages() + k);
      const at = <usize>out + (<usize>n << 3);
      store<u32>(at, p << PAGE_SHIFT);
      store<u32>(at, k << PAGE_SHIFT, 4);
      n++;
      p += k;
      len -= k;
    }
  }
  return done(<i32>n);
}

// Returns a span that `scavenge` handed out, clean. The same checks and codes as raw_free.
export function scavenged(off: u32): i32 {
  if (!formatted()) return E_FORMAT;
  return rawFree(off, true);
}

// ---- counters --------------------------------------------------------------------------------------

export const CSTAT_SIZE = 0;
export const CSTAT_RUN_PAGES = 1;
export const CSTAT_SLOTS_PER_RUN = 2;
export const CSTAT_RUNS = 3;
export const CSTAT_FREE = 4;
export const CSTAT_OUT = 5;
export const CSTAT_TAKEN = 6;

// One counter of class c. Taken counts the slots the core has ever handed out (a host's own reuse
// of them is not the core's to see); f64 carries it to JavaScript exactly up to 2^53.
export function class_stat(c: u32, field: u32): f64 {
  if (!formatted()) return -1;
  if (c >= NUM_CLASSES) return -1;
  switch (field) {
    case CSTAT_SIZE: return classSize(c);
    case CSTAT_RUN_PAGES: return runPages(c);
    case CSTAT_SLOTS_PER_RUN: return slotsPerRun(c);
    case CSTAT_RUNS: return runsOf(c);
    case CSTAT_FREE: return freeSlots(c);
    case CSTAT_OUT: return outSlots(c);
    case CSTAT_TAKEN: return <f64>takenOf(c);
  }
  return -1;
}

export const STAT_ABI = 0;
export const STAT_PAGES = 1;
export const STAT_DATA_PAGE = 2;
export const STAT_FREE_PAGES = 3;
export const STAT_RAW_PAGES = 4;
export const STAT_OWNER = 5;
export const STAT_ARENA_ID = 6;
export const STAT_FLAGS = 7;
export const STAT_CLEAN_PAGES = 8;
export const STAT_LOCK = 9;          // the realm tag holding the lock now, 0 if free

export function arena_stat(field: u32): f64 {
  if (!formatted()) return -1;
  switch (field) {
    case STAT_ABI: return abi();
    case STAT_PAGES: return pages();
    case STAT_DATA_PAGE: return dataPage();
    case STAT_FREE_PAGES: return freePages();
    case STAT_RAW_PAGES: return rawPages();
    case STAT_OWNER: return owner();
    case STAT_ARENA_ID: return arenaId();
    case STAT_FLAGS: return flags();
    case STAT_CLEAN_PAGES: return cleanPages();
    case STAT_LOCK: return lockWord();
  }
  return -1;
}
