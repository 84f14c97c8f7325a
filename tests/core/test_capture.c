/* test_capture.c: captured graphs: replay equals eager bit for bit on the CPU (a training step with
 * an optimizer update through assign); every pass preserves results on random graphs (property
 * tests: random op sequences captured, optimized, replayed, compared); each pass does what it
 * claims (DCE, CSE, folding, rewrites, fusion of a hand-written softmax into one row kernel);
 * every memory plan passes the independent verifier, which itself catches a corrupted plan;
 * checkpointing (the graph pass and the eager op) gives gradients identical to plain ones while
 * planning less memory; errors; nothing leaks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h" /* white-box: reads graph internals */
#include "testutil.h"

static void assert_all_freed(void) {
  ct_mem_stats s;
  ct_mem_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
  cr_assert_eq(s.live_nodes, 0, "%lld autograd nodes still alive", (long long)s.live_nodes);
}

/* Bitwise equality of two tensors of one dtype and shape. */
static bool same_bits(const ct_tensor *a, const ct_tensor *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim))
    return false;
  size_t n = (size_t)ct_numel(a) * ct_dtype_size(a->dtype);
  char *x = malloc(n + 1), *y = malloc(n + 1);
  bool eq = x && y && !ct_read_host(a, x) && !ct_read_host(b, y) && !memcmp(x, y, n);
  free(x), free(y);
  return eq;
}

static double max_diff(const ct_tensor *a, const ct_tensor *b) {
  double *x = tu_values(a), *y = tu_values(b), m = 0;
  int64_t n = ct_numel(a);
  for (int64_t i = 0; x && y && i < n; i++) {
    double d = fabs(x[i] - y[i]) / fmax(1.0, fabs(y[i]));
    if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
  }
  free(x), free(y);
  return m;
}

/* ---- a training step: 2-layer MLP, gelu, mse, SGD through assign -------------------------- */

typedef struct {
  ct_tensor *w1, *b1, *w2, *x, *y;
} mlp;

static void mlp_init(mlp *m, uint64_t seed, ct_dtype dt) {
  ct_manual_seed(seed);
  m->w1 = ct_randn(TU_SHAPE(16, 12), dt, ct_cpu());
  m->b1 = ct_randn(TU_SHAPE(16), dt, ct_cpu());
  m->w2 = ct_randn(TU_SHAPE(4, 16), dt, ct_cpu());
  m->x = ct_randn(TU_SHAPE(9, 12), dt, ct_cpu());
  m->y = ct_randn(TU_SHAPE(9, 4), dt, ct_cpu());
  ct_requires_grad_(m->w1, true), ct_requires_grad_(m->b1, true), ct_requires_grad_(m->w2, true);
}

static void mlp_free(mlp *m) {
  ct_release(m->w1), ct_release(m->b1), ct_release(m->w2), ct_release(m->x), ct_release(m->y);
}

/* One step; returns the loss (new reference). The update runs through ct_assign_, as copy_ does. */
static ct_tensor *mlp_step(mlp *m) {
  ct_zero_grad(m->w1), ct_zero_grad(m->b1), ct_zero_grad(m->w2);
  ct_tensor *w1t = ct_transpose(m->w1, 0, 1), *w2t = ct_transpose(m->w2, 0, 1);
  ct_tensor *h = ct_matmul(m->x, w1t), *hb = ct_add(h, m->b1), *a = ct_gelu(hb);
  ct_tensor *o = ct_matmul(a, w2t), *loss = ct_mse_loss(o, m->y);
  cr_assert(loss, "%s", ct_last_error());
  cr_assert_eq(ct_backward(loss, NULL, false, false), 0, "%s", ct_last_error());
  bool old = ct_set_grad_enabled(false);
  ct_tensor *ps[3] = {m->w1, m->b1, m->w2};
  for (int i = 0; i < 3; i++) {
    ct_tensor *d = ct_mul_scalar(ps[i]->grad, 0.05), *np = ct_sub(ps[i], d);
    cr_assert_eq(ct_assign_(ps[i], np), 0, "%s", ct_last_error());
    ct_release(d), ct_release(np);
  }
  ct_set_grad_enabled(old);
  ct_release(w1t), ct_release(w2t), ct_release(h), ct_release(hb), ct_release(a), ct_release(o);
  return loss;
}

static void check_step_equal(mlp *e, mlp *c, ct_tensor *le, ct_tensor *lc, bool exact) {
  ct_tensor *pe[3] = {e->w1, e->b1, e->w2}, *pc[3] = {c->w1, c->b1, c->w2};
  const char *names[3] = {"w1", "b1", "w2"};
  if (exact) cr_assert(same_bits(le, lc), "loss: replay %s differs from eager", tu_desc(lc));
  else cr_assert_lt(max_diff(lc, le), 1e-5);
  for (int i = 0; i < 3; i++) {
    if (exact) {
      cr_assert(same_bits(pe[i], pc[i]), "%s after the step: replay differs from eager (max diff %g)", names[i],
                max_diff(pc[i], pe[i]));
      cr_assert(pc[i]->grad && same_bits(pe[i]->grad, pc[i]->grad), "%s.grad: replay differs from eager", names[i]);
    } else {
      cr_assert_lt(max_diff(pc[i], pe[i]), 1e-5, "%s", names[i]);
    }
  }
}

