/* dispatch.c: ct_op_run, the one path every op takes: checks, shape rule, allocation, forward on
 * the right device, autograd recording and the op event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/ctx.h"
#include "obs/events.h"
#include "ops/optable.h"

/* Process-wide: the CUDA column of the op table (kernels/ fills it once) and node ids (unique
   across contexts: events and pictures name nodes by them). Grad mode, retain-grads and the op
   hooks are the current context's (core/ctx), read once per op. */
ct_forward_fn ct_cuda_forward[CT_OP_COUNT];
static uint64_t next_node_id = 1;

int ct_ctx_add_op_hook(ct_ctx *c, ct_op_hook_fn fn, void *ud) {
  return ct_ctx_add_hook_any(c, CT_HOOK_OP, (ct_hook_any)fn, ud);
}

void ct_set_op_hook(ct_op_hook_fn fn, void *ud) {
  ct_ctx *c = ct_ctx_cur();
  if (c->legacy_op_hook) ct_ctx_remove_hook(c, c->legacy_op_hook);
  c->legacy_op_hook = 0;
  if (fn) {
    int id = ct_ctx_add_op_hook(c, fn, ud);
    c->legacy_op_hook = id > 0 ? id : 0;
  }
}

static void run_op_hooks(ct_ctx *c, ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out) {
  for (int i = 0; i < c->nhooks; i++) /* index, not pointer: a hook may add or remove hooks */
    if (c->hooks[i].kind == CT_HOOK_OP) ((ct_op_hook_fn)c->hooks[i].fn)(op, in, nin, a, out, c->hooks[i].ud);
}

bool ct_grad_enabled(void) { return ct_ctx_cur()->grad_enabled; }
bool ct_set_grad_enabled(bool on) { return ct_ctx_set_grad_enabled(ct_ctx_cur(), on); }
void ct_set_retain_all_grads(bool on) { ct_ctx_cur()->retain_all_grads = on; }
bool ct_retain_all_grads(void) { return ct_ctx_cur()->retain_all_grads; }

int ct_op_count(void) { return CT_OP_COUNT; }
const char *ct_op_name(int op) { return op >= 0 && op < CT_OP_COUNT ? ct_optable[op]->name : "?"; }

/* Re-issue the current error as "op: message (inputs: ...)". */
static void op_error(const ct_opdef *def, ct_tensor *const *in, int nin) {
  char msg[1024], ins[600] = "";
  snprintf(msg, sizeof msg, "%s", ct_last_error());
  size_t k = 0;
  for (int i = 0; i < nin && i < 4 && k < sizeof ins; i++) {
    char d[160];
    k += (size_t)snprintf(ins + k, sizeof ins - k, "%s%s", i ? ", " : "", ct_describe(in[i], d, sizeof d));
  }
  if (nin > 4 && k < sizeof ins) snprintf(ins + k, sizeof ins - k, ", ... (%d inputs)", nin);
  size_t nl = strlen(def->name);
  bool named = !strncmp(msg, def->name, nl) && msg[nl] == ':';
  if (strstr(msg, "(inputs:")) return;
  if (nin) ct_errorf("%s%s%s (inputs: %s)", named ? "" : def->name, named ? "" : ": ", msg, ins);
  else if (!named) ct_errorf("%s: %s", def->name, msg);
}

static void default_cost(ct_tensor *const *in, int nin, const ct_tensor *out, double *flops, double *bytes) {
  double b = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype);
  for (int i = 0; i < nin; i++) b += (double)ct_numel(in[i]) * (double)ct_dtype_size(in[i]->dtype);
  *flops = (double)ct_numel(out);
  *bytes = b;
}

/* tensor/'s ct_release hands a tensor's node back here (ct_tensor_release_grad_fn). */
static void release_grad_fn(ct_tensor *t) {
  if (t->grad_fn->out == t) t->grad_fn->out = NULL; /* the node's weak pointer must not dangle */
  ct_node_release(t->grad_fn);
}

static int record_node(const ct_ctx *cx, ct_op op, const ct_opdef *def, ct_tensor *const *in, int nin,
                       const ct_attrs *a, ct_tensor *out) {
  bool any = false;
  for (int i = 0; i < nin; i++) {
    if (i > 0 && (def->flags & CT_OPF_NONDIFF_IN1)) break;
    if (in[i]->requires_grad) any = true;
  }
  if (!any) return 0;
  ct_node *n = calloc(1, sizeof *n);
  ct_tensor **ins = malloc(sizeof *ins * (size_t)nin);
  /* one block: the saved versions, then needs (autograd.c frees it as n->ver) */
  uint32_t *ver = malloc(sizeof *ver * (size_t)(nin + 1) + sizeof(bool) * (size_t)nin);
  bool *needs = ver ? (bool *)(ver + nin + 1) : NULL;
  if (!n || !ins || !ver) {
    free(n), free(ins), free(ver);
    return ct_errorf("%s: out of memory recording the autograd node", def->name);
  }
  n->refcount = 1;
  n->op = op;
  if (a) n->attrs = *a;
  n->nin = nin;
  n->in = ins;
  n->needs = needs;
  n->ver = ver;
  ver[nin] = out->storage->version;
  for (int i = 0; i < nin; i++) {
    ver[i] = in[i]->storage->version;
    ins[i] = ct_retain(in[i]);
    needs[i] = in[i]->requires_grad && !(i > 0 && (def->flags & CT_OPF_NONDIFF_IN1));
  }
  n->out = out;
  n->out_ndim = out->ndim;
  memcpy(n->out_shape, out->shape, sizeof n->out_shape);
  n->out_dtype = out->dtype;
  n->id = next_node_id++;
  const char *scope = ct_backward_scope();
  if (scope) n->name = strdup(scope);
  ct_mem_count_node(1);
  ct_tensor_release_grad_fn = release_grad_fn; /* tensor/ releases grad_fn nodes through this */
  ct_tensor_grad_cycle_fn = ct_grad_cycle_release; /* and asks about .grad cycles */
  out->grad_fn = n;
  out->requires_grad = true;
  if (cx->retain_all_grads) out->retains_grad = true;
  return 0;
}

