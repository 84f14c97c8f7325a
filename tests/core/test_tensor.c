/* test_tensor.c: tensor creation, element access, views (share storage; copy only when needed),
 * contiguous copies, dtype conversions (f16, bf16, i8: rounding, specials, round trips), the RNG,
 * and gradient checks of every view op on non-contiguous inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

static void assert_values(const char *what, const ct_tensor *t, const double *want, int64_t n) {
  char msg[1024];
  cr_assert(t, "%s failed: %s", what, ct_last_error());
  cr_assert(tu_compare(what, t, want, n, 0, 0, msg, sizeof msg) == 0, "%s", msg);
}

static void assert_shape(const ct_tensor *t, const int64_t *shape, int ndim) {
  cr_assert(t, "%s", ct_last_error());
  cr_assert_eq(t->ndim, ndim, "got %s, expected %d dims", tu_desc(t), ndim);
  for (int d = 0; d < ndim; d++) cr_assert_eq(t->shape[d], shape[d], "got %s: dim %d", tu_desc(t), d);
}

/* 0, 1, 2, ... as f64 of the given shape */
static ct_tensor *iota(const int64_t *shape, int ndim) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  ct_tensor *a = ct_arange(0, (double)n, 1, CT_F64, ct_cpu());
  ct_tensor *r = ct_view(a, shape, ndim);
  ct_release(a);
  return r;
}

/* ---- creation ----------------------------------------------------------------------------------- */

Test(tensor, creation) {
  ct_tensor *z = ct_zeros(TU_SHAPE(2, 3), CT_F32, ct_cpu());
  assert_shape(z, TU_SHAPE(2, 3));
  cr_assert(z->dtype == CT_F32 && ct_is_contiguous(z) && ct_numel(z) == 6 && z->stride[0] == 3 && z->stride[1] == 1);
  cr_assert_eq(z->storage->nbytes, 24);
  assert_values("zeros", z, (double[]){0, 0, 0, 0, 0, 0}, 6);
  ct_tensor *f = ct_full(TU_SHAPE(2, 2), 7.5, CT_F64, ct_cpu());
  assert_values("full", f, (double[]){7.5, 7.5, 7.5, 7.5}, 4);
  ct_tensor *s = ct_scalar(3, CT_I64, ct_cpu());
  cr_assert(s->ndim == 0 && ct_numel(s) == 1);
  double v;
  cr_assert(ct_item(s, &v) == 0 && v == 3);
  ct_tensor *e = ct_eye(3, CT_I32, ct_cpu());
  assert_values("eye", e, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1}, 9);
  ct_tensor *ar = ct_arange(1, 2, 0.25, CT_F64, ct_cpu());
  assert_values("arange", ar, (double[]){1, 1.25, 1.5, 1.75}, 4);
  ct_tensor *ls = ct_linspace(0, 1, 5, CT_F32, ct_cpu());
  assert_values("linspace", ls, (double[]){0, 0.25, 0.5, 0.75, 1}, 5);
  ct_tensor *em = ct_zeros(TU_SHAPE(0, 4), CT_F32, ct_cpu());
  cr_assert(em && ct_numel(em) == 0, "empty tensors exist: %s", ct_last_error());
  ct_tensor *d = ct_from_data((float[]){1.5f, -2}, TU_SHAPE(2), CT_F32, ct_cpu());
  assert_values("from_data", d, (double[]){1.5, -2}, 2);
  ct_tensor *o = ct_ones_like(f), *zl = ct_zeros_like(e);
  cr_assert(o->dtype == CT_F64 && zl->dtype == CT_I32);
  assert_values("ones_like", o, (double[]){1, 1, 1, 1}, 4);
  ct_tensor *all[] = {z, f, s, e, ar, ls, em, d, o, zl};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) ct_release(all[k]);
}

