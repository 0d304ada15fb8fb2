/*
 * A C host of the single-threaded core, translated to C by wasm2c (test/embed-c.test.ts builds
 * and runs it). It drives the core through include/memsys.h only, as docs/embedding.md shows, and
 * checks what docs/abi.md promises: every class, the batch calls through a raw span, the
 * counters, every refused call with its code and an arena unchanged to the byte, trim, release,
 * close and reopen, and a randomized model of many operations. Prints one summary line and exits
 * 0, or names the first failed check and exits 1.
 *
 *   host [seed [operations]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsys_st.h"
#include "wasm-rt-impl.h"
#define MEMSYS_WASM2C_MODULE memsys_st
#include "memsys.h"

/* ---- the host side of wasm2c: the one import, env.memory ---------------------------------------- */

struct Z_env_instance_t {
  wasm_rt_memory_t memory;
};

wasm_rt_memory_t *Z_envZ_memory(struct Z_env_instance_t *env) { return &env->memory; }

typedef struct {
  struct Z_env_instance_t env;
  memsys_instance_t x;
  uint8_t *mem;
  uint32_t bytes;
  uint8_t *copy; /* a snapshot of the whole memory, for the refused calls */
} arena_t;

/* A fresh instance over a zero-filled memory of `wasm_pages` pages, initial = maximum. */
static arena_t *arena_new(uint32_t wasm_pages) {
  arena_t *a = calloc(1, sizeof *a);
  if (!a) abort();
  wasm_rt_allocate_memory(&a->env.memory, wasm_pages, wasm_pages);
  Z_memsys_st_instantiate(&a->x, &a->env);
  a->mem = memsys_mem(&a->x);
  a->bytes = (uint32_t)memsys_mem_bytes(&a->x);
  return a;
}

static void arena_drop(arena_t *a) {
  Z_memsys_st_free(&a->x);
  wasm_rt_free_memory(&a->env.memory);
  free(a->copy);
  free(a);
}

/* ---- checks -------------------------------------------------------------------------------------- */

static unsigned long checks;
static const char *section = "setup";

