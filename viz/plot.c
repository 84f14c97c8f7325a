/* plot.c: the one chart canvas: marks as Graphviz nodes pinned in place (see plot.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot.h"

void plot_begin(viz_plot *p, viz_buf *b) {
  p->b = b;
  p->next_id = 0;
  viz_buf_puts(b, "graph chalk_plot {\n"
                  "  graph [bgcolor=white, pad=0.25, splines=false, outputorder=edgesfirst];\n"
                  "  node [shape=box, style=filled, fixedsize=true, label=\"\", penwidth=0, fontname=\"" VIZ_FONT
                  "\"];\n  edge [dir=none, headclip=false, tailclip=false];\n");
}

void plot_end(viz_plot *p) { viz_buf_puts(p->b, "}\n"); }

void plot_rect(viz_plot *p, double x, double y, double w, double h, const char *fill, const char *border,
               const char *tooltip) {
  if (w <= 0 || h <= 0) return;
  viz_buf_printf(p->b, "  r%d [pos=\"%.2f,%.2f!\", width=%.4f, height=%.4f, fillcolor=\"%s\"", p->next_id++,
                 x + w / 2, y + h / 2, w / 72, h / 72, fill);
  if (border) viz_buf_printf(p->b, ", color=\"%s\", penwidth=0.8", border);
  if (tooltip) {
    viz_buf_puts(p->b, ", tooltip=");
    viz_buf_quoted(p->b, tooltip);
  }
  viz_buf_puts(p->b, "];\n");
}

void plot_vline(viz_plot *p, double x, double y0, double y1, double width, const char *color, bool dashed) {
  if (!dashed) {
    plot_rect(p, x - width / 2, y0, width, y1 - y0, color, NULL, NULL);
    return;
  }
  for (double y = y0; y < y1; y += 7) plot_rect(p, x - width / 2, y, width, fmin(4, y1 - y), color, NULL, NULL);
}

void plot_hline(viz_plot *p, double x0, double x1, double y, double width, const char *color) {
  plot_rect(p, x0, y - width / 2, x1 - x0, width, color, NULL, NULL);
}

/* DejaVu Sans advance widths in em, by class of character (close enough to anchor text). */
static double char_em(unsigned char c) {
  if (c == ' ') return 0.32;
  if (strchr("ijl.,:;'|!", c)) return 0.30;
  if (strchr("()[]{}ftr-", c)) return 0.42;
  if (strchr("mwMW", c)) return 0.92;
  if (c >= 'A' && c <= 'Z') return 0.70;
  if (c >= '0' && c <= '9') return 0.64;
  if (c < 0x80) return 0.61;
  return 0.62;
}

double plot_text_width(const char *text, double size) {
  double em = 0;
  for (const unsigned char *s = (const unsigned char *)text; *s; s++)
    if ((*s & 0xC0) != 0x80) em += char_em(*s); /* one per UTF-8 character */
  return em * size;
}

static double anchor_shift(viz_anchor a, double w) { return a == ANCHOR_LEFT ? w / 2 : a == ANCHOR_RIGHT ? -w / 2 : 0; }

void plot_text(viz_plot *p, double x, double y, const char *text, double size, const char *color, viz_anchor a,
               bool bold) {
  double w = plot_text_width(text, size) * (bold ? 1.08 : 1.0);
  viz_buf_printf(p->b, "  t%d [shape=plaintext, style=\"\", fixedsize=false, margin=0, width=0, height=0, "
                       "pos=\"%.2f,%.2f!\", fontsize=%.1f, fontcolor=\"%s\", label=<",
                 p->next_id++, x + anchor_shift(a, w), y, size, color);
  if (bold) viz_buf_puts(p->b, "<b>");
  viz_buf_html(p->b, text);
  if (bold) viz_buf_puts(p->b, "</b>");
  viz_buf_puts(p->b, ">];\n");
}

void plot_html(viz_plot *p, double x, double y, const char *html, viz_anchor a, double w) {
  viz_buf_printf(p->b, "  h%d [shape=plaintext, style=\"\", fixedsize=false, margin=0, width=0, height=0, "
                       "pos=\"%.2f,%.2f!\", label=<%s>];\n",
                 p->next_id++, x + anchor_shift(a, w), y, html);
}

double plot_nice_step(double range, int n) {
  if (range <= 0) return 1;
  double raw = range / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
  double step = r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
  return step * mag;
}

void plot_point(viz_plot *p, double x, double y, double size, const char *fill) {
  viz_buf_printf(p->b, "  p%d [shape=circle, width=%.3f, height=%.3f, fillcolor=\"%s\", color=\"%s\", penwidth=0.8, "
                       "pos=\"%.2f,%.2f!\"];\n",
                 p->next_id++, size / 72, size / 72, fill, viz_hex(VIZ_PAPER), x, y);
}

void plot_polyline(viz_plot *p, const double *xs, const double *ys, int n, const char *color, double width,
                   bool dashed) {
  int first = p->next_id;
  for (int i = 0; i < n; i++)
    viz_buf_printf(p->b, "  l%d [shape=point, width=0.01, height=0.01, style=invis, pos=\"%.2f,%.2f!\"];\n",
                   p->next_id++, xs[i], ys[i]);
  for (int i = 1; i < n; i++)
    viz_buf_printf(p->b, "  l%d -- l%d [color=\"%s\", penwidth=%.2f%s];\n", first + i - 1, first + i, color, width,
                   dashed ? ", style=dashed" : "");
}

double plot_legend(viz_plot *p, double x, double y, const char *const *fills, const char *const *borders,
                   const char *const *labels, int n, double size) {
  for (int k = 0; k < n; k++) {
    plot_rect(p, x, y - size / 2, size * 1.2, size, fills[k], borders[k], NULL);
    plot_text(p, x + size * 1.2 + 6, y, labels[k], size, viz_hex(VIZ_TEXT), ANCHOR_LEFT, false);
    x += size * 1.2 + 6 + plot_text_width(labels[k], size) + 18;
  }
  return x;
}
