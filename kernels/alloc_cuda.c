/* alloc_cuda.c: the caching allocator for device memory, after PyTorch's: requests are rounded to
 * 512 bytes; small ones (<= 1 MiB) are carved from 2 MiB segments, large ones from segments of
 * 20 MiB (requests under 10 MiB) or their own size rounded to 2 MiB. A freed block goes back to
 * its pool, merged with free neighbours of its segment, and is reused best-fit (split when the
 * rest is worth keeping). cudaMalloc failing releases every wholly free segment and retries once;
 * failing again returns NULL, and core reports "out of memory on cuda:N".
 * Invariants: blocks of one segment form an address-ordered list (prev/next); no two neighbours
 * are both free; a free block is in exactly one pool's sorted array, an allocated one in the
 * address table; allocated + free cached bytes == reserved bytes. Frees are stream-ordered: all
 * work of a device runs on its one stream, so a block reused by the next op is safe.
 * Set CHALK_CUDA_POISON=1 to fill every new allocation with 0xff bytes (NaN for floats), which
 * makes an output element a kernel forgot to write visible in tests; CHALK_CUDA_NO_CACHE=1 to give
 * every request its own exact cudaMalloc and cudaFree (slow: for compute-sanitizer, which sees
 * out-of-bounds accesses only at the edges of driver allocations).
 *
 * Graph pools (after PyTorch's private pools): while a CUDA Graph is recorded (core/fuse_cuda.c
 * calls ct_cu_graph_pool_begin/end around the capture, through the hooks of core/capture.h),
 * every allocation on that device comes from a pool owned by the graph, and so does the memory
 * of a block freed again during the recording: the graph's replays read and write those
 * addresses, so they must never hold anything else. A pool has its own segments (a wholly free
 * segment taken over from the shared cache, else a new cudaMalloc) and its own free lists; a
 * block remembers its pool (owner) and goes back to it when freed, whenever that happens; blocks
 * of a pool are never given to an allocation outside it. ct_cu_graph_pool_release (the graph is
 * destroyed) hands the pool's segments back to the shared cache, each as soon as none of its
 * blocks is still held (under CHALK_CUDA_NO_CACHE: cudaFree'd, and a pool's blocks are kept, not
 * cudaFree'd, until then). Outside a recording the only extra work is one test of the device's
 * active pool per allocation and of the block's owner per free. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define ROUND 512
#define SMALL_MAX ((size_t)1 << 20)
#define SMALL_SEGMENT ((size_t)2 << 20)
#define LARGE_SEGMENT ((size_t)20 << 20)
#define LARGE_DIRECT ((size_t)10 << 20)
#define SEGMENT_ROUND ((size_t)2 << 20)

struct graph_pool;

typedef struct block {
  char *ptr;
  size_t size;
  bool free, small;
  struct block *prev, *next; /* neighbours in the segment, by address */
  struct block *hnext;       /* address-table chain */
  struct graph_pool *owner;  /* the graph pool of its segment; NULL: the shared cache */
} block;

typedef struct {
  block **v;
  size_t n, cap;
} pool;

/* The free lists of one cache: the shared one of a device, or a graph's. */
typedef struct {
  pool small, large;
} pool_set;

/* A CUDA Graph's private pool. Every segment it holds is wholly its own. */
typedef struct graph_pool {
  pool_set set;
  size_t nallocated;               /* its blocks handed out and not freed yet */
  bool released;                   /* the graph is gone: segments go back once unused */
  struct graph_pool *outer;        /* the pool active before this one began (normally NULL) */
  struct graph_pool *prev, *next;  /* the device's live pools */
} graph_pool;

typedef struct {
  pool_set shared;
  graph_pool *active; /* allocations come from this pool while a graph is recorded; else NULL */
  graph_pool *pools;  /* live graph pools (begun, not yet wholly returned) */
  block **table;      /* allocated blocks by address */
  size_t nbuckets, nallocated;
  int64_t allocated, reserved;
} device_heap;

static device_heap heaps[CT_CUDA_MAX_DEVICES];
static int poison = -1, no_cache = -1;

static bool env_flag(const char *name) {
  const char *env = getenv(name);
  return env && *env && strcmp(env, "0") != 0;
}

/* ---- pools: free blocks sorted by (size, address) ---------------------------------------- */

static bool block_less(const block *a, const block *b) {
  return a->size < b->size || (a->size == b->size && (uintptr_t)a->ptr < (uintptr_t)b->ptr);
}

