/* plot.h: the one chart canvas of chalk (C charts in viz/ and, through chalk.viz.canvas, every
 * Lua chart): every mark is a node pinned at a position in points (rendered with the "nop"
 * engine, neato -n), so boxes, text, axes and ticks land exactly where the chart puts them.
 * Colours are #rrggbb strings taken from the palette (palette.h).
 * Invariants: coordinates are points with y growing upwards; rectangles are given by their
 * lower-left corner, text by its anchor (left, centre or right of the baseline box). */
#ifndef CHALK_VIZ_PLOT_H
#define CHALK_VIZ_PLOT_H

#include "palette.h"
#include "viz.h"

typedef struct {
  viz_buf *b;
  int next_id;
} viz_plot;

typedef enum { ANCHOR_LEFT, ANCHOR_CENTER, ANCHOR_RIGHT } viz_anchor;

void plot_begin(viz_plot *p, viz_buf *b);
void plot_end(viz_plot *p);
/* A filled rectangle; border NULL draws none; tooltip (SVG hover) may be NULL. */
void plot_rect(viz_plot *p, double x, double y, double w, double h, const char *fill, const char *border,
               const char *tooltip);
/* A dashed or solid line segment, horizontal or vertical (drawn as a thin rectangle). */
void plot_vline(viz_plot *p, double x, double y0, double y1, double width, const char *color, bool dashed);
void plot_hline(viz_plot *p, double x0, double x1, double y, double width, const char *color);
/* Plain text (escaped here); size in points. */
void plot_text(viz_plot *p, double x, double y, const char *text, double size, const char *color, viz_anchor a,
               bool bold);
/* Text inside a rectangle, centred (used for labels on boxes). */
void plot_html(viz_plot *p, double x, double y, const char *html, viz_anchor a, double width_estimate);
/* Estimated width of text in points at size (DejaVu Sans averages ~0.58 em). */
double plot_text_width(const char *text, double size);
/* A dot of size points centred at (x, y). */
void plot_point(viz_plot *p, double x, double y, double size, const char *fill);
/* A line through n points (edges between invisible nodes). */
void plot_polyline(viz_plot *p, const double *xs, const double *ys, int n, const char *color, double width,
                   bool dashed);
/* A legend row at (x, y): for each entry a swatch (fills[k], bordered by borders[k] or none) and
   labels[k], at size points; returns the x after the last entry. */
double plot_legend(viz_plot *p, double x, double y, const char *const *fills, const char *const *borders,
                   const char *const *labels, int n, double size);
/* "nice" tick step for a range, aiming at about n ticks. */
double plot_nice_step(double range, int n);

#endif
