/* smoothquant.c - SmoothQuant factors, in-place weight scaling and the alpha search
 * (include/llmq/smoothquant.h). CPU memory only. SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/gemm.h"
#include "llmq/quantize.h"
#include "llmq/smoothquant.h"
#include "quant/scheme_impl.h"

#define MAX_GROUP 64
#define MAX_GRID 1000

/* A host F32 tensor of ndim dimensions (1: packed). */
static llmq_status check_f32(llmq_context *ctx, const char *fn, const char *name,
                             const llmq_tensor *t, int32_t ndim)
{
    if (t == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a tensor", name);
    llmq_backend *be;
    LLMQ_TRY(llmq_host_backend(ctx, fn, 1, &name, &t, &be));
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, fn, name, t));
    char s[96];
    if (t->dtype != LLMQ_DTYPE_F32 || t->ndim != ndim)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s %s: must be a %d-D f32 tensor",
                         name, llmq_dtype_name(t->dtype), llmq_shape_str(t, s, sizeof s),
                         (int)ndim);
    return LLMQ_OK;
}

/* The group's weights: 2-D F32 host tensors sharing K, none overlapping another. */
static llmq_status check_group(llmq_context *ctx, const char *fn, int32_t n_weights,
                               const llmq_tensor *const *weights, int64_t k)
{
    if (n_weights < 1 || n_weights > MAX_GROUP)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "n_weights=%d: must be in 1..%d",
                         (int)n_weights, MAX_GROUP);
    LLMQ_REQUIRE(ctx, weights != NULL, "weights=NULL: must point to %d tensors", (int)n_weights);
    for (int32_t i = 0; i < n_weights; i++) {
        char name[32], s[96];
        snprintf(name, sizeof name, "weights[%d]", (int)i);
        LLMQ_TRY(check_f32(ctx, fn, name, weights[i], 2));
        if (weights[i]->cols != k)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s: K differs from %lld", name,
                             llmq_shape_str(weights[i], s, sizeof s), (long long)k);
        for (int32_t j = 0; j < i; j++)
            if (llmq_tensors_overlap(weights[i], weights[j]))
                return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s: overlaps weights[%d]", name,
                                 (int)j);
    }
    return LLMQ_OK;
}

static const float *row_of(const llmq_tensor *t, int64_t r)
{
    return (const float *)((const char *)t->data + (size_t)r * t->row_stride);
}

/* Column maxima of |x| over rows (max starts from the caller's values); NaN and Inf are
 * refused with the element's position. */
static llmq_status column_absmax(llmq_context *ctx, const char *fn, const char *name,
                                 const llmq_tensor *t, float *max)
{
    for (int64_t r = 0; r < t->rows; r++) {
        const float *row = row_of(t, r);
        for (int64_t j = 0; j < t->cols; j++) {
            const float v = fabsf(row[j]);
            if (!isfinite(v))
                return llmq_fail(ctx, LLMQ_ERR_NON_FINITE, fn, "%s[%lld, %lld]=%g: must be finite",
                                 name, (long long)r, (long long)j, (double)row[j]);
            max[j] = v > max[j] ? v : max[j];
        }
    }
    return LLMQ_OK;
}

static llmq_status group_absmax(llmq_context *ctx, const char *fn, int32_t n_weights,
                                const llmq_tensor *const *weights, float *wmax)
{
    memset(wmax, 0, sizeof(float) * (size_t)weights[0]->cols);
    for (int32_t i = 0; i < n_weights; i++) {
        char name[32];
        snprintf(name, sizeof name, "weights[%d]", (int)i);
        LLMQ_TRY(column_absmax(ctx, fn, name, weights[i], wmax));
    }
    return LLMQ_OK;
}

/* s_j = a_j^alpha / w_j^(1 - alpha) in double, 1 for degenerate channels (header). */
static void factors(const float *amax, const float *wmax, int64_t k, float alpha, float *s)
{
    for (int64_t j = 0; j < k; j++) {
        const double q = pow((double)amax[j], alpha) / pow((double)wmax[j], 1.0 - alpha);
        const float f = (float)q;
        s[j] = amax[j] > 0.0f && wmax[j] > 0.0f && f >= FLT_MIN && f <= FLT_MAX ? f : 1.0f;
    }
}

