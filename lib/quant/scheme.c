/* scheme.c - scheme handles, their parameter layouts, and binding them to tensors.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "quant/scheme_impl.h"

llmq_status llmq_scheme_create(llmq_context *ctx, llmq_dtype dtype, llmq_scheme **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a scheme pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, llmq_dtype_is_quantized(dtype),
                 "dtype=%s: a scheme needs a quantized dtype (s8, u8, s4, u4, s2, u2)",
                 llmq_dtype_name(dtype));
    llmq_scheme *s = llmq_mem_calloc(ctx, sizeof *s);
    if (s == NULL)
        return llmq_fail_oom(ctx, __func__, "scheme", sizeof *s);
    s->ctx = ctx;
    s->dtype = dtype;
    s->symmetry = LLMQ_SYMMETRY_SYMMETRIC;
    s->granularity = LLMQ_GRANULARITY_PER_TENSOR;
    s->rounding = LLMQ_ROUNDING_HALF_EVEN;
    s->numerics = LLMQ_NUMERICS_PYTORCH;
    *out = s;
    return LLMQ_OK;
}

void llmq_scheme_destroy(llmq_scheme *s)
{
    if (s != NULL)
        llmq_mem_free(s->ctx, s);
}

llmq_status llmq_scheme_set_symmetry(llmq_scheme *s, llmq_symmetry symmetry)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, (unsigned)symmetry <= LLMQ_SYMMETRY_ASYMMETRIC,
                 "symmetry=%d: unknown symmetry", (int)symmetry);
    s->symmetry = symmetry;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_granularity(llmq_scheme *s, llmq_granularity granularity)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, (unsigned)granularity <= LLMQ_GRANULARITY_PER_TOKEN,
                 "granularity=%d: unknown granularity", (int)granularity);
    s->granularity = granularity;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_axis(llmq_scheme *s, int32_t axis)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, axis > -LLMQ_MAX_DIMS - 1 && axis < LLMQ_MAX_DIMS,
                 "axis=%d: must be in -%d..%d", (int)axis, LLMQ_MAX_DIMS, LLMQ_MAX_DIMS - 1);
    s->axis = axis;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_group_size(llmq_scheme *s, int64_t group_size)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, group_size >= 1, "group_size=%lld: must be >= 1",
                 (long long)group_size);
    s->group_size = group_size;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_rounding(llmq_scheme *s, llmq_rounding rounding)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, (unsigned)rounding <= LLMQ_ROUNDING_STOCHASTIC,
                 "rounding=%d: unknown rounding mode", (int)rounding);
    s->rounding = rounding;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_seed(llmq_scheme *s, uint64_t seed)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    s->seed = seed;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_numerics(llmq_scheme *s, llmq_numerics numerics)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, (unsigned)numerics <= LLMQ_NUMERICS_ONNX,
                 "numerics=%d: unknown numerics mode", (int)numerics);
    s->numerics = numerics;
    return LLMQ_OK;
}

llmq_status llmq_scheme_set_range(llmq_scheme *s, int32_t qmin, int32_t qmax)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (qmin == 0 && qmax == 0) {
        s->range_min = s->range_max = 0;
        return LLMQ_OK;
    }
    llmq_scheme full = *s;
    full.range_min = full.range_max = 0;
    full.symmetry = LLMQ_SYMMETRY_SYMMETRIC;
    const llmq_qgrid g = llmq_scheme_grid(&full);
    LLMQ_REQUIRE(s->ctx, qmin >= g.qmin && qmin <= g.qmax, "qmin=%d: outside the %s grid [%d, %d]",
                 (int)qmin, llmq_dtype_name(s->dtype), (int)g.qmin, (int)g.qmax);
    LLMQ_REQUIRE(s->ctx, qmax >= g.qmin && qmax <= g.qmax, "qmax=%d: outside the %s grid [%d, %d]",
                 (int)qmax, llmq_dtype_name(s->dtype), (int)g.qmin, (int)g.qmax);
    LLMQ_REQUIRE(s->ctx, qmin < qmax, "qmin=%d: must be below qmax=%d", (int)qmin, (int)qmax);
    /* a signed symmetric scheme's zero point is 0, which must be a code */
    LLMQ_REQUIRE(s->ctx, g.is_unsigned || (qmin <= 0 && qmax >= 0),
                 "qmin=%d: a signed range must include 0 (qmax=%d)", (int)qmin, (int)qmax);
    s->range_min = qmin;
    s->range_max = qmax;
    return LLMQ_OK;
}

