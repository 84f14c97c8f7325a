/* test_attention.c: attention (core/ops_attention.c): the flash op against a brute-force reference
 * and against naive attention (forward and gradients), with sequence lengths that are not
 * multiples of the tile, causal masking (also with Nq != Nk), finite-difference gradients of the
 * flash op in f64 in every input layout, the bytes its kernels count against the formula, the
 * absence of any Nq x Nk allocation in flash (and its presence in naive), and the errors.
 * Every helper releases what it makes (the file runs clean under LeakSanitizer). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/events.h"
#include "gradcheck.h"
#include "testutil.h"

#define OK(t) cr_assert((t) != NULL, "unexpected error: %s", ct_last_error())

static ct_tensor *rnd(tu_rng *r, const int64_t *shape, int nd, ct_dtype dt, bool grad) {
  ct_tensor *t = tu_rand_tensor(r, shape, nd, dt, -2, 2);
  OK(t);
  if (grad) ct_requires_grad_(t, true);
  return t;
}
/* q, k, v: three random [n, d] tensors, drawn in that order from a generator seeded with seed. */
static void rnd_qkv(uint64_t seed, int64_t n, int64_t d, ct_dtype dt, bool grad, ct_tensor **q, ct_tensor **k,
                    ct_tensor **v) {
  tu_rng r;
  tu_seed(&r, seed);
  *q = rnd(&r, TU_SHAPE(n, d), dt, grad), *k = rnd(&r, TU_SHAPE(n, d), dt, grad);
  *v = rnd(&r, TU_SHAPE(n, d), dt, grad);
}

static ct_tensor *attn(ct_tensor *q, ct_tensor *k, ct_tensor *v, bool causal, bool flash, int bq, int bk) {
  ct_attention_opts o = {.causal = causal, .flash = flash, .block_q = bq, .block_k = bk};
  return ct_attention(q, k, v, &o);
}

/* softmax(q k^T / sqrt(d) masked) v by definition, in double, for contiguous [B, N, d] inputs. */
static double *reference(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, bool causal) {
  double *Q = tu_values(q), *K = tu_values(k), *V = tu_values(v);
  int nd = q->ndim;
  int64_t nq = q->shape[nd - 2], d = q->shape[nd - 1], nk = k->shape[nd - 2], dv = v->shape[nd - 1];
  int64_t B = ct_numel(q) / (nq * d);
  double *O = calloc((size_t)(B * nq * dv), sizeof *O), *s = malloc(sizeof *s * (size_t)nk);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < nq; i++) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < nk; j++) {
        double dot = 0;
        for (int64_t c = 0; c < d; c++) dot += Q[(b * nq + i) * d + c] * K[(b * nk + j) * d + c];
        s[j] = causal && j > i ? -INFINITY : dot / sqrt((double)d);
        if (s[j] > mx) mx = s[j];
      }
      for (int64_t j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
      for (int64_t j = 0; j < nk; j++)
        for (int64_t c = 0; c < dv; c++) O[(b * nq + i) * dv + c] += s[j] / sum * V[(b * nk + j) * dv + c];
    }
  free(Q), free(K), free(V), free(s);
  return O;
}

static void expect_close(const char *what, const ct_tensor *got, const ct_tensor *want, double tol) {
  char msg[512];
  int rc = tu_compare_tensors(what, got, want, tol, tol, msg, sizeof msg);
  cr_assert(rc == 0, "%s", msg);
}

/* Forward and gradients of flash against naive on one configuration. */
static void flash_vs_naive(uint64_t seed, const int64_t *bshape, int nb, int64_t nq, int64_t nk, int64_t d, int64_t dv,
                           bool causal, int bq, int bk, ct_dtype dt, double tol) {
  tu_rng r;
  tu_seed(&r, seed);
  int64_t sq[CT_MAX_DIMS], sk[CT_MAX_DIMS], sv[CT_MAX_DIMS];
  for (int i = 0; i < nb; i++) sq[i] = sk[i] = sv[i] = bshape[i];
  sq[nb] = nq, sq[nb + 1] = d, sk[nb] = nk, sk[nb + 1] = d, sv[nb] = nk, sv[nb + 1] = dv;
  int nd = nb + 2;
  ct_tensor *q = rnd(&r, sq, nd, dt, true), *k = rnd(&r, sk, nd, dt, true), *v = rnd(&r, sv, nd, dt, true);
  ct_tensor *of = attn(q, k, v, causal, true, bq, bk), *on = attn(q, k, v, causal, false, 0, 0);
  OK(of);
  OK(on);
  cr_assert_eq(of->ndim, nd);
  cr_assert_eq(of->shape[nd - 2], nq);
  cr_assert_eq(of->shape[nd - 1], dv);
  expect_close("flash vs naive output", of, on, tol);
  if (nb <= 1) { /* and both against the definition */
    double *want = reference(q, k, v, causal);
    char msg[512];
    cr_assert(tu_compare("flash vs reference", of, want, ct_numel(of), tol, tol, msg, sizeof msg) == 0, "%s", msg);
    free(want);
  }
  ct_tensor *w = rnd(&r, of->shape, of->ndim, dt, false);
  ct_tensor *in[3] = {q, k, v}, *gf[3], *gn[3];
  cr_assert_eq(ct_grad(of, w, in, 3, gf, false, false), 0, "%s", ct_last_error());
  cr_assert_eq(ct_grad(on, w, in, 3, gn, false, false), 0, "%s", ct_last_error());
  static const char *const names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(gf[i]->ndim, in[i]->ndim);
    for (int j = 0; j < nd; j++) cr_assert_eq(gf[i]->shape[j], in[i]->shape[j], "%s dim %d", names[i], j);
    expect_close(names[i], gf[i], gn[i], tol);
    ct_release(gf[i]), ct_release(gn[i]);
  }
  ct_release(w), ct_release(of), ct_release(on), ct_release(q), ct_release(k), ct_release(v);
}

