/* test_reduce_matmul.c: reductions (sum, mean, max, min, argmax, argmin, var, sum_to_shape) and
 * matmul: values against hand-computed and naive-loop results, gradients against central finite
 * differences in f64 (contiguous, transposed, narrowed and expanded inputs, broadcast batch dims),
 * keepdim, negative dims, empty tensors and the error messages.
 * Self-contained (no test helpers) so it builds alone:
 *   gcc -std=c11 -D_GNU_SOURCE -Icore tests/core/test_reduce_matmul.c build/libchalk.a \
 *       -lcriterion -lopenblas -lm -lz -lpthread -o build/test_rm && ./build/test_rm
 * Invariant: every test releases what it made (the suite runs under LeakSanitizer too). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"

#define F64 CT_F64
#define F32 CT_F32
#define CPU ct_cpu()
#define SHAPE(...) (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define DIMS(...) (int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* ---- helpers (static: tests.mk links shared helpers into every test binary) ---------------- */

static ct_tensor *rm_tensor(const double *v, const int64_t *shape, int nd, ct_dtype dt) {
  ct_tensor *t = ct_from_doubles(v, shape, nd, dt, CPU);
  cr_assert(t, "from_doubles: %s", ct_last_error());
  return t;
}

/* deterministic values in [-2, 2) from a tiny LCG, independent of chalk's RNG */
static uint64_t rm_state = 12345;
static double rm_uniform(void) {
  rm_state = rm_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rm_state >> 11) / 9007199254740992.0 * 4.0 - 2.0;
}
static ct_tensor *rm_random(const int64_t *shape, int nd, ct_dtype dt) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = rm_uniform();
  ct_tensor *t = rm_tensor(v, shape, nd, dt);
  free(v);
  return t;
}

static void rm_expect_shape(const ct_tensor *t, const int64_t *shape, int nd) {
  char a[160], b[160];
  cr_assert(t->ndim == nd && (nd == 0 || !memcmp(t->shape, shape, sizeof(int64_t) * (size_t)nd)), "shape %s, expected %s",
            ct_shape_str(t->shape, t->ndim, a, sizeof a), ct_shape_str(shape, nd, b, sizeof b));
}

static void rm_expect_values(const ct_tensor *t, const double *want, int64_t n, double tol) {
  cr_assert(t, "NULL tensor: %s", ct_last_error());
  cr_assert_eq(ct_numel(t), n, "numel %lld, expected %lld", (long long)ct_numel(t), (long long)n);
  double *got = malloc(sizeof(double) * (size_t)(n ? n : 1));
  cr_assert(!ct_to_doubles(t, got));
  for (int64_t i = 0; i < n; i++) {
    bool ok = (isnan(want[i]) && isnan(got[i])) || fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]));
    if (!ok) {
      double g = got[i];
      free(got);
      cr_assert_fail("element %lld: got %.17g, expected %.17g", (long long)i, g, want[i]);
    }
  }
  free(got);
}

/* Runs op and expects failure with a message containing every needle. */
static void rm_expect_error(ct_tensor *r, const char *n1, const char *n2, const char *n3) {
  const char *e = ct_last_error();
  if (r) ct_release(r);
  cr_assert(!r, "expected an error mentioning '%s'", n1);
  cr_assert(strstr(e, n1), "error '%s' lacks '%s'", e, n1);
  if (n2) cr_assert(strstr(e, n2), "error '%s' lacks '%s'", e, n2);
  if (n3) cr_assert(strstr(e, n3), "error '%s' lacks '%s'", e, n3);
}

/* Naive reduction of x (any layout) over mask, in double, row-major over the kept dims.
   kind: 0 sum, 1 mean, 2 max, 3 min, 4 argmax (1-based), 5 argmin. */
static double *rm_naive_reduce(const ct_tensor *x, uint32_t mask, int kind, int64_t *nout) {
  int nd = x->ndim;
  int64_t n = ct_numel(x), no = 1, nr = 1;
  for (int d = 0; d < nd; d++) (mask >> d & 1) ? (nr *= x->shape[d]) : (no *= x->shape[d]);
  double *out = calloc((size_t)(no ? no : 1), sizeof(double));
  double *best = calloc((size_t)(no ? no : 1), sizeof(double));
  int64_t *seen = calloc((size_t)(no ? no : 1), sizeof(int64_t));
  int64_t idx[CT_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    double v;
    ct_get(x, idx, &v);
    int64_t o = 0, r = 0;
    for (int d = 0; d < nd; d++) {
      if (mask >> d & 1) r = r * x->shape[d] + idx[d];
      else o = o * x->shape[d] + idx[d];
    }
    if (kind <= 1) out[o] += v;
    else {
      bool better = !seen[o] || (kind == 2 || kind == 4 ? v > best[o] : v < best[o]);
      if (better) best[o] = v, out[o] = kind >= 4 ? (double)(r + 1) : v;
      seen[o] = 1;
    }
    for (int d = nd - 1; d >= 0 && ++idx[d] == x->shape[d]; d--) idx[d] = 0;
  }
  if (kind == 1)
    for (int64_t o = 0; o < no; o++) out[o] /= (double)nr;
  free(best), free(seen);
  *nout = no;
  return out;
}

/* ---- finite-difference gradient check --------------------------------------------------------- */

/* Builds the checked function's output from the leaves (views of them as it likes). */
typedef ct_tensor *(*rm_fn)(ct_tensor **leaf, void *ctx);

