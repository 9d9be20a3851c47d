/* test_qparams.c - scale and zero point from a range: PyTorch's observer rules, golden values
 * worked out by hand (float32 arithmetic, hex literals are the exact float results).
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "testing.h"

typedef struct qp_case {
    llmq_dtype dtype;
    llmq_symmetry sym;
    float lo, hi;
    float scale;   /* expected, exact */
    int32_t zp;    /* expected */
} qp_case;

static const qp_case cases[] = {
    /* symmetric: scale = max(-lo, hi) / ((qmax - qmin) / 2) */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.010102p-6f, 0},   /* 2 / 127.5 */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, -2.0f, 1.0f, 0x1.010102p-6f, 0},   /* |lo| wins */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, -1.0f, 2.0f, 0x1.020408p-6f, 0}, /* 2/127 */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.010102p-6f, 128}, /* u8: zp 128 */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, -1.0f, 2.0f, 0x1.020408p-6f, 128},
    {LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.111112p-2f, 0},   /* 2 / 7.5 */
    {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.111112p-2f, 8},
    {LLMQ_DTYPE_S2, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.555556p+0f, 0},   /* 2 / 1.5 */
    {LLMQ_DTYPE_U2, LLMQ_SYMMETRY_SYMMETRIC, -1.0f, 2.0f, 0x1.555556p+0f, 2},
    /* asymmetric: scale = (hi - lo) / (qmax - qmin), zp = qmin - round(lo / scale) */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, -1.0f, 2.0f, 0x1.818182p-7f, 85},  /* 3/255, 85 */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC, -1.0f, 2.0f, 0x1.818182p-7f, -43}, /* -128 + 85 */
    {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, -1.0f, 2.0f, 0x1.99999ap-3f, 5},   /* 3/15, 5 */
    /* the range is widened to include 0 */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, 1.0f, 2.0f, 0x1.010102p-7f, 0},    /* [0, 2] */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, -2.0f, -1.0f, 0x1.010102p-7f, 255},/* [-2, 0] */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, 3.0f, 5.1f, 0x1.47ae14p-5f, 0},     /* 5.1/127.5 */
    /* epsilon floor: all-zero and tiny ranges */
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, 0.0f, 0.0f, FLT_EPSILON, 0},
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, 0.0f, 0.0f, FLT_EPSILON, 0},
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC, 0.0f, 0.0f, FLT_EPSILON, 128},
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, -1e-30f, 1e-30f, FLT_EPSILON, 0},
    /* a span that overflows float32: scale = hi/255 - lo/255, zp = round(127.5) = 128 */
    {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, -FLT_MAX, FLT_MAX, 0x1.0101p+121f, 128},
    {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, -FLT_MAX, FLT_MAX, 0x1.0101p+121f, 0},
};

static void golden_qparams(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const qp_case *c = &cases[i];
        llmq_scheme *s = test_scheme(ctx, c->dtype, c->sym, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        float scale = 0.0f;
        int32_t zp = -999;
        ASSERT_OK(ctx, llmq_scheme_qparams(s, c->lo, c->hi, &scale, &zp));
        if (scale != c->scale || zp != c->zp)
            fail_msg("case %zu (%s sym=%d [%g, %g]): got scale %a zp %d, want %a zp %d", i,
                     llmq_dtype_name(c->dtype), (int)c->sym, (double)c->lo, (double)c->hi,
                     (double)scale, (int)zp, (double)c->scale, (int)c->zp);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

static void grid_bounds(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const struct {
        llmq_dtype d;
        llmq_symmetry s;
        int32_t lo, hi;
    } g[] = {
        {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, -128, 127},
        {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, -127, 127},
        {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, 0, 255},
        {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, 1, 255},
        {LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, -8, 7},
        {LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, -7, 7},
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, 0, 15},
        {LLMQ_DTYPE_S2, LLMQ_SYMMETRY_SYMMETRIC, -2, 1},
        {LLMQ_DTYPE_U2, LLMQ_SYMMETRY_ASYMMETRIC, 0, 3},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        llmq_scheme *s = test_scheme(ctx, g[i].d, g[i].s, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        int32_t lo, hi;
        ASSERT_OK(ctx, llmq_scheme_range(s, &lo, &hi));
        assert_int_equal(lo, g[i].lo);
        assert_int_equal(hi, g[i].hi);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

static void bad_ranges(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    float scale;
    int32_t zp;
    ASSERT_FAILS(ctx, llmq_scheme_qparams(s, 2.0f, 1.0f, &scale, &zp), LLMQ_ERR_INVALID_ARG,
                 "llmq_scheme_qparams: lo=2: greater than hi=1");
    ASSERT_FAILS(ctx, llmq_scheme_qparams(s, NAN, 1.0f, &scale, &zp), LLMQ_ERR_NON_FINITE,
                 "lo=nan");
    ASSERT_FAILS(ctx, llmq_scheme_qparams(s, 0.0f, INFINITY, &scale, &zp), LLMQ_ERR_NON_FINITE,
                 "hi=inf");
    ASSERT_FAILS(ctx, llmq_scheme_qparams(s, 0.0f, 1.0f, NULL, &zp), LLMQ_ERR_INVALID_ARG,
                 "scale=NULL");
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_qparams),
        cmocka_unit_test(grid_bounds),
        cmocka_unit_test(bad_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
