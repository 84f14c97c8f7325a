/* serve.c: the session recorder's entry points: --serve, :serve, :save, inputs, pictures, steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "repl.h"
#include "serve.h"

#define PICTURE_MAX (32L << 20) /* a bigger picture is announced, not copied into the log */

static bool capturing; /* the tee is running */

void serve_record(bool capture_output) {
  log_enable();
  if (capture_output && !capturing) capturing = tee_start();
}

bool serve_start(const char *host, int port) {
  int bound = 0;
  if (host == NULL) host = "127.0.0.1";
  serve_record(true);
  if (http_running()) {
    printf("chalk: the page is already served (:serve prints its address when it starts)\n");
    return true;
  }
  if (!http_start(host, port, repl_config.out_dir, &bound)) return false;
  bool any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
  const char *shown = any ? "localhost" : host;
  bool v6 = strchr(shown, ':') != NULL;
  printf("chalk: the live page of this session is at http://%s%s%s:%d/%s\n", v6 ? "[" : "", shown, v6 ? "]" : "", bound,
         any ? "  (all interfaces: students use this machine's address)" : "");
  fflush(stdout);
  return true;
}

void serve_input(event_kind kind, const char *text) {
  if (!log_enabled() || text == NULL) return;
  log_append_text(kind, text, strlen(text));
}

/* The picture's bytes now (a later picture may reuse the name), or NULL when unreadable. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  unsigned char *data = NULL;
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (size >= 0 && size <= PICTURE_MAX && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)))
    *len = fread(data, 1, (size_t)size, f);
  fclose(f);
  return data;
}

void serve_picture(const char *path) {
  if (!log_enabled()) return;
  tee_sync(); /* "picture: PATH" and whatever came before it are logged first */
  size_t len = 0;
  unsigned char *data = slurp(path, &len);
  const char *s[4] = {path, mime_of(path)};
  log_append(EV_PICTURE, s, 0, 0, data, len);
}

void serve_step(const char *lesson, const char *title, const char *text, const char *code, int i, int n) {
  if (!log_enabled()) return;
  tee_sync();
  const char *s[4] = {lesson, title, text, code};
  log_append(EV_STEP, s, i, n, NULL, 0);
}

void serve_run_begin(void) {
  if (capturing) tee_begin();
}

void serve_run_end(void) {
  if (capturing) tee_end();
}

/* viz.show(path): announce an existing picture as viz functions announce the ones they write. */
static int l_show(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return luaL_error(L, "viz.show: cannot read %s", path);
  fclose(f);
  lua_getglobal(L, "chalk");
  if (lua_istable(L, -1) && lua_getfield(L, -1, "on_picture") == LUA_TFUNCTION) {
    lua_pushstring(L, path);
    lua_call(L, 1, 0);
  }
  lua_pushstring(L, path);
  return 1;
}

void serve_install(lua_State *L, int viz) {
  lua_pushcfunction(L, l_show);
  lua_setfield(L, viz, "show");
}

int serve_command(lua_State *L, const char *arg) {
  (void)L;
  char *end;
  long port = *arg ? strtol(arg, &end, 10) : 8080;
  if (*arg && (*end != '\0' || port < 0 || port > 65535)) {
    printf("usage: :serve [PORT]   (a number, 0 for any free port)\n");
    return META_OK;
  }
  serve_start(repl_config.serve_host, (int)port);
  return META_OK;
}

void serve_shutdown(void) {
  http_stop();
  if (capturing) tee_stop();
  capturing = false;
}
