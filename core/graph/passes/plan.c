/* plan.c: memory planning of a captured graph: liveness over the execution order, in-place reuse
 * where the op table allows it, offsets packed into one arena, and an independent verifier.
 *
 * Invariants: a buffer is live over node positions [first, last] inclusive (a node's inputs and
 * outputs are live together while it runs); two buffers whose lifetimes intersect never share a
 * byte; an in-place output takes over its input's buffer only at the node where the input dies,
 * with the same bytes, dtype and shape, and no other input of that node reading the buffer;
 * offsets are multiples of CT_PLAN_ALIGN. Views, aliases and in-place outputs own no buffer: they
 * live in their root's, whose lifetime covers their uses. Pinned values (outputs, gradients) and
 * externals live outside the arena.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

#define CT_PLAN_ALIGN 64

static int64_t align_up(int64_t n) { return (n + CT_PLAN_ALIGN - 1) / CT_PLAN_ALIGN * CT_PLAN_ALIGN; }

static int64_t value_nbytes(const ct_gvalue *v) {
  int64_t n = 1;
  for (int d = 0; d < v->ndim; d++) n *= v->shape[d];
  return n * (int64_t)ct_dtype_size(v->dtype);
}

void ct_plan_free(ct_graph *g) {
  free(g->buffers);
  g->buffers = NULL;
  g->nbuffers = 0;
  free(g->pos_of_node);
  g->pos_of_node = NULL;
  for (int v = 0; v < g->nv; v++) g->v[v].buffer = -1;
  g->planned = false;
  memset(&g->plan, 0, sizeof g->plan);
}

int ct_graph_plan_nbuffers(const ct_graph *g) { return g->planned ? g->nbuffers : 0; }

int ct_graph_plan_buffer(const ct_graph *g, int i, ct_plan_buffer *b) {
  if (!g->planned || i < 0 || i >= g->nbuffers) return ct_errorf("plan: buffer %d out of range", i);
  *b = g->buffers[i];
  return 0;
}

int64_t ct_graph_plan_live_at(const ct_graph *g, int k) {
  if (!g->planned) return -1;
  int64_t live = 0;
  for (int i = 0; i < g->nbuffers; i++)
    if (g->buffers[i].first <= k && k <= g->buffers[i].last) live += g->buffers[i].nbytes;
  return live;
}

/* ---- packing --------------------------------------------------------------------------------- */

typedef struct {
  int64_t off, size;
} block;

/* Best fit in execution order: at each position allocate the buffers born there (smallest free
   block that fits, else the top of the arena), then free those that die there. */
static int64_t pack_bestfit(ct_plan_buffer *b, int nb, int npos) {
  block *free_list = malloc(sizeof *free_list * (size_t)(nb + 1));
  int *order = malloc(sizeof *order * (size_t)(nb + 1));
  if (!free_list || !order) {
    free(free_list), free(order);
    return -1;
  }
  int nfree = 0;
  int64_t top = 0;
  /* buffers sorted by birth (stable) */
  int k = 0;
  for (int p = 0; p < npos; p++)
    for (int i = 0; i < nb; i++)
      if (b[i].first == p) order[k++] = i;
  int next = 0;
  for (int p = 0; p < npos; p++) {
    for (; next < nb && b[order[next]].first == p; next++) {
      ct_plan_buffer *x = &b[order[next]];
      int64_t need = align_up(x->nbytes ? x->nbytes : 1);
      int best = -1;
      for (int f = 0; f < nfree; f++)
        if (free_list[f].size >= need && (best < 0 || free_list[f].size < free_list[best].size)) best = f;
      if (best < 0 && nfree && free_list[nfree - 1].off + free_list[nfree - 1].size == top) {
        best = nfree - 1; /* the block at the top grows */
        top += need - free_list[best].size;
        free_list[best].size = need;
      }
      if (best < 0) {
        x->offset = top;
        top += need;
        continue;
      }
      x->offset = free_list[best].off;
      free_list[best].off += need;
      free_list[best].size -= need;
      if (!free_list[best].size) {
        memmove(&free_list[best], &free_list[best + 1], sizeof *free_list * (size_t)(nfree - best - 1));
        nfree--;
      }
    }
    for (int i = 0; i < nb; i++) {
      if (b[i].last != p) continue;
      int64_t off = b[i].offset, size = align_up(b[i].nbytes ? b[i].nbytes : 1);
      int at = 0; /* insert sorted by offset, coalescing with neighbours */
      while (at < nfree && free_list[at].off < off) at++;
      memmove(&free_list[at + 1], &free_list[at], sizeof *free_list * (size_t)(nfree - at));
      free_list[at] = (block){off, size};
      nfree++;
      if (at + 1 < nfree && free_list[at].off + free_list[at].size == free_list[at + 1].off) {
        free_list[at].size += free_list[at + 1].size;
        memmove(&free_list[at + 1], &free_list[at + 2], sizeof *free_list * (size_t)(nfree - at - 2));
        nfree--;
      }
      if (at > 0 && free_list[at - 1].off + free_list[at - 1].size == free_list[at].off) {
        free_list[at - 1].size += free_list[at].size;
        memmove(&free_list[at], &free_list[at + 1], sizeof *free_list * (size_t)(nfree - at - 1));
        nfree--;
      }
    }
  }
  free(free_list), free(order);
  return top;
}

