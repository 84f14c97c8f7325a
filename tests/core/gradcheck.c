/* gradcheck.c: finite-difference gradient checks (see gradcheck.h for the procedure).
 * Invariant: the function under test only ever sees views of the base tensors made here (or the
 * caller's fixed tensors); bases are contiguous f64 leaves, so perturbing base element j moves
 * every view element that aliases it, which is exactly what the analytical gradient sums. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const char *gc_layout_name(gc_layout l) {
  static const char *const names[GC_NLAYOUTS] = {"contiguous", "transposed", "narrowed", "expanded"};
  return (unsigned)l < GC_NLAYOUTS ? names[l] : "?";
}

void gc_set_shape(gc_input *in, const int64_t *shape, int ndim) {
  in->ndim = ndim;
  memcpy(in->shape, shape, sizeof(int64_t) * (size_t)ndim);
}

/* ---- layouts ---------------------------------------------------------------------------------- */

static gc_layout effective_layout(const gc_input *in, gc_layout l) {
  if (in->no_layouts || in->values) return GC_CONTIGUOUS;
  if (in->ndim == 0) return GC_CONTIGUOUS;
  if (l == GC_EXPANDED) {
    for (int d = 0; d < in->ndim; d++)
      if (in->shape[d] > 1) return l;
    return GC_CONTIGUOUS;
  }
  return l;
}

/* Shape of the base whose view (made by layout_view) has the input's shape. */
static int layout_base_shape(const gc_input *in, gc_layout l, int64_t *b) {
  int nd = in->ndim;
  const int64_t *s = in->shape;
  switch (l) {
  case GC_TRANSPOSED:
    if (nd == 1) {
      b[0] = s[0], b[1] = 2;
      return 2;
    }
    for (int d = 0; d < nd; d++) b[d] = s[nd - 1 - d];
    return nd;
  case GC_NARROWED:
    memcpy(b, s, sizeof(int64_t) * (size_t)nd);
    b[nd - 1] += 3;
    if (nd >= 2) b[0] += 2;
    return nd;
  case GC_EXPANDED: {
    int from = (nd >= 2 && s[0] > 1) ? 1 : 0; /* drop a leading dim: broadcast by rank */
    int bn = 0;
    for (int d = from; d < nd; d++) b[bn++] = s[d];
    for (int d = bn - 1; d >= 0; d--) /* and one size-1 dim of stride 0 */
      if (b[d] > 1) {
        b[d] = 1;
        break;
      }
    return bn;
  }
  default:
    memcpy(b, s, sizeof(int64_t) * (size_t)nd);
    return nd;
  }
}

static ct_tensor *layout_view(ct_tensor *base, const gc_input *in, gc_layout l) {
  int nd = in->ndim;
  switch (l) {
  case GC_TRANSPOSED: {
    if (nd == 1) return ct_select(base, 1, 0);
    int perm[CT_MAX_DIMS];
    for (int d = 0; d < nd; d++) perm[d] = nd - 1 - d;
    return ct_permute(base, perm, nd);
  }
  case GC_NARROWED: {
    ct_tensor *v = ct_narrow(base, nd - 1, 2, in->shape[nd - 1]);
    if (!v || nd < 2) return v;
    ct_tensor *w = ct_narrow(v, 0, 1, in->shape[0]);
    ct_release(v);
    return w;
  }
  case GC_EXPANDED: return ct_expand(base, in->shape, nd);
  default: return ct_retain(base);
  }
}

/* ---- one check ---------------------------------------------------------------------------------- */

typedef struct {
  ct_tensor *base[GC_MAX_IN]; /* NULL for fixed inputs */
  ct_tensor *view[GC_MAX_IN];
  gc_layout layout[GC_MAX_IN];
} gc_inputs;

static void inputs_release(gc_inputs *x) {
  for (int i = 0; i < GC_MAX_IN; i++) ct_release(x->base[i]), ct_release(x->view[i]);
  memset(x, 0, sizeof *x);
}

static bool checked(const gc_input *in) { return !in->fixed && !in->no_grad; }

