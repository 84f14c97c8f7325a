/* ldist.c: chalk.dist_core, the C half of chalk.dist (lua/chalk/dist.lua): transports, groups and
 * resumable collectives over core/dist.
 *
 *   tr = core.sim(n, alpha, bandwidth)      -- a sim transport (userdata; freed by __gc)
 *   tr, rank, size = core.mpi()             -- the MPI world (nil, why when MPI is not built in)
 *   ok, why = core.nccl_available()         -- a GPU, CUDA built in and libnccl loadable?
 *   tr = core.nccl_all(n)                   -- one process driving n GPUs (ncclCommInitAll)
 *   id = core.nccl_unique_id()              -- 128 bytes for ncclCommInitRank (rank 0 makes it)
 *   tr = core.nccl_rank(rank, size, id)     -- this process's rank (0-based) of an nccl job
 *   rank, size, id = core.nccl_launched()   -- from chalk --nproc N --backend nccl's pipe, or nil
 *   tr:device(rank)                         -- the GPU index of a rank this process drives
 *   g = core.group(tr, {global ranks, 0-based}, my_group_rank, group_id)
 *   x = g:start(coll, algo, op, tensor, root_or_peer)   -- root/peer 0-based group rank
 *   st, peer, step = x:step()               -- "done", or "blocked" on global rank peer (0-based)
 *   x:run()                                 -- to completion, with the transport's watchdog
 *   x:info()  g:stats()  tr:progress()  tr:clock(rank)  tr:advance(rank, t)
 *   id = core.compute_clock(flops_per_s)     -- op hook on the current context: its virtual clock
 *                                           -- moves by each op's flops / flops_per_s (sim compute)
 *   core.tensor_id(t)                        -- the core's tensor id (a leaf's identity in hooks)
 *
 * Invariants: a group anchors its transport, an exec its group and tensor (uservalues), so the
 * memory the executor points into outlives it; every core error is raised as a Lua error after
 * the exec's resources are released (ct_dist_exec_end is idempotent). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx/ctx.h"
#include "dist/dist.h"
#include "dist/nccl_api.h"
#include "lchalk_internal.h"
#include "ops/optable.h"

#define LDIST_TR "chalk.dist.Transport"
#define LDIST_GROUP "chalk.dist.Group"
#define LDIST_EXEC "chalk.dist.Exec"

/* Defined only when the MPI transport is linked in (build/chalk with OpenMPI found). */
extern ct_dist_transport *ct_dist_mpi_world(int *rank) __attribute__((weak));

typedef struct {
  ct_dist_transport *tr;
  bool owned; /* sim, nccl: freed by __gc; mpi: the process's static world */
} tr_box;

typedef struct {
  ct_dist_transport *tr;
  int *members, size, rank;
  uint32_t id, seq;         /* collectives called in this group */
  uint32_t *p2p;            /* [2 * peer]: sends to peer, [2 * peer + 1]: receives from it (as MPI tags) */
  ct_dist_stats stats;
} group_box;

typedef struct {
  ct_dist_exec x;
  bool live;
} exec_box;

static tr_box *check_tr(lua_State *L, int i) { return luaL_checkudata(L, i, LDIST_TR); }
static group_box *check_group(lua_State *L, int i) { return luaL_checkudata(L, i, LDIST_GROUP); }
static exec_box *check_exec(lua_State *L, int i) { return luaL_checkudata(L, i, LDIST_EXEC); }

static int tr_gc(lua_State *L) {
  tr_box *b = check_tr(L, 1);
  if (b->owned && b->tr) {
    if (strcmp(b->tr->name, "nccl")) ct_dist_sim_free(b->tr);
    else ct_dist_nccl_free(b->tr);
  }
  b->tr = NULL;
  return 0;
}

static int l_sim(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  double alpha = luaL_optnumber(L, 2, 0), bw = luaL_optnumber(L, 3, 0);
  tr_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (tr_box){0};
  luaL_setmetatable(L, LDIST_TR);
  if (!(b->tr = ct_dist_sim_new(n, alpha, bw))) return lchalk_error(L);
  b->owned = true;
  return 1;
}

