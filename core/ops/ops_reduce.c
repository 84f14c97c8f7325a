/* ops_reduce.c: reductions over any set of dims with keepdim (sum, mean, max, min, argmax, argmin),
 * var composed from them, and sum_to_shape, which every backward rule uses to undo broadcasting.
 *
 * Invariants: attrs.mask holds the reduced dims as bits over the input's dims (no bit at or above
 * its ndim); attrs.keepdim keeps them as size 1. sum/mean/max/min kernels walk the input in
 * memory order and combine each element into an output-shaped accumulator whose strides are 0 on
 * the reduced dims, so reducing the innermost dim is a contiguous run into one accumulator and
 * reducing an outer dim (column sums, bias gradients) adds whole rows into a vector. f32 sums
 * accumulate in double; integer and bool sums give i64, as torch's do. argmax/argmin results are
 * 1-based i64 indices into the reduced dims taken in row-major order; the first of ties wins and
 * a NaN wins over any number (max, min, argmax and argmin alike, as in torch). Reducing no
 * elements is 0 for sum, NaN for mean and an error for max, min, argmax and argmin. The public
 * functions compute f16/bf16 in f32, and mean/var of integers in f32 (torch refuses those). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/iter.h"
#include "ops/grad_expr.h"
#include "ops/optable.h"

#define BIT(d) (1u << (d))

/* ---- shapes ------------------------------------------------------------------------------ */

/* The input's shape with the reduced dims set to 1 (the keepdim shape); returns its ndim. */
static int keep_shape(const ct_tensor *t, uint32_t mask, int64_t *shape) {
  for (int d = 0; d < t->ndim; d++) shape[d] = (mask & BIT(d)) ? 1 : t->shape[d];
  return t->ndim;
}

static int64_t reduced_count(const ct_tensor *t, uint32_t mask) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    if (mask & BIT(d)) n *= t->shape[d];
  return n;
}

static int reduce_meta(const ct_tensor *t, const ct_attrs *a, ct_meta *m) {
  if (t->ndim < 32 && (a->mask >> t->ndim))
    return ct_errorf("reduction mask 0x%x names dims beyond the input's %d dims", a->mask, t->ndim);
  m->ndim = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (!(a->mask & BIT(d))) m->shape[m->ndim++] = t->shape[d];
    else if (a->keepdim) m->shape[m->ndim++] = 1;
  }
  return 0;
}

static int storage_dtype_error(ct_dtype dt) {
  return ct_errorf("dtype %s is a storage dtype in chalk: convert with :to(\"f32\") to compute", ct_dtype_name(dt));
}

/* max, min, argmax, argmin of no elements have no value. */
static int check_nonempty(const char *what, const ct_tensor *t, const ct_attrs *a, const ct_meta *m) {
  int64_t nout = 1;
  for (int d = 0; d < m->ndim; d++) nout *= m->shape[d];
  if (nout == 0 || reduced_count(t, a->mask) != 0) return 0;
  char s[160];
  return ct_errorf("cannot take the %s over zero elements (input shape %s reduces over an empty dim); the %s "
                   "of nothing is undefined", what, ct_shape_str(t->shape, t->ndim, s, sizeof s), what);
}

static int sum_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_dtype dt = in[0]->dtype;
  if (dt == CT_F16 || dt == CT_BF16) return storage_dtype_error(dt);
  m->dtype = ct_dtype_is_float(dt) ? dt : CT_I64;
  return reduce_meta(in[0], a, m);
}

static int mean_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_dtype dt = in[0]->dtype;
  if (dt != CT_F32 && dt != CT_F64) return ct_errorf("needs f32 or f64, got %s", ct_dtype_name(dt));
  m->dtype = dt;
  return reduce_meta(in[0], a, m);
}

static int maxmin_shape_impl(const char *what, ct_tensor *const *in, const ct_attrs *a, ct_meta *m) {
  ct_dtype dt = in[0]->dtype;
  if (dt == CT_F16 || dt == CT_BF16) return storage_dtype_error(dt);
  m->dtype = dt;
  if (reduce_meta(in[0], a, m)) return -1;
  return check_nonempty(what, in[0], a, m);
}
static int max_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  return maxmin_shape_impl("max", in, a, m);
}
static int min_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  return maxmin_shape_impl("min", in, a, m);
}
static int argmax_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  if (maxmin_shape_impl("argmax", in, a, m)) return -1;
  m->dtype = CT_I64;
  return 0;
}
static int argmin_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  if (maxmin_shape_impl("argmin", in, a, m)) return -1;
  m->dtype = CT_I64;
  return 0;
}

/* ---- the accumulate walk ---------------------------------------------------------------- */

