/* fuse_cpu.c: the CPU fused-loop interpreter. A fused kernel's program runs over the iteration
 * shape in chunks (flat kernels: `chunk` elements of the innermost dims at a time) or rows (row
 * kernels), with every intermediate in a small scratch register that stays in cache; only the
 * kernel's inputs are read from memory and only its outputs written.
 *
 * Invariants: each instruction evaluates its op with the expression and dtype of the op's own CPU
 * forward (ops_elementwise.c, ops_view.c), and reductions call the reduction op's forward on one
 * contiguous row, so a fused kernel's results equal the unfused ops' bit for bit; operands have
 * element stride 1 (a run) or 0 (broadcast), anything else is gathered first; an output is
 * written directly when its memory is a run, else through scratch; the last instruction that
 * writes an output is the kernel's root, so an output that overwrites its input in place (the
 * planner allows that for one-output kernels) is written only after every read of that chunk.
 */
/* The instruction loops are compiled with vectorization on (the build's -O2 leaves most of them
   scalar): lanes compute the same IEEE operations as the scalar code, so results do not change. */
#pragma GCC optimize("O3")

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "cpu/ew_math.h"
#include "cpu/iter.h"

typedef struct {
  const char *p;
  int64_t es; /* element stride: 1 or 0 */
} operand;

#define LOOP1(TY, OT, EXPR)                                                                        \
  do {                                                                                             \
    typedef TY T;                                                                                  \
    const T *A = (const T *)s[0].p;                                                                \
    OT *D = (OT *)dst;                                                                             \
    if (s[0].es) {                                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T x = A[i];                                                                                \
        D[i] = (OT)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      T x = A[0];                                                                                  \
      OT r = (OT)(EXPR);                                                                           \
      for (int64_t i = 0; i < n; i++) D[i] = r;                                                    \
    }                                                                                              \
  } while (0)

#define LOOP2(TY, OT, EXPR)                                                                        \
  do {                                                                                             \
    typedef TY T;                                                                                  \
    const T *A = (const T *)s[0].p, *B = (const T *)s[1].p;                                        \
    OT *D = (OT *)dst;                                                                             \
    if (s[0].es && s[1].es) {                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T x = A[i], y = B[i];                                                                      \
        D[i] = (OT)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[0].es) {                                                                          \
      const T y = B[0];                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T x = A[i];                                                                                \
        D[i] = (OT)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[1].es) {                                                                          \
      const T x = A[0];                                                                            \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T y = B[i];                                                                                \
        D[i] = (OT)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      T x = A[0], y = B[0];                                                                        \
      OT r = (OT)(EXPR);                                                                           \
      for (int64_t i = 0; i < n; i++) D[i] = r;                                                    \
    }                                                                                              \
  } while (0)

/* one op in both float dtypes */
#define FLOAT1(E)                                                                                  \
  if (f32) LOOP1(float, float, E);                                                                 \
  else LOOP1(double, double, E);                                                                   \
  return 0
#define FLOAT2(E)                                                                                  \
  if (f32) LOOP2(float, float, E);                                                                 \
  else LOOP2(double, double, E);                                                                   \
  return 0
/* one instruction per row of core/ops/elementwise_defs.h, with the row's own expression */
#define A0 attr0
#define A1 attr1
#define CASE_BINARY(name, dts, expr, ...) case CT_OP_##name: FLOAT2(expr);
#define CASE_COMPARE(name, expr) case CT_OP_##name: CMP2(expr);
#define CASE_UNARY(name, dts, expr, ...) case CT_OP_##name: FLOAT1(expr);
#define CMP2(E)                                                                                    \
  if (f32) LOOP2(float, uint8_t, E);                                                               \
  else LOOP2(double, uint8_t, E);                                                                  \
  return 0

static int reduce_row(const ct_finstr *in, int64_t n, const operand *s, char *dst) {
  ct_storage si, so;
  memset(&si, 0, sizeof si);
  memset(&so, 0, sizeof so);
  si.refcount = so.refcount = 1;
  si.data = (void *)s[0].p;
  si.nbytes = (size_t)n * ct_dtype_size(in->dt);
  so.data = dst;
  so.nbytes = ct_dtype_size(in->out_dt);
  si.device = so.device = ct_cpu();
  ct_tensor ti, to;
  memset(&ti, 0, sizeof ti);
  memset(&to, 0, sizeof to);
  ti.refcount = to.refcount = 1;
  ti.storage = &si, to.storage = &so;
  ti.dtype = in->dt, to.dtype = in->out_dt;
  ti.ndim = to.ndim = 2;
  ti.shape[0] = 1, ti.shape[1] = n, ti.stride[0] = n, ti.stride[1] = 1;
  to.shape[0] = to.shape[1] = 1, to.stride[0] = to.stride[1] = 1;
  ct_attrs a = in->attrs;
  a.mask = 2;
  a.keepdim = true;
  ct_tensor *tp = &ti;
  return ct_optable[in->op]->cpu(&to, &tp, 1, &a);
}

