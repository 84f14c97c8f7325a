/* testutil.c: the shared test helpers declared in testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tu_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL; }

uint64_t tu_next(tu_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double tu_uniform(tu_rng *r, double lo, double hi) {
  return lo + (hi - lo) * ((double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0));
}

double tu_normal(tu_rng *r) {
  double u1 = tu_uniform(r, 0, 1), u2 = tu_uniform(r, 0, 1);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int64_t tu_int(tu_rng *r, int64_t lo, int64_t hi) { return lo + (int64_t)(tu_next(r) % (uint64_t)(hi - lo + 1)); }

int tu_rand_shape(tu_rng *r, int ndim, int64_t lo, int64_t hi, int64_t *shape) {
  for (int d = 0; d < ndim; d++) shape[d] = tu_int(r, lo, hi);
  return ndim;
}

static int64_t numel_of(const int64_t *shape, int ndim) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

ct_tensor *tu_rand_tensor_away(tu_rng *r, const int64_t *shape, int ndim, ct_dtype dt, double lo, double hi,
                               double away) {
  int64_t n = numel_of(shape, ndim);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double x;
    do x = tu_uniform(r, lo, hi);
    while (fabs(x) < away);
    v[i] = x;
  }
  ct_tensor *t = ct_from_doubles(v, shape, ndim, dt, ct_cpu());
  free(v);
  return t;
}

ct_tensor *tu_rand_tensor(tu_rng *r, const int64_t *shape, int ndim, ct_dtype dt, double lo, double hi) {
  return tu_rand_tensor_away(r, shape, ndim, dt, lo, hi, 0);
}

ct_tensor *tu_rand_index(tu_rng *r, const int64_t *shape, int ndim, int64_t n) {
  int64_t k = numel_of(shape, ndim);
  double *v = malloc(sizeof(double) * (size_t)(k ? k : 1));
  if (!v) return NULL;
  for (int64_t i = 0; i < k; i++) v[i] = (double)tu_int(r, 1, n);
  ct_tensor *t = ct_from_doubles(v, shape, ndim, CT_I64, ct_cpu());
  free(v);
  return t;
}

double *tu_values(const ct_tensor *t) {
  int64_t n = ct_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (v && ct_to_doubles(t, v)) {
    free(v);
    return NULL;
  }
  return v;
}

const char *tu_desc(const ct_tensor *t) {
  static char bufs[8][200];
  static int k;
  char *b = bufs[k++ & 7];
  return ct_describe(t, b, sizeof bufs[0]);
}

static void multi_index(const int64_t *shape, int ndim, int64_t flat, char *buf, size_t n) {
  int64_t idx[CT_MAX_DIMS];
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)idx[d]);
  if (k < n) snprintf(buf + k, n - k, "] (0-based)");
}

static bool close_enough(double got, double want, double rtol, double atol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= atol + rtol * fabs(want);
}

int tu_compare(const char *what, const ct_tensor *t, const double *want, int64_t n, double rtol, double atol,
               char *msg, size_t msgn) {
  if (ct_numel(t) != n) {
    snprintf(msg, msgn, "%s: got %s, expected %lld elements", what, tu_desc(t), (long long)n);
    return -1;
  }
  double *got = tu_values(t);
  if (!got) {
    snprintf(msg, msgn, "%s: cannot read %s: %s", what, tu_desc(t), ct_last_error());
    return -1;
  }
  int rc = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!close_enough(got[i], want[i], rtol, atol)) {
      char ix[160];
      multi_index(t->shape, t->ndim, i, ix, sizeof ix);
      snprintf(msg, msgn, "%s: %s element %s: got %.17g, expected %.17g (|diff| %.3g > atol %.1g + rtol %.1g)",
               what, tu_desc(t), ix, got[i], want[i], fabs(got[i] - want[i]), atol, rtol);
      rc = -1;
      break;
    }
  }
  free(got);
  return rc;
}

int tu_compare_tensors(const char *what, const ct_tensor *got, const ct_tensor *want, double rtol, double atol,
                       char *msg, size_t msgn) {
  if (got->ndim != want->ndim || memcmp(got->shape, want->shape, sizeof(int64_t) * (size_t)got->ndim)) {
    snprintf(msg, msgn, "%s: shape of %s differs from expected %s", what, tu_desc(got), tu_desc(want));
    return -1;
  }
  double *w = tu_values(want);
  if (!w) {
    snprintf(msg, msgn, "%s: cannot read %s", what, tu_desc(want));
    return -1;
  }
  int rc = tu_compare(what, got, w, ct_numel(want), rtol, atol, msg, msgn);
  free(w);
  return rc;
}

bool tu_error_has(const char *needle, ...) {
  const char *err = ct_last_error();
  va_list ap;
  va_start(ap, needle);
  bool ok = true;
  for (const char *s = needle; s; s = va_arg(ap, const char *))
    if (!strstr(err, s)) ok = false;
  va_end(ap);
  return ok;
}
