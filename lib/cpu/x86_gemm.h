/* x86_gemm.h - the matmul driver of the x86 tiers, included once by each tier's translation
 * unit after it defined its microkernel (internal; every function is static).
 * SPDX-License-Identifier: MIT
 *
 * The including file defines:
 *   XG_MR        rows of the microkernel tile (A is packed in blocks of XG_MR rows)
 *   XG_NRV       columns of the microkernel tile: 8 or 16 (a panel holds 16)
 *   XG_A_BYTES   bytes per packed A element: 2 (int16, vpmaddwd) or 1 (u8, vpdpbusd)
 *   xg_ukr_body(mr, a, b, k4n, c, ldc, add)
 *       c[r * ldc + j] (+)= sum over k4 blocks q < k4n, i < 4 of
 *           A[q][r][i] * B[q * 64 + j * 4 + i]   for r < mr, j < XG_NRV
 *       in exact int32 arithmetic modulo 2^32; A[q][r][i] is the packed u8 a' = a + a_off,
 *       B the packed s8 b' = b - b_off (panel layout, 64 bytes per k4 block).
 *
 * Products (docs/KERNELS.md has the contract, docs/gemm.md the numerics):
 *   - panel GEMM: integer A x 8/4/2-bit B, prepacked or packed here panel by panel; uniform
 *     parameters or B groups along K that are a multiple of 4. Raw sums S = sum a' b' are
 *     corrected exactly: acc = S - zb' (sum a' - L za') - za' sum b'.
 *   - integer GEMV (M <= 4, B [N, K] 8 or 4 bits as stored): A' = a - zA in int16, vpmaddwd
 *     against B widened in registers, acc = sum A' b - zB sum A'.
 *   - weight-only (float A x 8/4-bit B [N, K]): B widened to float (in registers, or once per
 *     group into a buffer when A has more than 2 rows), FMA.
 *   - prepacked 4-bit B (W4A8 and W4A16): x86_pack4.h.
 *   - float A x prepacked 8-bit B (W8A16): x86_pack8.h.
 * Anything else goes to the reference. The epilogues evaluate the reference's expressions in
 * the same order with separate multiplies and adds, so integer and exact-float results are
 * bit-identical; weight-only sums are reordered (docs/gemm.md bound). Work is split over
 * (M, N) tiles, never along K: results do not depend on the thread count. */
#ifndef LLMQ_CPU_X86_GEMM_H
#define LLMQ_CPU_X86_GEMM_H

#include <stdbool.h>

#include "core/context_impl.h"
#include "core/pool.h"
#include "cpu/cpu_backends.h"
#include "cpu/x86_common.h"
#include "quant/pack.h"
#include "quant/rounding.h"

#define XG_MC 240 /* most rows of a task: a multiple of every XG_MR */
#define XG_NC 64  /* columns of a task: 4 panels */
#define XG_KC 4096 /* reduction chunk: the B block (XG_NC x XG_KC bytes, 256 KB) stays in L2;
                    * each chunk costs a pass of loads and stores over the int32 tile, and
                    * 512 (B in L1) was 7% slower at 512 x 4096 x 4096 */
#define XG_KC4 (XG_KC / 4)
#define XG_GEMV_M 4 /* integer A with at most this many rows and unpacked B: GEMV (the panel
                     * GEMM repacks B, which pays from about 5 rows on) */

/* Products too small to pay for waking the pool's threads (microseconds of work against tens
 * of microseconds of wake-up on a loaded or virtual host) run on the calling thread: the same
 * tasks, so the same bits. */
#define XG_INLINE_MACS ((int64_t)1 << 20)

static void xg_for(llmq_context *ctx, const llmq_matmul_job *j, int64_t ntasks, llmq_task_fn fn,
                   void *arg)
{
    if (j->m * j->n * j->k < XG_INLINE_MACS) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    llmq_parallel_for(ctx, ntasks, fn, arg);
}

/* ---- parameters ---- */

/* llmq_param_row_base() and the column term without divisions in the common cases (per
 * tensor, per row, per channel of the last axis): these run per group and per output. */
static inline int64_t xg_row_base(const llmq_param_map *m, int64_t r)
{
    if (m->row_mul == 0)
        return 0;
    int64_t q = m->row_div == 1 ? r : r / m->row_div;
    if (q >= m->row_mod)
        q %= m->row_mod;
    return q * m->row_mul;
}

static inline int64_t xg_col_index(const llmq_param_map *m, int64_t c)
{
    return m->col_group == 1 ? c : c < m->col_group ? 0 : c / m->col_group;
}

static inline int64_t xg_param(const llmq_matmul_operand *o, int64_t row, int64_t col)
{
    return xg_row_base(&o->map, row) + xg_col_index(&o->map, col);
}

/* B's parameter index for output channel n and reduction index k. */
static inline int64_t xg_bparam(const llmq_matmul_job *j, int64_t n, int64_t k)
{
    return j->b_kn ? xg_param(&j->b, k, n) : xg_param(&j->b, n, k);
}

static inline int32_t xg_code(const llmq_matmul_operand *o, int64_t row, int64_t col)
{
    return llmq_code_at((const uint8_t *)o->data + (size_t)row * o->stride, o->dtype, col);
}

/* ---- epilogues: the reference's expressions (gemm_scalar.c), 8 columns at a time ---- */

/* Requantize v (already multiplied by every scale but C's) onto C's grid. */
static inline __m256i xg_requant(__m256 v, __m256i zc, __m256i qmin, __m256i qmax)
{
    v = _mm256_max_ps(v, _mm256_cvtepi32_ps(_mm256_sub_epi32(qmin, zc))); /* NaN -> lo */
    v = _mm256_min_ps(v, _mm256_cvtepi32_ps(_mm256_sub_epi32(qmax, zc)));
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_add_epi32(_mm256_cvttps_epi32(v), zc);
}

/* C's scale and zero point for row m, columns n0 .. n0 + cnt (padded to 8). */
static inline void xg_cparams(const llmq_matmul_job *j, int64_t m, int64_t n0, int cnt,
                              float *sc, int32_t *zc)
{
    const int64_t base = xg_row_base(&j->c.map, m);
    for (int i = 0; i < 8; i++) {
        const int64_t p = base + xg_col_index(&j->c.map, n0 + (i < cnt ? i : 0));
        sc[i] = j->c.scale[p];
        zc[i] = j->c.zero_point[p];
    }
}

static inline void xg_store_codes(void *crow, int64_t n0, __m256i q, int cnt, bool sgn)
{
    uint8_t t[8];
    x86_store_codes8(t, q, sgn);
    memcpy((uint8_t *)crow + n0, t, (size_t)cnt);
}

/* Final epilogue of exact sums acc for row m, columns n0 .. n0 + cnt. sb, bias: 8 values. */
static inline void xg_epilogue_exact(const llmq_matmul_job *j, int64_t m, int64_t n0, int cnt,
                                     __m256i acc, float sa, const float *sb, const float *bias)
{
    void *crow = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
    const llmq_dtype cd = j->c.dtype;
    if (cd == LLMQ_DTYPE_S32) {
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, acc);
        memcpy((int32_t *)crow + n0, t, sizeof(int32_t) * (size_t)cnt);
        return;
    }
    const __m256 f = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(sa)),
                                   _mm256_loadu_ps(sb));
    if (x86_is_float(cd)) {
        x86_store_float(crow, cd, n0, _mm256_add_ps(f, _mm256_loadu_ps(bias)), cnt);
        return;
    }
    float sc[8];
    int32_t zc[8];
    xg_cparams(j, m, n0, cnt, sc, zc);
    const __m256 vsc = _mm256_loadu_ps(sc);
    __m256 v;
    if (j->requant == LLMQ_REQUANT_MULTIPLIER)
        v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc),
                          _mm256_div_ps(_mm256_mul_ps(_mm256_set1_ps(sa), _mm256_loadu_ps(sb)), vsc));
    else
        v = _mm256_div_ps(f, vsc);
    const __m256i q = xg_requant(v, _mm256_loadu_si256((const __m256i *)zc),
                                 _mm256_set1_epi32(j->c.qmin), _mm256_set1_epi32(j->c.qmax));
    xg_store_codes(crow, n0, q, cnt, cd == LLMQ_DTYPE_S8);
}

/* Final epilogue of grouped float sums: + bias, or requantized acc / sC. */
static inline void xg_epilogue_float(const llmq_matmul_job *j, int64_t m, int64_t n0, int cnt,
                                     __m256 acc, const float *bias)
{
    void *crow = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
    const llmq_dtype cd = j->c.dtype;
    if (x86_is_float(cd)) {
        x86_store_float(crow, cd, n0, _mm256_add_ps(acc, _mm256_loadu_ps(bias)), cnt);
        return;
    }
    float sc[8];
    int32_t zc[8];
    xg_cparams(j, m, n0, cnt, sc, zc);
    const __m256i q = xg_requant(_mm256_div_ps(acc, _mm256_loadu_ps(sc)),
                                 _mm256_loadu_si256((const __m256i *)zc),
                                 _mm256_set1_epi32(j->c.qmin), _mm256_set1_epi32(j->c.qmax));
    xg_store_codes(crow, n0, q, cnt, cd == LLMQ_DTYPE_S8);
}

/* ---- the panel GEMM ---- */

#ifndef XG_NP
#define XG_NP 1 /* panels per microkernel call (x86_ukr_v16.h) */
#endif

/* np (<= XG_NP, or 4 with mr <= 4) panels, panel i at b + i * bstride. */
static void xg_ukr(int mr, int np, const void *a, const int8_t *b, int64_t bstride, int64_t k4n,
                   int32_t *c, int64_t ldc, bool add)
{
#if XG_NP > 1
    if (np == 4) { /* mr <= 4 */
        switch (mr) {
#define XG_CASE4(R)                                                                            \
    case R: xg_ukr_body4(R, a, b, bstride, k4n, c, ldc, add); break;
            XG_CASE4(1) XG_CASE4(2) XG_CASE4(3) XG_CASE4(4)
#undef XG_CASE4
        default: break;
        }
        return;
    }
    if (np == 2) {
        switch (mr) { /* one copy per row count, so that the tile stays in registers */
#define XG_CASE2(R)                                                                            \
    case R: xg_ukr_body2(R, a, b, bstride, k4n, c, ldc, add); break;
            XG_CASE2(1) XG_CASE2(2) XG_CASE2(3) XG_CASE2(4) XG_CASE2(5) XG_CASE2(6)
            XG_CASE2(7) XG_CASE2(8) XG_CASE2(9) XG_CASE2(10) XG_CASE2(11) XG_CASE2(12)
#undef XG_CASE2
        default: break;
        }
        return;
    }
#if XG_MR != 12
#error "two panels per call need XG_MR 12"
#endif
#endif
    (void)np;
    (void)bstride;
    switch (mr) {
#define XG_CASE(R)                                                                             \
    case R: xg_ukr_body(R, a, b, k4n, c, ldc, add); break;
    XG_CASE(1) XG_CASE(2) XG_CASE(3) XG_CASE(4)
#if XG_MR > 4
    XG_CASE(5) XG_CASE(6)
#endif
#if XG_MR > 6
    XG_CASE(7) XG_CASE(8) XG_CASE(9) XG_CASE(10) XG_CASE(11) XG_CASE(12)
#endif
#if XG_MR != 4 && XG_MR != 6 && XG_MR != 12
#error "XG_MR must be 4, 6 or 12"
#endif
#undef XG_CASE
    default: break;
    }
}

