/* test_conv_grad.c: conv2d's gradients (the conv2d_grad_input and conv2d_grad_weight rows, image
 * by image with one column buffer) against the definition summed in plain loops:
 *   dx[n,c,h,w]     = sum over o, ki, kj with h = oh*s - p + ki, w = ow*s - p + kj of g[n,o,oh,ow] w[o,c,ki,kj]
 *   dw[o,c,ki,kj]   = sum over n, oh, ow of g[n,o,oh,ow] x[n,c,oh*s-p+ki,ow*s-p+kj]  (0 outside x)
 * for strides, paddings, rectangular kernels, 1x1 kernels, f32 and f64, and a strided gradient.
 * (Finite-difference checks of the same rows, and of their own gradients, are in test_grad_ops.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "chalk.h"
#include "testutil.h"

typedef struct {
  int64_t x[4], w[4];
  int stride, padding;
} conv_case;

static void check(const conv_case *k, ct_dtype dt, bool strided_g, uint64_t seed) {
  tu_rng r;
  tu_seed(&r, seed);
  int64_t N = k->x[0], C = k->x[1], H = k->x[2], W = k->x[3], O = k->w[0], KH = k->w[2], KW = k->w[3];
  int s = k->stride, p = k->padding;
  int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  ct_tensor *x = tu_rand_tensor(&r, k->x, 4, dt, -1, 1), *w = tu_rand_tensor(&r, k->w, 4, dt, -1, 1);
  ct_requires_grad_(x, true), ct_requires_grad_(w, true);
  ct_tensor *y = ct_conv2d(x, w, NULL, s, p);
  cr_assert(y, "%s", ct_last_error());
  ct_tensor *g;
  if (strided_g) { /* the same shape through a transposed view of a [N,O,OW,OH] tensor */
    ct_tensor *gt = tu_rand_tensor(&r, (int64_t[]){N, O, OW, OH}, 4, dt, -1, 1);
    g = ct_transpose(gt, 2, 3);
    ct_release(gt);
  } else {
    g = tu_rand_tensor(&r, (int64_t[]){N, O, OH, OW}, 4, dt, -1, 1);
  }
  ct_tensor *ins[2] = {x, w}, *grads[2] = {NULL, NULL};
  cr_assert(ct_grad(y, g, ins, 2, grads, false, false) == 0, "%s", ct_last_error());
  double *xv = tu_values(x), *wv = tu_values(w), *gv = tu_values(g);
  double *dx = calloc((size_t)(N * C * H * W), sizeof(double)), *dw = calloc((size_t)(O * C * KH * KW), sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double gg = gv[((n * O + o) * OH + oh) * OW + ow];
          for (int64_t c = 0; c < C; c++)
            for (int64_t ki = 0; ki < KH; ki++)
              for (int64_t kj = 0; kj < KW; kj++) {
                int64_t h = oh * s - p + ki, ww = ow * s - p + kj;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                int64_t xi = ((n * C + c) * H + h) * W + ww, wi = ((o * C + c) * KH + ki) * KW + kj;
                dx[xi] += gg * wv[wi];
                dw[wi] += gg * xv[xi];
              }
        }
  double tol = dt == CT_F32 ? 2e-5 : 1e-12;
  char msg[512], what[128];
  snprintf(what, sizeof what, "conv x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] s%d p%d %s%s", (long long)N, (long long)C,
           (long long)H, (long long)W, (long long)O, (long long)C, (long long)KH, (long long)KW, s, p, ct_dtype_name(dt),
           strided_g ? " strided g" : "");
  cr_assert(tu_compare(what, grads[0], dx, N * C * H * W, tol, tol, msg, sizeof msg) == 0, "dx: %s", msg);
  cr_assert(tu_compare(what, grads[1], dw, O * C * KH * KW, tol, tol, msg, sizeof msg) == 0, "dw: %s", msg);
  free(xv), free(wv), free(gv), free(dx), free(dw);
  ct_release(grads[0]), ct_release(grads[1]), ct_release(g), ct_release(y), ct_release(x), ct_release(w);
}

static const conv_case cases[] = {
    {{2, 3, 7, 6}, {4, 3, 3, 3}, 1, 1}, {{3, 2, 9, 8}, {2, 2, 3, 2}, 2, 0}, {{1, 4, 5, 5}, {3, 4, 1, 1}, 1, 0},
    {{2, 1, 6, 7}, {5, 1, 2, 3}, 2, 2}, {{4, 16, 14, 14}, {8, 16, 3, 3}, 1, 1},
};

Test(conv_grad, matches_the_definition_f64) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check(&cases[i], CT_F64, false, 10 + i);
}

Test(conv_grad, matches_the_definition_f32) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check(&cases[i], CT_F32, false, 20 + i);
}

Test(conv_grad, a_strided_upstream_gradient) {
  check(&cases[0], CT_F64, true, 30);
  check(&cases[1], CT_F32, true, 31);
}
