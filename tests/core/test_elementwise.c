/* test_elementwise.c: every op of core/ops_elementwise.c: forward values against libm, gradient
 * checks in f64 with broadcasting and non-contiguous inputs (plus double backward where the
 * gradient depends on the input), dtype promotion rules, comparisons and where. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

#define NTRIALS 3

/* ---- unary ops ------------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  ct_tensor *(*fn)(ct_tensor *);
  double (*ref)(double);
  double lo, hi, away;
  bool gradgrad;
} unary_spec;

static ct_tensor *unary_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  return ((const unary_spec *)ctx)->fn(in[0]);
}

static double ref_neg(double x) { return -x; }
static double ref_abs(double x) { return fabs(x); }
static double ref_sign(double x) { return (x > 0) - (x < 0); }
static double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_relu(double x) { return x > 0 ? x : 0; }
static double ref_gelu(double x) { return x * 0.5 * (1 + erf(x / sqrt(2.0))); }
static double ref_silu(double x) { return x / (1 + exp(-x)); }

/* Random shapes of 0..4 dims, forward against the C reference in f64 and f32, then gradcheck. */
static void check_unary(const unary_spec *s) {
  tu_rng rng;
  tu_seed(&rng, 1000 + (uint64_t)strlen(s->name) * 17 + (uint64_t)s->name[0]);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 0, 4), 1, 4, shape);
    for (int dt = 0; dt < 2; dt++) {
      ct_dtype d = dt ? CT_F32 : CT_F64;
      ct_tensor *x = tu_rand_tensor_away(&rng, shape, nd, d, s->lo, s->hi, s->away);
      ct_tensor *y = s->fn(x);
      cr_assert(y, "%s(%s) failed: %s", s->name, tu_desc(x), ct_last_error());
      cr_assert_eq(y->dtype, d, "%s keeps the dtype: %s -> %s", s->name, tu_desc(x), tu_desc(y));
      double *xv = tu_values(x);
      int64_t n = ct_numel(x);
      double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
      for (int64_t i = 0; i < n; i++) want[i] = s->ref(xv[i]);
      char msg[1024];
      cr_assert(tu_compare(s->name, y, want, n, d == CT_F64 ? 1e-14 : 2e-6, d == CT_F64 ? 1e-15 : 1e-6, msg,
                           sizeof msg) == 0,
                "%s", msg);
      free(xv), free(want);
      ct_release(x), ct_release(y);
    }
    gc_case c = {.op = s->name, .fn = unary_call, .ctx = (void *)s, .nin = 1, .seed = 77 + (uint64_t)trial,
                 .gradgrad = s->gradgrad};
    gc_set_shape(&c.in[0], shape, nd);
    c.in[0].lo = s->lo, c.in[0].hi = s->hi, c.in[0].away = s->away;
    GC_ASSERT(&c);
  }
}

#define UNARY_TEST(NAME, FN, REF, LO, HI, AWAY, GG)                                                \
  Test(elementwise, NAME) {                                                                        \
    static const unary_spec s = {#NAME, FN, REF, LO, HI, AWAY, GG};                               \
    check_unary(&s);                                                                               \
  }

UNARY_TEST(neg, ct_neg, ref_neg, -2, 2, 0, true)
UNARY_TEST(exp, ct_exp, exp, -2, 2, 0, true)
UNARY_TEST(log, ct_log, log, 0.2, 3, 0, true)
UNARY_TEST(sqrt, ct_sqrt, sqrt, 0.2, 3, 0, true)
UNARY_TEST(abs, ct_abs, ref_abs, -2, 2, 0.05, true)
UNARY_TEST(sign, ct_sign, ref_sign, -2, 2, 0.05, true)
UNARY_TEST(sin, ct_sin, sin, -3, 3, 0, true)
UNARY_TEST(cos, ct_cos, cos, -3, 3, 0, true)
UNARY_TEST(tanh, ct_tanh, tanh, -2, 2, 0, true)
UNARY_TEST(sigmoid, ct_sigmoid, ref_sigmoid, -3, 3, 0, true)
UNARY_TEST(relu, ct_relu, ref_relu, -2, 2, 0.05, true)
UNARY_TEST(gelu, ct_gelu, ref_gelu, -3, 3, 0, true)
UNARY_TEST(silu, ct_silu, ref_silu, -4, 4, 0, true) /* added as core/README.md shows: one line + its rule */

/* ---- ops with a scalar attribute ------------------------------------------------------------- */

typedef struct {
  const char *name;
  int kind; /* 0 pow_scalar, 1 add_scalar, 2 mul_scalar, 3 clamp */
  double a, b;
} scalar_spec;

static ct_tensor *scalar_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  const scalar_spec *s = ctx;
  switch (s->kind) {
  case 0: return ct_pow_scalar(in[0], s->a);
  case 1: return ct_add_scalar(in[0], s->a);
  case 2: return ct_mul_scalar(in[0], s->a);
  default: return ct_clamp(in[0], s->a, s->b);
  }
}

