/* lcapture_plan.c: Graph:plan_memory (the plan report and its printing), verify_plan, buffers, live. */
#include <string.h>

#include "lcapture.h"
#include "obs/profile.h"

static const char *const strategy_names[] = {"bestfit", "greedy", "naive", NULL};

static void push_plan(lua_State *L, const ct_plan_report *r) {
  lua_createtable(L, 0, 10);
  lcap_set_int(L, "naive", r->naive_bytes);
  lcap_set_int(L, "planned", r->planned_bytes);
  lcap_set_int(L, "lower_bound", r->lower_bound);
  lcap_set_int(L, "pinned", r->pinned_bytes);
  lcap_set_int(L, "activation_peak", r->activation_peak);
  lcap_set_int(L, "external", r->external_bytes);
  lcap_set_int(L, "buffers", r->nbuffers);
  lcap_set_int(L, "inplace", r->ninplace);
  lcap_set_int(L, "inplace_candidates", r->ninplace_candidates);
  lcap_set_str(L, "strategy", strategy_names[r->strategy]);
  luaL_setmetatable(L, "chalk.PlanReport");
}

int lcap_plan_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  char a[32], b[32], c[32], d[32];
  lua_getfield(L, 1, "naive");
  lua_getfield(L, 1, "planned");
  lua_getfield(L, 1, "lower_bound");
  lua_getfield(L, 1, "pinned");
  lua_getfield(L, 1, "buffers");
  lua_getfield(L, 1, "inplace");
  lua_getfield(L, 1, "strategy");
  lua_pushfstring(L,
                  "memory plan (%s): naive sum %s, planned peak %s, live lower bound %s; %d tensors in the arena, "
                  "%d in place; %s of outputs and gradients outside it",
                  lua_tostring(L, -1), ct_format_bytes(lua_tonumber(L, -7), a, sizeof a),
                  ct_format_bytes(lua_tonumber(L, -6), b, sizeof b), ct_format_bytes(lua_tonumber(L, -5), c, sizeof c),
                  (int)lua_tointeger(L, -3), (int)lua_tointeger(L, -2),
                  ct_format_bytes(lua_tonumber(L, -4), d, sizeof d));
  return 1;
}

/* g:plan_memory{strategy="bestfit"|"greedy"|"naive", inplace=true, keep_all=false} -> report */
int lcap_g_plan_memory(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  ct_plan_opts o;
  memset(&o, 0, sizeof o);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "strategy");
    o.strategy = (ct_plan_strategy)luaL_checkoption(L, -1, "bestfit", strategy_names);
    lua_getfield(L, 2, "inplace");
    o.no_inplace = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
    lua_getfield(L, 2, "keep_all");
    o.keep_all = lua_toboolean(L, -1);
    lua_pop(L, 3);
  }
  ct_plan_report r;
  if (ct_graph_plan_memory(g, &o, &r)) return lchalk_error(L);
  push_plan(L, &r);
  return 1;
}

int lcap_g_verify_plan(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  if (ct_graph_verify_plan(g)) return lchalk_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* g:buffers() -> {{offset=, size=, first=, last=, name=, values=}, ...} (positions 1-based) */
int lcap_g_buffers(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int n = ct_graph_plan_nbuffers(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    ct_plan_buffer b;
    ct_graph_plan_buffer(g, i, &b);
    lua_createtable(L, 0, 6);
    lcap_set_int(L, "offset", b.offset);
    lcap_set_int(L, "size", b.nbytes);
    lcap_set_int(L, "first", b.first + 1);
    lcap_set_int(L, "last", b.last + 1);
    lcap_set_int(L, "values", b.nvalues);
    ct_gvalue_info vi;
    ct_graph_value(g, b.value, &vi);
    if (vi.name) {
      lua_pushstring(L, vi.name);
    } else { /* what made it: "relu %12" */
      ct_gnode_info ni;
      ct_graph_node(g, vi.producer, &ni);
      lua_pushfstring(L, "%s %%%d", ni.op == CT_GOP_FUSED ? "fused" : ni.name, b.value);
    }
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* g:live() -> live arena bytes while each node runs (the planned memory timeline) */
int lcap_g_live(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int n = ct_graph_nnodes(g);
  if (ct_graph_plan_live_at(g, 0) < 0) return luaL_error(L, "live: call g:plan_memory() first");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, ct_graph_plan_live_at(g, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
