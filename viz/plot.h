/* plot.h: drawing charts with Graphviz: every mark is a node pinned at a position in points
 * (rendered with the "nop" engine, neato -n), so boxes, text, axes and ticks land exactly where
 * the chart puts them. Internal to viz/.
 * Invariants: coordinates are points with y growing upwards; rectangles are given by their
 * lower-left corner, text by its anchor (left, centre or right of the baseline box). */
#ifndef CHALK_VIZ_PLOT_H
#define CHALK_VIZ_PLOT_H

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
/* "nice" tick step for a range, aiming at about n ticks. */
double plot_nice_step(double range, int n);

#endif
