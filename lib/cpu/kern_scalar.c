/* kern_scalar.c - scalar reference kernels of the CPU backend: quantize, dequantize, range,
 * histogram, pack, unpack. Portable C (SSE2 auto-vectorization at most): the oracle for every other
 * kernel. SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "cpu/rows.h"
#include "cpu/cpu_backends.h"
#include "quant/pack.h"
#include "quant/rounding.h"

/* Columns handled per step: bounds the stack buffers for conversions and sub-byte codes, and
 * keeps sub-byte chunk starts on byte boundaries. */
#define CHUNK 256

/* One run of elements sharing (scale, zp). Returns the offset of the first NaN, or -1.
 * The grid is clamped as v - zp so that the rounding works on small values (rounding.h). */
static int64_t quantize_span(const llmq_quant_job *job, const float *x, int64_t n, float scale,
                             int32_t zp, uint64_t index0, uint8_t *codes)
{
    const float lo = (float)(job->qmin - zp), hi = (float)(job->qmax - zp);
    const float inv = 1.0f / scale;
    const bool onnx = job->numerics == LLMQ_NUMERICS_ONNX;
    int bad = 0;
#define QUANT_LOOP(ROUND)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                          \
        const float xi = x[i];                                                                 \
        bad |= xi != xi;                                                                       \
        float v = onnx ? xi / scale : xi * inv;                                                \
        v = v >= lo ? v : lo; /* NaN lands on lo: defined, and reported below */              \
        v = v <= hi ? v : hi;                                                                  \
        codes[i] = (uint8_t)((int32_t)(ROUND) + zp);                                           \
    }
    switch (job->rounding) {
    case LLMQ_ROUNDING_HALF_AWAY:
        QUANT_LOOP(llmq_round_half_away(v));
        break;
    case LLMQ_ROUNDING_STOCHASTIC:
        QUANT_LOOP(llmq_round_stochastic(v, job->seed, index0 + (uint64_t)i));
        break;
    default:
        if (onnx) {
            QUANT_LOOP(llmq_round_half_even(v));
        } else { /* the common case, kept free of the division for the vectorizer */
            for (int64_t i = 0; i < n; i++) {
                const float xi = x[i];
                bad |= xi != xi;
                float v = xi * inv;
                v = v >= lo ? v : lo;
                v = v <= hi ? v : hi;
                codes[i] = (uint8_t)((int32_t)llmq_round_half_even(v) + zp);
            }
        }
        break;
    }
#undef QUANT_LOOP
    return bad ? llmq_cpu_first_nan(x, n) : -1;
}

static void write_codes(void *row, llmq_dtype dt, int64_t c0, const uint8_t *codes, int64_t n)
{
    const int bits = dt == LLMQ_DTYPE_S4 || dt == LLMQ_DTYPE_U4 ? 4 : 2;
    llmq_pack_codes(row, c0, codes, n, bits);
}

llmq_status llmq_cpu_scalar_quantize(llmq_backend *be, const llmq_quant_job *job,
                                   int64_t *bad_index)
{
    (void)be;
    const bool byte_codes = job->dst_dtype == LLMQ_DTYPE_S8 || job->dst_dtype == LLMQ_DTYPE_U8;
    const int64_t g = job->map.col_group;
    float buf[CHUNK];
    uint8_t packed_codes[CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        char *drow = (char *)job->dst + (size_t)r * job->dst_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += CHUNK) {
            const int64_t n = job->cols - c0 < CHUNK ? job->cols - c0 : CHUNK;
            const float *x = llmq_cpu_load_f32(srow, job->src_dtype, c0, n, buf);
            uint8_t *codes = byte_codes ? (uint8_t *)drow + c0 : packed_codes;
            for (int64_t c = 0; c < n;) {
                const int64_t p = base + (c0 + c) / g;
                int64_t end = ((c0 + c) / g + 1) * g - c0; /* end of this parameter's run */
                end = end < n ? end : n;
                const uint64_t index0 = (uint64_t)((job->row0 + r) * job->cols + c0 + c);
                const int64_t nan = quantize_span(job, x + c, end - c, job->scale[p],
                                                  job->zero_point[p], index0, codes + c);
                if (nan >= 0) {
                    *bad_index = (job->row0 + r) * job->cols + c0 + c + nan;
                    return LLMQ_ERR_NON_FINITE;
                }
                c = end;
            }
            if (!byte_codes)
                write_codes(drow, job->dst_dtype, c0, codes, n);
        }
    }
    return LLMQ_OK;
}

