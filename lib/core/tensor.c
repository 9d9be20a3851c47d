/* tensor.c - dtypes and tensors. SPDX-License-Identifier: MIT */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "quant/scheme_impl.h"
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
                              const int64_t *shape, void *data, size_t row_stride, bool device,
                              llmq_tensor **out)
{
    llmq_tensor tmp;
    memset(&tmp, 0, sizeof tmp);
    LLMQ_TRY(init_layout(ctx, fn, &tmp, dtype, ndim, shape, row_stride));
    llmq_backend *be = NULL;
    if (device && (be = llmq_backend_for(ctx, true)) == NULL)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "ctx: backend %s has no device memory (create the context with "
                         "\"cuda\")", llmq_context_backend_name(ctx));
    llmq_tensor *t = llmq_mem_alloc(ctx, sizeof *t);
    if (t == NULL)
        return llmq_fail_oom(ctx, fn, "tensor", sizeof *t);
    *t = tmp;
    t->device = device;
    if (data == NULL) {
        const size_t bytes = (size_t)(t->rows - 1) * t->row_stride + t->row_bytes;
        if (device) {
            llmq_status st = be->ops->mem_alloc(be, bytes, &t->data);
            if (st == LLMQ_OK)
                st = be->ops->mem_set(be, t->data, 0, bytes);
            if (st != LLMQ_OK) {
                if (t->data != NULL)
                    be->ops->mem_free(be, t->data);
                llmq_mem_free(ctx, t);
                return llmq_backend_status(ctx, be, fn, st);
            }
        } else {
            t->data = llmq_mem_calloc(ctx, bytes);
        }
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
    return new_tensor(ctx, __func__, dtype, ndim, shape, NULL, 0, false, out);
}

static llmq_status wrap(llmq_context *ctx, const char *fn, llmq_dtype dtype, int32_t ndim,
                        const int64_t *shape, void *data, size_t row_stride, bool device,
                        llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    if (out == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    if (data == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "data=NULL: must point to the first row");
    LLMQ_TRY(new_tensor(ctx, fn, dtype, ndim, shape, data, row_stride, device, out));
    if ((uintptr_t)data > UINTPTR_MAX - llmq_tensor_nbytes(*out)) {
        const size_t stride = (*out)->row_stride;
        llmq_tensor_destroy(*out);
        *out = NULL;
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "row_stride=%zu: the rows run past the end of the address space",
                         stride);
    }
    return LLMQ_OK;
}

llmq_status llmq_tensor_wrap(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
                             const int64_t *shape, void *data, size_t row_stride,
                             llmq_tensor **out)
{
    return wrap(ctx, __func__, dtype, ndim, shape, data, row_stride, false, out);
}

llmq_status llmq_tensor_wrap_device(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
                                    const int64_t *shape, void *data, size_t row_stride,
                                    llmq_tensor **out)
{
    return wrap(ctx, __func__, dtype, ndim, shape, data, row_stride, true, out);
}

