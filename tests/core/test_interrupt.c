/* test_interrupt.c: the interrupt flag (Ctrl-C) stops backward, batched matmul and capture replay
 * with "interrupted", leaving grad mode, the graph's tensors and the live counts consistent; and
 * the version counter of saved tensors from C (views and detach share it; ct_set bumps it). */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/capture.h"
#include "testutil.h"

static void assert_all_freed(void) {
  ct_mem_stats s;
  ct_mem_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
  cr_assert_eq(s.live_nodes, 0, "%lld autograd nodes still alive", (long long)s.live_nodes);
}

static ct_tensor *chain(ct_tensor *x, int n) {
  ct_tensor *y = ct_retain(x);
  for (int i = 0; i < n; i++) {
    ct_tensor *z = ct_mul_scalar(y, 1.0001);
    ct_release(y);
    y = z;
  }
  ct_tensor *s = ct_sum(y, NULL, 0, false);
  ct_release(y);
  return s;
}

Test(interrupt, flag_round_trip) {
  cr_assert_not(ct_interrupt_pending());
  ct_interrupt_request();
  cr_assert(ct_interrupt_pending());
  ct_interrupt_clear();
  cr_assert_not(ct_interrupt_pending());
}

Test(interrupt, backward_stops_and_state_stays_consistent) {
  int64_t n = 4;
  ct_tensor *x = ct_full(&n, 1, 1.0, CT_F32, ct_cpu());
  ct_requires_grad_(x, true);
  ct_tensor *y = chain(x, 10000);
  cr_assert(y, "%s", ct_last_error());
  ct_interrupt_request();
  cr_assert_eq(ct_backward(y, NULL, true, false), -1);
  cr_assert(!strncmp(ct_last_error(), "backward: interrupted", 21), "%s", ct_last_error());
  cr_assert(ct_grad_enabled(), "grad mode restored after the interrupted backward");
  cr_assert_null(x->grad, "no partial gradient reached the leaf");
  ct_interrupt_clear();
  cr_assert_eq(ct_backward(y, NULL, false, false), 0, "the graph survives: %s", ct_last_error());
  cr_assert(x->grad);
  ct_release(y), ct_release(x);
  assert_all_freed();
}

Test(interrupt, batched_matmul_stops_between_batches) {
  int64_t sa[3] = {64, 32, 32};
  ct_tensor *a = ct_full(sa, 3, 1.0, CT_F32, ct_cpu()), *b = ct_full(sa, 3, 1.0, CT_F32, ct_cpu());
  ct_interrupt_request();
  ct_tensor *c = ct_matmul(a, b);
  cr_assert_null(c);
  cr_assert(strstr(ct_last_error(), "matmul: interrupted"), "%s", ct_last_error());
  ct_interrupt_clear();
  c = ct_matmul(a, b);
  cr_assert(c, "%s", ct_last_error());
  ct_release(a), ct_release(b), ct_release(c);
  assert_all_freed();
}

Test(interrupt, saved_versions_shared_by_views_and_detach) {
  int64_t sh[2] = {2, 3};
  ct_tensor *x = ct_full(sh, 2, 1.0, CT_F32, ct_cpu()), *w = ct_full(sh, 2, 2.0, CT_F32, ct_cpu());
  cr_assert_eq(ct_version(w), 0, "a new tensor is at version 0");
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_mul(x, w), *s = ct_sum(y, NULL, 0, false);
  ct_tensor *d = ct_detach(w), *v = ct_transpose(d, 0, 1);
  int64_t idx[2] = {0, 1};
  cr_assert_eq(ct_set(v, idx, 5.0), 0);
  cr_assert_eq(ct_version(w), 1, "the transpose of w's detach shares w's counter");
  cr_assert_eq(ct_backward(s, NULL, false, false), -1);
  cr_assert(strstr(ct_last_error(), "[f32 [2, 3]] (saved by mul), is at version 1; expected version 0 instead"),
            "%s", ct_last_error());
  ct_release(v), ct_release(d), ct_release(s), ct_release(y), ct_release(x), ct_release(w);
  assert_all_freed();
}

Test(interrupt, capture_replay_stops_between_nodes) {
  int64_t n = 8;
  ct_tensor *x = ct_full(&n, 1, 2.0, CT_F32, ct_cpu());
  ct_graph *g = ct_capture_begin(&x, 1);
  cr_assert(g, "%s", ct_last_error());
  ct_tensor *y = ct_mul(x, x), *z = ct_add_scalar(y, 1.0);
  cr_assert_eq(ct_capture_end(g, &z, 1), 0, "%s", ct_last_error());
  ct_release(y), ct_release(z);
  ct_interrupt_request();
  cr_assert_eq(ct_graph_replay(g), -1);
  cr_assert(strstr(ct_last_error(), "replay: interrupted"), "%s", ct_last_error());
  ct_interrupt_clear();
  cr_assert_eq(ct_graph_replay(g), 0, "%s", ct_last_error());
  ct_tensor *out = ct_graph_output(g, 0);
  double v;
  int64_t i0 = 0;
  cr_assert_eq(ct_get(out, &i0, &v), 0);
  cr_assert_float_eq(v, 5.0, 0);
  ct_release(out);
  ct_graph_free(g);
  ct_release(x);
  assert_all_freed();
}
