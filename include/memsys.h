/*
 * memsys.h: the memsys core's ABI (version 4) for a C host.
 *
 * The core is a WebAssembly module (build/memsys.st.wasm single-threaded, build/memsys.wasm
 * threaded) that manages one arena: one linear memory holding every allocator table and the data
 * pages it hands out. docs/abi.md is the contract; this file gives its numbers C names, and
 * docs/embedding.md walks through a host built with wasm2c.
 *
 * Part 1 (always): the constants the module exports as immutable i32 globals, the header fields
 * a host reads, and helpers that need nothing but a pointer to the memory. Any host (wasm2c,
 * wasmtime's C API, WAMR, ...) can use it.
 *
 * Part 2 (when MEMSYS_WASM2C_MODULE is defined): typed wrappers over the functions wasm2c
 * generates, e.g. memsys_alloc(x, c) for Z_memsys_stZ_alloc(x, c). Include the header wasm2c
 * wrote first:
 *
 *     #include "memsys_st.h"                  (wasm2c build/memsys.st.wasm -n memsys_st ...)
 *     #define MEMSYS_WASM2C_MODULE memsys_st
 *     #include "memsys.h"
 *
 * The values here are checked against the module's exported globals and against the sources in
 * assembly/ by test/embed-c.test.ts, so a change to the core that this file does not follow fails
 * the tests.
 */
#ifndef MEMSYS_H
#define MEMSYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- part 1: the ABI ------------------------------------------------------------------------ */

/* What an arena's header holds at bytes 0 and 4. attach() accepts only this pair. */
enum memsys_version {
  MEMSYS_ABI_VERSION = 4,
  MEMSYS_MAGIC = 0x41534D4D /* "MMSA" read as a little-endian u32 */
};

/* Negative results. alloc and raw_alloc return offset 0 instead of an error. */
enum memsys_error {
  MEMSYS_E_CLASS = -1,       /* class not in 0..63 */
  MEMSYS_E_OFFSET = -2,      /* not 128-byte aligned (4 KiB for raw spans), or outside the data pages */
  MEMSYS_E_NOT_SLOT = -3,    /* not the start of a buffer (or of a raw span) */
  MEMSYS_E_WRONG_CLASS = -4, /* the buffer there is of another class */
  MEMSYS_E_NOT_OUT = -5,     /* the buffer there is free: a double free */
  MEMSYS_E_FORMAT = -6,      /* no arena header, another ABI, or init on a used memory */
  MEMSYS_E_TOO_SMALL = -7,   /* memory too small for the tables and one 128 KiB run */
  MEMSYS_E_ARG = -8,         /* a count or an array out of range */
  MEMSYS_E_BUSY = -9,        /* threaded build: the lock stayed taken; nothing changed */
  MEMSYS_E_NOT_HELD = -10    /* recover: that realm does not hold the lock */
};

/* check() codes: the first broken invariant. Not exported by the module (they come from
   assembly/check.ts); once one is seen, treat the arena as corrupt. */
enum memsys_check {
  MEMSYS_E_CHECK_SPAN = -101,     /* a span's head and tail disagree, or it leaves the arena */
  MEMSYS_E_CHECK_INNER = -102,    /* a page inside a used span does not point to its head */
  MEMSYS_E_CHECK_SLOT = -103,     /* a slot's state or free bit is wrong */
  MEMSYS_E_CHECK_RUN_FREE = -104, /* a run's free count differs from its free slots */
  MEMSYS_E_CHECK_CLASS = -105,    /* a class's counters or hint differ from its runs */
  MEMSYS_E_CHECK_PAGES = -106,    /* free, clean or raw page totals differ from the page map */
  MEMSYS_E_CHECK_BUCKET = -107,   /* a free-span list is inconsistent with the page map */
  MEMSYS_E_CHECK_AVAIL = -108     /* a class's list of runs with a free slot is wrong */
};

/* Bits of the header's flags word (byte MEMSYS_H_FLAGS). */
enum memsys_flag {
  MEMSYS_FLAG_DEBUG = 1,      /* init: a full check after every mutating call */
  MEMSYS_FLAG_CLOSED = 2,     /* set by close(): nothing more is handed out */
  MEMSYS_FLAG_QUARANTINED = 4 /* set by recover() when the dead lock holder left it broken */
};

