/* flash_tc.cu: FlashAttention-2 on the tensor cores for bf16 (mma.sync m16n8k16, ldmatrix, cp.async).
 *
 * Forward: a block of 4 warps owns BQ = 64 MT query rows (MT = 2 m16 tiles per warp for head dims up
 * to 64, 1 for 128). Q's tile goes to registers once (ldmatrix, as mma A fragments); 64-key tiles of
 * K and V stream through two shared-memory buffers filled by cp.async while the other is in use.
 * S = Q K^T stays in mma accumulators, the online softmax (row max and sum in f32, base 2) works on
 * them in place, and P, rounded to bf16, is already the A operand of P V (V's B fragments come from
 * ldmatrix.trans). Causal blocks past the diagonal are never loaded; the mask is applied only on the
 * diagonal and tail tiles; the heaviest query tiles are scheduled first. In statistics mode the kernel
 * writes L2 = m + log2 l per row (the backward's input) and skips V.
 *
 * Backward (FlashAttention-2's order): a block owns 64 keys (16 per warp) and sweeps the query tiles
 * (64 rows; 32 for head dim 128), Q, dO, L2 and D double-buffered by cp.async. Each warp recomputes
 * S^T = K Q^T and dP^T = V dO^T in registers, forms P^T = 2^(S^T scale log2e - L2) and
 * dS^T = P^T (dP^T - D), accumulates dV += P^T dO and dK += dS^T Q in registers (P^T and dS^T reused
 * as A fragments), stores dS^T to shared memory, and the block then adds scale dS K into the f32 dQ
 * buffer with atomics. Rows are padded to DP + 8 elements, so every ldmatrix is conflict-free.
 *
 * Invariants: tiles past the tensors' rows and columns are zero-filled (cp.async src-size 0), and
 * masked scores are exactly 0 in P and dS, so any N and head dims up to 128 are exact; 16-byte copies
 * need widths that are multiples of 8 and aligned bases, else the same tiles are filled element-wise. */
#include <math.h>

#include "flash_tc.cuh"

#include "ops/attention.h"

#include "cuda_internal.h"

typedef __nv_bfloat16 bf16;
#define NT 128
#define BK 64

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async4(void *dst, const void *src, int bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const bf16 *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/* Two n-tiles from one x4 ldmatrix of B: b[0], b[1] for the first, b[2], b[3] for the second. */
__device__ __forceinline__ void mma_pair(float (&lo)[4], float (&hi)[4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
  mma16816(lo, a, b[0], b[1]);
  mma16816(hi, a, b[2], b[3]);
}
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&h);
}
/* The A fragment of k-step kk from accumulators of n-tiles 2kk and 2kk + 1 (the layouts coincide). */
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = pack2(lo[0], lo[1]), a[1] = pack2(lo[2], lo[3]), a[2] = pack2(hi[0], hi[1]), a[3] = pack2(hi[2], hi[3]);
}
/* Lane offsets of ldmatrix x4 for an A tile (rows, then k) and for B from n-major rows (non-trans). */
__device__ __forceinline__ int a_row(int lane) { return (lane & 7) + ((lane >> 3) & 1) * 8; }
__device__ __forceinline__ int a_col(int lane) { return (lane >> 4) * 8; }

/* ROWS x DP tile of X [*, w] from row r0 into S (leading dim DP + 8): rows at or past `limit` and
   columns past w are zeros. cp.async (16 bytes) when vec, else element by element. */
template <int ROWS, int DP>
__device__ __forceinline__ void load_rows(bf16 *S, const bf16 *X, int r0, int limit, int w, bool vec) {
  constexpr int LD = DP + 8, CH = DP / 8;
  for (int e = threadIdx.x; e < ROWS * CH; e += NT) {
    const int r = e / CH, c = (e % CH) * 8;
    bf16 *dst = S + r * LD + c;
    const bool in = r0 + r < limit && c < w;
    if (vec) {
      cp_async16(dst, in ? X + (int64_t)(r0 + r) * w + c : X, in ? 16 : 0);
    } else {
#pragma unroll
      for (int u = 0; u < 8; u++) dst[u] = in && c + u < w ? X[(int64_t)(r0 + r) * w + c + u] : __float2bfloat16(0.0f);
    }
  }
}

