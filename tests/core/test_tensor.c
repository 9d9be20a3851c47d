/* test_tensor.c - tensor creation, wrapping, layout and sub-byte sizes.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>

#include "testing.h"

static void dtype_names_and_bits(void **state)
{
    (void)state;
    static const struct {
        llmq_dtype d;
        const char *name;
        uint32_t bits;
    } t[] = {
        {LLMQ_DTYPE_F32, "f32", 32}, {LLMQ_DTYPE_F16, "f16", 16}, {LLMQ_DTYPE_BF16, "bf16", 16},
        {LLMQ_DTYPE_S8, "s8", 8},    {LLMQ_DTYPE_U8, "u8", 8},    {LLMQ_DTYPE_S4, "s4", 4},
        {LLMQ_DTYPE_U4, "u4", 4},    {LLMQ_DTYPE_S2, "s2", 2},    {LLMQ_DTYPE_U2, "u2", 2},
        {LLMQ_DTYPE_S32, "s32", 32},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_string_equal(llmq_dtype_name(t[i].d), t[i].name);
        assert_int_equal(llmq_dtype_bits(t[i].d), t[i].bits);
    }
    assert_string_equal(llmq_dtype_name((llmq_dtype)99), "unknown");
    assert_int_equal(llmq_dtype_bits((llmq_dtype)-1), 0);
}

/* Packed rows start on a byte boundary: bytes per row = ceil(cols * bits / 8). */
static void packed_sizes(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const struct {
        llmq_dtype d;
        int64_t rows, cols;
        size_t stride, nbytes;
    } t[] = {
        {LLMQ_DTYPE_S4, 3, 5, 3, 9},    {LLMQ_DTYPE_U4, 1, 1, 1, 1},
        {LLMQ_DTYPE_S2, 2, 5, 2, 4},    {LLMQ_DTYPE_U2, 4, 8, 2, 8},
        {LLMQ_DTYPE_S8, 3, 17, 17, 51}, {LLMQ_DTYPE_F16, 2, 3, 6, 12},
        {LLMQ_DTYPE_F32, 1, 1000, 4000, 4000}, {LLMQ_DTYPE_S32, 2, 2, 8, 16},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const int64_t shape[2] = {t[i].rows, t[i].cols};
        llmq_tensor *x = NULL;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, t[i].d, 2, shape, &x));
        assert_int_equal(llmq_tensor_row_stride(x), t[i].stride);
        assert_int_equal(llmq_tensor_nbytes(x), t[i].nbytes);
        assert_int_equal(llmq_tensor_numel(x), t[i].rows * t[i].cols);
        assert_int_equal((uintptr_t)llmq_tensor_data(x) % 64, 0);
        llmq_tensor_destroy(x);
    }
    llmq_context_destroy(ctx);
}

static void shapes_and_dims(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[4] = {2, 3, 4, 5};
    for (int32_t nd = 1; nd <= 4; nd++) {
        llmq_tensor *x = NULL;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, nd, shape, &x));
        assert_int_equal(llmq_tensor_ndim(x), nd);
        int64_t n = 1;
        for (int32_t i = 0; i < nd; i++) {
            assert_int_equal(llmq_tensor_dim(x, i), shape[i]);
            assert_int_equal(llmq_tensor_dim(x, i - nd), shape[i]); /* negative axes */
            n *= shape[i];
        }
        assert_int_equal(llmq_tensor_dim(x, nd), 0);
        assert_int_equal(llmq_tensor_dim(x, -nd - 1), 0);
        assert_int_equal(llmq_tensor_numel(x), n);
        const float *v = llmq_tensor_data(x);
        for (int64_t i = 0; i < n; i++)
            assert_true(v[i] == 0.0f); /* owned memory starts zeroed */
        llmq_tensor_destroy(x);
    }
    llmq_context_destroy(ctx);
}

static void invalid_layouts(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_tensor *x = (llmq_tensor *)&x; /* must be reset to NULL on failure */
    const int64_t ok[2] = {2, 3}, zero[2] = {2, 0}, neg[2] = {-1, 3};
    const int64_t huge[4] = {INT64_MAX / 2, 4, 1, 1};
    float buf[6];
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 0, ok, &x), LLMQ_ERR_INVALID_ARG,
                 "llmq_tensor_create: ndim=0: must be 1..4");
    assert_null(x);
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 5, ok, &x), LLMQ_ERR_INVALID_ARG,
                 "ndim=5");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, zero, &x), LLMQ_ERR_INVALID_ARG,
                 "shape[1]=0: must be >= 1");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, neg, &x), LLMQ_ERR_INVALID_ARG,
                 "shape[0]=-1");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, (llmq_dtype)42, 2, ok, &x), LLMQ_ERR_INVALID_ARG,
                 "dtype=42: unknown dtype");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, NULL, &x), LLMQ_ERR_INVALID_ARG,
                 "shape=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 4, huge, &x), LLMQ_ERR_INVALID_ARG,
                 "overflows");
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, ok, NULL, 0, &x),
                 LLMQ_ERR_INVALID_ARG, "llmq_tensor_wrap: data=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, ok, buf, 8, &x),
                 LLMQ_ERR_INVALID_ARG, "row_stride=8: smaller than one packed row (12 bytes)");
    const int64_t three[2] = {3, 2};
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, three, buf, SIZE_MAX / 2, &x),
                 LLMQ_ERR_INVALID_ARG, "row_stride");
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, ok, buf, SIZE_MAX / 2, &x),
                 LLMQ_ERR_INVALID_ARG, "row_stride"); /* the span passes the address space end */
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, ok, NULL),
                 LLMQ_ERR_INVALID_ARG, "out=NULL");
    llmq_context_destroy(ctx);
}

static void wrap_borrows(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float buf[12] = {0};
    const int64_t shape[2] = {2, 3};
    llmq_tensor *x = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, buf, 24, &x));
    assert_ptr_equal(llmq_tensor_data(x), buf);
    assert_int_equal(llmq_tensor_row_stride(x), 24);
    assert_int_equal(llmq_tensor_nbytes(x), 36);
    llmq_tensor_destroy(x); /* must not free buf (ASan would catch it) */
    buf[0] = 1.0f;
    llmq_tensor_destroy(NULL);
    llmq_context_destroy(ctx);
}

static void getters_accept_null(void **state)
{
    (void)state;
    assert_int_equal(llmq_tensor_ndim(NULL), 0);
    assert_int_equal(llmq_tensor_dim(NULL, 0), 0);
    assert_int_equal(llmq_tensor_numel(NULL), 0);
    assert_null(llmq_tensor_data(NULL));
    assert_int_equal(llmq_tensor_row_stride(NULL), 0);
    assert_int_equal(llmq_tensor_nbytes(NULL), 0);
    assert_null(llmq_tensor_scheme(NULL));
    assert_null(llmq_tensor_scale(NULL));
    assert_null(llmq_tensor_zero_point(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dtype_names_and_bits), cmocka_unit_test(packed_sizes),
        cmocka_unit_test(shapes_and_dims),      cmocka_unit_test(invalid_layouts),
        cmocka_unit_test(wrap_borrows),         cmocka_unit_test(getters_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
