/* rows.h - helpers of the CPU kernels' row loops: float rows of any float dtype to and from
 * f32 working buffers, the NaN scan (internal, static inline for every CPU translation unit).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CPU_ROWS_H
#define LLMQ_CPU_ROWS_H

#include <stdint.h>

#include "core/half.h"
#include "llmq/tensor.h"

/* Elements c0 .. c0 + n - 1 of a row as f32: the row itself for F32, else converted into buf. */
static inline const float *llmq_cpu_load_f32(const void *row, llmq_dtype dt, int64_t c0, int64_t n,
                                             float *buf)
{
    if (dt == LLMQ_DTYPE_F32)
        return (const float *)row + c0;
    const uint16_t *h = (const uint16_t *)row + c0;
    if (dt == LLMQ_DTYPE_F16)
        for (int64_t i = 0; i < n; i++)
            buf[i] = llmq_f16_to_f32(h[i]);
    else
        for (int64_t i = 0; i < n; i++)
            buf[i] = llmq_bf16_to_f32(h[i]);
    return buf;
}

/* Where f32 results for elements c0 .. of a row go: the row itself for F32, else buf (then
 * llmq_cpu_store_f32() rounds them into the row). */
static inline float *llmq_cpu_out_f32(void *row, llmq_dtype dt, int64_t c0, float *buf)
{
    return dt == LLMQ_DTYPE_F32 ? (float *)row + c0 : buf;
}

/* Round n results from buf into an F16 / BF16 row at c0 (ties to even); F32: nothing to do. */
static inline void llmq_cpu_store_f32(void *row, llmq_dtype dt, int64_t c0, int64_t n,
                                      const float *buf)
{
    uint16_t *h = (uint16_t *)row + c0;
    if (dt == LLMQ_DTYPE_F16)
        for (int64_t i = 0; i < n; i++)
            h[i] = llmq_f32_to_f16(buf[i]);
    else if (dt == LLMQ_DTYPE_BF16)
        for (int64_t i = 0; i < n; i++)
            h[i] = llmq_f32_to_bf16(buf[i]);
}

/* Offset of the first NaN among x[0 .. n - 1], or -1. */
static inline int64_t llmq_cpu_first_nan(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != x[i])
            return i;
    return -1;
}

#endif
