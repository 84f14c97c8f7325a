/* ops_quant.c: quantized weights (chalk.h's ct_qtensor: int8, int8_channel, q4, q8) and the qmatmul
 * row, a matmul whose second operand stays quantized: f32/f64 activations x [..., K] times a weight
 * W [N, K] kept as bytes, unpacked one row (CPU, cpu/quant.c) or one block (CUDA, kernels/quant.cu)
 * at a time, never as a whole f32 matrix.
 *
 *   qmatmul(x, data)   attrs i[0] format, i[1] N (rows), i[2] K (cols), i[3] transposed
 *     transposed 0:    y [..., N] = x [..., K] @ W^T     (nn.Linear with a quantized weight)
 *     transposed 1:    y [..., K] = x [..., N] @ W       (its gradient with respect to x)
 *   gradient:          dx = g @ W (the same row, transposed flipped); W is frozen, no gradient
 *   cost:              2 M N K FLOPs; bytes actually read: x, the quantized bytes, y
 *
 * Quantizing and dequantizing pack on the host and move the bytes to the weight's device; the
 * bytes are one storage, tagged "parameter", so the allocator counts a model's quantized size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/helpers.h"
#include "cpu/quant.h"
#include "ops/optable.h"

/* ---- the row ---------------------------------------------------------------------------------- */

static int qmm_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  const ct_tensor *x = in[0], *d = in[1];
  ct_qformat f = (ct_qformat)a->i[0];
  int64_t N = a->i[1], K = a->i[2], kin = a->i[3] ? N : K, kout = a->i[3] ? K : N;
  char s1[160];
  if (f < 0 || f >= CT_QNFORMATS || N < 1 || K < 1 || d->dtype != CT_I8 || d->ndim != 1 ||
      d->shape[0] != ct_qformat_bytes(f, N, K))
    return ct_errorf("qmatmul: the weight's bytes %s do not hold a %s weight of [%lld, %lld] (%lld bytes)",
                     ct_describe(d, s1, sizeof s1), ct_qformat_name(f), (long long)N, (long long)K,
                     (long long)(f >= 0 && f < CT_QNFORMATS ? ct_qformat_bytes(f, N, K) : 0));
  if (x->dtype != CT_F32 && x->dtype != CT_F64)
    return ct_errorf("qmatmul: activations must be f32 or f64, got %s", ct_describe(x, s1, sizeof s1));
  if (x->ndim < 1 || x->shape[x->ndim - 1] != kin) {
    int64_t ws[2] = {N, K};
    char s2[64];
    return ct_errorf("qmatmul: activations %s cannot multiply the %s weight %s as %s (last dim must be %lld)",
                     ct_shape_str(CT_SHAPE(x), s1, sizeof s1), ct_qformat_name(f), ct_shape_str(ws, 2, s2, sizeof s2),
                     a->i[3] ? "x @ W" : "x @ W^T", (long long)kin);
  }
  ct_meta_shape(m, x->shape, x->ndim, x->dtype);
  m->shape[m->ndim - 1] = kout;
  return 0;
}

static int qmm_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  ct_tensor *tmp = NULL;
  const void *x = ct_cpu_contig_data(in[0], &tmp);
  int64_t N = a->i[1], K = a->i[2], M = ct_numel(out) / (a->i[3] ? K : N);
  void *row = x ? malloc(ct_q_scratch_bytes(K, ct_dtype_size(out->dtype))) : NULL;
  int rc = row ? 0
           : x ? ct_errorf("qmatmul: out of memory for a tile of %d rows of %lld weights", CT_Q_TILE, (long long)K)
               : -1;
  if (!rc && out->dtype == CT_F32)
    ct_q_matmul_f32((ct_qformat)a->i[0], ct_data_ptr(in[1]), N, K, x, M, ct_data_ptr(out), a->i[3], row);
  else if (!rc)
    ct_q_matmul_f64((ct_qformat)a->i[0], ct_data_ptr(in[1]), N, K, x, M, ct_data_ptr(out), a->i[3], row);
  free(row);
  ct_release(tmp);
  return rc;
}

static int qmm_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_attrs a = n->attrs;
  a.i[3] = !a.i[3];
  a.impl = 0;
  ct_tensor *in[2] = {ct_contiguous(g), n->in[1]}; /* the kernels read activations row-major */
  gin[0] = in[0] ? ct_op_run(CT_OP_qmatmul, in, 2, &a) : NULL;
  ct_release(in[0]);
  return gin[0] ? 0 : -1;
}

static void qmm_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops,
                     double *bytes) {
  (void)nin;
  double isz = (double)ct_dtype_size(out->dtype), M = (double)ct_numel(out) / (double)(a->i[3] ? a->i[2] : a->i[1]);
  *flops = 2.0 * M * (double)a->i[1] * (double)a->i[2];
  *bytes = isz * (double)(ct_numel(in[0]) + ct_numel(out)) + (double)ct_numel(in[1]);
}

const ct_opdef ct_op_qmatmul = {"qmatmul",
                                2,
                                CT_OPF_NONDIFF_IN1,
                                qmm_shape,
                                qmm_cpu,
                                qmm_backward,
                                qmm_cost,
                                "dx = g @ W (W quantized, frozen: no gradient)",
                                NULL};

/* ---- quantized tensors -------------------------------------------------------------------------- */

static ct_qtensor *qt_new(ct_qformat f, int ndim, int64_t rows, int64_t cols, ct_tensor *data) {
  ct_qtensor *q = data ? malloc(sizeof *q) : NULL;
  if (!q) {
    if (data) ct_errorf("quantize: out of memory");
    ct_release(data);
    return NULL;
  }
  *q = (ct_qtensor){f, ndim, rows, cols, data};
  ct_set_category(data, CT_CAT_PARAMETER);
  return q;
}

