/* test_quant.c: quantized weights (core/ops/ops_quant.c, core/cpu/quant.c): the round-trip law
 * |w - code*d| <= d/2 checked on every element of normal, heavy-tailed, outlier and awkward-size
 * weights (rows not a multiple of the 32-wide block, 1-D) for every format; codes and steps of hand
 * examples; bytes per format and their allocator accounting; qmatmul against dequantize-then-matmul
 * (f32 and f64, batch dims, the small-batch and the tiled path, x @ W) and its gradient; its cost;
 * and the errors. Every helper releases what it makes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/events.h"
#include "testutil.h"

#define OK(t) cr_assert((t) != NULL, "unexpected error: %s", ct_last_error())
static const ct_device CPU = {CT_CPU, 0};
enum { NORMAL, HEAVY, OUTLIERS };

/* q's bytes (the public API reads them as i8 values). The caller frees. */
static uint8_t *bytes_of(const ct_qtensor *q) {
  double *v = tu_values(q->data);
  uint8_t *b = malloc((size_t)q->data->shape[0]);
  for (int64_t i = 0; i < q->data->shape[0]; i++) b[i] = (uint8_t)(int8_t)v[i];
  free(v);
  return b;
}

static ct_tensor *weights(uint64_t seed, int64_t rows, int64_t cols, int ndim, int kind) {
  tu_rng r;
  tu_seed(&r, seed);
  int64_t n = rows * cols, shape[2] = {rows, cols};
  double *v = malloc(sizeof *v * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    double z = tu_normal(&r);
    if (kind == HEAVY) z = z / fmax(fabs(tu_normal(&r)), 0.05); /* Cauchy-like tails */
    if (kind == OUTLIERS && tu_uniform(&r, 0, 1) < 0.01) z *= 100;
    v[i] = 0.05 * z;
  }
  ct_tensor *w = ct_from_doubles(v, ndim == 2 ? shape : shape + 1, ndim, CT_F32, CPU);
  free(v);
  OK(w);
  return w;
}

/* Every element against half the step of its group; returns the largest error / (d/2). */
static double check_law(ct_tensor *w, ct_qformat f) {
  ct_qtensor *q = ct_quantize(w, f);
  OK(q);
  ct_tensor *d = ct_dequantize(q), *s = ct_qscales(q);
  OK(d);
  OK(s);
  double *wv = tu_values(w), *dv = tu_values(d), *sv = tu_values(s), worst = 0;
  int64_t rows = q->rows, cols = q->cols, groups = s->shape[1];
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      int64_t g = f == CT_QINT8 ? 0 : f == CT_QINT8_CHANNEL ? r : r * groups + c / 32;
      double step = sv[g], err = fabs(wv[r * cols + c] - dv[r * cols + c]);
      double bound = step / 2 * (1 + 1e-6) + 1e-7 * fabs(wv[r * cols + c]); /* f32: one rounding of code*d */
      cr_assert(err <= bound, "%s: element (%lld, %lld) = %.9g read back as %.9g: error %.3g over d/2 = %.3g",
                ct_qformat_name(f), (long long)r + 1, (long long)c + 1, wv[r * cols + c], dv[r * cols + c], err,
                step / 2);
      if (step > 0) worst = fmax(worst, err / (step / 2));
    }
  free(wv), free(dv), free(sv);
  ct_release(d), ct_release(s), ct_qtensor_free(q);
  return worst;
}

Test(quant, round_trip_law_on_every_element) {
  static const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 33}, {2, 100}, {17, 64}, {4, 1000}};
  for (int f = 0; f < CT_QNFORMATS; f++)
    for (int kind = NORMAL; kind <= OUTLIERS; kind++)
      for (int s = 0; s < 6; s++) {
        ct_tensor *w = weights((uint64_t)(f * 100 + kind * 10 + s), shapes[s][0], shapes[s][1], 2, kind);
        double worst = check_law(w, (ct_qformat)f);
        /* the bound is tight: on the larger tensors some element comes close to it */
        if (shapes[s][0] * shapes[s][1] >= 200)
          cr_assert(worst > 0.5, "%s: largest error only %.2f of d/2: the bound is not exercised",
                    ct_qformat_name((ct_qformat)f), worst);
        ct_release(w);
      }
  ct_tensor *w1 = weights(7, 1, 45, 1, NORMAL); /* 1-D: one row, a partial second block */
  for (int f = 0; f < CT_QNFORMATS; f++) check_law(w1, (ct_qformat)f);
  ct_release(w1);
}

