/* test_matmul.c - the matmul contract (docs/gemm.md) on the reference backend: golden values
 * worked by hand for every epilogue, an independent oracle on random shapes (1, 3, 17, 64,
 * 1000) and extreme codes, and misuse. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

/* A quantized tensor over caller bytes, with parameters set from arrays. */
static llmq_tensor *qtensor(llmq_context *ctx, llmq_dtype d, llmq_symmetry sym,
                            llmq_granularity g, int32_t axis, int64_t group, int32_t ndim,
                            const int64_t *shape, void *codes, const float *scale,
                            const int32_t *zp)
{
    llmq_scheme *s = test_scheme(ctx, d, sym, g, axis, group);
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, d, ndim, shape, codes, 0, &t));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, t, s));
    const int64_t n = llmq_tensor_numel(llmq_tensor_scale(t));
    memcpy(llmq_tensor_data(llmq_tensor_scale(t)), scale, sizeof(float) * (size_t)n);
    memcpy(llmq_tensor_data(llmq_tensor_zero_point(t)), zp, sizeof(int32_t) * (size_t)n);
    llmq_scheme_destroy(s);
    return t;
}

static llmq_tensor *out_tensor(llmq_context *ctx, llmq_dtype d, int64_t m, int64_t n)
{
    const int64_t shape[2] = {m, n};
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, d, 2, shape, &t));
    return t;
}

/* A u8 [2, 3] zero point 2: a - zA = [[1, 2, 3], [0, 0, 0]] (scale 0.5);
 * B s8 [2, 3] = [[1, -1, 2], [0, 3, -2]] per output channel, scales [2, 0.25];
 * acc = [[1 - 2 + 6, 6 - 6], [0, 0]] = [[5, 0], [0, 0]]. */
static uint8_t a_codes[6] = {3, 4, 5, 2, 2, 2};
static int8_t b_codes[6] = {1, -1, 2, 0, 3, -2};
static const int64_t shape23[2] = {2, 3};

static void golden_integer_epilogues(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const float sa = 0.5f, sb[2] = {2.0f, 0.25f};
    const int32_t za = 2, zb[2] = {0, 0};
    llmq_tensor *a = qtensor(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                             LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, shape23, a_codes, &sa, &za);
    llmq_tensor *b = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                             LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, 2, shape23, b_codes, sb, zb);
    /* s32: the raw sums */
    llmq_tensor *c32 = out_tensor(ctx, LLMQ_DTYPE_S32, 2, 2);
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c32));
    const int32_t *v32 = llmq_tensor_data(c32);
    assert_int_equal(v32[0], 5);
    assert_int_equal(v32[1], 0);
    assert_int_equal(v32[2], 0);
    assert_int_equal(v32[3], 0);
    /* f32: 5 * 0.5 * 2 + 1 = 6; 0 - 1; bias only */
    float bias_v[2] = {1.0f, -1.0f};
    const int64_t bshape[1] = {2};
    llmq_tensor *bias = test_wrap_f32(ctx, bias_v, 1, bshape);
    llmq_tensor *cf = out_tensor(ctx, LLMQ_DTYPE_F32, 2, 2);
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, bias, cf));
    const float *vf = llmq_tensor_data(cf);
    assert_true(vf[0] == 6.0f && vf[1] == -1.0f && vf[2] == 1.0f && vf[3] == -1.0f);
    /* f16 and bf16 outputs: 6 = 0x4600 / 0x40c0 */
    llmq_tensor *ch = out_tensor(ctx, LLMQ_DTYPE_F16, 2, 2), *cb = out_tensor(ctx, LLMQ_DTYPE_BF16, 2, 2);
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, bias, ch));
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, bias, cb));
    assert_int_equal(((const uint16_t *)llmq_tensor_data(ch))[0], 0x4600);
    assert_int_equal(((const uint16_t *)llmq_tensor_data(cb))[0], 0x40c0);
    /* s8 requant, scale 2, zero point 1: 5 * 0.5 * 2 / 2 = 2.5 -> 2 (ties to even) + 1 = 3;
       0 -> 1. The multiplier mode gives the same here (m = 0.5). */
    const float sc = 2.0f;
    const int32_t zc = 1;
    int8_t c8_codes[4] = {0};
    llmq_tensor *c8 = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC,
                              LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, (const int64_t[]){2, 2},
                              c8_codes, &sc, &zc);
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c8));
    assert_int_equal(c8_codes[0], 3);
    assert_int_equal(c8_codes[1], 1);
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.requant = LLMQ_REQUANT_MULTIPLIER;
    memset(c8_codes, 0, sizeof c8_codes);
    ASSERT_OK(ctx, llmq_matmul_with_options(ctx, a, b, NULL, c8, &o));
    assert_int_equal(c8_codes[0], 3);
    /* saturation: C scale 0.01 makes 5 * 0.5 * 2 / 0.01 = 500 -> 127 */
    *(float *)llmq_tensor_data(llmq_tensor_scale(c8)) = 0.01f;
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c8));
    assert_int_equal(c8_codes[0], 127);
    /* u8 output, zero point 128, scale 0.5: 5 / 0.5 = 10 -> 138 */
    uint8_t cu_codes[4];
    const float scu = 0.5f;
    const int32_t zcu = 128;
    llmq_tensor *cu = qtensor(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                              LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, (const int64_t[]){2, 2},
                              cu_codes, &scu, &zcu);
    ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, cu));
    assert_int_equal(cu_codes[0], 138);
    assert_int_equal(cu_codes[3], 128);
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_tensor_destroy(c32);
    llmq_tensor_destroy(bias);
    llmq_tensor_destroy(cf);
    llmq_tensor_destroy(ch);
    llmq_tensor_destroy(cb);
    llmq_tensor_destroy(c8);
    llmq_tensor_destroy(cu);
    llmq_context_destroy(ctx);
}

