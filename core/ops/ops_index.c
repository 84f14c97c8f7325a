/* ops_index.c: indexing ops: index_select and its adjoint index_add, gather and its adjoint
 * scatter_add, cat; and the composites stack and embedding.
 *
 * Invariants: the index tensor is always input 1, has an integer dtype and takes no gradient
 * (CT_OPF_NONDIFF_IN1); index values are 1-based, negative counting from the end, and every value
 * is range-checked before any memory is touched, with an error naming the op, the bad value, the
 * dim (1-based, as users count) and its size. Each op's gradient is its adjoint, run as an op, so
 * the adjoint's own gradient (the original op) makes double backward work. The adjoints
 * (index_add, scatter_add) accumulate into zeros of the shape in attrs.shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/iter.h"
#include "ops/grad_expr.h"
#include "cpu/helpers.h"
#include "cpu/copy.h"
#include "ops/optable.h"
#include "tensor/checked.h"

/* ---- helpers ------------------------------------------------------------------------------- */


static int range_error(const char *op, int64_t v, int dim, int64_t size) {
  return ct_errorf("%s: index %lld is out of range for dim %d of size %lld (1-based; valid 1..%lld or -%lld..-1)", op,
                   (long long)v, dim + 1, (long long)size, (long long)size, (long long)size);
}
static int check_index_tensor(const ct_tensor *idx) {
  if (ct_is_index_dtype(idx->dtype)) return 0;
  char d[200];
  return ct_errorf("the index tensor must have an integer dtype (i64, i32 or i8), got %s", ct_describe(idx, d, sizeof d));
}

/* Reads the whole index tensor, checking and converting each value to a 0-based position. */
static int64_t *read_positions(const char *op, const ct_tensor *idx, int dim, int64_t size) {
  int64_t n = ct_numel(idx);
  int64_t *pos = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!pos) return ct_errorf("%s: out of memory", op), NULL;
  ct_tensor *tmp;
  const char *p = ct_cpu_contig_data(idx, &tmp);
  if (!p) return free(pos), NULL;
  size_t isz = ct_dtype_size(idx->dtype);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = ct_load_index(idx->dtype, p + (size_t)i * isz);
    if ((pos[i] = ct_norm_index(v, size)) < 0) {
      range_error(op, v, dim, size);
      free(pos);
      pos = NULL;
      break;
    }
  }
  ct_release(tmp);
  return pos;
}

static int64_t prod(const int64_t *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s[d];
  return p;
}

static void copy_elem(char *dst, const char *src, size_t isz) {
  switch (isz) {
  case 8: memcpy(dst, src, 8); break;
  case 4: memcpy(dst, src, 4); break;
  case 2: memcpy(dst, src, 2); break;
  default: memcpy(dst, src, isz); break;
  }
}

static void gather_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)a;
  double bytes = 2.0 * (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
  if (nin > 1) bytes += (double)ct_numel(in[1]) * (double)ct_dtype_size(in[1]->dtype);
  *f = 0;
  *b = bytes;
}
static void scatter_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)a, (void)nin;
  *f = (double)ct_numel(in[0]);
  *b = (double)(ct_numel(in[0]) + ct_numel(out)) * (double)ct_dtype_size(out->dtype) +
       (double)ct_numel(in[1]) * (double)ct_dtype_size(in[1]->dtype);
}

/* ---- index_select(a, idx) along attrs.i[0]: out[.., j, ..] = a[.., idx[j], ..] ---------------- */

