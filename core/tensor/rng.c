/* rng.c: Philox 4x32-10 (Salmon et al., SC'11), counter-based: element i of a draw made at stream
 * offset o uses counter o+i, so the CPU and a GPU kernel give identical numbers for one seed.
 * uniform = top 24 bits of word 0 / 2^24; normal = Box-Muller on words 0 and 1. */
#include <math.h>
#include <stdlib.h>

#include "cpu/iter.h"
#include "ctx/ctx.h"
#include "ops/optable.h"
#include "tensor/checked.h"

/* The stream (seed, offset) is the current context's (core/ctx): each simulated worker draws
   from its own, so one seed gives the same numbers whatever the interleaving of workers. */
void ct_manual_seed(uint64_t seed) { ct_ctx_manual_seed(ct_ctx_cur(), seed); }
uint64_t ct_rng_seed(void) { return ct_ctx_cur()->rng_seed; }
uint64_t ct_rng_reserve(uint64_t n) {
  ct_ctx *c = ct_ctx_cur();
  uint64_t o = c->rng_offset;
  c->rng_offset += n;
  return o;
}

void ct_philox(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

float ct_philox_uniform(uint64_t seed, uint64_t index) {
  uint32_t r[4];
  ct_philox(seed, index, r);
  return (float)(r[0] >> 8) * (1.0f / 16777216.0f);
}

float ct_philox_normal(uint64_t seed, uint64_t index) {
  uint32_t r[4];
  ct_philox(seed, index, r);
  float u1 = ((float)(r[0] >> 8) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1] */
  float u2 = (float)(r[1] >> 8) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795865f * u2);
}

typedef enum { DRAW_UNIFORM, DRAW_NORMAL, DRAW_INT } draw_kind;

static ct_tensor *draw(draw_kind kind, double lo, double hi, const int64_t *shape, int ndim, ct_dtype dt,
                       ct_device dev) {
  ct_tensor *t = ct_empty(shape, ndim, dt, ct_cpu());
  if (!t) return NULL;
  int64_t n = ct_numel(t);
  uint64_t rng_seed = ct_rng_seed(), off = ct_rng_reserve((uint64_t)n);
  size_t isz = ct_dtype_size(dt);
  char *p = t->storage->data;
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (kind == DRAW_UNIFORM) v = ct_philox_uniform(rng_seed, off + (uint64_t)i);
    else if (kind == DRAW_NORMAL) v = ct_philox_normal(rng_seed, off + (uint64_t)i);
    else {
      uint32_t r[4];
      ct_philox(rng_seed, off + (uint64_t)i, r);
      uint64_t span = (uint64_t)(hi - lo), x = ((uint64_t)r[1] << 32) | r[0];
      v = lo + (double)(x % span);
    }
    ct_store_from_double(dt, p + i * (int64_t)isz, v);
  }
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}

ct_tensor *ct_rand(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (!ct_dtype_is_float(dt)) return ct_errorf("rand: dtype must be floating point, got %s", ct_dtype_name(dt)), NULL;
  return draw(DRAW_UNIFORM, 0, 1, shape, ndim, dt, dev);
}
ct_tensor *ct_randn(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (!ct_dtype_is_float(dt)) return ct_errorf("randn: dtype must be floating point, got %s", ct_dtype_name(dt)), NULL;
  return draw(DRAW_NORMAL, 0, 1, shape, ndim, dt, dev);
}
ct_tensor *ct_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  if (hi <= lo) return ct_errorf("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi), NULL;
  return draw(DRAW_INT, (double)lo, (double)hi, shape, ndim, dt, dev);
}

ct_tensor *ct_randperm(int64_t n, ct_device dev) {
  if (n < 0) return ct_errorf("randperm: n must be >= 0, got %lld", (long long)n), NULL;
  if (ct_check_size("randperm", &n, 1, CT_I64)) return NULL;
  ct_tensor *t = ct_empty(&n, 1, CT_I64, ct_cpu());
  if (!t) return NULL;
  int64_t *p = t->storage->data;
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  uint64_t rng_seed = ct_rng_seed(), off = ct_rng_reserve((uint64_t)n);
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    uint32_t r[4];
    ct_philox(rng_seed, off + (uint64_t)i, r);
    int64_t j = (int64_t)((((uint64_t)r[1] << 32) | r[0]) % (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  if (dev.type == CT_CPU) return t;
  ct_tensor *r = ct_to_device(t, dev);
  ct_release(t);
  return r;
}
