/* harness.c: the parity harness's framework and main (see harness.h). Prints PASS/FAIL per op,
 * a summary line with the GPU's name, and exits nonzero when anything failed. Without a GPU it
 * prints "test-gpu: SKIPPED: no CUDA GPU visible (reason)" and exits 0: a skip, not a pass.
 * Invariants: the CPU result is the reference; each case frees everything it made, so the live
 * tensor count returns to its start (checked at the end, which catches leaks of the backend). */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const lay_names[LAY_COUNT] = {"contig", "transposed", "narrowed"};
ct_device GPU = {CT_CUDA, 0};
const int64_t SIZES[4] = {1, 7, 33, 1000};
int NSIZES = 4;
bool QUICK = false;

/* ---- random numbers (xorshift64*) -------------------------------------------------------------- */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t next_u64(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
double urand(void) { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1)); }

/* ---- inputs -------------------------------------------------------------------------------------- */
static void die(const char *what) {
  fprintf(stderr, "parity: %s: %s\n", what, ct_last_error());
  exit(2);
}

/* The view of the base that a layout asks for (a new reference). */
static ct_tensor *view_of(ct_tensor *b, int layout) {
  ct_tensor *t;
  if (layout == LAY_T) t = ct_transpose(b, -1, -2);
  else if (layout == LAY_NARROW) t = ct_narrow(b, -1, 1, b->shape[b->ndim - 1] - 3);
  else t = ct_retain(b);
  if (!t) die("making a view");
  return t;
}

static pair from_base(ct_tensor *cpu_base, int layout, bool grad) {
  pair p = {{NULL, NULL}, {NULL, NULL}, grad, layout};
  p.base[0] = cpu_base;
  p.base[1] = ct_to_device(cpu_base, GPU);
  if (!p.base[1]) die("copying an input to the GPU");
  for (int d = 0; d < 2; d++) {
    if (grad && ct_requires_grad_(p.base[d], true)) die("requires_grad");
    p.t[d] = view_of(p.base[d], layout);
  }
  return p;
}

/* The inputs of one case on device d: fresh views (a view of a base that requires grad is a graph
   node, which a previous case's backward has freed), new references the case releases; and no
   gradient left on the bases from a previous case. */
static ct_tensor *case_input(pair *p, int d) {
  if (!p->grad) return ct_retain(p->t[d]);
  ct_zero_grad(p->base[d]);
  return p->layout < 0 ? ct_retain(p->t[d]) : view_of(p->base[d], p->layout);
}

pair mk(const int64_t *shape, int nd, ct_dtype dt, double lo, double hi, int layout, bool grad) {
  int64_t bs[CT_MAX_DIMS];
  memcpy(bs, shape, sizeof(int64_t) * (size_t)nd);
  if (nd < 2 && layout == LAY_T) layout = LAY_CONTIG;
  if (nd < 1 && layout == LAY_NARROW) layout = LAY_CONTIG;
  if (layout == LAY_T) bs[nd - 1] = shape[nd - 2], bs[nd - 2] = shape[nd - 1];
  if (layout == LAY_NARROW) bs[nd - 1] += 3;
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= bs[d];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  bool integral = !ct_dtype_is_float(dt);
  for (int64_t i = 0; i < n; i++) {
    double x = lo + (hi - lo) * urand();
    v[i] = dt == CT_BOOL ? (double)(x > 0.5 * (lo + hi)) : integral ? round(x) : x;
  }
  ct_tensor *b = ct_from_doubles(v, bs, nd, dt, ct_cpu());
  free(v);
  if (!b) die("making an input");
  return from_base(b, layout, grad && ct_dtype_is_float(dt));
}

pair mk_index(const int64_t *shape, int nd, int64_t D, bool neg, ct_dtype dt) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    int64_t k = irand(1, D);
    v[i] = (double)(neg && urand() < 0.3 ? k - D - 1 : k);
  }
  ct_tensor *b = ct_from_doubles(v, shape, nd, dt, ct_cpu());
  free(v);
  if (!b) die("making an index");
  return from_base(b, LAY_CONTIG, false);
}

