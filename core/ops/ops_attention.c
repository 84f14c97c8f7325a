/* ops_attention.c: scaled dot-product attention, two ways.
 *
 *   naive  the textbook composite of table ops: S = (scale q) k^T, S = where(future, -inf, S) when
 *          causal, P = softmax(S), O = P v. Autograd differentiates it through matmul and softmax;
 *          S and P, each Nq x Nk per batch element, live in memory from the forward until the
 *          backward.
 *   flash  one op, attention_flash, that sweeps tiles of keys for each tile of queries with an
 *          online softmax (running row maximum and sum), so no Nq x Nk matrix exists; its gradient
 *          is a second op, attention_flash_backward, that recomputes the scores tile by tile.
 *
 * Shapes: q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv] -> [..., Nq, dv]. causal: query i sees
 * keys j <= i (counted from the first row and column, as torch's is_causal). scale defaults to
 * 1/sqrt(d).
 *
 * Invariants: the flash ops take inputs with identical batch dims and one dtype (f32 or f64 on
 * the CPU; f32 and bf16 on CUDA too); their cost functions report the bytes the kernels move
 * between main memory and their tile buffers (on the CPU the kernels count them as they go; the
 * count and the formula of flash_bytes agree, which test_attention checks), so a profile shows
 * Theta(N d + N^2) bytes for naive and Theta(N^2 d^2 / M) for flash. The backward op's output
 * packs dq, dk, dv (see attention.h); ct_attention's gradient rule splits it with views.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/attention.h"
#include "cpu/helpers.h"
#include "ops/grad_expr.h"
#include "ops/optable.h"

/* The tile loops are axpys over contiguous rows: GCC's -O2 cost model leaves them scalar (it
   vectorises only loops whose trip counts need no remainder), and vectorised they run 4-5x faster,
   so the kernels are compiled as at -O3. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif
#define T float
#define SUF f32
#define EXP expf
#define LOG logf
#include "cpu/flash_kernel.inc"
#undef T
#undef SUF
#undef EXP
#undef LOG
#define T double
#define SUF f64
#define EXP exp
#define LOG log
#include "cpu/flash_kernel.inc"
#undef T
#undef SUF
#undef EXP
#undef LOG
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* ---- shapes ------------------------------------------------------------------------------- */

typedef struct {
  int64_t batch, nq, nk, d, dv;
} attn_dims;

static void dims_of(ct_tensor *const *in, attn_dims *g) {
  const ct_tensor *q = in[0], *v = in[2];
  g->batch = 1;
  for (int i = 0; i < q->ndim - 2; i++) g->batch *= q->shape[i];
  g->nq = q->shape[q->ndim - 2];
  g->d = q->shape[q->ndim - 1];
  g->nk = v->shape[v->ndim - 2];
  g->dv = v->shape[v->ndim - 1];
}

/* q, k, v agree as attention inputs (identical batch dims: the flash ops do not broadcast). */
static int check_qkv(ct_tensor *const *in, bool same_batch) {
  const ct_tensor *q = in[0], *k = in[1], *v = in[2];
  char s0[160], s1[160], s2[160];
  ct_shape_str(CT_SHAPE(q), s0, sizeof s0), ct_shape_str(CT_SHAPE(k), s1, sizeof s1);
  ct_shape_str(CT_SHAPE(v), s2, sizeof s2);
  if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
    return ct_errorf("q, k, v must be [..., N, d] (at least 2-D), got q %s, k %s, v %s", s0, s1, s2);
  if (q->shape[q->ndim - 1] != k->shape[k->ndim - 1])
    return ct_errorf("q and k must share the last dim (d), got q %s, k %s", s0, s1);
  if (k->shape[k->ndim - 2] != v->shape[v->ndim - 2])
    return ct_errorf("k and v must have as many rows (keys), got k %s, v %s", s1, s2);
  if (k->shape[k->ndim - 2] == 0) return ct_errorf("no keys: k %s has 0 rows (softmax over nothing)", s1);
  if (q->shape[q->ndim - 1] == 0) return ct_errorf("head dim d is 0 (q %s)", s0);
  if (!same_batch) return 0;
  bool ok = q->ndim == k->ndim && q->ndim == v->ndim;
  for (int i = 0; ok && i < q->ndim - 2; i++) ok = q->shape[i] == k->shape[i] && q->shape[i] == v->shape[i];
  if (!ok)
    return ct_errorf("flash attention needs identical batch dims (expand and make contiguous first), got q %s, k %s, v %s",
                     s0, s1, s2);
  if (q->dtype != k->dtype || q->dtype != v->dtype)
    return ct_errorf("q, k, v must share one dtype, got %s, %s, %s", ct_dtype_name(q->dtype), ct_dtype_name(k->dtype),
                     ct_dtype_name(v->dtype));
  if (q->dtype != CT_F32 && q->dtype != CT_F64 && q->dtype != CT_BF16)
    return ct_errorf("dtype %s is not supported (f32, f64; bf16 on cuda)", ct_dtype_name(q->dtype));
  return 0;
}