typedef struct xg_gemm {
    const llmq_matmul_job *j;
    int64_t m, n, k, k4;
    int64_t group, ngroups; /* runs of k with one B parameter pair: the whole K when uniform */
    bool grouped;
    int32_t a_off, b_off;   /* a' = a + a_off is u8; b' = b - b_off is s8 */
    /* A, packed by xg_pack_a: mblocks of XG_MR rows, [k4][XG_MR][4] elements each */
    uint8_t *apack;
    size_t ablock;          /* bytes of one mblock */
    int32_t *arsum;         /* [m][ngroups] sums of a' over each group */
    float *sa;              /* [m] A's scale */
    int32_t *zap;           /* [m] A's zero point + a_off */
    /* per-worker scratch */
    char *wbase;
    size_t wbytes;
    int64_t ntn;            /* column tasks */
    int64_t mc;             /* rows of a task (the last may have fewer) */
} xg_gemm;

/* Pack rows of mblock `mb` of A and their group sums. */
static void xg_pack_a(void *arg, int64_t mb, int worker)
{
    (void)worker;
    const xg_gemm *g = arg;
    const llmq_matmul_job *j = g->j;
    uint8_t *dst = g->apack + (size_t)mb * g->ablock;
    const uint8_t flip = g->a_off ? 0x80 : 0;
    const size_t rstep = (size_t)XG_MR * 4 * XG_A_BYTES; /* bytes from one k4 block to the next */
    int64_t q0 = 0; /* k4 blocks packed for all rows at once */
#if XG_A_BYTES == 1 && XG_MR % 4 == 0
    /* 16 codes of 4 rows: a 4 x 4 transpose of dwords gives 4 k4 blocks of the 4 rows, each
     * one 16-byte store (a row at a time, each block was four scattered 4-byte stores) */
    const uint8_t *rows[XG_MR];
    for (int r = 0; r < XG_MR; r++)
        rows[r] = mb * XG_MR + r < g->m ? (const uint8_t *)j->a.data + (size_t)(mb * XG_MR + r) * j->a.stride
                                        : NULL;
    for (; (q0 + 4) * 4 <= g->k; q0 += 4)
        for (int r = 0; r < XG_MR; r += 4) {
            __m128i x[4];
            for (int i = 0; i < 4; i++)
                x[i] = rows[r + i] != NULL
                           ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(rows[r + i] + q0 * 4)),
                                           _mm_set1_epi8((char)flip))
                           : _mm_setzero_si128();
            const __m128i t0 = _mm_unpacklo_epi32(x[0], x[1]), t1 = _mm_unpacklo_epi32(x[2], x[3]);
            const __m128i t2 = _mm_unpackhi_epi32(x[0], x[1]), t3 = _mm_unpackhi_epi32(x[2], x[3]);
            uint8_t *d = dst + (size_t)q0 * rstep + (size_t)r * 4;
            _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi64(t0, t1));
            _mm_storeu_si128((__m128i *)(d + rstep), _mm_unpackhi_epi64(t0, t1));
            _mm_storeu_si128((__m128i *)(d + 2 * rstep), _mm_unpacklo_epi64(t2, t3));
            _mm_storeu_si128((__m128i *)(d + 3 * rstep), _mm_unpackhi_epi64(t2, t3));
        }
#endif
    for (int r = 0; r < XG_MR; r++) {
        const int64_t m = mb * XG_MR + r;
        const uint8_t *src = m < g->m ? (const uint8_t *)j->a.data + (size_t)m * j->a.stride : NULL;
        uint8_t *d = dst + (size_t)r * 4 * XG_A_BYTES;
        int64_t q = q0;
        if (src != NULL) /* 4 k4 blocks (16 codes) at a time */
            for (; (q + 4) * 4 <= g->k; q += 4) {
                const __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + q * 4)),
                                                _mm_set1_epi8((char)flip));
#if XG_A_BYTES == 2
                const __m256i w = _mm256_cvtepu8_epi16(x);
                const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
                _mm_storel_epi64((__m128i *)(d + (size_t)q * rstep), w0);
                _mm_storel_epi64((__m128i *)(d + (size_t)(q + 1) * rstep), _mm_unpackhi_epi64(w0, w0));
                _mm_storel_epi64((__m128i *)(d + (size_t)(q + 2) * rstep), w1);
                _mm_storel_epi64((__m128i *)(d + (size_t)(q + 3) * rstep), _mm_unpackhi_epi64(w1, w1));
#else
                int32_t v4[4];
                _mm_storeu_si128((__m128i *)v4, x);
                for (int t = 0; t < 4; t++)
                    memcpy(d + (size_t)(q + t) * rstep, &v4[t], 4);
#endif
            }
        for (; q < g->k4; q++) { /* the last blocks, zero past K (and for rows past M) */
            uint8_t v[4];
            for (int i = 0; i < 4; i++) {
                const int64_t k = q * 4 + i;
                v[i] = src != NULL && k < g->k ? (uint8_t)(src[k] ^ flip) : 0;
            }
#if XG_A_BYTES == 2
            const uint16_t w[4] = {v[0], v[1], v[2], v[3]};
            memcpy(d + (size_t)q * rstep, w, sizeof w);
#else
            memcpy(d + (size_t)q * rstep, v, 4);
#endif
        }
        if (src == NULL)
            continue;
        g->sa[m] = j->a.scale[xg_param(&j->a, m, 0)];
        g->zap[m] = j->a.zero_point[xg_param(&j->a, m, 0)] + g->a_off;
        for (int64_t gi = 0; gi < g->ngroups; gi++) {
            const int64_t k0 = gi * g->group, k1 = k0 + g->group < g->k ? k0 + g->group : g->k;
            uint32_t s = 0;
            int64_t k = k0;
            __m256i acc = _mm256_setzero_si256();
            const __m256i vflip = _mm256_set1_epi8((char)flip);
            for (; k + 32 <= k1; k += 32) {
                const __m256i x = _mm256_xor_si256(
                    _mm256_loadu_si256((const __m256i *)(src + k)), vflip);
                acc = _mm256_add_epi64(acc, _mm256_sad_epu8(x, _mm256_setzero_si256()));
            }
            s += (uint32_t)x86_hsum_epi32(acc); /* the high halves of the 64-bit sums are 0 */
            for (; k < k1; k++)
                s += (uint8_t)(src[k] ^ flip);
            g->arsum[m * g->ngroups + gi] = (int32_t)s;
        }
    }
}

/* Decode B[n, k0 .. k1) (one row of an [N, K] weight) into s8 b' = code - b_off; zero to `pad`. */
static void xg_decode_row(const llmq_matmul_job *j, int64_t n, int64_t k0, int64_t k1, int64_t pad,
                          int8_t *out)
{
    const uint8_t *row = (const uint8_t *)j->b.data + (size_t)n * j->b.stride;
    const int64_t len = k1 - k0;
    int64_t i = 0;
    switch (j->b.dtype) {
    case LLMQ_DTYPE_S8:
        memcpy(out, row + k0, (size_t)len);
        i = len;
        break;
    case LLMQ_DTYPE_U8: /* b - 128 as s8 is b ^ 0x80 */
        for (; i + 32 <= len; i += 32)
            _mm256_storeu_si256((__m256i *)(out + i),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + k0 + i)),
                                                 _mm256_set1_epi8((char)0x80)));
        for (; i < len; i++)
            out[i] = (int8_t)(row[k0 + i] ^ 0x80);
        break;
    case LLMQ_DTYPE_S4:
    case LLMQ_DTYPE_U4: { /* k0 is even: byte k0 / 2 starts the run; element 2i is the low nibble */
        const bool sgn = j->b.dtype == LLMQ_DTYPE_S4;
        for (; i + 32 <= len; i += 32) {
            __m128i lo, hi;
            x86_nibbles(_mm_loadu_si128((const __m128i *)(row + (k0 + i) / 2)), sgn, &lo, &hi);
            _mm_storeu_si128((__m128i *)(out + i), _mm_unpacklo_epi8(lo, hi));
            _mm_storeu_si128((__m128i *)(out + i + 16), _mm_unpackhi_epi8(lo, hi));
        }
        break;
    }
    default:
        break;
    }
    for (; i < len; i++) /* tails and 2-bit codes */
        out[i] = (int8_t)(xg_code(&j->b, n, k0 + i) - (j->b.dtype == LLMQ_DTYPE_U8 ? 128 : 0));
    memset(out + len, 0, (size_t)(pad - len));
}

/* Sum of n signed bytes (n <= XG_KC). */
static inline int32_t xg_sum_s8(const int8_t *p, int64_t n)
{
    int64_t i = 0;
    __m256i acc = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32) {
        const __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)),
                                           _mm256_set1_epi8((char)0x80));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(x, _mm256_setzero_si256()));
    }
    int32_t s = x86_hsum_epi32(acc) - 128 * (int32_t)i;
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* Pack columns n0 .. n0 + npan * 16 and k0 .. k1 of an unpacked B into panels at `blk`
 * (XG_KC4 * 64 bytes per panel), adding each column's sum of b' to colsum. */
static void xg_pack_b(const xg_gemm *g, int64_t n0, int npan, int64_t k0, int64_t k1, int8_t *blk,
                      int8_t *rowbuf, int32_t *colsum)
{
    const llmq_matmul_job *j = g->j;
    /* bytes per decoded row: whole 4x4 dword transposes */
    const int64_t kk4 = (k1 - k0 + 3) / 4, pad = (kk4 + 3) / 4 * 16;
    for (int p = 0; p < npan; p++) {
        int8_t *panel = blk + (size_t)p * XG_KC4 * 64;
        if (j->b_kn) { /* 8-bit [K, N]: interleave 4 rows of 16 bytes per k4 block */
            for (int64_t q = 0; q < kk4; q++) {
                __m128i r[4];
                for (int i = 0; i < 4; i++) {
                    const int64_t k = k0 + q * 4 + i;
                    uint8_t t[16]; /* b_off: zero once flipped */
                    memset(t, g->b_off, sizeof t);
                    if (k < k1)
                        for (int c = 0; c < 16; c++) {
                            const int64_t n = n0 + p * 16 + c;
                            t[c] = n < g->n ? ((const uint8_t *)j->b.data)[(size_t)k * j->b.stride + (size_t)n] : (uint8_t)g->b_off;
                        }
                    r[i] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)t),
                                         _mm_set1_epi8((char)(g->b_off ? 0x80 : 0)));
                }
                const __m128i t01l = _mm_unpacklo_epi8(r[0], r[1]), t01h = _mm_unpackhi_epi8(r[0], r[1]);
                const __m128i t23l = _mm_unpacklo_epi8(r[2], r[3]), t23h = _mm_unpackhi_epi8(r[2], r[3]);
                int8_t *d = panel + q * 64;
                _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(t01l, t23l));
                _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(t01l, t23l));
                _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(t01h, t23h));
                _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(t01h, t23h));
            }
            for (int c = 0; c < 16; c++) {
                int32_t s = 0;
                for (int64_t q = 0; q < kk4; q++)
                    for (int i = 0; i < 4; i++)
                        s += panel[q * 64 + c * 4 + i];
                colsum[p * 16 + c] += s;
            }
            continue;
        }
        for (int c = 0; c < 16; c++) {
            const int64_t n = n0 + p * 16 + c;
            int8_t *rb = rowbuf + (size_t)c * (XG_KC + 16);
            if (n < g->n) {
                xg_decode_row(j, n, k0, k1, pad, rb);
                colsum[p * 16 + c] += xg_sum_s8(rb, k1 - k0);
            } else {
                memset(rb, 0, (size_t)pad);
            }
        }
        /* [16 columns][k] -> [k4][16 columns][4]: 4x4 transposes of dwords */
        for (int64_t q = 0; q < kk4; q += 4)
            for (int c = 0; c < 16; c += 4) {
                const __m128i r0 = _mm_loadu_si128((const __m128i *)(rowbuf + (size_t)(c + 0) * (XG_KC + 16) + q * 4));
                const __m128i r1 = _mm_loadu_si128((const __m128i *)(rowbuf + (size_t)(c + 1) * (XG_KC + 16) + q * 4));
                const __m128i r2 = _mm_loadu_si128((const __m128i *)(rowbuf + (size_t)(c + 2) * (XG_KC + 16) + q * 4));
                const __m128i r3 = _mm_loadu_si128((const __m128i *)(rowbuf + (size_t)(c + 3) * (XG_KC + 16) + q * 4));
                const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
                const __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
                int8_t *d = panel + q * 64 + c * 4;
                _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi64(t0, t1));
                _mm_storeu_si128((__m128i *)(d + 64), _mm_unpackhi_epi64(t0, t1));
                _mm_storeu_si128((__m128i *)(d + 128), _mm_unpacklo_epi64(t2, t3));
                _mm_storeu_si128((__m128i *)(d + 192), _mm_unpackhi_epi64(t2, t3));
            }
    }
}

