/* quant.h: the byte layout of quantized weights (chalk.h's ct_qformat) and the CPU loops over it
 * (cpu/quant.c): packing, unpacking one row, per-group steps and the dequantizing matmul.
 * kernels/quant.cu reads the same layout through the inline helpers below. */
#ifndef CHALK_CPU_QUANT_H
#define CHALK_CPU_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chalk.h"

#define CT_QBLOCK 32 /* weights per block of q4 and q8 (llama.cpp's QK4_0, QK8_0) */

/* Largest code magnitude L: codes are in [-L, L]. */
static inline int ct_q_levels(ct_qformat f) { return f == CT_QQ4 ? 7 : 127; }
static inline bool ct_q_blocked(ct_qformat f) { return f == CT_QQ4 || f == CT_QQ8; }
/* Bytes of one block: an f16 step and 32 codes (q4: two per byte, element j in the low nibble of
   byte j, element j + 16 in the high one, stored as code + 8). */
static inline int64_t ct_q_block_bytes(ct_qformat f) { return f == CT_QQ4 ? 2 + CT_QBLOCK / 2 : 2 + CT_QBLOCK; }
/* Groups (elements sharing one step d) per row. */
static inline int64_t ct_q_groups(ct_qformat f, int64_t cols) {
  return ct_q_blocked(f) ? (cols + CT_QBLOCK - 1) / CT_QBLOCK : 1;
}
/* int8 and int8_channel: the f32 steps come first (1 or rows of them), the codes after, row-major. */
static inline int64_t ct_q_code_offset(ct_qformat f, int64_t rows) { return f == CT_QINT8 ? 4 : 4 * rows; }

/* Quantizes rows x cols f32 values into out (ct_qformat_bytes bytes). -1 with an error naming the
   element for a non-finite value, or a group whose step overflows f16. */
int ct_q_pack(ct_qformat f, const float *w, int64_t rows, int64_t cols, uint8_t *out);
/* Row r of the weight as f32 values (cols of them): the only f32 copy of weights ever made. */
void ct_q_unpack_row(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, int64_t r, float *out);
/* Each group's step d, f32 [rows, ct_q_groups] (int8: [1, 1]). */
void ct_q_steps(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, float *out);
/* out [M, rows] = x [M, cols] @ W^T, or (transposed) out [M, cols] = x [M, rows] @ W; contiguous.
   A batch of M >= CT_Q_GEMM_MIN unpacks CT_Q_TILE rows of W at a time into scratch and multiplies
   the tile with OpenBLAS; a smaller one unpacks one row at a time and takes dot products (axpys).
   scratch: ct_q_scratch_bytes(cols, sizeof(T)) bytes. */
#define CT_Q_TILE 256
#define CT_Q_GEMM_MIN 8
static inline size_t ct_q_row_bytes(int64_t cols) { return ((size_t)cols * sizeof(float) + 15) & ~(size_t)15; }
static inline size_t ct_q_scratch_bytes(int64_t cols, size_t elem) {
  return ct_q_row_bytes(cols) + (size_t)cols * elem * CT_Q_TILE;
}
void ct_q_matmul_f32(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, const float *x, int64_t M,
                     float *out, bool transposed, void *scratch);
void ct_q_matmul_f64(ct_qformat f, const uint8_t *data, int64_t rows, int64_t cols, const double *x, int64_t M,
                     double *out, bool transposed, void *scratch);

#endif