Test(tensor, creation_errors) {
  cr_assert_null(ct_zeros(TU_SHAPE(2, -1), CT_F32, ct_cpu()));
  cr_assert(tu_error_has("negative", "[2,-1]", NULL), "%s", ct_last_error());
  int64_t big[CT_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  cr_assert_null(ct_zeros(big, CT_MAX_DIMS + 1, CT_F32, ct_cpu()));
  cr_assert(tu_error_has("9 dims", NULL), "%s", ct_last_error());
  cr_assert_null(ct_arange(0, 1, 0, CT_F32, ct_cpu()));
  cr_assert(tu_error_has("arange", "step", NULL), "%s", ct_last_error());
  cr_assert_null(ct_linspace(0, 1, -1, CT_F32, ct_cpu()));
  cr_assert(tu_error_has("linspace", NULL), "%s", ct_last_error());
  cr_assert_null(ct_rand(TU_SHAPE(2), CT_I32, ct_cpu()));
  cr_assert(tu_error_has("rand", "i32", NULL), "%s", ct_last_error());
}

Test(tensor, element_access) {
  ct_tensor *t = iota(TU_SHAPE(2, 3));
  double v;
  cr_assert(ct_get(t, (int64_t[]){1, 2}, &v) == 0 && v == 5);
  cr_assert(ct_set(t, (int64_t[]){0, 1}, -4) == 0);
  assert_values("after set", t, (double[]){0, -4, 2, 3, 4, 5}, 6);
  cr_assert_neq(ct_get(t, (int64_t[]){2, 0}, &v), 0);
  cr_assert(tu_error_has("out of range", "[2,3]", NULL), "%s", ct_last_error());
  cr_assert_neq(ct_item(t, &v), 0);
  cr_assert(tu_error_has("item", "one-element", NULL), "%s", ct_last_error());
  ct_release(t);
}

/* ---- views ---------------------------------------------------------------------------------- */

Test(tensor, view_shares_storage) {
  ct_tensor *t = iota(TU_SHAPE(2, 3, 4));
  ct_tensor *v = ct_view(t, TU_SHAPE(6, -1));
  assert_shape(v, TU_SHAPE(6, 4));
  cr_assert_eq(v->storage, t->storage, "view shares the storage");
  ct_set(v, (int64_t[]){5, 3}, 100);
  double x;
  ct_get(t, (int64_t[]){1, 2, 3}, &x);
  cr_assert_eq(x, 100, "a write through the view is seen by the base");
  /* a narrowed base is not contiguous, but merging its trailing dims is still a view */
  ct_tensor *n = ct_narrow(t, 0, 1, 1), *nv = ct_view(n, TU_SHAPE(12));
  cr_assert(nv && nv->storage == t->storage && nv->offset == 12, "%s", ct_last_error());
  ct_tensor *tr = ct_transpose(t, 0, 2);
  cr_assert_null(ct_view(tr, TU_SHAPE(24)));
  cr_assert(tu_error_has("view", "contiguous", NULL), "%s", ct_last_error());
  cr_assert_null(ct_view(t, TU_SHAPE(5, 5)));
  cr_assert(tu_error_has("view", "[5,5]", "24", NULL), "%s", ct_last_error());
  cr_assert_null(ct_view(t, TU_SHAPE(-1, -1)));
  cr_assert(tu_error_has("-1", NULL), "%s", ct_last_error());
  ct_release(t), ct_release(v), ct_release(n), ct_release(nv), ct_release(tr);
}

Test(tensor, reshape_copies_only_when_needed) {
  ct_tensor *t = iota(TU_SHAPE(3, 4));
  ct_tensor *r = ct_reshape(t, TU_SHAPE(2, 6));
  cr_assert(r && r->storage == t->storage, "reshape of a contiguous tensor is a view");
  ct_tensor *tr = ct_transpose(t, 0, 1);
  ct_tensor *r2 = ct_reshape(tr, TU_SHAPE(12));
  cr_assert(r2 && r2->storage != t->storage, "reshape of a transposed tensor copies");
  assert_values("reshape(transpose)", r2, (double[]){0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 12);
  ct_tensor *r3 = ct_reshape(tr, TU_SHAPE(4, 1, 3));
  cr_assert(r3 && r3->storage == t->storage, "inserting a size-1 dim into a transposed tensor needs no copy");
  ct_tensor *f = ct_flatten(t, 0, -1);
  cr_assert(f && f->storage == t->storage && f->ndim == 1 && f->shape[0] == 12);
  ct_release(t), ct_release(r), ct_release(tr), ct_release(r2), ct_release(r3), ct_release(f);
}

Test(tensor, transpose_permute) {
  ct_tensor *t = iota(TU_SHAPE(2, 3, 4));
  ct_tensor *tr = ct_transpose(t, 0, -1);
  assert_shape(tr, TU_SHAPE(4, 3, 2));
  cr_assert(tr->storage == t->storage && tr->stride[0] == 1 && tr->stride[2] == 12 && !ct_is_contiguous(tr));
  double v;
  ct_get(tr, (int64_t[]){3, 1, 1}, &v);
  cr_assert_eq(v, 1 * 12 + 1 * 4 + 3);
  ct_tensor *p = ct_permute(t, (int[]){2, 0, 1}, 3);
  assert_shape(p, TU_SHAPE(4, 2, 3));
  ct_get(p, (int64_t[]){3, 1, 2}, &v);
  cr_assert_eq(v, 1 * 12 + 2 * 4 + 3);
  cr_assert_null(ct_permute(t, (int[]){0, 0, 1}, 3));
  cr_assert(tu_error_has("permute", "twice", NULL), "%s", ct_last_error());
  cr_assert_null(ct_permute(t, (int[]){0, 1}, 2));
  cr_assert(tu_error_has("permute", "[2,3,4]", NULL), "%s", ct_last_error());
  ct_release(t), ct_release(tr), ct_release(p);
}

Test(tensor, narrow_select) {
  ct_tensor *t = iota(TU_SHAPE(3, 4));
  ct_tensor *n = ct_narrow(t, 1, 1, 2);
  assert_shape(n, TU_SHAPE(3, 2));
  cr_assert(n->storage == t->storage && n->offset == 1 && !ct_is_contiguous(n));
  assert_values("narrow", n, (double[]){1, 2, 5, 6, 9, 10}, 6);
  ct_tensor *s = ct_select(t, 0, -1);
  assert_shape(s, TU_SHAPE(4));
  assert_values("select(-1)", s, (double[]){8, 9, 10, 11}, 4);
  ct_tensor *s2 = ct_select(t, 1, 2);
  assert_values("select col", s2, (double[]){2, 6, 10}, 3);
  cr_assert(s2->storage == t->storage && s2->stride[0] == 4);
  cr_assert_null(ct_narrow(t, 1, 3, 2));
  cr_assert(tu_error_has("narrow", "[3,4]", NULL), "%s", ct_last_error());
  cr_assert_null(ct_select(t, 0, 3));
  cr_assert(tu_error_has("select", "out of range", "[3,4]", NULL), "%s", ct_last_error());
  ct_release(t), ct_release(n), ct_release(s), ct_release(s2);
}

Test(tensor, expand_unsqueeze_squeeze) {
  ct_tensor *t = iota(TU_SHAPE(3, 1));
  ct_tensor *e = ct_expand(t, TU_SHAPE(2, 3, 4));
  assert_shape(e, TU_SHAPE(2, 3, 4));
  cr_assert(e->storage == t->storage && e->stride[0] == 0 && e->stride[2] == 0);
  double v;
  ct_get(e, (int64_t[]){1, 2, 3}, &v);
  cr_assert_eq(v, 2);
  ct_tensor *e2 = ct_expand(t, TU_SHAPE(-1, 5));
  assert_shape(e2, TU_SHAPE(3, 5));
  cr_assert_null(ct_expand(t, TU_SHAPE(4, 4)));
  cr_assert(tu_error_has("expand", "3", "4", NULL), "%s", ct_last_error());
  ct_tensor *u = ct_unsqueeze(t, 0), *u2 = ct_unsqueeze(t, -1);
  assert_shape(u, TU_SHAPE(1, 3, 1));
  assert_shape(u2, TU_SHAPE(3, 1, 1));
  cr_assert(u->storage == t->storage);
  ct_tensor *sq = ct_squeeze(u, CT_ALL_DIMS), *sq1 = ct_squeeze(u, 0), *sq2 = ct_squeeze(u, 1);
  assert_shape(sq, TU_SHAPE(3));
  assert_shape(sq1, TU_SHAPE(3, 1));
  assert_shape(sq2, TU_SHAPE(1, 3, 1)); /* squeezing a dim that is not 1 leaves it */
  cr_assert_null(ct_unsqueeze(t, 3));
  cr_assert(tu_error_has("unsqueeze", "dim", NULL), "%s", ct_last_error());
  ct_tensor *all[] = {t, e, e2, u, u2, sq, sq1, sq2};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) ct_release(all[k]);
}

Test(tensor, contiguous_copies_numel_times_itemsize) {
  ct_tensor *big = iota(TU_SHAPE(10, 20));
  ct_tensor *big32 = ct_to_dtype(big, CT_F32);
  ct_tensor *same = ct_contiguous(big32);
  cr_assert_eq(same, big32, "contiguous() of a contiguous tensor is the tensor itself");
  ct_tensor *n = ct_narrow(big32, 1, 3, 5); /* 10 x 5 of a 10 x 20 storage */
  ct_mem_stats before, after;
  ct_mem_get(&before);
  ct_tensor *c = ct_contiguous(n);
  ct_mem_get(&after);
  cr_assert(c && ct_is_contiguous(c) && c->storage != big32->storage);
  cr_assert_eq(c->storage->nbytes, 10 * 5 * 4, "copy holds numel*itemsize bytes, got %zu", c->storage->nbytes);
  cr_assert_eq(after.allocated_total - before.allocated_total, 10 * 5 * 4, "allocated %lld bytes",
               (long long)(after.allocated_total - before.allocated_total));
  double v;
  ct_get(c, (int64_t[]){9, 4}, &v);
  cr_assert_eq(v, 9 * 20 + 3 + 4);
  /* an expanded tensor materialises every element */
  ct_tensor *one = ct_full(TU_SHAPE(1, 1), 2, CT_F64, ct_cpu()), *ex = ct_expand(one, TU_SHAPE(3, 7));
  ct_tensor *ce = ct_contiguous(ex);
  cr_assert_eq(ce->storage->nbytes, 3 * 7 * 8);
  ct_release(big), ct_release(big32), ct_release(same), ct_release(n), ct_release(c);
  ct_release(one), ct_release(ex), ct_release(ce);
}

Test(tensor, detach_and_clone) {
  ct_tensor *a = iota(TU_SHAPE(2, 2));
  ct_requires_grad_(a, true);
  ct_tensor *y = ct_mul_scalar(a, 2);
  ct_tensor *d = ct_detach(y), *c = ct_clone(y);
  cr_assert(d->storage == y->storage && !d->requires_grad && !d->grad_fn, "detach shares storage, no grad");
  cr_assert(c->storage != y->storage && c->requires_grad && c->grad_fn, "clone copies and is differentiable");
  ct_release(a), ct_release(y), ct_release(d), ct_release(c);
}

/* ---- gradients of views, on non-contiguous inputs -------------------------------------------- */

typedef struct {
  int kind;
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  int a, b;
  int64_t c;
} view_spec;

static ct_tensor *view_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  const view_spec *s = ctx;
  ct_tensor *x = in[0];
  switch (s->kind) {
  case 0: return ct_reshape(x, s->shape, s->ndim);
  case 1: return ct_transpose(x, s->a, s->b);
  case 2: return ct_narrow(x, s->a, s->c, s->b);
  case 3: return ct_select(x, s->a, s->c);
  case 4: return ct_expand(x, s->shape, s->ndim);
  case 5: return ct_unsqueeze(x, s->a);
  case 6: return ct_squeeze(x, CT_ALL_DIMS);
  case 7: {
    int perm[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = (d + 1) % x->ndim;
    return ct_permute(x, perm, x->ndim);
  }
  case 8: return ct_contiguous(x);
  default: return ct_flatten(x, 0, -1);
  }
}

Test(tensor, view_gradients) {
  tu_rng rng;
  tu_seed(&rng, 2024);
  static const char *names[] = {"reshape", "transpose", "narrow", "select", "expand", "unsqueeze",
                                "squeeze", "permute", "contiguous", "flatten"};
  for (int kind = 0; kind < 10; kind++) {
    for (int trial = 0; trial < 3; trial++) {
      int64_t shape[CT_MAX_DIMS];
      int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 2, 4), 1, 4, shape);
      view_spec s = {.kind = kind};
      if (kind == 0) { /* reshape to the reversed shape */
        s.ndim = nd;
        for (int d = 0; d < nd; d++) s.shape[d] = shape[nd - 1 - d];
      } else if (kind == 1) {
        s.a = 0, s.b = nd - 1;
      } else if (kind == 2) {
        s.a = (int)tu_int(&rng, 0, nd - 1);
        s.c = tu_int(&rng, 0, shape[s.a] - 1);
        s.b = (int)tu_int(&rng, 1, shape[s.a] - s.c);
      } else if (kind == 3) {
        s.a = (int)tu_int(&rng, 0, nd - 1);
        s.c = tu_int(&rng, 0, shape[s.a] - 1);
      } else if (kind == 4) { /* expand: set a dim to 1 and expand it back, plus a new leading dim */
        int d = (int)tu_int(&rng, 0, nd - 1);
        s.ndim = nd + 1;
        s.shape[0] = 3;
        for (int k = 0; k < nd; k++) s.shape[k + 1] = shape[k];
        s.shape[d + 1] = shape[d] + 1;
        shape[d] = 1;
      } else if (kind == 5) {
        s.a = (int)tu_int(&rng, 0, nd);
      } else if (kind == 6) {
        shape[tu_int(&rng, 0, nd - 1)] = 1;
      }
      char name[64];
      snprintf(name, sizeof name, "%s (trial %d)", names[kind], trial);
      gc_case c = {.op = name, .fn = view_call, .ctx = &s, .nin = 1, .seed = (uint64_t)(kind * 10 + trial),
                   .gradgrad = true};
      gc_set_shape(&c.in[0], shape, nd);
      GC_ASSERT(&c);
    }
  }
}

