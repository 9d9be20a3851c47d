/* test_quantizer.c - the quantizer handle: every function misused (NULLs, unknown values, wrong
 * order, shapes that disagree, NaN), settings and their bounds, static calibration feeding
 * llmq_quantize / llmq_dequantize, static against dynamic, out-of-memory torture.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib_testing.h"

static void names_and_bounds(void **state)
{
    (void)state;
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_MINMAX), "minmax");
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_MOVING_AVERAGE), "moving_average");
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_PERCENTILE), "percentile");
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_ENTROPY), "entropy");
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_HISTOGRAM_L2), "histogram_l2");
    assert_string_equal(llmq_observer_name(LLMQ_OBSERVER_MSE), "mse");
    assert_string_equal(llmq_observer_name((llmq_observer)6), "unknown");
    assert_string_equal(llmq_observer_name((llmq_observer)-1), "unknown");
    double lo, hi;
    assert_int_equal(llmq_observer_param_bounds(LLMQ_OBSERVER_PERCENTILE,
                                                LLMQ_OBSERVER_PARAM_PERCENTILE, &lo, &hi),
                     LLMQ_OK);
    assert_true(lo == 50.0 && hi == 100.0);
    assert_int_equal(
        llmq_observer_param_bounds(LLMQ_OBSERVER_ENTROPY, LLMQ_OBSERVER_PARAM_BINS, &lo, &hi),
        LLMQ_OK);
    assert_true(lo == 16.0 && hi == 1048576.0);
    assert_int_equal(
        llmq_observer_param_bounds(LLMQ_OBSERVER_MINMAX, LLMQ_OBSERVER_PARAM_BINS, &lo, &hi),
        LLMQ_ERR_INVALID_ARG);
    assert_int_equal(
        llmq_observer_param_bounds(LLMQ_OBSERVER_MSE, (llmq_observer_param)9, &lo, &hi),
        LLMQ_ERR_INVALID_ARG);
    assert_int_equal(
        llmq_observer_param_bounds((llmq_observer)8, LLMQ_OBSERVER_PARAM_BINS, &lo, &hi),
        LLMQ_ERR_INVALID_ARG);
    assert_int_equal(
        llmq_observer_param_bounds(LLMQ_OBSERVER_MSE, LLMQ_OBSERVER_PARAM_GRID, NULL, &hi),
        LLMQ_ERR_INVALID_ARG);
}

static void create_misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_quantizer *q = (llmq_quantizer *)&q;
    assert_int_equal(llmq_quantizer_create(NULL, s, LLMQ_OBSERVER_MINMAX, &q),
                     LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MINMAX, NULL),
                 LLMQ_ERR_INVALID_ARG, "llmq_quantizer_create: out=NULL");
    ASSERT_FAILS(ctx, llmq_quantizer_create(ctx, NULL, LLMQ_OBSERVER_MINMAX, &q),
                 LLMQ_ERR_INVALID_ARG, "scheme=NULL");
    assert_null(q); /* outputs are NULL on failure */
    ASSERT_FAILS(ctx, llmq_quantizer_create(ctx, s, (llmq_observer)17, &q), LLMQ_ERR_INVALID_ARG,
                 "observer=17: unknown observer");
    ASSERT_OK(ctx, llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_TOKEN));
    ASSERT_FAILS(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MINMAX, &q), LLMQ_ERR_INVALID_ARG,
                 "scheme=per_token: per-token parameters exist only at "
                 "run time");
    ASSERT_OK(ctx, llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_GROUP));
    ASSERT_FAILS(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MINMAX, &q), LLMQ_ERR_INVALID_ARG,
                 "group_size is unset");
    assert_null(q);
    llmq_quantizer_destroy(NULL);
    /* the quantizer keeps its own copy of the scheme */
    ASSERT_OK(ctx, llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_CHANNEL));
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MSE, &q));
    llmq_scheme_destroy(s);
    assert_int_equal(llmq_scheme_granularity(llmq_quantizer_scheme(q)),
                     LLMQ_GRANULARITY_PER_CHANNEL);
    assert_int_equal(llmq_quantizer_observer(q), LLMQ_OBSERVER_MSE);
    llmq_quantizer_destroy(q);
    /* a context whose creation failed refuses work */
    llmq_context *dead = NULL;
    assert_int_equal(llmq_context_create(&dead, "gpu"), LLMQ_ERR_INVALID_ARG);
    s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    assert_int_equal(llmq_quantizer_create(dead, s, LLMQ_OBSERVER_MINMAX, &q), LLMQ_ERR_STATE);
    llmq_context_destroy(dead);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