static int l_mpi_available(lua_State *L) {
  lua_pushboolean(L, ct_dist_mpi_world != NULL);
  return 1;
}

static int l_mpi(lua_State *L) {
  if (!ct_dist_mpi_world) {
    lua_pushnil(L);
    lua_pushstring(L, "this chalk was built without MPI: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev, "
                      "or make deps) and rebuild with make; dist.run(N, fn) runs simulated workers without it");
    return 2;
  }
  int rank = 0;
  ct_dist_transport *t = ct_dist_mpi_world(&rank);
  if (!t) return lchalk_error(L);
  ct_ctx_default()->rank = rank + 1; /* ctx rank = the global rank as Lua counts it (world.rank) */
  tr_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (tr_box){t, false};
  luaL_setmetatable(L, LDIST_TR);
  lua_pushinteger(L, rank);
  lua_pushinteger(L, t->world_size);
  return 3;
}

static int l_nccl_available(lua_State *L) {
  bool ok = ct_dist_nccl_check() == 0;
  lua_pushboolean(L, ok);
  if (ok) lua_pushfstring(L, "NCCL %d from %s", ct_nccl_version(), ct_nccl_where());
  else lua_pushstring(L, ct_last_error());
  return 2;
}

static int push_tr(lua_State *L, ct_dist_transport *t) {
  if (!t) return lchalk_error(L);
  tr_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (tr_box){t, true};
  luaL_setmetatable(L, LDIST_TR);
  return 1;
}

static int l_nccl_all(lua_State *L) { return push_tr(L, ct_dist_nccl_new_all((int)luaL_checkinteger(L, 1))); }

static int l_nccl_unique_id(lua_State *L) {
  char id[CT_NCCL_ID_BYTES];
  if (ct_dist_nccl_unique_id(id)) return lchalk_error(L);
  lua_pushlstring(L, id, sizeof id);
  return 1;
}

static int l_nccl_rank(lua_State *L) {
  int rank = (int)luaL_checkinteger(L, 1), size = (int)luaL_checkinteger(L, 2);
  size_t n = 0;
  const char *id = luaL_checklstring(L, 3, &n);
  luaL_argcheck(L, n == CT_NCCL_ID_BYTES, 3, "an NCCL unique id of 128 bytes");
  push_tr(L, ct_dist_nccl_new_rank(rank, size, id)); /* raises on failure */
  ct_ctx_default()->rank = rank + 1; /* as under MPI: the process's context is its rank */
  return 1;
}

/* chalk --nproc N --backend nccl without MPI (repl/launch_nccl.c): CHALK_NCCL_RANK and
   CHALK_NCCL_SIZE say who this process is, and the unique id waits on fd CHALK_NCCL_ID_FD. */
static int l_nccl_launched(lua_State *L) {
  const char *r = getenv("CHALK_NCCL_RANK"), *s = getenv("CHALK_NCCL_SIZE"), *fd = getenv("CHALK_NCCL_ID_FD");
  if (!r || !s || !fd) return 0;
  static char id[CT_NCCL_ID_BYTES];
  static bool have;
  int f = atoi(fd);
  for (size_t got = 0; !have && got < sizeof id;) {
    ssize_t k = read(f, id + got, sizeof id - got);
    if (k <= 0) return luaL_error(L, "dist.init: the NCCL id from chalk --nproc's pipe (fd %d) ended after %d of 128 "
                                     "bytes", f, (int)got);
    got += (size_t)k;
    have = got == sizeof id;
  }
  if (have) close(f);
  lua_pushinteger(L, atoi(r));
  lua_pushinteger(L, atoi(s));
  lua_pushlstring(L, id, sizeof id);
  return 3;
}

static ct_dist_transport *live_tr(lua_State *L, int i) {
  tr_box *b = check_tr(L, i);
  if (!b->tr) luaL_error(L, "dist: the transport was closed");
  return b->tr;
}