llmq_dtype llmq_scheme_dtype(const llmq_scheme *s)
{
    return s != NULL ? s->dtype : (llmq_dtype)0;
}

llmq_symmetry llmq_scheme_symmetry(const llmq_scheme *s)
{
    return s != NULL ? s->symmetry : (llmq_symmetry)0;
}

llmq_granularity llmq_scheme_granularity(const llmq_scheme *s)
{
    return s != NULL ? s->granularity : (llmq_granularity)0;
}

int32_t llmq_scheme_axis(const llmq_scheme *s)
{
    return s != NULL ? s->axis : 0;
}

int64_t llmq_scheme_group_size(const llmq_scheme *s)
{
    return s != NULL ? s->group_size : 0;
}

llmq_rounding llmq_scheme_rounding(const llmq_scheme *s)
{
    return s != NULL ? s->rounding : (llmq_rounding)0;
}

uint64_t llmq_scheme_seed(const llmq_scheme *s)
{
    return s != NULL ? s->seed : 0;
}

llmq_numerics llmq_scheme_numerics(const llmq_scheme *s)
{
    return s != NULL ? s->numerics : (llmq_numerics)0;
}

llmq_qgrid llmq_scheme_grid(const llmq_scheme *s)
{
    llmq_qgrid g;
    const int bits = (int)llmq_dtype_bits(s->dtype);
    g.is_unsigned = s->dtype == LLMQ_DTYPE_U8 || s->dtype == LLMQ_DTYPE_U4 ||
                    s->dtype == LLMQ_DTYPE_U2;
    g.qmin = g.is_unsigned ? 0 : -(1 << (bits - 1));
    g.qmax = g.is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
    if (s->range_min != 0 || s->range_max != 0) { /* PyTorch's quant_min / quant_max */
        g.qmin = s->range_min;
        g.qmax = s->range_max;
    } else if (s->symmetry == LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED) {
        g.qmin += 1;
    }
    return g;
}

llmq_status llmq_scheme_range(const llmq_scheme *s, int32_t *qmin, int32_t *qmax)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, qmin != NULL && qmax != NULL, "%s=NULL: must point to an int32_t",
                 qmin == NULL ? "qmin" : "qmax");
    const llmq_qgrid g = llmq_scheme_grid(s);
    *qmin = g.qmin;
    *qmax = g.qmax;
    return LLMQ_OK;
}

llmq_status llmq_scheme_qparams(const llmq_scheme *s, float lo, float hi, float *scale,
                                int32_t *zero_point)
{
    if (s == NULL)
        return LLMQ_ERR_INVALID_ARG;
    LLMQ_REQUIRE(s->ctx, scale != NULL && zero_point != NULL, "%s=NULL: must not be NULL",
                 scale == NULL ? "scale" : "zero_point");
    if (!isfinite(lo) || !isfinite(hi))
        return llmq_fail(s->ctx, LLMQ_ERR_NON_FINITE, __func__, "%s=%g: must be finite",
                         isfinite(lo) ? "hi" : "lo", (double)(isfinite(lo) ? hi : lo));
    LLMQ_REQUIRE(s->ctx, lo <= hi, "lo=%g: greater than hi=%g", (double)lo, (double)hi);
    const llmq_qgrid g = llmq_scheme_grid(s);
    llmq_qparams_from_range(&g, s->symmetry, lo, hi, scale, zero_point);
    return LLMQ_OK;
}

