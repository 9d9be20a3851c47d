/* x86_ukr_v16.h - the VNNI microkernel, written once over a 16-lane int32 vector type V16
 * (internal). SPDX-License-Identifier: MIT
 *
 * The including translation unit defines V16 and its operations, then includes this file:
 *   V16               16 int32 lanes (one zmm, or two ymm)
 *   V16_ZERO()        all lanes 0
 *   V16_LOADB(p)      64 bytes of packed B: lane j holds 4 s8 codes of column j
 *   V16_BCAST(x)      the int32 x (4 u8 codes of A) in every lane
 *   V16_DP(acc, a, b) acc + for each lane the sum of 4 products u8(a) * s8(b), modulo 2^32
 *                     (VPDPBUSD: exact int32, no saturation)
 *   V16_STORE(c, v, add)  c[0..16) = v, or c[0..16) + v when add
 * The A panel is u8: a' = a + 128 for s8 A, so that VPDPBUSD's unsigned operand is exact; the
 * driver subtracts the zero-point terms (x86_gemm.h). Tile: XG_MR rows x 16 columns, or with
 * XG_NP 2 (set by a tier with 32 vector registers) XG_MR rows x 2 panels, so that each
 * broadcast of A feeds two VPDPBUSD. */
#ifndef LLMQ_CPU_X86_UKR_V16_H
#define LLMQ_CPU_X86_UKR_V16_H

#define XG_NRV 16
#define XG_A_BYTES 1

static LLMQ_ALWAYS_INLINE void xg_ukr_body(int mr, const void *a, const int8_t *b, int64_t k4n,
                                           int32_t *c, int64_t ldc, bool add)
{
    V16 acc[XG_MR];
    LLMQ_UNROLL
    for (int r = 0; r < XG_MR; r++)
        acc[r] = V16_ZERO();
    const uint8_t *ap = a;
    for (int64_t q = 0; q < k4n; q++) {
        const V16 bv = V16_LOADB(b + q * 64);
        LLMQ_UNROLL
        for (int r = 0; r < mr; r++) {
            int32_t x;
            memcpy(&x, ap + ((size_t)q * XG_MR + (size_t)r) * 4, 4);
            acc[r] = V16_DP(acc[r], V16_BCAST(x), bv);
        }
    }
    LLMQ_UNROLL
    for (int r = 0; r < mr; r++)
        V16_STORE(c + r * ldc, acc[r], add);
}

/* The same sums for two panels, b and b + bstride: c[r * ldc + 16 + j] holds the second. */
#if defined(XG_NP) && XG_NP > 1
static LLMQ_ALWAYS_INLINE void xg_ukr_body2(int mr, const void *a, const int8_t *b,
                                            int64_t bstride, int64_t k4n, int32_t *c, int64_t ldc,
                                            bool add)
{
    V16 acc0[XG_MR], acc1[XG_MR];
    LLMQ_UNROLL
    for (int r = 0; r < XG_MR; r++)
        acc0[r] = acc1[r] = V16_ZERO();
    const uint8_t *ap = a;
    for (int64_t q = 0; q < k4n; q++) {
        const V16 b0 = V16_LOADB(b + q * 64), b1 = V16_LOADB(b + bstride + q * 64);
        LLMQ_UNROLL
        for (int r = 0; r < mr; r++) {
            int32_t x;
            memcpy(&x, ap + ((size_t)q * XG_MR + (size_t)r) * 4, 4);
            const V16 av = V16_BCAST(x);
            acc0[r] = V16_DP(acc0[r], av, b0);
            acc1[r] = V16_DP(acc1[r], av, b1);
        }
    }
    LLMQ_UNROLL
    for (int r = 0; r < mr; r++) {
        V16_STORE(c + r * ldc, acc0[r], add);
        V16_STORE(c + r * ldc + 16, acc1[r], add);
    }
}

/* Four panels b + i * bstride for at most 4 rows (the decode shapes): four weight streams at
 * once, as many as the read bandwidth needs on one core; c[r * ldc + 16 i + j] holds panel i. */
static LLMQ_ALWAYS_INLINE void xg_ukr_body4(int mr, const void *a, const int8_t *b,
                                            int64_t bstride, int64_t k4n, int32_t *c, int64_t ldc,
                                            bool add)
{
    V16 acc[4][4];
    LLMQ_UNROLL
    for (int r = 0; r < 4; r++)
        acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = V16_ZERO();
    const uint8_t *ap = a;
    for (int64_t q = 0; q < k4n; q++) {
        V16 bv[4];
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++)
            bv[i] = V16_LOADB(b + i * bstride + q * 64);
        LLMQ_UNROLL
        for (int r = 0; r < mr; r++) {
            int32_t x;
            memcpy(&x, ap + ((size_t)q * XG_MR + (size_t)r) * 4, 4);
            const V16 av = V16_BCAST(x);
            LLMQ_UNROLL
            for (int i = 0; i < 4; i++)
                acc[r][i] = V16_DP(acc[r][i], av, bv[i]);
        }
    }
    LLMQ_UNROLL
    for (int r = 0; r < mr; r++)
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++)
            V16_STORE(c + r * ldc + 16 * i, acc[r][i], add);
}
#endif

#endif