/* Per-worker scratch of the panel GEMM. */
typedef struct xg_work {
    int32_t *cacc;   /* [XG_MC][XG_NC] raw sums of the current group */
    float *facc;     /* [XG_MC][XG_NC] grouped: the float accumulators */
    int8_t *blk;     /* [4 panels][XG_KC4][64] the packed B chunk */
    int8_t *rowbuf;  /* [16][XG_KC + 16] decoded rows */
    int32_t *colsum; /* [XG_NC] sums of b' over the current group */
    float *sb;       /* [XG_NC + 8] B's scales for the current group */
    int32_t *zbp;    /* [XG_NC + 8] B's zero points - b_off */
    float *bias;     /* [XG_NC + 8] */
} xg_work;

#define XG_WORK_BYTES                                                                          \
    (2 * (size_t)XG_MC * XG_NC * 4 + 4 * (size_t)XG_KC4 * 64 + 16 * (size_t)(XG_KC + 16) +     \
     4 * (size_t)(XG_NC + 8) * 4 + 256)

static xg_work xg_work_at(const xg_gemm *g, int worker)
{
    char *p = g->wbase + (size_t)worker * g->wbytes;
    xg_work w;
    w.cacc = (int32_t *)p;
    p += (size_t)XG_MC * XG_NC * 4;
    w.facc = (float *)p;
    p += (size_t)XG_MC * XG_NC * 4;
    w.blk = (int8_t *)p;
    p += 4 * (size_t)XG_KC4 * 64;
    w.rowbuf = (int8_t *)p;
    p += 16 * (size_t)(XG_KC + 16);
    p = (char *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
    w.colsum = (int32_t *)p;
    w.sb = (float *)(w.colsum + XG_NC + 8);
    w.zbp = (int32_t *)(w.sb + XG_NC + 8);
    w.bias = (float *)(w.zbp + XG_NC + 8);
    return w;
}

/* The epilogue of rows r0 .. r1 of a task's tile for group gi (its length len), once the
 * group's raw sums and B parameters are in w. */
static void xg_tile_epilogue(const xg_gemm *g, const xg_work *wp, int64_t m0, int64_t r0,
                             int64_t r1, int64_t n0, int ncols, int64_t gi, uint32_t len)
{
    const llmq_matmul_job *j = g->j;
    const xg_work w = *wp;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t m = m0 + r;
        const uint32_t za = (uint32_t)g->zap[m];
        const uint32_t t = (uint32_t)g->arsum[m * g->ngroups + gi] - len * za;
        const float sa = g->sa[m];
#ifdef XG_GEMV_ZMM
        if (!g->grouped && j->c.dtype == LLMQ_DTYPE_F32 && ncols == XG_NC) {
            /* the common case 16 columns a step: the same operations as below */
            float *crow = (float *)(void *)((uint8_t *)j->c_data + (size_t)m * j->c.stride) + n0;
            for (int c = 0; c < XG_NC; c += 16) {
                const __m512i acc = _mm512_sub_epi32(
                    _mm512_sub_epi32(_mm512_loadu_si512((const void *)(w.cacc + r * XG_NC + c)),
                                     _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(w.zbp + c)),
                                                        _mm512_set1_epi32((int32_t)t))),
                    _mm512_mullo_epi32(_mm512_set1_epi32((int32_t)za),
                                       _mm512_loadu_si512((const void *)(w.colsum + c))));
                const __m512 f = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(sa)),
                                               _mm512_loadu_ps(w.sb + c));
                _mm512_storeu_ps(crow + c, _mm512_add_ps(f, _mm512_loadu_ps(w.bias + c)));
            }
            continue;
        }
#endif
        for (int c = 0; c < ncols; c += 8) {
            const int cnt = ncols - c < 8 ? ncols - c : 8;
            const __m256i s = _mm256_loadu_si256((const __m256i *)(w.cacc + r * XG_NC + c));
            const __m256i zb = _mm256_loadu_si256((const __m256i *)(w.zbp + c));
            const __m256i cs = _mm256_loadu_si256((const __m256i *)(w.colsum + c));
            const __m256i acc = _mm256_sub_epi32(
                _mm256_sub_epi32(s, _mm256_mullo_epi32(zb, _mm256_set1_epi32((int32_t)t))),
                _mm256_mullo_epi32(_mm256_set1_epi32((int32_t)za), cs));
            if (!g->grouped) {
                xg_epilogue_exact(j, m, n0 + c, cnt, acc, sa, w.sb + c, w.bias + c);
                continue;
            }
            /* acc += (float)part * sA * sB, in k order; the first add is to 0.0f */
            float *f = w.facc + r * XG_NC + c;
            const __m256 prev = gi == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(f);
            const __m256 add = _mm256_mul_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(sa)),
                _mm256_loadu_ps(w.sb + c));
            const __m256 v = _mm256_add_ps(prev, add);
            if (gi + 1 < g->ngroups)
                _mm256_storeu_ps(f, v);
            else
                xg_epilogue_float(j, m, n0 + c, cnt, v, w.bias + c);
        }
    }
}

/* One task: rows [m0, m0 + g->mc) x columns [n0, n0 + XG_NC). */
static void xg_gemm_task(void *arg, int64_t task, int worker)
{
    const xg_gemm *g = arg;
    const llmq_matmul_job *j = g->j;
    const int64_t m0 = task / g->ntn * g->mc, n0 = task % g->ntn * XG_NC;
    const int64_t mrows = g->m - m0 < g->mc ? g->m - m0 : g->mc;
    const int ncols = (int)(g->n - n0 < XG_NC ? g->n - n0 : XG_NC);
    const int npan = (ncols + 15) / 16;
    xg_work w = xg_work_at(g, worker);
    const llmq_packed_b *pk = j->b.packed;
    int64_t bidx[XG_NC + 8]; /* B's parameter index of each column at k = 0 */
    for (int c = 0; c < XG_NC + 8; c++) {
        const int64_t n = n0 + (c < ncols ? c : 0);
        w.bias[c] = j->bias != NULL ? j->bias[n] : 0.0f;
        bidx[c] = xg_bparam(j, n, 0);
    }
    for (int64_t gi = 0; gi < g->ngroups; gi++) {
        const int64_t g0 = gi * g->group, g1 = g0 + g->group < g->k ? g0 + g->group : g->k;
        memset(w.colsum, 0, sizeof(int32_t) * XG_NC);
        for (int64_t k0 = g0; k0 < g1; k0 += XG_KC) {
            const int64_t k1 = k0 + XG_KC < g1 ? k0 + XG_KC : g1, kk4 = (k1 - k0 + 3) / 4;
            const int8_t *bp[4];
            /* bytes from one panel to the next */
            const int64_t pstride = pk != NULL ? pk->k4 * 64 : XG_KC4 * 64;
            if (pk != NULL) {
                for (int p = 0; p < npan; p++)
                    bp[p] = pk->panels + (size_t)(n0 / 16 + p) * (size_t)pk->k4 * 64 +
                            (size_t)(k0 / 4) * 64;
            } else {
                xg_pack_b(g, n0, npan, k0, k1, w.blk, w.rowbuf, w.colsum);
                for (int p = 0; p < npan; p++)
                    bp[p] = w.blk + (size_t)p * XG_KC4 * 64;
            }
            const bool last = k1 == g1;
            if (last) /* this group's B parameters and column sums */
                for (int c = 0; c < XG_NC + 8; c++) {
                    const int64_t pb = bidx[c] + gi; /* groups only on [N, K] weights */
                    w.sb[c] = j->b.scale[pb];
                    w.zbp[c] = j->b.zero_point[pb] - g->b_off;
                    if (pk != NULL && c < XG_NC)
                        w.colsum[c] = c < ncols ? pk->colsum[n0 + c] : 0;
                }
            for (int64_t r = 0; r < mrows; r += XG_MR) {
                const int mr = (int)(mrows - r < XG_MR ? mrows - r : XG_MR);
                const uint8_t *a = g->apack + (size_t)((m0 + r) / XG_MR) * g->ablock +
                                   (size_t)(k0 / 4) * XG_MR * 4 * XG_A_BYTES;
                /* few rows: all four panels at once (four weight streams) */
                const int step = XG_NP > 1 && mr <= 4 && npan == 4 ? 4 : XG_NP;
                for (int p = 0; p < npan; p += step) {
                    const int np = npan - p < step ? npan - p : step;
                    for (int h = 0; h < 16; h += XG_NRV)
                        xg_ukr(mr, np, a, bp[p] + h * 4, pstride, kk4,
                               w.cacc + r * XG_NC + p * 16 + h, XG_NC, k0 != g0);
                }
                /* each row block's epilogue right after its sums: its stores to C drain
                 * while the next block is summed */
                if (last)
                    xg_tile_epilogue(g, &w, m0, r, r + mr, n0, ncols, gi, (uint32_t)(g1 - g0));
            }
        }
    }
}

static llmq_status xg_oom(llmq_backend *be, size_t bytes)
{
    return llmq_fail_oom(be->ctx, "llmq_matmul", "workspace", bytes);
}

