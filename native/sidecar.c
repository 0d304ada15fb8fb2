/* memsys-sidecar: the three things memsys's NUMA placement and pressure watching need from the
 * kernel that JavaScript cannot do, in a process of its own that speaks JSON lines over stdio
 * (docs/sidecar.md is the protocol):
 *
 *   move_pages(2)        where a process's pages are, and moving them to a node
 *   process_madvise(2)   marking a process's pages cold, or paging them out
 *   PSI triggers         /proc/pressure/memory or a cgroup's memory.pressure, polled for POLLPRI
 *
 * A separate process, not the in-process addon, because a move of a million pages can take
 * seconds: here it blocks no event loop, and a call that hangs is ended by killing the process.
 *
 * It is an ordinary program run by the user who spawns it, with that user's rights and no more:
 * the kernel's own checks on each syscall decide which processes it may touch, and their EPERM or
 * ESRCH come back as answers. Every request is checked before any syscall; a request that breaks a
 * rule gets an answer naming the field and the rule, never a crash. Memory is allocated per
 * request and freed after it. It exits when its stdin closes.
 *
 * Layout: limits, the answer writer, the JSON parser, field checks, one function per op, the
 * dispatcher, the line reader and poll loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define MPOL_MF_MOVE (1 << 1)
#define PROC_MAGIC 0x9fa0
#define CGROUP2_MAGIC 0x63677270

#define VERSION 1
#define PAGE 4096LL
#define MAX_LINE 8192          /* a request is small: the longest field is a path (PATH_MAX) */
#define MAX_FIELDS 16
#define MAX_KEY 32
#define MAX_ID 2147483647LL
#define MAX_PAGES 1048576LL    /* 4 GiB of 4 KiB pages: about 20 MiB of arrays per request */
#define ADDR_LIMIT (1LL << 53) /* what a JavaScript number holds exactly */
#define MAX_NODE 1023          /* the kernel's largest MAX_NUMNODES (NODES_SHIFT 10) */
#define MAX_TRIGGERS 32
#define MAX_ERRNO 4095
/* Pages handed to one move_pages call: the kernel isolates every page of a call from the LRU
 * before migrating any, so a whole 4 GiB request in one call would hold them all at once. */
#define MOVE_CHUNK 8192

/* ---- answers ------------------------------------------------------------------------------ */

typedef struct {
  char *p;
  size_t n, cap;
  bool broken; /* an allocation failed: the answer becomes an ENOMEM error */
} Out;

static void put(Out *o, const char *s, size_t n) {
  if (o->broken) return;
  if (o->n + n > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + n) cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
      o->broken = true;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->n, s, n);
  o->n += n;
}

static void puts_(Out *o, const char *s) { put(o, s, strlen(s)); }

static void put_int(Out *o, long long v) {
  char b[24];
  put(o, b, (size_t)snprintf(b, sizeof b, "%lld", v));
}

/* A JSON string of any bytes: everything outside printable ASCII is escaped, so an answer is
 * valid JSON (and ASCII) whatever a request carried. */
static void put_quoted(Out *o, const char *s, size_t n) {
  put(o, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char b[8];
    if (c == '"' || c == '\\') {
      b[0] = '\\';
      b[1] = (char)c;
      put(o, b, 2);
    } else if (c < 0x20 || c > 0x7e) {
      put(o, b, (size_t)snprintf(b, sizeof b, "\\u%04x", c));
    } else {
      put(o, (const char *)&c, 1);
    }
  }
  put(o, "\"", 1);
}

static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) exit(0); /* nobody reads the answers any more */
    p += w;
    n -= (size_t)w;
  }
}

/* Why a request failed: errno is 0 when the request was refused before any syscall. */
typedef struct {
  int err;
  char text[400];
} Fail;

__attribute__((format(printf, 3, 4))) static int fail(Fail *f, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->text, sizeof f->text, fmt, ap);
  va_end(ap);
  f->err = err;
  return -1;
}