Test(quant, codes_and_steps_of_hand_examples) {
  /* int8: d = 4/127; codes round(127 w / 4): 31.75 -> 32, -63.5 -> -64 (ties to even), 15.875 -> 16 */
  float w8[4] = {1, -2, 0.5f, 4};
  int64_t s4[1] = {4};
  ct_tensor *w = ct_from_data(w8, s4, 1, CT_F32, CPU);
  ct_qtensor *q = ct_quantize(w, CT_QINT8);
  OK(q);
  uint8_t *ub = bytes_of(q);
  const int8_t *b = (const int8_t *)ub;
  float d;
  memcpy(&d, b, 4);
  cr_assert_float_eq(d, 4.0f / 127, 1e-9);
  cr_assert(b[4] == 32 && b[5] == -64 && b[6] == 16 && b[7] == 127, "codes %d %d %d %d", b[4], b[5], b[6], b[7]);
  free(ub);
  ct_qtensor_free(q), ct_release(w);
  /* q4: a block [7, -7, 3.5, 0, ...]: d = 1 (exact in f16), codes 7, -7, 4 (ties to even), 0, stored +8 */
  float wq[40] = {7, -7, 3.5f};
  wq[16] = -1, wq[33] = 2;
  int64_t s40[2] = {1, 40};
  w = ct_from_data(wq, s40, 2, CT_F32, CPU);
  q = ct_quantize(w, CT_QQ4);
  OK(q);
  uint8_t *u = bytes_of(q);
  cr_assert_eq(q->data->shape[0], 36, "two blocks of 18 bytes");
  cr_assert(u[0] == 0x00 && u[1] == 0x3c, "the f16 step 1.0 is 0x3c00, got %02x%02x", u[1], u[0]);
  cr_assert_eq(u[2], 0x7f, "element 1 (code 7 -> 15) low nibble, element 17 (code -1 -> 7) high: %02x", u[2]);
  cr_assert_eq(u[3], 0x81, "element 2: code -7 -> 1: %02x", u[3]);
  cr_assert_eq(u[4], 0x8c, "element 3: code 4 -> 12: %02x", u[4]);
  uint16_t h2;
  memcpy(&h2, u + 18, 2);
  cr_assert_float_eq(ct_f16_to_f32(h2), 2.0f / 7, 1e-3, "second block (only 8 weights): d = 2/7, rounded up");
  cr_assert_geq(ct_f16_to_f32(h2), 2.0f / 7, "the f16 step is rounded up, never down");
  free(u);
  ct_qtensor_free(q), ct_release(w);
}

Test(quant, bytes_per_format_and_allocator) {
  static const struct {
    ct_qformat f;
    int64_t bytes;
    double bits;
  } want[] = {{CT_QINT8, 4 + 8 * 64, 8 + 32.0 / 512},
              {CT_QINT8_CHANNEL, 4 * 8 + 8 * 64, 8.5},
              {CT_QQ4, 8 * 2 * 18, 4.5},
              {CT_QQ8, 8 * 2 * 34, 8.5}};
  ct_tensor *w = weights(1, 8, 64, 2, NORMAL);
  for (int i = 0; i < 4; i++) {
    ct_mem_stats m0, m1;
    ct_mem_get(&m0);
    ct_qtensor *q = ct_quantize(w, want[i].f);
    OK(q);
    ct_mem_get(&m1);
    cr_assert_eq(q->data->shape[0], want[i].bytes, "%s: %lld bytes", ct_qformat_name(want[i].f),
                 (long long)q->data->shape[0]);
    cr_assert_eq(ct_qformat_bytes(want[i].f, 8, 64), want[i].bytes);
    cr_assert_float_eq(ct_qtensor_bits(q), want[i].bits, 1e-12, "%s: %g bits", ct_qformat_name(want[i].f),
                       ct_qtensor_bits(q));
    int64_t grown = m1.live[CT_CPU][CT_CAT_PARAMETER] - m0.live[CT_CPU][CT_CAT_PARAMETER];
    cr_assert(grown >= want[i].bytes && grown < want[i].bytes + 64, "%s: the allocator counts %lld parameter bytes",
              ct_qformat_name(want[i].f), (long long)grown);
    ct_qtensor_free(q);
  }
  /* a partial last block costs a whole one: 33 columns are two blocks */
  cr_assert_eq(ct_qformat_bytes(CT_QQ4, 3, 33), 3 * 2 * 18);
  cr_assert_eq(ct_qformat_bytes(CT_QQ8, 1, 1), 34);
  ct_release(w);
}

