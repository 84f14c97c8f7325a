/* test_errors.c: every class of misuse returns an error (NULL or -1), never aborts, and the message
 * names the op and the shapes, dtypes or devices involved: shape mismatch, dtype mix, device mix
 * (and CUDA on a machine without it), bad dim, out-of-range index, backward on a non-scalar without
 * a gradient, backward twice through a freed graph. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* r must be NULL and the message must contain every needle. A missing needle marks the test
 * failed but lets it go on, so one run lists every message that falls short. */
static void expect_error_impl(const char *call, const void *r, ...) {
  cr_assert_null(r, "%s succeeded but should have failed", call);
  const char *err = ct_last_error();
  va_list ap;
  va_start(ap, r);
  for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
    cr_expect(strstr(err, s), "%s: the message should mention \"%s\": %s", call, s, err);
  va_end(ap);
}
#define EXPECT_ERROR(call, ...)                                                                    \
  do {                                                                                             \
    ct_clear_error();                                                                              \
    ct_tensor *r_ = (call);                                                                        \
    expect_error_impl(#call, r_, __VA_ARGS__, NULL);                                               \
    ct_release(r_);                                                                                \
  } while (0)
#define EXPECT_FAIL(call, ...)                                                                     \
  do {                                                                                             \
    ct_clear_error();                                                                              \
    int rc_ = (call);                                                                              \
    expect_error_impl(#call, rc_ ? NULL : "", __VA_ARGS__, NULL);                                  \
  } while (0)

static ct_tensor *T(ct_dtype dt, const int64_t *shape, int ndim) { return ct_full(shape, ndim, 0.5, dt, ct_cpu()); }
static ct_tensor *I(const double *v, int64_t n) { return ct_from_doubles(v, &n, 1, CT_I64, ct_cpu()); }

Test(errors, shape_mismatch) {
  ct_tensor *a = T(CT_F32, TU_SHAPE(2, 3)), *b = T(CT_F32, TU_SHAPE(4)), *c = T(CT_F32, TU_SHAPE(4, 5));
  ct_tensor *d = T(CT_F32, TU_SHAPE(2, 4)), *e = T(CT_F32, TU_SHAPE(3, 3));
  EXPECT_ERROR(ct_add(a, b), "add", "[2,3]", "[4]");
  EXPECT_ERROR(ct_mul(b, a), "mul", "[2,3]", "[4]");
  EXPECT_ERROR(ct_where(a, a, b), "where", "[2,3]", "[4]");
  EXPECT_ERROR(ct_matmul(a, c), "matmul", "[2,3]", "[4,5]");
  EXPECT_ERROR(ct_cat((ct_tensor *[]){a, e}, 2, 1), "cat", "[2,3]", "[3,3]");
  EXPECT_ERROR(ct_stack((ct_tensor *[]){a, d}, 2, 0), "stack", "[2,3]", "[2,4]");
  EXPECT_ERROR(ct_mse_loss(a, d), "mse_loss", "[2,3]", "[2,4]");
  EXPECT_ERROR(ct_view(a, TU_SHAPE(4, 2)), "view", "[4,2]", "[2,3]");
  EXPECT_ERROR(ct_expand(a, TU_SHAPE(4, 3)), "expand", "[2,3]", "[4,3]");
  EXPECT_ERROR(ct_layer_norm(a, 1, b, NULL, 1e-5), "layer_norm", "[4]", "[2,3]");
  ct_tensor *x4 = T(CT_F32, TU_SHAPE(1, 3, 5, 5)), *w4 = T(CT_F32, TU_SHAPE(2, 4, 3, 3));
  EXPECT_ERROR(ct_conv2d(x4, w4, NULL, 1, 0), "conv2d", "[1,3,5,5]", "[2,4,3,3]");
  ct_release(a), ct_release(b), ct_release(c), ct_release(d), ct_release(e), ct_release(x4), ct_release(w4);
}

Test(errors, dtype_mix_where_it_is_an_error) {
  ct_tensor *f32 = T(CT_F32, TU_SHAPE(2, 2)), *f64 = T(CT_F64, TU_SHAPE(2, 2)), *i64 = T(CT_I64, TU_SHAPE(2, 2));
  EXPECT_ERROR(ct_matmul(f32, f64), "matmul", "f32", "f64");
  EXPECT_ERROR(ct_matmul(i64, i64), "matmul", "i64");
  EXPECT_ERROR(ct_cat((ct_tensor *[]){f32, f64}, 2, 0), "cat", "f32", "f64");
  EXPECT_FAIL(ct_requires_grad_(i64, true), "requires_grad", "i64");
  EXPECT_ERROR(ct_rand(TU_SHAPE(2), CT_I32, ct_cpu()), "rand", "i32");
  /* index tensors must be integers */
  ct_tensor *fidx = ct_full(TU_SHAPE(2), 1, CT_F32, ct_cpu());
  EXPECT_ERROR(ct_index_select(f32, 0, fidx), "index_select", "f32");
  EXPECT_ERROR(ct_gather(f32, 0, f32), "gather", "f32");
  EXPECT_ERROR(ct_embedding(f32, fidx), "embedding", "f32");
  EXPECT_ERROR(ct_cross_entropy(f32, fidx), "cross_entropy", "f32");
  EXPECT_ERROR(ct_nll_loss(f32, fidx), "nll_loss", "f32");
  /* float-only ops on integers */
  ct_tensor *x4 = T(CT_F32, TU_SHAPE(1, 1, 4, 4)), *w4 = T(CT_F64, TU_SHAPE(1, 1, 2, 2));
  EXPECT_ERROR(ct_conv2d(x4, w4, NULL, 1, 0), "conv2d", "f32", "f64");
  ct_tensor *lw = T(CT_F64, TU_SHAPE(2));
  EXPECT_ERROR(ct_layer_norm(f32, 1, lw, NULL, 1e-5), "layer_norm", "f64", "f32");
  ct_release(f32), ct_release(f64), ct_release(i64), ct_release(fidx), ct_release(x4), ct_release(w4), ct_release(lw);
}

Test(errors, cuda_on_a_machine_without_it) {
  ct_device cuda;
  cr_assert_eq(ct_device_parse("cuda:0", &cuda), 0);
  EXPECT_FAIL(ct_device_parse("gpu", &cuda), "gpu", "cpu", "cuda");
  if (ct_cuda_available()) return;
  /* creation on, or transfer to, a CUDA device of a machine without one: a clear error naming
     the device and saying that CUDA is not available, never a silent fallback */
  EXPECT_ERROR(ct_zeros(TU_SHAPE(2, 2), CT_F32, cuda), "cuda", "not available");
  EXPECT_ERROR(ct_randn(TU_SHAPE(2), CT_F32, cuda), "cuda", "not available");
  ct_tensor *c = T(CT_F32, TU_SHAPE(2));
  EXPECT_ERROR(ct_to_device(c, cuda), "cuda", "not available");
  ct_release(c);
}

/* Without a GPU, a CUDA tensor is stood in for by a header whose storage (host memory) says
 * cuda:0: the dispatcher rejects the mix before any kernel or allocator would touch it. */
Test(errors, device_mix) {
  ct_device cuda = {CT_CUDA, 0};
  ct_tensor *a = T(CT_F32, TU_SHAPE(2, 3)), *g = NULL;
  ct_tensor *host = T(CT_F32, TU_SHAPE(2, 3));
  ct_storage fake_storage;
  ct_tensor fake;
  if (ct_cuda_available()) {
    g = ct_to_device(host, cuda);
    cr_assert(g, "%s", ct_last_error());
  } else {
    fake_storage = *host->storage;
    fake_storage.device = cuda;
    fake_storage.refcount = 1 << 30; /* never freed through this header */
    fake = *host;
    fake.storage = &fake_storage;
    fake.refcount = 1 << 30;
    g = &fake;
  }
  EXPECT_ERROR(ct_add(a, g), "add", "cpu", "cuda:0", "f32[2,3]");
  EXPECT_ERROR(ct_mul(g, a), "mul", "cpu", "cuda:0", "f32[2,3]");
  ct_tensor *b = T(CT_F32, TU_SHAPE(3, 2));
  EXPECT_ERROR(ct_matmul(b, g), "matmul", "cpu", "cuda", "[3,2]");
  ct_tensor *c = ct_full(TU_SHAPE(2, 3), 1, CT_BOOL, ct_cpu());
  EXPECT_ERROR(ct_where(c, a, g), "where", "cpu", "cuda");
  ct_release(a), ct_release(b), ct_release(c), ct_release(host);
  if (g != &fake) ct_release(g);
}

Test(errors, bad_dim) {
  /* the message names the op and the input's shape; a negative dim is quoted as given (a
     non-negative one may be shown 1-based, as Lua users count) */
  ct_tensor *a = T(CT_F32, TU_SHAPE(2, 3));
  EXPECT_ERROR(ct_transpose(a, 0, 2), "transpose", "dim", "[2,3]");
  EXPECT_ERROR(ct_narrow(a, -3, 0, 1), "narrow", "dim -3", "[2,3]");
  EXPECT_ERROR(ct_select(a, 5, 0), "select", "dim", "[2,3]");
  EXPECT_ERROR(ct_sum(a, (int[]){2}, 1, false), "sum", "dim", "[2,3]");
  EXPECT_ERROR(ct_mean(a, (int[]){0, 0}, 2, false), "mean", "dim", "[2,3]");
  EXPECT_ERROR(ct_argmax(a, 3, false), "argmax", "dim", "[2,3]");
  EXPECT_ERROR(ct_softmax(a, 2), "softmax", "dim", "[2,3]");
  EXPECT_ERROR(ct_log_softmax(a, -3), "log_softmax", "dim -3", "[2,3]");
  EXPECT_ERROR(ct_cat((ct_tensor *[]){a, a}, 2, 2), "cat", "dim", "[2,3]");
  EXPECT_ERROR(ct_unsqueeze(a, 4), "unsqueeze", "dim", "[2,3]");
  EXPECT_ERROR(ct_squeeze(a, 2), "squeeze", "dim", "[2,3]");
  ct_tensor *idx = I((double[]){1}, 1);
  EXPECT_ERROR(ct_index_select(a, 2, idx), "index_select", "dim", "[2,3]");
  EXPECT_ERROR(ct_layer_norm(a, 3, NULL, NULL, 1e-5), "layer_norm", "[2,3]");
  ct_release(a), ct_release(idx);
}

Test(errors, out_of_range_index) {
  ct_tensor *a = T(CT_F32, TU_SHAPE(3, 4));
  ct_tensor *i0 = I((double[]){1, 0}, 2), *i5 = I((double[]){4}, 1), *ineg = I((double[]){-5}, 1);
  /* index values are 1-based: 0 and n+1 are out of range, -n..-1 count from the end */
  EXPECT_ERROR(ct_index_select(a, 0, i0), "index_select", "0", "out of range", "3");
  EXPECT_ERROR(ct_index_select(a, 0, i5), "index_select", "4", "out of range");
  EXPECT_ERROR(ct_index_select(a, 1, ineg), "index_select", "-5", "out of range");
  ct_tensor *g = ct_full(TU_SHAPE(3, 1), 5, CT_I64, ct_cpu());
  EXPECT_ERROR(ct_gather(a, 1, g), "gather", "5", "out of range");
  ct_tensor *w = T(CT_F32, TU_SHAPE(10, 2)), *e = I((double[]){3, 11}, 2);
  EXPECT_ERROR(ct_embedding(w, e), "embedding", "11", "out of range", "10");
  ct_tensor *logits = T(CT_F32, TU_SHAPE(2, 4)), *tgt = I((double[]){1, 5}, 2), *tgt0 = I((double[]){0, 1}, 2);
  EXPECT_ERROR(ct_cross_entropy(logits, tgt), "cross_entropy", "5", "out of range", "4");
  EXPECT_ERROR(ct_nll_loss(logits, tgt0), "nll_loss", "0", "out of range");
  EXPECT_ERROR(ct_select(a, 0, 3), "select", "out of range", "[3,4]");
  EXPECT_ERROR(ct_narrow(a, 1, 2, 3), "narrow", "[3,4]");
  double v;
  EXPECT_FAIL(ct_get(a, (int64_t[]){3, 0}, &v), "out of range", "[3,4]");
  ct_release(a), ct_release(i0), ct_release(i5), ct_release(ineg), ct_release(g), ct_release(w), ct_release(e);
  ct_release(logits), ct_release(tgt), ct_release(tgt0);
}

Test(errors, backward_on_non_scalar_without_gradient) {
  ct_tensor *x = T(CT_F64, TU_SHAPE(2, 3));
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_exp(x);
  EXPECT_FAIL(ct_backward(y, NULL, false, false), "backward", "one-element", "f64[2,3]");
  ct_tensor *c = T(CT_F64, TU_SHAPE(2, 3));
  EXPECT_FAIL(ct_backward(c, NULL, false, false), "backward", "does not require grad", "f64[2,3]");
  ct_release(x), ct_release(y), ct_release(c);
}

Test(errors, backward_twice_through_a_freed_graph) {
  ct_tensor *x = T(CT_F64, TU_SHAPE(3));
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_exp(x), *z = ct_sum(y, NULL, 0, false);
  cr_assert(z, "%s", ct_last_error());
  cr_assert_eq(ct_backward(z, NULL, false, false), 0, "%s", ct_last_error());
  EXPECT_FAIL(ct_backward(z, NULL, false, false), "backward", "second time", "sum", "retain_graph");
  ct_release(x), ct_release(y), ct_release(z);
}

Test(errors, misc_arguments) {
  ct_tensor *a = T(CT_F32, TU_SHAPE(2, 3));
  EXPECT_ERROR(ct_clamp(a, 1, 0), "clamp", "1", "0");
  EXPECT_ERROR(ct_dropout(a, 1.5, true), "dropout", "1.5");
  EXPECT_ERROR(ct_cat(NULL, 0, 0), "cat");
  EXPECT_ERROR(ct_max_pool2d(a, 2, 2), "max_pool2d", "[2,3]");
  ct_tensor *x4 = T(CT_F32, TU_SHAPE(1, 1, 3, 3)), *w4 = T(CT_F32, TU_SHAPE(1, 1, 5, 5));
  EXPECT_ERROR(ct_conv2d(x4, w4, NULL, 1, 0), "conv2d", "kernel");
  ct_dtype d;
  EXPECT_FAIL(ct_dtype_from_name("f128", &d), "f128");
  ct_release(a), ct_release(x4), ct_release(w4);
}
