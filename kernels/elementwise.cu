/* elementwise.cu: CUDA forwards of the elementwise ops (core/ops/ops_elementwise.c gives their
 * semantics and gradients): binary with NumPy broadcasting, comparisons, where, unary ops and the
 * ops with scalar attributes, in f32, f64, i32 and i64 as the CPU has them.
 * Each op is a functor expanded from its row of core/ops/elementwise_defs.h (the expression the
 * CPU runs, with the math functions spelled for CUDA); one kernel family per arity runs it either flat (output contiguous,
 * every input contiguous with the output's shape or a single broadcast element; 16-byte vector
 * loads when the pointers allow) or strided (any broadcasting and any input strides, offsets
 * computed from the coalesced iteration).
 * Invariant: each functor computes exactly the CPU's expression, in the same types, so results
 * differ from the CPU only where the GPU's math library rounds differently (exp, erf, ...). */
#include <math.h>

#include "cu_util.cuh"

/* ---- math overloads (float and double) ------------------------------------------------------- */
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_sin(float x) { return sinf(x); }
__device__ __forceinline__ double m_sin(double x) { return sin(x); }
__device__ __forceinline__ float m_cos(float x) { return cosf(x); }
__device__ __forceinline__ double m_cos(double x) { return cos(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }

/* ---- functors, one per row of core/ops/elementwise_defs.h ------------------------------------- */
#define EXP(v) m_exp(v)
#define LOG(v) m_log(v)
#define SQRT(v) m_sqrt(v)
#define SIN(v) m_sin(v)
#define COS(v) m_cos(v)
#define TANH(v) m_tanh(v)
#define ERF(v) m_erf(v)
#define POW(v, p) m_pow(v, p)
#define K(c) ((T)(c))
#define A0 a0
#define A1 a1
#define BINARY_FUNCTOR(NAME, DTS, EXPR, ...)                                                       \
  struct f_##NAME {                                                                                \
    template <typename T> __device__ __forceinline__ T operator()(T x, T y) const { return (T)(EXPR); } \
  };
#define COMPARE_FUNCTOR(NAME, EXPR)                                                                \
  struct f_##NAME {                                                                                \
    template <typename T> __device__ __forceinline__ uint8_t operator()(T x, T y) const {          \
      return (uint8_t)(EXPR);                                                                      \
    }                                                                                              \
  };
/* unary functors carry the op's float attributes (attrs.f[0], f[1]) */
#define UNARY_FUNCTOR(NAME, DTS, EXPR, ...)                                                        \
  struct f_##NAME {                                                                                \
    double a0, a1;                                                                                 \
    template <typename T> __device__ __forceinline__ T operator()(T x) const { return (T)(EXPR); } \
  };
CT_EW_BINARY(BINARY_FUNCTOR)
CT_EW_BINARY_INTERNAL(BINARY_FUNCTOR)
CT_EW_COMPARE(COMPARE_FUNCTOR)
CT_EW_UNARY(UNARY_FUNCTOR)
CT_EW_UNARY_INTERNAL(UNARY_FUNCTOR)
#undef EXP
#undef LOG
#undef SQRT
#undef SIN
#undef COS
#undef TANH
#undef ERF
#undef POW
#undef K
#undef A0
#undef A1

/* axpby: y <- a y + b x in place (out aliases y). Each product rounded, then the sum, as the CPU
   and torch's mul_ then add_(alpha=) do: the _rn intrinsics keep nvcc from contracting to an FMA. */
__device__ __forceinline__ float m_mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double m_mul_rn(double x, double y) { return __dmul_rn(x, y); }
__device__ __forceinline__ float m_add_rn(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ double m_add_rn(double x, double y) { return __dadd_rn(x, y); }
struct f_axpby {
  double a0, a1;
  template <typename T> __device__ __forceinline__ T operator()(T y, T x) const {
    return m_add_rn(m_mul_rn((T)a0, y), m_mul_rn((T)a1, x));
  }
};

/* ---- kernels ------------------------------------------------------------------------------------ */
/* Flat kernels: element v*VEC+j of every operand; mode bit k set: operand k is one broadcast value. */
template <int VEC, typename T, typename F>
__global__ void k_unary_flat(int64_t nvec, int64_t n, T *__restrict__ o, const T *__restrict__ a, F f) {
  int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t v = tid; v < nvec; v += step) {
    ct_vec<T, VEC> x = reinterpret_cast<const ct_vec<T, VEC> *>(a)[v], r;
#pragma unroll
    for (int j = 0; j < VEC; j++) r.v[j] = f(x.v[j]);
    reinterpret_cast<ct_vec<T, VEC> *>(o)[v] = r;
  }
  int64_t i = nvec * VEC + tid;
  if (i < n) o[i] = f(a[i]);
}