Test(attention, flash_equals_naive_f64_ragged_tiles) {
  /* 37 queries and 29 keys in tiles of 16 x 8: the last tile of each is partial */
  flash_vs_naive(1, (int64_t[]){2, 3}, 2, 37, 29, 8, 8, false, 16, 8, CT_F64, 1e-10);
  flash_vs_naive(2, (int64_t[]){2}, 1, 37, 29, 8, 5, true, 16, 8, CT_F64, 1e-10);
  flash_vs_naive(3, (int64_t[]){1}, 1, 50, 50, 16, 16, true, 7, 11, CT_F64, 1e-10);
  flash_vs_naive(4, NULL, 0, 19, 71, 4, 6, true, 64, 64, CT_F64, 1e-10); /* fewer queries than keys */
  flash_vs_naive(5, NULL, 0, 71, 19, 4, 6, true, 8, 8, CT_F64, 1e-10);  /* more queries than keys */
  flash_vs_naive(6, NULL, 0, 1, 1, 3, 2, true, 0, 0, CT_F64, 1e-12);    /* one of each */
}

Test(attention, flash_equals_naive_f32_default_tiles) {
  flash_vs_naive(7, (int64_t[]){2, 2}, 2, 130, 130, 32, 32, true, 0, 0, CT_F32, 2e-5);
  flash_vs_naive(8, (int64_t[]){3}, 1, 100, 200, 16, 24, false, 0, 0, CT_F32, 2e-5);
}

Test(attention, causal_rows_ignore_future_keys) {
  int64_t n = 23, d = 4;
  ct_tensor *q, *k, *v;
  rnd_qkv(11, n, d, CT_F64, false, &q, &k, &v);
  for (int flash = 0; flash < 2; flash++) {
    ct_tensor *o1 = attn(q, k, v, true, flash, 8, 8);
    OK(o1);
    double *a = tu_values(o1), *vv = tu_values(v);
    for (int c = 0; c < d; c++) /* the first query sees only the first key */
      cr_assert(fabs(a[c] - vv[c]) < 1e-12, "row 1 should equal v's row 1 (flash=%d)", flash);
    /* change key and value 13: rows 0..12 must not move, row 13 must */
    ct_tensor *k2 = ct_clone(k), *v2 = ct_clone(v);
    for (int c = 0; c < d; c++) {
      ct_set(k2, (int64_t[]){13, c}, 5.0 + c);
      ct_set(v2, (int64_t[]){13, c}, -7.0);
    }
    ct_tensor *o2 = attn(q, k2, v2, true, flash, 8, 8);
    OK(o2);
    double *b = tu_values(o2);
    for (int64_t i = 0; i < n; i++)
      for (int c = 0; c < d; c++) {
        double diff = fabs(a[i * d + c] - b[i * d + c]);
        if (i < 13) cr_assert(diff == 0, "row %lld changed by a future key (flash=%d)", (long long)i, flash);
        else if (i == 13 && c == 0) cr_assert(diff > 1e-6, "row 13 ignored its own key (flash=%d)", flash);
      }
    free(a), free(b), free(vv);
    ct_release(o1), ct_release(o2), ct_release(k2), ct_release(v2);
  }
  ct_release(q), ct_release(k), ct_release(v);
}

/* ---- finite differences ------------------------------------------------------------------------ */

typedef struct {
  bool causal;
  int bq, bk;
} flash_spec;

GC_SPEC_FN(flash_call, flash_spec, attn(in[0], in[1], in[2], s->causal, true, s->bq, s->bk))

