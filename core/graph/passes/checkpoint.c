/* checkpoint.c: the "checkpoint" graph pass (the op of that name, nn.checkpoint, is
 * ops/ops_checkpoint.c): the forward part of a captured step is cut into segments (sqrt of its
 * layers by default); only values that cross segments are kept for backward, and each segment's
 * other activations are recomputed (cloned nodes) just before backward first needs them. With
 * full_recompute every layer is a segment and nothing but the inputs is kept: each segment is
 * recomputed from the start (O(n^2) time, O(1) activations).
 * Invariants: recomputation runs the same ops on the same values, so checkpointed gradients equal
 * the plain ones bit for bit; random ops (dropout masks) are kept, never recomputed; a segment is
 * not recomputed across an in-place write to something it reads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

/* ==== the graph pass ========================================================================== */

static bool is_layer(int op) { return op == CT_OP_matmul || op == CT_OP_conv2d; }

/* One run of the pass: the forward's end, its segments, and the per-value tables every step reads.
   All arrays are owned here and freed once by ckpt_free (they grow as cloned values are added). */
typedef struct {
  ct_graph *g;
  ct_text *why;
  int fb;        /* first backward node */
  int L, k;      /* layers (or ops) in the forward; segments */
  bool by_nodes; /* no matmul/conv: every non-view op is a layer */
  bool full;     /* full recompute: only inputs kept */
  int *seg_of;   /* [nv] forward segment of a value's producer, -1 */
  char *kept;    /* [nv] kept for backward (crosses segments, pinned, output, random, in-place) */
  int *map;      /* [nv] value -> its recomputed clone while a segment is cloned */
  char *in_set;  /* [nn] forward node is in the current segment's recompute closure */
  int *stack;
  int cloned;
  double extra_flops;
} ckpt_run;

static void ckpt_free(ckpt_run *c) { free(c->seg_of), free(c->kept), free(c->map), free(c->in_set), free(c->stack); }

/* Step 1: find the forward, count its layers, choose k segments. 0: nothing to do (said why). */
static int choose_segments(ckpt_run *c, const ct_pass_opts *o) {
  ct_graph *g = c->g;
  c->fb = -1;
  for (int i = 0; i < g->nn && c->fb < 0; i++)
    if (!g->n[i].dead && g->n[i].backward) c->fb = i;
  if (c->fb < 0) return ct_text_printf(c->why, "  no backward in this graph: nothing to checkpoint\n"), 0;
  for (int i = 0; i < c->fb; i++)
    if (g->n[i].segment >= 0 && !g->n[i].dead)
      return ct_text_printf(c->why, "  the graph is already checkpointed\n"), 0;
  c->L = 0;
  for (int i = 0; i < c->fb; i++)
    if (!g->n[i].dead && is_layer(g->n[i].op)) c->L++;
  c->by_nodes = c->L == 0;
  if (c->by_nodes)
    for (int i = 0; i < c->fb; i++) c->L += !g->n[i].dead && !ct_gop_is_view(g->n[i].op);
  if (c->L < 2) return ct_text_printf(c->why, "  the forward has fewer than 2 layers: nothing to gain\n"), 0;
  c->full = o->full_recompute;
  int k = c->full ? c->L : o->segments > 0 ? o->segments : (int)lround(sqrt((double)c->L));
  c->k = k < 1 ? 1 : k > c->L ? c->L : k;
  return 1;
}

/* Step 2: the segment of every forward node, by the layer it belongs to. */
static void assign_segments(ckpt_run *c) {
  int layer = -1;
  for (int i = 0; i < c->fb; i++) {
    ct_gnode *n = &c->g->n[i];
    if (n->dead) continue;
    if (c->by_nodes ? !ct_gop_is_view(n->op) : is_layer(n->op)) layer++;
    int l = layer < 0 ? 0 : layer;
    n->segment = (int)((int64_t)l * c->k / c->L);
  }
}

static int64_t value_bytes(const ct_gvalue *x) {
  int64_t b = (int64_t)ct_dtype_size(x->dtype);
  for (int d = 0; d < x->ndim; d++) b *= x->shape[d];
  return b;
}

/* Step 3: which forward values backward keeps (those that cross segments unless full recompute,
   and those never recomputed); says how many and how large. */
