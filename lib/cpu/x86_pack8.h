/* x86_pack8.h - weight-only products (float A) with prepacked 8-bit weights on the x86 tiers
 * (internal, included by x86_gemm.h after x86_pack4.h, whose XP4_* vector operations it
 * uses; every function is static). SPDX-License-Identifier: MIT
 *
 * The weights are the panels of llmq_matmul_pack_weights() (backend.h llmq_packed_b): per
 * block of 16 output channels a contiguous stream of 64-byte units of 4 k, dword lane r =
 * channel r, byte j = k 4q + j, stored s = code - offset as s8. Byte j of every lane becomes a
 * float without a conversion instruction: u = s ^ 0x80 = s + 128 is in [0, 255]; placed at bit
 * 8 (j % 2) (bytes 2 and 3 after one 32-bit shift right by 16) under the bits of 2^23 it is the
 * float 2^23 + 2^(8 (j % 2)) u, and subtracting 2^23 + 2^(8 (j % 2)) (128 + zB - offset) leaves
 * 2^(8 (j % 2)) (code - zB) exactly, zero points included. Masking, flipping bit 7 and ORing
 * the exponent is one ternary logic op on AVX-512 (and + xor on the 256-bit tiers). Per 64
 * bytes: one shift, 4 ternary logic ops, 4 subtractions, and 4 FMA per row of A against a
 * broadcast activation; the 16 channels stay in the lanes (no horizontal sum), each j keeps
 * its own sums, scaled back by 2^(-8 (j % 2)) (exact) at the end. With one row of A several
 * blocks run at once (xp8_rows), for independent sums and several weight streams. The
 * reference's order is changed (docs/gemm.md bound); each output is computed by one task with
 * the same code, so results do not depend on the thread count. */
#ifndef LLMQ_CPU_X86_PACK8_H
#define LLMQ_CPU_X86_PACK8_H

#ifdef XG_GEMV_ZMM
#define XP8_NV 4 /* column sets (weight streams) per pass with one row of A */
/* c where m is 0, x ^ c where m is 1 (truth table 0x6a of (x, m, c)) */
#define XP8_SELECT(x, m, c) _mm512_ternarylogic_epi32((x), (m), (c), 0x6a)
#else
#define XP8_NV 2
#define XP8_SELECT(x, m, c) _mm256_xor_si256(_mm256_and_si256((x), (m)), (c))
#endif

typedef struct xp8 {
    const llmq_matmul_job *j;
    const llmq_packed_b *p;
    int64_t kp;         /* A's padded length: k4 * 4 */
    float *a32;         /* [m][kp] A as f32, zeros past K */
} xp8;

static void xp8_prep(void *arg, int64_t m, int worker)
{
    (void)worker;
    const xp8 *v = arg;
    const llmq_matmul_job *j = v->j;
    const void *row = (const uint8_t *)j->a.data + (size_t)m * j->a.stride;
    float *dst = v->a32 + m * v->kp;
    for (int64_t k = 0; k < v->kp; k++)
        dst[k] = k < j->k ? x86_load1(row, j->a.dtype, k) : 0.0f;
}

/* XP4_L channels of one block (all 16 on AVX-512, a half on the 256-bit tiers): where their
 * weights start, their parameters, where their outputs go. */
typedef struct xp8_cols {
    const int8_t *u;
    const float *zf;   /* [2][16] the subtrahends 2^23 + 2^(8i) (128 + zB - offset) */
    const float *sb, *bias;
    int64_t n0;        /* first channel */
    int cnt;           /* channels stored, <= XP4_L */
} xp8_cols;

/* The nv column sets cs[0 .. nv) against rows m .. m + mm of A, each set its own weight stream:
 * with one row of A, XP8_NV sets at once give 4 XP8_NV independent sums and as many streams
 * from memory (on one core, one stream left a third of the read bandwidth unused). */
