/* ops_nn.c: neural-network ops: softmax, log_softmax, nll_loss, one_hot, layer_norm, dropout_mask,
 * and the composites built on them (cross_entropy, mse_loss, dropout).
 *
 * Invariants: float ops compute in f32 or f64 only (the public functions convert other dtypes
 * first, visibly to autograd); a CPU forward never runs other ops (so one op call is one event);
 * every gradient rule is written with ordinary ct_* ops, so backward is a graph and double
 * backward works; class targets and one_hot indices are 1-based (negative from the end), and
 * every value is range-checked before it is used. dropout_mask records its seed and Philox
 * offset in its attributes, so any device (and a replay) draws the identical mask.
 * Each op's row (shape rule, forward, gradient rule, cost) opens its section; softmax's row and
 * gradient come first. The loops live in core/cpu/ (softmax.c: rows shifted by their max). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/iter.h"
#include "ops/grad_expr.h"
#include "cpu/helpers.h"
#include "cpu/softmax.h"
#include "ops/optable.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t prod(const int64_t *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s[d];
  return p;
}

static void same_meta(const ct_tensor *t, ct_meta *m) {
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  m->dtype = t->dtype;
}

/* Sum over one dim keeping it (a 0-d tensor's only "dim" is itself). Consumes t. */
static ct_tensor *sum_keep(ct_tensor *t, int dim) {
  if (!t || t->ndim == 0) return t;
  return O_SUM(t, &dim, 1, true);
}
static ct_tensor *mean_keep(ct_tensor *t, const int *dims, int n) {
  ct_tensor *r = t ? ct_mean(t, dims, n, true) : NULL;
  ct_release(t);
  return r;
}

/* Converts to a float compute dtype: f64 stays, everything else becomes f32. */
static ct_tensor *as_float(ct_tensor *t) { return ct_to_dtype(t, t->dtype == CT_F64 ? CT_F64 : CT_F32); }

static void rowwise_cost(ct_tensor *const *in, int nin, const ct_tensor *out, double per_elem, double *f, double *b) {
  double bytes = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
  for (int i = 0; i < nin; i++) bytes += (double)ct_numel(in[i]) * (double)ct_dtype_size(in[i]->dtype);
  *f = per_elem * (double)ct_numel(in[0]);
  *b = bytes;
}

/* ---- softmax and log_softmax over dim attrs.i[0] -------------------------------------------- */
/* The input is seen as [outer, D, inner]; each of the outer*inner lines of length D is shifted by
 * its max before exp, so no finite input overflows. */

static int softmax_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *x = in[0];
  if (ct_cpu_need_float(x, "input")) return -1;
  if (a->i[0] < 0 || (x->ndim > 0 && a->i[0] >= x->ndim)) return ct_errorf("dim %d out of range", (int)a->i[0] + 1);
  same_meta(x, m);
  return 0;
}

static int softmax_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return ct_cpu_softmax(out, in[0], (int)a->i[0], false);
}
static int log_softmax_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return ct_cpu_softmax(out, in[0], (int)a->i[0], true);
}
static void softmax_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)a;
  rowwise_cost(in, nin, out, 5, f, b);
}

/* y = softmax(x): dx = y * (g - sum(g * y, dim)) */
static int softmax_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *y = n->out;
  gin[0] = O_MUL(R(y), O_SUB(R(g), sum_keep(ct_mul(g, y), (int)n->attrs.i[0])));
  return gin[0] ? 0 : -1;
}
const ct_opdef ct_op_softmax = {"softmax", 1, 0, softmax_shape, softmax_cpu, softmax_backward, softmax_cost, "dx = y*(g - sum(g*y, dim))", NULL};

/* y = log_softmax(x): dx = g - exp(y) * sum(g, dim) */
static int log_softmax_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  gin[0] = O_SUB(R(g), O_MUL(ct_exp(n->out), sum_keep(R(g), (int)n->attrs.i[0])));
  return gin[0] ? 0 : -1;
}
const ct_opdef ct_op_log_softmax = {"log_softmax", 1, 0, softmax_shape, log_softmax_cpu, log_softmax_backward,
                                    softmax_cost, "dx = g - softmax(x)*sum(g, dim)", NULL};

