/* lchalk_internal.h: what the binding's own files share: openers, argument parsing, OOM retry.
 *
 * Invariant (leak freedom): a Lua error longjmps, so no C function here holds a new ct_tensor
 * reference or malloc'd memory across a call that may raise. Arguments are parsed first; number
 * operands become tensor userdata on the stack (anchored, collected by Lua); core calls come
 * last, and their result goes straight to lchalk_pushtensor.
 */
#ifndef LCHALK_INTERNAL_H
#define LCHALK_INTERNAL_H

#include <stdbool.h>

#include "lauxlib.h"
#include "lchalk.h"

/* Each file registers its functions into the chalk table (index chalk), its methods into the
 * Tensor method table (index methods) and, where it has any, metamethods into the tensor
 * metatable (index meta). The indices are absolute. The parts, in the order lchalk_module.c
 * opens them; part NAME is lua/lchalk_NAME.c (io: save/load, .npy, IDX; ladder:
 * chalk.cuda.matmul; context: chalk.context; quant: quantized weights). */
#define LCHALK_PARTS(X)                                                                            \
  X(tensor) X(index) X(print) X(create) X(view) X(math) X(reduce) X(nn) X(autograd) X(device)     \
  X(memory) X(ops) X(io) X(attention) X(paged) X(ladder) X(context) X(pytorch) X(quant) X(warpspec)
#define LCHALK_DECLARE_OPEN(NAME) void lchalk_open_##NAME(lua_State *L, int chalk, int methods, int meta);
LCHALK_PARTS(LCHALK_DECLARE_OPEN)
#undef LCHALK_DECLARE_OPEN
/* luaL_setfuncs of fns into the table at absolute index t (lchalk_module.c). */
void lchalk_register(lua_State *L, int t, const luaL_Reg *fns);
/* One C function serving two Lua functions that differ in a flag: sets t[off] and t[on] of the
 * table on the stack top to closures of f whose upvalue is false and true (lchalk_module.c). */
void lchalk_set_flagged(lua_State *L, lua_CFunction f, const char *off, const char *on);
/* Pushes c's memory statistics as chalk.memory_stats() returns them (lchalk_memory.c). */
void lchalk_push_memory_stats(lua_State *L, ct_ctx *c);
/* The Lua thread that context hooks run on while x:backward() runs (lchalk_context.c); returns the
   previous one. lchalk_autograd.c sets it around ct_backward. */
lua_State *lchalk_hook_state(lua_State *L);

/* The quantized tensor (chalk.QTensor) at idx, or NULL when it is not one (lchalk_quant.c). */
ct_qtensor *lchalk_testq(lua_State *L, int idx);

/* ---- indexing (lchalk_index.c), used by __index/__newindex in lchalk_tensor.c ---------------- */
/* Push t[key] (key at stack index key: integer, index-spec table or index tensor). */
int lchalk_index_get(lua_State *L, ct_tensor *t, int key);
/* t[key] = value (stack indices). */
int lchalk_index_set(lua_State *L, ct_tensor *t, int key, int value);
/* Raise unless writing into t in place is safe for autograd (t needs no grad, or grad mode is
 * off). what names the operation in the message. */
void lchalk_check_inplace(lua_State *L, const ct_tensor *t, const char *what);

/* ---- creation (lchalk_create.c) ---------------------------------------------------------------- */
/* A new tensor from the Lua value at idx (number, boolean, nested table) in dtype dt on dev;
 * has_dtype false infers f32 (bool when the values are booleans). May raise. */
ct_tensor *lchalk_from_lua(lua_State *L, int idx, bool has_dtype, ct_dtype dt, ct_device dev);

/* ---- argument parsing (lchalk_args.c) ----------------------------------------------------------- */
/* A Lua dim (1-based, negative from the end) at arg, checked against ndim, as a 0-based C dim. */
int lchalk_checkdim(lua_State *L, int arg, int ndim, const char *op);
int lchalk_optdim(lua_State *L, int arg, int ndim, const char *op, int def);
/* Convert a Lua dim value (not a stack slot) the same way. */
int lchalk_dim_from_lua(lua_State *L, lua_Integer d, int ndim, const char *op);
/* v as an int, or a Lua error "op: what V is out of range" (never a silent truncation). */
int lchalk_int_arg(lua_State *L, lua_Integer v, const char *op, const char *what);
/* A Lua element index (1-based, negative from the end) into a dim of size n, as 0-based. */
int64_t lchalk_index_from_lua(lua_State *L, lua_Integer i, int64_t n, int dim, const char *op);
/* A shape given as integers from stack index first on, or as one table there. Stops at the first
 * non-integer argument; returns the stack index after the shape. allow_neg admits -1 entries. */
int lchalk_checkshape(lua_State *L, int first, int64_t *shape, int *ndim, bool allow_neg, const char *op);
/* Read a dims list: an integer or a table of integers at arg (converted to 0-based, distinct). */
int lchalk_checkdims(lua_State *L, int arg, int ndim, int *dims, const char *op);

typedef struct {
  bool has_dtype, has_device;
  ct_dtype dtype;
  ct_device device;
  int requires_grad; /* -1: not given */
  const char *name;  /* NULL: not given */
} lchalk_opts;
/* Options table at idx (nil or none gives defaults): dtype, device, requires_grad, name. */
void lchalk_checkopts(lua_State *L, int idx, lchalk_opts *o);
/* Apply requires_grad and name of o to the tensor on top of the stack. */
void lchalk_apply_opts(lua_State *L, const lchalk_opts *o);
ct_dtype lchalk_checkdtype(lua_State *L, int idx);
ct_device lchalk_checkdevice(lua_State *L, int idx);
/* Raise unless tensors can be placed on d now ("cuda" without a GPU says why, and how many
 * GPUs there are when the index is too large). lchalk_checkdevice calls it. */
void lchalk_require_device(lua_State *L, ct_device d);
/* The tensor at idx, or for a number/boolean a 0-d tensor made to combine with like
 * (ct_scalar_like), which replaces the value at idx so the stack anchors it. Borrowed. */
ct_tensor *lchalk_checkoperand(lua_State *L, int idx, const ct_tensor *like);
/* Whether the value at idx is an options table (a table that is not a list of integers). */
bool lchalk_isopts(lua_State *L, int idx);

/* ---- memory (lchalk_memory.c) ------------------------------------------------------------------- */
/* Step the Lua GC in proportion to tensor bytes allocated since the last step. */
void lchalk_gc_account(lua_State *L);
/* Switch L to an allocator over the core's small-block lists when L uses lauxlib's default one. */
void lchalk_use_small_alloc(lua_State *L);
/* If the last core error was an out-of-memory, run a full Lua GC and return true (retry once). */
bool lchalk_collect_on_oom(lua_State *L);

/* Push the result of a core call that returns a new reference; on out-of-memory collect garbage
 * and evaluate expr once more (expr must have no side effects besides the allocation). */
#define LCHALK_RETURN(L, expr)                                                                     \
  do {                                                                                             \
    ct_tensor *lchalk_result_ = (expr);                                                            \
    if (!lchalk_result_ && lchalk_collect_on_oom(L)) lchalk_result_ = (expr);                      \
    return lchalk_pushtensor((L), lchalk_result_);                                                 \
  } while (0)

#endif
