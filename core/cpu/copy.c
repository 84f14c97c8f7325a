/* copy.c: the CPU copy loop: strided, broadcasting, with dtype conversion (ct_copy_cpu). */
#include <string.h>

#include "cpu/copy.h"
#include "cpu/iter.h"

typedef struct {
  ct_dtype dst, src;
} conv_ctx;

static void copy_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  conv_ctx *c = vctx;
  if (c->dst == c->src) {
    size_t isz = ct_dtype_size(c->dst);
    if (s[0] == (int64_t)isz && s[1] == (int64_t)isz) {
      memcpy(p[0], p[1], (size_t)n * isz);
      return;
    }
    switch (isz) {
    case 8:
      for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 8);
      return;
    case 4:
      for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 4);
      return;
    case 2:
      for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], 2);
      return;
    default:
      for (int64_t i = 0; i < n; i++) p[0][i * s[0]] = p[1][i * s[1]];
      return;
    }
  }
  if (c->dst == CT_F32 && c->src == CT_F64) {
    for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = (float)*(double *)(p[1] + i * s[1]);
    return;
  }
  if (c->dst == CT_F64 && c->src == CT_F32) {
    for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) = *(float *)(p[1] + i * s[1]);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    ct_store_from_double(c->dst, p[0] + i * s[0], ct_load_as_double(c->src, p[1] + i * s[1]));
}

int ct_copy_cpu(ct_tensor *dst, const ct_tensor *src) {
  conv_ctx c = {dst->dtype, src->dtype};
  ct_tensor *in = (ct_tensor *)src;
  ct_foreach_tensors(dst, &in, 1, copy_loop, &c);
  return 0;
}
