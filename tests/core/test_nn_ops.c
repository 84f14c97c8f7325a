/* test_nn_ops.c: the nn, index and conv op families (ops_nn.c, ops_index.c, ops_conv.c): forward
 * values against brute-force loops, gradients and double-backward against central differences in
 * f64, and the error messages users see for bad indices, targets and shapes.
 * Self-contained (builds without the shared test helpers); every helper here is static and
 * releases what it makes, so the file also runs clean under LeakSanitizer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"

/* ---- helpers ------------------------------------------------------------------------------- */

#define SH(...) (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define NT_DIMS(t) (t)->shape, (t)->ndim
#define NT_ASSERT_OK(t) cr_assert((t) != NULL, "unexpected error: %s", ct_last_error())

static ct_tensor *nt_vals(const double *v, const int64_t *shape, int nd, ct_dtype dt) {
  ct_tensor *t = ct_from_doubles(v, shape, nd, dt, ct_cpu());
  NT_ASSERT_OK(t);
  return t;
}
static ct_tensor *nt_idx(const int64_t *v, const int64_t *shape, int nd) {
  ct_tensor *t = ct_from_data(v, shape, nd, CT_I64, ct_cpu());
  NT_ASSERT_OK(t);
  return t;
}
/* Random normal f64 leaf that requires grad. */
static ct_tensor *nt_leaf(const int64_t *shape, int nd) {
  ct_tensor *t = ct_randn(shape, nd, CT_F64, ct_cpu());
  NT_ASSERT_OK(t);
  ct_requires_grad_(t, true);
  return t;
}
static double *nt_read(const ct_tensor *t) {
  double *v = malloc(sizeof(double) * (size_t)(ct_numel(t) + 1));
  cr_assert(v && ct_to_doubles(t, v) == 0, "%s", ct_last_error());
  return v;
}
static void nt_expect(const char *what, const ct_tensor *t, const double *want, int64_t n, double tol) {
  cr_assert_eq(ct_numel(t), n, "%s: %lld elements, expected %lld", what, (long long)ct_numel(t), (long long)n);
  double *got = nt_read(t);
  for (int64_t i = 0; i < n; i++)
    cr_assert(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])), "%s: element %lld is %.12g, expected %.12g",
              what, (long long)i, got[i], want[i]);
  free(got);
}
static void nt_expect_shape(const ct_tensor *t, const int64_t *shape, int nd) {
  cr_assert_eq(t->ndim, nd, "ndim %d, expected %d", t->ndim, nd);
  for (int d = 0; d < nd; d++) cr_assert_eq(t->shape[d], shape[d], "dim %d: %lld vs %lld", d, (long long)t->shape[d], (long long)shape[d]);
}
static void nt_expect_error(ct_tensor *r, const char *a, const char *b) {
  cr_assert_null(r, "expected an error mentioning \"%s\"", a);
  cr_assert(strstr(ct_last_error(), a), "error \"%s\" does not mention \"%s\"", ct_last_error(), a);
  if (b) cr_assert(strstr(ct_last_error(), b), "error \"%s\" does not mention \"%s\"", ct_last_error(), b);
}

typedef ct_tensor *(*nt_fn)(ct_tensor **in, void *ctx);

static double nt_dot_out(nt_fn f, ct_tensor **in, void *ctx, const double *w) {
  ct_tensor *out = f(in, ctx);
  NT_ASSERT_OK(out);
  double *v = nt_read(out), s = 0;
  for (int64_t i = 0; i < ct_numel(out); i++) s += v[i] * w[i];
  free(v);
  ct_release(out);
  return s;
}

/* Analytical gradient of <f(in), w> (w random) against central differences, for every input that
   requires grad. Inputs must be contiguous f64 leaves (the function may make views of them). */
static void nt_gradcheck(const char *name, nt_fn f, ct_tensor **in, int nin, void *ctx) {
  ct_tensor *out = f(in, ctx);
  NT_ASSERT_OK(out);
  ct_tensor *w = ct_randn(out->shape, out->ndim, CT_F64, ct_cpu());
  double *wv = nt_read(w);
  ct_tensor *res[8] = {0};
  cr_assert(ct_grad(out, w, in, nin, res, false, false) == 0, "%s: grad failed: %s", name, ct_last_error());
  ct_release(out), ct_release(w);
  bool mode = ct_set_grad_enabled(false);
  for (int i = 0; i < nin; i++) {
    double *an = nt_read(res[i]), *x = (double *)in[i]->storage->data + in[i]->offset;
    for (int64_t e = 0; e < ct_numel(in[i]); e++) {
      double orig = x[e], h = 1e-6;
      x[e] = orig + h;
      double fp = nt_dot_out(f, in, ctx, wv);
      x[e] = orig - h;
      double fm = nt_dot_out(f, in, ctx, wv);
      x[e] = orig;
      double num = (fp - fm) / (2 * h);
      cr_assert(fabs(num - an[e]) <= 1e-5 * (1 + fabs(num)),
                "%s: d/d input %d element %lld: analytical %.10g, numerical %.10g", name, i + 1, (long long)e, an[e], num);
    }
    free(an);
    ct_release(res[i]);
  }
  ct_set_grad_enabled(mode);
  free(wv);
}

/* Double backward: phi(in) = <d<f(in), w>/d in[0], v>; its gradient by ct_grad through the
   create_graph gradient, against central differences of phi. */
