/* test_torch_ref.c: chalk against PyTorch. Reads the cases tests/ref/gen_torch_refs.py wrote
 * (path in $CHALK_TORCH_REFS, set by tests/tests.mk), runs each through the matching ct_* call and
 * compares the output and the input gradients of sum(out * w) with torch's: f64 to 1e-10, f32 to
 * 1e-5 (relative, with an absolute floor of the same size times the tensor's largest magnitude).
 * Odd-numbered cases pass their float inputs of 2+ dims as transposed (non-contiguous) views.
 * One test per op, so that an op missing from the file fails as loudly as a wrong value; and a
 * self-test proves that a perturbed expected value is caught. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_IN 8

typedef struct {
  char name[32];
  ct_dtype dt;
  bool grad;
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int64_t n;
  double *v;
} ref_tensor;

typedef struct {
  int id;
  char op[32];
  ct_dtype dt;
  char attrs[512];
  int nin;
  ref_tensor in[MAX_IN];
  bool has_w;
  ref_tensor w, out;
  int ngrad;
  int grad_of[MAX_IN];
  ref_tensor grad[MAX_IN];
} ref_case;

typedef struct {
  ref_case *c;
  int n;
} ref_file;

/* ---- parsing ------------------------------------------------------------------------------------ */

static int parse_dtype(const char *s, ct_dtype *d) { return ct_dtype_from_name(s, d); }

/* "<ndim> <dims...> : <values...>" starting at p. */
static int parse_tensor_body(char *p, ref_tensor *t) {
  char *end;
  t->ndim = (int)strtol(p, &end, 10);
  if (end == p || t->ndim < 0 || t->ndim > CT_MAX_DIMS) return -1;
  p = end;
  t->n = 1;
  for (int d = 0; d < t->ndim; d++) {
    t->shape[d] = strtoll(p, &end, 10);
    if (end == p) return -1;
    t->n *= t->shape[d];
    p = end;
  }
  p = strchr(p, ':');
  if (!p) return -1;
  p++;
  t->v = malloc(sizeof(double) * (size_t)(t->n ? t->n : 1));
  for (int64_t i = 0; i < t->n; i++) {
    t->v[i] = strtod(p, &end);
    if (end == p) return -1;
    p = end;
  }
  return 0;
}

static void free_tensor(ref_tensor *t) {
  free(t->v);
  t->v = NULL;
}

static void free_file(ref_file *f) {
  for (int k = 0; k < f->n; k++) {
    ref_case *c = &f->c[k];
    for (int i = 0; i < c->nin; i++) free_tensor(&c->in[i]);
    for (int i = 0; i < c->ngrad; i++) free_tensor(&c->grad[i]);
    free_tensor(&c->w);
    free_tensor(&c->out);
  }
  free(f->c);
  f->c = NULL;
  f->n = 0;
}

static const char *refs_path(void) {
  const char *p = getenv("CHALK_TORCH_REFS");
  return p && *p ? p : "build/tests/refs.txt";
}

