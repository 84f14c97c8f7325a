/* inspect.h: a read-only view of autograd nodes and op rows for tools that draw or explain a
 * graph (viz/, the REPL's :help): what a node computes, its inputs and output, without the
 * op table or struct ct_node. Nothing here changes a node or a tensor.
 * Invariants: every pointer returned is borrowed (it lives as long as the node or the op table);
 * an out-of-range op or a NULL node gives empty answers, never a crash. */
#ifndef CHALK_GRAPH_INSPECT_H
#define CHALK_GRAPH_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "chalk.h"

typedef struct {
  int op;                  /* op table index */
  const char *op_name;     /* "matmul" */
  int ninputs;
  bool view;               /* the output views an input (no copy) */
  bool elementwise;        /* one output element from the same element of each input */
  bool freed;              /* backward freed the saved inputs: inputs read NULL */
  bool backward;           /* made by a backward rule ("grad of h1") */
  const char *name;        /* the node's name ("grad of h1"), or NULL */
  const char *grad_formula; /* the gradient as text: the op row's formula where it has one, else the op name */
  int out_ndim;
  int64_t out_shape[CT_MAX_DIMS];
  ct_dtype out_dtype;
  uint64_t id;
  double fattr[4];         /* the op's float attributes (the scalar of mul_scalar, clamp's bounds) */
  int64_t iattr[6];        /* the op's integer attributes (dims, starts, lengths) */
} ct_node_info;

/* What node n computes (zeroed with op -1 when n is NULL). */
void ct_node_inspect(const ct_node *n, ct_node_info *out);
/* Flags of op table row op (false out of range). */
bool ct_op_is_view(int op);
bool ct_op_is_elementwise(int op);

#endif
