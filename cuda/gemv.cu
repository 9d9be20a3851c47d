/* gemv.cu - weight-only products for few rows of activations (decode: M = 1..16): W8A16 and
 * W4A16 with per-group or per-channel scales and optional zero points, reading each weight
 * byte once with 16-byte loads. SPDX-License-Identifier: MIT
 *
 * Two families of kernels:
 * - Tensor cores (sm_80 and newer tiers; 4-bit codes, f16 / bf16 activations, groups of a
 *   power-of-two multiple of 128 or one group per row): a warp multiplies 16 weight rows by up
 *   to 16 activation rows with mma.sync m16n8k16 (weights as A, activations as B, f32
 *   accumulators). Two codes become an exact half2 (q - zp) with two instructions (the
 *   magic-number trick below); products are exact and summed in f32.
 * - CUDA cores (everything else): one warp per output channel (four for M = 1); each lane takes
 *   16 bytes of the weight row at a time (32 4-bit or 16 8-bit codes, always inside one
 *   parameter group) and the matching activations. Codes become exact floats without a
 *   conversion instruction: 0x4B000000 | u is the float 2^23 + u, so (q - zp) =
 *   float(2^23 | u) - (2^23 + zp + offset), where signed codes are first offset to unsigned by
 *   flipping their top bit.
 * Both reorder sums (fused multiply-add, tensor-core sums, lanes, warps): docs/gemm.md bounds
 * the difference from the reference. */
#include <stdlib.h>
#include <string.h>

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
    int gshift; /* tensor cores: group of 128-column step s is s >> gshift */
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

/* ---------------------------------------------------------------- tensor cores (W4A16) */

constexpr int TC_KSPLIT = 8;       /* warps of a block: they share 16 weight rows and split K */
constexpr int TC_STAGES = 1;       /* steps in flight per warp, besides the one computed */
constexpr bool TC_CONTIG = false;  /* warps take runs of consecutive steps (else every 8th) */
constexpr int TC_L2_PREFETCH = 0;  /* cp.async hint: L2 fetches 128 (1) or 256 (2) bytes */
constexpr bool TC_PIN = true;      /* keep the lane's addresses in registers (pin) */

/* The value, opaque to the compiler from here on: it keeps it in a register instead of
 * recomputing it from the thread index at every use (which costs more than the register). */
template <bool P, typename T> __device__ __forceinline__ T pin(T v)
{
    if constexpr (P) {
        if constexpr (sizeof(T) == 8) {
            uint64_t u;
            memcpy(&u, &v, 8);
            asm volatile("" : "+l"(u));
            memcpy(&v, &u, 8);
        } else {
            uint32_t u;
            memcpy(&u, &v, 4);
            asm volatile("" : "+r"(u));
            memcpy(&v, &u, 4);
        }
    }
    return v;
}

/* Shared-memory address of a __shared__ object, as the cp.async / ld.shared instructions
 * take it. ([[maybe_unused]] on these helpers: only the sm_80+ passes compile their callers.) */
[[maybe_unused]] __device__ __forceinline__ uint32_t smem_addr(const void *ptr)
{
    return (uint32_t)__cvta_generic_to_shared(ptr);
}

/* cp.async: 16 bytes (src_bytes 16, or 0 to write zeros) or 4 bytes from global memory into
 * shared memory without passing through registers; groups of them are waited for together. */
template <int H>
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
#if __CUDA_ARCH__ >= 800
    if constexpr (H == 2)
        asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(dst),
                     "l"(src), "r"(src_bytes)
                     : "memory");
    else if constexpr (H == 1)
        asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;" ::"r"(dst),
                     "l"(src), "r"(src_bytes)
                     : "memory");
    else
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
                     "r"(src_bytes)
                     : "memory");
#endif
}

[[maybe_unused]] __device__ __forceinline__ void cp_async4(uint32_t dst, const void *src)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
#endif
}

