/* persistent.cu: lesson 19's mega-kernel (see warpspec.h): an MLP forward as a list of ops cut into
 * tiles, run one launch per op, as a CUDA Graph of those launches, or by one persistent kernel whose
 * blocks take tiles from a device-side queue; and the cost of launching an empty kernel. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "cu_util.cuh"
#include "warpspec.h"

/* One op of the list: LINEAR out[M,N] = in[M,K] w[K,N] + bias[N] in 32 x 32 tiles, or RELU
   out = max(in, 0) by blocks of 32 rows. Rows come in blocks of 32 in every op, so a task of op j on
   row block rb depends only on row block rb of op j - 1: its per_rb tasks (tiles across N for a
   linear, 1 for a relu). `first` is the op's first task number. */
enum { PK_LINEAR, PK_RELU };
constexpr int PK_T = 32, PK_THREADS = 256, PK_MAX_OPS = 2 * CT_PK_MAX_LAYERS;
struct pk_op {
  int kind, M, N, K, ntiles, per_rb, first;
  const float *in, *w, *bias;
  float *out;
};
struct pk_list {
  int nops, total, rows; /* rows: row blocks of 32 */
  pk_op op[PK_MAX_OPS];
};

/* Task t of op o. Activations are read with ld.global.cg (L2, not L1): in the persistent kernel
   another SM wrote them during this launch, and L1 is not coherent between SMs. */
__device__ void pk_tile(const pk_op &o, int t) {
  __shared__ float As[PK_T][PK_T + 1], Ws[PK_T][PK_T];
  const int tx = threadIdx.x % PK_T, ty = threadIdx.x / PK_T; /* 32 x 8 */
  if (o.kind == PK_RELU) { /* rows 32t .. 32t + 31; 4 independent loads in flight per thread */
    const float *__restrict__ in = o.in;
    float *__restrict__ out = o.out;
    int64_t i0 = (int64_t)t * PK_T * o.N, i1 = min((int64_t)(t + 1) * PK_T, (int64_t)o.M) * o.N;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += 4 * PK_THREADS) {
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) v[u] = i + u * PK_THREADS < i1 ? __ldcg(in + i + u * PK_THREADS) : 0.0f;
#pragma unroll
      for (int u = 0; u < 4; u++)
        if (i + u * PK_THREADS < i1) out[i + u * PK_THREADS] = fmaxf(v[u], 0.0f);
    }
    return;
  }
  const int tilesN = (o.N + PK_T - 1) / PK_T, r0 = (t / tilesN) * PK_T, c0 = (t % tilesN) * PK_T, col = c0 + tx;
  float acc[4] = {0, 0, 0, 0};
  for (int k0 = 0; k0 < o.K; k0 += PK_T) {
    for (int r = ty; r < PK_T; r += 8) {
      int gr = r0 + r, gk = k0 + tx;
      As[r][tx] = gr < o.M && gk < o.K ? __ldcg(o.in + (size_t)gr * o.K + gk) : 0.0f;
      int wk = k0 + r;
      Ws[r][tx] = wk < o.K && col < o.N ? o.w[(size_t)wk * o.N + col] : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < PK_T; k++) {
      float wv = Ws[k][tx];
#pragma unroll
      for (int j = 0; j < 4; j++) acc[j] = fmaf(As[ty + 8 * j][k], wv, acc[j]);
    }
    __syncthreads();
  }
  if (col < o.N)
    for (int j = 0; j < 4; j++)
      if (r0 + ty + 8 * j < o.M) o.out[(size_t)(r0 + ty + 8 * j) * o.N + col] = acc[j] + o.bias[col];
}

/* One launch per op: a block per task. */
__global__ void __launch_bounds__(PK_THREADS) k_pk_op(pk_op o) { pk_tile(o, blockIdx.x); }

/* The persistent kernel. ctr[0] hands out task numbers; ctr[1 + j * rows + rb] counts the finished
   tasks of op j on row block rb. The counters are never reset: launch `epoch` (0, 1, ...) owns
   task numbers from epoch * (total + gridDim.x) on (each block takes one number past the end
   before it leaves), and row block rb of op j is complete in this launch when its counter reaches
   (epoch + 1) * per_rb. Tasks are taken in order, so every task a task waits on belongs to a block
   that is already running: waiting cannot deadlock, whatever the grid size. */