/* eager: two steps; captured: the first step under capture, the second by replay */
static void replay_vs_eager(ct_dtype dt, const char *const *passes, int npasses, bool exact) {
  mlp e, c;
  mlp_init(&e, 7, dt);
  mlp_init(&c, 7, dt);
  ct_tensor *l1 = mlp_step(&e);
  ct_release(l1);
  ct_tensor *le = mlp_step(&e);
  ct_graph *g = ct_capture_begin(&c.x, 1);
  cr_assert(g, "%s", ct_last_error());
  ct_tensor *l0 = mlp_step(&c);
  cr_assert_eq(ct_capture_end(g, &l0, 1), 0, "%s", ct_last_error());
  ct_release(l0);
  for (int i = 0; i < npasses; i++) {
    ct_pass_report r;
    cr_assert_eq(ct_graph_optimize(g, passes[i], NULL, &r), 0, "%s: %s", passes[i], ct_last_error());
    cr_assert_leq(r.nodes_after, r.nodes_before + (strcmp(passes[i], "algebra") ? 0 : 1));
  }
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *lc = ct_graph_output(g, 0);
  check_step_equal(&e, &c, le, lc, exact);
  cr_assert_eq(ct_graph_verify_plan(g), 0, "%s", ct_last_error());
  ct_release(le), ct_release(lc);
  ct_graph_free(g);
  mlp_free(&e), mlp_free(&c);
  assert_all_freed();
}

Test(capture, replay_equals_eager_bit_for_bit_f32) { replay_vs_eager(CT_F32, NULL, 0, true); }
Test(capture, replay_equals_eager_bit_for_bit_f64) { replay_vs_eager(CT_F64, NULL, 0, true); }

Test(capture, exact_passes_keep_replay_bit_for_bit) {
  const char *passes[] = {"dce", "cse", "fold", "fuse"};
  replay_vs_eager(CT_F32, passes, 4, true);
  replay_vs_eager(CT_F64, passes, 4, true);
}

Test(capture, algebra_keeps_results_to_rounding) {
  const char *passes[] = {"fold", "algebra", "cse", "dce", "fuse"};
  replay_vs_eager(CT_F32, passes, 5, false);
}

Test(capture, repeated_replays_keep_training_like_eager) {
  mlp e, c;
  mlp_init(&e, 3, CT_F32);
  mlp_init(&c, 3, CT_F32);
  ct_graph *g = ct_capture_begin(&c.x, 1);
  ct_tensor *l0 = mlp_step(&c);
  cr_assert_eq(ct_capture_end(g, &l0, 1), 0, "%s", ct_last_error());
  ct_release(l0);
  ct_tensor *l = mlp_step(&e);
  ct_release(l);
  cr_assert_eq(ct_graph_optimize(g, "fuse", NULL, NULL), 0);
  for (int k = 0; k < 5; k++) {
    ct_tensor *le = mlp_step(&e);
    cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
    ct_tensor *lc = ct_graph_output(g, 0);
    check_step_equal(&e, &c, le, lc, true);
    ct_release(le), ct_release(lc);
  }
  ct_graph_free(g);
  mlp_free(&e), mlp_free(&c);
  assert_all_freed();
}

Test(capture, replay_reads_new_input_values) {
  ct_tensor *x = ct_full(TU_SHAPE(3, 4), 2.0, CT_F32, ct_cpu());
  ct_graph *g = ct_capture_begin(&x, 1);
  ct_tensor *y = ct_exp(x), *z = ct_mul(y, x);
  cr_assert_eq(ct_capture_end(g, &z, 1), 0, "%s", ct_last_error());
  ct_fill_(x, -1.5);
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *out = ct_graph_output(g, 0), *want_e = ct_exp(x), *want = ct_mul(want_e, x);
  cr_assert(same_bits(out, want), "replay must read the input's current values");
  ct_release(out), ct_release(want_e), ct_release(want), ct_release(y), ct_release(z), ct_release(x);
  ct_graph_free(g);
  assert_all_freed();
}

/* ---- random graphs ------------------------------------------------------------------------- */

#define MAXT 96

typedef struct {
  ct_tensor *t[MAXT];
  int n;
} pool;

static void push(pool *p, ct_tensor *t) {
  cr_assert(t, "random graph op failed: %s", ct_last_error());
  if (p->n < MAXT) p->t[p->n++] = t;
  else ct_release(t);
}