Test(attention, flash_gradients_finite_differences) {
  for (int causal = 0; causal < 2; causal++) {
    flash_spec s = {causal, 4, 3};
    gc_case c = {.op = causal ? "attention_flash causal" : "attention_flash", .fn = flash_call, .ctx = &s, .nin = 3,
                 .seed = 77 + (uint64_t)causal};
    GC_IN_SHAPE(&c.in[0], 2, 9, 3);
    GC_IN_SHAPE(&c.in[1], 2, 7, 3);
    GC_IN_SHAPE(&c.in[2], 2, 7, 5);
    GC_ASSERT(&c);
  }
}

Test(attention, naive_causal_gradient_skips_future_values) {
  /* the naive path is a composite of ops each checked in test_grad_ops; here only its mask */
  ct_tensor *q, *k, *v;
  rnd_qkv(5, 5, 2, CT_F64, true, &q, &k, &v);
  ct_tensor *o = attn(q, k, v, true, false, 0, 0);
  OK(o);
  ct_tensor *in[1] = {v}, *g[1];
  ct_tensor *w = ct_zeros(TU_SHAPE(5, 2), CT_F64, ct_cpu());
  ct_set(w, (int64_t[]){2, 0}, 1.0); /* d o[3,1] / d v: only rows 1..3 of v can matter */
  cr_assert_eq(ct_grad(o, w, in, 1, g, false, false), 0, "%s", ct_last_error());
  double *gv = tu_values(g[0]);
  for (int j = 3; j < 5; j++) cr_assert(gv[j * 2] == 0, "future value row %d got a gradient", j + 1);
  cr_assert(gv[0] > 0 && gv[2] > 0 && gv[4] > 0, "past value rows get positive weights");
  free(gv);
  ct_release(g[0]), ct_release(w), ct_release(o), ct_release(q), ct_release(k), ct_release(v);
}

/* ---- bytes and memory ------------------------------------------------------------------------- */

/* The traffic of the CPU forward, written out independently of ops_attention.c: per query tile,
   its rows of q and of the output, plus every key row (k and v) its sweep reads. */
static double expected_forward_bytes(int64_t B, int64_t nq, int64_t nk, int64_t d, int64_t dv, int64_t br, bool causal,
                                     size_t isz) {
  double e = 0;
  for (int64_t i0 = 0; i0 < nq; i0 += br) {
    int64_t rows = i0 + br <= nq ? br : nq - i0, keys = nk;
    if (causal && i0 + rows < nk) keys = i0 + rows;
    e += (double)(rows * (d + dv) + keys * (d + dv));
  }
  return e * (double)B * (double)isz;
}

static const ct_event *find_op(const char *name) {
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *e = ct_events_get(i);
    if (e->kind == CT_EV_OP && !strcmp(e->name, name)) return e;
  }
  return NULL;
}

Test(attention, flash_bytes_counted_match_formula) {
  tu_rng r;
  tu_seed(&r, 21);
  struct {
    int64_t nq, nk, d, dv;
    int br;
    bool causal;
  } cases[] = {{37, 29, 8, 8, 16, false}, {100, 100, 16, 16, 32, true}, {64, 200, 8, 4, 0, true}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    ct_tensor *q = rnd(&r, TU_SHAPE(2, cases[c].nq, cases[c].d), CT_F32, true);
    ct_tensor *k = rnd(&r, TU_SHAPE(2, cases[c].nk, cases[c].d), CT_F32, true);
    ct_tensor *v = rnd(&r, TU_SHAPE(2, cases[c].nk, cases[c].dv), CT_F32, true);
    ct_events_start();
    ct_tensor *o = attn(q, k, v, cases[c].causal, true, cases[c].br, 16);
    OK(o);
    const ct_event *e = find_op("attention_flash");
    cr_assert_not_null(e, "no attention_flash event");
    int64_t br = cases[c].br ? cases[c].br : 64;
    double want = expected_forward_bytes(2, cases[c].nq, cases[c].nk, cases[c].d, cases[c].dv, br, cases[c].causal, 4);
    cr_assert(e->bytes == want, "case %zu: kernel counted %.0f bytes, formula %.0f", c, e->bytes, want);
    double api = ct_attention_flash_bytes(q->shape, 3, cases[c].nk, cases[c].dv, CT_F32, CT_CPU, cases[c].causal,
                                          cases[c].br, false);
    cr_assert(api == want, "ct_attention_flash_bytes %.0f, formula %.0f", api, want);
    /* the backward's count equals its formula too */
    ct_tensor *s = ct_sum(o, NULL, 0, false);
    cr_assert_eq(ct_backward(s, NULL, false, false), 0, "%s", ct_last_error());
    const ct_event *eb = find_op("attention_flash_backward");
    cr_assert_not_null(eb, "no attention_flash_backward event");
    double apib = ct_attention_flash_bytes(q->shape, 3, cases[c].nk, cases[c].dv, CT_F32, CT_CPU, cases[c].causal,
                                           cases[c].br, true);
    cr_assert(eb->bytes == apib, "backward counted %.0f, formula %.0f", eb->bytes, apib);
    ct_events_stop();
    ct_release(s), ct_release(o), ct_release(q), ct_release(k), ct_release(v);
  }
}

