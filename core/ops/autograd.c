/* autograd.c: reverse-mode differentiation over the recorded graph (design decision 2).
 * Backward rules emit ordinary table ops, so with create_graph the gradient is itself a graph.
 * Invariants: a node is owned by its output tensor (and by nothing else but the engine during a
 * pass); a freed node keeps its edges' metadata but drops its saved inputs; node destruction is
 * iterative so that deep chains cannot overflow the C stack.
 * Hooks (core/ctx) are the current context's: gradient-ready hooks fire once per leaf per pass,
 * when the last edge into it has delivered its gradient; backward-end hooks after a successful
 * ct_backward. The scratch below is per thread: it lives within one C call, never across a yield. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/ctx.h"
#include "obs/events.h"
#include "ops/optable.h"

/* ---- node lifetime --------------------------------------------------------------------- */

static _Thread_local ct_node **doomed;
static _Thread_local size_t ndoomed, capdoomed;
static _Thread_local bool destroying;

static void node_drop_inputs(ct_node *n) {
  if (!n->in) return;
  ct_tensor **in = n->in;
  n->in = NULL;
  for (int i = 0; i < n->nin; i++) ct_release(in[i]);
  free(in);
}

static void node_destroy(ct_node *n) {
  node_drop_inputs(n);
  ct_release(n->gacc);
  free(n->ver); /* needs lives in the same block (dispatch.c) */
  free(n->name);
  free(n);
  ct_mem_count_node(-1);
}

void ct_node_retain(ct_node *n) { n->refcount++; }

void ct_node_release(ct_node *n) {
  if (!n || --n->refcount > 0) return;
  if (destroying) {
    if (ndoomed == capdoomed) {
      size_t cap = capdoomed ? capdoomed * 2 : 256;
      ct_node **p = realloc(doomed, cap * sizeof *p);
      if (!p) { /* cannot defer: fall back to recursion for this one */
        node_destroy(n);
        return;
      }
      doomed = p;
      capdoomed = cap;
    }
    doomed[ndoomed++] = n;
    return;
  }
  destroying = true;
  node_destroy(n);
  while (ndoomed) node_destroy(doomed[--ndoomed]);
  destroying = false;
}

bool ct_node_needs_grad(const ct_node *n, int i) { return n->needs[i]; }
int ct_node_op(const ct_node *n) { return n->op; }
int ct_node_ninputs(const ct_node *n) { return n->nin; }
ct_tensor *ct_node_input(const ct_node *n, int i) { return n->in && i >= 0 && i < n->nin ? n->in[i] : NULL; }
ct_tensor *ct_node_output(const ct_node *n) { return n->out; }
uint64_t ct_node_id(const ct_node *n) { return n->id; }
const char *ct_node_name(const ct_node *n) { return n->name; }
bool ct_node_freed(const ct_node *n) { return n->freed; }

static _Thread_local char scope_buf[96];
static _Thread_local const char *scope;
const char *ct_backward_scope(void) { return scope; }

/* ---- saved-tensor versions ------------------------------------------------------------------ */

uint32_t ct_version(const ct_tensor *t) { return t->storage->version; }
void ct_bump_version(ct_tensor *t) { t->storage->version++; }

/* Whether n's gradient rule reads the values of input i (i == nin: its output). Rules that use
   only shapes (views, add, sum, ...) or only the other operand's values (mul, matmul: x's
   gradient reads w) save nothing that an in-place write could make stale. */
static bool saves(const ct_node *n, int i) {
  if (i == n->nin) {
    switch (n->op) {
    case CT_OP_exp: case CT_OP_sqrt: case CT_OP_tanh: case CT_OP_sigmoid: case CT_OP_softmax:
    case CT_OP_log_softmax: case CT_OP_div: case CT_OP_pow: case CT_OP_max: case CT_OP_min:
    case CT_OP_attention_flash: return true;
    default: return false;
    }
  }
  switch (n->op) {
  case CT_OP_view: case CT_OP_expand: case CT_OP_transpose: case CT_OP_permute: case CT_OP_narrow:
  case CT_OP_select: case CT_OP_narrow_scatter: case CT_OP_copy: case CT_OP_to_dtype: case CT_OP_add:
  case CT_OP_sub: case CT_OP_neg: case CT_OP_add_scalar: case CT_OP_mul_scalar: case CT_OP_sum:
  case CT_OP_mean: case CT_OP_cat: case CT_OP_exp: case CT_OP_sqrt: case CT_OP_tanh: case CT_OP_sigmoid:
  case CT_OP_softmax: case CT_OP_log_softmax: return false;
  case CT_OP_div: return i == 1;
  case CT_OP_index_select: case CT_OP_gather: case CT_OP_index_add: case CT_OP_scatter_add: return i == 1;
  case CT_OP_mul: case CT_OP_matmul: return n->nin == 2 && n->needs[1 - i];
  default: return true;
  }
}

