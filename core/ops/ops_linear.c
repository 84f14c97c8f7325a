/* ops_linear.c: the linear row, y = x W^T + b in one op (on CUDA one cuBLASLt GEMM with the bias in its epilogue).
 *
 * nn.Linear on a GPU ran matmul then a broadcast add (two launches, the output written and read
 * again); PyTorch's addmm puts the bias into the GEMM. This row does the same: x [..., K], W [N, K],
 * b [N] -> y [..., N]. The CPU forward is a plain loop (F.linear uses it only where asked: the CPU
 * keeps matmul + add, which BLAS makes fast); kernels/cublaslt_linear.c is the CUDA forward.
 * Gradient rule, with table ops: dx = g W, dW = g2^T x2, db = sum of g2 over rows (g2, x2: g and x
 * as [M, N] and [M, K]), so double backward works. */
#include <string.h>

#include "ops/optable.h"

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
