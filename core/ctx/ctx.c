/* ctx.c: contexts (design decision 11): the default one, the thread-local current pointer,
 * creation and freeing, the clock, hooks and per-device memory accounting. See ctx.h for the
 * invariants. Process-wide here: the default context itself and the wall clock's origin. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx/ctx.h"

#define DEFAULT_SEED 0x2545F4914F6CDD1DULL

static ct_ctx default_ctx = {
    .grad_enabled = true, .default_category = CT_CAT_INPUT, .rng_seed = DEFAULT_SEED, .next_hook_id = 1};
_Thread_local ct_ctx *ct_ctx_tls = &default_ctx;
static double wall_origin;

ct_ctx *ct_ctx_default(void) { return &default_ctx; }
ct_ctx *ct_ctx_current(void) { return ct_ctx_tls; }

ct_ctx *ct_ctx_switch(ct_ctx *c) {
  ct_ctx *old = ct_ctx_tls;
  ct_ctx_tls = c ? c : &default_ctx;
  return old;
}

ct_ctx *ct_ctx_new(int rank) {
  ct_ctx *c = calloc(1, sizeof *c);
  if (!c) return ct_errorf("context: out of memory creating the context of rank %d", rank), NULL;
  c->rank = rank;
  c->grad_enabled = true;
  c->default_category = CT_CAT_INPUT; /* made at the prompt: input (PyTorch's memory categories) */
  c->rng_seed = DEFAULT_SEED;
  c->next_hook_id = 1;
  return c;
}

void ct_ctx_destroy(ct_ctx *c) {
  free(c->hooks);
  free(c);
}

void ct_ctx_free(ct_ctx *c) {
  if (!c || c == &default_ctx || c->freed) return;
  if (ct_ctx_tls == c) ct_ctx_tls = &default_ctx;
  c->freed = true;
  if (c->live_storages == 0) ct_ctx_destroy(c);
}

int ct_ctx_rank(const ct_ctx *c) { return c->rank; }
bool ct_ctx_grad_enabled(const ct_ctx *c) { return c->grad_enabled; }
bool ct_ctx_set_grad_enabled(ct_ctx *c, bool on) {
  bool old = c->grad_enabled;
  c->grad_enabled = on;
  return old;
}

void ct_ctx_manual_seed(ct_ctx *c, uint64_t seed) {
  c->rng_seed = seed;
  c->rng_offset = 0;
}
uint64_t ct_ctx_rng_seed(const ct_ctx *c) { return c->rng_seed; }
uint64_t ct_ctx_rng_offset(const ct_ctx *c) { return c->rng_offset; }

int ct_ctx_stream(const ct_ctx *c) { return c->stream; }
int ct_ctx_set_stream(ct_ctx *c, int stream) {
  int old = c->stream;
  c->stream = stream;
  return old;
}

/* ---- the clock --------------------------------------------------------------------------- */

static double wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

void ct_ctx_reset_wall_origin(void) { wall_origin = wall_us(); }
double ct_ctx_clock_us(const ct_ctx *c) { return c->virtual_clock ? c->clock_us : wall_us() - wall_origin; }
bool ct_ctx_clock_is_virtual(const ct_ctx *c) { return c->virtual_clock; }
void ct_ctx_set_virtual_clock(ct_ctx *c, double t_us) {
  c->virtual_clock = true;
  c->clock_us = t_us;
}
int ct_ctx_advance_clock(ct_ctx *c, double dt_us) {
  if (!c->virtual_clock)
    return ct_errorf("context: rank %d runs on the wall clock; set a virtual clock before advancing it", c->rank);
  if (!(dt_us >= 0)) return ct_errorf("context: the clock only moves forward, got a step of %g us", dt_us);
  c->clock_us += dt_us;
  return 0;
}
void ct_ctx_use_wall_clock(ct_ctx *c) { c->virtual_clock = false; }

/* ---- hooks ------------------------------------------------------------------------------- */

static int add_hook(ct_ctx *c, ct_hook_kind kind, ct_hook_any fn, void *ud) {
  if (!fn) return ct_errorf("context: a hook needs a function");
  if (c->nhooks == c->caphooks) {
    int cap = c->caphooks ? c->caphooks * 2 : 4;
    ct_hook *p = realloc(c->hooks, sizeof *p * (size_t)cap);
    if (!p) return ct_errorf("context: out of memory adding a hook");
    c->hooks = p;
    c->caphooks = cap;
  }
  int id = c->next_hook_id++;
  c->hooks[c->nhooks++] = (ct_hook){id, kind, fn, ud};
  c->nhooks_of[kind]++;
  return id;
}

int ct_ctx_add_grad_ready_hook(ct_ctx *c, ct_grad_ready_fn fn, void *ud) {
  return add_hook(c, CT_HOOK_GRAD_READY, (ct_hook_any)fn, ud);
}
int ct_ctx_add_backward_end_hook(ct_ctx *c, ct_backward_end_fn fn, void *ud) {
  return add_hook(c, CT_HOOK_BACKWARD_END, (ct_hook_any)fn, ud);
}
int ct_ctx_add_hook_any(ct_ctx *c, ct_hook_kind kind, ct_hook_any fn, void *ud) { return add_hook(c, kind, fn, ud); }

int ct_ctx_remove_hook(ct_ctx *c, int id) {
  for (int i = 0; i < c->nhooks; i++) {
    if (c->hooks[i].id != id) continue;
    c->nhooks_of[c->hooks[i].kind]--;
    memmove(&c->hooks[i], &c->hooks[i + 1], sizeof *c->hooks * (size_t)(c->nhooks - i - 1));
    c->nhooks--;
    return 0;
  }
  return ct_errorf("context: rank %d has no hook %d", c->rank, id);
}

int ct_ctx_hook_count(const ct_ctx *c, ct_hook_kind kind) {
  return kind >= 0 && kind < CT_HOOK_NKINDS ? c->nhooks_of[kind] : 0;
}

/* ---- memory ------------------------------------------------------------------------------ */

int ct_ctx_mem_device(const ct_ctx *c, ct_device dev, ct_mem_device_stats *out) {
  if (dev.type < 0 || dev.type >= CT_NDEVTYPES || dev.index < 0 || (dev.type == CT_CUDA && dev.index >= CT_CTX_MAX_CUDA))
    return ct_errorf("memory_stats: no statistics for device type %d index %d (cpu, cuda:0 .. cuda:%d)", (int)dev.type,
                     dev.index, CT_CTX_MAX_CUDA - 1);
  *out = c->mem[ct_ctx_mem_slot(dev)];
  return 0;
}

void ct_ctx_mem_get(const ct_ctx *c, ct_mem_stats *out) {
  memset(out, 0, sizeof *out);
  memcpy(out->live, c->type_live, sizeof out->live);
  memcpy(out->peak, c->type_peak, sizeof out->peak);
}

void ct_ctx_mem_reset_peak(ct_ctx *c) {
  for (int d = 0; d < CT_NDEVTYPES; d++) c->type_peak[d] = c->type_total[d];
  for (int s = 0; s < CT_CTX_NDEV; s++) c->mem[s].peak = c->slot_total[s];
}
