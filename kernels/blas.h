/* blas.h: the cuBLAS handle of each device (created on first use, bound to the device's stream),
 * shared by the matmul op and the ladder's cuBLAS rungs. */
#ifndef CHALK_KERNELS_BLAS_H
#define CHALK_KERNELS_BLAS_H

#include <cublas_v2.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The device's handle, or NULL with the error set. */
cublasHandle_t ct_cu_blas(int index);
/* Turns a failed cuBLAS status into an error naming what failed; 0 on success. */
int ct_cu_blas_check(cublasStatus_t st, const char *what);

#ifdef __cplusplus
}
#endif
#endif