static void settings(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const struct {
        llmq_observer obs;
        llmq_observer_param key;
        double def;
    } defaults[] = {
        {LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_OBSERVER_PARAM_MOMENTUM, 0.01},
        {LLMQ_OBSERVER_PERCENTILE, LLMQ_OBSERVER_PARAM_PERCENTILE, 99.99},
        {LLMQ_OBSERVER_PERCENTILE, LLMQ_OBSERVER_PARAM_BINS, 2048},
        {LLMQ_OBSERVER_ENTROPY, LLMQ_OBSERVER_PARAM_BINS, 2048},
        {LLMQ_OBSERVER_HISTOGRAM_L2, LLMQ_OBSERVER_PARAM_UPSAMPLE, 16},
        {LLMQ_OBSERVER_MSE, LLMQ_OBSERVER_PARAM_GRID, 100},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        llmq_quantizer *q =
            calib_quantizer(ctx, defaults[i].obs, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                            LLMQ_GRANULARITY_PER_TENSOR, 0);
        double v = -1;
        ASSERT_OK(ctx, llmq_quantizer_get_param(q, defaults[i].key, &v));
        assert_true(v == defaults[i].def);
        llmq_quantizer_destroy(q);
    }
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_ENTROPY, LLMQ_DTYPE_U8,
                                        LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0);
    double v;
    assert_int_equal(llmq_quantizer_set_param(NULL, LLMQ_OBSERVER_PARAM_BINS, 512),
                     LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_quantizer_get_param(NULL, LLMQ_OBSERVER_PARAM_BINS, &v),
                     LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_BINS, NULL),
                 LLMQ_ERR_INVALID_ARG, "value=NULL");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, (llmq_observer_param)42, 1), LLMQ_ERR_INVALID_ARG,
                 "llmq_quantizer_set_param: key=42: unknown");
    ASSERT_FAILS(ctx, llmq_quantizer_get_param(q, (llmq_observer_param)-2, &v),
                 LLMQ_ERR_INVALID_ARG, "key=-2");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 0.1),
                 LLMQ_ERR_INVALID_ARG, "key=momentum: not a setting of the entropy observer");
    ASSERT_FAILS(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_GRID, &v),
                 LLMQ_ERR_INVALID_ARG, "key=grid: not a setting");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 8),
                 LLMQ_ERR_INVALID_ARG, "bins=8: must be in [16, 1.04858e+06]");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 1000.5),
                 LLMQ_ERR_INVALID_ARG, "bins=1000.5: must be an integer");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, NAN),
                 LLMQ_ERR_INVALID_ARG, "bins=nan");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 256),
                 LLMQ_ERR_INVALID_ARG,
                 "bins=256: the entropy search needs more bins than the "
                 "u8 grid's 256 codes");
    ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 257));
    ASSERT_OK(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_BINS, &v));
    assert_true(v == 257);
    float x[4] = {1, 2, 3, 4};
    calib_observe_1d(ctx, q, x, 4);
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_BINS, 1024), LLMQ_ERR_STATE,
                 "key=bins: settings are fixed once a batch has been observed");
    llmq_quantizer_destroy(q);
    q = calib_quantizer(ctx, LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                        LLMQ_GRANULARITY_PER_TENSOR, 0);
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 0.0),
                 LLMQ_ERR_INVALID_ARG, "momentum=0: must be in");
    ASSERT_FAILS(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 1.5),
                 LLMQ_ERR_INVALID_ARG, "momentum=1.5");
    ASSERT_OK(ctx, llmq_quantizer_set_param(q, LLMQ_OBSERVER_PARAM_MOMENTUM, 1.0));
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

