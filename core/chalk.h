/* chalk.h: the public C API of libchalk (tensors, ops, autograd, memory, events, RNG, contexts).
 *
 * Conventions (read these once, they hold everywhere):
 *  - Every function returning ct_tensor * returns a NEW reference (the caller releases it with
 *    ct_release), or NULL on error with a message in ct_last_error(). Nothing aborts on user input.
 *  - Functions returning int return 0 on success, -1 on error (message in ct_last_error()).
 *  - Dimensions in this C API are 0-based; negative dims count from the end (-1 is the last).
 *  - Index VALUES stored in tensors (gather, index_select, embedding, argmax, class targets)
 *    are 1-based as in Lua/Torch7, negative counting from the end; 0 is out of range.
 *  - Ops record an autograd node when grad mode is on and an input requires grad.
 */
#ifndef CHALK_H
#define CHALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_MAX_DIMS 8
#define CT_VERSION "0.1.0"

typedef enum {
  CT_F32, CT_F64, CT_F16, CT_BF16, CT_I32, CT_I64, CT_I8, CT_BOOL, CT_NDTYPES
} ct_dtype;

typedef enum { CT_CPU = 0, CT_CUDA = 1, CT_NDEVTYPES } ct_devtype;

typedef struct {
  ct_devtype type;
  int index;
} ct_device;

/* Memory categories, as in PyTorch's memory profiler (design decision 5). */
typedef enum {
  CT_CAT_ACTIVATION = 0, /* default for op outputs */
  CT_CAT_PARAMETER,
  CT_CAT_GRADIENT,
  CT_CAT_OPTIMIZER,
  CT_CAT_TEMPORARY,
  CT_CAT_INPUT,
  CT_CAT_KV_CACHE, /* a serving engine's key/value cache (lesson 13) */
  CT_CAT_COMM_BUFFER, /* buffers of collectives: gathered parameters, reduce-scatter inputs (lesson 11) */
  CT_NCATS
} ct_category;

typedef struct ct_ctx ct_ctx;

typedef struct ct_storage {
  int refcount;
  ct_category category;
  void *data;
  size_t nbytes;
  ct_device device;
  uint64_t id;
  ct_ctx *ctx; /* the context its bytes are charged to (current when allocated) */
  uint32_t version; /* bumped by every in-place write, so shared by views and detach() (autograd.c) */
} ct_storage;

typedef struct ct_node ct_node;

typedef struct ct_tensor {
  int refcount;
  ct_storage *storage;
  ct_dtype dtype;
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int64_t stride[CT_MAX_DIMS]; /* in elements */
  int64_t offset;              /* in elements */
  bool requires_grad;
  bool retains_grad;           /* keep .grad on a non-leaf after backward */
  struct ct_tensor *grad;      /* accumulated gradient (leaves, or retains_grad) */
  ct_node *grad_fn;            /* node that produced this tensor; NULL for leaves */
  char *name;                  /* user name shown in pictures, or NULL */
  uint64_t id;
} ct_tensor;

/* ---- errors ------------------------------------------------------------------------------ */
const char *ct_last_error(void);
void ct_clear_error(void);
/* Sets the error message (printf-style) and returns -1 / NULL helpers for brevity. */
int ct_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "f32[2,3] on cpu" style description of a tensor, into buf. */
const char *ct_describe(const ct_tensor *t, char *buf, size_t n);
/* "[2,3]" into buf */
const char *ct_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

/* ---- dtypes and devices ------------------------------------------------------------------ */
const char *ct_dtype_name(ct_dtype d);
int ct_dtype_from_name(const char *name, ct_dtype *out);
size_t ct_dtype_size(ct_dtype d);
bool ct_dtype_is_float(ct_dtype d);
ct_dtype ct_promote(ct_dtype a, ct_dtype b);
float ct_f16_to_f32(uint16_t h);
uint16_t ct_f32_to_f16(float f);
float ct_bf16_to_f32(uint16_t h);
uint16_t ct_f32_to_bf16(float f);

