/* cases_ops.c: parity cases for every op of the op table on CUDA against the CPU: sizes 1, 7, 33
 * and 1000, contiguous, transposed and narrowed (non-contiguous) inputs, broadcasting, forward
 * and gradients. Thresholds (NMSE): 0 where the op moves or compares values (copies, indexing,
 * max/argmax, comparisons, masks), 1e-10 for f32 arithmetic (the GPU's libm and summation order
 * differ from the CPU's by ulps), 1e-24 for f64. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define F32_TOL 1e-10
#define F64_TOL 1e-24
static double tol_of(ct_dtype dt) { return dt == CT_F64 ? F64_TOL : ct_dtype_is_float(dt) ? F32_TOL : 0; }

static const char *shape_label(char *buf, size_t n, const char *op, ct_dtype dt, const int64_t *s, int nd, int lay,
                               const char *extra) {
  char sh[120];
  snprintf(buf, n, "%s %s %s %s%s%s", op, ct_dtype_name(dt), ct_shape_str(s, nd, sh, sizeof sh), lay_names[lay],
           extra ? " " : "", extra ? extra : "");
  return buf;
}

/* ==== elementwise ================================================================================ */
#define BIN(NAME, FN)                                                                              \
  static ct_tensor *op_##NAME(ct_tensor *const *x, const prm *p) {                                 \
    (void)p;                                                                                       \
    return FN(x[0], x[1]);                                                                         \
  }
#define UN(NAME, FN)                                                                               \
  static ct_tensor *op_##NAME(ct_tensor *const *x, const prm *p) {                                 \
    (void)p;                                                                                       \
    return FN(x[0]);                                                                               \
  }
BIN(add, ct_add) BIN(sub, ct_sub) BIN(mul, ct_mul) BIN(div, ct_div) BIN(pow, ct_pow) BIN(maximum, ct_maximum)
BIN(eq, ct_eq) BIN(ne, ct_ne) BIN(lt, ct_lt) BIN(le, ct_le) BIN(gt, ct_gt) BIN(ge, ct_ge)
UN(neg, ct_neg) UN(exp, ct_exp) UN(log, ct_log) UN(sqrt, ct_sqrt) UN(abs, ct_abs) UN(sign, ct_sign) UN(sin, ct_sin)
UN(cos, ct_cos) UN(tanh, ct_tanh) UN(sigmoid, ct_sigmoid) UN(relu, ct_relu) UN(gelu, ct_gelu)
static ct_tensor *op_pow_scalar(ct_tensor *const *x, const prm *p) { return ct_pow_scalar(x[0], p->f[0]); }
static ct_tensor *op_add_scalar(ct_tensor *const *x, const prm *p) { return ct_add_scalar(x[0], p->f[0]); }
static ct_tensor *op_mul_scalar(ct_tensor *const *x, const prm *p) { return ct_mul_scalar(x[0], p->f[0]); }
static ct_tensor *op_clamp(ct_tensor *const *x, const prm *p) { return ct_clamp(x[0], p->f[0], p->f[1]); }
static ct_tensor *op_where(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_where(x[0], x[1], x[2]);
}

