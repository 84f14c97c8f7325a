/* ops_view.c: views that share storage (view, expand, transpose, permute, narrow, select), their
 * adjoint narrow_scatter, and the copying conversions (copy across devices, to_dtype).
 * A view op's shape rule computes strides and offset; the dispatcher aliases input 0's storage. */
#include <stdio.h>
#include <string.h>

#include "cpu/iter.h"
#include "cpu/copy.h"
#include "ops/optable.h"
#include "tensor/checked.h"

/* ---- view: new shape over the same elements, strides computed as torch's computeStride ---- */
static int view_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0];
  int64_t n;
  char s1[160], s2[160];
  if (!ct_shape_numel(a->shape, a->ndim, &n))
    return ct_errorf("view: size too large: shape %s has more than 2^63 elements (input shape %s)",
                     ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
  if (n != ct_numel(t))
    return ct_errorf("view: shape %s is invalid for %lld elements (input shape %s)",
                     ct_shape_str(a->shape, a->ndim, s1, sizeof s1), (long long)ct_numel(t),
                     ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
  m->ndim = a->ndim;
  memcpy(m->shape, a->shape, sizeof m->shape);
  m->offset = t->offset;
  m->dtype = t->dtype;
  if (n == 0 || t->ndim == 0) {
    ct_contiguous_strides(m->shape, m->ndim, m->stride);
    return 0;
  }
  /* walk old dims from the back in chunks that are contiguous among themselves */
  int vd = a->ndim - 1;
  int64_t chunk = 1, base_stride = t->stride[t->ndim - 1];
  for (int td = t->ndim - 1; td >= 0; td--) {
    chunk *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != chunk * base_stride)) {
      int64_t acc = 1;
      while (vd >= 0 && (acc < chunk || a->shape[vd] == 1)) {
        m->stride[vd] = acc * base_stride;
        acc *= a->shape[vd];
        vd--;
      }
      if (acc != chunk)
        return ct_errorf("view: shape %s is not compatible with the input's strides (input %s is not "
                         "contiguous); use reshape, or contiguous() first",
                         ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
      if (td > 0) {
        chunk = 1;
        base_stride = t->stride[td - 1];
      }
    }
  }
  while (vd >= 0) m->stride[vd--] = 1; /* trailing size-1 dims */
  return 0;
}
static int view_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_reshape(g, CT_SHAPE(n->in[0]))) ? 0 : -1;
}
static void view_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)in, (void)nin, (void)out, (void)a;
  *f = *b = 0;
}
const ct_opdef ct_op_view = {"view", 1, CT_OPF_VIEW, view_shape, NULL, view_backward, view_cost, "dx = reshape g", NULL};

/* ---- expand: size-1 dims broadcast with stride 0 ------------------------------------------ */
static int expand_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0];
  char s1[160], s2[160];
  if (a->ndim < t->ndim)
    return ct_errorf("expand: target %s has fewer dims than the input %s", ct_shape_str(a->shape, a->ndim, s1, sizeof s1),
                     ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
  m->ndim = a->ndim;
  m->offset = t->offset;
  m->dtype = t->dtype;
  int off = a->ndim - t->ndim;
  for (int d = 0; d < a->ndim; d++) {
    int td = d - off;
    int64_t want = a->shape[d];
    if (td < 0) {
      if (want < 0) return ct_errorf("expand: -1 is not allowed for a new leading dim %d", d + 1);
      m->shape[d] = want;
      m->stride[d] = 0;
    } else if (want == -1 || want == t->shape[td]) {
      m->shape[d] = t->shape[td];
      m->stride[d] = t->stride[td];
    } else if (t->shape[td] == 1) {
      m->shape[d] = want;
      m->stride[d] = 0;
    } else {
      return ct_errorf("expand: cannot expand size %lld to %lld at dim %d (only size-1 dims expand); "
                       "input %s, target %s", (long long)t->shape[td], (long long)want, d + 1,
                       ct_shape_str(t->shape, t->ndim, s2, sizeof s2), ct_shape_str(a->shape, a->ndim, s1, sizeof s1));
    }
  }
  int64_t n;
  if (!ct_shape_numel(m->shape, m->ndim, &n))
    return ct_errorf("expand: size too large or negative: target %s of input %s", ct_shape_str(a->shape, a->ndim, s1, sizeof s1),
                     ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
  return 0;
}
static int expand_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_sum_to_shape(g, CT_SHAPE(n->in[0]))) ? 0 : -1;
}
const ct_opdef ct_op_expand = {"expand", 1, CT_OPF_VIEW, expand_shape, NULL, expand_backward, view_cost, "dx = sum g over the expanded dims", NULL};

