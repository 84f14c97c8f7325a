/* test_gradcheck.c: the gradient checker itself must fail on wrong gradients and on forwards that
 * ignore strides, naming the op, the input and the element; and pass on right ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* x * detach(x): forward is x^2 but the analytical gradient is x, not 2x */
static ct_tensor *wrong_square(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  ct_tensor *d = ct_detach(in[0]);
  ct_tensor *r = ct_mul(in[0], d);
  ct_release(d);
  return r;
}

static ct_tensor *right_square(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  return ct_mul(in[0], in[0]);
}

/* Reads the input's storage as if it were contiguous: right only for contiguous inputs. */
static ct_tensor *stride_blind_copy(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  const ct_tensor *x = in[0];
  const double *p = (const double *)x->storage->data + x->offset;
  ct_tensor *r = ct_from_doubles(p, x->shape, x->ndim, CT_F64, ct_cpu());
  /* r + (x - detach(x)): the value of r, differentiable with gradient 1 */
  ct_tensor *d = ct_detach(in[0]), *z = ct_sub(in[0], d), *y = r && z ? ct_add(r, z) : NULL;
  ct_release(r), ct_release(d), ct_release(z);
  return y;
}

Test(gradcheck, catches_a_wrong_gradient) {
  gc_case c = {.op = "wrong_square", .fn = wrong_square, .nin = 1, .seed = 1};
  GC_IN_SHAPE(&c.in[0], 3, 4);
  char msg[4096];
  cr_assert_neq(gc_check(&c, GC_CONTIGUOUS, msg, sizeof msg), 0, "a wrong gradient passed");
  cr_assert(strstr(msg, "wrong_square") && strstr(msg, "input 1") && strstr(msg, "analytical") &&
                strstr(msg, "numerical") && strstr(msg, "element"),
            "message names op, input, element and both values: %s", msg);
}

Test(gradcheck, passes_a_right_gradient_in_every_layout) {
  gc_case c = {.op = "square", .fn = right_square, .nin = 1, .seed = 2, .gradgrad = true};
  GC_IN_SHAPE(&c.in[0], 3, 4, 2);
  GC_ASSERT(&c);
}

Test(gradcheck, catches_a_forward_that_ignores_strides) {
  gc_case c = {.op = "stride_blind", .fn = stride_blind_copy, .nin = 1, .seed = 3};
  GC_IN_SHAPE(&c.in[0], 3, 4);
  char msg[4096];
  cr_assert_eq(gc_check(&c, GC_CONTIGUOUS, msg, sizeof msg), 0, "contiguous is right: %s", msg);
  cr_assert_neq(gc_check(&c, GC_TRANSPOSED, msg, sizeof msg), 0, "a stride-blind forward passed transposed");
  cr_assert(strstr(msg, "stride_blind") && strstr(msg, "transposed"), "%s", msg);
  cr_assert_neq(gc_check(&c, GC_NARROWED, msg, sizeof msg), 0, "a stride-blind forward passed narrowed");
}

/* x^3 with a right first derivative (3x^2) whose gradient carries no graph, so its own derivative
 * reads 0 instead of 6x: detach(x)^3 + 3 detach(x)^2 (x - detach(x)). */
static ct_tensor *flat_grad_cube(ct_tensor *const *in, int nin, void *ctx) {
  (void)nin, (void)ctx;
  ct_tensor *x = in[0], *d = ct_detach(x);
  ct_tensor *x2 = ct_mul(d, d), *x3 = ct_mul(x2, d), *diff = ct_sub(x, d);
  ct_tensor *t0 = ct_mul(x2, diff), *t = ct_mul_scalar(t0, 3), *r = ct_add(x3, t);
  ct_release(d), ct_release(x2), ct_release(x3), ct_release(diff), ct_release(t0), ct_release(t);
  return r;
}

Test(gradcheck, catches_a_wrong_double_backward) {
  gc_case c = {.op = "cube", .fn = flat_grad_cube, .nin = 1, .seed = 4};
  GC_IN_SHAPE(&c.in[0], 5);
  char msg[4096];
  cr_assert_eq(gc_check_all(&c, msg, sizeof msg), 0, "first order is right: %s", msg);
  c.gradgrad = true;
  cr_assert_neq(gc_check_all(&c, msg, sizeof msg), 0, "a gradient without a graph passed double backward");
  cr_assert(strstr(msg, "double backward of cube"), "%s", msg);
}
