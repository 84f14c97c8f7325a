/* tensor.c: tensor headers and views over refcounted storages; creation and element access.
 * Invariant: a tensor owns one reference to its storage, its grad and its grad_fn node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/events.h"
#include "tensor/checked.h"
#include "tensor/tensor_impl.h"

static uint64_t next_tensor_id = 1;

void (*ct_tensor_release_grad_fn)(ct_tensor *t);
bool (*ct_tensor_grad_cycle_fn)(ct_tensor *t);

ct_tensor *ct_retain(ct_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void ct_release(ct_tensor *t) {
  if (!t) return;
  if (--t->refcount > 0) {
    if (t->grad && t->grad->grad_fn) ct_tensor_grad_cycle_fn(t); /* x.grad's graph holding x */
    return;
  }
  ct_release(t->grad);
  if (t->grad_fn) ct_tensor_release_grad_fn(t);
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

/* The shape's sizes are valid and its byte count fits in int64 (*nbytes); 0 or -1 with the error. */
static int check_shape_bytes(const char *op, const int64_t *shape, int ndim, ct_dtype dt, int64_t *nbytes) {
  if (ndim < 0 || ndim > CT_MAX_DIMS) return ct_errorf("%s: %d dims requested, at most %d supported", op, ndim, CT_MAX_DIMS);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0) {
      char sh[160];
      return ct_errorf("%s: negative size in shape %s", op, ct_shape_str(shape, ndim, sh, sizeof sh));
    }
  int64_t n;
  if (!ct_shape_numel(shape, ndim, &n) || !ct_size_mul(n, (int64_t)ct_dtype_size(dt), nbytes)) {
    char sh[160];
    return ct_errorf("%s: size too large: shape %s of %s needs more than 2^63 bytes", op,
                     ct_shape_str(shape, ndim, sh, sizeof sh), ct_dtype_name(dt));
  }
  return 0;
}

int ct_check_size(const char *op, const int64_t *shape, int ndim, ct_dtype dt) {
  int64_t nbytes;
  if (check_shape_bytes(op, shape, ndim, dt, &nbytes)) return -1;
  return ct_check_alloc(op, shape, ndim, dt, nbytes);
}

ct_tensor *ct_empty(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  /* the host-memory limit is for host tensors: a GPU allocation fails on its own device's memory */
  int64_t nbytes;
  if (dev.type == CT_CPU ? ct_check_size("empty", shape, ndim, dt) : check_shape_bytes("empty", shape, ndim, dt, &nbytes))
    return NULL;
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

ct_tensor *ct_zeros_like(const ct_tensor *t) { return ct_zeros(t->shape, t->ndim, t->dtype, t->storage->device); }

ct_tensor *ct_from_data(const void *data, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, dev);
  if (!t) return NULL;
  if (t->storage->nbytes && ct_devops[dev.type].copy_h2d(t->storage->data, data, t->storage->nbytes, dev.index)) {
    ct_release(t);
    return NULL;
  }
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
  t->storage->version++;
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

/* ---- copy and fill --------------------------------------------------------------------- */

ct_tensor *ct_detach(ct_tensor *t) {
  ct_meta m;
  ct_meta_of(t, &m);
  ct_tensor *r = ct_tensor_alias(t, &m);
  if (r && t->name) ct_set_name(r, t->name);
  return r;
}

void ct_meta_of(const ct_tensor *t, ct_meta *m) {
  memset(m, 0, sizeof *m);
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  memcpy(m->stride, t->stride, sizeof m->stride);
  m->offset = t->offset;
  m->dtype = t->dtype;
}
