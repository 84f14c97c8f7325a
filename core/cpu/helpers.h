/* helpers.h: small CPU-side helpers shared by the op family files (index values, dtypes,
 * contiguous access). Index values in tensors are 1-based, negative counting from the end. */
#ifndef CHALK_CPU_HELPERS_H
#define CHALK_CPU_HELPERS_H

#include <string.h>

#include "cpu/copy.h"
#include "tensor/tensor_impl.h"

/* t's elements in row-major order: t's own data when contiguous, else a private copy in *tmp
   (the caller releases *tmp). */
const void *ct_cpu_contig_data(const ct_tensor *t, ct_tensor **tmp);

/* 0 when t is f32 or f64, else an error naming what. */
int ct_cpu_need_float(const ct_tensor *t, const char *what);

static inline bool ct_is_index_dtype(ct_dtype d) { return d == CT_I64 || d == CT_I32 || d == CT_I8; }

static inline int64_t ct_load_index(ct_dtype d, const char *p) {
  if (d == CT_I64) {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
  }
  if (d == CT_I32) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
  }
  return (int8_t)*p;
}

/* 1-based value (negative from the end) -> 0-based position, or -1 when out of range. */
static inline int64_t ct_norm_index(int64_t v, int64_t size) {
  if (v >= 1 && v <= size) return v - 1;
  if (v <= -1 && v >= -size) return size + v;
  return -1;
}

#endif