static int cmp_size_desc(const void *a, const void *b, void *ctx) {
  const ct_plan_buffer *x = (const ct_plan_buffer *)ctx + *(const int *)a,
                       *y = (const ct_plan_buffer *)ctx + *(const int *)b;
  if (x->nbytes != y->nbytes) return x->nbytes > y->nbytes ? -1 : 1;
  return *(const int *)a - *(const int *)b;
}
static int cmp_block_off(const void *a, const void *b) {
  const block *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Greedy by size (TFLite's): largest first, each into the smallest gap among the buffers already
   placed whose lifetimes intersect it. */
static int64_t pack_greedy(ct_plan_buffer *b, int nb) {
  int *order = malloc(sizeof *order * (size_t)(nb + 1));
  block *busy = malloc(sizeof *busy * (size_t)(nb + 1));
  bool *placed = calloc((size_t)(nb + 1), 1);
  if (!order || !busy || !placed) {
    free(order), free(busy), free(placed);
    return -1;
  }
  for (int i = 0; i < nb; i++) order[i] = i;
  qsort_r(order, (size_t)nb, sizeof *order, cmp_size_desc, b);
  int64_t top = 0;
  for (int oi = 0; oi < nb; oi++) {
    ct_plan_buffer *x = &b[order[oi]];
    int64_t need = align_up(x->nbytes ? x->nbytes : 1);
    int nbusy = 0;
    for (int j = 0; j < nb; j++) {
      if (!placed[j] || b[j].last < x->first || b[j].first > x->last) continue;
      busy[nbusy++] = (block){b[j].offset, align_up(b[j].nbytes ? b[j].nbytes : 1)};
    }
    qsort(busy, (size_t)nbusy, sizeof *busy, cmp_block_off);
    int64_t at = 0, best = -1, best_gap = 0;
    for (int j = 0; j < nbusy; j++) {
      int64_t gap = busy[j].off - at;
      if (gap >= need && (best < 0 || gap < best_gap)) best = at, best_gap = gap;
      if (busy[j].off + busy[j].size > at) at = busy[j].off + busy[j].size;
    }
    x->offset = best >= 0 ? best : at;
    placed[order[oi]] = true;
    if (x->offset + need > top) top = x->offset + need;
  }
  free(order), free(busy), free(placed);
  return top;
}

/* ---- the planner ------------------------------------------------------------------------------- */

static bool inplace_allowed(const ct_gnode *n) {
  if (n->op == CT_GOP_FUSED) return n->nout == 1;
  if (n->op < 0 || n->op >= CT_OP_COUNT) return false;
  return (ct_optable[n->op]->flags & CT_OPF_INPLACE_OK) != 0;
}

static bool same_layout(const ct_gvalue *a, const ct_gvalue *b) {
  return a->dtype == b->dtype && a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

/* One planning run: node positions, value roots and last uses, the buffers being made. */
typedef struct {
  ct_graph *g;
  const ct_plan_opts *o;
  int *pos;  /* [nn] position among live nodes, -1 for dead ones */
  int *root; /* [nv] the value whose storage a value lives in */
  int *last; /* [nv] last position that reads a root (or any alias of it) */
  ct_plan_buffer *bufs;
  int npos, nb;
  ct_plan_report rep;
} plan_work;

static void plan_work_free(plan_work *w) { free(w->pos), free(w->root), free(w->last), free(w->bufs); }

/* Step 1: positions, roots, and liveness: a root lives until the last node that reads it or any
   alias of it (an alias made at a node keeps its root alive there). */
static int plan_liveness(plan_work *w) {
  ct_graph *g = w->g;
  w->pos = malloc(sizeof *w->pos * (size_t)(g->nn + 1));
  w->root = malloc(sizeof *w->root * (size_t)(g->nv + 1));
  w->last = malloc(sizeof *w->last * (size_t)(g->nv + 1));
  w->bufs = calloc((size_t)(g->nv + 1), sizeof *w->bufs);
  if (!w->pos || !w->root || !w->last || !w->bufs) return ct_errorf("plan_memory: out of memory");
  for (int i = 0; i < g->nn; i++) w->pos[i] = g->n[i].dead ? -1 : w->npos++;
  for (int v = 0; v < g->nv; v++) {
    w->root[v] = ct_graph_root(g, v);
    w->last[v] = -1;
  }
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++)
      if (w->last[w->root[n->in[k]]] < w->pos[i]) w->last[w->root[n->in[k]]] = w->pos[i];
    for (int k = 0; k < n->nout; k++)
      if (w->last[w->root[n->out[k]]] < w->pos[i]) w->last[w->root[n->out[k]]] = w->pos[i];
  }
  return 0;
}

/* The buffer of an input of node i that output x may overwrite in place, or -1. */
static int inplace_reuse(const plan_work *w, int i, const ct_gvalue *x) {
  const ct_graph *g = w->g;
  const ct_gnode *n = &g->n[i];
  for (int j = 0; j < n->nin; j++) {
    if (n->op != CT_GOP_FUSED && j > 0) break; /* table ops: only input 0 may be overwritten */
    int in = n->in[j];
    const ct_gvalue *y = &g->v[in];
    if (w->root[in] != in || y->buffer < 0 || !same_layout(x, y)) continue;
    if (w->bufs[y->buffer].last != w->pos[i] || w->o->keep_all) continue;
    bool clash = false;
    for (int m = 0; m < n->nin; m++)
      if (m != j && w->root[n->in[m]] == in && n->in[m] != in) clash = true;
    if (!clash) return y->buffer;
  }
  return -1;
}

/* Step 2: a buffer for every root value a node makes (or its input's, when it may run in place). */
static void plan_buffers(plan_work *w) {
  ct_graph *g = w->g;
  const ct_plan_opts *o = w->o;
  bool inplace = !o->no_inplace && o->strategy != CT_PLAN_NAIVE;
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || ct_gop_is_view(n->op) || ct_gop_is_inplace(n->op)) continue;
    w->rep.ninplace_candidates += inplace_allowed(n);
    bool can = inplace && inplace_allowed(n);
    for (int k = 0; k < n->nout; k++) {
      int v = n->out[k];
      ct_gvalue *x = &g->v[v];
      if (x->pinned || w->root[v] != v) continue;
      int64_t bytes = value_nbytes(x);
      w->rep.naive_bytes += bytes;
      int lv = o->keep_all ? w->npos - 1 : (w->last[v] < w->pos[i] ? w->pos[i] : w->last[v]);
      int reuse = can ? inplace_reuse(w, i, x) : -1;
      if (reuse >= 0) {
        x->buffer = reuse;
        w->bufs[reuse].last = lv;
        w->bufs[reuse].nvalues++;
        w->rep.ninplace++;
        continue;
      }
      x->buffer = w->nb;
      w->bufs[w->nb++] =
          (ct_plan_buffer){.offset = 0, .nbytes = bytes, .first = w->pos[i], .last = lv, .value = v, .nvalues = 1};
    }
  }
}

