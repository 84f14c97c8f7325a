/* test_axpby.c: ct_axpby_ (y <- a y + b x in place, the optimizers' one-pass update): torch's
 * rounding (each product rounded to the dtype, then the sum), broadcasting, strided y, dtype
 * conversion of x, errors, and that chalk.capture records it as an in-place node whose replay
 * repeats the update. */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/capture_internal.h" /* white-box: reads graph internals */
#include "chalk.h"
#include "testutil.h"

static void assert_all_freed(void) {
  ct_mem_stats s;
  ct_mem_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
}

Test(axpby, f32_rounds_like_torch_and_broadcasts_x) {
  tu_rng r;
  tu_seed(&r, 1);
  ct_tensor *y = tu_rand_tensor(&r, TU_SHAPE(5, 7), CT_F32, -3, 3), *x = tu_rand_tensor(&r, TU_SHAPE(7), CT_F32, -3, 3);
  double *y0 = tu_values(y), *x0 = tu_values(x), want[35];
  const double a = 0.9, b = -0.01; /* neither is a float: each is rounded to f32 first */
  for (int i = 0; i < 35; i++) {
    float ay = (float)a * (float)y0[i], bx = (float)b * (float)x0[i % 7];
    want[i] = (float)(ay + bx);
  }
  cr_assert_eq(ct_axpby_(y, a, x, b), 0, "%s", ct_last_error());
  char msg[512];
  cr_assert(tu_compare("axpby f32", y, want, 35, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  free(y0), free(x0);
  ct_release(y), ct_release(x);
  assert_all_freed();
}

Test(axpby, strided_f64_y_and_a_converted_x) {
  tu_rng r;
  tu_seed(&r, 2);
  ct_tensor *base = tu_rand_tensor(&r, TU_SHAPE(4, 6), CT_F64, -1, 1);
  ct_tensor *y = ct_transpose(base, 0, 1); /* 6 x 4, strides (1, 6): written through the view */
  ct_tensor *x = tu_rand_tensor(&r, TU_SHAPE(6, 4), CT_F32, -1, 1);
  double *y0 = tu_values(y), *x0 = tu_values(x), want[24];
  for (int i = 0; i < 24; i++) want[i] = 2.0 * y0[i] + 0.5 * x0[i];
  cr_assert_eq(ct_axpby_(y, 2.0, x, 0.5), 0, "%s", ct_last_error());
  char msg[512];
  cr_assert(tu_compare("axpby f64 view", y, want, 24, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  double *b1 = tu_values(base); /* the base sees the update at the transposed positions */
  cr_assert_eq(b1[1 * 6 + 2], want[2 * 4 + 1]);
  free(y0), free(x0), free(b1);
  ct_release(y), ct_release(x), ct_release(base);
  assert_all_freed();
}

Test(axpby, refuses_a_shape_that_does_not_broadcast_to_y) {
  ct_tensor *y = ct_zeros(TU_SHAPE(5, 7), CT_F32, ct_cpu()), *x = ct_zeros(TU_SHAPE(3), CT_F32, ct_cpu());
  cr_assert_eq(ct_axpby_(y, 1, x, 1), -1);
  cr_assert(tu_error_has("axpby", "[3]", "[5,7]", NULL), "%s", ct_last_error());
  ct_tensor *xs = ct_zeros(TU_SHAPE(5, 7, 2), CT_F32, ct_cpu());
  cr_assert_eq(ct_axpby_(y, 1, xs, 1), -1, "x may broadcast to y, never y to x");
  ct_tensor *yi = ct_zeros(TU_SHAPE(3), CT_I64, ct_cpu());
  cr_assert_eq(ct_axpby_(yi, 1, x, 1), -1, "integer y");
  ct_release(y), ct_release(x), ct_release(xs), ct_release(yi);
  assert_all_freed();
}

Test(axpby, capture_records_it_in_place_and_replay_repeats_it) {
  tu_rng r;
  tu_seed(&r, 3);
  ct_tensor *y = tu_rand_tensor(&r, TU_SHAPE(8, 3), CT_F32, -1, 1), *x = tu_rand_tensor(&r, TU_SHAPE(8, 3), CT_F32, -1, 1);
  ct_tensor *ye = ct_clone(y);
  ct_tensor *ins[2] = {y, x};
  ct_graph *g = ct_capture_begin(ins, 2);
  cr_assert(g, "%s", ct_last_error());
  cr_assert_eq(ct_axpby_(y, 0.5, x, 2.0), 0, "%s", ct_last_error());
  cr_assert_eq(ct_capture_end(g, &y, 1), 0, "%s", ct_last_error());
  int found = 0;
  for (int i = 0; i < g->nn; i++) found += g->n[i].op == CT_OP_axpby && ct_gop_is_inplace(g->n[i].op);
  cr_assert_eq(found, 1, "one in-place axpby node");
  for (int step = 0; step < 3; step++) { /* eager: the update three times; captured: once, then replayed twice */
    cr_assert_eq(ct_axpby_(ye, 0.5, x, 2.0), 0, "%s", ct_last_error());
    if (step) cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  }
  char msg[512];
  cr_assert(tu_compare_tensors("replayed axpby", ct_graph_input(g, 0), ye, 0, 0, msg, sizeof msg) == 0, "%s", msg);
  ct_graph_free(g);
  ct_release(y), ct_release(x), ct_release(ye);
  assert_all_freed();
}
