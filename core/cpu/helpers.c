/* helpers.c: CPU-side helpers shared by the op family files (see helpers.h). */
#include "helpers.h"

const void *ct_cpu_contig_data(const ct_tensor *t, ct_tensor **tmp) {
  *tmp = NULL;
  if (ct_is_contiguous(t)) return ct_data_ptr(t);
  ct_tensor *c = ct_empty(t->shape, t->ndim, t->dtype, ct_cpu());
  if (!c) return NULL;
  ct_copy_cpu(c, t);
  *tmp = c;
  return c->storage->data;
}

int ct_cpu_need_float(const ct_tensor *t, const char *what) {
  if (t->dtype == CT_F32 || t->dtype == CT_F64) return 0;
  return ct_errorf("%s must be f32 or f64, got %s", what, ct_dtype_name(t->dtype));
}
