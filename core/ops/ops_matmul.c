/* ops_matmul.c: matrix multiplication with torch.matmul semantics: the matmul row (shape rule,
 * gradient, cost), its implementations (core/ops/impls.c: "blas", the default, in
 * core/cpu/matmul_blas.c; the rungs "naive", "reordered", "tiled" in core/cpu/matmul_ladder.c;
 * CUDA's registered by kernels/), and the public entry points; and the linear row (x W^T + b, below).
 *
 * The op works on (..., n, k) @ (..., k, m) -> (..., n, m) with broadcast batch dims; ct_matmul
 * turns 1-D operands into matrices with unsqueeze/squeeze views so that autograd sees them.
 * Only f32 and f64 are supported; integers are a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/matmul_ladder.h"
#include "ops/grad_expr.h"
#include "ops/optable.h"

/* ---- shape rule ------------------------------------------------------------------------------ */

static int mm_check_dtypes(const ct_tensor *a, const ct_tensor *b) {
  if (a->dtype != b->dtype)
    return ct_errorf("matmul: dtype mismatch: %s and %s (convert one with :to(\"%s\"))", ct_dtype_name(a->dtype),
                     ct_dtype_name(b->dtype), ct_dtype_name(ct_promote(a->dtype, b->dtype)));
  if (a->dtype != CT_F32 && a->dtype != CT_F64)
    return ct_errorf("matmul: dtype %s is not supported (matmul runs in f32 or f64; convert with :to(\"f32\"))",
                     ct_dtype_name(a->dtype));
  return 0;
}

/* Broadcast batch shape of a[..., n, k] and b[..., k, m] (both at least 2-D) into m. */
static int mm_batch_shape(const ct_tensor *a, const ct_tensor *b, ct_meta *m) {
  int na = a->ndim - 2, nb = b->ndim - 2, nd = na > nb ? na : nb;
  m->ndim = nd;
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - na), db = d - (nd - nb);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char s1[160], s2[160];
      return ct_errorf("matmul: batch dims of shapes %s and %s cannot be broadcast together (%lld vs %lld)",
                       ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(b->shape, b->ndim, s2, sizeof s2),
                       (long long)sa, (long long)sb);
    }
    m->shape[d] = sa == 1 ? sb : sa;
  }
  return 0;
}

static int mm_k_error(const ct_tensor *a, const ct_tensor *b, int64_t ka, int64_t kb) {
  char s1[160], s2[160];
  return ct_errorf("matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                   ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(b->shape, b->ndim, s2, sizeof s2),
                   (long long)ka, (long long)kb);
}

static int matmul_shape(ct_tensor *const *in, int nin, const ct_attrs *at, ct_meta *m) {
  (void)nin, (void)at;
  const ct_tensor *a = in[0], *b = in[1];
  if (mm_check_dtypes(a, b)) return -1;
  if (a->ndim < 2 || b->ndim < 2)
    return ct_errorf("matmul: the op needs two operands of at least 2 dims (ct_matmul handles 1-D)");
  int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim - 2];
  if (ka != kb) return mm_k_error(a, b, ka, kb);
  if (mm_batch_shape(a, b, m)) return -1;
  m->shape[m->ndim++] = a->shape[a->ndim - 2];
  m->shape[m->ndim++] = b->shape[b->ndim - 1];
  m->dtype = a->dtype;
  return 0;
}

/* ---- gradient and cost ------------------------------------------------------------------------ */

static bool mm_has_batch(const ct_tensor *t) {
  for (int d = 0; d < t->ndim - 2; d++)
    if (t->shape[d] != 1) return true;
  return false;
}

/* gA = g @ B^T, gB = A^T @ g, each summed back to its input's shape where batch dims broadcast.
   When B has no batch of its own, gB folds A's batches into rows: flatten(A)^T @ flatten(g). */
