/* reduce.cu: CUDA forwards of the reductions (sum, mean, max, min, argmax, argmin over the dims
 * of attrs.mask; semantics in core/ops_reduce.c).
 * The input is seen as [kept dims] x [reduced dims] (each list with size-1 dims dropped and
 * contiguous neighbours merged; output element o is row-major over the kept dims, reduced
 * position r row-major over the reduced dims, as argmax counts). Two layouts of work:
 *  - row mode (the reduced run is contiguous): one warp per output, lanes stride over r, warp
 *    shuffles combine;
 *  - column mode (neighbouring outputs are neighbours in memory): 32 outputs per block across x,
 *    8 lanes over r across y, shared memory combines.
 * When few outputs have long reductions, r is split across gridDim.y into partial results that a
 * second kernel combines (and finishes: mean's division, f32's rounding).
 * Invariants: f32 sums accumulate in double and integer sums in i64, as on the CPU; max/min let a
 * NaN win; argmax/argmin pick the smallest position among equal values (NaN the largest /
 * smallest value, the first NaN winning), so results equal the CPU's sequential scan. */
#include <math.h>
#include <string.h>
#include <type_traits>

#include "cu_util.cuh"

#define BIT(d) (1u << (d))

typedef struct {
  int nk, nr;
  int64_t kshape[CT_MAX_DIMS], kst[CT_MAX_DIMS];
  int64_t rshape[CT_MAX_DIMS], rst[CT_MAX_DIMS];
  int64_t nout, R;
} red_plan;

/* Element offset of row-major position i over n dims of the given shape and strides. */
__device__ __forceinline__ int64_t unravel_off(int n, const int64_t *shape, const int64_t *st, int64_t i) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; d--) {
    int64_t q = i / shape[d];
    off += (i - q * shape[d]) * st[d];
    i = q;
  }
  return off;
}
__device__ __forceinline__ int64_t plan_koff(const red_plan &p, int64_t o) { return unravel_off(p.nk, p.kshape, p.kst, o); }
__device__ __forceinline__ int64_t plan_roff(const red_plan &p, int64_t r) {
  return p.nr == 1 ? r * p.rst[0] : unravel_off(p.nr, p.rshape, p.rst, r);
}

/* ---- reducers: identity, lift an element, combine, finish ---------------------------------- */
template <typename T>
__device__ __forceinline__ bool is_nan(T v) { return v != v; }

template <typename T, typename A, typename O>
struct r_sum {
  typedef T in_t;
  typedef A acc_t;
  typedef O out_t;
  double div;
  __device__ A identity() const { return (A)0; }
  __device__ A lift(T x, int64_t) const { return (A)x; }
  __device__ A combine(A a, A b) const { return a + b; }
  __device__ O finish(A a) const { return div == 1.0 ? (O)a : (O)((double)a / div); }
};

template <typename T, bool MAX>
struct r_maxmin {
  typedef T in_t;
  typedef T acc_t;
  typedef T out_t;
  T ident;
  __device__ T identity() const { return ident; }
  __device__ T lift(T x, int64_t) const { return x; }
  __device__ T combine(T a, T b) const {
    if (is_nan(a)) return a;
    if (is_nan(b)) return b;
    return MAX ? (b > a ? b : a) : (b < a ? b : a);
  }
  __device__ T finish(T a) const { return a; }
};

template <typename T>
struct arg_acc {
  T v;
  int64_t i;
};

template <typename T, bool MAX>
struct r_arg {
  typedef T in_t;
  typedef arg_acc<T> acc_t;
  typedef int64_t out_t;
  T ident;
  __device__ acc_t identity() const { return acc_t{ident, INT64_MAX}; }
  __device__ acc_t lift(T x, int64_t r) const { return acc_t{x, r}; }
  __device__ acc_t combine(acc_t a, acc_t b) const {
    bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) {
      if (an && bn) return a.i <= b.i ? a : b;
      return an ? a : b;
    }
    if (a.v == b.v) return a.i <= b.i ? a : b;
    return (MAX ? b.v > a.v : b.v < a.v) ? b : a;
  }
  __device__ int64_t finish(acc_t a) const { return a.i + 1; }
};

