/* graph_dot.c: drawing viz's graph model as DOT: op and leaf nodes with shapes, values and
 * gradients, module clusters, summaries, the backward graph beside the forward one, a legend.
 * Invariants: colours mean the same in every chalk picture (orange: activations, made by ops;
 * blue: parameters; green: inputs; grey: constants; red: gradients; yellow: the current step);
 * a gradient that does not exist reads "not computed" (or "not retained"), never 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_model.h"
#include "graph/inspect.h"

/* fill, border: the palette's colours (palette.h), one meaning each */
#define C_OP viz_tint(VIZ_FORWARD), viz_hex(VIZ_FORWARD)
#define C_PARAM viz_tint(VIZ_PARAMETER), viz_hex(VIZ_PARAMETER)
#define C_INPUT viz_tint(VIZ_INPUT), viz_hex(VIZ_INPUT)
#define C_CONST viz_tint(VIZ_CONSTANT), viz_hex(VIZ_CONSTANT)
#define C_GRAD viz_tint(VIZ_BACKWARD), viz_hex(VIZ_BACKWARD)
#define C_NOW viz_hex(VIZ_CURRENT), viz_ink(VIZ_CURRENT)
#define C_DIM viz_tint(VIZ_FAINT), viz_ink(VIZ_FAINT)
#define C_SUM viz_tint(VIZ_SUMMARY), viz_hex(VIZ_SUMMARY)
#define C_FREED viz_tint(VIZ_FREED), viz_hex(VIZ_FREED)
#define FG_DIM viz_hex(VIZ_FAINT)
#define FG_SUB viz_ink(VIZ_MUTED)
#define FG_TEXT viz_ink(VIZ_TITLE)
#define FG_GRAD viz_ink(VIZ_BACKWARD)

const char *viz_vnode_name(const viz_graph *g, int k, char *buf, size_t n) {
  const viz_vnode *v = &g->v[k];
  if (v->t->name) snprintf(buf, n, "%s", v->t->name);
  else if (v->role == ROLE_OP) snprintf(buf, n, "%s", ct_op_name(v->op));
  else snprintf(buf, n, "%s", v->role == ROLE_PARAM ? "parameter" : v->role == ROLE_INPUT ? "input" : "constant");
  return buf;
}

/* ---- label pieces -------------------------------------------------------------------------- */

static void fmt_num(char *b, size_t n, double x) {
  if (x == 0) snprintf(b, n, "0");
  else if (fabs(x) >= 1e5 || fabs(x) < 1e-3) snprintf(b, n, "%.3e", x);
  else snprintf(b, n, "%.4g", x);
}

/* The tensor's values, rows split by <BR/>, or false when it is too big or unreadable. */
static bool values_html(viz_buf *b, const ct_tensor *t, int maxv) {
  int64_t n = ct_numel(t);
  if (n > maxv || n == 0) return false;
  double v[64];
  if (n > 64 || ct_to_doubles(t, v)) {
    ct_clear_error();
    return false;
  }
  int64_t row = t->ndim >= 2 ? t->shape[t->ndim - 1] : n;
  char s[40];
  for (int64_t i = 0; i < n; i++) {
    if (t->ndim >= 1 && i % row == 0) viz_buf_puts(b, i ? "]<BR/>[" : "[");
    else if (i) viz_buf_puts(b, ", ");
    fmt_num(s, sizeof s, v[i]);
    viz_buf_puts(b, s);
  }
  if (t->ndim >= 1) viz_buf_puts(b, "]");
  return true;
}

static double l2norm(const ct_tensor *t) {
  int64_t n = ct_numel(t);
  double *v = malloc(sizeof *v * (size_t)(n ? n : 1)), s = 0;
  if (!v) return NAN;
  if (ct_to_doubles(t, v)) {
    ct_clear_error();
    free(v);
    return NAN;
  }
  for (int64_t i = 0; i < n; i++) s += v[i] * v[i];
  free(v);
  return sqrt(s);
}

static void meta_html(viz_buf *b, const ct_tensor *t) {
  char sh[96], dev[24];
  ct_shape_str(t->shape, t->ndim, sh, sizeof sh);
  ct_device_str(t->storage->device, dev, sizeof dev);
  viz_buf_printf(b, "%s%s %s", ct_dtype_name(t->dtype), t->ndim ? sh : " scalar", dev);
}

