/* paged_parity.c: paged_attention's cases of the CUDA parity harness (kernels/paged.cu against
 * core/ops/ops_paged.c): f32 and f64, head dims 1 to 130 (one thread per element, rounded up to a
 * power of two), block sizes 1, 3 and 16, scattered tables, lengths that end mid-block, a transposed
 * (non-contiguous) query; and the GPU's error for a table entry outside the pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static ct_tensor *op_paged(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_paged_attention(x[0], x[1], x[2], x[3], x[4]);
}

/* B sequences of random lengths in [1, M*S], tables drawn without replacement from NB >= B*M blocks. */
static void one(int64_t B, int64_t H, int64_t D, int64_t S, int64_t M, ct_dtype dt, int lay) {
  int64_t NB = B * M + 3;
  int64_t sq[3] = {B, H, D}, sk[4] = {NB, S, H, D}, st[2] = {B, M}, sl[1] = {B};
  int64_t *perm = malloc((size_t)NB * sizeof *perm);
  double *tab = malloc((size_t)(B * M) * sizeof *tab), *len = malloc((size_t)B * sizeof *len);
  for (int64_t i = 0; i < NB; i++) perm[i] = i + 1;
  for (int64_t i = NB - 1; i > 0; i--) {
    int64_t j = irand(0, i), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  for (int64_t i = 0; i < B * M; i++) tab[i] = (double)perm[i];
  for (int64_t b = 0; b < B; b++) len[b] = (double)irand(1, M * S);
  pair in[5] = {mk(sq, 3, dt, -2, 2, lay, false), mk(sk, 4, dt, -2, 2, LAY_CONTIG, false),
                mk(sk, 4, dt, -2, 2, LAY_CONTIG, false), mk_values(tab, st, 2, CT_I64, false),
                mk_values(len, sl, 1, CT_I64, false)};
  char label[160];
  snprintf(label, sizeof label, "%s B%lld H%lld D%lld S%lld M%lld%s", ct_dtype_name(dt), (long long)B, (long long)H,
           (long long)D, (long long)S, (long long)M, lay == LAY_T ? " q transposed" : "");
  run_case("paged_attention", label, op_paged, &(prm){{0}, {0}}, in, 5, dt == CT_F64 ? 1e-24 : 1e-10, 0);
  for (int i = 0; i < 5; i++) pair_free(&in[i]);
  free(perm), free(tab), free(len);
}

void cases_paged(void) {
  static const int64_t dims[] = {1, 5, 32, 64, 130};
  for (int i = 0; i < 5; i++) {
    one(3, 2, dims[i], 3, 4, CT_F32, LAY_CONTIG);
    one(5, 3, dims[i], 16, 2, CT_F64, LAY_CONTIG);
  }
  one(4, 4, 7, 1, 9, CT_F32, LAY_T);
  if (!QUICK) one(32, 4, 64, 16, 8, CT_F32, LAY_CONTIG);
  double bad[1] = {9}, one_len[1] = {2};
  int64_t sq[3] = {1, 1, 4}, sk[4] = {2, 2, 1, 4}, st[2] = {1, 1}, sl[1] = {1};
  pair q = mk(sq, 3, CT_F32, -1, 1, LAY_CONTIG, false), k = mk(sk, 4, CT_F32, -1, 1, LAY_CONTIG, false);
  pair t = mk_values(bad, st, 2, CT_I64, false), l = mk_values(one_len, sl, 1, CT_I64, false);
  ct_tensor *r = ct_paged_attention(q.t[1], k.t[1], k.t[1], t.t[1], l.t[1]);
  record("paged_attention errors", "table entry outside the pool on cuda",
         !r && strstr(ct_last_error(), "maps to 9"), 0, r ? "no error" : ct_last_error());
  ct_release(r);
  pair_free(&q), pair_free(&k), pair_free(&t), pair_free(&l);
}