/* ---- transpose and permute ------------------------------------------------------------------- */
static int transpose_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_meta_of(in[0], m);
  int d0 = (int)a->i[0], d1 = (int)a->i[1];
  int64_t s = m->shape[d0], st = m->stride[d0];
  m->shape[d0] = m->shape[d1], m->stride[d0] = m->stride[d1];
  m->shape[d1] = s, m->stride[d1] = st;
  return 0;
}
static int transpose_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_transpose(g, (int)n->attrs.i[0], (int)n->attrs.i[1])) ? 0 : -1;
}
const ct_opdef ct_op_transpose = {"transpose", 1, CT_OPF_VIEW, transpose_shape, NULL, transpose_backward, view_cost, "dx = g^T", NULL};

static int permute_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0];
  m->ndim = t->ndim;
  m->offset = t->offset;
  m->dtype = t->dtype;
  for (int d = 0; d < t->ndim; d++) {
    m->shape[d] = t->shape[a->shape[d]];
    m->stride[d] = t->stride[a->shape[d]];
  }
  return 0;
}
static int permute_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  int inv[CT_MAX_DIMS];
  for (int d = 0; d < n->attrs.ndim; d++) inv[n->attrs.shape[d]] = d;
  return (gin[0] = ct_permute(g, inv, n->attrs.ndim)) ? 0 : -1;
}
const ct_opdef ct_op_permute = {"permute", 1, CT_OPF_VIEW, permute_shape, NULL, permute_backward, view_cost, "dx = permute g back", NULL};

/* ---- narrow and select; narrow_scatter is their adjoint ------------------------------------ */
static int narrow_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_meta_of(in[0], m);
  int d = (int)a->i[0];
  m->shape[d] = a->i[2];
  m->offset += a->i[1] * m->stride[d];
  return 0;
}
static int narrow_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_attrs a = {0};
  memcpy(a.shape, n->in[0]->shape, sizeof a.shape);
  a.ndim = n->in[0]->ndim;
  a.i[0] = n->attrs.i[0];
  a.i[1] = n->attrs.i[1];
  a.dtype = g->dtype;
  return (gin[0] = ct_op_run(CT_OP_narrow_scatter, &g, 1, &a)) ? 0 : -1;
}
const ct_opdef ct_op_narrow = {"narrow", 1, CT_OPF_VIEW, narrow_shape, NULL, narrow_backward, view_cost, "dx = pad g with zeros", NULL};

static int select_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *t = in[0];
  int d = (int)a->i[0];
  m->dtype = t->dtype;
  m->offset = t->offset + a->i[1] * t->stride[d];
  m->ndim = 0;
  for (int k = 0; k < t->ndim; k++) {
    if (k == d) continue;
    m->shape[m->ndim] = t->shape[k];
    m->stride[m->ndim++] = t->stride[k];
  }
  return 0;
}
static int select_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *u = ct_unsqueeze(g, (int)n->attrs.i[0]);
  if (!u) return -1;
  ct_attrs a = {0};
  memcpy(a.shape, n->in[0]->shape, sizeof a.shape);
  a.ndim = n->in[0]->ndim;
  a.i[0] = n->attrs.i[0];
  a.i[1] = n->attrs.i[1];
  gin[0] = ct_op_run(CT_OP_narrow_scatter, &u, 1, &a);
  ct_release(u);
  return gin[0] ? 0 : -1;
}
const ct_opdef ct_op_select = {"select", 1, CT_OPF_VIEW, select_shape, NULL, select_backward, view_cost, "dx = g into a zero slice", NULL};

