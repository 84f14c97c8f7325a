/* fuse_cuda.c: the GPU side of captured graphs, without a CUDA build dependency in core: the
 * CUDA driver (libcuda) and NVRTC are opened with dlopen at first use. Fused kernels' CUDA C
 * (fuse.c) is compiled with NVRTC for the device's architecture, loaded as a module and cached
 * by source text for the process; replay runs the graph once on the backend's stream (warm-up:
 * cuBLAS handles, kernel compiles), then captures the same run into a CUDA Graph and launches
 * that from then on.
 *
 * Invariants: the backend's stream comes from kernels/ through a weak reference (ct_cu_stream),
 * so this file links without kernels/ and answers "no CUDA" there; every driver or NVRTC failure
 * becomes a ct_errorf message naming the call; a graph whose capture fails (an op synchronizes,
 * a random op needs a fresh draw per replay) replays op by op on the stream and says why
 * (ct_graph_cuda_status); kernels were generated from the captured layouts, and launch checks
 * that the runtime tensors still have them.
 * Scratch memory an op takes from the backend's caching allocator while a graph is recorded is
 * baked into the graph too: the CUDA backend gives each graph a private pool for it
 * (ct_cuda_graph_pool_begin/end/release, capture.h; kernels/alloc_cuda.c), so no later tensor
 * can land in memory a replay writes (tests/capture/graph_pool.c checks it on a GPU).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/capture_internal.h"
#include "obs/events.h"

struct CUstream_st;
extern struct CUstream_st *ct_cu_stream(int index) __attribute__((weak)); /* kernels/register.c */

typedef int CUresult;
typedef void *CUmodule, *CUfunction, *CUgraph, *CUgraphExec;
typedef struct CUstream_st *CUstream;
typedef int nvrtcResult;
typedef void *nvrtcProgram;

static struct {
  bool tried, ok;
  char why[300];
  CUresult (*cuInit)(unsigned);
  CUresult (*cuCtxGetDevice)(int *);
  CUresult (*cuDeviceGetAttribute)(int *, int, int);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                             void **, void **);
  CUresult (*cuStreamBeginCapture)(CUstream, int);
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *);
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
  CUresult (*cuGraphDestroy)(CUgraph);
  CUresult (*cuGraphExecDestroy)(CUgraphExec);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                    const char *const *);
  nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*nvrtcGetPTXSize)(nvrtcProgram, size_t *);
  nvrtcResult (*nvrtcGetPTX)(nvrtcProgram, char *);
  nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
  nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char *);
  nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *);
  const char *(*nvrtcGetErrorString)(nvrtcResult);
} cu;

static void *open_first(const char *const *names) {
  for (int i = 0; names[i]; i++) {
    void *h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (h) return h;
  }
  return NULL;
}

#define SYM(lib, field, name)                                                                      \
  do {                                                                                             \
    *(void **)&cu.field = dlsym(lib, name);                                                        \
    if (!cu.field) {                                                                               \
      snprintf(cu.why, sizeof cu.why, "symbol %s not found", name);                               \
      return false;                                                                                \
    }                                                                                              \
  } while (0)

