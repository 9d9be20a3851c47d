/* test_device_api.c - the device-memory API on a CPU context: what works without a device
 * (host copies, streams as no-ops) and what is refused with a message. Runs everywhere; the
 * device side is tests/cuda/test_cuda.c. SPDX-License-Identifier: MIT */
#include <string.h>

#include "testing.h"

static void device_memory_needs_a_device_backend(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {2, 3};
    llmq_tensor *t = (llmq_tensor *)1;
    ASSERT_FAILS(ctx, llmq_tensor_create_device(ctx, LLMQ_DTYPE_F32, 2, shape, &t),
                 LLMQ_ERR_UNSUPPORTED, "llmq_tensor_create_device: ctx: backend cpu-");
    assert_null(t);
    float host[6];
    ASSERT_FAILS(ctx, llmq_tensor_wrap_device(ctx, LLMQ_DTYPE_F32, 2, shape, host, 0, &t),
                 LLMQ_ERR_UNSUPPORTED, "has no device memory");
    ASSERT_FAILS(ctx, llmq_tensor_wrap_device(ctx, LLMQ_DTYPE_F32, 2, shape, NULL, 0, &t),
                 LLMQ_ERR_INVALID_ARG, "llmq_tensor_wrap_device: data=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_create_device(ctx, LLMQ_DTYPE_F32, 0, shape, &t),
                 LLMQ_ERR_INVALID_ARG, "ndim=0");
    assert_int_equal(llmq_tensor_create_device(NULL, LLMQ_DTYPE_F32, 2, shape, &t),
                     LLMQ_ERR_INVALID_ARG);
    llmq_context_destroy(ctx);
}

static void streams_and_sync_on_the_cpu(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    ASSERT_OK(ctx, llmq_context_set_stream(ctx, NULL));
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    int fake;
    ASSERT_FAILS(ctx, llmq_context_set_stream(ctx, &fake), LLMQ_ERR_UNSUPPORTED,
                 "llmq_context_set_stream: stream=");
    assert_int_equal(llmq_context_sync(NULL), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_context_set_stream(NULL, NULL), LLMQ_ERR_INVALID_ARG);
    llmq_context_destroy(ctx);
}

/* Host-to-host copies honour strides, and bring the scheme and parameter values along. */
static void host_copy_with_scheme(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    int8_t wide[2][5] = {{1, 2, 3, 99, 99}, {4, 5, 6, 99, 99}};
    const int64_t shape[2] = {2, 3};
    llmq_tensor *src = NULL, *dst = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, shape, wide, 5, &src));
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, src, s));
    float *sv = llmq_tensor_data(llmq_tensor_scale(src));
    int32_t *zv = llmq_tensor_data(llmq_tensor_zero_point(src));
    sv[0] = 0.5f, sv[1] = 0.25f, zv[0] = -3, zv[1] = 7;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &dst));
    assert_int_equal(llmq_tensor_memory(dst), LLMQ_MEMORY_HOST);
    assert_int_equal(llmq_tensor_memory(NULL), LLMQ_MEMORY_HOST);
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, src, dst));
    const int8_t *d = llmq_tensor_data(dst);
    assert_memory_equal(d, "\x01\x02\x03\x04\x05\x06", 6);
    assert_non_null(llmq_tensor_scheme(dst));
    assert_int_equal(llmq_scheme_granularity(llmq_tensor_scheme(dst)),
                     LLMQ_GRANULARITY_PER_CHANNEL);
    assert_true(((const float *)llmq_tensor_data(llmq_tensor_scale(dst)))[1] == 0.25f);
    assert_int_equal(((const int32_t *)llmq_tensor_data(llmq_tensor_zero_point(dst)))[0], -3);
    /* misuse */
    llmq_tensor *f = NULL, *other = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &f));
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, src, f), LLMQ_ERR_INVALID_ARG,
                 "llmq_tensor_copy: dst=f32 tensor: src is s8");
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 1, (const int64_t[]){6}, &other));
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, src, other), LLMQ_ERR_INVALID_ARG,
                 "shape differs");
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, src, src), LLMQ_ERR_INVALID_ARG, "overlaps");
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, NULL, dst), LLMQ_ERR_INVALID_ARG, "src=NULL");
    sv[1] = -1.0f; /* a bad parameter is refused before anything is written */
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, src, dst), LLMQ_ERR_INVALID_ARG,
                 "src.scale[1]=-1: must be a positive normal float");
    llmq_tensor_destroy(f);
    llmq_tensor_destroy(other);
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(dst);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* "cuda" on a machine without a driver or module explains itself, and "auto" is the CPU
 * there; with a device (tests/cuda runs then) both name it. */
static void cuda_reason_or_device(void **state)
{
    (void)state;
    llmq_context *ctx = NULL;
    const llmq_status st = llmq_context_create(&ctx, "cuda");
    if (st == LLMQ_OK) {
        assert_true(strncmp(llmq_context_backend_name(ctx), "cuda-sm", 7) == 0);
    } else {
        assert_int_equal(st, LLMQ_ERR_UNSUPPORTED);
        const char *m = llmq_context_last_error(ctx);
        assert_true(strstr(m, "llmq_context_create: backend=cuda: ") == m);
        assert_true(strstr(m, "driver") != NULL || strstr(m, "module") != NULL ||
                    strstr(m, "device") != NULL);
    }
    llmq_context_destroy(ctx);
    ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create(&ctx, "auto"));
    if (st != LLMQ_OK)
        assert_true(strncmp(llmq_context_backend_name(ctx), "cpu-", 4) == 0);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_memory_needs_a_device_backend),
        cmocka_unit_test(streams_and_sync_on_the_cpu),
        cmocka_unit_test(host_copy_with_scheme),
        cmocka_unit_test(cuda_reason_or_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
