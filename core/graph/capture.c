/* capture.c: recording a step into a flat graph through the op hook, the graph's bookkeeping,
 * replay into planned buffers, inspection (listing, node iteration), and the in-place op assign
 * that lets capture see optimizer updates.
 *
 * Invariants: while capturing, the graph holds a reference to every tensor an op read or made, so
 * a tensor pointer names one tensor for the whole capture (no address is reused); an unknown
 * tensor whose storage belongs to a produced value (ct_detach inside a gradient rule) becomes an
 * alias node of that value, never an external; replay runs the live nodes in order with the op
 * table's forwards and no Lua; views get their meta recomputed from their replayed base.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture.h"
#include "cpu/iter.h"
#include "ctx/ctx.h"
#include "obs/events.h"
#include "obs/profile.h"

/* ==== the assign op: dst <- src (output aliases dst) ========================================= */

static void meta_of(const ct_tensor *t, ct_meta *m) {
  memset(m, 0, sizeof *m);
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  memcpy(m->stride, t->stride, sizeof m->stride);
  m->offset = t->offset;
  m->dtype = t->dtype;
}

static int assign_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  ct_meta b;
  if (ct_broadcast_shapes(NULL, in, 2, &b)) return -1;
  const ct_tensor *dst = in[0], *src = in[1];
  if (b.ndim != dst->ndim || memcmp(b.shape, dst->shape, sizeof(int64_t) * (size_t)b.ndim)) {
    char s1[160], s2[160];
    return ct_errorf("source of shape %s does not broadcast to destination shape %s",
                     ct_shape_str(src->shape, src->ndim, s1, sizeof s1), ct_shape_str(dst->shape, dst->ndim, s2, sizeof s2));
  }
  meta_of(dst, m);
  return 0;
}
static int assign_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  return ct_copy_cpu(out, in[1]);
}
static int assign_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  ct_tensor *src = in[1];
  return ct_cuda_forward[CT_OP_copy](out, &src, 1, NULL);
}
static void assign_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)a;
  *f = 0;
  *b = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype) + (double)ct_numel(in[1]) * (double)ct_dtype_size(in[1]->dtype);
}
const ct_opdef ct_op_assign = {"assign", 2, CT_OPF_INPLACE_OUT | CT_OPF_NONDIFF, assign_shape, assign_cpu, NULL, assign_cost};

int ct_assign_(ct_tensor *dst, ct_tensor *src) {
  ct_device dd = dst->storage->device, sd = src->storage->device;
  if (!ct_device_eq(dd, sd)) return ct_copy_(dst, src);
  if (dd.type != CT_CPU && !ct_cuda_forward[CT_OP_assign]) {
    if (!ct_cuda_forward[CT_OP_copy]) return ct_copy_(dst, src);
    ct_cuda_forward[CT_OP_assign] = assign_cuda;
  }
  ct_tensor *in[2] = {dst, src};
  ct_tensor *r = ct_op_run(CT_OP_assign, in, 2, NULL);
  if (!r) return -1;
  ct_release(r);
  return 0;
}

/* ==== text ================================================================================== */

void ct_text_printf(ct_text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = t->cap - t->len;
    va_start(ap, fmt);
    int k = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (t->s && (size_t)k < room) {
      t->len += (size_t)k;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 1024;
    while (cap < t->len + (size_t)k + 1) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) return;
    t->s = p;
    t->cap = cap;
  }
}

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

/* ==== values and nodes ===================================================================== */

bool ct_gop_is_view(int op) {
  if (op == CT_GOP_ALIAS) return true;
  if (op < 0 || op >= CT_OP_COUNT || !ct_optable[op]) return false;
  return (ct_optable[op]->flags & CT_OPF_VIEW) != 0;
}
bool ct_gop_is_inplace(int op) {
  return op >= 0 && op < CT_OP_COUNT && ct_optable[op] && (ct_optable[op]->flags & CT_OPF_INPLACE_OUT);
}
const char *ct_gop_name(int op) {
  if (op == CT_GOP_FUSED) return "fused";
  if (op == CT_GOP_ALIAS) return "alias";
  return ct_op_name(op);
}

