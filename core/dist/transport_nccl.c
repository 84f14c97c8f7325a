/* transport_nccl.c: the nccl transport: chalk's schedules over ncclSend/ncclRecv and NCCL's own
 * collectives as algo "native", on GPU buffers, one rank per GPU; NCCL is dlopen-ed (nccl_load.c).
 *
 * Two ways to start: one process drives n GPUs (ct_dist_nccl_new_all: ncclCommInitAll, rank r on
 * cuda:r, the ranks being cooperative workers as on sim), or one rank per process
 * (ct_dist_nccl_new_rank: ncclCommInitRank with an id from rank 0 over MPI or from chalk --nproc's
 * pipe; cuda:(rank % GPUs)).
 *
 * Invariants: every rank has its own communication stream; a collective's work waits (an event)
 * for what the compute stream (kernels/register.c's one stream per device) queued before it, and
 * compute waits for the collective's end the same way. post_send/post_recv/native only queue; the
 * queued operations of a rank are issued inside one ncclGroupStart/End at test(). Where one
 * process drives several ranks, a rank's queue is issued only together with the queues of every
 * rank it exchanges with, all in one group (a single thread may not issue one GPU's half of a
 * send/recv pair or collective alone: NCCL would wait for the other half inside the call), so
 * test() says "blocked" until they are posted. Once issued, the work is ordered on the stream:
 * ring steps' reductions (kernels/dist_reduce.cu) follow their receives without the host waiting.
 * now() waits for the rank's stream, so every time the executor records (statistics, message and
 * collective events) is when the GPU finished. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "dist/nccl_api.h"

#ifdef CT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "obs/events.h"

/* What this file uses of the CUDA backend, defined in kernels/ (register.c, alloc_cuda.c,
   dist_reduce.cu) and declared here as there (kernels/cuda_internal.h): core includes nothing of
   kernels/, and this file is compiled only when kernels/ is linked in (CT_WITH_CUDA, dist.mk). */
cudaStream_t ct_cu_stream(int index);
int ct_cu_set_device(int index);
int ct_cu_check(cudaError_t e, const char *what);
void *ct_cu_alloc(size_t nbytes, int index);
void ct_cu_free(void *p, size_t nbytes, int index);
int ct_cu_dist_reduce(void *dst, const void *src, int64_t n, ct_dtype dt, int op, cudaStream_t s);
int ct_cu_dist_scale(void *buf, int64_t n, ct_dtype dt, double f, cudaStream_t s);

enum { OP_SEND, OP_RECV, OP_NATIVE };
#define NC_MAX_LOCAL 16 /* GPUs one process drives (kernels/ sees at most 16) */
typedef struct {
  int kind, peer; /* global rank of the peer (send/recv) */
  void *buf;
  size_t bytes;
  ct_dist_coll coll; /* native */
  int64_t count;
  ct_dtype dt;
  ct_dist_op op;
  int root, n;
} nc_op;

typedef struct {
  ncclComm_t comm;
  int dev;
  cudaStream_t stream;
  cudaEvent_t ev;
  nc_op ops[2];
  int nops;
  void *token;     /* one device byte that empty messages carry (a barrier's), so they still meet */
  bool dirty;      /* work issued since the last wait */
  char stuck[300]; /* the watchdog's error, once it fired */
} nc_rank;

typedef struct {
  ct_dist_transport base;
  int first, nlocal; /* global rank of local rank 0; ranks this process drives */
  nc_rank *r;
  uint64_t progress;
} nc_tr;

static nc_rank *local(nc_tr *t, int rank) {
  int i = rank - t->first;
  return i >= 0 && i < t->nlocal ? &t->r[i] : NULL;
}

static int nccl_fail(int rc, ncclComm_t comm, const char *what, int rank) {
  const char *last = comm ? ct_nccl.GetLastError(comm) : NULL;
  return ct_errorf("dist nccl: %s on rank %d failed: %s%s%s", what, rank + 1, ct_nccl.GetErrorString(rc),
                   last && *last ? ": " : "", last && *last ? last : "");
}