/* ==== forward ================================================================================= */
template <int DP, int MT, bool STATS>
__global__ void __launch_bounds__(NT) k_fa_fwd(const bf16 *__restrict__ Q, const bf16 *__restrict__ K,
                                               const bf16 *__restrict__ V, bf16 *__restrict__ O,
                                               float *__restrict__ L2, int nq, int nk, int d, int dv, float sl2,
                                               int causal, int b0, int vec) {
  constexpr int BQ = 64 * MT, LD = DP + 8, KS = DP / 16, NB = BK / 8, ND = DP / 8;
  extern __shared__ __align__(16) unsigned char smraw[];
  bf16 *Qs = reinterpret_cast<bf16 *>(smraw), *Ks = Qs + BQ * LD, *Vs = Ks + 2 * BK * LD;
  const int64_t b = b0 + blockIdx.y;
  const int tile = causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x; /* causal: longest rows first */
  const int i0 = tile * BQ, warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  Q += b * nq * d, K += b * nk * d, V += b * nk * dv;
  const int rows_end = min(nq, i0 + BQ), jend = causal ? min(nk, rows_end) : nk, ntiles = (jend + BK - 1) / BK;
  load_rows<BQ, DP>(Qs, Q, i0, nq, d, vec);
  if (ntiles > 0) {
    load_rows<BK, DP>(Ks, K, 0, jend, d, vec);
    if (!STATS) load_rows<BK, DP>(Vs, V, 0, jend, dv, vec);
  }
  cp_commit();
  cp_wait_all();
  __syncthreads();
  const int wq = warp * 16 * MT, wr0 = i0 + wq; /* this warp's first row in the tile, in Q */
  uint32_t qf[MT][KS][4];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int ks = 0; ks < KS; ks++) ldsm_x4(qf[mt][ks], Qs + (wq + mt * 16 + a_row(lane)) * LD + ks * 16 + a_col(lane));
  float o[MT][ND][4], m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0;
#pragma unroll
    for (int n = 0; n < ND; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0;
  }
  for (int jt = 0; jt < ntiles; jt++) {
    const int j0 = jt * BK;
    const bf16 *Kb = Ks + (jt & 1) * BK * LD, *Vb = Vs + (jt & 1) * BK * LD;
    if (jt + 1 < ntiles) { /* the next tile streams in while this one is used */
      load_rows<BK, DP>(Ks + ((jt + 1) & 1) * BK * LD, K, j0 + BK, jend, d, vec);
      if (!STATS) load_rows<BK, DP>(Vs + ((jt + 1) & 1) * BK * LD, V, j0 + BK, jend, dv, vec);
      cp_commit();
    }
    if (!(causal && wr0 + 16 * MT - 1 < j0)) { /* else no row of this warp sees these keys */
      float s[MT][NB][4];
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int n = 0; n < NB; n++) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0;
#pragma unroll
      for (int ks = 0; ks < KS; ks++) /* S = Q K^T */
#pragma unroll
        for (int np = 0; np < NB / 2; np++) {
          uint32_t kb[4];
          ldsm_x4(kb, Kb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LD + ks * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            mma_pair(s[mt][2 * np], s[mt][2 * np + 1], qf[mt][ks], kb);
          }
        }
      const bool masked = j0 + BK > jend || (causal && j0 + BK - 1 > wr0);
      float mb[MT][2];
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        float mx[2] = {m[mt][0], m[mt][1]};
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            float v = s[mt][n][e] * sl2;
            if (masked) {
              const int col = j0 + n * 8 + 2 * t + (e & 1), row = wr0 + mt * 16 + g + (e >> 1) * 8;
              if (col >= jend || (causal && col > row)) v = -INFINITY;
            }
            s[mt][n][e] = v;
            mx[e >> 1] = fmaxf(mx[e >> 1], v);
          }