static llmq_status xg_panel_gemm(llmq_backend *be, const llmq_matmul_job *j)
{
    llmq_context *ctx = be->ctx;
    xg_gemm g;
    memset(&g, 0, sizeof g);
    g.j = j;
    g.m = j->m;
    g.n = j->n;
    g.k = j->k;
    g.k4 = (j->k + 3) / 4;
    g.grouped = !j->b_uniform_k;
    g.group = g.grouped ? j->b.map.col_group : j->k;
    g.ngroups = (j->k + g.group - 1) / g.group;
    g.a_off = j->a.dtype == LLMQ_DTYPE_S8 ? 128 : 0;
    g.b_off = j->b.packed != NULL ? j->b.packed->offset : j->b.dtype == LLMQ_DTYPE_U8 ? 128 : 0;
    const int64_t mblocks = (g.m + XG_MR - 1) / XG_MR;
    g.ablock = (size_t)g.k4 * XG_MR * 4 * XG_A_BYTES;
    g.ntn = (g.n + XG_NC - 1) / XG_NC;
    /* row blocks shared evenly between the fewest tasks of at most XG_MC rows: each task
     * streams B once, so a short last task (8 rows of 128) would cost a whole pass over B */
    const int64_t per = XG_MC / XG_MR, mtasks = (mblocks + per - 1) / per;
    g.mc = (mblocks + mtasks - 1) / mtasks * XG_MR;
    const int64_t tasks = mtasks * g.ntn;
    const int workers = llmq_parallel_workers(ctx, tasks);
    g.wbytes = (XG_WORK_BYTES + 63) & ~(size_t)63;
    const size_t abytes = ((size_t)mblocks * g.ablock + 63) & ~(size_t)63;
    const size_t pbytes = ((size_t)g.m * (size_t)(g.ngroups + 2) * 4 + 63) & ~(size_t)63;
    const size_t total = abytes + pbytes + (size_t)workers * g.wbytes;
    char *ws = llmq_scratch(ctx, total);
    if (ws == NULL)
        return xg_oom(be, total);
    g.apack = (uint8_t *)ws;
    g.arsum = (int32_t *)(ws + abytes);
    g.sa = (float *)(g.arsum + g.m * g.ngroups);
    g.zap = (int32_t *)(g.sa + g.m);
    g.wbase = ws + abytes + pbytes;
    xg_for(ctx, j, mblocks, xg_pack_a, &g);
    xg_for(ctx, j, tasks, xg_gemm_task, &g);
    return LLMQ_OK;
}

/* ---- integer GEMV: few rows of A against B as stored ([N, K], 8 or 4 bits) ---- */

/* The kernels that read B as stored, row by row (integer GEMV and weight-only). */
typedef struct xg_gemv {
    const llmq_matmul_job *j;
    int64_t m, n, k, kv;    /* kv: the part of K done 32 at a time */
    int64_t group, ngroups; /* runs of k with one B parameter pair: the whole K when uniform */
    bool grouped, nibbles;
    bool t16;               /* 4-bit grouped GEMV with 16 B rows per zmm lane set (XG_GEMV_ZMM) */
    float *pwork;           /* t16: per worker, [ngroups][16] scales then zero points + w_off */
    int16_t *a16;           /* GEMV: [m][k] a - zA, permuted (xg_a_index) */
    int8_t *a8;             /* VNNI GEMV: [m][k] a_s = a - a_off as s8, permuted */
    int32_t *asum;          /* GEMV: [m][ngroups] sums of a16 (VNNI: of a_s, vector part) */
    float *sa;              /* GEMV: [m] A's scale */
    int32_t *zas;           /* VNNI GEMV: [m] zA - a_off */
    float *a32;             /* weight-only: [m][k] A as f32, permuted */
    float *wo_work;         /* weight-only: per worker, wo_worker_floats floats */
    size_t wo_worker_floats;
    int64_t rows_per_task;
} xg_gemv;

static void xg_gemv_init(xg_gemv *v, const llmq_matmul_job *j, int64_t rows_per_task)
{
    memset(v, 0, sizeof *v);
    v->j = j;
    v->m = j->m;
    v->n = j->n;
    v->k = j->k;
    v->grouped = !j->b_uniform_k;
    v->group = v->grouped ? j->b.map.col_group : j->k;
    v->ngroups = (j->k + v->group - 1) / v->group;
    v->nibbles = llmq_dtype_bits(j->b.dtype) == 4;
    v->kv = j->k / 32 * 32;
    v->rows_per_task = rows_per_task;
}

/* Where column k of A goes: for 4-bit B each 32 columns are stored evens then odds, the order
 * in which the two nibbles of 16 bytes come out (xg_b32, xg_w32). */
static inline int64_t xg_a_index(const xg_gemv *v, int64_t k)
{
    if (!v->nibbles || k >= v->kv)
        return k;
    const int64_t b = k % 32;
    if (v->t16) /* per 8 k (one dword of 4-bit codes): the 4 evens, then the 4 odds */
        return k - b + b / 8 * 8 + b % 2 * 4 + b % 8 / 2;
    return k - b + (b % 2 == 0 ? b / 2 : 16 + b / 2);
}

/* Rows n .. n + 3 of a task ending at n1 (the last repeated past n1) and their parameter
 * bases; returns how many are real. */
static inline int xg_rows4(const llmq_matmul_job *j, int64_t n, int64_t n1, int64_t nr[4],
                           int64_t bidx[4])
{
    for (int i = 0; i < 4; i++) {
        nr[i] = n + i < n1 ? n + i : n1 - 1;
        bidx[i] = xg_row_base(&j->b.map, nr[i]);
    }
    return (int)(n1 - n < 4 ? n1 - n : 4);
}

/* B's scales and zero points of group gi for the rows whose parameter bases are bidx[0..4). */
static inline void xg_group_params(const llmq_matmul_job *j, const int64_t bidx[4], int64_t gi,
                                   float sb[4], int32_t zb[4])
{
    for (int i = 0; i < 4; i++) {
        sb[i] = j->b.scale[bidx[i] + gi];
        zb[i] = j->b.zero_point[bidx[i] + gi];
    }
}

/* Call fn(arg, task, dtype) with the B dtype as a constant, so that no dtype branch is left in
 * the inner loops. */
#define XG_FOR_DTYPE(fn, arg, task)                                                            \
    do {                                                                                       \
        switch (((const xg_gemv *)(arg))->j->b.dtype) {                                        \
        case LLMQ_DTYPE_S8: fn((arg), (task), LLMQ_DTYPE_S8); break;                           \
        case LLMQ_DTYPE_U8: fn((arg), (task), LLMQ_DTYPE_U8); break;                           \
        case LLMQ_DTYPE_S4: fn((arg), (task), LLMQ_DTYPE_S4); break;                           \
        default: fn((arg), (task), LLMQ_DTYPE_U4); break;                                      \
        }                                                                                      \
    } while (0)

/* 32 codes of a B row from column k (k a multiple of 32) as two vectors of 16 int16: for
 * 8-bit B in order, for 4-bit B the even columns then the odd ones. */
static LLMQ_ALWAYS_INLINE void xg_b32(const uint8_t *row, llmq_dtype dt, int64_t k, __m256i *lo,
                                      __m256i *hi)
{
    switch (dt) {
    case LLMQ_DTYPE_S8:
        *lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + k)));
        *hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + k + 16)));
        break;
    case LLMQ_DTYPE_U8:
        *lo = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + k)));
        *hi = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + k + 16)));
        break;
    default: {
        __m128i e, o;
        x86_nibbles(_mm_loadu_si128((const __m128i *)(row + (size_t)k / 2)), dt == LLMQ_DTYPE_S4,
                    &e, &o);
        if (dt == LLMQ_DTYPE_S4) {
            *lo = _mm256_cvtepi8_epi16(e);
            *hi = _mm256_cvtepi8_epi16(o);
        } else {
            *lo = _mm256_cvtepu8_epi16(e);
            *hi = _mm256_cvtepu8_epi16(o);
        }
        break;
    }
    }
}

/* Four horizontal sums at once: lane i of the result is the sum of the lanes of x[i]. */
static inline __m128i xg_hsum4(const __m256i x[4])
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(x[0], x[1]), _mm256_hadd_epi32(x[2], x[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

#ifdef XG_DPBUSD256
/* ---- integer GEMV with VPDPBUSD (the VNNI tiers) ----
 * A as s8 a_s = a - a_off (a_off 128 for u8 A), B as u8 w = b + w_off (s8 B: b ^ 0x80, s4:
 * the nibble ^ 8). VPDPBUSD gives S = sum w a_s and, against ones, W = sum w, exactly; then
 *   sum (a - zA)(b - zB) = S - (w_off + zB) A - za_s (W - (w_off + zB) L)   modulo 2^32
 * with A = sum a_s, za_s = zA - a_off and L the number of k: the same integers as the vpmaddwd
 * GEMV, with 32 products per instruction instead of 16. */

static void xg_gemv_prep_vnni(void *arg, int64_t m, int worker)
{
    (void)worker;
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t pa = xg_param(&j->a, m, 0);
    const int32_t off = j->a.dtype == LLMQ_DTYPE_U8 ? 128 : 0;
    v->sa[m] = j->a.scale[pa];
    v->zas[m] = j->a.zero_point[pa] - off;
    int8_t *dst = v->a8 + m * v->k;
    for (int64_t k = 0; k < v->k; k++)
        dst[xg_a_index(v, k)] = (int8_t)(xg_code(&j->a, m, k) - off);
    for (int64_t gi = 0; gi < v->ngroups; gi++) { /* over the vector part of each group */
        const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->kv ? k0 + v->group : v->kv;
        int32_t s = 0;
        for (int64_t k = k0; k < k1; k++)
            s += dst[k]; /* a permutation inside 32-aligned blocks: same set per group */
        v->asum[m * v->ngroups + gi] = s;
    }
}

/* 32 codes of a B row from column k (a multiple of 32) as u8 w = b + w_off, in the order of
 * the permuted A (4-bit: evens then odds). */
static LLMQ_ALWAYS_INLINE __m256i xg_w32_u8(const uint8_t *row, llmq_dtype dt, int64_t k)
{
    switch (dt) {
    case LLMQ_DTYPE_S8:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + k)),
                                _mm256_set1_epi8((char)0x80));
    case LLMQ_DTYPE_U8:
        return _mm256_loadu_si256((const __m256i *)(row + k));
    default: {
        __m128i e, o; /* the raw nibbles; s4: nibble ^ 8 = code + 8 */
        x86_nibbles(_mm_loadu_si128((const __m128i *)(row + (size_t)k / 2)), false, &e, &o);
        if (dt == LLMQ_DTYPE_S4) {
            e = _mm_xor_si128(e, _mm_set1_epi8(8));
            o = _mm_xor_si128(o, _mm_set1_epi8(8));
        }
        return _mm256_set_m128i(o, e);
    }
    }
}

#ifdef XG_GEMV_ZMM
/* xg_w32_u8 for k and k + 32 in one zmm. */
static LLMQ_ALWAYS_INLINE __m512i xg_w64_u8(const uint8_t *row, llmq_dtype dt, int64_t k)
{
    switch (dt) {
    case LLMQ_DTYPE_S8:
        return _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + k)),
                                _mm512_set1_epi8((char)0x80));
    case LLMQ_DTYPE_U8:
        return _mm512_loadu_si512((const void *)(row + k));
    default: { /* lanes e0 e1 | o0 o1 of the 32 bytes, reordered to e0 o0 e1 o1 */
        const __m256i x = _mm256_loadu_si256((const __m256i *)(row + (size_t)k / 2));
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256i e = _mm256_and_si256(x, m4), o = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
        if (dt == LLMQ_DTYPE_S4) {
            e = _mm256_xor_si256(e, _mm256_set1_epi8(8));
            o = _mm256_xor_si256(o, _mm256_set1_epi8(8));
        }
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(e), o, 1);
        return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    }
    }
}

