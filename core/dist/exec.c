/* exec.c: the one executor of every schedule over any transport, resumable step by step, with
 * the reductions, the statistics and the events of each message and collective.
 *
 * Invariants: a step's send and receive are posted together (a ring never deadlocks on MPI);
 * ct_dist_exec_step returns BLOCKED without side effects beyond posting, so a simulated worker
 * can yield and come back; mean is a sum scaled by 1/n once, after the last step, on the part
 * of the buffer the collective defines (all of it, or this rank's chunk for reduce_scatter). */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "obs/events.h"

static const char *const coll_names[CT_COLL_N] = {"all_reduce", "reduce_scatter", "all_gather", "broadcast",
                                                  "all_to_all", "send", "recv", "barrier"};
static const char *const algo_names[CT_ALGO_N] = {"ring", "tree", "halving_doubling", "ps", "native",
                                                  "pairwise", "direct", "dissemination"};
static const char *const op_names[CT_DIST_NOPS] = {"sum", "mean", "max", "min"};

const char *ct_dist_coll_name(ct_dist_coll c) { return c >= 0 && c < CT_COLL_N ? coll_names[c] : "?"; }
const char *ct_dist_algo_name(ct_dist_algo a) { return a >= 0 && a < CT_ALGO_N ? algo_names[a] : "?"; }
const char *ct_dist_op_name(ct_dist_op o) { return o >= 0 && o < CT_DIST_NOPS ? op_names[o] : "?"; }

int ct_dist_algo_from_name(const char *s, ct_dist_algo *out) {
  for (int i = 0; i < CT_ALGO_N; i++)
    if (!strcmp(s, algo_names[i])) return *out = (ct_dist_algo)i, 0;
  return ct_errorf("dist: unknown algorithm \"%s\" (ring, tree, halving_doubling, ps, native)", s);
}
int ct_dist_op_from_name(const char *s, ct_dist_op *out) {
  for (int i = 0; i < CT_DIST_NOPS; i++)
    if (!strcmp(s, op_names[i])) return *out = (ct_dist_op)i, 0;
  return ct_errorf("dist: unknown reduction \"%s\" (sum, mean, max, min)", s);
}

double ct_dist_busbw_factor(ct_dist_coll c, int n) {
  if (c == CT_COLL_ALL_REDUCE) return 2.0 * (n - 1) / n;
  if (c == CT_COLL_REDUCE_SCATTER || c == CT_COLL_ALL_GATHER) return (double)(n - 1) / n;
  return 1.0;
}

#define REDUCE_LOOP(T)                                                          \
  do {                                                                          \
    T *d = dst;                                                                 \
    const T *s = src;                                                           \
    if (op == CT_DIST_SUM || op == CT_DIST_MEAN)                                \
      for (int64_t i = 0; i < n; i++) d[i] += s[i];                             \
    else if (op == CT_DIST_MAX)                                                 \
      for (int64_t i = 0; i < n; i++) d[i] = s[i] > d[i] ? s[i] : d[i];         \
    else                                                                        \
      for (int64_t i = 0; i < n; i++) d[i] = s[i] < d[i] ? s[i] : d[i];         \
  } while (0)

int ct_dist_reduce(void *dst, const void *src, int64_t n, ct_dtype dt, ct_dist_op op) {
  switch (dt) {
  case CT_F32: REDUCE_LOOP(float); return 0;
  case CT_F64: REDUCE_LOOP(double); return 0;
  case CT_I32: REDUCE_LOOP(int32_t); return 0;
  case CT_I64: REDUCE_LOOP(int64_t); return 0;
  default: return ct_errorf("dist: cannot reduce %s (f32, f64, i32, i64)", ct_dtype_name(dt));
  }
}

static void scale(void *buf, int64_t n, ct_dtype dt, double f) {
  if (dt == CT_F32)
    for (int64_t i = 0; i < n; i++) ((float *)buf)[i] = (float)(((float *)buf)[i] * f);
  else
    for (int64_t i = 0; i < n; i++) ((double *)buf)[i] *= f;
}

/* Scratch buffers are kept for the next collective: a fresh multi-MiB malloc is a fresh mmap, and
   faulting its pages in costs as much as a reduction over them. */
#define POOL 16
static struct {
  void *p;
  size_t n;
} pool[POOL];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static void *scratch_get(size_t n) {
  void *p = NULL;
  pthread_mutex_lock(&pool_lock);
  for (int i = 0; i < POOL && !p; i++)
    if (pool[i].p && pool[i].n >= n) p = pool[i].p, pool[i].p = NULL;
  pthread_mutex_unlock(&pool_lock);
  if (p) return p;
  size_t *b = malloc(n + 16);
  if (!b) return NULL;
  b[0] = n;
  return (char *)b + 16;
}

