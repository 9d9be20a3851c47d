/* test_quantize_golden.c - quantize / dequantize golden vectors worked out by hand, for each
 * dtype, granularity, rounding mode and numerics mode: ties, saturation, ±Inf, NaN, all-zero
 * tensors, tiny and huge ranges, a short last group, f16 / bf16 inputs and outputs.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "testing.h"

/* Read code (r, c) straight from the packed bytes: an oracle independent of llmq_unpack. */
static int32_t code_at(const llmq_tensor *q, int64_t r, int64_t c)
{
    const int bits = (int)llmq_dtype_bits(llmq_tensor_dtype(q));
    const llmq_dtype d = llmq_tensor_dtype(q);
    const uint8_t *row = (const uint8_t *)llmq_tensor_data(q) + r * llmq_tensor_row_stride(q);
    const int per = 8 / bits;
    const uint32_t u = (row[c / per] >> ((c % per) * bits)) & ((1u << bits) - 1);
    const int is_signed = d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_S4 || d == LLMQ_DTYPE_S2;
    return is_signed && (u >> (bits - 1)) ? (int32_t)u - (1 << bits) : (int32_t)u;
}

/* Quantize x (shape) with explicit parameters; compare every code with want. */
static void check_static(llmq_context *ctx, const llmq_scheme *s, int32_t ndim,
                         const int64_t *shape, float *x, const float *scale, const int32_t *zp,
                         const int32_t *want)
{
    llmq_tensor *q = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, ndim, shape, &q));
    const int64_t np = llmq_tensor_numel(llmq_tensor_scale(q));
    memcpy(llmq_tensor_data(llmq_tensor_scale(q)), scale, (size_t)np * sizeof(float));
    memcpy(llmq_tensor_data(llmq_tensor_zero_point(q)), zp, (size_t)np * sizeof(int32_t));
    llmq_tensor *src = test_wrap_f32(ctx, x, ndim, shape);
    ASSERT_OK(ctx, llmq_quantize(ctx, src, q));
    const int64_t cols = shape[ndim - 1], rows = llmq_tensor_numel(q) / cols;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (code_at(q, r, c) != want[r * cols + c])
                fail_msg("element %lld (x=%a): code %d, want %d", (long long)(r * cols + c),
                         (double)x[r * cols + c], (int)code_at(q, r, c), (int)want[r * cols + c]);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(q);
}

static llmq_scheme *scheme_with(llmq_context *ctx, llmq_dtype d, llmq_symmetry sym,
                                llmq_rounding rounding, llmq_numerics numerics)
{
    llmq_scheme *s = test_scheme(ctx, d, sym, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, rounding));
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, numerics));
    return s;
}

/* s8, scale 0.5: x / scale = 0.5, 1.5, -0.5, -1.5, 2.5 (ties), 127.5, 128, 200, -200
 * (saturation), ±Inf (saturation), 0. */
static float tie_x[] = {0.25f, 0.75f, -0.25f, -0.75f, 1.25f, 63.75f, 64.0f,
                        100.0f, -100.0f, INFINITY, -INFINITY, 0.0f};
static const int64_t tie_shape[1] = {12};
static const float half = 0.5f;
static const int32_t zero = 0;

