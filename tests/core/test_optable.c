/* test_optable.c: the op row as the single source of truth: gradient formulas and expressions read
 * from the rows, every elementwise row fused bit for bit like its own CPU loop (silu included,
 * the op added through core/ops/elementwise_defs.h), and the implementations column: matmul's
 * rungs chosen by name, run through ct_op_run (events with cost, autograd, capture), listed, and
 * an unknown name refused with the row's list. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "graph/capture.h"
#include "obs/events.h"
#include "testutil.h"

Test(optable, gradient_formulas_come_from_the_rows) {
  cr_assert_str_eq(ct_op_grad_formula("softmax"), "dx = y*(g - sum(g*y, dim))");
  cr_assert_str_eq(ct_op_grad_formula("mul"), "da = g*b; db = g*a");
  char buf[64];
  cr_assert_str_eq(ct_op_grad_formula_input("mul", 0, buf, sizeof buf), "g*b");
  cr_assert_str_eq(ct_op_grad_formula_input("mul", 1, buf, sizeof buf), "g*a");
  cr_assert_str_eq(ct_op_grad_formula_input("matmul", 1, buf, sizeof buf), "A^T @ g");
  cr_assert_str_eq(ct_op_grad_formula_input("exp", 0, buf, sizeof buf), "g*y");
  cr_assert_null(ct_op_grad_formula_input("exp", 1, buf, sizeof buf));
  cr_assert_null(ct_op_grad_formula("argmax"));
  cr_assert_null(ct_op_grad_formula("no_such_op"));
  cr_assert_str_eq(ct_op_expr("relu"), "x > 0 ? x : 0");
  cr_assert_str_eq(ct_op_expr("silu"), "x / (1 + EXP(-x))");
  cr_assert_null(ct_op_expr("matmul"));
}

Test(optable, the_listing_shows_formulas_expressions_and_implementations) {
  static char text[1 << 16];
  size_t n = ct_op_list(text, sizeof text);
  cr_assert(n > 0 && n < sizeof text);
  cr_assert(strstr(text, "dx = y*(g - sum(g*y, dim))"), "softmax's gradient is listed");
  cr_assert(strstr(text, "y = x / (1 + EXP(-x))"), "silu's expression is listed");
  cr_assert(strstr(text, "impl tiled"), "matmul's tiled rung is listed");
  cr_assert(strstr(text, "impl blas"), "matmul's default is listed under its name");
}

/* Each elementwise row, captured and fused into one kernel with an exp after it, replays bit for
   bit what the eager ops computed, and its C source spells the row's expression for f32. */
static void fuse_matches(const char *name, ct_tensor *(*fn)(ct_tensor *), const char *spelled) {
  tu_rng r;
  tu_seed(&r, 11);
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(9, 31), CT_F32, -3, 3);
  ct_tensor *w1 = fn(x), *want = ct_exp(w1);
  ct_graph *g = ct_capture_begin(&x, 1);
  ct_tensor *h = fn(x), *y = ct_exp(h);
  cr_assert_eq(ct_capture_end(g, &y, 1), 0, "%s", ct_last_error());
  ct_pass_report rep;
  cr_assert_eq(ct_graph_optimize(g, "fuse", NULL, &rep), 0, "%s", ct_last_error());
  cr_assert_eq(rep.kernels_after, 1, "%s: %s", name, ct_graph_explain(g, "fuse"));
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *got = ct_graph_output(g, 0);
  cr_assert(!memcmp(ct_data_ptr(got), ct_data_ptr(want), (size_t)ct_numel(want) * 4), "%s: fused differs", name);
  const char *src = ct_graph_source(g, 0, "c");
  cr_assert(src && strstr(src, spelled), "%s: source lacks \"%s\":\n%s", name, spelled, src);
  ct_release(got), ct_release(h), ct_release(y), ct_release(w1), ct_release(want), ct_release(x);
  ct_graph_free(g);
}

Test(optable, fused_rows_replay_their_own_expression) {
  fuse_matches("silu", ct_silu, "/ (1 + expf(-");
  fuse_matches("gelu", ct_gelu, "0.70710678118654752f");
  fuse_matches("sigmoid", ct_sigmoid, "1 / (1 + expf(-");
  fuse_matches("tanh", ct_tanh, "tanhf(");
}

static double max_abs_diff(ct_tensor *a, ct_tensor *b) {
  ct_tensor *d = ct_sub(a, b), *m = d ? ct_abs(d) : NULL;
  ct_tensor *mx = m ? ct_max(m, NULL, 0, false) : NULL;
  double v = 1e30;
  if (!mx || ct_item(mx, &v)) v = 1e30;
  ct_release(d), ct_release(m), ct_release(mx);
  return v;
}