/* chalk's dtype -> NCCL's (0: none; ncclInt8, the only NCCL type that is 0, is not used) */
static int nccl_dtype(ct_dtype dt, int *out) {
  static const int types[CT_NDTYPES] = {
      [CT_F32] = CT_NCCL_FLOAT32, [CT_F64] = CT_NCCL_FLOAT64, [CT_BF16] = CT_NCCL_BFLOAT16,
      [CT_F16] = CT_NCCL_FLOAT16, [CT_I32] = CT_NCCL_INT32,   [CT_I64] = CT_NCCL_INT64};
  if ((int)dt >= 0 && dt < CT_NDTYPES && types[dt]) return *out = types[dt], 0;
  return ct_errorf("dist nccl: no NCCL type for %s (f32, f64, bf16, f16, i32, i64)", ct_dtype_name(dt));
}

static int queue(nc_tr *t, int rank, nc_op op) {
  nc_rank *r = local(t, rank);
  if (!r) return ct_errorf("dist nccl: rank %d is not driven by this process", rank + 1);
  if (r->nops == 2) return ct_errorf("dist nccl: rank %d posted more than a send and a receive at once", rank + 1);
  r->ops[r->nops++] = op;
  t->progress++;
  return 0;
}

static int nc_post_send(ct_dist_transport *tr, int src, int dst, const ct_dist_hdr *h, const void *buf, size_t n) {
  (void)h;
  return queue((nc_tr *)tr, src, (nc_op){.kind = OP_SEND, .peer = dst, .buf = (void *)buf, .bytes = n});
}

static int nc_post_recv(ct_dist_transport *tr, int dst, int src, const ct_dist_hdr *h, void *buf, size_t n) {
  (void)h;
  return queue((nc_tr *)tr, dst, (nc_op){.kind = OP_RECV, .peer = src, .buf = buf, .bytes = n});
}

static int nc_native(ct_dist_transport *tr, int rank, const int *members, int n, ct_dist_coll coll, void *buf,
                     int64_t count, ct_dtype dt, ct_dist_op op, int root) {
  (void)members;
  if (n != tr->world_size)
    return ct_errorf("%s: algo \"native\" runs on the whole world on nccl (a group of %d of %d: use ring)",
                     ct_dist_coll_name(coll), n, tr->world_size);
  return queue(
      (nc_tr *)tr, rank,
      (nc_op){.kind = OP_NATIVE, .buf = buf, .coll = coll, .count = count, .dt = dt, .op = op, .root = root, .n = n});
}

/* Is every operation of rank i matched by its peer's, among the ranks still in `in`? A mismatch in
   sizes is an error (-1), an absent peer 0. */
static int matched(nc_tr *t, int i, const bool *in) {
  nc_rank *r = &t->r[i];
  for (int k = 0; k < r->nops; k++) {
    nc_op *o = &r->ops[k];
    if (o->kind == OP_NATIVE) {
      for (int j = 0; j < t->nlocal; j++) {
        nc_rank *q = &t->r[j];
        bool has = false;
        for (int m = 0; m < q->nops; m++)
          if (q->ops[m].kind == OP_NATIVE) {
            if (q->ops[m].coll != o->coll || q->ops[m].count != o->count)
              return ct_errorf("dist mismatch: rank %d calls native %s of %lld elements, rank %d %s of %lld",
                               t->first + i + 1, ct_dist_coll_name(o->coll), (long long)o->count, t->first + j + 1,
                               ct_dist_coll_name(q->ops[m].coll), (long long)q->ops[m].count);
            has = true;
          }
        if (!has || !in[j]) return 0;
      }
      continue;
    }
    int j = o->peer - t->first;
    if (j < 0 || j >= t->nlocal || !in[j]) return 0;
    nc_rank *q = &t->r[j];
    bool has = false;
    for (int m = 0; m < q->nops && !has; m++) {
      nc_op *p = &q->ops[m];
      if (p->kind != (o->kind == OP_SEND ? OP_RECV : OP_SEND) || p->peer != t->first + i) continue;
      if (p->bytes != o->bytes)
        return ct_errorf("dist mismatch: rank %d sends %zu bytes, but rank %d expects %zu (tensors differ across "
                         "ranks)",
                         o->kind == OP_SEND ? t->first + i + 1 : o->peer + 1, o->kind == OP_SEND ? o->bytes : p->bytes,
                         o->kind == OP_SEND ? o->peer + 1 : t->first + i + 1, o->kind == OP_SEND ? p->bytes : o->bytes);
      has = true;
    }
    if (!has) return 0;
  }
  return 1;
}