/* Walks `in` in memory order (dims sorted by decreasing stride, broadcast dims outermost) and calls
   fn on runs of (accumulator, input) pairs; the accumulator is contiguous over the keepdim shape,
   with stride 0 on the reduced dims. */
static void reduce_walk(const ct_tensor *in, uint32_t mask, void *acc, size_t acc_size, ct_loop_fn fn, void *ctx) {
  int nd = in->ndim;
  int64_t ks[CT_MAX_DIMS] = {0}, acc_st[CT_MAX_DIMS];
  keep_shape(in, mask, ks);
  ct_contiguous_strides(ks, nd, acc_st);
  int order[CT_MAX_DIMS];
  for (int d = 0; d < nd; d++) {
    if (mask & BIT(d)) acc_st[d] = 0;
    /* insertion sort, stable: stride 0 first, then decreasing |stride| */
    uint64_t key = in->stride[d] == 0 ? UINT64_MAX : (uint64_t)llabs(in->stride[d]);
    int j = d;
    while (j > 0) {
      int64_t ps = in->stride[order[j - 1]];
      uint64_t pk = ps == 0 ? UINT64_MAX : (uint64_t)llabs(ps);
      if (pk >= key) break;
      order[j] = order[j - 1];
      j--;
    }
    order[j] = d;
  }
  int64_t shape[CT_MAX_DIMS], st[CT_ITER_MAX][CT_MAX_DIMS];
  for (int k = 0; k < nd; k++) {
    shape[k] = in->shape[order[k]];
    st[0][k] = acc_st[order[k]];
    st[1][k] = in->stride[order[k]];
  }
  char *base[2] = {acc, ct_data_ptr(in)};
  size_t isz[2] = {acc_size, ct_dtype_size(in->dtype)};
  ct_foreach(2, base, isz, shape, nd, st, fn, ctx);
}

/* Contiguous float runs into one accumulator: sixteen double lanes in flight (GNU vector
   extension; SSE2 registers on x86-64), which keeps the adds independent, lets the loop run at
   memory speed, and rounds better than one running sum. */
typedef float ct_v2f __attribute__((vector_size(8)));
typedef double ct_v2d __attribute__((vector_size(16)));
#define RUN_SUM_FLOAT(name, T, LOAD)                                                               \
  static double name(const T *x, int64_t n) {                                                      \
    ct_v2d a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;             \
    int64_t i = 0;                                                                                 \
    for (; i + 16 <= n; i += 16) {                                                                 \
      a0 += LOAD(x + i), a1 += LOAD(x + i + 2), a2 += LOAD(x + i + 4), a3 += LOAD(x + i + 6);      \
      a4 += LOAD(x + i + 8), a5 += LOAD(x + i + 10), a6 += LOAD(x + i + 12), a7 += LOAD(x + i + 14); \
    }                                                                                              \
    ct_v2d a = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                                  \
    double s = a[0] + a[1];                                                                        \
    for (; i < n; i++) s += (double)x[i];                                                          \
    return s;                                                                                      \
  }
static inline ct_v2d load2_f32(const float *p) {
  ct_v2f v;
  memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, ct_v2d);
}
static inline ct_v2d load2_f64(const double *p) {
  ct_v2d v;
  memcpy(&v, p, sizeof v);
  return v;
}
RUN_SUM_FLOAT(run_sum_f32, float, load2_f32)
RUN_SUM_FLOAT(run_sum_f64, double, load2_f64)
#define RUN_SUM_INT(name, T)                                                                       \
  static int64_t name(const T *x, int64_t n) {                                                     \
    uint64_t s = 0; /* wraps as PyTorch/NumPy do (tensor/checked.h), never signed overflow */    \
    for (int64_t i = 0; i < n; i++) s += (uint64_t)(int64_t)x[i];                                  \
    return (int64_t)s;                                                                             \
  }
RUN_SUM_INT(run_sum_i32, int32_t)
RUN_SUM_INT(run_sum_i64, int64_t)
RUN_SUM_INT(run_sum_i8, int8_t)
RUN_SUM_INT(run_sum_bool, uint8_t)

/* SUM_LOOP(name, T, A, U, RUN): acc (type A) += input (type T), added in type U (double for floats,
   uint64_t for integers: wrapping, defined, as PyTorch/NumPy); RUN sums a contiguous run. Reducing
   an outer dim arrives here as acc[i] += x[i] over a row (vectorised by the compiler). */
