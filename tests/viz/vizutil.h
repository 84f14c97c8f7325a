/* vizutil.h: helpers for the viz tests (header-only, each test file is its own executable):
 * the small graphs the pictures are checked on, file checks (PNG signature, SVG text), and the
 * output directory ($VIZ_TEST_OUT, made by viz.mk).
 * Invariant: every builder returns new references and names its tensors, so the DOT text of its
 * graph is deterministic. */
#ifndef CHALK_VIZUTIL_H
#define CHALK_VIZUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graph/inspect.h"
#include "viz.h"

static inline const char *vt_out(void) {
  const char *d = getenv("VIZ_TEST_OUT");
  if (!d || !*d) d = "build/tests/viz/out";
  mkdir(d, 0777);
  return d;
}

static inline const char *vt_path(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", vt_out(), name);
  return buf[k];
}

/* The whole file as a NUL-terminated string (NULL if unreadable); *n gets its size. */
static inline char *vt_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)len + 1);
  if (s && fread(s, 1, (size_t)len, f) != (size_t)len) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s) s[len] = '\0';
  if (n) *n = (size_t)len;
  return s;
}

static inline int vt_count(const char *hay, const char *needle) {
  int c = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
  return c;
}

/* A real PNG of at least min_bytes whose header says width x height > 50x50. */
static inline bool vt_is_png(const char *path, size_t min_bytes) {
  size_t n;
  unsigned char *s = (unsigned char *)vt_read(path, &n);
  bool ok = s && n >= min_bytes && n > 24 && !memcmp(s, "\x89PNG\r\n\x1a\n", 8) && !memcmp(s + 12, "IHDR", 4);
  if (ok) {
    unsigned w = (unsigned)s[16] << 24 | (unsigned)s[17] << 16 | (unsigned)s[18] << 8 | s[19];
    unsigned h = (unsigned)s[20] << 24 | (unsigned)s[21] << 16 | (unsigned)s[22] << 8 | s[23];
    ok = w > 50 && h > 50;
  }
  free(s);
  return ok;
}

static inline ct_tensor *vt_leaf(double v, const char *name, bool grad) {
  ct_tensor *t = ct_scalar(v, CT_F32, ct_cpu());
  if (grad) ct_requires_grad_(t, true);
  ct_set_name(t, name);
  return t;
}

/* lesson 2's f = ln x1 + x1*x2 - sin x2 at (2, 5), intermediates named a, b, c; the leaves are
   returned through x1, x2 (new references). */
static inline ct_tensor *vt_autodiff(ct_tensor **x1o, ct_tensor **x2o) {
  ct_tensor *x1 = vt_leaf(2, "x1", true), *x2 = vt_leaf(5, "x2", true);
  ct_tensor *a = ct_log(x1), *b = ct_mul(x1, x2), *c = ct_sin(x2);
  ct_set_name(a, "a"), ct_set_name(b, "b"), ct_set_name(c, "c");
  ct_tensor *d = ct_add(a, b);
  ct_tensor *f = ct_sub(d, c);
  ct_set_name(f, "f");
  ct_release(a), ct_release(b), ct_release(c), ct_release(d);
  *x1o = x1, *x2o = x2;
  return f;
}

/* An MLP loss: layers Linear(in, hidden) + tanh repeated, parameters named layers.<2i>.weight/bias
   and tagged as parameters; x tagged as input. */
static inline ct_tensor *vt_mlp(int layers, int64_t batch, int64_t in, int64_t hidden, int64_t out) {
  ct_category old = ct_set_default_category(CT_CAT_INPUT);
  ct_tensor *x = ct_randn((int64_t[]){batch, in}, 2, CT_F32, ct_cpu());
  ct_set_default_category(old);
  ct_set_name(x, "x");
  ct_tensor *h = x;
  for (int l = 0; l < layers; l++) {
    int64_t i = l ? hidden : in, o = l == layers - 1 ? out : hidden;
    char nw[48], nb[48];
    snprintf(nw, sizeof nw, "layers.%d.weight", 2 * l);
    snprintf(nb, sizeof nb, "layers.%d.bias", 2 * l);
    old = ct_set_default_category(CT_CAT_PARAMETER);
    ct_tensor *W = ct_randn((int64_t[]){o, i}, 2, CT_F32, ct_cpu()), *B = ct_randn((int64_t[]){o}, 1, CT_F32, ct_cpu());
    ct_set_default_category(old);
    ct_requires_grad_(W, true), ct_requires_grad_(B, true);
    ct_set_name(W, nw), ct_set_name(B, nb);
    ct_tensor *Wt = ct_transpose(W, 0, 1), *m = ct_matmul(h, Wt), *z = ct_add(m, B);
    ct_tensor *a = l == layers - 1 ? ct_retain(z) : ct_tanh(z);
    ct_release(Wt), ct_release(m), ct_release(z), ct_release(W), ct_release(B), ct_release(h);
    h = a;
  }
  ct_tensor *sq = ct_mul(h, h), *loss = ct_mean(sq, NULL, 0, false);
  ct_set_name(loss, "loss");
  ct_release(sq), ct_release(h);
  return loss;
}

/* DOT text of the graph of t (malloc'd), or NULL with the error set. */
static inline char *vt_graph_dot(ct_tensor *t, const viz_graph_opts *o) {
  viz_graph *g = viz_graph_build(t, o);
  viz_buf b = {0};
  if (!g || viz_graph_dot(g, &b)) {
    viz_graph_free(g);
    viz_buf_free(&b);
    return NULL;
  }
  viz_graph_free(g);
  return b.s;
}

#endif
