/* x86_pack4.h - products with prepacked 4-bit weights on the x86 tiers (internal, included
 * by x86_gemm.h; every function is static). SPDX-License-Identifier: MIT
 *
 * The weights come from llmq_matmul_pack_weights() (layout: backend.h llmq_packed_b): per
 * block of 16 output channels one contiguous stream of 64-byte units, dword lane r = channel
 * r, 8 k per lane (k = i in the low nibble of byte i, k = 4 + i in its high nibble). One load
 * gives 16 channels x 8 k with the channels already in the lanes: no transpose, no
 * horizontal sum, and each group's parameters are one 16-lane load. The AVX-512 tier takes a
 * unit in one zmm (XP4_L 16); the 256-bit tiers take its two halves in turn (XP4_L 8, channels
 * 0-7 then 8-15 of each block), the same source over the XP4_* vector operations below.
 *   - W4A8 (integer A): the low nibbles (and) and the high ones (shift, and) are the u8
 *     operands of two VPDPBUSD against 4 activations broadcast as s8 a_s = a - a_off (AVX2:
 *     VPMADDUBSW + VPMADDWD, exact here: a pair of products is at most 2 x 15 x 128 in
 *     magnitude, far from the int16 limit that rules it out for 8-bit weights). With the
 *     stored nibble w = b - offset and z = zB - offset,
 *       sum (a - zA)(b - zB) = sum a_s w - z sum a_s - (zA - a_off) sum (w - z)   mod 2^32,
 *     the last sum (wsum) precomputed per channel and group when packing: the exact group sums
 *     of the reference, then its float epilogue in group order (bit-identical).
 *   - W4A16 (float A): see xp4_float_rows. Sums are reordered inside a group (docs/gemm.md
 *     bound), groups are added in order.
 * A is copied once per call into the packed k order (each group padded to whole units with
 * zeros), so the padding of the weights multiplies zeros. Tasks are blocks of output channels;
 * every output is computed by one task with the same code: results do not depend on the
 * thread count. */
#ifndef LLMQ_CPU_X86_PACK4_H
#define LLMQ_CPU_X86_PACK4_H

#ifdef XG_GEMV_ZMM
#define XP4_L 16   /* channels per vector */
#define XP4_ROWS 4 /* rows of A per pass over a block's weights */
#define XP4_NV 4   /* blocks (weight streams) at once with one row of integer A */
typedef __m512i xp4_vi;
typedef __m512 xp4_vf;
#define XP4_LOADI(p) _mm512_loadu_si512((const void *)(p))
#define XP4_LOADF(p) _mm512_loadu_ps(p)
#define XP4_SET1I(x) _mm512_set1_epi32(x)
#define XP4_SET1F(x) _mm512_set1_ps(x)
#define XP4_ZEROI() _mm512_setzero_si512()
#define XP4_ZEROF() _mm512_setzero_ps()
#define XP4_AND(a, b) _mm512_and_si512((a), (b))
#define XP4_SRLI(a, n) _mm512_srli_epi32((a), (n))
#define XP4_ADDI(a, b) _mm512_add_epi32((a), (b))
#define XP4_SUBI(a, b) _mm512_sub_epi32((a), (b))
#define XP4_MULLO(a, b) _mm512_mullo_epi32((a), (b))
#define XP4_ADDF(a, b) _mm512_add_ps((a), (b))
#define XP4_SUBF(a, b) _mm512_sub_ps((a), (b))
#define XP4_MULF(a, b) _mm512_mul_ps((a), (b))
#define XP4_FMADD(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define XP4_CVTF(a) _mm512_cvtepi32_ps(a)
#define XP4_CASTF(a) _mm512_castsi512_ps(a)
/* (x & m) | magic: one ternary logic op */
#define XP4_MASK_OR(x, m, magic) _mm512_ternarylogic_epi32((x), (m), (magic), 0xea)
/* acc += VPDPBUSD(w, the 4 bytes at p broadcast): the broadcast as the instruction's memory
 * operand. Inline assembly because GCC 12 builds each broadcast in a general register and
 * copies the accumulators around the intrinsic (a third of the loop's instructions). */
