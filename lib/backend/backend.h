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

/* Weights prepacked by llmq_matmul_pack_weights() (lib/gemm/pack.c; docs/KERNELS.md). The
 * layout is the same for every CPU tier, and the reference reads it through the accessors
 * below. Stored values are `code - offset`.
 *
 * 8-bit weights (parameters constant along K), s8 stored in panels of LLMQ_PACK_NR output
 * channels, each panel k4 blocks of LLMQ_PACK_NR x 4 bytes:
 *   panels[(n / 16) * k4 * 64 + (k / 4) * 64 + (n % 16) * 4 + k % 4] = B[n, k] - offset,
 * offset 128 for u8 (stored = code ^ 0x80), 0 for s8; zero beyond N and K. colsum[n] is the
 * sum over k < K of the stored values.
 *
 * 4-bit weights (bits 4; per tensor, per channel or per group along K), unsigned nibbles
 * w = code - offset in [0, 15] (offset -8 for s4, 0 for u4), in blocks of 16 output channels.
 * K is cut into ngroups runs of `group` k (one run when the parameters do not vary along K),
 * each padded with zeros to k8g = ceil(group / 8) units of 8 k. A unit is 64 bytes, dword
 * lane r = channel 16 nb + r; byte i of the dword holds the unit's k = i (low nibble) and
 * k = 4 + i (high nibble):
 *   q4[((nb * ngroups + g) * k8g + j / 8) * 64 + r * 4 + j % 4] nibble (j % 8) / 4
 *       = w of B[16 nb + r, g * group + j]
 * so that one 64-byte load gives 16 channels x 8 k with the channels in the lanes. The
 * parameters of each block and group are 16 contiguous lanes, index (nb * ngroups + g) * 16 + r:
 * scale (sB), zero (zB - offset, on the stored grid) and wsum (the sum over the group's k < K
 * of w - zero, for the zero-point correction of A). Zero past N. They are copies made when
 * packing: the reference and the kernels read these, not the tensor's parameter tensors. */
#define LLMQ_PACK_NR 16
typedef struct llmq_packed_b {
    int64_t n, k;          /* logical [N, K] */
    int32_t bits;          /* 8 or 4 */
    int32_t offset;        /* stored = code - offset: 8-bit 128 (u8) / 0; 4-bit -8 (s4) / 0 */
    /* 8-bit */
    int64_t k4;            /* ceil(K / 4) */
    const int8_t *panels;  /* ceil(N / 16) * k4 * 64 bytes */
    const int32_t *colsum; /* ceil(N / 16) * 16 sums, 0 past N */
    /* 4-bit */
    int64_t group, ngroups, k8g;
    const uint8_t *q4;     /* ceil(N / 16) * ngroups * k8g * 64 bytes */
    const float *scale;    /* ceil(N / 16) * ngroups * 16 each */
    const int32_t *zero;
    const int32_t *wsum;
} llmq_packed_b;

/* B's code at (n, k) of a packed weight, as the original dtype's code. */
static inline int32_t llmq_packed_code(const llmq_packed_b *p, int64_t n, int64_t k)
{
    if (p->bits == 4) {
        const int64_t g = k / p->group, j = k % p->group;
        const size_t i = ((size_t)(n / LLMQ_PACK_NR) * (size_t)p->ngroups + (size_t)g) *
                             (size_t)p->k8g * 64 +
                         (size_t)(j / 8) * 64 + (size_t)(n % LLMQ_PACK_NR) * 4 + (size_t)(j % 4);
        return (int32_t)((p->q4[i] >> (j % 8 / 4 * 4)) & 15) + p->offset;
    }
    const size_t i = (size_t)(n / LLMQ_PACK_NR) * (size_t)p->k4 * 64 + (size_t)(k / 4) * 64 +
                     (size_t)(n % LLMQ_PACK_NR) * 4 + (size_t)(k % 4);
    return (int32_t)p->panels[i] + p->offset;
}

