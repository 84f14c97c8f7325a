/* lviz.c: chalk.viz, the pictures of the Lua surface: viz.graph, viz.step, viz.memory,
 * viz.trace, viz.render (DOT text), viz.chrome, viz.mark; viz.colors and viz.canvas are in
 * lviz_canvas.c.
 * Every picture function takes {file=..., format="png"|"svg"|"pdf"|"dot"}, writes the picture
 * (into chalk.out_dir unless file has a directory), calls chalk.on_picture(path) when it is set,
 * and returns the path.
 * Invariants: options are read (and may raise) before any C allocation; C failures are turned
 * into Lua errors only after the model and buffers are freed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lchalk.h"
#include "lviz.h"
#include "viz.h"

#define STEP_STATE "chalk.viz.step_state"
#define COUNTERS "chalk.viz.counters"

/* ---- options and output paths ---------------------------------------------------------------- */

static const char *opt_string(lua_State *L, int opts, const char *k, const char *def) {
  if (lua_isnoneornil(L, opts)) return def;
  lua_getfield(L, opts, k);
  const char *s = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
  if (!lua_isnil(L, -1) && !s) luaL_error(L, "option %s must be a string", k);
  lua_pop(L, 1); /* the string stays alive: it is a field of opts, which the caller keeps */
  return s;
}

static lua_Integer opt_int(lua_State *L, int opts, const char *k, lua_Integer def) {
  if (lua_isnoneornil(L, opts)) return def;
  lua_getfield(L, opts, k);
  int ok = 0;
  lua_Integer v = lua_isnil(L, -1) ? (ok = 1, def) : lua_tointegerx(L, -1, &ok);
  if (!ok) luaL_error(L, "option %s must be an integer", k);
  lua_pop(L, 1);
  return v;
}

/* -1 absent, 0 false, 1 true */
static int opt_bool(lua_State *L, int opts, const char *k) {
  if (lua_isnoneornil(L, opts)) return -1;
  lua_getfield(L, opts, k);
  int v = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void check_opts(lua_State *L, int idx) {
  if (!lua_isnoneornil(L, idx)) luaL_checktype(L, idx, LUA_TTABLE);
}

static int mkdirs(const char *dir) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *s = buf + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    *s = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST) return -1;
  return 0;
}

/* chalk.out_dir (the REPL sets it from --out), else $CHALK_OUT, else chalk-out. The string is
   anchored in the registry, so it outlives the stack slot it came from. */
static const char *out_dir(lua_State *L) {
  const char *dir = NULL;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "chalk") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "out_dir") == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_setfield(L, LUA_REGISTRYINDEX, "chalk.viz.out_dir");
      dir = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  if (dir) return dir;
  const char *env = getenv("CHALK_OUT");
  return env && *env ? env : "chalk-out";
}

static const char *extension(const char *path) {
  const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
  return dot && (!slash || dot > slash) ? dot + 1 : NULL;
}

void lviz_output(lua_State *L, int opts, const char *kind, char *path, size_t npath, char *format, size_t nformat) {
  const char *file = opt_string(L, opts, "file", NULL);
  const char *fmt = opt_string(L, opts, "format", NULL);
  const char *ext = file ? extension(file) : NULL;
  if (!fmt) fmt = ext && viz_format_known(ext) ? ext : "png";
  if (!viz_format_known(fmt)) luaL_error(L, "viz: unknown format '%s' (expected png, svg, pdf or dot)", fmt);
  snprintf(format, nformat, "%s", fmt);
  const char *dir = out_dir(L);
  if (file && strchr(file, '/')) {
    snprintf(path, npath, "%s%s%s", file, ext ? "" : ".", ext ? "" : fmt);
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (slash && slash != d) {
      *slash = '\0';
      if (mkdirs(d)) luaL_error(L, "viz: cannot create directory %s: %s", d, strerror(errno));
    }
    return;
  }
  if (mkdirs(dir)) luaL_error(L, "viz: cannot create the output directory %s: %s", dir, strerror(errno));
  if (file) {
    snprintf(path, npath, "%s/%s%s%s", dir, file, ext ? "" : ".", ext ? "" : fmt);
    return;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, COUNTERS);
  lua_Integer n = (lua_getfield(L, -1, kind), lua_tointeger(L, -1)) + 1;
  lua_pop(L, 1);
  lua_pushinteger(L, n);
  lua_setfield(L, -2, kind);
  lua_pop(L, 1);
  snprintf(path, npath, "%s/%s-%lld.%s", dir, kind, (long long)n, fmt);
}

