/* serve_http.c: the lecture page's HTTP server (libmicrohttpd, a thread per connection). */
/*
 * Routes, all GET or HEAD (anything else: 405):
 *   /                 the page (repl/web/page.html), /page.css, /page.js
 *   /events           server-sent events: the session log from Last-Event-ID on, then live
 *   /pic/N            the bytes of picture event N, as they were when it was written
 *   /out/PATH         a file below the output folder (only there: realpath must stay inside)
 * Read-only by construction: no route runs code or writes anything, and the server threads
 * read the session log only (serve_log.c), never the Lua state.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "serve.h"

#define KEEPALIVE_MS 10000 /* an SSE comment this often keeps proxies and idle timers quiet */
#define FILE_MAX (64L << 20)

static struct MHD_Daemon *daemon_;
static char out_root[PATH_MAX]; /* realpath of the output folder */

/* ---- small responses -------------------------------------------------------------------------- */

static enum MHD_Result send_bytes(struct MHD_Connection *con, unsigned status, const void *p, size_t n,
                                  const char *mime, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)p, mode);
  if (r == NULL) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", mime);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
  enum MHD_Result ok = MHD_queue_response(con, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *con, unsigned status, const char *msg) {
  return send_bytes(con, status, msg, strlen(msg), "text/plain; charset=utf-8", MHD_RESPMEM_PERSISTENT);
}

/* ---- /events ---------------------------------------------------------------------------------- */

typedef struct {
  long next;  /* index of the next event to send */
  size_t off; /* bytes of it already sent */
  bool hello; /* the retry line has gone out */
} sse_reader;

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  sse_reader *s = cls;
  if (!s->hello) {
    s->hello = true;
    return snprintf(buf, max, "retry: 1000\n\n");
  }
  log_lock();
  if (s->next >= log_count()) log_wait(s->next, KEEPALIVE_MS);
  if (log_stopping()) {
    log_unlock();
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  size_t n = 0;
  while (s->next < log_count() && n < max) {
    const session_event *e = log_event(s->next);
    size_t take = e->nsse - s->off < max - n ? e->nsse - s->off : max - n;
    memcpy(buf + n, e->sse + s->off, take);
    n += take;
    s->off += take;
    if (s->off == e->nsse) {
      s->next++;
      s->off = 0;
    }
  }
  log_unlock();
  if (n == 0) return snprintf(buf, max, ": keepalive\n\n");
  return (ssize_t)n;
}