#define CHECK(cond, ...)                                                               \
  do {                                                                                 \
    checks++;                                                                          \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "FAIL [%s] %s:%d: %s: ", section, __FILE__, __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                                                    \
      fputc('\n', stderr);                                                             \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

#define IS(got, want) \
  do { int64_t g_ = (int64_t)(got), w_ = (int64_t)(want); CHECK(g_ == w_, "%s is %" PRId64 ", expected %" PRId64, #got, g_, w_); } while (0)

/* The index of the first of n bytes that is not `v`, or n. */
static uint32_t first_set(const uint8_t *p, uint32_t n, uint8_t v) {
  uint32_t i = 0;
  while (i < n && p[i] == v) i++;
  return i;
}

static void snap(arena_t *a) {
  if (!a->copy && !(a->copy = malloc(a->bytes))) abort();
  memcpy(a->copy, a->mem, a->bytes);
}

static int unchanged(arena_t *a) { return memcmp(a->copy, a->mem, a->bytes) == 0; }

/* A call that must be refused with `want` and leave every byte of the memory as it was. */
#define REFUSED(a, call, want)                                                             \
  do {                                                                                     \
    snap(a);                                                                               \
    int32_t r_ = (int32_t)(call);                                                          \
    CHECK(r_ == (int32_t)(want), "%s returned %d, expected %d (%s)", #call, r_, (int32_t)(want), #want); \
    CHECK(unchanged(a), "%s changed the arena", #call);                                    \
  } while (0)

#define CHECKED(a) IS(memsys_check(&(a)->x), 0)

static uint32_t u32_at(arena_t *a, uint32_t off) { return memsys_load_u32(a->mem, off); }
static double cstat(arena_t *a, uint32_t c, uint32_t f) { return memsys_class_stat(&a->x, c, f); }
static double astat(arena_t *a, uint32_t f) { return memsys_arena_stat(&a->x, f); }
static uint32_t data_start(arena_t *a) { return (uint32_t)astat(a, MEMSYS_STAT_DATA_PAGE) << MEMSYS_PAGE_SHIFT; }
static int empty(arena_t *a) {
  return astat(a, MEMSYS_STAT_FREE_PAGES) == astat(a, MEMSYS_STAT_PAGES) - astat(a, MEMSYS_STAT_DATA_PAGE);
}

/* The page map entry of 4 KiB page p (kind in bits 31..30: 1 free span end, 2 run or raw head). */
static uint32_t map_at(arena_t *a, uint32_t p) { return u32_at(a, u32_at(a, MEMSYS_H_MAP) + 4 * p); }

/* The longest free span, in pages, walking spans by their heads as docs/abi.md describes. */
static uint32_t longest_free(arena_t *a) {
  uint32_t best = 0, end = (uint32_t)astat(a, MEMSYS_STAT_PAGES);
  for (uint32_t p = (uint32_t)astat(a, MEMSYS_STAT_DATA_PAGE); p < end;) {
    uint32_t e = map_at(a, p), kind = e >> 30, len;
    if (kind == 1) {
      len = e & 0x1FFFFFFF;
      if (len > best) best = len;
    } else {
      CHECK(kind == 2, "page %u: kind %u where a span starts", p, kind);
      len = e & 0xFFFF;
    }
    CHECK(len > 0, "page %u: a span of length 0", p);
    p += len;
  }
  return best;
}

/* Whether the arena really has no room for one more buffer of class c. */
static int no_room(arena_t *a, uint32_t c) {
  if (cstat(a, c, MEMSYS_CSTAT_FREE) > 0) return 0;
  return longest_free(a) < (uint32_t)cstat(a, c, MEMSYS_CSTAT_RUN_PAGES);
}

/* ---- 1. the header's constants are the module's ------------------------------------------------ */

#define GLOBAL(name, mangled) IS((int32_t)*Z_memsys_stZ_##mangled(&a->x), MEMSYS_##name)

static void test_globals(void) {
  section = "exported globals";
  arena_t *a = arena_new(MEMSYS_MIN_WASM_PAGES);
  GLOBAL(E_CLASS, E_CLASS); GLOBAL(E_OFFSET, E_OFFSET); GLOBAL(E_NOT_SLOT, E_NOT_SLOT);
  GLOBAL(E_WRONG_CLASS, E_WRONG_CLASS); GLOBAL(E_NOT_OUT, E_NOT_OUT); GLOBAL(E_FORMAT, E_FORMAT);
  GLOBAL(E_TOO_SMALL, E_TOO_SMALL); GLOBAL(E_ARG, E_ARG); GLOBAL(E_BUSY, E_BUSY); GLOBAL(E_NOT_HELD, E_NOT_HELD);
  GLOBAL(FLAG_DEBUG, FLAG_DEBUG); GLOBAL(FLAG_CLOSED, FLAG_CLOSED); GLOBAL(FLAG_QUARANTINED, FLAG_QUARANTINED);
  GLOBAL(MAX_BATCH, MAX_BATCH);
  GLOBAL(CSTAT_SIZE, CSTAT_SIZ5AE); GLOBAL(CSTAT_RUN_PAGES, CSTAT_RUN_PAGES);
  GLOBAL(CSTAT_SLOTS_PER_RUN, CSTAT_SLOTS_PER_RUN); GLOBAL(CSTAT_RUNS, CSTAT_RUNS); GLOBAL(CSTAT_FREE, CSTAT_FREE);
  GLOBAL(CSTAT_OUT, CSTAT_OUT); GLOBAL(CSTAT_TAKEN, CSTAT_TAKEN);
  GLOBAL(STAT_ABI, STAT_ABI); GLOBAL(STAT_PAGES, STAT_PAGES); GLOBAL(STAT_DATA_PAGE, STAT_DATA_PAGE);
  GLOBAL(STAT_FREE_PAGES, STAT_FREE_PAGES); GLOBAL(STAT_RAW_PAGES, STAT_RAW_PAGES); GLOBAL(STAT_OWNER, STAT_OWNER);
  GLOBAL(STAT_ARENA_ID, STAT_ARENA_ID); GLOBAL(STAT_FLAGS, STAT_FLAGS); GLOBAL(STAT_CLEAN_PAGES, STAT_CLEAN_PAGES);
  GLOBAL(STAT_LOCK, STAT_LOCK);
  arena_drop(a);
}

/* ---- 2. sizes, init, the header, attach ---------------------------------------------------------- */

static void test_init(void) {
  section = "init and attach";
  char why[256], want_old[32], want_new[32];
  IS(memsys_arena_fits(MEMSYS_MIN_WASM_PAGES - 1), 0);
  IS(memsys_arena_fits(MEMSYS_MIN_WASM_PAGES), 1);
  arena_t *tiny = arena_new(MEMSYS_MIN_WASM_PAGES - 1);
  REFUSED(tiny, memsys_init(&tiny->x, 0, 1, 1), MEMSYS_E_TOO_SMALL);
  CHECK(first_set(tiny->mem, tiny->bytes, 0) == tiny->bytes, "byte %u written by a refused init", first_set(tiny->mem, tiny->bytes, 0));
  IS(memsys_attach(&tiny->x), MEMSYS_E_FORMAT);
  arena_drop(tiny);

  static const uint32_t sizes[] = {3, 4, 5, 16, 17, 64, 256, 1000, 1024};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    arena_t *a = arena_new(sizes[i]);
    IS(memsys_attach_checked(&a->x, why, sizeof why), MEMSYS_E_FORMAT);
    CHECK(strstr(why, "not a memsys arena") != NULL, "blank memory: %s", why);
    IS(memsys_init(&a->x, 0, 42, 7), 0);
    IS(astat(a, MEMSYS_STAT_DATA_PAGE), memsys_data_page(sizes[i]));
    IS(astat(a, MEMSYS_STAT_PAGES), sizes[i] * 16);
    IS(astat(a, MEMSYS_STAT_FREE_PAGES), sizes[i] * 16 - memsys_data_page(sizes[i]));
    IS(u32_at(a, MEMSYS_H_MAGIC), MEMSYS_MAGIC);
    IS(u32_at(a, MEMSYS_H_ABI), MEMSYS_ABI_VERSION);
    IS(u32_at(a, MEMSYS_H_PAGES), sizes[i] * 16);
    IS(u32_at(a, MEMSYS_H_DATA), memsys_data_page(sizes[i]));
    IS(u32_at(a, MEMSYS_H_OWNER), 42);
    IS(u32_at(a, MEMSYS_H_ARENA), 7);
    IS(u32_at(a, MEMSYS_H_LOCK), 0);
    IS(u32_at(a, MEMSYS_H_FLAGS), 0);
    IS(astat(a, MEMSYS_STAT_OWNER), 42);
    IS(astat(a, MEMSYS_STAT_ARENA_ID), 7);
    IS(astat(a, MEMSYS_STAT_ABI), MEMSYS_ABI_VERSION);
    IS(astat(a, 99), -1);
    IS(memsys_attach_checked(&a->x, why, sizeof why), 0);
    REFUSED(a, memsys_init(&a->x, 0, 1, 1), MEMSYS_E_FORMAT);
    CHECKED(a);
    /* The largest class fits even the smallest arena. */
    uint32_t big = memsys_alloc(&a->x, MEMSYS_NUM_CLASSES - 1);
    CHECK(big != 0, "no 128 KiB buffer in a fresh arena of %u pages", sizes[i]);
    IS(memsys_free(&a->x, big, MEMSYS_NUM_CLASSES - 1), 0);
    arena_drop(a);
  }

  /* An arena of another ABI version: the header check names both versions, the module refuses. */
  arena_t *a = arena_new(16);
  IS(memsys_init(&a->x, 0, 1, 1), 0);
  a->mem[MEMSYS_H_ABI] = MEMSYS_ABI_VERSION - 1;
  IS(memsys_attach_checked(&a->x, why, sizeof why), MEMSYS_E_FORMAT);
  snprintf(want_old, sizeof want_old, "ABI version %u", (unsigned)MEMSYS_ABI_VERSION - 1);
  snprintf(want_new, sizeof want_new, "ABI version %u", (unsigned)MEMSYS_ABI_VERSION);
  CHECK(strstr(why, want_old) && strstr(why, want_new), "version mismatch: %s", why);
  IS(memsys_attach(&a->x), MEMSYS_E_FORMAT);
  a->mem[MEMSYS_H_ABI] = MEMSYS_ABI_VERSION;
  a->mem[MEMSYS_H_PAGES] ^= 1;
  IS(memsys_attach_checked(&a->x, why, sizeof why), MEMSYS_E_FORMAT);
  CHECK(strstr(why, "pages") != NULL, "page count mismatch: %s", why);
  IS(memsys_attach(&a->x), MEMSYS_E_FORMAT);
  a->mem[MEMSYS_H_PAGES] ^= 1;
  a->mem[MEMSYS_H_MAGIC] ^= 0x20;
  IS(memsys_attach_checked(&a->x, why, sizeof why), MEMSYS_E_FORMAT);
  CHECK(strstr(why, "magic") != NULL, "bad magic: %s", why);
  a->mem[MEMSYS_H_MAGIC] ^= 0x20;
  IS(memsys_attach_checked(&a->x, NULL, 0), 0);
  /* A second instance over the same memory sees the same arena. */
  memsys_instance_t y;
  Z_memsys_st_instantiate(&y, &a->env);
  IS(memsys_attach(&y), 0);
  uint32_t off = memsys_alloc(&y, 3);
  IS(memsys_validate(&a->x, off, 3), MEMSYS_ST_OUT);
  IS(memsys_free(&a->x, off, 3), 0);
  Z_memsys_st_free(&y);
  CHECKED(a);
  arena_drop(a);
}

/* ---- 3. every class --------------------------------------------------------------------------------- */

static void test_classes(void) {
  section = "every class";
  arena_t *a = arena_new(512); /* 32 MiB */
  IS(memsys_init(&a->x, 0, 1, 1), 0);
  uint32_t offs[MEMSYS_NUM_CLASSES][2];
  double free_pages = astat(a, MEMSYS_STAT_FREE_PAGES);
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) {
    uint32_t size = memsys_class_size(c);
    IS(cstat(a, c, MEMSYS_CSTAT_SIZE), size);
    IS(size, c < 32 ? 128 * (c + 1) : 4096 * (c - 31));
    uint32_t run = c < MEMSYS_NUM_SMALL ? MEMSYS_SMALL_RUN_PAGES : c - 31;
    IS(cstat(a, c, MEMSYS_CSTAT_RUN_PAGES), run);
    IS(cstat(a, c, MEMSYS_CSTAT_SLOTS_PER_RUN), (run << 12) / size);
    IS(cstat(a, c, MEMSYS_CSTAT_RUNS), 0);
    for (int k = 0; k < 2; k++) {
      uint32_t off = memsys_alloc(&a->x, c);
      CHECK(off != 0, "class %u: no buffer", c);
      CHECK(off % (c < 32 ? 128 : 4096) == 0, "class %u: offset %u misaligned", c, off);
      CHECK(off >= data_start(a) && (uint64_t)off + size <= a->bytes, "class %u: offset %u outside the data pages", c, off);
      IS(memsys_validate(&a->x, off, c), MEMSYS_ST_OUT);
      IS(*memsys_state_byte(a->mem, off), c << 2 | MEMSYS_ST_OUT);
      memset(a->mem + off, (int)(c * 2 + k + 1), size);
      offs[c][k] = off;
    }
    IS(cstat(a, c, MEMSYS_CSTAT_OUT), 2);
    IS(cstat(a, c, MEMSYS_CSTAT_TAKEN), 2);
    IS(cstat(a, c, MEMSYS_CSTAT_RUNS), c < 32 ? 1 : 2);
    IS(cstat(a, c, MEMSYS_CSTAT_FREE), c < 32 ? (MEMSYS_SMALL_RUN_PAGES << 12) / size - 2 : 0);
    free_pages -= c < 32 ? MEMSYS_SMALL_RUN_PAGES : 2 * run;
    IS(astat(a, MEMSYS_STAT_FREE_PAGES), free_pages);
  }
  CHECKED(a);
  IS(cstat(a, MEMSYS_NUM_CLASSES, MEMSYS_CSTAT_SIZE), -1);
  IS(cstat(a, 0, 7), -1);
  /* No two buffers share a byte: each still holds its own pattern. */
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) {
    for (int k = 0; k < 2; k++) {
      uint32_t size = memsys_class_size(c), at = first_set(a->mem + offs[c][k], size, (uint8_t)(c * 2 + k + 1));
      CHECK(at == size, "class %u buffer %d: byte %u overwritten", c, k, at);
    }
  }
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) {
    for (int k = 0; k < 2; k++) {
      IS(memsys_free(&a->x, offs[c][k], c), 0);
      IS(memsys_validate(&a->x, offs[c][k], c), MEMSYS_E_NOT_OUT);
    }
    IS(cstat(a, c, MEMSYS_CSTAT_OUT), 0);
    IS(cstat(a, c, MEMSYS_CSTAT_TAKEN), 2);
    IS(cstat(a, c, MEMSYS_CSTAT_FREE), cstat(a, c, MEMSYS_CSTAT_RUNS) * cstat(a, c, MEMSYS_CSTAT_SLOTS_PER_RUN));
  }
  CHECKED(a);
  CHECK(memsys_release(&a->x) > 0, "release gave nothing back");
  CHECK(empty(a), "free pages %.0f after release", astat(a, MEMSYS_STAT_FREE_PAGES));
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) IS(cstat(a, c, MEMSYS_CSTAT_RUNS), 0);
  CHECKED(a);
  arena_drop(a);
}