template <typename IndexT, typename T, typename F>
__global__ void k_unary_strided(ct_cu_iter it, T *o, const T *a, F f) {
  IndexT n = (IndexT)it.n, step = (IndexT)gridDim.x * blockDim.x;
  for (IndexT i = (IndexT)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    ct_cu_offsets<2, IndexT>(it, i, off);
    o[off[0]] = f(a[off[1]]);
  }
}

template <int VEC, typename T>
__device__ __forceinline__ ct_vec<T, VEC> load_vec_or_scalar(const T *__restrict__ p, int64_t v, bool scalar) {
  ct_vec<T, VEC> x;
  if (scalar) {
    T s = p[0];
#pragma unroll
    for (int j = 0; j < VEC; j++) x.v[j] = s;
  } else {
    x = reinterpret_cast<const ct_vec<T, VEC> *>(p)[v];
  }
  return x;
}

template <int VEC, typename T, typename OT, typename F>
__global__ void k_binary_flat(int64_t nvec, int64_t n, OT *__restrict__ o, const T *__restrict__ a,
                              const T *__restrict__ b, int mode, F f) {
  int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t v = tid; v < nvec; v += step) {
    ct_vec<T, VEC> x = load_vec_or_scalar<VEC>(a, v, mode & 1), y = load_vec_or_scalar<VEC>(b, v, mode & 2);
    ct_vec<OT, VEC> r;
#pragma unroll
    for (int j = 0; j < VEC; j++) r.v[j] = f(x.v[j], y.v[j]);
    reinterpret_cast<ct_vec<OT, VEC> *>(o)[v] = r;
  }
  int64_t i = nvec * VEC + tid;
  if (i < n) o[i] = f(a[(mode & 1) ? 0 : i], b[(mode & 2) ? 0 : i]);
}

template <typename IndexT, typename T, typename OT, typename F>
__global__ void k_binary_strided(ct_cu_iter it, OT *o, const T *a, const T *b, F f) {
  IndexT n = (IndexT)it.n, step = (IndexT)gridDim.x * blockDim.x;
  for (IndexT i = (IndexT)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    ct_cu_offsets<3, IndexT>(it, i, off);
    o[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

template <typename IndexT, typename T>
__global__ void k_where_strided(ct_cu_iter it, T *o, const uint8_t *c, const T *a, const T *b) {
  IndexT n = (IndexT)it.n, step = (IndexT)gridDim.x * blockDim.x;
  for (IndexT i = (IndexT)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[4];
    ct_cu_offsets<4, IndexT>(it, i, off);
    o[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

/* ---- host side ----------------------------------------------------------------------------------- */

/* t is usable by a flat kernel against out: one element, or laid out exactly as out. */
static bool flat_operand(const ct_tensor *out, const ct_tensor *t, bool *scalar) {
  *scalar = ct_numel(t) == 1;
  if (*scalar) return true;
  int64_t bs[CT_MAX_DIMS], cs[CT_MAX_DIMS];
  ct_broadcast_strides(t, out->shape, out->ndim, bs);
  ct_contiguous_strides(out->shape, out->ndim, cs);
  for (int d = 0; d < out->ndim; d++)
    if (out->shape[d] != 1 && bs[d] != cs[d]) return false;
  return true;
}

template <typename T, typename F>
static int run_unary(ct_tensor *out, ct_tensor *const *in, F f) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  int64_t n = ct_numel(out);
  if (!n) return 0;
  T *o = (T *)ct_data_ptr(out);
  const T *a = (const T *)ct_data_ptr(in[0]);
  bool sa;
  if (ct_is_contiguous(out) && flat_operand(out, in[0], &sa) && !sa) {
    constexpr int V = 16 / sizeof(T);
    if (ct_cu_aligned(o, 16) && ct_cu_aligned(a, 16))
      k_unary_flat<V, T, F><<<ct_cu_blocks(n / V + 1, dev), CT_CU_THREADS, 0, s>>>(n / V, n, o, a, f);
    else
      k_unary_flat<1, T, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(n, n, o, a, f);
    return 0;
  }
  ct_cu_iter it;
  ct_cu_iter_build(&it, out, in, 1);
  if (it.n <= INT32_MAX) k_unary_strided<uint32_t, T, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, a, f);
  else k_unary_strided<int64_t, T, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, a, f);
  return 0;
}

template <typename T, typename OT, typename F>
static int run_binary(ct_tensor *out, ct_tensor *const *in, F f) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  int64_t n = ct_numel(out);
  if (!n) return 0;
  OT *o = (OT *)ct_data_ptr(out);
  const T *a = (const T *)ct_data_ptr(in[0]), *b = (const T *)ct_data_ptr(in[1]);
  bool sa, sb;
  if (ct_is_contiguous(out) && flat_operand(out, in[0], &sa) && flat_operand(out, in[1], &sb)) {
    constexpr int V = 16 / sizeof(T);
    int mode = (sa ? 1 : 0) | (sb ? 2 : 0);
    bool vec = ct_cu_aligned(o, V * sizeof(OT)) && (sa || ct_cu_aligned(a, 16)) && (sb || ct_cu_aligned(b, 16));
    if (vec)
      k_binary_flat<V, T, OT, F><<<ct_cu_blocks(n / V + 1, dev), CT_CU_THREADS, 0, s>>>(n / V, n, o, a, b, mode, f);
    else
      k_binary_flat<1, T, OT, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(n, n, o, a, b, mode, f);
    return 0;
  }
  ct_cu_iter it;
  ct_cu_iter_build(&it, out, in, 2);
  if (it.n <= INT32_MAX)
    k_binary_strided<uint32_t, T, OT, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, a, b, f);
  else
    k_binary_strided<int64_t, T, OT, F><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, a, b, f);
  return 0;
}

