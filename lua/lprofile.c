/* lprofile.c: chalk.profile(fn, ...) and the profile object: print(prof) gives the op table,
 * prof:export_chrome(path) the Chrome trace, prof:summary() the numbers as a Lua table.
 * Invariants: the userdata owns its ct_profile (freed by __gc); the profile is stopped before fn's
 * error is re-raised, so the event log never stays on behind the user's back. */
#include <stdlib.h>
#include <string.h>

#include "lchalk.h"
#include "lviz.h"
#include "viz.h"

ct_profile *lviz_checkprofile(lua_State *L, int idx) {
  return lchalk_handle_check(L, idx, LVIZ_PROFILE, "profile is empty (it failed to record)");
}

static int profile_gc(lua_State *L) {
  ct_profile_free(lchalk_handle_take(L, 1, LVIZ_PROFILE));
  return 0;
}

/* chalk.profile(fn, ...) -> prof, fn's results */
static int l_profile(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - 1;
  void **h = lchalk_handle_new(L, LVIZ_PROFILE);
  lua_insert(L, 1); /* prof, fn, args... */
  lua_gc(L, LUA_GCCOLLECT); /* garbage tensors of before are freed before, not during, the profile */
  ct_profile *p = *h = ct_profile_start();
  if (!p) return luaL_error(L, "%s", ct_last_error());
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  if (ct_profile_stop(p) && status == LUA_OK) return luaL_error(L, "%s", ct_last_error());
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int profile_tostring(lua_State *L) {
  ct_profile *p = lviz_checkprofile(L, 1);
  size_t n = ct_profile_format(p, NULL, 0) + 1;
  luaL_Buffer lb;
  char *s = luaL_buffinitsize(L, &lb, n);
  ct_profile_format(p, s, n);
  luaL_pushresultsize(&lb, strlen(s));
  return 1;
}

/* prof:print([{top=N}]): print(prof), with only the N ops that took longest when top is given
 * (the table lists ops by time, so the first N rows) and a line counting the ones left out. */
static int profile_print(lua_State *L) {
  lviz_checkprofile(L, 1);
  lua_Integer top = -1;
  if (lua_istable(L, 2) && lua_getfield(L, 2, "top") != LUA_TNIL) {
    top = luaL_checkinteger(L, -1);
    luaL_argcheck(L, top >= 0, 2, "top must be 0 or more");
  }
  lua_settop(L, 1);
  profile_tostring(L);
  const char *s = lua_tostring(L, -1);
  lua_Integer row = 0, hidden = 0;
  bool in_ops = false, done = false;
  for (const char *line = s; *line;) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    if (row == 1) in_ops = true; /* the line after the summary is the header */
    bool op_row = in_ops && row >= 2 && !done && len > 0 && strncmp(line, "memory", 6) != 0;
    if (in_ops && row >= 2 && !op_row) done = true;
    if (done && hidden > 0) {
      printf("... %lld more ops (prof:print() lists them all)\n", (long long)hidden);
      hidden = 0;
    }
    if (op_row && top >= 0 && row - 2 >= top)
      hidden++;
    else
      printf("%.*s\n", (int)len, line);
    row++;
    line += len + (eol ? 1 : 0);
  }
  if (hidden > 0) printf("... %lld more ops (prof:print() lists them all)\n", (long long)hidden);
  fflush(stdout);
  return 0;
}

/* prof:export_chrome(path) -> path */
static int profile_export_chrome(lua_State *L) {
  ct_profile *p = lviz_checkprofile(L, 1);
  const char *path = luaL_optstring(L, 2, "trace.json");
  if (viz_chrome_write(p, path)) return luaL_error(L, "%s", ct_last_error());
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) lua_pushstring(L, path);
  return 1;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}
static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_ops(lua_State *L, ct_profile *p) {
  ct_prof_op *rows = NULL;
  int n = ct_profile_ops(p, &rows);
  if (n < 0) luaL_error(L, "%s", ct_last_error());
  double wall = ct_profile_duration_us(p);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const ct_prof_op *r = &rows[i];
    lua_createtable(L, 0, 9);
    lua_pushstring(L, r->name);
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, r->backward);
    lua_setfield(L, -2, "backward");
    set_int(L, "calls", r->calls);
    set_num(L, "total_ms", r->self_us / 1e3);
    set_num(L, "mean_us", r->self_us / (double)r->calls);
    set_num(L, "flops", r->flops);
    set_num(L, "bytes", r->bytes);
    set_num(L, "gflops", r->self_us > 0 ? r->flops / r->self_us / 1e3 : 0);
    set_num(L, "gbs", r->self_us > 0 ? r->bytes / r->self_us / 1e3 : 0);
    set_num(L, "share", wall > 0 ? r->self_us / wall : 0);
    lua_rawseti(L, -2, i + 1);
  }
  free(rows); /* nothing above raises but memory errors, which Lua reports as such */
}

/* prof:ops() -> list of rows, largest time first */
static int profile_ops(lua_State *L) {
  push_ops(L, lviz_checkprofile(L, 1));
  return 1;
}

/* prof:summary() -> {wall_ms, busy_ms (some op running), ops_ms (sum over ops), nops, ops = rows,
   memory = {cpu = {...}, cuda = {...}}} */
