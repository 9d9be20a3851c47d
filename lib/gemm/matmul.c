/* matmul.c - the public matmul entry point: validate the operands, classify the product,
 * build one job for the context's backend. SPDX-License-Identifier: MIT */
#include <string.h>

#include "core/abi_check.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "gemm/matmul_impl.h"
#include "quant/scheme_impl.h"
#include "llmq/gemm.h"

llmq_status llmq_matmul_options_defaults(llmq_matmul_options *options, size_t size)
{
    if (options == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (size < sizeof(llmq_matmul_options) || size > 4096)
        return LLMQ_ERR_ABI;
    memset(options, 0, size);
    options->size = size;
    return LLMQ_OK;
}

static bool overlap(const llmq_tensor *a, const llmq_tensor *b)
{
    const char *a0 = a->data, *b0 = b->data;
    return a0 < b0 + llmq_tensor_nbytes(b) && b0 < a0 + llmq_tensor_nbytes(a);
}

static llmq_matmul_operand operand(const llmq_tensor *t)
{
    llmq_matmul_operand o = {.data = t->data, .dtype = t->dtype, .stride = t->row_stride,
                             .packed = t->packed};
    if (t->scheme != NULL) {
        const llmq_qgrid g = llmq_scheme_grid(t->scheme);
        o.scale = t->scale->data;
        o.zero_point = t->zero_point->data;
        o.map = t->map;
        o.qmin = g.qmin;
        o.qmax = g.qmax;
        llmq_tensor_zp_range(t, &o.zp_lo, &o.zp_hi);
    }
    return o;
}

/* Largest |q - zp| a quantized operand can produce (device tensors: from the zero-point
 * range the host keeps for them). */
static int64_t max_centered(const llmq_tensor *t)
{
    const llmq_qgrid g = llmq_scheme_grid(t->scheme);
    int32_t lo, hi;
    llmq_tensor_zp_range(t, &lo, &hi);
    const int64_t a = (int64_t)hi - g.qmin, b = (int64_t)g.qmax - lo;
    return a > b ? a : b;
}

static llmq_status check_operands(llmq_context *ctx, const char *fn, const llmq_tensor *a,
                                  const llmq_tensor *b, const llmq_tensor *bias,
                                  const llmq_tensor *c, bool kn, int64_t *n_out)
{
    char s1[96], s2[96];
    if (a == NULL || b == NULL || c == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a tensor",
                         a == NULL ? "a" : b == NULL ? "b" : "c");
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, fn, "a", a));
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, fn, "c", c));
    if (b->packed != NULL && kn)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "options.weight_layout=KN: b is packed, its layout is fixed [N, K]");
    const bool int_a = a->dtype == LLMQ_DTYPE_S8 || a->dtype == LLMQ_DTYPE_U8;
    if (!int_a && !llmq_dtype_is_float(a->dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "a=%s tensor: must be f32, f16, bf16 (weight-only) or s8, u8",
                         llmq_dtype_name(a->dtype));
    if (!llmq_dtype_is_quantized(b->dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "b=%s tensor: weights must be quantized (s8, u8, s4, u4, s2, u2)",
                         llmq_dtype_name(b->dtype));
    if (b->ndim != 2)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "b=%s: weights must be 2-D",
                         llmq_shape_str(b, s1, sizeof s1));
    const int64_t k = kn ? b->shape[0] : b->shape[1], n = kn ? b->shape[1] : b->shape[0];
    if (a->cols != k)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "b=%s: K=%lld differs from a=%s",
                         llmq_shape_str(b, s1, sizeof s1), (long long)k,
                         llmq_shape_str(a, s2, sizeof s2));
    bool c_shape_ok = c->ndim == a->ndim && c->cols == n;
    for (int32_t i = 0; c_shape_ok && i + 1 < a->ndim; i++)
        c_shape_ok = c->shape[i] == a->shape[i];
    if (!c_shape_ok)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "c=%s: must have a's leading dimensions and N=%lld",
                         llmq_shape_str(c, s1, sizeof s1), (long long)n);
    const bool float_c = llmq_dtype_is_float(c->dtype);
    if (!float_c && !(int_a && (c->dtype == LLMQ_DTYPE_S32 || c->dtype == LLMQ_DTYPE_S8 ||
                                c->dtype == LLMQ_DTYPE_U8)))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "c=%s tensor: must be f32, f16, bf16%s", llmq_dtype_name(c->dtype),
                         int_a ? ", s32, s8 or u8" : " for weight-only products");
    if (bias != NULL) {
        if (!float_c)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "bias: only float outputs take a bias (c=%s)",
                             llmq_dtype_name(c->dtype));
        if (bias->dtype != LLMQ_DTYPE_F32 || llmq_tensor_numel(bias) != n ||
            bias->rows != 1)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "bias=%s %s: must be f32 with N=%lld values",
                             llmq_dtype_name(bias->dtype), llmq_shape_str(bias, s1, sizeof s1),
                             (long long)n);
        if (overlap(bias, c))
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "c: overlaps bias");
    }
    if (overlap(a, c) || overlap(b, c))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "c: overlaps %s",
                         overlap(a, c) ? "a" : "b");
    if (int_a)
        LLMQ_TRY(llmq_tensor_check_params(ctx, fn, "a", a, true));
    LLMQ_TRY(llmq_tensor_check_params(ctx, fn, "b", b, true));
    if (c->dtype == LLMQ_DTYPE_S8 || c->dtype == LLMQ_DTYPE_U8)
        LLMQ_TRY(llmq_tensor_check_params(ctx, fn, "c", c, true));
    *n_out = n;
    return LLMQ_OK;
}

