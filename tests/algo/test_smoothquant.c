/* test_smoothquant.c - SmoothQuant: the product is unchanged in floating point (grouped
 * matrices too), the factors follow the formula and the degenerate-channel rule, injected
 * outlier channels lose less W8A8 SQNR, the alpha search returns the grid's argmin, and misuse.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

static float *random_matrix(test_rng *rng, int64_t rows, int64_t cols, float amp)
{
    float *m = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(m);
    for (int64_t i = 0; i < rows * cols; i++)
        m[i] = test_rng_range(rng, -amp, amp);
    return m;
}

static void column_absmax(const float *x, int64_t rows, int64_t cols, float *out)
{
    for (int64_t j = 0; j < cols; j++) {
        out[j] = 0.0f;
        for (int64_t r = 0; r < rows; r++)
            out[j] = fabsf(x[r * cols + j]) > out[j] ? fabsf(x[r * cols + j]) : out[j];
    }
}

/* X W^T and (X / s)(W s)^T agree to float rounding for every matrix of a group of odd shapes,
 * all matrices scaled by the same s, s following the formula in double. */
static void product_unchanged_in_float(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {7};
    enum { T = 17, K = 33, G = 3 };
    const int64_t rows[G] = {5, 3, 1};
    float *x = random_matrix(&rng, T, K, 2.0f);
    for (int64_t r = 0; r < T; r++) /* two outlier channels */
        x[r * K + 4] *= 40.0f, x[r * K + 30] *= 25.0f;
    float *w[G], *orig[G];
    llmq_tensor *wt[G];
    for (int g = 0; g < G; g++) {
        w[g] = random_matrix(&rng, rows[g], K, 0.5f);
        orig[g] = malloc(sizeof(float) * (size_t)(rows[g] * K));
        memcpy(orig[g], w[g], sizeof(float) * (size_t)(rows[g] * K));
        wt[g] = test_wrap_f32(ctx, w[g], 2, (const int64_t[]){rows[g], K});
    }
    float amax[K], s[K], wmax[K] = {0};
    column_absmax(x, T, K, amax);
    for (int g = 0; g < G; g++)
        for (int64_t i = 0; i < rows[g] * K; i++)
            wmax[i % K] = fabsf(orig[g][i]) > wmax[i % K] ? fabsf(orig[g][i]) : wmax[i % K];
    llmq_tensor *at = test_wrap_f32(ctx, amax, 1, (const int64_t[]){K});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){K});
    ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, G, wt, st));
    for (int64_t j = 0; j < K; j++) {
        const float want = (float)(pow(amax[j], 0.5) / pow(wmax[j], 0.5));
        assert_true(s[j] == want);
    }
    for (int g = 0; g < G; g++)
        for (int64_t n = 0; n < rows[g]; n++) {
            for (int64_t j = 0; j < K; j++) /* the weights are scaled by the shared s */
                assert_true(w[g][n * K + j] == orig[g][n * K + j] * s[j]);
            for (int64_t r = 0; r < T; r++) {
                double y = 0.0, ys = 0.0, mag = 0.0;
                for (int64_t j = 0; j < K; j++) {
                    y += (double)x[r * K + j] * orig[g][n * K + j];
                    ys += (double)(x[r * K + j] / s[j]) * w[g][n * K + j];
                    mag += fabs((double)x[r * K + j] * orig[g][n * K + j]);
                }
                assert_true(fabs(y - ys) <= 4 * FLT_EPSILON * mag);
            }
        }
    /* the activation maxima from a per-channel min/max calibration quantizer */
    llmq_scheme *sc = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 1, 0);
    llmq_quantizer *q = NULL;
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, sc, LLMQ_OBSERVER_MINMAX, &q));
    llmq_tensor *xt = test_wrap_f32(ctx, x, 2, (const int64_t[]){T, K});
    float got[K];
    llmq_tensor *gt = test_wrap_f32(ctx, got, 1, (const int64_t[]){K});
    ASSERT_FAILS(ctx, llmq_smoothquant_channel_absmax(ctx, q, gt), LLMQ_ERR_STATE,
                 "not finalized");
    ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, xt));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    ASSERT_OK(ctx, llmq_smoothquant_channel_absmax(ctx, q, gt));
    assert_memory_equal(got, amax, sizeof amax);
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(sc);
    for (int g = 0; g < G; g++) {
        llmq_tensor_destroy(wt[g]);
        free(w[g]);
        free(orig[g]);
    }
    TEST_DESTROY(at, st, xt, gt);
    free(x);
    llmq_context_destroy(ctx);
}

