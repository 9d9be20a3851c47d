/* llmq/plan.h - mixed-precision planning: a weight scheme per tensor under a bit budget.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_PLAN_H
#define LLMQ_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/scheme.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Mixed-precision planning (docs/llm-methods.md): measure how much each candidate weight scheme
 * hurts each tensor (its output error on calibration inputs, and its weight SQNR), then choose
 * one scheme per tensor so that the total error is smallest while the average bits per weight,
 * scales and zero points included, stay within a budget; write the choice as a recipe. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A plan: candidate schemes, the tensors measured under each, and after llmq_plan_solve() the
 * scheme chosen for each tensor. Mutable: one thread at a time (@thread ctx-exclusive); its
 * getters only read.
 */
typedef struct llmq_plan llmq_plan;

/** What llmq_plan_solve() minimizes; e(t, c) is tensor t's relative error under candidate c
 *  (llmq_plan_sensitivity()). */
typedef enum llmq_plan_objective {
    /** sum over tensors of e(t, c): every tensor counts the same, whatever its size */
    LLMQ_PLAN_OBJECTIVE_SUM = 0,
    /** sum of numel(t) * e(t, c) / sum of numel(t): large tensors count more */
    LLMQ_PLAN_OBJECTIVE_SIZE_WEIGHTED = 1,
    LLMQ_PLAN_OBJECTIVE_FORCE32_ = 0x7fffffff
} llmq_plan_objective;

/**
 * Create an empty plan with the objective LLMQ_PLAN_OBJECTIVE_SUM.
 * @param ctx  context for the plan's memory and messages; must outlive the plan
 * @param out  receives the plan (destroy it with llmq_plan_destroy()); NULL on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_create(llmq_context *ctx, llmq_plan **out);

/** Destroy a plan; NULL is a no-op. @param p  the plan; invalid afterwards
 *  @thread exclusive on p @since 0.2 */
LLMQ_API void llmq_plan_destroy(llmq_plan *p);

/**
 * Add a candidate weight scheme, before the first tensor. A candidate must be one a recipe can
 * state (docs/recipes.md): granularity PER_TENSOR, PER_CHANNEL or PER_GROUP, and no
 * llmq_scheme_set_range() other than the narrowed grid a recipe's `bits` gives.
 * @param ctx     the plan's context
 * @param p       the plan
 * @param name    a short unique name shown in reports, e.g. "w4g32"; copied
 * @param scheme  borrowed for the call (the plan keeps a copy)
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, empty or duplicate name, a scheme a recipe
 *         cannot state, more than 64 candidates); LLMQ_ERR_STATE (tensors already added);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_add_candidate(llmq_context *ctx, llmq_plan *p,
                                                            const char *name,
                                                            const llmq_scheme *scheme);

/**
 * Add candidates by name, comma-separated, e.g. "w8,w4g32,w4g128". A name is
 * `w<bits>[g<group>][s|a]`: bits 2, 3, 4 or 8 (3 bits are stored in a 4-bit dtype); `g<group>`
 * quantizes per group of that many input elements, without it per output channel (axis 0);
 * `s` symmetric, `a` asymmetric, and without either 8 bits are symmetric and fewer bits
 * asymmetric (as the engine's w8a16 and w4a16-g* modes). Rounding half to even, numerics
 * pytorch. Either every name is added or none.
 * @param ctx   the plan's context
 * @param p     the plan
 * @param list  borrowed for the call
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, a malformed name: the message quotes it and
 *         gives the grammar, a duplicate); LLMQ_ERR_STATE (tensors already added);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_add_candidates(llmq_context *ctx, llmq_plan *p,
                                                             const char *list);

/**
 * Measure tensor @p name under every candidate: quantize @p weight (dynamic parameters,
 * llmq_quantize_dynamic()), dequantize to Ŵ, and record for each candidate the weight SQNR
 * 10·log10(‖W‖² / ‖W − Ŵ‖²) in dB, the relative output error
 * ‖X·Wᵀ − X·Ŵᵀ‖² / ‖X·Wᵀ‖² on the calibration inputs X (0 when both are 0), or without
 * inputs the relative weight error ‖W − Ŵ‖² / ‖W‖² (the output error for white inputs), and
 * the bytes llmq stores: the codes (packed rows of the dtype's width) plus an F32 scale and an
 * I32 zero point per parameter set, as llmq_model_writer_declare() writes them. Nothing of
 * @p weight or @p inputs is kept.
 * @param ctx     the plan's context
 * @param p       the plan, with at least one candidate
 * @param name    the tensor's name in the model; copied; unique in the plan
 * @param weight  F32, F16 or BF16, 2-D [out, in]; read during the call only
 * @param inputs  NULL, or the layer's calibration inputs: F32, F16 or BF16, 2-D [tokens, in];
 *                read during the call only
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, duplicate name, dtypes, shapes, a candidate
 *         that does not fit the shape, e.g. a per-channel axis beyond 2-D);
 *         LLMQ_ERR_UNSUPPORTED (device tensors); LLMQ_ERR_STATE (no candidate);
 *         LLMQ_ERR_NON_FINITE (a NaN in the weight, a NaN or Inf in the inputs);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; weight and inputs are only read
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_add_tensor(llmq_context *ctx, llmq_plan *p,
                                                         const char *name,
                                                         const llmq_tensor *weight,
                                                         const llmq_tensor *inputs);

/** Number of candidates. @param p  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int32_t llmq_plan_candidate_count(const llmq_plan *p);

/** Name of candidate @p index. @param p  NULL allowed @param index  0..count-1
 *  @return the name, owned by the plan; NULL when out of range @thread read-shared
 *  @since 0.2 */
