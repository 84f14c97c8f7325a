/* checked.h: overflow-checked size arithmetic and wrapping (defined) i64 arithmetic. */
#ifndef CT_CHECKED_H
#define CT_CHECKED_H
#include <stdbool.h>
#include <stdint.h>

/* *out = a * b; false on overflow or a negative operand. */
static inline bool ct_size_mul(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return false;
  return !__builtin_mul_overflow(a, b, out);
}

/* *out = a + b for sizes; false on overflow or a negative operand. */
static inline bool ct_size_add(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return false;
  return !__builtin_add_overflow(a, b, out);
}

/* Product of a shape; false if any factor is negative or the product overflows int64. */
static inline bool ct_shape_numel(const int64_t *shape, int ndim, int64_t *out) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++)
    if (!ct_size_mul(n, shape[d], &n)) return false;
  *out = n;
  return true;
}

/* PyTorch/NumPy wrapping semantics for integer tensors: compute in unsigned, convert back
   (the conversion of an out-of-range value is implementation-defined, two's complement on
   every compiler chalk supports, never undefined). */
static inline int64_t ct_wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t ct_wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t ct_wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t ct_wrap_neg(int64_t a) { return (int64_t)(0u - (uint64_t)a); }

/* 0, or an error "<op>: size too large: shape ... of <dtype> ..." (also negative sizes, too many
   dims, and a single allocation above the memory limit): the check ct_empty makes, for
   constructors that stage or name their own op (tensor/tensor.c). */
#include "chalk.h"
int ct_check_size(const char *op, const int64_t *shape, int ndim, ct_dtype dt);
/* 0, or "<op>: out of memory: shape ... needs N bytes, above the limit ..." when one host
   allocation of nbytes would pass ct_memory_limit() (tensor/memlimit.c); op may be NULL. */
int ct_check_alloc(const char *op, const int64_t *shape, int ndim, ct_dtype dt, int64_t nbytes);

#endif
