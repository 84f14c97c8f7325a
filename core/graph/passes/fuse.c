/* fuse.c: elementwise fusion: chains and trees of elementwise ops (with broadcasting), and row
 * reductions over the last dim between them (softmax written by hand: max, sub, exp, sum, div),
 * become one kernel whose intermediates never reach memory. Also its cost; its source as C and as
 * CUDA C is written by fuse_source.c.
 *
 * Invariants: a kernel runs at the position of its last member (its root); every input of the
 * kernel is computed before that position and every reader outside the kernel of a value the
 * kernel computes runs after it (such values become extra outputs); no in-place write to a
 * storage a member reads lies between that member and the root; every member's result has the
 * kernel's full shape, or the full shape with its last dim 1 (one value per row); a reduction
 * inside reduces exactly the last dim (keepdim) of a contiguous full-shape operand, so it can be
 * computed with the op table's own forward on one row, bit for bit as unfused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "obs/profile.h"

/* ---- which ops fuse ---------------------------------------------------------------------- */

static bool fusable_dtype(ct_dtype d) { return d == CT_F32 || d == CT_F64 || d == CT_BOOL; }

static bool is_reduction(int op) { return op == CT_OP_sum || op == CT_OP_mean || op == CT_OP_max || op == CT_OP_min; }

/* rows of core/ops/elementwise_defs.h (they carry their expression), where, and conversions */
static bool elementwise_op(int op) {
  return op == CT_OP_to_dtype || (op >= 0 && op < CT_OP_COUNT && ct_optable[op]->expr);
}

typedef struct {
  ct_graph *g;
  const ct_pass_opts *o;
  ct_text *why;
  int *group;          /* node -> kernel being formed / formed, -1 */
  int *cons, *cons_at; /* consumers of each value: cons[cons_at[v] .. cons_at[v+1]) */
  int *uses;
  bool reductions;
  int maxin;
  /* the group being formed */
  int gid, root, ndim;
  int64_t shape[CT_MAX_DIMS];
  bool rowmode;
  int *members, nmembers;
} fuse_ctx;

static void vdesc(const ct_graph *g, int v, char *buf, size_t n) {
  char nm[64], sh[96];
  const ct_gvalue *x = &g->v[v];
  snprintf(buf, n, "%s%s %s", ct_dtype_name(x->dtype), ct_shape_str(x->shape, x->ndim, sh, sizeof sh),
           ct_graph_value_name(g, v, nm, sizeof nm));
}

static const char *ndesc(const ct_graph *g, int i, char *buf, size_t n) {
  char nm[64];
  snprintf(buf, n, "%s #%d (%s)", ct_gop_name(g->n[i].op), i + 1, ct_graph_value_name(g, g->n[i].out[0], nm, sizeof nm));
  return buf;
}