/* Loads every case; on a malformed line fails the calling test with its line number. */
static void load_refs(ref_file *f) {
  const char *path = refs_path();
  FILE *fp = fopen(path, "rb");
  cr_assert(fp, "cannot open the PyTorch reference cases %s (make check-c generates them with "
                "/usr/bin/python3 tests/ref/gen_torch_refs.py)", path);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)size + 1);
  cr_assert(buf && fread(buf, 1, (size_t)size, fp) == (size_t)size);
  buf[size] = 0;
  fclose(fp);
  int cap = 256, lineno = 0;
  f->c = calloc((size_t)cap, sizeof *f->c);
  f->n = 0;
  ref_case *c = NULL;
  char *save = NULL;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    int bad = 0;
    char w1[32] = "", w2[32] = "", w3[32] = "";
    int used = 0;
    if (line[0] == '#') continue;
    if (!strncmp(line, "case ", 5)) {
      if (f->n == cap) {
        f->c = realloc(f->c, sizeof *f->c * (size_t)(cap *= 2));
        memset(f->c + f->n, 0, sizeof *f->c * (size_t)(cap - f->n));
      }
      c = &f->c[f->n++];
      bad = sscanf(line, "case %d %31s %31s", &c->id, c->op, w1) != 3 || parse_dtype(w1, &c->dt);
    } else if (!c) {
      bad = 1;
    } else if (!strncmp(line, "attrs", 5)) {
      snprintf(c->attrs, sizeof c->attrs, " %s ", line + 5);
    } else if (!strncmp(line, "in ", 3)) {
      ref_tensor *t = &c->in[c->nin++];
      int g = 0;
      bad = c->nin > MAX_IN || sscanf(line, "in %31s %31s %d %n", t->name, w2, &g, &used) != 3 ||
            parse_dtype(w2, &t->dt) || parse_tensor_body(line + used, t);
      t->grad = g;
    } else if (!strncmp(line, "w ", 2)) {
      c->has_w = true;
      bad = parse_tensor_body(line + 2, &c->w);
    } else if (!strncmp(line, "out ", 4)) {
      bad = sscanf(line, "out %31s %n", w3, &used) != 1 || parse_dtype(w3, &c->out.dt) ||
            parse_tensor_body(line + used, &c->out);
    } else if (!strncmp(line, "grad ", 5)) {
      int k = c->ngrad++;
      bad = k >= MAX_IN || sscanf(line, "grad %d %n", &c->grad_of[k], &used) != 1 ||
            parse_tensor_body(line + used, &c->grad[k]);
    } else if (!strcmp(line, "end")) {
      c = NULL;
    } else {
      bad = 1;
    }
    if (bad) {
      free(buf);
      cr_assert_fail("%s:%d: malformed line: %.120s", path, lineno, line);
    }
  }
  free(buf);
  cr_assert(f->n > 0, "%s holds no cases", path);
}

/* ---- attributes ------------------------------------------------------------------------------ */

static const char *attr(const ref_case *c, const char *key) {
  char pat[48];
  snprintf(pat, sizeof pat, " %s=", key);
  const char *p = strstr(c->attrs, pat);
  return p ? p + strlen(pat) : NULL;
}
static int attr_int(const ref_case *c, const char *key, int dflt) {
  const char *p = attr(c, key);
  return p ? atoi(p) : dflt;
}
static double attr_double(const ref_case *c, const char *key, double dflt) {
  const char *p = attr(c, key);
  return p ? strtod(p, NULL) : dflt;
}
/* "all" -> 0 dims (every dim); "0,-1" -> {0,-1} */
static int attr_dims(const ref_case *c, const char *key, int *dims) {
  const char *p = attr(c, key);
  if (!p || !strncmp(p, "all", 3)) return 0;
  int n = 0;
  while (n < CT_MAX_DIMS) {
    char *end;
    dims[n++] = (int)strtol(p, &end, 10);
    if (*end != ',') break;
    p = end + 1;
  }
  return n;
}

/* ---- running one case ------------------------------------------------------------------------------- */