/* alpha 0 and 1, and s = 1 where a maximum is 0 (header rule). */
static void factors_at_the_ends_and_degenerate_channels(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    /* W [2, 4]: column maxima 2, 0.5, 0, 4 */
    float w[8] = {2, -0.5f, 0, 1, -1, 0.25f, 0, -4};
    float amax[4] = {8, 2, 3, 0}, s[4];
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, (const int64_t[]){2, 4});
    llmq_tensor *at = test_wrap_f32(ctx, amax, 1, (const int64_t[]){4});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){4});
    ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, 1.0f, 1, &wt, st)); /* s = max|X| */
    assert_true(s[0] == 8.0f && s[1] == 2.0f && s[2] == 1.0f && s[3] == 1.0f);
    assert_true(w[0] == 16.0f && w[1] == -1.0f && w[7] == -4.0f);
    float w2[8] = {2, -0.5f, 0, 1, -1, 0.25f, 0, -4};
    llmq_tensor *wt2 = test_wrap_f32(ctx, w2, 2, (const int64_t[]){2, 4});
    ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, 0.0f, 1, &wt2, st)); /* s = 1 / max|W| */
    assert_true(s[0] == 0.5f && s[1] == 2.0f && s[2] == 1.0f && s[3] == 1.0f);
    assert_true(w2[0] == 1.0f && w2[5] == 0.5f);
    /* the divisor may be the act_absmax tensor itself */
    float w3[8] = {2, -0.5f, 0, 1, -1, 0.25f, 0, -4};
    llmq_tensor *wt3 = test_wrap_f32(ctx, w3, 2, (const int64_t[]){2, 4});
    ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt3, at));
    assert_true(amax[0] == 2.0f && amax[1] == 2.0f && amax[2] == 1.0f && amax[3] == 1.0f);
    TEST_DESTROY(wt, at, st, wt2, wt3);
    llmq_context_destroy(ctx);
}

/* sum ref^2 / sum (ref - Q(x) Q(w)^T)^2 in dB, per-token s8 activations, per-channel s8
 * weights. */
static double w8a8_sqnr(llmq_context *ctx, const float *x, const float *w, int64_t t, int64_t k,
                        int64_t n, const double *ref)
{
    llmq_scheme *as = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_scheme *ws = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    const int64_t xs[2] = {t, k}, wsh[2] = {n, k}, ys[2] = {t, n};
    llmq_tensor *xt = test_wrap_f32(ctx, (float *)x, 2, xs);
    llmq_tensor *wt = test_wrap_f32(ctx, (float *)w, 2, wsh);
    llmq_tensor *xq = NULL, *wq = NULL, *y = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, as, 2, xs, &xq));
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, ws, 2, wsh, &wq));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, ys, &y));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, xt, xq));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, wt, wq));
    ASSERT_OK(ctx, llmq_matmul(ctx, xq, wq, NULL, y));
    const float *yv = llmq_tensor_data(y);
    double sig = 0.0, err = 0.0;
    for (int64_t i = 0; i < t * n; i++) {
        sig += ref[i] * ref[i];
        err += (ref[i] - yv[i]) * (ref[i] - yv[i]);
    }
    TEST_DESTROY(xt, wt, xq, wq, y);
    llmq_scheme_destroy(as);
    llmq_scheme_destroy(ws);
    return 10.0 * log10(sig / err);
}

/* A few activation channels 50x larger: SmoothQuant (alpha 0.5) gains >= 3 dB of W8A8 SQNR
 * over plain per-token x per-channel quantization. */
