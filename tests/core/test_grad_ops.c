/* test_grad_ops.c: the f64 finite-difference gradient check of every op beyond the elementwise ones
 * (reductions, matmul, nn, indexing, conv, pooling, dropout), each on random shapes, with every
 * input passed contiguous, transposed, narrowed and expanded (gradcheck.h), plus double backward
 * where the op's gradient depends on its input. Also argmax values and dropout statistics. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

#define NTRIALS 3

/* A random subset of the dims of an nd-dim tensor (at least one, possibly negative). */
static int rand_dims(tu_rng *rng, int nd, int *dims) {
  int n = 0;
  for (int d = 0; d < nd; d++)
    if (tu_int(rng, 0, 1)) dims[n++] = tu_int(rng, 0, 1) ? d : d - nd;
  if (!n) dims[n++] = (int)tu_int(rng, 0, nd - 1);
  return n;
}

/* ---- reductions ------------------------------------------------------------------------------- */

typedef struct {
  int kind; /* 0 sum 1 mean 2 max 3 min 4 var 5 var biased */
  int dims[CT_MAX_DIMS], n;
  bool keepdim;
} reduce_spec;

static ct_tensor *reduce_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  const reduce_spec *s = ctx;
  switch (s->kind) {
  case 0: return ct_sum(in[0], s->dims, s->n, s->keepdim);
  case 1: return ct_mean(in[0], s->dims, s->n, s->keepdim);
  case 2: return ct_max(in[0], s->dims, s->n, s->keepdim);
  case 3: return ct_min(in[0], s->dims, s->n, s->keepdim);
  case 4: return ct_var(in[0], s->dims, s->n, s->keepdim, true);
  default: return ct_var(in[0], s->dims, s->n, s->keepdim, false);
  }
}

static void check_reduction(int kind, const char *name, bool gradgrad) {
  tu_rng rng;
  tu_seed(&rng, 600 + (uint64_t)kind);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 4), 2, 4, shape);
    reduce_spec s = {.kind = kind, .keepdim = trial & 1};
    s.n = trial == 0 ? 0 : rand_dims(&rng, nd, s.dims); /* trial 0: over everything */
    char op[128];
    snprintf(op, sizeof op, "%s over %d dims (first %d) keepdim=%d", name, s.n, s.n ? s.dims[0] : 0, s.keepdim);
    gc_case c = {.op = op, .fn = reduce_call, .ctx = &s, .nin = 1, .seed = 900 + (uint64_t)trial,
                 .gradgrad = gradgrad};
    gc_set_shape(&c.in[0], shape, nd);
    GC_ASSERT(&c);
  }
}

Test(grad_ops, sum) { check_reduction(0, "sum", true); }
Test(grad_ops, mean) { check_reduction(1, "mean", true); }
Test(grad_ops, max) { check_reduction(2, "max", true); }
Test(grad_ops, min) { check_reduction(3, "min", true); }
Test(grad_ops, var) {
  check_reduction(4, "var (unbiased)", true);
  check_reduction(5, "var (biased)", true);
}

