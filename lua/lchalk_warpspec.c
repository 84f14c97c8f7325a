/* lchalk_warpspec.c: lesson 19's kernels in chalk.cuda (kernels/warpspec.h):
 *   chalk.cuda.ws_gemm(a, b [, {stages = 4, stamps = false}]) -> c [, stamps]
 *       C = A B by the warp-specialized GEMM; with stamps = true also the i64 CUDA tensor
 *       [9, K/16, 3] of clock64() stamps per warp role (row 1 the producer, rows 2..9 the consumers)
 *   chalk.cuda.persistent_mlp(x, {W1, b1, W2, b2, ...} [, {mode = "persistent", reps = 1}]) -> y, ms
 *       the MLP forward (relu between layers) by "per_op" launches, a "graph" or the "persistent"
 *       kernel, run reps times; ms the time per forward
 *   chalk.cuda.launch_overhead([n = 1000]) -> {stream_us =, host_us =, graph_us =} per empty launch
 * Built without CUDA the kernels are absent (weak references) and each call raises an error saying
 * so; with CUDA but no GPU the kernels' own error names the call and the reason. */
#include "lchalk_internal.h"
#include "warpspec.h"

#ifdef CT_WITH_CUDA
#define WS_BUILT(f) true
#else /* the same declarations, weak: NULL when kernels/ was not built */
#define WS_BUILT(f) ((f) != NULL)
extern ct_tensor *ct_ws_gemm(ct_tensor *a, ct_tensor *b, int stages, ct_tensor **stamps) __attribute__((weak));
extern int ct_pk_mlp(int mode, ct_tensor *x, ct_tensor *const *w, ct_tensor *const *bias, int nlayers, int reps,
                     ct_tensor **out, double *ms) __attribute__((weak));
extern int ct_pk_launch_overhead(int n, double *us_stream, double *us_host, double *us_graph) __attribute__((weak));
#endif

static void need_kernels(lua_State *L, const char *what, bool present) {
  if (!present)
    luaL_error(L, "chalk.cuda.%s: CUDA is not available (%s)", what,
               ct_cuda_unavailable_reason() ? ct_cuda_unavailable_reason() : "this libchalk was built without CUDA");
}

static int opt_int(lua_State *L, int opts, const char *key, int dflt) {
  if (lua_isnoneornil(L, opts)) return dflt;
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_getfield(L, opts, key);
  int v = lua_isnil(L, -1) ? dflt : (int)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  return v;
}

static int l_ws_gemm(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  int stages = opt_int(L, 3, "stages", 4);
  bool want = false;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "stamps");
    want = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  need_kernels(L, "ws_gemm", WS_BUILT(ct_ws_gemm));
  ct_tensor *stamps = NULL;
  ct_tensor *c = ct_ws_gemm(a, b, stages, want ? &stamps : NULL);
  lchalk_pushtensor(L, c);
  if (!want) return 1;
  lchalk_pushtensor(L, stamps);
  return 2;
}

static int l_persistent_mlp(lua_State *L) {
  static const char *const modes[] = {"per_op", "graph", "persistent", NULL};
  ct_tensor *x = lchalk_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  if (n < 2 || n % 2 || n / 2 > CT_PK_MAX_LAYERS)
    return luaL_error(L,
                      "chalk.cuda.persistent_mlp: params must be {W1, b1, W2, b2, ...} for 1 to %d layers, got %d "
                      "tensors",
                      CT_PK_MAX_LAYERS, n);
  ct_tensor *w[CT_PK_MAX_LAYERS], *bias[CT_PK_MAX_LAYERS];
  for (int i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    ct_tensor *t = lchalk_totensor(L, -1);
    if (!t) return luaL_error(L, "chalk.cuda.persistent_mlp: params[%d] is not a tensor", i + 1);
    if (i % 2)
      bias[i / 2] = t;
    else
      w[i / 2] = t;
    lua_pop(L, 1); /* the table keeps the tensor alive */
  }
  int mode = CT_PK_PERSISTENT, reps = opt_int(L, 3, "reps", 1);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "mode");
    if (!lua_isnil(L, -1)) mode = luaL_checkoption(L, -1, NULL, modes);
    lua_pop(L, 1);
  }
  need_kernels(L, "persistent_mlp", WS_BUILT(ct_pk_mlp));
  ct_tensor *y = NULL;
  double ms = 0;
  if (ct_pk_mlp(mode, x, w, bias, n / 2, reps, &y, &ms)) return lchalk_error(L);
  lchalk_pushtensor(L, y);
  lua_pushnumber(L, ms);
  return 2;
}

static int l_launch_overhead(lua_State *L) {
  int n = (int)luaL_optinteger(L, 1, 1000);
  need_kernels(L, "launch_overhead", WS_BUILT(ct_pk_launch_overhead));
  double s = 0, h = 0, g = 0;
  if (ct_pk_launch_overhead(n, &s, &h, &g)) return lchalk_error(L);
  lua_createtable(L, 0, 4);
  const char *keys[] = {"stream_us", "host_us", "graph_us", "n"};
  double vals[] = {s, h, g, n};
  for (int i = 0; i < 4; i++) {
    lua_pushnumber(L, vals[i]);
    lua_setfield(L, -2, keys[i]);
  }
  return 1;
}

void lchalk_open_warpspec(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  if (lua_getfield(L, chalk, "cuda") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, chalk, "cuda");
  }
  static const luaL_Reg fns[] = {{"ws_gemm", l_ws_gemm},
                                 {"persistent_mlp", l_persistent_mlp},
                                 {"launch_overhead", l_launch_overhead},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
