/* tensor.c: tensor headers and views over refcounted storages; creation and element access.
 * Invariant: a tensor owns one reference to its storage, its grad and its grad_fn node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/iter.h"
#include "tensor/checked.h"
#include "obs/events.h"
#include "ops/optable.h"

static uint64_t next_tensor_id = 1;

ct_tensor *ct_retain(ct_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void ct_release(ct_tensor *t) {
  if (!t || --t->refcount > 0) return;
  ct_release(t->grad);
  if (t->grad_fn) {
    if (t->grad_fn->out == t) t->grad_fn->out = NULL; /* the node's weak pointer must not dangle */
    ct_node_release(t->grad_fn);
  }
  ct_storage_release(t->storage);
  free(t->name);
  ct_mem_count_tensor(-1);
  ct_small_free(t, sizeof *t);
}

int ct_set_name(ct_tensor *t, const char *name) {
  char *copy = name ? strdup(name) : NULL;
  if (name && !copy) return ct_errorf("out of memory naming a tensor");
  free(t->name);
  t->name = copy;
  if (ct_events_on() && copy) ct_event_name_storage(t->storage->id, copy);
  return 0;
}

void ct_contiguous_strides(const int64_t *shape, int ndim, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s = ct_wrap_mul(s, shape[d]); /* callers checked the numel; a 0 dim may follow huge ones */
  }
}

static ct_tensor *tensor_header(const ct_meta *m, ct_storage *s) {
  ct_tensor *t = ct_small_alloc(sizeof *t); /* recycled: headers die in bursts under Lua's GC */
  if (!t) return ct_errorf("out of host memory allocating a tensor header"), NULL;
  memset(t, 0, sizeof *t);
  t->refcount = 1;
  t->storage = s;
  t->dtype = m->dtype;
  t->ndim = m->ndim;
  memcpy(t->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
  memcpy(t->stride, m->stride, sizeof(int64_t) * (size_t)m->ndim);
  t->offset = m->offset;
  t->id = next_tensor_id++;
  ct_mem_count_tensor(1);
  return t;
}

ct_tensor *ct_tensor_new_meta(const ct_meta *m, ct_device dev) {
  ct_meta c = *m;
  int64_t n, nbytes;
  if (!ct_shape_numel(c.shape, c.ndim, &n) || !ct_size_mul(n, (int64_t)ct_dtype_size(c.dtype), &nbytes)) {
    char sh[160];
    return ct_errorf("size too large: shape %s of %s needs more than 2^63 bytes",
                     ct_shape_str(c.shape, c.ndim, sh, sizeof sh), ct_dtype_name(c.dtype)), NULL;
  }
  if (dev.type == CT_CPU && ct_check_alloc(NULL, c.shape, c.ndim, c.dtype, nbytes)) return NULL;
  ct_contiguous_strides(c.shape, c.ndim, c.stride);
  c.offset = 0;
  ct_storage *s = ct_storage_new((size_t)nbytes, dev);
  if (!s) return NULL;
  ct_tensor *t = tensor_header(&c, s);
  if (!t) ct_storage_release(s);
  return t;
}

ct_tensor *ct_tensor_alias(ct_tensor *base, const ct_meta *m) {
  base->storage->refcount++;
  ct_tensor *t = tensor_header(m, base->storage);
  if (!t) ct_storage_release(base->storage);
  return t;
}

int ct_check_size(const char *op, const int64_t *shape, int ndim, ct_dtype dt) {
  if (ndim < 0 || ndim > CT_MAX_DIMS) return ct_errorf("%s: %d dims requested, at most %d supported", op, ndim, CT_MAX_DIMS);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0) {
      char sh[160];
      return ct_errorf("%s: negative size in shape %s", op, ct_shape_str(shape, ndim, sh, sizeof sh));
    }
  int64_t n, nbytes;
  if (!ct_shape_numel(shape, ndim, &n) || !ct_size_mul(n, (int64_t)ct_dtype_size(dt), &nbytes)) {
    char sh[160];
    return ct_errorf("%s: size too large: shape %s of %s needs more than 2^63 bytes", op,
                     ct_shape_str(shape, ndim, sh, sizeof sh), ct_dtype_name(dt));
  }
  return ct_check_alloc(op, shape, ndim, dt, nbytes);
}

ct_tensor *ct_empty(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (ct_check_size("empty", shape, ndim, dt)) return NULL;
  ct_meta m = {.ndim = ndim, .dtype = dt};
  if (ndim) memcpy(m.shape, shape, sizeof(int64_t) * (size_t)ndim);
  return ct_tensor_new_meta(&m, dev);
}

