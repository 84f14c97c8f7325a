/* cublaslt_linear.c: the CUDA forward of the linear row: one cuBLASLt GEMM with the bias added in its epilogue.
 * libcublasLt is opened with dlopen at the first linear on a GPU, as cublas_dyn.c opens libcublas
 * (no program loads it at start). y [M, N] = x [M, K] W^T + b is, in cuBLASLt's column-major
 * terms, D [N, M] = op_T(W) [N, K] x^T [K, M] with the bias (length N = rows of D) broadcast over
 * columns: CUBLASLT_EPILOGUE_BIAS. True f32 (CUBLAS_COMPUTE_32F, no TF32), as the matmul op.
 * Invariants: descriptors, layouts and the heuristic's algorithm are cached per (device, M, N, K)
 * (host-side objects only; the bias pointer is set per call), the workspace is one device buffer
 * per device made at the first call, and everything runs on the device's stream, so the GEMM is
 * recorded into a CUDA Graph like any launch. Where cuBLASLt is missing or has no algorithm (f64,
 * say), the forward runs the matmul forward and the broadcast add into the output instead. */
#include <cublasLt.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "cuda_internal.h"

#define CT_STR2(x) #x
#define CT_STR(x) CT_STR2(x)

static struct {
  __typeof__(&cublasLtCreate) Create;
  __typeof__(&cublasLtMatmulDescCreate) DescCreate;
  __typeof__(&cublasLtMatmulDescDestroy) DescDestroy;
  __typeof__(&cublasLtMatmulDescSetAttribute) DescSet;
  __typeof__(&cublasLtMatrixLayoutCreate) LayoutCreate;
  __typeof__(&cublasLtMatrixLayoutDestroy) LayoutDestroy;
  __typeof__(&cublasLtMatmulPreferenceCreate) PrefCreate;
  __typeof__(&cublasLtMatmulPreferenceDestroy) PrefDestroy;
  __typeof__(&cublasLtMatmulPreferenceSetAttribute) PrefSet;
  __typeof__(&cublasLtMatmulAlgoGetHeuristic) Heuristic;
  __typeof__(&cublasLtMatmul) Matmul;
} lt;
static int lt_tried, lt_loaded;
static char lt_why[300];

