/* ladder_tc.cu: rungs 9 and 10 of the matmul ladder (kernels/ladder.cu has rungs 1-8): C = A B on
 * Hopper's warpgroup tensor-core instructions (wgmma), in TF32 and in bf16, f32 accumulation.
 *
 * The operands are first packed (the bf16 rung of cuBLAS converts its inputs too): A to [Mp, Kp] and B
 * transposed to [Np, Kp], both K-major (wgmma reads TF32 only K-major), padded with zeros to whole
 * tiles, rounded to bf16 or TF32 on the way (TF32's A is used in place when it is already whole tiles).
 * A block of two warpgroups (256 threads) computes a 128 x 256 tile of C, each warpgroup 64 x 256 with
 * its 128 f32 accumulators a thread in registers. K advances in 128-byte slices (64 bf16 or 32 TF32
 * values a row) through a 4-stage ring of shared memory filled by cp.async; every row of a slice is
 * stored with the 128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r % 8)), the layout the
 * wgmma shared-memory descriptors name, so the tensor cores read it without bank conflicts. Each
 * k-slice is 4 wgmma instructions per warpgroup, issued asynchronously: the next slices' copies are in
 * flight while they run, and a slot is refilled once both warpgroups' wgmma on it have retired.
 *
 * Invariants: built for sm_90a only (kernels.mk gives this file that target; elsewhere the kernel is a
 * trap and the host refuses devices that are not compute capability 9.0 with an error). */
#include <cuda_bf16.h>
#include <stdint.h>

#include "ladder_tc.cuh"

#include "cu_util.cuh"
#include "cuda_internal.h"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TC_WGMMA 1
#endif

#define TC_BM 128
#define TC_BN 256
#define TC_STAGES 4
#define TC_THREADS 256
#define TC_SLOT ((TC_BM + TC_BN) * 128) /* bytes of one stage: A's 128 rows, then B's 256, 128 B each */

__device__ __forceinline__ void tc_cp16(void *dst, const void *src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((uint32_t)__cvta_generic_to_shared(dst)), "l"(src));
}
/* Shared-memory matrix descriptor: start address, leading offset 16 B (unused by the swizzled K-major
   layout), stride 1024 B between groups of 8 rows, 128-byte swizzle. */
