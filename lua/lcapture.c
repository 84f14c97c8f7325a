/* lcapture.c: chalk.capture and the Graph userdata (replay, optimize, explain, source,
 * plan_memory, print); the passes, plan, tune and checkpoint surfaces are in lua/lcapture_*.c.
 *
 *   g = chalk.capture(function(x) ... return loss end, x)   -- records one call of the step
 *   g:replay()          -- runs it again (new inputs: g:replay(x2)); returns the outputs
 *   g:optimize{"dce", "cse", "fold", "algebra", "fuse"}   -- each pass reports what it changed
 *   g:explain("fuse")   g:source(node)   g:plan_memory()   print(g)   viz.graph(g)
 *
 * Invariants: a Graph userdata owns its ct_graph (freed by __gc/__close); chalk.capture aborts the
 * recording when the step raises, then re-raises; options are read before any core call; the
 * Lua function of nn.checkpoint is run inside lua_pcall, so a Lua error in recomputation becomes
 * a core error of backward, never a longjmp through the autograd engine.
 */
#include <stdlib.h>
#include <string.h>

#include "lcapture.h"
#include "viz.h" /* viz_capture_dot: g:dot() */

ct_graph *lcap_check_graph(lua_State *L, int idx) {
  return lchalk_handle_check(L, idx, LCAPTURE_GRAPH, "graph was closed");
}

void lcap_push_fields(lua_State *L, const void *rec, const lcap_field *fields, int n) {
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    const char *at = (const char *)rec + fields[i].offset;
    int iv;
    int64_t lv;
    double dv;
    bool bv;
    switch (fields[i].kind) {
    case LCAP_INT:
    case LCAP_POS:
      memcpy(&iv, at, sizeof iv);
      lua_pushinteger(L, (lua_Integer)iv + (fields[i].kind == LCAP_POS));
      break;
    case LCAP_I64:
      memcpy(&lv, at, sizeof lv);
      lua_pushinteger(L, (lua_Integer)lv);
      break;
    case LCAP_NUM:
      memcpy(&dv, at, sizeof dv);
      lua_pushnumber(L, dv);
      break;
    case LCAP_BOOL:
      memcpy(&bv, at, sizeof bv);
      lua_pushboolean(L, bv);
      break;
    }
    lua_setfield(L, -2, fields[i].key);
  }
}

void lcap_get_fields(lua_State *L, int idx, const char *const *keys) {
  idx = lua_absindex(L, idx);
  for (; *keys; keys++) lua_getfield(L, idx, *keys);
}

void lcap_push_list(lua_State *L, ct_graph *g, int n, void (*push_entry)(lua_State *L, ct_graph *g, int i)) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_entry(L, g, i);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- chalk.capture ---------------------------------------------------------------------------- */

static int l_capture(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - 1;
  if (nargs > 64) return luaL_error(L, "capture: at most 64 arguments");
  ct_tensor *ins[64];
  int nin = 0;
  for (int i = 2; i <= nargs + 1; i++) {
    ct_tensor *t = lchalk_totensor(L, i);
    if (t) ins[nin++] = t;
  }
  void **h = lchalk_handle_new(L, LCAPTURE_GRAPH);
  int box = lua_gettop(L);
  ct_graph *g = ct_capture_begin(ins, nin);
  if (!g) return lchalk_error(L);
  *h = g;
  for (int i = 1; i <= nargs + 1; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
    ct_capture_abort(g);
    *h = NULL;
    return lua_error(L);
  }
  int nres = lua_gettop(L) - box;
  ct_tensor *outs[64];
  int nout = 0;
  for (int i = 1; i <= nres && nout < 64; i++) {
    ct_tensor *t = lchalk_totensor(L, box + i);
    if (t) outs[nout++] = t;
  }
  if (ct_capture_end(g, outs, nout)) {
    ct_graph_free(g);
    *h = NULL;
    return lchalk_error(L);
  }
  lua_settop(L, box);
  return 1;
}

/* ---- Graph methods ------------------------------------------------------------------------------ */

static int g_gc(lua_State *L) {
  ct_graph_free(lchalk_handle_take(L, 1, LCAPTURE_GRAPH));
  return 0;
}

/* g:replay([x1, x2, ...]) -> outputs: new values are copied into the step's inputs first. */
static int g_replay(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int n = lua_gettop(L) - 1;
  if (n > ct_graph_ninputs(g))
    return luaL_error(L, "replay: %d values given but the step has %d tensor inputs", n, ct_graph_ninputs(g));
  for (int i = 0; i < n; i++) {
    ct_tensor *src = lchalk_checktensor(L, 2 + i);
    if (ct_copy_(ct_graph_input(g, i), src)) return lchalk_error(L);
  }
  if (ct_graph_replay(g)) return lchalk_error(L);
  int nout = ct_graph_noutputs(g);
  luaL_checkstack(L, nout, "replay");
  for (int i = 0; i < nout; i++) lchalk_pushtensor(L, ct_graph_output(g, i));
  return nout;
}

