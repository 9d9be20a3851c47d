/* gemm_tiers.cu - the integer GEMM on tensor cores, C = A * B^T with s8 / u8 A and s8 B
 * (per tensor / per token x per tensor / per channel, any zero points), two tiers:
 *
 * TURING (sm_75, the T4): mma.sync m8n8k16, tiles staged global -> registers -> shared
 *   memory, double-buffered, ldmatrix fragments.
 * AMPERE (sm_80+): mma.sync m16n8k32, cp.async multi-stage pipeline, ldmatrix fragments.
 *
 * Both handle any M, N, K: rows past M / N and k past K are zero-filled in shared memory; k
 * and row strides that are not multiples of 16 bytes take a byte-wise loader. Small products
 * split K over blockIdx.z and add exact int32 partial sums atomically, then one epilogue
 * kernel finishes them. SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "gemm_common.cuh"

namespace llmq_cuda {

namespace {

/* Tile order: groups of 8 tile rows sweep the tile columns, so that neighbouring blocks share
 * A and B tiles in L2. */
__device__ __forceinline__ void tile_coords(int tiles_m, int tiles_n, int &tm, int &tn)
{
    constexpr int GROUP = 8;
    const int bid = blockIdx.x;
    const int per_group = GROUP * tiles_n;
    const int first = bid / per_group * GROUP;
    const int size = min(tiles_m - first, GROUP);
    const int in = bid % per_group;
    tm = first + in % size;
    tn = in / size;
}

/* This block's output tile and k slice. */
struct block_tile {
    int m0, n0;       /* first row and column of the tile */
    int kb, ke;       /* k range of the slice (split-k: blockIdx.z) */
    int kt_count;     /* k tiles in it */
};

template <int BM, int BN, int BK>
__device__ __forceinline__ block_tile block_tile_of(const gemm_params &p)
{
    block_tile t;
    int tm, tn;
    tile_coords((p.m + BM - 1) / BM, (p.n + BN - 1) / BN, tm, tn);
    t.m0 = tm * BM;
    t.n0 = tn * BN;
    t.kb = blockIdx.z * p.k_split;
    t.ke = min(p.k, t.kb + p.k_split);
    t.kt_count = (t.ke - t.kb + BK - 1) / BK;
    return t;
}

/* AMPERE experiment (docs/cuda.md, "What is missing"): with LLMQ_CUDA_SPREAD=1 a tile's
 * cp.async copies are issued a share per k step, between the MMAs, so that they start up to a
 * tile earlier; the default issues them all at the tile's last k step (measured). Not yet run
 * on a GPU: a build with NVCC_APPEND_FLAGS=-DLLMQ_CUDA_SPREAD=1 is its A/B. */
#ifndef LLMQ_CUDA_SPREAD
#define LLMQ_CUDA_SPREAD 0
#endif
constexpr bool AMPERE_SPREAD = LLMQ_CUDA_SPREAD != 0;

/* Epilogue staging: each warp owns EPI_ROWS x (WN + EPI_PAD) int32 of shared memory, reused
 * after the main loop; the padding spreads the fragment writes over the banks. */
constexpr int EPI_ROWS = 16, EPI_PAD = 8;

/* Where a thread's 16-byte chunks of a BM x BK (or BN x BK) tile come from and go to. The
 * chunks of thread t are rows t / CPR + i * (THREADS / CPR), column chunk t % CPR: the rows of
 * one thread differ by a multiple of 8, so they share one swizzle. */
