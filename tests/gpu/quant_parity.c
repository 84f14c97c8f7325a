/* quant_parity.c: qmatmul's cases of the CUDA parity harness (kernels/quant.cu against
 * core/cpu/quant.c): every format, f32 and f64 activations, batches of 1, 7, 33, 1000 rows, weights
 * whose row length is 1, 7, 33, 100 or 1000 (not a multiple of the 32-wide block, so the padded
 * last block is read), transposed (non-contiguous) activations, the gradient (the transposed
 * kernel), and on the GPU itself the quantized matmul against dequantize-then-matmul. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* x[0] activations, x[1] the f32 weight [N, K]: quantized on that device, then y = x @ W^T. */
static ct_tensor *op_qmm(ct_tensor *const *x, const prm *p) {
  ct_qtensor *q = ct_quantize(x[1], (ct_qformat)p->i[0]);
  ct_tensor *y = q ? ct_qmatmul(x[0], q, p->i[1]) : NULL;
  ct_qtensor_free(q);
  return y;
}

static void one(ct_qformat f, int64_t M, int64_t N, int64_t K, ct_dtype dt, int lay, bool transposed) {
  int64_t sx[2] = {M, transposed ? N : K}, sw[2] = {N, K};
  pair in[2] = {mk(sx, 2, dt, -2, 2, lay, true), mk(sw, 2, CT_F32, -1, 1, LAY_CONTIG, false)};
  char label[160];
  snprintf(label, sizeof label, "%s %s M%lld N%lld K%lld%s%s", ct_qformat_name(f), ct_dtype_name(dt), (long long)M,
           (long long)N, (long long)K, lay == LAY_T ? " x transposed" : "", transposed ? " x @ W" : "");
  double tol = dt == CT_F64 ? 1e-24 : 1e-10;
  run_case("qmatmul", label, op_qmm, &(prm){{(int)f, transposed}, {0}}, in, 2, tol, tol);
  pair_free(&in[0]), pair_free(&in[1]);
}

/* On the GPU: qmatmul(x, q) against matmul(x, dequantize(q)^T), the reference it replaces. */
static void against_dequantized(ct_qformat f, int64_t M, int64_t N, int64_t K) {
  int64_t sx[2] = {M, K}, sw[2] = {N, K};
  pair x = mk(sx, 2, CT_F32, -2, 2, LAY_CONTIG, false), w = mk(sw, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_qtensor *q = ct_quantize(w.t[1], f);
  ct_tensor *y = q ? ct_qmatmul(x.t[1], q, false) : NULL, *d = q ? ct_dequantize(q) : NULL;
  ct_tensor *dt = d ? ct_transpose(d, 0, 1) : NULL, *ref = dt ? ct_matmul(x.t[1], dt) : NULL;
  char label[96];
  snprintf(label, sizeof label, "%s M%lld N%lld K%lld on cuda", ct_qformat_name(f), (long long)M, (long long)N,
           (long long)K);
  const char *why = NULL;
  double e = y && ref ? compare(ref, y, &why) : 1e300;
  record("qmatmul vs dequantize+matmul", label, y && ref && !why && e <= 1e-10, e, y && ref ? why : ct_last_error());
  ct_release(y), ct_release(d), ct_release(dt), ct_release(ref), ct_qtensor_free(q);
  pair_free(&x), pair_free(&w);
}

void cases_quant(void) {
  static const int64_t nk[][2] = {{1, 1}, {7, 33}, {33, 100}, {5, 1000}, {1000, 7}};
  for (int f = 0; f < CT_QNFORMATS; f++) {
    for (int s = 0; s < NSIZES; s++)
      for (int j = 0; j < 5; j++) one((ct_qformat)f, SIZES[s], nk[j][0], nk[j][1], CT_F32, LAY_CONTIG, false);
    one((ct_qformat)f, 7, 33, 100, CT_F64, LAY_CONTIG, false);
    one((ct_qformat)f, 33, 7, 33, CT_F32, LAY_T, false);
    one((ct_qformat)f, 7, 33, 100, CT_F32, LAY_CONTIG, true);
    one((ct_qformat)f, 1, 1000, 33, CT_F64, LAY_CONTIG, true);
    against_dequantized((ct_qformat)f, 7, 33, 100);
    if (!QUICK) against_dequantized((ct_qformat)f, 256, 1000, 1000);
  }
}
