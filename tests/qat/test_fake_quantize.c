/* test_fake_quantize.c - the fake-quant forward: bit-exact against the scalar reference
 * dequantize(quantize(x)) over dtypes, symmetries, granularities, rounding and numerics modes
 * and custom ranges; golden values worked out by hand; float zero points rounded and clamped;
 * f16 / bf16; in place; ±Inf and NaN; every CPU tier of this build against the scalar one.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "testing.h"

static const llmq_dtype qdtypes[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                     LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};

static const test_gran grans[] = {
    {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},   {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
    {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0}, {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
    {LLMQ_GRANULARITY_PER_GROUP, 0, 1},    {LLMQ_GRANULARITY_PER_GROUP, 0, 5},
    {LLMQ_GRANULARITY_PER_GROUP, 0, 96},
};

static void fill(test_rng *rng, float *x, int64_t n)
{
    const float mag = powf(10.0f, test_rng_range(rng, -2.0f, 2.0f));
    for (int64_t i = 0; i < n; i++)
        x[i] = test_rng_range(rng, -mag, mag);
}

static int64_t numel(const int64_t *shape, int32_t ndim)
{
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* llmq_fake_quantize with the parameters of a dynamically quantized tensor (scale narrowed to
 * provoke clipping now and then) equals llmq_dequantize(llmq_quantize(x)), bit for bit. */
static void check_against_quantize(llmq_context *ctx, test_rng *rng, llmq_scheme *s, int32_t ndim,
                                   const int64_t *shape, bool float_zp)
{
    const int64_t n = numel(shape, ndim);
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n),
          *ref = malloc(sizeof(float) * (size_t)n);
    fill(rng, x, n);
    llmq_tensor *tx = test_wrap_f32(ctx, x, ndim, shape), *ty = test_wrap_f32(ctx, y, ndim, shape),
                *tref = test_wrap_f32(ctx, ref, ndim, shape), *q = NULL, *fzp = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, ndim, shape, &q));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, tx, q));
    llmq_tensor *scale = llmq_tensor_scale(q), *zp = llmq_tensor_zero_point(q);
    float *sc = llmq_tensor_data(scale);
    for (int64_t i = 0; i < llmq_tensor_numel(scale); i++)
        if (test_rng_next(rng) % 3 == 0)
            sc[i] *= 0.75f; /* some elements now fall off the grid and clip */
    ASSERT_OK(ctx, llmq_quantize(ctx, tx, q));
    ASSERT_OK(ctx, llmq_dequantize(ctx, q, tref));
    llmq_tensor *zarg = zp;
    if (float_zp) { /* the same zero points as floats off by < 0.5: they round back */
        fzp = test_tensor_like(ctx, zp, LLMQ_DTYPE_F32);
        const int32_t *zi = llmq_tensor_data(zp);
        float *zf = llmq_tensor_data(fzp);
        for (int64_t i = 0; i < llmq_tensor_numel(zp); i++)
            zf[i] = (float)zi[i] + test_rng_range(rng, -0.49f, 0.49f);
        zarg = fzp;
    }
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, scale, zarg, ty));
    if (memcmp(y, ref, sizeof(float) * (size_t)n) != 0)
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&y[i], &ref[i], sizeof(float)) != 0)
                fail_msg("%s gran=%d elem %lld: fake %a, dequant(quant) %a (x=%a)",
                         llmq_dtype_name(llmq_scheme_dtype(s)), (int)llmq_scheme_granularity(s),
                         (long long)i, (double)y[i], (double)ref[i], (double)x[i]);
    TEST_DESTROY(fzp, q, tx, ty, tref);
    free(x);
    free(y);
    free(ref);
}

static void bit_exact_against_quantize_dequantize(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {42};
    const int64_t shapes[][2] = {{1, 1}, {3, 17}, {2, 300}, {17, 3}};
    for (size_t d = 0; d < sizeof qdtypes / sizeof qdtypes[0]; d++)
        for (int sym = 0; sym < 3; sym++)
            for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g++)
                for (int mode = 0; mode < 6; mode++) { /* rounding x numerics */
                    llmq_scheme *s = test_scheme(ctx, qdtypes[d], (llmq_symmetry)sym, grans[g].g,
                                                 grans[g].axis, grans[g].group);
                    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, (llmq_rounding)(mode % 3)));
                    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, (llmq_numerics)(mode / 3)));
                    ASSERT_OK(ctx, llmq_scheme_set_seed(s, (uint64_t)mode + 5));
                    const int64_t *shape = shapes[test_rng_next(&rng) % 4];
                    check_against_quantize(ctx, &rng, s, 2, shape, mode % 2 == 1);
                    llmq_scheme_destroy(s);
                }
    /* 3-D, channel on the middle axis */
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_CHANNEL, 1, 0);
    check_against_quantize(ctx, &rng, s, 3, (const int64_t[]){2, 5, 7}, true);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* Custom ranges: 2..8 bits inside the dtypes' grids. */