__device__ __forceinline__ uint64_t tc_desc(const void *p) {
  uint64_t a = (uint32_t)__cvta_generic_to_shared(p);
  return ((a & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

#ifdef TC_WGMMA
/* One wgmma of a warpgroup: a 64 x 256 f32 accumulator d (128 registers a thread) += A B, A and B
   read from shared memory through descriptors; TAIL: the instruction's scale and transpose immediates. */
#define WGMMA_64x256(NAME, PTX, TAIL) \
  __device__ __forceinline__ void NAME(float(&d)[128], uint64_t da, uint64_t db) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n" PTX " {" \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127" \
                 "}, %128, %129, p, " TAIL ";\n}\n" \
                 : \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
    "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
    "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
    "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
    "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
    "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127]) \
                 : "l"(da), "l"(db), "r"(1)); \
  }
WGMMA_64x256(wgmma_step_bf16, "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", "1, 1, 0, 0")
WGMMA_64x256(wgmma_step_tf32, "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32", "1, 1")
#undef WGMMA_64x256
__device__ __forceinline__ void wgmma_step(float (&d)[128], uint64_t a, uint64_t b, __nv_bfloat16) { wgmma_step_bf16(d, a, b); }
__device__ __forceinline__ void wgmma_step(float (&d)[128], uint64_t a, uint64_t b, float) { wgmma_step_tf32(d, a, b); }
#endif

/* ==== rungs 9 and 10: Hopper's warpgroup MMA ======================================================
 * C[M, N] = A[Mp, Kp] Bt[Np, Kp]^T, grid (Np / 256, Mp / 128). */
template <typename T>
__global__ void __launch_bounds__(TC_THREADS, 1) k_wgmma(const T *__restrict__ A, const T *__restrict__ Bt,
                                                         float *__restrict__ C, int M, int N, int Kp) {
#ifdef TC_WGMMA
  extern __shared__ unsigned char tc_raw[];
  unsigned char *sm = (unsigned char *)(((uintptr_t)tc_raw + 1023) & ~(uintptr_t)1023);
  const int tid = threadIdx.x, wg = tid / 128;
  const int bm = blockIdx.y * TC_BM, bn = blockIdx.x * TC_BN, KT = (int)((int64_t)Kp * sizeof(T) / 128);
  const int64_t rowb = (int64_t)Kp * sizeof(T);
  const char *Ab = (const char *)(A + (int64_t)bm * Kp), *Bb = (const char *)(Bt + (int64_t)bn * Kp);
  auto load = [&](int slot, int kt) { /* rows 0..127: A, 128..383: B; chunk c of row r at c ^ (r % 8) */
    unsigned char *s = sm + slot * TC_SLOT;
    const int64_t k = (int64_t)kt * 128;
    for (int i = tid; i < (TC_BM + TC_BN) * 8; i += TC_THREADS) {
      const int r = i >> 3, c = i & 7;
      const char *src = (r < TC_BM ? Ab + r * rowb : Bb + (r - TC_BM) * rowb) + k + c * 16;
      tc_cp16(s + r * 128 + ((c ^ (r & 7)) << 4), src);
    }
  };
#pragma unroll
  for (int s = 0; s < TC_STAGES - 1; s++) {
    if (s < KT) load(s, s);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  float d[128];
#pragma unroll
  for (int i = 0; i < 128; i++) d[i] = 0;
  for (int kt = 0; kt < KT; kt++) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(TC_STAGES - 2) : "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); /* the copies, seen by the tensor cores */
    __syncthreads();
    const unsigned char *s = sm + (kt % TC_STAGES) * TC_SLOT;
    const uint64_t da = tc_desc(s + wg * 64 * 128), db = tc_desc(s + TC_BM * 128);
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int k = 0; k < 4; k++) wgmma_step(d, da + 2 * k, db + 2 * k, T()); /* 32 bytes of K each */
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); /* slice kt - 1 has retired here... */
    __syncthreads();                                                  /* ...and in the other warpgroup */
    if (kt + TC_STAGES - 1 < KT) load((kt + TC_STAGES - 1) % TC_STAGES, kt + TC_STAGES - 1);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
  for (int i = 0; i < 128; i++) asm volatile("" : "+f"(d[i])::"memory");
  /* accumulator i of a lane: row 16 (warp % 4) + lane / 4 (+ 8 for odd i / 2), column 8 (i / 4) + 2 (lane % 4) + i % 2 */
  const int lane = tid % 32, r0 = bm + wg * 64 + ((tid / 32) % 4) * 16 + lane / 4, c0 = bn + 2 * (lane % 4);
  const bool pairs = !(N & 1);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int r = r0 + 8 * h;
    if (r >= M) continue;
    float *crow = C + (int64_t)r * N;
#pragma unroll
    for (int i = 0; i < 32; i++) {
      const int c = c0 + 8 * i;
      const float x = d[4 * i + 2 * h], y = d[4 * i + 2 * h + 1];
      if (pairs && c + 1 < N) {
        *reinterpret_cast<float2 *>(crow + c) = make_float2(x, y);
      } else {
        if (c < N) crow[c] = x;
        if (c + 1 < N) crow[c + 1] = y;
      }
    }
  }
#else
  (void)A, (void)Bt, (void)C, (void)M, (void)N, (void)Kp;
  __trap();
#endif
}

/* ---- packing: f32 -> bf16 or TF32 (round to nearest), K-major, zero-padded ------------------------ */
__device__ __forceinline__ void tc_cvt(__nv_bfloat16 *y, float v) { *y = __float2bfloat16_rn(v); }
__device__ __forceinline__ void tc_cvt(float *y, float v) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
  *y = __uint_as_float(r);
}

/* Y[r, k] = X[r, k] (zero past R, K); grid (Kp / 1024 rounded up, Rp), 256 threads, 4 columns each. */
template <typename T>
__global__ void k_pack_rows(const float *__restrict__ X, int R, int K, T *__restrict__ Y, int Kp) {
  const int r = blockIdx.y;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const int k = blockIdx.x * 1024 + j * 256 + threadIdx.x;
    if (k < Kp) tc_cvt(Y + (int64_t)r * Kp + k, r < R && k < K ? X[(int64_t)r * K + k] : 0.0f);
  }
}