static void push_shape(lua_State *L, const int64_t *shape, int ndim) {
  lua_createtable(L, ndim, 0);
  for (int d = 0; d < ndim; d++) {
    lua_pushinteger(L, shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static void push_ids(lua_State *L, const int *ids, int n) {
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) {
    lua_pushinteger(L, ids[k]);
    lua_rawseti(L, -2, k + 1);
  }
}

static void push_node(lua_State *L, ct_graph *g, int i) {
  ct_gnode_info in;
  ct_graph_node(g, i, &in);
  lua_createtable(L, 0, 14);
  lcap_set_str(L, "op", in.name);
  lcap_set_str(L, "label", in.label);
  push_ids(L, in.in, in.nin);
  lua_setfield(L, -2, "inputs");
  push_ids(L, in.out, in.nout);
  lua_setfield(L, -2, "outputs");
  if (in.group >= 0) lcap_set_int(L, "kernel", in.group);
  lcap_set_int(L, "members", in.members);
  lcap_set_bool(L, "backward", in.backward);
  lcap_set_bool(L, "view", in.view);
  lcap_set_num(L, "flops", in.flops);
  lcap_set_num(L, "bytes", in.bytes);
  ct_gvalue_info vi;
  ct_graph_value(g, in.out[0], &vi);
  push_shape(L, vi.shape, vi.ndim);
  lua_setfield(L, -2, "shape");
  lcap_set_str(L, "dtype", ct_dtype_name(vi.dtype));
  lcap_set_str(L, "name", vi.name);
}

/* g:nodes() -> {{op=, name=, label=, inputs={value ids}, outputs=, kernel=, members=, backward=,
   view=, flops=, bytes=, shape=, dtype=}, ...} */
static int g_nodes(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  lcap_push_list(L, g, ct_graph_nnodes(g), push_node);
  return 1;
}

/* g:value(id) -> {dtype=, shape=, name=, producer=, external=, constant=, input=, pinned=, parameter=, bytes=} */
static int g_value(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  ct_gvalue_info vi;
  if (ct_graph_value(g, (int)luaL_checkinteger(L, 2), &vi)) return lchalk_error(L);
  lua_createtable(L, 0, 10);
  lcap_set_str(L, "dtype", ct_dtype_name(vi.dtype));
  push_shape(L, vi.shape, vi.ndim);
  lua_setfield(L, -2, "shape");
  lcap_set_str(L, "name", vi.name);
  lcap_set_int(L, "producer", vi.producer + 1);
  lcap_set_bool(L, "external", vi.external);
  lcap_set_bool(L, "constant", vi.constant);
  lcap_set_bool(L, "input", vi.input);
  lcap_set_bool(L, "pinned", vi.pinned);
  lcap_set_bool(L, "parameter", vi.parameter);
  lcap_set_int(L, "bytes", vi.nbytes);
  return 1;
}

/* g:totals() -> nodes, kernels, bytes moved, flops */
static int g_totals(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int nodes, kernels;
  double bytes, flops;
  ct_graph_totals(g, &nodes, &kernels, &bytes, &flops);
  lua_pushinteger(L, nodes);
  lua_pushinteger(L, kernels);
  lua_pushnumber(L, bytes);
  lua_pushnumber(L, flops);
  return 4;
}

/* g:traffic() -> bytes read, bytes written (by kernels: every input and output tensor once per
   kernel, as an ideal kernel moves them), kernels launched */
static int g_traffic(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  double rd = 0, wr = 0;
  int kernels = 0, n = ct_graph_nnodes(g);
  for (int i = 0; i < n; i++) {
    ct_gnode_info in;
    ct_graph_node(g, i, &in);
    if (in.view) continue;
    kernels++;
    for (int k = 0; k < in.nin + in.nout; k++) {
      ct_gvalue_info vi;
      ct_graph_value(g, k < in.nin ? in.in[k] : in.out[k - in.nin], &vi);
      if (k < in.nin && !in.inplace)
        rd += (double)vi.nbytes;
      else if (k >= in.nin)
        wr += (double)vi.nbytes;
    }
    if (in.inplace) { /* assign reads its source and writes its destination */
      ct_gvalue_info vi;
      ct_graph_value(g, in.in[1], &vi);
      rd += (double)vi.nbytes;
    }
  }
  lua_pushnumber(L, rd);
  lua_pushnumber(L, wr);
  lua_pushinteger(L, kernels);
  return 3;
}

/* g:dot([{title=}]) -> DOT text (viz.graph(g) renders it) */
static int g_dot(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  const char *title = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "title");
    title = lua_tostring(L, -1);
  }
  viz_buf dot = {0};
  if (viz_capture_dot(g, title, &dot)) {
    viz_buf_free(&dot);
    return lchalk_error(L);
  }
  lua_pushstring(L, dot.s);
  viz_buf_free(&dot);
  return 1;
}

