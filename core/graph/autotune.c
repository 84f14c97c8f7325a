/* autotune.c: autotuning, as ML compilers do it: search a space of kernel configurations, time
 * each one on the real shapes, keep the fastest, and cache the choice.
 *  - the tiles bm x bn x bk of the matmul row's "tiled" implementation (the lesson's heatmap),
 *    each candidate run through the op table like any call of x:matmul(y, {impl = "tiled"});
 *  - the fused CPU kernels' chunk size (elements per step of the interpreter), used by replay.
 * Invariants: every time is the best of `repeats` runs of the real kernel on the real data (first
 * run included in the search only as warm-up); the caches are keyed by everything that changes
 * the answer (shape and dtype; a fused kernel's program signature); results are never guessed. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/capture_internal.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- the blocked matmul: the "tiled" implementation of the matmul row --------------------- */

ct_tensor *ct_matmul_tiled(ct_tensor *a, ct_tensor *b, int bm, int bn, int bk) {
  char d1[160], d2[160];
  if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0] || a->dtype != b->dtype ||
      (a->dtype != CT_F32 && a->dtype != CT_F64) || a->storage->device.type != CT_CPU ||
      b->storage->device.type != CT_CPU)
    return ct_errorf("matmul_tiled: needs two 2-D CPU tensors of one float dtype with matching inner sizes, got %s and %s",
                     ct_describe(a, d1, sizeof d1), ct_describe(b, d2, sizeof d2)), NULL;
  if (bm < 1 || bn < 1 || bk < 1) return ct_errorf("matmul_tiled: tiles must be positive, got %d x %d x %d", bm, bn, bk), NULL;
  const int tiles[3] = {bm, bn, bk};
  return ct_matmul_impl(a, b, "tiled", tiles);
}

typedef struct {
  int64_t m, n, k;
  ct_dtype dt;
  ct_tune_result best;
} mm_entry;
static mm_entry *mm_cache;
static int mm_n;

bool ct_autotune_matmul_cached(int64_t m, int64_t n, int64_t k, ct_dtype dt, ct_tune_result *best) {
  for (int i = 0; i < mm_n; i++)
    if (mm_cache[i].m == m && mm_cache[i].n == n && mm_cache[i].k == k && mm_cache[i].dt == dt) {
      if (best) *best = mm_cache[i].best;
      return true;
    }
  return false;
}

int ct_autotune_matmul(int64_t m, int64_t n, int64_t k, ct_dtype dt, const int *bms, int nbm, const int *bns, int nbn,
                       int bk, int repeats, ct_tune_result *results, ct_tune_result *best) {
  if (dt != CT_F32 && dt != CT_F64) return ct_errorf("autotune: matmul tiles are tuned for f32 or f64, not %s", ct_dtype_name(dt));
  if (m < 1 || n < 1 || k < 1 || nbm < 1 || nbn < 1 || bk < 1)
    return ct_errorf("autotune: sizes, tile lists and bk must be positive");
  if (repeats < 1) repeats = 1;
  int64_t sa[2] = {m, k}, sb[2] = {k, n};
  ct_tensor *A = ct_randn(sa, 2, dt, ct_cpu()), *B = A ? ct_randn(sb, 2, dt, ct_cpu()) : NULL;
  if (!B) {
    ct_release(A);
    return -1;
  }
  ct_tune_result top = {0};
  int rc = 0;
  for (int i = 0; i < nbm && !rc; i++)
    for (int j = 0; j < nbn && !rc; j++) {
      ct_tune_result r = {.bm = bms[i], .bn = bns[j], .bk = bk};
      double bestus = 0;
      for (int t = 0; t <= repeats; t++) { /* run 0 warms caches and pages */
        double t0 = now_us();
        ct_tensor *c = ct_matmul_tiled(A, B, bms[i], bns[j], bk);
        double us = now_us() - t0;
        if (!c) {
          rc = -1;
          break;
        }
        ct_release(c);
        if (t && (bestus == 0 || us < bestus)) bestus = us;
      }
      r.us = bestus;
      r.gflops = bestus > 0 ? 2.0 * (double)m * (double)n * (double)k / bestus / 1e3 : 0;
      if (results) results[i * nbn + j] = r;
      if (!rc && (top.us == 0 || r.us < top.us)) top = r;
    }
  ct_release(A), ct_release(B);
  if (rc) return -1;
  bool found = false;
  for (int i = 0; i < mm_n; i++)
    if (mm_cache[i].m == m && mm_cache[i].n == n && mm_cache[i].k == k && mm_cache[i].dt == dt) {
      mm_cache[i].best = top;
      found = true;
    }
  if (!found) {
    mm_entry *p = realloc(mm_cache, sizeof *p * (size_t)(mm_n + 1));
    if (!p) return ct_errorf("autotune: out of memory");
    mm_cache = p;
    mm_cache[mm_n++] = (mm_entry){m, n, k, dt, top};
  }
  if (best) *best = top;
  return 0;
}

/* ---- which implementation of the matmul row ------------------------------------------------ */

