/* matmul_ladder.h: the CPU forwards of matmul: the row's own (blas) and its rungs (matmul_ladder.c),
 * the implementations column (core/ops/impls.c); the rungs take 2-D contiguous operands. */
#ifndef CHALK_CPU_MATMUL_LADDER_H
#define CHALK_CPU_MATMUL_LADDER_H

#include "tensor/tensor_impl.h"

/* the row's own forward: OpenBLAS, batched, broadcast and strided (matmul_blas.c) */
int ct_cpu_matmul_blas(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
int ct_cpu_matmul_naive(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
int ct_cpu_matmul_reordered(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
/* tiles bm, bn, bk in attrs.i[0..2] (0: 64) */
int ct_cpu_matmul_tiled(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);

#endif
