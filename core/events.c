/* events.c: the event log storage: a growable array of events, on or off.
 * Invariants: pushes are serialised by a mutex (simulated workers may run on threads), taken only
 * while the log is on; the array only grows between ct_events_clear calls; op events are
 * numbered in push order (seq). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"

bool ct_events_enabled = false;
static ct_event *events;
static size_t nevents, capevents;
static double t_origin;
static int64_t op_seq;
static int current_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static double clock_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

double ct_now_us(void) { return clock_us() - t_origin; }

void ct_events_clear(void) {
  pthread_mutex_lock(&log_lock);
  free(events);
  events = NULL;
  nevents = capevents = 0;
  op_seq = 0;
  pthread_mutex_unlock(&log_lock);
}

void ct_events_start(void) {
  ct_events_clear();
  t_origin = clock_us();
  ct_events_enabled = true;
}

void ct_events_stop(void) { ct_events_enabled = false; }
size_t ct_events_count(void) { return nevents; }
const ct_event *ct_events_get(size_t i) { return i < nevents ? &events[i] : NULL; }

int ct_events_set_stream(int stream) {
  int old = current_stream;
  current_stream = stream;
  return old;
}
int ct_events_stream(void) { return current_stream; }

void ct_event_push(const ct_event *e) {
  pthread_mutex_lock(&log_lock);
  if (nevents == capevents) {
    size_t cap = capevents ? capevents * 2 : 1024;
    ct_event *p = realloc(events, cap * sizeof *p);
    if (!p) { /* the log drops events rather than failing the computation */
      pthread_mutex_unlock(&log_lock);
      return;
    }
    events = p;
    capevents = cap;
  }
  ct_event *slot = &events[nevents];
  *slot = *e;
  if (e->kind == CT_EV_OP) slot->seq = op_seq++;
  if (slot->stream == 0) slot->stream = current_stream;
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
  static const char *const names[CT_EV_NKINDS] = {"op", "alloc", "free", "copy", "collective", "mark", "name"};
  return k >= 0 && k < CT_EV_NKINDS ? names[k] : "?";
}
