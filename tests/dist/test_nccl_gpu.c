/* test_nccl_gpu.c: the nccl transport on one GPU: a one-rank communicator (ncclCommInitAll) runs
 * all_reduce (sum, mean, max), reduce_scatter, all_gather and broadcast, native and ring, in f32
 * and bf16, on uneven sizes, through the executor; then a send to itself and a receive from
 * itself (the pair a ring step posts) with the GPU reduction and mean's scaling that follow it,
 * checked against the host. Prints "SKIPPED: why" and exits 0 without a GPU or NCCL; exits 1 on
 * any wrong element. A multi-GPU run belongs to bench/dist/nccl_bench.c and tests/dist/nccl.sh. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "dist/nccl_api.h"

static int failures;

static uint16_t f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float bf2f(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static float val(int64_t i) { return (float)((i * 7) % 17) - 8.0f; }

/* host values -> a fresh device buffer of dt (f32 or bf16) */
static void *upload(const float *h, int64_t n, ct_dtype dt) {
  size_t es = ct_dtype_size(dt);
  void *host = malloc((size_t)n * es), *dev = NULL;
  for (int64_t i = 0; i < n; i++) {
    if (dt == CT_F32)
      ((float *)host)[i] = h[i];
    else
      ((uint16_t *)host)[i] = f2bf(h[i]);
  }
  if (cudaMalloc(&dev, (size_t)n * es) || cudaMemcpy(dev, host, (size_t)n * es, cudaMemcpyHostToDevice)) {
    fprintf(stderr, "cudaMalloc/cudaMemcpy failed\n");
    exit(1);
  }
  free(host);
  return dev;
}

/* device buffer == want (times f) element by element; names the case on the first difference */
static void expect(const char *what, const void *dev, int64_t n, ct_dtype dt, const float *want, float f) {
  size_t es = ct_dtype_size(dt);
  void *host = malloc((size_t)n * es);
  cudaMemcpy(host, dev, (size_t)n * es, cudaMemcpyDeviceToHost);
  for (int64_t i = 0; i < n; i++) {
    float got = dt == CT_F32 ? ((float *)host)[i] : bf2f(((uint16_t *)host)[i]);
    if (fabsf(got - want[i] * f) > 0) {
      printf("FAIL %s (%s, %lld elements): element %lld is %g, expected %g\n", what, ct_dtype_name(dt), (long long)n,
             (long long)i, got, want[i] * f);
      failures++;
      break;
    }
  }
  free(host);
}

static void collective(ct_dist_transport *tr, ct_dist_coll coll, ct_dist_algo algo, ct_dist_op op, ct_dtype dt,
                       int64_t n, const float *h) {
  static const int members[1] = {0};
  static uint32_t seq;
  void *d = upload(h, n, dt);
  ct_dist_exec x;
  char what[96];
  snprintf(what, sizeof what, "%s %s %s", ct_dist_coll_name(coll), ct_dist_algo_name(algo), ct_dist_op_name(op));
  if (ct_dist_exec_begin(&x, tr, members, 1, 0, 0, ++seq, coll, algo, op, d, n, dt, 0, NULL) || ct_dist_exec_run(&x)) {
    printf("FAIL %s (%s, %lld elements): %s\n", what, ct_dtype_name(dt), (long long)n, ct_last_error());
    failures++;
  } else {
    expect(what, d, n, dt, h, 1.0f); /* one rank: every collective leaves its input */
  }
  ct_dist_exec_end(&x);
  cudaFree(d);
}

/* What one ring step does: send to the peer, receive its chunk into scratch, reduce; here the peer
   is the rank itself. Then mean's scaling, and max. */
