/* test_sort_ops.c: the rows of ops/ops_sort.c: argsort's permutation (stable, NaN placement,
 * strided inputs, every dim) and cumsum's gradient by finite differences in f64, in every layout
 * and twice (its gradient is the reverse cumsum row). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "ops/optable.h"
#include "testutil.h"

static ct_tensor *from(const double *v, const int64_t *shape, int nd) {
  ct_tensor *t = ct_empty(shape, nd, CT_F64, ct_cpu());
  double *p = ct_data_ptr(t);
  for (int64_t i = 0; i < ct_numel(t); i++) p[i] = v[i];
  return t;
}

static void expect_i64(ct_tensor *t, const int64_t *want, int64_t n) {
  cr_assert_not_null(t, "%s", ct_last_error());
  cr_assert_eq(t->dtype, CT_I64);
  ct_tensor *c = ct_contiguous(t);
  const int64_t *p = ct_data_ptr(c);
  for (int64_t i = 0; i < n; i++) cr_expect_eq(p[i], want[i], "element %lld: %lld, want %lld", (long long)i, (long long)p[i], (long long)want[i]);
  ct_release(c);
  ct_release(t);
}

Test(sort_ops, argsort_is_stable_and_one_based_along_either_dim) {
  const double v[] = {3, 1, 3, 2, 0, 0, 5, -1};
  ct_tensor *x = from(v, (int64_t[]){2, 4}, 2);
  expect_i64(ct_argsort(x, 1, false), (int64_t[]){2, 4, 1, 3, 4, 1, 2, 3}, 8);
  expect_i64(ct_argsort(x, 1, true), (int64_t[]){1, 3, 4, 2, 3, 1, 2, 4}, 8);
  expect_i64(ct_argsort(x, 0, false), (int64_t[]){2, 2, 1, 2, 1, 1, 2, 1}, 8);
  ct_tensor *xt = ct_transpose(x, 0, 1); /* strided: [4, 2] */
  expect_i64(ct_argsort(xt, 0, false), (int64_t[]){2, 4, 4, 1, 1, 2, 3, 3}, 8);
  ct_release(xt);
  cr_expect_null(ct_argsort(x, 2, false));
  cr_expect(strstr(ct_last_error(), "argsort: dim 3 is out of range"), "%s", ct_last_error());
  ct_release(x);
}

Test(sort_ops, argsort_puts_nan_last_ascending_and_first_descending) {
  const double v[] = {2, NAN, -1, 7};
  ct_tensor *x = from(v, (int64_t[]){4}, 1);
  expect_i64(ct_argsort(x, 0, false), (int64_t[]){3, 1, 4, 2}, 4);
  expect_i64(ct_argsort(x, 0, true), (int64_t[]){2, 4, 1, 3}, 4);
  ct_release(x);
}

Test(sort_ops, cumsum_values_and_integer_dtype) {
  const double v[] = {1, 2, 3, 4, 5, 6};
  ct_tensor *x = from(v, (int64_t[]){2, 3}, 2);
  ct_tensor *c = ct_cumsum(x, 1, false), *r = ct_cumsum(x, 0, true);
  cr_assert(c && r, "%s", ct_last_error());
  const double *pc = ct_data_ptr(c), *pr = ct_data_ptr(r);
  const double wc[] = {1, 3, 6, 4, 9, 15}, wr[] = {5, 7, 9, 4, 5, 6};
  for (int i = 0; i < 6; i++) {
    cr_expect_eq(pc[i], wc[i], "cumsum element %d", i);
    cr_expect_eq(pr[i], wr[i], "reverse cumsum element %d", i);
  }
  ct_tensor *xi = ct_to_dtype(x, CT_I32);
  expect_i64(ct_cumsum(xi, 1, false), (int64_t[]){1, 3, 6, 4, 9, 15}, 6);
  ct_release(xi), ct_release(c), ct_release(r), ct_release(x);
}

typedef struct {
  int dim;
  bool reverse;
} cumsum_spec;
GC_SPEC_FN(cumsum_call, cumsum_spec, ct_cumsum(in[0], s->dim, s->reverse))

Test(sort_ops, cumsum_gradient_in_every_layout_and_twice) {
  for (int dim = 0; dim < 3; dim++)
    for (int rev = 0; rev < 2; rev++) {
      cumsum_spec s = {dim, rev};
      char op[64];
      snprintf(op, sizeof op, "cumsum dim %d reverse %d", dim + 1, rev);
      gc_case c = {.op = op, .fn = cumsum_call, .ctx = &s, .nin = 1, .seed = 40 + (uint64_t)(dim * 2 + rev), .gradgrad = true};
      GC_IN_SHAPE(&c.in[0], 3, 4, 2);
      GC_ASSERT(&c);
    }
}

/* sort's values are gather(x, argsort(x)): checked through the ops a binding composes. */
static ct_tensor *sort_values(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  ct_tensor *idx = ct_argsort(in[0], 1, true);
  ct_tensor *r = idx ? ct_gather(in[0], 1, idx) : NULL;
  ct_release(idx);
  return r;
}

Test(sort_ops, sorted_values_gradient) {
  gc_case c = {.op = "sort values (gather by argsort)", .fn = sort_values, .nin = 1, .seed = 77, .gradgrad = true};
  GC_IN_SHAPE(&c.in[0], 3, 5);
  GC_ASSERT(&c);
}
