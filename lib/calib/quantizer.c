/* quantizer.c - the quantizer handle: observer settings, observe, finalize, apply.
 * SPDX-License-Identifier: MIT */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/quantizer.h"

static const char *const observer_names[] = {
    [LLMQ_OBSERVER_MINMAX] = "minmax",
    [LLMQ_OBSERVER_MOVING_AVERAGE] = "moving_average",
    [LLMQ_OBSERVER_PERCENTILE] = "percentile",
    [LLMQ_OBSERVER_ENTROPY] = "entropy",
    [LLMQ_OBSERVER_HISTOGRAM_L2] = "histogram_l2",
    [LLMQ_OBSERVER_MSE] = "mse",
};

#define N_OBSERVERS (sizeof observer_names / sizeof observer_names[0])
#define BIT(o) (1u << (o))
#define HISTOGRAM_OBSERVERS                                                                        \
    (BIT(LLMQ_OBSERVER_PERCENTILE) | BIT(LLMQ_OBSERVER_ENTROPY) |                                  \
     BIT(LLMQ_OBSERVER_HISTOGRAM_L2) | BIT(LLMQ_OBSERVER_MSE))

static const struct param_info {
    const char *name;
    double min, max;
    bool integer;
    uint32_t observers; /* bit mask of the observers that use it */
} param_info[] = {
    [LLMQ_OBSERVER_PARAM_MOMENTUM] = {"momentum", DBL_MIN, 1.0, false,
                                      BIT(LLMQ_OBSERVER_MOVING_AVERAGE)},
    [LLMQ_OBSERVER_PARAM_PERCENTILE] = {"percentile", 50.0, 100.0, false,
                                        BIT(LLMQ_OBSERVER_PERCENTILE)},
    [LLMQ_OBSERVER_PARAM_BINS] = {"bins", 16.0, 1048576.0, true, HISTOGRAM_OBSERVERS},
    [LLMQ_OBSERVER_PARAM_GRID] = {"grid", 1.0, 10000.0, true, BIT(LLMQ_OBSERVER_MSE)},
    [LLMQ_OBSERVER_PARAM_UPSAMPLE] = {"upsample", 1.0, 256.0, true,
                                      BIT(LLMQ_OBSERVER_HISTOGRAM_L2)},
};

#define N_PARAMS (sizeof param_info / sizeof param_info[0])

const char *llmq_observer_name(llmq_observer observer)
{
    return (unsigned)observer < N_OBSERVERS ? observer_names[observer] : "unknown";
}

static bool param_applies(llmq_observer observer, llmq_observer_param key)
{
    return (unsigned)observer < N_OBSERVERS && (unsigned)key < N_PARAMS &&
           (param_info[key].observers & BIT(observer)) != 0;
}

llmq_status llmq_observer_param_bounds(llmq_observer observer, llmq_observer_param key, double *min,
                                       double *max)
{
    if (min == NULL || max == NULL || !param_applies(observer, key)) return LLMQ_ERR_INVALID_ARG;
    *min = param_info[key].min;
    *max = param_info[key].max;
    return LLMQ_OK;
}

static bool uses_histogram(llmq_observer o)
{
    return (HISTOGRAM_OBSERVERS & BIT(o)) != 0;
}

