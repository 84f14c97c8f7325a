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
  /* in place (graph/capture.c): dst <- src, so captured steps see optimizer updates */        \
  X(assign)                                                                                    \
  /* a function recomputed in backward (graph/passes/checkpoint.c: nn.checkpoint) */          \
  X(checkpoint)                                                                                \
  /* fused backward rows (CPU; where a device has no kernel the rules use the ops above) */    \
  X(conv2d_grad_input) X(conv2d_grad_weight)                                      \
  /* in place: y <- a y + b x (optimizer updates; recorded by chalk.capture like assign) */     \
  X(axpby)

/* An X of CT_OPS takes the op's name first; elementwise rows pass their other columns too. */
#define CT_OP_FIRST_(name, ...) name
#define CT_OP_FIRST(...) CT_OP_FIRST_(__VA_ARGS__, _)
#define CT_OP_PASTE_(p, name) p##name
#define CT_OP_PASTE(p, name) CT_OP_PASTE_(p, name)
#define CT_OP_ENUM(...) CT_OP_PASTE(CT_OP_, CT_OP_FIRST(__VA_ARGS__)),
typedef enum { CT_OPS(CT_OP_ENUM) CT_OP_COUNT } ct_op;
#undef CT_OP_ENUM

/* Attributes of one op call. Each op documents which fields it uses. */
typedef struct {
  int64_t shape[CT_MAX_DIMS]; /* target shape (view, expand) */
  int ndim;
  int64_t i[6];  /* integer attributes: dims, starts, lengths, sizes */
  double f[4];   /* float attributes: scalars, eps, p */
  uint32_t mask; /* reduction dims as a bitmask over the input's dims */
  bool keepdim;
  ct_dtype dtype;
  int impl; /* 0: the row's own forward; k >= 1: its k-th implementation (ct_op_impl, impls.c) */
} ct_attrs;

/* Output description produced by a shape rule. For view ops also strides and offset. */
typedef struct {
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int64_t stride[CT_MAX_DIMS];
  int64_t offset;
  ct_dtype dtype;
} ct_meta;
/* A contiguous output of the given shape and dtype: a shape rule's usual last step (returns 0). */
static inline int ct_meta_shape(ct_meta *m, const int64_t *shape, int ndim, ct_dtype dtype) {
  m->ndim = ndim;
  memcpy(m->shape, shape, sizeof(int64_t) * (size_t)ndim);
  m->dtype = dtype;
  return 0;
}
/* t's own description (shape, strides, offset, dtype): a view rule's starting point. */
static inline void ct_meta_of(const ct_tensor *t, ct_meta *m) {
  memset(m, 0, sizeof *m);
  m->ndim = t->ndim;
  memcpy(m->shape, t->shape, sizeof m->shape);
  memcpy(m->stride, t->stride, sizeof m->stride);
  m->offset = t->offset;
  m->dtype = t->dtype;
}

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

/* Run op with inputs and attributes: shape rule, device and dtype checks, allocation, forward,
   autograd recording, events. Returns a new reference or NULL with the error set, prefixed
   with the op name and its inputs' descriptions. */
ct_tensor *ct_op_run(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a);

/* Observers of every op run on a context (capture records a step through one): called after the
   output exists, with the inputs, attributes and output (borrowed), in the order added.
   ct_ctx_add_op_hook returns the hook's id for ct_ctx_remove_hook (or -1). ct_set_op_hook keeps
   one hook of the current context: it replaces the one it set before; NULL removes it. */
typedef void (*ct_op_hook_fn)(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out, void *ud);
int ct_ctx_add_op_hook(ct_ctx *c, ct_op_hook_fn fn, void *ud);
void ct_set_op_hook(ct_op_hook_fn fn, void *ud);