/* PyTorch's error when a tensor n's rule reads was written in place after n was recorded. */
static int check_versions(const ct_node *n) {
  for (int i = 0; i <= n->nin; i++) {
    const ct_tensor *t = i < n->nin ? n->in[i] : n->out;
    if (!t || !n->ver || t->storage->version == n->ver[i] || !saves(n, i)) continue;
    char sh[CT_MAX_DIMS * 24 + 4] = "[";
    size_t k = 1;
    for (int d = 0; d < t->ndim && k < sizeof sh; d++)
      k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < sizeof sh) snprintf(sh + k, sizeof sh - k, "]");
    char nm[96] = "";
    if (t->name) snprintf(nm, sizeof nm, ", named '%s'", t->name);
    char which[32] = "its output";
    if (i < n->nin) snprintf(which, sizeof which, "input %d", i + 1);
    return ct_errorf("backward: one of the variables needed for gradient computation has been modified by an "
                     "inplace operation: [%s %s] (saved by %s), is at version %u; expected version %u instead "
                     "(%s of %s%s). Hint: make the in-place change (an optimizer step, fill_, copy_, x[i] = v) "
                     "after backward, or on a clone()",
                     ct_dtype_name(t->dtype), sh, ct_optable[n->op]->name, (unsigned)t->storage->version,
                     (unsigned)n->ver[i], which, ct_optable[n->op]->name, nm);
  }
  return 0;
}

/* ---- reference cycles through .grad -------------------------------------------------------- */

/* backward(create_graph=true) and x.grad = f(x) give a leaf a gradient whose graph holds the leaf:
   x -> x.grad -> node -> x, a cycle that refcounts never free. ct_release calls this when a
   reference to t goes and t->grad has a graph: if every reference left to t comes from that graph
   (at most CYCLE_MAX_NODES nodes are searched), nothing else can reach t, and t->grad is dropped,
   which frees the cycle. Returns true when t may have been freed (the caller must not touch it). */
#define CYCLE_MAX_NODES 4096
bool ct_grad_cycle_release(ct_tensor *t) {
  enum { CAP = 2 * CYCLE_MAX_NODES };
  const ct_node **seen = calloc(CAP, sizeof *seen);
  const ct_node **stack = malloc(CYCLE_MAX_NODES * sizeof *stack);
  int refs = 0, nstack = 0, nseen = 0;
  bool too_big = !seen || !stack;
  if (!too_big) stack[nstack++] = t->grad->grad_fn;
  while (!too_big && nstack && refs < t->refcount) {
    const ct_node *n = stack[--nstack];
    for (int i = 0; n->in && i < n->nin && !too_big; i++) {
      const ct_tensor *u = n->in[i];
      if (u == t) refs++;
      const ct_node *p = u == t ? NULL : u->grad_fn;
      if (!p) continue;
      size_t h = (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (CAP - 1);
      while (seen[h] && seen[h] != p) h = (h + 1) & (CAP - 1);
      if (seen[h]) continue;
      if (++nseen >= CYCLE_MAX_NODES) too_big = true;
      else seen[h] = stack[nstack++] = p;
    }
  }
  free(seen);
  free(stack);
  if (too_big || refs != t->refcount) return false;
  ct_tensor *g = t->grad;
  t->grad = NULL;
  ct_release(g); /* frees the graph, and with it t */
  return true;
}

/* ---- the engine -------------------------------------------------------------------------- */

int ct_node_vec_push(ct_node_vec *s, ct_node *n, const char *op) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    ct_node **p = realloc(s->v, cap * sizeof *p);
    if (!p) return ct_errorf("%s: out of memory", op);
    s->v = p;
    s->cap = cap;
  }
  s->v[s->n++] = n;
  return 0;
}

