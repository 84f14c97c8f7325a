/* lchalk_create.c: making tensors from Lua: chalk.tensor (nested tables), zeros, ones, full, eye,
 * arange, linspace, the *_like family, and the random ones (rand, randn, randint, randperm,
 * manual_seed).
 *
 * Every constructor takes an optional trailing options table {dtype=, device=, requires_grad=,
 * name=}; dtype defaults to f32 (i64 for arange over integers, randint and randperm, bool for
 * tables of booleans).
 */
#include <math.h>
#include <string.h>

#include "lchalk_internal.h"
#include "ctx/ctx.h"

#define MAX_ELEMENTS ((int64_t)1 << 40)

typedef struct {
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  double *out;
  int64_t k;
} fill_state;

/* Depth-first walk of the nested table at idx (depth d), writing leaves in row-major order. */
static void fill_values(lua_State *L, int idx, int d, fill_state *s) {
  if (d == s->ndim) {
    ct_tensor *t;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: s->out[s->k++] = lua_tonumber(L, idx); return;
    case LUA_TBOOLEAN: s->out[s->k++] = lua_toboolean(L, idx); return;
    default:
      t = lchalk_totensor(L, idx);
      if (t && ct_numel(t) == 1) {
        if (ct_item(t, &s->out[s->k++])) lchalk_error(L);
        return;
      }
      if (t)
        luaL_error(L, "tensor: a table entry is a tensor of %d elements (only one-element tensors are numbers; "
                      "use chalk.stack or chalk.cat to join tensors)", (int)ct_numel(t));
      luaL_error(L, "tensor: expected a number at depth %d, got %s", d + 1, luaL_typename(L, idx));
    }
  }
  if (!lua_istable(L, idx) || lchalk_totensor(L, idx))
    luaL_error(L, "tensor: the nested tables are ragged: expected a table of %d entries at depth %d, got %s",
               (int)s->shape[d], d + 1, luaL_typename(L, idx));
  if ((int64_t)lua_rawlen(L, idx) != s->shape[d])
    luaL_error(L, "tensor: the nested tables are ragged: a table at depth %d has %d entries, expected %d", d + 1,
               (int)lua_rawlen(L, idx), (int)s->shape[d]);
  for (int64_t i = 1; i <= s->shape[d]; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    fill_values(L, lua_gettop(L), d + 1, s);
    lua_pop(L, 1);
  }
}