static int matmul_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *A = n->in[0], *B = n->in[1];
  if (ct_node_needs_grad(n, 0)) {
    gin[0] = O_SUM_TO(O_MATMUL(R(g), ct_transpose(B, -1, -2)), CT_SHAPE(A));
    if (!gin[0]) return -1;
  }
  if (ct_node_needs_grad(n, 1)) {
    /* B a transposed view of a row-major matrix (nn.Linear's x @ w.T): gB = (g^T A)^T has B's
       layout, so the transpose's own gradient, hence the weight's, comes out contiguous and is
       not copied again when it is accumulated (as A^T g it was, 13% of an MLP step). */
    bool b_colmajor = B->ndim == 2 && B->stride[0] == 1 && B->stride[1] != 1 && B->shape[0] > 1 && B->shape[1] > 1;
    int64_t fa[2] = {-1, A->shape[A->ndim - 1]}, fg[2] = {-1, g->shape[g->ndim - 1]};
    if (b_colmajor) {
      gin[1] = O_TRANSPOSE(O_MATMUL(O_TRANSPOSE(ct_reshape(g, fg, 2), 0, 1), ct_reshape(A, fa, 2)), 0, 1);
    } else if (!mm_has_batch(B) && mm_has_batch(A)) {
      gin[1] = O_RESHAPE(O_MATMUL(O_TRANSPOSE(ct_reshape(A, fa, 2), 0, 1), ct_reshape(g, fg, 2)), CT_SHAPE(B));
    } else {
      gin[1] = O_SUM_TO(O_MATMUL(ct_transpose(A, -1, -2), R(g)), CT_SHAPE(B));
    }
    if (!gin[1]) return -1;
  }
  return 0;
}

static void matmul_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *at, double *flops,
                        double *bytes) {
  (void)nin, (void)at;
  double k = (double)in[0]->shape[in[0]->ndim - 1];
  double isz = (double)ct_dtype_size(out->dtype);
  *flops = 2.0 * (double)ct_numel(out) * k; /* 2 * n * k * m * batch */
  *bytes = isz * (double)(ct_numel(in[0]) + ct_numel(in[1]) + ct_numel(out));
}

const ct_opdef ct_op_matmul = {"matmul", 2, 0, matmul_shape, ct_cpu_matmul_blas, matmul_backward, matmul_cost, "dA = g @ B^T; dB = A^T @ g", NULL};

/* ---- public entry point: torch.matmul's 1-D rules around the batched op ----------------------- */

static ct_tensor *mm_fail(const ct_tensor *a, const ct_tensor *b) {
  char msg[700], d1[200], d2[200];
  snprintf(msg, sizeof msg, "%s", ct_last_error());
  ct_errorf("%s (inputs: %s, %s)", msg, ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2));
  return NULL;
}

/* torch.matmul's rules, then the op with attributes at (an implementation, its tiles) */
static ct_tensor *matmul_with(ct_tensor *a, ct_tensor *b, const ct_attrs *at) {
  if (!a || !b) return ct_errorf("matmul: missing operand"), NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    ct_errorf("matmul: both operands need at least 1 dim (use mul for a scalar)");
    return mm_fail(a, b);
  }
  if (mm_check_dtypes(a, b)) return mm_fail(a, b);
  int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
  if (ka != kb) {
    mm_k_error(a, b, ka, kb);
    return mm_fail(a, b);
  }
  bool a1 = a->ndim == 1, b1 = b->ndim == 1;
  /* a rung (an implementation with its own loops) reads contiguous operands */
  const ct_opimpl *im = at && at->impl ? ct_op_impl(CT_OP_matmul, at->impl) : NULL;
  bool rung = im && im->fn;
  ct_tensor *A = a1 ? ct_unsqueeze(a, 0) : rung ? ct_contiguous(a) : ct_retain(a);
  ct_tensor *B = b1 ? ct_unsqueeze(b, -1) : rung ? ct_contiguous(b) : ct_retain(b);
  ct_meta bm;
  if (A && B && mm_batch_shape(A, B, &bm)) {
    ct_release(A), ct_release(B);
    return mm_fail(a, b);
  }
  ct_tensor *in[2] = {A, B};
  ct_tensor *r = A && B ? ct_op_run(CT_OP_matmul, in, 2, at) : NULL;
  ct_release(A), ct_release(B);
  if (r && b1) {
    ct_tensor *s = ct_squeeze(r, r->ndim - 1);
    ct_release(r);
    r = s;
  }
  if (r && a1) {
    ct_tensor *s = ct_squeeze(r, b1 ? r->ndim - 1 : r->ndim - 2);
    ct_release(r);
    r = s;
  }
  return r;
}

ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b) { return matmul_with(a, b, NULL); }

