/* dist.h: collectives written once (design decision 10): algorithms as schedules, one resumable
 * executor, and the transport interface it runs over (sim in core/dist/sim.c, MPI in
 * core/dist/mpi/transport_mpi.c, NCCL in core/dist/transport_nccl.c).
 *
 * Ranks here are 0-based; the Lua binding adds one. A group is a list of global ranks; "group
 * rank" i is members[i]. A schedule is what one rank does in one collective: a list of steps, each
 * at most one send and one receive (a ring step is both, so MPI can post them together and never
 * deadlock), executed in order. Buffers are element ranges of the caller's tensor, reduced in place
 * (as NCCL does with sendbuff == recvbuff).
 *
 * Invariants: a schedule depends only on (collective, algorithm, group size, group rank, count,
 * root/peer), never on data, so every rank derives its part of the same global plan; every message
 * one rank's schedule sends is received by exactly one step of its peer's schedule, with the same
 * length; the executor never blocks: ct_dist_exec_step returns BLOCKED and is called again. */
#ifndef CHALK_DIST_H
#define CHALK_DIST_H

#include "chalk.h"

typedef enum { CT_DIST_SUM, CT_DIST_MEAN, CT_DIST_MAX, CT_DIST_MIN, CT_DIST_NOPS } ct_dist_op;

typedef enum {
  CT_COLL_ALL_REDUCE, CT_COLL_REDUCE_SCATTER, CT_COLL_ALL_GATHER, CT_COLL_BROADCAST,
  CT_COLL_ALL_TO_ALL, CT_COLL_SEND, CT_COLL_RECV, CT_COLL_BARRIER, CT_COLL_N
} ct_dist_coll;

typedef enum {
  CT_ALGO_RING, CT_ALGO_TREE, CT_ALGO_HALVING_DOUBLING, CT_ALGO_PS, CT_ALGO_NATIVE,
  CT_ALGO_PAIRWISE, CT_ALGO_DIRECT, CT_ALGO_DISSEMINATION, CT_ALGO_N
} ct_dist_algo;

typedef enum { CT_STEP_SEND, CT_STEP_RECV_COPY, CT_STEP_RECV_REDUCE, CT_STEP_SENDRECV_COPY,
               CT_STEP_SENDRECV_REDUCE } ct_dist_action;

typedef struct {
  int step;                   /* round index: steps of one round run together across ranks */
  ct_dist_action action;
  int send_peer, recv_peer;   /* group ranks; -1 when the step has no send / no receive */
  int64_t send_off, send_len; /* elements of the buffer */
  int64_t recv_off, recv_len;
  int chunk;                  /* chunk id carried (for pictures), -1 for the whole buffer */
} ct_dist_step;

typedef struct {
  ct_dist_step *steps;
  int nsteps, cap;
  bool send_from_snapshot;    /* all_to_all: sends read a copy of the input taken at the start */
} ct_dist_schedule;

/* Chunk c of count elements split in n: sizes differ by at most one (the first count % n are
 * one longer). */
int64_t ct_dist_chunk_off(int64_t count, int n, int c);
int64_t ct_dist_chunk_len(int64_t count, int n, int c);

/* The schedule of group rank `rank` of `size` ranks; root (broadcast) or peer (send/recv) as group
 * ranks. Fails for an algorithm that does not implement the collective, and for all_to_all when
 * count is not a multiple of size. */
int ct_dist_schedule_build(ct_dist_schedule *s, ct_dist_coll coll, ct_dist_algo algo, int size, int rank,
                           int64_t count, int root);
void ct_dist_schedule_free(ct_dist_schedule *s);

const char *ct_dist_coll_name(ct_dist_coll c);
const char *ct_dist_algo_name(ct_dist_algo a);
const char *ct_dist_op_name(ct_dist_op o);
int ct_dist_algo_from_name(const char *s, ct_dist_algo *out);
int ct_dist_op_from_name(const char *s, ct_dist_op *out);

/* ---- the transport interface -------------------------------------------------------------- */

/* What a message says about the call it belongs to; the sim transport checks the receiver's
 * expectation against it (a mismatch names both ranks and both calls), MPI folds seq into the tag. */
