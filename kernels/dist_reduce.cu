/* dist_reduce.cu: the element-wise steps of chalk's own collectives on GPU buffers (the nccl
 * transport, core/dist/transport_nccl.c): dst = op(dst, src) for a ring or tree step's received
 * chunk, and mean's final scaling, on the transport's communication stream.
 * Invariants: 16-bit floats are combined in f32 and rounded once per step (as NCCL's own kernels
 * do); sums of integers wrap as on the CPU executor; max/min let a NaN in dst stand. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_internal.h"

template <typename T> struct acc { typedef T type; };
template <> struct acc<__nv_bfloat16> { typedef float type; };
template <> struct acc<__half> { typedef float type; };

template <typename T> __device__ __forceinline__ typename acc<T>::type ld(const T *p) { return *p; }
template <> __device__ __forceinline__ float ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
template <> __device__ __forceinline__ float ld(const __half *p) { return __half2float(*p); }
template <typename T, typename A> __device__ __forceinline__ void st(T *p, A v) { *p = (T)v; }
template <> __device__ __forceinline__ void st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }
template <> __device__ __forceinline__ void st(__half *p, float v) { *p = __float2half(v); }

/* op: 0 sum (mean sums too), 2 max, 3 min (ct_dist_op) */
template <typename T> __global__ void combine(T *dst, const T *src, int64_t n, int op) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    typename acc<T>::type a = ld(dst + i), b = ld(src + i);
    st(dst + i, op == 2 ? (b > a ? b : a) : op == 3 ? (b < a ? b : a) : a + b);
  }
}

template <typename T> __global__ void scale(T *buf, int64_t n, double f) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    st(buf + i, (typename acc<T>::type)(ld(buf + i) * f));
}

static unsigned blocks(int64_t n) {
  int64_t b = (n + 255) / 256;
  return (unsigned)(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

/* The dtypes each entry takes: X(chalk dtype, element type) */
#define CT_DIST_FLOATS(X) X(CT_F32, float) X(CT_F64, double) X(CT_BF16, __nv_bfloat16) X(CT_F16, __half)
#define CT_DIST_INTS(X) X(CT_I32, int32_t) X(CT_I64, int64_t)

extern "C" int ct_cu_dist_reduce(void *dst, const void *src, int64_t n, ct_dtype dt, int op, cudaStream_t s) {
  if (n <= 0) return 0;
  int o = op == 1 ? 0 : op;
#define CT_DIST_COMBINE(tag, T)                                                                                        \
  case tag:                                                                                                            \
    combine<<<blocks(n), 256, 0, s>>>((T *)dst, (const T *)src, n, o);                                                 \
    break;
  switch (dt) {
    CT_DIST_FLOATS(CT_DIST_COMBINE)
    CT_DIST_INTS(CT_DIST_COMBINE)
  default:
    return ct_errorf("dist: cannot reduce %s on cuda (f32, f64, bf16, f16, i32, i64)", ct_dtype_name(dt));
  }
#undef CT_DIST_COMBINE
  return ct_cu_check_launch("dist reduce (cuda)");
}

extern "C" int ct_cu_dist_scale(void *buf, int64_t n, ct_dtype dt, double f, cudaStream_t s) {
  if (n <= 0) return 0;
#define CT_DIST_SCALE(tag, T)                                                                                          \
  case tag:                                                                                                            \
    scale<<<blocks(n), 256, 0, s>>>((T *)buf, n, f);                                                                   \
    break;
  switch (dt) {
    CT_DIST_FLOATS(CT_DIST_SCALE)
  default:
    return ct_errorf("dist: mean of %s on cuda (floats only)", ct_dtype_name(dt));
  }
#undef CT_DIST_SCALE
  return ct_cu_check_launch("dist mean (cuda)");
}