static void outlier_channels_gain_sqnr(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {2024};
    enum { T = 64, K = 128, N = 96 };
    float *x = random_matrix(&rng, T, K, 1.0f), *w = random_matrix(&rng, N, K, 0.1f);
    static const int outliers[] = {3, 40, 77, 100};
    for (int64_t r = 0; r < T; r++)
        for (size_t i = 0; i < sizeof outliers / sizeof outliers[0]; i++)
            x[r * K + outliers[i]] *= 50.0f;
    double *ref = malloc(sizeof(double) * T * N);
    for (int64_t r = 0; r < T; r++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0.0;
            for (int64_t j = 0; j < K; j++)
                acc += (double)x[r * K + j] * w[n * K + j];
            ref[r * N + n] = acc;
        }
    const double plain = w8a8_sqnr(ctx, x, w, T, K, N, ref);
    float amax[K], s[K];
    column_absmax(x, T, K, amax);
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, (const int64_t[]){N, K});
    llmq_tensor *at = test_wrap_f32(ctx, amax, 1, (const int64_t[]){K});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){K});
    ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt, st));
    for (int64_t r = 0; r < T; r++)
        for (int64_t j = 0; j < K; j++)
            x[r * K + j] /= s[j];
    const double smooth = w8a8_sqnr(ctx, x, w, T, K, N, ref);
    print_message("W8A8 SQNR: plain %.2f dB, SmoothQuant %.2f dB\n", plain, smooth);
    assert_true(smooth >= plain + 3.0);
    TEST_DESTROY(wt, at, st);
    free(ref);
    free(x);
    free(w);
    llmq_context_destroy(ctx);
}

/* The search's errors equal a brute force over the grid made of public calls, and it returns
 * their argmin. */
static void search_returns_grid_argmin(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {99};
    enum { T = 16, K = 24, GRID = 10 };
    const int64_t rows[2] = {7, 3};
    float *x = random_matrix(&rng, T, K, 1.0f);
    for (int64_t r = 0; r < T; r++)
        x[r * K + 5] *= 30.0f, x[r * K + 17] *= 12.0f;
    float *w[2] = {random_matrix(&rng, rows[0], K, 0.2f), random_matrix(&rng, rows[1], K, 0.2f)};
    w[1][2] *= 20.0f; /* a weight outlier pulls the optimum away from alpha 1 */
    const llmq_tensor *wt[2] = {test_wrap_f32(ctx, w[0], 2, (const int64_t[]){rows[0], K}),
                                test_wrap_f32(ctx, w[1], 2, (const int64_t[]){rows[1], K})};
    llmq_tensor *xt = test_wrap_f32(ctx, x, 2, (const int64_t[]){T, K});
    llmq_scheme *as = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_scheme *ws = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    float alpha = -1.0f;
    double best = -1.0, errors[GRID + 1];
    ASSERT_OK(ctx, llmq_smoothquant_search(ctx, xt, 2, wt, ws, as, GRID, &alpha, &best, errors));
    /* brute force: smooth copies, quantize, multiply */
    float amax[K], s[K], xs[T * K];
    column_absmax(x, T, K, amax);
    llmq_tensor *at = test_wrap_f32(ctx, amax, 1, (const int64_t[]){K});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){K});
    int argmin = 0;
    double brute[GRID + 1];
    for (int i = 0; i <= GRID; i++) {
        float *c[2];
        llmq_tensor *ct[2];
        for (int g = 0; g < 2; g++) {
            c[g] = malloc(sizeof(float) * (size_t)(rows[g] * K));
            memcpy(c[g], w[g], sizeof(float) * (size_t)(rows[g] * K));
            ct[g] = test_wrap_f32(ctx, c[g], 2, (const int64_t[]){rows[g], K});
        }
        ASSERT_OK(ctx, llmq_smoothquant_apply(ctx, at, (float)((double)i / GRID), 2, ct, st));
        for (int64_t e = 0; e < T * K; e++)
            xs[e] = x[e] / s[e % K];
        brute[i] = 0.0;
        for (int g = 0; g < 2; g++) {
            double *ref = malloc(sizeof(double) * (size_t)(T * rows[g]));
            for (int64_t r = 0; r < T; r++)
                for (int64_t n = 0; n < rows[g]; n++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < K; j++)
                        acc += (double)x[r * K + j] * (double)w[g][n * K + j];
                    ref[r * rows[g] + n] = acc;
                }
            const double sqnr = w8a8_sqnr(ctx, xs, c[g], T, K, rows[g], ref);
            double sig = 0.0;
            for (int64_t e = 0; e < T * rows[g]; e++)
                sig += ref[e] * ref[e];
            brute[i] += sig / pow(10.0, sqnr / 10.0);
            free(ref);
            llmq_tensor_destroy(ct[g]);
            free(c[g]);
        }
        assert_true(fabs(brute[i] - errors[i]) <= 1e-9 * errors[i]);
        argmin = brute[i] < brute[argmin] ? i : argmin;
    }
    assert_true(alpha == (float)((double)argmin / GRID));
    assert_true(best == errors[argmin]);
    assert_true(argmin > 0 && argmin < GRID); /* an interior optimum: the search matters */
    /* weight-only products (float activations) search too */
    ASSERT_OK(ctx, llmq_smoothquant_search(ctx, xt, 1, wt, ws, NULL, 4, &alpha, NULL, NULL));
    assert_true(alpha >= 0.0f && alpha <= 1.0f);
    TEST_DESTROY((llmq_tensor *)wt[0], (llmq_tensor *)wt[1], xt, at, st);
    llmq_scheme_destroy(as);
    llmq_scheme_destroy(ws);
    free(w[0]);
    free(w[1]);
    free(x);
    llmq_context_destroy(ctx);
}

