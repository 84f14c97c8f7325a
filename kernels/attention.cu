/* attention.cu: CUDA FlashAttention, forward and backward, for the ops attention_flash and
 * attention_flash_backward of core/ops_attention.c (f32 and bf16 storage, f32 arithmetic).
 *
 * Forward (FlashAttention-2's loop order): one block of 128 threads per 64-query tile. The tile
 * of Q is staged in shared memory once; the block then sweeps the 64-key tiles of K and V
 * through shared memory, and for each computes the 64 x 64 scores in registers (a thread holds
 * 4 rows x 8 columns), updates the running row maximum m and sum l (the 8 threads of a row
 * combine with warp shuffles), rescales its slice of the output accumulator by e^(m_old - m_new)
 * and adds P V. Only O (and, for the backward's statistics pass, L = m + log l) is written.
 * bf16 runs on the tensor cores instead (kernels/flash_tc.cu: forward, statistics and backward, with
 * L in log2 units; the row sums D and the dQ conversion below are shared).
 *
 * Backward: one block per 64-key tile keeps K_j and V_j in shared memory and sweeps the query
 * tiles: it recomputes S^T = K_j Q_i^T and P^T = e^(scale S^T - L_i), forms dP^T = V_j dO_i^T and
 * dS^T = P^T (dP^T - D_i), accumulates dV_j += P^T dO_i and dK_j += scale dS^T Q_i in registers,
 * and adds scale dS K_j into an f32 dQ buffer with atomics (several key tiles touch one query
 * row). L comes from the forward kernel run in statistics mode, D = rowsum(dO * O) from a small
 * kernel; both are O(N) temporaries.
 *
 * Invariants: no N x N array exists anywhere; tile sizes are core/attention.h's (the op's cost
 * counts the bytes these kernels move with them); the head dimensions (d of q and k, dv of v)
 * may be anything up to 128 (tiles are padded with zeros to 16/32/64/128 columns); query and key
 * counts need not be multiples of the tiles; every element of every output is written. */
#include <cuda_bf16.h>
#include <math.h>

#include <type_traits>

#include "ops/attention.h"
#include "cu_util.cuh"
#include "flash_tc.cuh"

#define NTHREADS 128
#define FWD_BQ CT_ATTN_CUDA_BQ
#define FWD_BK CT_ATTN_CUDA_BK
#define BWD_BK CT_ATTN_CUDA_BWD_BK
static_assert(FWD_BQ == 64 && FWD_BK == 64 && BWD_BK == 64, "the thread layouts below assume 64-row tiles");

__device__ __forceinline__ float load_f(const float *p) { return *p; }
__device__ __forceinline__ float load_f(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store_f(float *p, float v) { *p = v; }
__device__ __forceinline__ void store_f(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }

/* Sum and max over the 8 lanes that share a row (lanes 8k .. 8k+7 of a warp). */
__device__ __forceinline__ float row8_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v + __shfl_xor_sync(0xffffffffu, v, 4);
}
__device__ __forceinline__ float row8_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
}

/* rows x DP tile of X [*, w] starting at row r0 into S (leading dim LD), rows at or past `limit`
   and columns past w as zeros, each element times `mul`. Consecutive threads read consecutive
   columns of a row (coalesced). */
template <typename T, int DP>
__device__ __forceinline__ void load_tile(float *S, int LD, const T *X, int64_t r0, int rows, int64_t limit, int w,
                                          float mul) {
  for (int e = threadIdx.x; e < rows * DP; e += NTHREADS) {
    int r = e / DP, c = e % DP;
    float x = 0;
    if (r0 + r < limit && c < w) x = load_f(X + (r0 + r) * w + c) * mul;
    S[r * LD + c] = x;
  }
}

/* ==== forward ===================================================================================
 * STATS: write L = m + log l per query row instead of O (the backward's statistics pass; V is not
 * read). Thread t owns query rows 4*(t/8) .. +3 of the tile and columns t%8 + 8*j. */