/* g:cuda_status() -> "graph" | "ops" | "pending", launches, compiles, why */
static int g_cuda_status(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int launches = 0, compiles = 0;
  const char *why = NULL;
  int s = ct_graph_cuda_status(g, &launches, &compiles, &why);
  lua_pushstring(L, s > 0 ? "graph" : s < 0 ? "ops" : "pending");
  lua_pushinteger(L, launches);
  lua_pushinteger(L, compiles);
  if (why)
    lua_pushstring(L, why);
  else
    lua_pushnil(L);
  return 4;
}

static int g_inputs(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int n = ct_graph_ninputs(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lchalk_pushtensor(L, ct_retain(ct_graph_input(g, i)));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int g_tostring(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  size_t n = ct_graph_format(g, NULL, 0);
  char *buf = malloc(n + 1);
  if (!buf) return luaL_error(L, "out of memory");
  ct_graph_format(g, buf, n + 1);
  lua_pushlstring(L, buf, n);
  free(buf);
  return 1;
}

static int g_len(lua_State *L) {
  lua_pushinteger(L, ct_graph_nnodes(lcap_check_graph(L, 1)));
  return 1;
}

/* A metatable named mt whose __tostring is f (report userdata/tables print through it). */
static void new_printable(lua_State *L, const char *mt, lua_CFunction f) {
  luaL_newmetatable(L, mt);
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* ---- opening ------------------------------------------------------------------------------------ */

int luaopen_chalk_capture(lua_State *L) {
  static const luaL_Reg methods[] = {{"replay", g_replay},
                                     {"optimize", lcap_g_optimize},
                                     {"explain", lcap_g_explain},
                                     {"source", lcap_g_source},
                                     {"plan_memory", lcap_g_plan_memory},
                                     {"verify_plan", lcap_g_verify_plan},
                                     {"buffers", lcap_g_buffers},
                                     {"live", lcap_g_live},
                                     {"nodes", g_nodes},
                                     {"value", g_value},
                                     {"totals", g_totals},
                                     {"dot", g_dot},
                                     {"autotune", lcap_g_autotune},
                                     {"cuda_status", g_cuda_status},
                                     {"inputs", g_inputs},
                                     {"traffic", g_traffic},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", g_gc}, {"__close", g_gc}, {"__tostring", g_tostring}, {"__len", g_len}, {NULL, NULL}};
  static const luaL_Reg in_chalk[] = {
      {"matmul_tiled", lcap_l_matmul_tiled}, {"_checkpoint", lcap_l_checkpoint}, {NULL, NULL}};
  static const luaL_Reg autotune[] = {
      {"matmul", lcap_l_autotune_matmul}, {"cached", lcap_l_autotune_cached}, {NULL, NULL}};
  lchalk_handle_class(L, LCAPTURE_GRAPH, methods, meta);
  luaL_getmetatable(L, LCAPTURE_GRAPH);
  lcap_set_str(L, "__name", "Graph");
  lua_pop(L, 1);
  new_printable(L, "chalk.PassReport", lcap_report_tostring);
  new_printable(L, "chalk.PassReports", lcap_reports_tostring);
  new_printable(L, "chalk.PlanReport", lcap_plan_tostring);
  /* functions that live in the chalk table */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "chalk") == LUA_TTABLE) {
    luaL_newlib(L, autotune);
    lua_setfield(L, -2, "autotune");
    luaL_setfuncs(L, in_chalk, 0);
    luaL_getmetatable(L, LCAPTURE_GRAPH);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "Graph"); /* chalk.Graph: the method table (Lua modules add charts to it) */
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  /* the Lua halves: pictures of plans and nn.checkpoint (loaded when built in) */
  static const char *const halves[] = {"chalk.capture_charts", "chalk.checkpoint", NULL};
  for (int i = 0; halves[i]; i++) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    int present = lua_getfield(L, -1, halves[i]) != LUA_TNIL;
    lua_pop(L, 2);
    if (!present) continue;
    lua_getglobal(L, "require");
    if (lua_isfunction(L, -1)) {
      lua_pushstring(L, halves[i]);
      lua_call(L, 1, 0);
    } else {
      lua_pop(L, 1);
      luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
      lua_getfield(L, -1, halves[i]);
      lua_pushstring(L, halves[i]);
      lua_call(L, 1, 0);
      lua_pop(L, 1);
    }
  }
  lua_pushcfunction(L, l_capture);
  return 1;
}