/* A row of a node's table. */
static void row_open(viz_buf *b, const char *color, int size) {
  viz_buf_printf(b, "<TR><TD><FONT POINT-SIZE=\"%d\" COLOR=\"%s\">", size, color);
}
static void row_close(viz_buf *b) { viz_buf_puts(b, "</FONT></TD></TR>"); }

/* "grad ..." line for tensor t whose gradient is grad (NULL when there is none). */
static void grad_row(viz_buf *b, const viz_graph *g, const ct_tensor *grad, const char *missing, const char *fg,
                     bool label) {
  row_open(b, fg, 11);
  if (grad) {
    if (label) viz_buf_puts(b, "grad ");
    if (!values_html(b, grad, g->o.max_values)) {
      char s[40];
      fmt_num(s, sizeof s, l2norm(grad));
      viz_buf_printf(b, "computed, norm %s", s);
    }
  } else {
    viz_buf_printf(b, "<I>%s%s</I>", label ? "grad: " : "", missing);
  }
  row_close(b);
}

static const char *op_attr_text(const viz_vnode *v, char *buf, size_t n) {
  ct_node_info info;
  ct_node_inspect(v->node, &info);
  const double *f = info.fattr;
  const char *op = ct_op_name(v->op);
  char x[32], y[32];
  buf[0] = '\0';
  if (!strcmp(op, "mul_scalar")) fmt_num(x, sizeof x, f[0]), snprintf(buf, n, " x %s", x);
  else if (!strcmp(op, "add_scalar")) fmt_num(x, sizeof x, f[0]), snprintf(buf, n, " + %s", x);
  else if (!strcmp(op, "pow_scalar")) fmt_num(x, sizeof x, f[0]), snprintf(buf, n, " ^ %s", x);
  else if (!strcmp(op, "clamp")) {
    fmt_num(x, sizeof x, f[0]), fmt_num(y, sizeof y, f[1]);
    snprintf(buf, n, " [%s, %s]", x, y);
  }
  return buf;
}

typedef struct {
  const char *fill, *border, *fg;
  double pen;
  const char *style;
} node_look;

static node_look look(const char *fill, const char *border) { return (node_look){fill, border, FG_TEXT, 1.2, "filled"}; }

/* ---- forward nodes --------------------------------------------------------------------------- */

static void emit_forward_node(viz_buf *b, const viz_graph *g, int k, const viz_step_view *sv) {
  const viz_vnode *v = &g->v[k];
  const ct_tensor *t = v->t;
  node_look L;
  switch (v->role) {
  case ROLE_OP: L = look(C_OP); break;
  case ROLE_PARAM: L = look(C_PARAM); break;
  case ROLE_INPUT: L = look(C_INPUT); break;
  default: L = look(C_CONST); break;
  }
  if (v->role == ROLE_OP && v->is_view) L.fill = viz_hex(VIZ_PAPER), L.style = "filled,dashed";
  if (k == g->root) L.pen = 2.6;
  bool known = !sv || sv->value_known[k];
  bool now = sv && sv->current == k && sv->phase == 1;
  if (v->value_freed && !sv) L.border = viz_hex(VIZ_FREED), L.style = "filled,dashed";
  if (!known) L = look(C_DIM), L.fg = FG_DIM;
  if (now) L = look(C_NOW), L.pen = 3;
  const char *sub = known ? FG_SUB : FG_DIM;
  char name[96], attr[96];
  viz_buf_printf(b, "  n%d [id=\"n%d\", shape=%s, style=\"%s\", fillcolor=\"%s\", color=\"%s\", penwidth=%.1f, "
                    "fontcolor=\"%s\", label=<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">",
                 k, k, v->role == ROLE_CONST ? "box" : v->role == ROLE_OP ? "box" : "box",
                 v->role == ROLE_OP ? (strstr(L.style, "dashed") ? "rounded,filled,dashed" : "rounded,filled") : L.style,
                 L.fill, L.border, L.pen, L.fg);
  /* title */
  viz_buf_puts(b, "<TR><TD>");
  if (v->role == ROLE_OP) {
    if (t->name) { /* "h1 = tanh", or "v1 = ln x1 (log)" when the name is itself an equation */
      bool eq = strchr(t->name, '=') != NULL;
      viz_buf_puts(b, "<B>");
      viz_buf_html(b, t->name);
      viz_buf_puts(b, eq ? "</B> (" : "</B> = ");
      viz_buf_html(b, ct_op_name(v->op));
      if (eq) viz_buf_puts(b, ")");
    } else {
      viz_buf_puts(b, "<B>");
      viz_buf_html(b, ct_op_name(v->op));
      viz_buf_puts(b, "</B>");
    }
    viz_buf_html(b, op_attr_text(v, attr, sizeof attr));
  } else {
    viz_buf_puts(b, "<B>");
    viz_buf_html(b, viz_vnode_name(g, k, name, sizeof name));
    viz_buf_puts(b, "</B>");
  }
  viz_buf_puts(b, "</TD></TR>");
  /* dtype, shape, device */
  row_open(b, sub, 10);
  meta_html(b, t);
  if (v->role == ROLE_OP && v->is_view) viz_buf_puts(b, " (view)");
  row_close(b);
  if (v->value_freed) {
    row_open(b, viz_ink(VIZ_FREED), 10);
    viz_buf_puts(b, "<I>saved tensor freed</I>");
    row_close(b);
  }
  /* values */
  if (ct_numel(t) <= g->o.max_values && ct_numel(t) > 0 && !v->value_freed) {
    row_open(b, known ? FG_TEXT : FG_DIM, 11);
    viz_buf_puts(b, "data ");
    if (!known) viz_buf_puts(b, "?");
    else if (!values_html(b, t, g->o.max_values)) viz_buf_puts(b, "?");
    row_close(b);
  }
  /* gradient */
  if (t->requires_grad) {
    if (sv) {
      bool gk = sv->grad_known[k];
      grad_row(b, g, gk ? v->sgrad : NULL, "not computed yet", gk ? FG_GRAD : FG_DIM, true);
    } else {
      const char *missing = "not computed";
      if (v->role == ROLE_OP && g->backward_ran && !t->retains_grad) missing = "not retained";
      grad_row(b, g, t->grad, missing, t->grad ? FG_GRAD : FG_SUB, true);
    }
  }
  viz_buf_puts(b, "</TABLE>>];\n");
}