/* y = x @ dequantize(q)^T by definition in double, against qmatmul (and x @ W for transposed). */
static void check_matmul(uint64_t seed, ct_qformat f, int64_t M, int64_t N, int64_t K, ct_dtype dt, bool t) {
  tu_rng r;
  tu_seed(&r, seed);
  ct_tensor *w = weights(seed, N, K, 2, NORMAL);
  ct_qtensor *q = ct_quantize(w, f);
  OK(q);
  ct_tensor *dq = ct_dequantize(q);
  int64_t sx[3] = {2, M, t ? N : K}; /* a batch dim too */
  ct_tensor *x = tu_rand_tensor(&r, sx, 3, dt, -2, 2), *y = ct_qmatmul(x, q, t);
  OK(y);
  int64_t kin = t ? N : K, kout = t ? K : N;
  cr_assert(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == M && y->shape[2] == kout, "shape of %s", tu_desc(y));
  double *xv = tu_values(x), *wv = tu_values(dq), *want = malloc(sizeof *want * (size_t)(2 * M * kout));
  for (int64_t m = 0; m < 2 * M; m++)
    for (int64_t o = 0; o < kout; o++) {
      double s = 0;
      for (int64_t i = 0; i < kin; i++) s += xv[m * kin + i] * (t ? wv[i * K + o] : wv[o * K + i]);
      want[m * kout + o] = s;
    }
  char msg[512];
  double tol = dt == CT_F64 ? 1e-12 : 1e-5;
  cr_assert(!tu_compare("qmatmul", y, want, 2 * M * kout, tol, tol, msg, sizeof msg), "%s %s M%lld N%lld K%lld%s: %s",
            ct_qformat_name(f), ct_dtype_name(dt), (long long)M, (long long)N, (long long)K, t ? " x @ W" : "", msg);
  free(xv), free(wv), free(want);
  ct_release(x), ct_release(y), ct_release(dq), ct_release(w), ct_qtensor_free(q);
}

Test(quant, qmatmul_against_dequantize_then_matmul) {
  static const int64_t mnk[][3] = {{1, 1, 1}, {1, 7, 33}, {3, 33, 100}, {7, 5, 1000}, {33, 40, 70}, {9, 300, 45}};
  for (int f = 0; f < CT_QNFORMATS; f++)
    for (int i = 0; i < 6; i++)
      for (int t = 0; t < 2; t++) {
        check_matmul((uint64_t)(i * 7 + f + 1), (ct_qformat)f, mnk[i][0], mnk[i][1], mnk[i][2], CT_F32, t);
        check_matmul((uint64_t)(i * 7 + f + 2), (ct_qformat)f, mnk[i][0], mnk[i][1], mnk[i][2], CT_F64, t);
      }
}

Test(quant, gradient_reaches_x_through_the_same_weight) {
  tu_rng r;
  tu_seed(&r, 3);
  ct_tensor *w = weights(3, 6, 40, 2, NORMAL);
  ct_qtensor *q = ct_quantize(w, CT_QQ4);
  OK(q);
  int64_t sx[2] = {5, 40};
  ct_tensor *x = tu_rand_tensor(&r, sx, 2, CT_F64, -1, 1);
  cr_assert_eq(ct_requires_grad_(x, true), 0);
  ct_tensor *y = ct_qmatmul(x, q, false), *l = ct_sum(y, NULL, 0, false);
  OK(l);
  cr_assert_eq(ct_backward(l, NULL, false, false), 0, "%s", ct_last_error());
  /* d sum(x W^T) / dx = ones @ W: each row of the gradient is the column sums of W */
  ct_tensor *dq = ct_dequantize(q);
  double *wv = tu_values(dq), want[5 * 40];
  for (int64_t k = 0; k < 40; k++) {
    double s = 0;
    for (int64_t n = 0; n < 6; n++) s += wv[n * 40 + k];
    for (int64_t m = 0; m < 5; m++) want[m * 40 + k] = s;
  }
  char msg[256];
  cr_assert(!tu_compare("dx", x->grad, want, 200, 1e-6, 1e-6, msg, sizeof msg), "%s", msg);
  free(wv);
  ct_release(dq), ct_release(l), ct_release(y), ct_release(x), ct_release(w), ct_qtensor_free(q);
}