/* The same product with B stored [K, N], and with A 3-D. */
static void golden_layouts(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const float sa = 1.0f, sb = 1.0f;
    const int32_t za = 2, zb = 0;
    int8_t bt[6] = {1, 0, -1, 3, 2, -2}; /* B^T of b_codes, [3, 2] */
    llmq_tensor *a = qtensor(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                             LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 3, (const int64_t[]){2, 1, 3},
                             a_codes, &sa, &za);
    llmq_tensor *b = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                             LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, (const int64_t[]){3, 2}, bt,
                             &sb, &zb);
    llmq_tensor *c = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 3, (const int64_t[]){2, 1, 2}, &c));
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.weight_layout = LLMQ_WEIGHT_LAYOUT_KN;
    ASSERT_OK(ctx, llmq_matmul_with_options(ctx, a, b, NULL, c, &o));
    const int32_t *v = llmq_tensor_data(c);
    assert_int_equal(v[0], 5);
    assert_int_equal(v[1], 0);
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_tensor_destroy(c);
    llmq_context_destroy(ctx);
}

/* W4A8 with groups, and weight-only W4A16. */
static void golden_grouped_and_weight_only(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    { /* A s8 [1, 4] = [1, 2, 3, 4], per token scale 0.5; B s4 [1, 4] = [1, 1, 2, 2] in groups
         of 2 with scales [1, 0.25]: (1 + 2) * 0.5 * 1 + (6 + 8) * 0.5 * 0.25 = 3.25 */
        int8_t av[4] = {1, 2, 3, 4};
        uint8_t bv[2] = {0x11, 0x22};
        const float sa = 0.5f, sb[2] = {1.0f, 0.25f};
        const int32_t za = 0, zb[2] = {0, 0};
        llmq_tensor *a = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TOKEN, 0, 0, 2, (const int64_t[]){1, 4}, av,
                                 &sa, &za);
        llmq_tensor *b = qtensor(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_GROUP, 0, 2, 2, (const int64_t[]){1, 4}, bv,
                                 sb, zb);
        llmq_tensor *c = out_tensor(ctx, LLMQ_DTYPE_F32, 1, 1), *c32 = out_tensor(ctx, LLMQ_DTYPE_S32, 1, 1);
        ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c));
        assert_true(*(const float *)llmq_tensor_data(c) == 3.25f);
        ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, NULL, c32), LLMQ_ERR_UNSUPPORTED,
                     "c=s32: raw accumulators need parameters");
        llmq_tensor_destroy(a);
        llmq_tensor_destroy(b);
        llmq_tensor_destroy(c);
        llmq_tensor_destroy(c32);
    }
    { /* A f32 [1, 4] = [0.5, -1, 2, 1]; B u4 [2, 4] in groups of 2:
         row 0 codes [9, 7, 10, 8], zero points [8, 8], scales [0.5, 2]:
           (0.5 * 1 + -1 * -1) * 0.5 + (2 * 2 + 1 * 0) * 2 = 0.75 + 8 = 8.75
         row 1 codes [1, 2, 3, 4], zero points [0, 0], scales [1, 1]:
           (0.5 - 2) + (6 + 4) = 8.5 */
        float av[4] = {0.5f, -1.0f, 2.0f, 1.0f};
        uint8_t bv[4] = {0x79, 0x8a, 0x21, 0x43};
        const float sb[4] = {0.5f, 2.0f, 1.0f, 1.0f};
        const int32_t zb[4] = {8, 8, 0, 0};
        llmq_tensor *a = test_wrap_f32(ctx, av, 2, (const int64_t[]){1, 4});
        llmq_tensor *b = qtensor(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_GROUP, 0, 2, 2, (const int64_t[]){2, 4}, bv,
                                 sb, zb);
        llmq_tensor *c = out_tensor(ctx, LLMQ_DTYPE_F32, 1, 2);
        ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c));
        const float *v = llmq_tensor_data(c);
        assert_true(v[0] == 8.75f && v[1] == 8.5f);
        llmq_tensor *c8 = out_tensor(ctx, LLMQ_DTYPE_S8, 1, 2);
        ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, NULL, c8), LLMQ_ERR_INVALID_ARG,
                     "c=s8 tensor: must be f32, f16, bf16 for weight-only products");
        llmq_tensor_destroy(a);
        llmq_tensor_destroy(b);
        llmq_tensor_destroy(c);
        llmq_tensor_destroy(c8);
    }
    llmq_context_destroy(ctx);
}