/* ---- 4. batches through a raw span, and 5. the counters ------------------------------------------- */

static void test_batches(void) {
  section = "batches";
  arena_t *a = arena_new(256); /* 16 MiB */
  IS(memsys_init(&a->x, 0, 1, 1), 0);
  uint32_t arr = memsys_raw_alloc(&a->x, 1);
  CHECK(arr != 0 && arr % 4096 == 0 && arr >= data_start(a), "raw span at %u", arr);
  IS(astat(a, MEMSYS_STAT_RAW_PAGES), 1);
  uint32_t *e = memsys_u32s(&a->x, arr);
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c += 7) {
    uint32_t n = c < 32 ? 200 : 20;
    IS(memsys_alloc_batch(&a->x, c, arr, n), n);
    IS(cstat(a, c, MEMSYS_CSTAT_OUT), n);
    for (uint32_t i = 0; i < n; i++) {
      IS(memsys_validate(&a->x, e[i], c), MEMSYS_ST_OUT);
      for (uint32_t j = 0; j < i; j++) CHECK(e[i] != e[j], "class %u: entries %u and %u both %u", c, j, i, e[i]);
    }
    IS(memsys_free_batch(&a->x, c, arr, n), n);
    IS(cstat(a, c, MEMSYS_CSTAT_OUT), 0);
    IS(cstat(a, c, MEMSYS_CSTAT_TAKEN), n);
    IS(memsys_validate(&a->x, e[0], c), MEMSYS_E_NOT_OUT);
  }
  IS(memsys_alloc_batch(&a->x, 3, arr, 0), 0);
  IS(memsys_free_batch(&a->x, 3, arr, 0), 0);
  /* A batch larger than the arena: fewer than asked, the rest of the array untouched. */
  for (uint32_t i = 0; i < 1024; i++) e[i] = 0xDEADBEEF;
  int32_t got = memsys_alloc_batch(&a->x, 63, arr, 1024);
  CHECK(got > 0 && got < 1024, "alloc_batch of 1024 x 128 KiB in 16 MiB gave %d", got);
  for (uint32_t i = (uint32_t)got; i < 1024; i++) IS(e[i], 0xDEADBEEF);
  CHECK(no_room(a, 63), "alloc_batch stopped at %d with room left", got);
  IS(memsys_alloc(&a->x, 63), 0);
  IS(memsys_free_batch(&a->x, 63, arr, (uint32_t)got), got);
  CHECKED(a);

  section = "counters";
  memsys_release(&a->x);
  double pages0 = astat(a, MEMSYS_STAT_FREE_PAGES), taken0 = cstat(a, 0, MEMSYS_CSTAT_TAKEN);
  uint32_t first = memsys_alloc(&a->x, 0);
  IS(cstat(a, 0, MEMSYS_CSTAT_RUNS), 1);
  IS(cstat(a, 0, MEMSYS_CSTAT_FREE), 511);
  IS(cstat(a, 0, MEMSYS_CSTAT_OUT), 1);
  IS(cstat(a, 0, MEMSYS_CSTAT_TAKEN), taken0 + 1);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), pages0 - 16);
  IS(memsys_alloc_batch(&a->x, 0, arr, 511), 511);
  IS(cstat(a, 0, MEMSYS_CSTAT_FREE), 0);
  IS(cstat(a, 0, MEMSYS_CSTAT_OUT), 512);
  uint32_t second = memsys_alloc(&a->x, 0); /* a second run */
  IS(cstat(a, 0, MEMSYS_CSTAT_RUNS), 2);
  IS(cstat(a, 0, MEMSYS_CSTAT_FREE), 511);
  IS(cstat(a, 0, MEMSYS_CSTAT_TAKEN), taken0 + 513);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), pages0 - 32);
  IS(memsys_free_batch(&a->x, 0, arr, 511), 511);
  IS(memsys_free(&a->x, first, 0), 0);
  IS(memsys_free(&a->x, second, 0), 0);
  IS(cstat(a, 0, MEMSYS_CSTAT_OUT), 0);
  IS(cstat(a, 0, MEMSYS_CSTAT_FREE), 1024);
  /* trim keeps the depth asked for, in whole runs; a depth above the free count releases nothing. */
  IS(memsys_trim(&a->x, 0, 2000), 0);
  IS(memsys_trim(&a->x, 0, 0xFFFFFFFF), 0);
  IS(memsys_trim(&a->x, 0, 512), 512);
  IS(cstat(a, 0, MEMSYS_CSTAT_RUNS), 1);
  IS(cstat(a, 0, MEMSYS_CSTAT_FREE), 512);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), pages0 - 16);
  IS(memsys_trim(&a->x, 0, 0), 512);
  IS(cstat(a, 0, MEMSYS_CSTAT_RUNS), 0);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), pages0);
  REFUSED(a, memsys_trim(&a->x, MEMSYS_NUM_CLASSES, 0), MEMSYS_E_CLASS);
  /* Raw spans count as raw pages, not free ones. */
  uint32_t r5 = memsys_raw_alloc(&a->x, 5);
  IS(astat(a, MEMSYS_STAT_RAW_PAGES), 6);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), pages0 - 5);
  IS(memsys_raw_free(&a->x, r5), 0);
  IS(astat(a, MEMSYS_STAT_RAW_PAGES), 1);
  IS(memsys_raw_alloc(&a->x, 0), 0);
  IS(memsys_raw_alloc(&a->x, 65536), 0);
  IS(memsys_raw_alloc(&a->x, 65535), 0); /* longer than the arena */
  /* Large classes take whole pages: free pages move by the run length. */
  double before = astat(a, MEMSYS_STAT_FREE_PAGES);
  uint32_t big = memsys_alloc(&a->x, 63);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), before - 32);
  IS(memsys_free(&a->x, big, 63), 0);
  IS(memsys_release(&a->x), 32);
  IS(memsys_release(&a->x), 0);
  IS(memsys_raw_free(&a->x, arr), 0);
  CHECK(empty(a), "not empty after the counters");
  CHECKED(a);
  arena_drop(a);
}

