/* test_autograd.c: the engine: accumulation into leaves, no_grad, detach, graph freeing and
 * retain_graph, grad() with create_graph (second derivative of tanh; a Hessian-vector product
 * against finite differences of the gradient), node names, deep graphs, and that every tensor and
 * node is freed once the user drops the last reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static ct_tensor *vec(const double *v, int64_t n) { return ct_from_doubles(v, &n, 1, CT_F64, ct_cpu()); }

static void assert_values(const char *what, const ct_tensor *t, const double *want, int64_t n, double tol) {
  char msg[1024];
  cr_assert(t, "%s missing: %s", what, ct_last_error());
  cr_assert(tu_compare(what, t, want, n, tol, tol, msg, sizeof msg) == 0, "%s", msg);
}

/* Every test ends with no live tensors or nodes: the engine frees what it made. */
static void assert_all_freed(void) {
  ct_mem_stats s;
  ct_mem_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
  cr_assert_eq(s.live_nodes, 0, "%lld autograd nodes still alive", (long long)s.live_nodes);
}

Test(autograd, accumulates_into_leaves_over_two_backward_calls) {
  ct_tensor *x = vec((double[]){1, 2, 3}, 3);
  ct_requires_grad_(x, true);
  for (int k = 1; k <= 2; k++) {
    ct_tensor *y = ct_mul(x, x), *g = ct_ones_like(y);
    cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
    assert_values("x.grad", x->grad, (double[]){2.0 * k, 4.0 * k, 6.0 * k}, 3, 0);
    ct_release(y), ct_release(g);
  }
  cr_assert_eq(x->grad->grad_fn, NULL, "a leaf's grad carries no graph without create_graph");
  ct_zero_grad(x);
  cr_assert_null(x->grad);
  ct_release(x);
  assert_all_freed();
}

Test(autograd, used_twice_and_diamonds_sum_their_paths) {
  /* z = (x*a) * (x+b): dz/dx = a*(x+b) + x*a */
  ct_tensor *x = vec((double[]){0.5, -2}, 2), *a = vec((double[]){3, 4}, 2), *b = vec((double[]){1, 1}, 2);
  ct_requires_grad_(x, true), ct_requires_grad_(a, true);
  ct_tensor *p = ct_mul(x, a), *q = ct_add(x, b), *z = ct_mul(p, q), *g = ct_ones_like(z);
  cr_assert_eq(ct_backward(z, g, false, false), 0, "%s", ct_last_error());
  assert_values("x.grad", x->grad, (double[]){3 * 1.5 + 0.5 * 3, 4 * -1 + -2 * 4}, 2, 0);
  assert_values("a.grad", a->grad, (double[]){0.5 * 1.5, -2 * -1}, 2, 0);
  cr_assert_null(b->grad, "b does not require grad");
  ct_release(x), ct_release(a), ct_release(b), ct_release(p), ct_release(q), ct_release(z), ct_release(g);
  assert_all_freed();
}

Test(autograd, no_grad_records_nothing) {
  ct_tensor *x = vec((double[]){1, 2}, 2);
  ct_requires_grad_(x, true);
  cr_assert(ct_grad_enabled());
  bool prev = ct_set_grad_enabled(false);
  cr_assert(prev);
  ct_tensor *y = ct_mul(x, x);
  cr_assert(!y->requires_grad && !y->grad_fn, "no node under no_grad");
  ct_set_grad_enabled(prev);
  ct_tensor *g = ct_ones_like(y);
  cr_assert_neq(ct_backward(y, g, false, false), 0);
  cr_assert(tu_error_has("backward", "does not require grad", NULL), "%s", ct_last_error());
  ct_tensor *y2 = ct_mul(x, x);
  cr_assert(y2->requires_grad && y2->grad_fn, "recording resumes");
  ct_release(x), ct_release(y), ct_release(y2), ct_release(g);
  assert_all_freed();
}

Test(autograd, detach_cuts_the_graph) {
  ct_tensor *x = vec((double[]){2, 3}, 2);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_mul(x, x), *d = ct_detach(y), *z = ct_mul(d, x), *g = ct_ones_like(z);
  cr_assert(!d->requires_grad && !d->grad_fn && d->storage == y->storage);
  cr_assert_eq(ct_backward(z, g, false, false), 0, "%s", ct_last_error());
  assert_values("x.grad is detach(x^2) only", x->grad, (double[]){4, 9}, 2, 0);
  ct_release(x), ct_release(y), ct_release(d), ct_release(z), ct_release(g);
  assert_all_freed();
}