#define XP4_DOT(acc, w, p)                                                                     \
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)(p)))
/* Lanes 8h .. 8h + 7 of a vector, for the 8-column epilogues. */
static inline __m256 xp4_part8f(__m512 x, int h)
{
    return h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))
             : _mm512_castps512_ps256(x);
}

static inline __m256i xp4_part8i(__m512i x, int h)
{
    return h ? _mm512_extracti64x4_epi64(x, 1) : _mm512_castsi512_si256(x);
}
#else
#define XP4_L 8
#define XP4_ROWS 2 /* 16 vector registers */
#define XP4_NV 1
typedef __m256i xp4_vi;
typedef __m256 xp4_vf;
#define XP4_LOADI(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define XP4_LOADF(p) _mm256_loadu_ps(p)
#define XP4_SET1I(x) _mm256_set1_epi32(x)
#define XP4_SET1F(x) _mm256_set1_ps(x)
#define XP4_ZEROI() _mm256_setzero_si256()
#define XP4_ZEROF() _mm256_setzero_ps()
#define XP4_AND(a, b) _mm256_and_si256((a), (b))
#define XP4_SRLI(a, n) _mm256_srli_epi32((a), (n))
#define XP4_ADDI(a, b) _mm256_add_epi32((a), (b))
#define XP4_SUBI(a, b) _mm256_sub_epi32((a), (b))
#define XP4_MULLO(a, b) _mm256_mullo_epi32((a), (b))
#define XP4_ADDF(a, b) _mm256_add_ps((a), (b))
#define XP4_SUBF(a, b) _mm256_sub_ps((a), (b))
#define XP4_MULF(a, b) _mm256_mul_ps((a), (b))
#define XP4_FMADD(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define XP4_CVTF(a) _mm256_cvtepi32_ps(a)
#define XP4_CASTF(a) _mm256_castsi256_ps(a)
#define XP4_MASK_OR(x, m, magic) _mm256_or_si256(_mm256_and_si256((x), (m)), (magic))

static LLMQ_ALWAYS_INLINE __m256i xp4_dot(__m256i acc, __m256i w, const int8_t *p)
{
    int32_t a;
    memcpy(&a, p, 4);
#ifdef XG_DPBUSD256
    return XG_DPBUSD256(acc, w, _mm256_set1_epi32(a));
#else /* exact: |w a| <= 15 x 128, a pair <= 3840 (no int16 saturation) */
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, _mm256_set1_epi32(a)),
                                                   _mm256_set1_epi16(1)));
#endif
}
#define XP4_DOT(acc, w, p) ((acc) = xp4_dot((acc), (w), (p)))

static inline __m256 xp4_part8f(__m256 x, int h)
{
    (void)h;
    return x;
}

static inline __m256i xp4_part8i(__m256i x, int h)
{
    (void)h;
    return x;
}
#endif

#define XP4_BLOCKS 4 /* blocks of 16 channels per task (at least XP4_NV) */

typedef struct xp4 {
    const llmq_matmul_job *j;
    const llmq_packed_b *p;
    int64_t kp;            /* A's padded length: ngroups * k8g * 8 */
    int8_t *a8;            /* integer A: [m][kp] a - a_off */
    float *a32;            /* float A: [m][kp] */
    int32_t *asum;         /* integer A: [m][ngroups] sums of a8 over each group */
    float *sa;             /* integer A: [m] scale */
    int32_t *zas;          /* integer A: [m] zA - a_off */
    bool zero_zas;         /* every zas is 0: sum (w - z) is not needed */
} xp4;

