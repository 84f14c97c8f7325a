/* engine_iface.h: the one call loop of core's design, named in one place.
 *
 * Dispatch (ops/dispatch.c, ct_op_run) records an autograd node for each differentiable op call;
 * backward (ops/autograd.c) runs each node's gradient rule, and those rules are ordinary ops that
 * go through ct_op_run again (so backward is a graph of table ops and double backward works).
 * Everything the two sides call of each other is below; nothing else in either file is reached
 * from the other side.
 *
 *   dispatch.c -> autograd.c   ct_node_retain, ct_node_release (a node's lifetime),
 *                              ct_backward_scope ("grad of h1": names nodes made inside a rule)
 *   autograd.c -> dispatch.c   ct_op_run (through the rows' gradient rules, and the gradient
 *                              sums: ct_add, ct_ones_like, ct_to_dtype, ct_clone are ct_op_run),
 *                              the grad mode of the current context (ct_grad_enabled,
 *                              ct_set_grad_enabled, ct_retain_all_grads in chalk.h)
 *   op family files            ct_op_run, ct_node_needs_grad, the fields of struct ct_node that a
 *                              gradient rule reads (in, attrs, out_shape, out_dtype)
 *
 * Layers below ops/ never call in: tensor/ releases a tensor's node through the hook
 * ct_tensor_release_grad_fn (tensor/tensor_impl.h), which dispatch sets when it records a node.
 * Included by ops/optable.h, after the op enum and ct_attrs it needs: include that one.
 */
#ifndef CHALK_ENGINE_IFACE_H
#define CHALK_ENGINE_IFACE_H

#ifndef CHALK_OPTABLE_H
#error "include ops/optable.h (it includes ops/engine_iface.h after the types this header uses)"
#endif

/* Run op with inputs and attributes: shape rule, device and dtype checks, allocation, forward,
   autograd recording, events. Returns a new reference or NULL with the error set, prefixed
   with the op name and its inputs' descriptions. */
ct_tensor *ct_op_run(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a);

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

/* A growing list of nodes (a graph walk's stack, the nodes seen); push appends n, doubling the
   list when full: 0, or -1 with "<op>: out of memory" set. Free v when done. */
typedef struct {
  ct_node **v;
  size_t n, cap;
} ct_node_vec;
int ct_node_vec_push(ct_node_vec *v, ct_node *n, const char *op);

/* Node lifetime (autograd.c) */
void ct_node_retain(ct_node *n);
void ct_node_release(ct_node *n);

#endif
