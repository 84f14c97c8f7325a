/* ops_matmul.c: matrix multiplication with torch.matmul semantics, on the CPU through OpenBLAS.
 *
 * The op works on (..., n, k) @ (..., k, m) -> (..., n, m) with broadcast batch dims; ct_matmul
 * turns 1-D operands into matrices with unsqueeze/squeeze views so that autograd sees them.
 * Invariants: an operand goes to BLAS in place whenever its last or second-to-last stride is 1
 * (a transposed view goes as CblasTrans with its column stride as leading dimension); only a
 * matrix with neither stride 1 (or stride-0 rows) is packed, one matrix at a time, and a packed
 * matrix shared by consecutive batches is packed once. Broadcast batch dims (stride 0) are never
 * copied. When the right operand has no batch and the left's batches are evenly spaced rows, the
 * whole batch is one GEMM. Only f32 and f64 are supported; integers are a clear error. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/grad_expr.h"
#include "ops/optable.h"

/* ---- shape rule ------------------------------------------------------------------------------ */

static int mm_check_dtypes(const ct_tensor *a, const ct_tensor *b) {
  if (a->dtype != b->dtype)
    return ct_errorf("matmul: dtype mismatch: %s and %s (convert one with :to(\"%s\"))", ct_dtype_name(a->dtype),
                     ct_dtype_name(b->dtype), ct_dtype_name(ct_promote(a->dtype, b->dtype)));
  if (a->dtype != CT_F32 && a->dtype != CT_F64)
    return ct_errorf("matmul: dtype %s is not supported (matmul runs in f32 or f64; convert with :to(\"f32\"))",
                     ct_dtype_name(a->dtype));
  return 0;
}

/* Broadcast batch shape of a[..., n, k] and b[..., k, m] (both at least 2-D) into m. */
static int mm_batch_shape(const ct_tensor *a, const ct_tensor *b, ct_meta *m) {
  int na = a->ndim - 2, nb = b->ndim - 2, nd = na > nb ? na : nb;
  m->ndim = nd;
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - na), db = d - (nd - nb);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char s1[160], s2[160];
      return ct_errorf("matmul: batch dims of shapes %s and %s cannot be broadcast together (%lld vs %lld)",
                       ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(b->shape, b->ndim, s2, sizeof s2),
                       (long long)sa, (long long)sb);
    }
    m->shape[d] = sa == 1 ? sb : sa;
  }
  return 0;
}

static int mm_k_error(const ct_tensor *a, const ct_tensor *b, int64_t ka, int64_t kb) {
  char s1[160], s2[160];
  return ct_errorf("matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                   ct_shape_str(a->shape, a->ndim, s1, sizeof s1), ct_shape_str(b->shape, b->ndim, s2, sizeof s2),
                   (long long)ka, (long long)kb);
}

static int matmul_shape(ct_tensor *const *in, int nin, const ct_attrs *at, ct_meta *m) {
  (void)nin, (void)at;
  const ct_tensor *a = in[0], *b = in[1];
  if (mm_check_dtypes(a, b)) return -1;
  if (a->ndim < 2 || b->ndim < 2)
    return ct_errorf("matmul: the op needs two operands of at least 2 dims (ct_matmul handles 1-D)");
  int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim - 2];
  if (ka != kb) return mm_k_error(a, b, ka, kb);
  if (mm_batch_shape(a, b, m)) return -1;
  m->shape[m->ndim++] = a->shape[a->ndim - 2];
  m->shape[m->ndim++] = b->shape[b->ndim - 1];
  m->dtype = a->dtype;
  return 0;
}

/* ---- CPU forward ------------------------------------------------------------------------------ */

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