/* Into an empty slot, else in place of the smallest kept buffer when larger, else freed. */
static void scratch_put(void *p) {
  if (!p) return;
  size_t n = ((size_t *)((char *)p - 16))[0];
  pthread_mutex_lock(&pool_lock);
  int slot = 0;
  for (int i = 0; i < POOL; i++) {
    if (!pool[i].p) {
      slot = i;
      break;
    }
    if (pool[i].n < pool[slot].n) slot = i;
  }
  if (pool[slot].p && pool[slot].n >= n) {
    free((char *)p - 16);
  } else {
    if (pool[slot].p) free((char *)pool[slot].p - 16);
    pool[slot].p = p;
    pool[slot].n = n;
  }
  pthread_mutex_unlock(&pool_lock);
}

static bool reduces(ct_dist_coll c) { return c == CT_COLL_ALL_REDUCE || c == CT_COLL_REDUCE_SCATTER; }

/* Does this call run the transport's own algorithm? (nccl: any collective, one rank too) */
static bool runs_native(const ct_dist_exec *x) {
  if (x->algo != CT_ALGO_NATIVE) return false;
  if (x->tr->native) return x->coll != CT_COLL_SEND && x->coll != CT_COLL_RECV && x->coll != CT_COLL_BARRIER;
  return x->coll == CT_COLL_ALL_REDUCE && x->tr->native_all_reduce && x->size > 1;
}

/* Scratch and snapshot: device memory where the transport has its own (nccl), else the pool. */
static void *buf_get(ct_dist_exec *x, size_t n) {
  return x->tr->mem ? x->tr->mem->alloc(x->tr, x->members[x->rank], n) : scratch_get(n);
}
static void buf_put(ct_dist_exec *x, void *p, size_t n) {
  if (!p) return;
  if (x->tr->mem) x->tr->mem->release(x->tr, x->members[x->rank], p, n);
  else scratch_put(p);
}

int ct_dist_exec_begin(ct_dist_exec *x, ct_dist_transport *tr, const int *members, int size, int rank,
                       uint32_t group_id, uint32_t seq, ct_dist_coll coll, ct_dist_algo algo, ct_dist_op op,
                       void *buf, int64_t count, ct_dtype dt, int root, ct_dist_stats *stats) {
  *x = (ct_dist_exec){.tr = tr, .members = members, .size = size, .rank = rank, .group_id = group_id, .seq = seq,
                      .coll = coll, .algo = algo, .op = op, .dtype = dt, .buf = buf, .count = count, .root = root,
                      .stats = stats};
  bool dev = tr->mem != NULL; /* device reductions also take 16-bit floats */
  if (reduces(coll)) {
    if (dt != CT_F32 && dt != CT_F64 && dt != CT_I32 && dt != CT_I64 && !(dev && (dt == CT_BF16 || dt == CT_F16)))
      return ct_errorf("%s: cannot reduce %s (f32, f64, i32, i64)", ct_dist_coll_name(coll), ct_dtype_name(dt));
    if (op == CT_DIST_MEAN && (dt == CT_I32 || dt == CT_I64))
      return ct_errorf("%s: mean of %s (integers); use sum, or a float tensor", ct_dist_coll_name(coll), ct_dtype_name(dt));
  }
  if (algo == CT_ALGO_NATIVE && coll != CT_COLL_ALL_REDUCE && !(tr->native && runs_native(x)))
    return ct_errorf("%s: algo \"native\" is for all_reduce only%s", ct_dist_coll_name(coll),
                     tr->native ? " (and reduce_scatter, all_gather, broadcast)" : "");
  if (!runs_native(x) && ct_dist_schedule_build(&x->sched, coll, algo, size, rank, count, root)) return -1;
  size_t es = ct_dtype_size(dt);
  int64_t most = 0;
  for (int i = 0; i < x->sched.nsteps; i++)
    if (x->sched.steps[i].action == CT_STEP_RECV_REDUCE || x->sched.steps[i].action == CT_STEP_SENDRECV_REDUCE)
      most = x->sched.steps[i].recv_len > most ? x->sched.steps[i].recv_len : most;
  if (!buf) most = 0; /* timing only (sim): messages carry sizes, no data */
  x->scratch_n = (size_t)most * es;
  x->snapshot_n = buf && x->sched.send_from_snapshot ? (size_t)count * es : 0;
  if ((x->scratch_n && !(x->scratch = buf_get(x, x->scratch_n))) ||
      (x->snapshot_n && !(x->snapshot = buf_get(x, x->snapshot_n)))) {
    ct_dist_exec_end(x);
    return ct_errorf("%s: out of memory for %lld elements of scratch", ct_dist_coll_name(coll), (long long)count);
  }
  if (tr->mem && tr->mem->begin(tr, members[rank])) return ct_dist_exec_end(x), -1;
  if (x->snapshot && (tr->mem ? tr->mem->copy(tr, members[rank], x->snapshot, buf, x->snapshot_n)
                              : (memcpy(x->snapshot, buf, x->snapshot_n), 0)))
    return ct_dist_exec_end(x), -1;
  x->t_start = tr->now(tr, members[rank]);
  return 0;
}

