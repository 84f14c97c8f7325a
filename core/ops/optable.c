/* optable.c: the op table, in the order of the CT_OPS list; rows live in the op family files.
 * The references are strong: an op listed in CT_OPS without a row fails the link, and every
 * program linking libchalk.a gets every op (a row reached only through ct_op_run included). */
#include "ops/optable.h"

#define CT_OP_ROW(name) &ct_op_##name,
const ct_opdef *const ct_optable[CT_OP_COUNT] = {CT_OPS(CT_OP_ROW)};
