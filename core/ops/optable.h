/* optable.h: the op table, one row per op (design decision 1), and what op files need to fill one.
 *
 * An op is declared once, in the file of its family (ops/ops_elementwise.c, ops/ops_reduce.c, ...),
 * as a `const ct_opdef ct_op_<name>` row: its shape/dtype rule, its CPU forward, its gradient rule
 * written with ordinary ct_* ops (so backward is itself a graph of table ops and double backward
 * works), its FLOP/byte estimate, whether it may run in place, its gradient as a formula and, for
 * elementwise ops, its expression. Elementwise ops are written once in ops/elementwise_defs.h,
 * which expands into their rows, loops, fused code and CUDA functors. optable.c lists the rows in
 * the order of the CT_OPS enum below. A CUDA forward is registered at run time by kernels/ into
 * ct_cuda_forward[op]; named implementations (matmul's rungs) form the column of impls.c.
 *
 * Invariant: ct_op_run() is the only place that allocates op outputs, records autograd nodes and
 * appends op events. Op files never touch refcounts of their inputs.
 */
#ifndef CHALK_OPTABLE_H
#define CHALK_OPTABLE_H

#include <string.h>

#include "chalk.h"
#include "ops/elementwise_defs.h"
#include "tensor/tensor_impl.h"

/* X-macro: every op of the table. Adding an op: one line here, one row in its family's file
   (an elementwise op: one line in ops/elementwise_defs.h, see core/README.md). */
#define CT_OPS(X)                                                                              \
  /* views */                                                                                  \
  X(view) X(expand) X(transpose) X(permute) X(narrow) X(select) X(narrow_scatter)             \
  /* conversions */                                                                            \
  X(copy) X(to_dtype)                                                                          \
  /* elementwise (core/ops/elementwise_defs.h), and where */                                \
  CT_EW_OPS(X) X(where)                                                                        \
  /* reductions */                                                                             \
  X(sum) X(mean) X(max) X(min) X(argmax) X(argmin)                                             \
  /* ordering along one dim (ops/ops_sort.c) */ X(argsort) X(cumsum)                           \
  /* linear algebra */                                                                         \
  X(matmul)                                                                                    \
  /* nn */                                                                                     \
  X(softmax) X(log_softmax) X(nll_loss) X(one_hot) X(layer_norm)                               \
  X(index_select) X(index_add) X(gather) X(scatter_add) X(cat)                                  \
  X(im2col) X(col2im) X(conv2d) X(max_pool2d) X(max_pool2d_backward) X(dropout_mask)        \
  /* attention (ops/ops_attention.c) */ X(attention_flash) X(attention_flash_backward)         \
  /* paged attention through a block table (ops/ops_paged.c) */ X(paged_attention)            \
  /* in place (ops/ops_assign.c): dst <- src, so captured steps see optimizer updates */        \
  X(assign)                                                                                    \
  /* a function recomputed in backward (ops/ops_checkpoint.c: nn.checkpoint) */                \
  X(checkpoint)                                                                                \
  /* fused backward rows (CPU; where a device has no kernel the rules use the ops above) */    \
  X(conv2d_grad_input) X(conv2d_grad_weight)                                      \
  /* in place: y <- a y + b x (optimizer updates; recorded by chalk.capture like assign) */     \
  X(axpby)                                                                                      \
  /* matmul with a quantized second operand (ops/ops_quant.c) */ X(qmatmul)

/* An X of CT_OPS takes the op's name first; elementwise rows pass their other columns too. */
#define CT_OP_FIRST_(name, ...) name
#define CT_OP_FIRST(...) CT_OP_FIRST_(__VA_ARGS__, _)
#define CT_OP_PASTE_(p, name) p##name
#define CT_OP_PASTE(p, name) CT_OP_PASTE_(p, name)
#define CT_OP_ENUM(...) CT_OP_PASTE(CT_OP_, CT_OP_FIRST(__VA_ARGS__)),
typedef enum { CT_OPS(CT_OP_ENUM) CT_OP_COUNT } ct_op;
#undef CT_OP_ENUM

typedef int (*ct_shape_fn)(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *out);
typedef int (*ct_forward_fn)(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a);
/* Sets gin[i] (new refs) for every input i where ct_node_needs_grad(n, i); others stay NULL. */
typedef int (*ct_backward_fn)(ct_node *n, ct_tensor *g, ct_tensor **gin);
typedef void (*ct_cost_fn)(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a,
                           double *flops, double *bytes);

enum {
  CT_OPF_VIEW = 1,          /* output aliases input 0's storage (shape rule gives strides) */
  CT_OPF_INPLACE_OK = 2,    /* output may overwrite input 0 (elementwise, same shape) */
  CT_OPF_NONDIFF = 4,       /* never records a node (comparisons, argmax, masks) */
  CT_OPF_NONDIFF_IN1 = 8,   /* input 1 is an index/target: no gradient flows to it */
  CT_OPF_ELEMENTWISE = 16,  /* pure elementwise with broadcasting: fusable */
  CT_OPF_INPLACE_OUT = 32,  /* output aliases input 0 and the forward writes into it (assign) */
};

