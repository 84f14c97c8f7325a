/* index.cu: CUDA forwards of the indexing ops of core/ops_index.c: index_select and its adjoint
 * index_add, gather and its adjoint scatter_add, cat; and the index check every op with index
 * values uses (ct_cu_index_positions).
 * Invariants: index values are 1-based (negative from the end) and every one is checked before
 * any is used; the first bad value in row-major order is the one reported, as on the CPU; the
 * adjoints accumulate with atomics, so duplicate indices add up (in an order that may differ
 * from the CPU's by rounding). */
#include <string.h>

#include "cu_util.cuh"

/* ---- index values -> 0-based positions ---------------------------------------------------------- */
template <typename I>
__global__ void k_positions(int64_t n, const I *__restrict__ idx, int64_t size, int64_t *__restrict__ pos,
                            unsigned long long *bad) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t v = (int64_t)idx[i];
    int64_t k = v >= 1 && v <= size ? v - 1 : (v <= -1 && v >= -size ? size + v : -1);
    if (k < 0) {
      atomicMin(bad, (unsigned long long)i);
      k = 0;
    }
    pos[i] = k;
  }
}

extern "C" int ct_cu_index_positions(const ct_tensor *idx, int64_t size, int64_t **pos_out, int64_t *bad_at,
                                     int64_t *bad_value) {
  *pos_out = NULL;
  *bad_at = -1;
  if (idx->dtype != CT_I64 && idx->dtype != CT_I32 && idx->dtype != CT_I8)
    return ct_errorf("the index tensor must have an integer dtype (i64, i32 or i8), got %s", ct_dtype_name(idx->dtype));
  int dev = ct_cu_index(idx);
  cudaStream_t s = ct_cu_stream(dev);
  if (!s) return -1;
  ct_tensor *c = ct_contiguous((ct_tensor *)idx);
  if (!c) return -1;
  int64_t n = ct_numel(c);
  int64_t *pos = (int64_t *)ct_cu_scratch(sizeof(int64_t) * (size_t)(n + 1), dev, "index check");
  if (!pos) {
    ct_release(c);
    return -1;
  }
  unsigned long long *bad = (unsigned long long *)(pos + n), hbad = 0;
  int rc = ct_cu_check(cudaMemsetAsync(bad, 0xff, sizeof *bad, s), "index check");
  if (!rc && n) {
    unsigned blocks = ct_cu_blocks(n, dev);
    const void *ip = ct_data_ptr(c);
    if (c->dtype == CT_I64) k_positions<int64_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, (const int64_t *)ip, size, pos, bad);
    else if (c->dtype == CT_I32) k_positions<int32_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, (const int32_t *)ip, size, pos, bad);
    else k_positions<int8_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, (const int8_t *)ip, size, pos, bad);
    rc = ct_cu_check_launch("index check");
  }
  if (!rc) rc = ct_cu_check(cudaMemcpyAsync(&hbad, bad, sizeof hbad, cudaMemcpyDeviceToHost, s), "index check");
  if (!rc) rc = ct_cu_check(cudaStreamSynchronize(s), "index check");
  if (!rc && n && hbad != ~0ull) {
    size_t isz = ct_dtype_size(c->dtype);
    char v[8] = {0};
    rc = ct_cu_check(cudaMemcpy(v, (const char *)ct_data_ptr(c) + hbad * isz, isz, cudaMemcpyDeviceToHost), "index check");
    if (!rc) {
      *bad_at = (int64_t)hbad;
      if (c->dtype == CT_I64) memcpy(bad_value, v, 8);
      else if (c->dtype == CT_I32) { int32_t x; memcpy(&x, v, 4); *bad_value = x; }
      else *bad_value = (int8_t)v[0];
    }
  }
  ct_release(c);
  if (rc) {
    ct_cu_free(pos, 0, dev);
    return -1;
  }
  *pos_out = pos;
  return 0;
}

static int range_error(const char *op, int64_t v, int dim, int64_t size) {
  return ct_errorf("%s: index %lld is out of range for dim %d of size %lld (1-based; valid 1..%lld or -%lld..-1)", op,
                   (long long)v, dim + 1, (long long)size, (long long)size, (long long)size);
}