#define ACC(A, U, acc, v) ((acc) = (A)((U)(acc) + (U)(A)(v)))
#define SUM_LOOP(name, T, A, U, RUN)                                                               \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                             \
    (void)ctx;                                                                                     \
    if (s[0] == 0 && s[1] == (int64_t)sizeof(T)) {                                                 \
      ACC(A, U, *(A *)p[0], RUN((const T *)p[1], n));                                              \
    } else if (s[0] == 0) {                                                                        \
      A a0 = 0, a1 = 0;                                                                            \
      int64_t i = 0;                                                                               \
      for (; i + 2 <= n; i += 2)                                                                   \
        ACC(A, U, a0, *(const T *)(p[1] + i * s[1])), ACC(A, U, a1, *(const T *)(p[1] + (i + 1) * s[1])); \
      if (i < n) ACC(A, U, a0, *(const T *)(p[1] + i * s[1]));                                     \
      ACC(A, U, a0, a1);                                                                           \
      ACC(A, U, *(A *)p[0], a0);                                                                   \
    } else if (s[0] == (int64_t)sizeof(A) && s[1] == (int64_t)sizeof(T)) {                        \
      A *o = (A *)p[0];                                                                            \
      const T *x = (const T *)p[1];                                                                \
      for (int64_t i = 0; i < n; i++) ACC(A, U, o[i], x[i]);                                       \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) ACC(A, U, *(A *)(p[0] + i * s[0]), *(const T *)(p[1] + i * s[1])); \
    }                                                                                              \
  }
SUM_LOOP(sum_f32, float, double, double, run_sum_f32)
SUM_LOOP(sum_f64, double, double, double, run_sum_f64)
SUM_LOOP(sum_i32, int32_t, int64_t, uint64_t, run_sum_i32)
SUM_LOOP(sum_i64, int64_t, int64_t, uint64_t, run_sum_i64)
SUM_LOOP(sum_i8, int8_t, int64_t, uint64_t, run_sum_i8)
SUM_LOOP(sum_bool, uint8_t, int64_t, uint64_t, run_sum_bool)

/* Sums x over the dims in mask into out, divided by div (1 for sum, the count for mean). */
static int sum_into(ct_tensor *out, ct_tensor *x, uint32_t mask, double div) {
  int64_t nout = ct_numel(out);
  ct_loop_fn fn;
  switch (x->dtype) {
  case CT_F32: fn = sum_f32; break;
  case CT_F64: fn = sum_f64; break;
  case CT_I32: fn = sum_i32; break;
  case CT_I64: fn = sum_i64; break;
  case CT_I8: fn = sum_i8; break;
  case CT_BOOL: fn = sum_bool; break;
  default: return ct_errorf("no CPU kernel for dtype %s", ct_dtype_name(x->dtype));
  }
  if (x->dtype != CT_F32) { /* f64 and i64 outputs are their own accumulators */
    memset(out->storage->data, 0, (size_t)nout * ct_dtype_size(out->dtype));
    reduce_walk(x, mask, out->storage->data, ct_dtype_size(out->dtype), fn, NULL);
    if (div != 1 && out->dtype == CT_F64) {
      double *o = out->storage->data;
      for (int64_t i = 0; i < nout; i++) o[i] /= div;
    }
    return 0;
  }
  double small[64], *acc = nout <= 64 ? small : malloc(sizeof(double) * (size_t)nout);
  if (!acc) return ct_errorf("out of memory for a %lld-element accumulator", (long long)nout);
  memset(acc, 0, sizeof(double) * (size_t)nout);
  reduce_walk(x, mask, acc, sizeof(double), fn, NULL);
  float *o = out->storage->data;
  for (int64_t i = 0; i < nout; i++) o[i] = (float)(acc[i] / div);
  if (acc != small) free(acc);
  return 0;
}

/* ---- sum ------------------------------------------------------------------------------------ */

static int sum_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return sum_into(out, in[0], a->mask, 1);
}
/* The gradient of a sum is g broadcast back over the reduced dims. */
static ct_tensor *expand_back(ct_tensor *g, const ct_tensor *x, const ct_attrs *a) {
  int64_t ks[CT_MAX_DIMS];
  int nd = keep_shape(x, a->mask, ks);
  ct_tensor *gk = a->keepdim ? ct_retain(g) : ct_reshape(g, ks, nd);
  return O_EXPAND(gk, CT_SHAPE(x));
}
static int sum_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = expand_back(g, n->in[0], &n->attrs)) ? 0 : -1;
}
static void reduce_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops,
                        double *bytes) {
  (void)nin, (void)a;
  double nin_el = (double)ct_numel(in[0]);
  *flops = nin_el;
  *bytes = nin_el * (double)ct_dtype_size(in[0]->dtype) + (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
}
const ct_opdef ct_op_sum = {"sum", 1, 0, sum_shape, sum_cpu, sum_backward, reduce_cost, "dx = expand g", NULL};

/* ---- mean ----------------------------------------------------------------------------------- */

static int mean_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return sum_into(out, in[0], a->mask, (double)reduced_count(in[0], a->mask));
}
/* d mean / dx = expand(g) / count (the division runs on the small, unexpanded g) */
static int mean_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0];
  ct_tensor *cnt = ct_scalar((double)reduced_count(x, n->attrs.mask), g->dtype, g->storage->device);
  ct_tensor *gd = O_DIV(R(g), cnt);
  gin[0] = gd ? expand_back(gd, x, &n->attrs) : NULL;
  ct_release(gd);
  return gin[0] ? 0 : -1;
}
const ct_opdef ct_op_mean = {"mean", 1, 0, mean_shape, mean_cpu, mean_backward, reduce_cost, "dx = expand g / n", NULL};

