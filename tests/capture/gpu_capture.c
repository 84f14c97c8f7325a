/* gpu_capture.c: the GPU path of captured graphs, on a real GPU (`make test-gpu`; skips, saying
 * why, without one): a training step captured on CUDA replays like the same eager steps on the
 * CPU (to float rounding: cuBLAS and OpenBLAS sum in different orders); fused kernels are
 * generated CUDA C compiled with NVRTC; from the third replay on, a replay is one CUDA Graph
 * launch; results stay right across launches; and the time per step with and without the CUDA
 * Graph. Prints one line per check and exits 1 if any failed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/capture.h"
#include "gpu_test.h"

static int failures;

static void check(bool ok, const char *what, const char *detail) {
  printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, detail && *detail ? ": " : "", detail ? detail : "");
  if (!ok) failures++;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double rel_diff(ct_tensor *a, ct_tensor *b) {
  int64_t n = ct_numel(a);
  double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n), m = 0;
  if (!x || !y || ct_to_doubles(a, x) || ct_to_doubles(b, y)) m = INFINITY;
  for (int64_t i = 0; m != INFINITY && i < n; i++) m = fmax(m, fabs(x[i] - y[i]) / fmax(1.0, fabs(y[i])));
  free(x), free(y);
  return m;
}

typedef struct {
  ct_tensor *w[4], *x, *y;
  int nl;
} net;

static void net_init(net *m, ct_device dev, int width, int nl) {
  ct_manual_seed(11);
  int64_t sw[2] = {width, width}, sx[2] = {64, width};
  m->nl = nl;
  for (int i = 0; i < nl; i++) {
    ct_tensor *w = ct_randn(sw, 2, CT_F32, ct_cpu()), *s = ct_mul_scalar(w, 1.0 / sqrt((double)width));
    m->w[i] = ct_to_device(s, dev);
    ct_release(w), ct_release(s);
    ct_requires_grad_(m->w[i], true);
  }
  ct_tensor *x = ct_randn(sx, 2, CT_F32, ct_cpu()), *y = ct_randn(sx, 2, CT_F32, ct_cpu());
  m->x = ct_to_device(x, dev);
  m->y = ct_to_device(y, dev);
  ct_release(x), ct_release(y);
}

static void net_free(net *m) {
  for (int i = 0; i < m->nl; i++) ct_release(m->w[i]);
  ct_release(m->x), ct_release(m->y);
}

/* forward (matmul, gelu, bias-free residual), mse, backward, SGD through assign */
static ct_tensor *net_step(net *m) {
  for (int i = 0; i < m->nl; i++) ct_zero_grad(m->w[i]);
  ct_tensor *h = ct_retain(m->x);
  for (int i = 0; i < m->nl; i++) {
    ct_tensor *z = ct_matmul(h, m->w[i]), *a = ct_gelu(z), *s = ct_mul_scalar(a, 0.5), *r = ct_add(s, h);
    ct_release(z), ct_release(a), ct_release(s), ct_release(h);
    h = r;
  }
  ct_tensor *loss = ct_mse_loss(h, m->y);
  ct_release(h);
  if (!loss || ct_backward(loss, NULL, false, false)) {
    printf("step failed: %s\n", ct_last_error());
    exit(1);
  }
  bool old = ct_set_grad_enabled(false);
  for (int i = 0; i < m->nl; i++) {
    ct_tensor *d = ct_mul_scalar(m->w[i]->grad, 0.05), *np = ct_sub(m->w[i], d);
    if (ct_assign_(m->w[i], np)) {
      printf("assign failed: %s\n", ct_last_error());
      exit(1);
    }
    ct_release(d), ct_release(np);
  }
  ct_set_grad_enabled(old);
  return loss;
}