static void scale_columns(llmq_tensor *w, const float *s)
{
    for (int64_t r = 0; r < w->rows; r++) {
        float *row = (float *)((char *)w->data + (size_t)r * w->row_stride);
        for (int64_t j = 0; j < w->cols; j++)
            row[j] *= s[j];
    }
}

llmq_status llmq_smoothquant_channel_absmax(llmq_context *ctx, const llmq_quantizer *q,
                                            llmq_tensor *absmax)
{
    static const char fn[] = "llmq_smoothquant_channel_absmax";
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, q != NULL, "q=NULL: must be a quantizer");
    if (llmq_scheme_granularity(llmq_quantizer_scheme(q)) != LLMQ_GRANULARITY_PER_CHANNEL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "q: its scheme must be per channel (on the activations' last axis)");
    const llmq_tensor *range = llmq_quantizer_range(q);
    if (range == NULL)
        return llmq_fail(ctx, LLMQ_ERR_STATE, fn, "q: not finalized (llmq_quantizer_finalize)");
    LLMQ_TRY(check_f32(ctx, fn, "absmax", absmax, 1));
    const int64_t channels = range->rows;
    if (absmax->cols != channels)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "absmax=[%lld]: the quantizer has %lld channels",
                         (long long)absmax->cols, (long long)channels);
    const float *lh = range->data;
    float *out = absmax->data;
    for (int64_t j = 0; j < channels; j++) {
        const float lo = fabsf(lh[2 * j]), hi = fabsf(lh[2 * j + 1]);
        out[j] = lo > hi ? lo : hi;
    }
    return LLMQ_OK;
}

llmq_status llmq_smoothquant_apply(llmq_context *ctx, const llmq_tensor *act_absmax, float alpha,
                                   int32_t n_weights, llmq_tensor *const *weights,
                                   llmq_tensor *divisor)
{
    static const char fn[] = "llmq_smoothquant_apply";
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_TRY(check_f32(ctx, fn, "act_absmax", act_absmax, 1));
    LLMQ_TRY(check_f32(ctx, fn, "divisor", divisor, 1));
    const int64_t k = act_absmax->cols;
    LLMQ_REQUIRE(ctx, divisor->cols == k, "divisor=[%lld]: must have K=%lld values",
                 (long long)divisor->cols, (long long)k);
    LLMQ_REQUIRE(ctx, alpha >= 0.0f && alpha <= 1.0f, "alpha=%g: must be in [0, 1]",
                 (double)alpha);
    LLMQ_TRY(check_group(ctx, fn, n_weights, (const llmq_tensor *const *)weights, k));
    for (int32_t i = 0; i < n_weights; i++) {
        const bool on_divisor = llmq_tensors_overlap(weights[i], divisor);
        if (on_divisor || llmq_tensors_overlap(weights[i], act_absmax))
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "weights[%d]: overlaps %s", (int)i,
                             on_divisor ? "divisor" : "act_absmax");
    }
    const float *amax = act_absmax->data;
    for (int64_t j = 0; j < k; j++)
        LLMQ_REQUIRE(ctx, amax[j] >= 0.0f && amax[j] <= FLT_MAX,
                     "act_absmax[%lld]=%g: must be finite and >= 0", (long long)j,
                     (double)amax[j]);
    float *wmax = llmq_mem_alloc(ctx, sizeof(float) * 2 * (size_t)k);
    if (wmax == NULL)
        return llmq_fail_oom(ctx, fn, "column maxima", sizeof(float) * 2 * (size_t)k);
    float *s = wmax + k; /* the divisor may alias act_absmax: written last */
    llmq_status st = group_absmax(ctx, fn, n_weights, (const llmq_tensor *const *)weights, wmax);
    if (st == LLMQ_OK) {
        factors(amax, wmax, k, alpha, s);
        for (int32_t i = 0; i < n_weights; i++)
            scale_columns(weights[i], s);
        memcpy(divisor->data, s, sizeof(float) * (size_t)k);
    }
    llmq_mem_free(ctx, wmax);
    return st;
}

