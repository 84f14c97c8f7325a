/* lchalk_context.c: chalk.context, the Lua face of core's contexts (design decision 11): one per
 * simulated worker, holding its grad mode, RNG stream, event lane (rank, stream), memory
 * statistics and clock. C here: the userdata, switching and the per-context queries; the
 * yield-safe helpers that switch a context in and out around a coroutine (chalk.context.run,
 * resume, wrap) are Lua, in chalk/core.lua.
 *
 * Invariants: one userdata per ct_ctx (a weak registry table maps the pointer to it, so
 * chalk.context.current() == the object that was switched in); the default context's userdata
 * never frees it; a context made by chalk.context.new is freed by its __gc or __close (core keeps
 * the accounting of storages it allocated until they go). */
#include <string.h>

#include "lchalk_internal.h"

#define LCHALK_CONTEXT "chalk.context"
#define LCHALK_CONTEXTS "chalk.contexts" /* registry: weak table, light userdata -> userdata */

typedef struct {
  ct_ctx *c;   /* NULL once freed */
  bool owned;  /* made by chalk.context.new: freed with the userdata */
} lctx;

static lctx *check_lctx(lua_State *L, int idx) {
  lctx *x = luaL_checkudata(L, idx, LCHALK_CONTEXT);
  if (!x->c) luaL_error(L, "context: this context was freed");
  return x;
}

/* Pushes the userdata of c (made, not owned, when c was created in C). */
static void push_ctx(lua_State *L, ct_ctx *c, bool owned) {
  lua_getfield(L, LUA_REGISTRYINDEX, LCHALK_CONTEXTS);
  if (lua_rawgetp(L, -1, c) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lctx *x = lua_newuserdatauv(L, sizeof *x, 1); /* user value: {[hook id] = function} */
  x->c = c;
  x->owned = owned;
  luaL_setmetatable(L, LCHALK_CONTEXT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, c);
  lua_remove(L, -2);
}

/* chalk.context.new(rank): a fresh context: grad on, the default seed, stream 0, wall clock. */
static int l_new(lua_State *L) {
  lua_Integer rank = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, rank >= 0 && rank <= 1 << 20, 1, "rank must be in 0 .. 2^20");
  ct_ctx *c = ct_ctx_new((int)rank);
  if (!c) return lchalk_error(L);
  push_ctx(L, c, true);
  return 1;
}

static int l_current(lua_State *L) {
  ct_ctx *c = ct_ctx_current();
  push_ctx(L, c, false);
  return 1;
}

static int l_default(lua_State *L) {
  push_ctx(L, ct_ctx_default(), false);
  return 1;
}

/* chalk.context.switch(ctx): makes ctx current; returns the previous one. Prefer run/resume. */
static int l_switch(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  ct_ctx *old = ct_ctx_switch(x->c);
  push_ctx(L, old, false);
  return 1;
}

static int m_gc(lua_State *L) {
  lctx *x = luaL_checkudata(L, 1, LCHALK_CONTEXT);
  if (x->c && x->owned) ct_ctx_free(x->c);
  x->c = NULL;
  return 0;
}

/* Frees an owned context now, forgetting its address (a later context may reuse it). */
static void free_now(lua_State *L, lctx *x) {
  if (!x->c || !x->owned) return;
  lua_getfield(L, LUA_REGISTRYINDEX, LCHALK_CONTEXTS);
  lua_pushnil(L);
  lua_rawsetp(L, -2, x->c);
  lua_pop(L, 1);
  ct_ctx_free(x->c);
  x->c = NULL;
}

static int m_close(lua_State *L) {
  free_now(L, luaL_checkudata(L, 1, LCHALK_CONTEXT));
  return 0;
}

/* ctx:free(): frees a context made by chalk.context.new now (a `local <close>` one at scope end). */
static int m_free(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  if (!x->owned)
    return luaL_error(L, "context: rank %d's context was not made by chalk.context.new and cannot be freed",
                      ct_ctx_rank(x->c));
  free_now(L, x);
  return 0;
}

static int m_tostring(lua_State *L) {
  lctx *x = luaL_checkudata(L, 1, LCHALK_CONTEXT);
  if (!x->c) lua_pushstring(L, "context (freed)");
  else
    lua_pushfstring(L, "context(rank %d%s%s)", ct_ctx_rank(x->c), x->c == ct_ctx_default() ? ", default" : "",
                    x->c == ct_ctx_current() ? ", current" : "");
  return 1;
}

static int m_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, ct_ctx_grad_enabled(check_lctx(L, 1)->c));
  return 1;
}

static int m_set_grad_enabled(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  lua_pushboolean(L, ct_ctx_set_grad_enabled(x->c, lua_toboolean(L, 2)));
  return 1;
}

