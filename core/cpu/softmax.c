/* softmax.c: the CPU loops of softmax and log_softmax (core/ops/ops_nn.c has their rows): the
 * input seen as [outer, D, inner], each of the outer*inner lines of length D shifted by its max
 * before exp, so no finite input overflows; f32 exp four lanes at a time on SSE2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/helpers.h"
#include "cpu/softmax.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

static int64_t prod(const int64_t *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s[d];
  return p;
}

/* Row helpers: the max of a row, and y = exp(x - m) returning sum(y) in double. The f32 exp runs
 * four lanes at a time on SSE2 (every x86-64 CPU): exp(r) = 2^n * p(f) with n = round(r / ln 2),
 * f = r - n ln 2 and Cephes' degree-6 polynomial p, relative error below 1e-7 (one f32 ulp);
 * r below -87.3 (exp under f32's smallest normal) gives exactly 0, NaN stays NaN. */
static float row_max_f32(const float *x, int64_t n) {
  float m = x[0];
  int64_t i = 1;
#ifdef __SSE2__
  if (n >= 8) {
    __m128 a = _mm_loadu_ps(x), b = _mm_loadu_ps(x + 4);
    for (i = 8; i + 8 <= n; i += 8) a = _mm_max_ps(a, _mm_loadu_ps(x + i)), b = _mm_max_ps(b, _mm_loadu_ps(x + i + 4));
    float l[4];
    _mm_storeu_ps(l, _mm_max_ps(a, b));
    m = l[0];
    for (int k = 1; k < 4; k++)
      if (l[k] > m) m = l[k];
  }
#endif
  for (; i < n; i++)
    if (x[i] > m) m = x[i];
  return m;
}
static double row_max_f64(const double *x, int64_t n) {
  double m = x[0];
  for (int64_t i = 1; i < n; i++)
    if (x[i] > m) m = x[i];
  return m;
}

#ifdef __SSE2__
static inline __m128 exp4_f32(__m128 r) {
  const __m128 lo = _mm_set1_ps(-87.33654f);
  __m128 keep = _mm_cmpnlt_ps(r, lo); /* false only below the cutoff: NaN is kept */
  r = _mm_max_ps(lo, r);              /* returns r when r is NaN */
  __m128i ni = _mm_cvtps_epi32(_mm_mul_ps(r, _mm_set1_ps(1.44269504088896341f)));
  __m128 n = _mm_cvtepi32_ps(ni);
  __m128 f = _mm_sub_ps(_mm_sub_ps(r, _mm_mul_ps(n, _mm_set1_ps(0.693359375f))),
                        _mm_mul_ps(n, _mm_set1_ps(-2.12194440e-4f)));
  __m128 p = _mm_set1_ps(1.9875691500e-4f);
  p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(1.3981999507e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(8.3334519073e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(4.1665795894e-2f));
  p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(1.6666665459e-1f));
  p = _mm_add_ps(_mm_mul_ps(p, f), _mm_set1_ps(5.0000001201e-1f));
  p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, f), f), f), _mm_set1_ps(1.0f));
  __m128 scale = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(ni, _mm_set1_epi32(127)), 23));
  return _mm_and_ps(keep, _mm_mul_ps(p, scale));
}
#endif
static double row_exp_f32(float *y, const float *x, int64_t n, float m) {
  double s = 0;
  int64_t i = 0;
#ifdef __SSE2__
  __m128 mm = _mm_set1_ps(m);
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (; i + 4 <= n; i += 4) {
    __m128 e = exp4_f32(_mm_sub_ps(_mm_loadu_ps(x + i), mm));
    _mm_storeu_ps(y + i, e);
    acc0 = _mm_add_pd(acc0, _mm_cvtps_pd(e));
    acc1 = _mm_add_pd(acc1, _mm_cvtps_pd(_mm_movehl_ps(e, e)));
  }
  double l[2];
  _mm_storeu_pd(l, _mm_add_pd(acc0, acc1));
  s = l[0] + l[1];
#endif
  for (; i < n; i++) s += (y[i] = expf(x[i] - m));
  return s;
}
static double row_exp_f64(double *y, const double *x, int64_t n, double m) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (y[i] = exp(x[i] - m));
  return s;
}

