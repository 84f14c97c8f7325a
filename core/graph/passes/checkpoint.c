/* pass_checkpoint.c: activation checkpointing, two ways.
 *  - ct_checkpoint (nn.checkpoint): the op "checkpoint" runs a function without recording, keeps
 *    only its inputs, and in backward runs it again with recording on to get the gradients.
 *  - the "checkpoint" graph pass: the forward part of a captured step is cut into segments
 *    (sqrt of its layers by default); only values that cross segments are kept for backward, and
 *    each segment's other activations are recomputed (cloned nodes) just before backward first
 *    needs them. With full_recompute every layer is a segment and nothing but the inputs is kept:
 *    each segment is recomputed from the start (O(n^2) time, O(1) activations).
 * Invariants: recomputation runs the same ops on the same values, so checkpointed gradients equal
 * the plain ones bit for bit; random ops (dropout masks) are kept, never recomputed; a segment is
 * not recomputed across an in-place write to something it reads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture.h"

/* ==== the checkpoint op ===================================================================== */

typedef struct ckpt_slot {
  uint64_t id;
  ct_recompute_fn run;
  ct_recompute_free_fn free_ud;
  void *ud;
  ct_tensor *anchor; /* a 0-d tensor held by the op's node: when only we hold it, the node is gone */
  struct ckpt_slot *next;
} ckpt_slot;

static ckpt_slot *slots;
static uint64_t next_slot = 1;

static void collect_slots(void) {
  for (ckpt_slot **p = &slots; *p;) {
    ckpt_slot *s = *p;
    if (s->anchor->refcount > 1) {
      p = &s->next;
      continue;
    }
    *p = s->next;
    if (s->free_ud) s->free_ud(s->ud);
    ct_release(s->anchor);
    free(s);
  }
}

static int checkpoint_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  const ct_tensor *t = in[0];
  memset(m, 0, sizeof *m);
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  memcpy(m->stride, t->stride, sizeof m->stride);
  m->offset = t->offset;
  m->dtype = t->dtype;
  return 0;
}

/* Every leaf needing grad that the recomputed graph reaches must be a target, or its gradient
   would silently be lost. */
static int check_leaves(ct_tensor *y, ct_tensor *const *targets, int nt) {
  int cap = 64, sp = 0, nseen = 0, rc = 0;
  ct_node **stack = malloc(sizeof *stack * (size_t)cap), **seen = malloc(sizeof *seen * (size_t)cap);
  int capseen = cap;
  if (!stack || !seen) {
    free(stack), free(seen);
    return ct_errorf("checkpoint: out of memory");
  }
  if (y->grad_fn) stack[sp++] = y->grad_fn;
  while (sp && !rc) {
    ct_node *n = stack[--sp];
    bool dup = false;
    for (int i = 0; i < nseen && !dup; i++) dup = seen[i] == n;
    if (dup) continue;
    if (nseen == capseen) {
      ct_node **p = realloc(seen, sizeof *seen * (size_t)(capseen *= 2));
      if (!p) {
        rc = ct_errorf("checkpoint: out of memory");
        break;
      }
      seen = p;
    }
    seen[nseen++] = n;
    for (int i = 0; i < ct_node_ninputs(n) && !rc; i++) {
      ct_tensor *t = ct_node_input(n, i);
      if (!t || !ct_node_needs_grad(n, i)) continue;
      if (t->grad_fn) {
        if (sp == cap) {
          ct_node **p = realloc(stack, sizeof *stack * (size_t)(cap *= 2));
          if (!p) {
            rc = ct_errorf("checkpoint: out of memory");
            break;
          }
          stack = p;
        }
        stack[sp++] = t->grad_fn;
        continue;
      }
      bool known = false;
      for (int k = 0; k < nt && !known; k++) known = targets[k] == t || targets[k]->storage == t->storage;
      if (!known) {
        char d[200];
        rc = ct_errorf("checkpoint: the function uses %s%s%s, which needs a gradient but was not given: pass it "
                       "as nn.checkpoint(fn, {params...}) (or checkpoint a module)",
                       t->name ? t->name : "", t->name ? " " : "", ct_describe(t, d, sizeof d));
      }
    }
  }
  free(stack), free(seen);
  return rc;
}