static size_t pool_lower_bound(const pool *p, const block *key) {
  size_t lo = 0, hi = p->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (block_less(p->v[mid], key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int pool_insert(pool *p, block *b) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    block **v = realloc(p->v, sizeof *v * cap);
    if (!v) return -1;
    p->v = v;
    p->cap = cap;
  }
  size_t i = pool_lower_bound(p, b);
  memmove(p->v + i + 1, p->v + i, sizeof *p->v * (p->n - i));
  p->v[i] = b;
  p->n++;
  return 0;
}

static void pool_remove(pool *p, block *b) {
  size_t i = pool_lower_bound(p, b);
  if (i < p->n && p->v[i] == b) {
    memmove(p->v + i, p->v + i + 1, sizeof *p->v * (p->n - i - 1));
    p->n--;
  }
}

/* Smallest free block of at least size bytes, removed from the pool. */
static block *pool_take(pool *p, size_t size) {
  block key = {.ptr = NULL, .size = size};
  size_t i = pool_lower_bound(p, &key);
  if (i == p->n) return NULL;
  block *b = p->v[i];
  memmove(p->v + i, p->v + i + 1, sizeof *p->v * (p->n - i - 1));
  p->n--;
  return b;
}

/* ---- address table ------------------------------------------------------------------------ */

static size_t hash_ptr(const void *p, size_t nb) { return (size_t)(((uintptr_t)p >> 9) * 0x9E3779B97F4A7C15ull) & (nb - 1); }

static int table_grow(device_heap *h) {
  size_t nb = h->nbuckets ? h->nbuckets * 2 : 1024;
  block **t = calloc(nb, sizeof *t);
  if (!t) return -1;
  for (size_t i = 0; i < h->nbuckets; i++)
    for (block *b = h->table[i], *nx; b; b = nx) {
      nx = b->hnext;
      size_t k = hash_ptr(b->ptr, nb);
      b->hnext = t[k];
      t[k] = b;
    }
  free(h->table);
  h->table = t;
  h->nbuckets = nb;
  return 0;
}

static int table_add(device_heap *h, block *b) {
  if (h->nallocated + 1 > h->nbuckets && table_grow(h)) return -1;
  size_t k = hash_ptr(b->ptr, h->nbuckets);
  b->hnext = h->table[k];
  h->table[k] = b;
  h->nallocated++;
  return 0;
}

static block *table_take(device_heap *h, const void *p) {
  if (!h->nbuckets) return NULL;
  for (block **pp = &h->table[hash_ptr(p, h->nbuckets)]; *pp; pp = &(*pp)->hnext)
    if ((*pp)->ptr == p) {
      block *b = *pp;
      *pp = b->hnext;
      h->nallocated--;
      return b;
    }
  return NULL;
}

/* ---- segments -------------------------------------------------------------------------------- */

static int release_free_segments(device_heap *h, pool *p) {
  int rc = 0;
  size_t w = 0;
  for (size_t i = 0; i < p->n; i++) {
    block *b = p->v[i];
    if (!b->prev && !b->next) { /* a whole segment, unused */
      if (cudaFree(b->ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        rc = -1;
        p->v[w++] = b;
        continue;
      }
      h->reserved -= (int64_t)b->size;
      free(b);
    } else {
      p->v[w++] = b;
    }
  }
  p->n = w;
  return rc;
}

static int empty_cache(int index) {
  if (ct_cu_set_device(index)) return -1;
  device_heap *h = &heaps[index];
  int a = release_free_segments(h, &h->shared.small), b = release_free_segments(h, &h->shared.large);
  return a || b ? ct_errorf("cuda: cudaFree failed while releasing cached memory") : 0;
}

int ct_cu_empty_cache_all(void) {
  int rc = 0;
  for (int i = 0; i < ct_cu_device_count(); i++)
    if (heaps[i].reserved && empty_cache(i)) rc = -1;
  return rc;
}

static block *new_segment(int index, size_t seg_size, bool small) {
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, seg_size);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    device_heap *h = &heaps[index];
    release_free_segments(h, &h->shared.small);
    release_free_segments(h, &h->shared.large);
    e = cudaMalloc(&p, seg_size);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return NULL;
    }
  }
  block *b = calloc(1, sizeof *b);
  if (!b) {
    cudaFree(p);
    return NULL;
  }
  b->ptr = p;
  b->size = seg_size;
  b->small = small;
  heaps[index].reserved += (int64_t)seg_size;
  return b;
}

/* ---- graph pools ------------------------------------------------------------------------------ */

/* A wholly free segment of the shared cache of the given kind, of least bytes or more and most
   bytes or fewer (the smallest such), removed from the cache, for a graph pool; NULL when there is
   none. Only while a graph is recorded: a linear scan. Safe to hand over at once: all work runs
   on the device's one stream, so whatever used the segment before runs before any replay. */