static double scalar_ref(const scalar_spec *s, double x) {
  switch (s->kind) {
  case 0: return pow(x, s->a);
  case 1: return x + s->a;
  case 2: return x * s->a;
  default: return x < s->a ? s->a : x > s->b ? s->b : x;
  }
}

static void check_scalar_op(const scalar_spec *s, double lo, double hi, bool gg) {
  tu_rng rng;
  tu_seed(&rng, 4242 + (uint64_t)s->kind);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 0, 3), 1, 5, shape);
    ct_tensor *x = tu_rand_tensor(&rng, shape, nd, CT_F64, lo, hi);
    ct_tensor *y = scalar_call(&x, 1, (void *)s);
    cr_assert(y, "%s failed: %s", s->name, ct_last_error());
    double *xv = tu_values(x);
    int64_t n = ct_numel(x);
    double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) want[i] = scalar_ref(s, xv[i]);
    char msg[1024];
    cr_assert(tu_compare(s->name, y, want, n, 1e-14, 1e-15, msg, sizeof msg) == 0, "%s", msg);
    free(xv), free(want);
    ct_release(x), ct_release(y);
    gc_case c = {.op = s->name, .fn = scalar_call, .ctx = (void *)s, .nin = 1, .seed = 5 + (uint64_t)trial,
                 .gradgrad = gg};
    gc_set_shape(&c.in[0], shape, nd);
    c.in[0].lo = lo, c.in[0].hi = hi;
    GC_ASSERT(&c);
  }
}

Test(elementwise, pow_scalar) {
  static const scalar_spec a = {"pow_scalar(x, 3)", 0, 3, 0}, b = {"pow_scalar(x, -1.5)", 0, -1.5, 0},
                           c = {"pow_scalar(x, 0.5)", 0, 0.5, 0};
  check_scalar_op(&a, -2, 2, true);
  check_scalar_op(&b, 0.3, 2, true);
  check_scalar_op(&c, 0.3, 2, true);
}
Test(elementwise, add_scalar) {
  static const scalar_spec s = {"add_scalar(x, 1.5)", 1, 1.5, 0};
  check_scalar_op(&s, -2, 2, true);
}
Test(elementwise, mul_scalar) {
  static const scalar_spec s = {"mul_scalar(x, -2.5)", 2, -2.5, 0};
  check_scalar_op(&s, -2, 2, true);
}
Test(elementwise, clamp) {
  static const scalar_spec a = {"clamp(x, -0.5, 0.7)", 3, -0.5, 0.7}, b = {"clamp(x, -inf, 0.3)", 3, -INFINITY, 0.3},
                           c = {"clamp(x, -0.2, inf)", 3, -0.2, INFINITY};
  check_scalar_op(&a, -2, 2, true);
  check_scalar_op(&b, -2, 2, true);
  check_scalar_op(&c, -2, 2, true);
}

/* ---- binary ops with broadcasting ---------------------------------------------------------------- */

typedef struct {
  const char *name;
  ct_tensor *(*fn)(ct_tensor *, ct_tensor *);
  double (*ref)(double, double);
  double alo, ahi, blo, bhi, baway;
  bool gradgrad;
} binary_spec;