static void answer(long long id, int rc, Out *body, const Fail *f) {
  Out o = {0};
  puts_(&o, "{\"id\":");
  put_int(&o, id);
  if (rc == 0 && !body->broken) {
    puts_(&o, ",\"ok\":true");
    put(&o, body->p ? body->p : "", body->n);
  } else {
    int err = rc == 0 ? ENOMEM : f->err;
    const char *text = rc == 0 ? "out of memory while writing the answer" : f->text;
    puts_(&o, ",\"ok\":false,\"errno\":");
    put_int(&o, err);
    puts_(&o, ",\"error\":");
    put_quoted(&o, text, strlen(text));
  }
  puts_(&o, "}\n");
  if (o.broken) {
    char b[128];
    write_all(b, (size_t)snprintf(b, sizeof b,
                                  "{\"id\":%lld,\"ok\":false,\"errno\":%d,\"error\":\"out of memory while writing the answer\"}\n",
                                  id, ENOMEM));
  } else {
    write_all(o.p, o.n);
  }
  free(o.p);
}

static void event(const char *name, int trigger) {
  char b[80];
  write_all(b, (size_t)snprintf(b, sizeof b, "{\"event\":\"%s\",\"trigger\":%d}\n", name, trigger));
}

static const char *errno_name(int e, char *buf, size_t n) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOSPC)
    E(ERANGE) E(ENOSYS) E(EOPNOTSUPP) E(EHWPOISON)
#undef E
  }
  snprintf(buf, n, "E%d", e);
  return buf;
}

/* ---- the JSON parser: one flat object of strings, numbers, booleans and null ---------------- */

typedef enum { T_INT, T_NUMBER, T_STRING, T_BOOL, T_NULL } Type;

typedef struct {
  char key[MAX_KEY + 1];
  Type type;
  bool huge;         /* T_INT beyond the 64-bit range: outside every allowed range */
  long long i;       /* T_INT */
  const char *s;     /* T_STRING: decoded, NUL-terminated (NUL is refused inside) */
  size_t slen;
  const char *raw;   /* the value as written, for messages */
  size_t rawlen;
} Field;

typedef struct {
  Field f[MAX_FIELDS];
  int n;
} Obj;

typedef struct {
  const char *p, *start, *end;
  char *scratch; /* decoded strings; never longer than the line they came from */
  size_t used;
  char err[96];
} Parser;

static bool perr(Parser *ps, const char *what) {
  snprintf(ps->err, sizeof ps->err, "not a flat JSON object: %s at byte %zu", what, (size_t)(ps->p - ps->start));
  return false;
}

