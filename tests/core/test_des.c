/* test_des.c: the discrete-event engine (core/sim/des.h): events pop in (t, seq) order, cancelled
 * ones never pop, time never runs backwards, a GPU never holds two jobs, a gang is held whole or
 * not at all, and every hold lands in the one event log as a "sim.hold" event on its GPU's lane. */
#include <criterion/criterion.h>
#include <string.h>

#include "chalk.h"
#include "obs/events.h"
#include "sim/des.h"

Test(des, pops_in_time_then_schedule_order_and_skips_cancelled) {
  ct_des *d = ct_des_new(4);
  cr_assert_not_null(d);
  uint64_t s[6];
  double ts[6] = {5, 1, 3, 1, 2, 5};
  for (int i = 0; i < 6; i++) cr_assert_eq(ct_des_at(d, ts[i], 0, i, &s[i]), 0);
  cr_assert_eq(ct_des_cancel(d, s[4]), 0); /* t = 2 */
  int64_t want[] = {1, 3, 2, 0, 5};
  ct_des_event e;
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(ct_des_pop(d, &e), 1);
    cr_assert_eq(e.id, want[i], "pop %d: id %lld, expected %lld", i, (long long)e.id, (long long)want[i]);
    cr_assert_eq(ct_des_now(d), e.t);
  }
  cr_assert_eq(ct_des_pop(d, &e), 0);
  ct_des_free(d);
}

Test(des, time_never_runs_backwards) {
  ct_des *d = ct_des_new(1);
  ct_des_event e;
  ct_des_at(d, 10, 0, 0, NULL);
  ct_des_pop(d, &e);
  cr_assert_eq(ct_des_at(d, 9.5, 0, 1, NULL), -1);
  cr_assert(strstr(ct_last_error(), "time never runs backwards"), "%s", ct_last_error());
  cr_assert_eq(ct_des_at(d, 10, 0, 1, NULL), 0, "an event at now is allowed");
  ct_des_free(d);
}

Test(des, a_gpu_never_holds_two_jobs_and_gangs_are_whole) {
  ct_des *d = ct_des_new(8);
  int a[] = {0, 1, 2, 3}, b[] = {3, 4}, c[] = {4, 5}, half[] = {0, 1}, dup[] = {6, 6};
  cr_assert_eq(ct_des_acquire(d, 0, 4, a), 0);
  cr_assert_eq(ct_des_nfree(d), 4);
  cr_assert_eq(ct_des_acquire(d, 1, 2, b), -1);
  cr_assert(strstr(ct_last_error(), "would hold two jobs"), "%s", ct_last_error());
  cr_assert_eq(ct_des_holder(d, 4), -1, "a refused gang takes nothing");
  cr_assert_eq(ct_des_acquire(d, 1, 2, dup), -1);
  cr_assert_eq(ct_des_acquire(d, 1, 2, c), 0);
  cr_assert_eq(ct_des_acquire(d, 1, 2, c), -1, "a job holding GPUs cannot take more");
  cr_assert_eq(ct_des_release(d, 0, 2, half), -1);
  cr_assert(strstr(ct_last_error(), "all its resources or none"), "%s", ct_last_error());
  cr_assert_eq(ct_des_held(d, 0), 4);
  cr_assert_eq(ct_des_release(d, 1, 2, b), -1, "job 1 does not hold GPU 3");
  cr_assert_eq(ct_des_check(d), 0, "%s", ct_last_error());
  cr_assert_eq(ct_des_release(d, 0, 4, a), 0);
  cr_assert_eq(ct_des_release(d, 1, 2, c), 0);
  cr_assert_eq(ct_des_nfree(d), 8);
  cr_assert_eq(ct_des_acquire(d, 2, 1, (int[]){8}), -1, "GPU 8 of 8 is out of range");
  ct_des_free(d);
}

Test(des, holds_are_events_in_the_one_log) {
  ct_events_start();
  ct_des *d = ct_des_new(4);
  ct_des_event e;
  int g[] = {1, 2};
  ct_des_at(d, 2, 0, 0, NULL);
  ct_des_at(d, 7, 0, 0, NULL);
  ct_des_pop(d, &e);
  cr_assert_eq(ct_des_acquire(d, 5, 2, g), 0);
  ct_des_pop(d, &e);
  ct_des_mark(d, "sim.preempt", 5, 1);
  cr_assert_eq(ct_des_release(d, 5, 2, g), 0);
  ct_events_stop();
  int holds = 0, marks = 0;
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *ev = ct_events_get(i);
    if (ev->name && strcmp(ev->name, "sim.hold") == 0) {
      holds++;
      cr_assert_eq(ev->kind, CT_EV_OP);
      cr_assert_eq(ev->stream, g[holds - 1] + 1, "a hold runs on its GPU's lane (stream = GPU + 1)");
      cr_assert_float_eq(ev->t0, 2e6, 1e-6);
      cr_assert_float_eq(ev->t1, 7e6, 1e-6);
      cr_assert_eq(ev->tensor_id, 5u);
    }
    if (ev->name && strcmp(ev->name, "sim.preempt") == 0) marks++;
  }
  cr_assert_eq(holds, 2);
  cr_assert_eq(marks, 1);
  ct_events_clear();
  ct_des_free(d);
}