ct_tensor *ct_zeros(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, dev);
  if (t && ct_devops[dev.type].memset0(t->storage->data, t->storage->nbytes, dev.index)) {
    ct_release(t);
    return NULL;
  }
  return t;
}

ct_tensor *ct_full(const int64_t *shape, int ndim, double v, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, dev);
  if (t && ct_fill_(t, v)) {
    ct_release(t);
    return NULL;
  }
  return t;
}

ct_tensor *ct_scalar(double v, ct_dtype dt, ct_device dev) { return ct_full(NULL, 0, v, dt, dev); }

ct_tensor *ct_scalar_like(const ct_tensor *t, double v) {
  ct_dtype dt = t->dtype;
  if (!ct_dtype_is_float(dt) && (v != floor(v) || dt == CT_BOOL)) dt = CT_F32;
  if (dt == CT_BOOL) dt = CT_I64;
  return ct_scalar(v, dt, t->storage->device);
}

ct_tensor *ct_zeros_like(const ct_tensor *t) { return ct_zeros(t->shape, t->ndim, t->dtype, t->storage->device); }
ct_tensor *ct_ones_like(const ct_tensor *t) { return ct_full(t->shape, t->ndim, 1, t->dtype, t->storage->device); }

ct_tensor *ct_from_data(const void *data, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, dev);
  if (!t) return NULL;
  if (t->storage->nbytes && ct_devops[dev.type].copy_h2d(t->storage->data, data, t->storage->nbytes, dev.index)) {
    ct_release(t);
    return NULL;
  }
  return t;
}

ct_tensor *ct_from_doubles(const double *v, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, ct_cpu());
  if (!t) return NULL;
  int64_t n = ct_numel(t);
  size_t isz = ct_dtype_size(dt);
  for (int64_t i = 0; i < n; i++) ct_store_from_double(dt, (char *)t->storage->data + i * (int64_t)isz, v[i]);
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}

ct_tensor *ct_eye(int64_t n, ct_dtype dt, ct_device dev) {
  int64_t shape[2] = {n, n};
  ct_tensor *t = ct_zeros(shape, 2, dt, ct_cpu());
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++)
    ct_store_from_double(dt, (char *)t->storage->data + (i * n + i) * (int64_t)ct_dtype_size(dt), 1);
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}

ct_tensor *ct_arange(double start, double end, double step, ct_dtype dt, ct_device dev) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
    return ct_errorf("arange(%g, %g, %g): step must be nonzero and bounds finite", start, end, step), NULL;
  double cnt = ceil((end - start) / step);
  if (!(cnt < 0x1p63)) /* also NaN; casting a double past int64 is undefined */
    return ct_errorf("arange(%g, %g, %g): size too large: %g elements", start, end, step, cnt), NULL;
  int64_t n = cnt > 0 ? (int64_t)cnt : 0;
  /* the staging buffer is f64: check it as well as the result */
  if (ct_check_size("arange", &n, 1, dt) || ct_check_size("arange", &n, 1, CT_F64)) return NULL;
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) return ct_errorf("arange: out of memory"), NULL;
  for (int64_t i = 0; i < n; i++) v[i] = start + (double)i * step;
  ct_tensor *t = ct_from_doubles(v, &n, 1, dt, dev);
  free(v);
  return t;
}

ct_tensor *ct_linspace(double start, double end, int64_t n, ct_dtype dt, ct_device dev) {
  if (n < 0) return ct_errorf("linspace: number of points must be >= 0, got %lld", (long long)n), NULL;
  if (ct_check_size("linspace", &n, 1, dt) || ct_check_size("linspace", &n, 1, CT_F64)) return NULL;
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) return ct_errorf("linspace: out of memory"), NULL;
  for (int64_t i = 0; i < n; i++) v[i] = n == 1 ? start : start + (end - start) * (double)i / (double)(n - 1);
  ct_tensor *t = ct_from_doubles(v, &n, 1, dt, dev);
  free(v);
  return t;
}

int64_t ct_numel(const ct_tensor *t) {
  int64_t n = 1; /* every constructor and view checked this product (tensor/checked.h) */
  for (int d = 0; d < t->ndim; d++) n = ct_wrap_mul(n, t->shape[d]);
  return n;
}

bool ct_is_contiguous(const ct_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return false;
    s = ct_wrap_mul(s, t->shape[d]); /* only a 0 dim lets this pass 2^63, and it returns early below */
  }
  return true;
}

void *ct_data_ptr(const ct_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)ct_dtype_size(t->dtype);
}

