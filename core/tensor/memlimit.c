/* memlimit.c: the largest single host allocation chalk attempts, so that an absurd size is a Lua
 * error instead of the kernel's OOM killer ending the session (issue 14). By default half the
 * physical memory (or of the cgroup's limit, when lower): an op holds its inputs and output at
 * once, and arange/linspace stage in f64, so one allocation of 3/4 of RAM still meets the OOM
 * killer at the next one. CHALK_MAX_ALLOC=<bytes>[K|M|G|T] or chalk.set_memory_limit(bytes) sets it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tensor/checked.h"

static int64_t limit_set;     /* > 0: set by ct_set_memory_limit */
static int64_t limit_default; /* 0 until first asked */

static int64_t parse_bytes(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return 0;
  int shift = 0;
  switch (toupper((unsigned char)*end)) {
  case 'K': shift = 10; break;
  case 'M': shift = 20; break;
  case 'G': shift = 30; break;
  case 'T': shift = 40; break;
  case '\0': case '\n': break;
  default: return 0;
  }
  if (shift && end[1] && end[1] != '\n' && !(toupper((unsigned char)end[1]) == 'B' || toupper((unsigned char)end[1]) == 'I')) return 0;
  if (v == 0 || v > (unsigned long long)(INT64_MAX >> shift)) return 0;
  return (int64_t)(v << shift);
}

static int64_t physical_default(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  int64_t phys = pages > 0 && psz > 0 ? (int64_t)pages * psz : INT64_MAX / 4 * 3;
  FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* "max" when unlimited */
  if (f) {
    char buf[64];
    if (fgets(buf, sizeof buf, f)) {
      int64_t cg = parse_bytes(buf[0] ? buf : "x");
      if (cg > 0 && cg < phys) phys = cg;
    }
    fclose(f);
  }
  return phys / 2;
}

int64_t ct_memory_limit(void) {
  if (limit_set > 0) return limit_set;
  if (!limit_default) {
    const char *env = getenv("CHALK_MAX_ALLOC");
    int64_t v = env ? parse_bytes(env) : 0;
    if (env && !v) fprintf(stderr, "chalk: CHALK_MAX_ALLOC=%s is not a size in bytes (e.g. 8G); using half the RAM\n", env);
    limit_default = v ? v : physical_default();
  }
  return limit_default;
}

int64_t ct_set_memory_limit(int64_t bytes) {
  int64_t old = ct_memory_limit();
  limit_set = bytes > 0 ? bytes : 0;
  return old;
}

static void human(int64_t b, char *buf, size_t n) {
  static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, u++;
  if (u) snprintf(buf, n, "%.3g %s (%lld bytes)", v, unit[u], (long long)b);
  else snprintf(buf, n, "%lld bytes", (long long)b);
}

int ct_check_alloc(const char *op, const int64_t *shape, int ndim, ct_dtype dt, int64_t nbytes) {
  int64_t lim = ct_memory_limit();
  if (nbytes <= lim) return 0;
  char sh[160], need[64], have[64];
  human(nbytes, need, sizeof need);
  human(lim, have, sizeof have);
  return ct_errorf("%s%sout of memory: shape %s of %s needs %s, above the limit of %s for one allocation "
                   "(chalk.set_memory_limit(bytes) or CHALK_MAX_ALLOC change it)",
                   op ? op : "", op ? ": " : "", ct_shape_str(shape, ndim, sh, sizeof sh), ct_dtype_name(dt), need, have);
}
