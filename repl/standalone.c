/* standalone.c: a stand-in for the Lua binding, so repl/ can be built and tested without lua/. */
/*
 * Only $(BUILD)/repl-standalone/chalk links this (make check-repl-standalone); build/chalk
 * links the real luaopen_chalk from libchalk_lua.a. It offers just enough of the contract
 * the REPL relies on to exercise it: a userdata whose metatable has a function __index, a
 * __methods table (sum, sub, item, transpose, is_contiguous) and a __fields list (shape);
 * memory_stats(); and viz.picture(path), which calls chalk.on_picture as the real viz does.
 */
#ifdef CHALK_REPL_STANDALONE
#include <string.h>

#include "lauxlib.h"
#include "repl.h"

#define FAKE_TENSOR "chalk.standalone.tensor"

static int fake_item(lua_State *L) {
  luaL_checkudata(L, 1, FAKE_TENSOR);
  lua_pushnumber(L, 10);
  return 1;
}

static int fake_tensor(lua_State *L) {
  lua_newuserdatauv(L, 1, 0);
  luaL_setmetatable(L, FAKE_TENSOR);
  return 1;
}

static int fake_is_contiguous(lua_State *L) {
  luaL_checkudata(L, 1, FAKE_TENSOR);
  lua_pushboolean(L, 0);
  return 1;
}

static int fake_index(lua_State *L) {
  luaL_checkudata(L, 1, FAKE_TENSOR);
  const char *key = luaL_checkstring(L, 2);
  if (strcmp(key, "shape") == 0) {
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, 2);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, 2);
    lua_rawseti(L, -2, 2);
    return 1;
  }
  luaL_getmetatable(L, FAKE_TENSOR);
  lua_getfield(L, -1, "__methods");
  lua_getfield(L, -1, key);
  return 1;
}

static int fake_tostring(lua_State *L) {
  lua_pushstring(L, "tensor([[1, 2], [3, 4]], shape={2,2}, dtype=f32, device=cpu)");
  return 1;
}

static int fake_memory_stats(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushinteger(L, 4096);
  lua_setfield(L, -2, "activation");
  lua_pushinteger(L, 3 << 20);
  lua_setfield(L, -2, "parameter");
  lua_pushinteger(L, 5 << 20);
  lua_setfield(L, -2, "peak");
  lua_setfield(L, -2, "cpu");
  return 1;
}

/* viz.picture(path): announce a picture as the real viz does. */
static int fake_picture(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_getglobal(L, "chalk");
  if (lua_getfield(L, -1, "on_picture") == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
  }
  lua_pushvalue(L, 1);
  return 1;
}

int luaopen_chalk(lua_State *L) {
  static const luaL_Reg meta[] = {{"__index", fake_index}, {"__tostring", fake_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"sum", fake_tensor},
                                     {"sub", fake_tensor},
                                     {"item", fake_item},
                                     {"transpose", fake_tensor},
                                     {"is_contiguous", fake_is_contiguous},
                                     {NULL, NULL}};
  luaL_newmetatable(L, FAKE_TENSOR);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__methods");
  lua_createtable(L, 1, 0);
  lua_pushstring(L, "shape");
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -2, "__fields");
  lua_pop(L, 1);

  static const luaL_Reg chalk[] = {{"tensor", fake_tensor}, {"memory_stats", fake_memory_stats}, {NULL, NULL}};
  static const luaL_Reg viz[] = {{"picture", fake_picture}, {NULL, NULL}};
  luaL_newlib(L, chalk);
  luaL_newlib(L, viz);
  lua_setfield(L, -2, "viz");
  return 1;
}

/* stand-ins for the core's interrupt flag (no C loops here to poll it) */
void ct_interrupt_request(void) {}
void ct_interrupt_clear(void) {}
#endif