Test(autograd, graph_freed_after_backward_unless_retained) {
  ct_tensor *x = vec((double[]){1, 2}, 2);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_tanh(x), *z = ct_mul(y, y), *g = ct_ones_like(z);
  cr_assert_eq(ct_backward(z, g, false, false), 0, "%s", ct_last_error());
  ct_tensor *kept = ct_node_input(z->grad_fn, 0); /* a shell: the structure, not the saved values */
  cr_assert(ct_node_freed(z->grad_fn) && kept && kept != y && kept->storage != y->storage, "saved tensors dropped");
  cr_assert(kept->grad_fn == y->grad_fn && kept->storage->nbytes == 8, "the shell keeps y's node, one element");
  cr_assert_neq(ct_backward(z, g, false, false), 0, "a second backward through a freed graph fails");
  cr_assert(tu_error_has("backward", "second time", "retain_graph", NULL), "%s", ct_last_error());
  ct_release(z), ct_release(y);

  ct_zero_grad(x);
  y = ct_tanh(x), z = ct_mul(y, y);
  cr_assert_eq(ct_backward(z, g, true, false), 0, "%s", ct_last_error());
  cr_assert(!ct_node_freed(z->grad_fn));
  double *g1 = tu_values(x->grad);
  cr_assert_eq(ct_backward(z, g, false, false), 0, "retain_graph allows a second backward: %s", ct_last_error());
  double want[2] = {2 * g1[0], 2 * g1[1]};
  assert_values("accumulated twice", x->grad, want, 2, 1e-15);
  free(g1);
  ct_release(x), ct_release(y), ct_release(z), ct_release(g);
  assert_all_freed();
}

Test(autograd, backward_needs_a_gradient_for_non_scalars) {
  ct_tensor *x = vec((double[]){1, 2, 3}, 3);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_mul_scalar(x, 2);
  cr_assert_neq(ct_backward(y, NULL, false, false), 0);
  cr_assert(tu_error_has("backward", "one-element", "f64[3]", NULL), "%s", ct_last_error());
  ct_tensor *bad = ct_ones_like(x), *badv = ct_view(bad, (int64_t[]){3, 1}, 2);
  cr_assert_neq(ct_backward(y, badv, false, false), 0);
  cr_assert(tu_error_has("backward", "[3,1]", "[3]", NULL), "%s", ct_last_error());
  /* a one-element output seeds 1 */
  ct_tensor *s = ct_select(y, 0, 1);
  cr_assert_eq(ct_backward(s, NULL, false, false), 0, "%s", ct_last_error());
  assert_values("grad of y[2]", x->grad, (double[]){0, 2, 0}, 3, 0);
  ct_release(x), ct_release(y), ct_release(bad), ct_release(badv), ct_release(s);
  assert_all_freed();
}

Test(autograd, grad_leaves_dot_grad_alone_and_gives_zeros_where_unreachable) {
  ct_tensor *x = vec((double[]){1, 2}, 2), *u = vec((double[]){5, 6}, 2);
  ct_requires_grad_(x, true), ct_requires_grad_(u, true);
  ct_tensor *y = ct_mul(x, x), *g = ct_ones_like(y);
  ct_tensor *in[2] = {x, u}, *res[2];
  cr_assert_eq(ct_grad(y, g, in, 2, res, false, false), 0, "%s", ct_last_error());
  assert_values("dy/dx", res[0], (double[]){2, 4}, 2, 0);
  assert_values("dy/du (unreachable)", res[1], (double[]){0, 0}, 2, 0);
  cr_assert(!x->grad && !u->grad, "grad() does not touch .grad");
  ct_release(res[0]), ct_release(res[1]);
  ct_tensor *c = ct_zeros_like(x), *cin[1] = {c}, *r1[1];
  cr_assert_neq(ct_grad(y, g, cin, 1, r1, false, false), 0);
  cr_assert(tu_error_has("grad", "does not require grad", NULL), "%s", ct_last_error());
  ct_release(x), ct_release(u), ct_release(y), ct_release(g), ct_release(c);
  assert_all_freed();
}

