/*
 * alloc + free pairs through the core compiled to C by wasm2c, against glibc malloc/free of the
 * same sizes, in one process (bench/c.ts builds and runs it; part 8 of bench/RESULTS.md).
 *
 * The core is linked twice, from the same build/memsys.st.wasm: memsys_g compiled as wasm2c does
 * by default on 64-bit Linux (the memory sits in an 8 GiB reservation whose guard pages catch an
 * out-of-bounds access, so loads and stores carry no bounds check), and memsys_b compiled with
 * WASM_RT_MEMCHECK_SIGNAL_HANDLER=0 (an explicit check on every load and store). Both call
 * alloc and free directly, one call each, and write byte 0 of each buffer; glibc's side writes
 * byte 0 of each block too.
 *
 * Loops: one class (32 KiB, then 128 B), allocated and freed at once; random classes (uniform
 * over the 64, the same pre-drawn sequence for every contender), allocated and freed at once;
 * random classes with 1024 buffers live (each step frees the oldest and allocates one).
 * Contenders alternate within each repetition; the median and the best of REPS are printed as
 * tab-separated lines: loop, contender, ns per pair (median), ns per pair (best); then the
 * compiler's and glibc's versions. Argument: milliseconds per repetition and contender (100).
 */
#include <gnu/libc-version.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "memsys_b.h"
#include "memsys_g.h"
#include "wasm-rt-impl.h"
#include "memsys.h"

struct Z_env_instance_t {
  wasm_rt_memory_t memory;
};
wasm_rt_memory_t *Z_envZ_memory(struct Z_env_instance_t *env) { return &env->memory; }

enum { REPS = 7, SEQ = 1 << 16, LIVE = 1024, ARENA_PAGES = 8192 /* 512 MiB */ };
static uint32_t cls[SEQ];
static uint32_t size_of[MEMSYS_NUM_CLASSES];

#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory") /* keeps malloc/free pairs from being elided */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void none(const char *who) {
  fprintf(stderr, "%s: out of memory\n", who);
  exit(1);
}

