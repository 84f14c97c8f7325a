/* schedule.c: every collective algorithm, written once as the list of steps one rank runs.
 *
 *  ring all_reduce      reduce-scatter then all-gather round the ring: 2(n-1) steps, each sending
 *                       one chunk of S/n, so a rank sends exactly 2(n-1)/n S (Patarasuk-Yuan).
 *  tree all_reduce      binomial reduce to rank 0, then binomial broadcast: 2 ceil(log2 n) rounds
 *                       of the whole buffer.
 *  halving_doubling     Rabenseifner: recursive-halving reduce-scatter, recursive-doubling
 *                       all-gather among the largest power of two p <= n; the n - p extra ranks
 *                       first fold their buffer into a neighbour and get the result back at the end.
 *  ps                   parameter server: every rank sends its buffer to rank 0, which reduces and
 *                       sends the result back; rank 0's link carries (n-1) S each way.
 *  ring reduce_scatter / all_gather: the two halves of the ring; rank r ends owning chunk r.
 *  tree broadcast       binomial from the root.       pairwise all_to_all: n-1 exchanges.
 *  dissemination barrier: ceil(log2 n) rounds of empty messages.
 *
 * Invariants: see dist.h; chunks are ct_dist_chunk_off/len of the count over n (or p) pieces. */
#include <stdlib.h>

#include "dist/dist.h"

int64_t ct_dist_chunk_len(int64_t count, int n, int c) { return count / n + (c < count % n ? 1 : 0); }
int64_t ct_dist_chunk_off(int64_t count, int n, int c) {
  int64_t r = count % n;
  return (int64_t)c * (count / n) + (c < r ? c : r);
}

static int push(ct_dist_schedule *s, ct_dist_step st) {
  if (s->nsteps == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    ct_dist_step *p = realloc(s->steps, (size_t)cap * sizeof *p);
    if (!p) return ct_errorf("dist: out of memory building a schedule");
    s->steps = p;
    s->cap = cap;
  }
  s->steps[s->nsteps++] = st;
  return 0;
}

static int send_step(ct_dist_schedule *s, int step, int peer, int64_t off, int64_t len, int chunk) {
  return push(s, (ct_dist_step){step, CT_STEP_SEND, peer, -1, off, len, 0, 0, chunk});
}
static int recv_step(ct_dist_schedule *s, int step, int peer, int64_t off, int64_t len, bool reduce, int chunk) {
  return push(s, (ct_dist_step){step, reduce ? CT_STEP_RECV_REDUCE : CT_STEP_RECV_COPY, -1, peer, 0, 0, off, len,
                                chunk});
}
static int sendrecv_step(ct_dist_schedule *s, int step, int to, int64_t soff, int64_t slen, int from, int64_t roff,
                         int64_t rlen, bool reduce, int chunk) {
  return push(s, (ct_dist_step){step, reduce ? CT_STEP_SENDRECV_REDUCE : CT_STEP_SENDRECV_COPY, to, from, soff, slen,
                                roff, rlen, chunk});
}

static int mod(int a, int n) { return ((a % n) + n) % n; }

/* Ring reduce-scatter: at step s rank r sends chunk r-s-1 to r+1 and reduces chunk r-s-2 from r-1,
   so after n-1 steps chunk r is complete on rank r. */
static int ring_reduce_scatter(ct_dist_schedule *s, int n, int r, int64_t count, int step0) {
  for (int k = 0; k < n - 1; k++) {
    int cs = mod(r - k - 1, n), cr = mod(r - k - 2, n);
    if (sendrecv_step(s, step0 + k, (r + 1) % n, ct_dist_chunk_off(count, n, cs), ct_dist_chunk_len(count, n, cs),
                      mod(r - 1, n), ct_dist_chunk_off(count, n, cr), ct_dist_chunk_len(count, n, cr), true, cs))
      return -1;
  }
  return 0;
}

/* Ring all-gather from "rank r owns chunk r": at step s send chunk r-s, receive chunk r-s-1. */
static int ring_all_gather(ct_dist_schedule *s, int n, int r, int64_t count, int step0) {
  for (int k = 0; k < n - 1; k++) {
    int cs = mod(r - k, n), cr = mod(r - k - 1, n);
    if (sendrecv_step(s, step0 + k, (r + 1) % n, ct_dist_chunk_off(count, n, cs), ct_dist_chunk_len(count, n, cs),
                      mod(r - 1, n), ct_dist_chunk_off(count, n, cr), ct_dist_chunk_len(count, n, cr), false, cs))
      return -1;
  }
  return 0;
}