static ct_tensor *binary_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  return ((const binary_spec *)ctx)->fn(in[0], in[1]);
}

static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }
static double ref_maximum(double a, double b) { return a > b ? a : b; }

/* b's shape: a random suffix of a's shape with some dims set to 1 (or a's shape with more dims). */
static int broadcast_partner(tu_rng *rng, const int64_t *a, int na, int64_t *b) {
  int nb = (int)tu_int(rng, 0, na);
  for (int d = 0; d < nb; d++) b[d] = tu_int(rng, 0, 2) ? a[na - nb + d] : 1;
  return nb;
}

/* Expected values of op(a, b) under broadcasting, computed by index arithmetic. */
static double *broadcast_ref(const binary_spec *s, const ct_tensor *a, const ct_tensor *b, const ct_tensor *out) {
  double *av = tu_values(a), *bv = tu_values(b);
  int64_t n = ct_numel(out);
  double *r = malloc(sizeof(double) * (size_t)(n ? n : 1));
  int nd = out->ndim;
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t k = rem % out->shape[d];
      rem /= out->shape[d];
      int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
      if (da >= 0) {
        ia += (a->shape[da] == 1 ? 0 : k) * sa;
        sa *= a->shape[da];
      }
      if (db >= 0) {
        ib += (b->shape[db] == 1 ? 0 : k) * sb;
        sb *= b->shape[db];
      }
    }
    r[i] = s->ref(av[ia], bv[ib]);
  }
  free(av), free(bv);
  return r;
}

static void check_binary(const binary_spec *s) {
  tu_rng rng;
  tu_seed(&rng, 99 + (uint64_t)s->name[0] * 3 + (uint64_t)s->name[1]);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
    int na = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 4), 1, 4, sa);
    int nb = broadcast_partner(&rng, sa, na, sb);
    if (trial & 1) { /* swap roles: the first operand broadcasts */
      int64_t t[CT_MAX_DIMS];
      memcpy(t, sa, sizeof t), memcpy(sa, sb, sizeof t), memcpy(sb, t, sizeof t);
      int tn = na;
      na = nb, nb = tn;
    }
    ct_tensor *a = tu_rand_tensor(&rng, sa, na, CT_F64, s->alo, s->ahi);
    ct_tensor *b = tu_rand_tensor_away(&rng, sb, nb, CT_F64, s->blo, s->bhi, s->baway);
    ct_tensor *y = s->fn(a, b);
    cr_assert(y, "%s(%s, %s) failed: %s", s->name, tu_desc(a), tu_desc(b), ct_last_error());
    int want_nd = na > nb ? na : nb;
    cr_assert_eq(y->ndim, want_nd, "%s(%s, %s) gave %s", s->name, tu_desc(a), tu_desc(b), tu_desc(y));
    double *want = broadcast_ref(s, a, b, y);
    char msg[1024];
    cr_assert(tu_compare(s->name, y, want, ct_numel(y), 1e-14, 1e-15, msg, sizeof msg) == 0, "%s", msg);
    free(want);
    ct_release(a), ct_release(b), ct_release(y);

    gc_case c = {.op = s->name, .fn = binary_call, .ctx = (void *)s, .nin = 2, .seed = 11 + (uint64_t)trial,
                 .gradgrad = s->gradgrad};
    gc_set_shape(&c.in[0], sa, na);
    gc_set_shape(&c.in[1], sb, nb);
    c.in[0].lo = s->alo, c.in[0].hi = s->ahi;
    c.in[1].lo = s->blo, c.in[1].hi = s->bhi, c.in[1].away = s->baway;
    GC_ASSERT(&c);
  }
}

