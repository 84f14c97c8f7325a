/* ops_elementwise.c: the elementwise ops with NumPy broadcasting. Their rows are expanded from
 * core/ops/elementwise_defs.h (name, dtypes, expression, gradient formula); this file opens with
 * that expansion, then each op's gradient rule, written with ordinary ops so that backward is a
 * graph of table ops; the loops are in core/cpu/ew_loops.h. Inputs reach an op already converted
 * to one dtype (the public functions promote and convert with to_dtype, which autograd sees). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu/ew_loops.h"
#include "ops/grad_expr.h"
#include "ops/optable.h"

/* ---- the rows ---------------------------------------------------------------------------------
 * binary:  {name, 2, elementwise (in place ok), shape: broadcast, forward, gradient rule, cost:
 *           one flop per element, gradient formula, expression}; comparisons are not
 *           differentiable; unary rows have the input's shape. NUM rows take f32 f64 i32 i64,
 *           FLOAT rows f32 f64. */
static int arith_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m);
static int float_binary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m);
static int compare_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m);
static int unary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m);
static int float_unary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m);
static int check_same_dtype(ct_tensor *const *in, int from, int nin);
static int check_compute_dtype(ct_dtype dt, bool ints_ok);
#define SHAPE_BINARY_NUM arith_shape
#define SHAPE_BINARY_FLOAT float_binary_shape
#define SHAPE_UNARY_NUM unary_shape
#define SHAPE_UNARY_FLOAT float_unary_shape
#define EW (CT_OPF_ELEMENTWISE | CT_OPF_INPLACE_OK)

#define BINARY_ROW(name, dts, expr, grad, flags)                                                   \
  static int name##_backward(ct_node *n, ct_tensor *g, ct_tensor **gin);                           \
  CT_EW_CPU_BINARY_##dts(name, expr)                                                               \
  const ct_opdef ct_op_##name = {#name, 2, EW | (flags), SHAPE_BINARY_##dts, name##_cpu, name##_backward, NULL, grad, #expr};
#define COMPARE_ROW(name, expr)                                                                    \
  CT_EW_CPU_COMPARE(name, expr)                                                                    \
  const ct_opdef ct_op_##name = {#name, 2, CT_OPF_NONDIFF | CT_OPF_ELEMENTWISE, compare_shape, name##_cpu, NULL, NULL, NULL, #expr};
#define UNARY_ROW(name, dts, expr, grad)                                                           \
  static int name##_backward(ct_node *n, ct_tensor *g, ct_tensor **gin);                           \
  CT_EW_CPU_UNARY_##dts(name, expr)                                                                \
  const ct_opdef ct_op_##name = {#name, 1, EW, SHAPE_UNARY_##dts, name##_cpu, name##_backward, NULL, grad, #expr};
CT_EW_BINARY(BINARY_ROW)
CT_EW_BINARY_INTERNAL(BINARY_ROW)
CT_EW_COMPARE(COMPARE_ROW)
CT_EW_UNARY(UNARY_ROW)
CT_EW_UNARY_INTERNAL(UNARY_ROW)

/* ---- gradient rules -------------------------------------------------------------------------- */
/* GIN(i, expr): gin[i] = expr summed back to input i's shape, where input i takes a gradient. */
#define GIN(i, expr)                                                                               \
  do {                                                                                             \
    if (ct_node_needs_grad(n, i)) {                                                                \
      ct_tensor *full_ = (expr);                                                                   \
      if (!full_) return -1;                                                                       \
      gin[i] = ct_sum_to_shape(full_, CT_SHAPE(n->in[i]));                                         \
      ct_release(full_);                                                                           \
      if (!gin[i]) return -1;                                                                      \
    }                                                                                              \
  } while (0)