Test(grad_ops, argmax_values) {
  /* argmax (and argmin) against a naive scan of every slice, 1-based, in every layout of the input */
  tu_rng rng;
  tu_seed(&rng, 31337);
  for (int trial = 0; trial < 6; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 1, 5, shape);
    int dim = trial == 0 ? CT_ALL_DIMS : (int)tu_int(&rng, 0, nd - 1);
    bool keep = trial & 1;
    ct_tensor *base = tu_rand_tensor(&rng, shape, nd, CT_F64, -3, 3);
    ct_tensor *x = trial % 3 == 2 && nd >= 2 ? ct_transpose(base, 0, nd - 1) : ct_retain(base);
    ct_tensor *am = ct_argmax(x, dim, keep);
    cr_assert(am, "argmax(%s, %d) failed: %s", tu_desc(x), dim, ct_last_error());
    cr_assert_eq(am->dtype, CT_I64, "argmax gives i64, got %s", tu_desc(am));
    ct_tensor *xc = ct_contiguous(x);
    double *xv = tu_values(xc), *av = tu_values(am);
    int64_t n = ct_numel(xc);
    if (dim == CT_ALL_DIMS) {
      int64_t best = 0;
      for (int64_t i = 1; i < n; i++)
        if (xv[i] > xv[best]) best = i;
      cr_assert_eq(ct_numel(am), 1);
      cr_assert_eq(av[0], (double)(best + 1), "argmax over all of %s: got %g, expected %lld (1-based)", tu_desc(x),
                   av[0], (long long)best + 1);
    } else {
      int64_t inner = 1, len = xc->shape[dim];
      for (int d = dim + 1; d < nd; d++) inner *= xc->shape[d];
      int64_t outer = n / (len * inner);
      cr_assert_eq(am->ndim, keep ? nd : nd - 1, "argmax keepdim=%d gives %s", keep, tu_desc(am));
      for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
          int64_t best = 0;
          for (int64_t k = 1; k < len; k++)
            if (xv[(o * len + k) * inner + i] > xv[(o * len + best) * inner + i]) best = k;
          cr_assert_eq(av[o * inner + i], (double)(best + 1), "argmax(%s, dim %d) slice %lld,%lld: got %g, want %lld",
                       tu_desc(x), dim, (long long)o, (long long)i, av[o * inner + i], (long long)best + 1);
        }
    }
    /* argmin(x) is argmax(-x) (ties have probability zero here) */
    ct_tensor *nx = ct_neg(x), *amin = ct_argmin(x, dim, keep), *amax_neg = ct_argmax(nx, dim, keep);
    char msg[1024];
    cr_assert(amin && amin->dtype == CT_I64, "argmin failed: %s", ct_last_error());
    cr_assert(tu_compare_tensors("argmin(x) vs argmax(-x)", amin, amax_neg, 0, 0, msg, sizeof msg) == 0, "%s", msg);
    free(xv), free(av);
    ct_release(base), ct_release(x), ct_release(am), ct_release(xc), ct_release(nx), ct_release(amin);
    ct_release(amax_neg);
  }
}

/* ---- matmul ---------------------------------------------------------------------------------------- */

static ct_tensor *matmul_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_matmul(in[0], in[1]);
}

Test(grad_ops, matmul) {
  tu_rng rng;
  tu_seed(&rng, 77);
  /* {a shape}, {b shape}: 2-D, batched, broadcast batch dims, 1-D on either side */
  static const struct {
    int na, nb;
    int64_t a[4], b[4];
  } cases[] = {
      {2, 2, {3, 4}, {4, 2}},          {3, 2, {2, 3, 4}, {4, 5}},       {2, 3, {3, 4}, {2, 4, 2}},
      {4, 3, {2, 1, 3, 2}, {3, 2, 4}}, {3, 4, {1, 2, 3}, {2, 1, 3, 2}}, {1, 2, {4}, {4, 3}},
      {2, 1, {3, 4}, {4}},             {1, 1, {5}, {5}},                {3, 1, {2, 3, 4}, {4}},
      {1, 3, {3}, {2, 3, 2}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char op[96], sa[64], sb[64];
    snprintf(op, sizeof op, "matmul %s @ %s", ct_shape_str(cases[k].a, cases[k].na, sa, sizeof sa),
             ct_shape_str(cases[k].b, cases[k].nb, sb, sizeof sb));
    gc_case c = {.op = op, .fn = matmul_call, .nin = 2, .seed = 40 + k, .gradgrad = true};
    gc_set_shape(&c.in[0], cases[k].a, cases[k].na);
    gc_set_shape(&c.in[1], cases[k].b, cases[k].nb);
    GC_ASSERT(&c);
  }
  (void)rng;
}

/* ---- softmax family and losses ------------------------------------------------------------------ */

typedef struct {
  int kind; /* 0 softmax, 1 log_softmax */
  int dim;
} softmax_spec;

GC_SPEC_FN(softmax_call, softmax_spec, s->kind ? ct_log_softmax(in[0], s->dim) : ct_softmax(in[0], s->dim))

static void check_softmax(int kind) {
  tu_rng rng;
  tu_seed(&rng, 4000 + (uint64_t)kind);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 2, 4, shape);
    softmax_spec s = {kind, (int)tu_int(&rng, -nd, nd - 1)};
    char op[64];
    snprintf(op, sizeof op, "%s(dim %d)", kind ? "log_softmax" : "softmax", s.dim);
    gc_case c = {.op = op, .fn = softmax_call, .ctx = &s, .nin = 1, .seed = 3 + (uint64_t)trial, .gradgrad = true};
    gc_set_shape(&c.in[0], shape, nd);
    GC_ASSERT(&c);
  }
}

