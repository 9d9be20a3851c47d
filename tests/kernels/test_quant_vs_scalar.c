/* test_quant_vs_scalar.c - every tier's quantize, dynamic quantize (min / max reductions),
 * dequantize against the scalar reference: all source dtypes (f32, f16, bf16), all code dtypes,
 * symmetries, granularities (group sizes that do and do not divide the row), rounding modes and
 * numerics, with ties, infinities, huge and tiny values, and NaN (same status, same message
 * with the same index). Codes, parameters and dequantized values must be bit-identical; the
 * backend tables must have no empty slot. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backends.h"
#include "emu_ops.h"
#include "tiers.h"

static uint16_t to_half(llmq_dtype d, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (d == LLMQ_DTYPE_BF16)
        return (uint16_t)(u >> 16);
    const uint32_t a = u & 0x7fffffffu, sign = (u >> 16) & 0x8000;
    if (a >= 0x7f800000u) /* inf / nan */
        return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    const int e = (int)(a >> 23) - 127;
    if (e > 15)
        return (uint16_t)(sign | 0x7c00);
    if (e < -14)
        return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)(e + 15) << 10 | ((a >> 13) & 0x3ff));
}

/* Values that stress the kernels: plain, ties for the given scale, extremes, specials. */
static float value(test_rng *rng, float scale, int nan_ok)
{
    const uint64_t r = test_rng_next(rng) % 100;
    if (r < 60)
        return test_rng_range(rng, -3.0f, 3.0f);
    if (r < 80) /* exactly halfway between two codes */
        return ((float)(int)(test_rng_next(rng) % 300) - 150.0f + 0.5f) * scale;
    switch (r) {
    case 80: return INFINITY;
    case 81: return -INFINITY;
    case 82: return 3.0e38f;
    case 83: return -3.0e38f;
    case 84: return 1e-40f;
    case 85: return -0.0f;
    case 86: return nan_ok ? NAN : 0.0f;
    default: return test_rng_range(rng, -100.0f, 100.0f);
    }
}

typedef struct qcase {
    llmq_dtype src, dst;
    llmq_symmetry sym;
    llmq_granularity gran;
    int32_t axis;
    int64_t group;
    llmq_rounding rounding;
    llmq_numerics numerics;
    int ndim;
    int64_t shape[3];
    int nans, dynamic;
} qcase;

static llmq_tensor *make_src(llmq_context *ctx, test_rng *rng, const qcase *q, float scale)
{
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, q->src, q->ndim, q->shape, &t));
    const int64_t n = llmq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        const float x = value(rng, scale, q->nans && test_rng_next(rng) % 50 == 0);
        if (q->src == LLMQ_DTYPE_F32)
            ((float *)llmq_tensor_data(t))[i] = x;
        else
            ((uint16_t *)llmq_tensor_data(t))[i] = to_half(q->src, x);
    }
    return t;
}

static llmq_tensor *make_dst(llmq_context *ctx, const qcase *q)
{
    llmq_scheme *s = test_scheme(ctx, q->dst, q->sym, q->gran, q->axis, q->group);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, q->rounding));
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, q->numerics));
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, 99));
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, q->ndim, q->shape, &t));
    llmq_scheme_destroy(s);
    return t;
}

static void compare_tensors(const llmq_tensor *a, const llmq_tensor *b, const char *what,
                            const char *desc)
{
    if (memcmp(llmq_tensor_data(a), llmq_tensor_data(b), llmq_tensor_nbytes(a)) != 0)
        fail_msg("%s: %s differ from the reference", desc, what);
}

