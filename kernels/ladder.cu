/* ladder.cu: the matmul ladder of the GPU lesson (see ladder.h for the rungs), C = A B with
 * A [M,K], B [K,N], C [M,N], all row-major f32. Each rung is one kernel below, marked
 * "rung N", written to be read in a lecture: what changes from the rung before is the point.
 * Invariants: every rung is correct for any M, N, K (tiles that cross an edge, or inputs whose
 * rows are not 16-byte aligned, take guarded scalar loads and stores; full interior tiles take
 * the fast path), and every rung accumulates in f32 (the tensor-core rungs round their inputs
 * to TF32 or bf16 first, as their names say). */
#include <cuda_bf16.h>
#include <mma.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "blas.h"
#include "cu_util.cuh"
#include "ladder.h"
#include "ladder_tc.cuh"

using namespace nvcuda;

/* ==== rung 1: naive =============================================================================
 * One thread per element of C. threadIdx.x runs down a column of C, so the 32 threads of a warp
 * read 32 different rows of A (K floats apart: 32 transactions per load) and write 32 rows of C. */
__global__ void k_naive(int M, int N, int K, const float *A, const float *B, float *C) {
  int row = blockIdx.x * 32 + threadIdx.x, col = blockIdx.y * 32 + threadIdx.y;
  if (row < M && col < N) {
    float acc = 0;
    for (int k = 0; k < K; k++) acc += A[(int64_t)row * K + k] * B[(int64_t)k * N + col];
    C[(int64_t)row * N + col] = acc;
  }
}

/* ==== rung 2: coalesced =========================================================================
 * Swap the roles of x and y: a warp now runs along a row of C. Its 32 threads read one element of
 * A (a broadcast) and 32 neighbouring elements of B (one 128-byte transaction), and write 32
 * neighbouring elements of C. Same arithmetic, far fewer memory transactions. */
__global__ void k_coalesced(int M, int N, int K, const float *A, const float *B, float *C) {
  int row = blockIdx.y * 32 + threadIdx.y, col = blockIdx.x * 32 + threadIdx.x;
  if (row < M && col < N) {
    float acc = 0;
    for (int k = 0; k < K; k++) acc += A[(int64_t)row * K + k] * B[(int64_t)k * N + col];
    C[(int64_t)row * N + col] = acc;
  }
}

/* ==== rung 3: shared-memory tiling ==============================================================
 * A block computes a 32x32 tile of C. It walks K in steps of 32, staging a 32x32 tile of A and of B
 * in shared memory; each element loaded from global memory is then used by 32 threads. Global
 * loads drop from 2K per output to 2K/32. */
#define TILE 32
__global__ void k_tiled(int M, int N, int K, const float *A, const float *B, float *C) {
  __shared__ float As[TILE][TILE], Bs[TILE][TILE];
  int tx = threadIdx.x, ty = threadIdx.y;
  int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
  float acc = 0;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    As[ty][tx] = row < M && k0 + tx < K ? A[(int64_t)row * K + k0 + tx] : 0.0f;
    Bs[ty][tx] = k0 + ty < K && col < N ? B[(int64_t)(k0 + ty) * N + col] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; k++) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < M && col < N) C[(int64_t)row * N + col] = acc;
}

/* ==== rung 4: 2-D register blocking =============================================================
 * A block of 256 threads computes a 128x128 tile; each thread an 8x8 sub-tile held in registers.
 * Per step of k a thread loads 8 values of A and 8 of B from shared memory and does 64 FMAs:
 * 4 FMAs per shared load instead of the tiled kernel's 1. */
