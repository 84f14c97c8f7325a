/* convert.cu: copies on the GPU: the copy op (clone on one device, host to device, device to
 * device across GPUs), ct_copy_ between CUDA tensors (broadcast source, strided destination,
 * dtype conversion), to_dtype and narrow_scatter (the adjoint of narrow/select).
 * Invariants: a conversion goes through double exactly as core/cpu/iter.c's load/store does
 * (f16 and bf16 through f32 with round-to-nearest-even, integers truncate, bool is v != 0), so
 * CPU and GPU agree bit for bit; a same-dtype copy moves raw bytes. The copy op's attrs may be
 * NULL (ct_copy_ calls the forward directly). */
#include <string.h>

#include "cu_util.cuh"
#include "tensor/half.h"

/* ---- dtype load/store as double, matching core/tensor/dtype.c bit for bit (tensor/half.h) ---- */
__device__ __forceinline__ double load_as_double(int dt, const char *p) {
  switch (dt) {
  case CT_F32: return *(const float *)p;
  case CT_F64: return *(const double *)p;
  case CT_F16: return ct_half_f16_to_f32(*(const uint16_t *)p);
  case CT_BF16: return ct_half_bf16_to_f32(*(const uint16_t *)p);
  case CT_I32: return *(const int32_t *)p;
  case CT_I64: return (double)*(const int64_t *)p;
  case CT_I8: return *(const int8_t *)p;
  case CT_BOOL: return *p ? 1.0 : 0.0;
  default: return 0;
  }
}

__device__ __forceinline__ void store_from_double(int dt, char *p, double v) {
  switch (dt) {
  case CT_F32: *(float *)p = (float)v; break;
  case CT_F64: *(double *)p = v; break;
  case CT_F16: *(uint16_t *)p = ct_half_f32_to_f16((float)v); break;
  case CT_BF16: *(uint16_t *)p = ct_half_f32_to_bf16((float)v); break;
  case CT_I32: *(int32_t *)p = (int32_t)v; break;
  case CT_I64: *(int64_t *)p = (int64_t)v; break;
  case CT_I8: *(int8_t *)p = (int8_t)v; break;
  case CT_BOOL: *(uint8_t *)p = v != 0; break;
  default: break;
  }
}

/* ---- kernels ---------------------------------------------------------------------------------- */
/* Raw moves of W-byte elements (same dtype), strided on both sides. */
template <typename IndexT, typename W>
__global__ void k_move_strided(ct_cu_iter it, W *dst, const W *src) {
  IndexT n = (IndexT)it.n, step = (IndexT)gridDim.x * blockDim.x;
  for (IndexT i = (IndexT)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    ct_cu_offsets<2, IndexT>(it, i, off);
    dst[off[0]] = src[off[1]];
  }
}

/* Conversions between any two dtypes (isz: element sizes in bytes). */
template <typename IndexT>
__global__ void k_convert_strided(ct_cu_iter it, char *dst, int ddt, int dsz, const char *src, int sdt, int ssz) {
  IndexT n = (IndexT)it.n, step = (IndexT)gridDim.x * blockDim.x;
  for (IndexT i = (IndexT)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    ct_cu_offsets<2, IndexT>(it, i, off);
    store_from_double(ddt, dst + off[0] * dsz, load_as_double(sdt, src + off[1] * ssz));
  }
}

/* Contiguous f32 <-> bf16/f16/f64 conversions are common (mixed precision): a flat kernel. */
template <typename D, typename S>
__device__ __forceinline__ D convert_one(S v);
template <> __device__ __forceinline__ float convert_one<float, double>(double v) { return (float)v; }
template <> __device__ __forceinline__ double convert_one<double, float>(float v) { return v; }
template <> __device__ __forceinline__ uint16_t convert_one<uint16_t, float>(float v) { return ct_half_f32_to_bf16(v); }
template <> __device__ __forceinline__ float convert_one<float, uint16_t>(uint16_t v) { return ct_half_bf16_to_f32(v); }

