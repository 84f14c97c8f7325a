/* debug.h: CHALK_DEBUG, the event log printed to stderr as it is written.
 *   CHALK_DEBUG=1  each op: name, device, time
 *   CHALK_DEBUG=2  + its FLOPs and bytes moved, and every allocation/free with its category
 *   CHALK_DEBUG=3  + each graph pass's explanation and the generated source of fused kernels
 * Read once at program start; while it is on the event log stays on (ct_events_on()), printing
 * each event as it is pushed, without keeping it unless a profile is recording. */
#ifndef CHALK_DEBUG_H
#define CHALK_DEBUG_H

#include "obs/events.h"

extern int ct_debug_level; /* 0 (off) .. 3, from CHALK_DEBUG */
/* Read CHALK_DEBUG into ct_debug_level and return it (events.c calls it once, before main). */
int ct_debug_init(void);
/* Print one event (called by ct_event_push while ct_debug_level > 0). */
void ct_debug_event(const ct_event *e);
/* Print a block of text under a heading (a pass's explanation, a kernel's source) at `level`. */
void ct_debug_text(int level, const char *what, const char *name, const char *text);

#endif
