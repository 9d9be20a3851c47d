/* fuzz_recipe.c - libFuzzer target: any bytes as a YAML recipe. A recipe that loads must
 * resolve any name (SmoothQuant settings too) and create the quantizers it promises without a
 * crash.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>

#include "llmq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"layers.0.attention.wq.weight", "output.weight", "x", ""};
    llmq_context *ctx = NULL;
    llmq_recipe *r = NULL;
    if (llmq_context_create(&ctx, "cpu") == LLMQ_OK &&
        llmq_recipe_parse(ctx, (const char *)data, size, "fuzz.yaml", &r) == LLMQ_OK) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            llmq_recipe_choice c;
            if (llmq_recipe_choice_defaults(&c, sizeof c) == LLMQ_OK &&
                llmq_recipe_resolve(ctx, r, names[i], &c) == LLMQ_OK)
                llmq_recipe_choice_clear(&c);
            llmq_recipe_smoothquant sq;
            sq.size = sizeof sq;
            if (llmq_recipe_resolve_smoothquant(ctx, r, names[i], &sq) != LLMQ_OK)
                sq.enabled = 0; /* a fold template past the name's components */
            llmq_quantizer *q = NULL;
            if (llmq_recipe_create_quantizer(ctx, r, names[i], &q) == LLMQ_OK)
                llmq_quantizer_destroy(q);
        }
    }
    llmq_recipe_destroy(r);
    llmq_context_destroy(ctx);
    return 0;
}