template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM * BN) / (TM * TN)) k_register2d(int M, int N, int K, const float *A, const float *B,
                                                                      float *C) {
  constexpr int NT = (BM * BN) / (TM * TN);
  __shared__ float As[BM * BK], Bs[BK * BN];
  const int bRow = blockIdx.y * BM, bCol = blockIdx.x * BN;
  const int tRow = threadIdx.x / (BN / TN), tCol = threadIdx.x % (BN / TN);
  const int aRow = threadIdx.x / BK, aCol = threadIdx.x % BK, aStride = NT / BK;
  const int bRowL = threadIdx.x / BN, bColL = threadIdx.x % BN, bStride = NT / BN;
  float acc[TM * TN] = {0}, rm[TM], rn[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    for (int o = 0; o < BM; o += aStride) {
      int r = bRow + aRow + o, c = k0 + aCol;
      As[(aRow + o) * BK + aCol] = r < M && c < K ? A[(int64_t)r * K + c] : 0.0f;
    }
    for (int o = 0; o < BK; o += bStride) {
      int r = k0 + bRowL + o, c = bCol + bColL;
      Bs[(bRowL + o) * BN + bColL] = r < K && c < N ? B[(int64_t)r * N + c] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int d = 0; d < BK; d++) {
#pragma unroll
      for (int i = 0; i < TM; i++) rm[i] = As[(tRow * TM + i) * BK + d];
#pragma unroll
      for (int j = 0; j < TN; j++) rn[j] = Bs[d * BN + tCol * TN + j];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i * TN + j] += rm[i] * rn[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) {
      int r = bRow + tRow * TM + i, c = bCol + tCol * TN + j;
      if (r < M && c < N) C[(int64_t)r * N + c] = acc[i * TN + j];
    }
}

/* Register arrays are moved to and from float4 element by element (a cast would push them to
   local memory). */
__device__ __forceinline__ void unpack4(float *r, float4 v) { r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w; }
__device__ __forceinline__ float4 pack4(const float *r) { return make_float4(r[0], r[1], r[2], r[3]); }

/* ---- tile loaders shared by rungs 5 and 6 -------------------------------------------------------
 * A's BM x BK tile goes to shared memory transposed (As[k][m]) so that a thread's TM values of a
 * column are contiguous and load as float4; B's BK x BN tile goes as is. `fast`: the whole tile is
 * inside the matrices and rows are 16-byte aligned, so global loads are float4; else guarded
 * scalar loads that fill zeros past the edges. */
template <int BM, int BN, int BK, int NT>
__device__ __forceinline__ void load_tiles_t(const float *A, const float *B, float *As, float *Bs, int M, int N, int K,
                                             int bRow, int bCol, int k0, bool fast) {
  if (fast) {
#pragma unroll
    for (int i = threadIdx.x; i < BM * BK / 4; i += NT) {
      int r = i / (BK / 4), c = (i % (BK / 4)) * 4;
      float4 v = *reinterpret_cast<const float4 *>(&A[(int64_t)(bRow + r) * K + k0 + c]);
      As[(c + 0) * BM + r] = v.x;
      As[(c + 1) * BM + r] = v.y;
      As[(c + 2) * BM + r] = v.z;
      As[(c + 3) * BM + r] = v.w;
    }
#pragma unroll
    for (int i = threadIdx.x; i < BK * BN / 4; i += NT) {
      int r = i / (BN / 4), c = (i % (BN / 4)) * 4;
      *reinterpret_cast<float4 *>(&Bs[r * BN + c]) = *reinterpret_cast<const float4 *>(&B[(int64_t)(k0 + r) * N + bCol + c]);
    }
  } else {
    for (int i = threadIdx.x; i < BM * BK; i += NT) {
      int r = i / BK, c = i % BK, gr = bRow + r, gc = k0 + c;
      As[c * BM + r] = gr < M && gc < K ? A[(int64_t)gr * K + gc] : 0.0f;
    }
    for (int i = threadIdx.x; i < BK * BN; i += NT) {
      int r = i / BN, c = i % BN, gr = k0 + r, gc = bCol + c;
      Bs[r * BN + c] = gr < K && gc < N ? B[(int64_t)gr * N + gc] : 0.0f;
    }
  }
}

/* ==== rung 5: vectorized loads ==================================================================
 * Rung 4 with 16-byte accesses: float4 loads from global memory (a quarter of the load
 * instructions), A's tile stored transposed so the inner loop reads A and B from shared memory
 * as float4 too, and C written with float4 stores. */
template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM * BN) / (TM * TN), 2) k_vectorized(int M, int N, int K, const float *A,
                                                                      const float *B, float *C, bool aligned) {
  constexpr int NT = (BM * BN) / (TM * TN);
  __shared__ __align__(16) float As[BK * BM];
  __shared__ __align__(16) float Bs[BK * BN];
  const int bRow = blockIdx.y * BM, bCol = blockIdx.x * BN;
  const int tRow = threadIdx.x / (BN / TN), tCol = threadIdx.x % (BN / TN);
  const bool inside = aligned && bRow + BM <= M && bCol + BN <= N;
  float acc[TM * TN] = {0}, rm[TM], rn[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    load_tiles_t<BM, BN, BK, NT>(A, B, As, Bs, M, N, K, bRow, bCol, k0, inside && k0 + BK <= K);
    __syncthreads();
#pragma unroll
    for (int d = 0; d < BK; d++) {
#pragma unroll
      for (int i = 0; i < TM; i += 4) unpack4(&rm[i], *reinterpret_cast<const float4 *>(&As[d * BM + tRow * TM + i]));
#pragma unroll
      for (int j = 0; j < TN; j += 4) unpack4(&rn[j], *reinterpret_cast<const float4 *>(&Bs[d * BN + tCol * TN + j]));
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i * TN + j] += rm[i] * rn[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; i++) {
    int r = bRow + tRow * TM + i;
    if (inside) {
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4 *>(&C[(int64_t)r * N + bCol + tCol * TN + j]) = pack4(&acc[i * TN + j]);
    } else {
#pragma unroll
      for (int j = 0; j < TN; j++) {
        int c = bCol + tCol * TN + j;
        if (r < M && c < N) C[(int64_t)r * N + c] = acc[i * TN + j];
      }
    }
  }
}

/* ==== rung 6: warp tiling =======================================================================
 * Between the block tile (BM x BN) and the thread tile sits a warp tile (WM x WN): each warp owns a
 * contiguous region of C, and its 32 threads' sub-tiles are interleaved in WMITER x WNITER
 * steps, so a warp's shared-memory reads hit few distinct addresses (broadcasts instead of bank
 * conflicts) and each thread keeps WMITER*TM x WNITER*TN accumulators in registers. Two more
 * latency hiders: the shared tiles are double-buffered, and the next k-tile's global loads are
 * issued into registers before this tile is multiplied, so they are in flight during the FMAs
 * and only stored to the other buffer afterwards (one barrier per k-tile). */
template <int BM, int BN, int BK, int NT>
struct tile_regs {
  static constexpr int NA = BM * BK / 4 / NT, NB = BK * BN / 4 / NT;
  float4 a[NA], b[NB];
  /* global -> registers: float4 loads when fast, else guarded scalars (zeros past the edges) */
  __device__ __forceinline__ void load(const float *A, const float *B, int M, int N, int K, int bRow, int bCol, int k0,
                                       bool fast) {
#pragma unroll
    for (int j = 0; j < NA; j++) {
      int i = threadIdx.x + j * NT, r = i / (BK / 4), c = (i % (BK / 4)) * 4;
      if (fast) a[j] = *reinterpret_cast<const float4 *>(&A[(int64_t)(bRow + r) * K + k0 + c]);
      else {
        float v[4];
#pragma unroll
        for (int q = 0; q < 4; q++) v[q] = bRow + r < M && k0 + c + q < K ? A[(int64_t)(bRow + r) * K + k0 + c + q] : 0.0f;
        a[j] = make_float4(v[0], v[1], v[2], v[3]);
      }
    }
#pragma unroll
    for (int j = 0; j < NB; j++) {
      int i = threadIdx.x + j * NT, r = i / (BN / 4), c = (i % (BN / 4)) * 4;
      if (fast) b[j] = *reinterpret_cast<const float4 *>(&B[(int64_t)(k0 + r) * N + bCol + c]);
      else {
        float v[4];
#pragma unroll
        for (int q = 0; q < 4; q++) v[q] = k0 + r < K && bCol + c + q < N ? B[(int64_t)(k0 + r) * N + bCol + c + q] : 0.0f;
        b[j] = make_float4(v[0], v[1], v[2], v[3]);
      }
    }
  }
  /* registers -> shared memory: A transposed (As[k][m]), B as is */
  __device__ __forceinline__ void store(float *As, float *Bs) const {
#pragma unroll
    for (int j = 0; j < NA; j++) {
      int i = threadIdx.x + j * NT, r = i / (BK / 4), c = (i % (BK / 4)) * 4;
      As[(c + 0) * BM + r] = a[j].x;
      As[(c + 1) * BM + r] = a[j].y;
      As[(c + 2) * BM + r] = a[j].z;
      As[(c + 3) * BM + r] = a[j].w;
    }
#pragma unroll
    for (int j = 0; j < NB; j++) {
      int i = threadIdx.x + j * NT, r = i / (BN / 4), c = (i % (BN / 4)) * 4;
      *reinterpret_cast<float4 *>(&Bs[r * BN + c]) = b[j];
    }
  }
};

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT, int MINB>
__global__ void __launch_bounds__(NT, MINB) k_warptile(int M, int N, int K, const float *A, const float *B, float *C,
                                                       bool aligned) {
  constexpr int WMITER = (WM * WN) / (32 * TM * TN * WNITER);
  constexpr int WSUBM = WM / WMITER, WSUBN = WN / WNITER;
  static_assert(WMITER >= 1 && (BM / WM) * (BN / WN) * 32 == NT, "warp tiles must cover the block tile");
  static_assert((BM * BK / 4) % NT == 0 && (BK * BN / 4) % NT == 0, "tile loads must divide among the threads");
  __shared__ __align__(16) float As[2][BK * BM];
  __shared__ __align__(16) float Bs[2][BK * BN];
  const int bRow = blockIdx.y * BM, bCol = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wRow = warp / (BN / WN), wCol = warp % (BN / WN);
  const int tRowW = lane / (WSUBN / TN), tColW = lane % (WSUBN / TN);
  const bool inside = aligned && bRow + BM <= M && bCol + BN <= N;
  float acc[WMITER * TM * WNITER * TN] = {0}, rm[WMITER * TM], rn[WNITER * TN];
  tile_regs<BM, BN, BK, NT> next;
  next.load(A, B, M, N, K, bRow, bCol, 0, inside && BK <= K);
  next.store(As[0], Bs[0]);
  __syncthreads();
  int buf = 0;
  for (int k0 = 0; k0 < K; k0 += BK) {
    const bool more = k0 + BK < K;
    if (more) next.load(A, B, M, N, K, bRow, bCol, k0 + BK, inside && k0 + 2 * BK <= K); /* in flight below */
    const float *as = As[buf], *bs = Bs[buf];
#pragma unroll
    for (int d = 0; d < BK; d++) {
#pragma unroll
      for (int wm = 0; wm < WMITER; wm++)
#pragma unroll
        for (int i = 0; i < TM; i += 4)
          unpack4(&rm[wm * TM + i], *reinterpret_cast<const float4 *>(&as[d * BM + wRow * WM + wm * WSUBM + tRowW * TM + i]));
#pragma unroll
      for (int wn = 0; wn < WNITER; wn++)
#pragma unroll
        for (int j = 0; j < TN; j += 4)
          unpack4(&rn[wn * TN + j], *reinterpret_cast<const float4 *>(&bs[d * BN + wCol * WN + wn * WSUBN + tColW * TN + j]));
#pragma unroll
      for (int wm = 0; wm < WMITER; wm++)
#pragma unroll
        for (int wn = 0; wn < WNITER; wn++)
#pragma unroll
          for (int i = 0; i < TM; i++)
#pragma unroll
            for (int j = 0; j < TN; j++)
              acc[(wm * TM + i) * (WNITER * TN) + wn * TN + j] += rm[wm * TM + i] * rn[wn * TN + j];
    }
    if (more) next.store(As[buf ^ 1], Bs[buf ^ 1]); /* nobody reads that buffer before the barrier */
    __syncthreads();
    buf ^= 1;
  }
#pragma unroll
  for (int wm = 0; wm < WMITER; wm++)
#pragma unroll
    for (int wn = 0; wn < WNITER; wn++)
#pragma unroll
      for (int i = 0; i < TM; i++) {
        int r = bRow + wRow * WM + wm * WSUBM + tRowW * TM + i;
        int c0 = bCol + wCol * WN + wn * WSUBN + tColW * TN;
        float *src = &acc[(wm * TM + i) * (WNITER * TN) + wn * TN];
        if (inside) {
#pragma unroll
          for (int j = 0; j < TN; j += 4)
            *reinterpret_cast<float4 *>(&C[(int64_t)r * N + c0 + j]) = pack4(&src[j]);
        } else {
#pragma unroll
          for (int j = 0; j < TN; j++)
            if (r < M && c0 + j < N) C[(int64_t)r * N + c0 + j] = src[j];
        }
      }
}

/* ==== rungs 7 and 8: tensor cores through WMMA ==================================================
 * 8 warps, each computing a 64x32 region of a 128x128 block tile as 4x2 fragments of 16x16 on the
 * tensor cores. Tiles of A and B are staged in shared memory (rounded to bf16 on the way for the
 * bf16 rung; for TF32 the fragments are rounded after loading). Accumulation is f32. */
template <bool BF16>
struct wmma_cfg {
  typedef float smem_t;
  typedef wmma::precision::tf32 frag_t;
  static constexpr int KSTEP = 8, PAD = 4;
  static __device__ __forceinline__ float cvt(float v) { return v; }
};
template <>
struct wmma_cfg<true> {
  typedef __nv_bfloat16 smem_t;
  typedef __nv_bfloat16 frag_t;
  static constexpr int KSTEP = 16, PAD = 8;
  static __device__ __forceinline__ __nv_bfloat16 cvt(float v) { return __float2bfloat16_rn(v); }
};

template <bool BF16>
__global__ void __launch_bounds__(256) k_wmma(int M, int N, int K, const float *A, const float *B, float *C, bool aligned) {
  typedef wmma_cfg<BF16> cfg;
  typedef typename cfg::smem_t S;
  constexpr int BM = 128, BN = 128, BK = 32, KS = cfg::KSTEP, PAD = cfg::PAD;
  __shared__ __align__(128) S As[BM][BK + PAD];
  __shared__ __align__(128) S Bs[BK][BN + PAD];
  __shared__ __align__(128) float stage[8][16 * 16];
  const int bRow = blockIdx.y * BM, bCol = blockIdx.x * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wRow = warp / 4, wCol = warp % 4; /* 2 x 4 warps, each 64 x 32 */
  const bool inside = aligned && bRow + BM <= M && bCol + BN <= N;
  wmma::fragment<wmma::accumulator, 16, 16, KS, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int k0 = 0; k0 < K; k0 += BK) {
    bool fast = inside && k0 + BK <= K;
    for (int i = threadIdx.x; i < BM * BK / 4; i += 256) {
      int r = i / (BK / 4), c = (i % (BK / 4)) * 4;
      float v[4];
      if (fast) {
        float4 t = *reinterpret_cast<const float4 *>(&A[(int64_t)(bRow + r) * K + k0 + c]);
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
      } else {
#pragma unroll
        for (int q = 0; q < 4; q++) v[q] = bRow + r < M && k0 + c + q < K ? A[(int64_t)(bRow + r) * K + k0 + c + q] : 0.0f;
      }
#pragma unroll
      for (int q = 0; q < 4; q++) As[r][c + q] = cfg::cvt(v[q]);
    }
    for (int i = threadIdx.x; i < BK * BN / 4; i += 256) {
      int r = i / (BN / 4), c = (i % (BN / 4)) * 4;
      float v[4];
      if (fast) {
        float4 t = *reinterpret_cast<const float4 *>(&B[(int64_t)(k0 + r) * N + bCol + c]);
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
      } else {
#pragma unroll
        for (int q = 0; q < 4; q++) v[q] = k0 + r < K && bCol + c + q < N ? B[(int64_t)(k0 + r) * N + bCol + c + q] : 0.0f;
      }
#pragma unroll
      for (int q = 0; q < 4; q++) Bs[r][c + q] = cfg::cvt(v[q]);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += KS) {
      wmma::fragment<wmma::matrix_a, 16, 16, KS, typename cfg::frag_t, wmma::row_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, KS, typename cfg::frag_t, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        wmma::load_matrix_sync(fa[i], &As[wRow * 64 + i * 16][kk], BK + PAD);
        if (!BF16)
#pragma unroll
          for (int e = 0; e < fa[i].num_elements; e++) fa[i].x[e] = wmma::__float_to_tf32(fa[i].x[e]);
      }
#pragma unroll
      for (int j = 0; j < 2; j++) {
        wmma::load_matrix_sync(fb[j], &Bs[kk][wCol * 32 + j * 16], BN + PAD);
        if (!BF16)
#pragma unroll
          for (int e = 0; e < fb[j].num_elements; e++) fb[j].x[e] = wmma::__float_to_tf32(fb[j].x[e]);
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) {
      int r0 = bRow + wRow * 64 + i * 16, c0 = bCol + wCol * 32 + j * 16;
      if (inside) {
        wmma::store_matrix_sync(&C[(int64_t)r0 * N + c0], acc[i][j], N, wmma::mem_row_major);
      } else {
        wmma::store_matrix_sync(stage[warp], acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
          int r = r0 + e / 16, c = c0 + e % 16;
          if (r < M && c < N) C[(int64_t)r * N + c] = stage[warp][e];
        }
        __syncwarp();
      }
    }
}

/* ---- cuBLAS rungs ------------------------------------------------------------------------------- */
__global__ void k_to_bf16(int64_t n, const float *__restrict__ x, __nv_bfloat16 *__restrict__ y) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) y[i] = __float2bfloat16_rn(x[i]);
}

