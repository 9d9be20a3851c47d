/* test_outlier.c - llmq_matmul_outlier (LLM.int8()): the float part equals the exact product of
 * the outlier columns with the dequantized weights, the rest equals the INT8 matmul of the
 * activations with those columns zeroed; outlier counts, threshold edges, all / no outliers,
 * odd sizes, packed and sub-byte weights, and misuse. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

/* s8 per-channel weights [n, k] with codes in [-127, 127] and power-of-two scales, so that
 * every dequantized weight, and its product with a quarter-integer, is exact. */
static llmq_tensor *weights(llmq_context *ctx, test_rng *rng, int64_t n, int64_t k,
                            int8_t *codes)
{
    for (int64_t i = 0; i < n * k; i++)
        codes[i] = (int8_t)(test_rng_next(rng) % 255 - 127);
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, (const int64_t[]){n, k}, codes, 0, &t));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, t, s));
    float *scale = llmq_tensor_data(llmq_tensor_scale(t));
    for (int64_t i = 0; i < n; i++)
        scale[i] = ldexpf(1.0f, -(int)(5 + i % 3));
    llmq_scheme_destroy(s);
    return t;
}

/* The weight as llmq_dequantize() gives it (element-wise, via the public call). */
static float *dequantized(llmq_context *ctx, const llmq_tensor *b, int64_t n, int64_t k)
{
    float *w = malloc(sizeof(float) * (size_t)(n * k));
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, (const int64_t[]){n, k});
    ASSERT_OK(ctx, llmq_dequantize(ctx, b, wt));
    llmq_tensor_destroy(wt);
    return w;
}

/* The expected result: INT8 matmul of a with the flagged columns zeroed (per the activation
 * scheme), then + sum over flagged columns in ascending order, in float. */
static void expected(llmq_context *ctx, const float *a, int64_t m, int64_t k, const llmq_tensor *b,
                     int64_t n, const llmq_tensor *bias, const llmq_scheme *act,
                     const int *flag, float *out)
{
    float *z = malloc(sizeof(float) * (size_t)(m * k));
    for (int64_t i = 0; i < m * k; i++)
        z[i] = flag[i % k] ? 0.0f : a[i];
    llmq_tensor *zt = test_wrap_f32(ctx, z, 2, (const int64_t[]){m, k});
    llmq_tensor *zq = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, act, 2, (const int64_t[]){m, k}, &zq));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, zt, zq));
    llmq_tensor *ot = test_wrap_f32(ctx, out, 2, (const int64_t[]){m, n});
    ASSERT_OK(ctx, llmq_matmul(ctx, zq, b, bias, ot));
    float *w = dequantized(ctx, b, n, k);
    for (int64_t r = 0; r < m; r++)
        for (int64_t o = 0; o < n; o++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < k; j++)
                if (flag[j])
                    acc += a[r * k + j] * w[o * k + j];
            out[r * n + o] += acc;
        }
    free(w);
    free(z);
    TEST_DESTROY(zt, zq, ot);
}

/* Activations: ordinary columns uniform in [-2, 2]; outlier columns quarter-integers with one
 * entry beyond +-threshold. */
static float *activations(test_rng *rng, int64_t m, int64_t k, const int *flag, float threshold)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k));
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < k; j++)
            a[r * k + j] = flag[j] ? (float)((int)(test_rng_next(rng) % 81) - 40) / 4.0f
                                   : test_rng_range(rng, -2.0f, 2.0f);
    for (int64_t j = 0; j < k; j++)
        if (flag[j])
            a[(j % m) * k + j] = (j % 2 ? -1.0f : 1.0f) * (threshold + 0.25f * (float)(1 + j % 5));
    return a;
}

static llmq_scheme *per_token_s8(llmq_context *ctx)
{
    return test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, 0,
                       0);
}