template <typename T, int DP, bool STATS>
__global__ void __launch_bounds__(NTHREADS) k_flash_forward(const T *__restrict__ Q, const T *__restrict__ K,
                                                            const T *__restrict__ V, T *__restrict__ O,
                                                            float *__restrict__ L, int nq, int nk, int d, int dv,
                                                            float scale, int causal, int b0) {
  constexpr int BQ = FWD_BQ, BK = FWD_BK, LD = DP + 1, LDP = BK + 1, NC = DP / 8;
  extern __shared__ float sm[];
  float *Qs = sm, *Ks = Qs + BQ * LD, *Vs = Ks + BK * LD, *Ps = Vs + BK * LD;
  const int64_t b = b0 + blockIdx.y;
  const int i0 = blockIdx.x * BQ, tr = threadIdx.x / 8, tc = threadIdx.x % 8;
  Q += b * nq * d, K += b * nk * d, V += b * nk * dv;
  load_tile<T, DP>(Qs, LD, Q, i0, BQ, nq, d, scale);
  float m[4], l[4], acc[4][NC];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    m[i] = -INFINITY, l[i] = 0;
#pragma unroll
    for (int c = 0; c < NC; c++) acc[i][c] = 0;
  }
  const int rows_end = min(nq, i0 + BQ), jend = causal ? min(nk, rows_end) : nk;
  for (int j0 = 0; j0 < jend; j0 += BK) {
    __syncthreads(); /* the previous tile's readers are done */
    load_tile<T, DP>(Ks, LD, K, j0, BK, jend, d, 1.0f);
    if (!STATS) load_tile<T, DP>(Vs, LD, V, j0, BK, jend, dv, 1.0f);
    __syncthreads();
    float s[4][8];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 8; j++) s[i][j] = 0;