static void run(llmq_context *ctx, llmq_context *ref, const qcase *q, uint64_t seed)
{
    char desc[256];
    snprintf(desc, sizeof desc,
             "%s->%s sym=%d gran=%d axis=%d group=%lld round=%d num=%d shape=[%lld,%lld,%lld] "
             "nan=%d dyn=%d",
             llmq_dtype_name(q->src), llmq_dtype_name(q->dst), q->sym, q->gran, q->axis,
             (long long)q->group, q->rounding, q->numerics, (long long)q->shape[0],
             (long long)(q->ndim > 1 ? q->shape[1] : 0), (long long)(q->ndim > 2 ? q->shape[2] : 0),
             q->nans, q->dynamic);
    test_rng rng = {seed};
    /* powers of two make x = (i + 0.5) * scale an exact tie of x * (1 / scale) */
    const float scale = test_rng_next(&rng) % 2 ? ldexpf(1.0f, -(int)(2 + test_rng_next(&rng) % 6))
                                                : test_rng_range(&rng, 0.005f, 0.1f);
    const int exact_scale = test_rng_next(&rng) % 2;
    llmq_tensor *x = make_src(ctx, &rng, q, scale);
    llmq_tensor *d = make_dst(ctx, q), *dr = make_dst(ref, q);
    if (!q->dynamic) { /* parameters from the rng, the same on both */
        float *s1 = llmq_tensor_data(llmq_tensor_scale(d)), *s2 = llmq_tensor_data(llmq_tensor_scale(dr));
        int32_t *z1 = llmq_tensor_data(llmq_tensor_zero_point(d)), *z2 = llmq_tensor_data(llmq_tensor_zero_point(dr));
        int32_t qmin, qmax;
        ASSERT_OK(ctx, llmq_scheme_range(llmq_tensor_scheme(d), &qmin, &qmax));
        for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(d)); i++) {
            s1[i] = s2[i] = exact_scale ? scale : scale * test_rng_range(&rng, 0.5f, 2.0f);
            z1[i] = z2[i] = q->sym == LLMQ_SYMMETRY_ASYMMETRIC
                                ? qmin + (int32_t)(test_rng_next(&rng) % (uint64_t)(qmax - qmin + 1))
                                : z1[i];
        }
    }
    const llmq_status st = q->dynamic ? llmq_quantize_dynamic(ctx, x, d) : llmq_quantize(ctx, x, d);
    const llmq_status sr = q->dynamic ? llmq_quantize_dynamic(ref, x, dr) : llmq_quantize(ref, x, dr);
    if (st != sr)
        fail_msg("%s: status %s, reference %s (%s)", desc, llmq_status_name(st),
                 llmq_status_name(sr), llmq_context_last_error(ctx));
    if (st != LLMQ_OK) { /* NaN: the same message, which names the same index */
        assert_int_equal(st, LLMQ_ERR_NON_FINITE);
        assert_string_equal(llmq_context_last_error(ctx), llmq_context_last_error(ref));
    } else {
        compare_tensors(llmq_tensor_scale(d), llmq_tensor_scale(dr), "scales", desc);
        compare_tensors(llmq_tensor_zero_point(d), llmq_tensor_zero_point(dr), "zero points", desc);
        compare_tensors(d, dr, "codes", desc);
        static const llmq_dtype outs[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
        for (int o = 0; o < 3; o++) {
            llmq_tensor *y = NULL, *yr = NULL;
            ASSERT_OK(ctx, llmq_tensor_create(ctx, outs[o], q->ndim, q->shape, &y));
            ASSERT_OK(ctx, llmq_tensor_create(ctx, outs[o], q->ndim, q->shape, &yr));
            ASSERT_OK(ctx, llmq_dequantize(ctx, d, y));
            ASSERT_OK(ref, llmq_dequantize(ref, dr, yr));
            compare_tensors(y, yr, "dequantized values", desc);
            llmq_tensor_destroy(y);
            llmq_tensor_destroy(yr);
        }
    }
    llmq_tensor_destroy(x);
    llmq_tensor_destroy(d);
    llmq_tensor_destroy(dr);
}