template <int ROWS, int BK, int THREADS> struct tile_loader {
    static constexpr int CPR = BK / 16, STEP = THREADS / CPR, CHUNKS = ROWS * CPR / THREADS;
    static_assert(ROWS * CPR % THREADS == 0 && STEP % 8 == 0, "whole chunks, shared swizzle");
    const int8_t *src;  /* row (r0) at k = 16 * chunk */
    size_t step_bytes;  /* STEP rows of the source */
    int soff;           /* shared-memory offset of the first chunk */
    int rows_left;      /* valid rows from r0 on (rows past the matrix are zero-filled) */
    int kc;             /* 16 * chunk */

    __device__ __forceinline__ void init(const int8_t *base, size_t ld, int row0, int nrows,
                                         int tid)
    {
        const int r0 = tid / CPR, c = tid % CPR;
        kc = 16 * c;
        src = base + (size_t)(row0 + r0) * ld + kc;
        step_bytes = (size_t)STEP * ld;
        soff = r0 * BK + swizzle<BK>(r0, c) * 16;
        rows_left = nrows - row0 - r0;
    }

    /* Chunk i of the k tile at k0, from registers (the TURING path); kok: k0 + kc < ke. */
    template <bool ALIGNED>
    __device__ __forceinline__ uint4 fetch(int i, int k0, int ke, bool kok) const
    {
        const int8_t *s = src + i * step_bytes + k0;
        if (!kok || i * STEP >= rows_left)
            return make_uint4(0, 0, 0, 0);
        if (ALIGNED)
            return *reinterpret_cast<const uint4 *>(s);
        return load16_any(s - (k0 + kc), k0 + kc, ke);
    }

    /* The whole k tile at k0 into shared memory at tile_base: cp.async when ALIGNED (sm_80+;
     * zero-filled copies point at any_valid), else loads and stores. With PARTS > 1 only share
     * `part` of the chunks (the AMPERE loop spreads a tile's copies over its k steps). */
    template <bool ALIGNED, int PARTS = 1>
    __device__ __forceinline__ void issue(uint32_t tile_base, int k0, int ke,
                                          const int8_t *any_valid, int part = 0) const
    {
        /* fewer chunks than shares (or no whole shares): share 0 takes them all */
        constexpr int P = CHUNKS % PARTS == 0 ? PARTS : 1;
        if (P == 1 && part != 0)
            return;
        const bool kok = k0 + kc < ke;
#pragma unroll
        for (int c = 0; c < CHUNKS / P; c++) {
            const int i = (P == 1 ? 0 : part) * (CHUNKS / P) + c;
            const bool ok = kok && i * STEP < rows_left;
            const int8_t *s = src + i * step_bytes + k0;
            const uint32_t dst = tile_base + soff + i * STEP * BK;
            if (ALIGNED) {
                cp_async16(dst, ok ? s : any_valid, ok ? 16 : 0);
            } else {
                const uint4 v = ok ? load16_any(s - (k0 + kc), k0 + kc, ke)
                                   : make_uint4(0, 0, 0, 0);
                asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(v.x),
                             "r"(v.y), "r"(v.z), "r"(v.w));
            }
        }
    }
};

/* ---------------- TURING: m8n8k16, register-staged double buffer ---------------- */