void cases_elementwise(void) {
  struct {
    const char *name;
    opf f;
    double lo, hi, blo, bhi;
    bool ints, cmp;
  } bins[] = {
      {"add", op_add, -2, 2, -2, 2, true, false},        {"sub", op_sub, -2, 2, -2, 2, true, false},
      {"mul", op_mul, -2, 2, -2, 2, true, false},        {"div", op_div, -2, 2, 0.5, 2, false, false},
      {"pow", op_pow, 0.5, 2, -2, 2, false, false},      {"maximum", op_maximum, -2, 2, -2, 2, true, false},
      {"eq", op_eq, -2, 2, -2, 2, true, true},           {"ne", op_ne, -2, 2, -2, 2, true, true},
      {"lt", op_lt, -2, 2, -2, 2, true, true},           {"le", op_le, -2, 2, -2, 2, true, true},
      {"gt", op_gt, -2, 2, -2, 2, true, true},           {"ge", op_ge, -2, 2, -2, 2, true, true},
  };
  const ct_dtype dts[4] = {CT_F32, CT_F64, CT_I32, CT_I64};
  char label[300];
  for (size_t o = 0; o < sizeof bins / sizeof *bins; o++)
    for (int di = 0; di < 4; di++) {
      ct_dtype dt = dts[di];
      if (!ct_dtype_is_float(dt) && !bins[o].ints) continue;
      for (int si = 0; si < NSIZES; si++)
        for (int lay = 0; lay < LAY_COUNT; lay++)
          for (int bv = 0; bv < 4; bv++) {
            int64_t s = SIZES[si], as[2] = {s, 5};
            /* comparisons draw from a few integers so that ties (eq, le, ge) occur */
            double lo = bins[o].cmp ? -2 : bins[o].lo, hi = bins[o].cmp ? 2 : bins[o].hi;
            bool integral = bins[o].cmp || !ct_dtype_is_float(dt);
            pair a = mk(as, 2, dt, lo, hi, lay, true);
            if (integral && ct_dtype_is_float(dt)) { /* round floats to integers for the comparisons */
              pair_free(&a);
              a = mk(as, 2, CT_I64, lo, hi, lay, false);
              ct_tensor *c0 = ct_to_dtype(a.base[0], dt), *c1 = ct_to_dtype(a.base[1], dt);
              pair_free(&a);
              a.base[0] = c0, a.base[1] = c1, a.t[0] = ct_retain(c0), a.t[1] = ct_retain(c1), a.grad = false, a.layout = -1;
            }
            int64_t bs[2];
            int bnd;
            const char *bdesc;
            switch (bv) {
            case 0: bs[0] = s, bs[1] = 5, bnd = 2, bdesc = "with [s,5]"; break;
            case 1: bs[0] = 5, bnd = 1, bdesc = "with [5]"; break;
            case 2: bs[0] = s, bs[1] = 1, bnd = 2, bdesc = "with [s,1]"; break;
            default: bnd = 0, bdesc = "with a 0-d tensor"; break;
            }
            pair b = mk(bs, bnd, integral ? CT_I64 : dt, bins[o].cmp ? -2 : bins[o].blo, bins[o].cmp ? 2 : bins[o].bhi,
                        bv == 0 ? lay : LAY_CONTIG, !integral);
            if (integral && ct_dtype_is_float(dt)) {
              ct_tensor *c0 = ct_to_dtype(b.base[0], dt), *c1 = ct_to_dtype(b.base[1], dt);
              pair_free(&b);
              b.base[0] = c0, b.base[1] = c1, b.t[0] = ct_retain(c0), b.t[1] = ct_retain(c1), b.grad = false, b.layout = -1;
            } else if (!ct_dtype_is_float(dt)) {
              ct_tensor *c0 = ct_to_dtype(b.base[0], dt), *c1 = ct_to_dtype(b.base[1], dt);
              pair_free(&b);
              b.base[0] = c0, b.base[1] = c1, b.t[0] = ct_retain(c0), b.t[1] = ct_retain(c1), b.grad = false, b.layout = -1;
            }
            pair in[2] = {a, b};
            shape_label(label, sizeof label, bins[o].name, dt, as, 2, lay, bdesc);
            run_case(bins[o].name, label, bins[o].f, NULL, in, 2, tol_of(dt), 10 * tol_of(dt));
            pair_free(&a), pair_free(&b);
          }
    }

  struct {
    const char *name;
    opf f;
    double lo, hi, f0, f1;
    bool ints;
  } uns[] = {
      {"neg", op_neg, -3, 3, 0, 0, true},          {"exp", op_exp, -3, 3, 0, 0, false},
      {"log", op_log, 0.1, 3, 0, 0, false},        {"sqrt", op_sqrt, 0.1, 3, 0, 0, false},
      {"abs", op_abs, -3, 3, 0, 0, true},          {"sign", op_sign, -3, 3, 0, 0, true},
      {"sin", op_sin, -3, 3, 0, 0, false},         {"cos", op_cos, -3, 3, 0, 0, false},
      {"tanh", op_tanh, -3, 3, 0, 0, false},       {"sigmoid", op_sigmoid, -3, 3, 0, 0, false},
      {"relu", op_relu, -3, 3, 0, 0, true},        {"gelu", op_gelu, -3, 3, 0, 0, false},
      {"pow_scalar", op_pow_scalar, 0.2, 3, 2.5, 0, false},
      {"add_scalar", op_add_scalar, -3, 3, 1.5, 0, false},
      {"mul_scalar", op_mul_scalar, -3, 3, -0.75, 0, false},
      {"clamp", op_clamp, -3, 3, -0.5, 0.5, true},
  };
  for (size_t o = 0; o < sizeof uns / sizeof *uns; o++)
    for (int di = 0; di < 4; di++) {
      ct_dtype dt = dts[di];
      if (!ct_dtype_is_float(dt) && !uns[o].ints) continue;
      prm p = {{0}, {uns[o].f0, uns[o].f1}};
      if (!ct_dtype_is_float(dt) && !strcmp(uns[o].name, "clamp")) p.f[0] = -2, p.f[1] = 1;
      for (int si = 0; si < NSIZES; si++)
        for (int lay = 0; lay < LAY_COUNT; lay++) {
          int64_t shape[3] = {SIZES[si], 3, 4};
          pair a = mk(shape, 3, dt, uns[o].lo, uns[o].hi, lay, true);
          run_case(uns[o].name, shape_label(label, sizeof label, uns[o].name, dt, shape, 3, lay, NULL), uns[o].f, &p, &a, 1,
                   tol_of(dt), 10 * tol_of(dt));
          pair_free(&a);
        }
    }

  /* where(cond, a, b): every operand broadcast differently */
  for (int di = 0; di < 4; di++)
    for (int si = 0; si < NSIZES; si++)
      for (int lay = 0; lay < LAY_COUNT; lay++) {
        ct_dtype dt = dts[di];
        int64_t s = SIZES[si], cs[2] = {s, 5}, as[2] = {s, 1}, bs[1] = {5};
        pair in[3] = {mk(cs, 2, CT_BOOL, 0, 1, lay, false), mk(as, 2, dt, -3, 3, LAY_CONTIG, true),
                      mk(bs, 1, dt, -3, 3, LAY_CONTIG, true)};
        run_case("where", shape_label(label, sizeof label, "where", dt, cs, 2, lay, "cond [s,5], a [s,1], b [5]"),
                 op_where, NULL, in, 3, tol_of(dt), 10 * tol_of(dt));
        for (int k = 0; k < 3; k++) pair_free(&in[k]);
      }

  /* large flat operands (vector path and its tail) and misaligned ones (scalar path) */
  int64_t big[1] = {QUICK ? 4099 : (1 << 20) + 3};
  for (int lay = 0; lay < 2; lay++) {
    int64_t sh[1] = {big[0]};
    pair a = mk(sh, 1, CT_F32, -2, 2, lay ? LAY_NARROW : LAY_CONTIG, true);
    pair b = mk(sh, 1, CT_F32, -2, 2, lay ? LAY_NARROW : LAY_CONTIG, true);
    pair in[2] = {a, b};
    run_case("mul", lay ? "f32 large flat, misaligned views" : "f32 large flat, contiguous", op_mul, NULL, in, 2, F32_TOL,
             10 * F32_TOL);
    run_case("tanh", lay ? "f32 large flat, misaligned view" : "f32 large flat, contiguous", op_tanh, NULL, in, 1, F32_TOL,
             10 * F32_TOL);
    pair_free(&a), pair_free(&b);
  }
}

