/* nn.cu: CUDA forwards of the nn ops of core/ops_nn.c: softmax and log_softmax over one dim,
 * layer_norm over the last dims, nll_loss, one_hot and dropout_mask (Philox on the device).
 * Row-wise ops run one warp per row when rows are short (<= 1024) and one block per row when
 * they are long; softmax over a dim that is not the innermost runs one thread per column.
 * Invariants: each kernel follows the CPU's arithmetic: softmax shifts by the row max and sums
 * exp in double, layer_norm takes mean and variance in double and normalises in the input's
 * type, nll_loss accumulates in double; dropout_mask keeps element i when
 * ct_philox_uniform(seed, offset + i) >= p, bit for bit the CPU's mask. Class and index values
 * are range-checked before use (ct_cu_index_positions). */
#include <math.h>
#include <string.h>

#include "cu_util.cuh"

/* ---- reductions across a warp, or across a block of warps ---------------------------------- */
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  return __shfl_sync(0xffffffffu, v, 0);
}
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    T o = __shfl_down_sync(0xffffffffu, v, d);
    v = o > v ? o : v;
  }
  return __shfl_sync(0xffffffffu, v, 0);
}
/* Whole-block versions (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
   Lanes past the last warp's partial pad with the identity: 0 for the sum, warp 0's max for max. */
template <bool MAX, typename T>
__device__ T block_reduce(T v, T *sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = MAX ? warp_max(v) : warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  T t = lane < nw ? sh[lane] : MAX ? sh[0] : (T)0;
  return MAX ? warp_max(t) : warp_sum(t);
}
template <typename A>
__device__ A block_sum(A v, A *sh) { return block_reduce<false>(v, sh); }
template <typename T>
__device__ T block_max(T v, T *sh) { return block_reduce<true>(v, sh); }

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }

/* The row of x ([rows, D]) and y that this thread works on (ROWBLOCK: one block per row; else one
   warp per row, 8 rows per block), its lane in the row and the row's lane count; sum and max reduce
   over the row's lanes (every lane gets the result). Check row against the row count first. */
template <typename T, bool ROWBLOCK>
struct row_lanes {
  int64_t row;
  int lane, nl;
  const T *xr;
  T *yr;
  __device__ row_lanes(const T *x, T *y, int64_t D)
      : row(ROWBLOCK ? (int64_t)blockIdx.x : (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)),
        lane(ROWBLOCK ? threadIdx.x : (threadIdx.x & 31)), nl(ROWBLOCK ? blockDim.x : 32), xr(x + row * D),
        yr(y + row * D) {}
  template <typename A>
  __device__ A sum(A v, A *sh) const { return ROWBLOCK ? block_sum(v, sh) : warp_sum(v); }
  template <typename A>
  __device__ A max(A v, A *sh) const { return ROWBLOCK ? block_max(v, sh) : warp_max(v); }
};

/* ---- softmax / log_softmax --------------------------------------------------------------------- */
/* Rows of length D. ROWBLOCK: one block per row; else one warp per row, 8 rows per block. */
template <typename T, bool LOG, bool ROWBLOCK>
__global__ void k_softmax_rows(int64_t rows, int64_t D, const T *__restrict__ x, T *__restrict__ y) {
  __shared__ double shd[32];
  __shared__ T sht[32];
  const row_lanes<T, ROWBLOCK> r(x, y, D);
  if (r.row >= rows) return;
  T m = r.xr[0];
  for (int64_t j = r.lane; j < D; j += r.nl) m = r.xr[j] > m ? r.xr[j] : m;
  m = r.max(m, sht);
  double s = 0;
  for (int64_t j = r.lane; j < D; j += r.nl) s += (double)m_exp(r.xr[j] - m);
  s = r.sum(s, shd);
  if (LOG) {
    T lse = m + (T)log(s);
    for (int64_t j = r.lane; j < D; j += r.nl) r.yr[j] = r.xr[j] - lse;
  } else {
    T inv = (T)(1.0 / s);
    for (int64_t j = r.lane; j < D; j += r.nl) r.yr[j] = m_exp(r.xr[j] - m) * inv;
  }
}