static int add_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  GIN(0, ct_retain(g));
  GIN(1, ct_retain(g));
  return 0;
}
static int sub_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  GIN(0, ct_retain(g));
  GIN(1, ct_neg(g));
  return 0;
}
static int mul_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  GIN(0, ct_mul(g, n->in[1]));
  GIN(1, ct_mul(g, n->in[0]));
  return 0;
}
static int div_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  GIN(0, ct_div(g, n->in[1]));
  /* d(a/b)/db = -(a/b)/b */
  GIN(1, O_MUL(O_NEG(R(g)), O_DIV(R(n->out), R(n->in[1]))));
  return 0;
}
static int pow_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *a = n->in[0], *b = n->in[1];
  /* d/da = b * a^(b-1); d/db = a^b * log a */
  GIN(0, O_MUL(R(g), O_MUL(R(b), O_POW(R(a), ct_add_scalar(b, -1)))));
  GIN(1, O_MUL(R(g), O_MUL(R(n->out), ct_log(a))));
  return 0;
}
static int maximum_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  /* ties split the gradient in half, as torch.maximum does */
  ct_tensor *a = n->in[0], *b = n->in[1];
  ct_tensor *gt = ct_gt(a, b), *eq = ct_eq(a, b);
  ct_tensor *half = eq ? ct_mul_scalar(eq, 0.5) : NULL; /* f32 0/0.5 (bool promotes) */
  ct_tensor *wa = gt && half ? ct_add(gt, half) : NULL;
  ct_release(gt), ct_release(eq), ct_release(half);
  if (!wa) return -1;
  GIN(0, ct_mul(g, wa));
  GIN(1, O_MUL(ct_neg(g), ct_add_scalar(wa, -1)));
  ct_release(wa);
  return 0;
}
static int relu_grad_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *in[2] = {g, n->in[1]};
  gin[0] = ct_op_run(CT_OP_relu_grad, in, 2, NULL);
  return gin[0] ? 0 : -1;
}
static int neg_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  (void)n;
  return (gin[0] = ct_neg(g)) ? 0 : -1;
}
static int exp_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) { return (gin[0] = ct_mul(g, n->out)) ? 0 : -1; }
static int log_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) { return (gin[0] = ct_div(g, n->in[0])) ? 0 : -1; }
static int sqrt_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *q = ct_div(g, n->out);
  gin[0] = q ? ct_mul_scalar(q, 0.5) : NULL;
  ct_release(q);
  return gin[0] ? 0 : -1;
}
static int abs_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = O_MUL(R(g), ct_sign(n->in[0]))) ? 0 : -1;
}
static int sign_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  (void)n;
  return (gin[0] = ct_mul_scalar(g, 0)) ? 0 : -1;
}
static int sin_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = O_MUL(R(g), ct_cos(n->in[0]))) ? 0 : -1;
}
static int cos_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = O_MUL(ct_neg(g), ct_sin(n->in[0]))) ? 0 : -1;
}
static int tanh_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  /* g * (1 - y^2), from the output y (which carries its own graph under create_graph) */
  gin[0] = O_MUL(R(g), O_ADDS(O_NEG(O_MUL(R(n->out), R(n->out))), 1));
  return gin[0] ? 0 : -1;
}
static int sigmoid_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  /* g * y * (1 - y) */
  gin[0] = O_MUL(O_MUL(R(g), R(n->out)), O_ADDS(O_NEG(R(n->out)), 1));
  return gin[0] ? 0 : -1;
}
static int relu_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0];
  ct_device dev = x->storage->device;
  if (g->dtype == x->dtype && ct_dtype_is_float(x->dtype) && g->storage->device.type == dev.type &&
      (dev.type == CT_CPU || ct_cuda_forward[CT_OP_relu_grad])) {
    ct_tensor *in[2] = {g, x};
    gin[0] = ct_op_run(CT_OP_relu_grad, in, 2, NULL);
    return gin[0] ? 0 : -1;
  }
  ct_tensor *zero = ct_scalar(0, x->dtype, dev);
  gin[0] = zero ? O_MUL(R(g), ct_gt(x, zero)) : NULL;
  ct_release(zero);
  return gin[0] ? 0 : -1;
}
static int gelu_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0];
  ct_device dev = x->storage->device;
  if (g->dtype == x->dtype && g->storage->device.type == dev.type &&
      (dev.type == CT_CPU || ct_cuda_forward[CT_OP_gelu_bwd])) { /* g * gelu'(x) in one pass */
    ct_tensor *in[2] = {g, x};
    gin[0] = ct_op_run(CT_OP_gelu_bwd, in, 2, NULL);
    return gin[0] ? 0 : -1;
  }
  gin[0] = O_MUL(R(g), ct_op_run(CT_OP_gelu_grad, &x, 1, NULL));
  return gin[0] ? 0 : -1;
}
/* g * gelu''(x) = g * phi(x) * (2 - x^2) */
static ct_tensor *gelu_second(ct_tensor *g, ct_tensor *x) {
  ct_tensor *x2 = ct_mul(x, x);
  ct_tensor *dens = O_MULS(O_EXP(O_MULS(R(x2), -0.5)), 0.39894228040143268);
  return O_MUL(O_MUL(R(g), dens), O_ADDS(O_NEG(x2), 2));
}
static int gelu_grad_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  gin[0] = gelu_second(g, n->in[0]);
  return gin[0] ? 0 : -1;
}
static int gelu_bwd_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[1];
  GIN(0, O_MUL(R(g), ct_op_run(CT_OP_gelu_grad, &x, 1, NULL)));
  GIN(1, O_MUL(gelu_second(g, x), R(n->in[0])));
  return 0;
}
static int pow_scalar_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  double p = n->attrs.f[0];
  gin[0] = O_MULS(O_MUL(R(g), ct_pow_scalar(n->in[0], p - 1)), p);
  return gin[0] ? 0 : -1;
}
static int add_scalar_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  (void)n;
  gin[0] = ct_retain(g);
  return 0;
}
static int mul_scalar_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_mul_scalar(g, n->attrs.f[0])) ? 0 : -1;
}
static int clamp_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0];
  ct_tensor *lo = ct_scalar(n->attrs.f[0], x->dtype, x->storage->device);
  ct_tensor *hi = ct_scalar(n->attrs.f[1], x->dtype, x->storage->device);
  gin[0] = lo && hi ? O_MUL(O_MUL(R(g), ct_ge(x, lo)), ct_le(x, hi)) : NULL;
  ct_release(lo), ct_release(hi);
  return gin[0] ? 0 : -1;
}
static int silu_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  /* silu(x) = x s, s = sigmoid(x): silu'(x) = s + x s (1 - s) = s (1 + x (1 - s)) */
  ct_tensor *x = n->in[0], *s = ct_sigmoid(x);
  gin[0] = s ? O_MUL(O_MUL(R(g), R(s)), O_ADDS(O_MUL(R(x), O_ADDS(O_NEG(R(s)), 1)), 1)) : NULL;
  ct_release(s);
  return gin[0] ? 0 : -1;
}