static void s8_half_even_ties_saturation_inf(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const int32_t want[] = {0, 2, 0, -2, 2, 127, 127, 127, -128, 127, -128, 0};
    for (int n = 0; n < 2; n++) { /* pytorch and onnx agree when x / scale is exact */
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_ROUNDING_HALF_EVEN, (llmq_numerics)n);
        check_static(ctx, s, 1, tie_shape, tie_x, &half, &zero, want);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

static void s8_half_away_ties(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const int32_t want[] = {1, 2, -1, -2, 3, 127, 127, 127, -128, 127, -128, 0};
    for (int n = 0; n < 2; n++) {
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_ROUNDING_HALF_AWAY, (llmq_numerics)n);
        check_static(ctx, s, 1, tie_shape, tie_x, &half, &zero, want);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* scale 0.1f: 1.0f / 0.1f rounds to exactly 10, so PyTorch computes 1.55f * 10 = 15.4999995,
 * which rounds to the float 15.5 and then to even 16; ONNX divides, 1.55f / 0.1f = 15.499999
 * in float, giving 15. Likewise 2.35f (23.5 vs 23.499998) and 4.95f (49.5 vs 49.499996). */
static void pytorch_and_onnx_differ_near_ties(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[] = {1.55f, 2.35f, 4.95f, -1.55f, 0.3f};
    const int64_t shape[1] = {5};
    const float scale = 0.1f;
    static const int32_t want_pytorch[] = {16, 24, 50, -16, 3};
    static const int32_t want_onnx[] = {15, 23, 49, -15, 3};
    llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH);
    check_static(ctx, s, 1, shape, x, &scale, &zero, want_pytorch);
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, LLMQ_NUMERICS_ONNX));
    check_static(ctx, s, 1, shape, x, &scale, &zero, want_onnx);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* u8, scale 0.5, zero point 10: 0.25 -> 0.5 -> 0 + 10; -5 -> -10 + 10 = 0; -5.25 -> -10.5
 * saturates at 0; 122.25 -> 244.5 -> 244 (even) + 10; 122.75 -> 245.5 -> 246 + 10 saturates. */
static void u8_asym_zero_point_saturation(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[] = {0.25f, -5.0f, -5.25f, 122.25f, 122.75f, -INFINITY, INFINITY};
    const int64_t shape[1] = {7};
    const float scale = 0.5f;
    const int32_t zp = 10;
    static const int32_t want[] = {10, 0, 0, 254, 255, 0, 255};
    llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH);
    check_static(ctx, s, 1, shape, x, &scale, &zp, want);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* Sub-byte grids, scale 1: s4 [-8, 7], restricted s4 [-7, 7], u4 (zp 8), s2 [-2, 1],
 * u2 asym (scale 2, zp 1). Odd lengths leave a partly used last byte. */
static void sub_byte_grids(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const float one = 1.0f, two = 2.0f;
    {
        float x[] = {7.4f, 7.5f, -8.5f, -7.5f, 0.5f, 1.5f, -3.0f};
        const int64_t shape[1] = {7};
        static const int32_t full[] = {7, 7, -8, -8, 0, 2, -3};
        static const int32_t restricted[] = {7, 7, -7, -7, 0, 2, -3};
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH);
        check_static(ctx, s, 1, shape, x, &one, &zero, full);
        ASSERT_OK(ctx, llmq_scheme_set_symmetry(s, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED));
        check_static(ctx, s, 1, shape, x, &one, &zero, restricted);
        llmq_scheme_destroy(s);
    }
    {
        float x[] = {-8.2f, 7.2f, 0.5f, -0.5f, 3.0f};
        const int64_t shape[1] = {5};
        const int32_t zp = 8;
        static const int32_t want[] = {0, 15, 8, 8, 11};
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_ONNX);
        check_static(ctx, s, 1, shape, x, &one, &zp, want);
        llmq_scheme_destroy(s);
    }
    {
        float x[] = {-2.5f, 1.5f, 0.5f, -1.5f, 1.0f};
        const int64_t shape[1] = {5};
        static const int32_t want[] = {-2, 1, 0, -2, 1};
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S2, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH);
        check_static(ctx, s, 1, shape, x, &one, &zero, want);
        llmq_scheme_destroy(s);
    }
    {
        float x[] = {-2.0f, -3.0f, 4.0f, 1.0f, 3.0f, 100.0f};
        const int64_t shape[1] = {6};
        const int32_t zp = 1;
        static const int32_t want[] = {0, 0, 3, 1, 3, 3}; /* 3/2 = 1.5 -> 2 (even) + 1 */
        llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_U2, LLMQ_SYMMETRY_ASYMMETRIC,
                                     LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH);
        check_static(ctx, s, 1, shape, x, &two, &zp, want);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Granularities with explicit parameters (s8, zero points 0). */
