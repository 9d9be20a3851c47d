/* plan_impl.h - what the recipe writer needs of a plan (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_ALGO_PLAN_IMPL_H
#define LLMQ_ALGO_PLAN_IMPL_H

#include <stdint.h>

#include "llmq/plan.h"
#include "llmq/scheme.h"

/* The `bits` a recipe writes for a scheme's narrowed grid: 0 without a range, 2..4 for the
 * grids a recipe's bits give inside a wider dtype (lib/recipe/recipe.c), -1 for any other
 * range. */
int32_t llmq_plan_narrowed_bits(const llmq_scheme *s);

#endif
