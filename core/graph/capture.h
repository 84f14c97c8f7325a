/* capture.h: captured graphs (design decision 3): record one step through the op hook, transform
 * it with passes (DCE, CSE, constant folding, algebraic rewrites, elementwise fusion,
 * checkpointing), plan its memory into one arena and replay it without Lua in the loop.
 *
 * The graph is flat, as in ggml: nodes in execution order, each with value ids for its inputs and
 * outputs, so the planner, the DOT dump and the executor are linear scans. Values are either
 * external (tensors that existed outside the step's ops: parameters, inputs, constants made while
 * capturing; bound by reference) or produced by a node. View nodes (CT_OPF_VIEW) and in-place
 * nodes (CT_OPF_INPLACE_OUT, e.g. assign) alias their input 0's buffer.
 *
 * Invariants:
 *  - Node order is a valid execution order, and the order in which in-place writes happened:
 *    passes never move a read of a storage across a write to it (see ct_graph_epoch).
 *  - A value is produced by at most one live node; a dead node's outputs are unused.
 *  - Pinned values (the step's outputs and the gradients left in .grad) keep the storage of the
 *    tensor they had while capturing, so replay writes into the tensors the user holds; every
 *    other produced value lives in the planned arena.
 *  - Replay of the unoptimized graph on the CPU equals eager bit for bit (same forwards, same
 *    inputs); fused kernels compute each op with the op file's own expression, in its dtype.
 *
 * The public C API (lua/, viz/, lessons); the executor and the passes share the internals of
 * graph/capture_internal.h (struct ct_graph, nodes, values, fused kernels, the pass entry points).
 */
#ifndef CHALK_CAPTURE_H
#define CHALK_CAPTURE_H

#include "ops/optable.h"

typedef struct ct_graph ct_graph;

/* ---- capture and replay --------------------------------------------------------------------- */
/* Starts recording every op run from now on into a new graph. inputs[0..n) are the step's
   arguments (replay can copy new values into them). Only one capture at a time. */
ct_graph *ct_capture_begin(ct_tensor *const *inputs, int ninputs);
/* Stops recording: outputs become the graph's outputs (pinned); gradients left in .grad of
   tensors the step touched are pinned too. Returns 0, or -1 (the graph stays valid to free). */
int ct_capture_end(ct_graph *g, ct_tensor *const *outputs, int noutputs);
/* Stops recording after an error in the step; the graph is freed. */
void ct_capture_abort(ct_graph *g);
bool ct_capturing(void);
void ct_graph_free(ct_graph *g);

/* Runs the graph again with the current values of its inputs and parameters: plans memory
   (if not planned yet), then runs every node's forward into planned buffers. */
int ct_graph_replay(ct_graph *g);
int ct_graph_ninputs(const ct_graph *g);
ct_tensor *ct_graph_input(const ct_graph *g, int i); /* borrowed */
int ct_graph_noutputs(const ct_graph *g);
ct_tensor *ct_graph_output(const ct_graph *g, int i); /* new reference: the pinned output tensor */
ct_device ct_graph_device(const ct_graph *g);

/* ---- passes --------------------------------------------------------------------------------- */
typedef struct {
  char pass[24];
  int nodes_before, nodes_after;     /* live nodes, views included */
  int kernels_before, kernels_after; /* live nodes that run a kernel (not views) */
  double bytes_before, bytes_after;  /* bytes moved by all kernels (op cost estimates) */
  double flops_before, flops_after;
  int changes; /* rewrites made */
} ct_pass_report;

typedef struct {
  int segments;        /* checkpoint: number of segments (0: sqrt of the forward layers) */
  bool full_recompute; /* checkpoint: recompute from the start for every segment */
  int max_inputs;      /* fuse: most inputs of one fused kernel (0: 12) */
  bool no_reductions;  /* fuse: elementwise only (no row reductions inside kernels) */
} ct_pass_opts;

/* Runs one pass by name: "dce", "cse", "fold", "algebra", "fuse", "checkpoint". Invalidates the
   memory plan. */
