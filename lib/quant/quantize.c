/* quantize.c - public quantize / dequantize / pack entry points: validation, then one job on
 * the context's backend. SPDX-License-Identifier: MIT */
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/pool.h"
#include "core/tensor_impl.h"
#include "quant/scheme_impl.h"
#include "llmq/quantize.h"

static bool overlap(const llmq_tensor *a, const llmq_tensor *b)
{
    const char *a0 = a->data, *b0 = b->data;
    return a0 < b0 + llmq_tensor_nbytes(b) && b0 < a0 + llmq_tensor_nbytes(a);
}

static llmq_status check_pair(llmq_context *ctx, const char *fn, const llmq_tensor *src,
                              const llmq_tensor *dst, llmq_backend **be)
{
    LLMQ_CHECK_CONTEXT(ctx);
    if (src == NULL || dst == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a tensor",
                         src == NULL ? "src" : "dst");
    if (!llmq_tensor_same_shape(src, dst)) {
        char a[96], b[96];
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dst=%s: shape differs from src=%s",
                         llmq_shape_str(dst, a, sizeof a), llmq_shape_str(src, b, sizeof b));
    }
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, fn, "src", src));
    LLMQ_TRY(llmq_tensor_check_unpacked(ctx, fn, "dst", dst));
    if (overlap(src, dst))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dst=%p: overlaps src=%p", dst->data,
                         src->data);
    static const char *const names[2] = {"src", "dst"};
    const llmq_tensor *const ts[2] = {src, dst};
    return llmq_tensors_backend(ctx, fn, 2, names, ts, be);
}

static llmq_quant_job make_job(const llmq_tensor *src, llmq_tensor *dst, const llmq_tensor *q)
{
    const llmq_scheme *s = q->scheme;
    const llmq_qgrid g = s != NULL ? llmq_scheme_grid(s) : (llmq_qgrid){0, 0, false};
    llmq_quant_job job = {
        .src = src->data,
        .dst = dst->data,
        .src_dtype = src->dtype,
        .dst_dtype = dst->dtype,
        .src_stride = src->row_stride,
        .dst_stride = dst->row_stride,
        .row0 = 0,
        .rows = src->rows,
        .cols = src->cols,
        .map = q->map,
        .scale = q->scale != NULL ? q->scale->data : NULL,
        .zero_point = q->zero_point != NULL ? q->zero_point->data : NULL,
        .qmin = g.qmin,
        .qmax = g.qmax,
        .rounding = s != NULL ? s->rounding : LLMQ_ROUNDING_HALF_EVEN,
        .numerics = s != NULL ? s->numerics : LLMQ_NUMERICS_PYTORCH,
        .seed = s != NULL ? s->seed : 0,
    };
    return job;
}

/* ---- row blocks on the context's threads ---- */

#define MAX_BLOCKS 64

enum { OP_QUANTIZE, OP_RANGE, OP_DEQUANTIZE };

typedef struct row_blocks {
    llmq_backend *be;
    const llmq_quant_job *job;
    int op;
    float *lo, *hi;
    int64_t rows_per_block;
    llmq_status st[MAX_BLOCKS];
    int64_t bad[MAX_BLOCKS];
} row_blocks;

static void run_block(void *arg, int64_t b, int worker)
{
    (void)worker;
    row_blocks *rb = arg;
    llmq_quant_job sub = *rb->job;
    const int64_t r0 = b * rb->rows_per_block;
    sub.row0 = r0;
    sub.rows = rb->job->rows - r0 < rb->rows_per_block ? rb->job->rows - r0 : rb->rows_per_block;
    sub.src = (const char *)sub.src + (size_t)r0 * sub.src_stride;
    if (sub.dst != NULL)
        sub.dst = (char *)sub.dst + (size_t)r0 * sub.dst_stride;
    rb->bad[b] = -1;
    const llmq_backend_ops *ops = rb->be->ops;
    rb->st[b] = rb->op == OP_QUANTIZE ? ops->quantize(rb->be, &sub, &rb->bad[b])
                : rb->op == OP_RANGE  ? ops->range(rb->be, &sub, rb->lo, rb->hi, &rb->bad[b])
                                      : ops->dequantize(rb->be, &sub);
}

/* Run one job split into row blocks on the context's threads. Every element's result depends
 * on its row only (parameters, stochastic draws and NaN indices use the tensor's row numbers),
 * so any split gives the bits of one job. A range job is split only when no parameter is
 * shared by two rows. On failure the error of the smallest element index wins, as in one
 * sequential pass. */