ct_device ct_cpu(void);
bool ct_device_eq(ct_device a, ct_device b);
int ct_device_parse(const char *s, ct_device *out); /* "cpu", "cuda", "cuda:1" */
const char *ct_device_str(ct_device d, char *buf, size_t n);
const char *ct_category_name(ct_category c);
int ct_category_from_name(const char *s, ct_category *out);

/* ---- lifetime ------------------------------------------------------------------------------ */
ct_tensor *ct_retain(ct_tensor *t);
void ct_release(ct_tensor *t);
int ct_set_name(ct_tensor *t, const char *name);
/* Tag the storage's memory category (moves its bytes between the live counters). */
void ct_set_category(ct_tensor *t, ct_category c);

/* ---- creation ------------------------------------------------------------------------------ */
ct_tensor *ct_empty(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev);
ct_tensor *ct_zeros(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev);
ct_tensor *ct_full(const int64_t *shape, int ndim, double value, ct_dtype dt, ct_device dev);
ct_tensor *ct_scalar(double value, ct_dtype dt, ct_device dev); /* 0-d tensor */
/* 0-d tensor for a number combined with t: t's dtype if float (or value integral), else f32. */
ct_tensor *ct_scalar_like(const ct_tensor *t, double value);
ct_tensor *ct_from_data(const void *data, const int64_t *shape, int ndim, ct_dtype dt,
                        ct_device dev); /* copies data (contiguous, in dt) */
ct_tensor *ct_from_doubles(const double *vals, const int64_t *shape, int ndim, ct_dtype dt,
                           ct_device dev);
ct_tensor *ct_eye(int64_t n, ct_dtype dt, ct_device dev);
ct_tensor *ct_arange(double start, double end, double step, ct_dtype dt, ct_device dev);
ct_tensor *ct_linspace(double start, double end, int64_t n, ct_dtype dt, ct_device dev);
ct_tensor *ct_zeros_like(const ct_tensor *t);
ct_tensor *ct_ones_like(const ct_tensor *t);

/* ---- RNG (Philox 4x32-10, counter-based: same numbers on CPU and GPU) ---------------------- */
void ct_manual_seed(uint64_t seed); /* the current context's stream (ct_ctx_manual_seed) */
uint64_t ct_rng_seed(void);
/* Reserves n counters of the current context's stream and returns the first (offset of the draw). */
uint64_t ct_rng_reserve(uint64_t n);
void ct_philox(uint64_t seed, uint64_t counter, uint32_t out[4]);
float ct_philox_uniform(uint64_t seed, uint64_t index);   /* element index -> [0,1) */
float ct_philox_normal(uint64_t seed, uint64_t index);    /* element index -> N(0,1) */
ct_tensor *ct_rand(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev);
ct_tensor *ct_randn(const int64_t *shape, int ndim, ct_dtype dt, ct_device dev);
ct_tensor *ct_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, ct_dtype dt,
                      ct_device dev); /* [lo, hi) */
ct_tensor *ct_randperm(int64_t n, ct_device dev);          /* 1-based permutation, i64 */

/* ---- element access --------------------------------------------------------------------------- */
int64_t ct_numel(const ct_tensor *t);
bool ct_is_contiguous(const ct_tensor *t);
/* Read/write one element by 0-based multi-index (any dtype, converted to double). */
int ct_get(const ct_tensor *t, const int64_t *idx, double *out);
int ct_set(ct_tensor *t, const int64_t *idx, double v);
int ct_item(const ct_tensor *t, double *out);
/* Copy all elements (row-major order) into out as doubles; out holds numel values. */
int ct_to_doubles(const ct_tensor *t, double *out);
/* Copy src into dst elementwise (broadcast src to dst's shape, convert dtypes). Not recorded. */
int ct_copy_(ct_tensor *dst, const ct_tensor *src);
int ct_fill_(ct_tensor *t, double v);
/* y <- a y + b x in place, x broadcast to y's shape and converted to its dtype (one pass; the
   optimizers' updates). Not recorded by autograd; chalk.capture records it (op "axpby"). */
int ct_axpby_(ct_tensor *y, double a, ct_tensor *x, double b);