[[maybe_unused]] __device__ __forceinline__ void cp_async_commit()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/* Wait until at most N of this thread's groups are still in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

[[maybe_unused]] __device__ __forceinline__ uint4 lds128(uint32_t addr)
{
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(addr)
                 : "memory");
    return v;
}

[[maybe_unused]] __device__ __forceinline__ void sts32(uint32_t addr, uint32_t v)
{
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}

/* a * b + c on both halves of f16x2 (or bf16x2) words, each rounded once. */
template <llmq_dtype AT>
__device__ __forceinline__ uint32_t fma_x2(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t d = 0;
#if __CUDA_ARCH__ >= 800
    if constexpr (AT == LLMQ_DTYPE_F16)
        asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else
        asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
#endif
    return d;
}

/* The eight 4-bit codes of w (code i in bits 4i..4i+3) as four pairs of exact (q - zp), in
 * the order the mma fragments take them: e[0] = codes (0, 4), e[1] = (1, 5), e[2] = (2, 6),
 * e[3] = (3, 7), the first of each pair in the low half. f16: (w & 0x000f000f) | 0x64006400
 * holds the halves 1024 + q, (w & 0x00f000f0) | 0x64006400 the halves 1024 + 16 q; one fma
 * with c0 = -(1024 + zo), or with 1/16 and c1 = -(64 + zo), leaves q - zo exactly (zo = zp +
 * the signed offset). bf16 has 7 fraction bits, so each code is shifted to the bottom first:
 * 128 + q, plus c0 = -(128 + zo). The top-bit flip of signed codes is folded into k0 / k1
 * (the magic number xor the flip's bits under the mask). */
template <llmq_dtype AT>
__device__ __forceinline__ void decode8(uint32_t w, uint32_t k0, uint32_t k1, uint32_t c0,
                                        uint32_t c1, uint32_t *e)
{
    if constexpr (AT == LLMQ_DTYPE_F16) {
        const uint32_t h = w >> 8;
        e[0] = fma_x2<AT>((w & 0x000f000fu) ^ k0, 0x3c003c00u, c0); /* x 1 */
        e[1] = fma_x2<AT>((w & 0x00f000f0u) ^ k1, 0x2c002c00u, c1); /* x 1/16 */
        e[2] = fma_x2<AT>((h & 0x000f000fu) ^ k0, 0x3c003c00u, c0);
        e[3] = fma_x2<AT>((h & 0x00f000f0u) ^ k1, 0x2c002c00u, c1);
    } else {
        (void)k1, (void)c1;
#pragma unroll
        for (int i = 0; i < 4; i++)
            e[i] = fma_x2<AT>(((w >> (4 * i)) & 0x000f000fu) ^ k0, 0x3f803f80u, c0);
    }
}

