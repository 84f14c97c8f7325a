/* serve_tee.c: while code runs, fd 1 and 2 go through a thread that shows and logs what is printed. */
/*
 * Each stream has a channel: a pseudo-terminal when the real fd is a terminal (so isatty, the
 * window size, colours and inline images behave as before), else a pipe. tee_begin points fd 1
 * and 2 at the channels' writing ends; the thread copies every byte to the real fd unchanged and
 * logs the text (ANSI escapes removed, carriage returns honoured) as output and error events.
 * tee_sync writes a marker into both channels and waits until the thread has passed it: then
 * everything printed before is on the terminal and in the log, in order. C code (printf in an
 * op), Lua's print and io.write, and child processes all reach the log alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define MARKER "\033]7331;chalk-sync\007"
#define MARKER_LEN (sizeof MARKER - 1)
#define READ_CHUNK 65536

typedef enum { ESC_NONE, ESC_START, ESC_CSI, ESC_STRING, ESC_STRING_END } esc_state;

typedef struct {
  int fd;     /* 1 or 2 */
  int real;   /* a dup of the real fd, where bytes are copied to */
  int master; /* the end the thread reads */
  int slave;  /* the end fd 1 or 2 points at while code runs */
  bool pty;
  event_kind kind; /* EV_OUTPUT or EV_ERROR */
  char *pending;   /* bytes read and not yet handled (a marker's beginning) */
  size_t npending;
  char *line;                        /* the text logged so far and not yet sent as an event */
  size_t nline, capline, line_start; /* line_start: where the current line begins (for \r) */
  bool cr;                           /* a \r was seen: the line restarts unless \n follows */
  esc_state esc;
  long synced; /* markers passed */
} channel;

static channel chans[2] = {{.fd = 1, .kind = EV_OUTPUT}, {.fd = 2, .kind = EV_ERROR}};
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t passed = PTHREAD_COND_INITIALIZER;
static int wake[2] = {-1, -1};
static bool started;
static int depth;   /* nesting of tee_begin (REPL thread only) */
static bool muted;  /* tee_record(false): shown, not logged (read by the thread under mu) */
static long wanted; /* markers written */

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void line_add(channel *c, char ch) {
  if (c->nline + 1 >= c->capline) {
    size_t ncap = c->capline ? 2 * c->capline : 4096;
    char *grown = realloc(c->line, ncap);
    if (grown == NULL) return;
    c->line = grown;
    c->capline = ncap;
  }
  c->line[c->nline++] = ch;
}

/* Send the complete lines (all of it when flush) as one event. */
static void line_emit(channel *c, bool flush) {
  size_t upto = flush ? c->nline : c->line_start;
  if (upto == 0) return;
  log_append_text(c->kind, c->line, upto);
  memmove(c->line, c->line + upto, c->nline - upto);
  c->nline -= upto;
  c->line_start -= flush ? c->line_start : upto;
  if (flush) c->cr = false;
}

/* Log text: escapes dropped, \r\n a newline, a lone \r restarting the line (progress bars). */
static void log_bytes(channel *c, const char *p, size_t n) {
  for (size_t k = 0; k < n; k++) {
    unsigned char ch = (unsigned char)p[k];
    switch (c->esc) {
    case ESC_START:
      c->esc = ch == '[' ? ESC_CSI : (ch == ']' || ch == '_' || ch == 'P' || ch == '^') ? ESC_STRING : ESC_NONE;
      continue;
    case ESC_CSI:
      if (ch >= 0x40 && ch <= 0x7e) c->esc = ESC_NONE;
      continue;
    case ESC_STRING: /* OSC, APC (kitty images), DCS: up to BEL or ESC \ */
      if (ch == 7) c->esc = ESC_NONE;
      if (ch == 033) c->esc = ESC_STRING_END;
      continue;
    case ESC_STRING_END:
      c->esc = ch == '\\' ? ESC_NONE : ESC_STRING;
      continue;
    case ESC_NONE:
      break;
    }
    if (ch == 033) {
      c->esc = ESC_START;
      continue;
    }
    if (c->cr && ch != '\n') c->nline = c->line_start; /* the line is written over */
    c->cr = false;
    if (ch == '\r') {
      c->cr = true;
    } else {
      line_add(c, (char)ch);
      if (ch == '\n') c->line_start = c->nline;
    }
  }
}

/* Handle what is pending: copy and log up to each marker; keep a marker's beginning for later. */
static void handle(channel *c) {
  for (;;) {
    char *m = memmem(c->pending, c->npending, MARKER, MARKER_LEN);
    size_t upto = m ? (size_t)(m - c->pending) : c->npending;
    if (m == NULL) /* hold back a tail that may be the start of a marker */
      for (size_t keep = MARKER_LEN - 1; keep > 0; keep--)
        if (c->npending >= keep && memcmp(c->pending + c->npending - keep, MARKER, keep) == 0) {
          upto = c->npending - keep;
          break;
        }
    write_all(c->real, c->pending, upto);
    pthread_mutex_lock(&mu);
    bool mute = muted;
    pthread_mutex_unlock(&mu);
    if (!mute) log_bytes(c, c->pending, upto);
    size_t used = upto + (m ? MARKER_LEN : 0);
    memmove(c->pending, c->pending + used, c->npending - used);
    c->npending -= used;
    line_emit(c, m != NULL);
    if (m == NULL) return;
    pthread_mutex_lock(&mu);
    c->synced++;
    pthread_cond_broadcast(&passed);
    pthread_mutex_unlock(&mu);
  }
}