__global__ void __launch_bounds__(PK_THREADS)
    k_pk_persistent(pk_list L, unsigned long long *ctr, unsigned long long epoch) {
  __shared__ int task;
  const unsigned long long base = epoch * (unsigned long long)(L.total + gridDim.x);
  for (;;) {
    if (threadIdx.x == 0) task = (int)(atomicAdd(&ctr[0], 1ULL) - base);
    __syncthreads();
    const int t = task;
    if (t >= L.total) break;
    int j = 0;
    while (t >= L.op[j].first + L.op[j].ntiles) j++;
    const pk_op o = L.op[j]; /* a copy in registers, not a reference into the parameters */
    const int local = t - o.first, rb = o.kind == PK_RELU ? local : local / ((o.N + PK_T - 1) / PK_T);
    if (j > 0 && threadIdx.x == 0) { /* the flag: row block rb of op j - 1 is written */
      const unsigned long long need = (epoch + 1) * (unsigned long long)L.op[j - 1].per_rb;
      const unsigned long long *flag = ctr + 1 + (size_t)(j - 1) * L.rows + rb;
      unsigned long long seen;
      for (;;) {
        asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(seen) : "l"(flag) : "memory");
        if (seen >= need) break;
        __nanosleep(32);
      }
      __threadfence(); /* what the writers published before their count is visible from here on */
    }
    __syncthreads();
    pk_tile(o, local);
    __syncthreads(); /* every thread's stores issued; thread 0 publishes them */
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(&ctr[1 + (size_t)j * L.rows + rb], 1ULL);
    }
  }
}

__global__ void k_pk_empty() {}

/* ---- the host side ---------------------------------------------------------------------------- */
static double host_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Launches the op list once per op on s (also what a graph captures). */
static int pk_launch_ops(const pk_list &L, cudaStream_t s) {
  for (int j = 0; j < L.nops; j++) k_pk_op<<<L.op[j].ntiles, PK_THREADS, 0, s>>>(L.op[j]);
  return ct_cu_check_launch("cuda.persistent_mlp(per_op)");
}

/* Checks the layers and builds the op list over buffers from one scratch allocation. */
static int pk_build(ct_tensor *x, ct_tensor *const *w, ct_tensor *const *bias, int nlayers, pk_list *L, float **act,
                    size_t *act_bytes) {
  char d1[160], d2[160], d3[160];
  if (nlayers < 1 || nlayers > CT_PK_MAX_LAYERS)
    return ct_errorf("cuda.persistent_mlp: %d layers; 1 to %d are supported", nlayers, CT_PK_MAX_LAYERS);
  if (!x || x->ndim != 2 || x->dtype != CT_F32 || x->storage->device.type != CT_CUDA || !ct_is_contiguous(x))
    return ct_errorf("cuda.persistent_mlp: x must be a contiguous [B, K] f32 CUDA tensor, got %s",
                     x ? ct_describe(x, d1, sizeof d1) : "nothing");
  int64_t B = x->shape[0], K = x->shape[1], floats = 0;
  for (int i = 0; i < nlayers; i++) {
    const ct_tensor *W = w[i], *b = bias[i];
    if (!W || !b || W->ndim != 2 || b->ndim != 1 || W->dtype != CT_F32 || b->dtype != CT_F32 || W->shape[0] != K ||
        b->shape[0] != W->shape[1] || !ct_is_contiguous(W) || !ct_is_contiguous(b) ||
        W->storage->device.type != CT_CUDA || b->storage->device.type != CT_CUDA ||
        W->storage->device.index != x->storage->device.index || b->storage->device.index != x->storage->device.index)
      return ct_errorf("cuda.persistent_mlp: layer %d needs W [%lld, N] and b [N] contiguous f32 on x's device "
                       "(x %s), got W %s and b %s",
                       i + 1, (long long)K, ct_describe(x, d1, sizeof d1),
                       W ? ct_describe(W, d2, sizeof d2) : "nothing", b ? ct_describe(b, d3, sizeof d3) : "nothing");
    K = W->shape[1];
    floats += B * K * (i + 1 < nlayers ? 2 : 1);
  }
  if (B > INT32_MAX / 2 || floats > INT32_MAX / 2)
    return ct_errorf("cuda.persistent_mlp: %s is too large for the 32-bit tile indices", ct_describe(x, d1, sizeof d1));
  *act_bytes = (size_t)floats * sizeof(float);
  *act = (float *)ct_cu_scratch(*act_bytes ? *act_bytes : 4, x->storage->device.index, "cuda.persistent_mlp");
  if (!*act) return -1;
  const float *in = (const float *)ct_data_ptr(x);
  float *buf = *act;
  L->nops = L->total = 0;
  L->rows = (int)((B + PK_T - 1) / PK_T);
  K = x->shape[1];
  for (int i = 0; i < nlayers; i++) {
    int N = (int)w[i]->shape[1];
    int tilesN = (N + PK_T - 1) / PK_T;
    pk_op lin = {PK_LINEAR,
                 (int)B,
                 N,
                 (int)K,
                 L->rows * tilesN,
                 tilesN,
                 L->total,
                 in,
                 (const float *)ct_data_ptr(w[i]),
                 (const float *)ct_data_ptr(bias[i]),
                 buf};
    L->op[L->nops++] = lin;
    L->total += lin.ntiles;
    in = buf, buf += B * N;
    if (i + 1 < nlayers) {
      pk_op relu = {PK_RELU, (int)B, N, 0, L->rows, 1, L->total, in, nullptr, nullptr, buf};
      L->op[L->nops++] = relu;
      L->total += relu.ntiles;
      in = buf, buf += B * N;
    }
    K = N;
  }
  return 0;
}

