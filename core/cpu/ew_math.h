/* ew_math.h: the math vocabulary of core/ops/elementwise_defs.h for C (CPU loops, fused interpreter):
 * EXP(v) is expf(v) on a float and exp(v) on a double, resolved at compile time; K(c) is c in the
 * compute type T, which the expanding loop typedefs. A0, A1 are defined by each expanding file. */
#ifndef CHALK_CPU_EW_MATH_H
#define CHALK_CPU_EW_MATH_H

#include <math.h>

/* the math vocabulary, resolved at compile time on the operand's type (float: expf, else exp) */
#define CT_EW_F1(F, v) _Generic((v), float: F##f, default: F)(v)
#define EXP(v) CT_EW_F1(exp, v)
#define LOG(v) CT_EW_F1(log, v)
#define SQRT(v) CT_EW_F1(sqrt, v)
#define SIN(v) CT_EW_F1(sin, v)
#define COS(v) CT_EW_F1(cos, v)
#define TANH(v) CT_EW_F1(tanh, v)
#define ERF(v) CT_EW_F1(erf, v)
#define POW(v, p) _Generic((v), float: powf, default: pow)(v, p)
#define K(c) ((T)(c))

#endif
