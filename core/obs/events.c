/* events.c: the event log storage: events in fixed blocks of BLOCK (so appending never copies
 * the log), on or off.
 * Invariants: pushes are serialised by a mutex (simulated workers may run on threads), taken only
 * while the log is on; event i lives at blocks[i / BLOCK][i % BLOCK] and never moves until
 * ct_events_clear; op events are numbered in push order (seq).
 * The log is process-wide (one log, every worker's events tagged with its rank); the clock and the
 * lane (stream, rank) are the current context's (core/ctx). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/ctx.h"
#include "obs/debug.h"
#include "obs/events.h"

#define BLOCK 4096

bool ct_events_enabled = false;
static ct_event **blocks;
static size_t nevents, nblocks, capblocks;
static int64_t op_seq;
static bool recording; /* between ct_events_start and _stop; CHALK_DEBUG alone prints, keeps nothing */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* CHALK_DEBUG turns the log on from the start (obs/debug.h). */
__attribute__((constructor)) static void events_from_env(void) {
  if (ct_debug_init() > 0) ct_events_enabled = true;
}

double ct_now_us(void) { return ct_ctx_clock_us(ct_ctx_cur()); }

void ct_events_clear(void) {
  pthread_mutex_lock(&log_lock);
  for (size_t b = 0; b < nblocks; b++) free(blocks[b]);
  free(blocks);
  blocks = NULL;
  nevents = nblocks = capblocks = 0;
  op_seq = 0;
  pthread_mutex_unlock(&log_lock);
}

void ct_events_start(void) {
  ct_events_clear();
  ct_ctx_reset_wall_origin();
  recording = true;
  ct_events_enabled = true;
}

void ct_events_stop(void) {
  recording = false;
  ct_events_enabled = ct_debug_level > 0;
}
bool ct_events_recording(void) { return recording; }
size_t ct_events_count(void) { return nevents; }
const ct_event *ct_events_get(size_t i) { return i < nevents ? &blocks[i / BLOCK][i % BLOCK] : NULL; }

int ct_events_set_stream(int stream) { return ct_ctx_set_stream(ct_ctx_cur(), stream); }
int ct_events_stream(void) { return ct_ctx_cur()->stream; }

void ct_event_push(const ct_event *e) {
  const ct_ctx *cx = ct_ctx_cur();
  pthread_mutex_lock(&log_lock);
  if (ct_debug_level > 0) {
    ct_event shown = *e;
    if (shown.stream == 0) shown.stream = cx->stream;
    shown.rank = cx->rank;
    ct_debug_event(&shown);
    if (!recording) {
      pthread_mutex_unlock(&log_lock);
      return;
    }
  }
  if (nevents == nblocks * BLOCK) { /* the log drops events rather than failing the computation */
    if (nblocks == capblocks) {
      size_t cap = capblocks ? capblocks * 2 : 16;
      ct_event **p = realloc(blocks, cap * sizeof *p);
      if (!p) {
        pthread_mutex_unlock(&log_lock);
        return;
      }
      blocks = p;
      capblocks = cap;
    }
    if (!(blocks[nblocks] = malloc(BLOCK * sizeof **blocks))) {
      pthread_mutex_unlock(&log_lock);
      return;
    }
    nblocks++;
  }
  ct_event *slot = &blocks[nevents / BLOCK][nevents % BLOCK];
  *slot = *e;
  if (e->kind == CT_EV_OP) slot->seq = op_seq++;
  if (slot->stream == 0) slot->stream = cx->stream;
  slot->rank = cx->rank;
  nevents++;
  pthread_mutex_unlock(&log_lock);
}

void ct_event_mark(const char *static_name, const char *label) {
  if (!ct_events_enabled) return;
  ct_event e = {.kind = CT_EV_MARK, .name = static_name};
  e.t0 = e.t1 = ct_now_us();
  if (label) snprintf(e.label, sizeof e.label, "%s", label);
  ct_event_push(&e);
}

void ct_event_name_storage(uint64_t storage_id, const char *name) {
  if (!ct_events_enabled || !name) return;
  ct_event e = {.kind = CT_EV_NAME, .name = "name", .node_id = storage_id};
  e.t0 = e.t1 = ct_now_us();
  snprintf(e.label, sizeof e.label, "%s", name);
  ct_event_push(&e);
}

const char *ct_event_kind_name(ct_event_kind k) {
  static const char *const names[CT_EV_NKINDS] = {"op", "alloc", "free", "copy", "collective", "mark", "name", "message"};
  return k >= 0 && k < CT_EV_NKINDS ? names[k] : "?";
}