Test(grad_ops, softmax) { check_softmax(0); }
Test(grad_ops, log_softmax) { check_softmax(1); }

static ct_tensor *cross_entropy_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_cross_entropy(in[0], in[1]);
}
static ct_tensor *nll_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_nll_loss(in[0], in[1]);
}
static ct_tensor *mse_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_mse_loss(in[0], in[1]);
}

static void check_class_loss(bool ce) {
  tu_rng rng;
  tu_seed(&rng, ce ? 51 : 52);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t n = tu_int(&rng, 1, 5), cls = tu_int(&rng, 2, 5);
    /* targets 1-based; trial 3 counts from the end (-1 is the last class); trial 2 is one sample [C] */
    ct_tensor *t;
    if (trial == 2) {
      t = ct_scalar((double)tu_int(&rng, 1, cls), CT_I64, ct_cpu());
    } else {
      t = tu_rand_index(&rng, &n, 1, cls);
      if (trial == 3) {
        ct_tensor *m = ct_add_scalar(t, (double)-(cls + 1));
        ct_release(t);
        t = m;
      }
    }
    gc_case c = {.op = ce ? "cross_entropy" : "nll_loss", .fn = ce ? cross_entropy_call : nll_call, .nin = 2,
                 .seed = 60 + (uint64_t)trial, .gradgrad = true};
    if (trial == 2) GC_IN_SHAPE(&c.in[0], cls);
    else GC_IN_SHAPE(&c.in[0], n, cls);
    c.in[1].fixed = t;
    GC_ASSERT(&c);
    ct_release(t);
  }
}

Test(grad_ops, cross_entropy) { check_class_loss(true); }
Test(grad_ops, nll_loss) { check_class_loss(false); }

Test(grad_ops, mse_loss) {
  tu_rng rng;
  tu_seed(&rng, 53);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 1, 4, shape);
    gc_case c = {.op = "mse_loss", .fn = mse_call, .nin = 2, .seed = 70 + (uint64_t)trial, .gradgrad = true};
    gc_set_shape(&c.in[0], shape, nd);
    gc_set_shape(&c.in[1], shape, nd);
    GC_ASSERT(&c);
  }
}

typedef struct {
  int nd;
  bool weight, bias;
} ln_spec;

GC_SPEC_FN(layer_norm_call, ln_spec,
           ct_layer_norm(in[0], s->nd, s->weight ? in[1] : NULL, s->bias ? in[s->weight ? 2 : 1] : NULL, 1e-5))

Test(grad_ops, layer_norm) {
  tu_rng rng;
  tu_seed(&rng, 54);
  for (int trial = 0; trial < 4; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 2, 3), 2, 4, shape);
    ln_spec s = {(int)tu_int(&rng, 1, nd - 1), trial != 1, trial != 2};
    char op[96];
    snprintf(op, sizeof op, "layer_norm over the last %d dims%s%s", s.nd, s.weight ? ", weight" : "",
             s.bias ? ", bias" : "");
    gc_case c = {.op = op, .fn = layer_norm_call, .ctx = &s, .nin = 1, .seed = 80 + (uint64_t)trial,
                 .gradgrad = true};
    gc_set_shape(&c.in[0], shape, nd);
    if (s.weight) gc_set_shape(&c.in[c.nin++], shape + nd - s.nd, s.nd);
    if (s.bias) gc_set_shape(&c.in[c.nin++], shape + nd - s.nd, s.nd);
    GC_ASSERT(&c);
  }
}

/* ---- indexing --------------------------------------------------------------------------------------- */

static ct_tensor *embedding_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_embedding(in[0], in[1]);
}