typedef struct {
  nt_fn f;
  void *ctx;
  ct_tensor *w, *v;
  int nin;
} nt_gg;
static double nt_phi(nt_gg *g, ct_tensor **in) {
  ct_tensor *out = g->f(in, g->ctx), *gx = NULL;
  NT_ASSERT_OK(out);
  cr_assert(ct_grad(out, g->w, in, 1, &gx, false, false) == 0, "%s", ct_last_error());
  double *a = nt_read(gx), *b = nt_read(g->v), s = 0;
  for (int64_t i = 0; i < ct_numel(gx); i++) s += a[i] * b[i];
  free(a), free(b);
  ct_release(gx), ct_release(out);
  return s;
}
static void nt_gradgradcheck(const char *name, nt_fn f, ct_tensor **in, int nin, void *ctx) {
  ct_tensor *out = f(in, ctx);
  NT_ASSERT_OK(out);
  nt_gg g = {f, ctx, ct_randn(out->shape, out->ndim, CT_F64, ct_cpu()), ct_randn(NT_DIMS(in[0]), CT_F64, ct_cpu()),
             nin};
  ct_tensor *gx = NULL, *res[8] = {0};
  cr_assert(ct_grad(out, g.w, in, 1, &gx, true, true) == 0, "%s: first grad failed: %s", name, ct_last_error());
  cr_assert(ct_grad(gx, g.v, in, nin, res, false, false) == 0, "%s: second grad failed: %s", name, ct_last_error());
  ct_release(gx), ct_release(out);
  for (int i = 0; i < nin; i++) {
    double *an = nt_read(res[i]), *x = (double *)in[i]->storage->data + in[i]->offset;
    for (int64_t e = 0; e < ct_numel(in[i]); e++) {
      double orig = x[e], h = 1e-5;
      x[e] = orig + h;
      double fp = nt_phi(&g, in);
      x[e] = orig - h;
      double fm = nt_phi(&g, in);
      x[e] = orig;
      double num = (fp - fm) / (2 * h);
      cr_assert(fabs(num - an[e]) <= 1e-4 * (1 + fabs(num)),
                "%s: second derivative wrt input %d element %lld: analytical %.10g, numerical %.10g", name, i + 1,
                (long long)e, an[e], num);
    }
    free(an);
    ct_release(res[i]);
  }
  ct_release(g.w), ct_release(g.v);
}

/* ---- softmax, log_softmax ------------------------------------------------------------------- */

static void brute_softmax(const double *x, double *y, const int64_t *s, int dim, bool lg) {
  int64_t outer = 1, inner = 1, D = s[dim];
  for (int d = 0; d < dim; d++) outer *= s[d];
  for (int d = dim + 1; d < 3; d++) inner *= s[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      double m = -INFINITY, z = 0;
      for (int64_t j = 0; j < D; j++) m = fmax(m, x[(o * D + j) * inner + k]);
      for (int64_t j = 0; j < D; j++) z += exp(x[(o * D + j) * inner + k] - m);
      for (int64_t j = 0; j < D; j++) {
        double v = x[(o * D + j) * inner + k] - m;
        y[(o * D + j) * inner + k] = lg ? v - log(z) : exp(v) / z;
      }
    }
}

Test(nn_ops, softmax_forward_every_dim) {
  ct_manual_seed(1);
  int64_t s[3] = {3, 4, 5};
  ct_tensor *x = ct_randn(s, 3, CT_F64, ct_cpu());
  double *xv = nt_read(x), want[60];
  for (int lg = 0; lg < 2; lg++)
    for (int dim = 0; dim < 3; dim++) {
      brute_softmax(xv, want, s, dim, lg);
      ct_tensor *y = lg ? ct_log_softmax(x, dim - 3) : ct_softmax(x, dim);
      NT_ASSERT_OK(y);
      nt_expect(lg ? "log_softmax" : "softmax", y, want, 60, 1e-12);
      ct_release(y);
    }
  /* f32 too, through a transposed (strided) input */
  ct_tensor *x32 = ct_to_dtype(x, CT_F32), *xt = ct_transpose(x32, 0, 2), *y = ct_softmax(xt, 1);
  NT_ASSERT_OK(y);
  double *yv = nt_read(y);
  brute_softmax(xv, want, s, 1, false);
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 4; j++)
      for (int64_t k = 0; k < 5; k++)
        cr_assert(fabs(yv[(k * 4 + j) * 3 + i] - want[(i * 4 + j) * 5 + k]) < 1e-6);
  free(yv), free(xv);
  ct_release(y), ct_release(xt), ct_release(x32), ct_release(x);
}

Test(nn_ops, softmax_is_stable_for_large_inputs) {
  ct_tensor *x = nt_vals((double[]){1000, 1001, 1002, -1000, -1001, -1002}, SH(2, 3), CT_F32);
  ct_tensor *y = ct_softmax(x, -1), *ly = ct_log_softmax(x, 1);
  NT_ASSERT_OK(y);
  NT_ASSERT_OK(ly);
  double z = 1 + exp(-1) + exp(-2);
  nt_expect("softmax", y, (double[]){exp(-2) / z, exp(-1) / z, 1 / z, 1 / z, exp(-1) / z, exp(-2) / z}, 6, 1e-6);
  nt_expect("log_softmax", ly,
            (double[]){-2 - log(z), -1 - log(z), -log(z), -log(z), -1 - log(z), -2 - log(z)}, 6, 1e-6);
  ct_release(y), ct_release(ly), ct_release(x);
}

