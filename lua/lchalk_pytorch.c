/* lchalk_pytorch.c: the ordering ops of ops/ops_sort.c as methods; sort, topk and the other
 * PyTorch names composed from table ops live in lua/chalk/pytorch.lua.
 *
 *   x:argsort([dim [, descending]])  1-based i64 positions that sort x along dim (default: last)
 *   x:cumsum(dim)                    running sum along dim (1-based, negative from the end)
 */
#include "lchalk_internal.h"

static int m_argsort(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int nd = t->ndim ? t->ndim : 1;
  int dim = lchalk_optdim(L, 2, nd, "argsort", nd - 1);
  bool desc = lua_toboolean(L, 3);
  return lchalk_pushtensor(L, ct_argsort(t, dim, desc));
}

static int m_cumsum(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int dim = lchalk_checkdim(L, 2, t->ndim ? t->ndim : 1, "cumsum");
  return lchalk_pushtensor(L, ct_cumsum(t, dim, false));
}

void lchalk_open_pytorch(lua_State *L, int chalk, int methods, int meta) {
  (void)meta;
  static const luaL_Reg ms[] = {{"argsort", m_argsort}, {"cumsum", m_cumsum}, {NULL, NULL}};
  lchalk_register(L, methods, ms);
  lchalk_register(L, chalk, ms);
}