static void read_codes(const void *row, llmq_dtype dt, int64_t c0, int64_t n, int32_t *codes)
{
    switch (dt) {
    case LLMQ_DTYPE_S8:
        for (int64_t i = 0; i < n; i++)
            codes[i] = ((const int8_t *)row)[c0 + i];
        break;
    case LLMQ_DTYPE_U8:
        for (int64_t i = 0; i < n; i++)
            codes[i] = ((const uint8_t *)row)[c0 + i];
        break;
    case LLMQ_DTYPE_S4: llmq_unpack_codes(row, c0, codes, n, 4, true); break;
    case LLMQ_DTYPE_U4: llmq_unpack_codes(row, c0, codes, n, 4, false); break;
    case LLMQ_DTYPE_S2: llmq_unpack_codes(row, c0, codes, n, 2, true); break;
    default: llmq_unpack_codes(row, c0, codes, n, 2, false); break;
    }
}

llmq_status llmq_cpu_scalar_dequantize(llmq_backend *be, const llmq_quant_job *job)
{
    (void)be;
    const int64_t g = job->map.col_group;
    int32_t codes[CHUNK];
    float buf[CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        char *drow = (char *)job->dst + (size_t)r * job->dst_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += CHUNK) {
            const int64_t n = job->cols - c0 < CHUNK ? job->cols - c0 : CHUNK;
            read_codes(srow, job->src_dtype, c0, n, codes);
            float *y = llmq_cpu_out_f32(drow, job->dst_dtype, c0, buf);
            for (int64_t c = 0; c < n;) {
                const int64_t p = base + (c0 + c) / g;
                int64_t end = ((c0 + c) / g + 1) * g - c0;
                end = end < n ? end : n;
                const float s = job->scale[p];
                const int32_t zp = job->zero_point[p];
                for (int64_t i = c; i < end; i++)
                    y[i] = (float)(codes[i] - zp) * s;
                c = end;
            }
            llmq_cpu_store_f32(drow, job->dst_dtype, c0, n, buf);
        }
    }
    return LLMQ_OK;
}

llmq_status llmq_cpu_scalar_range(llmq_backend *be, const llmq_quant_job *job, float *lo,
                                float *hi, int64_t *bad_index)
{
    (void)be;
    const int64_t g = job->map.col_group;
    float buf[CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += CHUNK) {
            const int64_t n = job->cols - c0 < CHUNK ? job->cols - c0 : CHUNK;
            const float *x = llmq_cpu_load_f32(srow, job->src_dtype, c0, n, buf);
            for (int64_t c = 0; c < n;) {
                const int64_t p = base + (c0 + c) / g;
                int64_t end = ((c0 + c) / g + 1) * g - c0;
                end = end < n ? end : n;
                float mn = lo[p], mx = hi[p];
                int bad = 0;
                for (int64_t i = c; i < end; i++) { /* plain min/max: vectorizes */
                    const float xi = x[i];
                    bad |= xi != xi;
                    mn = xi < mn ? xi : mn;
                    mx = xi > mx ? xi : mx;
                }
                if (isinf(mn) || isinf(mx)) { /* rare: redo over the finite values only */
                    mn = lo[p];
                    mx = hi[p];
                    for (int64_t i = c; i < end; i++) {
                        const float xi = x[i];
                        mn = xi < mn && xi > -INFINITY ? xi : mn;
                        mx = xi > mx && xi < INFINITY ? xi : mx;
                    }
                }
                if (bad) {
                    *bad_index = (job->row0 + r) * job->cols + c0 + c +
                                 llmq_cpu_first_nan(x + c, end - c);
                    return LLMQ_ERR_NON_FINITE;
                }
                lo[p] = mn;
                hi[p] = mx;
                c = end;
            }
        }
    }
    return LLMQ_OK;
}

/* One run of elements sharing a histogram. The bin indices are computed first in a loop the
 * compiler vectorizes (NaN would land on 0 and ±Inf on an edge, both defined), then counted. */
