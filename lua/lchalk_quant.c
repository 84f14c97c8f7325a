/* lchalk_quant.c: quantized weights in Lua (core/ops/ops_quant.c), a userdata "chalk.QTensor":
 *   q = chalk.quantize(w, "int8"|"int8_channel"|"q4"|"q8")    w f32/f64, 1-D or 2-D, any device
 *   chalk.dequantize(q) -> f32 tensor     chalk.qmatmul(x, q [, transposed]) -> x @ W^T (or x @ W)
 *   q.format q.bits q.shape q.rows q.cols q.numel q.bytes q.device q.data (the i8 bytes)
 *   q:dequantize()  q:scales() (each group's step d, f32 [rows, groups])  q:to(device)  q:matmul(x)
 * lua/chalk/quant.lua builds the lesson's API (quant.quantize, quantize_model, charts) on these. */
#include <stdio.h>
#include <string.h>

#include "lchalk_internal.h"

#define LCHALK_QTENSOR "chalk.QTensor"

typedef struct {
  ct_qtensor *q;
} qbox;

static ct_qtensor *checkq(lua_State *L, int idx) {
  qbox *b = luaL_testudata(L, idx, LCHALK_QTENSOR);
  if (!b) {
    const char *tn = luaL_typename(L, idx);
    luaL_error(L, "quant: argument %d must be a quantized tensor (from chalk.quantize), got %s", idx,
               lchalk_totensor(L, idx) ? "a tensor (quantize it first)" : tn);
  }
  if (!b->q) luaL_error(L, "quant: quantized tensor used after free");
  return b->q;
}

/* The quantized tensor at idx, or NULL when the value there is not one (x:matmul(q) asks). */
ct_qtensor *lchalk_testq(lua_State *L, int idx) {
  qbox *b = luaL_testudata(L, idx, LCHALK_QTENSOR);
  return b ? checkq(L, idx) : NULL;
}

/* A new empty box on the stack (anchored before the core call, so nothing leaks on a raise). */
static qbox *newbox(lua_State *L) {
  qbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->q = NULL;
  luaL_setmetatable(L, LCHALK_QTENSOR);
  return b;
}

static int pushq(lua_State *L, qbox *b, ct_qtensor *q) {
  if (!q) return lchalk_error(L);
  b->q = q;
  lchalk_gc_account(L);
  return 1;
}

static int l_quantize(lua_State *L) {
  ct_tensor *w = lchalk_checktensor(L, 1);
  ct_qformat f;
  if (ct_qformat_from_name(luaL_checkstring(L, 2), &f)) return lchalk_error(L);
  qbox *b = newbox(L);
  return pushq(L, b, ct_quantize(w, f));
}

static int l_dequantize(lua_State *L) { LCHALK_RETURN(L, ct_dequantize(checkq(L, 1))); }
static int l_scales(lua_State *L) { LCHALK_RETURN(L, ct_qscales(checkq(L, 1))); }

static int l_qmatmul(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1);
  ct_qtensor *q = checkq(L, 2);
  bool t = lua_toboolean(L, 3);
  LCHALK_RETURN(L, ct_qmatmul(x, q, t));
}

static int l_matmul_method(lua_State *L) { /* q:matmul(x): x @ W^T */
  ct_qtensor *q = checkq(L, 1);
  ct_tensor *x = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_qmatmul(x, q, lua_toboolean(L, 3)));
}

static int l_to(lua_State *L) {
  ct_qtensor *q = checkq(L, 1);
  ct_device dev = lchalk_checkdevice(L, 2);
  qbox *b = newbox(L);
  return pushq(L, b, ct_qtensor_to(q, dev));
}

static int l_gc(lua_State *L) {
  qbox *b = luaL_checkudata(L, 1, LCHALK_QTENSOR);
  ct_qtensor *q = b->q;
  b->q = NULL; /* first: __close then __gc frees once */
  ct_qtensor_free(q);
  return 0;
}

static int l_tostring(lua_State *L) {
  ct_qtensor *q = checkq(L, 1);
  char dev[32], bits[32], shape[64];
  ct_device_str(q->data->storage->device, dev, sizeof dev);
  snprintf(bits, sizeof bits, "%.4g", ct_qtensor_bits(q));
  int64_t s[2] = {q->rows, q->cols};
  ct_shape_str(q->ndim == 2 ? s : s + 1, q->ndim, shape, sizeof shape);
  lua_pushfstring(L, "QTensor(%s, %s bits/weight, shape %s, %I bytes, %s)", ct_qformat_name(q->format), bits, shape,
                  (lua_Integer)q->data->shape[0], dev);
  return 1;
}

static const luaL_Reg methods[] = {
    {"dequantize", l_dequantize}, {"scales", l_scales}, {"to", l_to}, {"matmul", l_matmul_method}, {NULL, NULL}};

static int l_index(lua_State *L) {
  ct_qtensor *q = checkq(L, 1);
  const char *k = luaL_checkstring(L, 2);
  char dev[32];
  if (!strcmp(k, "format"))
    lua_pushstring(L, ct_qformat_name(q->format));
  else if (!strcmp(k, "bits"))
    lua_pushnumber(L, ct_qtensor_bits(q));
  else if (!strcmp(k, "bytes"))
    lua_pushinteger(L, q->data->shape[0]);
  else if (!strcmp(k, "rows"))
    lua_pushinteger(L, q->rows);
  else if (!strcmp(k, "cols"))
    lua_pushinteger(L, q->cols);
  else if (!strcmp(k, "numel"))
    lua_pushinteger(L, q->rows * q->cols);
  else if (!strcmp(k, "device"))
    lua_pushstring(L, ct_device_str(q->data->storage->device, dev, sizeof dev));
  else if (!strcmp(k, "data"))
    return lchalk_pushtensor(L, ct_retain(q->data));
  else if (!strcmp(k, "shape")) {
    lua_createtable(L, 2, 0);
    if (q->ndim == 2) lua_pushinteger(L, q->rows), lua_rawseti(L, -2, 1);
    lua_pushinteger(L, q->cols), lua_rawseti(L, -2, q->ndim);
  } else {
    for (const luaL_Reg *m = methods; m->name; m++)
      if (!strcmp(k, m->name)) return lua_pushcfunction(L, m->func), 1;
    lua_pushnil(L);
  }
  return 1;
}

static int l_is_qtensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, LCHALK_QTENSOR) != NULL);
  return 1;
}

/* chalk.quantize, chalk.dequantize, chalk.qmatmul, chalk.is_qtensor */
static const luaL_Reg functions[] = {
    {"quantize", l_quantize}, {"dequantize", l_dequantize}, {"qmatmul", l_qmatmul}, {"is_qtensor", l_is_qtensor}, {0}};

void lchalk_open_quant(lua_State *L, int chalk, int methods_idx, int meta) {
  (void)methods_idx, (void)meta;
  luaL_newmetatable(L, LCHALK_QTENSOR);
  static const luaL_Reg mm[] = {
      {"__index", l_index}, {"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
  luaL_setfuncs(L, mm, 0);
  lua_pop(L, 1);
  lchalk_register(L, chalk, functions);
}