/* Largest n for alloc_batch and free_batch (and 2*max for scavenge): free_batch's error
   encoding -16*(i+1)+code must fit in an int32_t. */
enum memsys_limit { MEMSYS_MAX_BATCH = 16777216 };

/* Fields of class_stat(c, field). Size, run pages and slots per run are constants of the class;
   the others are live counters. Taken counts slots ever handed out (exact in the double up to 2^53). */
enum memsys_class_stat {
  MEMSYS_CSTAT_SIZE = 0,
  MEMSYS_CSTAT_RUN_PAGES = 1,
  MEMSYS_CSTAT_SLOTS_PER_RUN = 2,
  MEMSYS_CSTAT_RUNS = 3,
  MEMSYS_CSTAT_FREE = 4,
  MEMSYS_CSTAT_OUT = 5,
  MEMSYS_CSTAT_TAKEN = 6
};

/* Fields of arena_stat(field): header values. Pages are 4 KiB pages. The arena is empty when
   FREE_PAGES == PAGES - DATA_PAGE. */
enum memsys_arena_stat {
  MEMSYS_STAT_ABI = 0,
  MEMSYS_STAT_PAGES = 1,
  MEMSYS_STAT_DATA_PAGE = 2,
  MEMSYS_STAT_FREE_PAGES = 3,
  MEMSYS_STAT_RAW_PAGES = 4,
  MEMSYS_STAT_OWNER = 5,
  MEMSYS_STAT_ARENA_ID = 6,
  MEMSYS_STAT_FLAGS = 7,
  MEMSYS_STAT_CLEAN_PAGES = 8,
  MEMSYS_STAT_LOCK = 9
};

/* Byte offsets of the header's little-endian u32 words (u64 for the bucket mask). A host reads
   them; it writes none of them. The table offsets (MAP .. OWNERS) hold byte offsets of tables
   placed after the header page. */
enum memsys_header {
  MEMSYS_H_MAGIC = 0,
  MEMSYS_H_ABI = 4,
  MEMSYS_H_PAGES = 8,         /* total 4 KiB pages; must equal the memory's size */
  MEMSYS_H_DATA = 12,         /* first data page */
  MEMSYS_H_LOCK = 16,         /* i32: 0 free, else the holder's realm tag */
  MEMSYS_H_FLAGS = 20,        /* MEMSYS_FLAG_* */
  MEMSYS_H_OWNER = 24,        /* init's owner */
  MEMSYS_H_ARENA = 28,        /* init's (or reopen's) arena id */
  MEMSYS_H_FREE_PAGES = 32,
  MEMSYS_H_RAW_PAGES = 36,
  MEMSYS_H_BUCKET_MASK = 40,
  MEMSYS_H_BUCKET_HEADS = 48,
  MEMSYS_H_MAP = 192,
  MEMSYS_H_NEXT = 196,
  MEMSYS_H_PREV = 200,
  MEMSYS_H_RUN_FREE = 204,
  MEMSYS_H_STATE = 208,       /* slot state bytes: mem[u32 at 208 + (off >> 7)] */
  MEMSYS_H_BITS = 212,
  MEMSYS_H_BROKEN = 216,      /* debug mode: the first failed check's code, 0 while none */
  MEMSYS_H_CLEAN_PAGES = 220,
  MEMSYS_H_OWNERS = 224       /* owner table: u16 realm tag per 128-byte granule */
};

/* Low two bits of a slot state byte (class << 2 | state). A host may flip OUT <-> LIVE on a
   buffer it holds; it never writes FREE, 0 or another class. */
enum memsys_slot_state { MEMSYS_ST_FREE = 1, MEMSYS_ST_OUT = 2, MEMSYS_ST_LIVE = 3 };

/* Geometry. Classes c < 32 are 128*(c+1) bytes in runs of 16 pages; classes c >= 32 are
   4096*(c-31) bytes, one buffer per run. Classes 31 and 32 are both 4 KiB. */
