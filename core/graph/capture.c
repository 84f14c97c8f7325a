/* capture.c: recording a step into a flat graph through the op hook (the pointer map, the capture
 * state, begin/end/abort).
 * Invariants: while capturing, the graph holds a reference to every tensor an op read or made, so
 * a tensor pointer names one tensor for the whole capture (no address is reused); an unknown
 * tensor whose storage belongs to a produced value (ct_detach inside a gradient rule) becomes an
 * alias node of that value, never an external. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/ctx.h"
#include "graph/capture_internal.h"
#include "graph/graph_internal.h"

/* ==== pointer map (open addressing; keys never removed while capturing) ===================== */

typedef struct {
  uintptr_t *keys;
  int *vals;
  size_t cap, n;
} ptr_map;

static size_t hash_ptr(uintptr_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k;
}

static int map_get(const ptr_map *m, const void *key) {
  if (!m || !m->cap) return -1;
  uintptr_t k = (uintptr_t)key;
  for (size_t i = hash_ptr(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i]) return -1;
    if (m->keys[i] == k) return m->vals[i];
  }
}

static int map_put(ptr_map *m, const void *key, int val) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    uintptr_t *keys = calloc(cap, sizeof *keys);
    int *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
      free(keys), free(vals);
      return ct_errorf("capture: out of memory");
    }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = hash_ptr(m->keys[i]) & (cap - 1);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    free(m->keys), free(m->vals);
    m->keys = keys, m->vals = vals, m->cap = cap;
  }
  uintptr_t k = (uintptr_t)key;
  size_t i = hash_ptr(k) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->n++;
  m->keys[i] = k;
  m->vals[i] = val;
  return 0;
}

/* Capture-time state kept beside the graph: tensors -> values, storages -> owning value, and the
   first tensor seen for each value (for names and pinning). */
typedef struct {
  ptr_map tensors, storages;
  ct_tensor **value_tensor; /* [capv]: borrowed (the seen list holds the reference) */
  int cap;
  bool failed;
  char error[512];
} capture_state;

/* ==== capture =============================================================================== */

/* The capture running is the current context's (core/ctx): each simulated worker captures its own. */
bool ct_capturing(void) { return ct_ctx_cur()->capture != NULL; }

static void cap_fail(ct_graph *g, const char *msg) {
  capture_state *s = g->map;
  if (s->failed) return;
  s->failed = true;
  snprintf(s->error, sizeof s->error, "%s", msg);
}

static int hold(ct_graph *g, ct_tensor *t) {
  if (ct_graph_grow((void **)&g->seen, &g->capseen, g->nseen + 1, sizeof *g->seen)) return -1;
  g->seen[g->nseen++] = ct_retain(t);
  return 0;
}

static int remember(ct_graph *g, ct_tensor *t, int v) {
  capture_state *s = g->map;
  if (ct_graph_grow((void **)&s->value_tensor, &s->cap, g->nv, sizeof *s->value_tensor)) return -1;
  if (!s->value_tensor[v]) s->value_tensor[v] = t;
  if (map_put(&s->tensors, t, v)) return -1;
  return hold(g, t);
}

/* The value a tensor stands for, creating an external (or an alias of a produced value). */
static int value_of(ct_graph *g, ct_tensor *t) {
  capture_state *s = g->map;
  int v = map_get(&s->tensors, t);
  if (v >= 0) return v;
  ct_meta m;
  ct_meta_of(t, &m);
  int owner = map_get(&s->storages, t->storage);
  v = ct_graph_add_value(g, &m);
  if (v < 0) return -1;
  if (owner >= 0) { /* an alias made outside the op table (ct_detach in a gradient rule) */
    int out = v;
    if (ct_graph_add_node(g, CT_GOP_ALIAS, NULL, &owner, 1, &out, 1) < 0) return -1;
    const char *scope = ct_backward_scope();
    g->n[g->nn - 1].backward = scope != NULL;
    if (scope) g->n[g->nn - 1].label = strdup(scope);
  } else {
    ct_gvalue *x = &g->v[v];
    x->ext = ct_retain(t);
    x->constant = t->id > g->first_tensor_id && !t->requires_grad;
    x->parameter = t->requires_grad && !t->grad_fn;
  }
  if (remember(g, t, v)) return -1;
  return v;
}

