/* attn_bench.c: times chalk's attention on CUDA the way torch_sdpa.py times PyTorch's (for run.sh).
 *
 *   attn_bench OUT.json [N,N,...] [REPS]
 *
 * Shapes [B=2, H=8, N, d=64], causal, inputs from randn (never zeros). For each N: naive and flash in f32,
 * flash in bf16; forward alone (no grad) and forward + backward (ct_grad of the output for a random
 * upstream gradient). A time is the median over REPS runs (default 30, after 3 warm-ups) of CUDA events
 * recorded on chalk's stream immediately before and after the call, so it holds the host work of the
 * call (autograd bookkeeping, allocation) and the launch gaps as well as the kernels: the same clock
 * torch_sdpa.py puts around scaled_dot_product_attention. Writes one JSON record per measurement. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"
#include "cuda_internal.h"

enum { B = 2, H = 8, D = 64 };

typedef struct {
  ct_tensor *x[3], *g;
  bool flash, backward;
} job;

static int run_once(const job *j) {
  ct_attention_opts o = {.causal = true, .flash = j->flash};
  bool was = ct_set_grad_enabled(j->backward);
  ct_tensor *out = ct_attention(j->x[0], j->x[1], j->x[2], &o);
  int rc = out ? 0 : -1;
  if (out && j->backward) {
    ct_tensor *gr[3] = {0};
    rc = ct_grad(out, j->g, j->x, 3, gr, false, false);
    for (int i = 0; i < 3; i++) ct_release(gr[i]);
  }
  ct_release(out);
  ct_set_grad_enabled(was);
  return rc;
}

static int cmp_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static double median_ms(const job *j, int reps, cudaStream_t s) {
  float *t = calloc((size_t)reps, sizeof *t);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  double r = -1;
  for (int i = 0; i < 3; i++)
    if (run_once(j)) goto done;
  cudaStreamSynchronize(s);
  for (int i = 0; i < reps; i++) {
    cudaEventRecord(e0, s);
    if (run_once(j)) goto done;
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&t[i], e0, e1);
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_f);
  r = t[(reps - 1) / 2];
done:
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  free(t);
  return r;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: attn_bench OUT.json [N,N,...] [REPS]\n");
    return 2;
  }
  const char *sizes = argc > 2 ? argv[2] : "512,1024,2048,4096,8192";
  int reps = argc > 3 ? atoi(argv[3]) : 30;
  if (ct_init()) {
    fprintf(stderr, "attn_bench: %s\n", ct_last_error());
    return 1;
  }
  if (!ct_cuda_available()) {
    printf("attn_bench: SKIPPED: needs CUDA (%s)\n", ct_cuda_unavailable_reason());
    return 0;
  }
  cudaStream_t s = ct_cu_stream(0);
  FILE *f = fopen(argv[1], "w");
  if (!f) return perror(argv[1]), 1;
  fprintf(f, "[");
  const char *sep = "\n  ";
  ct_manual_seed(1);
  for (const char *p = sizes; *p;) {
    int n = atoi(p);
    const struct {
      ct_dtype dt;
      bool flash;
    } cfg[3] = {{CT_F32, false}, {CT_F32, true}, {CT_BF16, true}};
    for (int c = 0; c < 3; c++) {
      int64_t shape[4] = {B, H, n, D};
      job j = {.flash = cfg[c].flash};
      for (int i = 0; i < 4; i++) {
        ct_tensor *r = ct_randn(shape, 4, CT_F32, (ct_device){CT_CUDA, 0});
        ct_tensor *x = r && cfg[c].dt != CT_F32 ? ct_to_dtype(r, cfg[c].dt) : (ct_retain(r), r);
        ct_release(r);
        if (i < 3) ct_requires_grad_(x, true), j.x[i] = x;
        else j.g = x;
      }
      for (int pass = 0; pass < 2; pass++) {
        j.backward = pass == 1;
        double ms = median_ms(&j, reps, s);
        const char *impl = cfg[c].flash ? "flash" : "naive", *dt = cfg[c].dt == CT_F32 ? "f32" : "bf16";
        const char *pn = pass ? "fwd+bwd" : "fwd";
        if (ms < 0) fprintf(stderr, "attn_bench: chalk %s %s N=%d %s: %s\n", impl, dt, n, pn, ct_last_error());
        printf("chalk %-5s %-4s N=%5d %-7s %9.3f ms\n", impl, dt, n, pn, ms);
        fflush(stdout);
        if (ms < 0) fprintf(f, "%s{\"impl\": \"chalk %s\", \"dtype\": \"%s\", \"N\": %d, \"pass\": \"%s\", \"ms\": null}", sep,
                            impl, dt, n, pn);
        else fprintf(f, "%s{\"impl\": \"chalk %s\", \"dtype\": \"%s\", \"N\": %d, \"pass\": \"%s\", \"ms\": %.6f}", sep,
                     impl, dt, n, pn, ms);
        sep = ",\n  ";
      }
      for (int i = 0; i < 3; i++) ct_release(j.x[i]);
      ct_release(j.g);
      ct_cuda_empty_cache();
    }
    p = strchr(p, ',');
    if (!p) break;
    p++;
  }
  fprintf(f, "\n]\n");
  fclose(f);
  return 0;
}
