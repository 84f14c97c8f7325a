/* matmul_ladder.c: the CPU counterpart of the GPU matmul ladder (kernels/ladder.h) for the GPU
 * lesson's CPU part: the same reuse argument, with caches in place of shared memory.
 *   "naive"      i-j-k: C[i][j] = sum_k A[i][k] B[k][j]; the inner loop walks down a column of B,
 *                one cache line per element (the analog of uncoalesced loads)
 *   "reordered"  i-k-j: the inner loop runs along rows of B and C, every cache line fully used
 *                (the analog of coalescing)
 *   "tiled"      i-k-j over 64x64 tiles, so the tiles of A, B and C stay in the cache while they
 *                are reused 64 times (the analog of shared-memory tiling)
 *   "openblas"   OpenBLAS sgemm: packed panels, register blocking, vector FMAs (the analog of cuBLAS)
 * Inputs are 2-D f32 CPU tensors (copied to contiguous first when they are not); the result is a
 * new [M, N] f32 tensor, not recorded for autograd. With the event log on, each call appends an
 * op event "matmul[cpu_<impl>]" (2MNK flops, each operand read once and C written once).
 * Invariant: every implementation computes the same sums (only the order of additions differs). */
#include <cblas.h>
#include <string.h>

#include "obs/events.h"
#include "ops/optable.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* as the flash kernels: vectorised inner loops, as a compiler at -O3 makes them */
#endif

#define LADDER_TILE 64

static void mm_naive(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      float acc = 0;
      for (int64_t k = 0; k < K; k++) acc += A[i * K + k] * B[k * N + j];
      C[i * N + j] = acc;
    }
}

static void mm_reordered(const float *A, const float *B, float *restrict C, int64_t M, int64_t N, int64_t K) {
  memset(C, 0, sizeof(float) * (size_t)(M * N));
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++) {
      float a = A[i * K + k];
      const float *b = B + k * N;
      float *c = C + i * N;
      for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
    }
}

static void mm_tiled(const float *A, const float *B, float *restrict C, int64_t M, int64_t N, int64_t K) {
  const int64_t T = LADDER_TILE;
  memset(C, 0, sizeof(float) * (size_t)(M * N));
  for (int64_t i0 = 0; i0 < M; i0 += T)
    for (int64_t k0 = 0; k0 < K; k0 += T)
      for (int64_t j0 = 0; j0 < N; j0 += T) {
        int64_t i1 = i0 + T < M ? i0 + T : M, k1 = k0 + T < K ? k0 + T : K, j1 = j0 + T < N ? j0 + T : N;
        for (int64_t i = i0; i < i1; i++)
          for (int64_t k = k0; k < k1; k++) {
            float a = A[i * K + k];
            const float *b = B + k * N;
            float *c = C + i * N;
            for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];
          }
      }
}

ct_tensor *ct_cpu_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl) {
  static const char *const names[] = {"naive", "reordered", "tiled", "openblas"};
  static const char *const events[] = {"matmul[cpu_naive]", "matmul[cpu_reordered]", "matmul[cpu_tiled]",
                                       "matmul[cpu_openblas]"};
  if (!impl) impl = "openblas";
  int which = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(impl, names[i])) which = i;
  if (which < 0)
    return ct_errorf("cpu.matmul: unknown impl '%s' (naive, reordered, tiled, openblas)", impl), NULL;
  char d1[200], d2[200];
  if (!a || !b) return ct_errorf("cpu.matmul(impl=%s): missing operand", impl), NULL;
  if (a->ndim != 2 || b->ndim != 2 || a->dtype != CT_F32 || b->dtype != CT_F32 || a->storage->device.type != CT_CPU ||
      b->storage->device.type != CT_CPU || a->shape[1] != b->shape[0])
    return ct_errorf("cpu.matmul(impl=%s): expects [M,K] and [K,N] f32 tensors on the cpu, got %s and %s", impl,
                     ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2)),
           NULL;
  int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return ct_errorf("cpu.matmul: sizes above 2^31"), NULL;
  bool was = ct_set_grad_enabled(false);
  ct_tensor *ac = ct_contiguous(a), *bc = ac ? ct_contiguous(b) : NULL;
  int64_t shape[2] = {M, N};
  ct_tensor *c = bc ? ct_empty(shape, 2, CT_F32, ct_cpu()) : NULL;
  ct_set_grad_enabled(was);
  if (c && M && N) {
    const float *A = ct_data_ptr(ac), *B = ct_data_ptr(bc);
    float *C = ct_data_ptr(c);
    bool log = ct_events_on();
    double t0 = log ? ct_now_us() : 0;
    switch (which) {
    case 0: mm_naive(A, B, C, M, N, K); break;
    case 1: mm_reordered(A, B, C, M, N, K); break;
    case 2: mm_tiled(A, B, C, M, N, K); break;
    default:
      if (K == 0) memset(C, 0, sizeof(float) * (size_t)(M * N));
      else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)N, 0.0f, C, (int)N);
    }
    if (log) {
      ct_event e = {.kind = CT_EV_OP, .name = events[which], .t0 = t0, .t1 = ct_now_us(), .device = ct_cpu()};
      e.flops = 2.0 * (double)M * (double)N * (double)K;
      e.bytes = 4.0 * (double)(M * K + K * N + M * N);
      e.tensor_id = c->id;
      ct_event_push(&e);
    }
  }
  ct_release(ac), ct_release(bc);
  return c;
}
