/* gemv.cu - weight-only products for few rows of activations (decode: M = 1..16): W8A16 and
 * W4A16 with per-group or per-channel scales and optional zero points, reading each weight
 * byte once with 16-byte loads. SPDX-License-Identifier: MIT
 *
 * One warp per output channel n; each lane takes 16 bytes of the weight row at a time (32
 * 4-bit or 16 8-bit codes, always inside one parameter group) and the matching activations.
 * Codes become exact floats without a conversion instruction: 0x4B000000 | u is the float
 * 2^23 + u, so (q - zp) = float(2^23 | u) - (2^23 + zp + offset), where signed codes are
 * first offset to unsigned by flipping their top bit. Sums are reordered (fused multiply-add,
 * lanes, then the warp): docs/gemm.md bounds the difference from the reference. */
#include <stdlib.h>

#include "cuda_internal.cuh"

namespace llmq_cuda {

namespace {

constexpr int WARPS = 8;  /* output channels per block */
constexpr int UNROLL = 4; /* 16-byte weight loads in flight per lane */

struct gemv_params {
    const char *a;
    size_t lda;
    int m, n, k;
    const uint8_t *w;
    size_t ldw;
    uint32_t w_flip; /* 0x88888888 (s4), 0x80808080 (s8), 0 (unsigned) */
    int32_t w_off;   /* 8 (s4), 128 (s8), 0: the flip added this to every code */
    const float *scale;
    const int32_t *zp; /* NULL: every zero point is zp_const */
    int32_t zp_const;
    llmq_param_map map;
    const float *bias;
    char *c;
    size_t ldc;
    llmq_dtype c_dtype;
};

/* VALS activations of row m from column k0 (16-byte aligned) as floats. */
template <llmq_dtype AT, int VALS>
__device__ __forceinline__ void load_x(const gemv_params &p, int m, int k0, float *x)
{
    const char *row = p.a + (size_t)m * p.lda;
    if (AT == LLMQ_DTYPE_F32) {
        const float4 *q = reinterpret_cast<const float4 *>(row) + k0 / 4;
#pragma unroll
        for (int i = 0; i < VALS / 4; i++) {
            const float4 v = __ldg(q + i);
            x[4 * i] = v.x, x[4 * i + 1] = v.y, x[4 * i + 2] = v.z, x[4 * i + 3] = v.w;
        }
    } else {
        const uint4 *q = reinterpret_cast<const uint4 *>(row) + k0 / 8;
#pragma unroll
        for (int i = 0; i < VALS / 8; i++) {
            const uint4 v = __ldg(q + i);
            const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int h = 0; h < 4; h++) {
                if (AT == LLMQ_DTYPE_F16) {
                    const float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&w[h]));
                    x[8 * i + 2 * h] = f.x;
                    x[8 * i + 2 * h + 1] = f.y;
                } else {
                    x[8 * i + 2 * h] = __uint_as_float(w[h] << 16);
                    x[8 * i + 2 * h + 1] = __uint_as_float(w[h] & 0xffff0000u);
                }
            }
        }
    }
}

