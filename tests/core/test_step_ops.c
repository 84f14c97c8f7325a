/* test_step_ops.c: the training step's fused rows on the CPU: linear (y = x W^T + b) and gelu_bwd
 * against finite differences in f64 (double backward too) and against their unfused graphs, shape
 * errors, and sgd_multi captured by chalk.capture as one node writing every parameter and buffer
 * (reads after it see the new values; replay repeats the update). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "chalk.h"
#include "gradcheck.h"
#include "graph/capture.h"
#include "ops/optable.h"
#include "testutil.h"

static ct_tensor *linear_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_linear(in[0], in[1], in[2]);
}
static ct_tensor *gelu_bwd_call(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  ct_tensor *x[2] = {in[0], in[1]};
  return ct_op_run(CT_OP_gelu_bwd, x, 2, NULL);
}

Test(step_ops, linear_gradients_match_finite_differences) {
  static const struct {
    int nx;
    int64_t x[3], n;
  } cases[] = {{2, {3, 4}, 5}, {3, {2, 3, 4}, 2}, {1, {4}, 3}, {2, {1, 1}, 1}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char op[64], s[64];
    int64_t K = cases[k].x[cases[k].nx - 1];
    snprintf(op, sizeof op, "linear x %s, N %lld", ct_shape_str(cases[k].x, cases[k].nx, s, sizeof s),
             (long long)cases[k].n);
    gc_case c = {.op = op, .fn = linear_call, .nin = 3, .seed = 70 + k, .gradgrad = true};
    gc_set_shape(&c.in[0], cases[k].x, cases[k].nx);
    GC_IN_SHAPE(&c.in[1], cases[k].n, K);
    GC_IN_SHAPE(&c.in[2], cases[k].n);
    GC_ASSERT(&c);
  }
}

Test(step_ops, linear_equals_matmul_plus_bias) {
  tu_rng r;
  tu_seed(&r, 5);
  for (int dt = 0; dt < 2; dt++) {
    ct_dtype d = dt ? CT_F64 : CT_F32;
    ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(2, 7, 33), d, -2, 2), *w = tu_rand_tensor(&r, TU_SHAPE(9, 33), d, -1, 1);
    ct_tensor *b = tu_rand_tensor(&r, TU_SHAPE(9), d, -1, 1), *wt = ct_transpose(w, 0, 1);
    ct_tensor *mm = ct_matmul(x, wt), *want = ct_add(mm, b), *got = ct_linear(x, w, b);
    cr_assert(got, "%s", ct_last_error());
    cr_assert_eq(got->ndim, 3);
    cr_assert_eq(got->shape[2], 9);
    ct_tensor *diff = ct_sub(got, want), *ad = ct_abs(diff), *mx = ct_max(ad, NULL, 0, false);
    double e;
    ct_item(mx, &e);
    cr_assert(e < (dt ? 1e-12 : 1e-5), "linear vs matmul + bias (%s): max difference %g", ct_dtype_name(d), e);
    ct_release(x), ct_release(w), ct_release(b), ct_release(wt), ct_release(mm), ct_release(want), ct_release(got);
    ct_release(diff), ct_release(ad), ct_release(mx);
  }
}

Test(step_ops, linear_refuses_shapes_that_do_not_fit) {
  ct_tensor *x = ct_zeros(TU_SHAPE(3, 4), CT_F32, ct_cpu()), *w = ct_zeros(TU_SHAPE(5, 3), CT_F32, ct_cpu());
  ct_tensor *b = ct_zeros(TU_SHAPE(5), CT_F32, ct_cpu());
  cr_assert_null(ct_linear(x, w, b));
  cr_assert(tu_error_has("linear", "[3,4]", "[5,3]", NULL), "%s", ct_last_error());
  ct_release(x), ct_release(w), ct_release(b);
}

Test(step_ops, gelu_bwd_gradients_and_gelu_backward_equal_the_two_op_graph) {
  gc_case c = {.op = "gelu_bwd", .fn = gelu_bwd_call, .nin = 2, .seed = 11, .gradgrad = true};
  GC_IN_SHAPE(&c.in[0], 4, 5);
  GC_IN_SHAPE(&c.in[1], 4, 5);
  GC_ASSERT(&c);
  /* gelu's backward (now gelu_bwd) equals g * gelu_grad(x) bit for bit */
  tu_rng r;
  tu_seed(&r, 3);
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(6, 7), CT_F32, -3, 3),
            *g = tu_rand_tensor(&r, TU_SHAPE(6, 7), CT_F32, -1, 1);
  ct_tensor *in[2] = {g, x};
  ct_tensor *one = ct_op_run(CT_OP_gelu_bwd, in, 2, NULL), *gg = ct_op_run(CT_OP_gelu_grad, &x, 1, NULL);
  ct_tensor *two = ct_mul(g, gg);
  cr_assert(one && two && !memcmp(ct_data_ptr(one), ct_data_ptr(two), 42 * sizeof(float)),
            "gelu_bwd differs from g * gelu_grad(x)");
  ct_release(x), ct_release(g), ct_release(one), ct_release(gg), ct_release(two);
}