static int grow(void **p, int *cap, int need, size_t elem) {
  if (need <= *cap) return 0;
  int c = *cap ? *cap * 2 : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, (size_t)c * elem);
  if (!q) return ct_errorf("capture: out of memory");
  memset((char *)q + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
  *p = q;
  *cap = c;
  return 0;
}

int ct_graph_add_value(ct_graph *g, const ct_meta *m) {
  if (grow((void **)&g->v, &g->capv, g->nv + 1, sizeof *g->v)) return -1;
  ct_gvalue *v = &g->v[g->nv];
  memset(v, 0, sizeof *v);
  v->dtype = m->dtype;
  v->ndim = m->ndim;
  memcpy(v->shape, m->shape, sizeof v->shape);
  memcpy(v->stride, m->stride, sizeof v->stride);
  v->offset = m->offset;
  v->producer = -1;
  v->buffer = -1;
  return g->nv++;
}

static int fill_node(ct_gnode *n, int op, const ct_attrs *a, const int *in, int nin, const int *out, int nout) {
  memset(n, 0, sizeof *n);
  n->op = op;
  if (a) n->attrs = *a;
  n->nin = nin;
  n->nout = nout;
  n->in = malloc(sizeof(int) * (size_t)(nin ? nin : 1));
  n->out = malloc(sizeof(int) * (size_t)(nout ? nout : 1));
  if (!n->in || !n->out) {
    free(n->in), free(n->out);
    n->in = n->out = NULL;
    return ct_errorf("capture: out of memory");
  }
  if (nin) memcpy(n->in, in, sizeof(int) * (size_t)nin);
  if (nout) memcpy(n->out, out, sizeof(int) * (size_t)nout);
  n->kernel = -1;
  n->members = 1;
  n->segment = -1;
  return 0;
}

static void fix_producers(ct_graph *g) {
  for (int i = 0; i < g->nn; i++) {
    if (g->n[i].dead) continue;
    for (int k = 0; k < g->n[i].nout; k++) g->v[g->n[i].out[k]].producer = i;
  }
}

int ct_graph_add_node(ct_graph *g, int op, const ct_attrs *a, const int *in, int nin, const int *out, int nout) {
  if (grow((void **)&g->n, &g->capn, g->nn + 1, sizeof *g->n)) return -1;
  if (fill_node(&g->n[g->nn], op, a, in, nin, out, nout)) return -1;
  for (int k = 0; k < nout; k++) g->v[out[k]].producer = g->nn;
  return g->nn++;
}

int ct_graph_insert_node(ct_graph *g, int pos, int op, const ct_attrs *a, const int *in, int nin, const int *out,
                         int nout) {
  if (grow((void **)&g->n, &g->capn, g->nn + 1, sizeof *g->n)) return -1;
  ct_gnode tmp;
  if (fill_node(&tmp, op, a, in, nin, out, nout)) return -1;
  memmove(&g->n[pos + 1], &g->n[pos], sizeof *g->n * (size_t)(g->nn - pos));
  g->n[pos] = tmp;
  g->nn++;
  fix_producers(g);
  return pos;
}

static void node_free(ct_gnode *n) {
  free(n->in), free(n->out), free(n->label);
  n->in = n->out = NULL;
  n->label = NULL;
}

void ct_graph_compact(ct_graph *g) {
  int w = 0;
  for (int i = 0; i < g->nn; i++) {
    if (g->n[i].dead) {
      for (int k = 0; k < g->n[i].nout; k++)
        if (g->v[g->n[i].out[k]].producer == i) g->v[g->n[i].out[k]].producer = -2;
      node_free(&g->n[i]);
      continue;
    }
    g->n[w++] = g->n[i];
  }
  g->nn = w;
  fix_producers(g);
}

