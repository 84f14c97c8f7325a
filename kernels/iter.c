/* iter.c: builds the strided-iteration description (ct_cu_iter) that elementwise and copy kernels
 * take by value: operands broadcast to one shape, size-1 dims dropped, and neighbouring dims
 * merged where every operand is contiguous across them (as core/cpu/iter.c does for the CPU).
 * Invariant: the element at linear index i of the iteration (row-major over it->shape) is the
 * same element of every operand as in the uncoalesced shape. */
#include <string.h>

#include "cuda_internal.h"

void ct_cu_iter_build_raw(ct_cu_iter *it, const int64_t *shape_in, int ndim, int nops,
                          int64_t strides[][CT_MAX_DIMS]) {
  memset(it, 0, sizeof *it);
  it->nops = nops;
  it->n = 1;
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    it->n *= shape_in[d];
    if (shape_in[d] == 1) continue;
    it->shape[nd] = shape_in[d];
    for (int k = 0; k < nops; k++) it->stride[k][nd] = strides[k][d];
    nd++;
  }
  if (it->n == 0) {
    it->ndim = 0;
    return;
  }
  int w = 0;
  for (int d = 1; d < nd; d++) {
    bool ok = true;
    for (int k = 0; k < nops; k++)
      if (it->stride[k][w] != it->stride[k][d] * it->shape[d]) ok = false;
    if (ok) {
      it->shape[w] *= it->shape[d];
      for (int k = 0; k < nops; k++) it->stride[k][w] = it->stride[k][d];
    } else {
      w++;
      it->shape[w] = it->shape[d];
      for (int k = 0; k < nops; k++) it->stride[k][w] = it->stride[k][d];
    }
  }
  it->ndim = nd ? w + 1 : 0;
}

void ct_cu_iter_build(ct_cu_iter *it, const ct_tensor *out, ct_tensor *const *in, int nin) {
  int64_t st[CT_CU_MAX_OPS][CT_MAX_DIMS];
  memcpy(st[0], out->stride, sizeof st[0]);
  for (int k = 0; k < nin; k++) ct_broadcast_strides(in[k], out->shape, out->ndim, st[k + 1]);
  ct_cu_iter_build_raw(it, out->shape, out->ndim, nin + 1, st);
}
