/* profile.c: the profiler: windows of the event log summarised as an op table and a memory
 * timeline (see profile.h for the invariants). No Lua or Graphviz here: the binding prints the
 * table and viz/ draws the timeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/profile.h"

struct ct_profile {
  ct_event *ev;
  size_t nev;
  double *self_us;      /* [nev] */
  unsigned char *phase; /* [nev] CT_PHASE_* */
  size_t start_index;
  bool nested, stopped;
  double t_start, t_end;
  int64_t baseline[CT_NDEVTYPES][CT_NCATS];
};

/* GPU ops run asynchronously: wait for them, which also puts their GPU times into the log. */
static void sync_gpu(void) {
  if (ct_cuda_available() && ct_cuda_synchronize()) ct_clear_error(); /* times stay host times */
}

ct_profile *ct_profile_start(void) {
  ct_profile *p = calloc(1, sizeof *p);
  if (!p) return ct_errorf("profile: out of memory"), NULL;
  sync_gpu(); /* work queued before the window is not the window's */
  ct_mem_stats s;
  ct_mem_get(&s);
  memcpy(p->baseline, s.live, sizeof p->baseline);
  if (ct_events_recording()) {
    p->nested = true;
    p->start_index = ct_events_count();
  } else {
    ct_events_start();
  }
  p->t_start = ct_now_us();
  return p;
}

/* Self times: an op event's children are the op events pushed before it that started after it
   (an op pushes its event when it ends); a stack of finished events finds the direct ones. */
static int compute_self_times(ct_profile *p) {
  p->self_us = calloc(p->nev ? p->nev : 1, sizeof *p->self_us);
  size_t *stack = malloc(sizeof *stack * (p->nev ? p->nev : 1));
  if (!p->self_us || !stack) {
    free(stack);
    return ct_errorf("profile: out of memory");
  }
  size_t top = 0;
  for (size_t i = 0; i < p->nev; i++) {
    const ct_event *e = &p->ev[i];
    if (e->kind != CT_EV_OP && e->kind != CT_EV_COPY && e->kind != CT_EV_COLLECTIVE) continue;
    double self = e->t1 - e->t0;
    while (top && p->ev[stack[top - 1]].t0 >= e->t0 && p->ev[stack[top - 1]].t1 <= e->t1) {
      size_t c = stack[--top];
      self -= p->ev[c].t1 - p->ev[c].t0;
    }
    p->self_us[i] = self > 0 ? self : 0;
    stack[top++] = i;
  }
  free(stack);
  return 0;
}

static bool is_op_event(const ct_event *e);

/* Phases (see profile.h): backward windows run from a "backward" mark to the engine's "backward
   end" mark (or, without one, to the last op a gradient rule made before the next "backward");
   outside them, before the last window is forward, after it is "after". */
static int compute_phases(ct_profile *p) {
  p->phase = calloc(p->nev ? p->nev : 1, 1);
  if (!p->phase) return ct_errorf("profile: out of memory");
  size_t last_window_end = 0;
  bool any = false;
  for (size_t i = 0; i < p->nev; i++) {
    const ct_event *m = &p->ev[i];
    if (m->kind != CT_EV_MARK || !m->name || strcmp(m->name, "backward")) continue;
    size_t end = i, j = i + 1;
    for (; j < p->nev; j++) {
      const ct_event *e = &p->ev[j];
      if (e->kind == CT_EV_MARK && e->name && !strcmp(e->name, "backward end")) {
        end = j; /* the engine says where it ended */
        break;
      }
      if (e->kind == CT_EV_MARK && e->name && !strcmp(e->name, "backward")) break;
      if (is_op_event(e) && e->backward) end = j;
    }
    for (size_t k = i; k <= end; k++) p->phase[k] = CT_PHASE_BACKWARD;
    last_window_end = end;
    any = true;
    i = end;
  }
  for (size_t i = 0; i < p->nev; i++)
    if (p->ev[i].kind == CT_EV_OP && p->ev[i].backward) p->phase[i] = CT_PHASE_BACKWARD; /* no mark seen */
  if (any)
    for (size_t i = last_window_end + 1; i < p->nev; i++)
      if (p->phase[i] != CT_PHASE_BACKWARD) p->phase[i] = CT_PHASE_AFTER;
  return 0;
}