static void bit_exact_with_custom_ranges(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {7};
    const struct {
        llmq_dtype dt;
        int32_t qmin, qmax;
    } ranges[] = {
        {LLMQ_DTYPE_S8, -64, 63}, {LLMQ_DTYPE_S8, -16, 15}, {LLMQ_DTYPE_S4, -4, 3},
        {LLMQ_DTYPE_S8, -2, 1},   {LLMQ_DTYPE_U8, 0, 127},  {LLMQ_DTYPE_U8, 0, 15},
        {LLMQ_DTYPE_U4, 0, 7},    {LLMQ_DTYPE_U8, 3, 200},  {LLMQ_DTYPE_S8, -127, 127},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
        for (int sym = 0; sym < 3; sym++)
            for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g += 2) {
                llmq_scheme *s = test_scheme(ctx, ranges[r].dt, (llmq_symmetry)sym, grans[g].g,
                                             grans[g].axis, grans[g].group);
                ASSERT_OK(ctx, llmq_scheme_set_range(s, ranges[r].qmin, ranges[r].qmax));
                check_against_quantize(ctx, &rng, s, 2, (const int64_t[]){4, 33}, sym == 2);
                llmq_scheme_destroy(s);
            }
    llmq_context_destroy(ctx);
}

/* u8 asymmetric, scale 0.25, zero point 10 (grid [0, 255]): codes by hand. */
static void golden_values(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[] = {1.0f,   0.125f,  0.375f,   -2.5f,    -2.625f,  -2.75f,
                 61.25f, 61.375f, 61.3125f, INFINITY, -INFINITY};
    /* x / 0.25 = 4, 0.5 (even: 0), 1.5 (even: 2), -10, -10.5 (even: -10), -11 (code -1:
     * clipped to 0), 245, 245.5 (even: 246, code 256: clipped), 245.25, +Inf, -Inf */
    const float want[] = {1.0f,   0.0f,   0.5f,   -2.5f,  -2.5f, -2.5f,
                          61.25f, 61.25f, 61.25f, 61.25f, -2.5f};
    /* half away from zero: 0.5 -> 1, 1.5 -> 2, -10.5 -> -11 (clipped), 245.5 -> 246 */
    const float want_away[] = {1.0f,   0.25f,  0.5f,   -2.5f,  -2.5f, -2.5f,
                               61.25f, 61.25f, 61.25f, 61.25f, -2.5f};
    const int64_t shape[1] = {11};
    float y[11];
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *ty = test_wrap_f32(ctx, y, 1, shape);
    float sv = 0.25f, zf = 10.0f;
    int32_t zv = 10;
    llmq_tensor *sc = test_wrap_f32(ctx, &sv, 1, (const int64_t[]){1}), *zp = NULL,
                *zpf = test_wrap_f32(ctx, &zf, 1, (const int64_t[]){1});
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, 1, (const int64_t[]){1}, &zv, 0, &zp));
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zp, ty));
    for (int i = 0; i < 11; i++)
        assert_true(y[i] == want[i]);
    /* float zero points round half to even and clamp: 9.5 -> 10, 10.5 -> 10, 10.49 -> 10 */
    const float zs[] = {9.5f, 10.5f, 10.49f, 9.51f};
    for (int k = 0; k < 4; k++) {
        zf = zs[k];
        memset(y, 0, sizeof y);
        ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zpf, ty));
        for (int i = 0; i < 11; i++)
            assert_true(y[i] == want[i]);
    }
    zf = -3.7f; /* rounds to -4, clamps to 0: the grid is [0, 255] */
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zpf, ty));
    assert_true(y[0] == 1.0f && y[3] == 0.0f && y[8] == 61.25f);
    zf = 1e9f; /* clamps to 255 */
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zpf, ty));
    assert_true(y[0] == 0.0f && y[3] == -2.5f && y[6] == 0.0f);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, LLMQ_ROUNDING_HALF_AWAY));
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zp, ty));
    for (int i = 0; i < 11; i++)
        assert_true(y[i] == want_away[i]);

    /* pytorch vs onnx numerics (docs/numerics.md): s8, scale 0.1, x = 1.55 */
    llmq_scheme *s8 =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    sv = 0.1f;
    x[0] = 1.55f;
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s8, sc, NULL, ty));
    assert_true(y[0] == 16.0f * 0.1f);
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s8, LLMQ_NUMERICS_ONNX));
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s8, sc, NULL, ty));
    assert_true(y[0] == 15.0f * 0.1f);
    /* zero_point NULL on an unsigned dtype is the midpoint: u4 8, so 8 codes below 0 */
    llmq_scheme *u4 =
        test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    sv = 1.0f;
    x[0] = -100.0f;
    x[1] = 100.0f;
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, u4, sc, NULL, ty));
    assert_true(y[0] == -8.0f && y[1] == 7.0f);
    /* a 3-bit range on s4 */
    ASSERT_OK(ctx, llmq_scheme_set_range(u4, 0, 7));
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, u4, sc, NULL, ty)); /* midpoint (0+7+1)/2 = 4 */
    assert_true(y[0] == -4.0f && y[1] == 3.0f);

    llmq_scheme_destroy(s);
    llmq_scheme_destroy(s8);
    llmq_scheme_destroy(u4);
    TEST_DESTROY(tx, ty, sc, zp, zpf);
    llmq_context_destroy(ctx);
}