enum memsys_geometry {
  MEMSYS_NUM_CLASSES = 64,
  MEMSYS_NUM_SMALL = 32,
  MEMSYS_SMALL_STEP = 128,
  MEMSYS_PAGE_STEP = 4096,
  MEMSYS_SMALL_RUN_PAGES = 16,
  MEMSYS_PAGE_SHIFT = 12,      /* the core's pages: 4 KiB */
  MEMSYS_GRANULE_SHIFT = 7,    /* slot alignment: 128 bytes */
  MEMSYS_WASM_PAGE_SHIFT = 16, /* WebAssembly pages: 64 KiB */
  /* Table bytes per 4 KiB page: map, next, prev and run free (u32 each), 32 state bytes, one u32
     of free bits, 32 u16 owners. */
  MEMSYS_META_BYTES_PER_PAGE = 116,
  MEMSYS_MIN_DATA_PAGES = 32,  /* init needs one 128 KiB run after the tables */
  MEMSYS_MIN_WASM_PAGES = 3,   /* the smallest memory init accepts (192 KiB) */
  /* Largest memory a wasm2c 1.0.32 host can give: its wasm_rt_memory_t counts bytes in a
     uint32_t, so 65536 pages (4 GiB, the core's own limit) would wrap to 0. */
  MEMSYS_WASM2C_MAX_PAGES = 65535
};

/* Bytes of class c, or 0 if c is not a class. */
static inline uint32_t memsys_class_size(uint32_t c) {
  if (c >= MEMSYS_NUM_CLASSES) return 0;
  return c < MEMSYS_NUM_SMALL ? MEMSYS_SMALL_STEP * (c + 1) : MEMSYS_PAGE_STEP * (c - MEMSYS_NUM_SMALL + 1);
}

/* The first data page init will place in a memory of `wasm_pages` 64 KiB pages: the header page
   and the tables, rounded up to a 4 KiB page. */
static inline uint32_t memsys_data_page(uint32_t wasm_pages) {
  uint64_t pages = (uint64_t)wasm_pages << (MEMSYS_WASM_PAGE_SHIFT - MEMSYS_PAGE_SHIFT);
  uint64_t end = ((uint64_t)1 << MEMSYS_PAGE_SHIFT) + MEMSYS_META_BYTES_PER_PAGE * pages;
  return (uint32_t)((end + (1u << MEMSYS_PAGE_SHIFT) - 1) >> MEMSYS_PAGE_SHIFT);
}

/* Whether init accepts a memory of `wasm_pages` pages (else it returns MEMSYS_E_TOO_SMALL). */
static inline int memsys_arena_fits(uint32_t wasm_pages) {
  uint64_t pages = (uint64_t)wasm_pages << (MEMSYS_WASM_PAGE_SHIFT - MEMSYS_PAGE_SHIFT);
  return wasm_pages <= 65536 && (uint64_t)memsys_data_page(wasm_pages) + MEMSYS_MIN_DATA_PAGES <= pages;
}

/* A little-endian u32 of the memory, whatever the host's byte order. */
static inline uint32_t memsys_load_u32(const uint8_t *mem, uint32_t off) {
  return (uint32_t)mem[off] | (uint32_t)mem[off + 1] << 8 | (uint32_t)mem[off + 2] << 16 | (uint32_t)mem[off + 3] << 24;
}

/* The state byte of the buffer at `off` (class << 2 | MEMSYS_ST_*; 0 if no slot starts there). */
static inline uint8_t *memsys_state_byte(uint8_t *mem, uint32_t off) {
  return mem + memsys_load_u32(mem, MEMSYS_H_STATE) + (off >> MEMSYS_GRANULE_SHIFT);
}

/* Decodes free_batch's result r. r <= -16: entry *entry failed with *code (-2..-5) and nothing
   was freed; returns 1. Otherwise returns 0 (r is n, or an error of the call itself). */
static inline int memsys_batch_error(int32_t r, uint32_t *entry, int32_t *code) {
  if (r > -16) return 0;
  if (entry) *entry = (uint32_t)((-(int64_t)r) >> 4) - 1;
  if (code) *code = -(int32_t)((-(int64_t)r) & 15);
  return 1;
}

