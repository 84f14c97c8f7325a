/* optim.cu: CUDA forwards of sgd_multi and adam_multi (core/ops/ops_assign.c): one launch updates every parameter.
 * The launch takes a table of up to MT_MAX tensors by value (pointers of each list, sizes, and the
 * first chunk of each tensor), as PyTorch's multi_tensor_apply does: no device-side table to upload,
 * so the launch is recorded into a CUDA Graph as it is (chalk.capture's replay) and needs no
 * synchronisation. Each block updates one chunk of CHUNK elements of one tensor; more than MT_MAX
 * tensors take one launch per MT_MAX.
 * Invariant: every element goes through the CPU row's roundings in its order (the _rn intrinsics
 * keep nvcc from contracting into FMAs; scalar products in double, rounded to the dtype), so the
 * kernel equals the CPU update up to nothing but sqrt/div, which are IEEE-rounded here too. */
#include <math.h>
#include <string.h>

#include "cu_util.cuh"

#define MT_MAX 48
#define MT_LISTS 4
#define CHUNK 2048

struct mt_table {
  void *ptr[MT_LISTS][MT_MAX];
  int64_t n[MT_MAX];
  int64_t first[MT_MAX + 1]; /* first[t]: the first block of tensor t; first[ntensors]: the grid */
  int ntensors;
};

__device__ __forceinline__ float r_mul(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double r_mul(double x, double y) { return __dmul_rn(x, y); }
__device__ __forceinline__ float r_add(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ double r_add(double x, double y) { return __dadd_rn(x, y); }
__device__ __forceinline__ float r_sub(float x, float y) { return __fsub_rn(x, y); }
__device__ __forceinline__ double r_sub(double x, double y) { return __dsub_rn(x, y); }
__device__ __forceinline__ float r_div(float x, float y) { return __fdiv_rn(x, y); }
__device__ __forceinline__ double r_div(double x, double y) { return __ddiv_rn(x, y); }
__device__ __forceinline__ float r_sqrt(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ double r_sqrt(double x) { return __dsqrt_rn(x); }
/* x * s computed in double, rounded to T: a table op with a scalar attribute (mul_scalar) */
template <typename T> __device__ __forceinline__ T r_scal(T x, double s) { return (T)__dmul_rn((double)x, s); }
template <typename T> __device__ __forceinline__ T r_adds(T x, double s) { return (T)__dadd_rn((double)x, s); }

/* The tensor and element range of this block. */
__device__ __forceinline__ int mt_locate(const mt_table &tb, int64_t *lo, int64_t *hi) {
  int64_t b = blockIdx.x;
  int t = 0;
  while (t + 1 < tb.ntensors && tb.first[t + 1] <= b) t++;
  *lo = (b - tb.first[t]) * CHUNK;
  *hi = min(*lo + (int64_t)CHUNK, tb.n[t]);
  return t;
}

struct sgd_k {
  double lr, mom, damp, wd;
  bool has_buf, init, nesterov;
};
template <typename T> __global__ void k_sgd_multi(mt_table tb, sgd_k k) {
  int64_t lo, hi;
  int t = mt_locate(tb, &lo, &hi);
  T *p = (T *)tb.ptr[0][t], *buf = k.has_buf ? (T *)tb.ptr[1][t] : NULL;
  const T *g = (const T *)tb.ptr[k.has_buf ? 2 : 1][t];
  const T a = (T)k.mom, b = (T)(1 - k.damp), mlr = (T)(-k.lr), one = (T)1;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    T d = g[i];
    if (k.wd != 0) d = r_add(d, r_scal(p[i], k.wd));
    if (buf) {
      T nb = k.init ? d : r_add(r_mul(a, buf[i]), r_mul(b, d));
      buf[i] = nb;
      d = k.nesterov ? r_add(d, r_scal(nb, k.mom)) : nb;
    }
    p[i] = r_add(r_mul(one, p[i]), r_mul(mlr, d));
  }
}

struct adam_k {
  double decay, wd, c1, c2, b2, isb2, eps, step_size;
  bool decoupled;
};
template <typename T> __global__ void k_adam_multi(mt_table tb, adam_k k) {
  int64_t lo, hi;
  int t = mt_locate(tb, &lo, &hi);
  T *p = (T *)tb.ptr[0][t], *m = (T *)tb.ptr[1][t], *v = (T *)tb.ptr[2][t];
  const T *g = (const T *)tb.ptr[3][t];
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    T pi = p[i], gr = g[i];
    if (k.wd != 0 && k.decoupled) pi = r_scal(pi, k.decay);
    if (k.wd != 0 && !k.decoupled) gr = r_add(gr, r_scal(pi, k.wd));
    T mi = r_add(m[i], r_scal(r_sub(gr, m[i]), k.c1));
    T vi = r_add(r_scal(v[i], k.b2), r_scal(r_mul(gr, gr), k.c2));
    T den = r_adds(r_scal(r_sqrt(vi), k.isb2), k.eps);
    p[i] = r_sub(pi, r_scal(r_div(mi, den), k.step_size));
    m[i] = mi;
    v[i] = vi;
  }
}

/* Launches kernel over the n tensors of `lists` lists (in[l * n + i]), MT_MAX tensors at a time. */
template <typename K> static int mt_launch(ct_tensor *const *in, int n, int lists, cudaStream_t s, K launch,
                                           const char *what) {
  for (int base = 0; base < n; base += MT_MAX) {
    mt_table tb;
    memset(&tb, 0, sizeof tb);
    int64_t blocks = 0;
    for (int j = 0; j < MT_MAX && base + j < n; j++) {
      int i = base + j;
      for (int l = 0; l < lists; l++) tb.ptr[l][j] = ct_data_ptr(in[l * n + i]);
      tb.n[j] = ct_numel(in[i]);
      tb.first[j] = blocks;
      blocks += (tb.n[j] + CHUNK - 1) / CHUNK;
      tb.ntensors = j + 1;
    }
    tb.first[tb.ntensors] = blocks;
    if (!blocks) continue;
    launch(tb, (unsigned)blocks, s);
    if (ct_cu_check_launch(what)) return -1;
  }
  return 0;
}

static int sgd_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  cudaStream_t s = ct_cu_stream(ct_cu_index(out));
  sgd_k k = {a->f[0], a->f[1], a->f[2], a->f[3], a->f[1] != 0, a->i[2] != 0, a->i[3] != 0};
  int n = (int)a->i[0], lists = k.has_buf ? 3 : 2;
  if (out->dtype == CT_F32)
    return mt_launch(in, n, lists, s, [&](const mt_table &tb, unsigned b, cudaStream_t st) {
      k_sgd_multi<float><<<b, 256, 0, st>>>(tb, k);
    }, "sgd_multi");
  return mt_launch(in, n, lists, s, [&](const mt_table &tb, unsigned b, cudaStream_t st) {
    k_sgd_multi<double><<<b, 256, 0, st>>>(tb, k);
  }, "sgd_multi");
}
CT_CU_FORWARD(sgd_multi, sgd_impl)

