/* llmq/scheme.h - quantization schemes and their parameters. SPDX-License-Identifier: MIT */
#ifndef LLMQ_SCHEME_H
#define LLMQ_SCHEME_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Quantization schemes (dtype, symmetry, granularity, rounding, numerics), their parameters,
 * and binding a scheme to a tensor. docs/concepts.md explains the choices; docs/numerics.md
 * is the arithmetic. */

#ifdef __cplusplus
extern "C" {
#endif

/** How the range maps onto the integer grid (docs/numerics.md). */
typedef enum llmq_symmetry {
    /** zero point 0 (signed) or the grid's midpoint (unsigned: u8 128, u4 8, u2 2);
     *  scale = max(-lo, hi) / ((qmax - qmin) / 2) over the full range, e.g. s8 [-128, 127] */
    LLMQ_SYMMETRY_SYMMETRIC = 0,
    /** as SYMMETRIC on a grid without its lowest code: s8 [-127, 127], s4 [-7, 7], u8 [1, 255] */
    LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED = 1,
    /** scale = (hi - lo) / (qmax - qmin), zero point = qmin - round(lo / scale) */
    LLMQ_SYMMETRY_ASYMMETRIC = 2,
    LLMQ_SYMMETRY_FORCE32_ = 0x7fffffff
} llmq_symmetry;

/** Which elements share one scale and zero point. */
typedef enum llmq_granularity {
    LLMQ_GRANULARITY_PER_TENSOR = 0,  /**< one pair for the whole tensor */
    LLMQ_GRANULARITY_PER_CHANNEL = 1, /**< one pair per index along `axis` (any axis) */
    LLMQ_GRANULARITY_PER_GROUP = 2,   /**< per row, per run of `group_size` along the last axis;
                                           the last group of a row may be shorter */
    LLMQ_GRANULARITY_PER_TOKEN = 3,   /**< one pair per row, usually computed at run time */
    LLMQ_GRANULARITY_FORCE32_ = 0x7fffffff
} llmq_granularity;

/** Rounding of x / scale to an integer. */
typedef enum llmq_rounding {
    LLMQ_ROUNDING_HALF_EVEN = 0,      /**< ties to even, as nearbyint(), PyTorch and ONNX */
    LLMQ_ROUNDING_HALF_AWAY = 1,      /**< ties away from zero, as round() */
    LLMQ_ROUNDING_STOCHASTIC = 2,     /**< floor(v + u), u uniform in [0, 1) from (seed, index):
                                           reproducible, independent of threads and batching */
    LLMQ_ROUNDING_FORCE32_ = 0x7fffffff
} llmq_rounding;

/** Float arithmetic of the quantize step; the two differ only near ties. */
typedef enum llmq_numerics {
    LLMQ_NUMERICS_PYTORCH = 0, /**< inv = 1.0f / scale; q = round(x * inv) + zp (float32) */
    LLMQ_NUMERICS_ONNX = 1,    /**< q = round(x / scale) + zp (float32), QuantizeLinear */
    LLMQ_NUMERICS_FORCE32_ = 0x7fffffff
} llmq_numerics;

/**
 * Create a scheme for quantized dtype @p dtype (S8, U8, S4, U4, S2, U2) with the defaults:
 * SYMMETRIC, PER_TENSOR, axis 0, no group size, HALF_EVEN, seed 0, PYTORCH.
 * @param ctx    context for error messages; must outlive the scheme
 * @param dtype  a quantized dtype
 * @param out    receives the scheme; NULL on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (dtype not quantized), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_create(llmq_context *ctx, llmq_dtype dtype,
                                                       llmq_scheme **out);

/** Destroy a scheme; NULL is a no-op. Tensors keep their own copy.
 *  @param s  a scheme from llmq_scheme_create() (never llmq_tensor_scheme()'s); invalid after
 *  @thread exclusive on s
 *  @since 0.1 */
LLMQ_API void llmq_scheme_destroy(llmq_scheme *s);

/**
 * Set the symmetry.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param symmetry  an llmq_symmetry value
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL or unknown value)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_symmetry(llmq_scheme *s,
                                                             llmq_symmetry symmetry);

/**
 * Set the granularity. PER_CHANNEL uses the axis, PER_GROUP the group size.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param granularity  an llmq_granularity value
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL or unknown value)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_granularity(llmq_scheme *s,
                                                                llmq_granularity granularity);

/**
 * Set the channel axis of PER_CHANNEL; negative counts from the end. Checked against the
 * tensor when the scheme is bound (llmq_tensor_set_scheme()).
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param axis  -LLMQ_MAX_DIMS..LLMQ_MAX_DIMS-1
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL, |axis| >= LLMQ_MAX_DIMS)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_axis(llmq_scheme *s, int32_t axis);

/**
 * Set the group size of PER_GROUP (elements along the last axis sharing parameters).
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param group_size  >= 1; need not divide the last dimension (the last group is shorter)
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL, group_size < 1)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_group_size(llmq_scheme *s,
                                                               int64_t group_size);

/**
 * Set the rounding mode.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param rounding  an llmq_rounding value
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL or unknown value)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_rounding(llmq_scheme *s,
                                                             llmq_rounding rounding);

/**
 * Set the seed of STOCHASTIC rounding (ignored by the other modes).
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param seed  any value; equal seeds give equal codes
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_seed(llmq_scheme *s, uint64_t seed);

/**
 * Set the numerics mode.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param numerics  an llmq_numerics value
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL or unknown value)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_numerics(llmq_scheme *s,
                                                             llmq_numerics numerics);

/**
 * Narrow the integer grid to [@p qmin, @p qmax] inside the dtype's own grid, like PyTorch's
 * quant_min / quant_max: s4 with [-4, 3] is a 3-bit grid, u8 with [0, 15] a 4-bit one, so
 * every width from 2 to 8 bits is at hand. The range replaces the dtype's grid wherever the
 * scheme is used (quantize, parameters from a range, llmq_scheme_range(), fake quantization);
 * with a range set, SYMMETRIC_RESTRICTED drops no further code (the range already says which
 * codes exist). The symmetric zero point of an unsigned dtype is the range's midpoint rounded
 * up, (qmin + qmax + 1) / 2, as for the full grids (docs/numerics.md). qmin = qmax = 0 clears
 * the range.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param qmin, qmax  qmin < qmax, both on the dtype's full grid; for a signed dtype the range
 *                    must include 0 (its symmetric zero point)
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (s NULL, a bound off the grid, qmin >= qmax, a signed
 *         range without 0); the scheme is unchanged on failure
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_set_range(llmq_scheme *s, int32_t qmin,
                                                          int32_t qmax);

/** Quantized dtype of @p s. @param s  NULL allowed @return the dtype (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_dtype llmq_scheme_dtype(const llmq_scheme *s);
/** Symmetry of @p s. @param s  NULL allowed @return the symmetry (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_symmetry llmq_scheme_symmetry(const llmq_scheme *s);
/** Granularity of @p s. @param s  NULL allowed @return the granularity (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_granularity llmq_scheme_granularity(const llmq_scheme *s);
/** Channel axis of @p s, as set (may be negative). @param s  NULL allowed
 *  @return the axis (0 for NULL) @thread read-shared @since 0.1 */
LLMQ_API int32_t llmq_scheme_axis(const llmq_scheme *s);
/** Group size of @p s. @param s  NULL allowed @return the group size (0: not set, or NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API int64_t llmq_scheme_group_size(const llmq_scheme *s);
/** Rounding mode of @p s. @param s  NULL allowed @return the mode (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_rounding llmq_scheme_rounding(const llmq_scheme *s);
/** Seed of stochastic rounding of @p s. @param s  NULL allowed @return the seed (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API uint64_t llmq_scheme_seed(const llmq_scheme *s);
/** Numerics mode of @p s. @param s  NULL allowed @return the mode (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_numerics llmq_scheme_numerics(const llmq_scheme *s);

/**
 * Integer grid of the scheme: e.g. s8 [-128, 127], restricted s8 [-127, 127], u4 [0, 15], or
 * the range given to llmq_scheme_set_range() (since 0.2).
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param qmin, qmax  receive the bounds; must not be NULL
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (a NULL argument)
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_range(const llmq_scheme *s, int32_t *qmin,
                                                      int32_t *qmax);

/**
 * Scale and zero point for the observed range [lo, hi], by PyTorch's rules: the range is
 * widened to include 0; symmetric: scale = max(-lo, hi) / ((qmax - qmin) / 2), zero point 0
 * (unsigned: the midpoint); asymmetric: scale = (hi - lo) / (qmax - qmin),
 * zero point = clamp(qmin - round_half_even(lo / scale)); scale >= FLT_EPSILON. All float32.
 * @param s  the scheme; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param lo, hi       finite, lo <= hi
 * @param scale, zero_point  receive the parameters; must not be NULL
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, lo > hi), LLMQ_ERR_NON_FINITE (NaN or Inf bound)
 * @thread ctx-exclusive (the context of @p s receives the message)
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_scheme_qparams(const llmq_scheme *s, float lo, float hi,
                                                        float *scale, int32_t *zero_point);

/**
 * Bind a copy of @p scheme to tensor @p t of the same quantized dtype, and give @p t owned
 * parameter tensors: scale (F32) and zero point (S32), shaped [1] per tensor, [dim(axis)] per
 * channel, [rows] per token, [rows, ceil(cols / group_size)] per group. Scales start at 1,
 * zero points at 0 (signed dtypes) or the grid's midpoint (unsigned: u8 128, u4 8, u2 2).
 * Binding again replaces the scheme and the parameter tensors.
 * @param ctx     context for the allocations and messages; t's context
 * @param t       tensor of a quantized dtype (owning or wrapped)
 * @param scheme  borrowed for the call (t keeps a copy)
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtype differs, axis out of range, PER_GROUP
 *         without group size); LLMQ_ERR_OUT_OF_MEMORY (t unchanged)
 * @thread ctx-exclusive, exclusive on t
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_set_scheme(llmq_context *ctx, llmq_tensor *t,
                                                           const llmq_scheme *scheme);

/**
 * Create an owning tensor of the scheme's dtype and bind the scheme to it, in one call.
 * @param ctx     context whose allocator is used; must outlive the tensor
 * @param scheme  borrowed for the call (the tensor keeps a copy)
 * @param ndim    1..LLMQ_MAX_DIMS
 * @param shape   ndim sizes, each >= 1; borrowed for the call
 * @param out     receives the tensor; NULL on failure
 * @return as llmq_tensor_create() and llmq_tensor_set_scheme()
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_create_quantized(llmq_context *ctx,
                                                                 const llmq_scheme *scheme,
                                                                 int32_t ndim,
                                                                 const int64_t *shape,
                                                                 llmq_tensor **out);

/** Scheme bound to @p t. @param t  NULL allowed @return the scheme, owned by t (never destroy
 *  it), or NULL without one @thread read-shared @since 0.1 */
LLMQ_API const llmq_scheme *llmq_tensor_scheme(const llmq_tensor *t);

/** Scale tensor (F32) of @p t. @param t  NULL allowed @return the tensor, owned by t (never
 *  destroy it; its values may be written), or NULL without a scheme
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_tensor *llmq_tensor_scale(const llmq_tensor *t);

/** Zero-point tensor (S32) of @p t. @param t  NULL allowed @return the tensor, owned by t
 *  (never destroy it; its values may be written), or NULL without a scheme
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_tensor *llmq_tensor_zero_point(const llmq_tensor *t);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_SCHEME_H */