/* ---- an independent oracle: dequantize every operand, sum in double ---- */

static double deq(const llmq_tensor *t, int64_t r, int64_t c, int kn)
{
    (void)kn;
    const int64_t cols = llmq_tensor_dim(t, -1);
    const llmq_dtype d = llmq_tensor_dtype(t);
    const uint8_t *row = (const uint8_t *)llmq_tensor_data(t) + r * llmq_tensor_row_stride(t);
    if (d == LLMQ_DTYPE_F32)
        return ((const float *)row)[c];
    const int bits = (int)llmq_dtype_bits(d), per = 8 / bits;
    const int sgn = d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_S4 || d == LLMQ_DTYPE_S2;
    const uint32_t u = (row[c / per] >> (c % per * bits)) & ((1u << bits) - 1);
    const int32_t q = sgn && (u >> (bits - 1)) ? (int32_t)u - (1 << bits) : (int32_t)u;
    const llmq_scheme *s = llmq_tensor_scheme(t);
    int64_t p = 0; /* parameter index, recomputed from the scheme */
    switch (llmq_scheme_granularity(s)) {
    case LLMQ_GRANULARITY_PER_CHANNEL: p = llmq_scheme_axis(s) == 0 ? r : c; break;
    case LLMQ_GRANULARITY_PER_TOKEN: p = r; break;
    case LLMQ_GRANULARITY_PER_GROUP: {
        const int64_t g = llmq_scheme_group_size(s);
        p = r * ((cols + g - 1) / g) + c / g;
        break;
    }
    default: break;
    }
    const float sc = ((const float *)llmq_tensor_data(llmq_tensor_scale(t)))[p];
    const int32_t zp = ((const int32_t *)llmq_tensor_data(llmq_tensor_zero_point(t)))[p];
    return (double)(q - zp) * sc;
}

static llmq_tensor *random_q(llmq_context *ctx, test_rng *rng, llmq_dtype d, llmq_granularity g,
                             int64_t group, int64_t rows, int64_t cols, int extreme)
{
    llmq_scheme *s = test_scheme(ctx, d, LLMQ_SYMMETRY_ASYMMETRIC, g, 0, group);
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, (const int64_t[]){rows, cols}, &t));
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
    llmq_scheme_destroy(s);
    /* codes: random, or the grid's ends (extreme) */
    llmq_tensor *codes = NULL;
    const int sgn = d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_S4 || d == LLMQ_DTYPE_S2;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, sgn ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8, 2,
                                      (const int64_t[]){rows, cols}, &codes));
    int8_t *cv = llmq_tensor_data(codes);
    for (int64_t i = 0; i < rows * cols; i++) {
        const uint64_t r = test_rng_next(rng);
        const int32_t v = extreme ? (r & 1 ? qmax : qmin)
                                  : qmin + (int32_t)(r % (uint64_t)(qmax - qmin + 1));
        cv[i] = (int8_t)v;
    }
    if (llmq_dtype_bits(d) == 8)
        memcpy(llmq_tensor_data(t), cv, (size_t)(rows * cols));
    else
        ASSERT_OK(ctx, llmq_pack(ctx, codes, t));
    llmq_tensor_destroy(codes);
    float *sc = llmq_tensor_data(llmq_tensor_scale(t));
    int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(t));
    for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(t)); i++) {
        sc[i] = test_rng_range(rng, 0.001f, 0.1f);
        const uint64_t r = test_rng_next(rng);
        zp[i] = extreme ? (r & 1 ? qmax : qmin) : qmin + (int32_t)(r % (uint64_t)(qmax - qmin + 1));
    }
    return t;
}