static llmq_status run_rows(llmq_context *ctx, llmq_backend *be, const llmq_quant_job *job,
                            int op, float *lo, float *hi, int64_t *bad_index)
{
    if (be->ops->device) { /* one launch on the device: its kernels split the work */
        const llmq_status st = op == OP_QUANTIZE ? be->ops->quantize(be, job, bad_index)
                               : op == OP_RANGE  ? be->ops->range(be, job, lo, hi, bad_index)
                                                 : be->ops->dequantize(be, job);
        return st == LLMQ_ERR_NON_FINITE ? st : llmq_backend_status(ctx, be, "llmq_quantize", st);
    }
    const bool disjoint = job->map.row_mul != 0 && job->map.row_div == 1 &&
                          job->map.row_mod == job->rows;
    int64_t blocks = 1;
    if (ctx->threads > 1 && job->rows > 1 && job->rows * job->cols >= 16384 &&
        (op != OP_RANGE || disjoint)) {
        blocks = (int64_t)ctx->threads * 4;
        blocks = blocks < MAX_BLOCKS ? blocks : MAX_BLOCKS;
        blocks = blocks < job->rows ? blocks : job->rows;
    }
    row_blocks rb = {.be = be, .job = job, .op = op, .lo = lo, .hi = hi};
    rb.rows_per_block = (job->rows + blocks - 1) / blocks;
    blocks = (job->rows + rb.rows_per_block - 1) / rb.rows_per_block;
    llmq_parallel_for(ctx, blocks, run_block, &rb);
    llmq_status st = LLMQ_OK;
    for (int64_t b = 0; b < blocks; b++) {
        if (rb.st[b] == LLMQ_OK)
            continue;
        if (st == LLMQ_OK || (rb.bad[b] >= 0 && rb.bad[b] < *bad_index)) {
            st = rb.st[b];
            *bad_index = rb.bad[b];
        }
    }
    return st;
}

static llmq_status fail_nan(llmq_context *ctx, const char *fn, int64_t index)
{
    return llmq_fail(ctx, LLMQ_ERR_NON_FINITE, fn,
                     "src[%lld]=nan: NaN cannot be quantized (flat index)", (long long)index);
}