/* F16 / BF16 on either side: the f32 result rounded to the output dtype, as dequantize does;
 * in place too. */
static void half_dtypes_and_in_place(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {3};
    const int64_t shape[2] = {3, 260};
    const int64_t n = 3 * 260;
    float *x = malloc(sizeof(float) * n);
    fill(&rng, x, n);
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_GROUP, 0, 32);
    const llmq_dtype fdt[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    for (int a = 0; a < 3; a++) {
        llmq_tensor *xa = NULL, *xq = NULL, *copy = NULL;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, fdt[a], 2, shape, &xa));
        ASSERT_OK(ctx, llmq_tensor_create(ctx, fdt[a], 2, shape, &copy));
        for (int64_t i = 0; i < n; i++) {
            uint16_t *h = llmq_tensor_data(xa);
            if (fdt[a] == LLMQ_DTYPE_F32)
                ((float *)llmq_tensor_data(xa))[i] = x[i];
            else
                h[i] = fdt[a] == LLMQ_DTYPE_F16 ? llmq_f32_to_f16(x[i]) : llmq_f32_to_bf16(x[i]);
        }
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &xq));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, xa, xq));
        llmq_tensor *sc = llmq_tensor_scale(xq), *zp = llmq_tensor_zero_point(xq);
        for (int b = 0; b < 3; b++) {
            llmq_tensor *y = NULL, *ref = NULL;
            ASSERT_OK(ctx, llmq_tensor_create(ctx, fdt[b], 2, shape, &y));
            ASSERT_OK(ctx, llmq_tensor_create(ctx, fdt[b], 2, shape, &ref));
            ASSERT_OK(ctx, llmq_dequantize(ctx, xq, ref));
            ASSERT_OK(ctx, llmq_fake_quantize(ctx, xa, s, sc, zp, y));
            assert_memory_equal(llmq_tensor_data(y), llmq_tensor_data(ref),
                                llmq_tensor_nbytes(ref));
            if (a == b) { /* in place: y is x itself */
                memcpy(llmq_tensor_data(copy), llmq_tensor_data(xa), llmq_tensor_nbytes(xa));
                ASSERT_OK(ctx, llmq_fake_quantize(ctx, copy, s, sc, zp, copy));
                assert_memory_equal(llmq_tensor_data(copy), llmq_tensor_data(ref),
                                    llmq_tensor_nbytes(ref));
            }
            llmq_tensor_destroy(y);
            llmq_tensor_destroy(ref);
        }
        TEST_DESTROY(xq, xa, copy);
    }
    llmq_scheme_destroy(s);
    free(x);
    llmq_context_destroy(ctx);
}

/* NaN is reported with its flat index (after a whole chunk and a group boundary). */
static void nan_is_reported_with_its_index(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {2, 300};
    float *x = calloc(600, sizeof(float)), *y = calloc(600, sizeof(float));
    x[300 + 270] = NAN;
    llmq_tensor *tx = test_wrap_f32(ctx, x, 2, shape), *ty = test_wrap_f32(ctx, y, 2, shape),
                *q = NULL;
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_GROUP, 0, 64);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, tx, s, llmq_tensor_scale(q), NULL, ty),
                 LLMQ_ERR_NON_FINITE, "llmq_fake_quantize: x[570]=nan");
    TEST_DESTROY(q, tx, ty);
    llmq_scheme_destroy(s);
    free(x);
    free(y);
    llmq_context_destroy(ctx);
}

/* Every CPU tier this build and host have gives the scalar tier's results: y and dx bit for
 * bit, the parameter gradients to float rounding (a tier may sum in another order). Today
 * only the scalar tier exists; SIMD tiers are checked here as soon as they are registered. */