static ct_tensor *run_op(const ref_case *c, ct_tensor **in) {
  const char *op = c->op;
  int dims[CT_MAX_DIMS];
  struct {
    const char *name;
    ct_tensor *(*fn)(ct_tensor *);
  } unary[] = {{"neg", ct_neg},   {"exp", ct_exp},   {"log", ct_log},         {"sqrt", ct_sqrt},
               {"abs", ct_abs},   {"sin", ct_sin},   {"cos", ct_cos},         {"tanh", ct_tanh},
               {"sigmoid", ct_sigmoid}, {"relu", ct_relu}, {"gelu", ct_gelu},
               {"silu", ct_silu}};
  struct {
    const char *name;
    ct_tensor *(*fn)(ct_tensor *, ct_tensor *);
  } binary[] = {{"add", ct_add}, {"sub", ct_sub}, {"mul", ct_mul}, {"div", ct_div}, {"pow", ct_pow},
                {"eq", ct_eq},   {"lt", ct_lt},   {"le", ct_le},   {"gt", ct_gt},   {"ge", ct_ge},
                {"matmul", ct_matmul}, {"mse_loss", ct_mse_loss}, {"cross_entropy", ct_cross_entropy},
                {"nll_loss", ct_nll_loss}, {"embedding", ct_embedding}};
  for (size_t k = 0; k < sizeof unary / sizeof *unary; k++)
    if (!strcmp(op, unary[k].name)) return unary[k].fn(in[0]);
  for (size_t k = 0; k < sizeof binary / sizeof *binary; k++)
    if (!strcmp(op, binary[k].name)) return binary[k].fn(in[0], in[1]);
  if (!strcmp(op, "clamp")) return ct_clamp(in[0], attr_double(c, "lo", -INFINITY), attr_double(c, "hi", INFINITY));
  if (!strcmp(op, "where")) return ct_where(in[0], in[1], in[2]);
  bool keep = attr_int(c, "keepdim", 0);
  if (!strcmp(op, "sum")) return ct_sum(in[0], dims, attr_dims(c, "dims", dims), keep);
  if (!strcmp(op, "mean")) return ct_mean(in[0], dims, attr_dims(c, "dims", dims), keep);
  if (!strcmp(op, "max")) return ct_max(in[0], dims, attr_dims(c, "dims", dims), keep);
  if (!strcmp(op, "min")) return ct_min(in[0], dims, attr_dims(c, "dims", dims), keep);
  if (!strcmp(op, "var")) return ct_var(in[0], dims, attr_dims(c, "dims", dims), keep, attr_int(c, "unbiased", 1));
  if (!strcmp(op, "argmax")) {
    const char *d = attr(c, "dim");
    return ct_argmax(in[0], d && !strncmp(d, "all", 3) ? CT_ALL_DIMS : attr_int(c, "dim", 0), keep);
  }
  if (!strcmp(op, "softmax")) return ct_softmax(in[0], attr_int(c, "dim", -1));
  if (!strcmp(op, "log_softmax")) return ct_log_softmax(in[0], attr_int(c, "dim", -1));
  if (!strcmp(op, "layer_norm")) {
    bool w = attr_int(c, "weight", 0), b = attr_int(c, "bias", 0);
    return ct_layer_norm(in[0], attr_int(c, "nd", 1), w ? in[1] : NULL, b ? in[w ? 2 : 1] : NULL,
                         attr_double(c, "eps", 1e-5));
  }
  if (!strcmp(op, "index_select")) return ct_index_select(in[0], attr_int(c, "dim", 0), in[1]);
  if (!strcmp(op, "gather")) return ct_gather(in[0], attr_int(c, "dim", 0), in[1]);
  if (!strcmp(op, "cat")) return ct_cat(in, c->nin, attr_int(c, "dim", 0));
  if (!strcmp(op, "stack")) return ct_stack(in, c->nin, attr_int(c, "dim", 0));
  if (!strcmp(op, "conv2d"))
    return ct_conv2d(in[0], in[1], attr_int(c, "bias", 0) ? in[2] : NULL, attr_int(c, "stride", 1),
                     attr_int(c, "padding", 0));
  if (!strcmp(op, "max_pool2d")) return ct_max_pool2d(in[0], attr_int(c, "kernel", 2), attr_int(c, "stride", 2));
  if (!strcmp(op, "to_f16")) return ct_to_dtype(in[0], CT_F16);
  if (!strcmp(op, "to_bf16")) return ct_to_dtype(in[0], CT_BF16);
  ct_errorf("test_torch_ref: no chalk call is mapped to the op '%s'", op);
  return NULL;
}

/* A tensor holding t's values, as a transposed view of a contiguous base when asked to. */
static ct_tensor *make_input(const ref_tensor *t, bool strided) {
  ct_tensor *x = ct_from_doubles(t->v, t->shape, t->ndim, t->dt, ct_cpu());
  if (!x || !strided || t->ndim < 2 || !ct_dtype_is_float(t->dt)) return x;
  ct_tensor *tr = ct_transpose(x, 0, -1), *base = tr ? ct_contiguous(tr) : NULL;
  ct_tensor *v = base ? ct_transpose(base, 0, -1) : NULL;
  ct_release(x), ct_release(tr), ct_release(base);
  return v;
}

static double tol_for(ct_dtype dt) { return dt == CT_F64 ? 1e-10 : 1e-5; }