/* Row-major C = A B as column-major C^T = B^T A^T. */
static int run_cublas(int dev, int which, int M, int N, int K, const float *A, const float *B, float *C) {
  cublasHandle_t h = ct_cu_blas(dev);
  if (!h) return -1;
  const float one = 1, zero = 0;
  if (which == 0)
    return ct_cu_blas_check(ct_cublas.Sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, B, N, A, K, &zero, C, N),
                            "cuda.matmul(impl=cublas)");
  if (which == 1)
    return ct_cu_blas_check(ct_cublas.GemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_32F, N, A, CUDA_R_32F, K,
                                         &zero, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                            "cuda.matmul(impl=cublas_tf32)");
  cudaStream_t s = ct_cu_stream(dev);
  size_t na = (size_t)M * K, nb = (size_t)K * N;
  __nv_bfloat16 *ab = (__nv_bfloat16 *)ct_cu_scratch(sizeof(__nv_bfloat16) * (na + nb + 8), dev, "cuda.matmul(impl=cublas_bf16)");
  if (!ab) return -1;
  __nv_bfloat16 *bb = ab + ((na + 7) / 8) * 8;
  k_to_bf16<<<ct_cu_blocks((int64_t)na, dev), CT_CU_THREADS, 0, s>>>((int64_t)na, A, ab);
  k_to_bf16<<<ct_cu_blocks((int64_t)nb, dev), CT_CU_THREADS, 0, s>>>((int64_t)nb, B, bb);
  int rc = ct_cu_check_launch("cuda.matmul(impl=cublas_bf16)");
  if (!rc)
    rc = ct_cu_blas_check(ct_cublas.GemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, bb, CUDA_R_16BF, N, ab, CUDA_R_16BF, K,
                                       &zero, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "cuda.matmul(impl=cublas_bf16)");
  ct_cu_free(ab, 0, dev);
  return rc;
}

