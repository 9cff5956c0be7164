/* Solution of the session-4 C exercise (instructors). Must give bit-for-bit the same results as
 * MyModules.quant.Int8InFloatFunction (tests/test_c_exercise.py checks that). */
#include <math.h>

#include "../quantize.h"

void quantizeInt8InFloat(size_t n, const float *src, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        /* nearbyintf rounds in the current rounding mode. The default mode, round-to-nearest-even,
         * is what torch.round does (2.5 -> 2). roundf would round halves away from zero (2.5 -> 3).
         * rintf gives the same values but may raise the "inexact" floating-point flag. */
        float v = nearbyintf(src[i]);
        /* Every comparison with NaN is false, so NaN passes through unchanged, as in torch.clamp.
         * (fmaxf/fminf would replace NaN by the other argument, -128 or 127.) */
        if (v < -128.0f) {
            v = -128.0f;
        } else if (v > 127.0f) {
            v = 127.0f;
        }
        dst[i] = v;
    }
}