int ct_profile_stop(ct_profile *p) {
  if (p->stopped) return 0;
  sync_gpu();
  p->t_end = ct_now_us();
  size_t end = ct_events_count();
  size_t n = end > p->start_index ? end - p->start_index : 0;
  p->ev = malloc(sizeof *p->ev * (n ? n : 1));
  if (!p->ev) {
    if (!p->nested) ct_events_stop(), ct_events_clear();
    return ct_errorf("profile: out of memory copying %zu events", n);
  }
  for (size_t i = 0; i < n; i++) p->ev[i] = *ct_events_get(p->start_index + i);
  p->nev = n;
  p->stopped = true;
  if (!p->nested) {
    ct_events_stop();
    ct_events_clear();
  }
  return compute_self_times(p) || compute_phases(p) ? -1 : 0;
}

void ct_profile_free(ct_profile *p) {
  if (!p) return;
  if (!p->stopped) ct_profile_stop(p);
  free(p->ev);
  free(p->self_us);
  free(p->phase);
  free(p);
}

size_t ct_profile_nevents(const ct_profile *p) { return p->nev; }
const ct_event *ct_profile_event(const ct_profile *p, size_t i) { return i < p->nev ? &p->ev[i] : NULL; }
double ct_profile_duration_us(const ct_profile *p) { return p->t_end - p->t_start; }
double ct_profile_start_us(const ct_profile *p) { return p->t_start; }
int64_t ct_profile_baseline(const ct_profile *p, ct_devtype d, ct_category c) { return p->baseline[d][c]; }
double ct_profile_self_us(const ct_profile *p, size_t i) { return i < p->nev && p->self_us ? p->self_us[i] : 0; }
int ct_profile_phase(const ct_profile *p, size_t i) { return i < p->nev && p->phase ? p->phase[i] : CT_PHASE_FORWARD; }

unsigned ct_profile_devices(const ct_profile *p) {
  unsigned m = 0;
  for (size_t i = 0; i < p->nev; i++)
    if (p->ev[i].kind != CT_EV_MARK && p->ev[i].kind != CT_EV_NAME) m |= 1u << p->ev[i].device.type;
  return m;
}

/* ---- the op table -------------------------------------------------------------------------- */

static int cmp_rows(const void *a, const void *b) {
  const ct_prof_op *x = a, *y = b;
  if (x->self_us != y->self_us) return x->self_us < y->self_us ? 1 : -1;
  int c = strcmp(x->name, y->name);
  return c ? c : (int)x->backward - (int)y->backward;
}

int ct_profile_ops(const ct_profile *p, ct_prof_op **rows) {
  int n = 0, cap = 16;
  ct_prof_op *r = malloc(sizeof *r * (size_t)cap);
  if (!r) return ct_errorf("profile: out of memory"), -1;
  for (size_t i = 0; i < p->nev; i++) {
    const ct_event *e = &p->ev[i];
    if (e->kind != CT_EV_OP && e->kind != CT_EV_COPY && e->kind != CT_EV_COLLECTIVE) continue;
    const char *name = e->kind == CT_EV_COPY ? "copy (between devices)" : e->name ? e->name : "?";
    int k = 0;
    bool bw = ct_profile_phase(p, i) == CT_PHASE_BACKWARD;
    while (k < n && !(r[k].backward == bw && !strcmp(r[k].name, name))) k++;
    if (k == n) {
      if (n == cap) {
        ct_prof_op *q = realloc(r, sizeof *r * (size_t)(cap *= 2));
        if (!q) return free(r), ct_errorf("profile: out of memory"), -1;
        r = q;
      }
      r[n++] = (ct_prof_op){.name = name, .backward = bw};
    }
    r[k].calls++;
    r[k].self_us += p->self_us[i];
    r[k].flops += e->flops;
    r[k].bytes += e->bytes;
  }
  qsort(r, (size_t)n, sizeof *r, cmp_rows);
  *rows = r;
  return n;
}