/* A tensor of the pool of shape class k (0: [R,C], 1: [R,1], 2: [C], 3: []) if one exists. */
static ct_tensor *pick(tu_rng *r, pool *p, int R, int C, int want) {
  int idx[MAXT], n = 0;
  for (int i = 0; i < p->n; i++) {
    ct_tensor *t = p->t[i];
    int k = t->ndim == 0 ? 3 : t->ndim == 1 ? 2 : t->shape[1] == 1 ? 1 : 0;
    (void)R, (void)C;
    if (k == want || want < 0) idx[n++] = i;
  }
  if (!n) return NULL;
  return p->t[idx[tu_int(r, 0, n - 1)]];
}

/* Runs a random op sequence determined by seed on inputs in[0..3) ([R,C], [R,1], [C], and W
   [C,C]); fills outs with 3 results (new references). Same seed, same ops. */
static void random_program(uint64_t seed, ct_tensor *const *in, ct_tensor **outs) {
  tu_rng r;
  tu_seed(&r, seed);
  pool p = {.n = 0};
  for (int i = 0; i < 3; i++) push(&p, ct_retain(in[i]));
  ct_tensor *W = in[3];
  int R = (int)in[0]->shape[0], C = (int)in[0]->shape[1];
  int nops = (int)tu_int(&r, 6, 28);
  for (int k = 0; k < nops; k++) {
    int kind = (int)tu_int(&r, 0, 15);
    ct_tensor *a = pick(&r, &p, R, C, tu_int(&r, 0, 3) ? 0 : -1), *b = pick(&r, &p, R, C, -1);
    if (!a) a = p.t[0];
    if (!b) b = p.t[0];
    switch (kind) {
    case 0: push(&p, ct_add(a, b)); break;
    case 1: push(&p, ct_sub(a, b)); break;
    case 2: push(&p, ct_mul(a, b)); break;
    case 3: { /* a / (|b| + 1) */
      ct_tensor *ab = ct_abs(b), *d = ct_add_scalar(ab, 1.0);
      push(&p, ct_div(a, d));
      ct_release(ab), ct_release(d);
      break;
    }
    case 4: push(&p, ct_tanh(a)); break;
    case 5: push(&p, ct_gelu(a)); break;
    case 6: push(&p, ct_sigmoid(a)); break;
    case 7: push(&p, ct_relu(a)); break;
    case 8: push(&p, ct_mul_scalar(a, tu_int(&r, 0, 1) ? 1.0 : 0.5)); break;
    case 9: push(&p, ct_add_scalar(a, tu_int(&r, 0, 1) ? 0.0 : -0.25)); break;
    case 10: { /* a row reduction over the last dim, kept */
      ct_tensor *full = pick(&r, &p, R, C, 0);
      if (!full) break;
      int dims[1] = {-1};
      int which = (int)tu_int(&r, 0, 2);
      push(&p, which == 0 ? ct_sum(full, dims, 1, true) : which == 1 ? ct_max(full, dims, 1, true) : ct_mean(full, dims, 1, true));
      break;
    }
    case 11: { /* a matmul with W */
      ct_tensor *full = pick(&r, &p, R, C, 0);
      if (full) push(&p, ct_matmul(full, W));
      break;
    }
    case 12: { /* where(a > b, a, b) */
      ct_tensor *c = ct_gt(a, b);
      push(&p, ct_where(c, a, b));
      ct_release(c);
      break;
    }
    case 13: { /* x * 1 and x + 0 with constants made here (algebra's targets) */
      ct_tensor *one = ct_scalar(tu_int(&r, 0, 1) ? 1.0 : 0.0, a->dtype, ct_cpu());
      push(&p, tu_int(&r, 0, 1) ? ct_mul(a, one) : ct_add(a, one));
      ct_release(one);
      break;
    }
    case 14: { /* a repeated op (CSE's target) and an unused one (DCE's) */
      ct_tensor *u = ct_exp(ct_numel(a) ? a : b);
      ct_release(u);
      push(&p, ct_neg(a));
      push(&p, ct_neg(a));
      break;
    }
    case 15: { /* transpose of transpose */
      ct_tensor *full = pick(&r, &p, R, C, 0);
      if (!full) break;
      ct_tensor *t1 = ct_transpose(full, 0, 1), *t2 = ct_transpose(t1, 0, 1);
      push(&p, ct_mul(t2, full));
      ct_release(t1), ct_release(t2);
      break;
    }
    }
  }
  /* three results: the last value, a sum over everything, a mix */
  outs[0] = ct_retain(p.t[p.n - 1]);
  ct_tensor *acc = ct_retain(p.t[0]);
  for (int i = 1; i < p.n; i++) {
    ct_tensor *s = ct_add(acc, p.t[i]);
    ct_release(acc);
    acc = s;
  }
  outs[1] = acc;
  outs[2] = ct_mul(p.t[p.n / 2], p.t[0]);
  for (int i = 0; i < p.n; i++) ct_release(p.t[i]);
}

