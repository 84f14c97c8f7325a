/* elementwise_defs.h: every elementwise op of chalk, written once (an X-macro list).
 *
 * Each line is one op: its name, its dtypes (NUM: f32 f64 i32 i64; FLOAT: f32 f64), its C
 * expression and its gradient as a formula. The lists expand into:
 *   core/ops/ops_elementwise.c   the op rows, the CPU loops and the public ct_<name>() entry points
 *   core/graph/passes/fuse_cpu.c the fused-loop interpreter's instructions
 *   core/graph/passes/fuse_ew.c  the C/CUDA source of fused kernels (the expression as text)
 *   kernels/elementwise.cu       the CUDA functors
 * so an op computes the same expression, in the same types, everywhere. The gradient *rule* (the
 * C function <name>_backward in ops_elementwise.c, written with ordinary ops) is the one other
 * piece an op needs; the formula here is what pictures, chalk.ops() and :help show.
 *
 * The expressions use a small vocabulary that each expanding file defines for its context:
 *   x, y        the operands, of type T          T      the compute type (float, double, ...)
 *   A0, A1      the op's float attributes (double: attrs.f[0], attrs.f[1])
 *   K(c)        the constant c in type T (0.5f in f32, 0.5 in f64)
 *   EXP LOG SQRT SIN COS TANH ERF POW   the math function of type T (expf or exp, ...)
 * Integer literals (0, 1) are fine: they convert to T exactly.
 *
 * Adding an op: one line in a list below, then its gradient rule <name>_backward in
 * ops_elementwise.c; see core/README.md ("Adding an elementwise op") for a worked example.
 */
#ifndef CHALK_ELEMENTWISE_DEFS_H
#define CHALK_ELEMENTWISE_DEFS_H

/* X(name, dtypes, expression over x and y, gradient formula for inputs a and b, extra flags): each
   has a public ct_<name>(a, b) */
#define CT_EW_BINARY(X)                                                                            \
  X(add, NUM, x + y, "da = g; db = g", 0)                                                          \
  X(sub, NUM, x - y, "da = g; db = -g", 0)                                                         \
  X(mul, NUM, x * y, "da = g*b; db = g*a", 0)                                                      \
  X(div, FLOAT, x / y, "da = g/b; db = -g*a/b^2", 0)                                               \
  X(pow, FLOAT, POW(x, y), "da = g*b*a^(b-1); db = g*a^b*ln a", 0)                                 \
  X(maximum, NUM, x > y ? x : y, "da = g*[a>=b]; db = g*[b>a]", 0)

/* The same columns, reached through their own entry points (relu's and gelu's backward in one
   pass: relu_grad(g, x) = x > 0 ? g : 0, x takes no gradient; gelu_bwd(g, x) = g * gelu'(x), the
   product of g and gelu_grad's expression, so it rounds as the two ops did) */
#define CT_EW_BINARY_INTERNAL(X)                                                                   \
  X(relu_grad, FLOAT, y > 0 ? x : 0, "dg = g*[x>0]", CT_OPF_NONDIFF_IN1)                           \
  X(gelu_bwd, FLOAT,                                                                               \
    x * (K(0.5) * (1 + ERF(y * K(0.70710678118654752))) + y * (K(0.39894228040143268) * EXP(K(-0.5) * y * y))), \
    "dg = g*gelu'(x); dx = g*g_in*phi(x)*(2 - x^2)", 0)

/* X(name, expression): comparisons, bool results, no gradient */
#define CT_EW_COMPARE(X)                                                                           \
  X(eq, x == y) X(ne, x != y) X(lt, x < y) X(le, x <= y) X(gt, x > y) X(ge, x >= y)

/* X(name, dtypes, expression over x, gradient formula): each has a public ct_<name>(x) */
#define CT_EW_UNARY(X)                                                                             \
  X(neg, NUM, -x, "dx = -g")                                                                       \
  X(exp, FLOAT, EXP(x), "dx = g*y")                                                                \
  X(log, FLOAT, LOG(x), "dx = g/x")                                                                \
  X(sqrt, FLOAT, SQRT(x), "dx = g/(2y)")                                                           \
  X(abs, NUM, x < 0 ? -x : x, "dx = g*sign(x)")                                                    \
  X(sign, NUM, (x > 0) - (x < 0), "dx = 0")                                                        \
  X(sin, FLOAT, SIN(x), "dx = g*cos x")                                                            \
  X(cos, FLOAT, COS(x), "dx = -g*sin x")                                                           \
  X(tanh, FLOAT, TANH(x), "dx = g*(1-y^2)")                                                        \
  X(sigmoid, FLOAT, 1 / (1 + EXP(-x)), "dx = g*y*(1-y)")                                           \
  X(relu, NUM, x > 0 ? x : 0, "dx = g*[x>0]")                                                      \
  X(gelu, FLOAT, x * (K(0.5) * (1 + ERF(x * K(0.70710678118654752)))), "dx = g*gelu'(x)")          \
  X(silu, FLOAT, x / (1 + EXP(-x)), "dx = g*s*(1 + x*(1-s)), s = sigmoid(x)")

/* X(name, dtypes, expression, gradient formula): reached through their own entry points
   (gelu's backward, x:pow(p), x + s, x * s, x:clamp(lo, hi)) */
#define CT_EW_UNARY_INTERNAL(X)                                                                    \
  X(gelu_grad, FLOAT,                                                                              \
    K(0.5) * (1 + ERF(x * K(0.70710678118654752))) + x * (K(0.39894228040143268) * EXP(K(-0.5) * x * x)), \
    "dx = g*phi(x)*(2 - x^2)")                                                                     \
  X(pow_scalar, FLOAT, POW(x, (T)A0), "dx = g*p*x^(p-1)")                                          \
  X(add_scalar, NUM, x + A0, "dx = g")                                                             \
  X(mul_scalar, NUM, x * A0, "dx = g*s")                                                           \
  X(clamp, NUM, x < A0 ? A0 : x > A1 ? A1 : x, "dx = g*[lo<=x<=hi]")

/* Every elementwise op's name, for the op table (X takes the name first; other args vary). */
#define CT_EW_OPS(X) CT_EW_BINARY(X) CT_EW_BINARY_INTERNAL(X) CT_EW_COMPARE(X) CT_EW_UNARY(X) CT_EW_UNARY_INTERNAL(X)

#endif
