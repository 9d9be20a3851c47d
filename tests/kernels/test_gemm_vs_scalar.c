/* test_gemm_vs_scalar.c - every tier's matmul against the scalar reference: random shapes with
 * M, N, K in {1, 3, 17, 64, 1000}, every operand combination of docs/gemm.md, extreme codes
 * (-128 / 127, zero points at both ends of the grid, all-equal rows), prepacked weights,
 * grouped 4-bit decoding with symmetric activations, and thread counts. Integer and exact-float epilogues must be bit-identical; weight-only products
 * within the docs/gemm.md bound. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiers.h"

typedef struct gcase {
    int64_t m, n, k;
    llmq_dtype ad, bd, cd;
    int a_per_token;
    int b_gran;   /* 0 per tensor, 1 per channel, 2 per group */
    int64_t group;
    int kn, packed, bias, extreme, multiplier, c_per_channel;
    int a_centered; /* A's zero points at the grid's middle (0 for s8, 128 for u8) */
} gcase;

/* Strided operands: when `pad` > 0, tensors are wrapped over buffers whose rows are `pad`
 * bytes longer than needed (freed at the end of each case). */
static int pad;
static void *buffers[16];
static int nbuffers;

static llmq_tensor *new_tensor(llmq_context *ctx, llmq_dtype d, int64_t rows, int64_t cols)
{
    llmq_tensor *t = NULL;
    if (pad == 0) {
        ASSERT_OK(ctx, llmq_tensor_create(ctx, d, 2, (const int64_t[]){rows, cols}, &t));
        return t;
    }
    const size_t row_bytes = ((size_t)cols * llmq_dtype_bits(d) + 7) / 8;
    const size_t stride = row_bytes + (size_t)pad;
    void *buf = calloc((size_t)rows, stride);
    assert_non_null(buf);
    assert_true(nbuffers < 16);
    buffers[nbuffers++] = buf;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, d, 2, (const int64_t[]){rows, cols}, buf, stride, &t));
    return t;
}

static void free_buffers(void)
{
    while (nbuffers > 0)
        free(buffers[--nbuffers]);
}

static int is_float(llmq_dtype d)
{
    return d == LLMQ_DTYPE_F32 || d == LLMQ_DTYPE_F16 || d == LLMQ_DTYPE_BF16;
}

static int is_signed(llmq_dtype d)
{
    return d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_S4 || d == LLMQ_DTYPE_S2;
}

/* Codes of a quantized [rows, cols] tensor: extreme 0 random, 1 the grid's two ends, 2 every
 * row one value, 3 random but zero points at the ends, 4 / 5 every code the grid's lowest /
 * highest with zero points at the ends. */
static void fill_codes(llmq_context *ctx, test_rng *rng, llmq_tensor *t, int extreme)
{
    const llmq_scheme *s = llmq_tensor_scheme(t);
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
    const int64_t rows = llmq_tensor_numel(t) / llmq_tensor_dim(t, -1), cols = llmq_tensor_dim(t, -1);
    const llmq_dtype d = llmq_tensor_dtype(t);
    llmq_tensor *codes = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, is_signed(d) ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8, 2,
                                      (const int64_t[]){rows, cols}, &codes));
    int8_t *cv = llmq_tensor_data(codes);
    const uint32_t span = (uint32_t)(qmax - qmin + 1);
    for (int64_t r = 0; r < rows; r++) {
        const int32_t row_value = qmin + (int32_t)(test_rng_next(rng) % span);
        for (int64_t c = 0; c < cols; c++) {
            const uint64_t x = test_rng_next(rng);
            int32_t v = qmin + (int32_t)(x % span);
            if (extreme == 1)
                v = x & 1 ? qmax : qmin;
            else if (extreme == 2)
                v = row_value;
            else if (extreme >= 4)
                v = extreme == 4 ? qmin : qmax;
            cv[r * cols + c] = (int8_t)v;
        }
    }
    if (llmq_dtype_bits(d) == 8)
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)llmq_tensor_data(t) + (size_t)r * llmq_tensor_row_stride(t),
                   cv + r * cols, (size_t)cols);
    else
        ASSERT_OK(ctx, llmq_pack(ctx, codes, t));
    llmq_tensor_destroy(codes);
    float *sc = llmq_tensor_data(llmq_tensor_scale(t));
    int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(t));
    for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(t)); i++) {
        sc[i] = test_rng_range(rng, 0.002f, 0.05f);
        const uint64_t x = test_rng_next(rng);
        zp[i] = extreme == 1 || extreme >= 3 ? (x & 1 ? qmax : qmin) : qmin + (int32_t)(x % span);
    }
}

