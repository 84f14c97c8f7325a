/* test_ctx.c: contexts (core/ctx, design decision 11): switching and the thread-local current
 * pointer, grad mode, retain-grads and the default category per context, independent RNG streams,
 * memory statistics per context and per device index (charged back to the allocating context),
 * events tagged with the context's rank and stream, the virtual clock, and hooks (op hooks per
 * context, gradient-ready hooks once per leaf after its last contribution, backward-end hooks). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "chalk.h"
#include "obs/events.h"
#include "ops/optable.h"

static ct_tensor *vec(int64_t n, double v) { return ct_full(&n, 1, v, CT_F32, ct_cpu()); }

static void assert_no_live_tensors(void) {
  ct_mem_stats s;
  ct_mem_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
}

Test(ctx, switch_returns_the_previous_and_null_means_the_default) {
  ct_ctx *def = ct_ctx_default();
  cr_assert_eq(ct_ctx_current(), def, "a thread starts on the default context");
  cr_assert_eq(ct_ctx_rank(def), 0);
  ct_ctx *a = ct_ctx_new(3);
  cr_assert_not_null(a);
  cr_assert_eq(ct_ctx_rank(a), 3);
  cr_assert(ct_ctx_grad_enabled(a), "a new context records gradients");
  cr_assert_eq(ct_ctx_switch(a), def);
  cr_assert_eq(ct_ctx_current(), a);
  cr_assert_eq(ct_ctx_switch(NULL), a);
  cr_assert_eq(ct_ctx_current(), def);
  ct_ctx_switch(a);
  ct_ctx_free(a); /* freeing the current context puts the thread back on the default */
  cr_assert_eq(ct_ctx_current(), def);
  ct_ctx_free(def); /* ignored */
  cr_assert(ct_grad_enabled());
}

static void *current_of_new_thread(void *arg) {
  (void)arg;
  return ct_ctx_current();
}

Test(ctx, the_current_context_is_per_thread) {
  ct_ctx *a = ct_ctx_new(1);
  ct_ctx_switch(a);
  pthread_t th;
  void *seen = NULL;
  cr_assert_eq(pthread_create(&th, NULL, current_of_new_thread, NULL), 0);
  pthread_join(th, &seen);
  cr_assert_eq(seen, ct_ctx_default(), "another thread still runs on the default context");
  cr_assert_eq(ct_ctx_current(), a);
  ct_ctx_switch(NULL);
  ct_ctx_free(a);
}

Test(ctx, grad_mode_retain_grads_and_category_are_per_context) {
  ct_ctx *a = ct_ctx_new(1);
  ct_tensor *x = vec(4, 2);
  ct_requires_grad_(x, true);
  ct_ctx *prev = ct_ctx_switch(a);
  cr_assert(ct_set_grad_enabled(false), "previous mode of a was on");
  ct_set_retain_all_grads(true);
  ct_set_default_category(CT_CAT_OPTIMIZER);
  ct_tensor *ya = ct_mul(x, x);
  ct_ctx_switch(prev);
  cr_assert(ct_grad_enabled(), "turning a's grad mode off left the default's on");
  cr_assert_not(ct_retain_all_grads());
  ct_tensor *yd = ct_mul(x, x);
  cr_assert_null(ya->grad_fn, "no node under a's no_grad");
  cr_assert_not_null(yd->grad_fn, "the default context still records");
  cr_assert_not(yd->retains_grad);
  cr_assert_eq(ya->storage->category, CT_CAT_OPTIMIZER);
  cr_assert_eq(yd->storage->category, CT_CAT_ACTIVATION);
  cr_assert_not(ct_ctx_grad_enabled(a));
  ct_ctx_set_grad_enabled(a, true);
  ct_ctx_switch(a);
  ct_tensor *yr = ct_mul(x, x);
  ct_ctx_switch(prev);
  cr_assert(yr->retains_grad, "retain-grads stayed on in a");
  ct_release(ya), ct_release(yd), ct_release(yr), ct_release(x);
  ct_ctx_free(a);
  assert_no_live_tensors();
}

