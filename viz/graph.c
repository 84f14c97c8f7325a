/* graph.c: walking the autograd graph behind a tensor into viz's model (graph_model.h): roles of
 * the leaves, nn module scopes, repeated layers folded, and the node limit.
 * Invariants: the walk is iterative (deep chains cannot overflow the C stack) and visits inputs
 * in argument order, so the same graph always gives the same model and the same DOT text. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_model.h"
#include "graph/inspect.h"

/* ---- pointer -> vnode index ----------------------------------------------------------------- */
typedef struct {
  const void **key;
  int *val;
  size_t cap, used;
} ptr_map;

static int pm_grow(ptr_map *m);
static int *pm_find(ptr_map *m, const void *k) {
  size_t h = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull & (m->cap - 1);
  while (m->key[h] && m->key[h] != k) h = (h + 1) & (m->cap - 1);
  return m->key[h] ? &m->val[h] : NULL;
}
static int pm_put(ptr_map *m, const void *k, int v) {
  if (2 * (m->used + 1) > m->cap && pm_grow(m)) return -1;
  size_t h = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull & (m->cap - 1);
  while (m->key[h] && m->key[h] != k) h = (h + 1) & (m->cap - 1);
  if (!m->key[h]) m->used++;
  m->key[h] = k;
  m->val[h] = v;
  return 0;
}
static int pm_grow(ptr_map *m) {
  ptr_map b = {0};
  b.cap = m->cap ? m->cap * 2 : 256;
  b.key = calloc(b.cap, sizeof *b.key);
  b.val = calloc(b.cap, sizeof *b.val);
  if (!b.key || !b.val) {
    free(b.key), free(b.val);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->key[i]) pm_put(&b, m->key[i], m->val[i]);
  free(m->key), free(m->val);
  *m = b;
  return 0;
}
static void pm_free(ptr_map *m) { free(m->key), free(m->val); }

static const void *key_of(const ct_tensor *t) { return t->grad_fn ? (const void *)t->grad_fn : (const void *)t; }

/* ---- the walk ---------------------------------------------------------------------------- */

static viz_role leaf_role(const ct_tensor *t) {
  if (t->requires_grad || t->storage->category == CT_CAT_PARAMETER) return ROLE_PARAM;
  if (t->storage->category == CT_CAT_INPUT || t->name || ct_numel(t) > 1) return ROLE_INPUT;
  return ROLE_CONST;
}

static int add_vnode(viz_graph *g, ct_tensor *t, int *ins, int nin) {
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 64;
    viz_vnode *p = realloc(g->v, sizeof *p * (size_t)cap);
    if (!p) return free(ins), ct_errorf("viz.graph: out of memory");
    g->v = p;
    g->cap = cap;
  }
  viz_vnode *v = &g->v[g->n];
  memset(v, 0, sizeof *v);
  if (t->grad_fn && ct_node_output(t->grad_fn)) t = ct_node_output(t->grad_fn); /* live values over a shell */
  v->t = ct_retain(t);
  v->in = ins;
  v->nin = nin;
  if (t->grad_fn) {
    v->role = ROLE_OP;
    v->node = t->grad_fn;
    v->op = ct_node_op(t->grad_fn);
    v->freed = ct_node_freed(t->grad_fn) || (nin > 0 && !ct_node_input(t->grad_fn, 0));
    v->is_view = ct_op_is_view(v->op);
    g->nops++;
    g->nfreed += v->freed;
  } else {
    v->role = leaf_role(t);
    g->nleaves++;
  }
  return g->n++;
}

typedef struct {
  ct_tensor *t;
  int next;
} walk_frame;

