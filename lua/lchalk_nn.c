/* lchalk_nn.c: the index and neural-network ops: x:gather, x:index_select, chalk.cat,
 * chalk.stack, and the functional ops that chalk.nn builds on (cross_entropy, nll_loss,
 * mse_loss, layer_norm, embedding, one_hot, conv2d, max_pool2d, dropout).
 *
 * Index tensors and class targets hold 1-based values already (the core's contract), so only
 * dims are converted here.
 */
#include "lchalk_internal.h"

/* x:gather(dim, idx), x:index_select(dim, idx) */
static int m_gather(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lchalk_checkdim(L, 2, t->ndim, "gather");
  ct_tensor *idx = lchalk_checktensor(L, 3);
  LCHALK_RETURN(L, ct_gather(t, d, idx));
}

static int m_index_select(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lchalk_checkdim(L, 2, t->ndim, "index_select");
  ct_tensor *idx = lchalk_checktensor(L, 3);
  LCHALK_RETURN(L, ct_index_select(t, d, idx));
}

/* The tensors of the list at arg, borrowed (the list anchors them) into a scratch array. */
static ct_tensor **check_list(lua_State *L, int arg, int *n, const char *op) {
  luaL_checktype(L, arg, LUA_TTABLE);
  int len = (int)lua_rawlen(L, arg);
  if (len < 1) luaL_error(L, "%s: expected a non-empty list of tensors", op);
  ct_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)len, 0);
  for (int i = 0; i < len; i++) {
    lua_rawgeti(L, arg, i + 1);
    ts[i] = lchalk_totensor(L, -1);
    if (!ts[i]) luaL_error(L, "%s: entry %d of the list is a %s, not a tensor", op, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  *n = len;
  return ts;
}

/* chalk.cat({a, b} [, dim]) joins along an existing dim (default 1); chalk.stack along a new one. */
static int l_cat_stack(lua_State *L) {
  bool stack = lua_toboolean(L, lua_upvalueindex(1));
  const char *op = stack ? "stack" : "cat";
  lua_settop(L, 2); /* the scratch array goes above the arguments */
  int n;
  ct_tensor **ts = check_list(L, 1, &n, op);
  int ndim = ts[0]->ndim + (stack ? 1 : 0);
  int d = lchalk_optdim(L, 2, ndim, op, 0);
  if (stack) LCHALK_RETURN(L, ct_stack(ts, n, d));
  LCHALK_RETURN(L, ct_cat(ts, n, d));
}

/* chalk.cross_entropy(logits, target), nll_loss(logp, target), mse_loss(a, b) */
static int l_cross_entropy(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_cross_entropy(a, b));
}
static int l_nll_loss(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_nll_loss(a, b));
}
static int l_mse_loss(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_mse_loss(a, b));
}

/* chalk.layer_norm(x, normalized_shape [, weight [, bias [, eps]]]): normalized_shape is the
 * shape of the trailing dims (a table, checked against x) or their count. */
static int l_layer_norm(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1);
  int nd;
  if (lua_istable(L, 2)) {
    int64_t shape[CT_MAX_DIMS];
    lchalk_checkshape(L, 2, shape, &nd, false, "layer_norm");
    for (int k = 0; k < nd; k++)
      if (nd > x->ndim || shape[k] != x->shape[x->ndim - nd + k]) {
        char a[160], b[160];
        return luaL_error(L, "layer_norm: normalized shape %s does not match the trailing dims of input %s",
                          ct_shape_str(shape, nd, a, sizeof a), ct_shape_str(x->shape, x->ndim, b, sizeof b));
      }
  } else {
    nd = lchalk_int_arg(L, luaL_checkinteger(L, 2), "layer_norm", "normalized dims");
  }
  ct_tensor *w = lua_isnoneornil(L, 3) ? NULL : lchalk_checktensor(L, 3);
  ct_tensor *b = lua_isnoneornil(L, 4) ? NULL : lchalk_checktensor(L, 4);
  double eps = luaL_optnumber(L, 5, 1e-5);
  LCHALK_RETURN(L, ct_layer_norm(x, nd, w, b, eps));
}

/* chalk.embedding(weight, idx): rows of weight at the 1-based indices idx. */
static int l_embedding(lua_State *L) {
  ct_tensor *w = lchalk_checktensor(L, 1), *idx = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_embedding(w, idx));
}

/* chalk.one_hot(idx, nclasses [, opts]): classes 1..nclasses; i64 unless opts.dtype says. */
static int l_one_hot(lua_State *L) {
  ct_tensor *idx = lchalk_checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  lchalk_opts o;
  lchalk_checkopts(L, 3, &o);
  LCHALK_RETURN(L, ct_one_hot(idx, (int64_t)n, o.has_dtype ? o.dtype : CT_I64));
}

/* An integer from a positional argument or an options table's field (default def). */
static int opt_int(lua_State *L, int arg, const char *field, int def) {
  if (lua_istable(L, arg)) {
    int v = def;
    if (lua_getfield(L, arg, field) != LUA_TNIL) v = lchalk_int_arg(L, luaL_checkinteger(L, -1), "conv2d", field);
    lua_pop(L, 1);
    return v;
  }
  return lchalk_int_arg(L, luaL_optinteger(L, arg, def), "conv2d", field);
}

/* chalk.conv2d(x, w [, b [, stride [, padding]]]) or conv2d(x, w, b, {stride=, padding=}) */
static int l_conv2d(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1), *w = lchalk_checktensor(L, 2);
  ct_tensor *b = lua_isnoneornil(L, 3) ? NULL : lchalk_checktensor(L, 3);
  int stride = opt_int(L, 4, "stride", 1);
  int padding = lua_istable(L, 4) ? opt_int(L, 4, "padding", 0) : lchalk_int_arg(L, luaL_optinteger(L, 5, 0), "conv2d", "padding");
  LCHALK_RETURN(L, ct_conv2d(x, w, b, stride, padding));
}

/* chalk.max_pool2d(x, kernel [, stride]): stride defaults to kernel. */
static int l_max_pool2d(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1);
  int k = lchalk_int_arg(L, luaL_checkinteger(L, 2), "max_pool2d", "kernel");
  int s = lchalk_int_arg(L, luaL_optinteger(L, 3, k), "max_pool2d", "stride");
  LCHALK_RETURN(L, ct_max_pool2d(x, k, s));
}

/* chalk.dropout(x [, p [, training]]): p defaults to 0.5, training to true. */
static int l_dropout(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
  LCHALK_RETURN(L, ct_dropout(x, p, training));
}

void lchalk_open_nn(lua_State *L, int chalk, int methods, int meta) {
  (void)meta;
  static const luaL_Reg ms[] = {{"gather", m_gather}, {"index_select", m_index_select}, {NULL, NULL}};
  lchalk_register(L, methods, ms);
  static const luaL_Reg fns[] = {{"cross_entropy", l_cross_entropy}, {"nll_loss", l_nll_loss},
                                 {"mse_loss", l_mse_loss},           {"layer_norm", l_layer_norm},
                                 {"embedding", l_embedding},         {"one_hot", l_one_hot},
                                 {"conv2d", l_conv2d},               {"max_pool2d", l_max_pool2d},
                                 {"dropout", l_dropout},             {NULL, NULL}};
  lua_pushvalue(L, chalk);
  luaL_setfuncs(L, fns, 0);
  lchalk_set_flagged(L, l_cat_stack, "cat", "stack");
  lua_pop(L, 1);
}
