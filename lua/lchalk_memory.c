/* lchalk_memory.c: memory as Lua sees it: chalk.memory_stats(), categories (chalk.tag, x:tag,
 * chalk.set_default_category), and the GC pressure that keeps a REPL loop from growing.
 *
 * Lua sees a tensor as a userdata of a few bytes and cannot know the megabytes behind it, so a
 * loop making tensors would otherwise run far ahead of the collector. Every tensor the binding
 * pushes calls lchalk_gc_account, which paces the collector by tensor bytes:
 *  - every GC_STEP_BYTES of tensor allocations, an incremental step (LUA_GCSTEP) whose debt
 *    spreads one collector cycle over GC_CYCLE_BYTES of tensors, so garbage tensors are found at
 *    the rate they are made without a whole cycle per big tensor;
 *  - once the tensor bytes allocated since the last full collection pass the larger of
 *    GC_FULL_EVERY and twice what was live after it, a full collection. Incremental sweeping
 *    frees tensors interleaved with new allocations, which fragments the C heap (measured: a
 *    loop of 100x100 tensors grew the glibc arena by 125 MiB with steps alone, 8 MiB with both);
 *    a full collection frees them together and the heap stays flat.
 * An out-of-memory error from the core gets one full collection and a retry (LCHALK_RETURN).
 *
 * Lua's own small blocks (a tensor's userdata box above all) come from the core's per-thread
 * small-block lists (ct_small_alloc) once chalk is opened in a state whose allocator is
 * lauxlib's realloc/free one: the collector frees boxes in bursts too, and glibc's bins made
 * malloc a tenth of a loop of small ops. Every block either allocator hands out is malloc'd, so
 * blocks made before the switch are freed correctly after it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lchalk_internal.h"
#include "obs/events.h"

#define GC_STEP_BYTES ((int64_t)1 << 20)
#define GC_FULL_EVERY ((int64_t)64 << 20)
/* Tensor bytes per collector cycle of the steps. A step's debt was once the tensor's own kilobytes:
   a 3 MiB tensor then cost a whole cycle over the Lua heap (about 1 MiB with chalk's modules,
   0.17 ms), which made every op of an MLP step on an H100 0.2 ms of host time. Now the debt is
   scaled so that one cycle's work is spread over GC_CYCLE_BYTES of tensors (about 10 us a 3 MiB
   tensor), which keeps garbage tensors near that many bytes. */
#define GC_CYCLE_BYTES ((int64_t)16 << 20)

static int64_t last_step, last_full;     /* allocated_total at the last step / full collection */
static int64_t full_after = GC_FULL_EVERY; /* bytes allocated between full collections */

static int64_t live_bytes(const ct_mem_stats *s) {
  int64_t live = 0;
  for (int d = 0; d < CT_NDEVTYPES; d++)
    for (int c = 0; c < CT_NCATS; c++) live += s->live[d][c];
  return live;
}

/* Paced on the bytes every context allocated (one Lua state, one collector, whichever worker runs);
   the live bytes after a full collection are the current context's. */
void lchalk_gc_account(lua_State *L) {
  int64_t total = ct_mem_allocated_total();
  int64_t fresh = total - last_step;
  if (fresh < GC_STEP_BYTES) return;
  last_step = total;
  if (total - last_full > full_after) {
    lua_gc(L, LUA_GCCOLLECT);
    ct_mem_stats s;
    ct_mem_get(&s);
    last_full = s.allocated_total;
    int64_t live = live_bytes(&s);
    full_after = live * 2 > GC_FULL_EVERY ? live * 2 : GC_FULL_EVERY;
  } else {
    /* debt for one collector cycle (about the Lua heap's size) per GC_CYCLE_BYTES of tensors; while
       the event log records (a profile, a memory timeline), the tensor's own kilobytes, so garbage is
       found at once and a measured peak is what the program holds, the same on every run */
    int64_t heap_kb = lua_gc(L, LUA_GCCOUNT, 0);
    int64_t kb = ct_events_on() ? fresh >> 10 : (fresh >> 10) * heap_kb / (GC_CYCLE_BYTES >> 10);
    lua_gc(L, LUA_GCSTEP, kb < 1 ? 1 : kb > INT_MAX ? INT_MAX : (int)kb);
  }
}

