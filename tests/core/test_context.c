/* test_context.c - context creation, backend choice, CPU tier caps, options ABI, custom
 * allocators, messages, version and build information. SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "testing.h"

/* True when this machine has a CUDA device and the module (then "auto" picks CUDA). */
static int have_cuda(void)
{
    llmq_context *ctx = NULL;
    const llmq_status st = llmq_context_create(&ctx, "cuda");
    llmq_context_destroy(ctx);
    return st == LLMQ_OK;
}

static void cpu_and_auto(void **state)
{
    (void)state;
    const char *names[] = {"cpu", "auto", NULL};
    for (int i = 0; i < 3; i++) {
        llmq_context *ctx = NULL;
        ASSERT_OK(ctx, llmq_context_create(&ctx, names[i]));
        assert_non_null(ctx);
        assert_string_equal(llmq_context_last_error(ctx), "");
        const char *want = i > 0 && have_cuda() ? "cuda-" : "cpu-";
        assert_true(strncmp(llmq_context_backend_name(ctx), want, strlen(want)) == 0);
        assert_true(llmq_context_cpu_isa(ctx) >= LLMQ_CPU_ISA_SCALAR);
        assert_true(llmq_context_cpu_isa(ctx) <= llmq_context_host_isa(ctx));
        llmq_context_destroy(ctx);
    }
    llmq_context_destroy(NULL);
}

/* "cuda" without a CUDA backend: a context comes back holding the reason, and it refuses work. */
static void cuda_unsupported_with_message(void **state)
{
    (void)state;
    if (have_cuda())
        skip(); /* a machine with a device: tests/cuda covers it */
    llmq_context *ctx = NULL;
    ASSERT_FAILS(ctx, llmq_context_create(&ctx, "cuda"), LLMQ_ERR_UNSUPPORTED,
                 "llmq_context_create: backend=cuda:");
    assert_non_null(ctx);
    const int64_t shape[1] = {4};
    llmq_tensor *t = NULL;
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, shape, &t), LLMQ_ERR_STATE,
                 "its creation failed");
    assert_null(t);
    llmq_context_destroy(ctx);
}

static void unknown_backend(void **state)
{
    (void)state;
    llmq_context *ctx = NULL;
    ASSERT_FAILS(ctx, llmq_context_create(&ctx, "gpu"), LLMQ_ERR_INVALID_ARG,
                 "llmq_context_create: backend=gpu: expected \"auto\", \"cpu\" or \"cuda\"");
    llmq_context_destroy(ctx);
    assert_int_equal(llmq_context_create(NULL, "cpu"), LLMQ_ERR_INVALID_ARG);
}

static void environment_variables(void **state)
{
    (void)state;
    llmq_context *ctx = NULL;
    setenv("LLMQ_BACKEND", "cpu", 1);
    ASSERT_OK(ctx, llmq_context_create(&ctx, NULL));
    llmq_context_destroy(ctx);
    setenv("LLMQ_BACKEND", "tpu", 1);
    ASSERT_FAILS(ctx, llmq_context_create(&ctx, NULL), LLMQ_ERR_INVALID_ARG, "backend=tpu");
    llmq_context_destroy(ctx);
    unsetenv("LLMQ_BACKEND");

    setenv("LLMQ_CPU_ISA", "scalar", 1);
    ASSERT_OK(ctx, llmq_context_create(&ctx, "cpu"));
    assert_int_equal(llmq_context_cpu_isa(ctx), LLMQ_CPU_ISA_SCALAR);
    assert_string_equal(llmq_context_backend_name(ctx), "cpu-scalar");
    llmq_context_destroy(ctx);
    /* a cap above the host only means "no cap" */
    setenv("LLMQ_CPU_ISA", "avx512", 1);
    ASSERT_OK(ctx, llmq_context_create(&ctx, "cpu"));
    assert_true(llmq_context_cpu_isa(ctx) <= llmq_context_host_isa(ctx));
    llmq_context_destroy(ctx);
    setenv("LLMQ_CPU_ISA", "avx9", 1);
    ASSERT_FAILS(ctx, llmq_context_create(&ctx, "cpu"), LLMQ_ERR_INVALID_ARG,
                 "LLMQ_CPU_ISA=avx9: expected scalar, avx2, avxvnni or avx512");
    llmq_context_destroy(ctx);
    /* the option wins over the environment */
    llmq_context_options o;
    ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
    o.max_isa = LLMQ_CPU_ISA_SCALAR;
    ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
    assert_int_equal(llmq_context_cpu_isa(ctx), LLMQ_CPU_ISA_SCALAR);
    llmq_context_destroy(ctx);
    unsetenv("LLMQ_CPU_ISA");
}