#define BINARY_TEST(NAME, FN, REF, ALO, AHI, BLO, BHI, BAWAY, GG)                                  \
  Test(elementwise, NAME) {                                                                        \
    static const binary_spec s = {#NAME, FN, REF, ALO, AHI, BLO, BHI, BAWAY, GG};                 \
    check_binary(&s);                                                                              \
  }

BINARY_TEST(add, ct_add, ref_add, -2, 2, -2, 2, 0, true)
BINARY_TEST(sub, ct_sub, ref_sub, -2, 2, -2, 2, 0, true)
BINARY_TEST(mul, ct_mul, ref_mul, -2, 2, -2, 2, 0, true)
BINARY_TEST(div, ct_div, ref_div, -2, 2, -2, 2, 0.3, true)
BINARY_TEST(pow, ct_pow, pow, 0.3, 2, -2, 2, 0, true)
BINARY_TEST(maximum, ct_maximum, ref_maximum, -2, 2, -2, 2, 0, true)

/* ---- where ------------------------------------------------------------------------------------ */

static ct_tensor *where_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_where(in[0], in[1], in[2]);
}

Test(elementwise, where) {
  tu_rng rng;
  tu_seed(&rng, 313);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t sc[CT_MAX_DIMS], sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
    int nc = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 1, 4, sc);
    int na = broadcast_partner(&rng, sc, nc, sa), nb = broadcast_partner(&rng, sc, nc, sb);
    ct_tensor *cf = tu_rand_tensor(&rng, sc, nc, CT_F64, -1, 1);
    ct_tensor *zero = ct_scalar(0, CT_F64, ct_cpu());
    ct_tensor *cond = ct_gt(cf, zero);
    cr_assert(cond && cond->dtype == CT_BOOL, "gt gives bool: %s", ct_last_error());
    ct_tensor *a = tu_rand_tensor(&rng, sa, na, CT_F64, -2, 2), *b = tu_rand_tensor(&rng, sb, nb, CT_F64, -2, 2);
    ct_tensor *y = ct_where(cond, a, b);
    cr_assert(y, "where failed: %s", ct_last_error());
    cr_assert_eq(y->ndim, nc);
    /* expected: (cond ? a : b) via mul/add of the masks, itself checked against index arithmetic above */
    double *cv = tu_values(cf), *yv = tu_values(y);
    ct_tensor *ae = ct_expand(a, TU_DIMS(y)), *be = ct_expand(b, TU_DIMS(y));
    double *av = tu_values(ae), *bv = tu_values(be);
    for (int64_t i = 0; i < ct_numel(y); i++)
      cr_assert_eq(yv[i], cv[i] > 0 ? av[i] : bv[i], "where element %lld", (long long)i);
    free(cv), free(yv), free(av), free(bv);
    ct_release(ae), ct_release(be), ct_release(a), ct_release(b), ct_release(y), ct_release(cf), ct_release(zero);

    gc_case c = {.op = "where", .fn = where_call, .nin = 3, .seed = 21 + (uint64_t)trial, .gradgrad = true};
    c.in[0].fixed = cond;
    gc_set_shape(&c.in[1], sa, na);
    gc_set_shape(&c.in[2], sb, nb);
    GC_ASSERT(&c);
    ct_release(cond);
  }
}

