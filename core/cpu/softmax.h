/* softmax.h: the CPU softmax loops (softmax.c), the forward of core/ops/ops_nn.c's softmax rows. */
#ifndef CHALK_CPU_SOFTMAX_H
#define CHALK_CPU_SOFTMAX_H

#include "tensor/tensor_impl.h"

/* out = softmax(x) (log_softmax when lg) over dim; out contiguous, of x's shape and dtype. */
int ct_cpu_softmax(ct_tensor *out, ct_tensor *x, int dim, bool lg);

#endif
