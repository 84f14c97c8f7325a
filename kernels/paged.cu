/* paged.cu: the CUDA forward of paged_attention (core/ops/ops_paged.c): one CTA per (sequence, head),
 * one thread per element of the head dim; keys are visited in order through the block table with an
 * online softmax (running max, sum and output), each score reduced across the CTA in shared memory.
 * Simple rather than fast: the lesson's point is the indirection, and this is its parity reference. */
#include <math.h>
#include <stdlib.h>

#include "cu_util.cuh"
#include "ops/paged.h"

template <typename T>
__global__ void paged_kernel(const T *q, const T *k, const T *v, const int64_t *bt, const int64_t *len, T *o,
                             int64_t H, int64_t D, int64_t M, int64_t S, double scale) {
  extern __shared__ double red[];
  int64_t b = blockIdx.x / H, h = blockIdx.x % H;
  int d = threadIdx.x;
  bool on = d < D;
  double qd = on ? (double)q[(b * H + h) * D + d] : 0.0;
  double m = -INFINITY, z = 0, acc = 0;
  for (int64_t t = 0; t < len[b]; t++) {
    int64_t row = ((bt[b * M + t / S] - 1) * S + t % S) * H + h;
    red[d] = on ? qd * (double)k[row * D + d] : 0.0;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (d < w) red[d] += red[d + w];
      __syncthreads();
    }
    double s = red[0] * scale;
    __syncthreads();
    double mn = fmax(m, s), c = exp(m - mn), p = exp(s - mn);
    z = z * c + p;
    acc = acc * c + (on ? p * (double)v[row * D + d] : 0.0);
    m = mn;
  }
  if (on) o[(b * H + h) * D + d] = (T)(acc / z);
}

static int paged_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  int64_t B = in[0]->shape[0], H = in[0]->shape[1], D = in[0]->shape[2];
  int64_t NB = in[1]->shape[0], S = in[1]->shape[1], M = in[3]->shape[1];
  if (D > 1024) return ct_errorf("paged_attention: head dim %lld is over 1024 (one thread per element)", (long long)D);
  if (!B || !H || !D) return 0;
  cudaStream_t s = ct_cu_stream(ct_cu_index(out));
  ct_tensor *tmp[5] = {NULL, NULL, NULL, NULL, NULL};
  const void *p[5];
  int rc = 0;
  for (int i = 0; i < 5 && !rc; i++)
    if (!(p[i] = ct_cu_contiguous_data(in[i], &tmp[i]))) rc = -1;
  int64_t *hbt = (int64_t *)malloc((size_t)(B * M + B) * sizeof(int64_t));
  if (!rc && !hbt) rc = ct_errorf("paged_attention: out of host memory for the block table");
  if (!rc) rc = ct_cu_check(cudaMemcpyAsync(hbt, p[3], (size_t)(B * M) * 8, cudaMemcpyDeviceToHost, s), "paged_attention");
  if (!rc) rc = ct_cu_check(cudaMemcpyAsync(hbt + B * M, p[4], (size_t)B * 8, cudaMemcpyDeviceToHost, s), "paged_attention");
  if (!rc) rc = ct_cu_check(cudaStreamSynchronize(s), "paged_attention");
  if (!rc) rc = ct_paged_check_tables(hbt, hbt + B * M, B, M, NB, S);
  free(hbt);
  if (!rc) {
    int threads = 32;
    while (threads < D) threads *= 2;
    size_t smem = (size_t)threads * sizeof(double);
    double scale = 1.0 / sqrt((double)D);
    if (out->dtype == CT_F32)
      paged_kernel<float><<<(unsigned)(B * H), threads, smem, s>>>(
          (const float *)p[0], (const float *)p[1], (const float *)p[2], (const int64_t *)p[3], (const int64_t *)p[4],
          (float *)ct_data_ptr(out), H, D, M, S, scale);
    else
      paged_kernel<double><<<(unsigned)(B * H), threads, smem, s>>>(
          (const double *)p[0], (const double *)p[1], (const double *)p[2], (const int64_t *)p[3],
          (const int64_t *)p[4], (double *)ct_data_ptr(out), H, D, M, S, scale);
    rc = ct_cu_check_launch("paged_attention");
  }
  for (int i = 0; i < 5; i++) ct_release(tmp[i]);
  return rc;
}

CT_CU_FORWARD(paged_attention, paged_impl)

extern "C" void ct_cu_register_paged(void) { ct_cuda_forward[CT_OP_paged_attention] = paged_attention_cuda; }
