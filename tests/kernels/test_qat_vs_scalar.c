/* test_qat_vs_scalar.c - every tier's fake-quant forward and backward against the scalar
 * reference: x, dy and outputs in f32 / f16 / bf16, every code dtype and custom grids of 2 to 8
 * bits, symmetries, granularities (groups that do and do not divide the row), rounding and
 * numerics modes, S32 / F32 / no zero points, in place, with ties, values at and next to the
 * clipping bounds, infinities, huge and tiny values and scales, NaN, and scales the validation
 * refuses (0, subnormal, negative, NaN: same status, same message). y, dx and the LSQ gradients dscale / dzero_point must be bit-identical, whatever the
 * context's thread count. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_backends.h"
#include "emu_ops.h"
#include "fq_cases.h"
#include "tiers.h"

/* What one context computed for a problem. */
typedef struct fq_out {
    llmq_status st_fwd, st_bwd;
    char msg_fwd[512], msg_bwd[512];
    llmq_tensor *y, *dx, *dscale, *dzero_point;
} fq_out;

static llmq_tensor *copy_of(llmq_context *ctx, const fq_problem *p, const llmq_tensor *t)
{
    llmq_tensor *c = fq_like_x(ctx, p, llmq_tensor_dtype(t));
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, t, c));
    return c;
}

static void run_case(llmq_context *ctx, const fq_problem *p, fq_out *o)
{
    const fq_case *c = &p->c;
    memset(o, 0, sizeof *o);
    o->y = c->in_place ? copy_of(ctx, p, p->x) : fq_like_x(ctx, p, c->out_dtype);
    o->st_fwd = llmq_fake_quantize(ctx, c->in_place ? o->y : p->x, p->scheme, p->scale,
                                   p->zero_point, o->y);
    snprintf(o->msg_fwd, sizeof o->msg_fwd, "%s", llmq_context_last_error(ctx));
    o->dx = c->in_place ? copy_of(ctx, p, p->dy) : fq_like_x(ctx, p, c->out_dtype);
    o->dscale = c->lsq & 1 ? fq_like_params(ctx, p) : NULL;
    o->dzero_point = c->lsq & 2 ? fq_like_params(ctx, p) : NULL;
    o->st_bwd = llmq_fake_quantize_backward(ctx, p->x, p->scheme, p->scale, p->zero_point,
                                            c->in_place ? o->dx : p->dy, c->grad_factor, o->dx,
                                            o->dscale, o->dzero_point);
    snprintf(o->msg_bwd, sizeof o->msg_bwd, "%s", llmq_context_last_error(ctx));
}

static void out_destroy(fq_out *o)
{
    TEST_DESTROY(o->y, o->dx, o->dscale, o->dzero_point);
}

/* Same status and message; on success the same bits everywhere. Returns false on a mismatch
 * (already printed). */
static bool same(const fq_problem *p, const fq_out *got, const fq_out *want)
{
    char desc[400];
    fq_case_str(&p->c, desc, sizeof desc);
    if (got->st_fwd != want->st_fwd || got->st_bwd != want->st_bwd ||
        (got->st_fwd != LLMQ_OK && strcmp(got->msg_fwd, want->msg_fwd) != 0) ||
        (got->st_bwd != LLMQ_OK && strcmp(got->msg_bwd, want->msg_bwd) != 0)) {
        print_error("%s: forward %s \"%s\", backward %s \"%s\"; reference %s \"%s\", %s \"%s\"\n",
                    desc, llmq_status_name(got->st_fwd), got->msg_fwd,
                    llmq_status_name(got->st_bwd), got->msg_bwd, llmq_status_name(want->st_fwd),
                    want->msg_fwd, llmq_status_name(want->st_bwd), want->msg_bwd);
        return false;
    }
    bool ok = true;
    if (got->st_fwd == LLMQ_OK)
        ok &= fq_same_bits(p, "y", got->y, want->y);
    if (got->st_bwd == LLMQ_OK) {
        ok &= fq_same_bits(p, "dx", got->dx, want->dx);
        if (got->dscale != NULL)
            ok &= fq_same_bits(p, "dscale", got->dscale, want->dscale);
        if (got->dzero_point != NULL)
            ok &= fq_same_bits(p, "dzero_point", got->dzero_point, want->dzero_point);
    }
    return ok;
}

