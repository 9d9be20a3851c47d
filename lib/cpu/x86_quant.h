/* x86_quant.h - AVX2 quantize, dequantize and range kernels, included by each x86 tier's
 * translation unit (internal; every function is static). SPDX-License-Identifier: MIT
 *
 * Same arithmetic as the scalar reference (kern_scalar.c), element for element, so the codes
 * are bit-identical: inv = 1.0f / scale (vdivps is IEEE division), v = x * inv (pytorch) or
 * x / scale (onnx), clamp to [qmin - zp, qmax - zp] with max/min (NaN lands on the low end as
 * in the reference), round (vroundps: ties to even, or the reference's truncate-and-step for
 * ties away), add zp. Stochastic rounding goes to the reference. */
#ifndef LLMQ_CPU_X86_QUANT_H
#define LLMQ_CPU_X86_QUANT_H

#include <math.h>
#include <stdbool.h>

#include "cpu/cpu_backends.h"
#include "cpu/x86_common.h"
#include "quant/pack.h"
#include "quant/rounding.h"

#define XQ_CHUNK 256

enum { XQ_EVEN_PYTORCH, XQ_EVEN_ONNX, XQ_AWAY_PYTORCH, XQ_AWAY_ONNX };

/* Codes of 8 values: mul is inv (pytorch) or scale (onnx). */
static LLMQ_ALWAYS_INLINE __m256i xq_codes(__m256 x, __m256 mul, __m256 lo, __m256 hi,
                                           __m256i zp, int mode)
{
    const bool onnx = mode == XQ_EVEN_ONNX || mode == XQ_AWAY_ONNX;
    __m256 v = onnx ? _mm256_div_ps(x, mul) : _mm256_mul_ps(x, mul);
    v = _mm256_max_ps(v, lo); /* v >= lo ? v : lo, NaN -> lo */
    v = _mm256_min_ps(v, hi);
    __m256 r;
    if (mode == XQ_EVEN_PYTORCH || mode == XQ_EVEN_ONNX) {
        r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {
        const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 d = _mm256_sub_ps(v, t), one = _mm256_set1_ps(1.0f);
        r = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
        r = _mm256_sub_ps(r, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one));
    }
    return _mm256_add_epi32(_mm256_cvttps_epi32(r), zp);
}

/* The reference's element (kern_scalar.c quantize_span). */
static inline int32_t xq_code1(float x, float scale, float inv, float lo, float hi, int32_t zp,
                               int mode)
{
    const bool onnx = mode == XQ_EVEN_ONNX || mode == XQ_AWAY_ONNX;
    float v = onnx ? x / scale : x * inv;
    v = v >= lo ? v : lo;
    v = v <= hi ? v : hi;
    const float r = mode == XQ_EVEN_PYTORCH || mode == XQ_EVEN_ONNX ? llmq_round_half_even(v)
                                                                    : llmq_round_half_away(v);
    return (int32_t)r + zp;
}

static inline int64_t xq_first_nan(const void *row, llmq_dtype dt, int64_t c0, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float x = x86_load1(row, dt, c0 + i);
        if (x != x)
            return i;
    }
    return -1;
}

/* Columns [c0, c1) of one row, all with parameter p (run) or each its own (g == 1). Returns the
 * offset from c0 of the first NaN, or -1. codes[i] receives column c0 + i. */