static void options_abi_and_allocator(void **state)
{
    (void)state;
    llmq_context_options o;
    llmq_context *ctx = NULL;
    assert_int_equal(llmq_context_options_defaults(NULL, sizeof o), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_context_options_defaults(&o, 8), LLMQ_ERR_ABI);
    ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
    assert_int_equal(o.size, sizeof o);
    assert_null(o.backend);

    o.size = 8; /* older than the first version */
    ASSERT_FAILS(ctx, llmq_context_create_with_options(&ctx, &o), LLMQ_ERR_ABI, "size=8");
    llmq_context_destroy(ctx);
    o.size = sizeof o;
    o.reserved[3] = 1;
    ASSERT_FAILS(ctx, llmq_context_create_with_options(&ctx, &o), LLMQ_ERR_ABI, "reserved");
    llmq_context_destroy(ctx);
    o.reserved[3] = 0;
    o.max_isa = (llmq_cpu_isa)17;
    ASSERT_FAILS(ctx, llmq_context_create_with_options(&ctx, &o), LLMQ_ERR_INVALID_ARG,
                 "max_isa=17: unknown CPU tier");
    llmq_context_destroy(ctx);
    o.max_isa = LLMQ_CPU_ISA_DEFAULT;
    o.allocator.alloc = test_allocator_alloc;
    ASSERT_FAILS(ctx, llmq_context_create_with_options(&ctx, &o), LLMQ_ERR_INVALID_ARG,
                 "allocator: alloc and free must both be set");
    llmq_context_destroy(ctx);

    /* everything comes from the caller's allocator and goes back to it */
    test_allocator ca = {.fail_at = -1};
    o.allocator.free = test_allocator_free;
    o.allocator.user = &ca;
    ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
    const int64_t shape[2] = {3, 5};
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_GROUP, 0, 2);
    llmq_tensor *q = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    assert_true(ca.live >= 6); /* context, scheme, tensor + data, scheme copy, params */
    llmq_tensor_destroy(q);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
    assert_int_equal(ca.live, 0);
    /* NULL options are the defaults */
    ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, NULL));
    llmq_context_destroy(ctx);
}

/* Fail allocation n for n = 0, 1, ... through a whole quantize sequence: each failure is
 * LLMQ_ERR_OUT_OF_MEMORY with nothing leaked, until the sequence succeeds. */
static void out_of_memory_torture(void **state)
{
    (void)state;
    int succeeded = 0;
    for (long n = 0; n < 100 && !succeeded; n++) {
        test_allocator ca = {.fail_at = n};
        llmq_context_options o;
        ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
        o.allocator = test_allocator_of(&ca);
        llmq_context *ctx = NULL;
        llmq_scheme *s = NULL;
        llmq_tensor *x = NULL, *q = NULL;
        const int64_t shape[2] = {4, 6};
        llmq_status st = llmq_context_create_with_options(&ctx, &o);
        if (st == LLMQ_OK)
            st = llmq_scheme_create(ctx, LLMQ_DTYPE_S4, &s);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_GROUP);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_group_size(s, 4);
        if (st == LLMQ_OK)
            st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &x);
        if (st == LLMQ_OK) {
            st = llmq_tensor_create_quantized(ctx, s, 2, shape, &q);
            if (st != LLMQ_OK)
                assert_null(q); /* outputs are NULL on failure */
        }
        if (st == LLMQ_OK)
            st = llmq_quantize_dynamic(ctx, x, q);
        if (st == LLMQ_OK)
            succeeded = 1;
        else
            assert_int_equal(st, LLMQ_ERR_OUT_OF_MEMORY);
        if (st != LLMQ_OK && ctx != NULL)
            assert_non_null(strstr(llmq_context_last_error(ctx), "allocation failed"));
        llmq_tensor_destroy(q);
        llmq_tensor_destroy(x);
        llmq_scheme_destroy(s);
        llmq_context_destroy(ctx);
        assert_int_equal(ca.live, 0);
    }
    assert_true(succeeded);
}

/* The same for the thread pool, packed weights and the matmul workspace: every failure is
 * LLMQ_ERR_OUT_OF_MEMORY, leaves the previous state in force and leaks nothing. */
