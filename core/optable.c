/* optable.c: the op table, in the order of the CT_OPS list; rows live in the op family files.
 * Rows are weak references while the op families are being written in parallel: a missing row
 * reads as NULL and ct_op_run reports "op not built" instead of failing the link. */
#include "optable.h"

#define CT_OP_WEAK(name) extern const ct_opdef ct_op_##name __attribute__((weak));
CT_OPS(CT_OP_WEAK)
#undef CT_OP_WEAK

#define CT_OP_ROW(name) &ct_op_##name,
const ct_opdef *const ct_optable[CT_OP_COUNT] = {CT_OPS(CT_OP_ROW)};
