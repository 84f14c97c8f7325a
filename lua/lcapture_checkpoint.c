/* lcapture_checkpoint.c: the C half of nn.checkpoint (the Lua function run under lua_pcall on recompute). */
#include <stdlib.h>

#include "lcapture.h"

/* ---- nn.checkpoint's C half ---------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  int ref;
} lua_fn;

typedef struct {
  lua_fn *fn;
  ct_tensor *const *in;
  int nin;
  ct_tensor *result;
} recompute_call;

static int recompute_trampoline(lua_State *L) {
  recompute_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn->ref);
  for (int i = 0; i < c->nin; i++) lchalk_pushtensor(L, ct_retain(c->in[i]));
  lua_call(L, c->nin, 1);
  ct_tensor *t = lchalk_totensor(L, -1);
  if (!t) return luaL_error(L, "checkpoint: the function must return one tensor, got %s", luaL_typename(L, -1));
  c->result = ct_retain(t);
  return 0;
}

static ct_tensor *run_lua_fn(void *ud, ct_tensor *const *in, int nin) {
  lua_fn *f = ud;
  lua_State *L = f->L;
  recompute_call c = {f, in, nin, NULL};
  lua_pushcfunction(L, recompute_trampoline);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    ct_errorf("checkpoint: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in the function");
    lua_pop(L, 1);
    ct_release(c.result);
    return NULL;
  }
  return c.result;
}

static void free_lua_fn(void *ud) {
  lua_fn *f = ud;
  luaL_unref(f->L, LUA_REGISTRYINDEX, f->ref);
  free(f);
}

/* chalk._checkpoint(fn, inputs, params) -> fn(inputs...), recomputed in backward */
int lcap_l_checkpoint(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  bool has_params = lua_istable(L, 3);
  lua_Integer nin = luaL_len(L, 2), np = has_params ? luaL_len(L, 3) : 0;
  if (nin < 0 || nin > 256 || np < 0 || np > 4096) return luaL_error(L, "checkpoint: too many inputs or parameters");
  ct_tensor **ins = lua_newuserdatauv(L, sizeof *ins * (size_t)(nin + np + 1), 0); /* anchored scratch */
  for (lua_Integer i = 1; i <= nin; i++) {
    lua_geti(L, 2, i);
    ins[i - 1] = lchalk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  for (lua_Integer j = 1; j <= np; j++) {
    lua_geti(L, 3, j);
    ins[nin + j - 1] = lchalk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  lua_fn *f = malloc(sizeof *f);
  if (!f) return luaL_error(L, "checkpoint: out of memory");
  f->L = L;
  lua_pushvalue(L, 1);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ct_tensor *r = ct_checkpoint(run_lua_fn, free_lua_fn, f, ins, (int)nin, ins + nin, (int)np);
  return lchalk_pushtensor(L, r);
}