/* ---- max and min ---------------------------------------------------------------------------- */

/* NaN wins and then stays, as in torch */
#define FMAX_BETTER(v, a) ((v) > (a) || (isnan(v) && !isnan(a)))
#define FMIN_BETTER(v, a) ((v) < (a) || (isnan(v) && !isnan(a)))
#define IMAX_BETTER(v, a) ((v) > (a))
#define IMIN_BETTER(v, a) ((v) < (a))
#define F_ISNAN(v) (isnan(v) != 0)
#define I_ISNAN(v) ((void)(v), 0)

/* RUN_EXTREME(name, T, GT, ISNAN, NANV): max (GT is >) or min (<) of a contiguous run, starting
   from a. Four independent partial results and a NaN flag on the side, so that no compare waits
   for the previous one; a NaN anywhere makes the result NaN. */
#define RUN_EXTREME(name, T, GT, ISNAN, NANV)                                                      \
  static T name(const T *x, int64_t n, T a) {                                                      \
    T m0 = a, m1 = a, m2 = a, m3 = a;                                                              \
    int nan = ISNAN(a);                                                                            \
    int64_t i = 0;                                                                                 \
    for (; i + 4 <= n; i += 4) {                                                                   \
      T v0 = x[i], v1 = x[i + 1], v2 = x[i + 2], v3 = x[i + 3];                                    \
      m0 = v0 GT m0 ? v0 : m0, m1 = v1 GT m1 ? v1 : m1, m2 = v2 GT m2 ? v2 : m2, m3 = v3 GT m3 ? v3 : m3; \
      nan |= ISNAN(v0) | ISNAN(v1) | ISNAN(v2) | ISNAN(v3);                                        \
    }                                                                                              \
    for (; i < n; i++) m0 = x[i] GT m0 ? x[i] : m0, nan |= ISNAN(x[i]);                            \
    m0 = m1 GT m0 ? m1 : m0, m2 = m3 GT m2 ? m3 : m2, m0 = m2 GT m0 ? m2 : m0;                     \
    return nan ? NANV : m0;                                                                        \
  }

#define MAXMIN_LOOP(name, T, BETTER, RUN)                                                          \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                             \
    (void)ctx;                                                                                     \
    if (s[0] == 0 && s[1] == (int64_t)sizeof(T)) {                                                 \
      *(T *)p[0] = RUN((const T *)p[1], n, *(T *)p[0]);                                            \
    } else if (s[0] == 0) {                                                                        \
      T a = *(T *)p[0];                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T v = *(const T *)(p[1] + i * s[1]);                                                       \
        if (BETTER(v, a)) a = v;                                                                   \
      }                                                                                            \
      *(T *)p[0] = a;                                                                              \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T *o = (T *)(p[0] + i * s[0]);                                                             \
        T v = *(const T *)(p[1] + i * s[1]);                                                       \
        if (BETTER(v, *o)) *o = v;                                                                 \
      }                                                                                            \
    }                                                                                              \
  }
