/* test_observers.c - the observers' numbers: hand-computed min/max, moving averages and
 * per-channel ranges; percentiles and entropy thresholds on constructed distributions with
 * known answers; the entropy and L2 searches against direct evaluations of their definitions;
 * MSE; histogram rebinning keeps the mass; memory stays flat over 10,000 batches.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "calib_testing.h"

static void assert_qparams(llmq_context *ctx, const llmq_quantizer *q, int64_t p, float lo,
                           float hi)
{
    const float *r = calib_range(q);
    assert_true(r[2 * p] == lo);
    assert_true(r[2 * p + 1] == hi);
    float s;
    int32_t z;
    ASSERT_OK(ctx, llmq_scheme_qparams(llmq_quantizer_scheme(q), lo, hi, &s, &z));
    assert_true(calib_scale(q)[p] == s);
    assert_int_equal(calib_zero_point(q)[p], z);
}

static void minmax_per_tensor_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float b1[3] = {1.0f, -2.0f, 3.0f}, b2[3] = {0.5f, 4.0f, -1.0f};
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, q, b1, 3);
    calib_observe_1d(ctx, q, b2, 3);
    assert_int_equal(llmq_quantizer_batch_count(q), 2);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    /* range [-2, 4]: symmetric s8 scale = 4 / 127.5, zero point 0 */
    assert_true(calib_range(q)[0] == -2.0f && calib_range(q)[1] == 4.0f);
    assert_true(calib_scale(q)[0] == 4.0f / 127.5f);
    assert_int_equal(calib_zero_point(q)[0], 0);
    llmq_quantizer_destroy(q);

    q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                        LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, q, b1, 3);
    calib_observe_1d(ctx, q, b2, 3);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    /* asymmetric u8: scale = 6 / 255, zero point = 0 - round(-2 / scale) = 85 */
    assert_true(calib_scale(q)[0] == 6.0f / 255.0f);
    assert_int_equal(calib_zero_point(q)[0], 85);
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

static void minmax_per_channel_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float b1[6] = {1, -2, 3, -4, 5, 0.5f}, b2[6] = {2, 0, 0, 0, 0, -6};
    const int64_t shape[2] = {2, 3};
    /* axis 0 (rows): row 0 sees {1, -2, 3, 2, 0, 0}, row 1 {-4, 5, 0.5, 0, 0, -6} */
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0);
    ASSERT_OK(ctx, calib_observe(ctx, q, b1, 2, shape));
    ASSERT_OK(ctx, calib_observe(ctx, q, b2, 2, shape));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_int_equal(llmq_tensor_dim(llmq_quantizer_scale(q), 0), 2);
    assert_qparams(ctx, q, 0, -2.0f, 3.0f);
    assert_qparams(ctx, q, 1, -6.0f, 5.0f);
    assert_true(calib_scale(q)[1] == 6.0f / 127.5f);
    llmq_quantizer_destroy(q);
    /* axis -1 (columns): {1, -4, 2, 0}, {-2, 5, 0, 0}, {3, 0.5, 0, -6} */
    q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                        LLMQ_GRANULARITY_PER_CHANNEL, -1);
    ASSERT_OK(ctx, calib_observe(ctx, q, b1, 2, shape));
    ASSERT_OK(ctx, calib_observe(ctx, q, b2, 2, shape));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_int_equal(llmq_tensor_dim(llmq_quantizer_scale(q), 0), 3);
    assert_qparams(ctx, q, 0, -4.0f, 2.0f);
    assert_qparams(ctx, q, 1, -2.0f, 5.0f);
    assert_qparams(ctx, q, 2, -6.0f, 3.0f);
    assert_true(calib_scale(q)[0] == 6.0f / 255.0f);
    assert_int_equal(calib_zero_point(q)[0], 170); /* 0 - round(-4 / (6 / 255)) */
    llmq_quantizer_destroy(q);

    /* a middle axis of a 3-D tensor [2, 3, 4]: channel c holds x[i][c][k] for all i, k */
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 7) % 24) - 11.0f;
    const int64_t s3[3] = {2, 3, 4};
    q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                        LLMQ_GRANULARITY_PER_CHANNEL, 1);
    ASSERT_OK(ctx, calib_observe(ctx, q, x, 3, s3));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    for (int c = 0; c < 3; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++) {
                const float v = x[(i * 3 + c) * 4 + k];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        assert_qparams(ctx, q, c, lo, hi);
    }
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

