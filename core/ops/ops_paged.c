/* ops_paged.c: paged_attention, one decode query per sequence attending over keys and values that
 * live in fixed-size blocks of a shared pool, found through a per-sequence block table (lesson 13).
 *
 *   q            [B, H, D]            the new token's query of each sequence
 *   k_cache      [NB, S, H, D]        the pool: NB physical blocks of S token slots
 *   v_cache      [NB, S, H, D]
 *   block_table  [B, M] i64           logical block j of sequence b is physical block table[b, j]
 *                                     (1-based, as every index in chalk; unused entries ignored)
 *   lengths      [B] i64              tokens of sequence b: keys 1 .. lengths[b]
 *   out          [B, H, D]            softmax(q k^T / sqrt(D)) v over those keys, per head
 *
 * Token t (1-based) of sequence b sits in physical block table[b, (t-1)/S + 1], slot (t-1)%S + 1.
 * A serving engine runs it for decode; prefill uses dense attention. No gradient: serving never
 * differentiates through the cache, so backward through this op is an error naming it.
 * The CUDA forward is in kernels/paged.cu.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/helpers.h"
#include "ops/optable.h"
#include "ops/paged.h"

static int paged_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  const ct_tensor *q = in[0], *k = in[1], *v = in[2], *bt = in[3], *len = in[4];
  char s0[96], s1[96], s2[96], s3[96], s4[96];
  ct_shape_str(CT_SHAPE(q), s0, sizeof s0), ct_shape_str(CT_SHAPE(k), s1, sizeof s1);
  ct_shape_str(CT_SHAPE(v), s2, sizeof s2), ct_shape_str(CT_SHAPE(bt), s3, sizeof s3);
  ct_shape_str(CT_SHAPE(len), s4, sizeof s4);
  if (q->ndim != 3 || k->ndim != 4 || v->ndim != 4 || bt->ndim != 2 || len->ndim != 1)
    return ct_errorf("expects q [B,H,D], k_cache and v_cache [blocks,block_size,H,D], block_table [B,M], "
                     "lengths [B]; got q %s, k_cache %s, v_cache %s, block_table %s, lengths %s",
                     s0, s1, s2, s3, s4);
  for (int i = 0; i < 4; i++)
    if (k->shape[i] != v->shape[i]) return ct_errorf("k_cache %s and v_cache %s must have one shape", s1, s2);
  if (k->shape[2] != q->shape[1] || k->shape[3] != q->shape[2])
    return ct_errorf("q %s and k_cache %s must agree on heads and head dim", s0, s1);
  if (bt->shape[0] != q->shape[0] || len->shape[0] != q->shape[0])
    return ct_errorf("q %s, block_table %s and lengths %s must agree on the batch", s0, s3, s4);
  if (bt->dtype != CT_I64 || len->dtype != CT_I64)
    return ct_errorf("block_table and lengths must be i64, got %s and %s", ct_dtype_name(bt->dtype),
                     ct_dtype_name(len->dtype));
  if (q->dtype != k->dtype || q->dtype != v->dtype || (q->dtype != CT_F32 && q->dtype != CT_F64))
    return ct_errorf("q, k_cache, v_cache must share one dtype, f32 or f64; got %s, %s, %s",
                     ct_dtype_name(q->dtype), ct_dtype_name(k->dtype), ct_dtype_name(v->dtype));
  m->ndim = 3;
  memcpy(m->shape, q->shape, sizeof m->shape);
  m->dtype = q->dtype;
  return 0;
}

/* Checks every length and table entry a sequence uses; the error names the sequence. */
int ct_paged_check_tables(const int64_t *bt, const int64_t *len, int64_t B, int64_t M, int64_t NB, int64_t S) {
  for (int64_t b = 0; b < B; b++) {
    if (len[b] < 1 || len[b] > M * S)
      return ct_errorf("paged_attention: sequence %lld has length %lld (1 .. %lld for %lld blocks of %lld)",
                       (long long)b + 1, (long long)len[b], (long long)(M * S), (long long)M, (long long)S);
    for (int64_t j = 0; j < (len[b] + S - 1) / S; j++)
      if (bt[b * M + j] < 1 || bt[b * M + j] > NB)
        return ct_errorf("paged_attention: sequence %lld, logical block %lld maps to %lld (pool has 1 .. %lld)",
                         (long long)b + 1, (long long)j + 1, (long long)bt[b * M + j], (long long)NB);
  }
  return 0;
}

