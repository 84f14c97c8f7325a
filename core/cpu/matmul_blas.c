/* matmul_blas.c: the matmul row's own CPU forward ("blas", core/ops/ops_matmul.c has the row):
 * batched and broadcast GEMMs through OpenBLAS.
 * Invariants: an operand goes to BLAS in place whenever its last or second-to-last stride is 1
 * (a transposed view goes as CblasTrans with its column stride as leading dimension); only a
 * matrix with neither stride 1 (or stride-0 rows) is packed, one matrix at a time, and a packed
 * matrix shared by consecutive batches is packed once. Broadcast batch dims (stride 0) are never
 * copied. When the right operand has no batch and the left's batches are evenly spaced rows, the
 * whole batch is one GEMM. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/matmul_ladder.h"

/* How one rows x cols matrix with element strides (rs, cs) is handed to row-major BLAS. */
typedef struct {
  enum CBLAS_TRANSPOSE trans;
  int64_t ld;
  bool pack; /* neither layout fits: copy into a contiguous scratch matrix (ld = cols) */
} mm_layout;

static mm_layout mm_layout_of(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  int64_t need_n = cols > 1 ? cols : 1, need_t = rows > 1 ? rows : 1;
  /* row-major: element (i, j) at i*ld + j; a size-1 dim's stride is never used */
  if (cols == 1 || cs == 1) {
    int64_t ld = rows == 1 ? need_n : rs;
    if (ld >= need_n && ld <= INT_MAX) return (mm_layout){CblasNoTrans, ld, false};
  }
  /* column-major, i.e. the transpose of a row-major cols x rows: element (i, j) at j*ld + i */
  if (rows == 1 || rs == 1) {
    int64_t ld = cols == 1 ? need_t : cs;
    if (ld >= need_t && ld <= INT_MAX) return (mm_layout){CblasTrans, ld, false};
  }
  return (mm_layout){CblasNoTrans, need_n, true};
}

typedef struct {
  const char *base; /* element (0,0) of batch 0 */
  int64_t rows, cols, rs, cs;
  int64_t bst[CT_MAX_DIMS]; /* batch strides in elements, broadcast to the output's batch shape */
  mm_layout lay;
  void *scratch;
  const char *packed_from; /* source of the matrix now in scratch */
} mm_operand;

static void mm_operand_init(mm_operand *o, const ct_tensor *t, int nb) {
  o->base = ct_data_ptr(t);
  o->rows = t->shape[t->ndim - 2], o->cols = t->shape[t->ndim - 1];
  o->rs = t->stride[t->ndim - 2], o->cs = t->stride[t->ndim - 1];
  int off = nb - (t->ndim - 2);
  for (int d = 0; d < nb; d++) {
    int td = d - off;
    o->bst[d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td];
  }
  o->lay = mm_layout_of(o->rows, o->cols, o->rs, o->cs);
  o->scratch = NULL;
  o->packed_from = NULL;
}

#define MM_PACK(T)                                                                                 \
  static void mm_pack_##T(T *dst, const T *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs) { \
    for (int64_t i = 0; i < rows; i++)                                                             \
      for (int64_t j = 0; j < cols; j++) dst[i * cols + j] = src[i * rs + j * cs];                 \
  }
MM_PACK(float)
MM_PACK(double)

/* Pointer to hand BLAS for the matrix starting at src: src itself, or its packed copy. */
static const void *mm_matrix(mm_operand *o, const char *src, ct_dtype dt) {
  if (!o->lay.pack) return src;
  if (o->packed_from != src) {
    if (dt == CT_F32) mm_pack_float(o->scratch, (const float *)src, o->rows, o->cols, o->rs, o->cs);
    else mm_pack_double(o->scratch, (const double *)src, o->rows, o->cols, o->rs, o->cs);
    o->packed_from = src;
  }
  return o->scratch;
}

static void mm_gemm(ct_dtype dt, const mm_layout *la, const mm_layout *lb, int64_t n, int64_t m, int64_t k,
                    const void *a, const void *b, void *c) {
  if (dt == CT_F32)
    cblas_sgemm(CblasRowMajor, la->trans, lb->trans, (blasint)n, (blasint)m, (blasint)k, 1.0f, a, (blasint)la->ld, b,
                (blasint)lb->ld, 0.0f, c, (blasint)m);
  else
    cblas_dgemm(CblasRowMajor, la->trans, lb->trans, (blasint)n, (blasint)m, (blasint)k, 1.0, a, (blasint)la->ld, b,
                (blasint)lb->ld, 0.0, c, (blasint)m);
}