static void moving_average_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float b1[2] = {-1, 1}, b2[2] = {-3, 5}, b3[2] = {0, 0.5f};
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    double m;
    ASSERT_OK(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, &m));
    assert_true(m == 0.01); /* PyTorch's averaging_constant */
    calib_observe_1d(ctx, q, b1, 2);
    calib_observe_1d(ctx, q, b2, 2);
    calib_observe_1d(ctx, q, b3, 2);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    /* first batch [-1, 1]; then min += 0.01 (batch_min - min), in float32:
     * -1 + 0.01 * (-3 + 1) = -1.02, then -1.02 + 0.01 * (0 + 1.02) = -1.0098;
     * 1 + 0.01 * (5 - 1) = 1.04, then 1.04 + 0.01 * (0.5 - 1.04) = 1.0346 */
    const float lo1 = -1.0f + 0.01f * (-3.0f - -1.0f), hi1 = 1.0f + 0.01f * (5.0f - 1.0f);
    const float lo2 = lo1 + 0.01f * (0.0f - lo1), hi2 = hi1 + 0.01f * (0.5f - hi1);
    assert_qparams(ctx, q, 0, lo2, hi2);
    assert_float_equal(lo2, -1.0098, 1e-6);
    assert_float_equal(hi2, 1.0346, 1e-6);
    llmq_quantizer_destroy(q);

    /* momentum 0.5 keeps everything exact: [-1, 1] -> [-2, 3] -> [-1, 1.75] */
    q = calib_quantizer(ctx, LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                        LLMQ_GRANULARITY_PER_TENSOR, 0);
    ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 0.5));
    calib_observe_1d(ctx, q, b1, 2);
    calib_observe_1d(ctx, q, b2, 2);
    calib_observe_1d(ctx, q, b3, 2);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_qparams(ctx, q, 0, -1.0f, 1.75f);
    llmq_quantizer_destroy(q);

    /* per channel (rows of [2, 2]): row 0 {-1, 1} then {-3, 5}; row 1 {2, 4} then {0, 8} */
    float c1[4] = {-1, 1, 2, 4}, c2[4] = {-3, 5, 0, 8};
    const int64_t shape[2] = {2, 2};
    q = calib_quantizer(ctx, LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                        LLMQ_GRANULARITY_PER_CHANNEL, 0);
    ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 0.5));
    ASSERT_OK(ctx, calib_observe(ctx, q, c1, 2, shape));
    ASSERT_OK(ctx, calib_observe(ctx, q, c2, 2, shape));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_qparams(ctx, q, 0, -2.0f, 3.0f);
    assert_qparams(ctx, q, 1, 1.0f, 6.0f);
    assert_true(calib_scale(q)[1] == 6.0f / 127.5f); /* the range is widened to include 0 */
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Percentile q of |x| from a quantizer over the given batches (1-D each). */
static llmq_quantizer *percentile_run(llmq_context *ctx, llmq_symmetry sym, double pct, float *data,
                                      int64_t batches, int64_t n)
{
    llmq_quantizer *q =
        calib_quantizer(ctx, LLMQ_OBSERVER_PERCENTILE,
                        sym == LLMQ_SYMMETRY_ASYMMETRIC ? LLMQ_DTYPE_U8 : LLMQ_DTYPE_S8, sym,
                        LLMQ_GRANULARITY_PER_TENSOR, 0);
    ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_PERCENTILE, pct));
    for (int64_t b = 0; b < batches; b++)
        calib_observe_1d(ctx, q, data + b * n, n);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    return q;
}

