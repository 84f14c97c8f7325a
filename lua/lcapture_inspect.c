/* lcapture_inspect.c: chalk.capture_inspect, what the superoptimizer (lua/chalk/superopt.lua)
 * reads from a captured Graph beyond g:nodes() and g:value(): a node's attributes and the tensor
 * an external value is bound to.
 *
 *   a = ci.attrs(g, i)    -- node i (1-based, live nodes): {f = {4 floats}, i = {6 ints},
 *                         --   dims = {reduced dims, 1-based}, keepdim =, shape = {target shape}}
 *   vs = ci.input_values(g)   -- the value ids (0-based) of the step's arguments, in order
 *   t = ci.tensor(g, v)   -- the tensor external value v (0-based id, as in g:nodes()) is bound
 *                         --   to (a new reference), or nil for a value a node produces
 *
 * Invariant: read only, through graph/capture.h's accessors; the Graph userdata (lua/lcapture.c,
 * "chalk.Graph") holds the ct_graph pointer as its first field, which is all this file assumes of it. */
#include "graph/capture.h"
#include "lchalk_internal.h"

static ct_graph *check_graph(lua_State *L, int idx) {
  ct_graph **b = luaL_checkudata(L, idx, "chalk.Graph");
  if (!*b) luaL_error(L, "graph was closed");
  return *b;
}

static int l_attrs(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int i = (int)luaL_checkinteger(L, 2) - 1;
  ct_gnode_info info;
  if (ct_graph_node(g, i, &info)) return lchalk_error(L);
  const ct_attrs *a = info.attrs;
  lua_createtable(L, 0, 5);
  lua_createtable(L, 4, 0);
  for (int k = 0; k < 4; k++) lua_pushnumber(L, a->f[k]), lua_rawseti(L, -2, k + 1);
  lua_setfield(L, -2, "f");
  lua_createtable(L, 6, 0);
  for (int k = 0; k < 6; k++) lua_pushinteger(L, a->i[k]), lua_rawseti(L, -2, k + 1);
  lua_setfield(L, -2, "i");
  lua_newtable(L);
  for (int d = 0, j = 1; d < 32; d++)
    if (a->mask & (1u << d)) lua_pushinteger(L, d + 1), lua_rawseti(L, -2, j++);
  lua_setfield(L, -2, "dims");
  lua_pushboolean(L, a->keepdim);
  lua_setfield(L, -2, "keepdim");
  lua_createtable(L, a->ndim, 0);
  for (int k = 0; k < a->ndim; k++) lua_pushinteger(L, a->shape[k]), lua_rawseti(L, -2, k + 1);
  lua_setfield(L, -2, "shape");
  return 1;
}

static int l_tensor(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  lua_Integer v = luaL_checkinteger(L, 2);
  int nv = ct_graph_nvalues(g);
  ct_gvalue_info info;
  if (v < 0 || v >= nv) return luaL_error(L, "capture_inspect: value %d out of range (%d values)", (int)v, nv);
  if (ct_graph_value(g, (int)v, &info)) return lchalk_error(L);
  if (!info.tensor) {
    lua_pushnil(L);
    return 1;
  }
  return lchalk_pushtensor(L, ct_retain(info.tensor));
}

static int l_input_values(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int n = ct_graph_ninputs(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) lua_pushinteger(L, ct_graph_input_value(g, i)), lua_rawseti(L, -2, i + 1);
  return 1;
}

int luaopen_chalk_capture_inspect(lua_State *L);
int luaopen_chalk_capture_inspect(lua_State *L) {
  static const luaL_Reg fns[] = {{"attrs", l_attrs}, {"tensor", l_tensor}, {"input_values", l_input_values}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