static void capture_hook(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out, void *ud) {
  ct_graph *g = ud;
  capture_state *s = g->map;
  if (s->failed) return;
  int small[16], *ins = nin <= 16 ? small : malloc(sizeof(int) * (size_t)nin);
  if (!ins) return cap_fail(g, "capture: out of memory");
  int rc = 0;
  for (int i = 0; i < nin && !rc; i++) {
    ins[i] = value_of(g, in[i]);
    if (ins[i] < 0) rc = -1;
  }
  ct_meta m;
  ct_meta_of(out, &m);
  int ov = rc ? -1 : ct_graph_add_value(g, &m);
  if (ov < 0) rc = -1;
  /* a multi-tensor in-place op (CT_OPF_INPLACE_MULTI) has one output per written input */
  int nw = ct_op_nwritten(ct_optable[op]->flags, a), outs_small[16], *outs = &ov, nout = 1;
  if (!rc && nw > 1) {
    outs = nw <= 16 ? outs_small : malloc(sizeof(int) * (size_t)nw);
    if (!outs) rc = ct_errorf("capture: out of memory");
    for (int k = 0; k < nw && !rc; k++) {
      ct_meta_of(in[k], &m);
      outs[k] = k ? ct_graph_add_value(g, &m) : ov;
      if (outs[k] < 0) rc = -1;
    }
    nout = nw;
  }
  int ni = rc ? -1 : ct_graph_add_node(g, op, a, ins, nin, outs, nout);
  if (ni < 0) rc = -1;
  if (!rc) {
    ct_gnode *n = &g->n[ni];
    const char *scope = ct_backward_scope();
    n->backward = scope != NULL;
    if (scope) n->label = strdup(scope);
    const ct_opdef *def = ct_optable[op];
    if (!(def->flags & CT_OPF_VIEW)) {
      if (def->cost)
        def->cost(in, nin, out, a, &n->flops, &n->bytes);
      else
        ct_graph_node_cost(g, ni);
    }
    if (def->flags & CT_OPF_INPLACE_OUT) {
      /* each destination tensor now holds the new version: later reads see this node's value */
      for (int k = 0; k < nout && !rc; k++) {
        rc = map_put(&s->tensors, in[k], outs[k]);
        int r = ct_graph_root(g, ins[k]);
        if (g->v[r].producer < 0) g->v[r].written = true;
        if (!rc && k) rc = remember(g, in[k], outs[k]);
      }
    } else if (!(def->flags & CT_OPF_VIEW)) {
      rc = map_put(&s->storages, out->storage, ov);
    }
    if (!rc) rc = remember(g, out, ov);
  }
  if (ins != small) free(ins);
  if (outs != &ov && outs != outs_small) free(outs);
  if (rc) cap_fail(g, ct_last_error());
}

ct_graph *ct_capture_begin(ct_tensor *const *inputs, int ninputs) {
  if (ct_capturing()) return ct_errorf("capture: a capture is already running (captures do not nest)"), NULL;
  ct_graph *g = calloc(1, sizeof *g);
  capture_state *s = calloc(1, sizeof *s);
  if (!g || !s) {
    free(g), free(s);
    return ct_errorf("capture: out of memory"), NULL;
  }
  g->map = s;
  g->capturing = true;
  g->device = ninputs ? inputs[0]->storage->device : ct_cpu();
  ct_tensor *probe = ct_scalar(0, CT_F32, ct_cpu());
  if (!probe) {
    ct_graph_free(g);
    return NULL;
  }
  g->first_tensor_id = probe->id;
  ct_release(probe);
  g->inputs = malloc(sizeof(int) * (size_t)(ninputs ? ninputs : 1));
  if (!g->inputs) {
    ct_graph_free(g);
    return ct_errorf("capture: out of memory"), NULL;
  }
  for (int i = 0; i < ninputs; i++) {
    int v = value_of(g, inputs[i]);
    if (v < 0) {
      ct_graph_free(g);
      return NULL;
    }
    g->v[v].input = true;
    g->v[v].constant = false;
    g->inputs[g->ninputs++] = v;
  }
  ct_ctx_cur()->capture = g;
  ct_set_op_hook(capture_hook, g);
  return g;
}