/* in: y (the result, no grad), the function's inputs, the parameters, the anchor */
static int checkpoint_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  int nx = (int)n->attrs.i[0], np = (int)n->attrs.i[1];
  uint64_t id = (uint64_t)n->attrs.i[2];
  ckpt_slot *s = slots;
  while (s && s->id != id) s = s->next;
  if (!s) return ct_errorf("checkpoint: the recomputed function is gone");
  bool create = ct_grad_enabled(); /* the engine turns recording on only for create_graph */
  bool old = ct_set_grad_enabled(true);
  int rc = 0, nt = 0;
  ct_tensor **xd = calloc((size_t)(nx + 1), sizeof *xd), **targets = calloc((size_t)(nx + np + 1), sizeof *targets);
  ct_tensor **res = calloc((size_t)(nx + np + 1), sizeof *res);
  int *slot_of = calloc((size_t)(nx + np + 1), sizeof *slot_of);
  if (!xd || !targets || !res || !slot_of) rc = ct_errorf("checkpoint: out of memory");
  for (int i = 0; i < nx && !rc; i++) {
    ct_tensor *x = n->in[1 + i];
    if (ct_node_needs_grad(n, 1 + i)) {
      xd[i] = ct_detach(x);
      if (!xd[i] || ct_requires_grad_(xd[i], true))
        rc = -1;
      else
        slot_of[nt] = 1 + i, targets[nt++] = xd[i];
    } else {
      xd[i] = ct_retain(x);
    }
  }
  for (int j = 0; j < np && !rc; j++)
    if (ct_node_needs_grad(n, 1 + nx + j)) slot_of[nt] = 1 + nx + j, targets[nt++] = n->in[1 + nx + j];
  ct_tensor *y = NULL;
  if (!rc && nt) {
    y = s->run(s->ud, xd, nx);
    if (!y)
      rc = -1;
    else if (!y->requires_grad)
      rc = ct_errorf("checkpoint: the recomputed result does not depend on anything that needs grad");
  }
  if (!rc && nt) rc = check_leaves(y, targets, nt);
  if (!rc && nt) rc = ct_grad(y, g, targets, nt, res, false, create);
  for (int t = 0; t < nt && !rc; t++) {
    gin[slot_of[t]] = res[t];
    res[t] = NULL;
  }
  ct_set_grad_enabled(old);
  ct_release(y);
  for (int i = 0; xd && i < nx; i++) ct_release(xd[i]);
  for (int t = 0; res && t < nt; t++) ct_release(res[t]);
  free(xd), free(targets), free(res), free(slot_of);
  return rc;
}

const ct_opdef ct_op_checkpoint = {"checkpoint", -1, CT_OPF_VIEW, checkpoint_shape, NULL, checkpoint_backward, NULL};

ct_tensor *ct_checkpoint(ct_recompute_fn run, ct_recompute_free_fn free_ud, void *ud, ct_tensor *const *in, int nin,
                         ct_tensor *const *params, int nparams) {
  collect_slots();
  bool old = ct_set_grad_enabled(false);
  ct_tensor *y = run(ud, in, nin);
  ct_set_grad_enabled(old);
  ckpt_slot *s = y ? calloc(1, sizeof *s) : NULL;
  ct_tensor **ins = y ? malloc(sizeof *ins * (size_t)(nin + nparams + 2)) : NULL;
  ct_tensor *anchor = y ? ct_scalar(0, CT_F32, y->storage->device) : NULL;
  if (!s || !ins || !anchor) {
    if (y && !(s && ins)) ct_errorf("checkpoint: out of memory");
    if (free_ud) free_ud(ud);
    ct_release(y), ct_release(anchor);
    free(s), free(ins);
    return NULL;
  }
  s->id = next_slot++;
  s->run = run, s->free_ud = free_ud, s->ud = ud;
  s->anchor = anchor;
  s->next = slots;
  slots = s;
  int k = 0;
  ins[k++] = y;
  for (int i = 0; i < nin; i++) ins[k++] = in[i];
  for (int j = 0; j < nparams; j++) ins[k++] = params[j];
  ins[k++] = anchor;
  ct_attrs a = {0};
  a.i[0] = nin, a.i[1] = nparams, a.i[2] = (int64_t)s->id;
  ct_tensor *out = ct_op_run(CT_OP_checkpoint, ins, k, &a);
  free(ins);
  ct_release(y);
  return out;
}

/* ==== the graph pass ========================================================================== */

static bool is_layer(int op) { return op == CT_OP_matmul || op == CT_OP_conv2d; }

