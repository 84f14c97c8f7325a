/* sgemm_raw.c: raw cblas_sgemm 1024^3 in C, the ceiling for chalk's matmul (same timing rule). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  enum { N = 1024, REPS = 7, INNER = 3 };
  float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N), *c = malloc(sizeof(float) * N * N);
  if (!a || !b || !c) return 1;
  srand(0);
  for (int i = 0; i < N * N; i++) a[i] = rand() / (float)RAND_MAX - 0.5f, b[i] = rand() / (float)RAND_MAX - 0.5f;
  for (int w = 0; w < 2; w++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1, a, N, b, N, 0, c, N);
  double s[REPS];
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    for (int i = 0; i < INNER; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1, a, N, b, N, 0, c, N);
    s[r] = (now() - t0) / INNER;
  }
  qsort(s, REPS, sizeof *s, cmp);
  printf("RESULT matmul1024 %.9f\n", s[REPS / 2]);
  free(a), free(b), free(c);
  return 0;
}
