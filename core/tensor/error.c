/* error.c: the thread-local error message every failing core call leaves behind. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chalk.h"

static _Thread_local char ct_errbuf[1024];

const char *ct_last_error(void) { return ct_errbuf[0] ? ct_errbuf : "unknown error"; }

void ct_clear_error(void) { ct_errbuf[0] = 0; }

int ct_errorf(const char *fmt, ...) {
  char tmp[sizeof ct_errbuf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap); /* fmt may mention ct_errbuf itself: format first */
  va_end(ap);
  memcpy(ct_errbuf, tmp, sizeof tmp);
  return -1;
}

const char *ct_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

const char *ct_describe(const ct_tensor *t, char *buf, size_t n) {
  char sh[128], dev[32];
  if (!t) {
    snprintf(buf, n, "nil");
    return buf;
  }
  snprintf(buf, n, "%s%s on %s", ct_dtype_name(t->dtype), ct_shape_str(t->shape, t->ndim, sh, sizeof sh),
           ct_device_str(t->storage->device, dev, sizeof dev));
  return buf;
}
