/* step_parity.c: the training step's kernels on the GPU against the CPU: the fused optimizer rows
 * (sgd_multi, adam_multi) on awkward sizes and more tensors than one launch takes, gelu's
 * one-kernel backward, and the index checks that report at the next synchronisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/optable.h"

/* n tensors per list of the sizes below (cycled), on both devices with the same values */
static const int64_t OSIZES[] = {1, 7, 33, 1000, 2049, 5000};
#define NOS ((int)(sizeof OSIZES / sizeof *OSIZES))

typedef struct {
  int n;
  ct_tensor **t[2]; /* [device][list * n + i] */
} lists;

static lists mk_lists(int n, int nl, ct_dtype dt) {
  lists L = {n, {calloc((size_t)(n * nl), sizeof(ct_tensor *)), calloc((size_t)(n * nl), sizeof(ct_tensor *))}};
  for (int l = 0; l < nl; l++)
    for (int i = 0; i < n; i++) {
      int64_t s = OSIZES[i % NOS];
      /* exp_avg_sq (list 2 of Adam) must be >= 0 */
      pair p = mk(&s, 1, dt, l == 2 && nl == 4 ? 0 : -1, 1, LAY_CONTIG, false);
      L.t[0][l * n + i] = ct_retain(p.t[0]);
      L.t[1][l * n + i] = ct_retain(p.t[1]);
      pair_free(&p);
    }
  return L;
}
static void free_lists(lists *L, int nl) {
  for (int d = 0; d < 2; d++) {
    for (int k = 0; k < L->n * nl; k++) ct_release(L->t[d][k]);
    free(L->t[d]);
  }
}
/* every written tensor (the first nw lists) equal on both devices */
static void check_lists(const char *op, const char *label, lists *L, int nw) {
  bool ok = true;
  double worst = 0;
  const char *why = NULL;
  for (int k = 0; k < L->n * nw && ok; k++) {
    const char *w = NULL;
    double e = compare(L->t[0][k], L->t[1][k], &w);
    if (w) ok = false, why = w;
    if (e > worst) worst = e;
  }
  record(op, label, ok && worst == 0, worst, why ? why : "not exactly equal");
}

static void optim_cases(void) {
  const ct_dtype dts[2] = {CT_F32, CT_F64};
  const int counts[3] = {1, 6, 50}; /* 50: more tensors than one launch's table (48) */
  char label[200];
  for (int di = 0; di < 2; di++)
    for (int ci = 0; ci < 3; ci++) {
      int n = counts[ci];
      /* SGD: plain, momentum (first step, then a later one) with dampening and weight decay, Nesterov */
      for (int cfg = 0; cfg < 4; cfg++) {
        double mom = cfg ? 0.9 : 0, damp = cfg == 2 ? 0.1 : 0, wd = cfg >= 2 ? 0.01 : 0;
        bool nest = cfg == 3, first = cfg == 1;
        int nl = mom != 0 ? 3 : 2;
        lists L = mk_lists(n, nl, dts[di]);
        int rc = 0;
        for (int d = 0; d < 2 && !rc; d++)
          rc = ct_sgd_multi_(L.t[d], mom != 0 ? L.t[d] + n : NULL, L.t[d] + (nl - 1) * n, n, 0.05, mom, damp, wd, nest,
                             first);
        snprintf(label, sizeof label, "sgd_multi %s, %d tensors, momentum %g dampening %g wd %g%s%s",
                 ct_dtype_name(dts[di]), n, mom, damp, wd, nest ? " nesterov" : "", first ? " first step" : "");
        if (rc)
          record("sgd_multi", label, false, INFINITY, ct_last_error());
        else
          check_lists("sgd_multi", label, &L, nl - 1);
        free_lists(&L, nl);
      }
      /* Adam and AdamW at steps 1 and 7, with and without weight decay */
      for (int cfg = 0; cfg < 4; cfg++) {
        bool decoupled = cfg & 1;
        double wd = cfg >= 2 ? 0.1 : 0;
        int64_t step = cfg == 1 ? 1 : 7;
        lists L = mk_lists(n, 4, dts[di]);
        int rc = 0;
        for (int d = 0; d < 2 && !rc; d++)
          rc = ct_adam_multi_(L.t[d], L.t[d] + n, L.t[d] + 2 * n, L.t[d] + 3 * n, n, 0.01, 0.9, 0.999, 1e-8, wd,
                              decoupled, step);
        snprintf(label, sizeof label, "adam_multi %s, %d tensors, %s wd %g step %lld", ct_dtype_name(dts[di]), n,
                 decoupled ? "AdamW" : "Adam", wd, (long long)step);
        if (rc)
          record("adam_multi", label, false, INFINITY, ct_last_error());
        else
          check_lists("adam_multi", label, &L, 3);
        free_lists(&L, 4);
      }
    }
}

static ct_tensor *op_gelu_bwd(ct_tensor *const *x, const prm *p) {
  (void)p;
  ct_tensor *in[2] = {x[0], x[1]};
  return ct_op_run(CT_OP_gelu_bwd, in, 2, NULL);
}

/* A bad index on the GPU: the op returns, the next synchronisation (or read) fails with the CPU's
   message; the one after is clean. */