static void property_run(uint64_t seed, ct_dtype dt, const char *const *passes, int npasses, bool exact,
                         ct_plan_strategy strategy) {
  tu_rng r;
  tu_seed(&r, seed * 7919 + 1);
  int R = (int)tu_int(&r, 1, 9), C = (int)tu_int(&r, 1, 70);
  ct_tensor *in[4] = {tu_rand_tensor(&r, TU_SHAPE(R, C), dt, -2, 2), tu_rand_tensor(&r, TU_SHAPE(R, 1), dt, -2, 2),
                      tu_rand_tensor(&r, TU_SHAPE(C), dt, -2, 2), tu_rand_tensor(&r, TU_SHAPE(C, C), dt, -0.5, 0.5)};
  ct_tensor *want[3], *got_capture[3];
  random_program(seed, in, want);
  ct_graph *g = ct_capture_begin(in, 4);
  cr_assert(g, "%s", ct_last_error());
  random_program(seed, in, got_capture);
  cr_assert_eq(ct_capture_end(g, got_capture, 3), 0, "%s", ct_last_error());
  for (int i = 0; i < npasses; i++)
    cr_assert_eq(ct_graph_optimize(g, passes[i], NULL, NULL), 0, "seed %llu, %s: %s", (unsigned long long)seed,
                 passes[i], ct_last_error());
  ct_plan_opts po = {.strategy = strategy};
  cr_assert_eq(ct_graph_plan_memory(g, &po, NULL), 0, "%s", ct_last_error());
  cr_assert_eq(ct_graph_verify_plan(g), 0, "seed %llu: %s", (unsigned long long)seed, ct_last_error());
  /* scribble over the outputs, then replay twice: results must come back */
  for (int rep = 0; rep < 2; rep++) {
    for (int i = 0; i < 3; i++) ct_fill_(got_capture[i], 12345.0);
    cr_assert_eq(ct_graph_replay(g), 0, "seed %llu: %s", (unsigned long long)seed, ct_last_error());
    for (int i = 0; i < 3; i++) {
      ct_tensor *o = ct_graph_output(g, i);
      if (exact)
        cr_assert(same_bits(o, want[i]), "seed %llu, output %d (%s): replay differs from eager by %g",
                  (unsigned long long)seed, i, tu_desc(o), max_diff(o, want[i]));
      else
        cr_assert_lt(max_diff(o, want[i]), dt == CT_F32 ? 2e-4 : 1e-10, "seed %llu output %d", (unsigned long long)seed, i);
      ct_release(o);
    }
  }
  for (int i = 0; i < 3; i++) ct_release(want[i]), ct_release(got_capture[i]);
  for (int i = 0; i < 4; i++) ct_release(in[i]);
  ct_graph_free(g);
}

Test(capture_property, unoptimized_replay_is_exact) {
  for (uint64_t s = 1; s <= 40; s++) property_run(s, s % 2 ? CT_F32 : CT_F64, NULL, 0, true, CT_PLAN_BESTFIT);
  assert_all_freed();
}

Test(capture_property, each_exact_pass_preserves_results) {
  const char *all[] = {"dce", "cse", "fold", "fuse"};
  for (uint64_t s = 100; s < 140; s++) {
    for (int p = 0; p < 4; p++) property_run(s, s % 2 ? CT_F32 : CT_F64, &all[p], 1, true, CT_PLAN_BESTFIT);
    property_run(s, CT_F32, all, 4, true, (ct_plan_strategy)(s % 3));
  }
  assert_all_freed();
}

Test(capture_property, algebra_preserves_results_to_rounding) {
  const char *seq[] = {"algebra", "cse", "dce", "fuse"};
  for (uint64_t s = 200; s < 240; s++) {
    property_run(s, CT_F64, seq, 1, false, CT_PLAN_BESTFIT);
    property_run(s, CT_F32, seq, 4, false, CT_PLAN_GREEDY_SIZE);
  }
  assert_all_freed();
}

/* ---- each pass does what it says ------------------------------------------------------------ */

