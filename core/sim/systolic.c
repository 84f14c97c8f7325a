/* systolic.c: the cycle-level R x C systolic array of systolic.h: per-cycle cell registers for the
 * stationary dataflows (weight, input) and the output-stationary one. */
#include "sim/systolic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chalk.h"

/* One cell's registers: a value moving right (the streamed operand), one moving down (partial
   sum, or B's column for OUTPUT), and what stays (weight/input, or the accumulator). */
typedef struct {
  double right, down, held;
  bool right_ok, down_ok;
} cell_reg;

/* A strided 2-D view of a row-major matrix: element (r, c) at p[r*sr + c*sc]. */
typedef struct {
  const double *p;
  int64_t sr, sc;
} mview;

typedef struct {
  int R, C;
  cell_reg *cur, *next;
  ct_systolic_cell *frame;
  ct_systolic_frame_fn fn;
  void *ud;
  int64_t frame_folds, fold, cycle; /* cycle: within the fold */
  ct_systolic_stats *st;
} machine;

static void emit(machine *m) {
  m->st->cycles++;
  if (m->fn && m->fold < m->frame_folds) m->fn(m->ud, m->fold, m->cycle, m->frame);
  m->cycle++;
}

static void set_frame(machine *m, int i, int j, ct_cell_state s, double value, double held) {
  if (!m->fn || m->fold >= m->frame_folds) return;
  ct_systolic_cell *f = &m->frame[i * m->C + j];
  f->state = (unsigned char)s;
  f->value = value;
  f->held = held;
}

/* One fold of the stationary machine: S (kr x nc, from the tile's origin) stays in the cells, X
   (T x kr) streams in from the left, Y (T x nc) accumulates the partial sums leaving the bottom.
   first: the first fold over the reduction dim (the accumulators start empty). */
static void stationary_fold(machine *m, mview S, mview X, double *Y, int64_t syr, int64_t syc, int kr, int nc,
                            int64_t T, bool first, int64_t *reads_s, int64_t *reads_x) {
  const int R = m->R, C = m->C;
  ct_systolic_stats *st = m->st;
  m->cycle = 0;
  memset(m->cur, 0, sizeof(cell_reg) * (size_t)R * C);
  /* load: R cycles; row 0 takes S's row (R-1-l) at cycle l, every row takes the row above */
  for (int l = 0; l < R; l++) {
    for (int i = R - 1; i >= 0; i--)
      for (int j = 0; j < C; j++) {
        double w = 0;
        bool ok;
        if (i == 0) {
          int src = R - 1 - l;
          ok = src < kr && j < nc;
          if (ok) w = S.p[src * S.sr + j * S.sc], (*reads_s)++;
        } else {
          ok = m->cur[(i - 1) * C + j].down_ok;
          w = m->cur[(i - 1) * C + j].down;
        }
        m->next[i * C + j].down = w;
        m->next[i * C + j].down_ok = ok;
        set_frame(m, i, j, ok ? CT_CELL_LOAD : CT_CELL_IDLE, w, w);
      }
    cell_reg *t = m->cur;
    m->cur = m->next, m->next = t;
    st->load_cycles++;
    emit(m);
  }
  for (int k = 0; k < R * C; k++) {
    m->cur[k].held = m->cur[k].down; /* latch the weights; the down wire now carries sums */
    m->cur[k].down_ok = m->cur[k].right_ok = false;
  }
  for (int k = 0; k < R * C; k++) m->next[k].held = m->cur[k].held;
  /* stream: cell (i, j) sees row t of X at cycle t + i + j */
  int64_t want = T * nc, done = 0;
  for (int64_t c = 0; done < want; c++) {
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) {
        const cell_reg *o = &m->cur[i * C + j];
        cell_reg *n = &m->next[i * C + j];
        double a = 0;
        bool a_ok;
        if (j == 0) {
          int64_t t = c - i;
          a_ok = i < kr && t >= 0 && t < T;
          if (a_ok) a = X.p[t * X.sr + i * X.sc], (*reads_x)++;
        } else {
          a_ok = m->cur[i * C + j - 1].right_ok;
          a = m->cur[i * C + j - 1].right;
        }
        double p = 0;
        bool p_ok = i > 0 && m->cur[(i - 1) * C + j].down_ok;
        if (p_ok) p = m->cur[(i - 1) * C + j].down;
        ct_cell_state s = CT_CELL_IDLE;
        if (a_ok && j < nc) {
          p += a * o->held;
          p_ok = true;
          s = CT_CELL_MAC;
          st->macs++;
        } else if (a_ok || p_ok) {
          s = CT_CELL_PASS;
        }
        n->right = a, n->right_ok = a_ok;
        n->down = p, n->down_ok = p_ok;
        set_frame(m, i, j, s, p, o->held);
      }
    cell_reg *t = m->cur;
    m->cur = m->next, m->next = t;
    emit(m);
    /* the bottom row's sums leave into the accumulators: column j carries row t = c - (R-1) - j */
    for (int j = 0; j < nc; j++) {
      const cell_reg *b = &m->cur[(R - 1) * C + j];
      if (!b->down_ok) continue;
      int64_t t = c - (R - 1) - j;
      if (t < 0 || t >= T) continue;
      double *y = &Y[t * syr + j * syc];
      if (first) {
        *y = b->down;
      } else {
        *y += b->down;
        st->acc_reads++;
      }
      st->acc_writes++;
      done++;
    }
  }
}

