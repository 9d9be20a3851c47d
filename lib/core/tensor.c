/* tensor.c - dtypes and tensors. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/gemm.h"

static const struct {
    const char *name;
    uint32_t bits;
} dtype_info[] = {
    [LLMQ_DTYPE_F32] = {"f32", 32}, [LLMQ_DTYPE_F16] = {"f16", 16}, [LLMQ_DTYPE_BF16] = {"bf16", 16},
    [LLMQ_DTYPE_S8] = {"s8", 8},    [LLMQ_DTYPE_U8] = {"u8", 8},    [LLMQ_DTYPE_S4] = {"s4", 4},
    [LLMQ_DTYPE_U4] = {"u4", 4},    [LLMQ_DTYPE_S2] = {"s2", 2},    [LLMQ_DTYPE_U2] = {"u2", 2},
    [LLMQ_DTYPE_S32] = {"s32", 32},
};

static bool dtype_valid(llmq_dtype d)
{
    return (unsigned)d < sizeof dtype_info / sizeof dtype_info[0];
}

const char *llmq_dtype_name(llmq_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_info[dtype].name : "unknown";
}

uint32_t llmq_dtype_bits(llmq_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_info[dtype].bits : 0;
}

bool llmq_dtype_is_quantized(llmq_dtype d)
{
    return d >= LLMQ_DTYPE_S8 && d <= LLMQ_DTYPE_U2;
}

bool llmq_dtype_is_float(llmq_dtype d)
{
    return d == LLMQ_DTYPE_F32 || d == LLMQ_DTYPE_F16 || d == LLMQ_DTYPE_BF16;
}

bool llmq_dtype_row_bytes(llmq_dtype dtype, int64_t n, size_t *bytes)
{
    const uint64_t bits = llmq_dtype_bits(dtype);
    if (n < 0 || (uint64_t)n > (UINT64_MAX - 7) / bits)
        return false;
    const uint64_t b = ((uint64_t)n * bits + 7) / 8;
    if (b > SIZE_MAX)
        return false;
    *bytes = (size_t)b;
    return true;
}

bool llmq_tensor_same_shape(const llmq_tensor *a, const llmq_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *llmq_shape_str(const llmq_tensor *t, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < t->ndim && n < size; i++) {
        int w = snprintf(buf + n, size - n, "%s%lld", i ? ", " : "[", (long long)t->shape[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

/* Validate and fill everything but the data pointer; fn names the public entry point. */
static llmq_status init_layout(llmq_context *ctx, const char *fn, llmq_tensor *t,
                               llmq_dtype dtype, int32_t ndim, const int64_t *shape,
                               size_t row_stride)
{
    if (!dtype_valid(dtype))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dtype=%d: unknown dtype", (int)dtype);
    if (ndim < 1 || ndim > LLMQ_MAX_DIMS)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "ndim=%d: must be 1..%d", (int)ndim,
                         LLMQ_MAX_DIMS);
    if (shape == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "shape=NULL: must point to %d sizes",
                         (int)ndim);
    int64_t rows = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "shape[%d]=%lld: must be >= 1",
                             (int)i, (long long)shape[i]);
        if (i + 1 < ndim) {
            if (rows > INT64_MAX / shape[i])
                return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                 "shape[%d]=%lld: element count overflows", (int)i,
                                 (long long)shape[i]);
            rows *= shape[i];
        }
        t->shape[i] = shape[i];
    }
    const int64_t cols = shape[ndim - 1];
    size_t row_bytes;
    if (!llmq_dtype_row_bytes(dtype, cols, &row_bytes) || rows > INT64_MAX / cols)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "shape[%d]=%lld: size overflows",
                         (int)(ndim - 1), (long long)cols);
    if (row_stride == 0)
        row_stride = row_bytes;
    if (row_stride < row_bytes)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "row_stride=%zu: smaller than one packed row (%zu bytes)", row_stride,
                         row_bytes);
    /* the span must be addressable: no size_t overflow, at most PTRDIFF_MAX bytes */
    if ((uint64_t)(rows - 1) > (SIZE_MAX - row_bytes) / row_stride ||
        (size_t)(rows - 1) * row_stride + row_bytes > (size_t)PTRDIFF_MAX)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "row_stride=%zu: size overflows",
                         row_stride);
    t->ctx = ctx;
    t->dtype = dtype;
    t->ndim = ndim;
    t->rows = rows;
    t->cols = cols;
    t->row_bytes = row_bytes;
    t->row_stride = row_stride;
    return LLMQ_OK;
}