typedef struct {
  uint32_t group;   /* group id (0: the world) */
  uint32_t seq;     /* collective number within the group, from 1 */
  int coll, algo, op, dtype;
  int64_t count;    /* elements of the caller's tensor */
  int step;
} ct_dist_hdr;

typedef struct ct_dist_transport ct_dist_transport;

/* Where a transport's buffers are device memory (nccl), the executor's scratch, reductions, mean
   scaling and all_to_all snapshot go through these, and begin/end order the collective against
   the device's compute stream. NULL on host transports (sim, mpi). */
typedef struct {
  void *(*alloc)(ct_dist_transport *t, int rank, size_t nbytes);
  void (*release)(ct_dist_transport *t, int rank, void *p, size_t nbytes);
  int (*reduce)(ct_dist_transport *t, int rank, void *dst, const void *src, int64_t n, ct_dtype dt, ct_dist_op op);
  int (*scale)(ct_dist_transport *t, int rank, void *buf, int64_t n, ct_dtype dt, double f);
  int (*copy)(ct_dist_transport *t, int rank, void *dst, const void *src, size_t nbytes);
  int (*begin)(ct_dist_transport *t, int rank); /* the communication stream waits for compute */
  int (*end)(ct_dist_transport *t, int rank);   /* compute waits for the communication stream */
} ct_dist_devmem;

struct ct_dist_transport {
  const char *name; /* "sim", "mpi", "nccl" */
  int world_size;
  /* Start sending nbytes from buf (global ranks). The buffer may be reused once test says done. */
  int (*post_send)(ct_dist_transport *t, int src, int dst, const ct_dist_hdr *h, const void *buf, size_t nbytes);
  /* Start receiving exactly nbytes from src into buf. */
  int (*post_recv)(ct_dist_transport *t, int dst, int src, const ct_dist_hdr *h, void *buf, size_t nbytes);
  /* 1: every operation `rank` posted is complete; 0: still waiting; -1: error (message set). */
  int (*test)(ct_dist_transport *t, int rank);
  /* The rank's clock in seconds (virtual on sim, wall on MPI). */
  double (*now)(ct_dist_transport *t, int rank);
  /* The transport's own all_reduce in place over the group (NULL: none, the ring stands in). */
  int (*native_all_reduce)(ct_dist_transport *t, int rank, const int *members, int n, void *buf, int64_t count,
                           ct_dtype dt, ct_dist_op op);
  /* Seconds a blocked collective may wait before it fails (0: forever; sim detects deadlock). */
  double timeout_s;
  /* Optional. The transport's own algorithm for any collective (nccl: ncclAllReduce, ...); it only
     posts: test() says when it is done. Takes precedence over native_all_reduce, also on one rank. */
  int (*native)(ct_dist_transport *t, int rank, const int *members, int n, ct_dist_coll coll, void *buf,
                int64_t count, ct_dtype dt, ct_dist_op op, int root);
  const ct_dist_devmem *mem;
  /* Optional: a counter that changes whenever a message is posted or moves (deadlock detection of
     cooperative workers in one process: sim, nccl with ncclCommInitAll). */
  uint64_t (*progress)(ct_dist_transport *t);
};

/* ---- statistics (nccl-tests' definitions: algbw = S/t, busbw = algbw * factor) -------------- */
typedef struct {
  int64_t calls;
  double bytes;         /* sum of S, the tensor bytes of each call */
  double time_s;        /* sum of call durations on the rank's clock */
  double sent, recvd;   /* bytes this rank sent / received */
  int64_t messages;     /* messages sent */
  double last_bytes, last_time_s;
} ct_dist_stat;

typedef struct {
  ct_dist_stat by[CT_COLL_N][CT_ALGO_N];
} ct_dist_stats;

/* busbw / algbw for a collective on n ranks: 2(n-1)/n all_reduce, (n-1)/n reduce_scatter and
 * all_gather, 1 for the rest. */
double ct_dist_busbw_factor(ct_dist_coll c, int n);

/* ---- the executor -------------------------------------------------------------------------- */
typedef enum { CT_EXEC_DONE = 0, CT_EXEC_BLOCKED = 1, CT_EXEC_ERROR = -1 } ct_exec_status;

