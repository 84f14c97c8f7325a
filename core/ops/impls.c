/* impls.c: the implementations column of the op table: named forwards of a row (matmul's rungs),
 * chosen per call by attrs.impl and run through ct_op_run. The CPU column is listed here; kernels/
 * adds the CUDA one at start-up (ct_cu_register_ladder). */
#include <stdio.h>
#include <string.h>

#include "cpu/matmul_ladder.h"
#include "ops/optable.h"

static ct_opimpl impls[CT_OP_COUNT][CT_MAX_IMPLS];
static int nimpls[CT_OP_COUNT];
static void add_cpu_impls(void);

int ct_op_add_impl(ct_op op, const char *name, ct_devtype dev, ct_forward_fn fn, const char *note) {
  add_cpu_impls(); /* the CPU column first, whoever registers first */
  if (op < 0 || op >= CT_OP_COUNT) return ct_errorf("op_add_impl: no op #%d", (int)op);
  if (nimpls[op] >= CT_MAX_IMPLS)
    return ct_errorf("%s: more than %d implementations", ct_optable[op]->name, CT_MAX_IMPLS);
  for (int k = 0; k < nimpls[op]; k++)
    if (!strcmp(impls[op][k].name, name) && impls[op][k].dev == dev) return 0; /* registered again: kept */
  ct_opimpl *im = &impls[op][nimpls[op]++];
  *im = (ct_opimpl){.name = name, .dev = dev, .fn = fn, .note = note};
  snprintf(im->event, sizeof im->event, "%s[%s]", ct_optable[op]->name, name);
  return 0;
}

/* The CPU column (core/cpu/matmul_ladder.c): added on first use. */
static void add_cpu_impls(void) {
  static bool done;
  if (done) return;
  done = true;
  ct_op_add_impl(CT_OP_matmul, "blas", CT_CPU, NULL, "OpenBLAS gemm, batched and strided (the default)");
  ct_op_add_impl(CT_OP_matmul, "naive", CT_CPU, ct_cpu_matmul_naive, "i-j-k: the inner loop walks down a column of B");
  ct_op_add_impl(CT_OP_matmul, "reordered", CT_CPU, ct_cpu_matmul_reordered, "i-k-j: rows of B and C, every cache line used");
  ct_op_add_impl(CT_OP_matmul, "tiled", CT_CPU, ct_cpu_matmul_tiled, "i-k-j over bm x bn x bk tiles kept in cache (64; autotuned)");
  /* attention's other implementation, "naive", is a graph of ordinary ops (ct_attention) */
  ct_op_add_impl(CT_OP_attention_flash, "flash", CT_CPU, NULL, "blocks of K, V with an online softmax (no N x N scores)");
}

int ct_op_impl_count(ct_op op) {
  add_cpu_impls();
  return op >= 0 && op < CT_OP_COUNT ? nimpls[op] : 0;
}

const ct_opimpl *ct_op_impl(ct_op op, int k) {
  add_cpu_impls();
  return op >= 0 && op < CT_OP_COUNT && k >= 1 && k <= nimpls[op] ? &impls[op][k - 1] : NULL;
}

int ct_op_impl_find(ct_op op, const char *name, ct_devtype dev) {
  add_cpu_impls();
  for (int k = 0; k < nimpls[op]; k++)
    if (impls[op][k].dev == dev && !strcmp(impls[op][k].name, name)) return k + 1;
  char list[600] = "";
  size_t n = 0;
  for (int k = 0; k < nimpls[op] && n < sizeof list; k++)
    n += (size_t)snprintf(list + n, sizeof list - n, "%s%s (%s)", k ? ", " : "", impls[op][k].name,
                          impls[op][k].dev == CT_CPU ? "cpu" : "cuda");
  return ct_errorf("%s: unknown impl '%s' for %s tensors; the row's implementations: %s", ct_optable[op]->name, name,
                   dev == CT_CPU ? "cpu" : "cuda", n ? list : "none");
}

ct_forward_fn ct_op_forward(ct_op op, ct_devtype dev, const ct_attrs *a) {
  const ct_opimpl *im = a && a->impl ? ct_op_impl(op, a->impl) : NULL;
  if (a && a->impl && !im) return ct_errorf("implementation #%d is not registered", a->impl), NULL;
  if (im && im->dev != dev)
    return ct_errorf("impl '%s' runs on %s tensors, these are on %s", im->name, im->dev == CT_CPU ? "cpu" : "cuda",
                     dev == CT_CPU ? "cpu" : "cuda"),
           NULL;
  if (im && im->fn) return im->fn;
  return dev == CT_CPU ? ct_optable[op]->cpu : ct_cuda_forward[op];
}

const char *ct_op_event_name(ct_op op, const ct_attrs *a) {
  const ct_opimpl *im = a && a->impl ? ct_op_impl(op, a->impl) : NULL;
  return im ? im->event : ct_optable[op]->name;
}

bool ct_op_impl_info(const char *name, int k, const char **impl, const char **device, const char **note) {
  for (int op = 0; name && op < CT_OP_COUNT; op++) {
    if (strcmp(ct_optable[op]->name, name)) continue;
    const ct_opimpl *im = ct_op_impl((ct_op)op, k);
    if (!im) return false;
    *impl = im->name, *device = im->dev == CT_CPU ? "cpu" : "cuda", *note = im->note ? im->note : "";
    return true;
  }
  return false;
}
