/* gradcheck.h: finite-difference gradient checks for any chalk op, in f64.
 *
 * A case names an op, a function building the op's output from N inputs, and the inputs' shapes
 * (or fixed tensors for index/target inputs). gc_check:
 *   1. makes a random f64 base tensor per input (a leaf requiring grad) and hands the function a
 *      view of it in the requested layout: contiguous, transposed (strided), narrowed (offset and
 *      row gaps) or expanded (a broadcast dim of stride 0);
 *   2. checks that the output equals the output computed from contiguous copies of the inputs;
 *   3. computes the analytical gradient of sum(out * w), w random, with ct_grad;
 *   4. compares it with central differences, eps 1e-6: (f(x+e) - f(x-e)) / 2e, summed against w
 *      per output element (so rounding does not cancel across a large loss);
 *   5. optionally (gradgrad) repeats 1-4 on the function (x, v) -> d(sum(out * v))/dx_k for each
 *      checked input k, built with create_graph: double backward, both in x (second derivatives)
 *      and in v (the gradient rule's own gradient, with non-contiguous upstream gradients).
 * Failure messages name the op, the layout, the input, the element and both values.
 * Invariant: gc_check releases every tensor it made, on every path (tests run under LSan). */
#ifndef CHALK_GRADCHECK_H
#define CHALK_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chalk.h"

#define GC_MAX_IN 6

typedef enum { GC_CONTIGUOUS, GC_TRANSPOSED, GC_NARROWED, GC_EXPANDED, GC_NLAYOUTS } gc_layout;
const char *gc_layout_name(gc_layout l);

/* Builds the op's output from in[0..nin-1] (borrowed). Returns a new reference, or NULL with the
 * error set. The function may be called many times; it must be deterministic (reseed chalk's RNG
 * inside it for random ops such as dropout). */
typedef ct_tensor *(*gc_fn)(ct_tensor *const *in, int nin, void *ctx);
/* Defines gc_fn NAME whose output is one expression of the inputs `in` and of `s`, the case's ctx
   as a const SPEC *: GC_SPEC_FN(pool_call, pool_spec, ct_max_pool2d(in[0], s->kernel, s->stride)) */
#define GC_SPEC_FN(NAME, SPEC, ...)                                                                \
  static ct_tensor *NAME(ct_tensor *const *in, int nin, void *ctx) {                              \
    (void)nin;                                                                                     \
    const SPEC *s = ctx;                                                                           \
    return __VA_ARGS__;                                                                            \
  }

typedef struct {
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  ct_tensor *fixed;      /* given as is and never checked (index or target tensors); borrowed */
  const double *values;  /* optional row-major values for this input instead of random ones */
  double lo, hi;         /* random values uniform in [lo, hi); [-2, 2) when both are 0 */
  double away;           /* keep |x| >= away (values off a kink at 0 for abs, relu, ...) */
  bool no_grad;          /* a float input that takes no gradient check */
  bool no_layouts;       /* always pass this input contiguous */
} gc_input;

typedef struct {
  const char *op;        /* name shown in failures */
  gc_fn fn;
  void *ctx;
  int nin;
  gc_input in[GC_MAX_IN];
  double eps, rtol, atol; /* 0: 1e-6, 1e-5, 1e-7 */
  uint64_t seed;          /* values and weights; failures print it */
  bool gradgrad;          /* also check double backward */
} gc_case;

/* One layout for every non-fixed input. 0 on success, -1 with msg filled. */
int gc_check(const gc_case *c, gc_layout layout, char *msg, size_t msgn);
/* Every layout in turn (and gradgrad when asked); stops at the first failure. */
int gc_check_all(const gc_case *c, char *msg, size_t msgn);

/* Fill in an input's shape: GC_IN_SHAPE(&c.in[0], 2, 3). */
#define GC_IN_SHAPE(inp, ...)                                                                      \
  gc_set_shape((inp), (int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
void gc_set_shape(gc_input *in, const int64_t *shape, int ndim);

/* For Criterion tests: fails the test with gc's message. */
#define GC_ASSERT(casep)                                                                           \
  do {                                                                                             \
    char gc_msg_[4096];                                                                            \
    int gc_rc_ = gc_check_all((casep), gc_msg_, sizeof gc_msg_);                                   \
    cr_assert(gc_rc_ == 0, "%s", gc_msg_);                                                         \
  } while (0)

#endif
