/* test_cuda_qat.c - fake quantization on device tensors against the CPU: y and dx bit-identical,
 * the LSQ gradients dscale / dzero_point within the bound of two summation orders
 * (fq_close_sums) and identical from run to run; every granularity, 2 to 8 bits, shapes with
 * 1, 3, 17 and 1000 along each axis, in place; NaN reported at llmq_context_sync; mixed host and
 * device operands refused. Every mismatch prints its case, tensor and element, and the test
 * goes on to the end, so one device run tells all. Exits 77 (skip) without a CUDA device or
 * module. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fq_cases.h"
#include "testing.h"

static llmq_context *context(const char *backend)
{
    llmq_context *ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create(&ctx, backend));
    return ctx;
}

/* A device copy of a host tensor (NULL stays NULL). */
static llmq_tensor *to_device(llmq_context *ctx, const llmq_tensor *h)
{
    if (h == NULL)
        return NULL;
    int64_t shape[LLMQ_MAX_DIMS];
    for (int32_t i = 0; i < llmq_tensor_ndim(h); i++)
        shape[i] = llmq_tensor_dim(h, i);
    llmq_tensor *d = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_device(ctx, llmq_tensor_dtype(h), llmq_tensor_ndim(h), shape,
                                             &d));
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, h, d));
    return d;
}

/* Outputs of one problem: host tensors (the device's results copied back). */
typedef struct fq_out {
    llmq_tensor *y, *dx, *dscale, *dzero_point;
} fq_out;

static void out_destroy(fq_out *o)
{
    TEST_DESTROY(o->y, o->dx, o->dscale, o->dzero_point);
}

static void host_outputs(llmq_context *ctx, const fq_problem *p, fq_out *o)
{
    const fq_case *c = &p->c;
    o->y = fq_like_x(ctx, p, c->in_place ? c->x_dtype : c->out_dtype);
    o->dx = fq_like_x(ctx, p, c->in_place ? c->dy_dtype : c->out_dtype);
    o->dscale = c->lsq & 1 ? fq_like_params(ctx, p) : NULL;
    o->dzero_point = c->lsq & 2 ? fq_like_params(ctx, p) : NULL;
}

static void run_cpu(llmq_context *cpu, const fq_problem *p, fq_out *o)
{
    host_outputs(cpu, p, o);
    ASSERT_OK(cpu, llmq_fake_quantize(cpu, p->x, p->scheme, p->scale, p->zero_point, o->y));
    ASSERT_OK(cpu, llmq_fake_quantize_backward(cpu, p->x, p->scheme, p->scale, p->zero_point,
                                               p->dy, p->c.grad_factor, o->dx, o->dscale,
                                               o->dzero_point));
}

/* The problem on the device (in place when the case says so), results copied into host
 * tensors. */
static void run_device(llmq_context *gpu, const fq_problem *p, fq_out *o)
{
    const fq_case *c = &p->c;
    host_outputs(gpu, p, o);
    llmq_tensor *x = to_device(gpu, p->x), *dy = to_device(gpu, p->dy);
    llmq_tensor *scale = to_device(gpu, p->scale), *zp = to_device(gpu, p->zero_point);
    llmq_tensor *y = c->in_place ? to_device(gpu, p->x) : to_device(gpu, o->y);
    llmq_tensor *dx = c->in_place ? to_device(gpu, p->dy) : to_device(gpu, o->dx);
    llmq_tensor *ds = to_device(gpu, o->dscale), *dz = to_device(gpu, o->dzero_point);
    ASSERT_OK(gpu, llmq_fake_quantize(gpu, c->in_place ? y : x, p->scheme, scale, zp, y));
    ASSERT_OK(gpu, llmq_fake_quantize_backward(gpu, x, p->scheme, scale, zp,
                                               c->in_place ? dx : dy, c->grad_factor, dx, ds, dz));
    ASSERT_OK(gpu, llmq_context_sync(gpu));
    ASSERT_OK(gpu, llmq_tensor_copy(gpu, y, o->y));
    ASSERT_OK(gpu, llmq_tensor_copy(gpu, dx, o->dx));
    if (ds != NULL)
        ASSERT_OK(gpu, llmq_tensor_copy(gpu, ds, o->dscale));
    if (dz != NULL)
        ASSERT_OK(gpu, llmq_tensor_copy(gpu, dz, o->dzero_point));
    TEST_DESTROY(x, dy, scale, zp, y, dx, ds, dz);
}

