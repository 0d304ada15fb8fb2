/* moveloop: the fastest a process can move its own memory between NUMA nodes with move_pages(2),
 * the limit the sidecar's mover is compared with. No libnuma, no libc wrappers for the NUMA calls:
 * raw syscalls, so that a static binary runs in the busybox guest.
 *
 *   moveloop MIB [BATCH] [TO] [FROM]    (defaults: BATCH 4096 pages, TO 1, FROM 0)
 *   moveloop --pid PID ADDR PAGES [BATCH] [TO]
 *
 * The second form moves PAGES pages of process PID from address ADDR (hex or decimal) instead of
 * memory of its own: the very memory a mover is timed on, so that the two compare like for like
 * (a Node process's wasm memory and a fresh mapping of this program's differ in huge pages).
 *
 * Allocates MIB MiB on node FROM (set_mempolicy MPOL_BIND while touching, so that the timed move
 * always moves every page), writes each page's index into it, moves every page to node TO with
 * move_pages in batches of BATCH pages (timed: the figure reported), then queries every page
 * (timed separately): a transparent huge page reports -EBUSY for one of its 4 KiB pages although
 * the whole huge page moved, and only the query says where each page is. Last, every page's bytes
 * are checked.
 * Prints one line of key=value pairs starting "moveloop:"; exits 0 only when every page is on TO
 * and intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MPOL_DEFAULT 0
#define MPOL_BIND 2
#define MPOL_MF_MOVE (1 << 1)

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static long target_pid; /* 0: this process */

static long move_pages(unsigned long n, void **pages, const int *nodes, int *status) {
  return syscall(SYS_move_pages, target_pid, n, pages, nodes, status, nodes ? MPOL_MF_MOVE : 0);
}

static int die(const char *what);
static long on_node(void **pages, int *status, unsigned long n, unsigned long batch, int node, long *errors);

/* Every page of another process's range to node `to` in batches: the timed loop of the first form. */
static int move_other(int argc, char **argv) {
  if (argc < 5) return die("arguments");
  target_pid = strtol(argv[2], NULL, 10);
  uintptr_t addr = (uintptr_t)strtoull(argv[3], NULL, 0);
  unsigned long n = strtoul(argv[4], NULL, 10);
  unsigned long batch = argc > 5 ? strtoul(argv[5], NULL, 10) : 4096;
  int to = argc > 6 ? atoi(argv[6]) : 1;
  if (target_pid <= 0 || n == 0 || batch == 0 || addr % PAGE) return die("arguments");
  void **pages = malloc(n * sizeof *pages);
  int *nodes = malloc(n * sizeof *nodes), *status = malloc(n * sizeof *status);
  if (!pages || !nodes || !status) return die("alloc");
  for (unsigned long i = 0; i < n; i++) pages[i] = (void *)(addr + i * PAGE), nodes[i] = to;
  long busy = 0, failed = 0;
  double t0 = now_ms();
  for (unsigned long i = 0; i < n; i += batch) {
    unsigned long k = n - i < batch ? n - i : batch;
    if (move_pages(k, pages + i, nodes + i, status + i) < 0) return die("move_pages");
    for (unsigned long j = 0; j < k; j++) {
      if (status[i + j] == -EBUSY) busy++;
      else if (status[i + j] != to) failed++;
    }
  }
  double move_ms = now_ms() - t0;
  long errors;
  long after = on_node(pages, status, n, batch, to, &errors);
  if (after < 0) return die("query");
  printf("moveloop: pid=%ld pages=%lu batch=%lu to=%d move_ms=%.1f pages_per_s=%.0f ebusy=%ld failed=%ld on_to=%ld\n",
         target_pid, n, batch, to, move_ms, n / (move_ms / 1e3), busy, failed, after);
  return after == (long)n ? 0 : 1;
}

static long set_policy(int mode, int node) {
  unsigned long mask = 1UL << node;
  return syscall(SYS_set_mempolicy, mode, mode == MPOL_DEFAULT ? NULL : &mask, mode == MPOL_DEFAULT ? 0 : 64);
}

