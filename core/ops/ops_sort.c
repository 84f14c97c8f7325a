/* ops_sort.c: ordering ops along one dim: argsort (the 1-based permutation that sorts; sort and
 * topk gather values with it, so their gradient is gather's) and cumsum (with its reverse, which
 * is its gradient).
 *
 * Invariants: both rows work on one dim (attrs.i[0], 0-based); argsort is stable (equal values
 * keep their order, ascending or descending as attrs.i[1] says) and puts NaN last ascending and
 * first descending, as torch.sort does; its output is i64 with 1-based positions like argmax.
 * cumsum keeps float dtypes and sums integers and bools into i64 (as torch); attrs.i[1] = 1 sums
 * from the end, so d(cumsum)/dx = reverse cumsum of g, itself a cumsum row (double backward).
 * CPU only: a CUDA tensor gets dispatch's "no kernel for device" error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/helpers.h"
#include "cpu/iter.h"
#include "ops/optable.h"

/* outer x n x inner: the dim's size n between the products of the dims before and after it. */
static void split_at(const ct_tensor *t, int dim, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = 1, *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *n = t->ndim ? t->shape[dim] : 1;
}

/* Hands each row of t along dim to fn: x is t's contiguous data, the row's k-th element is at
   base + k * inner, k < n. 0, or -1 with the error set when the contiguous copy fails. */
typedef void row_fn(void *ctx, const char *x, int64_t base, int64_t n, int64_t inner);
static int for_each_row(ct_tensor *t, int dim, row_fn *fn, void *ctx) {
  ct_tensor *tmp;
  const char *x = ct_cpu_contig_data(t, &tmp);
  if (!x) return -1;
  int64_t outer, n, inner;
  split_at(t, dim, &outer, &n, &inner);
  for (int64_t p = 0; p < outer; p++)
    for (int64_t q = 0; q < inner; q++) fn(ctx, x, p * n * inner + q, n, inner);
  ct_release(tmp);
  return 0;
}

static int dim_shape(const char *op, ct_tensor *const *in, const ct_attrs *a, ct_meta *m, ct_dtype dt) {
  const ct_tensor *t = in[0];
  int nd = t->ndim ? t->ndim : 1;
  if (a->i[0] < 0 || a->i[0] >= nd) return ct_errorf("%s: dim %lld is out of range for %d dims", op, (long long)a->i[0] + 1, t->ndim);
  return ct_meta_shape(m, t->shape, t->ndim, dt);
}

static void dim_cost(ct_tensor *const *in, int nin, const ct_tensor *out, const ct_attrs *a, double *flops, double *bytes) {
  (void)nin;
  int64_t outer, n, inner;
  split_at(in[0], (int)a->i[0], &outer, &n, &inner);
  double logn = n > 1 ? log2((double)n) : 1;
  *flops = a->f[0] > 0 ? (double)ct_numel(in[0]) * logn : (double)ct_numel(in[0]); /* f[0]: comparison sort */
  *bytes = (double)(ct_numel(in[0]) * (int64_t)ct_dtype_size(in[0]->dtype) + ct_numel(out) * (int64_t)ct_dtype_size(out->dtype));
}

/* ---- argsort(x, dim, descending): i64 1-based positions ------------------------------------ */

typedef struct {
  double v;
  int64_t i;
} keyed;

/* NaN above every number; ties broken by position (stable). */
static int cmp_asc(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  bool na = isnan(a->v), nb = isnan(b->v);
  if (na != nb) return na ? 1 : -1;
  if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}