static llmq_tensor *quantized(llmq_context *ctx, llmq_dtype d, llmq_granularity g, int32_t axis,
                              int64_t group, int64_t rows, int64_t cols)
{
    llmq_scheme *s = test_scheme(ctx, d, LLMQ_SYMMETRY_ASYMMETRIC, g, axis, group);
    llmq_tensor *t = new_tensor(ctx, d, rows, cols);
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, t, s));
    llmq_scheme_destroy(s);
    return t;
}

static uint16_t half_bits(llmq_dtype d, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (d == LLMQ_DTYPE_BF16)
        return (uint16_t)(u >> 16); /* truncation is fine for test data */
    /* f16 by way of a float cast chain: only values that f16 holds exactly are made */
    const int e = (int)((u >> 23) & 0xff) - 127;
    if (x == 0.0f || e < -14)
        return 0;
    return (uint16_t)(((u >> 16) & 0x8000) | (uint32_t)(e + 15) << 10 | ((u >> 13) & 0x3ff));
}

static llmq_tensor *float_a(llmq_context *ctx, test_rng *rng, llmq_dtype d, int64_t m, int64_t k)
{
    llmq_tensor *t = new_tensor(ctx, d, m, k);
    for (int64_t i = 0; i < m * k; i++) {
        const float x = test_rng_range(rng, -2.0f, 2.0f);
        char *row = (char *)llmq_tensor_data(t) + (size_t)(i / k) * llmq_tensor_row_stride(t);
        if (d == LLMQ_DTYPE_F32)
            ((float *)row)[i % k] = x;
        else
            ((uint16_t *)row)[i % k] = half_bits(d, x);
    }
    return t;
}

static llmq_tensor *output(llmq_context *ctx, test_rng *rng, const gcase *g)
{
    if (g->cd != LLMQ_DTYPE_S8 && g->cd != LLMQ_DTYPE_U8)
        return new_tensor(ctx, g->cd, g->m, g->n);
    llmq_tensor *t = quantized(ctx, g->cd,
                               g->c_per_channel ? LLMQ_GRANULARITY_PER_CHANNEL
                                                : LLMQ_GRANULARITY_PER_TENSOR,
                               -1, 0, g->m, g->n);
    float *sc = llmq_tensor_data(llmq_tensor_scale(t));
    int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(t));
    /* scales around the typical size of sum(a b) sA sB, so that outputs use the grid and
     * saturate sometimes */
    const float typical = 0.025f * 0.025f * 60.0f * sqrtf((float)g->k);
    for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(t)); i++) {
        sc[i] = typical * test_rng_range(rng, 0.02f, 2.0f);
        zp[i] = (g->cd == LLMQ_DTYPE_U8 ? 0 : -128) + (int32_t)(test_rng_next(rng) % 256);
    }
    return t;
}

/* Dequantized A[m, k] * B[n, k] terms for the weight-only bound. */
static double deq(const llmq_tensor *t, int64_t r, int64_t c, int kn)
{
    const llmq_dtype d = llmq_tensor_dtype(t);
    const int64_t cols = llmq_tensor_dim(t, -1);
    const uint8_t *row = (const uint8_t *)llmq_tensor_data(t) + r * llmq_tensor_row_stride(t);
    if (d == LLMQ_DTYPE_F32)
        return ((const float *)row)[c];
    if (d == LLMQ_DTYPE_F16 || d == LLMQ_DTYPE_BF16) {
        const uint16_t h = ((const uint16_t *)row)[c];
        if (d == LLMQ_DTYPE_BF16) {
            const uint32_t u = (uint32_t)h << 16;
            float f;
            memcpy(&f, &u, 4);
            return f;
        }
        const int e = (h >> 10) & 31, mnt = h & 1023;
        const double v = e == 0 ? ldexp(mnt, -24) : ldexp(1024 + mnt, e - 25);
        return h & 0x8000 ? -v : v;
    }
    const int bits = (int)llmq_dtype_bits(d), per = 8 / bits;
    const uint32_t u = (row[c / per] >> (c % per * bits)) & ((1u << bits) - 1);
    const int32_t q = is_signed(d) && (u >> (bits - 1)) ? (int32_t)u - (1 << bits) : (int32_t)u;
    const llmq_scheme *s = llmq_tensor_scheme(t);
    int64_t p = 0;
    switch (llmq_scheme_granularity(s)) {
    case LLMQ_GRANULARITY_PER_CHANNEL: p = kn ? c : r; break;
    case LLMQ_GRANULARITY_PER_TOKEN: p = r; break;
    case LLMQ_GRANULARITY_PER_GROUP: {
        const int64_t gs = llmq_scheme_group_size(s);
        p = r * ((cols + gs - 1) / gs) + c / gs;
        break;
    }
    default: break;
    }
    return (double)(q - ((const int32_t *)llmq_tensor_data(llmq_tensor_zero_point(t)))[p]) *
           ((const float *)llmq_tensor_data(llmq_tensor_scale(t)))[p];
}