/* Step 3: offsets in the arena by the chosen strategy; the arena's size, or -1. */
static int64_t plan_pack(plan_work *w) {
  if (w->o->strategy == CT_PLAN_GREEDY_SIZE) return pack_greedy(w->bufs, w->nb);
  if (w->o->strategy != CT_PLAN_NAIVE) return pack_bestfit(w->bufs, w->nb, w->npos);
  int64_t top = 0;
  for (int i = 0; i < w->nb; i++) {
    w->bufs[i].offset = top;
    top += align_up(w->bufs[i].nbytes ? w->bufs[i].nbytes : 1);
  }
  return top;
}

/* Step 4: the lower bound (most bytes live at once) and the activation peak; activations are
   buffers made by forward nodes (before backward starts) or by recomputation. */
static void plan_peaks(plan_work *w) {
  const ct_graph *g = w->g;
  char *act = calloc((size_t)(w->nb + 1), 1);
  int first_back = -1;
  for (int i = 0; i < g->nn && first_back < 0; i++)
    if (!g->n[i].dead && g->n[i].backward) first_back = w->pos[i];
  for (int i = 0; act && i < g->nn; i++) {
    const ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    bool forward = !n->backward && (first_back < 0 || w->pos[i] < first_back);
    bool recompute = n->backward && n->segment >= 0;
    for (int k = 0; k < n->nout; k++) {
      int b = g->v[n->out[k]].buffer;
      if (b >= 0 && w->bufs[b].value == n->out[k] && (forward || recompute)) act[b] = 1;
    }
  }
  for (int p = 0; p < w->npos; p++) {
    int64_t live = 0, alive = 0;
    for (int i = 0; i < w->nb; i++)
      if (w->bufs[i].first <= p && p <= w->bufs[i].last) {
        live += w->bufs[i].nbytes;
        if (act && act[i]) alive += w->bufs[i].nbytes;
      }
    if (live > w->rep.lower_bound) w->rep.lower_bound = live;
    if (alive > w->rep.activation_peak) w->rep.activation_peak = alive;
  }
  free(act);
}

