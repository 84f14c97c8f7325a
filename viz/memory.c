/* memory.c: viz.memory: live bytes stacked by category over one profiled step, the peak marked
 * and what was live at it listed, drawn as a chart of pinned boxes (plot.h).
 * Invariants: columns are the profile's op slots (merged into at most MAX_COLS buckets, each
 * keeping its highest moment), so the tallest column is the true peak; categories stack in one
 * fixed order, bottom to top, with the colours every chalk picture uses for them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

#define MAX_COLS 600
#define PLOT_W 760.0
#define PLOT_H 300.0
#define X0 78.0
#define Y0 64.0

static const ct_category stack_order[CT_NCATS] = {CT_CAT_PARAMETER, CT_CAT_OPTIMIZER, CT_CAT_INPUT,
                                                  CT_CAT_GRADIENT,  CT_CAT_ACTIVATION, CT_CAT_TEMPORARY,
                                                  CT_CAT_KV_CACHE,  CT_CAT_COMM_BUFFER};

/* A byte unit for an axis whose top is max. */
static void byte_unit(double max, double *div, const char **name) {
  *div = 1, *name = "B";
  if (max >= 1024.0 * 1024 * 1024) *div = 1024.0 * 1024 * 1024, *name = "GiB";
  else if (max >= 1024.0 * 1024) *div = 1024.0 * 1024, *name = "MiB";
  else if (max >= 1024.0) *div = 1024.0, *name = "KiB";
}

static void fmt_tick(char *b, size_t n, double v, double step) {
  if (step >= 1 || v == 0) snprintf(b, n, "%.0f", v);
  else if (step >= 0.1) snprintf(b, n, "%.1f", v);
  else snprintf(b, n, "%.2f", v);
}

#define NBANDS (CT_NCATS + 1) /* band 0: the baseline (bytes from before the profile), then stack_order */

static const char *band_name(int i) { return i ? ct_category_name(stack_order[i - 1]) : "baseline"; }
static const char *band_color(int i) { return viz_hex(i ? viz_category_color(stack_order[i - 1]) : VIZ_BASELINE); }

typedef struct {
  int64_t live[NBANDS]; /* bytes of each band */
  int phase;
  double x0, x1; /* in plot units (op index or microseconds) */
} column;

static int choose_device(const ct_profile *p) {
  unsigned devs = ct_profile_devices(p);
  int best = CT_CPU;
  int64_t best_peak = -1;
  for (int d = 0; d < CT_NDEVTYPES; d++) {
    if (!(devs & (1u << d)) && d != CT_CPU) continue;
    ct_prof_memory m;
    if (ct_profile_memory(p, (ct_devtype)d, &m)) {
      ct_clear_error();
      continue;
    }
    if (m.peak > best_peak) best_peak = m.peak, best = d;
    ct_prof_memory_free(&m);
  }
  return best;
}

static void legend_row(viz_plot *pl, const int64_t *band_max, double x, double y) {
  for (int i = 0; i < NBANDS; i++) {
    if (!band_max[i]) continue;
    plot_rect(pl, x, y - 6, 14, 12, band_color(i), viz_ink(VIZ_MUTED), NULL);
    const char *nm = band_name(i);
    plot_text(pl, x + 19, y, nm, 13, viz_ink(VIZ_TEXT), ANCHOR_LEFT, false);
    x += 19 + plot_text_width(nm, 13) + 20;
  }
}

