/* gpu_pictures.c: the profile pictures of one training step of an MLP on the GPU (trace lanes per
 * device and stream, GPU op times, memory on cuda, Chrome export), for looking at by eye on a
 * machine with CUDA. Not part of check-viz: it needs a GPU, and says so and exits 0 without one.
 *
 *   make build/tests/viz/gpu_pictures && build/tests/viz/gpu_pictures OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz.h"

static ct_tensor *param(int64_t o, int64_t i, const char *name, ct_device dev) {
  ct_category old = ct_set_default_category(CT_CAT_PARAMETER);
  ct_tensor *t = i ? ct_randn((int64_t[]){o, i}, 2, CT_F32, dev) : ct_randn((int64_t[]){o}, 1, CT_F32, dev);
  ct_set_default_category(old);
  ct_requires_grad_(t, true);
  ct_set_name(t, name);
  return t;
}

static int draw(const ct_profile *p, const char *dir) {
  char path[1024];
  viz_buf b = {0};
  snprintf(path, sizeof path, "%s/gpu_trace.png", dir);
  if (viz_trace_dot(p, NULL, &b) || viz_render(b.s, "nop", "png", path)) return -1;
  viz_buf_free(&b);
  viz_memory_opts mo = {.device = CT_CUDA};
  snprintf(path, sizeof path, "%s/gpu_memory.png", dir);
  if (viz_memory_dot(p, &mo, &b) || viz_render(b.s, "nop", "png", path)) return -1;
  viz_buf_free(&b);
  snprintf(path, sizeof path, "%s/gpu_step.json", dir);
  return viz_chrome_write(p, path);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  if (ct_init() || !ct_cuda_available()) {
    printf("gpu_pictures: skipped, no GPU (%s)\n", ct_cuda_unavailable_reason());
    return 0;
  }
  ct_device gpu = {CT_CUDA, 0};
  ct_tensor *W1 = param(4096, 4096, "layers.0.weight", gpu), *b1 = param(4096, 0, "layers.0.bias", gpu);
  ct_tensor *W2 = param(1024, 4096, "layers.2.weight", gpu), *b2 = param(1024, 0, "layers.2.bias", gpu);
  ct_category old = ct_set_default_category(CT_CAT_INPUT);
  ct_tensor *xh = ct_randn((int64_t[]){2048, 4096}, 2, CT_F32, ct_cpu());
  ct_set_default_category(old);
  ct_set_name(xh, "x (host)");
  for (int warm = 0; warm < 2; warm++) {
    ct_profile *p = warm ? ct_profile_start() : NULL;
    ct_tensor *x = ct_to_device(xh, gpu); /* the H2D copy is in the trace */
    ct_tensor *W1t = ct_transpose(W1, 0, 1), *W2t = ct_transpose(W2, 0, 1);
    ct_tensor *m1 = ct_matmul(x, W1t), *z1 = ct_add(m1, b1), *h = ct_relu(z1);
    ct_tensor *m2 = ct_matmul(h, W2t), *y = ct_add(m2, b2), *sq = ct_mul(y, y);
    ct_tensor *loss = ct_mean(sq, NULL, 0, false);
    ct_tensor *t[] = {x, W1t, W2t, m1, z1, h, m2, y, sq};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) ct_release(t[i]);
    if (!loss || ct_backward(loss, NULL, false, false)) {
      fprintf(stderr, "gpu_pictures: %s\n", ct_last_error());
      return 1;
    }
    ct_tensor *lh = ct_to_device(loss, ct_cpu()); /* the D2H copy */
    double v;
    ct_item(lh, &v);
    ct_release(lh), ct_release(loss);
    if (p) {
      ct_profile_stop(p);
      char buf[8192];
      ct_profile_format(p, buf, sizeof buf);
      fputs(buf, stdout);
      if (draw(p, dir)) {
        fprintf(stderr, "gpu_pictures: %s\n", ct_last_error());
        return 1;
      }
      ct_profile_free(p);
    }
    ct_zero_grad(W1), ct_zero_grad(W2), ct_zero_grad(b1), ct_zero_grad(b2);
  }
  printf("gpu_pictures: wrote %s/gpu_trace.png, gpu_memory.png, gpu_step.json\n", dir);
  ct_release(W1), ct_release(b1), ct_release(W2), ct_release(b2), ct_release(xh);
  return 0;
}