/* ---- where(cond, a, b) ---------------------------------------------------------------------- */
static int where_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)a;
  if (in[0]->dtype != CT_BOOL) return ct_errorf("condition must be bool, got %s", ct_dtype_name(in[0]->dtype));
  if (check_same_dtype(in, 1, nin) || ct_broadcast_shapes(NULL, in, nin, m)) return -1;
  m->dtype = in[1]->dtype;
  return check_compute_dtype(m->dtype, true);
}
#define WHERE_LOOP(name, T)                                                                       \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                            \
    (void)ctx;                                                                                    \
    for (int64_t i = 0; i < n; i++)                                                               \
      *(T *)(p[0] + i * s[0]) = p[1][i * s[1]] ? *(const T *)(p[2] + i * s[2]) : *(const T *)(p[3] + i * s[3]); \
  }
WHERE_LOOP(where_f32, float)
WHERE_LOOP(where_f64, double)
WHERE_LOOP(where_i32, int32_t)
WHERE_LOOP(where_i64, int64_t)
static int where_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)a;
  return ct_ew_run_typed(out, in, nin, in[1]->dtype, where_f32, where_f64, where_i32, where_i64, NULL);
}
static int where_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *zero = ct_scalar(0, g->dtype, g->storage->device);
  if (!zero) return -1;
  if (ct_node_needs_grad(n, 1)) {
    ct_tensor *t = ct_where(n->in[0], g, zero);
    gin[1] = t ? ct_sum_to_shape(t, CT_SHAPE(n->in[1])) : NULL;
    ct_release(t);
  }
  if (ct_node_needs_grad(n, 2)) {
    ct_tensor *t = ct_where(n->in[0], zero, g);
    gin[2] = t ? ct_sum_to_shape(t, CT_SHAPE(n->in[2])) : NULL;
    ct_release(t);
  }
  ct_release(zero);
  return (ct_node_needs_grad(n, 1) && !gin[1]) || (ct_node_needs_grad(n, 2) && !gin[2]) ? -1 : 0;
}
const ct_opdef ct_op_where = {"where", 3, CT_OPF_ELEMENTWISE, where_shape, where_cpu, where_backward, NULL,
                              "db = g where cond; dc = g where not cond", "x ? y : z"};