/* Row m of A in the packed k order: a - a_off (integer) or f32, zeros in the padding. */
static void xp4_prep(void *arg, int64_t m, int worker)
{
    (void)worker;
    const xp4 *v = arg;
    const llmq_matmul_job *j = v->j;
    const llmq_packed_b *p = v->p;
    const int64_t len = p->k8g * 8;
    if (v->a32 != NULL) {
        const void *row = (const uint8_t *)j->a.data + (size_t)m * j->a.stride;
        float *dst = v->a32 + m * v->kp;
        for (int64_t g = 0; g < p->ngroups; g++)
            for (int64_t i = 0; i < len; i++) {
                const int64_t k = g * p->group + i;
                dst[g * len + i] = i < p->group && k < p->k ? x86_load1(row, j->a.dtype, k) : 0.0f;
            }
        return;
    }
    const int64_t pa = xg_param(&j->a, m, 0);
    const int32_t off = j->a.dtype == LLMQ_DTYPE_U8 ? 128 : 0;
    v->sa[m] = j->a.scale[pa];
    v->zas[m] = j->a.zero_point[pa] - off;
    int8_t *dst = v->a8 + m * v->kp;
    for (int64_t g = 0; g < p->ngroups; g++) {
        int32_t s = 0;
        for (int64_t i = 0; i < len; i++) {
            const int64_t k = g * p->group + i;
            const int32_t x = i < p->group && k < p->k ? xg_code(&j->a, m, k) - off : 0;
            dst[g * len + i] = (int8_t)x;
            s += x;
        }
        v->asum[m * p->ngroups + g] = s;
    }
}

/* Channels 16 nb + XP4_L hh .. + XP4_L of nv blocks nb .. nb + nv - 1 (cnt[i] channels and
 * bias[i] each) against rows m .. m + mm of integer A: each group's exact sums (channels in the
 * lanes), then the reference's epilogue. With one row of A, 4 blocks at once are 4 weight
 * streams from memory (with one, the M = 1 product read about half the bandwidth). */