template <typename T>
static int run_where(ct_tensor *out, ct_tensor *const *in) {
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  int64_t n = ct_numel(out);
  if (!n) return 0;
  ct_cu_iter it;
  ct_cu_iter_build(&it, out, in, 3);
  T *o = (T *)ct_data_ptr(out);
  const uint8_t *c = (const uint8_t *)ct_data_ptr(in[0]);
  const T *a = (const T *)ct_data_ptr(in[1]), *b = (const T *)ct_data_ptr(in[2]);
  if (it.n <= INT32_MAX) k_where_strided<uint32_t, T><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, c, a, b);
  else k_where_strided<int64_t, T><<<ct_cu_blocks(n, dev), CT_CU_THREADS, 0, s>>>(it, o, c, a, b);
  return 0;
}

/* ---- the forwards --------------------------------------------------------------------------------- */
#define DEF_BINARY(OP, F, DISPATCH)                                                                \
  static int OP##_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {         \
    (void)nin, (void)a;                                                                            \
    DISPATCH(in[0]->dtype, return (run_binary<T, T, F>(out, in, F())));                            \
    return 0;                                                                                      \
  }                                                                                                \
  CT_CU_FORWARD(OP, OP##_impl)
#define DEF_COMPARE(OP, F)                                                                         \
  static int OP##_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {         \
    (void)nin, (void)a;                                                                            \
    CT_CU_DISPATCH_NUM(in[0]->dtype, return (run_binary<T, uint8_t, F>(out, in, F())));            \
    return 0;                                                                                      \
  }                                                                                                \
  CT_CU_FORWARD(OP, OP##_impl)
#define DEF_UNARY(OP, F, DISPATCH)                                                                 \
  static int OP##_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {         \
    (void)nin;                                                                                     \
    DISPATCH(in[0]->dtype, return (run_unary<T, F>(out, in, F{a->f[0], a->f[1]})));                \
    return 0;                                                                                      \
  }                                                                                                \
  CT_CU_FORWARD(OP, OP##_impl)

#define ROW_BINARY(OP, DTS, ...) DEF_BINARY(OP, f_##OP, CT_CU_DISPATCH_##DTS)
#define ROW_COMPARE(OP, EXPR) DEF_COMPARE(OP, f_##OP)
#define ROW_UNARY(OP, DTS, ...) DEF_UNARY(OP, f_##OP, CT_CU_DISPATCH_##DTS)
CT_EW_BINARY(ROW_BINARY)
CT_EW_BINARY_INTERNAL(ROW_BINARY)
CT_EW_COMPARE(ROW_COMPARE)
CT_EW_UNARY(ROW_UNARY)
CT_EW_UNARY_INTERNAL(ROW_UNARY)

/* out is an alias of in[0] (y): read and written at the same element by the same thread */
static int axpby_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  CT_CU_DISPATCH_FLOAT(in[0]->dtype, return (run_binary<T, T, f_axpby>(out, in, f_axpby{a->f[0], a->f[1]})));
  return 0;
}
CT_CU_FORWARD(axpby, axpby_impl)

static int where_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  if (in[0]->dtype != CT_BOOL) return ct_errorf("where: condition must be bool, got %s", ct_dtype_name(in[0]->dtype));
  CT_CU_DISPATCH_NUM(in[1]->dtype, return run_where<T>(out, in));
  return 0;
}
CT_CU_FORWARD(where, where_impl)

extern "C" void ct_cu_register_elementwise(void) {
#define REG(OP, ...) ct_cuda_forward[CT_OP_##OP] = OP##_cuda;
  CT_EW_OPS(REG)
  REG(where) REG(axpby)
#undef REG
}