/* Checks a memory's header against this file before a host trusts it: the magic at byte 0, the
   ABI version at byte 4 and the page count at byte 8 against `bytes`. Returns 0, or
   MEMSYS_E_FORMAT with a message in why[0..why_len) that names what was found and what this file
   expects (an arena from a core of another ABI version says both versions). attach() makes the
   same checks inside the module but can only answer MEMSYS_E_FORMAT. */
static inline int32_t memsys_header_check(const uint8_t *mem, uint64_t bytes, char *why, size_t why_len) {
  char spare[1];
  if (!why || !why_len) { why = spare; why_len = sizeof spare; }
  why[0] = 0;
  if (bytes < ((uint64_t)1 << MEMSYS_PAGE_SHIFT)) {
    snprintf(why, why_len, "memory of %llu bytes holds no arena header", (unsigned long long)bytes);
    return MEMSYS_E_FORMAT;
  }
  uint32_t magic = memsys_load_u32(mem, MEMSYS_H_MAGIC), abi = memsys_load_u32(mem, MEMSYS_H_ABI);
  uint32_t pages = memsys_load_u32(mem, MEMSYS_H_PAGES);
  if (magic != (uint32_t)MEMSYS_MAGIC) {
    snprintf(why, why_len, "not a memsys arena: magic 0x%08X at byte 0, expected 0x%08X (init it first)",
             (unsigned)magic, (unsigned)MEMSYS_MAGIC);
    return MEMSYS_E_FORMAT;
  }
  if (abi != MEMSYS_ABI_VERSION) {
    snprintf(why, why_len, "arena ABI version %u (byte 4), but memsys.h is ABI version %u: "
             "use the core and memsys.h of one release", (unsigned)abi, (unsigned)MEMSYS_ABI_VERSION);
    return MEMSYS_E_FORMAT;
  }
  if (((uint64_t)pages << MEMSYS_PAGE_SHIFT) != bytes) {
    snprintf(why, why_len, "arena header says %u pages of 4 KiB (%llu bytes), the memory has %llu bytes",
             (unsigned)pages, (unsigned long long)pages << MEMSYS_PAGE_SHIFT, (unsigned long long)bytes);
    return MEMSYS_E_FORMAT;
  }
  return 0;
}

/* ---- part 2: wrappers over wasm2c's output ---------------------------------------------------
 *
 * wasm2c (wabt 1.0.32, Debian 12) names an export X of module M  Z_MZ_X,  taking the instance
 * first, with every i32 as u32: Z_memsys_stZ_alloc(Z_memsys_st_instance_t *, u32) -> u32. A
 * capital Z in a name is escaped as Z5A, so the global CSTAT_SIZE becomes Z_memsys_stZ_CSTAT_SIZ5AE;
 * pick a module name of letters, digits and _ without a capital Z, which wasm2c keeps as it is
 * (it escapes anything else). Globals come as
 * u32 *Z_memsys_stZ_E_CLASS(instance). The host defines the import,
 *
 *     wasm_rt_memory_t *Z_envZ_memory(struct Z_env_instance_t *env);
 *
 * and the instance keeps that pointer in its field Z_envZ_memory. Newer wasm2c releases name
 * things differently (w2c_M_X); define MEMSYS_WASM2C_NAME(x), MEMSYS_WASM2C_INSTANCE and
 * MEMSYS_WASM2C_MEMORY(inst) to match them before including this file.
 *
 *   export        generated (module memsys_st)                               wrapper returns
 *   init          u32 Z_memsys_stZ_init(inst, u32 flags, u32 owner, u32 id)   int32_t
 *   attach        u32 Z_memsys_stZ_attach(inst)                               int32_t
 *   set_realm     u32 Z_memsys_stZ_set_realm(inst, u32 tag)                   int32_t
 *   recover       u32 Z_memsys_stZ_recover(inst, u32 dead)                    int32_t
 *   reclaim       u32 Z_memsys_stZ_reclaim(inst, u32 dead)                    int32_t
 *   held          f64 Z_memsys_stZ_held(inst, u32 dead)                       double
 *   check         u32 Z_memsys_stZ_check(inst)                                int32_t
 *   alloc         u32 Z_memsys_stZ_alloc(inst, u32 c)                         uint32_t offset
 *   alloc_batch   u32 Z_memsys_stZ_alloc_batch(inst, u32 c, u32 out, u32 n)   int32_t
 *   free          u32 Z_memsys_stZ_free(inst, u32 off, u32 c)                 int32_t
 *   free_batch    u32 Z_memsys_stZ_free_batch(inst, u32 c, u32 ptr, u32 n)    int32_t
 *   validate      u32 Z_memsys_stZ_validate(inst, u32 off, u32 c)             int32_t
 *   trim          u32 Z_memsys_stZ_trim(inst, u32 c, u32 depth)               int32_t
 *   release       u32 Z_memsys_stZ_release(inst)                              int32_t
 *   close         u32 Z_memsys_stZ_close(inst)                                int32_t
 *   reopen        u32 Z_memsys_stZ_reopen(inst, u32 id)                       int32_t
 *   raw_alloc     u32 Z_memsys_stZ_raw_alloc(inst, u32 n)                     uint32_t offset
 *   raw_free      u32 Z_memsys_stZ_raw_free(inst, u32 off)                    int32_t
 *   scavenge      u32 Z_memsys_stZ_scavenge(inst, u32 out, u32 max)           int32_t
 *   scavenged     u32 Z_memsys_stZ_scavenged(inst, u32 off)                   int32_t
 *   class_stat    f64 Z_memsys_stZ_class_stat(inst, u32 c, u32 field)         double
 *   arena_stat    f64 Z_memsys_stZ_arena_stat(inst, u32 field)                double
 *
 * Offsets are byte offsets into the memory: the host's pointer is memsys_mem(inst) + off.
 * Arrays for the batch calls and scavenge must lie in a raw span (raw_alloc).
 */
