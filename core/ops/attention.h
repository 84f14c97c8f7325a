/* attention.h: what the attention ops of core/ops_attention.c share with their CUDA kernels in
 * kernels/attention.cu and kernels/flash_tc.cu: the attribute slots of the two flash ops, the tile
 * sizes each device uses, and the layout of the backward op's packed output.
 *
 * Invariants: the tile sizes here are the ones the kernels run with, so the byte counts the op
 * table reports for the GPU (the cost functions) describe the traffic the kernels really make;
 * attention_flash_backward's output is [batch..., Nq*d + Nk*d + Nk*dv]: dq, then dk, then dv,
 * each row-major, per batch element.
 */
#ifndef CHALK_ATTENTION_H
#define CHALK_ATTENTION_H

/* ct_attrs slots of attention_flash and attention_flash_backward */
#define CT_ATTN_CAUSAL 0  /* i[0]: 1 when query i sees keys j <= i only */
#define CT_ATTN_BLOCK_Q 1 /* i[1]: query rows per tile on the CPU (0: CT_ATTN_CPU_BLOCK) */
#define CT_ATTN_BLOCK_K 2 /* i[2]: key rows per tile on the CPU (0: CT_ATTN_CPU_BLOCK) */
#define CT_ATTN_SCALE 0   /* f[0]: the factor of q k^T */

#define CT_ATTN_CPU_BLOCK 64

/* CUDA: the forward kernel sweeps 64-key tiles for 64-query tiles; the backward kernel keeps a
   64-key tile and sweeps query tiles of 64 rows (32 when the head dimension is above 64). Head
   dimensions up to 128 are supported. */
#define CT_ATTN_CUDA_BQ 64
#define CT_ATTN_CUDA_BK 64
#define CT_ATTN_CUDA_BWD_BK 64
#define CT_ATTN_CUDA_BWD_BQ(d) ((d) > 64 ? 32 : 64)
#define CT_ATTN_CUDA_MAX_D 128
/* bf16 runs kernels/flash_tc.cu: query tiles of 128 rows up to head dim 64, else 64 (the other tiles
   are the same as above) */
#define CT_ATTN_CUDA_TC_BQ(d) ((d) > 64 ? 64 : 128)

#endif