llmq_status llmq_quantizer_create(llmq_context *ctx, const llmq_scheme *scheme,
                                  llmq_observer observer, llmq_quantizer **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a quantizer pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, scheme != NULL, "scheme=NULL: must be a scheme");
    LLMQ_REQUIRE(ctx, (unsigned)observer < N_OBSERVERS, "observer=%d: unknown observer",
                 (int)observer);
    LLMQ_REQUIRE(ctx, scheme->granularity != LLMQ_GRANULARITY_PER_TOKEN,
                 "scheme=per_token: per-token parameters exist only at run time "
                 "(llmq_quantize_dynamic); a quantizer calibrates fixed parameters");
    LLMQ_REQUIRE(ctx, scheme->granularity != LLMQ_GRANULARITY_PER_GROUP || scheme->group_size >= 1,
                 "scheme=per_group: group_size is unset (llmq_scheme_set_group_size)");
    llmq_quantizer *q = llmq_mem_calloc(ctx, sizeof *q);
    if (q == NULL) return llmq_fail_oom(ctx, __func__, "quantizer", sizeof *q);
    q->ctx = ctx;
    q->scheme = *scheme;
    q->scheme.ctx = ctx;
    q->observer = observer;
    q->momentum = 0.01;
    q->percentile = 99.99;
    q->bins = 2048;
    q->grid = 100;
    q->upsample = 16;
    *out = q;
    return LLMQ_OK;
}

static void free_statistics(llmq_quantizer *q)
{
    llmq_mem_free(q->ctx, q->lo);
    q->lo = q->hi = q->blo = q->bhi = NULL;
    if (q->has_hist) llmq_hist_free(q->ctx, &q->hist);
    q->has_hist = false;
}

void llmq_quantizer_destroy(llmq_quantizer *q)
{
    if (q == NULL) return;
    free_statistics(q);
    llmq_tensor_destroy(q->scale);
    llmq_tensor_destroy(q->zero_point);
    llmq_tensor_destroy(q->range);
    llmq_mem_free(q->ctx, q);
}

llmq_status llmq_quantizer_set_param(llmq_quantizer *q, llmq_observer_param key, double value)
{
    if (q == NULL) return LLMQ_ERR_INVALID_ARG;
    llmq_context *ctx = q->ctx;
    LLMQ_REQUIRE(ctx, (unsigned)key < N_PARAMS, "key=%d: unknown observer setting", (int)key);
    const struct param_info *info = &param_info[key];
    LLMQ_REQUIRE(ctx, param_applies(q->observer, key), "key=%s: not a setting of the %s observer",
                 info->name, llmq_observer_name(q->observer));
    if (q->batches > 0 || q->finalized)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "key=%s: settings are fixed once a batch has been observed", info->name);
    LLMQ_REQUIRE(ctx, value >= info->min && value <= info->max, "%s=%g: must be in [%g, %g]",
                 info->name, value, info->min, info->max);
    LLMQ_REQUIRE(ctx, !info->integer || value == floor(value), "%s=%g: must be an integer",
                 info->name, value);
    if (key == LLMQ_OBSERVER_PARAM_BINS && q->observer == LLMQ_OBSERVER_ENTROPY) {
        const double codes = ldexp(1.0, (int)llmq_dtype_bits(q->scheme.dtype));
        LLMQ_REQUIRE(ctx, value > codes,
                     "bins=%g: the entropy search needs more bins than the %s grid's %g codes",
                     value, llmq_dtype_name(q->scheme.dtype), codes);
    }
    switch (key) {
    case LLMQ_OBSERVER_PARAM_MOMENTUM:
        q->momentum = value;
        break;
    case LLMQ_OBSERVER_PARAM_PERCENTILE:
        q->percentile = value;
        break;
    case LLMQ_OBSERVER_PARAM_BINS:
        q->bins = (int64_t)value;
        break;
    case LLMQ_OBSERVER_PARAM_GRID:
        q->grid = (int64_t)value;
        break;
    default:
        q->upsample = (int64_t)value;
        break;
    }
    return LLMQ_OK;
}

