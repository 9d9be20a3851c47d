/* x86_qat.h - AVX2 fake-quant forward and backward, included by each x86 tier's translation
 * unit after x86_quant.h (internal; every function is static). SPDX-License-Identifier: MIT
 *
 * The reference (kern_qat_scalar.c) computed 8 elements at a time, with the same float32
 * operations in the same order, so every output is bit-identical to it:
 *   rq = round(clamp(v, lo - 1, hi + 1)), v = x * (1 / scale) (pytorch) or x / scale (onnx);
 *   ties to even by adding and subtracting 1.5 * 2^23 as llmq_round_half_even does (vroundps
 *   would give -0 where the reference gives +0, and y = 0 * scale keeps the sign), ties away by
 *   truncation through int32 and the reference's step;
 *   y = clamp(rq, lo, hi) * scale; dx = dy * (rq in [lo, hi]); the LSQ terms as the reference
 *   writes them.
 * The LSQ sums are the reference's too: per run of one parameter inside a chunk of
 * LLMQ_FQ_CHUNK columns, element i of the run into double lane i % 8 (blocks of 8 start at the
 * run's start, so lane j of a block is the reference's lane j), the lanes added pairwise at the
 * run's end (qat_params.h), then into the parameter's sum. Stochastic rounding goes to the
 * reference. */
#ifndef LLMQ_CPU_X86_QAT_H
#define LLMQ_CPU_X86_QAT_H

#include <stdbool.h>

#include "cpu/cpu_backends.h"
#include "cpu/qat_params.h"
#include "cpu/x86_common.h"
#include "cpu/x86_quant.h" /* the XQ_* modes */

/* One parameter per lane (a run broadcast, or consecutive parameters when col_group is 1). */
typedef struct xf_par {
    __m256 s, inv, lo, hi, a, b; /* a = lo - 1, b = hi + 1: the clipped codes */
} xf_par;

static LLMQ_ALWAYS_INLINE xf_par xf_par_make(__m256 s, __m256 lo, __m256 hi)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const xf_par q = {s, _mm256_div_ps(one, s), lo, hi, _mm256_sub_ps(lo, one),
                      _mm256_add_ps(hi, one)};
    return q;
}

static inline xf_par xf_par_run(const llmq_fq_job *job, int64_t p)
{
    const int32_t zp = llmq_fq_zero_point(job, p);
    return xf_par_make(_mm256_set1_ps(job->scale[p]), _mm256_set1_ps((float)(job->qmin - zp)),
                       _mm256_set1_ps((float)(job->qmax - zp)));
}

/* Parameters p .. p + n - 1 in lanes 0 .. n - 1 (n <= 8); the other lanes get scale 1. */
static inline xf_par xf_par_lanes(const llmq_fq_job *job, int64_t p, int n)
{
    float s[8], lo[8], hi[8];
    for (int i = 0; i < 8; i++) {
        const int32_t zp = i < n ? llmq_fq_zero_point(job, p + i) : 0;
        s[i] = i < n ? job->scale[p + i] : 1.0f;
        lo[i] = (float)(job->qmin - zp);
        hi[i] = (float)(job->qmax - zp);
    }
    return xf_par_make(_mm256_loadu_ps(s), _mm256_loadu_ps(lo), _mm256_loadu_ps(hi));
}

/* n <= 8 elements from column c of a float row; lanes past n are 0. */
static inline __m256 xf_load(const void *row, llmq_dtype dt, int64_t c, int n)
{
    if (n == 8)
        return x86_load8(row, dt, c);
    float t[8] = {0};
    for (int i = 0; i < n; i++)
        t[i] = x86_load1(row, dt, c + i);
    return _mm256_loadu_ps(t);
}

/* The reference's rq (kern_qat_scalar.c round_run) of 8 elements. */
static LLMQ_ALWAYS_INLINE __m256 xf_rq(__m256 x, const xf_par *q, int mode)
{
    const bool onnx = mode == XQ_EVEN_ONNX || mode == XQ_AWAY_ONNX;
    __m256 v = onnx ? _mm256_div_ps(x, q->s) : _mm256_mul_ps(x, q->inv);
    v = _mm256_max_ps(v, q->a); /* v > a ? v : a: NaN lands on a, as in the reference */
    v = _mm256_min_ps(v, q->b);
    if (mode == XQ_EVEN_PYTORCH || mode == XQ_EVEN_ONNX) {
        const __m256 big = _mm256_set1_ps(0x1.8p23f);
        return _mm256_sub_ps(_mm256_add_ps(v, big), big);
    }
    const __m256 t = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(v)), one = _mm256_set1_ps(1.0f);
    const __m256 d = _mm256_sub_ps(v, t);
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    const __m256 down = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one);
    return _mm256_sub_ps(_mm256_add_ps(t, up), down);
}

