/* x86_pack4.h - decoding products with prepacked 4-bit weights on the AVX-512 tier (internal,
 * included by x86_gemm.h; every function is static). SPDX-License-Identifier: MIT
 *
 * The weights come from llmq_matmul_pack_weights() (layout: backend.h llmq_packed_b): per
 * block of 16 output channels one contiguous stream of 64-byte units, dword lane r = channel
 * r, 8 k per lane (k = i in the low nibble of byte i, k = 4 + i in its high nibble). One load
 * gives 16 channels x 8 k with the channels already in the lanes: no transpose, no
 * horizontal sum, and each group's parameters are one 16-lane load.
 *   - W4A8 (integer A): the low nibbles (and) and the high ones (shift, and) are the u8
 *     operands of two VPDPBUSD against 4 activations broadcast as s8 a_s = a - a_off. With the
 *     stored nibble w = b - offset and z = zB - offset,
 *       sum (a - zA)(b - zB) = sum a_s w - z sum a_s - (zA - a_off) sum (w - z)   mod 2^32,
 *     the last sum (wsum) precomputed per channel and group when packing: the exact group sums
 *     of the reference, then its float epilogue in group order (bit-identical).
 *   - W4A16 (float A): nibble t of each lane becomes the float 2^23 + w by one shift and one
 *     ternary-logic and/or, minus 2^23 + z (exact), then an FMA against a broadcast of a; 8
 *     independent accumulators per pass. Sums are reordered inside a group (docs/gemm.md bound),
 *     groups are added in order.
 * A is copied once per call into the packed k order (each group padded to whole units with
 * zeros), so the padding of the weights multiplies zeros. Tasks are blocks of output channels;
 * every output is computed by one task with the same code: results do not depend on the
 * thread count. */
#ifndef LLMQ_CPU_X86_PACK4_H
#define LLMQ_CPU_X86_PACK4_H

#define XP4_ROWS 4 /* rows of A per pass over a block's weights */

/* acc += VPDPBUSD(w, the 4 bytes at p broadcast): the broadcast as the instruction's memory
 * operand. Inline assembly because GCC 12 builds each broadcast in a general register and
 * copies the accumulators around the intrinsic (a third of the loop's instructions). */
#define XP4_DPBUSD_BCAST(acc, w, p)                                                            \
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)(p)))

typedef struct xp4 {
    const llmq_matmul_job *j;
    const llmq_packed_b *p;
    int64_t kp;            /* A's padded length: ngroups * k8g * 8 */
    int64_t blocks_per_task;
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

static inline __m256 xp4_half(__m512 x, int h)
{
    return h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))
             : _mm512_castps512_ps256(x);
}

static inline __m256i xp4_half_i(__m512i x, int h)
{
    return h ? _mm512_extracti64x4_epi64(x, 1) : _mm512_castsi512_si256(x);
}

/* Block nb of the weights against rows m .. m + mm of integer A: each group's exact sums
 * (16 channels in the lanes), then the reference's epilogue. */
