/* Session 4 C exercise: the int8 quantiser of MyModules.quant.Int8InFloatFunction, in C.
 * See docs/04_customized_op.md ("C で書いてみる"). */
#ifndef QUANTIZE_H
#define QUANTIZE_H

#include <stddef.h>

/* dst[i] = clamp(round(src[i]), -128, 127) for i = 0 .. n-1, kept as float.
 * Rounding: halves to the nearest even integer (2.5 -> 2, 3.5 -> 4), as torch.round.
 * NaN stays NaN; +inf -> 127, -inf -> -128. src and dst may be the same array. */
void quantizeInt8InFloat(size_t n, const float *src, float *dst);

#endif