extern "C" int ct_pk_mlp(int mode, ct_tensor *x, ct_tensor *const *w, ct_tensor *const *bias, int nlayers, int reps,
                         ct_tensor **out, double *ms) {
  *out = NULL, *ms = 0;
  if (!ct_cuda_available())
    return ct_errorf("cuda.persistent_mlp: CUDA is not available (%s)", ct_cuda_unavailable_reason());
  if (mode < CT_PK_PER_OP || mode > CT_PK_PERSISTENT) return ct_errorf("cuda.persistent_mlp: unknown mode %d", mode);
  if (reps < 1) return ct_errorf("cuda.persistent_mlp: reps = %d; at least 1", reps);
  pk_list L;
  float *act = nullptr;
  size_t act_bytes = 0;
  if (pk_build(x, w, bias, nlayers, &L, &act, &act_bytes)) return -1;
  const int dev = x->storage->device.index;
  cudaStream_t chalk_s = ct_cu_stream(dev), s = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t ge = nullptr;
  unsigned long long *ctr = nullptr;
  int rc = chalk_s ? ct_cu_check(cudaStreamSynchronize(chalk_s), "cuda.persistent_mlp: inputs") : -1;
  if (!rc) rc = ct_cu_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cuda.persistent_mlp: stream");
  if (!rc) rc = ct_cu_check(cudaEventCreate(&e0), "cuda.persistent_mlp: event");
  if (!rc) rc = ct_cu_check(cudaEventCreate(&e1), "cuda.persistent_mlp: event");
  int grid = 0;
  if (!rc && mode == CT_PK_PERSISTENT) { /* as many blocks as fit on the device at once */
    int per_sm = 0;
    rc = ct_cu_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_pk_persistent, PK_THREADS, 0),
                     "cuda.persistent_mlp: occupancy");
    grid = per_sm * ct_cu_sm_count(dev);
    const char *env = getenv("CHALK_PK_GRID"); /* a smaller grid, for measuring (any size is correct) */
    if (env && atoi(env) > 0 && atoi(env) < grid) grid = atoi(env);
    if (grid > L.total) grid = L.total;
    if (grid < 1) grid = 1;
    size_t cb = sizeof *ctr * (1 + (size_t)L.nops * L.rows);
    ctr = (unsigned long long *)ct_cu_scratch(cb, dev, "cuda.persistent_mlp");
    if (!rc) rc = ctr ? ct_cu_check(cudaMemsetAsync(ctr, 0, cb, s), "cuda.persistent_mlp: counters") : -1;
  }
  if (!rc && mode == CT_PK_GRAPH) {
    rc = ct_cu_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cuda.persistent_mlp: capture");
    if (!rc) {
      pk_launch_ops(L, s);
      rc = ct_cu_check(cudaStreamEndCapture(s, &g), "cuda.persistent_mlp: capture");
    }
    if (!rc) rc = ct_cu_check(cudaGraphInstantiate(&ge, g, 0), "cuda.persistent_mlp: graph");
  }
  unsigned long long epoch = 0;
  for (int r = 0; r <= reps && !rc; r++) { /* r = 0: the warm-up */
    if (r == 1) rc = ct_cu_check(cudaEventRecord(e0, s), "cuda.persistent_mlp: event");
    if (mode == CT_PK_PER_OP)
      rc = rc ? rc : pk_launch_ops(L, s);
    else if (mode == CT_PK_GRAPH)
      rc = rc ? rc : ct_cu_check(cudaGraphLaunch(ge, s), "cuda.persistent_mlp: graph launch");
    else if (!rc) {
      k_pk_persistent<<<grid, PK_THREADS, 0, s>>>(L, ctr, epoch++);
      rc = ct_cu_check_launch("cuda.persistent_mlp(persistent)");
    }
  }
  if (!rc) rc = ct_cu_check(cudaEventRecord(e1, s), "cuda.persistent_mlp: event");
  if (!rc) rc = ct_cu_check(cudaEventSynchronize(e1), "cuda.persistent_mlp");
  float t = 0;
  if (!rc) rc = ct_cu_check(cudaEventElapsedTime(&t, e0, e1), "cuda.persistent_mlp: timing");
  *ms = t / reps;
  if (!rc) {
    const pk_op &last = L.op[L.nops - 1];
    int64_t shape[2] = {last.M, last.N};
    *out = ct_empty(shape, 2, CT_F32, x->storage->device);
    if (!*out)
      rc = -1;
    else
      rc = ct_cu_check(cudaMemcpyAsync(ct_data_ptr(*out), last.out, sizeof(float) * (size_t)last.M * last.N,
                                       cudaMemcpyDeviceToDevice, chalk_s),
                       "cuda.persistent_mlp: output");
  }
  if (ge) cudaGraphExecDestroy(ge);
  if (g) cudaGraphDestroy(g);
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (s) cudaStreamDestroy(s);
  if (ctr) ct_cu_free(ctr, 0, dev);
  ct_cu_free(act, 0, dev);
  if (rc) ct_release(*out), *out = NULL;
  return rc;
}

