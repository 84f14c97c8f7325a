/* cuda_internal.h: what the files of kernels/ share: the stream of each device, error checks,
 * the strided-iteration description passed to kernels by value, and the per-op timing hooks.
 * Invariants: every CUDA call's status is checked and turned into a ct_errorf message naming the
 * op; all work of one device runs on that device's one stream (so a block freed to the caching
 * allocator may be reused by the next op without a fence); no CUDA call happens before
 * ct_cuda_register() has seen at least one device.
 * Included from C (cc) and CUDA C++ (nvcc). */
#ifndef CHALK_CUDA_INTERNAL_H
#define CHALK_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "obs/events.h"
#include "ops/optable.h"

#define CT_CUDA_MAX_DEVICES 16

/* ---- devices and streams (register.c) ------------------------------------------------------ */
int ct_cu_device_count(void);          /* 0 when no GPU (or before registration) */
cudaStream_t ct_cu_stream(int index);  /* the device's stream; makes the device current */
int ct_cu_set_device(int index);       /* 0, or -1 with the error set */
int ct_cu_sm_count(int index);
/* Turns a failed status into "what: cuda error message (name)" and returns -1; 0 on success. */
int ct_cu_check(cudaError_t e, const char *what);
/* After a launch: checks cudaGetLastError. */
int ct_cu_check_launch(const char *what);

/* ---- allocator (alloc_cuda.c) -------------------------------------------------------------- */
void *ct_cu_alloc(size_t nbytes, int index);
void ct_cu_free(void *p, size_t nbytes, int index);
int ct_cu_empty_cache_all(void);
void ct_cu_memory_info(int index, int64_t *allocated, int64_t *reserved, int64_t *cached_blocks);
/* A temporary device buffer for one op (returned to the cache with ct_cu_free). */
void *ct_cu_scratch(size_t nbytes, int index, const char *what);
/* Private pools of CUDA Graphs (core/capture.h's ct_cuda_graph_pool_* hooks): between begin and
   end every allocation on the device comes from the returned pool, whose blocks serve nothing
   else until release (the graph is destroyed) gives them back. begin returns NULL without memory. */
void *ct_cu_graph_pool_begin(int device);
void ct_cu_graph_pool_end(int device, void *token);
void ct_cu_graph_pool_release(int device, void *token);

/* ---- per-op timing into the event log (timing.c) ------------------------------------------- */
/* Call at the start and end of every CUDA forward; cheap when the log is off. end returns rc,
   or -1 when the launch failed (error set). */
void ct_cu_op_begin(int index);
int ct_cu_op_end(const ct_tensor *out, int index, int rc, const char *what);
/* Record an op event of our own (the ladder's matmuls are not table ops). */
void ct_cu_push_event(const char *static_name, int index, double flops, double bytes, uint64_t tensor_id);
int ct_cu_resolve_times(void); /* synchronizes, then fills t0/t1 of pending GPU events */

/* ---- forwards, one registration function per family file ---------------------------------- */
void ct_cu_register_elementwise(void);
void ct_cu_register_convert(void);
void ct_cu_register_reduce(void);
void ct_cu_register_matmul(void);
void ct_cu_register_ladder(void); /* the rungs of ladder.cu: implementations of the matmul row */
void ct_cu_register_nn(void);
void ct_cu_register_index(void);
void ct_cu_register_conv(void);
void ct_cu_register_random(void);
void ct_cu_register_attention(void); /* attention.cu: attention_flash and its backward */
void ct_cu_register_paged(void);     /* paged.cu: paged_attention */
void ct_cu_register_quant(void);     /* quant.cu: qmatmul */
int ct_cu_blas_shutdown(void);

/* dst[...] = src broadcast to dst's shape and converted to dst's dtype (both on dst's device,
   any strides). convert.cu. */
int ct_cu_copy_into(ct_tensor *dst, const ct_tensor *src);
/* The data of t laid out contiguously on its device: t's own (borrowed, *tmp NULL) or that of a
   contiguous copy left in *tmp (release it after use). NULL with the error set. convert.cu. */
const void *ct_cu_contiguous_data(ct_tensor *t, ct_tensor **tmp);
/* Index values (1-based, negative from the end, any integer dtype and layout) as 0-based int64
   positions in a new device buffer *pos (release with ct_cu_free), every value checked against
   size. On a value out of range returns 0 with *bad_at its row-major position and *bad_value the
   value (the caller words the error); *bad_at = -1 when all are in range. -1 on a CUDA error.
   Waits for the check (one 8-byte read), so errors are reported by the op that made them. */
int ct_cu_index_positions(const ct_tensor *idx, int64_t size, int64_t **pos, int64_t *bad_at, int64_t *bad_value);

/* Device of an op's output, for the forwards. */
static inline int ct_cu_index(const ct_tensor *t) { return t->storage->device.index; }

/* ---- strided iteration, passed to kernels by value ----------------------------------------- */
#define CT_CU_MAX_OPS 4
typedef struct {
  int ndim;                                  /* after dropping size-1 dims and coalescing */
  int nops;
  int64_t n;                                 /* elements */
  int64_t shape[CT_MAX_DIMS];
  int64_t stride[CT_CU_MAX_OPS][CT_MAX_DIMS]; /* element strides per operand; operand 0 = out */
} ct_cu_iter;

/* out and in[0..nin-1] broadcast to out's shape, size-1 dims dropped, contiguous runs merged. */
void ct_cu_iter_build(ct_cu_iter *it, const ct_tensor *out, ct_tensor *const *in, int nin);
/* The same over explicit shapes/strides (operand 0's shape is the iteration shape). */
void ct_cu_iter_build_raw(ct_cu_iter *it, const int64_t *shape, int ndim, int nops,
                          int64_t strides[][CT_MAX_DIMS]);

#ifdef __cplusplus
}
#endif
#endif