/* loss = sum(f(leaves) * w) with fixed w: analytic gradient by ct_grad vs central differences. */
static void rm_gradcheck(const char *what, rm_fn f, void *ctx, ct_tensor **leaf, int nleaf) {
  ct_tensor *out = f(leaf, ctx);
  cr_assert(out, "%s: forward failed: %s", what, ct_last_error());
  ct_tensor *w = rm_random(out->shape, out->ndim, F64);
  ct_tensor *prod = ct_mul(out, w);
  ct_tensor *loss = ct_sum(prod, NULL, 0, false);
  ct_release(prod), ct_release(out);
  cr_assert(loss, "%s: loss failed: %s", what, ct_last_error());
  ct_tensor *g[8];
  cr_assert(!ct_grad(loss, NULL, leaf, nleaf, g, false, false), "%s: grad failed: %s", what, ct_last_error());
  ct_release(loss);
  const double eps = 1e-6;
  for (int L = 0; L < nleaf; L++) {
    ct_tensor *x = leaf[L];
    int64_t n = ct_numel(x);
    double *ga = malloc(sizeof(double) * (size_t)n);
    cr_assert(!ct_to_doubles(g[L], ga));
    int64_t idx[CT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
      double v0, lp, lm;
      ct_get(x, idx, &v0);
      bool old = ct_set_grad_enabled(false);
      ct_set(x, idx, v0 + eps);
      ct_tensor *o1 = f(leaf, ctx), *p1 = ct_mul(o1, w), *s1 = ct_sum(p1, NULL, 0, false);
      ct_set(x, idx, v0 - eps);
      ct_tensor *o2 = f(leaf, ctx), *p2 = ct_mul(o2, w), *s2 = ct_sum(p2, NULL, 0, false);
      ct_set(x, idx, v0);
      ct_set_grad_enabled(old);
      cr_assert(s1 && s2, "%s: perturbed forward failed: %s", what, ct_last_error());
      ct_item(s1, &lp), ct_item(s2, &lm);
      ct_release(o1), ct_release(p1), ct_release(s1), ct_release(o2), ct_release(p2), ct_release(s2);
      double fd = (lp - lm) / (2 * eps);
      if (fabs(fd - ga[i]) > 1e-5 * (1 + fabs(fd))) {
        double a = ga[i];
        free(ga);
        cr_assert_fail("%s: d/d input %d element %lld: analytic %.10g, finite differences %.10g", what, L + 1,
                       (long long)i, a, fd);
      }
      for (int d = x->ndim - 1; d >= 0 && ++idx[d] == x->shape[d]; d--) idx[d] = 0;
    }
    free(ga);
    ct_release(g[L]);
  }
  ct_release(w);
}

static ct_tensor *rm_leaf(const int64_t *shape, int nd) {
  ct_tensor *t = rm_random(shape, nd, F64);
  ct_requires_grad_(t, true);
  return t;
}

/* ---- reductions: values ------------------------------------------------------------------------ */

TestSuite(reduce);

Test(reduce, sum_hand_values) {
  double v[] = {1, 2, 3, 4, 5, 6};
  ct_tensor *x = rm_tensor(v, SHAPE(2, 3), F32);
  ct_tensor *all = ct_sum(x, NULL, 0, false);
  rm_expect_shape(all, NULL, 0);
  rm_expect_values(all, (double[]){21}, 1, 0);
  ct_tensor *d0 = ct_sum(x, DIMS(0), false);
  rm_expect_shape(d0, SHAPE(3));
  rm_expect_values(d0, (double[]){5, 7, 9}, 3, 0);
  ct_tensor *d1 = ct_sum(x, DIMS(-1), true);
  rm_expect_shape(d1, SHAPE(2, 1));
  rm_expect_values(d1, (double[]){6, 15}, 2, 0);
  ct_tensor *both = ct_sum(x, DIMS(1, -2), true);
  rm_expect_shape(both, SHAPE(1, 1));
  rm_expect_values(both, (double[]){21}, 1, 0);
  cr_assert_eq(all->dtype, F32);
  ct_release(x), ct_release(all), ct_release(d0), ct_release(d1), ct_release(both);
}

Test(reduce, sum_integer_and_bool_promote_to_i64) {
  double v[] = {1, 0, 3, 0, 5, 6};
  ct_tensor *xi = rm_tensor(v, SHAPE(2, 3), CT_I32);
  ct_tensor *si = ct_sum(xi, DIMS(1), false);
  cr_assert_eq(si->dtype, CT_I64);
  rm_expect_values(si, (double[]){4, 11}, 2, 0);
  ct_tensor *xb = rm_tensor(v, SHAPE(2, 3), CT_BOOL);
  ct_tensor *sb = ct_sum(xb, NULL, 0, false);
  cr_assert_eq(sb->dtype, CT_I64);
  rm_expect_values(sb, (double[]){4}, 1, 0);
  ct_tensor *x8 = rm_tensor((double[]){-100, -100, -100}, SHAPE(3), CT_I8);
  ct_tensor *s8 = ct_sum(x8, NULL, 0, false);
  rm_expect_values(s8, (double[]){-300}, 1, 0); /* no i8 overflow */
  ct_tensor *mx = ct_max(xi, DIMS(0), false);
  cr_assert_eq(mx->dtype, CT_I32);
  rm_expect_values(mx, (double[]){1, 5, 6}, 3, 0);
  ct_tensor *mn = ct_min(xi, NULL, 0, false);
  rm_expect_values(mn, (double[]){0}, 1, 0);
  ct_release(xi), ct_release(si), ct_release(xb), ct_release(sb), ct_release(x8), ct_release(s8);
  ct_release(mx), ct_release(mn);
}

Test(reduce, f32_sum_accumulates_in_double) {
  int64_t n = 1 << 22;
  ct_tensor *x = ct_full(&n, 1, 0.1, F32, CPU);
  ct_tensor *s = ct_sum(x, NULL, 0, false);
  double got;
  ct_item(s, &got);
  double want = (double)n * (double)0.1f;
  cr_assert(fabs(got - want) / want < 1e-6, "sum of %lld x 0.1f = %.9g, expected %.9g", (long long)n, got, want);
  ct_release(x), ct_release(s);
}