static int mark_kept(ckpt_run *c) {
  ct_graph *g = c->g;
  c->seg_of = malloc(sizeof(int) * (size_t)(g->nv + 1));
  c->kept = calloc((size_t)(g->nv + 1), 1);
  if (!c->seg_of || !c->kept) return ct_errorf("checkpoint: out of memory");
  for (int v = 0; v < g->nv; v++) {
    int p = g->v[v].producer;
    c->seg_of[v] = p >= 0 && p < c->fb && !g->n[p].dead ? g->n[p].segment : -1;
    if (c->seg_of[v] >= 0 && (g->v[v].pinned || ct_graph_value_is_output(g, v) || g->n[p].op == CT_OP_dropout_mask ||
                              ct_gop_is_inplace(g->n[p].op)))
      c->kept[v] = 1;
  }
  int nkept = 0;
  int64_t kept_bytes = 0;
  for (int i = 0; i < c->fb && !c->full; i++) {
    ct_gnode *n = &g->n[i];
    for (int q = 0; q < n->nin && !n->dead; q++) {
      int v = n->in[q];
      if (c->seg_of[v] < 0 || c->seg_of[v] == n->segment || c->kept[v]) continue;
      c->kept[v] = 1;
      nkept++;
      if (!ct_gop_is_view(g->n[g->v[v].producer].op)) kept_bytes += value_bytes(&g->v[v]);
    }
  }
  ct_text_printf(c->why, "  %d %s in the forward, %d segment%s%s; %d values kept across segments (%lld bytes)\n", c->L,
                 c->by_nodes ? "ops" : "layers", c->k, c->k == 1 ? "" : "s",
                 c->full ? " (full recompute: only inputs kept)" : "", nkept, (long long)kept_bytes);
  c->map = malloc(sizeof(int) * (size_t)(g->nv + 1));
  c->in_set = calloc((size_t)(g->nn + 1), 1);
  c->stack = malloc(sizeof(int) * (size_t)(g->nv + g->nn + 1));
  return c->map && c->in_set && c->stack ? 0 : ct_errorf("checkpoint: out of memory");
}

/* Step 4a: the forward nodes segment s must recompute (in_set) and the first backward node that
   needs one of its dropped values (returned; -1 when backward needs none). */
static int closure_of_segment(ckpt_run *c, int s) {
  ct_graph *g = c->g;
  size_t cap = (size_t)g->nv + 16;
  for (int i = 0; i < g->nn; i++) cap += (size_t)g->n[i].nin;
  int *st = realloc(c->stack, sizeof(int) * cap);
  if (!st) return ct_errorf("checkpoint: out of memory"), -2;
  c->stack = st;
  int ip = -1, sp = 0;
  memset(c->in_set, 0, (size_t)g->nn);
  for (int i = c->fb; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    for (int q = 0; q < n->nin && !n->dead; q++) {
      int v = n->in[q];
      if (v < g->nv && c->seg_of[v] == s && !c->kept[v] && g->v[v].producer < c->fb) {
        if (ip < 0) ip = i;
        st[sp++] = v;
      }
    }
  }
  while (sp) { /* back to kept values, externals (or the start) */
    int v = st[--sp];
    int p = g->v[v].producer;
    if (p < 0 || p >= c->fb || c->kept[v] || c->in_set[p]) continue;
    c->in_set[p] = 1;
    for (int q = 0; q < g->n[p].nin; q++) st[sp++] = g->n[p].in[q];
  }
  return ip;
}

/* Step 4b: would the recomputed nodes read something an in-place op rewrote before node ip? */
static bool inplace_hazard(const ckpt_run *c, int ip) {
  const ct_graph *g = c->g;
  for (int i = 0; i < c->fb; i++) {
    if (!c->in_set[i]) continue;
    for (int q = 0; q < g->n[i].nin; q++)
      if (ct_graph_epoch(g, g->n[i].in[q], i) != ct_graph_epoch(g, g->n[i].in[q], ip)) return true;
  }
  return false;
}

/* A fresh value shaped like value x (a clone's output), the tables grown to cover it. */
static int clone_value(ckpt_run *c, int x_id) {
  ct_graph *g = c->g;
  const ct_gvalue xv = g->v[x_id]; /* g->v moves when a value is added */
  ct_meta m;
  memset(&m, 0, sizeof m);
  m.dtype = xv.dtype, m.ndim = xv.ndim, m.offset = xv.offset;
  memcpy(m.shape, xv.shape, sizeof m.shape);
  memcpy(m.stride, xv.stride, sizeof m.stride);
  int y = ct_graph_add_value(g, &m);
  if (y < 0) return -1;
  int *mm = realloc(c->map, sizeof(int) * (size_t)(g->nv + 1));
  if (mm) c->map = mm;
  int *ss = realloc(c->seg_of, sizeof(int) * (size_t)(g->nv + 1));
  if (ss) c->seg_of = ss;
  char *kk = realloc(c->kept, (size_t)(g->nv + 1));
  if (kk) c->kept = kk;
  if (!mm || !ss || !kk) return ct_errorf("checkpoint: out of memory");
  c->map[y] = y, c->seg_of[y] = -1, c->kept[y] = 0;
  c->map[x_id] = y;
  if (xv.name) {
    char nm[96];
    snprintf(nm, sizeof nm, "%s'", xv.name);
    g->v[y].name = strdup(nm);
  }
  return y;
}

