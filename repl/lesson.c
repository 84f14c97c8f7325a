/* lesson.c: loads the lesson runner (repl/lesson.lua, compiled in) and lends it what it needs from C. */
/*
 * The runner lives in the registry under RUNNER_KEY. It receives a table "host" with:
 *   host.run(code, chunkname) -> ok    run code as the prompt does (values printed, errors
 *                                      reported with a traceback, Ctrl-C armed)
 *   host.capture(fn) -> ok, output     call fn() with stdout (Lua and C alike) sent to a
 *                                      temporary file; ok is fn's first result (false when fn
 *                                      raised: the error is reported), output what it printed
 *   host.listdir(dir) -> {names}|nil   the entries of a directory
 *   host.announce(lesson, i, n, title, text, code)  a step (i = 0: the lesson, code its setup)
 *                                      is shown: into the session log (the live page, :save)
 *   host.record_output(on)             whether what is printed goes into the session log too
 *                                      (off while a step's header, already announced, prints)
 *   host.exe_dir                       the directory of the chalk executable, or nil
 *   host.color                         whether stdout is a terminal that takes ANSI styles
 *   host.interactive                   whether stdin is a terminal
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lauxlib.h"
#include "repl.h"
#include "serve.h"

#define RUNNER_KEY "chalk.repl.lesson"

/* generated from repl/lesson.lua by repl/repl.mk */
extern const unsigned char lesson_lua[];
extern const size_t lesson_lua_len;

static int host_run(lua_State *L) {
  size_t len;
  const char *code = luaL_checklstring(L, 1, &len);
  const char *chunkname = luaL_optstring(L, 2, "=lesson");
  lua_pushboolean(L, repl_run_code(L, code, len, chunkname) == LUA_OK);
  return 1;
}

/* Redirects fd 1 (so printf in C ops and Lua's print alike) to a temporary file around fn. */
static int host_capture(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  fflush(stdout);
  FILE *tmp = tmpfile();
  int saved = tmp ? dup(STDOUT_FILENO) : -1;
  if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
    if (saved >= 0) close(saved);
    if (tmp) fclose(tmp);
    return luaL_error(L, "lesson runner: cannot capture stdout");
  }
  int status = repl_docall(L, 0, 1);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  bool ok = status == LUA_OK && lua_toboolean(L, -1);
  if (status != LUA_OK) repl_report(L, status);
  lua_settop(L, 0);
  lua_pushboolean(L, ok);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  rewind(tmp);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, tmp)) > 0) luaL_addlstring(&b, chunk, n);
  fclose(tmp);
  luaL_pushresult(&b);
  return 2;
}

static int host_announce(lua_State *L) {
  serve_step(luaL_checkstring(L, 1), luaL_optstring(L, 4, ""), luaL_optstring(L, 5, ""), luaL_optstring(L, 6, ""),
             (int)luaL_checkinteger(L, 2), (int)luaL_checkinteger(L, 3));
  return 0;
}

static int host_record_output(lua_State *L) {
  tee_record(lua_toboolean(L, 1));
  return 0;
}

static int host_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *dir = opendir(path);
  if (dir == NULL) return 0;
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(dir);
  return 1;
}

static void push_exe_dir(lua_State *L, const char *argv0) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
  } else if (argv0 && strchr(argv0, '/') && realpath(argv0, path)) {
    /* found through argv[0] */
  } else {
    lua_pushnil(L);
    return;
  }
  lua_pushstring(L, dirname(path));
}

static bool color_ok(void) {
  const char *term = getenv("TERM");
  return isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL && term && strcmp(term, "dumb") != 0;
}

void lesson_init(lua_State *L, const char *argv0) {
  int top = lua_gettop(L);
  int status = luaL_loadbuffer(L, (const char *)lesson_lua, lesson_lua_len, "=lesson.lua");
  if (status == LUA_OK) {
    static const luaL_Reg host[] = {
        {"run", host_run}, {"capture", host_capture}, {"listdir", host_listdir}, {"announce", host_announce},
        {"record_output", host_record_output}, {NULL, NULL}};
    luaL_newlib(L, host);
    push_exe_dir(L, argv0);
    lua_setfield(L, -2, "exe_dir");
    lua_pushboolean(L, color_ok());
    lua_setfield(L, -2, "color");
    lua_pushboolean(L, isatty(STDIN_FILENO));
    lua_setfield(L, -2, "interactive");
    status = repl_docall(L, 1, 1);
  }
  if (status == LUA_OK)
    lua_setfield(L, LUA_REGISTRYINDEX, RUNNER_KEY);
  else
    repl_report(L, status); /* a broken build; the REPL still works without lessons */
  lua_settop(L, top);
}

bool lesson_call(lua_State *L, const char *fn, const char *arg1, const char *arg2) {
  int top = lua_gettop(L);
  bool ok = false;
  if (lua_getfield(L, LUA_REGISTRYINDEX, RUNNER_KEY) == LUA_TTABLE && lua_getfield(L, -1, fn) == LUA_TFUNCTION) {
    int narg = 0;
    if (arg1) {
      lua_pushstring(L, arg1);
      narg++;
    }
    if (arg2) {
      lua_pushstring(L, arg2);
      narg++;
    }
    int status = repl_docall(L, narg, 1);
    if (status == LUA_OK)
      ok = lua_toboolean(L, -1);
    else
      repl_report(L, status);
  } else {
    fprintf(stderr, "chalk: the lesson runner is not available\n");
  }
  fflush(stdout);
  lua_settop(L, top);
  return ok;
}

const char *lesson_prompt(lua_State *L, char *buf, size_t size) {
  int top = lua_gettop(L);
  const char *result = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, RUNNER_KEY) == LUA_TTABLE && lua_getfield(L, -1, "prompt") == LUA_TFUNCTION &&
      lua_pcall(L, 0, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
    snprintf(buf, size, "%s", lua_tostring(L, -1));
    result = buf;
  }
  lua_settop(L, top);
  return result;
}

void lesson_push_names(lua_State *L) {
  int top = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, RUNNER_KEY) == LUA_TTABLE && lua_getfield(L, -1, "names") == LUA_TFUNCTION &&
      lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_replace(L, top + 1);
  } else {
    lua_newtable(L);
    lua_replace(L, top + 1);
  }
  lua_settop(L, top + 1);
}