static int profile_summary(lua_State *L) {
  ct_profile *p = lviz_checkprofile(L, 1);
  lua_newtable(L);
  set_num(L, "wall_ms", ct_profile_duration_us(p) / 1e3);
  set_num(L, "busy_ms", ct_profile_busy_us(p) / 1e3);
  push_ops(L, p);
  double op_ms = 0;
  lua_Integer nops = 0;
  for (lua_Integer i = 1; i <= (lua_Integer)luaL_len(L, -1); i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "total_ms");
    op_ms += lua_tonumber(L, -1);
    lua_getfield(L, -2, "calls");
    nops += lua_tointeger(L, -1);
    lua_pop(L, 3);
  }
  lua_setfield(L, -2, "ops");
  set_num(L, "ops_ms", op_ms);
  set_int(L, "nops", nops);
  lua_newtable(L);
  unsigned devs = ct_profile_devices(p);
  for (int d = 0; d < CT_NDEVTYPES; d++) {
    if (!(devs & (1u << d))) continue;
    ct_prof_memory m;
    if (ct_profile_memory(p, (ct_devtype)d, &m)) return luaL_error(L, "%s", ct_last_error());
    lua_newtable(L);
    set_int(L, "peak", m.peak);
    set_int(L, "peak_op_index", m.peak_slot + 1);
    lua_pushstring(L, m.slot_op[m.peak_slot]);
    lua_setfield(L, -2, "peak_op");
    lua_newtable(L);
    for (int c = 0; c < CT_NCATS; c++) set_int(L, ct_category_name((ct_category)c), m.peak_by_cat[c]);
    lua_setfield(L, -2, "at_peak");
    lua_newtable(L);
    for (int c = 0; c < CT_NCATS; c++) set_int(L, ct_category_name((ct_category)c), m.max_by_cat[c]);
    lua_setfield(L, -2, "max");
    lua_createtable(L, m.nat_peak, 0);
    for (int i = 0; i < m.nat_peak; i++) {
      lua_createtable(L, 0, 3);
      lua_pushstring(L, m.at_peak[i].label);
      lua_setfield(L, -2, "label");
      set_int(L, "bytes", m.at_peak[i].nbytes);
      lua_pushstring(L, ct_category_name(m.at_peak[i].category));
      lua_setfield(L, -2, "category");
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "live_at_peak");
    ct_prof_memory_free(&m);
    lua_setfield(L, -2, d == CT_CPU ? "cpu" : "cuda");
  }
  lua_setfield(L, -2, "memory");
  return 1;
}

/* prof:events() -> list of {kind, name, label, t0, t1 (us from the start), device, stream, rank, bytes, ...};
   messages and collectives add comm = {rank, peer, step, chunk, seq, group, size, algo, coll, recv},
   ranks, steps and chunks 1-based (0: none), rank == the event's rank on a dist worker */
static int profile_events(lua_State *L) {
  ct_profile *p = lviz_checkprofile(L, 1);
  size_t n = ct_profile_nevents(p);
  double ts = ct_profile_start_us(p);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const ct_event *e = ct_profile_event(p, i);
    char dv[24];
    lua_createtable(L, 0, 10);
    lua_pushstring(L, ct_event_kind_name(e->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, e->name ? e->name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, e->label);
    lua_setfield(L, -2, "label");
    set_num(L, "t0", e->t0 - ts);
    set_num(L, "t1", e->t1 - ts);
    lua_pushstring(L, ct_device_str(e->device, dv, sizeof dv));
    lua_setfield(L, -2, "device");
    set_int(L, "stream", e->stream);
    set_int(L, "rank", e->rank);
    lua_pushboolean(L, ct_profile_phase(p, i) == CT_PHASE_BACKWARD);
    lua_setfield(L, -2, "backward");
    if (e->kind == CT_EV_ALLOC || e->kind == CT_EV_FREE || e->kind == CT_EV_COPY) {
      set_int(L, "bytes", e->nbytes);
      lua_pushstring(L, ct_category_name(e->category));
      lua_setfield(L, -2, "category");
    } else if (e->kind == CT_EV_OP) {
      set_num(L, "flops", e->flops);
      set_num(L, "bytes", e->bytes);
    } else if (e->kind == CT_EV_MESSAGE || e->kind == CT_EV_COLLECTIVE) { /* core/dist; ranks 1-based here */
      set_num(L, "bytes", e->bytes);
      lua_createtable(L, 0, 10);
      set_int(L, "rank", e->comm.rank + 1);
      set_int(L, "peer", e->comm.peer + 1);
      set_int(L, "step", e->comm.step + 1);
      set_int(L, "chunk", e->comm.chunk + 1);
      set_int(L, "seq", e->comm.seq);
      set_int(L, "group", e->comm.group);
      set_int(L, "size", e->comm.group_size);
      lua_pushstring(L, e->comm.algo ? e->comm.algo : "");
      lua_setfield(L, -2, "algo");
      lua_pushstring(L, e->comm.coll ? e->comm.coll : "");
      lua_setfield(L, -2, "coll");
      lua_pushboolean(L, e->comm.recv);
      lua_setfield(L, -2, "recv");
      lua_setfield(L, -2, "comm");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

int luaopen_chalk_profile(lua_State *L) {
  static const luaL_Reg methods[] = {{"export_chrome", profile_export_chrome},
                                     {"print", profile_print},
                                     {"summary", profile_summary},
                                     {"ops", profile_ops},
                                     {"events", profile_events},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", profile_gc}, {"__tostring", profile_tostring}, {NULL, NULL}};
  lchalk_handle_class(L, LVIZ_PROFILE, methods, meta);
  lua_pushcfunction(L, l_profile);
  return 1;
}