Test(optable, every_cpu_matmul_rung_runs_through_the_op_table) {
  tu_rng r;
  tu_seed(&r, 3);
  ct_tensor *a = tu_rand_tensor(&r, TU_SHAPE(37, 19), CT_F64, -1, 1), *b = tu_rand_tensor(&r, TU_SHAPE(19, 45), CT_F64, -1, 1);
  ct_requires_grad_(a, true);
  ct_tensor *ref = ct_matmul(a, b);
  const char *rungs[] = {"blas", "naive", "reordered", "tiled"};
  for (int i = 0; i < 4; i++) {
    ct_events_start();
    const int tiles[3] = {8, 16, 4};
    ct_tensor *c = ct_matmul_impl(a, b, rungs[i], i == 3 ? tiles : NULL);
    ct_events_stop();
    cr_assert_not_null(c, "%s: %s", rungs[i], ct_last_error());
    cr_assert_lt(max_abs_diff(c, ref), 1e-12, "%s", rungs[i]);
    /* an op event with matmul's cost, named for the rung */
    char want[32];
    snprintf(want, sizeof want, "matmul[%s]", rungs[i]);
    bool found = false;
    for (size_t k = 0; k < ct_events_count(); k++) {
      const ct_event *e = ct_events_get(k);
      if (e->kind == CT_EV_OP && !strcmp(e->name, want) && e->flops == 2.0 * 37 * 19 * 45) found = true;
    }
    cr_assert(found, "no op event %s with 2MNK flops", want);
    /* autograd: the node was recorded like any matmul */
    cr_assert_not_null(c->grad_fn, "%s records a node", rungs[i]);
    ct_tensor *s = ct_sum(c, NULL, 0, false);
    cr_assert_eq(ct_backward(s, NULL, false, false), 0, "%s", ct_last_error());
    cr_assert_not_null(a->grad);
    ct_release(s), ct_release(c);
    ct_zero_grad(a);
  }
  /* a non-contiguous operand is copied for a rung */
  ct_tensor *bt = ct_transpose(b, 0, 1), *btt = ct_contiguous(bt), *bv = ct_transpose(btt, 0, 1);
  ct_tensor *c = ct_matmul_impl(a, bv, "tiled", NULL);
  cr_assert_not_null(c, "%s", ct_last_error());
  cr_assert_lt(max_abs_diff(c, ref), 1e-12);
  ct_release(c), ct_release(bt), ct_release(btt), ct_release(bv), ct_release(ref), ct_release(a), ct_release(b);
  ct_events_clear();
}

Test(optable, an_unknown_implementation_lists_the_row) {
  int64_t s[2] = {3, 3};
  ct_tensor *a = ct_full(s, 2, 1.0, CT_F32, ct_cpu());
  cr_assert_null(ct_matmul_impl(a, a, "fastest", NULL));
  cr_assert(strstr(ct_last_error(), "unknown impl 'fastest'"), "%s", ct_last_error());
  cr_assert(strstr(ct_last_error(), "naive (cpu), reordered (cpu), tiled (cpu)"), "%s", ct_last_error());
  ct_release(a);
}

Test(optable, a_captured_rung_replays_with_its_implementation) {
  tu_rng r;
  tu_seed(&r, 4);
  ct_tensor *a = tu_rand_tensor(&r, TU_SHAPE(16, 200), CT_F32, -1, 1), *b = tu_rand_tensor(&r, TU_SHAPE(200, 12), CT_F32, -1, 1);
  ct_tensor *in[2] = {a, b};
  ct_tensor *eager = ct_matmul_impl(a, b, "naive", NULL);
  ct_graph *g = ct_capture_begin(in, 2);
  ct_tensor *c = ct_matmul_impl(a, b, "naive", NULL);
  cr_assert_eq(ct_capture_end(g, &c, 1), 0, "%s", ct_last_error());
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *got = ct_graph_output(g, 0), *blas = ct_matmul(a, b);
  /* the naive loop's sums, bit for bit (BLAS orders its additions otherwise) */
  cr_assert(!memcmp(ct_data_ptr(got), ct_data_ptr(eager), 16 * 12 * 4), "replay ran another implementation");
  cr_assert_lt(max_abs_diff(got, blas), 1e-4);
  ct_release(got), ct_release(blas), ct_release(eager), ct_release(c), ct_release(a), ct_release(b);
  ct_graph_free(g);
}

Test(optable, autotune_picks_among_the_rows_implementations) {
  ct_tune_impl rows[8];
  const char *best = NULL;
  int n = ct_autotune_matmul_impl(48, 40, 32, CT_F32, ct_cpu(), 1, rows, 8, &best);
  cr_assert_eq(n, 4, "blas, naive, reordered, tiled: %d (%s)", n, ct_last_error());
  cr_assert_not_null(best);
  double fastest = rows[0].us;
  for (int i = 0; i < n; i++) {
    cr_assert_gt(rows[i].us, 0, "%s was timed", rows[i].impl);
    if (rows[i].us < fastest) fastest = rows[i].us;
  }
  for (int i = 0; i < n; i++)
    if (!strcmp(rows[i].impl, best)) cr_assert_eq(rows[i].us, fastest, "the fastest is picked");
}