static void skip_ws(Parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

static bool parse_string(Parser *ps, const char **out, size_t *outlen) {
  if (ps->p >= ps->end || *ps->p != '"') return perr(ps, "expected a string");
  ps->p++;
  char *d = ps->scratch + ps->used, *d0 = d;
  for (;;) {
    if (ps->p >= ps->end) return perr(ps, "unterminated string");
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '"') break;
    if (c < 0x20) return perr(ps, "control character in a string");
    if (c != '\\') {
      *d++ = (char)c;
      continue;
    }
    if (ps->p >= ps->end) return perr(ps, "unterminated escape");
    char e = *ps->p++;
    switch (e) {
      case '"': *d++ = '"'; break;
      case '\\': *d++ = '\\'; break;
      case '/': *d++ = '/'; break;
      case 'b': *d++ = '\b'; break;
      case 'f': *d++ = '\f'; break;
      case 'n': *d++ = '\n'; break;
      case 'r': *d++ = '\r'; break;
      case 't': *d++ = '\t'; break;
      case 'u': {
        int u = ps->end - ps->p >= 4 ? hex4(ps->p) : -1;
        if (u < 0) return perr(ps, "bad \\u escape");
        ps->p += 4;
        long cp = u;
        if (u >= 0xdc00 && u <= 0xdfff) return perr(ps, "lone low surrogate");
        if (u >= 0xd800 && u <= 0xdbff) {
          int lo = ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' ? hex4(ps->p + 2) : -1;
          if (lo < 0xdc00 || lo > 0xdfff) return perr(ps, "lone high surrogate");
          ps->p += 6;
          cp = 0x10000 + ((long)(u - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0) return perr(ps, "NUL in a string");
        /* UTF-8 is never longer than the escape it came from (6 or 12 bytes) */
        if (cp < 0x80) {
          *d++ = (char)cp;
        } else if (cp < 0x800) {
          *d++ = (char)(0xc0 | (cp >> 6));
          *d++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
          *d++ = (char)(0xe0 | (cp >> 12));
          *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
          *d++ = (char)(0x80 | (cp & 0x3f));
        } else {
          *d++ = (char)(0xf0 | (cp >> 18));
          *d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
          *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
          *d++ = (char)(0x80 | (cp & 0x3f));
        }
        break;
      }
      default: return perr(ps, "bad escape");
    }
  }
  *d = '\0';
  *out = d0;
  *outlen = (size_t)(d - d0);
  ps->used += *outlen + 1;
  return true;
}

static bool digits(Parser *ps) {
  const char *s = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  return ps->p > s;
}

/* JSON's number grammar; only the plain integer form (no fraction, no exponent) is an integer. */
static bool parse_number(Parser *ps, Field *f) {
  const char *s = ps->p;
  bool neg = ps->p < ps->end && *ps->p == '-';
  if (neg) ps->p++;
  if (ps->p < ps->end && *ps->p == '0') {
    ps->p++;
    if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') return perr(ps, "leading zero");
  } else if (!digits(ps)) {
    return perr(ps, "bad number");
  }
  const char *int_end = ps->p;
  bool integer = true;
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (!digits(ps)) return perr(ps, "bad fraction");
    integer = false;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (!digits(ps)) return perr(ps, "bad exponent");
    integer = false;
  }
  f->type = integer ? T_INT : T_NUMBER;
  if (integer) {
    unsigned long long v = 0;
    for (const char *q = s + neg; q < int_end; q++) {
      unsigned d = (unsigned)(*q - '0');
      if (v > (ULLONG_MAX - d) / 10) {
        f->huge = true;
        break;
      }
      v = v * 10 + d;
    }
    if (v > (unsigned long long)LLONG_MAX) f->huge = true;
    if (!f->huge) f->i = neg ? -(long long)v : (long long)v;
  }
  return true;
}

static bool literal(Parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
  ps->p += n;
  return true;
}

static bool parse_value(Parser *ps, Field *f) {
  if (ps->p >= ps->end) return perr(ps, "expected a value");
  const char *raw = ps->p;
  char c = *ps->p;
  if (c == '"') {
    f->type = T_STRING;
    if (!parse_string(ps, &f->s, &f->slen)) return false;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    if (!parse_number(ps, f)) return false;
  } else if (literal(ps, "true") || literal(ps, "false")) {
    f->type = T_BOOL;
  } else if (literal(ps, "null")) {
    f->type = T_NULL;
  } else if (c == '{' || c == '[') {
    return perr(ps, "nested objects and arrays are not accepted");
  } else {
    return perr(ps, "expected a value");
  }
  f->raw = raw;
  f->rawlen = (size_t)(ps->p - raw);
  return true;
}

static bool parse_object(Parser *ps, Obj *o) {
  o->n = 0;
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '{') return perr(ps, "expected '{'");
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
  } else {
    for (;;) {
      if (o->n == MAX_FIELDS) return perr(ps, "more than 16 fields");
      Field *f = &o->f[o->n];
      memset(f, 0, sizeof *f);
      const char *key;
      size_t klen;
      if (!parse_string(ps, &key, &klen)) return false;
      if (klen > MAX_KEY) return perr(ps, "a key longer than 32 bytes");
      memcpy(f->key, key, klen + 1);
      for (int i = 0; i < o->n; i++) {
        if (strcmp(o->f[i].key, f->key) == 0) return perr(ps, "a duplicate key");
      }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return perr(ps, "expected ':'");
      ps->p++;
      skip_ws(ps);
      if (!parse_value(ps, f)) return false;
      o->n++;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        break;
      }
      return perr(ps, "expected ',' or '}'");
    }
  }
  skip_ws(ps);
  if (ps->p != ps->end) return perr(ps, "text after the object");
  return true;
}

/* ---- field checks -------------------------------------------------------------------------- */

static Field *field(Obj *o, const char *key) {
  for (int i = 0; i < o->n; i++) {
    if (strcmp(o->f[i].key, key) == 0) return &o->f[i];
  }
  return NULL;
}

/* How a value is named in a message: as it was written, cut short. */
#define SHOWN(f) (int)((f)->rawlen > 40 ? 40 : (f)->rawlen), (f)->raw, (f)->rawlen > 40 ? "..." : ""