/* Every subset of dims of a 4-D tensor, in several layouts, against the naive loop. */
static void check_all_masks(ct_tensor *x, const char *layout) {
  for (uint32_t mask = 1; mask < (1u << x->ndim); mask++) {
    int dims[CT_MAX_DIMS], nd = 0;
    for (int d = 0; d < x->ndim; d++)
      if (mask >> d & 1) dims[nd++] = (d % 2) ? d - x->ndim : d; /* mix negative dims in */
    for (int kind = 0; kind < 6; kind++) {
      ct_tensor *r = NULL;
      switch (kind) {
      case 0: r = ct_sum(x, dims, nd, kind & 1); break;
      case 1: r = ct_mean(x, dims, nd, true); break;
      case 2: r = ct_max(x, dims, nd, false); break;
      case 3: r = ct_min(x, dims, nd, true); break;
      case 4:
      case 5:
        if (nd != 1 && nd != x->ndim) continue;
        if (nd == 1) r = kind == 4 ? ct_argmax(x, dims[0], false) : ct_argmin(x, dims[0], true);
        else r = kind == 4 ? ct_argmax(x, CT_ALL_DIMS, false) : ct_argmin(x, CT_ALL_DIMS, true);
        break;
      }
      cr_assert(r, "%s kind %d mask %x: %s", layout, kind, mask, ct_last_error());
      int64_t no;
      double *want = rm_naive_reduce(x, mask, kind, &no);
      char msg[64];
      snprintf(msg, sizeof msg, "%s kind %d mask %x", layout, kind, mask);
      cr_assert_eq(ct_numel(r), no, "%s", msg);
      double *got = malloc(sizeof(double) * (size_t)no);
      ct_to_doubles(r, got);
      for (int64_t i = 0; i < no; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])), "%s: element %lld got %g want %g", msg,
                  (long long)i, got[i], want[i]);
      free(got), free(want);
      ct_release(r);
    }
  }
}

Test(reduce, all_dim_subsets_in_all_layouts) {
  ct_tensor *base = rm_random(SHAPE(3, 4, 5, 6), F32);
  check_all_masks(base, "contiguous");
  ct_tensor *tr = ct_permute(base, DIMS(3, 1, 0, 2));
  check_all_masks(tr, "permuted");
  ct_tensor *nar = ct_narrow(base, 2, 1, 3);
  ct_tensor *nar2 = ct_narrow(nar, 3, 2, 3);
  check_all_masks(nar2, "narrowed");
  ct_tensor *small = rm_random(SHAPE(3, 1, 5, 1), F32);
  ct_tensor *ex = ct_expand(small, SHAPE(3, 4, 5, 2));
  check_all_masks(ex, "expanded");
  ct_tensor *x64 = rm_random(SHAPE(2, 3, 4, 5), F64);
  ct_tensor *t64 = ct_transpose(x64, 0, 3);
  check_all_masks(t64, "f64 transposed");
  ct_tensor *xi = ct_to_dtype(x64, CT_I64);
  check_all_masks(xi, "i64");
  ct_release(base), ct_release(tr), ct_release(nar), ct_release(nar2), ct_release(small), ct_release(ex);
  ct_release(x64), ct_release(t64), ct_release(xi);
}

Test(reduce, column_and_row_sums_of_large_matrix) {
  int64_t N = 1000, C = 37;
  ct_tensor *x = rm_random(SHAPE(N, C), F32);
  ct_tensor *cols = ct_sum(x, DIMS(0), false), *rows = ct_sum(x, DIMS(1), false);
  double *v = malloc(sizeof(double) * (size_t)(N * C)), *cw = calloc((size_t)C, sizeof(double)),
         *rw = calloc((size_t)N, sizeof(double));
  ct_to_doubles(x, v);
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < C; j++) cw[j] += v[i * C + j], rw[i] += v[i * C + j];
  rm_expect_values(cols, cw, C, 1e-6);
  rm_expect_values(rows, rw, N, 1e-6);
  free(v), free(cw), free(rw);
  ct_release(x), ct_release(cols), ct_release(rows);
}

Test(reduce, mean_max_min_argmax_hand_values) {
  double v[] = {3, 9, 2, 9, 1, 0, 5, 5};
  ct_tensor *x = rm_tensor(v, SHAPE(2, 4), F64);
  ct_tensor *m = ct_mean(x, DIMS(1), false);
  rm_expect_values(m, (double[]){5.75, 2.75}, 2, 1e-15);
  ct_tensor *mx = ct_max(x, DIMS(-1), true), *mn = ct_min(x, DIMS(0), false);
  rm_expect_shape(mx, SHAPE(2, 1));
  rm_expect_values(mx, (double[]){9, 5}, 2, 0);
  rm_expect_values(mn, (double[]){1, 0, 2, 5}, 4, 0);
  ct_tensor *am = ct_argmax(x, 1, false), *an = ct_argmin(x, -1, true), *aall = ct_argmax(x, CT_ALL_DIMS, false);
  cr_assert_eq(am->dtype, CT_I64);
  rm_expect_values(am, (double[]){2, 3}, 2, 0); /* first of the tied 9s; first of the tied 5s (1-based) */
  rm_expect_shape(an, SHAPE(2, 1));
  rm_expect_values(an, (double[]){3, 2}, 2, 0);
  rm_expect_shape(aall, NULL, 0);
  rm_expect_values(aall, (double[]){2}, 1, 0); /* flattened */
  ct_tensor *akeep = ct_argmin(x, CT_ALL_DIMS, true);
  rm_expect_shape(akeep, SHAPE(1, 1));
  rm_expect_values(akeep, (double[]){6}, 1, 0);
  ct_tensor *a0 = ct_argmax(x, 0, false);
  rm_expect_values(a0, (double[]){1, 1, 2, 1}, 4, 0);
  ct_release(m), ct_release(mx), ct_release(mn), ct_release(am), ct_release(an), ct_release(aall);
  ct_release(akeep), ct_release(a0), ct_release(x);
}

Test(reduce, nan_propagates_through_max_and_argmax) {
  double v[] = {1, NAN, 3, 2, 4, NAN};
  ct_tensor *x = rm_tensor(v, SHAPE(2, 3), F32);
  ct_tensor *mx = ct_max(x, DIMS(1), false), *am = ct_argmax(x, 1, false), *mn = ct_min(x, DIMS(1), false);
  rm_expect_values(mx, (double[]){NAN, NAN}, 2, 0);
  rm_expect_values(mn, (double[]){NAN, NAN}, 2, 0);
  rm_expect_values(am, (double[]){2, 3}, 2, 0);
  ct_release(x), ct_release(mx), ct_release(am), ct_release(mn);
}