/* ==== copies and conversions ======================================================================= */
static ct_tensor *op_contiguous(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_contiguous(x[0]);
}
static ct_tensor *op_clone(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_clone(x[0]);
}
static ct_tensor *op_to_dtype(ct_tensor *const *x, const prm *p) { return ct_to_dtype(x[0], (ct_dtype)p->i[0]); }
/* to the CPU and back to where it was: the D2H and H2D paths of the copy op */
static ct_tensor *op_roundtrip(ct_tensor *const *x, const prm *p) {
  (void)p;
  ct_tensor *h = ct_to_device(x[0], ct_cpu());
  ct_tensor *r = h ? ct_to_device(h, x[0]->storage->device) : NULL;
  ct_release(h);
  return r;
}
/* views: their gradients run narrow_scatter (narrow, select) and the copy kernels */
static ct_tensor *op_narrow_view(ct_tensor *const *x, const prm *p) {
  (void)p;
  ct_tensor *v = ct_narrow(x[0], 0, x[0]->shape[0] / 3, x[0]->shape[0] - x[0]->shape[0] / 3);
  ct_tensor *r = v ? ct_mul_scalar(v, 2.0) : NULL;
  ct_release(v);
  return r;
}
static ct_tensor *op_select_view(ct_tensor *const *x, const prm *p) {
  (void)p;
  ct_tensor *v = ct_select(x[0], 1, 2);
  ct_tensor *r = v ? ct_contiguous(v) : NULL;
  ct_release(v);
  return r;
}
static ct_tensor *op_permute_expand(ct_tensor *const *x, const prm *p) {
  (void)p;
  int dims[3] = {2, 0, 1};
  ct_tensor *v = ct_permute(x[0], dims, 3);
  ct_tensor *u = v ? ct_unsqueeze(v, 0) : NULL;
  int64_t es[4] = {2, -1, -1, -1};
  ct_tensor *e = u ? ct_expand(u, es, 4) : NULL;
  ct_tensor *r = e ? ct_contiguous(e) : NULL;
  ct_release(v), ct_release(u), ct_release(e);
  return r;
}