Test(nn_ops, softmax_f32_masked_nan_and_long_rows) {
  /* -inf entries (a causal mask) give exactly 0; a NaN poisons only its own row */
  double v[22];
  for (int i = 0; i < 11; i++) v[i] = i % 3 == 0 ? -INFINITY : 0.25 * i;
  for (int i = 11; i < 22; i++) v[i] = i == 17 ? NAN : 0.1 * i;
  ct_tensor *x = nt_vals(v, SH(2, 11), CT_F32), *y = ct_softmax(x, 1), *ly = ct_log_softmax(x, 1);
  NT_ASSERT_OK(y);
  NT_ASSERT_OK(ly);
  double *yv = nt_read(y), *lv = nt_read(ly), z = 0;
  for (int i = 0; i < 11; i++)
    if (i % 3) z += exp(0.25 * i);
  for (int i = 0; i < 11; i++) {
    if (i % 3 == 0) {
      cr_assert(yv[i] == 0, "masked element %d: %g", i, yv[i]);
      cr_assert(isinf(lv[i]) && lv[i] < 0, "masked log element %d: %g", i, lv[i]);
    } else {
      cr_assert(fabs(yv[i] - exp(0.25 * i) / z) < 1e-7, "element %d: %g", i, yv[i]);
    }
  }
  for (int i = 11; i < 22; i++) cr_assert(isnan(yv[i]) && isnan(lv[i]), "row with a NaN, element %d: %g", i, yv[i]);
  free(yv), free(lv);
  ct_release(y), ct_release(ly), ct_release(x);
  /* long f32 rows over a wide range against f64 */
  ct_manual_seed(21);
  ct_tensor *r = ct_randn(SH(3, 1001), CT_F64, ct_cpu()), *r10 = ct_mul_scalar(r, 10), *r32 = ct_to_dtype(r10, CT_F32);
  ct_tensor *r64 = ct_to_dtype(r32, CT_F64);
  for (int lg = 0; lg < 2; lg++) {
    ct_tensor *a = lg ? ct_log_softmax(r32, -1) : ct_softmax(r32, -1), *b = lg ? ct_log_softmax(r64, -1) : ct_softmax(r64, -1);
    NT_ASSERT_OK(a);
    NT_ASSERT_OK(b);
    double *av = nt_read(a), *bv = nt_read(b);
    for (int i = 0; i < 3003; i++)
      /* f32 rounds x - max to a relative 2^-24, so the bound grows with |log p| */
      cr_assert(fabs(av[i] - bv[i]) <= (lg ? 1e-6 + 2.4e-7 * fabs(bv[i]) : (1e-6 + 2.4e-7 * fabs(log(bv[i]))) * bv[i]),
                "%s element %d: f32 %.9g vs f64 %.9g",
                lg ? "log_softmax" : "softmax", i, av[i], bv[i]);
    free(av), free(bv);
    ct_release(a), ct_release(b);
  }
  ct_release(r), ct_release(r10), ct_release(r32), ct_release(r64);
}

static ct_tensor *f_softmax(ct_tensor **in, void *ctx) { return ct_softmax(in[0], *(int *)ctx); }
static ct_tensor *f_log_softmax(ct_tensor **in, void *ctx) { return ct_log_softmax(in[0], *(int *)ctx); }
static ct_tensor *f_softmax_t(ct_tensor **in, void *ctx) {
  (void)ctx;
  ct_tensor *t = ct_transpose(in[0], 0, 1), *r = ct_softmax(t, 1);
  ct_release(t);
  return r;
}

Test(nn_ops, softmax_gradients) {
  ct_manual_seed(2);
  for (int dim = 0; dim < 3; dim++) {
    ct_tensor *x = nt_leaf(SH(2, 3, 4));
    nt_gradcheck("softmax", f_softmax, &x, 1, &dim);
    nt_gradcheck("log_softmax", f_log_softmax, &x, 1, &dim);
    ct_release(x);
  }
  ct_tensor *x = nt_leaf(SH(4, 3));
  nt_gradcheck("softmax of a transposed input", f_softmax_t, &x, 1, NULL);
  ct_release(x);
}

Test(nn_ops, softmax_double_backward) {
  ct_manual_seed(3);
  int dim = 1;
  ct_tensor *x = nt_leaf(SH(3, 4));
  nt_gradgradcheck("softmax", f_softmax, &x, 1, &dim);
  nt_gradgradcheck("log_softmax", f_log_softmax, &x, 1, &dim);
  ct_release(x);
}

/* ---- nll_loss, cross_entropy, one_hot, mse_loss ---------------------------------------------- */

Test(nn_ops, nll_loss_forward_and_negative_targets) {
  double lp[12] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12};
  ct_tensor *logp = nt_vals(lp, SH(3, 4), CT_F64), *t = nt_idx((int64_t[]){2, -1, 1}, SH(3));
  ct_tensor *l = ct_nll_loss(logp, t);
  NT_ASSERT_OK(l);
  nt_expect("nll_loss", l, (double[]){(2 + 8 + 9) / 3.0}, 1, 1e-12);
  nt_expect_shape(l, NULL, 0);
  /* [C] input with a scalar target */
  ct_tensor *row = ct_select(logp, 0, 1), *t0 = nt_idx((int64_t[]){3}, NULL, 0), *l1 = ct_nll_loss(row, t0);
  NT_ASSERT_OK(l1);
  nt_expect("nll_loss [C]", l1, (double[]){7}, 1, 1e-12);
  ct_release(l), ct_release(l1), ct_release(row), ct_release(t0), ct_release(t), ct_release(logp);
}

Test(nn_ops, nll_loss_errors) {
  ct_tensor *logp = ct_zeros(SH(3, 4), CT_F32, ct_cpu());
  ct_tensor *bad = nt_idx((int64_t[]){1, 5, 2}, SH(3));
  nt_expect_error(ct_nll_loss(logp, bad), "target 5", "C=4");
  ct_tensor *zero = nt_idx((int64_t[]){1, 0, 2}, SH(3));
  nt_expect_error(ct_nll_loss(logp, zero), "target 0", "1-based");
  ct_tensor *ft = ct_zeros(SH(3), CT_F32, ct_cpu());
  nt_expect_error(ct_nll_loss(logp, ft), "nll_loss", "integer");
  ct_tensor *short_t = nt_idx((int64_t[]){1, 2}, SH(2));
  nt_expect_error(ct_nll_loss(logp, short_t), "nll_loss", "[2]");
  nt_expect_error(ct_cross_entropy(logp, bad), "cross_entropy", "target 5");
  ct_release(logp), ct_release(bad), ct_release(zero), ct_release(ft), ct_release(short_t);
}

Test(nn_ops, cross_entropy_forward) {
  ct_manual_seed(4);
  ct_tensor *x = ct_randn(SH(5, 7), CT_F32, ct_cpu());
  int64_t tv[5] = {1, 7, 3, -2, 4};
  ct_tensor *t = nt_idx(tv, SH(5)), *l = ct_cross_entropy(x, t);
  NT_ASSERT_OK(l);
  double *xv = nt_read(x), want = 0;
  for (int n = 0; n < 5; n++) {
    double m = -INFINITY, z = 0;
    for (int c = 0; c < 7; c++) m = fmax(m, xv[n * 7 + c]);
    for (int c = 0; c < 7; c++) z += exp(xv[n * 7 + c] - m);
    int64_t k = tv[n] > 0 ? tv[n] - 1 : 7 + tv[n];
    want += (m + log(z) - xv[n * 7 + k]) / 5;
  }
  nt_expect("cross_entropy", l, &want, 1, 1e-6);
  free(xv);
  ct_release(l), ct_release(t), ct_release(x);
}

