/* lchalk_modules.h: the modules built into the binding: the pure-Lua files of lua/chalk/
 * (embedded as bytes by lua/embed.c at build time) and C modules of other layers (viz/, ...)
 * named in LUA_C_MODULES (lua/lua.mk). luaopen_chalk puts each into package.preload under its
 * name ("chalk.nn"), so `require "chalk.nn"` finds it without any file on disk.
 */
#ifndef LCHALK_MODULES_H
#define LCHALK_MODULES_H

#include <stddef.h>

#include "lua.h"

typedef struct {
  const char *name;          /* "chalk.nn" */
  const unsigned char *src;  /* Lua source, or NULL for a C module */
  size_t len;
  const char *chunkname;     /* "@lua/chalk/nn.lua": errors and tracebacks name the source file */
  lua_CFunction open;        /* C module opener, or NULL */
} lchalk_module;

/* Terminated by an entry whose name is NULL. Defined in the generated lchalk_modules.c. */
extern const lchalk_module lchalk_modules[];

#endif