static int walk(viz_graph *g, ct_tensor *root) {
  ptr_map seen = {0};
  walk_frame *stack = NULL;
  int sp = 0, cap = 0, rc = 0;
  if (pm_grow(&seen)) return ct_errorf("viz.graph: out of memory");
#define PUSH(T)                                                                                     \
  do {                                                                                              \
    if (sp == cap) {                                                                                \
      cap = cap ? cap * 2 : 64;                                                                     \
      walk_frame *p_ = realloc(stack, sizeof *p_ * (size_t)cap);                                    \
      if (!p_) {                                                                                    \
        rc = ct_errorf("viz.graph: out of memory");                                                 \
        goto done;                                                                                  \
      }                                                                                             \
      stack = p_;                                                                                   \
    }                                                                                               \
    stack[sp++] = (walk_frame){(T), 0};                                                             \
  } while (0)
  PUSH(root);
  while (sp) {
    walk_frame *f = &stack[sp - 1];
    ct_tensor *t = f->t;
    const ct_node *n = t->grad_fn;
    if (f->next == 0 && pm_find(&seen, key_of(t))) {
      sp--;
      continue;
    }
    int nin = n ? ct_node_ninputs(n) : 0;
    if (n && f->next < nin) {
      ct_tensor *in = ct_node_input(n, f->next++);
      if (in && !pm_find(&seen, key_of(in))) PUSH(in);
      continue;
    }
    int *ins = nin ? malloc(sizeof *ins * (size_t)nin) : NULL;
    if (nin && !ins) {
      rc = ct_errorf("viz.graph: out of memory");
      goto done;
    }
    for (int i = 0; i < nin; i++) {
      ct_tensor *in = ct_node_input(n, i);
      int *k = in ? pm_find(&seen, key_of(in)) : NULL;
      ins[i] = k ? *k : -1;
    }
    int idx = add_vnode(g, t, ins, nin);
    if (idx < 0 || pm_put(&seen, key_of(t), idx)) {
      rc = idx < 0 ? -1 : ct_errorf("viz.graph: out of memory");
      goto done;
    }
    sp--;
  }
#undef PUSH
done:
  free(stack);
  pm_free(&seen);
  return rc;
}

/* ---- scopes ----------------------------------------------------------------------------------- */

/* "layers.1.weight" -> "layers.1"; names without a dot have no scope. */
static void scope_of_name(const char *name, char *out, size_t n) {
  out[0] = '\0';
  if (!name) return;
  const char *dot = strrchr(name, '.');
  if (!dot || dot == name) return;
  size_t k = (size_t)(dot - name);
  if (k >= n) k = n - 1;
  memcpy(out, name, k);
  out[k] = '\0';
}

/* An op belongs to the module whose parameters it reads (directly or through a view of them);
   a view or a one-input elementwise op that is the only consumer of a scoped op (the activation
   after a Linear) joins it. A named op output with a dotted name says its scope itself. */
static void infer_scopes(viz_graph *g) {
  for (int k = 0; k < g->n; k++) {
    viz_vnode *v = &g->v[k];
    for (int i = 0; i < v->nin; i++)
      if (v->in[i] >= 0) g->v[v->in[i]].nconsumers++;
  }
  for (int k = 0; k < g->n; k++) {
    viz_vnode *v = &g->v[k];
    scope_of_name(v->t->name, v->scope, sizeof v->scope);
    if (v->scope[0] || v->role != ROLE_OP) continue;
    for (int i = 0; i < v->nin && !v->scope[0]; i++) {
      if (v->in[i] < 0) continue;
      const viz_vnode *u = &g->v[v->in[i]];
      if (u->role == ROLE_PARAM || (u->role == ROLE_OP && u->is_view && u->nin == 1 && u->in[0] >= 0 &&
                                    g->v[u->in[0]].role == ROLE_PARAM))
        snprintf(v->scope, sizeof v->scope, "%s", u->scope);
    }
    bool activation = ct_op_is_elementwise(v->op) && v->nin == 1;
    if (!v->scope[0] && (v->is_view || activation) && v->in[0] >= 0) {
      const viz_vnode *u = &g->v[v->in[0]];
      if (u->role == ROLE_OP && u->nconsumers == 1) snprintf(v->scope, sizeof v->scope, "%s", u->scope);
    }
  }
}

/* ---- folding repeated layers ------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

/* "blocks.12.attn" -> "blocks.#.attn" */
static void scope_key(const char *s, char *out, size_t n) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++) {
    if (isdigit((unsigned char)*s)) {
      if (!k || out[k - 1] != '#') out[k++] = '#';
    } else {
      out[k++] = *s;
    }
  }
  out[k] = '\0';
}

typedef struct {
  const char *scope; /* of its first vnode */
  char key[80];
  uint64_t sig;
  int first, count;
  int group; /* index of the first scope of its group */
} scope_info;

static int add_summary(viz_graph *g) {
  viz_summary *p = realloc(g->s, sizeof *p * (size_t)(g->ns + 1));
  if (!p) return ct_errorf("viz.graph: out of memory");
  g->s = p;
  memset(&g->s[g->ns], 0, sizeof *g->s);
  return g->ns++;
}