static LLMQ_ALWAYS_INLINE int64_t xq_run(const llmq_quant_job *job, const void *srow, int64_t c0,
                                         int64_t c1, int64_t p, bool per_elem, uint8_t *codes,
                                         int mode)
{
    const llmq_dtype dt = job->src_dtype;
    const int sgn = job->qmin < 0;
    const bool onnx = mode == XQ_EVEN_ONNX || mode == XQ_AWAY_ONNX;
    __m256 bad = _mm256_setzero_ps();
    int64_t c = c0;
    if (!per_elem) {
        const float scale = job->scale[p], inv = 1.0f / scale;
        const int32_t zp = job->zero_point[p];
        const float lo = (float)(job->qmin - zp), hi = (float)(job->qmax - zp);
        const __m256 vmul = _mm256_set1_ps(onnx ? scale : inv);
        const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
        const __m256i vzp = _mm256_set1_epi32(zp);
        for (; c + 32 <= c1; c += 32) {
            const __m256 x0 = x86_load8(srow, dt, c), x1 = x86_load8(srow, dt, c + 8);
            const __m256 x2 = x86_load8(srow, dt, c + 16), x3 = x86_load8(srow, dt, c + 24);
            bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(x0, x1, _CMP_UNORD_Q),
                                                 _mm256_cmp_ps(x2, x3, _CMP_UNORD_Q)));
            const __m256i q = x86_pack_codes32(xq_codes(x0, vmul, vlo, vhi, vzp, mode),
                                               xq_codes(x1, vmul, vlo, vhi, vzp, mode),
                                               xq_codes(x2, vmul, vlo, vhi, vzp, mode),
                                               xq_codes(x3, vmul, vlo, vhi, vzp, mode), sgn);
            _mm256_storeu_si256((__m256i *)(codes + (c - c0)), q);
        }
        for (; c + 8 <= c1; c += 8) {
            const __m256 x = x86_load8(srow, dt, c);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
            x86_store_codes8(codes + (c - c0), xq_codes(x, vmul, vlo, vhi, vzp, mode), sgn);
        }
        for (; c < c1; c++) {
            const float x = x86_load1(srow, dt, c);
            if (x != x)
                bad = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
            codes[c - c0] = (uint8_t)xq_code1(x, scale, inv, lo, hi, zp, mode);
        }
    } else {
        const __m256i vqmin = _mm256_set1_epi32(job->qmin), vqmax = _mm256_set1_epi32(job->qmax);
        for (; c + 8 <= c1; c += 8) {
            const __m256 x = x86_load8(srow, dt, c);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
            const __m256 s = _mm256_loadu_ps(job->scale + p + (c - c0));
            const __m256i zp = _mm256_loadu_si256((const __m256i *)(job->zero_point + p + (c - c0)));
            const __m256 vmul = onnx ? s : _mm256_div_ps(_mm256_set1_ps(1.0f), s);
            const __m256 vlo = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmin, zp));
            const __m256 vhi = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmax, zp));
            x86_store_codes8(codes + (c - c0), xq_codes(x, vmul, vlo, vhi, zp, mode), sgn);
        }
        for (; c < c1; c++) {
            const int64_t q = p + (c - c0);
            const float x = x86_load1(srow, dt, c), scale = job->scale[q];
            const int32_t zp = job->zero_point[q];
            if (x != x)
                bad = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
            codes[c - c0] = (uint8_t)xq_code1(x, scale, 1.0f / scale, (float)(job->qmin - zp),
                                              (float)(job->qmax - zp), zp, mode);
        }
    }
    return x86_any(bad) ? xq_first_nan(srow, dt, c0, c1 - c0) : -1;
}

static LLMQ_ALWAYS_INLINE llmq_status xq_quantize_mode(const llmq_quant_job *job,
                                                       int64_t *bad_index, int mode)
{
    const bool byte_codes = job->dst_dtype == LLMQ_DTYPE_S8 || job->dst_dtype == LLMQ_DTYPE_U8;
    const int bits = (int)llmq_dtype_bits(job->dst_dtype);
    const int64_t g = job->map.col_group;
    uint8_t staged[XQ_CHUNK];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        uint8_t *drow = (uint8_t *)job->dst + (size_t)r * job->dst_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += XQ_CHUNK) {
            const int64_t n = job->cols - c0 < XQ_CHUNK ? job->cols - c0 : XQ_CHUNK;
            uint8_t *codes = byte_codes ? drow + c0 : staged;
            int64_t nan = -1, at = 0;
            if (g == 1) {
                nan = xq_run(job, srow, c0, c0 + n, base + c0, true, codes, mode);
                at = c0;
            } else {
                for (int64_t c = c0; c < c0 + n && nan < 0;) {
                    int64_t end = (c / g + 1) * g;
                    end = end < c0 + n ? end : c0 + n;
                    nan = xq_run(job, srow, c, end, base + c / g, false, codes + (c - c0), mode);
                    at = c;
                    c = end;
                }
            }
            if (nan >= 0) {
                *bad_index = (job->row0 + r) * job->cols + at + nan;
                return LLMQ_ERR_NON_FINITE;
            }
            if (!byte_codes)
                llmq_pack_codes(drow, c0, staged, n, bits);
        }
    }
    return LLMQ_OK;
}

