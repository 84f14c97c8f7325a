/* ops_checkpoint.c: the op "checkpoint" (nn.checkpoint): runs a function without recording, keeps
 * only its inputs, and in backward runs it again with recording on to get the gradients. The graph
 * pass of the same name (graph/passes/checkpoint.c) recomputes captured segments instead.
 * Invariant: recomputation runs the same ops on the same values, so checkpointed gradients equal
 * the plain ones bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/optable.h"

/* ==== the checkpoint op ===================================================================== */

typedef struct ckpt_slot {
  uint64_t id;
  ct_recompute_fn run;
  ct_recompute_free_fn free_ud;
  void *ud;
  ct_tensor *anchor; /* a 0-d tensor held by the op's node: when only we hold it, the node is gone */
  struct ckpt_slot *next;
} ckpt_slot;

static ckpt_slot *slots;
static uint64_t next_slot = 1;

static void collect_slots(void) {
  for (ckpt_slot **p = &slots; *p;) {
    ckpt_slot *s = *p;
    if (s->anchor->refcount > 1) {
      p = &s->next;
      continue;
    }
    *p = s->next;
    if (s->free_ud) s->free_ud(s->ud);
    ct_release(s->anchor);
    free(s);
  }
}

static int checkpoint_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  ct_meta_of(in[0], m);
  return 0;
}

/* Every leaf needing grad that the recomputed graph reaches must be a target, or its gradient
   would silently be lost. */
static int check_leaves(ct_tensor *y, ct_tensor *const *targets, int nt) {
  ct_node_vec stack = {0}, seen = {0};
  int rc = y->grad_fn ? ct_node_vec_push(&stack, y->grad_fn, "checkpoint") : 0;
  while (stack.n && !rc) {
    ct_node *n = stack.v[--stack.n];
    bool dup = false;
    for (size_t i = 0; i < seen.n && !dup; i++) dup = seen.v[i] == n;
    if (dup) continue;
    if ((rc = ct_node_vec_push(&seen, n, "checkpoint"))) break;
    for (int i = 0; i < ct_node_ninputs(n) && !rc; i++) {
      ct_tensor *t = ct_node_input(n, i);
      if (!t || !ct_node_needs_grad(n, i)) continue;
      if (t->grad_fn) {
        rc = ct_node_vec_push(&stack, t->grad_fn, "checkpoint");
        continue;
      }
      bool known = false;
      for (int k = 0; k < nt && !known; k++) known = targets[k] == t || targets[k]->storage == t->storage;
      if (!known) {
        char d[200];
        rc = ct_errorf("checkpoint: the function uses %s%s%s, which needs a gradient but was not given: pass it "
                       "as nn.checkpoint(fn, {params...}) (or checkpoint a module)",
                       t->name ? t->name : "", t->name ? " " : "", ct_describe(t, d, sizeof d));
      }
    }
  }
  free(stack.v), free(seen.v);
  return rc;
}

/* in: y (the result, no grad), the function's inputs, the parameters, the anchor */
static int checkpoint_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  int nx = (int)n->attrs.i[0], np = (int)n->attrs.i[1];
  uint64_t id = (uint64_t)n->attrs.i[2];
  ckpt_slot *s = slots;
  while (s && s->id != id) s = s->next;
  if (!s) return ct_errorf("checkpoint: the recomputed function is gone");
  bool create = ct_grad_enabled(); /* the engine turns recording on only for create_graph */
  bool old = ct_set_grad_enabled(true);
  int rc = 0, nt = 0;
  ct_tensor **xd = calloc((size_t)(nx + 1), sizeof *xd), **targets = calloc((size_t)(nx + np + 1), sizeof *targets);
  ct_tensor **res = calloc((size_t)(nx + np + 1), sizeof *res);
  int *slot_of = calloc((size_t)(nx + np + 1), sizeof *slot_of);
  if (!xd || !targets || !res || !slot_of) rc = ct_errorf("checkpoint: out of memory");
  for (int i = 0; i < nx && !rc; i++) {
    ct_tensor *x = n->in[1 + i];
    if (ct_node_needs_grad(n, 1 + i)) {
      xd[i] = ct_detach(x);
      if (!xd[i] || ct_requires_grad_(xd[i], true))
        rc = -1;
      else
        slot_of[nt] = 1 + i, targets[nt++] = xd[i];
    } else {
      xd[i] = ct_retain(x);
    }
  }
  for (int j = 0; j < np && !rc; j++)
    if (ct_node_needs_grad(n, 1 + nx + j)) slot_of[nt] = 1 + nx + j, targets[nt++] = n->in[1 + nx + j];
  ct_tensor *y = NULL;
  if (!rc && nt) {
    y = s->run(s->ud, xd, nx);
    if (!y)
      rc = -1;
    else if (!y->requires_grad)
      rc = ct_errorf("checkpoint: the recomputed result does not depend on anything that needs grad");
  }
  if (!rc && nt) rc = check_leaves(y, targets, nt);
  if (!rc && nt) rc = ct_grad(y, g, targets, nt, res, false, create);
  for (int t = 0; t < nt && !rc; t++) {
    gin[slot_of[t]] = res[t];
    res[t] = NULL;
  }
  ct_set_grad_enabled(old);
  ct_release(y);
  for (int i = 0; xd && i < nx; i++) ct_release(xd[i]);
  for (int t = 0; res && t < nt; t++) ct_release(res[t]);
  free(xd), free(targets), free(res), free(slot_of);
  return rc;
}

const ct_opdef ct_op_checkpoint = {"checkpoint", -1,
                                   CT_OPF_VIEW,  checkpoint_shape,
                                   NULL,         checkpoint_backward,
                                   NULL,         "dx = backward of the function, recomputed",
                                   NULL};

ct_tensor *ct_checkpoint(ct_recompute_fn run, ct_recompute_free_fn free_ud, void *ud, ct_tensor *const *in, int nin,
                         ct_tensor *const *params, int nparams) {
  collect_slots();
  bool old = ct_set_grad_enabled(false);
  ct_tensor *y = run(ud, in, nin);
  ct_set_grad_enabled(old);
  ckpt_slot *s = y ? calloc(1, sizeof *s) : NULL;
  ct_tensor **ins = y ? malloc(sizeof *ins * (size_t)(nin + nparams + 2)) : NULL;
  ct_tensor *anchor = y ? ct_scalar(0, CT_F32, y->storage->device) : NULL;
  if (!s || !ins || !anchor) {
    if (y && !(s && ins)) ct_errorf("checkpoint: out of memory");
    if (free_ud) free_ud(ud);
    ct_release(y), ct_release(anchor);
    free(s), free(ins);
    return NULL;
  }
  s->id = next_slot++;
  s->run = run, s->free_ud = free_ud, s->ud = ud;
  s->anchor = anchor;
  s->next = slots;
  slots = s;
  int k = 0;
  ins[k++] = y;
  for (int i = 0; i < nin; i++) ins[k++] = in[i];
  for (int j = 0; j < nparams; j++) ins[k++] = params[j];
  ins[k++] = anchor;
  ct_attrs a = {0};
  a.i[0] = nin, a.i[1] = nparams, a.i[2] = (int64_t)s->id;
  ct_tensor *out = ct_op_run(CT_OP_checkpoint, ins, k, &a);
  free(ins);
  ct_release(y);
  return out;
}