static int make_inputs(const gc_case *c, gc_layout l, tu_rng *rng, gc_inputs *x, char *msg, size_t msgn) {
  memset(x, 0, sizeof *x);
  for (int i = 0; i < c->nin; i++) {
    const gc_input *in = &c->in[i];
    if (in->fixed) {
      x->view[i] = ct_retain(in->fixed);
      continue;
    }
    gc_layout el = effective_layout(in, l);
    int64_t bshape[CT_MAX_DIMS + 1];
    int bn = layout_base_shape(in, el, bshape);
    double lo = in->lo, hi = in->hi;
    if (lo == 0 && hi == 0) lo = -2, hi = 2;
    if (in->values) x->base[i] = ct_from_doubles(in->values, in->shape, in->ndim, CT_F64, ct_cpu());
    else x->base[i] = tu_rand_tensor_away(rng, bshape, bn, CT_F64, lo, hi, in->away);
    x->layout[i] = el;
    if (!x->base[i] || (checked(in) && ct_requires_grad_(x->base[i], true)) ||
        !(x->view[i] = layout_view(x->base[i], in, el))) {
      snprintf(msg, msgn, "gradcheck %s: cannot make input %d (%s layout): %s", c->op, i + 1, gc_layout_name(el),
               ct_last_error());
      inputs_release(x);
      return -1;
    }
  }
  return 0;
}

static ct_tensor *rand_like_shape(tu_rng *rng, const ct_tensor *t) {
  int64_t n = ct_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) return NULL;
  for (int64_t k = 0; k < n; k++) v[k] = tu_normal(rng);
  ct_tensor *w = ct_from_doubles(v, t->shape, t->ndim, CT_F64, ct_cpu());
  free(v);
  return w;
}

