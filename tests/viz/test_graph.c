/* test_graph.c: viz.graph's DOT text: golden text for lesson 2's graph (deterministic ids and
 * order), gradients "not computed" before backward and their values after, the backward graph
 * with its dashed links, module clusters, folded repeats, the node limit, viz.step's frames. */
#include <criterion/criterion.h>

#include "vizutil.h"

/* Compares text with tests/viz/golden/<name>; on a mismatch writes the text beside the outputs
   so the difference can be read (and the golden file updated deliberately). */
static void check_golden(const char *name, const char *text) {
  char gpath[512];
  snprintf(gpath, sizeof gpath, "%s/golden/%s", getenv("VIZ_TEST_DIR") ? getenv("VIZ_TEST_DIR") : "tests/viz", name);
  char *want = vt_read(gpath, NULL);
  if (!want || strcmp(want, text)) {
    FILE *f = fopen(vt_path(name), "w");
    if (f) fputs(text, f), fclose(f);
  }
  cr_assert(want, "golden file %s is missing (the current text is in %s)", gpath, vt_path(name));
  cr_expect_str_eq(text, want, "DOT text differs from %s (current text written to %s)", gpath, vt_path(name));
  free(want);
}

/* Lesson 2's graph f(x1, x2), built before each test that takes the fixture and released after. */
static ct_tensor *x1, *x2, *f;
static void build_autodiff(void) {
  f = vt_autodiff(&x1, &x2);
  cr_assert(f, "%s", ct_last_error());
}
static void release_autodiff(void) { ct_release(f), ct_release(x1), ct_release(x2); }
#define AUTODIFF .init = build_autodiff, .fini = release_autodiff

Test(graph, golden_forward_before_backward, AUTODIFF) {
  char *dot = vt_graph_dot(f, NULL);
  cr_assert(dot, "%s", ct_last_error());
  check_golden("autodiff_forward.dot", dot);
  /* the same graph gives the same text */
  char *again = vt_graph_dot(f, NULL);
  cr_expect_str_eq(dot, again);
  free(dot), free(again);
}

Test(graph, golden_backward_after_backward) {
  ct_set_retain_all_grads(true);
  build_autodiff();
  cr_assert_eq(ct_backward(f, NULL, false, false), 0, "%s", ct_last_error());
  ct_set_retain_all_grads(false);
  viz_graph_opts o = {.backward = true};
  char *dot = vt_graph_dot(f, &o);
  cr_assert(dot, "%s", ct_last_error());
  check_golden("autodiff_backward.dot", dot);
  free(dot);
  release_autodiff();
}

Test(graph, not_computed_before_backward_values_after, AUTODIFF) {
  char *before = vt_graph_dot(f, NULL);
  cr_assert(before);
  cr_expect_eq(vt_count(before, "grad: not computed"), 7, "every node that requires grad says not computed:\n%s", before);
  cr_expect_null(strstr(before, "grad 0"), "a missing gradient must never read 0");
  cr_expect(strstr(before, "data 11.65"), "f's value is shown");
  cr_expect(strstr(before, "data 0.6931"), "ln 2 is shown");
  cr_assert_eq(ct_backward(f, NULL, true, false), 0, "%s", ct_last_error());
  char *after = vt_graph_dot(f, NULL);
  cr_assert(after);
  cr_expect(strstr(after, "grad 5.5"), "df/dx1 = 5.5 shown:\n%s", after);
  cr_expect(strstr(after, "grad 1.716"), "df/dx2 = 1.716 shown");
  cr_expect(strstr(after, "not retained"), "intermediates without retained grads say so");
  cr_expect_null(strstr(after, "grad: not computed"), "after backward nothing reads 'not computed'");
  free(before), free(after);
}

Test(graph, after_backward_the_structure_stays_and_saved_tensors_read_freed, AUTODIFF) {
  /* f not drawn before backward: viz's memory would hold a..d */
  cr_assert_eq(ct_backward(f, NULL, false, false), 0);
  char *dot = vt_graph_dot(f, NULL);
  cr_assert(dot);
  cr_expect_eq(vt_count(dot, "[id=\"n"), 7, "every node is still drawn (2 leaves, 5 ops):\n%s", dot);
  cr_expect_eq(vt_count(dot, "saved tensor freed</I>"), 4, "a, b, c and their sum lost their values");
  cr_expect_eq(vt_count(dot, "<B>x1</B>"), 1, "the whole graph, not just its root");
  cr_expect(strstr(dot, "grad 5.5") && strstr(dot, "grad 1.716"), "the leaves' gradients");
  cr_expect(strstr(dot, "saved tensor freed by backward"), "the freed style is in the legend");
  cr_expect(strstr(dot, "the saved tensors are freed"));
  cr_expect_neq(ct_backward(f, NULL, false, false), 0, "a second backward without retain_graph still fails");
  cr_expect(strstr(ct_last_error(), "retain_graph=true"), "%s", ct_last_error());
  free(dot);
}

