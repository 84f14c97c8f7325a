/* matmul_ladder.h: the CPU rungs of matmul (matmul_ladder.c), forwards of the matmul row's
 * implementations column (core/ops/impls.c): 2-D contiguous operands, out [M, N] allocated. */
#ifndef CHALK_CPU_MATMUL_LADDER_H
#define CHALK_CPU_MATMUL_LADDER_H

#include "ops/optable.h"

int ct_cpu_matmul_naive(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
int ct_cpu_matmul_reordered(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
/* tiles bm, bn, bk in attrs.i[0..2] (0: 64) */
int ct_cpu_matmul_tiled(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);

#endif