/* ---- the alpha search ---- */

typedef struct search_buffers {
    llmq_tensor *xs, *xq;              /* x / s, and its codes */
    llmq_tensor *ws[MAX_GROUP], *wq[MAX_GROUP], *out[MAX_GROUP];
    double *ref[MAX_GROUP];            /* x W_i^T */
    float *amax, *wmax, *s;
    double *errors;                    /* E per grid point */
} search_buffers;

static void search_free(llmq_context *ctx, search_buffers *b, int32_t n)
{
    llmq_tensor_destroy(b->xs);
    llmq_tensor_destroy(b->xq);
    for (int32_t i = 0; i < n; i++) {
        llmq_tensor_destroy(b->ws[i]);
        llmq_tensor_destroy(b->wq[i]);
        llmq_tensor_destroy(b->out[i]);
        llmq_mem_free(ctx, b->ref[i]);
    }
    llmq_mem_free(ctx, b->amax);
    llmq_mem_free(ctx, b->errors);
}

static llmq_status search_alloc(llmq_context *ctx, const char *fn, const llmq_tensor *x,
                                int32_t n, const llmq_tensor *const *w, const llmq_scheme *wscheme,
                                const llmq_scheme *ascheme, int32_t grid, search_buffers *b)
{
    const int64_t t = x->rows, k = x->cols, xshape[2] = {t, k};
    b->amax = llmq_mem_alloc(ctx, sizeof(float) * 3 * (size_t)k);
    b->errors = llmq_mem_alloc(ctx, sizeof(double) * (size_t)(grid + 1));
    if (b->amax == NULL || b->errors == NULL)
        return llmq_fail_oom(ctx, fn, "search state", sizeof(float) * 3 * (size_t)k);
    b->wmax = b->amax + k;
    b->s = b->wmax + k;
    LLMQ_TRY(llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, xshape, &b->xs));
    if (ascheme != NULL)
        LLMQ_TRY(llmq_tensor_create_quantized(ctx, ascheme, 2, xshape, &b->xq));
    for (int32_t i = 0; i < n; i++) {
        const int64_t wshape[2] = {w[i]->rows, k}, oshape[2] = {t, w[i]->rows};
        LLMQ_TRY(llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, wshape, &b->ws[i]));
        LLMQ_TRY(llmq_tensor_create_quantized(ctx, wscheme, 2, wshape, &b->wq[i]));
        LLMQ_TRY(llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, oshape, &b->out[i]));
        const size_t bytes = sizeof(double) * (size_t)t * (size_t)w[i]->rows;
        b->ref[i] = llmq_mem_alloc(ctx, bytes);
        if (b->ref[i] == NULL)
            return llmq_fail_oom(ctx, fn, "reference product", bytes);
    }
    return LLMQ_OK;
}

/* ref = x w^T with double sums of float products. */
static void reference_product(const llmq_tensor *x, const llmq_tensor *w, double *ref)
{
    for (int64_t r = 0; r < x->rows; r++) {
        const float *xr = row_of(x, r);
        for (int64_t n = 0; n < w->rows; n++) {
            const float *wr = row_of(w, n);
            double acc = 0.0;
            for (int64_t j = 0; j < x->cols; j++)
                acc += (double)xr[j] * (double)wr[j];
            ref[r * w->rows + n] = acc;
        }
    }
}

