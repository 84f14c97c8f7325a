/* lcapture.c: chalk.capture and the Graph userdata (replay, optimize, explain, source,
 * plan_memory, print), chalk.autotune, chalk.matmul_tiled and the C half of nn.checkpoint.
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

#include "graph/capture.h"
#include "lchalk_internal.h"
#include "obs/profile.h"

#define LCAPTURE_GRAPH "chalk.Graph"

typedef struct {
  ct_graph *g;
} graph_box;

static ct_graph *check_graph(lua_State *L, int idx) {
  graph_box *b = luaL_checkudata(L, idx, LCAPTURE_GRAPH);
  if (!b->g) luaL_error(L, "graph was closed");
  return b->g;
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
  graph_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->g = NULL;
  luaL_setmetatable(L, LCAPTURE_GRAPH);
  int box = lua_gettop(L);
  ct_graph *g = ct_capture_begin(ins, nin);
  if (!g) return lchalk_error(L);
  b->g = g;
  for (int i = 1; i <= nargs + 1; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
    ct_capture_abort(g);
    b->g = NULL;
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
    b->g = NULL;
    return lchalk_error(L);
  }
  lua_settop(L, box);
  return 1;
}

/* ---- Graph methods ------------------------------------------------------------------------------ */

static int g_gc(lua_State *L) {
  graph_box *b = luaL_checkudata(L, 1, LCAPTURE_GRAPH);
  ct_graph_free(b->g);
  b->g = NULL;
  return 0;
}

/* g:replay([x1, x2, ...]) -> outputs: new values are copied into the step's inputs first. */
static int g_replay(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
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

static void push_report(lua_State *L, const ct_pass_report *r) {
  lua_createtable(L, 0, 10);
  lua_pushstring(L, r->pass);
  lua_setfield(L, -2, "pass");
  lua_pushinteger(L, r->changes);
  lua_setfield(L, -2, "changes");
  lua_pushinteger(L, r->nodes_before);
  lua_setfield(L, -2, "nodes_before");
  lua_pushinteger(L, r->nodes_after);
  lua_setfield(L, -2, "nodes_after");
  lua_pushinteger(L, r->kernels_before);
  lua_setfield(L, -2, "kernels_before");
  lua_pushinteger(L, r->kernels_after);
  lua_setfield(L, -2, "kernels_after");
  lua_pushnumber(L, r->bytes_before);
  lua_setfield(L, -2, "bytes_before");
  lua_pushnumber(L, r->bytes_after);
  lua_setfield(L, -2, "bytes_after");
  lua_pushnumber(L, r->flops_before);
  lua_setfield(L, -2, "flops_before");
  lua_pushnumber(L, r->flops_after);
  lua_setfield(L, -2, "flops_after");
  luaL_setmetatable(L, "chalk.PassReport");
}

static int report_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  char b1[32], b2[32];
  lua_getfield(L, 1, "bytes_before");
  lua_getfield(L, 1, "bytes_after");
  ct_format_bytes(lua_tonumber(L, -2), b1, sizeof b1);
  ct_format_bytes(lua_tonumber(L, -1), b2, sizeof b2);
  lua_getfield(L, 1, "pass");
  lua_getfield(L, 1, "changes");
  lua_getfield(L, 1, "nodes_before");
  lua_getfield(L, 1, "nodes_after");
  lua_getfield(L, 1, "kernels_before");
  lua_getfield(L, 1, "kernels_after");
  int changes = (int)lua_tointeger(L, -5);
  lua_pushfstring(L, "%s: %d change%s; nodes %d -> %d, kernels %d -> %d, bytes moved %s -> %s", lua_tostring(L, -6),
                  changes, changes == 1 ? "" : "s", (int)lua_tointeger(L, -4), (int)lua_tointeger(L, -3),
                  (int)lua_tointeger(L, -2), (int)lua_tointeger(L, -1), b1, b2);
  return 1;
}