#ifdef MEMSYS_WASM2C_MODULE

#define MEMSYS__CAT(a, b) a##b
#define MEMSYS__XCAT(a, b) MEMSYS__CAT(a, b)
#ifndef MEMSYS_WASM2C_NAME
#define MEMSYS_WASM2C_NAME(x) MEMSYS__XCAT(MEMSYS__XCAT(MEMSYS__XCAT(Z_, MEMSYS_WASM2C_MODULE), Z_), x)
#endif
#ifndef MEMSYS_WASM2C_INSTANCE
#define MEMSYS_WASM2C_INSTANCE MEMSYS__XCAT(MEMSYS__XCAT(Z_, MEMSYS_WASM2C_MODULE), _instance_t)
#endif
#ifndef MEMSYS_WASM2C_MEMORY
#define MEMSYS_WASM2C_MEMORY(inst) ((inst)->Z_envZ_memory)
#endif

typedef MEMSYS_WASM2C_INSTANCE memsys_instance_t;

/* The base of the instance's memory and its size in bytes. */
static inline uint8_t *memsys_mem(memsys_instance_t *x) { return MEMSYS_WASM2C_MEMORY(x)->data; }
static inline uint64_t memsys_mem_bytes(memsys_instance_t *x) { return MEMSYS_WASM2C_MEMORY(x)->size; }
/* The u32 array at byte offset `off` (a raw span for the batch calls). */
static inline uint32_t *memsys_u32s(memsys_instance_t *x, uint32_t off) { return (uint32_t *)(memsys_mem(x) + off); }

