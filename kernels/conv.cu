/* conv.cu: CUDA forwards of the convolution ops of core/ops_conv.c: im2col and its adjoint
 * col2im, conv2d as im2col + one strided-batched cuBLAS GEMM per chunk of images (bias written
 * first, GEMM accumulating onto it, as on the CPU), max_pool2d and its router.
 * Layouts as the CPU's: columns [N, C*KH*KW, OH*OW], row (c*KH + ki)*KW + kj, column oh*OW + ow;
 * geometry in attrs.i[0..5] = kh, kw, stride h, stride w, padding h, padding w.
 * Invariants: col2im gathers (one thread per pixel, windows in (ki, kj) order) instead of
 * scattering, so it is deterministic; max pooling takes the first maximum in row-major window
 * order with NaN maximal, in the forward and in the router alike. */
#include <string.h>

#include "blas.h"
#include "cu_util.cuh"

typedef struct {
  int64_t N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW;
} conv_geom;

static conv_geom geom_make(const int64_t *xshape, const ct_attrs *a) {
  conv_geom g;
  g.N = xshape[0], g.C = xshape[1], g.H = xshape[2], g.W = xshape[3];
  g.kh = a->i[0], g.kw = a->i[1], g.sh = a->i[2], g.sw = a->i[3], g.ph = a->i[4], g.pw = a->i[5];
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

/* ---- im2col / col2im --------------------------------------------------------------------------- */
/* cols for images [n0, n0 + nimg) of x, into col (image n0 first). */
template <typename T>
__global__ void k_im2col(int64_t total, conv_geom g, int64_t n0, const T *__restrict__ x, T *__restrict__ col) {
  int64_t L = g.OH * g.OW, KK = g.kh * g.kw, CKK = g.C * KK;
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
    int64_t l = e % L, r = (e / L) % CKK, n = n0 + e / (L * CKK);
    int64_t c = r / KK, ki = (r / g.kw) % g.kh, kj = r % g.kw;
    int64_t oh = l / g.OW, ow = l % g.OW;
    int64_t ih = oh * g.sh - g.ph + ki, iw = ow * g.sw - g.pw + kj;
    col[e] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[((n * g.C + c) * g.H + ih) * g.W + iw] : (T)0;
  }
}

template <typename T>
__global__ void k_col2im(int64_t total, conv_geom g, const T *__restrict__ col, T *__restrict__ x) {
  int64_t L = g.OH * g.OW, CKK = g.C * g.kh * g.kw;
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
    int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = (e / (g.W * g.H)) % g.C, n = e / (g.W * g.H * g.C);
    T acc = 0;
    for (int64_t ki = 0; ki < g.kh; ki++) {
      int64_t oh_num = ih + g.ph - ki;
      if (oh_num < 0 || oh_num % g.sh) continue;
      int64_t oh = oh_num / g.sh;
      if (oh >= g.OH) continue;
      for (int64_t kj = 0; kj < g.kw; kj++) {
        int64_t ow_num = iw + g.pw - kj;
        if (ow_num < 0 || ow_num % g.sw) continue;
        int64_t ow = ow_num / g.sw;
        if (ow >= g.OW) continue;
        acc += col[(n * CKK + (c * g.kh + ki) * g.kw + kj) * L + oh * g.OW + ow];
      }
    }
    x[e] = acc;
  }
}

template <typename T>
static void launch_im2col(cudaStream_t s, int dev, conv_geom g, int64_t n0, int64_t nimg, const void *x, void *col) {
  int64_t total = nimg * g.C * g.kh * g.kw * g.OH * g.OW;
  if (total) k_im2col<T><<<ct_cu_blocks(total, dev), CT_CU_THREADS, 0, s>>>(total, g, n0, (const T *)x, (T *)col);
}

static int im2col_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  ct_tensor *x = ct_contiguous(in[0]);
  if (!x) return -1;
  conv_geom g = geom_make(x->shape, a);
  if (x->dtype == CT_F32) launch_im2col<float>(s, dev, g, 0, g.N, ct_data_ptr(x), ct_data_ptr(out));
  else launch_im2col<double>(s, dev, g, 0, g.N, ct_data_ptr(x), ct_data_ptr(out));
  int rc = ct_cu_check_launch("im2col");
  ct_release(x);
  return rc;
}
CT_CU_FORWARD_ON(im2col, im2col_fwd)