template <int BM, int BN, int BK, int WM, int WN, int MINB, bool ALIGNED>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, MINB)
    gemm_turing_kernel(const __grid_constant__ gemm_params p)
{
    constexpr int WARPS_N = BN / WN;
    constexpr int THREADS = (BM / WM) * WARPS_N * 32;
    constexpr int MI = WM / 8, NI = WN / 8, KS = BK / 16;
    using LA = tile_loader<BM, BK, THREADS>;
    using LB = tile_loader<BN, BK, THREADS>;
    static_assert(MI % 4 == 0 && NI % 4 == 0, "warp tiles of multiples of 32");
    static_assert((BM / WM) * WARPS_N * EPI_ROWS * (WN + EPI_PAD) * 4 <= 2 * (BM + BN) * BK,
                  "epilogue staging fits in the pipeline's shared memory");
    __shared__ __align__(128) int8_t smem[2][(BM + BN) * BK];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const block_tile bt = block_tile_of<BM, BN, BK>(p);
    const int m0 = bt.m0, n0 = bt.n0, kb = bt.kb, ke = bt.ke, kt_count = bt.kt_count;
    LA la;
    LB lb;
    la.init(p.a, p.lda, m0, p.m, tid);
    lb.init(p.b, p.ldb, n0, p.n, tid);

    uint4 ra[LA::CHUNKS], rb[LB::CHUNKS];
    auto gload = [&](int kt) {
        const int k0 = kb + kt * BK;
        const bool kok = k0 + la.kc < ke;
#pragma unroll
        for (int i = 0; i < LA::CHUNKS; i++)
            ra[i] = la.template fetch<ALIGNED>(i, k0, ke, kok);
#pragma unroll
        for (int i = 0; i < LB::CHUNKS; i++)
            rb[i] = lb.template fetch<ALIGNED>(i, k0, ke, kok);
    };
    auto sstore = [&](int stage) {
#pragma unroll
        for (int i = 0; i < LA::CHUNKS; i++)
            *reinterpret_cast<uint4 *>(&smem[stage][la.soff + i * LA::STEP * BK]) = ra[i];
#pragma unroll
        for (int i = 0; i < LB::CHUNKS; i++)
            *reinterpret_cast<uint4 *>(&smem[stage][BM * BK + lb.soff + i * LB::STEP * BK]) =
                rb[i];
    };

    int32_t acc[MI][NI][2];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
            acc[mi][ni][0] = acc[mi][ni][1] = 0;

    if (kt_count > 0) {
        gload(0);
        sstore(0);
    }
    __syncthreads();
    for (int kt = 0; kt < kt_count; kt++) {
        if (kt + 1 < kt_count)
            gload(kt + 1); /* in flight while this stage computes */
        const int8_t *sa = smem[kt & 1], *sb = smem[kt & 1] + BM * BK;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            uint32_t af[MI], bf[NI];
#pragma unroll
            for (int i = 0; i < MI / 4; i++) {
                const int row = wm * WM + i * 32 + lane; /* lane = matrix * 8 + row in it */
                ldmatrix_x4(smem_addr(sa + row * BK + swizzle<BK>(row, ks) * 16), af[4 * i],
                            af[4 * i + 1], af[4 * i + 2], af[4 * i + 3]);
            }
#pragma unroll
            for (int i = 0; i < NI / 4; i++) {
                const int row = wn * WN + i * 32 + lane;
                ldmatrix_x4(smem_addr(sb + row * BK + swizzle<BK>(row, ks) * 16), bf[4 * i],
                            bf[4 * i + 1], bf[4 * i + 2], bf[4 * i + 3]);
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
                af[mi] ^= p.a_flip;
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
                    mma_m8n8k16(acc[mi][ni], af[mi], bf[ni]);
        }
        if (kt + 1 < kt_count)
            sstore((kt + 1) & 1);
        __syncthreads();
    }

    /* accumulator (mi, ni): row gid of the m8 block, columns 2 tig, 2 tig + 1; staged 16 rows
     * (two m8 blocks) at a time */
    const int gid = lane >> 2, tig = lane & 3;
    constexpr int LD = WN + EPI_PAD;
    int32_t *ws = reinterpret_cast<int32_t *>(&smem[0][0]) + warp * EPI_ROWS * LD;
#pragma unroll
    for (int pass = 0; pass < WM / EPI_ROWS; pass++) {
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
                *reinterpret_cast<int2 *>(ws + (h * 8 + gid) * LD + ni * 8 + tig * 2) =
                    make_int2(acc[2 * pass + h][ni][0], acc[2 * pass + h][ni][1]);
        __syncwarp();
        finish_rows(p, ws, LD, EPI_ROWS, WN, m0 + wm * WM + pass * EPI_ROWS, n0 + wn * WN);
        __syncwarp();
    }
}

/* ---------------- AMPERE: m16n8k32, cp.async pipeline of STAGES tiles ---------------- */

/* A warp's fragments of one k step (32 k) of the stage at sa (A) / sb (B): MI A fragments of
 * 16 rows, NI B fragments of 8 columns. A matrices are rows 0-7 / 8-15 at k 0-15, then the same
 * rows at k 16-31; B matrices are n 0-7 at k 0-15 / 16-31, then n 8-15 at k 0-15 / 16-31. */
template <int MI, int NI, int BK>
__device__ __forceinline__ void load_fragments(uint32_t sa, uint32_t sb, int ks, int a_row,
                                               int a_half, int b_row, int b_half,
                                               uint32_t (&af)[MI][4], uint32_t (&bf)[NI][2])
{
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        const int row = a_row + mi * 16;
        ldmatrix_x4(sa + row * BK + swizzle<BK>(row, ks * 2 + a_half) * 16, af[mi][0],
                    af[mi][1], af[mi][2], af[mi][3]);
    }
#pragma unroll
    for (int nj = 0; nj < NI / 2; nj++) {
        const int row = b_row + nj * 16;
        ldmatrix_x4(sb + row * BK + swizzle<BK>(row, ks * 2 + b_half) * 16, bf[2 * nj][0],
                    bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
    }
}

/* The fragments of the next k step are loaded while the tensor cores work on this one (two
 * register sets); the stage barrier sits in the last k step of a tile, after the loads of the
 * tile STAGES - 1 ahead are issued. A_U8: u8 codes, turned into s8 (a - 128) by flipping the
 * top bits of the fragments; s8 A skips that at compile time. */
