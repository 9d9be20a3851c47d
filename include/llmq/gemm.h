/* llmq/gemm.h - quantized matrix products C = A * B^T with fused epilogues.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_GEMM_H
#define LLMQ_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Quantized matrix products C = A * B^T with fused epilogues (docs/gemm.md). */

#ifdef __cplusplus
extern "C" {
#endif

/** Storage order of the weight operand B. */
typedef enum llmq_weight_layout {
    LLMQ_WEIGHT_LAYOUT_NK = 0, /**< B is [N, K], rows are output channels (torch.nn.Linear) */
    LLMQ_WEIGHT_LAYOUT_KN = 1, /**< B is [K, N]; 8-bit B with per-tensor or per-N scales only */
    LLMQ_WEIGHT_LAYOUT_FORCE32_ = 0x7fffffff
} llmq_weight_layout;

/** How an S8/U8 output is requantized (docs/gemm.md). */
typedef enum llmq_requant {
    /** out = clamp(round_half_even(((float)acc * sA * sB) / sC) + zC), evaluated left to right
     *  in float32: bit-exact on every backend */
    LLMQ_REQUANT_EXACT = 0,
    /** out = clamp(round_half_even((float)acc * m) + zC) with m = sA * sB / sC computed once
     *  per output channel: faster, may differ from EXACT by one code near ties */
    LLMQ_REQUANT_MULTIPLIER = 1,
    LLMQ_REQUANT_FORCE32_ = 0x7fffffff
} llmq_requant;

/**
 * Matmul options, versioned by `size` (docs/ABI.md): fill with llmq_matmul_options_defaults().
 */
typedef struct llmq_matmul_options {
    size_t size;                      /**< sizeof(llmq_matmul_options) as compiled by the caller */
    llmq_weight_layout weight_layout; /**< default NK */
    llmq_requant requant;             /**< default EXACT */
    uint64_t reserved[4];             /**< must be zero */
} llmq_matmul_options;

/**
 * Fill @p options with the defaults for a caller compiled against a struct of @p size bytes.
 * @param options  written; must not be NULL
 * @param size     sizeof(llmq_matmul_options) as the caller sees it
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL), LLMQ_ERR_ABI (size out of range)
 * @thread reentrant
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_matmul_options_defaults(llmq_matmul_options *options,
                                                                  size_t size);

/**
 * C = A * B^T (+ bias), where A is [..., K] (rows M = product of its leading dimensions),
 * B is [N, K] and C is [..., N] with A's leading dimensions. Each quantized operand carries its
 * scheme and parameters (llmq_tensor_set_scheme()); C's dtype chooses the epilogue:
 *
 * - A S8/U8 and B S8/U8/S4/U4/S2/U2 (integer product, W8A8 and W4A8):
 *   - C S32: raw sum over k of (a - zA)(b - zB), exact; needs A and B parameters that do not
 *     vary along K (per tensor, per token / row, per channel of N);
 *   - C F32/F16/BF16: dequantized, ((float)acc * sA) * sB + bias; with parameters that vary
 *     along K (per-group B), each run of k with one parameter pair contributes
 *     (float)partial * sA * sB, in k order;
 *   - C S8/U8: requantized with C's own scale and zero point (llmq_requant).
 * - A F32/F16/BF16 and B quantized, any granularity (weight-only, W8A16 / W4A16 / W2A16):
 *   C F32/F16/BF16 = sum over k of a * ((b - zB) * sB) + bias, in float32.
 *
 * Integer products accumulate exactly in int32 on every backend; the S32 and S8/U8 (EXACT)
 * results are bit-identical across backends and CPU tiers; float results agree within the
 * bounds stated in docs/gemm.md.
 * @param ctx  context for messages and scratch memory
 * @param a     activations, F32/F16/BF16 or quantized S8/U8 with a scheme
 * @param b     weights, quantized with a scheme, [N, K] (see options for [K, N])
 * @param bias  NULL or F32 [N]; float outputs only
 * @param c     output, written only on success
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, shapes, dtype combination, missing scheme, bad
 *         parameters, bias with an integer output); LLMQ_ERR_STATE (an operand without scheme);
 *         LLMQ_ERR_UNSUPPORTED (valid but not provided, e.g. S32 output with per-group B);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; a and b may be shared read-only across contexts
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_matmul(llmq_context *ctx, const llmq_tensor *a,
                                                const llmq_tensor *b, const llmq_tensor *bias,
                                                llmq_tensor *c);

/**
 * llmq_matmul() with options (weight layout, requantization mode).
 * @param ctx, a, b, bias, c  as llmq_matmul()
 * @param options  borrowed for the call; NULL means defaults
 * @return as llmq_matmul(), plus LLMQ_ERR_ABI for a bad options `size` or reserved fields
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_matmul_with_options(llmq_context *ctx,
                                                             const llmq_tensor *a,
                                                             const llmq_tensor *b,
                                                             const llmq_tensor *bias,
                                                             llmq_tensor *c,
                                                             const llmq_matmul_options *options);

/**
 * Pack weights once for llmq_matmul(), in the layout that the CPU kernels read
 * (docs/KERNELS.md). Pass the result as `b` to llmq_matmul() any number of times; B itself may
 * be destroyed afterwards.
 *
 * - 8-bit weights (S8/U8) with parameters that do not vary along K (per tensor or per output
 *   channel), [N, K] or [K, N]: panels of 16 channels x 4 k, with the per-channel code sums that
 *   the zero-point corrections need. The packed tensor's scale and zero-point tensors are the
 *   ones llmq_matmul() reads: they may be read and changed like any other.
 * - 4-bit weights (S4/U4), [N, K], per tensor, per output channel or per group along K (any
 *   group size; K and the groups need not be multiples of anything: the layout pads them with
 *   zeros): blocks of 16 channels whose codes for 8 consecutive k share one 32-bit lane, so
 *   that the decoding kernels (W4A8, W4A16) read one contiguous stream with the channels in the
 *   vector lanes. The scales and zero points are copied into the packed layout as well (16
 *   channels per group contiguous, with the code sums of each group) and llmq_matmul() reads
 *   that copy: changing the packed tensor's scale or zero-point tensors afterwards has no
 *   effect (pack again instead).
 *
 * The layout is the same for every CPU tier, scalar included: a packed weight gives the same
 * results on any context, whatever its tier or thread count (it is never re-packed or
 * converted behind the caller's back); the results obey the same contract as the unpacked
 * weight (docs/gemm.md): integer products bit-identical, weight-only ones within its bound.
 * @param ctx      the context whose allocator holds the packed weights; must outlive them
 * @param b        host weights with a scheme: S8/U8 per tensor or per output channel, [N, K],
 *                 or [K, N] with options->weight_layout KN; or S4/U4 [N, K] per tensor, per
 *                 output channel or per group
 * @param options  NULL or options made by llmq_matmul_options_defaults(); only weight_layout
 *                 is read
 * @param packed   receives a new [N, K] tensor (destroy it with llmq_tensor_destroy()), NULL on
 *                 failure. Its data are private: it is accepted only as the weights of
 *                 llmq_matmul() with the default NK layout.
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, not 2-D or not quantized, bad parameters,
 *         already packed, 4-bit weights with the KN layout); LLMQ_ERR_STATE (b has no scheme);
 *         LLMQ_ERR_UNSUPPORTED (2-bit weights, 8-bit weights whose parameters vary along K, a
 *         device tensor: use those unpacked); LLMQ_ERR_ABI (options); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; the packed tensor is read-shared by any number of contexts and threads
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_matmul_pack_weights(llmq_context *ctx,
                                                             const llmq_tensor *b,
                                                             const llmq_matmul_options *options,
                                                             llmq_tensor **packed);

/**
 * Outlier decomposition (LLM.int8(), Dettmers et al., 2022): C = A * B^T where the columns j
 * of float activations A with some |A[m, j]| > @p threshold are multiplied in float and the
 * rest in INT8:
 *
 *     C = llmq_matmul(Q(A with the outlier columns set to 0), B, bias)
 *         + sum over outlier columns j, ascending, of A[:, j] * Bhat[:, j]^T
 *
 * where Q quantizes dynamically with @p activation_scheme (llmq_quantize_dynamic(): per token
 * for PER_TOKEN, so the outliers no longer widen every token's scale) and Bhat[n, j] =
 * (B[n, j] - zB) * sB is the dequantized weight. The float part is accumulated in float32
 * over the outlier columns, in ascending j, then added to the INT8 part. A zeroed column
 * quantizes to its zero point exactly and adds nothing to the INT8 part. B is the quantized
 * weight used for both parts, so the outlier columns lose the activation quantization error
 * but keep the weight's (LLM.int8() keeps float weights for them; dequantized weights avoid
 * storing both).
 * CPU only: device tensors are refused with LLMQ_ERR_UNSUPPORTED (no CUDA kernel yet).
 * @param ctx                context for messages and scratch memory
 * @param a                  F32 activations [..., K], host memory
 * @param b                  quantized weights [N, K] with a scheme, as llmq_matmul() takes
 *                           with integer activations (S8/U8/S4/U4/S2/U2, packed or not)
 * @param bias               NULL or F32 [N]
 * @param c                  F32 [..., N] with a's leading dimensions; written only on success
 * @param activation_scheme  S8 or U8, PER_TOKEN or PER_TENSOR; NULL: s8 symmetric per token;
 *                           borrowed for the call
 * @param threshold          a column is an outlier when some |A[m, j]| > threshold; <= 0
 *                           selects LLM.int8()'s default 6.0; +Inf: no outliers; NaN is refused
 * @param outlier_count      NULL, or receives the number of outlier columns
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtypes, shapes, overlap, a NaN threshold, an
 *         activation scheme that is not s8/u8 per token or per tensor, and what llmq_matmul()
 *         refuses); LLMQ_ERR_NON_FINITE (a NaN in a: the message gives its row and column);
 *         LLMQ_ERR_STATE (b without a scheme); LLMQ_ERR_UNSUPPORTED (device tensors, or what
 *         llmq_matmul() does not provide); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; a and b may be shared read-only across contexts
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_matmul_outlier(llmq_context *ctx, const llmq_tensor *a,
                                                        const llmq_tensor *b,
                                                        const llmq_tensor *bias, llmq_tensor *c,
                                                        const llmq_scheme *activation_scheme,
                                                        float threshold,
                                                        int64_t *outlier_count);

/**
 * Whether @p t was made by llmq_matmul_pack_weights().
 * @param t  NULL allowed
 * @return 1 or 0 (0 for NULL)
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API int32_t llmq_tensor_is_packed(const llmq_tensor *t);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_GEMM_H */