static int col2im_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  ct_tensor *c = ct_contiguous(in[0]);
  if (!c) return -1;
  conv_geom g = geom_make(out->shape, a);
  int64_t total = ct_numel(out);
  if (total) {
    if (out->dtype == CT_F32)
      k_col2im<float><<<ct_cu_blocks(total, dev), CT_CU_THREADS, 0, s>>>(total, g, (const float *)ct_data_ptr(c),
                                                                          (float *)ct_data_ptr(out));
    else
      k_col2im<double><<<ct_cu_blocks(total, dev), CT_CU_THREADS, 0, s>>>(total, g, (const double *)ct_data_ptr(c),
                                                                           (double *)ct_data_ptr(out));
  }
  int rc = ct_cu_check_launch("col2im");
  ct_release(c);
  return rc;
}
CT_CU_FORWARD_ON(col2im, col2im_fwd)

/* ---- conv2d -------------------------------------------------------------------------------------- */
template <typename T>
__global__ void k_fill_bias(int64_t total, int64_t O, int64_t L, const T *__restrict__ b, T *__restrict__ out) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) out[e] = b[(e / L) % O];
}

static int conv2d_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  cublasHandle_t h = ct_cu_blas(dev);
  if (!h) return -1;
  bool f32 = in[0]->dtype == CT_F32;
  size_t isz = ct_dtype_size(in[0]->dtype);
  ct_tensor *x = ct_contiguous(in[0]), *w = x ? ct_contiguous(in[1]) : NULL;
  ct_tensor *b = w && nin > 2 ? ct_contiguous(in[2]) : NULL;
  if (!w || (nin > 2 && !b)) {
    ct_release(x), ct_release(w);
    return -1;
  }
  conv_geom g = geom_make(x->shape, a);
  int64_t O = w->shape[0], L = g.OH * g.OW, K = g.C * g.kh * g.kw, total = ct_numel(out);
  bool direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  int rc = 0;
  if (L > INT32_MAX || O > INT32_MAX || K > INT32_MAX) rc = ct_errorf("conv2d: sizes beyond cuBLAS's 32-bit limits");
  if (!rc && total && b) {
    if (f32) k_fill_bias<float><<<ct_cu_blocks(total, dev), CT_CU_THREADS, 0, s>>>(total, O, L, (const float *)ct_data_ptr(b), (float *)ct_data_ptr(out));
    else k_fill_bias<double><<<ct_cu_blocks(total, dev), CT_CU_THREADS, 0, s>>>(total, O, L, (const double *)ct_data_ptr(b), (double *)ct_data_ptr(out));
    rc = ct_cu_check_launch("conv2d bias");
  }
  /* images per chunk: the column buffer stays under 256 MiB */
  int64_t per_img = K * L * (int64_t)isz, chunk = direct ? g.N : (per_img ? ((int64_t)256 << 20) / per_img : g.N);
  if (chunk < 1) chunk = 1;
  if (chunk > g.N) chunk = g.N;
  void *col = NULL;
  if (!rc && !direct && total && !(col = ct_cu_scratch((size_t)(chunk * per_img), dev, "conv2d"))) rc = -1;
  for (int64_t n0 = 0; n0 < g.N && !rc && total; n0 += chunk) {
    int64_t nimg = g.N - n0 < chunk ? g.N - n0 : chunk;
    const char *B = direct ? (const char *)ct_data_ptr(x) + n0 * g.C * g.H * g.W * (int64_t)isz : (const char *)col;
    if (!direct) {
      if (f32) launch_im2col<float>(s, dev, g, n0, nimg, ct_data_ptr(x), col);
      else launch_im2col<double>(s, dev, g, n0, nimg, ct_data_ptr(x), col);
      if ((rc = ct_cu_check_launch("conv2d im2col"))) break;
    }
    char *C = (char *)ct_data_ptr(out) + n0 * O * L * (int64_t)isz;
    /* column-major: out_n^T (L x O) = cols_n^T (L x K) @ W^T (K x O) */
    cublasStatus_t st;
    if (f32) {
      const float one = 1, beta = b ? 1.0f : 0.0f;
      st = ct_cublas.SgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)L, (int)O, (int)K, &one, (const float *)B, (int)L,
                                     K * L, (const float *)ct_data_ptr(w), (int)K, 0, &beta, (float *)C, (int)L, O * L,
                                     (int)nimg);
    } else {
      const double one = 1, beta = b ? 1.0 : 0.0;
      st = ct_cublas.DgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)L, (int)O, (int)K, &one, (const double *)B,
                                     (int)L, K * L, (const double *)ct_data_ptr(w), (int)K, 0, &beta, (double *)C, (int)L,
                                     O * L, (int)nimg);
    }
    rc = ct_cu_blas_check(st, "conv2d (cuBLAS gemm)");
  }
  if (col) ct_cu_free(col, 0, dev);
  ct_release(x), ct_release(w), ct_release(b);
  return rc;
}
CT_CU_FORWARD(conv2d, conv2d_fwd)