static void granularity_layouts(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int32_t z[4] = {0, 0, 0, 0};
    { /* per channel, axis 0 of [2, 3]: row 0 scale 1, row 1 scale 0.5 */
        float x[] = {1.5f, 2.5f, -1.0f, 1.5f, 2.5f, -1.0f};
        const int64_t shape[2] = {2, 3};
        const float sc[2] = {1.0f, 0.5f};
        static const int32_t want[] = {2, 2, -1, 3, 5, -2};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
        check_static(ctx, s, 2, shape, x, sc, z, want);
        llmq_scheme_destroy(s);
    }
    { /* per channel, last axis (-1) of [2, 3]: column scales 1, 0.5, 0.25 */
        float x[] = {1, 1, 1, -1, -1, -1};
        const int64_t shape[2] = {2, 3};
        const float sc[3] = {1.0f, 0.5f, 0.25f};
        static const int32_t want[] = {1, 2, 4, -1, -2, -4};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_CHANNEL, -1, 0);
        check_static(ctx, s, 2, shape, x, sc, z, want);
        llmq_scheme_destroy(s);
    }
    { /* per channel, middle axis of [2, 3, 2]: element (a, b, c) uses scale[b] */
        float x[12];
        for (int i = 0; i < 12; i++)
            x[i] = 4.0f;
        const int64_t shape[3] = {2, 3, 2};
        const float sc[3] = {1.0f, 2.0f, 4.0f};
        static const int32_t want[] = {4, 4, 2, 2, 1, 1, 4, 4, 2, 2, 1, 1};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_CHANNEL, 1, 0);
        check_static(ctx, s, 3, shape, x, sc, z, want);
        llmq_scheme_destroy(s);
    }
    { /* per group of 2 along [2, 5]: three groups a row, the last one short */
        float x[10];
        for (int i = 0; i < 10; i++)
            x[i] = 4.0f;
        const int64_t shape[2] = {2, 5};
        const float sc[6] = {1.0f, 2.0f, 4.0f, 0.5f, 1.0f, 2.0f};
        const int32_t zz[6] = {0};
        static const int32_t want[] = {4, 4, 2, 2, 1, 8, 8, 4, 4, 2};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_GROUP, 0, 2);
        check_static(ctx, s, 2, shape, x, sc, zz, want);
        llmq_scheme_destroy(s);
    }
    { /* per token of [3, 2] */
        float x[] = {4, 4, 4, 4, 4, 4};
        const int64_t shape[2] = {3, 2};
        const float sc[3] = {1.0f, 2.0f, 4.0f};
        static const int32_t want[] = {4, 4, 2, 2, 1, 1};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
        check_static(ctx, s, 2, shape, x, sc, z, want);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Parameter tensor shapes for each granularity. */
static void parameter_shapes(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[3] = {2, 3, 7};
    static const struct {
        llmq_granularity g;
        int32_t axis;
        int64_t group;
        int32_t ndim;
        int64_t d0, d1;
    } c[] = {
        {LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 1, 1, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, 1, 2, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 1, 0, 1, 3, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0, 1, 7, 0},
        {LLMQ_GRANULARITY_PER_TOKEN, 0, 0, 1, 6, 0},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 3, 2, 6, 3}, /* 7 = 3 + 3 + 1 */
        {LLMQ_GRANULARITY_PER_GROUP, 0, 7, 2, 6, 1},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 100, 2, 6, 1},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 1, 2, 6, 7},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, c[i].g,
                                     c[i].axis, c[i].group);
        llmq_tensor *q = NULL;
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 3, shape, &q));
        const llmq_tensor *sc = llmq_tensor_scale(q), *zp = llmq_tensor_zero_point(q);
        assert_int_equal(llmq_tensor_dtype(sc), LLMQ_DTYPE_F32);
        assert_int_equal(llmq_tensor_dtype(zp), LLMQ_DTYPE_S32);
        assert_int_equal(llmq_tensor_ndim(sc), c[i].ndim);
        assert_int_equal(llmq_tensor_dim(sc, 0), c[i].d0);
        if (c[i].ndim == 2)
            assert_int_equal(llmq_tensor_dim(sc, 1), c[i].d1);
        assert_int_equal(llmq_tensor_numel(zp), llmq_tensor_numel(sc));
        /* fresh parameters: scale 1, zero point at the u4 grid's midpoint */
        assert_true(((const float *)llmq_tensor_data(sc))[0] == 1.0f);
        assert_int_equal(((const int32_t *)llmq_tensor_data(zp))[0], 8);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Dynamic parameters, worked by hand (see test_qparams.c for the formulas). */
