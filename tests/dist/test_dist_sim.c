/* test_dist_sim.c: every collective algorithm and reduction against a plain loop, on the sim
 * transport for N = 1, 2, 3, 4, 7, 8 and awkward sizes; exact byte counts and step counts against
 * the law; the alpha-beta clock; mismatch and deadlock detection; message and collective events. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "obs/events.h"

static const int NS[] = {1, 2, 3, 4, 7, 8};
static const int64_t SIZES[] = {1, 7, 33, 1000};

/* A deterministic pseudo-random value for (rank, element). */
static double val(int r, int64_t i) {
  uint64_t h = (uint64_t)(r + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 7) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  return (double)(h % 2001) / 100.0 - 10.0;
}

typedef struct {
  ct_dist_transport *tr;
  int n;
  int *members;
  void **bufs;
  ct_dist_exec *x;
  ct_dist_stats *stats;
} world;

static world make(int n, ct_dtype dt, int64_t count, double alpha, double bw) {
  world w = {.tr = ct_dist_sim_new(n, alpha, bw), .n = n};
  cr_assert(w.tr, "%s", ct_last_error());
  w.members = calloc((size_t)n, sizeof *w.members);
  w.bufs = calloc((size_t)n, sizeof *w.bufs);
  w.x = calloc((size_t)n, sizeof *w.x);
  w.stats = calloc((size_t)n, sizeof *w.stats);
  for (int r = 0; r < n; r++) {
    w.members[r] = r;
    w.bufs[r] = calloc((size_t)(count ? count : 1), ct_dtype_size(dt));
  }
  return w;
}

static void drop(world *w) {
  for (int r = 0; r < w->n; r++) free(w->bufs[r]);
  free(w->bufs);
  free(w->members);
  free(w->x);
  free(w->stats);
  ct_dist_sim_free(w->tr);
}

static void set(void *b, ct_dtype dt, int64_t i, double v) {
  if (dt == CT_F32) ((float *)b)[i] = (float)v;
  else if (dt == CT_F64) ((double *)b)[i] = v;
  else if (dt == CT_I32) ((int32_t *)b)[i] = (int32_t)v;
  else ((int64_t *)b)[i] = (int64_t)v;
}
static double get(const void *b, ct_dtype dt, int64_t i) {
  return dt == CT_F32 ? ((const float *)b)[i] : dt == CT_F64 ? ((const double *)b)[i]
                      : dt == CT_I32 ? ((const int32_t *)b)[i] : (double)((const int64_t *)b)[i];
}

/* Run the same collective on every rank, round-robin, until all are done; 0 ok, -1 an error,
   1 a deadlock (every unfinished rank blocked and a whole round made no progress). */
static int run_all(world *w, ct_dist_coll c, ct_dist_algo a, ct_dist_op op, ct_dtype dt, int64_t count, int root,
                   const bool *skip) {
  for (int r = 0; r < w->n; r++)
    if (!(skip && skip[r]) && ct_dist_exec_begin(&w->x[r], w->tr, w->members, w->n, r, 0, 1, c, a, op, w->bufs[r],
                                                 count, dt, root, &w->stats[r]))
      return -1;
  bool *done = calloc(w->n > 0 ? (size_t)w->n : 1, sizeof *done);
  int left = 0, rc = 0;
  for (int r = 0; r < w->n; r++) left += !(done[r] = skip && skip[r]);
  while (left > 0) {
    uint64_t before = ct_dist_sim_progress(w->tr);
    for (int r = 0; r < w->n; r++) {
      if (done[r]) continue;
      ct_exec_status st = ct_dist_exec_step(&w->x[r]);
      if (st == CT_EXEC_ERROR) rc = -1;
      if (st != CT_EXEC_BLOCKED) done[r] = true, left--;
    }
    if (rc) break;
    if (left > 0 && ct_dist_sim_progress(w->tr) == before) {
      rc = 1;
      break;
    }
  }
  for (int r = 0; r < w->n; r++)
    if (!(skip && skip[r])) ct_dist_exec_end(&w->x[r]);
  free(done);
  return rc;
}

