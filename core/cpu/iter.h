/* iter.h: strided N-d iteration for CPU kernels, after PyTorch's TensorIterator but tiny.
 * ct_foreach walks the common shape of up to CT_ITER_MAX operands (operand 0 is usually the
 * output), coalescing dimensions that are contiguous for every operand, and calls an inner-loop
 * function for each run along the innermost dimension with byte strides per operand. */
#ifndef CHALK_ITER_H
#define CHALK_ITER_H

#include "tensor/tensor_impl.h"

#define CT_ITER_MAX 4

typedef void (*ct_loop_fn)(char **ptr, const int64_t *step, int64_t n, void *ctx);

/* strides[k][d] are element strides of operand k; itemsize[k] its element size. */
void ct_foreach(int nops, char **base, const size_t *itemsize, const int64_t *shape, int ndim,
                int64_t strides[][CT_MAX_DIMS], ct_loop_fn fn, void *ctx);

/* Convenience: out and inputs broadcast to out's shape. */
void ct_foreach_tensors(ct_tensor *out, ct_tensor *const *in, int nin, ct_loop_fn fn, void *ctx);

#endif
