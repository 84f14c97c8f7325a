/* ops_assign.c: the in-place op assign (dst <- src, output aliases dst) that lets capture see optimizer updates. */
#include <string.h>

#include "cpu/copy.h"
#include "ops/optable.h"

/* ==== the assign op: dst <- src (output aliases dst) ========================================= */

static int assign_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  ct_meta b;
  if (ct_broadcast_shapes(NULL, in, 2, &b)) return -1;
  const ct_tensor *dst = in[0], *src = in[1];
  if (b.ndim != dst->ndim || memcmp(b.shape, dst->shape, sizeof(int64_t) * (size_t)b.ndim)) {
    char s1[160], s2[160];
    return ct_errorf("source of shape %s does not broadcast to destination shape %s",
                     ct_shape_str(src->shape, src->ndim, s1, sizeof s1),
                     ct_shape_str(dst->shape, dst->ndim, s2, sizeof s2));
  }
  ct_meta_of(dst, m);
  return 0;
}
static int assign_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  return ct_copy_cpu(out, in[1]);
}
static int assign_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  ct_tensor *src = in[1];
  return ct_cuda_forward[CT_OP_copy](out, &src, 1, NULL);
}
static void assign_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)a;
  *f = 0;
  *b = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype) +
       (double)ct_numel(in[1]) * (double)ct_dtype_size(in[1]->dtype);
}
const ct_opdef ct_op_assign = {
    "assign", 2, CT_OPF_INPLACE_OUT | CT_OPF_NONDIFF, assign_shape, assign_cpu, NULL, assign_cost, NULL, NULL};

int ct_assign_(ct_tensor *dst, ct_tensor *src) {
  ct_device dd = dst->storage->device, sd = src->storage->device;
  if (!ct_device_eq(dd, sd)) return ct_copy_(dst, src);
  if (dd.type != CT_CPU && !ct_cuda_forward[CT_OP_assign]) {
    if (!ct_cuda_forward[CT_OP_copy]) return ct_copy_(dst, src);
    ct_cuda_forward[CT_OP_assign] = assign_cuda;
  }
  ct_tensor *in[2] = {dst, src};
  ct_tensor *r = ct_op_run(CT_OP_assign, in, 2, NULL);
  if (!r) return -1;
  ct_release(r);
  return 0;
}
