/* gemm_scalar.c - the reference matmul: every operand combination and epilogue of
 * docs/gemm.md, element by element in the contract's order. The oracle for every SIMD and CUDA
 * matmul kernel. SPDX-License-Identifier: MIT */
#include <math.h>

#include "core/half.h"
#include "core/tensor_impl.h"
#include "cpu/cpu_backends.h"
#include "quant/pack.h"
#include "quant/rounding.h"

/* Code at (row, col) of a quantized rows x cols view. */
static inline int32_t code_at(const llmq_matmul_operand *o, int64_t row, int64_t col)
{
    return llmq_code_at((const uint8_t *)o->data + (size_t)row * o->stride, o->dtype, col);
}

static inline float float_at(const llmq_matmul_operand *o, int64_t row, int64_t col)
{
    const void *p = (const uint8_t *)o->data + (size_t)row * o->stride;
    switch (o->dtype) {
    case LLMQ_DTYPE_F32: return ((const float *)p)[col];
    case LLMQ_DTYPE_F16: return llmq_f16_to_f32(((const uint16_t *)p)[col]);
    default: return llmq_bf16_to_f32(((const uint16_t *)p)[col]);
    }
}

static inline int64_t param_at(const llmq_matmul_operand *o, int64_t row, int64_t col)
{
    return llmq_param_row_base(&o->map, row) + col / o->map.col_group;
}

/* B's code and parameter index for output channel n and reduction index k. */
static inline int32_t b_code(const llmq_matmul_job *j, int64_t n, int64_t k)
{
    if (j->b.packed != NULL)
        return llmq_packed_code(j->b.packed, n, k);
    return j->b_kn ? code_at(&j->b, k, n) : code_at(&j->b, n, k);
}

static inline int64_t b_param(const llmq_matmul_job *j, int64_t n, int64_t k)
{
    return j->b_kn ? param_at(&j->b, k, n) : param_at(&j->b, n, k);
}

/* B's scale and zero point for (n, k), parameter index pb: a 4-bit packed weight carries its
 * own copy (backend.h). */
static inline float b_scale(const llmq_matmul_job *j, int64_t n, int64_t k, int64_t pb)
{
    const llmq_packed_b *p = j->b.packed;
    return p != NULL && p->bits == 4 ? p->scale[llmq_packed_param(p, n, k)] : j->b.scale[pb];
}

static inline int32_t b_zero_point(const llmq_matmul_job *j, int64_t n, int64_t k, int64_t pb)
{
    const llmq_packed_b *p = j->b.packed;
    return p != NULL && p->bits == 4 ? p->zero[llmq_packed_param(p, n, k)] + p->offset
                                     : j->b.zero_point[pb];
}

/* Requantize v (already multiplied by every scale but C's) onto C's grid. */
static inline int32_t requant(float v, int32_t zc, int32_t qmin, int32_t qmax)
{
    const float lo = (float)(qmin - zc), hi = (float)(qmax - zc);
    v = v >= lo ? v : lo;
    v = v <= hi ? v : hi;
    return (int32_t)llmq_round_half_even(v) + zc;
}

static void store(const llmq_matmul_job *j, int64_t m, int64_t n, float v)
{
    void *row = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
    switch (j->c.dtype) {
    case LLMQ_DTYPE_F32: ((float *)row)[n] = v; break;
    case LLMQ_DTYPE_F16: ((uint16_t *)row)[n] = llmq_f32_to_f16(v); break;
    default: ((uint16_t *)row)[n] = llmq_f32_to_bf16(v); break;
    }
}

static void store_code(const llmq_matmul_job *j, int64_t m, int64_t n, int32_t q)
{
    uint8_t *row = (uint8_t *)j->c_data + (size_t)m * j->c.stride;
    row[n] = (uint8_t)q; /* s8 as two's complement */
}