int ct_graph_optimize(ct_graph *g, const char *pass, const ct_pass_opts *o, ct_pass_report *r);
/* The explanation the last run of pass wrote (what it changed and why; for "fuse", why each
   producer/consumer pair was or was not fused); "" when the pass has not run. */
const char *ct_graph_explain(const ct_graph *g, const char *pass);
/* Totals over live nodes (what a pass report compares). */
/* x with a K/M/G/T suffix (one decimal once scaled, none below 1000), then unit: "1.5" sep "M" unit;
   the capture's printout (sep "") and picture (sep " ") both use it. Returns buf. */
const char *ct_format_si(double x, const char *sep, const char *unit, char *buf, size_t n);
void ct_graph_totals(const ct_graph *g, int *nodes, int *kernels, double *bytes, double *flops);

/* ---- memory planning ------------------------------------------------------------------------ */
typedef enum { CT_PLAN_BESTFIT = 0, CT_PLAN_GREEDY_SIZE = 1, CT_PLAN_NAIVE = 2 } ct_plan_strategy;
typedef struct {
  ct_plan_strategy strategy; /* default best-fit in execution order */
  bool no_inplace;           /* forbid in-place reuse */
  bool keep_all;             /* every buffer lives to the end (what eager autograd keeps) */
} ct_plan_opts;
typedef struct {
  int64_t naive_bytes;     /* sum of every planned tensor's bytes (no reuse) */
  int64_t planned_bytes;   /* arena size: the planned peak */
  int64_t lower_bound;     /* most bytes live at one time (no packing can do better) */
  int64_t activation_peak; /* most bytes live at one time in buffers made by the forward (or
                              by recomputing it): what checkpointing trades for time */
  int64_t pinned_bytes;    /* outputs and .grad tensors, outside the arena */
  int64_t external_bytes;  /* parameters, inputs, optimizer state, constants (distinct storages) */
  int nbuffers;            /* tensors in the arena */
  int ninplace;            /* outputs that reuse their input's buffer */
  int ninplace_candidates; /* nodes whose op allows it (CT_OPF_INPLACE_OK) */
  ct_plan_strategy strategy;
} ct_plan_report;
int ct_graph_plan_memory(ct_graph *g, const ct_plan_opts *o, ct_plan_report *r);
/* Checks the current plan independently of the planner: no two buffers whose lifetimes overlap
   share a byte, every buffer lies inside the arena, aliases start inside their base. 0 or -1. */
int ct_graph_verify_plan(const ct_graph *g);
/* One arena buffer of the plan: [offset, offset+nbytes), live over node positions [first, last]. */
typedef struct {
  int64_t offset, nbytes;
  int first, last;
  int value;   /* the value that allocated it */
  int nvalues; /* values stored in it (in-place reuse makes several) */
} ct_plan_buffer;
int ct_graph_plan_nbuffers(const ct_graph *g);
int ct_graph_plan_buffer(const ct_graph *g, int i, ct_plan_buffer *b);
/* Live arena bytes while node position k runs (inputs and outputs of k both live); -1 if unplanned. */
int64_t ct_graph_plan_live_at(const ct_graph *g, int k);

