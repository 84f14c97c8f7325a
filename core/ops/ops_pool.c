/* ops_pool.c: max_pool2d and its backward (the gradient routed to each window's max), split from
 * ops_conv.c, whose geometry helpers it shares (ct_conv_out_size, ct_op_run_batched). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/iter.h"
#include "ops/grad_expr.h"
#include "cpu/helpers.h"
#include "ops/optable.h"

/* ---- max_pool2d(x) (attrs kh, kw, sh, sw; no padding) ---------------------------------------- */

static int pool_geometry(const ct_tensor *x, const ct_attrs *a, int64_t *OH, int64_t *OW) {
  char s[160];
  if (ct_cpu_need_float(x, "input")) return -1;
  if (x->ndim != 4) return ct_errorf("input must be [N,C,H,W], got %s", ct_shape_str(CT_SHAPE(x), s, sizeof s));
  if (ct_conv_out_size("height", x->shape[2], a->i[0], a->i[2], 0, OH) || ct_conv_out_size("width", x->shape[3], a->i[1], a->i[3], 0, OW))
    return ct_errorf("%s (input %s)", ct_last_error(), ct_shape_str(CT_SHAPE(x), s, sizeof s));
  return 0;
}
static int max_pool2d_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  int64_t OH, OW;
  if (pool_geometry(in[0], a, &OH, &OW)) return -1;
  m->ndim = 4;
  m->shape[0] = in[0]->shape[0];
  m->shape[1] = in[0]->shape[1];
  m->shape[2] = OH;
  m->shape[3] = OW;
  m->dtype = in[0]->dtype;
  return 0;
}

/* For each window of each plane: the position of its first maximum (NaN counts as maximal). With
   g == NULL writes the max into y; else adds g's value at the max position of dx. */
#define POOL_KERNEL(SUF, T)                                                                                \
  static void pool_##SUF(const void *xv, void *yv, const void *gv, void *dxv, int64_t planes, int64_t H,     \
                         int64_t W, const ct_attrs *a, int64_t OH, int64_t OW) {                           \
    const T *x = xv, *g = gv;                                                                              \
    T *y = yv, *dx = dxv;                                                                                  \
    int64_t kh = a->i[0], kw = a->i[1], sh = a->i[2], sw = a->i[3];                                        \
    for (int64_t p = 0; p < planes; p++) {                                                                 \
      const T *xp = x + p * H * W;                                                                         \
      for (int64_t oh = 0; oh < OH; oh++)                                                                  \
        for (int64_t ow = 0; ow < OW; ow++) {                                                              \
          const T *win = xp + oh * sh * W + ow * sw;                                                       \
          int64_t best = 0;                                                                                \
          T m = win[0];                                                                                    \
          for (int64_t i = 0; i < kh && m == m; i++)                                                       \
            for (int64_t j = 0; j < kw; j++) {                                                             \
              T v = win[i * W + j];                                                                        \
              if (v > m || v != v) {                                                                       \
                m = v, best = i * W + j;                                                                   \
                if (v != v) break;                                                                         \
              }                                                                                            \
            }                                                                                              \
          int64_t o = (p * OH + oh) * OW + ow;                                                             \
          if (g) dx[p * H * W + (win - xp) + best] += g[o];                                                \
          else y[o] = m;                                                                                   \
        }                                                                                                  \
    }                                                                                                      \
  }
POOL_KERNEL(f32, float)
POOL_KERNEL(f64, double)

/* 2x2 windows with stride 2 (nn.MaxPool2d(2)): each row of windows in straight-line selects
   that GCC vectorises (the scan above is ~15 ns a window, branch-free or not: pooling was 40% of
   a small conv net step; this is 20x faster measured). The selects assume no NaN and keep the
   first maximum on ties, as the scan does; a row in which a NaN is seen is redone by the scan,
   which gives the NaN rule. Windows do not overlap, so the backward writes every element of the
   rows it covers (g at the maximum, 0 elsewhere) instead of accumulating into zeros. */