static int fold_repeats(viz_graph *g) {
  scope_info *sc = calloc(viz_count(g->n + 1), sizeof *sc);
  int *of = malloc(sizeof *of * (viz_count(g->n + 1)));
  if (!sc || !of) return free(sc), free(of), ct_errorf("viz.graph: out of memory");
  int nsc = 0, rc = 0;
  for (int k = 0; k < g->n; k++) {
    viz_vnode *v = &g->v[k];
    of[k] = -1;
    if (!v->scope[0]) continue;
    int s = 0;
    while (s < nsc && strcmp(sc[s].scope, v->scope)) s++;
    if (s == nsc) {
      sc[s].scope = v->scope;
      scope_key(v->scope, sc[s].key, sizeof sc[s].key);
      sc[s].sig = 0xcbf29ce484222325ull;
      sc[s].first = k;
      nsc++;
    }
    of[k] = s;
    sc[s].count++;
    const char *what = v->role == ROLE_OP ? ct_op_name(v->op) : "leaf";
    sc[s].sig = fnv(sc[s].sig, what, strlen(what) + 1);
    sc[s].sig = fnv(sc[s].sig, v->t->shape, sizeof(int64_t) * (size_t)v->t->ndim);
  }
  for (int s = 0; s < nsc; s++) {
    sc[s].group = s;
    for (int r = 0; r < s; r++)
      if (sc[r].group == r && sc[r].sig == sc[s].sig && !strcmp(sc[r].key, sc[s].key) && strchr(sc[s].key, '#')) {
        sc[s].group = r;
        break;
      }
  }
  for (int r = 0; r < nsc && !rc; r++) {
    if (sc[r].group != r) continue;
    int first = -1, last = -1, copies = 0;
    for (int s = r + 1; s < nsc; s++)
      if (sc[s].group == r) {
        if (first < 0) first = s;
        last = s;
        copies++;
      }
    if (!copies) continue;
    int si = add_summary(g);
    if (si < 0) {
      rc = -1;
      break;
    }
    viz_summary *S = &g->s[si];
    S->collapsed = true;
    const char *mod = strspn(sc[r].scope, "0123456789") == strlen(sc[r].scope) ? "module " : "";
    if (copies == 1) snprintf(S->title, sizeof S->title, "%s%s", mod, sc[first].scope);
    else snprintf(S->title, sizeof S->title, "%s%s ... %s", mod[0] ? "modules " : "", sc[first].scope, sc[last].scope);
    /* what one copy holds, from the kept scope */
    char ops[160] = "";
    size_t k = 0;
    int nleaf = 0;
    for (int j = 0; j < g->n; j++) {
      if (of[j] != r) continue;
      if (g->v[j].role != ROLE_OP) {
        nleaf++;
        continue;
      }
      if (k < sizeof ops - 8) {
        int w = snprintf(ops + k, sizeof ops - k, "%s%s", k ? ", " : "", ct_op_name(g->v[j].op));
        if (w > 0) k += (size_t)w;
        if (k >= sizeof ops - 8) snprintf(ops + sizeof ops - 8, 8, ", ...");
      }
    }
    snprintf(S->detail, sizeof S->detail, "%d more like %s%s, folded\neach: %s%s%d leaves", copies, mod, sc[r].scope,
             ops, ops[0] ? "; " : "", nleaf);
    for (int j = 0; j < g->n; j++)
      if (of[j] >= 0 && sc[of[j]].group == r && of[j] != r && j != g->root) {
        g->v[j].show = SHOW_COLLAPSED;
        g->v[j].summary = si;
        S->members++;
      }
  }
  free(sc);
  free(of);
  return rc;
}

/* ---- the node limit ------------------------------------------------------------------------- */

static const viz_graph *sort_graph;
static int by_depth(const void *a, const void *b) {
  const viz_vnode *x = &sort_graph->v[*(const int *)a], *y = &sort_graph->v[*(const int *)b];
  if (x->depth != y->depth) return x->depth - y->depth;
  return *(const int *)b - *(const int *)a; /* later (closer to the output) first */
}

static void compute_depths(viz_graph *g) {
  for (int k = 0; k < g->n; k++) g->v[k].depth = 1 << 29;
  g->v[g->root].depth = 0;
  for (int k = g->n - 1; k >= 0; k--) {
    viz_vnode *v = &g->v[k];
    for (int i = 0; i < v->nin; i++)
      if (v->in[i] >= 0 && g->v[v->in[i]].depth > v->depth + 1) g->v[v->in[i]].depth = v->depth + 1;
  }
}

