/* des.c: the discrete-event engine: a binary heap of (t, seq) events, a virtual clock that only
 * moves forward, and resources held all-or-none by jobs (see des.h for the invariants). */
#include "sim/des.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"
#include "obs/events.h"

struct ct_des {
  double now;
  ct_des_event *heap;
  size_t n, cap;
  uint64_t next_seq;
  uint8_t *cancelled; /* by seq */
  size_t ncancel_cap;
  int nres, nfree;
  int64_t *holder; /* per resource: the job, or -1 */
  double *since;   /* per resource: when its hold began */
  int *held;       /* per job index: resources held */
  size_t held_cap;
};

ct_des *ct_des_new(int nres) {
  if (nres < 1) {
    ct_errorf("sim.des: %d resources; a simulation needs at least one", nres);
    return NULL;
  }
  ct_des *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->nres = d->nfree = nres;
  d->holder = malloc((size_t)nres * sizeof *d->holder);
  d->since = calloc((size_t)nres, sizeof *d->since);
  if (!d->holder || !d->since) {
    ct_des_free(d);
    ct_errorf("sim.des: out of memory for %d resources", nres);
    return NULL;
  }
  for (int r = 0; r < nres; r++) d->holder[r] = -1;
  return d;
}

void ct_des_free(ct_des *d) {
  if (!d) return;
  free(d->heap);
  free(d->cancelled);
  free(d->holder);
  free(d->since);
  free(d->held);
  free(d);
}

double ct_des_now(const ct_des *d) { return d->now; }
int ct_des_nres(const ct_des *d) { return d->nres; }
int ct_des_nfree(const ct_des *d) { return d->nfree; }
size_t ct_des_pending(const ct_des *d) { return d->n; }

static bool before(const ct_des_event *a, const ct_des_event *b) {
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return ct_errorf("sim.des: out of memory growing to %zu entries", c);
  memset((char *)q + *cap * elem, 0, (c - *cap) * elem);
  *p = q;
  *cap = c;
  return 0;
}

int ct_des_at(ct_des *d, double t, int kind, int64_t id, uint64_t *seq) {
  if (!(t >= d->now))
    return ct_errorf("sim.des: event (kind %d, id %lld) scheduled at t = %.9g s, before now = %.9g s: "
                     "time never runs backwards",
                     kind, (long long)id, t, d->now);
  if (grow((void **)&d->heap, &d->cap, d->n + 1, sizeof *d->heap) ||
      grow((void **)&d->cancelled, &d->ncancel_cap, d->next_seq + 1, 1))
    return -1;
  ct_des_event e = {t, d->next_seq++, kind, id};
  size_t i = d->n++;
  while (i > 0 && before(&e, &d->heap[(i - 1) / 2])) {
    d->heap[i] = d->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  d->heap[i] = e;
  if (seq) *seq = e.seq;
  return 0;
}

int ct_des_cancel(ct_des *d, uint64_t seq) {
  if (seq >= d->next_seq) return ct_errorf("sim.des: cancel of event %llu, never scheduled", (unsigned long long)seq);
  d->cancelled[seq] = 1;
  return 0;
}

static ct_des_event pop_min(ct_des *d) {
  ct_des_event top = d->heap[0], last = d->heap[--d->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= d->n) break;
    if (c + 1 < d->n && before(&d->heap[c + 1], &d->heap[c])) c++;
    if (!before(&d->heap[c], &last)) break;
    d->heap[i] = d->heap[c];
    i = c;
  }
  if (d->n) d->heap[i] = last;
  return top;
}

int ct_des_pop(ct_des *d, ct_des_event *out) {
  while (d->n) {
    ct_des_event e = pop_min(d);
    if (d->cancelled[e.seq]) continue;
    if (e.t < d->now)
      return ct_errorf("sim.des: event %llu at t = %.9g s pops after now = %.9g s: time ran backwards",
                       (unsigned long long)e.seq, e.t, d->now);
    d->now = e.t;
    *out = e;
    return 1;
  }
  return 0;
}

int ct_des_peek(ct_des *d, double *t) {
  while (d->n && d->cancelled[d->heap[0].seq]) pop_min(d);
  if (!d->n) return 0;
  *t = d->heap[0].t;
  return 1;
}

static int check_job(ct_des *d, int64_t job, const char *what) {
  if (job < 0) return ct_errorf("sim.des: %s by job %lld: job indices are >= 0", what, (long long)job);
  return grow((void **)&d->held, &d->held_cap, (size_t)job + 1, sizeof *d->held);
}