static void dynamic_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    { /* s8 sym per tensor: scale = 2.54 / 127.5; -1 -> -50.197 -> -50; 0.5 -> 25.098 -> 25;
         2.54 -> 127.5, saturates at 127 */
        float x[] = {-1.0f, 0.5f, 2.54f};
        const int64_t shape[1] = {3};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 1, shape);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &q));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
        const float sc = *(const float *)llmq_tensor_data(llmq_tensor_scale(q));
        assert_true(sc == 0x1.46651ep-6f);
        assert_int_equal(code_at(q, 0, 0), -50);
        assert_int_equal(code_at(q, 0, 1), 25);
        assert_int_equal(code_at(q, 0, 2), 127);
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    { /* u8 asym over [-1, 3]: scale 4/255, zp = -round(-63.75) = 64; codes 0, 64, 128, 255 */
        float x[] = {-1.0f, 0.0f, 1.0f, 3.0f};
        const int64_t shape[1] = {4};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 1, shape);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &q));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
        assert_int_equal(*(const int32_t *)llmq_tensor_data(llmq_tensor_zero_point(q)), 64);
        static const int32_t want[] = {0, 64, 128, 255};
        for (int i = 0; i < 4; i++)
            assert_int_equal(code_at(q, 0, i), want[i]);
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    { /* all-zero tensor: scale FLT_EPSILON, codes at the zero point (u8 sym: 128) */
        float x[5] = {0};
        const int64_t shape[1] = {5};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 1, shape);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &q));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
        assert_true(*(const float *)llmq_tensor_data(llmq_tensor_scale(q)) == FLT_EPSILON);
        for (int i = 0; i < 5; i++)
            assert_int_equal(code_at(q, 0, i), 128);
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    { /* huge range: u8 asym over [-FLT_MAX, FLT_MAX] -> codes 0 and 255, zp 128; Inf is left
         out of the range and saturates */
        float x[] = {-FLT_MAX, FLT_MAX, 0.0f, INFINITY, -INFINITY};
        const int64_t shape[1] = {5};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 1, shape);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &q));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
        static const int32_t want[] = {0, 255, 128, 255, 0};
        for (int i = 0; i < 5; i++)
            assert_int_equal(code_at(q, 0, i), want[i]);
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    { /* per token and per group (short last group) compute one range each:
         row 0 = [1, 2 | 4], row 1 = [-8, 0 | 0.5], s8 sym, group 2 */
        float x[] = {1.0f, 2.0f, 4.0f, -8.0f, 0.0f, 0.5f};
        const int64_t shape[2] = {2, 3};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_GROUP, 0, 2);
        llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 2, shape);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
        const float *sc = llmq_tensor_data(llmq_tensor_scale(q));
        static const float want_scale[4] = {2.0f / 127.5f, 4.0f / 127.5f, 8.0f / 127.5f,
                                            0.5f / 127.5f};
        for (int i = 0; i < 4; i++)
            assert_true(sc[i] == want_scale[i]);
        /* m * (1 / (m / 127.5)) is 127.49999 in float for every group maximum m here, so the
           extremes land on +-127, never on -128 (as in PyTorch); 1 * 63.749996 -> 64 */
        static const int32_t want[] = {64, 127, 127, -127, 0, 127};
        for (int i = 0; i < 6; i++)
            assert_int_equal(code_at(q, i / 3, i % 3), want[i]);
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(q);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* NaN: static quantize and dynamic quantize both stop with the flat index; the dynamic path
 * writes no parameters. */