static int apply_limit(viz_graph *g, int limit) {
  int shown = 0;
  for (int k = 0; k < g->n; k++) shown += g->v[k].show == SHOW_SELF;
  if (shown + g->ns <= limit) return 0;
  int *idx = malloc(sizeof *idx * (size_t)shown);
  if (!idx) return ct_errorf("viz.graph: out of memory");
  int m = 0;
  for (int k = 0; k < g->n; k++)
    if (g->v[k].show == SHOW_SELF) idx[m++] = k;
  sort_graph = g;
  qsort(idx, (size_t)m, sizeof *idx, by_depth);
  int keep = limit - g->ns - 1;
  if (keep < 1) keep = 1;
  int si = add_summary(g);
  if (si < 0) return free(idx), -1;
  viz_summary *S = &g->s[si];
  /* count what is left out, by op */
  const char *names[16];
  int counts[16], nn = 0, leaves = 0, other = 0;
  for (int j = keep; j < m; j++) {
    viz_vnode *v = &g->v[idx[j]];
    v->show = SHOW_HIDDEN;
    v->summary = si;
    S->members++;
    if (v->role != ROLE_OP) {
      leaves++;
      continue;
    }
    const char *nm = ct_op_name(v->op);
    int q = 0;
    while (q < nn && strcmp(names[q], nm)) q++;
    if (q == nn && nn < 16) names[nn] = nm, counts[nn++] = 0;
    if (q < nn) counts[q]++;
    else other++;
  }
  snprintf(S->title, sizeof S->title, "%d more nodes", S->members);
  size_t k = 0;
  for (int q = 0; q < nn && k < sizeof S->detail; q++) {
    int w = snprintf(S->detail + k, sizeof S->detail - k, "%s%s x%d", q ? (q % 4 ? ", " : ",\n") : "", names[q],
                     counts[q]);
    if (w > 0) k += (size_t)w;
  }
  if (k < sizeof S->detail)
    snprintf(S->detail + k, sizeof S->detail - k, "%s%d leaves%s", k ? "\n" : "", leaves,
             other ? ", other ops" : "");
  free(idx);
  return 0;
}

/* ---- the remembered graph ---------------------------------------------------------------------
 * backward (without retain_graph) frees a graph's saved inputs, and with them the edges viz walks.
 * So that "draw, backward, draw again" shows the same graph with its gradients, viz remembers the
 * structure of the last graph it drew (one graph, holding references to its tensors until another
 * graph is drawn) and uses it when the same output comes back freed. */
#define REMEMBER_MAX 4000

static struct {
  ct_tensor *root;
  int n;
  ct_tensor **t;
  int **in;
  int *nin;
} memo;

static void memo_clear(void) {
  for (int k = 0; k < memo.n; k++) {
    ct_release(memo.t[k]);
    free(memo.in[k]);
  }
  free(memo.t), free(memo.in), free(memo.nin);
  ct_release(memo.root);
  memset(&memo, 0, sizeof memo);
}

static void memo_store(const viz_graph *g, ct_tensor *root) {
  if (g->nfreed || g->n > REMEMBER_MAX || !root->grad_fn) return;
  memo_clear();
  memo.t = calloc(viz_count(g->n), sizeof *memo.t);
  memo.in = calloc(viz_count(g->n), sizeof *memo.in);
  memo.nin = calloc(viz_count(g->n), sizeof *memo.nin);
  if (!memo.t || !memo.in || !memo.nin) {
    memo_clear();
    return;
  }
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    memo.in[k] = v->nin ? malloc(sizeof *memo.in[k] * (size_t)v->nin) : NULL;
    if (v->nin && !memo.in[k]) {
      memo.n = k;
      memo_clear();
      return;
    }
    if (v->nin) memcpy(memo.in[k], v->in, sizeof *memo.in[k] * (size_t)v->nin);
    memo.nin[k] = v->nin;
    memo.t[k] = ct_retain(v->t);
  }
  memo.n = g->n;
  memo.root = ct_retain(root);
}

/* A walk is incomplete when an edge could not be followed (a freed input lost to out of memory,
   or a graph freed before backward kept its structure). */
static bool walk_incomplete(const viz_graph *g) {
  for (int k = 0; k < g->n; k++)
    for (int i = 0; i < g->v[k].nin; i++)
      if (g->v[k].in[i] < 0) return true;
  return false;
}

/* After backward, a freed node's inputs are shells (shape, name, grad_fn; no values): a tensor
   read only by freed nodes has lost its values, unless it is a leaf that requires grad (a
   parameter, kept) or the walk reached the op's live output. */
