/* ctx.h: the state of one worker (design decision 11): the struct behind chalk.h's ct_ctx.
 *
 * Everything a simulated worker must not share with another lives here: grad mode and
 * retain-grads, the RNG stream (seed, offset), the hooks (op, gradient-ready, backward-end),
 * the event lane (rank, stream), the default memory category, memory statistics per device
 * index and category, and the clock (wall or virtual). ct_ctx_cur() is the calling thread's
 * current context: a thread-local pointer load, so hot paths (ct_op_run, ct_storage_new) read it
 * once per call. The ctx layer is the bottom of core, beside the errors: it includes chalk.h and
 * nothing else of core, and calls only ct_errorf.
 *
 * Invariants: every thread starts on the default context; a storage is charged to the context
 * that was current when it was allocated (storage->ctx) and its free is charged back there, so
 * live bytes never go negative when a tensor made by one worker dies under another; a context
 * freed while storages it allocated still live is kept (freed = true) until the last one goes.
 * mem[] slot 0 is the CPU, slot 1 + i is cuda:i; type_live/type_peak sum the slots of a device
 * type (the ct_mem_stats view), kept incrementally so ct_mem_get is a copy. */
#ifndef CHALK_CTX_H
#define CHALK_CTX_H

#include "chalk.h"

#define CT_CTX_NDEV (1 + CT_CTX_MAX_CUDA)

typedef void (*ct_hook_any)(void); /* stored type; cast back to the kind's type to call */

typedef struct {
  int id;
  ct_hook_kind kind;
  ct_hook_any fn;
  void *ud;
} ct_hook;

struct ct_ctx {
  int rank;
  bool grad_enabled;
  bool retain_all_grads;
  ct_category default_category;
  uint64_t rng_seed, rng_offset;
  int stream;          /* the event lane: events pushed with stream 0 get this one */
  bool virtual_clock;  /* clock_us is advanced by a simulator instead of read from the wall */
  double clock_us;
  int nhooks_of[CT_HOOK_NKINDS];
  ct_hook *hooks;
  int nhooks, caphooks, next_hook_id;
  int legacy_op_hook;  /* id of the hook ct_set_op_hook installed (0: none) */
  void *capture;       /* the capture running on this context (graph/capture.c), or NULL */
  ct_mem_device_stats mem[CT_CTX_NDEV];
  int64_t slot_total[CT_CTX_NDEV]; /* live bytes of each slot, all categories */
  int64_t type_live[CT_NDEVTYPES][CT_NCATS], type_total[CT_NDEVTYPES], type_peak[CT_NDEVTYPES];
  int64_t live_storages; /* storages charged here and not yet freed */
  bool freed;            /* ct_ctx_free ran; the struct goes with the last storage */
};

extern _Thread_local ct_ctx *ct_ctx_tls;
static inline ct_ctx *ct_ctx_cur(void) { return ct_ctx_tls; }

/* Adds a hook of any kind (the op hook's type needs ops/optable.h, whose ct_ctx_add_op_hook calls
   this); the caller casts fn back to the kind's type to call it. Returns the id or -1. */
int ct_ctx_add_hook_any(ct_ctx *c, ct_hook_kind kind, ct_hook_any fn, void *ud);

/* The mem[] slot of a device: 0 the CPU, 1 + i cuda:i (a higher index is charged to the last). */
static inline int ct_ctx_mem_slot(ct_device d) {
  if (d.type == CT_CPU) return 0;
  return 1 + (d.index < 0 ? 0 : d.index >= CT_CTX_MAX_CUDA ? CT_CTX_MAX_CUDA - 1 : d.index);
}

/* Memory accounting of storage bytes on dev in category cat: delta > 0 is an allocation (fresh:
   also counted in the allocated totals), delta < 0 a free; a retag is a free and an allocation
   with fresh = false. Inline: it runs for every storage made and freed. */
static inline void ct_ctx_mem_account(ct_ctx *c, ct_device dev, ct_category cat, int64_t delta, bool fresh) {
  int s = ct_ctx_mem_slot(dev);
  ct_mem_device_stats *m = &c->mem[s];
  m->live[cat] += delta;
  int64_t slot = c->slot_total[s] += delta;
  c->type_live[dev.type][cat] += delta;
  int64_t type = c->type_total[dev.type] += delta;
  if (delta <= 0) return;
  if (fresh) m->allocated += delta;
  if (slot > m->peak) m->peak = slot;
  if (type > c->type_peak[dev.type]) c->type_peak[dev.type] = type;
}

/* Live bytes of c on dev (all categories): the `live` of alloc/free events. */
static inline int64_t ct_ctx_mem_live(const ct_ctx *c, ct_device dev) { return c->slot_total[ct_ctx_mem_slot(dev)]; }

void ct_ctx_destroy(ct_ctx *c); /* frees the struct (ct_ctx_free and the last storage call it) */
/* A storage charged to c went away: frees c if ct_ctx_free ran and it was the last one. */
static inline void ct_ctx_storage_gone(ct_ctx *c) {
  if (--c->live_storages == 0 && c->freed) ct_ctx_destroy(c);
}
/* Origin of the wall clock (ct_events_start resets it, so times read from zero). */
void ct_ctx_reset_wall_origin(void);

#endif