#pragma unroll
        for (int h = 0; h < 2; h++) {
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
          mb[mt][h] = mx[h] == -INFINITY ? 0.0f : mx[h]; /* a row with no key yet: p = 0, no NaN */
          const float alpha = ex2(m[mt][h] - mb[mt][h]);
          m[mt][h] = mx[h];
          l[mt][h] *= alpha;
          if (!STATS) {
#pragma unroll
            for (int n = 0; n < ND; n++) o[mt][n][2 * h] *= alpha, o[mt][n][2 * h + 1] *= alpha;
          }
        }
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const float p = ex2(s[mt][n][e] - mb[mt][e >> 1]);
            s[mt][n][e] = p;
            l[mt][e >> 1] += p;
          }
      }
      if (!STATS) {
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) { /* O += P V */
          uint32_t a[MT][4];
#pragma unroll
          for (int mt = 0; mt < MT; mt++) acc_to_a(a[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
#pragma unroll
          for (int np = 0; np < ND / 2; np++) {
            uint32_t vb[4];
            ldsm_x4_t(vb, Vb + (kk * 16 + a_row(lane)) * LD + np * 16 + a_col(lane));
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
              mma_pair(o[mt][2 * np], o[mt][2 * np + 1], a[mt], vb);
            }
          }
        }
      }
    }
    if (jt + 1 < ntiles) cp_wait_all();
    __syncthreads(); /* the next tile is in; every warp is done with this one */
  }
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float sum = l[mt][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = wr0 + mt * 16 + g + h * 8;
      if (row >= nq) continue;
      if (STATS) {
        if (t == 0) L2[b * nq + row] = m[mt][h] + log2f(sum);
        continue;
      }
      const float inv = sum > 0 ? 1.0f / sum : 0.0f;
      bf16 *orow = O + (b * nq + row) * dv;
#pragma unroll
      for (int n = 0; n < ND; n++) {
        const int col = n * 8 + 2 * t;
        if (col + 1 < dv && !(dv & 1)) {
          *reinterpret_cast<__nv_bfloat162 *>(orow + col) =
              __floats2bfloat162_rn(o[mt][n][2 * h] * inv, o[mt][n][2 * h + 1] * inv);
        } else {
          if (col < dv) orow[col] = __float2bfloat16(o[mt][n][2 * h] * inv);
          if (col + 1 < dv) orow[col + 1] = __float2bfloat16(o[mt][n][2 * h + 1] * inv);
        }
      }
    }
}

/* ==== backward ================================================================================ */
template <int BQB>
__device__ __forceinline__ void load_stats(float *Ls, float *Ds, const float *L2, const float *D, int i0, int nq) {
  for (int r = threadIdx.x; r < BQB; r += NT) {
    const bool in = i0 + r < nq;
    cp_async4(Ls + r, in ? L2 + i0 + r : L2, in ? 4 : 0);
    cp_async4(Ds + r, in ? D + i0 + r : D, in ? 4 : 0);
  }
}