static bool load_libs(void) {
  if (cu.tried) return cu.ok;
  cu.tried = true;
  if (!ct_cu_stream) {
    snprintf(cu.why, sizeof cu.why, "this libchalk was built without the CUDA backend");
    return false;
  }
  static const char *const cuda_names[] = {"libcuda.so.1", "libcuda.so", NULL};
  static const char *const nvrtc_names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
                                            "/usr/local/cuda/lib64/libnvrtc.so", NULL};
  void *lc = open_first(cuda_names), *ln = open_first(nvrtc_names);
  if (!lc || !ln) {
    snprintf(cu.why, sizeof cu.why, "cannot open %s (%s)", !lc ? "libcuda.so.1" : "libnvrtc.so", dlerror());
    return false;
  }
  SYM(lc, cuInit, "cuInit");
  SYM(lc, cuCtxGetDevice, "cuCtxGetDevice");
  SYM(lc, cuDeviceGetAttribute, "cuDeviceGetAttribute");
  SYM(lc, cuModuleLoadData, "cuModuleLoadData");
  SYM(lc, cuModuleGetFunction, "cuModuleGetFunction");
  SYM(lc, cuLaunchKernel, "cuLaunchKernel");
  *(void **)&cu.cuStreamBeginCapture = dlsym(lc, "cuStreamBeginCapture_v2");
  if (!cu.cuStreamBeginCapture) SYM(lc, cuStreamBeginCapture, "cuStreamBeginCapture");
  SYM(lc, cuStreamEndCapture, "cuStreamEndCapture");
  SYM(lc, cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags");
  SYM(lc, cuGraphLaunch, "cuGraphLaunch");
  SYM(lc, cuGraphDestroy, "cuGraphDestroy");
  SYM(lc, cuGraphExecDestroy, "cuGraphExecDestroy");
  SYM(lc, cuStreamSynchronize, "cuStreamSynchronize");
  SYM(lc, cuGetErrorString, "cuGetErrorString");
  SYM(ln, nvrtcCreateProgram, "nvrtcCreateProgram");
  SYM(ln, nvrtcCompileProgram, "nvrtcCompileProgram");
  SYM(ln, nvrtcGetPTXSize, "nvrtcGetPTXSize");
  SYM(ln, nvrtcGetPTX, "nvrtcGetPTX");
  SYM(ln, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
  SYM(ln, nvrtcGetProgramLog, "nvrtcGetProgramLog");
  SYM(ln, nvrtcDestroyProgram, "nvrtcDestroyProgram");
  SYM(ln, nvrtcGetErrorString, "nvrtcGetErrorString");
  if (cu.cuInit(0)) {
    snprintf(cu.why, sizeof cu.why, "cuInit failed");
    return false;
  }
  cu.ok = true;
  return true;
}

static int cu_check(CUresult r, const char *what) {
  if (!r) return 0;
  const char *s = NULL;
  if (cu.cuGetErrorString) cu.cuGetErrorString(r, &s);
  return ct_errorf("%s: CUDA driver error %d (%s)", what, r, s ? s : "?");
}

static int require(void) {
  if (load_libs()) return 0;
  return ct_errorf("fused CUDA kernels need the CUDA driver and NVRTC: %s", cu.why);
}

/* ---- compiled kernels, cached by source for the process ------------------------------------ */

typedef struct compiled {
  char *src;
  char name[32];
  int device;
  CUmodule mod;
  CUfunction fn;
  struct compiled *next;
} compiled;
static compiled *cache;
static int ncompiles;

static int compile(const char *src, const char *name, int device, CUfunction *fn) {
  for (compiled *c = cache; c; c = c->next)
    if (c->device == device && !strcmp(c->name, name) && !strcmp(c->src, src)) {
      *fn = c->fn;
      return 0;
    }
  int major = 0, minor = 0, dev = 0;
  if (cu_check(cu.cuCtxGetDevice(&dev), "cuCtxGetDevice") ||
      cu_check(cu.cuDeviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute") ||
      cu_check(cu.cuDeviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute"))
    return -1;
  char arch[48];
  snprintf(arch, sizeof arch, "--gpu-architecture=compute_%d%d", major, minor);
  const char *opts[] = {arch, "--std=c++17"};
  nvrtcProgram prog;
  nvrtcResult r = cu.nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL);
  if (r) return ct_errorf("nvrtcCreateProgram: %s", cu.nvrtcGetErrorString(r));
  r = cu.nvrtcCompileProgram(prog, 2, opts);
  if (r) {
    size_t n = 0;
    cu.nvrtcGetProgramLogSize(prog, &n);
    char *log = malloc(n + 1);
    if (log) {
      cu.nvrtcGetProgramLog(prog, log);
      log[n] = '\0';
    }
    ct_errorf("NVRTC could not compile %s: %s\n%s", name, cu.nvrtcGetErrorString(r), log ? log : "");
    free(log);
    cu.nvrtcDestroyProgram(&prog);
    return -1;
  }
  size_t n = 0;
  cu.nvrtcGetPTXSize(prog, &n);
  char *ptx = malloc(n + 1);
  compiled *c = calloc(1, sizeof *c);
  char *copy = strdup(src);
  if (!ptx || !c || !copy) {
    free(ptx), free(c), free(copy);
    cu.nvrtcDestroyProgram(&prog);
    return ct_errorf("NVRTC: out of memory");
  }
  cu.nvrtcGetPTX(prog, ptx);
  cu.nvrtcDestroyProgram(&prog);
  int rc = cu_check(cu.cuModuleLoadData(&c->mod, ptx), "cuModuleLoadData");
  free(ptx);
  if (!rc) rc = cu_check(cu.cuModuleGetFunction(&c->fn, c->mod, name), "cuModuleGetFunction");
  if (rc) {
    free(c), free(copy);
    return -1;
  }
  c->src = copy;
  snprintf(c->name, sizeof c->name, "%s", name);
  c->device = device;
  c->next = cache;
  cache = c;
  ncompiles++;
  *fn = c->fn;
  return 0;
}

typedef struct {
  CUfunction fn;
} kernel_state;

/* The runtime layout of value v must be the captured one (the source bakes it in). */
static bool layout_matches(const ct_gvalue *x) {
  const ct_tensor *t = x->rt;
  if (!t || t->ndim != x->ndim || t->offset != x->offset) return false;
  for (int d = 0; d < x->ndim; d++)
    if (t->shape[d] != x->shape[d] || (x->shape[d] != 1 && t->stride[d] != x->stride[d])) return false;
  return true;
}

int ct_fused_run_cuda(ct_graph *g, ct_gnode *n, ct_fused *k) {
  if (require()) return -1;
  if (k->rowmode) return ct_errorf("fused kernel %s: row kernels run on the CPU only", k->name);
  kernel_state *ks = k->cuda;
  int dev = g->device.index;
  if (!ks) {
    const char *src = ct_fused_source(g, k->id, "cuda");
    if (!src) return -1;
    ks = calloc(1, sizeof *ks);
    if (!ks) return ct_errorf("fused kernel: out of memory");
    char name[32];
    snprintf(name, sizeof name, "k%d", k->id);
    if (compile(src, name, dev, &ks->fn)) {
      free(ks);
      return -1;
    }
    k->cuda = ks;
  }
  void *ptrs[128];
  void *params[128];
  int np = 0;
  if (n->nin + n->nout > 128) return ct_errorf("fused kernel %s: too many operands", k->name);
  for (int q = 0; q < n->nin + n->nout; q++) {
    int v = q < n->nin ? n->in[q] : n->out[q - n->nin];
    const ct_gvalue *x = &g->v[v];
    if (q < n->nin && !layout_matches(x))
      return ct_errorf("fused kernel %s: input %d changed layout since the kernel was generated", k->name, q + 1);
    /* inputs are addressed from the storage start (offsets are baked in); outputs are contiguous */
    ptrs[np] = q < n->nin ? x->rt->storage->data : ct_data_ptr(x->rt);
    params[np] = &ptrs[np];
    np++;
  }
  int64_t numel = 1;
  for (int d = 0; d < k->ndim; d++) numel *= k->shape[d];
  if (!numel) return 0;
  unsigned block = 256, grid = (unsigned)((numel + block - 1) / block);
  CUstream s = ct_cu_stream(dev);
  if (!s) return -1;
  return cu_check(cu.cuLaunchKernel(ks->fn, grid, 1, 1, block, 1, 1, 0, s, params, NULL), k->name);
}

/* ---- CUDA Graph replay ------------------------------------------------------------------------- */

void *(*ct_cuda_graph_pool_begin)(int device);
void (*ct_cuda_graph_pool_end)(int device, void *token);
void (*ct_cuda_graph_pool_release)(int device, void *token);

typedef struct {
  CUgraphExec exec;
  bool warmed, failed;
  int launches;
  int device;
  void *pool;    /* the backend's private pool token, or NULL */
  char why[400]; /* why the graph replays op by op */
} graph_state;

void ct_graph_cuda_free(ct_graph *g) {
  graph_state *st = g->device_state;
  if (st && st->exec && cu.cuGraphExecDestroy) cu.cuGraphExecDestroy(st->exec);
  if (st && st->pool && ct_cuda_graph_pool_release) ct_cuda_graph_pool_release(st->device, st->pool);
  free(st);
  g->device_state = NULL;
  for (int i = 0; i < g->nkernels; i++) {
    free(g->kernels[i]->cuda); /* the module stays in the process cache */
    g->kernels[i]->cuda = NULL;
  }
}

int ct_graph_replay_cuda(ct_graph *g, int (*run_nodes)(ct_graph *g)) {
  graph_state *st = g->device_state;
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st) return ct_errorf("replay: out of memory");
    g->device_state = st;
  }
  int dev = g->device.index;
  if (st->exec) {
    CUstream s = ct_cu_stream(dev);
    if (!s) return -1;
    if (cu_check(cu.cuGraphLaunch(st->exec, s), "cuGraphLaunch")) return -1;
    st->launches++;
    return 0;
  }
  if (run_nodes(g)) return -1; /* op by op; the first time this is the warm-up */
  if (st->failed) return 0;
  if (!load_libs()) {
    st->failed = true;
    snprintf(st->why, sizeof st->why, "%s", cu.why);
    return 0;
  }
  if (!st->warmed) {
    st->warmed = true;
    return 0;
  }
  bool random = false;
  for (int i = 0; i < g->nn; i++) random |= !g->n[i].dead && g->n[i].op == CT_OP_dropout_mask;
  if (random) { /* a CUDA Graph would repeat the same dropout mask every launch */
    st->failed = true;
    snprintf(st->why, sizeof st->why, "dropout needs a fresh random draw per replay");
    return 0;
  }
  /* this replay's work was done above; now record the same run into a CUDA Graph (capturing
     executes nothing), which the next replays launch */
  CUstream s = ct_cu_stream(dev);
  if (!s) return -1;
  if (cu_check(cu.cuStreamSynchronize(s), "cuStreamSynchronize")) return -1;
  bool ev = ct_events_enabled;
  ct_events_enabled = false;
  CUgraph graph = NULL;
  st->device = dev;
  if (ct_cuda_graph_pool_begin) st->pool = ct_cuda_graph_pool_begin(dev);
  int rc = cu_check(cu.cuStreamBeginCapture(s, 2 /* relaxed */), "cuStreamBeginCapture");
  if (!rc) {
    int r1 = run_nodes(g);
    CUresult r2 = cu.cuStreamEndCapture(s, &graph);
    rc = r1 ? -1 : cu_check(r2, "cuStreamEndCapture");
  }
  if (ct_cuda_graph_pool_end) ct_cuda_graph_pool_end(dev, st->pool);
  ct_events_enabled = ev;
  CUgraphExec exec = NULL;
  if (!rc && graph) rc = cu_check(cu.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiate");
  if (graph) cu.cuGraphDestroy(graph);
  if (rc) { /* this graph replays op by op from now on */
    if (st->pool && ct_cuda_graph_pool_release) ct_cuda_graph_pool_release(dev, st->pool);
    st->pool = NULL;
    st->failed = true;
    snprintf(st->why, sizeof st->why, "capture failed: %s", ct_last_error());
    ct_clear_error();
    return 0;
  }
  st->exec = exec;
  return 0;
}

int ct_graph_cuda_status(const ct_graph *g, int *launches, int *compiles, const char **why) {
  const graph_state *st = g->device_state;
  if (launches) *launches = st ? st->launches : 0;
  if (compiles) *compiles = ncompiles;
  if (why) *why = st && st->failed ? st->why : NULL;
  return st && st->exec ? 1 : st && st->failed ? -1 : 0;
}