/* Step 5: bytes outside the arena: pinned values and external storages (each counted once). */
static void plan_outside(plan_work *w) {
  const ct_graph *g = w->g;
  for (int v = 0; v < g->nv; v++) {
    const ct_gvalue *x = &g->v[v];
    if (x->pinned) w->rep.pinned_bytes += value_nbytes(x);
    if (x->producer == -1 && x->ext) {
      bool dup = false;
      for (int u = 0; u < v && !dup; u++)
        dup = g->v[u].producer == -1 && g->v[u].ext && g->v[u].ext->storage == x->ext->storage;
      if (!dup) w->rep.external_bytes += (int64_t)x->ext->storage->nbytes;
    }
  }
}

/* One plan with the options as given: liveness, buffers, packing, peaks. */
static int plan_once(ct_graph *g, const ct_plan_opts *o, ct_plan_report *r) {
  if (g->map) return ct_errorf("plan_memory: the graph is still capturing");
  ct_graph_invalidate(g); /* the runtime headers point into the old arena */
  plan_work w = {.g = g, .o = o, .rep = {.strategy = o->strategy}};
  if (plan_liveness(&w)) return plan_work_free(&w), -1;
  plan_buffers(&w);
  int64_t top = plan_pack(&w);
  if (top < 0) {
    plan_work_free(&w);
    for (int v = 0; v < g->nv; v++) g->v[v].buffer = -1;
    return ct_errorf("plan_memory: out of memory");
  }
  w.rep.planned_bytes = top;
  w.rep.nbuffers = w.nb;
  plan_peaks(&w);
  plan_outside(&w);
  g->buffers = w.bufs;
  g->nbuffers = w.nb;
  g->pos_of_node = w.pos;
  g->plan = w.rep;
  g->plan_opts = *o;
  g->planned = true;
  free(w.root), free(w.last);
  if (r) *r = w.rep;
  return 0;
}

/* ---- the verifier: recomputes every lifetime from the graph, trusts only the offsets ------- */

