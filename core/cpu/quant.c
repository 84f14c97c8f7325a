/* quant.c: the CPU loops of quantized weights (layout in cpu/quant.h): packing with absmax steps,
 * unpacking a row, and the dequantizing matmul that unpacks one row of W at a time.
 *
 * Invariants: a code is round(w / d) with d = max|w| / L over its group, so |code| <= L and
 * |w - code * d| <= d / 2 for every element; q4/q8 steps are f16 rounded up (never down), so the
 * bound holds for the stored step; an all-zero group has d = 0 and codes 0. Unpacking computes
 * (float)code * d, one rounding, the same product on every path (dequantize, matmul, CUDA). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cpu/quant.h"

static const char *const fmt_names[CT_QNFORMATS] = {"int8", "int8_channel", "q4", "q8"};

const char *ct_qformat_name(ct_qformat f) { return f >= 0 && f < CT_QNFORMATS ? fmt_names[f] : "?"; }

int ct_qformat_from_name(const char *name, ct_qformat *out) {
  for (int f = 0; name && f < CT_QNFORMATS; f++)
    if (!strcmp(name, fmt_names[f])) return *out = (ct_qformat)f, 0;
  return ct_errorf("quantize: unknown format '%s' (expected int8, int8_channel, q4 or q8)", name ? name : "(none)");
}

int64_t ct_qformat_bytes(ct_qformat f, int64_t rows, int64_t cols) {
  if (ct_q_blocked(f)) return rows * ct_q_groups(f, cols) * ct_q_block_bytes(f);
  return ct_q_code_offset(f, rows) + rows * cols;
}

static inline uint16_t f16_up(float d) { /* the smallest f16 >= d (d >= 0, finite in f16) */
  uint16_t h = ct_f32_to_f16(d);
  return ct_f16_to_f32(h) < d ? (uint16_t)(h + 1) : h;
}

static inline int code_of(float w, float d, int L) {
  if (d == 0) return 0;
  double c = nearbyint((double)w / (double)d);
  return c > L ? L : c < -L ? -L : (int)c;
}

static float absmax(const float *w, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; i++) m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
  return m;
}

static int pack_block(ct_qformat f, const float *w, int64_t n, int64_t row, int64_t blk, uint8_t *out) {
  int L = ct_q_levels(f);
  float d = absmax(w, n) / (float)L;
  if (d > 65504.0f)
    return ct_errorf("quantize(%s): row %lld, block %lld: max |w| = %g needs a step over f16's 65504",
                     ct_qformat_name(f), (long long)row + 1, (long long)blk + 1, (double)d * L);
  uint16_t h = f16_up(d);
  float dq = ct_f16_to_f32(h);
  memcpy(out, &h, 2);
  uint8_t *q = out + 2;
  if (f == CT_QQ8) {
    for (int64_t j = 0; j < CT_QBLOCK; j++) q[j] = (uint8_t)(int8_t)(j < n ? code_of(w[j], dq, L) : 0);
  } else {
    memset(q, 0x88, CT_QBLOCK / 2); /* code 0 is stored as 8 in both nibbles */
    for (int64_t j = 0; j < n; j++) {
      uint8_t c = (uint8_t)(code_of(w[j], dq, L) + 8);
      int64_t b = j % (CT_QBLOCK / 2);
      q[b] = j < CT_QBLOCK / 2 ? (uint8_t)((q[b] & 0xF0) | c) : (uint8_t)((q[b] & 0x0F) | (c << 4));
    }
  }
  return 0;
}

int ct_q_pack(ct_qformat f, const float *w, int64_t rows, int64_t cols, uint8_t *out) {
  for (int64_t i = 0; i < rows * cols; i++)
    if (!isfinite(w[i]))
      return ct_errorf("quantize(%s): element %lld (row %lld, col %lld) is %g; only finite weights quantize",
                       ct_qformat_name(f), (long long)i + 1, (long long)(i / cols) + 1, (long long)(i % cols) + 1,
                       (double)w[i]);
  if (ct_q_blocked(f)) {
    int64_t nb = ct_q_groups(f, cols), bb = ct_q_block_bytes(f);
    for (int64_t r = 0; r < rows; r++)
      for (int64_t b = 0; b < nb; b++) {
        int64_t n = cols - b * CT_QBLOCK < CT_QBLOCK ? cols - b * CT_QBLOCK : CT_QBLOCK;
        if (pack_block(f, w + r * cols + b * CT_QBLOCK, n, r, b, out + (r * nb + b) * bb)) return -1;
      }
    return 0;
  }
  int8_t *codes = (int8_t *)(out + ct_q_code_offset(f, rows));
  int64_t groups = f == CT_QINT8 ? 1 : rows, per = f == CT_QINT8 ? rows * cols : cols;
  for (int64_t g = 0; g < groups; g++) {
    float d = absmax(w + g * per, per) / 127.0f;
    memcpy(out + 4 * g, &d, 4);
    for (int64_t i = g * per; i < (g + 1) * per; i++) codes[i] = (int8_t)code_of(w[i], d, 127);
  }
  return 0;
}

static inline float step_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return ct_f16_to_f32(h);
}

