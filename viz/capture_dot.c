/* capture_dot.c: a captured graph (chalk.capture) as Graphviz DOT text (a linear scan, as in
 * ggml): one box per kernel node (forward ops in the forward tint, backward ops in the backward
 * tint, fused kernels in a series tint per kernel), small ellipses for views, leaves for
 * parameters, inputs and constants, a double border on outputs, and a legend from the palette.
 * Invariants: the text is a pure function of the graph (node ids follow the live-node order);
 * g:dot() (lua/lcapture.c) returns it and viz.graph(g) renders it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture.h" /* the captured graph's nodes and values, read through its accessors */
#include "palette.h"
#include "viz.h"

static const viz_color kernel_fill[] = {VIZ_SERIES1, VIZ_SERIES2, VIZ_SERIES3,
                                        VIZ_SERIES4, VIZ_SERIES5, VIZ_SERIES6};
#define NKFILL (int)(sizeof kernel_fill / sizeof kernel_fill[0])

static viz_color leaf_color(const ct_gvalue_info *x) {
  return x->input ? VIZ_INPUT : x->parameter ? VIZ_PARAMETER : x->written ? VIZ_OPTIMIZER : VIZ_CONSTANT;
}

static void leaves(const ct_graph *g, const char *used, bool *has, viz_buf *b) {
  for (int v = 0; v < ct_graph_nvalues(g); v++) {
    ct_gvalue_info x;
    if (!used[v] || ct_graph_value(g, v, &x) || !x.external) continue;
    char sh[96], nm[64];
    const char *kind = x.input ? "input" : x.parameter ? "parameter" : x.constant ? "constant"
                       : x.written ? "state (written in place)" : "tensor";
    viz_color c = leaf_color(&x);
    has[c] = true;
    viz_buf_printf(b, "  v%d [shape=ellipse, style=filled, fillcolor=\"%s\", color=\"%s\", label=<", v, viz_tint(c),
                   viz_ink(c));
    double val;
    if (x.constant && !x.name && x.tensor && ct_numel(x.tensor) == 1 && !ct_item(x.tensor, &val))
      viz_buf_printf(b, "%g", val); /* a number of the program */
    else
      viz_buf_html(b, ct_graph_value_name(g, v, nm, sizeof nm));
    viz_buf_printf(b, "<br/><font point-size=\"8\">%s %s%s</font>>];\n", kind, ct_dtype_name(x.dtype),
                   ct_shape_str(x.shape, x.ndim, sh, sizeof sh));
  }
}

static void node(const ct_graph *g, int i, const ct_gnode_info *n, bool *has, viz_buf *b) {
  ct_gvalue_info o;
  if (ct_graph_value(g, n->out[0], &o)) return;
  char sh[96], b1[32];
  ct_shape_str(o.shape, o.ndim, sh, sizeof sh);
  bool out = false;
  for (int q = 0; q < n->nout; q++) out |= ct_graph_value_is_output(g, n->out[q]);
  viz_color phase = n->backward ? VIZ_BACKWARD : VIZ_FORWARD;
  has[phase] = true;
  if (n->view) {
    viz_buf_printf(b, "  n%d [shape=ellipse, style=dashed, color=\"%s\", fontsize=8, label=<%s>];\n", i, viz_ink(phase),
                   n->name);
  } else if (n->op == CT_GOP_FUSED) {
    viz_buf_printf(b, "  n%d [fillcolor=\"%s\", color=\"%s\", penwidth=1.6, peripheries=%d, label=<<b>fused k%d</b> "
                      "(%d ops)<br/><font point-size=\"8\">",
                   i, viz_tint(kernel_fill[n->group % NKFILL]), viz_ink(phase), out ? 2 : 1, n->group, n->members);
    const char *names = strchr(n->label, ':'); /* the label is the kernel's name, "k3: add, mul" */
    viz_buf_html(b, names ? names + 2 : n->label);
    viz_buf_printf(b, "<br/>%s%s, %s</font>>];\n", ct_dtype_name(o.dtype), sh,
                   ct_format_si(n->bytes, " ", "B", b1, sizeof b1));
  } else {
    viz_buf_printf(b, "  n%d [fillcolor=\"%s\", color=\"%s\", peripheries=%d, label=<<b>%s</b><br/><font "
                      "point-size=\"8\">",
                   i, viz_tint(phase), viz_ink(phase), out ? 2 : 1, n->name);
    if (o.name) {
      viz_buf_html(b, o.name);
      viz_buf_puts(b, " ");
    }
    viz_buf_printf(b, "%s%s", ct_dtype_name(o.dtype), sh);
    if (n->flops >= 1e5) viz_buf_printf(b, ", %s", ct_format_si(n->flops, " ", "flop", b1, sizeof b1));
    viz_buf_puts(b, "</font>>];\n");
  }
}

