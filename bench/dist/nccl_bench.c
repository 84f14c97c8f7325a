/* nccl_bench.c: an nccl-tests-style all_reduce table on every GPU of this machine, in one process
 * (ncclCommInitAll): for sizes 8 B to 1 GiB (f32, doubling), the time, algbw = S/t and busbw =
 * algbw * 2(N-1)/N of NCCL's own all_reduce (algo "native") and of chalk's ring schedule over
 * ncclSend/ncclRecv with its GPU reductions, both through the same executor (core/dist), after
 * checking each once against the plain sum N(N+1)/2.
 *
 *   nccl_bench [--gpus N] [--max BYTES] [--iters K] [--out FILE.csv]
 *
 * The table goes to stdout; --out also writes it as CSV (bench/results/). With one GPU the ring has
 * no steps and busbw is 0 by definition: the table then shows NCCL's single-rank copy cost only. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "dist/nccl_api.h"

#define MAXG 16

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One all_reduce on every rank, the ranks' executors stepped in turn (one thread drives them all). */
static int all_reduce(ct_dist_transport *tr, int n, void **bufs, int64_t count, ct_dist_algo algo, uint32_t seq) {
  static int members[MAXG];
  ct_dist_exec x[MAXG];
  bool done[MAXG] = {0};
  int left = n, rc = 0;
  for (int r = 0; r < n; r++) members[r] = r;
  for (int r = 0; r < n; r++)
    if (ct_dist_exec_begin(&x[r], tr, members, n, r, 0, seq, CT_COLL_ALL_REDUCE, algo, CT_DIST_SUM, bufs[r], count,
                           CT_F32, 0, NULL))
      return -1;
  double since = wall();
  while (left && !rc) {
    for (int r = 0; r < n && !rc; r++) {
      if (done[r]) continue;
      ct_exec_status st = ct_dist_exec_step(&x[r]);
      if (st == CT_EXEC_ERROR)
        rc = -1;
      else if (st == CT_EXEC_DONE)
        done[r] = true, left--, since = wall();
    }
    if (!rc && left && wall() - since > 120) rc = ct_errorf("nccl_bench: no rank finished for 120 s");
  }
  for (int r = 0; r < n; r++) ct_dist_exec_end(&x[r]);
  return rc;
}

/* Every rank's buffer holds r + 1; after one all_reduce, sampled elements must be N(N+1)/2.
   The current device is restored after: chalk keeps its own idea of it (kernels/register.c). */
static int check(ct_dist_transport *tr, int n, void **bufs, int64_t count, ct_dist_algo algo, float *host,
                 int64_t hostn) {
  int cur = 0;
  cudaGetDevice(&cur);
  for (int r = 0; r < n; r++) {
    for (int64_t i = 0; i < hostn; i++) host[i] = (float)(r + 1);
    cudaSetDevice(r);
    for (int64_t off = 0; off < count; off += hostn) {
      int64_t len = count - off < hostn ? count - off : hostn;
      cudaMemcpy((float *)bufs[r] + off, host, (size_t)len * 4, cudaMemcpyHostToDevice);
    }
  }
  cudaSetDevice(cur);
  if (all_reduce(tr, n, bufs, count, algo, 1)) return -1;
  float want = (float)n * (n + 1) / 2;
  for (int r = 0; r < n; r++) {
    cudaSetDevice(r);
    for (int64_t k = 0; k < 64; k++) {
      int64_t i = k == 63 ? count - 1 : k * (count / 63);
      float got = 0;
      cudaMemcpy(&got, (float *)bufs[r] + i, 4, cudaMemcpyDeviceToHost);
      if (got != want)
        return cudaSetDevice(cur), ct_errorf("%s all_reduce of %lld f32: rank %d element %lld is %g, expected %g",
                                             ct_dist_algo_name(algo), (long long)count, r + 1, (long long)i, got, want);
    }
  }
  cudaSetDevice(cur);
  return 0;
}