llmq_status llmq_tensor_create_device(llmq_context *ctx, llmq_dtype dtype, int32_t ndim,
                                      const int64_t *shape, llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    return new_tensor(ctx, __func__, dtype, ndim, shape, NULL, 0, true, out);
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
    if (t->owns_data && t->device)
        ctx->backend.ops->mem_free(&ctx->backend, t->data);
    else if (t->owns_data)
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

llmq_memory llmq_tensor_memory(const llmq_tensor *t)
{
    return t != NULL && t->device ? LLMQ_MEMORY_DEVICE : LLMQ_MEMORY_HOST;
}

void llmq_tensor_zp_range(const llmq_tensor *t, int32_t *lo, int32_t *hi)
{
    if (t->device || (t->packed != NULL && t->packed->bits == 4)) { /* kept, see tensor_impl.h */
        *lo = t->zp_lo;
        *hi = t->zp_hi;
        return;
    }
    /* a branch-free pass in 8 lanes, which compilers vectorize: llmq_matmul runs it on every
       call, over every group's zero point */
    const int32_t *z = t->zero_point->data;
    const int64_t n = llmq_tensor_numel(t->zero_point);
    int32_t lo8[8], hi8[8];
    for (int k = 0; k < 8; k++) {
        lo8[k] = INT32_MAX;
        hi8[k] = INT32_MIN;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            lo8[k] = z[i + k] < lo8[k] ? z[i + k] : lo8[k];
            hi8[k] = z[i + k] > hi8[k] ? z[i + k] : hi8[k];
        }
    for (; i < n; i++) {
        lo8[0] = z[i] < lo8[0] ? z[i] : lo8[0];
        hi8[0] = z[i] > hi8[0] ? z[i] : hi8[0];
    }
    int32_t l = lo8[0], h = hi8[0];
    for (int k = 1; k < 8; k++) {
        l = lo8[k] < l ? lo8[k] : l;
        h = hi8[k] > h ? hi8[k] : h;
    }
    *lo = l;
    *hi = h;
}

llmq_status llmq_tensors_backend(llmq_context *ctx, const char *fn, int n,
                                 const char *const *names, const llmq_tensor *const *tensors,
                                 llmq_backend **be)
{
    int first = -1;
    for (int i = 0; i < n; i++) {
        if (tensors[i] == NULL)
            continue;
        if (first < 0) {
            first = i;
        } else if (tensors[i]->device != tensors[first]->device) {
            const int dev = tensors[i]->device ? i : first, host = tensors[i]->device ? first : i;
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "%s: device tensor while %s is in host memory (move one with "
                             "llmq_tensor_copy)", names[dev], names[host]);
        }
    }
    const bool device = first >= 0 && tensors[first]->device;
    *be = llmq_backend_for(ctx, device);
    if (*be == NULL)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "%s: device tensor on a context whose backend %s has no device memory",
                         names[first], llmq_context_backend_name(ctx));
    return LLMQ_OK;
}

static bool same_scheme(const llmq_scheme *a, const llmq_scheme *b)
{
    return a->dtype == b->dtype && a->symmetry == b->symmetry &&
           a->granularity == b->granularity && a->axis == b->axis &&
           a->group_size == b->group_size && a->rounding == b->rounding && a->seed == b->seed &&
           a->numerics == b->numerics && a->range_min == b->range_min &&
           a->range_max == b->range_max;
}

/* Values copied from the host into a parameter tensor of a device tensor: checked, and the
 * zero-point range recorded on the owner. */
static llmq_status check_param_upload(llmq_context *ctx, const char *fn, const llmq_tensor *src,
                                      llmq_tensor *dst)
{
    llmq_tensor *owner = dst->owner;
    if (owner == NULL || !dst->device)
        return LLMQ_OK;
    if (dst == owner->scale) {
        for (int64_t r = 0; r < src->rows; r++) {
            const float *v = (const float *)((const char *)src->data +
                                             (size_t)r * src->row_stride);
            for (int64_t c = 0; c < src->cols; c++)
                if (!(v[c] >= FLT_MIN && v[c] <= FLT_MAX))
                    return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                     "src[%lld]=%g: a scale must be a positive normal float",
                                     (long long)(r * src->cols + c), (double)v[c]);
        }
        return LLMQ_OK;
    }
    if (!src->device) {
        const llmq_qgrid g = llmq_scheme_grid(owner->scheme);
        int32_t lo = g.qmax, hi = g.qmin;
        for (int64_t r = 0; r < src->rows; r++) {
            const int32_t *v = (const int32_t *)((const char *)src->data +
                                                 (size_t)r * src->row_stride);
            for (int64_t c = 0; c < src->cols; c++) {
                if (v[c] < g.qmin || v[c] > g.qmax)
                    return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                     "src[%lld]=%d: a zero point outside the %s grid [%d, %d]",
                                     (long long)(r * src->cols + c), (int)v[c],
                                     llmq_dtype_name(owner->dtype), (int)g.qmin, (int)g.qmax);
                lo = v[c] < lo ? v[c] : lo;
                hi = v[c] > hi ? v[c] : hi;
            }
        }
        owner->zp_lo = lo;
        owner->zp_hi = hi;
    } else if (src->owner != NULL && src == src->owner->zero_point &&
               src->owner->scheme != NULL) {
        llmq_tensor_zp_range(src->owner, &owner->zp_lo, &owner->zp_hi);
    } else { /* values the host never saw: assume the whole grid */
        const llmq_qgrid g = llmq_scheme_grid(owner->scheme);
        owner->zp_lo = g.qmin;
        owner->zp_hi = g.qmax;
    }
    return LLMQ_OK;
}