/* ---- max pooling ----------------------------------------------------------------------------------- */
/* Position (within the plane) of the first maximum of output o's window, NaN maximal. */
template <typename T>
__device__ __forceinline__ int64_t pool_argmax(const T *xp, int64_t W, int64_t base, int64_t kh, int64_t kw, T *mout) {
  const T *win = xp + base;
  int64_t best = 0;
  T m = win[0];
  for (int64_t i = 0; i < kh && m == m; i++)
    for (int64_t j = 0; j < kw; j++) {
      T v = win[i * W + j];
      if (v > m || v != v) {
        m = v, best = i * W + j;
        if (v != v) break;
      }
    }
  *mout = m;
  return base + best;
}

template <typename T, bool BACKWARD>
__global__ void k_pool(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, const T *__restrict__ x, T *__restrict__ y, const T *__restrict__ g, T *dx) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += step) {
    int64_t ow = o % OW, oh = (o / OW) % OH, p = o / (OW * OH);
    const T *xp = x + p * H * W;
    T m;
    int64_t at = pool_argmax(xp, W, oh * sh * W + ow * sw, kh, kw, &m);
    if (BACKWARD) atomicAdd(&dx[p * H * W + at], g[o]);
    else y[o] = m;
  }
}

static int max_pool2d_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  ct_tensor *x = ct_contiguous(in[0]);
  if (!x) return -1;
  int64_t total = ct_numel(out), H = x->shape[2], W = x->shape[3], OH = out->shape[2], OW = out->shape[3];
  if (total) {
    unsigned blocks = ct_cu_blocks(total, dev);
    if (x->dtype == CT_F32)
      k_pool<float, false><<<blocks, CT_CU_THREADS, 0, s>>>(total, H, W, OH, OW, a->i[0], a->i[1], a->i[2], a->i[3],
                                                            (const float *)ct_data_ptr(x), (float *)ct_data_ptr(out), NULL, NULL);
    else
      k_pool<double, false><<<blocks, CT_CU_THREADS, 0, s>>>(total, H, W, OH, OW, a->i[0], a->i[1], a->i[2], a->i[3],
                                                             (const double *)ct_data_ptr(x), (double *)ct_data_ptr(out), NULL, NULL);
  }
  int rc = ct_cu_check_launch("max_pool2d");
  ct_release(x);
  return rc;
}
CT_CU_FORWARD_ON(max_pool2d, max_pool2d_fwd)

static int max_pool2d_backward_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  if (ct_cu_zero(out, s, "max_pool2d_backward"))
    return -1;
  ct_tensor *g = ct_contiguous(in[0]), *x = g ? ct_contiguous(in[1]) : NULL;
  if (!x) {
    ct_release(g);
    return -1;
  }
  int64_t total = ct_numel(g), H = x->shape[2], W = x->shape[3], OH = g->shape[2], OW = g->shape[3];
  if (total) {
    unsigned blocks = ct_cu_blocks(total, dev);
    if (x->dtype == CT_F32)
      k_pool<float, true><<<blocks, CT_CU_THREADS, 0, s>>>(total, H, W, OH, OW, a->i[0], a->i[1], a->i[2], a->i[3],
                                                           (const float *)ct_data_ptr(x), NULL, (const float *)ct_data_ptr(g),
                                                           (float *)ct_data_ptr(out));
    else
      k_pool<double, true><<<blocks, CT_CU_THREADS, 0, s>>>(total, H, W, OH, OW, a->i[0], a->i[1], a->i[2], a->i[3],
                                                            (const double *)ct_data_ptr(x), NULL, (const double *)ct_data_ptr(g),
                                                            (double *)ct_data_ptr(out));
  }
  int rc = ct_cu_check_launch("max_pool2d_backward");
  ct_release(g), ct_release(x);
  return rc;
}
CT_CU_FORWARD_ON(max_pool2d_backward, max_pool2d_backward_fwd)

#define CONV_OPS(X) X(im2col) X(col2im) X(conv2d) X(max_pool2d) X(max_pool2d_backward)
extern "C" void ct_cu_register_conv(void) { CONV_OPS(CT_CU_REGISTER) }