static llmq_status check_quantize(llmq_context *ctx, const char *fn, const llmq_tensor *src,
                                  const llmq_tensor *dst, bool values, llmq_backend **be)
{
    LLMQ_TRY(check_pair(ctx, fn, src, dst, be));
    if (!llmq_dtype_is_float(src->dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "src=%s tensor: must be f32, f16 or bf16",
                         llmq_dtype_name(src->dtype));
    if (!llmq_dtype_is_quantized(dst->dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "dst=%s tensor: must be s8, u8, s4, u4, s2 or u2",
                         llmq_dtype_name(dst->dtype));
    return llmq_tensor_check_params(ctx, fn, "dst", dst, values);
}

llmq_status llmq_quantize(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    llmq_backend *be;
    LLMQ_TRY(check_quantize(ctx, __func__, src, dst, true, &be));
    const llmq_quant_job job = make_job(src, dst, dst);
    int64_t bad = -1;
    const llmq_status st = run_rows(ctx, be, &job, OP_QUANTIZE, NULL, NULL, &bad);
    if (st == LLMQ_ERR_NON_FINITE)
        return fail_nan(ctx, __func__, bad);
    return llmq_backend_status(ctx, be, __func__, st);
}

/* Device tensors: one backend job computes ranges, parameters and codes on the device. */
static llmq_status quantize_dynamic_device(llmq_context *ctx, llmq_backend *be,
                                           const llmq_tensor *src, llmq_tensor *dst)
{
    const llmq_quant_job job = make_job(src, dst, dst);
    const llmq_status st = be->ops->quantize_dynamic(
        be, &job, dst->scheme->symmetry, llmq_tensor_numel(dst->scale), dst->scale->data,
        dst->zero_point->data);
    const llmq_qgrid g = llmq_scheme_grid(dst->scheme);
    if (dst->scheme->symmetry == LLMQ_SYMMETRY_ASYMMETRIC) {
        dst->zp_lo = g.qmin;
        dst->zp_hi = g.qmax;
    } else {
        dst->zp_lo = dst->zp_hi = llmq_qgrid_symmetric_zero_point(&g);
    }
    return llmq_backend_status(ctx, be, "llmq_quantize_dynamic", st);
}

llmq_status llmq_quantize_dynamic(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    llmq_backend *be;
    LLMQ_TRY(check_quantize(ctx, __func__, src, dst, false, &be));
    if (be->ops->device)
        return quantize_dynamic_device(ctx, be, src, dst);
    const int64_t n = llmq_tensor_numel(dst->scale);
    /* ranges start at 0: PyTorch widens every range to include 0 anyway */
    const size_t bytes = 2 * (size_t)n * sizeof(float);
    float *lo = llmq_mem_calloc(ctx, bytes);
    if (lo == NULL)
        return llmq_fail_oom(ctx, __func__, "ranges", bytes);
    float *hi = lo + n;
    const llmq_quant_job job = make_job(src, dst, dst);
    int64_t bad = -1;
    llmq_quant_job rjob = job;
    rjob.dst = NULL; /* a range job only reads */
    llmq_status st = run_rows(ctx, be, &rjob, OP_RANGE, lo, hi, &bad);
    if (st == LLMQ_OK) {
        const llmq_qgrid g = llmq_scheme_grid(dst->scheme);
        float *scale = dst->scale->data;
        int32_t *zp = dst->zero_point->data;
        for (int64_t i = 0; i < n; i++)
            llmq_qparams_from_range(&g, dst->scheme->symmetry, lo[i], hi[i], &scale[i], &zp[i]);
        st = run_rows(ctx, be, &job, OP_QUANTIZE, NULL, NULL, &bad);
    }
    llmq_mem_free(ctx, lo);
    if (st == LLMQ_ERR_NON_FINITE)
        return fail_nan(ctx, __func__, bad);
    return st;
}

llmq_status llmq_dequantize(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    llmq_backend *be;
    LLMQ_TRY(check_pair(ctx, __func__, src, dst, &be));
    LLMQ_REQUIRE(ctx, llmq_dtype_is_quantized(src->dtype),
                 "src=%s tensor: must be s8, u8, s4, u4, s2 or u2", llmq_dtype_name(src->dtype));
    LLMQ_REQUIRE(ctx, llmq_dtype_is_float(dst->dtype), "dst=%s tensor: must be f32, f16 or bf16",
                 llmq_dtype_name(dst->dtype));
    LLMQ_TRY(llmq_tensor_check_params(ctx, __func__, "src", src, true));
    const llmq_quant_job job = make_job(src, dst, src);
    int64_t bad = -1;
    return run_rows(ctx, be, &job, OP_DEQUANTIZE, NULL, NULL, &bad);
}

/* Packing runs on host memory only: device tensors are quantized straight to s4 / u4. */
static llmq_status check_host_pack(llmq_context *ctx, const char *fn, const llmq_backend *be)
{
    if (be->ops->pack == NULL || be->ops->unpack == NULL)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "src: device tensors are not packed or unpacked by llmq (quantize to "
                         "s4 / u4 directly, or copy to the host first)");
    return LLMQ_OK;
}

/* The one-code-per-byte dtype that matches a packed dtype. */
static llmq_dtype byte_dtype(llmq_dtype packed)
{
    return packed == LLMQ_DTYPE_S4 || packed == LLMQ_DTYPE_S2 ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8;
}

static bool is_packed(llmq_dtype d)
{
    return d >= LLMQ_DTYPE_S4 && d <= LLMQ_DTYPE_U2;
}

llmq_status llmq_pack(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    llmq_backend *be;
    LLMQ_TRY(check_pair(ctx, __func__, src, dst, &be));
    LLMQ_TRY(check_host_pack(ctx, __func__, be));
    LLMQ_REQUIRE(ctx, is_packed(dst->dtype), "dst=%s tensor: must be s4, u4, s2 or u2",
                 llmq_dtype_name(dst->dtype));
    LLMQ_REQUIRE(ctx, src->dtype == byte_dtype(dst->dtype),
                 "src=%s tensor: packing into %s needs %s codes", llmq_dtype_name(src->dtype),
                 llmq_dtype_name(dst->dtype), llmq_dtype_name(byte_dtype(dst->dtype)));
    llmq_quant_job job = make_job(src, dst, dst);
    const int bits = (int)llmq_dtype_bits(dst->dtype);
    const bool sgn = src->dtype == LLMQ_DTYPE_S8;
    job.qmin = sgn ? -(1 << (bits - 1)) : 0;
    job.qmax = sgn ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    int64_t bad = -1;
    const llmq_status st = be->ops->pack(be, &job, &bad);
    if (st == LLMQ_ERR_INVALID_ARG) {
        const uint8_t *b = (const uint8_t *)src->data +
                           (size_t)(bad / src->cols) * src->row_stride + (size_t)(bad % src->cols);
        return llmq_fail(ctx, st, __func__, "src[%lld]=%d: outside the %s grid [%d, %d]",
                         (long long)bad, sgn ? (int)(int8_t)*b : (int)*b,
                         llmq_dtype_name(dst->dtype), (int)job.qmin, (int)job.qmax);
    }
    return st;
}

llmq_status llmq_unpack(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    llmq_backend *be;
    LLMQ_TRY(check_pair(ctx, __func__, src, dst, &be));
    LLMQ_TRY(check_host_pack(ctx, __func__, be));
    LLMQ_REQUIRE(ctx, is_packed(src->dtype), "src=%s tensor: must be s4, u4, s2 or u2",
                 llmq_dtype_name(src->dtype));
    LLMQ_REQUIRE(ctx, dst->dtype == byte_dtype(src->dtype),
                 "dst=%s tensor: unpacking %s needs %s", llmq_dtype_name(dst->dtype),
                 llmq_dtype_name(src->dtype), llmq_dtype_name(byte_dtype(src->dtype)));
    const llmq_quant_job job = make_job(src, dst, src);
    return be->ops->unpack(be, &job);
}