/* ---- summaries ------------------------------------------------------------------------------ */

static void emit_summary(viz_buf *b, const viz_graph *g, int s) {
  const viz_summary *S = &g->s[s];
  viz_buf_printf(b, "  s%d [id=\"s%d\", shape=note, style=filled, fillcolor=\"%s\", color=\"%s\", label=<<TABLE BORDER=\"0\" "
                    "CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\"><TR><TD><B>",
                 s, s, S->collapsed ? viz_tint(VIZ_SUMMARY) : viz_hex(VIZ_PAPER), viz_hex(VIZ_SUMMARY));
  viz_buf_html(b, S->title);
  viz_buf_puts(b, "</B></TD></TR>");
  row_open(b, FG_SUB, 10);
  viz_buf_html(b, S->detail);
  row_close(b);
  if (!S->collapsed) {
    row_open(b, FG_SUB, 10);
    viz_buf_printf(b, "<I>left out: over max_nodes=%d</I>", g->o.max_nodes);
    row_close(b);
  }
  viz_buf_puts(b, "</TABLE>>];\n");
}

/* ---- backward nodes ------------------------------------------------------------------------- */

/* Whether vnode k has a gradient twin in the backward graph. */
static bool has_grad_node(const viz_graph *g, int k) {
  const viz_vnode *v = &g->v[k];
  return v->show == SHOW_SELF && v->t->requires_grad;
}

static void emit_grad_node(viz_buf *b, const viz_graph *g, int k, const viz_step_view *sv) {
  const viz_vnode *v = &g->v[k];
  node_look L = look(C_GRAD);
  bool known = sv ? sv->grad_known[k] : v->t->grad != NULL;
  bool now = sv && sv->current == k && sv->phase == 2;
  if (sv && !known) L = look(C_DIM), L.fg = FG_DIM;
  if (now) L = look(C_NOW), L.pen = 3;
  char name[96];
  viz_buf_printf(b, "  g%d [id=\"g%d\", shape=box, style=\"rounded,filled\", fillcolor=\"%s\", color=\"%s\", "
                    "penwidth=%.1f, fontcolor=\"%s\", label=<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" "
                    "CELLPADDING=\"1\"><TR><TD><B>grad of ",
                 k, k, L.fill, L.border, L.pen, L.fg);
  viz_buf_html(b, viz_vnode_name(g, k, name, sizeof name));
  viz_buf_puts(b, "</B></TD></TR>");
  row_open(b, sv && !known ? FG_DIM : FG_SUB, 10);
  if (k == g->root) viz_buf_puts(b, "seed: ones, ");
  else if (v->role != ROLE_OP) viz_buf_puts(b, "into .grad, ");
  meta_html(b, v->t);
  row_close(b);
  const ct_tensor *gr = sv ? (known ? v->sgrad : NULL) : v->t->grad;
  const char *missing = "not computed";
  if (!sv && v->role == ROLE_OP && g->backward_ran && !v->t->retains_grad) missing = "not retained";
  if (!sv && !gr && k == g->root && g->backward_sure) missing = ct_numel(v->t) == 1 ? "1 (the seed)" : "the seed";
  if (sv && !known) missing = "not computed yet";
  grad_row(b, g, gr, missing, gr ? FG_TEXT : (sv ? FG_DIM : FG_SUB), false);
  viz_buf_puts(b, "</TABLE>>];\n");
}

