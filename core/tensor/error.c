/* error.c: the thread-local error message every failing core call leaves behind, and shape text.
 * Invariants: calls nothing else in core (dtype.c, which names dtypes and devices for messages,
 * sits above it), so errors are the floor of the tensor layer. */
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
