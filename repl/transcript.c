/* transcript.c: :save FILE.html (the session as one self-contained page) and :save FILE.lua (its inputs). */
/*
 * The HTML needs nothing but a browser: the page's stylesheet and script (repl/web/) are copied
 * in, every picture is a data: URL of the bytes it had when it was written, and the text is
 * plain HTML, readable with scripts off (the script only adds zoom and pan to pictures).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "repl.h"
#include "serve.h"

static void put_escaped(FILE *f, const char *s) {
  static const char *const entity[] = {['<'] = "&lt;", ['>'] = "&gt;", ['&'] = "&amp;", ['"'] = "&quot;"};
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < sizeof entity / sizeof *entity && entity[c])
      fputs(entity[c], f);
    else
      fputc(c, f);
  }
}

/* A picture as an <img> with a data: URL (PDF, which img cannot show, as a download link). */
static void put_picture(FILE *f, const session_event *e) {
  const char *name = strrchr(e->s[0], '/') ? strrchr(e->s[0], '/') + 1 : e->s[0];
  size_t n = 0;
  char *b64 = e->data ? repl_base64(e->data, e->ndata, &n) : NULL;
  fputs("<figure class=\"pic\">", f);
  if (b64 == NULL) {
    fputs("<p class=\"err\">(the picture could not be read when it was written)</p>", f);
  } else if (strcmp(e->s[1], "application/pdf") == 0) {
    fputs("<a download=\"", f);
    put_escaped(f, name);
    fprintf(f, "\" href=\"data:%s;base64,%s\">", e->s[1], b64);
    put_escaped(f, name);
    fputs("</a>", f);
  } else {
    fputs("<div class=\"view\"><img alt=\"", f);
    put_escaped(f, name);
    fprintf(f, "\" src=\"data:%s;base64,%s\"></div>", e->s[1], b64);
  }
  free(b64);
  fputs("<figcaption>", f);
  put_escaped(f, e->s[0]);
  fputs("</figcaption></figure>\n", f);
}

static void put_step(FILE *f, const session_event *e) {
  fputs("<section class=\"step\"><h2>", f);
  put_escaped(f, e->s[0]);
  if (e->i > 0) {
    fprintf(f, " &middot; step %d/%d: ", e->i, e->n);
    put_escaped(f, e->s[1]);
  } else {
    fputs(": ", f);
    put_escaped(f, e->s[1]);
  }
  fputs("</h2>", f);
  if (e->i > 0 && e->s[2] && *e->s[2]) {
    fputs("<div class=\"narration\">", f);
    put_escaped(f, e->s[2]);
    fputs("</div>", f);
  }
  if (e->i > 0 && e->s[3] && *e->s[3]) {
    fputs("<pre class=\"code\">", f);
    put_escaped(f, e->s[3]);
    fputs("</pre>", f);
  }
  fputs("</section>\n", f);
}

static void put_html(FILE *f) {
  char when[64];
  time_t now = time(NULL);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
  fprintf(f,
          "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>chalk session, %s</title>\n<style>\n",
          when);
  fwrite(web_page_css, 1, web_page_css_len, f);
  fprintf(f,
          "</style></head>\n<body class=\"transcript\">\n<header><h1>chalk session</h1><span class=\"meta\">%s, "
          "chalk %s</span></header>\n<main id=\"log\">\n",
          when, CHALK_VERSION);
  static const char *const pre_class[] = {
      [EV_INPUT] = "in", [EV_COMMAND] = "in cmd", [EV_OUTPUT] = "out", [EV_ERROR] = "err"};
  log_lock();
  for (long k = 0; k < log_count(); k++) {
    const session_event *e = log_event(k);
    if (e->kind == EV_PICTURE) {
      put_picture(f, e);
    } else if (e->kind == EV_STEP) {
      put_step(f, e);
    } else {
      fprintf(f, "<pre class=\"%s\">", pre_class[e->kind]);
      put_escaped(f, e->s[0]);
      fputs("</pre>\n", f);
    }
  }
  log_unlock();
  fputs("</main>\n<script>\n", f);
  fwrite(web_page_js, 1, web_page_js_len, f);
  fputs("</script>\n</body></html>\n", f);
}

/* The inputs in order: chunks as typed, lesson steps' code under a comment, commands as comments. */
static void put_lua(FILE *f) {
  fputs("-- chalk session: the inputs, in order (chalk FILE.lua replays them)\n", f);
  log_lock();
  for (long k = 0; k < log_count(); k++) {
    const session_event *e = log_event(k);
    if (e->kind == EV_INPUT) {
      fprintf(f, "%s\n", e->s[0]);
    } else if (e->kind == EV_COMMAND) {
      fprintf(f, "-- %s\n", e->s[0]);
    } else if (e->kind == EV_STEP && e->s[3] && *e->s[3]) {
      if (e->i > 0)
        fprintf(f, "-- lesson %s, step %d/%d: %s\n%s\n", e->s[0], e->i, e->n, e->s[1] ? e->s[1] : "", e->s[3]);
      else
        fprintf(f, "-- lesson %s: its setup\n%s\n", e->s[0], e->s[3]);
    }
  }
  log_unlock();
}

bool transcript_save(const char *path) {
  size_t n = strlen(path);
  bool html = n > 5 && strcasecmp(path + n - 5, ".html") == 0;
  bool lua = n > 4 && strcasecmp(path + n - 4, ".lua") == 0;
  if (!html && !lua) {
    fprintf(stderr, "chalk: :save writes FILE.html (the session as a page) or FILE.lua (its inputs), not %s\n", path);
    return false;
  }
  if (!log_enabled()) {
    fprintf(stderr, "chalk: this session is not recorded (the REPL, --serve and --transcript record it)\n");
    return false;
  }
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "chalk: cannot write %s: %s\n", path, strerror(errno));
    return false;
  }
  if (html)
    put_html(f);
  else
    put_lua(f);
  bool ok = !ferror(f);
  if (fclose(f) != 0) ok = false;
  if (!ok) fprintf(stderr, "chalk: writing %s failed: %s\n", path, strerror(errno));
  return ok;
}