#define PAGED_CPU(T, NAME)                                                                                   \
  static void NAME(const T *q, const T *k, const T *v, const int64_t *bt, const int64_t *len, T *o, int64_t B, \
                   int64_t H, int64_t D, int64_t M, int64_t S, double *w) {                                  \
    double scale = 1.0 / sqrt((double)D);                                                                    \
    for (int64_t b = 0; b < B; b++)                                                                          \
      for (int64_t h = 0; h < H; h++) {                                                                      \
        const T *qv = q + (b * H + h) * D;                                                                   \
        double mx = -INFINITY, z = 0;                                                                        \
        for (int64_t t = 0; t < len[b]; t++) {                                                               \
          const T *kv = k + (((bt[b * M + t / S] - 1) * S + t % S) * H + h) * D;                             \
          double s = 0;                                                                                      \
          for (int64_t d = 0; d < D; d++) s += (double)qv[d] * (double)kv[d];                                \
          w[t] = s * scale;                                                                                  \
          if (w[t] > mx) mx = w[t];                                                                          \
        }                                                                                                    \
        for (int64_t t = 0; t < len[b]; t++) z += (w[t] = exp(w[t] - mx));                                   \
        T *ov = o + (b * H + h) * D;                                                                         \
        for (int64_t d = 0; d < D; d++) ov[d] = 0;                                                           \
        for (int64_t t = 0; t < len[b]; t++) {                                                               \
          const T *vv = v + (((bt[b * M + t / S] - 1) * S + t % S) * H + h) * D;                             \
          T p = (T)(w[t] / z);                                                                               \
          for (int64_t d = 0; d < D; d++) ov[d] += p * vv[d];                                                \
        }                                                                                                    \
      }                                                                                                      \
  }
PAGED_CPU(float, paged_f32)
PAGED_CPU(double, paged_f64)

static int paged_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  ct_tensor *tmp[5] = {0};
  const void *p[5];
  int rc = 0;
  for (int i = 0; i < 5; i++)
    if (!(p[i] = ct_cpu_contig_data(in[i], &tmp[i]))) rc = -1;
  int64_t B = in[0]->shape[0], H = in[0]->shape[1], D = in[0]->shape[2];
  int64_t NB = in[1]->shape[0], S = in[1]->shape[1], M = in[3]->shape[1];
  if (!rc) rc = ct_paged_check_tables(p[3], p[4], B, M, NB, S);
  double *w = rc ? NULL : malloc((size_t)(M * S > 0 ? M * S : 1) * sizeof *w);
  if (!rc && !w) rc = ct_errorf("paged_attention: out of memory for %lld scores", (long long)(M * S));
  if (!rc && out->dtype == CT_F32)
    paged_f32(p[0], p[1], p[2], p[3], p[4], ct_data_ptr(out), B, H, D, M, S, w);
  else if (!rc)
    paged_f64(p[0], p[1], p[2], p[3], p[4], ct_data_ptr(out), B, H, D, M, S, w);
  free(w);
  for (int i = 0; i < 5; i++) ct_release(tmp[i]);
  return rc;
}

/* Cost from the lengths: per sequence and head, L dot products and L weighted adds of D (4 L D
   FLOPs) plus the softmax (~5 L); bytes: the L keys and values read, q, out, the table. On the CPU
   the lengths are read to count; elsewhere the worst case (every table entry full) is charged. */
static void paged_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops,
                       double *bytes) {
  (void)nin, (void)a;
  int64_t B = in[0]->shape[0], H = in[0]->shape[1], D = in[0]->shape[2];
  double isz = (double)ct_dtype_size(out->dtype), tokens = 0;
  const ct_tensor *len = in[4];
  if (len->storage->device.type == CT_CPU && ct_is_contiguous(len)) {
    const int64_t *l = ct_data_ptr(len);
    for (int64_t b = 0; b < B; b++) tokens += (double)l[b];
  } else {
    tokens = (double)(B * in[3]->shape[1] * in[1]->shape[1]);
  }
  *flops = tokens * (double)H * (4.0 * (double)D + 5.0);
  *bytes = tokens * 2.0 * (double)(H * D) * isz + 2.0 * (double)(B * H * D) * isz +
           (double)(ct_numel(in[3]) + B) * 8.0;
}

/* Not differentiable (backward NULL): a backward through it fails naming paged_attention. */
const ct_opdef ct_op_paged_attention = {"paged_attention", 5, 0, paged_shape, paged_cpu, NULL,
                                        paged_cost, "no gradient: serving only (decode through a block table)",
                                        NULL};

ct_tensor *ct_paged_attention(ct_tensor *q, ct_tensor *k_cache, ct_tensor *v_cache, ct_tensor *block_table,
                              ct_tensor *lengths) {
  ct_tensor *in[5] = {q, k_cache, v_cache, block_table, lengths};
  for (int i = 0; i < 5; i++)
    if (!in[i]) return ct_errorf("paged_attention: input %d is missing", i + 1), NULL;
  ct_attrs a = {0};
  return ct_op_run(CT_OP_paged_attention, in, 5, &a);
}