Test(autograd, retains_grad_on_a_non_leaf) {
  ct_tensor *x = vec((double[]){1, 2}, 2);
  ct_requires_grad_(x, true);
  ct_tensor *h = ct_mul_scalar(x, 3);
  h->retains_grad = true;
  ct_tensor *y = ct_mul(h, h), *g = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, g, false, false), 0, "%s", ct_last_error());
  assert_values("h.grad", h->grad, (double[]){6, 12}, 2, 0);
  assert_values("x.grad", x->grad, (double[]){18, 36}, 2, 0);
  cr_assert_neq(ct_requires_grad_(h, false), 0, "a non-leaf cannot turn off requires_grad");
  cr_assert(tu_error_has("requires_grad", "leaf", NULL), "%s", ct_last_error());
  ct_tensor *i = ct_zeros((int64_t[]){2}, 1, CT_I64, ct_cpu());
  cr_assert_neq(ct_requires_grad_(i, true), 0);
  cr_assert(tu_error_has("requires_grad", "i64", NULL), "%s", ct_last_error());
  ct_release(x), ct_release(h), ct_release(y), ct_release(g), ct_release(i);
  assert_all_freed();
}

Test(autograd, second_derivative_of_tanh) {
  tu_rng rng;
  tu_seed(&rng, 5);
  ct_tensor *x = tu_rand_tensor(&rng, (int64_t[]){3, 4}, 2, CT_F64, -2, 2);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_tanh(x), *ones = ct_ones_like(y), *g1, *g2;
  cr_assert_eq(ct_grad(y, ones, &x, 1, &g1, false, true), 0, "%s", ct_last_error());
  cr_assert(g1->requires_grad && g1->grad_fn, "create_graph makes the gradient differentiable");
  cr_assert_eq(ct_grad(g1, ones, &x, 1, &g2, false, false), 0, "%s", ct_last_error());
  double *xv = tu_values(x), want1[12], want2[12];
  for (int i = 0; i < 12; i++) {
    double t = tanh(xv[i]);
    want1[i] = 1 - t * t;
    want2[i] = -2 * t * (1 - t * t);
  }
  assert_values("d tanh", g1, want1, 12, 1e-14);
  assert_values("d2 tanh = -2 tanh (1 - tanh^2)", g2, want2, 12, 1e-14);
  free(xv);
  ct_release(x), ct_release(y), ct_release(ones), ct_release(g1), ct_release(g2);
  assert_all_freed();
}

/* f(x) = sum(tanh(W x)^2) with W [4,3]; grad(x) is differentiated again for a Hessian-vector
 * product, checked against (grad(x + e v) - grad(x - e v)) / 2e. */
static ct_tensor *f_of(ct_tensor *w, ct_tensor *x) {
  ct_tensor *wx = ct_matmul(w, x), *t = wx ? ct_tanh(wx) : NULL, *t2 = t ? ct_mul(t, t) : NULL;
  ct_tensor *s = t2 ? ct_sum(t2, NULL, 0, false) : NULL;
  ct_release(wx), ct_release(t), ct_release(t2);
  return s;
}

static double *grad_at(ct_tensor *w, const double *xv, int n) {
  ct_tensor *x = vec(xv, n);
  ct_requires_grad_(x, true);
  ct_tensor *f = f_of(w, x), *g = NULL;
  cr_assert(f, "%s", ct_last_error());
  cr_assert_eq(ct_grad(f, NULL, &x, 1, &g, false, false), 0, "%s", ct_last_error());
  double *r = tu_values(g);
  ct_release(x), ct_release(f), ct_release(g);
  return r;
}

Test(autograd, hessian_vector_product_against_finite_differences) {
  tu_rng rng;
  tu_seed(&rng, 99);
  ct_tensor *w = tu_rand_tensor(&rng, (int64_t[]){4, 3}, 2, CT_F64, -1, 1);
  double xv[3], vv[3];
  for (int i = 0; i < 3; i++) xv[i] = tu_uniform(&rng, -1, 1), vv[i] = tu_uniform(&rng, -1, 1);
  ct_tensor *x = vec(xv, 3), *v = vec(vv, 3);
  ct_requires_grad_(x, true);
  ct_tensor *f = f_of(w, x), *g = NULL, *hv = NULL;
  cr_assert(f && f->ndim == 0, "f is a scalar: %s", f ? tu_desc(f) : ct_last_error());
  cr_assert_eq(ct_grad(f, NULL, &x, 1, &g, false, true), 0, "%s", ct_last_error());
  cr_assert_eq(ct_grad(g, v, &x, 1, &hv, false, false), 0, "%s", ct_last_error());
  double eps = 1e-6, xp[3], xm[3], fd[3];
  for (int i = 0; i < 3; i++) xp[i] = xv[i] + eps * vv[i], xm[i] = xv[i] - eps * vv[i];
  double *gp = grad_at(w, xp, 3), *gm = grad_at(w, xm, 3);
  for (int i = 0; i < 3; i++) fd[i] = (gp[i] - gm[i]) / (2 * eps);
  char msg[1024];
  cr_assert(tu_compare("Hv vs finite differences of the gradient", hv, fd, 3, 1e-6, 1e-8, msg, sizeof msg) == 0, "%s",
            msg);
  /* and against the closed form: H = W^T diag(2(1 - 3 t^2)(1 - t^2)) W, t = tanh(Wx) */
  double *wv = tu_values(w), exact[3] = {0};
  for (int r = 0; r < 4; r++) {
    double z = 0, wvr = 0;
    for (int c = 0; c < 3; c++) z += wv[r * 3 + c] * xv[c], wvr += wv[r * 3 + c] * vv[c];
    double t = tanh(z), d = 2 * (1 - 3 * t * t) * (1 - t * t);
    for (int c = 0; c < 3; c++) exact[c] += wv[r * 3 + c] * d * wvr;
  }
  cr_assert(tu_compare("Hv vs closed form", hv, exact, 3, 1e-12, 1e-13, msg, sizeof msg) == 0, "%s", msg);
  free(gp), free(gm), free(wv);
  ct_release(w), ct_release(x), ct_release(v), ct_release(f), ct_release(g), ct_release(hv);
  assert_all_freed();
}

