/* lchalk_index.c: x[key] and x[key] = value, the Lua and Torch7 way, and the in-place writes
 * x:copy_(y), y:axpby_(a, x, b), x:fill_(v), x:zero_() (not recorded by autograd, so refused
 * on tensors that need grad while grad mode is on).
 *
 *   x[i]              select along dim 1 (1-based, negative from the end): a view with one dim
 *                     fewer; on a vector, a 0-d tensor view (x[i]:item() is the number)
 *   x[{i, j}]         one entry per leading dim: an integer selects (the dim goes away);
 *   x[{{a, b}, j}]    {a, b} keeps rows a..b inclusive, {a} is a..a (the dim stays),
 *   x[{{}, j}]        {} keeps the whole dim; dims not mentioned are kept whole
 *   x[idx]            an integer index tensor: index_select along dim 1 (a copy, not a view)
 *
 * Every form but the last is a view sharing storage with x, so x[key] = value writes into x:
 * value may be a number (fill), a tensor (copied, broadcasting to the view's shape) or a nested
 * table (converted, then copied).
 *
 * Invariant: the key is fully parsed and range-checked (Lua errors allowed) before the first core
 * call; the views are then built without raising, releasing every intermediate.
 */
#include <string.h>

#include "graph/capture.h" /* ct_assign_ */
#include "lchalk_internal.h"

typedef struct {
  enum { SPEC_SELECT, SPEC_RANGE } kind;
  int dim;       /* dim of the original tensor, 0-based */
  int64_t start; /* 0-based */
  int64_t len;
} index_spec;

static const char spec_help[] =
    "an index entry is an integer (select), {first, last} or {i} (a range, inclusive) or {} (the whole dim)";

/* Parse the range table at idx for dim d of size n. */
static void parse_range(lua_State *L, int idx, int d, int64_t n, index_spec *s) {
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  s->kind = SPEC_RANGE;
  s->dim = d;
  if (len == 0) {
    s->start = 0, s->len = n;
    return;
  }
  if (len > 2) luaL_error(L, "index: a range has at most two entries {first, last} (steps are not supported)");
  lua_Integer b[2] = {0, 0};
  for (int k = 0; k < len; k++) {
    lua_rawgeti(L, idx, k + 1);
    int ok;
    b[k] = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "index: range entries must be integers; %s", spec_help);
    lua_pop(L, 1);
  }
  if (len == 1) b[1] = b[0];
  int64_t first = lchalk_index_from_lua(L, b[0], n, d, "index");
  int64_t last;
  if (b[1] == 0) return (void)luaL_error(L, "index: range end 0 is invalid for dim %d: indices count from 1", d + 1);
  last = b[1] > 0 ? (int64_t)b[1] - 1 : (int64_t)b[1] + n;
  if (last >= n || last < first - 1)
    luaL_error(L, "index: range {%I, %I} is out of bounds for dim %d of size %I", b[0], b[1], d + 1,
               (lua_Integer)n);
  s->start = first;
  s->len = last - first + 1;
}

/* Parse key into specs; returns how many. */
static int parse_key(lua_State *L, const ct_tensor *t, int key, index_spec *specs) {
  int ok;
  lua_Integer i = lua_tointegerx(L, key, &ok);
  if (ok) {
    if (t->ndim == 0) luaL_error(L, "index: cannot index a 0-d tensor (use x:item())");
    specs[0].kind = SPEC_SELECT;
    specs[0].dim = 0;
    specs[0].start = lchalk_index_from_lua(L, i, t->shape[0], 0, "index");
    return 1;
  }
  if (lua_type(L, key) == LUA_TNUMBER)
    luaL_error(L, "index: %s is not an integer; indices are integers counting from 1", lua_tostring(L, key));
  if (!lua_istable(L, key))
    luaL_error(L, "index: cannot index a tensor with a %s; %s", luaL_typename(L, key), spec_help);
  int n = (int)lua_rawlen(L, key);
  if (n > t->ndim) luaL_error(L, "index: %d entries for a tensor of %d dims", n, t->ndim);
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, key, d + 1);
    int v = lua_gettop(L);
    lua_Integer j = lua_tointegerx(L, v, &ok);
    if (ok) {
      specs[d].kind = SPEC_SELECT;
      specs[d].dim = d;
      specs[d].start = lchalk_index_from_lua(L, j, t->shape[d], d, "index");
    } else if (lua_istable(L, v) && !lchalk_totensor(L, v)) {
      parse_range(L, v, d, t->shape[d], &specs[d]);
    } else {
      luaL_error(L, "index: entry %d is a %s; %s", d + 1, luaL_typename(L, v), spec_help);
    }
    lua_pop(L, 1);
  }
  return n;
}

/* The view of t described by specs (new reference, or NULL with the core error set). Applied from
 * the last dim to the first so the earlier dims keep their numbers. */