/* ---- the whole picture ---------------------------------------------------------------------- */

static int disp_kind(const viz_graph *g, int k) { return g->v[k].show == SHOW_SELF ? 'n' : 's'; }
static int disp_id(const viz_graph *g, int k) { return g->v[k].show == SHOW_SELF ? k : g->v[k].summary; }

typedef struct {
  int ka, a, kb, b;
} edge_key;

static bool edge_seen(edge_key *e, int *ne, edge_key k) {
  for (int i = 0; i < *ne; i++)
    if (e[i].ka == k.ka && e[i].a == k.a && e[i].kb == k.kb && e[i].b == k.b) return true;
  e[(*ne)++] = k;
  return false;
}

/* One legend entry: a square in the node's colours, then the text (all inside one cell, so the
   entries sit next to each other whatever the picture's width). */
static void legend_swatch(viz_buf *b, const char *fill, const char *border, const char *text, bool dashed) {
  (void)fill;
  viz_buf_printf(b, "<FONT COLOR=\"%s\" POINT-SIZE=\"16\">%s</FONT> ", border, dashed ? "&#9633;" : "&#9632;");
  viz_buf_html(b, text);
  viz_buf_puts(b, "     ");
}

static void emit_legend(viz_buf *b, const viz_graph *g, const viz_step_view *sv) {
  char title[200], name[96];
  if (g->o.title) snprintf(title, sizeof title, "%s", g->o.title);
  else snprintf(title, sizeof title, "%s graph of %s", g->o.backward || sv ? "forward and backward" : "forward",
                viz_vnode_name(g, g->root, name, sizeof name));
  viz_buf_puts(b, "  label=<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"3\" CELLPADDING=\"1\">"
                  "<TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"14\"><B>");
  viz_buf_html(b, title);
  viz_buf_printf(b, "</B></FONT>   %d ops, %d leaves", g->nops, g->nleaves);
  if (g->nshown < g->n) viz_buf_printf(b, "; showing %d of %d nodes", g->nshown, g->n);
  viz_buf_puts(b, "</TD></TR><TR><TD ALIGN=\"LEFT\">");
  bool has[4] = {false}, views = false;
  for (int k = 0; k < g->n; k++) {
    if (g->v[k].show != SHOW_SELF) continue;
    has[g->v[k].role] = true;
    views |= g->v[k].is_view;
  }
  legend_swatch(b, C_OP, "forward op (output: dtype[shape] device)", false);
  if (views) legend_swatch(b, C_OP, "view (no copy)", true);
  if (has[ROLE_PARAM]) legend_swatch(b, C_PARAM, "parameter / requires grad", false);
  if (has[ROLE_INPUT]) legend_swatch(b, C_INPUT, "input", false);
  if (has[ROLE_CONST]) legend_swatch(b, C_CONST, "constant", false);
  if (g->o.backward || sv) legend_swatch(b, C_GRAD, "backward: gradient", false);
  if (sv) legend_swatch(b, C_NOW, "this step", false);
  if (g->ns) legend_swatch(b, C_SUM, "summary", false);
  if (g->nvalue_freed) legend_swatch(b, C_FREED, "saved tensor freed by backward", true);
  viz_buf_printf(b, "</TD></TR><TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"10\" COLOR=\"%s\">"
                    "arrows: data flows from inputs to ops; thick border: the output", FG_SUB);
  if (g->o.backward || sv)
    viz_buf_puts(b, "; red arrows: gradients flow back (labels: the rule); dashed: the gradient of that node");
  viz_buf_puts(b, "</FONT></TD></TR>");
  const char *note = NULL;
  if (sv) note = NULL;
  else if (g->remembered)
    note = "backward freed this graph: drawn as viz remembered it from the last picture; leaves hold .grad, "
           "intermediate gradients show only where retained (x:retain_grad())";
  else if (g->nfreed)
    note = "after backward: the saved tensors are freed (grey, dashed), the structure stays; leaves hold .grad, "
           "intermediate gradients show only where retained (x:retain_grad())";
  else if (!g->backward_ran)
    note = "gradients are not computed yet: call backward() and draw again";
  else {
    int with = 0;
    for (int k = 0; k < g->n; k++) with += g->v[k].role == ROLE_OP && g->v[k].t->grad;
    note = with == g->nops ? "after backward: every node shows its gradient (red)"
                           : "after backward: leaves hold .grad; intermediate gradients show only where retained "
                             "(x:retain_grad() or chalk.set_retain_all_grads(true))";
  }
  if (note) {
    viz_buf_printf(b, "<TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"10\" COLOR=\"%s\"><I>", FG_SUB);
    viz_buf_html(b, note);
    viz_buf_puts(b, "</I></FONT></TD></TR>");
  }
  viz_buf_puts(b, "</TABLE>>;\n");
}

