/* optable.c: the op table, in the order of the CT_OPS list; rows live in the op family files. */
#include "optable.h"

#define CT_OP_ROW(name) &ct_op_##name,
const ct_opdef *const ct_optable[CT_OP_COUNT] = {CT_OPS(CT_OP_ROW)};
