/* step.c: viz.step, backprop one node at a time: the graph drawn once per op of the forward
 * pass (values filled in as they are computed), once per op of the backward pass in reverse
 * topological order (gradients filled in), and once at the end with the leaves' gradients.
 * Invariants: every gradient is computed up front with ct_grad (retain_graph, so the user's graph
 * and the leaves' .grad are untouched); after backward freed the saved tensors, the frames show
 * the kept structure and the leaves' .grad (intermediate gradients were not kept); a frame only reveals what the pass has computed by then;
 * every frame has the same nodes and edges, so the layout barely moves between frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_model.h"

int viz_graph_step_prepare(viz_graph *g) {
  if (g->step_ready) return 0;
  if (g->nshown < g->n)
    return ct_errorf("viz.step: the graph has %d nodes, more than max_nodes=%d: stepping through it would not be "
                     "legible (pass {max_nodes=%d} to step anyway)",
                     g->n, g->o.max_nodes, g->n * 2);
  ct_tensor *root = g->v[g->root].t;
  if (g->nfreed || g->remembered) { /* after backward: the structure, and the leaves' .grad as computed */
    g->step_nops = 0;
    g->step_ops = malloc(sizeof *g->step_ops * viz_count(g->n));
    if (!g->step_ops) return ct_errorf("viz.step: out of memory");
    for (int k = 0; k < g->n; k++) {
      if (g->v[k].role == ROLE_OP) g->step_ops[g->step_nops++] = k;
      else if (g->v[k].t->requires_grad && g->v[k].t->grad) g->v[k].sgrad = ct_retain(g->v[k].t->grad);
    }
    g->step_ready = true;
    return 0;
  }
  if (!root->requires_grad)
    return ct_errorf("viz.step: the tensor does not require grad, so there is no backward pass to step through");
  int n = 0;
  ct_tensor **in = calloc(viz_count(g->n + 1), sizeof *in);
  int *which = malloc(sizeof *which * viz_count(g->n));
  ct_tensor **res = calloc(viz_count(g->n), sizeof *res);
  g->step_ops = malloc(sizeof *g->step_ops * viz_count(g->n));
  if (!in || !which || !res || !g->step_ops) {
    free(in), free(which), free(res);
    return ct_errorf("viz.step: out of memory");
  }
  for (int k = 0; k < g->n; k++) {
    if (g->v[k].t->requires_grad) {
      in[n] = g->v[k].t;
      which[n++] = k;
    }
    if (g->v[k].role == ROLE_OP) g->step_ops[g->step_nops++] = k;
  }
  int rc = ct_grad(root, NULL, in, n, res, true, false);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ct_last_error());
    ct_errorf("viz.step: computing the gradients failed: %s", msg);
  } else {
    for (int i = 0; i < n; i++) g->v[which[i]].sgrad = res[i];
    g->step_ready = true;
  }
  free(in), free(which), free(res);
  return rc;
}

int viz_graph_step_count(const viz_graph *g) { return 2 * g->step_nops + 1; }

static void frame_caption(const viz_graph *g, int phase, int idx, int cur, char *cap, size_t n) {
  char name[96], in[160] = "";
  int F = g->step_nops;
  if (phase == 3) {
    snprintf(cap, n, "done: every leaf that requires grad holds its gradient (%d frames)", 2 * F + 1);
    return;
  }
  const viz_vnode *v = &g->v[cur];
  size_t k = 0;
  for (int i = 0; i < v->nin && k < sizeof in; i++) {
    char nm[96];
    int w = snprintf(in + k, sizeof in - k, "%s%s", i ? ", " : "", v->in[i] >= 0 ? viz_vnode_name(g, v->in[i], nm, sizeof nm) : "?");
    if (w > 0) k += (size_t)w;
  }
  viz_vnode_name(g, cur, name, sizeof name);
  char full[640]; /* fits every part whole; cut to the caller's size below */
  if (phase == 1)
    snprintf(full, sizeof full, "forward %d/%d: %s(%s)%s%.96s", idx + 1, F, ct_op_name(v->op), in,
             v->t->name ? " -> " : "", v->t->name ? v->t->name : "");
  else
    snprintf(full, sizeof full, "backward %d/%d: grad of %s is complete; %s's rule sends it on to %s", idx + 1, F,
             name, ct_op_name(v->op), in);
  size_t len = strlen(full);
  if (len >= n) len = n - 1;
  memcpy(cap, full, len);
  cap[len] = '\0';
}

int viz_graph_step_dot(viz_graph *g, int k, viz_buf *out, char *caption, size_t ncaption) {
  if (viz_graph_step_prepare(g)) return -1;
  int F = g->step_nops, N = viz_graph_step_count(g);
  if (k < 0 || k >= N) return ct_errorf("viz.step: frame %d out of range (1..%d)", k + 1, N);
  bool *vk = calloc(viz_count(g->n), 1), *gk = calloc(viz_count(g->n), 1);
  if (!vk || !gk) {
    free(vk), free(gk);
    return ct_errorf("viz.step: out of memory");
  }
  viz_step_view sv = {.value_known = vk, .grad_known = gk, .current = -1};
  for (int j = 0; j < g->n; j++) vk[j] = g->v[j].role != ROLE_OP;
  int idx = 0;
  if (k < F) {
    sv.phase = 1;
    idx = k;
    for (int j = 0; j <= k; j++) vk[g->step_ops[j]] = true;
    sv.current = g->step_ops[k];
  } else {
    for (int j = 0; j < g->n; j++) vk[j] = true;
    int done = k < 2 * F ? k - F + 1 : F; /* ops whose gradient is complete */
    sv.phase = k < 2 * F ? 2 : 3;
    idx = k - F;
    for (int j = 0; j < done; j++) gk[g->step_ops[F - 1 - j]] = true;
    if (sv.phase == 2) sv.current = g->step_ops[F - 1 - idx];
    /* a leaf's gradient is complete once every op that reads it has been processed */
    for (int j = 0; j < g->n; j++) {
      if (g->v[j].role == ROLE_OP || !g->v[j].t->requires_grad) continue;
      bool all = true;
      for (int c = 0; c < g->n && all; c++) {
        const viz_vnode *v = &g->v[c];
        for (int i = 0; i < v->nin; i++)
          if (v->in[i] == j && !gk[c]) all = false;
      }
      gk[j] = all;
    }
  }
  char cap[320];
  frame_caption(g, sv.phase, idx, sv.current, cap, sizeof cap);
  if (caption) snprintf(caption, ncaption, "%s", cap);
  const char *saved = g->o.title;
  char title[360];
  snprintf(title, sizeof title, "step %d/%d  %s", k + 1, N, cap);
  g->o.title = title;
  int rc = viz_graph_emit(g, &sv, out);
  g->o.title = saved;
  free(vk), free(gk);
  return rc;
}
