/* quant_kernels.cu - quantize, dequantize, ranges (calibration min/max) and dynamic
 * quantization on the GPU, bit-identical to the CPU reference (lib/cpu/kern_scalar.c).
 * SPDX-License-Identifier: MIT
 *
 * Work unit: 8 consecutive elements of one row. Rows start on byte boundaries and 8 elements
 * fill whole bytes at every width, so no two units write the same byte (the last unit of a
 * row keeps the padding bits it finds, as the CPU's packing does). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "cuda_internal.cuh"

namespace llmq_cuda {

namespace {

constexpr int UNIT = 8;
constexpr int THREADS = 256;

/* One parameter pair in the form the quantize loop wants. */
struct qparam {
    float scale, inv, lo, hi;
    int32_t zp;
};

__device__ __forceinline__ qparam make_qparam(const llmq_quant_job &j, float scale, int32_t zp)
{
    qparam q;
    q.scale = scale;
    q.zp = zp;
    q.inv = __frcp_rn(scale); /* 1.0f / scale, correctly rounded: PyTorch's inv */
    q.lo = (float)(j.qmin - zp);
    q.hi = (float)(j.qmax - zp);
    return q;
}

__device__ __forceinline__ qparam load_qparam(const llmq_quant_job &j, int64_t p)
{
    return make_qparam(j, j.scale[p], j.zero_point[p]);
}

/* FAST: the default modes (half to even, pytorch numerics) without run-time switches. */
template <bool FAST = false>
__device__ __forceinline__ uint8_t quant1(float x, const qparam &q, const llmq_quant_job &j,
                                          uint64_t index)
{
    if (FAST) {
        float v = __fmul_rn(x, q.inv);
        v = v >= q.lo ? v : q.lo;
        v = v <= q.hi ? v : q.hi;
        return (uint8_t)(__float2int_rn(v) + q.zp);
    }
    float v = j.numerics == LLMQ_NUMERICS_ONNX ? __fdiv_rn(x, q.scale) : __fmul_rn(x, q.inv);
    v = v >= q.lo ? v : q.lo; /* NaN lands on lo, as on the CPU; it is reported apart */
    v = v <= q.hi ? v : q.hi;
    return (uint8_t)((int32_t)round_mode(v, j.rounding, j.seed, index) + q.zp);
}

/* Work unit u of a job: its row, first column, element count and row pointers. */
struct unit_pos {
    int64_t r, c0;
    int n;
    const char *srow;
    char *drow;
};

__device__ __forceinline__ unit_pos unit_at(const llmq_quant_job &j, int64_t u, int64_t per_row)
{
    unit_pos w;
    w.r = u / per_row;
    w.c0 = (u - w.r * per_row) * UNIT;
    w.n = (int)min((int64_t)UNIT, j.cols - w.c0);
    w.srow = static_cast<const char *>(j.src) + (size_t)w.r * j.src_stride;
    w.drow = static_cast<char *>(j.dst) + (size_t)w.r * j.dst_stride;
    return w;
}

/* Parameter index of element (r, c0) and the column where the next group starts. */
__device__ __forceinline__ int64_t first_param(const llmq_param_map &m, int64_t r, int64_t c0,
                                               int64_t g, int64_t *next)
{
    const int64_t gi = c0 / g;
    *next = (gi + 1) * g;
    return param_row_base(m, r) + gi;
}

__device__ __forceinline__ int dtype_bits(llmq_dtype d)
{
    return d == LLMQ_DTYPE_S8 || d == LLMQ_DTYPE_U8 ? 8
           : d == LLMQ_DTYPE_S4 || d == LLMQ_DTYPE_U4 ? 4
                                                      : 2;
}

