/* lchalk_io.c: files from Lua: chalk.save / chalk.load (tensors and nested tables of them), NumPy .npy,
 * the IDX reader behind data.fashion_mnist; and the small facts lessons and progress bars read
 * (chalk.clock, chalk._isatty, chalk.storage_info for pictures of views over a storage).
 *
 * Invariants: chalk.save checks the whole value (types, cycles, depth) before it opens a file, so
 * a Lua error can never leave a half-written file or leak the writer; the write itself goes
 * through core/serialize.c, which replaces the destination atomically. chalk.load owns its
 * reader through a userdata with __gc, so an error while rebuilding the tree leaks nothing.
 */
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lchalk_internal.h"

#define LIO_MAX_DEPTH 100
#define LIO_LOADER "chalk.Loader"

/* ---- chalk.save --------------------------------------------------------------------------------- */

/* Checks the value at idx: tensors, tables of them (string/number keys), numbers, strings,
 * booleans. seen (stack index) holds the tables on the current path, to refuse cycles. path is the
 * key path so far, for the error message. */
static void check_value(lua_State *L, int idx, int seen, int depth, const char *path) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
  case LUA_TSTRING:
  case LUA_TBOOLEAN:
    return;
  case LUA_TUSERDATA:
    if (lchalk_totensor(L, idx)) return;
    luaL_error(L, "chalk.save: %s is a userdata that is not a chalk tensor", path);
    return;
  case LUA_TTABLE:
    break;
  default:
    luaL_error(L, "chalk.save: %s is a %s; chalk.save writes tensors, numbers, strings, booleans and "
               "tables of them", path, luaL_typename(L, idx));
    return;
  }
  if (depth >= LIO_MAX_DEPTH) luaL_error(L, "chalk.save: %s nests tables more than %d deep", path, LIO_MAX_DEPTH);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, seen) != LUA_TNIL) luaL_error(L, "chalk.save: %s is a table that contains itself", path);
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  luaL_checkstack(L, 8, "chalk.save: nesting too deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
      luaL_error(L, "chalk.save: %s has a key of type %s (keys must be strings or numbers)", path,
                 luaL_typename(L, -2));
    lua_pushvalue(L, -2); /* tostring on a copy, so lua_next keeps its key */
    const char *k = lua_tostring(L, -1);
    const char *sub = lua_pushfstring(L, kt == LUA_TSTRING ? "%s.%s" : "%s[%s]", path, k);
    check_value(L, -3, seen, depth + 1, sub);
    lua_pop(L, 3);
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, seen);
}

/* Writes the (checked) value at idx; returns 0 or -1 with the core error set. Raises nothing. */
static int write_value(lua_State *L, ct_saver *s, int idx) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return ct_save_integer(s, (int64_t)lua_tointeger(L, idx));
    return ct_save_number(s, lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *str = lua_tolstring(L, idx, &len);
    return ct_save_string(s, str, len);
  }
  case LUA_TBOOLEAN:
    return ct_save_bool(s, lua_toboolean(L, idx));
  case LUA_TUSERDATA:
    return ct_save_tensor(s, lchalk_totensor(L, idx));
  default:
    break;
  }
  if (!lua_checkstack(L, 4)) return ct_errorf("chalk.save: out of Lua stack");
  uint32_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) n++, lua_pop(L, 1);
  if (ct_save_table(s, n) < 0) return -1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    /* write the key from a copy: lua_tolstring on a number key would confuse lua_next */
    lua_pushvalue(L, -2);
    int rc = write_value(L, s, -1);
    lua_pop(L, 1);
    if (rc == 0) rc = write_value(L, s, -1);
    lua_pop(L, 1);
    if (rc < 0) {
      lua_pop(L, 1);
      return -1;
    }
  }
  return 0;
}

/* chalk.save(value, path): value is a tensor or a (nested) table of tensors, numbers, strings and
 * booleans; written atomically with a CRC32 that chalk.load checks. */
static int lio_save(lua_State *L) {
  luaL_checkany(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_newtable(L); /* 3: tables on the current path */
  check_value(L, 1, 3, 0, "the value");
  ct_saver *s = ct_save_open(path);
  if (!s) return lchalk_error(L);
  if (write_value(L, s, 1) < 0) {
    ct_save_abort(s);
    return lchalk_error(L);
  }
  if (ct_save_commit(s) < 0) return lchalk_error(L);
  return 0;
}

/* ---- chalk.load ----------------------------------------------------------------------------- */

typedef struct {
  ct_loader *l;
} lio_loader_box;

static int loader_gc(lua_State *L) {
  lio_loader_box *b = luaL_checkudata(L, 1, LIO_LOADER);
  ct_load_close(b->l);
  b->l = NULL;
  return 0;
}

/* Reads one value from the loader and pushes it. */
static void read_value(lua_State *L, ct_loader *l, int depth) {
  ct_saved_value v;
  if (ct_load_next(l, &v) < 0) lchalk_error(L);
  switch (v.kind) {
  case CT_SAVED_NUMBER: lua_pushnumber(L, v.number); return;
  case CT_SAVED_INTEGER: lua_pushinteger(L, (lua_Integer)v.integer); return;
  case CT_SAVED_BOOL: lua_pushboolean(L, v.boolean); return;
  case CT_SAVED_STRING: lua_pushlstring(L, v.str, v.len); return;
  case CT_SAVED_TENSOR: lchalk_pushtensor(L, v.tensor); return;
  case CT_SAVED_TABLE: break;
  }
  if (depth >= LIO_MAX_DEPTH) luaL_error(L, "chalk.load: tables nest more than %d deep", LIO_MAX_DEPTH);
  luaL_checkstack(L, 4, "chalk.load: nesting too deep");
  lua_createtable(L, 0, (int)(v.count < 1024 ? v.count : 1024));
  for (uint32_t i = 0; i < v.count; i++) {
    read_value(L, l, depth + 1);
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)))
      luaL_error(L, "chalk.load: the file holds an invalid table key");
    read_value(L, l, depth + 1);
    lua_rawset(L, -3);
  }
}