void cases_convert(void) {
  char label[300];
  const ct_dtype all[8] = {CT_F32, CT_F64, CT_F16, CT_BF16, CT_I32, CT_I64, CT_I8, CT_BOOL};
  for (int si = 0; si < NSIZES; si++)
    for (int lay = 0; lay < LAY_COUNT; lay++) {
      int64_t shape[3] = {SIZES[si], 4, 6};
      for (int d = 0; d < 8; d++) {
        pair a = mk(shape, 3, all[d], -100, 100, lay, true);
        run_case("copy", shape_label(label, sizeof label, "contiguous()", all[d], shape, 3, lay, NULL), op_contiguous,
                 NULL, &a, 1, 0, 0);
        run_case("copy", shape_label(label, sizeof label, "cpu round trip", all[d], shape, 3, lay, NULL), op_roundtrip,
                 NULL, &a, 1, 0, 0);
        for (int e = 0; e < 8; e++) {
          if (e == d) continue;
          prm p = {{all[e]}, {0}};
          char ex[40];
          snprintf(ex, sizeof ex, "to %s", ct_dtype_name(all[e]));
          /* between float dtypes the conversion is differentiable: its gradient runs to_dtype back */
          run_case("to_dtype", shape_label(label, sizeof label, "to_dtype", all[d], shape, 3, lay, ex), op_to_dtype, &p,
                   &a, 1, 0, 0);
        }
        pair_free(&a);
      }
      pair a = mk(shape, 3, CT_F32, -3, 3, lay, true);
      run_case("copy", shape_label(label, sizeof label, "clone", CT_F32, shape, 3, lay, NULL), op_clone, NULL, &a, 1, 0, 0);
      run_case("narrow_scatter", shape_label(label, sizeof label, "narrow view", CT_F32, shape, 3, lay, NULL),
               op_narrow_view, NULL, &a, 1, F32_TOL, 0);
      run_case("narrow_scatter", shape_label(label, sizeof label, "select view", CT_F32, shape, 3, lay, NULL),
               op_select_view, NULL, &a, 1, 0, 0);
      run_case("copy", shape_label(label, sizeof label, "permute+expand", CT_F32, shape, 3, lay, NULL), op_permute_expand,
               NULL, &a, 1, 0, 0);
      pair_free(&a);
    }

  /* ct_copy_ into a strided GPU destination: broadcast source, another dtype */
  for (int si = 0; si < NSIZES; si++) {
    int64_t s = SIZES[si], ds[2] = {5, s}, ss[1] = {5};
    pair dst = mk(ds, 2, CT_F64, -1, 1, LAY_CONTIG, false), src = mk(ss, 1, CT_F32, -3, 3, LAY_CONTIG, false);
    ct_tensor *dv[2];
    for (int d = 0; d < 2; d++) {
      ct_tensor *t = ct_transpose(dst.base[d], 0, 1); /* [s,5], strided */
      ct_tensor *src_b = ct_reshape(src.base[d], ss, 1);
      if (ct_copy_(t, src_b)) printf("copy_ on %s: %s\n", d ? "gpu" : "cpu", ct_last_error());
      ct_release(src_b);
      dv[d] = t;
    }
    const char *why;
    double e = compare(dst.base[0], dst.base[1], &why);
    snprintf(label, sizeof label, "copy_ f32 [5] into transposed f64 [%lld,5]", (long long)s);
    record("copy", label, !why && e == 0, e, why ? why : "not exactly equal");
    ct_release(dv[0]), ct_release(dv[1]);
    /* fill_ of a GPU view */
    ct_tensor *v[2];
    for (int d = 0; d < 2; d++) {
      v[d] = ct_narrow(dst.base[d], 1, 0, s > 1 ? s - 1 : 1);
      if (ct_fill_(v[d], 0.25)) printf("fill_: %s\n", ct_last_error());
    }
    e = compare(dst.base[0], dst.base[1], &why);
    record("copy", "fill_ of a narrowed GPU view", !why && e == 0, e, why ? why : "not exactly equal");
    ct_release(v[0]), ct_release(v[1]);
    pair_free(&dst), pair_free(&src);
  }

  /* axpby_ (y <- a y + b x in place, the optimizers' update): contiguous y with a broadcast x, and
     a transposed y; products rounded separately on both devices, so exactly equal */
  for (int si = 0; si < NSIZES; si++)
    for (int di = 0; di < 2; di++) {
      ct_dtype dt = di ? CT_F64 : CT_F32;
      int64_t s = SIZES[si], ys[2] = {s, 5}, xs[1] = {5};
      pair y = mk(ys, 2, dt, -1, 1, LAY_CONTIG, false), yt = mk(ys, 2, dt, -1, 1, LAY_CONTIG, false);
      pair x = mk(xs, 1, dt, -3, 3, LAY_CONTIG, false), xf = mk(ys, 2, dt, -3, 3, LAY_CONTIG, false);
      for (int d = 0; d < 2; d++) {
        if (ct_axpby_(y.base[d], 0.9, x.base[d], 1 - 0.1)) printf("axpby_ on %s: %s\n", d ? "gpu" : "cpu", ct_last_error());
        ct_tensor *t = ct_transpose(yt.base[d], 0, 1), *xt = ct_transpose(xf.base[d], 0, 1);
        if (ct_axpby_(t, 1, xt, -0.01)) printf("axpby_ (transposed) on %s: %s\n", d ? "gpu" : "cpu", ct_last_error());
        ct_release(t), ct_release(xt);
      }
      const char *why;
      double e = compare(y.base[0], y.base[1], &why);
      snprintf(label, sizeof label, "axpby_ %s [%lld,5] with x [5]", ct_dtype_name(dt), (long long)s);
      record("axpby", label, !why && e == 0, e, why ? why : "not exactly equal");
      e = compare(yt.base[0], yt.base[1], &why);
      snprintf(label, sizeof label, "axpby_ %s transposed [5,%lld]", ct_dtype_name(dt), (long long)s);
      record("axpby", label, !why && e == 0, e, why ? why : "not exactly equal");
      pair_free(&y), pair_free(&yt), pair_free(&x), pair_free(&xf);
    }
}

/* ==== reductions ============================================================================== */
static ct_tensor *op_sum(ct_tensor *const *x, const prm *p) { return ct_sum(x[0], p->i + 2, p->i[0], p->i[1]); }
static ct_tensor *op_mean(ct_tensor *const *x, const prm *p) { return ct_mean(x[0], p->i + 2, p->i[0], p->i[1]); }
static ct_tensor *op_max(ct_tensor *const *x, const prm *p) { return ct_max(x[0], p->i + 2, p->i[0], p->i[1]); }
static ct_tensor *op_min(ct_tensor *const *x, const prm *p) { return ct_min(x[0], p->i + 2, p->i[0], p->i[1]); }
static ct_tensor *op_var(ct_tensor *const *x, const prm *p) { return ct_var(x[0], p->i + 2, p->i[0], p->i[1], true); }
static ct_tensor *op_argmax(ct_tensor *const *x, const prm *p) { return ct_argmax(x[0], p->i[2], p->i[1]); }
static ct_tensor *op_argmin(ct_tensor *const *x, const prm *p) { return ct_argmin(x[0], p->i[2], p->i[1]); }