/* ---- the entry point ------------------------------------------------------------------------------ */
enum {
#define CT_LADDER_ENUM(x) IMPL_##x,
  CT_LADDER_IMPLS(CT_LADDER_ENUM)
#undef CT_LADDER_ENUM
  IMPL_COUNT
};
static const char *const impl_names[] = {
#define CT_LADDER_NAME(x) #x,
    CT_LADDER_IMPLS(CT_LADDER_NAME)
#undef CT_LADDER_NAME
};
static const char *const event_names[] = {
#define CT_LADDER_EVENT(x) "matmul[" #x "]",
    CT_LADDER_IMPLS(CT_LADDER_EVENT)
#undef CT_LADDER_EVENT
};

static unsigned cdiv(int a, int b) { return (unsigned)((a + b - 1) / b); }

/* Warp-tile configurations (BM, BN, BK, WM, WN, WNITER, TM, TN, threads, min blocks per SM). The
   128x128 tiles fill a big product best; when they would leave SMs idle, 128x64 and then 64x64
   tiles take over. CHALK_WARPTILE_CFG=0..4 forces one (for tuning). */
#define WT_CFGS(X)                                      \
  X(0, 128, 128, 16, 64, 64, 4, 8, 4, 128, 1)           \
  X(1, 128, 128, 16, 64, 32, 2, 8, 4, 256, 2)           \
  X(2, 128, 256, 16, 64, 64, 4, 8, 4, 256, 1)           \
  X(3, 128, 64, 16, 64, 32, 2, 8, 4, 128, 2)            \
  X(4, 64, 64, 16, 32, 32, 2, 4, 4, 128, 4)
