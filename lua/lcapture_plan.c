/* lcapture_plan.c: Graph:plan_memory (the plan report and its printing), verify_plan, buffers, live. */
#include <string.h>

#include "lcapture.h"
#include "obs/profile.h"

static const char *const strategy_names[] = {"bestfit", "greedy", "naive", NULL};

static const lcap_field plan_fields[] = {LCAP_FIELD_AS(ct_plan_report, naive_bytes, "naive"),
                                         LCAP_FIELD_AS(ct_plan_report, planned_bytes, "planned"),
                                         LCAP_FIELD(ct_plan_report, lower_bound),
                                         LCAP_FIELD_AS(ct_plan_report, pinned_bytes, "pinned"),
                                         LCAP_FIELD(ct_plan_report, activation_peak),
                                         LCAP_FIELD_AS(ct_plan_report, external_bytes, "external"),
                                         LCAP_FIELD_AS(ct_plan_report, nbuffers, "buffers"),
                                         LCAP_FIELD_AS(ct_plan_report, ninplace, "inplace"),
                                         LCAP_FIELD_AS(ct_plan_report, ninplace_candidates, "inplace_candidates")};

static void push_plan(lua_State *L, const ct_plan_report *r) {
  lcap_push_fields(L, r, plan_fields, LCAP_NFIELDS(plan_fields));
  lcap_set_str(L, "strategy", strategy_names[r->strategy]);
  luaL_setmetatable(L, "chalk.PlanReport");
}

int lcap_plan_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  char a[32], b[32], c[32], d[32];
  lcap_get_fields(
      L, 1, (const char *const[]){"naive", "planned", "lower_bound", "pinned", "buffers", "inplace", "strategy", NULL});
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

static const lcap_field buffer_fields[] = {LCAP_FIELD(ct_plan_buffer, offset),
                                           LCAP_FIELD_AS(ct_plan_buffer, nbytes, "size"),
                                           LCAP_POSITION(ct_plan_buffer, first), LCAP_POSITION(ct_plan_buffer, last),
                                           LCAP_FIELD_AS(ct_plan_buffer, nvalues, "values")};

static void push_buffer(lua_State *L, ct_graph *g, int i) {
  ct_plan_buffer b;
  ct_graph_plan_buffer(g, i, &b);
  lcap_push_fields(L, &b, buffer_fields, LCAP_NFIELDS(buffer_fields));
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
}

/* g:buffers() -> {{offset=, size=, first=, last=, name=, values=}, ...} (positions 1-based) */
int lcap_g_buffers(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  lcap_push_list(L, g, ct_graph_plan_nbuffers(g), push_buffer);
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
