/* register.c: the CUDA backend's entry: device discovery, one stream per device, and registration
 * of the device memory operations, the CUDA Graph pool hooks (capture.h) and every CUDA forward
 * into core's tables.
 * Invariants: nothing here runs at load time; ct_cuda_register() is idempotent and the only
 * place that asks the driver whether a GPU exists; when none does (no driver, no device,
 * CUDA_VISIBLE_DEVICES empty) core's tables stay CPU-only and the reason is kept for messages. */
#include <stdio.h>
#include <string.h>

#include "graph/capture.h"
#include "cuda_internal.h"

/* The graph-pool hooks live in core/fuse_cuda.c; weak, so that a program that never captures does
   not link the capture code for them (they are set only when it is linked in). */
#pragma weak ct_cuda_graph_pool_begin
#pragma weak ct_cuda_graph_pool_end
#pragma weak ct_cuda_graph_pool_release

static int registered;            /* 0: not tried, 1: tried */
static int device_count;          /* devices visible after registration */
static char reason[256] = "the CUDA backend has not been initialised (call ct_init())";
static cudaStream_t streams[CT_CUDA_MAX_DEVICES];
static int sm_counts[CT_CUDA_MAX_DEVICES];
static int current_device = -1;

int ct_cu_check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return 0;
  (void)cudaGetLastError(); /* clear a non-sticky error so the next op starts clean */
  if (e == cudaErrorMemoryAllocation)
    return ct_errorf("%s: out of memory on cuda (%s)", what, cudaGetErrorString(e));
  return ct_errorf("%s: CUDA error: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int ct_cu_check_launch(const char *what) { return ct_cu_check(cudaGetLastError(), what); }

int ct_cu_device_count(void) { return device_count; }

int ct_cu_set_device(int index) {
  if (index < 0 || index >= device_count)
    return ct_errorf("device cuda:%d does not exist (%d CUDA device%s visible)", index, device_count,
                     device_count == 1 ? "" : "s");
  if (index == current_device) return 0;
  if (ct_cu_check(cudaSetDevice(index), "cudaSetDevice")) return -1;
  current_device = index;
  return 0;
}

cudaStream_t ct_cu_stream(int index) {
  if (ct_cu_set_device(index)) return NULL;
  if (!streams[index] && ct_cu_check(cudaStreamCreate(&streams[index]), "cudaStreamCreate")) return NULL;
  return streams[index];
}

int ct_cu_sm_count(int index) { return index >= 0 && index < device_count ? sm_counts[index] : 1; }

/* ---- device memory operations (the CUDA row of ct_devops) ---------------------------------- */

static int copy_dir(void *dst, const void *src, size_t n, int index, enum cudaMemcpyKind kind, const char *what) {
  if (!n) return 0;
  cudaStream_t s = ct_cu_stream(index);
  if (!s) return -1;
  if (ct_cu_check(cudaMemcpyAsync(dst, src, n, kind, s), what)) return -1;
  /* device->host must be complete on return; host->device from pageable memory already is */
  if (kind == cudaMemcpyDeviceToHost) return ct_cu_check(cudaStreamSynchronize(s), what);
  return 0;
}
static int cu_copy_h2d(void *dst, const void *src, size_t n, int index) {
  return copy_dir(dst, src, n, index, cudaMemcpyHostToDevice, "copy host to cuda");
}
static int cu_copy_d2h(void *dst, const void *src, size_t n, int index) {
  return copy_dir(dst, src, n, index, cudaMemcpyDeviceToHost, "copy cuda to host");
}
static int cu_copy_d2d(void *dst, const void *src, size_t n, int index) {
  return copy_dir(dst, src, n, index, cudaMemcpyDeviceToDevice, "copy cuda to cuda");
}
static int cu_memset0(void *p, size_t n, int index) {
  if (!n) return 0;
  cudaStream_t s = ct_cu_stream(index);
  if (!s) return -1;
  return ct_cu_check(cudaMemsetAsync(p, 0, n, s), "zero cuda memory");
}

/* ---- hooks that core/device.c calls ----------------------------------------------------------- */

int ct_cuda_register(void) {
  if (registered) return device_count;
  registered = 1;
  ct_cu_register_ladder(); /* names only until a device is found: listed even without a GPU */
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n <= 0) {
    snprintf(reason, sizeof reason, "cudaGetDeviceCount: %s (%s)",
             e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device", e != cudaSuccess ? cudaGetErrorName(e) : "0 devices");
    (void)cudaGetLastError();
    device_count = 0;
    return 0;
  }
  if (n > CT_CUDA_MAX_DEVICES) n = CT_CUDA_MAX_DEVICES;
  for (int i = 0; i < n; i++) {
    int sms = 1;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, i) != cudaSuccess) sms = 1;
    sm_counts[i] = sms;
  }
  device_count = n;
  reason[0] = 0;
  ct_devops[CT_CUDA] = (ct_device_ops){ct_cu_alloc, ct_cu_free, cu_copy_h2d, cu_copy_d2h, cu_copy_d2d, cu_memset0};
  if (&ct_cuda_graph_pool_begin && &ct_cuda_graph_pool_end && &ct_cuda_graph_pool_release) {
    ct_cuda_graph_pool_begin = ct_cu_graph_pool_begin; /* scratch taken while a graph is recorded */
    ct_cuda_graph_pool_end = ct_cu_graph_pool_end;     /* stays the graph's (alloc_cuda.c) */
    ct_cuda_graph_pool_release = ct_cu_graph_pool_release;
  }
  ct_cu_register_elementwise();
  ct_cu_register_convert();
  ct_cu_register_reduce();
  ct_cu_register_matmul();
  ct_cu_register_nn();
  ct_cu_register_index();
  ct_cu_register_conv();
  ct_cu_register_random();
  ct_cu_register_attention();
  ct_cu_register_paged();
  ct_cu_register_quant();
  return n;
}

int ct_cuda_backend_count(void) { return device_count; }

const char *ct_cuda_backend_reason(void) { return reason; }

int ct_cuda_backend_synchronize(void) {
  if (!device_count) return ct_errorf("cuda synchronize: no CUDA device (%s)", reason);
  for (int i = 0; i < device_count; i++) {
    if (!streams[i]) continue;
    if (ct_cu_set_device(i) || ct_cu_check(cudaStreamSynchronize(streams[i]), "cuda synchronize")) return -1;
  }
  return ct_cu_resolve_times();
}

int ct_cuda_backend_empty_cache(void) { return device_count ? ct_cu_empty_cache_all() : 0; }

int ct_cuda_backend_memory(int index, int64_t *allocated, int64_t *reserved) {
  if (index < 0 || index >= device_count)
    return ct_errorf("device cuda:%d does not exist (%d CUDA devices visible)", index, device_count);
  int64_t blocks;
  ct_cu_memory_info(index, allocated, reserved, &blocks);
  return 0;
}

int ct_cuda_backend_device_name(int index, char *buf, size_t n) {
  if (index < 0 || index >= device_count)
    return ct_errorf("device cuda:%d does not exist (%d CUDA devices visible)", index, device_count);
  struct cudaDeviceProp p;
  if (ct_cu_check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties")) return -1;
  snprintf(buf, n, "%s", p.name);
  return 0;
}
