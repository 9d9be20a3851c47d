/* llmq/recipe.h - YAML recipes: which scheme each tensor of a model gets.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_RECIPE_H
#define LLMQ_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/quantizer.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * YAML recipes: which weight scheme, activation scheme and calibration each tensor of a model
 * gets, by shell globs over tensor names (docs/recipes.md). */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A parsed recipe (docs/recipes.md): a version, defaults, and an ordered list of rules
 * matched against tensor names with shell globs; the first matching rule wins, and its fields
 * override the defaults. Immutable once loaded: any number of threads may resolve names
 * (@thread read-shared).
 */
typedef struct llmq_recipe llmq_recipe;

/** How a layer's input activations are quantized. */
typedef enum llmq_activation_mode {
    LLMQ_ACTIVATION_FLOAT = 0,   /**< not quantized (weight-only schemes) */
    LLMQ_ACTIVATION_DYNAMIC = 1, /**< parameters computed from each batch at run time */
    LLMQ_ACTIVATION_STATIC = 2,  /**< parameters calibrated once (static PTQ) */
    LLMQ_ACTIVATION_MODE_FORCE32_ = 0x7fffffff
} llmq_activation_mode;

/**
 * What a recipe says for one tensor; versioned by `size`, filled by llmq_recipe_resolve() and
 * released with llmq_recipe_choice_clear().
 */
typedef struct llmq_recipe_choice {
    size_t size;                      /**< sizeof(llmq_recipe_choice) as compiled by the caller */
    int32_t rule;                     /**< index of the matching rule; -1: the defaults */
    uint32_t skip;                    /**< 1: keep the tensor as it is */
    llmq_scheme *weight;              /**< owned; NULL when skipped or the weights stay float */
    llmq_scheme *activation;          /**< owned; NULL for float activations */
    llmq_activation_mode activation_mode; /**< FLOAT when activation is NULL */
    uint32_t reserved0_;              /**< zero */
    uint64_t reserved[6];             /**< zero */
} llmq_recipe_choice;

/**
 * Load a recipe from a YAML file (at most 16 MB); everything is validated here, so that a
 * recipe that loads never fails later.
 * @param ctx   context for memory and messages; must outlive the recipe
 * @param path  borrowed for the call
 * @param out   receives the recipe (destroy it with llmq_recipe_destroy()); NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_IO (cannot read the file: the message names it);
 *         LLMQ_ERR_PARSE (`file:line:column: key.path: reason` for YAML syntax, unknown keys,
 *         wrong types, invalid values, an unknown version); LLMQ_ERR_INVALID_ARG (NULL);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_load(llmq_context *ctx, const char *path,
                                                     llmq_recipe **out);

/**
 * Parse a recipe from memory (@p size bytes of YAML; need not be NUL-terminated).
 * @param ctx     context for memory and messages; must outlive the recipe
 * @param text    the YAML; borrowed for the call; may be NULL when size is 0
 * @param size    bytes of text
 * @param source  the name used in messages, e.g. a file name; NULL means "<recipe>"
 * @param out     receives the recipe (destroy it with llmq_recipe_destroy()); NULL on failure
 * @return as llmq_recipe_load() without LLMQ_ERR_IO
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_parse(llmq_context *ctx, const char *text,
                                                      size_t size, const char *source,
                                                      llmq_recipe **out);

/** Destroy a recipe; NULL is a no-op. Choices and quantizers made from it stay valid.
 *  @param r  the recipe; invalid afterwards @thread exclusive on r @since 0.2 */
LLMQ_API void llmq_recipe_destroy(llmq_recipe *r);

