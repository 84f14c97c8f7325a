/* capture_internal.h: the graph's internals (struct ct_graph, nodes, values, fused kernels, the
 * passes' entry points) shared by core/graph/ and core/graph/passes/; lua/ and viz/ use the public
 * graph/capture.h only. */
#ifndef CHALK_CAPTURE_INTERNAL_H
#define CHALK_CAPTURE_INTERNAL_H

#include "graph/capture.h"

typedef struct {
  ct_dtype dtype;
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int64_t stride[CT_MAX_DIMS];
  int64_t offset;
  int producer;   /* node index, -1: external */
  ct_tensor *ext; /* externals and pinned values: a reference to the tensor */
  bool constant;  /* external made while capturing and never written: foldable */
  bool input;     /* an argument of the step */
  bool parameter; /* an external leaf that requires grad */
  bool pinned;    /* output or .grad: lives in ext's storage, not in the arena */
  bool written;   /* an external that an in-place node writes */
  char *name;
  /* planning and execution */
  int buffer;        /* plan buffer index, -1 */
  ct_tensor *rt;     /* runtime header used by replay */
  ct_storage *slice; /* its storage over the arena (owned) */
} ct_gvalue;

typedef struct ct_fused ct_fused;

typedef struct {
  int op;
  ct_attrs attrs;
  int nin, nout;
  int *in, *out;
  bool dead;
  bool backward; /* made by a gradient rule */
  char *label;
  int kernel;          /* CT_GOP_FUSED: index into g->kernels */
  int members;         /* ops it stands for */
  double flops, bytes; /* cost estimate */
  int segment;         /* checkpoint: forward segment (-1) */
} ct_gnode;

typedef struct {
  ct_tensor *leaf; /* reference */
  int value;
} ct_gexport;

struct ct_graph {
  ct_gvalue *v;
  int nv, capv;
  ct_gnode *n;
  int nn, capn;
  int *inputs, ninputs;
  int *outputs, noutputs;
  ct_gexport *exports;
  int nexports;
  ct_device device;
  /* capture state */
  bool capturing;
  uint64_t first_tensor_id;
  void *map;        /* tensor pointer -> value, storage pointer -> value (capture.c) */
  ct_tensor **seen; /* references held while capturing */
  int nseen, capseen;
  /* passes */
  char *explain[8]; /* per pass (see ct_pass_index) */
  ct_fused **kernels;
  int nkernels;
  /* plan */
  bool planned;
  ct_plan_opts plan_opts;
  ct_plan_report plan;
  ct_plan_buffer *buffers;
  int nbuffers;
  int *pos_of_node; /* node index -> position among live nodes */
  /* execution */
  bool instantiated;
  ct_storage *arena;
  void *device_state; /* fuse_cuda.c: compiled kernels, CUDA graph */
};

/* capture.c */
int ct_graph_add_value(ct_graph *g, const ct_meta *m); /* new produced value; -1 on OOM */
int ct_graph_add_node(ct_graph *g, int op, const ct_attrs *a, const int *in, int nin, const int *out, int nout);
/* Inserts an empty node at position pos (shifting later nodes); returns pos or -1. Node indices
   >= pos change: callers re-read them. */
int ct_graph_insert_node(ct_graph *g, int pos, int op, const ct_attrs *a, const int *in, int nin, const int *out,
                         int nout);
void ct_graph_compact(ct_graph *g);    /* drops dead nodes */
void ct_graph_invalidate(ct_graph *g); /* frees the plan and runtime headers */
int ct_graph_instantiate(ct_graph *g); /* plans (if needed) and makes the runtime headers */
/* A stack header for value v with its captured meta (storage NULL), for shape rules and costs. */
void ct_graph_header(const ct_graph *g, int v, ct_tensor *t);
void ct_graph_node_cost(ct_graph *g, int i);
/* Root buffer value of v: follows view/alias/in-place nodes to the value that owns storage. */
int ct_graph_root(const ct_graph *g, int v);
/* Storage key of v for write hazards: an external's storage pointer, else its root value. */
const void *ct_graph_storage_key(const ct_graph *g, int v);
/* Number of in-place writes to v's storage among nodes before node index i. */
int ct_graph_epoch(const ct_graph *g, int v, int i);
/* Consumers: counts[v] = live nodes reading v; also graph outputs/exports count as uses. */
int *ct_graph_use_counts(const ct_graph *g);
void ct_graph_set_explain(ct_graph *g, const char *pass, char *text); /* takes ownership */
/* Every live node's input `from` becomes `to`. */
void ct_graph_replace_uses(ct_graph *g, int from, int to);
bool ct_gop_is_view(int op);    /* view ops and aliases: no kernel */
bool ct_gop_is_inplace(int op); /* writes into input 0 */
const char *ct_gop_name(int op);

/* Growable text for explanations (capture.c). */
typedef struct {
  char *s;
  size_t len, cap;
} ct_text;
void ct_text_printf(ct_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A fused kernel: a program over registers (inputs first, then one per instruction), run over
   the iteration shape: element by element (flat) or row by row when it holds row reductions. */
typedef struct {
  int op;  /* ct_op of the member it computes */
  int dst; /* register */
  int src[3], nsrc;
  ct_dtype dt; /* dtype of the (first value) sources */
  ct_dtype out_dt;
  ct_attrs attrs;
  bool row;    /* one element per row */
  bool reduce; /* a reduction over the row */
  int value;   /* the graph value it computes */
} ct_finstr;

struct ct_fused {
  int id;
  int nin, nout, ninstr, nregs;
  ct_dtype *reg_dt;
  bool *reg_row;
  ct_finstr *instr;
  int *out_reg; /* [nout] */
  bool rowmode;
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int chunk; /* flat kernels: elements per step (autotuned) */
  char name[96];
  char *signature; /* ops and dtypes: the autotuning cache key */
  char *c_src, *cuda_src;
  void *scratch; /* CPU registers, nregs * chunk * 8 bytes */
  int64_t scratch_elems;
  void *cuda; /* fuse_cuda.c */
};

/* fuse.c / fuse_cpu.c */
int ct_pass_fuse(ct_graph *g, const ct_pass_opts *o, ct_text *why);
int ct_fused_run_cpu(ct_graph *g, ct_gnode *n, ct_fused *k);
void ct_fused_free(ct_fused *k);
void ct_fused_cost(const ct_graph *g, const ct_gnode *n, double *flops, double *bytes);
const char *ct_fused_source(ct_graph *g, int kernel, const char *lang);
int ct_fused_chunk(const ct_fused *k);
void ct_fused_set_chunk(ct_fused *k, int chunk);
bool ct_fused_is_flat(const ct_fused *k);

/* fuse_cuda.c: NVRTC kernels and CUDA Graph replay; -1 with the error set when unavailable. */
int ct_fused_run_cuda(ct_graph *g, ct_gnode *n, ct_fused *k);
int ct_graph_replay_cuda(ct_graph *g, int (*run_nodes)(ct_graph *g));
void ct_graph_cuda_free(ct_graph *g);

/* passes */
int ct_pass_dce(ct_graph *g, ct_text *why);
int ct_pass_cse(ct_graph *g, ct_text *why);
int ct_pass_fold(ct_graph *g, ct_text *why);
int ct_pass_algebra(ct_graph *g, ct_text *why);
int ct_pass_checkpoint(ct_graph *g, const ct_pass_opts *o, ct_text *why);

/* plan.c */
void ct_plan_free(ct_graph *g);

/* autotune.c: cached chunk for a fused kernel signature. */
int ct_autotune_fused_lookup(const char *signature, int64_t numel);

#endif