static double combine(double a, double b, ct_dist_op op) {
  return op == CT_DIST_MAX ? fmax(a, b) : op == CT_DIST_MIN ? fmin(a, b) : a + b;
}

static void check_all_reduce(ct_dist_algo a, ct_dist_op op, ct_dtype dt) {
  for (size_t ni = 0; ni < sizeof NS / sizeof *NS; ni++)
    for (size_t si = 0; si < sizeof SIZES / sizeof *SIZES; si++) {
      int n = NS[ni];
      int64_t S = SIZES[si];
      world w = make(n, dt, S, 0, 0);
      for (int r = 0; r < n; r++)
        for (int64_t i = 0; i < S; i++) set(w.bufs[r], dt, i, dt == CT_I32 || dt == CT_I64 ? floor(val(r, i) * 10) : val(r, i));
      double *want = malloc((size_t)S * sizeof *want);
      for (int64_t i = 0; i < S; i++) {
        want[i] = get(w.bufs[0], dt, i);
        for (int r = 1; r < n; r++) want[i] = combine(want[i], get(w.bufs[r], dt, i), op);
        if (op == CT_DIST_MEAN) want[i] /= n;
      }
      cr_assert_eq(run_all(&w, CT_COLL_ALL_REDUCE, a, op, dt, S, 0, NULL), 0, "%s n=%d S=%lld: %s",
                   ct_dist_algo_name(a), n, (long long)S, ct_last_error());
      for (int r = 0; r < n; r++)
        for (int64_t i = 0; i < S; i++)
          cr_assert(fabs(get(w.bufs[r], dt, i) - want[i]) <= (dt == CT_F32 ? 1e-4 : 1e-9) * (1 + fabs(want[i])),
                    "all_reduce %s %s %s n=%d S=%lld rank %d [%lld]: %g, want %g", ct_dist_algo_name(a),
                    ct_dist_op_name(op), ct_dtype_name(dt), n, (long long)S, r, (long long)i, get(w.bufs[r], dt, i),
                    want[i]);
      free(want);
      drop(&w);
    }
}

Test(dist_sim, all_reduce_every_algorithm_op_and_dtype) {
  ct_dist_algo algos[] = {CT_ALGO_RING, CT_ALGO_TREE, CT_ALGO_HALVING_DOUBLING, CT_ALGO_PS, CT_ALGO_NATIVE};
  for (size_t a = 0; a < sizeof algos / sizeof *algos; a++)
    for (int op = 0; op < CT_DIST_NOPS; op++) {
      check_all_reduce(algos[a], (ct_dist_op)op, CT_F32);
      check_all_reduce(algos[a], (ct_dist_op)op, CT_F64);
      if (op != CT_DIST_MEAN) {
        check_all_reduce(algos[a], (ct_dist_op)op, CT_I32);
        check_all_reduce(algos[a], (ct_dist_op)op, CT_I64);
      }
    }
}