static block *adopt_segment(device_heap *h, bool small, size_t least, size_t most) {
  pool *p = small ? &h->shared.small : &h->shared.large;
  block key = {.ptr = NULL, .size = least};
  for (size_t i = pool_lower_bound(p, &key); i < p->n && p->v[i]->size <= most; i++) {
    block *b = p->v[i];
    if (!b->prev && !b->next) {
      memmove(p->v + i, p->v + i + 1, sizeof *p->v * (p->n - i - 1));
      p->n--;
      return b;
    }
  }
  return NULL;
}

/* A released pool: every wholly free segment goes back to the shared cache (cudaFree'd under
   CHALK_CUDA_NO_CACHE, or when the cache cannot take it); once none of its blocks is held, the
   pool itself is freed. */
static void graph_pool_trim(device_heap *h, graph_pool *gp) {
  pool *lists[2] = {&gp->set.small, &gp->set.large};
  for (int k = 0; k < 2; k++) {
    pool *p = lists[k];
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
      block *b = p->v[i];
      if (b->prev || b->next) { /* its segment still has a block in use */
        p->v[w++] = b;
        continue;
      }
      b->owner = NULL;
      if (no_cache > 0 || pool_insert(b->small ? &h->shared.small : &h->shared.large, b)) {
        if (cudaFree(b->ptr) == cudaSuccess) h->reserved -= (int64_t)b->size;
        else (void)cudaGetLastError(); /* lost to the driver; still counted as reserved */
        free(b);
      }
    }
    p->n = w;
  }
  if (gp->nallocated) return;
  if (gp->prev) gp->prev->next = gp->next;
  else h->pools = gp->next;
  if (gp->next) gp->next->prev = gp->prev;
  free(gp->set.small.v);
  free(gp->set.large.v);
  free(gp);
}

/* One of gp's blocks was freed (it is back in gp's lists). */
static void graph_pool_done(device_heap *h, graph_pool *gp) {
  gp->nallocated--;
  if (gp->released) graph_pool_trim(h, gp);
}

void *ct_cu_graph_pool_begin(int device) {
  if (device < 0 || device >= ct_cu_device_count()) return NULL;
  device_heap *h = &heaps[device];
  graph_pool *gp = calloc(1, sizeof *gp);
  if (!gp) return NULL; /* no pool: the capture goes on, unprotected, as without the hook */
  gp->outer = h->active;
  gp->next = h->pools;
  if (h->pools) h->pools->prev = gp;
  h->pools = gp;
  h->active = gp;
  return gp;
}

void ct_cu_graph_pool_end(int device, void *token) {
  if (!token || device < 0 || device >= CT_CUDA_MAX_DEVICES) return;
  graph_pool *gp = token;
  for (graph_pool **pp = &heaps[device].active; *pp; pp = &(*pp)->outer)
    if (*pp == gp) {
      *pp = gp->outer;
      break;
    }
  gp->outer = NULL;
}

void ct_cu_graph_pool_release(int device, void *token) {
  if (!token || device < 0 || device >= CT_CUDA_MAX_DEVICES) return;
  graph_pool *gp = token;
  ct_cu_graph_pool_end(device, gp); /* no-op unless the recording never ended */
  gp->released = true;
  (void)ct_cu_set_device(device); /* for the cudaFree calls of trim */
  graph_pool_trim(&heaps[device], gp);
}

/* ---- the device-memory operations ---------------------------------------------------------- */

/* CHALK_CUDA_NO_CACHE: one driver allocation per request, still in the address table. */
static void *alloc_uncached(device_heap *h, size_t nbytes) {
  void *p = NULL;
  if (cudaMalloc(&p, nbytes ? nbytes : 1) != cudaSuccess) {
    (void)cudaGetLastError();
    return NULL;
  }
  block *b = calloc(1, sizeof *b);
  if (b) b->ptr = p, b->size = nbytes, b->owner = h->active;
  if (!b || table_add(h, b)) {
    free(b);
    cudaFree(p);
    return NULL;
  }
  h->allocated += (int64_t)nbytes;
  h->reserved += (int64_t)nbytes;
  if (b->owner) b->owner->nallocated++;
  return p;
}