static int l_progress(lua_State *L) {
  ct_dist_transport *t = live_tr(L, 1);
  lua_pushinteger(L, !strcmp(t->name, "sim") ? (lua_Integer)ct_dist_sim_progress(t)
                    : t->progress ? (lua_Integer)t->progress(t) : 0);
  return 1;
}

static int l_clock(lua_State *L) {
  ct_dist_transport *t = live_tr(L, 1);
  int r = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, r >= 0 && r < t->world_size, 2, "rank out of range");
  lua_pushnumber(L, t->now(t, r));
  return 1;
}

static int l_advance(lua_State *L) {
  ct_dist_transport *t = live_tr(L, 1);
  int r = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, r >= 0 && r < t->world_size && !strcmp(t->name, "sim"), 2, "a rank of a sim transport");
  ct_dist_sim_advance(t, r, luaL_checknumber(L, 3));
  return 0;
}

static int l_tr_device(lua_State *L) {
  ct_dist_transport *t = live_tr(L, 1);
  lua_pushinteger(L, ct_dist_nccl_device(t, (int)luaL_checkinteger(L, 2)));
  return 1;
}

static int l_tr_name(lua_State *L) {
  lua_pushstring(L, live_tr(L, 1)->name);
  return 1;
}

static int group_gc(lua_State *L) {
  group_box *g = check_group(L, 1);
  free(g->members);
  free(g->p2p);
  g->members = NULL;
  g->p2p = NULL;
  return 0;
}

static int l_group(lua_State *L) {
  ct_dist_transport *t = live_tr(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2), rank = (int)luaL_checkinteger(L, 3);
  lua_Integer id = luaL_checkinteger(L, 4);
  luaL_argcheck(L, n >= 1 && rank >= 0 && rank < n, 3, "group rank outside the group");
  group_box *g = lua_newuserdatauv(L, sizeof *g, 1);
  memset(g, 0, sizeof *g);
  luaL_setmetatable(L, LDIST_GROUP);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (!(g->members = malloc((size_t)n * sizeof *g->members)) || !(g->p2p = calloc(2 * (size_t)n, sizeof *g->p2p)))
    return luaL_error(L, "dist: out of memory");
  for (int i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    lua_Integer m = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (m < 0 || m >= t->world_size) return luaL_error(L, "dist: member %d outside a world of %d", (int)m + 1, t->world_size);
    g->members[i] = (int)m;
  }
  g->tr = t;
  g->size = n;
  g->rank = rank;
  g->id = (uint32_t)id;
  return 1;
}

static const char *const coll_opts[] = {"all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all",
                                        "send", "recv", "barrier", NULL};

static int exec_gc(lua_State *L) {
  exec_box *e = check_exec(L, 1);
  if (e->live) ct_dist_exec_end(&e->x);
  e->live = false;
  return 0;
}

/* g:start(coll, algo, op, tensor_or_nil, root [, count]): with no tensor and a count, a timing-only
   collective on sim (the schedule runs, messages carry only their sizes: times and byte counts) */