static double out_value(const llmq_tensor *c, int64_t i)
{
    const int64_t n = llmq_tensor_dim(c, -1);
    const char *p = (const char *)llmq_tensor_data(c) + (size_t)(i / n) * llmq_tensor_row_stride(c);
    i %= n;
    switch (llmq_tensor_dtype(c)) {
    case LLMQ_DTYPE_F32: return ((const float *)p)[i];
    default: {
        /* reuse deq() on a 1 x 1 view would need a tensor; decode directly */
        const uint16_t h = ((const uint16_t *)p)[i];
        if (llmq_tensor_dtype(c) == LLMQ_DTYPE_BF16) {
            const uint32_t u = (uint32_t)h << 16;
            float f;
            memcpy(&f, &u, 4);
            return f;
        }
        const int e = (h >> 10) & 31, mnt = h & 1023;
        if (e == 31)
            return mnt ? NAN : (h & 0x8000 ? -INFINITY : INFINITY);
        const double v = e == 0 ? ldexp(mnt, -24) : ldexp(1024 + mnt, e - 25);
        return h & 0x8000 ? -v : v;
    }
    }
}

/* Run one case on ctx and on the reference; compare. */
static void run_case(llmq_context *ctx, llmq_context *ref, const gcase *g, uint64_t seed)
{
    test_rng rng = {seed};
    char what[256];
    snprintf(what, sizeof what,
             "m=%lld n=%lld k=%lld a=%s b=%s c=%s gran=%d group=%lld kn=%d packed=%d bias=%d "
             "extreme=%d mult=%d cpc=%d",
             (long long)g->m, (long long)g->n, (long long)g->k, llmq_dtype_name(g->ad),
             llmq_dtype_name(g->bd), llmq_dtype_name(g->cd), g->b_gran, (long long)g->group,
             g->kn, g->packed, g->bias, g->extreme, g->multiplier, g->c_per_channel);
    llmq_tensor *a = is_float(g->ad)
                         ? float_a(ctx, &rng, g->ad, g->m, g->k)
                         : quantized(ctx, g->ad,
                                     g->a_per_token ? LLMQ_GRANULARITY_PER_TOKEN
                                                    : LLMQ_GRANULARITY_PER_TENSOR,
                                     0, 0, g->m, g->k);
    if (!is_float(g->ad))
        fill_codes(ctx, &rng, a, g->extreme);
    if (g->a_centered) {
        int32_t *za = llmq_tensor_data(llmq_tensor_zero_point(a));
        for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_zero_point(a)); i++)
            za[i] = g->ad == LLMQ_DTYPE_U8 ? 128 : 0;
    }
    const llmq_granularity bg = g->b_gran == 0   ? LLMQ_GRANULARITY_PER_TENSOR
                                : g->b_gran == 1 ? LLMQ_GRANULARITY_PER_CHANNEL
                                                 : LLMQ_GRANULARITY_PER_GROUP;
    llmq_tensor *b = g->kn ? quantized(ctx, g->bd, bg, 1, 0, g->k, g->n)
                           : quantized(ctx, g->bd, bg, 0, g->group, g->n, g->k);
    fill_codes(ctx, &rng, b, g->extreme);
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.weight_layout = g->kn ? LLMQ_WEIGHT_LAYOUT_KN : LLMQ_WEIGHT_LAYOUT_NK;
    o.requant = g->multiplier ? LLMQ_REQUANT_MULTIPLIER : LLMQ_REQUANT_EXACT;
    llmq_tensor *bp = NULL;
    if (g->packed) {
        ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b, &o, &bp));
        o.weight_layout = LLMQ_WEIGHT_LAYOUT_NK;
    }
    float *bias_v = NULL;
    llmq_tensor *bias = NULL;
    if (g->bias) {
        bias_v = malloc(sizeof(float) * (size_t)g->n);
        for (int64_t i = 0; i < g->n; i++)
            bias_v[i] = test_rng_range(&rng, -1.0f, 1.0f);
        bias = test_wrap_f32(ctx, bias_v, 1, (const int64_t[]){g->n});
    }
    test_rng crng = rng, crng2 = rng;
    llmq_tensor *c = output(ctx, &rng, g), *cref = output(ref, &crng, g);
    const llmq_tensor *bb = bp != NULL ? bp : b;
    ASSERT_OK(ctx, llmq_matmul_with_options(ctx, a, bb, bias, c, &o));
    /* the reference reads the unpacked weight (and, once, the packed one) */
    llmq_matmul_options oref = o;
    oref.weight_layout = g->kn ? LLMQ_WEIGHT_LAYOUT_KN : LLMQ_WEIGHT_LAYOUT_NK;
    ASSERT_OK(ref, llmq_matmul_with_options(ref, a, b, bias, cref, &oref));
    const size_t bytes = llmq_tensor_nbytes(c);
    if (!is_float(g->ad)) {
        const size_t es = llmq_dtype_bits(g->cd) / 8;
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t jn = 0; jn < g->n; jn++) {
                const char *x = (const char *)llmq_tensor_data(c) + (size_t)i * llmq_tensor_row_stride(c) + (size_t)jn * es;
                const char *y = (const char *)llmq_tensor_data(cref) + (size_t)i * llmq_tensor_row_stride(cref) + (size_t)jn * es;
                if (memcmp(x, y, es) != 0)
                    fail_msg("%s: %s differs from the reference at (%lld, %lld): %g vs %g", what,
                             llmq_context_backend_name(ctx), (long long)i, (long long)jn,
                             g->cd == LLMQ_DTYPE_S32 ? (double)*(const int32_t *)x
                             : is_float(g->cd) ? out_value(c, i * g->n + jn)
                             : g->cd == LLMQ_DTYPE_S8 ? (double)*(const int8_t *)x : (double)*(const uint8_t *)x,
                             g->cd == LLMQ_DTYPE_S32 ? (double)*(const int32_t *)y
                             : is_float(g->cd) ? out_value(cref, i * g->n + jn)
                             : g->cd == LLMQ_DTYPE_S8 ? (double)*(const int8_t *)y : (double)*(const uint8_t *)y);
            }
        if (g->packed) { /* the packed weight on the reference: same bits */
            llmq_tensor *c2 = output(ref, &crng2, g);
            ASSERT_OK(ref, llmq_matmul_with_options(ref, a, bp, bias, c2, &o));
            assert_memory_equal(llmq_tensor_data(c2), llmq_tensor_data(cref), bytes);
            llmq_tensor_destroy(c2);
        }
    } else { /* weight-only: |y - y_ref| <= 1e-6 K sum|a b| (+ half an ulp of f16 / bf16) */
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t jn = 0; jn < g->n; jn++) {
                double mag = 0.0;
                for (int64_t kk = 0; kk < g->k; kk++)
                    mag += fabs(deq(a, i, kk, 0) * (g->kn ? deq(b, kk, jn, 1) : deq(b, jn, kk, 0)));
                const double y = out_value(c, i * g->n + jn), yr = out_value(cref, i * g->n + jn);
                double tol = 1e-6 * (double)g->k * mag + 1e-30;
                if (g->cd == LLMQ_DTYPE_F16)
                    tol += fabs(yr) * 0x1p-11 + 0x1p-24;
                else if (g->cd == LLMQ_DTYPE_BF16)
                    tol += fabs(yr) * 0x1p-8;
                if (!(fabs(y - yr) <= tol))
                    fail_msg("%s: (%lld, %lld) got %.9g, reference %.9g, bound %.3g", what,
                             (long long)i, (long long)jn, y, yr, tol);
            }
    }
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_tensor_destroy(bp);
    llmq_tensor_destroy(bias);
    llmq_tensor_destroy(c);
    llmq_tensor_destroy(cref);
    free(bias_v);
    free_buffers();
}