static int cmp_desc(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  bool na = isnan(a->v), nb = isnan(b->v);
  if (na != nb) return na ? -1 : 1;
  if (!na && a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

static int argsort_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  return dim_shape("argsort", in, a, m, CT_I64);
}

typedef struct {
  keyed *row;
  ct_dtype dt;
  bool descending;
  int64_t *o;
} argsort_ctx;

static void argsort_row(void *ctx, const char *x, int64_t base, int64_t n, int64_t inner) {
  argsort_ctx *c = ctx;
  size_t sz = ct_dtype_size(c->dt);
  for (int64_t k = 0; k < n; k++) c->row[k] = (keyed){ct_load_as_double(c->dt, x + (size_t)(base + k * inner) * sz), k};
  qsort(c->row, (size_t)n, sizeof *c->row, c->descending ? cmp_desc : cmp_asc);
  for (int64_t k = 0; k < n; k++) c->o[base + k * inner] = c->row[k].i + 1;
}

static int argsort_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  int64_t outer, n, inner;
  split_at(in[0], (int)a->i[0], &outer, &n, &inner);
  argsort_ctx c = {malloc(sizeof(keyed) * (size_t)(n ? n : 1)), in[0]->dtype, a->i[1] != 0, ct_data_ptr(out)};
  if (!c.row) return ct_errorf("argsort: out of memory for a row of %lld", (long long)n);
  int rc = for_each_row(in[0], (int)a->i[0], argsort_row, &c);
  free(c.row);
  return rc;
}

const ct_opdef ct_op_argsort = {"argsort", 1, CT_OPF_NONDIFF, argsort_shape, argsort_cpu, NULL, dim_cost, NULL, NULL};

/* ---- cumsum(x, dim, reverse) ------------------------------------------------------------- */

static int cumsum_shape(ct_tensor *const *in, int nin, const ct_attrs *a, ct_meta *m) {
  (void)nin;
  ct_dtype dt = in[0]->dtype;
  return dim_shape("cumsum", in, a, m, ct_dtype_is_float(dt) ? dt : CT_I64);
}

typedef struct {
  ct_dtype idt, odt;
  bool reverse;
  char *o;
} cumsum_ctx;

static void cumsum_row(void *ctx, const char *x, int64_t base, int64_t n, int64_t inner) {
  cumsum_ctx *c = ctx;
  size_t isz = ct_dtype_size(c->idt), osz = ct_dtype_size(c->odt);
  double acc = 0;
  int64_t iacc = 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t k = c->reverse ? n - 1 - j : j, at = base + k * inner;
    if (c->odt == CT_I64) {
      iacc += ct_load_index(c->idt == CT_BOOL ? CT_I8 : c->idt, x + (size_t)at * isz);
      ((int64_t *)c->o)[at] = iacc;
    } else {
      acc += ct_load_as_double(c->idt, x + (size_t)at * isz);
      ct_store_from_double(c->odt, c->o + (size_t)at * osz, acc);
    }
  }
}

static int cumsum_cpu(ct_tensor *out, ct_tensor *const *in, int nin, const ct_attrs *a) {
  (void)nin;
  cumsum_ctx c = {in[0]->dtype, out->dtype, a->i[1] != 0, ct_data_ptr(out)};
  return for_each_row(in[0], (int)a->i[0], cumsum_row, &c);
}

static int cumsum_backward(ct_node *n, ct_tensor *g, ct_tensor **gin) {
  return (gin[0] = ct_cumsum(g, (int)n->attrs.i[0], n->attrs.i[1] == 0)) ? 0 : -1;
}

const ct_opdef ct_op_cumsum = {"cumsum", 1, 0, cumsum_shape, cumsum_cpu, cumsum_backward, dim_cost,
                               "dx = reverse cumsum of g along dim", NULL};

/* ---- public functions ------------------------------------------------------------------------ */

static int check_dim(const char *op, const ct_tensor *x, int dim) {
  int nd = x->ndim ? x->ndim : 1;
  if (dim < 0 || dim >= nd) return ct_errorf("%s: dim %d is out of range for a tensor of %d dims (1-based: 1..%d)", op, dim + 1, x->ndim, nd);
  return 0;
}

ct_tensor *ct_argsort(ct_tensor *x, int dim, bool descending) {
  if (check_dim("argsort", x, dim)) return NULL;
  ct_attrs at = {0};
  at.i[0] = dim, at.i[1] = descending, at.f[0] = 1;
  return ct_op_run(CT_OP_argsort, &x, 1, &at);
}

ct_tensor *ct_cumsum(ct_tensor *x, int dim, bool reverse) {
  if (check_dim("cumsum", x, dim)) return NULL;
  ct_attrs at = {0};
  at.i[0] = dim, at.i[1] = reverse;
  return ct_op_run(CT_OP_cumsum, &x, 1, &at);
}
