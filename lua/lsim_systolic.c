/* lsim_systolic.c: chalk.systolic_core, the C half of sim.systolic (lua/chalk/sim_systolic.lua).
 *
 *   P, stats[, frames] = core.matmul(R, C, "weight"|"input"|"output", A, B [, frame_folds])
 *
 * A [M, K] and B [K, N] are CPU tensors of any dtype (read as doubles); P has their promoted dtype.
 * frames (when frame_folds > 0): one table per cycle of the first frame_folds folds,
 * {fold=, cycle=, state={...}, value={...}, held={...}}, each list R*C long in row-major order.
 *
 * Invariant: every buffer is a Lua userdata allocated before the simulation runs, so a Lua error
 * leaks nothing; the simulation itself calls no Lua. */
#include <string.h>

#include "lchalk_internal.h"
#include "sim/systolic.h"

typedef struct {
  ct_systolic_cell *cells; /* [cap][R*C] */
  int64_t cap, n, rc;
  int64_t *fold, *cycle; /* [cap] */
} frame_rec;

static void record(void *ud, int64_t fold, int64_t cycle, const ct_systolic_cell *cells) {
  frame_rec *r = ud;
  if (r->n >= r->cap) return;
  memcpy(r->cells + r->n * r->rc, cells, sizeof(ct_systolic_cell) * (size_t)r->rc);
  r->fold[r->n] = fold, r->cycle[r->n] = cycle;
  r->n++;
}

static double *read_matrix(lua_State *L, int idx, const char *what, int64_t *rows, int64_t *cols) {
  ct_tensor *t = lchalk_checktensor(L, idx);
  if (t->ndim != 2)
    luaL_error(L, "systolic matmul: %s must be a matrix (2-D), got %d dims", what, t->ndim);
  if (t->storage && t->storage->device.type != CT_CPU)
    luaL_error(L, "systolic matmul: %s must be on the CPU (the simulator reads it element by element)", what);
  *rows = t->shape[0], *cols = t->shape[1];
  double *d = lua_newuserdatauv(L, sizeof(double) * (size_t)(t->shape[0] * t->shape[1]), 0);
  if (ct_to_doubles(t, d)) lchalk_error(L);
  return d;
}

#define SET_INT(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))

static int l_matmul(lua_State *L) {
  int R = (int)luaL_checkinteger(L, 1), C = (int)luaL_checkinteger(L, 2);
  ct_systolic_flow flow;
  if (ct_systolic_flow_parse(luaL_checkstring(L, 3), &flow)) return lchalk_error(L);
  ct_tensor *ta = lchalk_checktensor(L, 4), *tb = lchalk_checktensor(L, 5);
  lua_Integer frame_folds = luaL_optinteger(L, 6, 0);
  int64_t M, K, K2, N;
  double *A = read_matrix(L, 4, "A", &M, &K);
  double *B = read_matrix(L, 5, "B", &K2, &N);
  if (K != K2)
    return luaL_error(L, "systolic matmul: A [%d, %d] @ B [%d, %d]: inner sizes differ", (int)M, (int)K, (int)K2,
                      (int)N);
  if (R < 1 || C < 1) return luaL_error(L, "systolic: grid %d x %d: rows and columns must be at least 1", R, C);
  double *out = lua_newuserdatauv(L, sizeof(double) * (size_t)(M * N), 0);
  frame_rec rec = {0};
  if (frame_folds > 0) {
    int64_t T = flow == CT_SYSTOLIC_WEIGHT ? M : flow == CT_SYSTOLIC_INPUT ? N : K;
    rec.rc = (int64_t)R * C;
    rec.cap = frame_folds * (2 * (int64_t)R + C + T + 2);
    if (rec.cap * rec.rc > 4000000)
      return luaL_error(L, "systolic frames: %d x %d grid over %d cycles is too many cells to record (at most 4M)",
                        R, C, (int)rec.cap);
    rec.cells = lua_newuserdatauv(L, sizeof(ct_systolic_cell) * (size_t)(rec.cap * rec.rc), 0);
    rec.fold = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)rec.cap, 0);
    rec.cycle = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)rec.cap, 0);
  }
  ct_systolic_stats st;
  if (ct_systolic_matmul(R, C, flow, A, B, out, M, K, N, &st, frame_folds > 0 ? record : NULL, &rec,
                         frame_folds))
    return lchalk_error(L);
  ct_dtype dt = ct_promote(ta->dtype, tb->dtype);
  if (dt == CT_BOOL) dt = CT_I64;
  int64_t shape[2] = {M, N};
  lchalk_pushtensor(L, ct_from_doubles(out, shape, 2, dt, ct_cpu()));
  lua_createtable(L, 0, 16);
  SET_INT("cycles", st.cycles);
  SET_INT("folds", st.folds);
  SET_INT("T", st.T);
  SET_INT("macs", st.macs);
  SET_INT("load_cycles", st.load_cycles);
  SET_INT("drain_cycles", st.drain_cycles);
  SET_INT("first_fold_cycles", st.first_fold_cycles);
  SET_INT("last_fold_cycles", st.last_fold_cycles);
  SET_INT("full_folds", st.full_folds);
  SET_INT("reads_a", st.reads_a);
  SET_INT("reads_b", st.reads_b);
  SET_INT("acc_reads", st.acc_reads);
  SET_INT("acc_writes", st.acc_writes);
  SET_INT("out_writes", st.out_writes);
  lua_pushnumber(L, st.cycles > 0 ? (double)st.macs / ((double)st.cycles * R * C) : 0);
  lua_setfield(L, -2, "utilization");
  if (frame_folds <= 0) return 2;
  lua_createtable(L, (int)rec.n, 0);
  static const char *const states[] = {"idle", "load", "pass", "mac"};
  for (int64_t f = 0; f < rec.n; f++) {
    lua_createtable(L, 0, 5);
    SET_INT("fold", rec.fold[f] + 1);
    SET_INT("cycle", rec.cycle[f] + 1);
    const ct_systolic_cell *c = rec.cells + f * rec.rc;
    const char *names[3] = {"state", "value", "held"};
    for (int k = 0; k < 3; k++) {
      lua_createtable(L, (int)rec.rc, 0);
      for (int64_t i = 0; i < rec.rc; i++) {
        if (k == 0) lua_pushstring(L, states[c[i].state & 3]);
        else lua_pushnumber(L, k == 1 ? c[i].value : c[i].held);
        lua_rawseti(L, -2, i + 1);
      }
      lua_setfield(L, -2, names[k]);
    }
    lua_rawseti(L, -2, f + 1);
  }
  return 3;
}

int luaopen_chalk_systolic_core(lua_State *L);
int luaopen_chalk_systolic_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"matmul", l_matmul}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