/* ---- 6. refused calls: their codes, and not one byte changed --------------------------------------- */

static void test_refused(void) {
  section = "refused frees";
  arena_t *a = arena_new(64); /* 4 MiB */
  arena_t *A = a;
  IS(memsys_init(&a->x, 0, 1, 1), 0);
  memsys_instance_t *x = &a->x;
  uint32_t big = memsys_alloc(x, 39);      /* 32 KiB */
  uint32_t small = memsys_alloc(x, 5);     /* 768 B */
  uint32_t tailed = memsys_alloc(x, 2);    /* 384 B: 170 slots, a 256-byte tail in its run */
  uint32_t gone = memsys_alloc(x, 7);
  IS(memsys_free(x, gone, 7), 0);          /* a FREE slot of class 7 */
  uint32_t raw = memsys_raw_alloc(x, 2);
  uint32_t end = a->bytes, last = end - 4096;
  IS(map_at(a, last >> 12) >> 30, 1);      /* the last page lies in a free span */
  uint32_t head = map_at(a, tailed >> 12);   /* the run's first page: its own, or the one it names */
  uint32_t run = (head >> 30 == 2 ? tailed >> 12 : head & 0x3FFFFFFF) << 12;
  uint32_t tail = run + 170 * 384;
  IS(tail % 128, 0);
  IS(*memsys_state_byte(a->mem, tail), 0);

  /* E_CLASS first, whatever the offset. */
  REFUSED(A, memsys_free(x, big, 64), MEMSYS_E_CLASS);
  REFUSED(A, memsys_free(x, big, 0xFFFFFFFF), MEMSYS_E_CLASS);
  REFUSED(A, memsys_free(x, 1, 64), MEMSYS_E_CLASS);
  /* E_OFFSET: misaligned, in the header or the tables, past the end. */
  REFUSED(A, memsys_free(x, big + 1, 39), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, big + 64, 39), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, 0, 39), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, 128, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, 4096, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, data_start(a) - 128, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, end, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, 0xFFFFFF80u, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_free(x, big + 1, 38), MEMSYS_E_OFFSET); /* before the class check */
  /* E_NOT_SLOT: inside a buffer, a raw span, a free span, a run's tail. */
  REFUSED(A, memsys_free(x, big + 128, 39), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, big + 4096, 39), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, small + 128, 5), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, raw, 0), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, raw + 4096, 32), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, last, 32), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, tail, 2), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_free(x, big + 128, 3), MEMSYS_E_NOT_SLOT); /* before the class check */
  /* E_WRONG_CLASS, also for a free slot (the class is checked before the state). */
  REFUSED(A, memsys_free(x, big, 38), MEMSYS_E_WRONG_CLASS);
  REFUSED(A, memsys_free(x, big, 40), MEMSYS_E_WRONG_CLASS);
  REFUSED(A, memsys_free(x, small, 4), MEMSYS_E_WRONG_CLASS);
  REFUSED(A, memsys_free(x, gone, 8), MEMSYS_E_WRONG_CLASS);
  /* E_NOT_OUT: a double free. */
  REFUSED(A, memsys_free(x, gone, 7), MEMSYS_E_NOT_OUT);
  /* validate gives the same answers and never changes anything. */
  REFUSED(A, memsys_validate(x, big + 1, 39), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_validate(x, big + 128, 39), MEMSYS_E_NOT_SLOT);
  REFUSED(A, memsys_validate(x, big, 38), MEMSYS_E_WRONG_CLASS);
  REFUSED(A, memsys_validate(x, gone, 7), MEMSYS_E_NOT_OUT);
  REFUSED(A, memsys_validate(x, big, 64), MEMSYS_E_CLASS);
  REFUSED(A, memsys_validate(x, big, 39), MEMSYS_ST_OUT);
  CHECKED(a);

  section = "refused batches";
  uint32_t arr = memsys_raw_alloc(x, 1);
  uint32_t *e = memsys_u32s(x, arr);
  enum { N = 1000 };
  IS(memsys_alloc_batch(x, 5, arr, N - 1), N - 1); /* entries 0..998: class 5; entry 999 varies */
  uint32_t spare = memsys_alloc(x, 5);
  struct { uint32_t off; int32_t code; } bad[] = {
    {small + 1, MEMSYS_E_OFFSET}, {0, MEMSYS_E_OFFSET}, {end, MEMSYS_E_OFFSET},
    {small + 128, MEMSYS_E_NOT_SLOT}, {raw, MEMSYS_E_NOT_SLOT}, {last, MEMSYS_E_NOT_SLOT},
    {big, MEMSYS_E_WRONG_CLASS}, {gone, MEMSYS_E_WRONG_CLASS},
    {0, MEMSYS_E_NOT_OUT}, /* a repeat of another entry, chosen below */
  };
  uint32_t positions[] = {0, 1, 2, 500, N - 1};
  uint32_t saved[N];
  memcpy(saved, e, sizeof saved);
  for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
    for (size_t q = 0; q < sizeof positions / sizeof *positions; q++) {
      uint32_t at = positions[q], fails = at;
      memcpy(e, saved, sizeof saved);
      e[N - 1] = spare;
      if (bad[b].code == MEMSYS_E_NOT_OUT) {
        e[at] = e[at == 0 ? 1 : 0];
        if (at == 0) fails = 1; /* a repeat fails at its second occurrence */
      } else {
        e[at] = bad[b].off;
      }
      int32_t want = -16 * (int32_t)(fails + 1) + bad[b].code;
      REFUSED(A, memsys_free_batch(x, 5, arr, N), want);
      uint32_t entry = 0;
      int32_t code = 0;
      CHECK(memsys_batch_error(want, &entry, &code) && entry == fails && code == bad[b].code,
            "decoding %d: entry %u code %d", want, entry, code);
    }
  }
  memcpy(e, saved, sizeof saved);
  IS(cstat(a, 5, MEMSYS_CSTAT_OUT), N + 1);
  IS(memsys_batch_error(N, NULL, NULL), 0);
  IS(memsys_batch_error(MEMSYS_E_ARG, NULL, NULL), 0);
  /* E_ARG: arrays outside the data pages, misaligned or running past the end; n too large. */
  REFUSED(A, memsys_free_batch(x, 5, arr + 2, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, 0, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, 4096, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, data_start(a) - 4, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, end - 4, 2), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, arr, (end - arr) / 4 + 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, arr, MEMSYS_MAX_BATCH + 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 5, arr, 0xFFFFFFFF), MEMSYS_E_ARG);
  REFUSED(A, memsys_free_batch(x, 64, arr, 1), MEMSYS_E_CLASS);
  REFUSED(A, memsys_free_batch(x, 64, 1, 1), MEMSYS_E_CLASS); /* the class before the array */
  REFUSED(A, memsys_alloc_batch(x, 5, arr + 2, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_alloc_batch(x, 5, 0, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_alloc_batch(x, 5, end - 4, 2), MEMSYS_E_ARG);
  REFUSED(A, memsys_alloc_batch(x, 5, arr, MEMSYS_MAX_BATCH + 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_alloc_batch(x, 64, arr, 1), MEMSYS_E_CLASS);
  REFUSED(A, memsys_scavenge(x, arr + 2, 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_scavenge(x, arr, MEMSYS_MAX_BATCH + 1), MEMSYS_E_ARG);
  REFUSED(A, memsys_alloc(x, 64), 0);
  REFUSED(A, memsys_class_stat(x, 64, 0), -1);
  IS(memsys_free_batch(x, 5, arr, N - 1), N - 1);
  IS(memsys_free(x, spare, 5), 0);
  IS(cstat(a, 5, MEMSYS_CSTAT_OUT), 1); /* small */
  CHECKED(a);

  section = "refused raw frees";
  REFUSED(A, memsys_raw_free(x, raw + 1), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_raw_free(x, raw + 128), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_raw_free(x, 0), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_raw_free(x, 4096), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_raw_free(x, end), MEMSYS_E_OFFSET);
  REFUSED(A, memsys_raw_free(x, raw + 4096), MEMSYS_E_NOT_SLOT); /* inside a raw span */
  REFUSED(A, memsys_raw_free(x, big), MEMSYS_E_NOT_SLOT);        /* a run, not a raw span */
  REFUSED(A, memsys_raw_free(x, last), MEMSYS_E_NOT_SLOT);       /* a free span */
  REFUSED(A, memsys_scavenged(x, last), MEMSYS_E_NOT_SLOT);
  IS(memsys_raw_free(x, raw), 0);
  REFUSED(A, memsys_raw_free(x, raw), MEMSYS_E_NOT_SLOT);
  IS(memsys_raw_free(x, arr), 0);
  IS(memsys_free(x, big, 39), 0);
  IS(memsys_free(x, small, 5), 0);
  IS(memsys_free(x, tailed, 2), 0);
  IS(memsys_release(x) > 0, 1);
  CHECK(empty(a), "not empty");
  /* Three adjacent raw spans; the middle one freed last merges with a freed neighbour on either
     side; no stale head of a merged span is taken as a raw span again. */
  for (int order = 0; order < 3; order++) {
    uint32_t r1 = memsys_raw_alloc(x, 3), r2 = memsys_raw_alloc(x, 2), r3 = memsys_raw_alloc(x, 4);
    uint32_t fence = memsys_raw_alloc(x, 1);
    IS(r2, r1 + 3 * 4096);
    IS(r3, r2 + 2 * 4096);
    IS(fence, r3 + 4 * 4096);
    if (order == 0) { IS(memsys_raw_free(x, r1), 0); IS(memsys_raw_free(x, r2), 0); } /* r2 merges left */
    if (order == 1) { IS(memsys_raw_free(x, r3), 0); IS(memsys_raw_free(x, r2), 0); } /* r2 merges right */
    if (order == 2) { IS(memsys_raw_free(x, r1), 0); IS(memsys_raw_free(x, r3), 0); IS(memsys_raw_free(x, r2), 0); }
    CHECKED(a);
    if (order != 1) REFUSED(A, memsys_raw_free(x, r1), MEMSYS_E_NOT_SLOT);
    REFUSED(A, memsys_raw_free(x, r2), MEMSYS_E_NOT_SLOT);
    if (order != 0) REFUSED(A, memsys_raw_free(x, r3), MEMSYS_E_NOT_SLOT);
    REFUSED(A, memsys_raw_free(x, r2 + 4096), MEMSYS_E_NOT_SLOT);
    if (order == 0) IS(memsys_raw_free(x, r3), 0);
    if (order == 1) IS(memsys_raw_free(x, r1), 0);
    IS(memsys_raw_free(x, fence), 0);
    REFUSED(A, memsys_raw_free(x, fence), MEMSYS_E_NOT_SLOT);
    REFUSED(A, memsys_raw_free(x, r1), MEMSYS_E_NOT_SLOT);
    REFUSED(A, memsys_raw_free(x, r3), MEMSYS_E_NOT_SLOT);
    CHECK(empty(a), "order %d: raw pages left", order);
    IS(astat(a, MEMSYS_STAT_RAW_PAGES), 0);
    CHECKED(a);
  }

  section = "realms";
  /* The single-threaded build has no lock: recover never finds one held. Owners, reclaim, held. */
  REFUSED(A, memsys_set_realm(x, 0), MEMSYS_E_ARG);
  REFUSED(A, memsys_recover(x, 0), MEMSYS_E_ARG);
  REFUSED(A, memsys_recover(x, 1), MEMSYS_E_ARG); /* its own realm */
  REFUSED(A, memsys_recover(x, 77), MEMSYS_E_NOT_HELD);
  REFUSED(A, memsys_reclaim(x, 0), MEMSYS_E_ARG);
  IS(memsys_set_realm(x, 7), 0);
  uint32_t o1 = memsys_alloc(x, 3), o2 = memsys_alloc(x, 3), o3 = memsys_alloc(x, 3);
  *memsys_state_byte(a->mem, o3) = 3 << 2 | MEMSYS_ST_LIVE; /* a host's own OUT -> LIVE flip */
  IS(memsys_validate(x, o3, 3), MEMSYS_ST_LIVE);
  IS(memsys_held(x, 7), 512);
  IS(memsys_held(x, 8), 0);
  CHECKED(a);
  IS(memsys_set_realm(x, 8), 0);
  IS(memsys_reclaim(x, 7), 2); /* the OUT ones */
  IS(memsys_validate(x, o1, 3), MEMSYS_E_NOT_OUT);
  IS(memsys_validate(x, o2, 3), MEMSYS_E_NOT_OUT);
  IS(cstat(a, 3, MEMSYS_CSTAT_OUT), 1);
  IS(memsys_free(x, o3, 3), 0);
  IS(memsys_set_realm(x, 1), 0);
  CHECKED(a);
  arena_drop(a);
}

/* ---- trim, release, close, reopen, scavenge, debug mode ------------------------------------------- */

static void test_lifecycle(void) {
  section = "close and reopen";
  arena_t *a = arena_new(64);
  memsys_instance_t *x = &a->x;
  IS(memsys_init(x, 0, 1, 1), 0);
  uint32_t arr = memsys_raw_alloc(x, 1);
  uint32_t off = memsys_alloc(x, 12);
  REFUSED(a, memsys_close(x), 0); /* a buffer is out */
  IS(memsys_free(x, off, 12), 0);
  IS(memsys_alloc_batch(x, 30, arr, 3), 3);
  REFUSED(a, memsys_close(x), 0);
  IS(memsys_free_batch(x, 30, arr, 3), 3);
  IS(memsys_close(x), 1); /* a raw span does not keep it open */
  IS(u32_at(a, MEMSYS_H_FLAGS) & MEMSYS_FLAG_CLOSED, MEMSYS_FLAG_CLOSED);
  IS(astat(a, MEMSYS_STAT_FLAGS), MEMSYS_FLAG_CLOSED);
  IS(memsys_close(x), 2);
  IS(memsys_close(x), 2);
  REFUSED(a, memsys_alloc(x, 0), 0);
  REFUSED(a, memsys_alloc_batch(x, 0, arr, 4), 0);
  REFUSED(a, memsys_raw_alloc(x, 1), 0);
  IS(memsys_raw_free(x, arr), 0); /* frees are still taken */
  memsys_instance_t y;
  Z_memsys_st_instantiate(&y, &a->env);
  IS(memsys_attach(&y), 0);
  REFUSED(a, memsys_alloc(&y, 5), 0); /* closed for every instance */
  Z_memsys_st_free(&y);
  IS(memsys_reopen(x, 9), 0);
  IS(astat(a, MEMSYS_STAT_ARENA_ID), 9);
  IS(astat(a, MEMSYS_STAT_FLAGS), 0);
  REFUSED(a, memsys_reopen(x, 10), MEMSYS_E_FORMAT); /* not closed */
  off = memsys_alloc(x, 12);
  CHECK(off != 0, "nothing handed out after reopen");
  IS(memsys_free(x, off, 12), 0);
  CHECKED(a);

  section = "scavenge";
  arr = memsys_raw_alloc(x, 1);
  IS(memsys_release(x) > 0, 1);
  double free_pages = astat(a, MEMSYS_STAT_FREE_PAGES);
  CHECK(astat(a, MEMSYS_STAT_CLEAN_PAGES) < free_pages, "used pages count as clean");
  int32_t pairs = memsys_scavenge(x, arr, 64);
  CHECK(pairs > 0, "scavenge took %d spans", pairs);
  uint32_t *e = memsys_u32s(x, arr), taken = 0;
  for (int32_t i = 0; i < pairs; i++) {
    CHECK(e[2 * i] % 4096 == 0 && e[2 * i + 1] % 4096 == 0 && e[2 * i + 1] > 0, "pair %d: %u, %u", i, e[2 * i], e[2 * i + 1]);
    taken += e[2 * i + 1] >> 12;
  }
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), free_pages - taken);
  IS(astat(a, MEMSYS_STAT_RAW_PAGES), 1 + taken);
  for (int32_t i = 0; i < pairs; i++) memset(a->mem + e[2 * i], 0, e[2 * i + 1]); /* as MADV_DONTNEED would */
  for (int32_t i = 0; i < pairs; i++) IS(memsys_scavenged(x, e[2 * i]), 0);
  IS(astat(a, MEMSYS_STAT_FREE_PAGES), free_pages);
  IS(astat(a, MEMSYS_STAT_CLEAN_PAGES), free_pages);
  IS(memsys_scavenge(x, arr, 64), 0); /* clean spans are not taken again */
  IS(memsys_raw_free(x, arr), 0);
  CHECK(empty(a), "not empty after scavenge");
  CHECKED(a);
  arena_drop(a);

  section = "debug mode";
  a = arena_new(256);
  x = &a->x;
  IS(memsys_init(x, MEMSYS_FLAG_DEBUG, 1, 1), 0);
  IS(astat(a, MEMSYS_STAT_FLAGS), MEMSYS_FLAG_DEBUG);
  uint32_t held[100];
  for (int i = 0; i < 100; i++) held[i] = memsys_alloc(x, (uint32_t)i % 64);
  for (int i = 0; i < 100; i++) IS(memsys_free(x, held[i], (uint32_t)i % 64), 0);
  IS(u32_at(a, MEMSYS_H_BROKEN), 0);
  CHECKED(a);
  /* A host writing another class into a state byte breaks an invariant that check names. */
  off = memsys_alloc(x, 0);
  *memsys_state_byte(a->mem, off) = 1 << 2 | MEMSYS_ST_OUT;
  IS(memsys_check(x), MEMSYS_E_CHECK_SLOT);
  arena_drop(a);
}

/* ---- 7. a randomized model ------------------------------------------------------------------------ */

static uint64_t rng;
static uint32_t next(void) { /* xorshift64* */
  rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}
static uint32_t below(uint32_t n) { return (uint32_t)(((uint64_t)next() * n) >> 32); }

/* Mostly small classes, some pages ones: the mix a byte-stream host sees. */
static uint32_t random_class(void) {
  uint32_t r = below(100);
  return r < 70 ? below(MEMSYS_NUM_SMALL) : MEMSYS_NUM_SMALL + below(MEMSYS_NUM_CLASSES - MEMSYS_NUM_SMALL);
}

typedef struct { uint32_t off, c, tag; } live_t;

enum { LIVE_MAX = 4096 };
static live_t live[LIVE_MAX];
static uint32_t nlive;
static uint32_t live_per_class[MEMSYS_NUM_CLASSES];
static double taken_per_class[MEMSYS_NUM_CLASSES];
static uint8_t *granules; /* 1 per 128-byte granule held by a live buffer */

/* A buffer's tag, in its first and its last four bytes (every class is at least 128 bytes). */
static void put_tag(arena_t *a, uint32_t off, uint32_t size, uint32_t tag) {
  memcpy(a->mem + off, &tag, 4);
  memcpy(a->mem + off + size - 4, &tag, 4);
}
static int has_tag(arena_t *a, uint32_t off, uint32_t size, uint32_t tag) {
  uint32_t head, tail;
  memcpy(&head, a->mem + off, 4);
  memcpy(&tail, a->mem + off + size - 4, 4);
  return head == tag && tail == tag;
}

static void took(arena_t *a, uint32_t off, uint32_t c, uint32_t tag) {
  uint32_t size = memsys_class_size(c);
  CHECK(off >= data_start(a) && (uint64_t)off + size <= a->bytes && off % 128 == 0, "class %u at %u", c, off);
  uint32_t g0 = off >> 7, n = size >> 7, at = first_set(granules + g0, n, 0);
  CHECK(at == n, "class %u at %u: granule %u is already in a live buffer (handed out twice)", c, off, g0 + at);
  memset(granules + g0, 1, n);
  put_tag(a, off, size, tag);
  live[nlive++] = (live_t){off, c, tag};
  live_per_class[c]++;
  taken_per_class[c]++;
}

/* Drops live[i] from the model (after the core took it back), verifying its tags. */
static void gave(arena_t *a, uint32_t i) {
  live_t b = live[i];
  uint32_t size = memsys_class_size(b.c);
  CHECK(has_tag(a, b.off, size, b.tag), "class %u at %u: its tag %u was overwritten", b.c, b.off, b.tag);
  memset(granules + (b.off >> 7), 0, size >> 7);
  live[i] = live[--nlive];
  live_per_class[b.c]--;
}

static void test_model(uint64_t seed, uint32_t ops) {
  section = "model";
  rng = seed * 0x9E3779B97F4A7C15ULL | 1;
  arena_t *a = arena_new(512); /* 32 MiB: it fills up now and then */
  memsys_instance_t *x = &a->x;
  IS(memsys_init(x, 0, 1, 1), 0);
  granules = calloc(a->bytes >> 7, 1);
  uint32_t arr = memsys_raw_alloc(x, 1);
  uint32_t *e = memsys_u32s(x, arr);
  unsigned long full = 0, batches = 0, bad_batches = 0, bad_frees = 0, snapshots = 0;
  uint32_t tag = 0;
  uint32_t target = LIVE_MAX / 2;
  for (uint32_t op = 0; op < ops; op++) {
    if (op % 20000 == 0) target = below(LIVE_MAX / 2); /* wander between empty and full */
    tag = tag * 2654435761u + op + 1; /* a different tag for every operation, never 0 */
    if (tag == 0) tag = 1;
    uint32_t r = below(1000);
    int grow = nlive < target;
    if (r < 400 && (grow || nlive == 0) && nlive < LIVE_MAX) {
      uint32_t c = random_class(), off = memsys_alloc(x, c);
      if (off) took(a, off, c, tag);
      else { full++; CHECK(no_room(a, c), "op %u: alloc(%u) returned 0 with room left", op, c); }
    } else if (r < 550 && (grow || nlive == 0)) {
      uint32_t c = random_class(), n = 1 + below(64);
      if (n > LIVE_MAX - nlive) n = LIVE_MAX - nlive;
      for (uint32_t i = 0; i < n; i++) e[i] = 0xDEADBEEF;
      int32_t got = memsys_alloc_batch(x, c, arr, n);
      CHECK(got >= 0 && (uint32_t)got <= n, "op %u: alloc_batch(%u, n=%u) returned %d", op, c, n, got);
      for (int32_t i = 0; i < got; i++) took(a, e[i], c, tag);
      for (uint32_t i = (uint32_t)got; i < n; i++) IS(e[i], 0xDEADBEEF);
      if ((uint32_t)got < n) { full++; CHECK(no_room(a, c), "op %u: alloc_batch(%u) stopped at %d with room left", op, c, got); }
      batches++;
    } else if (r < 800 && nlive) {
      uint32_t i = below(nlive);
      IS(memsys_free(x, live[i].off, live[i].c), 0);
      gave(a, i);
    } else if (r < 950 && nlive) {
      /* A batch of one class's buffers; now and then with a bad entry, which must change nothing. */
      uint32_t c = live[below(nlive)].c, n = 0, want = 1 + below(64), idx[64];
      for (uint32_t k = 0, start = below(nlive); k < nlive && n < want; k++) {
        uint32_t i = (start + k) % nlive;
        if (live[i].c == c) idx[n] = i, e[n] = live[i].off, n++;
      }
      batches++;
      if (below(20) == 0) {
        uint32_t at = below(n + 1), entry;
        int32_t code;
        uint32_t kind = below(4);
        if (kind == 0 && n > 0) entry = e[below(n)], code = MEMSYS_E_NOT_OUT;           /* a repeat */
        else if (kind == 1) entry = live[below(nlive)].off + 1, code = MEMSYS_E_OFFSET;
        else {
          uint32_t i = below(nlive);
          entry = live[i].off, code = MEMSYS_E_WRONG_CLASS;
          if (live[i].c == c) entry += 128, code = memsys_class_size(c) > 128 ? MEMSYS_E_NOT_SLOT : 0;
          if (code == 0) continue;
          if (live[i].c != c && memsys_class_size(live[i].c) > 128 && below(2)) entry += 128, code = MEMSYS_E_NOT_SLOT;
        }
        memmove(e + at + 1, e + at, (n - at) * 4);
        e[at] = entry;
        uint32_t fails = at;
        if (code == MEMSYS_E_NOT_OUT) {
          uint32_t seen = 0;
          for (fails = 0; fails <= n; fails++) if (e[fails] == entry && ++seen == 2) break;
        }
        int32_t want_r = -16 * (int32_t)(fails + 1) + (int32_t)code;
        int full_copy = snapshots < 40;
        if (full_copy) snap(a), snapshots++;
        double out = cstat(a, c, MEMSYS_CSTAT_OUT);
        IS(memsys_free_batch(x, c, arr, n + 1), want_r);
        if (full_copy) CHECK(unchanged(a), "op %u: a refused free_batch changed the arena", op);
        IS(cstat(a, c, MEMSYS_CSTAT_OUT), out);
        for (uint32_t k = 0; k < n; k++) IS(memsys_validate(x, live[idx[k]].off, c) > 0, 1);
        IS(e[at], entry); /* the array is as it was */
        bad_batches++;
      } else {
        IS(memsys_free_batch(x, c, arr, n), n);
        /* Drop from the model from the highest index down, as gave() moves the last entry. */
        for (uint32_t k = 0; k < n; k++) {
          uint32_t hi = k;
          for (uint32_t j = k + 1; j < n; j++) if (idx[j] > idx[hi]) hi = j;
          uint32_t t = idx[k]; idx[k] = idx[hi]; idx[hi] = t;
          gave(a, idx[k]);
        }
      }
    } else if (r < 980) {
      /* A free of an offset the model does not hold: it must be refused. */
      uint32_t off = data_start(a) + (below((a->bytes - data_start(a)) >> 7) << 7), c = random_class();
      if (granules[off >> 7]) continue;
      int32_t v = memsys_validate(x, off, c);
      CHECK(v < 0, "op %u: validate(%u, %u) = %d for no live buffer", op, off, c, v);
      IS(memsys_free(x, off, c), v);
      bad_frees++;
    } else if (r < 995) {
      uint32_t c = random_class(), depth = below(600);
      double before = cstat(a, c, MEMSYS_CSTAT_FREE), out = cstat(a, c, MEMSYS_CSTAT_OUT);
      int32_t n = memsys_trim(x, c, depth);
      CHECK(n >= 0, "trim returned %d", n);
      double after = cstat(a, c, MEMSYS_CSTAT_FREE);
      IS(after, before - n);
      CHECK(before < depth ? n == 0 : after >= depth, "trim(%u, %u): %.0f -> %.0f free", c, depth, before, after);
      IS(cstat(a, c, MEMSYS_CSTAT_OUT), out);
    } else {
      CHECK(memsys_release(x) >= 0, "release");
      CHECKED(a);
    }
    if (op % 1000 == 0) CHECKED(a);
  }
  CHECKED(a);
  /* Counts balance: out per class is the model's live count; taken is every buffer handed out. */
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) {
    IS(cstat(a, c, MEMSYS_CSTAT_OUT), live_per_class[c]);
    IS(cstat(a, c, MEMSYS_CSTAT_TAKEN), taken_per_class[c]);
  }
  uint32_t left = nlive;
  while (nlive) {
    uint32_t i = nlive - 1;
    IS(memsys_free(x, live[i].off, live[i].c), 0);
    gave(a, i);
  }
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) IS(cstat(a, c, MEMSYS_CSTAT_OUT), 0);
  memsys_release(x);
  IS(memsys_raw_free(x, arr), 0);
  CHECK(empty(a), "free pages %.0f of %.0f data pages after freeing everything", astat(a, MEMSYS_STAT_FREE_PAGES),
        astat(a, MEMSYS_STAT_PAGES) - astat(a, MEMSYS_STAT_DATA_PAGE));
  CHECKED(a);
  IS(memsys_close(x), 1);
  printf("model: %u operations, seed %" PRIu64 ", %lu batches (%lu refused), %lu foreign frees refused, "
         "%lu times full, %u live at the end\n", ops, seed, batches, bad_batches, bad_frees, full, left);
  free(granules);
  arena_drop(a);
}

int main(int argc, char **argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
  uint32_t ops = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 300000;
  wasm_rt_init();
  Z_memsys_st_init_module();
  /* No export traps on a well-formed arena; should one, it lands here and the run fails. */
  wasm_rt_trap_t trap = wasm_rt_impl_try();
  if (trap) {
    fprintf(stderr, "FAIL [%s]: the core trapped (wasm_rt_trap_t %d)\n", section, (int)trap);
    return 1;
  }
  test_globals();
  test_init();
  test_classes();
  test_batches();
  test_refused();
  test_lifecycle();
  test_model(seed, ops);
  wasm_rt_free();
  printf("memsys embed-c: all %lu checks passed\n", checks);
  return 0;
}
