/* nccl_api.h: the few NCCL types and functions chalk calls, declared here so that nothing of NCCL is
 * needed at build time, and the table nccl_load.c fills by dlopen-ing libnccl.so.2.
 * Invariants: the values and signatures are NCCL 2.x's (nccl.h: ncclUniqueId is 128 bytes, enums
 * are int-sized, a cudaStream_t is a pointer, passed here as void *); every function returns an
 * ncclResult_t, 0 on success. */
#ifndef CHALK_NCCL_API_H
#define CHALK_NCCL_API_H

#include <stddef.h>

typedef struct ncclComm *ncclComm_t;
#define CT_NCCL_ID_BYTES 128
typedef struct {
  char internal[CT_NCCL_ID_BYTES];
} ncclUniqueId;

enum {
  CT_NCCL_INT32 = 2,
  CT_NCCL_INT64 = 4,
  CT_NCCL_FLOAT16 = 6,
  CT_NCCL_FLOAT32 = 7,
  CT_NCCL_FLOAT64 = 8,
  CT_NCCL_BFLOAT16 = 9,
  CT_NCCL_UINT8 = 1
};
enum { CT_NCCL_SUM = 0, CT_NCCL_MAX = 2, CT_NCCL_MIN = 3 };

typedef struct {
  int (*GetVersion)(int *version);
  int (*GetUniqueId)(ncclUniqueId *id);
  int (*CommInitRank)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
  int (*CommInitAll)(ncclComm_t *comms, int ndev, const int *devlist);
  int (*CommDestroy)(ncclComm_t comm);
  int (*CommGetAsyncError)(ncclComm_t comm, int *async_error);
  const char *(*GetErrorString)(int result);
  const char *(*GetLastError)(ncclComm_t comm);
  int (*AllReduce)(const void *send, void *recv, size_t count, int dt, int op, ncclComm_t comm, void *stream);
  int (*ReduceScatter)(const void *send, void *recv, size_t recvcount, int dt, int op, ncclComm_t comm, void *stream);
  int (*AllGather)(const void *send, void *recv, size_t sendcount, int dt, ncclComm_t comm, void *stream);
  int (*Broadcast)(const void *send, void *recv, size_t count, int dt, int root, ncclComm_t comm, void *stream);
  int (*Reduce)(const void *send, void *recv, size_t count, int dt, int op, int root, ncclComm_t comm, void *stream);
  int (*Send)(const void *send, size_t count, int dt, int peer, ncclComm_t comm, void *stream);
  int (*Recv)(void *recv, size_t count, int dt, int peer, ncclComm_t comm, void *stream);
  int (*GroupStart)(void);
  int (*GroupEnd)(void);
} ct_nccl_api;

extern ct_nccl_api ct_nccl;

/* Loads libnccl once: $CHALK_NCCL (the library, or a folder holding it) when set, and only it; else
   the nvidia-nccl-cu* wheel (nvidia/nccl/lib/libnccl.so.2 under Python's site-packages), then the
   loader's search path.
   0, or -1 with "NCCL is not available: <every place tried and why>". Sets NCCL_NVLS_ENABLE=0
   unless the environment says otherwise (NVLink multicast can take a shared host's GPUs down). */
int ct_nccl_load(void);
const char *ct_nccl_where(void); /* the file loaded, after a successful ct_nccl_load */
int ct_nccl_version(void);       /* e.g. 22803 for 2.28.3 */

#endif
