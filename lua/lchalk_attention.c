/* lchalk_attention.c: chalk.attention(q, k, v [, opts]), the binding of ct_attention, which
 * nn.functional.attention calls. opts: causal (false), impl ("naive" or "flash"; "naive"),
 * scale (1/sqrt(d)), block or block_q/block_k (the flash tiles on the CPU; 64).
 * Invariant: options are read and checked before the core call (no C reference is held across a
 * call that may raise). */
#include <string.h>

#include "lchalk_internal.h"

static int opt_field_int(lua_State *L, int opts, const char *field, int def) {
  int v = def;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 1 << 20)
      luaL_error(L, "attention: %s must be a positive integer, got %s", field, luaL_tolstring(L, -1, NULL));
    v = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int l_attention(lua_State *L) {
  ct_tensor *q = lchalk_checktensor(L, 1), *k = lchalk_checktensor(L, 2), *v = lchalk_checktensor(L, 3);
  ct_attention_opts o = {0};
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    static const char *const known[] = {"causal", "impl", "scale", "block", "block_q", "block_k", NULL};
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      bool found = false;
      for (int i = 0; !found && known[i] && lua_type(L, -2) == LUA_TSTRING; i++)
        found = !strcmp(lua_tostring(L, -2), known[i]);
      if (!found)
        return luaL_error(L, "attention: unknown option '%s' (causal, impl, scale, block, block_q, block_k)",
                          luaL_tolstring(L, -2, NULL));
      lua_pop(L, 1);
    }
    lua_getfield(L, 4, "causal");
    o.causal = lua_toboolean(L, -1);
    lua_getfield(L, 4, "impl");
    const char *impl = lua_isnil(L, -1) ? "naive" : luaL_checkstring(L, -1);
    if (!strcmp(impl, "flash")) o.flash = true;
    else if (strcmp(impl, "naive")) return luaL_error(L, "attention: impl must be \"naive\" or \"flash\", got \"%s\"", impl);
    lua_getfield(L, 4, "scale");
    if (!lua_isnil(L, -1)) {
      o.scale = luaL_checknumber(L, -1);
      if (!(o.scale > 0)) return luaL_error(L, "attention: scale must be positive, got %f", o.scale);
    }
    lua_pop(L, 3);
    int block = opt_field_int(L, 4, "block", 0);
    o.block_q = opt_field_int(L, 4, "block_q", block);
    o.block_k = opt_field_int(L, 4, "block_k", block);
  }
  LCHALK_RETURN(L, ct_attention(q, k, v, &o));
}

void lchalk_open_attention(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  lua_pushcfunction(L, l_attention);
  lua_setfield(L, chalk, "attention");
}
