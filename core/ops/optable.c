/* optable.c: the op table, in the order of the CT_OPS list; rows live in the op family files.
 * The references are strong: an op listed in CT_OPS without a row fails the link, and every
 * program linking libchalk.a gets every op (a row reached only through ct_op_run included). */
#include "ops/optable.h"

#define CT_OP_ROW(...) &CT_OP_PASTE(ct_op_, CT_OP_FIRST(__VA_ARGS__)),
const ct_opdef *const ct_optable[CT_OP_COUNT] = {CT_OPS(CT_OP_ROW)};

/* ---- read-only views of the rows (chalk.h): chalk.ops(), pictures, :help ------------------- */
#include <stdio.h>
#include <string.h>

static const ct_opdef *row_named(const char *name) {
  for (int op = 0; name && op < CT_OP_COUNT; op++)
    if (!strcmp(ct_optable[op]->name, name)) return ct_optable[op];
  return NULL;
}

const char *ct_op_grad_formula(const char *name) {
  const ct_opdef *d = row_named(name);
  return d ? d->grad : NULL;
}

const char *ct_op_expr(const char *name) {
  const ct_opdef *d = row_named(name);
  return d ? d->expr : NULL;
}

/* "da = g*b; db = g*a": part i, after its "da = " */
const char *ct_op_grad_formula_input(const char *name, int i, char *buf, size_t n) {
  const char *f = ct_op_grad_formula(name);
  for (; f && i > 0; i--) {
    f = strstr(f, "; ");
    if (f) f += 2;
  }
  if (!f || !n) return NULL;
  size_t len = strcspn(f, ";");
  const char *eq = strstr(f, " = ");
  if (eq && (size_t)(eq - f) < len) len -= (size_t)(eq + 3 - f), f = eq + 3;
  snprintf(buf, n, "%.*s", (int)len, f);
  return buf;
}

size_t ct_op_list(char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%-20s %-6s %-10s %-9s %-24s %s\n", "op", "arity", "devices", "backward", "flags",
                              "gradient");
  for (int op = 0; op < CT_OP_COUNT && k < n; op++) {
    const ct_opdef *d = ct_optable[op];
    char ar[8], fl[64];
    snprintf(ar, sizeof ar, "%d", d->arity);
    snprintf(fl, sizeof fl, "%s%s%s", (d->flags & CT_OPF_VIEW) ? "view " : "",
             (d->flags & CT_OPF_INPLACE_OK) ? "inplace-ok " : "", (d->flags & CT_OPF_ELEMENTWISE) ? "elementwise" : "");
    k += (size_t)snprintf(buf + k, n - k, "%-20s %-6s %-10s %-9s %-24s %s\n", d->name, d->arity < 0 ? "n" : ar,
                          ct_cuda_forward[op] ? "cpu,cuda" : "cpu",
                          (d->flags & CT_OPF_NONDIFF) ? "-" : d->backward ? "yes" : "no", fl, d->grad ? d->grad : "");
    if (d->expr && k < n) k += (size_t)snprintf(buf + k, n - k, "%-20s y = %s\n", "", d->expr);
    for (int i = 1; i <= ct_op_impl_count((ct_op)op) && k < n; i++) {
      const ct_opimpl *im = ct_op_impl((ct_op)op, i);
      k += (size_t)snprintf(buf + k, n - k, "%-20s impl %-12s %-4s %s\n", "", im->name, im->dev == CT_CPU ? "cpu" : "cuda",
                            im->note ? im->note : "");
    }
  }
  return k < n ? k : n;
}