void cases_reduce(void) {
  char label[300];
  struct {
    const char *name;
    opf f;
    bool exact, ints;
  } ops[] = {{"sum", op_sum, false, true}, {"mean", op_mean, false, false}, {"max", op_max, true, true},
             {"min", op_min, true, true},  {"var", op_var, false, false}};
  /* dim sets: n, keepdim, dims... */
  const int sets[][5] = {{0, 0}, {1, 0, 0}, {1, 1, 1}, {1, 0, 2}, {2, 1, 0, 2}, {2, 0, 1, 2}, {1, 1, -1}};
  const ct_dtype dts[3] = {CT_F32, CT_F64, CT_I32};
  for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
    for (int di = 0; di < 3; di++) {
      ct_dtype dt = dts[di];
      if (!ct_dtype_is_float(dt) && !ops[o].ints) continue;
      for (int si = 0; si < NSIZES; si++)
        for (int lay = 0; lay < LAY_COUNT; lay++)
          for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
            int64_t shape[3] = {SIZES[si], 5, 3};
            prm p = {{sets[k][0], sets[k][1], sets[k][2], sets[k][3], sets[k][4]}, {0}};
            pair a = mk(shape, 3, dt, -3, 3, lay, true);
            char ex[60];
            snprintf(ex, sizeof ex, "dims(n=%d: %d %d) keepdim=%d", sets[k][0], sets[k][2], sets[k][3], sets[k][1]);
            double t = ops[o].exact ? 0 : tol_of(dt);
            if (!ct_dtype_is_float(dt)) t = 0;
            run_case(ops[o].name, shape_label(label, sizeof label, ops[o].name, dt, shape, 3, lay, ex), ops[o].f, &p, &a,
                     1, t, 10 * tol_of(dt));
            pair_free(&a);
          }
    }
  /* argmax/argmin, with ties (small integers) and without */
  for (int which = 0; which < 2; which++)
    for (int ties = 0; ties < 2; ties++)
      for (int si = 0; si < NSIZES; si++)
        for (int lay = 0; lay < LAY_COUNT; lay++)
          for (int dim = -1; dim < 3; dim++) {
            int64_t shape[3] = {SIZES[si], 5, 3};
            prm p = {{0, dim == 1, dim < 0 ? CT_ALL_DIMS : dim}, {0}};
            ct_dtype dt = ties ? CT_I64 : CT_F32;
            pair a = mk(shape, 3, dt, ties ? -1 : -3, ties ? 1 : 3, lay, false);
            char ex[40];
            snprintf(ex, sizeof ex, "dim %d%s", dim, ties ? " ties" : "");
            run_case(which ? "argmin" : "argmax",
                     shape_label(label, sizeof label, which ? "argmin" : "argmax", dt, shape, 3, lay, ex),
                     which ? op_argmin : op_argmax, &p, &a, 1, 0, 0);
            pair_free(&a);
          }
  /* NaN wins max/min/argmax, the first NaN for argmax */
  {
    double v[12] = {1, NAN, 3, 4, 5, 6, NAN, 8, 9, 10, 11, NAN};
    int64_t shape[2] = {3, 4};
    pair a = mk_values(v, shape, 2, CT_F32, false);
    prm p0 = {{1, 0, 1}, {0}}, pa = {{0, 0, CT_ALL_DIMS}, {0}};
    run_case("max", "f32 with NaN, dim 1", op_max, &p0, &a, 1, 0, 0);
    run_case("min", "f32 with NaN, dim 1", op_min, &p0, &a, 1, 0, 0);
    run_case("argmax", "f32 with NaN, all dims", op_argmax, &pa, &a, 1, 0, 0);
    pair_free(&a);
  }
  /* bool and i8 sums count as i64 */
  for (int si = 0; si < NSIZES; si++) {
    int64_t shape[2] = {SIZES[si], 9};
    prm p = {{1, 0, 0}, {0}};
    pair a = mk(shape, 2, CT_BOOL, 0, 1, LAY_T, false);
    run_case("sum", "bool count over dim 0 (transposed)", op_sum, &p, &a, 1, 0, 0);
    pair_free(&a);
  }
  /* long reductions: split across blocks and combined by a second kernel */
  if (!QUICK) {
    int64_t big[1] = {(1 << 22) + 5}, mat[2] = {3000, 2000};
    prm all = {{0, 0}, {0}}, d0 = {{1, 0, 0}, {0}}, d1 = {{1, 0, 1}, {0}};
    pair a = mk(big, 1, CT_F32, -1, 1, LAY_CONTIG, true);
    run_case("sum", "f32 [4194309] all", op_sum, &all, &a, 1, F32_TOL, F32_TOL);
    run_case("max", "f32 [4194309] all", op_max, &all, &a, 1, 0, 0);
    run_case("argmin", "f32 [4194309] all", op_argmin, &(prm){{0, 0, CT_ALL_DIMS}, {0}}, &a, 1, 0, 0);
    pair_free(&a);
    pair m = mk(mat, 2, CT_F32, -1, 1, LAY_CONTIG, true);
    run_case("mean", "f32 [3000,2000] dim 0", op_mean, &d0, &m, 1, F32_TOL, F32_TOL);
    run_case("mean", "f32 [3000,2000] dim 1", op_mean, &d1, &m, 1, F32_TOL, F32_TOL);
    pair_free(&m);
  }
}

/* ==== matmul ===================================================================================== */
static ct_tensor *op_matmul(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_matmul(x[0], x[1]);
}