/* ---- one_hot(idx): idx.shape + [C], 1 at each 1-based class (attrs.i[0] = C, attrs.dtype) -- */

static int one_hot_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0];
  if (!ct_is_index_dtype(t->dtype))
    return ct_errorf("indices must be an integer tensor (i64, i32 or i8), got %s", ct_dtype_name(t->dtype));
  if (t->ndim >= CT_MAX_DIMS) return ct_errorf("indices have %d dims; at most %d are supported", t->ndim, CT_MAX_DIMS - 1);
  if (a->i[0] < 1) return ct_errorf("number of classes must be >= 1, got %lld", (long long)a->i[0]);
  m->ndim = t->ndim + 1;
  memcpy(m->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  m->shape[t->ndim] = a->i[0];
  m->dtype = a->dtype;
  return 0;
}
static int one_hot_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  ct_tensor *tmp;
  const char *ip = ct_cpu_contig_data(in[0], &tmp);
  if (!ip) return -1;
  int64_t n = ct_numel(in[0]), C = a->i[0];
  size_t isz = ct_dtype_size(in[0]->dtype), osz = ct_dtype_size(out->dtype);
  char *o = ct_data_ptr(out);
  memset(o, 0, (size_t)(n * C) * osz);
  int rc = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = ct_load_index(in[0]->dtype, ip + (size_t)i * isz), k = ct_norm_index(v, C);
    if (k < 0) {
      rc = ct_errorf("one_hot: index %lld (element %lld) is out of range for %lld classes (1-based; valid 1..%lld or "
                     "-%lld..-1)", (long long)v, (long long)i + 1, (long long)C, (long long)C, (long long)C);
      break;
    }
    ct_store_from_double(out->dtype, o + (size_t)(i * C + k) * osz, 1.0);
  }
  ct_release(tmp);
  return rc;
}
const ct_opdef ct_op_one_hot = {"one_hot", 1, CT_OPF_NONDIFF, one_hot_shape, one_hot_cpu, NULL, NULL, NULL, NULL};

/* ---- nll_loss(logp [N,C] or [C], target [N] or scalar): -mean_n logp[n, target_n] ---------- */

static int nll_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  const ct_tensor *lp = in[0], *t = in[1];
  char s1[160], s2[160];
  if (ct_cpu_need_float(lp, "log-probabilities")) return -1;
  if (!ct_is_index_dtype(t->dtype))
    return ct_errorf("target must be an integer tensor of 1-based classes (i64, i32 or i8), got %s",
                     ct_dtype_name(t->dtype));
  bool ok = (lp->ndim == 2 && t->ndim == 1 && t->shape[0] == lp->shape[0]) || (lp->ndim == 1 && t->ndim == 0);
  if (!ok)
    return ct_errorf("expected log-probabilities [N,C] with target [N], or [C] with a scalar target; got %s and "
                     "target %s", ct_shape_str(CT_SHAPE(lp), s1, sizeof s1), ct_shape_str(CT_SHAPE(t), s2, sizeof s2));
  m->ndim = 0;
  m->dtype = lp->dtype;
  return 0;
}
static int nll_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  const ct_tensor *lp = in[0], *t = in[1];
  int64_t N = lp->ndim == 2 ? lp->shape[0] : 1, C = lp->shape[lp->ndim - 1];
  int64_t s0 = lp->ndim == 2 ? lp->stride[0] : 0, s1 = lp->stride[lp->ndim - 1];
  ct_tensor *tmp;
  const char *tp = ct_cpu_contig_data(t, &tmp);
  if (!tp) return -1;
  size_t tsz = ct_dtype_size(t->dtype);
  const char *base = ct_data_ptr(lp);
  double acc = 0;
  int rc = 0;
  for (int64_t i = 0; i < N; i++) {
    int64_t v = ct_load_index(t->dtype, tp + (size_t)i * tsz), k = ct_norm_index(v, C);
    if (k < 0) {
      rc = ct_errorf("nll_loss: target %lld (sample %lld) is out of range for C=%lld classes (1-based; valid "
                     "1..%lld or -%lld..-1)", (long long)v, (long long)i + 1, (long long)C, (long long)C, (long long)C);
      break;
    }
    int64_t e = i * s0 + k * s1;
    acc += lp->dtype == CT_F32 ? (double)((const float *)base)[e] : ((const double *)base)[e];
  }
  ct_release(tmp);
  if (rc) return rc;
  ct_store_from_double(out->dtype, ct_data_ptr(out), -acc / (double)N);
  return 0;
}
/* d/dlogp = -g/N * one_hot(target) */
static int nll_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  const ct_tensor *lp = n->in[0];
  int64_t N = lp->ndim == 2 ? lp->shape[0] : 1, C = lp->shape[lp->ndim - 1];
  gin[0] = O_MUL(ct_mul_scalar(g, -1.0 / (double)N), ct_one_hot(n->in[1], C, lp->dtype));
  return gin[0] ? 0 : -1;
}
static void nll_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)out, (void)a;
  int64_t N = ct_numel(in[1]);
  *f = (double)N;
  *b = (double)N * (double)(ct_dtype_size(in[0]->dtype) + ct_dtype_size(in[1]->dtype));
}
const ct_opdef ct_op_nll_loss = {"nll_loss", 2, CT_OPF_NONDIFF_IN1, nll_shape, nll_cpu, nll_backward, nll_cost, "dlogp = -onehot(target)*g/N", NULL};

