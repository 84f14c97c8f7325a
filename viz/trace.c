/* trace.c: viz.trace: a timeline of one profiled step, one lane per device and stream, each op a
 * box whose width is its duration, labelled where the label fits, on a time axis; marks (such as
 * the start of backward) drawn across the lanes.
 * Invariants: x is proportional to time over the whole profile window, so gaps between boxes are
 * real time spent outside ops (Lua, allocation); colours say forward, backward, copy or
 * collective, as in the legend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

#define LANE_H 30.0
#define LANE_GAP 12.0
#define X0 118.0
#define Y0 58.0
#define MERGE_ABOVE 1500 /* ops in a lane past which tiny neighbours merge into one box */

typedef struct {
  int devtype, devindex, stream;
  int count;
} lane;

typedef struct {
  double t0, t1;
  int lane;
  size_t ev;
  int merged; /* ops inside this box */
} tbox;

static bool is_timed(const ct_event *e) {
  return e->kind == CT_EV_OP || e->kind == CT_EV_COPY || e->kind == CT_EV_COLLECTIVE;
}

static int find_lane(lane *l, int *nl, const ct_event *e) {
  for (int i = 0; i < *nl; i++)
    if (l[i].devtype == (int)e->device.type && l[i].devindex == e->device.index && l[i].stream == e->stream) return i;
  l[*nl] = (lane){(int)e->device.type, e->device.index, e->stream, 0};
  return (*nl)++;
}

static int cmp_lane(const void *a, const void *b) {
  const lane *x = a, *y = b;
  if (x->devtype != y->devtype) return x->devtype - y->devtype;
  if (x->devindex != y->devindex) return x->devindex - y->devindex;
  return x->stream - y->stream;
}

/* legend classes: forward op, backward op, op after backward, copy, collective */
static int box_class(const ct_profile *p, size_t i) {
  const ct_event *e = ct_profile_event(p, i);
  if (e->kind == CT_EV_COPY) return 3;
  if (e->kind == CT_EV_COLLECTIVE) return 4;
  return ct_profile_phase(p, i);
}
static const char *const class_name[5] = {"forward op", "backward op", "op after backward (optimizer...)",
                                          "copy between devices", "collective"};
static const viz_color class_fill[5] = {VIZ_FORWARD, VIZ_BACKWARD, VIZ_OPTIMIZER, VIZ_COPY, VIZ_COLLECTIVE};

static int cmp_box_t0(const void *a, const void *b) {
  const tbox *x = a, *y = b;
  if (x->lane != y->lane) return x->lane - y->lane;
  return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}
/* longest first, so that ops running inside another op are drawn over it */
static int cmp_box_len(const void *a, const void *b) {
  const tbox *x = a, *y = b;
  double dx = x->t1 - x->t0, dy = y->t1 - y->t0;
  if (dx != dy) return dx < dy ? 1 : -1;
  return x->ev < y->ev ? -1 : x->ev > y->ev;
}

static void fmt_time_tick(char *b, size_t n, double us, double step_us) {
  if (step_us >= 1000) snprintf(b, n, step_us >= 1e4 || fmod(us, 1000) == 0 ? "%.0f ms" : "%.1f ms", us / 1000);
  else if (step_us >= 1) snprintf(b, n, "%.0f us", us);
  else snprintf(b, n, "%.2f us", us);
}

