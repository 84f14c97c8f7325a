/* lsim_des.c: chalk.sim_des, the Lua handle on the discrete-event engine (core/sim/des.h):
 *   d = require("chalk.sim_des").new(ngpus)
 *   d:at(t, kind, id) -> seq     d:cancel(seq)     d:pop() -> t, kind, id (nil when empty)
 *   d:acquire(job, {gpus})       d:release(job, {gpus})   (GPUs 1-based, jobs 0-based indices)
 *   d:peek() -> t of the next event (nil when empty)
 *   d:now()  d:nfree()  d:holder(g)  d:held(job)  d:mark(name, job, gpu)  d:check()
 * Every breach of an invariant (a GPU holding two jobs, a partial gang, time running backwards)
 * raises a Lua error with the engine's message. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

#include "chalk.h"
#include "lchalk.h"
#include "sim/des.h"

#define LSIM_DES "chalk.sim_des"
#define MAXGANG 4096

static ct_des *check_des(lua_State *L) {
  return lchalk_handle_check(L, 1, LSIM_DES, "sim_des: used after free");
}

static int l_new(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  void **h = lchalk_handle_new(L, LSIM_DES);
  if (!(*h = ct_des_new(n))) lchalk_error(L);
  return 1;
}

static int l_gc(lua_State *L) {
  ct_des_free(lchalk_handle_take(L, 1, LSIM_DES));
  return 0;
}

static int l_at(lua_State *L) {
  ct_des *d = check_des(L);
  uint64_t seq;
  if (ct_des_at(d, luaL_checknumber(L, 2), (int)luaL_checkinteger(L, 3), luaL_optinteger(L, 4, 0), &seq))
    lchalk_error(L);
  lua_pushinteger(L, (lua_Integer)seq);
  return 1;
}

static int l_cancel(lua_State *L) {
  if (ct_des_cancel(check_des(L), (uint64_t)luaL_checkinteger(L, 2))) lchalk_error(L);
  return 0;
}

static int l_pop(lua_State *L) {
  ct_des_event e;
  int r = ct_des_pop(check_des(L), &e);
  if (r < 0) lchalk_error(L);
  if (r == 0) return 0;
  lua_pushnumber(L, e.t);
  lua_pushinteger(L, e.kind);
  lua_pushinteger(L, e.id);
  return 3;
}

static int l_peek(lua_State *L) {
  double t;
  if (!ct_des_peek(check_des(L), &t)) return 0;
  lua_pushnumber(L, t);
  return 1;
}

/* the 1-based GPU list at index 3 as 0-based indices */
static int gpu_list(lua_State *L, int *res) {
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 3);
  if (n < 1 || n > MAXGANG) luaL_error(L, "sim_des: a gang of %d GPUs (1..%d)", (int)n, MAXGANG);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 3, i);
    res[i - 1] = (int)luaL_checkinteger(L, -1) - 1;
    lua_pop(L, 1);
  }
  return (int)n;
}

/* d:acquire(job, {gpus}) and d:release(job, {gpus}): one gang operation of the engine. */
static int gang_op(lua_State *L, int (*op)(ct_des *d, int64_t job, int n, const int *res)) {
  ct_des *d = check_des(L);
  int res[MAXGANG];
  int n = gpu_list(L, res);
  if (op(d, luaL_checkinteger(L, 2), n, res)) lchalk_error(L);
  return 0;
}

static int l_acquire(lua_State *L) { return gang_op(L, ct_des_acquire); }
static int l_release(lua_State *L) { return gang_op(L, ct_des_release); }

static int l_now(lua_State *L) {
  lua_pushnumber(L, ct_des_now(check_des(L)));
  return 1;
}
static int l_nfree(lua_State *L) {
  lua_pushinteger(L, ct_des_nfree(check_des(L)));
  return 1;
}
static int l_holder(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_des_holder(check_des(L), (int)luaL_checkinteger(L, 2) - 1));
  return 1;
}
static int l_held(lua_State *L) {
  lua_pushinteger(L, ct_des_held(check_des(L), luaL_checkinteger(L, 2)));
  return 1;
}
static int l_mark(lua_State *L) {
  ct_des *d = check_des(L);
  const char *name = luaL_checkstring(L, 2);
  /* event names are static strings: only the engine's known marks */
  static const char *const names[] = {"sim.preempt", "sim.fail", "sim.demote", "sim.checkpoint", NULL};
  int k = luaL_checkoption(L, 2, NULL, names);
  (void)name;
  ct_des_mark(d, names[k], luaL_checkinteger(L, 3), (int)luaL_optinteger(L, 4, 0) - 1);
  return 0;
}
static int l_check(lua_State *L) {
  if (ct_des_check(check_des(L))) lchalk_error(L);
  return 0;
}

int luaopen_chalk_sim_des(lua_State *L);
int luaopen_chalk_sim_des(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"at", l_at},           {"cancel", l_cancel}, {"pop", l_pop},     {"peek", l_peek},     {"acquire", l_acquire},
      {"release", l_release}, {"now", l_now},       {"nfree", l_nfree}, {"holder", l_holder}, {"held", l_held},
      {"mark", l_mark},       {"check", l_check},   {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_gc}, {NULL, NULL}};
  lchalk_handle_class(L, LSIM_DES, methods, meta);
  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  return 1;
}