Test(reduce, argmax_long_rows_ties_and_nan) {
  /* rows longer than the kernel's 256-element blocks: ties and NaN in later blocks */
  int64_t n = 1000;
  double *v = malloc(sizeof(double) * 2 * (size_t)n);
  for (int64_t i = 0; i < 2 * n; i++) v[i] = (double)(i % 97) * 0.01;
  v[300] = 5, v[700] = 5, v[20] = -3;              /* row 1: tie of maxima across blocks */
  v[n + 600] = NAN, v[n + 900] = NAN, v[n + 10] = 9; /* row 2: first NaN wins */
  ct_tensor *x = rm_tensor(v, SHAPE(2, n), F32);
  ct_tensor *am = ct_argmax(x, 1, false), *an = ct_argmin(x, 1, false), *mx = ct_max(x, DIMS(1), false);
  rm_expect_values(am, (double[]){301, 601}, 2, 0);
  rm_expect_values(an, (double[]){21, 601}, 2, 0);
  rm_expect_values(mx, (double[]){5, NAN}, 2, 0);
  ct_tensor *row = ct_narrow(x, 0, 0, 1), *xi = ct_to_dtype(row, CT_I32); /* ints: 5 at 301 and 701 */
  ct_tensor *ai = ct_argmax(xi, -1, false);
  rm_expect_values(ai, (double[]){301}, 1, 0);
  free(v);
  ct_release(x), ct_release(am), ct_release(an), ct_release(mx), ct_release(row), ct_release(xi), ct_release(ai);
}

Test(reduce, var_biased_and_unbiased) {
  double v[] = {1, 2, 3, 4, 2, 2, 2, 2};
  ct_tensor *x = rm_tensor(v, SHAPE(2, 4), F64);
  ct_tensor *u = ct_var(x, DIMS(1), false, true), *b = ct_var(x, DIMS(-1), true, false);
  ct_tensor *all = ct_var(x, NULL, 0, false, true);
  rm_expect_values(u, (double[]){5.0 / 3, 0}, 2, 1e-15);
  rm_expect_shape(b, SHAPE(2, 1));
  rm_expect_values(b, (double[]){1.25, 0}, 2, 1e-15);
  /* all 8: mean 2.25, sum of squares 5 + 4*0.0625 + ... */
  double mean = 2.25, ss = 0;
  for (int i = 0; i < 8; i++) ss += (v[i] - mean) * (v[i] - mean);
  rm_expect_values(all, (double[]){ss / 7}, 1, 1e-15);
  ct_tensor *one = rm_tensor((double[]){5}, SHAPE(1), F64);
  ct_tensor *v1 = ct_var(one, NULL, 0, false, true);
  rm_expect_values(v1, (double[]){NAN}, 1, 0); /* N - 1 = 0, as torch */
  ct_tensor *xi = rm_tensor(v, SHAPE(8), CT_I32);
  ct_tensor *vi = ct_var(xi, NULL, 0, false, true);
  cr_assert_eq(vi->dtype, F32);
  ct_release(x), ct_release(u), ct_release(b), ct_release(all), ct_release(one), ct_release(v1);
  ct_release(xi), ct_release(vi);
}

Test(reduce, sum_to_shape) {
  ct_tensor *g = rm_random(SHAPE(2, 3, 4), F64);
  ct_tensor *same = ct_sum_to_shape(g, SHAPE(2, 3, 4));
  cr_assert_eq(same, g, "matching shapes must return g itself");
  ct_release(same);
  ct_tensor *s1 = ct_sum_to_shape(g, SHAPE(3, 1)); /* leading dim and a size-1 dim */
  rm_expect_shape(s1, SHAPE(3, 1));
  ct_tensor *r1 = ct_sum(g, DIMS(0, 2), false);
  double a[3], b[3];
  ct_to_doubles(s1, a), ct_to_doubles(r1, b);
  for (int i = 0; i < 3; i++) cr_assert(fabs(a[i] - b[i]) < 1e-12);
  ct_tensor *s2 = ct_sum_to_shape(g, SHAPE(4)); /* leading dims only */
  rm_expect_shape(s2, SHAPE(4));
  ct_tensor *s3 = ct_sum_to_shape(g, SHAPE(2, 1, 4)); /* size-1 dims only */
  rm_expect_shape(s3, SHAPE(2, 1, 4));
  ct_tensor *s4 = ct_sum_to_shape(g, NULL, 0);
  rm_expect_shape(s4, NULL, 0);
  rm_expect_error(ct_sum_to_shape(g, SHAPE(5)), "sum_to_shape", "[2,3,4]", "[5]");
  rm_expect_error(ct_sum_to_shape(g, SHAPE(1, 2, 3, 4)), "sum_to_shape", NULL, NULL);
  ct_release(g), ct_release(s1), ct_release(r1), ct_release(s2), ct_release(s3), ct_release(s4);
}

Test(reduce, empty_tensors) {
  ct_tensor *e = ct_zeros(SHAPE(0, 3), F32, CPU);
  ct_tensor *s = ct_sum(e, NULL, 0, false), *s0 = ct_sum(e, DIMS(0), false), *s1 = ct_sum(e, DIMS(1), false);
  rm_expect_values(s, (double[]){0}, 1, 0);
  rm_expect_values(s0, (double[]){0, 0, 0}, 3, 0);
  rm_expect_shape(s1, SHAPE(0));
  ct_tensor *m1 = ct_max(e, DIMS(1), false); /* nothing to take a max of, and no outputs */
  rm_expect_shape(m1, SHAPE(0));
  rm_expect_error(ct_max(e, NULL, 0, false), "max", "zero elements", "[0,3]");
  rm_expect_error(ct_min(e, DIMS(0), false), "min", "zero elements", NULL);
  rm_expect_error(ct_argmax(e, 0, false), "argmax", "zero elements", NULL);
  ct_tensor *m = ct_mean(e, NULL, 0, false);
  double mv;
  ct_item(m, &mv);
  cr_assert(isnan(mv), "mean of empty is NaN, got %g", mv);
  ct_release(e), ct_release(s), ct_release(s0), ct_release(s1), ct_release(m1), ct_release(m);
}

