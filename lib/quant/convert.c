/* convert.c - conversions between float dtypes. SPDX-License-Identifier: MIT */
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/half.h"
#include "core/tensor_impl.h"
#include "llmq/quantize.h"

static float get(const void *row, llmq_dtype d, int64_t i)
{
    if (d == LLMQ_DTYPE_F32)
        return ((const float *)row)[i];
    const uint16_t h = ((const uint16_t *)row)[i];
    return d == LLMQ_DTYPE_F16 ? llmq_f16_to_f32(h) : llmq_bf16_to_f32(h);
}

static void put(void *row, llmq_dtype d, int64_t i, float v)
{
    if (d == LLMQ_DTYPE_F32)
        ((float *)row)[i] = v;
    else
        ((uint16_t *)row)[i] = d == LLMQ_DTYPE_F16 ? llmq_f32_to_f16(v) : llmq_f32_to_bf16(v);
}

llmq_status llmq_convert(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, src != NULL && dst != NULL, "%s=NULL: must be a tensor",
                 src == NULL ? "src" : "dst");
    static const char *const names[2] = {"src", "dst"};
    const llmq_tensor *const ts[2] = {src, dst};
    llmq_backend *be;
    LLMQ_TRY(llmq_host_backend(ctx, __func__, 2, names, ts, &be));
    LLMQ_REQUIRE(ctx, llmq_dtype_is_float(src->dtype), "src=%s tensor: must be f32, f16 or bf16",
                 llmq_dtype_name(src->dtype));
    LLMQ_REQUIRE(ctx, llmq_dtype_is_float(dst->dtype), "dst=%s tensor: must be f32, f16 or bf16",
                 llmq_dtype_name(dst->dtype));
    char a[96], b[96];
    LLMQ_REQUIRE(ctx, llmq_tensor_same_shape(src, dst), "dst=%s: shape differs from src=%s",
                 llmq_shape_str(dst, a, sizeof a), llmq_shape_str(src, b, sizeof b));
    const char *s0 = src->data, *d0 = dst->data;
    LLMQ_REQUIRE(ctx, !(s0 < d0 + llmq_tensor_nbytes(dst) && d0 < s0 + llmq_tensor_nbytes(src)),
                 "dst=%p: overlaps src", dst->data);
    for (int64_t r = 0; r < src->rows; r++) {
        const void *sr = s0 + (size_t)r * src->row_stride;
        void *dr = (char *)dst->data + (size_t)r * dst->row_stride;
        for (int64_t c = 0; c < src->cols; c++)
            put(dr, dst->dtype, c, get(sr, src->dtype, c));
    }
    return LLMQ_OK;
}