ct_tensor *ct_op_run(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a) {
  static const ct_attrs no_attrs;
  const ct_opdef *def = ct_optable[op];
  if (!a) a = &no_attrs;
  if (def->arity >= 0 && nin != def->arity) {
    ct_errorf("%s: expected %d inputs, got %d", def->name, def->arity, nin);
    return NULL;
  }
  ct_device dev = nin ? in[0]->storage->device : ct_cpu();
  for (int i = 1; i < nin && op != CT_OP_copy; i++) {
    if (!ct_device_eq(in[i]->storage->device, dev)) {
      char a0[32], a1[32];
      ct_errorf("%s: expected all tensors on one device, got %s and %s", def->name,
                ct_device_str(dev, a0, sizeof a0), ct_device_str(in[i]->storage->device, a1, sizeof a1));
      op_error(def, in, nin);
      return NULL;
    }
  }
  ct_meta m;
  memset(&m, 0, sizeof m);
  if (def->shape(in, nin, a, &m)) {
    op_error(def, in, nin);
    return NULL;
  }
  if (op == CT_OP_copy) dev = (ct_device){(ct_devtype)a->i[0], (int)a->i[1]};
  bool log = ct_events_on();
  double t0 = log ? ct_now_us() : 0;
  ct_tensor *out;
  if (def->flags & CT_OPF_VIEW) {
    out = ct_tensor_alias(in[0], &m);
    if (!out) return NULL;
  } else {
    ct_forward_fn fwd = ct_op_forward(op, dev.type, a); /* the row's own, or attrs.impl's (impls.c) */
    if (!fwd) {
      char d[32];
      if (a->impl && ct_op_impl(op, a->impl) && ct_op_impl(op, a->impl)->dev != dev.type) {
        /* ct_op_forward's error says which device the implementation runs on */
      } else if (dev.type == CT_CUDA && !ct_cuda_available())
        ct_errorf("%s: device %s is not available: %s", def->name, ct_device_str(dev, d, sizeof d),
                  ct_cuda_unavailable_reason());
      else
        ct_errorf("%s: no kernel for device %s", def->name, ct_device_str(dev, d, sizeof d));
      op_error(def, in, nin);
      return NULL;
    }
    /* in-place ops (CT_OPF_INPLACE_OUT) write into input 0: their output is an alias of it */
    /* outside any model/backward/step (default input), an output the autograd graph records is an
       activation, as PyTorch's memory profiler counts it */
    ct_ctx *cc = ct_ctx_cur();
    bool act = cc->default_category == CT_CAT_INPUT && cc->grad_enabled && !(def->flags & CT_OPF_NONDIFF);
    if (act) {
      act = false;
      for (int i = 0; i < nin && !(i > 0 && (def->flags & CT_OPF_NONDIFF_IN1)); i++) act = act || in[i]->requires_grad;
    }
    ct_category old_cat = act ? ct_set_default_category(CT_CAT_ACTIVATION) : CT_CAT_INPUT;
    out = (def->flags & CT_OPF_INPLACE_OUT) ? ct_tensor_alias(in[0], &m) : ct_tensor_new_meta(&m, dev);
    if (act) ct_set_default_category(old_cat);
    if (!out) {
      op_error(def, in, nin);
      return NULL;
    }
    if (fwd(out, in, nin, a)) {
      op_error(def, in, nin);
      ct_release(out);
      return NULL;
    }
    if (def->flags & CT_OPF_INPLACE_OUT) out->storage->version++; /* saved copies of in[0] are stale */
  }
  ct_ctx *cx = ct_ctx_cur();
  if (cx->grad_enabled && !(def->flags & CT_OPF_NONDIFF) && ct_dtype_is_float(out->dtype)) {
    if (record_node(cx, op, def, in, nin, a, out)) {
      ct_release(out);
      return NULL;
    }
  }
  if (cx->nhooks_of[CT_HOOK_OP]) run_op_hooks(cx, op, in, nin, a, out);
  if (log) {
    ct_event e = {.kind = op == CT_OP_copy && !ct_device_eq(dev, in[0]->storage->device) ? CT_EV_COPY : CT_EV_OP,
                  .name = ct_op_event_name(op, a)};
    e.t0 = t0;
    e.t1 = ct_now_us();
    e.device = dev;
    e.node_id = out->grad_fn ? out->grad_fn->id : 0;
    e.tensor_id = out->id;
    if (def->cost) def->cost(in, nin, out, a, &e.flops, &e.bytes);
    else default_cost(in, nin, out, &e.flops, &e.bytes);
    if (def->flags & CT_OPF_VIEW) e.flops = e.bytes = 0;
    e.nbytes = (int64_t)e.bytes;
    const char *scope = ct_backward_scope();
    e.backward = scope != NULL;
    if (scope) snprintf(e.label, sizeof e.label, "%s", scope);
    ct_event_push(&e);
  }
  return out;
}