static const int64_t sizes[] = {1, 3, 17, 64, 1000};

static int64_t pick(test_rng *r, const int64_t *v, int n)
{
    return v[test_rng_next(r) % (uint64_t)n];
}

/* W8A8 and W4A8 / W2A8: integer A, every B, every epilogue. */
static void integer_products_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {11};
    static const llmq_dtype bds[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                     LLMQ_DTYPE_U4, LLMQ_DTYPE_S2};
    static const llmq_dtype cds[] = {LLMQ_DTYPE_S32, LLMQ_DTYPE_F32, LLMQ_DTYPE_F16,
                                     LLMQ_DTYPE_BF16, LLMQ_DTYPE_S8, LLMQ_DTYPE_U8};
    static const int64_t groups[] = {4, 12, 17, 32, 64, 128, 256, 512};
    int done = 0;
    for (int it = 0; done < 70 && it < 1000; it++) {
        gcase g = {0};
        g.m = pick(&rng, sizes, 5);
        g.n = pick(&rng, sizes, 5);
        g.k = pick(&rng, sizes, 5);
        if (it % 7 == 0) /* K values around the group boundaries and the K chunk (4096) */
            g.k = (it % 14 == 0 ? 3900 : 250) + (int64_t)(test_rng_next(&rng) % 300);
        if (g.m * g.n * g.k > 4000000)
            continue;
        g.ad = test_rng_next(&rng) % 2 ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8;
        g.a_per_token = (int)(test_rng_next(&rng) % 2);
        g.bd = bds[test_rng_next(&rng) % 5];
        g.b_gran = (int)(test_rng_next(&rng) % 3);
        g.group = pick(&rng, groups, 8);
        g.cd = cds[test_rng_next(&rng) % 6];
        if (g.b_gran == 2 && g.cd == LLMQ_DTYPE_S32)
            g.cd = LLMQ_DTYPE_F32;
        g.kn = llmq_dtype_bits(g.bd) == 8 && g.b_gran != 2 && test_rng_next(&rng) % 4 == 0;
        g.packed = llmq_dtype_bits(g.bd) == 8 && g.b_gran != 2 && test_rng_next(&rng) % 3 == 0;
        g.bias = is_float(g.cd) && test_rng_next(&rng) % 2;
        g.extreme = (int)(test_rng_next(&rng) % 4);
        g.multiplier = (int)(test_rng_next(&rng) % 2);
        g.c_per_channel = (int)(test_rng_next(&rng) % 2);
        pad = it % 5 == 1 ? 4 + 4 * (int)(test_rng_next(&rng) % 10) : 0; /* keeps s32 / f32 rows aligned */
        run_case(ctx, ref, &g, test_rng_next(&rng));
        pad = 0;
        done++;
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* Decoding shapes of W4A8 with symmetric activations (A's zero point at the grid's middle,
 * the AVX-512 tier's 16-row kernel): M <= 4, 4-bit weights in groups, N and K with tails. */
static void grouped_4bit_decode_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {17};
    static const int64_t ns[] = {1, 3, 17, 64, 1000}, ks[] = {32, 64, 96, 250, 1000, 1041};
    static const int64_t groups[] = {32, 64, 128};
    static const llmq_dtype cds[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_BF16, LLMQ_DTYPE_S8};
    for (int it = 0; it < 40; it++) {
        gcase g = {0};
        g.m = 1 + (int64_t)(test_rng_next(&rng) % 4);
        g.n = pick(&rng, ns, 5);
        g.k = pick(&rng, ks, 6);
        g.ad = it % 5 == 4 ? LLMQ_DTYPE_U8 : LLMQ_DTYPE_S8;
        g.a_per_token = (int)(test_rng_next(&rng) % 2);
        g.a_centered = 1;
        g.bd = test_rng_next(&rng) % 2 ? LLMQ_DTYPE_S4 : LLMQ_DTYPE_U4;
        g.b_gran = 2;
        g.group = pick(&rng, groups, 3);
        g.cd = cds[test_rng_next(&rng) % 3];
        g.bias = is_float(g.cd) && test_rng_next(&rng) % 2;
        g.extreme = (int)(test_rng_next(&rng) % 4);
        g.c_per_channel = (int)(test_rng_next(&rng) % 2);
        pad = it % 5 == 1 ? 4 + 4 * (int)(test_rng_next(&rng) % 10) : 0;
        run_case(ctx, ref, &g, test_rng_next(&rng));
        pad = 0;
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* 4-bit weights prepacked by llmq_matmul_pack_weights (16 channels in the lanes, groups
 * padded to 8 k): W4A8 bit-equal to the reference on the unpacked weight (and the reference
 * on the packed one), W4A16 within the bound; s4 and u4, per tensor, per channel and groups
 * (also ones that are not a multiple of 8), M in {1, 3, 16}, N and K with tails, extreme codes
 * (all lowest, all highest, zero points at both ends). */
static void packed_4bit_vs_reference(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {41};
    static const int64_t ms[] = {1, 3, 16}, ns[] = {1, 3, 17, 64, 1000};
    static const int64_t ks[] = {1, 3, 17, 64, 250, 1000, 1041};
    static const int64_t groups[] = {8, 12, 32, 64, 128};
    static const llmq_dtype ads[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_F32, LLMQ_DTYPE_F16,
                                     LLMQ_DTYPE_BF16};
    static const llmq_dtype icds[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_BF16, LLMQ_DTYPE_S8, LLMQ_DTYPE_U8,
                                      LLMQ_DTYPE_S32};
    static const llmq_dtype fcds[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    int done = 0;
    for (int it = 0; done < 80 && it < 1000; it++) {
        gcase g = {0};
        g.m = pick(&rng, ms, 3);
        g.n = pick(&rng, ns, 5);
        g.k = pick(&rng, ks, 7);
        if (g.m * g.n * g.k > 2000000)
            continue;
        g.ad = ads[test_rng_next(&rng) % 5];
        g.bd = test_rng_next(&rng) % 2 ? LLMQ_DTYPE_S4 : LLMQ_DTYPE_U4;
        g.b_gran = (int)(test_rng_next(&rng) % 3);
        g.group = g.b_gran == 2 ? pick(&rng, groups, 5) : 0;
        g.a_per_token = (int)(test_rng_next(&rng) % 2);
        g.a_centered = test_rng_next(&rng) % 2 == 0;
        g.cd = is_float(g.ad) ? fcds[test_rng_next(&rng) % 3] : icds[test_rng_next(&rng) % 5];
        if (g.b_gran == 2 && g.cd == LLMQ_DTYPE_S32)
            g.cd = LLMQ_DTYPE_F32;
        g.packed = 1;
        g.bias = is_float(g.cd) && test_rng_next(&rng) % 2;
        g.extreme = (int)(test_rng_next(&rng) % 6);
        g.multiplier = (int)(test_rng_next(&rng) % 2);
        g.c_per_channel = (int)(test_rng_next(&rng) % 2);
        pad = it % 5 == 1 ? 4 + 4 * (int)(test_rng_next(&rng) % 10) : 0;
        run_case(ctx, ref, &g, test_rng_next(&rng));
        pad = 0;
        done++;
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* Saturating codes: -128 x -128 in every term of a long K, zero points 0; the int32 bound of
 * the contract is just met. */
static void extreme_accumulators_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    static const int64_t ks[] = {1, 17, 4096, 131071};
    for (int i = 0; i < 4; i++) {
        for (int variant = 0; variant < 3; variant++) {
            const int64_t m = variant == 1 ? 9 : 2, n = 33, k = ks[i];
            llmq_tensor *a = quantized(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_TENSOR, 0, 0, m, k);
            llmq_tensor *b = quantized(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, n, k);
            memset(llmq_tensor_data(a), 0x80, (size_t)(m * k));
            memset(llmq_tensor_data(b), variant == 2 ? 0x7f : 0x80, (size_t)(n * k));
            llmq_tensor *bp = NULL;
            ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b, NULL, &bp));
            llmq_tensor *c = NULL, *cr = NULL, *c2 = NULL;
            ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 2, (const int64_t[]){m, n}, &c));
            ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 2, (const int64_t[]){m, n}, &cr));
            ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 2, (const int64_t[]){m, n}, &c2));
            ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c));
            ASSERT_OK(ctx, llmq_matmul(ctx, a, bp, NULL, c2));
            ASSERT_OK(ref, llmq_matmul(ref, a, b, NULL, cr));
            const int32_t want = (int32_t)(k * 128 * (variant == 2 ? -127 : 128));
            assert_int_equal(((int32_t *)llmq_tensor_data(cr))[0], want);
            assert_memory_equal(llmq_tensor_data(c), llmq_tensor_data(cr), (size_t)(m * n * 4));
            assert_memory_equal(llmq_tensor_data(c2), llmq_tensor_data(cr), (size_t)(m * n * 4));
            llmq_tensor_destroy(a);
            llmq_tensor_destroy(b);
            llmq_tensor_destroy(bp);
            llmq_tensor_destroy(c);
            llmq_tensor_destroy(cr);
            llmq_tensor_destroy(c2);
        }
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* W8A16 / W4A16 / W2A16: float A (f32, f16, bf16) x quantized B, within the bound. */
static void weight_only_within_bound(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {23};
    static const llmq_dtype ads[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const llmq_dtype bds[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                     LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
    static const llmq_dtype cds[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const int64_t groups[] = {32, 64, 128, 17};
    static const int64_t ms[] = {1, 2, 3, 5, 8, 16, 17};
    int done = 0;
    for (int it = 0; done < 40 && it < 1000; it++) {
        gcase g = {0};
        g.m = pick(&rng, ms, 7);
        g.n = pick(&rng, sizes, 5);
        g.k = pick(&rng, sizes, 5);
        if (g.m * g.n * g.k > 2000000)
            continue;
        g.ad = ads[test_rng_next(&rng) % 3];
        g.bd = bds[test_rng_next(&rng) % 6];
        g.b_gran = 1 + (int)(test_rng_next(&rng) % 2);
        g.group = pick(&rng, groups, 4);
        g.cd = cds[test_rng_next(&rng) % 3];
        g.bias = (int)(test_rng_next(&rng) % 2);
        g.extreme = (int)(test_rng_next(&rng) % 4);
        pad = it % 4 == 1 ? 4 + 4 * (int)(test_rng_next(&rng) % 10) : 0;
        run_case(ctx, ref, &g, test_rng_next(&rng));
        pad = 0;
        done++;
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* W8A16 with 8-bit weights prepacked by llmq_matmul_pack_weights (16 channels x 4 k per 64
 * bytes, read by x86_pack8.h): within the bound of the reference on the unpacked weight; s8 and
 * u8, per tensor and per channel, [N, K] and [K, N] before packing, M in 1 .. 17, N and K with
 * tails, extreme codes (the grid's ends, all-equal rows, zero points at both ends). */
static void packed_8bit_weight_only_within_bound(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {43};
    static const int64_t ms[] = {1, 2, 3, 4, 5, 8, 16, 17};
    static const int64_t ks[] = {1, 3, 17, 64, 250, 1000, 1041};
    static const llmq_dtype ads[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const llmq_dtype cds[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    int done = 0;
    for (int it = 0; done < 50 && it < 1000; it++) {
        gcase g = {0};
        g.m = pick(&rng, ms, 8);
        g.n = pick(&rng, sizes, 5);
        g.k = pick(&rng, ks, 7);
        if (g.m * g.n * g.k > 2000000)
            continue;
        g.ad = ads[test_rng_next(&rng) % 3];
        g.bd = test_rng_next(&rng) % 2 ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8;
        g.b_gran = (int)(test_rng_next(&rng) % 2);
        g.kn = test_rng_next(&rng) % 4 == 0;
        g.packed = 1;
        g.cd = cds[test_rng_next(&rng) % 3];
        g.bias = (int)(test_rng_next(&rng) % 2);
        g.extreme = (int)(test_rng_next(&rng) % 6);
        pad = it % 4 == 1 ? 4 + 4 * (int)(test_rng_next(&rng) % 10) : 0;
        run_case(ctx, ref, &g, test_rng_next(&rng));
        pad = 0;
        done++;
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* The same products on 1, 2, 3 and 5 threads: bit-identical, floats included (also with
 * prepacked 4-bit and 8-bit weights). */
static void thread_counts_bit_identical(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    test_rng rng = {31};
    static const struct {
        int64_t m, n, k;
        llmq_dtype ad, bd, cd;
        int64_t group;
        int packed;
    } cases[] = {
        {1, 1000, 1000, LLMQ_DTYPE_S8, LLMQ_DTYPE_S8, LLMQ_DTYPE_F32, 0, 0},
        {3, 777, 4096, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4, LLMQ_DTYPE_F32, 128, 0},
        {130, 300, 1000, LLMQ_DTYPE_S8, LLMQ_DTYPE_S8, LLMQ_DTYPE_S8, 0, 0},
        {250, 200, 512, LLMQ_DTYPE_S8, LLMQ_DTYPE_U4, LLMQ_DTYPE_BF16, 64, 0},
        {5, 1000, 1000, LLMQ_DTYPE_F32, LLMQ_DTYPE_U4, LLMQ_DTYPE_F32, 64, 0},
        {16, 999, 512, LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_DTYPE_F16, 0, 0},
        {1, 1001, 2048, LLMQ_DTYPE_S8, LLMQ_DTYPE_U4, LLMQ_DTYPE_F32, 128, 1},
        {3, 777, 1000, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4, LLMQ_DTYPE_S8, 0, 1},
        {1, 1001, 2048, LLMQ_DTYPE_F32, LLMQ_DTYPE_S4, LLMQ_DTYPE_F32, 64, 1},
        {16, 300, 1000, LLMQ_DTYPE_BF16, LLMQ_DTYPE_U4, LLMQ_DTYPE_F16, 128, 1},
        {1, 1001, 2048, LLMQ_DTYPE_F32, LLMQ_DTYPE_S8, LLMQ_DTYPE_F32, 0, 1},
        {7, 333, 1000, LLMQ_DTYPE_F16, LLMQ_DTYPE_U8, LLMQ_DTYPE_BF16, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gcase g = {0};
        g.m = cases[i].m;
        g.n = cases[i].n;
        g.k = cases[i].k;
        g.ad = cases[i].ad;
        g.bd = cases[i].bd;
        g.cd = cases[i].cd;
        g.group = cases[i].group;
        g.b_gran = g.group ? 2 : 1;
        g.a_per_token = 1;
        llmq_tensor *a = is_float(g.ad) ? float_a(ctx, &rng, g.ad, g.m, g.k)
                                        : quantized(ctx, g.ad, LLMQ_GRANULARITY_PER_TOKEN, 0, 0, g.m, g.k);
        if (!is_float(g.ad))
            fill_codes(ctx, &rng, a, 0);
        llmq_tensor *b = quantized(ctx, g.bd, g.group ? LLMQ_GRANULARITY_PER_GROUP : LLMQ_GRANULARITY_PER_CHANNEL,
                                   0, g.group, g.n, g.k);
        fill_codes(ctx, &rng, b, 0);
        if (cases[i].packed) {
            llmq_tensor *bp = NULL;
            ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b, NULL, &bp));
            llmq_tensor_destroy(b);
            b = bp;
        }
        llmq_tensor *first = NULL;
        for (int threads = 1; threads <= 5; threads += threads < 3 ? 1 : 2) {
            ASSERT_OK(ctx, llmq_context_set_threads(ctx, threads));
            assert_int_equal(llmq_context_threads(ctx), threads);
            test_rng crng = {7};
            llmq_tensor *c = output(ctx, &crng, &g);
            ASSERT_OK(ctx, llmq_matmul(ctx, a, b, NULL, c));
            if (first == NULL) {
                first = c;
                continue;
            }
            assert_memory_equal(llmq_tensor_data(first), llmq_tensor_data(c), llmq_tensor_nbytes(c));
            llmq_tensor_destroy(c);
        }
        ASSERT_OK(ctx, llmq_context_set_threads(ctx, 1));
        llmq_tensor_destroy(first);
        llmq_tensor_destroy(a);
        llmq_tensor_destroy(b);
    }
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integer_products_bit_equal),
        cmocka_unit_test(extreme_accumulators_bit_equal),
        cmocka_unit_test(grouped_4bit_decode_bit_equal),
        cmocka_unit_test(weight_only_within_bound),
        cmocka_unit_test(packed_4bit_vs_reference),
        cmocka_unit_test(packed_8bit_weight_only_within_bound),
        cmocka_unit_test(thread_counts_bit_identical),
    };
    return run_per_tier("gemm_vs_scalar", tests, sizeof tests / sizeof tests[0]);
}