/* A lua_Alloc over ct_small_alloc/ct_small_free for blocks up to 1 KiB, realloc/free above. */
static void *small_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  enum { SMALL = 1024 };
  if (nsize == 0) {
    if (ptr) ct_small_free(ptr, osize);
    return NULL;
  }
  if (!ptr) return nsize <= SMALL ? ct_small_alloc(nsize) : malloc(nsize);
  if (osize > SMALL && nsize > SMALL) return realloc(ptr, nsize);
  void *p = nsize <= SMALL ? ct_small_alloc(nsize) : malloc(nsize);
  if (!p) return nsize <= osize ? ptr : NULL; /* Lua relies on a shrink never failing */
  memcpy(p, ptr, osize < nsize ? osize : nsize);
  ct_small_free(ptr, osize);
  return p;
}

static lua_Alloc std_alloc; /* lauxlib's, the same for every state luaL_newstate makes */
static void *std_ud;

/* __gc of a sentinel made after the switch: hands the state back to lauxlib's allocator. When
   chalk is a module (chalk.so), lua_close unloads it while finalizing (package's CLIBS), then
   frees the remaining objects; the sentinel, marked for finalization after CLIBS, runs first. */
static int restore_alloc(lua_State *L) {
  lua_setallocf(L, std_alloc, std_ud);
  return 0;
}

void lchalk_use_small_alloc(lua_State *L) {
  void *ud;
  lua_Alloc current = lua_getallocf(L, &ud);
  if (current == small_lua_alloc) return;
  if (!std_alloc) { /* lauxlib's allocator is static: a throwaway state shows which it is */
    lua_State *probe = luaL_newstate();
    if (!probe) return;
    std_alloc = lua_getallocf(probe, &std_ud);
    lua_close(probe);
  }
  if (current != std_alloc || ud != std_ud) return; /* an embedder's allocator: leave it */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, restore_alloc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "chalk.alloc_sentinel"); /* lives until lua_close */
  lua_setallocf(L, small_lua_alloc, NULL);
}

bool lchalk_collect_on_oom(lua_State *L) {
  if (!strstr(ct_last_error(), "out of memory")) return false;
  lua_gc(L, LUA_GCCOLLECT);
  return true;
}

static void push_categories(lua_State *L, const int64_t *live) {
  lua_createtable(L, 0, CT_NCATS + 2);
  for (int c = 0; c < CT_NCATS; c++) {
    lua_pushinteger(L, (lua_Integer)live[c]);
    lua_setfield(L, -2, ct_category_name((ct_category)c));
  }
}

/* devices = {cpu = {<categories>, peak = bytes, allocated = bytes}, ["cuda:0"] = {...}, ...}:
 * every device index the context ever allocated on (the cpu always). */
static void push_devices(lua_State *L, const ct_ctx *c) {
  lua_newtable(L);
  for (int i = -1; i < CT_CTX_MAX_CUDA; i++) {
    ct_device d = i < 0 ? ct_cpu() : (ct_device){CT_CUDA, i};
    ct_mem_device_stats m;
    if (ct_ctx_mem_device(c, d, &m) || (i >= 0 && m.allocated == 0)) continue;
    push_categories(L, m.live);
    lua_pushinteger(L, (lua_Integer)m.peak);
    lua_setfield(L, -2, "peak");
    lua_pushinteger(L, (lua_Integer)m.allocated);
    lua_setfield(L, -2, "allocated");
    char name[24];
    lua_setfield(L, -2, ct_device_str(d, name, sizeof name));
  }
}

/* chalk.memory_stats() (the current context's) and ctx:memory_stats(): {cpu = {activation =
 * bytes, parameter = ..., gradient = ..., ["optimizer state"] = ..., temporary = ..., input = ...},
 * cuda = {...} (all CUDA devices), peak = {cpu = bytes, cuda = bytes}, devices = {cpu = ...,
 * ["cuda:0"] = ...} (per device index, with peak and allocated), live_tensors = n, live_nodes = n,
 * allocated_total = bytes}; the last three are the whole process's. */
