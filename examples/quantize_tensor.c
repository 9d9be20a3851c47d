/* quantize_tensor.c - quantize a matrix to INT4 with per-group scales, then measure the error.
 * The README's example; built against the installed llmq.pc by tests/abi. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <llmq.h>

int main(void)
{
    float w[4][256];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 256; j++)
            w[i][j] = sinf((float)(i * 256 + j)) * (float)(i + 1);

    llmq_context *ctx = NULL;
    llmq_scheme *scheme = NULL;
    llmq_tensor *x = NULL, *q = NULL, *back = NULL;
    const int64_t shape[2] = {4, 256};
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st == LLMQ_OK) st = llmq_scheme_create(ctx, LLMQ_DTYPE_U4, &scheme);       /* 4-bit */
    if (st == LLMQ_OK) st = llmq_scheme_set_symmetry(scheme, LLMQ_SYMMETRY_ASYMMETRIC);
    if (st == LLMQ_OK) st = llmq_scheme_set_granularity(scheme, LLMQ_GRANULARITY_PER_GROUP);
    if (st == LLMQ_OK) st = llmq_scheme_set_group_size(scheme, 128);
    if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, w, 0, &x);
    if (st == LLMQ_OK) st = llmq_tensor_create_quantized(ctx, scheme, 2, shape, &q);
    if (st == LLMQ_OK) st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &back);
    if (st == LLMQ_OK) st = llmq_quantize_dynamic(ctx, x, q);   /* scales from the data */
    if (st == LLMQ_OK) st = llmq_dequantize(ctx, q, back);
    if (st == LLMQ_OK) {
        const float *y = llmq_tensor_data(back);
        float err = 0.0f;
        for (int i = 0; i < 4 * 256; i++)
            err = fmaxf(err, fabsf(w[i / 256][i % 256] - y[i]));
        printf("%zu bytes of codes, max |x - dequant(quant(x))| = %g\n",
               llmq_tensor_nbytes(q), (double)err);
    } else {
        fprintf(stderr, "%s: %s\n", llmq_status_name(st), llmq_context_last_error(ctx));
    }
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(x);
    llmq_scheme_destroy(scheme);
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}
