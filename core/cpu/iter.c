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

/* How t is read against the contiguous output shape (shape, ndim) in one run: 1 laid out exactly
   as it (its strides row-major over that shape), 0 a single element, -1 neither. */
static int dense_kind(const ct_tensor *t, const int64_t *shape, int ndim) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  if (n == 1) return 0;
  if (t->ndim != ndim) return -1;
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (t->shape[d] != shape[d] || (shape[d] != 1 && t->stride[d] != s)) return -1;
    s *= shape[d];
  }
  return 1;
}

void ct_foreach_tensors(ct_tensor *out, ct_tensor *const *in, int nin, ct_loop_fn fn, void *ctx) {
  char *base[CT_ITER_MAX];
  size_t isz[CT_ITER_MAX];
  /* Fast path (a small op's time is this setup, not its loop): a contiguous output whose inputs
     are each laid out like it or a single element is one run of numel elements. */
  if (dense_kind(out, out->shape, out->ndim) >= 0) {
    int64_t n = 1, step[CT_ITER_MAX];
    for (int d = 0; d < out->ndim; d++) n *= out->shape[d];
    bool dense = n > 0;
    for (int k = 0; k < nin && dense; k++) {
      int kind = dense_kind(in[k], out->shape, out->ndim);
      size_t z = ct_dtype_size(in[k]->dtype);
      base[k + 1] = (char *)in[k]->storage->data + in[k]->offset * (int64_t)z;
      step[k + 1] = kind * (int64_t)z;
      dense = kind >= 0;
    }
    if (dense) {
      size_t z = ct_dtype_size(out->dtype);
      base[0] = (char *)out->storage->data + out->offset * (int64_t)z;
      step[0] = (int64_t)z;
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