static int lt_load(void) {
  if (lt_tried) return lt_loaded ? 0 : -1;
  lt_tried = 1;
  /* the soname of the headers' major version, else the unversioned name */
  void *lib = dlopen("libcublasLt.so." CT_STR(CUBLAS_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
  if (!lib && !(lib = dlopen("libcublasLt.so", RTLD_NOW | RTLD_LOCAL)))
    return snprintf(lt_why, sizeof lt_why, "%s", dlerror()), -1;
#define LT_SYM(field, fn)                                                                                              \
  if (!(*(void **)&lt.field = dlsym(lib, #fn))) {                                                                      \
    snprintf(lt_why, sizeof lt_why, "symbol %s not found in libcublasLt", #fn);                                        \
    dlclose(lib);                                                                                                      \
    return -1;                                                                                                         \
  }
  LT_SYM(Create, cublasLtCreate)
  LT_SYM(DescCreate, cublasLtMatmulDescCreate)
  LT_SYM(DescDestroy, cublasLtMatmulDescDestroy)
  LT_SYM(DescSet, cublasLtMatmulDescSetAttribute)
  LT_SYM(LayoutCreate, cublasLtMatrixLayoutCreate)
  LT_SYM(LayoutDestroy, cublasLtMatrixLayoutDestroy)
  LT_SYM(PrefCreate, cublasLtMatmulPreferenceCreate)
  LT_SYM(PrefDestroy, cublasLtMatmulPreferenceDestroy)
  LT_SYM(PrefSet, cublasLtMatmulPreferenceSetAttribute)
  LT_SYM(Heuristic, cublasLtMatmulAlgoGetHeuristic)
  LT_SYM(Matmul, cublasLtMatmul)
#undef LT_SYM
  lt_loaded = 1;
  return 0;
}

#define LT_WORKSPACE ((size_t)4 << 20)
static cublasLtHandle_t handles[CT_CUDA_MAX_DEVICES];
static void *workspace[CT_CUDA_MAX_DEVICES];

typedef struct {
  int dev;
  int64_t m, n, k;
  bool ok; /* false: cuBLASLt has no algorithm for this shape (use the fallback) */
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
} lt_plan;
#define NPLANS 32
static lt_plan plans[NPLANS];
static int nplans, next_evict;

static void plan_free(lt_plan *p) {
  if (p->desc) lt.DescDestroy(p->desc);
  if (p->la) lt.LayoutDestroy(p->la);
  if (p->lb) lt.LayoutDestroy(p->lb);
  if (p->lc) lt.LayoutDestroy(p->lc);
  memset(p, 0, sizeof *p);
}

/* The plan of y[m, n] = x[m, k] W[n, k]^T + b on dev, made (heuristic included) the first time. */
static lt_plan *plan_for(int dev, int64_t m, int64_t n, int64_t k) {
  for (int i = 0; i < nplans; i++)
    if (plans[i].dev == dev && plans[i].m == m && plans[i].n == n && plans[i].k == k) return &plans[i];
  lt_plan *p = nplans < NPLANS ? &plans[nplans++] : &plans[next_evict++ % NPLANS];
  plan_free(p);
  p->dev = dev, p->m = m, p->n = n, p->k = k;
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
  cudaDataType_t bt = CUDA_R_32F;
  size_t ws = LT_WORKSPACE;
  cublasLtMatmulPreference_t pref = NULL;
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  /* D [n, m] col-major = op_T(W: [k, n] col-major, ld k) x (x: [k, m] col-major, ld k) */
  p->ok =
      lt.DescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
      lt.DescSet(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
      lt.DescSet(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
      lt.DescSet(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS &&
      lt.DescSet(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt) == CUBLAS_STATUS_SUCCESS &&
      lt.LayoutCreate(&p->la, CUDA_R_32F, (uint64_t)k, (uint64_t)n, k) == CUBLAS_STATUS_SUCCESS &&
      lt.LayoutCreate(&p->lb, CUDA_R_32F, (uint64_t)k, (uint64_t)m, k) == CUBLAS_STATUS_SUCCESS &&
      lt.LayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)n, (uint64_t)m, n) == CUBLAS_STATUS_SUCCESS &&
      lt.PrefCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
      lt.PrefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == CUBLAS_STATUS_SUCCESS &&
      lt.Heuristic(handles[dev], p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found) == CUBLAS_STATUS_SUCCESS &&
      found > 0;
  if (pref) lt.PrefDestroy(pref);
  if (p->ok) p->algo = res.algo;
  return p;
}

/* out = x W^T + b by the matmul forward and the add forward (when cuBLASLt cannot). */
static int linear_fallback(ct_tensor *out, ct_tensor *x, ct_tensor *w, ct_tensor *b) {
  ct_tensor *wt = ct_transpose(w, 0, 1);
  if (!wt) return -1;
  ct_tensor *mm[2] = {x, wt};
  int rc = ct_cuda_forward[CT_OP_matmul](out, mm, 2, NULL);
  ct_release(wt);
  ct_tensor *add[2] = {out, b};
  return rc ? rc : ct_cuda_forward[CT_OP_add](out, add, 2, NULL);
}

static int linear_impl(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  int dev = ct_cu_index(out);
  cudaStream_t s = ct_cu_stream(dev);
  if (!s) return -1;
  int64_t K = in[1]->shape[1], N = in[1]->shape[0], M = K ? ct_numel(in[0]) / K : 0;
  ct_tensor *x = ct_contiguous(in[0]), *w = x ? ct_contiguous(in[1]) : NULL, *b = w ? ct_contiguous(in[2]) : NULL;
  int rc = b ? 0 : -1;
  bool done = false;
  if (!rc && out->dtype == CT_F32 && M > 0 && N > 0 && K > 0 && M < (1LL << 31) && lt_load() == 0) {
    if (!handles[dev] && lt.Create(&handles[dev]) != CUBLAS_STATUS_SUCCESS) handles[dev] = NULL;
    if (handles[dev] && !workspace[dev] && cudaMalloc(&workspace[dev], LT_WORKSPACE) != cudaSuccess) {
      (void)cudaGetLastError();
      workspace[dev] = NULL;
    }
    lt_plan *p = handles[dev] && workspace[dev] ? plan_for(dev, M, N, K) : NULL;
    if (p && p->ok) {
      const void *bias = ct_data_ptr(b);
      const float one = 1, zero = 0;
      cublasStatus_t st = lt.DescSet(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
      if (st == CUBLAS_STATUS_SUCCESS)
        st = lt.Matmul(handles[dev], p->desc, &one, ct_data_ptr(w), p->la, ct_data_ptr(x), p->lb, &zero,
                       ct_data_ptr(out), p->lc, ct_data_ptr(out), p->lc, &p->algo, workspace[dev], LT_WORKSPACE, s);
      if (st != CUBLAS_STATUS_SUCCESS)
        rc = ct_errorf("linear: cuBLASLt matmul with the bias epilogue failed with status %d (M=%lld N=%lld K=%lld)",
                       (int)st, (long long)M, (long long)N, (long long)K);
      done = true;
    }
  }
  if (!rc && !done) rc = linear_fallback(out, x, w, b);
  ct_release(x), ct_release(w), ct_release(b);
  return rc;
}

static int linear_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  int dev = ct_cu_index(out);
  if (!ct_cu_stream(dev)) return -1;
  ct_cu_op_begin(dev);
  return ct_cu_op_end(out, dev, linear_impl(out, in, nin, a), "linear");
}

void ct_cu_register_linear(void) { ct_cuda_forward[CT_OP_linear] = linear_cuda; }