void ct_graph_header(const ct_graph *g, int v, ct_tensor *t) {
  const ct_gvalue *x = &g->v[v];
  memset(t, 0, sizeof *t);
  t->refcount = 1;
  t->dtype = x->dtype;
  t->ndim = x->ndim;
  memcpy(t->shape, x->shape, sizeof t->shape);
  memcpy(t->stride, x->stride, sizeof t->stride);
  t->offset = x->offset;
}

static double value_bytes(const ct_gvalue *v) {
  double n = 1;
  for (int d = 0; d < v->ndim; d++) n *= (double)v->shape[d];
  return n * (double)ct_dtype_size(v->dtype);
}

void ct_graph_node_cost(ct_graph *g, int i) {
  ct_gnode *n = &g->n[i];
  n->flops = n->bytes = 0;
  if (ct_gop_is_view(n->op)) return;
  if (n->op == CT_GOP_FUSED) {
    ct_fused_cost(g, n, &n->flops, &n->bytes);
    return;
  }
  const ct_opdef *def = ct_optable[n->op];
  ct_tensor hs[16], ho;
  ct_tensor *hp[16];
  if (n->nin > 16 || !def) { /* the elementwise estimate */
    for (int k = 0; k < n->nin; k++) n->bytes += value_bytes(&g->v[n->in[k]]);
    n->bytes += value_bytes(&g->v[n->out[0]]);
    n->flops = value_bytes(&g->v[n->out[0]]) / (double)ct_dtype_size(g->v[n->out[0]].dtype);
    return;
  }
  for (int k = 0; k < n->nin; k++) {
    ct_graph_header(g, n->in[k], &hs[k]);
    hp[k] = &hs[k];
  }
  ct_graph_header(g, n->out[0], &ho);
  if (def->cost) {
    def->cost(hp, n->nin, &ho, &n->attrs, &n->flops, &n->bytes);
  } else {
    n->flops = (double)ct_numel(&ho);
    n->bytes = value_bytes(&g->v[n->out[0]]);
    for (int k = 0; k < n->nin; k++) n->bytes += value_bytes(&g->v[n->in[k]]);
  }
}

int ct_graph_root(const ct_graph *g, int v) {
  for (int guard = 0; guard < 1 << 20; guard++) {
    int p = g->v[v].producer;
    if (p < 0) return v;
    const ct_gnode *n = &g->n[p];
    if (!(ct_gop_is_view(n->op) || ct_gop_is_inplace(n->op)) || n->nin == 0) return v;
    v = n->in[0];
  }
  return v;
}

const void *ct_graph_storage_key(const ct_graph *g, int v) {
  int r = ct_graph_root(g, v);
  if (g->v[r].producer < 0 && g->v[r].ext) return g->v[r].ext->storage;
  return (const void *)((uintptr_t)(r + 1) << 1 | 1); /* never a real pointer: odd */
}

int ct_graph_epoch(const ct_graph *g, int v, int i) {
  const void *key = ct_graph_storage_key(g, v);
  int e = 0;
  for (int k = 0; k < i && k < g->nn; k++) {
    const ct_gnode *n = &g->n[k];
    if (n->dead || !ct_gop_is_inplace(n->op)) continue;
    if (ct_graph_storage_key(g, n->in[0]) == key) e++;
  }
  return e;
}

bool ct_graph_value_is_output(const ct_graph *g, int v) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i] == v) return true;
  for (int i = 0; i < g->nexports; i++)
    if (g->exports[i].value == v) return true;
  return false;
}

int *ct_graph_use_counts(const ct_graph *g) {
  int *c = calloc((size_t)(g->nv ? g->nv : 1), sizeof *c);
  if (!c) return ct_errorf("capture: out of memory"), NULL;
  for (int i = 0; i < g->nn; i++) {
    if (g->n[i].dead) continue;
    for (int k = 0; k < g->n[i].nin; k++) c[g->n[i].in[k]]++;
  }
  for (int i = 0; i < g->noutputs; i++) c[g->outputs[i]]++;
  for (int i = 0; i < g->nexports; i++) c[g->exports[i].value]++;
  return c;
}