/* ---- layer_norm(x [, w [, b]]) over the last attrs.i[0] dims, eps attrs.f[0] ---------------- */

static int layer_norm_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  const ct_tensor *x = in[0];
  int nd = (int)a->i[0];
  char s1[160], s2[160], s3[160];
  if (nin < 1 || nin > 3) return ct_errorf("expected 1 to 3 inputs (x, weight, bias), got %d", nin);
  if (ct_cpu_need_float(x, "input")) return -1;
  if (nd < 1 || nd > x->ndim)
    return ct_errorf("cannot normalize over the last %d dims of an input of shape %s", nd,
                     ct_shape_str(CT_SHAPE(x), s1, sizeof s1));
  const int64_t *ns = x->shape + (x->ndim - nd);
  for (int i = 1; i < nin; i++) {
    const ct_tensor *p = in[i];
    if (p->dtype != x->dtype)
      return ct_errorf("%s has dtype %s but the input has %s", i == 1 ? "weight" : "bias", ct_dtype_name(p->dtype),
                       ct_dtype_name(x->dtype));
    if (p->ndim != nd || memcmp(p->shape, ns, sizeof(int64_t) * (size_t)nd))
      return ct_errorf("%s has shape %s but the normalized shape is %s (last %d dims of input %s)",
                       i == 1 ? "weight" : "bias", ct_shape_str(CT_SHAPE(p), s1, sizeof s1),
                       ct_shape_str(ns, nd, s2, sizeof s2), nd, ct_shape_str(CT_SHAPE(x), s3, sizeof s3));
  }
  same_meta(x, m);
  return 0;
}

#define LAYER_NORM_KERNEL(SUF, T)                                                                         \
  static void layer_norm_##SUF(T *y, const T *x, const T *w, const T *b, int64_t M, int64_t D, double eps) { \
    for (int64_t r = 0; r < M; r++) {                                                                     \
      const T *xr = x + r * D;                                                                            \
      T *yr = y + r * D;                                                                                  \
      double s = 0, v = 0;                                                                                \
      for (int64_t j = 0; j < D; j++) s += xr[j];                                                         \
      double mu = s / (double)D;                                                                          \
      for (int64_t j = 0; j < D; j++) v += ((double)xr[j] - mu) * ((double)xr[j] - mu);                   \
      T rstd = (T)(1.0 / sqrt(v / (double)D + eps)), tmu = (T)mu;                                         \
      if (w && b)                                                                                         \
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - tmu) * rstd * w[j] + b[j];                       \
      else if (w)                                                                                         \
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - tmu) * rstd * w[j];                              \
      else                                                                                                \
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - tmu) * rstd;                                     \
    }                                                                                                     \
  }