/* The table of what was live at the peak, to the right of the chart. */
static int peak_table(viz_plot *pl, const ct_prof_memory *m, int max_listed, double x, double top) {
  viz_buf h = {0};
  char sz[32];
  int rows = 1;
  viz_buf_puts(&h, "<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"1\" CELLPADDING=\"1\">");
  viz_buf_printf(&h, "<TR><TD COLSPAN=\"3\" ALIGN=\"LEFT\"><FONT POINT-SIZE=\"14\"><B>live at the peak (%s)</B></FONT></TD></TR>",
                 ct_format_bytes((double)m->peak, sz, sizeof sz));
  double widest = 180;
  int shown = m->nat_peak < max_listed ? m->nat_peak : max_listed;
  for (int i = 0; i < shown; i++) {
    const ct_prof_live *l = &m->at_peak[i];
    viz_buf_printf(&h, "<TR><TD BGCOLOR=\"%s\" WIDTH=\"10\" HEIGHT=\"10\" FIXEDSIZE=\"TRUE\"> </TD><TD ALIGN=\"LEFT\">"
                       "<FONT POINT-SIZE=\"12\">",
                   viz_hex(viz_category_color(l->category)));
    char lab[48];
    snprintf(lab, sizeof lab, "%.40s%s", l->label, strlen(l->label) > 40 ? "..." : "");
    viz_buf_html(&h, lab);
    viz_buf_printf(&h, "</FONT></TD><TD ALIGN=\"RIGHT\"><FONT POINT-SIZE=\"12\">%s</FONT></TD></TR>",
                   ct_format_bytes((double)l->nbytes, sz, sizeof sz));
    double w = plot_text_width(lab, 12) + 100;
    if (w > widest) widest = w;
    rows++;
  }
  if (m->nat_peak > shown) {
    int64_t rest = 0;
    for (int i = shown; i < m->nat_peak; i++) rest += m->at_peak[i].nbytes;
    viz_buf_printf(&h, "<TR><TD> </TD><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"12\" COLOR=\"%s\"><I>%d more tensors</I></FONT>"
                       "</TD><TD ALIGN=\"RIGHT\"><FONT POINT-SIZE=\"12\" COLOR=\"%s\">%s</FONT></TD></TR>",
                   viz_ink(VIZ_MUTED), m->nat_peak - shown, viz_ink(VIZ_MUTED), ct_format_bytes((double)rest, sz, sizeof sz));
    rows++;
  }
  for (int c = 0; c < CT_NCATS; c++) {
    if (!m->before_by_cat[c]) continue;
    double w = plot_text_width(ct_category_name((ct_category)c), 12) + 270;
    if (w > widest) widest = w;
    viz_buf_printf(&h, "<TR><TD BGCOLOR=\"%s\" WIDTH=\"10\" HEIGHT=\"10\" FIXEDSIZE=\"TRUE\"> </TD><TD ALIGN=\"LEFT\">"
                       "<FONT POINT-SIZE=\"12\"><I>%s made before the profile</I></FONT></TD><TD ALIGN=\"RIGHT\">"
                       "<FONT POINT-SIZE=\"12\">%s</FONT></TD></TR>",
                   viz_hex(VIZ_BASELINE), ct_category_name((ct_category)c), ct_format_bytes((double)m->before_by_cat[c], sz, sizeof sz));
    rows++;
  }
  if (rows == 1) {
    viz_buf_puts(&h, "<TR><TD COLSPAN=\"3\" ALIGN=\"LEFT\"><FONT POINT-SIZE=\"12\"><I>nothing</I></FONT></TD></TR>");
    rows++;
  }
  viz_buf_puts(&h, "</TABLE>");
  double w = widest, height = 20.0 * rows + 8;
  int rc = 0;
  if (h.oom) pl->b->oom = true;
  else if (!(rc = viz_measure(h.s, &w, &height))) plot_html(pl, x, top - height / 2, h.s, ANCHOR_LEFT, w);
  viz_buf_free(&h);
  return rc;
}