/* Y[n, k] = X[k, n] through a 32 x 32 tile in shared memory; grid (Kp / 32, Np / 32), 32 x 8 threads. */
template <typename T>
__global__ void k_pack_t(const float *__restrict__ X, int K, int N, T *__restrict__ Y, int Kp) {
  __shared__ float tile[32][33];
  const int k0 = blockIdx.x * 32, n0 = blockIdx.y * 32, tx = threadIdx.x;
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int k = k0 + i, n = n0 + tx;
    tile[i][tx] = k < K && n < N ? X[(int64_t)k * N + n] : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += 8) tc_cvt(Y + (int64_t)(n0 + i) * Kp + k0 + tx, tile[tx][i]);
}

template <typename T>
static int run_wgmma(int dev, int M, int N, int K, const float *A, const float *B, float *C, const char *what) {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (major != 9 || minor != 0)
    return ct_errorf("%s: needs a Hopper GPU (compute capability 9.0, wgmma); device %d is %d.%d", what, dev, major, minor);
  cudaStream_t s = ct_cu_stream(dev);
  const int EK = 128 / (int)sizeof(T);
  const int64_t Mp = (M + TC_BM - 1) / TC_BM * TC_BM, Np = (N + TC_BN - 1) / TC_BN * TC_BN, Kp = (K + EK - 1) / EK * EK;
  const bool a_in_place = sizeof(T) == 4 && Mp == M && Kp == K && ct_cu_aligned(A, 16);
  const size_t na = a_in_place ? 0 : (size_t)(Mp * Kp), nb = (size_t)(Np * Kp);
  T *buf = (T *)ct_cu_scratch(sizeof(T) * (na + nb), dev, what);
  if (!buf) return -1;
  T *Bt = buf + na;
  const T *Ap = a_in_place ? (const T *)A : buf;
  if (!a_in_place) k_pack_rows<T><<<dim3((unsigned)((Kp + 1023) / 1024), (unsigned)Mp), 256, 0, s>>>(A, M, K, buf, (int)Kp);
  k_pack_t<T><<<dim3((unsigned)(Kp / 32), (unsigned)(Np / 32)), dim3(32, 8), 0, s>>>(B, K, N, Bt, (int)Kp);
  const size_t smem = (size_t)TC_STAGES * TC_SLOT + 1024;
  int rc = ct_cu_check(cudaFuncSetAttribute(k_wgmma<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), what);
  if (!rc) {
    k_wgmma<T><<<dim3((unsigned)(Np / TC_BN), (unsigned)(Mp / TC_BM)), TC_THREADS, smem, s>>>(Ap, Bt, C, M, N, (int)Kp);
    rc = ct_cu_check_launch(what);
  }
  ct_cu_free(buf, sizeof(T) * (na + nb), dev);
  return rc;
}

int ct_ladder_wgmma(int bf16, int dev, int M, int N, int K, const float *A, const float *B, float *C) {
  return bf16 ? run_wgmma<__nv_bfloat16>(dev, M, N, K, A, B, C, "matmul[wgmma_bf16]")
              : run_wgmma<float>(dev, M, N, K, A, B, C, "matmul[wgmma_tf32]");
}