/* print(g:optimize{...}): one line per pass */
static int reports_tostring(lua_State *L) {
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
static int g_optimize(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
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

static int g_explain(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  const char *pass = luaL_checkstring(L, 2);
  const char *s = ct_graph_explain(g, pass);
  if (!s)
    return luaL_error(L, "explain: unknown pass \"%s\" (dce, cse, fold, algebra, fuse, checkpoint, autotune)", pass);
  lua_pushstring(L, s);
  return 1;
}

/* g:source(node [, "c"|"cuda"]): node is a 1-based node index (print(g) shows them) */
static int g_source(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  const char *lang = luaL_optstring(L, 3, "c");
  const char *s = ct_graph_source(g, (int)i - 1, lang);
  if (!s) return lchalk_error(L);
  lua_pushstring(L, s);
  return 1;
}

static const char *const strategy_names[] = {"bestfit", "greedy", "naive", NULL};

static void push_plan(lua_State *L, const ct_plan_report *r) {
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, r->naive_bytes);
  lua_setfield(L, -2, "naive");
  lua_pushinteger(L, r->planned_bytes);
  lua_setfield(L, -2, "planned");
  lua_pushinteger(L, r->lower_bound);
  lua_setfield(L, -2, "lower_bound");
  lua_pushinteger(L, r->pinned_bytes);
  lua_setfield(L, -2, "pinned");
  lua_pushinteger(L, r->activation_peak);
  lua_setfield(L, -2, "activation_peak");
  lua_pushinteger(L, r->external_bytes);
  lua_setfield(L, -2, "external");
  lua_pushinteger(L, r->nbuffers);
  lua_setfield(L, -2, "buffers");
  lua_pushinteger(L, r->ninplace);
  lua_setfield(L, -2, "inplace");
  lua_pushinteger(L, r->ninplace_candidates);
  lua_setfield(L, -2, "inplace_candidates");
  lua_pushstring(L, strategy_names[r->strategy]);
  lua_setfield(L, -2, "strategy");
  luaL_setmetatable(L, "chalk.PlanReport");
}

static int plan_tostring(lua_State *L) {
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
static int g_plan_memory(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
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

static int g_verify_plan(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  if (ct_graph_verify_plan(g)) return lchalk_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* g:buffers() -> {{offset=, size=, first=, last=, name=, values=}, ...} (positions 1-based) */
static int g_buffers(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int n = ct_graph_plan_nbuffers(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    ct_plan_buffer b;
    ct_graph_plan_buffer(g, i, &b);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, b.offset);
    lua_setfield(L, -2, "offset");
    lua_pushinteger(L, b.nbytes);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, b.first + 1);
    lua_setfield(L, -2, "first");
    lua_pushinteger(L, b.last + 1);
    lua_setfield(L, -2, "last");
    lua_pushinteger(L, b.nvalues);
    lua_setfield(L, -2, "values");
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
static int g_live(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int n = ct_graph_nnodes(g);
  if (ct_graph_plan_live_at(g, 0) < 0) return luaL_error(L, "live: call g:plan_memory() first");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, ct_graph_plan_live_at(g, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static void push_shape(lua_State *L, const int64_t *shape, int ndim) {
  lua_createtable(L, ndim, 0);
  for (int d = 0; d < ndim; d++) {
    lua_pushinteger(L, shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

/* g:nodes() -> {{op=, name=, label=, inputs={value ids}, outputs=, kernel=, members=, backward=,
   view=, flops=, bytes=, shape=, dtype=}, ...} */
static int g_nodes(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int n = ct_graph_nnodes(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    ct_gnode_info in;
    ct_graph_node(g, i, &in);
    lua_createtable(L, 0, 14);
    lua_pushstring(L, in.name);
    lua_setfield(L, -2, "op");
    if (in.label) {
      lua_pushstring(L, in.label);
      lua_setfield(L, -2, "label");
    }
    lua_createtable(L, in.nin, 0);
    for (int k = 0; k < in.nin; k++) {
      lua_pushinteger(L, in.in[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "inputs");
    lua_createtable(L, in.nout, 0);
    for (int k = 0; k < in.nout; k++) {
      lua_pushinteger(L, in.out[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "outputs");
    if (in.group >= 0) {
      lua_pushinteger(L, in.group);
      lua_setfield(L, -2, "kernel");
    }
    lua_pushinteger(L, in.members);
    lua_setfield(L, -2, "members");
    lua_pushboolean(L, in.backward);
    lua_setfield(L, -2, "backward");
    lua_pushboolean(L, in.view);
    lua_setfield(L, -2, "view");
    lua_pushnumber(L, in.flops);
    lua_setfield(L, -2, "flops");
    lua_pushnumber(L, in.bytes);
    lua_setfield(L, -2, "bytes");
    ct_gvalue_info vi;
    ct_graph_value(g, in.out[0], &vi);
    push_shape(L, vi.shape, vi.ndim);
    lua_setfield(L, -2, "shape");
    lua_pushstring(L, ct_dtype_name(vi.dtype));
    lua_setfield(L, -2, "dtype");
    if (vi.name) {
      lua_pushstring(L, vi.name);
      lua_setfield(L, -2, "name");
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* g:value(id) -> {dtype=, shape=, name=, producer=, external=, constant=, input=, pinned=, parameter=, bytes=} */
static int g_value(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  ct_gvalue_info vi;
  if (ct_graph_value(g, (int)luaL_checkinteger(L, 2), &vi)) return lchalk_error(L);
  lua_createtable(L, 0, 10);
  lua_pushstring(L, ct_dtype_name(vi.dtype));
  lua_setfield(L, -2, "dtype");
  push_shape(L, vi.shape, vi.ndim);
  lua_setfield(L, -2, "shape");
  if (vi.name) {
    lua_pushstring(L, vi.name);
    lua_setfield(L, -2, "name");
  }
  lua_pushinteger(L, vi.producer + 1);
  lua_setfield(L, -2, "producer");
  lua_pushboolean(L, vi.external);
  lua_setfield(L, -2, "external");
  lua_pushboolean(L, vi.constant);
  lua_setfield(L, -2, "constant");
  lua_pushboolean(L, vi.input);
  lua_setfield(L, -2, "input");
  lua_pushboolean(L, vi.pinned);
  lua_setfield(L, -2, "pinned");
  lua_pushboolean(L, vi.parameter);
  lua_setfield(L, -2, "parameter");
  lua_pushinteger(L, vi.nbytes);
  lua_setfield(L, -2, "bytes");
  return 1;
}

/* g:totals() -> nodes, kernels, bytes moved, flops */
static int g_totals(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
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
  ct_graph *g = check_graph(L, 1);
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
  ct_graph *g = check_graph(L, 1);
  const char *title = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "title");
    title = lua_tostring(L, -1);
  }
  char *dot = NULL;
  if (ct_graph_dot(g, title, &dot)) return lchalk_error(L);
  lua_pushstring(L, dot);
  free(dot);
  return 1;
}

/* g:autotune{chunks={...}, repeats=5} -> {{kernel=, chunk=, us=}, ...}: fused CPU kernels' chunk */
static int g_autotune(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  int chunks[32], nchunks = 0, repeats = 5;
  static const int defaults[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536};
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "chunks") == LUA_TTABLE) {
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer i = 1; i <= n && nchunks < 32; i++) {
        lua_geti(L, -1, i);
        chunks[nchunks++] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
      }
    }
    lua_getfield(L, 2, "repeats");
    repeats = (int)luaL_optinteger(L, -1, 5);
    lua_pop(L, 2);
  }
  if (!nchunks)
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) chunks[nchunks++] = defaults[i];
  int max = 4096;
  ct_tune_chunk *rows = malloc(sizeof *rows * (size_t)max);
  if (!rows) return luaL_error(L, "autotune: out of memory");
  int n = ct_autotune_fused(g, chunks, nchunks, repeats, rows, max);
  if (n < 0) {
    free(rows);
    return lchalk_error(L);
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, rows[i].kernel);
    lua_setfield(L, -2, "kernel");
    lua_pushinteger(L, rows[i].chunk);
    lua_setfield(L, -2, "chunk");
    lua_pushnumber(L, rows[i].us);
    lua_setfield(L, -2, "us");
    lua_rawseti(L, -2, i + 1);
  }
  free(rows);
  return 1;
}

/* g:cuda_status() -> "graph" | "ops" | "pending", launches, compiles, why */
static int g_cuda_status(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
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
  ct_graph *g = check_graph(L, 1);
  int n = ct_graph_ninputs(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lchalk_pushtensor(L, ct_retain(ct_graph_input(g, i)));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int g_tostring(lua_State *L) {
  ct_graph *g = check_graph(L, 1);
  size_t n = ct_graph_format(g, NULL, 0);
  char *buf = malloc(n + 1);
  if (!buf) return luaL_error(L, "out of memory");
  ct_graph_format(g, buf, n + 1);
  lua_pushlstring(L, buf, n);
  free(buf);
  return 1;
}

static int g_len(lua_State *L) {
  lua_pushinteger(L, ct_graph_nnodes(check_graph(L, 1)));
  return 1;
}

/* ---- chalk.autotune.matmul, chalk.matmul_tiled ------------------------------------------------- */

static int read_int_list(lua_State *L, int idx, const char *k, int *out, int max, const int *def, int ndef) {
  int n = 0;
  if (lua_istable(L, idx) && lua_getfield(L, idx, k) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= len && n < max; i++) {
      lua_geti(L, -1, i);
      out[n++] = (int)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  } else if (lua_istable(L, idx)) {
    lua_pop(L, 1);
  }
  if (!n)
    for (int i = 0; i < ndef && i < max; i++) out[n++] = def[i];
  return n;
}

/* {bm, bn, bk, us, gflops} of one autotuning result, pushed as a table. */
static void push_tune_result(lua_State *L, const ct_tune_result *r) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, r->bm);
  lua_setfield(L, -2, "bm");
  lua_pushinteger(L, r->bn);
  lua_setfield(L, -2, "bn");
  lua_pushinteger(L, r->bk);
  lua_setfield(L, -2, "bk");
  lua_pushnumber(L, r->us);
  lua_setfield(L, -2, "us");
  lua_pushnumber(L, r->gflops);
  lua_setfield(L, -2, "gflops");
}

static void push_int_array(lua_State *L, const int *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* chalk.autotune.matmul(m, n, k [, {bm={...}, bn={...}, bk=32, repeats=3, dtype="f32"}])
   -> {results = {{bm=, bn=, bk=, us=, gflops=}, ...}, best = {...}, bm = {...}, bn = {...}} */
static int l_autotune_matmul(lua_State *L) {
  lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
  static const int def[] = {4, 8, 16, 32, 64, 128, 256};
  int bms[32], bns[32];
  int nbm = read_int_list(L, 4, "bm", bms, 32, def, 7), nbn = read_int_list(L, 4, "bn", bns, 32, def, 7);
  int bk = 64, repeats = 3;
  ct_dtype dt = CT_F32;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "bk");
    bk = (int)luaL_optinteger(L, -1, 64);
    lua_getfield(L, 4, "repeats");
    repeats = (int)luaL_optinteger(L, -1, 3);
    if (lua_getfield(L, 4, "dtype") != LUA_TNIL) dt = lchalk_checkdtype(L, lua_gettop(L));
    lua_pop(L, 3);
  }
  ct_tune_result *res = malloc(sizeof *res * (size_t)(nbm * nbn));
  if (!res) return luaL_error(L, "autotune: out of memory");
  ct_tune_result best;
  if (ct_autotune_matmul(m, n, k, dt, bms, nbm, bns, nbn, bk, repeats, res, &best)) {
    free(res);
    return lchalk_error(L);
  }
  lua_createtable(L, 0, 4);
  lua_createtable(L, nbm * nbn, 0);
  for (int i = 0; i < nbm * nbn; i++) {
    push_tune_result(L, &res[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "results");
  push_tune_result(L, &best);
  lua_setfield(L, -2, "best");
  push_int_array(L, bms, nbm);
  lua_setfield(L, -2, "bm");
  push_int_array(L, bns, nbn);
  lua_setfield(L, -2, "bn");
  free(res);
  return 1;
}

/* chalk.autotune.cached(m, n, k [, dtype]) -> best or nil */
static int l_autotune_cached(lua_State *L) {
  lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
  ct_dtype dt = lua_isnoneornil(L, 4) ? CT_F32 : lchalk_checkdtype(L, 4);
  ct_tune_result best;
  if (!ct_autotune_matmul_cached(m, n, k, dt, &best)) return 0;
  push_tune_result(L, &best);
  return 1;
}

/* chalk.matmul_tiled(a, b [, bm, bn, bk]): the tiled matmul (the cached best tiles by default) */
static int l_matmul_tiled(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  ct_tune_result best = {.bm = 32, .bn = 32, .bk = 64};
  if (a->ndim == 2 && b->ndim == 2) ct_autotune_matmul_cached(a->shape[0], b->shape[1], a->shape[1], a->dtype, &best);
  int bm = (int)luaL_optinteger(L, 3, best.bm), bn = (int)luaL_optinteger(L, 4, best.bn);
  int bk = (int)luaL_optinteger(L, 5, best.bk);
  LCHALK_RETURN(L, ct_matmul_tiled(a, b, bm, bn, bk));
}

/* ---- nn.checkpoint's C half ---------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  int ref;
} lua_fn;

typedef struct {
  lua_fn *fn;
  ct_tensor *const *in;
  int nin;
  ct_tensor *result;
} recompute_call;

static int recompute_trampoline(lua_State *L) {
  recompute_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn->ref);
  for (int i = 0; i < c->nin; i++) lchalk_pushtensor(L, ct_retain(c->in[i]));
  lua_call(L, c->nin, 1);
  ct_tensor *t = lchalk_totensor(L, -1);
  if (!t) return luaL_error(L, "checkpoint: the function must return one tensor, got %s", luaL_typename(L, -1));
  c->result = ct_retain(t);
  return 0;
}

static ct_tensor *run_lua_fn(void *ud, ct_tensor *const *in, int nin) {
  lua_fn *f = ud;
  lua_State *L = f->L;
  recompute_call c = {f, in, nin, NULL};
  lua_pushcfunction(L, recompute_trampoline);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    ct_errorf("checkpoint: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in the function");
    lua_pop(L, 1);
    ct_release(c.result);
    return NULL;
  }
  return c.result;
}

static void free_lua_fn(void *ud) {
  lua_fn *f = ud;
  luaL_unref(f->L, LUA_REGISTRYINDEX, f->ref);
  free(f);
}

/* chalk._checkpoint(fn, inputs, params) -> fn(inputs...), recomputed in backward */
static int l_checkpoint(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  bool has_params = lua_istable(L, 3);
  lua_Integer nin = luaL_len(L, 2), np = has_params ? luaL_len(L, 3) : 0;
  if (nin < 0 || nin > 256 || np < 0 || np > 4096) return luaL_error(L, "checkpoint: too many inputs or parameters");
  ct_tensor **ins = lua_newuserdatauv(L, sizeof *ins * (size_t)(nin + np + 1), 0); /* anchored scratch */
  for (lua_Integer i = 1; i <= nin; i++) {
    lua_geti(L, 2, i);
    ins[i - 1] = lchalk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  for (lua_Integer j = 1; j <= np; j++) {
    lua_geti(L, 3, j);
    ins[nin + j - 1] = lchalk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  lua_fn *f = malloc(sizeof *f);
  if (!f) return luaL_error(L, "checkpoint: out of memory");
  f->L = L;
  lua_pushvalue(L, 1);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ct_tensor *r = ct_checkpoint(run_lua_fn, free_lua_fn, f, ins, (int)nin, ins + nin, (int)np);
  return lchalk_pushtensor(L, r);
}

/* ---- opening ------------------------------------------------------------------------------------ */

int luaopen_chalk_capture(lua_State *L) {
  static const luaL_Reg methods[] = {{"replay", g_replay},
                                     {"optimize", g_optimize},
                                     {"explain", g_explain},
                                     {"source", g_source},
                                     {"plan_memory", g_plan_memory},
                                     {"verify_plan", g_verify_plan},
                                     {"buffers", g_buffers},
                                     {"live", g_live},
                                     {"nodes", g_nodes},
                                     {"value", g_value},
                                     {"totals", g_totals},
                                     {"dot", g_dot},
                                     {"autotune", g_autotune},
                                     {"cuda_status", g_cuda_status},
                                     {"inputs", g_inputs},
                                     {"traffic", g_traffic},
                                     {NULL, NULL}};
  if (luaL_newmetatable(L, LCAPTURE_GRAPH)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, g_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, g_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, g_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, g_len);
    lua_setfield(L, -2, "__len");
    lua_pushstring(L, "Graph");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, "chalk.PassReport");
  lua_pushcfunction(L, report_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, "chalk.PassReports");
  lua_pushcfunction(L, reports_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, "chalk.PlanReport");
  lua_pushcfunction(L, plan_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  /* functions that live in the chalk table */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "chalk") == LUA_TTABLE) {
    lua_newtable(L);
    lua_pushcfunction(L, l_autotune_matmul);
    lua_setfield(L, -2, "matmul");
    lua_pushcfunction(L, l_autotune_cached);
    lua_setfield(L, -2, "cached");
    lua_setfield(L, -2, "autotune");
    lua_pushcfunction(L, l_matmul_tiled);
    lua_setfield(L, -2, "matmul_tiled");
    lua_pushcfunction(L, l_checkpoint);
    lua_setfield(L, -2, "_checkpoint");
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