static int exec(const ct_finstr *in, int64_t n, const operand *s, char *dst) {
  const bool f32 = in->dt == CT_F32;
  const double attr0 = in->attrs.f[0], attr1 = in->attrs.f[1];
  (void)attr1;
  if (in->reduce) return reduce_row(in, n, s, dst);
  switch (in->op) {
    CT_EW_BINARY(CASE_BINARY)
    CT_EW_BINARY_INTERNAL(CASE_BINARY)
    CT_EW_COMPARE(CASE_COMPARE)
    CT_EW_UNARY(CASE_UNARY)
    CT_EW_UNARY_INTERNAL(CASE_UNARY)
  case CT_OP_where: {
    const uint8_t *C = (const uint8_t *)s[0].p;
    if (in->dt == CT_F32) {
      const float *A = (const float *)s[1].p, *B = (const float *)s[2].p;
      float *D = (float *)dst;
      for (int64_t i = 0; i < n; i++) D[i] = C[i * s[0].es] ? A[i * s[1].es] : B[i * s[2].es];
    } else {
      const double *A = (const double *)s[1].p, *B = (const double *)s[2].p;
      double *D = (double *)dst;
      for (int64_t i = 0; i < n; i++) D[i] = C[i * s[0].es] ? A[i * s[1].es] : B[i * s[2].es];
    }
    return 0;
  }
  case CT_OP_to_dtype:
    if (in->dt == CT_BOOL && in->out_dt == CT_F32) LOOP1(uint8_t, float, x ? 1.0 : 0.0);
    else if (in->dt == CT_BOOL) LOOP1(uint8_t, double, x ? 1.0 : 0.0);
    else if (in->dt == CT_F32) LOOP1(float, double, x);
    else LOOP1(double, float, x);
    return 0;
  default:
    return ct_errorf("fused kernel: op %s has no interpreter instruction", ct_op_name(in->op));
  }
}

/* ---- running a kernel ------------------------------------------------------------------------ */

typedef struct {
  ct_fused *k;
  int nops;            /* outputs first, then inputs */
  char *base[64];
  int64_t isz[64];
  int out_of_reg[128]; /* register -> output operand, -1 */
} run_ctx;

static char *scratch_reg(ct_fused *k, int r) { return (char *)k->scratch + (size_t)r * (size_t)k->scratch_elems * 8; }