/* Positions of idx along a dim of the given size, or NULL with the op's range error set. */
static int64_t *positions_or_error(const char *op, const ct_tensor *idx, int dim, int64_t size) {
  int64_t *pos, bad_at, bad_v;
  if (ct_cu_index_positions(idx, size, &pos, &bad_at, &bad_v)) return NULL;
  if (bad_at >= 0) {
    ct_cu_free(pos, 0, ct_cu_index(idx));
    range_error(op, bad_v, dim, size);
    return NULL;
  }
  return pos;
}

static int64_t prod(const int64_t *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s[d];
  return p;
}

/* ---- index_select / index_add ------------------------------------------------------------------- */
template <typename W>
__global__ void k_index_select(int64_t total, int64_t K, int64_t D, int64_t inner, const W *__restrict__ src,
                               const int64_t *__restrict__ pos, W *__restrict__ out) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
    int64_t k = e % inner, r = e / inner, j = r % K, o = r / K;
    out[e] = src[(o * D + pos[j]) * inner + k];
  }
}

template <typename T>
__global__ void k_index_add(int64_t total, int64_t K, int64_t D, int64_t inner, const T *__restrict__ src,
                            const int64_t *__restrict__ pos, T *out) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
    int64_t k = e % inner, r = e / inner, j = r % K, o = r / K;
    atomicAdd(&out[(o * D + pos[j]) * inner + k], src[e]);
  }
}

/* x made contiguous; NULL (error set) after giving the index positions pos back to the cache. */
static ct_tensor *contiguous_or_free(ct_tensor *x, int64_t *pos, int dev) {
  ct_tensor *c = ct_contiguous(x);
  if (!c) ct_cu_free(pos, 0, dev);
  return c;
}

static int index_select_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  int dim = (int)a->i[0];
  ct_tensor *t = in[0];
  int64_t K = ct_numel(in[1]), D = t->shape[dim];
  int64_t *pos = positions_or_error("index_select", in[1], dim, D);
  if (!pos) return -1;
  ct_tensor *c = contiguous_or_free(t, pos, dev);
  if (!c) return -1;
  int64_t inner = prod(t->shape, dim + 1, t->ndim), total = ct_numel(out);
  if (total) {
    unsigned blocks = ct_cu_blocks(total, dev);
    const void *sp = ct_data_ptr(c);
    void *op = ct_data_ptr(out);
    switch (ct_dtype_size(t->dtype)) {
    case 1: k_index_select<uint8_t><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const uint8_t *)sp, pos, (uint8_t *)op); break;
    case 2: k_index_select<uint16_t><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const uint16_t *)sp, pos, (uint16_t *)op); break;
    case 4: k_index_select<uint32_t><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const uint32_t *)sp, pos, (uint32_t *)op); break;
    default: k_index_select<uint64_t><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const uint64_t *)sp, pos, (uint64_t *)op); break;
    }
  }
  int rc = ct_cu_check_launch("index_select");
  ct_cu_free(pos, 0, dev);
  ct_release(c);
  return rc;
}
CT_CU_FORWARD_ON(index_select, index_select_fwd)

static int index_add_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  int dim = (int)a->i[0];
  int64_t K = ct_numel(in[1]), D = out->shape[dim];
  if (ct_cu_zero(out, s, "index_add"))
    return -1;
  int64_t *pos = positions_or_error("index_add", in[1], dim, D);
  if (!pos) return -1;
  ct_tensor *c = contiguous_or_free(in[0], pos, dev);
  if (!c) return -1;
  int64_t inner = prod(out->shape, dim + 1, out->ndim), total = ct_numel(c);
  if (total) {
    unsigned blocks = ct_cu_blocks(total, dev);
    if (out->dtype == CT_F32)
      k_index_add<float><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const float *)ct_data_ptr(c), pos,
                                                           (float *)ct_data_ptr(out));
    else
      k_index_add<double><<<blocks, CT_CU_THREADS, 0, s>>>(total, K, D, inner, (const double *)ct_data_ptr(c), pos,
                                                            (double *)ct_data_ptr(out));
  }
  int rc = ct_cu_check_launch("index_add");
  ct_cu_free(pos, 0, dev);
  ct_release(c);
  return rc;
}
CT_CU_FORWARD_ON(index_add, index_add_fwd)