static int launch_warptile(cudaStream_t s, int dev, int M, int N, int K, const float *A, const float *B, float *C,
                           bool aligned) {
  const char *env = getenv("CHALK_WARPTILE_CFG");
  int cfg = env && *env ? atoi(env) : -1;
  if (cfg < 0 || cfg > 4) { /* measured on an H100: see bench/results (gpu_bench --tune) */
    int64_t sms = ct_cu_sm_count(dev);
    cfg = (int64_t)cdiv(N, 128) * cdiv(M, 128) >= sms ? 1 : (int64_t)cdiv(N, 64) * cdiv(M, 128) >= sms / 2 ? 3 : 4;
  }
  switch (cfg) {
#define WT_CASE(ID, BM, BN, BK, WM, WN, WNI, TM, TN, NT, MINB)                                               \
  case ID:                                                                                               \
    k_warptile<BM, BN, BK, WM, WN, WNI, TM, TN, NT, MINB><<<dim3(cdiv(N, BN), cdiv(M, BM)), NT, 0, s>>>( \
        M, N, K, A, B, C, aligned);                                                                      \
    break;
    WT_CFGS(WT_CASE)
#undef WT_CASE
  }
  return ct_cu_check_launch("matmul[warptile]");
}

static int launch(int impl, int dev, int M, int N, int K, const float *A, const float *B, float *C) {
  cudaStream_t s = ct_cu_stream(dev);
  bool aligned = K % 4 == 0 && N % 4 == 0 && ct_cu_aligned(A, 16) && ct_cu_aligned(B, 16) && ct_cu_aligned(C, 16);
  switch (impl) {
  case IMPL_naive: k_naive<<<dim3(cdiv(M, 32), cdiv(N, 32)), dim3(32, 32), 0, s>>>(M, N, K, A, B, C); break;
  case IMPL_coalesced: k_coalesced<<<dim3(cdiv(N, 32), cdiv(M, 32)), dim3(32, 32), 0, s>>>(M, N, K, A, B, C); break;
  case IMPL_tiled: k_tiled<<<dim3(cdiv(N, TILE), cdiv(M, TILE)), dim3(TILE, TILE), 0, s>>>(M, N, K, A, B, C); break;
  case IMPL_register2d:
    k_register2d<128, 128, 8, 8, 8><<<dim3(cdiv(N, 128), cdiv(M, 128)), 256, 0, s>>>(M, N, K, A, B, C);
    break;
  case IMPL_vectorized:
    k_vectorized<128, 128, 8, 8, 8><<<dim3(cdiv(N, 128), cdiv(M, 128)), 256, 0, s>>>(M, N, K, A, B, C, aligned);
    break;
  case IMPL_warptile: return launch_warptile(s, dev, M, N, K, A, B, C, aligned);
  case IMPL_wmma_tf32: k_wmma<false><<<dim3(cdiv(N, 128), cdiv(M, 128)), 256, 0, s>>>(M, N, K, A, B, C, aligned); break;
  case IMPL_wmma_bf16: k_wmma<true><<<dim3(cdiv(N, 128), cdiv(M, 128)), 256, 0, s>>>(M, N, K, A, B, C, aligned); break;
  case IMPL_wgmma_tf32: return ct_ladder_wgmma(0, dev, M, N, K, A, B, C);
  case IMPL_wgmma_bf16: return ct_ladder_wgmma(1, dev, M, N, K, A, B, C);
  case IMPL_cublas: return run_cublas(dev, 0, M, N, K, A, B, C);
  case IMPL_cublas_tf32: return run_cublas(dev, 1, M, N, K, A, B, C);
  default: return run_cublas(dev, 2, M, N, K, A, B, C);
  }
  return ct_cu_check_launch(event_names[impl]);
}

