/* test_systolic.c: the cycle-level systolic array (core/sim/systolic.c): the product equals a
 * plain triple loop for every dataflow on random and awkward shapes (1 x 1, sizes that are not
 * multiples of the grid, grids wider than the matrix), integers exactly; cycle and fold counts
 * equal 2R + C + T - 2 per full fold and ceil(./R) x ceil(./C); utilisation T/(2R+C+T-2); frames
 * report R*C*T busy cells for one fold; bad arguments are errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"
#include "sim/systolic.h"

static const ct_systolic_flow FLOWS[3] = {CT_SYSTOLIC_WEIGHT, CT_SYSTOLIC_INPUT, CT_SYSTOLIC_OUTPUT};

static uint64_t rng = 88172645463325252ull;
static int64_t rnd(int64_t lo, int64_t hi) { /* [lo, hi] */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return lo + (int64_t)(rng % (uint64_t)(hi - lo + 1));
}

/* Runs R x C on random integers A[M,K] B[K,N], compares with the triple loop; returns stats. */
static ct_systolic_stats run(int R, int C, ct_systolic_flow f, int64_t M, int64_t K, int64_t N, bool ints) {
  double *A = malloc(sizeof(double) * M * K), *B = malloc(sizeof(double) * K * N);
  double *P = malloc(sizeof(double) * M * N), *W = calloc((size_t)(M * N), sizeof(double));
  for (int64_t i = 0; i < M * K; i++) A[i] = ints ? (double)rnd(-9, 9) : (double)rnd(-1000, 1000) / 317.0;
  for (int64_t i = 0; i < K * N; i++) B[i] = ints ? (double)rnd(-9, 9) : (double)rnd(-1000, 1000) / 291.0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++) W[i * N + j] += A[i * K + k] * B[k * N + j];
  ct_systolic_stats st;
  cr_assert_eq(ct_systolic_matmul(R, C, f, A, B, P, M, K, N, &st, NULL, NULL, 0), 0, "%s", ct_last_error());
  for (int64_t i = 0; i < M * N; i++) {
    double d = P[i] - W[i];
    if (ints) cr_assert_eq(P[i], W[i], "%s %dx%d, %lldx%lldx%lld: element %lld is %g, want %g",
                           ct_systolic_flow_name(f), R, C, (long long)M, (long long)K, (long long)N, (long long)i, P[i], W[i]);
    else cr_assert(d < 1e-9 && d > -1e-9, "%s: element %lld is %g, want %g", ct_systolic_flow_name(f), (long long)i, P[i], W[i]);
  }
  cr_assert_eq(st.macs, M * K * N, "%s: %lld MACs, want M*K*N = %lld", ct_systolic_flow_name(f), (long long)st.macs,
               (long long)(M * K * N));
  free(A), free(B), free(P), free(W);
  return st;
}

Test(systolic, product_equals_matmul_on_random_and_awkward_shapes) {
  const int64_t shapes[][5] = {{1, 1, 1, 1, 1}, {4, 4, 1, 1, 1}, {1, 1, 3, 5, 2}, {4, 4, 7, 5, 9}, {3, 5, 10, 7, 11},
                               {8, 2, 3, 17, 4}, {2, 8, 16, 16, 16}, {16, 16, 5, 3, 2}};
  for (int f = 0; f < 3; f++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      const int64_t *x = shapes[s];
      run((int)x[0], (int)x[1], FLOWS[f], x[2], x[3], x[4], true);
      run((int)x[0], (int)x[1], FLOWS[f], x[2], x[3], x[4], false);
    }
  for (int t = 0; t < 30; t++) /* random grids and sizes */
    run((int)rnd(1, 9), (int)rnd(1, 9), FLOWS[t % 3], rnd(1, 20), rnd(1, 20), rnd(1, 20), true);
}

