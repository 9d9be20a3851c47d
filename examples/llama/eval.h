/* eval.h - perplexity under the project's protocol (docs/accuracy.md). SPDX-License-Identifier: MIT */
#ifndef LLAMA_EVAL_H
#define LLAMA_EVAL_H

#include <stdint.h>

#include "engine.h"
#include "tokenizer.h"

/* Split text on blank lines, strip each paragraph of surrounding whitespace and skip empty
 * ones, encode each with BOS and the dummy-prefix space, truncate to 257 tokens, skip those shorter than 8, score every next-token prediction
 * (one forward per paragraph, no context between paragraphs), stop after the paragraph that
 * reaches max_tokens predictions. Writes the summed negative log-likelihood (nats) and the
 * number of predictions. Returns 0 or -1. */
int llama_eval(llama *m, const tokenizer *t, const char *text, int64_t max_tokens,
               double *nll, int64_t *count);

/* Read a whole file into a NUL-terminated buffer (free() it), or NULL with a message. */
char *llama_read_file(const char *path);

#endif
