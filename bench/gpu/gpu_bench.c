/* gpu_bench.c: GPU measurements for issue 5 and the GPU lesson: GFLOP/s of every matmul ladder
 * rung and of cuBLAS at 1024 and 4096 (f32 in, f32 out), and the effective bandwidth of large
 * elementwise ops against a device-to-device copy. Writes a markdown table to
 * <out>/gpu-<device>-<date>.md with the device, date and command, and prints it.
 * Method: inputs are fresh random values (never zeros); each measurement is warmed up, then timed
 * with CUDA events on the backend's stream over enough repetitions to last ~0.3 s; the median of
 * the per-call times is reported. Bytes count each operand read once and the result written once.
 *
 *   build/bench/gpu/gpu_bench [--out DIR] [--sizes 1024,4096] [--skip-naive-above N] [--tune]
 *   (--tune first times each warptile configuration of kernels/ladder.cu at 1024, 2048, 4096)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_internal.h"
#include "ladder.h"

typedef ct_tensor *(*bench_fn)(void *ctx);

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median seconds per call of fn (each call's result released). */
static double time_median(bench_fn fn, void *ctx, int min_reps, int max_reps, double budget_s) {
  cudaStream_t s = ct_cu_stream(0);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int w = 0; w < 2; w++) ct_release(fn(ctx)); /* warm-up: module load, handles, cache */
  cudaStreamSynchronize(s);
  double t[200];
  int reps = 0;
  double spent = 0;
  while (reps < max_reps && (reps < min_reps || spent < budget_s)) {
    cudaEventRecord(e0, s);
    ct_tensor *r = fn(ctx);
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    ct_release(r);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    t[reps++] = ms * 1e-3;
    spent += ms * 1e-3;
    if (!r) {
      fprintf(stderr, "gpu_bench: %s\n", ct_last_error());
      exit(1);
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  return t[reps / 2];
}

typedef struct {
  ct_tensor *a, *b;
  const char *impl;
} mm_ctx;
static ct_tensor *run_mm(void *p) {
  mm_ctx *c = p;
  return ct_cuda_matmul_impl(c->a, c->b, c->impl);
}

typedef struct {
  ct_tensor *x, *y;
  int which;
} ew_ctx;
static ct_tensor *run_ew(void *p) {
  ew_ctx *c = p;
  switch (c->which) {
  case 0: return ct_add(c->x, c->y);
  case 1: return ct_mul_scalar(c->x, 1.5);
  case 2: return ct_relu(c->x);
  default: return ct_clone(c->x);
  }
}
/* a raw device-to-device copy of x into y, for the ceiling */
static ct_tensor *run_d2d(void *p) {
  ew_ctx *c = p;
  size_t nb = (size_t)ct_numel(c->x) * 4;
  cudaMemcpyAsync(ct_data_ptr(c->y), ct_data_ptr(c->x), nb, cudaMemcpyDeviceToDevice, ct_cu_stream(0));
  return ct_retain(c->y);
}

static ct_tensor *random_gpu(int64_t r, int64_t c) {
  int64_t shape[2] = {r, c};
  ct_tensor *h = ct_rand(shape, 2, CT_F32, ct_cpu());
  ct_tensor *d = h ? ct_to_device(h, (ct_device){CT_CUDA, 0}) : NULL;
  ct_release(h);
  if (!d) {
    fprintf(stderr, "gpu_bench: %s\n", ct_last_error());
    exit(1);
  }
  return d;
}

int main(int argc, char **argv) {
  const char *out_dir = "bench/results";
  int sizes[4] = {1024, 4096}, nsizes = 2;
  long skip_naive = 1L << 40;
  int tune = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
      nsizes = 0;
      for (char *t = strtok(argv[++i], ","); t && nsizes < 4; t = strtok(NULL, ",")) sizes[nsizes++] = atoi(t);
    } else if (!strcmp(argv[i], "--skip-naive-above") && i + 1 < argc) skip_naive = atol(argv[++i]);
    else if (!strcmp(argv[i], "--tune")) tune = 1;
  }
  ct_init();
  if (!ct_cuda_available()) {
    printf("gpu_bench: SKIPPED: no CUDA GPU visible (%s)\n", ct_cuda_unavailable_reason());
    return 0;
  }
  char dev[256];
  ct_cuda_device_name(0, dev, sizeof dev);
  char date[32];
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
  ct_manual_seed((uint64_t)now);

  char table[16384];
  size_t k = 0;
  k += (size_t)snprintf(table + k, sizeof table - k,
                        "# GPU benchmark: %s, %s\n\nCommand: `build/bench/gpu/gpu_bench --out %s` (or `make "
                        "bench-gpu-kernels`), random f32 inputs, median of CUDA-event timings after warm-up.\n\n",
                        dev, date, out_dir);
  k += (size_t)snprintf(table + k, sizeof table - k, "## Matmul ladder, C = A B, f32 in and out (GFLOP/s)\n\n| impl |");
  for (int s = 0; s < nsizes; s++) k += (size_t)snprintf(table + k, sizeof table - k, " %d | %% of cuBLAS |", sizes[s]);
  k += (size_t)snprintf(table + k, sizeof table - k, "\n|---|");
  for (int s = 0; s < nsizes; s++) k += (size_t)snprintf(table + k, sizeof table - k, "---:|---:|");
  k += (size_t)snprintf(table + k, sizeof table - k, "\n");

  if (tune) { /* the warptile rung's configurations (kernels/ladder.cu WT_CFGS), forced one by one */
    const int tsz[3] = {1024, 2048, 4096};
    for (int s = 0; s < 3; s++) {
      mm_ctx c = {random_gpu(tsz[s], tsz[s]), random_gpu(tsz[s], tsz[s]), "warptile"};
      for (int cfg = -1; cfg < 5; cfg++) {
        char v[8];
        snprintf(v, sizeof v, "%d", cfg);
        setenv("CHALK_WARPTILE_CFG", v, 1);
        double t = time_median(run_mm, &c, 3, 30, 0.2);
        fprintf(stderr, "  tune warptile cfg %2d (%s) %5d: %9.1f GFLOP/s\n", cfg, cfg < 0 ? "auto" : "forced", tsz[s],
                2.0 * tsz[s] * (double)tsz[s] * tsz[s] / t * 1e-9);
      }
      c.impl = "cublas";
      double t = time_median(run_mm, &c, 3, 30, 0.2);
      fprintf(stderr, "  tune cublas                %5d: %9.1f GFLOP/s\n", tsz[s], 2.0 * tsz[s] * (double)tsz[s] * tsz[s] / t * 1e-9);
      ct_release(c.a), ct_release(c.b);
    }
    unsetenv("CHALK_WARPTILE_CFG");
  }

  int nimpl;
  const char *const *impls = ct_cuda_matmul_impls(&nimpl);
  double gflops[16][4] = {{0}};
  int cublas_i = 0;
  for (int i = 0; i < nimpl; i++)
    if (!strcmp(impls[i], "cublas")) cublas_i = i;
  for (int s = 0; s < nsizes; s++) {
    int64_t n = sizes[s];
    mm_ctx c = {random_gpu(n, n), random_gpu(n, n), NULL};
    for (int i = 0; i < nimpl; i++) {
      c.impl = impls[i];
      if (!strcmp(impls[i], "naive") && n * n * n > skip_naive) continue;
      double t = time_median(run_mm, &c, 3, 50, 0.3);
      gflops[i][s] = 2.0 * (double)n * (double)n * (double)n / t * 1e-9;
      fprintf(stderr, "  %-12s %5lld: %9.1f GFLOP/s (%.3f ms)\n", impls[i], (long long)n, gflops[i][s], t * 1e3);
    }
    ct_release(c.a), ct_release(c.b);
  }
  for (int i = 0; i < nimpl; i++) {
    k += (size_t)snprintf(table + k, sizeof table - k, "| %s |", impls[i]);
    for (int s = 0; s < nsizes; s++) {
      if (gflops[i][s] > 0)
        k += (size_t)snprintf(table + k, sizeof table - k, " %.0f | %.0f%% |", gflops[i][s],
                              100.0 * gflops[i][s] / gflops[cublas_i][s]);
      else k += (size_t)snprintf(table + k, sizeof table - k, " (skipped) | |");
    }
    k += (size_t)snprintf(table + k, sizeof table - k, "\n");
  }

  /* bandwidth: 2^28 floats (1 GiB) per operand, far beyond L2 */
  int64_t n = (int64_t)1 << 28;
  ew_ctx e = {random_gpu(1, n), random_gpu(1, n), 0};
  struct {
    const char *what;
    int which;
    double bytes_per_elem;
  } ews[] = {{"device-to-device copy (cudaMemcpyAsync)", -1, 8},
             {"clone (copy op, contiguous)", 3, 8},
             {"add (x + y)", 0, 12},
             {"mul_scalar (x * 1.5)", 1, 8},
             {"relu", 2, 8}};
  double copy_gbs = 0;
  k += (size_t)snprintf(table + k, sizeof table - k,
                        "\n## Elementwise bandwidth, 2^28 f32 elements (1 GiB per operand)\n\n| op | bytes moved | GB/s | "
                        "%% of copy |\n|---|---:|---:|---:|\n");
  for (size_t i = 0; i < sizeof ews / sizeof *ews; i++) {
    e.which = ews[i].which;
    double t = time_median(ews[i].which < 0 ? run_d2d : run_ew, &e, 5, 50, 0.3);
    double gbs = ews[i].bytes_per_elem * (double)n / t * 1e-9;
    if (i == 0) copy_gbs = gbs;
    fprintf(stderr, "  %-40s %8.1f GB/s (%.3f ms)\n", ews[i].what, gbs, t * 1e3);
    k += (size_t)snprintf(table + k, sizeof table - k, "| %s | %.2f GiB | %.0f | %.0f%% |\n", ews[i].what,
                          ews[i].bytes_per_elem * (double)n / (1 << 30), gbs, 100 * gbs / copy_gbs);
  }
  ct_release(e.x), ct_release(e.y);

  printf("%s", table);
  char path[600], safe[256];
  snprintf(safe, sizeof safe, "%s", dev);
  for (char *p = safe; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '-';
  snprintf(path, sizeof path, "%s/gpu-%s-%s.md", out_dir, safe, date);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "gpu_bench: cannot write %s\n", path);
    return 1;
  }
  fputs(table, f);
  fclose(f);
  fprintf(stderr, "gpu_bench: wrote %s\n", path);
  return 0;
}