/* The calls of one native collective on one rank (inside the group). NCCL's in-place forms need
   equal chunks; uneven ones are n ncclReduce (reduce_scatter) or ncclBroadcast (all_gather) calls,
   one per chunk, still NCCL's own algorithms. */
static int issue_native(nc_rank *r, int rank, const nc_op *o) {
  int dt = 0, rc = 0;
  if (nccl_dtype(o->dt, &dt)) return -1;
  int op = o->op == CT_DIST_MAX ? CT_NCCL_MAX : o->op == CT_DIST_MIN ? CT_NCCL_MIN : CT_NCCL_SUM;
  size_t es = ct_dtype_size(o->dt), cnt = (size_t)o->count;
  char *b = o->buf;
  bool even = o->count % o->n == 0;
  size_t chunk = cnt / (size_t)o->n;
  switch (o->coll) {
  case CT_COLL_ALL_REDUCE:
    rc = ct_nccl.AllReduce(b, b, cnt, dt, op, r->comm, r->stream);
    break;
  case CT_COLL_BROADCAST:
    rc = ct_nccl.Broadcast(b, b, cnt, dt, o->root, r->comm, r->stream);
    break;
  case CT_COLL_REDUCE_SCATTER:
  case CT_COLL_ALL_GATHER:
    if (even && o->coll == CT_COLL_REDUCE_SCATTER)
      rc = ct_nccl.ReduceScatter(b, b + (size_t)rank * chunk * es, chunk, dt, op, r->comm, r->stream);
    else if (even)
      rc = ct_nccl.AllGather(b + (size_t)rank * chunk * es, b, chunk, dt, r->comm, r->stream);
    for (int j = 0; !even && j < o->n && !rc; j++) {
      char *c = b + ct_dist_chunk_off(o->count, o->n, j) * (int64_t)es;
      size_t len = (size_t)ct_dist_chunk_len(o->count, o->n, j);
      rc = o->coll == CT_COLL_REDUCE_SCATTER ? ct_nccl.Reduce(c, c, len, dt, op, j, r->comm, r->stream)
                                             : ct_nccl.Broadcast(c, c, len, dt, j, r->comm, r->stream);
    }
    break;
  default:
    return ct_errorf("%s: no native NCCL form", ct_dist_coll_name(o->coll));
  }
  return rc ? nccl_fail(rc, r->comm, ct_dist_coll_name(o->coll), rank) : 0;
}

/* Issues the queues of the local ranks marked in `in` as one NCCL group. */
static int issue(nc_tr *t, const bool *in) {
  int rc = ct_nccl.GroupStart(), err = 0;
  if (rc) return nccl_fail(rc, NULL, "ncclGroupStart", t->first);
  for (int i = 0; i < t->nlocal && !err; i++) {
    nc_rank *r = &t->r[i];
    if (!in[i]) continue;
    for (int k = 0; k < r->nops && !err; k++) {
      nc_op *o = &r->ops[k];
      void *b = o->bytes ? o->buf : r->token;
      size_t nb = o->bytes ? o->bytes : 1;
      if (o->kind == OP_NATIVE)
        err = issue_native(r, t->first + i, o);
      else if (o->kind == OP_SEND && (rc = ct_nccl.Send(b, nb, CT_NCCL_UINT8, o->peer, r->comm, r->stream)))
        err = nccl_fail(rc, r->comm, "ncclSend", t->first + i);
      else if (o->kind == OP_RECV && (rc = ct_nccl.Recv(b, nb, CT_NCCL_UINT8, o->peer, r->comm, r->stream)))
        err = nccl_fail(rc, r->comm, "ncclRecv", t->first + i);
    }
    r->nops = 0;
    r->dirty = true;
  }
  rc = ct_nccl.GroupEnd();
  t->progress++;
  if (err) return -1;
  return rc ? nccl_fail(rc, NULL, "ncclGroupEnd", t->first) : 0;
}

