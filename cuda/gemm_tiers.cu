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

/* The accumulators of one thread, stored: row m, columns n and n + 1. */
__device__ __forceinline__ void emit(const gemm_params &p, int m, int n, const int32_t *v,
                                     const row_params &r, const col_params *cp)
{
    if (m >= p.m)
        return;
#pragma unroll
    for (int e = 0; e < 2; e++) {
        if (n + e >= p.n)
            break;
        if (p.partial != nullptr)
            atomicAdd(p.partial + (size_t)m * p.n + n + e, v[e]);
        else
            store_out(p, m, n + e, v[e], r, cp[e]);
    }
}

/* ---------------- TURING: m8n8k16, register-staged double buffer ---------------- */

template <int BM, int BN, int BK, int WM, int WN, bool ALIGNED>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)
    gemm_turing_kernel(const gemm_params p)
{
    constexpr int WARPS_N = BN / WN;
    constexpr int THREADS = (BM / WM) * WARPS_N * 32;
    constexpr int MI = WM / 8, NI = WN / 8, KS = BK / 16, CPR = BK / 16;
    constexpr int A_CHUNKS = BM * CPR / THREADS, B_CHUNKS = BN * CPR / THREADS;
    static_assert(MI % 4 == 0 && NI % 4 == 0, "warp tiles of multiples of 32");
    static_assert(BM * CPR % THREADS == 0 && BN * CPR % THREADS == 0, "whole chunks per thread");
    __shared__ __align__(128) int8_t smem[2][(BM + BN) * BK];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    int tm, tn;
    tile_coords((p.m + BM - 1) / BM, (p.n + BN - 1) / BN, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;
    const int kb = blockIdx.z * p.k_split;
    const int ke = min(p.k, kb + p.k_split);
    const int kt_count = (ke - kb + BK - 1) / BK;

    uint4 ra[A_CHUNKS], rb[B_CHUNKS];
    auto gload = [&](int kt) {
        const int k0 = kb + kt * BK;
#pragma unroll
        for (int i = 0; i < A_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            const int gm = m0 + r, gk = k0 + c * 16;
            const int8_t *row = p.a + (size_t)gm * p.lda;
            if (gm >= p.m || gk >= ke)
                ra[i] = make_uint4(0, 0, 0, 0);
            else if (ALIGNED)
                ra[i] = *reinterpret_cast<const uint4 *>(row + gk);
            else
                ra[i] = load16_any(row, gk, ke);
        }
#pragma unroll
        for (int i = 0; i < B_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            const int gn = n0 + r, gk = k0 + c * 16;
            const int8_t *row = p.b + (size_t)gn * p.ldb;
            if (gn >= p.n || gk >= ke)
                rb[i] = make_uint4(0, 0, 0, 0);
            else if (ALIGNED)
                rb[i] = *reinterpret_cast<const uint4 *>(row + gk);
            else
                rb[i] = load16_any(row, gk, ke);
        }
    };
    auto sstore = [&](int stage) {
#pragma unroll
        for (int i = 0; i < A_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            *reinterpret_cast<uint4 *>(&smem[stage][r * BK + swizzle<BK>(r, c) * 16]) = ra[i];
        }
#pragma unroll
        for (int i = 0; i < B_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            *reinterpret_cast<uint4 *>(&smem[stage][(BM + r) * BK + swizzle<BK>(r, c) * 16]) =
                rb[i];
        }
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

    /* accumulator (mi, ni): row gid of the m8 block, columns 2 * tig, 2 * tig + 1 */
    const int gid = lane >> 2, tig = lane & 3;
    col_params cols[NI][2];
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int n = n0 + wn * WN + ni * 8 + tig * 2 + e;
            if (p.partial == nullptr && n < p.n)
                cols[ni][e] = load_col(p, n);
        }
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        const int m = m0 + wm * WM + mi * 8 + gid;
        row_params r{};
        if (p.partial == nullptr && m < p.m)
            r = load_row(p, m);
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
            emit(p, m, n0 + wn * WN + ni * 8 + tig * 2, acc[mi][ni], r, cols[ni]);
    }
}

/* ---------------- AMPERE: m16n8k32, cp.async pipeline of STAGES tiles ---------------- */