static void base_index(const ct_tensor *b, int64_t flat, char *buf, size_t n) {
  int64_t idx[CT_MAX_DIMS];
  for (int d = b->ndim - 1; d >= 0; d--) {
    idx[d] = flat % b->shape[d];
    flat /= b->shape[d];
  }
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < b->ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)idx[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

/* The output of fn on contiguous copies of the views must equal the output on the views. */
static int check_forward_layout(const gc_case *c, gc_layout l, gc_inputs *x, const ct_tensor *out, char *msg,
                                size_t msgn) {
  bool prev = ct_set_grad_enabled(false);
  ct_tensor *copies[GC_MAX_IN] = {0};
  int rc = 0;
  for (int i = 0; i < c->nin && !rc; i++) {
    if (!(copies[i] = x->base[i] ? ct_clone(x->view[i]) : ct_retain(x->view[i]))) rc = -1;
    /* copies of checked inputs require grad as the views do (double backward differentiates) */
    else if (x->base[i] && checked(&c->in[i]) && ct_requires_grad_(copies[i], true)) rc = -1;
  }
  ct_tensor *ref = rc ? NULL : c->fn(copies, c->nin, c->ctx);
  ct_set_grad_enabled(prev);
  if (!ref) {
    snprintf(msg, msgn, "gradcheck %s: op failed on contiguous copies of the inputs: %s", c->op, ct_last_error());
    rc = -1;
  } else {
    double *r = tu_values(ref);
    double scale = 0;
    for (int64_t k = 0; r && k < ct_numel(ref); k++)
      if (isfinite(r[k]) && fabs(r[k]) > scale) scale = fabs(r[k]);
    char what[200], m2[1500];
    snprintf(what, sizeof what, "gradcheck %s: forward on %s inputs vs contiguous inputs", c->op, gc_layout_name(l));
    if (!r) {
      snprintf(msg, msgn, "%s: cannot read the output", what);
      rc = -1;
    } else if (tu_compare(what, out, r, ct_numel(ref), 1e-10, 1e-13 * (scale + 1), m2, sizeof m2)) {
      snprintf(msg, msgn, "%s", m2);
      rc = -1;
    } else if (out->ndim != ref->ndim || memcmp(out->shape, ref->shape, sizeof(int64_t) * (size_t)ref->ndim)) {
      snprintf(msg, msgn, "%s: output %s, expected shape of %s", what, tu_desc(out), tu_desc(ref));
      rc = -1;
    }
    free(r);
  }
  for (int i = 0; i < c->nin; i++) ct_release(copies[i]);
  ct_release(ref);
  return rc;
}

int gc_check(const gc_case *c, gc_layout layout, char *msg, size_t msgn) {
  double eps = c->eps ? c->eps : 1e-6, rtol = c->rtol ? c->rtol : 1e-5, atol = c->atol ? c->atol : 1e-7;
  tu_rng rng;
  tu_seed(&rng, c->seed * 31 + (uint64_t)layout);
  gc_inputs x;
  if (make_inputs(c, layout, &rng, &x, msg, msgn)) return -1;

  ct_tensor *out = NULL, *w = NULL, *res[GC_MAX_IN] = {0}, *targets[GC_MAX_IN];
  int tidx[GC_MAX_IN], nt = 0, rc = -1;
  double *wv = NULL, *an = NULL;
  bool prev = ct_set_grad_enabled(true);
  out = c->fn(x.view, c->nin, c->ctx);
  ct_set_grad_enabled(prev);
  if (!out) {
    snprintf(msg, msgn, "gradcheck %s (%s inputs): the op failed: %s", c->op, gc_layout_name(layout), ct_last_error());
    goto done;
  }
  if (out->dtype != CT_F64) {
    snprintf(msg, msgn, "gradcheck %s: output is %s for f64 inputs, expected f64", c->op, tu_desc(out));
    goto done;
  }
  if (layout != GC_CONTIGUOUS && check_forward_layout(c, layout, &x, out, msg, msgn)) goto done;

  for (int i = 0; i < c->nin; i++)
    if (checked(&c->in[i])) targets[nt] = x.base[i], tidx[nt++] = i;
  if (!(w = rand_like_shape(&rng, out)) || !(wv = tu_values(w))) {
    snprintf(msg, msgn, "gradcheck %s: cannot make the weights: %s", c->op, ct_last_error());
    goto done;
  }
  if (nt && out->requires_grad) {
    if (ct_grad(out, w, targets, nt, res, true, false)) {
      snprintf(msg, msgn, "gradcheck %s (%s inputs): backward failed: %s", c->op, gc_layout_name(layout),
               ct_last_error());
      goto done;
    }
  } else {
    for (int t = 0; t < nt; t++) res[t] = ct_zeros_like(targets[t]);
  }

  prev = ct_set_grad_enabled(false);
  int64_t nout = ct_numel(out);
  for (int t = 0; t < nt && rc == -1; t++) {
    ct_tensor *b = targets[t];
    int i = tidx[t];
    if (res[t]->ndim != b->ndim || memcmp(res[t]->shape, b->shape, sizeof(int64_t) * (size_t)b->ndim)) {
      snprintf(msg, msgn, "gradcheck %s: gradient of input %d is %s, expected the shape of %s", c->op, i + 1,
               tu_desc(res[t]), tu_desc(b));
      goto fd_done;
    }
    free(an);
    if (!(an = tu_values(res[t]))) {
      snprintf(msg, msgn, "gradcheck %s: cannot read the gradient of input %d", c->op, i + 1);
      goto fd_done;
    }
    double *p = b->storage->data;
    for (int64_t j = 0; j < ct_numel(b); j++) {
      double orig = p[j], *v1 = NULL, *v2 = NULL;
      p[j] = orig + eps;
      ct_tensor *o1 = c->fn(x.view, c->nin, c->ctx);
      if (o1) v1 = tu_values(o1);
      p[j] = orig - eps;
      ct_tensor *o2 = v1 ? c->fn(x.view, c->nin, c->ctx) : NULL;
      if (o2) v2 = tu_values(o2);
      p[j] = orig;
      bool ok_shapes = o1 && o2 && ct_numel(o1) == nout && ct_numel(o2) == nout;
      double fd = 0;
      for (int64_t k = 0; ok_shapes && v2 && k < nout; k++) fd += wv[k] * (v1[k] - v2[k]);
      fd /= 2 * eps;
      ct_release(o1), ct_release(o2);
      free(v1), free(v2);
      if (!ok_shapes || !v2) {
        snprintf(msg, msgn, "gradcheck %s: the op failed or changed shape on a perturbed input %d: %s", c->op, i + 1,
                 ct_last_error());
        goto fd_done;
      }
      double a = an[j];
      if (!(fabs(a - fd) <= atol + rtol * fmax(fabs(a), fabs(fd)))) {
        char ix[160], ish[160];
        base_index(b, j, ix, sizeof ix);
        ct_shape_str(c->in[i].shape, c->in[i].ndim, ish, sizeof ish);
        snprintf(msg, msgn,
                 "gradcheck %s: input %d (shape %s, passed as a %s view of base %s), base element %s = %.10g: "
                 "analytical gradient %.12g, numerical %.12g (|diff| %.3g; rtol %.0e, atol %.0e, eps %.0e, seed "
                 "%llu)",
                 c->op, i + 1, ish, gc_layout_name(x.layout[i]), tu_desc(b), ix, orig, a, fd, fabs(a - fd), rtol,
                 atol, eps, (unsigned long long)c->seed);
        goto fd_done;
      }
    }
  }
  rc = 0;
fd_done:
  ct_set_grad_enabled(prev);
done:
  free(wv), free(an);
  for (int t = 0; t < GC_MAX_IN; t++) ct_release(res[t]);
  ct_release(w);
  ct_release(out);
  inputs_release(&x);
  return rc;
}

/* ---- double backward -------------------------------------------------------------------------- */

typedef struct {
  const gc_case *c;
  int k;          /* the input whose gradient is the output */
  bool v_input;   /* the upstream gradient is the last input (else random from wseed) */
  uint64_t wseed;
} gg_ctx;

/* x (and v) -> d(sum(f(x) * v))/dx_k, built with create_graph so that it is differentiable both in
 * x (second derivatives) and in v (the backward rule's own backward: narrow_scatter, index_add,
 * col2im, sum_to_shape, ... and non-contiguous upstream gradients). */
static ct_tensor *gg_fn(ct_tensor *const *in, int nin, void *vctx) {
  gg_ctx *g = vctx;
  int nf = g->v_input ? nin - 1 : nin;
  bool prev = ct_set_grad_enabled(true);
  ct_tensor *out = g->c->fn(in, nf, g->c->ctx), *w = NULL, *r = NULL;
  if (out && g->v_input) {
    w = ct_retain(in[nf]);
  } else if (out) {
    tu_rng rng;
    tu_seed(&rng, g->wseed);
    w = rand_like_shape(&rng, out);
  }
  if (w && !out->requires_grad) r = ct_zeros_like(in[g->k]);
  else if (w && ct_grad(out, w, &in[g->k], 1, &r, true, true)) r = NULL;
  ct_set_grad_enabled(prev);
  ct_release(out), ct_release(w);
  return r;
}

static int gc_check_gradgrad(const gc_case *c, gc_layout l, char *msg, size_t msgn) {
  /* the output's shape, for the upstream-gradient input */
  tu_rng rng;
  tu_seed(&rng, c->seed);
  gc_inputs x;
  if (make_inputs(c, GC_CONTIGUOUS, &rng, &x, msg, msgn)) return -1;
  bool prev = ct_set_grad_enabled(false);
  ct_tensor *probe = c->fn(x.view, c->nin, c->ctx);
  ct_set_grad_enabled(prev);
  inputs_release(&x);
  if (!probe) {
    snprintf(msg, msgn, "gradcheck %s: the op failed: %s", c->op, ct_last_error());
    return -1;
  }
  gc_input v = {0};
  gc_set_shape(&v, probe->shape, probe->ndim);
  ct_release(probe);
  for (int k = 0; k < c->nin; k++) {
    if (!checked(&c->in[k])) continue;
    char name[160];
    snprintf(name, sizeof name, "double backward of %s (gradient of input %d)", c->op, k + 1);
    gg_ctx g = {c, k, c->nin < GC_MAX_IN, c->seed * 7 + 3};
    gc_case c2 = *c;
    c2.op = name;
    c2.fn = gg_fn;
    c2.ctx = &g;
    c2.gradgrad = false;
    if (g.v_input) c2.in[c2.nin++] = v;
    if (gc_check(&c2, l, msg, msgn)) return -1;
  }
  return 0;
}

int gc_check_all(const gc_case *c, char *msg, size_t msgn) {
  for (int l = 0; l < GC_NLAYOUTS; l++)
    if (gc_check(c, (gc_layout)l, msg, msgn)) return -1;
  if (c->gradgrad) {
    if (gc_check_gradgrad(c, GC_CONTIGUOUS, msg, msgn) || gc_check_gradgrad(c, GC_TRANSPOSED, msg, msgn)) return -1;
  }
  msg[0] = 0;
  return 0;
}