static int flash_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  if (check_qkv(in, true)) return -1;
  const ct_tensor *q = in[0], *v = in[2];
  m->ndim = q->ndim;
  memcpy(m->shape, q->shape, sizeof m->shape);
  m->shape[q->ndim - 1] = v->shape[v->ndim - 1];
  m->dtype = q->dtype;
  return 0;
}

/* attention_flash_backward(q, k, v, o, g): o the forward's output, g its gradient (both [..., Nq, dv]). */
static int flash_backward_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_meta om;
  if (flash_shape(in, 3, a, &om)) return -1;
  for (int i = 3; i < 5; i++) {
    const ct_tensor *t = in[i];
    bool ok = t->ndim == om.ndim && t->dtype == om.dtype;
    for (int j = 0; ok && j < om.ndim; j++) ok = t->shape[j] == om.shape[j];
    if (!ok) {
      char s1[160], s2[160];
      return ct_errorf("%s %s %s does not match the attention output %s %s", i == 3 ? "output" : "gradient",
                       ct_dtype_name(t->dtype), ct_shape_str(CT_SHAPE(t), s1, sizeof s1), ct_dtype_name(om.dtype),
                       ct_shape_str(om.shape, om.ndim, s2, sizeof s2));
    }
  }
  attn_dims g;
  dims_of(in, &g);
  m->ndim = om.ndim - 1;
  memcpy(m->shape, om.shape, sizeof m->shape);
  m->shape[m->ndim - 1] = g.nq * g.d + g.nk * g.d + g.nk * g.dv;
  m->dtype = om.dtype;
  return 0;
}

/* ---- costs: the bytes each implementation moves through main memory ------------------------ */

/* Keys visited by the query tiles of Br rows: sum over tiles of the keys their sweep reads. */
static double keys_swept(int64_t nq, int64_t nk, int64_t br, bool causal) {
  double sum = 0;
  for (int64_t i0 = 0; i0 < nq; i0 += br) {
    int64_t rows = nq - i0 < br ? nq - i0 : br;
    sum += (double)(causal ? (nk < i0 + rows ? nk : i0 + rows) : nk);
  }
  return sum;
}

/* Query rows swept by the key tiles of Bc keys in the GPU backward (query tiles of Br rows). */
static double queries_swept(int64_t nq, int64_t nk, int64_t br, int64_t bc, bool causal) {
  double sum = 0;
  for (int64_t j0 = 0; j0 < nk; j0 += bc) {
    int64_t first = causal ? (j0 / br) * br : 0;
    if (first < nq) sum += (double)(nq - first);
  }
  return sum;
}

/* (query, key) pairs a query may see: the useful work of either implementation. */
static double visible_pairs(int64_t nq, int64_t nk, bool causal) {
  if (!causal) return (double)nq * (double)nk;
  int64_t full = nq < nk ? nq : nk; /* rows 0..full-1 see i+1 keys; later rows see all nk */
  return (double)full * (double)(full + 1) / 2 + (double)(nq - full) * (double)nk;
}

static int64_t block_or(int64_t b, int64_t def) { return b > 0 ? b : def; }

static void flash_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops,
                       double *bytes);

