/* lchalk_module.c: luaopen_chalk, which builds the chalk table: the tensor metatable and method
 * table (chalk.Tensor), every file's functions, the built-in modules in package.preload, and the
 * optional parts (nn, optim, data, viz, ...) loaded when they are built in.
 *
 * Invariants: opening is idempotent per Lua state (a second open returns the same table, so
 * tensors made before keep working); the binding's own Lua half (chalk.core) is loaded first;
 * an optional part is loaded only if its module is in package.preload, so adding
 * lua/chalk/nn.lua makes chalk.nn appear without editing this file.
 */
#include <stdlib.h>

#include "lchalk_internal.h"
#include "lchalk_modules.h"

#define REGISTRY_KEY "chalk.module"

/* Loaded in this order when present; a module that returns a table or a function becomes
 * chalk.<name> (chalk.profile may be a function). chalk.core only extends chalk. */
static const char *const autoload[] = {"core", "pytorch", "nn", "nn_extra", "optim", "optim_extra", "data", "viz", "profile", "capture", "superopt", "dist", "sim", "serve", "quant", "warpspec", "efficiency", NULL};

/* Methods that are also functions of chalk, as in torch (chalk.exp(x) is x:exp()). */
static const char *const function_aliases[] = {
    "exp",     "log",         "sqrt",     "abs",     "sign",      "sin",     "cos",          "tanh",
    "sigmoid", "relu",        "gelu",     "neg",     "pow",       "clamp",   "add",          "sub",
    "mul",     "div",         "matmul",   "maximum", "minimum",   "eq",      "ne",           "lt",
    "le",      "gt",          "ge",       "sum",     "mean",      "max",     "min",          "argmax",
    "argmin",  "var",         "std",      "softmax", "log_softmax", "gather", "index_select", "transpose",
    "permute", "reshape",     "flatten",  "squeeze", "unsqueeze", "narrow",  "select",       "numel",
    "clone",   "detach",      NULL};

/* package.preload loader of an embedded Lua module: run its chunk with its name, as require does. */
static int embedded_loader(lua_State *L) {
  const lchalk_module *m = &lchalk_modules[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, (const char *)m->src, m->len, m->chunkname, "t") != LUA_OK) return lua_error(L);
  lua_pushstring(L, m->name);
  lua_pushstring(L, ":preload:");
  lua_call(L, 2, 1);
  return 1;
}

static void register_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (int i = 0; lchalk_modules[i].name; i++) {
    if (lchalk_modules[i].open) {
      lua_pushcfunction(L, lchalk_modules[i].open);
    } else {
      lua_pushinteger(L, i);
      lua_pushcclosure(L, embedded_loader, 1);
    }
    lua_setfield(L, -2, lchalk_modules[i].name);
  }
  lua_pop(L, 1);
}

/* require(name) for a module in package.preload, without needing the package library; pushes its
 * value (or nil when name is not in preload). */
static void require_preloaded(lua_State *L, const char *name) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  if (lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_remove(L, -2);
    lua_remove(L, -2);
    return;
  }
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_pushstring(L, ":preload:");
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name); /* package.loaded[name] */
  lua_remove(L, -2);
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, LCHALK_TENSOR) != NULL);
  return 1;
}

void lchalk_register(lua_State *L, int t, const luaL_Reg *fns) {
  lua_pushvalue(L, t);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

void lchalk_set_flagged(lua_State *L, lua_CFunction f, const char *off, const char *on) {
  lua_pushboolean(L, 0);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, off);
  lua_pushboolean(L, 1);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, on);
}

int luaopen_chalk(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  if (ct_init()) return lchalk_error(L);
  lchalk_use_small_alloc(L);
  lua_newtable(L);
  int chalk = lua_gettop(L);
  lua_newtable(L);
  int methods = lua_gettop(L);
  luaL_newmetatable(L, LCHALK_TENSOR);
  int meta = lua_gettop(L);

#define OPEN(NAME) lchalk_open_##NAME(L, chalk, methods, meta);
  LCHALK_PARTS(OPEN)
#undef OPEN

  for (int i = 0; function_aliases[i]; i++) {
    lua_getfield(L, methods, function_aliases[i]);
    lua_setfield(L, chalk, function_aliases[i]);
  }
  lua_pushvalue(L, methods);
  lua_setfield(L, chalk, "Tensor");
  lua_pushcfunction(L, l_is_tensor);
  lua_setfield(L, chalk, "is_tensor");
  lua_pushstring(L, CT_VERSION);
  lua_setfield(L, chalk, "version");
  lua_createtable(L, CT_NDTYPES, 0);
  for (int d = 0; d < CT_NDTYPES; d++) {
    lua_pushstring(L, ct_dtype_name((ct_dtype)d));
    lua_rawseti(L, -2, d + 1);
  }
  lua_setfield(L, chalk, "dtypes");
  const char *out = getenv("CHALK_OUT"); /* the REPL sets chalk.out_dir from --out as well */
  lua_pushstring(L, out && *out ? out : "chalk-out");
  lua_setfield(L, chalk, "out_dir");

  lua_pushvalue(L, chalk);
  lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, chalk);
  lua_setfield(L, -2, "chalk"); /* so the modules below can require "chalk" while it opens */
  lua_pop(L, 1);
  register_preload(L);
  for (int i = 0; autoload[i]; i++) {
    char name[64];
    snprintf(name, sizeof name, "chalk.%s", autoload[i]);
    require_preloaded(L, name);
    if (lua_istable(L, -1) || lua_isfunction(L, -1)) lua_setfield(L, chalk, autoload[i]);
    else lua_pop(L, 1);
  }
  lua_settop(L, chalk);
  return 1;
}