static inline __m256i xg_fold512(__m512i x)
{
    return _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
}
#endif

/* acc[r][i] += sum w a_s, ws[i] += sum w over [k0, kv) for A rows m .. m + mm, B rows i < 4. */
static LLMQ_ALWAYS_INLINE void xg_gemv_steps_vnni(const uint8_t *const *brow, llmq_dtype dt,
                                                  const int8_t *a0, const int8_t *a1, int64_t k0,
                                                  int64_t kv, const int mm, __m256i acc[2][4],
                                                  __m256i ws[4])
{
    const __m256i ones = _mm256_set1_epi8(1);
    int64_t k = k0;
#ifdef XG_GEMV_ZMM /* 64 k at a time in zmm, folded into the ymm sums below */
    __m512i zacc[2][4], zws[4];
    for (int i = 0; i < 4; i++)
        zacc[0][i] = zacc[1][i] = zws[i] = _mm512_setzero_si512();
    const __m512i zones = _mm512_set1_epi8(1);
    for (; k + 64 <= kv; k += 64) {
        const __m512i x0 = _mm512_loadu_si512((const void *)(a0 + k));
        const __m512i x1 = mm > 1 ? _mm512_loadu_si512((const void *)(a1 + k)) : x0;
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++) {
            const __m512i w = xg_w64_u8(brow[i], dt, k);
            zws[i] = _mm512_dpbusd_epi32(zws[i], w, zones);
            zacc[0][i] = _mm512_dpbusd_epi32(zacc[0][i], w, x0);
            if (mm > 1)
                zacc[1][i] = _mm512_dpbusd_epi32(zacc[1][i], w, x1);
        }
    }
    for (int i = 0; i < 4; i++) {
        ws[i] = _mm256_add_epi32(ws[i], xg_fold512(zws[i]));
        acc[0][i] = _mm256_add_epi32(acc[0][i], xg_fold512(zacc[0][i]));
        if (mm > 1)
            acc[1][i] = _mm256_add_epi32(acc[1][i], xg_fold512(zacc[1][i]));
    }
#endif
    for (; k < kv; k += 32) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(a0 + k));
        const __m256i x1 = mm > 1 ? _mm256_loadu_si256((const __m256i *)(a1 + k)) : x0;
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++) {
            const __m256i w = xg_w32_u8(brow[i], dt, k);
            ws[i] = XG_DPBUSD256(ws[i], w, ones);
            acc[0][i] = XG_DPBUSD256(acc[0][i], w, x0);
            if (mm > 1)
                acc[1][i] = XG_DPBUSD256(acc[1][i], w, x1);
        }
    }
}

/* xg_gemv_block's result with VPDPBUSD. */
static LLMQ_ALWAYS_INLINE void xg_gemv_block_vnni(const xg_gemv *v, const int64_t *nr,
                                                  const int32_t *zb, int64_t m, int mm, int64_t gi,
                                                  int64_t k0, int64_t k1, __m128i part[2],
                                                  llmq_dtype dt)
{
    const llmq_matmul_job *j = v->j;
    const uint8_t *brow[4];
    for (int i = 0; i < 4; i++)
        brow[i] = (const uint8_t *)j->b.data + (size_t)nr[i] * j->b.stride;
    __m256i acc[2][4], ws[4];
    for (int i = 0; i < 4; i++)
        acc[0][i] = acc[1][i] = ws[i] = _mm256_setzero_si256();
    const int64_t kv = k1 < v->kv ? k1 : v->kv;
    const int8_t *a0 = v->a8 + m * v->k, *a1 = a0 + (mm > 1 ? v->k : 0);
    if (mm == 1) /* two copies, the row count a constant in each */
        xg_gemv_steps_vnni(brow, dt, a0, a1, k0, kv, 1, acc, ws);
    else
        xg_gemv_steps_vnni(brow, dt, a0, a1, k0, kv, 2, acc, ws);
    const int32_t w_off = dt == LLMQ_DTYPE_S8 ? 128 : dt == LLMQ_DTYPE_S4 ? 8 : 0;
    const int64_t k = kv > k0 ? kv : k0; /* the tail starts here */
    const __m128i zbw = _mm_add_epi32(_mm_loadu_si128((const __m128i *)zb), _mm_set1_epi32(w_off));
    const __m128i wl = _mm_sub_epi32(xg_hsum4(ws), _mm_mullo_epi32(zbw, _mm_set1_epi32((int32_t)(k - k0))));
    for (int r = 0; r < mm; r++) {
        const int32_t za = v->zas[m + r];
        __m128i p = _mm_sub_epi32(
            _mm_sub_epi32(xg_hsum4(acc[r]),
                          _mm_mullo_epi32(zbw, _mm_set1_epi32(v->asum[(m + r) * v->ngroups + gi]))),
            _mm_mullo_epi32(_mm_set1_epi32(za), wl));
        if (k < k1) { /* the tail past the last 32, in natural order */
            const int8_t *ar = r ? a1 : a0;
            uint32_t t[4] = {0, 0, 0, 0};
            for (int i = 0; i < 4; i++)
                for (int64_t kk = k; kk < k1; kk++)
                    t[i] += (uint32_t)((ar[kk] - za) * (xg_code(&j->b, nr[i], kk) - zb[i]));
            p = _mm_add_epi32(p, _mm_loadu_si128((const __m128i *)t));
        }
        part[r] = p;
    }
}

#define XG_GEMV_BLOCK xg_gemv_block_vnni
#define XG_GEMV_PREP xg_gemv_prep_vnni
#else
static void xg_gemv_prep(void *arg, int64_t m, int worker)
{
    (void)worker;
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t pa = xg_param(&j->a, m, 0);
    const int32_t za = j->a.zero_point[pa];
    v->sa[m] = j->a.scale[pa];
    int16_t *dst = v->a16 + m * v->k;
    for (int64_t k = 0; k < v->k; k++)
        dst[xg_a_index(v, k)] = (int16_t)(xg_code(&j->a, m, k) - za);
    for (int64_t gi = 0; gi < v->ngroups; gi++) {
        const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
        int32_t s = 0;
        for (int64_t k = k0; k < k1; k++)
            s += dst[k]; /* a permutation inside 32-aligned blocks: same set per group */
        v->asum[m * v->ngroups + gi] = s;
    }
}

/* acc[r][i] += A' row r x B row i over [k0, kv) in steps of 32 (kv - k0 a multiple of 32). */
static LLMQ_ALWAYS_INLINE void xg_gemv_steps(const uint8_t *const *brow, llmq_dtype dt,
                                             const int16_t *a0, const int16_t *a1, int64_t k0,
                                             int64_t kv, const int mm, __m256i acc[2][4])
{
    for (int64_t k = k0; k < kv; k += 32) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(a0 + k));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(a0 + k + 16));
        __m256i y0 = x0, y1 = x1;
        if (mm > 1) {
            y0 = _mm256_loadu_si256((const __m256i *)(a1 + k));
            y1 = _mm256_loadu_si256((const __m256i *)(a1 + k + 16));
        }
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++) {
            __m256i lo, hi;
            xg_b32(brow[i], dt, k, &lo, &hi);
            acc[0][i] = _mm256_add_epi32(acc[0][i], _mm256_add_epi32(_mm256_madd_epi16(lo, x0),
                                                                     _mm256_madd_epi16(hi, x1)));
            if (mm > 1)
                acc[1][i] = _mm256_add_epi32(acc[1][i],
                                             _mm256_add_epi32(_mm256_madd_epi16(lo, y0),
                                                              _mm256_madd_epi16(hi, y1)));
        }
    }
}

/* B rows nr[0..4) (zero points zb) against A rows m, m + 1 (mm = 1 or 2): the exact sums of
 * (a - zA)(b - zB) over columns [k0, k1) of group gi, in part[row of A] (the 4 B rows in 4
 * lanes, kept in registers). */
static LLMQ_ALWAYS_INLINE void xg_gemv_block(const xg_gemv *v, const int64_t *nr, const int32_t *zb,
                                             int64_t m, int mm, int64_t gi, int64_t k0,
                                             int64_t k1, __m128i part[2], llmq_dtype dt)
{
    const llmq_matmul_job *j = v->j;
    const uint8_t *brow[4];
    for (int i = 0; i < 4; i++)
        brow[i] = (const uint8_t *)j->b.data + (size_t)nr[i] * j->b.stride;
    __m256i acc[2][4];
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 4; i++)
            acc[r][i] = _mm256_setzero_si256();
    const int64_t kv = k1 < v->kv ? k1 : v->kv;
    const int16_t *a0 = v->a16 + m * v->k, *a1 = a0 + (mm > 1 ? v->k : 0);
    const int64_t k = kv > k0 ? kv : k0; /* the tail starts here (kv - k0 is a multiple of 32) */
    if (mm == 1) /* two copies, the row count a constant in each */
        xg_gemv_steps(brow, dt, a0, a1, k0, kv, 1, acc);
    else
        xg_gemv_steps(brow, dt, a0, a1, k0, kv, 2, acc);
    for (int r = 0; r < mm; r++) {
        __m128i sum = xg_hsum4(acc[r]);
        if (k < k1) { /* the tail past the last 32, in natural order */
            const int16_t *ar = r ? a1 : a0;
            uint32_t t[4] = {0, 0, 0, 0};
            for (int i = 0; i < 4; i++)
                for (int64_t kk = k; kk < k1; kk++)
                    t[i] += (uint32_t)((int32_t)ar[kk] * xg_code(&j->b, nr[i], kk));
            sum = _mm_add_epi32(sum, _mm_loadu_si128((const __m128i *)t));
        }
        /* - zB * sum A' (modulo 2^32: exact) */
        part[r] = _mm_sub_epi32(sum, _mm_mullo_epi32(_mm_loadu_si128((const __m128i *)zb),
                                                     _mm_set1_epi32(v->asum[(m + r) * v->ngroups + gi])));
    }
}

#define XG_GEMV_BLOCK xg_gemv_block
#define XG_GEMV_PREP xg_gemv_prep
#endif

/* One task of the GEMV, for B of dtype dt (a constant in each caller: no dtype branch is left
 * in the inner loops). */