/* A rung as a forward of the matmul row's implementations column (core/ops/impls.c): ct_op_run
   has checked the shapes and devices and allocated out [M, N]; ct_matmul_impl made the operands
   contiguous. The op event ("matmul[<impl>]", cost 2MNK) comes from ct_op_run. */
static int ladder_forward(int impl, ct_tensor *out, ct_tensor *const *in) {
  const ct_tensor *a = in[0], *b = in[1];
  if (a->ndim != 2 || b->ndim != 2 || a->dtype != CT_F32 || !ct_is_contiguous(a) || !ct_is_contiguous(b))
    return ct_errorf("impl '%s' expects [M,K] and [K,N] contiguous f32 tensors on one CUDA device",
                     impl_names[impl]);
  int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
  if (M > INT32_MAX / 2 || N > INT32_MAX / 2 || K > INT32_MAX / 2)
    return ct_errorf("impl '%s': sizes above %d are not supported", impl_names[impl], INT32_MAX / 2);
  int dev = ct_cu_index(out);
  if (!M || !N) return 0;
  if (K == 0) return ct_cu_check(cudaMemsetAsync(ct_data_ptr(out), 0, (size_t)(M * N) * 4, ct_cu_stream(dev)), event_names[impl]);
  return launch(impl, dev, (int)M, (int)N, (int)K, (const float *)ct_data_ptr(a), (const float *)ct_data_ptr(b),
                (float *)ct_data_ptr(out));
}
#define CT_LADDER_FORWARD(x)                                                                       \
  static int rung_##x(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {          \
    (void)nin, (void)a;                                                                            \
    return ladder_forward(IMPL_##x, out, in);                                                      \
  }                                                                                                \
  CT_CU_FORWARD(rung_##x, rung_##x)
CT_LADDER_IMPLS(CT_LADDER_FORWARD)
#undef CT_LADDER_FORWARD

/* Adds the rungs to the matmul row, in ladder order; "cublas" is the row's own CUDA forward
   (kernels/matmul.c). Called at registration even without a device, so the names are listed. */
extern "C" void ct_cu_register_ladder(void) {
  static const char *const notes[] = {
      "one thread per C element, a warp walks down C's column (uncoalesced)",
      "one thread per C element, a warp along C's row (coalesced)",
      "32x32 tiles staged in shared memory",
      "128x128 block tiles, 8x8 outputs per thread in registers",
      "register2d with float4 loads and a transposed A tile",
      "vectorized with a warp-level tile between block and thread",
      "tensor cores through WMMA, inputs rounded to TF32",
      "tensor cores through WMMA, inputs rounded to bf16",
      "Hopper wgmma, TF32: 128x256 tiles, 4-stage cp.async ring, swizzled shared memory",
      "Hopper wgmma, bf16: 128x256 tiles, 4-stage cp.async ring, swizzled shared memory",
      "cuBLAS SGEMM in true f32 (the default)",
      "cuBLAS with TF32 tensor cores",
      "cuBLAS on bf16 copies of the inputs, f32 accumulation",
  };
  static const ct_forward_fn fns[] = {
#define CT_LADDER_FN(x) rung_##x##_cuda,
      CT_LADDER_IMPLS(CT_LADDER_FN)
#undef CT_LADDER_FN
  };
  for (int i = 0; i < IMPL_COUNT; i++)
    ct_op_add_impl(CT_OP_matmul, impl_names[i], CT_CUDA, i == IMPL_cublas ? NULL : fns[i], notes[i]);
}