template <int BM, int BN, int BK, int WM, int WN, int STAGES, int MINB, bool ALIGNED, bool A_U8>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, MINB)
    gemm_ampere_kernel(const __grid_constant__ gemm_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int WARPS_N = BN / WN;
    constexpr int THREADS = (BM / WM) * WARPS_N * 32;
    constexpr int MI = WM / 16, NI = WN / 8, KS = BK / 32;
    constexpr int STAGE_BYTES = (BM + BN) * BK;
    using LA = tile_loader<BM, BK, THREADS>;
    using LB = tile_loader<BN, BK, THREADS>;
    static_assert(NI % 2 == 0, "B fragments are loaded in pairs");
    static_assert(KS % 2 == 0, "whole pairs of k steps per tile (the register sets alternate)");
    static_assert((BM / WM) * WARPS_N * EPI_ROWS * (WN + EPI_PAD) * 4 <= STAGES * STAGE_BYTES,
                  "epilogue staging fits in the pipeline's shared memory");
    extern __shared__ __align__(128) int8_t smem[];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const block_tile bt = block_tile_of<BM, BN, BK>(p);
    const int m0 = bt.m0, n0 = bt.n0, kb = bt.kb, ke = bt.ke, kt_count = bt.kt_count;
    LA la;
    LB lb;
    la.init(p.a, p.lda, m0, p.m, tid);
    lb.init(p.b, p.ldb, n0, p.n, tid);
    const uint32_t sbase = smem_addr(smem);
    /* the fragment epilogue's scales sit past the pipeline's stages */
    const bool fragment_epilogue = p.partial == nullptr && p.out != OUT_Q8 && !p.staged_epilogue;
    auto &scales = *reinterpret_cast<tile_scales<BM, BN> *>(smem + STAGES * STAGE_BYTES);

    auto load_stage = [&](int stage, int kt) {
        const int k0 = kb + kt * BK;
        const uint32_t sa = sbase + stage * STAGE_BYTES;
        la.template issue<ALIGNED>(sa, k0, ke, p.a);
        lb.template issue<ALIGNED>(sa + BM * BK, k0, ke, p.b);
    };
    /* share ks of KS of a stage's copies: issued between the k steps' MMAs, not in one burst */
    auto load_share = [&](int share, int stage, int kt) {
        const int k0 = kb + kt * BK;
        const uint32_t sa = sbase + stage * STAGE_BYTES;
        la.template issue<ALIGNED, KS>(sa, k0, ke, p.a, share);
        lb.template issue<ALIGNED, KS>(sa + BM * BK, k0, ke, p.b, share);
    };

    int32_t acc[MI][NI][4];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[mi][ni][e] = 0;

    const int a_row = wm * WM + (lane & 15), a_half = lane >> 4;
    const int b_row = wn * WN + (lane & 7) + ((lane >> 4) << 3), b_half = (lane >> 3) & 1;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < kt_count)
            load_stage(s, s);
        cp_async_commit();
    }
    if (fragment_epilogue && scales_staged(p, p.out))
        stage_scales<BM, BN, THREADS>(p, m0, n0, scales);
    cp_async_wait<STAGES - 2>(); /* tile 0 has landed (this thread's part) */
    __syncthreads();             /* ... everyone's, and the scales */

    uint32_t af[2][MI][4], bf[2][NI][2];
    int read_stage = 0, write_stage = STAGES - 1;
    uint32_t sa = sbase, sb = sbase + BM * BK;
    load_fragments<MI, NI, BK>(sa, sb, 0, a_row, a_half, b_row, b_half, af[0], bf[0]);
    for (int kt = 0; kt < kt_count; kt++) {
        /* stage write_stage was last read before the previous tile's barrier: its copies
         * may start with this tile's first k step */
        const bool refill = kt + STAGES - 1 < kt_count;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            if constexpr (AMPERE_SPREAD) {
                if (refill)
                    load_share(ks, write_stage, kt + STAGES - 1);
            }
            if (ks == KS - 1) {
                if (!AMPERE_SPREAD && refill)
                    load_stage(write_stage, kt + STAGES - 1);
                cp_async_commit();
                cp_async_wait<STAGES - 2>(); /* tile kt + 1 has landed */
                __syncthreads();
                write_stage = write_stage == STAGES - 1 ? 0 : write_stage + 1;
                read_stage = read_stage == STAGES - 1 ? 0 : read_stage + 1;
                sa = sbase + read_stage * STAGE_BYTES;
                sb = sa + BM * BK;
            }
            /* the next k step: of this tile, or the first of the next one (harmless reads of a
             * stage that holds no tile after the last) */
            load_fragments<MI, NI, BK>(sa, sb, ks == KS - 1 ? 0 : ks + 1, a_row, a_half, b_row,
                                       b_half, af[(ks + 1) & 1], bf[(ks + 1) & 1]);
            if (A_U8) {
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        af[ks & 1][mi][e] ^= 0x80808080u;
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
                    mma_m16n8k32(acc[mi][ni], af[ks & 1][mi], bf[ks & 1][ni]);
        }
    }
    cp_async_wait<0>();
    if (fragment_epilogue) {
        finish_fragments(p, acc, m0, n0, wm * WM, wn * WN, scales);
        return;
    }
    __syncthreads(); /* the pipeline's shared memory becomes the epilogue's */

    /* requantized codes and split-k sums: accumulator (mi, ni) holds rows gid and gid + 8 of
     * the m16 block, columns 2 tig, 2 tig + 1; staged one m16 block (EPI_ROWS rows) at a time */
    const int gid = lane >> 2, tig = lane & 3;
    constexpr int LD = WN + EPI_PAD;
    int32_t *ws = reinterpret_cast<int32_t *>(smem) + warp * EPI_ROWS * LD;
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
#pragma unroll
        for (int ni = 0; ni < NI; ni++) {
            *reinterpret_cast<int2 *>(ws + gid * LD + ni * 8 + tig * 2) =
                make_int2(acc[mi][ni][0], acc[mi][ni][1]);
            *reinterpret_cast<int2 *>(ws + (gid + 8) * LD + ni * 8 + tig * 2) =
                make_int2(acc[mi][ni][2], acc[mi][ni][3]);
        }
        __syncwarp();
        finish_rows(p, ws, LD, EPI_ROWS, WN, m0 + wm * WM + mi * 16, n0 + wn * WN);
        __syncwarp();
    }
