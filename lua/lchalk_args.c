/* lchalk_args.c: reading Lua arguments: 1-based dims and indices, shapes, dims lists, dtype and
 * device names, options tables, and numbers standing in for tensors.
 *
 * Invariant: every conversion from Lua's 1-based, negative-from-the-end convention to the C API's
 * 0-based one happens here, with range errors worded in the user's (1-based) terms.
 */
#include <limits.h>
#include <string.h>

#include "lchalk_internal.h"

int lchalk_int_arg(lua_State *L, lua_Integer v, const char *op, const char *what) {
  if (v < INT_MIN || v > INT_MAX)
    return luaL_error(L, "%s: %s %I is out of range (at most %d in magnitude)", op, what, v, INT_MAX);
  return (int)v;
}

int lchalk_dim_from_lua(lua_State *L, lua_Integer d, int ndim, const char *op) {
  int n = ndim ? ndim : 1; /* a 0-d tensor accepts dim 1 / -1, as torch does */
  if (d == 0)
    return luaL_error(L, "%s: dim 0 is invalid: dims count from 1 (negative from the end, -1 is the last)", op);
  if (d > n || d < -n)
    return luaL_error(L, "%s: dim %I is out of range for a tensor of %d dims (valid: 1..%d or -%d..-1)", op, d,
                      ndim, n, n);
  return d > 0 ? (int)d - 1 : (int)d + n;
}

int lchalk_checkdim(lua_State *L, int arg, int ndim, const char *op) {
  return lchalk_dim_from_lua(L, luaL_checkinteger(L, arg), ndim, op);
}

int lchalk_optdim(lua_State *L, int arg, int ndim, const char *op, int def) {
  return lua_isnoneornil(L, arg) ? def : lchalk_checkdim(L, arg, ndim, op);
}

int64_t lchalk_index_from_lua(lua_State *L, lua_Integer i, int64_t n, int dim, const char *op) {
  if (i == 0)
    return luaL_error(L, "%s: index 0 is invalid for dim %d: indices count from 1 (negative from the end)", op,
                      dim + 1);
  if (i > n || i < -n)
    return luaL_error(L, "%s: index %I is out of range for dim %d of size %I", op, i, dim + 1, (lua_Integer)n);
  return i > 0 ? (int64_t)i - 1 : (int64_t)i + n;
}

int lchalk_checkshape(lua_State *L, int first, int64_t *shape, int *ndim, bool allow_neg, const char *op) {
  int n = 0, next = first;
  if (lua_istable(L, first)) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, first);
    if (len > CT_MAX_DIMS) return luaL_error(L, "%s: %d dims requested, at most %d supported", op, (int)len, CT_MAX_DIMS);
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, first, i);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_error(L, "%s: shape entry %d is not an integer", op, (int)i);
      shape[n++] = (int64_t)v;
      lua_pop(L, 1);
    }
    next = first + 1;
  } else {
    while (lua_type(L, next) == LUA_TNUMBER) {
      if (n == CT_MAX_DIMS) return luaL_error(L, "%s: more than %d dims requested", op, CT_MAX_DIMS);
      shape[n++] = (int64_t)luaL_checkinteger(L, next);
      next++;
    }
  }
  for (int d = 0; d < n; d++)
    if (shape[d] < 0 && !(allow_neg && shape[d] == -1))
      return luaL_error(L, "%s: invalid size %I at dim %d", op, (lua_Integer)shape[d], d + 1);
  *ndim = n;
  return next;
}

int lchalk_checkdims(lua_State *L, int arg, int ndim, int *dims, const char *op) {
  int n = 0;
  if (lua_istable(L, arg)) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, arg);
    if (len > CT_MAX_DIMS) return luaL_error(L, "%s: too many dims (%d)", op, (int)len);
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, arg, i);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_error(L, "%s: dims entry %d is not an integer", op, (int)i);
      lua_pop(L, 1);
      dims[n++] = lchalk_dim_from_lua(L, v, ndim, op);
    }
  } else {
    dims[n++] = lchalk_checkdim(L, arg, ndim, op);
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (dims[i] == dims[j]) return luaL_error(L, "%s: dim %d appears twice", op, dims[i] + 1);
  return n;
}