void ct_dist_exec_end(ct_dist_exec *x) {
  ct_dist_schedule_free(&x->sched);
  buf_put(x, x->scratch, x->scratch_n);
  buf_put(x, x->snapshot, x->snapshot_n);
  x->scratch = x->snapshot = NULL;
}

int ct_dist_exec_waiting(const ct_dist_exec *x, int *step) {
  if (x->next >= x->sched.nsteps) return *step = -1, -1;
  const ct_dist_step *s = &x->sched.steps[x->next];
  *step = s->step;
  return s->recv_peer >= 0 ? s->recv_peer : s->send_peer;
}

static void message_event(const ct_dist_exec *x, const ct_dist_step *s, bool recv, double t1) {
  ct_event e = {.kind = CT_EV_MESSAGE, .name = recv ? "recv" : "send", .t0 = x->t_step * 1e6, .t1 = t1 * 1e6,
                .device = ct_cpu()};
  e.bytes = (double)((recv ? s->recv_len : s->send_len) * (int64_t)ct_dtype_size(x->dtype));
  e.nbytes = (int64_t)e.bytes;
  e.comm = (ct_event_comm){.rank = x->members[x->rank], .peer = x->members[recv ? s->recv_peer : s->send_peer],
                           .step = s->step, .chunk = s->chunk, .group = x->group_id, .seq = x->seq,
                           .group_size = x->size, .algo = ct_dist_algo_name(x->algo), .coll = ct_dist_coll_name(x->coll),
                           .recv = recv};
  ct_event_push(&e);
}

static int finish(ct_dist_exec *x) {
  size_t es = ct_dtype_size(x->dtype);
  ct_dist_transport *tr = x->tr;
  int me = x->members[x->rank];
  if (x->buf && x->op == CT_DIST_MEAN && reduces(x->coll) && x->size > 1) {
    int64_t off = 0, len = x->count;
    if (x->coll == CT_COLL_REDUCE_SCATTER) {
      off = ct_dist_chunk_off(x->count, x->size, x->rank);
      len = ct_dist_chunk_len(x->count, x->size, x->rank);
    }
    if (!tr->mem) scale(x->buf + off * (int64_t)es, len, x->dtype, 1.0 / x->size);
    else if (tr->mem->scale(tr, me, x->buf + off * (int64_t)es, len, x->dtype, 1.0 / x->size)) return -1;
  }
  if (tr->mem && tr->mem->end(tr, me)) return -1;
  double t1 = x->tr->now(x->tr, x->members[x->rank]);
  if (x->stats) {
    ct_dist_stat *st = &x->stats->by[x->coll][x->algo];
    st->calls++;
    st->last_bytes = (double)x->count * (double)es;
    st->last_time_s = t1 - x->t_start;
    st->bytes += st->last_bytes;
    st->time_s += st->last_time_s;
  }
  if (ct_events_on()) {
    ct_event e = {.kind = CT_EV_COLLECTIVE, .name = ct_dist_coll_name(x->coll), .t0 = x->t_start * 1e6,
                  .t1 = t1 * 1e6, .device = ct_cpu(), .bytes = (double)x->count * (double)es};
    e.nbytes = (int64_t)e.bytes;
    e.comm = (ct_event_comm){.rank = x->members[x->rank], .peer = -1, .step = -1, .chunk = -1, .group = x->group_id,
                             .seq = x->seq, .group_size = x->size, .algo = ct_dist_algo_name(x->algo),
                             .coll = ct_dist_coll_name(x->coll)};
    snprintf(e.label, sizeof e.label, "%s %s", ct_dist_algo_name(x->algo), ct_dist_op_name(x->op));
    ct_event_push(&e);
  }
  return 0;
}