/* Index of the 4-bit parameters of (n, k) in scale / zero / wsum. */
static inline size_t llmq_packed_param(const llmq_packed_b *p, int64_t n, int64_t k)
{
    return ((size_t)(n / LLMQ_PACK_NR) * (size_t)p->ngroups + (size_t)(k / p->group)) *
               LLMQ_PACK_NR +
           (size_t)(n % LLMQ_PACK_NR);
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
    /* range of the zero points (quantized operands): lets kernels skip the zero-point
     * corrections when every zero point is 0 (or the unsigned offset 128) */
    int32_t zp_lo, zp_hi;
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

/* One fake-quant forward or backward over a rows x cols view (llmq_fake_quantize*). Every
 * element is quantized as llmq_quant_job would (same rounding, numerics, seed and flat index)
 * and dequantized at once. */
typedef struct llmq_fq_job {
    const void *x;   /* input */
    const void *dy;  /* backward: gradient of the output; NULL in the forward */
    void *out;       /* forward: y; backward: dx. May be x (forward) or dy (backward) itself,
                        same dtype and stride; no other overlap */
    llmq_dtype x_dtype, dy_dtype, out_dtype; /* F32, F16 or BF16 each */
    size_t x_stride, dy_stride, out_stride;  /* bytes between rows */
    int64_t rows, cols;
    llmq_param_map map;
    int64_t nparams;          /* entries of scale, zero_point, dscale, dzero_point */
    const float *scale;       /* positive normal floats */
    /* zero_point_dtype S32: codes on [qmin, qmax]; F32: finite, used as
     * clamp(round_half_even(z), qmin, qmax) (PyTorch's learnable rule); zero_point NULL: every
     * parameter uses zero_point_default */
    const void *zero_point;
    llmq_dtype zero_point_dtype;
    int32_t zero_point_default;
    int32_t qmin, qmax;
    llmq_rounding rounding;
    llmq_numerics numerics;
    uint64_t seed;
    /* backward only: outputs of nparams floats, overwritten; either may be NULL (not wanted) */
    float *dscale, *dzero_point;
    float grad_factor;        /* multiplies every element's dscale / dzero_point term */
    double *acc;              /* host scratch of 2 * nparams doubles for the two sums, given
                                 to CPU kernels when dscale or dzero_point is wanted; NULL for
                                 a device backend (its workspace holds the partial sums) */
} llmq_fq_job;

/* Histograms of the calibration observers over the same rows x cols view: one row of `bins`
 * counters per parameter index. */
typedef struct llmq_hist_job {
    const float *lo, *hi; /* per parameter index: the histogram's edges, lo < hi */
    int64_t bins;         /* 1 .. 2^24, so that every bin index is exact in float32 */
    int64_t copies;       /* 1 or 4 interleaved copies of each histogram (summed by the reader):
                             consecutive elements of a run may go to consecutive copies, so
                             that repeated bins do not serialize on one counter */
    bool absolute;        /* count |x| instead of x */
    uint64_t *counts;     /* [parameters][copies][bins], added to */
} llmq_hist_job;

/* torch.histc's bin of v for edges lo, lo + span, in float32: (v - lo) * bins / span,
 * clamped to [0, bins - 1] before the conversion (NaN lands on 0, +Inf on the last bin). */
static inline int32_t llmq_hist_bin(float v, float lo, float span, float nb, float bmax)
{
    float t = (v - lo) * nb / span;
    t = t >= 0.0f ? t : 0.0f;
    t = t <= bmax ? t : bmax;
    return (int32_t)t;
}

typedef struct llmq_backend llmq_backend;

/* Direction of a device backend's copy. */
typedef enum llmq_copy_kind {
    LLMQ_COPY_HOST_TO_DEVICE = 0,
    LLMQ_COPY_DEVICE_TO_HOST = 1,
    LLMQ_COPY_DEVICE_TO_DEVICE = 2,
} llmq_copy_kind;

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
    /* Count the finite values of src into per-parameter histograms, binned as torch.histc
     * does: v = x (or |x|), b = (int64_t)((v - lo[p]) * bins / (hi[p] - lo[p])) in float32,
     * clamped to [0, bins - 1]; one of counts[(p * copies + k) * bins + b] += 1. ±Inf is
     * skipped; src holds no NaN (the caller ran `range` first). */
    llmq_status (*histogram)(llmq_backend *be, const llmq_quant_job *job,
                             const llmq_hist_job *hist);
    /* src one code per byte -> dst packed; a code outside [qmin, qmax] returns
     * LLMQ_ERR_INVALID_ARG with *bad_index. */
    llmq_status (*pack)(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index);
    /* src packed -> dst one code per byte. */
    llmq_status (*unpack)(llmq_backend *be, const llmq_quant_job *job);
    /* One matmul; writes job->c_data. */
    llmq_status (*matmul)(llmq_backend *be, const llmq_matmul_job *job);

    /* Fake-quant forward: out = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale.
     * NaN in x: as quantize (out is then undefined). NULL: the backend has none
     * (LLMQ_ERR_UNSUPPORTED; CPU tiers fall back to the scalar kernel, lib/quant/qat.c). */
    llmq_status (*fake_quantize)(llmq_backend *be, const llmq_fq_job *job, int64_t *bad_index);
    /* Fake-quant backward: out = dx (straight-through estimator with the clipping mask), and
     * when wanted dscale / dzero_point (LSQ, summed per parameter). NaN in x: as quantize.
     * Device backends defer the NaN of both slots to sync, like quantize. */
    llmq_status (*fake_quantize_backward)(llmq_backend *be, const llmq_fq_job *job,
                                          int64_t *bad_index);
    /* ---- Device backends (the CUDA module). Every slot below is optional and NULL on the
     * CPU. The pointers in a device backend's jobs are device addresses, and so are the lo /
     * hi arrays of `range`. A slot that fails with LLMQ_ERR_BACKEND or LLMQ_ERR_UNSUPPORTED
     * leaves "argument=value: reason" in `message`. ---- */
    bool device; /* tensors of this backend live in device memory */
    /* Create the per-context state in be->state: driver, device, kernel tier. On failure,
     * writes the reason into msg and returns LLMQ_ERR_UNSUPPORTED (no driver or device) or
     * LLMQ_ERR_INVALID_ARG (a bad setting such as $LLMQ_CUDA_ARCH). */
    llmq_status (*open)(llmq_backend *be, char *msg, size_t msg_size);
    void (*close)(llmq_backend *be);
    /* The context's backend name, e.g. "cuda-sm90" or "cuda-sm90-turing"; lives in state. */
    const char *(*instance_name)(const llmq_backend *be);
    /* Detail of the last failure, "" if none. */
    const char *(*message)(const llmq_backend *be);
    llmq_status (*mem_alloc)(llmq_backend *be, size_t bytes, void **ptr);
    void (*mem_free)(llmq_backend *be, void *ptr);
    /* rows rows of row_bytes bytes; returns once host memory may be read or reused (host
     * sides wait for the context's stream), device-to-device copies are only ordered. */
    llmq_status (*mem_copy)(llmq_backend *be, void *dst, size_t dst_stride, const void *src,
                            size_t src_stride, size_t row_bytes, int64_t rows,
                            llmq_copy_kind kind);
    llmq_status (*mem_set)(llmq_backend *be, void *dst, int value, size_t bytes);
    /* The caller's stream (a cudaStream_t), NULL for the default stream. */
    llmq_status (*set_stream)(llmq_backend *be, void *stream);
    /* Wait for the context's stream. Reports what the device found since the last sync: a NaN
     * seen by quantize / range / quantize_dynamic gives LLMQ_ERR_NON_FINITE and *bad_index. */
    llmq_status (*sync)(llmq_backend *be, int64_t *bad_index);
    /* Dynamic quantization in one job: the range of every parameter set over the finite
     * values (widened to 0), PyTorch's parameters for `symmetry` written to scale /
     * zero_point (nparams each, device), then job's quantization with them. NaN: deferred to
     * sync. */
    llmq_status (*quantize_dynamic)(llmq_backend *be, const llmq_quant_job *job,
                                    llmq_symmetry symmetry, int64_t nparams, float *scale,
                                    int32_t *zero_point);
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

/* The backend that runs an op whose slot in be's table is NULL: the CPU scalar reference when
 * be is a CPU tier (same host memory), else NULL, and the caller reports
 * LLMQ_ERR_UNSUPPORTED. */
const llmq_backend_ops *llmq_backend_fallback(const llmq_backend *be);
/* The backend that runs an op on tensors in host (device = false) or device memory: the
 * context's backend when its memory matches, else the CPU tier of a device context for host
 * tensors; NULL when the context has no device backend and device memory is asked for. */
llmq_backend *llmq_backend_for(llmq_context *ctx, bool device);

/* Forward a backend's status: on failure, "fn: <the backend's message>" on ctx. */
llmq_status llmq_backend_status(llmq_context *ctx, const llmq_backend *be, const char *fn,
                                llmq_status st);

/* Load the CUDA module (lib/backend/cuda_loader.c) and open it on a context: fills *be and
 * *module (the dlopen handle) or writes the reason into why. */
llmq_status llmq_cuda_load(llmq_backend *be, void **module, char *why, size_t why_size);
/* Close a backend opened by llmq_cuda_load and drop the module. */
void llmq_cuda_unload(llmq_backend *be, void *module);

#endif