static void percentile_known_answers(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)(i + 1); /* 1..1000 */
    /* 99th percentile of |x|: 10 values clipped, the 990th smallest is 990; the histogram
     * spans [0, 1000] in 2048 bins, so the answer is within 1000 / 2048 of it */
    llmq_quantizer *q = percentile_run(ctx, LLMQ_SYMMETRY_SYMMETRIC, 99.0, x, 1, 1000);
    const double w = 1000.0 / 2048.0;
    assert_true(fabs(calib_range(q)[1] - 990.0) <= w);
    assert_true(calib_range(q)[0] == 1.0f); /* never below the smallest value seen */
    llmq_quantizer_destroy(q);
    /* p = 100 is the maximum itself */
    q = percentile_run(ctx, LLMQ_SYMMETRY_SYMMETRIC, 100.0, x, 1, 1000);
    assert_true(calib_range(q)[1] == 1000.0f);
    llmq_quantizer_destroy(q);
    /* the same data over 10 batches of rising values: the histogram doubles its range from
     * [0, 100] to [0, 1600], so the bound is one final bin, 1600 / 2048 */
    q = percentile_run(ctx, LLMQ_SYMMETRY_SYMMETRIC, 99.0, x, 10, 100);
    assert_true(fabs(calib_range(q)[1] - 990.0) <= 1600.0 / 2048.0);
    assert_true(1600.0 / 2048.0 <= 2.0 * 1000.0 / 2048.0); /* the documented bound */
    llmq_quantizer_destroy(q);

    /* asymmetric: both tails of -500..499; 10 values clipped on each side:
     * the 11th smallest is -490, the 990th is 489 */
    for (int i = 0; i < 1000; i++)
        x[i] = (float)(i - 500);
    q = percentile_run(ctx, LLMQ_SYMMETRY_ASYMMETRIC, 99.0, x, 1, 1000);
    const double w2 = 999.0 / 2048.0;
    assert_true(fabs(calib_range(q)[0] - -490.0) <= w2);
    assert_true(fabs(calib_range(q)[1] - 489.0) <= w2);
    llmq_quantizer_destroy(q);

    /* a heavy tail: 99.99% of |x| ignores the 10 huge values among 100000; the answer is
     * within one bin (at most 2 max|x| / 2048) of the 99990th smallest |x| */
    float *big = malloc(100000 * sizeof *big), *mag = malloc(100000 * sizeof *mag);
    test_rng rng = {5};
    for (int i = 0; i < 100000; i++) {
        big[i] = test_rng_range(&rng, -1.0f, 1.0f) * (i % 10000 == 7 ? 1000.0f : 1.0f);
        mag[i] = fabsf(big[i]);
    }
    qsort(mag, 100000, sizeof *mag, cmp_float);
    q = percentile_run(ctx, LLMQ_SYMMETRY_SYMMETRIC, 99.99, big, 4, 25000);
    assert_true(fabs(calib_range(q)[1] - mag[99989]) <= 2.0 * mag[99999] / 2048.0);
    assert_true(calib_range(q)[1] < 2.0f);
    llmq_quantizer_destroy(q);
    free(big);
    free(mag);
    llmq_context_destroy(ctx);
}

/* KL(P || Q) of candidate i, straight from the published description. */
static double kl_reference(const double *h, int64_t bins, int64_t i, int64_t levels)
{
    double *p = calloc((size_t)i, sizeof *p), *qd = calloc((size_t)i, sizeof *qd);
    for (int64_t j = 0; j < i; j++)
        p[j] = h[j];
    for (int64_t j = i; j < bins; j++)
        p[i - 1] += h[j]; /* outliers folded into the last bin */
    for (int64_t g = 0; g < levels; g++) {
        const int64_t b0 = g * i / levels, b1 = (g + 1) * i / levels;
        double sum = 0.0, nz = 0.0;
        for (int64_t j = b0; j < b1; j++) {
            sum += h[j]; /* the quantized distribution merges the bins themselves */
            nz += p[j] > 0.0;
        }
        if (sum == 0.0 && nz > 0.0)
            sum = 1e-4 * nz; /* the smoothing epsilon for a run of folded outliers only */
        for (int64_t j = b0; j < b1; j++)
            qd[j] = p[j] > 0.0 ? sum / nz : 0.0;
    }
    double sp = 0.0, sq = 0.0, kl = 0.0;
    for (int64_t j = 0; j < i; j++) {
        sp += p[j];
        sq += qd[j];
    }
    for (int64_t j = 0; j < i; j++)
        if (p[j] > 0.0) kl += p[j] / sp * log((p[j] / sp) / (qd[j] / sq));
    free(p);
    free(qd);
    return kl;
}