static int nc_test(ct_dist_transport *tr, int rank) {
  nc_tr *t = (nc_tr *)tr;
  nc_rank *me = local(t, rank);
  if (!me) return ct_errorf("dist nccl: rank %d is not driven by this process", rank + 1);
  if (me->stuck[0]) return ct_errorf("%s", me->stuck);
  if (!me->nops) return 1;
  bool in[NC_MAX_LOCAL];
  for (int i = 0; i < t->nlocal; i++) in[i] = t->r[i].nops > 0;
  /* the largest set of ranks whose operations all meet their peers' inside it */
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = 0; i < t->nlocal; i++) {
      if (!in[i]) continue;
      int m = t->nlocal == 1 && t->base.world_size > 1 ? 1 : matched(t, i, in); /* peers in other processes */
      if (m < 0) return -1;
      if (!m) in[i] = false, changed = true;
    }
  }
  if (!in[rank - t->first]) return 0;
  return issue(t, in) ? -1 : 1;
}

/* Waits for the rank's communication stream, at most the watchdog's timeout: a peer that skipped
   or mismatched a collective leaves NCCL's kernel waiting, which becomes an error (kept in
   r->stuck for the next test or end) instead of a hang. */
static int wait_stream(nc_tr *t, nc_rank *r, int rank) {
  if (r->stuck[0]) return ct_errorf("%s", r->stuck);
  if (!r->dirty) return 0;
  if (ct_cu_set_device(r->dev)) return -1;
  double t0 = ct_now_us() * 1e-6;
  cudaError_t e;
  while ((e = cudaStreamQuery(r->stream)) == cudaErrorNotReady) {
    if (t->base.timeout_s > 0 && ct_now_us() * 1e-6 - t0 > t->base.timeout_s) {
      snprintf(
          r->stuck, sizeof r->stuck,
          "dist nccl: rank %d of %d waited %.0f s for its communication stream: a rank "
          "skipped or mismatched a collective (shapes, dtypes, order), or died (CHALK_DIST_TIMEOUT sets the limit)",
          rank + 1, t->base.world_size, t->base.timeout_s);
      return ct_errorf("%s", r->stuck);
    }
    sched_yield();
  }
  r->dirty = false;
  return ct_cu_check(e, "dist nccl: the communication stream");
}

/* Waits for the rank's stream (so times are the GPU's) and reads the event log's clock. */
static double nc_now(ct_dist_transport *tr, int rank) {
  nc_rank *r = local((nc_tr *)tr, rank);
  if (r) wait_stream((nc_tr *)tr, r, rank); /* an error stays in r->stuck */
  return ct_now_us() * 1e-6;
}

static uint64_t nc_progress(ct_dist_transport *tr) { return ((nc_tr *)tr)->progress; }

/* ---- device memory and ordering against compute --------------------------------------------- */

static nc_rank *dev_of(ct_dist_transport *tr, int rank) {
  nc_rank *r = local((nc_tr *)tr, rank);
  if (!r)
    ct_errorf("dist nccl: rank %d is not driven by this process", rank + 1);
  else if (ct_cu_set_device(r->dev))
    r = NULL;
  return r;
}

static void *nc_alloc(ct_dist_transport *tr, int rank, size_t n) {
  nc_rank *r = dev_of(tr, rank);
  return r ? ct_cu_alloc(n, r->dev) : NULL;
}

/* The block goes back to the compute stream's cache: the communication stream must be done with it. */
static void nc_release(ct_dist_transport *tr, int rank, void *p, size_t n) {
  nc_rank *r = dev_of(tr, rank);
  if (!r) return;
  if (!r->stuck[0]) cudaStreamSynchronize(r->stream); /* a stuck stream's buffers are leaked, not reused */
  if (!r->stuck[0]) ct_cu_free(p, n, r->dev);
}

static int nc_reduce(ct_dist_transport *tr, int rank, void *dst, const void *src, int64_t n, ct_dtype dt,
                     ct_dist_op op) {
  nc_rank *r = dev_of(tr, rank);
  if (!r) return -1;
  r->dirty = true;
  return ct_cu_dist_reduce(dst, src, n, dt, (int)op, r->stream);
}

