/* iter.c: strided N-d iteration with dimension coalescing, and dtype load/store helpers. */
#include <string.h>

#include "iter.h"

void ct_foreach(int nops, char **base, const size_t *itemsize, const int64_t *shape_in, int ndim_in,
                int64_t strides_in[][CT_MAX_DIMS], ct_loop_fn fn, void *ctx) {
  int64_t shape[CT_MAX_DIMS], st[CT_ITER_MAX][CT_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < ndim_in; d++) {
    if (shape_in[d] == 0) return;
    if (shape_in[d] == 1) continue;
    shape[nd] = shape_in[d];
    for (int k = 0; k < nops; k++) st[k][nd] = strides_in[k][d] * (int64_t)itemsize[k];
    nd++;
  }
  /* coalesce: merge d-1 into d when every operand is contiguous across the pair */
  int w = 0;
  for (int d = 1; d < nd; d++) {
    bool ok = true;
    for (int k = 0; k < nops; k++)
      if (st[k][w] != st[k][d] * shape[d]) ok = false;
    if (ok) {
      shape[w] *= shape[d];
      for (int k = 0; k < nops; k++) st[k][w] = st[k][d];
    } else {
      w++;
      shape[w] = shape[d];
      for (int k = 0; k < nops; k++) st[k][w] = st[k][d];
    }
  }
  if (nd) nd = w + 1;
  char *ptr[CT_ITER_MAX];
  int64_t step[CT_ITER_MAX];
  if (nd == 0) {
    for (int k = 0; k < nops; k++) ptr[k] = base[k], step[k] = 0;
    fn(ptr, step, 1, ctx);
    return;
  }
  int inner = nd - 1;
  for (int k = 0; k < nops; k++) step[k] = st[k][inner];
  int64_t idx[CT_MAX_DIMS] = {0};
  for (;;) {
    for (int k = 0; k < nops; k++) {
      char *p = base[k];
      for (int d = 0; d < inner; d++) p += idx[d] * st[k][d];
      ptr[k] = p;
    }
    fn(ptr, step, shape[inner], ctx);
    int d = inner - 1;
    while (d >= 0 && ++idx[d] == shape[d]) idx[d--] = 0;
    if (d < 0) break;
  }
}

/* Whether t is laid out exactly as the contiguous out (same shape, row-major strides). */
static bool same_dense(const ct_tensor *t, const ct_tensor *out) {
  if (t->ndim != out->ndim) return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != out->shape[d] || (t->shape[d] != 1 && t->stride[d] != out->stride[d])) return false;
  return true;
}

void ct_foreach_tensors(ct_tensor *out, ct_tensor *const *in, int nin, ct_loop_fn fn, void *ctx) {
  char *base[CT_ITER_MAX];
  size_t isz[CT_ITER_MAX];
  /* Fast path (small ops are dominated by the setup below): a contiguous output whose inputs are
     each laid out like it or a single element is one run of numel elements. */
  int64_t n = ct_numel(out);
  if (n > 0 && ct_is_contiguous(out)) {
    int64_t step[CT_ITER_MAX];
    bool dense = true;
    base[0] = ct_data_ptr(out);
    step[0] = (int64_t)ct_dtype_size(out->dtype);
    for (int k = 0; k < nin && dense; k++) {
      base[k + 1] = ct_data_ptr(in[k]);
      if (ct_numel(in[k]) == 1) step[k + 1] = 0;
      else if (same_dense(in[k], out)) step[k + 1] = (int64_t)ct_dtype_size(in[k]->dtype);
      else dense = false;
    }
    if (dense) {
      fn(base, step, n, ctx);
      return;
    }
  }
  int64_t st[CT_ITER_MAX][CT_MAX_DIMS];
  base[0] = ct_data_ptr(out);
  isz[0] = ct_dtype_size(out->dtype);
  memcpy(st[0], out->stride, sizeof st[0]);
  for (int k = 0; k < nin; k++) {
    base[k + 1] = ct_data_ptr(in[k]);
    isz[k + 1] = ct_dtype_size(in[k]->dtype);
    ct_broadcast_strides(in[k], out->shape, out->ndim, st[k + 1]);
  }
  ct_foreach(nin + 1, base, isz, out->shape, out->ndim, st, fn, ctx);
}

double ct_load_as_double(ct_dtype dt, const char *p) {
  switch (dt) {
  case CT_F32: { float v; memcpy(&v, p, 4); return v; }
  case CT_F64: { double v; memcpy(&v, p, 8); return v; }
  case CT_F16: { uint16_t v; memcpy(&v, p, 2); return ct_f16_to_f32(v); }
  case CT_BF16: { uint16_t v; memcpy(&v, p, 2); return ct_bf16_to_f32(v); }
  case CT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
  case CT_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
  case CT_I8: return (int8_t)*p;
  case CT_BOOL: return *p ? 1.0 : 0.0;
  default: return 0;
  }
}

void ct_store_from_double(ct_dtype dt, char *p, double v) {
  switch (dt) {
  case CT_F32: { float x = (float)v; memcpy(p, &x, 4); break; }
  case CT_F64: memcpy(p, &v, 8); break;
  case CT_F16: { uint16_t x = ct_f32_to_f16((float)v); memcpy(p, &x, 2); break; }
  case CT_BF16: { uint16_t x = ct_f32_to_bf16((float)v); memcpy(p, &x, 2); break; }
  case CT_I32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
  case CT_I64: { int64_t x = (int64_t)v; memcpy(p, &x, 8); break; }
  case CT_I8: *p = (char)(int8_t)v; break;
  case CT_BOOL: *p = v != 0; break;
  default: break;
  }
}
