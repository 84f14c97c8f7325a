/* meta.c: the REPL's colon commands (:help, :lessons, :lesson, :next, :back, :step, :show, :mem, :quit). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "repl.h"

typedef struct {
  const char *name;
  const char *args;
  const char *help;
  int (*run)(lua_State *L, const char *arg);
} meta_command;

/* ---- :help ---------------------------------------------------------------------------------- */

static int cmd_help(lua_State *L, const char *arg) {
  (void)L;
  (void)arg;
  meta_print_help();
  return META_OK;
}

/* ---- lessons -------------------------------------------------------------------------------- */

static int cmd_lessons(lua_State *L, const char *arg) {
  (void)arg;
  lesson_call(L, "list", NULL, NULL);
  return META_OK;
}

static int cmd_lesson(lua_State *L, const char *arg) {
  if (*arg == '\0') {
    printf("usage: :lesson NAME   (:lessons lists them)\n");
    return META_OK;
  }
  lesson_call(L, "start", arg, NULL);
  return META_OK;
}

static int cmd_next(lua_State *L, const char *arg) {
  (void)arg;
  lesson_call(L, "next", NULL, NULL);
  return META_OK;
}

static int cmd_back(lua_State *L, const char *arg) {
  (void)arg;
  lesson_call(L, "back", NULL, NULL);
  return META_OK;
}

static int cmd_step(lua_State *L, const char *arg) {
  if (*arg == '\0') {
    printf("usage: :step N\n");
    return META_OK;
  }
  lesson_call(L, "step", arg, NULL);
  return META_OK;
}

/* ---- :show ---------------------------------------------------------------------------------- */

static int cmd_show(lua_State *L, const char *arg) {
  (void)L;
  (void)arg;
  if (!picture_show_last()) printf("no picture yet (viz functions make them)\n");
  return META_OK;
}

/* ---- :mem ----------------------------------------------------------------------------------- */

/* Categories in the order PyTorch's memory profiler lists them; others follow, sorted. */
static const char *const known_categories[] = {"parameter", "gradient", "optimizer", "activation",
                                               "temporary", "input",    NULL};

static void human_bytes(double bytes, char *buf, size_t size) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(buf, size, "%.0f B", bytes);
  else
    snprintf(buf, size, "%.1f %s", bytes, units[u]);
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted string keys of the table at index t for which keep() holds; free the array. */
static const char **sorted_keys(lua_State *L, int t, bool tables, size_t *count) {
  size_t n = 0, cap = 8;
  const char **keys = malloc(cap * sizeof *keys);
  if (keys == NULL) return NULL;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    bool want = lua_type(L, -2) == LUA_TSTRING && (tables ? lua_istable(L, -1) : lua_type(L, -1) == LUA_TNUMBER);
    if (want) {
      if (n == cap) {
        const char **k = realloc(keys, 2 * cap * sizeof *keys);
        if (k == NULL) break;
        keys = k;
        cap *= 2;
      }
      keys[n++] = lua_tostring(L, -2); /* anchored by the table, which stays on the stack */
    }
    lua_pop(L, 1);
  }
  qsort(keys, n, sizeof *keys, compare_names);
  *count = n;
  return keys;
}

static bool is_known_category(const char *name) {
  for (int i = 0; known_categories[i]; i++)
    if (strcmp(known_categories[i], name) == 0) return true;
  return strcmp(name, "peak") == 0;
}

static double field_number(lua_State *L, int t, const char *device, const char *key) {
  lua_getfield(L, t, device);
  double v = 0;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, key);
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

static void print_mem_row(lua_State *L, int t, const char *label, const char *key, const char **devices, size_t ndev,
                          double *totals) {
  printf("  %-12s", label);
  for (size_t d = 0; d < ndev; d++) {
    char buf[32];
    double v = key ? field_number(L, t, devices[d], key) : totals[d];
    if (key && totals && strcmp(key, "peak") != 0) totals[d] += v;
    human_bytes(v, buf, sizeof buf);
    printf(" %12s", buf);
  }
  printf("\n");
}

/* Print {cpu = {activation = bytes, ...}, cuda = {...}} as categories by devices. */
static void print_mem_table(lua_State *L, int t) {
  size_t ndev = 0;
  const char **devices = sorted_keys(L, t, true, &ndev);
  if (devices == NULL || ndev == 0) {
    printf("no live tensors\n");
    free(devices);
    return;
  }
  double *totals = calloc(ndev, sizeof *totals);
  if (totals == NULL) {
    free(devices);
    return;
  }
  printf("  %-12s", "bytes");
  for (size_t d = 0; d < ndev; d++) printf(" %12s", devices[d]);
  printf("\n");
  for (int i = 0; known_categories[i]; i++) { /* known categories, where any device has them */
    bool present = false;
    for (size_t d = 0; d < ndev; d++) {
      lua_getfield(L, t, devices[d]);
      lua_getfield(L, -1, known_categories[i]);
      present = present || !lua_isnil(L, -1);
      lua_pop(L, 2);
    }
    if (present) print_mem_row(L, t, known_categories[i], known_categories[i], devices, ndev, totals);
  }
  lua_newtable(L); /* other categories, as a set */
  int others = lua_gettop(L);
  for (size_t d = 0; d < ndev; d++) {
    lua_getfield(L, t, devices[d]);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER && !is_known_category(lua_tostring(L, -2))) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_settable(L, others);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, others)) { /* make the set's values numbers so sorted_keys keeps them */
    lua_pushvalue(L, -2);
    lua_pushinteger(L, 0);
    lua_settable(L, others);
    lua_pop(L, 1);
  }
  size_t nother = 0;
  const char **other = sorted_keys(L, others, false, &nother);
  for (size_t i = 0; other && i < nother; i++) print_mem_row(L, t, other[i], other[i], devices, ndev, totals);
  free(other);
  lua_pop(L, 1);
  print_mem_row(L, t, "total", NULL, devices, ndev, totals);
  bool has_peak = false;
  for (size_t d = 0; d < ndev; d++) has_peak = has_peak || field_number(L, t, devices[d], "peak") > 0;
  if (has_peak) print_mem_row(L, t, "peak", "peak", devices, ndev, NULL);
  free(totals);
  free(devices);
}

