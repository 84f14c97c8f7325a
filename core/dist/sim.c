/* sim.c: the sim transport: N simulated workers in one process, mailboxes between them, a
 * virtual clock per rank advanced by the alpha-beta link model of dist.h, and mismatch checks.
 *
 * Invariants: a send never blocks (the bytes are copied into the destination's mailbox, a FIFO per
 * (source, destination)); a receive matches the oldest message of its group from that source, and
 * any difference in the call it belongs to (collective number, kind, algorithm, reduction, dtype,
 * element count, step, length) is an error naming both ranks (1-based, as Lua shows them) and both
 * calls; the clocks depend only on each rank's program order, never on the order workers ran. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

typedef struct msg {
  struct msg *next;
  ct_dist_hdr h;
  size_t nbytes;
  double sent, arrive; /* left the sender's NIC; fully arrived (before the receiver's ingress) */
  bool dry;            /* sent without data (a timing-only collective) */
  char data[];
} msg;

typedef struct {
  bool active;
  int src;
  ct_dist_hdr h;
  void *buf;
  size_t nbytes;
} pending;

typedef struct {
  ct_dist_transport base;
  int n;
  double alpha, bw;
  double *clock, *egress, *ingress;
  msg **head, **tail; /* n*n mailboxes, [src * n + dst] */
  pending *want;      /* one posted receive per rank (a step has at most one) */
  uint64_t progress;
} sim;

static double cost(const sim *s, size_t b) { return s->bw > 0 ? (double)b / s->bw : 0; }

static int sim_post_send(ct_dist_transport *t, int src, int dst, const ct_dist_hdr *h, const void *buf, size_t nbytes) {
  sim *s = (sim *)t;
  msg *m = malloc(sizeof *m + (buf ? nbytes : 0)); /* buf NULL: timing only, the size travels alone */
  if (!m) return ct_errorf("dist sim: out of memory for a message of %zu bytes", nbytes);
  *m = (msg){.h = *h, .nbytes = nbytes, .dry = !buf};
  if (nbytes && buf) memcpy(m->data, buf, nbytes);
  double start = s->clock[src] > s->egress[src] ? s->clock[src] : s->egress[src];
  s->egress[src] = start + cost(s, nbytes);
  s->clock[src] = s->egress[src]; /* a blocking send returns once its bytes are on the wire */
  m->sent = start;
  m->arrive = start + s->alpha + cost(s, nbytes);
  msg **tl = &s->tail[src * s->n + dst];
  if (*tl) (*tl)->next = m;
  else s->head[src * s->n + dst] = m;
  *tl = m;
  s->progress++;
  return 0;
}

static int sim_post_recv(ct_dist_transport *t, int dst, int src, const ct_dist_hdr *h, void *buf, size_t nbytes) {
  sim *s = (sim *)t;
  s->want[dst] = (pending){true, src, *h, buf, nbytes};
  return 0;
}

static const char *describe(const ct_dist_hdr *h, size_t nbytes, char *b, size_t n) {
  snprintf(b, n, "%s #%u (%s, %s, %s[%lld]) step %d, %zu bytes", ct_dist_coll_name((ct_dist_coll)h->coll), h->seq,
           ct_dist_algo_name((ct_dist_algo)h->algo), ct_dist_op_name((ct_dist_op)h->op),
           ct_dtype_name((ct_dtype)h->dtype), (long long)h->count, h->step, nbytes);
  return b;
}

