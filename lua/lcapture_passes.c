/* lcapture_passes.c: Graph:optimize (pass reports and their printing), Graph:explain, Graph:source. */
#include <string.h>

#include "lcapture.h"
#include "obs/profile.h"

static const lcap_field report_fields[] = {
    LCAP_FIELD(ct_pass_report, changes),       LCAP_FIELD(ct_pass_report, nodes_before),
    LCAP_FIELD(ct_pass_report, nodes_after),   LCAP_FIELD(ct_pass_report, kernels_before),
    LCAP_FIELD(ct_pass_report, kernels_after), LCAP_FIELD(ct_pass_report, bytes_before),
    LCAP_FIELD(ct_pass_report, bytes_after),   LCAP_FIELD(ct_pass_report, flops_before),
    LCAP_FIELD(ct_pass_report, flops_after)};

static void push_report(lua_State *L, const ct_pass_report *r) {
  lcap_push_fields(L, r, report_fields, LCAP_NFIELDS(report_fields));
  lcap_set_str(L, "pass", r->pass);
  luaL_setmetatable(L, "chalk.PassReport");
}

int lcap_report_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  char b1[32], b2[32];
  lcap_get_fields(L, 1,
                  (const char *const[]){"bytes_before", "bytes_after", "pass", "changes", "nodes_before", "nodes_after",
                                        "kernels_before", "kernels_after", NULL});
  ct_format_bytes(lua_tonumber(L, -8), b1, sizeof b1);
  ct_format_bytes(lua_tonumber(L, -7), b2, sizeof b2);
  int changes = (int)lua_tointeger(L, -5);
  lua_pushfstring(L, "%s: %d change%s; nodes %d -> %d, kernels %d -> %d, bytes moved %s -> %s", lua_tostring(L, -6),
                  changes, changes == 1 ? "" : "s", (int)lua_tointeger(L, -4), (int)lua_tointeger(L, -3),
                  (int)lua_tointeger(L, -2), (int)lua_tointeger(L, -1), b1, b2);
  return 1;
}

/* print(g:optimize{...}): one line per pass */
int lcap_reports_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    luaL_addvalue(&b);
    if (i < n) luaL_addchar(&b, '\n');
  }
  luaL_pushresult(&b);
  return 1;
}

static void read_pass_opts(lua_State *L, int idx, ct_pass_opts *o) {
  memset(o, 0, sizeof *o);
  if (!lua_istable(L, idx)) return;
  lua_getfield(L, idx, "segments");
  o->segments = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "full");
  o->full_recompute = lua_toboolean(L, -1);
  lua_getfield(L, idx, "max_inputs");
  o->max_inputs = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "reductions");
  o->no_reductions = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 4);
}

/* g:optimize("fuse") | g:optimize{"dce", "cse", fuse = {max_inputs = 8}, checkpoint = {segments = 4}}
   -> list of reports, one per pass run, in order (array part first, then keyed passes) */
int lcap_g_optimize(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  lua_newtable(L);
  luaL_setmetatable(L, "chalk.PassReports");
  int res = lua_gettop(L), nres = 0;
  if (lua_type(L, 2) == LUA_TSTRING) {
    ct_pass_opts o;
    read_pass_opts(L, 3, &o);
    ct_pass_report r;
    if (ct_graph_optimize(g, lua_tostring(L, 2), &o, &r)) return lchalk_error(L);
    push_report(L, &r);
    lua_rawseti(L, res, ++nres);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    const char *pass = lua_tostring(L, -1);
    if (!pass) return luaL_error(L, "optimize: pass %d is not a name", (int)i);
    ct_pass_opts o;
    lua_getfield(L, 2, pass); /* options given under the same name too */
    read_pass_opts(L, lua_gettop(L), &o);
    lua_pop(L, 1);
    ct_pass_report r;
    if (ct_graph_optimize(g, pass, &o, &r)) return lchalk_error(L);
    lua_pop(L, 1);
    push_report(L, &r);
    lua_rawseti(L, res, ++nres);
  }
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
      const char *pass = lua_tostring(L, -2);
      bool listed = false;
      for (lua_Integer i = 1; i <= n && !listed; i++) {
        lua_geti(L, 2, i);
        listed = lua_isstring(L, -1) && !strcmp(lua_tostring(L, -1), pass);
        lua_pop(L, 1);
      }
      if (!listed) {
        ct_pass_opts o;
        read_pass_opts(L, lua_gettop(L), &o);
        ct_pass_report r;
        if (ct_graph_optimize(g, pass, &o, &r)) return lchalk_error(L);
        push_report(L, &r);
        lua_rawseti(L, res, ++nres);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, res);
  return 1;
}

int lcap_g_explain(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  const char *pass = luaL_checkstring(L, 2);
  const char *s = ct_graph_explain(g, pass);
  if (!s)
    return luaL_error(L, "explain: unknown pass \"%s\" (dce, cse, fold, algebra, fuse, checkpoint, autotune)", pass);
  lua_pushstring(L, s);
  return 1;
}

/* g:source(node [, "c"|"cuda"]): node is a 1-based node index (print(g) shows them) */
int lcap_g_source(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  const char *lang = luaL_optstring(L, 3, "c");
  const char *s = ct_graph_source(g, (int)i - 1, lang);
  if (!s) return lchalk_error(L);
  lua_pushstring(L, s);
  return 1;
}
