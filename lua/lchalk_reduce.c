/* lchalk_reduce.c: reductions (sum, mean, max, min, argmax, argmin, var, std) and softmax,
 * log_softmax.
 *
 *   x:sum()              all elements, a 0-d tensor
 *   x:sum(d [, keepdim]) over dim d (1-based, negative from the end)
 *   x:sum({1,2} [, keepdim]) over several dims
 *   x:max(d [, keepdim]) values and indices (1-based i64), as torch; x:max() a 0-d tensor;
 *                        x:max(y) with a tensor y is the elementwise maximum (x:maximum(y))
 *   x:var([dims] [, unbiased [, keepdim]]) or x:var(dims, {unbiased=, keepdim=}); unbiased by
 *                        default, as torch
 *   x:softmax([d]), x:log_softmax([d])   d defaults to the last dim
 */
#include "lchalk_internal.h"

typedef struct {
  int dims[CT_MAX_DIMS];
  int n;
  bool keepdim;
} reduce_args;

/* dims at arg (none/nil: all), keepdim at arg + 1. */
static void check_reduce(lua_State *L, ct_tensor *t, int arg, const char *op, reduce_args *r) {
  r->n = lua_isnoneornil(L, arg) ? 0 : lchalk_checkdims(L, arg, t->ndim, r->dims, op);
  r->keepdim = lua_toboolean(L, arg + 1);
}

typedef enum { RED_SUM, RED_MEAN, RED_MAX, RED_MIN } reduce_kind;
static const char *const reduce_names[] = {"sum", "mean", "max", "min"};

static ct_tensor *reduce(reduce_kind k, ct_tensor *t, const reduce_args *r) {
  switch (k) {
  case RED_SUM: return ct_sum(t, r->dims, r->n, r->keepdim);
  case RED_MEAN: return ct_mean(t, r->dims, r->n, r->keepdim);
  case RED_MAX: return ct_max(t, r->dims, r->n, r->keepdim);
  case RED_MIN: return ct_min(t, r->dims, r->n, r->keepdim);
  }
  return NULL;
}

static int l_sum_mean(lua_State *L) {
  reduce_kind k = (reduce_kind)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *t = lchalk_checktensor(L, 1);
  reduce_args r;
  check_reduce(L, t, 2, reduce_names[k], &r);
  LCHALK_RETURN(L, reduce(k, t, &r));
}

/* max and min: over all, over dims, with indices over one dim, or elementwise against y. */
static int l_max_min(lua_State *L) {
  reduce_kind k = (reduce_kind)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (lchalk_totensor(L, 2)) {
    lua_getfield(L, lua_upvalueindex(2), k == RED_MAX ? "maximum" : "minimum");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
  }
  reduce_args r;
  check_reduce(L, t, 2, reduce_names[k], &r);
  bool with_indices = lua_type(L, 2) == LUA_TNUMBER;
  ct_tensor *v = reduce(k, t, &r);
  if (!v && lchalk_collect_on_oom(L)) v = reduce(k, t, &r);
  lchalk_pushtensor(L, v);
  if (!with_indices) return 1;
  ct_tensor *i = k == RED_MAX ? ct_argmax(t, r.dims[0], r.keepdim) : ct_argmin(t, r.dims[0], r.keepdim);
  lchalk_pushtensor(L, i);
  return 2;
}

/* x:argmax() over the flattened tensor; x:argmax(d [, keepdim]). 1-based i64 indices. */
static int l_arg(lua_State *L) {
  bool is_max = lua_toboolean(L, lua_upvalueindex(1));
  const char *op = is_max ? "argmax" : "argmin";
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? CT_ALL_DIMS : lchalk_checkdim(L, 2, t->ndim, op);
  bool keepdim = lua_toboolean(L, 3);
  if (is_max) LCHALK_RETURN(L, ct_argmax(t, d, keepdim));
  LCHALK_RETURN(L, ct_argmin(t, d, keepdim));
}

/* var/std arguments: dims, then unbiased and keepdim as booleans or an options table. */
static void check_var(lua_State *L, ct_tensor *t, const char *op, reduce_args *r, bool *unbiased) {
  int arg = 2;
  r->n = 0;
  *unbiased = true;
  r->keepdim = false;
  if (lua_type(L, arg) == LUA_TNUMBER || (lua_istable(L, arg) && !lchalk_isopts(L, arg)))
    r->n = lchalk_checkdims(L, arg++, t->ndim, r->dims, op);
  else if (lua_isnil(L, arg))
    arg++;
  if (lua_istable(L, arg)) {
    if (lua_getfield(L, arg, "unbiased") != LUA_TNIL) *unbiased = lua_toboolean(L, -1);
    if (lua_getfield(L, arg, "keepdim") != LUA_TNIL) r->keepdim = lua_toboolean(L, -1);
    lua_pop(L, 2);
  } else {
    if (!lua_isnoneornil(L, arg)) *unbiased = lua_toboolean(L, arg);
    r->keepdim = lua_toboolean(L, arg + 1);
  }
}

static ct_tensor *std_dev(ct_tensor *t, const reduce_args *r, bool unbiased) {
  ct_tensor *v = ct_var(t, r->dims, r->n, r->keepdim, unbiased);
  ct_tensor *s = v ? ct_sqrt(v) : NULL;
  ct_release(v);
  return s;
}

static int l_var(lua_State *L) {
  bool is_std = lua_toboolean(L, lua_upvalueindex(1));
  ct_tensor *t = lchalk_checktensor(L, 1);
  reduce_args r;
  bool unbiased;
  check_var(L, t, is_std ? "std" : "var", &r, &unbiased);
  if (is_std) LCHALK_RETURN(L, std_dev(t, &r, unbiased));
  LCHALK_RETURN(L, ct_var(t, r.dims, r.n, r.keepdim, unbiased));
}

static int l_softmax(lua_State *L) {
  bool log = lua_toboolean(L, lua_upvalueindex(1));
  ct_tensor *t = lchalk_checktensor(L, 1);
  int d = lchalk_optdim(L, 2, t->ndim, log ? "log_softmax" : "softmax", t->ndim ? t->ndim - 1 : 0);
  if (log) LCHALK_RETURN(L, ct_log_softmax(t, d));
  LCHALK_RETURN(L, ct_softmax(t, d));
}

void lchalk_open_reduce(lua_State *L, int chalk, int methods, int meta) {
  (void)chalk, (void)meta;
  lua_pushvalue(L, methods);
  for (int k = RED_SUM; k <= RED_MIN; k++) {
    lua_pushinteger(L, k);
    if (k == RED_MAX || k == RED_MIN) {
      lua_pushvalue(L, methods);
      lua_pushcclosure(L, l_max_min, 2);
    } else {
      lua_pushcclosure(L, l_sum_mean, 1);
    }
    lua_setfield(L, -2, reduce_names[k]);
  }
  static const struct {
    const char *name;
    lua_CFunction fn;
    bool flag;
  } flagged[] = {{"argmax", l_arg, true},   {"argmin", l_arg, false},        {"var", l_var, false},
                 {"std", l_var, true},      {"softmax", l_softmax, false},   {"log_softmax", l_softmax, true}};
  for (size_t i = 0; i < sizeof flagged / sizeof *flagged; i++) {
    lua_pushboolean(L, flagged[i].flag);
    lua_pushcclosure(L, flagged[i].fn, 1);
    lua_setfield(L, -2, flagged[i].name);
  }
  lua_pop(L, 1);
}