static void edges(const ct_graph *g, int i, const ct_gnode_info *n, viz_buf *b) {
  char nm[64];
  for (int q = 0; q < n->nin; q++) {
    int v = n->in[q];
    ct_gvalue_info x;
    if (ct_graph_value(g, v, &x)) continue;
    if (x.external) viz_buf_printf(b, "  v%d -> n%d;\n", v, i);
    else if (x.producer >= 0) { /* a live node (its live index) */
      viz_buf_printf(b, "  n%d -> n%d", x.producer, i);
      if (x.name) {
        viz_buf_puts(b, " [label=<");
        viz_buf_html(b, ct_graph_value_name(g, v, nm, sizeof nm));
        viz_buf_puts(b, ">]");
      }
      viz_buf_puts(b, ";\n");
    }
  }
}

int viz_capture_dot(const ct_graph *g, const char *title, viz_buf *b) {
  int nodes, kernels;
  double bytes, flops;
  ct_graph_totals(g, &nodes, &kernels, &bytes, &flops);
  char b1[32];
  viz_buf_puts(b, "digraph captured {\n  graph [rankdir=TB, fontname=\"" VIZ_FONT "\", fontsize=12, labelloc=t, "
                  "nodesep=0.25, ranksep=0.3, label=<<b>");
  viz_buf_html(b, title ? title : "captured graph");
  viz_buf_printf(b, "</b><br/><font point-size=\"10\">%d ops (%d kernels, %d fused), %s moved</font>>];\n", nodes,
                 kernels, ct_graph_nfused(g), ct_format_si(bytes, " ", "B", b1, sizeof b1));
  viz_buf_printf(b, "  node [fontname=\"" VIZ_FONT "\", fontsize=10, shape=box, style=\"rounded,filled\", "
                    "fillcolor=\"%s\", color=\"%s\"];\n  edge [color=\"%s\", arrowsize=0.6, fontname=\"" VIZ_FONT
                    "\", fontsize=8, fontcolor=\"%s\"];\n",
                 viz_tint(VIZ_FORWARD), viz_ink(VIZ_FORWARD), viz_hex(VIZ_MUTED), viz_ink(VIZ_MUTED));
  int nn = ct_graph_nnodes(g);
  char *used = calloc((size_t)(ct_graph_nvalues(g) + 1), 1); /* leaves: externals that a live node reads */
  if (!used) return ct_errorf("viz: out of memory");
  ct_gnode_info info;
  for (int i = 0; i < nn; i++)
    if (!ct_graph_node(g, i, &info))
      for (int k = 0; k < info.nin; k++) used[info.in[k]] = 1;
  bool has[VIZ_NCOLORS] = {0};
  leaves(g, used, has, b);
  free(used);
  for (int i = 0; i < nn; i++)
    if (!ct_graph_node(g, i, &info)) node(g, i, &info, has, b), edges(g, i, &info, b);
  viz_color shown[VIZ_NCOLORS];
  const char *labels[VIZ_NCOLORS];
  int n = 0;
  static const viz_color order[] = {VIZ_FORWARD, VIZ_BACKWARD, VIZ_PARAMETER, VIZ_INPUT, VIZ_CONSTANT, VIZ_OPTIMIZER};
  static const char *const what[] = {"forward op", "backward op", "parameter", "input", "constant or tensor",
                                     "state (written in place)"};
  for (int k = 0; k < (int)(sizeof order / sizeof order[0]); k++)
    if (has[order[k]]) shown[n] = order[k], labels[n++] = what[k];
  if (ct_graph_nfused(g)) shown[n] = VIZ_SERIES1, labels[n++] = "fused kernel (one tint per kernel)";
  viz_legend_node(b, "legend", shown, labels, n);
  viz_buf_puts(b, "}\n");
  return viz_buf_check(b);
}
