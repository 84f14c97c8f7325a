/* render.c: the one Graphviz context of the process and the only place that calls libgvc.
 * Invariants: the context is created on first use and lives until exit; every call into
 * libcgraph/libgvc happens under render_lock; Graphviz's own error messages are captured (not
 * printed) and become the text of ct_last_error() with advice on how to fix the installation. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gvc.h>
#include <unistd.h>

#include "viz.h"

static pthread_mutex_t render_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gvc;
static char gv_msg[512];

/* Graphviz calls this with each error/warning line instead of printing it. */
static int capture_error(char *msg) {
  size_t k = strlen(gv_msg);
  if (k + 2 < sizeof gv_msg) snprintf(gv_msg + k, sizeof gv_msg - k, "%s", msg);
  return 0;
}

/* Graphviz's message without trailing newlines, or fallback. */
static const char *gv_message(const char *fallback) {
  size_t k = strlen(gv_msg);
  while (k && (gv_msg[k - 1] == '\n' || gv_msg[k - 1] == ' ')) gv_msg[--k] = '\0';
  return k ? gv_msg : fallback;
}

static const char *const install_hint =
    "install Graphviz with its plugins (Debian: apt-get install libgvc6 libgraphviz-dev) and "
    "register them by running `dot -c` as root (package graphviz)";

bool viz_format_known(const char *f) {
  return f && (!strcmp(f, "png") || !strcmp(f, "svg") || !strcmp(f, "pdf") || !strcmp(f, "dot"));
}

/* Pictures go to a temporary file beside path that is renamed over it once complete, so an
   interrupted or failed render never truncates an earlier picture. */
static void temp_name(char *buf, size_t n, const char *path) {
  snprintf(buf, n, "%s.part%ld", path, (long)getpid());
}

static int publish(const char *tmp, const char *path) {
  if (rename(tmp, path) == 0) return 0;
  int e = errno;
  remove(tmp);
  return ct_errorf("viz: cannot write %s: %s", path, strerror(e));
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return ct_errorf("viz: cannot write %s: %s", path, strerror(errno));
  size_t n = strlen(text);
  bool ok = fwrite(text, 1, n, f) == n;
  if (fclose(f) != 0) ok = false;
  return ok ? 0 : ct_errorf("viz: writing %s failed: %s", path, strerror(errno));
}

static void list_devices(char *buf, size_t n) {
  int sz = 0;
  char **list = gvPluginList(gvc, "device", &sz, NULL);
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < sz && k < n; i++) {
    int w = snprintf(buf + k, n - k, "%s%s", i ? " " : "", list[i]);
    if (w > 0) k += (size_t)w;
    free(list[i]);
  }
  free(list);
}

/* A very large PNG is drawn at a lower resolution, down to PNG_MIN_DPI (Graphviz draws 1 pixel a
   point at 72), so that it stays under PNG_MAX_PIXELS where it can: encoding the pixels (libpng's
   filters and zlib) is three quarters of rendering a big picture, and a 500-node backward graph
   came out 1022 x 20754 pixels (1.2-1.4 s here). Pictures under the limit are untouched. Sets the
   layout's drawing resolution (the "dpi" attribute is read at layout time: set after gvLayout, as
   the line before this call does, it is ignored and cairo's 96 dpi applies). After gvLayout. */
#define PNG_MAX_PIXELS 8e6
#define PNG_MIN_DPI 60 /* 12-point text still 10 pixels high */
static void png_cap_pixels(Agraph_t *g) {
  layout_t *d = GD_drawing(g);
  if (!d) return;
  double dpi = d->dpi > 0 ? d->dpi : 96; /* cairo's default for png */
  boxf bb = GD_bb(g);                    /* in points */
  double px = (bb.UR.x - bb.LL.x) * (bb.UR.y - bb.LL.y) * (dpi / 72) * (dpi / 72);
  if (px <= PNG_MAX_PIXELS) return;
  dpi *= sqrt(PNG_MAX_PIXELS / px);
  d->dpi = dpi < PNG_MIN_DPI ? PNG_MIN_DPI : dpi;
}

