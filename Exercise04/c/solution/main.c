/* Solution of the session-4 C main exercise (instructors): read floats from stdin until EOF,
 * quantise them in place with quantizeInt8InFloat, print one per line. */
#include <stdio.h>
#include <stdlib.h>

#include "../quantize.h"

int main(void)
{
    size_t capacity = 16, n = 0;
    float *values = malloc(capacity * sizeof *values);
    if (values == NULL) return 1;

    float x;
    while (scanf("%f", &x) == 1) {  /* 1 = one number read; 0 or EOF ends the loop */
        if (n == capacity) {  /* grow geometrically: amortised O(1) per number */
            capacity *= 2;
            float *grown = realloc(values, capacity * sizeof *values);
            if (grown == NULL) {
                free(values);
                return 1;
            }
            values = grown;
        }
        values[n++] = x;
    }

    quantizeInt8InFloat(n, values, values);  /* in place: src == dst is allowed */
    for (size_t i = 0; i < n; i++) printf("%g\n", values[i]);

    free(values);
    return 0;
}
