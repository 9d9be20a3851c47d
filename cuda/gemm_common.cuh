/* gemm_common.cuh - what the integer GEMM tiers share: the launch parameters, the tensor-core
 * instructions, and the epilogue of docs/gemm.md (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CUDA_GEMM_COMMON_CUH
#define LLMQ_CUDA_GEMM_COMMON_CUH

#include "cuda_internal.cuh"

namespace llmq_cuda {

enum gemm_out { OUT_S32 = 0, OUT_F32 = 1, OUT_F16 = 2, OUT_BF16 = 3, OUT_Q8 = 4 };

/* C[m, n] = sum_k A[m, k] * B[n, k] with s8 codes (u8 A is turned into s8 by flipping the top
 * bit, a - 128, inside the kernels), then the epilogue. */
struct gemm_params {
    int m, n, k;
    const int8_t *a;
    size_t lda; /* bytes between rows */
    const int8_t *b;
    size_t ldb;
    void *c;
    size_t ldc;
    uint32_t a_flip;   /* 0x80808080 for u8 A, else 0 */
    int k_split;       /* k per blockIdx.z slice (a multiple of the tile's k), >= k if none */
    int32_t *partial;  /* split-k: int32 sums are added here (m x n) instead of the epilogue */
    /* epilogue */
    int out;           /* gemm_out */
    llmq_dtype c_dtype;
    const float *sa;
    const int32_t *za;
    llmq_param_map amap;
    int32_t a_off;     /* 128 for u8 A, else 0: zA' = zA - a_off matches the flipped codes */
    const float *sb;
    const int32_t *zb;
    llmq_param_map bmap;
    const float *bias;
    const float *sc;
    const int32_t *zc;
    llmq_param_map cmap;
    int32_t qmin, qmax;
    int requant_multiplier;
    const int32_t *rowsum_a; /* sum_k (a - a_off) per row, when some zB != 0; else NULL */
    const int32_t *colsum_b; /* sum_k b per output channel, when some zA' != 0; else NULL */
    int staged_epilogue;     /* tuning builds ($LLMQ_CUDA_EPI=staged): no fragment epilogue */
};

/* ---- tensor-core and memory instructions ---- */

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Four 8x8 matrices of 16-bit elements (here: 8 rows x 16 bytes of s8) from shared memory;
 * lanes 8i..8i+7 give the row addresses of matrix i. Thread t receives row t/4, bytes
 * 4(t%4)..4(t%4)+3 of each: the A / B fragment layout of the s8 mma shapes. sm_75+. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1,
                                            uint32_t &r2, uint32_t &r3)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* The mma asm statements only touch registers: without `volatile` the compiler may schedule
 * them freely (a tuning build can keep them volatile to compare). */
#ifdef LLMQ_CUDA_MMA_VOLATILE
#define LLMQ_MMA_ASM asm volatile
#else
#define LLMQ_MMA_ASM asm
#endif

/* D = A(8x16 s8, row) * B(16x8 s8, col) + C, s32: the Turing instruction. sm_75+. */
__device__ __forceinline__ void mma_m8n8k16(int32_t *d, uint32_t a, uint32_t b)
{
    LLMQ_MMA_ASM("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0, %1}, {%2}, {%3}, "
                 "{%0, %1};\n"
                 : "+r"(d[0]), "+r"(d[1])
                 : "r"(a), "r"(b));
}

/* D = A(16x32 s8, row) * B(32x8 s8, col) + C, s32: the Ampere instruction. sm_80+. */
__device__ __forceinline__ void mma_m16n8k32(int32_t *d, const uint32_t *a, const uint32_t *b)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    LLMQ_MMA_ASM("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, "
                 "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)d, (void)a, (void)b;
    __trap();
#endif
}

/* 16-byte global -> shared copy that bypasses registers; src_bytes 0 zero-fills. sm_80+. */
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
#else
    (void)dst, (void)src, (void)src_bytes;
    __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

template <int N> __device__ __forceinline__ void cp_async_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

/* XOR swizzle of the 16-byte chunks of a tile row of BK bytes: the 8 rows an ldmatrix reads
 * at one logical chunk land in 8 different 16-byte bank groups. */
template <int BK> __device__ __forceinline__ int swizzle(int row, int chunk)
{
    static_assert(BK == 64 || BK == 128, "tile k of 64 or 128 bytes");
    return BK == 128 ? chunk ^ (row & 7) : chunk ^ ((row >> 1) & 3);
}

/* 16 bytes of a row from k0 on, zero past k: the path for rows that cp.async cannot take
 * (k or a stride not a multiple of 16, or a misaligned base). */