/* n (1..8) floats of a row from column c0; one or two 16-byte loads when aligned. */
__device__ __forceinline__ void load8(const void *row, llmq_dtype dt, int64_t c0, int n,
                                      float *x)
{
    if (n == UNIT && dt != LLMQ_DTYPE_F32) {
        const uint16_t *p = static_cast<const uint16_t *>(row) + c0;
        if (((uintptr_t)p & 15) == 0) {
            const uint4 v = *reinterpret_cast<const uint4 *>(p);
            const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint16_t a = (uint16_t)(w[i] & 0xffff), b = (uint16_t)(w[i] >> 16);
                x[2 * i] = dt == LLMQ_DTYPE_F16 ? f16_to_f32(a) : bf16_to_f32(a);
                x[2 * i + 1] = dt == LLMQ_DTYPE_F16 ? f16_to_f32(b) : bf16_to_f32(b);
            }
            return;
        }
    } else if (n == UNIT) {
        const float *p = static_cast<const float *>(row) + c0;
        if (((uintptr_t)p & 15) == 0) {
            const float4 a = reinterpret_cast<const float4 *>(p)[0];
            const float4 b = reinterpret_cast<const float4 *>(p)[1];
            x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
            x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
            return;
        }
    }
#pragma unroll
    for (int i = 0; i < UNIT; i++)
        if (i < n)
            x[i] = load_float(row, dt, c0 + i);
}

/* Store n codes (low bits significant) from column c0 of a row of `bits`-wide codes. */
__device__ __forceinline__ void store_codes(void *row, int bits, int64_t c0, int n,
                                            const uint8_t *codes)
{
    uint8_t *d = static_cast<uint8_t *>(row);
    if (bits == 8) {
        if (n == UNIT && ((uintptr_t)(d + c0) & 7) == 0) {
            uint2 v;
            v.x = codes[0] | codes[1] << 8 | codes[2] << 16 | (uint32_t)codes[3] << 24;
            v.y = codes[4] | codes[5] << 8 | codes[6] << 16 | (uint32_t)codes[7] << 24;
            *reinterpret_cast<uint2 *>(d + c0) = v;
        } else {
#pragma unroll
            for (int i = 0; i < UNIT; i++)
                if (i < n)
                    d[c0 + i] = codes[i];
        }
        return;
    }
    const int per = 8 / bits;
    const uint32_t mask = (1u << bits) - 1;
    uint8_t *b = d + c0 / per;
    const int bytes = (n + per - 1) / per;
#pragma unroll
    for (int k = 0; k < UNIT / 2; k++) {
        if (k >= bytes || k * per >= UNIT)
            break;
        uint32_t v = 0, keep = 0;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (e >= per)
                break;
            const int i = k * per + e;
            if (i < n)
                v |= (codes[i] & mask) << (e * bits);
            else
                keep |= mask << (e * bits); /* padding after the last element: kept */
        }
        b[k] = (uint8_t)(keep != 0 ? (b[k] & keep) | v : v);
    }
}

/* Codes of n elements from column c0 (sign-extended for signed dtypes). */
__device__ __forceinline__ void load_codes(const void *row, llmq_dtype dt, int64_t c0, int n,
                                           int32_t *q)
{
#pragma unroll
    for (int i = 0; i < UNIT; i++)
        q[i] = i < n ? load_code(row, dt, c0 + i) : 0;
}

__global__ void quantize_kernel(llmq_quant_job j, unsigned long long *nan_slot)
{
    const int64_t per_row = (j.cols + UNIT - 1) / UNIT;
    const int64_t total = j.rows * per_row;
    const int bits = dtype_bits(j.dst_dtype);
    const int64_t g = j.map.col_group;
    for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < total;
         u += (int64_t)gridDim.x * blockDim.x) {
        const unit_pos w = unit_at(j, u, per_row);
        const int64_t r = w.r, c0 = w.c0;
        const int n = w.n;
        float x[UNIT];
        load8(w.srow, j.src_dtype, c0, n, x);
        int64_t next, p = first_param(j.map, r, c0, g, &next);
        qparam q = load_qparam(j, p);
        uint8_t codes[UNIT];
#pragma unroll
        for (int i = 0; i < UNIT; i++) {
            if (i >= n)
                break;
            const int64_t c = c0 + i;
            if (c == next) {
                next += g;
                q = load_qparam(j, ++p);
            }
            const uint64_t index = (uint64_t)(r * j.cols + c);
            if (x[i] != x[i])
                report_nan(nan_slot, (int64_t)index);
            codes[i] = quant1(x[i], q, j, index);
        }
        store_codes(w.drow, bits, c0, n, codes);
    }
}

