/* serve_log.c: the session log: every input, output, error, picture and lesson step, in order. */
/*
 * Invariants. Events are appended (never changed or removed) by the REPL thread and the tee
 * thread, under `mu`; the server threads read them under `mu` too, and wait on `grew` for new
 * ones. Each event's server-sent-event text is made once, when it is appended, so a hundred
 * page viewers cost a hundred copies and no formatting.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define TEXT_MAX (256 << 10) /* one output event keeps at most this much text */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t grew = PTHREAD_COND_INITIALIZER;
static session_event *events;
static long count, cap;
static bool stopping, enabled;

static char session[32]; /* this process's session, the prefix of every event id: "SESSION-SEQ" */

const char *log_session(void) { return session; }

static const char *const kind_names[EV_KINDS] = {"input", "command", "output", "error", "picture", "step"};

double now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
}

void log_enable(void) { /* on the REPL thread, before the tee or the server start */
  if (session[0] == '\0') snprintf(session, sizeof session, "%lx%x", (unsigned long)now_ms(), (unsigned)getpid());
  enabled = true;
}
bool log_enabled(void) { return enabled; }

char *json_quote(const char *s, size_t len) {
  char *out = malloc(6 * len + 3), *o = out;
  if (out == NULL) return NULL;
  *o++ = '"';
  for (size_t k = 0; k < len; k++) {
    unsigned char c = (unsigned char)s[k];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c == '\n') {
      *o++ = '\\', *o++ = 'n';
    } else if (c == '\t') {
      *o++ = '\\', *o++ = 't';
    } else if (c < 0x20 || c == 0x7f) {
      o += sprintf(o, "\\u%04x", c);
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

const char *mime_of(const char *path) {
  const char *dot = strrchr(path, '.');
  static const char *const table[][2] = {{"svg", "image/svg+xml"},
                                         {"png", "image/png"},
                                         {"pdf", "application/pdf"},
                                         {"json", "application/json"},
                                         {"html", "text/html; charset=utf-8"},
                                         {"dot", "text/plain; charset=utf-8"},
                                         {"txt", "text/plain; charset=utf-8"},
                                         {"lua", "text/plain; charset=utf-8"},
                                         {"csv", "text/plain; charset=utf-8"},
                                         {"jpg", "image/jpeg"}};
  for (size_t k = 0; dot && k < sizeof table / sizeof *table; k++)
    if (strcasecmp(dot + 1, table[k][0]) == 0) return table[k][1];
  return "application/octet-stream";
}

/* "id: N\nevent: KIND\ndata: {...}\n\n"; the JSON carries every field the page shows. */
static char *make_sse(const session_event *e, size_t *len) {
  static const char *const keys[EV_KINDS][4] = {{"text"}, {"text"},         {"text"},
                                                {"text"}, {"name", "mime"}, {"lesson", "title", "text", "code"}};
  size_t total = 256;
  char *q[4] = {NULL};
  for (int k = 0; k < 4; k++) {
    if (keys[e->kind][k] == NULL || e->s[k] == NULL) continue;
    const char *v = e->s[k];
    if (e->kind == EV_PICTURE && k == 0 && strrchr(v, '/')) v = strrchr(v, '/') + 1; /* the name, not the path */
    q[k] = json_quote(v, strlen(v));
    total += (q[k] ? strlen(q[k]) : 0) + 16;
  }
  char *out = malloc(total), *o = out;
  if (out) {
    o += sprintf(o, "id: %s-%ld\nevent: %s\ndata: {\"seq\":%ld,\"t\":%.1f", log_session(), e->seq, kind_names[e->kind],
                 e->seq, e->t_ms);
    for (int k = 0; k < 4; k++)
      if (q[k]) o += sprintf(o, ",\"%s\":%s", keys[e->kind][k], q[k]);
    if (e->kind == EV_STEP) o += sprintf(o, ",\"i\":%d,\"n\":%d", e->i, e->n);
    if (e->kind == EV_PICTURE) o += sprintf(o, ",\"url\":\"/pic/%ld\",\"bytes\":%zu", e->seq, e->ndata);
    o += sprintf(o, "}\n\n");
    *len = (size_t)(o - out);
  }
  for (int k = 0; k < 4; k++) free(q[k]);
  return out;
}

void log_append(event_kind kind, const char *const s[4], int i, int n, unsigned char *data, size_t ndata) {
  session_event e = {.kind = kind, .t_ms = now_ms(), .i = i, .n = n, .data = data, .ndata = ndata};
  for (int k = 0; k < 4; k++) e.s[k] = s[k] ? strdup(s[k]) : NULL;
  pthread_mutex_lock(&mu);
  if (count == cap) {
    long ncap = cap ? 2 * cap : 256;
    session_event *grown = realloc(events, (size_t)ncap * sizeof *grown);
    if (grown == NULL) { /* the session goes on; the page misses this event */
      pthread_mutex_unlock(&mu);
      for (int k = 0; k < 4; k++) free(e.s[k]);
      free(data);
      return;
    }
    events = grown;
    cap = ncap;
  }
  e.seq = count + 1;
  e.sse = make_sse(&e, &e.nsse);
  events[count++] = e;
  pthread_cond_broadcast(&grew);
  pthread_mutex_unlock(&mu);
}

void log_append_text(event_kind kind, const char *text, size_t len) {
  if (len == 0) return;
  bool cut = len > TEXT_MAX;
  char *copy = malloc((cut ? TEXT_MAX : len) + 64);
  if (copy == NULL) return;
  memcpy(copy, text, cut ? TEXT_MAX : len);
  if (cut)
    sprintf(copy + TEXT_MAX, "\n... (%zu more bytes)\n", len - TEXT_MAX);
  else
    copy[len] = '\0';
  const char *s[4] = {copy};
  log_append(kind, s, 0, 0, NULL, 0);
  free(copy);
}

void log_lock(void) { pthread_mutex_lock(&mu); }
void log_unlock(void) { pthread_mutex_unlock(&mu); }
long log_count(void) { return count; }
const session_event *log_event(long k) { return k >= 0 && k < count ? &events[k] : NULL; }
bool log_stopping(void) { return stopping; }

void log_wait(long have, int ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (count <= have && !stopping)
    if (pthread_cond_timedwait(&grew, &mu, &until) != 0) break;
}

void log_stop(void) {
  pthread_mutex_lock(&mu);
  stopping = true;
  pthread_cond_broadcast(&grew);
  pthread_mutex_unlock(&mu);
}