/** Number of rules. @param r  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int32_t llmq_recipe_rule_count(const llmq_recipe *r);

/**
 * Fill @p choice for a caller compiled against a struct of @p size bytes: no rule, nothing
 * owned.
 * @param choice  written; must not be NULL
 * @param size    sizeof(llmq_recipe_choice) as the caller sees it
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL), LLMQ_ERR_ABI (size out of range)
 * @thread reentrant
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_choice_defaults(llmq_recipe_choice *choice,
                                                                size_t size);

/**
 * Which scheme applies to @p tensor_name: the first rule whose `match` globs match it (shell
 * patterns, `*` crossing dots), merged over the defaults. The schemes in @p choice are fresh
 * copies owned by the caller; @p choice must be clear (from llmq_recipe_choice_defaults() or
 * llmq_recipe_choice_clear()).
 * @param ctx          context for the schemes' memory and messages; must outlive the schemes
 * @param r            the recipe; only read
 * @param tensor_name  borrowed for the call
 * @param choice       in: clear, with its `size` set; out: the choice (release it with
 *                     llmq_recipe_choice_clear()); left clear on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, choice holding schemes), LLMQ_ERR_ABI (a bad
 *         `size` or non-zero reserved fields), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; the recipe is read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_resolve(llmq_context *ctx, const llmq_recipe *r,
                                                        const char *tensor_name,
                                                        llmq_recipe_choice *choice);

/**
 * Create the calibration quantizer the recipe asks for at @p tensor_name: its static activation
 * scheme and the observer with its settings (the matching rule's `calibration` over the
 * defaults'; min/max when none is named). Observe activations, finalize, then apply the
 * parameters to the quantized activations (llmq_quantizer_apply()).
 * @param ctx          context for the quantizer and messages
 * @param r            the recipe
 * @param tensor_name  the weight tensor whose input activations are calibrated
 * @param out          receives the quantizer (destroy it); NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_STATE (the tensor's activations are float or dynamic);
 *         LLMQ_ERR_INVALID_ARG (NULL); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; the recipe is read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_create_quantizer(llmq_context *ctx,
                                                                 const llmq_recipe *r,
                                                                 const char *tensor_name,
                                                                 llmq_quantizer **out);

/**
 * What a recipe says about SmoothQuant for one weight tensor (its `smoothquant` sections,
 * docs/recipes.md); versioned by `size`, filled by llmq_recipe_resolve_smoothquant().
 * Tensors with the same `fold` share one input and form one group: smooth them together with
 * llmq_smoothquant_apply().
 */
typedef struct llmq_recipe_smoothquant {
    size_t size;      /**< set by the caller: sizeof(llmq_recipe_smoothquant) */
    int32_t rule;     /**< index of the matching rule; -1: the defaults */
    /** 1: smooth this tensor: a `smoothquant` section applies (not `none`), the tensor is not
     *  skipped, and it has a fold target */
    uint32_t enabled;
    /** 1: `alpha: search`: choose alpha with llmq_smoothquant_search() over `grid` */
    uint32_t search;
    float alpha;      /**< the fixed alpha; 0.5 unless the recipe sets one (also with search) */
    int32_t grid;     /**< intervals of [0, 1] for the search; 20 unless set */
    uint32_t reserved0_; /**< zero */
    /** where the divisor is folded: the name of the tensor producing the input (an RMSNorm
     *  weight, or a matmul weight whose output rows are divided), NUL-terminated; "" when the
     *  tensor has none */
    char fold[256];
    uint64_t reserved[4]; /**< zero */
} llmq_recipe_smoothquant;

/**
 * The SmoothQuant settings of @p tensor_name: the first matching rule's `smoothquant` merged
 * over the defaults', as for llmq_recipe_resolve(). The fold target is the section's `fold`
 * template with `{i}` replaced by the i-th dot-separated component of @p tensor_name (from 1),
 * or, without `fold`, the llama convention: `P.attention.w{q,k,v}.weight` folds into
 * `P.attention_norm.weight`, `P.feed_forward.w{1,3}.weight` into `P.ffn_norm.weight`, and
 * other tensors have none.
 * @param ctx          context for messages
 * @param r            the recipe; only read
 * @param tensor_name  borrowed for the call
 * @param out          in: its `size` set; out: written entirely (reserved fields zeroed)
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, a `{i}` past the components of tensor_name, a
 *         fold name longer than 255 bytes); LLMQ_ERR_ABI (a bad `size`)
 * @thread ctx-exclusive; the recipe is read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_recipe_resolve_smoothquant(
    llmq_context *ctx, const llmq_recipe *r, const char *tensor_name,
    llmq_recipe_smoothquant *out);

/** Destroy the schemes of @p choice and reset it to the defaults, keeping its `size`; NULL is
 *  a no-op. @param choice  a choice filled by llmq_recipe_choice_defaults() or
 *  llmq_recipe_resolve() @thread exclusive on choice @since 0.2 */
LLMQ_API void llmq_recipe_choice_clear(llmq_recipe_choice *choice);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_RECIPE_H */