/* c += A (16 x 16, row-major fragments) * B (16 x 8), f32 accumulators. */
template <llmq_dtype AT>
__device__ __forceinline__ void mma_16816(float *c, uint32_t a0, uint32_t a1, uint32_t a2,
                                          uint32_t a3, uint32_t b0, uint32_t b1)
{
#if __CUDA_ARCH__ >= 800
    if constexpr (AT == LLMQ_DTYPE_F16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
            "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
            "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

template <bool B> struct tail_step {
    static constexpr bool value = B;
};

/* One block: 16 weight rows (blockIdx.x) by up to 8 * MB activation rows (blockIdx.y); its
 * TC_KSPLIT warps take every TC_KSPLIT-th step of 128 columns and add up in shared memory.
 * Lane (g, t) = (lane / 4, lane % 4) takes 16 bytes (columns 32t..32t+31 of the step) of
 * weight rows g and g + 8 and the same 32 columns of activation row g (and g + 8): inside a
 * step the mma sees the columns in another order, the same for both operands, so lanes never
 * exchange data. A step lies inside one parameter group: per row one scale and zero point,
 * the scale applied to the step's f32 sums. Weights and parameters travel by cp.async into a
 * ring of S + 1 steps per warp: S steps stay in flight, without holding registers, while one
 * is computed. Tuning knobs (TC_* above): C gives each warp one run of consecutive steps
 * instead, H adds an L2 prefetch hint to the copies, P pins the lane's addresses. */
template <llmq_dtype AT, int MB, int S, bool C, int H, bool P>
__global__ void __launch_bounds__(TC_KSPLIT * 32, MB == 1 ? 4 : 2)
    gemv_tc_kernel(const gemv_params p)
{
#if __CUDA_ARCH__ >= 800
    __shared__ uint4 ring[TC_KSPLIT][S + 1][2][32]; /* weights of rows g and g + 8 */
    __shared__ uint4 pring[TC_KSPLIT][S + 1][8]; /* per g: scale g, scale g + 8, zp g, zp g + 8 */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 16, m0 = blockIdx.y * 8 * MB;
    const int ra = min(n0 + g, p.n - 1), rb = min(n0 + g + 8, p.n - 1); /* tails: any row */
    const uint8_t *wa = pin<P>(p.w + (size_t)ra * p.ldw + 16 * t);
    const uint8_t *wb = pin<P>(p.w + (size_t)rb * p.ldw + 16 * t);
    /* shared addresses: + 1024 a slot (+ 512: row g + 8) and + 128 a slot */
    const uint32_t wsm = pin<P>(smem_addr(&ring[warp][0][0][lane]));
    const uint32_t psm = smem_addr(&pring[warp][0][g]);
    const uint32_t psm_t = pin<P>(psm + 4 * t);
    /* lane t fetches one parameter: scale of row g (t = 0) or g + 8 (1), zp of g (2), g + 8 (3);
     * without zero-point tensor lanes 2 and 3 write the constant once */
    const int64_t pbase = param_row_base(p.map, t & 1 ? rb : ra);
    const bool pload = t < 2 || p.zp != nullptr;
    const int32_t *zrow = p.zp != nullptr ? p.zp + pbase : nullptr;
    const char *psrc = pin<P>(t < 2 ? reinterpret_cast<const char *>(p.scale + pbase)
                                    : reinterpret_cast<const char *>(zrow));
    if (!pload)
#pragma unroll
        for (int d = 0; d <= S; d++)
            sts32(psm + 128 * d + 4 * t, (uint32_t)p.zp_const);
    /* activation rows past M read row M - 1: their products land in outputs never stored */
    const char *xr[MB];
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
        xr[mb] = pin<P>(p.a + (size_t)min(m0 + 8 * mb + g, p.m - 1) * p.lda + 64 * t);
    const int steps = (p.k + 127) >> 7, full = p.k >> 7; /* steps, whole steps */
    /* this warp's steps: s0, s0 + stride, ... below s1 */
    const int per = (steps + TC_KSPLIT - 1) / TC_KSPLIT, stride = C ? 1 : TC_KSPLIT;
    const int s0 = C ? warp * per : warp, s1 = C ? min(steps, s0 + per) : steps;
    const uint32_t magic = AT == LLMQ_DTYPE_F16 ? 0x64006400u : 0x43004300u;
    const uint32_t k0 = pin<P>(magic ^ (p.w_flip & 0x000f000fu));
    const uint32_t k1 = pin<P>(magic ^ (p.w_flip & 0x00f000f0u));
    float acc[MB][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
        acc[mb][0] = acc[mb][1] = acc[mb][2] = acc[mb][3] = 0.0f;

    auto issue = [&](int s, int slot) {
        if (s < s1) {
            const uint32_t dst = wsm + 1024 * slot;
            const size_t off = (size_t)s * 64;
            if (s < full) {
                cp_async16<H>(dst, wa + off, 16);
                cp_async16<H>(dst + 512, wb + off, 16);
            } else { /* columns past K: zeros, read from nowhere */
                const bool in = s * 128 + 32 * t < p.k;
                cp_async16<H>(dst, in ? wa + off : wa, in ? 16 : 0);
                cp_async16<H>(dst + 512, in ? wb + off : wb, in ? 16 : 0);
            }
            if (pload)
                cp_async4(psm_t + 128 * slot, psrc + ((size_t)(s >> p.gshift) << 2));
        }
        cp_async_commit(); /* one group per step, empty past the end */
    };
    /* tail: a step that ends past K, whose columns past K take zero activations */
    auto compute = [&](auto tail, int s, const uint4 &wq, const uint4 &wr, const uint4 &pr) {
        const bool in = !decltype(tail)::value || s * 128 + 32 * t < p.k;
        /* -(1024 + zo) and -(64 + zo) as f16 pairs, -(128 + zo) as bf16: zo on the grid */
        const uint32_t za = pr.z + (uint32_t)p.w_off, zb = pr.w + (uint32_t)p.w_off;
        const uint32_t c0a = (AT == LLMQ_DTYPE_F16 ? 0xe400e400u : 0xc300c300u) + za * 0x10001u;
        const uint32_t c0b = (AT == LLMQ_DTYPE_F16 ? 0xe400e400u : 0xc300c300u) + zb * 0x10001u;
        const uint32_t c1a = 0xd400d400u + za * 0x100010u, c1b = 0xd400d400u + zb * 0x100010u;
        const uint32_t wva[4] = {wq.x, wq.y, wq.z, wq.w};
        const uint32_t wvb[4] = {wr.x, wr.y, wr.z, wr.w};
        float c[MB][4];
#pragma unroll
        for (int mb = 0; mb < MB; mb++)
            c[mb][0] = c[mb][1] = c[mb][2] = c[mb][3] = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint32_t ea[4], eb[4];
            decode8<AT>(wva[j], k0, k1, c0a, c1a, ea);
            decode8<AT>(wvb[j], k0, k1, c0b, c1b, eb);
#pragma unroll
            for (int mb = 0; mb < MB; mb++) {
                /* activations 8j..8j+7 of the lane's 32: B pairs (0, 4), (1, 5) | (2, 6), (3, 7) */
                uint4 v = make_uint4(0, 0, 0, 0);
                if (in)
                    v = __ldg(reinterpret_cast<const uint4 *>(xr[mb] + (size_t)s * 256) + j);
                mma_16816<AT>(c[mb], ea[0], eb[0], ea[1], eb[1], __byte_perm(v.x, v.z, 0x5410),
                              __byte_perm(v.x, v.z, 0x7632));
                mma_16816<AT>(c[mb], ea[2], eb[2], ea[3], eb[3], __byte_perm(v.y, v.w, 0x5410),
                              __byte_perm(v.y, v.w, 0x7632));
            }
        }
        const float sa = __uint_as_float(pr.x), sb = __uint_as_float(pr.y);
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
            acc[mb][0] = __fmaf_rn(c[mb][0], sa, acc[mb][0]);
            acc[mb][1] = __fmaf_rn(c[mb][1], sa, acc[mb][1]);
            acc[mb][2] = __fmaf_rn(c[mb][2], sb, acc[mb][2]);
            acc[mb][3] = __fmaf_rn(c[mb][3], sb, acc[mb][3]);
        }
    };

#pragma unroll
    for (int d = 0; d < S; d++)
        issue(s0 + d * stride, d);
    int slot = 0; /* of step s; step s + S goes to the slot before, consumed last time */
    for (int s = s0; s < s1; s += stride) {
        issue(s + S * stride, slot == 0 ? S : slot - 1);
        cp_async_wait<S>(); /* this lane's copies of step s have landed */
        __syncwarp();       /* and those of the other lanes of its row group (parameters) */
        const uint4 wq = lds128(wsm + 1024 * slot), wr = lds128(wsm + 1024 * slot + 512);
        const uint4 pr = lds128(psm + 128 * slot);
        if (s < full)
            compute(tail_step<false>{}, s, wq, wr, pr);
        else
            compute(tail_step<true>{}, s, wq, wr, pr);
        slot = slot == S ? 0 : slot + 1;
    }
    cp_async_wait<0>();

    /* the warps' sums, added in warp order; fragment value i of lane l is output (row
     * n0 + l / 4 + 8 * (i & 2 ? 1 : 0), activation row m0 + 8 * (i / 4) + 2 * (l % 4) + i % 2) */
    __syncthreads(); /* the ring becomes the table of sums */
    float(*red)[MB * 4][32] = reinterpret_cast<float(*)[MB * 4][32]>(&ring[0][0][0][0]);
    static_assert(sizeof(ring) >= sizeof(float) * TC_KSPLIT * MB * 4 * 32, "ring too small");
#pragma unroll
    for (int mb = 0; mb < MB; mb++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            red[warp][mb * 4 + i][lane] = acc[mb][i];
    __syncthreads();
    for (int v = threadIdx.x; v < MB * 4 * 32; v += TC_KSPLIT * 32) {
        const int i = v >> 5, l = v & 31;
        float sum = red[0][i][l];
#pragma unroll
        for (int w = 1; w < TC_KSPLIT; w++)
            sum = __fadd_rn(sum, red[w][i][l]);
        const int n = n0 + (l >> 2) + (i & 2 ? 8 : 0);
        const int m = m0 + (i >> 2) * 8 + 2 * (l & 3) + (i & 1);
        if (n < p.n && m < p.m)
            store_float(p.c + (size_t)m * p.ldc, p.c_dtype, n,
                        __fadd_rn(sum, p.bias != nullptr ? p.bias[n] : 0.0f));
    }
#endif
}

template <llmq_dtype AT> llmq_status run_tc(state *s, const gemv_params &p, int variant)
{
    const dim3 block(TC_KSPLIT * 32);
    if (p.m <= 8) {
        const dim3 grid((p.n + 15) / 16, 1);
#ifdef LLMQ_CUDA_TUNING
        /* the settings measured against the default (docs/cuda.md, note 7) */
        if constexpr (AT == LLMQ_DTYPE_F16) {
            if (variant >= 9 && variant <= 12) {
                if (variant == 9)
                    gemv_tc_kernel<AT, 1, 1, true, 1, false><<<grid, block, 0, s->stream>>>(p);
                else if (variant == 10)
                    gemv_tc_kernel<AT, 1, 2, false, 2, true><<<grid, block, 0, s->stream>>>(p);
                else if (variant == 11)
                    gemv_tc_kernel<AT, 1, 1, false, 0, true><<<grid, block, 0, s->stream>>>(p);
                else
                    gemv_tc_kernel<AT, 1, 2, true, 1, true><<<grid, block, 0, s->stream>>>(p);
                return check_launch(s, "gemv_tc_kernel");
            }
        }
#endif
        (void)variant;
        gemv_tc_kernel<AT, 1, TC_STAGES, TC_CONTIG, TC_L2_PREFETCH, TC_PIN>
            <<<grid, block, 0, s->stream>>>(p);
    } else {
        const dim3 grid((p.n + 15) / 16, (p.m + 15) / 16);
        gemv_tc_kernel<AT, 2, TC_STAGES, TC_CONTIG, TC_L2_PREFETCH, TC_PIN>
            <<<grid, block, 0, s->stream>>>(p);
    }
    return check_launch(s, "gemv_tc_kernel");
}

/* ---------------------------------------------------------------- dispatch */

template <llmq_dtype AT, int BITS>
llmq_status run(state *s, const gemv_params &p)
{
    int variant = 0; /* a tuning build may ask for 1 (CUDA cores), 2 (CUDA cores, 2 rows per
                        warp at M = 1) or 9..12 (other tensor-core settings, run_tc) */
#ifdef LLMQ_CUDA_TUNING
    if (const char *v = getenv("LLMQ_CUDA_TUNE_GEMV"))
        variant = atoi(v);
#endif
    if constexpr (BITS == 4 && AT != LLMQ_DTYPE_F32) {
        if (s->tier >= TIER_AMPERE && p.gshift >= 0 && variant != 1 && variant != 2)
            return run_tc<AT>(s, p, variant);
    }
    if (p.m == 1) {
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
    /* tensor cores: steps of 128 columns inside one group, group index by a shift */
    const int64_t grp = j->b.map.col_group;
    p.gshift = grp >= j->k ? 31
               : grp > 0 && grp % 128 == 0 && ((grp / 128) & (grp / 128 - 1)) == 0
                   ? __builtin_ctzll((unsigned long long)(grp / 128))
                   : -1;
    switch (j->a.dtype) {
    case LLMQ_DTYPE_F32: return run_bits<LLMQ_DTYPE_F32>(s, p, bits);
    case LLMQ_DTYPE_F16: return run_bits<LLMQ_DTYPE_F16>(s, p, bits);
    default: return run_bits<LLMQ_DTYPE_BF16>(s, p, bits);
    }
}

} /* namespace llmq_cuda */