template <int DP, int BQB>
__global__ void __launch_bounds__(NT) k_fa_bwd(const bf16 *__restrict__ Q, const bf16 *__restrict__ K,
                                               const bf16 *__restrict__ V, const bf16 *__restrict__ dO,
                                               const float *__restrict__ L2, const float *__restrict__ D,
                                               float *__restrict__ dQ, bf16 *__restrict__ out, int nq, int nk, int d,
                                               int dv, float sl2, float scale, int causal, int b0, int vec) {
  constexpr int LD = DP + 8, LDS = BQB + 8, KS = DP / 16, NQ = BQB / 8, ND = DP / 8;
  constexpr int MQ = BQB / 16, NDW = ND / (4 / MQ); /* dQ: warp -> m-tile warp % MQ, NDW n-tiles */
  static_assert(NDW % 2 == 0 && 4 % MQ == 0, "dQ split");
  extern __shared__ __align__(16) unsigned char smraw[];
  float *Ls = reinterpret_cast<float *>(smraw), *Ds = Ls + 2 * BQB;
  bf16 *Ks = reinterpret_cast<bf16 *>(Ds + 2 * BQB), *Vs = Ks + BK * LD, *Qs = Vs + BK * LD, *dOs = Qs + 2 * BQB * LD;
  bf16 *dSs = dOs + 2 * BQB * LD;
  const int64_t b = b0 + blockIdx.y;
  const int j0 = blockIdx.x * BK, warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  Q += b * nq * d, K += b * nk * d, V += b * nk * dv, dO += b * nq * dv, L2 += b * nq, D += b * nq, dQ += b * nq * d;
  const int it0 = causal ? j0 / BQB : 0, nit = (nq + BQB - 1) / BQB, kw = warp * 16;
  load_rows<BK, DP>(Ks, K, j0, nk, d, vec);
  load_rows<BK, DP>(Vs, V, j0, nk, dv, vec);
  if (it0 < nit) {
    load_rows<BQB, DP>(Qs, Q, it0 * BQB, nq, d, vec);
    load_rows<BQB, DP>(dOs, dO, it0 * BQB, nq, dv, vec);
    load_stats<BQB>(Ls, Ds, L2, D, it0 * BQB, nq);
  }
  cp_commit();
  cp_wait_all();
  __syncthreads();
  float dk[ND][4], dvv[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dvv[n][e] = 0;
  for (int it = it0; it < nit; it++) {
    const int i0 = it * BQB, buf = (it - it0) & 1;
    if (it + 1 < nit) {
      const int nb = buf ^ 1;
      load_rows<BQB, DP>(Qs + nb * BQB * LD, Q, i0 + BQB, nq, d, vec);
      load_rows<BQB, DP>(dOs + nb * BQB * LD, dO, i0 + BQB, nq, dv, vec);
      load_stats<BQB>(Ls + nb * BQB, Ds + nb * BQB, L2, D, i0 + BQB, nq);
      cp_commit();
    }
    const bf16 *Qb = Qs + buf * BQB * LD, *dOb = dOs + buf * BQB * LD;
    const float *Lb = Ls + buf * BQB, *Db = Ds + buf * BQB;
    float st[NQ][4], dpt[NQ][4];
#pragma unroll
    for (int n = 0; n < NQ; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[n][e] = dpt[n][e] = 0;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) { /* S^T = K Q^T, dP^T = V dO^T */
      uint32_t ka[4], va[4];
      ldsm_x4(ka, Ks + (kw + a_row(lane)) * LD + ks * 16 + a_col(lane));
      ldsm_x4(va, Vs + (kw + a_row(lane)) * LD + ks * 16 + a_col(lane));
#pragma unroll
      for (int np = 0; np < NQ / 2; np++) {
        const int off = (np * 16 + (lane & 7) + (lane >> 4) * 8) * LD + ks * 16 + ((lane >> 3) & 1) * 8;
        uint32_t qb[4], gb[4];
        ldsm_x4(qb, Qb + off);
        ldsm_x4(gb, dOb + off);
        mma_pair(st[2 * np], st[2 * np + 1], ka, qb);
        mma_pair(dpt[2 * np], dpt[2 * np + 1], va, gb);
      }
    }
    const bool masked = i0 + BQB > nq || j0 + BK > nk || (causal && i0 < j0 + BK - 1);
#pragma unroll
    for (int n = 0; n < NQ; n++) { /* P^T and dS^T in place */
      const float2 lq = *reinterpret_cast<const float2 *>(Lb + n * 8 + 2 * t);
      const float2 dq = *reinterpret_cast<const float2 *>(Db + n * 8 + 2 * t);
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float p = ex2(st[n][e] * sl2 - ((e & 1) ? lq.y : lq.x));
        if (masked) {
          const int key = j0 + kw + g + (e >> 1) * 8, q = i0 + n * 8 + 2 * t + (e & 1);
          if (key >= nk || q >= nq || (causal && key > q)) p = 0;
        }
        st[n][e] = p;
        dpt[n][e] = p * (dpt[n][e] - ((e & 1) ? dq.y : dq.x));
      }
    }
#pragma unroll
    for (int kk = 0; kk < BQB / 16; kk++) { /* dV += P^T dO, dK += dS^T Q */
      uint32_t pa[4], sa[4];
      acc_to_a(pa, st[2 * kk], st[2 * kk + 1]);
      acc_to_a(sa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int np = 0; np < ND / 2; np++) {
        const int off = (kk * 16 + a_row(lane)) * LD + np * 16 + a_col(lane);
        uint32_t gb[4], qb[4];
        ldsm_x4_t(gb, dOb + off);
        ldsm_x4_t(qb, Qb + off);
        mma_pair(dvv[2 * np], dvv[2 * np + 1], pa, gb);
        mma_pair(dk[2 * np], dk[2 * np + 1], sa, qb);
      }
    }
#pragma unroll
    for (int n = 0; n < NQ; n++) /* dS^T (bf16) for the block's dQ product */
#pragma unroll
      for (int h = 0; h < 2; h++)
        *reinterpret_cast<uint32_t *>(dSs + (kw + g + h * 8) * LDS + n * 8 + 2 * t) = pack2(dpt[n][2 * h], dpt[n][2 * h + 1]);
    __syncthreads();
    { /* dQ_i += scale dS K_j: warp -> 16 query rows x NDW * 8 columns */
      const int qm = warp % MQ, nd0 = (warp / MQ) * NDW;
      float acc[NDW][4];
#pragma unroll
      for (int n = 0; n < NDW; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0;
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++) {
        uint32_t a[4];
        ldsm_x4_t(a, dSs + (kk * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + qm * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int np = 0; np < NDW / 2; np++) {
          uint32_t kb[4];
          ldsm_x4_t(kb, Ks + (kk * 16 + a_row(lane)) * LD + (nd0 + 2 * np) * 8 + a_col(lane));
          mma_pair(acc[2 * np], acc[2 * np + 1], a, kb);
        }
      }
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int q = i0 + qm * 16 + g + h * 8;
        if (q >= nq) continue;
#pragma unroll
        for (int n = 0; n < NDW; n++) {
          const int col = (nd0 + n) * 8 + 2 * t;
          if (col < d) atomicAdd(dQ + (int64_t)q * d + col, acc[n][2 * h] * scale);
          if (col + 1 < d) atomicAdd(dQ + (int64_t)q * d + col + 1, acc[n][2 * h + 1] * scale);
        }
      }
    }
    if (it + 1 < nit) cp_wait_all();
    __syncthreads(); /* the next tile is in; dS's readers are done */
  }
  const int64_t per = (int64_t)nq * d + (int64_t)nk * d + (int64_t)nk * dv;
  bf16 *dK = out + b * per + (int64_t)nq * d, *dV = dK + (int64_t)nk * d;
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int key = j0 + kw + g + h * 8;
    if (key >= nk) continue;
#pragma unroll
    for (int n = 0; n < ND; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int col = n * 8 + 2 * t + e;
        if (col < d) dK[(int64_t)key * d + col] = __float2bfloat16(dk[n][2 * h + e] * scale);
        if (col < dv) dV[(int64_t)key * dv + col] = __float2bfloat16(dvv[n][2 * h + e]);
      }
  }
}

