/* matmul.c: the CUDA forward of matmul ((..., n, k) @ (..., k, m), broadcast batch dims; see
 * core/ops_matmul.c) through cuBLAS, in true f32 (no TF32) and f64.
 * Row-major C = A B is computed as column-major C^T = B^T A^T. An operand whose last or
 * second-to-last stride is 1 goes to cuBLAS in place (a transposed view as op T); batch dims are
 * folded into one cuBLAS batch with a constant stride wherever the strides allow (broadcast dims
 * are stride 0, never copied), and the remaining outer batch dims are looped. When B has no batch
 * and A's batches are evenly spaced rows, the whole product is one GEMM, as on the CPU.
 * Invariants: only operands that fit neither layout are made contiguous first; every cuBLAS
 * status is checked; sizes above INT_MAX are a clear error. */
#include <limits.h>
#include <string.h>

#include "blas.h"
#include "cuda_internal.h"

static cublasHandle_t handles[CT_CUDA_MAX_DEVICES];

int ct_cu_blas_check(cublasStatus_t st, const char *what) {
  if (st == CUBLAS_STATUS_SUCCESS) return 0;
  if (st == CUBLAS_STATUS_ALLOC_FAILED) return ct_errorf("%s: out of memory on cuda (cuBLAS could not allocate)", what);
  return ct_errorf("%s: cuBLAS error %s (%d)", what, ct_cublas.GetStatusString(st), (int)st);
}

cublasHandle_t ct_cu_blas(int index) {
  cudaStream_t s = ct_cu_stream(index);
  if (!s || ct_cublas_load()) return NULL;
  if (!handles[index]) {
    cublasHandle_t h;
    if (ct_cu_blas_check(ct_cublas.Create(&h), "cublasCreate")) return NULL;
    ct_cublas.SetMathMode(h, CUBLAS_DEFAULT_MATH);
    handles[index] = h;
  }
  if (ct_cu_blas_check(ct_cublas.SetStream(handles[index], s), "cublasSetStream")) return NULL;
  return handles[index];
}

/* How a rows x cols matrix with element strides (rs, cs) is seen by column-major cuBLAS, as the
   operand that must read as its transpose (cols x rows): op N with ld = rs when rows are
   contiguous, op T with ld = cs when columns are; else it must be packed. */
typedef struct {
  cublasOperation_t op;
  int64_t ld;
  bool ok;
} mm_layout;

static mm_layout layout_of(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  int64_t need_n = cols > 1 ? cols : 1, need_t = rows > 1 ? rows : 1;
  if (cols == 1 || cs == 1) {
    int64_t ld = rows == 1 ? need_n : rs;
    if (ld >= need_n) return (mm_layout){CUBLAS_OP_N, ld, true};
  }
  if (rows == 1 || rs == 1) {
    int64_t ld = cols == 1 ? need_t : cs;
    if (ld >= need_t) return (mm_layout){CUBLAS_OP_T, ld, true};
  }
  return (mm_layout){CUBLAS_OP_N, need_n, false};
}

static int gemm(cublasHandle_t h, ct_dtype dt, mm_layout la, mm_layout lb, int64_t n, int64_t m, int64_t k,
                const char *a, int64_t sa, const char *b, int64_t sb, char *c, int64_t sc, int64_t batch) {
  if (n > INT_MAX || m > INT_MAX || k > INT_MAX || la.ld > INT_MAX || lb.ld > INT_MAX || batch > INT_MAX)
    return ct_errorf("matmul: a size above %d is beyond cuBLAS's 32-bit sizes", INT_MAX);
  cublasStatus_t st;
  if (dt == CT_F32) {
    const float one = 1, zero = 0;
    st = ct_cublas.SgemmStridedBatched(h, lb.op, la.op, (int)m, (int)n, (int)k, &one, (const float *)b, (int)lb.ld, sb,
                                   (const float *)a, (int)la.ld, sa, &zero, (float *)c, (int)m, sc, (int)batch);
  } else {
    const double one = 1, zero = 0;
    st = ct_cublas.DgemmStridedBatched(h, lb.op, la.op, (int)m, (int)n, (int)k, &one, (const double *)b, (int)lb.ld, sb,
                                   (const double *)a, (int)la.ld, sa, &zero, (double *)c, (int)m, sc, (int)batch);
  }
  return ct_cu_blas_check(st, "matmul (cuBLAS gemm)");
}

/* Batch strides of t broadcast to the output's nb batch dims (0 where broadcast). */
static void batch_strides(const ct_tensor *t, const int64_t *bshape, int nb, int64_t *bst) {
  int off = nb - (t->ndim - 2);
  for (int d = 0; d < nb; d++) {
    int td = d - off;
    bst[d] = (td < 0 || t->shape[td] == 1 || bshape[d] == 1) ? 0 : t->stride[td];
  }
}