static int index_select_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0], *idx = in[1];
  int dim = (int)a->i[0];
  char s[160];
  if (check_index_tensor(idx)) return -1;
  if (idx->ndim > 1)
    return ct_errorf("the index tensor must be 1-D, got shape %s", ct_shape_str(CT_SHAPE(idx), s, sizeof s));
  if (t->ndim == 0) return ct_errorf("cannot index a 0-dim tensor");
  if (dim < 0 || dim >= t->ndim) return ct_errorf("dim %d out of range for %d dims", dim + 1, t->ndim);
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  m->shape[dim] = ct_numel(idx);
  m->dtype = t->dtype;
  return 0;
}
static int index_select_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *t = in[0];
  int dim = (int)a->i[0];
  int64_t K = ct_numel(in[1]), D = t->shape[dim];
  int64_t *pos = read_positions("index_select", in[1], dim, D);
  if (!pos) return -1;
  ct_tensor *tmp;
  const char *src = ct_cpu_contig_data(t, &tmp);
  if (!src) return free(pos), -1;
  int64_t outer = prod(t->shape, 0, dim), inner = prod(t->shape, dim + 1, t->ndim);
  size_t isz = ct_dtype_size(t->dtype), row = (size_t)inner * isz;
  char *o = ct_data_ptr(out);
  for (int64_t i = 0; i < outer; i++) {
    const char *s = src + (size_t)(i * D) * row;
    char *oo = o + (size_t)(i * K) * row;
    if (row == 4)
      for (int64_t j = 0; j < K; j++) memcpy(oo + (size_t)j * 4, s + (size_t)pos[j] * 4, 4);
    else if (row == 8)
      for (int64_t j = 0; j < K; j++) memcpy(oo + (size_t)j * 8, s + (size_t)pos[j] * 8, 8);
    else
      for (int64_t j = 0; j < K; j++) memcpy(oo + (size_t)j * row, s + (size_t)pos[j] * row, row);
  }
  ct_release(tmp);
  free(pos);
  return 0;
}
/* gin[0] = the adjoint op (index_add, scatter_add) of g into zeros of a's shape, at the forward's
   indices (input 1) and attrs. */
static int adjoint_into_zeros(ct_op adjoint, ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_attrs at = n->attrs;
  at.ndim = n->in[0]->ndim;
  memcpy(at.shape, n->in[0]->shape, sizeof at.shape);
  ct_tensor *in[2] = {g, n->in[1]};
  return (gin[0] = ct_op_run(adjoint, in, 2, &at)) ? 0 : -1;
}

/* d/da = index_add of g into zeros of a's shape */
static int index_select_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return adjoint_into_zeros(CT_OP_index_add, n, g, gin);
}
const ct_opdef ct_op_index_select = {"index_select", 2, CT_OPF_NONDIFF_IN1, index_select_shape, index_select_cpu,
                                     index_select_backward, gather_cost, "dx = index_add(zeros, idx, g)", NULL};

/* ---- index_add(src, idx): zeros of attrs.shape, out[.., idx[j], ..] += src[.., j, ..] -------- */

static int index_add_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *src = in[0], *idx = in[1];
  int dim = (int)a->i[0];
  char s1[160], s2[160];
  if (check_index_tensor(idx)) return -1;
  if (src->dtype != CT_F32 && src->dtype != CT_F64)
    return ct_errorf("source must be f32 or f64, got %s", ct_dtype_name(src->dtype));
  bool ok = idx->ndim <= 1 && src->ndim == a->ndim && dim >= 0 && dim < a->ndim && src->shape[dim] == ct_numel(idx);
  for (int d = 0; ok && d < a->ndim; d++)
    if (d != dim && src->shape[d] != a->shape[d]) ok = false;
  if (!ok)
    return ct_errorf("source %s with %lld indices does not fit a result of shape %s along dim %d",
                     ct_shape_str(CT_SHAPE(src), s1, sizeof s1), (long long)ct_numel(idx),
                     ct_shape_str(a->shape, a->ndim, s2, sizeof s2), dim + 1);
  m->ndim = a->ndim;
  memcpy(m->shape, a->shape, sizeof m->shape);
  m->dtype = src->dtype;
  return 0;
}
#define INDEX_ADD_KERNEL(SUF, T)                                                                           \
  static void index_add_##SUF(T *o, const T *s, const int64_t *pos, int64_t outer, int64_t K, int64_t D,   \
                              int64_t inner) {                                                             \
    for (int64_t i = 0; i < outer; i++)                                                                    \
      for (int64_t j = 0; j < K; j++) {                                                                    \
        T *orow = o + (i * D + pos[j]) * inner;                                                            \
        const T *srow = s + (i * K + j) * inner;                                                           \
        for (int64_t k = 0; k < inner; k++) orow[k] += srow[k];                                            \
      }                                                                                                    \
  }
