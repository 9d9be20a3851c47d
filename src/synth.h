/* synth.h - LLM-like synthetic tensors for the demo and benchmarks. SPDX-License-Identifier: MIT */
#ifndef LLMQ_CLI_SYNTH_H
#define LLMQ_CLI_SYNTH_H

#include <stdint.h>

/* Weights [rows, cols]: Student-t (4 degrees of freedom) values, each row with its own
 * magnitude (log-normal), around 0.02 like trained linear layers. */
void synth_weights(float *w, int64_t rows, int64_t cols, uint64_t seed);

/* Activations [tokens, cols]: Gaussian, each token with its own magnitude, and `outliers`
 * channels 20 to 100 times larger than the rest (the LLM.int8() observation). */
void synth_activations(float *x, int64_t tokens, int64_t cols, int outliers, uint64_t seed);

/* As synth_activations, with the outlier channels and gains drawn from channel_seed and the
 * values from seed: batches of one layer's activations share their outlier channels. */
void synth_activation_batch(float *x, int64_t tokens, int64_t cols, int outliers,
                            uint64_t channel_seed, uint64_t seed);

/* 10 log10(sum ref^2 / sum (ref - got)^2), and the largest |ref - got|. */
double synth_sqnr_db(const float *ref, const float *got, int64_t n, double *max_abs_err);

#endif