static int m_manual_seed(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  ct_ctx_manual_seed(x->c, (uint64_t)luaL_checkinteger(L, 2));
  return 0;
}

static int m_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_ctx_rng_seed(check_lctx(L, 1)->c));
  return 1;
}

static int m_memory_stats(lua_State *L) {
  lchalk_push_memory_stats(L, check_lctx(L, 1)->c);
  return 1;
}

static int m_reset_peak_memory(lua_State *L) {
  ct_ctx_mem_reset_peak(check_lctx(L, 1)->c);
  return 0;
}

/* ctx:clock(): microseconds, wall (since the event log started) or virtual. */
static int m_clock(lua_State *L) {
  lua_pushnumber(L, ct_ctx_clock_us(check_lctx(L, 1)->c));
  return 1;
}

/* ctx:set_clock(t_us): the context runs on a virtual clock from now on, reading t_us. */
static int m_set_clock(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  ct_ctx_set_virtual_clock(x->c, luaL_checknumber(L, 2));
  return 0;
}

static int m_advance(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  if (ct_ctx_advance_clock(x->c, luaL_checknumber(L, 2))) return lchalk_error(L);
  lua_pushnumber(L, ct_ctx_clock_us(x->c));
  return 1;
}

static int m_use_wall_clock(lua_State *L) {
  ct_ctx_use_wall_clock(check_lctx(L, 1)->c);
  return 0;
}

static int m_is_virtual_clock(lua_State *L) {
  lua_pushboolean(L, ct_ctx_clock_is_virtual(check_lctx(L, 1)->c));
  return 1;
}

static int m_set_stream(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  lua_Integer s = luaL_checkinteger(L, 2);
  luaL_argcheck(L, s >= 0 && s < 1 << 16, 2, "stream must be in 0 .. 65535");
  lua_pushinteger(L, ct_ctx_set_stream(x->c, (int)s));
  return 1;
}

static int m_stream(lua_State *L) {
  lua_pushinteger(L, ct_ctx_stream(check_lctx(L, 1)->c));
  return 1;
}

/* ---- hooks in Lua -------------------------------------------------------------------------
 * ctx:on_grad_ready(fn) / ctx:on_backward_end(fn) -> id; ctx:remove_hook(id). The function is kept
 * in the context userdata's user value under a key (the C hook's ud); it runs inside
 * x:backward() on the Lua thread that called it (lchalk_hook_state), so it cannot yield; an error
 * in it fails the backward. A context not made by chalk.context.new (the default) is anchored in
 * the registry while it has hooks, so its functions outlive its weak entry. */
#define LCHALK_HOOKED "chalk.contexts_hooked"

static _Thread_local lua_State *hook_L; /* the thread running x:backward(), NULL outside */

lua_State *lchalk_hook_state(lua_State *L) {
  lua_State *old = hook_L;
  hook_L = L;
  return old;
}

/* The user value of a context's userdata: {fns = {[key] = function}, ids = {[key] = core hook id}};
   the C hooks get the key as their ud. Pushes it (created on demand) for the userdata at idx. */
static void push_hook_tables(lua_State *L, int idx) {
  if (lua_getiuservalue(L, idx, 1) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  lua_setfield(L, -2, "fns");
  lua_newtable(L);
  lua_setfield(L, -2, "ids");
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, idx < 0 ? idx - 1 : idx, 1);
}

/* Pushes the function of hook key on the current context, or returns false (nothing pushed). */
static bool push_hook_fn(lua_State *L, int key) {
  int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LCHALK_CONTEXTS);
  if (lua_rawgetp(L, -1, ct_ctx_current()) == LUA_TUSERDATA && lua_getiuservalue(L, -1, 1) == LUA_TTABLE &&
      lua_getfield(L, -1, "fns") == LUA_TTABLE && lua_rawgeti(L, -1, key) == LUA_TFUNCTION) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return true;
  }
  lua_settop(L, top);
  return false;
}

static int call_hook(const char *what, int key, ct_tensor *t) {
  lua_State *L = hook_L;
  if (!L) return ct_errorf("%s hook: backward was not called from Lua, so the Lua hook cannot run", what);
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) return ct_errorf("%s hook: Lua stack overflow", what);
  if (!push_hook_fn(L, key)) return 0; /* removed while the backward ran */
  lchalk_pushtensor(L, ct_retain(t));
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc) ct_errorf("%s hook: %s", what, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error object is not a string");
  lua_settop(L, top);
  return rc ? -1 : 0;
}

static int grad_ready_hook(ct_tensor *leaf, void *ud) { return call_hook("grad-ready", (int)(intptr_t)ud, leaf); }
static int backward_end_hook(ct_tensor *root, void *ud) { return call_hook("backward-end", (int)(intptr_t)ud, root); }