/* One chunk (flat) or row (row kernels) of n elements; p: operand pointers, st: inner byte strides. */
static int run_chunk(run_ctx *c, char **p, const int64_t *st, int64_t n) {
  ct_fused *k = c->k;
  operand reg[128];
  int nout = k->nout;
  for (int r = 0; r < k->nin; r++) {
    int o = nout + r;
    int64_t isz = c->isz[o];
    if (st[o] == isz) reg[r] = (operand){p[o], 1};
    else if (st[o] == 0) reg[r] = (operand){p[o], 0};
    else {
      char *sc = scratch_reg(k, r);
      for (int64_t i = 0; i < n; i++) memcpy(sc + i * isz, p[o] + i * st[o], (size_t)isz);
      reg[r] = (operand){sc, 1};
    }
  }
  for (int j = 0; j < k->ninstr; j++) {
    const ct_finstr *in = &k->instr[j];
    int d = in->dst, q = c->out_of_reg[d];
    bool row = in->row;
    int64_t m = row ? 1 : n;
    char *dst;
    bool direct = q >= 0 && (row || st[q] == c->isz[q]);
    dst = direct ? p[q] : scratch_reg(k, d);
    operand src[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    for (int s = 0; s < in->nsrc && s < 3; s++) src[s] = reg[in->src[s]];
    if (in->reduce && src[0].es != 1) return ct_errorf("fused kernel: a reduction needs a contiguous row");
    if (exec(in, in->reduce ? n : m, src, dst)) return -1;
    reg[d] = (operand){dst, row ? 0 : 1};
    if (q >= 0 && !direct) {
      int64_t isz = c->isz[q];
      for (int64_t i = 0; i < m; i++) memcpy(p[q] + i * st[q], dst + i * isz, (size_t)isz);
    }
  }
  return 0;
}

int ct_fused_run_cpu(ct_graph *g, ct_gnode *n, ct_fused *k) {
  run_ctx c;
  memset(&c, 0, sizeof c);
  c.k = k;
  c.nops = k->nout + k->nin;
  if (c.nops > 64 || k->nregs > 128) return ct_errorf("fused kernel: too many operands");
  int nd = k->ndim;
  int64_t st[64][CT_MAX_DIMS];
  for (int r = 0; r < k->nregs; r++) c.out_of_reg[r] = -1;
  for (int q = 0; q < c.nops; q++) {
    int v = q < k->nout ? n->out[q] : n->in[q - k->nout];
    ct_tensor *t = g->v[v].rt;
    if (!t) return ct_errorf("fused kernel: value %d has no buffer", v);
    c.base[q] = ct_data_ptr(t);
    c.isz[q] = (int64_t)ct_dtype_size(t->dtype);
    ct_broadcast_strides(t, k->shape, nd, st[q]);
    for (int d = 0; d < nd; d++) st[q][d] *= c.isz[q];
    if (q < k->nout) c.out_of_reg[k->out_reg[q]] = q;
  }
  /* dims: flat kernels drop size-1 dims and merge dims contiguous for every operand; row kernels
     keep the last dim (the row) whole */
  int64_t shape[CT_MAX_DIMS];
  int64_t s2[64][CT_MAX_DIMS];
  int m = 0;
  for (int d = 0; d < nd; d++) {
    if (k->shape[d] == 0) return 0;
    if (k->shape[d] == 1 && !(k->rowmode && d == nd - 1)) continue;
    shape[m] = k->shape[d];
    for (int q = 0; q < c.nops; q++) s2[q][m] = st[q][d];
    m++;
  }
  if (!k->rowmode) {
    int w = 0;
    for (int d = 1; d < m; d++) {
      bool ok = true;
      for (int q = 0; q < c.nops && ok; q++) ok = s2[q][w] == s2[q][d] * shape[d];
      if (ok) {
        shape[w] *= shape[d];
        for (int q = 0; q < c.nops; q++) s2[q][w] = s2[q][d];
      } else {
        w++;
        shape[w] = shape[d];
        for (int q = 0; q < c.nops; q++) s2[q][w] = s2[q][d];
      }
    }
    if (m) m = w + 1;
  }
  if (m == 0) { /* a single element */
    shape[0] = 1;
    for (int q = 0; q < c.nops; q++) s2[q][0] = 0;
    m = 1;
  }
  int inner = m - 1;
  int64_t L = shape[inner];
  int64_t step = k->rowmode ? L : (k->chunk > 0 ? k->chunk : 1024);
  if (step > L) step = L;
  if (!k->scratch || k->scratch_elems < step) {
    free(k->scratch);
    k->scratch = malloc((size_t)k->nregs * (size_t)(step ? step : 1) * 8);
    if (!k->scratch) {
      k->scratch_elems = 0;
      return ct_errorf("fused kernel: out of memory for %d registers of %lld elements", k->nregs, (long long)step);
    }
    k->scratch_elems = step;
  }
  int64_t inner_st[64], idx[CT_MAX_DIMS] = {0};
  char *ptr[64];
  for (int q = 0; q < c.nops; q++) inner_st[q] = s2[q][inner];
  for (;;) {
    for (int q = 0; q < c.nops; q++) {
      char *p = c.base[q];
      for (int d = 0; d < inner; d++) p += idx[d] * s2[q][d];
      ptr[q] = p;
    }
    for (int64_t j0 = 0; j0 < L; j0 += step) {
      int64_t cnt = L - j0 < step ? L - j0 : step;
      char *pp[64];
      for (int q = 0; q < c.nops; q++) pp[q] = ptr[q] + j0 * inner_st[q];
      if (run_chunk(&c, pp, inner_st, cnt)) return -1;
    }
    int d = inner - 1;
    while (d >= 0 && ++idx[d] == shape[d]) idx[d--] = 0;
    if (d < 0) break;
  }
  return 0;
}
