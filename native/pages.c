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
 * A Node-API addon, so that one binary serves every Node version >= 20.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <node_api.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif

#define PAGE 4096u

static napi_value result(napi_env env, int32_t r) {
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

static napi_value discard(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return result(env, EINVAL);
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) return result(env, EINVAL);
  double off, n;
  int32_t lazy;
  if (napi_get_value_double(env, argv[1], &off) != napi_ok || napi_get_value_double(env, argv[2], &n) != napi_ok ||
      napi_get_value_int32(env, argv[3], &lazy) != napi_ok) return result(env, EINVAL);
  if (!(off >= 0 && n > 0 && off + n <= (double)len) || (uint64_t)off % PAGE || (uint64_t)n % PAGE ||
      (uintptr_t)data % PAGE) return result(env, EINVAL);
  char *at = (char *)data + (size_t)off;
  if (madvise(at, (size_t)n, lazy ? MADV_FREE : MADV_DONTNEED) != 0) return result(env, errno);
  return result(env, 0);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "discard", NAPI_AUTO_LENGTH, discard, NULL, &fn);
  napi_set_named_property(env, exports, "discard", fn);
  return exports;
}