LAYER_NORM_KERNEL(f32, float)
LAYER_NORM_KERNEL(f64, double)

static int layer_norm_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  const ct_tensor *x = in[0];
  int nd = (int)a->i[0];
  int64_t D = prod(x->shape, x->ndim - nd, x->ndim), M = D ? ct_numel(x) / D : 0;
  ct_tensor *tmp[3] = {0};
  const void *p[3] = {0};
  int rc = 0;
  for (int i = 0; i < nin && !rc; i++)
    if (!(p[i] = ct_cpu_contig_data(in[i], &tmp[i]))) rc = -1;
  if (!rc) {
    if (x->dtype == CT_F32) layer_norm_f32(ct_data_ptr(out), p[0], p[1], p[2], M, D, a->f[0]);
    else layer_norm_f64(ct_data_ptr(out), p[0], p[1], p[2], M, D, a->f[0]);
  }
  for (int i = 0; i < 3; i++) ct_release(tmp[i]);
  return rc;
}

/* With xhat = (x - mu) * rstd and gw = g * w:
 *   dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),  dw = sum(g * xhat),  db = sum(g)
 * (means over the normalized dims, sums over the leading dims). */
static int layer_norm_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0], *w = n->nin > 1 ? n->in[1] : NULL;
  int nd = (int)n->attrs.i[0], lead = x->ndim - nd;
  int dims[CT_MAX_DIMS], ldims[CT_MAX_DIMS];
  for (int k = 0; k < nd; k++) dims[k] = lead + k;
  for (int k = 0; k < lead; k++) ldims[k] = k;
  ct_tensor *xc = O_SUB(R(x), ct_mean(x, dims, nd, true));
  ct_tensor *rstd = O_POWS(O_ADDS(mean_keep(O_MUL(R(xc), R(xc)), dims, nd), n->attrs.f[0]), -0.5);
  ct_tensor *xhat = O_MUL(xc, R(rstd));
  if (!xhat) {
    ct_release(rstd);
    return -1;
  }
  int rc = 0;
  if (ct_node_needs_grad(n, 0)) {
    ct_tensor *gw = w ? ct_mul(g, w) : R(g);
    ct_tensor *t = O_MUL(R(xhat), mean_keep(O_MUL(R(gw), R(xhat)), dims, nd));
    gin[0] = O_MUL(R(rstd), O_SUB(O_SUB(R(gw), mean_keep(R(gw), dims, nd)), t));
    ct_release(gw);
    if (!gin[0]) rc = -1;
  }
  if (!rc && n->nin > 1 && ct_node_needs_grad(n, 1)) {
    gin[1] = lead ? O_SUM(ct_mul(g, xhat), ldims, lead, false) : ct_mul(g, xhat);
    if (!gin[1]) rc = -1;
  }
  if (!rc && n->nin > 2 && ct_node_needs_grad(n, 2)) {
    gin[2] = lead ? ct_sum(g, ldims, lead, false) : R(g);
    if (!gin[2]) rc = -1;
  }
  ct_release(xhat), ct_release(rstd);
  return rc;
}
static void layer_norm_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f,
                            double *b) {
  (void)a;
  rowwise_cost(in, nin, out, 8, f, b);
}
const ct_opdef ct_op_layer_norm = {"layer_norm", -1, 0, layer_norm_shape, layer_norm_cpu, layer_norm_backward,
                                   layer_norm_cost, "dx = (g*w - mean(g*w) - xhat*mean(g*w*xhat))/sigma; dw = sum(g*xhat); db = sum(g)", NULL};

/* ---- dropout_mask(x): {0, 1/(1-p)} of x's shape and dtype from the Philox stream -------------
 * attrs: f[0] = p, i[0] = stream offset of the draw, i[1] = seed (bits). Element i (row-major)
 * is kept when ct_philox_uniform(seed, offset + i) >= p. */

