/* meta.c: the REPL's colon commands (:help, :lessons, :lesson, :next, :back, :step, :show, :mem, :serve, :save, :quit). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "repl.h"
#include "serve.h"

typedef struct {
  const char *name;
  const char *args;
  const char *help;
  int (*run)(lua_State *L, const char *arg); /* NULL for a lesson command */
  const char *lesson; /* a lesson command: the runner's function (repl/lesson.lua) it calls */
  const char *usage;  /* a lesson command with args: printed when they are missing */
} meta_command;

/* ---- :help ---------------------------------------------------------------------------------- */

/* :help NAME: the help entry (lua/chalk/help.lua) for NAME; :help alone: the commands. */
static int cmd_help(lua_State *L, const char *arg) {
  if (*arg == '\0') {
    meta_print_help();
    return META_OK;
  }
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, "chalk.help");
  int status = repl_docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushstring(L, arg);
    status = repl_docall(L, 1, 0);
  }
  if (status != LUA_OK) repl_report(L, status);
  lua_settop(L, top);
  return META_OK;
}

/* ---- lessons -------------------------------------------------------------------------------- */

/* :lessons, :lesson NAME, :next, :back, :step N: the lesson runner's function of that name, given
   the argument when the command takes one. */
static int run_lesson_command(lua_State *L, const meta_command *c, const char *arg) {
  if (c->usage && *arg == '\0') {
    printf("usage: %s\n", c->usage);
    return META_OK;
  }
  lesson_call(L, c->lesson, c->usage ? arg : NULL, NULL);
  return META_OK;
}

/* ---- :show ---------------------------------------------------------------------------------- */

static int cmd_show(lua_State *L, const char *arg) {
  (void)L;
  (void)arg;
  if (!picture_show_last()) printf("no picture yet (viz functions make them)\n");
  return META_OK;
}

/* ---- :mem ---------------------------------------------------------------------------------- */
/*
 * chalk.memory_stats() returns (lua/lchalk_memory.c)
 *   {cpu = {activation = bytes, parameter = ..., ["optimizer state"] = ...}, cuda = {...},
 *    peak = {cpu = bytes, cuda = bytes}, live_tensors = n, live_nodes = n, allocated_total = bytes}
 * :mem prints the categories that hold bytes by the devices that hold any (cpu always), a
 * total, the peaks, then the counts on one line. Key strings stay valid while the stats table, which
 * anchors them, is on the stack.
 */

#define MEM_MAX_DEVICES 16
#define MEM_MAX_ROWS 32

/* Categories in the order PyTorch's memory profiler lists them; others follow, sorted. */
static const char *const known_categories[] = {"parameter",  "gradient",  "optimizer state", "optimizer",
                                               "activation", "temporary", "input",           "kv_cache",
                                               "comm_buffer", NULL};

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

static bool contains(const char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return true;
  return false;
}

/* stats[outer][inner] as a number (0 when absent). */
static double mem_value(lua_State *L, int stats, const char *outer, const char *inner) {
  double v = 0;
  if (lua_getfield(L, stats, outer) == LUA_TTABLE) {
    lua_getfield(L, -1, inner);
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

/* The bytes a device holds in all categories, and its peak. */
static double device_bytes(lua_State *L, int stats, const char *device) {
  double sum = mem_value(L, stats, "peak", device) + mem_value(L, stats, device, "peak");
  lua_getfield(L, stats, device);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -1) == LUA_TNUMBER) sum += lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return sum;
}

static void print_mem_row(const char *label, const double *values, size_t n) {
  printf("  %-16s", label);
  for (size_t i = 0; i < n; i++) {
    char buf[32];
    human_bytes(values[i], buf, sizeof buf);
    printf(" %12s", buf);
  }
  printf("\n");
}