/* The LSQ terms of a block (backward only). */
typedef struct xf_terms {
    __m256 ts, tz;
} xf_terms;

/* One block of n <= 8 elements at column c: y (forward), or dx and, when terms is not NULL,
 * the LSQ terms, 0 in lanes past n (backward). Returns the NaN mask of x. */
static LLMQ_ALWAYS_INLINE __m256 xf_block(const llmq_fq_job *job, const char *xrow,
                                          const char *dyrow, char *orow, int64_t c, int n,
                                          const xf_par *q, int mode, xf_terms *terms)
{
    const __m256 x = xf_load(xrow, job->x_dtype, c, n);
    const __m256 rq = xf_rq(x, q, mode);
    if (dyrow == NULL) {
        /* rq is never -0 (see the top), so max / min are the reference's comparisons */
        const __m256 v = _mm256_min_ps(_mm256_max_ps(rq, q->lo), q->hi);
        x86_store_float(orow, job->out_dtype, c, _mm256_mul_ps(v, q->s), n);
        return _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    }
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 g = xf_load(dyrow, job->dy_dtype, c, n); /* before dx: dx may be dy */
    const __m256 below = _mm256_cmp_ps(rq, q->lo, _CMP_LT_OQ);
    const __m256 inside = _mm256_and_ps(_mm256_cmp_ps(rq, q->lo, _CMP_GE_OQ),
                                        _mm256_cmp_ps(rq, q->hi, _CMP_LE_OQ));
    if (terms != NULL) {
        const bool onnx = mode == XQ_EVEN_ONNX || mode == XQ_AWAY_ONNX;
        const __m256 gf = _mm256_set1_ps(job->grad_factor);
        const __m256 d = _mm256_mul_ps(g, _mm256_sub_ps(_mm256_mul_ps(rq, q->s), x));
        const __m256 ti =
            _mm256_mul_ps(onnx ? _mm256_div_ps(d, q->s) : _mm256_mul_ps(d, q->inv), gf);
        const __m256 to = _mm256_mul_ps(_mm256_mul_ps(g, _mm256_blendv_ps(q->hi, q->lo, below)), gf);
        const __m256 tz = _mm256_mul_ps(
            _mm256_mul_ps(_mm256_mul_ps(g, _mm256_set1_ps(-1.0f)), q->s), gf);
        const __m256 live = _mm256_cmp_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_ps((float)n), _CMP_LT_OQ);
        terms->ts = _mm256_and_ps(live, _mm256_blendv_ps(to, ti, inside));
        terms->tz = _mm256_and_ps(live, _mm256_andnot_ps(inside, tz)); /* +0: adds nothing */
    }
    x86_store_float(orow, job->out_dtype, c, _mm256_mul_ps(g, _mm256_and_ps(inside, one)), n);
    return _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
}