/* ---- inspection (print, viz, lessons) ----------------------------------------------------- */
enum { CT_GOP_FUSED = CT_OP_COUNT, CT_GOP_ALIAS, CT_GOP_END };
typedef struct {
  int op;            /* ct_op, CT_GOP_FUSED or CT_GOP_ALIAS */
  const char *name;  /* op name ("fused" for kernels) */
  const char *label; /* "grad of h1" for nodes made by backward; kernel name for fused */
  int nin, nout;
  const int *in, *out; /* value ids */
  int group;           /* fused kernel index, -1 */
  int members;         /* ops a fused kernel stands for (1 otherwise) */
  bool backward, view, inplace;
  double flops, bytes;
  const ct_attrs *attrs; /* the op call's attributes (all zero for fused kernels); read only */
} ct_gnode_info;
typedef struct {
  ct_dtype dtype;
  int ndim;
  const int64_t *shape;
  const char *name; /* tensor name, or NULL */
  int producer;     /* node index, -1 for externals */
  bool external, constant, input, pinned, parameter;
  bool written;      /* written in place by the step (an optimizer's state); never constant */
  bool output;       /* a graph output or export */
  ct_tensor *tensor; /* externals: the tensor the value is bound to (borrowed), else NULL */
  int64_t nbytes;
} ct_gvalue_info;
/* Live nodes in order: index 0..ct_graph_nnodes-1 (dead nodes are skipped by compaction). */
int ct_graph_nnodes(const ct_graph *g);
int ct_graph_node(const ct_graph *g, int i, ct_gnode_info *info);
int ct_graph_nvalues(const ct_graph *g);
int ct_graph_value(const ct_graph *g, int v, ct_gvalue_info *info);
/* A short name for value v ("x", "W1", or "%12"), into buf. */
const char *ct_graph_value_name(const ct_graph *g, int v, char *buf, size_t n);
bool ct_graph_value_is_output(const ct_graph *g, int v);
/* The value id of the step's argument i (0 <= i < ct_graph_ninputs), -1 if none. */
int ct_graph_input_value(const ct_graph *g, int i);
/* Fused kernels made by the fuse pass (a fused node's group is its index). */
int ct_graph_nfused(const ct_graph *g);
/* Listing with one line per node: index, op, inputs, output shape, flops and bytes. */
size_t ct_graph_format(const ct_graph *g, char *buf, size_t n);
/* Generated source of the fused kernel of node i: lang "c" (the CPU loop) or "cuda". */
const char *ct_graph_source(const ct_graph *g, int i, const char *lang);

/* in-place assignment (ct_assign_) and checkpointing (ct_checkpoint) are rows of the op table:
   ops/optable.h, included above. */

/* ---- autotuning (autotune.c) --------------------------------------------------------------- */
/* Blocked matmul C = A B (f32 or f64, 2-D, CPU) with tiles bm x bn x bk: the kernel family tuned. */
ct_tensor *ct_matmul_tiled(ct_tensor *a, ct_tensor *b, int bm, int bn, int bk);
typedef struct {
  int bm, bn, bk;
  double us; /* best time of the configuration */
  double gflops;
} ct_tune_result;
/* Times every (bm, bn) in the lists at bk (repeats runs each, best kept) for A[m,k] B[k,n];
   results[i*nbn + j]. The best configuration is cached per (m, n, k, dtype) and returned in best. */
int ct_autotune_matmul(int64_t m, int64_t n, int64_t k, ct_dtype dt, const int *bms, int nbm, const int *bns, int nbn,
                       int bk, int repeats, ct_tune_result *results, ct_tune_result *best);
/* The cached best tiles for a shape, or false. */
bool ct_autotune_matmul_cached(int64_t m, int64_t n, int64_t k, ct_dtype dt, ct_tune_result *best);
/* Tunes the chunk size of every fused CPU kernel of g (times each candidate by replaying the
   kernel); writes up to max rows of (kernel, chunk, us) into rows. Returns rows written or -1. */
typedef struct {
  int kernel;
  int chunk;
  double us;
} ct_tune_chunk;
int ct_autotune_fused(ct_graph *g, const int *chunks, int nchunks, int repeats, ct_tune_chunk *rows, int max);

/* ---- CUDA replay (fuse_cuda.c) ------------------------------------------------------------- */
/* A private memory pool for CUDA Graphs, for the CUDA backend (kernels/) to provide: begin is
   called on the device before a graph is recorded and end after; scratch memory handed out in
   between must stay reserved for that graph until release(token) (the graph's blocks are baked
   into it). NULL (the default): no pool, so scratch taken while recording is not reserved, and a
   block the allocator later gives to another tensor could be overwritten by a later replay. */
extern void *(*ct_cuda_graph_pool_begin)(int device);
extern void (*ct_cuda_graph_pool_end)(int device, void *token);
extern void (*ct_cuda_graph_pool_release)(int device, void *token);
/* 1: replays as a CUDA Graph; -1: replays op by op (why says why); 0: not decided yet. launches
   counts CUDA Graph launches; compiles counts NVRTC compilations in the process. */
int ct_graph_cuda_status(const ct_graph *g, int *launches, int *compiles, const char **why);

#endif
