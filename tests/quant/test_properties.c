/* test_properties.c - properties over random shapes (sizes 1, 3, 17, 1000) and schemes:
 * |x - dequant(quant(x))| <= scale / 2 inside the range, saturation to the range ends outside
 * it, re-quantizing a dequantized tensor returns the same codes, pack/unpack round trips, and
 * strided views behave like contiguous copies. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

static const llmq_dtype qdtypes[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                     LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
static const int64_t sizes[] = {1, 3, 17, 1000};

static const test_gran grans[] = {
    {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},   {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
    {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0}, {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
    {LLMQ_GRANULARITY_PER_GROUP, 0, 1},    {LLMQ_GRANULARITY_PER_GROUP, 0, 3},
    {LLMQ_GRANULARITY_PER_GROUP, 0, 32},
};

static void fill_random(test_rng *rng, float *x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        /* rows of very different magnitudes, sometimes all positive or all negative */
        const float mag = powf(10.0f, test_rng_range(rng, -3.0f, 3.0f));
        const int kind = (int)(test_rng_next(rng) % 4);
        for (int64_t c = 0; c < cols; c++) {
            float v = test_rng_range(rng, -mag, mag);
            x[r * cols + c] = kind == 1 ? fabsf(v) : kind == 2 ? -fabsf(v) : v;
        }
    }
}

/* Quantize random data dynamically under one scheme, dequantize, and check every element;
 * returns the number of elements checked. */
static long check_one_scheme(llmq_context *ctx, test_rng *rng, llmq_dtype dtype, int sym,
                             const test_gran *g, int num, int rnd)
{
    const int64_t rows = sizes[test_rng_next(rng) % 3], cols = sizes[test_rng_next(rng) % 4];
    const int64_t shape[2] = {rows, cols};
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    float *y = malloc(sizeof(float) * (size_t)(rows * cols));
    fill_random(rng, x, rows, cols);
    llmq_scheme *s = test_scheme(ctx, dtype, (llmq_symmetry)sym, g->g, g->axis, g->group);
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, (llmq_numerics)num));
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, (llmq_rounding)rnd));
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, (uint64_t)rnd * 7 + 1));
    /* nearest rounding is within half a step; stochastic within one */
    const double step = rnd == LLMQ_ROUNDING_STOCHASTIC ? 1.0 : 0.5;
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
    llmq_tensor *src = test_wrap_f32(ctx, x, 2, shape), *dst = test_wrap_f32(ctx, y, 2, shape);
    llmq_tensor *q = NULL, *q2 = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q2));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
    ASSERT_OK(ctx, llmq_dequantize(ctx, q, dst));
    const float *sc = llmq_tensor_data(llmq_tensor_scale(q));
    const int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(q));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const int64_t p = test_param_index(g, 2, shape, r * cols + c);
            const double xs = x[r * cols + c], ys = y[r * cols + c];
            const double lo = (double)(qmin - zp[p]) * sc[p], hi = (double)(qmax - zp[p]) * sc[p];
            if (xs < lo || xs > hi) { /* outside the grid: saturates to the nearer end */
                assert_true(ys == (float)(xs < lo ? lo : hi));
                continue;
            }
            /* the step, plus float rounding of x * (1 / scale) */
            if (fabs(xs - ys) > step * sc[p] * (1.0 + 1e-5) + fabs(xs) * 1e-6)
                fail_msg("%s sym=%d gran=%d/%d num=%d rnd=%d [%lld,%lld] (%lld,%lld): x=%a y=%a "
                         "scale=%a zp=%d", llmq_dtype_name(dtype), sym, (int)g->g, (int)g->axis,
                         num, rnd, (long long)rows, (long long)cols, (long long)r, (long long)c,
                         xs, ys, (double)sc[p], (int)zp[p]);
        }
    /* the dequantized values lie on the grid: quantizing them again with a nearest mode gives
     * the same codes (stochastic rounding may step off an integer that float error left just
     * below it) */
    if (rnd != LLMQ_ROUNDING_STOCHASTIC) {
        memcpy(llmq_tensor_data(llmq_tensor_scale(q2)), sc,
               sizeof(float) * (size_t)llmq_tensor_numel(llmq_tensor_scale(q)));
        memcpy(llmq_tensor_data(llmq_tensor_zero_point(q2)), zp,
               sizeof(int32_t) * (size_t)llmq_tensor_numel(llmq_tensor_zero_point(q)));
        ASSERT_OK(ctx, llmq_quantize(ctx, dst, q2));
        assert_memory_equal(llmq_tensor_data(q), llmq_tensor_data(q2), llmq_tensor_nbytes(q));
    }
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(q2);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(dst);
    llmq_scheme_destroy(s);
    free(x);
    free(y);
    return rows * cols;
}