/* One fold of the output-stationary machine: A's rows (mr x T) from the left, B's columns (T x nc)
   from the top; then R drain cycles shift the accumulators out of the bottom row. */
static void output_fold(machine *m, mview A, mview B, double *Y, int64_t N, int mr, int nc, int64_t T) {
  const int R = m->R, C = m->C;
  ct_systolic_stats *st = m->st;
  m->cycle = 0;
  memset(m->cur, 0, sizeof(cell_reg) * (size_t)R * C);
  memset(m->next, 0, sizeof(cell_reg) * (size_t)R * C);
  int64_t want = (int64_t)mr * nc * T, done = 0;
  for (int64_t c = 0; done < want; c++) {
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) {
        const cell_reg *o = &m->cur[i * C + j];
        cell_reg *n = &m->next[i * C + j];
        double a = 0, b = 0;
        bool a_ok, b_ok;
        if (j == 0) {
          int64_t t = c - i;
          a_ok = i < mr && t >= 0 && t < T;
          if (a_ok) a = A.p[i * A.sr + t * A.sc], st->reads_a++;
        } else {
          a_ok = m->cur[i * C + j - 1].right_ok, a = m->cur[i * C + j - 1].right;
        }
        if (i == 0) {
          int64_t t = c - j;
          b_ok = j < nc && t >= 0 && t < T;
          if (b_ok) b = B.p[t * B.sr + j * B.sc], st->reads_b++;
        } else {
          b_ok = m->cur[(i - 1) * C + j].down_ok, b = m->cur[(i - 1) * C + j].down;
        }
        double acc = o->held;
        ct_cell_state s = CT_CELL_IDLE;
        if (a_ok && b_ok) {
          acc += a * b;
          s = CT_CELL_MAC;
          st->macs++;
          done++;
        } else if (a_ok || b_ok) {
          s = CT_CELL_PASS;
        }
        n->right = a, n->right_ok = a_ok, n->down = b, n->down_ok = b_ok, n->held = acc;
        set_frame(m, i, j, s, acc, acc);
      }
    cell_reg *t = m->cur;
    m->cur = m->next, m->next = t;
    emit(m);
  }
  /* drain: each cycle the bottom row's accumulators are written and every row moves down one */
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) m->cur[i * C + j].down_ok = i < mr && j < nc; /* holds a result */
  for (int d = 0; d < R; d++) {
    for (int j = 0; j < nc; j++) {
      const cell_reg *b = &m->cur[(R - 1) * C + j];
      if (b->down_ok) Y[(int64_t)(R - 1 - d) * N + j] = b->held, st->out_writes++;
    }
    for (int i = R - 1; i >= 0; i--)
      for (int j = 0; j < C; j++) {
        cell_reg *n = &m->cur[i * C + j];
        n->held = i > 0 ? m->cur[(i - 1) * C + j].held : 0;
        n->down_ok = i > 0 && m->cur[(i - 1) * C + j].down_ok;
        set_frame(m, i, j, n->down_ok ? CT_CELL_LOAD : CT_CELL_IDLE, n->held, n->held);
      }
    st->drain_cycles++;
    emit(m);
  }
}