static int l_start(lua_State *L) {
  group_box *g = check_group(L, 1);
  ct_dist_coll coll = (ct_dist_coll)luaL_checkoption(L, 2, NULL, coll_opts);
  ct_dist_algo algo;
  ct_dist_op op;
  if (ct_dist_algo_from_name(luaL_checkstring(L, 3), &algo) || ct_dist_op_from_name(luaL_checkstring(L, 4), &op))
    return lchalk_error(L);
  ct_tensor *t = lua_isnoneornil(L, 5) ? NULL : lchalk_checktensor(L, 5);
  int root = (int)luaL_optinteger(L, 6, 0);
  const char *name = coll_opts[coll];
  void *data = NULL;
  int64_t count = 0;
  ct_dtype dt = CT_F32;
  if (!t && !lua_isnoneornil(L, 7)) { /* timing only: count elements of f32, no data (sim) */
    if (strcmp(g->tr->name, "sim"))
      return luaL_error(L, "%s: a timing-only collective (no tensor) runs on sim only", name);
    count = luaL_checkinteger(L, 7);
    luaL_argcheck(L, count >= 0, 7, "element count must not be negative");
  }
  if (t) {
    char d[160];
    int gpu = ct_dist_nccl_device(g->tr, g->members[g->rank]);
    if (gpu < 0 && t->storage->device.type != CT_CPU)
      return luaL_error(L, "%s: %s is not on the cpu (the %s backend moves host tensors)", name,
                        ct_describe(t, d, sizeof d), g->tr->name);
    if (gpu >= 0 && (t->storage->device.type != CT_CUDA || t->storage->device.index != gpu))
      return luaL_error(L, "%s: %s is not on cuda:%d, rank %d's GPU on nccl (move it to world.device)", name,
                        ct_describe(t, d, sizeof d), gpu, g->members[g->rank] + 1);
    if (!ct_is_contiguous(t))
      return luaL_error(L, "%s: %s is not contiguous (collectives work in place; call :contiguous() first)", name,
                        ct_describe(t, d, sizeof d));
    if (coll != CT_COLL_SEND) {
      lchalk_check_inplace(L, t, name);
      ct_bump_version(t); /* the collective writes it in place: saved copies go stale */
    }
    data = (char *)t->storage->data + t->offset * (int64_t)ct_dtype_size(t->dtype);
    count = ct_numel(t);
    dt = t->dtype;
  }
  exec_box *e = lua_newuserdatauv(L, sizeof *e, 2);
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, LDIST_EXEC);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, -2, 2);
  /* collectives are numbered in the group; a send/recv pair by its direction between two ranks */
  uint32_t seq;
  if (coll == CT_COLL_SEND || coll == CT_COLL_RECV) {
    if (root < 0 || root >= g->size) return luaL_error(L, "%s: peer %d outside a group of %d", name, root + 1, g->size);
    seq = ++g->p2p[2 * root + (coll == CT_COLL_RECV)];
  } else {
    seq = ++g->seq;
  }
  if (ct_dist_exec_begin(&e->x, g->tr, g->members, g->size, g->rank, g->id, seq, coll, algo, op, data, count, dt,
                         root, &g->stats))
    return lchalk_error(L);
  e->live = true;
  return 1;
}

static int fail_exec(lua_State *L, exec_box *e) {
  ct_dist_exec_end(&e->x);
  e->live = false;
  return lchalk_error(L);
}

static int l_step(lua_State *L) {
  exec_box *e = check_exec(L, 1);
  if (!e->live) {
    lua_pushstring(L, "done");
    return 1;
  }
  ct_exec_status st = ct_dist_exec_step(&e->x);
  if (st == CT_EXEC_ERROR) return fail_exec(L, e);
  if (st == CT_EXEC_DONE) {
    ct_dist_exec_end(&e->x);
    e->live = false;
    lua_pushstring(L, "done");
    return 1;
  }
  int step, peer = ct_dist_exec_waiting(&e->x, &step);
  lua_pushstring(L, "blocked");
  lua_pushinteger(L, peer >= 0 ? e->x.members[peer] : -1);
  lua_pushinteger(L, step);
  return 3;
}

static int l_run(lua_State *L) {
  exec_box *e = check_exec(L, 1);
  if (e->live && ct_dist_exec_run(&e->x)) return fail_exec(L, e);
  if (e->live) ct_dist_exec_end(&e->x);
  e->live = false;
  return 0;
}

static int l_info(lua_State *L) {
  exec_box *e = check_exec(L, 1);
  lua_pushstring(L, ct_dist_coll_name(e->x.coll));
  lua_pushstring(L, ct_dist_algo_name(e->x.algo));
  lua_pushinteger(L, e->x.seq);
  return 3;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* { [coll] = { [algo] = {calls, bytes, time, sent, received, messages, algbw, busbw, last_*} } } */
static int l_stats(lua_State *L) {
  group_box *g = check_group(L, 1);
  lua_newtable(L);
  for (int c = 0; c < CT_COLL_N; c++) {
    bool any = false;
    for (int a = 0; a < CT_ALGO_N; a++) {
      const ct_dist_stat *s = &g->stats.by[c][a];
      if (!s->calls) continue;
      if (!any) {
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, ct_dist_coll_name((ct_dist_coll)c));
        any = true;
      }
      lua_newtable(L);
      double algbw = s->time_s > 0 ? s->bytes / s->time_s : 0;
      set_num(L, "calls", (double)s->calls);
      set_num(L, "bytes", s->bytes);
      set_num(L, "time", s->time_s);
      set_num(L, "sent", s->sent);
      set_num(L, "received", s->recvd);
      set_num(L, "messages", (double)s->messages);
      set_num(L, "algbw", algbw);
      set_num(L, "busbw", algbw * ct_dist_busbw_factor((ct_dist_coll)c, g->size));
      set_num(L, "last_bytes", s->last_bytes);
      set_num(L, "last_time", s->last_time_s);
      lua_setfield(L, -2, ct_dist_algo_name((ct_dist_algo)a));
    }
    if (any) lua_pop(L, 1);
  }
  return 1;
}

