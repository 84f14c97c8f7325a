/* ew_loops.h: the CPU loops of the elementwise ops, generated from an expression (included by
 * core/ops/ops_elementwise.c only). A loop runs one expression over a run of elements with fast
 * paths for contiguous operands and a broadcast second operand; the vocabulary of
 * core/ops/elementwise_defs.h (T, K, A0, EXP, ...) is defined here for C. */
#ifndef CHALK_CPU_EW_LOOPS_H
#define CHALK_CPU_EW_LOOPS_H

#include "cpu/iter.h"
#include "tensor/tensor_impl.h"

#include "cpu/ew_math.h"

/* the op's float attributes: the loops below receive attrs.f as `attr` */
#define A0 attr[0]
#define A1 attr[1]

/* out = EXPR(x, y) over n elements; p: operand pointers, s: byte strides (out, a, b). */
#define CT_EW_BINARY_LOOP(name, TY, OT, EXPR)                                                      \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                            \
    typedef TY T;                                                                                 \
    (void)ctx;                                                                                    \
    const int64_t z = (int64_t)sizeof(T), oz = (int64_t)sizeof(OT);                               \
    if (s[0] == oz && s[1] == z && s[2] == z) {                                                   \
      OT *o = (OT *)p[0];                                                                         \
      const T *A = (const T *)p[1], *B = (const T *)p[2];                                         \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i], y = B[i];                                                                     \
        o[i] = (OT)(EXPR);                                                                        \
      }                                                                                           \
    } else if (s[0] == oz && s[1] == z && s[2] == 0) {                                            \
      OT *o = (OT *)p[0];                                                                         \
      const T *A = (const T *)p[1];                                                               \
      const T y = *(const T *)p[2];                                                               \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i];                                                                               \
        o[i] = (OT)(EXPR);                                                                        \
      }                                                                                           \
    } else {                                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = *(const T *)(p[1] + i * s[1]), y = *(const T *)(p[2] + i * s[2]);                   \
        *(OT *)(p[0] + i * s[0]) = (OT)(EXPR);                                                    \
      }                                                                                           \
    }                                                                                             \
  }

/* out = EXPR(x) over n elements; ctx: the op's float attributes (attrs.f). */
#define CT_EW_UNARY_LOOP(name, TY, EXPR)                                                          \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                            \
    typedef TY T;                                                                                 \
    const double *attr = ctx;                                                                     \
    (void)attr;                                                                                   \
    const int64_t z = (int64_t)sizeof(T);                                                         \
    if (s[0] == z && s[1] == z) {                                                                 \
      T *o = (T *)p[0];                                                                           \
      const T *A = (const T *)p[1];                                                               \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i];                                                                               \
        o[i] = (T)(EXPR);                                                                         \
      }                                                                                           \
    } else {                                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = *(const T *)(p[1] + i * s[1]);                                                      \
        *(T *)(p[0] + i * s[0]) = (T)(EXPR);                                                      \
      }                                                                                           \
    }                                                                                             \
  }

static inline int ct_ew_run_typed(ct_tensor *out, ct_tensor *const *in, int nin, ct_dtype dt, ct_loop_fn f32,
                                  ct_loop_fn f64, ct_loop_fn i32, ct_loop_fn i64, void *ctx) {
  ct_loop_fn f = dt == CT_F32 ? f32 : dt == CT_F64 ? f64 : dt == CT_I32 ? i32 : dt == CT_I64 ? i64 : NULL;
  if (!f) return ct_errorf("no CPU kernel for dtype %s", ct_dtype_name(dt));
  ct_foreach_tensors(out, in, nin, f, ctx);
  return 0;
}

/* <op>_cpu, the CPU forward of one row, for its dtypes (NUM: f32 f64 i32 i64; FLOAT: f32 f64) */
/* The four number dtypes in, the result types given (a comparison's are all uint8_t) */
#define CT_EW_CPU_BINARY_4(op, OF32, OF64, OI32, OI64, EXPR)                                       \
  CT_EW_BINARY_LOOP(op##_f32, float, OF32, EXPR)                                                   \
  CT_EW_BINARY_LOOP(op##_f64, double, OF64, EXPR)                                                  \
  CT_EW_BINARY_LOOP(op##_i32, int32_t, OI32, EXPR)                                                 \
  CT_EW_BINARY_LOOP(op##_i64, int64_t, OI64, EXPR)                                                 \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    (void)a;                                                                                       \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, op##_i32, op##_i64, NULL); \
  }
#define CT_EW_CPU_BINARY_NUM(op, EXPR) CT_EW_CPU_BINARY_4(op, float, double, int32_t, int64_t, EXPR)
#define CT_EW_CPU_BINARY_FLOAT(op, EXPR)                                                           \
  CT_EW_BINARY_LOOP(op##_f32, float, float, EXPR)                                                  \
  CT_EW_BINARY_LOOP(op##_f64, double, double, EXPR)                                                \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    (void)a;                                                                                       \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, NULL, NULL, NULL);      \
  }
#define CT_EW_CPU_COMPARE(op, EXPR) CT_EW_CPU_BINARY_4(op, uint8_t, uint8_t, uint8_t, uint8_t, EXPR)
#define CT_EW_CPU_UNARY_NUM(op, EXPR)                                                              \
  CT_EW_UNARY_LOOP(op##_f32, float, EXPR)                                                          \
  CT_EW_UNARY_LOOP(op##_f64, double, EXPR)                                                         \
  CT_EW_UNARY_LOOP(op##_i32, int32_t, EXPR)                                                        \
  CT_EW_UNARY_LOOP(op##_i64, int64_t, EXPR)                                                        \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, op##_i32, op##_i64, (void *)a->f); \
  }
#define CT_EW_CPU_UNARY_FLOAT(op, EXPR)                                                            \
  CT_EW_UNARY_LOOP(op##_f32, float, EXPR)                                                          \
  CT_EW_UNARY_LOOP(op##_f64, double, EXPR)                                                         \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, NULL, NULL, (void *)a->f); \
  }

#endif