Test(reduce, zero_dim_tensor) {
  ct_tensor *x = ct_scalar(4, F64, CPU);
  ct_tensor *s = ct_sum(x, NULL, 0, false), *s2 = ct_sum(x, DIMS(-1), true), *am = ct_argmax(x, 0, false);
  rm_expect_shape(s, NULL, 0);
  rm_expect_values(s2, (double[]){4}, 1, 0);
  rm_expect_values(am, (double[]){1}, 1, 0);
  ct_release(x), ct_release(s), ct_release(s2), ct_release(am);
}

Test(reduce, errors) {
  ct_tensor *x = rm_random(SHAPE(2, 3), F32);
  rm_expect_error(ct_sum(x, DIMS(2), false), "sum", "dim 3 out of range", NULL);
  rm_expect_error(ct_mean(x, DIMS(-3), false), "mean", "out of range", NULL);
  rm_expect_error(ct_sum(x, DIMS(1, -1), false), "sum", "dim 2 appears more than once", NULL);
  rm_expect_error(ct_argmax(x, 5, false), "argmax", "out of range", NULL);
  rm_expect_error(ct_var(x, DIMS(0, 0), false, true), "var", "more than once", NULL);
  ct_release(x);
}

/* ---- reductions: gradients --------------------------------------------------------------------- */

typedef struct {
  int kind; /* 0 sum 1 mean 2 max 3 min 4 var 5 sum_to_shape */
  int dims[4], nd;
  bool keepdim;
  int layout; /* 0 as is, 1 transposed, 2 narrowed, 3 expanded */
} red_case;

static ct_tensor *red_layout(ct_tensor *leaf, int layout) {
  switch (layout) {
  case 1: return ct_transpose(leaf, 0, leaf->ndim - 1);
  case 2: return ct_narrow(leaf, 1, 1, leaf->shape[1] - 1);
  case 3: { /* leaf [a,1,c] broadcast to [a,4,c] */
    int64_t sh[CT_MAX_DIMS];
    memcpy(sh, leaf->shape, sizeof sh);
    sh[1] = 4;
    return ct_expand(leaf, sh, leaf->ndim);
  }
  default: return ct_retain(leaf);
  }
}

static ct_tensor *red_fn(ct_tensor **leaf, void *vctx) {
  red_case *c = vctx;
  ct_tensor *x = red_layout(leaf[0], c->layout), *r = NULL;
  switch (c->kind) {
  case 0: r = ct_sum(x, c->dims, c->nd, c->keepdim); break;
  case 1: r = ct_mean(x, c->dims, c->nd, c->keepdim); break;
  case 2: r = ct_max(x, c->dims, c->nd, c->keepdim); break;
  case 3: r = ct_min(x, c->dims, c->nd, c->keepdim); break;
  case 4: r = ct_var(x, c->dims, c->nd, c->keepdim, true); break;
  case 5: r = ct_sum_to_shape(x, (int64_t[]){x->shape[1], 1}, 2); break;
  }
  ct_release(x);
  return r;
}

Test(reduce, gradients_against_finite_differences) {
  static const struct { int dims[4], nd; bool keep; } dsets[] = {
      {{0}, 0, false}, {{-1}, 1, false}, {{0}, 1, true}, {{0, 2}, 2, false}, {{1, -1}, 2, true}, {{1}, 1, false},
  };
  for (int kind = 0; kind < 6; kind++)
    for (int layout = 0; layout < 4; layout++)
      for (size_t s = 0; s < sizeof dsets / sizeof *dsets; s++) {
        if (kind == 5 && s > 0) break;
        red_case c = {.kind = kind, .nd = dsets[s].nd, .keepdim = dsets[s].keep, .layout = layout};
        memcpy(c.dims, dsets[s].dims, sizeof c.dims);
        ct_tensor *leaf = layout == 3 ? rm_leaf(SHAPE(3, 1, 4)) : rm_leaf(SHAPE(3, 4, 5));
        char what[96];
        snprintf(what, sizeof what, "reduction kind %d, layout %d, dim set %zu", kind, layout, s);
        rm_gradcheck(what, red_fn, &c, &leaf, 1);
        ct_release(leaf);
      }
}

Test(reduce, max_gradient_splits_ties_evenly) {
  double v[] = {1, 5, 5, 2, 7, 7, 7, 0};
  ct_tensor *x = rm_tensor(v, SHAPE(2, 4), F64);
  ct_requires_grad_(x, true);
  ct_tensor *m = ct_max(x, DIMS(1), false);
  ct_tensor *s = ct_sum(m, NULL, 0, false);
  cr_assert(!ct_backward(s, NULL, false, false), "%s", ct_last_error());
  rm_expect_values(x->grad, (double[]){0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0}, 8, 1e-15);
  ct_tensor *y = rm_tensor(v, SHAPE(8), F64);
  ct_requires_grad_(y, true);
  ct_tensor *mn = ct_min(y, NULL, 0, false);
  cr_assert(!ct_backward(mn, NULL, false, false));
  rm_expect_values(y->grad, (double[]){0, 0, 0, 0, 0, 0, 0, 1}, 8, 0);
  ct_release(x), ct_release(m), ct_release(s), ct_release(y), ct_release(mn);
}

/* ---- matmul ------------------------------------------------------------------------------------ */

TestSuite(matmul);

/* Naive a @ b for >= 2-D operands with broadcast batch dims, via ct_get. */
static double *rm_naive_matmul(const ct_tensor *a, const ct_tensor *b, int64_t *shape, int *nd) {
  int na = a->ndim - 2, nb = b->ndim - 2, nbd = na > nb ? na : nb;
  int64_t n = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], m = b->shape[b->ndim - 1], batch = 1;
  for (int d = 0; d < nbd; d++) {
    int da = d - (nbd - na), db = d - (nbd - nb);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    shape[d] = sa > sb ? sa : sb;
    batch *= shape[d];
  }
  shape[nbd] = n, shape[nbd + 1] = m;
  *nd = nbd + 2;
  double *out = calloc((size_t)(batch * n * m + 1), sizeof(double));
  int64_t bidx[CT_MAX_DIMS] = {0};
  for (int64_t bi = 0; bi < batch; bi++) {
    int64_t ia[CT_MAX_DIMS], ib[CT_MAX_DIMS];
    for (int d = 0; d < na; d++) ia[d] = a->shape[d] == 1 ? 0 : bidx[d + nbd - na];
    for (int d = 0; d < nb; d++) ib[d] = b->shape[d] == 1 ? 0 : bidx[d + nbd - nb];
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) {
        double s = 0;
        for (int64_t t = 0; t < k; t++) {
          double x, y;
          ia[na] = i, ia[na + 1] = t, ib[nb] = t, ib[nb + 1] = j;
          ct_get(a, ia, &x), ct_get(b, ib, &y);
          s += x * y;
        }
        out[(bi * n + i) * m + j] = s;
      }
    for (int d = nbd - 1; d >= 0 && ++bidx[d] == shape[d]; d--) bidx[d] = 0;
  }
  return out;
}

