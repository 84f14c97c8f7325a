/* lchalk_tensor.c: the tensor userdata: one core reference per userdata, its lifetime
 * (__gc, __close), field access (__index, __newindex) and __len.
 *
 * Invariants: a box holds a reference it owns, or NULL once closed; __index looks methods up in
 * the method table (chalk.Tensor, also the metatable's __methods) at every access, so methods
 * that Lua modules add later are found; fields are computed, never stored. A box is a userdata
 * of exactly sizeof(lchalk_box) whose tag is &box_tag, made only by lchalk_pushtensor (which
 * also gives it the LCHALK_TENSOR metatable): that is how a tensor is recognised, in a few loads
 * instead of luaL_testudata's registry lookup by name (a third of a small op's binding cost).
 */
#include <string.h>

#include "lchalk_internal.h"

static const char box_tag;  /* its address marks a tensor box */
static const char meta_key; /* registry[&meta_key] = the LCHALK_TENSOR metatable */
/* The metatable is also at an integer key of the registry (array part: one load, where the
   light-userdata key costs a hash lookup, ~150 instructions a tensor). The integer differs between
   states, so it is cached with the registry it belongs to; luaopen_chalk sets both, so a state
   that reuses a closed one's registry address opens chalk (and resets this) before it pushes. */
static const void *meta_registry;
static int meta_ref = LUA_NOREF;

static void push_meta(lua_State *L) {
  if (lua_topointer(L, LUA_REGISTRYINDEX) == meta_registry) lua_rawgeti(L, LUA_REGISTRYINDEX, meta_ref);
  else lua_rawgetp(L, LUA_REGISTRYINDEX, &meta_key);
}

typedef struct {
  const void *tag; /* &box_tag */
  ct_tensor *t;
} lchalk_box;

static lchalk_box *box_at(lua_State *L, int idx) {
  lchalk_box *b = lua_touserdata(L, idx);
  return b && lua_rawlen(L, idx) == sizeof *b && b->tag == &box_tag ? b : NULL;
}

/* Field names, for Tab completion (metatable.__fields) and the error of a bad assignment. */
static const char *const field_names[] = {"shape", "dtype",  "device", "grad", "requires_grad", "name",
                                          "T",     "is_leaf", "grad_fn", "ndim", "data",         NULL};

ct_tensor *lchalk_totensor(lua_State *L, int idx) {
  lchalk_box *b = box_at(L, idx);
  return b ? b->t : NULL;
}

ct_tensor *lchalk_checktensor(lua_State *L, int idx) {
  lchalk_box *b = box_at(L, idx);
  if (!b) luaL_typeerror(L, idx, "chalk tensor");
  if (!b->t) luaL_error(L, "tensor was closed (its <close> variable went out of scope)");
  return b->t;
}

int lchalk_error(lua_State *L) { return luaL_error(L, "%s", ct_last_error()); }

int lchalk_pushtensor(lua_State *L, ct_tensor *t) {
  if (!t) return lchalk_error(L);
  lchalk_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->tag = &box_tag;
  b->t = t;
  push_meta(L);
  lua_setmetatable(L, -2);
  lchalk_gc_account(L);
  return 1;
}

static int tensor_gc(lua_State *L) {
  lchalk_box *b = box_at(L, 1);
  if (!b) return luaL_typeerror(L, 1, "chalk tensor");
  ct_release(b->t);
  b->t = NULL;
  return 0;
}

/* ---- fields ------------------------------------------------------------------------------------ */

static void push_shape(lua_State *L, const ct_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  luaL_setmetatable(L, "chalk.Size");
}

/* x.T: the transpose of a matrix; a vector or scalar itself; n-d reverses the dims (as torch). */
static ct_tensor *transposed(ct_tensor *t) {
  if (t->ndim < 2) return ct_retain(t);
  if (t->ndim == 2) return ct_transpose(t, 0, 1);
  int dims[CT_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) dims[d] = t->ndim - 1 - d;
  return ct_permute(t, dims, t->ndim);
}