void ct_q_unpack_row(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, int64_t r, float *out) {
  if (!ct_q_blocked(f)) {
    float d;
    memcpy(&d, data + 4 * (f == CT_QINT8 ? 0 : r), 4);
    const int8_t *codes = (const int8_t *)(data + ct_q_code_offset(f, rows)) + r * cols;
    for (int64_t j = 0; j < cols; j++) out[j] = (float)codes[j] * d;
    return;
  }
  int64_t nb = ct_q_groups(f, cols), bb = ct_q_block_bytes(f);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t *blk = data + (r * nb + b) * bb, *q = blk + 2;
    float d = step_at(blk);
    int64_t n = cols - b * CT_QBLOCK < CT_QBLOCK ? cols - b * CT_QBLOCK : CT_QBLOCK;
    float *o = out + b * CT_QBLOCK;
    if (f == CT_QQ8) {
      for (int64_t j = 0; j < n; j++) o[j] = (float)(int8_t)q[j] * d;
    } else if (n == CT_QBLOCK) {
      for (int j = 0; j < CT_QBLOCK / 2; j++) {
        o[j] = (float)((q[j] & 0x0F) - 8) * d;
        o[j + CT_QBLOCK / 2] = (float)((q[j] >> 4) - 8) * d;
      }
    } else {
      for (int64_t j = 0; j < n; j++) {
        uint8_t byte = q[j % (CT_QBLOCK / 2)];
        int c = (j < CT_QBLOCK / 2 ? byte & 0x0F : byte >> 4) - 8;
        o[j] = (float)c * d;
      }
    }
  }
}

void ct_q_steps(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, float *out) {
  if (f == CT_QINT8) {
    memcpy(out, data, 4);
  } else if (f == CT_QINT8_CHANNEL) {
    memcpy(out, data, (size_t)(4 * rows));
  } else {
    int64_t nb = ct_q_groups(f, cols), bb = ct_q_block_bytes(f);
    for (int64_t i = 0; i < rows * nb; i++) out[i] = step_at(data + i * bb);
  }
}

/* Dot products with 8 independent partial sums (vectorisable without reassociating one sum). A
   batch of CT_Q_GEMM_MIN rows or more unpacks CT_Q_TILE rows of W at a time and multiplies them
   with OpenBLAS (a tile, never the whole weight); a smaller one unpacks a row and takes dots. */
#define QMM(T, NAME, GEMM)                                                                                             \
  static T dot_##T(const T *x, const float *w, int64_t n) {                                                            \
    T s[8] = {0}, r = 0;                                                                                               \
    int64_t i = 0;                                                                                                     \
    for (; i + 8 <= n; i += 8)                                                                                         \
      for (int j = 0; j < 8; j++) s[j] += x[i + j] * (T)w[i + j];                                                      \
    for (; i < n; i++) r += x[i] * (T)w[i];                                                                            \
    return r + ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));                                      \
  }                                                                                                                    \
  void NAME(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, const T *x, int64_t M, T *out,              \
            bool transposed, void *scratch) {                                                                          \
    float *row = scratch;                                                                                              \
    T *tile = (T *)((char *)scratch + ct_q_row_bytes(cols));                                                           \
    if (M < CT_Q_GEMM_MIN) { /* one row of W at a time, read straight from the unpacked row */                         \
      if (transposed) memset(out, 0, sizeof(T) * (size_t)(M * cols));                                                  \
      for (int64_t n = 0; n < rows; n++) {                                                                             \
        ct_q_unpack_row(f, data, rows, cols, n, row);                                                                  \
        for (int64_t m = 0; m < M && !transposed; m++) out[m * rows + n] = dot_##T(x + m * cols, row, cols);           \
        for (int64_t m = 0; m < M && transposed; m++) {                                                                \
          T g = x[m * rows + n], *o = out + m * cols;                                                                  \
          for (int64_t k = 0; k < cols; k++) o[k] += g * (T)row[k];                                                    \
        }                                                                                                              \
      }                                                                                                                \
      return;                                                                                                          \
    }                                                                                                                  \
    for (int64_t r0 = 0; r0 < rows; r0 += CT_Q_TILE) {                                                                 \
      int64_t nr = rows - r0 < CT_Q_TILE ? rows - r0 : CT_Q_TILE;                                                      \
      for (int64_t i = 0; i < nr; i++) {                                                                               \
        ct_q_unpack_row(f, data, rows, cols, r0 + i, row);                                                             \
        for (int64_t k = 0; k < cols; k++) tile[i * cols + k] = (T)row[k];                                             \
      }                                                                                                                \
      if (!transposed)                                                                                                 \
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)nr, (blasint)cols, 1, x, (blasint)cols,     \
             tile, (blasint)cols, 0, out + r0, (blasint)rows);                                                         \
      else                                                                                                             \
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M, (blasint)cols, (blasint)nr, 1, x + r0,             \
             (blasint)rows, tile, (blasint)cols, r0 ? 1 : 0, out, (blasint)cols);                                      \
    }                                                                                                                  \
  }
QMM(float, ct_q_matmul_f32, cblas_sgemm)
QMM(double, ct_q_matmul_f64, cblas_dgemm)