template <typename D, typename S>
__global__ void k_convert_flat(int64_t n, D *__restrict__ dst, const S *__restrict__ src) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) dst[i] = convert_one<D, S>(src[i]);
}

/* ---- host side ----------------------------------------------------------------------------------- */

/* dst[...] = src broadcast to dst's shape, converted to dst's dtype; both on dst's device. */
extern "C" int ct_cu_copy_into(ct_tensor *dst, const ct_tensor *src) {
  int dev = ct_cu_index(dst);
  cudaStream_t s = ct_cu_stream(dev);
  if (!s) return -1;
  int64_t n = ct_numel(dst);
  if (!n) return 0;
  char *d = (char *)ct_data_ptr(dst);
  const char *sp = (const char *)ct_data_ptr(src);
  size_t dsz = ct_dtype_size(dst->dtype), ssz = ct_dtype_size(src->dtype);
  bool same_layout = ct_is_contiguous(dst) && ct_is_contiguous(src) && ct_numel(src) == n;
  if (same_layout && dst->dtype == src->dtype)
    return ct_cu_check(cudaMemcpyAsync(d, sp, (size_t)n * dsz, cudaMemcpyDeviceToDevice, s), "copy");
  if (same_layout) {
    ct_dtype a = dst->dtype, b = src->dtype;
    unsigned blocks = ct_cu_blocks(n, dev);
    if (a == CT_F32 && b == CT_F64) { k_convert_flat<float, double><<<blocks, CT_CU_THREADS, 0, s>>>(n, (float *)d, (const double *)sp); return 0; }
    if (a == CT_F64 && b == CT_F32) { k_convert_flat<double, float><<<blocks, CT_CU_THREADS, 0, s>>>(n, (double *)d, (const float *)sp); return 0; }
    if (a == CT_BF16 && b == CT_F32) { k_convert_flat<uint16_t, float><<<blocks, CT_CU_THREADS, 0, s>>>(n, (uint16_t *)d, (const float *)sp); return 0; }
    if (a == CT_F32 && b == CT_BF16) { k_convert_flat<float, uint16_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, (float *)d, (const uint16_t *)sp); return 0; }
  }
  ct_tensor *srcp = (ct_tensor *)src;
  ct_cu_iter it;
  ct_cu_iter_build(&it, dst, &srcp, 1);
  unsigned blocks = ct_cu_blocks(n, dev);
  bool small = it.n <= INT32_MAX;
  if (dst->dtype == src->dtype) {
#define MOVE(W)                                                                                     \
  if (small) k_move_strided<uint32_t, W><<<blocks, CT_CU_THREADS, 0, s>>>(it, (W *)d, (const W *)sp); \
  else k_move_strided<int64_t, W><<<blocks, CT_CU_THREADS, 0, s>>>(it, (W *)d, (const W *)sp);
    switch (dsz) {
    case 1: MOVE(uint8_t) break;
    case 2: MOVE(uint16_t) break;
    case 4: MOVE(uint32_t) break;
    default: MOVE(uint64_t) break;
    }
#undef MOVE
    return 0;
  }
  if (small)
    k_convert_strided<uint32_t><<<blocks, CT_CU_THREADS, 0, s>>>(it, d, dst->dtype, (int)dsz, sp, src->dtype, (int)ssz);
  else
    k_convert_strided<int64_t><<<blocks, CT_CU_THREADS, 0, s>>>(it, d, dst->dtype, (int)dsz, sp, src->dtype, (int)ssz);
  return 0;
}

extern "C" const void *ct_cu_contiguous_data(ct_tensor *t, ct_tensor **tmp) {
  *tmp = NULL;
  if (ct_is_contiguous(t)) return ct_data_ptr(t);
  ct_tensor *c = ct_empty(t->shape, t->ndim, t->dtype, t->storage->device);
  if (!c || ct_cu_copy_into(c, t)) {
    ct_release(c);
    return NULL;
  }
  *tmp = c;
  return ct_data_ptr(c);
}

