/* lchalk_view.c: what a tensor is (numel, dim, size, stride, item, totable, is_contiguous) and
 * the view methods that share its storage (view, reshape, transpose, permute, narrow, select,
 * expand, unsqueeze, squeeze, flatten, contiguous, clone, detach).
 *
 * Dims and indices arrive 1-based (negative from the end) and are converted in lchalk_args.c.
 */
#include "lchalk_internal.h"

static int m_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_numel(lchalk_checktensor(L, 1)));
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, lchalk_checktensor(L, 1)->ndim);
  return 1;
}

/* x:size() is the shape table; x:size(d) one size. x:stride() alike, in elements. */
static int sizes(lua_State *L, bool strides) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  const int64_t *v = strides ? t->stride : t->shape;
  if (!lua_isnoneornil(L, 2)) {
    int d = lchalk_checkdim(L, 2, t->ndim, strides ? "stride" : "size");
    lua_pushinteger(L, t->ndim ? (lua_Integer)v[d] : 1);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)v[d]);
    lua_rawseti(L, -2, d + 1);
  }
  luaL_setmetatable(L, "chalk.Size");
  return 1;
}
static int m_size(lua_State *L) { return sizes(L, false); }
static int m_stride(lua_State *L) { return sizes(L, true); }

static void push_number(lua_State *L, ct_dtype dt, double v) {
  if (dt == CT_BOOL) lua_pushboolean(L, v != 0);
  else if (!ct_dtype_is_float(dt)) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
}

/* x:item(): the number in a one-element tensor (an integer for integer dtypes, a boolean for bool). */
static int m_item(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  double v;
  if (ct_item(t, &v)) return lchalk_error(L);
  push_number(L, t->dtype, v);
  return 1;
}

static void push_nested(lua_State *L, const ct_tensor *t, const double *v, int d, int64_t *k) {
  if (d == t->ndim) {
    push_number(L, t->dtype, v[(*k)++]);
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    push_nested(L, t, v, d + 1, k);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* x:totable(): nested Lua tables of numbers (a number for a 0-d tensor). */
static int m_totable(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int64_t n = ct_numel(t);
  double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
  if (n && ct_to_doubles(t, v)) return lchalk_error(L);
  int64_t k = 0;
  luaL_checkstack(L, t->ndim + 4, "totable");
  push_nested(L, t, v, 0, &k);
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, ct_is_contiguous(lchalk_checktensor(L, 1)));
  return 1;
}

/* x:view(4, -1) or x:view({4, -1}); reshape alike (copies only when it must). */
static int reshape_like(lua_State *L, bool view) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  int next = lchalk_checkshape(L, 2, shape, &ndim, true, view ? "view" : "reshape");
  if (!lua_isnone(L, next)) return luaL_argerror(L, next, "expected sizes (integers or one table)");
  if (view) LCHALK_RETURN(L, ct_view(t, shape, ndim));
  LCHALK_RETURN(L, ct_reshape(t, shape, ndim));
}
static int m_view(lua_State *L) { return reshape_like(L, true); }
static int m_reshape(lua_State *L) { return reshape_like(L, false); }

/* x:view_as(y), x:expand_as(y), x:reshape_as(y) */
static int m_view_as(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1), *o = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_view(t, o->shape, o->ndim));
}
static int m_reshape_as(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1), *o = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_reshape(t, o->shape, o->ndim));
}
static int m_expand_as(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1), *o = lchalk_checktensor(L, 2);
  LCHALK_RETURN(L, ct_expand(t, o->shape, o->ndim));
}

/* x:transpose(d0, d1); x:t() for a matrix (or vector: itself). */
static int m_transpose(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int a = lchalk_checkdim(L, 2, t->ndim, "transpose"), b = lchalk_checkdim(L, 3, t->ndim, "transpose");
  LCHALK_RETURN(L, ct_transpose(t, a, b));
}
static int m_t(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (t->ndim > 2) return luaL_error(L, "t: expects a tensor of at most 2 dims, got %d (use transpose)", t->ndim);
  if (t->ndim < 2) return lchalk_pushtensor(L, ct_retain(t));
  LCHALK_RETURN(L, ct_transpose(t, 0, 1));
}