Test(graph, after_backward_backward_picture_and_step_draw_the_whole_graph, AUTODIFF) {
  char *before = vt_graph_dot(f, NULL);
  cr_assert(before);
  cr_assert_eq(ct_backward(f, NULL, false, false), 0);
  viz_graph_opts o = {.backward = true};
  char *after = vt_graph_dot(f, &o);
  cr_assert(after);
  cr_expect(strstr(after, "grad 5.5") && strstr(after, "grad 1.716"), "leaf gradients after backward");
  cr_expect_eq(vt_count(after, "<B>x1</B>"), 1, "the whole graph, not just its root");
  cr_expect(strstr(after, "grad of"), "the backward twins are drawn");
  viz_graph *g = viz_graph_build(f, NULL);
  cr_assert(g);
  cr_expect_eq(viz_graph_step_prepare(g), 0, "stepping after backward: %s", ct_last_error());
  cr_expect_eq(viz_graph_step_count(g), 2 * 5 + 1, "one forward and one backward frame per op, and the end");
  viz_graph_free(g);
  free(before), free(after);
}

Test(graph, backward_cluster_and_dashed_links, AUTODIFF) {
  viz_graph_opts o = {.backward = true};
  char *dot = vt_graph_dot(f, &o);
  cr_assert(dot);
  cr_expect(strstr(dot, "subgraph cluster_backward"));
  cr_expect(strstr(dot, "subgraph cluster_forward"));
  /* one gradient node per op and per leaf that requires grad, each linked to its node */
  cr_expect_eq(vt_count(dot, "grad of "), 7, "%s", dot);
  cr_expect_eq(vt_count(dot, "style=dashed"), 7);
  cr_expect(strstr(dot, "label=\"g*b\""), "mul's rule labels the edge to its first input");
  cr_expect(strstr(dot, "label=\"-g\""), "sub's rule for its second input");
  cr_expect(strstr(dot, "seed: ones"));
  free(dot);
}

Test(graph, roles_scopes_and_legend) {
  ct_tensor *loss = vt_mlp(2, 4, 3, 8, 2);
  char *dot = vt_graph_dot(loss, NULL);
  cr_assert(dot);
  cr_expect(strstr(dot, "label=\"layers.0\""), "a cluster for module layers.0");
  cr_expect(strstr(dot, "label=\"layers.2\""), "a cluster for module layers.2");
  cr_expect(strstr(dot, "<B>layers.0.weight</B>"), "parameters by their names");
  cr_expect(strstr(dot, viz_tint(VIZ_PARAMETER)), "parameters in the parameter colour");
  cr_expect(strstr(dot, viz_tint(VIZ_INPUT)), "the input in the input colour");
  cr_expect(strstr(dot, "(view)"), "the transpose is marked as a view");
  cr_expect(strstr(dot, "parameter / requires grad"), "legend");
  cr_expect(strstr(dot, "f32[4,8] cpu"), "op nodes show dtype, shape, device");
  free(dot);
  ct_release(loss);
}

Test(graph, fold_repeats_and_node_limit) {
  ct_tensor *loss = vt_mlp(6, 4, 3, 8, 2);
  viz_graph_opts o = {.collapse = 1};
  char *dot = vt_graph_dot(loss, &o);
  cr_assert(dot);
  cr_expect(strstr(dot, "layers.4 ... layers.8"), "identical middle layers folded:\n%s", dot);
  cr_expect(strstr(dot, "3 more like layers.2"));
  free(dot);
  viz_graph_opts lim = {.max_nodes = 12, .collapse = -1};
  dot = vt_graph_dot(loss, &lim);
  cr_assert(dot);
  cr_expect(strstr(dot, "more nodes"), "a summary of what was left out");
  cr_expect(strstr(dot, "left out: over max_nodes=12"));
  cr_expect(strstr(dot, "showing 11 of 38 nodes"), "%s", dot);
  cr_expect(strstr(dot, "loss</B> = mean"), "the output is always kept");
  free(dot);
  viz_graph_opts none = {.collapse = -1};
  dot = vt_graph_dot(loss, &none);
  cr_expect_null(strstr(dot, "folded"), "collapse=false draws every node");
  cr_expect_eq(vt_count(dot, "<B>matmul</B>"), 6);
  free(dot);
  ct_release(loss);
}