/* ---- shape rules --------------------------------------------------------------------------- */

static int check_same_dtype(ct_tensor *const *in, int from, int nin) {
  for (int i = from + 1; i < nin; i++)
    if (in[i]->dtype != in[from]->dtype)
      return ct_errorf("mixed dtypes %s and %s (promote with :to(dtype) first)", ct_dtype_name(in[from]->dtype),
                       ct_dtype_name(in[i]->dtype));
  return 0;
}

static int check_compute_dtype(ct_dtype dt, bool ints_ok) {
  if (dt == CT_F32 || dt == CT_F64) return 0;
  if (ints_ok && (dt == CT_I32 || dt == CT_I64)) return 0;
  if (dt == CT_F16 || dt == CT_BF16 || dt == CT_I8)
    return ct_errorf("dtype %s is a storage dtype in chalk: convert with :to(\"f32\") to compute", ct_dtype_name(dt));
  return ct_errorf("dtype %s is not supported (%s)", ct_dtype_name(dt), ints_ok ? "needs a number dtype" : "needs f32 or f64");
}

static int binary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m, bool ints_ok) {
  (void)a;
  if (check_same_dtype(in, 0, nin) || ct_broadcast_shapes(NULL, in, nin, m)) return -1;
  m->dtype = in[0]->dtype;
  return check_compute_dtype(m->dtype, ints_ok);
}
static int arith_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  return binary_shape(in, nin, a, m, true);
}
static int float_binary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  return binary_shape(in, nin, a, m, false);
}
static int compare_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  if (binary_shape(in, nin, a, m, true)) return -1;
  m->dtype = CT_BOOL;
  return 0;
}
static int unary_shape_impl(ct_tensor *const *in, ct_meta *m, bool ints_ok) {
  const ct_tensor *t = in[0];
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  m->dtype = t->dtype;
  return check_compute_dtype(t->dtype, ints_ok);
}
static int unary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  return unary_shape_impl(in, m, true);
}
static int float_unary_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  return unary_shape_impl(in, m, false);
}


/* ---- public entry points: promotion, then the op ------------------------------------------ */

/* Converts a and b to dt (recorded as to_dtype nodes where they require grad) and runs op. */
static ct_tensor *binary_as(ct_op op, ct_tensor *a, ct_tensor *b, ct_dtype dt) {
  if (!a || !b) return ct_errorf("%s: missing operand", ct_optable[op]->name), NULL;
  ct_tensor *ca = ct_to_dtype(a, dt), *cb = ca ? ct_to_dtype(b, dt) : NULL;
  ct_tensor *in[2] = {ca, cb};
  ct_tensor *r = cb ? ct_op_run(op, in, 2, NULL) : NULL;
  ct_release(ca), ct_release(cb);
  return r;
}
static ct_dtype arith_dtype(ct_tensor *a, ct_tensor *b) {
  ct_dtype dt = ct_promote(a->dtype, b->dtype);
  if (dt == CT_BOOL || dt == CT_I8) dt = CT_I64;
  if (dt == CT_F16 || dt == CT_BF16) dt = CT_F32;
  return dt;
}
static ct_dtype float_dtype(ct_tensor *a, ct_tensor *b) {
  ct_dtype dt = arith_dtype(a, b);
  return ct_dtype_is_float(dt) ? dt : CT_F32;
}
/* The public binary entry points: NUM ops compute in the promoted dtype (arith_dtype), FLOAT ops
   in a float one (float_dtype); comparisons compare in the promoted dtype. */