/* E(alpha) of the header, with the factors of alpha already in b->s. */
static llmq_status search_error(llmq_context *ctx, const llmq_tensor *x, int32_t n,
                                const llmq_tensor *const *w, search_buffers *b, double *error)
{
    const int64_t k = x->cols;
    for (int64_t r = 0; r < x->rows; r++) {
        const float *src = row_of(x, r);
        float *dst = (float *)((char *)b->xs->data + (size_t)r * b->xs->row_stride);
        for (int64_t j = 0; j < k; j++)
            dst[j] = src[j] / b->s[j];
    }
    if (b->xq != NULL)
        LLMQ_TRY(llmq_quantize_dynamic(ctx, b->xs, b->xq));
    const llmq_tensor *a = b->xq != NULL ? b->xq : b->xs;
    double e = 0.0;
    for (int32_t i = 0; i < n; i++) {
        for (int64_t r = 0; r < w[i]->rows; r++) {
            const float *src = row_of(w[i], r);
            float *dst = (float *)((char *)b->ws[i]->data + (size_t)r * b->ws[i]->row_stride);
            for (int64_t j = 0; j < k; j++)
                dst[j] = src[j] * b->s[j];
        }
        LLMQ_TRY(llmq_quantize_dynamic(ctx, b->ws[i], b->wq[i]));
        LLMQ_TRY(llmq_matmul(ctx, a, b->wq[i], NULL, b->out[i]));
        const float *out = b->out[i]->data;
        const int64_t count = x->rows * w[i]->rows;
        for (int64_t c = 0; c < count; c++) {
            const double d = b->ref[i][c] - (double)out[c];
            e += d * d;
        }
    }
    *error = e;
    return LLMQ_OK;
}

llmq_status llmq_smoothquant_search(llmq_context *ctx, const llmq_tensor *x, int32_t n_weights,
                                    const llmq_tensor *const *weights,
                                    const llmq_scheme *weight_scheme,
                                    const llmq_scheme *activation_scheme, int32_t grid,
                                    float *alpha, double *error, double *errors)
{
    static const char fn[] = "llmq_smoothquant_search";
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, alpha != NULL, "alpha=NULL: must point to a float");
    LLMQ_TRY(check_f32(ctx, fn, "x", x, 2));
    LLMQ_TRY(check_group(ctx, fn, n_weights, weights, x->cols));
    LLMQ_REQUIRE(ctx, grid >= 1 && grid <= MAX_GRID, "grid=%d: must be in 1..%d", (int)grid,
                 MAX_GRID);
    LLMQ_REQUIRE(ctx, weight_scheme != NULL, "weight_scheme=NULL: must be a scheme");
    if (activation_scheme != NULL) {
        const llmq_dtype d = activation_scheme->dtype;
        const llmq_granularity g = activation_scheme->granularity;
        LLMQ_REQUIRE(ctx, d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_U8,
                     "activation_scheme=%s: must be s8 or u8", llmq_dtype_name(d));
        LLMQ_REQUIRE(ctx, g == LLMQ_GRANULARITY_PER_TOKEN || g == LLMQ_GRANULARITY_PER_TENSOR,
                     "activation_scheme: granularity must be per_token or per_tensor");
    }
    search_buffers b;
    memset(&b, 0, sizeof b);
    llmq_status st = search_alloc(ctx, fn, x, n_weights, weights, weight_scheme,
                                  activation_scheme, grid, &b);
    if (st == LLMQ_OK) {
        memset(b.amax, 0, sizeof(float) * (size_t)x->cols);
        st = column_absmax(ctx, fn, "x", x, b.amax);
    }
    if (st == LLMQ_OK)
        st = group_absmax(ctx, fn, n_weights, weights, b.wmax);
    for (int32_t i = 0; st == LLMQ_OK && i < n_weights; i++)
        reference_product(x, weights[i], b.ref[i]);
    double best = INFINITY;
    int32_t best_i = 0;
    for (int32_t i = 0; st == LLMQ_OK && i <= grid; i++) {
        double e;
        factors(b.amax, b.wmax, x->cols, (float)((double)i / grid), b.s);
        st = search_error(ctx, x, n_weights, weights, &b, &e);
        if (st != LLMQ_OK)
            break;
        b.errors[i] = e;
        if (e < best) {
            best = e;
            best_i = i;
        }
    }
    if (st == LLMQ_OK && errors != NULL)
        memcpy(errors, b.errors, sizeof(double) * (size_t)(grid + 1));
    search_free(ctx, &b, n_weights);
    if (st != LLMQ_OK)
        return st;
    *alpha = (float)((double)best_i / grid);
    if (error != NULL)
        *error = best;
    return LLMQ_OK;
}