LLMQ_API const char *llmq_plan_candidate_name(const llmq_plan *p, int32_t index);

/** Scheme of candidate @p index. @param p  NULL allowed @param index  0..count-1
 *  @return the scheme, owned by the plan (never destroy it); NULL when out of range
 *  @thread read-shared @since 0.2 */
LLMQ_API const llmq_scheme *llmq_plan_candidate_scheme(const llmq_plan *p, int32_t index);

/** Number of tensors measured. @param p  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int64_t llmq_plan_tensor_count(const llmq_plan *p);

/** Name of tensor @p index, in the order added. @param p  NULL allowed
 *  @param index  0..count-1 @return the name, owned by the plan; NULL when out of range
 *  @thread read-shared @since 0.2 */
LLMQ_API const char *llmq_plan_tensor_name(const llmq_plan *p, int64_t index);

/**
 * What llmq_plan_add_tensor() measured for tensor @p tensor under candidate @p candidate.
 * @param p              the plan
 * @param tensor         0..tensor count-1
 * @param candidate      0..candidate count-1
 * @param error          NULL, or receives the relative output error (relative weight error
 *                       when the tensor had no inputs)
 * @param sqnr_db        NULL, or receives the weight SQNR in dB (+Inf when exact)
 * @param bits_per_weight  NULL, or receives 8 · stored bytes / numel
 * @param calibrated     NULL, or receives 1 when @p error came from calibration inputs
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL p, an index out of range; no message: there is
 *         no context)
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_sensitivity(const llmq_plan *p, int64_t tensor,
                                                          int32_t candidate, double *error,
                                                          double *sqnr_db,
                                                          double *bits_per_weight,
                                                          int32_t *calibrated);

/**
 * Set what llmq_plan_solve() minimizes.
 * @param p          the plan; NULL gives LLMQ_ERR_INVALID_ARG without a message
 * @param objective  an llmq_plan_objective value
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, unknown value)
 * @thread exclusive on p
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_set_objective(llmq_plan *p,
                                                            llmq_plan_objective objective);

/**
 * Choose one candidate per tensor minimizing the objective subject to
 * 8 · (total stored bytes) ≤ @p budget_bits · (total weights): a multiple-choice knapsack,
 * solved by dynamic programming over the extra cost of each tensor beyond its cheapest
 * candidate, in units of the greatest common divisor of those extra costs. The result is
 * exact when the budget's slack spans at most 2^26 / (tensor count) units; otherwise the unit
 * is coarsened and costs are rounded up, so the budget still holds and the result is at worst
 * slightly conservative (llmq_plan_result() tells which). Ties go to the candidate added
 * first. Solving again replaces the previous choice.
 * @param ctx          the plan's context
 * @param p            the plan, with at least one tensor
 * @param budget_bits  average bits per weight allowed, > 0 and finite
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, a budget that is not positive and finite, or
 *         below the cheapest assignment: the message gives that minimum);
 *         LLMQ_ERR_STATE (no tensor); LLMQ_ERR_OUT_OF_MEMORY. The previous choice is cleared
 *         on failure.
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_solve(llmq_context *ctx, llmq_plan *p,
                                                    double budget_bits);

/** Candidate chosen for tensor @p tensor by the last llmq_plan_solve(). @param p  NULL allowed
 *  @param tensor  0..tensor count-1 @return the candidate's index; -1 when not solved, or out
 *  of range @thread read-shared @since 0.2 */
LLMQ_API int32_t llmq_plan_choice(const llmq_plan *p, int64_t tensor);

/**
 * Totals of the last llmq_plan_solve().
 * @param p                the plan
 * @param objective        NULL, or receives the minimized objective
 * @param bits_per_weight  NULL, or receives the average bits per weight achieved
 * @param exact            NULL, or receives 1 when the dynamic program used the exact costs
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL p); LLMQ_ERR_STATE (not solved); no message:
 *         the getters only read
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_result(const llmq_plan *p, double *objective,
                                                     double *bits_per_weight, int32_t *exact);

/**
 * Write the solved plan as a recipe (docs/recipes.md): `version: 1`, float defaults, and one
 * rule per planned tensor whose `match` is the tensor's exact name (glob characters escaped)
 * and whose `weight` is the chosen candidate; tensors outside the plan keep their float
 * weights. The text is checked before it is written: it must load and resolve every tensor to
 * its chosen scheme. It goes to a temporary file beside @p path renamed over it, so a failure
 * leaves no partial output.
 * @param ctx   the plan's context
 * @param p     a solved plan
 * @param path  borrowed for the call
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, empty path); LLMQ_ERR_STATE (not solved);
 *         LLMQ_ERR_IO (cannot write: the message names the path); LLMQ_ERR_INTERNAL (the
 *         recipe would not read back as planned); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_plan_write_recipe(llmq_context *ctx,
                                                           const llmq_plan *p,
                                                           const char *path);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_PLAN_H */
