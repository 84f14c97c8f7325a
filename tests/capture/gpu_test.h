/* gpu_test.h: the start every GPU capture test shares: skip without a GPU, else name the device. */
#ifndef CHALK_TESTS_GPU_TEST_H
#define CHALK_TESTS_GPU_TEST_H

#include <stdbool.h>
#include <stdio.h>

#include "chalk.h"

/* false (after printing "TEST: SKIPPED: why") when there is no GPU; else puts device 0's name in
   name[0..n) and prints "TEST on NAME". */
static inline bool gpu_test_start(const char *test, char *name, size_t n) {
  if (!ct_cuda_available()) {
    printf("%s: SKIPPED: %s\n", test, ct_cuda_unavailable_reason());
    return false;
  }
  ct_cuda_device_name(0, name, n);
  printf("%s on %s\n", test, name);
  return true;
}

#endif