static void random_shapes_against_oracle(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {5};
    static const int64_t sz[] = {1, 3, 17, 64, 1000};
    int cases = 0;
    for (int iter = 0; iter < 60; iter++) {
        int64_t m = sz[test_rng_next(&rng) % 4], n = sz[test_rng_next(&rng) % 4],
                k = sz[test_rng_next(&rng) % 5];
        if (m * n * k > 2000000)
            continue;
        const int extreme = iter % 4 == 3;
        const int weight_only = iter % 3 == 2;
        static const llmq_dtype bd[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                        LLMQ_DTYPE_U4, LLMQ_DTYPE_S2};
        const llmq_dtype bdt = bd[test_rng_next(&rng) % 5];
        const int grouped = test_rng_next(&rng) % 2;
        const int64_t group = (int64_t)(1 + test_rng_next(&rng) % 40);
        llmq_tensor *a;
        float *af = NULL;
        if (weight_only) {
            af = malloc(sizeof(float) * (size_t)(m * k));
            for (int64_t i = 0; i < m * k; i++)
                af[i] = test_rng_range(&rng, -2.0f, 2.0f);
            a = test_wrap_f32(ctx, af, 2, (const int64_t[]){m, k});
        } else {
            a = random_q(ctx, &rng, iter % 2 ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8,
                         LLMQ_GRANULARITY_PER_TOKEN, 0, m, k, extreme);
        }
        llmq_tensor *b = random_q(ctx, &rng, bdt,
                                  grouped ? LLMQ_GRANULARITY_PER_GROUP : LLMQ_GRANULARITY_PER_CHANNEL,
                                  group, n, k, extreme);
        llmq_tensor *c = out_tensor(ctx, LLMQ_DTYPE_F32, m, n);
        ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c));
        llmq_tensor *c32 = NULL;
        if (!weight_only && !grouped) {
            c32 = out_tensor(ctx, LLMQ_DTYPE_S32, m, n);
            ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c32));
        }
        const float *cv = llmq_tensor_data(c);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double want = 0.0, mag = 0.0;
                for (int64_t kk = 0; kk < k; kk++) {
                    const double t = deq(a, i, kk, 0) * deq(b, j, kk, 0);
                    want += t;
                    mag += fabs(t);
                }
                const double got = cv[i * n + j];
                /* float32 accumulation: a few units of 2^-24 per term of the magnitude */
                if (fabs(got - want) > 1e-6 * (double)k * mag + 1e-30)
                    fail_msg("iter %d m=%lld n=%lld k=%lld (%lld,%lld): got %.9g want %.9g",
                             iter, (long long)m, (long long)n, (long long)k, (long long)i,
                             (long long)j, got, want);
                if (c32 != NULL) { /* exact: recompute the centred integer sum */
                    const float sa = ((const float *)llmq_tensor_data(llmq_tensor_scale(a)))[i];
                    const float sb = ((const float *)llmq_tensor_data(llmq_tensor_scale(b)))[j];
                    const double exact = want / ((double)sa * sb);
                    assert_true(fabs(((const int32_t *)llmq_tensor_data(c32))[i * n + j] - exact) < 1e-3);
                }
            }
        cases++;
        llmq_tensor_destroy(a);
        llmq_tensor_destroy(b);
        llmq_tensor_destroy(c);
        llmq_tensor_destroy(c32);
        free(af);
    }
    assert_true(cases > 30);
    llmq_context_destroy(ctx);
}