/* A captured step: p1 and p2 updated by one sgd_multi, then p2 read (the capture must see the new
   p2). Replay must repeat the update and the read. */
Test(step_ops, sgd_multi_is_one_captured_node_writing_every_tensor) {
  ct_tensor *p1 = ct_full(TU_SHAPE(3), 1.0, CT_F32, ct_cpu()), *p2 = ct_full(TU_SHAPE(2, 2), 1.0, CT_F32, ct_cpu());
  ct_tensor *b1 = ct_zeros(TU_SHAPE(3), CT_F32, ct_cpu()), *b2 = ct_zeros(TU_SHAPE(2, 2), CT_F32, ct_cpu());
  ct_tensor *g1 = ct_full(TU_SHAPE(3), 1.0, CT_F32, ct_cpu()), *g2 = ct_full(TU_SHAPE(2, 2), 1.0, CT_F32, ct_cpu());
  ct_tensor *ps[2] = {p1, p2}, *bs[2] = {b1, b2}, *gs[2] = {g1, g2};
  ct_graph *gr = ct_capture_begin(NULL, 0);
  cr_assert(gr, "%s", ct_last_error());
  cr_assert_eq(ct_sgd_multi_(ps, bs, gs, 2, 0.5, 0.9, 0, 0, false, false), 0, "%s", ct_last_error());
  ct_tensor *after = ct_mul_scalar(p2, 2); /* reads the updated p2 */
  cr_assert_eq(ct_capture_end(gr, &after, 1), 0, "%s", ct_last_error());
  int found = -1;
  for (int i = 0; i < ct_graph_nnodes(gr); i++) {
    ct_gnode_info in;
    ct_graph_node(gr, i, &in);
    if (!strcmp(in.name, "sgd_multi")) {
      found = i;
      cr_assert_eq(in.nout, 4, "sgd_multi writes p1, p2, b1, b2: %d outputs", in.nout);
      for (int k = 0; k < 4; k++) {
        ct_gvalue_info vi;
        ct_graph_value(gr, in.in[k], &vi);
        cr_assert(vi.written, "input %d of sgd_multi is not marked written", k + 1);
      }
    }
  }
  cr_assert(found >= 0, "no sgd_multi node");
  /* eager: buf = 0.9*0 + 1 = 1; p = 1 - 0.5 = 0.5, so after = 1. Replay: buf = 1.9, p = 0.5 - 0.95 */
  float *pv = ct_data_ptr(p2), *bv = ct_data_ptr(b2);
  cr_assert_float_eq(pv[0], 0.5f, 1e-7);
  cr_assert_eq(ct_graph_replay(gr), 0, "%s", ct_last_error());
  cr_assert_float_eq(bv[3], 1.9f, 1e-6);
  cr_assert_float_eq(pv[3], 0.5f - 0.95f, 1e-6);
  ct_tensor *out = ct_graph_output(gr, 0);
  cr_assert_float_eq(((float *)ct_data_ptr(out))[1], 2 * (0.5f - 0.95f), 1e-6, "the read after the update is stale");
  ct_release(out);
  ct_release(after);
  ct_graph_free(gr);
  ct_release(p1), ct_release(p2), ct_release(b1), ct_release(b2), ct_release(g1), ct_release(g2);
}
