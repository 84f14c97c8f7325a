/* flash_tc.cuh: the tensor-core FlashAttention kernels of kernels/flash_tc.cu, as attention.cu calls them
 * (bf16 storage, f32 accumulation; the shapes' struct the two files share).
 *
 * Invariants: pointers are the contiguous [batch, rows, width] arrays of attention.cu; L is written and
 * read in log2 units (L2 = (m + log l) * log2 e), so the statistics of ct_flash_tc_forward feed
 * ct_flash_tc_backward only, never the f32 kernels of attention.cu. */
#ifndef CHALK_KERNELS_FLASH_TC_CUH
#define CHALK_KERNELS_FLASH_TC_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

typedef struct {
  int64_t batch;
  int nq, nk, d, dv;
} ct_attn_dims;

/* O = softmax(scale Q K^T) V, or (o NULL) the row statistics L2 only. */
int ct_flash_tc_forward(const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v, __nv_bfloat16 *o,
                        float *L2, const ct_attn_dims &g, float scale, int causal, cudaStream_t s);
/* dK, dV into the packed output `out` ([dq | dk | dv] per batch element) and dQ (scaled) added into the
   zeroed f32 buffer dQ; L2 from ct_flash_tc_forward, D = rowsum(dO * O). */
int ct_flash_tc_backward(const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v,
                         const __nv_bfloat16 *dO, const float *L2, const float *D, float *dQ, __nv_bfloat16 *out,
                         const ct_attn_dims &g, float scale, int causal, cudaStream_t s);

#endif