/* A contiguous copy of src (on any device) in device memory of `dev`: a new tensor. */
static ct_tensor *staged_on(const ct_tensor *src, ct_device dev) {
  ct_tensor *c = ct_contiguous((ct_tensor *)src); /* on src's own device */
  if (!c) return NULL;
  ct_tensor *t = ct_empty(c->shape, c->ndim, c->dtype, dev);
  if (!t) {
    ct_release(c);
    return NULL;
  }
  size_t nb = (size_t)ct_numel(c) * ct_dtype_size(c->dtype);
  int rc = 0;
  ct_device sd = c->storage->device;
  if (nb && sd.type == CT_CPU) {
    rc = ct_devops[CT_CUDA].copy_h2d(t->storage->data, ct_data_ptr(c), nb, dev.index);
  } else if (nb) {
    cudaStream_t s = ct_cu_stream(dev.index), ss = ct_cu_stream(sd.index);
    /* the source's stream must have produced it before the peer copy reads it */
    rc = !s || !ss ? -1 : ct_cu_check(cudaStreamSynchronize(ss), "copy between GPUs");
    if (!rc && !ct_cu_set_device(dev.index))
      rc = ct_cu_check(cudaMemcpyPeerAsync(t->storage->data, dev.index, ct_data_ptr(c), sd.index, nb, s),
                       "copy between GPUs");
  }
  ct_release(c);
  if (rc) {
    ct_release(t);
    return NULL;
  }
  return t;
}

static int copy_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  const ct_tensor *src = in[0];
  ct_device dd = out->storage->device, sd = src->storage->device;
  if (ct_device_eq(dd, sd)) return ct_cu_copy_into(out, src);
  /* host -> device, or another GPU -> this one: one contiguous transfer, then convert in place */
  bool direct = ct_is_contiguous(out) && out->dtype == src->dtype && ct_numel(out) == ct_numel(src);
  if (direct && sd.type == CT_CPU) {
    ct_tensor *c = ct_contiguous((ct_tensor *)src);
    if (!c) return -1;
    size_t nb = (size_t)ct_numel(c) * ct_dtype_size(c->dtype);
    int rc = nb ? ct_devops[CT_CUDA].copy_h2d(ct_data_ptr(out), ct_data_ptr(c), nb, dd.index) : 0;
    ct_release(c);
    return rc;
  }
  ct_tensor *t = staged_on(src, dd);
  if (!t) return -1;
  if (!ct_cu_set_device(dd.index)) ct_cu_stream(dd.index);
  int rc = ct_cu_copy_into(out, t);
  ct_release(t);
  return rc;
}
CT_CU_FORWARD(copy, copy_impl)

static int to_dtype_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  return ct_cu_copy_into(out, in[0]);
}
CT_CU_FORWARD(to_dtype, to_dtype_impl)

/* narrow_scatter(g): zeros of attrs.shape with g written at [i[1], i[1]+len) along dim i[0]. */
static int narrow_scatter_impl(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  if (ct_cu_check(cudaMemsetAsync(out->storage->data, 0, out->storage->nbytes, s), "narrow_scatter")) return -1;
  int d = (int)a->i[0];
  ct_meta m;
  ct_meta_of(out, &m);
  m.shape[d] = in[0]->shape[d];
  m.offset = out->offset + a->i[1] * out->stride[d];
  ct_tensor *win = ct_tensor_alias(out, &m);
  if (!win) return -1;
  int rc = ct_cu_copy_into(win, in[0]);
  ct_release(win);
  return rc;
}
CT_CU_FORWARD_ON(narrow_scatter, narrow_scatter_impl)

#define CONVERT_OPS(X) X(copy) X(to_dtype) X(narrow_scatter)
extern "C" void ct_cu_register_convert(void) { CONVERT_OPS(CT_CU_REGISTER) }