__device__ __forceinline__ uint4 load16_any(const int8_t *row, int k0, int k)
{
    uint32_t w[4] = {0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < 16; i++)
        if (k0 + i < k)
            w[i >> 2] |= (uint32_t)(uint8_t)row[k0 + i] << (8 * (i & 3));
    return make_uint4(w[0], w[1], w[2], w[3]);
}

/* ---- epilogue ---- */

/* Per-row (A) and per-column (B) parameters a thread needs once. */
struct row_params {
    float sa;
    int32_t za;     /* zA - a_off */
    int32_t rowsum; /* sum_k (a - a_off), when rowsum_a is set */
    int64_t cbase;
};

__device__ __forceinline__ row_params load_row(const gemm_params &p, int m)
{
    row_params r;
    const int64_t pa = param_row_base(p.amap, m);
    r.sa = p.sa != nullptr ? p.sa[pa] : 1.0f;
    r.za = p.za != nullptr ? p.za[pa] - p.a_off : 0;
    r.rowsum = p.rowsum_a != nullptr ? p.rowsum_a[m] : 0;
    r.cbase = p.out == OUT_Q8 ? param_row_base(p.cmap, m) : 0;
    return r;
}

struct col_params {
    float sb, bias;
    int32_t zb;
    int32_t colsum; /* sum_k b, when colsum_b is set */
};

__device__ __forceinline__ col_params load_col(const gemm_params &p, int n)
{
    col_params c;
    const int64_t pb = param_row_base(p.bmap, n);
    c.sb = p.sb != nullptr ? p.sb[pb] : 1.0f;
    c.zb = p.zb != nullptr ? p.zb[pb] : 0;
    c.bias = p.bias != nullptr ? p.bias[n] : 0.0f;
    c.colsum = p.colsum_b != nullptr ? p.colsum_b[n] : 0;
    return c;
}

/* Whether the sums need zero-point corrections (some zA' or zB is not zero). */
__device__ __forceinline__ bool zero_points(const gemm_params &p)
{
    return p.rowsum_a != nullptr || p.colsum_b != nullptr;
}

/* The exact sum of (a - zA)(b - zB) from the raw sum of (a - a_off) * b, in wrapping int32:
 * the true value fits (llmq_matmul checks the bound), so the modular arithmetic is exact. */
__device__ __forceinline__ int32_t corrected(const gemm_params &p, int32_t acc,
                                             const row_params &r, const col_params &c)
{
    if (!zero_points(p))
        return acc;
    uint32_t v = (uint32_t)acc;
    v -= (uint32_t)c.zb * (uint32_t)r.rowsum;
    v -= (uint32_t)r.za * (uint32_t)c.colsum;
    v += (uint32_t)p.k * (uint32_t)r.za * (uint32_t)c.zb;
    return (int32_t)v;
}

/* One output element, in the reference's order of float operations. */
__device__ __forceinline__ void store_out(const gemm_params &p, int m, int n, int32_t acc,
                                          const row_params &r, const col_params &c)
{
    char *row = static_cast<char *>(p.c) + (size_t)m * p.ldc;
    const int32_t v = corrected(p, acc, r, c);
    switch (p.out) {
    case OUT_S32: reinterpret_cast<int32_t *>(row)[n] = v; return;
    case OUT_Q8: {
        const int64_t pc = r.cbase + n / p.cmap.col_group;
        const float sc = p.sc[pc];
        const int32_t zc = p.zc[pc];
        const float t = p.requant_multiplier
                            ? __fmul_rn((float)v, __fdiv_rn(__fmul_rn(r.sa, c.sb), sc))
                            : __fdiv_rn(__fmul_rn(__fmul_rn((float)v, r.sa), c.sb), sc);
        reinterpret_cast<uint8_t *>(row)[n] = (uint8_t)requant(t, zc, p.qmin, p.qmax);
        return;
    }
    default: {
        const float y = __fadd_rn(__fmul_rn(__fmul_rn((float)v, r.sa), c.sb), c.bias);
        store_float(row, p.c_dtype, n, y);
        return;
    }
    }
}

/* Outputs (m, n) and (m, n + 1): one 8-byte (s32, f32) or 4-byte (f16, bf16) store when the
 * pair is aligned, which it is for the usual packed outputs. */
