/* warpspec_parity.c: lesson 19's kernels in the CUDA parity harness: the warp-specialized GEMM
 * (kernels/warpspec.cu) against the CPU's matmul for 1..8 ring slots on awkward sizes (1, 7, 33,
 * 1000, non-multiples of the 128 x 128 x 16 tile, N not a multiple of 4, a transposed operand), its
 * stamps' ordering; the MLP forward (kernels/persistent.cu) in all three modes against the CPU's
 * linear/relu chain, the modes equal to each other bit for bit; the errors on bad arguments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "tensor/tensor_impl.h"
#include "warpspec.h"

static ct_tensor *op_ws(ct_tensor *const *x, const prm *p) {
  if (x[0]->storage->device.type == CT_CPU) return ct_matmul(x[0], x[1]);
  return ct_ws_gemm(x[0], x[1], p->i[0], NULL);
}

/* MLP of p->i[1] layers on x (x[0]) with W_i = x[2i-1], b_i = x[2i]; p->i[0] the mode. */
static ct_tensor *op_mlp(ct_tensor *const *x, const prm *p) {
  int n = p->i[1];
  if (x[0]->storage->device.type == CT_CPU) {
    ct_tensor *h = ct_retain(x[0]);
    for (int i = 0; i < n && h; i++) {
      ct_tensor *m = ct_matmul(h, x[2 * i + 1]), *a = m ? ct_add(m, x[2 * i + 2]) : NULL;
      ct_release(m), ct_release(h);
      h = a;
      if (h && i + 1 < n) {
        ct_tensor *r = ct_relu(h);
        ct_release(h);
        h = r;
      }
    }
    return h;
  }
  ct_tensor *w[CT_PK_MAX_LAYERS], *b[CT_PK_MAX_LAYERS], *y = NULL;
  for (int i = 0; i < n; i++) w[i] = x[2 * i + 1], b[i] = x[2 * i + 2];
  double ms;
  return ct_pk_mlp(p->i[0], x[0], w, b, n, 2, &y, &ms) ? NULL : y;
}

static void gemm_case(int64_t M, int64_t K, int64_t N, int stages, int lay) {
  int64_t sa[2] = {M, K}, sb[2] = {K, N};
  pair in[2] = {mk(sa, 2, CT_F32, -1, 1, lay, false), mk(sb, 2, CT_F32, -1, 1, LAY_CONTIG, false)};
  char label[120];
  snprintf(label, sizeof label, "%lldx%lld @ %lldx%lld, %d slot(s)%s", (long long)M, (long long)K, (long long)K,
           (long long)N, stages, lay == LAY_T ? ", A transposed" : "");
  run_case("ws_gemm", label, op_ws, &(prm){{stages}, {0}}, in, 2, 1e-10, 0);
  pair_free(&in[0]), pair_free(&in[1]);
}

/* Stamps of one run: per slice the producer issues before the first consumer starts computing,
   every consumer waits before it computes, and a consumer never starts slice i + S before the
   producer issued it. */
