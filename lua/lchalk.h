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

/* Opens the chalk table (what `require "chalk"` returns). */
int luaopen_chalk(lua_State *L);

#endif