/* bad_scale: a scale of 0, a subnormal, -1 or NaN at the last parameter, which the validation
 * refuses with the same message on every tier (0: none). */
static int check_case(llmq_context *ctx, llmq_context *ref, const fq_case *c, uint64_t seed,
                      int bad_scale)
{
    fq_problem p;
    fq_problem_make(ref, c, seed, &p);
    static const float bad[] = {0.0f, 1e-40f, -1.0f, NAN};
    if (bad_scale)
        ((float *)llmq_tensor_data(p.scale))[p.nparams - 1] = bad[bad_scale - 1];
    fq_out got, want;
    run_case(ctx, &p, &got);
    run_case(ref, &p, &want);
    const bool ok = same(&p, &got, &want);
    out_destroy(&got);
    out_destroy(&want);
    fq_problem_destroy(&p);
    return ok ? 0 : 1;
}

static void random_cases_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    llmq_context *ref = scalar_context();
    test_rng rng = {11};
    static const int64_t dims[] = {1, 3, 17, 64, 1000};
    int failed = 0;
    for (int it = 0; it < 400; it++) {
        fq_case c;
        fq_case_random(&rng, dims, 5, &c);
        failed += check_case(ctx, ref, &c, test_rng_next(&rng), it % 40 == 39 ? it / 40 % 4 + 1 : 0);
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
    if (failed)
        fail_msg("%d of 400 cases differ from the reference (listed above)", failed);
}

/* Long rows on several threads: the chunking of the runs, per-lane parameters (per channel of
 * the last axis) over many chunks, long sums. */
static void long_rows_bit_equal(void **state)
{
    llmq_context *ctx;
    TIER_CONTEXT_OR_SKIP(state, ctx);
    ASSERT_OK(ctx, llmq_context_set_threads(ctx, 3));
    llmq_context *ref = scalar_context();
    test_rng rng = {23};
    static const test_gran grans[] = {
        {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},   {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},  {LLMQ_GRANULARITY_PER_GROUP, 0, 128},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 100},  {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
    };
    int failed = 0;
    for (int it = 0; it < 24; it++) {
        fq_case c;
        fq_case_random(&rng, (const int64_t[]){5}, 1, &c);
        c.gran = grans[it % 6];
        c.ndim = 2;
        c.shape[0] = it % 2 ? 5 : 37;
        c.shape[1] = 4096 + (it % 5) * 7;
        c.zp_kind = 1 + it % 2;
        c.lsq = 3;
        c.rounding = (llmq_rounding)(it % 2); /* the vector paths */
        failed += check_case(ctx, ref, &c, test_rng_next(&rng), 0);
    }
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
    if (failed)
        fail_msg("%d of 24 long cases differ from the reference (listed above)", failed);
}

/* The tiers fill both fake-quant slots with their own kernels. */
static void tables_have_fake_quant(void **state)
{
    (void)state;
    const llmq_backend_ops *tables[] = {&llmq_cpu_avx2_ops, &llmq_cpu_avxvnni_ops,
                                        &llmq_cpu_avx512_ops, &llmq_test_emu_vnni256_ops,
                                        &llmq_test_emu_vnni512_ops};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        assert_non_null(tables[i]->fake_quantize);
        assert_non_null(tables[i]->fake_quantize_backward);
        assert_ptr_not_equal(tables[i]->fake_quantize, llmq_cpu_scalar_fake_quantize);
        assert_ptr_not_equal(tables[i]->fake_quantize_backward,
                             llmq_cpu_scalar_fake_quantize_backward);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_cases_bit_equal),
        cmocka_unit_test(long_rows_bit_equal),
    };
    const struct CMUnitTest once[] = {
        cmocka_unit_test(tables_have_fake_quant),
    };
    int failed = cmocka_run_group_tests(once, NULL, NULL);
    failed += run_per_tier("qat_vs_scalar", tests, sizeof tests / sizeof tests[0]);
    return failed;
}