void lviz_announce(lua_State *L, const char *path) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "chalk") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "on_picture") == LUA_TFUNCTION) {
      lua_pushstring(L, path);
      lua_call(L, 1, 0);
      lua_pop(L, 2);
      return;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* Raise the current core error (the caller has freed what it held). */
static int raise_core(lua_State *L) { return luaL_error(L, "%s", ct_last_error()); }

/* How every picture function ends: the core's error when rc is set, else the picture at path
   announced and returned. */
static int drawn(lua_State *L, int rc, const char *path) {
  if (rc) return raise_core(L);
  lviz_announce(L, path);
  lua_pushstring(L, path);
  return 1;
}

/* Renders b (DOT laid out already: engine "nop") to path when the emitter's status rc is 0, frees
   b, and ends as every picture function does. */
static int drawn_nop(lua_State *L, int rc, viz_buf *b, const char *fmt, const char *path) {
  rc = rc || viz_render(b->s, "nop", fmt, path);
  viz_buf_free(b);
  return drawn(L, rc, path);
}

/* ---- viz.graph -------------------------------------------------------------------------------- */

static void graph_opts(lua_State *L, int idx, viz_graph_opts *o) {
  memset(o, 0, sizeof *o);
  o->backward = opt_bool(L, idx, "backward") == 1;
  o->max_nodes = (int)opt_int(L, idx, "max_nodes", 0);
  int c = opt_bool(L, idx, "collapse");
  o->collapse = c < 0 ? 0 : c ? 1 : -1;
  o->max_values = (int)opt_int(L, idx, "values", 0);
  o->rankdir = opt_string(L, idx, "rankdir", NULL);
  if (o->rankdir && strcmp(o->rankdir, "LR") && strcmp(o->rankdir, "TB") && strcmp(o->rankdir, "RL") &&
      strcmp(o->rankdir, "BT"))
    luaL_error(L, "viz.graph: rankdir must be \"LR\", \"TB\", \"RL\" or \"BT\", got \"%s\"", o->rankdir);
  o->title = opt_string(L, idx, "title", NULL);
}

/* viz.graph(x [, opts]) for a value that is not a tensor but draws itself: x:dot(opts) returns
   DOT text (a captured Graph does), rendered like every other picture. */
static int graph_of_drawable(lua_State *L) {
  lua_settop(L, 2); /* opts stay at index 2 (nil when absent) while x:dot() is called */
  if (lua_getfield(L, 1, "dot") != LUA_TFUNCTION)
    return luaL_typeerror(L, 1, "chalk tensor (or a value with a :dot() method, such as a captured Graph)");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  if (!lua_isstring(L, -1)) return luaL_error(L, "viz.graph: x:dot() must return DOT text");
  int text = lua_gettop(L);
  char path[4096], fmt[8];
  lviz_output(L, 2, "graph", path, sizeof path, fmt, sizeof fmt);
  return drawn(L, viz_render(lua_tostring(L, text), "dot", fmt, path), path);
}

/* viz.graph(t [, opts]) -> path */
static int l_graph(lua_State *L) {
  check_opts(L, 2);
  if (!lchalk_totensor(L, 1) && (lua_istable(L, 1) || lua_isuserdata(L, 1))) return graph_of_drawable(L);
  ct_tensor *t = lchalk_checktensor(L, 1);
  check_opts(L, 2);
  viz_graph_opts o;
  graph_opts(L, 2, &o);
  char path[4096], fmt[8];
  lviz_output(L, 2, o.backward ? "graph-backward" : "graph", path, sizeof path, fmt, sizeof fmt);
  viz_graph *g = viz_graph_build(t, &o);
  viz_buf b = {0};
  int rc = !g || viz_graph_dot(g, &b) || viz_render(b.s, "dot", fmt, path);
  viz_buf_free(&b);
  viz_graph_free(g);
  return drawn(L, rc, path);
}

/* ---- viz.step --------------------------------------------------------------------------------- */

/* viz.step(t [, opts]) -> path, frame, nframes: the next frame each call (wrapping around);
   opts.frame = k draws frame k; opts.frames = dir (or true) writes every frame into dir as
   step_01.png ... and returns the list of paths and the list of captions. */
static int l_step(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  check_opts(L, 2);
  viz_graph_opts o;
  graph_opts(L, 2, &o);
  if (!o.max_nodes) o.max_nodes = 60;
  o.backward = true; /* frames show both passes; this also picks the side-by-side layout */
  lua_Integer want = opt_int(L, 2, "frame", 0);
  const char *frames_dir = NULL;
  int all = 0;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "frames");
    if (lua_isstring(L, -1)) frames_dir = lua_tostring(L, -1), all = 1;
    else if (lua_toboolean(L, -1)) all = 1;
    lua_pop(L, 1);
  }
  char fmt[8], path[4096], dir[3800];
  if (all) {
    const char *ff = opt_string(L, 2, "format", "png");
    if (!viz_format_known(ff)) return luaL_error(L, "viz.step: unknown format '%s'", ff);
    snprintf(fmt, sizeof fmt, "%s", ff);
    if (frames_dir && strchr(frames_dir, '/')) snprintf(dir, sizeof dir, "%s", frames_dir);
    else snprintf(dir, sizeof dir, "%s/%s", out_dir(L), frames_dir ? frames_dir : "steps");
    if (mkdirs(dir)) return luaL_error(L, "viz.step: cannot create %s: %s", dir, strerror(errno));
  } else {
    lviz_output(L, 2, "step", path, sizeof path, fmt, sizeof fmt);
  }
  /* which frame: from the per-tensor state (weak keys) unless asked */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, STEP_STATE);
  if (!lua_getmetatable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  } else {
    lua_pop(L, 1);
  }
  int state = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_gettable(L, state);
  lua_Integer next = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  if (all) {
    lua_newtable(L); /* paths */
    lua_newtable(L); /* captions */
  }
  viz_graph *g = viz_graph_build(t, &o);
  int rc = !g || viz_graph_step_prepare(g);
  int n = rc ? 0 : viz_graph_step_count(g);
  int k = (int)(want > 0 ? want - 1 : next % (n ? n : 1));
  char caption[400] = "", first[4096] = "";
  for (int f = all ? 0 : k; !rc && f < (all ? n : k + 1); f++) {
    viz_buf b = {0};
    if (all) snprintf(path, sizeof path, "%s/step_%02d.%s", dir, f + 1, fmt);
    rc = viz_graph_step_dot(g, f, &b, caption, sizeof caption) || viz_render(b.s, "dot", fmt, path);
    viz_buf_free(&b);
    if (!rc && all) { /* lua_push* only raise on memory errors */
      lua_pushstring(L, path);
      lua_rawseti(L, -3, f + 1);
      lua_pushstring(L, caption);
      lua_rawseti(L, -2, f + 1);
      if (!f) snprintf(first, sizeof first, "%s", path);
    }
  }
  viz_graph_free(g);
  if (rc) return raise_core(L);
  if (all) {
    if (first[0]) lviz_announce(L, first);
    return 2;
  }
  lua_pushvalue(L, 1);
  lua_pushinteger(L, k + 1);
  lua_settable(L, state);
  lviz_announce(L, path);
  lua_pushstring(L, path);
  lua_pushinteger(L, k + 1);
  lua_pushinteger(L, n);
  lua_pushstring(L, caption);
  return 4;
}