static llmq_status xq_quantize(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index)
{
    const bool onnx = job->numerics == LLMQ_NUMERICS_ONNX;
    switch (job->rounding) {
    case LLMQ_ROUNDING_HALF_EVEN:
        return onnx ? xq_quantize_mode(job, bad_index, XQ_EVEN_ONNX)
                    : xq_quantize_mode(job, bad_index, XQ_EVEN_PYTORCH);
    case LLMQ_ROUNDING_HALF_AWAY:
        return onnx ? xq_quantize_mode(job, bad_index, XQ_AWAY_ONNX)
                    : xq_quantize_mode(job, bad_index, XQ_AWAY_PYTORCH);
    default: /* stochastic: one draw per element, the reference's counter-based generator */
        return llmq_cpu_scalar_quantize(be, job, bad_index);
    }
}

/* ---- range: the observers' min / max over the finite values ---- */

/* Fold [c0, c1) (one parameter p) into lo[p] / hi[p] as the reference does. Returns the offset
 * of the first NaN, or -1 (then lo / hi are updated). */
static int64_t xr_run(const llmq_quant_job *job, const void *srow, int64_t c0, int64_t c1,
                      int64_t p, float *lo, float *hi)
{
    const llmq_dtype dt = job->src_dtype;
    __m256 mn = _mm256_set1_ps(lo[p]), mx = _mm256_set1_ps(hi[p]);
    __m256 bad = _mm256_setzero_ps();
    int64_t c = c0;
    for (; c + 16 <= c1; c += 16) {
        const __m256 x0 = x86_load8(srow, dt, c), x1 = x86_load8(srow, dt, c + 8);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(x0, x1, _CMP_UNORD_Q));
        mn = _mm256_min_ps(x0, mn); /* x < mn ? x : mn: NaN keeps mn */
        mx = _mm256_max_ps(x0, mx);
        mn = _mm256_min_ps(x1, mn);
        mx = _mm256_max_ps(x1, mx);
    }
    for (; c + 8 <= c1; c += 8) {
        const __m256 x = x86_load8(srow, dt, c);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        mn = _mm256_min_ps(x, mn);
        mx = _mm256_max_ps(x, mx);
    }
    float mnv[8], mxv[8];
    _mm256_storeu_ps(mnv, mn);
    _mm256_storeu_ps(mxv, mx);
    float m0 = mnv[0], m1 = mxv[0];
    for (int i = 1; i < 8; i++) {
        m0 = mnv[i] < m0 ? mnv[i] : m0;
        m1 = mxv[i] > m1 ? mxv[i] : m1;
    }
    int tail_nan = 0;
    for (; c < c1; c++) {
        const float x = x86_load1(srow, dt, c);
        tail_nan |= x != x;
        m0 = x < m0 ? x : m0;
        m1 = x > m1 ? x : m1;
    }
    if (isinf(m0) || isinf(m1)) { /* rare: redo over the finite values only */
        m0 = lo[p];
        m1 = hi[p];
        for (int64_t i = c0; i < c1; i++) {
            const float x = x86_load1(srow, dt, i);
            m0 = x < m0 && x > -INFINITY ? x : m0;
            m1 = x > m1 && x < INFINITY ? x : m1;
        }
    }
    if (x86_any(bad) || tail_nan)
        return xq_first_nan(srow, dt, c0, c1 - c0);
    lo[p] = m0;
    hi[p] = m1;
    return -1;
}

static llmq_status xq_range(llmq_backend *be, const llmq_quant_job *job, float *lo, float *hi,
                            int64_t *bad_index)
{
    const int64_t g = job->map.col_group;
    if (g < 8) /* one parameter per element or tiny groups: the reference's loop */
        return llmq_cpu_scalar_range(be, job, lo, hi, bad_index);
    for (int64_t r = 0; r < job->rows; r++) {
        const char *srow = (const char *)job->src + (size_t)r * job->src_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c = 0; c < job->cols;) {
            int64_t end = (c / g + 1) * g;
            end = end < job->cols ? end : job->cols;
            const int64_t nan = xr_run(job, srow, c, end, base + c / g, lo, hi);
            if (nan >= 0) {
                *bad_index = (job->row0 + r) * job->cols + c + nan;
                return LLMQ_ERR_NON_FINITE;
            }
            c = end;
        }
    }
    return LLMQ_OK;
}

/* ---- dequantize: (float)(q - zp) * scale ---- */

