/* device.c: library initialisation and the questions about CUDA devices, answered through hooks
 * that kernels/ defines. Invariants: libchalk built without kernels/ (no nvcc) still links and
 * answers "no CUDA" (the hooks are weak references, NULL when absent); built with kernels/
 * (CT_WITH_CUDA, set by kernels/kernels.mk) the references are strong so that the archive
 * member defining them is linked in; nothing here touches CUDA before ct_init(). */
#include <stdio.h>

#include "tensor/tensor_impl.h"

#ifdef CT_WITH_CUDA
#define CT_CUDA_HOOK
#define CT_CUDA_BUILT true
#else
#define CT_CUDA_HOOK __attribute__((weak))
#define CT_CUDA_BUILT (ct_cuda_register != NULL)
#endif

extern int ct_cuda_register(void) CT_CUDA_HOOK;
extern int ct_cuda_backend_count(void) CT_CUDA_HOOK;
extern const char *ct_cuda_backend_reason(void) CT_CUDA_HOOK;
extern int ct_cuda_backend_synchronize(void) CT_CUDA_HOOK;
extern int ct_cuda_backend_empty_cache(void) CT_CUDA_HOOK;
extern int ct_cuda_backend_memory(int index, int64_t *allocated, int64_t *reserved) CT_CUDA_HOOK;
extern int ct_cuda_backend_device_name(int index, char *buf, size_t n) CT_CUDA_HOOK;

static bool initialised;

int ct_init(void) {
  if (initialised) return 0;
  initialised = true;
  if (CT_CUDA_BUILT) ct_cuda_register();
  return 0;
}

int ct_cuda_device_count(void) {
  ct_init();
  return CT_CUDA_BUILT ? ct_cuda_backend_count() : 0;
}

bool ct_cuda_available(void) { return ct_cuda_device_count() > 0; }

const char *ct_cuda_unavailable_reason(void) {
  ct_init();
  if (!CT_CUDA_BUILT) return "this libchalk was built without CUDA (no nvcc at build time)";
  const char *r = ct_cuda_backend_reason();
  return r && *r ? r : NULL;
}

int ct_cuda_synchronize(void) {
  if (!ct_cuda_available())
    return ct_errorf("cuda.synchronize: CUDA is not available (%s)", ct_cuda_unavailable_reason());
  return ct_cuda_backend_synchronize();
}

int ct_cuda_empty_cache(void) { return ct_cuda_available() ? ct_cuda_backend_empty_cache() : 0; }

int ct_cuda_memory_info(int index, int64_t *allocated, int64_t *reserved) {
  if (!ct_cuda_available())
    return ct_errorf("cuda.memory: CUDA is not available (%s)", ct_cuda_unavailable_reason());
  return ct_cuda_backend_memory(index, allocated, reserved);
}

int ct_cuda_device_name(int index, char *buf, size_t n) {
  if (!ct_cuda_available())
    return ct_errorf("cuda.device_name: CUDA is not available (%s)", ct_cuda_unavailable_reason());
  return ct_cuda_backend_device_name(index, buf, n);
}
