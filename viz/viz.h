/* viz.h: chalk's seeing layer: graphs of autograd nodes, memory timelines and traces of profiles,
 * turned into Graphviz DOT text and rendered in-process with libgvc (PNG, SVG, PDF, DOT).
 *
 * Invariants: every picture is first built as DOT text by a pure function of its input (node ids
 * are numbered in topological order, so the text is deterministic and can be golden-tested);
 * all Graphviz calls go through viz_render, which holds the one gvContext of the process and
 * serialises callers with a mutex. Functions return 0 / -1 with the message in ct_last_error().
 */
#ifndef CHALK_VIZ_H
#define CHALK_VIZ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "chalk.h"
#include "obs/profile.h"
#include "palette.h"

/* ---- growable text buffer (buf.c) ---------------------------------------------------------- */
typedef struct {
  char *s;
  size_t len, cap;
  bool oom;
} viz_buf;

void viz_buf_printf(viz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void viz_buf_puts(viz_buf *b, const char *s);
/* Append s escaped for an HTML-like label (& < > " and non-printing bytes). */
void viz_buf_html(viz_buf *b, const char *s);
/* Append s escaped for a quoted DOT string. */
void viz_buf_quoted(viz_buf *b, const char *s);
void viz_buf_free(viz_buf *b);
/* 0, or -1 with "viz: out of memory" when an append failed. */
int viz_buf_check(const viz_buf *b);

/* ---- rendering (render.c) ---------------------------------------------------------------- */
/* Lay out the DOT text with engine ("dot" for graphs, "nop" for plots whose nodes carry pinned
   pos attributes) and write it to path in format: "png", "svg", "pdf", or "dot" (the DOT text
   itself, checked to parse). */
int viz_render(const char *dot, const char *engine, const char *format, const char *path);
/* The size in points of an HTML-like label as Graphviz draws it (for placing it in a chart). */
int viz_measure(const char *html, double *w_pt, double *h_pt);
/* Whether the format is one viz writes (png, svg, pdf, dot). */
bool viz_format_known(const char *format);

/* ---- the palette (palette.h: one colour table, one meaning per colour) ---------------------- */
/* The colour of a memory category (activation: forward, gradient: backward, ...). */
viz_color viz_category_color(int category);
/* A legend node `id` for a DOT graph (palette.c): swatches in the tint, bordered in the ink, and
   their labels (labels[k], or the colour's name where labels or labels[k] is NULL), kept on the
   bottom rank. */
void viz_legend_node(viz_buf *b, const char *id, const viz_color *colors, const char *const *labels, int n);
#define VIZ_FONT "DejaVu Sans"
#define VIZ_MONO "DejaVu Sans Mono"
/* viz.graph folds repeated modules past this many nodes (half that with {backward=true}), the
   most a projected picture keeps legible; {collapse=false} draws every node. */
#define VIZ_AUTO_FOLD 60

/* ---- graphs of autograd nodes (graph.c) ---------------------------------------------------- */
typedef struct {
  bool backward;       /* draw the backward graph beside the forward one */
  int max_nodes;       /* picture summarises past this many nodes (0: 150) */
  int collapse;        /* repeated layers: 0 fold past VIZ_AUTO_FOLD nodes, 1 always, -1 never */
  int max_values;      /* tensors with at most this many elements show their values (0: 6) */
  const char *rankdir; /* "LR" or "TB"; NULL: TB with backward or for deep graphs, else LR */
  const char *title;   /* NULL: "forward graph of <name>" */
} viz_graph_opts;

typedef struct viz_graph viz_graph;

/* Walk the autograd graph that produced root. The model holds references to the tensors it
   shows until viz_graph_free. */
viz_graph *viz_graph_build(ct_tensor *root, const viz_graph_opts *o);
void viz_graph_free(viz_graph *g);
/* The picture's DOT text. */
int viz_graph_dot(viz_graph *g, viz_buf *out);

/* Stepping through forward then backward, one node per frame (step.c builds on graph.c). */
/* Number of frames: one per op in the forward pass, one per op in the backward pass, and a last
   one with the leaves' gradients. Computes every gradient of the graph (without touching .grad);
   errors when the graph was freed by an earlier backward. */
int viz_graph_step_prepare(viz_graph *g);
int viz_graph_step_count(const viz_graph *g);
/* DOT text of frame k (0-based) and a one-line caption of what happens in it. */
int viz_graph_step_dot(viz_graph *g, int k, viz_buf *out, char *caption, size_t ncaption);

/* ---- pictures of profiles (memory.c, trace.c) ---------------------------------------------- */
typedef struct {
  int device;        /* -1: the device type with the highest peak */
  bool by_time;      /* x axis is time instead of op index */
  int max_listed;    /* tensors listed at the peak (0: 8) */
  const char *title;
} viz_memory_opts;
int viz_memory_dot(const ct_profile *p, const viz_memory_opts *o, viz_buf *out);

typedef struct {
  double width_pt;   /* plot width in points (0: 900) */
  const char *title;
} viz_trace_opts;
int viz_trace_dot(const ct_profile *p, const viz_trace_opts *o, viz_buf *out);

/* ---- captured graphs (capture_dot.c): g:dot() of chalk.capture ------------------------------- */
struct ct_graph;
int viz_capture_dot(const struct ct_graph *g, const char *title, viz_buf *out);

/* ---- Chrome trace-event JSON (chrome.c) ---------------------------------------------------- */
int viz_chrome_write(const ct_profile *p, const char *path);
int viz_chrome_json(const ct_profile *p, viz_buf *out);

#endif
