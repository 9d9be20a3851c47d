/* tensor_impl.h - the tensor's private layout (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CORE_TENSOR_IMPL_H
#define LLMQ_CORE_TENSOR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "llmq/tensor.h"

struct llmq_tensor {
    llmq_context *ctx; /* allocator of data, scheme and parameters */
    llmq_dtype dtype;
    int32_t ndim;
    int64_t shape[LLMQ_MAX_DIMS];
    int64_t rows, cols;   /* the rows x cols view every kernel uses */
    size_t row_bytes;     /* packed bytes of one row */
    size_t row_stride;    /* bytes between rows, >= row_bytes */
    void *data;
    bool owns_data;
    bool device; /* data (and the parameter tensors) are device memory of ctx's backend */
    /* quantization: set by llmq_tensor_set_scheme, owned */
    llmq_scheme *scheme;
    llmq_tensor *scale, *zero_point;
    llmq_param_map map;
    /* device tensors with a scheme: the range of the zero points as the host knows it without
     * reading device memory, kept by llmq_tensor_set_scheme, llmq_tensor_copy and the device
     * kernels that write parameters (the grid's bounds when unknown); for a 4-bit packed
     * weight, the range of the parameter copies it is read with (set by packing) */
    int32_t zp_lo, zp_hi;
    /* parameter tensors: the quantized tensor they belong to, else NULL */
    llmq_tensor *owner;
    /* llmq_matmul_pack_weights(): weights in the kernels' panel layout (owned; data points at
     * packed->panels), usable only as the B operand of llmq_matmul */
    llmq_packed_b *packed;
};

/* Range of the zero points of a quantized tensor with a scheme: read from host memory, or the
 * range the host keeps for a device tensor. */
void llmq_tensor_zp_range(const llmq_tensor *t, int32_t *lo, int32_t *hi);

/* Entry-point check that every tensor of an op lives in the same memory, and that the context
 * can run the op there. Returns the backend through *be, or fails with a message. names and
 * tensors are parallel arrays of n entries; NULL tensors are skipped. */
/* For operations that only the CPU implements: every non-NULL tensor must be in host memory
 * (else LLMQ_ERR_UNSUPPORTED naming it); *be is the context's CPU backend (its CPU tier on a
 * device context). */
llmq_status llmq_host_backend(llmq_context *ctx, const char *fn, int n, const char *const *names,
                              const llmq_tensor *const *tensors, llmq_backend **be);

llmq_status llmq_tensors_backend(llmq_context *ctx, const char *fn, int n, const char *const *names,
                                 const llmq_tensor *const *tensors, llmq_backend **be);

/* Refuse a packed weight where a plain tensor is needed (message names `name`). */
llmq_status llmq_tensor_check_unpacked(llmq_context *ctx, const char *fn, const char *name,
                                       const llmq_tensor *t);

/* Packed bytes of n elements of dtype: ceil(n * bits / 8); false on overflow. */
bool llmq_dtype_row_bytes(llmq_dtype dtype, int64_t n, size_t *bytes);

/* True for S8, U8, S4, U4, S2, U2. */
bool llmq_dtype_is_quantized(llmq_dtype dtype);

/* True for F32, F16, BF16. */
bool llmq_dtype_is_float(llmq_dtype dtype);

/* Whether the memory spans of two tensors intersect. */
bool llmq_tensors_overlap(const llmq_tensor *a, const llmq_tensor *b);

/* Same ndim and sizes. */
bool llmq_tensor_same_shape(const llmq_tensor *a, const llmq_tensor *b);

/* Writes "[d0, d1, ...]" into buf (for messages). */
const char *llmq_shape_str(const llmq_tensor *t, char *buf, size_t size);

#endif