static void print_mem_table(lua_State *L, int stats) {
  const char *devices[MEM_MAX_DEVICES], *rows[MEM_MAX_ROWS];
  size_t ndev = 0, nrows = 0;
  lua_pushnil(L);
  while (lua_next(L, stats)) { /* devices: table fields other than peak that hold bytes */
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) && ndev < MEM_MAX_DEVICES) {
      const char *name = lua_tostring(L, -2);
      if (strcmp(name, "peak") != 0 && (strcmp(name, "cpu") == 0 || device_bytes(L, stats, name) > 0))
        devices[ndev++] = name;
    }
    lua_pop(L, 1);
  }
  qsort(devices, ndev, sizeof *devices, compare_names);
  for (size_t d = 0; d < ndev; d++) { /* rows: categories some device holds bytes in */
    lua_getfield(L, stats, devices[d]);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_tonumber(L, -1) > 0 && nrows < MEM_MAX_ROWS) {
        const char *name = lua_tostring(L, -2);
        if (strcmp(name, "peak") != 0 && !contains(rows, nrows, name)) rows[nrows++] = name;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  const char *ordered[MEM_MAX_ROWS];
  size_t nordered = 0;
  for (int i = 0; known_categories[i]; i++)
    if (contains(rows, nrows, known_categories[i])) ordered[nordered++] = known_categories[i];
  size_t known = nordered;
  for (size_t r = 0; r < nrows; r++)
    if (!contains(ordered, known, rows[r])) ordered[nordered++] = rows[r];
  qsort(ordered + known, nordered - known, sizeof *ordered, compare_names);

  double values[MEM_MAX_DEVICES], totals[MEM_MAX_DEVICES] = {0}, peaks[MEM_MAX_DEVICES];
  printf("  %-16s", "live bytes");
  for (size_t d = 0; d < ndev; d++) printf(" %12s", devices[d]);
  printf("\n");
  for (size_t r = 0; r < nordered; r++) {
    for (size_t d = 0; d < ndev; d++) {
      values[d] = mem_value(L, stats, devices[d], ordered[r]);
      totals[d] += values[d];
    }
    print_mem_row(ordered[r], values, ndev);
  }
  print_mem_row("total", totals, ndev);
  bool has_peak = false;
  for (size_t d = 0; d < ndev; d++) {
    peaks[d] = mem_value(L, stats, "peak", devices[d]) + mem_value(L, stats, devices[d], "peak");
    has_peak = has_peak || peaks[d] > 0;
  }
  if (has_peak) print_mem_row("peak", peaks, ndev);

  double tensors = -1, nodes = -1, allocated = -1;
  if (lua_getfield(L, stats, "live_tensors") == LUA_TNUMBER) tensors = lua_tonumber(L, -1);
  if (lua_getfield(L, stats, "live_nodes") == LUA_TNUMBER) nodes = lua_tonumber(L, -1);
  if (lua_getfield(L, stats, "allocated_total") == LUA_TNUMBER) allocated = lua_tonumber(L, -1);
  lua_pop(L, 3);
  if (tensors >= 0) printf("  %.0f live tensors", tensors);
  if (nodes >= 0) printf(", %.0f graph nodes", nodes);
  if (allocated >= 0) {
    char buf[32];
    human_bytes(allocated, buf, sizeof buf);
    printf("; %s allocated since start", buf);
  }
  if (tensors >= 0 || allocated >= 0) printf("\n");
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
    print_mem_table(L, lua_gettop(L));
  }
  lua_settop(L, top);
  return META_OK;
}

/* ---- :save ---------------------------------------------------------------------------------- */

static int cmd_save(lua_State *L, const char *arg) {
  (void)L;
  if (*arg == '\0')
    printf("usage: :save FILE.html (the session as one page, pictures inside) | :save FILE.lua (its inputs)\n");
  else if (transcript_save(arg))
    printf("saved %s\n", arg);
  return META_OK;
}

/* ---- :quit ---------------------------------------------------------------------------------- */

static int cmd_quit(lua_State *L, const char *arg) {
  (void)L;
  (void)arg;
  return META_QUIT;
}

static const meta_command commands[] = {
    {"help", "[NAME]", "this list; with NAME (chalk.randn, viz.step, matmul, ops) what it does", cmd_help, NULL, NULL},
    {"lessons", "", "list the lessons", NULL, "list", NULL},
    {"lesson", "NAME", "start a lesson (from lessons/NAME.lua)", NULL, "start", ":lesson NAME   (:lessons lists them)"},
    {"next", "", "the lesson's next step (Enter on an empty line does the same)", NULL, "next", NULL},
    {"back", "", "the previous step again (steps before it replayed quietly from the start)", NULL, "back", NULL},
    {"step", "N", "go to step N, in the state after steps 1..N-1 (run quietly)", NULL, "step", ":step N"},
    {"show", "", "show the last picture again", cmd_show, NULL, NULL},
    {"mem", "", "live tensor bytes by device and category", cmd_mem, NULL, NULL},
    {"serve", "[PORT]", "a live page of this session for the room (default 8080)", serve_command, NULL, NULL},
    {"save", "FILE", "FILE.html: the session as one page (pictures inside); FILE.lua: its inputs", cmd_save, NULL,
     NULL},
    {"quit", "", "leave chalk (as does Ctrl-D)", cmd_quit, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
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
         "  chalk --serve [PORT] [FILE.lua | --lesson NAME]\n"
         "                             a live page of the session (:serve from here)\n"
         "  chalk --version | --help\n"
         "History is kept in ~/.chalk_history.\n");
}

const char *meta_command_name(int i) {
  int n = (int)(sizeof commands / sizeof commands[0]) - 1;
  return i >= 0 && i < n ? commands[i].name : NULL;
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
  int r = match->lesson ? run_lesson_command(L, match, arg) : match->run(L, arg);
  fflush(stdout);
  return r;
}
