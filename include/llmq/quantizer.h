/* llmq/quantizer.h - calibration: observers and the quantizer handle (static post-training
 * quantization). SPDX-License-Identifier: MIT */
#ifndef LLMQ_QUANTIZER_H
#define LLMQ_QUANTIZER_H

#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/scheme.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Calibration for static post-training quantization: observers and the quantizer handle.
 * A quantizer is a scheme + an observer + the observer's settings. Observe any number of
 * batches (memory does not grow with their number), finalize to scale and zero-point tensors,
 * then bind them to quantized tensors with llmq_quantizer_apply() and use llmq_quantize() /
 * llmq_dequantize(). docs/calibration.md describes each observer and when to use it. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * How a quantizer turns the observed data into a clipping range [lo, hi] per parameter set;
 * the scale and zero point then follow PyTorch's rules (llmq_scheme_qparams()).
 */
typedef enum llmq_observer {
    /** running min and max (PyTorch MinMaxObserver / PerChannelMinMaxObserver) */
    LLMQ_OBSERVER_MINMAX = 0,
    /** the first batch sets min and max, then min += c * (batch_min - min), same for max
     *  (PyTorch MovingAverage[PerChannel]MinMaxObserver); c is MOMENTUM */
    LLMQ_OBSERVER_MOVING_AVERAGE = 1,
    /** the PERCENTILE-th percentile of |x| (symmetric schemes), or both tails of x
     *  (asymmetric), read from a histogram: exact to within one bin width */
    LLMQ_OBSERVER_PERCENTILE = 2,
    /** histogram of |x|, threshold of least KL divergence (TensorRT's entropy calibration) */
    LLMQ_OBSERVER_ENTROPY = 3,
    /** histogram of x, L2-error search over bin ranges (PyTorch HistogramObserver) */
    LLMQ_OBSERVER_HISTOGRAM_L2 = 4,
    /** histogram of x, grid of clip ratios k / GRID minimizing the quantization MSE */
    LLMQ_OBSERVER_MSE = 5,
    LLMQ_OBSERVER_FORCE32_ = 0x7fffffff
} llmq_observer;

/** Settings of an observer, read and written as doubles (integers for the integer ones). */
typedef enum llmq_observer_param {
    /** MOVING_AVERAGE: averaging constant c in (0, 1]; default 0.01 (PyTorch's) */
    LLMQ_OBSERVER_PARAM_MOMENTUM = 0,
    /** PERCENTILE: p in [50, 100]; default 99.99 */
    LLMQ_OBSERVER_PARAM_PERCENTILE = 1,
    /** PERCENTILE, ENTROPY, HISTOGRAM_L2, MSE: bins per histogram, 16 to 1048576; default 2048.
     *  ENTROPY needs more bins than the grid has codes (e.g. > 256 for u8) */
    LLMQ_OBSERVER_PARAM_BINS = 2,
    /** MSE: clip ratios k / GRID for k = 1..GRID, 1 to 10000; default 100 */
    LLMQ_OBSERVER_PARAM_GRID = 3,
    /** HISTOGRAM_L2: sub-bins per bin when a grown range rebins the histogram, 1 to 256;
     *  default 16 (PyTorch's upsample_rate) */
    LLMQ_OBSERVER_PARAM_UPSAMPLE = 4,
    LLMQ_OBSERVER_PARAM_FORCE32_ = 0x7fffffff
} llmq_observer_param;

/** Opaque quantizer: a scheme, an observer, its settings, and what it has observed. */
typedef struct llmq_quantizer llmq_quantizer;

/**
 * Name of an observer: "minmax", "moving_average", "percentile", "entropy", "histogram_l2",
 * "mse".
 * @param observer  any value
 * @return a static string; "unknown" for other values
 * @thread reentrant
 * @since 0.2
 */
LLMQ_API const char *llmq_observer_name(llmq_observer observer);

/**
 * Range of the values a setting accepts for an observer (zstd's getBounds).
 * @param observer  any value; unknown ones are refused
 * @param key       the setting; one the observer does not use is refused
 * @param min, max  receive the bounds; must not be NULL; written only on LLMQ_OK
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, unknown observer or key, or a key the
 *         observer does not use); no message is written (there is no context)
 * @thread reentrant
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_observer_param_bounds(llmq_observer observer,
                                                               llmq_observer_param key, double *min,
                                                               double *max);

/**
 * Create a quantizer that calibrates the parameters of @p scheme with @p observer, with the
 * observer's default settings (llmq_quantizer_set_param()).
 * The scheme is copied. PER_TENSOR, PER_CHANNEL (any axis) and PER_GROUP schemes are
 * calibrated; PER_TOKEN parameters only exist at run time (llmq_quantize_dynamic()).
 * @param ctx       context for memory and messages (also those of llmq_quantizer_set_param()
 *                  and llmq_quantizer_get_param()); must outlive the quantizer
 * @param scheme    borrowed for the call (the quantizer keeps a copy); must not be NULL
 * @param observer  an llmq_observer value
 * @param out       receives the quantizer (destroy it with llmq_quantizer_destroy()); NULL on
 *                  failure
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, unknown observer, PER_TOKEN scheme, PER_GROUP
 *         scheme without group size); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_create(llmq_context *ctx,
                                                          const llmq_scheme *scheme,
                                                          llmq_observer observer,
                                                          llmq_quantizer **out);

/** Destroy a quantizer and its parameter tensors; NULL is a no-op.
 *  @param q  the quantizer; invalid afterwards, and so are the tensors returned by
 *            llmq_quantizer_scale(), llmq_quantizer_zero_point() and llmq_quantizer_range()
 *  @thread exclusive on q
 *  @since 0.2 */