static void stop_hook(ct_graph *g) {
  if (ct_ctx_cur()->capture == g) {
    ct_set_op_hook(NULL, NULL);
    ct_ctx_cur()->capture = NULL;
  }
  g->capturing = false;
}

static void release_capture_state(ct_graph *g) {
  for (int i = 0; i < g->nseen; i++) ct_release(g->seen[i]);
  free(g->seen);
  g->seen = NULL;
  g->nseen = g->capseen = 0;
  capture_state *s = g->map;
  if (s) {
    free(s->tensors.keys), free(s->tensors.vals);
    free(s->storages.keys), free(s->storages.vals);
    free(s->value_tensor);
    free(s);
  }
  g->map = NULL;
}

void ct_capture_release(ct_graph *g) {
  if (g->capturing) stop_hook(g);
  release_capture_state(g);
}

void ct_capture_abort(ct_graph *g) {
  if (!g) return;
  stop_hook(g);
  ct_graph_free(g);
}

/* Keeps v's buffer in the storage of the tensor it had while capturing. */
static int pin(ct_graph *g, int v) {
  capture_state *s = g->map;
  int r = ct_graph_root(g, v);
  ct_gvalue *x = &g->v[r];
  if (x->producer < 0 || x->pinned) return 0;
  ct_tensor *t = r < s->cap ? s->value_tensor[r] : NULL;
  if (!t) return ct_errorf("capture: internal error: no tensor for value %d", r);
  x->pinned = true;
  x->ext = ct_retain(t);
  return 0;
}

int ct_capture_end(ct_graph *g, ct_tensor *const *outputs, int noutputs) {
  stop_hook(g);
  capture_state *s = g->map;
  if (!s) return ct_errorf("capture: the capture was already ended");
  if (s->failed) {
    ct_errorf("capture: recording failed: %s", s->error);
    release_capture_state(g);
    return -1;
  }
  int rc = 0;
  g->outputs = malloc(sizeof(int) * (size_t)(noutputs ? noutputs : 1));
  if (!g->outputs) rc = ct_errorf("capture: out of memory");
  for (int i = 0; i < noutputs && !rc; i++) {
    int v = value_of(g, outputs[i]);
    if (v < 0 || pin(g, v))
      rc = -1;
    else
      g->outputs[g->noutputs++] = v;
  }
  /* gradients left in .grad by the step: replay writes them into the same tensors */
  int nseen = g->nseen;
  for (int i = 0; i < nseen && !rc; i++) {
    ct_tensor *t = g->seen[i];
    if (!t->grad) continue;
    int v = map_get(&s->tensors, t->grad);
    if (v < 0 || g->v[v].producer < 0) continue;
    bool dup = false;
    for (int k = 0; k < g->nexports; k++) dup |= g->exports[k].leaf == t;
    if (dup) continue;
    ct_gexport *e = realloc(g->exports, sizeof *e * (size_t)(g->nexports + 1));
    if (!e) {
      rc = ct_errorf("capture: out of memory");
      break;
    }
    g->exports = e;
    g->exports[g->nexports].leaf = ct_retain(t);
    g->exports[g->nexports].value = v;
    g->nexports++;
    if (pin(g, v)) rc = -1;
    if (!rc && !g->v[v].ext) g->v[v].ext = ct_retain(t->grad); /* a view of the pinned root */
  }
  /* names, and the device the step ran on (that of the first op's output) */
  bool have_device = false;
  for (int v = 0; v < g->nv && v < s->cap && !rc; v++) {
    ct_tensor *t = s->value_tensor[v];
    if (t && t->name && !g->v[v].name) g->v[v].name = strdup(t->name);
    if (t && !have_device && g->v[v].producer >= 0) {
      g->device = t->storage->device;
      have_device = true;
    }
  }
  release_capture_state(g);
  return rc;
}