static int l_reset_stats(lua_State *L) {
  memset(&check_group(L, 1)->stats, 0, sizeof(ct_dist_stats));
  return 0;
}

/* The compute model of simulated workers: an op hook that moves the current context's virtual clock
   by the op's flops (the op table's cost rule; 1 per output element without one; views 0) at a
   stated rate. It runs between the op's start and end stamps, so the op event lasts that long. The
   rate (FLOP/s, an integer) travels in the hook's user data. */
static void compute_hook(ct_op op, ct_tensor *const *in, int nin, const ct_attrs *a, ct_tensor *out, void *ud) {
  ct_ctx *c = ct_ctx_cur();
  const ct_opdef *d = ct_optable[op];
  if (!c->virtual_clock || (d->flags & CT_OPF_VIEW) || !out) return;
  double flops = (double)ct_numel(out), bytes = 0;
  if (d->cost) d->cost(in, nin, out, a, &flops, &bytes);
  c->clock_us += flops / (double)(uintptr_t)ud * 1e6;
}

static int l_compute_clock(lua_State *L) {
  lua_Number rate = luaL_checknumber(L, 1);
  luaL_argcheck(L, rate >= 1 && rate < 1e18, 1, "flops per second in 1 .. 1e18");
  int id = ct_ctx_add_op_hook(ct_ctx_current(), compute_hook, (void *)(uintptr_t)rate);
  if (id < 0) return lchalk_error(L);
  lua_pushinteger(L, id);
  return 1;
}

static int l_tensor_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lchalk_checktensor(L, 1)->id);
  return 1;
}

int luaopen_chalk_dist_core(lua_State *L);
int luaopen_chalk_dist_core(lua_State *L) {
  static const luaL_Reg tr_methods[] = {{"progress", l_progress}, {"clock", l_clock}, {"advance", l_advance},
                                        {"name", l_tr_name}, {"device", l_tr_device}, {NULL, NULL}};
  static const luaL_Reg group_methods[] = {{"start", l_start}, {"stats", l_stats}, {"reset_stats", l_reset_stats},
                                           {NULL, NULL}};
  static const luaL_Reg exec_methods[] = {{"step", l_step}, {"run", l_run}, {"info", l_info}, {NULL, NULL}};
  struct {
    const char *name;
    const luaL_Reg *methods;
    lua_CFunction gc;
  } types[] = {{LDIST_TR, tr_methods, tr_gc}, {LDIST_GROUP, group_methods, group_gc}, {LDIST_EXEC, exec_methods, exec_gc}};
  for (int i = 0; i < 3; i++) {
    luaL_newmetatable(L, types[i].name);
    lua_newtable(L);
    luaL_setfuncs(L, types[i].methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, types[i].gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
  }
  static const luaL_Reg fns[] = {{"sim", l_sim}, {"mpi", l_mpi}, {"mpi_available", l_mpi_available},
                                 {"group", l_group}, {"compute_clock", l_compute_clock},
                                 {"tensor_id", l_tensor_id}, {"nccl_available", l_nccl_available},
                                 {"nccl_all", l_nccl_all}, {"nccl_unique_id", l_nccl_unique_id},
                                 {"nccl_rank", l_nccl_rank}, {"nccl_launched", l_nccl_launched}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