/* ---- host side -------------------------------------------------------------------------------- */

#define MAX_GRID_Y 65535
static const float LOG2E = 1.4426950408889634f;

static int padded_dim(const ct_attn_dims &g) {
  int w = g.d > g.dv ? g.d : g.dv;
  return w <= 16 ? 16 : w <= 32 ? 32 : w <= 64 ? 64 : 128;
}
static bool vec_ok(const ct_attn_dims &g, const void *const *p, int n) {
  if (g.d % 8 || g.dv % 8) return false;
  for (int i = 0; i < n; i++)
    if ((uintptr_t)p[i] & 15) return false;
  return true;
}

template <typename Kern>
static int launch_grid(Kern kernel, size_t smem, unsigned tiles, int64_t batch, cudaStream_t s, const char *what,
                       void (*go)(Kern, dim3, size_t, cudaStream_t, int, void *), void *args) {
  if (ct_cu_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), what)) return -1;
  for (int64_t b0 = 0; b0 < batch; b0 += MAX_GRID_Y) {
    go(kernel, dim3(tiles, (unsigned)(batch - b0 < MAX_GRID_Y ? batch - b0 : MAX_GRID_Y)), smem, s, (int)b0, args);
    if (ct_cu_check_launch(what)) return -1;
  }
  return 0;
}

struct fwd_args {
  const bf16 *q, *k, *v;
  bf16 *o;
  float *L2;
  const ct_attn_dims *g;
  float sl2;
  int causal, vec;
};

