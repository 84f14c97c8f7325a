/* cases_backend.c: checks of the CUDA backend itself (not op parity): the caching allocator
 * (reuse, release on demand, the out-of-memory message the Lua side keys on), poisoning of new
 * blocks, GPU times in the event log, bad device indices, and copies between GPUs when there
 * are several; then every matmul ladder rung against cuBLAS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/events.h"
#include "harness.h"
#include "ladder.h"

static bool all_nan(const ct_tensor *t) {
  int64_t n = ct_numel(t);
  double v[64];
  if (n > 64) n = 64;
  ct_tensor *s = ct_narrow((ct_tensor *)t, 0, 0, n);
  bool ok = s && !ct_to_doubles(s, v);
  for (int64_t i = 0; ok && i < n; i++) ok = isnan(v[i]);
  ct_release(s);
  return ok;
}

void cases_backend(void) {
  char why[400];
  /* devices */
  int n = ct_cuda_device_count();
  char name[256] = "";
  bool ok = n >= 1 && !ct_cuda_device_name(0, name, sizeof name) && name[0];
  record("devices", "count and name", ok, 0, ct_last_error());

  /* the allocator reuses freed blocks: once the cache holds a round's blocks, the same requests
     again need no new device memory (best fit from the same state makes the same choices) */
  int64_t sizes[40];
  ct_tensor *ts[40];
  for (int i = 0; i < 40; i++) sizes[i] = irand(1, 3 << 20);
  int64_t res_prev = -1, res_last = -2, alloc_start = 0, alloc_end = -1;
  for (int round = 0; round < 4; round++) {
    int64_t al, rs;
    ct_cuda_memory_info(0, &al, &rs);
    if (round == 0) alloc_start = al;
    for (int i = 0; i < 40; i++) ts[i] = ct_empty(&sizes[i], 1, CT_F32, GPU);
    for (int i = 0; i < 40; i++) ct_release(ts[i]);
    ct_cuda_memory_info(0, &alloc_end, &rs);
    res_prev = res_last;
    res_last = rs;
  }
  snprintf(why, sizeof why, "reserved %lld bytes after round 3, %lld after round 4; allocated %lld -> %lld",
           (long long)res_prev, (long long)res_last, (long long)alloc_start, (long long)alloc_end);
  const char *nc = getenv("CHALK_CUDA_NO_CACHE");
  bool cached = !(nc && *nc && strcmp(nc, "0")); /* without the cache there is nothing to reuse */
  if (cached) record("allocator", "freed blocks are reused", res_prev == res_last && alloc_end == alloc_start, 0, why);
  int64_t a0, r0, a1, r1;
  ct_cuda_memory_info(0, &a0, &r0);
  ct_cuda_empty_cache();
  ct_cuda_memory_info(0, &a1, &r1);
  snprintf(why, sizeof why, "reserved %lld -> %lld bytes, allocated %lld", (long long)r0, (long long)r1, (long long)a1);
  if (cached) record("allocator", "empty_cache releases unused segments", r1 < r0 && r1 >= a1 && a1 == a0, 0, why);

  /* out of memory: a clear message, and the device still works afterwards */
  int64_t huge = (int64_t)1 << 46;
  ct_tensor *h = ct_empty(&huge, 1, CT_F32, GPU);
  snprintf(why, sizeof why, "%s", h ? "allocation of 256 TiB succeeded" : ct_last_error());
  record("allocator", "out of memory message", !h && strstr(ct_last_error(), "out of memory on cuda"), 0, why);
  ct_release(h);
  int64_t small = 1000;
  ct_tensor *z = ct_zeros(&small, 1, CT_F32, GPU);
  double v = -1;
  int64_t i0 = 0;
  record("allocator", "allocation after out of memory", z && !ct_get(z, &i0, &v) && v == 0, 0, ct_last_error());
  ct_release(z);

  /* poisoning: new blocks read as NaN, so unwritten outputs fail the parity checks */
  ct_tensor *e = ct_empty(&small, 1, CT_F32, GPU);
  record("allocator", "new blocks are poisoned (CHALK_CUDA_POISON)", e && all_nan(e), 0, "empty() was not NaN");
  ct_release(e);

  /* a device that does not exist */
  ct_device bad = {CT_CUDA, n + 3};
  ct_tensor *b = ct_empty(&small, 1, CT_F32, bad);
  snprintf(why, sizeof why, "%s", b ? "succeeded" : ct_last_error());
  char want[40];
  snprintf(want, sizeof want, "cuda:%d", n + 3);
  record("devices", "allocating on a missing device fails naming it", !b && strstr(ct_last_error(), want), 0, why);
  ct_release(b);

  /* GPU times in the event log */
  ct_events_start();
  int64_t big = 1 << 22;
  pair x = mk(&big, 1, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_tensor *y = ct_add(x.t[1], x.t[1]);
  int64_t ms[2] = {512, 512};
  pair m = mk(ms, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_tensor *c = ct_cuda_matmul_impl(m.t[1], m.t[1], "tiled");
  int rc = ct_cuda_synchronize();
  ct_events_stop();
  bool found_add = false, found_mm = false, sane = rc == 0;
  for (size_t i = 0; i < ct_events_count(); i++) {
    const ct_event *ev = ct_events_get(i);
    if (ev->kind != CT_EV_OP || ev->device.type != CT_CUDA) continue;
    if (!strcmp(ev->name, "add") && y && ev->tensor_id == y->id) found_add = true, sane &= ev->t1 > ev->t0 && ev->t0 >= 0;
    if (!strcmp(ev->name, "matmul[tiled]") && c && ev->tensor_id == c->id)
      found_mm = true, sane &= ev->t1 > ev->t0 && ev->t0 >= 0 && ev->t1 - ev->t0 < 1e6;
  }
  snprintf(why, sizeof why, "add event %s, matmul[tiled] event %s, times %s", found_add ? "found" : "missing",
           found_mm ? "found" : "missing", sane ? "ordered" : "not ordered");
  record("events", "GPU op times in the log", found_add && found_mm && sane, 0, why);
  ct_release(y), ct_release(c);
  pair_free(&x), pair_free(&m);
  ct_events_clear();

  /* several GPUs: copies between them */
  if (n >= 2) {
    int64_t s[2] = {33, 7};
    pair p = mk(s, 2, CT_F32, -1, 1, LAY_T, false);
    ct_tensor *o = ct_to_device(p.t[1], (ct_device){CT_CUDA, 1});
    ct_tensor *back = o ? ct_to_device(o, ct_cpu()) : NULL;
    const char *w;
    double err = compare(p.t[0], back, &w);
    record("devices", "copy cuda:0 -> cuda:1 -> cpu", !w && err == 0, err, w);
    ct_release(o), ct_release(back);
    pair_free(&p);
  }
}

/* ==== the matmul ladder ================================================================================ */
void cases_ladder(void) {
  int nimpl;
  const char *const *impls = ct_cuda_matmul_impls(&nimpl);
  const int64_t dims[][3] = {{1, 1, 1},       {7, 7, 7},     {33, 65, 17},    {128, 128, 128},
                             {130, 257, 129}, {1000, 333, 517}, {256, 512, 1024}, {1024, 1024, 1024}};
  char label[200];
  for (size_t k = 0; k < (QUICK ? 5 : sizeof dims / sizeof *dims); k++) {
    int64_t M = dims[k][0], N = dims[k][1], K = dims[k][2], as[2] = {M, K}, bs[2] = {K, N};
    for (int lay = 0; lay < 2; lay++) {
      pair a = mk(as, 2, CT_F32, -1, 1, lay ? LAY_T : LAY_CONTIG, false), b = mk(bs, 2, CT_F32, -1, 1, LAY_CONTIG, false);
      ct_tensor *ref = ct_cuda_matmul_impl(a.t[1], b.t[1], "cublas");
      /* cuBLAS itself against the CPU */
      ct_tensor *cpu = ct_matmul(a.t[0], b.t[0]);
      const char *w;
      double e = compare(cpu, ref, &w);
      snprintf(label, sizeof label, "cublas vs cpu %lldx%lldx%lld %s", (long long)M, (long long)N, (long long)K,
               lay ? "A transposed" : "");
      record("ladder cublas", label, !w && e < 1e-9, e, w ? w : "NMSE above 1e-9");
      for (int i = 0; i < nimpl; i++) {
        const char *impl = impls[i];
        if (!strcmp(impl, "cublas")) continue;
        if (!strcmp(impl, "naive") && M * N * K > (int64_t)1 << 28) continue; /* seconds of nothing */
        double tol = strstr(impl, "bf16") ? 1e-4 : strstr(impl, "tf32") ? 1e-5 : 1e-10;
        ct_tensor *got = ct_cuda_matmul_impl(a.t[1], b.t[1], impl);
        e = compare(ref, got, &w);
        char op[64];
        snprintf(op, sizeof op, "ladder %s", impl);
        snprintf(label, sizeof label, "%lldx%lldx%lld %s", (long long)M, (long long)N, (long long)K,
                 lay ? "A transposed" : "");
        record(op, label, got && !w && e <= tol, e, got ? (w ? w : "NMSE above threshold") : ct_last_error());
        ct_release(got);
      }
      ct_release(ref), ct_release(cpu);
      pair_free(&a), pair_free(&b);
    }
  }
  /* errors: unknown implementation, mismatched shapes, a CPU operand */
  int64_t s[2] = {4, 5};
  pair a = mk(s, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_tensor *r = ct_cuda_matmul_impl(a.t[1], a.t[1], "tiled");
  record("ladder errors", "shapes 4x5 @ 4x5", !r && strstr(ct_last_error(), "cannot be multiplied"), 0, ct_last_error());
  ct_release(r);
  r = ct_cuda_matmul_impl(a.t[1], a.t[1], "fastest");
  record("ladder errors", "unknown impl", !r && strstr(ct_last_error(), "warptile"), 0, ct_last_error());
  ct_release(r);
  r = ct_cuda_matmul_impl(a.t[0], a.t[1], "tiled");
  record("ladder errors", "operand on the CPU", !r && strstr(ct_last_error(), "on cpu"), 0, ct_last_error());
  ct_release(r);
  pair_free(&a);
}
