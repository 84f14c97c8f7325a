/* pass_dce.c: dead-code elimination: a node none of whose outputs is read (by a live node, as a
 * graph output or as a gradient left in .grad) is removed, from the end backwards so that whole
 * dead chains go in one pass.
 * Invariant: in-place nodes (assign) are side effects and are never removed. */
#include <stdlib.h>

#include "graph/capture_internal.h"

int ct_pass_dce(ct_graph *g, ct_text *why) {
  int *uses = ct_graph_use_counts(g);
  if (!uses) return -1;
  int changes = 0;
  for (int i = g->nn - 1; i >= 0; i--) {
    ct_gnode *n = &g->n[i];
    if (n->dead || ct_gop_is_inplace(n->op)) continue;
    bool used = false;
    for (int k = 0; k < n->nout; k++) used |= uses[n->out[k]] > 0;
    if (used) continue;
    n->dead = true;
    changes++;
    for (int k = 0; k < n->nin; k++) uses[n->in[k]]--;
    char nm[64], sh[96];
    const ct_gvalue *o = &g->v[n->out[0]];
    ct_text_printf(why, "  removed %-12s -> %s%s %s: its result is never used%s%s%s\n", ct_gop_name(n->op),
                   ct_dtype_name(o->dtype), ct_shape_str(o->shape, o->ndim, sh, sizeof sh),
                   ct_graph_value_name(g, n->out[0], nm, sizeof nm), n->label ? " (" : "", n->label ? n->label : "",
                   n->label ? ")" : "");
  }
  free(uses);
  if (!changes) ct_text_printf(why, "  every node's result is used\n");
  return changes;
}