#define SOFTMAX_KERNEL(SUF, T)                                                                                \
  static void softmax_##SUF(T *y, const T *x, int64_t outer, int64_t D, int64_t inner, bool lg, T *mx,       \
                            double *sm) {                                                                     \
    if (D == 0) return;                                                                                       \
    for (int64_t o = 0; o < outer; o++) {                                                                     \
      const T *xo = x + o * D * inner;                                                                        \
      T *yo = y + o * D * inner;                                                                              \
      if (inner == 1) {                                                                                       \
        T m = row_max_##SUF(xo, D);                                                                           \
        double s = row_exp_##SUF(yo, xo, D, m);                                                               \
        if (lg) {                                                                                             \
          T ls = (T)log(s); /* (x - m) - log(s): exact shift first, so large inputs keep their digits */      \
          for (int64_t j = 0; j < D; j++) yo[j] = (xo[j] - m) - ls;                                           \
        } else {                                                                                              \
          T inv = (T)(1.0 / s);                                                                               \
          for (int64_t j = 0; j < D; j++) yo[j] *= inv;                                                       \
        }                                                                                                     \
        continue;                                                                                             \
      }                                                                                                       \
      /* strided lines: work on whole rows of length inner so the inner loops stay contiguous */            \
      for (int64_t k = 0; k < inner; k++) mx[k] = xo[k], sm[k] = 0;                                           \
      for (int64_t j = 1; j < D; j++)                                                                         \
        for (int64_t k = 0; k < inner; k++)                                                                   \
          if (xo[j * inner + k] > mx[k]) mx[k] = xo[j * inner + k];                                           \
      for (int64_t j = 0; j < D; j++) {                                                                       \
        T *yr = yo + j * inner;                                                                               \
        for (int64_t k = 0; k < inner; k++) yr[k] = xo[j * inner + k] - mx[k];                                \
        row_exp_##SUF(yr, yr, inner, 0);                                                                      \
        for (int64_t k = 0; k < inner; k++) sm[k] += yr[k];                                                   \
      }                                                                                                       \
      if (lg) {                                                                                               \
        for (int64_t k = 0; k < inner; k++) sm[k] = log(sm[k]);                                               \
        for (int64_t j = 0; j < D; j++)                                                                       \
          for (int64_t k = 0; k < inner; k++) yo[j * inner + k] = (xo[j * inner + k] - mx[k]) - (T)sm[k];     \
      } else {                                                                                                \
        for (int64_t k = 0; k < inner; k++) sm[k] = 1.0 / sm[k];                                              \
        for (int64_t j = 0; j < D; j++)                                                                       \
          for (int64_t k = 0; k < inner; k++) yo[j * inner + k] *= (T)sm[k];                                  \
      }                                                                                                       \
    }                                                                                                         \
  }
SOFTMAX_KERNEL(f32, float)
SOFTMAX_KERNEL(f64, double)

int ct_cpu_softmax(ct_tensor *out, ct_tensor *x, int dim, bool lg) {
  int64_t outer = 1, D = 1, inner = 1;
  if (x->ndim > 0) {
    outer = prod(x->shape, 0, dim);
    D = x->shape[dim];
    inner = prod(x->shape, dim + 1, x->ndim);
  }
  ct_tensor *tmp;
  const void *xp = ct_cpu_contig_data(x, &tmp);
  if (!xp) return -1;
  size_t isz = ct_dtype_size(x->dtype);
  char *scratch = inner > 1 ? malloc((size_t)inner * (isz + sizeof(double))) : NULL;
  if (inner > 1 && !scratch) {
    ct_release(tmp);
    return ct_errorf("out of memory");
  }
  double *sm = (double *)scratch;
  void *mx = scratch ? scratch + (size_t)inner * sizeof(double) : NULL;
  if (x->dtype == CT_F32) softmax_f32(ct_data_ptr(out), xp, outer, D, inner, lg, mx, sm);
  else softmax_f64(ct_data_ptr(out), xp, outer, D, inner, lg, mx, sm);
  free(scratch);
  ct_release(tmp);
  return 0;
}