static void observe_finalize_apply_misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_PERCENTILE, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 1);
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const int64_t shape[2] = {3, 4}, fewer_rows[2] = {2, 4}, other[2] = {3, 3};
    const int64_t shape3[3] = {1, 3, 4};
    llmq_tensor *t = test_wrap_f32(ctx, x, 2, shape);
    assert_int_equal(llmq_quantizer_observe(NULL, q, t), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_quantizer_observe(ctx, NULL, t), LLMQ_ERR_INVALID_ARG, "q=NULL");
    ASSERT_FAILS(ctx, llmq_quantizer_observe(ctx, q, NULL), LLMQ_ERR_INVALID_ARG, "x=NULL");
    llmq_tensor *codes = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &codes));
    ASSERT_FAILS(ctx, llmq_quantizer_observe(ctx, q, codes), LLMQ_ERR_INVALID_ARG,
                 "x=s8 tensor: must be f32, f16 or bf16");
    /* finalize and apply before any data */
    ASSERT_FAILS(ctx, llmq_quantizer_finalize(ctx, q), LLMQ_ERR_STATE,
                 "llmq_quantizer_finalize: q=percentile quantizer: no batch observed");
    ASSERT_FAILS(ctx, llmq_quantizer_apply(ctx, q, codes), LLMQ_ERR_STATE, "not finalized");
    assert_null(llmq_quantizer_scale(q));
    assert_null(llmq_quantizer_zero_point(q));
    assert_null(llmq_quantizer_range(q));
    /* an axis the first batch does not have */
    llmq_quantizer *q3 = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S8,
                                         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 2);
    ASSERT_FAILS(ctx, calib_observe(ctx, q3, x, 2, shape), LLMQ_ERR_INVALID_ARG,
                 "axis=2: out of range for a 2-dimensional tensor");
    assert_int_equal(llmq_quantizer_batch_count(q3), 0);
    llmq_quantizer_destroy(q3);

    ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, t));
    /* per channel on axis 1: the first dimension may vary, the channel count may not */
    ASSERT_OK(ctx, calib_observe(ctx, q, x, 2, fewer_rows));
    ASSERT_FAILS(ctx, calib_observe(ctx, q, x, 2, other), LLMQ_ERR_INVALID_ARG,
                 "llmq_quantizer_observe: x=[3, 3]: shape differs from the first batch [3, 4] "
                 "at dimension 1");
    ASSERT_FAILS(ctx, calib_observe(ctx, q, x, 3, shape3), LLMQ_ERR_INVALID_ARG,
                 "x=[1, 3, 4]: 3 dimensions, the first batch [3, 4] had 2");
    /* NaN: named with the batch and the flat index; the statistics are unchanged */
    x[6] = NAN;
    ASSERT_FAILS(ctx, llmq_quantizer_observe(ctx, q, t), LLMQ_ERR_NON_FINITE,
                 "llmq_quantizer_observe: x[6]=nan: in batch 2 (counting from 0)");
    x[6] = 7;
    assert_int_equal(llmq_quantizer_batch_count(q), 2);
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    ASSERT_FAILS(ctx, llmq_quantizer_finalize(ctx, q), LLMQ_ERR_STATE, "already finalized");
    ASSERT_FAILS(ctx, llmq_quantizer_observe(ctx, q, t), LLMQ_ERR_STATE,
                 "q=percentile quantizer: already finalized");
    assert_int_equal(llmq_tensor_dim(llmq_quantizer_scale(q), 0), 4);
    assert_int_equal(llmq_tensor_dim(llmq_quantizer_range(q), 1), 2);
    /* apply: dtype, then the parameter layout */
    llmq_tensor *u8 = NULL, *narrow = NULL, *wide = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U8, 2, shape, &u8));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, other, &narrow));
    const int64_t rows5[2] = {5, 4};
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, rows5, &wide));
    assert_int_equal(llmq_quantizer_apply(NULL, q, codes), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_quantizer_apply(ctx, NULL, codes), LLMQ_ERR_INVALID_ARG, "q=NULL");
    ASSERT_FAILS(ctx, llmq_quantizer_apply(ctx, q, NULL), LLMQ_ERR_INVALID_ARG, "dst=NULL");
    ASSERT_FAILS(ctx, llmq_quantizer_apply(ctx, q, u8), LLMQ_ERR_INVALID_ARG,
                 "dst=u8 tensor: the parameters are for s8 tensors");
    ASSERT_FAILS(ctx, llmq_quantizer_apply(ctx, q, narrow), LLMQ_ERR_INVALID_ARG,
                 "llmq_quantizer_apply: dst=[3, 3]: needs parameters shaped [3], these are "
                 "shaped [4]");
    assert_null(llmq_tensor_scheme(narrow));            /* untouched */
    ASSERT_OK(ctx, llmq_quantizer_apply(ctx, q, wide)); /* more rows, same channels */
    ASSERT_OK(ctx, llmq_quantizer_apply(ctx, q, codes));
    assert_memory_equal(llmq_tensor_data(llmq_tensor_scale(codes)), calib_scale(q),
                        4 * sizeof(float));
    /* getters on NULL */
    assert_null(llmq_quantizer_scheme(NULL));
    assert_null(llmq_quantizer_scale(NULL));
    assert_null(llmq_quantizer_zero_point(NULL));
    assert_null(llmq_quantizer_range(NULL));
    assert_int_equal(llmq_quantizer_batch_count(NULL), 0);
    assert_int_equal(llmq_quantizer_observer(NULL), LLMQ_OBSERVER_MINMAX);
    llmq_tensor_destroy(u8);
    llmq_tensor_destroy(narrow);
    llmq_tensor_destroy(wide);
    llmq_tensor_destroy(codes);
    llmq_tensor_destroy(t);
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