/* Nodes of the forward picture, grouped in clusters by scope (first appearance order). */
/* Past this many module clusters dot lays a chain of them out as a staircase that wastes most of
   the picture, so a long unfolded chain is drawn without clusters (folding keeps them). */
#define MAX_CLUSTERS 10

static int count_scopes(const viz_graph *g) {
  int n = 0;
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    if (v->show != SHOW_SELF || !v->scope[0]) continue;
    bool first = true;
    for (int j = 0; j < k && first; j++)
      if (g->v[j].show == SHOW_SELF && !strcmp(g->v[j].scope, v->scope)) first = false;
    n += first;
    if (n > MAX_CLUSTERS) break;
  }
  return n;
}

static void emit_forward_nodes(viz_buf *b, const viz_graph *g, const viz_step_view *sv) {
  bool clusters = count_scopes(g) <= MAX_CLUSTERS;
  bool *done = calloc(viz_count(g->n + 1), 1);
  int cl = 0;
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    if (v->show != SHOW_SELF || (done && done[k])) continue;
    if (!v->scope[0] || !done || !clusters) {
      emit_forward_node(b, g, k, sv);
      continue;
    }
    viz_buf_printf(b, "  subgraph cluster_scope%d {\n  label=", cl++);
    char lab[96];
    snprintf(lab, sizeof lab, "%s%s", strspn(v->scope, "0123456789") == strlen(v->scope) ? "module " : "", v->scope);
    viz_buf_quoted(b, lab);
    viz_buf_printf(b, "; style=\"rounded,dashed\"; color=\"%s\"; fontcolor=\"%s\"; fontsize=11;\n", viz_hex(VIZ_MUTED), FG_SUB);
    for (int j = k; j < g->n; j++)
      if (g->v[j].show == SHOW_SELF && !done[j] && !strcmp(g->v[j].scope, v->scope)) {
        emit_forward_node(b, g, j, sv);
        done[j] = true;
      }
    viz_buf_puts(b, "  }\n");
  }
  free(done);
  for (int s = 0; s < g->ns; s++) emit_summary(b, g, s);
}

static void emit_forward_edges(viz_buf *b, const viz_graph *g, const viz_step_view *sv, edge_key *seen, int *nseen) {
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    for (int i = 0; i < v->nin; i++) {
      int u = v->in[i];
      if (u < 0) continue;
      edge_key e = {disp_kind(g, u), disp_id(g, u), disp_kind(g, k), disp_id(g, k)};
      if (e.ka == e.kb && e.a == e.b) continue;
      bool both_self = e.ka == 'n' && e.kb == 'n';
      if (!both_self && edge_seen(seen, nseen, e)) continue;
      viz_buf_printf(b, "  %c%d -> %c%d [", e.ka, e.a, e.kb, e.b);
      if (sv && both_self && !sv->value_known[k]) viz_buf_printf(b, "color=\"%s\", ", viz_ink(VIZ_GRID));
      if (v->nin > 1 && both_self && g->nshown <= 40)
        viz_buf_printf(b, "headlabel=\"%c\", labelfontsize=9, labelfontcolor=\"%s\"", 'a' + i, viz_hex(VIZ_MUTED));
      viz_buf_puts(b, "];\n");
    }
  }
}