/* chalk.load(path) -> the value chalk.save wrote (tensors come back on the CPU). */
static int lio_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lio_loader_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->l = NULL;
  luaL_setmetatable(L, LIO_LOADER);
  b->l = ct_load_open(path);
  if (!b->l) return lchalk_error(L);
  read_value(L, b->l, 0);
  if (!ct_load_done(b->l)) return luaL_error(L, "chalk.load: %s has data after its value (corrupt)", path);
  ct_load_close(b->l);
  b->l = NULL;
  return 1;
}

/* ---- NumPy and IDX ------------------------------------------------------------------------------ */

/* chalk.save_npy(tensor, path) */
static int lio_save_npy(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  if (ct_npy_save(t, path) < 0) return lchalk_error(L);
  return 0;
}

/* chalk.load_npy(path) -> tensor */
static int lio_load_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return lchalk_pushtensor(L, ct_npy_load(path));
}

/* chalk._read_idx(path [, dtype="f32" [, scale=1 [, shift=0]]]) -> tensor of the file's shape */
static int lio_read_idx(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *dname = luaL_optstring(L, 2, "f32");
  double scale = luaL_optnumber(L, 3, 1), shift = luaL_optnumber(L, 4, 0);
  ct_dtype dt;
  if (ct_dtype_from_name(dname, &dt) < 0) return lchalk_error(L);
  return lchalk_pushtensor(L, ct_idx_read(path, dt, scale, shift));
}

/* ---- small helpers -------------------------------------------------------------------------------- */

/* chalk.clock() -> seconds on a monotonic clock (for timing loops; differences are meaningful). */
static int lio_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  return 1;
}

/* chalk._isatty(fd) -> whether the file descriptor is a terminal. */
static int lio_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(lchalk_int_arg(L, luaL_checkinteger(L, 1), "isatty", "fd")));
  return 1;
}

/* chalk.storage_info(x [, max_values=64]) -> {offset = elements into the storage (0-based),
 * size = elements the storage holds, id = the storage's id (equal for views of one storage),
 * itemsize = bytes, values = {...} the storage's elements in order when size <= max_values}. */
static int lio_storage_info(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  lua_Integer max_values = luaL_optinteger(L, 2, 64);
  size_t isz = ct_dtype_size(t->dtype);
  int64_t size = (int64_t)(t->storage->nbytes / (isz ? isz : 1));
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)t->offset);
  lua_setfield(L, -2, "offset");
  lua_pushinteger(L, (lua_Integer)size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)t->storage->id);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, (lua_Integer)isz);
  lua_setfield(L, -2, "itemsize");
  if (size <= max_values) {
    /* a flat view over the whole storage, read as doubles */
    ct_tensor flat = *t;
    flat.ndim = 1;
    flat.shape[0] = size;
    flat.stride[0] = 1;
    flat.offset = 0;
    flat.name = NULL;
    flat.grad = NULL;
    flat.grad_fn = NULL;
    double *vals = lua_newuserdatauv(L, sizeof(double) * (size_t)(size ? size : 1), 0);
    if (ct_to_doubles(&flat, vals) < 0) return lchalk_error(L);
    lua_createtable(L, (int)size, 0);
    for (int64_t i = 0; i < size; i++) {
      if (ct_dtype_is_float(t->dtype)) lua_pushnumber(L, vals[i]);
      else lua_pushinteger(L, (lua_Integer)vals[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -3, "values");
    lua_pop(L, 1);
  }
  return 1;
}

static const luaL_Reg lio_functions[] = {
    {"save", lio_save},         {"load", lio_load},   {"save_npy", lio_save_npy}, {"load_npy", lio_load_npy},
    {"_read_idx", lio_read_idx}, {"clock", lio_clock}, {"_isatty", lio_isatty},
    {"storage_info", lio_storage_info}, {NULL, NULL},
};

/* Registers the functions above into the chalk table at index chalk. */
void lchalk_open_io(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  if (luaL_newmetatable(L, LIO_LOADER)) {
    lua_pushcfunction(L, loader_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lchalk_register(L, chalk, lio_functions);
}