/* The loops of one core build, M (memsys_g or memsys_b). */
#define CORE_LOOPS(M)                                                                          \
  static Z_##M##_instance_t M##_x;                                                             \
  static uint8_t *M##_mem;                                                                     \
  static void M##_one(long n, uint32_t c) {                                                    \
    for (long i = 0; i < n; i++) {                                                             \
      uint32_t off = Z_##M##Z_alloc(&M##_x, c);                                                \
      if (!off) none(#M);                                                                      \
      M##_mem[off] = (uint8_t)i;                                                               \
      Z_##M##Z_free(&M##_x, off, c);                                                           \
    }                                                                                          \
  }                                                                                            \
  static void M##_random(long n, uint32_t unused) {                                            \
    (void)unused;                                                                              \
    for (long i = 0; i < n; i++) {                                                             \
      uint32_t c = cls[i & (SEQ - 1)], off = Z_##M##Z_alloc(&M##_x, c);                        \
      if (!off) none(#M);                                                                      \
      M##_mem[off] = (uint8_t)i;                                                               \
      Z_##M##Z_free(&M##_x, off, c);                                                           \
    }                                                                                          \
  }                                                                                            \
  static uint32_t M##_ring[LIVE], M##_ring_c[LIVE];                                            \
  static void M##_live(long n, uint32_t unused) {                                              \
    (void)unused;                                                                              \
    for (long i = 0; i < n; i++) {                                                             \
      uint32_t k = (uint32_t)i & (LIVE - 1), c = cls[i & (SEQ - 1)];                           \
      Z_##M##Z_free(&M##_x, M##_ring[k], M##_ring_c[k]);                                       \
      uint32_t off = Z_##M##Z_alloc(&M##_x, c);                                                \
      if (!off) none(#M);                                                                      \
      M##_mem[off] = (uint8_t)i;                                                               \
      M##_ring[k] = off, M##_ring_c[k] = c;                                                    \
    }                                                                                          \
  }                                                                                            \
  static void M##_setup(struct Z_env_instance_t *env) {                                        \
    wasm_rt_allocate_memory(&env->memory, ARENA_PAGES, ARENA_PAGES);                           \
    Z_##M##_instantiate(&M##_x, env);                                                          \
    if ((int32_t)Z_##M##Z_init(&M##_x, 0, 1, 1) != 0) none(#M);                                \
    M##_mem = env->memory.data;                                                                \
    for (uint32_t k = 0; k < LIVE; k++) {                                                      \
      M##_ring_c[k] = cls[(SEQ - LIVE + k) & (SEQ - 1)];                                       \
      if (!(M##_ring[k] = Z_##M##Z_alloc(&M##_x, M##_ring_c[k]))) none(#M);                    \
    }                                                                                          \
  }

CORE_LOOPS(memsys_g)
CORE_LOOPS(memsys_b)

static void glibc_one(long n, uint32_t c) {
  size_t size = size_of[c];
  for (long i = 0; i < n; i++) {
    uint8_t *p = malloc(size);
    if (!p) none("malloc");
    p[0] = (uint8_t)i;
    ESCAPE(p);
    free(p);
  }
}

static void glibc_random(long n, uint32_t unused) {
  (void)unused;
  for (long i = 0; i < n; i++) {
    uint8_t *p = malloc(size_of[cls[i & (SEQ - 1)]]);
    if (!p) none("malloc");
    p[0] = (uint8_t)i;
    ESCAPE(p);
    free(p);
  }
}

static uint8_t *glibc_ring[LIVE];
static void glibc_live(long n, uint32_t unused) {
  (void)unused;
  for (long i = 0; i < n; i++) {
    uint32_t k = (uint32_t)i & (LIVE - 1);
    free(glibc_ring[k]);
    uint8_t *p = malloc(size_of[cls[i & (SEQ - 1)]]);
    if (!p) none("malloc");
    p[0] = (uint8_t)i;
    ESCAPE(p);
    glibc_ring[k] = p;
  }
}

typedef void (*loop_fn)(long n, uint32_t c);
typedef struct { const char *name; loop_fn fn[3]; uint32_t c; } loop_t;
static const char *contenders[3] = {"glibc", "core", "core-checked"};

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  double target_ns = (argc > 1 ? atof(argv[1]) : 100) * 1e6; /* per repetition and contender */
  uint64_t r = 0x9E3779B97F4A7C15ULL;
  for (uint32_t i = 0; i < SEQ; i++) {
    r ^= r >> 12, r ^= r << 25, r ^= r >> 27;
    cls[i] = (uint32_t)((r * 0x2545F4914F6CDD1DULL) >> 58); /* 0..63 */
  }
  for (uint32_t c = 0; c < MEMSYS_NUM_CLASSES; c++) size_of[c] = memsys_class_size(c);
  for (uint32_t k = 0; k < LIVE; k++) {
    if (!(glibc_ring[k] = malloc(size_of[cls[(SEQ - LIVE + k) & (SEQ - 1)]]))) none("malloc");
  }
  wasm_rt_init();
  Z_memsys_g_init_module();
  Z_memsys_b_init_module();
  static struct Z_env_instance_t env_g, env_b;
  memsys_g_setup(&env_g);
  memsys_b_setup(&env_b);
  if (wasm_rt_impl_try() != 0) {
    fprintf(stderr, "the core trapped\n");
    return 1;
  }
  loop_t loops[] = {
    {"one class, 32 KiB", {glibc_one, memsys_g_one, memsys_b_one}, 39},
    {"one class, 128 B", {glibc_one, memsys_g_one, memsys_b_one}, 0},
    {"random classes", {glibc_random, memsys_g_random, memsys_b_random}, 0},
    {"random classes, 1024 live", {glibc_live, memsys_g_live, memsys_b_live}, 0},
  };
  for (size_t l = 0; l < sizeof loops / sizeof *loops; l++) {
    loop_t *lp = &loops[l];
    long n[3];
    double ns[3][REPS];
    for (int k = 0; k < 3; k++) { /* warm up, and size a repetition to target_ns */
      lp->fn[k](1 << 16, lp->c);
      double t0 = now();
      lp->fn[k](1 << 18, lp->c);
      double per = (now() - t0) / (1 << 18);
      n[k] = (long)(target_ns / per) + 1;
    }
    for (int rep = 0; rep < REPS; rep++) {
      for (int k = 0; k < 3; k++) {
        double t0 = now();
        lp->fn[k](n[k], lp->c);
        ns[k][rep] = (now() - t0) / (double)n[k];
      }
    }
    for (int k = 0; k < 3; k++) {
      qsort(ns[k], REPS, sizeof(double), by_value);
      printf("%s\t%s\t%.2f\t%.2f\n", lp->name, contenders[k], ns[k][REPS / 2], ns[k][0]);
    }
  }
  if ((int32_t)Z_memsys_gZ_check(&memsys_g_x) != 0 || (int32_t)Z_memsys_bZ_check(&memsys_b_x) != 0) {
    fprintf(stderr, "the arena is broken after the run\n");
    return 1;
  }
  printf("cc\tgcc %s\n", __VERSION__);
  printf("libc\tglibc %s\n", gnu_get_libc_version());
  return 0;
}