static LLMQ_ALWAYS_INLINE void xg_gemv_task_dt(void *arg, int64_t task, llmq_dtype dt)
{
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t n0 = task * v->rows_per_task;
    const int64_t n1 = n0 + v->rows_per_task < v->n ? n0 + v->rows_per_task : v->n;
    for (int64_t n = n0; n < n1; n += 4) {
        int64_t nr[4], bidx[4];
        const int cnt = xg_rows4(j, n, n1, nr, bidx);
        float bias[8] = {0};
        for (int i = 0; i < 8; i++)
            bias[i] = j->bias != NULL ? j->bias[nr[i < 4 ? i : 0]] : 0.0f;
        for (int64_t m = 0; m < v->m; m += 2) {
            const int mm = v->m - m < 2 ? 1 : 2;
            __m128 facc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
            __m128i exact[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
            float sb[8] = {0};
            for (int64_t gi = 0; gi < v->ngroups; gi++) {
                const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
                int32_t zb[4];
                xg_group_params(j, bidx, gi, sb, zb);
                __m128i part[2];
                XG_GEMV_BLOCK(v, nr, zb, m, mm, gi, k0, k1, part, dt);
                for (int r = 0; r < mm; r++) {
                    const __m128i p = part[r];
                    if (!v->grouped) {
                        exact[r] = p;
                        continue;
                    }
                    const __m128 add = _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(p),
                                                             _mm_set1_ps(v->sa[m + r])),
                                                  _mm_loadu_ps(sb));
                    facc[r] = _mm_add_ps(facc[r], add); /* the first add is to 0.0f */
                }
            }
            for (int r = 0; r < mm; r++) {
                if (v->grouped)
                    xg_epilogue_float(j, m + r, n, cnt,
                                      _mm256_insertf128_ps(_mm256_setzero_ps(), facc[r], 0), bias);
                else
                    xg_epilogue_exact(j, m + r, n, cnt,
                                      _mm256_inserti128_si256(_mm256_setzero_si256(), exact[r], 0),
                                      v->sa[m + r], sb, bias);
            }
        }
    }
}

#ifdef XG_GEMV_ZMM
/* ---- 4-bit grouped GEMV, 16 B rows at once (the AVX-512 tier) ----
 * Each 32 k of 16 B rows (16 bytes a row) are transposed in registers so that dword lane j
 * holds row j's codes: the two nibbles of each byte give 4 k per lane for VPDPBUSD against a
 * broadcast of 4 activations (A stored in the matching order, xg_a_index). The group sums then
 * lie one per lane, rows in lanes: no horizontal sum per group, and the zero-point correction
 * and the float epilogue run on 16 rows at once, in the reference's order. Used when every
 * row of A has zA - a_off = 0 (s8 A with zero point 0: sum w is then not needed). */

/* 32 k of rows brow[0..16) from byte offset off as the even-k and odd-k codes, u8 w = code +
 * w_off, 4 per lane: e[d] / o[d] hold k = 8d + 0, 2, 4, 6 / 8d + 1, 3, 5, 7. */
static LLMQ_ALWAYS_INLINE void xg_t16_load(const uint8_t *const *brow, size_t off, bool sgn,
                                           __m512i e[4], __m512i o[4])
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i t[4];
    for (int q = 0; q < 4; q++) { /* rows 4q .. 4q + 3, then lane d = their dword d */
        __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(brow[4 * q] + off)));
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(brow[4 * q + 1] + off)), 1);
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(brow[4 * q + 2] + off)), 2);
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(brow[4 * q + 3] + off)), 3);
        t[q] = _mm512_permutexvar_epi32(idx, z);
    }
    const __m512i u0 = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i u1 = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i u2 = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i u3 = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i d[4] = {_mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1)),
                          _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1))};
    const __m512i m4 = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8(sgn ? 8 : 0);
    for (int i = 0; i < 4; i++) {
        e[i] = _mm512_xor_si512(_mm512_and_si512(d[i], m4), flip);
        o[i] = _mm512_xor_si512(_mm512_and_si512(_mm512_srli_epi16(d[i], 4), m4), flip);
    }
}

/* Rows brow[0..16) (their parameters transposed in sbt / zbt) against the mm rows of A from
 * row m: the float sums of every group, in facc[r] (16 rows in the lanes). */
static LLMQ_ALWAYS_INLINE void xg_t16_rows(const xg_gemv *v, const uint8_t *const *brow,
                                           const int64_t *nr, const float *sbt,
                                           const int32_t *zbt, int32_t w_off, bool sgn, int64_t m,
                                           const int mm, __m512 facc[4])
{
    const llmq_matmul_job *j = v->j;
    for (int r = 0; r < mm; r++)
        facc[r] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < v->ngroups; gi++) {
        const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
        const int64_t kv = k1 < v->kv ? k1 : v->kv;
        __m512i acc[4];
        for (int r = 0; r < mm; r++)
            acc[r] = _mm512_setzero_si512();
        for (int64_t k = k0; k < kv; k += 32) {
            __m512i e[4], o[4];
            if (k % 128 == 0) /* 16 short streams: ask for each row's next-but-one line */
                for (int i = 0; i < 16; i++)
                    _mm_prefetch((const char *)brow[i] + k / 2 + 128, _MM_HINT_T0);
            xg_t16_load(brow, (size_t)k / 2, sgn, e, o);
            LLMQ_UNROLL
            for (int r = 0; r < mm; r++) {
                const int8_t *a = v->a8 + (m + r) * v->k + k;
                for (int d = 0; d < 4; d++) {
                    int32_t ae, ao;
                    memcpy(&ae, a + 8 * d, 4);
                    memcpy(&ao, a + 8 * d + 4, 4);
                    acc[r] = _mm512_dpbusd_epi32(acc[r], e[d], _mm512_set1_epi32(ae));
                    acc[r] = _mm512_dpbusd_epi32(acc[r], o[d], _mm512_set1_epi32(ao));
                }
            }
        }
        const __m512i zbw = _mm512_loadu_si512((const void *)(zbt + gi * 16));
        const __m512 sb = _mm512_loadu_ps(sbt + gi * 16);
        for (int r = 0; r < mm; r++) {
            /* - (zB + w_off) sum a_s, modulo 2^32: exact */
            __m512i p = _mm512_sub_epi32(
                acc[r], _mm512_mullo_epi32(zbw, _mm512_set1_epi32(v->asum[(m + r) * v->ngroups + gi])));
            if (kv < k1) { /* the tail past the last 32, in natural order (zA = a_off) */
                const int8_t *a = v->a8 + (m + r) * v->k;
                int32_t t[16];
                for (int i = 0; i < 16; i++) {
                    uint32_t sum = 0;
                    for (int64_t kk = kv; kk < k1; kk++)
                        sum += (uint32_t)(a[kk] * (xg_code(&j->b, nr[i], kk) - (zbt[gi * 16 + i] - w_off)));
                    t[i] = (int32_t)sum;
                }
                p = _mm512_add_epi32(p, _mm512_loadu_si512((const void *)t));
            }
            /* acc += (float)p * sA * sB, in group order from 0.0f */
            facc[r] = _mm512_add_ps(facc[r], _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p),
                                                                         _mm512_set1_ps(v->sa[m + r])),
                                                           sb));
        }
    }
}

static LLMQ_ALWAYS_INLINE void xg_gemv_t16_task_dt(void *arg, int64_t task, int worker,
                                                   llmq_dtype dt)
{
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t n0 = task * v->rows_per_task;
    const int64_t n1 = n0 + v->rows_per_task < v->n ? n0 + v->rows_per_task : v->n;
    const bool sgn = dt == LLMQ_DTYPE_S4;
    const int32_t w_off = sgn ? 8 : 0;
    float *sbt = v->pwork + (size_t)worker * 32 * (size_t)v->ngroups;
    int32_t *zbt = (int32_t *)(sbt + 16 * v->ngroups);
    for (int64_t n = n0; n < n1; n += 16) {
        const int cnt = (int)(n1 - n < 16 ? n1 - n : 16);
        const uint8_t *brow[16];
        int64_t nr[16];
        for (int i = 0; i < 16; i++) { /* rows past n1 repeat the last one, never stored */
            nr[i] = n + (i < cnt ? i : cnt - 1);
            brow[i] = (const uint8_t *)j->b.data + (size_t)nr[i] * j->b.stride;
            const int64_t base = xg_row_base(&j->b.map, nr[i]);
            for (int64_t gi = 0; gi < v->ngroups; gi++) {
                sbt[gi * 16 + i] = j->b.scale[base + gi];
                zbt[gi * 16 + i] = j->b.zero_point[base + gi] + w_off;
            }
        }
        float bias[24] = {0};
        for (int i = 0; i < cnt && j->bias != NULL; i++)
            bias[i] = j->bias[n + i];
        for (int64_t m = 0; m < v->m; m += 4) {
            const int mm = v->m - m < 4 ? (int)(v->m - m) : 4;
            __m512 facc[4];
            switch (mm) { /* the row count a constant in each copy */
            case 1: xg_t16_rows(v, brow, nr, sbt, zbt, w_off, sgn, m, 1, facc); break;
            case 2: xg_t16_rows(v, brow, nr, sbt, zbt, w_off, sgn, m, 2, facc); break;
            case 3: xg_t16_rows(v, brow, nr, sbt, zbt, w_off, sgn, m, 3, facc); break;
            default: xg_t16_rows(v, brow, nr, sbt, zbt, w_off, sgn, m, 4, facc); break;
            }
            for (int r = 0; r < mm; r++) {
                xg_epilogue_float(j, m + r, n, cnt < 8 ? cnt : 8, _mm512_castps512_ps256(facc[r]), bias);
                if (cnt > 8)
                    xg_epilogue_float(j, m + r, n + 8, cnt - 8,
                                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(facc[r]), 1)),
                                      bias + 8);
            }
        }
    }
}

static void xg_gemv_t16_task(void *arg, int64_t task, int worker)
{
    if (((const xg_gemv *)arg)->j->b.dtype == LLMQ_DTYPE_S4)
        xg_gemv_t16_task_dt(arg, task, worker, LLMQ_DTYPE_S4);
    else
        xg_gemv_t16_task_dt(arg, task, worker, LLMQ_DTYPE_U4);
}
#endif

static void xg_gemv_task(void *arg, int64_t task, int worker)
{
    (void)worker;
    XG_FOR_DTYPE(xg_gemv_task_dt, arg, task);
}

static llmq_status xg_int_gemv(llmq_backend *be, const llmq_matmul_job *j)
{
    llmq_context *ctx = be->ctx;
    xg_gemv v;
    xg_gemv_init(&v, j, 64);
#ifdef XG_DPBUSD256
    const size_t a_elem = 1;
#else
    const size_t a_elem = 2;
#endif
    const int64_t tasks = (v.n + v.rows_per_task - 1) / v.rows_per_task;
#ifdef XG_GEMV_ZMM
    /* 4-bit groups with A zero points at a_off (s8 A, zero point 0): 16 rows per lane set */
    bool zero_za = true;
    for (int64_t m = 0; m < v.m && zero_za; m++) {
        const int64_t pa = xg_param(&j->a, m, 0);
        zero_za = j->a.zero_point[pa] == (j->a.dtype == LLMQ_DTYPE_U8 ? 128 : 0);
    }
    v.t16 = v.nibbles && v.grouped && zero_za;
#endif
    const size_t a_bytes = (((size_t)v.m * (size_t)v.k * a_elem) + 63) & ~(size_t)63;
    const size_t p_bytes = (((size_t)v.m * (size_t)(v.ngroups + 2) * 4) + 63) & ~(size_t)63;
    const size_t t_bytes = v.t16 ? (size_t)llmq_parallel_workers(ctx, tasks) * 128 * (size_t)v.ngroups : 0;
    const size_t total = a_bytes + p_bytes + t_bytes;
    char *ws = llmq_scratch(ctx, total);
    if (ws == NULL)
        return xg_oom(be, total);
    v.a16 = (int16_t *)ws;
    v.a8 = (int8_t *)ws;
    v.asum = (int32_t *)(ws + a_bytes);
    v.sa = (float *)(v.asum + v.m * v.ngroups);
    v.zas = (int32_t *)(v.sa + v.m);
    v.pwork = (float *)(ws + a_bytes + p_bytes);
    xg_for(ctx, j, v.m, XG_GEMV_PREP, &v);
#ifdef XG_GEMV_ZMM
    if (v.t16) {
        xg_for(ctx, j, tasks, xg_gemv_t16_task, &v);
        return LLMQ_OK;
    }
#endif
    xg_for(ctx, j, tasks, xg_gemv_task, &v);
    return LLMQ_OK;
}