static int nc_scale(ct_dist_transport *tr, int rank, void *buf, int64_t n, ct_dtype dt, double f) {
  nc_rank *r = dev_of(tr, rank);
  if (!r) return -1;
  r->dirty = true;
  return ct_cu_dist_scale(buf, n, dt, f, r->stream);
}

static int nc_copy(ct_dist_transport *tr, int rank, void *dst, const void *src, size_t n) {
  nc_rank *r = dev_of(tr, rank);
  if (!r) return -1;
  r->dirty = true;
  return ct_cu_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, r->stream), "dist nccl: snapshot");
}

/* from -> event -> to: `to` runs nothing queued after this before `from`'s work so far is done */
static int order(nc_rank *r, cudaStream_t from, cudaStream_t to) {
  return ct_cu_check(cudaEventRecord(r->ev, from), "dist nccl: cudaEventRecord") ||
                 ct_cu_check(cudaStreamWaitEvent(to, r->ev, 0), "dist nccl: cudaStreamWaitEvent")
             ? -1
             : 0;
}

static int nc_begin(ct_dist_transport *tr, int rank) {
  nc_rank *r = dev_of(tr, rank);
  cudaStream_t compute = r ? ct_cu_stream(r->dev) : NULL;
  return compute ? order(r, compute, r->stream) : -1;
}

static int nc_end(ct_dist_transport *tr, int rank) {
  nc_rank *r = dev_of(tr, rank);
  cudaStream_t compute = r ? ct_cu_stream(r->dev) : NULL;
  if (!compute) return -1;
  int async = 0;
  if (ct_nccl.CommGetAsyncError(r->comm, &async) == 0 && async)
    return nccl_fail(async, r->comm, "a collective (asynchronous error)", rank);
  return order(r, r->stream, compute) || wait_stream((nc_tr *)tr, r, rank) ? -1 : 0;
}

static const ct_dist_devmem nc_mem = {nc_alloc, nc_release, nc_reduce, nc_scale, nc_copy, nc_begin, nc_end};

/* ---- construction --------------------------------------------------------------------------- */

int ct_dist_nccl_check(void) {
  if (!ct_cuda_available()) return ct_errorf("the nccl backend needs a CUDA GPU: %s", ct_cuda_unavailable_reason());
  return ct_nccl_load();
}

static nc_tr *make(int size, int first, int nlocal) {
  nc_tr *t = calloc(1, sizeof *t);
  if (!t || !(t->r = calloc((size_t)nlocal, sizeof *t->r))) return free(t), ct_errorf("dist nccl: out of memory"), NULL;
  const char *to = getenv("CHALK_DIST_TIMEOUT");
  t->base = (ct_dist_transport){.name = "nccl",
                                .world_size = size,
                                .post_send = nc_post_send,
                                .post_recv = nc_post_recv,
                                .test = nc_test,
                                .now = nc_now,
                                .native = nc_native,
                                .mem = &nc_mem,
                                .progress = nc_progress,
                                .timeout_s = to && *to ? atof(to) : 60};
  t->first = first;
  t->nlocal = nlocal;
  return t;
}

/* Streams and events of the local ranks, once their devices are known. */
static int streams(nc_tr *t) {
  for (int i = 0; i < t->nlocal; i++) {
    nc_rank *r = &t->r[i];
    if (ct_cu_set_device(r->dev) ||
        ct_cu_check(cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking), "dist nccl: cudaStreamCreate") ||
        ct_cu_check(cudaEventCreateWithFlags(&r->ev, cudaEventDisableTiming), "dist nccl: cudaEventCreate") ||
        ct_cu_check(cudaMalloc(&r->token, 16), "dist nccl: cudaMalloc"))
      return -1;
  }
  return 0;
}

