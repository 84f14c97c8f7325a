/* index.cu: CUDA forwards of the indexing ops of core/ops_index.c: index_select and its adjoint
 * index_add, gather and its adjoint scatter_add, cat; and the index check every op with index
 * values uses (ct_cu_index_positions).
 * Invariants: index values are 1-based (negative from the end) and every one is checked on the
 * device as it is used (a bad one reads position 0 and is reported at the next synchronisation,
 * naming the op); the first bad value in row-major order is the one reported, as on the CPU; the
 * adjoints accumulate with atomics, so duplicate indices add up (in an order that may differ
 * from the CPU's by rounding). */
#include <stdio.h>
#include <string.h>

#include "cu_util.cuh"

/* ---- index values -> 0-based positions, checked on the device ----------------------------------
 * A bad value is not waited for: the kernel clamps it to position 0 and records the first bad
 * element (atomicMin); the last block to finish (a counter) copies that element's value, the op,
 * the size and the dim into a host-mapped record and resets the counters for the next check, so a
 * check is one launch with no memset and no copy, and works inside a CUDA Graph. The host reads the
 * record at the next synchronisation (ct_cu_index_check_deferred, called by every device-to-host
 * copy and by chalk.cuda.synchronize()), as PyTorch's device-side asserts surface at the next sync,
 * and turns it into the op's range error. All checks of a device run on its one stream, in order,
 * so one pair of counters per device serves them all. */
struct ix_dev {
  unsigned long long bad; /* first bad element, ~0 when none */
  unsigned int done;      /* blocks finished */
  unsigned int claimed;   /* 1 once a bad value is recorded (the first report wins) */
};
struct ix_host {
  volatile int flag;
  int kind, dim;
  long long at, value, size;
  const char *op; /* a string literal of the host process (never read on the device) */
};
static ix_dev *ix_d[CT_CUDA_MAX_DEVICES];
static ix_host *ix_h[CT_CUDA_MAX_DEVICES], *ix_hd[CT_CUDA_MAX_DEVICES];

static int ix_records(int dev) {
  if (ix_d[dev]) return 0;
  ix_dev init = {~0ull, 0, 0};
  if (ct_cu_check(cudaMalloc((void **)&ix_d[dev], sizeof(ix_dev)), "index check") ||
      ct_cu_check(cudaMemcpy(ix_d[dev], &init, sizeof init, cudaMemcpyHostToDevice), "index check") ||
      ct_cu_check(cudaHostAlloc((void **)&ix_h[dev], sizeof(ix_host), cudaHostAllocMapped), "index check") ||
      ct_cu_check(cudaHostGetDevicePointer((void **)&ix_hd[dev], ix_h[dev], 0), "index check")) {
    if (ix_d[dev]) cudaFree(ix_d[dev]);
    ix_d[dev] = NULL;
    return -1;
  }
  memset((void *)ix_h[dev], 0, sizeof(ix_host));
  return 0;
}

template <typename I>
__global__ void k_positions(int64_t n, const I *__restrict__ idx, int64_t size, int64_t *__restrict__ pos, ix_dev *rec,
                            ix_host *host, const char *op, int kind, int dim) {
  int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t v = (int64_t)idx[i];
    int64_t k = v >= 1 && v <= size ? v - 1 : (v <= -1 && v >= -size ? size + v : -1);
    if (k < 0) {
      atomicMin(&rec->bad, (unsigned long long)i);
      k = 0;
    }
    pos[i] = k;
  }
  __syncthreads();
  if (threadIdx.x) return;
  __threadfence();
  if (atomicAdd(&rec->done, 1u) != gridDim.x - 1) return;
  unsigned long long bad = atomicAdd(&rec->bad, 0ull); /* every block's atomicMin is visible now */
  if (bad != ~0ull && atomicCAS(&rec->claimed, 0u, 1u) == 0u) {
    host->at = (long long)bad;
    host->value = (long long)idx[bad];
    host->size = size;
    host->kind = kind;
    host->dim = dim;
    host->op = op;
    __threadfence_system();
    host->flag = 1;
  }
  rec->bad = ~0ull;
  rec->done = 0;
}

extern "C" int ct_cu_index_positions(const ct_tensor *idx, int64_t size, int64_t **pos_out, const char *op, int kind,
                                     int dim) {
  *pos_out = NULL;
  if (idx->dtype != CT_I64 && idx->dtype != CT_I32 && idx->dtype != CT_I8)
    return ct_errorf("the index tensor must have an integer dtype (i64, i32 or i8), got %s", ct_dtype_name(idx->dtype));
  int dev = ct_cu_index(idx);
  cudaStream_t s = ct_cu_stream(dev);
  if (!s || ix_records(dev)) return -1;
  ct_tensor *c = ct_contiguous((ct_tensor *)idx);
  if (!c) return -1;
  int64_t n = ct_numel(c);
  int64_t *pos = (int64_t *)ct_cu_scratch(sizeof(int64_t) * (size_t)(n ? n : 1), dev, "index check");
  if (!pos) {
    ct_release(c);
    return -1;
  }
  int rc = 0;
  if (n) {
    unsigned blocks = ct_cu_blocks(n, dev);
    const void *ip = ct_data_ptr(c);
#define IX_LAUNCH(I)                                                                                                   \
  k_positions<I><<<blocks, CT_CU_THREADS, 0, s>>>(n, (const I *)ip, size, pos, ix_d[dev], ix_hd[dev], op, kind, dim)
    if (c->dtype == CT_I64) IX_LAUNCH(int64_t);
    else if (c->dtype == CT_I32) IX_LAUNCH(int32_t);
    else IX_LAUNCH(int8_t);
#undef IX_LAUNCH
    rc = ct_cu_check_launch("index check");
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

extern "C" int ct_cu_index_check_deferred(int dev) {
  if (dev < 0 || dev >= CT_CUDA_MAX_DEVICES || !ix_h[dev] || !ix_h[dev]->flag) return 0;
  ix_host r = *(ix_host *)ix_h[dev];
  ix_h[dev]->flag = 0;
  unsigned int zero = 0; /* the next bad value may report again */
  cudaMemcpy(&ix_d[dev]->claimed, &zero, sizeof zero, cudaMemcpyHostToDevice);
  long long C = r.size;
  if (r.kind == CT_CU_IX_TARGET)
    ct_errorf("nll_loss: target %lld (sample %lld) is out of range for C=%lld classes (1-based; valid 1..%lld or "
              "-%lld..-1)", r.value, r.at + 1, C, C, C);
  else if (r.kind == CT_CU_IX_ONE_HOT)
    ct_errorf("one_hot: index %lld (element %lld) is out of range for %lld classes (1-based; valid 1..%lld or "
              "-%lld..-1)", r.value, r.at + 1, C, C, C);
  else
    range_error(r.op, r.value, r.dim, r.size);
  char msg[600];
  snprintf(msg, sizeof msg, "%s", ct_last_error());
  return ct_errorf("%s [checked on cuda:%d without waiting; reported at this synchronisation, so results computed "
                   "since are not valid]", msg, dev);
}

/* Positions of idx along a dim of the given size (checked on the device, see above), or NULL. */
static int64_t *positions_or_error(const char *op, const ct_tensor *idx, int dim, int64_t size) {
  int64_t *pos;
  if (ct_cu_index_positions(idx, size, &pos, op, CT_CU_IX_RANGE, dim)) return NULL;
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
