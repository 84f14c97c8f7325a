/* replay.c: freeing a graph, instantiating its planned buffers, and replaying its live nodes in order
 * with the op table's forwards and no Lua; views get their meta recomputed from their replayed base. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "graph/graph_internal.h"
#include "obs/profile.h"

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
  ct_capture_release(g);
  ct_graph_invalidate(g);
  for (int v = 0; v < g->nv; v++) {
    ct_release(g->v[v].ext);
    free(g->v[v].name);
  }
  for (int i = 0; i < g->nn; i++) ct_gnode_free(&g->n[i]);
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
        int src = n->in[k < n->nin ? k : 0]; /* output k of an in-place node aliases input k */
        ct_tensor *base = g->v[src].rt;
        if (!base)
          rc = ct_errorf("replay: internal error: value %d has no buffer", src);
        else if (!(x->rt = ct_tensor_alias(base, &m)))
          rc = -1;
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
      x->slice = arena_slice(g, b.offset, (size_t)ct_gvalue_bytes(x));
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
        ct_forward_fn fwd = ct_op_forward(n->op, cpu ? CT_CPU : CT_CUDA, &n->attrs); /* the call's impl */
        if (!fwd)
          rc = ct_errorf("replay: %s has no kernel for this device", def->name);
        else
          rc = fwd(out, in, n->nin, &n->attrs);
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
  if (i < 0 || i >= g->noutputs)
    return ct_errorf("graph: output %d out of range (%d outputs)", i + 1, g->noutputs), NULL;
  const ct_gvalue *x = &g->v[g->outputs[i]];
  if (x->rt) return ct_retain(x->rt);
  if (x->ext) return ct_retain(x->ext);
  return ct_errorf("graph: output %d has no value until the graph is replayed", i + 1), NULL;
}