llmq_status llmq_quantizer_get_param(const llmq_quantizer *q, llmq_observer_param key,
                                     double *value)
{
    if (q == NULL) return LLMQ_ERR_INVALID_ARG;
    llmq_context *ctx = q->ctx;
    LLMQ_REQUIRE(ctx, value != NULL, "value=NULL: must point to a double");
    LLMQ_REQUIRE(ctx, (unsigned)key < N_PARAMS, "key=%d: unknown observer setting", (int)key);
    LLMQ_REQUIRE(ctx, param_applies(q->observer, key), "key=%s: not a setting of the %s observer",
                 param_info[key].name, llmq_observer_name(q->observer));
    switch (key) {
    case LLMQ_OBSERVER_PARAM_MOMENTUM:
        *value = q->momentum;
        break;
    case LLMQ_OBSERVER_PARAM_PERCENTILE:
        *value = q->percentile;
        break;
    case LLMQ_OBSERVER_PARAM_BINS:
        *value = (double)q->bins;
        break;
    case LLMQ_OBSERVER_PARAM_GRID:
        *value = (double)q->grid;
        break;
    default:
        *value = (double)q->upsample;
        break;
    }
    return LLMQ_OK;
}

/* "[d0, d1]" of a parameter layout, for messages. */
static const char *layout_str(int32_t ndim, const int64_t *shape, char *buf, size_t size)
{
    if (ndim == 2)
        snprintf(buf, size, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
    else
        snprintf(buf, size, "[%lld]", (long long)shape[0]);
    return buf;
}

static llmq_status alloc_statistics(llmq_context *ctx, const char *fn, llmq_quantizer *q,
                                    int64_t count)
{
    const size_t bytes = 4 * (size_t)count * sizeof(float);
    q->lo = llmq_mem_alloc(q->ctx, bytes);
    if (q->lo == NULL) return llmq_fail_oom(ctx, fn, "statistics", bytes);
    q->hi = q->lo + count;
    q->blo = q->hi + count;
    q->bhi = q->blo + count;
    for (int64_t p = 0; p < count; p++) {
        q->lo[p] = INFINITY; /* lo > hi: nothing seen yet */
        q->hi[p] = -INFINITY;
    }
    if (!uses_histogram(q->observer)) return LLMQ_OK;
    const bool absolute =
        q->observer == LLMQ_OBSERVER_ENTROPY ||
        (q->observer == LLMQ_OBSERVER_PERCENTILE && q->scheme.symmetry != LLMQ_SYMMETRY_ASYMMETRIC);
    const llmq_hist_growth growth =
        q->observer == LLMQ_OBSERVER_HISTOGRAM_L2 ? LLMQ_HIST_PYTORCH : LLMQ_HIST_DOUBLING;
    const size_t per_bin = growth == LLMQ_HIST_PYTORCH ? 16 : 8;
    if ((uint64_t)count > SIZE_MAX / per_bin / (uint64_t)q->bins ||
        !llmq_hist_init(q->ctx, &q->hist, count, q->bins, absolute, growth, q->upsample)) {
        free_statistics(q);
        return llmq_fail_oom(ctx, fn, "histograms", (size_t)count * (size_t)q->bins * per_bin);
    }
    q->has_hist = true;
    return LLMQ_OK;
}

/* Is the first dimension free to vary between batches (no parameter laid out along it)? */
static bool first_dim_free(const llmq_quantizer *q)
{
    switch (q->scheme.granularity) {
    case LLMQ_GRANULARITY_PER_TENSOR:
        return true;
    case LLMQ_GRANULARITY_PER_CHANNEL:
        return (q->scheme.axis < 0 ? q->scheme.axis + q->ndim : q->scheme.axis) != 0;
    default:
        return false;
    }
}

/* Parameter layout of a batch: the first one fixes it (and allocates the statistics); later
 * ones must agree with it. */
static llmq_status batch_layout(llmq_context *ctx, const char *fn, llmq_quantizer *q,
                                const llmq_tensor *x, llmq_param_layout *l)
{
    llmq_scheme s = q->scheme;
    s.ctx = ctx; /* messages go to the caller's context */
    if (q->batches == 0 && q->lo == NULL) {
        LLMQ_TRY(llmq_scheme_layout(&s, fn, x->ndim, x->shape, l));
        LLMQ_TRY(alloc_statistics(ctx, fn, q, l->count));
        q->ndim = x->ndim;
        memcpy(q->shape, x->shape, sizeof q->shape);
        q->layout = *l;
        return LLMQ_OK;
    }
    char got[96], want[96];
    llmq_tensor first = *x;
    first.ndim = q->ndim;
    memcpy(first.shape, q->shape, sizeof first.shape);
    if (x->ndim != q->ndim)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "x=%s: %d dimensions, the first batch %s had %d",
                         llmq_shape_str(x, got, sizeof got), (int)x->ndim,
                         llmq_shape_str(&first, want, sizeof want), (int)q->ndim);
    for (int32_t d = first_dim_free(q) ? 1 : 0; d < q->ndim; d++)
        if (x->shape[d] != q->shape[d])
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "x=%s: shape differs from the first batch %s at dimension %d",
                             llmq_shape_str(x, got, sizeof got),
                             llmq_shape_str(&first, want, sizeof want), (int)d);
    LLMQ_TRY(llmq_scheme_layout(&s, fn, x->ndim, x->shape, l));
    assert(l->count == q->layout.count);
    return LLMQ_OK;
}