#define DTYPE_RULE_NUM arith_dtype
#define DTYPE_RULE_FLOAT float_dtype
#define BINARY_PUBLIC(name, dts, ...)                                                              \
  ct_tensor *ct_##name(ct_tensor *a, ct_tensor *b) { return binary_as(CT_OP_##name, a, b, DTYPE_RULE_##dts(a, b)); }
#define COMPARE_PUBLIC(name, expr) BINARY_PUBLIC(name, NUM)
CT_EW_BINARY(BINARY_PUBLIC)
CT_EW_COMPARE(COMPARE_PUBLIC)

ct_tensor *ct_where(ct_tensor *c, ct_tensor *a, ct_tensor *b) {
  ct_dtype dt = arith_dtype(a, b);
  ct_tensor *cc = ct_to_dtype(c, CT_BOOL);
  ct_tensor *ca = cc ? ct_to_dtype(a, dt) : NULL, *cb = ca ? ct_to_dtype(b, dt) : NULL;
  ct_tensor *in[3] = {cc, ca, cb};
  ct_tensor *r = cb ? ct_op_run(CT_OP_where, in, 3, NULL) : NULL;
  ct_release(cc), ct_release(ca), ct_release(cb);
  return r;
}

/* ---- axpby: y <- a y + b x in place (optimizer updates) --------------------------------------
 * One pass where `y:copy_(y * a + x * b)` made three with two temporaries (an SGD step with
 * momentum was six passes over every parameter, a third of an MLP step). The arithmetic is
 * torch's mul_ then add_(alpha=): a and b rounded to the dtype, each product rounded, then the
 * sum. In place and not differentiable (like assign, which chalk.capture records as an in-place
 * node); CPU only: on a device without a kernel ct_axpby_ runs mul_scalar, add and assign. */
static int axpby_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  const ct_tensor *y = in[0];
  ct_meta b;
  if (check_same_dtype(in, 0, 2) || check_compute_dtype(y->dtype, false) || ct_broadcast_shapes(NULL, in, 2, &b))
    return -1;
  if (b.ndim != y->ndim || memcmp(b.shape, y->shape, sizeof(int64_t) * (size_t)y->ndim)) {
    char s1[160], s2[160];
    return ct_errorf("x of shape %s does not broadcast to y's shape %s", ct_shape_str(in[1]->shape, in[1]->ndim, s1, sizeof s1),
                     ct_shape_str(y->shape, y->ndim, s2, sizeof s2));
  }
  ct_meta_of(y, m);
  return 0;
}
#define AXPBY_LOOP(name, T)                                                                        \
  static void name(char **p, const int64_t *s, int64_t n, void *ctx) {                             \
    const double *f = ctx;                                                                         \
    const T a = (T)f[0], b = (T)f[1];                                                              \
    const int64_t z = (int64_t)sizeof(T);                                                          \
    if (s[0] == z && s[1] == z) {                                                                  \
      T *y = (T *)p[0];                                                                            \
      const T *x = (const T *)p[1];                                                                \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T ay = a * y[i], bx = b * x[i];                                                            \
        y[i] = ay + bx;                                                                            \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T *y = (T *)(p[0] + i * s[0]);                                                             \
        T ay = a * *y, bx = b * *(const T *)(p[1] + i * s[1]);                                    \
        *y = ay + bx;                                                                              \
      }                                                                                            \
    }                                                                                              \
  }