static ct_tensor *f_cross_entropy(ct_tensor **in, void *ctx) { return ct_cross_entropy(in[0], ctx); }
static ct_tensor *f_nll(ct_tensor **in, void *ctx) { return ct_nll_loss(in[0], ctx); }
static ct_tensor *f_mse(ct_tensor **in, void *ctx) {
  (void)ctx;
  return ct_mse_loss(in[0], in[1]);
}

Test(nn_ops, loss_gradients) {
  ct_manual_seed(5);
  ct_tensor *x = nt_leaf(SH(4, 5)), *t = nt_idx((int64_t[]){5, 1, -1, 3}, SH(4));
  nt_gradcheck("cross_entropy", f_cross_entropy, &x, 1, t);
  nt_gradgradcheck("cross_entropy", f_cross_entropy, &x, 1, t);
  nt_gradcheck("nll_loss", f_nll, &x, 1, t);
  ct_tensor *v = nt_leaf(SH(6)), *t0 = nt_idx((int64_t[]){-2}, NULL, 0);
  nt_gradcheck("nll_loss [C]", f_nll, &v, 1, t0);
  ct_tensor *ab[2] = {nt_leaf(SH(3, 2)), nt_leaf(SH(3, 2))};
  nt_gradcheck("mse_loss", f_mse, ab, 2, NULL);
  ct_release(x), ct_release(t), ct_release(v), ct_release(t0), ct_release(ab[0]), ct_release(ab[1]);
}

Test(nn_ops, mse_loss_forward_and_shape_error) {
  ct_tensor *a = nt_vals((double[]){1, 2, 3, 4}, SH(2, 2), CT_F32), *b = nt_vals((double[]){0, 2, 5, 1}, SH(2, 2), CT_F32);
  ct_tensor *l = ct_mse_loss(a, b);
  NT_ASSERT_OK(l);
  nt_expect("mse", l, (double[]){(1 + 0 + 4 + 9) / 4.0}, 1, 1e-7);
  ct_tensor *c = ct_zeros(SH(2), CT_F32, ct_cpu());
  nt_expect_error(ct_mse_loss(a, c), "mse_loss", "[2]");
  ct_release(l), ct_release(a), ct_release(b), ct_release(c);
}

Test(nn_ops, one_hot_values_and_errors) {
  ct_tensor *i = nt_idx((int64_t[]){1, 3, -1, 2}, SH(2, 2)), *h = ct_one_hot(i, 3, CT_F32);
  NT_ASSERT_OK(h);
  nt_expect_shape(h, SH(2, 2, 3));
  nt_expect("one_hot", h, (double[]){1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0}, 12, 0);
  ct_tensor *inferred = ct_one_hot(i, -1, CT_I64);
  NT_ASSERT_OK(inferred);
  nt_expect_shape(inferred, SH(2, 2, 3));
  nt_expect_error(ct_one_hot(i, 2, CT_F32), "one_hot", "index 3");
  ct_release(h), ct_release(inferred), ct_release(i);
}

/* ---- layer_norm -------------------------------------------------------------------------------- */

Test(nn_ops, layer_norm_forward) {
  ct_manual_seed(6);
  ct_tensor *x = ct_randn(SH(2, 3, 4), CT_F64, ct_cpu()), *w = ct_randn(SH(3, 4), CT_F64, ct_cpu());
  ct_tensor *b = ct_randn(SH(3, 4), CT_F64, ct_cpu());
  double *xv = nt_read(x), *wv = nt_read(w), *bv = nt_read(b), want[24], want1[24];
  for (int r = 0; r < 2; r++) { /* over the last two dims, with weight and bias */
    double mu = 0, var = 0;
    for (int j = 0; j < 12; j++) mu += xv[r * 12 + j] / 12;
    for (int j = 0; j < 12; j++) var += (xv[r * 12 + j] - mu) * (xv[r * 12 + j] - mu) / 12;
    for (int j = 0; j < 12; j++) want[r * 12 + j] = (xv[r * 12 + j] - mu) / sqrt(var + 1e-5) * wv[j] + bv[j];
  }
  for (int r = 0; r < 6; r++) { /* over the last dim, no parameters */
    double mu = 0, var = 0;
    for (int j = 0; j < 4; j++) mu += xv[r * 4 + j] / 4;
    for (int j = 0; j < 4; j++) var += (xv[r * 4 + j] - mu) * (xv[r * 4 + j] - mu) / 4;
    for (int j = 0; j < 4; j++) want1[r * 4 + j] = (xv[r * 4 + j] - mu) / sqrt(var + 1e-3);
  }
  ct_tensor *y = ct_layer_norm(x, 2, w, b, 1e-5), *y1 = ct_layer_norm(x, 1, NULL, NULL, 1e-3);
  NT_ASSERT_OK(y);
  NT_ASSERT_OK(y1);
  nt_expect("layer_norm", y, want, 24, 1e-12);
  nt_expect("layer_norm (no params)", y1, want1, 24, 1e-12);
  nt_expect_error(ct_layer_norm(x, 1, w, NULL, 1e-5), "layer_norm", "[3,4]");
  nt_expect_error(ct_layer_norm(x, 4, NULL, NULL, 1e-5), "layer_norm", "last 4 dims");
  free(xv), free(wv), free(bv);
  ct_release(y), ct_release(y1), ct_release(x), ct_release(w), ct_release(b);
}

static ct_tensor *f_layer_norm(ct_tensor **in, void *ctx) {
  int mode = *(int *)ctx; /* 0: x only over 1 dim; 1: x, w, b over 2 dims; 2: x, w over all dims */
  if (mode == 0) return ct_layer_norm(in[0], 1, NULL, NULL, 1e-5);
  if (mode == 1) return ct_layer_norm(in[0], 2, in[1], in[2], 1e-5);
  return ct_layer_norm(in[0], 2, in[1], NULL, 1e-5);
}

