/* alloc.c: storages, the per-device memory operations, and live-byte accounting by category.
 * Invariant: a context's live bytes of a device and category (core/ctx) always equal the bytes of
 * the live storages charged to it (storage->ctx, the context current at allocation) on that device
 * in that category; every allocation and free appends an event when the log is on. A CPU storage of at
 * most CT_INLINE_MAX bytes is one block, header then data (data == header + CT_STORAGE_HDR);
 * every other storage's data is a block of its own from its device's alloc. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/ctx.h"
#include "obs/events.h"
#include "tensor/tensor_impl.h"

/* ---- small-block recycling -------------------------------------------------------------------
 * Tensor headers, storage headers and the data of small CPU tensors die in bursts when the Lua
 * collector sweeps; that overflows glibc's per-thread cache and sends the next thousands of
 * mallocs through its bins (measured: malloc and free were a third of a Lua loop of 16-element
 * adds). Blocks of up to CT_SMALL_MAX bytes are therefore kept on per-thread LIFO lists, one per
 * 64-byte size class, up to CT_SMALL_KEEP bytes in all (a collector step frees ~16k tensors of a
 * 16-element loop, 6 MiB of such blocks; with 4096 blocks per class most still went to free()).
 * A block is only kept when malloc_usable_size says it can hold its whole class, so any malloc'd
 * block may be handed back. Under AddressSanitizer nothing is kept (use-after-free stays caught). */
#define CT_SMALL_STEP 64
#define CT_SMALL_MAX 1024
#define CT_SMALL_KEEP ((size_t)16 << 20)
#if defined(__SANITIZE_ADDRESS__)
#define CT_SMALL_CACHE 0
#else
#define CT_SMALL_CACHE 1
#endif
typedef struct small_block {
  struct small_block *next;
} small_block;
static _Thread_local small_block *small_lists[CT_SMALL_MAX / CT_SMALL_STEP + 1];
static _Thread_local size_t small_kept; /* bytes on the lists */

static size_t small_class(size_t n) { return (n + CT_SMALL_STEP - 1) / CT_SMALL_STEP; }

void *ct_small_alloc(size_t n) {
  size_t c = small_class(n ? n : 1);
  if (!CT_SMALL_CACHE || c >= sizeof small_lists / sizeof small_lists[0]) return malloc(n ? n : 1);
  small_block *b = small_lists[c];
  if (b) {
    small_lists[c] = b->next;
    small_kept -= c * CT_SMALL_STEP;
    return b;
  }
  return malloc(c * CT_SMALL_STEP);
}

void ct_small_free(void *p, size_t n) {
  size_t c = small_class(n ? n : 1);
  if (!p) return;
  if (!CT_SMALL_CACHE || c >= sizeof small_lists / sizeof small_lists[0] ||
      small_kept + c * CT_SMALL_STEP > CT_SMALL_KEEP || malloc_usable_size(p) < c * CT_SMALL_STEP) {
    free(p);
    return;
  }
  small_block *b = p;
  b->next = small_lists[c];
  small_lists[c] = b;
  small_kept += c * CT_SMALL_STEP;
}

/* The header of an inline storage, rounded up so its data is 16-byte aligned as malloc's is. */
#define CT_STORAGE_HDR ((sizeof(ct_storage) + 15) & ~(size_t)15)
#define CT_INLINE_MAX (CT_SMALL_MAX - CT_STORAGE_HDR)

static bool storage_inline(const ct_storage *s) {
  return s->device.type == CT_CPU && s->data == (const char *)s + CT_STORAGE_HDR;
}

/* Process-wide: storage ids (unique across contexts, the event log names storages by them) and
   the counters no context owns (tensors and nodes have no owner; the one Lua collector paces on
   the bytes allocated by every context). */
static uint64_t next_storage_id = 1;
static int64_t allocated_total, live_tensors, live_nodes;

static void *cpu_alloc(size_t n, int index) {
  (void)index;
  static bool tuned;
  if (!tuned) {
    /* Keep freed tensor memory in the heap instead of returning it to the kernel: otherwise every
       large op output is fresh mmap'd pages that BLAS threads fault in (measured: a 1024-wide
       linear layer forward+backward ran at 46% of raw GEMMs, 83% with these settings). */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    tuned = true;
  }
  /* small blocks: plain malloc (16-byte aligned; memalign's fragmentation costs more than the
     op); large blocks: 64-byte aligned for SIMD loads and BLAS, by hand: malloc(n + 64), the
     block's own address kept in the word before the aligned one. posix_memalign left a padding
     fragment at each reuse, so a freed block never fit the next request of its size and the heap
     crept upwards into fresh pages (measured: 4 MB blocks freed at once still page-faulted 150
     times per allocation; a 1024^3 matmul's output faulted in every call, 5-10% of its time). */
  if (n < 4096) return malloc(n ? n : 1);
#if !CT_SMALL_CACHE /* AddressSanitizer: exact blocks, so an overrun by a few bytes is still caught */
  void *q = NULL;
  return posix_memalign(&q, 64, n) ? NULL : q;
#endif
  char *raw = malloc(n + 64);
  if (!raw) return NULL;
  char *p = (char *)(((uintptr_t)raw + 64) & ~(uintptr_t)63); /* at least 16 bytes past raw */
  ((void **)p)[-1] = raw;
  return p;
}
static void cpu_free(void *p, size_t n, int index) {
  (void)index;
  if (n < 4096 || !CT_SMALL_CACHE) free(p);
  else if (p) free(((void **)p)[-1]);
}
static int cpu_copy(void *dst, const void *src, size_t n, int index) {
  (void)index;
  memcpy(dst, src, n);
  return 0;
}
static int cpu_memset0(void *p, size_t n, int index) {
  (void)index;
  memset(p, 0, n);
  return 0;
}