static int freed_error(const ct_node *n) {
  return ct_errorf("backward: trying to backward through the graph a second time: node %s (id %llu) "
                   "had its saved tensors freed by the first backward; call backward with "
                   "retain_graph=true the first time if you need to",
                   ct_optable[n->op]->name, (unsigned long long)n->id);
}

/* Collects every node reachable from root along edges that need a gradient, and counts for each
   node how many consumers it has among them (pending). */
static int collect(ct_node *root, ct_node_vec *all) {
  ct_node_vec stack = {0};
  int rc = 0;
  root->mark = 1;
  root->pending = 0;
  ct_node_retain(root); /* the pass holds every collected node until its cleanup */
  if (ct_node_vec_push(all, root, "backward") || ct_node_vec_push(&stack, root, "backward")) rc = -1;
  while (!rc && stack.n) {
    ct_node *n = stack.v[--stack.n];
    if (n->freed) {
      rc = freed_error(n);
      break;
    }
    for (int i = 0; i < n->nin; i++) {
      if (!n->needs[i] || !n->in[i]->grad_fn) continue;
      ct_node *p = n->in[i]->grad_fn;
      if (!p->mark) {
        p->mark = 1;
        p->pending = 0;
        ct_node_retain(p);
        if (ct_node_vec_push(all, p, "backward") || ct_node_vec_push(&stack, p, "backward")) {
          rc = -1;
          break;
        }
      }
      p->pending++;
    }
  }
  free(stack.v);
  return rc;
}

static int accumulate(ct_tensor **slot, ct_tensor *g) {
  if (!*slot) {
    *slot = ct_retain(g);
    return 0;
  }
  ct_tensor *s = ct_add(*slot, g);
  if (!s) return -1;
  ct_release(*slot);
  *slot = s;
  return 0;
}

/* Stores g into a leaf's .grad: a private, detached copy tagged as gradient memory. */
static int accumulate_leaf(ct_tensor *leaf, ct_tensor *g, bool create_graph) {
  ct_tensor *own = g;
  if (!create_graph && (g->storage->refcount > 1 || g->grad_fn || !ct_is_contiguous(g))) own = ct_clone(g);
  else ct_retain(own);
  if (!own) return -1;
  if (!ct_dtype_is_float(own->dtype) || own->dtype != leaf->dtype) {
    ct_tensor *c = ct_to_dtype(own, leaf->dtype);
    ct_release(own);
    if (!(own = c)) return -1;
  }
  int rc = accumulate(&leaf->grad, own);
  ct_release(own);
  if (!rc && leaf->grad->storage->refcount == 1) ct_set_category(leaf->grad, CT_CAT_GRADIENT);
  return rc;
}

/* ---- what a freed node keeps ---------------------------------------------------------------
   Backward frees a node's saved inputs but not the graph's structure (pictures after backward):
   each input becomes a shell with its shape, dtype, name and grad_fn whose elements all read one
   zero (stride 0) from a shared 8-byte storage; a leaf that requires grad stays itself (it lives
   on as a parameter and carries .grad). One pass shares one base and one shell per leaf. */
static ct_tensor *shell_base;
static struct shell_memo { uint64_t id; ct_tensor *shell; } *shell_memo;
static size_t nshell_memo, capshell_memo;

static ct_tensor *shell_of(ct_tensor *t) {
  if (!t->grad_fn && t->requires_grad) return ct_retain(t);
  for (size_t k = 0; !t->grad_fn && k < nshell_memo; k++)
    if (shell_memo[k].id == t->id) return ct_retain(shell_memo[k].shell);
  int64_t one = 1;
  if (!shell_base && !(shell_base = ct_zeros(&one, 1, CT_F64, ct_cpu()))) return NULL;
  ct_meta m = {.ndim = t->ndim, .dtype = t->dtype};
  memcpy(m.shape, t->shape, sizeof m.shape);
  ct_tensor *s = ct_tensor_alias(shell_base, &m);
  if (!s) return NULL;
  s->grad_fn = t->grad_fn;
  if (s->grad_fn) ct_node_retain(s->grad_fn);
  s->requires_grad = t->requires_grad;
  s->name = t->name ? strdup(t->name) : NULL;
  if (!t->grad_fn && nshell_memo == capshell_memo) { /* no room: this leaf may get a second shell */
    size_t cap = capshell_memo ? capshell_memo * 2 : 32;
    struct shell_memo *p = realloc(shell_memo, cap * sizeof *p);
    if (p) shell_memo = p, capshell_memo = cap;
  }
  if (!t->grad_fn && nshell_memo < capshell_memo) shell_memo[nshell_memo++] = (struct shell_memo){t->id, s};
  return s;
}