static void draw(ct_ctx *c, int64_t n, double *out) {
  ct_ctx *prev = ct_ctx_switch(c);
  ct_tensor *t = ct_rand(&n, 1, CT_F64, ct_cpu());
  ct_ctx_switch(prev);
  cr_assert_not_null(t, "%s", ct_last_error());
  ct_to_doubles(t, out);
  ct_release(t);
}

Test(ctx, rng_streams_are_independent_of_interleaving) {
  ct_ctx *a = ct_ctx_new(0), *b = ct_ctx_new(1);
  ct_ctx_manual_seed(a, 42);
  ct_ctx_manual_seed(b, 42);
  uint64_t before = ct_ctx_rng_offset(ct_ctx_default());
  double a1[5], a2[5], b1[5], b2[5];
  draw(a, 5, a1);
  draw(a, 5, a2); /* a draws twice before b draws at all */
  draw(b, 5, b1);
  draw(b, 5, b2);
  cr_assert_eq(memcmp(a1, b1, sizeof a1), 0, "same seed, same first draw whatever ran in between");
  cr_assert_eq(memcmp(a2, b2, sizeof a2), 0);
  cr_assert_neq(memcmp(a1, a2, sizeof a1), 0, "the stream moves on within a context");
  cr_assert_eq(ct_ctx_rng_offset(a), 10);
  cr_assert_eq(ct_ctx_rng_offset(ct_ctx_default()), before, "the default stream was not touched");
  ct_manual_seed(42); /* the default context's, through the old API */
  double d1[5];
  draw(ct_ctx_default(), 5, d1);
  cr_assert_eq(memcmp(a1, d1, sizeof a1), 0);
  ct_ctx_free(a), ct_ctx_free(b);
}

Test(ctx, memory_is_charged_to_the_allocating_context_per_device_index) {
  ct_ctx *a = ct_ctx_new(1);
  ct_mem_device_stats d0, a0, a1;
  cr_assert_eq(ct_ctx_mem_device(ct_ctx_default(), ct_cpu(), &d0), 0);
  ct_ctx *prev = ct_ctx_switch(a);
  int64_t n1 = 1000, n2 = 250;
  ct_tensor *t = ct_empty(&n1, 1, CT_F32, ct_cpu()); /* 4000 bytes, an input (made outside any model or backward) */
  ct_tensor *p = ct_empty(&n2, 1, CT_F32, ct_cpu());
  ct_set_category(p, CT_CAT_PARAMETER);
  ct_ctx_switch(prev);
  cr_assert_eq(ct_ctx_mem_device(a, ct_cpu(), &a0), 0);
  cr_assert_eq(a0.live[CT_CAT_INPUT], 4000);
  cr_assert_eq(a0.live[CT_CAT_PARAMETER], 1000);
  cr_assert_eq(a0.peak, 5000);
  cr_assert_eq(a0.allocated, 5000, "a retag is not an allocation");
  ct_mem_device_stats now;
  ct_ctx_mem_device(ct_ctx_default(), ct_cpu(), &now);
  cr_assert_eq(memcmp(&now, &d0, sizeof now), 0, "the default context saw none of it");
  ct_mem_device_stats cuda0;
  cr_assert_eq(ct_ctx_mem_device(a, (ct_device){CT_CUDA, 0}, &cuda0), 0);
  cr_assert_eq(cuda0.allocated, 0, "cuda:0 is a slot of its own");
  cr_assert_eq(ct_ctx_mem_device(a, (ct_device){CT_CUDA, CT_CTX_MAX_CUDA}, &cuda0), -1);
  cr_assert(strstr(ct_last_error(), "cuda:15"), "%s", ct_last_error());
  /* the by-type view of a, as ct_mem_get gives it while a is current */
  ct_mem_stats s;
  ct_ctx_mem_get(a, &s);
  cr_assert_eq(s.live[CT_CPU][CT_CAT_INPUT], 4000);
  cr_assert_eq(s.peak[CT_CPU], 5000);
  ct_release(t); /* released under the default context: charged back to a */
  ct_ctx_mem_device(a, ct_cpu(), &a1);
  cr_assert_eq(a1.live[CT_CAT_INPUT], 0);
  cr_assert_eq(a1.peak, 5000);
  ct_ctx_mem_reset_peak(a);
  ct_ctx_mem_device(a, ct_cpu(), &a1);
  cr_assert_eq(a1.peak, 1000);
  ct_ctx_free(a); /* p still lives: a stays until it goes */
  ct_release(p);
  ct_ctx_mem_device(ct_ctx_default(), ct_cpu(), &now);
  cr_assert_eq(memcmp(&now, &d0, sizeof now), 0);
  assert_no_live_tensors();
}