ct_device_ops ct_devops[CT_NDEVTYPES] = {
    [CT_CPU] = {cpu_alloc, cpu_free, cpu_copy, cpu_copy, cpu_copy, cpu_memset0},
};

ct_category ct_set_default_category(ct_category c) {
  ct_ctx *cx = ct_ctx_cur();
  ct_category old = cx->default_category;
  cx->default_category = c;
  return old;
}

static ct_ctx *owner(const ct_storage *s) { return s->ctx ? s->ctx : ct_ctx_default(); }

static void log_mem(ct_event_kind kind, const ct_storage *s) {
  ct_event e = {.kind = kind, .name = kind == CT_EV_ALLOC ? "alloc" : "free"};
  e.t0 = e.t1 = ct_now_us();
  e.node_id = s->id;
  e.device = s->device;
  e.nbytes = (int64_t)s->nbytes;
  e.category = s->category;
  e.live = ct_ctx_mem_live(owner(s), s->device);
  ct_event_push(&e);
}

ct_storage *ct_storage_new(size_t nbytes, ct_device dev) {
  char dbuf[32];
  if (dev.type == CT_CUDA) ct_init(); /* registers the CUDA row of ct_devops on first use */
  if (!ct_devops[dev.type].alloc) {
    ct_errorf("device %s is not available (chalk.cuda.is_available() is false on this machine)",
              ct_device_str(dev, dbuf, sizeof dbuf));
    return NULL;
  }
  if (dev.type == CT_CUDA && ct_cuda_available() && (dev.index < 0 || dev.index >= ct_cuda_device_count())) {
    ct_errorf("device %s does not exist (%d CUDA device(s) visible)", ct_device_str(dev, dbuf, sizeof dbuf),
              ct_cuda_device_count());
    return NULL;
  }
  ct_storage *s;
  if (dev.type == CT_CPU && nbytes <= CT_INLINE_MAX) { /* one block: header, then the data */
    s = ct_small_alloc(CT_STORAGE_HDR + nbytes);
    if (!s) return ct_errorf("out of host memory allocating %zu bytes", nbytes), NULL;
    s->data = (char *)s + CT_STORAGE_HDR;
  } else {
    s = ct_small_alloc(sizeof *s);
    if (!s) return ct_errorf("out of host memory allocating a storage header"), NULL;
    s->data = ct_devops[dev.type].alloc(nbytes, dev.index);
  }
  if (!s->data) {
    ct_small_free(s, sizeof *s);
    ct_errorf("out of memory on %s allocating %zu bytes", ct_device_str(dev, dbuf, sizeof dbuf), nbytes);
    return NULL;
  }
  s->refcount = 1;
  s->nbytes = nbytes;
  s->device = dev;
  ct_ctx *cx = ct_ctx_cur();
  s->ctx = cx;
  s->category = cx->default_category;
  s->id = next_storage_id++;
  s->version = 0;
  cx->live_storages++;
  ct_ctx_mem_account(cx, dev, s->category, (int64_t)nbytes, true);
  allocated_total += (int64_t)nbytes;
  if (ct_events_on()) log_mem(CT_EV_ALLOC, s);
  return s;
}

void ct_storage_release(ct_storage *s) {
  if (!s || --s->refcount > 0) return;
  ct_ctx *cx = owner(s);
  bool charged = s->ctx != NULL; /* arena slices of a replayed graph are headers of their own */
  ct_ctx_mem_account(cx, s->device, s->category, -(int64_t)s->nbytes, false);
  if (ct_events_on()) log_mem(CT_EV_FREE, s);
  if (storage_inline(s)) ct_small_free(s, CT_STORAGE_HDR + s->nbytes);
  else {
    ct_devops[s->device.type].free(s->data, s->nbytes, s->device.index);
    ct_small_free(s, sizeof *s);
  }
  if (charged) ct_ctx_storage_gone(cx); /* last: may free a context ct_ctx_free left for it */
}

void ct_set_category(ct_tensor *t, ct_category c) {
  ct_storage *s = t->storage;
  if (s->category == c) return;
  ct_ctx_mem_account(owner(s), s->device, s->category, -(int64_t)s->nbytes, false);
  ct_ctx_mem_account(owner(s), s->device, c, (int64_t)s->nbytes, false);
  if (ct_events_on()) { /* a retag reads as a free in the old category and an alloc in the new */
    log_mem(CT_EV_FREE, s);
    s->category = c;
    log_mem(CT_EV_ALLOC, s);
  }
  s->category = c;
}

void ct_mem_get(ct_mem_stats *out) {
  ct_ctx_mem_get(ct_ctx_cur(), out);
  out->allocated_total = allocated_total;
  out->live_tensors = live_tensors;
  out->live_nodes = live_nodes;
}

void ct_mem_reset_peak(void) { ct_ctx_mem_reset_peak(ct_ctx_cur()); }
int64_t ct_mem_allocated_total(void) { return allocated_total; }
void ct_mem_count_tensor(int delta) { live_tensors += delta; }
void ct_mem_count_node(int delta) { live_nodes += delta; }