/* A non-contiguous i64 index tensor of the given shape (a transposed view when 2-D). */
static ct_tensor *strided_index(tu_rng *rng, const int64_t *shape, int nd, int64_t n, bool negative) {
  int64_t tshape[CT_MAX_DIMS];
  memcpy(tshape, shape, sizeof(int64_t) * (size_t)nd);
  if (nd == 2) tshape[0] = shape[1], tshape[1] = shape[0];
  ct_tensor *t = tu_rand_index(rng, tshape, nd, n);
  if (negative) { /* v -> v - n - 1: the same elements counted from the end */
    ct_tensor *m = ct_add_scalar(t, (double)-(n + 1));
    ct_release(t);
    t = m;
  }
  if (nd != 2) return t;
  ct_tensor *v = ct_transpose(t, 0, 1);
  ct_release(t);
  return v;
}

Test(grad_ops, embedding) {
  tu_rng rng;
  tu_seed(&rng, 55);
  for (int trial = 0; trial < NTRIALS; trial++) {
    int64_t v = tu_int(&rng, 2, 6), d = tu_int(&rng, 1, 4), ishape[2] = {tu_int(&rng, 1, 4), tu_int(&rng, 2, 5)};
    int ind = trial == 0 ? 1 : 2;
    ct_tensor *idx = strided_index(&rng, ishape, ind, v, trial == 2);
    gc_case c = {.op = "embedding", .fn = embedding_call, .nin = 2, .seed = 90 + (uint64_t)trial, .gradgrad = true};
    GC_IN_SHAPE(&c.in[0], v, d);
    c.in[1].fixed = idx;
    GC_ASSERT(&c);
    ct_release(idx);
  }
}

typedef struct {
  int kind; /* 0 index_select, 1 gather */
  int dim;
} index_spec;

GC_SPEC_FN(index_call, index_spec,
           s->kind ? ct_gather(in[0], s->dim, in[1]) : ct_index_select(in[0], s->dim, in[1]))

Test(grad_ops, index_select) {
  tu_rng rng;
  tu_seed(&rng, 56);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 2, 4, shape);
    index_spec s = {0, (int)tu_int(&rng, -nd, nd - 1)};
    int dd = s.dim < 0 ? s.dim + nd : s.dim;
    int64_t k = tu_int(&rng, 1, 6); /* with repeats: the gradient accumulates */
    ct_tensor *idx = strided_index(&rng, &k, 1, shape[dd], trial == 3);
    char op[64];
    snprintf(op, sizeof op, "index_select(dim %d)", s.dim);
    gc_case c = {.op = op, .fn = index_call, .ctx = &s, .nin = 2, .seed = 100 + (uint64_t)trial, .gradgrad = true};
    gc_set_shape(&c.in[0], shape, nd);
    c.in[1].fixed = idx;
    GC_ASSERT(&c);
    ct_release(idx);
  }
}

Test(grad_ops, gather) {
  tu_rng rng;
  tu_seed(&rng, 57);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t shape[CT_MAX_DIMS], ishape[CT_MAX_DIMS];
    int nd = trial == 3 ? 2 : tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 2, 4, shape);
    if (trial == 3) shape[0] = 3, shape[1] = 4;
    index_spec s = {1, (int)tu_int(&rng, 0, nd - 1)};
    for (int d = 0; d < nd; d++) ishape[d] = d == s.dim ? tu_int(&rng, 1, 5) : tu_int(&rng, 1, shape[d]);
    ct_tensor *idx = strided_index(&rng, ishape, nd, shape[s.dim], trial == 1);
    char op[64];
    snprintf(op, sizeof op, "gather(dim %d)", s.dim);
    gc_case c = {.op = op, .fn = index_call, .ctx = &s, .nin = 2, .seed = 110 + (uint64_t)trial, .gradgrad = true};
    gc_set_shape(&c.in[0], shape, nd);
    c.in[1].fixed = idx;
    GC_ASSERT(&c);
    ct_release(idx);
  }
}

typedef struct {
  bool stack;
  int dim;
} cat_spec;

static ct_tensor *cat_call(ct_tensor *const *in, int nin, void *ctx) {
  const cat_spec *s = ctx;
  return s->stack ? ct_stack(in, nin, s->dim) : ct_cat(in, nin, s->dim);
}