Test(passes, dce_cse_fold_algebra_each_change_the_graph) {
  ct_tensor *x = ct_full(TU_SHAPE(4, 5), 0.5, CT_F32, ct_cpu()), *A = ct_full(TU_SHAPE(4, 5), 1.5, CT_F32, ct_cpu());
  ct_tensor *B = ct_full(TU_SHAPE(5, 3), 0.25, CT_F32, ct_cpu()), *Cm = ct_full(TU_SHAPE(5, 3), -0.75, CT_F32, ct_cpu());
  ct_tensor *ins[4] = {x, A, B, Cm};
  ct_graph *g = ct_capture_begin(ins, 4);
  ct_tensor *unused = ct_exp(x);                    /* dce */
  ct_tensor *s1 = ct_sin(x), *s2 = ct_sin(x);       /* cse */
  ct_tensor *two = ct_scalar(4.0, CT_F32, ct_cpu());
  ct_tensor *root = ct_sqrt(two);                   /* fold: sqrt(4) = 2 */
  ct_tensor *one = ct_scalar(1.0, CT_F32, ct_cpu());
  ct_tensor *s1one = ct_mul(s1, one);               /* algebra: x*1 */
  ct_tensor *m1 = ct_matmul(A, B), *m2 = ct_matmul(A, Cm), *sum = ct_add(m1, m2); /* A@B + A@C */
  ct_tensor *t = ct_add(s1one, s2), *u = ct_mul(t, root);
  ct_tensor *outs[2] = {u, sum};
  cr_assert_eq(ct_capture_end(g, outs, 2), 0, "%s", ct_last_error());
  ct_pass_report r;
  cr_assert_eq(ct_graph_optimize(g, "dce", NULL, &r), 0);
  cr_assert_eq(r.changes, 1, "dce removes exp(x):\n%s", ct_graph_explain(g, "dce"));
  cr_assert_eq(ct_graph_optimize(g, "cse", NULL, &r), 0);
  cr_assert_geq(r.changes, 1, "cse merges the second sin(x):\n%s", ct_graph_explain(g, "cse"));
  cr_assert(strstr(ct_graph_explain(g, "cse"), "sin"), "%s", ct_graph_explain(g, "cse"));
  cr_assert_eq(ct_graph_optimize(g, "fold", NULL, &r), 0);
  cr_assert_eq(r.changes, 1, "fold computes sqrt(4):\n%s", ct_graph_explain(g, "fold"));
  cr_assert(strstr(ct_graph_explain(g, "fold"), "= 2"), "%s", ct_graph_explain(g, "fold"));
  cr_assert_eq(ct_graph_optimize(g, "algebra", NULL, &r), 0);
  cr_assert_eq(r.changes, 2, "algebra: x*1 and A@B + A@C:\n%s", ct_graph_explain(g, "algebra"));
  cr_assert(strstr(ct_graph_explain(g, "algebra"), "A@B + A@C -> A@(B+C)"), "%s", ct_graph_explain(g, "algebra"));
  cr_assert_eq(ct_graph_optimize(g, "dce", NULL, &r), 0);
  int kernels_matmul = 0;
  for (int i = 0; i < ct_graph_nnodes(g); i++) {
    ct_gnode_info in;
    ct_graph_node(g, i, &in);
    kernels_matmul += in.op == CT_OP_matmul;
  }
  cr_assert_eq(kernels_matmul, 1, "one matmul left after factoring");
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *o0 = ct_graph_output(g, 0), *o1 = ct_graph_output(g, 1);
  double v;
  int64_t i00[2] = {0, 0};
  ct_get(o0, i00, &v);
  cr_assert_float_eq(v, 2.0 * 2.0 * sinf(0.5f), 1e-5);
  ct_get(o1, i00, &v);
  cr_assert_float_eq(v, 5 * 1.5 * (0.25 - 0.75), 1e-5);
  ct_release(o0), ct_release(o1);
  ct_tensor *all[] = {unused, s1, s2, two, root, one, s1one, m1, m2, sum, t, u};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) ct_release(all[i]);
  for (int i = 0; i < 4; i++) ct_release(ins[i]);
  ct_graph_free(g);
  assert_all_freed();
}

/* softmax written by hand: max, sub, exp, sum, div: 5 reads of M*N and 3 writes unfused */
Test(passes, fusion_makes_one_row_kernel_of_a_handwritten_softmax) {
  tu_rng r;
  tu_seed(&r, 5);
  int64_t M = 37, N = 129;
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(M, N), CT_F32, -4, 4);
  int dims[1] = {-1};
  ct_tensor *m0 = ct_max(x, dims, 1, true), *d0 = ct_sub(x, m0), *e0 = ct_exp(d0), *s0 = ct_sum(e0, dims, 1, true);
  ct_tensor *want = ct_div(e0, s0);
  ct_graph *g = ct_capture_begin(&x, 1);
  ct_tensor *m = ct_max(x, dims, 1, true), *d = ct_sub(x, m), *e = ct_exp(d), *s = ct_sum(e, dims, 1, true);
  ct_tensor *y = ct_div(e, s);
  cr_assert_eq(ct_capture_end(g, &y, 1), 0, "%s", ct_last_error());
  ct_pass_report rep;
  cr_assert_eq(ct_graph_optimize(g, "fuse", NULL, &rep), 0, "%s", ct_last_error());
  cr_assert_eq(rep.kernels_before, 5);
  cr_assert_eq(rep.kernels_after, 1, "%s", ct_graph_explain(g, "fuse"));
  double mn = (double)(M * N) * 4;
  cr_assert_geq(rep.bytes_before, 8 * mn, "unfused: 5 reads and 3 writes of M*N");
  cr_assert_leq(rep.bytes_after, 2 * mn + 1024, "fused: one read, one write (got %g for MN = %g bytes)", rep.bytes_after, mn);
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *got = ct_graph_output(g, 0);
  cr_assert(same_bits(got, want), "fused softmax differs from the unfused ops by %g", max_diff(got, want));
  cr_assert_not_null(ct_graph_source(g, 0, "c"));
  cr_assert(strstr(ct_graph_source(g, 0, "c"), "expf"), "%s", ct_graph_source(g, 0, "c"));
  ct_tensor *all[] = {m0, d0, e0, s0, want, m, d, e, s, y, got, x};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) ct_release(all[i]);
  ct_graph_free(g);
  assert_all_freed();
}