/* Step 4c: insert at position `at` a backward clone of forward node i (segment s). */
static int clone_node(ckpt_run *c, int i, int s, int at) {
  ct_graph *g = c->g;
  ct_gnode src = g->n[i]; /* copy: the array moves on insertion */
  int outs[16], ins[64];
  if (src.nout > 16) return 0;
  for (int q = 0; q < src.nout; q++)
    if ((outs[q] = clone_value(c, src.out[q])) < 0) return -1;
  if (src.nin > 64) return ct_errorf("checkpoint: a node with %d inputs", src.nin);
  for (int q = 0; q < src.nin; q++) ins[q] = c->map[src.in[q]];
  if (ct_graph_insert_node(g, at, src.op, &src.attrs, ins, src.nin, outs, src.nout) < 0) return -1;
  ct_gnode *n = &g->n[at];
  n->backward = true;
  n->segment = s;
  n->flops = src.flops, n->bytes = src.bytes;
  char lab[64];
  snprintf(lab, sizeof lab, "recompute segment %d", s + 1);
  n->label = strdup(lab);
  c->extra_flops += src.flops;
  /* in_set is indexed by forward position (< fb): inserting after fb leaves it valid */
  char *grown = realloc(c->in_set, (size_t)(g->nn + 1));
  if (!grown) return ct_errorf("checkpoint: out of memory");
  c->in_set = grown;
  c->in_set[g->nn - 1] = 0;
  return 1;
}

/* Step 4: recompute segment s just before backward first needs it: 1 done, 0 skipped, -1 error. */
static int recompute_segment(ckpt_run *c, int s) {
  ct_graph *g = c->g;
  int ip = closure_of_segment(c, s);
  if (ip < -1) return -1;
  if (ip < 0) return 0;
  if (inplace_hazard(c, ip)) {
    ct_text_printf(c->why, "  segment %d: not recomputed (an in-place write to what it reads comes before backward)\n",
                   s + 1);
    return 0;
  }
  for (int v = 0; v < g->nv; v++) c->map[v] = v;
  char first[160], firstlab[96] = "";
  snprintf(first, sizeof first, "%s #%d", ct_gop_name(g->n[ip].op), ip + 1);
  if (g->n[ip].label) snprintf(firstlab, sizeof firstlab, " (%s)", g->n[ip].label);
  int at = ip, n_here = 0;
  for (int i = 0; i < c->fb; i++) {
    if (!c->in_set[i]) continue;
    int rc = clone_node(c, i, s, at);
    if (rc < 0) return -1;
    at += rc, n_here += rc;
  }
  /* backward reads segment s's recomputed values from here on (the clones of earlier segments
     that full recompute makes on the way are private to this chain) */
  for (int i = at; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    for (int q = 0; q < n->nin && !n->dead; q++) {
      int v = n->in[q];
      if (v < g->nv && c->seg_of[v] == s && !c->kept[v]) n->in[q] = c->map[v];
    }
  }
  c->cloned += n_here;
  ct_text_printf(c->why, "  segment %d: %d ops recomputed just before %s%s\n", s + 1, n_here, first, firstlab);
  return 1;
}

int ct_pass_checkpoint(ct_graph *g, const ct_pass_opts *o, ct_text *why) {
  ckpt_run c = {.g = g, .why = why};
  if (!choose_segments(&c, o)) return 0;
  assign_segments(&c);
  int changes = 0;
  if (mark_kept(&c)) changes = -1;
  for (int s = c.k - 1; s >= 0 && changes >= 0; s--) {
    int rc = recompute_segment(&c, s);
    changes = rc < 0 ? -1 : changes + rc;
  }
  if (changes >= 0) {
    char fl[32];
    snprintf(fl, sizeof fl, "%.3g", c.extra_flops);
    ct_text_printf(why, "  %d ops recomputed in all (%s extra flops)\n", c.cloned, fl);
  }
  ckpt_free(&c);
  return changes;
}