static void check_cat(bool stack) {
  tu_rng rng;
  tu_seed(&rng, stack ? 58 : 59);
  for (int trial = 0; trial < NTRIALS + 1; trial++) {
    int64_t shape[CT_MAX_DIMS];
    int nd = tu_rand_shape(&rng, (int)tu_int(&rng, 1, 3), 1, 4, shape);
    cat_spec s = {stack, (int)tu_int(&rng, stack ? -(nd + 1) : -nd, stack ? nd : nd - 1)};
    int n = (int)tu_int(&rng, 1, 4), dd = s.dim < 0 ? s.dim + nd : s.dim;
    char op[64];
    snprintf(op, sizeof op, "%s of %d tensors (dim %d)", stack ? "stack" : "cat", n, s.dim);
    gc_case c = {.op = op, .fn = cat_call, .ctx = &s, .nin = n, .seed = 120 + (uint64_t)trial, .gradgrad = true};
    for (int i = 0; i < n; i++) {
      if (!stack) shape[dd] = tu_int(&rng, 1, 3); /* cat: sizes differ along dim */
      gc_set_shape(&c.in[i], shape, nd);
    }
    GC_ASSERT(&c);
  }
}

Test(grad_ops, cat) { check_cat(false); }
Test(grad_ops, stack) { check_cat(true); }

/* ---- conv2d and max_pool2d ---------------------------------------------------------------------------- */

typedef struct {
  int stride, padding;
  bool bias;
} conv_spec;

GC_SPEC_FN(conv_call, conv_spec, ct_conv2d(in[0], in[1], s->bias ? in[2] : NULL, s->stride, s->padding))

Test(grad_ops, conv2d) {
  static const struct {
    int64_t x[4], w[4];
    conv_spec s;
  } cases[] = {
      {{2, 2, 5, 5}, {3, 2, 3, 3}, {1, 0, true}},
      {{1, 3, 6, 5}, {2, 3, 3, 2}, {2, 1, true}},
      {{2, 1, 4, 4}, {2, 1, 1, 1}, {1, 0, false}},
      {{1, 2, 5, 6}, {1, 2, 2, 3}, {1, 2, true}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char op[128], sx[48], sw[48];
    snprintf(op, sizeof op, "conv2d x%s w%s stride %d padding %d%s", ct_shape_str(cases[k].x, 4, sx, sizeof sx),
             ct_shape_str(cases[k].w, 4, sw, sizeof sw), cases[k].s.stride, cases[k].s.padding,
             cases[k].s.bias ? " bias" : "");
    gc_case c = {.op = op, .fn = conv_call, .ctx = (void *)&cases[k].s, .nin = cases[k].s.bias ? 3 : 2,
                 .seed = 130 + k, .gradgrad = k == 0};
    gc_set_shape(&c.in[0], cases[k].x, 4);
    gc_set_shape(&c.in[1], cases[k].w, 4);
    if (cases[k].s.bias) GC_IN_SHAPE(&c.in[2], cases[k].w[0]);
    GC_ASSERT(&c);
  }
}

typedef struct {
  int kernel, stride;
} pool_spec;

GC_SPEC_FN(pool_call, pool_spec, ct_max_pool2d(in[0], s->kernel, s->stride))

Test(grad_ops, max_pool2d) {
  static const struct {
    int64_t x[4];
    pool_spec s;
  } cases[] = {{{2, 2, 4, 4}, {2, 2}}, {{1, 3, 5, 6}, {3, 2}}, {{2, 1, 5, 5}, {2, 1}}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char op[96];
    snprintf(op, sizeof op, "max_pool2d kernel %d stride %d", cases[k].s.kernel, cases[k].s.stride);
    /* no expanded layout: a broadcast input ties every window's maximum with its copies, where
       max_pool2d (as torch) routes the gradient to one of them */
    gc_case c = {.op = op, .fn = pool_call, .ctx = (void *)&cases[k].s, .nin = 1, .seed = 140 + k};
    gc_set_shape(&c.in[0], cases[k].x, 4);
    char msg[4096];
    for (int l = 0; l < GC_EXPANDED; l++) cr_assert(gc_check(&c, (gc_layout)l, msg, sizeof msg) == 0, "%s", msg);
  }
}

/* ---- dropout ----------------------------------------------------------------------------------------- */

typedef struct {
  double p;
  uint64_t seed;
} dropout_spec;

static ct_tensor *dropout_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin;
  const dropout_spec *s = ctx;
  ct_manual_seed(s->seed); /* the same mask on every call */
  return ct_dropout(in[0], s->p, true);
}

