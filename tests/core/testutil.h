/* testutil.h: small helpers shared by the C tests: a seeded RNG independent of chalk's own, random
 * shapes and tensors, element-wise comparison with a readable failure message.
 * Invariant: nothing here calls chalk's RNG (ct_manual_seed), so tests of dropout and rand see a
 * stream no helper has touched; every helper returning ct_tensor * returns a new reference. */
#ifndef CHALK_TESTUTIL_H
#define CHALK_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chalk.h"

/* splitmix64: deterministic per seed, so a failing case can be replayed. */
typedef struct {
  uint64_t s;
} tu_rng;

void tu_seed(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r, double lo, double hi); /* [lo, hi) */
double tu_normal(tu_rng *r);
int64_t tu_int(tu_rng *r, int64_t lo, int64_t hi); /* [lo, hi] inclusive */

/* A random shape of ndim dims, each size in [lo, hi]. Returns ndim. */
int tu_rand_shape(tu_rng *r, int ndim, int64_t lo, int64_t hi, int64_t *shape);

/* A contiguous tensor of dtype dt with values uniform in [lo, hi). */
ct_tensor *tu_rand_tensor(tu_rng *r, const int64_t *shape, int ndim, ct_dtype dt, double lo, double hi);
/* Uniform values in [lo, hi) whose magnitude is at least away (kept off kinks such as 0). */
ct_tensor *tu_rand_tensor_away(tu_rng *r, const int64_t *shape, int ndim, ct_dtype dt, double lo, double hi,
                               double away);
/* 1-based random integer indices in [1, n], as i64. */
ct_tensor *tu_rand_index(tu_rng *r, const int64_t *shape, int ndim, int64_t n);

/* Shape literal helper: TU_SHAPE(2,3) -> (int64_t[]){2,3}, 2 */
#define TU_SHAPE(...) (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* A tensor's shape and ndim as the last two arguments of a shape-taking function. */
#define TU_DIMS(t) (t)->shape, (t)->ndim

/* Compares t (any dtype, any layout) with expected values (row-major). Returns 0 when every element
 * satisfies |got - want| <= atol + rtol*|want| (NaN matches NaN, infinities match exactly), else
 * -1 with a message naming what, the element's multi-index and both values. */
int tu_compare(const char *what, const ct_tensor *t, const double *want, int64_t n, double rtol, double atol,
               char *msg, size_t msgn);
/* Same, between two tensors of equal shape. */
int tu_compare_tensors(const char *what, const ct_tensor *got, const ct_tensor *want, double rtol, double atol,
                       char *msg, size_t msgn);

/* Reads all elements as doubles into a malloc'd array (NULL on error); the caller frees it. */
double *tu_values(const ct_tensor *t);
/* "f64[2,3] on cpu" into a static rotating buffer (for assertion messages). */
const char *tu_desc(const ct_tensor *t);
/* Whether the last error message contains every one of the NULL-terminated needles. */
bool tu_error_has(const char *needle, ...);

#endif