void ct_graph_replace_uses(ct_graph *g, int from, int to) {
  for (int i = 0; i < g->nn; i++) {
    if (g->n[i].dead) continue;
    for (int k = 0; k < g->n[i].nin; k++)
      if (g->n[i].in[k] == from) g->n[i].in[k] = to;
  }
}

static const char *const pass_names[] = {"dce", "cse", "fold", "algebra", "fuse", "checkpoint", "plan", "autotune"};
static int pass_index(const char *pass) {
  for (int i = 0; i < 8; i++)
    if (!strcmp(pass, pass_names[i])) return i;
  return -1;
}

void ct_graph_set_explain(ct_graph *g, const char *pass, char *text) {
  int i = pass_index(pass);
  if (i < 0) {
    free(text);
    return;
  }
  free(g->explain[i]);
  g->explain[i] = text;
}

const char *ct_graph_explain(const ct_graph *g, const char *pass) {
  int i = pass_index(pass);
  if (i < 0) return NULL;
  return g->explain[i] ? g->explain[i] : "";
}

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
  if (grow((void **)&g->seen, &g->capseen, g->nseen + 1, sizeof *g->seen)) return -1;
  g->seen[g->nseen++] = ct_retain(t);
  return 0;
}

static int remember(ct_graph *g, ct_tensor *t, int v) {
  capture_state *s = g->map;
  if (grow((void **)&s->value_tensor, &s->cap, g->nv, sizeof *s->value_tensor)) return -1;
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
  meta_of(t, &m);
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
  meta_of(out, &m);
  int ov = rc ? -1 : ct_graph_add_value(g, &m);
  if (ov < 0) rc = -1;
  int ni = rc ? -1 : ct_graph_add_node(g, op, a, ins, nin, &ov, 1);
  if (ni < 0) rc = -1;
  if (!rc) {
    ct_gnode *n = &g->n[ni];
    const char *scope = ct_backward_scope();
    n->backward = scope != NULL;
    if (scope) n->label = strdup(scope);
    const ct_opdef *def = ct_optable[op];
    if (!(def->flags & CT_OPF_VIEW)) {
      if (def->cost) def->cost(in, nin, out, a, &n->flops, &n->bytes);
      else ct_graph_node_cost(g, ni);
    }
    if (def->flags & CT_OPF_INPLACE_OUT) {
      /* the destination tensor now holds the new version: later reads see this node's value */
      rc = map_put(&s->tensors, in[0], ov);
      int r = ct_graph_root(g, ins[0]);
      if (g->v[r].producer < 0) g->v[r].written = true;
    } else if (!(def->flags & CT_OPF_VIEW)) {
      rc = map_put(&s->storages, out->storage, ov);
    }
    if (!rc) rc = remember(g, out, ov);
  }
  if (ins != small) free(ins);
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
    if (v < 0 || pin(g, v)) rc = -1;
    else g->outputs[g->noutputs++] = v;
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

/* ==== freeing and invalidation ============================================================== */

static void release_runtime(ct_graph *g) {
  for (int v = 0; v < g->nv; v++) {
    ct_release(g->v[v].rt);
    g->v[v].rt = NULL;
  }
  for (int v = 0; v < g->nv; v++) {
    free(g->v[v].slice); /* its only remaining reference was ours */
    g->v[v].slice = NULL;
  }
  if (g->arena) ct_storage_release(g->arena);
  g->arena = NULL;
  g->instantiated = false;
}

void ct_graph_invalidate(ct_graph *g) {
  ct_graph_cuda_free(g);
  release_runtime(g);
  ct_plan_free(g);
}

void ct_graph_free(ct_graph *g) {
  if (!g) return;
  if (g->capturing) stop_hook(g);
  release_capture_state(g);
  ct_graph_invalidate(g);
  for (int v = 0; v < g->nv; v++) {
    ct_release(g->v[v].ext);
    free(g->v[v].name);
  }
  for (int i = 0; i < g->nn; i++) node_free(&g->n[i]);
  for (int i = 0; i < g->nexports; i++) ct_release(g->exports[i].leaf);
  for (int i = 0; i < g->nkernels; i++) ct_fused_free(g->kernels[i]);
  for (int i = 0; i < 8; i++) free(g->explain[i]);
  free(g->kernels);
  free(g->exports);
  free(g->v), free(g->n), free(g->inputs), free(g->outputs);
  free(g);
}

/* ==== replay ================================================================================ */

/* A storage header over arena bytes: never released to the allocator (the graph frees it). */
static ct_storage *arena_slice(ct_graph *g, int64_t offset, size_t nbytes) {
  ct_storage *s = calloc(1, sizeof *s);
  if (!s) return ct_errorf("replay: out of memory"), NULL;
  s->refcount = 1;
  s->data = (char *)g->arena->data + offset;
  s->nbytes = nbytes;
  s->device = g->device;
  s->category = CT_CAT_ACTIVATION;
  return s;
}

static ct_tensor *header_on(ct_storage *s, const ct_meta *m) {
  ct_tensor base;
  memset(&base, 0, sizeof base);
  base.storage = s;
  return ct_tensor_alias(&base, m);
}

static void value_meta(const ct_gvalue *x, ct_meta *m) {
  memset(m, 0, sizeof *m);
  m->dtype = x->dtype;
  m->ndim = x->ndim;
  memcpy(m->shape, x->shape, sizeof m->shape);
  memcpy(m->stride, x->stride, sizeof m->stride);
  m->offset = x->offset;
}

int ct_graph_instantiate(ct_graph *g) {
  if (g->instantiated) return 0;
  if (!g->planned && ct_graph_plan_memory(g, NULL, NULL)) return -1;
  if (g->plan.planned_bytes > 0) {
    ct_category old = ct_set_default_category(CT_CAT_ACTIVATION);
    g->arena = ct_storage_new((size_t)g->plan.planned_bytes, g->device);
    ct_set_default_category(old);
    if (!g->arena) return -1;
  }
  for (int v = 0; v < g->nv; v++)
    if (g->v[v].ext) g->v[v].rt = ct_retain(g->v[v].ext);
  int rc = 0;
  for (int i = 0; i < g->nn && !rc; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nout && !rc; k++) {
      ct_gvalue *x = &g->v[n->out[k]];
      if (x->rt) continue; /* pinned: its own storage */
      ct_meta m;
      value_meta(x, &m);
      if (ct_gop_is_view(n->op) || ct_gop_is_inplace(n->op)) {
        ct_tensor *base = g->v[n->in[0]].rt;
        if (!base) rc = ct_errorf("replay: internal error: value %d has no buffer", n->in[0]);
        else if (!(x->rt = ct_tensor_alias(base, &m))) rc = -1;
        continue;
      }
      if (x->buffer < 0) {
        rc = ct_errorf("replay: internal error: value %d (%s) was not planned", n->out[k], ct_gop_name(n->op));
        continue;
      }
      ct_plan_buffer b;
      ct_graph_plan_buffer(g, x->buffer, &b);
      ct_contiguous_strides(m.shape, m.ndim, m.stride);
      m.offset = 0;
      x->slice = arena_slice(g, b.offset, (size_t)value_bytes(x));
      if (!x->slice || !(x->rt = header_on(x->slice, &m))) rc = -1;
    }
  }
  if (rc) {
    release_runtime(g);
    return -1;
  }
  g->instantiated = true;
  return 0;
}

