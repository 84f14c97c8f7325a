/* blas_env.c: picks OpenBLAS's kernel family when its own CPU detection falls back to a generic
 * core (seen on VMs whose CPUID model it does not know: "Prescott", 4-6x slower GEMM), by
 * re-executing chalk once with OPENBLAS_CORETYPE set from the features the CPU reports.
 * Runs before OpenBLAS is used; an explicit OPENBLAS_CORETYPE from the user always wins. */
#include <stdlib.h>
#include <unistd.h>

#include "repl.h"

void repl_tune_blas(char **argv) {
  if (getenv("OPENBLAS_CORETYPE") || getenv("CHALK_BLAS_TUNED")) return;
  const char *core = NULL;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
  setenv("CHALK_BLAS_TUNED", "1", 1); /* never loop, even if exec fails */
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv); /* on failure, carry on with OpenBLAS's own choice */
}
