/* rounding.h - the rounding modes, on values already clamped to the integer grid (internal,
 * static inline for every ISA translation unit). SPDX-License-Identifier: MIT
 *
 * Clamping before rounding is exact: rounding is monotonic and the grid bounds are integers,
 * so round(clamp(v, a, b)) == clamp(round(v), a, b). After the clamp |v| <= 2^16, which makes
 * the tricks below exact and lets compilers vectorize them with SSE2 alone. */
#ifndef LLMQ_QUANT_ROUNDING_H
#define LLMQ_QUANT_ROUNDING_H

#include <math.h>
#include <stdint.h>

/* Ties to even in the default rounding mode: adding 1.5 * 2^23 pushes the fraction out of
 * the mantissa (|v| < 2^22). Must not be compiled with -ffast-math. */
static inline float llmq_round_half_even(float v)
{
    return (v + 0x1.8p23f) - 0x1.8p23f;
}

/* Ties away from zero: truncate, then step away when the dropped fraction is >= 0.5. */
static inline float llmq_round_half_away(float v)
{
    const float t = (float)(int32_t)v;
    const float d = v - t; /* exact: |v| < 2^23 */
    return t + (float)(d >= 0.5f) - (float)(d <= -0.5f);
}

/* SplitMix64 finaliser: a counter-based generator, so the draw for element `index` is the
 * same whatever the chunking or thread split. */
static inline uint64_t llmq_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Stochastic rounding: floor(v + u) with u in [0, 1) drawn from (seed, index); rounds up
 * with probability equal to the fraction of v. Evaluated in double so v + u never rounds. */
static inline float llmq_round_stochastic(float v, uint64_t seed, uint64_t index)
{
    const uint64_t r = llmq_mix64(seed ^ llmq_mix64(index + 0x9e3779b97f4a7c15ull));
    const double u = (double)(r >> 11) * 0x1p-53;
    return (float)floor((double)v + u);
}

#endif