static void node_shell_inputs(ct_node *n) {
  for (int i = 0; n->in && i < n->nin; i++) {
    ct_tensor *t = n->in[i];
    n->in[i] = shell_of(t); /* NULL (out of memory) only loses the edge from pictures */
    ct_release(t);
  }
}

/* After n's rule ran: drop n's saved inputs. An input that is the output of a node still waiting
   for its gradient may be needed by that node's rule (exp, tanh, softmax read their output), so
   that node holds it until it has run. */
static void release_saved(ct_node *n) {
  for (int i = 0; n->in && i < n->nin; i++) {
    ct_tensor *t = n->in[i];
    ct_node *p = t->grad_fn;
    if (p && p->mark == 1 && p->out == t && !p->out_hold) p->out_hold = ct_retain(t);
  }
  n->freed = true;
  node_shell_inputs(n);
  ct_tensor *hold = n->out_hold;
  n->out_hold = NULL;
  ct_release(hold); /* may free n's output: ct_release clears n->out then */
}

/* ---- gradient-ready hooks: edges of this pass still to deliver into each leaf ----------------- */

typedef struct {
  ct_tensor *leaf;
  int pending;
} leaf_slot;
typedef struct {
  leaf_slot *v; /* open addressing; NULL when the context has no gradient-ready hook */
  size_t cap;   /* a power of two, at least twice the edges */
} leaf_map;

static bool is_leaf_edge(const ct_node *n, int i) {
  return n->needs[i] && !n->in[i]->grad_fn && n->in[i]->requires_grad;
}