static void check_matmul_layouts(ct_tensor *a, ct_tensor *b, const char *what) {
  ct_tensor *r = ct_matmul(a, b);
  cr_assert(r, "%s: %s", what, ct_last_error());
  int64_t shape[CT_MAX_DIMS];
  int nd;
  double *want = rm_naive_matmul(a, b, shape, &nd);
  rm_expect_shape(r, shape, nd);
  rm_expect_values(r, want, ct_numel(r), a->dtype == F32 ? 1e-5 : 1e-12);
  free(want);
  ct_release(r);
}

Test(matmul, hand_values_and_1d_rules) {
  ct_tensor *a = rm_tensor((double[]){1, 2, 3, 4, 5, 6}, SHAPE(2, 3), F32);
  ct_tensor *b = rm_tensor((double[]){7, 8, 9, 10, 11, 12}, SHAPE(3, 2), F32);
  ct_tensor *c = ct_matmul(a, b);
  rm_expect_shape(c, SHAPE(2, 2));
  rm_expect_values(c, (double[]){58, 64, 139, 154}, 4, 0);
  ct_tensor *u = rm_tensor((double[]){1, 2, 3}, SHAPE(3), F32), *v = rm_tensor((double[]){4, 5, 6}, SHAPE(3), F32);
  ct_tensor *dot = ct_matmul(u, v);
  rm_expect_shape(dot, NULL, 0);
  rm_expect_values(dot, (double[]){32}, 1, 0);
  ct_tensor *ub = ct_matmul(u, b); /* [3] @ [3,2] -> [2] */
  rm_expect_shape(ub, SHAPE(2));
  rm_expect_values(ub, (double[]){58, 64}, 2, 0);
  ct_tensor *au = ct_matmul(a, u); /* [2,3] @ [3] -> [2] */
  rm_expect_shape(au, SHAPE(2));
  rm_expect_values(au, (double[]){14, 32}, 2, 0);
  ct_tensor *b3 = rm_random(SHAPE(4, 3, 5), F32);
  ct_tensor *ub3 = ct_matmul(u, b3); /* [3] @ [4,3,5] -> [4,5] */
  rm_expect_shape(ub3, SHAPE(4, 5));
  ct_tensor *a3 = rm_random(SHAPE(4, 2, 3), F32);
  ct_tensor *a3u = ct_matmul(a3, u); /* [4,2,3] @ [3] -> [4,2] */
  rm_expect_shape(a3u, SHAPE(4, 2));
  ct_release(a), ct_release(b), ct_release(c), ct_release(u), ct_release(v), ct_release(dot), ct_release(ub);
  ct_release(au), ct_release(b3), ct_release(ub3), ct_release(a3), ct_release(a3u);
}

Test(matmul, layouts_against_naive_loops) {
  for (int t = 0; t < 2; t++) {
    ct_dtype dt = t ? F64 : F32;
    ct_tensor *a = rm_random(SHAPE(5, 7), dt), *b = rm_random(SHAPE(7, 6), dt);
    check_matmul_layouts(a, b, "contiguous");
    ct_tensor *at = rm_random(SHAPE(7, 5), dt), *bt = rm_random(SHAPE(6, 7), dt);
    ct_tensor *atT = ct_transpose(at, 0, 1), *btT = ct_transpose(bt, 0, 1);
    check_matmul_layouts(atT, b, "A transposed");
    check_matmul_layouts(a, btT, "B transposed");
    check_matmul_layouts(atT, btT, "both transposed");
    ct_tensor *wide = rm_random(SHAPE(9, 11), dt);
    ct_tensor *n1 = ct_narrow(wide, 0, 2, 5), *n2 = ct_narrow(n1, 1, 1, 7);
    check_matmul_layouts(n2, b, "A narrowed");
    ct_tensor *cube = rm_random(SHAPE(3, 7, 6), dt);
    ct_tensor *perm = ct_permute(cube, DIMS(2, 0, 1)); /* [6,3,7], matrix strides (42, 1)... */
    ct_tensor *sel = ct_select(cube, 2, 1);           /* [3,7] with strides (42, 6): packed */
    ct_tensor *b2 = rm_random(SHAPE(7, 4), dt);
    check_matmul_layouts(sel, b2, "A packed (no unit stride)");
    ct_tensor *cubeT = ct_transpose(cube, 0, 2), *bs = ct_select(cubeT, 2, 0); /* [6,7] strides (1, 6) */
    ct_tensor *a6 = rm_random(SHAPE(2, 6), dt);
    check_matmul_layouts(a6, bs, "B transposed, via select");
    ct_tensor *rowv = rm_random(SHAPE(1, 7), dt);
    ct_tensor *rowx = ct_expand(rowv, SHAPE(5, 7)); /* stride-0 rows: must be packed */
    check_matmul_layouts(rowx, b, "A with stride-0 rows");
    ct_release(a), ct_release(b), ct_release(at), ct_release(bt), ct_release(atT), ct_release(btT);
    ct_release(wide), ct_release(n1), ct_release(n2), ct_release(cube), ct_release(perm), ct_release(sel);
    ct_release(b2), ct_release(cubeT), ct_release(bs), ct_release(a6), ct_release(rowv), ct_release(rowx);
  }
}

