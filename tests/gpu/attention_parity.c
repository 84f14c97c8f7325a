/* attention_parity.c: the attention cases of the CUDA parity harness (kernels/attention.cu against
 * core/ops_attention.c): flash on the GPU against flash on the CPU, forward and the gradients of
 * q, k, v, for head dims from 3 to 128 (every padded kernel width), sequence lengths that are not
 * multiples of the 64-row tiles, Nq != Nk, causal and not, transposed (non-contiguous) inputs;
 * flash against naive on the GPU at N = 1000; bf16 flash on the GPU (kernels/flash_tc.cu, forward and
 * gradients; every padded head width; N = 1, 7, 33, 1000 at d = 32, 64, 128) against the CPU's f32 on
 * the same bf16-rounded inputs; and the GPU's errors
 * for what it does not run (f64, d > 128). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* p->i[0]: causal, p->i[1]: flash */
static ct_tensor *op_attention(ct_tensor *const *x, const prm *p) {
  ct_attention_opts o = {.causal = p->i[0] != 0, .flash = p->i[1] != 0};
  return ct_attention(x[0], x[1], x[2], &o);
}

typedef struct {
  int64_t b, nq, nk, d, dv;
} shape5;

static void label_of(char *buf, size_t n, const char *what, const shape5 *s, bool causal, int lay) {
  snprintf(buf, n, "%s b%lld q%lld k%lld d%lld dv%lld%s%s", what, (long long)s->b, (long long)s->nq, (long long)s->nk,
           (long long)s->d, (long long)s->dv, causal ? " causal" : "", lay == LAY_T ? " q transposed" : "");
}

/* Flash on both devices in f32 (the harness compares outputs and the three gradients). */
static void gpu_vs_cpu(const shape5 *s, bool causal, int lay) {
  int64_t sq[3] = {s->b, s->nq, s->d}, sk[3] = {s->b, s->nk, s->d}, sv[3] = {s->b, s->nk, s->dv};
  pair in[3] = {mk(sq, 3, CT_F32, -2, 2, lay, true), mk(sk, 3, CT_F32, -2, 2, LAY_CONTIG, true),
                mk(sv, 3, CT_F32, -2, 2, LAY_CONTIG, true)};
  prm p = {{causal, 1}, {0}};
  char label[200];
  label_of(label, sizeof label, "flash", s, causal, lay);
  run_case("attention_flash", label, op_attention, &p, in, 3, 1e-9, 1e-8);
  for (int i = 0; i < 3; i++) pair_free(&in[i]);
}

/* Flash against naive, both on the GPU. */
static void flash_vs_naive_gpu(const shape5 *s, bool causal) {
  int64_t sq[3] = {s->b, s->nq, s->d}, sk[3] = {s->b, s->nk, s->d}, sv[3] = {s->b, s->nk, s->dv};
  pair in[3] = {mk(sq, 3, CT_F32, -2, 2, LAY_CONTIG, true), mk(sk, 3, CT_F32, -2, 2, LAY_CONTIG, true),
                mk(sv, 3, CT_F32, -2, 2, LAY_CONTIG, true)};
  ct_attention_opts fo = {.causal = causal, .flash = true}, no = {.causal = causal};
  ct_tensor *of = ct_attention(in[0].t[1], in[1].t[1], in[2].t[1], &fo);
  ct_tensor *on = ct_attention(in[0].t[1], in[1].t[1], in[2].t[1], &no);
  char label[200];
  label_of(label, sizeof label, "flash vs naive on cuda", s, causal, LAY_CONTIG);
  const char *w = NULL;
  double e = of && on ? compare(on, of, &w) : INFINITY;
  record("attention_flash", label, of && on && !w && e < 1e-9, e, of && on ? w : ct_last_error());
  if (of && on) {
    ct_tensor *g = ct_ones_like(of), *x[3] = {in[0].t[1], in[1].t[1], in[2].t[1]}, *gf[3] = {0}, *gn[3] = {0};
    int rc = ct_grad(of, g, x, 3, gf, false, false) || ct_grad(on, g, x, 3, gn, false, false);
    for (int i = 0; i < 3; i++) {
      char gl[240];
      snprintf(gl, sizeof gl, "%s grad of input %d", label, i + 1);
      double ge = rc ? INFINITY : compare(gn[i], gf[i], &w);
      record("attention_flash", gl, !rc && !w && ge < 1e-8, ge, rc ? ct_last_error() : w);
      ct_release(gf[i]), ct_release(gn[i]);
    }
    ct_release(g);
  }
  ct_release(of), ct_release(on);
  for (int i = 0; i < 3; i++) pair_free(&in[i]);
}

/* bf16 flash on the GPU (kernels/flash_tc.cu: tensor cores, forward and backward) against f32 flash on
   the CPU of the same bf16-rounded values: the output, and (grads) the gradients of sum(out * w) for a
   random w, within bf16 tolerance (P and dS are rounded to bf16 before their products, as in
   FlashAttention-2). */