template <llmq_dtype AT, int BITS, int MT>
__global__ void __launch_bounds__(WARPS * 32) gemv_kernel(const gemv_params p)
{
    constexpr int VALS = 128 / BITS; /* codes per 16 bytes */
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1;
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * WARPS + (threadIdx.x >> 5);
    const int m0 = blockIdx.y * MT;
    if (n >= p.n)
        return;
    const uint8_t *wrow = p.w + (size_t)n * p.ldw;
    const int64_t pbase = param_row_base(p.map, n);
    const int64_t group = p.map.col_group;
    float acc[MT];
#pragma unroll
    for (int i = 0; i < MT; i++)
        acc[i] = 0.0f;
    for (int kc = lane * VALS; kc < p.k; kc += 32 * VALS * UNROLL) {
        uint4 wv[UNROLL];
        float s[UNROLL], zf[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int k0 = kc + u * 32 * VALS;
            if (k0 < p.k) {
                wv[u] = __ldg(reinterpret_cast<const uint4 *>(wrow + (size_t)k0 * BITS / 8));
                const int64_t pi = pbase + k0 / group;
                s[u] = __ldg(p.scale + pi);
                const int32_t z = p.zp != nullptr ? __ldg(p.zp + pi) : p.zp_const;
                zf[u] = 8388608.0f + (float)(z + p.w_off);
            }
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int k0 = kc + u * 32 * VALS;
            if (k0 >= p.k)
                break;
            float v[VALS];
            const uint32_t w[4] = {wv[u].x ^ p.w_flip, wv[u].y ^ p.w_flip, wv[u].z ^ p.w_flip,
                                   wv[u].w ^ p.w_flip};
#pragma unroll
            for (int i = 0; i < VALS; i++) {
                const uint32_t code = (w[i / PER_WORD] >> (BITS * (i % PER_WORD))) & MASK;
                v[i] = __fsub_rn(__uint_as_float(0x4B000000u | code), zf[u]);
            }
#pragma unroll
            for (int mi = 0; mi < MT; mi++) {
                if (m0 + mi >= p.m)
                    break;
                float x[VALS];
                load_x<AT, VALS>(p, m0 + mi, k0, x);
                float part = 0.0f;
#pragma unroll
                for (int i = 0; i < VALS; i++)
                    part = __fmaf_rn(x[i], v[i], part);
                acc[mi] = __fmaf_rn(part, s[u], acc[mi]);
            }
        }
    }
#pragma unroll
    for (int mi = 0; mi < MT; mi++) {
        float a = acc[mi];
        for (int off = 16; off > 0; off >>= 1)
            a = __fadd_rn(a, __shfl_xor_sync(0xffffffffu, a, off));
        if (lane == 0 && m0 + mi < p.m)
            store_float(p.c + (size_t)(m0 + mi) * p.ldc, p.c_dtype, n,
                        __fadd_rn(a, p.bias != nullptr ? p.bias[n] : 0.0f));
    }
}

/* The decode loop of one 16-byte chunk per row for R rows: sum over the chunk of x * (q - zp),
 * times the group's scale, into acc. */
template <llmq_dtype AT, int BITS, int R>
__device__ __forceinline__ void chunk_dot(const gemv_params &p, int k0, const uint4 *wv,
                                          const float *s, const float *zo, float *acc)
{
    constexpr int VALS = 128 / BITS;
    float x[VALS];
    load_x<AT, VALS>(p, 0, k0, x);
    float xs0 = 0.0f, xs1 = 0.0f;
#pragma unroll
    for (int i = 0; i < VALS; i += 2) {
        xs0 = __fadd_rn(xs0, x[i]);
        xs1 = __fadd_rn(xs1, x[i + 1]);
    }
    const float xs = __fadd_rn(xs0, xs1);
#pragma unroll
    for (int r = 0; r < R; r++) {
        const uint32_t w[4] = {wv[r].x ^ p.w_flip, wv[r].y ^ p.w_flip, wv[r].z ^ p.w_flip,
                               wv[r].w ^ p.w_flip};
        float part0 = 0.0f, part1 = 0.0f;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            if (BITS == 4) {
                const uint32_t lo = w[q] & 0x0f0f0f0fu, hi = (w[q] >> 4) & 0x0f0f0f0fu;
#pragma unroll
                for (int b = 0; b < 4; b++) {
                    const float e0 = __fsub_rn(
                        __uint_as_float(__byte_perm(lo, 0x4b000000u, 0x7540 | b)), 8388608.0f);
                    const float e1 = __fsub_rn(
                        __uint_as_float(__byte_perm(hi, 0x4b000000u, 0x7540 | b)), 8388608.0f);
                    part0 = __fmaf_rn(x[8 * q + 2 * b], e0, part0);
                    part1 = __fmaf_rn(x[8 * q + 2 * b + 1], e1, part1);
                }
            } else {
#pragma unroll
                for (int b = 0; b < 4; b += 2) {
                    const float e0 = __fsub_rn(
                        __uint_as_float(__byte_perm(w[q], 0x4b000000u, 0x7540 | b)), 8388608.0f);
                    const float e1 = __fsub_rn(
                        __uint_as_float(__byte_perm(w[q], 0x4b000000u, 0x7540 | (b + 1))),
                        8388608.0f);
                    part0 = __fmaf_rn(x[4 * q + b], e0, part0);
                    part1 = __fmaf_rn(x[4 * q + b + 1], e1, part1);
                }
            }
        }
        const float part = __fmaf_rn(-zo[r], xs, __fadd_rn(part0, part1));
        acc[r] = __fmaf_rn(part, s[r], acc[r]);
    }
}