/* x as [outer, D, inner] with inner > 1: one thread per (outer, inner) column. */
template <typename T, bool LOG>
__global__ void k_softmax_cols(int64_t outer, int64_t D, int64_t inner, const T *__restrict__ x, T *__restrict__ y) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < outer * inner; c += step) {
    int64_t o = c / inner, k = c - o * inner;
    const T *xc = x + o * D * inner + k;
    T *yc = y + o * D * inner + k;
    T m = xc[0];
    for (int64_t j = 1; j < D; j++) m = xc[j * inner] > m ? xc[j * inner] : m;
    double s = 0;
    for (int64_t j = 0; j < D; j++) s += (double)m_exp(xc[j * inner] - m);
    if (LOG) {
      T lse = m + (T)log(s);
      for (int64_t j = 0; j < D; j++) yc[j * inner] = xc[j * inner] - lse;
    } else {
      T inv = (T)(1.0 / s);
      for (int64_t j = 0; j < D; j++) yc[j * inner] = m_exp(xc[j * inner] - m) * inv;
    }
  }
}

template <typename T, bool LOG>
static int run_softmax(ct_tensor *out, const ct_tensor *xc, int dim) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  int64_t outer = 1, D = 1, inner = 1;
  for (int d = 0; d < xc->ndim; d++) {
    if (d < dim) outer *= xc->shape[d];
    else if (d == dim) D = xc->shape[d];
    else inner *= xc->shape[d];
  }
  if (outer * D * inner == 0 || D == 0) return 0;
  const T *x = (const T *)ct_data_ptr(xc);
  T *y = (T *)ct_data_ptr(out);
  if (inner == 1) {
    if (D > 1024) k_softmax_rows<T, LOG, true><<<(unsigned)outer, 256, 0, s>>>(outer, D, x, y);
    else k_softmax_rows<T, LOG, false><<<(unsigned)((outer + 7) / 8), 256, 0, s>>>(outer, D, x, y);
  } else {
    k_softmax_cols<T, LOG><<<ct_cu_blocks(outer * inner, dev), CT_CU_THREADS, 0, s>>>(outer, D, inner, x, y);
  }
  return 0;
}

template <bool LOG>
static int softmax_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  ct_tensor *xc = ct_contiguous(in[0]);
  if (!xc) return -1;
  int dim = in[0]->ndim ? (int)a->i[0] : 0;
  int rc;
  if (xc->dtype == CT_F32) rc = run_softmax<float, LOG>(out, xc, dim);
  else if (xc->dtype == CT_F64) rc = run_softmax<double, LOG>(out, xc, dim);
  else rc = ct_errorf("no CUDA kernel for dtype %s", ct_dtype_name(xc->dtype));
  ct_release(xc);
  return rc;
}
static int softmax_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  return softmax_impl<false>(out, in, nin, a);
}
static int log_softmax_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  return softmax_impl<true>(out, in, nin, a);
}
CT_CU_FORWARD(softmax, softmax_fwd)
CT_CU_FORWARD(log_softmax, log_softmax_fwd)

/* ---- layer_norm ---------------------------------------------------------------------------------- */
template <typename T, bool ROWBLOCK>
__global__ void k_layer_norm(int64_t M, int64_t D, const T *__restrict__ x, const T *__restrict__ w,
                             const T *__restrict__ b, T *__restrict__ y, double eps) {
  __shared__ double shd[32];
  const row_lanes<T, ROWBLOCK> r(x, y, D);
  if (r.row >= M) return;
  double s = 0;
  for (int64_t j = r.lane; j < D; j += r.nl) s += (double)r.xr[j];
  s = r.sum(s, shd);
  double mu = s / (double)D, v = 0;
  for (int64_t j = r.lane; j < D; j += r.nl) v += ((double)r.xr[j] - mu) * ((double)r.xr[j] - mu);
  v = r.sum(v, shd);
  T rstd = (T)(1.0 / sqrt(v / (double)D + eps)), tmu = (T)mu;
  for (int64_t j = r.lane; j < D; j += r.nl) {
    T t = (r.xr[j] - tmu) * rstd;
    if (w) t = t * w[j];
    if (b) t = t + b[j];
    r.yr[j] = t;
  }
}