static void misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float w[6] = {1, 2, 3, 4, 5, 6}, w5[5] = {0}, amax[3] = {1, 1, 1}, s[3], s2[2];
    int8_t codes[6];
    const float keep[6] = {1, 2, 3, 4, 5, 6};
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, (const int64_t[]){2, 3});
    llmq_tensor *w5t = test_wrap_f32(ctx, w5, 2, (const int64_t[]){1, 5});
    llmq_tensor *at = test_wrap_f32(ctx, amax, 1, (const int64_t[]){3});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){3});
    llmq_tensor *s2t = test_wrap_f32(ctx, s2, 1, (const int64_t[]){2});
    llmq_tensor *s8t = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, (const int64_t[]){2, 3}, codes, 0,
                                    &s8t));
    llmq_tensor *pair[2] = {wt, wt};
    assert_int_equal(llmq_smoothquant_apply(NULL, at, 0.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, NULL, 0.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "llmq_smoothquant_apply: act_absmax=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt, NULL), LLMQ_ERR_INVALID_ARG,
                 "divisor=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt, s2t), LLMQ_ERR_INVALID_ARG,
                 "divisor=[2]: must have K=3 values");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 1.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "alpha=1.5: must be in [0, 1]");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, NAN, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "alpha=nan");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 0, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "n_weights=0: must be in 1..64");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 65, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "n_weights=65");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, NULL, st), LLMQ_ERR_INVALID_ARG,
                 "weights=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &w5t, st), LLMQ_ERR_INVALID_ARG,
                 "weights[0]=[1, 5]: K differs from 3");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &s8t, st), LLMQ_ERR_INVALID_ARG,
                 "weights[0]=s8 [2, 3]: must be a 2-D f32 tensor");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 2, pair, st), LLMQ_ERR_INVALID_ARG,
                 "weights[1]: overlaps weights[0]");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, wt, 0.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "act_absmax=f32 [2, 3]: must be a 1-D f32 tensor");
    amax[1] = -1.0f;
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "act_absmax[1]=-1: must be finite and >= 0");
    amax[1] = INFINITY;
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &wt, st), LLMQ_ERR_INVALID_ARG,
                 "act_absmax[1]=inf");
    amax[1] = 1.0f;
    w[4] = NAN; /* refused before anything changes */
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 1.0f, 1, &wt, st), LLMQ_ERR_NON_FINITE,
                 "weights[0][1, 1]=nan: must be finite");
    w[4] = 5.0f;
    assert_memory_equal(w, keep, sizeof keep);
    /* search */
    llmq_scheme *ws = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    llmq_scheme *bad = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_scheme *pc = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 1, 0);
    const llmq_tensor *cw = wt;
    float alpha = 7.0f;
    double e = 7.0;
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, NULL, 0, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "llmq_smoothquant_search: grid=0: must be in 1..1000");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, NULL, 1001, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "grid=1001");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, NULL, 4, NULL, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "alpha=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, NULL, 1, &cw, ws, NULL, 4, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "x=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, NULL, NULL, 4, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "weight_scheme=NULL");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, bad, 4, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "activation_scheme=s4: must be s8 or u8");
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, pc, 4, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "granularity must be per_token or per_tensor");
    const llmq_tensor *c5 = w5t;
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &c5, ws, NULL, 4, &alpha, &e, NULL),
                 LLMQ_ERR_INVALID_ARG, "weights[0]=[1, 5]: K differs from 3");
    w[0] = INFINITY;
    ASSERT_FAILS(ctx, llmq_smoothquant_search(ctx, wt, 1, &cw, ws, NULL, 4, &alpha, &e, NULL),
                 LLMQ_ERR_NON_FINITE, "x[0, 0]=inf: must be finite");
    w[0] = 1.0f;
    assert_true(alpha == 7.0f && e == 7.0); /* outputs untouched on failure */
    /* channel maxima need a per-channel quantizer */
    llmq_scheme *pt = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_quantizer *q = NULL;
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, pt, LLMQ_OBSERVER_MINMAX, &q));
    ASSERT_FAILS(ctx, llmq_smoothquant_channel_absmax(ctx, q, st), LLMQ_ERR_INVALID_ARG,
                 "q: its scheme must be per channel");
    ASSERT_FAILS(ctx, llmq_smoothquant_channel_absmax(ctx, NULL, st), LLMQ_ERR_INVALID_ARG,
                 "q=NULL");
    llmq_quantizer_destroy(q);
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, pc, LLMQ_OBSERVER_MINMAX, &q));
    ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, wt));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    ASSERT_FAILS(ctx, llmq_smoothquant_channel_absmax(ctx, q, s2t), LLMQ_ERR_INVALID_ARG,
                 "absmax=[2]: the quantizer has 3 channels");
    ASSERT_OK(ctx, llmq_smoothquant_channel_absmax(ctx, q, st));
    assert_true(s[0] == 4.0f && s[1] == 5.0f && s[2] == 6.0f);
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(ws);
    llmq_scheme_destroy(bad);
    llmq_scheme_destroy(pc);
    llmq_scheme_destroy(pt);
    TEST_DESTROY(wt, w5t, at, st, s2t, s8t);
    llmq_context_destroy(ctx);
}