/* Every dtype x symmetry x granularity x numerics x rounding. */
static void dequant_error_within_step(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {1};
    long checked = 0;
    for (size_t di = 0; di < sizeof qdtypes / sizeof qdtypes[0]; di++)
        for (int sym = 0; sym <= LLMQ_SYMMETRY_ASYMMETRIC; sym++)
            for (size_t gi = 0; gi < sizeof grans / sizeof grans[0]; gi++)
                for (int num = 0; num <= LLMQ_NUMERICS_ONNX; num++)
                    for (int rnd = 0; rnd <= LLMQ_ROUNDING_STOCHASTIC; rnd++)
                        checked += check_one_scheme(ctx, &rng, qdtypes[di], sym, &grans[gi],
                                                    num, rnd);
    assert_true(checked > 100000);
    llmq_context_destroy(ctx);
}

static void pack_unpack_round_trip(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {7};
    static const llmq_dtype packed[] = {LLMQ_DTYPE_S4, LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
    for (size_t k = 0; k < 4; k++)
        for (size_t ri = 0; ri < 3; ri++)
            for (size_t ci = 0; ci < 4; ci++) {
                const int64_t shape[2] = {sizes[ri], sizes[ci]};
                const int bits = (int)llmq_dtype_bits(packed[k]);
                const int sgn = packed[k] == LLMQ_DTYPE_S4 || packed[k] == LLMQ_DTYPE_S2;
                const llmq_dtype bytes = sgn ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8;
                llmq_tensor *codes = NULL, *p = NULL, *back = NULL;
                ASSERT_OK(ctx, llmq_tensor_create(ctx, bytes, 2, shape, &codes));
                ASSERT_OK(ctx, llmq_tensor_create(ctx, packed[k], 2, shape, &p));
                ASSERT_OK(ctx, llmq_tensor_create(ctx, bytes, 2, shape, &back));
                int8_t *cv = llmq_tensor_data(codes);
                const int64_t n = shape[0] * shape[1];
                for (int64_t i = 0; i < n; i++) {
                    const int v = (int)(test_rng_next(&rng) % (1u << bits));
                    cv[i] = (int8_t)(sgn ? v - (1 << (bits - 1)) : v);
                }
                ASSERT_OK(ctx, llmq_pack(ctx, codes, p));
                assert_int_equal(llmq_tensor_row_stride(p), (size_t)((shape[1] * bits + 7) / 8));
                ASSERT_OK(ctx, llmq_unpack(ctx, p, back));
                assert_memory_equal(cv, llmq_tensor_data(back), (size_t)n);
                /* a code off the grid is refused with its index */
                cv[n - 1] = (int8_t)(sgn ? 1 << (bits - 1) : 1 << bits);
                ASSERT_FAILS(ctx, llmq_pack(ctx, codes, p), LLMQ_ERR_INVALID_ARG, "outside the");
                llmq_tensor_destroy(codes);
                llmq_tensor_destroy(p);
                llmq_tensor_destroy(back);
            }
    llmq_context_destroy(ctx);
}

/* A [5, 7] view with row stride 13 floats inside a bigger buffer gives the same codes as a
 * contiguous copy, and writes nothing outside its rows. */
static void strided_views_match_contiguous(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {3};
    float big[5 * 13], packed[5 * 7];
    for (int i = 0; i < 5 * 13; i++)
        big[i] = test_rng_range(&rng, -4.0f, 4.0f);
    for (int r = 0; r < 5; r++)
        memcpy(packed + r * 7, big + r * 13, 7 * sizeof(float));
    const int64_t shape[2] = {5, 7};
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 0, 3);
    llmq_tensor *view = NULL, *flat = test_wrap_f32(ctx, packed, 2, shape), *a = NULL, *b = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, big, 13 * sizeof(float), &view));
    assert_int_equal(llmq_tensor_nbytes(view), (4 * 13 + 7) * sizeof(float));
    /* the quantized side strided too: 6 bytes a row where 4 are needed */
    uint8_t qbuf[5 * 6];
    memset(qbuf, 0xaa, sizeof qbuf);
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S4, 2, shape, qbuf, 6, &a));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, a, s));
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &b));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, view, a));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, flat, b));
    for (int r = 0; r < 5; r++) {
        const uint8_t *brow = (const uint8_t *)llmq_tensor_data(b) + r * 4;
        assert_memory_equal(qbuf + r * 6, brow, 3);
        /* element 6 is the low nibble of byte 3; the unused high nibble is left alone */
        assert_int_equal(qbuf[r * 6 + 3], (brow[3] & 0x0f) | 0xa0);
        if (r < 4) { /* padding bytes untouched */
            assert_int_equal(qbuf[r * 6 + 4], 0xaa);
            assert_int_equal(qbuf[r * 6 + 5], 0xaa);
        }
    }
    llmq_tensor_destroy(view);
    llmq_tensor_destroy(flat);
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dequant_error_within_step),
        cmocka_unit_test(pack_unpack_round_trip),
        cmocka_unit_test(strided_views_match_contiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