/* One case on both; 0 when they agree, else 1 (the mismatch is printed). */
static int check_case(llmq_context *gpu, llmq_context *cpu, const fq_case *c, uint64_t seed)
{
    fq_problem p;
    fq_problem_make(cpu, c, seed, &p);
    fq_out got = {0}, want = {0};
    run_cpu(cpu, &p, &want);
    run_device(gpu, &p, &got);
    bool ok = fq_same_bits(&p, "y", got.y, want.y);
    ok &= fq_same_bits(&p, "dx", got.dx, want.dx);
    if (want.dscale != NULL)
        ok &= fq_close_sums(&p, "dscale", got.dscale, want.dscale, false);
    if (want.dzero_point != NULL)
        ok &= fq_close_sums(&p, "dzero_point", got.dzero_point, want.dzero_point, true);
    out_destroy(&got);
    out_destroy(&want);
    fq_problem_destroy(&p);
    return ok ? 0 : 1;
}

/* Every granularity x 2, 3, 4, 5, 8 bits x every [rows, cols] in {1, 3, 17, 1000}^2. */
static void systematic_cases_match_cpu(void **state)
{
    (void)state;
    llmq_context *gpu = context("cuda"), *cpu = context("cpu");
    static const test_gran grans[] = {
        {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},  {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0}, {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 7},   {LLMQ_GRANULARITY_PER_GROUP, 0, 128},
    };
    static const struct {
        llmq_dtype dt;
        int32_t qmin, qmax;
    } grids[] = {
        {LLMQ_DTYPE_S2, 0, 0}, {LLMQ_DTYPE_U2, 0, 0},   {LLMQ_DTYPE_S4, -4, 3},
        {LLMQ_DTYPE_S4, 0, 0}, {LLMQ_DTYPE_U4, 0, 0},   {LLMQ_DTYPE_U8, 0, 31},
        {LLMQ_DTYPE_S8, 0, 0}, {LLMQ_DTYPE_U8, 0, 0},
    };
    static const int64_t dims[] = {1, 3, 17, 1000};
    test_rng rng = {3};
    int failed = 0, n = 0;
    for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g++)
        for (size_t b = 0; b < sizeof grids / sizeof grids[0]; b++)
            for (int s = 0; s < 16; s++, n++) {
                fq_case c;
                fq_case_random(&rng, dims, 4, &c);
                c.qdtype = grids[b].dt;
                c.qmin = grids[b].qmin;
                c.qmax = grids[b].qmax;
                c.gran = grans[g];
                c.ndim = 2;
                c.shape[0] = dims[s / 4];
                c.shape[1] = dims[s % 4];
                c.zp_kind = 1 + n % 2;
                c.lsq = 3;
                c.nans = false;
                failed += check_case(gpu, cpu, &c, test_rng_next(&rng));
            }
    llmq_context_destroy(cpu);
    llmq_context_destroy(gpu);
    if (failed)
        fail_msg("%d of %d cases differ from the CPU (listed above)", failed, n);
}

/* Random dtypes, 3-D shapes, modes, zero points, in place. */
static void random_cases_match_cpu(void **state)
{
    (void)state;
    llmq_context *gpu = context("cuda"), *cpu = context("cpu");
    static const int64_t dims[] = {1, 3, 17, 64, 1000};
    test_rng rng = {29};
    int failed = 0;
    for (int it = 0; it < 300; it++) {
        fq_case c;
        fq_case_random(&rng, dims, 5, &c);
        c.nans = false;
        failed += check_case(gpu, cpu, &c, test_rng_next(&rng));
    }
    llmq_context_destroy(cpu);
    llmq_context_destroy(gpu);
    if (failed)
        fail_msg("%d of 300 cases differ from the CPU (listed above)", failed);
}

/* Large tensors: many chunks per parameter (per tensor: 2^22 elements), and the gradients of
 * two runs are identical. */
static void large_sums_deterministic(void **state)
{
    (void)state;
    llmq_context *gpu = context("cuda"), *cpu = context("cpu");
    static const test_gran grans[] = {{LLMQ_GRANULARITY_PER_TENSOR, 0, 0},
                                      {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0},
                                      {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
                                      {LLMQ_GRANULARITY_PER_GROUP, 0, 128}};
    test_rng rng = {41};
    int failed = 0;
    for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g++) {
        fq_case c;
        fq_case_random(&rng, (const int64_t[]){1}, 1, &c);
        c.gran = grans[g];
        c.ndim = 2;
        c.shape[0] = 1024;
        c.shape[1] = 4096;
        c.zp_kind = 2;
        c.lsq = 3;
        c.nans = false;
        c.in_place = false;
        const uint64_t seed = test_rng_next(&rng);
        failed += check_case(gpu, cpu, &c, seed);
        fq_problem p;
        fq_problem_make(cpu, &c, seed, &p);
        fq_out a = {0}, b = {0};
        run_device(gpu, &p, &a);
        run_device(gpu, &p, &b);
        failed += !fq_same_bits(&p, "dscale (second run)", b.dscale, a.dscale);
        failed += !fq_same_bits(&p, "dzero_point (second run)", b.dzero_point, a.dzero_point);
        out_destroy(&a);
        out_destroy(&b);
        fq_problem_destroy(&p);
    }
    llmq_context_destroy(cpu);
    llmq_context_destroy(gpu);
    if (failed)
        fail_msg("%d mismatches (listed above)", failed);
}

