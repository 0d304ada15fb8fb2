/* memsys-pages: gives the free pages of a WebAssembly memory back to the kernel, in place.
 *
 * Linear memory cannot shrink, and WebAssembly has no way to discard pages; a dropped
 * WebAssembly.Memory stays resident (and charged to the process's memory cgroup) until the
 * garbage collector runs. So the pool hands the free spans its core names to madvise(2):
 *
 *   discard(view, offset, length, lazy) -> 0 or an errno
 *
 * `view` is a Uint8Array over the whole memory (shared or not: V8 maps both as private
 * anonymous memory of this process); [offset, offset + length) must be whole 4 KiB pages inside
 * it. lazy = 0: MADV_DONTNEED, the pages are gone at once and read as zero (the cgroup's usage
 * falls now). lazy = 1: MADV_FREE, the kernel takes them only when it needs memory; until then a
 * page reads as zero or as its old bytes. The core never reads the data pages, so either is safe.
 *
 * It also places that memory on a NUMA node, which only the process itself can do (mbind(2) acts
 * on the caller's address space; another process can move pages but not set their policy):
 *
 *   address(view) -> the address of the view's first byte, so that a helper process can name
 *                    the same pages to move_pages(2)
 *   mbind(view, offset, length, node, move) -> 0 or an errno
 *
 * mbind binds [offset, offset + length) of the memory to `node` alone (MPOL_BIND): pages faulted
 * in later come from that node, and automatic NUMA balancing leaves them there. `move` also
 * migrates the pages already there (MPOL_MF_MOVE). Plain syscall(2), so that no libnuma is needed
 * to build or run it.
 *
 * A Node-API addon, so that one binary serves every Node version >= 20.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif

#define PAGE 4096u

/* From the kernel's uapi/linux/mempolicy.h, which not every system's headers carry. */
#define MEMSYS_MPOL_BIND 2
#define MEMSYS_MPOL_MF_MOVE (1 << 1)
/* The largest node mbind takes here; the kernel's own limit (MAX_NUMNODES) is 1024 at most. */
#define MAX_NODE 1023
#define MASK_WORDS ((MAX_NODE + 1) / (8 * sizeof(unsigned long)))

static napi_value result(napi_env env, int32_t r) {
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

// The bytes under a Uint8Array; false if v is not one (or is empty: no address to speak of).
static bool u8_view(napi_env env, napi_value v, void **data, size_t *len) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  return *data != NULL && *len > 0;
}

/* The span [offset, offset + length) of argv[1], argv[2] inside the view argv[0], whole 4 KiB
 * pages of a page-aligned memory; false for any bad argument. */
static bool page_span(napi_env env, napi_value *argv, char **at, size_t *bytes) {
  size_t len;
  void *data;
  double off, n;
  if (!u8_view(env, argv[0], &data, &len) || napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &n) != napi_ok) return false;
  if (!(off >= 0 && n > 0 && off + n <= (double)len) || (uint64_t)off % PAGE || (uint64_t)n % PAGE ||
      (uintptr_t)data % PAGE) return false;
  *at = (char *)data + (size_t)off;
  *bytes = (size_t)n;
  return true;
}

static napi_value address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  size_t len;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !u8_view(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, NULL, "address(view): view must be a Uint8Array of at least one byte");
    return NULL;
  }
  napi_value v;
  // User-space addresses on Linux fit in 47 (or 56) bits, well inside a double's 53.
  napi_create_double(env, (double)(uintptr_t)data, &v);
  return v;
}

static napi_value bind_node(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) return result(env, EINVAL);
  char *at;
  size_t n;
  double node;
  napi_value flag;
  bool move;
  if (!page_span(env, argv, &at, &n) || napi_get_value_double(env, argv[3], &node) != napi_ok ||
      napi_coerce_to_bool(env, argv[4], &flag) != napi_ok || napi_get_value_bool(env, flag, &move) != napi_ok) return result(env, EINVAL);
  if (!(node >= 0 && node <= MAX_NODE) || node != (double)(int)node) return result(env, EINVAL);
  unsigned long mask[MASK_WORDS];
  memset(mask, 0, sizeof mask);
  int nd = (int)node;
  mask[nd / (8 * sizeof(unsigned long))] = 1UL << (nd % (8 * sizeof(unsigned long)));
  // maxnode is one more than the bits in the mask: the kernel reads maxnode - 1 bits.
  long r = syscall(SYS_mbind, at, (unsigned long)n, MEMSYS_MPOL_BIND, mask, (unsigned long)(MAX_NODE + 2),
                   move ? MEMSYS_MPOL_MF_MOVE : 0);
  return result(env, r == 0 ? 0 : errno);
}

static napi_value discard(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return result(env, EINVAL);
  char *at;
  size_t n;
  int32_t lazy;
  if (!page_span(env, argv, &at, &n) || napi_get_value_int32(env, argv[3], &lazy) != napi_ok) return result(env, EINVAL);
  if (madvise(at, n, lazy ? MADV_FREE : MADV_DONTNEED) != 0) return result(env, errno);
  return result(env, 0);
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  export_fn(env, exports, "discard", discard);
  export_fn(env, exports, "address", address);
  export_fn(env, exports, "mbind", bind_node);
  return exports;
}