static bool shape_is(const ct_gvalue *v, int ndim, const int64_t *shape) {
  return v->ndim == ndim && !memcmp(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
}
static bool shape_is_row(const ct_gvalue *v, int ndim, const int64_t *shape) {
  if (ndim == 0 || v->ndim != ndim || v->shape[ndim - 1] != 1) return false;
  return !memcmp(v->shape, shape, sizeof(int64_t) * (size_t)(ndim - 1));
}

static bool contiguous_value(const ct_gvalue *v) {
  int64_t s = 1;
  for (int d = v->ndim - 1; d >= 0; d--) {
    if (v->shape[d] != 1 && v->stride[d] != s) return false;
    s *= v->shape[d];
  }
  return true;
}

/* Why node i cannot be a member (NULL: it can, by itself). */
static const char *op_reason(fuse_ctx *c, int i, char *buf, size_t n) {
  const ct_gnode *nd = &c->g->n[i];
  if (nd->op >= CT_OP_COUNT) return nd->op == CT_GOP_FUSED ? "it is already a fused kernel" : "it is an alias";
  if (ct_gop_is_inplace(nd->op)) return "it writes in place (an optimizer update): it must stay where it is";
  if (nd->nout != 1) return "it has several outputs";
  if (is_reduction(nd->op)) {
    if (!c->reductions)
      return c->g->device.type == CT_CPU ? "row reductions were turned off for this run"
                                         : "row reductions fuse only on the CPU (GPU kernels are elementwise)";
    const ct_gvalue *x = &c->g->v[nd->in[0]];
    uint32_t last = x->ndim ? 1u << (x->ndim - 1) : 0;
    if (!x->ndim || nd->attrs.mask != last || !nd->attrs.keepdim)
      return "it reduces other dims than the last (or drops the dim): a kernel reduces whole rows only";
    return NULL;
  }
  if (!elementwise_op(nd->op)) {
    if (nd->op == CT_OP_matmul) return "matmul is not elementwise: it stays a BLAS call";
    snprintf(buf, n, "%s is not elementwise (a fused kernel computes each element, or each row, on its own)",
             ct_gop_name(nd->op));
    return buf;
  }
  for (int k = 0; k <= nd->nin; k++) {
    int v = k < nd->nin ? nd->in[k] : nd->out[0];
    if (!fusable_dtype(c->g->v[v].dtype)) {
      snprintf(buf, n, "dtype %s is not handled by fused kernels (f32, f64, bool)", ct_dtype_name(c->g->v[v].dtype));
      return buf;
    }
  }
  if (nd->op == CT_OP_to_dtype) {
    ct_dtype from = c->g->v[nd->in[0]].dtype, to = c->g->v[nd->out[0]].dtype;
    if (to == CT_BOOL || from == to) return "this conversion is not handled by fused kernels";
  }
  return NULL;
}

/* Why producer p (feeding the group) cannot join it; NULL: it can. */
static const char *join_reason(fuse_ctx *c, int p, char *buf, size_t n) {
  ct_graph *g = c->g;
  const ct_gnode *nd = &g->n[p];
  const char *r = op_reason(c, p, buf, n);
  if (r) return r;
  if (c->group[p] >= 0 && c->group[p] != c->gid) {
    snprintf(buf, n, "it already belongs to kernel k%d", c->group[p]);
    return buf;
  }
  const ct_gvalue *o = &g->v[nd->out[0]];
  bool full = shape_is(o, c->ndim, c->shape), row = !full && shape_is_row(o, c->ndim, c->shape);
  if (!full && !row) {
    char a[96], b[96];
    snprintf(buf, n, "its output %s is broadcast to %s by its reader (fusing would recompute it for every element)",
             ct_shape_str(o->shape, o->ndim, a, sizeof a), ct_shape_str(c->shape, c->ndim, b, sizeof b));
    return buf;
  }
  if (row && !c->reductions) return "its output has one value per row, and row kernels are off here";
  if (is_reduction(nd->op)) {
    int x = nd->in[0];
    const ct_gvalue *vx = &g->v[x];
    if (!shape_is(vx, c->ndim, c->shape)) return "it reduces a tensor of another shape than the kernel's";
    int px = vx->producer;
    bool fresh = px >= 0 && !ct_gop_is_view(g->n[px].op) && !ct_gop_is_inplace(g->n[px].op);
    if (!fresh && !contiguous_value(vx)) return "it reduces a strided view (a kernel reduces contiguous rows)";
  }
  /* every reader outside the group must run after the kernel's position */
  for (int k = c->cons_at[nd->out[0]]; k < c->cons_at[nd->out[0] + 1]; k++) {
    int q = c->cons[k];
    if (q < 0 || c->group[q] == c->gid) continue;
    if (q < c->root) {
      char d[160];
      snprintf(buf, n, "its result is also read by %s, which runs before the fused kernel would",
               ndesc(g, q, d, sizeof d));
      return buf;
    }
  }
  for (int k = 0; k < nd->nin; k++)
    if (ct_graph_epoch(g, nd->in[k], p) != ct_graph_epoch(g, nd->in[k], c->root)) {
      char d[160];
      vdesc(g, nd->in[k], d, sizeof d);
      snprintf(buf, n, "an in-place write to %s lies between it and the kernel's position", d);
      return buf;
    }
  /* inputs after joining */
  int nin = 0;
  int seen[64];
  for (int m = 0; m <= c->nmembers; m++) {
    const ct_gnode *mn = &g->n[m < c->nmembers ? c->members[m] : p];
    for (int k = 0; k < mn->nin; k++) {
      int v = mn->in[k], pv = g->v[v].producer;
      if (pv >= 0 && (c->group[pv] == c->gid || pv == p)) continue;
      bool dup = false;
      for (int s = 0; s < nin && !dup; s++) dup = seen[s] == v;
      if (!dup && nin < 64) seen[nin++] = v;
    }
  }
  if (nin > c->maxin) {
    snprintf(buf, n, "the kernel would read more than %d tensors", c->maxin);
    return buf;
  }
  return NULL;
}

/* ---- building a kernel ------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

void ct_fused_free(ct_fused *k) {
  if (!k) return;
  free(k->reg_dt), free(k->reg_row), free(k->instr), free(k->out_reg);
  free(k->signature), free(k->c_src), free(k->cuda_src), free(k->scratch);
  free(k->cuda); /* fuse_cuda.c keeps only plain data there; the module is unloaded with the graph */
  free(k);
}