#define DEFINE_MAXMIN(T, SUF, ISNAN, NANV, MAXB, MINB)                                             \
  RUN_EXTREME(run_max_##SUF, T, >, ISNAN, NANV)                                                    \
  RUN_EXTREME(run_min_##SUF, T, <, ISNAN, NANV)                                                    \
  MAXMIN_LOOP(max_##SUF, T, MAXB, run_max_##SUF)                                                   \
  MAXMIN_LOOP(min_##SUF, T, MINB, run_min_##SUF)
DEFINE_MAXMIN(float, f32, F_ISNAN, (float)NAN, FMAX_BETTER, FMIN_BETTER)
DEFINE_MAXMIN(double, f64, F_ISNAN, (double)NAN, FMAX_BETTER, FMIN_BETTER)
DEFINE_MAXMIN(int32_t, i32, I_ISNAN, m0, IMAX_BETTER, IMIN_BETTER)
DEFINE_MAXMIN(int64_t, i64, I_ISNAN, m0, IMAX_BETTER, IMIN_BETTER)
DEFINE_MAXMIN(int8_t, i8, I_ISNAN, m0, IMAX_BETTER, IMIN_BETTER)
DEFINE_MAXMIN(uint8_t, bool, I_ISNAN, m0, IMAX_BETTER, IMIN_BETTER)

static int maxmin_cpu(ct_tensor *out, ct_tensor *x, uint32_t mask, bool is_max) {
  ct_loop_fn fn;
  double start; /* the identity: every element beats it */
  switch (x->dtype) {
  case CT_F32: fn = is_max ? max_f32 : min_f32, start = is_max ? -INFINITY : INFINITY; break;
  case CT_F64: fn = is_max ? max_f64 : min_f64, start = is_max ? -INFINITY : INFINITY; break;
  case CT_I32: fn = is_max ? max_i32 : min_i32, start = is_max ? (double)INT32_MIN : (double)INT32_MAX; break;
  case CT_I64: fn = is_max ? max_i64 : min_i64, start = is_max ? (double)INT64_MIN : 0; break;
  case CT_I8: fn = is_max ? max_i8 : min_i8, start = is_max ? INT8_MIN : INT8_MAX; break;
  case CT_BOOL: fn = is_max ? max_bool : min_bool, start = is_max ? 0 : 1; break;
  default: return ct_errorf("no CPU kernel for dtype %s", ct_dtype_name(x->dtype));
  }
  int64_t nout = ct_numel(out);
  size_t isz = ct_dtype_size(out->dtype);
  char *o = out->storage->data;
  if (x->dtype == CT_I64 && !is_max) { /* INT64_MAX is not a double */
    for (int64_t i = 0; i < nout; i++) ((int64_t *)o)[i] = INT64_MAX;
  } else {
    for (int64_t i = 0; i < nout; i++) ct_store_from_double(out->dtype, o + i * (int64_t)isz, start);
  }
  reduce_walk(x, mask, o, isz, fn, NULL);
  return 0;
}
/* NAME_cpu, the forward of max/min (FN = maxmin_cpu) or argmax/argmin (FN = arg_cpu). */
#define EXTREMUM_FORWARD(NAME, FN, IS_MAX)                                                         \
  static int NAME##_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {        \
    (void)nin;                                                                                     \
    return FN(out, in[0], a->mask, IS_MAX);                                                        \
  }
EXTREMUM_FORWARD(max, maxmin_cpu, true)
EXTREMUM_FORWARD(min, maxmin_cpu, false)
/* The gradient goes to the elements equal to the result, split evenly among ties (torch.amax):
   gin = (x == y) * (g / count(x == y)), all in keepdim shape broadcast against x. */
static int maxmin_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0];
  int64_t ks[CT_MAX_DIMS];
  int nd = keep_shape(x, n->attrs.mask, ks);
  ct_tensor *y = ct_detach(n->out); /* a constant here: the mask has no gradient */
  ct_tensor *yk = y ? ct_reshape(y, ks, nd) : NULL;
  ct_tensor *hit = yk ? ct_eq(x, yk) : NULL;
  ct_attrs cnt_at = {.mask = n->attrs.mask, .keepdim = true};
  ct_tensor *cnt = hit ? ct_op_run(CT_OP_sum, &hit, 1, &cnt_at) : NULL; /* i64 counts of ties */
  ct_tensor *gk = cnt ? (n->attrs.keepdim ? ct_retain(g) : ct_reshape(g, ks, nd)) : NULL;
  ct_tensor *share = gk ? O_DIV(gk, R(cnt)) : NULL;
  gin[0] = share ? O_MUL(share, R(hit)) : NULL;
  ct_release(y), ct_release(yk), ct_release(hit), ct_release(cnt);
  return gin[0] ? 0 : -1;
}
const ct_opdef ct_op_max = {"max", 1, 0, max_shape, max_cpu, maxmin_backward, reduce_cost, "dx = g where x is the max", NULL};
const ct_opdef ct_op_min = {"min", 1, 0, min_shape, min_cpu, maxmin_backward, reduce_cost, "dx = g where x is the min", NULL};

/* ---- argmax and argmin ------------------------------------------------------------------------ */

/* Kept dims in output order and reduced dims in row-major order, in byte strides; size-1 dims are
   dropped and adjacent reduced dims that are contiguous with each other are merged, which keeps
   the row-major position of every element. */
typedef struct {
  int nk, nr;
  int64_t kshape[CT_MAX_DIMS], kst[CT_MAX_DIMS], rshape[CT_MAX_DIMS], rst[CT_MAX_DIMS];
  int64_t nout;
} arg_plan;

static void arg_plan_make(const ct_tensor *x, uint32_t mask, arg_plan *p) {
  int64_t isz = (int64_t)ct_dtype_size(x->dtype);
  memset(p, 0, sizeof *p);
  p->nout = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] == 1) continue;
    if (!(mask & BIT(d))) {
      p->kshape[p->nk] = x->shape[d];
      p->kst[p->nk++] = x->stride[d] * isz;
      p->nout *= x->shape[d];
    } else if (p->nr && p->rst[p->nr - 1] == x->stride[d] * isz * x->shape[d]) {
      p->rshape[p->nr - 1] *= x->shape[d]; /* merge with the previous reduced dim (kept dims between
                                               do not matter: positions count reduced dims only) */
      p->rst[p->nr - 1] = x->stride[d] * isz;
    } else {
      p->rshape[p->nr] = x->shape[d];
      p->rst[p->nr++] = x->stride[d] * isz;
    }
  }
}