INDEX_ADD_KERNEL(f32, float)
INDEX_ADD_KERNEL(f64, double)
static int index_add_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  int dim = (int)a->i[0];
  int64_t K = ct_numel(in[1]), D = out->shape[dim];
  int64_t *pos = read_positions("index_add", in[1], dim, D);
  if (!pos) return -1;
  ct_tensor *tmp;
  const void *src = ct_cpu_contig_data(in[0], &tmp);
  if (!src) return free(pos), -1;
  int64_t outer = prod(out->shape, 0, dim), inner = prod(out->shape, dim + 1, out->ndim);
  memset(ct_data_ptr(out), 0, (size_t)ct_numel(out) * ct_dtype_size(out->dtype));
  if (out->dtype == CT_F32) index_add_f32(ct_data_ptr(out), src, pos, outer, K, D, inner);
  else index_add_f64(ct_data_ptr(out), src, pos, outer, K, D, inner);
  ct_release(tmp);
  free(pos);
  return 0;
}
/* d/dsrc = index_select of g */
static int index_add_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *in[2] = {g, n->in[1]};
  return (gin[0] = ct_op_run(CT_OP_index_select, in, 2, &n->attrs)) ? 0 : -1;
}
const ct_opdef ct_op_index_add = {"index_add", 2, CT_OPF_NONDIFF_IN1, index_add_shape, index_add_cpu,
                                  index_add_backward, scatter_cost, NULL, NULL};

/* ---- gather(a, idx) along attrs.i[0] (torch.gather): out[p] = a[p with p[dim] = idx[p]] ------- */

static int gather_check(const char *what, const ct_tensor *t, const ct_tensor *idx, int dim) {
  char s1[160], s2[160];
  if (check_index_tensor(idx)) return -1;
  if (t->ndim == 0) return ct_errorf("cannot index a 0-dim tensor");
  if (dim < 0 || dim >= t->ndim) return ct_errorf("dim %d out of range for %d dims", dim + 1, t->ndim);
  if (idx->ndim != t->ndim)
    return ct_errorf("the index %s must have as many dims as the %s %s", ct_shape_str(CT_SHAPE(idx), s1, sizeof s1),
                     what, ct_shape_str(CT_SHAPE(t), s2, sizeof s2));
  for (int d = 0; d < t->ndim; d++)
    if (d != dim && idx->shape[d] > t->shape[d])
      return ct_errorf("the index %s is larger than the %s %s at dim %d (only dim %d may differ freely)",
                       ct_shape_str(CT_SHAPE(idx), s1, sizeof s1), what, ct_shape_str(CT_SHAPE(t), s2, sizeof s2),
                       d + 1, dim + 1);
  return 0;
}
static int gather_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  if (gather_check("input", in[0], in[1], (int)a->i[0])) return -1;
  m->ndim = in[1]->ndim;
  memcpy(m->shape, in[1]->shape, sizeof m->shape);
  m->dtype = in[0]->dtype;
  return 0;
}

/* Walks idx's shape in row-major order; calls back with the linear position, the index value's
   0-based position along dim, and the element offset into t (whose strides are given). */
typedef struct {
  const ct_tensor *idx;
  const char *ip; /* contiguous index data */
  int dim;
  const int64_t *tstride;
  int64_t size; /* t's size along dim */
} walk;

#define GATHER_WALK(W, OP_NAME, BODY)                                                                      \
  do {                                                                                                     \
    int nd_ = (W).idx->ndim;                                                                               \
    int64_t pos_[CT_MAX_DIMS] = {0}, toff_ = 0, total_ = ct_numel((W).idx);                               \
    size_t isz_ = ct_dtype_size((W).idx->dtype);                                                          \
    for (int64_t lin = 0; lin < total_; lin++) {                                                           \
      int64_t v_ = ct_load_index((W).idx->dtype, (W).ip + (size_t)lin * isz_), k_ = ct_norm_index(v_, (W).size); \
      if (k_ < 0) {                                                                                        \
        rc = range_error(OP_NAME, v_, (W).dim, (W).size);                                                  \
        break;                                                                                             \
      }                                                                                                    \
      int64_t toff = toff_ + k_ * (W).tstride[(W).dim];                                                    \
      BODY;                                                                                                \
      for (int d_ = nd_ - 1; d_ >= 0; d_--) {                                                              \
        int64_t st_ = d_ == (W).dim ? 0 : (W).tstride[d_];                                                 \
        if (++pos_[d_] < (W).idx->shape[d_]) {                                                             \
          toff_ += st_;                                                                                    \
          break;                                                                                           \
        }                                                                                                  \
        toff_ -= st_ * (pos_[d_] - 1);                                                                     \
        pos_[d_] = 0;                                                                                      \
      }                                                                                                    \
    }                                                                                                      \
  } while (0)