/* Every shape in {1, 3, 17}^3, outlier columns every third column, with and without bias. */
static void matches_float_and_int8_references(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {11};
    static const int64_t sizes[] = {1, 3, 17};
    llmq_scheme *act = per_token_s8(ctx);
    for (int im = 0; im < 3; im++)
        for (int ik = 0; ik < 3; ik++)
            for (int in = 0; in < 3; in++) {
                const int64_t m = sizes[im], k = sizes[ik], n = sizes[in];
                int flag[17] = {0}, want = 0;
                for (int64_t j = 0; j < k; j++)
                    want += flag[j] = j % 3 == 1;
                int8_t codes[17 * 17];
                llmq_tensor *b = weights(ctx, &rng, n, k, codes);
                float *a = activations(&rng, m, k, flag, 6.0f);
                float bias_v[17], got[17 * 17], ref[17 * 17];
                for (int64_t o = 0; o < n; o++)
                    bias_v[o] = 0.5f * (float)o - 1.0f;
                llmq_tensor *bias = test_wrap_f32(ctx, bias_v, 1, (const int64_t[]){n});
                llmq_tensor *at = test_wrap_f32(ctx, a, 2, (const int64_t[]){m, k});
                llmq_tensor *ct = test_wrap_f32(ctx, got, 2, (const int64_t[]){m, n});
                int64_t count = -1;
                ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, bias, ct, NULL, 6.0f, &count));
                assert_int_equal(count, want);
                expected(ctx, a, m, k, b, n, bias, act, flag, ref);
                assert_memory_equal(got, ref, sizeof(float) * (size_t)(m * n));
                /* no bias; the explicit scheme equals the default */
                ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, 6.0f, NULL));
                expected(ctx, a, m, k, b, n, NULL, act, flag, ref);
                assert_memory_equal(got, ref, sizeof(float) * (size_t)(m * n));
                free(a);
                TEST_DESTROY(b, bias, at, ct);
            }
    llmq_scheme_destroy(act);
    llmq_context_destroy(ctx);
}

/* |a| == threshold is not an outlier; <= 0 selects 6.0; +Inf gives the plain W8A8 product;
 * a tiny threshold makes every column an outlier (the INT8 part is then just the bias). */
static void thresholds_and_extremes(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {5};
    enum { M = 3, K = 5, N = 4 };
    int8_t codes[N * K];
    llmq_tensor *b = weights(ctx, &rng, N, K, codes);
    float a[M * K] = {1, 6.0f, -6.25f, 0.5f, 2, -1, 0, 3, 0.25f, -2, 0, 1, 1, 6.0f, 0.75f};
    float got[M * N], ref[M * N], bias_v[N] = {1, 2, 3, 4};
    llmq_tensor *at = test_wrap_f32(ctx, a, 2, (const int64_t[]){M, K});
    llmq_tensor *ct = test_wrap_f32(ctx, got, 2, (const int64_t[]){M, N});
    llmq_tensor *bias = test_wrap_f32(ctx, bias_v, 1, (const int64_t[]){N});
    llmq_scheme *act = per_token_s8(ctx);
    int64_t count = -1;
    const int only2[K] = {0, 0, 1, 0, 0}, none[K] = {0}, all[K] = {1, 1, 1, 1, 1};
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, 6.0f, &count));
    assert_int_equal(count, 1); /* 6.0 is not above 6.0; -6.25 is */
    expected(ctx, a, M, K, b, N, NULL, act, only2, ref);
    assert_memory_equal(got, ref, sizeof ref);
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, 0.0f, &count));
    assert_int_equal(count, 1); /* the default 6.0 */
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, -3.0f, &count));
    assert_int_equal(count, 1);
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, 5.5f, &count));
    assert_int_equal(count, 3); /* columns 1 and 3 hold 6.0 */
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, act, INFINITY, &count));
    assert_int_equal(count, 0);
    expected(ctx, a, M, K, b, N, NULL, act, none, ref);
    assert_memory_equal(got, ref, sizeof ref);
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, bias, ct, act, 0.1f, &count));
    assert_int_equal(count, K);
    expected(ctx, a, M, K, b, N, bias, act, all, ref);
    assert_memory_equal(got, ref, sizeof ref);
    float *w = dequantized(ctx, b, N, K);
    for (int r = 0; r < M; r++) /* the whole product in float: exact quarter-integers */
        for (int o = 0; o < N; o++) {
            float acc = 0.0f;
            for (int j = 0; j < K; j++)
                acc += a[r * K + j] * w[o * K + j];
            assert_true(got[r * N + o] == bias_v[o] + acc);
        }
    free(w);
    llmq_scheme_destroy(act);
    TEST_DESTROY(b, at, ct, bias);
    llmq_context_destroy(ctx);
}

/* Packed weights give the same result; sub-byte per-group weights, u8 asymmetric activations
 * and 3-D activations follow the same formula. */
