/* cuda_internal.cuh - state, error reporting and numerics shared by the CUDA module's
 * translation units (internal). SPDX-License-Identifier: MIT
 *
 * Numerics: the module is compiled with -fmad=false, so no float multiply-add is contracted
 * behind the contract's back (docs/gemm.md, docs/numerics.md); kernels that may reorder sums
 * (the weight-only GEMV) ask for __fmaf_rn explicitly. Roundings use the _rn intrinsics, which
 * are IEEE round-to-nearest-even like the CPU reference. */
#ifndef LLMQ_CUDA_INTERNAL_CUH
#define LLMQ_CUDA_INTERNAL_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "backend/backend.h"
#include "core/fail.h" /* LLMQ_TRY */
}

namespace llmq_cuda {

/* Kernel tiers: the mma.sync shapes they use and the oldest architecture that has them. */
enum tier { TIER_TURING = 75, TIER_AMPERE = 80 };

struct state {
    int device;
    int cc;            /* compute capability, e.g. 90 */
    int tier;          /* TIER_TURING or TIER_AMPERE: min(cc, $LLMQ_CUDA_ARCH) */
    int sms;           /* multiprocessors */
    int smem_optin;    /* largest dynamic shared memory a block may ask for */
    int smem_per_sm;   /* shared memory of one multiprocessor */
    bool pools;        /* stream-ordered allocation (cudaMallocAsync) available */
    cudaStream_t stream;
    unsigned long long *nan_index; /* device: smallest flat index of a NaN seen, or ~0 */
    bool nan_pending;  /* a kernel that may set nan_index ran since the last sync */
    void *ws;          /* workspace on the stream, grown during warm-up only */
    size_t ws_size;
    char name[48];
    char msg[400];
};

static inline state *get(const llmq_backend *be)
{
    return static_cast<state *>(be->state);
}

/* Record a CUDA failure: "backend=<name>: <what>: <cudaErrorName>: <description>". */
llmq_status fail(state *s, cudaError_t e, const char *what);
/* Record another failure with a formatted message (already "argument=value: reason"). */
llmq_status fail_msg(state *s, llmq_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* After a launch: the launch error, if any. */
llmq_status check_launch(state *s, const char *kernel);
/* Workspace of at least `bytes` on the stream (grown stream-ordered, never shrunk). */
llmq_status workspace(state *s, size_t bytes, void **ptr);

/* Launchers (one per translation unit). */
llmq_status launch_quantize(state *s, const llmq_quant_job *job);
llmq_status launch_dequantize(state *s, const llmq_quant_job *job);
llmq_status launch_range(state *s, const llmq_quant_job *job, float *lo, float *hi);
llmq_status launch_quantize_dynamic(state *s, const llmq_quant_job *job, llmq_symmetry sym,
                                    int64_t nparams, float *scale, int32_t *zero_point);
/* Fake-quant forward, or backward (dx, and the LSQ sums when dscale / dzero_point are wanted;
 * partial sums in the workspace). */
llmq_status launch_fake_quantize(state *s, const llmq_fq_job *job, bool backward);
/* Integer GEMM on the tier's tensor-core kernels; false through *taken when the job is not
 * one they serve (the caller then runs the generic kernel). */
llmq_status launch_gemm_tiered(state *s, const llmq_matmul_job *job, bool *taken);
/* Weight-only GEMV fast path; *taken as above. */
llmq_status launch_gemv(state *s, const llmq_matmul_job *job, bool *taken);
/* Any matmul of docs/gemm.md, one thread per output in the reference's order. */
llmq_status launch_matmul_generic(state *s, const llmq_matmul_job *job);

/* ---- device numerics, shared ---- */

__device__ __forceinline__ int64_t param_row_base(const llmq_param_map &m, int64_t r)
{
    if (m.row_mul == 0) /* per tensor, or per channel of the last axis */
        return 0;
    if (m.row_div == 1 && r < m.row_mod) /* per token, per channel of the rows, per group */
        return r * m.row_mul;
    return ((r / m.row_div) % m.row_mod) * m.row_mul;
}

__device__ __forceinline__ float f16_to_f32(uint16_t h)
{
    return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ uint16_t f32_to_f16(float f)
{
    return __half_as_ushort(__float2half_rn(f));
}

__device__ __forceinline__ float bf16_to_f32(uint16_t b)
{
    return __uint_as_float((uint32_t)b << 16);
}

/* Round to nearest even, NaN kept quiet: the CPU reference's rule bit for bit. */
__device__ __forceinline__ uint16_t f32_to_bf16(float f)
{
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float load_float(const void *row, llmq_dtype dt, int64_t c)
{
    switch (dt) {
    case LLMQ_DTYPE_F32: return static_cast<const float *>(row)[c];
    case LLMQ_DTYPE_F16: return f16_to_f32(static_cast<const uint16_t *>(row)[c]);
    default: return bf16_to_f32(static_cast<const uint16_t *>(row)[c]);
    }
}

__device__ __forceinline__ void store_float(void *row, llmq_dtype dt, int64_t c, float v)
{
    switch (dt) {
    case LLMQ_DTYPE_F32: static_cast<float *>(row)[c] = v; break;
    case LLMQ_DTYPE_F16: static_cast<uint16_t *>(row)[c] = f32_to_f16(v); break;
    default: static_cast<uint16_t *>(row)[c] = f32_to_bf16(v); break;
    }
}

/* Code at column c of a quantized row (one code per byte, or packed 4 / 2 bits). */
__device__ __forceinline__ int32_t load_code(const void *row, llmq_dtype dt, int64_t c)
{
    const uint8_t *p = static_cast<const uint8_t *>(row);
    switch (dt) {
    case LLMQ_DTYPE_S8: return (int8_t)p[c];
    case LLMQ_DTYPE_U8: return p[c];
    case LLMQ_DTYPE_S4: return (int32_t)(int8_t)(uint8_t)((p[c / 2] >> (c % 2 * 4)) << 4) >> 4;
    case LLMQ_DTYPE_U4: return (p[c / 2] >> (c % 2 * 4)) & 15;
    case LLMQ_DTYPE_S2: return (int32_t)(int8_t)(uint8_t)((p[c / 4] >> (c % 4 * 2)) << 6) >> 6;
    default: return (p[c / 4] >> (c % 4 * 2)) & 3;
    }
}

/* Clamp v onto [qmin - zp, qmax - zp], round half to even, add zp (the requantization of
 * docs/gemm.md; clamping first is exact, see lib/quant/rounding.h). */
__device__ __forceinline__ int32_t requant(float v, int32_t zp, int32_t qmin, int32_t qmax)
{
    const float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    v = v >= lo ? v : lo;
    v = v <= hi ? v : hi;
    return __float2int_rn(v) + zp;
}

__device__ __forceinline__ uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The rounding modes of lib/quant/rounding.h, on values already clamped to the grid. */
__device__ __forceinline__ float round_mode(float v, llmq_rounding mode, uint64_t seed,
                                            uint64_t index)
{
    if (mode == LLMQ_ROUNDING_HALF_AWAY) {
        const float t = truncf(v);
        const float d = __fsub_rn(v, t);
        return __fsub_rn(__fadd_rn(t, (float)(d >= 0.5f)), (float)(d <= -0.5f));
    }
    if (mode == LLMQ_ROUNDING_STOCHASTIC) {
        const uint64_t r = mix64(seed ^ mix64(index + 0x9e3779b97f4a7c15ull));
        const double u = (double)(r >> 11) * 0x1p-53;
        return (float)floor(__dadd_rn((double)v, u));
    }
    return rintf(v);
}

/* Smallest flat index of a NaN, for the deferred LLMQ_ERR_NON_FINITE. */
__device__ __forceinline__ void report_nan(unsigned long long *slot, int64_t index)
{
    atomicMin(slot, (unsigned long long)index);
}

} /* namespace llmq_cuda */

#endif