/* Bytes the CPU kernels move (what they count), from the shapes alone. */
static double flash_cpu_bytes(const attn_dims *g, const ct_attrs *a, bool backward, size_t isz) {
  int64_t br = block_or(a->i[CT_ATTN_BLOCK_Q], CT_ATTN_CPU_BLOCK);
  bool causal = a->i[CT_ATTN_CAUSAL] != 0;
  double ks = keys_swept(g->nq, g->nk, br, causal), nq = (double)g->nq, nk = (double)g->nk;
  double d = (double)g->d, dv = (double)g->dv, e;
  if (!backward) e = nq * (d + dv) + ks * (d + dv);
  else e = nk * (d + dv) + nq * (d + 2 * dv) + ks * d + ks * (d + dv) + 2 * ks * (d + dv) + nq * d;
  return e * (double)g->batch * (double)isz;
}

/* Bytes the CUDA kernels move (kernels/attention.cu), from the shapes alone. */
static double flash_cuda_bytes(const attn_dims *g, const ct_attrs *a, bool backward, size_t isz) {
  bool causal = a->i[CT_ATTN_CAUSAL] != 0;
  double nq = (double)g->nq, nk = (double)g->nk, d = (double)g->d, dv = (double)g->dv, b;
  int bq = isz == 2 ? CT_ATTN_CUDA_TC_BQ(g->d > g->dv ? g->d : g->dv) : CT_ATTN_CUDA_BQ; /* bf16: flash_tc.cu */
  double ks = keys_swept(g->nq, g->nk, bq, causal);
  if (!backward) {
    b = (nq * (d + dv) + ks * (d + dv)) * (double)isz;
  } else {
    int64_t br = CT_ATTN_CUDA_BWD_BQ(g->d);
    double qs = queries_swept(g->nq, g->nk, br, CT_ATTN_CUDA_BWD_BK, causal);
    b = (nq * d + ks * d) * (double)isz + nq * 4;         /* statistics sweep: q, k; writes L */
    b += nq * 2 * dv * (double)isz + nq * 4;              /* D = rowsum(dO * O) */
    b += nq * d * 4;                                      /* dQ accumulator zeroed */
    b += nk * (d + dv) * (double)isz;                     /* each key tile: K, V once */
    b += qs * ((d + dv) * (double)isz + 8 + 2 * d * 4);   /* per swept query row: Q, dO, L, D, dQ += */
    b += nk * (d + dv) * (double)isz;                     /* dK, dV written once */
    b += nq * d * (4 + (double)isz);                      /* dQ converted into the output */
  }
  return b * (double)g->batch;
}

/* On the CPU the kernels' own count of the last run (equal to flash_cpu_bytes; the cost reports
   the count itself). */
static _Thread_local double cpu_bytes_counted;

static void flash_cost_common(ct_tensor *const *in, const ct_tensor *out, const ct_attrs *a, bool backward,
                              double *flops, double *bytes) {
  attn_dims g;
  dims_of(in, &g);
  double pairs = visible_pairs(g.nq, g.nk, a->i[CT_ATTN_CAUSAL] != 0) * (double)g.batch;
  *flops = backward ? pairs * (8.0 * (double)g.d + 4.0 * (double)g.dv) : pairs * 2.0 * (double)(g.d + g.dv);
  size_t isz = ct_dtype_size(in[0]->dtype);
  if (out->storage->device.type == CT_CPU) *bytes = cpu_bytes_counted;
  else *bytes = flash_cuda_bytes(&g, a, backward, isz);
}
static void flash_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops,
                       double *bytes) {
  (void)nin;
  flash_cost_common(in, out, a, false, flops, bytes);
}
static void flash_backward_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a,
                                double *flops, double *bytes) {
  (void)nin;
  flash_cost_common(in, out, a, true, flops, bytes);
}