static int dropout_mask_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  if (ct_cpu_need_float(in[0], "input")) return -1;
  if (!(a->f[0] >= 0 && a->f[0] < 1)) return ct_errorf("probability p must be in [0, 1), got %g", a->f[0]);
  same_meta(in[0], m);
  return 0;
}
static int dropout_mask_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)in, (void)nin;
  double p = a->f[0], scale = 1.0 / (1.0 - p);
  uint64_t seed, off = (uint64_t)a->i[0];
  memcpy(&seed, &a->i[1], sizeof seed);
  int64_t n = ct_numel(out);
  if (out->dtype == CT_F32) {
    float *o = ct_data_ptr(out), s = (float)scale;
    for (int64_t i = 0; i < n; i++) o[i] = ct_philox_uniform(seed, off + (uint64_t)i) >= (float)p ? s : 0.0f;
  } else {
    double *o = ct_data_ptr(out);
    for (int64_t i = 0; i < n; i++) o[i] = ct_philox_uniform(seed, off + (uint64_t)i) >= (float)p ? scale : 0.0;
  }
  return 0;
}
static void dropout_mask_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f,
                              double *b) {
  (void)in, (void)nin, (void)a;
  *f = 20.0 * (double)ct_numel(out); /* ten Philox rounds, two multiplies each */
  *b = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
}
const ct_opdef ct_op_dropout_mask = {"dropout_mask", 1, CT_OPF_NONDIFF, dropout_mask_shape, dropout_mask_cpu, NULL,
                                     dropout_mask_cost, NULL, NULL};

/* ---- public entry points -------------------------------------------------------------------- */

static ct_tensor *softmax_like(ct_op op, const char *name, ct_tensor *x, int dim) {
  if (!x) return ct_errorf("%s: missing input", name), NULL;
  int d;
  if (ct_norm_dim(name, dim, x, x->ndim, &d)) return NULL;
  ct_attrs at = {0};
  at.i[0] = d;
  ct_tensor *xf = as_float(x);
  ct_tensor *r = xf ? ct_op_run(op, &xf, 1, &at) : NULL;
  ct_release(xf);
  return r;
}
ct_tensor *ct_softmax(ct_tensor *x, int dim) { return softmax_like(CT_OP_softmax, "softmax", x, dim); }
ct_tensor *ct_log_softmax(ct_tensor *x, int dim) { return softmax_like(CT_OP_log_softmax, "log_softmax", x, dim); }

ct_tensor *ct_one_hot(ct_tensor *idx, int64_t nclasses, ct_dtype dt) {
  if (!idx) return ct_errorf("one_hot: missing indices"), NULL;
  char d[200];
  if (!ct_is_index_dtype(idx->dtype))
    return ct_errorf("one_hot: indices must be an integer tensor (i64, i32 or i8), got %s",
                     ct_describe(idx, d, sizeof d)), NULL;
  if (nclasses < 0) { /* infer: the largest class present */
    int64_t n = ct_numel(idx);
    size_t isz = ct_dtype_size(idx->dtype);
    char *buf = malloc((size_t)n * isz + 1);
    if (!buf) return ct_errorf("one_hot: out of memory"), NULL;
    if (ct_read_host(idx, buf)) return free(buf), NULL;
    nclasses = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t v = ct_load_index(idx->dtype, buf + (size_t)i * isz);
      if (v > nclasses) nclasses = v;
    }
    free(buf);
    if (nclasses < 1)
      return ct_errorf("one_hot: cannot infer the number of classes from %s (no positive class)",
                       ct_describe(idx, d, sizeof d)), NULL;
  }
  ct_attrs at = {0};
  at.i[0] = nclasses;
  at.dtype = dt;
  return ct_op_run(CT_OP_one_hot, &idx, 1, &at);
}

ct_tensor *ct_nll_loss(ct_tensor *logp, ct_tensor *target) {
  if (!logp || !target) return ct_errorf("nll_loss: missing %s", logp ? "target" : "input"), NULL;
  ct_tensor *lf = as_float(logp);
  ct_tensor *in[2] = {lf, target};
  ct_tensor *r = lf ? ct_op_run(CT_OP_nll_loss, in, 2, NULL) : NULL;
  ct_release(lf);
  return r;
}

