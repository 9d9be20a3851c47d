/* llmq/smoothquant.h - SmoothQuant: move activation outliers into the weights before W8A8.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_SMOOTHQUANT_H
#define LLMQ_SMOOTHQUANT_H

#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/quantizer.h"
#include "llmq/scheme.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * SmoothQuant (Xiao et al., 2023): a per-input-channel factor s_j divides the activations and
 * multiplies the weights, X W^T = (X / s) (W s)^T, so that activation channels with outliers
 * become easier to quantize and the weights (per output channel) absorb the difference:
 *
 *     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
 *
 * where max|W_j| runs over column j of every matrix that reads the same input (q, k and v;
 * gate and up), so that they share one s. The weights are scaled in place; the caller folds
 * the divisor s into the operation that produces X (an RMSNorm weight g_j / s_j, or the output
 * rows of a preceding matmul). CPU memory only. docs/llm-methods.md is the guide. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Per-channel maxima of |x| from a calibration quantizer: absmax_j = max(|lo_j|, |hi_j|) of the
 * clipping ranges it chose (llmq_quantizer_range()). For SmoothQuant's activation maxima, create
 * the quantizer with a PER_CHANNEL scheme on the last axis of the activations (axis 1 of
 * [tokens, K]) and the MINMAX observer (other observers give clipped maxima), observe the
 * layer's inputs, and finalize it.
 * @param ctx     context for messages
 * @param q       a finalized quantizer with a PER_CHANNEL scheme; only read
 * @param absmax  F32 [channels] in host memory, packed; written only on LLMQ_OK
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, a scheme that is not per channel, absmax's
 *         dtype or shape); LLMQ_ERR_STATE (q not finalized); LLMQ_ERR_UNSUPPORTED (absmax in
 *         device memory)
 * @thread ctx-exclusive; q is read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_smoothquant_channel_absmax(llmq_context *ctx,
                                                                    const llmq_quantizer *q,
                                                                    llmq_tensor *absmax);

/**
 * Compute the smoothing factors of one group of weight matrices that read the same input,
 * scale the weights in place and return the factors:
 *
 *     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha),  max|W_j| over every row n of every
 *                                                  matrix i of the group: |W_i[n, j]|
 *     W_i[n, j] *= s_j        for every matrix of the group
 *
 * evaluated in double and rounded once to float. Rule for degenerate channels: s_j = 1 (the
 * channel is left as it is) where max|X_j| or the weights' column maximum is 0, or where the
 * quotient is not a normal float. With finite inputs no scaled weight overflows (|W s| <=
 * max(max|X_j|, max|W_j|)).
 * @param ctx         context for messages
 * @param act_absmax  F32 [K], host memory: max|X_j| per input channel, finite and >= 0
 *                    (llmq_smoothquant_channel_absmax(), or the caller's own statistics)
 * @param alpha       migration strength in [0, 1]; 0.5 is SmoothQuant's default, larger values
 *                    move more of the activations' range into the weights
 * @param n_weights   number of matrices in the group, 1 to 64
 * @param weights     n_weights distinct F32 [N_i, K] tensors in host memory (they may not
 *                    overlap); scaled in place on LLMQ_OK, unchanged on failure
 * @param divisor     F32 [K], host memory, packed: receives s. The caller divides input
 *                    channel j of the activations by divisor[j] by folding it into the
 *                    producing operation (e.g. RMSNorm weight g_j / divisor[j]); written only
 *                    on LLMQ_OK
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, alpha outside [0, 1] or NaN, n_weights out of
 *         range, dtypes, shapes that disagree on K, overlapping tensors, a negative or
 *         non-finite maximum); LLMQ_ERR_NON_FINITE (a NaN or Inf in the weights: the message
 *         names the matrix and the element); LLMQ_ERR_UNSUPPORTED (device memory);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; exclusive on the weights
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_smoothquant_apply(llmq_context *ctx,
                                                           const llmq_tensor *act_absmax,
                                                           float alpha, int32_t n_weights,
                                                           llmq_tensor *const *weights,
                                                           llmq_tensor *divisor);

/**
 * Search the migration strength: for alpha = i / grid, i = 0..grid, smooth copies of the
 * group's weights with the maxima of @p x (as llmq_smoothquant_apply()), quantize the weights
 * with @p weight_scheme (parameters from the data, llmq_quantize_dynamic()), quantize x / s
 * with @p activation_scheme the same way (per token for a PER_TOKEN scheme, over the whole
 * batch for PER_TENSOR), multiply with llmq_matmul() into F32, and measure the output error
 *
 *     E(alpha) = sum over the group's matrices i of || x W_i^T - Q(x / s) Q(W_i s)^T ||^2
 *
 * against the float product (accumulated in double). The smallest E wins; ties go to the
 * smaller alpha. Neither x nor the weights are changed: apply the chosen alpha with
 * llmq_smoothquant_apply().
 * @param ctx                context for messages and scratch memory
 * @param x                  F32 [T, K] calibration activations of the group, host memory
 * @param n_weights          1 to 64
 * @param weights            n_weights F32 [N_i, K] tensors in host memory; only read
 * @param weight_scheme      a quantized scheme llmq_matmul() accepts for the weights (e.g. s8
 *                           per channel); borrowed for the call
 * @param activation_scheme  an S8 / U8 scheme for the activations (PER_TOKEN or PER_TENSOR),
 *                           or NULL for float activations (weight-only products); borrowed
 * @param grid               1 to 1000 intervals of [0, 1]; 20 gives steps of 0.05
 * @param alpha              receives the chosen alpha; must not be NULL
 * @param error              NULL, or receives E at the chosen alpha
 * @param errors             NULL, or an array of grid + 1 doubles receiving E(i / grid)
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, grid or n_weights out of range, dtypes,
 *         shapes, schemes the quantize or matmul calls refuse); LLMQ_ERR_NON_FINITE (a NaN or
 *         Inf in x or the weights); LLMQ_ERR_UNSUPPORTED (device memory);
 *         LLMQ_ERR_OUT_OF_MEMORY. Outputs are written only on LLMQ_OK.
 * @thread ctx-exclusive; x and the weights are read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_smoothquant_search(
    llmq_context *ctx, const llmq_tensor *x, int32_t n_weights, const llmq_tensor *const *weights,
    const llmq_scheme *weight_scheme, const llmq_scheme *activation_scheme, int32_t grid,
    float *alpha, double *error, double *errors);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_SMOOTHQUANT_H */