/* Largest single allocation made while fn's attention (forward and backward) runs. */
static int64_t largest_alloc(bool flash, int64_t n, int64_t d) {
  ct_tensor *q, *k, *v;
  rnd_qkv(31, n, d, CT_F32, true, &q, &k, &v);
  ct_events_start();
  ct_tensor *o = attn(q, k, v, true, flash, 0, 0);
  OK(o);
  ct_tensor *s = ct_sum(o, NULL, 0, false);
  cr_assert_eq(ct_backward(s, NULL, false, false), 0, "%s", ct_last_error());
  int64_t big = 0;
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *e = ct_events_get(i);
    if (e->kind == CT_EV_ALLOC && e->nbytes > big) big = e->nbytes;
  }
  ct_events_stop();
  ct_release(s), ct_release(o), ct_release(q), ct_release(k), ct_release(v);
  return big;
}

Test(attention, flash_never_allocates_n_by_n) {
  int64_t n = 512, d = 16, nn = n * n * 4;
  int64_t naive = largest_alloc(false, n, d), flash = largest_alloc(true, n, d);
  cr_assert(naive >= nn, "naive attention should hold the %lld-byte score matrix, largest allocation %lld", (long long)nn,
            (long long)naive);
  cr_assert(flash < nn / 8, "flash attention allocated %lld bytes at once (N x N is %lld)", (long long)flash,
            (long long)nn);
}

/* ---- errors --------------------------------------------------------------------------------- */

Test(attention, errors_name_the_problem) {
  tu_rng r;
  tu_seed(&r, 41);
  ct_tensor *q = rnd(&r, TU_SHAPE(2, 5, 4), CT_F32, false), *k = rnd(&r, TU_SHAPE(2, 6, 3), CT_F32, false);
  ct_tensor *v = rnd(&r, TU_SHAPE(2, 6, 4), CT_F32, false), *k2 = rnd(&r, TU_SHAPE(3, 6, 4), CT_F32, false);
  ct_tensor *k4 = rnd(&r, TU_SHAPE(2, 6, 4), CT_F32, false);
  cr_assert_null(attn(q, k, v, false, true, 0, 0));
  cr_assert(tu_error_has("attention", "last dim", "[2,5,4]", "[2,6,3]", NULL), "%s", ct_last_error());
  cr_assert_null(attn(q, k2, v, false, true, 0, 0));
  cr_assert(tu_error_has("identical batch dims", NULL), "%s", ct_last_error());
  ct_tensor *qb = ct_to_dtype(q, CT_BF16), *kb = ct_to_dtype(k4, CT_BF16), *vb = ct_to_dtype(v, CT_BF16);
  cr_assert_null(attn(qb, kb, vb, false, true, 0, 0));
  cr_assert(tu_error_has("bf16", "CPU", NULL), "%s", ct_last_error());
  ct_tensor *k0 = ct_zeros(TU_SHAPE(2, 0, 4), CT_F32, ct_cpu()), *v0 = ct_zeros(TU_SHAPE(2, 0, 4), CT_F32, ct_cpu());
  cr_assert_null(attn(q, k0, v0, false, true, 0, 0));
  cr_assert(tu_error_has("no keys", NULL), "%s", ct_last_error());
  ct_release(qb), ct_release(kb), ct_release(vb), ct_release(k0), ct_release(v0);
  ct_release(q), ct_release(k), ct_release(v), ct_release(k2), ct_release(k4);
}

Test(attention, flash_double_backward_says_so) {
  ct_tensor *q, *k, *v;
  rnd_qkv(51, 4, 3, CT_F64, true, &q, &k, &v);
  ct_tensor *o = attn(q, k, v, false, true, 0, 0);
  OK(o);
  ct_tensor *s = ct_sum(o, NULL, 0, false), *in[1] = {q}, *g[1];
  cr_assert_eq(ct_grad(s, NULL, in, 1, g, true, true), 0, "%s", ct_last_error());
  ct_tensor *gs = ct_sum(g[0], NULL, 0, false);
  cr_assert_neq(ct_backward(gs, NULL, false, false), 0, "double backward through flash should fail");
  cr_assert(tu_error_has("attention_flash_backward", NULL), "%s", ct_last_error());
  ct_release(gs), ct_release(g[0]), ct_release(s), ct_release(o), ct_release(q), ct_release(k), ct_release(v);
}