static LLMQ_ALWAYS_INLINE void xp4_int_rows(const xp4 *v, int64_t nb, const int nv, int hh,
                                            const int *cnt, const float (*bias)[16], int64_t m,
                                            const int mm)
{
    const llmq_matmul_job *j = v->j;
    const llmq_packed_b *p = v->p;
    const int64_t len = p->k8g * 8;
    const size_t bstride = (size_t)p->ngroups * (size_t)p->k8g * 64; /* one block's bytes */
    const xp4_vi m4 = XP4_SET1I(0x0f0f0f0f);
    xp4_vf facc[XP4_NV][XP4_ROWS];
    xp4_vi exact[XP4_NV][XP4_ROWS];
    for (int b = 0; b < nv; b++)
        for (int r = 0; r < mm; r++) {
            facc[b][r] = XP4_ZEROF();
            exact[b][r] = XP4_ZEROI();
        }
    for (int64_t g = 0; g < p->ngroups; g++) {
        const uint8_t *u = p->q4 + (size_t)(nb * p->ngroups + g) * (size_t)p->k8g * 64 +
                           (size_t)hh * XP4_L * 4;
        xp4_vi acc[XP4_NV][XP4_ROWS][4];
        for (int b = 0; b < nv; b++)
            for (int r = 0; r < mm; r++)
                acc[b][r][0] = acc[b][r][1] = acc[b][r][2] = acc[b][r][3] = XP4_ZEROI();
        int64_t q = 0;
        for (; q + 2 <= p->k8g; q += 2) /* two units: four independent sums per row */
            LLMQ_UNROLL
            for (int b = 0; b < nv; b++) {
                const uint8_t *ub = u + b * bstride + q * 64;
                const xp4_vi x0 = XP4_LOADI(ub), x1 = XP4_LOADI(ub + 64);
                x86_prefetch(ub);
                x86_prefetch(ub + 64);
                const xp4_vi l0 = XP4_AND(x0, m4), h0 = XP4_AND(XP4_SRLI(x0, 4), m4);
                const xp4_vi l1 = XP4_AND(x1, m4), h1 = XP4_AND(XP4_SRLI(x1, 4), m4);
                LLMQ_UNROLL
                for (int r = 0; r < mm; r++) {
                    const int8_t *a = v->a8 + (m + r) * v->kp + g * len + q * 8;
                    XP4_DOT(acc[b][r][0], l0, a);
                    XP4_DOT(acc[b][r][1], h0, a + 4);
                    XP4_DOT(acc[b][r][2], l1, a + 8);
                    XP4_DOT(acc[b][r][3], h1, a + 12);
                }
            }
        if (q < p->k8g)
            for (int b = 0; b < nv; b++) {
                const xp4_vi x0 = XP4_LOADI(u + b * bstride + q * 64);
                const xp4_vi l0 = XP4_AND(x0, m4), h0 = XP4_AND(XP4_SRLI(x0, 4), m4);
                for (int r = 0; r < mm; r++) {
                    const int8_t *a = v->a8 + (m + r) * v->kp + g * len + q * 8;
                    XP4_DOT(acc[b][r][0], l0, a);
                    XP4_DOT(acc[b][r][1], h0, a + 4);
                }
            }
        for (int b = 0; b < nv; b++) {
            const size_t pi = (size_t)((nb + b) * p->ngroups + g) * 16 + (size_t)hh * XP4_L;
            const xp4_vi z = XP4_LOADI(p->zero + pi), ws = XP4_LOADI(p->wsum + pi);
            const xp4_vf sb = XP4_LOADF(p->scale + pi);
            for (int r = 0; r < mm; r++) {
                const xp4_vi s = XP4_ADDI(XP4_ADDI(acc[b][r][0], acc[b][r][1]),
                                          XP4_ADDI(acc[b][r][2], acc[b][r][3]));
                /* - z sum a_s - zas sum (w - z), modulo 2^32: exact */
                xp4_vi part =
                    XP4_SUBI(s, XP4_MULLO(z, XP4_SET1I(v->asum[(m + r) * p->ngroups + g])));
                if (!v->zero_zas)
                    part = XP4_SUBI(part, XP4_MULLO(XP4_SET1I(v->zas[m + r]), ws));
                if (j->b_uniform_k) {
                    exact[b][r] = part;
                    continue;
                }
                /* acc += (float)part * sA * sB, in group order from 0.0f */
                facc[b][r] = XP4_ADDF(facc[b][r], XP4_MULF(XP4_MULF(XP4_CVTF(part),
                                                                    XP4_SET1F(v->sa[m + r])),
                                                           sb));
            }
        }
    }
    const int c0 = hh * XP4_L; /* first column of the block done here */
    for (int b = 0; b < nv; b++)
        for (int r = 0; r < mm; r++)
            for (int h = 0; h < XP4_L / 8 && c0 + h * 8 < cnt[b]; h++) {
                const int c = c0 + h * 8, n = cnt[b] - c < 8 ? cnt[b] - c : 8;
                const int64_t col = (nb + b) * 16 + c;
                if (j->b_uniform_k)
                    xg_epilogue_exact(j, m + r, col, n, xp4_part8i(exact[b][r], h), v->sa[m + r],
                                      p->scale + (size_t)(nb + b) * 16 + c, bias[b] + c);
                else
                    xg_epilogue_float(j, m + r, col, n, xp4_part8f(facc[b][r], h), bias[b] + c);
            }
}

/* Channels 16 nb + XP4_L hh .. + XP4_L of the weights against rows m .. m + mm of float A
 * (weight-only). The nibble at bit 4c of a lane (c < 4, of the unit or of the unit shifted
 * right by 16) is masked in place and made the float 2^23 + 2^(4c) w (and, or: one ternary
 * logic op on AVX-512); minus 2^23 + 2^(4c) z that is 2^(4c) (w - z), exactly. Each c has
 * its own sums, scaled back by 2^(-4c) (exact) at the end of the group: per 64 bytes on
 * AVX-512 one shift, 8 ternary logic ops, 8 subtractions and 8 FMA. */