#define POOL22_KERNEL(SUF, T)                                                                              \
  static int pool22_fwd_row_##SUF(const T *restrict r0, const T *restrict r1, T *restrict y, int64_t OW) {  \
    int nan = 0;                                                                                           \
    for (int64_t ow = 0; ow < OW; ow++) {                                                                  \
      T v0 = r0[2 * ow], v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];                        \
      T m0 = v1 > v0 ? v1 : v0, m1 = v3 > v2 ? v3 : v2;                                                    \
      y[ow] = m1 > m0 ? m1 : m0;                                                                           \
      nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                                            \
    }                                                                                                      \
    return nan;                                                                                            \
  }                                                                                                        \
  static int pool22_bwd_row_##SUF(const T *restrict r0, const T *restrict r1, const T *restrict g,         \
                                  T *restrict d0, T *restrict d1, int64_t OW) {                            \
    int nan = 0;                                                                                           \
    for (int64_t ow = 0; ow < OW; ow++) {                                                                  \
      T v0 = r0[2 * ow], v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];                        \
      T m0 = v1 > v0 ? v1 : v0, m1 = v3 > v2 ? v3 : v2, gv = g[ow];                                        \
      T top = m1 > m0 ? (T)0 : gv, bot = m1 > m0 ? gv : (T)0;                                              \
      d0[2 * ow] = v1 > v0 ? (T)0 : top;                                                                   \
      d0[2 * ow + 1] = v1 > v0 ? top : (T)0;                                                               \
      d1[2 * ow] = v3 > v2 ? (T)0 : bot;                                                                   \
      d1[2 * ow + 1] = v3 > v2 ? bot : (T)0;                                                               \
      nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                                            \
    }                                                                                                      \
    return nan;                                                                                            \
  }                                                                                                        \
  static void pool22_##SUF(const void *xv, void *yv, const void *gv, void *dxv, int64_t planes, int64_t H,   \
                           int64_t W, const ct_attrs *a, int64_t OH, int64_t OW) {                         \
    const T *x = xv, *g = gv;                                                                              \
    T *y = yv, *dx = dxv;                                                                                  \
    for (int64_t p = 0; p < planes; p++)                                                                   \
      for (int64_t oh = 0; oh < OH; oh++) {                                                                \
        const T *r0 = x + p * H * W + 2 * oh * W;                                                          \
        int64_t o = (p * OH + oh) * OW;                                                                    \
        if (!g) {                                                                                          \
          if (pool22_fwd_row_##SUF(r0, r0 + W, y + o, OW)) /* a NaN: the scan's rule, on this row */       \
            pool_##SUF(r0, y + o, NULL, NULL, 1, 2, W, a, 1, OW);                                          \
        } else {                                                                                           \
          T *d0 = dx + (r0 - x);                                                                           \
          if (pool22_bwd_row_##SUF(r0, r0 + W, g + o, d0, d0 + W, OW)) {                                   \
            memset(d0, 0, sizeof(T) * (size_t)(2 * OW)), memset(d0 + W, 0, sizeof(T) * (size_t)(2 * OW)); \
            pool_##SUF(r0, NULL, g + o, d0, 1, 2, W, a, 1, OW);                                            \
          }                                                                                                \
        }                                                                                                  \
      }                                                                                                    \
  }
POOL22_KERNEL(f32, float)
POOL22_KERNEL(f64, double)

typedef void (*pool_fn)(const void *x, void *y, const void *g, void *dx, int64_t planes, int64_t H, int64_t W,
                        const ct_attrs *a, int64_t OH, int64_t OW);
static bool pool_is_22(const ct_attrs *a) { return a->i[0] == 2 && a->i[1] == 2 && a->i[2] == 2 && a->i[3] == 2; }
static pool_fn pool_kernel(ct_dtype dt, const ct_attrs *a) {
  if (dt == CT_F32) return pool_is_22(a) ? pool22_f32 : pool_f32;
  return pool_is_22(a) ? pool22_f64 : pool_f64;
}

static int max_pool2d_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *x = in[0];
  ct_tensor *tmp;
  const void *xp = ct_cpu_contig_data(x, &tmp);
  if (!xp) return -1;
  int64_t planes = x->shape[0] * x->shape[1];
  pool_kernel(x->dtype, a)(xp, ct_data_ptr(out), NULL, NULL, planes, x->shape[2], x->shape[3], a, out->shape[2],
                           out->shape[3]);
  ct_release(tmp);
  return 0;
}
static int max_pool2d_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *in[2] = {g, n->in[0]};
  return (gin[0] = ct_op_run(CT_OP_max_pool2d_backward, in, 2, &n->attrs)) ? 0 : -1;
}
static void pool_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin;
  *f = (double)(a->i[0] * a->i[1]) * (double)(nin > 1 ? ct_numel(in[0]) : ct_numel(out));
  *b = (double)(ct_numel(in[0]) + ct_numel(out) + (nin > 1 ? ct_numel(in[1]) : 0)) * (double)ct_dtype_size(out->dtype);
}
const ct_opdef ct_op_max_pool2d = {"max_pool2d", 1, 0, max_pool2d_shape, max_pool2d_cpu, max_pool2d_backward,
                                   pool_cost, "dx = g at each window's max", NULL};