static void entropy_search_matches_definition(void **state)
{
    (void)state;
    const int64_t bins = 512;
    double h[512], kl[512], work[3 * 513];
    test_rng rng = {11};
    const int64_t levels_list[2] = {8, 128};
    for (int trial = 0; trial < 6; trial++) {
        for (int64_t j = 0; j < bins; j++) {
            const double u = test_rng_uniform(&rng);
            /* decaying counts with gaps: zero bins inside runs and in the tail */
            h[j] = u < 0.3 ? 0.0 : floor(1000.0 * exp(-(double)j / 60.0) * u) + (j < 40);
        }
        const int64_t levels = levels_list[trial % 2];
        const int64_t got = llmq_entropy_search(h, bins, levels, work, kl);
        int64_t want = -1;
        double best = INFINITY;
        for (int64_t i = levels; i < bins; i++) {
            const double ref = kl_reference(h, bins, i, levels);
            assert_true(fabs(kl[i] - ref) <= 1e-9 * (1.0 + ref));
            if (ref < best - 1e-12) {
                best = ref;
                want = i;
            }
        }
        assert_int_equal(got, want);
    }
}

static void entropy_known_answers(void **state)
{
    (void)state;
    /* all the mass in the first 128 bins: 128 single-bin levels reproduce it, KL = 0 there */
    const int64_t bins = 512;
    double h[512] = {0}, work[3 * 513], kl[512];
    for (int j = 0; j < 128; j++)
        h[j] = 1.0 + (double)((j * 37) % 11);
    assert_int_equal(llmq_entropy_search(h, bins, 128, work, kl), 128);
    assert_true(kl[128] == 0.0);

    /* one value per bin over the whole range (uniform |x|): every clipping folds mass into
     * the last kept bin, so the least divergence is the widest candidate, 2047 of 2048 bins,
     * and the threshold (2047 + 1/2) bins = 2047.5 / 2048 of the range */
    llmq_context *ctx = test_context();
    float x[2048];
    const float a = 3.0f;
    for (int k = 0; k < 2047; k++)
        x[k] = ((float)k + 0.5f) * (a / 2048.0f);
    x[2047] = a;
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_ENTROPY, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, q, x, 2048);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_true(calib_range(q)[1] == 2047.5f * (3.0f / 2048.0f));
    assert_true(calib_range(q)[0] == x[0]); /* the range never reaches past the data */
    assert_true(calib_scale(q)[0] == calib_range(q)[1] / 127.5f);
    llmq_quantizer_destroy(q);

    /* Gaussian with rare huge outliers (up to 69): the threshold clips them; at 8 bits it
     * cannot go below 128 of the 2048 bins (here 7.8), at 4 bits below 8 */
    float *g = malloc(200000 * sizeof *g);
    test_rng rng = {3};
    for (int i = 0; i < 200000; i++) {
        const double u = 1.0 - test_rng_uniform(&rng), v = test_rng_uniform(&rng);
        g[i] = (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
        if (i % 20000 == 0) g[i] = 60.0f + (float)(i / 20000);
    }
    const llmq_dtype dts[2] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_S4};
    for (int d = 0; d < 2; d++) {
        q = calib_quantizer(ctx, LLMQ_OBSERVER_ENTROPY, dts[d], LLMQ_SYMMETRY_SYMMETRIC,
                            LLMQ_GRANULARITY_PER_TENSOR, 0);
        for (int b = 0; b < 4; b++)
            calib_observe_1d(ctx, q, g + b * 50000, 50000);
        ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
        const float t = calib_range(q)[1];
        assert_true(t > (d == 0 ? 3.0f : 1.5f));
        assert_true(t < (d == 0 ? 8.0f : 5.0f));
        llmq_quantizer_destroy(q);
    }
    free(g);
    llmq_context_destroy(ctx);
}

/* PyTorch's closed-form L2 error against a numerical integral of its definition: values
 * uniform inside each source bin, quantized to the centre of their destination bin (dst_nbins
 * bins of equal width starting at start_bin, clamped at both ends). */
