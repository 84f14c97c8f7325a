/* cu_util.cuh: device-side helpers every kernel file uses: aligned vectors for 16-byte loads,
 * strided offsets from a linear index, grid sizing, dtype dispatch and the forward wrapper that
 * times an op and checks its launch.
 * Invariants: a kernel indexes with 32-bit arithmetic only when the host checked that the element
 * count fits (IndexT); grid-stride loops make every launch correct for any grid size. */
#ifndef CHALK_CU_UTIL_CUH
#define CHALK_CU_UTIL_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_internal.h"

#define CT_CU_THREADS 256

template <typename T, int N>
struct alignas(sizeof(T) * N) ct_vec {
  T v[N];
};

/* Offsets (in elements) of linear index i for NOPS operands of a coalesced iteration. */
template <int NOPS, typename IndexT>
__device__ __forceinline__ void ct_cu_offsets(const ct_cu_iter &it, IndexT i, int64_t *off) {
#pragma unroll
  for (int k = 0; k < NOPS; k++) off[k] = 0;
#pragma unroll
  for (int d = CT_MAX_DIMS - 1; d >= 0; d--) {
    if (d >= it.ndim) continue;
    IndexT size = (IndexT)it.shape[d];
    IndexT q = i / size, r = i - q * size;
    i = q;
#pragma unroll
    for (int k = 0; k < NOPS; k++) off[k] += (int64_t)r * it.stride[k][d];
  }
}

/* Blocks for a grid-stride loop over `work` items of CT_CU_THREADS threads each. */
static inline unsigned ct_cu_blocks(int64_t work, int index) {
  int64_t b = (work + CT_CU_THREADS - 1) / CT_CU_THREADS;
  int64_t cap = (int64_t)ct_cu_sm_count(index) * 16;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

static inline bool ct_cu_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Calls BODY with `T` bound to the C++ type of dtype DT (the number dtypes). */
#define CT_CU_DISPATCH_NUM(DT, BODY)                                                              \
  switch (DT) {                                                                                    \
  case CT_F32: { typedef float T; BODY; break; }                                                   \
  case CT_F64: { typedef double T; BODY; break; }                                                  \
  case CT_I32: { typedef int32_t T; BODY; break; }                                                 \
  case CT_I64: { typedef int64_t T; BODY; break; }                                                 \
  default: return ct_errorf("no CUDA kernel for dtype %s", ct_dtype_name(DT));                     \
  }
#define CT_CU_DISPATCH_FLOAT(DT, BODY)                                                            \
  switch (DT) {                                                                                    \
  case CT_F32: { typedef float T; BODY; break; }                                                   \
  case CT_F64: { typedef double T; BODY; break; }                                                  \
  default: return ct_errorf("no CUDA kernel for dtype %s (needs f32 or f64)", ct_dtype_name(DT));   \
  }

/* Defines `static int NAME_cuda(...)`, the registered forward: it times IMPL (a function of the
   same signature returning 0 or -1) on the output's device and checks the launch. */
#define CT_CU_FORWARD(NAME, IMPL)                                                                 \
  static int NAME##_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {       \
    int dev_ = ct_cu_index(out);                                                                   \
    if (!ct_cu_stream(dev_)) return -1;                                                            \
    ct_cu_op_begin(dev_);                                                                          \
    int rc_ = IMPL(out, in, nin, a);                                                               \
    return ct_cu_op_end(out, dev_, rc_, #NAME);                                                    \
  }
/* CT_CU_FORWARD for an IMPL(out, in, a, dev, s) that launches on the output's device dev and its
   stream s (the forwards that do not need nin). */
#define CT_CU_FORWARD_ON(NAME, IMPL)                                                              \
  static int NAME##_on_stream(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {  \
    (void)nin;                                                                                     \
    int dev = ct_cu_index(out);                                                                    \
    return IMPL(out, in, a, dev, ct_cu_stream(dev));                                               \
  }                                                                                                \
  CT_CU_FORWARD(NAME, NAME##_on_stream)
/* Installs NAME_cuda (from CT_CU_FORWARD) as the CUDA forward of op NAME; a family file lists its
   ops once, `#define FAMILY_OPS(X) X(a) X(b)`, and registers them with FAMILY_OPS(CT_CU_REGISTER). */
#define CT_CU_REGISTER(NAME) ct_cuda_forward[CT_OP_##NAME] = NAME##_cuda;

/* Zeroes the output on stream s before a scatter-style kernel adds into it: 0, or -1 (error set,
   naming `what`). */
static inline int ct_cu_zero(ct_tensor *out, cudaStream_t s, const char *what) {
  return ct_cu_check(cudaMemsetAsync(ct_data_ptr(out), 0, (size_t)ct_numel(out) * ct_dtype_size(out->dtype), s), what);
}

#endif