static enum MHD_Result send_events(struct MHD_Connection *con) {
  sse_reader *s = calloc(1, sizeof *s);
  if (s == NULL) return MHD_NO;
  const char *last = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Last-Event-ID");
  const char *session = log_session();
  size_t n = strlen(session);
  if (last && strncmp(last, session, n) == 0 && last[n] == '-') { /* a reconnection to this session */
    char *end;
    long id = strtol(last + n + 1, &end, 10);
    if (*end == '\0' && id > 0) s->next = id; /* ids are 1-based: event id N is index N-1 */
  }
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, free);
  if (r == NULL) {
    free(s);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ok = MHD_queue_response(con, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ok;
}

/* ---- /pic/N and /out/PATH ---------------------------------------------------------------------- */

static enum MHD_Result send_picture(struct MHD_Connection *con, const char *num) {
  char *end;
  long seq = strtol(num, &end, 10);
  if (*num == '\0' || *end != '\0') return send_text(con, MHD_HTTP_NOT_FOUND, "no such picture\n");
  unsigned char *copy = NULL;
  size_t n = 0;
  char mime[64] = "";
  log_lock();
  const session_event *e = log_event(seq - 1);
  if (e && e->kind == EV_PICTURE && e->data && (copy = malloc(e->ndata ? e->ndata : 1))) {
    memcpy(copy, e->data, e->ndata);
    n = e->ndata;
    snprintf(mime, sizeof mime, "%s", e->s[1]);
  }
  log_unlock();
  if (copy == NULL) return send_text(con, MHD_HTTP_NOT_FOUND, "no such picture\n");
  return send_bytes(con, MHD_HTTP_OK, copy, n, mime, MHD_RESPMEM_MUST_FREE);
}

/* The file at out_root/rel when it is a regular file that resolves to a place inside out_root. */
static enum MHD_Result send_file(struct MHD_Connection *con, const char *rel) {
  static const char refused[] = "only files below the output folder are served\n";
  if (*rel == '\0' || *rel == '/' || strstr(rel, "..") || strchr(rel, '\\'))
    return send_text(con, MHD_HTTP_FORBIDDEN, refused);
  char joined[PATH_MAX * 2], real[PATH_MAX];
  snprintf(joined, sizeof joined, "%s/%s", out_root, rel);
  size_t root = strlen(out_root);
  if (realpath(joined, real) == NULL) return send_text(con, MHD_HTTP_NOT_FOUND, "no such file\n");
  if (strncmp(real, out_root, root) != 0 || real[root] != '/') return send_text(con, MHD_HTTP_FORBIDDEN, refused);
  FILE *f = fopen(real, "rb");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
    if (f) fclose(f);
    return send_text(con, MHD_HTTP_NOT_FOUND, "no such file\n");
  }
  unsigned char *data = malloc((size_t)st.st_size + 1);
  size_t n = data ? fread(data, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (data == NULL) return send_text(con, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  return send_bytes(con, MHD_HTTP_OK, data, n, mime_of(real), MHD_RESPMEM_MUST_FREE);
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state) {
  (void)cls;
  (void)version;
  (void)upload;
  static int first_call;
  if (*state == NULL) { /* headers only so far; a body (there should be none) is read and dropped */
    *state = &first_call;
    return MHD_YES;
  }
  if (*upload_size != 0) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return send_text(con, MHD_HTTP_METHOD_NOT_ALLOWED, "the page is read-only\n");
  if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
    return send_bytes(con, MHD_HTTP_OK, web_page_html, web_page_html_len, "text/html; charset=utf-8",
                      MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/page.css") == 0)
    return send_bytes(con, MHD_HTTP_OK, web_page_css, web_page_css_len, "text/css; charset=utf-8",
                      MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/page.js") == 0)
    return send_bytes(con, MHD_HTTP_OK, web_page_js, web_page_js_len, "text/javascript; charset=utf-8",
                      MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/events") == 0) return send_events(con);
  if (strncmp(url, "/pic/", 5) == 0) return send_picture(con, url + 5);
  if (strncmp(url, "/out/", 5) == 0) return send_file(con, url + 5);
  if (strstr(url, "..")) return send_text(con, MHD_HTTP_FORBIDDEN, "only files below the output folder are served\n");
  return send_text(con, MHD_HTTP_NOT_FOUND, "not found (the page is at /)\n");
}

/* %XX decoding in place, as MHD's own, except that %00 stays as it is: a NUL would cut the path
   short ("ok.txt%00../x" must not become "ok.txt"). Returns the new length. */
static size_t unescape(void *cls, struct MHD_Connection *con, char *s) {
  (void)cls;
  (void)con;
  char *w = s;
  for (const char *p = s; *p; p++) {
    unsigned v;
    if (p[0] == '%' && sscanf(p + 1, "%2x", &v) == 1 && isxdigit((unsigned char)p[1]) &&
        isxdigit((unsigned char)p[2]) && v != 0) {
      *w++ = (char)v;
      p += 2;
    } else {
      *w++ = *p;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

static void no_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  (void)fmt;
  (void)ap;
}

bool http_start(const char *host, int port, const char *out_dir, int *bound) {
  if (daemon_) return true;
  if (realpath(out_dir, out_root) == NULL) {
    fprintf(stderr, "chalk: --serve: cannot find the output folder %s: %s\n", out_dir, strerror(errno));
    return false;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  int rc = getaddrinfo(host, portstr, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "chalk: --serve: cannot use the address %s: %s\n", host, gai_strerror(rc));
    return false;
  }
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                   (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
  daemon_ = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                             MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 << 10), MHD_OPTION_UNESCAPE_CALLBACK, unescape,
                             NULL, MHD_OPTION_EXTERNAL_LOGGER, no_log, NULL, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (daemon_ == NULL) {
    fprintf(stderr, "chalk: --serve: cannot listen on %s port %d (%s)\n", host, port,
            errno ? strerror(errno) : "in use, or not an address of this machine");
    return false;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  *bound = info ? info->port : port;
  return true;
}

bool http_running(void) { return daemon_ != NULL; }

void http_stop(void) {
  if (daemon_ == NULL) return;
  log_stop(); /* the event streams end, so their threads can be joined */
  MHD_stop_daemon(daemon_);
  daemon_ = NULL;
}
