/* serve.h: the session log, the output tee, the lecture page's HTTP server and transcripts. */
#ifndef CHALK_SERVE_H
#define CHALK_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "lua.h"

/*
 * Threads. The REPL thread runs Lua and appends to the session log; the tee thread (serve_tee.c)
 * appends what chalk prints; the HTTP server's threads (serve_http.c) only read the log, under
 * its mutex, and never touch the Lua state. Nothing reaches Lua from the page.
 */

/* ---- serve_log.c: the session, event by event, behind one mutex ---------------------------- */
typedef enum {
  EV_INPUT,   /* a chunk typed at the prompt, a script's source: s[0] the code */
  EV_COMMAND, /* a colon command typed: s[0] the line */
  EV_OUTPUT,  /* what was printed on stdout: s[0] the text (ANSI styles removed) */
  EV_ERROR,   /* what was printed on stderr: s[0] */
  EV_PICTURE, /* s[0] the path, s[1] the MIME type; data/ndata the file's bytes when written */
  EV_STEP,    /* a lesson step shown: s[0] lesson, s[1] title, s[2] narration, s[3] code; i of n */
  EV_KINDS
} event_kind;

typedef struct {
  long seq; /* 1, 2, ... */
  event_kind kind;
  double t_ms; /* wall clock (ms since the epoch) when it was logged */
  char *s[4];
  int i, n;
  unsigned char *data;
  size_t ndata;
  char *sse; /* the server-sent event text ("id: SESSION-SEQ\nevent: ..\ndata: {json}\n\n") */
  size_t nsse;
} session_event;

/* This process's session id: a page that reconnects to another chalk on the same port starts afresh. */
const char *log_session(void);
void log_append(event_kind kind, const char *const s[4], int i, int n, unsigned char *data, size_t ndata);
void log_append_text(event_kind kind, const char *text, size_t len);
/* Hold the log (lock) while reading events: log_count() of them, log_event(k) for k < count. */
void log_lock(void);
void log_unlock(void);
long log_count(void);
const session_event *log_event(long k);
/* Wait (holding the lock) until more than have events exist, stop is set, or ms pass. */
void log_wait(long have, int ms);
/* Wake every waiter and make log_stopping() true (the server is going away). */
void log_stop(void);
bool log_stopping(void);
/* Whether the session is recorded at all (the REPL, --serve, --transcript). */
void log_enable(void);
bool log_enabled(void);
/* The JSON string literal of s (len bytes), malloc'd; NULL when out of memory. */
char *json_quote(const char *s, size_t len);
const char *mime_of(const char *path);
double now_ms(void);

/* ---- serve_tee.c: stdout and stderr copied into the log while code runs ------------------- */
/* Start the tee thread (once); false when it cannot (the session then records inputs only). */
bool tee_start(void);
/* Route fd 1 and 2 through the tee (begin) and back (end, after everything printed is logged). */
void tee_begin(void);
void tee_end(void);
/* Everything printed so far has been logged (used before a picture event, to keep order). */
void tee_sync(void);
/* Whether what passes through is logged (it is always shown); takes effect exactly here. */
void tee_record(bool on);
void tee_stop(void);

/* ---- serve_http.c: the server ------------------------------------------------------------- */
/* Serve the page on host:port (port 0: any free one; the port taken goes to bound); false (said
   on stderr) when it cannot. Files are served only from below out_dir. */
bool http_start(const char *host, int port, const char *out_dir, int *bound);
bool http_running(void);
void http_stop(void);

/* ---- serve.c: what the rest of the REPL calls ----------------------------------------------- */
/* Start recording (and the tee when capture_output); idempotent. */
void serve_record(bool capture_output);
/* --serve [PORT] and --host HOST, or :serve [PORT]: start the server and print its URL. */
bool serve_start(const char *host, int port);
void serve_input(event_kind kind, const char *text);
void serve_picture(const char *path);
/* The lesson runner shows a step (repl/lesson.lua through host.announce). */
void serve_step(const char *lesson, const char *title, const char *text, const char *code, int i, int n);
/* Around each chunk or command the REPL runs: stdout/stderr go into the log too. */
void serve_run_begin(void);
void serve_run_end(void);
/* viz.show(path): set on the viz table (on top of the stack at index viz). */
void serve_install(lua_State *L, int viz);
/* :serve [PORT] */
int serve_command(lua_State *L, const char *arg);
/* Stop the server and the tee (at exit). */
void serve_shutdown(void);

/* ---- transcript.c: :save FILE.html | FILE.lua --------------------------------------------- */
/* Write the session to path (.html: self-contained page; .lua: the inputs). false, said, on error. */
bool transcript_save(const char *path);

/* The embedded page (repl/web/, by repl/repl.mk). */
extern const unsigned char web_page_html[], web_page_css[], web_page_js[];
extern const size_t web_page_html_len, web_page_css_len, web_page_js_len;

#endif
