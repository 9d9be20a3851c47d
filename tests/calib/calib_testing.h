/* calib_testing.h - helpers of the calibration tests: a quantizer in one call, observing
 * float arrays, reading results. SPDX-License-Identifier: MIT */
#ifndef LLMQ_CALIB_TESTING_H
#define LLMQ_CALIB_TESTING_H

#include "testing.h"

/* A quantizer of a fresh scheme (fails the test on error). */
static inline llmq_quantizer *calib_quantizer(llmq_context *ctx, llmq_observer obs,
                                              llmq_dtype dtype, llmq_symmetry sym,
                                              llmq_granularity gran, int32_t axis)
{
    llmq_scheme *s = test_scheme(ctx, dtype, sym, gran, axis, 0);
    llmq_quantizer *q = NULL;
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, s, obs, &q));
    llmq_scheme_destroy(s);
    return q;
}

/* Observe n floats as a tensor of the given shape. */
static inline llmq_status calib_observe(llmq_context *ctx, llmq_quantizer *q, float *data,
                                        int32_t ndim, const int64_t *shape)
{
    llmq_tensor *x = test_wrap_f32(ctx, data, ndim, shape);
    const llmq_status st = llmq_quantizer_observe(ctx, q, x);
    llmq_tensor_destroy(x);
    return st;
}

/* Observe a 1-D batch. */
static inline void calib_observe_1d(llmq_context *ctx, llmq_quantizer *q, float *data, int64_t n)
{
    ASSERT_OK(ctx, calib_observe(ctx, q, data, 1, &n));
}

static inline const float *calib_range(const llmq_quantizer *q)
{
    return llmq_tensor_data(llmq_quantizer_range(q));
}

static inline const float *calib_scale(const llmq_quantizer *q)
{
    return llmq_tensor_data(llmq_quantizer_scale(q));
}

static inline const int32_t *calib_zero_point(const llmq_quantizer *q)
{
    return llmq_tensor_data(llmq_quantizer_zero_point(q));
}

#endif