static int cmd_mem(lua_State *L, const char *arg) {
  (void)arg;
  int top = lua_gettop(L);
  if (lua_getglobal(L, "chalk") != LUA_TTABLE || lua_getfield(L, -1, "memory_stats") != LUA_TFUNCTION) {
    printf("chalk.memory_stats is not available in this build\n");
    lua_settop(L, top);
    return META_OK;
  }
  int status = repl_docall(L, 0, 1);
  if (status != LUA_OK) {
    repl_report(L, status);
  } else if (!lua_istable(L, -1)) {
    printf("chalk.memory_stats() returned a %s, not a table\n", luaL_typename(L, -1));
  } else {
    printf("live tensor memory:\n");
    print_mem_table(L, lua_gettop(L));
  }
  lua_settop(L, top);
  return META_OK;
}

/* ---- :quit ---------------------------------------------------------------------------------- */

static int cmd_quit(lua_State *L, const char *arg) {
  (void)L;
  (void)arg;
  return META_QUIT;
}

static const meta_command commands[] = {
    {"help", "", "this list", cmd_help},
    {"lessons", "", "list the lessons", cmd_lessons},
    {"lesson", "NAME", "start a lesson (from lessons/NAME.lua)", cmd_lesson},
    {"next", "", "the lesson's next step (Enter on an empty line does the same)", cmd_next},
    {"back", "", "show and run the previous step again (state is cumulative)", cmd_back},
    {"step", "N", "go to step N (skipped steps run quietly first)", cmd_step},
    {"show", "", "show the last picture again", cmd_show},
    {"mem", "", "live tensor bytes by device and category", cmd_mem},
    {"quit", "", "leave chalk (as does Ctrl-D)", cmd_quit},
    {NULL, NULL, NULL, NULL},
};

void meta_print_help(void) {
  printf("Type Lua; a bare expression prints its value. Tab completes globals, fields (chalk.ra)\n"
         "and methods (x:su). Ctrl-C stops running code or clears the line; Ctrl-D exits.\n\n");
  printf("Commands:\n");
  for (const meta_command *c = commands; c->name; c++) {
    char head[32];
    snprintf(head, sizeof head, ":%s%s%s", c->name, c->args[0] ? " " : "", c->args);
    printf("  %-14s %s\n", head, c->help);
  }
  printf("\nCommand line:\n"
         "  chalk                      the REPL\n"
         "  chalk FILE.lua [ARGS...]   run a script (arg[0] = FILE.lua, arg[1..] = ARGS)\n"
         "  chalk -e 'CODE'            run CODE, then exit (may be repeated)\n"
         "  chalk --lesson NAME [--step N] [--auto]\n"
         "                             step through a lesson (--auto: no pauses)\n"
         "  chalk --lessons            list lessons\n"
         "  chalk --out DIR            where pictures go (default ./chalk-out, or $CHALK_OUT)\n"
         "  chalk --open               hand each picture to xdg-open\n"
         "  chalk --version | --help\n"
         "History is kept in ~/.chalk_history.\n");
}

bool meta_is_command(const char *line) {
  line += strspn(line, " \t");
  return line[0] == ':' && isalpha((unsigned char)line[1]);
}

int meta_run(lua_State *L, const char *line) {
  line += strspn(line, " \t");
  const char *name = line + 1;
  size_t len = strcspn(name, " \t");
  char arg[256];
  const char *a = name + len;
  a += strspn(a, " \t");
  snprintf(arg, sizeof arg, "%s", a);
  for (size_t n = strlen(arg); n > 0 && isspace((unsigned char)arg[n - 1]); n--) arg[n - 1] = '\0';
  const meta_command *match = NULL;
  int prefixed = 0; /* a unique abbreviation (:q, :n, :b) also works */
  for (const meta_command *c = commands; c->name; c++) {
    if (strncmp(c->name, name, len) != 0) continue;
    if (strlen(c->name) == len) {
      match = c;
      prefixed = 1;
      break;
    }
    match = c;
    prefixed++;
  }
  if (match == NULL || prefixed != 1) {
    printf("%s command :%.*s (:help lists them)\n", match ? "ambiguous" : "unknown", (int)len, name);
    return META_OK;
  }
  int r = match->run(L, arg);
  fflush(stdout);
  return r;
}
