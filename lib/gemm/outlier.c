/* outlier.c - LLM.int8() outlier decomposition (include/llmq/gemm.h): outlier activation
 * columns in float, the rest through the INT8 matmul. CPU only. SPDX-License-Identifier: MIT */
#include <math.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/gemm.h"
#include "llmq/quantize.h"
#include "quant/pack.h"
#include "quant/scheme_impl.h"

#define DEFAULT_THRESHOLD 6.0f

static const float *f32_row(const llmq_tensor *t, int64_t r)
{
    return (const float *)((const char *)t->data + (size_t)r * t->row_stride);
}

static llmq_status check_args(llmq_context *ctx, const char *fn, const llmq_tensor *a,
                              const llmq_tensor *b, const llmq_tensor *bias, const llmq_tensor *c,
                              const llmq_scheme *act, float threshold)
{
    if (a == NULL || b == NULL || c == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a tensor",
                         a == NULL ? "a" : b == NULL ? "b" : "c");
    static const char *const names[4] = {"a", "b", "bias", "c"};
    const llmq_tensor *const ts[4] = {a, b, bias, c};
    llmq_backend *be;
    LLMQ_TRY(llmq_host_backend(ctx, fn, 4, names, ts, &be));
    if (isnan(threshold))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "threshold=nan: must be a number");
    if (a->dtype != LLMQ_DTYPE_F32 || c->dtype != LLMQ_DTYPE_F32)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s tensor: must be f32",
                         a->dtype != LLMQ_DTYPE_F32 ? "a" : "c",
                         llmq_dtype_name(a->dtype != LLMQ_DTYPE_F32 ? a->dtype : c->dtype));
    char s1[96], s2[96];
    if (!llmq_dtype_is_quantized(b->dtype) || b->ndim != 2)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "b=%s %s: weights must be a quantized 2-D tensor [N, K]",
                         llmq_dtype_name(b->dtype), llmq_shape_str(b, s1, sizeof s1));
    if (a->cols != b->shape[1])
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "b=%s: K=%lld differs from a=%s",
                         llmq_shape_str(b, s1, sizeof s1), (long long)b->shape[1],
                         llmq_shape_str(a, s2, sizeof s2));
    bool c_shape_ok = c->ndim == a->ndim && c->cols == b->shape[0];
    for (int32_t i = 0; c_shape_ok && i + 1 < a->ndim; i++)
        c_shape_ok = c->shape[i] == a->shape[i];
    if (!c_shape_ok)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "c=%s: must have a's leading dimensions and N=%lld",
                         llmq_shape_str(c, s1, sizeof s1), (long long)b->shape[0]);
    if (llmq_tensors_overlap(a, c))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "c: overlaps a");
    if (act != NULL) {
        const bool dtype_ok = act->dtype == LLMQ_DTYPE_S8 || act->dtype == LLMQ_DTYPE_U8;
        const bool gran_ok = act->granularity == LLMQ_GRANULARITY_PER_TOKEN ||
                             act->granularity == LLMQ_GRANULARITY_PER_TENSOR;
        if (!dtype_ok || !gran_ok)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "activation_scheme=%s: must be s8 or u8, per_token or per_tensor",
                             llmq_dtype_name(act->dtype));
    }
    return llmq_tensor_check_params(ctx, fn, "b", b, true);
}

/* Flag the columns of a with some |a| > t; NaN is refused. Returns the count via *count. */
static llmq_status find_outliers(llmq_context *ctx, const char *fn, const llmq_tensor *a,
                                 float t, uint8_t *flag, int64_t *count)
{
    memset(flag, 0, (size_t)a->cols);
    for (int64_t r = 0; r < a->rows; r++) {
        const float *row = f32_row(a, r);
        for (int64_t j = 0; j < a->cols; j++) {
            if (isnan(row[j]))
                return llmq_fail(ctx, LLMQ_ERR_NON_FINITE, fn, "a: NaN at row %lld, column %lld",
                                 (long long)r, (long long)j);
            flag[j] |= fabsf(row[j]) > t;
        }
    }
    int64_t n = 0;
    for (int64_t j = 0; j < a->cols; j++)
        n += flag[j];
    *count = n;
    return LLMQ_OK;
}

/* Bhat[n, j] = (B[n, j] - zB) * sB, as llmq_dequantize() computes it. */
static float dequantized_weight(const llmq_tensor *b, int64_t n, int64_t j)
{
    const int32_t code =
        b->packed != NULL
            ? llmq_packed_code(b->packed, n, j)
            : llmq_code_at((const uint8_t *)b->data + (size_t)n * b->row_stride, b->dtype, j);
    const llmq_packed_b *pk = b->packed;
    if (pk != NULL && pk->bits == 4) { /* its own copy of the parameters */
        const size_t i = llmq_packed_param(pk, n, j);
        return (float)(code - (pk->zero[i] + pk->offset)) * pk->scale[i];
    }
    const int64_t p = llmq_param_row_base(&b->map, n) + j / b->map.col_group;
    const float *scale = b->scale->data;
    const int32_t *zp = b->zero_point->data;
    return (float)(code - zp[p]) * scale[p];
}

