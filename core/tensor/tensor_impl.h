/* tensor_impl.h: the tensor layer's internals that the layers above build on (cpu/, ops/, graph/).
 *
 * struct ct_tensor and struct ct_storage are in chalk.h; here are what creating, aliasing and
 * reading them takes: the output description a shape rule fills (ct_meta), the attributes of one
 * call (ct_attrs: the op rows read them, and so do the cpu/ loops they call), storages and the
 * per-device memory operations, strides and broadcasting, and element load/store by dtype.
 * Nothing here knows the op table: tensor/ and cpu/ include this, never ops/optable.h.
 */
#ifndef CHALK_TENSOR_IMPL_H
#define CHALK_TENSOR_IMPL_H

#include <string.h>

#include "chalk.h"

/* Attributes of one op call. Each op documents which fields it uses. */
typedef struct ct_attrs {
  int64_t shape[CT_MAX_DIMS]; /* target shape (view, expand) */
  int ndim;
  int64_t i[6];  /* integer attributes: dims, starts, lengths, sizes */
  double f[4];   /* float attributes: scalars, eps, p */
  uint32_t mask; /* reduction dims as a bitmask over the input's dims */
  bool keepdim;
  ct_dtype dtype;
  int impl; /* 0: the row's own forward; k >= 1: its k-th implementation (ct_op_impl, impls.c) */
} ct_attrs;

/* Output description produced by a shape rule. For view ops also strides and offset. */
typedef struct {
  int ndim;
  int64_t shape[CT_MAX_DIMS];
  int64_t stride[CT_MAX_DIMS];
  int64_t offset;
  ct_dtype dtype;
} ct_meta;

/* ---- helpers for the layers above ------------------------------------------------------- */
/* Broadcast shapes of in[0..n-1] into out (error names op_name and the shapes). */
int ct_broadcast_shapes(const char *op_name /* NULL: no prefix */, ct_tensor *const *in, int n, ct_meta *out);
/* Wraps a negative dim; error names op, the dim as the user wrote it and t's shape (t may be NULL). */
int ct_norm_dim(const char *op, int dim, const ct_tensor *t, int ndim, int *out);
/* Strides of t as seen when broadcast to shape (0 on broadcast dims). */
void ct_broadcast_strides(const ct_tensor *t, const int64_t *shape, int ndim, int64_t *stride);
/* The meta (dtype, shape, strides, offset) of a tensor. */
void ct_meta_of(const ct_tensor *t, ct_meta *m);
/* A contiguous output of the given shape and dtype: a shape rule's usual last step (returns 0). */
static inline int ct_meta_shape(ct_meta *m, const int64_t *shape, int ndim, ct_dtype dtype) {
  m->ndim = ndim;
  memcpy(m->shape, shape, sizeof(int64_t) * (size_t)ndim);
  m->dtype = dtype;
  return 0;
}
void ct_contiguous_strides(const int64_t *shape, int ndim, int64_t *stride);
void *ct_data_ptr(const ct_tensor *t); /* storage data + offset*itemsize */
/* Convenience: a tensor's shape and ndim as the last two args of shape-taking functions. */
#define CT_SHAPE(t) (t)->shape, (t)->ndim

/* Storage (alloc.c) */
ct_storage *ct_storage_new(size_t nbytes, ct_device dev);
void ct_storage_release(ct_storage *s);
ct_tensor *ct_tensor_new_meta(const ct_meta *m, ct_device dev); /* allocates storage */
ct_tensor *ct_tensor_alias(ct_tensor *base, const ct_meta *m);  /* view on base's storage */

/* Device memory operations: the CPU row is in alloc.c; kernels/ fills the CUDA row. */
typedef struct {
  void *(*alloc)(size_t nbytes, int index);
  void (*free)(void *p, size_t nbytes, int index);
  int (*copy_h2d)(void *dst, const void *src, size_t n, int index);
  int (*copy_d2h)(void *dst, const void *src, size_t n, int index);
  int (*copy_d2d)(void *dst, const void *src, size_t n, int index);
  int (*memset0)(void *p, size_t n, int index);
} ct_device_ops;
extern ct_device_ops ct_devops[CT_NDEVTYPES];

/* Lifetime counters (alloc.c) */
void ct_mem_count_tensor(int delta);
void ct_mem_count_node(int delta);

/* Load/store one element of any dtype as double (slow paths, conversions; dtype.c). */
double ct_load_as_double(ct_dtype dt, const char *p);
void ct_store_from_double(ct_dtype dt, char *p, double v);

/* Releasing a tensor releases its grad_fn node (and clears the node's weak pointer to it) through
   this function, which dispatch (ops/) sets when it records a node: tensor/ never calls up into
   ops/. Only ops/ makes nodes, so it is set whenever a tensor has one. */
extern void (*ct_tensor_release_grad_fn)(ct_tensor *t);
/* When a reference to t is dropped while t.grad has a graph, ct_release asks ops/ (through this
   hook, set with the one above) whether that graph holds the only references left to t, and
   frees the cycle if so (autograd.c's ct_grad_cycle_release). */
extern bool (*ct_tensor_grad_cycle_fn)(ct_tensor *t);

#endif