Test(grad_ops, dropout_backward_reuses_the_forward_mask) {
  static const dropout_spec specs[] = {{0.5, 1}, {0.2, 2}, {0.8, 3}};
  for (size_t k = 0; k < 3; k++) {
    char op[64];
    snprintf(op, sizeof op, "dropout(p=%.1f)", specs[k].p);
    gc_case c = {.op = op, .fn = dropout_call, .ctx = (void *)&specs[k], .nin = 1, .seed = 150 + k, .gradgrad = true};
    GC_IN_SHAPE(&c.in[0], 4, 5, 3);
    GC_ASSERT(&c);
  }
  /* and directly: grad = mask / (1 - p), zero exactly where the output is zero */
  ct_manual_seed(9);
  ct_tensor *x = ct_full((int64_t[]){1000}, 1, 1.0, CT_F64, ct_cpu());
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_dropout(x, 0.3, true), *g = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
  double *yv = tu_values(y), *gv = tu_values(x->grad);
  for (int i = 0; i < 1000; i++) cr_assert_eq(gv[i], yv[i], "element %d: grad %g, output %g", i, gv[i], yv[i]);
  free(yv), free(gv);
  ct_release(x), ct_release(y), ct_release(g);
}

Test(grad_ops, dropout_statistics) {
  static const double ps[] = {0.1, 0.5, 0.9};
  const int n = 200000;
  for (int k = 0; k < 3; k++) {
    double p = ps[k];
    ct_manual_seed(100 + (uint64_t)k);
    ct_tensor *x = ct_full((int64_t[]){n}, 1, 2.0, CT_F32, ct_cpu());
    ct_tensor *y = ct_dropout(x, p, true);
    cr_assert(y, "%s", ct_last_error());
    double *v = tu_values(y), zeros = 0, sum = 0;
    for (int i = 0; i < n; i++) {
      if (v[i] == 0) zeros++;
      else cr_assert(fabs(v[i] - 2.0 / (1 - p)) < 1e-5, "kept values are scaled by 1/(1-p): %g", v[i]);
      sum += v[i];
    }
    double frac = zeros / n, sd = sqrt(p * (1 - p) / n);
    cr_assert(fabs(frac - p) < 5 * sd, "p=%g: dropped fraction %g (5 sigma = %g)", p, frac, 5 * sd);
    cr_assert(fabs(sum / n - 2.0) < 5 * 2.0 * sqrt(p / (1 - p) / n), "p=%g: the mean is preserved (%g)", p, sum / n);
    /* the next call draws a fresh mask */
    ct_tensor *y2 = ct_dropout(x, p, true);
    double *v2 = tu_values(y2), same = 0;
    for (int i = 0; i < n; i++) same += (v[i] == 0) == (v2[i] == 0);
    cr_assert(same < n * (p * p + (1 - p) * (1 - p)) + 5 * sqrt((double)n), "p=%g: masks of two calls differ", p);
    /* eval mode and p = 0 are the identity */
    ct_tensor *e = ct_dropout(x, p, false), *z = ct_dropout(x, 0, true);
    double *ev = tu_values(e), *zv = tu_values(z);
    for (int i = 0; i < n; i += 997) cr_assert(ev[i] == 2 && zv[i] == 2, "identity in eval mode and for p=0");
    free(v), free(v2), free(ev), free(zv);
    ct_release(x), ct_release(y), ct_release(y2), ct_release(e), ct_release(z);
  }
  /* same seed, same mask (the Philox stream; CPU and GPU agree on it) */
  ct_tensor *x = ct_full((int64_t[]){64}, 1, 1.0, CT_F32, ct_cpu());
  ct_manual_seed(5);
  ct_tensor *a = ct_dropout(x, 0.5, true);
  ct_manual_seed(5);
  ct_tensor *b = ct_dropout(x, 0.5, true);
  char msg[512];
  cr_assert(tu_compare_tensors("dropout with the same seed", a, b, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_release(x), ct_release(a), ct_release(b);
}
