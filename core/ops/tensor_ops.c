/* tensor_ops.c: tensor creation, copy, fill and device moves that run ops or cpu/ loops (above tensor/).
 * ct_full/ct_fill_ fill through the cpu copy loop (on a GPU: memset and add_scalar, no host copy), ct_to_device and
 * cross-device copies run the copy op (so they show as op events), ct_read_host makes a contiguous view first; the
 * random draws take Philox numbers from tensor/rng.c on the CPU and move them to the device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/copy.h"
#include "ops/optable.h"
#include "tensor/checked.h"

ct_tensor *ct_full(const int64_t *shape, int ndim, double v, ct_dtype dt, ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, dev);
  if (t && ct_fill_(t, v)) {
    ct_release(t);
    return NULL;
  }
  if (t) t->storage->version = 0; /* a new tensor: no in-place write yet */
  return t;
}

ct_tensor *ct_scalar(double v, ct_dtype dt, ct_device dev) { return ct_full(NULL, 0, v, dt, dev); }

ct_tensor *ct_scalar_like(const ct_tensor *t, double v) {
  ct_dtype dt = t->dtype;
  if (!ct_dtype_is_float(dt) && (v != floor(v) || dt == CT_BOOL)) dt = CT_F32;
  if (dt == CT_BOOL) dt = CT_I64;
  return ct_scalar(v, dt, t->storage->device);
}

ct_tensor *ct_ones_like(const ct_tensor *t) { return ct_full(t->shape, t->ndim, 1, t->dtype, t->storage->device); }

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

int ct_read_host(const ct_tensor *t, void *dst) {
  ct_tensor *c = ct_contiguous((ct_tensor *)t);
  if (!c) return -1;
  size_t n = (size_t)ct_numel(c) * ct_dtype_size(c->dtype);
  ct_device dev = c->storage->device;
  int rc = n ? ct_devops[dev.type].copy_d2h(dst, ct_data_ptr(c), n, dev.index) : 0;
  ct_release(c);
  return rc;
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

int ct_copy_(ct_tensor *dst, const ct_tensor *src) {
  ct_meta m;
  ct_tensor *pair[2] = {dst, (ct_tensor *)src};
  if (ct_broadcast_shapes("copy_", pair, 2, &m)) return -1;
  if (m.ndim != dst->ndim || memcmp(m.shape, dst->shape, sizeof(int64_t) * (size_t)m.ndim)) {
    char a[160], b[160];
    return ct_errorf("copy_: source of shape %s does not broadcast to destination shape %s",
                     ct_shape_str(src->shape, src->ndim, a, sizeof a),
                     ct_shape_str(dst->shape, dst->ndim, b, sizeof b));
  }
  dst->storage->version++;
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
  if (sd.type == CT_CPU)
    rc = ct_copy_cpu(host, src);
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
  ct_devtype dv = t->storage->device.type;
  ct_dtype dt = t->dtype;
  if (dv != CT_CPU && ct_devops[dv].memset0 && ct_cuda_forward[CT_OP_add_scalar] && ct_is_contiguous(t) &&
      (dt == CT_F32 || dt == CT_F64 || dt == CT_I32 || dt == CT_I64)) {
    /* zero then + v on the device: no host-to-device copy from pageable memory, which CUDA may
       serialise with the stream (a backward's seed, ones_like, made one such copy every step) */
    ct_attrs a = {0};
    a.f[0] = v;
    if (ct_devops[dv].memset0(ct_data_ptr(t), (size_t)ct_numel(t) * ct_dtype_size(dt), t->storage->device.index) ||
        (v != 0 && ct_cuda_forward[CT_OP_add_scalar](t, &t, 1, &a)))
      return -1;
    t->storage->version++;
    return 0;
  }
  ct_tensor *s = ct_empty(NULL, 0, t->dtype, ct_cpu());
  if (!s) return -1;
  ct_store_from_double(t->dtype, s->storage->data, v);
  int rc;
  if (t->storage->device.type == CT_CPU)
    rc = (t->storage->version++, ct_copy_cpu(t, s));
  else
    rc = ct_copy_(t, s); /* bumps the version */
  ct_release(s);
  return rc;
}

ct_tensor *ct_to_device(ct_tensor *t, ct_device dev) {
  ct_device src = t->storage->device;
  if (ct_device_eq(src, dev)) return ct_retain(t);
  ct_attrs a = {0};
  a.i[0] = dev.type;
  a.i[1] = dev.index;
  return ct_op_run(CT_OP_copy, &t, 1, &a);
}

/* ---- random tensors: Philox draws on the CPU (tensor/rng.c), moved to the device ---- */

typedef enum { DRAW_UNIFORM, DRAW_NORMAL, DRAW_INT } draw_kind;

static ct_tensor *draw(draw_kind kind, double lo, double hi, const int64_t *shape, int ndim, ct_dtype dt,
                       ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, ct_cpu());
  if (!t) return NULL;
  int64_t n = ct_numel(t);
  uint64_t rng_seed = ct_rng_seed(), off = ct_rng_reserve((uint64_t)n);
  size_t isz = ct_dtype_size(dt);
  char *p = t->storage->data;
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (kind == DRAW_UNIFORM)
      v = ct_philox_uniform(rng_seed, off + (uint64_t)i);
    else if (kind == DRAW_NORMAL)
      v = ct_philox_normal(rng_seed, off + (uint64_t)i);
    else {
      uint32_t r[4];
      ct_philox(rng_seed, off + (uint64_t)i, r);
      uint64_t span = (uint64_t)(hi - lo), x = ((uint64_t)r[1] << 32) | r[0];
      v = lo + (double)(x % span);
    }
    ct_store_from_double(dt, p + i * (int64_t)isz, v);
  }
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}

ct_tensor *ct_rand(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (!ct_dtype_is_float(dt)) return ct_errorf("rand: dtype must be floating point, got %s", ct_dtype_name(dt)), NULL;
  return draw(DRAW_UNIFORM, 0, 1, shape, ndim, dt, dev);
}
ct_tensor *ct_randn(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (!ct_dtype_is_float(dt)) return ct_errorf("randn: dtype must be floating point, got %s", ct_dtype_name(dt)), NULL;
  return draw(DRAW_NORMAL, 0, 1, shape, ndim, dt, dev);
}
ct_tensor *ct_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (hi <= lo) return ct_errorf("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi), NULL;
  return draw(DRAW_INT, (double)lo, (double)hi, shape, ndim, dt, dev);
}

ct_tensor *ct_randperm(int64_t n, ct_device dev) {
  if (n < 0) return ct_errorf("randperm: n must be >= 0, got %lld", (long long)n), NULL;
  if (ct_check_size("randperm", &n, 1, CT_I64)) return NULL;
  ct_tensor *t = ct_empty(&n, 1, CT_I64, ct_cpu());
  if (!t) return NULL;
  int64_t *p = t->storage->data;
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  uint64_t rng_seed = ct_rng_seed(), off = ct_rng_reserve((uint64_t)n);
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    uint32_t r[4];
    ct_philox(rng_seed, off + (uint64_t)i, r);
    int64_t j = (int64_t)((((uint64_t)r[1] << 32) | r[0]) % (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}