ct_qtensor *ct_quantize(ct_tensor *w, ct_qformat f) {
  char s[200];
  if (!w) return ct_errorf("quantize: missing weight"), NULL;
  if (f < 0 || f >= CT_QNFORMATS) return ct_errorf("quantize: no format #%d", (int)f), NULL;
  if (w->dtype != CT_F32 && w->dtype != CT_F64)
    return ct_errorf("quantize(%s): weights must be f32 or f64, got %s", ct_qformat_name(f),
                     ct_describe(w, s, sizeof s)),
           NULL;
  if (w->ndim < 1 || w->ndim > 2 || ct_numel(w) == 0)
    return ct_errorf("quantize(%s): the weight must be 1-D or 2-D [rows, cols] and not empty (groups run along "
                     "the last dim), got %s",
                     ct_qformat_name(f), ct_describe(w, s, sizeof s)),
           NULL;
  int64_t rows = w->ndim == 2 ? w->shape[0] : 1, cols = w->shape[w->ndim - 1];
  ct_tensor *w32 = w->dtype == CT_F32 ? ct_retain(w) : ct_to_dtype(w, CT_F32);
  float *host = w32 ? malloc(sizeof(float) * (size_t)(rows * cols)) : NULL;
  int64_t nbytes = ct_qformat_bytes(f, rows, cols);
  ct_tensor *data = host ? ct_empty(&nbytes, 1, CT_I8, ct_cpu()) : NULL;
  int rc = data ? 0 : -1;
  if (w32 && !host) rc = ct_errorf("quantize: out of memory for %lld weights", (long long)(rows * cols));
  if (!rc) rc = ct_read_host(w32, host);
  if (!rc) rc = ct_q_pack(f, host, rows, cols, ct_data_ptr(data));
  free(host);
  ct_release(w32);
  if (!rc && w->storage->device.type != CT_CPU) {
    ct_tensor *moved = ct_to_device(data, w->storage->device);
    ct_release(data);
    data = moved;
    rc = data ? 0 : -1;
  }
  if (rc) return ct_release(data), NULL;
  return qt_new(f, w->ndim, rows, cols, data);
}

/* q's bytes on the host: its own when on the CPU, else a copy in *tmp. */
static const uint8_t *host_bytes(const ct_qtensor *q, ct_tensor **tmp) {
  *tmp = NULL;
  if (q->data->storage->device.type == CT_CPU) return ct_data_ptr(q->data);
  *tmp = ct_to_device(q->data, ct_cpu());
  return *tmp ? ct_data_ptr(*tmp) : NULL;
}

ct_tensor *ct_dequantize(const ct_qtensor *q) {
  if (!q || !q->data) return ct_errorf("dequantize: missing quantized tensor"), NULL;
  ct_tensor *tmp;
  const uint8_t *bytes = host_bytes(q, &tmp);
  int64_t shape[2] = {q->rows, q->cols};
  ct_tensor *w = bytes ? ct_empty(q->ndim == 2 ? shape : shape + 1, q->ndim, CT_F32, ct_cpu()) : NULL;
  for (int64_t r = 0; w && r < q->rows; r++)
    ct_q_unpack_row(q->format, bytes, q->rows, q->cols, r, (float *)ct_data_ptr(w) + r * q->cols);
  ct_release(tmp);
  if (w && q->data->storage->device.type != CT_CPU) {
    ct_tensor *moved = ct_to_device(w, q->data->storage->device);
    ct_release(w);
    w = moved;
  }
  return w;
}

ct_tensor *ct_qscales(const ct_qtensor *q) {
  if (!q || !q->data) return ct_errorf("quant scales: missing quantized tensor"), NULL;
  ct_tensor *tmp;
  const uint8_t *bytes = host_bytes(q, &tmp);
  int64_t shape[2] = {q->format == CT_QINT8 ? 1 : q->rows, ct_q_groups(q->format, q->cols)};
  ct_tensor *s = bytes ? ct_empty(shape, 2, CT_F32, ct_cpu()) : NULL;
  if (s) ct_q_steps(q->format, bytes, q->rows, q->cols, ct_data_ptr(s));
  ct_release(tmp);
  return s;
}

ct_tensor *ct_qmatmul(ct_tensor *x, const ct_qtensor *q, bool transposed) {
  if (!x || !q || !q->data) return ct_errorf("qmatmul: missing operand"), NULL;
  ct_attrs a = {0};
  a.i[0] = q->format, a.i[1] = q->rows, a.i[2] = q->cols, a.i[3] = transposed;
  ct_tensor *in[2] = {ct_contiguous(x), q->data}; /* the kernels read activations row-major */
  ct_tensor *y = in[0] ? ct_op_run(CT_OP_qmatmul, in, 2, &a) : NULL;
  ct_release(in[0]);
  return y;
}

ct_qtensor *ct_qtensor_to(const ct_qtensor *q, ct_device dev) {
  if (!q || !q->data) return ct_errorf("quant to: missing quantized tensor"), NULL;
  return qt_new(q->format, q->ndim, q->rows, q->cols, ct_to_device(q->data, dev));
}

double ct_qtensor_bits(const ct_qtensor *q) { return 8.0 * (double)q->data->shape[0] / (double)(q->rows * q->cols); }

void ct_qtensor_free(ct_qtensor *q) {
  if (!q) return;
  ct_release(q->data);
  free(q);
}