Test(ctx, events_carry_the_rank_stream_and_virtual_time) {
  ct_ctx *a = ct_ctx_new(5);
  ct_ctx_set_stream(a, 2);
  ct_ctx_set_virtual_clock(a, 1000);
  cr_assert_eq(ct_ctx_advance_clock(a, 250), 0);
  cr_assert_eq(ct_ctx_clock_us(a), 1250);
  cr_assert_eq(ct_ctx_advance_clock(a, -1), -1, "the clock only moves forward");
  ct_events_start();
  ct_tensor *x = vec(3, 1);
  ct_ctx *prev = ct_ctx_switch(a);
  ct_tensor *y = ct_add(x, x);
  ct_event_mark("step", NULL);
  ct_ctx_switch(prev);
  ct_tensor *z = ct_add(x, x);
  ct_events_stop();
  int by_a = 0, by_default = 0;
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *e = ct_events_get(i);
    if (e->rank == 5) {
      by_a++;
      cr_assert_eq(e->stream, 2, "%s on a's lane", e->name);
      cr_assert_eq(e->t0, 1250, "%s stamped with a's virtual clock", e->name);
    } else {
      by_default++;
      cr_assert_eq(e->rank, 0);
      cr_assert_eq(e->stream, 0);
    }
  }
  cr_assert_eq(by_a, 3, "alloc, add and the mark under rank 5, got %d", by_a);
  cr_assert_geq(by_default, 3, "x's alloc, z's alloc and add under rank 0, got %d", by_default);
  ct_ctx_use_wall_clock(a);
  cr_assert_eq(ct_ctx_advance_clock(a, 1), -1);
  cr_assert(strstr(ct_last_error(), "wall clock"), "%s", ct_last_error());
  ct_events_clear();
  ct_release(x), ct_release(y), ct_release(z);
  ct_ctx_free(a);
}

static void count_op(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out, void *ud) {
  (void)in, (void)nin, (void)a, (void)out;
  if (op == CT_OP_add) ++*(int *)ud;
}

Test(ctx, op_hooks_belong_to_their_context) {
  ct_ctx *a = ct_ctx_new(1);
  int in_a = 0, legacy = 0;
  int id = ct_ctx_add_op_hook(a, count_op, &in_a);
  cr_assert_gt(id, 0);
  cr_assert_eq(ct_ctx_hook_count(a, CT_HOOK_OP), 1);
  ct_tensor *x = vec(2, 1);
  ct_release(ct_add(x, x)); /* default context: a's hook does not see it */
  ct_ctx *prev = ct_ctx_switch(a);
  ct_set_op_hook(count_op, &legacy); /* the one-hook API adds beside a's own */
  ct_release(ct_add(x, x));
  ct_set_op_hook(NULL, NULL);
  ct_release(ct_add(x, x));
  ct_ctx_switch(prev);
  cr_assert_eq(in_a, 2);
  cr_assert_eq(legacy, 1);
  cr_assert_eq(ct_ctx_remove_hook(a, id), 0);
  cr_assert_eq(ct_ctx_remove_hook(a, id), -1);
  cr_assert_eq(ct_ctx_hook_count(a, CT_HOOK_OP), 0);
  ct_release(x);
  ct_ctx_free(a);
}