Test(tensor, to_dtype_gradient) {
  /* f64 -> f32 -> f64 round trip is differentiable (gradient passes through, as f64 again) */
  ct_tensor *x = iota(TU_SHAPE(2, 3));
  ct_requires_grad_(x, true);
  ct_tensor *f = ct_to_dtype(x, CT_F32), *h = ct_to_dtype(f, CT_F16), *b = ct_to_dtype(h, CT_F64);
  ct_tensor *y = ct_mul_scalar(b, 3);
  ct_tensor *g = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
  cr_assert(x->grad && x->grad->dtype == CT_F64);
  assert_values("grad through f32 and f16", x->grad, (double[]){3, 3, 3, 3, 3, 3}, 6);
  ct_release(x), ct_release(f), ct_release(h), ct_release(b), ct_release(y), ct_release(g);
}

/* ---- dtype conversions ---------------------------------------------------------------------- */

static float f16_round(float x) { return ct_f16_to_f32(ct_f32_to_f16(x)); }
static float bf16_round(float x) { return ct_bf16_to_f32(ct_f32_to_bf16(x)); }

Test(dtype, f16_rounding_and_specials) {
  cr_assert_eq(f16_round(1.0f), 1.0f);
  cr_assert_eq(f16_round(0.1f), 0.0999755859375f);
  cr_assert_eq(f16_round(1.0f + 0x1p-11f), 1.0f, "halfway rounds to even (down)");
  cr_assert_eq(f16_round(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f, "halfway rounds to even (up)");
  cr_assert_eq(f16_round(1.0f + 0x1p-11f + 0x1p-20f), 1.0f + 0x1p-10f, "above halfway rounds up");
  cr_assert_eq(f16_round(65504.0f), 65504.0f, "largest finite f16");
  cr_assert_eq(f16_round(65519.0f), 65504.0f);
  cr_assert(isinf(f16_round(65520.0f)) && f16_round(65520.0f) > 0, "65520 rounds to +inf");
  cr_assert(isinf(f16_round(-1e6f)) && f16_round(-1e6f) < 0);
  cr_assert(isinf(f16_round(INFINITY)) && isnan(f16_round(NAN)));
  cr_assert_eq(ct_f32_to_f16(-0.0f), 0x8000, "negative zero keeps its sign");
  cr_assert_eq(f16_round(0x1p-24f), 0x1p-24f, "smallest subnormal");
  cr_assert_eq(f16_round(0x1p-25f), 0.0f, "half the smallest subnormal rounds to even (zero)");
  cr_assert_eq(f16_round(3 * 0x1p-26f), 0x1p-24f);
  cr_assert_eq(f16_round(0x1p-14f), 0x1p-14f, "smallest normal");
  cr_assert_eq(f16_round(0x1p-14f - 0x1p-24f), 0x1p-14f - 0x1p-24f, "largest subnormal");
  cr_assert_eq(ct_f32_to_f16(1.0f), 0x3c00);
  cr_assert_eq(ct_f32_to_f16(-2.0f), 0xc000);
  /* every finite f16 survives f16 -> f32 -> f16 */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    cr_assert_eq(ct_f32_to_f16(ct_f16_to_f32((uint16_t)h)), h, "f16 0x%04x round trip", h);
  }
}