int ct_fused_chunk(const ct_fused *k) { return k->chunk; }
void ct_fused_set_chunk(ct_fused *k, int chunk) { k->chunk = chunk > 0 ? chunk : 1024; }
bool ct_fused_is_flat(const ct_fused *k) { return !k->rowmode; }

static int build_kernel(fuse_ctx *c, ct_text *why) {
  ct_graph *g = c->g;
  qsort(c->members, (size_t)c->nmembers, sizeof *c->members, cmp_int);
  int root = c->members[c->nmembers - 1];
  ct_fused *k = calloc(1, sizeof *k);
  int cap = 0;
  for (int m = 0; m < c->nmembers; m++) cap += g->n[c->members[m]].nin + 1;
  int *ins = malloc(sizeof *ins * (size_t)cap), *outs = malloc(sizeof *outs * (size_t)cap);
  int *regv = malloc(sizeof *regv * (size_t)(cap + c->nmembers));
  if (!k || !ins || !outs || !regv) {
    free(k), free(ins), free(outs), free(regv);
    return ct_errorf("fuse: out of memory");
  }
  int nin = 0, nout = 0;
  for (int m = 0; m < c->nmembers; m++) {
    const ct_gnode *mn = &g->n[c->members[m]];
    for (int q = 0; q < mn->nin; q++) {
      int v = mn->in[q], pv = g->v[v].producer;
      if (pv >= 0 && c->group[pv] == c->gid) continue;
      bool dup = false;
      for (int s = 0; s < nin && !dup; s++) dup = ins[s] == v;
      if (!dup) ins[nin++] = v;
    }
  }
  for (int m = 0; m < c->nmembers; m++) {
    int i = c->members[m], v = g->n[i].out[0];
    bool outside = i == root || g->v[v].pinned || ct_graph_value_is_output(g, v);
    for (int q = c->cons_at[v]; q < c->cons_at[v + 1] && !outside; q++)
      outside = c->cons[q] >= 0 && c->group[c->cons[q]] != c->gid;
    if (outside) outs[nout++] = v;
  }
  k->id = g->nkernels;
  k->nin = nin;
  k->nout = nout;
  k->ninstr = c->nmembers;
  k->nregs = nin + c->nmembers;
  k->reg_dt = calloc((size_t)k->nregs, sizeof *k->reg_dt);
  k->reg_row = calloc((size_t)k->nregs, sizeof *k->reg_row);
  k->instr = calloc((size_t)k->ninstr, sizeof *k->instr);
  k->out_reg = calloc((size_t)(nout ? nout : 1), sizeof *k->out_reg);
  k->rowmode = c->rowmode;
  k->ndim = c->ndim;
  memcpy(k->shape, c->shape, sizeof k->shape);
  k->chunk = 1024;
  if (!k->reg_dt || !k->reg_row || !k->instr || !k->out_reg) {
    ct_fused_free(k);
    free(ins), free(outs), free(regv);
    return ct_errorf("fuse: out of memory");
  }
  for (int r = 0; r < nin; r++) {
    regv[r] = ins[r];
    k->reg_dt[r] = g->v[ins[r]].dtype;
    k->reg_row[r] = c->rowmode && !shape_is(&g->v[ins[r]], c->ndim, c->shape);
  }
  ct_text sig = {0}, nm = {0};
  ct_text_printf(&sig, "%s:", c->rowmode ? "row" : "flat");
  for (int m = 0; m < c->nmembers; m++) {
    const ct_gnode *mn = &g->n[c->members[m]];
    ct_finstr *in = &k->instr[m];
    in->op = mn->op;
    in->dst = nin + m;
    in->nsrc = mn->nin;
    in->attrs = mn->attrs;
    in->value = mn->out[0];
    in->out_dt = g->v[mn->out[0]].dtype;
    in->reduce = is_reduction(mn->op);
    in->row = c->rowmode && !shape_is(&g->v[mn->out[0]], c->ndim, c->shape);
    for (int q = 0; q < mn->nin && q < 3; q++) {
      int v = mn->in[q], r = -1;
      for (int s = 0; s < nin + m && r < 0; s++)
        if (regv[s] == v) r = s;
      in->src[q] = r;
    }
    in->dt = g->v[mn->in[mn->op == CT_OP_where ? 1 : 0]].dtype;
    regv[nin + m] = mn->out[0];
    k->reg_dt[nin + m] = in->out_dt;
    k->reg_row[nin + m] = in->row;
    ct_text_printf(&sig, "%s.%s(", ct_op_name(mn->op), ct_dtype_name(in->dt));
    for (int q = 0; q < in->nsrc; q++) ct_text_printf(&sig, "%s%d", q ? "," : "", in->src[q]);
    ct_text_printf(&sig, ")%s;", in->row ? "r" : "");
    ct_text_printf(&nm, "%s%s", m ? "+" : "", ct_op_name(mn->op));
  }
  for (int q = 0; q < nout; q++)
    for (int r = nin; r < k->nregs; r++)
      if (regv[r] == outs[q]) k->out_reg[q] = r;
  k->signature = sig.s;
  snprintf(k->name, sizeof k->name, "k%d: %s", k->id, nm.s ? nm.s : "");
  if (strlen(nm.s ? nm.s : "") > 70) snprintf(k->name, sizeof k->name, "k%d: %.60s... (%d ops)", k->id, nm.s, c->nmembers);
  free(nm.s);
  k->chunk = ct_autotune_fused_lookup(k->signature, 0);
  ct_fused **ks = realloc(g->kernels, sizeof *ks * (size_t)(g->nkernels + 1));
  if (!ks) {
    ct_fused_free(k);
    free(ins), free(outs), free(regv);
    return ct_errorf("fuse: out of memory");
  }
  g->kernels = ks;
  g->kernels[g->nkernels++] = k;
  /* the root node becomes the kernel; the other members die */
  double before = 0, flops = 0;
  for (int m = 0; m < c->nmembers; m++) {
    before += g->n[c->members[m]].bytes;
    flops += g->n[c->members[m]].flops;
  }
  ct_gnode *rn = &g->n[root];
  free(rn->in), free(rn->out);
  rn->in = ins;
  rn->out = outs;
  rn->nin = nin;
  rn->nout = nout;
  rn->op = CT_GOP_FUSED;
  rn->kernel = k->id;
  rn->members = c->nmembers;
  bool back = false;
  for (int m = 0; m < c->nmembers; m++) back |= g->n[c->members[m]].backward;
  rn->backward = back;
  free(rn->label);
  rn->label = strdup(k->name);
  memset(&rn->attrs, 0, sizeof rn->attrs);
  for (int m = 0; m < c->nmembers - 1; m++) g->n[c->members[m]].dead = true;
  for (int q = 0; q < nout; q++) g->v[outs[q]].producer = root;
  ct_graph_node_cost(g, root);
  rn->flops = flops;
  char b1[32], b2[32], sh[96];
  ct_text_printf(why, "kernel %s\n  %s over %s%s: %d ops, reads %d tensors, writes %d; bytes %s -> %s\n", k->name,
                 c->rowmode ? "row kernel (one row at a time)" : "flat kernel", ct_dtype_name(g->v[outs[0]].dtype),
                 ct_shape_str(c->shape, c->ndim, sh, sizeof sh), c->nmembers, nin, nout,
                 ct_format_bytes(before, b1, sizeof b1), ct_format_bytes(rn->bytes, b2, sizeof b2));
  free(regv);
  return 0;
}

