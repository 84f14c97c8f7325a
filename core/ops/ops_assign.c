/* ops_assign.c: in-place ops that capture sees optimizer updates through: assign and the multi-tensor updates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/copy.h"
#include "ops/optable.h"

/* ==== the assign op: dst <- src (output aliases dst) ========================================= */

static int assign_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin, (void)a;
  ct_meta b;
  if (ct_broadcast_shapes(NULL, in, 2, &b)) return -1;
  const ct_tensor *dst = in[0], *src = in[1];
  if (b.ndim != dst->ndim || memcmp(b.shape, dst->shape, sizeof(int64_t) * (size_t)b.ndim)) {
    char s1[160], s2[160];
    return ct_errorf("source of shape %s does not broadcast to destination shape %s",
                     ct_shape_str(src->shape, src->ndim, s1, sizeof s1),
                     ct_shape_str(dst->shape, dst->ndim, s2, sizeof s2));
  }
  ct_meta_of(dst, m);
  return 0;
}
static int assign_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  return ct_copy_cpu(out, in[1]);
}
static int assign_cuda(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin, (void)a;
  ct_tensor *src = in[1];
  return ct_cuda_forward[CT_OP_copy](out, &src, 1, NULL);
}
static void assign_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  (void)nin, (void)a;
  *f = 0;
  *b = (double)ct_numel(out) * (double)ct_dtype_size(out->dtype) +
       (double)ct_numel(in[1]) * (double)ct_dtype_size(in[1]->dtype);
}
const ct_opdef ct_op_assign = {
    "assign", 2, CT_OPF_INPLACE_OUT | CT_OPF_NONDIFF, assign_shape, assign_cpu, NULL, assign_cost, NULL, NULL};

int ct_assign_(ct_tensor *dst, ct_tensor *src) {
  ct_device dd = dst->storage->device, sd = src->storage->device;
  if (!ct_device_eq(dd, sd)) return ct_copy_(dst, src);
  if (dd.type != CT_CPU && !ct_cuda_forward[CT_OP_assign]) {
    if (!ct_cuda_forward[CT_OP_copy]) return ct_copy_(dst, src);
    ct_cuda_forward[CT_OP_assign] = assign_cuda;
  }
  ct_tensor *in[2] = {dst, src};
  ct_tensor *r = ct_op_run(CT_OP_assign, in, 2, NULL);
  if (!r) return -1;
  ct_release(r);
  return 0;
}

/* ==== the multi-tensor optimizer rows sgd_multi and adam_multi (one op, one CUDA launch, all parameters) ====
 *
 * An optimizer step used to run one chain of table ops per parameter (SGD with momentum: two
 * axpby passes; Adam: 15 ops), so a step launched a kernel per op per parameter. These rows take
 * every parameter of a group at once, as PyTorch's fused/multi-tensor optimizers do:
 *   sgd_multi  inputs [p_1..p_n, (buf_1..buf_n,) g_1..g_n]   writes p (and buf)
 *   adam_multi inputs [p_1..p_n, m_1..m_n, v_1..v_n, g_1..g_n] writes p, m, v
 * attrs.i[0] = n, attrs.i[1] = the written inputs (the first i[1] inputs: CT_OPF_INPLACE_MULTI, so
 * chalk.capture records every written tensor as a new version of it), then per row:
 *   sgd_multi:  f = {lr, momentum, dampening, weight_decay}; i[2] first step (buf <- d), i[3] nesterov
 *   adam_multi: f = {lr, beta1, beta2, eps}; i[2] step (>= 1), i[3] decoupled (AdamW),
 *               i[4] the bits of weight_decay (a double: f has four slots)
 * Invariant: each element goes through the same roundings, in the same order, as the unfused
 * chain of lua/chalk/optim.lua (table ops: a scalar product computed in double then rounded to the
 * dtype, binary ops in the dtype), so the fused update equals the unfused one bit for bit on the
 * CPU (tests/lua/optim_fused_spec.lua), and the FMA-free kernel of kernels/optim.cu equals this
 * loop bit for bit (tests/gpu/step_parity.c). Every tensor is contiguous; ct_*_multi_ make
 * gradients so. */