LLMQ_API void llmq_quantizer_destroy(llmq_quantizer *q);

/**
 * Change a setting of the quantizer's observer, before the first batch is observed. Failures
 * leave their message on the quantizer's context.
 * @param q      the quantizer; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param key    a setting the quantizer's observer uses
 * @param value  within llmq_observer_param_bounds(); an integer for BINS, GRID and UPSAMPLE
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (q NULL, a key the observer does not use, a value
 *         out of llmq_observer_param_bounds() or not an integer where one is needed, ENTROPY
 *         BINS not above the grid's code count); LLMQ_ERR_STATE (a batch was already observed,
 *         or finalized)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_set_param(llmq_quantizer *q,
                                                             llmq_observer_param key, double value);

/**
 * Read a setting of the quantizer's observer (its default until llmq_quantizer_set_param()).
 * Failures leave their message on the quantizer's context.
 * @param q      the quantizer; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param key    a setting the quantizer's observer uses
 * @param value  receives the setting; must not be NULL
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, a key the observer does not use)
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_get_param(const llmq_quantizer *q,
                                                             llmq_observer_param key,
                                                             double *value);

/**
 * Fold one batch into the observer's statistics. Only finite values count: ±Inf is skipped
 * (it saturates when quantized anyway). Memory is allocated at the first batch and does not
 * grow afterwards; histograms widen their range by merging bins, never by keeping data.
 * Batches have the first batch's number of dimensions and sizes, except that the first
 * dimension (tokens, samples) may vary when no parameter is laid out along it (PER_TENSOR,
 * PER_CHANNEL on another axis).
 * @param ctx  context for messages (memory comes from the quantizer's own context)
 * @param q    the quantizer, not finalized
 * @param x    F32, F16 or BF16; read during the call only
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtype, a shape that disagrees with the first
 *         batch, or an axis out of range for it); LLMQ_ERR_STATE (already finalized);
 *         LLMQ_ERR_NON_FINITE (a NaN: the message names the batch, counted from 0, and the flat
 *         index; the statistics are unchanged); LLMQ_ERR_OUT_OF_MEMORY (first batch only)
 * @thread ctx-exclusive, exclusive on q
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_observe(llmq_context *ctx, llmq_quantizer *q,
                                                           const llmq_tensor *x);

/**
 * Turn the statistics into the clipping ranges, scales and zero points (then readable with
 * llmq_quantizer_scale(), llmq_quantizer_zero_point(), llmq_quantizer_range()), and free the
 * statistics. No batch may be observed afterwards.
 * @param ctx  context for messages
 * @param q    the quantizer, with at least one batch observed
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL); LLMQ_ERR_STATE (no batch observed, already
 *         finalized, or a parameter set that never saw a finite value: the message names it);
 *         LLMQ_ERR_OUT_OF_MEMORY (the quantizer is unchanged)
 * @thread ctx-exclusive, exclusive on q
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_finalize(llmq_context *ctx, llmq_quantizer *q);

/**
 * Bind the finalized scheme and parameters to the quantized tensor @p dst (as
 * llmq_tensor_set_scheme(), then the values copied), so that llmq_quantize() and
 * llmq_dequantize() use them.
 * @param ctx  context for messages; dst's context
 * @param q    the finalized quantizer; only read
 * @param dst  a tensor of the scheme's dtype whose parameter layout matches the calibrated
 *             one: any shape per tensor, the same size along the axis per channel, the same
 *             rows and groups per group
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtype, layout); LLMQ_ERR_STATE (not
 *         finalized); LLMQ_ERR_OUT_OF_MEMORY (dst unchanged)
 * @thread ctx-exclusive, exclusive on dst
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantizer_apply(llmq_context *ctx, const llmq_quantizer *q,
                                                         llmq_tensor *dst);

/** Scheme the quantizer calibrates. @param q  NULL allowed @return its own copy, owned by q
 *  (never destroy it), or NULL for NULL @thread read-shared @since 0.2 */
LLMQ_API const llmq_scheme *llmq_quantizer_scheme(const llmq_quantizer *q);

/** Observer of @p q. @param q  NULL allowed @return the observer (LLMQ_OBSERVER_MINMAX for
 *  NULL) @thread read-shared @since 0.2 */
LLMQ_API llmq_observer llmq_quantizer_observer(const llmq_quantizer *q);

/** Batches observed so far. @param q  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int64_t llmq_quantizer_batch_count(const llmq_quantizer *q);

/** Scale tensor of @p q. @param q  NULL allowed @return F32: [1] per tensor, [channels], or
 *  [rows, groups], owned by q (never destroy or write it), after finalize; else NULL
 *  @thread read-shared @since 0.2 */
LLMQ_API const llmq_tensor *llmq_quantizer_scale(const llmq_quantizer *q);

/** Zero-point tensor of @p q. @param q  NULL allowed @return S32, shaped as the scale, owned
 *  by q (never destroy or write it), after finalize; else NULL @thread read-shared
 *  @since 0.2 */
LLMQ_API const llmq_tensor *llmq_quantizer_zero_point(const llmq_quantizer *q);

/** Clipping ranges the observer chose. @param q  NULL allowed @return F32 [parameter sets, 2]:
 *  lo, hi, before PyTorch's widening to include 0, owned by q (never destroy or write it),
 *  after finalize; else NULL @thread read-shared @since 0.2 */
LLMQ_API const llmq_tensor *llmq_quantizer_range(const llmq_quantizer *q);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_QUANTIZER_H */