Test(dtype, bf16_rounding_and_specials) {
  cr_assert_eq(bf16_round(1.0f), 1.0f);
  cr_assert_eq(bf16_round(1.0f + 0x1p-8f), 1.0f, "halfway to even (down)");
  cr_assert_eq(bf16_round(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f, "halfway to even (up)");
  cr_assert_eq(bf16_round(3.0e38f), 3.00405527047391e38f, "as torch: 3.00405527047391e38");
  cr_assert(isinf(bf16_round(3.4028235e38f)), "the largest f32 rounds to inf in bf16");
  cr_assert(isnan(bf16_round(NAN)) && isinf(bf16_round(-INFINITY)));
  cr_assert_eq(ct_f32_to_bf16(-0.0f), 0x8000);
  cr_assert_eq(ct_f32_to_bf16(1.0f), 0x3f80);
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7f80) == 0x7f80) continue;
    cr_assert_eq(ct_f32_to_bf16(ct_bf16_to_f32((uint16_t)h)), h, "bf16 0x%04x round trip", h);
  }
}

Test(dtype, tensor_conversions) {
  double v[] = {1.0, 0.1, 1.0 + 0x1p-11, 65520, -0.0, 1e-8, -3.75, 1.0 + 0x1p-8};
  ct_tensor *x = ct_from_doubles(v, TU_SHAPE(8), CT_F32, ct_cpu());
  ct_tensor *h = ct_to_dtype(x, CT_F16), *hb = ct_to_dtype(h, CT_F32);
  cr_assert(h && h->dtype == CT_F16 && h->storage->nbytes == 16, "f16 storage is 2 bytes an element");
  double want16[] = {1, 0.0999755859375, 1, INFINITY, 0, 0x1p-24 * 0, -3.75, 1.00390625};
  want16[5] = f16_round(1e-8f);
  assert_values("f32 -> f16 -> f32", hb, want16, 8);
  ct_tensor *b = ct_to_dtype(x, CT_BF16), *bb = ct_to_dtype(b, CT_F32);
  double wantb[8];
  for (int i = 0; i < 8; i++) wantb[i] = bf16_round((float)v[i]);
  assert_values("f32 -> bf16 -> f32", bb, wantb, 8);
  cr_assert_eq(wantb[7], 1.0, "bf16 1 + 2^-8 -> 1");
  /* i8 holds integers exactly; fractions truncate toward zero, as torch's .to(int8) */
  double iv[] = {-128, 127, 0, 5, -7, 2.9, -2.9};
  ct_tensor *xi = ct_from_doubles(iv, TU_SHAPE(7), CT_F32, ct_cpu());
  ct_tensor *i8 = ct_to_dtype(xi, CT_I8), *i8b = ct_to_dtype(i8, CT_F32);
  cr_assert(i8->storage->nbytes == 7);
  assert_values("f32 -> i8 -> f32", i8b, (double[]){-128, 127, 0, 5, -7, 2, -2}, 7);
  /* bool and integer conversions */
  ct_tensor *bo = ct_to_dtype(xi, CT_BOOL);
  assert_values("to bool", bo, (double[]){1, 1, 0, 1, 1, 1, 1}, 7);
  ct_tensor *i64 = ct_to_dtype(xi, CT_I64);
  assert_values("to i64", i64, (double[]){-128, 127, 0, 5, -7, 2, -2}, 7);
  /* compute on storage dtypes goes through f32 */
  ct_tensor *s = ct_add(h, h);
  cr_assert(s && s->dtype == CT_F32, "f16 + f16 computes in f32: %s", s ? tu_desc(s) : ct_last_error());
  ct_tensor *all[] = {x, h, hb, b, bb, xi, i8, i8b, bo, i64, s};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) ct_release(all[k]);
}