#define ARG_KERNEL(name, T, BETTER, GT, ISNAN, RUN)                                                                \
  static void name(const char *base, int64_t *out, const arg_plan *p) {                            \
    int64_t kidx[CT_MAX_DIMS] = {0};                                                               \
    int inner = p->nr - 1;                                                                         \
    for (int64_t o = 0; o < p->nout; o++) {                                                        \
      const char *q = base;                                                                        \
      for (int d = 0; d < p->nk; d++) q += kidx[d] * p->kst[d];                                    \
      T best = *(const T *)q;                                                                      \
      int64_t best_i = 0, lin = 0;                                                                 \
      int64_t ridx[CT_MAX_DIMS] = {0};                                                             \
      if (p->nr == 1 && p->rst[0] == (int64_t)sizeof(T)) {                                     \
        /* one contiguous run, in blocks: the block's extreme at memory speed, then its first      \
           position only when it beats the best so far; the first NaN ends the search */          \
        const T *x = (const T *)q;                                                                 \
        for (int64_t b0 = 0; b0 < p->rshape[0]; b0 += 256) {                                       \
          int64_t len = p->rshape[0] - b0 < 256 ? p->rshape[0] - b0 : 256;                         \
          T m = RUN(x + b0, len, x[b0]);                                                           \
          if (ISNAN(m)) {                                                                          \
            for (int64_t i = b0; i < b0 + len; i++)                                                \
              if (ISNAN(x[i])) {                                                                   \
                best_i = i;                                                                        \
                break;                                                                             \
              }                                                                                    \
            break;                                                                                 \
          }                                                                                        \
          if (m GT best || b0 == 0) {                                                              \
            best = m;                                                                              \
            for (int64_t i = b0; i < b0 + len; i++)                                                \
              if (x[i] == m) {                                                                     \
                best_i = i;                                                                        \
                break;                                                                             \
              }                                                                                    \
          }                                                                                        \
        }                                                                                          \
        inner = -1;                                                                                \
      }                                                                                            \
      while (inner >= 0) {                                                                         \
        const char *r = q;                                                                         \
        for (int d = 0; d < inner; d++) r += ridx[d] * p->rst[d];                                  \
        for (int64_t i = 0; i < p->rshape[inner]; i++, lin++) {                                    \
          T v = *(const T *)(r + i * p->rst[inner]);                                               \
          if (BETTER(v, best)) best = v, best_i = lin;                                             \
        }                                                                                          \
        int d = inner - 1;                                                                         \
        while (d >= 0 && ++ridx[d] == p->rshape[d]) ridx[d--] = 0;                                 \
        if (d < 0) break;                                                                          \
      }                                                                                            \
      out[o] = best_i + 1;                                                                         \
      inner = p->nr - 1;                                                                           \
      int d = p->nk - 1;                                                                           \
      while (d >= 0 && ++kidx[d] == p->kshape[d]) kidx[d--] = 0;                                   \
    }                                                                                              \
  }