Test(dist_sim, reduce_scatter_all_gather_broadcast_all_to_all) {
  for (size_t ni = 0; ni < sizeof NS / sizeof *NS; ni++)
    for (size_t si = 0; si < sizeof SIZES / sizeof *SIZES; si++) {
      int n = NS[ni];
      int64_t S = SIZES[si];
      world w = make(n, CT_F64, S * n, 0, 0);
      /* reduce_scatter (sum and max): rank r ends with chunk r reduced */
      for (int op = 0; op < CT_DIST_NOPS; op += 2) {
        for (int r = 0; r < n; r++)
          for (int64_t i = 0; i < S; i++) set(w.bufs[r], CT_F64, i, val(r, i));
        cr_assert_eq(run_all(&w, CT_COLL_REDUCE_SCATTER, CT_ALGO_RING, (ct_dist_op)op, CT_F64, S, 0, NULL), 0, "%s",
                     ct_last_error());
        for (int r = 0; r < n; r++)
          for (int64_t i = ct_dist_chunk_off(S, n, r); i < ct_dist_chunk_off(S, n, r) + ct_dist_chunk_len(S, n, r); i++) {
            double want = val(0, i);
            for (int q = 1; q < n; q++) want = combine(want, val(q, i), (ct_dist_op)op);
            cr_assert(fabs(get(w.bufs[r], CT_F64, i) - want) < 1e-9, "reduce_scatter n=%d S=%lld rank %d [%lld]", n,
                      (long long)S, r, (long long)i);
          }
      }
      /* all_gather: rank r contributes its chunk */
      for (int r = 0; r < n; r++)
        for (int64_t i = 0; i < S; i++) set(w.bufs[r], CT_F64, i, -1);
      for (int r = 0; r < n; r++)
        for (int64_t i = ct_dist_chunk_off(S, n, r); i < ct_dist_chunk_off(S, n, r) + ct_dist_chunk_len(S, n, r); i++)
          set(w.bufs[r], CT_F64, i, val(r, i));
      cr_assert_eq(run_all(&w, CT_COLL_ALL_GATHER, CT_ALGO_RING, CT_DIST_SUM, CT_F64, S, 0, NULL), 0);
      for (int r = 0; r < n; r++)
        for (int q = 0; q < n; q++)
          for (int64_t i = ct_dist_chunk_off(S, n, q); i < ct_dist_chunk_off(S, n, q) + ct_dist_chunk_len(S, n, q); i++)
            cr_assert_eq(get(w.bufs[r], CT_F64, i), val(q, i), "all_gather n=%d S=%lld rank %d [%lld]", n, (long long)S, r,
                         (long long)i);
      /* broadcast from every root */
      for (int root = 0; root < n; root++) {
        for (int r = 0; r < n; r++)
          for (int64_t i = 0; i < S; i++) set(w.bufs[r], CT_F64, i, val(r, i));
        cr_assert_eq(run_all(&w, CT_COLL_BROADCAST, CT_ALGO_TREE, CT_DIST_SUM, CT_F64, S, root, NULL), 0);
        for (int r = 0; r < n; r++)
          for (int64_t i = 0; i < S; i++) cr_assert_eq(get(w.bufs[r], CT_F64, i), val(root, i), "broadcast root %d", root);
      }
      /* all_to_all of n chunks of S: rank r's chunk q goes to rank q's slot r */
      for (int r = 0; r < n; r++)
        for (int64_t i = 0; i < S * n; i++) set(w.bufs[r], CT_F64, i, val(r, i));
      cr_assert_eq(run_all(&w, CT_COLL_ALL_TO_ALL, CT_ALGO_PAIRWISE, CT_DIST_SUM, CT_F64, S * n, 0, NULL), 0, "%s",
                   ct_last_error());
      for (int r = 0; r < n; r++)
        for (int q = 0; q < n; q++)
          for (int64_t i = 0; i < S; i++)
            cr_assert_eq(get(w.bufs[r], CT_F64, q * S + i), val(q, r * S + i), "all_to_all n=%d S=%lld", n, (long long)S);
      /* barrier */
      cr_assert_eq(run_all(&w, CT_COLL_BARRIER, CT_ALGO_DISSEMINATION, CT_DIST_SUM, CT_F64, 0, 0, NULL), 0);
      drop(&w);
    }
}

