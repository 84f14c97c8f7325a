/* warpspec.h: lesson 19's kernels: a warp-specialized GEMM (kernels/warpspec.cu) and a persistent
 * kernel running an MLP's forward op list from a device-side task queue (kernels/persistent.cu),
 * with the launch-overhead measurement that motivates it. Entry points return NULL / -1 with the
 * error set (ct_last_error) naming the call, shapes and devices; they are defined only in builds
 * with CUDA (lua/lchalk_warpspec.c references them weakly otherwise).
 *
 * ct_ws_gemm: C = A B for 2-D f32 tensors on one CUDA device (any M, N, K; strided ones are copied).
 *   A block of 1 producer warp + 8 consumer warps computes a 128 x 128 tile of C. The producer
 *   fills a ring of `stages` (1..8) shared-memory slots of 16-deep K slices with cp.async, each
 *   slot's "full" mbarrier completing when its copies land; consumers wait on "full", compute,
 *   and arrive on the slot's "empty" mbarrier, which the producer waits on before refilling.
 *   stamps non-NULL: *stamps receives a new i64 CUDA tensor [9, nk, 3] of clock64() values from
 *   block (0, 0): row 0 the producer (wait-for-empty start, issue start, issue end per K slice),
 *   rows 1..8 the consumer warps (wait-for-full start, compute start, compute end).
 *
 * ct_pk_mlp: the forward of an MLP y = L_n(relu(... relu(L_1(x)))), L_i(h) = h W_i + b_i, with
 *   x [B, K_1], W_i [K_i, N_i], b_i [N_i], all f32 contiguous on one CUDA device, run `reps`
 *   times (after one untimed warm-up) in one of three modes:
 *     CT_PK_PER_OP      one kernel launch per op (linear, relu, linear, ...)
 *     CT_PK_GRAPH       the same launches captured once in a CUDA Graph, the graph replayed
 *     CT_PK_PERSISTENT  one launch of a persistent kernel: blocks take (op, tile) tasks from a
 *                       device-side queue (an atomic counter); before a task a block waits on
 *                       the flag (a counter in device memory) of the 32 rows of the previous op
 *                       it reads, so consecutive ops overlap on different row blocks
 *   Every mode computes each tile with the same device function, so outputs agree bit for bit.
 *   *out receives y; *ms the time per forward (CUDA events around the reps, on a private stream).
 *
 * ct_pk_launch_overhead: n empty-kernel launches back to back: *us_stream device time per launch
 *   (events around the n launches), *us_host the host's enqueue time per launch, *us_graph per
 *   node when the same n launches replay as one CUDA Graph. */
#ifndef CHALK_KERNELS_WARPSPEC_H
#define CHALK_KERNELS_WARPSPEC_H

#include "chalk.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CT_WS_MAX_STAGES = 8, CT_WS_CONSUMERS = 8, CT_PK_MAX_LAYERS = 8 };
enum { CT_PK_PER_OP = 0, CT_PK_GRAPH = 1, CT_PK_PERSISTENT = 2 };

ct_tensor *ct_ws_gemm(ct_tensor *a, ct_tensor *b, int stages, ct_tensor **stamps);
int ct_pk_mlp(int mode, ct_tensor *x, ct_tensor *const *w, ct_tensor *const *bias, int nlayers, int reps,
              ct_tensor **out, double *ms);
int ct_pk_launch_overhead(int n, double *us_stream, double *us_host, double *us_graph);

#ifdef __cplusplus
}
#endif

#endif
