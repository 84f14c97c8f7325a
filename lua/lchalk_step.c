/* lchalk_step.c: the training step's fused rows: chalk._sgd_multi_, chalk._adam_multi_ (core/ops/ops_assign.c, for
 * optim.lua) and chalk.linear (ops_matmul.c). */
#include "lchalk_internal.h"
#include "ops/optable.h"

/* The tensors of the list at idx (n of them; n < 0: any length, returned through *n) in a block
   owned by a userdata pushed on the stack (collected by Lua, so an error leaks nothing). */
static ct_tensor **tensor_list(lua_State *L, int idx, int *n, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int len = (int)luaL_len(L, idx);
  if (*n >= 0 && len != *n) luaL_error(L, "%s: %d tensors, expected %d (one per parameter)", what, len, *n);
  if (len < 1) luaL_error(L, "%s: empty list", what);
  ct_tensor **t = lua_newuserdatauv(L, sizeof *t * (size_t)len, 0);
  for (int i = 1; i <= len; i++) {
    lua_geti(L, idx, i);
    t[i - 1] = lchalk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  *n = len;
  return t;
}

/* chalk._sgd_multi_(params, bufs or nil, grads, lr, momentum, dampening, weight_decay, nesterov, first_step) */
static int l_sgd_multi(lua_State *L) {
  int n = -1;
  ct_tensor **p = tensor_list(L, 1, &n, "sgd_multi params");
  ct_tensor **buf = lua_isnil(L, 2) ? NULL : tensor_list(L, 2, &n, "sgd_multi momentum buffers");
  ct_tensor **g = tensor_list(L, 3, &n, "sgd_multi grads");
  double lr = luaL_checknumber(L, 4), mom = luaL_checknumber(L, 5), damp = luaL_checknumber(L, 6);
  double wd = luaL_checknumber(L, 7);
  bool nesterov = lua_toboolean(L, 8), first = lua_toboolean(L, 9);
  for (int i = 0; i < n; i++) lchalk_check_inplace(L, p[i], "sgd_multi");
  if (ct_sgd_multi_(p, buf, g, n, lr, mom, damp, wd, nesterov, first)) return lchalk_error(L);
  return 0;
}

/* chalk._adam_multi_(params, exp_avgs, exp_avg_sqs, grads, lr, beta1, beta2, eps, weight_decay, decoupled, step) */
static int l_adam_multi(lua_State *L) {
  int n = -1;
  ct_tensor **p = tensor_list(L, 1, &n, "adam_multi params");
  ct_tensor **m = tensor_list(L, 2, &n, "adam_multi exp_avg");
  ct_tensor **v = tensor_list(L, 3, &n, "adam_multi exp_avg_sq");
  ct_tensor **g = tensor_list(L, 4, &n, "adam_multi grads");
  double lr = luaL_checknumber(L, 5), b1 = luaL_checknumber(L, 6), b2 = luaL_checknumber(L, 7);
  double eps = luaL_checknumber(L, 8), wd = luaL_checknumber(L, 9);
  bool decoupled = lua_toboolean(L, 10);
  lua_Integer step = luaL_checkinteger(L, 11);
  for (int i = 0; i < n; i++) lchalk_check_inplace(L, p[i], "adam_multi");
  if (ct_adam_multi_(p, m, v, g, n, lr, b1, b2, eps, wd, decoupled, (int64_t)step)) return lchalk_error(L);
  return 0;
}

/* chalk.linear(x, w, b): y = x w^T + b in one op (nn.functional.linear uses it for f32 on a GPU) */
static int l_linear(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1), *w = lchalk_checktensor(L, 2), *b = lchalk_checktensor(L, 3);
  LCHALK_RETURN(L, ct_linear(x, w, b));
}

void lchalk_open_step(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  static const luaL_Reg fs[] = {
      {"_sgd_multi_", l_sgd_multi}, {"_adam_multi_", l_adam_multi}, {"linear", l_linear}, {NULL, NULL}};
  lchalk_register(L, chalk, fs);
}
