/* lchalk_device.c: moving and converting tensors (to, cuda, cpu, float, double, half, bfloat16,
 * int, long, char, bool) and the chalk.cuda table (is_available, device_count, synchronize,
 * unavailable_reason, empty_cache, memory_allocated, memory_reserved, get_device_name).
 *
 * Asking for a device that is not there is a clear error from the core, never a fallback.
 */
#include <string.h>

#include "lchalk_internal.h"

static ct_tensor *convert(ct_tensor *t, bool has_dtype, ct_dtype dt, bool has_device, ct_device dev) {
  ct_tensor *a = has_dtype ? ct_to_dtype(t, dt) : ct_retain(t);
  ct_tensor *b = a && has_device ? ct_to_device(a, dev) : ct_retain(a);
  ct_release(a);
  return b;
}

/* x:to("f64"), x:to("cuda"), x:to("cuda:1", "f16"), x:to{dtype=, device=}, x:to(y) (y's dtype and
 * device). Returns x itself (a new handle on the same tensor) when nothing changes. */
static int m_to(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  bool has_dtype = false, has_device = false;
  ct_dtype dt = t->dtype;
  ct_device dev = t->storage->device;
  ct_tensor *like = lchalk_totensor(L, 2);
  if (like) {
    has_dtype = has_device = true;
    dt = like->dtype;
    dev = like->storage->device;
  } else if (lua_istable(L, 2)) {
    lchalk_opts o;
    lchalk_checkopts(L, 2, &o);
    has_dtype = o.has_dtype, dt = o.dtype;
    has_device = o.has_device, dev = o.device;
  } else {
    int top = lua_gettop(L);
    if (top < 2) return luaL_error(L, "to: expected a dtype, a device, an options table or a tensor");
    for (int a = 2; a <= top; a++) {
      const char *s = luaL_checkstring(L, a);
      if (ct_dtype_from_name(s, &dt) == 0) has_dtype = true;
      else if (ct_device_parse(s, &dev) == 0) {
        lchalk_require_device(L, dev);
        has_device = true;
      }
      else
        return luaL_error(L, "to: '%s' is neither a dtype (f32, f64, f16, bf16, i32, i64, i8, bool) nor a device "
                             "(cpu, cuda, cuda:N)", s);
    }
  }
  LCHALK_RETURN(L, convert(t, has_dtype, dt, has_device, dev));
}

/* x:cuda([index]), x:cpu() */
static int m_cuda(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  ct_device dev = {CT_CUDA, lchalk_int_arg(L, luaL_optinteger(L, 2, 0), "cuda", "device index")};
  lchalk_require_device(L, dev);
  LCHALK_RETURN(L, convert(t, false, t->dtype, true, dev));
}

static int m_cpu(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  LCHALK_RETURN(L, convert(t, false, t->dtype, true, ct_cpu()));
}

/* x:float() and friends: the dtype is the upvalue. */
static int m_as_dtype(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  ct_dtype dt = (ct_dtype)lua_tointeger(L, lua_upvalueindex(1));
  LCHALK_RETURN(L, ct_to_dtype(t, dt));
}

/* ---- chalk.cuda ---------------------------------------------------------------------------------- */

static int l_is_available(lua_State *L) {
  lua_pushboolean(L, ct_cuda_available());
  return 1;
}

static int l_device_count(lua_State *L) {
  lua_pushinteger(L, ct_cuda_available() ? ct_cuda_device_count() : 0);
  return 1;
}

static int l_synchronize(lua_State *L) {
  if (ct_cuda_available() && ct_cuda_synchronize()) return lchalk_error(L);
  return 0;
}

static int l_unavailable_reason(lua_State *L) {
  const char *r = ct_cuda_unavailable_reason();
  if (r) lua_pushstring(L, r);
  else lua_pushnil(L);
  return 1;
}

static int l_empty_cache(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT); /* tensors only Lua still holds go first, so their blocks can be returned */
  if (ct_cuda_available() && ct_cuda_empty_cache()) return lchalk_error(L);
  return 0;
}

static int device_index(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TSTRING) {
    ct_device d;
    if (ct_device_parse(lua_tostring(L, arg), &d)) lchalk_error(L);
    if (d.type != CT_CUDA) return luaL_error(L, "expected a CUDA device, got '%s'", lua_tostring(L, arg));
    return d.index;
  }
  return lchalk_int_arg(L, luaL_optinteger(L, arg, 0), "cuda", "device index");
}

/* chalk.cuda.memory_allocated([device]), memory_reserved([device]): bytes (0 without CUDA). */
static int l_memory(lua_State *L) {
  bool reserved = lua_toboolean(L, lua_upvalueindex(1));
  int index = device_index(L, 1);
  int64_t alloc = 0, res = 0;
  if (ct_cuda_available() && ct_cuda_memory_info(index, &alloc, &res)) return lchalk_error(L);
  lua_pushinteger(L, (lua_Integer)(reserved ? res : alloc));
  return 1;
}

static int l_get_device_name(lua_State *L) {
  int index = device_index(L, 1);
  char buf[256];
  if (!ct_cuda_available()) return luaL_error(L, "get_device_name: %s", ct_cuda_unavailable_reason());
  if (ct_cuda_device_name(index, buf, sizeof buf)) return lchalk_error(L);
  lua_pushstring(L, buf);
  return 1;
}

void lchalk_open_device(lua_State *L, int chalk, int methods, int meta) {
  (void)meta;
  static const luaL_Reg ms[] = {{"to", m_to}, {"cuda", m_cuda}, {"cpu", m_cpu}, {NULL, NULL}};
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, ms, 0);
  static const struct {
    const char *name;
    ct_dtype dt;
  } casts[] = {{"float", CT_F32}, {"double", CT_F64}, {"half", CT_F16}, {"bfloat16", CT_BF16},
               {"int", CT_I32},   {"long", CT_I64},   {"char", CT_I8},  {"bool", CT_BOOL}};
  for (size_t i = 0; i < sizeof casts / sizeof *casts; i++) {
    lua_pushinteger(L, casts[i].dt);
    lua_pushcclosure(L, m_as_dtype, 1);
    lua_setfield(L, -2, casts[i].name);
  }
  lua_pop(L, 1);
  static const luaL_Reg cuda[] = {{"is_available", l_is_available},
                                  {"device_count", l_device_count},
                                  {"synchronize", l_synchronize},
                                  {"unavailable_reason", l_unavailable_reason},
                                  {"empty_cache", l_empty_cache},
                                  {"get_device_name", l_get_device_name},
                                  {NULL, NULL}};
  luaL_newlib(L, cuda);
  lchalk_set_flagged(L, l_memory, "memory_allocated", "memory_reserved");
  lua_setfield(L, chalk, "cuda");
}