/* Allocation n fails for n = 0, 1, ... until the calls succeed: each failure is
 * LLMQ_ERR_OUT_OF_MEMORY, leaves the weights and outputs as they were and leaks nothing. */
static void out_of_memory(void **state)
{
    (void)state;
    int succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        test_allocator fa = {.fail_at = n};
        llmq_context_options o;
        ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
        o.allocator = test_allocator_of(&fa);
        float x[12] = {1, -2, 30, 4, 0.5f, 6, -7, 8, 9, -10, 11, 0.25f}, amax[4] = {10, 8, 30, 4};
        float w[8] = {1, 2, 3, 4, -5, 6, -7, 8}, s[4] = {0};
        const float keep[8] = {1, 2, 3, 4, -5, 6, -7, 8};
        llmq_context *ctx = NULL;
        llmq_tensor *xt = NULL, *wt = NULL, *at = NULL, *st_ = NULL;
        llmq_scheme *ws = NULL, *as = NULL;
        float alpha = -1.0f;
        llmq_status st = llmq_context_create_with_options(&ctx, &o);
        const int64_t xs[2] = {3, 4}, wsh[2] = {2, 4}, k = 4;
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, xs, x, 0, &xt);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, wsh, w, 0, &wt);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &k, amax, 0, &at);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &k, s, 0, &st_);
        if (st == LLMQ_OK) st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &ws);
        if (st == LLMQ_OK) st = llmq_scheme_set_granularity(ws, LLMQ_GRANULARITY_PER_CHANNEL);
        if (st == LLMQ_OK) st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &as);
        if (st == LLMQ_OK) st = llmq_scheme_set_granularity(as, LLMQ_GRANULARITY_PER_TOKEN);
        if (st == LLMQ_OK) {
            const llmq_tensor *cw = wt;
            st = llmq_smoothquant_search(ctx, xt, 1, &cw, ws, as, 4, &alpha, NULL, NULL);
            if (st != LLMQ_OK)
                assert_true(alpha == -1.0f);
        }
        if (st == LLMQ_OK) {
            st = llmq_smoothquant_apply(ctx, at, alpha, 1, &wt, st_);
            if (st != LLMQ_OK)
                assert_memory_equal(w, keep, sizeof keep);
        }
        if (st == LLMQ_OK)
            succeeded = 1;
        else
            assert_int_equal(st, LLMQ_ERR_OUT_OF_MEMORY);
        llmq_scheme_destroy(ws);
        llmq_scheme_destroy(as);
        TEST_DESTROY(xt, wt, at, st_);
        llmq_context_destroy(ctx);
        assert_int_equal(fa.live, 0);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(product_unchanged_in_float),
        cmocka_unit_test(factors_at_the_ends_and_degenerate_channels),
        cmocka_unit_test(outlier_channels_gain_sqnr),
        cmocka_unit_test(search_returns_grid_argmin),
        cmocka_unit_test(misuse),
        cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