static void push_event(ct_graph *g, const ct_gnode *n, double t0) {
  ct_event e = {.kind = CT_EV_OP, .name = n->op == CT_GOP_FUSED ? "fused" : ct_gop_name(n->op)};
  e.t0 = t0;
  e.t1 = ct_now_us();
  e.device = g->device;
  e.tensor_id = g->v[n->out[0]].rt ? g->v[n->out[0]].rt->id : 0;
  e.flops = n->flops;
  e.bytes = n->bytes;
  e.nbytes = (int64_t)n->bytes;
  e.backward = n->backward;
  if (n->label) snprintf(e.label, sizeof e.label, "%s", n->label);
  ct_event_push(&e);
}

static int run_nodes(ct_graph *g) {
  bool cpu = g->device.type == CT_CPU;
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || n->op == CT_GOP_ALIAS) continue;
    if (ct_interrupt_pending()) return ct_interrupt_error("replay");
    bool log = ct_events_on();
    double t0 = log ? ct_now_us() : 0;
    ct_tensor *small[16], **in = n->nin <= 16 ? small : malloc(sizeof *in * (size_t)n->nin);
    if (!in) return ct_errorf("replay: out of memory");
    for (int k = 0; k < n->nin; k++) in[k] = g->v[n->in[k]].rt;
    int rc = 0;
    if (n->op == CT_GOP_FUSED) {
      rc = cpu ? ct_fused_run_cpu(g, n, g->kernels[n->kernel]) : ct_fused_run_cuda(g, n, g->kernels[n->kernel]);
    } else {
      const ct_opdef *def = ct_optable[n->op];
      ct_tensor *out = g->v[n->out[0]].rt;
      if (def->flags & CT_OPF_VIEW) { /* recompute the view's meta from its replayed base */
        ct_meta m;
        memset(&m, 0, sizeof m);
        rc = def->shape(in, n->nin, &n->attrs, &m);
        if (!rc) {
          out->ndim = m.ndim;
          memcpy(out->shape, m.shape, sizeof out->shape);
          memcpy(out->stride, m.stride, sizeof out->stride);
          out->offset = m.offset;
        }
      } else {
        if (n->op == CT_OP_dropout_mask) { /* a fresh draw each replay, as eager would make */
          uint64_t seed = ct_rng_seed();
          n->attrs.i[0] = (int64_t)ct_rng_reserve((uint64_t)ct_numel(out));
          memcpy(&n->attrs.i[1], &seed, sizeof seed);
        }
        ct_forward_fn fwd = cpu ? def->cpu : ct_cuda_forward[n->op];
        if (!fwd) rc = ct_errorf("replay: %s has no kernel for this device", def->name);
        else rc = fwd(out, in, n->nin, &n->attrs);
      }
    }
    if (in != small) free(in);
    if (rc) {
      char msg[600];
      snprintf(msg, sizeof msg, "%s", ct_last_error());
      return ct_errorf("replay: node %d (%s): %s", i + 1, ct_gop_name(n->op), msg);
    }
    if (log && !ct_gop_is_view(n->op)) push_event(g, n, t0);
  }
  return 0;
}