Test(graph, big_graphs_fold_by_themselves) {
  ct_tensor *small = vt_mlp(6, 4, 3, 8, 2), *big = vt_mlp(12, 4, 3, 8, 2); /* 38 and 74 nodes */
  char *dot = vt_graph_dot(small, NULL);
  cr_assert(dot);
  cr_expect_eq(vt_count(dot, "<B>matmul</B>"), 6, "38 nodes (under VIZ_AUTO_FOLD=%d) are drawn whole", VIZ_AUTO_FOLD);
  free(dot);
  dot = vt_graph_dot(big, NULL);
  cr_assert(dot);
  cr_expect(strstr(dot, "more like layers."), "74 nodes fold their repeated layers:\n%s", dot);
  cr_expect_lt(vt_count(dot, "<B>matmul</B>"), 12);
  free(dot);
  viz_graph_opts bwd = {.backward = true};
  dot = vt_graph_dot(small, &bwd);
  cr_assert(dot);
  cr_expect(strstr(dot, "more like layers."), "with the backward twins 38 nodes fold too");
  free(dot);
  viz_graph_opts none = {.collapse = -1};
  dot = vt_graph_dot(big, &none);
  cr_assert(dot);
  cr_expect_eq(vt_count(dot, "<B>matmul</B>"), 12, "collapse=false draws every layer");
  free(dot);
  ct_release(small), ct_release(big);
}

Test(graph, step_frames, AUTODIFF) {
  viz_graph *g = viz_graph_build(f, NULL);
  cr_assert(g);
  cr_assert_eq(viz_graph_step_prepare(g), 0, "%s", ct_last_error());
  cr_assert_eq(viz_graph_step_count(g), 11, "5 forward, 5 backward, 1 done");
  char cap[400];
  viz_buf b = {0};
  cr_assert_eq(viz_graph_step_dot(g, 0, &b, cap, sizeof cap), 0);
  cr_expect_str_eq(cap, "forward 1/5: log(x1) -> a");
  cr_expect(strstr(b.s, viz_hex(VIZ_CURRENT)), "the current node is lit");
  cr_expect(strstr(b.s, "data ?"), "values not yet computed are hidden");
  viz_buf_free(&b);
  cr_assert_eq(viz_graph_step_dot(g, 5, &b, cap, sizeof cap), 0);
  cr_expect(strstr(cap, "backward 1/5: grad of f"), "%s", cap);
  viz_buf_free(&b);
  cr_assert_eq(viz_graph_step_dot(g, 10, &b, cap, sizeof cap), 0);
  cr_expect(strstr(b.s, "5.5"), "the last frame shows df/dx1");
  cr_expect(strstr(b.s, "1.716"));
  cr_expect_null(strstr(b.s, "not computed yet"));
  viz_buf_free(&b);
  cr_expect_neq(viz_graph_step_dot(g, 11, &b, cap, sizeof cap), 0, "frame out of range is an error");
  viz_buf_free(&b);
  viz_graph_free(g);
  /* .grad of the leaves is untouched by stepping */
  cr_expect_null(x1->grad);
}

Test(graph, step_after_backward_shows_the_leaves_gradients, AUTODIFF) {
  cr_assert_eq(ct_backward(f, NULL, false, false), 0);
  viz_graph *g = viz_graph_build(f, NULL);
  cr_assert(g);
  viz_buf b = {0};
  char cap[320];
  cr_assert_eq(viz_graph_step_dot(g, 2 * 5, &b, cap, sizeof cap), 0, "%s", ct_last_error());
  cr_expect(strstr(cap, "done"), "%s", cap);
  cr_expect(strstr(b.s, "grad 5.5") && strstr(b.s, "grad 1.716"), "the last frame shows the leaves' .grad");
  viz_buf_free(&b);
  viz_graph_free(g);
}

/* graph/inspect.h: what viz reads of a node, without the op table or struct ct_node */
Test(graph, inspect_nodes, AUTODIFF) {
  ct_node_info info;
  ct_node_inspect(f->grad_fn, &info);
  cr_expect_str_eq(info.op_name, "sub");
  cr_expect_eq(info.op, ct_node_op(f->grad_fn));
  cr_expect_eq(info.ninputs, 2);
  cr_expect(info.elementwise && !info.view && !info.freed && !info.backward);
  cr_expect_eq(info.out_ndim, f->ndim);
  cr_expect_eq(info.out_dtype, f->dtype);
  cr_expect_str_eq(info.grad_formula, "da = g; db = -g", "the row's gradient formula");
  ct_node_inspect(NULL, &info);
  cr_expect_eq(info.op, -1);
  cr_expect_null(info.op_name);
  cr_expect(!ct_op_is_view(-1) && !ct_op_is_elementwise(ct_op_count()));
  int views = 0;
  for (int op = 0; op < ct_op_count(); op++) views += ct_op_is_view(op);
  cr_expect_gt(views, 2, "transpose, view, expand... are views");
}