/* Both parameter sets constant along k: one exact int32 sum per output. */
static void matmul_exact(const llmq_matmul_job *j, int64_t m, int64_t n)
{
    const int64_t pa = param_at(&j->a, m, 0), pb = b_param(j, n, 0);
    const int32_t za = j->a.zero_point[pa], zb = b_zero_point(j, n, 0, pb);
    int32_t acc = 0;
    for (int64_t k = 0; k < j->k; k++)
        acc += (code_at(&j->a, m, k) - za) * (b_code(j, n, k) - zb);
    if (j->c.dtype == LLMQ_DTYPE_S32) {
        int32_t *row = (int32_t *)((uint8_t *)j->c_data + (size_t)m * j->c.stride);
        row[n] = acc;
        return;
    }
    const float sa = j->a.scale[pa], sb = b_scale(j, n, 0, pb);
    if (llmq_dtype_is_float(j->c.dtype)) {
        const float v = (float)acc * sa * sb + (j->bias != NULL ? j->bias[n] : 0.0f);
        store(j, m, n, v);
        return;
    }
    const int64_t pc = param_at(&j->c, m, n);
    const float sc = j->c.scale[pc];
    const float v = j->requant == LLMQ_REQUANT_MULTIPLIER ? (float)acc * (sa * sb / sc)
                                                          : (float)acc * sa * sb / sc;
    store_code(j, m, n, requant(v, j->c.zero_point[pc], j->c.qmin, j->c.qmax));
}

/* Parameters that change along k: each run of k with one (A, B) parameter pair gives an exact
 * partial sum, scaled and added in k order. */
static void matmul_grouped(const llmq_matmul_job *j, int64_t m, int64_t n)
{
    float acc = 0.0f;
    int64_t k = 0;
    while (k < j->k) {
        const int64_t pa = param_at(&j->a, m, k), pb = b_param(j, n, k);
        const int32_t za = j->a.zero_point[pa], zb = b_zero_point(j, n, k, pb);
        const float sb = b_scale(j, n, k, pb);
        int32_t part = 0;
        for (; k < j->k && param_at(&j->a, m, k) == pa && b_param(j, n, k) == pb; k++)
            part += (code_at(&j->a, m, k) - za) * (b_code(j, n, k) - zb);
        acc += (float)part * j->a.scale[pa] * sb;
    }
    if (llmq_dtype_is_float(j->c.dtype)) {
        store(j, m, n, acc + (j->bias != NULL ? j->bias[n] : 0.0f));
        return;
    }
    const int64_t pc = param_at(&j->c, m, n);
    store_code(j, m, n, requant(acc / j->c.scale[pc], j->c.zero_point[pc], j->c.qmin, j->c.qmax));
}

/* Float activations x quantized weights: each run of k with one B parameter pair gives
 * sum(a * (b - zB)) in float, scaled by sB and added in k order. */
static void matmul_weight_only(const llmq_matmul_job *j, int64_t m, int64_t n)
{
    float acc = 0.0f;
    int64_t k = 0;
    while (k < j->k) {
        const int64_t pb = b_param(j, n, k);
        const int32_t zb = b_zero_point(j, n, k, pb);
        const float sb = b_scale(j, n, k, pb);
        float part = 0.0f;
        for (; k < j->k && b_param(j, n, k) == pb; k++)
            part += float_at(&j->a, m, k) * (float)(b_code(j, n, k) - zb);
        acc += part * sb;
    }
    store(j, m, n, acc + (j->bias != NULL ? j->bias[n] : 0.0f));
}

llmq_status llmq_cpu_scalar_matmul(llmq_backend *be, const llmq_matmul_job *j)
{
    (void)be;
    const bool float_a = llmq_dtype_is_float(j->a.dtype);
    for (int64_t m = 0; m < j->m; m++)
        for (int64_t n = 0; n < j->n; n++) {
            if (float_a)
                matmul_weight_only(j, m, n);
            else if (j->a_uniform_k && j->b_uniform_k)
                matmul_exact(j, m, n);
            else
                matmul_grouped(j, m, n);
        }
    return LLMQ_OK;
}
