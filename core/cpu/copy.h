/* copy.h: the CPU copy loop (copy.c): dst <- src broadcast to dst's shape, converting dtypes. */
#ifndef CHALK_CPU_COPY_H
#define CHALK_CPU_COPY_H

#include "tensor/tensor_impl.h"

int ct_copy_cpu(ct_tensor *dst, const ct_tensor *src); /* both on the CPU; returns 0 */

#endif