ct_tensor *ct_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl, const int *tiles) {
  if (!a || !b) return ct_errorf("matmul: missing operand"), NULL;
  ct_attrs at = {0};
  if (impl && *impl) {
    at.impl = ct_op_impl_find(CT_OP_matmul, impl, a->storage->device.type);
    if (at.impl < 0) return NULL;
  }
  for (int i = 0; tiles && i < 3; i++) {
    if (tiles[i] < 1) return ct_errorf("matmul(impl=%s): tiles must be positive, got %d", impl ? impl : "", tiles[i]), NULL;
    at.i[i] = tiles[i];
  }
  return matmul_with(a, b, &at);
}

/* ---- the old side doors, thin aliases of ct_matmul_impl ---------------------------------------- */

ct_tensor *ct_cpu_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl) {
  if (!impl || !strcmp(impl, "openblas")) impl = "blas";
  char d1[200], d2[200];
  if (!a || !b) return ct_errorf("cpu.matmul(impl=%s): missing operand", impl), NULL;
  if (ct_op_impl_find(CT_OP_matmul, impl, CT_CPU) < 0) return NULL;
  if (a->ndim != 2 || b->ndim != 2 || a->dtype != CT_F32 || b->dtype != CT_F32 || a->storage->device.type != CT_CPU ||
      b->storage->device.type != CT_CPU || a->shape[1] != b->shape[0])
    return ct_errorf("cpu.matmul(impl=%s): expects [M,K] and [K,N] f32 tensors on the cpu, got %s and %s", impl,
                     ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2)),
           NULL;
  return ct_matmul_impl(a, b, impl, NULL);
}

ct_tensor *ct_cuda_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl) {
  if (!ct_cuda_available())
    return ct_errorf("cuda.matmul(impl=%s): CUDA is not available (%s)", impl ? impl : "cublas",
                     ct_cuda_unavailable_reason()),
           NULL;
  if (!a || !b) return ct_errorf("cuda.matmul(impl=%s): missing operand", impl ? impl : "cublas"), NULL;
  int k = ct_op_impl_find(CT_OP_matmul, impl ? impl : "cublas", CT_CUDA);
  if (k < 0) return NULL;
  ct_attrs at = {0};
  at.impl = k;
  return matmul_with(a, b, &at);
}

const char *const *ct_cuda_matmul_impls(int *n) {
  static const char *names[CT_MAX_IMPLS];
  int c = 0;
  for (int k = 1; k <= ct_op_impl_count(CT_OP_matmul); k++)
    if (ct_op_impl(CT_OP_matmul, k)->dev == CT_CUDA) names[c++] = ct_op_impl(CT_OP_matmul, k)->name;
  *n = c;
  return names;
}

/* ---- linear: y = x W^T + b in one op (on CUDA one cuBLASLt GEMM with the bias in its epilogue) ------
 *
 * nn.Linear on a GPU ran matmul then a broadcast add (two launches, the output written and read
 * again); PyTorch's addmm puts the bias into the GEMM. This row does the same: x [..., K], W [N, K],
 * b [N] -> y [..., N]. The CPU forward is a plain loop (F.linear uses it only where asked: the CPU
 * keeps matmul + add, which BLAS makes fast); kernels/cublaslt_linear.c is the CUDA forward.
 * Gradient rule, with table ops: dx = g W, dW = g2^T x2, db = sum of g2 over rows (g2, x2: g and x
 * as [M, N] and [M, K]), so double backward works. */