static ct_tensor *apply_specs(ct_tensor *t, const index_spec *specs, int n) {
  ct_tensor *cur = ct_retain(t);
  for (int k = n - 1; k >= 0 && cur; k--) {
    const index_spec *s = &specs[k];
    ct_tensor *next;
    if (s->kind == SPEC_SELECT) next = ct_select(cur, s->dim, s->start);
    else if (s->start == 0 && s->len == cur->shape[s->dim]) next = ct_retain(cur);
    else next = ct_narrow(cur, s->dim, s->start, s->len);
    ct_release(cur);
    cur = next;
  }
  return cur;
}

int lchalk_index_get(lua_State *L, ct_tensor *t, int key) {
  ct_tensor *idx = lchalk_totensor(L, key);
  if (idx) {
    if (idx->dtype == CT_BOOL)
      return luaL_error(L, "index: boolean mask indexing is not supported (use chalk.where(mask, x, 0))");
    LCHALK_RETURN(L, ct_index_select(t, 0, idx));
  }
  index_spec specs[CT_MAX_DIMS];
  int n = parse_key(L, t, key, specs);
  LCHALK_RETURN(L, apply_specs(t, specs, n));
}

void lchalk_check_inplace(lua_State *L, const ct_tensor *t, const char *what) {
  if (t->requires_grad && ct_grad_enabled()) {
    char d[200];
    luaL_error(L, "%s: %s requires grad, and writing into it in place would not be recorded by autograd; "
                  "do it inside chalk.no_grad(function() ... end) or on x:detach()",
               what, ct_describe(t, d, sizeof d));
  }
}

int lchalk_index_set(lua_State *L, ct_tensor *t, int key, int value) {
  key = lua_absindex(L, key);
  value = lua_absindex(L, value);
  if (lchalk_totensor(L, key))
    return luaL_error(L, "index: x[idx] = v with an index tensor is not supported (x[idx] is a copy, not a view)");
  lchalk_check_inplace(L, t, "index assignment");
  index_spec specs[CT_MAX_DIMS];
  int n = parse_key(L, t, key, specs);
  ct_tensor *src = NULL;
  double v = 0;
  if (lua_type(L, value) == LUA_TNUMBER) v = lua_tonumber(L, value);
  else if (lua_type(L, value) == LUA_TBOOLEAN) v = lua_toboolean(L, value);
  else if ((src = lchalk_totensor(L, value)) == NULL) {
    if (!lua_istable(L, value)) return luaL_typeerror(L, value, "number, tensor or table");
    lchalk_pushtensor(L, lchalk_from_lua(L, value, true, t->dtype, t->storage->device));
    src = lchalk_checktensor(L, -1); /* anchored on the stack */
  }
  lchalk_pushtensor(L, apply_specs(t, specs, n));
  ct_tensor *view = lchalk_checktensor(L, -1);
  if (src ? ct_copy_(view, src) : ct_fill_(view, v)) return lchalk_error(L);
  return 0;
}

/* x:copy_(y): copy y into x (broadcasting y, converting its dtype and device); returns x. */
static int m_copy_(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1), *src = lchalk_checktensor(L, 2);
  lchalk_check_inplace(L, t, "copy_");
  if (ct_assign_(t, src)) return lchalk_error(L); /* op "assign": chalk.capture records it (optimizer updates) */
  lua_settop(L, 1);
  return 1;
}

/* y:axpby_(a, x, b): y <- a*y + b*x in one pass (x a tensor or a number); returns y. */
static int m_axpby_(lua_State *L) {
  ct_tensor *y = lchalk_checktensor(L, 1);
  double a = luaL_checknumber(L, 2);
  ct_tensor *x = lchalk_checkoperand(L, 3, y);
  double b = luaL_checknumber(L, 4);
  lchalk_check_inplace(L, y, "axpby_");
  if (ct_axpby_(y, a, x, b)) return lchalk_error(L);
  lua_settop(L, 1);
  return 1;
}

/* x:fill_(v), x:zero_(): returns x. */
static int m_fill_(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
  lchalk_check_inplace(L, t, "fill_");
  if (ct_fill_(t, v)) return lchalk_error(L);
  lua_settop(L, 1);
  return 1;
}

static int m_zero_(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  lchalk_check_inplace(L, t, "zero_");
  if (ct_fill_(t, 0)) return lchalk_error(L);
  lua_settop(L, 1);
  return 1;
}

void lchalk_open_index(lua_State *L, int chalk, int methods, int meta) {
  (void)chalk, (void)meta;
  static const luaL_Reg ms[] = {{"copy_", m_copy_}, {"axpby_", m_axpby_}, {"fill_", m_fill_},
                                {"zero_", m_zero_}, {NULL, NULL}};
  lchalk_register(L, methods, ms);
}