/* Fold the batch ranges blo/bhi into the statistics and the histograms' edges. */
static void update_statistics(llmq_quantizer *q, int64_t count)
{
    const float c = (float)q->momentum;
    for (int64_t p = 0; p < count; p++) {
        const float a = q->blo[p], b = q->bhi[p];
        if (a > b) continue; /* no finite value of this parameter set in the batch */
        if (q->observer == LLMQ_OBSERVER_MOVING_AVERAGE && q->lo[p] <= q->hi[p]) {
            /* PyTorch in float32: min + c * (batch_min - min), one rounding per operation
             * (separate statements, so that no compiler fuses them into an FMA) */
            const float dlo = a - q->lo[p], dhi = b - q->hi[p];
            const float slo = c * dlo, shi = c * dhi;
            q->lo[p] = q->lo[p] + slo;
            q->hi[p] = q->hi[p] + shi;
        } else {
            q->lo[p] = a < q->lo[p] ? a : q->lo[p];
            q->hi[p] = b > q->hi[p] ? b : q->hi[p];
        }
        if (q->has_hist) {
            if (q->hist.absolute)
                llmq_hist_cover(&q->hist, p, 0.0f, -a > b ? -a : b);
            else
                llmq_hist_cover(&q->hist, p, a, b);
        }
    }
}

llmq_status llmq_quantizer_observe(llmq_context *ctx, llmq_quantizer *q, const llmq_tensor *x)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, q != NULL, "q=NULL: must be a quantizer");
    LLMQ_REQUIRE(ctx, x != NULL, "x=NULL: must be a tensor");
    if (q->finalized)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "q=%s quantizer: already finalized; observe every batch before "
                         "llmq_quantizer_finalize()",
                         llmq_observer_name(q->observer));
    LLMQ_REQUIRE(ctx, llmq_dtype_is_float(x->dtype), "x=%s tensor: must be f32, f16 or bf16",
                 llmq_dtype_name(x->dtype));
    llmq_backend *be;
    const char *name = "x";
    LLMQ_TRY(llmq_host_backend(ctx, __func__, 1, &name, &x, &be));
    llmq_param_layout l;
    LLMQ_TRY(batch_layout(ctx, __func__, q, x, &l));
    const llmq_quant_job job = {
        .src = x->data,
        .src_dtype = x->dtype,
        .src_stride = x->row_stride,
        .rows = x->rows,
        .cols = x->cols,
        .map = l.map,
    };
    for (int64_t p = 0; p < l.count; p++) {
        q->blo[p] = INFINITY;
        q->bhi[p] = -INFINITY;
    }
    int64_t bad = -1;
    llmq_status st = be->ops->range(be, &job, q->blo, q->bhi, &bad);
    if (st == LLMQ_ERR_NON_FINITE)
        return llmq_fail(ctx, st, __func__,
                         "x[%lld]=nan: in batch %lld (counting from 0): NaN cannot be observed "
                         "(flat index); the statistics are unchanged",
                         (long long)bad, (long long)q->batches);
    LLMQ_TRY(st);
    update_statistics(q, l.count);
    if (q->has_hist) {
        const llmq_hist_job hj = {q->hist.lo,     q->hist.hi,       q->hist.bins,
                                  q->hist.copies, q->hist.absolute, q->hist.counts};
        LLMQ_TRY(be->ops->histogram(be, &job, &hj));
    }
    q->batches++;
    return LLMQ_OK;
}