/* ---- weight-only: float A x 8/4/2-bit B [N, K] (the xg_gemv context, a32) ---- */

static void xg_wo_prep(void *arg, int64_t m, int worker)
{
    (void)worker;
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const void *row = (const uint8_t *)j->a.data + (size_t)m * j->a.stride;
    float *dst = v->a32 + m * v->k;
    for (int64_t k = 0; k < v->k; k++)
        dst[xg_a_index(v, k)] = x86_load1(row, j->a.dtype, k);
}

/* 32 weights of a B row from column k (a multiple of 32) minus zB, as 4 x 8 floats (4-bit:
 * evens then odds, as a32; 8- and 2-bit: in order). Exact: small integers. */
static LLMQ_ALWAYS_INLINE void xg_w32(const uint8_t *row, llmq_dtype dt, int64_t k, int32_t zb,
                                      __m256 w[4])
{
    if (dt == LLMQ_DTYPE_S8 || dt == LLMQ_DTYPE_U8) { /* code - zB needs more than 8 bits */
        const __m256i z = _mm256_set1_epi32(zb);
        for (int q = 0; q < 4; q++) {
            const __m128i b = _mm_loadl_epi64((const __m128i *)(row + k + q * 8));
            const __m256i c = dt == LLMQ_DTYPE_S8 ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
            w[q] = _mm256_cvtepi32_ps(_mm256_sub_epi32(c, z));
        }
        return;
    }
    if (dt == LLMQ_DTYPE_S2 || dt == LLMQ_DTYPE_U2) { /* 8 codes per 16 bits, low bits first */
        const uint8_t *p = row + (size_t)k / 4;
        const __m256i shift = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        const __m256i m2 = _mm256_set1_epi32(3), z = _mm256_set1_epi32(zb);
        for (int q = 0; q < 4; q++) {
            const int32_t bits = p[2 * q] | (int32_t)p[2 * q + 1] << 8;
            __m256i c = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(bits), shift), m2);
            if (dt == LLMQ_DTYPE_S2) /* sign-extend 2 bits */
                c = _mm256_sub_epi32(_mm256_xor_si256(c, _mm256_set1_epi32(2)),
                                     _mm256_set1_epi32(2));
            w[q] = _mm256_cvtepi32_ps(_mm256_sub_epi32(c, z));
        }
        return;
    }
    /* 4-bit: code - zB is in [-15, 15], so s8 arithmetic is exact */
    __m128i c0, c1;
    x86_nibbles(_mm_loadu_si128((const __m128i *)(row + (size_t)k / 2)), dt == LLMQ_DTYPE_S4, &c0,
                &c1);
    const __m128i z = _mm_set1_epi8((char)zb);
    c0 = _mm_sub_epi8(c0, z);
    c1 = _mm_sub_epi8(c1, z);
    w[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c0));
    w[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c0, 8)));
    w[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c1));
    w[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c1, 8)));
}

/* Per-group partial sums of A rows m, m + 1 (mm = 1 or 2) against 4 B rows over the vector
 * part [k0, kv) of one group. The weights come unpacked in registers (wbuf NULL) or from wbuf,
 * where the group's weights were unpacked once for all rows of A: the same floats either way,
 * in the same order, so both give the same bits. */
static LLMQ_ALWAYS_INLINE void xg_wo_group(const xg_gemv *v, const uint8_t *const *brow,
                                           const int32_t *zb, const float *a0, const float *a1,
                                           int mm, int64_t k0, int64_t kv, const float *wbuf,
                                           __m256 part[2][4], llmq_dtype dt)
{
    (void)v;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 4; i++)
            part[r][i] = _mm256_setzero_ps();
    const int64_t len = kv - k0;
    for (int64_t k = k0; k < kv; k += 32) {
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++) {
            __m256 w[4];
            if (wbuf == NULL) {
                xg_w32(brow[i], dt, k, zb[i], w);
            } else {
                for (int q = 0; q < 4; q++)
                    w[q] = _mm256_loadu_ps(wbuf + i * len + (k - k0) + q * 8);
            }
            LLMQ_UNROLL
            for (int q = 0; q < 4; q++)
                part[0][i] = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + k + q * 8), w[q], part[0][i]);
            if (mm > 1) {
                LLMQ_UNROLL
                for (int q = 0; q < 4; q++)
                    part[1][i] = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + k + q * 8), w[q], part[1][i]);
            }
        }
    }
}

static LLMQ_ALWAYS_INLINE void xg_wo_task_dt(void *arg, int64_t task, int worker, llmq_dtype dt)
{
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t n0 = task * v->rows_per_task;
    const int64_t n1 = n0 + v->rows_per_task < v->n ? n0 + v->rows_per_task : v->n;
    /* more than 2 rows of A: each group's weights are unpacked once into wbuf (L1 / L2) */
    float *wbuf = v->m > 2 ? v->wo_work + (size_t)worker * v->wo_worker_floats : NULL;
    __m128 *facc = (__m128 *)(void *)(v->wo_work + (size_t)worker * v->wo_worker_floats +
                                      (size_t)4 * (size_t)v->group);
    for (int64_t n = n0; n < n1; n += 4) {
        int64_t nr[4], bidx[4];
        const int cnt = xg_rows4(j, n, n1, nr, bidx);
        const uint8_t *brow[4];
        for (int i = 0; i < 4; i++)
            brow[i] = (const uint8_t *)j->b.data + (size_t)nr[i] * j->b.stride;
        for (int64_t m = 0; m < v->m; m++)
            facc[m] = _mm_setzero_ps();
        for (int64_t gi = 0; gi < v->ngroups; gi++) {
            const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
            const int64_t kv = k1 < v->kv ? k1 : v->kv;
            float sb[4];
            int32_t zb[4];
            xg_group_params(j, bidx, gi, sb, zb);
            if (wbuf != NULL)
                for (int i = 0; i < 4; i++)
                    for (int64_t k = k0; k < kv; k += 32) {
                        __m256 w[4];
                        xg_w32(brow[i], dt, k, zb[i], w);
                        for (int q = 0; q < 4; q++)
                            _mm256_storeu_ps(wbuf + i * (kv - k0) + (k - k0) + q * 8, w[q]);
                    }
            for (int64_t m = 0; m < v->m; m += 2) {
                const int mm = v->m - m < 2 ? 1 : 2;
                const float *a0 = v->a32 + m * v->k, *a1 = a0 + (mm > 1 ? v->k : 0);
                __m256 part[2][4];
                xg_wo_group(v, brow, zb, a0, a1, mm, k0, kv, wbuf, part, dt);
                for (int r = 0; r < mm; r++) {
                    const float *ar = r ? a1 : a0;
                    float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    for (int i = 0; i < 4; i++)
                        for (int64_t kk = kv; kk < k1; kk++)
                            tail[i] += ar[kk] * (float)(xg_code(&j->b, nr[i], kk) - zb[i]);
                    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(part[r][0], part[r][1]),
                                                    _mm256_hadd_ps(part[r][2], part[r][3]));
                    const __m128 s4 = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(h),
                                                            _mm256_extractf128_ps(h, 1)),
                                                 _mm_loadu_ps(tail));
                    facc[m + r] = _mm_add_ps(facc[m + r], _mm_mul_ps(s4, _mm_loadu_ps(sb)));
                }
            }
        }
        for (int64_t m = 0; m < v->m; m++) {
            void *crow = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
            float out[4];
            _mm_storeu_ps(out, facc[m]);
            for (int i = 0; i < cnt; i++)
                x86_store1(crow, j->c.dtype, n + i,
                           out[i] + (j->bias != NULL ? j->bias[n + i] : 0.0f));
        }
    }
}

#ifdef XG_WO_ZMM
/* ---- weight-only with 512-bit vectors (the AVX-512 tier) ----
 * The same products as xg_wo_task_dt, 16 lanes wide, with two accumulators per pair of rows;
 * each group's partial sums are scaled lane by lane into per-lane totals (one FMA per group)
 * and reduced once at the end, instead of a horizontal sum per group: another order of the
 * float additions, within the same bound (docs/gemm.md). */

/* xg_w32 as 2 x 16 floats: in a32's order, code - zB, exact. */
static LLMQ_ALWAYS_INLINE void xg_w32_zmm(const uint8_t *row, llmq_dtype dt, int64_t k, int32_t zb,
                                          __m512 w[2])
{
    if (dt == LLMQ_DTYPE_S8 || dt == LLMQ_DTYPE_U8) {
        const __m512i z = _mm512_set1_epi32(zb);
        for (int q = 0; q < 2; q++) {
            const __m128i b = _mm_loadu_si128((const __m128i *)(row + k + q * 16));
            const __m512i c = dt == LLMQ_DTYPE_S8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
            w[q] = _mm512_cvtepi32_ps(_mm512_sub_epi32(c, z));
        }
        return;
    }
    if (dt == LLMQ_DTYPE_S2 || dt == LLMQ_DTYPE_U2) {
        __m256 h[4];
        xg_w32(row, dt, k, zb, h);
        for (int q = 0; q < 2; q++)
            w[q] = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(h[2 * q])),
                                                       _mm256_castps_pd(h[2 * q + 1]), 1));
        return;
    }
    __m128i c0, c1;
    x86_nibbles(_mm_loadu_si128((const __m128i *)(row + (size_t)k / 2)), dt == LLMQ_DTYPE_S4, &c0,
                &c1);
    const __m128i z = _mm_set1_epi8((char)zb); /* code - zB is in [-15, 15] */
    w[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_sub_epi8(c0, z)));
    w[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_sub_epi8(c1, z)));
}

/* Partial sums of A rows m, m + 1 (mm = 1 or 2) against 4 B rows over [k0, kv) of one group,
 * 16 lanes each; weights from registers or from wbuf, as xg_wo_group. */
static LLMQ_ALWAYS_INLINE void xg_wo_group_zmm(const uint8_t *const *brow, const int32_t *zb,
                                               const float *a0, const float *a1, const int mm,
                                               int64_t k0, int64_t kv, const float *wbuf,
                                               __m512 part[2][4], llmq_dtype dt)
{
    __m512 odd[2][4];
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 4; i++)
            part[r][i] = odd[r][i] = _mm512_setzero_ps();
    const int64_t len = kv - k0;
    for (int64_t k = k0; k < kv; k += 32) {
        const __m512 x0 = _mm512_loadu_ps(a0 + k), x1 = _mm512_loadu_ps(a0 + k + 16);
        __m512 y0 = x0, y1 = x1;
        if (mm > 1) {
            y0 = _mm512_loadu_ps(a1 + k);
            y1 = _mm512_loadu_ps(a1 + k + 16);
        }
        LLMQ_UNROLL
        for (int i = 0; i < 4; i++) {
            __m512 w[2];
            if (wbuf == NULL) {
                xg_w32_zmm(brow[i], dt, k, zb[i], w);
            } else {
                w[0] = _mm512_loadu_ps(wbuf + i * len + (k - k0));
                w[1] = _mm512_loadu_ps(wbuf + i * len + (k - k0) + 16);
            }
            part[0][i] = _mm512_fmadd_ps(x0, w[0], part[0][i]);
            odd[0][i] = _mm512_fmadd_ps(x1, w[1], odd[0][i]);
            if (mm > 1) {
                part[1][i] = _mm512_fmadd_ps(y0, w[0], part[1][i]);
                odd[1][i] = _mm512_fmadd_ps(y1, w[1], odd[1][i]);
            }
        }
    }
    for (int r = 0; r < mm; r++)
        for (int i = 0; i < 4; i++)
            part[r][i] = _mm512_add_ps(part[r][i], odd[r][i]);
}

