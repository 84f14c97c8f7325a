/* palette.c: the colour table (palette.h) and colour lookup by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palette.h"
#include "viz.h"

const viz_color_def viz_palette[VIZ_NCOLORS] = {
#define VIZ_X(id, name, hex, tint, ink, meaning) [VIZ_##id] = {name, hex, tint, ink, meaning},
    VIZ_PALETTE(VIZ_X)
#undef VIZ_X
};

static unsigned hexbyte(const char *s) { return (unsigned)strtoul((char[3]){s[0], s[1], 0}, NULL, 16); }

const char *viz_heat(double t, char *buf, unsigned nbuf) {
  if (!(t >= 0)) t = 0; /* NaN too */
  if (t > 1) t = 1;
  const char *a = viz_hex(VIZ_HEAT_LO), *b = viz_hex(VIZ_HEAT_HI);
  unsigned c[3];
  for (int k = 0; k < 3; k++) {
    double lo = hexbyte(a + 1 + 2 * k), hi = hexbyte(b + 1 + 2 * k);
    c[k] = (unsigned)(lo + t * (hi - lo) + 0.5);
  }
  snprintf(buf, nbuf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

const char *viz_color_lookup(const char *name, char *buf, unsigned nbuf) {
  if (!name) return NULL;
  if (!strncmp(name, "heat:", 5)) {
    char *end;
    double t = strtod(name + 5, &end);
    return end != name + 5 && !*end ? viz_heat(t, buf, nbuf) : NULL;
  }
  const char *colon = strchr(name, ':');
  size_t n = colon ? (size_t)(colon - name) : strlen(name);
  for (int c = 0; c < VIZ_NCOLORS; c++) {
    const viz_color_def *d = &viz_palette[c];
    if (strlen(d->name) != n || strncmp(d->name, name, n)) continue;
    if (!colon) return d->hex;
    if (!strcmp(colon + 1, "tint")) return d->tint;
    if (!strcmp(colon + 1, "ink")) return d->ink;
    return NULL;
  }
  return NULL;
}

void viz_legend_node(viz_buf *b, const char *id, const viz_color *colors, const char *const *labels, int n) {
  if (n <= 0) return;
  viz_buf_printf(b, "  %s [shape=plaintext, style=\"\", margin=0, label=<<TABLE BORDER=\"0\" CELLBORDER=\"0\" "
                    "CELLSPACING=\"3\"><TR><TD><FONT POINT-SIZE=\"9\" COLOR=\"%s\"><B>legend</B></FONT></TD>",
                 id, viz_hex(VIZ_MUTED));
  for (int k = 0; k < n; k++) {
    viz_buf_printf(b, "<TD BGCOLOR=\"%s\" COLOR=\"%s\" BORDER=\"1\" WIDTH=\"14\" HEIGHT=\"10\" FIXEDSIZE=\"TRUE\"></TD>"
                      "<TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"9\" COLOR=\"%s\">",
                   viz_tint(colors[k]), viz_ink(colors[k]), viz_hex(VIZ_TEXT));
    viz_buf_html(b, labels && labels[k] ? labels[k] : viz_palette[colors[k]].name);
    viz_buf_puts(b, "</FONT></TD>");
  }
  viz_buf_printf(b, "</TR></TABLE>>];\n  { rank=sink; %s; }\n", id);
}
