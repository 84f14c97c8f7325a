/* lviz.h: the Lua surface of viz/ (chalk.viz and chalk.profile), shared by lviz.c,
 * lviz_canvas.c and lprofile.c. The binding finds the two openers through LUA_C_MODULES
 * (viz/viz.mk); viz/ itself includes no Lua header.
 * Invariant (leak freedom, as in the binding): a function parses its arguments (which may raise)
 * before it holds any C allocation, and raises only after releasing what it holds. */
#ifndef CHALK_LVIZ_H
#define CHALK_LVIZ_H

#include "lauxlib.h"
#include "lua.h"
#include "obs/profile.h"

#define LVIZ_PROFILE "chalk.Profile"

/* require "chalk.viz": the viz table (graph, step, memory, trace, render, mark, chrome). */
int luaopen_chalk_viz(lua_State *L);
/* require "chalk.profile": the chalk.profile(fn, ...) function. */
int luaopen_chalk_profile(lua_State *L);

/* The profile at idx (a Lua error otherwise). */
ct_profile *lviz_checkprofile(lua_State *L, int idx);

/* Where a picture of kind goes: opts.file (a bare name lands in chalk.out_dir, a path is kept;
   no extension gets the format's), else chalk.out_dir/<kind>-<n>.<format>. The format comes
   from opts.format, else the file's extension, else png. Creates the directory. May raise. */
void lviz_output(lua_State *L, int opts, const char *kind, char *path, size_t npath, char *format, size_t nformat);
/* Set viz.colors and viz.canvas on the viz table at the top of the stack (lviz_canvas.c). */
void lviz_open_canvas(lua_State *L);
/* Call chalk.on_picture(path) when the REPL (or a script) set it. May raise. */
void lviz_announce(lua_State *L, const char *path);

#endif