Test(dist_sim, ring_sends_2_n_minus_1_over_n_S_in_2_n_minus_1_steps) {
  int ns[] = {2, 4, 8};
  for (int k = 0; k < 3; k++) {
    int n = ns[k];
    int64_t S = 1024 * n; /* elements; f32 */
    double alpha = 5e-6, bw = 25e9, bytes = (double)S * 4;
    world w = make(n, CT_F32, S, alpha, bw);
    cr_assert_eq(run_all(&w, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM, CT_F32, S, 0, NULL), 0);
    for (int r = 0; r < n; r++) {
      const ct_dist_stat *st = &w.stats[r].by[CT_COLL_ALL_REDUCE][CT_ALGO_RING];
      cr_assert_eq(st->sent, 2.0 * (n - 1) / n * bytes, "rank %d sent %g", r, st->sent);
      cr_assert_eq(st->recvd, 2.0 * (n - 1) / n * bytes);
      cr_assert_eq(st->messages, 2 * (n - 1));
      double law = 2 * (n - 1) * alpha + 2.0 * (n - 1) / n * bytes / bw;
      cr_assert(fabs(st->time_s - law) < 1e-12, "ring time %g, law %g", st->time_s, law);
    }
    drop(&w);
  }
}

Test(dist_sim, parameter_server_link_carries_n_minus_1_S_each_way) {
  int n = 4;
  int64_t S = 1000;
  world w = make(n, CT_F64, S, 1e-6, 1e9);
  cr_assert_eq(run_all(&w, CT_COLL_ALL_REDUCE, CT_ALGO_PS, CT_DIST_SUM, CT_F64, S, 0, NULL), 0);
  const ct_dist_stat *srv = &w.stats[0].by[CT_COLL_ALL_REDUCE][CT_ALGO_PS];
  cr_assert_eq(srv->recvd, (n - 1) * S * 8.0);
  cr_assert_eq(srv->sent, (n - 1) * S * 8.0);
  cr_assert_eq(w.stats[1].by[CT_COLL_ALL_REDUCE][CT_ALGO_PS].sent, S * 8.0);
  /* the server's NIC serialises: (n-1) S / B in, (n-1) S / B out, plus two latencies, until the
     last worker has the result */
  double law = 2 * 1e-6 + 2.0 * (n - 1) * S * 8 / 1e9, last = 0;
  for (int r = 0; r < n; r++) last = fmax(last, w.stats[r].by[CT_COLL_ALL_REDUCE][CT_ALGO_PS].time_s);
  cr_assert(fabs(last - law) < 1e-12, "ps time %g, law %g", last, law);
  drop(&w);
}

Test(dist_sim, subgroup_members_are_global_ranks) {
  world w = make(4, CT_F64, 5, 0, 0);
  int members[] = {1, 3};
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 5; i++) set(w.bufs[r], CT_F64, i, r * 10 + i);
  ct_dist_exec x[2];
  for (int g = 0; g < 2; g++)
    cr_assert_eq(ct_dist_exec_begin(&x[g], w.tr, members, 2, g, 7, 1, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM,
                                    w.bufs[members[g]], 5, CT_F64, 0, NULL), 0);
  int done = 0;
  for (int it = 0; it < 10 && done < 2; it++)
    for (int g = 0; g < 2; g++)
      if (x[g].next <= x[g].sched.nsteps && ct_dist_exec_step(&x[g]) == CT_EXEC_DONE) done++;
  cr_assert_eq(done, 2);
  for (int g = 0; g < 2; g++) ct_dist_exec_end(&x[g]);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(get(w.bufs[1], CT_F64, i), 40 + 2 * i);
    cr_assert_eq(get(w.bufs[3], CT_F64, i), 40 + 2 * i);
    cr_assert_eq(get(w.bufs[0], CT_F64, i), i, "rank 0 is not in the group");
  }
  drop(&w);
}

Test(dist_sim, mismatched_shapes_are_an_error_naming_both_ranks) {
  world w = make(2, CT_F32, 9, 0, 0);
  cr_assert_eq(ct_dist_exec_begin(&w.x[0], w.tr, w.members, 2, 0, 0, 1, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM,
                                  w.bufs[0], 8, CT_F32, 0, NULL), 0);
  cr_assert_eq(ct_dist_exec_begin(&w.x[1], w.tr, w.members, 2, 1, 0, 1, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM,
                                  w.bufs[1], 9, CT_F32, 0, NULL), 0);
  ct_exec_status a = ct_dist_exec_step(&w.x[0]);
  ct_exec_status b = ct_dist_exec_step(&w.x[1]);
  cr_assert(a == CT_EXEC_ERROR || b == CT_EXEC_ERROR || ct_dist_exec_step(&w.x[0]) == CT_EXEC_ERROR);
  cr_assert(strstr(ct_last_error(), "mismatch") && strstr(ct_last_error(), "rank 1") && strstr(ct_last_error(), "rank 2")
            && strstr(ct_last_error(), "tensors differ"), "%s", ct_last_error());
  ct_dist_exec_end(&w.x[0]);
  ct_dist_exec_end(&w.x[1]);
  drop(&w);
}

