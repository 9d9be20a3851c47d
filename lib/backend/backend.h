/* backend.h - the backend vtable and the jobs it runs (internal, never installed).
 * SPDX-License-Identifier: MIT
 *
 * A backend fills the slots it implements. Public entry points validate every argument
 * before building a job, so backends never re-validate. */
#ifndef LLMQ_BACKEND_BACKEND_H
#define LLMQ_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/gemm.h"
#include "llmq/scheme.h"
#include "llmq/tensor.h"

#define LLMQ_BACKEND_OPS_VERSION 1

/* Which parameter pair an element (r, c) of a rows x cols view uses:
 *   index = ((r / row_div) % row_mod) * row_mul + c / col_group
 * per tensor {1,1,0,cols}; per channel on the last axis {1,1,0,1}; per channel on an earlier
 * axis {inner rows, dim(axis), 1, cols}; per token {1, rows, 1, cols}; per group
 * {1, rows, ngroups, group_size}. */
typedef struct llmq_param_map {
    int64_t row_div, row_mod, row_mul, col_group;
} llmq_param_map;

static inline int64_t llmq_param_row_base(const llmq_param_map *m, int64_t r)
{
    return ((r / m->row_div) % m->row_mod) * m->row_mul;
}

/* One quantize / dequantize / range / pack / unpack over a rows x cols view: rows row0 ..
 * row0 + rows of the tensor (src and dst point at row row0). Parameter indices, flat element
 * indices (NaN reports, stochastic draws) use the tensor's row numbers, so that a tensor split
 * into row blocks gives the results of one job. */
typedef struct llmq_quant_job {
    const void *src;
    void *dst;
    llmq_dtype src_dtype, dst_dtype;
    size_t src_stride, dst_stride; /* bytes between rows */
    int64_t row0, rows, cols;
    llmq_param_map map;
    const float *scale;
    const int32_t *zero_point;
    int32_t qmin, qmax;
    llmq_rounding rounding;
    llmq_numerics numerics;
    uint64_t seed;
} llmq_quant_job;

/* Weights prepacked by llmq_matmul_pack_weights() (lib/gemm/pack.c; docs/KERNELS.md).
 * The layout is the same for every CPU tier: codes stored as s8 `code - offset` in panels of
 * LLMQ_PACK_NR output channels, each panel k4 blocks of LLMQ_PACK_NR x 4 bytes:
 *   panels[(n / 16) * k4 * 64 + (k / 4) * 64 + (n % 16) * 4 + k % 4] = B[n, k] - offset,
 * zero beyond N and K. colsum[n] is the sum over k < K of the stored values. */
#define LLMQ_PACK_NR 16
typedef struct llmq_packed_b {
    int64_t n, k;          /* logical [N, K] */
    int64_t k4;            /* ceil(K / 4) */
    int32_t offset;        /* 128 for u8 weights (stored = code ^ 0x80), 0 for s8 */
    const int8_t *panels;  /* ceil(N / 16) * k4 * 64 bytes */
    const int32_t *colsum; /* ceil(N / 16) * 16 sums, 0 past N */
} llmq_packed_b;

/* B's stored code at (n, k) of a packed weight, as the original dtype's code. */
static inline int32_t llmq_packed_code(const llmq_packed_b *p, int64_t n, int64_t k)
{
    const size_t i = (size_t)(n / LLMQ_PACK_NR) * (size_t)p->k4 * 64 + (size_t)(k / 4) * 64 +
                     (size_t)(n % LLMQ_PACK_NR) * 4 + (size_t)(k % 4);
    return (int32_t)p->panels[i] + p->offset;
}

/* One operand of a matmul as the kernels see it: a rows x cols view and its parameters
 * (scale / zero_point NULL for float operands). For C, the parameters are those of an S8/U8
 * output and qmin / qmax its grid. */
typedef struct llmq_matmul_operand {
    const void *data;
    llmq_dtype dtype;
    size_t stride; /* bytes between rows */
    const float *scale;
    const int32_t *zero_point;
    llmq_param_map map;
    int32_t qmin, qmax;
    const llmq_packed_b *packed; /* B only: prepacked weights (data = packed->panels), or NULL */
} llmq_matmul_operand;

/* C[m, n] = sum_k A[m, k] * B[n, k] (+ bias[n]) with the epilogue of docs/gemm.md. */
typedef struct llmq_matmul_job {
    int64_t m, n, k;
    llmq_matmul_operand a; /* m x k */
    llmq_matmul_operand b; /* n x k, or k x n when b_kn */
    llmq_matmul_operand c; /* m x n */
    void *c_data;          /* c.data, writable */
    const float *bias;     /* NULL or n floats (float outputs only) */
    bool b_kn;
    /* the parameters of A / B do not change along k: the integer product is one exact int32
     * sum per output, scaled once */
    bool a_uniform_k, b_uniform_k;
    llmq_requant requant;
} llmq_matmul_job;

typedef struct llmq_backend llmq_backend;

typedef struct llmq_backend_ops {
    uint32_t version;  /* LLMQ_BACKEND_OPS_VERSION; the registry rejects others */
    const char *name;  /* "cpu-scalar", ... */
    llmq_cpu_isa isa;  /* tier, compared with the host and the cap */
    /* src float -> dst codes with the job's parameters. A NaN stops the job: it returns
     * LLMQ_ERR_NON_FINITE with *bad_index = flat index (r * cols + c). */
    llmq_status (*quantize)(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index);
    /* src codes -> dst float. */
    llmq_status (*dequantize)(llmq_backend *be, const llmq_quant_job *job);
    /* Fold the finite values of src into lo[i] / hi[i] of their parameter index i (the caller
     * initializes both arrays). NaN: as quantize. */
    llmq_status (*range)(llmq_backend *be, const llmq_quant_job *job, float *lo, float *hi,
                         int64_t *bad_index);
    /* src one code per byte -> dst packed; a code outside [qmin, qmax] returns
     * LLMQ_ERR_INVALID_ARG with *bad_index. */
    llmq_status (*pack)(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index);
    /* src packed -> dst one code per byte. */
    llmq_status (*unpack)(llmq_backend *be, const llmq_quant_job *job);
    /* One matmul; writes job->c_data. */
    llmq_status (*matmul)(llmq_backend *be, const llmq_matmul_job *job);
} llmq_backend_ops;

struct llmq_backend {
    const llmq_backend_ops *ops;
    void *state;       /* backend-owned, NULL for the CPU */
    llmq_context *ctx; /* the owning context: thread pool, scratch memory, messages */
};

/* Choose the backend for a new context. name: "auto", "cpu" or "cuda" (already checked to be
 * one of them); cap: the CPU tier cap (DEFAULT = none). Fills ctx->backend or fails with a
 * message on ctx. */
llmq_status llmq_backend_select(llmq_context *ctx, const char *name, llmq_cpu_isa cap);

#endif