static llmq_status new_tensor(llmq_context *ctx, const char *fn, llmq_dtype dtype, int32_t ndim,
                              const int64_t *shape, void *data, size_t row_stride,
                              llmq_tensor **out)
{
    llmq_tensor tmp;
    memset(&tmp, 0, sizeof tmp);
    LLMQ_TRY(init_layout(ctx, fn, &tmp, dtype, ndim, shape, row_stride));
    llmq_tensor *t = llmq_mem_alloc(ctx, sizeof *t);
    if (t == NULL)
        return llmq_fail_oom(ctx, fn, "tensor", sizeof *t);
    *t = tmp;
    if (data == NULL) {
        const size_t bytes = (size_t)(t->rows - 1) * t->row_stride + t->row_bytes;
        t->data = llmq_mem_calloc(ctx, bytes);
        if (t->data == NULL) {
            llmq_mem_free(ctx, t);
            return llmq_fail_oom(ctx, fn, "data", bytes);
        }
        t->owns_data = true;
    } else {
        t->data = data;
    }
    *out = t;
    return LLMQ_OK;
}

llmq_status llmq_tensor_create(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
                               const int64_t *shape, llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    return new_tensor(ctx, __func__, dtype, ndim, shape, NULL, 0, out);
}

llmq_status llmq_tensor_wrap(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
                             const int64_t *shape, void *data, size_t row_stride,
                             llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, data != NULL, "data=NULL: must point to the first row");
    LLMQ_TRY(new_tensor(ctx, __func__, dtype, ndim, shape, data, row_stride, out));
    if ((uintptr_t)data > UINTPTR_MAX - llmq_tensor_nbytes(*out)) {
        const size_t stride = (*out)->row_stride;
        llmq_tensor_destroy(*out);
        *out = NULL;
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, __func__,
                         "row_stride=%zu: the rows run past the end of the address space",
                         stride);
    }
    return LLMQ_OK;
}

void llmq_tensor_destroy(llmq_tensor *t)
{
    if (t == NULL)
        return;
    llmq_context *ctx = t->ctx;
    llmq_tensor_destroy(t->scale);
    llmq_tensor_destroy(t->zero_point);
    llmq_mem_free(ctx, t->packed);
    llmq_mem_free(ctx, t->scheme);
    if (t->owns_data)
        llmq_mem_free(ctx, t->data);
    llmq_mem_free(ctx, t);
}

llmq_dtype llmq_tensor_dtype(const llmq_tensor *t)
{
    return t != NULL ? t->dtype : LLMQ_DTYPE_F32;
}

int32_t llmq_tensor_ndim(const llmq_tensor *t)
{
    return t != NULL ? t->ndim : 0;
}

int64_t llmq_tensor_dim(const llmq_tensor *t, int32_t axis)
{
    if (t == NULL)
        return 0;
    if (axis < 0)
        axis += t->ndim;
    if (axis < 0 || axis >= t->ndim)
        return 0;
    return t->shape[axis];
}

int64_t llmq_tensor_numel(const llmq_tensor *t)
{
    return t != NULL ? t->rows * t->cols : 0;
}

void *llmq_tensor_data(const llmq_tensor *t)
{
    return t != NULL ? t->data : NULL;
}

size_t llmq_tensor_row_stride(const llmq_tensor *t)
{
    return t != NULL ? t->row_stride : 0;
}

size_t llmq_tensor_nbytes(const llmq_tensor *t)
{
    return t != NULL ? (size_t)(t->rows - 1) * t->row_stride + t->row_bytes : 0;
}

llmq_status llmq_tensor_check_unpacked(llmq_context *ctx, const char *fn, const char *name,
                                       const llmq_tensor *t)
{
    if (t != NULL && t->packed != NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "%s=packed: a tensor from llmq_matmul_pack_weights() is only usable as "
                         "the weights of llmq_matmul", name);
    return LLMQ_OK;
}

int32_t llmq_tensor_is_packed(const llmq_tensor *t)
{
    return t != NULL && t->packed != NULL;
}
