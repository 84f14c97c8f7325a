/* lchalk_ladder.c: the old side doors of the matmul ladder, thin aliases of
 * x:matmul(y, {impl = ...}) (the rungs are implementations of the matmul row, chalk.ops()):
 *   chalk.cuda.matmul(a, b [, impl])   (impl a name or {impl=name}) C = A B by one rung ("naive" ... "cublas"; default "cublas"),
 *                                      2-D f32 CUDA tensors
 *   chalk.cuda.matmul_impls()          the rung names in ladder order
 *   chalk.cpu_matmul(a, b [, impl])    the CPU rungs ("naive", "reordered", "tiled", "openblas"
 *                                      = "blas"), 2-D f32 CPU tensors (core/cpu/matmul_ladder.c)
 * Without a GPU (or a build without CUDA) the first raises the core's "CUDA is not available"
 * error; the second still lists the names, so a lesson can explain them. */
#include "lchalk_internal.h"

/* The rung: a string, or an options table {impl = "tiled"} as in api.md's other calls. */
static const char *impl_arg(lua_State *L, int idx, const char *dflt) {
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "impl");
    const char *s = luaL_optstring(L, -1, dflt);
    lua_pop(L, 1); /* the string stays alive: it is a field of the options table */
    return s;
  }
  return luaL_optstring(L, idx, dflt);
}

static int l_matmul(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  const char *impl = impl_arg(L, 3, "cublas");
  LCHALK_RETURN(L, ct_cuda_matmul_impl(a, b, impl));
}

static int l_cpu_matmul(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  const char *impl = impl_arg(L, 3, "openblas");
  LCHALK_RETURN(L, ct_cpu_matmul_impl(a, b, impl));
}

static int l_matmul_impls(lua_State *L) {
  int n = 0;
  const char *const *names = ct_cuda_matmul_impls(&n);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

void lchalk_open_ladder(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  lua_pushcfunction(L, l_cpu_matmul);
  lua_setfield(L, chalk, "cpu_matmul");
  if (lua_getfield(L, chalk, "cuda") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, chalk, "cuda");
  }
  lua_pushcfunction(L, l_matmul);
  lua_setfield(L, -2, "matmul");
  lua_pushcfunction(L, l_matmul_impls);
  lua_setfield(L, -2, "matmul_impls");
  lua_pop(L, 1);
}
