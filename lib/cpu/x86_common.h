/* x86_common.h - AVX2 helpers shared by the x86 kernel translation units (internal).
 * SPDX-License-Identifier: MIT
 *
 * Everything here is `static inline` and only included by translation units compiled with at
 * least -mavx2 -mfma -mf16c (kern_avx2.c, kern_avxvnni.c, kern_avx512.c): no copy of it can end
 * up in code that runs before the tier was checked. */
#ifndef LLMQ_CPU_X86_COMMON_H
#define LLMQ_CPU_X86_COMMON_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "core/half.h"

#if defined(__clang__)
#define LLMQ_UNROLL _Pragma("unroll")
#else
#define LLMQ_UNROLL _Pragma("GCC unroll 16")
#endif
#define LLMQ_ALWAYS_INLINE inline __attribute__((always_inline))

/* How far ahead the 4-bit decoding kernels (a few rows of A against prepacked u4 / s4 weights
 * from memory) prefetch their weight streams: 4 KB ahead took W4A16 and W4A8 prepacked at M = 1
 * (4096^2, weights cold) from 0.55 - 0.64 to 0.38 - 0.43 ms and from 0.40 - 0.49 to
 * 0.32 - 0.38 ms on 1 thread of the build host. The 8-bit kernels read 4 streams at once and
 * were not faster with it (W8A16 prepacked hot: 0.39 - 0.46 -> 0.60 - 0.72 ms). A prefetch
 * past the end of the weights is harmless. */
#define X86_PREFETCH_AHEAD 4096
static LLMQ_ALWAYS_INLINE void x86_prefetch(const void *p)
{
    /* inline assembly: GCC 12's dead-code elimination drops most _mm_prefetch calls here */
    __asm__ volatile("prefetcht0 %0" : : "m"(*((const char *)p + X86_PREFETCH_AHEAD)));
}

static inline bool x86_is_float(llmq_dtype d)
{
    return d == LLMQ_DTYPE_F32 || d == LLMQ_DTYPE_F16 || d == LLMQ_DTYPE_BF16;
}

/* 8 floats from f32 / f16 / bf16 storage (exact conversions). */
static inline __m256 x86_load8(const void *row, llmq_dtype dt, int64_t c)
{
    if (dt == LLMQ_DTYPE_F32)
        return _mm256_loadu_ps((const float *)row + c);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c));
    if (dt == LLMQ_DTYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* One element, as the scalar reference reads it. */
static inline float x86_load1(const void *row, llmq_dtype dt, int64_t c)
{
    if (dt == LLMQ_DTYPE_F32)
        return ((const float *)row)[c];
    const uint16_t h = ((const uint16_t *)row)[c];
    return dt == LLMQ_DTYPE_F16 ? llmq_f16_to_f32(h) : llmq_bf16_to_f32(h);
}

/* f32 -> bf16 round to nearest even, NaN kept quiet: llmq_f32_to_bf16 on 8 lanes (int32 lanes
 * holding the 16-bit results). */
static inline __m256i x86_bf16_bits(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(r, q, nan);
}

/* Store n <= 8 floats as f32 / f16 / bf16 (f16: vcvtps2ph rounds to nearest even and keeps NaN
 * quiet with its top payload bits, which is llmq_f32_to_f16 bit for bit). */
static inline void x86_store_float(void *row, llmq_dtype dt, int64_t c, __m256 v, int n)
{
    if (dt == LLMQ_DTYPE_F32) {
        if (n == 8) {
            _mm256_storeu_ps((float *)row + c, v);
        } else {
            float t[8];
            _mm256_storeu_ps(t, v);
            memcpy((float *)row + c, t, sizeof(float) * (size_t)n);
        }
        return;
    }
    __m128i h;
    if (dt == LLMQ_DTYPE_F16) {
        h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    } else {
        const __m256i b = x86_bf16_bits(v);
        h = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    }
    if (n == 8) {
        _mm_storeu_si128((__m128i *)((uint16_t *)row + c), h);
    } else {
        uint16_t t[8];
        _mm_storeu_si128((__m128i *)t, h);
        memcpy((uint16_t *)row + c, t, sizeof(uint16_t) * (size_t)n);
    }
}

/* One float as the scalar reference stores it. */
static inline void x86_store1(void *row, llmq_dtype dt, int64_t c, float v)
{
    if (dt == LLMQ_DTYPE_F32)
        ((float *)row)[c] = v;
    else if (dt == LLMQ_DTYPE_F16)
        ((uint16_t *)row)[c] = llmq_f32_to_f16(v);
    else
        ((uint16_t *)row)[c] = llmq_f32_to_bf16(v);
}

/* 4 x 8 int32 codes (already on the grid, so no saturation happens) -> 32 bytes in order. */
static inline __m256i x86_pack_codes32(__m256i q0, __m256i q1, __m256i q2, __m256i q3, int sgn)
{
    const __m256i p01 = _mm256_packs_epi32(q0, q1), p23 = _mm256_packs_epi32(q2, q3);
    const __m256i b = sgn ? _mm256_packs_epi16(p01, p23) : _mm256_packus_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 8 int32 codes on the grid -> 8 bytes. */
static inline void x86_store_codes8(uint8_t *dst, __m256i q, int sgn)
{
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i w = _mm_packs_epi32(lo, hi);
    const __m128i b = sgn ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64((__m128i *)dst, b);
}

/* The low and high nibbles of 16 bytes of packed 4-bit codes (elements 2i and 2i + 1) as
 * bytes, sign-extended from 4 bits when sgn. */
static inline void x86_nibbles(__m128i x, bool sgn, __m128i *lo, __m128i *hi)
{
    const __m128i m4 = _mm_set1_epi8(0x0f), s8 = _mm_set1_epi8(8);
    *lo = _mm_and_si128(x, m4);
    *hi = _mm_and_si128(_mm_srli_epi16(x, 4), m4);
    if (sgn) {
        *lo = _mm_sub_epi8(_mm_xor_si128(*lo, s8), s8);
        *hi = _mm_sub_epi8(_mm_xor_si128(*hi, s8), s8);
    }
}

static inline int32_t x86_hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float x86_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int x86_any(__m256 mask)
{
    return _mm256_movemask_ps(mask) != 0;
}

#endif