int ct_graph_replay(ct_graph *g) {
  if (g->capturing || g->map) return ct_errorf("replay: the graph is still capturing");
  if (ct_graph_instantiate(g)) return -1;
  int rc = g->device.type == CT_CPU ? run_nodes(g) : ct_graph_replay_cuda(g, run_nodes);
  if (rc) return -1;
  /* .grad holds the replayed gradient, as after an eager backward */
  for (int i = 0; i < g->nexports; i++) {
    ct_tensor *leaf = g->exports[i].leaf, *gt = g->v[g->exports[i].value].rt;
    if (gt && leaf->grad != gt) {
      ct_release(leaf->grad);
      leaf->grad = ct_retain(gt);
    }
  }
  return 0;
}

int ct_graph_ninputs(const ct_graph *g) { return g->ninputs; }
ct_tensor *ct_graph_input(const ct_graph *g, int i) { return i >= 0 && i < g->ninputs ? g->v[g->inputs[i]].ext : NULL; }
int ct_graph_noutputs(const ct_graph *g) { return g->noutputs; }
ct_device ct_graph_device(const ct_graph *g) { return g->device; }

ct_tensor *ct_graph_output(const ct_graph *g, int i) {
  if (i < 0 || i >= g->noutputs) return ct_errorf("graph: output %d out of range (%d outputs)", i + 1, g->noutputs), NULL;
  const ct_gvalue *x = &g->v[g->outputs[i]];
  if (x->rt) return ct_retain(x->rt);
  if (x->ext) return ct_retain(x->ext);
  return ct_errorf("graph: output %d has no value until the graph is replayed", i + 1), NULL;
}