Test(quant, cost_is_flops_and_the_bytes_read) {
  ct_tensor *w = weights(5, 10, 64, 2, NORMAL);
  ct_qtensor *q = ct_quantize(w, CT_QQ4);
  int64_t sx[2] = {3, 64};
  ct_tensor *x = ct_zeros(sx, 2, CT_F32, CPU);
  ct_events_start();
  ct_tensor *y = ct_qmatmul(x, q, false);
  OK(y);
  double flops = -1, bytes = -1;
  for (size_t i = 0; i < ct_events_count(); i++)
    if (ct_events_get(i)->name && !strcmp(ct_events_get(i)->name, "qmatmul"))
      flops = ct_events_get(i)->flops, bytes = ct_events_get(i)->bytes;
  ct_events_stop();
  cr_assert_float_eq(flops, 2.0 * 3 * 10 * 64, 1e-9, "flops %g", flops);
  cr_assert_float_eq(bytes, 4.0 * (3 * 64 + 3 * 10) + 10 * 2 * 18, 1e-9, "bytes %g: x, y and the q4 bytes", bytes);
  ct_release(y), ct_release(x), ct_release(w), ct_qtensor_free(q);
}

Test(quant, errors_name_the_problem) {
  ct_qformat f;
  cr_assert(ct_qformat_from_name("q3", &f) && tu_error_has("unknown format 'q3'", "q4", "int8_channel", NULL));
  int64_t s3[3] = {2, 3, 4}, s2[2] = {2, 40}, s0[1] = {0};
  ct_tensor *w3 = ct_zeros(s3, 3, CT_F32, CPU), *wi = ct_zeros(s2, 2, CT_I32, CPU), *we = ct_zeros(s0, 1, CT_F32, CPU);
  cr_assert(!ct_quantize(w3, CT_QQ4) && tu_error_has("quantize(q4)", "1-D or 2-D", "f32[2,3,4]", NULL), "%s",
            ct_last_error());
  cr_assert(!ct_quantize(wi, CT_QINT8) && tu_error_has("f32 or f64", "i32", NULL), "%s", ct_last_error());
  cr_assert(!ct_quantize(we, CT_QQ8) && tu_error_has("not empty", NULL), "%s", ct_last_error());
  float big[2] = {1e6f, 1}, bad[2] = {1, NAN};
  int64_t s1[1] = {2};
  ct_tensor *wb = ct_from_data(big, s1, 1, CT_F32, CPU), *wn = ct_from_data(bad, s1, 1, CT_F32, CPU);
  cr_assert(!ct_quantize(wb, CT_QQ4) && tu_error_has("f16", "65504", NULL), "%s", ct_last_error());
  ct_qtensor *qi = ct_quantize(wb, CT_QINT8); /* an f32 step has the range */
  OK(qi);
  cr_assert(!ct_quantize(wn, CT_QQ8) && tu_error_has("element 2", "nan", NULL), "%s", ct_last_error());
  ct_tensor *w = weights(2, 4, 40, 2, NORMAL);
  ct_qtensor *q = ct_quantize(w, CT_QQ8);
  int64_t sx[2] = {3, 39};
  ct_tensor *x = ct_zeros(sx, 2, CT_F32, CPU), *xi = ct_zeros(s2, 2, CT_I32, CPU);
  cr_assert(!ct_qmatmul(x, q, false) &&
                tu_error_has("qmatmul", "[3,39]", "[4,40] as x @ W^T", "last dim must be 40", NULL),
            "%s", ct_last_error());
  cr_assert(!ct_qmatmul(xi, q, false) && tu_error_has("qmatmul", "f32 or f64", "i32", NULL), "%s", ct_last_error());
  ct_release(w3), ct_release(wi), ct_release(we), ct_release(wb), ct_release(wn), ct_release(w), ct_release(x);
  ct_release(xi), ct_qtensor_free(q), ct_qtensor_free(qi);
}
