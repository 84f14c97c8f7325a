/* lcapture.h: what lua/lcapture*.c share: the Graph userdata and the functions luaopen_chalk_capture
 * registers from the split files (passes, plan, tune, checkpoint). Internal to lua/. */
#ifndef LCAPTURE_H
#define LCAPTURE_H

#include "graph/capture.h"
#include "lchalk_internal.h"

#define LCAPTURE_GRAPH "chalk.Graph"

typedef struct {
  ct_graph *g;
} graph_box;

/* t[k] = v on the table at the top of the stack (a NULL string leaves the field absent). */
static inline void lcap_set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}
static inline void lcap_set_num(lua_State *L, const char *k, lua_Number v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}
static inline void lcap_set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}
static inline void lcap_set_str(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* The open graph at stack index idx (raises on a closed one or a non-Graph). */
ct_graph *lcap_check_graph(lua_State *L, int idx);

int lcap_report_tostring(lua_State *L);
int lcap_reports_tostring(lua_State *L);
int lcap_g_optimize(lua_State *L);
int lcap_g_explain(lua_State *L);
int lcap_g_source(lua_State *L);
int lcap_plan_tostring(lua_State *L);
int lcap_g_plan_memory(lua_State *L);
int lcap_g_verify_plan(lua_State *L);
int lcap_g_buffers(lua_State *L);
int lcap_g_live(lua_State *L);
int lcap_g_autotune(lua_State *L);
int lcap_l_autotune_matmul(lua_State *L);
int lcap_l_autotune_cached(lua_State *L);
int lcap_l_matmul_tiled(lua_State *L);
int lcap_l_checkpoint(lua_State *L);

#endif