typedef struct {
  ct_dist_transport *tr;
  const int *members;   /* the group's global ranks (borrowed; outlives the call) */
  int size, rank;       /* group size, this rank's group rank */
  uint32_t group_id, seq;
  ct_dist_coll coll;
  ct_dist_algo algo;
  ct_dist_op op;
  ct_dtype dtype;
  char *buf;            /* the tensor's data (borrowed) */
  int64_t count;
  int root;
  ct_dist_schedule sched;
  char *scratch, *snapshot;
  size_t scratch_n, snapshot_n; /* their bytes */
  int next;             /* next step to run */
  bool posted;          /* the next step's send/recv were posted */
  double t_start, t_step;
  ct_dist_stats *stats; /* may be NULL */
} ct_dist_exec;

/* Prepare one collective on buf (count elements of dt, contiguous); nothing is sent yet. */
int ct_dist_exec_begin(ct_dist_exec *x, ct_dist_transport *tr, const int *members, int size, int rank,
                       uint32_t group_id, uint32_t seq, ct_dist_coll coll, ct_dist_algo algo, ct_dist_op op,
                       void *buf, int64_t count, ct_dtype dt, int root, ct_dist_stats *stats);
/* Run as far as possible: DONE, BLOCKED (waiting on ct_dist_exec_waiting's peer) or ERROR. */
ct_exec_status ct_dist_exec_step(ct_dist_exec *x);
/* Loop until DONE or ERROR, failing after tr->timeout_s of waiting (MPI: a mismatched or dead
 * peer becomes an error, never a hang). */
int ct_dist_exec_run(ct_dist_exec *x);
/* The group rank the next step waits for (-1 if none), and that step's index. */
int ct_dist_exec_waiting(const ct_dist_exec *x, int *step);
void ct_dist_exec_end(ct_dist_exec *x);

/* Reduce n elements of src into dst (dst = op(dst, src); mean sums). */
int ct_dist_reduce(void *dst, const void *src, int64_t n, ct_dtype dt, ct_dist_op op);

/* ---- the sim transport (core/dist/sim.c) ----------------------------------------------------- */
/* N simulated workers in one process. Link model (alpha-beta, full duplex): a message of b bytes
 * leaves when the sender's egress is free (the sender's clock waits for it: one message at a time
 * per NIC), and is fully received alpha + b/bandwidth after it left, or b/bandwidth after the
 * receiver's ingress finished its previous message, whichever is later; the receiver's clock
 * becomes max(own, that). Reductions cost no time (gamma = 0). */
ct_dist_transport *ct_dist_sim_new(int n, double alpha_s, double bandwidth_Bps);
void ct_dist_sim_free(ct_dist_transport *t);
/* Progress counter: changes whenever a message is sent or received (deadlock detection). */
uint64_t ct_dist_sim_progress(ct_dist_transport *t);
double ct_dist_sim_clock(ct_dist_transport *t, int rank);
/* Raise rank's virtual clock to at least t (compute modelled by the caller). */
void ct_dist_sim_advance(ct_dist_transport *t, int rank, double t_s);

/* ---- the NCCL transport (core/dist/transport_nccl.c; NCCL dlopen-ed by nccl_load.c) ---------- */
/* One process driving n GPUs (ncclCommInitAll; rank r on cuda:r), or one rank of a job whose
   unique id (128 bytes, ct_dist_nccl_unique_id) came from rank 0 or the launcher; rank's device is
   rank % GPUs. NULL with the reason (no CUDA build, no GPU, no libnccl, too few GPUs) in
   ct_last_error. */
ct_dist_transport *ct_dist_nccl_new_all(int n);
ct_dist_transport *ct_dist_nccl_new_rank(int rank, int size, const void *unique_id);
int ct_dist_nccl_unique_id(void *out128);
void ct_dist_nccl_free(ct_dist_transport *t);
int ct_dist_nccl_device(ct_dist_transport *t, int rank); /* the GPU of a rank this process drives, else -1 */
/* 0 when a transport can be made here (CUDA built, a GPU, libnccl loaded), else -1 with the reason. */
int ct_dist_nccl_check(void);

/* ---- the MPI transport (core/dist/mpi/transport_mpi.c, linked only when MPI is found) ------- */
/* Initialises MPI (once) and returns the world transport, or NULL with the reason in ct_last_error. */
ct_dist_transport *ct_dist_mpi_world(int *rank);
void ct_dist_mpi_abort(int code);

#endif