/* codes[0 .. n) = the codes of columns c0 .. c0 + n of a row (c0 a multiple of 8), as int32. */
static inline void xq_unpack_row(const uint8_t *srow, int64_t c0, int32_t *codes, int64_t n,
                                 int bits, bool sgn)
{
    int64_t i = 0;
    if (bits == 8) {
        for (; i + 8 <= n; i += 8) {
            const __m128i x = _mm_loadl_epi64((const __m128i *)(srow + c0 + i));
            _mm256_storeu_si256((__m256i *)(codes + i),
                                sgn ? _mm256_cvtepi8_epi32(x) : _mm256_cvtepu8_epi32(x));
        }
        for (; i < n; i++)
            codes[i] = sgn ? (int32_t)(int8_t)srow[c0 + i] : (int32_t)srow[c0 + i];
        return;
    }
    if (bits == 4) /* 32 codes from 16 bytes: element 2j in the low nibble */
        for (; i + 32 <= n; i += 32) {
            __m128i lo, hi;
            x86_nibbles(_mm_loadu_si128((const __m128i *)(srow + (c0 + i) / 2)), sgn, &lo, &hi);
            const __m128i a = _mm_unpacklo_epi8(lo, hi), b = _mm_unpackhi_epi8(lo, hi);
            _mm256_storeu_si256((__m256i *)(codes + i), _mm256_cvtepi8_epi32(a));
            _mm256_storeu_si256((__m256i *)(codes + i + 8), _mm256_cvtepi8_epi32(_mm_srli_si128(a, 8)));
            _mm256_storeu_si256((__m256i *)(codes + i + 16), _mm256_cvtepi8_epi32(b));
            _mm256_storeu_si256((__m256i *)(codes + i + 24), _mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
        }
    if (i < n)
        llmq_unpack_codes(srow, c0 + i, codes + i, n - i, bits, sgn);
}

static llmq_status xq_dequantize(llmq_backend *be, const llmq_quant_job *job)
{
    (void)be;
    const int64_t g = job->map.col_group;
    const llmq_dtype sd = job->src_dtype, dd = job->dst_dtype;
    const int bits = (int)llmq_dtype_bits(sd);
    const bool sgn = sd == LLMQ_DTYPE_S8 || sd == LLMQ_DTYPE_S4 || sd == LLMQ_DTYPE_S2;
    int32_t codes[XQ_CHUNK + 8];
    for (int64_t r = 0; r < job->rows; r++) {
        const uint8_t *srow = (const uint8_t *)job->src + (size_t)r * job->src_stride;
        char *drow = (char *)job->dst + (size_t)r * job->dst_stride;
        const int64_t base = llmq_param_row_base(&job->map, job->row0 + r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += XQ_CHUNK) {
            const int64_t n = job->cols - c0 < XQ_CHUNK ? job->cols - c0 : XQ_CHUNK;
            xq_unpack_row(srow, c0, codes, n, bits, sgn);
            for (int64_t i = n; i < n + 8; i++)
                codes[i] = 0;
            int64_t gi = c0 / g, gend = (gi + 1) * g; /* the group of column c0 + c, its end */
            for (int64_t c = 0; c < n; c += 8) {
                const int m = n - c < 8 ? (int)(n - c) : 8;
                const __m256i q = _mm256_loadu_si256((const __m256i *)(codes + c));
                __m256 s;
                __m256i zp;
                const int64_t col = c0 + c;
                if (g != 1 && gend <= col) { /* the next group (one division per group) */
                    gi = col / g;
                    gend = (gi + 1) * g;
                }
                if (g == 1 && m == 8) {
                    s = _mm256_loadu_ps(job->scale + base + col);
                    zp = _mm256_loadu_si256((const __m256i *)(job->zero_point + base + col));
                } else if (g != 1 && col + m <= gend) {
                    s = _mm256_set1_ps(job->scale[base + gi]);
                    zp = _mm256_set1_epi32(job->zero_point[base + gi]);
                } else { /* a group boundary inside these 8: per lane */
                    float sv[8] = {0};
                    int32_t zv[8] = {0};
                    for (int i = 0; i < m; i++) {
                        sv[i] = job->scale[base + (col + i) / g];
                        zv[i] = job->zero_point[base + (col + i) / g];
                    }
                    s = _mm256_loadu_ps(sv);
                    zp = _mm256_loadu_si256((const __m256i *)zv);
                }
                const __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), s);
                x86_store_float(drow, dd, col, y, m);
            }
        }
    }
    return LLMQ_OK;
}

#endif