__device__ __forceinline__ void store_pair(const gemm_params &p, int m, int n, int32_t a0,
                                           int32_t a1, const row_params &r, const col_params &c0,
                                           const col_params &c1)
{
    char *row = static_cast<char *>(p.c) + (size_t)m * p.ldc;
    const bool both = n + 1 < p.n;
    if (both && p.out != OUT_Q8) {
        const int32_t v0 = corrected(p, a0, r, c0), v1 = corrected(p, a1, r, c1);
        if (p.out == OUT_S32 && ((uintptr_t)(row + 4 * (size_t)n) & 7) == 0) {
            *reinterpret_cast<int2 *>(row + 4 * (size_t)n) = make_int2(v0, v1);
            return;
        }
        const float y0 = __fadd_rn(__fmul_rn(__fmul_rn((float)v0, r.sa), c0.sb), c0.bias);
        const float y1 = __fadd_rn(__fmul_rn(__fmul_rn((float)v1, r.sa), c1.sb), c1.bias);
        if (p.out == OUT_F32 && ((uintptr_t)(row + 4 * (size_t)n) & 7) == 0) {
            *reinterpret_cast<float2 *>(row + 4 * (size_t)n) = make_float2(y0, y1);
            return;
        }
        if ((p.out == OUT_F16 || p.out == OUT_BF16) &&
            ((uintptr_t)(row + 2 * (size_t)n) & 3) == 0) {
            const uint32_t h0 = p.out == OUT_F16 ? f32_to_f16(y0) : f32_to_bf16(y0);
            const uint32_t h1 = p.out == OUT_F16 ? f32_to_f16(y1) : f32_to_bf16(y1);
            *reinterpret_cast<uint32_t *>(row + 2 * (size_t)n) = h0 | h1 << 16;
            return;
        }
    }
    store_out(p, m, n, a0, r, c0);
    if (both)
        store_out(p, m, n + 1, a1, r, c1);
}

/* d[0] = v0 and, if both, d[1] = v1: one store of the pair type V2 where d is aligned for it. */
template <typename T, typename V2>
__device__ __forceinline__ void store_two(T *d, T v0, T v1, bool both)
{
    if (both && ((uintptr_t)d % sizeof(V2)) == 0) {
        *reinterpret_cast<V2 *>(d) = V2{v0, v1};
    } else {
        d[0] = v0;
        if (both)
            d[1] = v1;
    }
}

/* Outputs (m, n) and (m, n + 1 if < N) of a dequantizing or raw epilogue whose output type is
 * known at compile time: the fragment epilogue below unrolls it over a warp tile. The same
 * values as store_pair, whose run-time switch keeps the staged epilogue's loop compact. */
template <int OUT>
__device__ __forceinline__ void store_pair_as(const gemm_params &p, int m, int n, int32_t a0,
                                              int32_t a1, const row_params &r,
                                              const col_params &c0, const col_params &c1)
{
    char *row = static_cast<char *>(p.c) + (size_t)m * p.ldc;
    const bool both = n + 1 < p.n;
    const int32_t v0 = corrected(p, a0, r, c0);
    const int32_t v1 = both ? corrected(p, a1, r, c1) : 0;
    if (OUT == OUT_S32) {
        store_two<int32_t, int2>(reinterpret_cast<int32_t *>(row) + n, v0, v1, both);
        return;
    }
    const float y0 = __fadd_rn(__fmul_rn(__fmul_rn((float)v0, r.sa), c0.sb), c0.bias);
    const float y1 = __fadd_rn(__fmul_rn(__fmul_rn((float)v1, r.sa), c1.sb), c1.bias);
    if (OUT == OUT_F32)
        store_two<float, float2>(reinterpret_cast<float *>(row) + n, y0, y1, both);
    else if (OUT == OUT_F16)
        store_two<uint16_t, ushort2>(reinterpret_cast<uint16_t *>(row) + n, f32_to_f16(y0),
                                     f32_to_f16(y1), both);
    else
        store_two<uint16_t, ushort2>(reinterpret_cast<uint16_t *>(row) + n, f32_to_bf16(y0),
                                     f32_to_bf16(y1), both);
}

/* The scales of a tile's rows and columns and its bias, staged in shared memory at the start of
 * the kernel: their loads overlap the pipeline's prologue, where the fragment epilogue would
 * wait on one global load per row. (Zero-point corrections load theirs in the epilogue, which
 * keeps the staging within the 99 KB of shared memory a block gets on sm_86 / sm_89.) */
template <int BM, int BN> struct tile_scales {
    float sa[BM], sb[BN], bias[BN];
};

/* Whether the fragment epilogue of output type `out` reads its parameters from tile_scales:
 * float outputs without zero points (raw s32 sums read none). */
__device__ __forceinline__ bool scales_staged(const gemm_params &p, int out)
{
    return out != OUT_S32 && !zero_points(p);
}

template <int BM, int BN, int THREADS>
__device__ __forceinline__ void stage_scales(const gemm_params &p, int m0, int n0,
                                             tile_scales<BM, BN> &t)
{
    for (int i = threadIdx.x; i < BM; i += THREADS)
        t.sa[i] = m0 + i < p.m ? load_row(p, m0 + i).sa : 0.0f;
    for (int i = threadIdx.x; i < BN; i += THREADS) {
        const col_params c = n0 + i < p.n ? load_col(p, n0 + i) : col_params{};
        t.sb[i] = c.sb;
        t.bias[i] = c.bias;
    }
}