#else
    (void)p;
    __trap();
#endif
}

/* Split-k: the exact sums are complete; apply the epilogue. */
__global__ void split_epilogue_kernel(const gemm_params p)
{
    const int64_t total = (int64_t)p.m * p.n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int m = (int)(i / p.n), n = (int)(i - (int64_t)m * p.n);
        store_out(p, m, n, p.partial[i], load_row(p, m), load_col(p, n));
    }
}

/* sum over k of the row's codes as s8 (after flipping the top bit of u8 codes). */
__global__ void row_sums_kernel(const int8_t *x, size_t ld, int rows, int k, uint32_t flip,
                                int32_t *out)
{
    const int lane = threadIdx.x & 31;
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int warps = (gridDim.x * blockDim.x) >> 5;
    const uint8_t f = (uint8_t)(flip & 0xff);
    for (int r = warp; r < rows; r += warps) {
        const int8_t *row = x + (size_t)r * ld;
        int32_t s = 0;
        for (int i = lane; i < k; i += 32)
            s += (int8_t)((uint8_t)row[i] ^ f);
        for (int off = 16; off > 0; off >>= 1)
            s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0)
            out[r] = s;
    }
}

/* Per-kernel setup that needs the host once per process and device: dynamic shared memory
 * beyond 48 KB must be opted into. Re-setting it is harmless, so no global state is kept. */