int viz_trace_dot(const ct_profile *p, const viz_trace_opts *o, viz_buf *out) {
  double W = o && o->width_pt > 0 ? o->width_pt : 900;
  size_t nev = ct_profile_nevents(p);
  double ts = ct_profile_start_us(p), dur = ct_profile_duration_us(p);
  if (dur <= 0) dur = 1;
  lane *lanes = calloc(nev + 1, sizeof *lanes);
  tbox *box = calloc(nev + 1, sizeof *box);
  if (!lanes || !box) {
    free(lanes), free(box);
    return ct_errorf("viz.trace: out of memory");
  }
  int nl = 0, nb = 0, nops = 0;
  for (size_t i = 0; i < nev; i++) {
    const ct_event *e = ct_profile_event(p, i);
    if (!is_timed(e)) continue;
    nops++;
    box[nb++] = (tbox){e->t0 - ts, e->t1 - ts, find_lane(lanes, &nl, e), i, 1};
  }
  /* lanes in device order; remap */
  lane *sorted = malloc(sizeof *sorted * (size_t)(nl + 1));
  if (!sorted) {
    free(lanes), free(box);
    return ct_errorf("viz.trace: out of memory");
  }
  memcpy(sorted, lanes, sizeof *lanes * (size_t)nl);
  qsort(sorted, (size_t)nl, sizeof *sorted, cmp_lane);
  for (int b = 0; b < nb; b++) {
    lane *L = &lanes[box[b].lane];
    for (int j = 0; j < nl; j++)
      if (!cmp_lane(&sorted[j], L)) box[b].lane = j;
  }
  for (int b = 0; b < nb; b++) sorted[box[b].lane].count++;
  double sx = W / dur;
  /* merge runs of tiny boxes in crowded lanes */
  qsort(box, (size_t)nb, sizeof *box, cmp_box_t0);
  int m = 0;
  for (int b = 0; b < nb; b++) {
    if (m && sorted[box[b].lane].count > MERGE_ABOVE && box[m - 1].lane == box[b].lane &&
        (box[b].t0 - box[m - 1].t1) * sx < 0.5 && (box[b].t1 - box[m - 1].t0) * sx < 2) {
      box[m - 1].t1 = fmax(box[m - 1].t1, box[b].t1);
      box[m - 1].merged++;
      continue;
    }
    box[m++] = box[b];
  }
  nb = m;
  qsort(box, (size_t)nb, sizeof *box, cmp_box_len);

  double H = nl ? nl * (LANE_H + LANE_GAP) : LANE_H;
  viz_plot pl;
  plot_begin(&pl, out);
  char title[256], a[32], b2[32];
  if (o && o->title) snprintf(title, sizeof title, "%s", o->title);
  else
    snprintf(title, sizeof title, "trace: %d ops in %s, some op running %.0f%% of the time", nops,
             ct_format_us(dur, a, sizeof a), 100 * ct_profile_busy_us(p) / dur);
  plot_text(&pl, X0, Y0 + H + 58, title, 15, viz_ink(VIZ_TITLE), ANCHOR_LEFT, true);
  /* legend */
  bool has[5] = {false};
  for (int i = 0; i < nb; i++) has[box_class(p, box[i].ev)] = true;
  double lx = X0;
  for (int k = 0; k < 5; k++) {
    if (!has[k] && k > 0) continue;
    plot_rect(&pl, lx, Y0 + H + 31, 12, 10, viz_hex(class_fill[k]), viz_ink(VIZ_MUTED), NULL);
    plot_text(&pl, lx + 16, Y0 + H + 36, class_name[k], 11, viz_ink(VIZ_TEXT), ANCHOR_LEFT, false);
    lx += 16 + plot_text_width(class_name[k], 11) + 18;
  }
  plot_text(&pl, lx, Y0 + H + 36, "gaps: time outside ops (Lua, allocation)", 11, viz_hex(VIZ_MUTED), ANCHOR_LEFT, false);
  /* lanes */
  for (int l = 0; l < nl; l++) {
    double y = Y0 + H - (l + 1) * (LANE_H + LANE_GAP) + LANE_GAP / 2;
    plot_rect(&pl, X0, y, W, LANE_H, l % 2 ? viz_tint(VIZ_GRID) : viz_tint(VIZ_MUTED), NULL, NULL);
    char name[64], dv[24];
    ct_device d = {(ct_devtype)sorted[l].devtype, sorted[l].devindex};
    ct_device_str(d, dv, sizeof dv);
    snprintf(name, sizeof name, "%s stream %d", dv, sorted[l].stream);
    plot_text(&pl, X0 - 8, y + LANE_H / 2, name, 11, viz_ink(VIZ_TEXT), ANCHOR_RIGHT, true);
  }
  /* boxes */
  for (int i = 0; i < nb; i++) {
    const ct_event *e = ct_profile_event(p, box[i].ev);
    double y = Y0 + H - (box[i].lane + 1) * (LANE_H + LANE_GAP) + LANE_GAP / 2;
    double x0 = X0 + box[i].t0 * sx, w = fmax((box[i].t1 - box[i].t0) * sx, 0.8);
    char tip[160];
    if (box[i].merged > 1)
      snprintf(tip, sizeof tip, "%d short ops, %s", box[i].merged, ct_format_us(box[i].t1 - box[i].t0, a, sizeof a));
    else
      snprintf(tip, sizeof tip, "%s%s%s: %s", e->name ? e->name : "?", e->label[0] ? " / " : "", e->label,
               ct_format_us(box[i].t1 - box[i].t0, a, sizeof a));
    plot_rect(&pl, x0, y + 2, w, LANE_H - 4, viz_hex(class_fill[box_class(p, box[i].ev)]), w > 3 ? viz_hex(VIZ_PAPER) : NULL, tip);
    const char *nm = box[i].merged > 1 ? "..." : e->name ? e->name : "?";
    if (w > plot_text_width(nm, 10) + 6)
      plot_text(&pl, x0 + w / 2, y + LANE_H / 2, nm, 10, viz_ink(VIZ_TITLE), ANCHOR_CENTER, false);
  }
  /* marks; a label that would run into the previous one goes on the line below it, and one
     that would leave the chart on the right is written to the left of its line */
  double row_end[2] = {-1e9, -1e9};
  for (size_t i = 0; i < nev; i++) {
    const ct_event *e = ct_profile_event(p, i);
    if (e->kind != CT_EV_MARK) continue;
    double x = X0 + (e->t0 - ts) * sx;
    plot_vline(&pl, x, Y0, Y0 + H, 1.2, viz_hex(VIZ_TEXT), true);
    char lab[96];
    snprintf(lab, sizeof lab, "%s", e->label[0] ? e->label : e->name ? e->name : "mark");
    double w = plot_text_width(lab, 10);
    bool left = x + 3 + w > X0 + W + 40;
    double x0 = left ? x - 3 - w : x + 3;
    int row = 0;
    if (x0 < row_end[0] + 6) row = 1;
    row_end[row] = x0 + w;
    plot_text(&pl, x0, Y0 + H + 6 + 11 * row, lab, 10, viz_hex(VIZ_TEXT), ANCHOR_LEFT, false);
  }
  /* time axis */
  plot_hline(&pl, X0, X0 + W, Y0, 1.2, viz_hex(VIZ_TEXT));
  double step = plot_nice_step(dur, 8);
  for (double t = 0; t <= dur + 1e-9; t += step) {
    double x = X0 + t * sx;
    char tk[32];
    fmt_time_tick(tk, sizeof tk, t, step);
    plot_vline(&pl, x, Y0 - 4, Y0, 1, viz_hex(VIZ_TEXT), false);
    plot_text(&pl, x, Y0 - 14, tk, 10, viz_hex(VIZ_TEXT), ANCHOR_CENTER, false);
  }
  plot_text(&pl, X0 + W / 2, Y0 - 32, "time since the profile started", 10, viz_hex(VIZ_TEXT), ANCHOR_CENTER, true);
  (void)b2;
  plot_end(&pl);
  free(lanes), free(sorted), free(box);
  return viz_buf_check(out);
}