static void weight_formats_and_activation_schemes(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {3};
    enum { M = 6, K = 17, N = 5 };
    int flag[K] = {0};
    flag[2] = flag[9] = flag[16] = 1;
    int8_t codes[N * K];
    llmq_tensor *b = weights(ctx, &rng, N, K, codes), *packed = NULL;
    ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b, NULL, &packed));
    float *a = activations(&rng, M, K, flag, 6.0f);
    float got[M * N], ref[M * N];
    llmq_tensor *at = test_wrap_f32(ctx, a, 2, (const int64_t[]){M, K});
    llmq_tensor *ct = test_wrap_f32(ctx, got, 2, (const int64_t[]){M, N});
    llmq_scheme *act = per_token_s8(ctx);
    int64_t count;
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, packed, NULL, ct, NULL, 6.0f, &count));
    assert_int_equal(count, 3);
    expected(ctx, a, M, K, b, N, NULL, act, flag, ref);
    assert_memory_equal(got, ref, sizeof ref);
    /* u8 asymmetric per token: zeroed columns quantize to the zero point */
    llmq_scheme *u8 = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, u8, 6.0f, &count));
    expected(ctx, a, M, K, b, N, NULL, u8, flag, ref);
    assert_memory_equal(got, ref, sizeof ref);
    /* s4 weights in groups of 4 (each group's parameters for its columns) */
    llmq_scheme *g4 = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_GROUP, 0, 4);
    float wf[N * K];
    for (int i = 0; i < N * K; i++)
        wf[i] = (float)codes[i] / 64.0f;
    llmq_tensor *wft = test_wrap_f32(ctx, wf, 2, (const int64_t[]){N, K}), *b4 = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, g4, 2, (const int64_t[]){N, K}, &b4));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, wft, b4));
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b4, NULL, ct, act, 6.0f, &count));
    expected(ctx, a, M, K, b4, N, NULL, act, flag, ref);
    for (int i = 0; i < M * N; i++) /* group scales are not powers of two: float rounding */
        assert_true(fabsf(got[i] - ref[i]) <= 1e-4f * (1.0f + fabsf(ref[i])));
    /* the same s4 weights prepacked (16 channels x 8 k units, parameters copied): same bits */
    float got4[M * N];
    memcpy(got4, got, sizeof got4);
    llmq_tensor *b4p = NULL;
    ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b4, NULL, &b4p));
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b4p, NULL, ct, act, 6.0f, &count));
    assert_memory_equal(got, got4, sizeof got4);
    /* 3-D activations [2, 3, K] are the same 6 rows */
    llmq_tensor *a3 = test_wrap_f32(ctx, a, 3, (const int64_t[]){2, 3, K});
    float got3[M * N];
    llmq_tensor *c3 = test_wrap_f32(ctx, got3, 3, (const int64_t[]){2, 3, N});
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, a3, b, NULL, c3, act, 6.0f, &count));
    expected(ctx, a, M, K, b, N, NULL, act, flag, ref);
    assert_memory_equal(got3, ref, sizeof ref);
    free(a);
    llmq_scheme_destroy(act);
    llmq_scheme_destroy(u8);
    llmq_scheme_destroy(g4);
    TEST_DESTROY(b, packed, at, ct, wft, b4, b4p, a3, c3);
    llmq_context_destroy(ctx);
}

/* Decomposing lowers the error of per-token W8A8 when a few columns carry outliers. */
static void decomposition_beats_plain_w8a8(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {8};
    enum { M = 32, K = 64, N = 16 };
    int flag[K] = {0};
    flag[7] = flag[50] = 1;
    int8_t codes[N * K];
    llmq_tensor *b = weights(ctx, &rng, N, K, codes);
    float *a = activations(&rng, M, K, flag, 6.0f);
    for (int r = 0; r < M; r++)
        a[r * K + 7] *= 4.0f;
    float *w = dequantized(ctx, b, N, K), got[M * N], plain[M * N];
    llmq_tensor *at = test_wrap_f32(ctx, a, 2, (const int64_t[]){M, K});
    llmq_tensor *ct = test_wrap_f32(ctx, got, 2, (const int64_t[]){M, N});
    llmq_tensor *pt = test_wrap_f32(ctx, plain, 2, (const int64_t[]){M, N});
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, NULL, 6.0f, NULL));
    ASSERT_OK(ctx, llmq_matmul_outlier(ctx, at, b, NULL, pt, NULL, INFINITY, NULL));
    double e_dec = 0.0, e_plain = 0.0;
    for (int r = 0; r < M; r++)
        for (int o = 0; o < N; o++) {
            double y = 0.0;
            for (int j = 0; j < K; j++)
                y += (double)a[r * K + j] * w[o * K + j];
            e_dec += (got[r * N + o] - y) * (got[r * N + o] - y);
            e_plain += (plain[r * N + o] - y) * (plain[r * N + o] - y);
        }
    assert_true(e_dec * 10.0 < e_plain);
    free(a);
    free(w);
    TEST_DESTROY(b, at, ct, pt);
    llmq_context_destroy(ctx);
}