/* A NaN in x: the calls return LLMQ_OK and the next sync reports its flat index. */
static void nan_reported_at_sync(void **state)
{
    (void)state;
    llmq_context *gpu = context("cuda");
    float x[3 * 17];
    for (int i = 0; i < 3 * 17; i++)
        x[i] = (float)i * 0.1f;
    x[40] = NAN;
    const int64_t shape[2] = {3, 17};
    llmq_tensor *hx = test_wrap_f32(gpu, x, 2, shape);
    float one = 0.05f;
    llmq_tensor *hs = test_wrap_f32(gpu, &one, 1, (const int64_t[]){1});
    llmq_tensor *dx = to_device(gpu, hx), *ds = to_device(gpu, hs), *dy = to_device(gpu, hx);
    llmq_tensor *dscale = to_device(gpu, hs);
    llmq_scheme *s = test_scheme(gpu, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_tensor *y = to_device(gpu, hx);
    ASSERT_OK(gpu, llmq_fake_quantize(gpu, dx, s, ds, NULL, y));
    ASSERT_FAILS(gpu, llmq_context_sync(gpu), LLMQ_ERR_NON_FINITE, "[40]");
    ASSERT_OK(gpu, llmq_context_sync(gpu)); /* reported once */
    ASSERT_OK(gpu, llmq_fake_quantize_backward(gpu, dx, s, ds, NULL, dy, 1.0f, y, dscale, NULL));
    ASSERT_FAILS(gpu, llmq_context_sync(gpu), LLMQ_ERR_NON_FINITE, "[40]");
    llmq_scheme_destroy(s);
    TEST_DESTROY(hx, hs, dx, ds, dy, dscale, y);
    llmq_context_destroy(gpu);
}

/* Host and device operands in one call are refused, naming them. */
static void mixed_memory_refused(void **state)
{
    (void)state;
    llmq_context *gpu = context("cuda");
    float x[6] = {0}, sc = 0.1f, g[6] = {0}, dsc = 0;
    const int64_t shape[2] = {2, 3};
    llmq_tensor *hx = test_wrap_f32(gpu, x, 2, shape), *hs = test_wrap_f32(gpu, &sc, 1, (const int64_t[]){1});
    llmq_tensor *hg = test_wrap_f32(gpu, g, 2, shape), *hds = test_wrap_f32(gpu, &dsc, 1, (const int64_t[]){1});
    llmq_tensor *dx = to_device(gpu, hx), *ds = to_device(gpu, hs), *dg = to_device(gpu, hg);
    llmq_scheme *s = test_scheme(gpu, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_FAILS(gpu, llmq_fake_quantize(gpu, hx, s, hs, NULL, dg), LLMQ_ERR_INVALID_ARG,
                 "y: device tensor while x is in host memory");
    ASSERT_FAILS(gpu, llmq_fake_quantize(gpu, dx, s, hs, NULL, dg), LLMQ_ERR_INVALID_ARG,
                 "scale is in host memory");
    ASSERT_FAILS(gpu, llmq_fake_quantize_backward(gpu, dx, s, ds, NULL, dg, 1.0f, dg, hds, NULL),
                 LLMQ_ERR_INVALID_ARG, "dscale");
    ASSERT_FAILS(gpu, llmq_fake_quantize_backward(gpu, dx, s, ds, NULL, hg, 1.0f, dg, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "dy");
    llmq_scheme_destroy(s);
    TEST_DESTROY(hx, hs, hg, hds, dx, ds, dg);
    llmq_context_destroy(gpu);
}

int main(void)
{
    llmq_context *ctx = NULL;
    const llmq_status st = llmq_context_create(&ctx, "cuda");
    if (st != LLMQ_OK) {
        printf("skipped: %s: %s\n", llmq_status_name(st), llmq_context_last_error(ctx));
        llmq_context_destroy(ctx);
        return 77;
    }
    printf("backend %s\n", llmq_context_backend_name(ctx));
    llmq_context_destroy(ctx);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(systematic_cases_match_cpu), cmocka_unit_test(random_cases_match_cpu),
        cmocka_unit_test(large_sums_deterministic),   cmocka_unit_test(nan_reported_at_sync),
        cmocka_unit_test(mixed_memory_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
