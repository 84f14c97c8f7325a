/* lviz_canvas.c: chalk.viz.colors (the palette, viz/palette.h) and chalk.viz.canvas(), the Lua
 * handle on viz's one chart canvas (viz/plot.h) that chalk.chart, chalk.perfcharts and
 * chalk.capture_charts draw on: Lua shapes the data, viz writes every mark, colour and font.
 *
 *   local c = viz.canvas()
 *   c:rect(x, y, w, h, "forward" [, border [, tooltip]])   c:text(x, y, s, size, anchor, color, bold)
 *   c:point(x, y, color, size)   c:line({x0, x1, ...}, {y0, y1, ...}, color, width, dashed)
 *   c:legend(x, y, {"forward", "backward"} [, {labels}] [, size])   c:dot()   c:render(opts, name)
 *
 * Invariants: colours are palette names ("forward", "forward:tint", "forward:ink", "heat:0.3"); an
 * unknown name is an error naming it, so no picture carries a colour outside the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lviz.h"
#include "palette.h"
#include "plot.h"

#define CANVAS "chalk.viz.Canvas"

typedef struct {
  viz_buf b;
  viz_plot p;
  bool open;
} lcanvas;

static lcanvas *check(lua_State *L) {
  lcanvas *c = luaL_checkudata(L, 1, CANVAS);
  if (!c->open) luaL_error(L, "viz.canvas: the canvas was already rendered");
  return c;
}

/* Colour argument idx as #rrggbb (copied into buf); def when absent. */
static const char *color_arg(lua_State *L, int idx, const char *def, char *buf) {
  if (lua_isnoneornil(L, idx)) return def;
  const char *name = luaL_checkstring(L, idx);
  const char *hex = viz_color_lookup(name, buf, 8);
  if (!hex) luaL_error(L, "viz.canvas: unknown colour '%s' (colours are the names of viz.colors)", name);
  return hex;
}

static viz_anchor anchor_arg(lua_State *L, int idx) {
  static const char *const names[] = {"left", "center", "right", NULL};
  static const viz_anchor a[] = {ANCHOR_LEFT, ANCHOR_CENTER, ANCHOR_RIGHT};
  return a[luaL_checkoption(L, idx, "center", names)];
}

static int l_rect(lua_State *L) {
  lcanvas *c = check(L);
  char f[8], b[8];
  double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3), w = luaL_checknumber(L, 4), h = luaL_checknumber(L, 5);
  const char *fill = color_arg(L, 6, viz_hex(VIZ_GRID), f);
  const char *border = color_arg(L, 7, NULL, b);
  const char *tip = luaL_optstring(L, 8, NULL);
  plot_rect(&c->p, x, y, w > 0.01 ? w : 0.01, h > 0.01 ? h : 0.01, fill, border, tip);
  return 0;
}

static int l_text(lua_State *L) {
  lcanvas *c = check(L);
  lua_settop(L, 8); /* luaL_tolstring pushes: absent arguments must stay nil */
  char f[8];
  double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
  const char *s = luaL_tolstring(L, 4, NULL);
  double size = luaL_optnumber(L, 5, 10);
  viz_anchor a = anchor_arg(L, 6);
  const char *color = color_arg(L, 7, viz_hex(VIZ_TEXT), f);
  plot_text(&c->p, x, y, s, size, color, a, lua_toboolean(L, 8));
  return 0;
}

static int l_point(lua_State *L) {
  lcanvas *c = check(L);
  char f[8];
  double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
  const char *color = color_arg(L, 4, viz_hex(VIZ_SERIES1), f);
  plot_point(&c->p, x, y, luaL_optnumber(L, 5, 6), color);
  return 0;
}

static int l_line(lua_State *L) {
  lcanvas *c = check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  char f[8];
  const char *color = color_arg(L, 4, viz_hex(VIZ_TEXT), f);
  double width = luaL_optnumber(L, 5, 1.5);
  bool dashed = lua_toboolean(L, 6);
  lua_Integer n = luaL_len(L, 2);
  if (luaL_len(L, 3) != n) return luaL_error(L, "viz.canvas:line: %d x values but %d y values", (int)n, (int)luaL_len(L, 3));
  if (n < 2) return 0;
  double *xy = lua_newuserdatauv(L, sizeof(double) * 2 * (size_t)n, 0); /* freed by the GC, no leak on raise */
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    lua_geti(L, 3, i + 1);
    xy[i] = luaL_checknumber(L, -2);
    xy[n + i] = luaL_checknumber(L, -1);
    lua_pop(L, 2);
  }
  plot_polyline(&c->p, xy, xy + n, (int)n, color, width, dashed);
  return 0;
}

/* c:legend(x, y, colours [, labels [, size]]) -> x after the legend. A colour "forward" gets a
   swatch in its hex, "forward:tint" in its tint; both are bordered in the colour's ink; a missing
   label is the colour's meaning in viz.colors. */