double ct_attention_flash_bytes(const int64_t *q_shape, int ndim, int64_t nk, int64_t dv, ct_dtype dt,
                                ct_devtype dev, bool causal, int block_q, bool backward) {
  if (ndim < 2) return 0;
  attn_dims g = {1, q_shape[ndim - 2], nk, q_shape[ndim - 1], dv};
  for (int i = 0; i < ndim - 2; i++) g.batch *= q_shape[i];
  ct_attrs a = {0};
  a.i[CT_ATTN_CAUSAL] = causal;
  a.i[CT_ATTN_BLOCK_Q] = block_q;
  size_t isz = ct_dtype_size(dt);
  return dev == CT_CPU ? flash_cpu_bytes(&g, &a, backward, isz) : flash_cuda_bytes(&g, &a, backward, isz);
}

/* ---- CPU forwards -------------------------------------------------------------------------- */

/* The kernels' tile buffers (the "on-chip" memory), tagged temporary so memory pictures show it. */
static ct_tensor *scratch(int64_t elems, ct_dtype dt) {
  ct_category old = ct_set_default_category(CT_CAT_TEMPORARY);
  ct_tensor *s = ct_empty(&elems, 1, dt, ct_cpu());
  ct_set_default_category(old);
  return s;
}

static int need_cpu_dtype(ct_dtype dt) {
  if (dt == CT_F32 || dt == CT_F64) return 0;
  return ct_errorf("dtype %s has no CPU kernel (f32, f64): convert with :to(\"f32\")", ct_dtype_name(dt));
}

/* What the flash forward and backward share: the dims, the tile sizes, contiguous data of the n
   inputs (q, k, v; the backward also o and g) and the on-chip scratch ("SRAM") for the tiles.
   flash_begin returns 0 or -1 (error set); flash_end releases in either case. */
typedef struct {
  attn_dims g;
  int64_t br, bc;
  bool causal, f32;
  int n;
  ct_tensor *tmp[5], *sram;
  const char *p[5];
  size_t isz;
} flash_job;
static int flash_begin(flash_job *j, const ct_tensor *out, ct_tensor *const *in, int n, const ct_attrs *a) {
  *j = (flash_job){.n = n};
  if (need_cpu_dtype(out->dtype)) return -1;
  dims_of(in, &j->g);
  j->br = block_or(a->i[CT_ATTN_BLOCK_Q], CT_ATTN_CPU_BLOCK);
  j->bc = block_or(a->i[CT_ATTN_BLOCK_K], CT_ATTN_CPU_BLOCK);
  j->causal = a->i[CT_ATTN_CAUSAL] != 0, j->f32 = out->dtype == CT_F32;
  j->isz = ct_dtype_size(out->dtype);
  int rc = 0;
  for (int i = 0; i < n; i++)
    if (!(j->p[i] = ct_cpu_contig_data(in[i], &j->tmp[i]))) rc = -1;
  int64_t need = (j->f32 ? flash_scratch_f32 : flash_scratch_f64)(j->br, j->bc, j->g.d, j->g.dv);
  if (!rc && !(j->sram = scratch(need, out->dtype))) rc = -1;
  return rc;
}
static void flash_end(flash_job *j) {
  for (int i = 0; i < j->n; i++) ct_release(j->tmp[i]);
  ct_release(j->sram);
}

/* Batch b of the forward: o_b = flash attention of q_b, k_b, v_b; returns the bytes it moved. */
static int64_t flash_forward_batch(const flash_job *j, int64_t b, char *o, const ct_attrs *a) {
  const attn_dims g = j->g;
  size_t isz = j->isz;
  const char *q = j->p[0] + (size_t)(b * g.nq * g.d) * isz, *k = j->p[1] + (size_t)(b * g.nk * g.d) * isz;
  const char *v = j->p[2] + (size_t)(b * g.nk * g.dv) * isz;
  char *ob = o + (size_t)(b * g.nq * g.dv) * isz;
  if (j->f32)
    return flash_forward_f32((const float *)q, (const float *)k, (const float *)v, (float *)ob, g.nq, g.nk, g.d, g.dv,
                             j->br, j->bc, j->causal, (float)a->f[CT_ATTN_SCALE], ct_data_ptr(j->sram));
  return flash_forward_f64((const double *)q, (const double *)k, (const double *)v, (double *)ob, g.nq, g.nk, g.d, g.dv,
                           j->br, j->bc, j->causal, a->f[CT_ATTN_SCALE], ct_data_ptr(j->sram));
}