/* Push field name of t; returns 0 when there is no such field. */
static int push_field(lua_State *L, ct_tensor *t, const char *k) {
  char buf[32];
  switch (k[0]) {
  case 's':
    if (!strcmp(k, "shape")) return push_shape(L, t), 1;
    break;
  case 'd':
    if (!strcmp(k, "dtype")) return lua_pushstring(L, ct_dtype_name(t->dtype)), 1;
    if (!strcmp(k, "device")) return lua_pushstring(L, ct_device_str(t->storage->device, buf, sizeof buf)), 1;
    if (!strcmp(k, "data")) LCHALK_RETURN(L, ct_detach(t));
    break;
  case 'g':
    if (!strcmp(k, "grad")) {
      if (!t->grad) return lua_pushnil(L), 1;
      return lchalk_pushtensor(L, ct_retain(t->grad));
    }
    if (!strcmp(k, "grad_fn")) {
      if (!t->grad_fn) return lua_pushnil(L), 1;
      return lua_pushstring(L, ct_op_name(ct_node_op(t->grad_fn))), 1;
    }
    break;
  case 'r':
    if (!strcmp(k, "requires_grad")) return lua_pushboolean(L, t->requires_grad), 1;
    break;
  case 'n':
    if (!strcmp(k, "name")) return t->name ? lua_pushstring(L, t->name) : lua_pushnil(L), 1;
    if (!strcmp(k, "ndim")) return lua_pushinteger(L, t->ndim), 1;
    break;
  case 'i':
    if (!strcmp(k, "is_leaf")) return lua_pushboolean(L, t->grad_fn == NULL), 1;
    break;
  case 'T':
    if (!k[1]) LCHALK_RETURN(L, transposed(t));
    break;
  }
  return 0;
}

/* __index(x, key): methods and fields by name; integers, tables and tensors index. */
static int tensor_index(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (push_field(L, t, lua_tostring(L, 2))) return 1;
    lua_pushnil(L);
    return 1;
  }
  return lchalk_index_get(L, t, 2);
}

static int set_field(lua_State *L, ct_tensor *t, const char *k) {
  if (!strcmp(k, "name")) {
    if (ct_set_name(t, luaL_opt(L, luaL_checkstring, 3, NULL))) lchalk_error(L);
    return 0;
  }
  if (!strcmp(k, "requires_grad")) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    if (ct_requires_grad_(t, lua_toboolean(L, 3))) lchalk_error(L);
    return 0;
  }
  if (!strcmp(k, "grad")) {
    if (lua_isnil(L, 3)) {
      ct_zero_grad(t);
      return 0;
    }
    ct_tensor *g = lchalk_checktensor(L, 3);
    if (g->ndim != t->ndim || memcmp(g->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
        g->dtype != t->dtype || !ct_device_eq(g->storage->device, t->storage->device)) {
      char a[200], b[200];
      return luaL_error(L, "cannot assign a gradient of %s to a tensor of %s (shape, dtype and device must match)",
                        ct_describe(g, a, sizeof a), ct_describe(t, b, sizeof b));
    }
    ct_tensor *old = t->grad;
    t->grad = ct_retain(g);
    ct_release(old);
    return 0;
  }
  for (int i = 0; field_names[i]; i++)
    if (!strcmp(k, field_names[i]))
      return luaL_error(L, "the field '%s' of a tensor is read-only (settable: name, requires_grad, grad)", k);
  return luaL_error(L, "a tensor has no field '%s' to set (settable: name, requires_grad, grad; "
                       "x[i] = v assigns elements)", k);
}

/* __newindex(x, key, value) */
static int tensor_newindex(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) return set_field(L, t, lua_tostring(L, 2));
  return lchalk_index_set(L, t, 2, 3);
}

/* #x: the size of the first dim. */
static int tensor_len(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "#x: a 0-d tensor has no length (use x:item())");
  lua_pushinteger(L, (lua_Integer)t->shape[0]);
  return 1;
}

/* ---- chalk.Size: shape tables print as {2,3} and compare by value ------------------------------ */

static int size_tostring(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '{');
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, ',');
    lua_rawgeti(L, 1, i);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
  return 1;
}

static int size_eq(lua_State *L) {
  if (!lua_istable(L, 1) || !lua_istable(L, 2)) return lua_pushboolean(L, 0), 1;
  lua_Unsigned n = lua_rawlen(L, 1);
  bool same = n == lua_rawlen(L, 2);
  for (lua_Unsigned i = 1; same && i <= n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i);
    lua_rawgeti(L, 2, (lua_Integer)i);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_pushboolean(L, same);
  return 1;
}

void lchalk_open_tensor(lua_State *L, int chalk, int methods, int meta) {
  (void)chalk;
  lua_pushvalue(L, meta);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &meta_key);
  lua_pushvalue(L, meta);
  meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  meta_registry = lua_topointer(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, tensor_index, 1);
  lua_setfield(L, meta, "__index");
  static const luaL_Reg metamethods[] = {
      {"__newindex", tensor_newindex}, {"__gc", tensor_gc}, {"__close", tensor_gc}, {"__len", tensor_len}, {NULL, NULL}};
  lchalk_register(L, meta, metamethods);
  lua_pushvalue(L, methods);
  lua_setfield(L, meta, "__methods");
  lua_newtable(L);
  for (int i = 0; field_names[i]; i++) {
    lua_pushstring(L, field_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, meta, "__fields");
  if (luaL_newmetatable(L, "chalk.Size")) {
    lua_pushcfunction(L, size_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, size_eq);
    lua_setfield(L, -2, "__eq");
  }
  lua_pop(L, 1);
}