/* Compares got with the reference; on a mismatch writes the message and returns -1. */
static int compare(const ref_case *c, const char *what, const ct_tensor *got, const ref_tensor *want, double rtol,
                   char *msg, size_t n) {
  char sh[160];
  if (!got) return snprintf(msg, n, "%s is missing", what), -1;
  if (got->ndim != want->ndim || memcmp(got->shape, want->shape, sizeof(int64_t) * (size_t)want->ndim))
    return snprintf(msg, n, "%s is %s, torch's has shape %s", what, tu_desc(got),
                    ct_shape_str(want->shape, want->ndim, sh, sizeof sh)),
           -1;
  double scale = 0;
  for (int64_t i = 0; i < want->n; i++)
    if (isfinite(want->v[i]) && fabs(want->v[i]) > scale) scale = fabs(want->v[i]);
  bool exact = !ct_dtype_is_float(want->dt) || !strncmp(c->op, "to_", 3);
  return tu_compare(what, got, want->v, want->n, exact ? 0 : rtol, exact ? 0 : rtol * (scale > 1 ? scale : 1), msg,
                    n);
}

/* Runs case c; 0 if chalk agrees with torch, else -1 with msg. perturb: for the self-test. */
static int run_case(const ref_case *c, char *msg, size_t n) {
  ct_tensor *in[MAX_IN] = {0}, *out = NULL, *w = NULL;
  bool strided = c->id % 2 == 1;
  int rc = -1;
  char m2[2048], ins[400] = "";
  size_t k = 0;
  for (int i = 0; i < c->nin && k < sizeof ins; i++) {
    char sh[96];
    k += (size_t)snprintf(ins + k, sizeof ins - k, "%s%s %s%s", i ? ", " : "", c->in[i].name, ct_dtype_name(c->in[i].dt),
                          ct_shape_str(c->in[i].shape, c->in[i].ndim, sh, sizeof sh));
  }
  for (int i = 0; i < c->nin; i++) {
    if (!(in[i] = make_input(&c->in[i], strided)) || (c->in[i].grad && ct_requires_grad_(in[i], true))) {
      snprintf(m2, sizeof m2, "cannot make input %s: %s", c->in[i].name, ct_last_error());
      goto done;
    }
  }
  if (!(out = run_op(c, in))) {
    snprintf(m2, sizeof m2, "chalk failed where torch did not: %s", ct_last_error());
    goto done;
  }
  if (out->dtype != c->out.dt) {
    snprintf(m2, sizeof m2, "output dtype %s, torch gives %s", tu_desc(out), ct_dtype_name(c->out.dt));
    goto done;
  }
  if (compare(c, "output", out, &c->out, tol_for(c->dt), m2, sizeof m2)) goto done;
  if (c->has_w) {
    if (!(w = ct_from_doubles(c->w.v, c->w.shape, c->w.ndim, out->dtype, ct_cpu())) ||
        ct_backward(out, w, false, false)) {
      snprintf(m2, sizeof m2, "backward failed: %s", ct_last_error());
      goto done;
    }
    for (int g = 0; g < c->ngrad; g++) {
      int i = c->grad_of[g];
      char what[64];
      snprintf(what, sizeof what, "gradient of %s", c->in[i].name);
      ct_tensor *gt = in[i]->grad ? ct_retain(in[i]->grad) : ct_zeros_like(in[i]);
      int bad = compare(c, what, gt, &c->grad[g], tol_for(c->dt), m2, sizeof m2);
      ct_release(gt);
      if (bad) goto done;
    }
  }
  rc = 0;
done:
  if (rc) snprintf(msg, n, "torch_ref case %d: %s %s (%s%s): %s", c->id, c->op, ct_dtype_name(c->dt), ins,
                   strided ? ", passed transposed" : "", m2);
  for (int i = 0; i < c->nin; i++) ct_release(in[i]);
  ct_release(out), ct_release(w);
  return rc;
}

/* Runs every case of op; fails the test (logging each mismatch) if any disagrees or there is none. */
static void check_op(const char *op) {
  ref_file f;
  load_refs(&f);
  int ncases = 0, nfail = 0;
  char first[2600] = "";
  for (int k = 0; k < f.n; k++) {
    if (strcmp(f.c[k].op, op)) continue;
    ncases++;
    char msg[2600];
    if (run_case(&f.c[k], msg, sizeof msg)) {
      if (!nfail) snprintf(first, sizeof first, "%s", msg);
      cr_log_error("%s", msg);
      nfail++;
    }
  }
  free_file(&f);
  cr_assert(ncases > 0, "the PyTorch reference file %s has no case for %s", refs_path(), op);
  cr_assert(nfail == 0, "%d of %d %s cases disagree with torch; first: %s", nfail, ncases, op, first);
}