#pragma unroll 8
    for (int k = 0; k < DP; k++) {
      float a[4], kb[8];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = Qs[(tr * 4 + i) * LD + k];
#pragma unroll
      for (int j = 0; j < 8; j++) kb[j] = Ks[(tc + 8 * j) * LD + k];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) s[i][j] = fmaf(a[i], kb[j], s[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) { /* mask, then the online-softmax update of row i */
      const int row = i0 + tr * 4 + i;
      float mx = m[i];
#pragma unroll
      for (int j = 0; j < 8; j++) {
        const int col = j0 + tc + 8 * j;
        if (col >= jend || (causal && col > row)) s[i][j] = -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      mx = row8_max(mx);
      const float alpha = mx == -INFINITY ? 1.0f : __expf(m[i] - mx);
      float rs = 0;
#pragma unroll
      for (int j = 0; j < 8; j++) {
        s[i][j] = s[i][j] == -INFINITY ? 0.0f : __expf(s[i][j] - mx);
        rs += s[i][j];
      }
      l[i] = l[i] * alpha + row8_sum(rs);
      m[i] = mx;
      if (!STATS) {
#pragma unroll
        for (int c = 0; c < NC; c++) acc[i][c] *= alpha;
      }
    }
    if (!STATS) {
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) Ps[(tr * 4 + i) * LDP + tc + 8 * j] = s[i][j];
      __syncthreads();
#pragma unroll 4
      for (int jj = 0; jj < BK; jj++) { /* acc += P V */
        float p[4], vb[NC];
#pragma unroll
        for (int i = 0; i < 4; i++) p[i] = Ps[(tr * 4 + i) * LDP + jj];
#pragma unroll
        for (int c = 0; c < NC; c++) vb[c] = Vs[jj * LD + tc + 8 * c];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int c = 0; c < NC; c++) acc[i][c] = fmaf(p[i], vb[c], acc[i][c]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int row = i0 + tr * 4 + i;
    if (row >= nq) continue;
    if (STATS) {
      if (tc == 0) L[b * nq + row] = m[i] + logf(l[i]);
    } else {
      const float inv = 1.0f / l[i];
#pragma unroll
      for (int c = 0; c < NC; c++) {
        const int col = tc + 8 * c;
        if (col < dv) store_f(O + (b * nq + row) * dv + col, acc[i][c] * inv);
      }
    }
  }
}

/* ==== backward ==================================================================================
 * One block per 64-key tile; query tiles of BQ rows. Thread t owns key rows 4*(t/8) .. +3 for
 * S^T, dP^T, dK, dV, and query rows (BQ/16)*(t/8) .. for dQ; columns t%8 + 8*j throughout. */
template <typename T, int DP, int BQ>
__global__ void __launch_bounds__(NTHREADS) k_flash_backward(const T *__restrict__ Q, const T *__restrict__ K,
                                                             const T *__restrict__ V, const T *__restrict__ dO,
                                                             const float *__restrict__ L, const float *__restrict__ D,
                                                             float *__restrict__ dQ, T *__restrict__ out, int nq, int nk,
                                                             int d, int dv, float scale, int causal, int b0) {
  constexpr int BK = BWD_BK, LD = DP + 1, LDP = BQ + 1, NC = DP / 8, QJ = BQ / 8, QR = BQ / 16;
  extern __shared__ float sm[];
  float *Ks = sm, *Vs = Ks + BK * LD, *Qs = Vs + BK * LD, *dOs = Qs + BQ * LD, *PTs = dOs + BQ * LD;
  float *dSTs = PTs + BK * LDP, *Ls = dSTs + BK * LDP, *Ds = Ls + BQ;
  const int64_t b = b0 + blockIdx.y;
  const int j0 = blockIdx.x * BK, tr = threadIdx.x / 8, tc = threadIdx.x % 8;
  Q += b * nq * d, K += b * nk * d, V += b * nk * dv, dO += b * nq * dv, L += b * nq, D += b * nq;
  dQ += b * nq * d;
  load_tile<T, DP>(Ks, LD, K, j0, BK, nk, d, 1.0f);
  load_tile<T, DP>(Vs, LD, V, j0, BK, nk, dv, 1.0f);
  float dk[4][NC], dvacc[4][NC];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int c = 0; c < NC; c++) dk[i][c] = dvacc[i][c] = 0;
  for (int i0 = causal ? (j0 / BQ) * BQ : 0; i0 < nq; i0 += BQ) {
    __syncthreads(); /* the previous query tile's readers are done */
    load_tile<T, DP>(Qs, LD, Q, i0, BQ, nq, d, 1.0f);
    load_tile<T, DP>(dOs, LD, dO, i0, BQ, nq, dv, 1.0f);
    for (int r = threadIdx.x; r < BQ; r += NTHREADS) {
      Ls[r] = i0 + r < nq ? L[i0 + r] : 0.0f;
      Ds[r] = i0 + r < nq ? D[i0 + r] : 0.0f;
    }
    __syncthreads();
    float st[4][QJ], dpt[4][QJ];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < QJ; j++) st[i][j] = dpt[i][j] = 0;
#pragma unroll 4
    for (int k = 0; k < DP; k++) { /* S^T = K Q^T and dP^T = V dO^T */
      float ka[4], va[4], qb[QJ], gb[QJ];
#pragma unroll
      for (int i = 0; i < 4; i++) ka[i] = Ks[(tr * 4 + i) * LD + k], va[i] = Vs[(tr * 4 + i) * LD + k];
#pragma unroll
      for (int j = 0; j < QJ; j++) qb[j] = Qs[(tc + 8 * j) * LD + k], gb[j] = dOs[(tc + 8 * j) * LD + k];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < QJ; j++) {
          st[i][j] = fmaf(ka[i], qb[j], st[i][j]);
          dpt[i][j] = fmaf(va[i], gb[j], dpt[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) /* P^T and dS^T into shared memory */
#pragma unroll
      for (int j = 0; j < QJ; j++) {
        const int key = j0 + tr * 4 + i, qr = tc + 8 * j, row = i0 + qr;
        const bool ok = key < nk && row < nq && !(causal && key > row);
        const float p = ok ? __expf(st[i][j] * scale - Ls[qr]) : 0.0f;
        PTs[(tr * 4 + i) * LDP + qr] = p;
        dSTs[(tr * 4 + i) * LDP + qr] = p * (dpt[i][j] - Ds[qr]);
      }
    __syncthreads();
#pragma unroll 4
    for (int r = 0; r < BQ; r++) { /* dV += P^T dO, dK += dS^T Q (scaled at the end) */
      float pa[4], sa[4], gb[NC], qb[NC];
#pragma unroll
      for (int i = 0; i < 4; i++) pa[i] = PTs[(tr * 4 + i) * LDP + r], sa[i] = dSTs[(tr * 4 + i) * LDP + r];
#pragma unroll
      for (int c = 0; c < NC; c++) gb[c] = dOs[r * LD + tc + 8 * c], qb[c] = Qs[r * LD + tc + 8 * c];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int c = 0; c < NC; c++) {
          dvacc[i][c] = fmaf(pa[i], gb[c], dvacc[i][c]);
          dk[i][c] = fmaf(sa[i], qb[c], dk[i][c]);
        }
    }
    float dq[QR][NC]; /* dQ_i += scale dS K_j */
#pragma unroll
    for (int i = 0; i < QR; i++)
#pragma unroll
      for (int c = 0; c < NC; c++) dq[i][c] = 0;
#pragma unroll 4
    for (int c2 = 0; c2 < BK; c2++) {
      float sa[QR], kb[NC];
#pragma unroll
      for (int i = 0; i < QR; i++) sa[i] = dSTs[c2 * LDP + tr * QR + i];
#pragma unroll
      for (int c = 0; c < NC; c++) kb[c] = Ks[c2 * LD + tc + 8 * c];
#pragma unroll
      for (int i = 0; i < QR; i++)
#pragma unroll
        for (int c = 0; c < NC; c++) dq[i][c] = fmaf(sa[i], kb[c], dq[i][c]);
    }
#pragma unroll
    for (int i = 0; i < QR; i++) {
      const int row = i0 + tr * QR + i;
      if (row >= nq) continue;
#pragma unroll
      for (int c = 0; c < NC; c++) {
        const int col = tc + 8 * c;
        if (col < d) atomicAdd(dQ + (int64_t)row * d + col, dq[i][c] * scale);
      }
    }
  }
  /* dK and dV of this key tile, written once into the packed output [dq | dk | dv] */
  const int64_t per = (int64_t)nq * d + (int64_t)nk * d + (int64_t)nk * dv;
  T *dK = out + b * per + (int64_t)nq * d, *dV = dK + (int64_t)nk * d;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int key = j0 + tr * 4 + i;
    if (key >= nk) continue;
#pragma unroll
    for (int c = 0; c < NC; c++) {
      const int col = tc + 8 * c;
      if (col < d) store_f(dK + (int64_t)key * d + col, dk[i][c] * scale);
      if (col < dv) store_f(dV + (int64_t)key * dv + col, dvacc[i][c]);
    }
  }
}