pair mk_values(const double *v, const int64_t *shape, int nd, ct_dtype dt, bool grad) {
  ct_tensor *b = ct_from_doubles(v, shape, nd, dt, ct_cpu());
  if (!b) die("making an input");
  return from_base(b, LAY_CONTIG, grad);
}

void pair_free(pair *p) {
  for (int d = 0; d < 2; d++) {
    ct_release(p->t[d]);
    ct_release(p->base[d]);
    p->t[d] = p->base[d] = NULL;
  }
}

/* ---- comparison ------------------------------------------------------------------------------------ */
double compare(const ct_tensor *ref, const ct_tensor *got, const char **why) {
  static char msg[300];
  *why = NULL;
  if (!ref || !got) {
    *why = "missing result";
    return INFINITY;
  }
  char d1[160], d2[160];
  if (ref->ndim != got->ndim || memcmp(ref->shape, got->shape, sizeof(int64_t) * (size_t)ref->ndim) ||
      ref->dtype != got->dtype) {
    snprintf(msg, sizeof msg, "result %s vs reference %s", ct_describe(got, d1, sizeof d1), ct_describe(ref, d2, sizeof d2));
    *why = msg;
    return INFINITY;
  }
  int64_t n = ct_numel(ref);
  double *a = malloc(sizeof(double) * (size_t)(n ? n : 1)), *b = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (ct_to_doubles(ref, a) || ct_to_doubles(got, b)) {
    snprintf(msg, sizeof msg, "reading results: %s", ct_last_error());
    *why = msg;
    free(a), free(b);
    return INFINITY;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    bool an = isnan(a[i]), bn = isnan(b[i]);
    if (an || bn) {
      if (an && bn) continue;
      snprintf(msg, sizeof msg, "element %lld: got %g, reference %g", (long long)i, b[i], a[i]);
      *why = msg;
      free(a), free(b);
      return INFINITY;
    }
    if (isinf(a[i]) || isinf(b[i])) {
      if (a[i] == b[i]) continue;
      snprintf(msg, sizeof msg, "element %lld: got %g, reference %g", (long long)i, b[i], a[i]);
      *why = msg;
      free(a), free(b);
      return INFINITY;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  free(a), free(b);
  return den > 0 ? num / den : num;
}

/* ---- results ---------------------------------------------------------------------------------------- */
typedef struct {
  char op[48];
  int cases, fails;
  double worst;
} op_stat;
static op_stat stats[256];
static int nstats, total_fails;

void record(const char *op, const char *label, bool ok, double nmse, const char *why) {
  op_stat *s = NULL;
  for (int i = 0; i < nstats; i++)
    if (!strcmp(stats[i].op, op)) s = &stats[i];
  if (!s && nstats < 256) {
    s = &stats[nstats++];
    snprintf(s->op, sizeof s->op, "%s", op);
  }
  if (s) {
    s->cases++;
    if (!ok) s->fails++;
    if (isfinite(nmse) && nmse > s->worst) s->worst = nmse;
  }
  if (!ok) {
    total_fails++;
    printf("FAIL %-22s %s: %s (nmse %.3g)\n", op, label, why ? why : "", nmse);
    fflush(stdout);
  }
}

static ct_tensor *weighted_sum(ct_tensor *out, ct_tensor *w) {
  ct_tensor *m = ct_mul(out, w);
  ct_tensor *s = m ? ct_sum(m, NULL, 0, false) : NULL;
  ct_release(m);
  return s;
}

static bool run_checks(const char *op, const char *label, opf f, const prm *p, pair *in, ct_tensor *x[2][8], int nin,
                       double tol, double gtol);

bool run_case(const char *op, const char *label, opf f, const prm *p, pair *in, int nin, double tol, double gtol) {
  ct_tensor *x[2][8];
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < nin; k++) x[d][k] = case_input(&in[k], d);
  bool ok = run_checks(op, label, f, p, in, x, nin, tol, gtol);
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < nin; k++) ct_release(x[d][k]);
  return ok;
}