/* ---- warp shuffles of every accumulator type ---------------------------------------------------- */
template <typename A>
__device__ __forceinline__ A shfl_down(A v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
template <>
__device__ __forceinline__ int8_t shfl_down<int8_t>(int8_t v, int d) { return (int8_t)__shfl_down_sync(0xffffffffu, (int)v, d); }
template <>
__device__ __forceinline__ uint8_t shfl_down<uint8_t>(uint8_t v, int d) { return (uint8_t)__shfl_down_sync(0xffffffffu, (int)v, d); }
template <typename T>
__device__ __forceinline__ arg_acc<T> shfl_down_arg(arg_acc<T> v, int d) {
  return arg_acc<T>{shfl_down<T>(v.v, d), __shfl_down_sync(0xffffffffu, v.i, d)};
}
template <typename A> struct shuffler {
  static __device__ __forceinline__ A down(A v, int d) { return shfl_down<A>(v, d); }
};
template <typename T> struct shuffler<arg_acc<T>> {
  static __device__ __forceinline__ arg_acc<T> down(arg_acc<T> v, int d) { return shfl_down_arg<T>(v, d); }
};

/* ---- kernels ------------------------------------------------------------------------------------ */
/* Writes the combined value of output o for chunk gy: the final result when there is one chunk,
   else a partial into part[gy * nout + o]. */
template <typename Rd>
__device__ __forceinline__ void emit(const Rd &rd, typename Rd::acc_t acc, int64_t o, int64_t nout, bool final,
                                     typename Rd::out_t *out, typename Rd::acc_t *part) {
  if (final) out[o] = rd.finish(acc);
  else part[(int64_t)blockIdx.y * nout + o] = acc;
}

template <typename Rd>
__global__ void k_reduce_row(red_plan p, const typename Rd::in_t *__restrict__ in, typename Rd::out_t *out,
                             typename Rd::acc_t *part, int64_t chunk, Rd rd) {
  typedef typename Rd::acc_t A;
  int64_t o = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  bool final = gridDim.y == 1;
  if (o >= p.nout) return; /* a whole warp leaves together: shuffles stay full */
  int64_t r0 = (int64_t)blockIdx.y * chunk, r1 = r0 + chunk < p.R ? r0 + chunk : p.R;
  const typename Rd::in_t *base = in + plan_koff(p, o);
  A acc = rd.identity();
  for (int64_t r = r0 + threadIdx.x; r < r1; r += 32) acc = rd.combine(acc, rd.lift(base[plan_roff(p, r)], r));
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) acc = rd.combine(acc, shuffler<A>::down(acc, d));
  if (threadIdx.x == 0) emit(rd, acc, o, p.nout, final, out, part);
}

template <typename Rd>
__global__ void k_reduce_col(red_plan p, const typename Rd::in_t *__restrict__ in, typename Rd::out_t *out,
                             typename Rd::acc_t *part, int64_t chunk, Rd rd) {
  typedef typename Rd::acc_t A;
  __shared__ A sh[8][33];
  int64_t o = (int64_t)blockIdx.x * 32 + threadIdx.x;
  bool final = gridDim.y == 1;
  int64_t r0 = (int64_t)blockIdx.y * chunk, r1 = r0 + chunk < p.R ? r0 + chunk : p.R;
  A acc = rd.identity();
  if (o < p.nout) {
    const typename Rd::in_t *base = in + plan_koff(p, o);
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) acc = rd.combine(acc, rd.lift(base[plan_roff(p, r)], r));
  }
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && o < p.nout) {
    for (int y = 1; y < 8; y++) acc = rd.combine(acc, sh[y][threadIdx.x]);
    emit(rd, acc, o, p.nout, final, out, part);
  }
}