template <typename K> cudaError_t allow_smem(K kernel, int bytes)
{
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

int grid_tiles(const gemm_params &p, int bm, int bn)
{
    return ((p.m + bm - 1) / bm) * ((p.n + bn - 1) / bn);
}

template <int BM, int BN, int BK, int WM, int WN, int MINB = 1>
llmq_status run_turing(state *s, const gemm_params &p, bool aligned, int splits)
{
    constexpr int THREADS = (BM / WM) * (BN / WN) * 32;
    const dim3 grid(grid_tiles(p, BM, BN), 1, splits);
    if (aligned)
        gemm_turing_kernel<BM, BN, BK, WM, WN, MINB, true><<<grid, THREADS, 0, s->stream>>>(p);
    else
        gemm_turing_kernel<BM, BN, BK, WM, WN, MINB, false><<<grid, THREADS, 0, s->stream>>>(p);
    return check_launch(s, "gemm_turing_kernel");
}

/* Dynamic shared memory of an AMPERE block: the pipeline's stages, then the staged scales. */
template <int BM, int BN, int BK, int STAGES> constexpr int ampere_smem()
{
    return STAGES * (BM + BN) * BK + (int)sizeof(tile_scales<BM, BN>);
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES, int MINB, bool ALIGNED,
          bool A_U8>
llmq_status run_ampere_kernel(state *s, const gemm_params &p, int splits)
{
    constexpr int THREADS = (BM / WM) * (BN / WN) * 32;
    constexpr int SMEM = ampere_smem<BM, BN, BK, STAGES>();
    const dim3 grid(grid_tiles(p, BM, BN), 1, splits);
    auto k = gemm_ampere_kernel<BM, BN, BK, WM, WN, STAGES, MINB, ALIGNED, A_U8>;
    const cudaError_t e = allow_smem(k, SMEM);
    if (e != cudaSuccess)
        return fail(s, e, "cudaFuncSetAttribute");
    k<<<grid, THREADS, SMEM, s->stream>>>(p);
    return check_launch(s, "gemm_ampere_kernel");
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES, int MINB>
llmq_status run_ampere(state *s, const gemm_params &p, bool aligned, int splits)
{
    const bool u8 = p.a_flip != 0;
    if (aligned)
        return u8 ? run_ampere_kernel<BM, BN, BK, WM, WN, STAGES, MINB, true, true>(s, p, splits)
                  : run_ampere_kernel<BM, BN, BK, WM, WN, STAGES, MINB, true, false>(s, p, splits);
    return u8 ? run_ampere_kernel<BM, BN, BK, WM, WN, STAGES, MINB, false, true>(s, p, splits)
              : run_ampere_kernel<BM, BN, BK, WM, WN, STAGES, MINB, false, false>(s, p, splits);
}

/* A tile configuration: its tiles (BM, BN, BK), which the k-split needs, and the launcher of
 * its kernel, so that the tile sizes are written once per configuration. */
struct config {
    int bm, bn, bk;
    llmq_status (*run)(state *s, const gemm_params &p, bool aligned, int splits);
};

template <int BM, int BN, int BK, int WM, int WN, int STAGES, int MINB = 1>
config ampere_config()
{
    return {BM, BN, BK, run_ampere<BM, BN, BK, WM, WN, STAGES, MINB>};
}

template <int BM, int BN, int BK, int WM, int WN, int MINB = 1> config turing_config()
{
    return {BM, BN, BK, run_turing<BM, BN, BK, WM, WN, MINB>};
}

/* The k-split that fills the GPU for small products. */
int choose_splits(const state *s, const gemm_params &p, const config &c)
{
    const int tiles = grid_tiles(p, c.bm, c.bn);
    const int k_tiles = (p.k + c.bk - 1) / c.bk;
    if (4 * tiles > s->sms || k_tiles < 8) /* the zeroing, atomics and second pass of a split
                                              * cost more than a quarter of the SMs idle */
        return 1;
    int splits = (2 * s->sms + tiles - 1) / tiles;
    const int max_splits = k_tiles / 4; /* at least 4 k tiles per slice */
    splits = splits < max_splits ? splits : max_splits;
    return splits < 1 ? 1 : splits;
}

#ifdef LLMQ_CUDA_TUNING
/* Tuning builds only: $LLMQ_CUDA_TUNE picks another tile configuration of the context's tier
 * by its number (docs/cuda.md). */
bool tuned_config(const state *s, config *c)
{
    const char *v = getenv("LLMQ_CUDA_TUNE");
    const int t = v != nullptr ? atoi(v) : 0;
    const struct {
        int number, tier;
        config c;
    } table[] = {
        {1, TIER_AMPERE, ampere_config<128, 256, 64, 64, 64, 4>()},
        {2, TIER_AMPERE, ampere_config<128, 256, 64, 64, 64, 5>()},
        {3, TIER_AMPERE, ampere_config<128, 256, 128, 64, 64, 3>()},
        {4, TIER_AMPERE, ampere_config<256, 128, 64, 64, 64, 4>()},
        {5, TIER_AMPERE, ampere_config<128, 256, 64, 32, 64, 4>()},
        {6, TIER_AMPERE, ampere_config<128, 128, 64, 64, 64, 4>()},
        {7, TIER_AMPERE, ampere_config<256, 128, 128, 64, 64, 3>()},
        {8, TIER_AMPERE, ampere_config<128, 256, 128, 64, 64, 4>()},
        {9, TIER_AMPERE, ampere_config<64, 128, 128, 32, 64, 4>()},
        {10, TIER_AMPERE, ampere_config<128, 128, 64, 64, 32, 4>()},
        {12, TIER_AMPERE, ampere_config<64, 256, 64, 64, 64, 4>()},
        {15, TIER_AMPERE, ampere_config<128, 128, 128, 64, 64, 3>()},
        {16, TIER_AMPERE, ampere_config<128, 128, 64, 64, 32, 4, 2>()},
        {11, TIER_TURING, turing_config<128, 128, 64, 64, 32, 2>()},
        {13, TIER_TURING, turing_config<128, 256, 64, 64, 64, 1>()},
        {14, TIER_TURING, turing_config<128, 128, 64, 64, 64, 2>()},
        {30, TIER_TURING, turing_config<128, 256, 64, 64, 32, 1>()},
        {31, TIER_TURING, turing_config<256, 128, 64, 64, 32, 1>()},
    };
    for (const auto &e : table)
        if (e.number == t && e.tier == s->tier) {
            *c = e.c;
            return true;
        }
    return false;
}
#endif

config config_for(const state *s, const gemm_params &p)
{
#ifdef LLMQ_CUDA_TUNING
    config t;
    if (tuned_config(s, &t))
        return t;
#endif
    /* AMPERE: large tiles once 128 x 256 ones would give every SM at least one (M > 1024 at
     * N = 4096 on a 132-SM H100); below that, 4 warps of 32 x 64 on 64 x 128 tiles fill more
     * SMs (docs/cuda.md, note 10). The large tiles are two blocks of 128 x 128 x 128 (3
     * stages, 4 warps of 64 x 64) per SM where two fit (sm_90: 228 KB), so that one block's
     * prologue and epilogue overlap the other's main loop (note 11); else one block of
     * 128 x 256 x 64 (8 warps of 64 x 64, 4 stages). TURING: 4 warps of 64 x 64, 2 blocks per
     * SM. */
    if (s->tier == TIER_AMPERE) {
        if (!(p.m >= 128 && p.n >= 256 && grid_tiles(p, 128, 256) >= s->sms))
            return ampere_config<64, 128, 128, 32, 64, 4>();
        constexpr int reserved = 1024; /* shared memory the system keeps per block */
        return s->smem_per_sm >= 2 * (ampere_smem<128, 128, 128, 3>() + reserved)
                   ? ampere_config<128, 128, 128, 64, 64, 3>()
                   : ampere_config<128, 256, 64, 64, 64, 4>();
    }
    return p.m >= 128 && p.n >= 128 ? turing_config<128, 128, 64, 64, 64, 2>()
                                    : turing_config<32, 128, 64, 32, 32>();
}

} /* namespace */

static bool is_8bit_uniform(const llmq_matmul_job *j)
{
    return (j->a.dtype == LLMQ_DTYPE_S8 || j->a.dtype == LLMQ_DTYPE_U8) &&
           j->b.dtype == LLMQ_DTYPE_S8 && !j->b_kn && j->a_uniform_k && j->b_uniform_k &&
           j->m <= INT32_MAX && j->n <= INT32_MAX && j->k <= INT32_MAX;
}

llmq_status launch_gemm_tiered(state *s, const llmq_matmul_job *j, bool *taken)
{
    *taken = false;
    if (!is_8bit_uniform(j))
        return LLMQ_OK;
    *taken = true;
    gemm_params p{};
    p.m = (int)j->m;
    p.n = (int)j->n;
    p.k = (int)j->k;
    p.a = static_cast<const int8_t *>(j->a.data);
    p.lda = j->a.stride;
    p.b = static_cast<const int8_t *>(j->b.data);
    p.ldb = j->b.stride;
    p.c = j->c_data;
    p.ldc = j->c.stride;
    const bool a_u8 = j->a.dtype == LLMQ_DTYPE_U8;
    p.a_flip = a_u8 ? 0x80808080u : 0u;
    p.a_off = a_u8 ? 128 : 0;
    p.c_dtype = j->c.dtype;
    switch (j->c.dtype) {
    case LLMQ_DTYPE_S32: p.out = OUT_S32; break;
    case LLMQ_DTYPE_F32: p.out = OUT_F32; break;
    case LLMQ_DTYPE_F16: p.out = OUT_F16; break;
    case LLMQ_DTYPE_BF16: p.out = OUT_BF16; break;
    default: p.out = OUT_Q8; break;
    }
    p.sa = j->a.scale;
    p.za = j->a.zero_point;
    p.amap = j->a.map;
    p.sb = j->b.scale;
    p.zb = j->b.zero_point;
    p.bmap = j->b.map;
    p.bias = j->bias;
    if (p.out == OUT_Q8) {
        p.sc = j->c.scale;
        p.zc = j->c.zero_point;
        p.cmap = j->c.map;
        p.qmin = j->c.qmin;
        p.qmax = j->c.qmax;
        p.requant_multiplier = j->requant == LLMQ_REQUANT_MULTIPLIER;
    }
#ifdef LLMQ_CUDA_TUNING
    const char *epi = getenv("LLMQ_CUDA_EPI");
    p.staged_epilogue = epi != nullptr && strcmp(epi, "staged") == 0;
#endif
    const bool need_rowsum = !(j->b.zp_lo == 0 && j->b.zp_hi == 0);
    const bool need_colsum = !(j->a.zp_lo == p.a_off && j->a.zp_hi == p.a_off);
    const config c = config_for(s, p);
    int splits = choose_splits(s, p, c);
#ifdef LLMQ_CUDA_TUNING
    if (const char *forced = getenv("LLMQ_CUDA_SPLITS")) /* a forced k-split (tuning builds) */
        splits = atoi(forced) > 1 ? atoi(forced) : 1;
#endif
    const size_t sums = (need_rowsum ? (size_t)p.m : 0) + (need_colsum ? (size_t)p.n : 0);
    const size_t partial = splits > 1 ? (size_t)p.m * p.n : 0;
    if (sums + partial > 0) {
        void *ws;
        LLMQ_TRY(workspace(s, (sums + partial) * sizeof(int32_t), &ws));
        int32_t *w = static_cast<int32_t *>(ws);
        if (partial > 0) {
            p.partial = w;
            w += partial;
            const cudaError_t e =
                cudaMemsetAsync(p.partial, 0, partial * sizeof(int32_t), s->stream);
            if (e != cudaSuccess)
                return fail(s, e, "cudaMemsetAsync");
        }
        const int blocks = s->sms * 8;
        if (need_rowsum) {
            p.rowsum_a = w;
            row_sums_kernel<<<blocks, 256, 0, s->stream>>>(p.a, p.lda, p.m, p.k,
                                                           p.a_flip, w);
            LLMQ_TRY(check_launch(s, "row_sums_kernel"));
            w += p.m;
        }
        if (need_colsum) {
            p.colsum_b = w;
            row_sums_kernel<<<blocks, 256, 0, s->stream>>>(p.b, p.ldb, p.n, p.k, 0u, w);
            LLMQ_TRY(check_launch(s, "row_sums_kernel"));
        }
    }
    const bool aligned = p.k % 16 == 0 && p.lda % 16 == 0 && p.ldb % 16 == 0 &&
                         (uintptr_t)p.a % 16 == 0 && (uintptr_t)p.b % 16 == 0;
    const int k_tiles = (p.k + c.bk - 1) / c.bk;
    p.k_split = splits > 1 ? (k_tiles + splits - 1) / splits * c.bk : p.k;
    const int real_splits = splits > 1 ? (p.k + p.k_split - 1) / p.k_split : 1;
    LLMQ_TRY(c.run(s, p, aligned, real_splits));
    if (p.partial == nullptr)
        return LLMQ_OK;
    gemm_params q = p;
    const int64_t total = (int64_t)p.m * p.n;
    const int64_t blocks = (total + 255) / 256;
    split_epilogue_kernel<<<(unsigned)(blocks < s->sms * 16 ? blocks : s->sms * 16), 256, 0,
                            s->stream>>>(q);
    return check_launch(s, "split_epilogue_kernel");
}

} /* namespace llmq_cuda */
