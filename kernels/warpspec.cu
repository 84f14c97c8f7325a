/* warpspec.cu: lesson 19's warp-specialized GEMM (see warpspec.h): one producer warp fills a ring of
 * shared-memory slots with cp.async, eight consumer warps compute from it, mbarriers between them. */
#include <stdint.h>

#include "cu_util.cuh"
#include "warpspec.h"

/* ---- the synchronisation primitives (PTX) ------------------------------------------------------
 * An mbarrier is a 64-bit word in shared memory counting arrivals toward an expected count; when
 * the count is reached its phase flips (parity 0, 1, 0, ...) and waiters on that phase go on. */
__device__ __forceinline__ uint32_t ws_smem(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(ws_smem(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *b) {
  asm volatile("{\n\t.reg .b64 st;\n\tmbarrier.arrive.shared.b64 st, [%0];\n\t}" ::"r"(ws_smem(b)) : "memory");
}
/* Waits until the phase of the given parity has completed. */
__device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity) {
  uint32_t done;
  do {
#if __CUDA_ARCH__ >= 900
    asm volatile("{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(done)
                 : "r"(ws_smem(b)), "r"(parity)
                 : "memory");
#else
    asm volatile("{\n\t.reg .pred p;\n\tmbarrier.test_wait.parity.shared.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(done)
                 : "r"(ws_smem(b)), "r"(parity)
                 : "memory");
#endif
  } while (!done);
}
/* Asynchronous global -> shared copies of 4 or 16 bytes; src_bytes 0 writes zeros (the edges). */
__device__ __forceinline__ void cp_async4(float *dst, const float *src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(ws_smem(dst)), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async16(float *dst, const float *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(ws_smem(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
/* The barrier receives one arrival when all of this thread's earlier cp.async copies have landed. */
__device__ __forceinline__ void cp_async_arrive(uint64_t *b) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" ::"r"(ws_smem(b)) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

/* ==== the warp-specialized GEMM ===================================================================
 * A 128 x 128 tile of C per block; K in slices of 16. A slot holds A's slice (As[m][k], rows padded
 * to 20 floats) and B's slice (Bs[k][n]). Warp 0 produces: for slice i it waits until slot i % S is
 * empty (the consumers released slice i - S), issues the copies (16 bytes each when K and N are
 * multiples of 4, else 4) and arms the slot's "full" barrier. Warps 1..8 consume: each thread owns
 * an 8 x 8 block of C (rows tr*4.., 64+tr*4.., columns likewise, so a warp's float4 reads of B are
 * contiguous and its reads of A are broadcasts). */
constexpr int WS_BM = 128, WS_BN = 128, WS_BK = 16, WS_AST = WS_BK + 4;
constexpr int WS_SLOT = WS_BM * WS_AST + WS_BK * WS_BN; /* floats per slot */
constexpr int WS_THREADS = 32 * (1 + CT_WS_CONSUMERS);
constexpr int WS_BAR_BYTES = 16 * CT_WS_MAX_STAGES; /* full[8] and empty[8] */

__device__ __forceinline__ float ws_comp(const float4 &v, int q) {
  return q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w;
}

/* One warp's copies of a ROWS x COLS tile at (r0, c0) of a rows x cols row-major matrix (leading
   dimension ld) into dst (leading dimension dld), W floats per copy (4: the caller checked that
   cols % 4 == 0 and src is 16-byte aligned, so a float4 is all inside or all outside). Lanes run
   along a row: each warp instruction reads whole row pieces. */
template <int ROWS, int COLS, int W>
__device__ __forceinline__ void ws_copy_tile(float *dst, int dld, const float *src, int ld, int r0, int c0, int rows,
                                             int cols, int lane) {
  constexpr int PER_ROW = COLS / W;
#pragma unroll 8
  for (int j = 0; j < ROWS * PER_ROW / 32; j++) {
    int e = lane + 32 * j, r = e / PER_ROW, c = (e % PER_ROW) * W, gr = r0 + r, gc = c0 + c;
    bool ok = gr < rows && gc < cols;
    const float *from = ok ? src + (size_t)gr * ld + gc : src;
    if (W == 4)
      cp_async16(&dst[r * dld + c], from, ok ? 16 : 0);
    else
      cp_async4(&dst[r * dld + c], from, ok ? 4 : 0);
  }
}

__global__ void __launch_bounds__(WS_THREADS)
    k_ws_gemm(int M, int N, int K, const float *__restrict__ A, const float *__restrict__ B, float *__restrict__ C,
              int S, bool vecA, bool vecB, long long *stamps) {
  extern __shared__ __align__(16) unsigned char ws_shared[];
  uint64_t *full = (uint64_t *)ws_shared, *empty = full + CT_WS_MAX_STAGES;
  float *ring = (float *)(ws_shared + WS_BAR_BYTES);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int m0 = blockIdx.y * WS_BM, n0 = blockIdx.x * WS_BN, nk = (K + WS_BK - 1) / WS_BK;
  const bool rec = stamps && blockIdx.x == 0 && blockIdx.y == 0 && lane == 0;
  if (threadIdx.x == 0)
    for (int s = 0; s < S; s++) mbar_init(&full[s], 32), mbar_init(&empty[s], 32 * CT_WS_CONSUMERS);
  __syncthreads();

  if (warp == 0) { /* ---- the producer ---- */
    for (int i = 0; i < nk; i++) {
      const int s = i % S, k0 = i * WS_BK;
      long long t0 = clock64();
      if (i >= S) mbar_wait(&empty[s], ((i / S) - 1) & 1);
      long long t1 = clock64();
      float *As = ring + s * WS_SLOT, *Bs = As + WS_BM * WS_AST;
      if (vecA)
        ws_copy_tile<WS_BM, WS_BK, 4>(As, WS_AST, A, K, m0, k0, M, K, lane);
      else
        ws_copy_tile<WS_BM, WS_BK, 1>(As, WS_AST, A, K, m0, k0, M, K, lane);
      if (vecB)
        ws_copy_tile<WS_BK, WS_BN, 4>(Bs, WS_BN, B, N, k0, n0, K, N, lane);
      else
        ws_copy_tile<WS_BK, WS_BN, 1>(Bs, WS_BN, B, N, k0, n0, K, N, lane);
      cp_async_arrive(&full[s]);
      if (rec) {
        long long *p = stamps + (size_t)i * 3;
        p[0] = t0, p[1] = t1, p[2] = clock64();
      }
    }
    cp_async_wait_all(); /* the copies land before the warp exits */
    return;
  }

  /* ---- the consumers ---- */
  const int ct = threadIdx.x - 32, tr = ct >> 4, tc = ct & 15;
  float acc[8][8];
#pragma unroll
  for (int r = 0; r < 8; r++)
#pragma unroll
    for (int c = 0; c < 8; c++) acc[r][c] = 0.0f;
  for (int i = 0; i < nk; i++) {
    const int s = i % S;
    long long t0 = clock64();
    mbar_wait(&full[s], (i / S) & 1);
    long long t1 = clock64();
    const float *As = ring + s * WS_SLOT, *Bs = As + WS_BM * WS_AST;
#pragma unroll
    for (int kk = 0; kk < WS_BK; kk += 4) {
      float4 a4[8];
#pragma unroll
      for (int r = 0; r < 8; r++) a4[r] = *(const float4 *)&As[(r < 4 ? tr * 4 + r : 60 + tr * 4 + r) * WS_AST + kk];
#pragma unroll
      for (int q = 0; q < 4; q++) {
        float4 b0 = *(const float4 *)&Bs[(kk + q) * WS_BN + tc * 4],
               b1 = *(const float4 *)&Bs[(kk + q) * WS_BN + 64 + tc * 4];
        float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int r = 0; r < 8; r++)
#pragma unroll
          for (int c = 0; c < 8; c++) acc[r][c] = fmaf(ws_comp(a4[r], q), b[c], acc[r][c]);
      }
    }
    mbar_arrive(&empty[s]); /* this thread is done reading slot s */
    if (rec) {
      long long *p = stamps + ((size_t)warp * nk + i) * 3;
      p[0] = t0, p[1] = t1, p[2] = clock64();
    }
  }
#pragma unroll
  for (int r = 0; r < 8; r++) {
    int row = m0 + (r < 4 ? tr * 4 + r : 64 + tr * 4 + r - 4);
    if (row >= M) continue;
#pragma unroll
    for (int c = 0; c < 8; c++) {
      int col = n0 + (c < 4 ? tc * 4 + c : 64 + tc * 4 + c - 4);
      if (col < N) C[(size_t)row * N + col] = acc[r][c];
    }
  }
}

/* ---- the entry point ---------------------------------------------------------------------------- */
extern "C" ct_tensor *ct_ws_gemm(ct_tensor *a, ct_tensor *b, int stages, ct_tensor **stamps) {
  char d1[160], d2[160];
  if (stamps) *stamps = NULL;
  if (!ct_cuda_available())
    return ct_errorf("cuda.ws_gemm: CUDA is not available (%s)", ct_cuda_unavailable_reason()), nullptr;
  if (!a || !b) return ct_errorf("cuda.ws_gemm: missing operand"), nullptr;
  if (a->ndim != 2 || b->ndim != 2 || a->dtype != CT_F32 || b->dtype != CT_F32 || a->shape[1] != b->shape[0] ||
      a->storage->device.type != CT_CUDA || b->storage->device.type != CT_CUDA ||
      a->storage->device.index != b->storage->device.index)
    return ct_errorf("cuda.ws_gemm: expects [M,K] and [K,N] f32 tensors on one CUDA device, got %s and %s",
                     ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2)),
           nullptr;
  if (stages < 1 || stages > CT_WS_MAX_STAGES)
    return ct_errorf("cuda.ws_gemm: stages = %d; the ring holds 1 to %d slots", stages, CT_WS_MAX_STAGES), nullptr;
  int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
  if (M > INT32_MAX / 2 || N > INT32_MAX / 2 || K > INT32_MAX / 2)
    return ct_errorf("cuda.ws_gemm: sizes above %d are not supported (got %s and %s)", INT32_MAX / 2,
                     ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2)),
           nullptr;
  int dev = a->storage->device.index;
  int64_t shape[2] = {M, N};
  ct_tensor *out = ct_empty(shape, 2, CT_F32, a->storage->device);
  ct_tensor *ac = ct_contiguous(a), *bc = ac ? ct_contiguous(b) : nullptr;
  int nk = (int)((K + WS_BK - 1) / WS_BK);
  int64_t sshape[3] = {1 + CT_WS_CONSUMERS, nk, 3};
  ct_tensor *st = stamps && out && bc ? ct_zeros(sshape, 3, CT_I64, a->storage->device) : nullptr;
  int rc = out && bc && (!stamps || st) ? 0 : -1;
  cudaStream_t s = rc ? nullptr : ct_cu_stream(dev);
  if (!rc && !s) rc = -1;
  if (!rc && M && N && !K)
    rc = ct_cu_check(cudaMemsetAsync(ct_data_ptr(out), 0, (size_t)(M * N) * 4, s), "cuda.ws_gemm");
  if (!rc && M && N && K) {
    static bool attr_set[CT_CUDA_MAX_DEVICES];
    int smem = WS_BAR_BYTES + stages * WS_SLOT * (int)sizeof(float);
    if (!attr_set[dev]) {
      rc = ct_cu_check(cudaFuncSetAttribute(k_ws_gemm, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            WS_BAR_BYTES + CT_WS_MAX_STAGES * WS_SLOT * (int)sizeof(float)),
                       "cuda.ws_gemm: shared-memory limit");
      attr_set[dev] = !rc;
    }
    const float *A = (const float *)ct_data_ptr(ac), *B = (const float *)ct_data_ptr(bc);
    bool vecA = K % 4 == 0 && ct_cu_aligned(A, 16), vecB = N % 4 == 0 && ct_cu_aligned(B, 16);
    if (!rc) {
      dim3 grid((unsigned)((N + WS_BN - 1) / WS_BN), (unsigned)((M + WS_BM - 1) / WS_BM));
      k_ws_gemm<<<grid, WS_THREADS, smem, s>>>((int)M, (int)N, (int)K, A, B, (float *)ct_data_ptr(out), stages, vecA,
                                               vecB, st ? (long long *)ct_data_ptr(st) : nullptr);
      rc = ct_cu_check_launch("cuda.ws_gemm");
    }
  }
  ct_release(ac), ct_release(bc);
  if (rc) {
    ct_release(out), ct_release(st);
    return nullptr;
  }
  if (stamps) *stamps = st;
  return out;
}