void cases_matmul(void) {
  char label[300];
  for (int di = 0; di < 2; di++) {
    ct_dtype dt = di ? CT_F64 : CT_F32;
    double tol = di ? 1e-24 : 1e-9;
    for (int si = 0; si < NSIZES; si++) {
      int64_t s = SIZES[si];
      struct {
        int64_t a[4], b[4];
        int na, nb;
        const char *what;
      } shapes[] = {
          {{s, 33}, {33, 7}, 2, 2, "[s,33]@[33,7]"},
          {{7, s}, {s, 5}, 2, 2, "[7,s]@[s,5]"},
          {{3, s, 7}, {7, 5}, 3, 2, "[3,s,7]@[7,5]"},
          {{2, 1, s, 4}, {3, 4, 6}, 4, 3, "[2,1,s,4]@[3,4,6]"},
          {{s}, {s, 4}, 1, 2, "[s]@[s,4]"},
          {{4, s}, {s}, 2, 1, "[4,s]@[s]"},
          {{2, s, 3}, {2, 3, s}, 3, 3, "[2,s,3]@[2,3,s]"},
      };
      for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int la = 0; la < LAY_COUNT; la++)
          for (int lb = 0; lb < LAY_COUNT; lb++) {
            if (shapes[k].na < 2 && la) continue;
            if (shapes[k].nb < 2 && lb) continue;
            pair a = mk(shapes[k].a, shapes[k].na, dt, -1, 1, la, true);
            pair b = mk(shapes[k].b, shapes[k].nb, dt, -1, 1, lb, true);
            pair in[2] = {a, b};
            snprintf(label, sizeof label, "%s %s s=%lld a %s b %s", ct_dtype_name(dt), shapes[k].what, (long long)s,
                     lay_names[la], lay_names[lb]);
            run_case("matmul", label, op_matmul, NULL, in, 2, tol, 10 * tol);
            pair_free(&a), pair_free(&b);
          }
    }
  }
  /* an expanded (stride-0) batch operand and an integer error */
  {
    int64_t as[3] = {1, 33, 17}, bs[2] = {17, 9};
    pair a = mk(as, 3, CT_F32, -1, 1, LAY_CONTIG, true), b = mk(bs, 2, CT_F32, -1, 1, LAY_CONTIG, true);
    ct_tensor *e[2];
    int64_t es[3] = {4, 33, 17};
    for (int d = 0; d < 2; d++) {
      e[d] = ct_expand(a.t[d], es, 3);
      ct_release(a.t[d]);
      a.t[d] = e[d];
    }
    a.layout = -1;
    pair in[2] = {a, b};
    run_case("matmul", "f32 expanded batch [4(stride 0),33,17]@[17,9]", op_matmul, NULL, in, 2, 1e-9, 1e-8);
    pair_free(&a), pair_free(&b);
    int64_t is[2] = {3, 3};
    pair x = mk(is, 2, CT_I32, -3, 3, LAY_CONTIG, false), y = mk(is, 2, CT_I32, -3, 3, LAY_CONTIG, false);
    pair in2[2] = {x, y};
    run_case("matmul", "i32 operands: the same error on both", op_matmul, NULL, in2, 2, 0, 0);
    pair_free(&x), pair_free(&y);
  }
}

/* ==== nn ============================================================================================ */
static ct_tensor *op_softmax(ct_tensor *const *x, const prm *p) { return ct_softmax(x[0], p->i[0]); }
static ct_tensor *op_log_softmax(ct_tensor *const *x, const prm *p) { return ct_log_softmax(x[0], p->i[0]); }
static ct_tensor *op_cross_entropy(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_cross_entropy(x[0], x[1]);
}
static ct_tensor *op_nll(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_nll_loss(x[0], x[1]);
}
static ct_tensor *op_mse(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_mse_loss(x[0], x[1]);
}
static ct_tensor *op_layer_norm(ct_tensor *const *x, const prm *p) {
  return ct_layer_norm(x[0], p->i[0], p->i[1] > 0 ? x[1] : NULL, p->i[1] > 1 ? x[2] : NULL, 1e-5);
}
static ct_tensor *op_one_hot(ct_tensor *const *x, const prm *p) { return ct_one_hot(x[0], p->i[0], (ct_dtype)p->i[1]); }
static ct_tensor *op_dropout(ct_tensor *const *x, const prm *p) {
  ct_manual_seed((uint64_t)p->i[0]);
  return ct_dropout(x[0], p->f[0], true);
}