/* ---- viz.memory, viz.trace --------------------------------------------------------------------- */

/* viz.memory(prof, opts) and viz.trace(prof, opts): draw reads its options at 2 and writes the DOT
   text of the picture; rendered with the nop engine (positions are in the DOT) to the output. */
static int draw_profile(lua_State *L, const char *kind, int (*draw)(lua_State *L, const ct_profile *p, viz_buf *b)) {
  ct_profile *p = lviz_checkprofile(L, 1);
  check_opts(L, 2);
  char path[4096], fmt[8];
  lviz_output(L, 2, kind, path, sizeof path, fmt, sizeof fmt);
  viz_buf b = {0};
  return drawn_nop(L, draw(L, p, &b), &b, fmt, path);
}

static int memory_dot(lua_State *L, const ct_profile *p, viz_buf *b) {
  viz_memory_opts o = {.device = -1};
  const char *dev = opt_string(L, 2, "device", NULL);
  if (dev) {
    ct_device d;
    if (ct_device_parse(dev, &d)) return raise_core(L);
    o.device = (int)d.type;
  }
  const char *x = opt_string(L, 2, "x", "op");
  if (strcmp(x, "op") && strcmp(x, "time")) return luaL_error(L, "viz.memory: x must be \"op\" or \"time\", got \"%s\"", x);
  o.by_time = !strcmp(x, "time");
  o.max_listed = (int)opt_int(L, 2, "list", 0);
  o.title = opt_string(L, 2, "title", NULL);
  return viz_memory_dot(p, &o, b);
}

