/* events.h: the one event log (design decision 4). Allocators and the executor append; memory
 * timelines, profiler tables, traces and Chrome export are views of it.
 * Invariants: when the log is off, ct_events_on() is a single load and nothing else runs;
 * events are appended in time order (t0 of an op is its start, the op event is pushed at its end,
 * so the allocations an op makes precede its op event in the log). */
#ifndef CHALK_EVENTS_H
#define CHALK_EVENTS_H

#include "chalk.h"

typedef enum {
  CT_EV_OP,
  CT_EV_ALLOC,
  CT_EV_FREE,
  CT_EV_COPY,
  CT_EV_COLLECTIVE,
  CT_EV_MARK,
  CT_EV_NAME, /* a tensor was named: label = name, node_id = its storage id */
  CT_EV_MESSAGE, /* one message of a collective (core/dist): comm says who, to whom, which step */
  CT_EV_NKINDS
} ct_event_kind;

/* collective and message events (core/dist): global ranks 0-based; peer -1 for a collective */
typedef struct {
  int rank, peer, step, chunk, group_size;
  uint32_t group, seq;      /* group id (0: the world) and collective number in it */
  const char *algo, *coll;  /* static names: "ring", "all_reduce" */
  bool recv;                /* message: the receiving side's event */
} ct_event_comm;

typedef struct {
  ct_event_kind kind;
  double t0, t1;        /* microseconds since ct_events_start (t1 == t0 for instants) */
  const char *name;     /* op or event name (static string) */
  char label[48];       /* tensor or node name, if any */
  uint64_t node_id;     /* op: autograd node id (0 if none); alloc/free/name: storage id */
  uint64_t tensor_id;
  ct_device device;
  int stream;           /* stream (lane) the event ran on; set from ct_events_set_stream when 0 */
  int rank;             /* rank of the context that pushed it (core/ctx; 0 for the default) */
  double flops, bytes;  /* op: estimated flops and bytes moved */
  int64_t nbytes;       /* alloc/free/copy: bytes */
  ct_category category;
  int64_t live;         /* alloc/free: live bytes on that device after the event */
  int64_t seq;          /* op index within the log */
  bool backward;        /* op ran inside backward */
  ct_event_comm comm;   /* collective/message: ranks, step, chunk, algorithm */
} ct_event;

extern bool ct_events_enabled;
static inline bool ct_events_on(void) { return ct_events_enabled; }
void ct_events_start(void); /* clears and enables */
void ct_events_stop(void);
bool ct_events_recording(void); /* a profile is keeping events (the log may be on for CHALK_DEBUG alone) */
void ct_events_clear(void);
size_t ct_events_count(void);
const ct_event *ct_events_get(size_t i);
void ct_event_push(const ct_event *e);
/* The current context's clock: monotonic wall time in microseconds since ct_events_start, or the
   context's virtual clock when a simulator drives it (core/ctx). */
double ct_now_us(void);
/* Append a user mark (e.g. "forward", "backward", "step") as an instant event. */
void ct_event_mark(const char *static_name, const char *label);
/* Record that the tensor on storage `storage_id` is called `name` (ct_set_name calls this when the
   log is on, so memory pictures can name what was live). */
void ct_event_name_storage(uint64_t storage_id, const char *name);
/* The stream that events pushed from now on run on (0 = the device's default stream), in the
   current context. Returns the previous one. The CUDA executor and simulated workers set it
   around their work. Every pushed event also takes the current context's rank. */
int ct_events_set_stream(int stream);
int ct_events_stream(void);
const char *ct_event_kind_name(ct_event_kind k);

#endif
