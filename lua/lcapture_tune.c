/* lcapture_tune.c: Graph:autotune (fused kernels' chunk), chalk.autotune.matmul/.cached, chalk.matmul_tiled. */
#include <stdlib.h>

#include "lcapture.h"

/* g:autotune{chunks={...}, repeats=5} -> {{kernel=, chunk=, us=}, ...}: fused CPU kernels' chunk */
int lcap_g_autotune(lua_State *L) {
  ct_graph *g = lcap_check_graph(L, 1);
  int chunks[32], nchunks = 0, repeats = 5;
  static const int defaults[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536};
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "chunks") == LUA_TTABLE) {
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer i = 1; i <= n && nchunks < 32; i++) {
        lua_geti(L, -1, i);
        chunks[nchunks++] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
      }
    }
    lua_getfield(L, 2, "repeats");
    repeats = (int)luaL_optinteger(L, -1, 5);
    lua_pop(L, 2);
  }
  if (!nchunks)
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) chunks[nchunks++] = defaults[i];
  int max = 4096;
  ct_tune_chunk *rows = malloc(sizeof *rows * (size_t)max);
  if (!rows) return luaL_error(L, "autotune: out of memory");
  int n = ct_autotune_fused(g, chunks, nchunks, repeats, rows, max);
  if (n < 0) {
    free(rows);
    return lchalk_error(L);
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lcap_set_int(L, "kernel", rows[i].kernel);
    lcap_set_int(L, "chunk", rows[i].chunk);
    lcap_set_num(L, "us", rows[i].us);
    lua_rawseti(L, -2, i + 1);
  }
  free(rows);
  return 1;
}

/* ---- chalk.autotune.matmul, chalk.matmul_tiled ------------------------------------------------- */

static int read_int_list(lua_State *L, int idx, const char *k, int *out, int max, const int *def, int ndef) {
  int n = 0;
  if (lua_istable(L, idx) && lua_getfield(L, idx, k) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= len && n < max; i++) {
      lua_geti(L, -1, i);
      out[n++] = (int)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  } else if (lua_istable(L, idx)) {
    lua_pop(L, 1);
  }
  if (!n)
    for (int i = 0; i < ndef && i < max; i++) out[n++] = def[i];
  return n;
}

/* {bm, bn, bk, us, gflops} of one autotuning result, pushed as a table. */
static const lcap_field tune_fields[] = {LCAP_FIELD(ct_tune_result, bm), LCAP_FIELD(ct_tune_result, bn),
                                         LCAP_FIELD(ct_tune_result, bk), LCAP_FIELD(ct_tune_result, us),
                                         LCAP_FIELD(ct_tune_result, gflops)};

static void push_tune_result(lua_State *L, const ct_tune_result *r) {
  lcap_push_fields(L, r, tune_fields, LCAP_NFIELDS(tune_fields));
}

static void push_int_array(lua_State *L, const int *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* chalk.autotune.matmul(m, n, k [, {bm={...}, bn={...}, bk=32, repeats=3, dtype="f32"}])
   -> {results = {{bm=, bn=, bk=, us=, gflops=}, ...}, best = {...}, bm = {...}, bn = {...}} */
int lcap_l_autotune_matmul(lua_State *L) {
  lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
  static const int def[] = {4, 8, 16, 32, 64, 128, 256};
  int bms[32], bns[32];
  int nbm = read_int_list(L, 4, "bm", bms, 32, def, 7), nbn = read_int_list(L, 4, "bn", bns, 32, def, 7);
  int bk = 64, repeats = 3;
  ct_dtype dt = CT_F32;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "bk");
    bk = (int)luaL_optinteger(L, -1, 64);
    lua_getfield(L, 4, "repeats");
    repeats = (int)luaL_optinteger(L, -1, 3);
    if (lua_getfield(L, 4, "dtype") != LUA_TNIL) dt = lchalk_checkdtype(L, lua_gettop(L));
    lua_pop(L, 3);
  }
  ct_tune_result *res = malloc(sizeof *res * (size_t)(nbm * nbn));
  if (!res) return luaL_error(L, "autotune: out of memory");
  ct_tune_result best;
  if (ct_autotune_matmul(m, n, k, dt, bms, nbm, bns, nbn, bk, repeats, res, &best)) {
    free(res);
    return lchalk_error(L);
  }
  lua_createtable(L, 0, 4);
  lua_createtable(L, nbm * nbn, 0);
  for (int i = 0; i < nbm * nbn; i++) {
    push_tune_result(L, &res[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "results");
  push_tune_result(L, &best);
  lua_setfield(L, -2, "best");
  push_int_array(L, bms, nbm);
  lua_setfield(L, -2, "bm");
  push_int_array(L, bns, nbn);
  lua_setfield(L, -2, "bn");
  free(res);
  return 1;
}

/* chalk.autotune.cached(m, n, k [, dtype]) -> best or nil */
int lcap_l_autotune_cached(lua_State *L) {
  lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
  ct_dtype dt = lua_isnoneornil(L, 4) ? CT_F32 : lchalk_checkdtype(L, 4);
  ct_tune_result best;
  if (!ct_autotune_matmul_cached(m, n, k, dt, &best)) return 0;
  push_tune_result(L, &best);
  return 1;
}

/* chalk.matmul_tiled(a, b [, bm, bn, bk]): the tiled matmul (the cached best tiles by default) */
int lcap_l_matmul_tiled(lua_State *L) {
  ct_tensor *a = lchalk_checktensor(L, 1), *b = lchalk_checktensor(L, 2);
  ct_tune_result best = {.bm = 32, .bn = 32, .bk = 64};
  if (a->ndim == 2 && b->ndim == 2) ct_autotune_matmul_cached(a->shape[0], b->shape[1], a->shape[1], a->dtype, &best);
  int bm = (int)luaL_optinteger(L, 3, best.bm), bn = (int)luaL_optinteger(L, 4, best.bn);
  int bk = (int)luaL_optinteger(L, 5, best.bk);
  LCHALK_RETURN(L, ct_matmul_tiled(a, b, bm, bn, bk));
}
