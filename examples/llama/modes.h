/* modes.h - quantization modes of the engine: which scheme each linear layer gets.
 * SPDX-License-Identifier: MIT */
#ifndef LLAMA_MODES_H
#define LLAMA_MODES_H

#include "engine.h"

/* Apply a named mode ("fp32", "w8a8", "w4a16-g32", ...) to every linear layer but the
 * classifier (kept in float). Returns 0, or -1 listing the modes on stderr. */
int llama_apply_mode(llama *m, const char *mode);

/* Apply a recipe: each linear layer gets what the recipe resolves for its weight tensor's name
 * (e.g. layers.0.attention.wq.weight). Layers whose activations are static need calibration
 * (llama_calibrate) before use. Returns 0, or -1 with a message. */
int llama_apply_recipe(llama *m, const llmq_recipe *recipe);

/* SmoothQuant as the recipe asks (llmq_recipe_resolve_smoothquant()): linear layers with the
 * same fold target form a group; the per-channel maxima of their input come from a float pass
 * over `text` (up to max_tokens predictions; all layers are reset to float first), then each
 * group's weights are smoothed (alpha fixed or searched on the first 1024 input rows) and the
 * divisor is folded into the target (an RMSNorm weight, or the output rows of a linear layer).
 * Call it before llama_apply_recipe(), which quantizes the smoothed weights; static activations
 * are then calibrated on the smoothed model. Returns 0 (also when nothing is smoothed) or -1. */
struct tokenizer;
int llama_smooth(llama *m, const struct tokenizer *t, const llmq_recipe *r, const char *text,
                 int64_t max_tokens);

/* The names of the modes, NULL-terminated. */
extern const char *const llama_mode_names[];

#endif