static void mark_freed_values(viz_graph *g) {
  bool *live = calloc(viz_count(g->n), 1);
  if (!live) return;
  live[g->n - 1] = true; /* the root is the caller's tensor */
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    for (int i = 0; i < v->nin; i++)
      if (v->in[i] >= 0 && !v->freed) live[v->in[i]] = true;
  }
  for (int k = 0; k < g->n; k++) {
    viz_vnode *v = &g->v[k];
    bool kept = v->role == ROLE_OP ? ct_node_output(v->node) == v->t : v->t->requires_grad;
    v->value_freed = !live[k] && !kept;
    g->nvalue_freed += v->value_freed;
  }
  free(live);
}

/* Replace a walk that found a freed graph by the remembered one; 1 when there is none. */
static int memo_restore(viz_graph *g, ct_tensor *root) {
  if (!memo.root || memo.root != root) return 1;
  for (int k = 0; k < g->n; k++) {
    ct_release(g->v[k].t);
    free(g->v[k].in);
  }
  g->n = g->nops = g->nleaves = g->nfreed = 0;
  for (int k = 0; k < memo.n; k++) {
    int *ins = memo.nin[k] ? malloc(sizeof *ins * (size_t)memo.nin[k]) : NULL;
    if (memo.nin[k] && !ins) return ct_errorf("viz.graph: out of memory");
    if (ins) memcpy(ins, memo.in[k], sizeof *ins * (size_t)memo.nin[k]);
    if (add_vnode(g, memo.t[k], ins, memo.nin[k]) < 0) return -1;
    g->nfreed -= g->v[k].freed;
    g->v[k].freed = false;
  }
  g->remembered = true;
  return 0;
}

/* ---- public ---------------------------------------------------------------------------------- */

viz_graph *viz_graph_build(ct_tensor *root, const viz_graph_opts *o) {
  viz_graph *g = calloc(1, sizeof *g);
  if (!g) return ct_errorf("viz.graph: out of memory"), NULL;
  if (o) g->o = *o;
  if (g->o.max_nodes <= 0) g->o.max_nodes = 150;
  if (g->o.max_values <= 0) g->o.max_values = 6;
  if (walk(g, root) || (walk_incomplete(g) && memo_restore(g, root) < 0)) {
    viz_graph_free(g);
    return NULL;
  }
  if (!g->remembered) memo_store(g, root);
  g->root = g->n - 1;
  mark_freed_values(g);
  infer_scopes(g);
  compute_depths(g);
  if (!g->o.rankdir) { /* side by side reads best top-down; short chains read best left to right */
    int *longest = calloc(viz_count(g->n), sizeof *longest), deepest = 0;
    for (int k = 0; longest && k < g->n; k++) {
      for (int i = 0; i < g->v[k].nin; i++)
        if (g->v[k].in[i] >= 0 && longest[g->v[k].in[i]] + 1 > longest[k]) longest[k] = longest[g->v[k].in[i]] + 1;
      if (longest[k] > deepest) deepest = longest[k];
    }
    free(longest);
    g->o.rankdir = g->o.backward || deepest > 7 ? "TB" : "LR";
  }
  for (int k = 0; k < g->n; k++) {
    const viz_vnode *v = &g->v[k];
    if (v->t->grad || v->freed) g->backward_ran = true;
    /* a leaf's .grad may be left from an earlier step, so only this graph's own nodes are sure */
    if ((v->role == ROLE_OP && v->t->grad) || v->freed) g->backward_sure = true;
  }
  if (g->remembered) g->backward_ran = g->backward_sure = true;
  /* with backward drawn, each shown node has a gradient twin: halve the budget */
  int limit = g->o.backward ? g->o.max_nodes / 2 : g->o.max_nodes;
  if (limit < 3) limit = 3;
  /* big graphs fold their repeated modules unless {collapse=false}: past VIZ_AUTO_FOLD nodes a
     projected picture stops being legible (halved with the backward twins drawn) */
  int auto_fold = g->o.backward ? VIZ_AUTO_FOLD / 2 : VIZ_AUTO_FOLD;
  bool fold = g->o.collapse > 0 || (g->o.collapse == 0 && g->n > auto_fold);
  if ((fold && fold_repeats(g)) || apply_limit(g, limit)) {
    viz_graph_free(g);
    return NULL;
  }
  for (int k = 0; k < g->n; k++) g->nshown += g->v[k].show == SHOW_SELF;
  return g;
}

void viz_graph_free(viz_graph *g) {
  if (!g) return;
  for (int k = 0; k < g->n; k++) {
    ct_release(g->v[k].t);
    ct_release(g->v[k].sgrad);
    free(g->v[k].in);
  }
  free(g->v);
  free(g->s);
  free(g->step_ops);
  free(g);
}

int viz_graph_dot(viz_graph *g, viz_buf *out) { return viz_graph_emit(g, NULL, out); }
