/* events.c: the event log storage: a growable array of events, on or off. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "events.h"

bool ct_events_enabled = false;
static ct_event *events;
static size_t nevents, capevents;
static double t_origin;
static int64_t op_seq;

static double clock_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

double ct_now_us(void) { return clock_us() - t_origin; }

void ct_events_clear(void) {
  free(events);
  events = NULL;
  nevents = capevents = 0;
  op_seq = 0;
}

void ct_events_start(void) {
  ct_events_clear();
  t_origin = clock_us();
  ct_events_enabled = true;
}

void ct_events_stop(void) { ct_events_enabled = false; }
size_t ct_events_count(void) { return nevents; }
const ct_event *ct_events_get(size_t i) { return i < nevents ? &events[i] : NULL; }

void ct_event_push(const ct_event *e) {
  if (nevents == capevents) {
    size_t cap = capevents ? capevents * 2 : 1024;
    ct_event *p = realloc(events, cap * sizeof *p);
    if (!p) return; /* the log drops events rather than failing the computation */
    events = p;
    capevents = cap;
  }
  events[nevents] = *e;
  if (e->kind == CT_EV_OP) events[nevents].seq = op_seq++;
  nevents++;
}

void ct_event_mark(const char *static_name, const char *label) {
  if (!ct_events_enabled) return;
  ct_event e = {.kind = CT_EV_MARK, .name = static_name};
  e.t0 = e.t1 = ct_now_us();
  if (label) snprintf(e.label, sizeof e.label, "%s", label);
  ct_event_push(&e);
}