ARG_KERNEL(argmax_f32, float, FMAX_BETTER, >, F_ISNAN, run_max_f32)
ARG_KERNEL(argmax_f64, double, FMAX_BETTER, >, F_ISNAN, run_max_f64)
ARG_KERNEL(argmax_i32, int32_t, IMAX_BETTER, >, I_ISNAN, run_max_i32)
ARG_KERNEL(argmax_i64, int64_t, IMAX_BETTER, >, I_ISNAN, run_max_i64)
ARG_KERNEL(argmax_i8, int8_t, IMAX_BETTER, >, I_ISNAN, run_max_i8)
ARG_KERNEL(argmax_bool, uint8_t, IMAX_BETTER, >, I_ISNAN, run_max_bool)
ARG_KERNEL(argmin_f32, float, FMIN_BETTER, <, F_ISNAN, run_min_f32)
ARG_KERNEL(argmin_f64, double, FMIN_BETTER, <, F_ISNAN, run_min_f64)
ARG_KERNEL(argmin_i32, int32_t, IMIN_BETTER, <, I_ISNAN, run_min_i32)
ARG_KERNEL(argmin_i64, int64_t, IMIN_BETTER, <, I_ISNAN, run_min_i64)
ARG_KERNEL(argmin_i8, int8_t, IMIN_BETTER, <, I_ISNAN, run_min_i8)
ARG_KERNEL(argmin_bool, uint8_t, IMIN_BETTER, <, I_ISNAN, run_min_bool)

typedef void (*arg_kernel)(const char *base, int64_t *out, const arg_plan *p);

static int arg_cpu(ct_tensor *out, ct_tensor *x, uint32_t mask, bool is_max) {
  static const arg_kernel kmax[CT_NDTYPES] = {[CT_F32] = argmax_f32, [CT_F64] = argmax_f64, [CT_I32] = argmax_i32,
                                              [CT_I64] = argmax_i64, [CT_I8] = argmax_i8, [CT_BOOL] = argmax_bool};
  static const arg_kernel kmin[CT_NDTYPES] = {[CT_F32] = argmin_f32, [CT_F64] = argmin_f64, [CT_I32] = argmin_i32,
                                              [CT_I64] = argmin_i64, [CT_I8] = argmin_i8, [CT_BOOL] = argmin_bool};
  arg_kernel k = (is_max ? kmax : kmin)[x->dtype];
  if (!k) return ct_errorf("no CPU kernel for dtype %s", ct_dtype_name(x->dtype));
  if (ct_numel(out) == 0) return 0;
  arg_plan p;
  arg_plan_make(x, mask, &p);
  k(ct_data_ptr(x), out->storage->data, &p);
  return 0;
}
EXTREMUM_FORWARD(argmax, arg_cpu, true)
EXTREMUM_FORWARD(argmin, arg_cpu, false)
const ct_opdef ct_op_argmax = {"argmax", 1, CT_OPF_NONDIFF, argmax_shape, argmax_cpu, NULL, reduce_cost, NULL, NULL};
const ct_opdef ct_op_argmin = {"argmin", 1, CT_OPF_NONDIFF, argmin_shape, argmin_cpu, NULL, reduce_cost, NULL, NULL};

/* ---- public entry points ------------------------------------------------------------------- */

/* dims[0..n) (0-based, negative from the end; n == 0: all dims) to a bitmask over t's dims. */
static int dims_to_mask(const char *op, const ct_tensor *t, const int *dims, int n, uint32_t *mask) {
  *mask = 0;
  if (n < 0 || n > CT_MAX_DIMS || (n > 0 && !dims))
    return ct_errorf("%s: expected 0..%d reduction dims, got %d", op, CT_MAX_DIMS, n);
  if (n == 0) {
    *mask = t->ndim ? (uint32_t)((1u << t->ndim) - 1) : 0;
    return 0;
  }
  for (int i = 0; i < n; i++) {
    int d;
    if (ct_norm_dim(op, dims[i], t, t->ndim, &d)) return -1;
    if (t->ndim == 0) continue; /* dim 0 / -1 of a 0-d tensor names the tensor itself */
    if (*mask & BIT(d)) {
      char s[160];
      return ct_errorf("%s: dim %d appears more than once in the reduction dims (input shape %s)", op, d + 1,
                       ct_shape_str(t->shape, t->ndim, s, sizeof s));
    }
    *mask |= BIT(d);
  }
  return 0;
}

/* Converts a to the dtype the kernel runs in (recorded as to_dtype where it requires grad), then
   runs op. float_only: integers compute in f32 (mean, var). */
static ct_tensor *reduce_as(ct_op op, ct_tensor *a, const int *dims, int n, bool keepdim, bool float_only) {
  const char *name = ct_optable[op] ? ct_optable[op]->name : "reduction";
  if (!a) return ct_errorf("%s: missing input tensor", name), NULL;
  ct_attrs at = {0};
  if (dims_to_mask(name, a, dims, n, &at.mask)) return NULL;
  at.keepdim = keepdim;
  ct_dtype dt = a->dtype;
  if (dt == CT_F16 || dt == CT_BF16 || (float_only && !ct_dtype_is_float(dt))) dt = CT_F32;
  ct_tensor *ca = ct_to_dtype(a, dt);
  ct_tensor *r = ca ? ct_op_run(op, &ca, 1, &at) : NULL;
  ct_release(ca);
  return r;
}