static void l2_error_matches_integral(void **state)
{
    (void)state;
    const int64_t bins = 64, dst = 8;
    double h[64];
    test_rng rng = {2};
    for (int j = 0; j < 64; j++)
        h[j] = floor(test_rng_uniform(&rng) * 50.0);
    const float min = -1.5f, max = 2.5f;
    const int64_t starts[3] = {0, 5, 20}, ends[3] = {63, 50, 30};
    for (int t = 0; t < 3; t++) {
        const double got = llmq_l2_error(h, bins, min, max, dst, starts[t], ends[t]);
        const double bw = ((double)max - min) / (double)bins;
        const double dw = bw * (double)(ends[t] - starts[t] + 1) / (double)dst;
        double want = 0.0;
        const int steps = 2000;
        for (int64_t k = 0; k < bins; k++) {
            const double begin = (double)(k - starts[t]) * bw;
            for (int s = 0; s < steps; s++) {
                const double x = begin + bw * ((double)s + 0.5) / steps;
                double idx = floor(x / dw);
                idx = idx < 0 ? 0 : idx > dst - 1 ? (double)(dst - 1) : idx;
                const double e = x - (idx + 0.5) * dw;
                want += h[k] / bw * e * e * (bw / steps);
            }
        }
        assert_true(fabs(got - want) <= 1e-6 * want);
    }
}

static llmq_quantizer *run_l2(llmq_context *ctx, llmq_dtype dtype, float *x, int64_t n)
{
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_HISTOGRAM_L2, dtype,
                                        LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, q, x, n);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    return q;
}

static void histogram_l2_behaviour(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static float x[20001];
    /* evenly spread values: trimming soon raises the error, the range stays near [min, max]
     * (whole bins of the 2048 are trimmed: the range ends on bin edges) */
    for (int i = 0; i < 20000; i++)
        x[i] = -1.0f + 2.0f * ((float)i + 0.5f) / 20000.0f;
    llmq_quantizer *q = run_l2(ctx, LLMQ_DTYPE_U8, x, 20000);
    assert_true(calib_range(q)[0] >= x[0] && calib_range(q)[0] < x[0] + 0.01f);
    assert_true(calib_range(q)[1] <= x[19999] && calib_range(q)[1] > x[19999] - 0.01f);
    llmq_quantizer_destroy(q);
    /* one far outlier: clipping it would cost more squared error than the coarser steps, so
     * PyTorch's search keeps (almost all of) it */
    x[20000] = 1000.0f;
    q = run_l2(ctx, LLMQ_DTYPE_U8, x, 20001);
    assert_true(calib_range(q)[1] > 990.0f);
    llmq_quantizer_destroy(q);
    /* Laplace at 4 bits: the greedy search trims the sparser tail (here the upper one) */
    test_rng rng = {4};
    for (int i = 0; i < 20000; i++) {
        const double u = test_rng_uniform(&rng) - 0.5;
        x[i] = (float)(-copysign(1.0, u) * log(1.0 - 2.0 * fabs(u)));
    }
    float mn = x[0], mx = x[0];
    for (int i = 0; i < 20000; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    q = run_l2(ctx, LLMQ_DTYPE_U4, x, 20000);
    assert_true(calib_range(q)[0] >= mn && calib_range(q)[1] < 0.9f * mx);
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

/* Mean squared error of quantizing x with a quantizer's parameters. */
static double data_mse(llmq_context *ctx, const llmq_quantizer *q, float *x, int64_t n)
{
    llmq_tensor *src = test_wrap_f32(ctx, x, 1, &n), *codes = NULL, *back = NULL;
    ASSERT_OK(ctx,
              llmq_tensor_create(ctx, llmq_scheme_dtype(llmq_quantizer_scheme(q)), 1, &n, &codes));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, &n, &back));
    ASSERT_OK(ctx, llmq_quantizer_apply(ctx, q, codes));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, codes));
    ASSERT_OK(ctx, llmq_dequantize(ctx, codes, back));
    const float *y = llmq_tensor_data(back);
    double e = 0.0;
    for (int64_t i = 0; i < n; i++)
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(codes);
    llmq_tensor_destroy(back);
    return e / (double)n;
}