static LLMQ_ALWAYS_INLINE void xp4_int_rows(const xp4 *v, int64_t nb, int cnt, const float *bias,
                                            int64_t m, const int mm)
{
    const llmq_matmul_job *j = v->j;
    const llmq_packed_b *p = v->p;
    const int64_t len = p->k8g * 8;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 facc[XP4_ROWS];
    __m512i exact[XP4_ROWS];
    for (int r = 0; r < mm; r++) {
        facc[r] = _mm512_setzero_ps();
        exact[r] = _mm512_setzero_si512();
    }
    for (int64_t g = 0; g < p->ngroups; g++) {
        const size_t pi = (size_t)(nb * p->ngroups + g);
        const uint8_t *u = p->q4 + pi * (size_t)p->k8g * 64;
        __m512i acc[XP4_ROWS][4];
        for (int r = 0; r < mm; r++)
            acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_si512();
        int64_t q = 0;
        for (; q + 2 <= p->k8g; q += 2) { /* two units: four independent sums per row */
            const __m512i x0 = _mm512_loadu_si512((const void *)(u + q * 64));
            const __m512i x1 = _mm512_loadu_si512((const void *)(u + q * 64 + 64));
            const __m512i l0 = _mm512_and_si512(x0, m4);
            const __m512i h0 = _mm512_and_si512(_mm512_srli_epi32(x0, 4), m4);
            const __m512i l1 = _mm512_and_si512(x1, m4);
            const __m512i h1 = _mm512_and_si512(_mm512_srli_epi32(x1, 4), m4);
            LLMQ_UNROLL
            for (int r = 0; r < mm; r++) {
                const int8_t *a = v->a8 + (m + r) * v->kp + g * len + q * 8;
                XP4_DPBUSD_BCAST(acc[r][0], l0, a);
                XP4_DPBUSD_BCAST(acc[r][1], h0, a + 4);
                XP4_DPBUSD_BCAST(acc[r][2], l1, a + 8);
                XP4_DPBUSD_BCAST(acc[r][3], h1, a + 12);
            }
        }
        if (q < p->k8g) {
            const __m512i x0 = _mm512_loadu_si512((const void *)(u + q * 64));
            const __m512i l0 = _mm512_and_si512(x0, m4);
            const __m512i h0 = _mm512_and_si512(_mm512_srli_epi32(x0, 4), m4);
            for (int r = 0; r < mm; r++) {
                const int8_t *a = v->a8 + (m + r) * v->kp + g * len + q * 8;
                XP4_DPBUSD_BCAST(acc[r][0], l0, a);
                XP4_DPBUSD_BCAST(acc[r][1], h0, a + 4);
            }
        }
        const __m512i z = _mm512_loadu_si512((const void *)(p->zero + pi * 16));
        const __m512i ws = _mm512_loadu_si512((const void *)(p->wsum + pi * 16));
        const __m512 sb = _mm512_loadu_ps(p->scale + pi * 16);
        for (int r = 0; r < mm; r++) {
            const __m512i s = _mm512_add_epi32(_mm512_add_epi32(acc[r][0], acc[r][1]),
                                               _mm512_add_epi32(acc[r][2], acc[r][3]));
            /* - z sum a_s - zas sum (w - z), modulo 2^32: exact */
            __m512i part = _mm512_sub_epi32(
                s, _mm512_mullo_epi32(z, _mm512_set1_epi32(v->asum[(m + r) * p->ngroups + g])));
            if (!v->zero_zas)
                part = _mm512_sub_epi32(part, _mm512_mullo_epi32(_mm512_set1_epi32(v->zas[m + r]), ws));
            if (j->b_uniform_k) {
                exact[r] = part;
                continue;
            }
            /* acc += (float)part * sA * sB, in group order from 0.0f */
            facc[r] = _mm512_add_ps(facc[r], _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(part),
                                                                         _mm512_set1_ps(v->sa[m + r])),
                                                           sb));
        }
    }
    const int64_t n0 = nb * 16;
    for (int r = 0; r < mm; r++)
        for (int h = 0; h < 2 && h * 8 < cnt; h++) {
            const int c = cnt - h * 8 < 8 ? cnt - h * 8 : 8;
            if (j->b_uniform_k)
                xg_epilogue_exact(j, m + r, n0 + h * 8, c, xp4_half_i(exact[r], h), v->sa[m + r],
                                  p->scale + (size_t)nb * 16 + h * 8, bias + h * 8);
            else
                xg_epilogue_float(j, m + r, n0 + h * 8, c, xp4_half(facc[r], h), bias + h * 8);
        }
}

/* Block nb of the weights against rows m .. m + mm of float A (weight-only). The nibble at
 * bit 4c of a lane (c < 4, of the unit or of the unit shifted right by 16) is masked in place
 * and made the float 2^23 + 2^(4c) w by one ternary logic op; minus 2^23 + 2^(4c) z that is
 * 2^(4c) (w - z), exactly. Each c has its own sums, scaled back by 2^(-4c) (exact) at the end
 * of the group: one shift, 8 ternary logic ops, 8 subtractions and 8 FMA per 64 bytes. */