static llmq_status copy_elements(llmq_context *ctx, const char *fn, const llmq_tensor *src,
                                 llmq_tensor *dst)
{
    if (!src->device && !dst->device) {
        for (int64_t r = 0; r < src->rows; r++)
            memcpy((char *)dst->data + (size_t)r * dst->row_stride,
                   (const char *)src->data + (size_t)r * src->row_stride, src->row_bytes);
        return LLMQ_OK;
    }
    llmq_backend *be = llmq_backend_for(ctx, true);
    if (be == NULL)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "%s: device tensor on a context whose backend %s has no device memory",
                         src->device ? "src" : "dst", llmq_context_backend_name(ctx));
    const llmq_copy_kind kind = !src->device   ? LLMQ_COPY_HOST_TO_DEVICE
                                : !dst->device ? LLMQ_COPY_DEVICE_TO_HOST
                                               : LLMQ_COPY_DEVICE_TO_DEVICE;
    return llmq_backend_status(ctx, be, fn,
                               be->ops->mem_copy(be, dst->data, dst->row_stride, src->data,
                                                 src->row_stride, src->row_bytes, src->rows,
                                                 kind));
}

static llmq_status copy_tensor(llmq_context *ctx, const char *fn, const llmq_tensor *src,
                               llmq_tensor *dst)
{
    char a[96], b[96];
    if (src == NULL || dst == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must be a tensor",
                         src == NULL ? "src" : "dst");
    if (src->dtype != dst->dtype)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dst=%s tensor: src is %s",
                         llmq_dtype_name(dst->dtype), llmq_dtype_name(src->dtype));
    if (!llmq_tensor_same_shape(src, dst))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dst=%s: shape differs from src=%s",
                         llmq_shape_str(dst, a, sizeof a), llmq_shape_str(src, b, sizeof b));
    const char *s0 = src->data, *d0 = dst->data;
    if (s0 < d0 + llmq_tensor_nbytes(dst) && d0 < s0 + llmq_tensor_nbytes(src))
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "dst=%p: overlaps src=%p", dst->data,
                         src->data);
    if (src->scheme != NULL && !src->device)
        LLMQ_TRY(llmq_tensor_check_params(ctx, fn, "src", src, true));
    if (!src->device)
        LLMQ_TRY(check_param_upload(ctx, fn, src, dst));
    LLMQ_TRY(copy_elements(ctx, fn, src, dst));
    if (src->device)
        LLMQ_TRY(check_param_upload(ctx, fn, src, dst));
    if (src->scheme == NULL)
        return LLMQ_OK;
    if (dst->scheme == NULL || !same_scheme(src->scheme, dst->scheme))
        LLMQ_TRY(llmq_tensor_set_scheme(ctx, dst, src->scheme));
    LLMQ_TRY(copy_tensor(ctx, fn, src->scale, dst->scale));
    return copy_tensor(ctx, fn, src->zero_point, dst->zero_point);
}

llmq_status llmq_tensor_copy(llmq_context *ctx, const llmq_tensor *src, llmq_tensor *dst)
{
    LLMQ_CHECK_CONTEXT(ctx);
    return copy_tensor(ctx, __func__, src, dst);
}

llmq_status llmq_host_backend(llmq_context *ctx, const char *fn, int n, const char *const *names,
                              const llmq_tensor *const *tensors, llmq_backend **be)
{
    for (int i = 0; i < n; i++)
        if (tensors[i] != NULL && tensors[i]->device)
            return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                             "%s: a device tensor; this operation runs on the CPU only (copy it "
                             "to host memory with llmq_tensor_copy)", names[i]);
    *be = llmq_backend_for(ctx, false);
    return LLMQ_OK;
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

bool llmq_tensors_overlap(const llmq_tensor *a, const llmq_tensor *b)
{
    const char *a0 = a->data, *b0 = b->data;
    return a0 < b0 + llmq_tensor_nbytes(b) && b0 < a0 + llmq_tensor_nbytes(a);
}

int32_t llmq_tensor_is_packed(const llmq_tensor *t)
{
    return t != NULL && t->packed != NULL;
}