static int gather_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *t = in[0];
  ct_tensor *tmp;
  walk w = {in[1], NULL, (int)a->i[0], t->stride, t->shape[a->i[0]]};
  if (!(w.ip = ct_cpu_contig_data(in[1], &tmp))) return -1;
  size_t isz = ct_dtype_size(t->dtype);
  const char *tb = ct_data_ptr(t);
  char *o = ct_data_ptr(out);
  int rc = 0;
  GATHER_WALK(w, "gather", copy_elem(o + (size_t)lin * isz, tb + toff * (int64_t)isz, isz));
  ct_release(tmp);
  return rc;
}
/* d/da = scatter_add of g into zeros of a's shape */
static int gather_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return adjoint_into_zeros(CT_OP_scatter_add, n, g, gin);
}
const ct_opdef ct_op_gather = {"gather", 2, CT_OPF_NONDIFF_IN1, gather_shape, gather_cpu, gather_backward,
                               gather_cost, "dx = scatter_add(zeros, idx, g)", NULL};

/* ---- scatter_add(src, idx): zeros of attrs.shape, out[p with p[dim] = idx[p]] += src[p] ------ */

static int scatter_add_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *src = in[0], *idx = in[1];
  char s1[160], s2[160];
  if (src->dtype != CT_F32 && src->dtype != CT_F64)
    return ct_errorf("source must be f32 or f64, got %s", ct_dtype_name(src->dtype));
  if (src->ndim != idx->ndim || memcmp(src->shape, idx->shape, sizeof(int64_t) * (size_t)src->ndim))
    return ct_errorf("source %s and index %s must have the same shape", ct_shape_str(CT_SHAPE(src), s1, sizeof s1),
                     ct_shape_str(CT_SHAPE(idx), s2, sizeof s2));
  ct_tensor shaped = {0};
  shaped.ndim = a->ndim;
  memcpy(shaped.shape, a->shape, sizeof shaped.shape);
  if (gather_check("result", &shaped, idx, (int)a->i[0])) return -1;
  m->ndim = a->ndim;
  memcpy(m->shape, a->shape, sizeof m->shape);
  m->dtype = src->dtype;
  return 0;
}
static int scatter_add_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  ct_tensor *tmp_i, *tmp_s;
  walk w = {in[1], NULL, (int)a->i[0], out->stride, out->shape[a->i[0]]};
  if (!(w.ip = ct_cpu_contig_data(in[1], &tmp_i))) return -1;
  const void *src = ct_cpu_contig_data(in[0], &tmp_s);
  if (!src) return ct_release(tmp_i), -1;
  memset(ct_data_ptr(out), 0, (size_t)ct_numel(out) * ct_dtype_size(out->dtype));
  int rc = 0;
  if (out->dtype == CT_F32) {
    float *o = ct_data_ptr(out);
    const float *s = src;
    GATHER_WALK(w, "scatter_add", o[toff] += s[lin]);
  } else {
    double *o = ct_data_ptr(out);
    const double *s = src;
    GATHER_WALK(w, "scatter_add", o[toff] += s[lin]);
  }
  ct_release(tmp_i), ct_release(tmp_s);
  return rc;
}
/* d/dsrc = gather of g */
static int scatter_add_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *in[2] = {g, n->in[1]};
  return (gin[0] = ct_op_run(CT_OP_gather, in, 2, &n->attrs)) ? 0 : -1;
}
const ct_opdef ct_op_scatter_add = {"scatter_add", 2, CT_OPF_NONDIFF_IN1, scatter_add_shape, scatter_add_cpu,
                                    scatter_add_backward, scatter_cost, NULL, NULL};