void cases_nn(void) {
  char label[300];
  for (int di = 0; di < 2; di++) {
    ct_dtype dt = di ? CT_F64 : CT_F32;
    for (int si = 0; si < 5; si++) {
      if (QUICK && si >= NSIZES) continue;
      int64_t s = si < 4 ? SIZES[si] : 3000; /* 3000: one block per row */
      for (int lay = 0; lay < LAY_COUNT; lay++)
        for (int dim = 0; dim < 2; dim++) {
          int64_t shape[2] = {dim ? 6 : s, dim ? s : 6}; /* softmax over the long dim */
          prm p = {{dim}, {0}};
          pair a = mk(shape, 2, dt, -5, 5, lay, true);
          char ex[20];
          snprintf(ex, sizeof ex, "dim %d", dim);
          run_case("softmax", shape_label(label, sizeof label, "softmax", dt, shape, 2, lay, ex), op_softmax, &p, &a, 1,
                   tol_of(dt), 10 * tol_of(dt));
          run_case("log_softmax", shape_label(label, sizeof label, "log_softmax", dt, shape, 2, lay, ex), op_log_softmax,
                   &p, &a, 1, tol_of(dt), 10 * tol_of(dt));
          pair_free(&a);
        }
      /* cross entropy and nll: logits [s, C], 1-based targets, some negative (from the end) */
      for (int lay = 0; lay < LAY_COUNT; lay++) {
        int64_t C = si == 4 ? 3000 : 10, ls[2] = {si == 4 ? 64 : s, C}, ts[1] = {ls[0]};
        pair in[2] = {mk(ls, 2, dt, -4, 4, lay, true), mk_index(ts, 1, C, true, CT_I64)};
        run_case("cross_entropy", shape_label(label, sizeof label, "cross_entropy", dt, ls, 2, lay, NULL),
                 op_cross_entropy, NULL, in, 2, tol_of(dt), 10 * tol_of(dt));
        run_case("nll_loss", shape_label(label, sizeof label, "nll_loss", dt, ls, 2, lay, NULL), op_nll, NULL, in, 2,
                 tol_of(dt), 10 * tol_of(dt));
        pair_free(&in[0]), pair_free(&in[1]);
      }
      /* layer norm over the last 1 and 2 dims, with and without weight and bias */
      for (int nd = 1; nd <= 2; nd++)
        for (int wb = 0; wb < 3; wb++) {
          int64_t shape[3] = {si == 4 ? 4 : s, 3, si == 4 ? 3000 : 33};
          pair in[3] = {mk(shape, 3, dt, -3, 3, LAY_T, true), mk(shape + 3 - nd, nd, dt, 0.5, 1.5, LAY_CONTIG, true),
                        mk(shape + 3 - nd, nd, dt, -1, 1, LAY_CONTIG, true)};
          prm p = {{nd, wb}, {0}};
          char ex[40];
          snprintf(ex, sizeof ex, "last %d dims, %s", nd, wb == 0 ? "plain" : wb == 1 ? "weight" : "weight+bias");
          run_case("layer_norm", shape_label(label, sizeof label, "layer_norm", dt, shape, 3, LAY_T, ex), op_layer_norm,
                   &p, in, 1 + wb, 1e-9 * (dt == CT_F32) + 1e-22 * (dt == CT_F64), 1e-8 * (dt == CT_F32) + 1e-21);
          for (int k = 0; k < 3; k++) pair_free(&in[k]);
        }
      /* mse_loss */
      {
        int64_t shape[2] = {si == 4 ? 3000 : s, 4};
        pair in[2] = {mk(shape, 2, dt, -3, 3, LAY_T, true), mk(shape, 2, dt, -3, 3, LAY_CONTIG, true)};
        run_case("mse_loss", shape_label(label, sizeof label, "mse_loss", dt, shape, 2, LAY_T, NULL), op_mse, NULL, in, 2,
                 tol_of(dt), 10 * tol_of(dt));
        pair_free(&in[0]), pair_free(&in[1]);
      }
      /* dropout: the GPU draws the CPU's mask, bit for bit */
      for (int lay = 0; lay < LAY_COUNT; lay++) {
        int64_t shape[2] = {si == 4 ? 3000 : s, 7};
        prm p = {{(int)irand(1, 1000000)}, {0.3}};
        pair a = mk(shape, 2, dt, -3, 3, lay, true);
        run_case("dropout_mask", shape_label(label, sizeof label, "dropout p=0.3", dt, shape, 2, lay, NULL), op_dropout,
                 &p, &a, 1, 0, 0);
        pair_free(&a);
      }
    }
  }
  /* one_hot into several dtypes; out-of-range classes give the CPU's error */
  const ct_dtype ohd[5] = {CT_F32, CT_F64, CT_I64, CT_BF16, CT_BOOL};
  for (int si = 0; si < NSIZES; si++)
    for (int k = 0; k < 5; k++) {
      int64_t shape[2] = {SIZES[si], 3};
      pair idx = mk_index(shape, 2, 11, true, k == 2 ? CT_I32 : CT_I64);
      prm p = {{11, ohd[k]}, {0}};
      snprintf(label, sizeof label, "one_hot [%lld,3] C=11 to %s", (long long)SIZES[si], ct_dtype_name(ohd[k]));
      run_case("one_hot", label, op_one_hot, &p, &idx, 1, 0, 0);
      pair_free(&idx);
    }
  /* out-of-range classes and targets: reported at the next synchronisation (step_parity.c) */
}

/* ==== indexing ======================================================================================= */
static ct_tensor *op_index_select(ct_tensor *const *x, const prm *p) { return ct_index_select(x[0], p->i[0], x[1]); }
static ct_tensor *op_gather(ct_tensor *const *x, const prm *p) { return ct_gather(x[0], p->i[0], x[1]); }
static ct_tensor *op_embedding(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_embedding(x[0], x[1]);
}
static ct_tensor *op_cat(ct_tensor *const *x, const prm *p) { return ct_cat(x, 3, p->i[0]); }
static ct_tensor *op_stack(ct_tensor *const *x, const prm *p) { return ct_stack(x, 3, p->i[0]); }