/* the per-element updates, one dtype each (T float or double): shared by the CPU rows here */
#define SGD_ELEM(T)                                                                                                    \
  static void sgd_elem_##T(T *p, T *buf, const T *g, int64_t n, const double *f, bool init, bool nest) {               \
    const double lr = f[0], mom = f[1], damp = f[2], wd = f[3];                                                        \
    const T a = (T)mom, b = (T)(1 - damp), mlr = (T)(-lr), one = (T)1;                                                 \
    for (int64_t i = 0; i < n; i++) {                                                                                  \
      T d = g[i];                                                                                                      \
      if (wd != 0) d = d + (T)((double)p[i] * wd);                                                                     \
      if (buf) {                                                                                                       \
        T ay = a * buf[i], bx = b * d;                                                                                 \
        buf[i] = init ? d : ay + bx;                                                                                   \
        d = nest ? d + (T)((double)buf[i] * mom) : buf[i];                                                             \
      }                                                                                                                \
      T py = one * p[i], pd = mlr * d;                                                                                 \
      p[i] = py + pd;                                                                                                  \
    }                                                                                                                  \
  }
SGD_ELEM(float)
SGD_ELEM(double)

/* The constants of Adam's step, as lua/chalk/optim.lua computes them. */
typedef struct {
  double decay, wd, c1, c2, b2, isb2, eps, step_size;
  bool decoupled;
} adam_k;
static adam_k adam_consts(const ct_attrs *a) {
  adam_k k;
  double lr = a->f[0], b1 = a->f[1], b2 = a->f[2], wd;
  memcpy(&wd, &a->i[4], sizeof wd);
  double step = (double)a->i[2];
  k.decoupled = a->i[3] != 0;
  k.decay = 1 - lr * wd;
  k.wd = wd;
  k.c1 = 1 - b1;
  k.c2 = 1 - b2;
  k.b2 = b2;
  k.isb2 = 1 / sqrt(1 - pow(b2, step));
  k.eps = a->f[3];
  k.step_size = lr / (1 - pow(b1, step));
  return k;
}
#define ADAM_ELEM(T)                                                                                                   \
  static void adam_elem_##T(T *p, T *m, T *v, const T *g, int64_t n, const adam_k *k) {                                \
    for (int64_t i = 0; i < n; i++) {                                                                                  \
      T pi = p[i], gr = g[i];                                                                                          \
      if (k->wd != 0 && k->decoupled) pi = (T)((double)pi * k->decay);                                                 \
      if (k->wd != 0 && !k->decoupled) gr = gr + (T)((double)pi * k->wd);                                              \
      T t = gr - m[i];                                                                                                 \
      T mi = m[i] + (T)((double)t * k->c1);                                                                            \
      T sq = gr * gr;                                                                                                  \
      T vi = (T)((double)v[i] * k->b2) + (T)((double)sq * k->c2);                                                      \
      T den = (T)((double)(T)((double)sqrt_##T(vi) * k->isb2) + k->eps);                                               \
      T q = mi / den;                                                                                                  \
      p[i] = pi - (T)((double)q * k->step_size);                                                                       \
      m[i] = mi;                                                                                                       \
      v[i] = vi;                                                                                                       \
    }                                                                                                                  \
  }
static inline float sqrt_float(float x) { return sqrtf(x); }
static inline double sqrt_double(double x) { return sqrt(x); }
ADAM_ELEM(float)
ADAM_ELEM(double)

/* ---- shape: n tensors in each of `lists` lists, matching p_i in shape and dtype, contiguous ---- */
static int multi_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m, int lists, const char *what) {
  int64_t n = a->i[0];
  if (n < 1 || n * lists != nin)
    return ct_errorf("expected %d lists of %lld tensors (%s), got %d inputs", lists, (long long)n, what, nin);
  if (a->i[1] < 1 || a->i[1] > nin) return ct_errorf("written inputs %lld out of 1..%d", (long long)a->i[1], nin);
  for (int i = 0; i < n; i++) {
    const ct_tensor *p = in[i];
    if (p->dtype != CT_F32 && p->dtype != CT_F64)
      return ct_errorf("parameter %d has dtype %s (f32 or f64 only)", i + 1, ct_dtype_name(p->dtype));
    for (int l = 0; l < lists; l++) {
      const ct_tensor *t = in[l * n + i];
      char s1[160], s2[160];
      if (t->dtype != p->dtype || t->ndim != p->ndim || memcmp(t->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim))
        return ct_errorf("tensor %d of list %d is %s %s, its parameter %s %s", i + 1, l + 1, ct_dtype_name(t->dtype),
                         ct_shape_str(t->shape, t->ndim, s1, sizeof s1), ct_dtype_name(p->dtype),
                         ct_shape_str(p->shape, p->ndim, s2, sizeof s2));
      if (!ct_is_contiguous(t)) return ct_errorf("tensor %d of list %d is not contiguous", i + 1, l + 1);
    }
  }
  ct_meta_of(in[0], m);
  return 0;
}
static int sgd_lists(const ct_attrs *a) { return a->f[1] != 0 ? 3 : 2; }
static int sgd_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  return multi_shape(in, nin, a, m, sgd_lists(a), a->f[1] != 0 ? "params, momentum buffers, grads" : "params, grads");
}
static int adam_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  return multi_shape(in, nin, a, m, 4, "params, exp_avg, exp_avg_sq, grads");
}