static int ceil_log2(int n) {
  int l = 0;
  while ((1 << l) < n) l++;
  return l;
}

/* Binomial reduce of the whole buffer to rank 0: round k, ranks with bit k set send to r - 2^k. */
static int binomial_reduce(ct_dist_schedule *s, int n, int r, int64_t count) {
  for (int k = 0; (1 << k) < n; k++) {
    int m = 1 << k;
    if (r & m) return send_step(s, k, r - m, 0, count, -1);
    if (r + m < n && recv_step(s, k, r + m, 0, count, true, -1)) return -1;
  }
  return 0;
}

/* Binomial broadcast from root; rank vr (relative to root) receives from vr - lowbit(vr), then
   sends to vr + m for each smaller power of two m, largest first (round L-1-log2(m)). */
static int binomial_bcast(ct_dist_schedule *s, int n, int r, int root, int64_t count, int step0) {
  int L = ceil_log2(n), vr = mod(r - root, n), m = 1, k = 0;
  while (m < n) {
    if (vr & m) {
      if (recv_step(s, step0 + L - 1 - k, mod(vr - m + root, n), 0, count, false, -1)) return -1;
      break;
    }
    m <<= 1;
    k++;
  }
  for (m >>= 1, k--; m > 0; m >>= 1, k--)
    if (vr + m < n && send_step(s, step0 + L - 1 - k, mod(vr + m + root, n), 0, count, -1)) return -1;
  return 0;
}

/* Rabenseifner's all_reduce for any n. */
static int halving_doubling(ct_dist_schedule *s, int n, int r, int64_t count) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  int rem = n - p, nr, L = ceil_log2(p), step = 1;
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      if (send_step(s, 0, r + 1, 0, count, -1)) return -1;
      return recv_step(s, 2 * L + 1, r + 1, 0, count, false, -1);
    }
    if (recv_step(s, 0, r - 1, 0, count, true, -1)) return -1;
    nr = r / 2;
  } else {
    nr = r - rem;
  }
#define REAL(x) ((x) < rem ? 2 * (x) + 1 : (x) + rem)
  int lo = 0, hi = p, los[32], his[32], depth = 0;
  for (int d = p / 2; d >= 1; d /= 2, step++) { /* recursive halving: keep the half that matches my bit */
    int mid = (lo + hi) / 2, partner = REAL(nr ^ d);
    int klo = (nr & d) ? mid : lo, khi = (nr & d) ? hi : mid, slo = (nr & d) ? lo : mid, shi = (nr & d) ? mid : hi;
    los[depth] = lo;
    his[depth++] = hi;
    int64_t so = ct_dist_chunk_off(count, p, slo), se = ct_dist_chunk_off(count, p, shi);
    int64_t ko = ct_dist_chunk_off(count, p, klo), ke = ct_dist_chunk_off(count, p, khi);
    if (sendrecv_step(s, step, partner, so, se - so, partner, ko, ke - ko, true, slo)) return -1;
    lo = klo;
    hi = khi;
  }
  for (int d = 1; d < p; d *= 2, step++) { /* recursive doubling: swap halves back up */
    int partner = REAL(nr ^ d), plo = los[--depth], phi = his[depth];
    int olo = lo == plo ? hi : plo, ohi = lo == plo ? phi : lo; /* the partner's half */
    int64_t so = ct_dist_chunk_off(count, p, lo), se = ct_dist_chunk_off(count, p, hi);
    int64_t ro = ct_dist_chunk_off(count, p, olo), re = ct_dist_chunk_off(count, p, ohi);
    if (sendrecv_step(s, step, partner, so, se - so, partner, ro, re - ro, false, lo)) return -1;
    lo = plo;
    hi = phi;
  }
  if (r < 2 * rem) return send_step(s, 2 * L + 1, r - 1, 0, count, -1);
#undef REAL
  return 0;
}

static int parameter_server(ct_dist_schedule *s, int n, int r, int64_t count) {
  if (r != 0) {
    if (send_step(s, 0, 0, 0, count, -1)) return -1;
    return recv_step(s, 1, 0, 0, count, false, -1);
  }
  for (int i = 1; i < n; i++)
    if (recv_step(s, 0, i, 0, count, true, -1)) return -1;
  for (int i = 1; i < n; i++)
    if (send_step(s, 1, i, 0, count, -1)) return -1;
  return 0;
}