Test(elementwise, where_promotes_and_takes_numbers_as_conditions) {
  double cv[] = {1, 0, 2};
  ct_tensor *c = ct_from_doubles(cv, TU_SHAPE(3), CT_F32, ct_cpu());
  ct_tensor *a = ct_full(TU_SHAPE(3), 5, CT_I32, ct_cpu()), *b = ct_full(TU_SHAPE(1), 0.5, CT_F64, ct_cpu());
  ct_tensor *y = ct_where(c, a, b);
  cr_assert(y, "%s", ct_last_error());
  cr_assert_eq(y->dtype, CT_F64, "where(i32, f64) promotes to f64, got %s", tu_desc(y));
  double want[] = {5, 0.5, 5};
  char msg[512];
  cr_assert(tu_compare("where", y, want, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_release(c), ct_release(a), ct_release(b), ct_release(y);
}

/* ---- comparisons ------------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  ct_tensor *(*fn)(ct_tensor *, ct_tensor *);
  int (*ref)(double, double);
} compare_spec;

static int ref_eq(double a, double b) { return a == b; }
static int ref_ne(double a, double b) { return a != b; }
static int ref_lt(double a, double b) { return a < b; }
static int ref_le(double a, double b) { return a <= b; }
static int ref_gt(double a, double b) { return a > b; }
static int ref_ge(double a, double b) { return a >= b; }

static void check_compare(const compare_spec *s) {
  /* small integers so that ties occur; mixed dtypes promote before comparing */
  tu_rng rng;
  tu_seed(&rng, 555);
  for (int trial = 0; trial < 4; trial++) {
    int64_t sa[CT_MAX_DIMS], sb[CT_MAX_DIMS];
    int na = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 1, 4, sa);
    int nb = broadcast_partner(&rng, sa, na, sb);
    static const ct_dtype da[] = {CT_F32, CT_F64, CT_I32, CT_I64}, db[] = {CT_F32, CT_I64, CT_F64, CT_I64};
    ct_tensor *a = tu_rand_tensor(&rng, sa, na, CT_F64, -2, 3), *b = tu_rand_tensor(&rng, sb, nb, CT_F64, -2, 3);
    ct_tensor *ai = ct_to_dtype(a, CT_I64), *bi = ct_to_dtype(b, CT_I64); /* truncate to integers */
    ct_tensor *ac = ct_to_dtype(ai, da[trial]), *bc = ct_to_dtype(bi, db[trial]);
    cr_assert(ac && bc, "%s", ct_last_error());
    if (trial == 0) ct_requires_grad_(ac, true);
    ct_tensor *y = s->fn(ac, bc);
    cr_assert(y, "%s(%s, %s) failed: %s", s->name, tu_desc(ac), tu_desc(bc), ct_last_error());
    cr_assert_eq(y->dtype, CT_BOOL, "%s gives bool, got %s", s->name, tu_desc(y));
    cr_assert(!y->requires_grad && !y->grad_fn, "%s records no autograd node", s->name);
    ct_tensor *ae = ct_expand(ac, TU_DIMS(y)), *be = ct_expand(bc, TU_DIMS(y));
    double *av = tu_values(ae), *bv = tu_values(be), *yv = tu_values(y);
    for (int64_t i = 0; i < ct_numel(y); i++)
      cr_assert_eq(yv[i], (double)s->ref(av[i], bv[i]), "%s(%g, %g) element %lld: got %g", s->name, av[i], bv[i],
                   (long long)i, yv[i]);
    free(av), free(bv), free(yv);
    ct_release(ae), ct_release(be), ct_release(y);
    ct_release(a), ct_release(b), ct_release(ai), ct_release(bi), ct_release(ac), ct_release(bc);
  }
}

