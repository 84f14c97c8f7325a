/* timing.c: GPU times of CUDA ops in the event log. When the log is on, every CUDA forward records
 * a start and a stop event on its device's stream; the dispatcher then pushes the op's event,
 * whose index we note. ct_cu_resolve_times (called by ct_cuda_synchronize, which the profiler
 * calls when it stops) waits for the events and replaces the op's host-clock t0/t1 by the GPU's,
 * mapped onto the log's clock through an anchor event whose host time was taken once it completed.
 * Invariants: a pending entry is applied only to the event at its index whose tensor id matches
 * (a restarted log or a failed op leaves a stale entry, which is dropped); an anchor is taken when
 * nothing is pending, so every pending entry of a device shares one anchor; with the log off,
 * begin/end cost one load each. */
#include <stdlib.h>

#include "cuda_internal.h"

#define MAX_NEST 16
#define MAX_PENDING 65536

typedef struct {
  size_t idx;
  uint64_t tensor_id;
  int device;
  cudaEvent_t start, stop;
} pending_op;

static pending_op *pending;
static size_t npending, cap_pending;
static size_t log_count_seen; /* the log's length at the last record: shrinking means restarted */

static cudaEvent_t *pool[CT_CUDA_MAX_DEVICES];
static int npool[CT_CUDA_MAX_DEVICES], cap_pool[CT_CUDA_MAX_DEVICES];

static cudaEvent_t anchor[CT_CUDA_MAX_DEVICES];
static double anchor_us[CT_CUDA_MAX_DEVICES];
static bool anchored[CT_CUDA_MAX_DEVICES];

static cudaEvent_t nest_start[MAX_NEST];
static int nest_device[MAX_NEST];
static int depth;

static cudaEvent_t event_get(int dev) {
  if (npool[dev]) return pool[dev][--npool[dev]];
  cudaEvent_t e = NULL;
  if (cudaEventCreate(&e) != cudaSuccess) {
    (void)cudaGetLastError();
    return NULL;
  }
  return e;
}

static void event_put(int dev, cudaEvent_t e) {
  if (!e) return;
  if (npool[dev] == cap_pool[dev]) {
    int cap = cap_pool[dev] ? cap_pool[dev] * 2 : 64;
    cudaEvent_t *p = realloc(pool[dev], sizeof *p * (size_t)cap);
    if (!p) {
      cudaEventDestroy(e);
      return;
    }
    pool[dev] = p;
    cap_pool[dev] = cap;
  }
  pool[dev][npool[dev]++] = e;
}

static void drop_pending(void) {
  for (size_t i = 0; i < npending; i++) {
    event_put(pending[i].device, pending[i].start);
    event_put(pending[i].device, pending[i].stop);
  }
  npending = 0;
  log_count_seen = 0;
  for (int d = 0; d < CT_CUDA_MAX_DEVICES; d++) anchored[d] = false;
}

/* Host time of a point on the device's stream: record, wait, read the log's clock. */
static int take_anchor(int dev, cudaStream_t s) {
  if (!anchor[dev] && cudaEventCreate(&anchor[dev]) != cudaSuccess) return -1;
  if (cudaEventRecord(anchor[dev], s) != cudaSuccess || cudaEventSynchronize(anchor[dev]) != cudaSuccess) return -1;
  anchor_us[dev] = ct_now_us();
  anchored[dev] = true;
  return 0;
}

void ct_cu_op_begin(int index) {
  if (!ct_events_on()) return;
  if (depth >= MAX_NEST || index < 0 || index >= CT_CUDA_MAX_DEVICES) {
    depth++;
    return;
  }
  if (ct_events_count() < log_count_seen) drop_pending(); /* the log was cleared and restarted */
  cudaStream_t s = ct_cu_stream(index);
  cudaEvent_t e = s ? event_get(index) : NULL;
  if (e && !anchored[index] && take_anchor(index, s)) {
    (void)cudaGetLastError();
    event_put(index, e);
    e = NULL;
  }
  if (e && cudaEventRecord(e, s) != cudaSuccess) {
    (void)cudaGetLastError();
    event_put(index, e);
    e = NULL;
  }
  nest_start[depth] = e;
  nest_device[depth] = index;
  depth++;
}

int ct_cu_op_end(const ct_tensor *out, int index, int rc, const char *what) {
  if (!rc) rc = ct_cu_check_launch(what);
  if (!depth) return rc; /* the log was off at begin */
  depth--;
  if (depth >= MAX_NEST) return rc;
  cudaEvent_t start = nest_start[depth];
  int dev = nest_device[depth];
  (void)index;
  if (!start) return rc;
  cudaEvent_t stop = rc ? NULL : event_get(dev);
  cudaStream_t s = stop ? ct_cu_stream(dev) : NULL;
  if (!stop || !s || cudaEventRecord(stop, s) != cudaSuccess || !out) {
    (void)cudaGetLastError();
    event_put(dev, start);
    event_put(dev, stop);
    return rc;
  }
  if (npending == cap_pending) {
    size_t cap = cap_pending ? cap_pending * 2 : 256;
    pending_op *p = realloc(pending, sizeof *p * cap);
    if (!p) {
      event_put(dev, start);
      event_put(dev, stop);
      return rc;
    }
    pending = p;
    cap_pending = cap;
  }
  /* the dispatcher pushes this op's event next, at the log's current length */
  pending[npending++] = (pending_op){ct_events_count(), out->id, dev, start, stop};
  log_count_seen = ct_events_count();
  if (npending >= MAX_PENDING) ct_cu_resolve_times();
  return rc;
}

void ct_cu_push_event(const char *static_name, int index, double flops, double bytes, uint64_t tensor_id) {
  if (!ct_events_on()) return;
  ct_event e = {.kind = CT_EV_OP, .name = static_name};
  e.t0 = e.t1 = ct_now_us();
  e.device = (ct_device){CT_CUDA, index};
  e.tensor_id = tensor_id;
  e.flops = flops;
  e.bytes = bytes;
  e.nbytes = (int64_t)bytes;
  const char *scope = ct_backward_scope();
  e.backward = scope != NULL;
  ct_event_push(&e);
}

int ct_cu_resolve_times(void) {
  int rc = 0;
  for (size_t i = 0; i < npending; i++) {
    pending_op *p = &pending[i];
    float ms0 = 0, ms1 = 0;
    if (!anchored[p->device]) continue;
    cudaError_t e = cudaEventSynchronize(p->stop);
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms0, anchor[p->device], p->start);
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms1, anchor[p->device], p->stop);
    if (e != cudaSuccess) {
      rc = ct_cu_check(e, "resolving GPU op times");
      continue;
    }
    /* the log's array is ours to amend in place (ct_events_get hands out a const view) */
    ct_event *ev = (ct_event *)ct_events_get(p->idx);
    if (!ev || (ev->kind != CT_EV_OP && ev->kind != CT_EV_COPY) || ev->tensor_id != p->tensor_id) continue;
    ev->t0 = anchor_us[p->device] + 1000.0 * (double)ms0;
    ev->t1 = anchor_us[p->device] + 1000.0 * (double)ms1;
  }
  drop_pending();
  return rc;
}