/* M = 1 (decode): each warp takes R output channels; each lane converts its 32 (or 16)
 * activations once and uses them for the R weight rows, and the next chunk's loads are issued
 * before this chunk is computed (ping-pong registers), so every lane keeps R 16-byte weight
 * loads in flight. Per weight: one byte permute builds the float 2^23 + code, one subtraction
 * removes 2^23, one fused multiply-add; the zero point enters once per chunk as
 * (zp + offset) * sum(x). */
template <llmq_dtype AT, int BITS, int R>
__global__ void __launch_bounds__(WARPS * 32) gemv_m1_pf_kernel(const gemv_params p)
{
    constexpr int VALS = 128 / BITS, STEP = 32 * VALS;
    const int lane = threadIdx.x & 31;
    const int n0 = (blockIdx.x * WARPS + (threadIdx.x >> 5)) * R;
    if (n0 >= p.n)
        return;
    const int64_t group = p.map.col_group;
    float acc[R];
    int64_t pbase[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        acc[r] = 0.0f;
        pbase[r] = param_row_base(p.map, min(n0 + r, p.n - 1));
    }
    auto fetch = [&](int k0, uint4 *wv, float *s, float *zo) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (k0 < p.k && n0 + r < p.n) {
                const uint8_t *row = p.w + (size_t)(n0 + r) * p.ldw;
                wv[r] = __ldg(reinterpret_cast<const uint4 *>(row + (size_t)k0 * BITS / 8));
                const int64_t pi = pbase[r] + k0 / group;
                s[r] = __ldg(p.scale + pi);
                zo[r] = (float)((p.zp != nullptr ? __ldg(p.zp + pi) : p.zp_const) + p.w_off);
            } else {
                wv[r] = make_uint4(0, 0, 0, 0);
                s[r] = zo[r] = 0.0f;
            }
        }
    };
    uint4 wa[R], wb[R];
    float sa[R], sb[R], za[R], zb[R];
    int k0 = lane * VALS;
    fetch(k0, wa, sa, za);
    for (; k0 < p.k; k0 += 2 * STEP) {
        fetch(k0 + STEP, wb, sb, zb);
        chunk_dot<AT, BITS, R>(p, k0, wa, sa, za, acc);
        if (k0 + STEP >= p.k)
            break;
        fetch(k0 + 2 * STEP, wa, sa, za);
        chunk_dot<AT, BITS, R>(p, k0 + STEP, wb, sb, zb, acc);
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float a = acc[r];
        for (int off = 16; off > 0; off >>= 1)
            a = __fadd_rn(a, __shfl_xor_sync(0xffffffffu, a, off));
        if (lane == 0 && n0 + r < p.n)
            store_float(p.c, p.c_dtype, n0 + r,
                        __fadd_rn(a, p.bias != nullptr ? p.bias[n0 + r] : 0.0f));
    }
}

