/* inspect.c: the read-only view of autograd nodes and op rows (inspect.h). */
#include <string.h>

#include "graph/inspect.h"
#include "ops/optable.h"

static const ct_opdef *row(int op) { return op >= 0 && op < CT_OP_COUNT ? ct_optable[op] : NULL; }

bool ct_op_is_view(int op) {
  const ct_opdef *d = row(op);
  return d && (d->flags & CT_OPF_VIEW);
}

bool ct_op_is_elementwise(int op) {
  const ct_opdef *d = row(op);
  return d && (d->flags & CT_OPF_ELEMENTWISE);
}

void ct_node_inspect(const ct_node *n, ct_node_info *out) {
  memset(out, 0, sizeof *out);
  out->op = -1;
  if (!n) return;
  out->op = n->op;
  out->op_name = ct_op_name(n->op);
  out->ninputs = n->nin;
  out->view = ct_op_is_view(n->op);
  out->elementwise = ct_op_is_elementwise(n->op);
  out->freed = n->freed;
  out->name = n->name;
  out->backward = n->name != NULL;
  const char *formula = ct_op_grad_formula(out->op_name);
  out->grad_formula = formula ? formula : out->op_name;
  out->out_ndim = n->out_ndim;
  memcpy(out->out_shape, n->out_shape, sizeof out->out_shape);
  out->out_dtype = n->out_dtype;
  out->id = n->id;
  memcpy(out->fattr, n->attrs.f, sizeof out->fattr);
  memcpy(out->iattr, n->attrs.i, sizeof out->iattr);
}