llmq_status llmq_scheme_layout(const llmq_scheme *s, const char *fn, int32_t ndim,
                               const int64_t *shape, llmq_param_layout *out)
{
    int64_t rows = 1;
    for (int32_t i = 0; i + 1 < ndim; i++)
        rows *= shape[i];
    const int64_t cols = shape[ndim - 1];
    llmq_param_layout l = {.ndim = 1, .shape = {1, 1}, .count = 1,
                           .map = {1, 1, 0, cols}};
    switch (s->granularity) {
    case LLMQ_GRANULARITY_PER_TENSOR:
        break;
    case LLMQ_GRANULARITY_PER_CHANNEL: {
        int32_t axis = s->axis < 0 ? s->axis + ndim : s->axis;
        if (axis < 0 || axis >= ndim)
            return llmq_fail(s->ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "axis=%d: out of range for a %d-dimensional tensor", (int)s->axis,
                             (int)ndim);
        l.shape[0] = l.count = shape[axis];
        if (axis == ndim - 1) {
            l.map = (llmq_param_map){1, 1, 0, 1};
        } else {
            int64_t inner = 1;
            for (int32_t i = axis + 1; i + 1 < ndim; i++)
                inner *= shape[i];
            l.map = (llmq_param_map){inner, shape[axis], 1, cols};
        }
        break;
    }
    case LLMQ_GRANULARITY_PER_TOKEN:
        l.shape[0] = l.count = rows;
        l.map = (llmq_param_map){1, rows, 1, cols};
        break;
    case LLMQ_GRANULARITY_PER_GROUP: {
        if (s->group_size < 1)
            return llmq_fail(s->ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "group_size=%lld: PER_GROUP needs llmq_scheme_set_group_size()",
                             (long long)s->group_size);
        const int64_t groups = (cols - 1) / s->group_size + 1;
        l.ndim = 2;
        l.shape[0] = rows;
        l.shape[1] = groups;
        l.count = rows * groups;
        l.map = (llmq_param_map){1, rows, groups, s->group_size};
        break;
    }
    default:
        return llmq_fail(s->ctx, LLMQ_ERR_INTERNAL, fn, "granularity=%d: unknown",
                         (int)s->granularity);
    }
    *out = l;
    return LLMQ_OK;
}

/* The parameter tensors of a layout, in t's memory, holding scale 1 and the symmetric zero
 * point. Device parameters are filled by one upload of host values. */
static llmq_status new_params(llmq_tensor *t, const llmq_param_layout *l, llmq_qgrid g,
                              llmq_tensor **scale, llmq_tensor **zp)
{
    llmq_context *c = t->ctx;
    llmq_status st;
    *scale = *zp = NULL;
    if (!t->device) {
        if ((st = llmq_tensor_create(c, LLMQ_DTYPE_F32, l->ndim, l->shape, scale)) == LLMQ_OK &&
            (st = llmq_tensor_create(c, LLMQ_DTYPE_S32, l->ndim, l->shape, zp)) == LLMQ_OK) {
            float *sv = (*scale)->data;
            int32_t *zv = (*zp)->data;
            for (int64_t i = 0; i < l->count; i++) {
                sv[i] = 1.0f;
                zv[i] = llmq_qgrid_symmetric_zero_point(&g);
            }
            return LLMQ_OK;
        }
    } else {
        llmq_tensor *hs = NULL, *hz = NULL;
        if ((st = llmq_tensor_create_device(c, LLMQ_DTYPE_F32, l->ndim, l->shape, scale)) ==
                LLMQ_OK &&
            (st = llmq_tensor_create_device(c, LLMQ_DTYPE_S32, l->ndim, l->shape, zp)) ==
                LLMQ_OK &&
            (st = new_params(&(llmq_tensor){.ctx = c}, l, g, &hs, &hz)) == LLMQ_OK &&
            (st = llmq_tensor_copy(c, hs, *scale)) == LLMQ_OK)
            st = llmq_tensor_copy(c, hz, *zp);
        llmq_tensor_destroy(hs);
        llmq_tensor_destroy(hz);
        if (st == LLMQ_OK)
            return LLMQ_OK;
    }
    llmq_tensor_destroy(*scale);
    llmq_tensor_destroy(*zp);
    *scale = *zp = NULL;
    return st;
}

