/* ladder.h: the matmul ladder of the GPU lesson: one f32 matrix product C = A B computed by a
 * chosen implementation, from the textbook kernel to cuBLAS. Rungs, in teaching order:
 *   "naive"        one thread per C element, threads of a warp walk down C's column (uncoalesced)
 *   "coalesced"    the same, threads of a warp along C's row (coalesced loads and stores)
 *   "tiled"        32x32 tiles staged in shared memory (each A/B element read K/32 times less)
 *   "register2d"   128x128 block tiles, 8x8 outputs per thread held in registers
 *   "vectorized"   register2d with 16-byte (float4) global loads and a transposed A tile
 *   "warptile"     vectorized with a warp-level tile between block and thread (fewer shared loads)
 *   "wmma_tf32"    tensor cores through WMMA, inputs rounded to TF32, f32 accumulation
 *   "wmma_bf16"    tensor cores through WMMA, inputs rounded to bf16, f32 accumulation
 *   "wgmma_tf32"   Hopper's warpgroup tensor-core instructions (wgmma), TF32, a 4-stage cp.async ring
 *                  of 128-byte-swizzled shared memory (ladder_tc.cu; compute capability 9.0 only)
 *   "wgmma_bf16"   the same in bf16
 *   "cublas"       cuBLAS SGEMM in true f32 (the reference; chalk's matmul op uses it)
 *   "cublas_tf32"  cuBLAS with TF32 tensor cores
 *   "cublas_bf16"  cuBLAS on bf16 copies of the inputs, f32 accumulation and output
 * Each rung is an implementation of the matmul row (ladder.cu registers them at start-up, see
 * core/ops/impls.c): x:matmul(y, {impl = "warptile"}) or ct_matmul_impl(a, b, "warptile", NULL)
 * runs it through ct_op_run, with its op event "matmul[<impl>]", GPU times, autograd and capture.
 * Operands: 2-D f32 on one CUDA device (non-contiguous ones are copied first). */
#ifndef CHALK_KERNELS_LADDER_H
#define CHALK_KERNELS_LADDER_H

#include "chalk.h"

/* The rungs in ladder order (one X per name). */
#define CT_LADDER_IMPLS(X)                                                                         \
  X(naive) X(coalesced) X(tiled) X(register2d) X(vectorized) X(warptile) X(wmma_tf32) X(wmma_bf16) \
  X(wgmma_tf32) X(wgmma_bf16) X(cublas) X(cublas_tf32) X(cublas_bf16)

#endif
