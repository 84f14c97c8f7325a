/* lchalk.h: the Lua binding's C interface, for C code that extends chalk from another layer
 * (viz/, capture): how a chalk tensor lives on the Lua stack.
 *
 * A tensor is a full userdata with metatable LCHALK_TENSOR holding one reference to a core
 * ct_tensor; __gc and __close release it (a closed tensor holds NULL and refuses every use).
 * Functions here raise Lua errors (they may longjmp): call them before taking C references that
 * an error would leak.
 */
#ifndef LCHALK_H
#define LCHALK_H

#include "chalk.h"
#include "lauxlib.h"
#include "lua.h"

#define LCHALK_TENSOR "chalk.Tensor"

/* The tensor at idx (borrowed: the userdata on the stack owns it); a Lua error otherwise. */
ct_tensor *lchalk_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when the value there is not a live chalk tensor. */
ct_tensor *lchalk_totensor(lua_State *L, int idx);
/* Push t, a NEW reference whose ownership moves to Lua, and return 1. t == NULL raises the core's
 * last error (ct_last_error()) as a Lua error at the caller's line. Steps the Lua GC in proportion
 * to the tensor bytes allocated since the last step (see lchalk_memory.c). */
int lchalk_pushtensor(lua_State *L, ct_tensor *t);
/* Raise ct_last_error() as a Lua error at the caller's line (never returns). */
int lchalk_error(lua_State *L);

/* Owning handles (lchalk_handle.c): a full userdata of metatable tname holding one pointer to a
 * core object. _new pushes one holding NULL (set *h once the object exists, so an error before
 * leaks nothing); _check returns the pointer or raises when_empty; _take returns it and leaves the
 * handle empty: __gc and __close free what it returns (free functions take NULL). */
void **lchalk_handle_new(lua_State *L, const char *tname);
void *lchalk_handle_check(lua_State *L, int idx, const char *tname, const char *when_empty);
void *lchalk_handle_take(lua_State *L, int idx, const char *tname);
/* The metatable tname of a kind of userdata, made once: methods reached through __index, and the
 * metamethods meta (__gc, __close, __tostring, ...). Both lists end with {NULL, NULL}. */
void lchalk_handle_class(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta);

/* Opens the chalk table (what `require "chalk"` returns). */
int luaopen_chalk(lua_State *L);

#endif
