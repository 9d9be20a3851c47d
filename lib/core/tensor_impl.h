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
    /* quantization: set by llmq_tensor_set_scheme, owned */
    llmq_scheme *scheme;
    llmq_tensor *scale, *zero_point;
    llmq_param_map map;
    /* llmq_matmul_pack_weights(): weights in the kernels' panel layout (owned; data points at
     * packed->panels), usable only as the B operand of llmq_matmul */
    llmq_packed_b *packed;
};

/* Refuse a packed weight where a plain tensor is needed (message names `name`). */
llmq_status llmq_tensor_check_unpacked(llmq_context *ctx, const char *fn, const char *name,
                                       const llmq_tensor *t);

/* Packed bytes of n elements of dtype: ceil(n * bits / 8); false on overflow. */
bool llmq_dtype_row_bytes(llmq_dtype dtype, int64_t n, size_t *bytes);

/* True for S8, U8, S4, U4, S2, U2. */
bool llmq_dtype_is_quantized(llmq_dtype dtype);

/* True for F32, F16, BF16. */
bool llmq_dtype_is_float(llmq_dtype dtype);

/* Same ndim and sizes. */
bool llmq_tensor_same_shape(const llmq_tensor *a, const llmq_tensor *b);

/* Writes "[d0, d1, ...]" into buf (for messages). */
const char *llmq_shape_str(const llmq_tensor *t, char *buf, size_t size);

#endif