AXPBY_LOOP(axpby_f32, float)
AXPBY_LOOP(axpby_f64, double)
static int axpby_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  /* out aliases y: iterate (out, x) so each element of y is read and written through one pointer */
  return ct_ew_run_typed(out, in + 1, 1, out->dtype, axpby_f32, axpby_f64, NULL, NULL, (void *)a->f);
}
static void axpby_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)a;
  double isz = (double)ct_dtype_size(out->dtype);
  *f = 3.0 * (double)ct_numel(out);
  *b = isz * (2.0 * (double)ct_numel(out) + (double)ct_numel(in[1]));
}
const ct_opdef ct_op_axpby = {"axpby", 2, CT_OPF_INPLACE_OUT | CT_OPF_NONDIFF, axpby_shape, axpby_cpu, NULL, axpby_cost, NULL, NULL};

int ct_axpby_(ct_tensor *y, double a, ct_tensor *x, double b) {
  if (!y || !x) return ct_errorf("axpby_: missing operand");
  ct_device dev = y->storage->device;
  if (dev.type != CT_CPU && !ct_cuda_forward[CT_OP_axpby]) { /* y <- assign(y * a + x * b) */
    ct_tensor *s = O_ADD(ct_mul_scalar(y, a), b == 1 ? ct_retain(x) : ct_mul_scalar(x, b));
    int rc = s ? ct_assign_(y, s) : -1;
    ct_release(s);
    return rc;
  }
  ct_tensor *cx = ct_to_dtype(x, y->dtype);
  if (!cx) return -1;
  ct_attrs at = {0};
  at.f[0] = a;
  at.f[1] = b;
  ct_tensor *in[2] = {y, cx};
  ct_tensor *r = ct_op_run(CT_OP_axpby, in, 2, &at);
  ct_release(cx);
  if (!r) return -1;
  ct_release(r);
  return 0;
}

static ct_tensor *unary_as(ct_op op, ct_tensor *a, bool float_only, const ct_attrs *attrs) {
  ct_dtype dt = a->dtype;
  if (dt == CT_BOOL || dt == CT_I8) dt = CT_I64;
  if (dt == CT_F16 || dt == CT_BF16 || (float_only && !ct_dtype_is_float(dt))) dt = CT_F32;
  ct_tensor *ca = ct_to_dtype(a, dt);
  ct_tensor *r = ca ? ct_op_run(op, &ca, 1, attrs) : NULL;
  ct_release(ca);
  return r;
}
#define FLOAT_ONLY_NUM false
#define FLOAT_ONLY_FLOAT true
#define UNARY_PUBLIC(name, dts, expr, grad)                                                        \
  ct_tensor *ct_##name(ct_tensor *a) { return unary_as(CT_OP_##name, a, FLOAT_ONLY_##dts, NULL); }
CT_EW_UNARY(UNARY_PUBLIC)

ct_tensor *ct_pow_scalar(ct_tensor *a, double p) {
  ct_attrs at = {0};
  at.f[0] = p;
  return unary_as(CT_OP_pow_scalar, a, true, &at);
}
ct_tensor *ct_add_scalar(ct_tensor *a, double s) {
  ct_attrs at = {0};
  at.f[0] = s;
  return unary_as(CT_OP_add_scalar, a, s != (double)(int64_t)s, &at);
}
ct_tensor *ct_mul_scalar(ct_tensor *a, double s) {
  ct_attrs at = {0};
  at.f[0] = s;
  return unary_as(CT_OP_mul_scalar, a, s != (double)(int64_t)s, &at);
}
ct_tensor *ct_clamp(ct_tensor *a, double lo, double hi) {
  if (lo > hi) return ct_errorf("clamp: lower bound %g is above upper bound %g", lo, hi), NULL;
  ct_attrs at = {0};
  at.f[0] = lo;
  at.f[1] = hi;
  return unary_as(CT_OP_clamp, a, false, &at);
}
