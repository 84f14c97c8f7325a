/* transport_mpi.c: the mpi transport: one rank per process over OpenMPI, the same schedules and
 * executor as sim, with MPI_Allreduce as the "native" algorithm. Built (by core/dist/dist.mk)
 * only when mpicc is found, and linked into the chalk executable only then.
 *
 * Invariants: sends and receives are nonblocking (MPI_Isend/MPI_Irecv) and a step's pair is
 * posted together, so rings do not deadlock; messages of one collective carry a tag made from its
 * group and number, so a rank that skipped or reordered a collective never matches, and the
 * executor's watchdog (CHALK_DIST_TIMEOUT seconds, default 60; 0: plain MPI_Waitall, no watchdog)
 * turns that into an error; a received length different from the expected one is an error naming both ranks; a rank that exits
 * with an error aborts the job rather than leaving the others to their watchdogs. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "dist/dist.h"
#include "obs/events.h"

#define MAX_REQ 2

typedef struct {
  ct_dist_transport base;
  int rank;
  MPI_Request req[MAX_REQ];
  int nreq, recv_src, recv_req; /* recv_req: index of the posted receive in req[], -1 if none */
  size_t recv_bytes;
  int tag_ub;
} mpi_tr;

static mpi_tr world;
static bool inited;

static int tag_of(const mpi_tr *m, const ct_dist_hdr *h) {
  unsigned v = (h->group * 7919u + h->seq) * 16u + (unsigned)h->coll;
  return (int)(v % (unsigned)m->tag_ub);
}

static int mpi_fail(int rc, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, s, &n);
  return ct_errorf("dist mpi: %s failed: %s", what, s);
}

static int mpi_post_send(ct_dist_transport *t, int src, int dst, const ct_dist_hdr *h, const void *buf, size_t nbytes) {
  mpi_tr *m = (mpi_tr *)t;
  (void)src;
  if (nbytes > 0x7fffffff) return ct_errorf("dist mpi: a message of %zu bytes (at most 2 GiB)", nbytes);
  int rc = MPI_Isend(buf, (int)nbytes, MPI_BYTE, dst, tag_of(m, h), MPI_COMM_WORLD, &m->req[m->nreq]);
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Isend");
  m->nreq++;
  return 0;
}

static int mpi_post_recv(ct_dist_transport *t, int dst, int src, const ct_dist_hdr *h, void *buf, size_t nbytes) {
  mpi_tr *m = (mpi_tr *)t;
  (void)dst;
  if (nbytes > 0x7fffffff) return ct_errorf("dist mpi: a message of %zu bytes (at most 2 GiB)", nbytes);
  /* a longer message fails as MPI_ERR_TRUNCATE, a shorter one by its count (mpi_test) */
  int rc = MPI_Irecv(buf, (int)nbytes, MPI_BYTE, src, tag_of(m, h), MPI_COMM_WORLD, &m->req[m->nreq]);
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Irecv");
  m->recv_src = src;
  m->recv_bytes = nbytes;
  m->recv_req = m->nreq;
  m->nreq++;
  return 0;
}

static int mpi_test(ct_dist_transport *t, int rank) {
  mpi_tr *m = (mpi_tr *)t;
  (void)rank;
  if (m->nreq == 0) return 1;
  int flag = 0;
  MPI_Status st[MAX_REQ];
  int rc = t->timeout_s > 0 ? MPI_Testall(m->nreq, m->req, &flag, st) : MPI_Waitall(m->nreq, m->req, st);
  if (t->timeout_s <= 0) flag = 1;
  if (rc != MPI_SUCCESS) {
    for (int i = 0; i < m->nreq; i++)
      if (st[i].MPI_ERROR == MPI_ERR_TRUNCATE)
        return ct_errorf("dist mismatch: rank %d sent more than the %zu bytes rank %d expects (tensors differ across "
                         "ranks)", m->recv_src + 1, m->recv_bytes, m->rank + 1);
    return mpi_fail(rc, "MPI_Testall");
  }
  if (!flag) return 0;
  for (int i = 0; i < m->nreq; i++) {
    int got = 0;
    MPI_Get_count(&st[i], MPI_BYTE, &got);
    if (i == m->recv_req && (size_t)got != m->recv_bytes) /* a send's status has no meaningful source */
      return ct_errorf("dist mismatch: rank %d sent %d bytes, but rank %d expects %zu (tensors differ across ranks)",
                       m->recv_src + 1, got, m->rank + 1, m->recv_bytes);
  }
  m->nreq = 0;
  m->recv_req = -1;
  return 1;
}

static double mpi_now(ct_dist_transport *t, int rank) {
  (void)t;
  (void)rank;
  return ct_now_us() * 1e-6; /* the event log's clock, so message events line up with ops */
}

static int mpi_native_all_reduce(ct_dist_transport *t, int rank, const int *members, int n, void *buf, int64_t count,
                                 ct_dtype dt, ct_dist_op op) {
  (void)rank;
  (void)members;
  if (n != t->world_size) return ct_errorf("all_reduce: algo \"native\" runs on the whole world only on mpi");
  if (count > 0x7fffffff) return ct_errorf("all_reduce: %lld elements (native: at most 2^31)", (long long)count);
  MPI_Datatype ty = dt == CT_F32 ? MPI_FLOAT : dt == CT_F64 ? MPI_DOUBLE : dt == CT_I32 ? MPI_INT32_T : MPI_INT64_T;
  MPI_Op mo = op == CT_DIST_MAX ? MPI_MAX : op == CT_DIST_MIN ? MPI_MIN : MPI_SUM;
  int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, ty, mo, MPI_COMM_WORLD);
  return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce");
}

/* At exit: a clean exit finalizes; an error exit (a script error on one rank) aborts the whole
   job at once, since MPI_Finalize would wait for the other ranks, which wait for this one. */
static void finalize(int status, void *arg) {
  (void)arg;
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) return;
  if (status != 0) MPI_Abort(MPI_COMM_WORLD, status);
  MPI_Finalize();
}

ct_dist_transport *ct_dist_mpi_world(int *rank) {
  if (!inited) {
    int provided = 0, size = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
      return ct_errorf("dist.init: MPI_Init failed (run the script with chalk --nproc N, or under mpirun)"), NULL;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    world.recv_req = -1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    void *ub = NULL;
    int found = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &found);
    world.tag_ub = found && ub ? *(int *)ub : 32767;
    const char *to = getenv("CHALK_DIST_TIMEOUT");
    world.base = (ct_dist_transport){.name = "mpi", .world_size = size, .post_send = mpi_post_send,
                                     .post_recv = mpi_post_recv, .test = mpi_test, .now = mpi_now,
                                     .native_all_reduce = mpi_native_all_reduce,
                                     .timeout_s = to && *to ? atof(to) : 60};
    on_exit(finalize, NULL);
    inited = true;
  }
  *rank = world.rank;
  return &world.base;
}

void ct_dist_mpi_abort(int code) {
  if (inited) MPI_Abort(MPI_COMM_WORLD, code);
}
