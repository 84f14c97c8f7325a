/* optimize.c: the optimize entry point: run one named pass, report and explain it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "obs/debug.h"
#include "obs/profile.h"

/* ==== the optimize entry point =============================================================== */

/* CHALK_DEBUG=3: the generated source of every fused kernel, in the graph's device language. */
static void debug_sources(ct_graph *g) {
  if (ct_debug_level < 3) return;
  for (int i = 0; i < ct_graph_nnodes(g); i++) {
    ct_gnode_info info;
    if (ct_graph_node(g, i, &info) || info.op != CT_GOP_FUSED) continue;
    char name[32];
    snprintf(name, sizeof name, "node %d", i + 1);
    ct_debug_text(3, "source of", name, ct_graph_source(g, i, g->device.type == CT_CUDA ? "cuda" : "c"));
  }
}

int ct_graph_optimize(ct_graph *g, const char *pass, const ct_pass_opts *o, ct_pass_report *r) {
  static const ct_pass_opts defaults;
  if (!o) o = &defaults;
  if (g->map) return ct_errorf("optimize: the graph is still capturing");
  if (ct_capturing()) return ct_errorf("optimize: a capture is running (optimize after it ends)");
  ct_pass_report rep;
  memset(&rep, 0, sizeof rep);
  snprintf(rep.pass, sizeof rep.pass, "%s", pass);
  ct_graph_totals(g, &rep.nodes_before, &rep.kernels_before, &rep.bytes_before, &rep.flops_before);
  ct_text why = {0};
  int changes;
  ct_graph_invalidate(g);
  if (!strcmp(pass, "dce"))
    changes = ct_pass_dce(g, &why);
  else if (!strcmp(pass, "cse"))
    changes = ct_pass_cse(g, &why);
  else if (!strcmp(pass, "fold"))
    changes = ct_pass_fold(g, &why);
  else if (!strcmp(pass, "algebra"))
    changes = ct_pass_algebra(g, &why);
  else if (!strcmp(pass, "fuse"))
    changes = ct_pass_fuse(g, o, &why);
  else if (!strcmp(pass, "checkpoint"))
    changes = ct_pass_checkpoint(g, o, &why);
  else {
    free(why.s);
    return ct_errorf("optimize: unknown pass \"%s\" (passes: dce, cse, fold, algebra, fuse, checkpoint)", pass);
  }
  if (changes < 0) {
    free(why.s);
    return -1;
  }
  ct_graph_compact(g);
  rep.changes = changes;
  ct_graph_totals(g, &rep.nodes_after, &rep.kernels_after, &rep.bytes_after, &rep.flops_after);
  char b1[32], b2[32];
  ct_text head = {0};
  ct_text_printf(&head, "%s: %d change%s; nodes %d -> %d, kernels %d -> %d, bytes moved %s -> %s\n", pass, changes,
                 changes == 1 ? "" : "s", rep.nodes_before, rep.nodes_after, rep.kernels_before, rep.kernels_after,
                 ct_format_bytes(rep.bytes_before, b1, sizeof b1), ct_format_bytes(rep.bytes_after, b2, sizeof b2));
  if (why.s) ct_text_printf(&head, "%s", why.s);
  free(why.s);
  ct_debug_text(3, "pass", pass, head.s);
  if (!strcmp(pass, "fuse")) debug_sources(g);
  ct_graph_set_explain(g, pass, head.s);
  if (r) *r = rep;
  return 0;
}
