/* chrome.c: a profile as Chrome trace-event JSON (the format Perfetto and chrome://tracing open):
 * complete events ("ph":"X") for ops and copies, counter events ("ph":"C") for live memory by
 * category, instant events ("ph":"i") for marks, metadata ("ph":"M") naming processes and threads.
 * Invariants: one process per device (pid 0 = cpu, 1 + N = cuda:N), one thread per rank and
 * stream (tid = stream for rank 0, 1000 * rank + stream for a simulated worker's events);
 * timestamps are microseconds since the profile started and the events are written sorted by
 * timestamp (stable), so the file reads monotonically. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz.h"

typedef struct {
  double ts;
  size_t ev;
} order;

static int cmp_order(const void *a, const void *b) {
  const order *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->ev < y->ev ? -1 : x->ev > y->ev;
}

static int pid_of(ct_device d) { return d.type == CT_CPU ? 0 : 1 + d.index; }
static int tid_of(const ct_event *e) { return 1000 * e->rank + e->stream; }

static void json_str(viz_buf *b, const char *s) {
  viz_buf_puts(b, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') viz_buf_printf(b, "\\%c", c);
    else if (c < 0x20) viz_buf_printf(b, "\\u%04x", c);
    else viz_buf_printf(b, "%c", c);
  }
  viz_buf_puts(b, "\"");
}

int viz_chrome_json(const ct_profile *p, viz_buf *b) {
  size_t nev = ct_profile_nevents(p);
  double ts0 = ct_profile_start_us(p);
  order *ord = malloc(sizeof *ord * (nev + 1));
  if (!ord) return ct_errorf("export_chrome: out of memory");
  size_t n = 0;
  for (size_t i = 0; i < nev; i++) {
    const ct_event *e = ct_profile_event(p, i);
    if (e->kind == CT_EV_NAME) continue;
    ord[n++] = (order){e->t0 - ts0, i};
  }
  qsort(ord, n, sizeof *ord, cmp_order);
  viz_buf_puts(b, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"producer\": \"chalk " CT_VERSION "\"},\n"
                  "\"traceEvents\": [\n");
  bool first = true;
#define SEP() (viz_buf_puts(b, first ? "  " : ",\n  "), first = false)
  /* metadata: process per device, thread per rank and stream */
  unsigned seen_pid[64] = {0};
  int seen_tid[64][64], nseen_tid[64] = {0}; /* threads named so far per process (ranks x streams) */
  for (size_t k = 0; k < n; k++) {
    const ct_event *e = ct_profile_event(p, ord[k].ev);
    if (e->kind == CT_EV_MARK) continue;
    int pid = pid_of(e->device);
    if (pid < 0 || pid >= 64) continue;
    if (!(seen_pid[pid] & 1u << 31)) {
      char dv[24];
      ct_device_str(e->device, dv, sizeof dv);
      SEP();
      viz_buf_printf(b, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": 0, \"ts\": 0, \"args\": {\"name\": ", pid);
      json_str(b, dv);
      viz_buf_puts(b, "}}");
      seen_pid[pid] |= 1u << 31;
    }
    int tid = tid_of(e), t = 0;
    while (t < nseen_tid[pid] && seen_tid[pid][t] != tid) t++;
    if (t == nseen_tid[pid] && t < 64) { /* past 64 threads in a process, the rest go unnamed */
      SEP();
      if (e->rank)
        viz_buf_printf(b, "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"ts\": 0, \"args\": {\"name\": \"rank %d stream %d\"}}",
                       pid, tid, e->rank, e->stream);
      else
        viz_buf_printf(b, "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"ts\": 0, \"args\": {\"name\": \"stream %d\"}}",
                       pid, tid, e->stream);
      seen_tid[pid][nseen_tid[pid]++] = tid;
    }
  }
  int64_t live[CT_NDEVTYPES][CT_NCATS];
  for (int d = 0; d < CT_NDEVTYPES; d++)
    for (int c = 0; c < CT_NCATS; c++) live[d][c] = ct_profile_baseline(p, (ct_devtype)d, (ct_category)c);
  for (size_t k = 0; k < n; k++) {
    const ct_event *e = ct_profile_event(p, ord[k].ev);
    double ts = ord[k].ts;
    switch (e->kind) {
    case CT_EV_OP:
    case CT_EV_COPY:
    case CT_EV_COLLECTIVE: {
      SEP();
      viz_buf_puts(b, "{\"name\": ");
      json_str(b, e->name ? e->name : "?");
      viz_buf_printf(b, ", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": %d, \"tid\": %d, "
                        "\"args\": {\"rank\": %d, \"seq\": %lld, \"node\": %llu, \"flops\": %.0f, \"bytes\": %.0f",
                     e->kind == CT_EV_COPY ? "copy" : e->kind == CT_EV_COLLECTIVE ? "collective" : e->backward ? "backward" : "forward",
                     ts, e->t1 - e->t0, pid_of(e->device), tid_of(e), e->rank, (long long)e->seq, (unsigned long long)e->node_id,
                     e->flops, e->bytes);
      if (e->label[0]) {
        viz_buf_puts(b, ", \"label\": ");
        json_str(b, e->label);
      }
      viz_buf_puts(b, "}}");
      break;
    }
    case CT_EV_ALLOC:
    case CT_EV_FREE: {
      live[e->device.type][e->category] += e->kind == CT_EV_ALLOC ? e->nbytes : -e->nbytes;
      char dv[24];
      SEP();
      viz_buf_puts(b, "{\"name\": ");
      snprintf(dv, sizeof dv, "memory %s", e->device.type == CT_CPU ? "cpu" : "cuda");
      json_str(b, dv);
      viz_buf_printf(b, ", \"cat\": \"memory\", \"ph\": \"C\", \"ts\": %.3f, \"pid\": %d, \"tid\": 0, \"args\": {", ts,
                     pid_of(e->device));
      for (int c = 0; c < CT_NCATS; c++) {
        viz_buf_printf(b, "%s", c ? ", " : "");
        json_str(b, ct_category_name((ct_category)c));
        viz_buf_printf(b, ": %lld", (long long)live[e->device.type][c]);
      }
      viz_buf_puts(b, "}}");
      break;
    }
    case CT_EV_MARK:
      SEP();
      viz_buf_puts(b, "{\"name\": ");
      json_str(b, e->label[0] ? e->label : e->name ? e->name : "mark");
      viz_buf_printf(b, ", \"cat\": \"mark\", \"ph\": \"i\", \"s\": \"g\", \"ts\": %.3f, \"pid\": 0, \"tid\": 0, \"args\": {\"kind\": ", ts);
      json_str(b, e->name ? e->name : "mark");
      viz_buf_puts(b, "}}");
      break;
    default: break;
    }
  }
#undef SEP
  viz_buf_puts(b, "\n]}\n");
  free(ord);
  return viz_buf_check(b);
}

int viz_chrome_write(const ct_profile *p, const char *path) {
  viz_buf b = {0};
  if (viz_chrome_json(p, &b)) {
    viz_buf_free(&b);
    return -1;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    viz_buf_free(&b);
    return ct_errorf("export_chrome: cannot write %s: %s", path, strerror(errno));
  }
  bool ok = fwrite(b.s, 1, b.len, f) == b.len;
  if (fclose(f)) ok = false;
  viz_buf_free(&b);
  return ok ? 0 : ct_errorf("export_chrome: writing %s failed: %s", path, strerror(errno));
}