static void axis_zero_fixes_first_dimension_and_infinities(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[8] = {1, -2, INFINITY, 4, -INFINITY, 6, 7, 8};
    const int64_t shape[2] = {2, 4}, more[2] = {3, 4};
    llmq_quantizer *q = calib_quantizer(ctx, LLMQ_OBSERVER_MINMAX, LLMQ_DTYPE_S8,
                                        LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0);
    ASSERT_OK(ctx, calib_observe(ctx, q, x, 2, shape));
    float y[12] = {0};
    ASSERT_FAILS(ctx, calib_observe(ctx, q, y, 2, more), LLMQ_ERR_INVALID_ARG, "at dimension 0");
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    /* infinities are skipped: row 0 is [-2, 4], row 1 [6, 8] */
    assert_true(calib_range(q)[0] == -2.0f && calib_range(q)[1] == 4.0f);
    assert_true(calib_range(q)[2] == 6.0f && calib_range(q)[3] == 8.0f);
    llmq_quantizer_destroy(q);
    /* a channel that only ever saw infinities has no range */
    float z[4] = {INFINITY, -INFINITY, 1, 2};
    const int64_t two[2] = {2, 2};
    q = calib_quantizer(ctx, LLMQ_OBSERVER_ENTROPY, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                        LLMQ_GRANULARITY_PER_CHANNEL, 0);
    ASSERT_OK(ctx, calib_observe(ctx, q, z, 2, two));
    ASSERT_FAILS(ctx, llmq_quantizer_finalize(ctx, q), LLMQ_ERR_STATE,
                 "q=entropy quantizer: channel 0 saw no finite value in 1 batches");
    llmq_quantizer_destroy(q);
    llmq_context_destroy(ctx);
}

/* Static calibration with min/max over one batch gives exactly the parameters of dynamic
 * quantization of that batch, and the same codes. */
