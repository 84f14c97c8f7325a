/* profile.h: the profiler, a summariser over one window of the event log: a per-op table
 * (calls, self time, FLOP/s, bytes/s, share of the step), the memory timeline by category with
 * its peak and what was live at it. chalk.profile, print(prof), viz.memory, viz.trace and the
 * Chrome export are all built on this.
 * Invariants: a profile owns a copy of the events of its window, so clearing or restarting the
 * global log never changes a profile already taken; baseline[d][c] are the live bytes at start,
 * so baseline + the window's allocs - frees is the live memory at any point of the window. */
#ifndef CHALK_PROFILE_H
#define CHALK_PROFILE_H

#include "obs/events.h"

typedef struct ct_profile ct_profile;

/* Where an event falls in a training step. Backward runs from a "backward" mark (the engine
   appends one) to the last op made by a gradient rule after it; the ops in between that no rule
   made (accumulating gradients, copying them into .grad) belong to backward too. */
enum { CT_PHASE_FORWARD = 0, CT_PHASE_BACKWARD = 1, CT_PHASE_AFTER = 2 };

/* One row of the op table: one op name, forward and backward kept apart. */
typedef struct {
  const char *name;
  bool backward;
  int64_t calls;
  double self_us; /* time in the op itself (ops nested inside it subtracted) */
  double flops, bytes;
} ct_prof_op;

/* One storage live at the memory peak. */
typedef struct {
  uint64_t storage_id;
  int64_t nbytes;
  ct_category category;
  char label[96]; /* the tensor's name if it was named, else what made it ("tanh", "grad of h1: mul") */
} ct_prof_live;

/* The memory timeline of one device type: one slot per op event of the window plus one slot for
   what happens after the last op. Each slot holds the live bytes by category at the slot's
   high-water moment, so the highest slot is the true peak. */
typedef struct {
  ct_devtype device;
  int nslots;
  int64_t (*live)[CT_NCATS]; /* [nslots][CT_NCATS] */
  int64_t (*base)[CT_NCATS]; /* [nslots][CT_NCATS]: the part of live allocated before the window (baseline) */
  double *t_us;              /* [nslots]: time of each slot's high-water moment */
  double *end_us;            /* [nslots]: when the slot ends (its op's end; the window's end) */
  const char **slot_op;      /* [nslots]: op name of the slot ("" for the last) */
  unsigned char *slot_phase; /* [nslots]: CT_PHASE_* of the slot's op */
  int64_t peak;              /* bytes at the peak moment */
  int peak_slot;
  double peak_t_us;
  int64_t peak_by_cat[CT_NCATS];
  int64_t max_by_cat[CT_NCATS];    /* each category's own maximum over the window */
  ct_prof_live *at_peak;           /* storages allocated inside the window, live at the peak, */
  int nat_peak;                    /* largest first */
  int64_t before_by_cat[CT_NCATS]; /* bytes live at the peak that were allocated before the window */
} ct_prof_memory;

/* Starts recording (turns the log on, or nests inside a window already recording). */
ct_profile *ct_profile_start(void);
/* Stops recording and copies the window's events into p. */
int ct_profile_stop(ct_profile *p);
void ct_profile_free(ct_profile *p);

size_t ct_profile_nevents(const ct_profile *p);
const ct_event *ct_profile_event(const ct_profile *p, size_t i);
double ct_profile_duration_us(const ct_profile *p); /* wall time of the window */
double ct_profile_start_us(const ct_profile *p);    /* when the window began, on the events' clock */
int64_t ct_profile_baseline(const ct_profile *p, ct_devtype d, ct_category c);
/* Self time of op event i (its duration minus the ops that ran inside it); 0 for other events. */
double ct_profile_self_us(const ct_profile *p, size_t i);
/* Time during which some op was running on some device (the union of the ops' intervals; with
   the GPU working while the host waits, ops overlap and their sum exceeds the wall time). */
double ct_profile_busy_us(const ct_profile *p);
/* CT_PHASE_* of event i: forward, backward, or after the last backward (optimizer, logging). */
int ct_profile_phase(const ct_profile *p, size_t i);

/* The op table, sorted by self time, largest first. *rows is malloc'd (free it); returns the
   number of rows or -1. */
int ct_profile_ops(const ct_profile *p, ct_prof_op **rows);
/* Device types that appear in the window (bit d set for device type d). */
unsigned ct_profile_devices(const ct_profile *p);

int ct_profile_memory(const ct_profile *p, ct_devtype dev, ct_prof_memory *out);
void ct_prof_memory_free(ct_prof_memory *m);

/* The table print(prof) shows; returns the length it needed (as snprintf). */
size_t ct_profile_format(const ct_profile *p, char *buf, size_t n);
/* "1.5 MB"-style sizes and "12.3 us" / "4.56 ms" times, into buf. */
const char *ct_format_bytes(double bytes, char *buf, size_t n);
const char *ct_format_us(double us, char *buf, size_t n);

#endif