template <int BM, int BN, int BK, int WM, int WN, int STAGES, bool ALIGNED>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, 1)
    gemm_ampere_kernel(const gemm_params p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int WARPS_N = BN / WN;
    constexpr int THREADS = (BM / WM) * WARPS_N * 32;
    constexpr int MI = WM / 16, NI = WN / 8, KS = BK / 32, CPR = BK / 16;
    constexpr int A_CHUNKS = BM * CPR / THREADS, B_CHUNKS = BN * CPR / THREADS;
    constexpr int STAGE_BYTES = (BM + BN) * BK;
    static_assert(NI % 2 == 0, "B fragments are loaded in pairs");
    static_assert(BM * CPR % THREADS == 0 && BN * CPR % THREADS == 0, "whole chunks per thread");
    extern __shared__ __align__(128) int8_t smem[];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    int tm, tn;
    tile_coords((p.m + BM - 1) / BM, (p.n + BN - 1) / BN, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;
    const int kb = blockIdx.z * p.k_split;
    const int ke = min(p.k, kb + p.k_split);
    const int kt_count = (ke - kb + BK - 1) / BK;

    auto load_stage = [&](int stage, int kt) {
        int8_t *sa = smem + stage * STAGE_BYTES, *sb = sa + BM * BK;
        const int k0 = kb + kt * BK;
#pragma unroll
        for (int i = 0; i < A_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            const int gm = m0 + r, gk = k0 + c * 16;
            int8_t *dst = sa + r * BK + swizzle<BK>(r, c) * 16;
            const bool ok = gm < p.m && gk < ke;
            if (ALIGNED) {
                cp_async16(smem_addr(dst), ok ? p.a + (size_t)gm * p.lda + gk : p.a, ok ? 16 : 0);
            } else {
                *reinterpret_cast<uint4 *>(dst) =
                    ok ? load16_any(p.a + (size_t)gm * p.lda, gk, ke) : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int i = 0; i < B_CHUNKS; i++) {
            const int idx = tid + i * THREADS, r = idx / CPR, c = idx % CPR;
            const int gn = n0 + r, gk = k0 + c * 16;
            int8_t *dst = sb + r * BK + swizzle<BK>(r, c) * 16;
            const bool ok = gn < p.n && gk < ke;
            if (ALIGNED) {
                cp_async16(smem_addr(dst), ok ? p.b + (size_t)gn * p.ldb + gk : p.b, ok ? 16 : 0);
            } else {
                *reinterpret_cast<uint4 *>(dst) =
                    ok ? load16_any(p.b + (size_t)gn * p.ldb, gk, ke) : make_uint4(0, 0, 0, 0);
            }
        }
    };

    int32_t acc[MI][NI][4];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[mi][ni][e] = 0;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < kt_count)
            load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < kt_count; kt++) {
        cp_async_wait<STAGES - 2>(); /* tile kt has landed (this thread's part) */
        __syncthreads();             /* ... everyone's; and stage (kt - 1) is free again */
        const int next = kt + STAGES - 1;
        if (next < kt_count)
            load_stage(next % STAGES, next);
        cp_async_commit();
        const int8_t *sa = smem + (kt % STAGES) * STAGE_BYTES, *sb = sa + BM * BK;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int mi = 0; mi < MI; mi++) {
                /* matrices: rows 0-7 / 8-15 at k 0-15, then the same rows at k 16-31 */
                const int row = wm * WM + mi * 16 + (lane & 15), chunk = ks * 2 + (lane >> 4);
                ldmatrix_x4(smem_addr(sa + row * BK + swizzle<BK>(row, chunk) * 16), af[mi][0],
                            af[mi][1], af[mi][2], af[mi][3]);
            }
#pragma unroll
            for (int nj = 0; nj < NI / 2; nj++) {
                /* matrices: n 0-7 at k 0-15 / 16-31, then n 8-15 at k 0-15 / 16-31 */
                const int row = wn * WN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
                const int chunk = ks * 2 + ((lane >> 3) & 1);
                ldmatrix_x4(smem_addr(sb + row * BK + swizzle<BK>(row, chunk) * 16),
                            bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    af[mi][e] ^= p.a_flip;
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int ni = 0; ni < NI; ni++)
                    mma_m16n8k32(acc[mi][ni], af[mi], bf[ni]);
        }
    }
    cp_async_wait<0>();

    /* accumulator (mi, ni): rows gid and gid + 8 of the m16 block, columns 2 tig, 2 tig + 1 */
    const int gid = lane >> 2, tig = lane & 3;
    col_params cols[NI][2];
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int n = n0 + wn * WN + ni * 8 + tig * 2 + e;
            if (p.partial == nullptr && n < p.n)
                cols[ni][e] = load_col(p, n);
        }
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int m = m0 + wm * WM + mi * 16 + gid + h * 8;
            row_params r{};
            if (p.partial == nullptr && m < p.m)
                r = load_row(p, m);