Test(passes, fuse_explains_why_a_pair_was_not_fused) {
  ct_tensor *x = ct_full(TU_SHAPE(8, 8), 0.5, CT_F32, ct_cpu()), *w = ct_full(TU_SHAPE(8, 8), 0.1, CT_F32, ct_cpu());
  ct_tensor *ins[2] = {x, w};
  ct_graph *g = ct_capture_begin(ins, 2);
  ct_tensor *h = ct_matmul(x, w), *a = ct_relu(h), *b = ct_mul_scalar(a, 2.0), *c = ct_add_scalar(b, 1.0);
  cr_assert_eq(ct_capture_end(g, &c, 1), 0);
  cr_assert_eq(ct_graph_optimize(g, "fuse", NULL, NULL), 0);
  const char *why = ct_graph_explain(g, "fuse");
  cr_assert(strstr(why, "matmul is not elementwise"), "%s", why);
  cr_assert(strstr(why, "fused:"), "%s", why);
  ct_release(h), ct_release(a), ct_release(b), ct_release(c), ct_release(x), ct_release(w);
  ct_graph_free(g);
  assert_all_freed();
}

/* ---- memory planning ------------------------------------------------------------------------ */

Test(plan, bounds_inplace_and_the_verifier_catches_overlap) {
  tu_rng r;
  tu_seed(&r, 9);
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(64, 64), CT_F32, -1, 1);
  ct_graph *g = ct_capture_begin(&x, 1);
  ct_tensor *cur = ct_retain(x);
  for (int i = 0; i < 12; i++) { /* a = f(cur); cur = a * cur: cur stays live across two nodes */
    ct_tensor *a = i % 3 == 0 ? ct_tanh(cur) : i % 3 == 1 ? ct_mul_scalar(cur, 1.5) : ct_sigmoid(cur);
    ct_tensor *n = ct_mul(a, cur);
    ct_release(cur), ct_release(a);
    cur = n;
  }
  cr_assert_eq(ct_capture_end(g, &cur, 1), 0);
  ct_plan_report rep;
  cr_assert_eq(ct_graph_plan_memory(g, NULL, &rep), 0);
  cr_assert_leq(rep.lower_bound, rep.planned_bytes);
  cr_assert_leq(rep.planned_bytes, rep.naive_bytes + 64 * rep.nbuffers);
  cr_assert_gt(rep.ninplace, 0, "an elementwise chain reuses its input's buffer");
  cr_assert_eq(ct_graph_verify_plan(g), 0, "%s", ct_last_error());
  ct_plan_opts naive = {.strategy = CT_PLAN_NAIVE};
  ct_plan_report rn;
  cr_assert_eq(ct_graph_plan_memory(g, &naive, &rn), 0);
  cr_assert_geq(rn.planned_bytes, rn.naive_bytes);
  cr_assert_eq(ct_graph_verify_plan(g), 0, "%s", ct_last_error());
  /* without in-place, two buffers alternate; then corrupt: put every buffer at offset 0 */
  ct_plan_opts noin = {.no_inplace = true};
  cr_assert_eq(ct_graph_plan_memory(g, &noin, &rep), 0);
  cr_assert_eq(rep.ninplace, 0);
  cr_assert_gt(rep.nbuffers, 1);
  cr_assert_eq(ct_graph_verify_plan(g), 0, "%s", ct_last_error());
  for (int i = 0; i < g->nbuffers; i++) g->buffers[i].offset = 0;
  cr_assert_eq(ct_graph_verify_plan(g), -1, "the verifier must reject overlapping live tensors");
  cr_assert(tu_error_has("overlap", NULL), "%s", ct_last_error());
  ct_release(cur), ct_release(x);
  ct_graph_free(g);
  assert_all_freed();
}

/* ---- checkpointing -------------------------------------------------------------------------- */

/* deep tanh MLP: n layers of width d, mse to zero; returns the loss (new ref) */
static ct_tensor *deep_step(ct_tensor *x, ct_tensor **w, int n) {
  ct_tensor *h = ct_retain(x);
  for (int i = 0; i < n; i++) {
    ct_tensor *z = ct_matmul(h, w[i]), *a = ct_tanh(z);
    ct_release(h), ct_release(z);
    h = a;
  }
  ct_tensor *zero = ct_zeros_like(h), *loss = ct_mse_loss(h, zero);
  ct_release(h), ct_release(zero);
  cr_assert_eq(ct_backward(loss, NULL, false, false), 0, "%s", ct_last_error());
  return loss;
}