int viz_memory_dot(const ct_profile *p, const viz_memory_opts *o, viz_buf *out) {
  viz_memory_opts opt = {.device = -1};
  if (o) opt = *o;
  if (opt.max_listed <= 0) opt.max_listed = 8;
  int dev = opt.device >= 0 ? opt.device : choose_device(p);
  ct_prof_memory m;
  if (ct_profile_memory(p, (ct_devtype)dev, &m)) return -1;
  /* columns */
  int ncols = m.nslots <= MAX_COLS ? m.nslots : MAX_COLS;
  column *col = calloc((size_t)ncols, sizeof *col);
  if (!col) {
    ct_prof_memory_free(&m);
    return ct_errorf("viz.memory: out of memory");
  }
  double xmax = opt.by_time ? m.end_us[m.nslots - 1] : (double)m.nslots;
  if (xmax <= 0) xmax = 1;
  for (int c = 0; c < ncols; c++) {
    int s0 = (int)((int64_t)c * m.nslots / ncols), s1 = (int)((int64_t)(c + 1) * m.nslots / ncols);
    int64_t best = -1;
    for (int s = s0; s < s1; s++) {
      int64_t tot = 0;
      for (int k = 0; k < CT_NCATS; k++) tot += m.live[s][k];
      if (tot > best) {
        best = tot;
        col[c].live[0] = 0;
        for (int k = 0; k < CT_NCATS; k++) col[c].live[0] += m.base[s][k];
        for (int k = 0; k < CT_NCATS; k++) col[c].live[1 + k] = m.live[s][stack_order[k]] - m.base[s][stack_order[k]];
      }
    }
    col[c].phase = m.slot_phase[s0];
    if (opt.by_time) {
      col[c].x0 = s0 ? m.end_us[s0 - 1] : 0;
      col[c].x1 = m.end_us[s1 - 1];
    } else {
      col[c].x0 = s0;
      col[c].x1 = s1;
    }
  }
  double ymax_b = (double)m.peak > 0 ? (double)m.peak * 1.08 : 1024;
  double div;
  const char *unit;
  byte_unit(ymax_b, &div, &unit);
  double ystep = plot_nice_step(ymax_b / div, 5);
  double ytop = ceil(ymax_b / div / ystep) * ystep; /* axis top in units */
  double sy = PLOT_H / (ytop * div), sx = PLOT_W / xmax;

  viz_plot pl;
  plot_begin(&pl, out);
  /* title and legend */
  char title[300], pk[32], dn[16];
  snprintf(dn, sizeof dn, "%s", dev == CT_CUDA ? "cuda" : "cpu");
  if (opt.title) snprintf(title, sizeof title, "%s", opt.title);
  else if (m.slot_op[m.peak_slot][0])
    snprintf(title, sizeof title, "memory on %s: peak %s during op %d of %d (%s%s)", dn,
             ct_format_bytes((double)m.peak, pk, sizeof pk), m.peak_slot + 1, m.nslots - 1, m.slot_op[m.peak_slot],
             m.slot_phase[m.peak_slot] == CT_PHASE_BACKWARD ? ", backward" : "");
  else
    snprintf(title, sizeof title, "memory on %s: peak %s", dn, ct_format_bytes((double)m.peak, pk, sizeof pk));
  plot_text(&pl, X0, Y0 + PLOT_H + 50, title, 16, viz_ink(VIZ_TITLE), ANCHOR_LEFT, true);
  int64_t band_max[NBANDS] = {0};
  for (int c = 0; c < ncols; c++)
    for (int i = 0; i < NBANDS; i++)
      if (col[c].live[i] > band_max[i]) band_max[i] = col[c].live[i];
  legend_row(&pl, band_max, X0, Y0 + PLOT_H + 26);
  /* grid and y axis */
  for (double v = 0; v <= ytop + 1e-9; v += ystep) {
    double y = Y0 + v * div * sy;
    char t[32];
    fmt_tick(t, sizeof t, v, ystep);
    if (v > 0) plot_hline(&pl, X0, X0 + PLOT_W, y, 0.6, viz_hex(VIZ_GRID));
    plot_text(&pl, X0 - 6, y, t, 12, viz_hex(VIZ_TEXT), ANCHOR_RIGHT, false);
  }
  char yl[32];
  snprintf(yl, sizeof yl, "live %s", unit);
  plot_text(&pl, X0 - 6, Y0 + PLOT_H + 10, yl, 12, viz_hex(VIZ_TEXT), ANCHOR_RIGHT, true);
  /* stacked boxes, merged along x where nothing changes */
  for (int i = 0; i < NBANDS; i++) {
    int c = 0;
    while (c < ncols) {
      int64_t base = 0;
      for (int j = 0; j < i; j++) base += col[c].live[j];
      int64_t h = col[c].live[i];
      int e = c + 1;
      while (e < ncols) {
        int64_t b2 = 0;
        for (int j = 0; j < i; j++) b2 += col[e].live[j];
        if (b2 != base || col[e].live[i] != h) break;
        e++;
      }
      if (h > 0) {
        char tip[96], sz[32];
        snprintf(tip, sizeof tip, "%s: %s", band_name(i), ct_format_bytes((double)h, sz, sizeof sz));
        double x0 = X0 + col[c].x0 * sx, x1 = X0 + col[e - 1].x1 * sx;
        plot_rect(&pl, x0, Y0 + (double)base * sy, x1 - x0, (double)h * sy, band_color(i), NULL, tip);
      }
      c = e;
    }
  }
  /* axes */
  plot_hline(&pl, X0, X0 + PLOT_W, Y0, 1.2, viz_hex(VIZ_TEXT));
  plot_vline(&pl, X0, Y0, Y0 + PLOT_H, 1.2, viz_hex(VIZ_TEXT), false);
  /* forward/backward band under the axis */
  static const viz_color phase_fill[3] = {VIZ_FORWARD, VIZ_BACKWARD, VIZ_OPTIMIZER};
  static const char *const phase_name[3] = {"forward", "backward", "after backward"};
  for (int c = 0; c < ncols;) {
    int e = c + 1;
    while (e < ncols && col[e].phase == col[c].phase) e++;
    double x0 = X0 + col[c].x0 * sx, x1 = X0 + col[e - 1].x1 * sx;
    plot_rect(&pl, x0, Y0 - 14, x1 - x0, 9, viz_tint(phase_fill[col[c].phase % 3]), NULL, NULL);
    const char *ph = phase_name[col[c].phase % 3];
    if (x1 - x0 > plot_text_width(ph, 11) + 6) plot_text(&pl, (x0 + x1) / 2, Y0 - 26, ph, 11, viz_ink(VIZ_MUTED), ANCHOR_CENTER, false);
    c = e;
  }
  /* x ticks */
  double xstep = plot_nice_step(opt.by_time ? xmax / 1000 : xmax, 8);
  double xs_unit = opt.by_time ? 1000 : 1; /* time ticks in ms */
  for (double v = 0; v * xs_unit <= xmax + 1e-9; v += xstep) {
    double x = X0 + v * xs_unit * sx;
    char t[32];
    fmt_tick(t, sizeof t, v, xstep);
    plot_vline(&pl, x, Y0 - 4, Y0, 1, viz_hex(VIZ_TEXT), false);
    plot_text(&pl, x, Y0 - 40, t, 12, viz_hex(VIZ_TEXT), ANCHOR_CENTER, false);
  }
  plot_text(&pl, X0 + PLOT_W / 2, Y0 - 58,
            opt.by_time ? "time (ms)" : "op index (each column: the op's highest moment)", 12, viz_hex(VIZ_TEXT),
            ANCHOR_CENTER, true);
  /* user marks (the engine's own "backward" / "backward end" marks are the band above) */
  int op_count = 0;
  for (size_t i = 0; i < ct_profile_nevents(p); i++) {
    const ct_event *e = ct_profile_event(p, i);
    if (e->kind == CT_EV_OP || e->kind == CT_EV_COPY || e->kind == CT_EV_COLLECTIVE) op_count++;
    if (e->kind != CT_EV_MARK || (e->name && !strncmp(e->name, "backward", 8))) continue;
    int c = (int)((int64_t)(op_count < m.nslots ? op_count : m.nslots - 1) * ncols / m.nslots);
    double x = X0 + col[c].x0 * sx;
    plot_vline(&pl, x, Y0, Y0 + PLOT_H, 1, viz_ink(VIZ_MUTED), true);
    const char *ml = e->label[0] ? e->label : e->name ? e->name : "mark";
    bool left = x + 3 + plot_text_width(ml, 10) > X0 + PLOT_W;
    plot_text(&pl, left ? x - 3 : x + 3, Y0 + PLOT_H - 8, ml, 10, viz_hex(VIZ_TEXT), left ? ANCHOR_RIGHT : ANCHOR_LEFT, false);
  }
  /* the peak */
  int pc = (int)((int64_t)m.peak_slot * ncols / m.nslots);
  double px = X0 + (col[pc].x0 + col[pc].x1) / 2 * sx;
  plot_vline(&pl, px, Y0, Y0 + PLOT_H, 1.4, viz_hex(VIZ_MARK), true);
  char pl_lab[48];
  snprintf(pl_lab, sizeof pl_lab, "peak %s", ct_format_bytes((double)m.peak, pk, sizeof pk));
  double lw = plot_text_width(pl_lab, 13);
  double lx = px + 4 + lw > X0 + PLOT_W ? px - 4 - lw : px + 4;
  plot_text(&pl, lx, Y0 + (double)m.peak * sy + 8 < Y0 + PLOT_H - 6 ? Y0 + (double)m.peak * sy + 8 : Y0 + PLOT_H - 6,
            pl_lab, 13, viz_hex(VIZ_MARK), ANCHOR_LEFT, true);
  int rc = peak_table(&pl, &m, opt.max_listed, X0 + PLOT_W + 24, Y0 + PLOT_H);
  plot_end(&pl);
  free(col);
  ct_prof_memory_free(&m);
  return rc ? -1 : viz_buf_check(out);
}