/* D[row] = sum_k dO[row, k] O[row, k], one warp per row. */
template <typename T>
__global__ void k_rowdot(const T *__restrict__ dO, const T *__restrict__ O, float *__restrict__ D, int64_t rows,
                         int w) {
  const int lane = threadIdx.x & 31;
  for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows;
       r += (int64_t)gridDim.x * blockDim.x / 32) {
    float s = 0;
    for (int k = lane; k < w; k += 32) s += load_f(dO + r * w + k) * load_f(O + r * w + k);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (!lane) D[r] = s;
  }
}

/* dq part of the packed output from the f32 accumulator. */
template <typename T>
__global__ void k_dq_out(const float *__restrict__ dQ, T *__restrict__ out, int64_t batch, int64_t nqd, int64_t per) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < batch * nqd; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t b = e / nqd;
    store_f(out + b * per + (e - b * nqd), dQ[e]);
  }
}

/* ---- host side -------------------------------------------------------------------------------- */

typedef ct_attn_dims dims;

static int get_dims(ct_tensor *const *in, dims *g) {
  const ct_tensor *q = in[0], *v = in[2];
  g->batch = 1;
  for (int i = 0; i < q->ndim - 2; i++) g->batch *= q->shape[i];
  int64_t nq = q->shape[q->ndim - 2], nk = v->shape[v->ndim - 2], d = q->shape[q->ndim - 1], dv = v->shape[v->ndim - 1];
  if (d > CT_ATTN_CUDA_MAX_D || dv > CT_ATTN_CUDA_MAX_D)
    return ct_errorf("head dims up to %d on cuda, got d %lld, dv %lld", CT_ATTN_CUDA_MAX_D, (long long)d,
                     (long long)dv);
  if (nq > INT32_MAX / 2 || nk > INT32_MAX / 2) return ct_errorf("sequence too long for the cuda kernels");
  g->nq = (int)nq, g->nk = (int)nk, g->d = (int)d, g->dv = (int)dv;
  return 0;
}