static void static_matches_dynamic_on_the_calibration_batch(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {8, 40};
    float x[320];
    test_rng rng = {8};
    for (int i = 0; i < 320; i++)
        x[i] = test_rng_range(&rng, -3.0f, 7.0f);
    llmq_tensor *src = test_wrap_f32(ctx, x, 2, shape);
    const struct {
        llmq_dtype dt;
        llmq_symmetry sym;
        llmq_granularity gran;
        int32_t axis;
        int64_t group;
    } cases[] = {
        {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0},
        {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
        {LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, LLMQ_GRANULARITY_PER_CHANNEL, 1, 0},
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 0, 16},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        llmq_scheme *s = test_scheme(ctx, cases[c].dt, cases[c].sym, cases[c].gran, cases[c].axis,
                                     cases[c].group);
        llmq_quantizer *q = NULL;
        llmq_tensor *stat = NULL, *dyn = NULL;
        ASSERT_OK(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MINMAX, &q));
        ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, src));
        ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
        ASSERT_OK(ctx, llmq_tensor_create(ctx, cases[c].dt, 2, shape, &stat));
        ASSERT_OK(ctx, llmq_quantizer_apply(ctx, q, stat));
        ASSERT_OK(ctx, llmq_quantize(ctx, src, stat));
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &dyn));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, dyn));
        const int64_t n = llmq_tensor_numel(llmq_tensor_scale(dyn));
        assert_memory_equal(llmq_tensor_data(llmq_tensor_scale(stat)),
                            llmq_tensor_data(llmq_tensor_scale(dyn)), (size_t)n * sizeof(float));
        assert_memory_equal(llmq_tensor_data(llmq_tensor_zero_point(stat)),
                            llmq_tensor_data(llmq_tensor_zero_point(dyn)),
                            (size_t)n * sizeof(int32_t));
        assert_memory_equal(llmq_tensor_data(stat), llmq_tensor_data(dyn), llmq_tensor_nbytes(dyn));
        llmq_tensor_destroy(stat);
        llmq_tensor_destroy(dyn);
        llmq_quantizer_destroy(q);
        llmq_scheme_destroy(s);
    }
    llmq_tensor_destroy(src);
    llmq_context_destroy(ctx);
}

/* Fail allocation n for n = 0, 1, ... through create, observe, finalize, apply and quantize:
 * each failure is LLMQ_ERR_OUT_OF_MEMORY, nothing leaks, the quantizer stays usable. */
static void out_of_memory_torture(void **state)
{
    (void)state;
    for (llmq_observer obs = LLMQ_OBSERVER_MINMAX; obs <= LLMQ_OBSERVER_MSE; obs++) {
        int succeeded = 0;
        for (long n = 0; n < 200 && !succeeded; n++) {
            test_allocator fa = {.fail_at = n};
            llmq_context_options o;
            ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
            o.allocator = test_allocator_of(&fa);
            llmq_context *ctx = NULL;
            llmq_scheme *s = NULL;
            llmq_quantizer *q = NULL;
            llmq_tensor *x = NULL, *codes = NULL;
            float data[24];
            for (int i = 0; i < 24; i++)
                data[i] = (float)(i * 5 % 7) - 3.0f;
            const int64_t shape[2] = {4, 6};
            llmq_status st = llmq_context_create_with_options(&ctx, &o);
            if (st == LLMQ_OK) st = llmq_scheme_create(ctx, LLMQ_DTYPE_S4, &s);
            if (st == LLMQ_OK) st = llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_CHANNEL);
            if (st == LLMQ_OK) st = llmq_quantizer_create(ctx, s, obs, &q);
            if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, data, 0, &x);
            if (st == LLMQ_OK) st = llmq_quantizer_observe(ctx, q, x);
            if (st == LLMQ_OK) st = llmq_quantizer_finalize(ctx, q);
            if (st == LLMQ_OK) st = llmq_tensor_create(ctx, LLMQ_DTYPE_S4, 2, shape, &codes);
            if (st == LLMQ_OK) st = llmq_quantizer_apply(ctx, q, codes);
            if (st == LLMQ_OK) st = llmq_quantize(ctx, x, codes);
            if (st == LLMQ_OK)
                succeeded = 1;
            else
                assert_int_equal(st, LLMQ_ERR_OUT_OF_MEMORY);
            if (st != LLMQ_OK && ctx != NULL)
                assert_non_null(strstr(llmq_context_last_error(ctx), "allocation failed"));
            llmq_tensor_destroy(codes);
            llmq_tensor_destroy(x);
            llmq_quantizer_destroy(q);
            llmq_scheme_destroy(s);
            llmq_context_destroy(ctx);
            assert_int_equal(fa.live, 0);
        }
        assert_true(succeeded);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_bounds),
        cmocka_unit_test(create_misuse),
        cmocka_unit_test(settings),
        cmocka_unit_test(observe_finalize_apply_misuse),
        cmocka_unit_test(axis_zero_fixes_first_dimension_and_infinities),
        cmocka_unit_test(static_matches_dynamic_on_the_calibration_batch),
        cmocka_unit_test(out_of_memory_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