Test(matmul, batched_with_broadcast_batch_dims) {
  ct_tensor *a = rm_random(SHAPE(2, 1, 3, 4), F64), *b = rm_random(SHAPE(5, 4, 2), F64);
  check_matmul_layouts(a, b, "[2,1,3,4] @ [5,4,2]");
  ct_tensor *a3 = rm_random(SHAPE(6, 3, 4), F64), *b2 = rm_random(SHAPE(4, 5), F64);
  check_matmul_layouts(a3, b2, "batched @ matrix (folded rows)");
  ct_tensor *a3base = rm_random(SHAPE(6, 4, 3), F64), *a3t = ct_transpose(a3base, 1, 2);
  check_matmul_layouts(a3t, b2, "transposed batched @ matrix");
  ct_tensor *ap = ct_permute(a3, DIMS(1, 0, 2)); /* [3,6,4]: batches not evenly spaced rows */
  check_matmul_layouts(ap, b2, "permuted batch @ matrix");
  ct_tensor *one = rm_random(SHAPE(1, 3, 4), F64);
  ct_tensor *ex = ct_expand(one, SHAPE(7, 3, 4)); /* stride-0 batch, must not be copied */
  check_matmul_layouts(ex, b2, "expanded batch");
  ct_tensor *b4 = rm_random(SHAPE(7, 4, 2), F64);
  ct_tensor *b352 = rm_random(SHAPE(3, 5, 2), F64);
  check_matmul_layouts(b2 /* [4,5] */, b352, "matrix @ batched");
  check_matmul_layouts(ex, b4, "expanded batch @ batched");
  ct_tensor *e0 = ct_zeros(SHAPE(3, 0), F64, CPU), *e1 = ct_zeros(SHAPE(0, 2), F64, CPU);
  ct_tensor *z = ct_matmul(e0, e1);
  rm_expect_shape(z, SHAPE(3, 2));
  rm_expect_values(z, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
  ct_release(a), ct_release(b), ct_release(a3), ct_release(b2), ct_release(a3base), ct_release(a3t), ct_release(ap);
  ct_release(b352);
  ct_release(one), ct_release(ex), ct_release(b4), ct_release(e0), ct_release(e1), ct_release(z);
}

Test(matmul, errors) {
  ct_tensor *a = rm_random(SHAPE(2, 3), F32), *b = rm_random(SHAPE(4, 5), F32), *d = rm_random(SHAPE(3, 5), F64);
  rm_expect_error(ct_matmul(a, b), "matmul: shapes [2,3] and [4,5] cannot be multiplied (3 != 4)", "f32[2,3]",
                  "f32[4,5]");
  rm_expect_error(ct_matmul(a, d), "matmul", "f32", "f64");
  ct_tensor *i = rm_tensor((double[]){1, 2, 3}, SHAPE(3), CT_I64), *j = rm_tensor((double[]){1, 2, 3}, SHAPE(3), CT_I64);
  rm_expect_error(ct_matmul(i, j), "matmul", "i64", "not supported");
  ct_tensor *s = ct_scalar(2, F32, CPU);
  rm_expect_error(ct_matmul(s, a), "matmul", "at least 1 dim", NULL);
  ct_tensor *ba = rm_random(SHAPE(2, 2, 3), F32), *bb = rm_random(SHAPE(3, 3, 2), F32);
  rm_expect_error(ct_matmul(ba, bb), "matmul", "batch dims", "[2,2,3]");
  ct_tensor *v = rm_random(SHAPE(4), F32);
  rm_expect_error(ct_matmul(a, v), "matmul: shapes [2,3] and [4] cannot be multiplied (3 != 4)", NULL, NULL);
  ct_release(a), ct_release(b), ct_release(d), ct_release(i), ct_release(j), ct_release(s), ct_release(ba);
  ct_release(bb), ct_release(v);
}

typedef struct {
  int la, lb; /* layout of each operand: 0 as is, 1 transposed, 2 narrowed, 3 expanded batch, 4 packed */
  int64_t ea, eb; /* size the expanded layout broadcasts batch dim 0 to */
} mm_case;

static ct_tensor *mm_view(ct_tensor *leaf, int layout, int64_t expand_to) {
  switch (layout) {
  case 1: return ct_transpose(leaf, -1, -2);
  case 2: return ct_narrow(leaf, -1, 1, leaf->shape[leaf->ndim - 1] - 1);
  case 3: {
    int64_t sh[CT_MAX_DIMS];
    memcpy(sh, leaf->shape, sizeof sh);
    sh[0] = expand_to;
    return ct_expand(leaf, sh, leaf->ndim);
  }
  case 4: return ct_select(leaf, -1, 1); /* leaf [..., r, c, 3]: the matrix has strides (3c, 3) */
  default: return ct_retain(leaf);
  }
}

static ct_tensor *mm_fn(ct_tensor **leaf, void *vctx) {
  mm_case *c = vctx;
  ct_tensor *a = mm_view(leaf[0], c->la, c->ea), *b = mm_view(leaf[1], c->lb, c->eb);
  ct_tensor *r = ct_matmul(a, b);
  ct_release(a), ct_release(b);
  return r;
}

/* The leaf shape that gives a [..., r, c] operand in the given layout. */
static ct_tensor *mm_leaf_for(int layout, int nb, const int64_t *batch, int64_t r, int64_t c) {
  int64_t sh[CT_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < nb; d++) sh[nd++] = layout == 3 && d == 0 ? 1 : batch[d];
  switch (layout) {
  case 1: sh[nd++] = c, sh[nd++] = r; break;
  case 2: sh[nd++] = r, sh[nd++] = c + 1; break;
  case 4: sh[nd++] = r, sh[nd++] = c, sh[nd++] = 3; break;
  default: sh[nd++] = r, sh[nd++] = c; break;
  }
  return rm_leaf(sh, nd);
}

Test(matmul, gradients_against_finite_differences) {
  static const struct { int na, nb; int64_t ba[3], bb[3]; } shapes[] = {
      {0, 0, {0}, {0}},            /* [n,k] @ [k,m] */
      {1, 0, {3}, {0}},            /* batched @ matrix: folded forward, folded gB */
      {0, 1, {0}, {3}},            /* matrix @ batched: gA summed over batches */
      {2, 1, {3, 2}, {2}},         /* [3,2,n,k] @ [2,k,m] */
      {1, 2, {3}, {2, 3}},         /* [3,n,k] @ [2,3,k,m] */
  };
  const int64_t n = 3, k = 4, m = 2;
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int la = 0; la < 5; la++)
      for (int lb = 0; lb < 5; lb++) {
        if ((la == 3 && shapes[s].na == 0) || (lb == 3 && shapes[s].nb == 0)) continue;
        if (la == 3 && lb == 3 && shapes[s].na != shapes[s].nb) continue;
        mm_case c = {la, lb, shapes[s].ba[0], shapes[s].bb[0]};
        ct_tensor *leaf[2] = {mm_leaf_for(la, shapes[s].na, shapes[s].ba, n, k),
                              mm_leaf_for(lb, shapes[s].nb, shapes[s].bb, k, m)};
        char what[96];
        snprintf(what, sizeof what, "matmul shapes %zu, layouts %d x %d", s, la, lb);
        rm_gradcheck(what, mm_fn, &c, leaf, 2);
        ct_release(leaf[0]), ct_release(leaf[1]);
      }
}

