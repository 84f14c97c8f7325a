/* quant.cu: the CUDA forward of qmatmul (core/ops/ops_quant.c), reading the byte layout of
 * core/cpu/quant.h directly: no f32 copy of the weight is ever made.
 *   y = x @ W^T: one warp per (row n of W, 4 rows of x); lane l reads element l of each 32-wide
 *     run of the row (for q4/q8, element l of each block: coalesced bytes, the step broadcast),
 *     multiplies it into 4 partial sums, and the warp reduces them.
 *   y = x @ W (the gradient): one thread per output element (m, k), looping over the rows of W.
 * A weight is decoded as (float)code * d, the product the CPU computes, so both read the same W.
 * Activations arrive contiguous (ct_qmatmul and the gradient rule make them so). */
#include <cuda_fp16.h>

#include "cu_util.cuh"
extern "C" {
#include "cpu/quant.h"
}

struct qweight {
  const uint8_t *p;
  int fmt;
  int64_t rows, cols, nb; /* nb: blocks per row (q4, q8) */
};

__device__ __forceinline__ float qdecode(const qweight &w, int64_t n, int64_t k) {
  if (w.fmt == CT_QINT8 || w.fmt == CT_QINT8_CHANNEL) {
    float d = ((const float *)w.p)[w.fmt == CT_QINT8 ? 0 : n];
    int64_t base = w.fmt == CT_QINT8 ? 4 : 4 * w.rows;
    return (float)(int8_t)w.p[base + n * w.cols + k] * d;
  }
  int64_t b = k / CT_QBLOCK, j = k % CT_QBLOCK;
  const uint8_t *blk = w.p + (n * w.nb + b) * (w.fmt == CT_QQ4 ? 2 + CT_QBLOCK / 2 : 2 + CT_QBLOCK);
  float d = __half2float(*(const __half *)blk);
  if (w.fmt == CT_QQ8) return (float)(int8_t)blk[2 + j] * d;
  uint8_t byte = blk[2 + (j % (CT_QBLOCK / 2))];
  return (float)((j < CT_QBLOCK / 2 ? byte & 0x0F : byte >> 4) - 8) * d;
}

#define QMM_ROWS 4 /* rows of x per warp */

template <typename T> __global__ void qmm_kernel(qweight w, const T *x, T *y, int64_t M) {
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  int64_t n = warp % w.rows, m0 = warp / w.rows * QMM_ROWS;
  if (m0 >= M) return;
  T acc[QMM_ROWS] = {0};
  for (int64_t k = lane; k < w.cols; k += 32) {
    T v = (T)qdecode(w, n, k);
    for (int i = 0; i < QMM_ROWS; i++)
      if (m0 + i < M) acc[i] += x[(m0 + i) * w.cols + k] * v;
  }
  for (int i = 0; i < QMM_ROWS; i++) {
    for (int off = 16; off > 0; off /= 2) acc[i] += __shfl_down_sync(0xffffffffu, acc[i], off);
    if (lane == 0 && m0 + i < M) y[(m0 + i) * w.rows + n] = acc[i];
  }
}

template <typename T> __global__ void qmm_t_kernel(qweight w, const T *x, T *y, int64_t M) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M * w.cols) return;
  int64_t m = i / w.cols, k = i % w.cols;
  T acc = 0;
  for (int64_t n = 0; n < w.rows; n++) acc += x[m * w.rows + n] * (T)qdecode(w, n, k);
  y[i] = acc;
}

static int qmm_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  if (!ct_is_contiguous(in[0]))
    return ct_errorf("qmatmul: the CUDA kernel reads contiguous activations (ct_qmatmul makes them so)");
  qweight w = {(const uint8_t *)ct_data_ptr(in[1]), (int)a->i[0], a->i[1], a->i[2], 0};
  w.nb = (w.cols + CT_QBLOCK - 1) / CT_QBLOCK;
  bool t = a->i[3] != 0;
  int64_t M = ct_numel(out) / (t ? w.cols : w.rows);
  if (M == 0) return 0;
  cudaStream_t s = ct_cu_stream(ct_cu_index(out));
  const int threads = 128;
  int64_t work = t ? M * w.cols : w.rows * ((M + QMM_ROWS - 1) / QMM_ROWS) * 32;
  unsigned blocks = (unsigned)((work + threads - 1) / threads);
  bool f64 = out->dtype == CT_F64;
  if (!t && !f64)
    qmm_kernel<float><<<blocks, threads, 0, s>>>(w, (const float *)ct_data_ptr(in[0]), (float *)ct_data_ptr(out), M);
  else if (!t)
    qmm_kernel<double><<<blocks, threads, 0, s>>>(w, (const double *)ct_data_ptr(in[0]), (double *)ct_data_ptr(out), M);
  else if (!f64)
    qmm_t_kernel<float><<<blocks, threads, 0, s>>>(w, (const float *)ct_data_ptr(in[0]), (float *)ct_data_ptr(out), M);
  else
    qmm_t_kernel<double>
        <<<blocks, threads, 0, s>>>(w, (const double *)ct_data_ptr(in[0]), (double *)ct_data_ptr(out), M);
  return ct_cu_check_launch("qmatmul");
}

CT_CU_FORWARD(qmatmul, qmm_impl)

extern "C" void ct_cu_register_quant(void) { CT_CU_REGISTER(qmatmul) }