static void quantize_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {5};
    static const llmq_dtype srcs[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const llmq_dtype dsts[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4, LLMQ_DTYPE_U4,
                                      LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
    static const int64_t dims[] = {1, 3, 17, 64, 1000};
    static const int64_t groups[] = {1, 3, 7, 8, 32, 100, 128, 2000};
    for (int it = 0; it < 300; it++) {
        qcase q = {0};
        q.src = srcs[test_rng_next(&rng) % 3];
        q.dst = dsts[test_rng_next(&rng) % 6];
        q.sym = (llmq_symmetry)(test_rng_next(&rng) % 3);
        q.gran = (llmq_granularity)(test_rng_next(&rng) % 4);
        q.group = groups[test_rng_next(&rng) % 8];
        q.rounding = (llmq_rounding)(test_rng_next(&rng) % 3);
        q.numerics = (llmq_numerics)(test_rng_next(&rng) % 2);
        q.ndim = 2 + (int)(test_rng_next(&rng) % 2);
        for (int i = 0; i < q.ndim; i++)
            q.shape[i] = dims[test_rng_next(&rng) % 5];
        if (q.ndim == 3 && q.shape[0] * q.shape[1] * q.shape[2] > 70000)
            q.shape[0] = 1;
        q.axis = q.gran == LLMQ_GRANULARITY_PER_CHANNEL ? (int32_t)(test_rng_next(&rng) % (uint64_t)q.ndim) - (it % 2 ? q.ndim : 0) : 0;
        q.nans = it % 5 == 4;
        q.dynamic = (int)(test_rng_next(&rng) % 2);
        run(ctx, ref, &q, test_rng_next(&rng));
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

/* Long rows: the 32-wide loops, their tails and the chunking of the sub-byte paths. */
static void long_rows_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {17};
    for (int it = 0; it < 24; it++) {
        qcase q = {0};
        q.src = it % 3 == 0 ? LLMQ_DTYPE_F32 : it % 3 == 1 ? LLMQ_DTYPE_F16 : LLMQ_DTYPE_BF16;
        q.dst = it % 4 < 2 ? LLMQ_DTYPE_S8 : it % 4 == 2 ? LLMQ_DTYPE_U4 : LLMQ_DTYPE_U8;
        q.sym = (llmq_symmetry)(it % 3);
        q.gran = it % 2 ? LLMQ_GRANULARITY_PER_TOKEN : LLMQ_GRANULARITY_PER_GROUP;
        q.group = it % 4 == 1 ? 4096 : 128;
        q.ndim = 2;
        q.shape[0] = it % 2 ? 37 : 5;
        q.shape[1] = 4096 + (it % 5) * 7;
        q.dynamic = it % 2 == 0 || it % 3 == 0;
        q.nans = it == 7 || it == 13;
        run(ctx, ref, &q, test_rng_next(&rng));
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
}

static void check_table(const llmq_backend_ops *ops)
{
    assert_int_equal(ops->version, LLMQ_BACKEND_OPS_VERSION);
    assert_non_null(ops->name);
    assert_non_null(ops->quantize);
    assert_non_null(ops->dequantize);
    assert_non_null(ops->range);
    assert_non_null(ops->pack);
    assert_non_null(ops->unpack);
    assert_non_null(ops->matmul);
}

/* BLIS: every slot of every tier is filled (with the tier's kernel or a fallback). */
static void tables_have_no_empty_slot(void **state)
{
    (void)state;
    check_table(&llmq_cpu_scalar_ops);
    check_table(&llmq_cpu_avx2_ops);
    check_table(&llmq_cpu_avxvnni_ops);
    check_table(&llmq_cpu_avx512_ops);
    check_table(&llmq_test_emu_vnni256_ops);
    check_table(&llmq_test_emu_vnni512_ops);
    assert_int_equal(llmq_cpu_avx2_ops.isa, LLMQ_CPU_ISA_AVX2);
    assert_int_equal(llmq_cpu_avxvnni_ops.isa, LLMQ_CPU_ISA_AVXVNNI);
    assert_int_equal(llmq_cpu_avx512_ops.isa, LLMQ_CPU_ISA_AVX512);
}

/* The cap only lowers the tier; the environment variable caps like the option. */
static void caps_only_lower(void **state)
{
    (void)state;
    llmq_context *ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create(&ctx, "cpu"));
    const llmq_cpu_isa host = llmq_context_host_isa(ctx), used = llmq_context_cpu_isa(ctx);
    assert_true(used <= host);
    llmq_context_destroy(ctx);
    for (int isa = LLMQ_CPU_ISA_SCALAR; isa <= LLMQ_CPU_ISA_AVX512; isa++) {
        llmq_context_options o;
        ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
        o.max_isa = (llmq_cpu_isa)isa;
        ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
        assert_true((int)llmq_context_cpu_isa(ctx) <= isa);
        assert_true(llmq_context_cpu_isa(ctx) <= host);
        llmq_context_destroy(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantize_bit_equal),
        cmocka_unit_test(long_rows_bit_equal),
    };
    const struct CMUnitTest once[] = {
        cmocka_unit_test(tables_have_no_empty_slot),
        cmocka_unit_test(caps_only_lower),
    };
    int failed = cmocka_run_group_tests(once, NULL, NULL);
    failed += run_per_tier("quant_vs_scalar", tests, sizeof tests / sizeof tests[0]);
    return failed;
}