__global__ void dequantize_kernel(llmq_quant_job j)
{
    const int64_t per_row = (j.cols + UNIT - 1) / UNIT;
    const int64_t total = j.rows * per_row;
    const int64_t g = j.map.col_group;
    for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < total;
         u += (int64_t)gridDim.x * blockDim.x) {
        const unit_pos w = unit_at(j, u, per_row);
        const int64_t c0 = w.c0;
        const int n = w.n;
        int32_t q[UNIT];
        load_codes(w.srow, j.src_dtype, c0, n, q);
        int64_t next, p = first_param(j.map, w.r, c0, g, &next);
        float s = j.scale[p];
        int32_t z = j.zero_point[p];
#pragma unroll
        for (int i = 0; i < UNIT; i++) {
            if (i >= n)
                break;
            if (c0 + i == next) {
                next += g;
                ++p;
                s = j.scale[p];
                z = j.zero_point[p];
            }
            store_float(w.drow, j.dst_dtype, c0 + i, __fmul_rn((float)(q[i] - z), s));
        }
    }
}

/* Float min / max through integer atomics: non-negative floats order as ints, negative ones
 * in reverse as unsigned. -0 is folded into +0 first. */
__device__ __forceinline__ void atomic_min_float(float *a, float v)
{
    v = __fadd_rn(v, 0.0f);
    if (v >= 0.0f)
        atomicMin(reinterpret_cast<int *>(a), __float_as_int(v));
    else
        atomicMax(reinterpret_cast<unsigned *>(a), __float_as_uint(v));
}

__device__ __forceinline__ void atomic_max_float(float *a, float v)
{
    v = __fadd_rn(v, 0.0f);
    if (v >= 0.0f)
        atomicMax(reinterpret_cast<int *>(a), __float_as_int(v));
    else
        atomicMin(reinterpret_cast<unsigned *>(a), __float_as_uint(v));
}

__device__ __forceinline__ bool finite_value(float x)
{
    return x > -INFINITY && x < INFINITY; /* false for NaN too */
}

__device__ __forceinline__ void flush_range(float *lo, float *hi, int64_t p, float mn, float mx)
{
    if (mn < INFINITY)
        atomic_min_float(lo + p, mn);
    if (mx > -INFINITY)
        atomic_max_float(hi + p, mx);
}

/* Fold the finite values into lo / hi per parameter. Lanes of a warp whose units are one run
 * of one parameter (per tensor, long groups) combine before the atomics. */
__global__ void range_kernel(llmq_quant_job j, float *lo, float *hi, unsigned long long *nan_slot)
{
    const int64_t per_row = (j.cols + UNIT - 1) / UNIT;
    const int64_t total = j.rows * per_row;
    const int64_t g = j.map.col_group;
    const int lane = threadIdx.x & 31;
    const int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t ub = warp * 32; ub < total; ub += warps * 32) {
        const int64_t u = ub + lane;
        const bool valid = u < total;
        int64_t p = -1;
        float mn = INFINITY, mx = -INFINITY;
        if (valid) {
            const int64_t r = u / per_row, c0 = (u - r * per_row) * UNIT;
            const int n = (int)min((int64_t)UNIT, j.cols - c0);
            const char *srow = static_cast<const char *>(j.src) + (size_t)r * j.src_stride;
            float x[UNIT];
            load8(srow, j.src_dtype, c0, n, x);
            int64_t gi = c0 / g, next = (gi + 1) * g;
            p = param_row_base(j.map, r) + gi;
#pragma unroll
            for (int i = 0; i < UNIT; i++) {
                if (i >= n)
                    break;
                if (c0 + i == next) {
                    flush_range(lo, hi, p, mn, mx);
                    next += g;
                    ++p;
                    mn = INFINITY;
                    mx = -INFINITY;
                }
                const float v = x[i];
                if (v != v)
                    report_nan(nan_slot, r * j.cols + c0 + i);
                if (finite_value(v)) {
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                }
            }
        }
        const int64_t p0 = __shfl_sync(0xffffffffu, p, 0);
        if (__all_sync(0xffffffffu, !valid || p == p0)) {
            for (int off = 16; off > 0; off >>= 1) {
                const float a = __shfl_xor_sync(0xffffffffu, mn, off);
                const float b = __shfl_xor_sync(0xffffffffu, mx, off);
                mn = a < mn ? a : mn;
                mx = b > mx ? b : mx;
            }
            if (lane == 0)
                flush_range(lo, hi, p0, mn, mx);
        } else if (valid) {
            flush_range(lo, hi, p, mn, mx);
        }
    }
}

