/* lchalk_autograd.c: backward, chalk.grad, .grad housekeeping (zero_grad, requires_grad_,
 * retain_grad) and the grad mode (set_grad_enabled, is_grad_enabled, set_retain_all_grads).
 * chalk.no_grad and chalk.enable_grad are written in Lua on top (chalk/core.lua).
 */
#include "lchalk_internal.h"

/* Read {retain_graph=, create_graph=} at idx (none or nil: both false). */
static void graph_opts(lua_State *L, int idx, bool *retain, bool *create) {
  *retain = *create = false;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "retain_graph") != LUA_TNIL) *retain = lua_toboolean(L, -1);
  if (lua_getfield(L, idx, "create_graph") != LUA_TNIL) *create = lua_toboolean(L, -1);
  lua_pop(L, 2);
}

/* loss:backward([grad] [, {retain_graph=, create_graph=}]): a one-element output seeds 1. */
static int m_backward(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  ct_tensor *g = lchalk_totensor(L, 2);
  int opts = g || lua_isnil(L, 2) ? 3 : 2;
  if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2)) return luaL_typeerror(L, 2, "gradient tensor or options");
  bool retain, create;
  graph_opts(L, opts, &retain, &create);
  if (!t->requires_grad) {
    char d[200];
    return luaL_error(L, "backward: %s does not require grad and has no grad_fn (did any input have "
                         "requires_grad=true? was it computed inside chalk.no_grad?)", ct_describe(t, d, sizeof d));
  }
  lua_State *prev = lchalk_hook_state(L); /* context hooks written in Lua run on this thread */
  int rc = ct_backward(t, g, retain, create);
  lchalk_hook_state(prev);
  if (rc) return lchalk_error(L);
  return 0;
}

/* chalk.grad(out, {a, b} [, {create_graph=, retain_graph=, grad_outputs=}]) -> {da, db}.
 * Leaves' .grad are not touched; unreachable inputs get zeros. A single tensor for inputs also
 * gives a list. */
static int l_grad(lua_State *L) {
  lua_settop(L, 3); /* scratch arrays go above the arguments */
  ct_tensor *out = lchalk_checktensor(L, 1);
  int n;
  ct_tensor **ins;
  if (lchalk_totensor(L, 2)) {
    n = 1;
    ins = lua_newuserdatauv(L, sizeof *ins, 0);
    ins[0] = lchalk_totensor(L, 2);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    ins = lua_newuserdatauv(L, sizeof *ins * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      ins[i] = lchalk_totensor(L, -1);
      if (!ins[i]) return luaL_error(L, "grad: input %d is a %s, not a tensor", i + 1, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  }
  bool retain, create;
  graph_opts(L, 3, &retain, &create);
  ct_tensor *gout = NULL;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "grad_outputs");
    if (!lua_isnil(L, -1)) gout = lchalk_checktensor(L, -1); /* anchored by the options table */
    lua_pop(L, 1);
  }
  ct_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)(n ? n : 1), 0);
  if (ct_grad(out, gout, ins, n, res, retain, create)) return lchalk_error(L);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lchalk_pushtensor(L, res[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_zero_grad(lua_State *L) {
  ct_zero_grad(lchalk_checktensor(L, 1));
  return 0;
}

/* x:requires_grad_([on]) sets the flag (default true) and returns x. */
static int m_requires_grad_(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
  if (ct_requires_grad_(t, on)) return lchalk_error(L);
  lua_settop(L, 1);
  return 1;
}

/* x:retain_grad(): keep .grad on a non-leaf after backward (a leaf keeps it anyway). */
static int m_retain_grad(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (!t->requires_grad) {
    char d[200];
    return luaL_error(L, "retain_grad: %s does not require grad", ct_describe(t, d, sizeof d));
  }
  if (t->grad_fn) t->retains_grad = true;
  lua_settop(L, 1);
  return 1;
}

/* chalk.set_grad_enabled(on) returns the previous mode; chalk.is_grad_enabled(). */
static int l_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, ct_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, ct_grad_enabled());
  return 1;
}

/* chalk.set_retain_all_grads(on): every non-leaf made from now on keeps its .grad (for pictures
 * of small graphs); returns the previous setting. */
static int l_set_retain_all_grads(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  bool old = ct_retain_all_grads();
  ct_set_retain_all_grads(lua_toboolean(L, 1));
  lua_pushboolean(L, old);
  return 1;
}

void lchalk_open_autograd(lua_State *L, int chalk, int methods, int meta) {
  (void)meta;
  static const luaL_Reg ms[] = {{"backward", m_backward},
                                {"zero_grad", m_zero_grad},
                                {"requires_grad_", m_requires_grad_},
                                {"retain_grad", m_retain_grad},
                                {NULL, NULL}};
  lchalk_register(L, methods, ms);
  static const luaL_Reg fns[] = {{"grad", l_grad},
                                 {"set_grad_enabled", l_set_grad_enabled},
                                 {"is_grad_enabled", l_is_grad_enabled},
                                 {"set_retain_all_grads", l_set_retain_all_grads},
                                 {NULL, NULL}};
  lchalk_register(L, chalk, fns);
}