Test(dist_sim, a_rank_that_never_arrives_is_a_deadlock_not_a_hang) {
  world w = make(3, CT_F32, 6, 0, 0);
  bool skip[3] = {false, false, true};
  cr_assert_eq(run_all(&w, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM, CT_F32, 6, 0, skip), 1);
  drop(&w);
}

Test(dist_sim, errors_name_the_collective) {
  world w = make(3, CT_F32, 7, 0, 0);
  ct_dist_exec x;
  cr_assert_eq(ct_dist_exec_begin(&x, w.tr, w.members, 3, 0, 0, 1, CT_COLL_ALL_TO_ALL, CT_ALGO_PAIRWISE, CT_DIST_SUM,
                                  w.bufs[0], 7, CT_F32, 0, NULL), -1);
  cr_assert(strstr(ct_last_error(), "all_to_all: 7 elements"), "%s", ct_last_error());
  cr_assert_eq(ct_dist_exec_begin(&x, w.tr, w.members, 3, 0, 0, 1, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_MEAN,
                                  w.bufs[0], 7, CT_I32, 0, NULL), -1);
  cr_assert(strstr(ct_last_error(), "mean of i32"), "%s", ct_last_error());
  cr_assert_eq(ct_dist_exec_begin(&x, w.tr, w.members, 3, 0, 0, 1, CT_COLL_BROADCAST, CT_ALGO_RING, CT_DIST_SUM,
                                  w.bufs[0], 7, CT_F32, 0, NULL), -1);
  cr_assert(strstr(ct_last_error(), "broadcast: no algorithm \"ring\""), "%s", ct_last_error());
  drop(&w);
}

Test(dist_sim, every_message_and_collective_is_an_event_on_the_virtual_clock) {
  int n = 4;
  world w = make(n, CT_F32, 400, 1e-6, 1e9);
  ct_events_start();
  cr_assert_eq(run_all(&w, CT_COLL_ALL_REDUCE, CT_ALGO_RING, CT_DIST_SUM, CT_F32, 400, 0, NULL), 0);
  ct_events_stop();
  int sends = 0, recvs = 0, colls = 0;
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *e = ct_events_get(i);
    if (e->kind == CT_EV_MESSAGE) {
      cr_assert_str_eq(e->comm.algo, "ring");
      cr_assert_eq(e->bytes, 400.0 * 4 / n, "a ring message carries S/N");
      cr_assert_eq(e->comm.peer, e->comm.recv ? (e->comm.rank + n - 1) % n : (e->comm.rank + 1) % n);
      cr_assert(e->comm.step >= 0 && e->comm.step < 2 * (n - 1) && e->comm.chunk >= 0 && e->comm.chunk < n);
      cr_assert(e->t1 > e->t0, "messages take virtual time");
      e->comm.recv ? recvs++ : sends++;
    } else if (e->kind == CT_EV_COLLECTIVE) {
      cr_assert_str_eq(e->name, "all_reduce");
      cr_assert(fabs(e->t1 - e->t0 - 1e6 * (2 * (n - 1) * 1e-6 + 2.0 * (n - 1) / n * 1600 / 1e9)) < 1e-6);
      colls++;
    }
  }
  cr_assert_eq(sends, n * 2 * (n - 1));
  cr_assert_eq(recvs, n * 2 * (n - 1));
  cr_assert_eq(colls, n);
  ct_events_clear();
  drop(&w);
}