template <typename Rd>
__global__ void k_reduce_finish(int64_t nout, int nparts, const typename Rd::acc_t *part, typename Rd::out_t *out,
                                Rd rd) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < nout; o += step) {
    typename Rd::acc_t acc = part[o];
    for (int k = 1; k < nparts; k++) acc = rd.combine(acc, part[(int64_t)k * nout + o]);
    out[o] = rd.finish(acc);
  }
}

/* ---- host side ----------------------------------------------------------------------------------- */

static void plan_make(const ct_tensor *x, uint32_t mask, red_plan *p) {
  memset(p, 0, sizeof *p);
  p->nout = 1;
  p->R = 1;
  for (int d = 0; d < x->ndim; d++) {
    int64_t size = x->shape[d], st = x->stride[d];
    if (mask & BIT(d)) p->R *= size;
    else p->nout *= size;
    if (size == 1) continue;
    if (!(mask & BIT(d))) {
      if (p->nk && p->kst[p->nk - 1] == st * size) {
        p->kshape[p->nk - 1] *= size;
        p->kst[p->nk - 1] = st;
      } else {
        p->kshape[p->nk] = size;
        p->kst[p->nk++] = st;
      }
    } else if (p->nr && p->rst[p->nr - 1] == st * size) {
      p->rshape[p->nr - 1] *= size;
      p->rst[p->nr - 1] = st;
    } else {
      p->rshape[p->nr] = size;
      p->rst[p->nr++] = st;
    }
  }
  if (p->nr == 0) { /* reducing only size-1 dims: one element per output */
    p->nr = 1;
    p->rshape[0] = 1;
    p->rst[0] = 0;
  }
}

template <typename Rd>
static int run_reduce(ct_tensor *out, const ct_tensor *x, uint32_t mask, Rd rd, const char *what) {
  typedef typename Rd::acc_t A;
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  red_plan p;
  plan_make(x, mask, &p);
  if (p.nout == 0) return 0;
  const typename Rd::in_t *in = (const typename Rd::in_t *)ct_data_ptr(x);
  typename Rd::out_t *o = (typename Rd::out_t *)ct_data_ptr(out);
  bool col = p.nk > 0 && p.kst[p.nk - 1] == 1 && !(p.rst[p.nr - 1] == 1 && p.R >= 32);
  int64_t gx = col ? (p.nout + 31) / 32 : (p.nout + 7) / 8;
  int64_t target = (int64_t)ct_cu_sm_count(dev) * 8, gy = 1;
  int64_t min_chunk = col ? 256 : 2048;
  if (gx < target && p.R > 2 * min_chunk) {
    gy = target / gx;
    int64_t most = (p.R + min_chunk - 1) / min_chunk;
    if (gy > most) gy = most;
    if (gy > 1024) gy = 1024;
    if (gy < 1) gy = 1;
  }
  int64_t chunk = (p.R + gy - 1) / gy;
  if (chunk < 1) chunk = 1;
  gy = (p.R + chunk - 1) / chunk;
  if (gy < 1) gy = 1;
  A *part = NULL;
  if (gy > 1 && !(part = (A *)ct_cu_scratch(sizeof(A) * (size_t)(gy * p.nout), dev, what))) return -1;
  if (gx > 0x7fffffff) return ct_errorf("%s: %lld outputs are too many for one launch", what, (long long)p.nout);
  dim3 grid((unsigned)gx, (unsigned)gy);
  if (col) k_reduce_col<Rd><<<grid, dim3(32, 8), 0, s>>>(p, in, o, part, chunk, rd);
  else k_reduce_row<Rd><<<grid, dim3(32, 8), 0, s>>>(p, in, o, part, chunk, rd);
  if (gy > 1) {
    k_reduce_finish<Rd><<<ct_cu_blocks(p.nout, dev), CT_CU_THREADS, 0, s>>>(p.nout, (int)gy, part, o, rd);
    int rc = ct_cu_check_launch(what);
    ct_cu_free(part, 0, dev); /* stream-ordered: the next user of the block runs after us */
    return rc;
  }
  return 0;
}