/* ---- cat(t1, ..., tn) along attrs.i[0] ------------------------------------------------------ */

static int cat_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  int dim = (int)a->i[0];
  const ct_tensor *t0 = in[0];
  char s1[160], s2[160];
  if (nin < 1) return ct_errorf("needs at least one tensor");
  if (t0->ndim == 0) return ct_errorf("input 1 is 0-dim; only tensors with at least one dim can be concatenated");
  if (dim < 0 || dim >= t0->ndim) return ct_errorf("dim %d out of range for %d dims", dim + 1, t0->ndim);
  int64_t total = 0;
  for (int i = 0; i < nin; i++) {
    const ct_tensor *t = in[i];
    if (t->dtype != t0->dtype)
      return ct_errorf("input %d has dtype %s but input 1 has %s (convert with :to(dtype) first)", i + 1,
                       ct_dtype_name(t->dtype), ct_dtype_name(t0->dtype));
    bool ok = t->ndim == t0->ndim;
    for (int d = 0; ok && d < t0->ndim; d++)
      if (d != dim && t->shape[d] != t0->shape[d]) ok = false;
    if (!ok)
      return ct_errorf("input %d has shape %s but input 1 has shape %s; shapes must match except along dim %d", i + 1,
                       ct_shape_str(CT_SHAPE(t), s1, sizeof s1), ct_shape_str(CT_SHAPE(t0), s2, sizeof s2), dim + 1);
    if (!ct_size_add(total, t->shape[dim], &total))
      return ct_errorf("size too large: dim %d sums to more than 2^63 over the inputs (input %d has shape %s)", dim + 1,
                       i + 1, ct_shape_str(CT_SHAPE(t), s1, sizeof s1));
  }
  m->ndim = t0->ndim;
  memcpy(m->shape, t0->shape, sizeof m->shape);
  m->shape[dim] = total;
  m->dtype = t0->dtype;
  return 0;
}
int ct_cat_into(ct_tensor *out, ct_tensor *const *in, int nin, int dim,
                int (*copy)(ct_tensor *dst, const ct_tensor *src)) {
  ct_meta m = {.ndim = out->ndim, .dtype = out->dtype};
  memcpy(m.shape, out->shape, sizeof m.shape);
  memcpy(m.stride, out->stride, sizeof m.stride);
  int64_t start = 0;
  for (int i = 0; i < nin; i++) {
    m.shape[dim] = in[i]->shape[dim];
    m.offset = out->offset + start * out->stride[dim];
    start += in[i]->shape[dim];
    if (!m.shape[dim]) continue;
    ct_tensor *win = ct_tensor_alias(out, &m);
    if (!win) return -1;
    int rc = copy(win, in[i]);
    ct_release(win);
    if (rc) return rc;
  }
  return 0;
}
static int cat_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  return ct_cat_into(out, in, nin, (int)a->i[0], ct_copy_cpu);
}
/* d/dt_i = the slice of g where t_i landed */
static int cat_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  int dim = (int)n->attrs.i[0];
  int64_t start = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t len = n->in[i]->shape[dim];
    if (ct_node_needs_grad(n, i) && !(gin[i] = ct_narrow(g, dim, start, len))) return -1;
    start += len;
  }
  return 0;
}
static void cat_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)in, (void)nin, (void)a;
  *f = 0;
  *b = 2.0 * (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
}
const ct_opdef ct_op_cat = {"cat", -1, 0, cat_shape, cat_cpu, cat_backward, cat_cost, NULL, NULL};

/* ---- public entry points -------------------------------------------------------------------- */

static ct_tensor *index_op(ct_op op, const char *name, ct_tensor *a, int dim, ct_tensor *idx) {
  if (!a || !idx) return ct_errorf("%s: missing %s", name, a ? "index" : "input"), NULL;
  if (a->ndim == 0) return ct_errorf("%s: cannot index a 0-dim tensor", name), NULL;
  int d;
  if (ct_norm_dim(name, dim, a, a->ndim, &d)) return NULL;
  if (check_index_tensor(idx)) return ct_errorf("%s: %s", name, ct_last_error()), NULL;
  ct_attrs at = {0};
  at.i[0] = d;
  ct_tensor *in[2] = {a, idx};
  return ct_op_run(op, in, 2, &at);
}
ct_tensor *ct_index_select(ct_tensor *a, int dim, ct_tensor *idx) {
  return index_op(CT_OP_index_select, "index_select", a, dim, idx);
}
ct_tensor *ct_gather(ct_tensor *a, int dim, ct_tensor *idx) { return index_op(CT_OP_gather, "gather", a, dim, idx); }

