/* 課題 (宿題): quantizeInt8InFloat を使う main を自分で書いてください (docs/04_customized_op.md 9 章)。
 *
 * 標準入力から float の数を空白か改行で区切って EOF まで読み、配列にためて、quantizeInt8InFloat で
 * まとめて (その場で) 量子化し、結果を 1 行に 1 つ printf("%g\n", ...) で出力します。
 *
 *   echo "2.5 3.5 -200" | ./quantize_main     ->  2 / 4 / -128 (1 行に 1 つ)
 *
 * 確かめ方:  make main     (main_input.txt を入れて、出力を main_expected.txt と比べます)
 */
#include <stdio.h>
#include <stdlib.h>

#include "quantize.h"

int main(void)
{
    size_t capacity = 16, n = 0;
    float *values = malloc(capacity * sizeof *values);
    if (values == NULL) return 1;

    /* TODO 1: scanf("%f", &x) が 1 を返す間 (数が読めた間) くり返し、values[n++] = x; とためる。
     *         n が capacity に達したら、capacity を 2 倍にして realloc で広げる (失敗したら free して return 1)。 */

    /* TODO 2: quantizeInt8InFloat(n, values, values); で全部をまとめて量子化する (src と dst は同じでよい)。 */

    /* TODO 3: for ループで values[0] .. values[n-1] を printf("%g\n", values[i]); で出力する。 */
    (void)n;  /* まだ n を使っていないという警告を消すための行です。TODO を書いたら消してください。 */

    free(values);
    return 0;
}