/* ==== inspection ============================================================================ */

int ct_graph_nnodes(const ct_graph *g) {
  int k = 0;
  for (int i = 0; i < g->nn; i++) k += !g->n[i].dead;
  return k;
}

static int live_index(const ct_graph *g, int i) {
  for (int k = 0, seen = 0; k < g->nn; k++) {
    if (g->n[k].dead) continue;
    if (seen++ == i) return k;
  }
  return -1;
}

int ct_graph_node(const ct_graph *g, int i, ct_gnode_info *info) {
  int k = live_index(g, i);
  if (k < 0) return ct_errorf("graph: node %d out of range (%d nodes)", i + 1, ct_graph_nnodes(g));
  const ct_gnode *n = &g->n[k];
  memset(info, 0, sizeof *info);
  info->op = n->op;
  info->name = ct_gop_name(n->op);
  info->label = n->label;
  info->nin = n->nin, info->nout = n->nout;
  info->in = n->in, info->out = n->out;
  info->group = n->op == CT_GOP_FUSED ? n->kernel : -1;
  info->members = n->members;
  info->backward = n->backward;
  info->view = ct_gop_is_view(n->op);
  info->inplace = ct_gop_is_inplace(n->op);
  info->flops = n->flops, info->bytes = n->bytes;
  return 0;
}

int ct_graph_nvalues(const ct_graph *g) { return g->nv; }

int ct_graph_value(const ct_graph *g, int v, ct_gvalue_info *info) {
  if (v < 0 || v >= g->nv) return ct_errorf("graph: value %d out of range", v);
  const ct_gvalue *x = &g->v[v];
  memset(info, 0, sizeof *info);
  info->dtype = x->dtype;
  info->ndim = x->ndim;
  info->shape = x->shape;
  info->name = x->name;
  info->producer = x->producer >= 0 && !g->n[x->producer].dead ? x->producer : -1;
  if (info->producer >= 0) { /* as a live-node index */
    int k = 0;
    for (int i = 0; i < x->producer; i++) k += !g->n[i].dead;
    info->producer = k;
  }
  info->external = x->producer == -1;
  info->constant = x->constant && !x->written;
  info->input = x->input;
  info->pinned = x->pinned;
  info->parameter = x->parameter;
  info->nbytes = (int64_t)value_bytes(x);
  return 0;
}

void ct_graph_totals(const ct_graph *g, int *nodes, int *kernels, double *bytes, double *flops) {
  int nn = 0, nk = 0;
  double b = 0, f = 0;
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *n = &g->n[i];
    if (n->dead) continue;
    nn++;
    if (!ct_gop_is_view(n->op)) nk++;
    b += n->bytes;
    f += n->flops;
  }
  if (nodes) *nodes = nn;
  if (kernels) *kernels = nk;
  if (bytes) *bytes = b;
  if (flops) *flops = f;
}

static const char *human(double x, char *buf, size_t n, const char *unit) {
  const char *sfx[] = {"", "K", "M", "G", "T"};
  int k = 0;
  while (x >= 1000 && k < 4) x /= 1000, k++;
  snprintf(buf, n, k ? "%.1f%s%s" : "%.0f%s%s", x, sfx[k], unit);
  return buf;
}

/* "x", "W1", or "%12" */
const char *ct_graph_value_name(const ct_graph *g, int v, char *buf, size_t n) {
  if (g->v[v].name) snprintf(buf, n, "%s", g->v[v].name);
  else snprintf(buf, n, "%%%d", v);
  return buf;
}

