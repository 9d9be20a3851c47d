/* llmq/qat.h - fake quantization and its gradients, for quantization-aware training.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_QAT_H
#define LLMQ_QAT_H

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Fake quantization (quantize, then dequantize at once, in float) and its gradients: the
 * forward and backward of quantization-aware training, as PyTorch's fake_quantize_* and
 * LSQ's learnable scale and zero point (docs/qat.md). */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Fake quantization, the forward of quantization-aware training: quantize @p x with
 * @p scheme and the given parameters, then dequantize at once, in float:
 *
 *     y = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale
 *
 * with the scheme's grid (llmq_scheme_range(), llmq_scheme_set_range()), rounding, seed and
 * numerics mode, so y equals llmq_dequantize(llmq_quantize(x)) bit for bit. This is PyTorch's
 * fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine, and with a float zero
 * point its _fake_quantize_learnable_* forward (docs/qat.md). ±Inf saturates; NaN is an error.
 * Every tensor lives in host memory, or every one in device memory on a CUDA context (then the
 * device runs it, y bit-identical to the CPU's; the scale and zero-point values are not
 * checked, and a NaN is reported by the next llmq_context_sync()).
 * @param ctx         context for messages; its backend runs the kernel
 * @param x           F32, F16 or BF16
 * @param scheme      borrowed for the call; its granularity, axis and group size shape the
 *                    parameters for x's shape: [1] per tensor, [dim(axis)] per channel,
 *                    [rows] per token, [rows, ceil(cols / group_size)] per group
 * @param scale       F32 of that shape, packed rows; positive normal floats
 * @param zero_point  of that shape, packed rows: S32 codes on the grid, or F32 values (the
 *                    learnable zero point: finite, used as clamp(round_half_even(z), qmin,
 *                    qmax)); NULL: every parameter uses the scheme's symmetric zero point
 *                    (0; unsigned dtypes the grid's midpoint)
 * @param y           F32, F16 or BF16, x's shape; may be x itself (same memory, dtype and row
 *                    stride), must not otherwise overlap an input
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (a NULL argument, dtypes, shapes, parameter shapes,
 *         a scale that is not a positive normal float, an S32 zero point off the grid, a
 *         non-finite F32 zero point, overlapping tensors, host and device tensors mixed);
 *         LLMQ_ERR_NON_FINITE (a NaN in x; the message gives its flat index; y is then
 *         undefined); LLMQ_ERR_UNSUPPORTED (the context's backend has no fake-quant kernel,
 *         device tensors on a context without a device); LLMQ_ERR_BACKEND (a device failure)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_fake_quantize(llmq_context *ctx, const llmq_tensor *x,
                                                       const llmq_scheme *scheme,
                                                       const llmq_tensor *scale,
                                                       const llmq_tensor *zero_point,
                                                       llmq_tensor *y);

/**
 * Gradients of llmq_fake_quantize() for the same @p x, @p scheme, @p scale and @p zero_point,
 * given @p dy = dL/dy:
 *
 *  - dx: the straight-through estimator with the clipping mask, dx = dy where the unclamped
 *    code round(x / scale) + zp lies in [qmin, qmax] (bounds included), 0 elsewhere
 *    (PyTorch's fake_quantize_*_affine backward);
 *  - dscale, when not NULL: LSQ's gradient, summed over each parameter's elements (everything
 *    but the channel axis per channel, each group per group) and multiplied by grad_factor:
 *    per element dy * (q - zp - x / scale) inside the range, dy * (qmin - zp) below it,
 *    dy * (qmax - zp) above it;
 *  - dzero_point, when not NULL: likewise, per element 0 inside, -dy * scale outside
 *    (PyTorch's _fake_quantize_learnable_per_tensor_affine / _per_channel_affine backward).
 *
 * The outputs are overwritten, not accumulated. Elements of dy are not checked: NaN and Inf
 * propagate as in float arithmetic. docs/qat.md lists what is matched exactly. Device tensors
 * as for llmq_fake_quantize(); there dx is bit-identical to the CPU's and the sums are taken
 * in a fixed order of their own, within docs/qat.md's bound of the CPU's.
 * @param ctx          context for messages and the sums' scratch memory (its workspace on
 *                     the device)
 * @param x            the forward's input, as for llmq_fake_quantize()
 * @param scheme       the forward's scheme; borrowed for the call
 * @param scale        the forward's scale tensor
 * @param zero_point   the forward's zero point (S32 or F32), or NULL as there
 * @param dy           F32, F16 or BF16, x's shape
 * @param grad_factor  finite; scales the dscale and dzero_point terms. LSQ suggests
 *                     1 / sqrt(elements per parameter * qmax); 1 gives the plain gradient
 * @param dx           F32, F16 or BF16, x's shape; may be dy itself (same memory, dtype and
 *                     row stride), must not otherwise overlap an input
 * @param dscale       NULL, or F32 shaped as scale, packed rows
 * @param dzero_point  NULL, or F32 shaped as scale, packed rows; needs a zero_point
 * @return as llmq_fake_quantize(), plus LLMQ_ERR_INVALID_ARG for dy, dx, dscale, dzero_point
 *         and grad_factor, and LLMQ_ERR_OUT_OF_MEMORY (the sums' scratch)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_fake_quantize_backward(
    llmq_context *ctx, const llmq_tensor *x, const llmq_scheme *scheme, const llmq_tensor *scale,
    const llmq_tensor *zero_point, const llmq_tensor *dy, float grad_factor, llmq_tensor *dx,
    llmq_tensor *dscale, llmq_tensor *dzero_point);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_QAT_H */