/* sum[0..4) += lanes 0..3 of v, sum[4..8) += lanes 4..7, in double. */
static LLMQ_ALWAYS_INLINE void xf_add_lanes(__m256d *sum, __m256 v)
{
    sum[0] = _mm256_add_pd(sum[0], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    sum[1] = _mm256_add_pd(sum[1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double xf_lanes_sum(const __m256d *sum)
{
    double v[LLMQ_FQ_LANES];
    _mm256_storeu_pd(v, sum[0]);
    _mm256_storeu_pd(v + 4, sum[1]);
    return llmq_fq_lanes_sum(v);
}

static LLMQ_ALWAYS_INLINE llmq_status xf_pass(const llmq_fq_job *job, bool backward,
                                              int64_t *bad_index, int mode)
{
    const bool want_params = backward && (job->dscale != NULL || job->dzero_point != NULL);
    double *acc_s = want_params ? job->acc : NULL, *acc_z = want_params ? job->acc + job->nparams : NULL;
    for (int64_t p = 0; want_params && p < 2 * job->nparams; p++)
        job->acc[p] = 0.0;
    const int64_t g = job->map.col_group;
    xf_terms terms;
    for (int64_t r = 0; r < job->rows; r++) {
        const char *xrow = (const char *)job->x + (size_t)r * job->x_stride;
        const char *dyrow = backward ? (const char *)job->dy + (size_t)r * job->dy_stride : NULL;
        char *orow = (char *)job->out + (size_t)r * job->out_stride;
        const int64_t base = llmq_param_row_base(&job->map, r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += LLMQ_FQ_CHUNK) {
            const int64_t n = job->cols - c0 < LLMQ_FQ_CHUNK ? job->cols - c0 : LLMQ_FQ_CHUNK;
            /* segments: the whole chunk with a parameter per element (g == 1), else the
             * reference's runs of one parameter */
            for (int64_t c = 0, end; c < n; c = end) {
                const int64_t p = base + (c0 + c) / g;
                end = g == 1 ? n : ((c0 + c) / g + 1) * g - c0;
                end = end < n ? end : n;
                const xf_par run = xf_par_run(job, p);
                __m256d ss[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, sz[2] = {ss[0], ss[0]};
                for (int64_t i = c; i < end; i += 8) {
                    const int m = end - i < 8 ? (int)(end - i) : 8;
                    const xf_par lanes = g == 1 ? xf_par_lanes(job, p + (i - c), m) : run;
                    /* the NaN lanes of this block, read before y was written over x */
                    const int nan = _mm256_movemask_ps(xf_block(job, xrow, dyrow, orow, c0 + i, m,
                                                                &lanes, mode,
                                                                want_params ? &terms : NULL));
                    if (nan != 0) {
                        *bad_index = r * job->cols + c0 + i + __builtin_ctz((unsigned)nan);
                        return LLMQ_ERR_NON_FINITE;
                    }
                    if (want_params && g == 1) { /* runs of one element each */
                        float ts[8], tz[8];
                        _mm256_storeu_ps(ts, terms.ts);
                        _mm256_storeu_ps(tz, terms.tz);
                        for (int k = 0; k < m; k++) { /* the lanes sum of one term */
                            acc_s[p + (i - c) + k] += 0.0 + (double)ts[k];
                            acc_z[p + (i - c) + k] += 0.0 + (double)tz[k];
                        }
                    } else if (want_params) {
                        xf_add_lanes(ss, terms.ts);
                        xf_add_lanes(sz, terms.tz);
                    }
                }
                if (want_params && g != 1) {
                    acc_s[p] += xf_lanes_sum(ss);
                    acc_z[p] += xf_lanes_sum(sz);
                }
            }
        }
    }
    for (int64_t p = 0; want_params && p < job->nparams; p++) {
        if (job->dscale != NULL)
            job->dscale[p] = (float)acc_s[p];
        if (job->dzero_point != NULL)
            job->dzero_point[p] = (float)acc_z[p];
    }
    return LLMQ_OK;
}

static llmq_status xf_dispatch(llmq_backend *be, const llmq_fq_job *job, bool backward,
                               int64_t *bad_index)
{
    const bool onnx = job->numerics == LLMQ_NUMERICS_ONNX;
    switch (job->rounding) {
    case LLMQ_ROUNDING_HALF_EVEN:
        return onnx ? xf_pass(job, backward, bad_index, XQ_EVEN_ONNX)
                    : xf_pass(job, backward, bad_index, XQ_EVEN_PYTORCH);
    case LLMQ_ROUNDING_HALF_AWAY:
        return onnx ? xf_pass(job, backward, bad_index, XQ_AWAY_ONNX)
                    : xf_pass(job, backward, bad_index, XQ_AWAY_PYTORCH);
    default: /* stochastic: one draw per element, the reference's generator */
        return backward ? llmq_cpu_scalar_fake_quantize_backward(be, job, bad_index)
                        : llmq_cpu_scalar_fake_quantize(be, job, bad_index);
    }
}

static llmq_status xf_fake_quantize(llmq_backend *be, const llmq_fq_job *job, int64_t *bad_index)
{
    return xf_dispatch(be, job, false, bad_index);
}

static llmq_status xf_fake_quantize_backward(llmq_backend *be, const llmq_fq_job *job,
                                             int64_t *bad_index)
{
    return xf_dispatch(be, job, true, bad_index);
}

#endif