static void mse_search_behaviour(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static float x[40000];
    /* evenly spread values at 8 bits: clipping only hurts, r = 1 */
    for (int i = 0; i < 4096; i++)
        x[i] = -1.0f + 2.0f * (float)i / 4095.0f;
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_MSE, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, q, x, 4096);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    assert_true(calib_range(q)[0] == -1.0f && calib_range(q)[1] == 1.0f);
    llmq_quantizer_destroy(q);
    /* Laplace at 4 bits: clipping wins, and the chosen range beats min/max on the data */
    test_rng rng = {9};
    for (int i = 0; i < 40000; i++) {
        const double u = test_rng_uniform(&rng) - 0.5;
        x[i] = (float)(-copysign(1.0, u) * log(1.0 - 2.0 * fabs(u)));
    }
    llmq_quantizer *mse = calib_quantizer(ctx, LLMQ_OBSERVER_MSE, LLMQ_DTYPE_S4,
                                          LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    llmq_quantizer *mm = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S4,
                                         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    calib_observe_1d(ctx, mse, x, 40000);
    calib_observe_1d(ctx, mm, x, 40000);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, mse));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, mm));
    assert_true(calib_range(mse)[1] < 0.6f * calib_range(mm)[1]);
    assert_true(data_mse(ctx, mse, x, 40000) < 0.5 * data_mse(ctx, mm, x, 40000));
    llmq_quantizer_destroy(mse);
    llmq_quantizer_destroy(mm);
    llmq_context_destroy(ctx);
}

/* Growing ranges rebin the histograms without losing mass: exactly for the doubling
 * histograms, to rounding for PyTorch's upsampling. */
static void rebinning_keeps_mass(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const llmq_observer obs[4] = {LLMQ_OBSERVER_PERCENTILE, LLMQ_OBSERVER_ENTROPY,
                                  LLMQ_OBSERVER_MSE, LLMQ_OBSERVER_HISTOGRAM_L2};
    float x[300];
    double row[2048];
    for (int o = 0; o < 4; o++) {
        llmq_quantizer *q = calib_quantizer(ctx, obs[o], LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                            LLMQ_GRANULARITY_PER_TENSOR, 0);
        test_rng rng = {(uint64_t)o};
        int64_t n = 0;
        for (int b = 0; b < 400; b++) {
            /* ranges that move and widen on both sides, one-value batches, and infinities */
            const float c = (float)(b % 7) - 3.0f + (b > 200 ? 0.37f * (float)b : 0.0f);
            const float w = 0.01f * (float)(1 << (b % 12)) * (b % 3 == 1 ? 3.1f : 1.0f);
            for (int i = 0; i < 300; i++)
                x[i] = b % 9 == 4 ? c : c + w * test_rng_range(&rng, -1.0f, 1.0f);
            x[17] = b % 5 == 0 ? INFINITY : x[17];
            n += 300 - (b % 5 == 0);
            calib_observe_1d(ctx, q, x, 300);
            const llmq_hist *h = &q->hist;
            const double bw = ((double)h->hi[0] - h->lo[0]) / 2048.0;
            const double span = (double)h->vmax[0] - h->vmin[0];
            if (span > 0.0 && h->growth == LLMQ_HIST_DOUBLING) /* the documented bounds */
                assert_true(bw <= (h->absolute ? 2.0 : 4.0) * span / (2048.0 - 2.0));
        }
        llmq_hist_row(&q->hist, 0, row);
        double total = 0.0;
        for (int j = 0; j < 2048; j++)
            total += row[j];
        if (obs[o] == LLMQ_OBSERVER_HISTOGRAM_L2)
            assert_true(fabs(total - (double)n) <= 1e-9 * (double)n);
        else
            assert_true(total == (double)n);
        assert_true(q->hist.lo[0] <= q->hist.vmin[0] || q->hist.absolute);
        assert_true(q->hist.hi[0] >= q->hist.vmax[0]);
        ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
        llmq_quantizer_destroy(q);
    }
    llmq_context_destroy(ctx);
}