static int sgd_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)out, (void)nin;
  int n = (int)a->i[0];
  bool mom = a->f[1] != 0;
  for (int i = 0; i < n; i++) {
    ct_tensor *p = in[i], *buf = mom ? in[n + i] : NULL, *g = in[(mom ? 2 : 1) * n + i];
    int64_t k = ct_numel(p);
    if (p->dtype == CT_F32)
      sgd_elem_float(ct_data_ptr(p), buf ? ct_data_ptr(buf) : NULL, ct_data_ptr(g), k, a->f, a->i[2], a->i[3]);
    else
      sgd_elem_double(ct_data_ptr(p), buf ? ct_data_ptr(buf) : NULL, ct_data_ptr(g), k, a->f, a->i[2], a->i[3]);
  }
  return 0;
}
static int adam_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)out, (void)nin;
  int n = (int)a->i[0];
  adam_k k = adam_consts(a);
  for (int i = 0; i < n; i++) {
    ct_tensor *p = in[i], *m = in[n + i], *v = in[2 * n + i], *g = in[3 * n + i];
    if (p->dtype == CT_F32)
      adam_elem_float(ct_data_ptr(p), ct_data_ptr(m), ct_data_ptr(v), ct_data_ptr(g), ct_numel(p), &k);
    else
      adam_elem_double(ct_data_ptr(p), ct_data_ptr(m), ct_data_ptr(v), ct_data_ptr(g), ct_numel(p), &k);
  }
  return 0;
}

/* flops: the element chain's ops; bytes: every list read once, the written ones written once */
static void multi_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double per, double *f,
                       double *b) {
  (void)out;
  double elems = 0, bytes = 0;
  int64_t n = a->i[0];
  for (int i = 0; i < nin; i++) {
    double e = (double)ct_numel(in[i]);
    bytes += e * (double)ct_dtype_size(in[i]->dtype) * (i < a->i[1] ? 2 : 1);
    if (i < n) elems += e;
  }
  *f = per * elems;
  *b = bytes;
}
static void sgd_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  multi_cost(in, nin, out, a, a->f[1] != 0 ? 6 : 3, f, b);
}
static void adam_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *f, double *b) {
  multi_cost(in, nin, out, a, 15, f, b);
}

#define MULTI_FLAGS (CT_OPF_INPLACE_OUT | CT_OPF_INPLACE_MULTI | CT_OPF_NONDIFF)
const ct_opdef ct_op_sgd_multi = {"sgd_multi", -1, MULTI_FLAGS, sgd_shape, sgd_cpu, NULL, sgd_cost, NULL, NULL};
const ct_opdef ct_op_adam_multi = {"adam_multi", -1, MULTI_FLAGS, adam_shape, adam_cpu, NULL, adam_cost, NULL, NULL};