static void *tee_thread(void *arg) {
  (void)arg;
  char *buf = malloc(READ_CHUNK);
  if (buf == NULL) return NULL;
  for (;;) {
    struct pollfd p[3] = {{chans[0].master, POLLIN, 0}, {chans[1].master, POLLIN, 0}, {wake[0], POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[2].revents) break;
    for (int k = 0; k < 2; k++) {
      if (!(p[k].revents & (POLLIN | POLLHUP))) continue;
      channel *c = &chans[k];
      ssize_t n = read(c->master, buf, READ_CHUNK);
      if (n <= 0) continue;
      char *grown = realloc(c->pending, c->npending + (size_t)n);
      if (grown == NULL) continue;
      c->pending = grown;
      memcpy(c->pending + c->npending, buf, (size_t)n);
      c->npending += (size_t)n;
      handle(c);
    }
  }
  free(buf);
  return NULL;
}

static bool open_channel(channel *c) {
  c->real = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
  if (c->real < 0) return false;
  int ends[2];
  c->pty = isatty(c->fd);
  if (c->pty) {
    struct termios raw;
    struct winsize ws;
    bool have_ws = ioctl(c->fd, TIOCGWINSZ, &ws) == 0;
    if (tcgetattr(c->fd, &raw) != 0) return false;
    cfmakeraw(&raw);
    if (openpty(&ends[0], &ends[1], NULL, &raw, have_ws ? &ws : NULL) != 0) return false;
  } else if (pipe(ends) != 0) {
    return false;
  }
  c->master = ends[0];
  c->slave = ends[1];
  fcntl(c->master, F_SETFD, FD_CLOEXEC);
  fcntl(c->slave, F_SETFD, FD_CLOEXEC);
  return true;
}

/* exit() inside running code (os.exit): what was printed reaches the terminal before the process ends. */
static void tee_at_exit(void) {
  if (started && depth > 0) {
    depth = 1;
    tee_end();
  }
}

bool tee_start(void) {
  if (started) return true;
  if (!open_channel(&chans[0]) || !open_channel(&chans[1]) || pipe2(wake, O_CLOEXEC) != 0) return false;
  if (pthread_create(&thread, NULL, tee_thread, NULL) != 0) return false;
  started = true;
  static bool registered;
  if (!registered) registered = atexit(tee_at_exit) == 0;
  return true;
}

void tee_begin(void) {
  if (!started) return;
  if (depth++ > 0) return;
  fflush(stdout);
  fflush(stderr);
  for (int k = 0; k < 2; k++) {
    struct winsize ws; /* the terminal may have been resized at the prompt */
    if (chans[k].pty && ioctl(chans[k].real, TIOCGWINSZ, &ws) == 0) ioctl(chans[k].slave, TIOCSWINSZ, &ws);
    dup2(chans[k].slave, chans[k].fd);
  }
}

void tee_sync(void) {
  if (!started || depth == 0) return;
  fflush(stdout);
  fflush(stderr);
  pthread_mutex_lock(&mu);
  long target = ++wanted;
  pthread_mutex_unlock(&mu);
  for (int k = 0; k < 2; k++) write_all(chans[k].slave, MARKER, MARKER_LEN);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 2; /* a stuck terminal (Ctrl-S) must not hang chalk for ever */
  pthread_mutex_lock(&mu);
  while (chans[0].synced < target || chans[1].synced < target)
    if (pthread_cond_timedwait(&passed, &mu, &until) != 0) break;
  pthread_mutex_unlock(&mu);
}

void tee_record(bool on) {
  tee_sync(); /* what came before is handled under the old setting */
  pthread_mutex_lock(&mu);
  muted = !on;
  pthread_mutex_unlock(&mu);
}

void tee_end(void) {
  if (!started || depth == 0) return;
  if (--depth > 0) return;
  depth = 1; /* sync while still routed */
  tee_sync();
  depth = 0;
  for (int k = 0; k < 2; k++) dup2(chans[k].real, chans[k].fd);
}

void tee_stop(void) {
  if (!started) return;
  if (depth > 0) {
    depth = 1;
    tee_end();
  }
  write_all(wake[1], "x", 1);
  pthread_join(thread, NULL);
  for (int k = 0; k < 2; k++) {
    close(chans[k].master);
    close(chans[k].slave);
    close(chans[k].real);
    free(chans[k].pending);
    free(chans[k].line);
  }
  close(wake[0]);
  close(wake[1]);
  started = false;
}