static int trace_dot(lua_State *L, const ct_profile *p, viz_buf *b) {
  viz_trace_opts o = {0};
  o.width_pt = (double)opt_int(L, 2, "width", 0);
  o.title = opt_string(L, 2, "title", NULL);
  return viz_trace_dot(p, &o, b);
}

static int l_memory(lua_State *L) { return draw_profile(L, "memory", memory_dot); }
static int l_trace(lua_State *L) { return draw_profile(L, "trace", trace_dot); }

/* ---- viz.render, viz.chrome, viz.mark ---------------------------------------------------------- */

/* viz.render(dot_text [, {engine="dot"|"nop"|"neato", file, format}]) -> path */
static int l_render(lua_State *L) {
  const char *dot = luaL_checkstring(L, 1);
  check_opts(L, 2);
  const char *engine = opt_string(L, 2, "engine", "dot");
  static const char *const engines[] = {"dot", "nop", "nop2", "neato", "fdp", "circo", "twopi", NULL};
  int ok = 0;
  for (int i = 0; engines[i]; i++) ok |= !strcmp(engines[i], engine);
  if (!ok) return luaL_error(L, "viz.render: unknown engine '%s' (dot, nop, nop2, neato, fdp, circo, twopi)", engine);
  char path[4096], fmt[8];
  lviz_output(L, 2, "picture", path, sizeof path, fmt, sizeof fmt);
  return drawn(L, viz_render(dot, engine, fmt, path), path);
}

/* viz.chrome(prof [, path]) -> path (the same as prof:export_chrome(path)) */
static int l_chrome(lua_State *L) {
  ct_profile *p = lviz_checkprofile(L, 1);
  const char *path = luaL_optstring(L, 2, "trace.json");
  if (viz_chrome_write(p, path)) return raise_core(L);
  lua_pushstring(L, path);
  return 1;
}

/* viz.mark(label): a mark in the event log (shown in traces, memory timelines, Chrome traces). */
static int l_mark(lua_State *L) {
  const char *label = luaL_checkstring(L, 1);
  ct_event_mark("mark", label);
  return 0;
}

int luaopen_chalk_viz(lua_State *L) {
  static const luaL_Reg fns[] = {{"graph", l_graph},   {"step", l_step},     {"memory", l_memory},
                                 {"trace", l_trace},   {"render", l_render}, {"chrome", l_chrome},
                                 {"mark", l_mark},     {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_createtable(L, 4, 0);
  static const char *const formats[] = {"png", "svg", "pdf", "dot"};
  for (int i = 0; i < 4; i++) {
    lua_pushstring(L, formats[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "formats");
  lviz_open_canvas(L);
  return 1;
}