static LLMQ_ALWAYS_INLINE void xp4_float_rows(const xp4 *v, int64_t nb, int hh, int cnt,
                                              const float *bias, int64_t m, const int mm)
{
    const llmq_matmul_job *j = v->j;
    const llmq_packed_b *p = v->p;
    const int64_t len = p->k8g * 8;
    /* sums per row: per c, and per half of the unit with one row of A on AVX-512 */
    const int na = mm == 1 && XP4_L == 16 ? 8 : 4;
    const xp4_vi magic = XP4_SET1I(0x4b000000); /* the float 2^23 */
    xp4_vi mask[4];
    for (int c = 0; c < 4; c++)
        mask[c] = XP4_SET1I(15 << (4 * c));
    xp4_vf facc[XP4_ROWS];
    for (int r = 0; r < mm; r++)
        facc[r] = XP4_ZEROF();
    for (int64_t g = 0; g < p->ngroups; g++) {
        const size_t pi = (size_t)(nb * p->ngroups + g) * 16 + (size_t)hh * XP4_L;
        const uint8_t *u = p->q4 + (size_t)(nb * p->ngroups + g) * (size_t)p->k8g * 64 +
                           (size_t)hh * XP4_L * 4;
        const float *a0 = v->a32 + m * v->kp + g * len;
        const xp4_vf z = XP4_CVTF(XP4_LOADI(p->zero + pi));
        xp4_vf zf[4]; /* 2^23 + 2^(4c) z */
        for (int c = 0; c < 4; c++)
            zf[c] = XP4_FMADD(z, XP4_SET1F((float)(1 << (4 * c))), XP4_SET1F(8388608.0f));
        xp4_vf acc[XP4_ROWS][8];
        for (int r = 0; r < mm; r++)
            for (int t = 0; t < na; t++)
                acc[r][t] = XP4_ZEROF();
        for (int64_t q = 0; q < p->k8g; q++) {
            const xp4_vi x = XP4_LOADI(u + q * 64), y = XP4_SRLI(x, 16);
            x86_prefetch(u + q * 64);
            LLMQ_UNROLL
            for (int h = 0; h < 2; h++) /* bytes 0-1, then 2-3 */
                LLMQ_UNROLL
                for (int c = 0; c < 4; c++) {
                    const int k = c % 2 * 4 + c / 2 + 2 * h; /* the nibble's k in the unit */
                    const xp4_vf w = XP4_SUBF(XP4_CASTF(XP4_MASK_OR(h ? y : x, mask[c], magic)), zf[c]);
                    LLMQ_UNROLL
                    for (int r = 0; r < mm; r++) {
                        const int t = na == 8 ? h * 4 + c : c;
                        acc[r][t] = XP4_FMADD(XP4_SET1F(a0[r * v->kp + q * 8 + k]), w, acc[r][t]);
                    }
                }
        }
        const xp4_vf sb = XP4_LOADF(p->scale + pi);
        for (int r = 0; r < mm; r++) {
            if (na == 8)
                for (int c = 0; c < 4; c++)
                    acc[r][c] = XP4_ADDF(acc[r][c], acc[r][4 + c]);
            xp4_vf part = acc[r][0]; /* sum of 2^(-4c) x the sums of c, exact scalings */
            for (int c = 1; c < 4; c++)
                part = XP4_ADDF(part, XP4_MULF(acc[r][c], XP4_SET1F(1.0f / (float)(1 << (4 * c)))));
            facc[r] = XP4_ADDF(facc[r], XP4_MULF(part, sb));
        }
    }
    const int c0 = hh * XP4_L;
    for (int r = 0; r < mm; r++) {
        void *crow = (uint8_t *)j->c_data + (size_t)(m + r) * j->c.stride;
        for (int h = 0; h < XP4_L / 8 && c0 + h * 8 < cnt; h++) {
            const int c = c0 + h * 8;
            x86_store_float(crow, j->c.dtype, nb * 16 + c,
                            _mm256_add_ps(xp4_part8f(facc[r], h), _mm256_loadu_ps(bias + c)),
                            cnt - c < 8 ? cnt - c : 8);
        }
    }
}