static void threads_and_matmul_out_of_memory(void **state)
{
    (void)state;
    int succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        test_allocator ca = {.fail_at = -1};
        llmq_context_options o;
        ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
        o.allocator = test_allocator_of(&ca);
        llmq_context *ctx = NULL;
        ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
        ca.fail_at = ca.total + n; /* fail the n-th allocation after creation */
        llmq_scheme *s = NULL;
        llmq_tensor *a = NULL, *b = NULL, *bp = NULL, *c = NULL;
        llmq_status st = llmq_context_set_threads(ctx, 3);
        if (st != LLMQ_OK)
            assert_int_equal(llmq_context_threads(ctx), 1);
        if (st == LLMQ_OK)
            st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &s);
        if (st == LLMQ_OK)
            st = llmq_tensor_create_quantized(ctx, s, 2, (const int64_t[]){40, 300}, &a);
        if (st == LLMQ_OK)
            st = llmq_tensor_create_quantized(ctx, s, 2, (const int64_t[]){70, 300}, &b);
        if (st == LLMQ_OK) {
            st = llmq_matmul_pack_weights(ctx, b, NULL, &bp);
            if (st != LLMQ_OK)
                assert_null(bp);
        }
        if (st == LLMQ_OK)
            st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){40, 70}, &c);
        if (st == LLMQ_OK)
            st = llmq_matmul(ctx, a, bp, NULL, c);
        if (st == LLMQ_OK)
            st = llmq_matmul(ctx, a, b, NULL, c);
        if (st == LLMQ_OK)
            succeeded = 1;
        else
            assert_int_equal(st, LLMQ_ERR_OUT_OF_MEMORY);
        if (st != LLMQ_OK && strstr(llmq_context_last_error(ctx), "allocation failed") == NULL)
            fail_msg("n=%ld: %s", n, llmq_context_last_error(ctx));
        llmq_tensor_destroy(a);
        llmq_tensor_destroy(b);
        llmq_tensor_destroy(bp);
        llmq_tensor_destroy(c);
        llmq_scheme_destroy(s);
        llmq_context_destroy(ctx);
        assert_int_equal(ca.live, 0);
    }
    assert_true(succeeded);
}

static void messages_name_function_argument_reason(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_scheme *s = NULL;
    ASSERT_FAILS(ctx, llmq_scheme_create(ctx, LLMQ_DTYPE_F32, &s), LLMQ_ERR_INVALID_ARG,
                 "llmq_scheme_create: dtype=f32: a scheme needs a quantized dtype");
    /* success leaves the last message untouched */
    ASSERT_OK(ctx, llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &s));
    assert_non_null(strstr(llmq_context_last_error(ctx), "dtype=f32"));
    llmq_scheme_destroy(s);
    assert_string_equal(llmq_context_last_error(NULL), "");
    assert_string_equal(llmq_context_backend_name(NULL), "");
    assert_int_equal(llmq_context_cpu_isa(NULL), LLMQ_CPU_ISA_DEFAULT);
    llmq_context_destroy(ctx);
}

static void version_and_build_info(void **state)
{
    (void)state;
    assert_int_equal(llmq_version_number(), LLMQ_VERSION_NUMBER);
    assert_int_equal(LLMQ_VERSION_NUMBER,
                     LLMQ_VERSION_MAJOR * 10000 + LLMQ_VERSION_MINOR * 100 + LLMQ_VERSION_PATCH);
    assert_string_equal(llmq_version_string(), LLMQ_VERSION_STRING);
    assert_string_equal(LLMQ_VERSION_STRING, LLMQ_PROJECT_VERSION); /* meson.build agrees */
    const char *info = llmq_build_info();
    assert_non_null(strstr(info, "version: " LLMQ_VERSION_STRING "\n"));
    assert_non_null(strstr(info, "backends: cpu"));
    assert_non_null(strstr(info, "cpu isas: scalar"));
    assert_non_null(strstr(info, "cuda archs: "));
    assert_string_equal(llmq_cpu_isa_name(LLMQ_CPU_ISA_AVX512), "avx512");
    assert_string_equal(llmq_cpu_isa_name(LLMQ_CPU_ISA_AVXVNNI), "avxvnni");
    assert_string_equal(llmq_cpu_isa_name((llmq_cpu_isa)9), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpu_and_auto),
        cmocka_unit_test(cuda_unsupported_with_message),
        cmocka_unit_test(unknown_backend),
        cmocka_unit_test(environment_variables),
        cmocka_unit_test(options_abi_and_allocator),
        cmocka_unit_test(out_of_memory_torture),
        cmocka_unit_test(threads_and_matmul_out_of_memory),
        cmocka_unit_test(messages_name_function_argument_reason),
        cmocka_unit_test(version_and_build_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
