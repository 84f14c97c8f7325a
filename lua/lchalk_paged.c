/* lchalk_paged.c: chalk.paged_attention(q, k_cache, v_cache, block_table, lengths), the binding of
 * ct_paged_attention (core/ops/ops_paged.c), which the serving engine (lua/chalk/serve*.lua) calls. */
#include "lchalk_internal.h"

static int l_paged_attention(lua_State *L) {
  ct_tensor *q = lchalk_checktensor(L, 1), *k = lchalk_checktensor(L, 2), *v = lchalk_checktensor(L, 3);
  ct_tensor *bt = lchalk_checktensor(L, 4), *len = lchalk_checktensor(L, 5);
  LCHALK_RETURN(L, ct_paged_attention(q, k, v, bt, len));
}

void lchalk_open_paged(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  lua_pushcfunction(L, l_paged_attention);
  lua_setfield(L, chalk, "paged_attention");
}