template <typename T>
static int run_layer_norm(ct_tensor *out, ct_tensor *const *c, int nin, const ct_attrs *a) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  const ct_tensor *x = c[0];
  int nd = (int)a->i[0];
  int64_t D = 1;
  for (int d = x->ndim - nd; d < x->ndim; d++) D *= x->shape[d];
  int64_t M = D ? ct_numel(x) / D : 0;
  if (!M) return 0;
  const T *w = nin > 1 ? (const T *)ct_data_ptr(c[1]) : NULL, *b = nin > 2 ? (const T *)ct_data_ptr(c[2]) : NULL;
  const T *xp = (const T *)ct_data_ptr(x);
  T *y = (T *)ct_data_ptr(out);
  if (D > 1024) k_layer_norm<T, true><<<(unsigned)M, 256, 0, s>>>(M, D, xp, w, b, y, a->f[0]);
  else k_layer_norm<T, false><<<(unsigned)((M + 7) / 8), 256, 0, s>>>(M, D, xp, w, b, y, a->f[0]);
  return 0;
}

static int layer_norm_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  ct_tensor *c[3] = {NULL, NULL, NULL};
  int rc = 0;
  for (int i = 0; i < nin && !rc; i++)
    if (!(c[i] = ct_contiguous(in[i]))) rc = -1;
  if (!rc) {
    if (in[0]->dtype == CT_F32) rc = run_layer_norm<float>(out, c, nin, a);
    else if (in[0]->dtype == CT_F64) rc = run_layer_norm<double>(out, c, nin, a);
    else rc = ct_errorf("no CUDA kernel for dtype %s", ct_dtype_name(in[0]->dtype));
  }
  for (int i = 0; i < 3; i++) ct_release(c[i]);
  return rc;
}
CT_CU_FORWARD(layer_norm, layer_norm_fwd)

/* ---- dropout_mask: Philox 4x32-10, as core/rng.c ------------------------------------------------ */
__device__ __forceinline__ uint32_t philox_word0(uint64_t seed, uint64_t counter) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
  for (int r = 0; r < 10; r++) {
    uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

template <typename T>
__global__ void k_dropout_mask(int64_t n, T *__restrict__ o, uint64_t seed, uint64_t off, float p, T scale) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    float u = (float)(philox_word0(seed, off + (uint64_t)i) >> 8) * (1.0f / 16777216.0f);
    o[i] = u >= p ? scale : (T)0;
  }
}

static int dropout_mask_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)in, (void)nin;
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  double p = a->f[0], scale = 1.0 / (1.0 - p);
  uint64_t seed, off = (uint64_t)a->i[0];
  memcpy(&seed, &a->i[1], sizeof seed);
  int64_t n = ct_numel(out);
  if (!n) return 0;
  if (out->dtype == CT_F32)
    k_dropout_mask<float><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(n, (float *)ct_data_ptr(out), seed, off,
                                                                          (float)p, (float)scale);
  else if (out->dtype == CT_F64)
    k_dropout_mask<double><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(n, (double *)ct_data_ptr(out), seed, off,
                                                                           (float)p, scale);
  else return ct_errorf("no CUDA kernel for dtype %s", ct_dtype_name(out->dtype));
  return 0;
}
CT_CU_FORWARD(dropout_mask, dropout_mask_fwd)

/* ---- nll_loss: -mean_n logp[n, target_n] --------------------------------------------------------- */
template <typename T>
__global__ void k_nll(int64_t N, const T *__restrict__ lp, int64_t s0, int64_t s1, const int64_t *__restrict__ pos,
                      T *out) {
  __shared__ double sh[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) acc += (double)lp[i * s0 + pos[i] * s1];
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = (T)(-acc / (double)N);
}

