/* grad_expr.h: owned-argument helpers for writing gradient rules as expressions.
 * Each O_* consumes its tensor arguments (lend a borrowed tensor with R(x)) and propagates NULL,
 * so `gin[0] = O_MUL(R(g), O_ADDS(O_NEG(O_MUL(R(y), R(y))), 1));` reads like the math and
 * neither leaks nor double-frees on any error path. */
#ifndef CHALK_GRAD_EXPR_H
#define CHALK_GRAD_EXPR_H

#include "chalk.h"

#define R(x) ct_retain(x)

#define CT_O_BINARY(NAME, FN)                                                                      \
  static inline ct_tensor *NAME(ct_tensor *a, ct_tensor *b) {                                      \
    ct_tensor *r = a && b ? FN(a, b) : NULL;                                                       \
    ct_release(a), ct_release(b);                                                                  \
    return r;                                                                                      \
  }
#define CT_O_UNARY(NAME, FN)                                                                       \
  static inline ct_tensor *NAME(ct_tensor *a) {                                                    \
    ct_tensor *r = a ? FN(a) : NULL;                                                               \
    ct_release(a);                                                                                 \
    return r;                                                                                      \
  }
#define CT_O_SCALAR(NAME, FN)                                                                      \
  static inline ct_tensor *NAME(ct_tensor *a, double s) {                                          \
    ct_tensor *r = a ? FN(a, s) : NULL;                                                            \
    ct_release(a);                                                                                 \
    return r;                                                                                      \
  }
#define CT_O_SHAPE(NAME, FN)                                                                       \
  static inline ct_tensor *NAME(ct_tensor *a, const int64_t *shape, int ndim) {                    \
    ct_tensor *r = a ? FN(a, shape, ndim) : NULL;                                                  \
    ct_release(a);                                                                                 \
    return r;                                                                                      \
  }

CT_O_BINARY(O_ADD, ct_add)
CT_O_BINARY(O_SUB, ct_sub)
CT_O_BINARY(O_MUL, ct_mul)
CT_O_BINARY(O_DIV, ct_div)
CT_O_BINARY(O_POW, ct_pow)
CT_O_BINARY(O_MATMUL, ct_matmul)
CT_O_UNARY(O_NEG, ct_neg)
CT_O_UNARY(O_EXP, ct_exp)
CT_O_UNARY(O_LOG, ct_log)
CT_O_UNARY(O_SQRT, ct_sqrt)
CT_O_SCALAR(O_ADDS, ct_add_scalar)
CT_O_SCALAR(O_MULS, ct_mul_scalar)
CT_O_SCALAR(O_POWS, ct_pow_scalar)

static inline ct_tensor *O_TRANSPOSE(ct_tensor *a, int d0, int d1) {
  ct_tensor *r = a ? ct_transpose(a, d0, d1) : NULL;
  ct_release(a);
  return r;
}
static inline ct_tensor *O_SUM(ct_tensor *a, const int *dims, int n, bool keepdim) {
  ct_tensor *r = a ? ct_sum(a, dims, n, keepdim) : NULL;
  ct_release(a);
  return r;
}
CT_O_SHAPE(O_SUM_TO, ct_sum_to_shape)
CT_O_SHAPE(O_EXPAND, ct_expand)
CT_O_SHAPE(O_RESHAPE, ct_reshape)

#endif
