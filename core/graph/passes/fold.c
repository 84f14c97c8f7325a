/* pass_fold.c: constant folding: a node whose inputs are all constants (tensors made while
 * capturing and never written, such as the numbers of an expression, or results folded before)
 * runs once now, and its result becomes a constant of the graph.
 * Invariants: random ops, in-place writes and fused kernels are never folded; parameters, inputs
 * and any tensor that existed before the capture are not constants (their values may change
 * between replays); a folded node's result is computed by the op table's own forward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

static bool is_constant(const ct_graph *g, int v) {
  const ct_gvalue *x = &g->v[v];
  return x->producer == -1 && x->ext && x->constant && !x->written && !x->input;
}

int ct_pass_fold(ct_graph *g, ct_text *why) {
  int changes = 0;
  bool old = ct_set_grad_enabled(false);
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || n->op >= CT_OP_COUNT || n->op == CT_OP_dropout_mask || n->op == CT_OP_checkpoint ||
        ct_gop_is_inplace(n->op) || n->nout != 1 || n->nin == 0)
      continue;
    bool all = true;
    for (int k = 0; k < n->nin && all; k++) all = is_constant(g, n->in[k]);
    int o = n->out[0];
    if (!all || g->v[o].pinned || ct_graph_value_is_output(g, o)) continue;
    ct_tensor *small[16], **in = n->nin <= 16 ? small : malloc(sizeof *in * (size_t)n->nin);
    if (!in) {
      ct_set_grad_enabled(old);
      return ct_errorf("fold: out of memory");
    }
    for (int k = 0; k < n->nin; k++) in[k] = g->v[n->in[k]].ext;
    ct_tensor *t = ct_op_run((ct_op)n->op, in, n->nin, &n->attrs);
    if (in != small) free(in);
    if (!t) {
      ct_set_grad_enabled(old);
      return -1;
    }
    ct_gvalue *x = &g->v[o];
    x->ext = t;
    x->producer = -1;
    x->constant = true;
    x->ndim = t->ndim;
    memcpy(x->shape, t->shape, sizeof x->shape);
    memcpy(x->stride, t->stride, sizeof x->stride);
    x->offset = t->offset;
    n->dead = true;
    changes++;
    char nm[64], sh[96], args[200] = "";
    size_t w = 0;
    for (int k = 0; k < n->nin && w < sizeof args; k++) {
      char a[64];
      const ct_gvalue *y = &g->v[n->in[k]];
      if (ct_numel(y->ext) == 1) {
        double d = 0;
        ct_item(y->ext, &d);
        w += (size_t)snprintf(args + w, sizeof args - w, "%s%g", k ? ", " : "", d);
      } else {
        w += (size_t)snprintf(args + w, sizeof args - w, "%s%s", k ? ", " : "",
                              ct_graph_value_name(g, n->in[k], a, sizeof a));
      }
    }
    ct_text_printf(why, "  folded %s(%s) -> constant %s%s %s", ct_gop_name(n->op), args, ct_dtype_name(x->dtype),
                   ct_shape_str(x->shape, x->ndim, sh, sizeof sh), ct_graph_value_name(g, o, nm, sizeof nm));
    if (ct_numel(t) == 1) {
      double d = 0;
      ct_item(t, &d);
      ct_text_printf(why, " = %g", d);
    }
    ct_text_printf(why, "\n");
  }
  ct_set_grad_enabled(old);
  if (!changes) ct_text_printf(why, "  no node has only constant inputs\n");
  return changes;
}
