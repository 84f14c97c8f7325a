/* graph_model.h: the model viz builds of an autograd graph before drawing it (graph.c builds it,
 * graph_dot.c draws it, step.c pages through it). Internal to viz/.
 *
 * Invariants: v[0..n) is in topological order (inputs before their consumers; the root is last),
 * which is also the order of the stable DOT ids n0, n1, ...; every vnode holds one reference to
 * its tensor; a vnode is drawn as itself (show == SHOW_SELF) or inside summary node `summary`. */
#ifndef CHALK_VIZ_GRAPH_MODEL_H
#define CHALK_VIZ_GRAPH_MODEL_H

#include "viz.h"

typedef enum { ROLE_OP, ROLE_PARAM, ROLE_INPUT, ROLE_CONST } viz_role;
enum { SHOW_SELF = 0, SHOW_COLLAPSED = 1, SHOW_HIDDEN = 2 };

typedef struct {
  viz_role role;
  ct_tensor *t;        /* the op's output, or the leaf (a reference) */
  const ct_node *node; /* op nodes: the autograd node */
  int op;              /* op table index (ROLE_OP) */
  int *in;             /* indices of the input vnodes; -1 where the graph was freed */
  int nin;
  bool freed;          /* backward freed this node's saved inputs: its inputs are unknown */
  bool is_view;
  bool value_freed;    /* backward freed this tensor (a saved input): shape and name only, no values */
  char scope[80];      /* nn module scope ("layers.1"), "" at top level */
  int depth;           /* edges from the root */
  int nconsumers;
  int show;            /* SHOW_* */
  int summary;         /* summary index when not SHOW_SELF */
  /* stepping (step.c): gradient of the root w.r.t. this tensor, computed once */
  ct_tensor *sgrad;
} viz_vnode;

typedef struct {
  bool collapsed;     /* repeated layers folded into one node (else: nodes past the limit) */
  char title[128];
  char detail[256];
  int members;        /* vnodes inside */
} viz_summary;

/* What a frame of viz.step shows; NULL outside stepping. */
typedef struct {
  int phase;          /* 1 forward, 2 backward, 3 done */
  int current;        /* vnode lit in this frame, -1 none */
  const bool *value_known; /* [n] forward values computed so far */
  const bool *grad_known;  /* [n] gradients computed so far */
} viz_step_view;

struct viz_graph {
  viz_graph_opts o;
  viz_vnode *v;
  int n, cap;
  int root;
  int nops, nleaves, nfreed;
  int nvalue_freed;   /* vnodes whose values backward freed */
  viz_summary *s;
  int ns;
  int nshown;         /* vnodes drawn as themselves */
  bool backward_ran;  /* some gradient exists in the graph, or the graph was freed */
  bool backward_sure; /* this graph's own nodes show backward ran on it (a leaf's .grad may be older) */
  bool remembered;    /* backward freed the graph: its structure comes from viz's memory of it */
  /* stepping */
  bool step_ready;
  int *step_ops;      /* op vnodes in topological order */
  int step_nops;
};

/* An element count for an allocation: never 0, never a negative int turned into a huge size. */
static inline size_t viz_count(int n) { return n > 0 ? (size_t)n : 1; }

/* graph_dot.c */
int viz_graph_emit(viz_graph *g, const viz_step_view *sv, viz_buf *out);
/* Name shown for vnode k: the tensor's name, or the op name. */
const char *viz_vnode_name(const viz_graph *g, int k, char *buf, size_t n);

#endif