void lchalk_push_memory_stats(lua_State *L, ct_ctx *ctx) {
  ct_mem_stats s, all;
  ct_ctx_mem_get(ctx, &s);
  ct_mem_get(&all);
  s.live_tensors = all.live_tensors;
  s.live_nodes = all.live_nodes;
  s.allocated_total = all.allocated_total;
  static const char *const devices[CT_NDEVTYPES] = {[CT_CPU] = "cpu", [CT_CUDA] = "cuda"};
  lua_createtable(L, 0, CT_NDEVTYPES + 5);
  lua_createtable(L, 0, CT_NDEVTYPES);
  for (int d = 0; d < CT_NDEVTYPES; d++) {
    lua_createtable(L, 0, CT_NCATS);
    for (int c = 0; c < CT_NCATS; c++) {
      lua_pushinteger(L, (lua_Integer)s.live[d][c]);
      lua_setfield(L, -2, ct_category_name((ct_category)c));
    }
    lua_setfield(L, -3, devices[d]);
    lua_pushinteger(L, (lua_Integer)s.peak[d]);
    lua_setfield(L, -2, devices[d]);
  }
  lua_setfield(L, -2, "peak");
  lua_pushinteger(L, (lua_Integer)s.live_tensors);
  lua_setfield(L, -2, "live_tensors");
  lua_pushinteger(L, (lua_Integer)s.live_nodes);
  lua_setfield(L, -2, "live_nodes");
  lua_pushinteger(L, (lua_Integer)s.allocated_total);
  lua_setfield(L, -2, "allocated_total");
  push_devices(L, ctx);
  lua_setfield(L, -2, "devices");
}

static int l_memory_stats(lua_State *L) {
  lchalk_push_memory_stats(L, ct_ctx_current());
  return 1;
}

/* chalk.reset_peak_memory(): peaks restart from the bytes live now. */
static int l_reset_peak_memory(lua_State *L) {
  (void)L;
  ct_mem_reset_peak();
  return 0;
}

static ct_category check_category(lua_State *L, int idx) {
  ct_category c;
  if (ct_category_from_name(luaL_checkstring(L, idx), &c)) lchalk_error(L);
  return c;
}

/* chalk.tag(x, "parameter") or x:tag("parameter"): the memory category of x's storage; returns x. */
static int l_tag(lua_State *L) {
  ct_tensor *t = lchalk_checktensor(L, 1);
  ct_set_category(t, check_category(L, 2));
  lua_settop(L, 1);
  return 1;
}

/* x:category(): the memory category of x's storage. */
static int m_category(lua_State *L) {
  lua_pushstring(L, ct_category_name(lchalk_checktensor(L, 1)->storage->category));
  return 1;
}

/* chalk.set_default_category(name): the category of storages made from now on; returns the
 * previous one (chalk.with_category, in chalk/core.lua, restores it). */
static int l_set_default_category(lua_State *L) {
  ct_category old = ct_set_default_category(check_category(L, 1));
  lua_pushstring(L, ct_category_name(old));
  return 1;
}

/* chalk.set_memory_limit(bytes | nil): the largest single host allocation (nil: back to the
 * default, CHALK_MAX_ALLOC or half the RAM); returns the previous limit. chalk.memory_limit(). */
static int l_set_memory_limit(lua_State *L) {
  lua_Integer b = lua_isnoneornil(L, 1) ? 0 : luaL_checkinteger(L, 1);
  if (b < 0 || (b == 0 && !lua_isnoneornil(L, 1)))
    return luaL_error(L, "set_memory_limit: bytes must be positive (nil restores the default), got %I", b);
  lua_pushinteger(L, (lua_Integer)ct_set_memory_limit((int64_t)b));
  return 1;
}

static int l_memory_limit(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_memory_limit());
  return 1;
}

void lchalk_open_memory(lua_State *L, int chalk, int methods, int meta) {
  (void)meta;
  last_step = last_full = ct_mem_allocated_total();
  static const luaL_Reg fns[] = {{"memory_stats", l_memory_stats},
                                 {"reset_peak_memory", l_reset_peak_memory},
                                 {"tag", l_tag},
                                 {"set_default_category", l_set_default_category},
                                 {"set_memory_limit", l_set_memory_limit},
                                 {"memory_limit", l_memory_limit},
                                 {NULL, NULL}};
  lchalk_register(L, chalk, fns);
  static const luaL_Reg ms[] = {{"tag", l_tag}, {"category", m_category}, {NULL, NULL}};
  lchalk_register(L, methods, ms);
}