static inline int32_t memsys_init(memsys_instance_t *x, uint32_t flags, uint32_t owner, uint32_t id) {
  return (int32_t)MEMSYS_WASM2C_NAME(init)(x, flags, owner, id);
}
static inline int32_t memsys_attach(memsys_instance_t *x) { return (int32_t)MEMSYS_WASM2C_NAME(attach)(x); }
static inline int32_t memsys_set_realm(memsys_instance_t *x, uint32_t tag) { return (int32_t)MEMSYS_WASM2C_NAME(set_realm)(x, tag); }
static inline int32_t memsys_recover(memsys_instance_t *x, uint32_t dead) { return (int32_t)MEMSYS_WASM2C_NAME(recover)(x, dead); }
static inline int32_t memsys_reclaim(memsys_instance_t *x, uint32_t dead) { return (int32_t)MEMSYS_WASM2C_NAME(reclaim)(x, dead); }
static inline double memsys_held(memsys_instance_t *x, uint32_t dead) { return MEMSYS_WASM2C_NAME(held)(x, dead); }
static inline int32_t memsys_check(memsys_instance_t *x) { return (int32_t)MEMSYS_WASM2C_NAME(check)(x); }
static inline uint32_t memsys_alloc(memsys_instance_t *x, uint32_t c) { return MEMSYS_WASM2C_NAME(alloc)(x, c); }
static inline int32_t memsys_alloc_batch(memsys_instance_t *x, uint32_t c, uint32_t out, uint32_t n) {
  return (int32_t)MEMSYS_WASM2C_NAME(alloc_batch)(x, c, out, n);
}
static inline int32_t memsys_free(memsys_instance_t *x, uint32_t off, uint32_t c) { return (int32_t)MEMSYS_WASM2C_NAME(free)(x, off, c); }
static inline int32_t memsys_free_batch(memsys_instance_t *x, uint32_t c, uint32_t ptr, uint32_t n) {
  return (int32_t)MEMSYS_WASM2C_NAME(free_batch)(x, c, ptr, n);
}
static inline int32_t memsys_validate(memsys_instance_t *x, uint32_t off, uint32_t c) { return (int32_t)MEMSYS_WASM2C_NAME(validate)(x, off, c); }
static inline int32_t memsys_trim(memsys_instance_t *x, uint32_t c, uint32_t depth) { return (int32_t)MEMSYS_WASM2C_NAME(trim)(x, c, depth); }
static inline int32_t memsys_release(memsys_instance_t *x) { return (int32_t)MEMSYS_WASM2C_NAME(release)(x); }
static inline int32_t memsys_close(memsys_instance_t *x) { return (int32_t)MEMSYS_WASM2C_NAME(close)(x); }
static inline int32_t memsys_reopen(memsys_instance_t *x, uint32_t id) { return (int32_t)MEMSYS_WASM2C_NAME(reopen)(x, id); }
static inline uint32_t memsys_raw_alloc(memsys_instance_t *x, uint32_t n) { return MEMSYS_WASM2C_NAME(raw_alloc)(x, n); }
static inline int32_t memsys_raw_free(memsys_instance_t *x, uint32_t off) { return (int32_t)MEMSYS_WASM2C_NAME(raw_free)(x, off); }
static inline int32_t memsys_scavenge(memsys_instance_t *x, uint32_t out, uint32_t max) { return (int32_t)MEMSYS_WASM2C_NAME(scavenge)(x, out, max); }
static inline int32_t memsys_scavenged(memsys_instance_t *x, uint32_t off) { return (int32_t)MEMSYS_WASM2C_NAME(scavenged)(x, off); }
static inline double memsys_class_stat(memsys_instance_t *x, uint32_t c, uint32_t field) { return MEMSYS_WASM2C_NAME(class_stat)(x, c, field); }
static inline double memsys_arena_stat(memsys_instance_t *x, uint32_t field) { return MEMSYS_WASM2C_NAME(arena_stat)(x, field); }

/* attach() with reasons: checks the memory's header against this file first (a mismatch names
   the arena's ABI version and this file's), then asks the module, which refuses an arena of
   another version than its own (then the module and this file are of different releases).
   Returns 0 or MEMSYS_E_FORMAT. */
static inline int32_t memsys_attach_checked(memsys_instance_t *x, char *why, size_t why_len) {
  int32_t r = memsys_header_check(memsys_mem(x), memsys_mem_bytes(x), why, why_len);
  if (r) return r;
  r = memsys_attach(x);
  if (r && why && why_len) {
    snprintf(why, why_len, "the module refuses an arena of ABI version %u, the version of memsys.h: "
             "the module is of another release", (unsigned)MEMSYS_ABI_VERSION);
  }
  return r;
}

#endif /* MEMSYS_WASM2C_MODULE */

#ifdef __cplusplus
}
#endif

#endif /* MEMSYS_H */