ct_exec_status ct_dist_exec_step(ct_dist_exec *x) {
  ct_dist_transport *tr = x->tr;
  int me = x->members[x->rank];
  size_t es = ct_dtype_size(x->dtype);
  if (runs_native(x)) { /* posted once; test() says when it is done (mpi: at once) */
    if (x->next) return CT_EXEC_DONE;
    ct_dist_op op = x->op == CT_DIST_MEAN ? CT_DIST_SUM : x->op;
    if (!x->posted) {
      x->t_step = tr->now(tr, me);
      if (tr->native ? tr->native(tr, me, x->members, x->size, x->coll, x->buf, x->count, x->dtype, op, x->root)
                     : tr->native_all_reduce(tr, me, x->members, x->size, x->buf, x->count, x->dtype, op))
        return CT_EXEC_ERROR;
      x->posted = true;
    }
    int r = tr->test(tr, me);
    if (r < 0) return CT_EXEC_ERROR;
    if (r == 0) return CT_EXEC_BLOCKED;
    x->next = 1;
    return finish(x) ? CT_EXEC_ERROR : CT_EXEC_DONE;
  }
  while (x->next < x->sched.nsteps) {
    const ct_dist_step *s = &x->sched.steps[x->next];
    bool reduce = s->action == CT_STEP_RECV_REDUCE || s->action == CT_STEP_SENDRECV_REDUCE;
    if (!x->posted) {
      /* a send matches the peer's recv: both are "send" on the wire */
      int wire = x->coll == CT_COLL_RECV ? CT_COLL_SEND : x->coll;
      ct_dist_hdr h = {x->group_id, x->seq, wire, x->algo, x->op, x->dtype, x->count, s->step};
      x->t_step = tr->now(tr, me);
      if (s->send_peer >= 0) {
        const char *src = !x->buf ? NULL : (x->sched.send_from_snapshot ? x->snapshot : x->buf) + s->send_off * (int64_t)es;
        if (tr->post_send(tr, me, x->members[s->send_peer], &h, src, (size_t)s->send_len * es)) return CT_EXEC_ERROR;
      }
      if (s->recv_peer >= 0) {
        char *dst = !x->buf ? NULL : reduce ? x->scratch : x->buf + s->recv_off * (int64_t)es;
        if (tr->post_recv(tr, me, x->members[s->recv_peer], &h, dst, (size_t)s->recv_len * es)) return CT_EXEC_ERROR;
      }
      x->posted = true;
    }
    int r = tr->test(tr, me);
    if (r < 0) return CT_EXEC_ERROR;
    if (r == 0) return CT_EXEC_BLOCKED;
    if (reduce && x->buf &&
        (tr->mem ? tr->mem->reduce(tr, me, x->buf + s->recv_off * (int64_t)es, x->scratch, s->recv_len, x->dtype, x->op)
                 : ct_dist_reduce(x->buf + s->recv_off * (int64_t)es, x->scratch, s->recv_len, x->dtype, x->op)))
      return CT_EXEC_ERROR;
    double t1 = tr->now(tr, me);
    if (x->stats) {
      ct_dist_stat *st = &x->stats->by[x->coll][x->algo];
      if (s->send_peer >= 0) st->sent += (double)s->send_len * (double)es, st->messages++;
      if (s->recv_peer >= 0) st->recvd += (double)s->recv_len * (double)es;
    }
    if (ct_events_on()) {
      if (s->send_peer >= 0) message_event(x, s, false, t1);
      if (s->recv_peer >= 0) message_event(x, s, true, t1);
    }
    x->next++;
    x->posted = false;
  }
  if (x->next == x->sched.nsteps) {
    x->next++;
    if (finish(x)) return CT_EXEC_ERROR;
  }
  return CT_EXEC_DONE;
}

/* Wall-clock seconds (the watchdog measures real waiting, whatever clock the transport keeps). */
static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int ct_dist_exec_run(ct_dist_exec *x) {
  double since = -1;
  int at = -1;
  for (;;) {
    ct_exec_status st = ct_dist_exec_step(x);
    if (st == CT_EXEC_DONE) return 0;
    if (st == CT_EXEC_ERROR) return -1;
    double now = wall_s();
    if (x->next != at) since = now, at = x->next; /* the clock restarts at every step that completes */
    if (x->tr->timeout_s > 0 && now - since > x->tr->timeout_s) {
      int step, peer = ct_dist_exec_waiting(x, &step);
      return ct_errorf("%s #%u (%s) on rank %d of %d: waited %.0f s for rank %d at step %d; a rank skipped or "
                       "mismatched a collective (shapes, dtypes, order), or died (CHALK_DIST_TIMEOUT sets the limit)",
                       ct_dist_coll_name(x->coll), x->seq, ct_dist_algo_name(x->algo), x->members[x->rank] + 1,
                       x->tr->world_size, x->tr->timeout_s, peer >= 0 ? x->members[peer] + 1 : 0, step);
    }
    sched_yield();
  }
}
