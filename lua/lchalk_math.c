/* lchalk_math.c: arithmetic (+ - * / ^ and unary -, with numbers on either side), the
 * elementwise methods (exp ... gelu, pow, clamp), comparisons (eq ne lt le gt ge), where,
 * maximum/minimum and matmul.
 *
 * A number beside a tensor becomes the cheapest faithful op: x + 2 and x * 2 use the
 * add_scalar/mul_scalar rows, x - 2 is add_scalar(-2), x ^ 2 is pow_scalar; 2 - x, 2 / x, x / 2,
 * 2 ^ x and comparisons use a 0-d tensor made with ct_scalar_like (so x's dtype is kept when the
 * number fits it) and the binary op, which broadcasts it.
 */
#include <math.h>
#include <string.h>

#include "lchalk_internal.h"

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW } arith_op;
static const char *const arith_names[] = {"add", "sub", "mul", "div", "pow"};

static ct_tensor *tensor_tensor(arith_op op, ct_tensor *a, ct_tensor *b) {
  switch (op) {
  case OP_ADD: return ct_add(a, b);
  case OP_SUB: return ct_sub(a, b);
  case OP_MUL: return ct_mul(a, b);
  case OP_DIV: return ct_div(a, b);
  case OP_POW: return ct_pow(a, b);
  }
  return NULL;
}

/* tensor op number, where the number is s (already a 0-d tensor) or v. */
static ct_tensor *tensor_number(arith_op op, ct_tensor *a, double v, ct_tensor *s) {
  switch (op) {
  case OP_ADD: return ct_add_scalar(a, v);
  case OP_SUB: return ct_add_scalar(a, -v);
  case OP_MUL: return ct_mul_scalar(a, v);
  case OP_DIV: return ct_div(a, s);
  case OP_POW: return ct_pow_scalar(a, v);
  }
  return NULL;
}

/* number op tensor */
static ct_tensor *number_tensor(arith_op op, double v, ct_tensor *s, ct_tensor *b) {
  switch (op) {
  case OP_ADD: return ct_add_scalar(b, v);
  case OP_MUL: return ct_mul_scalar(b, v);
  case OP_SUB: return ct_sub(s, b);
  case OP_DIV: return ct_div(s, b);
  case OP_POW: return ct_pow(s, b);
  }
  return NULL;
}

static bool is_number(lua_State *L, int idx) { return lua_type(L, idx) == LUA_TNUMBER; }

/* a op b for the values at stack 1 and 2 (metamethods and the add/sub/... methods). */
static int arith(lua_State *L, arith_op op) {
  bool na = is_number(L, 1), nb = is_number(L, 2);
  if (na && nb) { /* only reached through the methods: chalk.add(1, 2) */
    return luaL_error(L, "%s: expected at least one tensor, got two numbers", arith_names[op]);
  }
  if (!na && !nb) {
    ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
    LCHALK_RETURN(L, tensor_tensor(op, a, b));
  }
  if (nb) {
    ct_tensor *a = lchalk_checktensor(L, 1);
    double v = lua_tonumber(L, 2);
    ct_tensor *s = op == OP_DIV ? lchalk_checkoperand(L, 2, a) : NULL;
    LCHALK_RETURN(L, tensor_number(op, a, v, s));
  }
  ct_tensor *b = lchalk_checktensor(L, 2);
  double v = lua_tonumber(L, 1);
  ct_tensor *s = op != OP_ADD && op != OP_MUL ? lchalk_checkoperand(L, 1, b) : NULL;
  LCHALK_RETURN(L, number_tensor(op, v, s, b));
}

static int l_add(lua_State *L) { return arith(L, OP_ADD); }
static int l_sub(lua_State *L) { return arith(L, OP_SUB); }
static int l_mul(lua_State *L) { return arith(L, OP_MUL); }
static int l_div(lua_State *L) { return arith(L, OP_DIV); }
static int l_pow(lua_State *L) { return arith(L, OP_POW); }
static int l_unm(lua_State *L) { LCHALK_RETURN(L, ct_neg(lchalk_checktensor(L, 1))); }

/* x < y cannot return a tensor in Lua (the result is made a boolean): say what to write instead. */
static int l_compare_error(lua_State *L) {
  return luaL_error(L, "tensors cannot be compared with < <= > >= (Lua makes the result a boolean); "
                       "use x:lt(y), x:le(y), x:gt(y), x:ge(y), or x:item() for a number");
}

/* ---- elementwise unary --------------------------------------------------------------------- */

static const struct {
  const char *name;
  ct_tensor *(*fn)(ct_tensor *);
} unary[] = {
    {"neg", ct_neg},   {"exp", ct_exp},         {"log", ct_log},   {"sqrt", ct_sqrt}, {"abs", ct_abs},
    {"sign", ct_sign}, {"sin", ct_sin},         {"cos", ct_cos},   {"tanh", ct_tanh}, {"sigmoid", ct_sigmoid},
    {"relu", ct_relu}, {"gelu", ct_gelu},       {"silu", ct_silu}, {NULL, NULL},
};

static int l_unary(lua_State *L) {
  int k = (int)lua_tointeger(L, lua_upvalueindex(1));
  LCHALK_RETURN(L, unary[k].fn(lchalk_checktensor(L, 1)));
}

/* x:pow(p): p a number (pow_scalar) or a tensor (broadcast). */
static int m_pow(lua_State *L) { return arith(L, OP_POW); }