/* ---- conversions ---------------------------------------------------------------------------- */
ct_tensor *ct_to_dtype(ct_tensor *t, ct_dtype dt); /* differentiable between float dtypes */
ct_tensor *ct_to_device(ct_tensor *t, ct_device dev);
ct_tensor *ct_clone(ct_tensor *t);
ct_tensor *ct_detach(ct_tensor *t); /* shares storage, no grad */

/* ---- views (share storage; differentiable) ------------------------------------------------- */
ct_tensor *ct_view(ct_tensor *t, const int64_t *shape, int ndim);    /* one -1 allowed */
ct_tensor *ct_reshape(ct_tensor *t, const int64_t *shape, int ndim); /* copies only if needed */
ct_tensor *ct_transpose(ct_tensor *t, int d0, int d1);
ct_tensor *ct_permute(ct_tensor *t, const int *dims, int ndim);
ct_tensor *ct_narrow(ct_tensor *t, int dim, int64_t start, int64_t len); /* start 0-based */
ct_tensor *ct_select(ct_tensor *t, int dim, int64_t index);             /* index 0-based */
ct_tensor *ct_expand(ct_tensor *t, const int64_t *shape, int ndim);      /* -1 keeps a size */
ct_tensor *ct_unsqueeze(ct_tensor *t, int dim);
ct_tensor *ct_squeeze(ct_tensor *t, int dim); /* dim = CT_ALL_DIMS squeezes all size-1 dims */
ct_tensor *ct_flatten(ct_tensor *t, int start_dim, int end_dim);
ct_tensor *ct_contiguous(ct_tensor *t); /* new ref to t itself when already contiguous */
#define CT_ALL_DIMS 0x7fff