static void emit_backward(viz_buf *b, const viz_graph *g, const viz_step_view *sv) {
  viz_buf_printf(b, "  subgraph cluster_backward {\n  label=\"backward: what backward() computes, from the output's seed "
                    "back to the leaves\"; labeljust=l; style=\"rounded\"; color=\"%s\"; fontcolor=\"%s\"; fontsize=12;\n",
                 viz_hex(VIZ_BACKWARD), FG_GRAD);
  for (int k = 0; k < g->n; k++)
    if (has_grad_node(g, k)) emit_grad_node(b, g, k, sv);
  viz_buf_puts(b, "  }\n");
  bool labels = g->nshown <= 40;
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    if (!has_grad_node(g, k) || v->role != ROLE_OP) continue;
    for (int i = 0; i < v->nin; i++) {
      int u = v->in[i];
      if (u < 0 || !has_grad_node(g, u)) continue;
      /* drawn from the input's gradient with dir=back, so both graphs share their ranks */
      bool flowed = !sv || sv->grad_known[k];
      viz_buf_printf(b, "  g%d -> g%d [dir=back, color=\"%s\", fontcolor=\"%s\", fontsize=9", u, k,
                     flowed ? viz_hex(VIZ_BACKWARD) : viz_tint(VIZ_BACKWARD), flowed ? FG_GRAD : FG_DIM);
      char fb[160]; /* the row's gradient formula, input i's part (core/ops: ct_opdef.grad) */
      const char *f = labels ? ct_op_grad_formula_input(ct_op_name(v->op), i, fb, sizeof fb) : NULL;
      if (f) {
        const ct_tensor *x = g->v[u].t, *y = v->t;
        char lab[160], sh[96];
        bool bcast = ct_op_is_elementwise(v->op) &&
                     (x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim));
        if (bcast)
          snprintf(lab, sizeof lab, "%s, summed to %s", f, ct_shape_str(x->shape, x->ndim, sh, sizeof sh));
        else
          snprintf(lab, sizeof lab, "%s", f);
        viz_buf_puts(b, ", label=");
        viz_buf_quoted(b, lab);
      }
      viz_buf_puts(b, "];\n");
    }
  }
  for (int k = 0; k < g->n; k++)
    if (has_grad_node(g, k))
      viz_buf_printf(b, "  g%d -> n%d [style=dashed, color=\"%s\", arrowhead=none, constraint=false];\n", k, k, FG_DIM);
}

int viz_graph_emit(viz_graph *g, const viz_step_view *sv, viz_buf *b) {
  viz_buf_puts(b, "digraph chalk {\n");
  viz_buf_printf(b, "  graph [rankdir=%s, fontname=\"" VIZ_FONT "\", nodesep=0.22, ranksep=0.45, labelloc=b, "
                    "labeljust=l, bgcolor=white, pad=0.2];\n",
                 g->o.rankdir);
  viz_buf_printf(b, "  node [fontname=\"" VIZ_FONT "\", fontsize=12, margin=\"0.10,0.05\"];\n"
                    "  edge [fontname=\"" VIZ_FONT "\", color=\"%s\", arrowsize=0.7];\n", FG_SUB);
  emit_legend(b, g, sv);
  bool both = g->o.backward || sv;
  if (both)
    viz_buf_printf(b, "  subgraph cluster_forward {\n  label=\"forward\"; labeljust=l; style=\"rounded\"; "
                      "color=\"%s\"; fontcolor=\"%s\"; fontsize=12;\n", viz_hex(VIZ_FORWARD), FG_SUB);
  emit_forward_nodes(b, g, sv);
  if (both) viz_buf_puts(b, "  }\n");
  size_t nedges = 1;
  for (int k = 0; k < g->n; k++) nedges += (size_t)g->v[k].nin;
  edge_key *seen = malloc(sizeof *seen * nedges);
  int nseen = 0;
  if (!seen) return ct_errorf("viz.graph: out of memory");
  emit_forward_edges(b, g, sv, seen, &nseen);
  free(seen);
  if (both) emit_backward(b, g, sv);
  viz_buf_puts(b, "}\n");
  return viz_buf_check(b);
}