/* Batch b of the backward: dq_b, dk_b, dv_b (packed per batch in o) from q, k, v, o and g. */
static int64_t flash_backward_batch(const flash_job *j, int64_t b, char *o, const ct_attrs *a) {
  const attn_dims g = j->g;
  size_t isz = j->isz;
  int64_t per = g.nq * g.d + g.nk * g.d + g.nk * g.dv;
  const char *q = j->p[0] + (size_t)(b * g.nq * g.d) * isz, *k = j->p[1] + (size_t)(b * g.nk * g.d) * isz;
  const char *v = j->p[2] + (size_t)(b * g.nk * g.dv) * isz, *ob = j->p[3] + (size_t)(b * g.nq * g.dv) * isz;
  const char *gb = j->p[4] + (size_t)(b * g.nq * g.dv) * isz;
  char *dq = o + (size_t)(b * per) * isz, *dk = dq + (size_t)(g.nq * g.d) * isz, *dv = dk + (size_t)(g.nk * g.d) * isz;
  if (j->f32)
    return flash_backward_f32((const float *)q, (const float *)k, (const float *)v, (const float *)ob, (const float *)gb,
                              (float *)dq, (float *)dk, (float *)dv, g.nq, g.nk, g.d, g.dv, j->br, j->bc, j->causal,
                              (float)a->f[CT_ATTN_SCALE], ct_data_ptr(j->sram));
  return flash_backward_f64((const double *)q, (const double *)k, (const double *)v, (const double *)ob,
                            (const double *)gb, (double *)dq, (double *)dk, (double *)dv, g.nq, g.nk, g.d, g.dv, j->br,
                            j->bc, j->causal, a->f[CT_ATTN_SCALE], ct_data_ptr(j->sram));
}

/* The flash forward (inputs q, k, v) or backward (q, k, v, o, g; the output packs dq, dk, dv per
   batch and starts zeroed), one batch after another; the bytes moved go to cpu_bytes_counted. */
static int flash_run(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, bool backward) {
  flash_job j;
  int rc = flash_begin(&j, out, in, backward ? 5 : 3, a);
  char *o = ct_data_ptr(out);
  int64_t per = j.g.nq * j.g.d + j.g.nk * j.g.d + j.g.nk * j.g.dv;
  if (!rc && backward) memset(o, 0, (size_t)(per * j.g.batch) * j.isz);
  double moved = 0;
  for (int64_t b = 0; !rc && b < j.g.batch; b++)
    moved += (double)(backward ? flash_backward_batch : flash_forward_batch)(&j, b, o, a);
  cpu_bytes_counted = moved;
  flash_end(&j);
  return rc;
}
static int flash_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return flash_run(out, in, a, false);
}
static int flash_backward_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return flash_run(out, in, a, true);
}

/* ---- gradient rule --------------------------------------------------------------------------- */

/* Part [start, start+len) of the packed gradient's last dim, as [batch..., rows, cols]. */
static ct_tensor *unpack(ct_tensor *packed, const ct_tensor *like_batch, int64_t start, int64_t rows, int64_t cols) {
  int64_t shape[CT_MAX_DIMS];
  int nd = like_batch->ndim;
  memcpy(shape, like_batch->shape, sizeof shape);
  shape[nd - 2] = rows;
  shape[nd - 1] = cols;
  return O_RESHAPE(ct_narrow(packed, -1, start, rows * cols), shape, nd);
}

static int flash_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *in[5] = {n->in[0], n->in[1], n->in[2], n->out, g};
  attn_dims d;
  dims_of(in, &d);
  ct_tensor *packed = ct_op_run(CT_OP_attention_flash_backward, in, 5, &n->attrs);
  if (!packed) return -1;
  int64_t off[3] = {0, d.nq * d.d, d.nq * d.d + d.nk * d.d};
  int64_t rows[3] = {d.nq, d.nk, d.nk}, cols[3] = {d.d, d.d, d.dv};
  int rc = 0;
  for (int i = 0; i < 3 && !rc; i++)
    if (ct_node_needs_grad(n, i) && !(gin[i] = unpack(packed, n->in[i], off[i], rows[i], cols[i]))) rc = -1;
  ct_release(packed);
  return rc;
}