static void every_cpu_tier_matches_scalar(void **state)
{
    (void)state;
    llmq_context_options o;
    ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
    o.backend = "cpu";
    o.max_isa = LLMQ_CPU_ISA_SCALAR;
    llmq_context *ref = NULL;
    ASSERT_OK(ref, llmq_context_create_with_options(&ref, &o));
    test_rng rng = {11};
    const int64_t shape[2] = {5, 1000};
    const int64_t n = 5000;
    float *x = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
    float *y0 = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n);
    float *dx0 = malloc(sizeof(float) * n), *dx1 = malloc(sizeof(float) * n);
    fill(&rng, x, n);
    fill(&rng, dy, n);
    int tiers = 0;
    for (int isa = LLMQ_CPU_ISA_SCALAR; isa <= LLMQ_CPU_ISA_AVX512; isa++) {
        o.max_isa = (llmq_cpu_isa)isa;
        llmq_context *ctx = NULL;
        ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
        if (llmq_context_cpu_isa(ctx) != (llmq_cpu_isa)isa) { /* not in this build / host */
            llmq_context_destroy(ctx);
            continue;
        }
        tiers++;
        for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g++)
            for (int mode = 0; mode < 6; mode++) {
                llmq_context *cs[2] = {ref, ctx};
                float *ys[2] = {y0, y1}, *dxs[2] = {dx0, dx1};
                llmq_tensor *ds[2] = {NULL, NULL}, *dz[2] = {NULL, NULL};
                for (int k = 0; k < 2; k++) {
                    llmq_context *c = cs[k];
                    llmq_scheme *s = test_scheme(c, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                                 grans[g].g, grans[g].axis, grans[g].group);
                    ASSERT_OK(c, llmq_scheme_set_rounding(s, (llmq_rounding)(mode % 3)));
                    ASSERT_OK(c, llmq_scheme_set_numerics(s, (llmq_numerics)(mode / 3)));
                    llmq_tensor *tx = test_wrap_f32(c, x, 2, shape), *q = NULL,
                                *ty = test_wrap_f32(c, ys[k], 2, shape),
                                *tdy = test_wrap_f32(c, dy, 2, shape),
                                *tdx = test_wrap_f32(c, dxs[k], 2, shape);
                    ASSERT_OK(c, llmq_tensor_create_quantized(c, s, 2, shape, &q));
                    ASSERT_OK(c, llmq_quantize_dynamic(c, tx, q));
                    llmq_tensor *sc = llmq_tensor_scale(q), *zp = llmq_tensor_zero_point(q);
                    const int64_t np = llmq_tensor_numel(sc);
                    ds[k] = test_tensor_like(c, sc, LLMQ_DTYPE_F32);
                    dz[k] = test_tensor_like(c, sc, LLMQ_DTYPE_F32);
                    ASSERT_OK(c, llmq_fake_quantize(c, tx, s, sc, zp, ty));
                    ASSERT_OK(c, llmq_fake_quantize_backward(c, tx, s, sc, zp, tdy, 0.5f, tdx,
                                                             ds[k], dz[k]));
                    if (k == 1) {
                        assert_memory_equal(y0, y1, sizeof(float) * n);
                        assert_memory_equal(dx0, dx1, sizeof(float) * n);
                        const float *s0 = llmq_tensor_data(ds[0]), *s1 = llmq_tensor_data(ds[1]),
                                    *z0 = llmq_tensor_data(dz[0]), *z1 = llmq_tensor_data(dz[1]);
                        for (int64_t p = 0; p < np; p++) {
                            assert_float_equal(s0[p], s1[p], 1e-5 * (1.0 + fabs(s0[p])));
                            assert_float_equal(z0[p], z1[p], 1e-5 * (1.0 + fabs(z0[p])));
                        }
                        for (int j = 0; j < 2; j++) {
                            llmq_tensor_destroy(ds[j]);
                            llmq_tensor_destroy(dz[j]);
                        }
                    }
                    TEST_DESTROY(q, tx, ty, tdy, tdx);
                    llmq_scheme_destroy(s);
                }
            }
        llmq_context_destroy(ctx);
    }
    assert_true(tiers >= 1);
    free(x);
    free(dy);
    free(y0);
    free(y1);
    free(dx0);
    free(dx1);
    llmq_context_destroy(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bit_exact_against_quantize_dequantize),
        cmocka_unit_test(bit_exact_with_custom_ranges),
        cmocka_unit_test(golden_values),
        cmocka_unit_test(half_dtypes_and_in_place),
        cmocka_unit_test(nan_is_reported_with_its_index),
        cmocka_unit_test(every_cpu_tier_matches_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