static void stamps_case(int stages) {
  int64_t sa[2] = {200, 300}, sb[2] = {300, 150};
  pair a = mk(sa, 2, CT_F32, -1, 1, LAY_CONTIG, false), b = mk(sb, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_tensor *st = NULL, *c = ct_ws_gemm(a.t[1], b.t[1], stages, &st);
  char label[80], why[200] = "";
  snprintf(label, sizeof label, "stamps, %d slot(s)", stages);
  ct_tensor *h = st ? ct_to_device(st, ct_cpu()) : NULL;
  bool ok = c && h && h->shape[0] == 1 + CT_WS_CONSUMERS && h->shape[1] == 19 && h->shape[2] == 3;
  if (!c || !h) snprintf(why, sizeof why, "%s", ct_last_error());
  const int64_t *v = h ? (const int64_t *)ct_data_ptr(h) : NULL;
  int64_t nk = ok ? h->shape[1] : 0;
  for (int64_t i = 0; ok && i < nk; i++) {
    const int64_t *pr = v + i * 3;
    ok = pr[0] <= pr[1] && pr[1] <= pr[2];
    for (int w = 1; ok && w <= CT_WS_CONSUMERS; w++) {
      const int64_t *cs = v + (w * nk + i) * 3;
      ok = cs[0] <= cs[1] && cs[1] <= cs[2] && cs[1] >= pr[1];
      if (!ok)
        snprintf(why, sizeof why, "slice %lld warp %d: consumer %lld %lld %lld, producer issue %lld", (long long)i, w,
                 (long long)cs[0], (long long)cs[1], (long long)cs[2], (long long)pr[1]);
    }
  }
  record("ws_gemm", label, ok, 0, why);
  ct_release(c), ct_release(st), ct_release(h);
  pair_free(&a), pair_free(&b);
}

static void mlp_case(int64_t B, const int64_t *dims, int nlayers) {
  static const char *const modes[] = {"per_op", "graph", "persistent"};
  pair in[1 + 2 * CT_PK_MAX_LAYERS];
  int64_t sx[2] = {B, dims[0]};
  in[0] = mk(sx, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  for (int i = 0; i < nlayers; i++) {
    int64_t sw[2] = {dims[i], dims[i + 1]}, sb[1] = {dims[i + 1]};
    in[2 * i + 1] = mk(sw, 2, CT_F32, -0.3, 0.3, LAY_CONTIG, false);
    in[2 * i + 2] = mk(sb, 1, CT_F32, -1, 1, LAY_CONTIG, false);
  }
  ct_tensor *y[3] = {NULL, NULL, NULL};
  for (int m = 0; m < 3; m++) {
    char label[120];
    snprintf(label, sizeof label, "batch %lld, %d layers (%lld in), %s", (long long)B, nlayers, (long long)dims[0],
             modes[m]);
    run_case("persistent_mlp", label, op_mlp, &(prm){{m, nlayers}, {0}}, in, 1 + 2 * nlayers, 1e-10, 0);
    ct_tensor *w[CT_PK_MAX_LAYERS], *b[CT_PK_MAX_LAYERS];
    for (int i = 0; i < nlayers; i++) w[i] = in[2 * i + 1].t[1], b[i] = in[2 * i + 2].t[1];
    double ms;
    if (ct_pk_mlp(m, in[0].t[1], w, b, nlayers, 3, &y[m], &ms)) y[m] = NULL;
  }
  for (int m = 1; m < 3; m++) {
    char label[120];
    snprintf(label, sizeof label, "batch %lld: %s equals per_op exactly", (long long)B, modes[m]);
    const char *why = "no output";
    double e = y[0] && y[m] ? compare(y[0], y[m], &why) : INFINITY;
    record("persistent_mlp", label, e == 0, e, why);
  }
  for (int m = 0; m < 3; m++) ct_release(y[m]);
  for (int i = 0; i < 1 + 2 * nlayers; i++) pair_free(&in[i]);
}

void cases_warpspec(void) {
  for (int s = 0; s < NSIZES; s++)
    for (int t = 0; t < NSIZES; t++)
      gemm_case(SIZES[s], SIZES[t], SIZES[(s + t + 1) % NSIZES], 1 + (s + t) % 4, LAY_CONTIG);
  gemm_case(130, 37, 129, 2, LAY_T);
  gemm_case(257, 129, 300, 8, LAY_CONTIG);
  if (!QUICK) gemm_case(1000, 1000, 1000, 4, LAY_CONTIG);
  for (int s = 1; s <= 8; s *= 2) stamps_case(s);
  for (int s = 0; s < NSIZES; s++) mlp_case(SIZES[s], (const int64_t[]){33, 7, 40, 1}, 3);
  mlp_case(64, (const int64_t[]){784, 512, 256, 10}, 3);
  mlp_case(1, (const int64_t[]){5, 3}, 1);
  /* errors name the call and the shapes */
  int64_t s2[2] = {3, 4}, s3[2] = {5, 2};
  pair a = mk(s2, 2, CT_F32, -1, 1, LAY_CONTIG, false), b = mk(s3, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_tensor *c = ct_ws_gemm(a.t[1], b.t[1], 4, NULL);
  record("ws_gemm", "shape mismatch is an error", !c && strstr(ct_last_error(), "cuda.ws_gemm"), 0, ct_last_error());
  ct_release(c);
  int64_t s4[2] = {4, 5};
  pair d = mk(s4, 2, CT_F32, -1, 1, LAY_CONTIG, false);
  c = ct_ws_gemm(a.t[1], d.t[1], 9, NULL); /* [3,4] @ [4,5]: only the slot count is wrong */
  record("ws_gemm", "9 slots is an error", !c && strstr(ct_last_error(), "1 to 8"), 0, ct_last_error());
  ct_release(c);
  pair_free(&a), pair_free(&b), pair_free(&d);
}