static LLMQ_ALWAYS_INLINE void xp8_rows(const xp8 *v, const xp8_cols *cs, const int nv, int64_t m,
                                        const int mm)
{
    const llmq_matmul_job *j = v->j;
    const int64_t k4 = v->p->k4;
    const xp4_vi mask0 = XP4_SET1I(0xff), mask1 = XP4_SET1I(0xff00);
    /* 2^23 outside the byte, bit 7 of the byte to flip inside */
    const xp4_vi c0 = XP4_SET1I(0x4b000080), c1 = XP4_SET1I(0x4b008000);
    xp4_vf z0[XP8_NV], z1[XP8_NV];
    for (int s = 0; s < nv; s++) {
        z0[s] = XP4_LOADF(cs[s].zf);
        z1[s] = XP4_LOADF(cs[s].zf + 16);
    }
    const float *a0 = v->a32 + m * v->kp;
    xp4_vf acc[XP8_NV][XP4_ROWS][4];
    for (int s = 0; s < nv; s++)
        for (int r = 0; r < mm; r++)
            for (int i = 0; i < 4; i++)
                acc[s][r][i] = XP4_ZEROF();
    for (int64_t q = 0; q < k4; q++)
        LLMQ_UNROLL
        for (int s = 0; s < nv; s++) {
            const xp4_vi x = XP4_LOADI(cs[s].u + q * 64), y = XP4_SRLI(x, 16);
            const xp4_vf w[4] = {XP4_SUBF(XP4_CASTF(XP8_SELECT(x, mask0, c0)), z0[s]),
                                 XP4_SUBF(XP4_CASTF(XP8_SELECT(x, mask1, c1)), z1[s]),
                                 XP4_SUBF(XP4_CASTF(XP8_SELECT(y, mask0, c0)), z0[s]),
                                 XP4_SUBF(XP4_CASTF(XP8_SELECT(y, mask1, c1)), z1[s])};
            LLMQ_UNROLL
            for (int r = 0; r < mm; r++)
                LLMQ_UNROLL
                for (int i = 0; i < 4; i++)
                    acc[s][r][i] = XP4_FMADD(XP4_SET1F(a0[r * v->kp + q * 4 + i]), w[i], acc[s][r][i]);
        }
    for (int s = 0; s < nv; s++) {
        const xp4_vf vsb = XP4_LOADF(cs[s].sb), vbias = XP4_LOADF(cs[s].bias);
        for (int r = 0; r < mm; r++) {
            /* bytes 0 and 2 at scale 1, bytes 1 and 3 at 2^8 */
            const xp4_vf part = XP4_ADDF(XP4_ADDF(acc[s][r][0], acc[s][r][2]),
                                         XP4_MULF(XP4_ADDF(acc[s][r][1], acc[s][r][3]),
                                                  XP4_SET1F(1.0f / 256.0f)));
            /* the reference's part * sB + bias, separately rounded */
            const xp4_vf y = XP4_ADDF(XP4_MULF(part, vsb), vbias);
            void *crow = (uint8_t *)j->c_data + (size_t)(m + r) * j->c.stride;
            for (int h = 0; h * 8 < cs[s].cnt; h++)
                x86_store_float(crow, j->c.dtype, cs[s].n0 + h * 8, xp4_part8f(y, h),
                                cs[s].cnt - h * 8 < 8 ? cs[s].cnt - h * 8 : 8);
        }
    }
}

#define XP8_BLOCKS 4 /* blocks of 16 channels per task */

static void xp8_task(void *arg, int64_t task, int worker)
{
    (void)worker;
    const xp8 *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t nblocks = (j->n + 15) / 16;
    const int64_t b0 = task * XP8_BLOCKS;
    const int64_t b1 = b0 + XP8_BLOCKS < nblocks ? b0 + XP8_BLOCKS : nblocks;
    const int32_t offset = v->p->offset;
    float zf[XP8_BLOCKS][32], sb[XP8_BLOCKS][16], bias[XP8_BLOCKS][16];
    xp8_cols cs[XP8_BLOCKS * 16 / XP4_L];
    int ns = 0;
    for (int64_t nb = b0; nb < b1; nb++) {
        const int64_t t = nb - b0;
        const int cnt = (int)(j->n - nb * 16 < 16 ? j->n - nb * 16 : 16);
        for (int i = 0; i < 16; i++) { /* lanes past N repeat the last channel, never stored */
            const int64_t n = nb * 16 + (i < cnt ? i : cnt - 1);
            const int64_t pb = xg_param(&j->b, n, 0);
            const float z = (float)(128 + j->b.zero_point[pb] - offset);
            zf[t][i] = 8388608.0f + z;
            zf[t][16 + i] = 8388608.0f + 256.0f * z;
            sb[t][i] = j->b.scale[pb];
            bias[t][i] = j->bias != NULL ? j->bias[n] : 0.0f;
        }
        for (int c = 0; c < cnt; c += XP4_L)
            cs[ns++] = (xp8_cols){v->p->panels + (size_t)nb * (size_t)v->p->k4 * 64 + (size_t)c * 4,
                                  zf[t] + c, sb[t] + c, bias[t] + c, nb * 16 + c,
                                  cnt - c < XP4_L ? cnt - c : XP4_L};
    }
    for (int64_t m = 0; m < j->m; m += XP4_ROWS) {
        const int mm = j->m - m < XP4_ROWS ? (int)(j->m - m) : XP4_ROWS;
        const int nv = mm <= XP8_NV ? XP8_NV / mm : 1; /* column sets per pass */
        for (int s = 0; s < ns; s += s + nv <= ns ? nv : 1) {
            const bool all = s + nv <= ns && nv > 1;
            switch (mm * 2 + all) { /* row and set counts constants in each copy */
            case 2: xp8_rows(v, cs + s, 1, m, 1); break;
            case 3: xp8_rows(v, cs + s, XP8_NV, m, 1); break;
#if XP4_ROWS > 2
            case 5: xp8_rows(v, cs + s, XP8_NV / 2, m, 2); break;
            case 6: xp8_rows(v, cs + s, 1, m, 3); break;
            case 8: xp8_rows(v, cs + s, 1, m, 4); break;
#endif
            default: xp8_rows(v, cs + s, 1, m, 2); break;
            }
        }
    }
}

static llmq_status xp8_matmul(llmq_backend *be, const llmq_matmul_job *j)
{
    llmq_context *ctx = be->ctx;
    xp8 v;
    memset(&v, 0, sizeof v);
    v.j = j;
    v.p = j->b.packed;
    v.kp = v.p->k4 * 4;
    const size_t a_bytes = ((size_t)j->m * (size_t)v.kp * 4 + 63) & ~(size_t)63;
    v.a32 = llmq_scratch(ctx, a_bytes);
    if (v.a32 == NULL)
        return xg_oom(be, a_bytes);
    xg_for(ctx, j, j->m, xp8_prep, &v);
    const int64_t nblocks = (j->n + 15) / 16;
    xg_for(ctx, j, (nblocks + XP8_BLOCKS - 1) / XP8_BLOCKS, xp8_task, &v);
    return LLMQ_OK;
}

#endif