/* ---- entry points ------------------------------------------------------------------------------ */
/* Runs op over lists [written lists..., grads] (grads made contiguous and of the params' dtype);
   bumps the version of every written tensor (ct_op_run bumps input 0's). */
static int run_multi(ct_op op, const char *name, ct_tensor *const *lists, int nlists, int n, ct_attrs *at) {
  if (n < 1) return ct_errorf("%s: no parameters", name);
  int nin = nlists * n;
  ct_tensor **in = calloc((size_t)nin, sizeof *in);
  if (!in) return ct_errorf("%s: out of memory", name);
  int rc = 0;
  for (int i = 0; i < nin && !rc; i++) {
    ct_tensor *t = lists[i];
    if (!t) {
      rc = ct_errorf("%s: tensor %d of list %d is missing", name, i % n + 1, i / n + 1);
      break;
    }
    if (i < (nlists - 1) * n) { /* written: used as they are */
      in[i] = ct_retain(t);
      continue;
    }
    ct_tensor *c = ct_to_dtype(t, lists[i % n]->dtype);
    in[i] = c ? ct_contiguous(c) : NULL;
    ct_release(c);
    if (!in[i]) rc = -1;
  }
  at->i[0] = n;
  at->i[1] = (int64_t)(nlists - 1) * n;
  ct_tensor *r = rc ? NULL : ct_op_run(op, in, nin, at);
  if (r) {
    for (int i = 1; i < at->i[1]; i++) in[i]->storage->version++;
    ct_release(r);
  } else {
    rc = -1;
  }
  for (int i = 0; i < nin; i++) ct_release(in[i]);
  free(in);
  return rc;
}

int ct_sgd_multi_(ct_tensor *const *p, ct_tensor *const *buf, ct_tensor *const *g, int n, double lr, double momentum,
                  double dampening, double weight_decay, bool nesterov, bool first_step) {
  if (momentum != 0 && !buf) return ct_errorf("sgd_multi: momentum %g needs momentum buffers", momentum);
  if (nesterov && (momentum <= 0 || dampening != 0))
    return ct_errorf("sgd_multi: nesterov needs momentum > 0 and dampening 0");
  int nl = momentum != 0 ? 3 : 2;
  ct_tensor **lists = malloc(sizeof *lists * (size_t)(nl * (n > 0 ? n : 1)));
  if (!lists) return ct_errorf("sgd_multi: out of memory");
  for (int i = 0; i < n; i++) {
    lists[i] = p[i];
    if (nl == 3) lists[n + i] = buf[i];
    lists[(nl - 1) * n + i] = g[i];
  }
  ct_attrs at = {0};
  at.f[0] = lr, at.f[1] = momentum, at.f[2] = dampening, at.f[3] = weight_decay;
  at.i[2] = first_step, at.i[3] = nesterov;
  int rc = run_multi(CT_OP_sgd_multi, "sgd_multi", lists, nl, n, &at);
  free(lists);
  return rc;
}

int ct_adam_multi_(ct_tensor *const *p, ct_tensor *const *m, ct_tensor *const *v, ct_tensor *const *g, int n, double lr,
                   double beta1, double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  if (step < 1) return ct_errorf("adam_multi: step must be >= 1, got %lld", (long long)step);
  ct_tensor **lists = malloc(sizeof *lists * (size_t)(4 * (n > 0 ? n : 1)));
  if (!lists) return ct_errorf("adam_multi: out of memory");
  for (int i = 0; i < n; i++) lists[i] = p[i], lists[n + i] = m[i], lists[2 * n + i] = v[i], lists[3 * n + i] = g[i];
  ct_attrs at = {0};
  at.f[0] = lr, at.f[1] = beta1, at.f[2] = beta2, at.f[3] = eps;
  at.i[2] = step, at.i[3] = decoupled;
  memcpy(&at.i[4], &weight_decay, sizeof weight_decay);
  int rc = run_multi(CT_OP_adam_multi, "adam_multi", lists, 4, n, &at);
  free(lists);
  return rc;
}