/* ---- the pass ------------------------------------------------------------------------------ */

int ct_pass_fuse(ct_graph *g, const ct_pass_opts *o, ct_text *why) {
  fuse_ctx c = {.g = g, .o = o, .why = why};
  c.reductions = !o->no_reductions && g->device.type == CT_CPU;
  c.maxin = o->max_inputs > 0 ? o->max_inputs : 12;
  if (c.maxin > 60) c.maxin = 60;
  int nn = g->nn;
  c.group = malloc(sizeof(int) * (size_t)(nn + 1));
  c.cons_at = calloc((size_t)(g->nv + 2), sizeof(int));
  c.members = malloc(sizeof(int) * (size_t)(nn + 1));
  int total = 0;
  for (int i = 0; i < nn; i++)
    if (!g->n[i].dead) total += g->n[i].nin;
  c.cons = malloc(sizeof(int) * (size_t)(total + 1));
  int *fill = calloc((size_t)(g->nv + 1), sizeof(int));
  if (!c.group || !c.cons_at || !c.members || !c.cons || !fill) {
    free(c.group), free(c.cons_at), free(c.members), free(c.cons), free(fill);
    return ct_errorf("fuse: out of memory");
  }
  for (int i = 0; i < nn; i++) {
    c.group[i] = -1;
    if (g->n[i].dead) continue;
    for (int k = 0; k < g->n[i].nin; k++) c.cons_at[g->n[i].in[k] + 1]++;
  }
  for (int v = 0; v < g->nv; v++) c.cons_at[v + 1] += c.cons_at[v];
  for (int i = 0; i < nn; i++) {
    if (g->n[i].dead) continue;
    for (int k = 0; k < g->n[i].nin; k++) {
      int v = g->n[i].in[k];
      bool dup = false; /* x*x reads x twice: one consumer */
      for (int q = c.cons_at[v]; q < c.cons_at[v] + fill[v] && !dup; q++) dup = c.cons[q] == i;
      if (!dup) c.cons[c.cons_at[v] + fill[v]++] = i;
    }
  }
  for (int v = 0; v < g->nv; v++) /* shrink ranges to what was filled */
    for (int q = c.cons_at[v] + fill[v]; q < c.cons_at[v + 1]; q++) c.cons[q] = -1;
  int kernels = 0, fused_ops = 0;
  ct_text detail = {0};
  char buf[400], d1[160], d2[160];
  for (int r = nn - 1; r >= 0; r--) {
    ct_gnode *rn = &g->n[r];
    if (rn->dead || c.group[r] >= 0 || op_reason(&c, r, buf, sizeof buf)) continue;
    c.gid = g->nkernels;
    c.root = r;
    c.nmembers = 0;
    const ct_gvalue *ro = &g->v[rn->out[0]];
    if (is_reduction(rn->op)) {
      const ct_gvalue *x = &g->v[rn->in[0]];
      c.ndim = x->ndim;
      memcpy(c.shape, x->shape, sizeof c.shape);
      c.rowmode = true;
      int px = x->producer;
      bool fresh = px >= 0 && !ct_gop_is_view(g->n[px].op) && !ct_gop_is_inplace(g->n[px].op);
      if (!fresh && !contiguous_value(x)) continue;
    } else {
      c.ndim = ro->ndim;
      memcpy(c.shape, ro->shape, sizeof c.shape);
      c.rowmode = false;
    }
    c.group[r] = c.gid;
    c.members[c.nmembers++] = r;
    ct_text local = {0};
    for (int head = 0; head < c.nmembers; head++) {
      const ct_gnode *m = &g->n[c.members[head]];
      for (int q = 0; q < m->nin; q++) {
        int p = g->v[m->in[q]].producer;
        if (p < 0 || g->n[p].dead || c.group[p] == c.gid || ct_gop_is_view(g->n[p].op)) continue;
        const char *why_not = join_reason(&c, p, buf, sizeof buf);
        ndesc(g, p, d1, sizeof d1);
        ndesc(g, c.members[head], d2, sizeof d2);
        if (why_not) {
          ct_text_printf(&local, "  not fused: %s -> %s: %s\n", d1, d2, why_not);
          continue;
        }
        if (is_reduction(g->n[p].op) || !shape_is(&g->v[g->n[p].out[0]], c.ndim, c.shape)) c.rowmode = true;
        c.group[p] = c.gid;
        c.members[c.nmembers++] = p;
        ct_text_printf(&local, "  fused:     %s -> %s\n", d1, d2);
      }
    }
    if (c.nmembers < 2) {
      c.group[r] = -1;
      if (local.s) ct_text_printf(&detail, "%s alone:\n%s", ndesc(g, r, d1, sizeof d1), local.s);
      free(local.s);
      continue;
    }
    if (c.rowmode && !c.reductions) { /* a row-shaped member slipped in: cannot happen, but stay safe */
      for (int m = 0; m < c.nmembers; m++) c.group[c.members[m]] = -1;
      free(local.s);
      continue;
    }
    ct_text head = {0};
    if (build_kernel(&c, &head)) {
      free(local.s), free(head.s), free(detail.s);
      free(c.group), free(c.cons_at), free(c.members), free(c.cons), free(fill);
      return -1;
    }
    ct_text_printf(&detail, "%s%s", head.s ? head.s : "", local.s ? local.s : "");
    free(head.s), free(local.s);
    kernels++;
    fused_ops += c.nmembers;
  }
  ct_text_printf(why, "  %d kernels made from %d ops%s\n", kernels, fused_ops,
                 c.reductions ? "" : " (elementwise only: no row reductions)");
  if (detail.s) ct_text_printf(why, "%s", detail.s);
  free(detail.s);
  free(c.group), free(c.cons_at), free(c.members), free(c.cons), free(fill);
  return kernels;
}

/* ---- cost ----------------------------------------------------------------------------------- */

void ct_fused_cost(const ct_graph *g, const ct_gnode *n, double *flops, double *bytes) {
  double b = 0, f = 0;
  for (int k = 0; k < n->nin; k++) {
    const ct_gvalue *x = &g->v[n->in[k]];
    double e = 1;
    for (int d = 0; d < x->ndim; d++) e *= (double)x->shape[d];
    b += e * (double)ct_dtype_size(x->dtype);
  }
  for (int k = 0; k < n->nout; k++) {
    const ct_gvalue *x = &g->v[n->out[k]];
    double e = 1;
    for (int d = 0; d < x->ndim; d++) e *= (double)x->shape[d];
    b += e * (double)ct_dtype_size(x->dtype);
    f += e;
  }
  *flops = f * (double)n->members;
  *bytes = b;
}