static int linear_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  const ct_tensor *x = in[0], *w = in[1], *b = in[2];
  char s1[160], s2[160], s3[160];
  if (!ct_dtype_is_float(x->dtype) || w->dtype != x->dtype || b->dtype != x->dtype)
    return ct_errorf("x, weight and bias must share one float dtype, got %s, %s, %s", ct_dtype_name(x->dtype),
                     ct_dtype_name(w->dtype), ct_dtype_name(b->dtype));
  if (x->ndim < 1 || w->ndim != 2 || b->ndim != 1 || x->shape[x->ndim - 1] != w->shape[1] || b->shape[0] != w->shape[0])
    return ct_errorf("x %s, weight %s and bias %s do not fit y = x W^T + b (x [..., K], W [N, K], b [N])",
                     ct_shape_str(x->shape, x->ndim, s1, sizeof s1), ct_shape_str(w->shape, w->ndim, s2, sizeof s2),
                     ct_shape_str(b->shape, b->ndim, s3, sizeof s3));
  memset(m, 0, sizeof *m);
  m->dtype = x->dtype;
  m->ndim = x->ndim;
  memcpy(m->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  m->shape[x->ndim - 1] = w->shape[0];
  ct_contiguous_strides(m->shape, m->ndim, m->stride);
  return 0;
}

/* element (i, k) of a tensor seen as rows of its last dim (any strides) */
static double at2(const ct_tensor *t, int64_t row, int64_t k) {
  int64_t off = t->offset, r = row;
  for (int d = t->ndim - 2; d >= 0; d--) {
    off += (r % t->shape[d]) * t->stride[d];
    r /= t->shape[d];
  }
  off += k * t->stride[t->ndim - 1];
  const char *p = (const char *)t->storage->data + off * (int64_t)ct_dtype_size(t->dtype);
  return t->dtype == CT_F32 ? (double)*(const float *)p : *(const double *)p;
}
static int linear_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  const ct_tensor *x = in[0], *w = in[1], *b = in[2];
  if (x->dtype != CT_F32 && x->dtype != CT_F64) return ct_errorf("the CPU forward takes f32 or f64");
  int64_t K = w->shape[1], N = w->shape[0], M = K ? ct_numel(x) / K : ct_numel(out) / (N ? N : 1);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += at2(x, i, k) * at2(w, j, k);
      s += at2(b, 0, j);
      if (out->dtype == CT_F32)
        ((float *)ct_data_ptr(out))[i * N + j] = (float)s;
      else
        ((double *)ct_data_ptr(out))[i * N + j] = s;
    }
  return 0;
}

static int linear_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *x = n->in[0], *w = n->in[1];
  int64_t K = w->shape[1], N = w->shape[0], M = K ? ct_numel(x) / K : 0;
  if (ct_node_needs_grad(n, 0) && !(gin[0] = ct_matmul(g, w))) return -1;
  if (!ct_node_needs_grad(n, 1) && !ct_node_needs_grad(n, 2)) return 0;
  int64_t gs[2] = {M, N}, xs[2] = {M, K};
  ct_tensor *g2 = ct_reshape(g, gs, 2);
  if (!g2) return -1;
  if (ct_node_needs_grad(n, 1)) {
    ct_tensor *x2 = ct_reshape(x, xs, 2), *gt = ct_transpose(g2, 0, 1);
    gin[1] = x2 && gt ? ct_matmul(gt, x2) : NULL;
    ct_release(x2), ct_release(gt);
    if (!gin[1]) return ct_release(g2), -1;
  }
  if (ct_node_needs_grad(n, 2)) {
    int d0 = 0;
    gin[2] = ct_sum(g2, &d0, 1, false);
    if (!gin[2]) return ct_release(g2), -1;
  }
  ct_release(g2);
  return 0;
}

static void linear_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)a;
  double K = (double)in[1]->shape[1], sz = (double)ct_dtype_size(out->dtype);
  *f = 2.0 * K * (double)ct_numel(out) + (double)ct_numel(out);
  *b = sz * ((double)ct_numel(in[0]) + (double)ct_numel(in[1]) + (double)ct_numel(in[2]) + (double)ct_numel(out));
}

const ct_opdef ct_op_linear = {
    "linear", 3, 0, linear_shape, linear_cpu, linear_backward, linear_cost, "dx = g W; dW = g^T x; db = sum_rows g",
    NULL};

ct_tensor *ct_linear(ct_tensor *x, ct_tensor *w, ct_tensor *b) {
  if (!x || !w || !b) return ct_errorf("linear: missing %s", !x ? "x" : !w ? "weight" : "bias"), NULL;
  ct_tensor *in[3] = {x, w, b};
  return ct_op_run(CT_OP_linear, in, 3, NULL);
}