static int padded(int w) { return w <= 16 ? 16 : w <= 32 ? 32 : w <= 64 ? 64 : 128; }

/* An f32 temporary of n elements on dev, tagged temporary (memory pictures show it). */
static ct_tensor *temp_f32(int64_t n, ct_device dev) {
  ct_category old = ct_set_default_category(CT_CAT_TEMPORARY);
  ct_tensor *t = ct_empty(&n, 1, CT_F32, dev);
  ct_set_default_category(old);
  return t;
}

template <typename K>
static int allow_smem(K kernel, size_t bytes) {
  return ct_cu_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
                     "attention: shared memory");
}

#define MAX_GRID_Y 65535

template <typename T, int DP, bool STATS>
static int launch_forward(const T *q, const T *k, const T *v, T *o, float *L, const dims &g, float scale, int causal,
                          cudaStream_t s) {
  const size_t smem = sizeof(float) * (size_t)(FWD_BQ * (DP + 1) + 2 * FWD_BK * (DP + 1) + FWD_BQ * (FWD_BK + 1));
  if (allow_smem(k_flash_forward<T, DP, STATS>, smem)) return -1;
  for (int64_t b0 = 0; b0 < g.batch; b0 += MAX_GRID_Y) {
    dim3 grid((unsigned)((g.nq + FWD_BQ - 1) / FWD_BQ), (unsigned)(g.batch - b0 < MAX_GRID_Y ? g.batch - b0 : MAX_GRID_Y));
    k_flash_forward<T, DP, STATS><<<grid, NTHREADS, smem, s>>>(q, k, v, o, L, g.nq, g.nk, g.d, g.dv, scale, causal, (int)b0);
    if (ct_cu_check_launch("attention_flash")) return -1;
  }
  return 0;
}

template <typename T>
static int forward_typed(const T *q, const T *k, const T *v, T *o, float *L, const dims &g, float scale, int causal,
                         bool stats, cudaStream_t s) {
  int dp = padded(g.d > g.dv ? g.d : g.dv);
  if constexpr (std::is_same<T, __nv_bfloat16>::value) /* bf16: the tensor cores (flash_tc.cu) */
    return ct_flash_tc_forward(q, k, v, stats ? NULL : o, L, g, scale, causal, s);
#define FWD_CASE(DP)                                                                                     \
  case DP:                                                                                               \
    return stats ? launch_forward<T, DP, true>(q, k, v, o, L, g, scale, causal, s)                       \
                 : launch_forward<T, DP, false>(q, k, v, o, L, g, scale, causal, s);
  switch (dp) {
    FWD_CASE(16) FWD_CASE(32) FWD_CASE(64) FWD_CASE(128)
  }
#undef FWD_CASE
  return ct_errorf("attention: no kernel for head dim %d", dp);
}