/* ---- the memory timeline ------------------------------------------------------------------- */

/* storage id -> index, open addressing; ids are never 0. */
typedef struct {
  uint64_t *key;
  int *val;
  size_t cap;
} id_map;

static int map_init(id_map *m, size_t n) {
  m->cap = 64;
  while (m->cap < 2 * n + 2) m->cap *= 2;
  m->key = calloc(m->cap, sizeof *m->key);
  m->val = calloc(m->cap, sizeof *m->val);
  return m->key && m->val ? 0 : -1;
}
static void map_free(id_map *m) { free(m->key), free(m->val); }
static int *map_slot(id_map *m, uint64_t id, bool insert) {
  size_t h = (size_t)(id * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
  while (m->key[h] && m->key[h] != id) h = (h + 1) & (m->cap - 1);
  if (!m->key[h]) {
    if (!insert) return NULL;
    m->key[h] = id;
    m->val[h] = -1;
  }
  return &m->val[h];
}

static bool is_mem_event(const ct_event *e, ct_devtype dev) {
  return (e->kind == CT_EV_ALLOC || e->kind == CT_EV_FREE) && e->device.type == dev;
}
static bool is_op_event(const ct_event *e) {
  return e->kind == CT_EV_OP || e->kind == CT_EV_COPY || e->kind == CT_EV_COLLECTIVE;
}

/* What made the storage allocated by event i: the op whose event follows it, when that op began
   before the allocation (a CPU op's times are host times). A GPU op's times are the GPU's (later
   than its host-side allocation), so there the allocation must be the last one before the op. */
static void alloc_label(const ct_profile *p, size_t i, char *buf, size_t n) {
  const ct_event *a = &p->ev[i];
  bool last = true;
  for (size_t j = i + 1; j < p->nev; j++) {
    const ct_event *o = &p->ev[j];
    if (o->kind == CT_EV_ALLOC && o->device.type == a->device.type) last = false;
    if (!is_op_event(o)) continue;
    if (o->device.type == CT_CPU ? o->t0 <= a->t0 : last) {
      if (o->label[0])
        snprintf(buf, n, "%s: %s", o->label, o->name);
      else
        snprintf(buf, n, "%s output", o->name);
      return;
    }
    break;
  }
  snprintf(buf, n, "%s tensor (storage %llu)", ct_category_name(a->category), (unsigned long long)a->node_id);
}

static int cmp_live(const void *a, const void *b) {
  const ct_prof_live *x = a, *y = b;
  if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? 1 : -1;
  return x->storage_id < y->storage_id ? -1 : x->storage_id > y->storage_id;
}

void ct_prof_memory_free(ct_prof_memory *m) {
  free(m->live), free(m->base), free(m->t_us), free(m->end_us), free(m->slot_op), free(m->slot_phase), free(m->at_peak);
  memset(m, 0, sizeof *m);
}

int ct_profile_memory(const ct_profile *p, ct_devtype dev, ct_prof_memory *m) {
  memset(m, 0, sizeof *m);
  m->device = dev;
  int nops = 0;
  for (size_t i = 0; i < p->nev; i++) nops += is_op_event(&p->ev[i]);
  m->nslots = nops + 1;
  m->live = calloc((size_t)m->nslots, sizeof *m->live);
  m->base = calloc((size_t)m->nslots, sizeof *m->base);
  m->t_us = calloc((size_t)m->nslots, sizeof *m->t_us);
  m->end_us = calloc((size_t)m->nslots, sizeof *m->end_us);
  m->slot_op = calloc((size_t)m->nslots, sizeof *m->slot_op);
  m->slot_phase = calloc((size_t)m->nslots, sizeof *m->slot_phase);
  id_map inwin = {0}; /* storages allocated inside the window: the others are the baseline */
  if (!m->live || !m->base || map_init(&inwin, p->nev) || !m->t_us || !m->end_us || !m->slot_op || !m->slot_phase) {
    map_free(&inwin), ct_prof_memory_free(m);
    return ct_errorf("profile: out of memory building the memory timeline");
  }
  /* pass 1: the slots and the peak */
  int64_t state[CT_NCATS], best[CT_NCATS];
  memcpy(state, p->baseline[dev], sizeof state);
  int64_t total = 0;
  for (int c = 0; c < CT_NCATS; c++) total += state[c], m->max_by_cat[c] = state[c];
  memcpy(best, state, sizeof best);
  int64_t pre[CT_NCATS], best_pre[CT_NCATS];
  memcpy(pre, state, sizeof pre);
  memcpy(best_pre, state, sizeof pre);
  int64_t best_total = total;
  double best_t = p->t_start;
  size_t peak_event = 0; /* events [0, peak_event) applied give the peak state */
  m->peak = total;
  m->peak_t_us = p->t_start;
  memcpy(m->peak_by_cat, state, sizeof state);
  int slot = 0;
  for (size_t i = 0; i < p->nev; i++) {
    const ct_event *e = &p->ev[i];
    if (is_op_event(e)) {
      memcpy(m->live[slot], best, sizeof best);
      memcpy(m->base[slot], best_pre, sizeof best_pre);
      m->t_us[slot] = best_t - p->t_start;
      m->end_us[slot] = e->t1 - p->t_start;
      m->slot_op[slot] = e->name ? e->name : "?";
      m->slot_phase[slot] = (unsigned char)ct_profile_phase(p, i);
      slot++;
      memcpy(best, state, sizeof best);
      memcpy(best_pre, pre, sizeof pre);
      best_total = total;
      best_t = e->t1;
      continue;
    }
    if (!is_mem_event(e, dev)) continue;
    int64_t d = e->kind == CT_EV_ALLOC ? e->nbytes : -e->nbytes;
    state[e->category] += d;
    total += d;
    if (e->kind == CT_EV_ALLOC)
      *map_slot(&inwin, e->node_id, true) = 1;
    else if (!map_slot(&inwin, e->node_id, false) && pre[e->category] >= e->nbytes)
      pre[e->category] -= e->nbytes;
    if (state[e->category] > m->max_by_cat[e->category]) m->max_by_cat[e->category] = state[e->category];
    if (total > best_total) {
      best_total = total;
      memcpy(best, state, sizeof best);
      memcpy(best_pre, pre, sizeof pre);
      best_t = e->t0;
    }
    if (total > m->peak) {
      m->peak = total;
      m->peak_slot = slot;
      m->peak_t_us = e->t0 - p->t_start;
      memcpy(m->peak_by_cat, state, sizeof state);
      peak_event = i + 1;
    }
  }
  memcpy(m->live[slot], best, sizeof best);
  memcpy(m->base[slot], best_pre, sizeof best_pre);
  map_free(&inwin);
  m->t_us[slot] = best_t - p->t_start;
  m->end_us[slot] = p->t_end - p->t_start;
  m->slot_op[slot] = "";
  m->slot_phase[slot] = slot ? m->slot_phase[slot - 1] : CT_PHASE_FORWARD;
  /* pass 2: replay up to the peak to list what was live at it */
  id_map names = {0}, live = {0};
  if (map_init(&names, p->nev) || map_init(&live, p->nev)) {
    map_free(&names), map_free(&live), ct_prof_memory_free(m);
    return ct_errorf("profile: out of memory");
  }
  for (size_t i = 0; i < p->nev; i++)
    if (p->ev[i].kind == CT_EV_NAME) *map_slot(&names, p->ev[i].node_id, true) = (int)i;
  ct_prof_live *lv = calloc(peak_event ? peak_event : 1, sizeof *lv);
  int nlv = 0;
  if (!lv) {
    map_free(&names), map_free(&live), ct_prof_memory_free(m);
    return ct_errorf("profile: out of memory");
  }
  for (size_t i = 0; i < peak_event; i++) {
    const ct_event *e = &p->ev[i];
    if (!is_mem_event(e, dev)) continue;
    int *s = map_slot(&live, e->node_id, e->kind == CT_EV_ALLOC);
    if (e->kind == CT_EV_ALLOC) {
      bool retag = *s >= 0; /* a category change re-allocates the same storage: keep its label */
      int k = retag ? *s : nlv++;
      *s = k;
      lv[k].storage_id = e->node_id;
      lv[k].nbytes = e->nbytes;
      lv[k].category = e->category;
      int *nm = map_slot(&names, e->node_id, false);
      if (nm)
        snprintf(lv[k].label, sizeof lv[k].label, "%s", p->ev[*nm].label);
      else if (!retag)
        alloc_label(p, i, lv[k].label, sizeof lv[k].label);
    } else if (s && *s >= 0) {
      lv[*s].nbytes = -1; /* freed */
    }
  }
  int64_t inside[CT_NCATS] = {0};
  int k = 0;
  for (int i = 0; i < nlv; i++)
    if (lv[i].nbytes >= 0) {
      inside[lv[i].category] += lv[i].nbytes;
      lv[k++] = lv[i];
    }
  qsort(lv, (size_t)k, sizeof *lv, cmp_live);
  m->at_peak = lv;
  m->nat_peak = k;
  for (int c = 0; c < CT_NCATS; c++) {
    int64_t b = m->peak_by_cat[c] - inside[c];
    m->before_by_cat[c] = b > 0 ? b : 0;
  }
  map_free(&names);
  map_free(&live);
  return 0;
}

/* ---- formatting -------------------------------------------------------------------------- */

const char *ct_format_bytes(double b, char *buf, size_t n) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"}; /* binary, labelled so */
  int u = 0;
  double a = b < 0 ? -b : b;
  while (a >= 1024 && u < 4) a /= 1024, b /= 1024, u++;
  if (u == 0)
    snprintf(buf, n, "%.0f B", b);
  else
    snprintf(buf, n, a >= 100 ? "%.0f %s" : a >= 10 ? "%.1f %s" : "%.2f %s", b, unit[u]);
  return buf;
}