extern "C" int ct_pk_launch_overhead(int n, double *us_stream, double *us_host, double *us_graph) {
  if (!ct_cuda_available())
    return ct_errorf("cuda.launch_overhead: CUDA is not available (%s)", ct_cuda_unavailable_reason());
  if (n < 1 || n > 100000) return ct_errorf("cuda.launch_overhead: n = %d launches; 1 to 100000", n);
  cudaStream_t s = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t ge = nullptr;
  float t = 0, tg = 0;
  int rc = ct_cu_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cuda.launch_overhead: stream");
  if (!rc) rc = ct_cu_check(cudaEventCreate(&e0), "cuda.launch_overhead: event");
  if (!rc) rc = ct_cu_check(cudaEventCreate(&e1), "cuda.launch_overhead: event");
  if (!rc) { /* warm-up: the module is loaded, the stream's queue primed */
    for (int i = 0; i < 16; i++) k_pk_empty<<<1, 32, 0, s>>>();
    rc = ct_cu_check(cudaStreamSynchronize(s), "cuda.launch_overhead: warm-up");
  }
  if (!rc) {
    double h0 = host_us();
    cudaEventRecord(e0, s);
    for (int i = 0; i < n; i++) k_pk_empty<<<1, 32, 0, s>>>();
    cudaEventRecord(e1, s);
    *us_host = (host_us() - h0) / n;
    rc = ct_cu_check(cudaEventSynchronize(e1), "cuda.launch_overhead: launches");
    if (!rc) rc = ct_cu_check(cudaEventElapsedTime(&t, e0, e1), "cuda.launch_overhead: timing");
  }
  if (!rc)
    rc = ct_cu_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cuda.launch_overhead: capture");
  if (!rc) {
    for (int i = 0; i < n; i++) k_pk_empty<<<1, 32, 0, s>>>();
    rc = ct_cu_check(cudaStreamEndCapture(s, &g), "cuda.launch_overhead: capture");
  }
  if (!rc) rc = ct_cu_check(cudaGraphInstantiate(&ge, g, 0), "cuda.launch_overhead: graph");
  if (!rc) rc = ct_cu_check(cudaGraphLaunch(ge, s), "cuda.launch_overhead: graph warm-up");
  if (!rc) {
    cudaEventRecord(e0, s);
    rc = ct_cu_check(cudaGraphLaunch(ge, s), "cuda.launch_overhead: graph launch");
    cudaEventRecord(e1, s);
    if (!rc) rc = ct_cu_check(cudaEventSynchronize(e1), "cuda.launch_overhead: graph");
    if (!rc) rc = ct_cu_check(cudaEventElapsedTime(&tg, e0, e1), "cuda.launch_overhead: timing");
  }
  *us_stream = 1e3 * t / n, *us_graph = 1e3 * tg / n;
  if (ge) cudaGraphExecDestroy(ge);
  if (g) cudaGraphDestroy(g);
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (s) cudaStreamDestroy(s);
  return rc;
}