llmq_status llmq_tensor_set_scheme(llmq_context *ctx, llmq_tensor *t, const llmq_scheme *scheme)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, t != NULL, "t=NULL: must be a tensor");
    LLMQ_REQUIRE(ctx, scheme != NULL, "scheme=NULL: must be a scheme");
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, __func__, "t", t));
    LLMQ_REQUIRE(ctx, t->dtype == scheme->dtype, "t=%s tensor: scheme quantizes to %s",
                 llmq_dtype_name(t->dtype), llmq_dtype_name(scheme->dtype));
    llmq_param_layout l;
    llmq_scheme copy = *scheme;
    copy.ctx = ctx; /* messages and memory of the copy belong to the tensor's context */
    LLMQ_TRY(llmq_scheme_layout(&copy, __func__, t->ndim, t->shape, &l));

    llmq_scheme *s = llmq_mem_alloc(t->ctx, sizeof *s);
    llmq_tensor *scale = NULL, *zp = NULL;
    llmq_status st = LLMQ_ERR_OUT_OF_MEMORY;
    if (s == NULL) {
        st = llmq_fail_oom(ctx, __func__, "scheme", sizeof *s);
    } else if ((st = new_params(t, &l, llmq_scheme_grid(&copy), &scale, &zp)) == LLMQ_OK) {
        copy.ctx = t->ctx;
        *s = copy;
        llmq_tensor_destroy(t->scale);
        llmq_tensor_destroy(t->zero_point);
        llmq_mem_free(t->ctx, t->scheme);
        t->scheme = s;
        t->scale = scale;
        t->zero_point = zp;
        t->map = l.map;
        scale->owner = t;
        zp->owner = t;
        const llmq_qgrid g = llmq_scheme_grid(s);
        t->zp_lo = t->zp_hi = llmq_qgrid_symmetric_zero_point(&g);
        return LLMQ_OK;
    }
    if (t->ctx != ctx && st != LLMQ_OK)
        llmq_fail(ctx, st, __func__, "%s", llmq_context_last_error(t->ctx));
    llmq_mem_free(t->ctx, s);
    return st;
}

llmq_status llmq_tensor_create_quantized(llmq_context *ctx, const llmq_scheme *scheme,
                                         int32_t ndim, const int64_t *shape, llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, scheme != NULL, "scheme=NULL: must be a scheme");
    llmq_tensor *t;
    LLMQ_TRY(llmq_tensor_create(ctx, scheme->dtype, ndim, shape, &t));
    llmq_status st = llmq_tensor_set_scheme(ctx, t, scheme);
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return LLMQ_OK;
}

const llmq_scheme *llmq_tensor_scheme(const llmq_tensor *t)
{
    return t != NULL ? t->scheme : NULL;
}

llmq_tensor *llmq_tensor_scale(const llmq_tensor *t)
{
    return t != NULL ? t->scale : NULL;
}

llmq_tensor *llmq_tensor_zero_point(const llmq_tensor *t)
{
    return t != NULL ? t->zero_point : NULL;
}

llmq_status llmq_tensor_check_params(llmq_context *ctx, const char *fn, const char *name,
                                     const llmq_tensor *q, bool values)
{
    if (q->scheme == NULL)
        return llmq_fail(ctx, LLMQ_ERR_STATE, fn,
                         "%s: %s tensor has no scheme (call llmq_tensor_set_scheme first)", name,
                         llmq_dtype_name(q->dtype));
    /* device parameters were checked on their way to the device (llmq_tensor_copy) or written
     * by the library's kernels; a 4-bit packed weight is read with the copies of its
     * parameters checked when it was packed */
    if (!values || q->device || (q->packed != NULL && q->packed->bits == 4))
        return LLMQ_OK;
    const llmq_qgrid g = llmq_scheme_grid(q->scheme);
    const float *s = q->scale->data;
    const int32_t *z = q->zero_point->data;
    const int64_t n = llmq_tensor_numel(q->scale);
    /* a branch-free pass first (this runs on every matmul, over every group's parameters), in
     * blocks of 8 that compilers vectorize at -O2; the loop below finds the culprit for the
     * message */
    int ok = 1;
    int64_t i0 = 0;
    for (; i0 + 8 <= n; i0 += 8) {
        int blk = 1;
        for (int t = 0; t < 8; t++)
            blk &= (s[i0 + t] >= FLT_MIN) & (s[i0 + t] <= FLT_MAX) & (z[i0 + t] >= g.qmin) &
                   (z[i0 + t] <= g.qmax);
        ok &= blk;
    }
    for (; i0 < n; i0++)
        ok &= (s[i0] >= FLT_MIN) & (s[i0] <= FLT_MAX) & (z[i0] >= g.qmin) & (z[i0] <= g.qmax);
    if (ok)
        return LLMQ_OK;
    for (int64_t i = 0; i < n; i++) {
        if (!(s[i] >= FLT_MIN && s[i] <= FLT_MAX))
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "%s.scale[%lld]=%g: must be a positive normal float", name,
                             (long long)i, (double)s[i]);
        if (z[i] < g.qmin || z[i] > g.qmax)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "%s.zero_point[%lld]=%d: outside the %s grid [%d, %d]", name,
                             (long long)i, (int)z[i], llmq_dtype_name(q->dtype), (int)g.qmin,
                             (int)g.qmax);
    }
    return LLMQ_OK;
}