int main(void) {
  char buf[512];
  if (!gpu_test_start("gpu_capture", buf, sizeof buf)) return 0;
  ct_device gpu = {CT_CUDA, 0};
  net c, d;
  net_init(&c, ct_cpu(), 96, 3);
  net_init(&d, gpu, 96, 3);
  ct_graph *g = ct_capture_begin(&d.x, 1);
  ct_tensor *l0 = net_step(&d);
  if (!g || ct_capture_end(g, &l0, 1)) {
    printf("capture failed: %s\n", ct_last_error());
    return 1;
  }
  ct_release(l0);
  ct_tensor *lc = net_step(&c);
  ct_release(lc);
  check(ct_device_eq(ct_graph_device(g), gpu), "the graph runs on cuda:0", NULL);
  ct_pass_report rep;
  int rc = ct_graph_optimize(g, "fuse", NULL, &rep);
  snprintf(buf, sizeof buf, "kernels %d -> %d", rep.kernels_before, rep.kernels_after);
  check(!rc && rep.kernels_after < rep.kernels_before, "fusion on the GPU graph", rc ? ct_last_error() : buf);
  double worst = 0;
  for (int k = 0; k < 6; k++) {
    ct_tensor *le = net_step(&c);
    if (ct_graph_replay(g)) {
      snprintf(buf, sizeof buf, "replay %d: %s", k + 1, ct_last_error());
      check(false, "replay", buf);
      break;
    }
    ct_tensor *lg = ct_graph_output(g, 0);
    double dl = rel_diff(lg, le);
    for (int i = 0; i < c.nl; i++) dl = fmax(dl, rel_diff(d.w[i], c.w[i]));
    worst = fmax(worst, dl);
    ct_release(le), ct_release(lg);
  }
  snprintf(buf, sizeof buf, "6 replays vs 6 eager CPU steps: largest relative difference %.2e", worst);
  check(worst < 2e-4, "replay on the GPU equals eager steps", buf);
  int launches = 0, compiles = 0;
  const char *why = NULL;
  int st = ct_graph_cuda_status(g, &launches, &compiles, &why);
  snprintf(buf, sizeof buf, "%d NVRTC compiles in this process", compiles);
  check(compiles > 0, "fused kernels compiled with NVRTC", buf);
  snprintf(buf, sizeof buf, "status %d, %d launches%s%s", st, launches, why ? "; op by op because " : "", why ? why : "");
  check(st == 1 && launches >= 4, "replay is a CUDA Graph launch", buf);
  for (int i = 0; i < ct_graph_nnodes(g); i++) {
    ct_gnode_info in;
    ct_graph_node(g, i, &in);
    if (in.op != CT_GOP_FUSED) continue;
    const char *src = ct_graph_source(g, i, "cuda");
    check(src && strstr(src, "__global__"), "generated CUDA source", NULL);
    if (src) printf("---- %s\n%s----\n", in.label, src);
    break;
  }
  /* time per step: op by op (a fresh graph, fused, first two replays) vs CUDA Graph launches */
  ct_graph *g2 = ct_capture_begin(&d.x, 1);
  ct_tensor *l2 = net_step(&d);
  ct_capture_end(g2, &l2, 1);
  ct_release(l2);
  ct_graph_optimize(g2, "fuse", NULL, NULL);
  ct_graph_replay(g2); /* warm-up */
  ct_cuda_synchronize();
  double t0 = now_ms();
  ct_graph_replay(g2); /* op by op, then recorded into a CUDA Graph */
  ct_cuda_synchronize();
  double op_by_op = now_ms() - t0;
  int reps = 50;
  t0 = now_ms();
  for (int k = 0; k < reps; k++) ct_graph_replay(g2);
  ct_cuda_synchronize();
  double graphed = (now_ms() - t0) / reps;
  printf("time per step: op by op %.3f ms (one run, includes recording), CUDA Graph %.3f ms (mean of %d)\n", op_by_op,
         graphed, reps);
  st = ct_graph_cuda_status(g2, &launches, NULL, &why);
  snprintf(buf, sizeof buf, "%d launches", launches);
  check(st == 1, "second graph replays as a CUDA Graph", why ? why : buf);
  /* eager GPU step for comparison of time */
  ct_cuda_synchronize();
  t0 = now_ms();
  for (int k = 0; k < reps; k++) {
    ct_tensor *l = net_step(&d);
    ct_release(l);
  }
  ct_cuda_synchronize();
  printf("time per step: eager %.3f ms (mean of %d)\n", (now_ms() - t0) / reps, reps);
  ct_graph_free(g), ct_graph_free(g2);
  net_free(&c), net_free(&d);
  printf("gpu_capture: %s (%d failed)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