Test(checkpoint, graph_pass_gives_identical_gradients_and_a_smaller_plan) {
  enum { N = 16 };
  tu_rng r;
  tu_seed(&r, 4);
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(32, 48), CT_F32, -1, 1), *w[N];
  for (int i = 0; i < N; i++) {
    w[i] = tu_rand_tensor(&r, TU_SHAPE(48, 48), CT_F32, -0.25, 0.25);
    ct_requires_grad_(w[i], true);
  }
  ct_graph *gs[3];
  const char *mode[3] = {"store all", "sqrt(n) segments", "full recompute"};
  ct_tensor *grads[3][N];
  int64_t peak[3], act[3];
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < N; i++) ct_zero_grad(w[i]);
    gs[k] = ct_capture_begin(&x, 1);
    ct_tensor *loss = deep_step(x, w, N);
    cr_assert_eq(ct_capture_end(gs[k], &loss, 1), 0, "%s", ct_last_error());
    ct_release(loss);
    if (k) {
      ct_pass_opts o = {.full_recompute = k == 2};
      ct_pass_report rep;
      cr_assert_eq(ct_graph_optimize(gs[k], "checkpoint", &o, &rep), 0, "%s", ct_last_error());
      cr_assert_gt(rep.changes, 0, "%s", ct_graph_explain(gs[k], "checkpoint"));
      cr_assert_gt(rep.flops_after, rep.flops_before, "recomputation costs flops");
    }
    ct_plan_report pr;
    cr_assert_eq(ct_graph_plan_memory(gs[k], NULL, &pr), 0);
    cr_assert_eq(ct_graph_verify_plan(gs[k]), 0, "%s: %s", mode[k], ct_last_error());
    peak[k] = pr.planned_bytes;
    act[k] = pr.activation_peak;
    cr_assert_eq(ct_graph_replay(gs[k]), 0, "%s", ct_last_error());
    for (int i = 0; i < N; i++) grads[k][i] = ct_clone(w[i]->grad);
  }
  for (int k = 1; k < 3; k++)
    for (int i = 0; i < N; i++)
      cr_assert(same_bits(grads[k][i], grads[0][i]), "%s: gradient of layer %d differs by %g", mode[k], i + 1,
                max_diff(grads[k][i], grads[0][i]));
  cr_assert_lt(act[1] * 2, act[0], "sqrt(n) segments: activation peak %lld vs store-all %lld", (long long)act[1],
               (long long)act[0]);
  cr_assert_lt(peak[1], peak[0], "sqrt(n) segments: planned peak %lld vs store-all %lld", (long long)peak[1],
               (long long)peak[0]);
  cr_assert_lt(act[2], act[1], "full recompute: activation peak %lld vs sqrt(n) %lld", (long long)act[2], (long long)act[1]);
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < N; i++) ct_release(grads[k][i]);
    ct_graph_free(gs[k]);
  }
  for (int i = 0; i < N; i++) ct_release(w[i]);
  ct_release(x);
  assert_all_freed();
}

typedef struct {
  ct_tensor *w;
  int calls;
} block_ud;

static ct_tensor *block_run(void *ud, ct_tensor *const *in, int nin) {
  block_ud *b = ud;
  (void)nin;
  b->calls++;
  ct_tensor *z = ct_matmul(in[0], b->w), *a = ct_tanh(z), *y = ct_mul(a, in[0]);
  ct_release(z), ct_release(a);
  return y;
}

