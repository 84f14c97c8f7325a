/* lchalk_print.c: tostring(x), the way PyTorch prints: values (summarised with ... past a
 * threshold, precision 4, one width for all), then shape, dtype, device, name, and requires_grad
 * or grad_fn=<NameBackward>. chalk.set_printoptions changes precision, threshold, edgeitems and
 * linewidth.
 *
 *   tensor([[1.0000, 2.5000],
 *           [3.0000, 4.0000]], shape={2,2}, dtype=f32, device=cpu, grad_fn=<MulBackward>)
 *
 * Invariant: printing runs no op (elements are read one by one with ct_get), so it records no
 * autograd node and no event, whatever the tensor's device.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lchalk_internal.h"

static struct {
  int precision, edgeitems, linewidth;
  int64_t threshold;
} opts = {4, 3, 80, 1000};

typedef enum { MODE_INT, MODE_FIXED, MODE_SCI, MODE_INTEGER_DTYPE, MODE_BOOL } value_mode;

typedef struct {
  ct_tensor *t;
  bool summarize;
  double *vals; /* displayed values, in display order */
  int64_t nvals, k;
  value_mode mode;
  int width;
  luaL_Buffer *b;
} printer;

/* Whether dim d shows all its entries; else the first and last edgeitems around "...". */
static bool shows_all(const printer *p, int d) { return !p->summarize || p->t->shape[d] <= 2 * opts.edgeitems; }

static int64_t shown_count(const printer *p, int d) {
  return shows_all(p, d) ? p->t->shape[d] : 2 * opts.edgeitems;
}

/* The i-th shown index of dim d (0-based in the tensor). */
static int64_t shown_index(const printer *p, int d, int64_t i) {
  if (shows_all(p, d) || i < opts.edgeitems) return i;
  return p->t->shape[d] - 2 * opts.edgeitems + i;
}

static void collect(lua_State *L, printer *p, int d, int64_t *idx) {
  if (d == p->t->ndim) {
    if (ct_get(p->t, idx, &p->vals[p->k++])) lchalk_error(L);
    return;
  }
  int64_t n = shown_count(p, d);
  for (int64_t i = 0; i < n; i++) {
    idx[d] = shown_index(p, d, i);
    collect(L, p, d + 1, idx);
  }
}

static int format_value(const printer *p, double v, char *buf, size_t n) {
  if (p->mode != MODE_BOOL && p->mode != MODE_INTEGER_DTYPE && !isfinite(v)) /* C would say -nan */
    return snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
  switch (p->mode) {
  case MODE_BOOL: return snprintf(buf, n, "%s", v != 0 ? "true" : "false");
  case MODE_INTEGER_DTYPE: return snprintf(buf, n, "%lld", (long long)v);
  case MODE_SCI: return snprintf(buf, n, "%.*e", opts.precision, v);
  case MODE_FIXED: return snprintf(buf, n, "%.*f", opts.precision, v);
  case MODE_INT: return snprintf(buf, n, "%.0f.", v);
  }
  return 0;
}

/* Choose the mode (as torch's _Formatter) and the common width. */
static void choose_format(printer *p) {
  ct_dtype dt = p->t->dtype;
  if (dt == CT_BOOL) p->mode = MODE_BOOL;
  else if (!ct_dtype_is_float(dt)) p->mode = MODE_INTEGER_DTYPE;
  else {
    double lo = INFINITY, hi = 0;
    bool integral = true;
    for (int64_t i = 0; i < p->nvals; i++) {
      double a = fabs(p->vals[i]);
      if (!isfinite(a) || a == 0) continue;
      if (a < lo) lo = a;
      if (a > hi) hi = a;
      if (p->vals[i] != ceil(p->vals[i])) integral = false;
    }
    bool any = hi > 0;
    if (integral) p->mode = any && (hi / lo > 1000 || hi > 1e8) ? MODE_SCI : MODE_INT;
    else p->mode = hi / lo > 1000 || hi > 1e8 || lo < 1e-4 ? MODE_SCI : MODE_FIXED;
  }
  p->width = 1; /* as torch: a float's width counts finite nonzero values only, so nan, inf and 0.
                   are not padded to them */
  for (int64_t i = 0; i < p->nvals; i++) {
    char buf[64];
    if (ct_dtype_is_float(dt) && (!isfinite(p->vals[i]) || p->vals[i] == 0)) continue;
    int w = format_value(p, p->vals[i], buf, sizeof buf);
    if (w > p->width) p->width = w;
  }
}

static void add_value(printer *p) {
  char buf[64];
  int w = format_value(p, p->vals[p->k++], buf, sizeof buf);
  for (int i = w; i < p->width; i++) luaL_addchar(p->b, ' ');
  luaL_addstring(p->b, buf);
}

static void add_newline_indent(printer *p, int newlines, int indent) {
  for (int i = 0; i < newlines; i++) luaL_addchar(p->b, '\n');
  for (int i = 0; i < indent; i++) luaL_addchar(p->b, ' ');
}