/* f16 and bf16 batches observe the values they hold; results are deterministic. */
static void half_inputs_and_determinism(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t n = 512;
    float x[512];
    uint16_t hbits[512];
    test_rng rng = {21};
    for (int i = 0; i < 512; i++)
        x[i] = test_rng_range(&rng, -3.0f, 5.0f);
    for (llmq_observer o = LLMQ_OBSERVER_MINMAX; o <= LLMQ_OBSERVER_MSE; o++) {
        /* bf16: truncate to bf16-representable values so that both sides see the same data */
        for (int i = 0; i < 512; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            u &= 0xffff0000u;
            memcpy(&x[i], &u, 4);
            hbits[i] = (uint16_t)(u >> 16);
        }
        llmq_quantizer *a = calib_quantizer(ctx, o, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                            LLMQ_GRANULARITY_PER_TENSOR, 0);
        llmq_quantizer *b = calib_quantizer(ctx, o, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                            LLMQ_GRANULARITY_PER_TENSOR, 0);
        llmq_tensor *t = NULL;
        ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_BF16, 1, &n, hbits, 0, &t));
        calib_observe_1d(ctx, a, x, n);
        ASSERT_OK(ctx, llmq_quantizer_observe(ctx, b, t));
        ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, a));
        ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, b));
        assert_memory_equal(calib_range(a), calib_range(b), 2 * sizeof(float));
        assert_memory_equal(calib_scale(a), calib_scale(b), sizeof(float));
        llmq_tensor_destroy(t);
        llmq_quantizer_destroy(a);
        llmq_quantizer_destroy(b);
    }
    llmq_context_destroy(ctx);
}

/* 10,000 batches through every observer, per tensor and per channel, with ranges that grow
 * now and then: after the first batch, neither the live nor the peak bytes move. */
static void memory_bounded_over_10000_batches(void **state)
{
    (void)state;
    test_allocator bc = {.fail_at = -1};
    llmq_context_options o;
    ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
    o.allocator = test_allocator_of(&bc);
    llmq_context *ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
    float data[64];
    const int64_t shape[2] = {4, 16};
    llmq_tensor *x = test_wrap_f32(ctx, data, 2, shape);
    for (llmq_observer obs = LLMQ_OBSERVER_MINMAX; obs <= LLMQ_OBSERVER_MSE; obs++) {
        for (int per_channel = 0; per_channel < 2; per_channel++) {
            llmq_quantizer *q = calib_quantizer(
                ctx, obs, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                per_channel ? LLMQ_GRANULARITY_PER_CHANNEL : LLMQ_GRANULARITY_PER_TENSOR, 1);
            if (obs >= LLMQ_OBSERVER_PERCENTILE && per_channel)
                ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 512));
            test_rng rng = {(uint64_t)(obs * 2 + per_channel)};
            size_t live = 0, peak = 0;
            for (int b = 0; b < 10000; b++) {
                const float gain = 1.0f + (float)(b / 100) * 0.05f;
                for (int i = 0; i < 64; i++)
                    data[i] = gain * test_rng_range(&rng, -1.0f, 1.0f);
                ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, x));
                if (b == 0) {
                    live = bc.live_bytes;
                    peak = bc.peak_bytes;
                }
            }
            assert_int_equal(bc.live_bytes, live);
            assert_int_equal(bc.peak_bytes, peak);
            ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
            llmq_quantizer_destroy(q);
        }
    }
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
    assert_int_equal(bc.live_bytes, 0);
    assert_int_equal(bc.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minmax_per_tensor_golden),
        cmocka_unit_test(minmax_per_channel_golden),
        cmocka_unit_test(moving_average_golden),
        cmocka_unit_test(percentile_known_answers),
        cmocka_unit_test(entropy_search_matches_definition),
        cmocka_unit_test(entropy_known_answers),
        cmocka_unit_test(l2_error_matches_integral),
        cmocka_unit_test(histogram_l2_behaviour),
        cmocka_unit_test(mse_search_behaviour),
        cmocka_unit_test(rebinning_keeps_mass),
        cmocka_unit_test(half_inputs_and_determinism),
        cmocka_unit_test(memory_bounded_over_10000_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
