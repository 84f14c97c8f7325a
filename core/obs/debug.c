/* debug.c: CHALK_DEBUG's printer: one stderr line per event of the log, by level (obs/debug.h).
 * Invariants: the level is read once, before main (events.c's constructor calls ct_debug_init);
 * this file calls nothing else in core (the device and kind are formatted here), so no call loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/debug.h"

int ct_debug_level = 0;

int ct_debug_init(void) {
  const char *s = getenv("CHALK_DEBUG");
  int level = s && *s ? atoi(s) : 0;
  return ct_debug_level = level < 0 ? 0 : level > 3 ? 3 : level;
}

static const char *device(ct_device d, char *buf, size_t n) {
  if (d.type == CT_CUDA)
    snprintf(buf, n, "cuda:%d", d.index);
  else
    snprintf(buf, n, "cpu");
  return buf;
}

static const char *category(ct_category c) {
  static const char *const names[] = {"activation", "parameter", "gradient", "optimizer state",
                                      "temporary",  "input",     "kv_cache", "comm_buffer"};
  return c >= 0 && (size_t)c < sizeof names / sizeof *names ? names[c] : "other";
}

/* The kinds printed, named here so the printer calls nothing back in events.c (no call loop). */
static const char *kind(ct_event_kind k) {
  return k == CT_EV_OP           ? "op"
         : k == CT_EV_COPY       ? "copy"
         : k == CT_EV_COLLECTIVE ? "coll"
         : k == CT_EV_ALLOC      ? "alloc"
                                 : "free";
}

void ct_debug_event(const ct_event *e) {
  char dev[24];
  switch (e->kind) {
  case CT_EV_OP:
  case CT_EV_COPY:
  case CT_EV_COLLECTIVE:
    if (ct_debug_level >= 2)
      fprintf(stderr, "[chalk] %-5s %-20s %-7s %10.1f us  %.4g flops  %.4g bytes%s%s%s\n", kind(e->kind),
              e->name ? e->name : "?", device(e->device, dev, sizeof dev), e->t1 - e->t0, e->flops,
              e->kind == CT_EV_OP ? e->bytes : (double)e->nbytes, e->backward ? "  (backward)" : "",
              e->label[0] ? "  " : "", e->label);
    else
      fprintf(stderr, "[chalk] %-5s %-20s %-7s %10.1f us%s\n", kind(e->kind), e->name ? e->name : "?",
              device(e->device, dev, sizeof dev), e->t1 - e->t0, e->backward ? "  (backward)" : "");
    break;
  case CT_EV_ALLOC:
  case CT_EV_FREE:
    if (ct_debug_level >= 2)
      fprintf(stderr, "[chalk] %-5s %-20s %-7s %10lld bytes  live %lld%s%s\n", kind(e->kind), category(e->category),
              device(e->device, dev, sizeof dev), (long long)e->nbytes, (long long)e->live, e->label[0] ? "  " : "",
              e->label);
    break;
  case CT_EV_MARK:
    if (ct_debug_level >= 2) fprintf(stderr, "[chalk] mark  %s %s\n", e->name ? e->name : "?", e->label);
    break;
  default:
    break;
  }
}

void ct_debug_text(int level, const char *what, const char *name, const char *text) {
  if (ct_debug_level < level || !text) return;
  fprintf(stderr, "[chalk] %s %s:\n%s%s", what, name ? name : "", text,
          *text && text[strlen(text) - 1] == '\n' ? "" : "\n");
}