static bool run_checks(const char *op, const char *label, opf f, const prm *p, pair *in, ct_tensor *x[2][8], int nin,
                       double tol, double gtol) {
  ct_tensor *out[2];
  char err[2][1024];
  for (int d = 0; d < 2; d++) {
    ct_clear_error();
    out[d] = f(x[d], p);
    snprintf(err[d], sizeof err[d], "%s", out[d] ? "" : ct_last_error());
  }
  char why[2200];
  if (!out[0] || !out[1]) { /* both must fail, with the same message up to the input list */
    bool ok = !out[0] && !out[1];
    if (ok) {
      char *c0 = strstr(err[0], " (inputs:"), *c1 = strstr(err[1], " (inputs:");
      if (c0) *c0 = 0;
      if (c1) *c1 = 0;
      ok = !strcmp(err[0], err[1]);
    }
    snprintf(why, sizeof why, "cpu: %s | gpu: %s", out[0] ? "ok" : err[0], out[1] ? "ok" : err[1]);
    record(op, label, ok, 0, why);
    ct_release(out[0]), ct_release(out[1]);
    return ok;
  }
  bool ok = true;
  const char *w = NULL;
  if (out[1]->storage->device.type != GPU.type) {
    record(op, label, false, INFINITY, "the GPU run's result is not on the GPU");
    ok = false;
  } else {
    double e = compare(out[0], out[1], &w);
    bool pass = !w && (tol == 0 ? e == 0 : e <= tol);
    if (!w && !pass) w = tol == 0 ? "not exactly equal" : "NMSE above threshold";
    record(op, label, pass, e, w);
    ok = pass;
  }
  bool any_grad = false;
  for (int k = 0; k < nin; k++) any_grad |= in[k].grad;
  if (ok && any_grad && out[0]->requires_grad && ct_dtype_is_float(out[0]->dtype)) {
    pair wt = mk(out[0]->shape, out[0]->ndim, out[0]->dtype, -1, 1, LAY_CONTIG, false);
    int rc = 0;
    for (int d = 0; d < 2 && !rc; d++) {
      ct_tensor *loss = weighted_sum(out[d], wt.t[d]);
      rc = loss ? ct_backward(loss, NULL, false, false) : -1;
      if (rc) snprintf(why, sizeof why, "backward on %s: %s", d ? "gpu" : "cpu", ct_last_error());
      ct_release(loss);
    }
    char glabel[300];
    snprintf(glabel, sizeof glabel, "%s grad", label);
    if (rc) {
      record(op, glabel, false, INFINITY, why);
      ok = false;
    }
    for (int k = 0; k < nin && !rc; k++) {
      if (!in[k].grad) continue;
      double e = compare(in[k].base[0]->grad, in[k].base[1]->grad, &w);
      bool pass = !w && e <= gtol;
      snprintf(glabel, sizeof glabel, "%s grad of input %d", label, k + 1);
      record(op, glabel, pass, e, w ? w : pass ? NULL : "gradient NMSE above threshold");
      ok &= pass;
    }
    pair_free(&wt);
  }
  ct_release(out[0]), ct_release(out[1]);
  return ok;
}

int harness_summary(void) {
  printf("\n%-24s %6s %6s %12s\n", "op", "cases", "fails", "worst nmse");
  int cases = 0;
  for (int i = 0; i < nstats; i++) {
    printf("%-24s %6d %6d %12.3g  %s\n", stats[i].op, stats[i].cases, stats[i].fails, stats[i].worst,
           stats[i].fails ? "FAIL" : "PASS");
    cases += stats[i].cases;
  }
  char name[256] = "cpu";
  if (GPU.type == CT_CUDA) ct_cuda_device_name(GPU.index, name, sizeof name);
  printf("\ntest-gpu: %s: %d ops, %d checks, %d failed: %s\n", name, nstats, cases, total_fails,
         total_fails ? "FAIL" : "PASS");
  return total_fails;
}