static void histogram_span(const float *x, int64_t n, bool absolute, float lo, float span,
                           float nb, float bmax, uint64_t *row, int64_t bins, int64_t copies)
{
    int32_t idx[CHUNK];
    int nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        const float v = absolute ? a : x[i];
        nonfinite |= !(a <= FLT_MAX);
        idx[i] = llmq_hist_bin(v, lo, span, nb, bmax);
    }
    if (!nonfinite && copies == 4) {
        uint64_t *r1 = row + bins, *r2 = r1 + bins, *r3 = r2 + bins;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
            row[idx[i]]++;
            r1[idx[i + 1]]++;
            r2[idx[i + 2]]++;
            r3[idx[i + 3]]++;
        }
        for (; i < n; i++)
            row[idx[i]]++;
    } else if (!nonfinite) {
        for (int64_t i = 0; i < n; i++)
            row[idx[i]]++;
    } else {
        for (int64_t i = 0; i < n; i++)
            if (fabsf(x[i]) <= FLT_MAX)
                row[idx[i]]++;
    }
}

llmq_status llmq_cpu_scalar_histogram(llmq_backend *be, const llmq_quant_job *job,
                                    const llmq_hist_job *hist)
{
    (void)be;
    const int64_t g = job->map.col_group;
    const float nb = (float)hist->bins, bmax = (float)(hist->bins - 1);
    float buf[CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        const int64_t base = llmq_param_row_base(&job->map, r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += CHUNK) {
            const int64_t n = job->cols - c0 < CHUNK ? job->cols - c0 : CHUNK;
            const float *x = llmq_cpu_load_f32(srow, job->src_dtype, c0, n, buf);
            for (int64_t c = 0; c < n;) {
                const int64_t p = base + (c0 + c) / g;
                int64_t end = ((c0 + c) / g + 1) * g - c0;
                end = end < n ? end : n;
                histogram_span(x + c, end - c, hist->absolute, hist->lo[p],
                               hist->hi[p] - hist->lo[p], nb, bmax,
                               hist->counts + (size_t)(p * hist->copies) * (size_t)hist->bins,
                               hist->bins, hist->copies);
                c = end;
            }
        }
    }
    return LLMQ_OK;
}

llmq_status llmq_cpu_scalar_pack(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index)
{
    (void)be;
    const int bits = job->dst_dtype == LLMQ_DTYPE_S4 || job->dst_dtype == LLMQ_DTYPE_U4 ? 4 : 2;
    const bool is_signed = job->src_dtype == LLMQ_DTYPE_S8;
    for (int64_t r = 0; r < job->rows; r++) {
        const uint8_t *srow = (const uint8_t *)job->src + (size_t)r * job->src_stride;
        uint8_t *drow = (uint8_t *)job->dst + (size_t)r * job->dst_stride;
        for (int64_t c = 0; c < job->cols; c++) {
            const int32_t v = is_signed ? (int8_t)srow[c] : srow[c];
            if (v < job->qmin || v > job->qmax) {
                *bad_index = (job->row0 + r) * job->cols + c;
                return LLMQ_ERR_INVALID_ARG;
            }
        }
        llmq_pack_codes(drow, 0, srow, job->cols, bits);
    }
    return LLMQ_OK;
}

llmq_status llmq_cpu_scalar_unpack(llmq_backend *be, const llmq_quant_job *job)
{
    (void)be;
    int32_t codes[CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        uint8_t *drow = (uint8_t *)job->dst + (size_t)r * job->dst_stride;
        for (int64_t c0 = 0; c0 < job->cols; c0 += CHUNK) {
            const int64_t n = job->cols - c0 < CHUNK ? job->cols - c0 : CHUNK;
            read_codes(srow, job->src_dtype, c0, n, codes);
            for (int64_t i = 0; i < n; i++)
                drow[c0 + i] = (uint8_t)codes[i];
        }
    }
    return LLMQ_OK;
}

const llmq_backend_ops llmq_cpu_scalar_ops = {
    .version = LLMQ_BACKEND_OPS_VERSION,
    .name = "cpu-scalar",
    .isa = LLMQ_CPU_ISA_SCALAR,
    .quantize = llmq_cpu_scalar_quantize,
    .dequantize = llmq_cpu_scalar_dequantize,
    .range = llmq_cpu_scalar_range,
    .histogram = llmq_cpu_scalar_histogram,
    .pack = llmq_cpu_scalar_pack,
    .unpack = llmq_cpu_scalar_unpack,
    .matmul = llmq_cpu_scalar_matmul,
    .fake_quantize = llmq_cpu_scalar_fake_quantize,
    .fake_quantize_backward = llmq_cpu_scalar_fake_quantize_backward,
};
