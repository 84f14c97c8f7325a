/* cublas_dyn.c: fills the cuBLAS table (blas.h) by dlopen-ing libcublas at the first cuBLAS use.
 * Linking -lcublas made every program built on libchalk load libcublas and libcublasLt at start
 * (0.1-0.2 s of dynamic relocations before main, GPU or not); now a CPU-only run never opens them.
 * Invariants: the library is looked up by its soname for the major version the headers describe
 * (then the unversioned name), through the usual search path, which includes the CUDA lib64
 * directory in the RUNPATH that kernels.mk sets; the outcome of the first attempt is kept, and a
 * failure is reported each time as "cuBLAS is not available: <why>". */
#include <dlfcn.h>
#include <stdio.h>

#include "blas.h"
#include "cuda_internal.h"

#define CT_STR2(x) #x
#define CT_STR(x) CT_STR2(x) /* expands first: cublasCreate names the symbol cublasCreate_v2 */

ct_cublas_api ct_cublas;

static int tried, loaded;
static char why[300];

static int resolve(void *lib) {
#define CT_CUBLAS_SYM(field, fn)                                                                   \
  do {                                                                                             \
    *(void **)&ct_cublas.field = dlsym(lib, CT_STR(fn));                                           \
    if (!ct_cublas.field) {                                                                        \
      snprintf(why, sizeof why, "symbol %s not found in libcublas", CT_STR(fn));                  \
      return -1;                                                                                   \
    }                                                                                              \
  } while (0)
  CT_CUBLAS_SYM(Create, cublasCreate);
  CT_CUBLAS_SYM(Destroy, cublasDestroy);
  CT_CUBLAS_SYM(SetStream, cublasSetStream);
  CT_CUBLAS_SYM(SetMathMode, cublasSetMathMode);
  CT_CUBLAS_SYM(Sgemm, cublasSgemm);
  CT_CUBLAS_SYM(SgemmStridedBatched, cublasSgemmStridedBatched);
  CT_CUBLAS_SYM(DgemmStridedBatched, cublasDgemmStridedBatched);
  CT_CUBLAS_SYM(GemmEx, cublasGemmEx);
  CT_CUBLAS_SYM(GetStatusString, cublasGetStatusString);
#undef CT_CUBLAS_SYM
  return 0;
}

int ct_cublas_load(void) {
  if (!tried) {
    tried = 1;
    static const char *const names[] = {"libcublas.so." CT_STR(CUBLAS_VER_MAJOR), "libcublas.so", NULL};
    void *lib = NULL;
    for (int i = 0; names[i] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char *e = dlerror();
      snprintf(why, sizeof why, "%s", e ? e : "libcublas not found");
    } else if (resolve(lib)) {
      ct_cublas = (ct_cublas_api){0};
      dlclose(lib);
    } else {
      loaded = 1;
    }
  }
  return loaded ? 0 : ct_errorf("cuBLAS is not available: %s", why);
}
