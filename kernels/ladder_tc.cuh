/* ladder_tc.cuh: the entry of kernels/ladder_tc.cu (the ladder's wgmma rungs) as ladder.cu calls it. */
#ifndef CHALK_KERNELS_LADDER_TC_CUH
#define CHALK_KERNELS_LADDER_TC_CUH

/* Row-major f32 C[M, N] = A[M, K] B[K, N] on device dev's stream, the operands rounded to bf16 (bf16 != 0)
   or TF32; 0, or -1 with the error set (a device that is not compute capability 9.0, say). */
int ct_ladder_wgmma(int bf16, int dev, int M, int N, int K, const float *A, const float *B, float *C);

#endif
