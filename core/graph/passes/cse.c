/* pass_cse.c: common-subexpression elimination: a node that repeats an earlier node (same op,
 * same attributes, same input values, and no in-place write to those inputs' storage between
 * them) is removed and its readers use the earlier result. Small constants with equal contents
 * are merged first, so that two `0` scalars made by two gradient rules count as one value.
 * Invariants: random ops (dropout_mask), in-place writes, aliases and fused kernels are never
 * merged; a node whose result is a graph output or a .grad keeps it (its storage is pinned). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

static bool same_attrs(const ct_attrs *a, const ct_attrs *b) {
  return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof a->shape) && !memcmp(a->i, b->i, sizeof a->i) &&
         !memcmp(a->f, b->f, sizeof a->f) && a->mask == b->mask && a->keepdim == b->keepdim && a->dtype == b->dtype;
}

static bool mergeable(const ct_gnode *n) {
  return !n->dead && n->op < CT_OP_COUNT && n->op != CT_OP_dropout_mask && !ct_gop_is_inplace(n->op) &&
         n->op != CT_OP_checkpoint;
}

static uint64_t node_hash(const ct_gnode *n) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)n->op;
  for (int k = 0; k < n->nin; k++) h = (h ^ (uint64_t)n->in[k]) * 1099511628211ULL;
  return h ^ (uint64_t)n->attrs.mask ^ (uint64_t)n->attrs.i[0] * 31;
}

/* Constants of at most 64 elements with the same dtype, shape and bytes become one value. */
static int merge_constants(ct_graph *g, ct_text *why) {
  int merged = 0;
  for (int v = 0; v < g->nv; v++) {
    ct_gvalue *x = &g->v[v];
    if (x->producer != -1 || !x->constant || x->written || !x->ext || ct_numel(x->ext) > 64) continue;
    char a[64 * 8], b[64 * 8];
    if (ct_read_host(x->ext, a)) return -1;
    for (int u = 0; u < v; u++) {
      ct_gvalue *y = &g->v[u];
      if (y->producer != -1 || !y->constant || y->written || !y->ext || y->dtype != x->dtype || y->ndim != x->ndim ||
          memcmp(y->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim) ||
          !ct_device_eq(y->ext->storage->device, x->ext->storage->device))
        continue;
      if (ct_read_host(y->ext, b)) return -1;
      if (memcmp(a, b, (size_t)ct_numel(x->ext) * ct_dtype_size(x->dtype))) continue;
      bool used = false;
      for (int i = 0; i < g->nn && !used; i++)
        for (int k = 0; k < g->n[i].nin && !g->n[i].dead; k++) used |= g->n[i].in[k] == v;
      if (!used || ct_graph_value_is_output(g, v)) break;
      ct_graph_replace_uses(g, v, u);
      merged++;
      break;
    }
  }
  if (merged) ct_text_printf(why, "  merged %d small constants into equal ones made earlier\n", merged);
  return merged;
}

int ct_pass_cse(ct_graph *g, ct_text *why) {
  int changes = merge_constants(g, why);
  if (changes < 0) return -1;
  int nrepl = 0;
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (!mergeable(n)) continue;
    bool pinned = false;
    for (int k = 0; k < n->nout; k++) pinned |= g->v[n->out[k]].pinned || ct_graph_value_is_output(g, n->out[k]);
    if (pinned) continue;
    uint64_t h = node_hash(n);
    for (int j = 0; j < i; j++) {
      ct_gnode *m = &g->n[j];
      if (!mergeable(m) || m->op != n->op || m->nin != n->nin || m->nout != n->nout || node_hash(m) != h) continue;
      if (!same_attrs(&m->attrs, &n->attrs) || memcmp(m->in, n->in, sizeof(int) * (size_t)n->nin)) continue;
      bool safe = true; /* no in-place write to an input's storage between the two */
      for (int k = 0; k < n->nin && safe; k++) safe = ct_graph_epoch(g, n->in[k], j) == ct_graph_epoch(g, n->in[k], i);
      if (!safe) continue;
      for (int k = 0; k < n->nout; k++) ct_graph_replace_uses(g, n->out[k], m->out[k]);
      n->dead = true;
      nrepl++;
      char a[64], b[64], sh[96];
      const ct_gvalue *o = &g->v[n->out[0]];
      ct_text_printf(why, "  %-12s %s%s %s repeats %s: readers use the earlier result%s%s%s\n", ct_gop_name(n->op),
                     ct_dtype_name(o->dtype), ct_shape_str(o->shape, o->ndim, sh, sizeof sh),
                     ct_graph_value_name(g, n->out[0], a, sizeof a), ct_graph_value_name(g, m->out[0], b, sizeof b),
                     n->label ? " (" : "", n->label ? n->label : "", n->label ? ")" : "");
      break;
    }
  }
  if (!changes && !nrepl) ct_text_printf(why, "  no node repeats an earlier one\n");
  return changes + nrepl;
}
