/* Self-test of quantizeInt8InFloat (session 4 C exercise). Run with: make
 * Prints every wrong value (at most 10) and exits with status 1 if there is one. */
#include <math.h>
#include <stdio.h>

#include "quantize.h"

/* The expected value written independently of nearbyintf: floor, then look at the fraction. */
static float expected(float x)
{
    if (isnan(x)) return x;
    if (x <= -128.0f) return -128.0f;  /* also -inf */
    if (x >= 127.0f) return 127.0f;    /* also +inf */
    float r = floorf(x), f = x - r;    /* exact for |x| < 2^23 */
    if (f > 0.5f || (f == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;  /* ties go to the even one */
    return r < -128.0f ? -128.0f : r;
}

static int wrong = 0, checked = 0;

static void check(float x)
{
    float got;
    quantizeInt8InFloat(1, &x, &got);
    float want = expected(x);
    checked++;
    if (isnan(want) ? isnan(got) : got == want) return;
    if (wrong++ < 10)
        printf("NG: quantizeInt8InFloat(%g) = %g  (正しくは %g)\n", x, got, want);
}

int main(void)
{
    const float edges[] = {0.0f, -0.0f, 0.4f, 0.5f, 0.6f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f,
                           126.5f, 127.0f, 127.4f, 127.5f, 128.0f, 1e10f, INFINITY,
                           -127.5f, -128.0f, -128.5f, -129.0f, -1e10f, -INFINITY, NAN, 1e-40f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) check(edges[i]);
    for (int k = -1200; k <= 1200; k++) check(k / 4.0f);  /* every .25, .5 and .75 in [-300, 300] */

    /* The whole array at once, in place (src == dst is allowed). */
    float a[] = {2.5f, 3.5f, -200.0f};
    quantizeInt8InFloat(3, a, a);
    checked++;
    if (!(a[0] == 2.0f && a[1] == 4.0f && a[2] == -128.0f)) {
        wrong++;
        printf("NG: 配列 {2.5, 3.5, -200} をまとめて変換すると {%g, %g, %g} (正しくは {2, 4, -128})\n",
               a[0], a[1], a[2]);
    }

    printf("参考: roundf(2.5) = %g (0 から遠い方へ), nearbyintf(2.5) = %g (偶数へ), torch.round(2.5) = 2\n",
           roundf(2.5f), nearbyintf(2.5f));
    if (wrong) {
        printf("NG: %d / %d 件が違います。\n", wrong, checked);
        return 1;
    }
    printf("OK: %d 件すべて正しいです。\n", checked);
    return 0;
}