static int matmul_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *at) {
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

/* ---- gradient and cost ------------------------------------------------------------------------ */

static bool mm_has_batch(const ct_tensor *t) {
  for (int d = 0; d < t->ndim - 2; d++)
    if (t->shape[d] != 1) return true;
  return false;
}

/* gA = g @ B^T, gB = A^T @ g, each summed back to its input's shape where batch dims broadcast.
   When B has no batch of its own, gB folds A's batches into rows: flatten(A)^T @ flatten(g). */
static int matmul_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  ct_tensor *A = n->in[0], *B = n->in[1];
  if (ct_node_needs_grad(n, 0)) {
    gin[0] = O_SUM_TO(O_MATMUL(R(g), ct_transpose(B, -1, -2)), CT_SHAPE(A));
    if (!gin[0]) return -1;
  }
  if (ct_node_needs_grad(n, 1)) {
    /* B a transposed view of a row-major matrix (nn.Linear's x @ w.T): gB = (g^T A)^T has B's
       layout, so the transpose's own gradient, hence the weight's, comes out contiguous and is
       not copied again when it is accumulated (as A^T g it was, 13% of an MLP step). */
    bool b_colmajor = B->ndim == 2 && B->stride[0] == 1 && B->stride[1] != 1 && B->shape[0] > 1 && B->shape[1] > 1;
    int64_t fa[2] = {-1, A->shape[A->ndim - 1]}, fg[2] = {-1, g->shape[g->ndim - 1]};
    if (b_colmajor) {
      gin[1] = O_TRANSPOSE(O_MATMUL(O_TRANSPOSE(ct_reshape(g, fg, 2), 0, 1), ct_reshape(A, fa, 2)), 0, 1);
    } else if (!mm_has_batch(B) && mm_has_batch(A)) {
      gin[1] = O_RESHAPE(O_MATMUL(O_TRANSPOSE(ct_reshape(A, fa, 2), 0, 1), ct_reshape(g, fg, 2)), CT_SHAPE(B));
    } else {
      gin[1] = O_SUM_TO(O_MATMUL(ct_transpose(A, -1, -2), R(g)), CT_SHAPE(B));
    }
    if (!gin[1]) return -1;
  }
  return 0;
}

static void matmul_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *at, double *flops,
                        double *bytes) {
  (void)nin, (void)at;
  double k = (double)in[0]->shape[in[0]->ndim - 1];
  double isz = (double)ct_dtype_size(out->dtype);
  *flops = 2.0 * (double)ct_numel(out) * k; /* 2 * n * k * m * batch */
  *bytes = isz * (double)(ct_numel(in[0]) + ct_numel(in[1]) + ct_numel(out));
}

const ct_opdef ct_op_matmul = {"matmul", 2, 0, matmul_shape, matmul_cpu, matmul_backward, matmul_cost};

/* ---- public entry point: torch.matmul's 1-D rules around the batched op ----------------------- */

static ct_tensor *mm_fail(const ct_tensor *a, const ct_tensor *b) {
  char msg[700], d1[200], d2[200];
  snprintf(msg, sizeof msg, "%s", ct_last_error());
  ct_errorf("%s (inputs: %s, %s)", msg, ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2));
  return NULL;
}

ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b) {
  if (!a || !b) return ct_errorf("matmul: missing operand"), NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    ct_errorf("matmul: both operands need at least 1 dim (use mul for a scalar)");
    return mm_fail(a, b);
  }
  if (mm_check_dtypes(a, b)) return mm_fail(a, b);
  int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
  if (ka != kb) {
    mm_k_error(a, b, ka, kb);
    return mm_fail(a, b);
  }
  bool a1 = a->ndim == 1, b1 = b->ndim == 1;
  ct_tensor *A = a1 ? ct_unsqueeze(a, 0) : ct_retain(a);
  ct_tensor *B = b1 ? ct_unsqueeze(b, -1) : ct_retain(b);
  ct_meta bm;
  if (A && B && mm_batch_shape(A, B, &bm)) {
    ct_release(A), ct_release(B);
    return mm_fail(a, b);
  }
  ct_tensor *in[2] = {A, B};
  ct_tensor *r = A && B ? ct_op_run(CT_OP_matmul, in, 2, NULL) : NULL;
  ct_release(A), ct_release(B);
  if (r && b1) {
    ct_tensor *s = ct_squeeze(r, r->ndim - 1);
    ct_release(r);
    r = s;
  }
  if (r && a1) {
    ct_tensor *s = ct_squeeze(r, b1 ? r->ndim - 1 : r->ndim - 2);
    ct_release(r);
    r = s;
  }
  return r;
}
