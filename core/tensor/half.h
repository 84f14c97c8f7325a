/* half.h: f16 and bf16 to and from f32, bit exact, written once for the CPU (tensor/dtype.c:
 * ct_f16_to_f32 and friends) and the GPU (kernels/convert.cu), so both round the same way.
 * f32 -> f16 and f32 -> bf16 round to nearest even; NaN stays NaN (quiet), overflow goes to inf,
 * f16 subnormals are kept in both directions. */
#ifndef CHALK_HALF_H
#define CHALK_HALF_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define CT_HALF_FN static inline __host__ __device__
#else
#define CT_HALF_FN static inline
#endif

/* The bits of an f32 and back. */
CT_HALF_FN uint32_t ct_half_f32_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return x;
}
CT_HALF_FN float ct_half_bits_f32(uint32_t x) {
  float f;
  memcpy(&f, &x, 4);
  return f;
}

CT_HALF_FN float ct_half_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0)
      bits = sign;
    else { /* subnormal: normalise */
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, exp--;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31)
    bits = sign | 0x7f800000 | (mant << 13);
  else
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  return ct_half_bits_f32(bits);
}

CT_HALF_FN uint16_t ct_half_f32_to_f16(float f) {
  uint32_t x = ct_half_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = 1u << (shift - 1), rest = mant & ((1u << shift) - 1);
    uint32_t r = mant >> shift;
    if (rest > half || (rest == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((uint32_t)exp << 10) | (mant >> 13), rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++; /* may carry into exp: correct */
  return (uint16_t)(sign | r);
}

CT_HALF_FN float ct_half_bf16_to_f32(uint16_t h) { return ct_half_bits_f32((uint32_t)h << 16); }

CT_HALF_FN uint16_t ct_half_f32_to_bf16(float f) {
  uint32_t x = ct_half_f32_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

#endif