ct_dist_transport *ct_dist_nccl_new_all(int n) {
  if (ct_dist_nccl_check()) return NULL;
  int gpus = ct_cuda_device_count();
  if (n < 1 || n > gpus || n > NC_MAX_LOCAL)
    return ct_errorf("dist.run(%d, ..., {backend=\"nccl\"}): %d rank%s need as many GPUs, and %d %s visible", n, n,
                     n == 1 ? "" : "s", gpus, gpus == 1 ? "is" : "are"),
           NULL;
  nc_tr *t = make(n, 0, n);
  if (!t) return NULL;
  int devs[NC_MAX_LOCAL];
  ncclComm_t comms[NC_MAX_LOCAL];
  for (int i = 0; i < n; i++) devs[i] = t->r[i].dev = i;
  int cur = 0;
  cudaGetDevice(&cur);
  int rc = ct_nccl.CommInitAll(comms, n, devs);
  cudaSetDevice(cur); /* whatever NCCL left current, chalk's cache of the current device holds again */
  if (rc) {
    ct_dist_nccl_free(&t->base);
    return nccl_fail(rc, NULL, "ncclCommInitAll", 0), NULL;
  }
  for (int i = 0; i < n; i++) t->r[i].comm = comms[i];
  if (streams(t)) return ct_dist_nccl_free(&t->base), NULL;
  return &t->base;
}

int ct_dist_nccl_unique_id(void *out) {
  if (ct_nccl_load()) return -1;
  ncclUniqueId id;
  int rc = ct_nccl.GetUniqueId(&id);
  if (rc) return nccl_fail(rc, NULL, "ncclGetUniqueId", 0);
  memcpy(out, &id, sizeof id);
  return 0;
}

ct_dist_transport *ct_dist_nccl_new_rank(int rank, int size, const void *unique_id) {
  if (ct_dist_nccl_check()) return NULL;
  if (size < 1 || rank < 0 || rank >= size) return ct_errorf("dist nccl: rank %d of %d", rank + 1, size), NULL;
  nc_tr *t = make(size, rank, 1);
  if (!t) return NULL;
  t->r[0].dev = rank % ct_cuda_device_count();
  ncclUniqueId id;
  memcpy(&id, unique_id, sizeof id);
  if (ct_cu_set_device(t->r[0].dev)) return ct_dist_nccl_free(&t->base), NULL;
  int rc = ct_nccl.CommInitRank(&t->r[0].comm, size, id, rank);
  if (rc) {
    nccl_fail(rc, NULL, "ncclCommInitRank", rank);
    ct_dist_nccl_free(&t->base);
    return NULL;
  }
  if (streams(t)) return ct_dist_nccl_free(&t->base), NULL;
  return &t->base;
}

void ct_dist_nccl_free(ct_dist_transport *tr) {
  nc_tr *t = (nc_tr *)tr;
  if (!t) return;
  for (int i = 0; i < t->nlocal; i++) {
    nc_rank *r = &t->r[i];
    if (ct_cu_set_device(r->dev)) continue;
    if (r->stream) cudaStreamSynchronize(r->stream), cudaStreamDestroy(r->stream);
    if (r->ev) cudaEventDestroy(r->ev);
    if (r->token) cudaFree(r->token);
    if (r->comm) ct_nccl.CommDestroy(r->comm);
  }
  free(t->r);
  free(t);
}

int ct_dist_nccl_device(ct_dist_transport *tr, int rank) {
  nc_rank *r = strcmp(tr->name, "nccl") ? NULL : local((nc_tr *)tr, rank);
  return r ? r->dev : -1;
}

#else /* built without CUDA: every entry says so */

static int no_cuda(void) {
  return ct_errorf("the nccl backend needs CUDA, and this chalk was built without it (no nvcc at build time)");
}
int ct_dist_nccl_check(void) { return no_cuda(); }
ct_dist_transport *ct_dist_nccl_new_all(int n) { return (void)n, no_cuda(), NULL; }
ct_dist_transport *ct_dist_nccl_new_rank(int rank, int size, const void *id) {
  return (void)rank, (void)size, (void)id, no_cuda(), NULL;
}
int ct_dist_nccl_unique_id(void *out) { return ct_nccl_load() ? -1 : ((void)out, no_cuda()); }
void ct_dist_nccl_free(ct_dist_transport *t) { (void)t; }
int ct_dist_nccl_device(ct_dist_transport *t, int rank) { return (void)t, (void)rank, -1; }

#endif