const ct_opdef ct_op_attention_flash = {"attention_flash", 3, 0, flash_shape, flash_cpu, flash_backward, flash_cost, "dq, dk, dv = attention_flash_backward(q, k, v, o, lse, g): recomputes P block by block", NULL};
/* Its own gradient is not provided (backward NULL): differentiate naive attention twice instead. */
const ct_opdef ct_op_attention_flash_backward = {"attention_flash_backward", 5, 0, flash_backward_shape,
                                                 flash_backward_cpu, NULL, flash_backward_cost, NULL, NULL};

/* ---- public entry point ------------------------------------------------------------------------ */

/* Bool [Nq, Nk] on dev, true where key j lies in query i's future (j > i): arange(Nk) > arange(Nq)^T,
   computed where the scores are (a broadcast comparison, no N x N loop on the host). */
static ct_tensor *future_mask(int64_t nq, int64_t nk, ct_device dev) {
  int64_t rs[2] = {nq, 1}, cs[2] = {1, nk};
  ct_tensor *rows = O_RESHAPE(ct_arange(0, (double)nq, 1, CT_I32, dev), rs, 2);
  ct_tensor *cols = O_RESHAPE(ct_arange(0, (double)nk, 1, CT_I32, dev), cs, 2);
  ct_tensor *m = rows && cols ? ct_gt(cols, rows) : NULL;
  ct_release(rows), ct_release(cols);
  return m;
}

static ct_tensor *named(ct_tensor *t, const char *name) {
  if (t) ct_set_name(t, name);
  return t;
}

static ct_tensor *attention_naive(ct_tensor *q, ct_tensor *k, ct_tensor *v, bool causal, double scale) {
  ct_tensor *s = named(O_MATMUL(ct_mul_scalar(q, scale), ct_transpose(k, -2, -1)), "scores");
  if (s && causal) { /* scores of future keys become -inf: probability 0, gradient 0 */
    ct_tensor *mask = future_mask(q->shape[q->ndim - 2], k->shape[k->ndim - 2], s->storage->device);
    ct_tensor *minus_inf = mask ? ct_scalar(-INFINITY, s->dtype, s->storage->device) : NULL;
    ct_tensor *masked = minus_inf ? ct_where(mask, minus_inf, s) : NULL;
    ct_release(mask), ct_release(minus_inf), ct_release(s);
    s = named(masked, "masked scores");
  }
  ct_tensor *p = s ? named(ct_softmax(s, -1), "probs") : NULL;
  ct_release(s);
  return O_MATMUL(p, R(v));
}

ct_tensor *ct_attention(ct_tensor *q, ct_tensor *k, ct_tensor *v, const ct_attention_opts *o) {
  static const ct_attention_opts defaults;
  if (!o) o = &defaults;
  if (!q || !k || !v) return ct_errorf("attention: missing %s", !q ? "q" : !k ? "k" : "v"), NULL;
  ct_tensor *in[3] = {q, k, v};
  if (check_qkv(in, false)) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_last_error());
    return ct_errorf("attention: %s", msg), NULL;
  }
  if (o->block_q < 0 || o->block_k < 0)
    return ct_errorf("attention: tile sizes must be positive, got block_q %d, block_k %d", o->block_q, o->block_k),
           NULL;
  double scale = o->scale > 0 ? o->scale : 1.0 / sqrt((double)q->shape[q->ndim - 1]);
  if (!o->flash) return attention_naive(q, k, v, o->causal, scale);
  ct_attrs a = {0};
  a.i[CT_ATTN_CAUSAL] = o->causal;
  a.i[CT_ATTN_BLOCK_Q] = o->block_q;
  a.i[CT_ATTN_BLOCK_K] = o->block_k;
  a.f[CT_ATTN_SCALE] = scale;
  return ct_op_run(CT_OP_attention_flash, in, 3, &a);
}