int ct_norm_dim(const char *op, int dim, const ct_tensor *t, int ndim, int *out) {
  int n = ndim ? ndim : 1;
  if (dim < -n || dim >= n) {
    char sh[160] = "[]";
    if (t) ct_shape_str(t->shape, t->ndim, sh, sizeof sh);
    /* users count dims from 1: a non-negative dim is shown 1-based, a negative one as given */
    return ct_errorf("%s: dim %d out of range for a tensor of shape %s (valid dims: 1..%d, or -%d..-1)", op,
                     dim < 0 ? dim : dim + 1, sh, n, n);
  }
  *out = dim < 0 ? dim + n : dim;
  return 0;
}

void ct_broadcast_strides(const ct_tensor *t, const int64_t *shape, int ndim, int64_t *stride) {
  int off = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - off;
    stride[d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td];
  }
  (void)shape;
}

int ct_broadcast_shapes(const char *op, ct_tensor *const *in, int n, ct_meta *out) {
  int nd = 0;
  for (int k = 0; k < n; k++)
    if (in[k]->ndim > nd) nd = in[k]->ndim;
  out->ndim = nd;
  for (int d = 0; d < nd; d++) {
    int64_t s = 1;
    for (int k = 0; k < n; k++) {
      int td = d - (nd - in[k]->ndim);
      if (td < 0) continue;
      int64_t ks = in[k]->shape[td];
      if (ks == 1) continue;
      if (s != 1 && s != ks) {
        char a[160], b[160];
        return ct_errorf("%s%sshapes %s and %s cannot be broadcast together (dim %d: %lld vs %lld)", op ? op : "",
                         op ? ": " : "",
                         ct_shape_str(in[0]->shape, in[0]->ndim, a, sizeof a),
                         ct_shape_str(in[k]->shape, in[k]->ndim, b, sizeof b), d + 1, (long long)s,
                         (long long)ks);
      }
      s = ks;
    }
    out->shape[d] = s;
  }
  return 0;
}

/* ---- host access ------------------------------------------------------------------------ */

int ct_read_host(const ct_tensor *t, void *dst) {
  ct_tensor *c = ct_contiguous((ct_tensor *)t);
  if (!c) return -1;
  size_t n = (size_t)ct_numel(c) * ct_dtype_size(c->dtype);
  ct_device dev = c->storage->device;
  int rc = n ? ct_devops[dev.type].copy_d2h(dst, ct_data_ptr(c), n, dev.index) : 0;
  ct_release(c);
  return rc;
}

static int element_offset(const ct_tensor *t, const int64_t *idx, int64_t *off) {
  int64_t o = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (idx[d] < 0 || idx[d] >= t->shape[d]) {
      char sh[160];
      return ct_errorf("index %lld out of range for dim %d of size %lld (tensor %s)", (long long)idx[d] + 1, d + 1,
                       (long long)t->shape[d], ct_shape_str(t->shape, t->ndim, sh, sizeof sh));
    }
    o += idx[d] * t->stride[d];
  }
  *off = o;
  return 0;
}

int ct_get(const ct_tensor *t, const int64_t *idx, double *out) {
  int64_t o;
  if (element_offset(t, idx, &o)) return -1;
  size_t isz = ct_dtype_size(t->dtype);
  char buf[8];
  ct_device dev = t->storage->device;
  if (ct_devops[dev.type].copy_d2h(buf, (char *)t->storage->data + o * (int64_t)isz, isz, dev.index)) return -1;
  *out = ct_load_as_double(t->dtype, buf);
  return 0;
}

int ct_set(ct_tensor *t, const int64_t *idx, double v) {
  int64_t o;
  if (element_offset(t, idx, &o)) return -1;
  size_t isz = ct_dtype_size(t->dtype);
  char buf[8];
  ct_store_from_double(t->dtype, buf, v);
  ct_device dev = t->storage->device;
  return ct_devops[dev.type].copy_h2d((char *)t->storage->data + o * (int64_t)isz, buf, isz, dev.index);
}

int ct_item(const ct_tensor *t, double *out) {
  if (ct_numel(t) != 1) {
    char d[200];
    return ct_errorf("item: only one-element tensors can be converted to a number, got %s",
                     ct_describe(t, d, sizeof d));
  }
  int64_t idx[CT_MAX_DIMS] = {0};
  return ct_get(t, idx, out);
}

int ct_to_doubles(const ct_tensor *t, double *out) {
  int64_t n = ct_numel(t);
  size_t isz = ct_dtype_size(t->dtype);
  char *buf = malloc((size_t)n * isz + 1);
  if (!buf) return ct_errorf("out of memory reading a tensor");
  if (ct_read_host(t, buf)) {
    free(buf);
    return -1;
  }
  for (int64_t i = 0; i < n; i++) out[i] = ct_load_as_double(t->dtype, buf + i * (int64_t)isz);
  free(buf);
  return 0;
}

/* ---- copy and fill --------------------------------------------------------------------- */

