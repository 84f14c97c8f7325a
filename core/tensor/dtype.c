/* dtype.c: dtype names, sizes, promotion, f16/bf16 conversion; device and category names; the
 * one-line description of a tensor ("f32[2,3] on cpu") that error messages use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/half.h"
#include "tensor/tensor_impl.h"

static const struct {
  const char *name;
  size_t size;
  int rank; /* promotion order */
} dtype_info[CT_NDTYPES] = {
    [CT_F32] = {"f32", 4, 6}, [CT_F64] = {"f64", 8, 7}, [CT_F16] = {"f16", 2, 4}, [CT_BF16] = {"bf16", 2, 5},
    [CT_I32] = {"i32", 4, 2}, [CT_I64] = {"i64", 8, 3}, [CT_I8] = {"i8", 1, 1},   [CT_BOOL] = {"bool", 1, 0},
};

const char *ct_dtype_name(ct_dtype d) { return (unsigned)d < CT_NDTYPES ? dtype_info[d].name : "?"; }
size_t ct_dtype_size(ct_dtype d) { return dtype_info[d].size; }
bool ct_dtype_is_float(ct_dtype d) { return d == CT_F32 || d == CT_F64 || d == CT_F16 || d == CT_BF16; }

int ct_dtype_from_name(const char *name, ct_dtype *out) {
  static const struct {
    const char *alias;
    ct_dtype d;
  } aliases[] = {
      {"float32", CT_F32}, {"float", CT_F32}, {"float64", CT_F64},   {"double", CT_F64},
      {"float16", CT_F16}, {"half", CT_F16},  {"bfloat16", CT_BF16}, {"int32", CT_I32},
      {"int", CT_I32},     {"int64", CT_I64}, {"long", CT_I64},      {"int8", CT_I8},
  };
  for (int d = 0; d < CT_NDTYPES; d++)
    if (!strcmp(name, dtype_info[d].name)) return *out = (ct_dtype)d, 0;
  for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
    if (!strcmp(name, aliases[i].alias)) return *out = aliases[i].d, 0;
  return ct_errorf("unknown dtype '%s' (expected f32, f64, f16, bf16, i32, i64, i8 or bool)", name);
}

ct_dtype ct_promote(ct_dtype a, ct_dtype b) {
  if (a == b) return a;
  /* f16 with bf16 has no common 16-bit type: f32, as torch does */
  if ((a == CT_F16 && b == CT_BF16) || (a == CT_BF16 && b == CT_F16)) return CT_F32;
  return dtype_info[a].rank >= dtype_info[b].rank ? a : b;
}

float ct_f16_to_f32(uint16_t h) { return ct_half_f16_to_f32(h); }
uint16_t ct_f32_to_f16(float f) { return ct_half_f32_to_f16(f); }
float ct_bf16_to_f32(uint16_t h) { return ct_half_bf16_to_f32(h); }
uint16_t ct_f32_to_bf16(float f) { return ct_half_f32_to_bf16(f); }

ct_device ct_cpu(void) { return (ct_device){CT_CPU, 0}; }
bool ct_device_eq(ct_device a, ct_device b) { return a.type == b.type && a.index == b.index; }

int ct_device_parse(const char *s, ct_device *out) {
  if (!strcmp(s, "cpu")) return *out = ct_cpu(), 0;
  if (!strncmp(s, "cuda", 4)) {
    if (s[4] == 0) return *out = (ct_device){CT_CUDA, 0}, 0;
    if (s[4] == ':' && s[5]) {
      char *end;
      long i = strtol(s + 5, &end, 10);
      if (!*end && i >= 0 && i < 64) return *out = (ct_device){CT_CUDA, (int)i}, 0;
    }
  }
  return ct_errorf("unknown device '%s' (expected \"cpu\", \"cuda\" or \"cuda:N\")", s);
}

const char *ct_device_str(ct_device d, char *buf, size_t n) {
  if (d.type == CT_CPU)
    snprintf(buf, n, "cpu");
  else
    snprintf(buf, n, "cuda:%d", d.index);
  return buf;
}

static const char *const category_names[CT_NCATS] = {
    [CT_CAT_ACTIVATION] = "activation",     [CT_CAT_PARAMETER] = "parameter",     [CT_CAT_GRADIENT] = "gradient",
    [CT_CAT_OPTIMIZER] = "optimizer state", [CT_CAT_TEMPORARY] = "temporary",     [CT_CAT_INPUT] = "input",
    [CT_CAT_KV_CACHE] = "kv_cache",         [CT_CAT_COMM_BUFFER] = "comm_buffer",
};

const char *ct_category_name(ct_category c) { return (unsigned)c < CT_NCATS ? category_names[c] : "?"; }

int ct_category_from_name(const char *s, ct_category *out) {
  for (int c = 0; c < CT_NCATS; c++)
    if (!strcmp(s, category_names[c])) return *out = (ct_category)c, 0;
  if (!strcmp(s, "optimizer")) return *out = CT_CAT_OPTIMIZER, 0;
  return ct_errorf("unknown memory category '%s' (expected activation, parameter, gradient, "
                   "optimizer state, temporary, input, kv_cache or comm_buffer)",
                   s);
}

const char *ct_describe(const ct_tensor *t, char *buf, size_t n) {
  char sh[128], dev[32];
  if (!t) {
    snprintf(buf, n, "nil");
    return buf;
  }
  snprintf(buf, n, "%s%s on %s", ct_dtype_name(t->dtype), ct_shape_str(t->shape, t->ndim, sh, sizeof sh),
           ct_device_str(t->storage->device, dev, sizeof dev));
  return buf;
}

/* ---- one element of any dtype as double (slow paths, conversions) ---- */

/* The dtypes stored as one plain C value: dtype, C type, to double, from double. Each row expands
   into one case of the two switches below (the value read or written unaligned at p). */
#define PLAIN_DTYPES(X)                                                                                                \
  X(CT_F32, float, (double), (float))                                                                                  \
  X(CT_F64, double, (double), (double))                                                                                \
  X(CT_F16, uint16_t, ct_f16_to_f32, ct_f32_to_f16)                                                                    \
  X(CT_BF16, uint16_t, ct_bf16_to_f32, ct_f32_to_bf16)                                                                 \
  X(CT_I32, int32_t, (double), (int32_t))                                                                              \
  X(CT_I64, int64_t, (double), (int64_t))
#define LOAD_CASE(DT, T, TO, FROM)                                                                                     \
  case DT: {                                                                                                           \
    T v;                                                                                                               \
    memcpy(&v, p, sizeof v);                                                                                           \
    return TO(v);                                                                                                      \
  }
#define STORE_CASE(DT, T, TO, FROM)                                                                                    \
  case DT: {                                                                                                           \
    T x = FROM(v);                                                                                                     \
    memcpy(p, &x, sizeof x);                                                                                           \
    break;                                                                                                             \
  }

double ct_load_as_double(ct_dtype dt, const char *p) {
  switch (dt) {
    PLAIN_DTYPES(LOAD_CASE)
  case CT_I8:
    return (int8_t)*p;
  case CT_BOOL:
    return *p ? 1.0 : 0.0;
  default:
    return 0;
  }
}

void ct_store_from_double(ct_dtype dt, char *p, double v) {
  switch (dt) {
    PLAIN_DTYPES(STORE_CASE)
  case CT_I8:
    *p = (char)(int8_t)v;
    break;
  case CT_BOOL:
    *p = v != 0;
    break;
  default:
    break;
  }
}
#undef PLAIN_DTYPES
#undef LOAD_CASE
#undef STORE_CASE