static int get_int(Obj *o, const char *key, long long lo, long long hi, long long *v, Fail *f) {
  Field *x = field(o, key);
  if (!x) return fail(f, 0, "%s is missing: an integer %lld..%lld is required", key, lo, hi);
  if (x->type != T_INT || x->huge || x->i < lo || x->i > hi) {
    return fail(f, 0, "%s must be an integer %lld..%lld (got %.*s%s)", key, lo, hi, SHOWN(x));
  }
  *v = x->i;
  return 0;
}

/* Which of `names` (NULL-terminated) the string field is. */
static int get_choice(Obj *o, const char *key, const char *const *names, int *v, Fail *f) {
  Field *x = field(o, key);
  char list[128] = "";
  for (int i = 0; names[i]; i++) {
    if (x && x->type == T_STRING && strcmp(x->s, names[i]) == 0) {
      *v = i;
      return 0;
    }
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", names[i]);
  }
  if (!x) return fail(f, 0, "%s is missing: one of %s is required", key, list);
  return fail(f, 0, "%s must be one of %s (got %.*s%s)", key, list, SHOWN(x));
}

/* A range from an aligned start: 1..MAX_PAGES pages (lenkey "pages") or a length in bytes, a
 * multiple of 4096 ("len"); it must end at or below 2^53. */
static int get_range(Obj *o, const char *lenkey, long long *start, long long *len, Fail *f) {
  bool in_pages = strcmp(lenkey, "pages") == 0;
  if (get_int(o, "start", 0, ADDR_LIMIT - 1, start, f)) return -1;
  if (*start % PAGE) return fail(f, 0, "start must be a multiple of 4096 (got %lld)", *start);
  if (in_pages ? get_int(o, lenkey, 1, MAX_PAGES, len, f) : get_int(o, lenkey, PAGE, ADDR_LIMIT, len, f)) return -1;
  if (!in_pages && *len % PAGE) return fail(f, 0, "%s must be a multiple of 4096 (got %lld)", lenkey, *len);
  long long bytes = in_pages ? *len * PAGE : *len;
  if (bytes > ADDR_LIMIT - *start) {
    return fail(f, 0, "start + %s%s must not pass 2^53 (got start %lld, %s %lld)", lenkey,
                in_pages ? " * 4096" : "", *start, lenkey, *len);
  }
  return 0;
}

static int get_pid(Obj *o, long long *pid, Fail *f) { return get_int(o, "pid", 1, INT_MAX, pid, f); }

/* ---- ops ----------------------------------------------------------------------------------- */

static long move_pages_(long long pid, long n, void **pages, const int *nodes, int *status, int flags) {
  return syscall(SYS_move_pages, (int)pid, (unsigned long)n, pages, nodes, status, flags);
}

static int syscall_fail(Fail *f, const char *call) {
  int e = errno;
  return fail(f, e, "%s: %s", call, strerror(e));
}

static int op_ping(Obj *o, Out *out, Fail *f) {
  (void)o;
  (void)f;
  puts_(out, ",\"pid\":");
  put_int(out, getpid());
  puts_(out, ",\"version\":");
  put_int(out, VERSION);
  return 0;
}

/* The page addresses of a range; NULL (and an ENOMEM failure) when there is no room. */
static void **page_list(long long start, long long pages, Fail *f) {
  void **a = malloc((size_t)pages * sizeof *a);
  if (!a) {
    fail(f, ENOMEM, "no memory for a list of %lld pages", pages);
    return NULL;
  }
  for (long long i = 0; i < pages; i++) a[i] = (void *)(uintptr_t)(start + i * PAGE);
  return a;
}

static int op_query(Obj *o, Out *out, Fail *f) {
  long long pid, start, pages;
  if (get_pid(o, &pid, f) || get_range(o, "pages", &start, &pages, f)) return -1;
  void **addrs = page_list(start, pages, f);
  int *status = addrs ? malloc((size_t)pages * sizeof *status) : NULL;
  int rc = -1;
  if (addrs && !status) fail(f, ENOMEM, "no memory for %lld page statuses", pages);
  if (status) {
    if (move_pages_(pid, (long)pages, addrs, NULL, status, 0) != 0) {
      syscall_fail(f, "move_pages");
    } else {
      puts_(out, ",\"nodes\":[");
      for (long long i = 0; i < pages; i++) {
        if (i) put(out, ",", 1);
        put_int(out, status[i]);
      }
      put(out, "]", 1);
      rc = 0;
    }
  }
  free(status);
  free(addrs);
  return rc;
}