int ct_autotune_matmul_impl(int64_t m, int64_t n, int64_t k, ct_dtype dt, ct_device dev, int repeats,
                            ct_tune_impl *rows, int max, const char **best) {
  if (m < 1 || n < 1 || k < 1) return ct_errorf("autotune: sizes must be positive");
  if (repeats < 1) repeats = 1;
  int64_t sa[2] = {m, k}, sb[2] = {k, n};
  ct_tensor *A = ct_randn(sa, 2, dt, dev), *B = A ? ct_randn(sb, 2, dt, dev) : NULL;
  if (!B) {
    ct_release(A);
    return -1;
  }
  int nrows = 0, rc = 0;
  double top = 0;
  if (best) *best = NULL;
  for (int i = 1; i <= ct_op_impl_count(CT_OP_matmul) && !rc; i++) {
    const ct_opimpl *im = ct_op_impl(CT_OP_matmul, i);
    if (im->dev != dev.type) continue;
    double bestus = 0;
    for (int t = 0; t <= repeats; t++) { /* run 0 warms caches and pages */
      double t0 = now_us();
      ct_tensor *c = ct_matmul_impl(A, B, im->name, NULL);
      if (c && dev.type != CT_CPU && ct_cuda_synchronize()) ct_release(c), c = NULL;
      double us = now_us() - t0;
      if (!c) {
        ct_clear_error(); /* a rung that does not take this dtype is left out */
        bestus = -1;
        break;
      }
      ct_release(c);
      if (t && (bestus == 0 || us < bestus)) bestus = us;
    }
    if (bestus < 0) continue;
    if (rows && nrows < max) rows[nrows] = (ct_tune_impl){im->name, bestus, 2.0 * (double)m * (double)n * (double)k / bestus / 1e3};
    nrows++;
    if (top == 0 || bestus < top) {
      top = bestus;
      if (best) *best = im->name;
    }
  }
  ct_release(A), ct_release(B);
  return nrows ? (nrows < max ? nrows : max) : ct_errorf("autotune: no implementation of matmul runs %s on this device",
                                                          ct_dtype_name(dt));
}

/* ---- the fused kernels' chunk size --------------------------------------------------------- */

typedef struct {
  char *signature;
  int chunk;
} chunk_entry;
static chunk_entry *chunk_cache;
static int chunk_n;

int ct_autotune_fused_lookup(const char *signature, int64_t numel) {
  (void)numel;
  for (int i = 0; i < chunk_n; i++)
    if (!strcmp(chunk_cache[i].signature, signature)) return chunk_cache[i].chunk;
  return 1024;
}

static int remember_chunk(const char *signature, int chunk) {
  for (int i = 0; i < chunk_n; i++)
    if (!strcmp(chunk_cache[i].signature, signature)) {
      chunk_cache[i].chunk = chunk;
      return 0;
    }
  chunk_entry *p = realloc(chunk_cache, sizeof *p * (size_t)(chunk_n + 1));
  char *s = strdup(signature);
  if (!p || !s) {
    if (p) chunk_cache = p;
    free(s);
    return ct_errorf("autotune: out of memory");
  }
  chunk_cache = p;
  chunk_cache[chunk_n++] = (chunk_entry){s, chunk};
  return 0;
}

int ct_autotune_fused(ct_graph *g, const int *chunks, int nchunks, int repeats, ct_tune_chunk *rows, int max) {
  if (g->device.type != CT_CPU) return ct_errorf("autotune: the chunk size is tuned for CPU kernels");
  if (nchunks < 1) return ct_errorf("autotune: no chunk sizes to try");
  if (repeats < 1) repeats = 1;
  if (ct_graph_instantiate(g)) return -1;
  /* Kernels run on their own buffers, not a whole replay (which would also apply the step's
     optimizer updates): inputs in the arena get a plain value (no NaN or denormal slow paths);
     the step's values are recomputed by the next replay. */
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || n->op != CT_GOP_FUSED) continue;
    for (int q = 0; q < n->nin; q++) {
      ct_gvalue *x = &g->v[n->in[q]];
      int r = ct_graph_root(g, n->in[q]);
      if (g->v[r].slice && x->rt && ct_fill_(x->rt, 0.5)) return -1;
    }
  }
  int nrows = 0;
  ct_text why = {0};
  for (int i = 0; i < g->nn; i++) {
    ct_gnode *n = &g->n[i];
    if (n->dead || n->op != CT_GOP_FUSED) continue;
    ct_fused *k = g->kernels[n->kernel];
    if (!ct_fused_is_flat(k)) continue;
    int best = 0;
    double bestus = 0;
    for (int c = 0; c < nchunks; c++) {
      ct_fused_set_chunk(k, chunks[c]);
      double us = 0;
      for (int t = 0; t <= repeats; t++) {
        double t0 = now_us();
        if (ct_fused_run_cpu(g, n, k)) {
          free(why.s);
          return -1;
        }
        double d = now_us() - t0;
        if (t && (us == 0 || d < us)) us = d;
      }
      if (rows && nrows < max) rows[nrows] = (ct_tune_chunk){k->id, chunks[c], us};
      nrows++;
      if (bestus == 0 || us < bestus) bestus = us, best = chunks[c];
    }
    ct_fused_set_chunk(k, best);
    if (remember_chunk(k->signature, best)) {
      free(why.s);
      return -1;
    }
    ct_text_printf(&why, "  %s: chunk %d (%.1f us)\n", k->name, best, bestus);
  }
  ct_graph_set_explain(g, "autotune", why.s);
  return nrows < max ? nrows : max;
}