/* Values of dim d onwards, the block starting at column indent (the column of its '['). */
static void add_block(printer *p, int d, int indent) {
  int nd = p->t->ndim;
  int64_t n = shown_count(p, d);
  bool cut = !shows_all(p, d);
  luaL_addchar(p->b, '[');
  if (d == nd - 1) {
    int per_line = (opts.linewidth - indent) / (p->width + 2);
    if (per_line < 1) per_line = 1;
    int64_t items = n + (cut ? 1 : 0);
    for (int64_t i = 0; i < items; i++) {
      if (i) {
        luaL_addchar(p->b, ',');
        if (i % per_line == 0) add_newline_indent(p, 1, indent + 1);
        else luaL_addchar(p->b, ' ');
      }
      if (cut && i == opts.edgeitems) luaL_addstring(p->b, " ...");
      else add_value(p);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      if (i) {
        luaL_addchar(p->b, ',');
        add_newline_indent(p, nd - d - 1, indent + 1);
      }
      if (cut && i == opts.edgeitems) {
        luaL_addstring(p->b, "...");
        luaL_addchar(p->b, ',');
        add_newline_indent(p, nd - d - 1, indent + 1);
      }
      add_block(p, d + 1, indent + 1);
    }
  }
  luaL_addchar(p->b, ']');
}

/* "mul" -> "MulBackward", "log_softmax" -> "LogSoftmaxBackward" */
static void add_grad_fn(luaL_Buffer *b, const char *op) {
  luaL_addstring(b, ", grad_fn=<");
  bool up = true;
  for (const char *c = op; *c; c++) {
    if (*c == '_') {
      up = true;
      continue;
    }
    luaL_addchar(b, up ? (char)toupper((unsigned char)*c) : *c);
    up = false;
  }
  luaL_addstring(b, "Backward>");
}

static int tensor_tostring(lua_State *L) {
  ct_tensor *t = lchalk_totensor(L, 1);
  if (!t) {
    if (luaL_testudata(L, 1, LCHALK_TENSOR)) return lua_pushstring(L, "tensor(closed)"), 1;
    return luaL_typeerror(L, 1, "chalk tensor");
  }
  printer p = {.t = t, .summarize = ct_numel(t) > opts.threshold};
  p.nvals = 1;
  for (int d = 0; d < t->ndim; d++) p.nvals *= shown_count(&p, d);
  p.vals = lua_newuserdatauv(L, sizeof(double) * (size_t)(p.nvals ? p.nvals : 1), 0);
  int64_t idx[CT_MAX_DIMS] = {0};
  if (p.nvals) collect(L, &p, 0, idx);
  choose_format(&p);
  luaL_Buffer b;
  p.b = &b;
  p.k = 0;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  if (t->ndim == 0) add_value(&p);
  else if (p.nvals == 0) luaL_addstring(&b, "[]");
  else add_block(&p, 0, (int)strlen("tensor("));
  char sh[200], dev[32];
  ct_shape_str(t->shape, t->ndim, sh, sizeof sh);
  sh[0] = '{';
  sh[strlen(sh) - 1] = '}';
  luaL_addstring(&b, ", shape=");
  luaL_addstring(&b, sh);
  luaL_addstring(&b, ", dtype=");
  luaL_addstring(&b, ct_dtype_name(t->dtype));
  luaL_addstring(&b, ", device=");
  luaL_addstring(&b, ct_device_str(t->storage->device, dev, sizeof dev));
  if (t->name) {
    luaL_addstring(&b, ", name=\"");
    luaL_addstring(&b, t->name);
    luaL_addchar(&b, '"');
  }
  if (t->grad_fn) add_grad_fn(&b, ct_op_name(ct_node_op(t->grad_fn)));
  else if (t->requires_grad) luaL_addstring(&b, ", requires_grad=true");
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

/* chalk.set_printoptions{precision=, threshold=, edgeitems=, linewidth=}; returns the old ones. */
static int l_set_printoptions(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, opts.precision), lua_setfield(L, -2, "precision");
  lua_pushinteger(L, (lua_Integer)opts.threshold), lua_setfield(L, -2, "threshold");
  lua_pushinteger(L, opts.edgeitems), lua_setfield(L, -2, "edgeitems");
  lua_pushinteger(L, opts.linewidth), lua_setfield(L, -2, "linewidth");
  if (lua_isnoneornil(L, 1)) return 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  static const char *const keys[] = {"precision", "threshold", "edgeitems", "linewidth", NULL};
  lua_Integer v[4] = {opts.precision, (lua_Integer)opts.threshold, opts.edgeitems, opts.linewidth};
  for (int i = 0; keys[i]; i++) {
    if (lua_getfield(L, 1, keys[i]) != LUA_TNIL) {
      int ok;
      v[i] = lua_tointegerx(L, -1, &ok);
      if (!ok || v[i] < (i == 0 ? 0 : 1) || (i == 0 && v[i] > 17) || (i != 1 && v[i] > INT_MAX))
        return luaL_error(L, "set_printoptions: %s must be an integer in range", keys[i]);
    }
    lua_pop(L, 1);
  }
  opts.precision = (int)v[0], opts.threshold = (int64_t)v[1], opts.edgeitems = (int)v[2], opts.linewidth = (int)v[3];
  return 1;
}

void lchalk_open_print(lua_State *L, int chalk, int methods, int meta) {
  (void)methods;
  lua_pushcfunction(L, tensor_tostring);
  lua_setfield(L, meta, "__tostring");
  lua_pushcfunction(L, l_set_printoptions);
  lua_setfield(L, chalk, "set_printoptions");
}