static int nll_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  const ct_tensor *lp = in[0], *t = in[1];
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  int64_t N = lp->ndim == 2 ? lp->shape[0] : 1, C = lp->shape[lp->ndim - 1];
  int64_t s0 = lp->ndim == 2 ? lp->stride[0] : 0, s1 = lp->stride[lp->ndim - 1];
  int64_t *pos, bad_at, bad_v;
  if (ct_cu_index_positions(t, C, &pos, &bad_at, &bad_v)) return -1;
  if (bad_at >= 0) {
    ct_cu_free(pos, 0, dev);
    return ct_errorf("nll_loss: target %lld (sample %lld) is out of range for C=%lld classes (1-based; valid "
                     "1..%lld or -%lld..-1)", (long long)bad_v, (long long)bad_at + 1, (long long)C, (long long)C,
                     (long long)C);
  }
  if (lp->dtype == CT_F32)
    k_nll<float><<<1, 1024, 0, s>>>(N, (const float *)ct_data_ptr(lp), s0, s1, pos, (float *)ct_data_ptr(out));
  else
    k_nll<double><<<1, 1024, 0, s>>>(N, (const double *)ct_data_ptr(lp), s0, s1, pos, (double *)ct_data_ptr(out));
  int rc = ct_cu_check_launch("nll_loss");
  ct_cu_free(pos, 0, dev);
  return rc;
}
CT_CU_FORWARD(nll_loss, nll_fwd)

/* ---- one_hot: idx.shape + [C], 1 at each class --------------------------------------------------- */
__global__ void k_one_hot(int64_t n, int64_t C, const int64_t *__restrict__ pos, char *o, int osz, uint64_t one) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    char *p = o + (i * C + pos[i]) * osz;
    switch (osz) {
    case 1: *(uint8_t *)p = (uint8_t)one; break;
    case 2: *(uint16_t *)p = (uint16_t)one; break;
    case 4: *(uint32_t *)p = (uint32_t)one; break;
    default: *(uint64_t *)p = one; break;
    }
  }
}

static int one_hot_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  int64_t n = ct_numel(in[0]), C = a->i[0];
  size_t osz = ct_dtype_size(out->dtype);
  if (ct_cu_zero(out, s, "one_hot")) return -1;
  if (!n) return 0;
  int64_t *pos, bad_at, bad_v;
  if (ct_cu_index_positions(in[0], C, &pos, &bad_at, &bad_v)) return -1;
  if (bad_at >= 0) {
    ct_cu_free(pos, 0, dev);
    return ct_errorf("one_hot: index %lld (element %lld) is out of range for %lld classes (1-based; valid 1..%lld or "
                     "-%lld..-1)", (long long)bad_v, (long long)bad_at + 1, (long long)C, (long long)C, (long long)C);
  }
  /* the bit pattern of 1 in the output dtype, as ct_store_from_double(dt, p, 1.0) writes it */
  uint64_t one = 0;
  char host1[8] = {0};
  switch (out->dtype) {
  case CT_F32: { float v = 1; memcpy(host1, &v, 4); break; }
  case CT_F64: { double v = 1; memcpy(host1, &v, 8); break; }
  case CT_F16: { uint16_t v = 0x3c00; memcpy(host1, &v, 2); break; }
  case CT_BF16: { uint16_t v = 0x3f80; memcpy(host1, &v, 2); break; }
  case CT_I32: { int32_t v = 1; memcpy(host1, &v, 4); break; }
  case CT_I64: { int64_t v = 1; memcpy(host1, &v, 8); break; }
  default: host1[0] = 1; break;
  }
  memcpy(&one, host1, 8);
  k_one_hot<<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(n, C, pos, (char *)ct_data_ptr(out), (int)osz, one);
  int rc = ct_cu_check_launch("one_hot");
  ct_cu_free(pos, 0, dev);
  return rc;
}
CT_CU_FORWARD_ON(one_hot, one_hot_fwd)

#define NN_OPS(X) X(softmax) X(log_softmax) X(layer_norm) X(nll_loss) X(one_hot)
extern "C" void ct_cu_register_nn(void) { NN_OPS(CT_CU_REGISTER) }

extern "C" void ct_cu_register_random(void) { ct_cuda_forward[CT_OP_dropout_mask] = dropout_mask_cuda; }