void *ct_cu_alloc(size_t nbytes, int index) {
  if (ct_cu_set_device(index)) return NULL;
  device_heap *h = &heaps[index];
  if (no_cache < 0) no_cache = env_flag("CHALK_CUDA_NO_CACHE");
  if (poison < 0) poison = env_flag("CHALK_CUDA_POISON");
  if (no_cache) {
    void *p = alloc_uncached(h, nbytes);
    cudaStream_t s = p && poison ? ct_cu_stream(index) : NULL;
    if (s) (void)cudaMemsetAsync(p, 0xff, nbytes, s);
    return p;
  }
  size_t size = nbytes ? (nbytes + ROUND - 1) / ROUND * ROUND : ROUND;
  if (size < nbytes) return NULL; /* overflow */
  bool small = size <= SMALL_MAX;
  graph_pool *gp = h->active;
  pool_set *ps = gp ? &gp->set : &h->shared;
  pool *p = small ? &ps->small : &ps->large;
  block *b = pool_take(p, size);
  if (!b) {
    size_t seg = small ? SMALL_SEGMENT : size < LARGE_DIRECT ? LARGE_SEGMENT : (size + SEGMENT_ROUND - 1) / SEGMENT_ROUND * SEGMENT_ROUND;
    if (gp && (b = adopt_segment(h, small, small ? seg : size, seg))) b->owner = gp;
    else if ((b = new_segment(index, seg, small))) b->owner = gp;
    else return NULL;
  }
  size_t rest = b->size - size;
  if (small ? rest >= ROUND : rest > SMALL_MAX) { /* split: the tail stays cached */
    block *t = calloc(1, sizeof *t);
    if (t) {
      t->ptr = b->ptr + size;
      t->size = rest;
      t->small = small;
      t->free = true;
      t->owner = b->owner;
      t->prev = b;
      t->next = b->next;
      if (b->next) b->next->prev = t;
      b->next = t;
      b->size = size;
      if (pool_insert(p, t)) { /* cannot cache the tail: undo the split */
        b->next = t->next;
        if (t->next) t->next->prev = b;
        b->size += rest;
        free(t);
      }
    }
  }
  b->free = false;
  if (table_add(h, b)) {
    b->free = true;
    pool_insert(p, b);
    return NULL;
  }
  h->allocated += (int64_t)b->size;
  if (gp) gp->nallocated++;
  if (poison) {
    cudaStream_t s = ct_cu_stream(index);
    if (s) (void)cudaMemsetAsync(b->ptr, 0xff, b->size, s);
  }
  return b->ptr;
}

/* b takes over its neighbour after it (same segment, out of every pool): sizes add, the
   neighbour's header is freed. */
static void absorb_next(block *b) {
  block *c = b->next;
  b->size += c->size;
  b->next = c->next;
  if (c->next) c->next->prev = b;
  free(c);
}

void ct_cu_free(void *ptr, size_t nbytes, int index) {
  (void)nbytes;
  if (!ptr || index < 0 || index >= CT_CUDA_MAX_DEVICES) return;
  device_heap *h = &heaps[index];
  block *b = table_take(h, ptr);
  if (!b) return; /* not ours: nothing safe to do */
  h->allocated -= (int64_t)b->size;
  graph_pool *gp = b->owner;
  if (no_cache > 0) {
    if (gp) { /* a graph's: kept (its replays use it) until the pool is released */
      b->free = true;
      if (pool_insert(&gp->set.large, b)) { /* cannot keep it listed: free it only if the graph is gone */
        if (gp->released && cudaFree(b->ptr) == cudaSuccess) h->reserved -= (int64_t)b->size;
        free(b);
      }
      graph_pool_done(h, gp);
      return;
    }
    h->reserved -= (int64_t)b->size;
    cudaFree(b->ptr);
    free(b);
    return;
  }
  pool_set *ps = gp ? &gp->set : &h->shared;
  pool *p = b->small ? &ps->small : &ps->large;
  b->free = true;
  if (b->prev && b->prev->free) { /* merge into the free block before */
    block *a = b->prev;
    pool_remove(p, a);
    absorb_next(a);
    b = a;
  }
  if (b->next && b->next->free) { /* absorb the free block after */
    pool_remove(p, b->next);
    absorb_next(b);
  }
  if (pool_insert(p, b)) { /* cannot cache it: give a whole segment back, else leak the block */
    if ((!gp || gp->released) && !b->prev && !b->next && cudaFree(b->ptr) == cudaSuccess) {
      h->reserved -= (int64_t)b->size;
      free(b);
    }
  }
  if (gp) graph_pool_done(h, gp);
}

void *ct_cu_scratch(size_t nbytes, int index, const char *what) {
  void *p = ct_cu_alloc(nbytes, index);
  if (!p) ct_errorf("%s: out of memory on cuda:%d allocating %zu bytes of scratch", what, index, nbytes);
  return p;
}

void ct_cu_memory_info(int index, int64_t *allocated, int64_t *reserved, int64_t *cached_blocks) {
  device_heap *h = &heaps[index];
  *allocated = h->allocated;
  *reserved = h->reserved;
  *cached_blocks = (int64_t)(h->shared.small.n + h->shared.large.n);
  for (const graph_pool *gp = h->pools; gp; gp = gp->next) *cached_blocks += (int64_t)(gp->set.small.n + gp->set.large.n);
}