/* ---- elementwise (NumPy broadcasting, dtype promotion) --------------------------------------- */
ct_tensor *ct_add(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_sub(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_div(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_pow(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_pow_scalar(ct_tensor *a, double p);
ct_tensor *ct_add_scalar(ct_tensor *a, double s);
ct_tensor *ct_mul_scalar(ct_tensor *a, double s);
ct_tensor *ct_neg(ct_tensor *a);
ct_tensor *ct_exp(ct_tensor *a);
ct_tensor *ct_log(ct_tensor *a);
ct_tensor *ct_sqrt(ct_tensor *a);
ct_tensor *ct_abs(ct_tensor *a);
ct_tensor *ct_sign(ct_tensor *a);
ct_tensor *ct_sin(ct_tensor *a);
ct_tensor *ct_cos(ct_tensor *a);
ct_tensor *ct_tanh(ct_tensor *a);
ct_tensor *ct_sigmoid(ct_tensor *a);
ct_tensor *ct_relu(ct_tensor *a);
ct_tensor *ct_gelu(ct_tensor *a); /* exact (erf) form, as torch's default */
ct_tensor *ct_silu(ct_tensor *a); /* x * sigmoid(x), as torch.nn.functional.silu */
ct_tensor *ct_clamp(ct_tensor *a, double lo, double hi); /* use +-INFINITY for one side */
ct_tensor *ct_maximum(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_where(ct_tensor *cond, ct_tensor *a, ct_tensor *b);
ct_tensor *ct_eq(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_ne(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_lt(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_le(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_gt(ct_tensor *a, ct_tensor *b);
ct_tensor *ct_ge(ct_tensor *a, ct_tensor *b);

/* ---- reductions (dims: array of n dims, n == 0 means all) ------------------------------------- */
ct_tensor *ct_sum(ct_tensor *a, const int *dims, int n, bool keepdim);
ct_tensor *ct_mean(ct_tensor *a, const int *dims, int n, bool keepdim);
ct_tensor *ct_max(ct_tensor *a, const int *dims, int n, bool keepdim);
ct_tensor *ct_min(ct_tensor *a, const int *dims, int n, bool keepdim);
ct_tensor *ct_var(ct_tensor *a, const int *dims, int n, bool keepdim, bool unbiased);
/* argmax over one dim (dim = CT_ALL_DIMS: over the flattened tensor); 1-based i64. */
ct_tensor *ct_argmax(ct_tensor *a, int dim, bool keepdim);
/* Along one dim (ops/ops_sort.c): the stable 1-based i64 sorting permutation; the running sum
   (reverse: from the end). */
ct_tensor *ct_argsort(ct_tensor *x, int dim, bool descending);
ct_tensor *ct_cumsum(ct_tensor *x, int dim, bool reverse);
ct_tensor *ct_argmin(ct_tensor *a, int dim, bool keepdim);
/* Sum a broadcast gradient back down to shape (used by backward rules). */
ct_tensor *ct_sum_to_shape(ct_tensor *g, const int64_t *shape, int ndim);

/* ---- linear algebra --------------------------------------------------------------------------- */
ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b); /* torch.matmul semantics, batched, broadcast */
/* C = A B by one implementation of the matmul row: "blas", "naive", "reordered", "tiled" on the
   CPU, "cublas", "naive" ... "wmma_bf16" on CUDA (chalk.ops() lists them); NULL: the default.
   Runs through the op table (events, autograd, capture). tiles: bm, bn, bk of "tiled" (NULL: 64).
   An unknown name is an error listing the row's implementations. */
ct_tensor *ct_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl, const int *tiles);
/* Autotune among the row's implementations (core/graph/autotune.c): times each one of dev's on
   A[m,k] B[k,n] (best of repeats), writes up to max rows and the fastest name in *best; returns
   the rows written or -1. Implementations that refuse the dtype are left out. */
typedef struct {
  const char *impl;
  double us, gflops;
} ct_tune_impl;
int ct_autotune_matmul_impl(int64_t m, int64_t n, int64_t k, ct_dtype dt, ct_device dev, int repeats,
                            ct_tune_impl *rows, int max, const char **best);
/* Aliases kept for old callers: the CPU rungs on 2-D f32 ("openblas" is "blas"); a CUDA rung
   (NULL: "cublas"); the names of the CUDA rungs, in ladder order (*n of them). */
ct_tensor *ct_cpu_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl);
ct_tensor *ct_cuda_matmul_impl(ct_tensor *a, ct_tensor *b, const char *impl);
const char *const *ct_cuda_matmul_impls(int *n);

/* ---- neural-network ops ----------------------------------------------------------------------- */
ct_tensor *ct_softmax(ct_tensor *a, int dim);
ct_tensor *ct_log_softmax(ct_tensor *a, int dim);
/* logits [N,C] (or [C]), target i64 [N] of 1-based classes; mean over N. */
ct_tensor *ct_nll_loss(ct_tensor *logp, ct_tensor *target);
ct_tensor *ct_cross_entropy(ct_tensor *logits, ct_tensor *target);
ct_tensor *ct_mse_loss(ct_tensor *a, ct_tensor *b);
/* normalize over the last nd dims; weight/bias may be NULL */
ct_tensor *ct_layer_norm(ct_tensor *x, int nd, ct_tensor *weight, ct_tensor *bias, double eps);
ct_tensor *ct_embedding(ct_tensor *weight, ct_tensor *idx); /* idx 1-based ints */
ct_tensor *ct_index_select(ct_tensor *a, int dim, ct_tensor *idx);
ct_tensor *ct_gather(ct_tensor *a, int dim, ct_tensor *idx);
ct_tensor *ct_cat(ct_tensor *const *ts, int n, int dim);
ct_tensor *ct_stack(ct_tensor *const *ts, int n, int dim);
ct_tensor *ct_one_hot(ct_tensor *idx, int64_t nclasses, ct_dtype dt);
/* x [N,C,H,W], w [O,C,KH,KW], b [O] or NULL */
ct_tensor *ct_conv2d(ct_tensor *x, ct_tensor *w, ct_tensor *b, int stride, int padding);
ct_tensor *ct_max_pool2d(ct_tensor *x, int kernel, int stride);
ct_tensor *ct_dropout(ct_tensor *x, double p, bool training);
/* Scaled dot-product attention: q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv] -> [..., Nq, dv].
   causal: query i sees keys j <= i. scale <= 0 means 1/sqrt(d). flash: the tiled online-softmax op
   (no Nq x Nk matrix in memory; its backward recomputes); else the composite of matmul and softmax.
   block_q/block_k: the flash op's tile sizes on the CPU (0: 64); CUDA uses its compiled tiles. */
typedef struct {
  bool causal, flash;
  double scale;
  int block_q, block_k;
} ct_attention_opts;
ct_tensor *ct_attention(ct_tensor *q, ct_tensor *k, ct_tensor *v, const ct_attention_opts *o); /* o may be NULL */
/* Decode attention through a block table (ops/ops_paged.c): q [B,H,D], caches [blocks,S,H,D], table [B,M], lengths [B]. */
ct_tensor *ct_paged_attention(ct_tensor *q, ct_tensor *k_cache, ct_tensor *v_cache, ct_tensor *block_table, ct_tensor *lengths);
/* Quantized weights (ops/ops_quant.c; loops in cpu/quant.c, CUDA in kernels/quant.cu). A weight of
   rows x cols (a 1-D one is one row) is stored as bytes of one i8 tensor: int8 (one f32 step d for
   the tensor, then the codes), int8_channel (one f32 d per row, then the codes), q4 and q8 (per row,
   ceil(cols/32) blocks of an f16 d and 32 codes, 4-bit (18 bytes) or 8-bit (34 bytes); a last partial
   block is padded with zero codes). Every element: w ~ code * d, code = round(w / d) in [-L, L],
   d = max|w| / L over its group (L = 127; 7 for q4; q4/q8 round d up to an f16), so
   |w - code * d| <= d / 2. */
typedef enum { CT_QINT8, CT_QINT8_CHANNEL, CT_QQ4, CT_QQ8, CT_QNFORMATS } ct_qformat;
typedef struct ct_qtensor {
  ct_qformat format;
  int ndim;            /* 1 or 2, as the weight was given */
  int64_t rows, cols;  /* a 1-D weight: rows 1 */
  ct_tensor *data;     /* i8 [bytes], owned */
} ct_qtensor;
int ct_qformat_from_name(const char *name, ct_qformat *out); /* error lists the formats */
const char *ct_qformat_name(ct_qformat f);
int64_t ct_qformat_bytes(ct_qformat f, int64_t rows, int64_t cols);
ct_qtensor *ct_quantize(ct_tensor *w, ct_qformat f);   /* f32/f64 w, any device; NULL + error */
ct_tensor *ct_dequantize(const ct_qtensor *q);        /* f32, on q's device */
ct_tensor *ct_qmatmul(ct_tensor *x, const ct_qtensor *q, bool transposed); /* x @ W^T, or x @ W */
ct_tensor *ct_qscales(const ct_qtensor *q);           /* f32 [rows, groups per row]: each group's d */
ct_qtensor *ct_qtensor_to(const ct_qtensor *q, ct_device dev);
double ct_qtensor_bits(const ct_qtensor *q);          /* bytes * 8 / elements */
void ct_qtensor_free(ct_qtensor *q);
/* Bytes the flash forward (or backward) moves through main memory on dev for q of q_shape, as the
   op's cost reports them (core/ops_attention.c). */
double ct_attention_flash_bytes(const int64_t *q_shape, int ndim, int64_t nk, int64_t dv, ct_dtype dt,
                                ct_devtype dev, bool causal, int block_q, bool backward);

/* ---- autograd --------------------------------------------------------------------------------- */
bool ct_grad_enabled(void);         /* the current context's mode (ct_ctx_grad_enabled) */
bool ct_set_grad_enabled(bool on); /* returns the previous mode */
int ct_requires_grad_(ct_tensor *t, bool on); /* error on non-float or non-leaf turn-off */
/* grad may be NULL only for a one-element output. */
int ct_backward(ct_tensor *out, ct_tensor *grad, bool retain_graph, bool create_graph);
/* Gradients of out w.r.t. inputs[i], into result[i] (new refs; zeros where unreachable).
   Does not touch .grad of leaves. create_graph makes the results differentiable. */
int ct_grad(ct_tensor *out, ct_tensor *grad_out, ct_tensor *const *inputs, int n,
            ct_tensor **result, bool retain_graph, bool create_graph);
int ct_zero_grad(ct_tensor *t);
/* Keep gradients of every non-leaf produced from now on (for pictures of small graphs); while on,
   backward also keeps the graph (as retain_graph) so that it can still be drawn afterwards. */
void ct_set_retain_all_grads(bool on);
bool ct_retain_all_grads(void);
/* In-place writes (fill_, copy_, set, assign, axpby, index assignment) bump the storage's version;
   a node records the versions of the tensors its rule reads, and backward fails with PyTorch's
   "modified by an inplace operation" error when one has changed since. */
uint32_t ct_version(const ct_tensor *t);
void ct_bump_version(ct_tensor *t);

/* ---- interrupts (core/tensor/interrupt.c): Ctrl-C during long C work ---------------------------
 * A signal handler calls ct_interrupt_request (async-signal-safe: one atomic store). Long loops
 * (backward, big op loops between chunks, capture replay, rendering) poll ct_interrupt_pending and
 * fail with ct_interrupt_error ("<op>: interrupted"), leaving state consistent; whoever answers
 * the interrupt (the REPL before each line) calls ct_interrupt_clear. */
void ct_interrupt_request(void);
bool ct_interrupt_pending(void);
void ct_interrupt_clear(void);
int ct_interrupt_error(const char *op); /* sets "<op>: interrupted", returns -1 */

/* ---- memory accounting ------------------------------------------------------------------------- */
typedef struct {
  int64_t live[CT_NDEVTYPES][CT_NCATS]; /* live bytes */
  int64_t peak[CT_NDEVTYPES];
  int64_t allocated_total;  /* bytes ever allocated (for the binding's GC stepping) */
  int64_t live_tensors;
  int64_t live_nodes;
} ct_mem_stats;
/* live and peak: the current context's (design decision 11), by device type; allocated_total,
   live_tensors and live_nodes: the whole process (the one Lua collector paces on the first). */
void ct_mem_get(ct_mem_stats *s);
void ct_mem_reset_peak(void); /* the current context's peaks restart from its live bytes */
int64_t ct_mem_allocated_total(void); /* bytes ever allocated, all contexts */
/* Category given to storages created from now on (nn/optim set it around their allocations). */
ct_category ct_set_default_category(ct_category c); /* returns the previous */
/* The largest single host allocation (core/tensor/memlimit.c): half the RAM unless CHALK_MAX_ALLOC
   or ct_set_memory_limit (bytes <= 0: back to that default; returns the previous) says otherwise. */
int64_t ct_memory_limit(void);
int64_t ct_set_memory_limit(int64_t bytes);
/* Small host blocks (tensor and storage headers, small tensors' data, the binding's Lua objects),
   recycled per thread: ct_small_free(p, n) takes back any malloc'd block, n being the size it
   was asked for (core/alloc.c). */
void *ct_small_alloc(size_t n);
void ct_small_free(void *p, size_t n);

/* ---- contexts: the state of one worker (core/ctx/ctx.c; design decision 11) ------------------
 * Grad mode, retain-grads, the RNG stream, hooks, the event lane (rank, stream), the default
 * memory category, memory statistics per device index and the clock belong to a context. Each
 * thread has a current one (a thread-local pointer; every thread starts on the default context,
 * rank 0); the functions above without a ct_ctx argument (ct_set_grad_enabled, ct_manual_seed,
 * ct_mem_get, ct_events_set_stream, ...) act on it. Whoever runs a simulated worker switches its
 * context in before resuming it and back out after. */
ct_ctx *ct_ctx_default(void);
ct_ctx *ct_ctx_current(void);
ct_ctx *ct_ctx_switch(ct_ctx *c); /* makes c current on this thread (NULL: the default); returns the previous */
ct_ctx *ct_ctx_new(int rank);     /* grad on, default seed, wall clock; NULL + error on failure */
/* Frees c (not the default: ignored). If c is current on this thread, the default becomes current.
   Storages c allocated keep their accounting until they go; c must not be current elsewhere. */
void ct_ctx_free(ct_ctx *c);
int ct_ctx_rank(const ct_ctx *c);
bool ct_ctx_grad_enabled(const ct_ctx *c);
bool ct_ctx_set_grad_enabled(ct_ctx *c, bool on); /* returns the previous mode */
void ct_ctx_manual_seed(ct_ctx *c, uint64_t seed); /* seed and offset 0 */
uint64_t ct_ctx_rng_seed(const ct_ctx *c);
uint64_t ct_ctx_rng_offset(const ct_ctx *c); /* counters drawn since the seed */
int ct_ctx_stream(const ct_ctx *c);
int ct_ctx_set_stream(ct_ctx *c, int stream); /* returns the previous */
/* The clock events are stamped with: wall (microseconds since ct_events_start) or virtual (a value
   that whoever simulates sets and advances; it never moves by itself). */
double ct_ctx_clock_us(const ct_ctx *c);
bool ct_ctx_clock_is_virtual(const ct_ctx *c);
void ct_ctx_set_virtual_clock(ct_ctx *c, double t_us); /* switches c to a virtual clock at t_us */
int ct_ctx_advance_clock(ct_ctx *c, double dt_us);     /* virtual only; dt_us >= 0 */
void ct_ctx_use_wall_clock(ct_ctx *c);
/* Memory per device index: cpu, cuda:0 .. cuda:CT_CTX_MAX_CUDA-1 (a higher index is charged to the last). */
#define CT_CTX_MAX_CUDA 16
typedef struct {
  int64_t live[CT_NCATS]; /* live bytes by category */
  int64_t peak;           /* peak of the live bytes (all categories) */
  int64_t allocated;      /* bytes ever allocated */
} ct_mem_device_stats;
int ct_ctx_mem_device(const ct_ctx *c, ct_device dev, ct_mem_device_stats *out); /* error: bad device */
void ct_ctx_mem_get(const ct_ctx *c, ct_mem_stats *out); /* as ct_mem_get, for c */
void ct_ctx_mem_reset_peak(ct_ctx *c);
/* Hooks, called in the order added; a hook returning nonzero fails the backward with its error
   (set it with ct_errorf). Op hooks (core/ops/optable.h: ct_ctx_add_op_hook) see every op run.
   Gradient-ready: called during ct_backward when a leaf's .grad has received its last
   contribution of the pass (DDP buckets hang on it). Backward-end: after a successful
   ct_backward, before it returns. Hooks run inside backward (a C call): a Lua hook cannot yield. */
typedef enum { CT_HOOK_OP, CT_HOOK_GRAD_READY, CT_HOOK_BACKWARD_END, CT_HOOK_NKINDS } ct_hook_kind;
typedef int (*ct_grad_ready_fn)(ct_tensor *leaf, void *ud);
typedef int (*ct_backward_end_fn)(ct_tensor *root, void *ud);
int ct_ctx_add_grad_ready_hook(ct_ctx *c, ct_grad_ready_fn fn, void *ud); /* hook id > 0, or -1 */
int ct_ctx_add_backward_end_hook(ct_ctx *c, ct_backward_end_fn fn, void *ud);
int ct_ctx_remove_hook(ct_ctx *c, int id); /* -1 + error when c has no hook id */
int ct_ctx_hook_count(const ct_ctx *c, ct_hook_kind kind);

/* ---- op table (printable; see core/optable.h for the full row) --------------------------------- */
int ct_op_count(void);
const char *ct_op_name(int op);
/* One line per op: name, arity, devices, backward, flags, implementations, gradient formula.
   Writes into buf (core/ops/optable.c). */
size_t ct_op_list(char *buf, size_t n);
/* The gradient of op `name` as a formula, one part per input ("da = g*b; db = g*a"); NULL if none. */
const char *ct_op_grad_formula(const char *name);
/* Input i's part of it without its "da = " ("g*b"), written into buf; NULL if none. */
const char *ct_op_grad_formula_input(const char *name, int i, char *buf, size_t n);
/* An elementwise op's C expression over x, y (core/ops/elementwise_defs.h); NULL for other ops. */
const char *ct_op_expr(const char *name);
/* Implementation k (1-based) of op `name` (core/ops/impls.c): its name, device ("cpu" or
   "cuda") and a one-line note; false past the last. */
bool ct_op_impl_info(const char *name, int k, const char **impl, const char **device, const char **note);

/* ---- autograd graph inspection (for viz and capture) ------------------------------------------- */
int ct_node_op(const ct_node *n);
int ct_node_ninputs(const ct_node *n);
ct_tensor *ct_node_input(const ct_node *n, int i); /* borrowed; once freed: a shell (shape, name, grad_fn, no values) */
ct_tensor *ct_node_output(const ct_node *n);       /* borrowed weak pointer */
uint64_t ct_node_id(const ct_node *n);
const char *ct_node_name(const ct_node *n);        /* e.g. "grad of h1" for backward nodes */
bool ct_node_freed(const ct_node *n);

/* ---- files: IDX datasets, chalk save files, NumPy .npy (idx.c, serialize.c) ----------------- */
/* Reads an IDX file (MNIST format; gzip-compressed or plain) into a CPU tensor of dtype dt with
   every value mapped to v*scale + shift. Checks magic, rank, sizes and length; errors name the file. */
ct_tensor *ct_idx_read(const char *path, ct_dtype dt, double scale, double shift);
/* Save files hold a tree of values written in prefix order: a table record gives its number of
   key/value pairs, which follow as records. Writing goes to a temporary file beside path that
   ct_save_commit fsyncs and renames over path (atomic); ct_save_abort discards it. */
typedef struct ct_saver ct_saver;
ct_saver *ct_save_open(const char *path);
int ct_save_table(ct_saver *s, uint32_t npairs);
int ct_save_number(ct_saver *s, double v);
int ct_save_integer(ct_saver *s, int64_t v);
int ct_save_bool(ct_saver *s, bool v);
int ct_save_string(ct_saver *s, const char *str, size_t len);
int ct_save_tensor(ct_saver *s, const ct_tensor *t); /* any device; stored contiguous */
int ct_save_commit(ct_saver *s);                     /* frees s, also on error */
void ct_save_abort(ct_saver *s);                     /* frees s */
typedef enum {
  CT_SAVED_TABLE, CT_SAVED_NUMBER, CT_SAVED_INTEGER, CT_SAVED_BOOL, CT_SAVED_STRING, CT_SAVED_TENSOR
} ct_saved_kind;
typedef struct {
  ct_saved_kind kind;
  uint32_t count;     /* table: number of key/value pairs that follow */
  double number;
  int64_t integer;
  bool boolean;
  const char *str;    /* string: bytes (not NUL-terminated), valid until ct_load_close */
  size_t len;
  ct_tensor *tensor;  /* tensor: a new reference on the CPU, owned by the caller */
} ct_saved_value;
typedef struct ct_loader ct_loader;
ct_loader *ct_load_open(const char *path); /* reads the file, checks magic, length and CRC32 */
int ct_load_next(ct_loader *l, ct_saved_value *v);
bool ct_load_done(const ct_loader *l);
void ct_load_close(ct_loader *l);
/* NumPy .npy (format 1.0 written atomically; 1.0-3.0 read, either byte order, Fortran order). */
int ct_npy_save(const ct_tensor *t, const char *path);
ct_tensor *ct_npy_load(const char *path);

/* ---- library init and CUDA devices (core/device.c; answers "no CUDA" when built without it) ---- */
int ct_init(void); /* idempotent; registers the CUDA backend when a GPU is present */
bool ct_cuda_available(void);
int ct_cuda_device_count(void);
int ct_cuda_synchronize(void); /* waits for GPU work; fills GPU op times in the event log */
const char *ct_cuda_unavailable_reason(void); /* NULL when available */
int ct_cuda_empty_cache(void); /* returns cached, unused device blocks to the driver */
int ct_cuda_memory_info(int index, int64_t *allocated, int64_t *reserved);
int ct_cuda_device_name(int index, char *buf, size_t n);

#endif