Test(autograd, backward_nodes_are_named_after_what_they_differentiate) {
  ct_tensor *x = vec((double[]){0.3, 0.7}, 2);
  ct_requires_grad_(x, true);
  ct_tensor *h = ct_tanh(x);
  ct_set_name(h, "h1");
  ct_tensor *ones = ct_ones_like(h), *g = NULL;
  cr_assert_eq(ct_grad(h, ones, &x, 1, &g, false, true), 0, "%s", ct_last_error());
  cr_assert(g->grad_fn && ct_node_name(g->grad_fn), "the gradient's node has a name");
  cr_assert(strstr(ct_node_name(g->grad_fn), "grad of h1"), "named %s", ct_node_name(g->grad_fn));
  ct_release(x), ct_release(h), ct_release(ones), ct_release(g);
  assert_all_freed();
}

Test(autograd, deep_chains_do_not_overflow_the_stack) {
  ct_tensor *x = vec((double[]){1}, 1);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_retain(x);
  for (int i = 0; i < 50000; i++) {
    ct_tensor *n = ct_mul_scalar(y, 1.00001);
    ct_release(y);
    y = n;
  }
  cr_assert_eq(ct_backward(y, NULL, false, false), 0, "%s", ct_last_error());
  assert_values("d/dx of 1.00001^50000 x", x->grad, (double[]){pow(1.00001, 50000)}, 1, 1e-10);
  ct_release(y); /* frees 50000 nodes without recursion */
  ct_release(x);
  assert_all_freed();
}

Test(autograd, leaf_output_and_views_of_leaves) {
  ct_tensor *x = vec((double[]){1, 2, 3, 4}, 4);
  ct_requires_grad_(x, true);
  ct_tensor *g = vec((double[]){1, 1, 1, 1}, 4);
  cr_assert_eq(ct_backward(x, g, false, false), 0, "%s", ct_last_error());
  assert_values("backward of a leaf seeds its grad", x->grad, (double[]){1, 1, 1, 1}, 4, 0);
  ct_zero_grad(x);
  ct_tensor *v = ct_view(x, (int64_t[]){2, 2}, 2), *t = ct_transpose(v, 0, 1), *n = ct_narrow(t, 0, 1, 1);
  ct_tensor *y = ct_mul_scalar(n, 5), *gy = ct_ones_like(y);
  cr_assert_eq(ct_backward(y, gy, false, false), 0, "%s", ct_last_error());
  /* n = column 2 of [[1,2],[3,4]] = elements 2 and 4 of x */
  assert_values("grad through view/transpose/narrow", x->grad, (double[]){0, 5, 0, 5}, 4, 0);
  ct_release(x), ct_release(g), ct_release(v), ct_release(t), ct_release(n), ct_release(y), ct_release(gy);
  assert_all_freed();
}

Test(autograd, failed_backward_leaves_no_garbage) {
  /* an error inside backward (a gradient of the wrong shape) returns -1 and frees everything */
  ct_tensor *x = vec((double[]){1, 2}, 2);
  ct_requires_grad_(x, true);
  ct_tensor *y = ct_exp(x), *g = vec((double[]){1, 2, 3}, 3);
  cr_assert_neq(ct_backward(y, g, false, false), 0);
  ct_release(x), ct_release(y), ct_release(g);
  assert_all_freed();
}