static leaf_slot *leaf_find(const leaf_map *m, const ct_tensor *t) {
  size_t i = (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
  while (m->v[i].leaf && m->v[i].leaf != t) i = (i + 1) & (m->cap - 1);
  return &m->v[i];
}

static int leaf_map_build(leaf_map *m, const ct_node_vec *all) {
  size_t edges = 0;
  for (size_t k = 0; k < all->n; k++)
    for (int i = 0; i < all->v[k]->nin; i++) edges += is_leaf_edge(all->v[k], i);
  for (m->cap = 16; m->cap < 2 * edges; m->cap *= 2) {}
  if (!(m->v = calloc(m->cap, sizeof *m->v))) return ct_errorf("backward: out of memory");
  for (size_t k = 0; k < all->n; k++)
    for (int i = 0; i < all->v[k]->nin; i++) {
      if (!is_leaf_edge(all->v[k], i)) continue;
      leaf_slot *s = leaf_find(m, all->v[k]->in[i]);
      s->leaf = all->v[k]->in[i];
      s->pending++;
    }
  return 0;
}

static int fire_grad_ready(const ct_ctx *cx, ct_tensor *leaf) {
  for (int i = 0; i < cx->nhooks; i++)
    if (cx->hooks[i].kind == CT_HOOK_GRAD_READY && ((ct_grad_ready_fn)cx->hooks[i].fn)(leaf, cx->hooks[i].ud)) return -1;
  return 0;
}

/* One edge into leaf t has delivered its gradient (or had none to give): fire if it was the last. */
static int leaf_delivered(const ct_ctx *cx, const leaf_map *m, ct_tensor *t) {
  if (!m->v) return 0;
  leaf_slot *s = leaf_find(m, t);
  if (s->leaf != t || --s->pending > 0) return 0;
  return fire_grad_ready(cx, t);
}

static int fire_backward_end(const ct_ctx *cx, ct_tensor *root) {
  for (int i = 0; i < cx->nhooks; i++)
    if (cx->hooks[i].kind == CT_HOOK_BACKWARD_END && ((ct_backward_end_fn)cx->hooks[i].fn)(root, cx->hooks[i].ud))
      return -1;
  return 0;
}

static int interrupted(void) {
  return ct_errorf("backward: interrupted (the .grad of leaves may hold part of this pass's gradient: "
                   "zero them before a step)");
}

/* Hooks run with the pass's grad mode (off unless create_graph), as the gradient rules do. */
static int run_engine(ct_tensor *root, ct_tensor *groot, ct_tensor *const *inputs, int ninputs, ct_tensor **results,
                      bool retain_graph, bool create_graph) {
  char d[200];
  if (!root->requires_grad)
    return ct_errorf("backward: %s does not require grad (no input of it requires grad, or it was computed "
                     "under no_grad or from detached tensors)", ct_describe(root, d, sizeof d));
  ct_tensor *seed = NULL;
  if (groot) {
    if (groot->ndim != root->ndim || memcmp(groot->shape, root->shape, sizeof(int64_t) * (size_t)root->ndim)) {
      char d2[200];
      return ct_errorf("backward: gradient %s does not match the shape of the output %s",
                       ct_describe(groot, d2, sizeof d2), ct_describe(root, d, sizeof d));
    }
    seed = ct_retain(groot);
  } else {
    if (ct_numel(root) != 1)
      return ct_errorf("backward: a gradient can be created implicitly only for one-element outputs, got %s; "
                       "pass a gradient tensor of the same shape", ct_describe(root, d, sizeof d));
    seed = ct_ones_like(root);
    if (!seed) return -1;
  }
  ct_ctx *cx = ct_ctx_cur();
  bool old_mode = ct_ctx_set_grad_enabled(cx, create_graph);
  int rc = 0;
  if (!root->grad_fn) { /* a leaf: its gradient is the seed */
    for (int k = 0; k < ninputs; k++)
      if (inputs[k] == root) rc = accumulate(&results[k], seed);
    if (!inputs) rc = accumulate_leaf(root, seed, create_graph);
    if (!inputs && !rc) rc = fire_grad_ready(cx, root);
    if (!inputs && !rc) rc = fire_backward_end(cx, root);
    ct_release(seed);
    ct_ctx_set_grad_enabled(cx, old_mode);
    return rc;
  }
  ct_node_vec all = {0}, ready = {0};
  leaf_map leaves = {0};
  /* Without retain_graph, each node's saved inputs go as soon as its rule has run, so memory
     falls during backward as in PyTorch (pictures mode keeps the whole graph to draw it). */
  bool free_early = !retain_graph && !ct_retain_all_grads();
  rc = collect(root->grad_fn, &all);
  if (!rc && !inputs && cx->nhooks_of[CT_HOOK_GRAD_READY]) rc = leaf_map_build(&leaves, &all);
  if (!rc) {
    root->grad_fn->gacc = seed;
    seed = NULL;
    rc = ct_node_vec_push(&ready, root->grad_fn, "backward");
  }
  ct_event_mark("backward", NULL);
  while (!rc && ready.n) {
    if (ct_interrupt_pending()) { /* Ctrl-C: stop between nodes; cleanup below as for any error */
      rc = interrupted();
      break;
    }
    ct_node *n = ready.v[--ready.n];
    ct_tensor *g = n->gacc;
    n->gacc = NULL;
    ct_tensor *out = n->out;
    if (inputs) {
      for (int k = 0; k < ninputs; k++)
        if (inputs[k]->grad_fn == n && !rc) rc = accumulate(&results[k], g);
    } else if (out && out->retains_grad && !rc) {
      rc = accumulate_leaf(out, g, create_graph);
    }
    const ct_opdef *def = ct_optable[n->op];
    ct_tensor *gin_small[8] = {0};
    ct_tensor **gin = n->nin <= 8 ? gin_small : calloc((size_t)n->nin, sizeof *gin);
    if (!gin) rc = ct_errorf("backward: out of memory");
    if (!rc && !def->backward) {
      rc = ct_errorf("backward: op %s has no gradient rule (it is not differentiable%s)", def->name,
                     n->name ? ", so double backward through it is not supported" : "");
    }
    if (!rc) rc = check_versions(n);
    if (!rc) {
      const char *what = out && out->name ? out->name : (n->name ? n->name : def->name);
      snprintf(scope_buf, sizeof scope_buf, "grad of %s", what);
      scope = scope_buf;
      rc = def->backward(n, g, gin);
      scope = NULL;
      if (rc && ct_interrupt_pending()) rc = interrupted(); /* a rule's op saw it first */
    }
    /* g is done with: let it go before the gradients are stored, so a leaf's gradient that is a
       view of g's storage (a transpose's, as nn.Linear's weight gets) is not shared any more and
       accumulate_leaf keeps it instead of copying it (3 weight-sized copies per MLP step) */
    ct_release(g);
    g = NULL;
    for (int i = 0; !rc && i < n->nin; i++) {
      if (!n->needs[i]) continue;
      ct_tensor *t = n->in[i];
      if (!gin[i]) {
        if (!inputs && is_leaf_edge(n, i)) rc = leaf_delivered(cx, &leaves, t);
        continue;
      }
      if (t->grad_fn) {
        ct_node *p = t->grad_fn;
        rc = accumulate(&p->gacc, gin[i]);
        if (!rc && --p->pending == 0) rc = ct_node_vec_push(&ready, p, "backward");
      } else if (inputs) {
        for (int k = 0; k < ninputs && !rc; k++)
          if (inputs[k] == t) rc = accumulate(&results[k], gin[i]);
      } else if (t->requires_grad) {
        rc = accumulate_leaf(t, gin[i], create_graph);
        if (!rc) rc = leaf_delivered(cx, &leaves, t);
      }
    }
    for (int i = 0; i < n->nin; i++) ct_release(gin[i]);
    if (gin != gin_small) free(gin);
    ct_release(g);
    n->mark = 2; /* processed */
    if (!rc && free_early) release_saved(n);
  }
  for (size_t k = 0; k < all.n; k++) {
    ct_node *n = all.v[k];
    n->mark = 0;
    ct_release(n->gacc);
    n->gacc = NULL;
    ct_tensor *hold = n->out_hold;
    n->out_hold = NULL;
    ct_release(hold);
    if (!retain_graph && !rc && !ct_retain_all_grads()) { /* pictures mode keeps the graph to draw */
      n->freed = true;
      node_shell_inputs(n);
    }
  }
  ct_release(shell_base);
  shell_base = NULL;
  nshell_memo = 0;
  for (size_t k = 0; k < all.n; k++) ct_node_release(all.v[k]);
  ct_event_mark("backward end", NULL);
  if (!rc && !inputs) rc = fire_backward_end(cx, root);
  ct_release(seed);
  free(all.v);
  free(ready.v);
  free(leaves.v);
  ct_ctx_set_grad_enabled(cx, old_mode);
  return rc;
}

int ct_backward(ct_tensor *out, ct_tensor *grad, bool retain_graph, bool create_graph) {
  ct_category old = ct_set_default_category(CT_CAT_TEMPORARY); /* made in backward: temporary */
  int rc = run_engine(out, grad, NULL, 0, NULL, retain_graph || create_graph, create_graph);
  ct_set_default_category(old);
  return rc;
}

int ct_grad(ct_tensor *out, ct_tensor *grad_out, ct_tensor *const *inputs, int n, ct_tensor **result,
            bool retain_graph, bool create_graph) {
  for (int k = 0; k < n; k++) result[k] = NULL;
  for (int k = 0; k < n; k++)
    if (!inputs[k]->requires_grad) {
      char d[200];
      return ct_errorf("grad: input %d (%s) does not require grad", k + 1, ct_describe(inputs[k], d, sizeof d));
    }
  ct_category old = ct_set_default_category(CT_CAT_TEMPORARY); /* made in backward: temporary */
  int rc = run_engine(out, grad_out, inputs, n, result, retain_graph || create_graph, create_graph);
  ct_set_default_category(old);
  for (int k = 0; k < n; k++) {
    if (rc) {
      ct_release(result[k]);
      result[k] = NULL;
    } else if (!result[k]) {
      result[k] = ct_zeros_like(inputs[k]);
      if (!result[k]) rc = -1;
    }
  }
  return rc;
}

int ct_zero_grad(ct_tensor *t) {
  ct_release(t->grad);
  t->grad = NULL;
  return 0;
}

int ct_requires_grad_(ct_tensor *t, bool on) {
  char d[200];
  if (on && !ct_dtype_is_float(t->dtype))
    return ct_errorf("requires_grad_: only floating-point tensors can require gradients, got %s",
                     ct_describe(t, d, sizeof d));
  if (!on && t->grad_fn)
    return ct_errorf("requires_grad_(false): %s is not a leaf (it was computed from tensors that require "
                     "grad); use detach() instead", ct_describe(t, d, sizeof d));
  t->requires_grad = on;
  return 0;
}
