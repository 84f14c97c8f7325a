/* systolic.h: a cycle-level simulator of an R x C systolic array of multiply-accumulate cells (the
 * TPU's MXU) running C = A B by folding the product over the grid, for lesson 18.
 *
 * Dataflows (which operand stays in the cells while the other streams through, skewed in time):
 *   WEIGHT  B's tile (K rows on the grid's rows, N columns on its columns) is shifted in from the
 *           top (R cycles), then A's rows stream in from the left, one grid row one cycle later
 *           than the row above; partial sums flow down and leave the bottom row into accumulators.
 *           Folds ceil(K/R) x ceil(N/C), T = M rows streamed per fold.
 *   INPUT   the same machine with A held: A's tile (K on rows, M on columns) is loaded, B's
 *           columns stream; folds ceil(K/R) x ceil(M/C), T = N.
 *   OUTPUT  each cell owns one output C[i][j]: A's rows stream from the left and B's columns from
 *           the top, both skewed; after the last product the results shift out of the bottom row
 *           (R cycles). Folds ceil(M/R) x ceil(N/C), T = K.
 * A fold of a full tile takes exactly 2R + C + T - 2 cycles in every dataflow (R to load or drain,
 * R + C + T - 2 for the skewed wavefront); a tile with only c < C valid columns (r < R valid rows
 * for OUTPUT) ends when its last useful value leaves: 2R + c + T - 2 (R + r + c + T - 2 + R).
 * Folds do not overlap (no double buffering).
 *
 * Invariants: the state advanced each cycle is the cells' registers (stationary value, the input
 * passing right, the partial sum passing down or the accumulator); the product is what leaves the
 * array, never a formula; arithmetic is double, so integer products are exact. */
#ifndef CHALK_SIM_SYSTOLIC_H
#define CHALK_SIM_SYSTOLIC_H

#include <stdint.h>

typedef enum { CT_SYSTOLIC_WEIGHT = 0, CT_SYSTOLIC_INPUT = 1, CT_SYSTOLIC_OUTPUT = 2 } ct_systolic_flow;

/* What a cell did in a cycle (frames). */
typedef enum {
  CT_CELL_IDLE = 0, /* nothing valid passes */
  CT_CELL_LOAD = 1, /* a stationary value shifts through it (or a result drains through it) */
  CT_CELL_PASS = 2, /* a value passes through without a multiply (padding of an edge tile) */
  CT_CELL_MAC = 3   /* multiplied and accumulated: busy */
} ct_cell_state;

typedef struct {
  double value;  /* the partial sum it produced, the accumulator, or the value shifting through */
  double held;   /* the stationary value (weight or input); the accumulator for OUTPUT */
  unsigned char state;
} ct_systolic_cell;

typedef struct {
  int64_t cycles;        /* all folds */
  int64_t folds;
  int64_t T;             /* values streamed per fold */
  int64_t macs;          /* busy cell-cycles (one multiply-accumulate each) */
  int64_t load_cycles;   /* loading stationary values (WEIGHT, INPUT) */
  int64_t drain_cycles;  /* shifting results out (OUTPUT) */
  int64_t first_fold_cycles, last_fold_cycles;
  int64_t full_folds;    /* folds whose tile fills the grid */
  /* on-chip buffer traffic, in elements */
  int64_t reads_a, reads_b;            /* operand buffers read into the array */
  int64_t acc_reads, acc_writes;       /* accumulator read-modify-writes of partial sums */
  int64_t out_writes;                  /* finished results written */
} ct_systolic_stats;

/* Called after every cycle of the folds with index < frame_folds: cells[i*C + j] (borrowed). */
typedef void (*ct_systolic_frame_fn)(void *ud, int64_t fold, int64_t cycle, const ct_systolic_cell *cells);

/* out[M*N] = A[M*K] B[K*N] (row-major doubles) on an R x C grid. Returns 0, or -1 with the error
   set (bad sizes, out of memory). fn may be NULL. */
int ct_systolic_matmul(int R, int C, ct_systolic_flow flow, const double *A, const double *B, double *out, int64_t M,
                       int64_t K, int64_t N, ct_systolic_stats *st, ct_systolic_frame_fn fn, void *ud,
                       int64_t frame_folds);
const char *ct_systolic_flow_name(ct_systolic_flow f);
int ct_systolic_flow_parse(const char *s, ct_systolic_flow *out);

#endif