template <int DP, bool STATS>
static int fwd_launch(const fwd_args &a, cudaStream_t s) {
  constexpr int MT = DP <= 64 ? 2 : 1, BQ = 64 * MT;
  static_assert(BQ == CT_ATTN_CUDA_TC_BQ(DP) && BK == CT_ATTN_CUDA_BK, "the tiles core/ops/attention.h counts");
  typedef decltype(&k_fa_fwd<DP, MT, STATS>) Kern;
  const size_t smem = sizeof(bf16) * (size_t)(BQ + 4 * BK) * (DP + 8);
  auto go = [](Kern k, dim3 grid, size_t sm, cudaStream_t st, int b0, void *p) {
    const fwd_args &x = *(const fwd_args *)p;
    k<<<grid, NT, sm, st>>>(x.q, x.k, x.v, x.o, x.L2, x.g->nq, x.g->nk, x.g->d, x.g->dv, x.sl2, x.causal, b0, x.vec);
  };
  return launch_grid<Kern>(k_fa_fwd<DP, MT, STATS>, smem, (unsigned)((a.g->nq + BQ - 1) / BQ), a.g->batch, s,
                           "attention_flash (tensor cores)", go, (void *)&a);
}

int ct_flash_tc_forward(const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o, float *L2, const ct_attn_dims &g,
                        float scale, int causal, cudaStream_t s) {
  const void *p[4] = {q, k, v, o};
  fwd_args a = {q, k, v, o, L2, &g, scale * LOG2E, causal, vec_ok(g, p, o ? 4 : 3)};
  const bool st = o == NULL;
  switch (padded_dim(g)) {
  case 16: return st ? fwd_launch<16, true>(a, s) : fwd_launch<16, false>(a, s);
  case 32: return st ? fwd_launch<32, true>(a, s) : fwd_launch<32, false>(a, s);
  case 64: return st ? fwd_launch<64, true>(a, s) : fwd_launch<64, false>(a, s);
  default: return st ? fwd_launch<128, true>(a, s) : fwd_launch<128, false>(a, s);
  }
}

struct bwd_args {
  const bf16 *q, *k, *v, *dO;
  const float *L2, *D;
  float *dQ;
  bf16 *out;
  const ct_attn_dims *g;
  float sl2, scale;
  int causal, vec;
};

template <int DP>
static int bwd_launch(const bwd_args &a, cudaStream_t s) {
  constexpr int BQB = DP > 64 ? 32 : 64;
  typedef decltype(&k_fa_bwd<DP, BQB>) Kern;
  const size_t smem = sizeof(float) * 4 * BQB + sizeof(bf16) * ((size_t)(2 * BK + 4 * BQB) * (DP + 8) + BK * (BQB + 8));
  auto go = [](Kern k, dim3 grid, size_t sm, cudaStream_t st, int b0, void *p) {
    const bwd_args &x = *(const bwd_args *)p;
    k<<<grid, NT, sm, st>>>(x.q, x.k, x.v, x.dO, x.L2, x.D, x.dQ, x.out, x.g->nq, x.g->nk, x.g->d, x.g->dv, x.sl2,
                            x.scale, x.causal, b0, x.vec);
  };
  return launch_grid<Kern>(k_fa_bwd<DP, BQB>, smem, (unsigned)((a.g->nk + BK - 1) / BK), a.g->batch, s,
                           "attention_flash_backward (tensor cores)", go, (void *)&a);
}

int ct_flash_tc_backward(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dO, const float *L2, const float *D,
                         float *dQ, bf16 *out, const ct_attn_dims &g, float scale, int causal, cudaStream_t s) {
  const void *p[4] = {q, k, v, dO};
  bwd_args a = {q, k, v, dO, L2, D, dQ, out, &g, scale * LOG2E, scale, causal, vec_ok(g, p, 4)};
  static_assert(BK == CT_ATTN_CUDA_BWD_BK && CT_ATTN_CUDA_BWD_BQ(128) == 32 && CT_ATTN_CUDA_BWD_BQ(64) == 64,
                "the tiles core/ops/attention.h counts");
  switch (padded_dim(g)) {
  case 16: return bwd_launch<16>(a, s);
  case 32: return bwd_launch<32>(a, s);
  case 64: return bwd_launch<64>(a, s);
  default: return bwd_launch<128>(a, s);
  }
}
