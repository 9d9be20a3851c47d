/* qat.c - public fake-quantization entry points for quantization-aware training: validation,
 * then one job on the backend of the tensors' memory (the CUDA module for device tensors, the
 * context's CPU tier or the CPU reference for host tensors). SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/qat.h"
#include "quant/scheme_impl.h"

/* What both entry points have checked and resolved. */
typedef struct fq_setup {
    llmq_param_layout layout;
    llmq_qgrid grid;
    const llmq_scheme *scheme;
} fq_setup;

static llmq_status need(llmq_context *ctx, const char *fn, const char *name, const void *p,
                        const char *kind)
{
    return p != NULL
               ? LLMQ_OK
               : llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a %s", name, kind);
}

/* A float tensor of x's shape. */
static llmq_status check_like_x(llmq_context *ctx, const char *fn, const char *name,
                                const llmq_tensor *t, const llmq_tensor *x)
{
    LLMQ_TRY(need(ctx, fn, name, t, "tensor"));
    if (!llmq_dtype_is_float(t->dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s tensor: must be f32, f16 or bf16",
                         name, llmq_dtype_name(t->dtype));
    if (t != x && !llmq_tensor_same_shape(t, x)) {
        char a[96], b[96];
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s: shape differs from x=%s", name,
                         llmq_shape_str(t, a, sizeof a), llmq_shape_str(x, b, sizeof b));
    }
    return LLMQ_OK;
}

/* A parameter tensor (scale, zero point or their gradients) shaped as the layout says. */
static llmq_status check_param_shape(llmq_context *ctx, const char *fn, const char *name,
                                     const llmq_tensor *t, const fq_setup *su, const llmq_tensor *x,
                                     bool s32_ok)
{
    if (t->dtype != LLMQ_DTYPE_F32 && !(s32_ok && t->dtype == LLMQ_DTYPE_S32))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%s tensor: must be f32%s", name,
                         llmq_dtype_name(t->dtype), s32_ok ? " or s32" : "");
    const llmq_param_layout *l = &su->layout;
    bool same = t->ndim == l->ndim;
    for (int32_t i = 0; same && i < t->ndim; i++)
        same = t->shape[i] == l->shape[i];
    if (!same) {
        char a[96], b[96], want[64];
        if (l->ndim == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)l->shape[0]);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)l->shape[0],
                     (long long)l->shape[1]);
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "%s=%s: the scheme's parameters for x=%s are shaped %s", name,
                         llmq_shape_str(t, a, sizeof a), llmq_shape_str(x, b, sizeof b), want);
    }
    if (t->row_stride != t->row_bytes)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "%s: row_stride=%zu: parameter rows must be packed (%zu bytes)", name,
                         t->row_stride, t->row_bytes);
    return LLMQ_OK;
}

/* Scale and zero-point values the kernels can use. Device parameters are not read here: that
 * would wait for the device (docs/qat.md). */
static llmq_status check_param_values(llmq_context *ctx, const char *fn, const fq_setup *su,
                                      const llmq_tensor *scale, const llmq_tensor *zero_point)
{
    if (scale->device)
        return LLMQ_OK;
    const float *s = scale->data;
    for (int64_t i = 0; i < su->layout.count; i++)
        if (!(s[i] >= FLT_MIN && s[i] <= FLT_MAX)) /* 1 / scale must stay finite */
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "scale[%lld]=%g: must be a positive normal float", (long long)i,
                             (double)s[i]);
    if (zero_point == NULL)
        return LLMQ_OK;
    for (int64_t i = 0; i < su->layout.count; i++) {
        if (zero_point->dtype == LLMQ_DTYPE_F32) {
            const float z = ((const float *)zero_point->data)[i];
            if (!isfinite(z))
                return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                 "zero_point[%lld]=%g: must be finite", (long long)i, (double)z);
        } else {
            const int32_t z = ((const int32_t *)zero_point->data)[i];
            if (z < su->grid.qmin || z > su->grid.qmax)
                return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                 "zero_point[%lld]=%d: outside the grid [%d, %d]", (long long)i,
                                 (int)z, (int)su->grid.qmin, (int)su->grid.qmax);
        }
    }
    return LLMQ_OK;
}