ct_tensor *ct_cat(ct_tensor *const *ts, int n, int dim) {
  if (n < 1) return ct_errorf("cat: needs at least one tensor"), NULL;
  for (int i = 0; i < n; i++)
    if (!ts[i]) return ct_errorf("cat: input %d is missing", i + 1), NULL;
  if (ts[0]->ndim == 0)
    return ct_errorf("cat: input 1 is 0-dim; only tensors with at least one dim can be concatenated"), NULL;
  int d;
  if (ct_norm_dim("cat", dim, ts[0], ts[0]->ndim, &d)) return NULL;
  ct_attrs at = {0};
  at.i[0] = d;
  return ct_op_run(CT_OP_cat, ts, n, &at);
}

ct_tensor *ct_stack(ct_tensor *const *ts, int n, int dim) {
  if (n < 1) return ct_errorf("stack: needs at least one tensor"), NULL;
  for (int i = 0; i < n; i++) {
    if (!ts[i]) return ct_errorf("stack: input %d is missing", i + 1), NULL;
    if (ts[i]->ndim != ts[0]->ndim || memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)ts[0]->ndim)) {
      char s1[160], s2[160];
      return ct_errorf("stack: input %d has shape %s but input 1 has shape %s; stacked tensors must have equal shapes",
                       i + 1, ct_shape_str(CT_SHAPE(ts[i]), s1, sizeof s1), ct_shape_str(CT_SHAPE(ts[0]), s2, sizeof s2)),
             NULL;
    }
  }
  if (ts[0]->ndim >= CT_MAX_DIMS) return ct_errorf("stack: inputs already have %d dims", CT_MAX_DIMS), NULL;
  int d;
  if (ct_norm_dim("stack", dim, ts[0], ts[0]->ndim + 1, &d)) return NULL;
  ct_tensor *small[16], **u = n <= 16 ? small : calloc((size_t)n, sizeof *u);
  if (!u) return ct_errorf("stack: out of memory"), NULL;
  int made = 0;
  ct_tensor *r = NULL;
  for (; made < n; made++)
    if (!(u[made] = ct_unsqueeze(ts[made], d))) break;
  if (made == n) {
    ct_attrs at = {0};
    at.i[0] = d;
    r = ct_op_run(CT_OP_cat, u, n, &at);
    if (!r) ct_errorf("stack: %s", ct_last_error());
  }
  for (int i = 0; i < made; i++) ct_release(u[i]);
  if (u != small) free(u);
  return r;
}

ct_tensor *ct_embedding(ct_tensor *weight, ct_tensor *idx) {
  char s[200];
  if (!weight || !idx) return ct_errorf("embedding: missing %s", weight ? "indices" : "weight"), NULL;
  if (weight->ndim != 2)
    return ct_errorf("embedding: weight must be [V,D], got %s", ct_describe(weight, s, sizeof s)), NULL;
  if (check_index_tensor(idx)) return ct_errorf("embedding: %s", ct_last_error()), NULL;
  if (idx->ndim >= CT_MAX_DIMS) return ct_errorf("embedding: indices have %d dims, at most %d", idx->ndim, CT_MAX_DIMS - 1), NULL;
  int64_t n = ct_numel(idx), shape[CT_MAX_DIMS];
  memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
  shape[idx->ndim] = weight->shape[1];
  ct_tensor *flat = ct_reshape(idx, &n, 1);
  ct_tensor *rows = flat ? ct_index_select(weight, 0, flat) : NULL;
  ct_release(flat);
  ct_tensor *r = rows ? ct_reshape(rows, shape, idx->ndim + 1) : NULL;
  ct_release(rows);
  if (!r) ct_errorf("embedding: %s", ct_last_error());
  return r;
}