static void xp4_task(void *arg, int64_t task, int worker)
{
    (void)worker;
    const xp4 *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t nblocks = (j->n + 15) / 16;
    const int64_t b0 = task * XP4_BLOCKS;
    const int64_t b1 = b0 + XP4_BLOCKS < nblocks ? b0 + XP4_BLOCKS : nblocks;
    const bool float_a = v->a32 != NULL;
    int cnt[XP4_BLOCKS];
    float bias[XP4_BLOCKS][16];
    for (int64_t nb = b0; nb < b1; nb++) {
        cnt[nb - b0] = (int)(j->n - nb * 16 < 16 ? j->n - nb * 16 : 16);
        for (int i = 0; i < 16; i++)
            bias[nb - b0][i] = i < cnt[nb - b0] && j->bias != NULL ? j->bias[nb * 16 + i] : 0.0f;
    }
    if (XP4_NV > 1 && !float_a && j->m == 1 && b1 - b0 == XP4_NV) {
        xp4_int_rows(v, b0, XP4_NV, 0, cnt, bias, 0, 1); /* XP4_L is 16: one half */
        return;
    }
    for (int64_t nb = b0; nb < b1; nb++) {
        const int i = (int)(nb - b0);
        for (int hh = 0; hh * XP4_L < cnt[i]; hh++)
            for (int64_t m = 0; m < j->m; m += XP4_ROWS) {
                const int mm = j->m - m < XP4_ROWS ? (int)(j->m - m) : XP4_ROWS;
                switch (mm * 2 + float_a) { /* the row count a constant in each copy */
                case 2: xp4_int_rows(v, nb, 1, hh, &cnt[i], &bias[i], m, 1); break;
                case 4: xp4_int_rows(v, nb, 1, hh, &cnt[i], &bias[i], m, 2); break;
#if XP4_ROWS > 2
                case 6: xp4_int_rows(v, nb, 1, hh, &cnt[i], &bias[i], m, 3); break;
                case 8: xp4_int_rows(v, nb, 1, hh, &cnt[i], &bias[i], m, 4); break;
                case 7: xp4_float_rows(v, nb, hh, cnt[i], bias[i], m, 3); break;
                case 9: xp4_float_rows(v, nb, hh, cnt[i], bias[i], m, 4); break;
#endif
                case 3: xp4_float_rows(v, nb, hh, cnt[i], bias[i], m, 1); break;
                default: xp4_float_rows(v, nb, hh, cnt[i], bias[i], m, 2); break;
                }
            }
    }
}

static llmq_status xp4_matmul(llmq_backend *be, const llmq_matmul_job *j)
{
    llmq_context *ctx = be->ctx;
    xp4 v;
    memset(&v, 0, sizeof v);
    v.j = j;
    v.p = j->b.packed;
    v.kp = v.p->ngroups * v.p->k8g * 8;
    const bool float_a = x86_is_float(j->a.dtype);
    const size_t a_bytes = ((size_t)j->m * (size_t)v.kp * (float_a ? 4 : 1) + 63) & ~(size_t)63;
    const size_t p_bytes = float_a ? 0 : ((size_t)j->m * (size_t)(v.p->ngroups + 2) * 4 + 63) & ~(size_t)63;
    char *ws = llmq_scratch(ctx, a_bytes + p_bytes);
    if (ws == NULL)
        return xg_oom(be, a_bytes + p_bytes);
    if (float_a) {
        v.a32 = (float *)ws;
    } else {
        v.a8 = (int8_t *)ws;
        v.asum = (int32_t *)(ws + a_bytes);
        v.sa = (float *)(v.asum + j->m * v.p->ngroups);
        v.zas = (int32_t *)(v.sa + j->m);
    }
    xg_for(ctx, j, j->m, xp4_prep, &v);
    v.zero_zas = true;
    for (int64_t m = 0; !float_a && m < j->m; m++)
        v.zero_zas = v.zero_zas && v.zas[m] == 0;
    const int64_t nblocks = (j->n + 15) / 16;
    xg_for(ctx, j, (nblocks + XP4_BLOCKS - 1) / XP4_BLOCKS, xp4_task, &v);
    return LLMQ_OK;
}

#endif