/* PyTorch's parameters from a range: llmq_qparams_from_range (lib/quant/qparams.c). */
__device__ __forceinline__ void qparams_from_range(float lo, float hi, llmq_symmetry sym,
                                                   int32_t qmin, int32_t qmax, bool is_unsigned,
                                                   float *scale, int32_t *zero_point)
{
    const float min_neg = lo < 0.0f ? lo : 0.0f;
    const float max_pos = hi > 0.0f ? hi : 0.0f;
    const float levels = (float)(qmax - qmin);
    if (sym != LLMQ_SYMMETRY_ASYMMETRIC) {
        const float amax = -min_neg > max_pos ? -min_neg : max_pos;
        const float s = __fdiv_rn(amax, __fdiv_rn(levels, 2.0f));
        *scale = s > FLT_EPSILON ? s : FLT_EPSILON;
        *zero_point = is_unsigned ? (qmin + qmax + 1) / 2 : 0;
        return;
    }
    float s = __fdiv_rn(__fsub_rn(max_pos, min_neg), levels);
    if (isinf(s))
        s = __fsub_rn(__fdiv_rn(max_pos, levels), __fdiv_rn(min_neg, levels));
    if (!(s > FLT_EPSILON))
        s = FLT_EPSILON;
    const float q = rintf(__fdiv_rn(min_neg, s));
    int32_t zp = qmin - (int32_t)q;
    zp = zp < qmin ? qmin : zp > qmax ? qmax : zp;
    *scale = s;
    *zero_point = zp;
}

__device__ __forceinline__ bool is_unsigned_dtype(llmq_dtype d)
{
    return d == LLMQ_DTYPE_U8 || d == LLMQ_DTYPE_U4 || d == LLMQ_DTYPE_U2;
}

__global__ void qparams_kernel(const float *lo, const float *hi, int64_t n, llmq_symmetry sym,
                               int32_t qmin, int32_t qmax, bool is_unsigned, float *scale,
                               int32_t *zp)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        qparams_from_range(lo[i], hi[i], sym, qmin, qmax, is_unsigned, &scale[i], &zp[i]);
}

/* One block per row whose elements share one parameter pair (per token, per channel on the
 * rows): range, parameters and codes in one launch. Rows of up to ROW_THREADS * UPT units stay
 * in registers between the two passes (CACHED); longer rows are read twice (L1 / L2). Every
 * thread derives the parameters from the block's range itself: one barrier per row. */
constexpr int ROW_THREADS = 128, UPT = 4;