/* ---- gather / scatter_add -------------------------------------------------------------------------- */
typedef struct {
  int ndim, dim;
  int64_t shape[CT_MAX_DIMS];  /* the index's shape (row-major position p) */
  int64_t stride[CT_MAX_DIMS]; /* element strides of the tensor read or written */
} gather_geom;

__device__ __forceinline__ int64_t gather_offset(const gather_geom &g, int64_t p, int64_t k) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; d--) {
    int64_t q = p / g.shape[d], r = p - q * g.shape[d];
    p = q;
    off += (d == g.dim ? k : r) * g.stride[d];
  }
  return off;
}

template <typename W>
__global__ void k_gather(int64_t n, gather_geom g, const W *__restrict__ src, const int64_t *__restrict__ pos,
                         W *__restrict__ out) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < n; p += step) out[p] = src[gather_offset(g, p, pos[p])];
}

template <typename T>
__global__ void k_scatter_add(int64_t n, gather_geom g, const T *__restrict__ src, const int64_t *__restrict__ pos, T *out) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < n; p += step)
    atomicAdd(&out[gather_offset(g, p, pos[p])], src[p]);
}

static gather_geom geom_of(const ct_tensor *idx, const ct_tensor *t, int dim) {
  gather_geom g;
  memset(&g, 0, sizeof g);
  g.ndim = idx->ndim;
  g.dim = dim;
  memcpy(g.shape, idx->shape, sizeof g.shape);
  memcpy(g.stride, t->stride, sizeof g.stride);
  return g;
}

static int gather_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  const ct_tensor *t = in[0];
  int dim = (int)a->i[0];
  int64_t *pos = positions_or_error("gather", in[1], dim, t->shape[dim]);
  if (!pos) return -1;
  int64_t n = ct_numel(in[1]);
  if (n) {
    gather_geom g = geom_of(in[1], t, dim);
    unsigned blocks = ct_cu_blocks(n, dev);
    const void *sp = ct_data_ptr(t);
    void *op = ct_data_ptr(out);
    switch (ct_dtype_size(t->dtype)) {
    case 1: k_gather<uint8_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const uint8_t *)sp, pos, (uint8_t *)op); break;
    case 2: k_gather<uint16_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const uint16_t *)sp, pos, (uint16_t *)op); break;
    case 4: k_gather<uint32_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const uint32_t *)sp, pos, (uint32_t *)op); break;
    default: k_gather<uint64_t><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const uint64_t *)sp, pos, (uint64_t *)op); break;
    }
  }
  int rc = ct_cu_check_launch("gather");
  ct_cu_free(pos, 0, dev);
  return rc;
}
CT_CU_FORWARD_ON(gather, gather_fwd)

static int scatter_add_fwd(ct_tensor *out, ct_tensor *const *in, const ct_attrs *a, int dev, cudaStream_t s) {
  int dim = (int)a->i[0];
  if (ct_cu_zero(out, s, "scatter_add"))
    return -1;
  int64_t *pos = positions_or_error("scatter_add", in[1], dim, out->shape[dim]);
  if (!pos) return -1;
  ct_tensor *c = contiguous_or_free(in[0], pos, dev);
  if (!c) return -1;
  int64_t n = ct_numel(in[1]);
  if (n) {
    gather_geom g = geom_of(in[1], out, dim);
    unsigned blocks = ct_cu_blocks(n, dev);
    if (out->dtype == CT_F32)
      k_scatter_add<float><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const float *)ct_data_ptr(c), pos, (float *)ct_data_ptr(out));
    else
      k_scatter_add<double><<<blocks, CT_CU_THREADS, 0, s>>>(n, g, (const double *)ct_data_ptr(c), pos, (double *)ct_data_ptr(out));
  }
  int rc = ct_cu_check_launch("scatter_add");
  ct_cu_free(pos, 0, dev);
  ct_release(c);
  return rc;
}
CT_CU_FORWARD_ON(scatter_add, scatter_add_fwd)

/* ---- cat: each input copied into its window of the output ------------------------------------------- */
static int cat_fwd(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  return ct_cat_into(out, in, nin, (int)a->i[0], ct_cu_copy_into);
}
CT_CU_FORWARD(cat, cat_fwd)

#define INDEX_OPS(X) X(index_select) X(index_add) X(gather) X(scatter_add) X(cat)
extern "C" void ct_cu_register_index(void) { INDEX_OPS(CT_CU_REGISTER) }
