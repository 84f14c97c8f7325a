/* test_pool22.c: max_pool2d's 2x2 stride-2 fast path (vectorised selects, rows with a NaN
 * redone by the general scan) against a reference scan of the documented rule: each window's
 * first maximum, a NaN counting as maximal (the first NaN wins); the gradient goes to that
 * position. Covers ties (small integer values), NaN rows, odd heights and widths (uncovered
 * elements get zero gradient), f32 and f64, and a non-contiguous input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chalk.h"
#include "testutil.h"

/* Position (row-major in x) of the first maximum of window (p, i, j), NaN maximal. */
static int64_t ref_best(const double *x, int64_t p, int64_t i, int64_t j, int64_t H, int64_t W) {
  int64_t best = -1;
  for (int64_t a = 0; a < 2; a++)
    for (int64_t b = 0; b < 2; b++) {
      int64_t e = p * H * W + (2 * i + a) * W + 2 * j + b;
      if (best < 0) best = e;
      else if (!isnan(x[best]) && (x[e] > x[best] || isnan(x[e]))) best = e;
    }
  return best;
}

static void check(ct_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int nans, bool transposed, uint64_t seed) {
  tu_rng r;
  tu_seed(&r, seed);
  int64_t n = N * C * H * W, OH = H / 2, OW = W / 2, no = N * C * OH * OW;
  double *xv = malloc(sizeof(double) * (size_t)n), *g = malloc(sizeof(double) * (size_t)no);
  for (int64_t e = 0; e < n; e++) xv[e] = (double)tu_int(&r, -3, 3); /* many ties */
  for (int k = 0; k < nans; k++) xv[tu_int(&r, 0, n - 1)] = NAN;
  for (int64_t o = 0; o < no; o++) g[o] = tu_uniform(&r, -1, 1);
  ct_tensor *x;
  if (transposed) { /* the same values through a view with H and W swapped twice */
    ct_tensor *base = ct_from_doubles(xv, (int64_t[]){N, C, W, H}, 4, dt, ct_cpu());
    double *tv = malloc(sizeof(double) * (size_t)n);
    for (int64_t p = 0; p < N * C; p++)
      for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) tv[p * H * W + j * H + i] = xv[p * H * W + i * W + j];
    ct_release(base);
    base = ct_from_doubles(tv, (int64_t[]){N, C, W, H}, 4, dt, ct_cpu());
    x = ct_transpose(base, 2, 3);
    ct_release(base);
    free(tv);
  } else {
    x = ct_from_doubles(xv, (int64_t[]){N, C, H, W}, 4, dt, ct_cpu());
  }
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_max_pool2d(x, 2, 2);
  cr_assert(y, "%s", ct_last_error());
  double *want = malloc(sizeof(double) * (size_t)no), *dx = calloc((size_t)n, sizeof(double));
  for (int64_t p = 0; p < N * C; p++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++) {
        int64_t b = ref_best(xv, p, i, j, H, W), o = (p * OH + i) * OW + j;
        want[o] = xv[b];
        dx[b] += dt == CT_F32 ? (double)(float)g[o] : g[o];
      }
  char msg[512], what[96];
  snprintf(what, sizeof what, "pool %s [%lld,%lld,%lld,%lld] nans=%d%s", ct_dtype_name(dt), (long long)N, (long long)C,
           (long long)H, (long long)W, nans, transposed ? " transposed" : "");
  cr_assert(tu_compare(what, y, want, no, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_tensor *gt = ct_from_doubles(g, y->shape, 4, dt, ct_cpu()), *gx = NULL;
  cr_assert(ct_grad(y, gt, &x, 1, &gx, false, false) == 0, "%s", ct_last_error());
  cr_assert(tu_compare(what, gx, dx, n, 0, 0, msg, sizeof msg) == 0, "gradient: %s", msg);
  free(xv), free(g), free(want), free(dx);
  ct_release(gx), ct_release(gt), ct_release(y), ct_release(x);
}

Test(pool22, ties_pick_the_first_maximum) {
  check(CT_F32, 2, 3, 8, 10, 0, false, 1);
  check(CT_F64, 1, 2, 6, 6, 0, false, 2);
}

Test(pool22, rows_with_nans_follow_the_nan_rule) {
  check(CT_F32, 2, 2, 8, 8, 5, false, 3);
  check(CT_F64, 1, 3, 10, 6, 9, false, 4);
}

Test(pool22, odd_sizes_leave_uncovered_elements_without_gradient) {
  check(CT_F32, 1, 2, 7, 9, 0, false, 5);
  check(CT_F64, 2, 1, 5, 4, 2, false, 6);
}

Test(pool22, a_strided_input_is_pooled_the_same) {
  check(CT_F32, 1, 2, 6, 8, 1, true, 7);
}

Test(pool22, long_rows_cross_the_vector_loop_and_its_tail) {
  check(CT_F32, 1, 1, 4, 2 * 37, 0, false, 8);
  check(CT_F32, 1, 1, 4, 2 * 37, 3, false, 9);
}
