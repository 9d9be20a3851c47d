/* llmq/tensor.h - dtypes and tensors (owning or borrowing). SPDX-License-Identifier: MIT */
#ifndef LLMQ_TENSOR_H
#define LLMQ_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"

/** @file
 * Element types and tensors: owning (llmq_tensor_create()) or viewing caller memory
 * (llmq_tensor_wrap()). */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Element types. F16 and BF16 are stored as uint16_t bit patterns. S4/U4 pack two elements
 * per byte (element 2i in the low nibble), S2/U2 four per byte (element 4i in the lowest
 * bits). Every row of a tensor starts on a byte boundary.
 */
typedef enum llmq_dtype {
    LLMQ_DTYPE_F32 = 0,  /**< IEEE binary32 */
    LLMQ_DTYPE_F16 = 1,  /**< IEEE binary16, as uint16_t bits */
    LLMQ_DTYPE_BF16 = 2, /**< bfloat16 (the high half of a binary32), as uint16_t bits */
    LLMQ_DTYPE_S8 = 3,   /**< int8_t codes, grid [-128, 127] */
    LLMQ_DTYPE_U8 = 4,   /**< uint8_t codes, grid [0, 255] */
    LLMQ_DTYPE_S4 = 5,   /**< 4-bit two's complement codes [-8, 7], two per byte */
    LLMQ_DTYPE_U4 = 6,   /**< 4-bit codes [0, 15], two per byte */
    LLMQ_DTYPE_S2 = 7,   /**< 2-bit two's complement codes [-2, 1], four per byte */
    LLMQ_DTYPE_U2 = 8,   /**< 2-bit codes [0, 3], four per byte */
    LLMQ_DTYPE_S32 = 9,  /**< int32_t: matmul accumulators, zero points */
    LLMQ_DTYPE_FORCE32_ = 0x7fffffff
} llmq_dtype;

/** Most dimensions a tensor may have. */
#define LLMQ_MAX_DIMS 4

/**
 * Opaque tensor: dtype, 1 to 4 dimensions (each >= 1), row-major. A tensor is seen as
 * rows x cols, where cols is the last dimension and rows the product of the others; rows are
 * `row_stride` bytes apart. A tensor of a quantized dtype may carry a scheme and its scale
 * and zero-point tensors (llmq_tensor_set_scheme()).
 */
typedef struct llmq_tensor llmq_tensor;
/** Opaque quantization scheme; declared here for llmq_tensor_scheme(), see llmq/scheme.h. */
typedef struct llmq_scheme llmq_scheme;

/**
 * Name of a dtype: "f32", "f16", "bf16", "s8", "u8", "s4", "u4", "s2", "u2", "s32".
 * @param dtype  any value
 * @return a static string; "unknown" for other values
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API const char *llmq_dtype_name(llmq_dtype dtype);

/**
 * Bits per element of a dtype (32, 16, 8, 4 or 2).
 * @param dtype  any value
 * @return the width; 0 for unknown values
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API uint32_t llmq_dtype_bits(llmq_dtype dtype);

/**
 * Allocate a tensor that owns zeroed, 64-byte aligned memory with packed rows
 * (row stride = ceil(cols * bits / 8) bytes).
 * @param ctx    context whose allocator is used; must outlive the tensor
 * @param dtype  element type
 * @param ndim   1..LLMQ_MAX_DIMS
 * @param shape  ndim sizes, each >= 1; borrowed for the call
 * @param out    receives the tensor; NULL on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (bad dtype, ndim, shape or size overflow),
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_create(llmq_context *ctx, llmq_dtype dtype,
                                                       int32_t ndim, const int64_t *shape,
                                                       llmq_tensor **out);

/**
 * View caller memory as a tensor, without copying. The memory is borrowed: it must stay valid
 * while the tensor lives, and is never freed by llmq.
 * @param ctx         context whose allocator holds the tensor's own state; must outlive it
 * @param dtype       element type
 * @param ndim        1..LLMQ_MAX_DIMS
 * @param shape       ndim sizes, each >= 1; borrowed for the call
 * @param data        first row; must not be NULL
 * @param row_stride  bytes between rows; 0 means packed rows; otherwise at least the packed
 *                    row size (a 2-D view into a wider matrix, for example)
 * @param out         receives the tensor; NULL on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (as llmq_tensor_create(), data NULL, stride too small),
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_wrap(llmq_context *ctx, llmq_dtype dtype,
                                                     int32_t ndim, const int64_t *shape,
                                                     void *data, size_t row_stride,
                                                     llmq_tensor **out);

/**
 * Destroy a tensor, its scheme copy and its parameter tensors; free its memory if it owns
 * it. NULL is a no-op.
 * @param t  the tensor, made by llmq_tensor_create(), llmq_tensor_wrap(),
 *           llmq_tensor_create_quantized() or llmq_model_tensor(); never one returned by
 *           llmq_tensor_scale() or llmq_tensor_zero_point(); invalid afterwards
 * @thread exclusive on t
 * @since 0.1
 */
LLMQ_API void llmq_tensor_destroy(llmq_tensor *t);