/* Name of parameter set p for messages: "channel 3", "group 7", "tensor". */
static void param_name(const llmq_quantizer *q, int64_t p, char *buf, size_t size)
{
    switch (q->scheme.granularity) {
    case LLMQ_GRANULARITY_PER_CHANNEL:
        snprintf(buf, size, "channel %lld", (long long)p);
        break;
    case LLMQ_GRANULARITY_PER_GROUP:
        snprintf(buf, size, "row %lld group %lld", (long long)(p / q->layout.shape[1]),
                 (long long)(p % q->layout.shape[1]));
        break;
    default:
        snprintf(buf, size, "the tensor");
        break;
    }
}

llmq_status llmq_quantizer_finalize(llmq_context *ctx, llmq_quantizer *q)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, q != NULL, "q=NULL: must be a quantizer");
    if (q->finalized)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "q=%s quantizer: already finalized",
                         llmq_observer_name(q->observer));
    if (q->batches == 0)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "q=%s quantizer: no batch observed (call llmq_quantizer_observe first)",
                         llmq_observer_name(q->observer));
    const int64_t count = q->layout.count;
    for (int64_t p = 0; p < count; p++) {
        if (q->lo[p] > q->hi[p]) {
            char name[64];
            param_name(q, p, name, sizeof name);
            return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                             "q=%s quantizer: %s saw no finite value in %lld batches",
                             llmq_observer_name(q->observer), name, (long long)q->batches);
        }
    }
    llmq_tensor *scale = NULL, *zp = NULL, *range = NULL;
    double *work = NULL;
    const int64_t range_shape[2] = {count, 2};
    const size_t work_bytes = q->has_hist ? LLMQ_CLIP_WORK(q->bins) * sizeof(double) : 0;
    llmq_status st =
        llmq_tensor_create(q->ctx, LLMQ_DTYPE_F32, q->layout.ndim, q->layout.shape, &scale);
    if (st == LLMQ_OK)
        st = llmq_tensor_create(q->ctx, LLMQ_DTYPE_S32, q->layout.ndim, q->layout.shape, &zp);
    if (st == LLMQ_OK) st = llmq_tensor_create(q->ctx, LLMQ_DTYPE_F32, 2, range_shape, &range);
    if (st == LLMQ_OK && work_bytes > 0 && (work = llmq_mem_alloc(q->ctx, work_bytes)) == NULL)
        st = llmq_fail_oom(q->ctx, __func__, "workspace", work_bytes);
    if (st != LLMQ_OK && ctx != q->ctx)
        llmq_fail(ctx, st, __func__, "%s", llmq_context_last_error(q->ctx));
    const llmq_qgrid g = llmq_scheme_grid(&q->scheme);
    float *sv = scale != NULL ? scale->data : NULL, *rv = range != NULL ? range->data : NULL;
    int32_t *zv = zp != NULL ? zp->data : NULL;
    for (int64_t p = 0; p < count && st == LLMQ_OK; p++) {
        float lo, hi;
        st = llmq_observer_clip(ctx, q, p, work, &lo, &hi);
        if (st == LLMQ_OK) {
            llmq_qparams_from_range(&g, q->scheme.symmetry, lo, hi, &sv[p], &zv[p]);
            rv[2 * p] = lo;
            rv[2 * p + 1] = hi;
        }
    }
    llmq_mem_free(q->ctx, work);
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(scale);
        llmq_tensor_destroy(zp);
        llmq_tensor_destroy(range);
        return st;
    }
    free_statistics(q);
    q->scale = scale;
    q->zero_point = zp;
    q->range = range;
    q->finalized = true;
    return LLMQ_OK;
}