#pragma unroll
            for (int ni = 0; ni < NI; ni++)
                emit(p, m, n0 + wn * WN + ni * 8 + tig * 2, &acc[mi][ni][2 * h], r, cols[ni]);
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

template <int BM, int BN, int BK, int WM, int WN>
llmq_status run_turing(state *s, const gemm_params &p, bool aligned, int splits)
{
    constexpr int THREADS = (BM / WM) * (BN / WN) * 32;
    const dim3 grid(grid_tiles(p, BM, BN), 1, splits);
    if (aligned)
        gemm_turing_kernel<BM, BN, BK, WM, WN, true><<<grid, THREADS, 0, s->stream>>>(p);
    else
        gemm_turing_kernel<BM, BN, BK, WM, WN, false><<<grid, THREADS, 0, s->stream>>>(p);
    return check_launch(s, "gemm_turing_kernel");
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES>
llmq_status run_ampere(state *s, const gemm_params &p, bool aligned, int splits)
{
    constexpr int THREADS = (BM / WM) * (BN / WN) * 32;
    constexpr int SMEM = STAGES * (BM + BN) * BK;
    const dim3 grid(grid_tiles(p, BM, BN), 1, splits);
    cudaError_t e;
    if (aligned) {
        auto k = gemm_ampere_kernel<BM, BN, BK, WM, WN, STAGES, true>;
        if ((e = allow_smem(k, SMEM)) != cudaSuccess)
            return fail(s, e, "cudaFuncSetAttribute");
        k<<<grid, THREADS, SMEM, s->stream>>>(p);
    } else {
        auto k = gemm_ampere_kernel<BM, BN, BK, WM, WN, STAGES, false>;
        if ((e = allow_smem(k, SMEM)) != cudaSuccess)
            return fail(s, e, "cudaFuncSetAttribute");
        k<<<grid, THREADS, SMEM, s->stream>>>(p);
    }
    return check_launch(s, "gemm_ampere_kernel");
}

/* Tile configurations: (BM, BN, BK) and the k-split that fills the GPU for small products. */
struct config {
    int bm, bn, bk;
};

int choose_splits(const state *s, const gemm_params &p, const config &c)
{
    const int tiles = grid_tiles(p, c.bm, c.bn);
    const int k_tiles = (p.k + c.bk - 1) / c.bk;
    if (tiles >= s->sms || k_tiles < 8)
        return 1;
    int splits = (2 * s->sms + tiles - 1) / tiles;
    const int max_splits = k_tiles / 4; /* at least 4 k tiles per slice */
    splits = splits < max_splits ? splits : max_splits;
    return splits < 1 ? 1 : splits;
}

} /* namespace */

llmq_status launch_turing(state *s, const gemm_params &p, bool aligned, int splits)
{
    if (p.m >= 128 && p.n >= 128)
        return run_turing<128, 128, 64, 64, 32>(s, p, aligned, splits);
    return run_turing<32, 128, 64, 32, 32>(s, p, aligned, splits);
}

llmq_status launch_ampere(state *s, const gemm_params &p, bool aligned, int splits)
{
    if (p.m >= 128 && p.n >= 256)
        return run_ampere<128, 256, 64, 64, 64, 4>(s, p, aligned, splits);
    return run_ampere<64, 128, 128, 32, 64, 4>(s, p, aligned, splits);
}

static config config_for(const state *s, const gemm_params &p)
{
    if (s->tier == TIER_AMPERE)
        return p.m >= 128 && p.n >= 256 ? config{128, 256, 64} : config{64, 128, 128};
    return p.m >= 128 && p.n >= 128 ? config{128, 128, 64} : config{32, 128, 64};
}

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
    const bool need_rowsum = !(j->b.zp_lo == 0 && j->b.zp_hi == 0);
    const bool need_colsum = !(j->a.zp_lo == p.a_off && j->a.zp_hi == p.a_off);
    const config c = config_for(s, p);
    const int splits = choose_splits(s, p, c);
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
    if (s->tier == TIER_AMPERE)
        LLMQ_TRY(launch_ampere(s, p, aligned, real_splits));
    else
        LLMQ_TRY(launch_turing(s, p, aligned, real_splits));
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