ct_tensor *ct_sum(ct_tensor *a, const int *dims, int n, bool keepdim) {
  return reduce_as(CT_OP_sum, a, dims, n, keepdim, false);
}
ct_tensor *ct_mean(ct_tensor *a, const int *dims, int n, bool keepdim) {
  return reduce_as(CT_OP_mean, a, dims, n, keepdim, true);
}
ct_tensor *ct_max(ct_tensor *a, const int *dims, int n, bool keepdim) {
  return reduce_as(CT_OP_max, a, dims, n, keepdim, false);
}
ct_tensor *ct_min(ct_tensor *a, const int *dims, int n, bool keepdim) {
  return reduce_as(CT_OP_min, a, dims, n, keepdim, false);
}

static ct_tensor *arg_reduce(ct_op op, ct_tensor *a, int dim, bool keepdim) {
  if (dim == CT_ALL_DIMS) return reduce_as(op, a, NULL, 0, keepdim, false);
  return reduce_as(op, a, &dim, 1, keepdim, false);
}
ct_tensor *ct_argmax(ct_tensor *a, int dim, bool keepdim) { return arg_reduce(CT_OP_argmax, a, dim, keepdim); }
ct_tensor *ct_argmin(ct_tensor *a, int dim, bool keepdim) { return arg_reduce(CT_OP_argmin, a, dim, keepdim); }

/* var = sum((x - mean(x))^2) / (N - unbiased), built from table ops so autograd comes free.
   N - 1 == 0 gives NaN (0/0), as torch does. */
ct_tensor *ct_var(ct_tensor *a, const int *dims, int n, bool keepdim, bool unbiased) {
  if (!a) return ct_errorf("var: missing input tensor"), NULL;
  uint32_t mask;
  if (dims_to_mask("var", a, dims, n, &mask)) return NULL;
  ct_tensor *x = ct_to_dtype(a, ct_dtype_is_float(a->dtype) && a->dtype != CT_F16 && a->dtype != CT_BF16 ? a->dtype : CT_F32);
  if (!x) return NULL;
  double cnt = (double)reduced_count(x, mask) - (unbiased ? 1 : 0);
  ct_tensor *dev = O_SUB(R(x), ct_mean(x, dims, n, true));
  ct_tensor *ss = O_SUM(O_MUL(R(dev), R(dev)), dims, n, keepdim);
  ct_release(dev);
  ct_tensor *r = ss ? O_DIV(ss, ct_scalar(cnt < 0 ? 0 : cnt, x->dtype, x->storage->device)) : NULL;
  ct_release(x);
  return r;
}

/* Sums g over its leading extra dims and over the dims where shape has 1, giving shape. One sum op
   (plus a view when both kinds occur); a new reference to g itself when the shapes already match. */
ct_tensor *ct_sum_to_shape(ct_tensor *g, const int64_t *shape, int ndim) {
  if (!g) return ct_errorf("sum_to_shape: missing gradient tensor"), NULL;
  if (ndim == g->ndim && (ndim == 0 || !memcmp(shape, g->shape, sizeof(int64_t) * (size_t)ndim))) return ct_retain(g);
  char s1[160], s2[160];
  if (ndim > g->ndim || ndim < 0)
    return ct_errorf("sum_to_shape: cannot sum a tensor of shape %s down to shape %s (more dims)",
                     ct_shape_str(g->shape, g->ndim, s1, sizeof s1), ct_shape_str(shape, ndim < 0 ? 0 : ndim, s2, sizeof s2)),
           NULL;
  int lead = g->ndim - ndim, dims[CT_MAX_DIMS], nr = 0;
  bool ones = false;
  for (int d = 0; d < g->ndim; d++) {
    if (d < lead) {
      dims[nr++] = d;
      continue;
    }
    int64_t want = shape[d - lead];
    if (want == g->shape[d]) continue;
    if (want != 1)
      return ct_errorf("sum_to_shape: cannot sum a tensor of shape %s down to shape %s (dim %d: %lld vs %lld)",
                       ct_shape_str(g->shape, g->ndim, s1, sizeof s1), ct_shape_str(shape, ndim, s2, sizeof s2), d + 1,
                       (long long)g->shape[d], (long long)want),
             NULL;
    dims[nr++] = d;
    ones = true;
  }
  if (!ones) return ct_sum(g, dims, nr, false); /* only leading dims: the result has the shape */
  if (!lead) return ct_sum(g, dims, nr, true);  /* only size-1 dims: keepdim gives the shape */
  ct_tensor *s = ct_sum(g, dims, nr, false);
  return s ? O_RESHAPE(s, shape, ndim) : NULL;
}
