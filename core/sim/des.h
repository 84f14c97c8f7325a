/* des.h: the one discrete-event engine (design decision 12): an event heap, a virtual clock and
 * a pool of resources (GPUs) held by jobs, for the cluster, pipeline and serving simulators.
 *
 * Invariants (each checked; a breach is an error naming the job, resource and times, never a
 * silent fix; messages number GPUs from 1, as chalk's Lua does, while this API indexes from 0):
 *  - time never runs backwards: an event is scheduled at t >= now, and pops in (t, seq) order;
 *  - a resource never holds two jobs: acquire fails if any requested resource is held;
 *  - a gang job holds all its resources or none: acquire is all-or-none, release must name
 *    exactly the set the job holds.
 * When the event log is on (obs/events.h), every hold is appended at its release as an ordinary
 * CT_EV_OP event "sim.hold" on lane (stream) = resource index + 1, t0/t1 in virtual microseconds, with
 * tensor_id = job id; ct_des_mark appends instants ("sim.preempt", "sim.fail"). Traces, Chrome
 * export and the cluster pictures are views of that log. */
#ifndef CHALK_SIM_DES_H
#define CHALK_SIM_DES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ct_des ct_des;

typedef struct {
  double t;     /* virtual seconds */
  uint64_t seq; /* order of scheduling: ties in t pop in this order */
  int kind;     /* the caller's event kind */
  int64_t id;   /* the caller's payload (a job index) */
} ct_des_event;

ct_des *ct_des_new(int nres); /* NULL + error when nres < 1 */
void ct_des_free(ct_des *d);
double ct_des_now(const ct_des *d);
int ct_des_nres(const ct_des *d);
int ct_des_nfree(const ct_des *d);
/* Schedules an event at t (>= now); its seq in *seq when seq is not NULL. -1 + error if t < now. */
int ct_des_at(ct_des *d, double t, int kind, int64_t id, uint64_t *seq);
/* A scheduled event will not pop (lazy removal). -1 + error if seq was never scheduled. */
int ct_des_cancel(ct_des *d, uint64_t seq);
/* Pops the earliest live event and moves the clock to its time: 1, or 0 when none is left. */
int ct_des_pop(ct_des *d, ct_des_event *out);
/* The time of the earliest live event (dropping cancelled ones on top): 1, or 0 when none. */
int ct_des_peek(ct_des *d, double *t);
size_t ct_des_pending(const ct_des *d); /* scheduled, not yet popped (cancelled ones included) */
/* Job `job` (>= 0) takes resources res[0..n-1], all or none. -1 + error (naming the holder) if any
   is held, repeated, out of range, or if the job already holds resources. */
int ct_des_acquire(ct_des *d, int64_t job, int n, const int *res);
/* Job `job` gives back res[0..n-1], which must be exactly the resources it holds. */
int ct_des_release(ct_des *d, int64_t job, int n, const int *res);
int64_t ct_des_holder(const ct_des *d, int r); /* -1 when free */
int ct_des_held(const ct_des *d, int64_t job); /* resources job holds (0 or its gang size) */
void ct_des_mark(const ct_des *d, const char *static_name, int64_t job, int res);
/* Recounts every resource against every job's count: 0, or -1 + error on the first mismatch. */
int ct_des_check(const ct_des *d);

#endif