static void bf16_vs_cpu(const shape5 *s, bool causal, bool grads) {
  int64_t sq[3] = {s->b, s->nq, s->d}, sk[3] = {s->b, s->nk, s->d}, sv[3] = {s->b, s->nk, s->dv};
  int64_t so[3] = {s->b, s->nq, s->dv};
  pair in[4] = {mk(sq, 3, CT_F32, -2, 2, LAY_CONTIG, false), mk(sk, 3, CT_F32, -2, 2, LAY_CONTIG, false),
                mk(sv, 3, CT_F32, -2, 2, LAY_CONTIG, false), mk(so, 3, CT_F32, -1, 1, LAY_CONTIG, false)};
  ct_tensor *gb[4], *cr[4];
  bool ok = true;
  for (int i = 0; i < 4; i++) {
    gb[i] = ct_to_dtype(in[i].t[1], CT_BF16);
    ct_tensor *rounded = gb[i] ? ct_to_device(gb[i], ct_cpu()) : NULL;
    cr[i] = rounded ? ct_to_dtype(rounded, CT_F32) : NULL;
    ct_release(rounded);
    ok &= gb[i] && cr[i];
    if (ok && grads && i < 3) ok &= !ct_requires_grad_(gb[i], true) && !ct_requires_grad_(cr[i], true);
  }
  char label[200];
  label_of(label, sizeof label, "bf16 flash vs cpu f32", s, causal, LAY_CONTIG);
  ct_attention_opts o = {.causal = causal, .flash = true};
  ct_tensor *ref = ok ? ct_attention(cr[0], cr[1], cr[2], &o) : NULL;
  ct_tensor *got = ok ? ct_attention(gb[0], gb[1], gb[2], &o) : NULL;
  ct_tensor *got32 = got ? ct_to_dtype(got, CT_F32) : NULL;
  const char *w = NULL;
  double e = ref && got32 ? compare(ref, got32, &w) : INFINITY;
  bool pass = got32 && got->dtype == CT_BF16 && !w && e < 1e-4; /* bf16 keeps 8 bits: NMSE ~ 1e-5 */
  record("attention_flash bf16", label, pass, e, got32 ? w : ct_last_error());
  if (grads && ref && got) {
    ct_tensor *gr[3] = {0}, *gg[3] = {0};
    int rc = ct_grad(ref, cr[3], cr, 3, gr, false, false) || ct_grad(got, gb[3], gb, 3, gg, false, false);
    for (int i = 0; i < 3; i++) {
      char gl[240];
      snprintf(gl, sizeof gl, "%s grad of input %d", label, i + 1);
      ct_tensor *g32 = rc ? NULL : ct_to_dtype(gg[i], CT_F32);
      double ge = g32 ? compare(gr[i], g32, &w) : INFINITY;
      /* bf16 gradients: inputs, P and dS rounded to 8 bits, dQ summed over key tiles in f32 */
      record("attention_flash_backward bf16", gl, g32 && gg[i]->dtype == CT_BF16 && !w && ge < 1e-3, ge,
             g32 ? w : ct_last_error());
      ct_release(g32), ct_release(gr[i]), ct_release(gg[i]);
    }
  }
  ct_release(ref), ct_release(got), ct_release(got32);
  for (int i = 0; i < 4; i++) ct_release(gb[i]), ct_release(cr[i]), pair_free(&in[i]);
}

/* What the GPU refuses, with a message that says why. */
static void gpu_errors(void) {
  int64_t s[3] = {1, 8, 4}, big[3] = {1, 8, 130};
  pair d64 = mk(s, 3, CT_F64, -1, 1, LAY_CONTIG, false), wide = mk(big, 3, CT_F32, -1, 1, LAY_CONTIG, false);
  ct_attention_opts o = {.flash = true};
  ct_tensor *r = ct_attention(d64.t[1], d64.t[1], d64.t[1], &o);
  record("attention_flash errors", "f64 on cuda", !r && strstr(ct_last_error(), "f32, bf16"), 0,
         r ? "f64 ran" : ct_last_error());
  ct_release(r);
  r = ct_attention(wide.t[1], wide.t[1], wide.t[1], &o);
  record("attention_flash errors", "d = 130 on cuda", !r && strstr(ct_last_error(), "up to 128"), 0,
         r ? "d = 130 ran" : ct_last_error());
  ct_release(r);
  pair_free(&d64), pair_free(&wide);
}

void cases_attention(void) {
  const shape5 shapes[] = {{1, 1, 1, 3, 2},       {6, 37, 29, 8, 8},     {2, 130, 130, 64, 64}, {2, 200, 77, 128, 128},
                           {3, 64, 300, 40, 24},  {2, 65, 65, 32, 32},   {1, 300, 65, 16, 100}, {2, 513, 511, 64, 64}};
  size_t n = QUICK ? 5 : sizeof shapes / sizeof *shapes;
  for (size_t i = 0; i < n; i++)
    for (int causal = 0; causal < 2; causal++) gpu_vs_cpu(&shapes[i], causal, (i & 1) ? LAY_T : LAY_CONTIG);
  const shape5 big = {2, 1000, 1000, 64, 64};
  for (int causal = 0; causal < 2; causal++) {
    if (!QUICK) flash_vs_naive_gpu(&big, causal);
    for (size_t i = 1; i < n; i++) bf16_vs_cpu(&shapes[i], causal, true); /* head dims 8 to 128: every tile width */
  }
  /* the tensor-core kernels on N = 1, 7, 33, 1000 (tails of every tile) at head dims 32, 64, 128 */
  const int64_t dims[3] = {32, 64, 128};
  for (int di = 0; di < 3; di++)
    for (int si = 0; si < NSIZES; si++)
      for (int causal = 0; causal < 2; causal++) {
        const shape5 sh = {2, SIZES[si], SIZES[si], dims[di], dims[di]};
        bf16_vs_cpu(&sh, causal, true);
      }
  gpu_errors();
}