llmq_status llmq_bind_params(llmq_context *ctx, const char *fn, llmq_tensor *dst,
                             const llmq_scheme *scheme, const llmq_tensor *scale,
                             const llmq_tensor *zero_point)
{
    llmq_backend *be;
    const char *name = "dst";
    const llmq_tensor *t = dst;
    LLMQ_TRY(llmq_host_backend(ctx, fn, 1, &name, &t, &be));
    if (dst->dtype != scheme->dtype)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "dst=%s tensor: the parameters are for %s tensors",
                         llmq_dtype_name(dst->dtype), llmq_dtype_name(scheme->dtype));
    llmq_scheme s = *scheme;
    s.ctx = ctx;
    llmq_param_layout l;
    LLMQ_TRY(llmq_scheme_layout(&s, fn, dst->ndim, dst->shape, &l));
    if (l.ndim != scale->ndim || l.shape[0] != scale->shape[0] ||
        (l.ndim == 2 && l.shape[1] != scale->shape[1])) {
        char a[96], b[64], c[64];
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "dst=%s: needs parameters shaped %s, these are shaped %s",
                         llmq_shape_str(dst, a, sizeof a), layout_str(l.ndim, l.shape, b, sizeof b),
                         layout_str(scale->ndim, scale->shape, c, sizeof c));
    }
    LLMQ_TRY(llmq_tensor_set_scheme(ctx, dst, &s));
    for (int64_t r = 0; r < scale->rows; r++) { /* the sources may be strided views */
        memcpy((float *)dst->scale->data + r * scale->cols,
               (const char *)scale->data + (size_t)r * scale->row_stride,
               (size_t)scale->cols * sizeof(float));
        memcpy((int32_t *)dst->zero_point->data + r * zero_point->cols,
               (const char *)zero_point->data + (size_t)r * zero_point->row_stride,
               (size_t)zero_point->cols * sizeof(int32_t));
    }
    return LLMQ_OK;
}

llmq_status llmq_quantizer_apply(llmq_context *ctx, const llmq_quantizer *q, llmq_tensor *dst)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, q != NULL, "q=NULL: must be a quantizer");
    LLMQ_REQUIRE(ctx, dst != NULL, "dst=NULL: must be a tensor");
    if (!q->finalized)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "q=%s quantizer: not finalized (call llmq_quantizer_finalize first)",
                         llmq_observer_name(q->observer));
    return llmq_bind_params(ctx, __func__, dst, &q->scheme, q->scale, q->zero_point);
}

const llmq_scheme *llmq_quantizer_scheme(const llmq_quantizer *q)
{
    return q != NULL ? &q->scheme : NULL;
}

llmq_observer llmq_quantizer_observer(const llmq_quantizer *q)
{
    return q != NULL ? q->observer : LLMQ_OBSERVER_MINMAX;
}

int64_t llmq_quantizer_batch_count(const llmq_quantizer *q)
{
    return q != NULL ? q->batches : 0;
}

const llmq_tensor *llmq_quantizer_scale(const llmq_quantizer *q)
{
    return q != NULL ? q->scale : NULL;
}

const llmq_tensor *llmq_quantizer_zero_point(const llmq_quantizer *q)
{
    return q != NULL ? q->zero_point : NULL;
}

const llmq_tensor *llmq_quantizer_range(const llmq_quantizer *q)
{
    return q != NULL ? q->range : NULL;
}