llmq_status llmq_matmul_read_options(llmq_context *ctx, const char *fn,
                                const llmq_matmul_options *options, llmq_matmul_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    if (options != NULL) {
        if (llmq_abi_check(options, options->size, sizeof *o,
                           offsetof(llmq_matmul_options, reserved)) != LLMQ_OK)
            return llmq_fail(ctx, LLMQ_ERR_ABI, fn,
                             "options.size=%zu: must be sizeof(llmq_matmul_options), reserved 0",
                             options->size);
        memcpy(o, options, sizeof *o);
    }
    if ((unsigned)o->weight_layout > LLMQ_WEIGHT_LAYOUT_KN)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "options.weight_layout=%d: unknown layout",
                         (int)o->weight_layout);
    if ((unsigned)o->requant > LLMQ_REQUANT_MULTIPLIER)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "options.requant=%d: unknown requantization mode", (int)o->requant);
    return LLMQ_OK;
}

llmq_status llmq_matmul_with_options(llmq_context *ctx, const llmq_tensor *a,
                                     const llmq_tensor *b, const llmq_tensor *bias,
                                     llmq_tensor *c, const llmq_matmul_options *options)
{
    static const char fn[] = "llmq_matmul";
    LLMQ_CHECK_CONTEXT(ctx);
    llmq_matmul_options o;
    LLMQ_TRY(llmq_matmul_read_options(ctx, fn, options, &o));
    const bool kn = o.weight_layout == LLMQ_WEIGHT_LAYOUT_KN;
    int64_t n = 0;
    LLMQ_TRY(check_operands(ctx, fn, a, b, bias, c, kn, &n));
    llmq_backend *be;
    static const char *const names[4] = {"a", "b", "bias", "c"};
    const llmq_tensor *const ts[4] = {a, b, bias, c};
    LLMQ_TRY(llmq_tensors_backend(ctx, fn, 4, names, ts, &be));

    const int64_t k = a->cols;
    const bool int_a = !llmq_dtype_is_float(a->dtype);
    /* B's parameters do not depend on k: NK maps with one column group, KN maps without a
     * row term */
    const bool b_uniform = kn ? b->map.row_mul == 0 : b->map.col_group >= k;
    const bool a_uniform = !int_a || a->map.col_group >= k;
    if (kn && (llmq_dtype_bits(b->dtype) != 8 || !b_uniform))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "b=%s: the KN layout takes 8-bit weights with per-tensor or per-N "
                         "parameters", llmq_dtype_name(b->dtype));
    if (c->dtype == LLMQ_DTYPE_S32 && !(a_uniform && b_uniform))
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "c=s32: raw accumulators need parameters of a and b that do not vary "
                         "along K (per tensor, per token, per output channel)");
    if (int_a) { /* the exact int32 contract: the worst-case sum must fit */
        const int64_t bound = max_centered(a) * max_centered(b);
        if (bound > 0 && k > INT32_MAX / bound)
            return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                             "a=[..., %lld]: K * max|a - zA| * max|b - zB| = %lld * %lld "
                             "exceeds the int32 accumulator", (long long)k, (long long)k,
                             (long long)bound);
    }
    llmq_matmul_job job = {
        .m = a->rows,
        .n = n,
        .k = k,
        .a = operand(a),
        .b = operand(b),
        .c = operand(c),
        .c_data = c->data,
        .bias = bias != NULL ? bias->data : NULL,
        .b_kn = kn,
        .a_uniform_k = a_uniform,
        .b_uniform_k = b_uniform,
        .requant = o.requant,
    };
    if (be->ops->matmul == NULL)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn, "backend=%s: no matmul",
                         be->ops->name);
    return llmq_backend_status(ctx, be, fn, be->ops->matmul(be, &job));
}

llmq_status llmq_matmul(llmq_context *ctx, const llmq_tensor *a, const llmq_tensor *b,
                        const llmq_tensor *bias, llmq_tensor *c)
{
    return llmq_matmul_with_options(ctx, a, b, bias, c, NULL);
}