static int pairwise_all_to_all(ct_dist_schedule *s, int n, int r, int64_t count) {
  s->send_from_snapshot = true;
  int64_t c = count / n;
  for (int k = 1; k < n; k++) {
    int to = (r + k) % n, from = mod(r - k, n);
    if (sendrecv_step(s, k - 1, to, to * c, c, from, from * c, c, false, to)) return -1;
  }
  return 0;
}

static int dissemination_barrier(ct_dist_schedule *s, int n, int r) {
  for (int k = 0, d = 1; d < n; k++, d *= 2)
    if (sendrecv_step(s, k, (r + d) % n, 0, 0, mod(r - d, n), 0, 0, false, -1)) return -1;
  return 0;
}

int ct_dist_schedule_build(ct_dist_schedule *s, ct_dist_coll coll, ct_dist_algo algo, int n, int r, int64_t count,
                           int root) {
  *s = (ct_dist_schedule){0};
  if (n < 1 || r < 0 || r >= n) return ct_errorf("dist: rank %d outside a group of %d", r + 1, n);
  if (count < 0) return ct_errorf("dist: negative element count %lld", (long long)count);
  int rc = 0;
  bool ok = true;
  switch (coll) {
  case CT_COLL_ALL_REDUCE:
    if (n == 1) break;
    if (algo == CT_ALGO_RING || algo == CT_ALGO_NATIVE) {
      rc = ring_reduce_scatter(s, n, r, count, 0);
      if (!rc) rc = ring_all_gather(s, n, r, count, n - 1);
    } else if (algo == CT_ALGO_TREE) {
      rc = binomial_reduce(s, n, r, count);
      if (!rc) rc = binomial_bcast(s, n, r, 0, count, ceil_log2(n));
    } else if (algo == CT_ALGO_HALVING_DOUBLING) {
      rc = halving_doubling(s, n, r, count);
    } else if (algo == CT_ALGO_PS) {
      rc = parameter_server(s, n, r, count);
    } else {
      ok = false;
    }
    break;
  case CT_COLL_REDUCE_SCATTER:
  case CT_COLL_ALL_GATHER:
    if (algo != CT_ALGO_RING) ok = false;
    else if (n > 1)
      rc = coll == CT_COLL_REDUCE_SCATTER ? ring_reduce_scatter(s, n, r, count, 0) : ring_all_gather(s, n, r, count, 0);
    break;
  case CT_COLL_BROADCAST:
    if (root < 0 || root >= n) return ct_errorf("broadcast: root %d outside a group of %d", root + 1, n);
    if (algo != CT_ALGO_TREE) ok = false;
    else if (n > 1) rc = binomial_bcast(s, n, r, root, count, 0);
    break;
  case CT_COLL_ALL_TO_ALL:
    if (algo != CT_ALGO_PAIRWISE) ok = false;
    else if (count % n)
      return ct_errorf("all_to_all: %lld elements do not split into %d equal chunks", (long long)count, n);
    else if (n > 1) rc = pairwise_all_to_all(s, n, r, count);
    break;
  case CT_COLL_SEND:
  case CT_COLL_RECV:
    if (root < 0 || root >= n || root == r)
      return ct_errorf("%s: peer %d is not another rank of a group of %d", ct_dist_coll_name(coll), root + 1, n);
    if (algo != CT_ALGO_DIRECT) ok = false;
    else rc = coll == CT_COLL_SEND ? send_step(s, 0, root, 0, count, -1) : recv_step(s, 0, root, 0, count, false, -1);
    break;
  case CT_COLL_BARRIER:
    if (algo != CT_ALGO_DISSEMINATION) ok = false;
    else rc = dissemination_barrier(s, n, r);
    break;
  default:
    ok = false;
  }
  if (!ok)
    return ct_errorf("%s: no algorithm \"%s\" (all_reduce: ring, tree, halving_doubling, ps, native; reduce_scatter, "
                     "all_gather: ring; broadcast: tree; all_to_all: pairwise)",
                     ct_dist_coll_name(coll), ct_dist_algo_name(algo));
  if (rc) ct_dist_schedule_free(s);
  return rc;
}

void ct_dist_schedule_free(ct_dist_schedule *s) {
  free(s->steps);
  *s = (ct_dist_schedule){0};
}