/* Queries the pages, moves those not on `node` in chunks, and re-queries the pages whose move is
 * in doubt: -EBUSY statuses (a transparent huge page reports it for one of its 4 KiB pages
 * although the whole page moved) and every page of a call that returned a positive count (the
 * kernel then stops and leaves the statuses unset). A page still elsewhere after that is counted
 * as EBUSY: the kernel could not migrate it now. */
static int op_move(Obj *o, Out *out, Fail *f) {
  long long pid, start, pages, node;
  if (get_pid(o, &pid, f) || get_range(o, "pages", &start, &pages, f) || get_int(o, "node", 0, MAX_NODE, &node, f)) {
    return -1;
  }
  void **addrs = page_list(start, pages, f);
  int *status = addrs ? malloc((size_t)pages * sizeof *status) : NULL;
  int *nodes = status ? malloc(MOVE_CHUNK * sizeof *nodes) : NULL;
  long long *failed = nodes ? calloc(MAX_ERRNO + 1, sizeof *failed) : NULL;
  int rc = -1;
  if (!failed) {
    if (addrs) fail(f, ENOMEM, "no memory to move %lld pages", pages);
    goto out;
  }
  if (move_pages_(pid, (long)pages, addrs, NULL, status, 0) != 0) {
    syscall_fail(f, "move_pages (query)");
    goto out;
  }
  long long moved = 0, already = 0, todo = 0, doubt = 0;
  /* Each pass packs the pages it keeps at the front of addrs: never past where it reads. */
  for (long long i = 0; i < pages; i++) {
    if (status[i] == node) already++;
    else if (status[i] < 0) failed[-status[i] > MAX_ERRNO ? 0 : -status[i]]++;
    else addrs[todo++] = addrs[i];
  }
  for (int i = 0; i < MOVE_CHUNK; i++) nodes[i] = (int)node;
  for (long long off = 0; off < todo; off += MOVE_CHUNK) {
    long n = (long)(todo - off < MOVE_CHUNK ? todo - off : MOVE_CHUNK);
    long r = move_pages_(pid, n, addrs + off, nodes, status, MPOL_MF_MOVE);
    if (r < 0) {
      int e = errno;
      fail(f, e, "move_pages: %s (after %lld of %lld pages moved)", strerror(e), moved, todo);
      goto out;
    }
    for (long j = 0; j < n; j++) {
      int s = status[j];
      if (r == 0 && s == node) moved++;
      else if (r == 0 && s < 0 && s != -EBUSY) failed[-s > MAX_ERRNO ? 0 : -s]++;
      else addrs[doubt++] = addrs[off + j];
    }
  }
  if (doubt > 0) {
    if (move_pages_(pid, (long)doubt, addrs, NULL, status, 0) != 0) {
      int e = errno;
      fail(f, e, "move_pages (re-query): %s (after %lld of %lld pages moved)", strerror(e), moved, todo);
      goto out;
    }
    for (long long i = 0; i < doubt; i++) {
      if (status[i] == node) moved++;
      else if (status[i] < 0) failed[-status[i] > MAX_ERRNO ? 0 : -status[i]]++;
      else failed[EBUSY]++;
    }
  }
  puts_(out, ",\"moved\":");
  put_int(out, moved);
  puts_(out, ",\"already\":");
  put_int(out, already);
  puts_(out, ",\"failed\":{");
  bool first = true;
  for (int e = 0; e <= MAX_ERRNO; e++) {
    if (!failed[e]) continue;
    char b[16];
    const char *name = e == 0 ? "EUNKNOWN" : errno_name(e, b, sizeof b);
    if (!first) put(out, ",", 1);
    first = false;
    put_quoted(out, name, strlen(name));
    put(out, ":", 1);
    put_int(out, failed[e]);
  }
  put(out, "}", 1);
  rc = 0;
out:
  free(failed);
  free(nodes);
  free(status);
  free(addrs);
  return rc;
}