static int check_dtype(ct_dtype dt) {
  if (dt == CT_F32 || dt == CT_BF16) return 0;
  return ct_errorf("no CUDA kernel for dtype %s (f32, bf16)", ct_dtype_name(dt));
}

static int flash_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  dims g;
  if (check_dtype(out->dtype) || get_dims(in, &g)) return -1;
  if (!ct_numel(out)) return 0;
  cudaStream_t s = ct_cu_stream(ct_cu_index(out));
  ct_tensor *tmp[3] = {NULL, NULL, NULL};
  const void *p[3];
  int rc = 0;
  for (int i = 0; i < 3 && !rc; i++)
    if (!(p[i] = ct_cu_contiguous_data(in[i], &tmp[i]))) rc = -1;
  float scale = (float)a->f[CT_ATTN_SCALE];
  int causal = a->i[CT_ATTN_CAUSAL] != 0;
  if (!rc) {
    if (out->dtype == CT_F32)
      rc = forward_typed<float>((const float *)p[0], (const float *)p[1], (const float *)p[2], (float *)ct_data_ptr(out),
                                NULL, g, scale, causal, false, s);
    else
      rc = forward_typed<__nv_bfloat16>((const __nv_bfloat16 *)p[0], (const __nv_bfloat16 *)p[1],
                                        (const __nv_bfloat16 *)p[2], (__nv_bfloat16 *)ct_data_ptr(out), NULL, g, scale,
                                        causal, false, s);
  }
  for (int i = 0; i < 3; i++) ct_release(tmp[i]);
  return rc;
}

template <typename T, int DP, int BQ>
static int launch_backward(const T *q, const T *k, const T *v, const T *go, const float *L, const float *D, float *dQ,
                           T *out, const dims &g, float scale, int causal, cudaStream_t s) {
  const size_t smem = sizeof(float) * (size_t)(2 * BWD_BK * (DP + 1) + 2 * BQ * (DP + 1) + 2 * BWD_BK * (BQ + 1) + 2 * BQ);
  if (allow_smem(k_flash_backward<T, DP, BQ>, smem)) return -1;
  for (int64_t b0 = 0; b0 < g.batch; b0 += MAX_GRID_Y) {
    dim3 grid((unsigned)((g.nk + BWD_BK - 1) / BWD_BK), (unsigned)(g.batch - b0 < MAX_GRID_Y ? g.batch - b0 : MAX_GRID_Y));
    k_flash_backward<T, DP, BQ><<<grid, NTHREADS, smem, s>>>(q, k, v, go, L, D, dQ, out, g.nq, g.nk, g.d, g.dv, scale,
                                                             causal, (int)b0);
    if (ct_cu_check_launch("attention_flash_backward")) return -1;
  }
  return 0;
}

