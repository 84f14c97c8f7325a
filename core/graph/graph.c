/* graph.c: a captured graph's bookkeeping: values and nodes, compaction, costs, uses, explanations, text.
 * Invariants: node ids are positions in g->n; compaction drops dead nodes and keeps order. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"

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

int ct_graph_grow(void **p, int *cap, int need, size_t elem) {
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
  if (ct_graph_grow((void **)&g->v, &g->capv, g->nv + 1, sizeof *g->v)) return -1;
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
  if (ct_graph_grow((void **)&g->n, &g->capn, g->nn + 1, sizeof *g->n)) return -1;
  if (fill_node(&g->n[g->nn], op, a, in, nin, out, nout)) return -1;
  for (int k = 0; k < nout; k++) g->v[out[k]].producer = g->nn;
  return g->nn++;
}

int ct_graph_insert_node(ct_graph *g, int pos, int op, const ct_attrs *a, const int *in, int nin, const int *out,
                         int nout) {
  if (ct_graph_grow((void **)&g->n, &g->capn, g->nn + 1, sizeof *g->n)) return -1;
  ct_gnode tmp;
  if (fill_node(&tmp, op, a, in, nin, out, nout)) return -1;
  memmove(&g->n[pos + 1], &g->n[pos], sizeof *g->n * (size_t)(g->nn - pos));
  g->n[pos] = tmp;
  g->nn++;
  fix_producers(g);
  return pos;
}

void ct_gnode_free(ct_gnode *n) {
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
      ct_gnode_free(&g->n[i]);
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

double ct_gvalue_bytes(const ct_gvalue *v) {
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
    for (int k = 0; k < n->nin; k++) n->bytes += ct_gvalue_bytes(&g->v[n->in[k]]);
    n->bytes += ct_gvalue_bytes(&g->v[n->out[0]]);
    n->flops = ct_gvalue_bytes(&g->v[n->out[0]]) / (double)ct_dtype_size(g->v[n->out[0]].dtype);
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
    n->bytes = ct_gvalue_bytes(&g->v[n->out[0]]);
    for (int k = 0; k < n->nin; k++) n->bytes += ct_gvalue_bytes(&g->v[n->in[k]]);
  }
}

int ct_graph_root(const ct_graph *g, int v) {
  for (int guard = 0; guard < 1 << 20; guard++) {
    int p = g->v[v].producer;
    if (p < 0) return v;
    const ct_gnode *n = &g->n[p];
    if (!(ct_gop_is_view(n->op) || ct_gop_is_inplace(n->op)) || n->nin == 0) return v;
    int k = 0; /* output k of an in-place node aliases its input k (CT_OPF_INPLACE_MULTI) */
    while (k < n->nout && n->out[k] != v) k++;
    v = n->in[k < n->nout && k < n->nin ? k : 0];
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
    for (int w = 0; w < n->nout && w < n->nin; w++) /* inputs 0..nout-1 are written */
      if (ct_graph_storage_key(g, n->in[w]) == key) {
        e++;
        break;
      }
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