void cases_index(void) {
  char label[300];
  for (int di = 0; di < 2; di++) {
    ct_dtype dt = di ? CT_F64 : CT_F32;
    for (int si = 0; si < NSIZES; si++)
      for (int lay = 0; lay < LAY_COUNT; lay++) {
        int64_t s = SIZES[si], shape[3] = {s, 6, 5};
        for (int dim = 0; dim < 3; dim++) {
          int64_t D = shape[dim], ks[1] = {s + 4}, gs[3] = {s, 6, 5};
          gs[dim] = s + 2;
          if (dim != 0) gs[0] = s > 1 ? s - 1 : 1; /* gather's index may be smaller off dim */
          prm p = {{dim}, {0}};
          pair in[2] = {mk(shape, 3, dt, -3, 3, lay, true), mk_index(ks, 1, D, true, dim == 1 ? CT_I32 : CT_I64)};
          char ex[20];
          snprintf(ex, sizeof ex, "dim %d", dim);
          run_case("index_select", shape_label(label, sizeof label, "index_select", dt, shape, 3, lay, ex),
                   op_index_select, &p, in, 2, 0, 10 * tol_of(dt));
          pair_free(&in[1]);
          in[1] = mk_index(gs, 3, D, true, CT_I64);
          run_case("gather", shape_label(label, sizeof label, "gather", dt, shape, 3, lay, ex), op_gather, &p, in, 2, 0,
                   10 * tol_of(dt));
          pair_free(&in[0]), pair_free(&in[1]);
        }
        /* embedding: [V, D] weight, indices of any shape */
        int64_t ws[2] = {s + 3, 8}, is[2] = {4, s};
        pair in[2] = {mk(ws, 2, dt, -1, 1, lay, true), mk_index(is, 2, s + 3, false, CT_I64)};
        run_case("index_select", shape_label(label, sizeof label, "embedding", dt, ws, 2, lay, "indices [4,s]"),
                 op_embedding, NULL, in, 2, 0, 10 * tol_of(dt));
        pair_free(&in[0]), pair_free(&in[1]);
        /* cat and stack of three tensors along each dim */
        for (int dim = 0; dim < 2; dim++) {
          int64_t s1[2] = {s, 4}, s2[2] = {dim ? s : 2, dim ? 3 : 4}, s3[2] = {dim ? s : 5, dim ? 1 : 4};
          pair c[3] = {mk(s1, 2, dt, -1, 1, lay, true), mk(s2, 2, dt, -1, 1, LAY_CONTIG, true),
                       mk(s3, 2, dt, -1, 1, LAY_CONTIG, true)};
          prm p = {{dim}, {0}};
          char ex[20];
          snprintf(ex, sizeof ex, "dim %d", dim);
          run_case("cat", shape_label(label, sizeof label, "cat", dt, s1, 2, lay, ex), op_cat, &p, c, 3, 0,
                   10 * tol_of(dt));
          for (int k = 0; k < 3; k++) pair_free(&c[k]);
          pair st[3] = {mk(s1, 2, dt, -1, 1, lay, true), mk(s1, 2, dt, -1, 1, LAY_CONTIG, true),
                        mk(s1, 2, dt, -1, 1, LAY_T, true)};
          prm ps = {{dim * 2}, {0}};
          run_case("cat", shape_label(label, sizeof label, "stack", dt, s1, 2, lay, ex), op_stack, &ps, st, 3, 0,
                   10 * tol_of(dt));
          for (int k = 0; k < 3; k++) pair_free(&st[k]);
        }
      }
  }
  /* the index ops' errors: reported at the next synchronisation, in the CPU's words (step_parity.c) */
}

/* ==== convolution and pooling ==================================================================== */
static ct_tensor *op_conv2d(ct_tensor *const *x, const prm *p) {
  return ct_conv2d(x[0], x[1], p->i[2] ? x[2] : NULL, p->i[0], p->i[1]);
}
static ct_tensor *op_pool(ct_tensor *const *x, const prm *p) { return ct_max_pool2d(x[0], p->i[0], p->i[1]); }

void cases_conv(void) {
  char label[300];
  const int64_t hw[4] = {3, 7, 9, 33};
  for (int di = 0; di < 2; di++) {
    ct_dtype dt = di ? CT_F64 : CT_F32;
    double tol = di ? 1e-22 : 1e-9;
    for (int h = 0; h < 4; h++)
      for (int cfg = 0; cfg < 5; cfg++) {
        /* kernel, stride, padding, bias */
        const int g[5][4] = {{3, 1, 0, 1}, {3, 2, 1, 1}, {3, 1, 1, 0}, {1, 1, 0, 1}, {2, 2, 0, 0}};
        int64_t xs[4] = {2, 3, hw[h], hw[h] + 2}, ws[4] = {4, 3, g[cfg][0], g[cfg][0]}, bs[1] = {4};
        prm p = {{g[cfg][1], g[cfg][2], g[cfg][3]}, {0}};
        pair in[3] = {mk(xs, 4, dt, -1, 1, h % 2 ? LAY_T : LAY_CONTIG, true), mk(ws, 4, dt, -1, 1, LAY_CONTIG, true),
                      mk(bs, 1, dt, -1, 1, LAY_CONTIG, true)};
        char ex[80];
        snprintf(ex, sizeof ex, "k%d s%d p%d%s", g[cfg][0], g[cfg][1], g[cfg][2], g[cfg][3] ? " bias" : "");
        run_case("conv2d", shape_label(label, sizeof label, "conv2d", dt, xs, 4, h % 2 ? LAY_T : LAY_CONTIG, ex),
                 op_conv2d, &p, in, 2 + g[cfg][3], tol, 10 * tol);
        for (int k = 0; k < 3; k++) pair_free(&in[k]);
      }
    for (int h = 0; h < 4; h++)
      for (int cfg = 0; cfg < 3; cfg++) {
        const int g[3][2] = {{2, 2}, {3, 1}, {3, 2}};
        int64_t xs[4] = {2, 3, hw[h] + 1, hw[h]};
        prm p = {{g[cfg][0], g[cfg][1]}, {0}};
        pair x = mk(xs, 4, dt, -3, 3, h % 2 ? LAY_NARROW : LAY_CONTIG, true);
        char ex[40];
        snprintf(ex, sizeof ex, "k%d s%d", g[cfg][0], g[cfg][1]);
        run_case("max_pool2d", shape_label(label, sizeof label, "max_pool2d", dt, xs, 4, h % 2 ? LAY_NARROW : LAY_CONTIG, ex),
                 op_pool, &p, &x, 1, 0, 10 * tol_of(dt));
        pair_free(&x);
      }
  }
}
