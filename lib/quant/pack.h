/* pack.h - sub-byte packing (internal, static inline). SPDX-License-Identifier: MIT
 *
 * Two 4-bit codes per byte with element 2i in the low nibble; four 2-bit codes per byte with
 * element 4i in the lowest bits. Codes are stored as their low bits (two's complement for
 * signed dtypes) and sign-extended on unpack. */
#ifndef LLMQ_QUANT_PACK_H
#define LLMQ_QUANT_PACK_H

#include <stdbool.h>
#include <stdint.h>

#include "llmq/tensor.h"

/* Pack n codes (one per byte) into dst, starting at element `first` of dst (first is a
 * multiple of 8 / bits or the bytes around it are merged). bits is 4 or 2. */
static inline void llmq_pack_codes(uint8_t *dst, int64_t first, const uint8_t *codes, int64_t n,
                                   int bits)
{
    const int per = 8 / bits;
    const uint8_t mask = (uint8_t)((1u << bits) - 1);
    if (first % per == 0) { /* whole bytes first: no read-modify-write */
        uint8_t *d = dst + first / per;
        const int64_t whole = n / per;
        if (bits == 4) {
            for (int64_t k = 0; k < whole; k++)
                d[k] = (uint8_t)((codes[2 * k] & 15) | (codes[2 * k + 1] << 4));
        } else {
            for (int64_t k = 0; k < whole; k++)
                d[k] = (uint8_t)((codes[4 * k] & 3) | (codes[4 * k + 1] & 3) << 2 |
                                 (codes[4 * k + 2] & 3) << 4 | (codes[4 * k + 3] << 6));
        }
        first += whole * per;
        codes += whole * per;
        n -= whole * per;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t e = first + i;
        const int shift = (int)(e % per) * bits;
        uint8_t *b = dst + e / per;
        *b = (uint8_t)((*b & ~(mask << shift)) | ((codes[i] & mask) << shift));
    }
}

/* Unpack n codes starting at element `first` of src into one int32 each. */
static inline void llmq_unpack_codes(const uint8_t *src, int64_t first, int32_t *codes, int64_t n,
                                     int bits, bool is_signed)
{
    const int per = 8 / bits;
    const uint32_t mask = (1u << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t e = first + i;
        const uint32_t u = (src[e / per] >> ((e % per) * bits)) & mask;
        codes[i] = is_signed && (u >> (bits - 1)) ? (int32_t)u - (1 << bits) : (int32_t)u;
    }
}

/* The code at column `col` of a row of a quantized dtype, sign-extended for signed dtypes. */
static inline int32_t llmq_code_at(const uint8_t *row, llmq_dtype dt, int64_t col)
{
    switch (dt) {
    case LLMQ_DTYPE_S8: return ((const int8_t *)row)[col];
    case LLMQ_DTYPE_U8: return row[col];
    case LLMQ_DTYPE_S4: return (int32_t)(int8_t)(uint8_t)((row[col / 2] >> (col % 2 * 4)) << 4) >> 4;
    case LLMQ_DTYPE_U4: return (row[col / 2] >> (col % 2 * 4)) & 15;
    case LLMQ_DTYPE_S2: return (int32_t)(int8_t)(uint8_t)((row[col / 4] >> (col % 4 * 2)) << 6) >> 6;
    default: return (row[col / 4] >> (col % 4 * 2)) & 3;
    }
}

#endif