Test(nn_ops, layer_norm_gradients) {
  ct_manual_seed(7);
  int m0 = 0, m1 = 1, m2 = 2;
  ct_tensor *x = nt_leaf(SH(3, 5));
  nt_gradcheck("layer_norm", f_layer_norm, &x, 1, &m0);
  nt_gradgradcheck("layer_norm", f_layer_norm, &x, 1, &m0);
  ct_tensor *in[3] = {nt_leaf(SH(2, 2, 3)), nt_leaf(SH(2, 3)), nt_leaf(SH(2, 3))};
  nt_gradcheck("layer_norm affine", f_layer_norm, in, 3, &m1);
  nt_gradgradcheck("layer_norm affine", f_layer_norm, in, 3, &m1);
  ct_tensor *in2[2] = {nt_leaf(SH(3, 4)), nt_leaf(SH(3, 4))};
  nt_gradcheck("layer_norm over all dims", f_layer_norm, in2, 2, &m2);
  ct_release(x), ct_release(in[0]), ct_release(in[1]), ct_release(in[2]), ct_release(in2[0]), ct_release(in2[1]);
}

/* ---- dropout ----------------------------------------------------------------------------------- */

Test(nn_ops, dropout_mask_is_philox_and_reproducible) {
  int64_t n = 2000;
  ct_manual_seed(11);
  ct_tensor *x = ct_full(&n, 1, 2.0, CT_F32, ct_cpu());
  ct_manual_seed(11);
  ct_tensor *y = ct_dropout(x, 0.25, true);
  NT_ASSERT_OK(y);
  double *yv = nt_read(y);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    bool keep = ct_philox_uniform(11, (uint64_t)i) >= 0.25f;
    cr_assert(fabs(yv[i] - (keep ? 2.0 / 0.75 : 0.0)) < 1e-6, "element %lld: %g (keep=%d)", (long long)i, yv[i], keep);
    kept += keep;
  }
  cr_assert(kept > 1350 && kept < 1650, "kept %lld of 2000 at p=0.25", (long long)kept);
  /* a second draw continues the stream: a different mask */
  ct_tensor *y2 = ct_dropout(x, 0.25, true);
  double *y2v = nt_read(y2);
  int64_t same = 0;
  for (int64_t i = 0; i < n; i++) same += y2v[i] == yv[i];
  cr_assert(same < n, "two dropout draws gave the same mask");
  /* eval mode and p = 0 are the identity; p outside [0,1) is an error */
  ct_tensor *e = ct_dropout(x, 0.5, false), *z = ct_dropout(x, 0, true);
  cr_assert(e == x && z == x);
  nt_expect_error(ct_dropout(x, 1.0, true), "dropout", "[0, 1)");
  nt_expect_error(ct_dropout(x, -0.1, true), "dropout", "-0.1");
  free(yv), free(y2v);
  ct_release(e), ct_release(z), ct_release(y), ct_release(y2), ct_release(x);
}

Test(nn_ops, dropout_gradient_is_the_mask) {
  ct_manual_seed(12);
  ct_tensor *x = nt_leaf(SH(4, 6));
  ct_tensor *y = ct_dropout(x, 0.5, true);
  NT_ASSERT_OK(y);
  ct_tensor *w = ct_randn(SH(4, 6), CT_F64, ct_cpu()), *gx = NULL;
  cr_assert(ct_grad(y, w, &x, 1, &gx, false, false) == 0, "%s", ct_last_error());
  double *xv = nt_read(x), *yv = nt_read(y), *wv = nt_read(w), *gv = nt_read(gx);
  for (int i = 0; i < 24; i++) {
    double mask = yv[i] / xv[i];
    cr_assert(fabs(mask) < 1e-9 || fabs(mask - 2) < 1e-9, "mask value %g", mask);
    cr_assert(fabs(gv[i] - wv[i] * mask) < 1e-12);
  }
  free(xv), free(yv), free(wv), free(gv);
  ct_release(gx), ct_release(w), ct_release(y), ct_release(x);
}

/* ---- index_select, gather, embedding --------------------------------------------------------- */