static void misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {1};
    int8_t codes[6], raw[6] = {0};
    llmq_tensor *b = weights(ctx, &rng, 2, 3, codes), *noscheme = NULL, *a8 = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, (const int64_t[]){2, 3}, raw, 0,
                                    &noscheme));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, (const int64_t[]){2, 3}, raw, 0, &a8));
    float a[6] = {1, 2, 3, 4, 5, 6}, c[4], c3[6], w[6] = {0};
    llmq_tensor *at = test_wrap_f32(ctx, a, 2, (const int64_t[]){2, 3});
    llmq_tensor *ct = test_wrap_f32(ctx, c, 2, (const int64_t[]){2, 2});
    llmq_tensor *c3t = test_wrap_f32(ctx, c3, 2, (const int64_t[]){2, 3});
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, (const int64_t[]){2, 3});
    llmq_tensor *alias = test_wrap_f32(ctx, a, 2, (const int64_t[]){2, 2});
    llmq_scheme *s4 = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_scheme *pc = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    int64_t count = -7;
    assert_int_equal(llmq_matmul_outlier(NULL, at, b, NULL, ct, NULL, 6.0f, &count),
                     LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, NULL, b, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "llmq_matmul_outlier: a=NULL");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, NULL, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "b=NULL");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, NULL, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "c=NULL");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, NULL, NAN, &count),
                 LLMQ_ERR_INVALID_ARG, "threshold=nan");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, a8, b, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "a=s8 tensor: must be f32");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, wt, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "b=f32 [2, 3]: weights must be a quantized 2-D tensor");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, alias, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "c: overlaps a");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, s4, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "activation_scheme=s4: must be s8 or u8");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, pc, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "per_token or per_tensor");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, noscheme, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_STATE, "b");
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, c3t, NULL, 6.0f, &count),
                 LLMQ_ERR_INVALID_ARG, "llmq_matmul_outlier: c=[2, 3]: must have a's leading "
                 "dimensions and N=2");
    a[4] = NAN;
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, at, b, NULL, ct, NULL, 6.0f, &count),
                 LLMQ_ERR_NON_FINITE, "a: NaN at row 1, column 1");
    assert_int_equal(count, -7); /* untouched on failure */
    llmq_scheme_destroy(s4);
    llmq_scheme_destroy(pc);
    TEST_DESTROY(b, noscheme, a8, at, ct, c3t, wt, alias);
    llmq_context_destroy(ctx);
}

/* Allocation n fails for n = 0, 1, ... until the call succeeds: each failure is
 * LLMQ_ERR_OUT_OF_MEMORY, leaves c and the count as they were and leaks nothing. */
static void out_of_memory(void **state)
{
    (void)state;
    int succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        test_allocator fa = {.fail_at = n};
        llmq_context_options o;
        ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
        o.allocator = test_allocator_of(&fa);
        float a[6] = {1, 9, -2, 0.5f, 3, 1}, w[6] = {1, 2, 3, -4, 5, -6}, c[4] = {7, 7, 7, 7};
        llmq_context *ctx = NULL;
        llmq_tensor *at = NULL, *wt = NULL, *b = NULL, *ct = NULL;
        llmq_scheme *ws = NULL;
        int64_t count = -1;
        const int64_t shape[2] = {2, 3}, cshape[2] = {2, 2};
        llmq_status st = llmq_context_create_with_options(&ctx, &o);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, a, 0, &at);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, w, 0, &wt);
        if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, cshape, c, 0, &ct);
        if (st == LLMQ_OK) st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &ws);
        if (st == LLMQ_OK) st = llmq_scheme_set_granularity(ws, LLMQ_GRANULARITY_PER_CHANNEL);
        if (st == LLMQ_OK) st = llmq_tensor_create_quantized(ctx, ws, 2, shape, &b);
        if (st == LLMQ_OK) st = llmq_quantize_dynamic(ctx, wt, b);
        if (st == LLMQ_OK) {
            st = llmq_matmul_outlier(ctx, at, b, NULL, ct, NULL, 6.0f, &count);
            if (st != LLMQ_OK)
                assert_true(count == -1 && c[0] == 7.0f && c[3] == 7.0f);
        }
        if (st == LLMQ_OK)
            succeeded = 1;
        else
            assert_int_equal(st, LLMQ_ERR_OUT_OF_MEMORY);
        llmq_scheme_destroy(ws);
        TEST_DESTROY(at, wt, b, ct);
        llmq_context_destroy(ctx);
        assert_int_equal(fa.live, 0);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_float_and_int8_references),
        cmocka_unit_test(thresholds_and_extremes),
        cmocka_unit_test(weight_formats_and_activation_schemes),
        cmocka_unit_test(decomposition_beats_plain_w8a8),
        cmocka_unit_test(misuse),
        cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