int ct_graph_verify_plan(const ct_graph *g) {
  if (!g->planned) return ct_errorf("verify_plan: the graph has no memory plan (call plan_memory first)");
  int nv = g->nv;
  int *first = malloc(sizeof *first * (size_t)(nv + 1)), *lastu = malloc(sizeof *lastu * (size_t)(nv + 1));
  int *own = malloc(sizeof *own * (size_t)(nv + 1));
  if (!first || !lastu || !own) {
    free(first), free(lastu), free(own);
    return ct_errorf("verify_plan: out of memory");
  }
  int rc = 0, p = 0;
  for (int v = 0; v < nv; v++) first[v] = lastu[v] = -1, own[v] = -1;
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nout; k++) {
      int v = n->out[k];
      if (g->v[v].buffer >= 0 && !ct_gop_is_view(n->op) && !ct_gop_is_inplace(n->op)) {
        first[v] = lastu[v] = p;
        own[v] = i;
      }
    }
    for (int k = 0; k < n->nin + n->nout; k++) {
      int v = ct_graph_root(g, k < n->nin ? n->in[k] : n->out[k - n->nin]);
      if (first[v] >= 0 && lastu[v] < p) lastu[v] = p;
    }
    p++;
  }
  for (int a = 0; a < nv && !rc; a++) {
    if (first[a] < 0) continue;
    if (g->v[a].buffer >= g->nbuffers) {
      rc = ct_errorf("verify_plan: value %d names buffer %d of %d", a, g->v[a].buffer, g->nbuffers);
      break;
    }
    const ct_plan_buffer *ba = &g->buffers[g->v[a].buffer];
    int64_t a0 = ba->offset, a1 = a0 + value_nbytes(&g->v[a]);
    if (a0 < 0 || a0 % CT_PLAN_ALIGN || a1 > g->plan.planned_bytes) {
      rc = ct_errorf("verify_plan: value %d at [%lld, %lld) lies outside the arena of %lld bytes", a, (long long)a0,
                     (long long)a1, (long long)g->plan.planned_bytes);
      break;
    }
    for (int b = a + 1; b < nv && !rc; b++) {
      if (first[b] < 0) continue;
      if (lastu[a] < first[b] || lastu[b] < first[a]) continue; /* never live together */
      const ct_plan_buffer *bb = &g->buffers[g->v[b].buffer];
      int64_t b0 = bb->offset, b1 = b0 + value_nbytes(&g->v[b]);
      if (a1 <= b0 || b1 <= a0) continue;
      /* an in-place handoff: b made at the node where a dies, reading a, with the op's consent */
      int lo = first[a] <= first[b] ? a : b, hi = lo == a ? b : a;
      const ct_gnode *n = &g->n[own[hi]];
      bool reads = false;
      for (int k = 0; k < n->nin; k++) reads |= n->in[k] == lo;
      bool ok = lastu[lo] == first[hi] && reads && a0 == b0 && inplace_allowed(n);
      if (!ok)
        rc = ct_errorf(
            "verify_plan: values %d (live %d..%d, bytes [%lld, %lld)) and %d (live %d..%d, bytes [%lld, %lld)) "
            "overlap in memory while both are live",
            a, first[a], lastu[a], (long long)a0, (long long)a1, b, first[b], lastu[b], (long long)b0, (long long)b1);
    }
  }
  free(first), free(lastu), free(own);
  return rc;
}

/* In-place reuse never makes the plan worse: merging a result into its dying input lengthens
   that buffer's life, and packing the longer-lived buffers can come out larger than packing
   them apart. So with in-place on, the plan without it is made too and the smaller one kept
   (then ninplace is 0: no result was placed over its input). */
int ct_graph_plan_memory(ct_graph *g, const ct_plan_opts *o, ct_plan_report *r) {
  static const ct_plan_opts defaults;
  if (!o) o = &defaults;
  ct_plan_report with;
  if (plan_once(g, o, &with)) return -1;
  if (o->no_inplace || o->strategy == CT_PLAN_NAIVE || with.ninplace == 0) {
    if (r) *r = with;
    return 0;
  }
  ct_plan_opts plain = *o;
  plain.no_inplace = true;
  ct_plan_report without;
  if (plan_once(g, &plain, &without)) return -1;
  if (without.planned_bytes < with.planned_bytes) {
    without.ninplace_candidates = with.ninplace_candidates;
    g->plan = without;
    g->plan_opts = *o;
    if (r) *r = without;
    return 0;
  }
  return plan_once(g, o, r);
}