template <typename T>
static int backward_typed(const void *const *p, T *out, float *L, float *D, float *dQ, const dims &g, float scale,
                          int causal, cudaStream_t s, int dev) {
  const T *q = (const T *)p[0], *k = (const T *)p[1], *v = (const T *)p[2], *o = (const T *)p[3], *go = (const T *)p[4];
  if (forward_typed<T>(q, k, v, NULL, L, g, scale, causal, true, s)) return -1; /* L = m + log l, recomputed */
  int64_t rows = g.batch * g.nq;
  k_rowdot<T><<<ct_cu_blocks(rows * 32, dev), CT_CU_THREADS, 0, s>>>(go, o, D, rows, g.dv);
  if (ct_cu_check_launch("attention_flash_backward: D") ||
      ct_cu_check(cudaMemsetAsync(dQ, 0, sizeof(float) * (size_t)(rows * g.d), s), "attention_flash_backward: dQ"))
    return -1;
  int dp = padded(g.d > g.dv ? g.d : g.dv), rc;
  if constexpr (std::is_same<T, __nv_bfloat16>::value) /* bf16: the tensor cores (flash_tc.cu), L in log2 units */
    rc = ct_flash_tc_backward(q, k, v, go, L, D, dQ, out, g, scale, causal, s);
  else
    switch (dp) {
    case 16: rc = launch_backward<T, 16, 64>(q, k, v, go, L, D, dQ, out, g, scale, causal, s); break;
    case 32: rc = launch_backward<T, 32, 64>(q, k, v, go, L, D, dQ, out, g, scale, causal, s); break;
    case 64: rc = launch_backward<T, 64, 64>(q, k, v, go, L, D, dQ, out, g, scale, causal, s); break;
    default: rc = launch_backward<T, 128, 32>(q, k, v, go, L, D, dQ, out, g, scale, causal, s); break;
    }
  static_assert(CT_ATTN_CUDA_BWD_BQ(64) == 64 && CT_ATTN_CUDA_BWD_BQ(128) == 32, "query tiles as attention.h says");
  if (rc) return -1;
  int64_t per = (int64_t)g.nq * g.d + (int64_t)g.nk * g.d + (int64_t)g.nk * g.dv;
  k_dq_out<T><<<ct_cu_blocks(rows * g.d, dev), CT_CU_THREADS, 0, s>>>(dQ, out, g.batch, (int64_t)g.nq * g.d, per);
  return ct_cu_check_launch("attention_flash_backward: dq");
}

static int flash_backward_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  dims g;
  if (check_dtype(out->dtype) || get_dims(in, &g)) return -1;
  if (!ct_numel(out)) return 0;
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  ct_tensor *tmp[5] = {NULL, NULL, NULL, NULL, NULL};
  const void *p[5];
  int rc = 0;
  for (int i = 0; i < 5 && !rc; i++)
    if (!(p[i] = ct_cu_contiguous_data(in[i], &tmp[i]))) rc = -1;
  int64_t rows = g.batch * g.nq;
  if (!rc && !rows) { /* no queries: every gradient is zero (and no kernel has a grid) */
    for (int i = 0; i < 5; i++) ct_release(tmp[i]);
    return ct_cu_zero(out, s, "attention_flash_backward");
  }
  ct_tensor *L = rc ? NULL : temp_f32(rows > 0 ? rows : 1, out->storage->device);
  ct_tensor *D = L ? temp_f32(rows > 0 ? rows : 1, out->storage->device) : NULL;
  ct_tensor *dQ = D ? temp_f32(rows * g.d > 0 ? rows * g.d : 1, out->storage->device) : NULL;
  if (!dQ) rc = -1;
  float scale = (float)a->f[CT_ATTN_SCALE];
  int causal = a->i[CT_ATTN_CAUSAL] != 0;
  if (!rc) {
    float *Lp = (float *)ct_data_ptr(L), *Dp = (float *)ct_data_ptr(D), *dQp = (float *)ct_data_ptr(dQ);
    if (out->dtype == CT_F32)
      rc = backward_typed<float>(p, (float *)ct_data_ptr(out), Lp, Dp, dQp, g, scale, causal, s, dev);
    else
      rc = backward_typed<__nv_bfloat16>(p, (__nv_bfloat16 *)ct_data_ptr(out), Lp, Dp, dQp, g, scale, causal, s, dev);
  }
  for (int i = 0; i < 5; i++) ct_release(tmp[i]);
  ct_release(L), ct_release(D), ct_release(dQ);
  return rc;
}

CT_CU_FORWARD(attention_flash, flash_impl)
CT_CU_FORWARD(attention_flash_backward, flash_backward_impl)

extern "C" void ct_cu_register_attention(void) {
  ct_cuda_forward[CT_OP_attention_flash] = attention_flash_cuda;
  ct_cuda_forward[CT_OP_attention_flash_backward] = attention_flash_backward_cuda;
  ct_op_add_impl(CT_OP_attention_flash, "flash", CT_CUDA, NULL, "one block of queries per CTA, K and V tiles in shared memory");
}