template <llmq_dtype AT, int BITS>
llmq_status run(state *s, const gemv_params &p)
{
    if (p.m == 1) {
        int variant = 4; /* rows per warp; a tuning build may ask for 2 */
#ifdef LLMQ_CUDA_TUNING
        if (const char *v = getenv("LLMQ_CUDA_TUNE_GEMV"))
            variant = atoi(v);
#endif
        if (variant == 2) {
            gemv_m1_pf_kernel<AT, BITS, 2><<<(p.n + WARPS * 2 - 1) / (WARPS * 2), WARPS * 32, 0,
                                             s->stream>>>(p);
        } else {
            gemv_m1_pf_kernel<AT, BITS, 4><<<(p.n + WARPS * 4 - 1) / (WARPS * 4), WARPS * 32, 0,
                                             s->stream>>>(p);
        }
        return check_launch(s, "gemv_m1_kernel");
    }
    const int mt = p.m == 2 ? 2 : 4;
    const dim3 grid((p.n + WARPS - 1) / WARPS, (p.m + mt - 1) / mt);
    if (mt == 2)
        gemv_kernel<AT, BITS, 2><<<grid, WARPS * 32, 0, s->stream>>>(p);
    else
        gemv_kernel<AT, BITS, 4><<<grid, WARPS * 32, 0, s->stream>>>(p);
    return check_launch(s, "gemv_kernel");
}

template <llmq_dtype AT> llmq_status run_bits(state *s, const gemv_params &p, int bits)
{
    return bits == 4 ? run<AT, 4>(s, p) : run<AT, 8>(s, p);
}

} /* namespace */

llmq_status launch_gemv(state *s, const llmq_matmul_job *j, bool *taken)
{
    *taken = false;
    const llmq_dtype bd = j->b.dtype;
    const int bits = bd == LLMQ_DTYPE_S4 || bd == LLMQ_DTYPE_U4   ? 4
                     : bd == LLMQ_DTYPE_S8 || bd == LLMQ_DTYPE_U8 ? 8
                                                                  : 0;
    const int vals = bits > 0 ? 128 / bits : 1;
    const size_t esize = j->a.dtype == LLMQ_DTYPE_F32 ? 4 : 2;
    if (bits == 0 || j->b_kn || j->k % vals != 0 || j->b.stride % 16 != 0 ||
        (uintptr_t)j->b.data % 16 != 0 || j->a.stride % 16 != 0 ||
        (uintptr_t)j->a.data % 16 != 0 || (j->k * (int64_t)esize) % 16 != 0 ||
        !(j->b.map.col_group % vals == 0 || j->b.map.col_group >= j->k) || j->m > 65535 * 4 ||
        j->n > INT32_MAX || j->k > INT32_MAX)
        return LLMQ_OK;
    *taken = true;
    gemv_params p{};
    p.a = static_cast<const char *>(j->a.data);
    p.lda = j->a.stride;
    p.m = (int)j->m;
    p.n = (int)j->n;
    p.k = (int)j->k;
    p.w = static_cast<const uint8_t *>(j->b.data);
    p.ldw = j->b.stride;
    const bool sgn = bd == LLMQ_DTYPE_S4 || bd == LLMQ_DTYPE_S8;
    p.w_flip = !sgn ? 0u : bits == 4 ? 0x88888888u : 0x80808080u;
    p.w_off = !sgn ? 0 : bits == 4 ? 8 : 128;
    p.scale = j->b.scale;
    p.zp = j->b.zp_lo == j->b.zp_hi ? nullptr : j->b.zero_point;
    p.zp_const = j->b.zp_lo;
    p.map = j->b.map;
    p.bias = j->bias;
    p.c = static_cast<char *>(j->c_data);
    p.ldc = j->c.stride;
    p.c_dtype = j->c.dtype;
    switch (j->a.dtype) {
    case LLMQ_DTYPE_F32: return run_bits<LLMQ_DTYPE_F32>(s, p, bits);
    case LLMQ_DTYPE_F16: return run_bits<LLMQ_DTYPE_F16>(s, p, bits);
    default: return run_bits<LLMQ_DTYPE_BF16>(s, p, bits);
    }
}

} /* namespace llmq_cuda */
