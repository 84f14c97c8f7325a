/* blas.h: the cuBLAS handle of each device (created on first use, bound to the device's stream),
 * shared by the matmul op and the ladder's cuBLAS rungs, and the cuBLAS functions themselves,
 * reached through a table (ct_cublas) that cublas_dyn.c fills with dlopen on first use.
 * Invariants: libcublas (and libcublasLt, ~0.1 s of relocations) is never loaded at program start,
 * only by the first ct_cu_blas() call, so CPU-only runs and machines without cuBLAS do not pay for
 * it; every ct_cublas.* call happens on a handle ct_cu_blas() returned, hence after the table is
 * filled. The types come from cublas_v2.h (a header only: no link dependency). */
#ifndef CHALK_KERNELS_BLAS_H
#define CHALK_KERNELS_BLAS_H

#include <cublas_v2.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The cuBLAS functions kernels/ uses; each field has the type of the function it names
   (cublas_v2.h maps cublasCreate to cublasCreate_v2 and so on; the table follows). */
typedef struct {
  __typeof__(&cublasCreate) Create;
  __typeof__(&cublasDestroy) Destroy;
  __typeof__(&cublasSetStream) SetStream;
  __typeof__(&cublasSetMathMode) SetMathMode;
  __typeof__(&cublasSgemm) Sgemm;
  __typeof__(&cublasSgemmStridedBatched) SgemmStridedBatched;
  __typeof__(&cublasDgemmStridedBatched) DgemmStridedBatched;
  /* spelled out: C++ sees cublasGemmEx overloaded (an inline wrapper taking cudaDataType) */
  cublasStatus_t (*GemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                           const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                           cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  __typeof__(&cublasGetStatusString) GetStatusString;
} ct_cublas_api;
extern ct_cublas_api ct_cublas;

/* Opens libcublas and fills ct_cublas the first time; 0, or -1 with the error set (saying which
   library or symbol was missing). Later calls return the first answer. */
int ct_cublas_load(void);

/* The device's handle (loading cuBLAS first if need be), or NULL with the error set. */
cublasHandle_t ct_cu_blas(int index);
/* Turns a failed cuBLAS status into an error naming what failed; 0 on success. */
int ct_cu_blas_check(cublasStatus_t st, const char *what);

#ifdef __cplusplus
}
#endif
#endif