Test(checkpoint, eager_op_recomputes_and_matches_plain_gradients) {
  tu_rng r;
  tu_seed(&r, 8);
  ct_tensor *x0 = tu_rand_tensor(&r, TU_SHAPE(6, 6), CT_F64, -1, 1);
  ct_tensor *w = tu_rand_tensor(&r, TU_SHAPE(6, 6), CT_F64, -1, 1);
  ct_requires_grad_(w, true);
  ct_tensor *x = ct_clone(x0);
  ct_requires_grad_(x, true);
  block_ud ud = {w, 0};
  ct_tensor *plain = block_run(&ud, &x, 1), *lp = ct_sum(plain, NULL, 0, false);
  ct_backward(lp, NULL, false, false);
  ct_tensor *gx = ct_clone(x->grad), *gw = ct_clone(w->grad);
  ct_zero_grad(x), ct_zero_grad(w);
  ud.calls = 0;
  ct_tensor *ck = ct_checkpoint(block_run, NULL, &ud, &x, 1, &w, 1);
  cr_assert(ck, "%s", ct_last_error());
  cr_assert_eq(ud.calls, 1);
  cr_assert(same_bits(ck, plain));
  ct_tensor *lc = ct_sum(ck, NULL, 0, false);
  cr_assert_eq(ct_backward(lc, NULL, false, false), 0, "%s", ct_last_error());
  cr_assert_eq(ud.calls, 2, "backward recomputes the block once");
  cr_assert(same_bits(x->grad, gx), "x.grad differs by %g", max_diff(x->grad, gx));
  cr_assert(same_bits(w->grad, gw), "w.grad differs by %g", max_diff(w->grad, gw));
  /* a parameter the function uses but was not given is an error, not a lost gradient */
  ct_zero_grad(x), ct_zero_grad(w);
  ct_tensor *bad = ct_checkpoint(block_run, NULL, &ud, &x, 1, NULL, 0), *lb = ct_sum(bad, NULL, 0, false);
  cr_assert_eq(ct_backward(lb, NULL, false, false), -1);
  cr_assert(tu_error_has("was not given", NULL), "%s", ct_last_error());
  ct_tensor *all[] = {x0, w, x, plain, lp, gx, gw, ck, lc, bad, lb};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) ct_release(all[i]);
  /* the slots of the op are collected at the next checkpoint call */
  ct_tensor *y = ct_full(TU_SHAPE(2, 2), 1, CT_F64, ct_cpu()), *ww = ct_full(TU_SHAPE(2, 2), 1, CT_F64, ct_cpu());
  block_ud u2 = {ww, 0};
  ct_tensor *z = ct_checkpoint(block_run, NULL, &u2, &y, 1, NULL, 0);
  ct_release(z), ct_release(y), ct_release(ww);
  ct_tensor *y2 = ct_full(TU_SHAPE(2, 2), 1, CT_F64, ct_cpu());
  u2.w = y2;
  ct_tensor *z2 = ct_checkpoint(block_run, NULL, &u2, &y2, 1, NULL, 0);
  ct_release(z2), ct_release(y2);
}

/* ---- autotuning ---------------------------------------------------------------------------- */

Test(autotune, tiled_matmul_is_a_matmul_and_the_search_caches_its_best) {
  tu_rng r;
  tu_seed(&r, 2);
  ct_tensor *a = tu_rand_tensor(&r, TU_SHAPE(33, 20), CT_F64, -1, 1), *b = tu_rand_tensor(&r, TU_SHAPE(20, 17), CT_F64, -1, 1);
  ct_tensor *c = ct_matmul_tiled(a, b, 8, 5, 3), *want = ct_matmul(a, b);
  cr_assert_lt(max_diff(c, want), 1e-12);
  int bms[2] = {4, 16}, bns[2] = {8, 32};
  ct_tune_result res[4], best, cached;
  cr_assert(!ct_autotune_matmul_cached(40, 40, 40, CT_F32, &cached));
  cr_assert_eq(ct_autotune_matmul(40, 40, 40, CT_F32, bms, 2, bns, 2, 16, 2, res, &best), 0, "%s", ct_last_error());
  for (int i = 0; i < 4; i++) cr_assert_gt(res[i].us, 0);
  for (int i = 0; i < 4; i++) cr_assert_leq(best.us, res[i].us);
  cr_assert(ct_autotune_matmul_cached(40, 40, 40, CT_F32, &cached));
  cr_assert_eq(cached.bm, best.bm);
  cr_assert_eq(cached.bn, best.bn);
  ct_release(a), ct_release(b), ct_release(c), ct_release(want);
}

/* ---- errors --------------------------------------------------------------------------------- */

Test(capture, errors_name_what_went_wrong) {
  ct_tensor *x = ct_full(TU_SHAPE(2), 1, CT_F32, ct_cpu());
  ct_graph *g = ct_capture_begin(&x, 1);
  cr_assert_null(ct_capture_begin(&x, 1));
  cr_assert(tu_error_has("already running", NULL), "%s", ct_last_error());
  cr_assert_eq(ct_graph_optimize(g, "dce", NULL, NULL), -1, "optimize while capturing");
  ct_tensor *y = ct_exp(x);
  cr_assert_eq(ct_capture_end(g, &y, 1), 0);
  cr_assert_eq(ct_graph_optimize(g, "nope", NULL, NULL), -1);
  cr_assert(tu_error_has("unknown pass", "dce", NULL), "%s", ct_last_error());
  cr_assert_null(ct_graph_source(g, 0, "c"));
  cr_assert(tu_error_has("not a fused kernel", NULL), "%s", ct_last_error());
  ct_tensor *bad = ct_full(TU_SHAPE(3), 1, CT_F32, ct_cpu());
  cr_assert_eq(ct_assign_(x, bad), -1);
  cr_assert(tu_error_has("assign", "[3]", "[2]", NULL), "%s", ct_last_error());
  ct_release(bad), ct_release(y), ct_release(x);
  ct_graph_free(g);
  assert_all_freed();
}