static ct_tensor *op_nll(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_nll_loss(x[0], x[1]);
}
static ct_tensor *op_one_hot(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_one_hot(x[0], 11, CT_F32);
}
static ct_tensor *op_isel(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_index_select(x[0], 0, x[1]);
}
static ct_tensor *op_gather(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_gather(x[0], 1, x[1]);
}
static void deferred_case(const char *op, const char *label, opf f, ct_tensor *const *cpu, ct_tensor *const *gpu,
                          bool by_read) {
  char want[600], why[1400];
  ct_clear_error();
  ct_tensor *r = f(cpu, NULL);
  snprintf(want, sizeof want, "%s", r ? "(the CPU accepted it)" : ct_last_error());
  char *cut = strstr(want, " (inputs:");
  if (cut) *cut = 0;
  ct_release(r);
  ct_clear_error();
  ct_tensor *g = f(gpu, NULL);
  bool ok = g != NULL;
  snprintf(why, sizeof why, "the GPU op failed at once: %s", g ? "" : ct_last_error());
  if (ok) {
    void *host = malloc((size_t)ct_numel(g) * ct_dtype_size(g->dtype) + 8);
    int rc = by_read ? ct_read_host(g, host) : ct_cuda_synchronize();
    free(host);
    ok = rc != 0 && strstr(ct_last_error(), want) && strstr(ct_last_error(), "synchronisation");
    snprintf(why, sizeof why, "expected the CPU's \"%s\" at the %s, got: %s", want, by_read ? "read" : "synchronize",
             rc ? ct_last_error() : "no error");
    if (ok && ct_cuda_synchronize()) ok = false, snprintf(why, sizeof why, "reported twice: %s", ct_last_error());
  }
  ct_release(g);
  record(op, label, ok, 0, why);
}
static void deferred_cases(void) {
  int64_t ls[2] = {4, 11}, ks[1] = {4}, xs[2] = {4, 3}, gs[2] = {4, 2};
  double bad_t[4] = {1, 2, 12, 3}, bad_i[4] = {1, 5, -2, 2}, zero_i[4] = {1, 0, 2, 3},
         bad_g[8] = {1, 2, 3, 1, 4, 1, 2, 2};
  pair lp = mk(ls, 2, CT_F32, -1, 1, LAY_CONTIG, false), t = mk_values(bad_t, ks, 1, CT_I64, false);
  pair x = mk(xs, 2, CT_F32, -1, 1, LAY_CONTIG, false), bi = mk_values(bad_i, ks, 1, CT_I64, false);
  pair zi = mk_values(zero_i, ks, 1, CT_I64, false), bg = mk_values(bad_g, gs, 2, CT_I64, false);
  ct_tensor *c2[2] = {lp.t[0], t.t[0]}, *g2[2] = {lp.t[1], t.t[1]};
  deferred_case("nll_loss", "target 12 of 11: the CPU's error at synchronize", op_nll, c2, g2, false);
  deferred_case("nll_loss", "target 12 of 11: the CPU's error at the loss's read", op_nll, c2, g2, true);
  deferred_case("one_hot", "class 12 of 11: the CPU's error at synchronize", op_one_hot, &t.t[0], &t.t[1], false);
  ct_tensor *c3[2] = {x.t[0], bi.t[0]}, *g3[2] = {x.t[1], bi.t[1]};
  deferred_case("index_select", "index 5 of 4: the CPU's error at synchronize", op_isel, c3, g3, false);
  c3[1] = zi.t[0], g3[1] = zi.t[1];
  deferred_case("index_select", "index 0 (1-based): the CPU's error at a read", op_isel, c3, g3, true);
  c3[1] = bg.t[0], g3[1] = bg.t[1];
  deferred_case("gather", "index 4 of 3 along dim 2: the CPU's error at synchronize", op_gather, c3, g3, false);
  pair_free(&lp), pair_free(&t), pair_free(&x), pair_free(&bi), pair_free(&zi), pair_free(&bg);
}

static ct_tensor *op_linear(ct_tensor *const *x, const prm *p) {
  (void)p;
  return ct_linear(x[0], x[1], x[2]);
}

void cases_step(void) {
  optim_cases();
  char label[200];
  /* linear: x [s, 33] and [2, s, 33] in every layout, W [17, 33] (f32: the cuBLASLt epilogue) */
  for (int si = 0; si < NSIZES; si++)
    for (int di = 0; di < 2; di++)
      for (int lay = 0; lay < LAY_COUNT; lay++)
        for (int nd = 2; nd <= 3; nd++) {
          ct_dtype dt = di ? CT_F64 : CT_F32;
          int64_t xs[3] = {2, SIZES[si], 33}, ws[2] = {17, 33}, bs[1] = {17};
          pair in[3] = {mk(xs + 3 - nd, nd, dt, -1, 1, lay, true), mk(ws, 2, dt, -1, 1, lay, true),
                        mk(bs, 1, dt, -1, 1, LAY_CONTIG, true)};
          snprintf(label, sizeof label, "linear %s x [%s%lld,33] %s, W [17,33]", ct_dtype_name(dt), nd == 3 ? "2," : "",
                   (long long)SIZES[si], lay_names[lay]);
          run_case("linear", label, op_linear, NULL, in, 3, di ? 1e-24 : 1e-10, di ? 1e-22 : 1e-9);
          for (int k = 0; k < 3; k++) pair_free(&in[k]);
        }
  for (int si = 0; si < NSIZES; si++)
    for (int di = 0; di < 2; di++) {
      ct_dtype dt = di ? CT_F64 : CT_F32;
      int64_t s[2] = {SIZES[si], 5};
      pair in[2] = {mk(s, 2, dt, -1, 1, LAY_T, true), mk(s, 2, dt, -3, 3, LAY_NARROW, true)};
      snprintf(label, sizeof label, "gelu_bwd(g, x) %s [%lld,5], g transposed, x narrowed", ct_dtype_name(dt),
               (long long)SIZES[si]);
      run_case("gelu_bwd", label, op_gelu_bwd, NULL, in, 2, dt == CT_F32 ? 1e-10 : 1e-24, dt == CT_F32 ? 1e-8 : 1e-20);
      pair_free(&in[0]), pair_free(&in[1]);
    }
  if (GPU.type == CT_CUDA) deferred_cases();
}
