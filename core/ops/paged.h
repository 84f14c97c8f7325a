/* paged.h: what the paged_attention row (ops/ops_paged.c) shares with its CUDA forward (kernels/paged.cu). */
#ifndef CHALK_OPS_PAGED_H
#define CHALK_OPS_PAGED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checks the lengths and the table entries each sequence uses (host copies: bt [B,M], len [B]) against
   a pool of NB blocks of S slots; 0, or -1 with an error naming the sequence. */
int ct_paged_check_tables(const int64_t *bt, const int64_t *len, int64_t B, int64_t M, int64_t NB, int64_t S);

#ifdef __cplusplus
}
#endif

#endif