typedef struct {
  ct_tensor *leaf[4];
  double grad0[4]; /* element 0 of the leaf's .grad when the hook ran */
  int n, ends;
  bool fail;
} hook_log;

static int on_ready(ct_tensor *leaf, void *ud) {
  hook_log *h = ud;
  if (h->fail) return ct_errorf("ddp bucket: all-reduce failed");
  int64_t i0 = 0;
  h->leaf[h->n] = leaf;
  ct_get(leaf->grad, &i0, &h->grad0[h->n]);
  h->n++;
  return 0;
}

static ct_tensor *sum_of_mul(ct_tensor *a, ct_tensor *b) {
  ct_tensor *m = ct_mul(a, b), *s = ct_sum(m, NULL, 0, false);
  ct_release(m);
  return s;
}

static int on_end(ct_tensor *root, void *ud) {
  (void)root;
  ((hook_log *)ud)->ends++;
  return 0;
}

Test(ctx, grad_ready_fires_once_per_leaf_after_its_last_contribution) {
  ct_ctx *a = ct_ctx_new(0);
  ct_ctx *prev = ct_ctx_switch(a);
  hook_log h = {0};
  cr_assert_gt(ct_ctx_add_grad_ready_hook(a, on_ready, &h), 0);
  cr_assert_gt(ct_ctx_add_backward_end_hook(a, on_end, &h), 0);
  ct_tensor *x = vec(3, 2), *w = vec(3, 5);
  ct_requires_grad_(x, true), ct_requires_grad_(w, true);
  /* x reaches the loss along three edges (x*x twice, x*w once); w along one */
  ct_tensor *xx = ct_mul(x, x), *xw = ct_mul(x, w), *s = ct_add(xx, xw), *loss = ct_sum(s, NULL, 0, false);
  cr_assert_eq(ct_backward(loss, NULL, false, false), 0, "%s", ct_last_error());
  cr_assert_eq(h.n, 2, "one call per leaf, got %d", h.n);
  for (int k = 0; k < 2; k++) {
    double want = h.leaf[k] == x ? 2 * 2 + 5 : 2; /* d/dx = 2x + w, d/dw = x */
    cr_assert(h.leaf[k] == x || h.leaf[k] == w);
    cr_assert_float_eq(h.grad0[k], want, 1e-6, "the gradient was complete when the hook ran");
  }
  cr_assert_eq(h.ends, 1);
  /* ct_grad does not touch .grad: no gradient-ready calls */
  ct_tensor *l2 = sum_of_mul(x, w), *res = NULL;
  cr_assert_eq(ct_grad(l2, NULL, &x, 1, &res, false, false), 0, "%s", ct_last_error());
  cr_assert_eq(h.n, 2);
  /* a failing hook fails the backward with its message */
  h.fail = true;
  ct_tensor *l3 = sum_of_mul(x, w);
  cr_assert_eq(ct_backward(l3, NULL, false, false), -1);
  cr_assert(strstr(ct_last_error(), "ddp bucket"), "%s", ct_last_error());
  cr_assert(ct_grad_enabled(), "grad mode restored after a failed backward");
  /* hooks of a do not run for a backward under the default context */
  h.fail = false;
  ct_ctx_switch(prev);
  int before = h.n;
  ct_tensor *l4 = sum_of_mul(x, w);
  cr_assert_eq(ct_backward(l4, NULL, false, false), 0, "%s", ct_last_error());
  cr_assert_eq(h.n, before);
  ct_release(l4), ct_release(l3), ct_release(res), ct_release(l2);
  ct_release(loss), ct_release(s), ct_release(xw), ct_release(xx), ct_release(w), ct_release(x);
  ct_ctx_free(a);
}