typedef struct {
  const char *name;
  int arity; /* -1: variadic */
  unsigned flags;
  ct_shape_fn shape;
  ct_forward_fn cpu;
  ct_backward_fn backward; /* NULL: not differentiable twice (error says so) */
  ct_cost_fn cost;         /* NULL: elementwise estimate (1 flop per output, bytes in+out) */
  const char *grad;        /* the gradient as a formula ("dx = g*y"; "da = ...; db = ..."), or NULL */
  const char *expr;        /* elementwise ops: the C expression of elementwise_defs.h, else NULL */
} ct_opdef;

#define CT_OP_DECL(...) extern const ct_opdef CT_OP_PASTE(ct_op_, CT_OP_FIRST(__VA_ARGS__));
CT_OPS(CT_OP_DECL)
#undef CT_OP_DECL

extern const ct_opdef *const ct_optable[CT_OP_COUNT];
/* CUDA forwards, filled by kernels/ when a GPU is present; NULL where not written. */
extern ct_forward_fn ct_cuda_forward[CT_OP_COUNT];

/* ---- implementations: a column of the row (impls.c) ---------------------------------------
 * Besides its own forward per device (the default), a row may have named implementations: the
 * rungs of matmul ("naive", "tiled", ... on the CPU; "cublas", "wmma_tf32", ... on CUDA). An op
 * call picks one with attrs.impl and runs through ct_op_run like any other (events with cost,
 * autograd, capture, roofline). The CPU ones are listed in impls.c; kernels/ registers CUDA ones
 * at start-up. The default forward of each device is listed first under its own name. */
typedef struct {
  const char *name;
  ct_devtype dev;
  ct_forward_fn fn;   /* NULL: the row's own forward on dev */
  const char *note;   /* one line for chalk.ops() and the lessons */
  char event[48];     /* the op event's name: "matmul[tiled]" */
} ct_opimpl;
#define CT_MAX_IMPLS 24
/* Adds an implementation (fn NULL: names the row's own forward on dev). 0, or -1 when full. */
int ct_op_add_impl(ct_op op, const char *name, ct_devtype dev, ct_forward_fn fn, const char *note);
int ct_op_impl_count(ct_op op);
const ct_opimpl *ct_op_impl(ct_op op, int k); /* 1 <= k <= count, else NULL */
/* The k of implementation `name` of op on dev, or -1 with an error listing the row's implementations. */
int ct_op_impl_find(ct_op op, const char *name, ct_devtype dev);
/* The forward an op call runs on dev: attrs.impl's, else the row's own (cpu, or ct_cuda_forward);
   NULL with the error set when attrs.impl names an implementation of another device. */
ct_forward_fn ct_op_forward(ct_op op, ct_devtype dev, const ct_attrs *a);
/* The op event's name of a call: "matmul[tiled]" for an implementation, else the row's name. */
const char *ct_op_event_name(ct_op op, const ct_attrs *a);

/* Observers of every op run on a context (capture records a step through one): called after the
   output exists, with the inputs, attributes and output (borrowed), in the order added.
   ct_ctx_add_op_hook returns the hook's id for ct_ctx_remove_hook (or -1). ct_set_op_hook keeps
   one hook of the current context: it replaces the one it set before; NULL removes it. */
typedef void (*ct_op_hook_fn)(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out, void *ud);
int ct_ctx_add_op_hook(ct_ctx *c, ct_op_hook_fn fn, void *ud);
void ct_set_op_hook(ct_op_hook_fn fn, void *ud);

#include "ops/engine_iface.h" /* the engine loop: ct_op_run, struct ct_node, backward scope */

/* ---- helpers for op files ---------------------------------------------------------------- */
/* Output size of a window op along one axis, or an error naming the axis (ops_conv.c). */
int ct_conv_out_size(const char *what, int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out);
/* ct_op_run with in[0] given a batch dim of 1 when it has 3 dims, removed again after (ops_conv.c). */
ct_tensor *ct_op_run_batched(ct_op op, ct_tensor **in, int nin, const ct_attrs *at);

/* Copy a tensor's elements to a host buffer (contiguous, its dtype): works for any device
   (ops/tensor_ops.c). */
int ct_read_host(const ct_tensor *t, void *dst);
/* cat's forward on any device: each in[i] copied by `copy` (ct_copy_cpu, ct_cu_copy_into) into its
   window of out along dim (empty windows skipped). ops_index.c. */
int ct_cat_into(ct_tensor *out, ct_tensor *const *in, int nin, int dim,
                int (*copy)(ct_tensor *dst, const ct_tensor *src));

/* ---- in-place assignment (ops/ops_assign.c: the op capture sees optimizer updates through) -- */
/* dst <- src (broadcast, dtype converted), through the op table (op "assign") when both are on one
   device, so a captured step records it; across devices it falls back to ct_copy_. 0 or -1. */
int ct_assign_(ct_tensor *dst, ct_tensor *src);

/* ---- checkpointing (ops/ops_checkpoint.c; the graph pass is graph/passes/checkpoint.c) ---- */
/* A function recomputed in backward: run(ud, in, nin) returns a new tensor (its output).
   ct_checkpoint runs it without recording (only inputs are saved), and in backward runs it
   again with recording on to compute the gradients; params are leaves used inside run that
   need gradients (module parameters). */
typedef ct_tensor *(*ct_recompute_fn)(void *ud, ct_tensor *const *in, int nin);
typedef void (*ct_recompute_free_fn)(void *ud);
ct_tensor *ct_checkpoint(ct_recompute_fn run, ct_recompute_free_fn free_ud, void *ud, ct_tensor *const *in, int nin,
                         ct_tensor *const *params, int nparams);

#endif