static void self_step(ct_dist_transport *tr, ct_dtype dt, int64_t n, const float *h) {
  ct_dist_hdr hdr = {0, 1, CT_COLL_SEND, CT_ALGO_RING, CT_DIST_SUM, dt, n, 0};
  size_t bytes = (size_t)n * ct_dtype_size(dt);
  void *d = upload(h, n, dt), *scratch = tr->mem->alloc(tr, 0, bytes);
  float *neg = malloc((size_t)n * sizeof *neg), *big = malloc((size_t)n * sizeof *big);
  for (int64_t i = 0; i < n; i++) neg[i] = -h[i], big[i] = fabsf(h[i]);
  int rc = !scratch || tr->mem->begin(tr, 0) || tr->post_send(tr, 0, 0, &hdr, d, bytes) ||
           tr->post_recv(tr, 0, 0, &hdr, scratch, bytes) || tr->test(tr, 0) != 1 ||
           tr->mem->reduce(tr, 0, d, scratch, n, dt, CT_DIST_SUM) || tr->mem->end(tr, 0);
  if (rc)
    printf("FAIL self send/recv (%s): %s\n", ct_dtype_name(dt), ct_last_error()), failures++;
  else
    expect("self send/recv + reduce", d, n, dt, h, 2.0f);
  if (!rc && (tr->mem->scale(tr, 0, d, n, dt, 0.5) || tr->mem->end(tr, 0)))
    printf("FAIL scale (%s): %s\n", ct_dtype_name(dt), ct_last_error()), failures++;
  else if (!rc)
    expect("mean scaling", d, n, dt, h, 1.0f);
  void *m = upload(neg, n, dt);
  if (!rc && (tr->mem->reduce(tr, 0, m, d, n, dt, CT_DIST_MAX) || tr->mem->end(tr, 0)))
    printf("FAIL max (%s): %s\n", ct_dtype_name(dt), ct_last_error()), failures++;
  else if (!rc)
    expect("max reduction", m, n, dt, big, 1.0f);
  if (scratch) tr->mem->release(tr, 0, scratch, bytes);
  cudaFree(d);
  cudaFree(m);
  free(neg);
  free(big);
}

int main(void) {
  ct_init();
  if (ct_dist_nccl_check()) {
    printf("test_nccl_gpu: SKIPPED: %s\n", ct_last_error());
    return 0;
  }
  ct_dist_transport *tr = ct_dist_nccl_new_all(1);
  if (!tr) {
    printf("test_nccl_gpu: FAIL: %s\n", ct_last_error());
    return 1;
  }
  char name[128] = "?";
  ct_cuda_device_name(0, name, sizeof name);
  int v = ct_nccl_version();
  printf("test_nccl_gpu on %s, NCCL %d.%d.%d from %s\n", name, v / 10000, v / 100 % 100, v % 100, ct_nccl_where());
  static const int64_t sizes[] = {1, 7, 33, 1000, (1 << 20) + 3};
  static const ct_dtype dts[] = {CT_F32, CT_BF16};
  int cases = 0;
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int64_t n = sizes[k];
    float *h = malloc((size_t)n * sizeof *h);
    for (int64_t i = 0; i < n; i++) h[i] = val(i);
    for (int d = 0; d < 2; d++) {
      for (int a = 0; a < 2; a++) {
        ct_dist_algo algo = a ? CT_ALGO_RING : CT_ALGO_NATIVE;
        collective(tr, CT_COLL_ALL_REDUCE, algo, CT_DIST_SUM, dts[d], n, h);
        collective(tr, CT_COLL_ALL_REDUCE, algo, CT_DIST_MEAN, dts[d], n, h);
        collective(tr, CT_COLL_ALL_REDUCE, algo, CT_DIST_MAX, dts[d], n, h);
        collective(tr, CT_COLL_REDUCE_SCATTER, algo, CT_DIST_SUM, dts[d], n, h);
        collective(tr, CT_COLL_ALL_GATHER, algo, CT_DIST_SUM, dts[d], n, h);
        collective(tr, CT_COLL_BROADCAST, a ? CT_ALGO_TREE : CT_ALGO_NATIVE, CT_DIST_SUM, dts[d], n, h);
        cases += 6;
      }
      self_step(tr, dts[d], n, h);
      cases++;
    }
    free(h);
  }
  ct_dist_nccl_free(tr);
  if (failures) {
    printf("test_nccl_gpu: %d of %d cases FAILED\n", failures, cases);
    return 1;
  }
  printf("test_nccl_gpu: all %d cases passed (one rank: native and ring, f32 and bf16, sizes 1 to 2^20+3)\n", cases);
  return 0;
}