static int matmul_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *at) {
  (void)nin, (void)at;
  int dev = ct_cu_index(out);
  ct_dtype dt = out->dtype;
  if (dt != CT_F32 && dt != CT_F64) return ct_errorf("matmul: no CUDA kernel for dtype %s", ct_dtype_name(dt));
  size_t isz = ct_dtype_size(dt);
  int nb = out->ndim - 2;
  const int64_t *bshape = out->shape;
  int64_t n = out->shape[nb], m = out->shape[nb + 1], k = in[0]->shape[in[0]->ndim - 1];
  if (ct_numel(out) == 0) return 0;
  cudaStream_t s = ct_cu_stream(dev);
  if (!s) return -1;
  if (k == 0) return ct_cu_check(cudaMemsetAsync(ct_data_ptr(out), 0, (size_t)ct_numel(out) * isz, s), "matmul");
  cublasHandle_t h = ct_cu_blas(dev);
  if (!h) return -1;

  ct_tensor *A = in[0], *B = in[1], *pa = NULL, *pb = NULL;
  mm_layout la = layout_of(n, k, A->stride[A->ndim - 2], A->stride[A->ndim - 1]);
  mm_layout lb = layout_of(k, m, B->stride[B->ndim - 2], B->stride[B->ndim - 1]);
  if (!la.ok) {
    if (!(pa = ct_contiguous(A))) return -1;
    A = pa;
    la = layout_of(n, k, A->stride[A->ndim - 2], A->stride[A->ndim - 1]);
  }
  if (!lb.ok) {
    if (!(pb = ct_contiguous(B))) {
      ct_release(pa);
      return -1;
    }
    B = pb;
    lb = layout_of(k, m, B->stride[B->ndim - 2], B->stride[B->ndim - 1]);
  }
  const char *a = ct_data_ptr(A), *b = ct_data_ptr(B);
  char *c = ct_data_ptr(out);
  int64_t abst[CT_MAX_DIMS] = {0}, bbst[CT_MAX_DIMS] = {0};
  batch_strides(A, bshape, nb, abst);
  batch_strides(B, bshape, nb, bbst);
  int64_t nbatch = 1;
  for (int d = 0; d < nb; d++) nbatch *= bshape[d];
  int rc = 0;

  /* B shared by every batch and A's batches evenly spaced rows: one GEMM of nbatch*n rows */
  bool b_shared = true;
  for (int d = 0; d < nb; d++)
    if (bbst[d]) b_shared = false;
  int64_t rs = A->stride[A->ndim - 2];
  if (nbatch > 1 && b_shared && la.op == CUBLAS_OP_N) {
    int64_t stride = n > 1 ? rs : 0, span = n > 1 ? n : 0;
    bool fold = true;
    for (int d = nb - 1; d >= 0 && fold; d--) {
      if (bshape[d] == 1) continue;
      if (!span) stride = abst[d], span = bshape[d];
      else if (abst[d] != stride * span) fold = false;
      else span *= bshape[d];
    }
    if (fold && stride >= (k > 1 ? k : 1)) {
      mm_layout lf = {CUBLAS_OP_N, stride, true};
      rc = gemm(h, dt, lf, lb, nbatch * n, m, k, a, 0, b, 0, c, 0, 1);
      ct_release(pa), ct_release(pb);
      return rc;
    }
  }

  /* fold the longest suffix of batch dims into one strided batch; loop over the rest */
  int first = nb; /* batch dims [first, nb) are folded */
  int64_t sa = 0, sb = 0, cnt = 1;
  for (int d = nb - 1; d >= 0; d--) {
    if (bshape[d] == 1) {
      first = d;
      continue;
    }
    if (cnt == 1) {
      sa = abst[d], sb = bbst[d], cnt = bshape[d], first = d;
    } else if (abst[d] == sa * cnt && bbst[d] == sb * cnt) {
      cnt *= bshape[d];
      first = d;
    } else {
      break;
    }
  }
  /* after folding, sa/sb are the per-batch strides of the flattened suffix */
  int64_t outer = 1;
  for (int d = 0; d < first; d++) outer *= bshape[d];
  int64_t idx[CT_MAX_DIMS] = {0};
  for (int64_t o = 0; o < outer && !rc; o++) {
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < first; d++) oa += idx[d] * abst[d], ob += idx[d] * bbst[d];
    rc = gemm(h, dt, la, lb, n, m, k, a + oa * (int64_t)isz, sa, b + ob * (int64_t)isz, sb,
              c + o * cnt * n * m * (int64_t)isz, n * m, cnt);
    for (int d = first - 1; d >= 0 && ++idx[d] == bshape[d]; d--) idx[d] = 0;
  }
  ct_release(pa), ct_release(pb);
  return rc;
}

static int matmul_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  int dev = ct_cu_index(out);
  if (!ct_cu_stream(dev)) return -1;
  ct_cu_op_begin(dev);
  int rc = matmul_impl(out, in, nin, a);
  return ct_cu_op_end(out, dev, rc, "matmul");
}

void ct_cu_register_matmul(void) { ct_cuda_forward[CT_OP_matmul] = matmul_cuda; }

int ct_cu_blas_shutdown(void) {
  for (int i = 0; i < CT_CUDA_MAX_DEVICES; i++)
    if (handles[i]) {
      ct_cublas.Destroy(handles[i]);
      handles[i] = NULL;
    }
  return 0;
}