/* c[m, n] += sum over the outlier columns (ascending) of a[m, j] * Bhat[n, j]. */
static void add_float_part(const llmq_tensor *a, const llmq_tensor *b, llmq_tensor *c,
                           const int64_t *cols, int64_t count, float *w, float *arow)
{
    const int64_t n_out = b->shape[0];
    for (int64_t n = 0; n < n_out; n++)
        for (int64_t i = 0; i < count; i++)
            w[n * count + i] = dequantized_weight(b, n, cols[i]);
    for (int64_t m = 0; m < a->rows; m++) {
        const float *ar = f32_row(a, m);
        float *cr = (float *)((char *)c->data + (size_t)m * c->row_stride);
        for (int64_t i = 0; i < count; i++)
            arow[i] = ar[cols[i]];
        for (int64_t n = 0; n < n_out; n++) {
            const float *wn = w + n * count;
            float acc = 0.0f;
            for (int64_t i = 0; i < count; i++)
                acc += arow[i] * wn[i];
            cr[n] += acc;
        }
    }
}

/* a with the outlier columns set to 0, into the F32 tensor z of a's shape. */
static void zero_columns(const llmq_tensor *a, const uint8_t *flag, llmq_tensor *z)
{
    for (int64_t r = 0; r < a->rows; r++) {
        const float *src = f32_row(a, r);
        float *dst = (float *)((char *)z->data + (size_t)r * z->row_stride);
        for (int64_t j = 0; j < a->cols; j++)
            dst[j] = flag[j] ? 0.0f : src[j];
    }
}

llmq_status llmq_matmul_outlier(llmq_context *ctx, const llmq_tensor *a, const llmq_tensor *b,
                                const llmq_tensor *bias, llmq_tensor *c,
                                const llmq_scheme *activation_scheme, float threshold,
                                int64_t *outlier_count)
{
    static const char fn[] = "llmq_matmul_outlier";
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_TRY(check_args(ctx, fn, a, b, bias, c, activation_scheme, threshold));
    const int64_t k = a->cols, n = b->shape[0];
    llmq_scheme *own = NULL;
    const llmq_scheme *act = activation_scheme;
    llmq_status st = LLMQ_OK;
    if (act == NULL) { /* s8 symmetric per token */
        st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &own);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_granularity(own, LLMQ_GRANULARITY_PER_TOKEN);
        act = own;
    }
    /* the outlier columns' indices, then one flag per column */
    const size_t index_bytes = sizeof(int64_t) * (size_t)k + (size_t)k;
    int64_t *cols = st == LLMQ_OK ? llmq_mem_alloc(ctx, index_bytes) : NULL;
    if (st == LLMQ_OK && cols == NULL)
        st = llmq_fail_oom(ctx, fn, "column flags", index_bytes);
    uint8_t *flag = cols != NULL ? (uint8_t *)(cols + k) : NULL;
    int64_t count = 0;
    if (st == LLMQ_OK)
        st = find_outliers(ctx, fn, a, threshold > 0.0f ? threshold : DEFAULT_THRESHOLD, flag,
                           &count);
    llmq_tensor *zeroed = NULL, *aq = NULL;
    float *w = NULL; /* Bhat of the outlier columns [N, count], then one row of a's */
    if (st == LLMQ_OK && count > 0) {
        for (int64_t j = 0, i = 0; j < k; j++)
            if (flag[j])
                cols[i++] = j;
        const size_t bytes = sizeof(float) * ((size_t)n * (size_t)count + (size_t)count);
        w = llmq_mem_alloc(ctx, bytes);
        st = w != NULL ? llmq_tensor_create(ctx, LLMQ_DTYPE_F32, a->ndim, a->shape, &zeroed)
                       : llmq_fail_oom(ctx, fn, "outlier weights", bytes);
        if (st == LLMQ_OK)
            zero_columns(a, flag, zeroed);
    }
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(ctx, act, a->ndim, a->shape, &aq);
    if (st == LLMQ_OK)
        st = llmq_quantize_dynamic(ctx, zeroed != NULL ? zeroed : a, aq);
    if (st == LLMQ_OK)
        st = llmq_matmul(ctx, aq, b, bias, c);
    if (st == LLMQ_OK && count > 0)
        add_float_part(a, b, c, cols, count, w, w + n * count);
    llmq_mem_free(ctx, w);
    llmq_tensor_destroy(aq);
    llmq_tensor_destroy(zeroed);
    llmq_mem_free(ctx, cols);
    llmq_scheme_destroy(own);
    if (st == LLMQ_OK && outlier_count != NULL)
        *outlier_count = count;
    return st;
}
