/* lchalk_ops.c: chalk.ops(), the op table as Lua sees it: a list of op names that prints as
 * the core's table (name, arity, devices, backward, flags, gradient formula, an elementwise op's
 * expression, the implementations), so `chalk.ops()` at the prompt shows every op and
 * `#chalk.ops()` counts them; chalk.op_info(name) gives one row as a table
 * {name, grad, expr, impls = {{name, device, note}, ...}} for pictures and :help. */
#include <stdlib.h>
#include <string.h>

#include "lchalk_internal.h"

/* __tostring of the list: ct_op_list's text, regenerated (a kernel may have been registered). */
static int ops_tostring(lua_State *L) {
  size_t cap = 1 << 14;
  for (;;) {
    char *buf = lua_newuserdatauv(L, cap, 0);
    size_t n = ct_op_list(buf, cap);
    if (n + 1 < cap) {
      lua_pushlstring(L, buf, n && buf[n - 1] == '\n' ? n - 1 : n);
      return 1;
    }
    lua_pop(L, 1);
    cap *= 4;
  }
}

static int l_ops(lua_State *L) {
  int n = ct_op_count();
  lua_createtable(L, n, 0);
  for (int op = 0, k = 0; op < n; op++) {
    const char *name = ct_op_name(op);
    if (name[0] == '?') continue; /* a row not built into this library */
    lua_pushstring(L, name);
    lua_rawseti(L, -2, ++k);
  }
  if (luaL_newmetatable(L, "chalk.OpList")) {
    lua_pushcfunction(L, ops_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* t[key] = s (nil when s is NULL) for the table on the stack top. */
static void set_string(lua_State *L, const char *key, const char *s) {
  lua_pushstring(L, s);
  lua_setfield(L, -2, key);
}

static int l_op_info(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int op = 0, n = ct_op_count();
  while (op < n && strcmp(ct_op_name(op), name)) op++;
  if (op == n) return luaL_error(L, "op_info: no op named '%s' (chalk.ops() lists them)", name);
  lua_createtable(L, 0, 4);
  set_string(L, "name", name);
  set_string(L, "grad", ct_op_grad_formula(name)); /* nil when the op has none */
  set_string(L, "expr", ct_op_expr(name));
  lua_newtable(L);
  const char *impl, *dev, *note;
  for (int k = 1; ct_op_impl_info(name, k, &impl, &dev, &note); k++) {
    lua_createtable(L, 0, 3);
    set_string(L, "name", impl);
    set_string(L, "device", dev);
    set_string(L, "note", note);
    lua_rawseti(L, -2, k);
  }
  lua_setfield(L, -2, "impls");
  return 1;
}

void lchalk_open_ops(lua_State *L, int chalk, int methods, int meta) {
  (void)methods, (void)meta;
  lua_pushcfunction(L, l_ops);
  lua_setfield(L, chalk, "ops");
  lua_pushcfunction(L, l_op_info);
  lua_setfield(L, chalk, "op_info");
}