int ct_systolic_matmul(int R, int C, ct_systolic_flow flow, const double *A, const double *B, double *out, int64_t M,
                       int64_t K, int64_t N, ct_systolic_stats *st, ct_systolic_frame_fn fn, void *ud,
                       int64_t frame_folds) {
  if (R < 1 || C < 1 || R > 4096 || C > 4096)
    return ct_errorf("systolic: grid %d x %d (rows and columns must be 1..4096)", R, C);
  if (M < 1 || K < 1 || N < 1)
    return ct_errorf("systolic matmul: A [%lld, %lld] @ B [%lld, %lld]: every size must be at least 1", (long long)M,
                     (long long)K, (long long)K, (long long)N);
  if (flow != CT_SYSTOLIC_WEIGHT && flow != CT_SYSTOLIC_INPUT && flow != CT_SYSTOLIC_OUTPUT)
    return ct_errorf("systolic: unknown dataflow %d", (int)flow);
  memset(st, 0, sizeof *st);
  machine m = {.R = R, .C = C, .fn = fn, .ud = ud, .frame_folds = frame_folds, .st = st};
  m.cur = calloc((size_t)R * C, sizeof(cell_reg));
  m.next = calloc((size_t)R * C, sizeof(cell_reg));
  m.frame = fn ? calloc((size_t)R * C, sizeof(ct_systolic_cell)) : NULL;
  if (!m.cur || !m.next || (fn && !m.frame)) {
    free(m.cur), free(m.next), free(m.frame);
    return ct_errorf("systolic: out of memory for a %d x %d grid", R, C);
  }
  if (flow == CT_SYSTOLIC_OUTPUT) {
    st->T = K;
    for (int64_t m0 = 0; m0 < M; m0 += R)
      for (int64_t n0 = 0; n0 < N; n0 += C) {
        int mr = (int)(M - m0 < R ? M - m0 : R), nc = (int)(N - n0 < C ? N - n0 : C);
        int64_t c0 = st->cycles;
        output_fold(&m, (mview){A + m0 * K, K, 1}, (mview){B + n0, N, 1}, out + m0 * N + n0, N, mr, nc, K);
        if (st->folds == 0) st->first_fold_cycles = st->cycles - c0;
        st->last_fold_cycles = st->cycles - c0;
        st->full_folds += mr == R && nc == C;
        st->folds++, m.fold++;
      }
  } else {
    /* WEIGHT: S = B (K x N), X = A (M x K), Y = out (M x N).
       INPUT:  S = A^T (K x M), X = B^T (N x K), Y = out^T (N x M). */
    bool w = flow == CT_SYSTOLIC_WEIGHT;
    int64_t cols = w ? N : M, T = w ? M : N;
    st->T = T;
    for (int64_t j0 = 0; j0 < cols; j0 += C)
      for (int64_t k0 = 0; k0 < K; k0 += R) {
        int kr = (int)(K - k0 < R ? K - k0 : R), nc = (int)(cols - j0 < C ? cols - j0 : C);
        mview S = w ? (mview){B + k0 * N + j0, N, 1} : (mview){A + j0 * K + k0, 1, K};
        mview X = w ? (mview){A + k0, K, 1} : (mview){B + k0 * N, 1, N};
        double *Y = w ? out + j0 : out + j0 * N;
        int64_t syr = w ? N : 1, syc = w ? 1 : N;
        int64_t c0 = st->cycles;
        stationary_fold(&m, S, X, Y, syr, syc, kr, nc, T, k0 == 0, w ? &st->reads_b : &st->reads_a,
                        w ? &st->reads_a : &st->reads_b);
        if (st->folds == 0) st->first_fold_cycles = st->cycles - c0;
        st->last_fold_cycles = st->cycles - c0;
        st->full_folds += kr == R && nc == C;
        st->folds++, m.fold++;
      }
  }
  free(m.cur), free(m.next), free(m.frame);
  return 0;
}

const char *ct_systolic_flow_name(ct_systolic_flow f) {
  return f == CT_SYSTOLIC_WEIGHT ? "weight" : f == CT_SYSTOLIC_INPUT ? "input" : f == CT_SYSTOLIC_OUTPUT ? "output" : "?";
}

int ct_systolic_flow_parse(const char *s, ct_systolic_flow *out) {
  static const char *const names[] = {"weight", "input", "output"};
  for (int i = 0; i < 3; i++)
    if (s && strcmp(s, names[i]) == 0) return *out = (ct_systolic_flow)i, 0;
  return ct_errorf("systolic: unknown dataflow '%s' (weight, input or output)", s ? s : "(null)");
}
