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

/* The names of the modes, NULL-terminated. */
extern const char *const llama_mode_names[];

#endif