ct_tensor *lchalk_from_lua(lua_State *L, int idx, bool has_dtype, ct_dtype dt, ct_device dev) {
  idx = lua_absindex(L, idx);
  fill_state s = {.ndim = 0};
  int64_t n = 1;
  lua_pushvalue(L, idx); /* descend along first entries to find the shape */
  while (lua_istable(L, -1) && !lchalk_totensor(L, -1)) {
    if (s.ndim == CT_MAX_DIMS) luaL_error(L, "tensor: nested deeper than %d dims", CT_MAX_DIMS);
    int64_t len = (int64_t)lua_rawlen(L, -1);
    s.shape[s.ndim++] = len;
    n *= len;
    if (n > MAX_ELEMENTS) luaL_error(L, "tensor: too many elements");
    if (len == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  bool booleans = lua_isboolean(L, -1);
  lua_pop(L, 1);
  if (!has_dtype) dt = booleans ? CT_BOOL : CT_F32;
  s.out = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0); /* anchored scratch */
  fill_values(L, idx, 0, &s);
  ct_tensor *t = ct_from_doubles(s.out, s.shape, s.ndim, dt, dev);
  lua_pop(L, 1);
  return t;
}

/* A copy of tensor x as a new leaf, converted to the options' dtype and device. */
static ct_tensor *copy_tensor(ct_tensor *x, const lchalk_opts *o) {
  bool old = ct_set_grad_enabled(false);
  ct_tensor *c = ct_clone(x);
  ct_tensor *d = c && o->has_dtype ? ct_to_dtype(c, o->dtype) : ct_retain(c);
  ct_tensor *e = d && o->has_device ? ct_to_device(d, o->device) : ct_retain(d);
  ct_release(c), ct_release(d);
  ct_set_grad_enabled(old);
  return e;
}

/* chalk.tensor(data, opts) */
/* Pushes a newly made tensor t (NULL: raises the core's error) with the options' requires_grad
   and name applied; returns 1, the end of every constructor here. */
static int push_made(lua_State *L, ct_tensor *t, const lchalk_opts *o) {
  lchalk_pushtensor(L, t);
  lchalk_apply_opts(L, o);
  return 1;
}

static int l_tensor(lua_State *L) {
  lchalk_opts o;
  lchalk_checkopts(L, 2, &o);
  ct_tensor *x = lchalk_totensor(L, 1);
  if (x) lchalk_pushtensor(L, copy_tensor(x, &o));
  else if (lua_istable(L, 1) || lua_isnumber(L, 1) || lua_isboolean(L, 1))
    lchalk_pushtensor(L, lchalk_from_lua(L, 1, o.has_dtype, o.dtype, o.device));
  else
    return luaL_typeerror(L, 1, "table, number or tensor");
  lchalk_apply_opts(L, &o);
  return 1;
}

typedef enum { FILL_ZEROS, FILL_ONES, FILL_RAND, FILL_RANDN } fill_kind;

static ct_tensor *make_filled(fill_kind kind, const int64_t *shape, int ndim, ct_dtype dt, ct_device dev) {
  switch (kind) {
  case FILL_ZEROS: return ct_zeros(shape, ndim, dt, dev);
  case FILL_ONES: return ct_full(shape, ndim, 1, dt, dev);
  case FILL_RAND: return ct_rand(shape, ndim, dt, dev);
  case FILL_RANDN: return ct_randn(shape, ndim, dt, dev);
  }
  return NULL;
}

static const char *const fill_names[] = {"zeros", "ones", "rand", "randn"};

/* chalk.zeros(2,3 [, opts]), chalk.zeros({2,3} [, opts]); ones, rand, randn alike. */
static int l_filled(lua_State *L) {
  fill_kind kind = (fill_kind)lua_tointeger(L, lua_upvalueindex(1));
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  int next = lchalk_checkshape(L, 1, shape, &ndim, false, fill_names[kind]);
  lchalk_opts o;
  lchalk_checkopts(L, next, &o);
  ct_tensor *t = make_filled(kind, shape, ndim, o.dtype, o.device);
  if (!t && lchalk_collect_on_oom(L)) t = make_filled(kind, shape, ndim, o.dtype, o.device);
  return push_made(L, t, &o);
}

/* chalk.zeros_like(x [, opts]); ones_like, rand_like, randn_like alike. */
static int l_filled_like(lua_State *L) {
  fill_kind kind = (fill_kind)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *x = lchalk_checktensor(L, 1);
  lchalk_opts o;
  lchalk_checkopts(L, 2, &o);
  ct_dtype dt = o.has_dtype ? o.dtype : x->dtype;
  ct_device dev = o.has_device ? o.device : x->storage->device;
  ct_tensor *t = make_filled(kind, x->shape, x->ndim, dt, dev);
  if (!t && lchalk_collect_on_oom(L)) t = make_filled(kind, x->shape, x->ndim, dt, dev);
  return push_made(L, t, &o);
}

/* chalk.full({2,3}, value [, opts]) */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  lchalk_checkshape(L, 1, shape, &ndim, false, "full");
  double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
  lchalk_opts o;
  lchalk_checkopts(L, 3, &o);
  if (!o.has_dtype && lua_isboolean(L, 2)) o.dtype = CT_BOOL;
  return push_made(L, ct_full(shape, ndim, v, o.dtype, o.device), &o);
}

/* chalk.full_like(x, value [, opts]) */
static int l_full_like(lua_State *L) {
  ct_tensor *x = lchalk_checktensor(L, 1);
  double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
  lchalk_opts o;
  lchalk_checkopts(L, 3, &o);
  ct_dtype dt = o.has_dtype ? o.dtype : x->dtype;
  ct_device dev = o.has_device ? o.device : x->storage->device;
  return push_made(L, ct_full(x->shape, x->ndim, v, dt, dev), &o);
}

/* chalk.eye(n [, opts]) */
static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lchalk_opts o;
  lchalk_checkopts(L, 2, &o);
  if (n < 0) return luaL_error(L, "eye: n must be >= 0, got %I", (lua_Integer)n);
  return push_made(L, ct_eye((int64_t)n, o.dtype, o.device), &o);
}

/* chalk.arange(end), arange(start, end [, step]) [, opts]: [start, end), as torch; i64 when every
 * bound is an integer, else f32. */