typedef struct { ct_dtype dst, src; } conv_ctx;

static void copy_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  conv_ctx *c = vctx;
  if (c->dst == c->src) {
    size_t isz = ct_dtype_size(c->dst);
    if (s[0] == (int64_t)isz && s[1] == (int64_t)isz) {
      memcpy(p[0], p[1], (size_t)n * isz);
      return;
    }
    switch (isz) {
    case 8: for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 8); return;
    case 4: for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 4); return;
    case 2: for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 2); return;
    default: for (int64_t i = 0; i < n; i++) p[0][i * s[0]] = p[1][i * s[1]]; return;
    }
  }
  if (c->dst == CT_F32 && c->src == CT_F64) {
    for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = (float)*(double *)(p[1] + i * s[1]);
    return;
  }
  if (c->dst == CT_F64 && c->src == CT_F32) {
    for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) = *(float *)(p[1] + i * s[1]);
    return;
  }
  for (int64_t i = 0; i < n; i++) ct_store_from_double(c->dst, p[0] + i * s[0], ct_load_as_double(c->src, p[1] + i * s[1]));
}

int ct_copy_cpu(ct_tensor *dst, const ct_tensor *src) {
  conv_ctx c = {dst->dtype, src->dtype};
  ct_tensor *in = (ct_tensor *)src;
  ct_foreach_tensors(dst, &in, 1, copy_loop, &c);
  return 0;
}

int ct_copy_(ct_tensor *dst, const ct_tensor *src) {
  ct_meta m;
  ct_tensor *pair[2] = {dst, (ct_tensor *)src};
  if (ct_broadcast_shapes("copy_", pair, 2, &m)) return -1;
  if (m.ndim != dst->ndim || memcmp(m.shape, dst->shape, sizeof(int64_t) * (size_t)m.ndim)) {
    char a[160], b[160];
    return ct_errorf("copy_: source of shape %s does not broadcast to destination shape %s",
                     ct_shape_str(src->shape, src->ndim, a, sizeof a), ct_shape_str(dst->shape, dst->ndim, b, sizeof b));
  }
  ct_device dd = dst->storage->device, sd = src->storage->device;
  if (dd.type == CT_CPU && sd.type == CT_CPU) return ct_copy_cpu(dst, src);
  if (dd.type != CT_CPU && sd.type == dd.type && dd.index == sd.index && ct_cuda_forward[CT_OP_copy]) {
    ct_tensor *in = (ct_tensor *)src;
    return ct_cuda_forward[CT_OP_copy](dst, &in, 1, NULL);
  }
  /* across devices: stage through a contiguous host tensor of dst's dtype and shape */
  ct_tensor *host = ct_empty(dst->shape, dst->ndim, dst->dtype, ct_cpu());
  if (!host) return -1;
  int rc = 0;
  if (sd.type == CT_CPU) rc = ct_copy_cpu(host, src);
  else {
    ct_tensor *s = ct_to_device((ct_tensor *)src, ct_cpu());
    rc = s ? ct_copy_cpu(host, s) : -1;
    ct_release(s);
  }
  if (!rc) {
    if (ct_is_contiguous(dst))
      rc = ct_devops[dd.type].copy_h2d(ct_data_ptr(dst), host->storage->data, host->storage->nbytes, dd.index);
    else {
      ct_tensor *dev = ct_to_device(host, dd);
      rc = dev ? ct_copy_(dst, dev) : -1;
      ct_release(dev);
    }
  }
  ct_release(host);
  return rc;
}

int ct_fill_(ct_tensor *t, double v) {
  ct_tensor *s = ct_empty(NULL, 0, t->dtype, ct_cpu());
  if (!s) return -1;
  ct_store_from_double(t->dtype, s->storage->data, v);
  int rc;
  if (t->storage->device.type == CT_CPU) rc = ct_copy_cpu(t, s);
  else rc = ct_copy_(t, s);
  ct_release(s);
  return rc;
}

ct_tensor *ct_detach(ct_tensor *t) {
  ct_meta m = {.ndim = t->ndim, .offset = t->offset, .dtype = t->dtype};
  memcpy(m.shape, t->shape, sizeof m.shape);
  memcpy(m.stride, t->stride, sizeof m.stride);
  ct_tensor *r = ct_tensor_alias(t, &m);
  if (r && t->name) ct_set_name(r, t->name);
  return r;
}

ct_tensor *ct_to_device(ct_tensor *t, ct_device dev) {
  ct_device src = t->storage->device;
  if (ct_device_eq(src, dev)) return ct_retain(t);
  ct_attrs a = {0};
  a.i[0] = dev.type;
  a.i[1] = dev.index;
  return ct_op_run(CT_OP_copy, &t, 1, &a);
}