/* The epilogue straight from a warp's m16n8 accumulators acc[MI][NI][4] (every output type but
 * requantized codes, no split-k): lane (gid, tig) owns rows gid and gid + 8 of each m16 block,
 * columns 2 tig and 2 tig + 1 of each n8 block. The warp's rows start at row wr of the tile
 * (output row m0 + wr), its columns at wc (n0 + wc); without zero points the parameters come
 * from the staged tile_scales, with them from global memory, columns once per thread and rows
 * once per row. */
template <int OUT, int MI, int NI, int BM, int BN>
__device__ __forceinline__ void finish_fragments_as(const gemm_params &p,
                                                    const int32_t (&acc)[MI][NI][4], int m0,
                                                    int n0, int wr, int wc,
                                                    const tile_scales<BM, BN> &t)
{
    const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
    const bool zp = zero_points(p), staged = scales_staged(p, OUT);
    col_params cp[NI][2] = {};
    if (zp || staged) { /* raw s32 sums: no parameters at all */
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int c = wc + ni * 8 + tig * 2 + j;
                if (zp) {
                    if (n0 + c < p.n)
                        cp[ni][j] = load_col(p, n0 + c);
                } else {
                    cp[ni][j].sb = t.sb[c];
                    cp[ni][j].bias = t.bias[c];
                }
            }
    }
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = wr + mi * 16 + h * 8 + gid, m = m0 + r;
            if (m >= p.m)
                continue;
            row_params rp{};
            if (zp)
                rp = load_row(p, m);
            else if (staged)
                rp.sa = t.sa[r];
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                const int n = n0 + wc + ni * 8 + tig * 2;
                if (n < p.n)
                    store_pair_as<OUT>(p, m, n, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], rp,
                                       cp[ni][0], cp[ni][1]);
            }
        }
}

template <int MI, int NI, int BM, int BN>
__device__ __forceinline__ void finish_fragments(const gemm_params &p,
                                                 const int32_t (&acc)[MI][NI][4], int m0, int n0,
                                                 int wr, int wc, const tile_scales<BM, BN> &t)
{
    switch (p.out) {
    case OUT_S32: finish_fragments_as<OUT_S32>(p, acc, m0, n0, wr, wc, t); break;
    case OUT_F32: finish_fragments_as<OUT_F32>(p, acc, m0, n0, wr, wc, t); break;
    case OUT_F16: finish_fragments_as<OUT_F16>(p, acc, m0, n0, wr, wc, t); break;
    default: finish_fragments_as<OUT_BF16>(p, acc, m0, n0, wr, wc, t); break;
    }
}

/* Finish `rows` (<= 32) staged rows of a warp tile: ws holds them (row stride ld int32),
 * starting at output row m_first and column n_first; lane l owns columns 2l and 2l + 1
 * (wn <= 64). A loop, not unrolled, called once per pass: compact code (a fully unrolled
 * epilogue of 128 outputs per thread overflowed the instruction cache) and whole-line stores
 * per row. The rows' parameters are loaded by one lane each, all at once, and shuffled to the
 * warp, so the loop never waits on global memory. */
__device__ __noinline__ void finish_rows(const gemm_params &p, const int32_t *ws, int ld,
                                         int rows, int wn, int m_first, int n_first)
{
    const int lane = threadIdx.x & 31;
    const int c = 2 * lane;
    const int n = n_first + c;
    const bool active = c < wn && n < p.n;
    col_params c0{}, c1{};
    row_params mine{};
    if (p.partial == nullptr) {
        if (active) {
            c0 = load_col(p, n);
            if (n + 1 < p.n)
                c1 = load_col(p, n + 1);
        }
        if (lane < rows && m_first + lane < p.m)
            mine = load_row(p, m_first + lane);
    }
#pragma unroll 1
    for (int rr = 0; rr < rows; rr++) {
        const int m = m_first + rr;
        if (m >= p.m)
            break;
        row_params r;
        r.sa = __shfl_sync(0xffffffffu, mine.sa, rr);
        r.za = __shfl_sync(0xffffffffu, mine.za, rr);
        r.rowsum = __shfl_sync(0xffffffffu, mine.rowsum, rr);
        r.cbase = __shfl_sync(0xffffffffu, mine.cbase, rr);
        if (!active)
            continue;
        const int2 v = *reinterpret_cast<const int2 *>(ws + rr * ld + c);
        if (p.partial != nullptr) {
            int32_t *dst = p.partial + (size_t)m * p.n + n;
            atomicAdd(dst, v.x);
            if (n + 1 < p.n)
                atomicAdd(dst + 1, v.y);
            continue;
        }
        store_pair(p, m, n, v.x, v.y, r, c0, c1);
    }
}

} /* namespace llmq_cuda */

#endif