#define TORCH_REF(op)                                                                              \
  Test(torch_ref, op) { check_op(#op); }

TORCH_REF(add)
TORCH_REF(sub)
TORCH_REF(mul)
TORCH_REF(div)
TORCH_REF(pow)
TORCH_REF(neg)
TORCH_REF(exp)
TORCH_REF(log)
TORCH_REF(sqrt)
TORCH_REF(abs)
TORCH_REF(sin)
TORCH_REF(cos)
TORCH_REF(tanh)
TORCH_REF(sigmoid)
TORCH_REF(relu)
TORCH_REF(gelu)
TORCH_REF(silu)
TORCH_REF(clamp)
TORCH_REF(where)
TORCH_REF(eq)
TORCH_REF(lt)
TORCH_REF(le)
TORCH_REF(gt)
TORCH_REF(ge)
TORCH_REF(sum)
TORCH_REF(mean)
TORCH_REF(max)
TORCH_REF(min)
TORCH_REF(argmax)
TORCH_REF(var)
TORCH_REF(matmul)
TORCH_REF(softmax)
TORCH_REF(log_softmax)
TORCH_REF(cross_entropy)
TORCH_REF(nll_loss)
TORCH_REF(mse_loss)
TORCH_REF(layer_norm)
TORCH_REF(embedding)
TORCH_REF(index_select)
TORCH_REF(gather)
TORCH_REF(cat)
TORCH_REF(stack)
TORCH_REF(conv2d)
TORCH_REF(max_pool2d)
TORCH_REF(to_f16)
TORCH_REF(to_bf16)

/* Every case in the file names an op that has a test above. */
Test(torch_ref, every_case_is_mapped) {
  static const char *known[] = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "sin", "cos",
                                "tanh", "sigmoid", "relu", "gelu", "silu", "clamp", "where", "eq", "lt", "le", "gt", "ge",
                                "sum", "mean", "max", "min", "argmax", "var", "matmul", "softmax", "log_softmax",
                                "cross_entropy", "nll_loss", "mse_loss", "layer_norm", "embedding", "index_select",
                                "gather", "cat", "stack", "conv2d", "max_pool2d", "to_f16", "to_bf16"};
  ref_file f;
  load_refs(&f);
  for (int k = 0; k < f.n; k++) {
    bool found = false;
    for (size_t j = 0; j < sizeof known / sizeof *known; j++) found = found || !strcmp(known[j], f.c[k].op);
    cr_assert(found, "case %d names op %s, which no test runs", f.c[k].id, f.c[k].op);
  }
  free_file(&f);
}

/* The comparison can fail: move one expected output value, and one expected gradient value, by
 * more than the tolerance and the case must disagree. */
Test(torch_ref, a_perturbed_reference_is_caught) {
  ref_file f;
  load_refs(&f);
  int tried = 0;
  for (int k = 0; k < f.n && tried < 2; k++) {
    ref_case *c = &f.c[k];
    if (strcmp(c->op, tried ? "conv2d" : "matmul") || c->dt != CT_F64 || !c->ngrad) continue;
    char msg[2600];
    cr_assert_eq(run_case(c, msg, sizeof msg), 0, "unperturbed: %s", msg);
    double *v = tried ? &c->grad[0].v[c->grad[0].n / 2] : &c->out.v[c->out.n - 1];
    double old = *v;
    *v = old + 1e-8 * (fabs(old) + 1);
    cr_assert_neq(run_case(c, msg, sizeof msg), 0, "a perturbation of 1e-8 went unnoticed (case %d)", c->id);
    cr_assert(strstr(msg, tried ? "gradient of" : "output"), "%s", msg);
    *v = old;
    tried++;
  }
  cr_assert_eq(tried, 2, "found an f64 matmul and conv2d case to perturb");
  free_file(&f);
}