static int adam_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  cudaStream_t s = ct_cu_stream(ct_cu_index(out));
  /* the constants as ops/ops_assign.c's adam_consts computes them (same expressions, same libm) */
  double lr = a->f[0], b1 = a->f[1], b2 = a->f[2], wd, step = (double)a->i[2];
  memcpy(&wd, &a->i[4], sizeof wd);
  adam_k k = {1 - lr * wd, wd, 1 - b1, 1 - b2, b2, 1 / sqrt(1 - pow(b2, step)), a->f[3], lr / (1 - pow(b1, step)),
              a->i[3] != 0};
  int n = (int)a->i[0];
  if (out->dtype == CT_F32)
    return mt_launch(in, n, 4, s, [&](const mt_table &tb, unsigned b, cudaStream_t st) {
      k_adam_multi<float><<<b, 256, 0, st>>>(tb, k);
    }, "adam_multi");
  return mt_launch(in, n, 4, s, [&](const mt_table &tb, unsigned b, cudaStream_t st) {
    k_adam_multi<double><<<b, 256, 0, st>>>(tb, k);
  }, "adam_multi");
}
CT_CU_FORWARD(adam_multi, adam_impl)

#define OPTIM_OPS(X) X(sgd_multi) X(adam_multi)
extern "C" void ct_cu_register_optim(void) { OPTIM_OPS(CT_CU_REGISTER) }