static int64_t reduced_count(const ct_tensor *t, uint32_t mask) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    if (mask & BIT(d)) n *= t->shape[d];
  return n;
}

/* The forwards: x = in[0] reduced over the dims of a->mask. */
template <bool MEAN>
static int sum_like(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *x = in[0];
  uint32_t mask = a->mask;
  double div = MEAN ? (double)reduced_count(x, mask) : 1.0;
  const char *what = MEAN ? "mean" : "sum";
  switch (x->dtype) {
  case CT_F32: return run_reduce(out, x, mask, r_sum<float, double, float>{div}, what);
  case CT_F64: return run_reduce(out, x, mask, r_sum<double, double, double>{div}, what);
  case CT_I32: return run_reduce(out, x, mask, r_sum<int32_t, int64_t, int64_t>{1.0}, what);
  case CT_I64: return run_reduce(out, x, mask, r_sum<int64_t, int64_t, int64_t>{1.0}, what);
  case CT_I8: return run_reduce(out, x, mask, r_sum<int8_t, int64_t, int64_t>{1.0}, what);
  case CT_BOOL: return run_reduce(out, x, mask, r_sum<uint8_t, int64_t, int64_t>{1.0}, what);
  default: return ct_errorf("%s: no CUDA kernel for dtype %s", what, ct_dtype_name(x->dtype));
  }
}

/* max/min (R = r_maxmin) and argmax/argmin (R = r_arg): the same seeds, the dtype's extremes. */
template <template <typename, bool> class R, bool MAX>
static int extremum(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  const ct_tensor *x = in[0];
  uint32_t mask = a->mask;
  const bool arg = !std::is_same<R<float, MAX>, r_maxmin<float, MAX>>::value;
  const char *what = arg ? (MAX ? "argmax" : "argmin") : (MAX ? "max" : "min");
  switch (x->dtype) {
  case CT_F32: return run_reduce(out, x, mask, R<float, MAX>{MAX ? -INFINITY : INFINITY}, what);
  case CT_F64: return run_reduce(out, x, mask, R<double, MAX>{MAX ? -(double)INFINITY : (double)INFINITY}, what);
  case CT_I32: return run_reduce(out, x, mask, R<int32_t, MAX>{MAX ? INT32_MIN : INT32_MAX}, what);
  case CT_I64: return run_reduce(out, x, mask, R<int64_t, MAX>{MAX ? INT64_MIN : INT64_MAX}, what);
  case CT_I8: return run_reduce(out, x, mask, R<int8_t, MAX>{(int8_t)(MAX ? INT8_MIN : INT8_MAX)}, what);
  case CT_BOOL: return run_reduce(out, x, mask, R<uint8_t, MAX>{(uint8_t)(MAX ? 0 : 1)}, what);
  default: return ct_errorf("%s: no CUDA kernel for dtype %s", what, ct_dtype_name(x->dtype));
  }
}

CT_CU_FORWARD(sum, sum_like<false>)
CT_CU_FORWARD(mean, sum_like<true>)
CT_CU_FORWARD(max, (extremum<r_maxmin, true>))
CT_CU_FORWARD(min, (extremum<r_maxmin, false>))
CT_CU_FORWARD(argmax, (extremum<r_arg, true>))
CT_CU_FORWARD(argmin, (extremum<r_arg, false>))

#define REDUCE_OPS(X) X(sum) X(mean) X(max) X(min) X(argmax) X(argmin)
extern "C" void ct_cu_register_reduce(void) { REDUCE_OPS(CT_CU_REGISTER) }