#define XG_WO_ROW_FLOATS 80 /* per row of A: 4 x 16 lane totals, 4 tail totals, padding */

/* t[i] += sb[i] * the sum of A row ar x B row nr[i] over [kv, k1), past the last 32 k (in
 * natural order). */
static void xg_wo_tail(const llmq_matmul_job *j, const float *ar, const int64_t *nr,
                       const int32_t *zb, const float *sb, int64_t kv, int64_t k1, float *t)
{
    for (int i = 0; i < 4; i++) {
        float tail = 0.0f;
        for (int64_t kk = kv; kk < k1; kk++)
            tail += ar[kk] * (float)(xg_code(&j->b, nr[i], kk) - zb[i]);
        t[i] += tail * sb[i];
    }
}

/* All groups of 4 B rows against the mm (1 or 2) rows of A, the lane totals in registers;
 * written to tot (XG_WO_ROW_FLOATS per row) for the common final reduction. */
static LLMQ_ALWAYS_INLINE void xg_wo_rows_zmm(const xg_gemv *v, const uint8_t *const *brow,
                                              const int64_t *nr, const int64_t *bidx, const int mm,
                                              float *tot, llmq_dtype dt)
{
    const llmq_matmul_job *j = v->j;
    const float *a0 = v->a32, *a1 = a0 + (mm > 1 ? v->k : 0);
    __m512 acc[2][4];
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 4; i++)
            acc[r][i] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < v->ngroups; gi++) {
        const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
        const int64_t kv = k1 < v->kv ? k1 : v->kv;
        float sb[4];
        int32_t zb[4];
        xg_group_params(j, bidx, gi, sb, zb);
        __m512 part[2][4];
        xg_wo_group_zmm(brow, zb, a0, a1, mm, k0, kv, NULL, part, dt);
        for (int r = 0; r < mm; r++) {
            for (int i = 0; i < 4; i++)
                acc[r][i] = _mm512_fmadd_ps(part[r][i], _mm512_set1_ps(sb[i]), acc[r][i]);
            if (kv < k1)
                xg_wo_tail(j, r ? a1 : a0, nr, zb, sb, kv, k1, tot + r * XG_WO_ROW_FLOATS + 64);
        }
    }
    for (int r = 0; r < mm; r++)
        for (int i = 0; i < 4; i++)
            _mm512_storeu_ps(tot + r * XG_WO_ROW_FLOATS + i * 16, acc[r][i]);
}

/* All groups of 4 B rows against every row of A (more than 2), each group's weights unpacked
 * once into wbuf; lane totals in tot. */
static LLMQ_ALWAYS_INLINE void xg_wo_groups_zmm(const xg_gemv *v, const uint8_t *const *brow,
                                                const int64_t *nr, const int64_t *bidx,
                                                float *wbuf, float *tot, llmq_dtype dt)
{
    const llmq_matmul_job *j = v->j;
    for (int64_t gi = 0; gi < v->ngroups; gi++) {
        const int64_t k0 = gi * v->group, k1 = k0 + v->group < v->k ? k0 + v->group : v->k;
        const int64_t kv = k1 < v->kv ? k1 : v->kv;
        float sb[4];
        int32_t zb[4];
        xg_group_params(j, bidx, gi, sb, zb);
        for (int i = 0; i < 4; i++)
            for (int64_t k = k0; k < kv; k += 32) {
                __m512 w[2];
                xg_w32_zmm(brow[i], dt, k, zb[i], w);
                _mm512_storeu_ps(wbuf + i * (kv - k0) + (k - k0), w[0]);
                _mm512_storeu_ps(wbuf + i * (kv - k0) + (k - k0) + 16, w[1]);
            }
        for (int64_t m = 0; m < v->m; m += 2) {
            const int mm = v->m - m < 2 ? 1 : 2;
            const float *a0 = v->a32 + m * v->k, *a1 = a0 + (mm > 1 ? v->k : 0);
            __m512 part[2][4];
            if (mm == 1) /* two copies, the row count a constant in each */
                xg_wo_group_zmm(brow, zb, a0, a1, 1, k0, kv, wbuf, part, dt);
            else
                xg_wo_group_zmm(brow, zb, a0, a1, 2, k0, kv, wbuf, part, dt);
            for (int r = 0; r < mm; r++) {
                float *t = tot + (m + r) * XG_WO_ROW_FLOATS;
                for (int i = 0; i < 4; i++)
                    _mm512_storeu_ps(t + i * 16, _mm512_fmadd_ps(part[r][i], _mm512_set1_ps(sb[i]),
                                                                 _mm512_loadu_ps(t + i * 16)));
                if (kv < k1)
                    xg_wo_tail(j, r ? a1 : a0, nr, zb, sb, kv, k1, t + 64);
            }
        }
    }
}

static LLMQ_ALWAYS_INLINE void xg_wo_task_zmm(void *arg, int64_t task, int worker, llmq_dtype dt)
{
    const xg_gemv *v = arg;
    const llmq_matmul_job *j = v->j;
    const int64_t n0 = task * v->rows_per_task;
    const int64_t n1 = n0 + v->rows_per_task < v->n ? n0 + v->rows_per_task : v->n;
    float *wbuf = v->m > 2 ? v->wo_work + (size_t)worker * v->wo_worker_floats : NULL;
    float *tot = v->wo_work + (size_t)worker * v->wo_worker_floats + (size_t)4 * (size_t)v->group;
    for (int64_t n = n0; n < n1; n += 4) {
        int64_t nr[4], bidx[4];
        const int cnt = xg_rows4(j, n, n1, nr, bidx);
        const uint8_t *brow[4];
        for (int i = 0; i < 4; i++)
            brow[i] = (const uint8_t *)j->b.data + (size_t)nr[i] * j->b.stride;
        memset(tot, 0, sizeof(float) * XG_WO_ROW_FLOATS * (size_t)v->m);
        if (wbuf == NULL) { /* decoding: the totals stay in registers */
            if (v->m == 1)
                xg_wo_rows_zmm(v, brow, nr, bidx, 1, tot, dt);
            else
                xg_wo_rows_zmm(v, brow, nr, bidx, 2, tot, dt);
        } else {
            xg_wo_groups_zmm(v, brow, nr, bidx, wbuf, tot, dt);
        }
        for (int64_t m = 0; m < v->m; m++) {
            void *crow = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
            const float *t = tot + m * XG_WO_ROW_FLOATS;
            for (int i = 0; i < cnt; i++)
                x86_store1(crow, j->c.dtype, n + i,
                           _mm512_reduce_add_ps(_mm512_loadu_ps(t + i * 16)) + t[64 + i] +
                               (j->bias != NULL ? j->bias[n + i] : 0.0f));
        }
    }
}

#define XG_WO_TASK(arg, task, dt) xg_wo_task_zmm((arg), (task), worker, (dt))
#else
#define XG_WO_ROW_FLOATS 4
#define XG_WO_TASK(arg, task, dt) xg_wo_task_dt((arg), (task), worker, (dt))
#endif

static void xg_wo_task(void *arg, int64_t task, int worker)
{
    switch (((const xg_gemv *)arg)->j->b.dtype) { /* weight-only also reads 2-bit codes */
    case LLMQ_DTYPE_S2: XG_WO_TASK(arg, task, LLMQ_DTYPE_S2); break;
    case LLMQ_DTYPE_U2: XG_WO_TASK(arg, task, LLMQ_DTYPE_U2); break;
    default: XG_FOR_DTYPE(XG_WO_TASK, arg, task); break;
    }
}

#undef XG_WO_TASK

static llmq_status xg_weight_only(llmq_backend *be, const llmq_matmul_job *j)
{
    llmq_context *ctx = be->ctx;
    xg_gemv v;
    xg_gemv_init(&v, j, 32);
    const int64_t tasks = (v.n + v.rows_per_task - 1) / v.rows_per_task;
    const int workers = llmq_parallel_workers(ctx, tasks);
    /* per worker: a group of 4 weight rows as floats, then 4 accumulators per row of A */
    v.wo_worker_floats =
        ((size_t)4 * (size_t)v.group + (size_t)XG_WO_ROW_FLOATS * (size_t)v.m + 15) & ~(size_t)15;
    const size_t a_bytes = ((size_t)v.m * (size_t)v.k * 4 + 63) & ~(size_t)63;
    const size_t total = a_bytes + (size_t)workers * v.wo_worker_floats * 4;
    char *ws = llmq_scratch(ctx, total);
    if (ws == NULL)
        return xg_oom(be, total);
    v.a32 = (float *)ws;
    v.wo_work = (float *)(ws + a_bytes);
    xg_for(ctx, j, v.m, xg_wo_prep, &v);
    xg_for(ctx, j, (v.n + v.rows_per_task - 1) / v.rows_per_task, xg_wo_task, &v);
    return LLMQ_OK;
}

#include "cpu/x86_pack4.h"
#include "cpu/x86_pack8.h"

/* ---- dispatch ---- */

static llmq_status xg_matmul(llmq_backend *be, const llmq_matmul_job *j)
{
    if (j->b.packed != NULL && j->b.packed->bits == 4) { /* prepacked 4-bit weights */
        if (x86_is_float(j->a.dtype) || j->a_uniform_k)
            return xp4_matmul(be, j);
        return llmq_cpu_scalar_matmul(be, j);
    }
    if (j->b.packed != NULL && x86_is_float(j->a.dtype)) /* prepacked 8-bit weights */
        return xp8_matmul(be, j);
    const int bbits = (int)llmq_dtype_bits(j->b.dtype);
    const bool nk_stored = j->b.packed == NULL && !j->b_kn;
    /* B's parameters are constant over runs of `group` columns of k */
    const int64_t group = j->b_uniform_k ? j->k : j->b.map.col_group;
    if (x86_is_float(j->a.dtype)) {
        /* a group that is not a multiple of 32 (except the last) would split nibble pairs */
        if (nk_stored && (j->b_uniform_k || group % 32 == 0))
            return xg_weight_only(be, j);
        return llmq_cpu_scalar_matmul(be, j);
    }
    if (!j->a_uniform_k)
        return llmq_cpu_scalar_matmul(be, j);
    if (nk_stored && j->m <= XG_GEMV_M && (bbits == 8 || bbits == 4) &&
        (j->b_uniform_k || group % 32 == 0))
        return xg_int_gemv(be, j);
    if (j->b_uniform_k || group % 4 == 0)
        return xg_panel_gemm(be, j);
    return llmq_cpu_scalar_matmul(be, j);
}

#endif