template <bool CACHED, bool FAST>
__global__ void __launch_bounds__(ROW_THREADS) dynamic_rows_kernel(llmq_quant_job j,
                                                                   llmq_symmetry sym,
                                                                   float *scale, int32_t *zp,
                                                                   unsigned long long *nan_slot)
{
    __shared__ float red[2][2][ROW_THREADS / 32]; /* double-buffered across rows */
    const int64_t per_row = (j.cols + UNIT - 1) / UNIT;
    const int bits = dtype_bits(j.dst_dtype);
    const bool uns = is_unsigned_dtype(j.dst_dtype);
    const int warp = threadIdx.x >> 5;
    int parity = 0;
    for (int64_t r = blockIdx.x; r < j.rows; r += gridDim.x, parity ^= 1) {
        const char *srow = static_cast<const char *>(j.src) + (size_t)r * j.src_stride;
        char *drow = static_cast<char *>(j.dst) + (size_t)r * j.dst_stride;
        float mn = 0.0f, mx = 0.0f; /* ranges start at 0, as on the CPU */
        float xs[CACHED ? UPT : 1][UNIT];
        auto fold = [&](const float *x, int n, int64_t c0) {
#pragma unroll
            for (int i = 0; i < UNIT; i++) {
                if (i >= n)
                    break;
                const float v = x[i];
                if (v != v)
                    report_nan(nan_slot, r * j.cols + c0 + i);
                if (finite_value(v)) {
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                }
            }
        };
        if (CACHED) {
#pragma unroll
            for (int t = 0; t < UPT; t++) {
                const int64_t u = threadIdx.x + (int64_t)t * ROW_THREADS;
                if (u < per_row) {
                    const int64_t c0 = u * UNIT;
                    const int n = (int)min((int64_t)UNIT, j.cols - c0);
                    load8(srow, j.src_dtype, c0, n, xs[t]);
                    fold(xs[t], n, c0);
                }
            }
        } else {
            for (int64_t u = threadIdx.x; u < per_row; u += ROW_THREADS) {
                const int64_t c0 = u * UNIT;
                const int n = (int)min((int64_t)UNIT, j.cols - c0);
                float x[UNIT];
                load8(srow, j.src_dtype, c0, n, x);
                fold(x, n, c0);
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            const float a = __shfl_xor_sync(0xffffffffu, mn, off);
            const float b = __shfl_xor_sync(0xffffffffu, mx, off);
            mn = a < mn ? a : mn;
            mx = b > mx ? b : mx;
        }
        if ((threadIdx.x & 31) == 0) {
            red[parity][0][warp] = mn;
            red[parity][1][warp] = mx;
        }
        __syncthreads();
        mn = red[parity][0][0];
        mx = red[parity][1][0];
        for (int w = 1; w < ROW_THREADS / 32; w++) {
            mn = red[parity][0][w] < mn ? red[parity][0][w] : mn;
            mx = red[parity][1][w] > mx ? red[parity][1][w] : mx;
        }
        float s;
        int32_t z;
        qparams_from_range(mn, mx, sym, j.qmin, j.qmax, uns, &s, &z);
        const int64_t p = param_row_base(j.map, r);
        if (threadIdx.x == 0) {
            scale[p] = s;
            zp[p] = z;
        }
        const qparam q = make_qparam(j, s, z);
        auto emit = [&](const float *x, int n, int64_t c0) {
            uint8_t codes[UNIT];
#pragma unroll
            for (int i = 0; i < UNIT; i++)
                codes[i] = i < n ? quant1<FAST>(x[i], q, j, (uint64_t)(r * j.cols + c0 + i)) : 0;
            store_codes(drow, bits, c0, n, codes);
        };
        if (CACHED) {
#pragma unroll
            for (int t = 0; t < UPT; t++) {
                const int64_t u = threadIdx.x + (int64_t)t * ROW_THREADS;
                if (u < per_row) {
                    const int64_t c0 = u * UNIT;
                    emit(xs[t], (int)min((int64_t)UNIT, j.cols - c0), c0);
                }
            }
        } else {
            for (int64_t u = threadIdx.x; u < per_row; u += ROW_THREADS) {
                const int64_t c0 = u * UNIT;
                const int n = (int)min((int64_t)UNIT, j.cols - c0);
                float x[UNIT];
                load8(srow, j.src_dtype, c0, n, x);
                emit(x, n, c0);
            }
        }
        /* red[parity] is read above; the next row writes red[parity ^ 1], and the row after
         * that passes the next row's barrier first */
    }
}

/* One warp per row for the per-token quantization of 16-bit activations to 8-bit codes in the
 * default modes (the fused W8A8 linear's first kernel): rows of up to 32 * WARP_UNITS units stay
 * in registers as raw 16-byte loads, the range is a shuffle reduction (no shared memory, no
 * block barrier), and each lane stores 8 codes per unit. Same results as dynamic_rows_kernel. */
constexpr int WARP_UNITS = 16;

__global__ void __launch_bounds__(THREADS) dynamic_warp_rows_kernel(llmq_quant_job j,
                                                                    llmq_symmetry sym,
                                                                    float *scale, int32_t *zp,
                                                                    unsigned long long *nan_slot)
{
    const int lane = threadIdx.x & 31;
    const int64_t per_row = j.cols / UNIT;
    const int64_t warps = (int64_t)gridDim.x * (THREADS / 32);
    const bool uns = is_unsigned_dtype(j.dst_dtype);
    const bool f16 = j.src_dtype == LLMQ_DTYPE_F16;
    for (int64_t r = (int64_t)blockIdx.x * (THREADS / 32) + (threadIdx.x >> 5); r < j.rows;
         r += warps) {
        const uint4 *srow = reinterpret_cast<const uint4 *>(static_cast<const char *>(j.src) +
                                                            (size_t)r * j.src_stride);
        uint2 *drow = reinterpret_cast<uint2 *>(static_cast<char *>(j.dst) +
                                                (size_t)r * j.dst_stride);
        uint4 raw[WARP_UNITS];
#pragma unroll
        for (int t = 0; t < WARP_UNITS; t++) {
            const int64_t u = lane + 32 * t;
            raw[t] = u < per_row ? srow[u] : make_uint4(0, 0, 0, 0);
        }
        auto unpack = [&](const uint4 &v, float *x) {
            const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint16_t a = (uint16_t)(w[i] & 0xffff), b = (uint16_t)(w[i] >> 16);
                x[2 * i] = f16 ? f16_to_f32(a) : bf16_to_f32(a);
                x[2 * i + 1] = f16 ? f16_to_f32(b) : bf16_to_f32(b);
            }
        };
        float mn = 0.0f, mx = 0.0f; /* ranges start at 0, as on the CPU */
#pragma unroll
        for (int t = 0; t < WARP_UNITS; t++) {
            const int64_t u = lane + 32 * t;
            if (u >= per_row)
                break;
            float x[UNIT];
            unpack(raw[t], x);
#pragma unroll
            for (int i = 0; i < UNIT; i++) {
                const float v = x[i];
                if (v != v)
                    report_nan(nan_slot, r * j.cols + u * UNIT + i);
                if (finite_value(v)) {
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                }
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            const float a = __shfl_xor_sync(0xffffffffu, mn, off);
            const float b = __shfl_xor_sync(0xffffffffu, mx, off);
            mn = a < mn ? a : mn;
            mx = b > mx ? b : mx;
        }
        float s;
        int32_t z;
        qparams_from_range(mn, mx, sym, j.qmin, j.qmax, uns, &s, &z);
        if (lane == 0) {
            const int64_t p = param_row_base(j.map, r);
            scale[p] = s;
            zp[p] = z;
        }
        const qparam q = make_qparam(j, s, z);
#pragma unroll
        for (int t = 0; t < WARP_UNITS; t++) {
            const int64_t u = lane + 32 * t;
            if (u >= per_row)
                break;
            float x[UNIT];
            unpack(raw[t], x);
            uint32_t c[UNIT];
#pragma unroll
            for (int i = 0; i < UNIT; i++)
                c[i] = quant1<true>(x[i], q, j, 0);
            drow[u] = make_uint2(c[0] | c[1] << 8 | c[2] << 16 | c[3] << 24,
                                 c[4] | c[5] << 8 | c[6] << 16 | c[7] << 24);
        }
    }
}

/* Whether dynamic_warp_rows_kernel takes a per-row job: 16-bit source rows of whole 16-byte
 * units (aligned), 8-bit codes in 8-byte aligned rows, the default modes, short rows. */
bool warp_rows_fit(const llmq_quant_job *j)
{
    const bool src16 = j->src_dtype == LLMQ_DTYPE_F16 || j->src_dtype == LLMQ_DTYPE_BF16;
    const bool dst8 = j->dst_dtype == LLMQ_DTYPE_S8 || j->dst_dtype == LLMQ_DTYPE_U8;
    return src16 && dst8 && j->cols % UNIT == 0 && j->cols <= 32 * WARP_UNITS * UNIT &&
           j->src_stride % 16 == 0 && (uintptr_t)j->src % 16 == 0 && j->dst_stride % 8 == 0 &&
           (uintptr_t)j->dst % 8 == 0 && j->rounding == LLMQ_ROUNDING_HALF_EVEN &&
           j->numerics == LLMQ_NUMERICS_PYTORCH;
}

int grid_for(const state *s, int64_t work)
{
    const int64_t blocks = (work + THREADS - 1) / THREADS;
    const int64_t cap = (int64_t)s->sms * 16;
    return (int)(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

int64_t units(const llmq_quant_job *j)
{
    return j->rows * ((j->cols + UNIT - 1) / UNIT);
}

} /* namespace */

llmq_status launch_quantize(state *s, const llmq_quant_job *job)
{
    quantize_kernel<<<grid_for(s, units(job)), THREADS, 0, s->stream>>>(*job, s->nan_index);
    return check_launch(s, "quantize_kernel");
}

llmq_status launch_dequantize(state *s, const llmq_quant_job *job)
{
    dequantize_kernel<<<grid_for(s, units(job)), THREADS, 0, s->stream>>>(*job);
    return check_launch(s, "dequantize_kernel");
}

llmq_status launch_range(state *s, const llmq_quant_job *job, float *lo, float *hi)
{
    range_kernel<<<grid_for(s, units(job)), THREADS, 0, s->stream>>>(*job, lo, hi, s->nan_index);
    return check_launch(s, "range_kernel");
}

/* Tuning builds only: $LLMQ_CUDA_QTUNE=1 keeps the block-per-row kernel (to compare). */
static bool no_warp_rows()
{
#ifdef LLMQ_CUDA_TUNING
    const char *v = getenv("LLMQ_CUDA_QTUNE");
    return v != nullptr && v[0] == '1';
#else
    return false;
#endif
}

llmq_status launch_quantize_dynamic(state *s, const llmq_quant_job *job, llmq_symmetry sym,
                                    int64_t nparams, float *scale, int32_t *zero_point)
{
    const llmq_param_map &m = job->map;
    const bool is_unsigned = job->dst_dtype == LLMQ_DTYPE_U8 || job->dst_dtype == LLMQ_DTYPE_U4 ||
                             job->dst_dtype == LLMQ_DTYPE_U2;
    if (m.row_div == 1 && m.row_mul == 1 && m.row_mod == job->rows && m.col_group >= job->cols) {
        const int64_t blocks = job->rows < (int64_t)1 << 30 ? job->rows : (int64_t)1 << 30;
        const bool cached = (job->cols + UNIT - 1) / UNIT <= (int64_t)ROW_THREADS * UPT;
        const bool fast = job->rounding == LLMQ_ROUNDING_HALF_EVEN &&
                          job->numerics == LLMQ_NUMERICS_PYTORCH;
        const dim3 g((unsigned)blocks);
        /* a warp per row pays once the rows fill the GPU (H100: slower at 512 rows, faster
         * at 2048, docs/cuda.md note 8); fewer rows go to a block each */
        if (warp_rows_fit(job) && job->rows >= 8 * (int64_t)s->sms && !no_warp_rows()) {
            const int64_t wb = (job->rows + THREADS / 32 - 1) / (THREADS / 32);
            dynamic_warp_rows_kernel<<<(unsigned)(wb < (1 << 30) ? wb : 1 << 30), THREADS, 0,
                                       s->stream>>>(*job, sym, scale, zero_point, s->nan_index);
            return check_launch(s, "dynamic_warp_rows_kernel");
        }
        if (cached && fast)
            dynamic_rows_kernel<true, true><<<g, ROW_THREADS, 0, s->stream>>>(
                *job, sym, scale, zero_point, s->nan_index);
        else if (cached)
            dynamic_rows_kernel<true, false><<<g, ROW_THREADS, 0, s->stream>>>(
                *job, sym, scale, zero_point, s->nan_index);
        else
            dynamic_rows_kernel<false, false><<<g, ROW_THREADS, 0, s->stream>>>(
                *job, sym, scale, zero_point, s->nan_index);
        return check_launch(s, "dynamic_rows_kernel");
    }
    void *ws;
    LLMQ_TRY(workspace(s, 2 * (size_t)nparams * sizeof(float), &ws));
    float *lo = static_cast<float *>(ws), *hi = lo + nparams;
    const cudaError_t e = cudaMemsetAsync(lo, 0, 2 * (size_t)nparams * sizeof(float), s->stream);
    if (e != cudaSuccess)
        return fail(s, e, "cudaMemsetAsync");
    LLMQ_TRY(launch_range(s, job, lo, hi));
    qparams_kernel<<<grid_for(s, nparams), THREADS, 0, s->stream>>>(
        lo, hi, nparams, sym, job->qmin, job->qmax, is_unsigned, scale, zero_point);
    LLMQ_TRY(check_launch(s, "qparams_kernel"));
    llmq_quant_job q = *job;
    q.scale = scale;
    q.zero_point = zero_point;
    return launch_quantize(s, &q);
}

} /* namespace llmq_cuda */