static int l_arange(lua_State *L) {
  int nnum = 0;
  bool integral = true;
  double v[3] = {0, 0, 1};
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) {
    integral = integral && lua_isinteger(L, nnum + 1);
    v[nnum] = lua_tonumber(L, nnum + 1);
    nnum++;
  }
  if (nnum == 0) return luaL_error(L, "arange: expected arange(end), arange(start, end) or arange(start, end, step)");
  double start = nnum == 1 ? 0 : v[0], end = nnum == 1 ? v[0] : v[1], step = nnum == 3 ? v[2] : 1;
  lchalk_opts o;
  lchalk_checkopts(L, nnum + 1, &o);
  if (!o.has_dtype) o.dtype = integral ? CT_I64 : CT_F32;
  return push_made(L, ct_arange(start, end, step, o.dtype, o.device), &o);
}

/* chalk.linspace(start, end, n [, opts]) */
static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  lchalk_opts o;
  lchalk_checkopts(L, 4, &o);
  return push_made(L, ct_linspace(a, b, (int64_t)n, o.dtype, o.device), &o);
}

/* chalk.randint(lo, hi, shape [, opts]) or randint(hi, shape [, opts]): integers in [lo, hi). */
static int l_randint(lua_State *L) {
  lua_Integer lo = 0, hi;
  int shape_arg;
  if (lua_istable(L, 2)) {
    hi = luaL_checkinteger(L, 1);
    shape_arg = 2;
  } else {
    lo = luaL_checkinteger(L, 1);
    hi = luaL_checkinteger(L, 2);
    shape_arg = 3;
  }
  luaL_checktype(L, shape_arg, LUA_TTABLE);
  int64_t shape[CT_MAX_DIMS];
  int ndim;
  lchalk_checkshape(L, shape_arg, shape, &ndim, false, "randint");
  lchalk_opts o;
  lchalk_checkopts(L, shape_arg + 1, &o);
  if (!o.has_dtype) o.dtype = CT_I64;
  return push_made(L, ct_randint((int64_t)lo, (int64_t)hi, shape, ndim, o.dtype, o.device), &o);
}

/* chalk.randperm(n [, opts]): a random permutation of 1..n (i64). */
static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lchalk_opts o;
  lchalk_checkopts(L, 2, &o);
  lchalk_pushtensor(L, ct_randperm((int64_t)n, o.device));
  if (o.has_dtype && o.dtype != CT_I64) {
    lchalk_pushtensor(L, ct_to_dtype(lchalk_checktensor(L, -1), o.dtype));
    lua_remove(L, -2);
  }
  lchalk_apply_opts(L, &o);
  return 1;
}

/* chalk.manual_seed(n): reseed the Philox stream (same numbers on CPU and GPU). */
static int l_manual_seed(lua_State *L) {
  lua_Integer s = luaL_checkinteger(L, 1);
  ct_manual_seed((uint64_t)s);
  return 0;
}

/* chalk.rng_state() -> {seed=, offset=}; chalk.set_rng_state(s): the current context's Philox
   stream, so a checkpoint can resume the exact random sequence (lesson 16's kill-and-resume). */
static int l_rng_state(lua_State *L) {
  ct_ctx *c = ct_ctx_current();
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)ct_ctx_rng_seed(c));
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)ct_ctx_rng_offset(c));
  lua_setfield(L, -2, "offset");
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "seed");
  lua_getfield(L, 1, "offset");
  lua_Integer seed = luaL_checkinteger(L, -2), off = luaL_checkinteger(L, -1);
  ct_ctx *c = ct_ctx_current();
  ct_ctx_manual_seed(c, (uint64_t)seed);
  c->rng_offset = (uint64_t)off;
  return 0;
}

static int l_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_rng_seed());
  return 1;
}

void lchalk_open_create(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  static const luaL_Reg fns[] = {
      {"tensor", l_tensor},     {"full", l_full},         {"full_like", l_full_like},     {"eye", l_eye},
      {"arange", l_arange},     {"linspace", l_linspace}, {"randint", l_randint},         {"randperm", l_randperm},
      {"manual_seed", l_manual_seed}, {"initial_seed", l_initial_seed}, {"rng_state", l_rng_state}, {"set_rng_state", l_set_rng_state},
      {NULL, NULL}};
  lua_pushvalue(L, chalk);
  luaL_setfuncs(L, fns, 0);
  for (int k = FILL_ZEROS; k <= FILL_RANDN; k++) {
    char like[32];
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_filled, 1);
    lua_setfield(L, -2, fill_names[k]);
    snprintf(like, sizeof like, "%s_like", fill_names[k]);
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_filled_like, 1);
    lua_setfield(L, -2, like);
  }
  lua_pop(L, 1);
}