static int op_madvise(Obj *o, Out *out, Fail *f) {
  static const char *const advice_names[] = {"cold", "pageout", NULL};
  static const int advice_values[] = {MADV_COLD, MADV_PAGEOUT};
  long long pid, start, len;
  int advice;
  if (get_pid(o, &pid, f) || get_range(o, "len", &start, &len, f) ||
      get_choice(o, "advice", advice_names, &advice, f)) {
    return -1;
  }
  int pidfd = (int)syscall(SYS_pidfd_open, (int)pid, 0);
  if (pidfd < 0) return syscall_fail(f, "pidfd_open");
  /* The kernel takes at most about 2 GiB per call and says how much it took. */
  long long done = 0;
  while (done < len) {
    struct iovec iov = {(void *)(uintptr_t)(start + done), (size_t)(len - done)};
    long r = syscall(SYS_process_madvise, pidfd, &iov, 1UL, advice_values[advice], 0U);
    if (r < 0) {
      int e = errno;
      close(pidfd);
      return fail(f, e, "process_madvise: %s (after %lld of %lld bytes)", strerror(e), done, len);
    }
    if (r == 0) break;
    done += r;
  }
  close(pidfd);
  puts_(out, ",\"bytes\":");
  put_int(out, done);
  return 0;
}

typedef struct {
  int id, fd;
} Trigger;

static Trigger triggers[MAX_TRIGGERS];
static int ntriggers, last_trigger;

static void drop_trigger(int i) {
  close(triggers[i].fd);
  triggers[i] = triggers[--ntriggers];
}

/* Only PSI files: the trigger string is written to the file opened, so a wrong path must never be
 * opened for writing as anything else (the file system is checked on the open file). */