/* Checks shared by the forward and the backward: x, the scheme and the parameters. */
static llmq_status check_common(llmq_context *ctx, const char *fn, const llmq_tensor *x,
                                const llmq_scheme *scheme, const llmq_tensor *scale,
                                const llmq_tensor *zero_point, fq_setup *su)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_TRY(need(ctx, fn, "x", x, "tensor"));
    LLMQ_TRY(need(ctx, fn, "scheme", scheme, "scheme"));
    LLMQ_TRY(need(ctx, fn, "scale", scale, "tensor"));
    LLMQ_TRY(check_like_x(ctx, fn, "x", x, x));
    llmq_scheme copy = *scheme;
    copy.ctx = ctx; /* layout messages go to this call's context */
    LLMQ_TRY(llmq_scheme_layout(&copy, fn, x->ndim, x->shape, &su->layout));
    su->grid = llmq_scheme_grid(scheme);
    su->scheme = scheme;
    LLMQ_TRY(check_param_shape(ctx, fn, "scale", scale, su, x, false));
    if (zero_point != NULL)
        LLMQ_TRY(check_param_shape(ctx, fn, "zero_point", zero_point, su, x, true));
    return LLMQ_OK;
}

static bool overlap(const llmq_tensor *a, const llmq_tensor *b)
{
    const char *a0 = a->data, *b0 = b->data;
    return a0 < b0 + llmq_tensor_nbytes(b) && b0 < a0 + llmq_tensor_nbytes(a);
}

/* Output `out` must not overlap input `in`, except as the very same view when alias_ok. */
static llmq_status check_apart(llmq_context *ctx, const char *fn, const char *out_name,
                               const llmq_tensor *out, const char *in_name, const llmq_tensor *in,
                               bool alias_ok)
{
    if (out == NULL || in == NULL || !overlap(out, in))
        return LLMQ_OK;
    if (alias_ok && out->data == in->data && out->dtype == in->dtype &&
        out->row_stride == in->row_stride)
        return LLMQ_OK;
    return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=%p: overlaps %s=%p", out_name, out->data,
                     in_name, in->data);
}

static llmq_fq_job make_job(const fq_setup *su, const llmq_tensor *x, const llmq_tensor *scale,
                            const llmq_tensor *zero_point, llmq_tensor *out)
{
    const llmq_scheme *s = su->scheme;
    llmq_fq_job job = {
        .x = x->data,
        .out = out->data,
        .x_dtype = x->dtype,
        .dy_dtype = LLMQ_DTYPE_F32,
        .out_dtype = out->dtype,
        .x_stride = x->row_stride,
        .out_stride = out->row_stride,
        .rows = x->rows,
        .cols = x->cols,
        .map = su->layout.map,
        .nparams = su->layout.count,
        .scale = scale->data,
        .zero_point = zero_point != NULL ? zero_point->data : NULL,
        .zero_point_dtype = zero_point != NULL ? zero_point->dtype : LLMQ_DTYPE_S32,
        .zero_point_default = llmq_qgrid_symmetric_zero_point(&su->grid),
        .qmin = su->grid.qmin,
        .qmax = su->grid.qmax,
        .rounding = s->rounding,
        .numerics = s->numerics,
        .seed = s->seed,
        .grad_factor = 1.0f,
    };
    return job;
}

/* Run the job on the backend of the tensors' memory, or on the CPU reference when a CPU tier
 * leaves the slot empty; a NaN's index becomes the message (a device defers it to
 * llmq_context_sync). */
static llmq_status run_job(llmq_context *ctx, const char *fn, llmq_backend *dev,
                           const llmq_fq_job *job, bool backward)
{
    llmq_backend be = *dev;
    if ((backward ? be.ops->fake_quantize_backward : be.ops->fake_quantize) == NULL) {
        const llmq_backend_ops *fallback = llmq_backend_fallback(&be);
        if (fallback == NULL ||
            (backward ? fallback->fake_quantize_backward : fallback->fake_quantize) == NULL)
            return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                             "backend=%s: has no fake-quantization kernel", be.ops->name);
        be.ops = fallback;
        be.state = NULL;
    }
    int64_t bad = -1;
    const llmq_status st = backward ? be.ops->fake_quantize_backward(&be, job, &bad)
                                    : be.ops->fake_quantize(&be, job, &bad);
    if (be.ops->device)
        return llmq_backend_status(ctx, &be, fn, st);
    if (st == LLMQ_ERR_NON_FINITE)
        return llmq_fail(ctx, st, fn, "x[%lld]=nan: NaN cannot be quantized (flat index)",
                         (long long)bad);
    return st;
}

