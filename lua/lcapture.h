/* lcapture.h: what lua/lcapture*.c share: the Graph userdata and the functions luaopen_chalk_capture
 * registers from the split files (passes, plan, tune, checkpoint). Internal to lua/. */
#ifndef LCAPTURE_H
#define LCAPTURE_H

#include <stddef.h>

#include "graph/capture.h"
#include "lchalk_internal.h"

#define LCAPTURE_GRAPH "chalk.Graph"

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

/* A struct's fields as a new Lua table, read through a table of {key, offset, type}: LCAP_FIELD takes
   the type from the member (int, int64_t, double, bool; a non-listed type does not compile) and
   LCAP_POSITION reads an int index that Lua sees 1-based; the key is the member's name unless given. */
typedef enum { LCAP_INT, LCAP_I64, LCAP_NUM, LCAP_BOOL, LCAP_POS } lcap_kind;
typedef struct {
  const char *key;
  size_t offset;
  lcap_kind kind;
} lcap_field;
#define LCAP_KIND(x) _Generic((x), int : LCAP_INT, int64_t : LCAP_I64, double : LCAP_NUM, bool : LCAP_BOOL)
#define LCAP_FIELD_AS(T, member, key)                                                                                  \
  { key, offsetof(T, member), LCAP_KIND(((T *)0)->member) }
#define LCAP_FIELD(T, member) LCAP_FIELD_AS(T, member, #member)
#define LCAP_POSITION(T, member)                                                                                       \
  { #member, offsetof(T, member), _Generic(((T *)0)->member, int : LCAP_POS) }
#define LCAP_NFIELDS(fields) ((int)(sizeof(fields) / sizeof *(fields)))
void lcap_push_fields(lua_State *L, const void *rec, const lcap_field *fields, int n);
/* Pushes the fields keys[0], keys[1], ... (up to a NULL) of the table at idx, in that order. */
void lcap_get_fields(lua_State *L, int idx, const char *const *keys);
/* A new list of n entries of graph g, entry i (0-based) pushed by push_entry (1-based in Lua). */
void lcap_push_list(lua_State *L, ct_graph *g, int n, void (*push_entry)(lua_State *L, ct_graph *g, int i));

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
