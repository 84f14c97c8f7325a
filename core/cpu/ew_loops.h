/* ew_loops.h: the CPU loops of the elementwise ops, generated from an expression (included by
 * core/ops/ops_elementwise.c only). A loop runs one expression over a run of elements with fast
 * paths for contiguous operands and a broadcast second operand; the vocabulary of
 * core/ops/elementwise_defs.h (T, K, A0, EXP, ...) is defined here for C. */
#ifndef CHALK_CPU_EW_LOOPS_H
#define CHALK_CPU_EW_LOOPS_H

#include "cpu/iter.h"
#include "tensor/tensor_impl.h"

#include "cpu/ew_math.h"

/* the compute types of integer tensors: i32 in 64 bits, i64 in 128 (a GCC/Clang extension) */
__extension__ typedef __int128 ct_ew_i128;

/* the op's float attributes: the loops below receive attrs.f as `attr`. Integer loops (compute
   type int64 for i32, 128 bits for i64: see CT_EW_BINARY_LOOP_IN) take them truncated and saturated
   to the storage type, so x + s and x * s wrap like x + y instead of converting an out-of-range
   double (undefined); truncation is what the store of the double result did before. */
#define A0 CT_EW_ATTR(attr[0])
#define A1 CT_EW_ATTR(attr[1])
static inline int64_t ct_ew_sat32(double v) { return v != v ? 0 : v <= INT32_MIN ? INT32_MIN : v >= INT32_MAX ? INT32_MAX : (int64_t)v; }
static inline int64_t ct_ew_sat64(double v) { return v != v ? 0 : v < -0x1p63 ? INT64_MIN : v >= 0x1p63 ? INT64_MAX : (int64_t)v; }
#define CT_EW_ATTR(v) _Generic((T)0, int64_t: (T)ct_ew_sat32(v), ct_ew_i128: (T)ct_ew_sat64(v), default: (v))

/* out = EXPR(x, y) over n elements; p: operand pointers, s: byte strides (out, a, b). */
#define CT_EW_BINARY_LOOP(name, TY, OT, EXPR) CT_EW_BINARY_LOOP_IN(name, TY, TY, OT, EXPR)
/* ... computing in CTY: integer tensors compute in a wider type, so that x + y, x * y, -x and
   abs(x) never overflow (undefined in C); the store back to OT wraps as in PyTorch and NumPy
   (a narrowing conversion: implementation-defined, two's complement on every supported compiler). */
#define CT_EW_BINARY_LOOP_IN(name, TY, CTY, OT, EXPR)                                              \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                            \
    typedef CTY T;                                                                                \
    (void)ctx;                                                                                    \
    const int64_t z = (int64_t)sizeof(TY), oz = (int64_t)sizeof(OT);                              \
    if (s[0] == oz && s[1] == z && s[2] == z) {                                                   \
      OT *o = (OT *)p[0];                                                                         \
      const TY *A = (const TY *)p[1], *B = (const TY *)p[2];                                      \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i], y = B[i];                                                                     \
        o[i] = (OT)(EXPR);                                                                        \
      }                                                                                           \
    } else if (s[0] == oz && s[1] == z && s[2] == 0) {                                            \
      OT *o = (OT *)p[0];                                                                         \
      const TY *A = (const TY *)p[1];                                                             \
      const T y = *(const TY *)p[2];                                                              \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i];                                                                               \
        o[i] = (OT)(EXPR);                                                                        \
      }                                                                                           \
    } else {                                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = *(const TY *)(p[1] + i * s[1]), y = *(const TY *)(p[2] + i * s[2]);                 \
        *(OT *)(p[0] + i * s[0]) = (OT)(EXPR);                                                    \
      }                                                                                           \
    }                                                                                             \
  }

/* out = EXPR(x) over n elements; ctx: the op's float attributes (attrs.f). */
#define CT_EW_UNARY_LOOP(name, TY, EXPR) CT_EW_UNARY_LOOP_IN(name, TY, TY, EXPR)
#define CT_EW_UNARY_LOOP_IN(name, TY, CTY, EXPR)                                                  \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                            \
    typedef CTY T;                                                                                \
    const double *attr = ctx;                                                                     \
    (void)attr;                                                                                   \
    const int64_t z = (int64_t)sizeof(TY);                                                        \
    if (s[0] == z && s[1] == z) {                                                                 \
      TY *o = (TY *)p[0];                                                                         \
      const TY *A = (const TY *)p[1];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = A[i];                                                                               \
        o[i] = (TY)(EXPR);                                                                        \
      }                                                                                           \
    } else {                                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                           \
        T x = *(const TY *)(p[1] + i * s[1]);                                                     \
        *(TY *)(p[0] + i * s[0]) = (TY)(EXPR);                                                    \
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
/* The four number dtypes in, the result types given (a comparison's are all uint8_t) and the types
   the integer rows compute in (wider for arithmetic, so that it never overflows) */
#define CT_EW_CPU_BINARY_4(op, OF32, OF64, OI32, OI64, CI32, CI64, EXPR)                           \
  CT_EW_BINARY_LOOP(op##_f32, float, OF32, EXPR)                                                   \
  CT_EW_BINARY_LOOP(op##_f64, double, OF64, EXPR)                                                  \
  CT_EW_BINARY_LOOP_IN(op##_i32, int32_t, CI32, OI32, EXPR)                                        \
  CT_EW_BINARY_LOOP_IN(op##_i64, int64_t, CI64, OI64, EXPR)                                        \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    (void)a;                                                                                       \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, op##_i32, op##_i64, NULL); \
  }
#define CT_EW_CPU_BINARY_NUM(op, EXPR)                                                             \
  CT_EW_CPU_BINARY_4(op, float, double, int32_t, int64_t, int64_t, ct_ew_i128, EXPR)
#define CT_EW_CPU_BINARY_FLOAT(op, EXPR)                                                           \
  CT_EW_BINARY_LOOP(op##_f32, float, float, EXPR)                                                  \
  CT_EW_BINARY_LOOP(op##_f64, double, double, EXPR)                                                \
  static int op##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    (void)a;                                                                                       \
    return ct_ew_run_typed(out, in, nin, in[0]->dtype, op##_f32, op##_f64, NULL, NULL, NULL);      \
  }
#define CT_EW_CPU_COMPARE(op, EXPR)                                                                \
  CT_EW_CPU_BINARY_4(op, uint8_t, uint8_t, uint8_t, uint8_t, int32_t, int64_t, EXPR)
#define CT_EW_CPU_UNARY_NUM(op, EXPR)                                                              \
  CT_EW_UNARY_LOOP(op##_f32, float, EXPR)                                                          \
  CT_EW_UNARY_LOOP(op##_f64, double, EXPR)                                                         \
  CT_EW_UNARY_LOOP_IN(op##_i32, int32_t, int64_t, EXPR)                                            \
  CT_EW_UNARY_LOOP_IN(op##_i64, int64_t, ct_ew_i128, EXPR)                                         \
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