static int l_legend(lua_State *L) {
  lcanvas *c = check(L);
  double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  double size = luaL_optnumber(L, 6, 9);
  int n = (int)luaL_len(L, 4);
  if (n > 32) return luaL_error(L, "viz.canvas:legend: at most 32 entries (got %d)", n);
  char fb[32][8], bb[32][8];
  const char *fills[32], *borders[32], *labels[32];
  for (int i = 0; i < n; i++) {
    lua_geti(L, 4, i + 1);
    const char *name = luaL_checkstring(L, -1);
    fills[i] = color_arg(L, -1, NULL, fb[i]);
    char base[40];
    snprintf(base, sizeof base, "%.*s:ink", (int)strcspn(name, ":"), name);
    borders[i] = viz_color_lookup(base, bb[i], 8);
    const char *meaning = NULL;
    for (int k = 0; k < VIZ_NCOLORS; k++)
      if (!strncmp(viz_palette[k].name, name, strcspn(name, ":")) && !viz_palette[k].name[strcspn(name, ":")])
        meaning = viz_palette[k].meaning;
    lua_pop(L, 1); /* the name stays alive in the table */
    labels[i] = meaning ? meaning : name;
    if (lua_istable(L, 5)) {
      lua_geti(L, 5, i + 1);
      if (lua_type(L, -1) == LUA_TSTRING) labels[i] = lua_tostring(L, -1); /* alive in the labels table */
      lua_pop(L, 1);
    }
  }
  lua_pushnumber(L, plot_legend(&c->p, x, y, fills, borders, labels, n, size));
  return 1;
}

static int l_dot(lua_State *L) {
  lcanvas *c = check(L);
  viz_buf t = c->b;
  if (viz_buf_check(&t)) return luaL_error(L, "%s", ct_last_error());
  lua_pushlstring(L, t.s ? t.s : "", t.len);
  lua_pushstring(L, "}\n");
  lua_concat(L, 2);
  return 1;
}

/* c:render(opts, default_name) -> path (opts.file, opts.format as every viz picture) */
static int l_render(lua_State *L) {
  check(L);
  const char *def = luaL_optstring(L, 3, "chart.png");
  lua_settop(L, 3);
  lua_pushcfunction(L, l_dot);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1); /* 4: the DOT text */
  lua_getfield(L, lua_upvalueindex(1), "render");
  lua_pushvalue(L, 4);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, "nop");
  lua_setfield(L, -2, "engine");
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "file");
    lua_setfield(L, -2, "file");
    lua_getfield(L, 2, "format");
    lua_setfield(L, -2, "format");
  }
  lua_getfield(L, -1, "file");
  if (lua_isnil(L, -1)) {
    lua_pushstring(L, def);
    lua_setfield(L, -3, "file");
  }
  lua_pop(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  lcanvas *c = luaL_checkudata(L, 1, CANVAS);
  if (c->open) viz_buf_free(&c->b);
  c->open = false;
  return 0;
}

static int l_canvas(lua_State *L) {
  lcanvas *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CANVAS);
  plot_begin(&c->p, &c->b);
  c->open = true;
  return 1;
}

void lviz_open_canvas(lua_State *L) {
  /* viz.colors: name -> hex, and .meaning/.tint/.ink: name -> text, .names: the order */
  lua_createtable(L, 0, VIZ_NCOLORS + 4);
  const char *cols[] = {"meaning", "tint", "ink", "names"};
  for (int k = 0; k < 4; k++) lua_createtable(L, VIZ_NCOLORS, 0);
  int top = lua_gettop(L);
  for (int c = 0; c < VIZ_NCOLORS; c++) {
    const viz_color_def *d = &viz_palette[c];
    lua_pushstring(L, d->hex);
    lua_setfield(L, top - 4, d->name);
    lua_pushstring(L, d->meaning);
    lua_setfield(L, top - 3, d->name);
    lua_pushstring(L, d->tint);
    lua_setfield(L, top - 2, d->name);
    lua_pushstring(L, d->ink);
    lua_setfield(L, top - 1, d->name);
    lua_pushstring(L, d->name);
    lua_rawseti(L, top, c + 1);
  }
  for (int k = 3; k >= 0; k--) lua_setfield(L, top - 4, cols[k]);
  lua_setfield(L, -2, "colors");
  /* viz.canvas(): methods reach viz.render through an upvalue */
  static const luaL_Reg methods[] = {{"rect", l_rect}, {"text", l_text},     {"point", l_point}, {"line", l_line},
                                     {"legend", l_legend}, {"dot", l_dot}, {"render", l_render}, {NULL, NULL}};
  luaL_newmetatable(L, CANVAS);
  lua_createtable(L, 0, 8);
  lua_pushvalue(L, -3); /* the viz table */
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_canvas);
  lua_setfield(L, -2, "canvas");
}