/* narrow_scatter(g): zeros of attrs.shape with g written at [start, start+len) along dim i[0]. */
static int narrow_scatter_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  m->ndim = a->ndim;
  memcpy(m->shape, a->shape, sizeof m->shape);
  m->dtype = in[0]->dtype;
  return 0;
}
static int narrow_scatter_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  memset(out->storage->data, 0, out->storage->nbytes);
  ct_meta m;
  ct_meta_of(out, &m);
  int d = (int)a->i[0];
  m.shape[d] = in[0]->shape[d];
  m.offset += a->i[1] * m.stride[d];
  ct_tensor *win = ct_tensor_alias(out, &m);
  if (!win) return -1;
  int rc = ct_copy_cpu(win, in[0]);
  ct_release(win);
  return rc;
}
static int narrow_scatter_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  int d = (int)n->attrs.i[0];
  return (gin[0] = ct_narrow(g, d, n->attrs.i[1], n->in[0]->shape[d])) ? 0 : -1;
}
const ct_opdef ct_op_narrow_scatter = {"narrow_scatter", 1, 0, narrow_scatter_shape, narrow_scatter_cpu,
                                       narrow_scatter_backward, NULL, NULL, NULL};

/* ---- copy (clone, or transfer to attrs' device) and to_dtype -------------------------------- */
static int copy_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  ct_meta_of(in[0], m);
  return 0;
}
static int copy_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  ct_tensor *src = in[0];
  if (src->storage->device.type == CT_CPU) return ct_copy_cpu(out, src);
  /* device -> host: the device side makes it contiguous, then one transfer */
  ct_tensor *c = ct_contiguous(src);
  if (!c) return -1;
  ct_device d = c->storage->device;
  int rc = ct_devops[d.type].copy_d2h(out->storage->data, ct_data_ptr(c), out->storage->nbytes, d.index);
  ct_release(c);
  return rc;
}
static int copy_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_to_device(g, n->in[0]->storage->device)) ? 0 : -1;
}
const ct_opdef ct_op_copy = {"copy", 1, 0, copy_shape, copy_cpu, copy_backward, NULL, "dx = g back on the input's device", NULL};

static int to_dtype_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_meta_of(in[0], m);
  m->dtype = a->dtype;
  return 0;
}
static int to_dtype_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  return ct_copy_cpu(out, in[0]);
}
static int to_dtype_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_to_dtype(g, n->in[0]->dtype)) ? 0 : -1;
}
const ct_opdef ct_op_to_dtype = {"to_dtype", 1, 0, to_dtype_shape, to_dtype_cpu, to_dtype_backward, NULL, "dx = g in the input's dtype", NULL};

/* ---- public entry points ----------------------------------------------------------------------- */

static int resolve_shape(const char *op, const ct_tensor *t, const int64_t *shape, int ndim, int64_t *out) {
  if (ndim < 0 || ndim > CT_MAX_DIMS) return ct_errorf("%s: %d dims requested, at most %d supported", op, ndim, CT_MAX_DIMS);
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    out[d] = shape[d];
    if (shape[d] == -1) {
      if (infer >= 0) return ct_errorf("%s: only one dimension can be -1", op);
      infer = d;
    } else if (shape[d] < 0) {
      return ct_errorf("%s: invalid size %lld at dim %d", op, (long long)shape[d], d + 1);
    } else if (!ct_size_mul(known, shape[d], &known)) {
      char s1[160], s2[160];
      return ct_errorf("%s: size too large: shape %s has more than 2^63 elements (input shape %s)", op,
                       ct_shape_str(shape, ndim, s1, sizeof s1), ct_shape_str(t->shape, t->ndim, s2, sizeof s2));
    }
  }
  if (infer >= 0) {
    int64_t n = ct_numel(t);
    char s1[160], s2[160];
    if (known == 0 || n % known)
      return ct_errorf("%s: shape %s is invalid for input of shape %s (%lld elements)", op,
                       ct_shape_str(shape, ndim, s1, sizeof s1), ct_shape_str(t->shape, t->ndim, s2, sizeof s2),
                       (long long)n);
    out[infer] = n / known;
  }
  return 0;
}