static int sim_test(ct_dist_transport *t, int rank) {
  sim *s = (sim *)t;
  pending *p = &s->want[rank];
  if (!p->active) return 1;
  msg *prev = NULL, *m = s->head[p->src * s->n + rank];
  while (m && m->h.group != p->h.group) prev = m, m = m->next;
  if (!m) return 0;
  const ct_dist_hdr *a = &m->h, *b = &p->h;
  if (a->seq != b->seq || a->coll != b->coll || a->algo != b->algo || a->op != b->op || a->dtype != b->dtype ||
      a->count != b->count || a->step != b->step || m->nbytes != p->nbytes) {
    char da[160], db[160];
    return ct_errorf("dist mismatch: rank %d sent %s, but rank %d expects %s%s", p->src + 1,
                     describe(a, m->nbytes, da, sizeof da), rank + 1, describe(b, p->nbytes, db, sizeof db),
                     a->seq != b->seq || a->coll != b->coll ? " (a rank skipped or reordered a collective)"
                     : a->count != b->count || a->dtype != b->dtype ? " (tensors differ across ranks)"
                                                                    : "");
  }
  if (m->nbytes && m->dry != !p->buf)
    return ct_errorf("dist mismatch: rank %d and rank %d disagree on a timing-only collective", p->src + 1, rank + 1);
  if (m->nbytes && p->buf) memcpy(p->buf, m->data, m->nbytes);
  double done = s->ingress[rank] + cost(s, m->nbytes);
  if (m->arrive > done) done = m->arrive;
  s->ingress[rank] = done;
  if (done > s->clock[rank]) s->clock[rank] = done;
  if (prev) prev->next = m->next;
  else s->head[p->src * s->n + rank] = m->next;
  if (s->tail[p->src * s->n + rank] == m) s->tail[p->src * s->n + rank] = prev;
  free(m);
  p->active = false;
  s->progress++;
  return 1;
}

static double sim_now(ct_dist_transport *t, int rank) { return ((sim *)t)->clock[rank]; }

ct_dist_transport *ct_dist_sim_new(int n, double alpha_s, double bandwidth_Bps) {
  if (n < 1 || n > 4096) return ct_errorf("dist.run: %d workers (1 to 4096)", n), NULL;
  if (alpha_s < 0 || bandwidth_Bps < 0)
    return ct_errorf("dist.run: alpha %g s and bandwidth %g B/s must not be negative", alpha_s, bandwidth_Bps), NULL;
  sim *s = calloc(1, sizeof *s);
  if (!s) return ct_errorf("dist.run: out of memory"), NULL;
  s->base = (ct_dist_transport){.name = "sim", .world_size = n, .post_send = sim_post_send,
                                .post_recv = sim_post_recv, .test = sim_test, .now = sim_now};
  s->n = n;
  s->alpha = alpha_s;
  s->bw = bandwidth_Bps;
  s->clock = calloc((size_t)n, sizeof *s->clock);
  s->egress = calloc((size_t)n, sizeof *s->egress);
  s->ingress = calloc((size_t)n, sizeof *s->ingress);
  s->head = calloc((size_t)n * n, sizeof *s->head);
  s->tail = calloc((size_t)n * n, sizeof *s->tail);
  s->want = calloc((size_t)n, sizeof *s->want);
  if (!s->clock || !s->egress || !s->ingress || !s->head || !s->tail || !s->want) {
    ct_dist_sim_free(&s->base);
    return ct_errorf("dist.run: out of memory for %d workers", n), NULL;
  }
  return &s->base;
}

void ct_dist_sim_free(ct_dist_transport *t) {
  sim *s = (sim *)t;
  if (!s) return;
  for (int i = 0; s->head && i < s->n * s->n; i++)
    for (msg *m = s->head[i], *nx; m; m = nx) nx = m->next, free(m);
  free(s->clock);
  free(s->egress);
  free(s->ingress);
  free(s->head);
  free(s->tail);
  free(s->want);
  free(s);
}

uint64_t ct_dist_sim_progress(ct_dist_transport *t) { return ((sim *)t)->progress; }
double ct_dist_sim_clock(ct_dist_transport *t, int rank) { return ((sim *)t)->clock[rank]; }
void ct_dist_sim_advance(ct_dist_transport *t, int rank, double t_s) {
  sim *s = (sim *)t;
  if (t_s > s->clock[rank]) s->clock[rank] = t_s;
}