/* The path of a machine without a GPU, run as a child with CUDA_VISIBLE_DEVICES empty. */
static int expect_no_gpu(void) {
  ct_init();
  int bad = 0;
  if (ct_cuda_available()) printf("no-gpu child: CUDA still available\n"), bad++;
  const char *r = ct_cuda_unavailable_reason();
  if (!r || !*r) printf("no-gpu child: no reason given\n"), bad++;
  int64_t shape[1] = {4};
  ct_tensor *t = ct_zeros(shape, 1, CT_F32, GPU);
  if (t || !strstr(ct_last_error(), "not available")) printf("no-gpu child: zeros on cuda: %s\n", ct_last_error()), bad++;
  ct_release(t);
  ct_tensor *c = ct_zeros(shape, 1, CT_F32, ct_cpu());
  ct_tensor *g = c ? ct_to_device(c, GPU) : NULL;
  if (g || !strstr(ct_last_error(), "not available")) printf("no-gpu child: to(cuda): %s\n", ct_last_error()), bad++;
  ct_release(g), ct_release(c);
  if (ct_cuda_synchronize() == 0) printf("no-gpu child: synchronize succeeded\n"), bad++;
  printf("no-gpu child: reason \"%s\"; %s\n", r ? r : "", bad ? "FAIL" : "ok");
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--expect-no-gpu")) return expect_no_gpu();
  setenv("CHALK_CUDA_POISON", "1", 0);
  ct_init();
  /* CHALK_PARITY_CPU_ONLY=1: the "GPU" side runs on the CPU too, which checks the harness itself
     (under ASan, say) on a machine without a GPU; the CUDA-only checks are left out */
  const char *cpu_only_env = getenv("CHALK_PARITY_CPU_ONLY");
  bool cpu_only = cpu_only_env && *cpu_only_env && strcmp(cpu_only_env, "0");
  if (cpu_only) GPU = ct_cpu();
  if (!cpu_only && !ct_cuda_available()) {
    printf("test-gpu: SKIPPED: no CUDA GPU visible (%s)\n", ct_cuda_unavailable_reason());
    return 0;
  }
  const char *quick = getenv("CHALK_PARITY_QUICK");
  if (quick && *quick && strcmp(quick, "0")) QUICK = true, NSIZES = 3;
  const char *seed_env = getenv("CHALK_PARITY_SEED");
  uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
  rng_state = seed ? seed : 1;
  char name[256] = "cpu (CHALK_PARITY_CPU_ONLY)";
  if (!cpu_only) ct_cuda_device_name(0, name, sizeof name);
  printf("test-gpu: %s, %d device(s); seed %llu (CHALK_PARITY_SEED=%llu reproduces)\n", name,
         cpu_only ? 0 : ct_cuda_device_count(),
         (unsigned long long)seed, (unsigned long long)seed);
  fflush(stdout);
  ct_mem_stats m0;
  ct_mem_get(&m0);

  if (!cpu_only) cases_backend();
  cases_convert();
  cases_elementwise();
  cases_reduce();
  cases_matmul();
  cases_nn();
  cases_index();
  cases_conv();
  if (!cpu_only) {
    cases_ladder();
    cases_attention();
    cases_paged();
    cases_quant();
    cases_warpspec();
  }
  if (!cpu_only && ct_cuda_synchronize()) record("synchronize", "end of run", false, INFINITY, ct_last_error());

  ct_mem_stats m1;
  ct_mem_get(&m1);
  char why[200];
  snprintf(why, sizeof why, "%lld tensors live at start, %lld at end", (long long)m0.live_tensors,
           (long long)m1.live_tensors);
  record("no leaks", "live tensors", m1.live_tensors == m0.live_tensors, 0, why);

  /* the no-GPU path: the same binary, with the GPU hidden */
  if (!cpu_only) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "CUDA_VISIBLE_DEVICES= '%s' --expect-no-gpu", argv[0]);
    int st = system(cmd);
    record("no-gpu path", "CUDA_VISIBLE_DEVICES empty", st == 0, 0, "child reported a problem");
  }
  return harness_summary() ? 1 : 0;
}