static int die(const char *what) {
  printf("moveloop: error=%s errno=%d (%s)\n", what, errno, strerror(errno));
  return 2;
}

/* Queries pages [0, n) in batches; counts how many are on `node`, and returns -1 on a failed call. */
static long on_node(void **pages, int *status, unsigned long n, unsigned long batch, int node, long *errors) {
  long on = 0;
  *errors = 0;
  for (unsigned long i = 0; i < n; i += batch) {
    unsigned long k = n - i < batch ? n - i : batch;
    if (move_pages(k, pages + i, NULL, status + i) != 0) return -1;
    for (unsigned long j = 0; j < k; j++) {
      if (status[i + j] == node) on++;
      else if (status[i + j] < 0) (*errors)++;
    }
  }
  return on;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--pid") == 0) return move_other(argc, argv);
  if (argc < 2) {
    fprintf(stderr, "usage: moveloop MIB [BATCH] [TO] [FROM]\n");
    return 2;
  }
  unsigned long mib = strtoul(argv[1], NULL, 10);
  unsigned long batch = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
  int to = argc > 3 ? atoi(argv[3]) : 1, from = argc > 4 ? atoi(argv[4]) : 0;
  unsigned long n = mib * 1024 * 1024 / PAGE;
  if (n == 0 || batch == 0) return die("arguments");

  char *mem = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void **pages = malloc(n * sizeof *pages);
  int *nodes = malloc(n * sizeof *nodes), *status = malloc(n * sizeof *status);
  if (mem == MAP_FAILED || !pages || !nodes || !status) return die("alloc");

  double t0 = now_ms();
  if (set_policy(MPOL_BIND, from) != 0) return die("set_mempolicy");
  for (unsigned long i = 0; i < n; i++) {
    uint64_t *w = (uint64_t *)(mem + i * PAGE);
    w[0] = i;
    w[PAGE / 8 - 1] = ~i;
    pages[i] = mem + i * PAGE;
    nodes[i] = to;
  }
  if (set_policy(MPOL_DEFAULT, 0) != 0) return die("set_mempolicy");
  double touch_ms = now_ms() - t0;
  long errors;
  long before = on_node(pages, status, n, batch, from, &errors);
  if (before < 0) return die("query");

  /* The timed part: every page in batches, as a mover that knows nothing about the pages would. */
  long busy = 0, failed = 0;
  t0 = now_ms();
  for (unsigned long i = 0; i < n; i += batch) {
    unsigned long k = n - i < batch ? n - i : batch;
    long r = move_pages(k, pages + i, nodes + i, status + i);
    if (r < 0) return die("move_pages");
    for (unsigned long j = 0; j < k; j++) {
      if (status[i + j] == -EBUSY) busy++;
      else if (status[i + j] != to) failed++;
    }
  }
  double move_ms = now_ms() - t0;

  t0 = now_ms();
  long after = on_node(pages, status, n, batch, to, &errors);
  double query_ms = now_ms() - t0;
  if (after < 0) return die("query");

  long bad = 0;
  for (unsigned long i = 0; i < n; i++) {
    uint64_t *w = (uint64_t *)(mem + i * PAGE);
    if (w[0] != i || w[PAGE / 8 - 1] != ~i) bad++;
  }
  printf("moveloop: mib=%lu pages=%lu batch=%lu from=%d to=%d on_from_before=%ld touch_ms=%.1f move_ms=%.1f "
         "pages_per_s=%.0f mib_per_s=%.1f ebusy=%ld failed=%ld on_to=%ld query_errors=%ld query_ms=%.1f "
         "query_pages_per_s=%.0f bad_pages=%ld\n",
         mib, n, batch, from, to, before, touch_ms, move_ms, n / (move_ms / 1e3), mib / (move_ms / 1e3), busy, failed,
         after, errors, query_ms, n / (query_ms / 1e3), bad);
  return after == (long)n && bad == 0 ? 0 : 1;
}
