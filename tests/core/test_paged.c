/* test_paged.c: paged_attention (core/ops/ops_paged.c): against a reference computed by definition
 * through the block table (f64 and f32, block sizes 1, 3 and 5, lengths ending mid-block, a
 * transposed query), its cost from the lengths (4 L D + 5 L FLOPs per head), the errors for a bad
 * table or length, and backward through it refused by name. Every helper releases what it makes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/events.h"
#include "testutil.h"

#define OK(t) cr_assert((t) != NULL, "unexpected error: %s", ct_last_error())
static const ct_device CPU = {CT_CPU, 0};

static ct_tensor *i64(const int64_t *v, const int64_t *shape, int nd) {
  ct_tensor *t = ct_from_data(v, shape, nd, CT_I64, CPU);
  OK(t);
  return t;
}

/* out[b,h,:] = softmax(q k^T / sqrt(D)) v over the keys of sequence b, read through the table. */
static void check_case(uint64_t seed, int64_t B, int64_t H, int64_t D, int64_t S, int64_t M, ct_dtype dt, bool qt) {
  tu_rng r;
  tu_seed(&r, seed);
  int64_t NB = B * M + 2, sk[4] = {NB, S, H, D}, st[2] = {B, M}, sl[1] = {B};
  int64_t *tab = malloc(sizeof *tab * (size_t)(B * M)), *len = malloc(sizeof *len * (size_t)B);
  for (int64_t i = 0; i < B * M; i++) tab[i] = tu_int(&r, 1, NB);
  for (int64_t b = 0; b < B; b++) len[b] = tu_int(&r, 1, M * S);
  ct_tensor *k = tu_rand_tensor(&r, sk, 4, dt, -2, 2), *v = tu_rand_tensor(&r, sk, 4, dt, -2, 2), *q;
  if (qt) { /* q as the transpose of an [B, D, H] tensor: not contiguous */
    int64_t sq[3] = {B, D, H};
    ct_tensor *base = tu_rand_tensor(&r, sq, 3, dt, -2, 2);
    q = ct_transpose(base, 1, 2);
    ct_release(base);
  } else {
    int64_t sq[3] = {B, H, D};
    q = tu_rand_tensor(&r, sq, 3, dt, -2, 2);
  }
  ct_tensor *bt = i64(tab, st, 2), *ln = i64(len, sl, 1);
  ct_tensor *out = ct_paged_attention(q, k, v, bt, ln);
  OK(out);
  cr_assert_eq(out->ndim, 3);
  double *Q = tu_values(q), *K = tu_values(k), *V = tu_values(v), *O = tu_values(out);
  double *w = malloc(sizeof *w * (size_t)(M * S)), tol = dt == CT_F64 ? 1e-12 : 1e-5;
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      double mx = -INFINITY, z = 0;
      for (int64_t t = 0; t < len[b]; t++) {
        int64_t row = ((tab[b * M + t / S] - 1) * S + t % S) * H + h;
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += Q[(b * H + h) * D + d] * K[row * D + d];
        w[t] = s / sqrt((double)D);
        mx = fmax(mx, w[t]);
      }
      for (int64_t t = 0; t < len[b]; t++) z += (w[t] = exp(w[t] - mx));
      for (int64_t d = 0; d < D; d++) {
        double o = 0;
        for (int64_t t = 0; t < len[b]; t++) o += w[t] / z * V[(((tab[b * M + t / S] - 1) * S + t % S) * H + h) * D + d];
        cr_assert(fabs(O[(b * H + h) * D + d] - o) < tol, "b %lld h %lld d %lld: %g vs %g", (long long)b,
                  (long long)h, (long long)d, O[(b * H + h) * D + d], o);
      }
    }
  free(Q), free(K), free(V), free(O), free(w), free(tab), free(len);
  ct_release(q), ct_release(k), ct_release(v), ct_release(bt), ct_release(ln), ct_release(out);
}

Test(paged, equals_the_definition_through_the_table) {
  check_case(1, 3, 2, 5, 3, 4, CT_F64, false);
  check_case(2, 4, 3, 7, 1, 9, CT_F64, true);
  check_case(3, 2, 1, 16, 5, 2, CT_F32, false);
  check_case(4, 5, 4, 3, 3, 3, CT_F32, true);
}

Test(paged, cost_counts_the_keys_read) {
  int64_t sq[3] = {2, 2, 4}, sk[4] = {4, 2, 2, 4}, st[2] = {2, 2}, sl[1] = {2}, tab[4] = {1, 2, 3, 4}, len[2] = {3, 1};
  ct_tensor *q = ct_zeros(sq, 3, CT_F32, CPU), *k = ct_zeros(sk, 4, CT_F32, CPU);
  ct_tensor *bt = i64(tab, st, 2), *ln = i64(len, sl, 1);
  ct_events_start();
  ct_tensor *out = ct_paged_attention(q, k, k, bt, ln);
  OK(out);
  double flops = -1;
  for (size_t i = 0; i < ct_events_count(); i++)
    if (ct_events_get(i)->name && !strcmp(ct_events_get(i)->name, "paged_attention")) flops = ct_events_get(i)->flops;
  ct_events_stop();
  cr_assert_float_eq(flops, 4.0 * 2 * (4 * 4 + 5), 1e-9, "flops %g: 4 tokens x 2 heads x (4 D + 5)", flops);
  ct_release(q), ct_release(k), ct_release(bt), ct_release(ln), ct_release(out);
}

Test(paged, errors_name_the_sequence_and_no_gradient) {
  int64_t sq[3] = {1, 1, 2}, sk[4] = {2, 2, 1, 2}, st[2] = {1, 1}, sl[1] = {1}, bad[1] = {3}, good[1] = {2},
          two[1] = {2}, three[1] = {3};
  ct_tensor *q = ct_full(sq, 3, 1, CT_F32, CPU), *k = ct_full(sk, 4, 1, CT_F32, CPU);
  ct_tensor *b1 = i64(bad, st, 2), *b2 = i64(good, st, 2), *l2 = i64(two, sl, 1), *l3 = i64(three, sl, 1);
  cr_assert_null(ct_paged_attention(q, k, k, b1, l2));
  cr_assert(strstr(ct_last_error(), "sequence 1, logical block 1 maps to 3"), "%s", ct_last_error());
  cr_assert_null(ct_paged_attention(q, k, k, b2, l3));
  cr_assert(strstr(ct_last_error(), "length 3"), "%s", ct_last_error());
  ct_requires_grad_(q, true);
  ct_tensor *y = ct_paged_attention(q, k, k, b2, l2);
  OK(y);
  ct_tensor *s = ct_sum(y, NULL, 0, false);
  OK(s);
  cr_assert_neq(ct_backward(s, NULL, false, false), 0);
  cr_assert(strstr(ct_last_error(), "paged_attention has no gradient rule"), "%s", ct_last_error());
  ct_release(s), ct_release(y), ct_release(q), ct_release(k), ct_release(b1), ct_release(b2), ct_release(l2),
      ct_release(l3);
}