ct_dtype lchalk_checkdtype(lua_State *L, int idx) {
  ct_dtype dt;
  if (ct_dtype_from_name(luaL_checkstring(L, idx), &dt)) lchalk_error(L);
  return dt;
}

void lchalk_require_device(lua_State *L, ct_device d) {
  if (d.type != CT_CUDA) return;
  char s[32];
  ct_device_str(d, s, sizeof s);
  if (!ct_cuda_available()) {
    const char *why = ct_cuda_unavailable_reason();
    luaL_error(L, "device %s is not available: %s (chalk.cuda.is_available() is false)", s, why ? why : "no CUDA");
  }
  int n = ct_cuda_device_count();
  if (d.index >= n) luaL_error(L, "device %s is not available: this machine has %d CUDA device%s", s, n, n == 1 ? "" : "s");
}

ct_device lchalk_checkdevice(lua_State *L, int idx) {
  ct_device dev;
  if (ct_device_parse(luaL_checkstring(L, idx), &dev)) lchalk_error(L);
  lchalk_require_device(L, dev);
  return dev;
}

void lchalk_checkopts(lua_State *L, int idx, lchalk_opts *o) {
  memset(o, 0, sizeof *o);
  o->dtype = CT_F32;
  o->device = ct_cpu();
  o->requires_grad = -1;
  if (lua_isnoneornil(L, idx)) return;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int v = lua_gettop(L);
    if (k && !strcmp(k, "dtype")) {
      o->dtype = lchalk_checkdtype(L, v);
      o->has_dtype = true;
    } else if (k && !strcmp(k, "device")) {
      o->device = lchalk_checkdevice(L, v);
      o->has_device = true;
    } else if (k && !strcmp(k, "requires_grad")) {
      if (!lua_isboolean(L, v)) luaL_error(L, "option requires_grad must be a boolean");
      o->requires_grad = lua_toboolean(L, v);
    } else if (k && !strcmp(k, "name")) {
      if (lua_type(L, v) != LUA_TSTRING) luaL_error(L, "option name must be a string");
      o->name = lua_tostring(L, v); /* anchored by the options table */
    } else {
      lua_pushvalue(L, -2);
      luaL_error(L, "unknown option '%s' (options: dtype, device, requires_grad, name)", luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
}

void lchalk_apply_opts(lua_State *L, const lchalk_opts *o) {
  ct_tensor *t = lchalk_checktensor(L, -1);
  if (o->requires_grad >= 0 && ct_requires_grad_(t, o->requires_grad)) lchalk_error(L);
  if (o->name && ct_set_name(t, o->name)) lchalk_error(L);
}

bool lchalk_isopts(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return false;
  if (lua_getmetatable(L, idx)) { /* a chalk.Size (x.shape) or other object: not options */
    lua_pop(L, 1);
    return false;
  }
  lua_pushnil(L);
  if (!lua_next(L, idx)) return false; /* {} is an empty shape or dims list, not options */
  bool string_key = lua_type(L, -2) == LUA_TSTRING;
  lua_pop(L, 2);
  return string_key;
}

ct_tensor *lchalk_checkoperand(lua_State *L, int idx, const ct_tensor *like) {
  ct_tensor *t = lchalk_totensor(L, idx);
  if (t) return t;
  idx = lua_absindex(L, idx);
  double v;
  if (lua_type(L, idx) == LUA_TNUMBER) v = lua_tonumber(L, idx);
  else if (lua_type(L, idx) == LUA_TBOOLEAN) v = lua_toboolean(L, idx);
  else return luaL_typeerror(L, idx, "chalk tensor or number"), NULL;
  ct_tensor *s = like ? ct_scalar_like(like, v) : ct_scalar(v, CT_F32, ct_cpu());
  lchalk_pushtensor(L, s);
  lua_replace(L, idx);
  return s;
}
