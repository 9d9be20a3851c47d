/* llmq/quantize.h - quantize, dequantize and pack tensors. SPDX-License-Identifier: MIT */
#ifndef LLMQ_QUANTIZE_H
#define LLMQ_QUANTIZE_H

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Quantize (static, with given parameters, or dynamic, with parameters from the data),
 * dequantize, and pack / unpack sub-byte codes. docs/numerics.md is the arithmetic. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Static quantization: dst = clamp(round(src / scale) + zp, qmin, qmax) with the scheme and
 * the parameter values bound to @p dst. ±Inf saturates to qmin / qmax.
 * @param ctx  context for messages and scratch memory
 * @param src  F32, F16 or BF16, same shape as dst
 * @param dst  quantized tensor with a scheme (llmq_tensor_set_scheme())
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtypes, shapes, a scale that is not positive and
 *         finite, a zero point off the grid); LLMQ_ERR_STATE (dst has no scheme);
 *         LLMQ_ERR_NON_FINITE (a NaN; the message gives its flat index; dst is then undefined)
 * @thread ctx-exclusive; src and dst must not overlap
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantize(llmq_context *ctx, const llmq_tensor *src,
                                                  llmq_tensor *dst);

/**
 * Dynamic quantization: compute the parameters of @p dst's scheme from @p src's data (the
 * range of each tensor / channel / token / group, over the finite values), write them into
 * dst's scale and zero-point tensors, then quantize as llmq_quantize().
 * @param ctx  context for messages and scratch memory
 * @param src  F32, F16 or BF16, same shape as dst
 * @param dst  quantized tensor with a scheme; its codes, scales and zero points are written
 * @return as llmq_quantize(); on LLMQ_ERR_NON_FINITE nothing is written
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_quantize_dynamic(llmq_context *ctx,
                                                          const llmq_tensor *src,
                                                          llmq_tensor *dst);

/**
 * Dequantize: dst = (q - zp) * scale, in float32, rounded to dst's dtype (ties to even).
 * @param ctx  context for messages and scratch memory
 * @param src  quantized tensor with a scheme
 * @param dst  F32, F16 or BF16, same shape
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtypes, shapes, bad parameter values);
 *         LLMQ_ERR_STATE (src has no scheme)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_dequantize(llmq_context *ctx, const llmq_tensor *src,
                                                    llmq_tensor *dst);

/**
 * Pack integer codes, one per byte, into a sub-byte tensor: S8 codes into S4 or S2, U8 codes
 * into U4 or U2, same shape.
 * @param ctx  context for messages and scratch memory
 * @param src  S8 or U8 codes, one per byte
 * @param dst  S4, S2 (from S8) or U4, U2 (from U8) tensor of src's shape
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtype pair, shapes, a code outside dst's grid:
 *         the message gives its flat index and value; dst is then undefined)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_pack(llmq_context *ctx, const llmq_tensor *src,
                                              llmq_tensor *dst);

/**
 * Unpack a sub-byte tensor into one code per byte: S4/S2 into S8, U4/U2 into U8, same shape.
 * @param ctx  context for messages and scratch memory
 * @param src  S4, S2, U4 or U2 tensor
 * @param dst  S8 (from S4, S2) or U8 (from U4, U2) tensor of src's shape
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, dtype pair, shapes)
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_unpack(llmq_context *ctx, const llmq_tensor *src,
                                                llmq_tensor *dst);

/**
 * Convert between float dtypes: F32, F16 and BF16 in any direction (round to nearest even;
 * NaN stays NaN, overflow becomes Inf), same shape.
 * @param ctx  context for messages
 * @param src  F32, F16 or BF16
 * @param dst  F32, F16 or BF16 tensor of src's shape; must not overlap src
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, a non-float dtype, shapes, overlap)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_convert(llmq_context *ctx, const llmq_tensor *src,
                                                 llmq_tensor *dst);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_QUANTIZE_H */