Test(nn_ops, index_select_forward) {
  double av[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  ct_tensor *a = nt_vals(av, SH(4, 3), CT_F32), *i = nt_idx((int64_t[]){2, -1, 2}, SH(3));
  ct_tensor *r0 = ct_index_select(a, 0, i), *r1 = ct_index_select(a, -1, i);
  NT_ASSERT_OK(r0);
  NT_ASSERT_OK(r1);
  nt_expect_shape(r0, SH(3, 3));
  nt_expect("index_select dim 1", r0, (double[]){4, 5, 6, 10, 11, 12, 4, 5, 6}, 9, 0);
  nt_expect("index_select dim 2", r1, (double[]){2, 3, 2, 5, 6, 5, 8, 9, 8, 11, 12, 11}, 12, 0);
  /* integer data, a transposed source and i32 indices */
  ct_tensor *ai = ct_to_dtype(a, CT_I64), *at = ct_transpose(ai, 0, 1);
  ct_tensor *i32 = ct_to_dtype(i, CT_I32), *r2 = ct_index_select(at, 1, i32);
  NT_ASSERT_OK(r2);
  nt_expect("index_select i64 transposed", r2, (double[]){4, 10, 4, 5, 11, 5, 6, 12, 6}, 9, 0);
  ct_release(r0), ct_release(r1), ct_release(r2), ct_release(ai), ct_release(at), ct_release(i32), ct_release(i);
  ct_release(a);
}

Test(nn_ops, index_errors_name_value_dim_and_size) {
  ct_tensor *a = ct_zeros(SH(10, 3), CT_F32, ct_cpu());
  ct_tensor *i = nt_idx((int64_t[]){1, 11}, SH(2));
  nt_expect_error(ct_index_select(a, 0, i),
                  "index_select: index 11 is out of range for dim 1 of size 10 (1-based; valid 1..10 or -10..-1)", NULL);
  ct_tensor *z = nt_idx((int64_t[]){0}, SH(1)), *neg = nt_idx((int64_t[]){-11}, SH(1));
  nt_expect_error(ct_index_select(a, 0, z), "index 0 is out of range", NULL);
  nt_expect_error(ct_index_select(a, 0, neg), "index -11 is out of range", NULL);
  ct_tensor *f = ct_zeros(SH(2), CT_F32, ct_cpu());
  nt_expect_error(ct_index_select(a, 0, f), "index_select", "integer dtype");
  nt_expect_error(ct_gather(a, 0, f), "gather", "integer dtype");
  nt_expect_error(ct_embedding(a, f), "embedding", "integer dtype");
  nt_expect_error(ct_index_select(a, 2, i), "index_select", "dim 3");
  ct_tensor *gi = nt_idx((int64_t[]){1, 4}, SH(1, 2));
  nt_expect_error(ct_gather(a, 1, gi), "gather: index 4 is out of range for dim 2 of size 3", NULL);
  ct_tensor *e = nt_idx((int64_t[]){3, 12}, SH(2));
  nt_expect_error(ct_embedding(a, e), "embedding", "index 12 is out of range for dim 1 of size 10");
  ct_release(a), ct_release(i), ct_release(z), ct_release(neg), ct_release(f), ct_release(gi), ct_release(e);
}

Test(nn_ops, gather_forward) {
  ct_manual_seed(8);
  ct_tensor *a = ct_randn(SH(3, 4), CT_F64, ct_cpu());
  double *av = nt_read(a);
  int64_t iv1[6] = {4, 1, -1, 2, 3, 3}, iv0[8] = {1, 3, 2, -1, 2, 2, 1, 3};
  ct_tensor *i1 = nt_idx(iv1, SH(3, 2)), *i0 = nt_idx(iv0, SH(2, 4));
  ct_tensor *g1 = ct_gather(a, 1, i1), *g0 = ct_gather(a, 0, i0);
  NT_ASSERT_OK(g1);
  NT_ASSERT_OK(g0);
  double w1[6], w0[8];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 2; c++) {
      int64_t k = iv1[r * 2 + c];
      w1[r * 2 + c] = av[r * 4 + (k > 0 ? k - 1 : 4 + k)];
    }
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 4; c++) {
      int64_t k = iv0[r * 4 + c];
      w0[r * 4 + c] = av[(k > 0 ? k - 1 : 3 + k) * 4 + c];
    }
  nt_expect("gather dim 2", g1, w1, 6, 0);
  nt_expect("gather dim 1", g0, w0, 8, 0);
  ct_tensor *big = nt_idx((int64_t[]){1, 1, 1, 1, 1}, SH(1, 5));
  nt_expect_error(ct_gather(a, 0, big), "gather", "[1,5]");
  free(av);
  ct_release(g1), ct_release(g0), ct_release(i1), ct_release(i0), ct_release(big), ct_release(a);
}

static ct_tensor *f_index_select(ct_tensor **in, void *ctx) { return ct_index_select(in[0], 1, ctx); }
static ct_tensor *f_gather0(ct_tensor **in, void *ctx) { return ct_gather(in[0], 0, ctx); }
static ct_tensor *f_gather_tanh(ct_tensor **in, void *ctx) {
  ct_tensor *g = ct_gather(in[0], 1, ctx), *r = g ? ct_tanh(g) : NULL;
  ct_release(g);
  return r;
}
static ct_tensor *f_embedding_tanh(ct_tensor **in, void *ctx) {
  ct_tensor *e = ct_embedding(in[0], ctx), *r = e ? ct_tanh(e) : NULL;
  ct_release(e);
  return r;
}

Test(nn_ops, index_gradients) {
  ct_manual_seed(9);
  ct_tensor *a = nt_leaf(SH(3, 4, 2)), *i = nt_idx((int64_t[]){2, 2, -1, 1, 2}, SH(5));
  nt_gradcheck("index_select (repeated indices)", f_index_select, &a, 1, i);
  ct_tensor *b = nt_leaf(SH(3, 4)), *gi = nt_idx((int64_t[]){1, 3, 3, 2, 1, 1, -1, 2}, SH(2, 4));
  nt_gradcheck("gather dim 1", f_gather0, &b, 1, gi);
  ct_tensor *gi1 = nt_idx((int64_t[]){4, 4, 1, 2, 3, 3}, SH(3, 2));
  nt_gradcheck("gather dim 2", f_gather_tanh, &b, 1, gi1);
  nt_gradgradcheck("gather dim 2", f_gather_tanh, &b, 1, gi1);
  ct_tensor *w = nt_leaf(SH(5, 3)), *ei = nt_idx((int64_t[]){1, 5, 5, -2, 3, 1}, SH(2, 3));
  nt_gradcheck("embedding", f_embedding_tanh, &w, 1, ei);
  nt_gradgradcheck("embedding", f_embedding_tanh, &w, 1, ei);
  ct_release(a), ct_release(i), ct_release(b), ct_release(gi), ct_release(gi1), ct_release(w), ct_release(ei);
}

Test(nn_ops, embedding_forward) {
  double wv[15] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42};
  ct_tensor *w = nt_vals(wv, SH(5, 3), CT_F32), *i = nt_idx((int64_t[]){5, 1, -2, 2}, SH(2, 2));
  ct_tensor *e = ct_embedding(w, i);
  NT_ASSERT_OK(e);
  nt_expect_shape(e, SH(2, 2, 3));
  nt_expect("embedding", e, (double[]){40, 41, 42, 0, 1, 2, 30, 31, 32, 10, 11, 12}, 12, 0);
  ct_tensor *s = nt_idx((int64_t[]){3}, NULL, 0), *es = ct_embedding(w, s);
  NT_ASSERT_OK(es);
  nt_expect_shape(es, SH(3));
  ct_release(e), ct_release(es), ct_release(s), ct_release(i), ct_release(w);
}

/* ---- cat, stack -------------------------------------------------------------------------------- */