/* x:clamp(lo, hi) with nil for an open side, or x:clamp{min=, max=}. */
static int m_clamp(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  double lo = -INFINITY, hi = INFINITY;
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "min") != LUA_TNIL) lo = luaL_checknumber(L, -1);
    if (lua_getfield(L, 2, "max") != LUA_TNIL) hi = luaL_checknumber(L, -1);
    lua_pop(L, 2);
  } else {
    lo = luaL_optnumber(L, 2, -INFINITY);
    hi = luaL_optnumber(L, 3, INFINITY);
  }
  LCHALK_RETURN(L, ct_clamp(t, lo, hi));
}

/* ---- comparisons, where, maximum/minimum ----------------------------------------------------- */

static const struct {
  const char *name;
  ct_tensor *(*fn)(ct_tensor *, ct_tensor *);
} binary[] = {
    {"eq", ct_eq}, {"ne", ct_ne}, {"lt", ct_lt}, {"le", ct_le}, {"gt", ct_gt}, {"ge", ct_ge},
    {"maximum", ct_maximum}, {NULL, NULL},
};

/* Both operands as tensors: a number on either side is made to combine with the other tensor. */
static void operands(lua_State *L, ct_tensor **a, ct_tensor **b) {
  ct_tensor *ta = lchalk_totensor(L, 1), *tb = lchalk_totensor(L, 2);
  if (!ta && !tb) {
    lchalk_checktensor(L, 1); /* raises the right error */
  }
  *a = lchalk_checkoperand(L, 1, tb);
  *b = lchalk_checkoperand(L, 2, *a);
}

static int l_binary(lua_State *L) {
  int k = (int)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *a, *b;
  operands(L, &a, &b);
  LCHALK_RETURN(L, binary[k].fn(a, b));
}

/* minimum(a, b) = -maximum(-a, -b): exact, and differentiable through maximum's rule. */
static ct_tensor *minimum(ct_tensor *a, ct_tensor *b) {
  ct_tensor *na = ct_neg(a), *nb = na ? ct_neg(b) : NULL;
  ct_tensor *m = nb ? ct_maximum(na, nb) : NULL;
  ct_tensor *r = m ? ct_neg(m) : NULL;
  ct_release(na), ct_release(nb), ct_release(m);
  return r;
}

static int l_minimum(lua_State *L) {
  ct_tensor *a, *b;
  operands(L, &a, &b);
  LCHALK_RETURN(L, minimum(a, b));
}

/* chalk.where(cond, a, b): a where cond is true, else b; a and b may be numbers (made to combine
 * with the other operand, or with cond's device when both are numbers). */
static int l_where(lua_State *L) {
  ct_tensor *c = lchalk_checktensor(L, 1);
  ct_tensor *ta = lchalk_totensor(L, 2), *tb = lchalk_totensor(L, 3);
  ct_tensor *a = lchalk_checkoperand(L, 2, tb ? tb : c);
  ct_tensor *b = lchalk_checkoperand(L, 3, ta ? ta : a);
  LCHALK_RETURN(L, ct_where(c, a, b));
}

/* x:matmul(y), chalk.matmul(x, y): torch.matmul semantics (batched, broadcast). */
/* x:matmul(y [, {impl = "tiled", tiles = {bm, bn, bk}}]): impl picks one of the matmul row's
   implementations (chalk.ops() lists them), run through the op table like the default.
   x:matmul(q) with q quantized (chalk.quantize(W)) is x @ W through the qmatmul row, which reads W
   in its packed form (core/ops/ops_quant.c). */
static int l_matmul(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1);
  ct_qtensor *q = lchalk_testq(L, 2);
  if (q) LCHALK_RETURN(L, ct_qmatmul(a, q, true));
  ct_tensor *b = lchalk_checktensor(L, 2);
  if (lua_isnoneornil(L, 3)) LCHALK_RETURN(L, ct_matmul(a, b));
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "impl");
  const char *impl = luaL_optstring(L, -1, NULL); /* stays alive: a field of the options table */
  int tiles[3], *tp = NULL;
  if (lua_getfield(L, 3, "tiles") == LUA_TTABLE) {
    for (int i = 0; i < 3; i++, lua_pop(L, 1))
      tiles[i] = lua_geti(L, -1, i + 1) == LUA_TNUMBER ? lchalk_int_arg(L, luaL_checkinteger(L, -1), "matmul", "tile") : 64;
    tp = tiles;
  }
  lua_pop(L, 2);
  LCHALK_RETURN(L, ct_matmul_impl(a, b, impl, tp));
}

void lchalk_open_math(lua_State *L, int chalk, int methods, int meta) {
  static const luaL_Reg metamethods[] = {{"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul},
                                         {"__div", l_div}, {"__pow", l_pow}, {"__unm", l_unm},
                                         {"__lt", l_compare_error}, {"__le", l_compare_error}, {NULL, NULL}};
  lchalk_register(L, meta, metamethods);
  static const luaL_Reg fns[] = {{"add", l_add},     {"sub", l_sub},         {"mul", l_mul},
                                 {"div", l_div},     {"pow", m_pow},         {"clamp", m_clamp},
                                 {"matmul", l_matmul}, {"minimum", l_minimum}, {NULL, NULL}};
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, fns, 0);
  for (int k = 0; unary[k].name; k++) {
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_unary, 1);
    lua_setfield(L, -2, unary[k].name);
  }
  for (int k = 0; binary[k].name; k++) {
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_binary, 1);
    lua_setfield(L, -2, binary[k].name);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_where);
  lua_setfield(L, chalk, "where");
}