/* max_pool2d_backward(g, x): zeros of x's shape with each g routed to its window's maximum.
   Piecewise linear in g and flat in x; its own gradient is not provided (backward NULL). */
static int max_pool2d_backward_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *g = in[0], *x = in[1];
  int64_t OH, OW;
  char s1[160], s2[160];
  if (pool_geometry(x, a, &OH, &OW)) return -1;
  if (g->dtype != x->dtype || g->ndim != 4 || g->shape[0] != x->shape[0] || g->shape[1] != x->shape[1] ||
      g->shape[2] != OH || g->shape[3] != OW)
    return ct_errorf("gradient %s %s does not match the pooled output of input %s", ct_dtype_name(g->dtype),
                     ct_shape_str(CT_SHAPE(g), s1, sizeof s1), ct_shape_str(CT_SHAPE(x), s2, sizeof s2));
  return ct_meta_shape(m, x->shape, 4, x->dtype);
}
static int max_pool2d_backward_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *g = in[0], *x = in[1];
  ct_tensor *tg, *tx;
  const void *gp = ct_cpu_contig_data(g, &tg), *xp = ct_cpu_contig_data(x, &tx);
  int rc = gp && xp ? 0 : -1;
  if (!rc) {
    /* the 2x2 kernel writes all of dx that its windows cover; the rest (or all, for the scan) is 0 */
    if (!pool_is_22(a) || x->shape[2] != 2 * g->shape[2] || x->shape[3] != 2 * g->shape[3])
      memset(ct_data_ptr(out), 0, (size_t)ct_numel(out) * ct_dtype_size(out->dtype));
    int64_t planes = x->shape[0] * x->shape[1];
    pool_kernel(x->dtype, a)(xp, NULL, gp, ct_data_ptr(out), planes, x->shape[2], x->shape[3], a, g->shape[2],
                             g->shape[3]);
  }
  ct_release(tg), ct_release(tx);
  return rc;
}
const ct_opdef ct_op_max_pool2d_backward = {"max_pool2d_backward", 2, CT_OPF_NONDIFF_IN1, max_pool2d_backward_shape,
                                            max_pool2d_backward_cpu, NULL, pool_cost, NULL, NULL};

/* ---- public entry point --------------------------------------------------------------------- */

ct_tensor *ct_max_pool2d(ct_tensor *x, int kernel, int stride) {
  if (!x) return ct_errorf("max_pool2d: missing input"), NULL;
  if (kernel < 1) return ct_errorf("max_pool2d: kernel size must be >= 1, got %d", kernel), NULL;
  if (stride <= 0) stride = kernel; /* torch's default: stride = kernel */
  ct_attrs at = {0};
  at.i[0] = at.i[1] = kernel;
  at.i[2] = at.i[3] = stride;
  ct_tensor *in[1] = {x};
  return ct_op_run_batched(CT_OP_max_pool2d, in, 1, &at);
}