ct_tensor *ct_cross_entropy(ct_tensor *logits, ct_tensor *target) {
  if (!logits || !target) return ct_errorf("cross_entropy: missing %s", logits ? "target" : "logits"), NULL;
  if (logits->ndim != 1 && logits->ndim != 2) {
    char s[160];
    return ct_errorf("cross_entropy: logits must be [N,C] or [C], got %s", ct_shape_str(CT_SHAPE(logits), s, sizeof s)),
           NULL;
  }
  ct_tensor *lsm = ct_log_softmax(logits, -1);
  ct_tensor *r = lsm ? ct_nll_loss(lsm, target) : NULL;
  ct_release(lsm);
  if (!r) ct_errorf("cross_entropy: %s", ct_last_error());
  return r;
}

ct_tensor *ct_mse_loss(ct_tensor *a, ct_tensor *b) {
  if (!a || !b) return ct_errorf("mse_loss: missing %s", a ? "target" : "input"), NULL;
  if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim)) {
    char s1[160], s2[160];
    return ct_errorf("mse_loss: input %s and target %s must have the same shape (mse_loss does not broadcast)",
                     ct_describe(a, s1, sizeof s1), ct_describe(b, s2, sizeof s2)), NULL;
  }
  ct_tensor *d = ct_sub(a, b);
  ct_tensor *sq = d ? ct_mul(d, d) : NULL;
  ct_release(d);
  ct_tensor *r = sq ? ct_mean(sq, NULL, 0, false) : NULL;
  ct_release(sq);
  return r;
}

ct_tensor *ct_layer_norm(ct_tensor *x, int nd, ct_tensor *weight, ct_tensor *bias, double eps) {
  if (!x) return ct_errorf("layer_norm: missing input"), NULL;
  if (nd < 1 || nd > x->ndim) {
    char s[160];
    return ct_errorf("layer_norm: cannot normalize over the last %d dims of an input of shape %s (need 1..%d)", nd,
                     ct_shape_str(CT_SHAPE(x), s, sizeof s), x->ndim), NULL;
  }
  if (!(eps >= 0)) return ct_errorf("layer_norm: eps must be >= 0, got %g", eps), NULL;
  ct_attrs at = {0};
  at.i[0] = nd;
  at.f[0] = eps;
  ct_tensor *xf = as_float(x), *ones = NULL;
  if (!xf) return NULL;
  if (bias && !weight) { /* bias without weight: a constant unit weight */
    if (!(ones = ct_full(xf->shape + (xf->ndim - nd), nd, 1.0, xf->dtype, xf->storage->device))) {
      ct_release(xf);
      return NULL;
    }
    weight = ones;
  }
  ct_tensor *in[3] = {xf, weight, bias};
  ct_tensor *r = ct_op_run(CT_OP_layer_norm, in, bias ? 3 : weight ? 2 : 1, &at);
  ct_release(xf), ct_release(ones);
  return r;
}

ct_tensor *ct_dropout(ct_tensor *x, double p, bool training) {
  if (!x) return ct_errorf("dropout: missing input"), NULL;
  if (!(p >= 0 && p < 1)) return ct_errorf("dropout: probability p must be in [0, 1), got %g", p), NULL;
  if (!training || p == 0) return ct_retain(x);
  ct_tensor *xf = as_float(x);
  if (!xf) return NULL;
  uint64_t seed = ct_rng_seed();
  ct_attrs at = {0};
  at.f[0] = p;
  at.i[0] = (int64_t)ct_rng_reserve((uint64_t)ct_numel(xf));
  memcpy(&at.i[1], &seed, sizeof seed);
  ct_tensor *mask = ct_op_run(CT_OP_dropout_mask, &xf, 1, &at);
  ct_tensor *r = mask ? ct_mul(xf, mask) : NULL;
  ct_release(mask), ct_release(xf);
  return r;
}
