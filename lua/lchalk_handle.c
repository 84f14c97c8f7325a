/* lchalk_handle.c: owning handles, full userdata holding one pointer to a core object (a graph,
 * a profile, a discrete-event engine) that __gc and __close free once and then leave NULL, and the
 * metatables (classes) of such userdata. */
#include "lauxlib.h"
#include "lchalk.h"

void **lchalk_handle_new(lua_State *L, const char *tname) {
  void **h = lua_newuserdatauv(L, sizeof *h, 0);
  *h = NULL;
  luaL_setmetatable(L, tname);
  return h;
}

void *lchalk_handle_check(lua_State *L, int idx, const char *tname, const char *when_empty) {
  void **h = luaL_checkudata(L, idx, tname);
  if (!*h) luaL_error(L, "%s", when_empty);
  return *h;
}

void lchalk_handle_class(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta) {
  if (luaL_newmetatable(L, tname)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    luaL_setfuncs(L, meta, 0);
  }
  lua_pop(L, 1);
}

void *lchalk_handle_take(lua_State *L, int idx, const char *tname) {
  void **h = luaL_checkudata(L, idx, tname);
  void *p = *h;
  *h = NULL;
  return p;
}