static void nan_is_reported_with_its_index(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[] = {0, 1, 2, 3, 4, NAN, 6, 7};
    const int64_t shape[2] = {2, 4};
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_tensor *q = NULL, *src = test_wrap_f32(ctx, x, 2, shape);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    ASSERT_FAILS(ctx, llmq_quantize(ctx, src, q), LLMQ_ERR_NON_FINITE,
                 "llmq_quantize: src[5]=nan");
    ASSERT_FAILS(ctx, llmq_quantize_dynamic(ctx, src, q), LLMQ_ERR_NON_FINITE,
                 "llmq_quantize_dynamic: src[5]=nan");
    const float *sc = llmq_tensor_data(llmq_tensor_scale(q));
    assert_true(sc[0] == 1.0f && sc[1] == 1.0f);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(q);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* f16 and bf16 inputs: 1.5, 2.5, -0.5 (ties at scale 1), +Inf, then a NaN. */
static void half_precision_inputs(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const uint16_t f16[] = {0x3e00, 0x4100, 0xb800, 0x7c00, 0x7e00};
    static const uint16_t bf16[] = {0x3fc0, 0x4020, 0xbf00, 0x7f80, 0x7fc0};
    const uint16_t *inputs[2] = {f16, bf16};
    const llmq_dtype dtypes[2] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const int32_t want[] = {2, 2, 0, 127};
    for (int k = 0; k < 2; k++) {
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        const int64_t shape4[1] = {4}, shape5[1] = {5};
        llmq_tensor *src = NULL, *src5 = NULL, *q = NULL, *q5 = NULL;
        ASSERT_OK(ctx, llmq_tensor_wrap(ctx, dtypes[k], 1, shape4, (void *)inputs[k], 0, &src));
        ASSERT_OK(ctx, llmq_tensor_wrap(ctx, dtypes[k], 1, shape5, (void *)inputs[k], 0, &src5));
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape4, &q));
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape5, &q5));
        ASSERT_OK(ctx, llmq_quantize(ctx, src, q));
        for (int i = 0; i < 4; i++)
            assert_int_equal(code_at(q, 0, i), want[i]);
        ASSERT_FAILS(ctx, llmq_quantize(ctx, src5, q5), LLMQ_ERR_NON_FINITE, "src[4]=nan");
        llmq_tensor_destroy(src);
        llmq_tensor_destroy(src5);
        llmq_tensor_destroy(q);
        llmq_tensor_destroy(q5);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Dequantize: (q - zp) * scale, rounded to the output dtype. */
