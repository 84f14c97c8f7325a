/* fuse_source.c: the source of a fused kernel, as C (what the CPU interpreter of fuse_cpu.c runs)
 * and as CUDA C (what fuse_cuda.c compiles with NVRTC). Each instruction is its op row's own
 * expression (core/ops/elementwise_defs.h), spelled for the instruction's dtype. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "obs/profile.h"

/* ---- sources ------------------------------------------------------------------------------- */

static const char *ctype(ct_dtype d) { return d == CT_F64 ? "double" : d == CT_F32 ? "float" : "unsigned char"; }

/* A double literal that stays a double in C ("1" would make x + 1 float arithmetic). */
static const char *dlit(double v, char *buf, size_t n) {
  snprintf(buf, n, "%.17g", v);
  if (!strpbrk(buf, ".eEn")) snprintf(buf + strlen(buf), n - strlen(buf), ".0");
  return buf;
}

/* The C expression of instruction in over operands a, b, c (strings): the op row's expression
   (core/ops/elementwise_defs.h) with its vocabulary spelled for the instruction's dtype. */
static void expr(const ct_finstr *in, const char *a, const char *b, const char *c3, char *out, size_t n) {
  bool f = in->dt == CT_F32;
  char P[40], Q[40];
  dlit(in->attrs.f[0], P, sizeof P);
  dlit(in->attrs.f[1], Q, sizeof Q);
  if (in->op == CT_OP_to_dtype) {
    snprintf(out, n, in->dt == CT_BOOL ? "%s ? 1.0 : 0.0" : "%s", a);
    return;
  }
  const char *e = in->op < CT_OP_COUNT ? ct_optable[in->op]->expr : NULL;
  if (!e) {
    snprintf(out, n, "/* %s */ 0", ct_op_name(in->op));
    return;
  }
  static const char *const math[] = {"EXP", "LOG", "SQRT", "SIN", "COS", "TANH", "ERF", "POW"};
  size_t k = 0;
  out[0] = 0;
#define PUT(...) (k += (size_t)snprintf(out + k, k < n ? n - k : 0, __VA_ARGS__), k = k < n ? k : n)
  while (*e) {
    if (!isalpha((unsigned char)*e) && *e != '_') {
      /* numbers pass whole, so the 5 of 0.5 is never read as an identifier */
      size_t len = isdigit((unsigned char)*e) || (*e == '.' && isdigit((unsigned char)e[1])) ? strspn(e, "0123456789.eE") : 1;
      PUT("%.*s", (int)len, e);
      e += len;
      continue;
    }
    size_t len = strspn(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *sub = NULL;
    char word[16] = "";
    if (len < sizeof word) memcpy(word, e, len), word[len] = 0;
    if (!strcmp(word, "x")) sub = a;
    else if (!strcmp(word, "y")) sub = b;
    else if (!strcmp(word, "z")) sub = c3;
    else if (!strcmp(word, "A0")) sub = P;
    else if (!strcmp(word, "A1")) sub = Q;
    else if (!strcmp(word, "T")) sub = ctype(in->dt);
    if (sub) PUT("%s", sub);
    else if (!strcmp(word, "K") && e[1] == '(') { /* K(c): the constant in the dtype */
      const char *close = strchr(e, ')');
      PUT("%.*s%s", (int)(close - e - 2), e + 2, f ? "f" : "");
      e = close + 1;
      continue;
    } else {
      bool is_math = false;
      for (size_t m = 0; m < sizeof math / sizeof *math; m++) is_math |= !strcmp(word, math[m]);
      if (is_math) {
        for (size_t c = 0; c < len; c++) PUT("%c", (char)tolower((unsigned char)e[c]));
        if (f) PUT("f");
      } else {
        PUT("%.*s", (int)len, e);
      }
    }
    e += len;
  }
#undef PUT
}

/* Index expression of input k inside a flat loop over i (or a row loop over r, j). */
static void index_expr(const ct_graph *g, const ct_fused *k, int v, bool row, char *out, size_t n) {
  const ct_gvalue *x = &g->v[v];
  int64_t st[CT_MAX_DIMS] = {0};
  int off = k->ndim - x->ndim;
  for (int d = 0; d < k->ndim; d++) {
    int xd = d - off;
    st[d] = xd < 0 || x->shape[xd] == 1 ? 0 : x->stride[xd];
  }
  int64_t cs[CT_MAX_DIMS];
  ct_contiguous_strides(k->shape, k->ndim, cs);
  bool contiguous = true, zero = true;
  for (int d = 0; d < k->ndim; d++) {
    if (k->shape[d] != 1 && st[d] != cs[d]) contiguous = false;
    if (k->shape[d] != 1 && st[d]) zero = false;
  }
  int64_t C = k->ndim ? k->shape[k->ndim - 1] : 1;
  bool row_bcast = k->ndim && (k->shape[k->ndim - 1] == 1 || st[k->ndim - 1] == 0);
  if (zero) snprintf(out, n, "[%lld]", (long long)x->offset);
  else if (contiguous && row) snprintf(out, n, "[r * %lld + j]", (long long)C);
  else if (contiguous) snprintf(out, n, "[i]");
  else if (row && row_bcast) snprintf(out, n, "[r] /* one per row */");
  else if (!row && k->ndim >= 1 && st[k->ndim - 1] == 1 && k->ndim >= 2 && x->ndim == 1)
    snprintf(out, n, "[i %% %lld] /* broadcast over rows */", (long long)C);
  else if (!row && row_bcast && x->ndim == k->ndim) snprintf(out, n, "[i / %lld] /* one per row */", (long long)C);
  else snprintf(out, n, "[at(i)] /* strided: shape and strides from the tensor */");
}

static void build_c_source(ct_graph *g, ct_fused *k, const ct_gnode *n) {
  ct_text t = {0};
  char sh[96];
  ct_text_printf(&t, "/* %s\n * %s kernel over %s; the CPU runs this program in chalk's fused-loop interpreter,\n"
                     " * %s, calling each op's own expression so results match unfused ops bit for bit. */\n",
                 k->name, k->rowmode ? "row" : "flat", ct_shape_str(k->shape, k->ndim, sh, sizeof sh),
                 k->rowmode ? "one row at a time (reductions use the reduction op's own loop on the row)"
                            : "in chunks of `chunk` elements (autotuned) kept in cache");
  ct_text_printf(&t, "void k%d(", k->id);
  for (int q = 0; q < k->nin; q++) {
    char nm[64];
    ct_text_printf(&t, "%sconst %s *in%d /* %s */", q ? ", " : "", ctype(k->reg_dt[q]), q,
                   ct_graph_value_name(g, n->in[q], nm, sizeof nm));
  }
  for (int q = 0; q < k->nout; q++) ct_text_printf(&t, ", %s *out%d", ctype(g->v[n->out[q]].dtype), q);
  ct_text_printf(&t, ") {\n");
  int64_t numel = 1;
  for (int d = 0; d < k->ndim; d++) numel *= k->shape[d];
  int64_t C = k->ndim ? k->shape[k->ndim - 1] : 1;
  const char *ind = "    ";
  if (k->rowmode) {
    ct_text_printf(&t, "  for (long r = 0; r < %lld; r++) {\n", (long long)(numel / (C ? C : 1)));
  } else {
    ct_text_printf(&t, "  for (long i = 0; i < %lld; i++) {\n", (long long)numel);
  }
  for (int j = 0; j < k->ninstr; j++) {
    const ct_finstr *in = &k->instr[j];
    char ops[3][160];
    for (int q = 0; q < in->nsrc && q < 3; q++) {
      int r = in->src[q];
      if (r < k->nin) {
        char ix[128];
        index_expr(g, k, n->in[r], k->rowmode, ix, sizeof ix);
        char *cm = strstr(ix, " /*");
        if (cm) *cm = '\0';
        snprintf(ops[q], sizeof ops[q], "in%d%s", r, ix);
      } else if (k->rowmode && !k->reg_row[r]) {
        snprintf(ops[q], sizeof ops[q], "t%d[j]", r);
      } else {
        snprintf(ops[q], sizeof ops[q], "t%d", r);
      }
    }
    char e[600];
    int out_q = -1;
    for (int q = 0; q < k->nout; q++)
      if (k->out_reg[q] == in->dst) out_q = q;
    char dst[64];
    if (k->rowmode && !in->row) snprintf(dst, sizeof dst, "t%d[j]", in->dst);
    else snprintf(dst, sizeof dst, "%s t%d", ctype(in->out_dt), in->dst);
    if (in->reduce) {
      char src[64];
      if (in->src[0] < k->nin) snprintf(src, sizeof src, "in%d[r * %lld + j]", in->src[0], (long long)C);
      else snprintf(src, sizeof src, "t%d[j]", in->src[0]);
      const char *what = in->op == CT_OP_sum ? "sum" : in->op == CT_OP_mean ? "mean" : in->op == CT_OP_max ? "max" : "min";
      ct_text_printf(&t, "%s%s t%d = %s of %s for j in [0, %lld) (the %s op's own loop%s);\n", ind, ctype(in->out_dt),
                     in->dst, what, src, (long long)C, what,
                     in->op == CT_OP_sum || in->op == CT_OP_mean ? ", accumulating in double" : "");
    } else {
      expr(in, ops[0], ops[1], ops[2], e, sizeof e);
      if (k->rowmode && !in->row)
        ct_text_printf(&t, "%sfor (long j = 0; j < %lld; j++) %s = (%s)(%s);\n", ind, (long long)C, dst,
                       ctype(in->out_dt), e);
      else ct_text_printf(&t, "%s%s = (%s)(%s);\n", ind, dst, ctype(in->out_dt), e);
    }
    if (out_q >= 0) {
      if (k->rowmode && !in->row)
        ct_text_printf(&t, "%sfor (long j = 0; j < %lld; j++) out%d[r * %lld + j] = t%d[j];  /* written: read outside */\n",
                       ind, (long long)C, out_q, (long long)C, in->dst);
      else if (k->rowmode) ct_text_printf(&t, "%sout%d[r] = t%d;\n", ind, out_q, in->dst);
      else ct_text_printf(&t, "%sout%d[i] = t%d;\n", ind, out_q, in->dst);
    }
  }
  ct_text_printf(&t, "  }\n}\n");
  free(k->c_src);
  k->c_src = t.s;
}

/* CUDA C for a flat kernel: one thread per element, shapes and strides baked in. */
static void build_cuda_source(ct_graph *g, ct_fused *k, const ct_gnode *n) {
  ct_text t = {0};
  char sh[96];
  int64_t numel = 1;
  for (int d = 0; d < k->ndim; d++) numel *= k->shape[d];
  ct_text_printf(&t, "// %s\n// flat kernel over %s: one thread per element; generated by chalk, compiled with NVRTC\n",
                 k->name, ct_shape_str(k->shape, k->ndim, sh, sizeof sh));
  ct_text_printf(&t, "extern \"C\" __global__ void k%d(", k->id);
  for (int q = 0; q < k->nin; q++) ct_text_printf(&t, "%sconst %s* __restrict__ in%d", q ? ", " : "", ctype(k->reg_dt[q]), q);
  for (int q = 0; q < k->nout; q++) ct_text_printf(&t, ", %s* __restrict__ out%d", ctype(g->v[n->out[q]].dtype), q);
  ct_text_printf(&t, ") {\n  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n  if (i >= %lldLL) return;\n",
                 (long long)numel);
  /* offsets of each input from i */
  for (int q = 0; q < k->nin; q++) {
    const ct_gvalue *x = &g->v[n->in[q]];
    int off = k->ndim - x->ndim;
    int64_t cs[CT_MAX_DIMS];
    ct_contiguous_strides(k->shape, k->ndim, cs);
    bool contiguous = x->offset == 0;
    for (int d = 0; d < k->ndim && contiguous; d++) {
      int xd = d - off;
      int64_t s = xd < 0 || x->shape[xd] == 1 ? 0 : x->stride[xd];
      if (k->shape[d] != 1 && s != cs[d]) contiguous = false;
    }
    if (contiguous) {
      ct_text_printf(&t, "  long long o%d = i;\n", q);
      continue;
    }
    ct_text_printf(&t, "  long long o%d = %lldLL", q, (long long)x->offset);
    for (int d = 0; d < k->ndim; d++) {
      int xd = d - off;
      int64_t s = xd < 0 || x->shape[xd] == 1 ? 0 : x->stride[xd];
      if (!s || k->shape[d] == 1) continue;
      ct_text_printf(&t, " + ((i / %lldLL) %% %lldLL) * %lldLL", (long long)cs[d], (long long)k->shape[d], (long long)s);
    }
    ct_text_printf(&t, ";\n");
  }
  for (int j = 0; j < k->ninstr; j++) {
    const ct_finstr *in = &k->instr[j];
    char ops[3][32];
    for (int q = 0; q < in->nsrc && q < 3; q++) {
      int r = in->src[q];
      if (r < k->nin) snprintf(ops[q], sizeof ops[q], "in%d[o%d]", r, r);
      else snprintf(ops[q], sizeof ops[q], "t%d", r);
    }
    char e[600];
    expr(in, ops[0], ops[1], ops[2], e, sizeof e);
    ct_text_printf(&t, "  %s t%d = (%s)(%s);\n", ctype(in->out_dt), in->dst, ctype(in->out_dt), e);
    for (int q = 0; q < k->nout; q++)
      if (k->out_reg[q] == in->dst) ct_text_printf(&t, "  out%d[i] = t%d;\n", q, in->dst);
  }
  ct_text_printf(&t, "}\n");
  free(k->cuda_src);
  k->cuda_src = t.s;
}

const char *ct_fused_source(ct_graph *g, int kernel, const char *lang) {
  if (kernel < 0 || kernel >= g->nkernels) return ct_errorf("source: no kernel %d", kernel), NULL;
  ct_fused *k = g->kernels[kernel];
  const ct_gnode *n = NULL;
  for (int i = 0; i < g->nn && !n; i++)
    if (!g->n[i].dead && g->n[i].op == CT_GOP_FUSED && g->n[i].kernel == kernel) n = &g->n[i];
  if (!n) return ct_errorf("source: kernel %d is no longer in the graph", kernel), NULL;
  if (!strcmp(lang, "cuda")) {
    if (k->rowmode)
      return ct_errorf("source: %s is a row kernel, which runs on the CPU only (on a GPU, fusion makes elementwise "
                       "kernels); its C source is g:source(node)", k->name), NULL;
    if (!k->cuda_src) build_cuda_source(g, k, n);
    return k->cuda_src ? k->cuda_src : (ct_errorf("source: out of memory"), NULL);
  }
  if (!strcmp(lang, "c")) {
    if (!k->c_src) build_c_source(g, k, n);
    return k->c_src ? k->c_src : (ct_errorf("source: out of memory"), NULL);
  }
  return ct_errorf("source: unknown language \"%s\" (\"c\" or \"cuda\")", lang), NULL;
}
