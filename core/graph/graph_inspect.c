/* graph_inspect.c: reading a captured graph: nodes, values, totals, the listing and fused sources. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "graph/graph_internal.h"
#include "obs/profile.h"

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
  info->attrs = &n->attrs;
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
  info->written = x->written;
  info->output = ct_graph_value_is_output(g, v);
  info->tensor = x->producer < 0 ? x->ext : NULL;
  info->nbytes = (int64_t)ct_gvalue_bytes(x);
  return 0;
}

int ct_graph_input_value(const ct_graph *g, int i) { return i >= 0 && i < g->ninputs ? g->inputs[i] : -1; }
int ct_graph_nfused(const ct_graph *g) { return g->nkernels; }

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

const char *ct_format_si(double x, const char *sep, const char *unit, char *buf, size_t n) {
  const char *sfx[] = {"", "K", "M", "G", "T"};
  int k = 0;
  while (x >= 1000 && k < 4) x /= 1000, k++;
  snprintf(buf, n, k ? "%.1f%s%s%s" : "%.0f%s%s%s", x, sep, sfx[k], unit);
  return buf;
}

/* "x", "W1", or "%12" */
const char *ct_graph_value_name(const ct_graph *g, int v, char *buf, size_t n) {
  if (g->v[v].name)
    snprintf(buf, n, "%s", g->v[v].name);
  else
    snprintf(buf, n, "%%%d", v);
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
                 ct_format_si(flops, "", "", b1, sizeof b1), ct_format_bytes(bytes, b2, sizeof b2));
  ct_text_printf(&t,
                 "  %d inputs, %d parameters, %d constants, %d other tensors bound by reference; %d outputs, %d "
                 "gradients\n",
                 g->ninputs, nparams, nconst, next - g->ninputs - nparams - nconst, g->noutputs, g->nexports);
  ct_text_printf(&t, "  %4s  %-14s %-34s %-20s %9s %9s\n", "#", "op", "inputs", "output", "flops", "bytes");
  int k = 0;
  for (int i = 0; i < g->nn; i++) {
    const ct_gnode *nd = &g->n[i];
    if (nd->dead) continue;
    char ins[256] = "", nm[64];
    size_t w = 0;
    for (int j = 0; j < nd->nin && w < sizeof ins; j++)
      w += (size_t)snprintf(ins + w, sizeof ins - w, "%s%s", j ? ", " : "",
                            ct_graph_value_name(g, nd->in[j], nm, sizeof nm));
    if (strlen(ins) > 34) strcpy(ins + 31, "...");
    const ct_gvalue *o = &g->v[nd->out[0]];
    char sh[96], outs[128], opn[40];
    ct_shape_str(o->shape, o->ndim, sh, sizeof sh);
    snprintf(outs, sizeof outs, "%s%s%s", ct_dtype_name(o->dtype), sh, nd->nout > 1 ? " +" : "");
    if (nd->op == CT_GOP_FUSED)
      snprintf(opn, sizeof opn, "fused[%d ops]", nd->members);
    else
      snprintf(opn, sizeof opn, "%s", ct_gop_name(nd->op));
    ct_text_printf(&t, "  %4d  %-14s %-34s %-20s %9s %9s", ++k, opn, ins, outs,
                   ct_gop_is_view(nd->op) ? "view" : ct_format_si(nd->flops, "", "", b1, sizeof b1),
                   ct_gop_is_view(nd->op) ? "-" : ct_format_si(nd->bytes, "", "B", b2, sizeof b2));
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
                     ct_gop_name(n->op)),
           NULL;
  return ct_fused_source((ct_graph *)g, n->kernel, lang ? lang : "c");
}