int ct_des_acquire(ct_des *d, int64_t job, int n, const int *res) {
  if (check_job(d, job, "acquire")) return -1;
  if (n < 1) return ct_errorf("sim.des: job %lld acquires %d resources", (long long)job, n);
  if (d->held[job])
    return ct_errorf("sim.des: job %lld acquires %d resources while holding %d: a gang job holds all its "
                     "resources or none",
                     (long long)job, n, d->held[job]);
  for (int i = 0; i < n; i++) {
    int r = res[i];
    if (r < 0 || r >= d->nres)
      return ct_errorf("sim.des: job %lld asks for GPU %d of %d", (long long)job, r + 1, d->nres);
    if (d->holder[r] >= 0)
      return ct_errorf("sim.des: GPU %d would hold two jobs: job %lld asks at t = %.9g s, job %lld holds it "
                       "since %.9g s",
                       r + 1, (long long)job, d->now, (long long)d->holder[r], d->since[r]);
    for (int k = 0; k < i; k++)
      if (res[k] == r) return ct_errorf("sim.des: job %lld names GPU %d twice", (long long)job, r + 1);
  }
  for (int i = 0; i < n; i++) {
    d->holder[res[i]] = job;
    d->since[res[i]] = d->now;
  }
  d->held[job] = n;
  d->nfree -= n;
  return 0;
}

int ct_des_release(ct_des *d, int64_t job, int n, const int *res) {
  if (check_job(d, job, "release")) return -1;
  if (n != d->held[job])
    return ct_errorf("sim.des: job %lld releases %d resources but holds %d: a gang job holds all its "
                     "resources or none",
                     (long long)job, n, d->held[job]);
  for (int i = 0; i < n; i++) {
    int r = res[i];
    if (r < 0 || r >= d->nres || d->holder[r] != job)
      return ct_errorf("sim.des: job %lld releases GPU %d, held by %lld", (long long)job, r + 1,
                       (long long)(r < 0 || r >= d->nres ? -2 : d->holder[r]));
  }
  for (int i = 0; i < n; i++) {
    int r = res[i];
    if (ct_events_on()) {
      ct_event e = {.kind = CT_EV_OP, .name = "sim.hold", .stream = r + 1, .tensor_id = (uint64_t)job};
      e.t0 = d->since[r] * 1e6;
      e.t1 = d->now * 1e6;
      e.device = (ct_device){CT_CPU, 0};
      snprintf(e.label, sizeof e.label, "job %lld", (long long)job);
      ct_event_push(&e);
    }
    d->holder[r] = -1;
  }
  d->held[job] = 0;
  d->nfree += n;
  return 0;
}

int64_t ct_des_holder(const ct_des *d, int r) { return r >= 0 && r < d->nres ? d->holder[r] : -1; }
int ct_des_held(const ct_des *d, int64_t job) { return job >= 0 && (size_t)job < d->held_cap ? d->held[job] : 0; }

void ct_des_mark(const ct_des *d, const char *static_name, int64_t job, int res) {
  if (!ct_events_on()) return;
  ct_event e = {.kind = CT_EV_MARK, .name = static_name, .stream = res + 1, .tensor_id = (uint64_t)job};
  e.t0 = e.t1 = d->now * 1e6;
  snprintf(e.label, sizeof e.label, "job %lld", (long long)job);
  ct_event_push(&e);
}

int ct_des_check(const ct_des *d) {
  int *count = calloc(d->held_cap ? d->held_cap : 1, sizeof *count);
  if (!count) return ct_errorf("sim.des: out of memory checking");
  int busy = 0, rc = 0;
  for (int r = 0; r < d->nres && rc == 0; r++) {
    int64_t j = d->holder[r];
    if (j < 0) continue;
    busy++;
    if ((size_t)j >= d->held_cap)
      rc = ct_errorf("sim.des: GPU %d held by unknown job %lld", r + 1, (long long)j);
    else
      count[j]++;
  }
  for (size_t j = 0; j < d->held_cap && rc == 0; j++)
    if (count[j] != d->held[j])
      rc = ct_errorf("sim.des: job %zu holds %d GPUs but owns %d of them: a gang job holds all or none", j, d->held[j],
                     count[j]);
  if (rc == 0 && busy != d->nres - d->nfree)
    rc = ct_errorf("sim.des: %d GPUs busy but %d counted", busy, d->nres - d->nfree);
  free(count);
  return rc;
}