/* When every batch of A is a block of rows evenly spaced with its row stride, the batch and row
   dims fold into one dim of rows: returns that row stride, or 0 when they do not fold. */
static int64_t mm_fold_rows(const mm_operand *a, const int64_t *bshape, int nb) {
  if (a->lay.pack || a->lay.trans != CblasNoTrans) return 0;
  int64_t stride = 0, span = 0;
  for (int d = nb; d >= 0; d--) { /* d == nb is the row dim */
    int64_t size = d == nb ? a->rows : bshape[d], st = d == nb ? a->rs : a->bst[d];
    if (size == 1) continue;
    if (!span) stride = st, span = size;
    else if (st != stride * span) return 0;
    else span *= size;
  }
  return stride >= (a->cols > 1 ? a->cols : 1) ? stride : 0;
}

int ct_cpu_matmul_blas(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *at) {
  (void)nin, (void)at;
  const ct_tensor *A = in[0], *B = in[1];
  ct_dtype dt = out->dtype;
  size_t isz = ct_dtype_size(dt);
  int nb = out->ndim - 2;
  const int64_t *bshape = out->shape;
  int64_t n = out->shape[nb], m = out->shape[nb + 1], k = A->shape[A->ndim - 1];
  int64_t nbatch = 1;
  for (int d = 0; d < nb; d++) nbatch *= bshape[d];
  if (ct_numel(out) == 0) return 0;
  if (k == 0) {
    memset(out->storage->data, 0, (size_t)ct_numel(out) * isz);
    return 0;
  }
  if (n > INT_MAX || m > INT_MAX || k > INT_MAX)
    return ct_errorf("matmul: a dimension above %d is beyond this BLAS's 32-bit sizes", INT_MAX);
  mm_operand a, b;
  mm_operand_init(&a, A, nb);
  mm_operand_init(&b, B, nb);
  bool b_shared = true;
  for (int d = 0; d < nb; d++)
    if (b.bst[d] && bshape[d] > 1) b_shared = false;
  int64_t fold = nbatch > 1 && b_shared ? mm_fold_rows(&a, bshape, nb) : 0;
  if (fold && nbatch * n <= INT_MAX && fold <= INT_MAX) { /* one GEMM over all batches' rows */
    if (b.lay.pack && !(b.scratch = malloc((size_t)(k * m) * isz))) return ct_errorf("matmul: out of memory");
    mm_layout la = {CblasNoTrans, fold, false};
    mm_gemm(dt, &la, &b.lay, nbatch * n, m, k, a.base, mm_matrix(&b, b.base, dt), out->storage->data);
    free(b.scratch);
    return 0;
  }
  if (a.lay.pack) a.scratch = malloc((size_t)(n * k) * isz);
  if (b.lay.pack) b.scratch = malloc((size_t)(k * m) * isz);
  if ((a.lay.pack && !a.scratch) || (b.lay.pack && !b.scratch)) {
    free(a.scratch), free(b.scratch);
    return ct_errorf("matmul: out of memory for a packing buffer");
  }
  int64_t idx[CT_MAX_DIMS] = {0};
  char *c = out->storage->data;
  for (int64_t bi = 0; bi < nbatch; bi++) {
    if (ct_interrupt_pending()) { /* Ctrl-C between the batch's GEMMs */
      free(a.scratch), free(b.scratch);
      return ct_interrupt_error("matmul");
    }
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < nb; d++) oa += idx[d] * a.bst[d], ob += idx[d] * b.bst[d];
    const void *pa = mm_matrix(&a, a.base + oa * (int64_t)isz, dt);
    const void *pb = mm_matrix(&b, b.base + ob * (int64_t)isz, dt);
    mm_gemm(dt, &a.lay, &b.lay, n, m, k, pa, pb, c + bi * n * m * (int64_t)isz);
    for (int d = nb - 1; d >= 0 && ++idx[d] == bshape[d]; d--) idx[d] = 0;
  }
  free(a.scratch), free(b.scratch);
  return 0;
}

