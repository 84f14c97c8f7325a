/* rng.c: Philox 4x32-10 (Salmon et al., SC'11), counter-based: element i of a draw made at stream
 * offset o uses counter o+i, so the CPU and a GPU kernel give identical numbers for one seed.
 * uniform = top 24 bits of word 0 / 2^24; normal = Box-Muller on words 0 and 1. */
#include <math.h>
#include <stdlib.h>

#include "ctx/ctx.h"
#include "tensor/tensor_impl.h"

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