int main(int argc, char **argv) {
  int gpus = -1, iters = 20;
  double maxb = 1 << 30;
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--gpus") && i + 1 < argc)
      gpus = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--max") && i + 1 < argc)
      maxb = atof(argv[++i]);
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
      iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else
      return fprintf(stderr, "usage: nccl_bench [--gpus N] [--max BYTES] [--iters K] [--out FILE.csv]\n"), 2;
  }
  ct_init();
  if (ct_dist_nccl_check()) return printf("nccl_bench: SKIPPED: %s\n", ct_last_error()), 0;
  int n = gpus > 0 ? gpus : ct_cuda_device_count();
  if (n > MAXG) n = MAXG;
  ct_dist_transport *tr = ct_dist_nccl_new_all(n);
  if (!tr) return printf("nccl_bench: %s\n", ct_last_error()), 1;
  char name[128] = "?";
  ct_cuda_device_name(0, name, sizeof name);
  int v = ct_nccl_version();
  printf("# nccl_bench: all_reduce sum f32 in place, %d x %s, NCCL %d.%d.%d (%s), NCCL_NVLS_ENABLE=%s\n", n, name,
         v / 10000, v / 100 % 100, v % 100, ct_nccl_where(), getenv("NCCL_NVLS_ENABLE"));
  printf("# time: mean of %d calls after 2 warm-up calls (wall clock until every rank's stream is done);"
         " busbw = algbw * 2(N-1)/N = algbw * %.3f\n",
         iters, 2.0 * (n - 1) / n);
  printf("%12s %12s | %10s %9s %9s | %10s %9s %9s\n", "size(B)", "count", "nccl(us)", "algbw", "busbw", "ring(us)",
         "algbw", "busbw");
  FILE *csv = out ? fopen(out, "w") : NULL;
  if (csv) fprintf(csv, "gpus,gpu,bytes,count,algo,time_us,algbw_GBps,busbw_GBps\n");
  void *bufs[MAXG];
  size_t maxbytes = (size_t)maxb;
  int cur = 0;
  cudaGetDevice(&cur);
  for (int r = 0; r < n; r++)
    if (cudaSetDevice(r) || cudaMalloc(&bufs[r], maxbytes))
      return printf("nccl_bench: cudaMalloc(%zu) failed\n", maxbytes), 1;
  cudaSetDevice(cur);
  int64_t hostn = 1 << 20;
  float *host = malloc((size_t)hostn * 4);
  int rc = 0;
  uint32_t seq = 2;
  for (size_t bytes = 8; bytes <= maxbytes && !rc; bytes *= 2) {
    int64_t count = (int64_t)(bytes / 4);
    double us[2];
    for (int a = 0; a < 2 && !rc; a++) {
      ct_dist_algo algo = a ? CT_ALGO_RING : CT_ALGO_NATIVE;
      if (check(tr, n, bufs, count, algo, host, hostn)) {
        rc = -1;
        break;
      }
      for (int k = 0; k < 2 && !rc; k++) rc = all_reduce(tr, n, bufs, count, algo, seq++);
      double t0 = wall();
      for (int k = 0; k < iters && !rc; k++) rc = all_reduce(tr, n, bufs, count, algo, seq++);
      us[a] = (wall() - t0) / iters * 1e6;
    }
    if (rc) break;
    double f = 2.0 * (n - 1) / n;
    printf("%12zu %12lld | %10.1f %9.2f %9.2f | %10.1f %9.2f %9.2f\n", bytes, (long long)count, us[0],
           bytes / us[0] / 1e3, bytes / us[0] / 1e3 * f, us[1], bytes / us[1] / 1e3, bytes / us[1] / 1e3 * f);
    for (int a = 0; csv && a < 2; a++)
      fprintf(csv, "%d,%s,%zu,%lld,%s,%.2f,%.4f,%.4f\n", n, name, bytes, (long long)count, a ? "ring" : "native", us[a],
              bytes / us[a] / 1e3, bytes / us[a] / 1e3 * f);
    fflush(stdout);
  }
  if (rc) printf("nccl_bench: FAILED: %s\n", ct_last_error());
  if (csv) fclose(csv);
  for (int r = 0; r < n; r++) cudaSetDevice(r), cudaFree(bufs[r]);
  free(host);
  ct_dist_nccl_free(tr);
  return rc ? 1 : 0;
}