/* x:permute(2, 1, 3) or x:permute({2, 1, 3}) */
static int m_permute(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int dims[CT_MAX_DIMS], n = 0;
  if (lua_istable(L, 2)) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, 2);
    if (len > CT_MAX_DIMS) return luaL_error(L, "permute: too many dims (%d)", (int)len);
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, 2, i);
      dims[n++] = lchalk_dim_from_lua(L, luaL_checkinteger(L, -1), t->ndim, "permute");
      lua_pop(L, 1);
    }
  } else {
    for (int a = 2; !lua_isnone(L, a); a++) {
      if (n == CT_MAX_DIMS) return luaL_error(L, "permute: too many dims");
      dims[n++] = lchalk_checkdim(L, a, t->ndim, "permute");
    }
  }
  LCHALK_RETURN(L, ct_permute(t, dims, n));
}

/* x:narrow(dim, start, length): start 1-based (negative from the end). */
static int m_narrow(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "narrow: cannot narrow a 0-d tensor");
  int d = lchalk_checkdim(L, 2, t->ndim, "narrow");
  lua_Integer s = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (s == 0) return luaL_error(L, "narrow: start 0 is invalid: indices count from 1 (negative from the end)");
  int64_t start = s > 0 ? (int64_t)s - 1 : t->shape[d] + (int64_t)s;
  if (start < 0)
    return luaL_error(L, "narrow: start %I is out of range for dim %d of size %I", s, d + 1,
                      (lua_Integer)t->shape[d]);
  LCHALK_RETURN(L, ct_narrow(t, d, start, (int64_t)len));
}

/* x:select(dim, i): i 1-based (negative from the end); the dim goes away. */
static int m_select(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "select: cannot index a 0-d tensor");
  int d = lchalk_checkdim(L, 2, t->ndim, "select");
  int64_t i = lchalk_index_from_lua(L, luaL_checkinteger(L, 3), t->shape[d], d, "select");
  LCHALK_RETURN(L, ct_select(t, d, i));
}

/* x:expand(3, -1) or x:expand({3, -1}): -1 keeps a size. */
static int m_expand(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  lchalk_checkshape(L, 2, shape, &ndim, true, "expand");
  LCHALK_RETURN(L, ct_expand(t, shape, ndim));
}

/* x:unsqueeze(d): d in 1..ndim+1 (negative from the end: -1 appends a dim). */
static int m_unsqueeze(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lchalk_dim_from_lua(L, luaL_checkinteger(L, 2), t->ndim + 1, "unsqueeze");
  LCHALK_RETURN(L, ct_unsqueeze(t, d));
}

/* x:squeeze() drops every size-1 dim; x:squeeze(d) only d (if its size is 1). */
static int m_squeeze(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? CT_ALL_DIMS : lchalk_checkdim(L, 2, t->ndim, "squeeze");
  if (t->ndim == 0) return lchalk_pushtensor(L, ct_retain(t));
  LCHALK_RETURN(L, ct_squeeze(t, d));
}

/* x:flatten([start_dim [, end_dim]]), by default all dims. */
static int m_flatten(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  int s = lchalk_optdim(L, 2, t->ndim, "flatten", 0);
  int e = lchalk_optdim(L, 3, t->ndim, "flatten", t->ndim ? t->ndim - 1 : 0);
  LCHALK_RETURN(L, ct_flatten(t, s, e));
}

static int m_contiguous(lua_State *L) { LCHALK_RETURN(L, ct_contiguous(lchalk_checktensor(L, 1))); }
static int m_clone(lua_State *L) { LCHALK_RETURN(L, ct_clone(lchalk_checktensor(L, 1))); }
static int m_detach(lua_State *L) { LCHALK_RETURN(L, ct_detach(lchalk_checktensor(L, 1))); }

void lchalk_open_view(lua_State *L, int chalk, int methods, int meta) {
  (void)chalk, (void)meta;
  static const luaL_Reg fns[] = {
      {"numel", m_numel},         {"dim", m_dim},
      {"size", m_size},           {"stride", m_stride},
      {"item", m_item},           {"totable", m_totable},
      {"is_contiguous", m_is_contiguous},
      {"view", m_view},           {"reshape", m_reshape},
      {"view_as", m_view_as},     {"reshape_as", m_reshape_as},
      {"expand_as", m_expand_as}, {"transpose", m_transpose},
      {"t", m_t},                 {"permute", m_permute},
      {"narrow", m_narrow},       {"select", m_select},
      {"expand", m_expand},       {"unsqueeze", m_unsqueeze},
      {"squeeze", m_squeeze},     {"flatten", m_flatten},
      {"contiguous", m_contiguous}, {"clone", m_clone},
      {"detach", m_detach},       {NULL, NULL}};
  lchalk_register(L, methods, fns);
}
