/* half.h - f16 and bf16 conversions, round to nearest even (internal, static inline so that
 * ISA translation units can use them without SIGILL hazards). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CORE_HALF_H
#define LLMQ_CORE_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t llmq_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float llmq_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float llmq_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) /* Inf / NaN, payload kept */
        return llmq_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return llmq_bits_f32(sign);
        /* subnormal: man * 2^-24, exact in float */
        const float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return llmq_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t llmq_f32_to_f16(float f)
{
    const uint32_t u = llmq_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep it quiet and non-zero */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below the smallest normal f16: subnormal or zero */
        /* the float arithmetic rounds to nearest even at the 2^-24 step */
        const float v = llmq_bits_f32(a) * 0x1p24f;
        const float r = (v + 0x1.8p23f) - 0x1.8p23f;
        return (uint16_t)(sign | (uint16_t)r);
    }
    /* normal: rebias and round the 13 dropped bits to nearest even */
    const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

static inline float llmq_bf16_to_f32(uint16_t b)
{
    return llmq_bits_f32((uint32_t)b << 16);
}

static inline uint16_t llmq_f32_to_bf16(float f)
{
    const uint32_t u = llmq_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