/* ---- node internals (autograd.c) ---------------------------------------------------------- */
struct ct_node {
  int refcount;
  ct_op op;
  ct_attrs attrs;
  int nin;
  ct_tensor **in;        /* strong refs to the inputs; NULL once freed */
  bool *needs;           /* needs[i]: input i takes a gradient */
  uint32_t *ver;         /* ver[i]: input i's storage version when recorded; ver[nin]: the output's
                            (one allocation with needs, freed as ver) */
  ct_tensor *out;        /* weak: the output owns this node */
  int64_t out_shape[CT_MAX_DIMS];
  int out_ndim;
  ct_dtype out_dtype;
  bool freed;
  uint64_t id;
  char *name;            /* "grad of <x>" for nodes made by backward */
  ct_tensor *gacc;       /* gradient accumulated during one backward pass */
  ct_tensor *out_hold;   /* strong ref to out while a backward pass still needs it */
  int pending;           /* topo-sort bookkeeping */
  int mark;
};

bool ct_node_needs_grad(const ct_node *n, int i);
/* Frees t's .grad when its graph holds the only references left to t (a cycle); see autograd.c. */
bool ct_grad_cycle_release(ct_tensor *t);
/* Name given to nodes created while a backward rule runs ("grad of h1"); NULL outside. */
const char *ct_backward_scope(void);

/* ---- helpers for op files ---------------------------------------------------------------- */
/* Broadcast shapes of in[0..n-1] into out (error names op_name and the shapes). */
int ct_broadcast_shapes(const char *op_name /* NULL: no prefix */, ct_tensor *const *in, int n, ct_meta *out);
/* Wraps a negative dim; error names op, the dim as the user wrote it and t's shape (t may be NULL). */
int ct_norm_dim(const char *op, int dim, const ct_tensor *t, int ndim, int *out);
/* Strides of t as seen when broadcast to shape (0 on broadcast dims). */
void ct_broadcast_strides(const ct_tensor *t, const int64_t *shape, int ndim, int64_t *stride);
void ct_contiguous_strides(const int64_t *shape, int ndim, int64_t *stride);
void *ct_data_ptr(const ct_tensor *t); /* storage data + offset*itemsize */
/* Output size of a window op along one axis, or an error naming the axis (ops_conv.c). */
int ct_conv_out_size(const char *what, int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out);
/* ct_op_run with in[0] given a batch dim of 1 when it has 3 dims, removed again after (ops_conv.c). */
ct_tensor *ct_op_run_batched(ct_op op, ct_tensor **in, int nin, const ct_attrs *at);
/* Convenience: a tensor's shape and ndim as the last two args of shape-taking functions. */
#define CT_SHAPE(t) (t)->shape, (t)->ndim

/* Storage (alloc.c) */
ct_storage *ct_storage_new(size_t nbytes, ct_device dev);
void ct_storage_release(ct_storage *s);
ct_tensor *ct_tensor_new_meta(const ct_meta *m, ct_device dev); /* allocates storage */
ct_tensor *ct_tensor_alias(ct_tensor *base, const ct_meta *m);  /* view on base's storage */

/* Device memory operations: the CPU row is in alloc.c; kernels/ fills the CUDA row. */
typedef struct {
  void *(*alloc)(size_t nbytes, int index);
  void (*free)(void *p, size_t nbytes, int index);
  int (*copy_h2d)(void *dst, const void *src, size_t n, int index);
  int (*copy_d2h)(void *dst, const void *src, size_t n, int index);
  int (*copy_d2d)(void *dst, const void *src, size_t n, int index);
  int (*memset0)(void *p, size_t n, int index);
} ct_device_ops;
extern ct_device_ops ct_devops[CT_NDEVTYPES];

/* Lifetime internals */
void ct_node_retain(ct_node *n);
void ct_node_release(ct_node *n);
void ct_mem_count_tensor(int delta);
void ct_mem_count_node(int delta);
/* Copy a tensor's elements to a host buffer (contiguous, its dtype): works for any device. */
int ct_read_host(const ct_tensor *t, void *dst);
int ct_copy_cpu(ct_tensor *dst, const ct_tensor *src); /* broadcast + dtype conversion on the CPU */
/* cat's forward on any device: each in[i] copied by `copy` (ct_copy_cpu, ct_cu_copy_into) into its
   window of out along dim (empty windows skipped). ops_index.c. */
int ct_cat_into(ct_tensor *out, ct_tensor *const *in, int nin, int dim,
                int (*copy)(ct_tensor *dst, const ct_tensor *src));

#endif