int ct_pass_checkpoint(ct_graph *g, const ct_pass_opts *o, ct_text *why) {
  int fb = -1;
  for (int i = 0; i < g->nn && fb < 0; i++)
    if (!g->n[i].dead && g->n[i].backward) fb = i;
  if (fb < 0) {
    ct_text_printf(why, "  no backward in this graph: nothing to checkpoint\n");
    return 0;
  }
  for (int i = 0; i < fb; i++)
    if (g->n[i].segment >= 0 && !g->n[i].dead) {
      ct_text_printf(why, "  the graph is already checkpointed\n");
      return 0;
    }
  int L = 0;
  for (int i = 0; i < fb; i++)
    if (!g->n[i].dead && is_layer(g->n[i].op)) L++;
  bool by_nodes = L == 0;
  if (by_nodes)
    for (int i = 0; i < fb; i++) L += !g->n[i].dead && !ct_gop_is_view(g->n[i].op);
  if (L < 2) {
    ct_text_printf(why, "  the forward has fewer than 2 layers: nothing to gain\n");
    return 0;
  }
  bool full = o->full_recompute;
  int k = full ? L : o->segments > 0 ? o->segments : (int)lround(sqrt((double)L));
  if (k < 1) k = 1;
  if (k > L) k = L;
  /* segment of every forward node: by the layer it belongs to */
  int layer = -1;
  for (int i = 0; i < fb; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    if (by_nodes ? !ct_gop_is_view(n->op) : is_layer(n->op)) layer++;
    int l = layer < 0 ? 0 : layer;
    n->segment = (int)((int64_t)l * k / L);
  }
  int *seg_of = malloc(sizeof(int) * (size_t)(g->nv + 1));
  char *kept = calloc((size_t)(g->nv + 1), 1);
  if (!seg_of || !kept) {
    free(seg_of), free(kept);
    return ct_errorf("checkpoint: out of memory");
  }
  for (int v = 0; v < g->nv; v++) {
    int p = g->v[v].producer;
    seg_of[v] = p >= 0 && p < fb && !g->n[p].dead ? g->n[p].segment : -1;
    if (seg_of[v] >= 0 && (g->v[v].pinned || ct_graph_value_is_output(g, v) || g->n[p].op == CT_OP_dropout_mask ||
                           ct_gop_is_inplace(g->n[p].op)))
      kept[v] = 1;
  }
  int nkept = 0;
  int64_t kept_bytes = 0;
  if (!full)
    for (int i = 0; i < fb; i++) {
      ct_gnode *n = &g->n[i];
      if (n->dead) continue;
      for (int q = 0; q < n->nin; q++) {
        int v = n->in[q];
        if (seg_of[v] >= 0 && seg_of[v] != n->segment && !kept[v]) {
          kept[v] = 1;
          nkept++;
          if (!ct_gop_is_view(g->n[g->v[v].producer].op)) {
            int64_t b = (int64_t)ct_dtype_size(g->v[v].dtype);
            for (int d = 0; d < g->v[v].ndim; d++) b *= g->v[v].shape[d];
            kept_bytes += b;
          }
        }
      }
    }
  char b1[32];
  ct_text_printf(why, "  %d %s in the forward, %d segment%s%s; %d values kept across segments (%lld bytes)\n", L,
                 by_nodes ? "ops" : "layers", k, k == 1 ? "" : "s", full ? " (full recompute: only inputs kept)" : "",
                 nkept, (long long)kept_bytes);
  (void)b1;
  int changes = 0, cloned = 0;
  double extra_flops = 0;
  int *map = malloc(sizeof(int) * (size_t)(g->nv + 1));
  char *in_set = calloc((size_t)(g->nn + 1), 1);
  int *stack = malloc(sizeof(int) * (size_t)(g->nv + g->nn + 1));
  if (!map || !in_set || !stack) {
    free(seg_of), free(kept), free(map), free(in_set), free(stack);
    return ct_errorf("checkpoint: out of memory");
  }
  for (int s = k - 1; s >= 0; s--) {
    /* values of segment s that backward reads and are not kept; where backward first needs one */
    size_t cap = (size_t)g->nv + 16;
    for (int i = 0; i < g->nn; i++) cap += (size_t)g->n[i].nin;
    int *st3 = realloc(stack, sizeof(int) * cap);
    if (!st3) {
      free(seg_of), free(kept), free(map), free(in_set), free(stack);
      return ct_errorf("checkpoint: out of memory");
    }
    stack = st3;
    int ip = -1;
    memset(in_set, 0, (size_t)g->nn);
    int sp = 0;
    for (int i = fb; i < g->nn; i++) {
      ct_gnode *n = &g->n[i];
      if (n->dead) continue;
      for (int q = 0; q < n->nin; q++) {
        int v = n->in[q];
        if (v < g->nv && seg_of[v] == s && !kept[v] && g->v[v].producer < fb) {
          if (ip < 0) ip = i;
          stack[sp++] = v;
        }
      }
    }
    if (ip < 0) continue;
    /* the closure of producers to recompute: back to kept values, externals (or the start) */
    while (sp) {
      int v = stack[--sp];
      int p = g->v[v].producer;
      if (p < 0 || p >= fb || kept[v] || in_set[p]) continue;
      in_set[p] = 1;
      for (int q = 0; q < g->n[p].nin; q++) stack[sp++] = g->n[p].in[q];
    }
    bool hazard = false;
    for (int i = 0; i < fb && !hazard; i++) {
      if (!in_set[i]) continue;
      for (int q = 0; q < g->n[i].nin && !hazard; q++)
        hazard = ct_graph_epoch(g, g->n[i].in[q], i) != ct_graph_epoch(g, g->n[i].in[q], ip);
    }
    if (hazard) {
      ct_text_printf(why, "  segment %d: not recomputed (an in-place write to what it reads comes before backward)\n",
                     s + 1);
      continue;
    }
    for (int v = 0; v < g->nv; v++) map[v] = v;
    int at = ip, n_here = 0;
    char first[160];
    snprintf(first, sizeof first, "%s #%d", ct_gop_name(g->n[ip].op), ip + 1);
    const char *flabel = g->n[ip].label;
    char firstlab[96] = "";
    if (flabel) snprintf(firstlab, sizeof firstlab, " (%s)", flabel);
    for (int i = 0; i < fb; i++) {
      if (!in_set[i]) continue;
      ct_gnode src = g->n[i]; /* copy: the array moves on insertion */
      int outs[16];
      if (src.nout > 16) continue;
      int rc = 0;
      for (int q = 0; q < src.nout && !rc; q++) {
        const ct_gvalue xv = g->v[src.out[q]], *x = &xv; /* g->v moves when a value is added */
        ct_meta m;
        memset(&m, 0, sizeof m);
        m.dtype = x->dtype, m.ndim = x->ndim, m.offset = x->offset;
        memcpy(m.shape, x->shape, sizeof m.shape);
        memcpy(m.stride, x->stride, sizeof m.stride);
        outs[q] = ct_graph_add_value(g, &m);
        if (outs[q] < 0)
          rc = -1;
        else {
          int *mm = realloc(map, sizeof(int) * (size_t)(g->nv + 1));
          int *ss = realloc(seg_of, sizeof(int) * (size_t)(g->nv + 1));
          char *kk = realloc(kept, (size_t)(g->nv + 1));
          if (!mm || !ss || !kk) rc = ct_errorf("checkpoint: out of memory");
          if (mm) map = mm;
          if (ss) seg_of = ss;
          if (kk) kept = kk;
          if (!rc) {
            map[outs[q]] = outs[q];
            seg_of[outs[q]] = -1;
            kept[outs[q]] = 0;
            map[src.out[q]] = outs[q];
            if (x->name) {
              char nm[96];
              snprintf(nm, sizeof nm, "%s'", x->name);
              g->v[outs[q]].name = strdup(nm);
            }
          }
        }
      }
      int ins[64];
      if (!rc && src.nin > 64) rc = ct_errorf("checkpoint: a node with %d inputs", src.nin);
      for (int q = 0; q < src.nin && !rc; q++) ins[q] = map[src.in[q]];
      if (!rc && ct_graph_insert_node(g, at, src.op, &src.attrs, ins, src.nin, outs, src.nout) < 0) rc = -1;
      if (rc) {
        free(seg_of), free(kept), free(map), free(in_set), free(stack);
        return -1;
      }
      ct_gnode *c = &g->n[at];
      c->backward = true;
      c->segment = s;
      c->flops = src.flops, c->bytes = src.bytes;
      char lab[64];
      snprintf(lab, sizeof lab, "recompute segment %d", s + 1);
      c->label = strdup(lab);
      extra_flops += src.flops;
      at++;
      n_here++;
      /* in_set is indexed by forward position (< fb): inserting after fb leaves it valid */
      char *grown = realloc(in_set, (size_t)(g->nn + 1));
      if (!grown) {
        free(seg_of), free(kept), free(map), free(in_set), free(stack);
        return ct_errorf("checkpoint: out of memory");
      }
      in_set = grown;
      in_set[g->nn - 1] = 0;
    }
    /* backward reads segment s's recomputed values from here on (the clones of earlier segments
       that full recompute makes on the way are private to this chain) */
    for (int i = at; i < g->nn; i++) {
      ct_gnode *n = &g->n[i];
      if (n->dead) continue;
      for (int q = 0; q < n->nin; q++) {
        int v = n->in[q];
        if (v < g->nv && seg_of[v] == s && !kept[v]) n->in[q] = map[v];
      }
    }
    cloned += n_here;
    changes++;
    ct_text_printf(why, "  segment %d: %d ops recomputed just before %s%s\n", s + 1, n_here, first, firstlab);
  }
  char fl[32];
  snprintf(fl, sizeof fl, "%.3g", extra_flops);
  ct_text_printf(why, "  %d ops recomputed in all (%s extra flops)\n", cloned, fl);
  free(seg_of), free(kept), free(map), free(in_set), free(stack);
  return changes;
}