ct_tensor *ct_view(ct_tensor *t, const int64_t *shape, int ndim) {
  ct_attrs a = {0};
  if (resolve_shape("view", t, shape, ndim, a.shape)) return NULL;
  a.ndim = ndim;
  return ct_op_run(CT_OP_view, &t, 1, &a);
}

ct_tensor *ct_reshape(ct_tensor *t, const int64_t *shape, int ndim) {
  ct_attrs a = {0};
  if (resolve_shape("reshape", t, shape, ndim, a.shape)) return NULL;
  a.ndim = ndim;
  ct_meta m;
  if (view_shape(&t, 1, &a, &m) == 0) return ct_op_run(CT_OP_view, &t, 1, &a);
  int64_t n;
  if (!ct_shape_numel(a.shape, ndim, &n) || n != ct_numel(t)) return ct_op_run(CT_OP_view, &t, 1, &a); /* reports the size error */
  ct_tensor *c = ct_contiguous(t);
  if (!c) return NULL;
  ct_tensor *r = ct_op_run(CT_OP_view, &c, 1, &a);
  ct_release(c);
  return r;
}

ct_tensor *ct_transpose(ct_tensor *t, int d0, int d1) {
  ct_attrs a = {0};
  int x, y;
  if (ct_norm_dim("transpose", d0, t, t->ndim, &x) || ct_norm_dim("transpose", d1, t, t->ndim, &y)) return NULL;
  if (t->ndim == 0) return ct_retain(t);
  a.i[0] = x;
  a.i[1] = y;
  return ct_op_run(CT_OP_transpose, &t, 1, &a);
}

ct_tensor *ct_permute(ct_tensor *t, const int *dims, int ndim) {
  ct_attrs a = {0};
  if (ndim != t->ndim) {
    char s[160];
    return ct_errorf("permute: got %d dims for a tensor of shape %s (%d dims)", ndim,
                     ct_shape_str(t->shape, t->ndim, s, sizeof s), t->ndim), NULL;
  }
  bool seen[CT_MAX_DIMS] = {0};
  for (int d = 0; d < ndim; d++) {
    int x;
    if (ct_norm_dim("permute", dims[d], t, ndim, &x)) return NULL;
    if (seen[x]) return ct_errorf("permute: dim %d appears twice", x + 1), NULL;
    seen[x] = true;
    a.shape[d] = x;
  }
  a.ndim = ndim;
  return ct_op_run(CT_OP_permute, &t, 1, &a);
}

ct_tensor *ct_narrow(ct_tensor *t, int dim, int64_t start, int64_t len) {
  int d;
  if (ct_norm_dim("narrow", dim, t, t->ndim, &d)) return NULL;
  if (t->ndim == 0) return ct_errorf("narrow: cannot narrow a 0-dim tensor"), NULL;
  if (start < 0 || len < 0 || start > t->shape[d] || len > t->shape[d] - start) { /* no start + len: it may overflow */
    char s[160];
    return ct_errorf("narrow: range start %llu, length %lld is out of bounds for dim %d of size %lld (shape %s)",
                     (unsigned long long)start + 1, (long long)len, d + 1, (long long)t->shape[d],
                     ct_shape_str(t->shape, t->ndim, s, sizeof s)), NULL;
  }
  ct_attrs a = {0};
  a.i[0] = d, a.i[1] = start, a.i[2] = len;
  return ct_op_run(CT_OP_narrow, &t, 1, &a);
}