static int add_lua_hook(lua_State *L, bool grad_ready) {
  static int next_key;
  lctx *x = check_lctx(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int key = ++next_key;
  void *ud = (void *)(intptr_t)key;
  int id = grad_ready ? ct_ctx_add_grad_ready_hook(x->c, grad_ready_hook, ud)
                      : ct_ctx_add_backward_end_hook(x->c, backward_end_hook, ud);
  if (id < 0) return lchalk_error(L);
  push_hook_tables(L, 1);
  lua_getfield(L, -1, "fns");
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, key);
  lua_getfield(L, -2, "ids");
  lua_pushinteger(L, id);
  lua_rawseti(L, -2, key);
  if (!x->owned) {
    lua_getfield(L, LUA_REGISTRYINDEX, LCHALK_HOOKED);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, -2, x->c);
  }
  lua_pushinteger(L, key);
  return 1;
}

static int m_on_grad_ready(lua_State *L) { return add_lua_hook(L, true); }
static int m_on_backward_end(lua_State *L) { return add_lua_hook(L, false); }

/* ctx:remove_hook(id): id as on_grad_ready / on_backward_end returned it. */
static int m_remove_hook(lua_State *L) {
  lctx *x = check_lctx(L, 1);
  lua_Integer key = luaL_checkinteger(L, 2);
  push_hook_tables(L, 1);
  lua_getfield(L, -1, "ids");
  if (lua_rawgeti(L, -1, key) != LUA_TNUMBER)
    return luaL_error(L, "remove_hook: rank %d's context has no Lua hook %d", ct_ctx_rank(x->c), (int)key);
  if (ct_ctx_remove_hook(x->c, (int)lua_tointeger(L, -1))) return lchalk_error(L);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawseti(L, -2, key);
  lua_getfield(L, -2, "fns");
  lua_pushnil(L);
  lua_rawseti(L, -2, key);
  if (!x->owned && ct_ctx_hook_count(x->c, CT_HOOK_GRAD_READY) + ct_ctx_hook_count(x->c, CT_HOOK_BACKWARD_END) == 0) {
    lua_getfield(L, LUA_REGISTRYINDEX, LCHALK_HOOKED);
    lua_pushnil(L);
    lua_rawsetp(L, -2, x->c);
  }
  return 0;
}

/* ctx.rank is a field; everything else a method. */
static int m_index(lua_State *L) {
  lctx *x = luaL_checkudata(L, 1, LCHALK_CONTEXT);
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "rank")) {
    if (!x->c) return luaL_error(L, "context: this context was freed");
    lua_pushinteger(L, ct_ctx_rank(x->c));
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

void lchalk_open_context(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  lua_newtable(L); /* weak-valued pointer -> userdata */
  lua_createtable(L, 0, 1);
  lua_pushstring(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, LCHALK_CONTEXTS);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LCHALK_HOOKED);

  static const luaL_Reg ms[] = {{"is_grad_enabled", m_is_grad_enabled},
                                {"set_grad_enabled", m_set_grad_enabled},
                                {"manual_seed", m_manual_seed},
                                {"initial_seed", m_initial_seed},
                                {"memory_stats", m_memory_stats},
                                {"reset_peak_memory", m_reset_peak_memory},
                                {"clock", m_clock},
                                {"set_clock", m_set_clock},
                                {"advance", m_advance},
                                {"use_wall_clock", m_use_wall_clock},
                                {"is_virtual_clock", m_is_virtual_clock},
                                {"stream", m_stream},
                                {"set_stream", m_set_stream},
                                {"on_grad_ready", m_on_grad_ready},
                                {"on_backward_end", m_on_backward_end},
                                {"remove_hook", m_remove_hook},
                                {"free", m_free},
                                {NULL, NULL}};
  luaL_newlib(L, ms);
  int mt = lua_gettop(L);
  luaL_newmetatable(L, LCHALK_CONTEXT);
  lua_pushvalue(L, mt);
  lua_pushcclosure(L, m_index, 1);
  lua_setfield(L, -2, "__index");
  static const luaL_Reg metamethods[] = {
      {"__gc", m_gc}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL}};
  luaL_setfuncs(L, metamethods, 0);
  lua_pop(L, 1);

  static const luaL_Reg fns[] = {
      {"new", l_new}, {"current", l_current}, {"default", l_default}, {"switch", l_switch}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushvalue(L, mt);
  lua_setfield(L, -2, "Context"); /* the methods (chalk/core.lua adds run, resume, wrap) */
  lua_setfield(L, chalk, "context");
  lua_pop(L, 1);
}
