/* harness.h: the CUDA parity harness's framework: fresh random inputs built identically on the
 * CPU and the GPU (in several layouts), an op run on both, outputs and gradients compared by
 * NMSE against a per-op threshold, and results aggregated per op name.
 * Invariants: every input is drawn fresh from a seeded generator (the seed is printed, and
 * CHALK_PARITY_SEED reproduces a run); a GPU output with NaN where the CPU has none fails (the
 * allocator poisons new blocks with NaN, so an element a kernel forgot to write shows up);
 * a threshold of 0 demands exact equality. */
#ifndef CHALK_GPU_HARNESS_H
#define CHALK_GPU_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "chalk.h"

enum { LAY_CONTIG, LAY_T, LAY_NARROW, LAY_COUNT };
extern const char *const lay_names[LAY_COUNT];

/* One input on both devices: t[0] on the CPU, t[1] on the GPU, each a view (per layout) of a leaf
   base[d]; grads are compared on the bases. */
typedef struct {
  ct_tensor *base[2], *t[2];
  bool grad;
  int layout; /* how t derives from base (LAY_*), or -1 when a case built t itself */
} pair;

/* Parameters an op function may use. */
typedef struct {
  int i[6];
  double f[4];
} prm;

typedef ct_tensor *(*opf)(ct_tensor *const *x, const prm *p);

double urand(void);
int64_t irand(int64_t lo, int64_t hi); /* [lo, hi] */
/* Random values in [lo, hi] (integers rounded for integer dtypes) with the given logical shape and
   layout; grad: the base requires grad (float dtypes only). */
pair mk(const int64_t *shape, int nd, ct_dtype dt, double lo, double hi, int layout, bool grad);
/* 1-based class/index values in [1, D] (and [-D, -1] when neg), contiguous, dtype i64. */
pair mk_index(const int64_t *shape, int nd, int64_t D, bool neg, ct_dtype dt);
/* From explicit values (contiguous). */
pair mk_values(const double *v, const int64_t *shape, int nd, ct_dtype dt, bool grad);
void pair_free(pair *p);

/* Runs f on both devices and compares (values, then gradients of sum(out * w) w.r.t. every input
   with grad). tol: NMSE threshold for values (0: exact); gtol for gradients. label names the case
   in failure messages. Returns true on pass. */
bool run_case(const char *op, const char *label, opf f, const prm *p, pair *in, int nin, double tol, double gtol);
/* Records one result of a check made outside run_case. */
void record(const char *op, const char *label, bool ok, double nmse, const char *why);
/* NMSE of b against a (a is the reference), both read to the host; exact: counts mismatches as
   an infinite NMSE. NaN in both at the same place counts as equal. Sets *why on mismatch. */
double compare(const ct_tensor *ref, const ct_tensor *got, const char **why);

int harness_summary(void); /* prints the per-op table; returns the number of failures */

extern ct_device GPU;
extern const int64_t SIZES[4]; /* 1, 7, 33, 1000 */
/* CHALK_PARITY_QUICK=1: sizes 1, 7, 33 only and no large cases (for runs under compute-sanitizer) */
extern int NSIZES;
extern bool QUICK;

void cases_elementwise(void);
void cases_convert(void);
void cases_reduce(void);
void cases_matmul(void);
void cases_nn(void);
void cases_index(void);
void cases_conv(void);
void cases_backend(void);
void cases_ladder(void);
void cases_attention(void); /* attention_parity.c */
void cases_paged(void);     /* paged_parity.c */
void cases_quant(void);     /* quant_parity.c */
void cases_warpspec(void);  /* warpspec_parity.c: lesson 19 */

#endif