Test(nn_ops, cat_and_stack_forward) {
  ct_tensor *a = nt_vals((double[]){1, 2, 3, 4, 5, 6}, SH(2, 3), CT_F32);
  ct_tensor *b = nt_vals((double[]){7, 8, 9}, SH(1, 3), CT_F32);
  ct_tensor *c = nt_vals((double[]){10, 11, 12, 13}, SH(2, 2), CT_F32);
  ct_tensor *ab[2] = {a, b}, *ac[2] = {a, c};
  ct_tensor *r0 = ct_cat(ab, 2, 0), *r1 = ct_cat(ac, 2, -1);
  NT_ASSERT_OK(r0);
  NT_ASSERT_OK(r1);
  nt_expect("cat dim 1", r0, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 0);
  nt_expect("cat dim 2", r1, (double[]){1, 2, 3, 10, 11, 4, 5, 6, 12, 13}, 10, 0);
  ct_tensor *ct = ct_transpose(c, 0, 1), *act[2] = {a, ct}, *r2 = ct_cat(act, 2, 1);
  NT_ASSERT_OK(r2);
  nt_expect("cat with a transposed input", r2, (double[]){1, 2, 3, 10, 12, 4, 5, 6, 11, 13}, 10, 0);
  ct_tensor *aa[2] = {a, a}, *s = ct_stack(aa, 2, 1);
  NT_ASSERT_OK(s);
  nt_expect_shape(s, SH(2, 2, 3));
  nt_expect("stack", s, (double[]){1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}, 12, 0);
  /* errors name the first mismatching input and its shape */
  ct_tensor *abc[3] = {a, a, c};
  nt_expect_error(ct_cat(abc, 3, 0), "cat: input 3 has shape [2,2]", "[2,3]");
  ct_tensor *d64 = ct_zeros(SH(2, 3), CT_F64, ct_cpu()), *ad[2] = {a, d64};
  nt_expect_error(ct_cat(ad, 2, 0), "cat: input 2 has dtype f64", NULL);
  nt_expect_error(ct_stack(ab, 2, 0), "stack: input 2 has shape [1,3]", NULL);
  nt_expect_error(ct_cat(ab, 2, 2), "cat", "dim 3");
  ct_release(r0), ct_release(r1), ct_release(r2), ct_release(ct), ct_release(s), ct_release(d64);
  ct_release(a), ct_release(b), ct_release(c);
}

static ct_tensor *f_cat(ct_tensor **in, void *ctx) {
  (void)ctx;
  ct_tensor *t = ct_transpose(in[2], 0, 1), *parts[3] = {in[0], in[1], t}, *r = ct_cat(parts, 3, 1);
  ct_release(t);
  return r;
}
static ct_tensor *f_stack(ct_tensor **in, void *ctx) {
  (void)ctx;
  ct_tensor *s = ct_stack(in, 2, 0), *r = s ? ct_tanh(s) : NULL;
  ct_release(s);
  return r;
}

Test(nn_ops, cat_stack_gradients) {
  ct_manual_seed(10);
  ct_tensor *in[3] = {nt_leaf(SH(2, 3)), nt_leaf(SH(2, 1)), nt_leaf(SH(4, 2))};
  nt_gradcheck("cat", f_cat, in, 3, NULL);
  ct_tensor *st[2] = {nt_leaf(SH(3, 2)), nt_leaf(SH(3, 2))};
  nt_gradcheck("stack", f_stack, st, 2, NULL);
  nt_gradgradcheck("stack", f_stack, st, 2, NULL);
  ct_release(in[0]), ct_release(in[1]), ct_release(in[2]), ct_release(st[0]), ct_release(st[1]);
}

/* ---- conv2d, max_pool2d ----------------------------------------------------------------------- */

static void brute_conv(const double *x, const double *w, const double *b, double *y, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int s, int p, int64_t OH, int64_t OW) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
          double acc = b ? b[o] : 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ki = 0; ki < KH; ki++)
              for (int64_t kj = 0; kj < KW; kj++) {
                int64_t ih = i * s - p + ki, iw = j * s - p + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * KH + ki) * KW + kj];
              }
          y[((n * O + o) * OH + i) * OW + j] = acc;
        }
}

static void conv_case(ct_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                      int s, int p, bool bias) {
  ct_tensor *x = ct_randn(SH(N, C, H, W), dt, ct_cpu()), *w = ct_randn(SH(O, C, KH, KW), dt, ct_cpu());
  ct_tensor *b = bias ? ct_randn(SH(O), dt, ct_cpu()) : NULL;
  ct_tensor *y = ct_conv2d(x, w, b, s, p);
  NT_ASSERT_OK(y);
  int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  nt_expect_shape(y, SH(N, O, OH, OW));
  double *xv = nt_read(x), *wv = nt_read(w), *bv = b ? nt_read(b) : NULL;
  double *want = malloc(sizeof(double) * (size_t)(N * O * OH * OW));
  brute_conv(xv, wv, bv, want, N, C, H, W, O, KH, KW, s, p, OH, OW);
  nt_expect("conv2d", y, want, N * O * OH * OW, dt == CT_F32 ? 1e-5 : 1e-12);
  free(xv), free(wv), free(bv), free(want);
  ct_release(y), ct_release(x), ct_release(w), ct_release(b);
}

Test(nn_ops, conv2d_forward_matches_loops) {
  ct_manual_seed(13);
  conv_case(CT_F64, 2, 3, 7, 6, 4, 3, 3, 1, 1, true);
  conv_case(CT_F64, 1, 2, 8, 9, 3, 3, 2, 2, 1, false);
  conv_case(CT_F32, 3, 4, 5, 5, 2, 1, 1, 1, 0, true); /* 1x1: the image is its own column matrix */
  conv_case(CT_F32, 2, 1, 9, 9, 5, 5, 5, 3, 2, true);
  conv_case(CT_F32, 1, 2, 4, 4, 2, 4, 4, 1, 0, false); /* kernel = image: a 1x1 output */
}

