/* capture_dot.c: a captured graph as Graphviz DOT text (a linear scan, as in ggml): one box per
 * kernel node (fused kernels coloured by kernel, backward nodes outlined in orange), small
 * ellipses for views, leaves for parameters, inputs and constants, a double border on outputs.
 * Invariants: the text is a pure function of the graph (node ids follow the live-node order);
 * core stays free of Graphviz: viz renders the text (viz.graph(g) calls g:dot()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

static const char *const kernel_fill[] = {"#fdd49e", "#c6dbef", "#c7e9c0", "#dadaeb", "#fcbba1", "#d9f0d3",
                                          "#fee391", "#d4b9da", "#ccebc5", "#fde0dd", "#bfd3e6", "#e5f5e0"};

static void esc(ct_text *t, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': ct_text_printf(t, "&amp;"); break;
    case '<': ct_text_printf(t, "&lt;"); break;
    case '>': ct_text_printf(t, "&gt;"); break;
    case '"': ct_text_printf(t, "&quot;"); break;
    default: ct_text_printf(t, "%c", *s);
    }
  }
}

static const char *fmt_num(double x, char *buf, size_t n, const char *unit) {
  const char *sfx[] = {"", "K", "M", "G", "T"};
  int k = 0;
  while (x >= 1000 && k < 4) x /= 1000, k++;
  snprintf(buf, n, k ? "%.1f %s%s" : "%.0f %s%s", x, sfx[k], unit);
  return buf;
}

int ct_graph_dot(const ct_graph *g, const char *title, char **out) {
  ct_text t = {0};
  int nodes, kernels;
  double bytes, flops;
  ct_graph_totals(g, &nodes, &kernels, &bytes, &flops);
  char b1[32], b2[32];
  ct_text_printf(&t, "digraph captured {\n  graph [rankdir=TB, fontname=\"DejaVu Sans\", fontsize=12, labelloc=t, "
                     "nodesep=0.25, ranksep=0.3, label=<<b>");
  esc(&t, title ? title : "captured graph");
  ct_text_printf(&t, "</b><br/><font point-size=\"10\">%d ops (%d kernels, %d fused), %s moved</font>>];\n", nodes,
                 kernels, g->nkernels, fmt_num(bytes, b1, sizeof b1, "B"));
  ct_text_printf(&t, "  node [fontname=\"DejaVu Sans\", fontsize=10, shape=box, style=\"rounded,filled\", "
                     "fillcolor=\"#f7f7f7\", color=\"#666666\"];\n  edge [color=\"#888888\", arrowsize=0.6, "
                     "fontname=\"DejaVu Sans\", fontsize=8, fontcolor=\"#555555\"];\n");
  /* leaves: externals that a live node reads */
  char *used = calloc((size_t)(g->nv + 1), 1);
  if (!used) return ct_errorf("dot: out of memory");
  for (int i = 0; i < g->nn; i++)
    if (!g->n[i].dead)
      for (int k = 0; k < g->n[i].nin; k++) used[g->n[i].in[k]] = 1;
  for (int v = 0; v < g->nv; v++) {
    const ct_gvalue *x = &g->v[v];
    if (x->producer != -1 || !used[v]) continue;
    char sh[96], nm[64];
    const char *kind = x->input ? "input" : x->parameter ? "parameter" : x->constant && !x->written ? "constant"
                       : x->written ? "state (written in place)" : "tensor";
    const char *fill = x->input ? "#c6dbef" : x->parameter ? "#c7e9c0" : x->constant && !x->written ? "#eeeeee" : "#dadaeb";
    ct_text_printf(&t, "  v%d [shape=ellipse, style=filled, fillcolor=\"%s\", label=<", v, fill);
    double val;
    if (x->constant && !x->written && !x->name && x->ext && ct_numel(x->ext) == 1 && !ct_item(x->ext, &val))
      ct_text_printf(&t, "%g", val); /* a number of the program */
    else
      esc(&t, ct_graph_value_name(g, v, nm, sizeof nm));
    ct_text_printf(&t, "<br/><font point-size=\"8\">%s %s%s</font>>];\n", kind, ct_dtype_name(x->dtype),
                   ct_shape_str(x->shape, x->ndim, sh, sizeof sh));
  }
  free(used);
  int k = 0;
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    k++;
    const ct_gvalue *o = &g->v[n->out[0]];
    char sh[96], nm[64];
    ct_shape_str(o->shape, o->ndim, sh, sizeof sh);
    bool out = false;
    for (int q = 0; q < n->nout; q++) out |= ct_graph_value_is_output(g, n->out[q]);
    const char *border = n->backward ? "#e6550d" : "#666666";
    if (ct_gop_is_view(n->op)) {
      ct_text_printf(&t, "  n%d [shape=ellipse, style=dashed, color=\"%s\", fontsize=8, label=<%s>];\n", i, border,
                     ct_gop_name(n->op));
    } else if (n->op == CT_GOP_FUSED) {
      const ct_fused *f = g->kernels[n->kernel];
      ct_text_printf(&t, "  n%d [fillcolor=\"%s\", color=\"%s\", penwidth=%s, peripheries=%d, label=<<b>fused k%d</b> "
                         "(%d ops)<br/><font point-size=\"8\">", i, kernel_fill[n->kernel % 12], border,
                     n->backward ? "1.6" : "1", out ? 2 : 1, f->id, n->members);
      const char *names = strchr(f->name, ':');
      esc(&t, names ? names + 2 : f->name);
      ct_text_printf(&t, "<br/>%s%s, %s</font>>];\n", ct_dtype_name(o->dtype), sh, fmt_num(n->bytes, b2, sizeof b2, "B"));
    } else {
      ct_text_printf(&t, "  n%d [color=\"%s\", penwidth=%s, peripheries=%d, label=<<b>%s</b><br/><font point-size=\"8\">",
                     i, border, n->backward ? "1.6" : "1", out ? 2 : 1, ct_gop_name(n->op));
      if (o->name) {
        esc(&t, o->name);
        ct_text_printf(&t, " ");
      }
      ct_text_printf(&t, "%s%s", ct_dtype_name(o->dtype), sh);
      if (n->flops >= 1e5) ct_text_printf(&t, ", %s", fmt_num(n->flops, b1, sizeof b1, "flop"));
      ct_text_printf(&t, "</font>>];\n");
    }
    for (int q = 0; q < n->nin; q++) {
      int v = n->in[q];
      int p = g->v[v].producer;
      if (p == -1) ct_text_printf(&t, "  v%d -> n%d;\n", v, i);
      else if (p >= 0 && !g->n[p].dead) {
        ct_text_printf(&t, "  n%d -> n%d", p, i);
        if (g->v[v].name) {
          ct_text_printf(&t, " [label=<");
          esc(&t, ct_graph_value_name(g, v, nm, sizeof nm));
          ct_text_printf(&t, ">]");
        }
        ct_text_printf(&t, ";\n");
      }
    }
  }
  ct_text_printf(&t, "}\n");
  if (!t.s) return ct_errorf("dot: out of memory");
  *out = t.s;
  return 0;
}