static ct_tensor *mm_1d_fn(ct_tensor **leaf, void *vctx) {
  (void)vctx;
  ct_tensor *r1 = ct_matmul(leaf[0], leaf[1]); /* [3] @ [2,3,4] -> [2,4] */
  ct_tensor *r2 = ct_matmul(leaf[1], leaf[2]); /* [2,3,4] @ [4] -> [2,3] */
  ct_tensor *r3 = ct_matmul(leaf[2], leaf[2]); /* dot */
  ct_tensor *s1 = ct_sum(r1, NULL, 0, false), *s2 = ct_mul(r2, r3);
  ct_tensor *r = ct_add(s1, s2);
  ct_release(r1), ct_release(r2), ct_release(r3), ct_release(s1), ct_release(s2);
  return r;
}

Test(matmul, one_dim_gradients) {
  ct_tensor *leaf[3] = {rm_leaf(SHAPE(3)), rm_leaf(SHAPE(2, 3, 4)), rm_leaf(SHAPE(4))};
  rm_gradcheck("matmul 1-D rules", mm_1d_fn, NULL, leaf, 3);
  for (int i = 0; i < 3; i++) ct_release(leaf[i]);
}

/* Double backward: h(A, B) = sum(dL/dA * V) with L = sum((A @ B)^2 * W), built with create_graph. */
static ct_tensor *mm_gradgrad_fn(ct_tensor **leaf, void *vctx) {
  ct_tensor **wv = vctx;
  ct_tensor *p = ct_matmul(leaf[0], leaf[1]), *p2 = ct_mul(p, p), *pw = ct_mul(p2, wv[0]);
  ct_tensor *L = ct_sum(pw, NULL, 0, false);
  ct_release(p), ct_release(p2), ct_release(pw);
  ct_tensor *gA = NULL;
  bool on = ct_grad_enabled();
  if (L && L->requires_grad) ct_grad(L, NULL, &leaf[0], 1, &gA, true, on);
  ct_release(L);
  if (!gA) return NULL;
  ct_tensor *r = ct_mul(gA, wv[1]);
  ct_release(gA);
  return r;
}

Test(matmul, double_backward) {
  ct_tensor *leaf[2] = {rm_leaf(SHAPE(2, 3, 4)), rm_leaf(SHAPE(4, 2))};
  ct_tensor *wv[2] = {rm_random(SHAPE(2, 3, 2), F64), rm_random(SHAPE(2, 3, 4), F64)};
  /* h is differentiated once more (analytic) and compared with central differences of h itself */
  ct_tensor *h = mm_gradgrad_fn(leaf, wv);
  cr_assert(h, "%s", ct_last_error());
  ct_tensor *hs = ct_sum(h, NULL, 0, false);
  ct_tensor *g[2];
  cr_assert(!ct_grad(hs, NULL, leaf, 2, g, false, false), "%s", ct_last_error());
  const double eps = 1e-6;
  for (int L = 0; L < 2; L++) {
    int64_t nel = ct_numel(leaf[L]), idx[CT_MAX_DIMS] = {0};
    double *ga = malloc(sizeof(double) * (size_t)nel);
    ct_to_doubles(g[L], ga);
    for (int64_t i = 0; i < nel; i++) {
      double v0, hp, hm;
      ct_get(leaf[L], idx, &v0);
      ct_set(leaf[L], idx, v0 + eps);
      ct_tensor *h1 = mm_gradgrad_fn(leaf, wv), *s1 = ct_sum(h1, NULL, 0, false);
      ct_set(leaf[L], idx, v0 - eps);
      ct_tensor *h2 = mm_gradgrad_fn(leaf, wv), *s2 = ct_sum(h2, NULL, 0, false);
      ct_set(leaf[L], idx, v0);
      ct_item(s1, &hp), ct_item(s2, &hm);
      double fd = (hp - hm) / (2 * eps);
      cr_assert(fabs(fd - ga[i]) < 1e-5 * (1 + fabs(fd)), "second derivative, input %d element %lld: %g vs %g",
                L + 1, (long long)i, ga[i], fd);
      ct_release(h1), ct_release(s1), ct_release(h2), ct_release(s2);
      for (int d = leaf[L]->ndim - 1; d >= 0 && ++idx[d] == leaf[L]->shape[d]; d--) idx[d] = 0;
    }
    free(ga);
    ct_release(g[L]);
  }
  ct_release(h), ct_release(hs), ct_release(leaf[0]), ct_release(leaf[1]), ct_release(wv[0]), ct_release(wv[1]);
}

Test(matmul, large_sgemm_matches_reference_loop) {
  int64_t n = 67, k = 129, m = 33;
  ct_tensor *a = rm_random(SHAPE(n, k), F32), *bT = rm_random(SHAPE(m, k), F32);
  ct_tensor *b = ct_transpose(bT, 0, 1);
  check_matmul_layouts(a, b, "67x129 @ (33x129)^T");
  ct_release(a), ct_release(bT), ct_release(b);
}