Test(systolic, full_folds_take_2R_plus_C_plus_T_minus_2_cycles) {
  /* sizes that are multiples of the grid: every fold full, so the formula is exact */
  const int R = 4, C = 3;
  for (int f = 0; f < 3; f++) {
    int64_t M = 8, K = 8, N = 6; /* WEIGHT: K on rows, N on columns; INPUT: K, M; OUTPUT: M, N */
    if (FLOWS[f] == CT_SYSTOLIC_INPUT) N = 5, M = 6;
    if (FLOWS[f] == CT_SYSTOLIC_OUTPUT) M = 8, N = 6, K = 5;
    ct_systolic_stats st = run(R, C, FLOWS[f], M, K, N, true);
    int64_t rows = FLOWS[f] == CT_SYSTOLIC_OUTPUT ? M : K, cols = FLOWS[f] == CT_SYSTOLIC_INPUT ? M : N;
    int64_t T = FLOWS[f] == CT_SYSTOLIC_WEIGHT ? M : FLOWS[f] == CT_SYSTOLIC_INPUT ? N : K;
    int64_t folds = ((rows + R - 1) / R) * ((cols + C - 1) / C);
    cr_assert_eq(st.T, T);
    cr_assert_eq(st.folds, folds, "%s: %lld folds, want %lld", ct_systolic_flow_name(FLOWS[f]), (long long)st.folds,
                 (long long)folds);
    cr_assert_eq(st.full_folds, folds);
    cr_assert_eq(st.first_fold_cycles, 2 * R + C + T - 2, "%s: %lld cycles per fold, want 2R + C + T - 2 = %lld",
                 ct_systolic_flow_name(FLOWS[f]), (long long)st.first_fold_cycles, (long long)(2 * R + C + T - 2));
    cr_assert_eq(st.cycles, folds * (2 * R + C + T - 2));
    double u = (double)st.macs / ((double)st.cycles * R * C), law = (double)T / (2 * R + C + T - 2);
    cr_assert(u - law < 1e-12 && law - u < 1e-12, "utilisation %g, law %g", u, law);
  }
}

Test(systolic, edge_folds_end_when_their_last_value_leaves) {
  /* weight-stationary, N = 5 on C = 4 columns: a full fold, then one of c = 1 column */
  ct_systolic_stats st = run(4, 4, CT_SYSTOLIC_WEIGHT, 6, 4, 5, true);
  cr_assert_eq(st.folds, 2);
  cr_assert_eq(st.first_fold_cycles, 2 * 4 + 4 + 6 - 2);
  cr_assert_eq(st.last_fold_cycles, 2 * 4 + 1 + 6 - 2);
  /* output-stationary, M = 5 on R = 4 rows: the edge fold has r = 1 row, still R drain cycles */
  st = run(4, 4, CT_SYSTOLIC_OUTPUT, 5, 6, 4, true);
  cr_assert_eq(st.last_fold_cycles, 1 + 4 + 6 - 2 + 4);
  cr_assert_eq(st.out_writes, 5 * 4);
}

typedef struct {
  int64_t frames, busy;
} counts;

static void count_frame(void *ud, int64_t fold, int64_t cycle, const ct_systolic_cell *cells) {
  counts *c = ud;
  (void)cycle;
  cr_assert_eq(fold, 0);
  c->frames++;
  for (int i = 0; i < 16; i++) c->busy += cells[i].state == CT_CELL_MAC;
}

Test(systolic, frames_show_every_cycle_of_the_first_fold) {
  double A[6 * 4], B[4 * 8], P[6 * 8];
  for (int i = 0; i < 24; i++) A[i] = i % 5;
  for (int i = 0; i < 32; i++) B[i] = i % 3;
  ct_systolic_stats st;
  counts c = {0, 0};
  cr_assert_eq(ct_systolic_matmul(4, 4, CT_SYSTOLIC_WEIGHT, A, B, P, 6, 4, 8, &st, count_frame, &c, 1), 0);
  cr_assert_eq(c.frames, 2 * 4 + 4 + 6 - 2);
  cr_assert_eq(c.busy, 4 * 4 * 6);
  cr_assert_eq(st.folds, 2);
}

Test(systolic, bad_arguments_are_errors) {
  double a = 1, b = 1, p;
  ct_systolic_stats st;
  cr_assert_eq(ct_systolic_matmul(0, 4, CT_SYSTOLIC_WEIGHT, &a, &b, &p, 1, 1, 1, &st, NULL, NULL, 0), -1);
  cr_assert(strstr(ct_last_error(), "grid 0 x 4"), "%s", ct_last_error());
  cr_assert_eq(ct_systolic_matmul(2, 2, CT_SYSTOLIC_WEIGHT, &a, &b, &p, 0, 1, 1, &st, NULL, NULL, 0), -1);
  ct_systolic_flow f;
  cr_assert_eq(ct_systolic_flow_parse("diagonal", &f), -1);
  cr_assert(strstr(ct_last_error(), "diagonal"), "%s", ct_last_error());
}