Test(nn_ops, conv2d_errors) {
  ct_tensor *x = ct_zeros(SH(2, 3, 8, 8), CT_F32, ct_cpu()), *w = ct_zeros(SH(4, 4, 3, 3), CT_F32, ct_cpu());
  nt_expect_error(ct_conv2d(x, w, NULL, 1, 0), "conv2d", "C=3");
  cr_assert(strstr(ct_last_error(), "C=4"), "%s", ct_last_error());
  ct_tensor *w5 = ct_zeros(SH(4, 3, 9, 9), CT_F32, ct_cpu());
  nt_expect_error(ct_conv2d(x, w5, NULL, 1, 0), "conv2d", "larger than the padded input");
  ct_tensor *w3 = ct_zeros(SH(4, 3, 3, 3), CT_F32, ct_cpu()), *b = ct_zeros(SH(3), CT_F32, ct_cpu());
  nt_expect_error(ct_conv2d(x, w3, b, 1, 0), "conv2d", "bias [3]");
  nt_expect_error(ct_conv2d(x, w3, NULL, 0, 0), "conv2d", "stride");
  ct_tensor *x2 = ct_zeros(SH(8, 8), CT_F32, ct_cpu());
  nt_expect_error(ct_conv2d(x2, w3, NULL, 1, 0), "conv2d", "[N,C,H,W]");
  nt_expect_error(ct_max_pool2d(x2, 2, 2), "max_pool2d", "[N,C,H,W]");
  nt_expect_error(ct_max_pool2d(x, 9, 1), "max_pool2d", "larger");
  ct_release(x), ct_release(w), ct_release(w5), ct_release(w3), ct_release(b), ct_release(x2);
}

static ct_tensor *f_conv(ct_tensor **in, void *ctx) {
  int *sp = ctx;
  return ct_conv2d(in[0], in[1], sp[2] ? in[2] : NULL, sp[0], sp[1]);
}
static ct_tensor *f_conv_tanh(ct_tensor **in, void *ctx) {
  ct_tensor *y = f_conv(in, ctx), *r = y ? ct_tanh(y) : NULL;
  ct_release(y);
  return r;
}

Test(nn_ops, conv2d_gradients) {
  ct_manual_seed(14);
  int sp1[3] = {2, 1, 1};
  ct_tensor *in[3] = {nt_leaf(SH(2, 2, 5, 4)), nt_leaf(SH(3, 2, 3, 2)), nt_leaf(SH(3))};
  nt_gradcheck("conv2d stride 2 pad 1 bias", f_conv, in, 3, sp1);
  int sp2[3] = {1, 0, 0};
  ct_tensor *in2[2] = {nt_leaf(SH(1, 3, 3, 3)), nt_leaf(SH(2, 3, 1, 1))};
  nt_gradcheck("conv2d 1x1", f_conv, in2, 2, sp2);
  ct_tensor *in3[3] = {nt_leaf(SH(1, 2, 4, 4)), nt_leaf(SH(2, 2, 2, 2)), nt_leaf(SH(2))};
  int sp3[3] = {1, 1, 1};
  nt_gradgradcheck("conv2d (tanh after)", f_conv_tanh, in3, 3, sp3);
  ct_release(in[0]), ct_release(in[1]), ct_release(in[2]), ct_release(in2[0]), ct_release(in2[1]);
  ct_release(in3[0]), ct_release(in3[1]), ct_release(in3[2]);
}

Test(nn_ops, max_pool2d_forward_and_routing) {
  ct_manual_seed(15);
  int64_t N = 2, C = 3, H = 7, W = 6, k = 3, s = 2, OH = 3, OW = 2;
  ct_tensor *x = nt_leaf(SH(2, 3, 7, 6));
  ct_tensor *y = ct_max_pool2d(x, (int)k, (int)s);
  NT_ASSERT_OK(y);
  nt_expect_shape(y, SH(2, 3, 3, 2));
  double *xv = nt_read(x), want[36], dx[252] = {0};
  ct_tensor *g = ct_randn(SH(2, 3, 3, 2), CT_F64, ct_cpu()), *gx = NULL;
  double *gv = nt_read(g);
  for (int64_t p = 0; p < N * C; p++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++) {
        int64_t best = -1;
        for (int64_t a = 0; a < k; a++)
          for (int64_t b = 0; b < k; b++) {
            int64_t e = p * H * W + (i * s + a) * W + j * s + b;
            if (best < 0 || xv[e] > xv[best]) best = e;
          }
        want[(p * OH + i) * OW + j] = xv[best];
        dx[best] += gv[(p * OH + i) * OW + j];
      }
  nt_expect("max_pool2d", y, want, 36, 0);
  cr_assert(ct_grad(y, g, &x, 1, &gx, false, false) == 0, "%s", ct_last_error());
  nt_expect("max_pool2d gradient", gx, dx, 252, 1e-15);
  /* unbatched [C,H,W] input and the default stride (= kernel) */
  ct_tensor *x3 = ct_select(x, 0, 1), *y3 = ct_max_pool2d(x3, 2, 0);
  NT_ASSERT_OK(y3);
  nt_expect_shape(y3, SH(3, 3, 3));
  free(xv), free(gv);
  ct_release(gx), ct_release(g), ct_release(y), ct_release(y3), ct_release(x3), ct_release(x);
}

static ct_tensor *f_pool(ct_tensor **in, void *ctx) {
  (void)ctx;
  return ct_max_pool2d(in[0], 2, 1);
}

Test(nn_ops, max_pool2d_gradient_and_no_double_backward) {
  ct_manual_seed(16);
  ct_tensor *x = nt_leaf(SH(1, 2, 4, 5));
  nt_gradcheck("max_pool2d", f_pool, &x, 1, NULL);
  ct_tensor *y = f_pool(&x, NULL), *w = ct_randn(NT_DIMS(y), CT_F64, ct_cpu()), *gx = NULL;
  NT_ASSERT_OK(y);
  ct_tensor *wg = ct_detach(w);
  ct_requires_grad_(wg, true);
  cr_assert(ct_grad(y, wg, &x, 1, &gx, true, true) == 0, "%s", ct_last_error());
  ct_tensor *v = ct_randn(NT_DIMS(x), CT_F64, ct_cpu()), *r = NULL;
  cr_assert(ct_grad(gx, v, &wg, 1, &r, false, false) != 0, "double backward through max_pool2d should fail");
  cr_assert(strstr(ct_last_error(), "max_pool2d_backward"), "%s", ct_last_error());
  ct_release(v), ct_release(gx), ct_release(wg), ct_release(w), ct_release(y), ct_release(x);
}