static void misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const float s1 = 1.0f;
    const int32_t z0 = 0;
    int8_t av[6] = {0}, bv[6] = {0};
    llmq_tensor *a = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                             LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, shape23, av, &s1, &z0);
    llmq_tensor *b = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                             LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, shape23, bv, &s1, &z0);
    llmq_tensor *bare = NULL, *f = out_tensor(ctx, LLMQ_DTYPE_F32, 2, 3);
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape23, &bare));
    llmq_tensor *c = out_tensor(ctx, LLMQ_DTYPE_F32, 2, 2), *cbad = out_tensor(ctx, LLMQ_DTYPE_F32, 2, 3);
    llmq_tensor *c32 = out_tensor(ctx, LLMQ_DTYPE_S32, 2, 2), *cu4 = out_tensor(ctx, LLMQ_DTYPE_U4, 2, 2);
    float bias3[3] = {0};
    llmq_tensor *bias = test_wrap_f32(ctx, bias3, 1, (const int64_t[]){3});
    assert_int_equal(llmq_matmul(NULL, a, b, NULL, c), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_matmul(ctx, NULL, b, NULL, c), LLMQ_ERR_INVALID_ARG, "a=NULL");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, NULL, NULL, c), LLMQ_ERR_INVALID_ARG, "b=NULL");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, NULL, NULL), LLMQ_ERR_INVALID_ARG, "c=NULL");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, c32, b, NULL, c), LLMQ_ERR_INVALID_ARG, "a=s32 tensor");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, f, NULL, c), LLMQ_ERR_INVALID_ARG,
                 "b=f32 tensor: weights must be quantized");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, NULL, cbad), LLMQ_ERR_INVALID_ARG,
                 "c=[2, 3]: must have a's leading dimensions and N=2");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, NULL, cu4), LLMQ_ERR_INVALID_ARG, "c=u4 tensor");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, bias, c32), LLMQ_ERR_INVALID_ARG,
                 "bias: only float outputs take a bias");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b, bias, c), LLMQ_ERR_INVALID_ARG,
                 "must be f32 with N=2 values");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, bare, NULL, c), LLMQ_ERR_STATE, "b: s8 tensor has no scheme");
    ASSERT_FAILS(ctx, llmq_matmul(ctx, bare, b, NULL, c), LLMQ_ERR_STATE, "a: s8 tensor has no scheme");
    llmq_tensor *b32 = NULL; /* K differs */
    int8_t bw[8] = {0};
    b32 = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0,
                  2, (const int64_t[]){2, 4}, bw, &s1, &z0);
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a, b32, NULL, c), LLMQ_ERR_INVALID_ARG, "K=4 differs");
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.reserved[0] = 1;
    ASSERT_FAILS(ctx, llmq_matmul_with_options(ctx, a, b, NULL, c, &o), LLMQ_ERR_ABI, "options.size");
    o.reserved[0] = 0;
    o.requant = (llmq_requant)5;
    ASSERT_FAILS(ctx, llmq_matmul_with_options(ctx, a, b, NULL, c, &o), LLMQ_ERR_INVALID_ARG,
                 "options.requant=5");
    o.requant = LLMQ_REQUANT_EXACT;
    o.weight_layout = (llmq_weight_layout)2;
    ASSERT_FAILS(ctx, llmq_matmul_with_options(ctx, a, b, NULL, c, &o), LLMQ_ERR_INVALID_ARG,
                 "options.weight_layout=2");
    assert_int_equal(llmq_matmul_options_defaults(&o, 3), LLMQ_ERR_ABI);
    /* the output may not alias an input */
    int32_t shared[4] = {0};
    llmq_tensor *alias = NULL, *a_on_shared = qtensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                                      LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2,
                                                      shape23, shared, &s1, &z0);
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, 2, (const int64_t[]){2, 2}, shared, 0,
                                    &alias));
    ASSERT_FAILS(ctx, llmq_matmul(ctx, a_on_shared, b, NULL, alias), LLMQ_ERR_INVALID_ARG,
                 "c: overlaps a");
    llmq_tensor_destroy(a_on_shared);
    /* a K whose worst-case sum overflows int32: u8 codes with zero point 0 against s8 */
    llmq_tensor *bigk_a = NULL, *bigk_b = NULL, *bigk_c = out_tensor(ctx, LLMQ_DTYPE_S32, 1, 1);
    llmq_scheme *su8 = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_scheme *ss8 = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, su8, 2, (const int64_t[]){1, 70000}, &bigk_a));
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, ss8, 2, (const int64_t[]){1, 70000}, &bigk_b));
    *(int32_t *)llmq_tensor_data(llmq_tensor_zero_point(bigk_a)) = 0;
    ASSERT_FAILS(ctx, llmq_matmul(ctx, bigk_a, bigk_b, NULL, bigk_c), LLMQ_ERR_UNSUPPORTED,
                 "exceeds the int32 accumulator");
    llmq_tensor *tensors[] = {a, b, bare, f, c, cbad, c32, cu4, bias, b32, alias, bigk_a, bigk_b, bigk_c};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        llmq_tensor_destroy(tensors[i]);
    llmq_scheme_destroy(su8);
    llmq_scheme_destroy(ss8);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_integer_epilogues),
        cmocka_unit_test(golden_layouts),
        cmocka_unit_test(golden_grouped_and_weight_only),
        cmocka_unit_test(random_shapes_against_oracle),
        cmocka_unit_test(misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
