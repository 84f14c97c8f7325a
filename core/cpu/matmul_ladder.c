/* matmul_ladder.c: the CPU rungs of matmul, the counterpart of the GPU ladder (kernels/ladder.cu)
 * for the GPU lesson's CPU part: the same reuse argument, with caches in place of shared memory.
 * They are implementations of the matmul row (core/ops/impls.c), chosen with
 * x:matmul(y, {impl = "tiled"}) and run through ct_op_run (events with cost, autograd, capture):
 *   "naive"      i-j-k: C[i][j] = sum_k A[i][k] B[k][j]; the inner loop walks down a column of B,
 *                one cache line per element (the analog of uncoalesced loads)
 *   "reordered"  i-k-j: the inner loop runs along rows of B and C, every cache line fully used
 *                (the analog of coalescing)
 *   "tiled"      i-k-j over bm x bn x bk tiles (64 each unless given; chalk.autotune.matmul picks
 *                them), so the tiles of A, B and C stay in the cache while they are reused
 *                (the analog of shared-memory tiling)
 * and the row's own forward, "blas" (OpenBLAS: packed panels, register blocking, vector FMAs, the
 * analog of cuBLAS). Operands: 2-D, contiguous, f32 or f64.
 * Invariant: every rung computes the same sums (only the order of additions differs). */
#include <string.h>

#include "cpu/matmul_ladder.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* as the flash kernels: vectorised inner loops, as a compiler at -O3 makes them */
#endif

#define LADDER(T)                                                                                  \
  static void naive_##T(const T *A, const T *B, T *C, int64_t M, int64_t N, int64_t K) {           \
    for (int64_t i = 0; i < M; i++)                                                                \
      for (int64_t j = 0; j < N; j++) {                                                            \
        T acc = 0;                                                                                 \
        for (int64_t k = 0; k < K; k++) acc += A[i * K + k] * B[k * N + j];                        \
        C[i * N + j] = acc;                                                                        \
      }                                                                                            \
  }                                                                                                \
  static void reordered_##T(const T *A, const T *B, T *restrict C, int64_t M, int64_t N, int64_t K) { \
    memset(C, 0, sizeof(T) * (size_t)(M * N));                                                     \
    for (int64_t i = 0; i < M; i++)                                                                \
      for (int64_t k = 0; k < K; k++) {                                                            \
        T a = A[i * K + k];                                                                        \
        const T *b = B + k * N;                                                                    \
        T *c = C + i * N;                                                                          \
        for (int64_t j = 0; j < N; j++) c[j] += a * b[j];                                          \
      }                                                                                            \
  }                                                                                                \
  static void tiled_##T(const T *A, const T *B, T *restrict C, int64_t M, int64_t N, int64_t K, int64_t bm, \
                        int64_t bn, int64_t bk) {                                                  \
    memset(C, 0, sizeof(T) * (size_t)(M * N));                                                     \
    for (int64_t i0 = 0; i0 < M; i0 += bm)                                                         \
      for (int64_t k0 = 0; k0 < K; k0 += bk)                                                       \
        for (int64_t j0 = 0; j0 < N; j0 += bn) {                                                   \
          int64_t i1 = i0 + bm < M ? i0 + bm : M, k1 = k0 + bk < K ? k0 + bk : K;                  \
          int64_t j1 = j0 + bn < N ? j0 + bn : N;                                                  \
          for (int64_t i = i0; i < i1; i++)                                                        \
            for (int64_t k = k0; k < k1; k++) {                                                    \
              const T a = A[i * K + k];                                                            \
              const T *b = B + k * N;                                                              \
              T *c = C + i * N;                                                                    \
              for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];                                  \
            }                                                                                      \
        }                                                                                          \
  }
LADDER(float)
LADDER(double)

enum { NAIVE, REORDERED, TILED };
static const char *const rung_names[] = {"naive", "reordered", "tiled"};

static int rung(int which, ct_tensor *out, ct_tensor *const *in, const ct_attrs *at) {
  const ct_tensor *a = in[0], *b = in[1];
  if (a->ndim != 2 || b->ndim != 2 || (a->dtype != CT_F32 && a->dtype != CT_F64) || !ct_is_contiguous(a) ||
      !ct_is_contiguous(b))
    return ct_errorf("impl '%s' expects [M,K] and [K,N] contiguous f32 or f64 tensors (use :contiguous(), or "
                     "impl 'blas' for batches and views)", rung_names[which]);
  int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
  int64_t bm = at->i[0] > 0 ? at->i[0] : 64, bn = at->i[1] > 0 ? at->i[1] : 64, bk = at->i[2] > 0 ? at->i[2] : 64;
  if (a->dtype == CT_F32) {
    const float *A = ct_data_ptr(a), *B = ct_data_ptr(b);
    float *C = ct_data_ptr(out);
    if (which == NAIVE) naive_float(A, B, C, M, N, K);
    else if (which == REORDERED) reordered_float(A, B, C, M, N, K);
    else tiled_float(A, B, C, M, N, K, bm, bn, bk);
  } else {
    const double *A = ct_data_ptr(a), *B = ct_data_ptr(b);
    double *C = ct_data_ptr(out);
    if (which == NAIVE) naive_double(A, B, C, M, N, K);
    else if (which == REORDERED) reordered_double(A, B, C, M, N, K);
    else tiled_double(A, B, C, M, N, K, bm, bn, bk);
  }
  return 0;
}

int ct_cpu_matmul_naive(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return rung(NAIVE, out, in, a);
}
int ct_cpu_matmul_reordered(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return rung(REORDERED, out, in, a);
}
int ct_cpu_matmul_tiled(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  return rung(TILED, out, in, a);
}