static void dequantize_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    { /* s8, scale 0.5: -128, 0, 127 -> -64, 0, 63.5 in f32, f16 (0xd400, 0, 0x53f0), bf16 */
        const int64_t shape[1] = {3};
        int8_t codes[3] = {-128, 0, 127};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *f = NULL, *h = NULL, *b = NULL;
        ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 1, shape, codes, 0, &q));
        ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, q, s));
        *(float *)llmq_tensor_data(llmq_tensor_scale(q)) = 0.5f;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, shape, &f));
        ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F16, 1, shape, &h));
        ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_BF16, 1, shape, &b));
        ASSERT_OK(ctx, llmq_dequantize(ctx, q, f));
        ASSERT_OK(ctx, llmq_dequantize(ctx, q, h));
        ASSERT_OK(ctx, llmq_dequantize(ctx, q, b));
        const float *fv = llmq_tensor_data(f);
        const uint16_t *hv = llmq_tensor_data(h), *bv = llmq_tensor_data(b);
        assert_true(fv[0] == -64.0f && fv[1] == 0.0f && fv[2] == 63.5f);
        assert_int_equal(hv[0], 0xd400);
        assert_int_equal(hv[1], 0x0000);
        assert_int_equal(hv[2], 0x53f0);
        assert_int_equal(bv[0], 0xc280);
        assert_int_equal(bv[2], 0x427e);
        llmq_tensor_destroy(q);
        llmq_tensor_destroy(f);
        llmq_tensor_destroy(h);
        llmq_tensor_destroy(b);
        llmq_scheme_destroy(s);
    }
    { /* u4 asym, scale 0.25, zp 3: packed bytes 0x30, 0xf1 hold codes 0, 3, 1, 15 ->
         -0.75, 0, -0.5, 3 */
        const int64_t shape[1] = {4};
        uint8_t bytes[2] = {0x30, 0xf1};
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                     LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
        llmq_tensor *q = NULL, *f = NULL;
        ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_U4, 1, shape, bytes, 0, &q));
        ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, q, s));
        *(float *)llmq_tensor_data(llmq_tensor_scale(q)) = 0.25f;
        *(int32_t *)llmq_tensor_data(llmq_tensor_zero_point(q)) = 3;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, shape, &f));
        ASSERT_OK(ctx, llmq_dequantize(ctx, q, f));
        const float *fv = llmq_tensor_data(f);
        assert_true(fv[0] == -0.75f && fv[1] == 0.0f && fv[2] == -0.5f && fv[3] == 3.0f);
        llmq_tensor_destroy(q);
        llmq_tensor_destroy(f);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Stochastic rounding: reproducible for a seed, different across seeds, unbiased. */
static void stochastic_rounding(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    enum { N = 100000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = 0.3f;
    const int64_t shape[1] = {N};
    llmq_scheme *s = scheme_with(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_ROUNDING_STOCHASTIC, LLMQ_NUMERICS_PYTORCH);
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, 42));
    llmq_tensor *src = test_wrap_f32(ctx, x, 1, shape), *a = NULL, *b = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &a));
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &b));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, a)); /* scale 1, zp 0 by default */
    ASSERT_OK(ctx, llmq_quantize(ctx, src, b));
    assert_memory_equal(llmq_tensor_data(a), llmq_tensor_data(b), N);
    long ones = 0;
    for (int i = 0; i < N; i++) {
        const int32_t c = code_at(a, 0, i);
        assert_true(c == 0 || c == 1);
        ones += c;
    }
    /* mean 0.3, standard error sqrt(0.21 / N) = 0.00145: allow 5 of them */
    assert_true(fabs((double)ones / N - 0.3) < 0.0073);
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, 43));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, b, s));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, b));
    assert_true(memcmp(llmq_tensor_data(a), llmq_tensor_data(b), N) != 0);
    /* integers stay exact */
    float ints[3] = {-2.0f, 0.0f, 5.0f};
    const int64_t shape3[1] = {3};
    llmq_tensor *isrc = test_wrap_f32(ctx, ints, 1, shape3), *iq = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape3, &iq));
    ASSERT_OK(ctx, llmq_quantize(ctx, isrc, iq));
    assert_int_equal(code_at(iq, 0, 0), -2);
    assert_int_equal(code_at(iq, 0, 1), 0);
    assert_int_equal(code_at(iq, 0, 2), 5);
    llmq_tensor_destroy(isrc);
    llmq_tensor_destroy(iq);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s8_half_even_ties_saturation_inf),
        cmocka_unit_test(s8_half_away_ties),
        cmocka_unit_test(pytorch_and_onnx_differ_near_ties),
        cmocka_unit_test(u8_asym_zero_point_saturation),
        cmocka_unit_test(sub_byte_grids),
        cmocka_unit_test(granularity_layouts),
        cmocka_unit_test(parameter_shapes),
        cmocka_unit_test(dynamic_golden),
        cmocka_unit_test(nan_is_reported_with_its_index),
        cmocka_unit_test(half_precision_inputs),
        cmocka_unit_test(dequantize_golden),
        cmocka_unit_test(stochastic_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