/** Element type of @p t. @param t  NULL allowed @return the dtype (LLMQ_DTYPE_F32 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API llmq_dtype llmq_tensor_dtype(const llmq_tensor *t);

/** Number of dimensions of @p t. @param t  NULL allowed @return 1..LLMQ_MAX_DIMS (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API int32_t llmq_tensor_ndim(const llmq_tensor *t);

/**
 * Size of dimension @p axis; negative axes count from the end (-1 is the last).
 * @param t     NULL allowed
 * @param axis  -ndim..ndim-1
 * @return the size; 0 for NULL or an axis out of range
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API int64_t llmq_tensor_dim(const llmq_tensor *t, int32_t axis);

/** Number of elements of @p t. @param t  NULL allowed @return the product of the dimensions
 *  (0 for NULL) @thread read-shared @since 0.1 */
LLMQ_API int64_t llmq_tensor_numel(const llmq_tensor *t);

/**
 * First byte of the first row. For a device tensor this is a device address: never
 * dereference it on the host; use llmq_tensor_copy() to read or write the elements.
 * @param t  NULL allowed
 * @return the data: owned by t, or the caller's memory for a wrapped tensor (NULL for NULL)
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API void *llmq_tensor_data(const llmq_tensor *t);

/** Bytes between consecutive rows. @param t  NULL allowed @return the row stride (0 for NULL)
 *  @thread read-shared @since 0.1 */
LLMQ_API size_t llmq_tensor_row_stride(const llmq_tensor *t);

/**
 * Bytes spanned from the first byte of the first row to the last byte of the last row,
 * i.e. (rows - 1) * row_stride + packed row size.
 * @param t  NULL allowed
 * @return the span in bytes (0 for NULL)
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API size_t llmq_tensor_nbytes(const llmq_tensor *t);

/** Where a tensor's elements, and its scale and zero-point tensors, live. */
typedef enum llmq_memory {
    LLMQ_MEMORY_HOST = 0,   /**< host memory: llmq_tensor_data() may be dereferenced */
    LLMQ_MEMORY_DEVICE = 1, /**< memory of the context's device (CUDA): a device address */
    LLMQ_MEMORY_FORCE32_ = 0x7fffffff
} llmq_memory;

/**
 * Allocate a tensor in device memory (cudaMalloc on the context's device), zeroed on the
 * context's stream, with packed rows. Setting a scheme on it (llmq_tensor_set_scheme())
 * gives it device parameter tensors.
 * @param ctx    a context with a device backend; must outlive the tensor
 * @param dtype  element type
 * @param ndim   1..LLMQ_MAX_DIMS
 * @param shape  ndim sizes, each >= 1; borrowed for the call
 * @param out    receives the tensor; NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (as llmq_tensor_create()); LLMQ_ERR_UNSUPPORTED (the
 *         context has no device backend); LLMQ_ERR_OUT_OF_MEMORY (device memory exhausted);
 *         LLMQ_ERR_BACKEND (another CUDA error, named in the message)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_create_device(llmq_context *ctx,
                                                              llmq_dtype dtype, int32_t ndim,
                                                              const int64_t *shape,
                                                              llmq_tensor **out);

/**
 * View caller device memory (a device pointer, e.g. from cudaMalloc or a framework's tensor)
 * as a device tensor, without copying. Borrowed: it must stay valid while the tensor lives.
 * @param ctx         a context with a device backend; must outlive the tensor
 * @param dtype       element type
 * @param ndim        1..LLMQ_MAX_DIMS
 * @param shape       ndim sizes, each >= 1; borrowed for the call
 * @param data        device address of the first row; must not be NULL
 * @param row_stride  bytes between rows; 0 means packed rows
 * @param out         receives the tensor; NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (as llmq_tensor_wrap()); LLMQ_ERR_UNSUPPORTED (the
 *         context has no device backend); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_wrap_device(llmq_context *ctx, llmq_dtype dtype,
                                                            int32_t ndim, const int64_t *shape,
                                                            void *data, size_t row_stride,
                                                            llmq_tensor **out);

/**
 * Memory of @p t.
 * @param t  NULL allowed
 * @return LLMQ_MEMORY_HOST or LLMQ_MEMORY_DEVICE (HOST for NULL)
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API llmq_memory llmq_tensor_memory(const llmq_tensor *t);

/**
 * Copy the elements of @p src into @p dst: host to device, device to host, device to device
 * or host to host, rows strided as each tensor says. When @p src carries a scheme, @p dst is
 * bound to the same scheme (unless it already has an equal one) and the scale and
 * zero-point values are copied too: one call uploads or downloads a quantized weight. Copying
 * into a scale or zero-point tensor of a device tensor from the host checks the values as
 * llmq_quantize() does, which is how parameters reach the device.
 *
 * Copies that read or write host memory return once the host memory may be used (they wait
 * for the context's stream); device-to-device copies are only queued on it.
 * @param ctx  the context whose backend owns the device memory involved
 * @param src  same dtype and shape as dst; must not overlap it
 * @param dst  written
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, dtype or shape differ, overlap, bad parameter
 *         values); LLMQ_ERR_UNSUPPORTED (device memory on a context without a device
 *         backend); LLMQ_ERR_OUT_OF_MEMORY; LLMQ_ERR_BACKEND (a CUDA error, named)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_tensor_copy(llmq_context *ctx, const llmq_tensor *src,
                                                     llmq_tensor *dst);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_TENSOR_H */