static int op_psi_watch(Obj *o, Out *out, Fail *f) {
  static const char *const kinds[] = {"some", "full", NULL};
  static const char suffix[] = "/memory.pressure";
  const size_t slen = sizeof suffix - 1;
  Field *p = field(o, "path");
  if (!p) return fail(f, 0, "path is missing: /proc/pressure/memory or a cgroup's memory.pressure is required");
  bool proc = p->type == T_STRING && strcmp(p->s, "/proc/pressure/memory") == 0;
  bool cgroup = p->type == T_STRING && p->s[0] == '/' && p->slen > slen && p->slen < PATH_MAX &&
                strcmp(p->s + p->slen - slen, suffix) == 0;
  if (!proc && !cgroup) {
    return fail(f, 0, "path must be /proc/pressure/memory or the absolute path of a cgroup's memory.pressure (got %.*s%s)", SHOWN(p));
  }
  int kind;
  long long stall, window;
  if (get_choice(o, "kind", kinds, &kind, f) || get_int(o, "window_us", 500000, 10000000, &window, f) ||
      get_int(o, "stall_us", 1, window, &stall, f)) {
    return -1;
  }
  if (ntriggers == MAX_TRIGGERS) return fail(f, 0, "at most %d triggers can be watched at once", MAX_TRIGGERS);
  int fd = open(p->s, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  if (fd < 0) {
    int e = errno;
    return fail(f, e, "open %s: %s", p->s, strerror(e));
  }
  struct statfs fs;
  struct stat st;
  if (fstatfs(fd, &fs) != 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (unsigned long)fs.f_type != (unsigned long)(proc ? PROC_MAGIC : CGROUP2_MAGIC)) {
    close(fd);
    return fail(f, 0, "path %s is not a PSI file (not a file of %s)", p->s, proc ? "procfs" : "a cgroup2 file system");
  }
  char t[64];
  int n = snprintf(t, sizeof t, "%s %lld %lld", kinds[kind], stall, window);
  /* The kernel reads the trigger as a C string: the NUL goes with it. */
  if (write(fd, t, (size_t)n + 1) < 0) {
    int e = errno;
    close(fd);
    return fail(f, e, "writing the trigger \"%s\" to %s: %s", t, p->s, strerror(e));
  }
  last_trigger = last_trigger == INT_MAX ? 1 : last_trigger + 1;
  triggers[ntriggers++] = (Trigger){last_trigger, fd};
  puts_(out, ",\"trigger\":");
  put_int(out, last_trigger);
  return 0;
}

static int op_psi_unwatch(Obj *o, Out *out, Fail *f) {
  (void)out;
  long long id;
  if (get_int(o, "trigger", 1, INT_MAX, &id, f)) return -1;
  for (int i = 0; i < ntriggers; i++) {
    if (triggers[i].id == id) {
      drop_trigger(i);
      return 0;
    }
  }
  return fail(f, 0, "trigger %lld is not watched", id);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef int (*OpFn)(Obj *, Out *, Fail *);

static const struct {
  const char *name;
  OpFn fn;
  const char *fields[5]; /* besides id and op; every other field is refused */
} OPS[] = {
    {"ping", op_ping, {NULL}},
    {"query", op_query, {"pid", "start", "pages", NULL}},
    {"move", op_move, {"pid", "start", "pages", "node", NULL}},
    {"madvise", op_madvise, {"pid", "start", "len", "advice", NULL}},
    {"psi_watch", op_psi_watch, {"path", "kind", "stall_us", "window_us", NULL}},
    {"psi_unwatch", op_psi_unwatch, {"trigger", NULL}},
};
#define NOPS (int)(sizeof OPS / sizeof OPS[0])

static int dispatch(Obj *o, long long *id, Out *out, Fail *f) {
  if (get_int(o, "id", 1, MAX_ID, id, f)) {
    *id = 0;
    return -1;
  }
  Field *op = field(o, "op");
  int k = 0;
  while (k < NOPS && !(op && op->type == T_STRING && strcmp(op->s, OPS[k].name) == 0)) k++;
  if (k == NOPS) {
    const char *rule = "op must be one of ping, query, move, madvise, psi_watch, psi_unwatch";
    return op ? fail(f, 0, "%s (got %.*s%s)", rule, SHOWN(op)) : fail(f, 0, "op is missing: %s", rule);
  }
  for (int i = 0; i < o->n; i++) {
    const char *key = o->f[i].key;
    bool known = strcmp(key, "id") == 0 || strcmp(key, "op") == 0;
    for (int j = 0; !known && OPS[k].fields[j]; j++) known = strcmp(key, OPS[k].fields[j]) == 0;
    if (!known) return fail(f, 0, "\"%s\" is not a field of %s", key, OPS[k].name);
  }
  return OPS[k].fn(o, out, f);
}

static char scratch[MAX_LINE + 1];

static void handle_line(const char *line, size_t len) {
  Parser ps = {line, line, line + len, scratch, 0, ""};
  Obj o;
  Fail f = {0, ""};
  Out body = {0};
  long long id = 0;
  int rc = parse_object(&ps, &o) ? dispatch(&o, &id, &body, &f) : fail(&f, 0, "%s", ps.err);
  answer(id, rc, &body, &f);
  free(body.p);
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void psi_events(const struct pollfd *p, int n) {
  /* Backwards, so that dropping a trigger (the last moves into its slot) skips none. */
  for (int i = n - 1; i >= 0; i--) {
    if (p[i].revents & (POLLERR | POLLNVAL)) {
      /* The source is gone (its cgroup was removed): it would report POLLERR for ever. */
      event("psi_closed", triggers[i].id);
      drop_trigger(i);
    } else if (p[i].revents & POLLPRI) {
      event("psi", triggers[i].id);
    }
  }
}

static char line[MAX_LINE];
static size_t line_len;
static bool too_long; /* the line being read passed MAX_LINE: it is dropped, then refused */

static void end_line(void) {
  if (too_long) {
    Fail f;
    Out none = {0};
    answer(0, fail(&f, 0, "a line longer than %d bytes", MAX_LINE), &none, &f);
  } else {
    handle_line(line, line_len);
  }
  line_len = 0;
  too_long = false;
}

int main(void) {
  /* A write to a client that is gone must end this process quietly, not by a signal. */
  signal(SIGPIPE, SIG_IGN);
  /* Nothing this process could exec would gain privileges. */
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  static char buf[65536];
  for (;;) {
    struct pollfd p[MAX_TRIGGERS + 1];
    int n = ntriggers;
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){triggers[i].fd, POLLPRI, 0};
    p[n] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
    if (poll(p, (nfds_t)n + 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    psi_events(p, n);
    if (!p[n].revents) continue;
    ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) {
      if (line_len > 0 || too_long) end_line(); /* a last line without its newline is answered too */
      return 0;
    }
    for (ssize_t i = 0; i < r; i++) {
      if (buf[i] == '\n') end_line();
      else if (line_len == MAX_LINE) too_long = true;
      else if (!too_long) line[line_len++] = buf[i];
    }
  }
}