llmq_status llmq_fake_quantize(llmq_context *ctx, const llmq_tensor *x, const llmq_scheme *scheme,
                               const llmq_tensor *scale, const llmq_tensor *zero_point,
                               llmq_tensor *y)
{
    fq_setup su;
    LLMQ_TRY(check_common(ctx, __func__, x, scheme, scale, zero_point, &su));
    LLMQ_TRY(check_like_x(ctx, __func__, "y", y, x));
    LLMQ_TRY(check_apart(ctx, __func__, "y", y, "x", x, true));
    LLMQ_TRY(check_apart(ctx, __func__, "y", y, "scale", scale, false));
    LLMQ_TRY(check_apart(ctx, __func__, "y", y, "zero_point", zero_point, false));
    static const char *const names[] = {"x", "scale", "zero_point", "y"};
    const llmq_tensor *const ts[] = {x, scale, zero_point, y};
    llmq_backend *be;
    LLMQ_TRY(llmq_tensors_backend(ctx, __func__, 4, names, ts, &be));
    LLMQ_TRY(check_param_values(ctx, __func__, &su, scale, zero_point));
    const llmq_fq_job job = make_job(&su, x, scale, zero_point, y);
    return run_job(ctx, __func__, be, &job, false);
}

llmq_status llmq_fake_quantize_backward(llmq_context *ctx, const llmq_tensor *x,
                                        const llmq_scheme *scheme, const llmq_tensor *scale,
                                        const llmq_tensor *zero_point, const llmq_tensor *dy,
                                        float grad_factor, llmq_tensor *dx, llmq_tensor *dscale,
                                        llmq_tensor *dzero_point)
{
    static const char fn[] = "llmq_fake_quantize_backward";
    fq_setup su;
    LLMQ_TRY(check_common(ctx, fn, x, scheme, scale, zero_point, &su));
    LLMQ_TRY(check_like_x(ctx, fn, "dy", dy, x));
    LLMQ_TRY(check_like_x(ctx, fn, "dx", dx, x));
    LLMQ_REQUIRE(ctx, isfinite(grad_factor), "grad_factor=%g: must be finite", (double)grad_factor);
    if (dscale != NULL)
        LLMQ_TRY(check_param_shape(ctx, fn, "dscale", dscale, &su, x, false));
    if (dzero_point != NULL) {
        LLMQ_REQUIRE(ctx, zero_point != NULL,
                     "dzero_point=%p: needs a zero_point tensor (zero_point=NULL)",
                     dzero_point->data);
        LLMQ_TRY(check_param_shape(ctx, fn, "dzero_point", dzero_point, &su, x, false));
    }
    /* every output apart from every input and from the other outputs; dx may be dy */
    const struct {
        const char *name;
        const llmq_tensor *t;
    } ins[] = {{"x", x}, {"dy", dy}, {"scale", scale}, {"zero_point", zero_point}},
      outs[] = {{"dx", dx}, {"dscale", dscale}, {"dzero_point", dzero_point}};
    for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
        for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++)
            LLMQ_TRY(check_apart(ctx, fn, outs[o].name, outs[o].t, ins[i].name, ins[i].t,
                                 o == 0 && i == 1));
        for (size_t k = o + 1; k < sizeof outs / sizeof outs[0]; k++)
            LLMQ_TRY(check_apart(ctx, fn, outs[k].name, outs[k].t, outs[o].name, outs[o].t, false));
    }
    static const char *const names[] = {"x",  "scale", "zero_point",  "dy",
                                        "dx", "dscale", "dzero_point"};
    const llmq_tensor *const ts[] = {x, scale, zero_point, dy, dx, dscale, dzero_point};
    llmq_backend *be;
    LLMQ_TRY(llmq_tensors_backend(ctx, fn, 7, names, ts, &be));
    LLMQ_TRY(check_param_values(ctx, fn, &su, scale, zero_point));

    llmq_fq_job job = make_job(&su, x, scale, zero_point, dx);
    job.dy = dy->data;
    job.dy_dtype = dy->dtype;
    job.dy_stride = dy->row_stride;
    job.grad_factor = grad_factor;
    job.dscale = dscale != NULL ? dscale->data : NULL;
    job.dzero_point = dzero_point != NULL ? dzero_point->data : NULL;
    if (!be->ops->device && (dscale != NULL || dzero_point != NULL)) {
        const size_t bytes = 2 * (size_t)su.layout.count * sizeof(double);
        job.acc = llmq_mem_alloc(ctx, bytes);
        if (job.acc == NULL)
            return llmq_fail_oom(ctx, fn, "gradient sums", bytes);
    }
    const llmq_status st = run_job(ctx, fn, be, &job, true);
    llmq_mem_free(ctx, job.acc);
    return st;
}