ct_tensor *ct_select(ct_tensor *t, int dim, int64_t index) {
  int d;
  if (t->ndim == 0) return ct_errorf("select: cannot index a 0-dim tensor"), NULL;
  if (ct_norm_dim("select", dim, t, t->ndim, &d)) return NULL;
  if (index < -t->shape[d] || index >= t->shape[d]) {
    char s[160];
    return ct_errorf("select: index %s%llu is out of range for dim %d of size %lld (shape %s)", index < 0 ? "-" : "",
                     index >= 0 ? (unsigned long long)index + 1 : 0ull - (unsigned long long)index, d + 1, (long long)t->shape[d],
                     ct_shape_str(t->shape, t->ndim, s, sizeof s)), NULL;
  }
  ct_attrs a = {0};
  a.i[0] = d, a.i[1] = index < 0 ? index + t->shape[d] : index;
  return ct_op_run(CT_OP_select, &t, 1, &a);
}

ct_tensor *ct_expand(ct_tensor *t, const int64_t *shape, int ndim) {
  ct_attrs a = {0};
  if (ndim > CT_MAX_DIMS) return ct_errorf("expand: at most %d dims", CT_MAX_DIMS), NULL;
  memcpy(a.shape, shape, sizeof(int64_t) * (size_t)ndim);
  a.ndim = ndim;
  return ct_op_run(CT_OP_expand, &t, 1, &a);
}

ct_tensor *ct_unsqueeze(ct_tensor *t, int dim) {
  int d;
  if (t->ndim >= CT_MAX_DIMS) return ct_errorf("unsqueeze: tensor already has %d dims", CT_MAX_DIMS), NULL;
  if (ct_norm_dim("unsqueeze", dim, t, t->ndim + 1, &d)) return NULL;
  int64_t shape[CT_MAX_DIMS];
  for (int k = 0, j = 0; k <= t->ndim; k++) shape[k] = k == d ? 1 : t->shape[j++];
  return ct_view(t, shape, t->ndim + 1);
}

ct_tensor *ct_squeeze(ct_tensor *t, int dim) {
  int64_t shape[CT_MAX_DIMS];
  int n = 0, d = -1;
  if (dim != CT_ALL_DIMS && ct_norm_dim("squeeze", dim, t, t->ndim, &d)) return NULL;
  for (int k = 0; k < t->ndim; k++)
    if (!(t->shape[k] == 1 && (dim == CT_ALL_DIMS || k == d))) shape[n++] = t->shape[k];
  return ct_view(t, shape, n);
}

ct_tensor *ct_flatten(ct_tensor *t, int start_dim, int end_dim) {
  int s, e;
  if (t->ndim == 0) {
    int64_t one = 1;
    return ct_reshape(t, &one, 1);
  }
  if (ct_norm_dim("flatten", start_dim, t, t->ndim, &s) || ct_norm_dim("flatten", end_dim, t, t->ndim, &e)) return NULL;
  if (s > e) return ct_errorf("flatten: start dim %d comes after end dim %d", s + 1, e + 1), NULL;
  int64_t shape[CT_MAX_DIMS];
  int n = 0;
  for (int k = 0; k < s; k++) shape[n++] = t->shape[k];
  int64_t p = 1;
  for (int k = s; k <= e; k++) p = ct_wrap_mul(p, t->shape[k]); /* a permuted 0 dim may follow huge ones */
  shape[n++] = p;
  for (int k = e + 1; k < t->ndim; k++) shape[n++] = t->shape[k];
  return ct_reshape(t, shape, n);
}

ct_tensor *ct_clone(ct_tensor *t) {
  ct_attrs a = {0};
  a.i[0] = t->storage->device.type;
  a.i[1] = t->storage->device.index;
  return ct_op_run(CT_OP_copy, &t, 1, &a);
}

ct_tensor *ct_contiguous(ct_tensor *t) { return ct_is_contiguous(t) ? ct_retain(t) : ct_clone(t); }

ct_tensor *ct_to_dtype(ct_tensor *t, ct_dtype dt) {
  if (t->dtype == dt) return ct_retain(t);
  ct_attrs a = {0};
  a.dtype = dt;
  return ct_op_run(CT_OP_to_dtype, &t, 1, &a);
}
