/* buf.c: the growable text buffer DOT and JSON are written into, with the escapers they need.
 * Invariant: s is always NUL-terminated when non-NULL; after a failed allocation oom stays set
 * and later appends are dropped, so a caller checks once at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz.h"

static bool grow(viz_buf *b, size_t extra) {
  if (b->oom) return false;
  if (b->len + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->s, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->s = p;
  b->cap = cap;
  return true;
}

void viz_buf_printf(viz_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0 || !grow(b, (size_t)n)) return;
  if ((size_t)n < sizeof small) {
    memcpy(b->s + b->len, small, (size_t)n + 1);
  } else {
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void viz_buf_puts(viz_buf *b, const char *s) {
  size_t n = strlen(s);
  if (!grow(b, n)) return;
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

void viz_buf_html(viz_buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': viz_buf_puts(b, "&amp;"); break;
    case '<': viz_buf_puts(b, "&lt;"); break;
    case '>': viz_buf_puts(b, "&gt;"); break;
    case '"': viz_buf_puts(b, "&quot;"); break;
    case '\n': viz_buf_puts(b, "<BR/>"); break;
    default:
      if ((unsigned char)*s < 0x20) break;
      if (grow(b, 1)) {
        b->s[b->len++] = *s;
        b->s[b->len] = '\0';
      }
    }
  }
}

void viz_buf_quoted(viz_buf *b, const char *s) {
  viz_buf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') viz_buf_puts(b, "\\");
    if ((unsigned char)*s < 0x20) continue;
    if (grow(b, 1)) {
      b->s[b->len++] = *s;
      b->s[b->len] = '\0';
    }
  }
  viz_buf_puts(b, "\"");
}

void viz_buf_free(viz_buf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

int viz_buf_check(const viz_buf *b) { return b->oom ? ct_errorf("viz: out of memory building a picture") : 0; }