static LLMQ_ALWAYS_INLINE void xp4_float_rows(const xp4 *v, int64_t nb, int cnt, const float *bias,
                                              int64_t m, const int mm)
{
    const llmq_matmul_job *j = v->j;
    const llmq_packed_b *p = v->p;
    const int64_t len = p->k8g * 8;
    const int na = mm == 1 ? 8 : 4; /* sums per row: per c, and per half of the unit for mm 1 */
    const __m512i magic = _mm512_set1_epi32(0x4b000000); /* the float 2^23 */
    __m512i mask[4];
    for (int c = 0; c < 4; c++)
        mask[c] = _mm512_set1_epi32(15 << (4 * c));
    __m512 facc[XP4_ROWS];
    for (int r = 0; r < mm; r++)
        facc[r] = _mm512_setzero_ps();
    for (int64_t g = 0; g < p->ngroups; g++) {
        const size_t pi = (size_t)(nb * p->ngroups + g);
        const uint8_t *u = p->q4 + pi * (size_t)p->k8g * 64;
        const float *a0 = v->a32 + m * v->kp + g * len;
        const __m512 z = _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(p->zero + pi * 16)));
        __m512 zf[4]; /* 2^23 + 2^(4c) z */
        for (int c = 0; c < 4; c++)
            zf[c] = _mm512_fmadd_ps(z, _mm512_set1_ps((float)(1 << (4 * c))), _mm512_set1_ps(8388608.0f));
        __m512 acc[XP4_ROWS][8];
        for (int r = 0; r < mm; r++)
            for (int t = 0; t < na; t++)
                acc[r][t] = _mm512_setzero_ps();
        for (int64_t q = 0; q < p->k8g; q++) {
            const __m512i x = _mm512_loadu_si512((const void *)(u + q * 64));
            const __m512i y = _mm512_srli_epi32(x, 16);
            LLMQ_UNROLL
            for (int h = 0; h < 2; h++) /* bytes 0-1, then 2-3 */
                LLMQ_UNROLL
                for (int c = 0; c < 4; c++) {
                    const int k = c % 2 * 4 + c / 2 + 2 * h; /* the nibble's k in the unit */
                    const __m512 w = _mm512_sub_ps(
                        _mm512_castsi512_ps(_mm512_ternarylogic_epi32(h ? y : x, mask[c], magic, 0xea)),
                        zf[c]);
                    LLMQ_UNROLL
                    for (int r = 0; r < mm; r++) {
                        const float a = a0[r * v->kp + q * 8 + k];
                        const int t = na == 8 ? h * 4 + c : c;
                        acc[r][t] = _mm512_fmadd_ps(_mm512_set1_ps(a), w, acc[r][t]);
                    }
                }
        }
        const __m512 sb = _mm512_loadu_ps(p->scale + pi * 16);
        for (int r = 0; r < mm; r++) {
            if (na == 8)
                for (int c = 0; c < 4; c++)
                    acc[r][c] = _mm512_add_ps(acc[r][c], acc[r][4 + c]);
            __m512 part = acc[r][0]; /* sum of 2^(-4c) x the sums of c, exact scalings */
            for (int c = 1; c < 4; c++)
                part = _mm512_add_ps(part, _mm512_mul_ps(acc[r][c], _mm512_set1_ps(1.0f / (float)(1 << (4 * c)))));
            facc[r] = _mm512_add_ps(facc[r], _mm512_mul_ps(part, sb));
        }
    }
    const int64_t n0 = nb * 16;
    for (int r = 0; r < mm; r++) {
        void *crow = (uint8_t *)j->c_data + (size_t)(m + r) * j->c.stride;
        for (int h = 0; h < 2 && h * 8 < cnt; h++)
            x86_store_float(crow, j->c.dtype, n0 + h * 8,
                            _mm256_add_ps(xp4_half(facc[r], h), _mm256_loadu_ps(bias + h * 8)),
                            cnt - h * 8 < 8 ? cnt - h * 8 : 8);
    }
}

static void xp4_task(void *arg, int64_t task, int worker)
{
    (void)worker;
    const xp4 *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t nblocks = (j->n + 15) / 16;
    const int64_t b0 = task * v->blocks_per_task;
    const int64_t b1 = b0 + v->blocks_per_task < nblocks ? b0 + v->blocks_per_task : nblocks;
    const bool float_a = v->a32 != NULL;
    for (int64_t nb = b0; nb < b1; nb++) {
        const int cnt = (int)(j->n - nb * 16 < 16 ? j->n - nb * 16 : 16);
        float bias[16];
        for (int i = 0; i < 16; i++)
            bias[i] = j->bias != NULL && i < cnt ? j->bias[nb * 16 + i] : 0.0f;
        for (int64_t m = 0; m < j->m; m += XP4_ROWS) {
            const int mm = j->m - m < XP4_ROWS ? (int)(j->m - m) : XP4_ROWS;
            switch (mm * 2 + float_a) { /* the row count a constant in each copy */
            case 2: xp4_int_rows(v, nb, cnt, bias, m, 1); break;
            case 4: xp4_int_rows(v, nb, cnt, bias, m, 2); break;
            case 6: xp4_int_rows(v, nb, cnt, bias, m, 3); break;
            case 8: xp4_int_rows(v, nb, cnt, bias, m, 4); break;
            case 3: xp4_float_rows(v, nb, cnt, bias, m, 1); break;
            case 5: xp4_float_rows(v, nb, cnt, bias, m, 2); break;
            case 7: xp4_float_rows(v, nb, cnt, bias, m, 3); break;
            default: xp4_float_rows(v, nb, cnt, bias, m, 4); break;
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
    v.blocks_per_task = 4;
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
    xg_for(ctx, j, (nblocks + v.blocks_per_task - 1) / v.blocks_per_task, xp4_task, &v);
    return LLMQ_OK;
}

#endif