static int render_locked(const char *dot, const char *engine, const char *format, const char *path) {
  gv_msg[0] = '\0';
  if (!gvc) {
    agseterrf(capture_error);
    gvc = gvContext();
    if (!gvc) return ct_errorf("viz: Graphviz could not start (gvContext failed); %s", install_hint);
  }
  gv_msg[0] = '\0';
  agreseterrors();
  char tmp[4096];
  if (strlen(path) + 32 > sizeof tmp) return ct_errorf("viz: path too long: %.64s...", path);
  temp_name(tmp, sizeof tmp, path);
  if (ct_interrupt_pending()) return ct_interrupt_error("viz");
  Agraph_t *g = agmemread(dot);
  if (!g) return ct_errorf("viz: Graphviz could not parse the DOT text: %s", gv_message("syntax error"));
  if (!strcmp(format, "dot")) {
    agclose(g);
    return write_text(tmp, dot) ? (remove(tmp), -1) : publish(tmp, path);
  }
  FILE *probe = fopen(tmp, "wb");
  if (!probe) {
    agclose(g);
    return ct_errorf("viz: cannot write %s: %s", path, strerror(errno));
  }
  fclose(probe);
  /* the phases (parse, layout, drawing) each run to the end inside Graphviz: Ctrl-C is answered
     between them, and the earlier picture at path stays whole */
  if (ct_interrupt_pending() || gvLayout(gvc, g, engine) != 0) {
    agclose(g);
    remove(tmp);
    if (ct_interrupt_pending()) return ct_interrupt_error("viz");
    return ct_errorf("viz: Graphviz cannot lay out with '%s' (%s): the layout plugin is missing; %s", engine,
                     gv_message("no layout engine"), install_hint);
  }
  if (!strcmp(format, "png")) agsafeset(g, "dpi", "110", "");
  if (!strcmp(format, "png")) png_cap_pixels(g);
  bool stop = ct_interrupt_pending();
  int rc = stop ? 0 : gvRenderFilename(gvc, g, format, tmp);
  gvFreeLayout(gvc, g);
  agclose(g);
  if (stop || ct_interrupt_pending()) {
    remove(tmp);
    return ct_interrupt_error("viz");
  }
  if (rc != 0) {
    char have[256];
    list_devices(have, sizeof have);
    remove(tmp);
    return ct_errorf("viz: Graphviz cannot render %s (%s); formats available here: %s; %s", format,
                     gv_message("no renderer"), have[0] ? have : "none", install_hint);
  }
  return publish(tmp, path);
}

/* Size of an HTML-like label as Graphviz will draw it: lay out a graph of that one node and
   read the node's size from the "plain" output ("node NAME X Y WIDTH HEIGHT ..." in inches). */
static int measure_locked(const char *html, double *w, double *h) {
  if (!gvc) {
    agseterrf(capture_error);
    gvc = gvContext();
    if (!gvc) return ct_errorf("viz: Graphviz could not start (gvContext failed); %s", install_hint);
  }
  size_t n = strlen(html) + 128;
  char *src = malloc(n);
  if (!src) return ct_errorf("viz: out of memory");
  snprintf(src, n, "graph m { node [shape=plaintext, margin=0, fontname=\"" VIZ_FONT "\"]; m [label=<%s>]; }", html);
  gv_msg[0] = '\0';
  Agraph_t *g = agmemread(src);
  free(src);
  if (!g) return ct_errorf("viz: Graphviz could not parse a label (a bug in chalk's viz): %s", gv_message("syntax error"));
  int rc = gvLayout(gvc, g, "dot");
  char *out = NULL;
  unsigned len = 0;
  if (!rc) rc = gvRenderData(gvc, g, "plain", &out, &len);
  double x, y;
  if (!rc && (!out || sscanf(strstr(out, "node m ") ? strstr(out, "node m ") : "", "node m %lf %lf %lf %lf", &x, &y, w, h) != 4))
    rc = -1;
  if (out) gvFreeRenderData(out);
  if (!rc) gvFreeLayout(gvc, g);
  agclose(g);
  if (rc) return ct_errorf("viz: Graphviz could not measure a label (%s); %s", gv_message("layout failed"), install_hint);
  *w *= 72, *h *= 72;
  return 0;
}

int viz_measure(const char *html, double *w_pt, double *h_pt) {
  pthread_mutex_lock(&render_lock);
  int rc = measure_locked(html, w_pt, h_pt);
  pthread_mutex_unlock(&render_lock);
  return rc;
}

int viz_render(const char *dot, const char *engine, const char *format, const char *path) {
  if (!viz_format_known(format))
    return ct_errorf("viz: unknown format '%s' (expected png, svg, pdf or dot)", format ? format : "(null)");
  pthread_mutex_lock(&render_lock);
  int rc = render_locked(dot, engine, format, path);
  pthread_mutex_unlock(&render_lock);
  return rc;
}

/* Colours of the memory categories, used by every picture that shows memory. */
viz_color viz_category_color(int category) {
  switch ((ct_category)category) {
  case CT_CAT_ACTIVATION: return VIZ_FORWARD;
  case CT_CAT_PARAMETER: return VIZ_PARAMETER;
  case CT_CAT_GRADIENT: return VIZ_BACKWARD;
  case CT_CAT_OPTIMIZER: return VIZ_OPTIMIZER;
  case CT_CAT_INPUT: return VIZ_INPUT;
  case CT_CAT_KV_CACHE: return VIZ_KV_CACHE;
  case CT_CAT_COMM_BUFFER: return VIZ_COMM_BUFFER;
  default: return VIZ_CONSTANT;
  }
}