#define COMPARE_TEST(NAME)                                                                         \
  Test(elementwise, NAME) {                                                                        \
    static const compare_spec s = {#NAME, ct_##NAME, ref_##NAME};                                  \
    check_compare(&s);                                                                             \
  }
COMPARE_TEST(eq)
COMPARE_TEST(ne)
COMPARE_TEST(lt)
COMPARE_TEST(le)
COMPARE_TEST(gt)
COMPARE_TEST(ge)

/* ---- dtype promotion -------------------------------------------------------------------------- */

Test(elementwise, promotion_table) {
  cr_assert_eq(ct_promote(CT_I32, CT_F32), CT_F32);
  cr_assert_eq(ct_promote(CT_F32, CT_F64), CT_F64);
  cr_assert_eq(ct_promote(CT_I64, CT_I32), CT_I64);
  cr_assert_eq(ct_promote(CT_BOOL, CT_I8), CT_I8);
  cr_assert_eq(ct_promote(CT_F16, CT_BF16), CT_F32);
  cr_assert_eq(ct_promote(CT_F16, CT_F32), CT_F32);
  cr_assert_eq(ct_promote(CT_BF16, CT_I64), CT_BF16);
  cr_assert_eq(ct_promote(CT_I8, CT_F16), CT_F16);
}

typedef struct {
  ct_dtype a, b;
  ct_tensor *(*fn)(ct_tensor *, ct_tensor *);
  const char *op;
  ct_dtype want;
} promo_case;

Test(elementwise, promotion_in_ops) {
  static const promo_case cases[] = {
      {CT_I32, CT_F32, ct_add, "add", CT_F32},  {CT_I64, CT_F64, ct_mul, "mul", CT_F64},
      {CT_F32, CT_F64, ct_sub, "sub", CT_F64},  {CT_I32, CT_I64, ct_add, "add", CT_I64},
      {CT_I32, CT_I32, ct_div, "div", CT_F32},  {CT_I64, CT_I64, ct_pow, "pow", CT_F32},
      {CT_BOOL, CT_BOOL, ct_add, "add", CT_I64}, {CT_F16, CT_F32, ct_add, "add", CT_F32},
      {CT_F16, CT_F16, ct_mul, "mul", CT_F32},  {CT_F16, CT_BF16, ct_add, "add", CT_F32},
      {CT_I8, CT_I8, ct_add, "add", CT_I64},    {CT_I32, CT_F64, ct_maximum, "maximum", CT_F64},
      {CT_I32, CT_I32, ct_sub, "sub", CT_I32},  {CT_BF16, CT_F64, ct_add, "add", CT_F64},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const promo_case *p = &cases[k];
    ct_tensor *a = ct_full(TU_SHAPE(2, 2), 3, p->a, ct_cpu()), *b = ct_full(TU_SHAPE(2), 1, p->b, ct_cpu());
    ct_tensor *y = p->fn(a, b);
    cr_assert(y, "%s(%s, %s) failed: %s", p->op, tu_desc(a), tu_desc(b), ct_last_error());
    cr_assert_eq(y->dtype, p->want, "%s(%s, %s) gave %s, expected %s", p->op, tu_desc(a), tu_desc(b), tu_desc(y),
                 ct_dtype_name(p->want));
    ct_release(a), ct_release(b), ct_release(y);
  }
}

Test(elementwise, promotion_of_unary_and_scalar_ops) {
  ct_tensor *i = ct_full(TU_SHAPE(3), 2, CT_I64, ct_cpu());
  ct_tensor *bl = ct_full(TU_SHAPE(3), 1, CT_BOOL, ct_cpu());
  ct_tensor *h = ct_full(TU_SHAPE(3), 1.5, CT_F16, ct_cpu());
  struct {
    ct_tensor *y;
    ct_dtype want;
    const char *what;
  } r[] = {
      {ct_exp(i), CT_F32, "exp(i64)"},          {ct_neg(i), CT_I64, "neg(i64)"},
      {ct_neg(bl), CT_I64, "neg(bool)"},        {ct_abs(i), CT_I64, "abs(i64)"},
      {ct_sqrt(h), CT_F32, "sqrt(f16)"},        {ct_add_scalar(i, 0.5), CT_F32, "add_scalar(i64, 0.5)"},
      {ct_mul_scalar(i, 3), CT_I64, "mul_scalar(i64, 3)"}, {ct_relu(h), CT_F32, "relu(f16)"},
      {ct_clamp(i, 0, 1), CT_I64, "clamp(i64)"},
  };
  for (size_t k = 0; k < sizeof r / sizeof *r; k++) {
    cr_assert(r[k].y, "%s failed: %s", r[k].what, ct_last_error());
    cr_assert_eq(r[k].y->dtype, r[k].want, "%s gave %s, expected %s", r[k].what, tu_desc(r[k].y),
                 ct_dtype_name(r[k].want));
    ct_release(r[k].y);
  }
  double v;
  ct_tensor *s = ct_add_scalar(i, 0.5);
  int64_t z = 0;
  ct_get(s, &z, &v);
  cr_assert_eq(v, 2.5);
  ct_release(s), ct_release(i), ct_release(bl), ct_release(h);
}

Test(elementwise, gradient_flows_through_promotion) {
  /* f32 leaf combined with an f64 tensor: the result is f64, the leaf's grad stays f32 */
  ct_tensor *a = ct_full(TU_SHAPE(2, 3), 2, CT_F32, ct_cpu());
  ct_tensor *b = ct_full(TU_SHAPE(3), 0.25, CT_F64, ct_cpu());
  ct_requires_grad_(a, true);
  ct_requires_grad_(b, true);
  ct_tensor *y = ct_mul(a, b);
  cr_assert(y && y->dtype == CT_F64, "%s", ct_last_error());
  ct_tensor *g = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
  cr_assert(a->grad && a->grad->dtype == CT_F32, "a.grad is f32: %s", a->grad ? tu_desc(a->grad) : "none");
  cr_assert(b->grad && b->grad->dtype == CT_F64 && b->grad->ndim == 1, "b.grad reduced to [3] f64");
  double wa[6] = {0.25, 0.25, 0.25, 0.25, 0.25, 0.25}, wb[3] = {4, 4, 4};
  char msg[512];
  cr_assert(tu_compare("a.grad", a->grad, wa, 6, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(tu_compare("b.grad", b->grad, wb, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_release(g), ct_release(y), ct_release(a), ct_release(b);
}

Test(elementwise, integer_kernels) {
  double av[] = {7, -7, 3}, bv[] = {2, 2, -4};
  ct_tensor *a = ct_from_doubles(av, TU_SHAPE(3), CT_I32, ct_cpu()), *b = ct_from_doubles(bv, TU_SHAPE(3), CT_I32, ct_cpu());
  ct_tensor *s = ct_add(a, b), *m = ct_mul(a, b), *d = ct_div(a, b), *r = ct_relu(a), *mx = ct_maximum(a, b);
  cr_assert(s && m && d && r && mx, "%s", ct_last_error());
  double ws[] = {9, -5, -1}, wm[] = {14, -14, -12}, wd[] = {3.5, -3.5, -0.75}, wr[] = {7, 0, 3}, wx[] = {7, 2, 3};
  char msg[512];
  cr_assert(s->dtype == CT_I32 && tu_compare("add i32", s, ws, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(tu_compare("mul i32", m, wm, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(d->dtype == CT_F32 && tu_compare("div i32 -> f32", d, wd, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(tu_compare("relu i32", r, wr, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(tu_compare("maximum i32", mx, wx, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_release(a), ct_release(b), ct_release(s), ct_release(m), ct_release(d), ct_release(r), ct_release(mx);
}

Test(elementwise, maximum_splits_ties) {
  double av[] = {1, 2, 3}, bv[] = {1, 5, 0};
  ct_tensor *a = ct_from_doubles(av, TU_SHAPE(3), CT_F64, ct_cpu()), *b = ct_from_doubles(bv, TU_SHAPE(3), CT_F64, ct_cpu());
  ct_requires_grad_(a, true), ct_requires_grad_(b, true);
  ct_tensor *y = ct_maximum(a, b), *g = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
  double ga[] = {0.5, 0, 1}, gb[] = {0.5, 1, 0};
  char msg[512];
  cr_assert(tu_compare("maximum grad a", a->grad, ga, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  cr_assert(tu_compare("maximum grad b", b->grad, gb, 3, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_release(a), ct_release(b), ct_release(y), ct_release(g);
}

Test(elementwise, f32_forward_matches_f64) {
  /* the f32 kernels compute what the f64 kernels compute, to f32 precision */
  tu_rng rng;
  tu_seed(&rng, 8);
  ct_tensor *x64 = tu_rand_tensor(&rng, TU_SHAPE(5, 7), CT_F64, 0.2, 2), *x32 = ct_to_dtype(x64, CT_F32);
  ct_tensor *(*fns[])(ct_tensor *) = {ct_exp, ct_log, ct_sqrt, ct_sin, ct_cos, ct_tanh, ct_sigmoid, ct_gelu, ct_silu};
  for (size_t k = 0; k < sizeof fns / sizeof *fns; k++) {
    ct_tensor *a = fns[k](x64), *b = fns[k](x32);
    char msg[512];
    cr_assert(b->dtype == CT_F32);
    cr_assert(tu_compare_tensors("f32 vs f64", b, a, 3e-6, 1e-6, msg, sizeof msg) == 0, "function %zu: %s", k, msg);
    ct_release(a), ct_release(b);
  }
  ct_release(x64), ct_release(x32);
}