size_t ct_graph_format(const ct_graph *g, char *buf, size_t n) {
  ct_text t = {0};
  int nodes, kernels;
  double bytes, flops;
  ct_graph_totals(g, &nodes, &kernels, &bytes, &flops);
  char b1[32], b2[32], dev[32];
  int nparams = 0, nconst = 0, next = 0;
  for (int v = 0; v < g->nv; v++) {
    if (g->v[v].producer != -1) continue;
    next++;
    nparams += g->v[v].parameter;
    nconst += g->v[v].constant && !g->v[v].written;
  }
  ct_text_printf(&t, "Graph on %s: %d nodes (%d kernels, %d views), %d fused kernels; %s flops, %s moved\n",
                 ct_device_str(g->device, dev, sizeof dev), nodes, kernels, nodes - kernels, g->nkernels,
                 human(flops, b1, sizeof b1, ""), ct_format_bytes(bytes, b2, sizeof b2));
  ct_text_printf(&t, "  %d inputs, %d parameters, %d constants, %d other tensors bound by reference; %d outputs, %d "
                 "gradients\n", g->ninputs, nparams, nconst, next - g->ninputs - nparams - nconst, g->noutputs, g->nexports);
  ct_text_printf(&t, "  %4s  %-14s %-34s %-20s %9s %9s\n", "#", "op", "inputs", "output", "flops", "bytes");
  int k = 0;
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *nd = &g->n[i];
    if (nd->dead) continue;
    char ins[256] = "", nm[64];
    size_t w = 0;
    for (int j = 0; j < nd->nin && w < sizeof ins; j++)
      w += (size_t)snprintf(ins + w, sizeof ins - w, "%s%s", j ? ", " : "", ct_graph_value_name(g, nd->in[j], nm, sizeof nm));
    if (strlen(ins) > 34) strcpy(ins + 31, "...");
    const ct_gvalue *o = &g->v[nd->out[0]];
    char sh[96], outs[128], opn[40];
    ct_shape_str(o->shape, o->ndim, sh, sizeof sh);
    snprintf(outs, sizeof outs, "%s%s%s", ct_dtype_name(o->dtype), sh, nd->nout > 1 ? " +" : "");
    if (nd->op == CT_GOP_FUSED) snprintf(opn, sizeof opn, "fused[%d ops]", nd->members);
    else snprintf(opn, sizeof opn, "%s", ct_gop_name(nd->op));
    ct_text_printf(&t, "  %4d  %-14s %-34s %-20s %9s %9s", ++k, opn, ins, outs,
                   ct_gop_is_view(nd->op) ? "view" : human(nd->flops, b1, sizeof b1, ""),
                   ct_gop_is_view(nd->op) ? "-" : human(nd->bytes, b2, sizeof b2, "B"));
    if (o->name) ct_text_printf(&t, "  -> %s", o->name);
    if (nd->label) ct_text_printf(&t, "  (%s)", nd->label);
    ct_text_printf(&t, "\n");
  }
  size_t len = t.len;
  if (n) snprintf(buf, n, "%s", t.s ? t.s : "");
  free(t.s);
  return len;
}

const char *ct_graph_source(const ct_graph *g, int i, const char *lang) {
  int k = live_index(g, i);
  if (k < 0) return ct_errorf("graph: node %d out of range (%d nodes)", i + 1, ct_graph_nnodes(g)), NULL;
  const ct_gnode *n = &g->n[k];
  if (n->op != CT_GOP_FUSED)
    return ct_errorf("graph: node %d is %s, not a fused kernel (run g:optimize{\"fuse\"} and pick a fused node)", i + 1,
                     ct_gop_name(n->op)), NULL;
  return ct_fused_source((ct_graph *)g, n->kernel, lang ? lang : "c");
}

/* ==== the optimize entry point =============================================================== */

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
  if (!strcmp(pass, "dce")) changes = ct_pass_dce(g, &why);
  else if (!strcmp(pass, "cse")) changes = ct_pass_cse(g, &why);
  else if (!strcmp(pass, "fold")) changes = ct_pass_fold(g, &why);
  else if (!strcmp(pass, "algebra")) changes = ct_pass_algebra(g, &why);
  else if (!strcmp(pass, "fuse")) changes = ct_pass_fuse(g, o, &why);
  else if (!strcmp(pass, "checkpoint")) changes = ct_pass_checkpoint(g, o, &why);
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
  ct_graph_set_explain(g, pass, head.s);
  if (r) *r = rep;
  return 0;
}