Test(dtype, names) {
  ct_dtype d;
  cr_assert(ct_dtype_from_name("bf16", &d) == 0 && d == CT_BF16);
  cr_assert(ct_dtype_from_name("float64", &d) == 0 && d == CT_F64);
  cr_assert_neq(ct_dtype_from_name("f8", &d), 0);
  cr_assert(tu_error_has("f8", NULL), "%s", ct_last_error());
  cr_assert_str_eq(ct_dtype_name(CT_I8), "i8");
  cr_assert_eq(ct_dtype_size(CT_F16), 2);
  cr_assert_eq(ct_dtype_size(CT_BOOL), 1);
}

/* ---- RNG ----------------------------------------------------------------------------------- */

Test(rng, reproducible_and_distributed) {
  ct_manual_seed(42);
  ct_tensor *a = ct_rand(TU_SHAPE(4000), CT_F64, ct_cpu());
  ct_manual_seed(42);
  ct_tensor *b = ct_rand(TU_SHAPE(4000), CT_F64, ct_cpu());
  ct_tensor *c = ct_rand(TU_SHAPE(4000), CT_F64, ct_cpu());
  double *av = tu_values(a), *bv = tu_values(b), *cv = tu_values(c);
  double mean = 0, same = 0;
  for (int i = 0; i < 4000; i++) {
    cr_assert_eq(av[i], bv[i], "same seed, same numbers");
    cr_assert(av[i] >= 0 && av[i] < 1);
    mean += av[i] / 4000;
    same += av[i] == cv[i];
  }
  cr_assert(fabs(mean - 0.5) < 0.02, "uniform mean %g", mean);
  cr_assert(same < 5, "the stream advances");
  ct_manual_seed(7);
  ct_tensor *n = ct_randn(TU_SHAPE(20000), CT_F64, ct_cpu());
  double *nv = tu_values(n), m = 0, s2 = 0;
  for (int i = 0; i < 20000; i++) m += nv[i] / 20000;
  for (int i = 0; i < 20000; i++) s2 += (nv[i] - m) * (nv[i] - m) / 19999;
  cr_assert(fabs(m) < 0.03 && fabs(s2 - 1) < 0.05, "normal mean %g var %g", m, s2);
  ct_tensor *ri = ct_randint(-3, 4, TU_SHAPE(1000), CT_I64, ct_cpu());
  double *riv = tu_values(ri);
  int seen[7] = {0};
  for (int i = 0; i < 1000; i++) {
    cr_assert(riv[i] >= -3 && riv[i] < 4 && riv[i] == floor(riv[i]));
    seen[(int)riv[i] + 3] = 1;
  }
  for (int k = 0; k < 7; k++) cr_assert(seen[k], "randint hits %d", k - 3);
  ct_tensor *p = ct_randperm(50, ct_cpu());
  double *pv = tu_values(p);
  int hit[51] = {0};
  for (int i = 0; i < 50; i++) hit[(int)pv[i]]++;
  for (int k = 1; k <= 50; k++) cr_assert_eq(hit[k], 1, "randperm is a 1-based permutation (%d)", k);
  cr_assert_eq(p->dtype, CT_I64);
  free(av), free(bv), free(cv), free(nv), free(riv), free(pv);
  ct_release(a), ct_release(b), ct_release(c), ct_release(n), ct_release(ri), ct_release(p);
}

Test(rng, philox_known_answer) {
  /* Philox4x32-10 known-answer vectors (Random123 kat_vectors): counter 0, key 0 and
   * counter ffffffff x4 with key ffffffff x2 take the full 128-bit counter; chalk's API puts a
   * 64-bit counter in words 0,1 (words 2,3 zero) and a 64-bit seed in the key. */
  uint32_t r[4];
  ct_philox(0, 0, r);
  cr_assert(r[0] == 0x6627e8d5u && r[1] == 0xe169c58du && r[2] == 0xbc57ac4cu && r[3] == 0x9b00dbd8u,
            "philox(0,0) = %08x %08x %08x %08x", r[0], r[1], r[2], r[3]);
}