const char *ct_format_us(double us, char *buf, size_t n) {
  if (us < 1000)
    snprintf(buf, n, us < 10 ? "%.2f us" : "%.1f us", us);
  else if (us < 1e6)
    snprintf(buf, n, us < 1e4 ? "%.2f ms" : "%.1f ms", us / 1e3);
  else
    snprintf(buf, n, "%.2f s", us / 1e6);
  return buf;
}

#define APPEND(...)                                                                                                    \
  do {                                                                                                                 \
    int w_ = snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, __VA_ARGS__);                                          \
    if (w_ > 0) k += (size_t)w_;                                                                                       \
  } while (0)

static int cmp_span(const void *a, const void *b) {
  const double *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

double ct_profile_busy_us(const ct_profile *p) {
  double *span = malloc(sizeof *span * 2 * (p->nev ? p->nev : 1)), busy = 0, end = -1e300;
  size_t k = 0;
  if (!span) return 0;
  for (size_t i = 0; i < p->nev; i++)
    if (is_op_event(&p->ev[i])) span[2 * k] = p->ev[i].t0, span[2 * k + 1] = p->ev[i].t1, k++;
  qsort(span, k, 2 * sizeof *span, cmp_span);
  for (size_t i = 0; i < k; i++) {
    double a = span[2 * i] > end ? span[2 * i] : end, b = span[2 * i + 1];
    if (b > a) busy += b - a;
    if (b > end) end = b;
  }
  free(span);
  return busy;
}

size_t ct_profile_format(const ct_profile *p, char *buf, size_t n) {
  size_t k = 0;
  if (n) buf[0] = '\0';
  ct_prof_op *rows = NULL;
  int nrows = ct_profile_ops(p, &rows);
  if (nrows < 0) {
    APPEND("profile: %s\n", ct_last_error());
    return k;
  }
  double wall = ct_profile_duration_us(p), optime = 0;
  int64_t calls = 0, bcalls = 0;
  for (int i = 0; i < nrows; i++) {
    optime += rows[i].self_us;
    calls += rows[i].calls;
    if (rows[i].backward) bcalls += rows[i].calls;
  }
  char a[32], b[32];
  double busy = ct_profile_busy_us(p);
  APPEND("profile: %s wall, %lld ops (%lld in backward), some op running %.0f%% of the time (ops total %s)\n",
         ct_format_us(wall, a, sizeof a), (long long)calls, (long long)bcalls, wall > 0 ? 100 * busy / wall : 0,
         ct_format_us(optime, b, sizeof b));
  APPEND("%-26s %7s %10s %10s %9s %9s %7s\n", "op", "calls", "total", "mean", "GFLOP/s", "GB/s", "share");
  for (int i = 0; i < nrows; i++) {
    const ct_prof_op *r = &rows[i];
    char name[40], tot[32], mean[32], gf[16] = "-", gb[16] = "-";
    snprintf(name, sizeof name, "%s%s", r->name, r->backward ? " (backward)" : "");
    if (r->self_us > 0 && r->flops > 0) snprintf(gf, sizeof gf, "%.2f", r->flops / r->self_us / 1e3);
    if (r->self_us > 0 && r->bytes > 0) snprintf(gb, sizeof gb, "%.2f", r->bytes / r->self_us / 1e3);
    APPEND("%-26s %7lld %10s %10s %9s %9s %6.1f%%\n", name, (long long)r->calls,
           ct_format_us(r->self_us, tot, sizeof tot), ct_format_us(r->self_us / (double)r->calls, mean, sizeof mean),
           gf, gb, wall > 0 ? 100 * r->self_us / wall : 0);
  }
  if (!nrows) APPEND("(no ops ran)\n");
  free(rows);
  unsigned devs = ct_profile_devices(p);
  for (int d = 0; d < CT_NDEVTYPES; d++) {
    if (!(devs & (1u << d))) continue;
    ct_prof_memory m;
    if (ct_profile_memory(p, (ct_devtype)d, &m)) continue;
    char pk[32], dn[16];
    ct_device dv = {(ct_devtype)d, 0};
    ct_device_str(dv, dn, sizeof dn);
    if (d == CT_CUDA) snprintf(dn, sizeof dn, "cuda");
    APPEND("memory on %s: peak %s live, during %s%s (op %d of %d)\n", dn,
           ct_format_bytes((double)m.peak, pk, sizeof pk),
           m.slot_op[m.peak_slot][0] ? m.slot_op[m.peak_slot] : "the end of the step",
           m.slot_phase[m.peak_slot] == CT_PHASE_BACKWARD ? " (backward)" : "", m.peak_slot + 1, m.nslots - 1);
    APPEND("  %-16s %12s %12s\n", "category", "at peak", "max");
    for (int c = 0; c < CT_NCATS; c++) {
      if (!m.max_by_cat[c]) continue;
      char x[32], y[32];
      APPEND("  %-16s %12s %12s\n", ct_category_name((ct_category)c),
             ct_format_bytes((double)m.peak_by_cat[c], x, sizeof x),
             ct_format_bytes((double)m.max_by_cat[c], y, sizeof y));
    }
    ct_prof_memory_free(&m);
  }
  return k;
}
