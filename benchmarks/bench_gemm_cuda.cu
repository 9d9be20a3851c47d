/* bench_gemm_cuda.cu - `llmq bench gemm --backend cuda`: llmq's CUDA GEMM tiers, fused W8A8
 * linear and weight-only GEMV next to cuBLASLt INT8 and cuBLAS FP16 measured in the same run,
 * plus the two ceilings (register-only mma.sync loops) and the DRAM read bandwidth.
 *
 * llmq is used through its public API only (device tensors on this program's stream). The
 * peers are loaded at run time with dlopen (libcublasLt / libcublas; $LLMQ_CUBLAS_DIR may name
 * their folder), so the program builds wherever nvcc does; without them the peer columns read
 * "-". Timings: CUDA events around each call on one stream, after warm-up; the median of the
 * repetitions. SPDX-License-Identifier: MIT */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llmq.h"

#define CHECK_CUDA(x)                                                                          \
    do {                                                                                       \
        cudaError_t e_ = (x);                                                                  \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define CHECK_LLMQ(ctx, x)                                                                     \
    do {                                                                                       \
        llmq_status s_ = (x);                                                                  \
        if (s_ != LLMQ_OK) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #x,                     \
                    llmq_status_name(s_), llmq_context_last_error(ctx));                       \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static cudaStream_t g_stream;
static int g_reps = 20;

/* ---------------------------------------------------------------- device helpers */

/* Random-looking data (never zeros: they can run faster than real data). */
__device__ uint32_t hash32(size_t i, uint32_t seed)
{
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    return h ^ (h >> 13);
}

__global__ void fill_s8(int8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (int8_t)(hash32(i, seed) >> 24);
}

__global__ void fill_f16(__half *p, size_t n, uint32_t seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = __float2half(((float)(hash32(i, seed) >> 8) / 16777216.0f - 0.5f) * 2.0f);
}

/* Read bandwidth: every byte read once with 16-byte loads, folded into one word. */
__global__ void read_kernel(const uint4 *p, size_t n, uint32_t *sink)
{
    uint32_t acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u)
        *sink = acc;
}

/* Ceilings: independent mma.sync chains in registers, no memory traffic. */
__global__ void ceiling_m16n8k32(int iters, int32_t *sink)
{
#if __CUDA_ARCH__ >= 800
    uint32_t a[4] = {threadIdx.x, 1u, 2u, 3u}, b[2] = {5u, threadIdx.x};
    int32_t d[8][4] = {};
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
            asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, "
                         "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                         : "+r"(d[j][0]), "+r"(d[j][1]), "+r"(d[j][2]), "+r"(d[j][3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    int32_t s = 0;
    for (int j = 0; j < 8; j++)
        s += d[j][0] + d[j][1] + d[j][2] + d[j][3];
    if (s == 0x7fffffff)
        *sink = s;
#endif
}

__global__ void ceiling_m8n8k16(int iters, int32_t *sink)
{
    uint32_t a = threadIdx.x, b = 7u;
    int32_t d[8][2] = {};
    for (int i = 0; i < iters; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
            asm volatile("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, "
                         "{%0,%1};\n"
                         : "+r"(d[j][0]), "+r"(d[j][1])
                         : "r"(a), "r"(b));
    int32_t s = 0;
    for (int j = 0; j < 8; j++)
        s += d[j][0] + d[j][1];
    if (s == 0x7fffffff)
        *sink = s;
}

template <typename F> static double time_ms(F f, int reps = -1)
{
    if (reps < 0)
        reps = g_reps;
    for (int i = 0; i < 3; i++)
        f();
    CHECK_CUDA(cudaStreamSynchronize(g_stream));
    std::vector<cudaEvent_t> ev(2 * reps);
    for (auto &e : ev)
        CHECK_CUDA(cudaEventCreate(&e));
    for (int i = 0; i < reps; i++) {
        CHECK_CUDA(cudaEventRecord(ev[2 * i], g_stream));
        f();
        CHECK_CUDA(cudaEventRecord(ev[2 * i + 1], g_stream));
    }
    CHECK_CUDA(cudaStreamSynchronize(g_stream));
    std::vector<float> t(reps);
    for (int i = 0; i < reps; i++)
        CHECK_CUDA(cudaEventElapsedTime(&t[i], ev[2 * i], ev[2 * i + 1]));
    for (auto &e : ev)
        cudaEventDestroy(e);
    std::sort(t.begin(), t.end());
    return t[reps / 2];
}

/* ---------------------------------------------------------------- peers (dlopen) */

struct peers {
    bool ok = false;
    decltype(&cublasLtCreate) ltCreate;
    decltype(&cublasLtMatmulDescCreate) descCreate;
    decltype(&cublasLtMatmulDescSetAttribute) descSet;
    decltype(&cublasLtMatmulDescDestroy) descDestroy;
    decltype(&cublasLtMatrixLayoutCreate) layoutCreate;
    decltype(&cublasLtMatrixLayoutDestroy) layoutDestroy;
    decltype(&cublasLtMatmulPreferenceCreate) prefCreate;
    decltype(&cublasLtMatmulPreferenceSetAttribute) prefSet;
    decltype(&cublasLtMatmulPreferenceDestroy) prefDestroy;
    decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
    decltype(&cublasLtMatmul) matmul;
    decltype(&cublasCreate_v2) create;
    decltype(&cublasSetStream_v2) setStream;
    cublasStatus_t (*gemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                             const void *, const void *, cudaDataType, int, const void *,
                             cudaDataType, int, const void *, void *, cudaDataType, int,
                             cublasComputeType_t, cublasGemmAlgo_t);
    cublasLtHandle_t lt = nullptr;
    cublasHandle_t blas = nullptr;
    void *ws = nullptr;
    size_t ws_size = 64 << 20;
};

static void *open_lib(const char *name)
{
    const char *dir = getenv("LLMQ_CUBLAS_DIR");
    if (dir != nullptr) {
        std::string p = std::string(dir) + "/" + name;
        if (void *h = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL))
            return h;
    }
    return dlopen(name, RTLD_NOW | RTLD_GLOBAL);
}

template <typename T> static bool sym(void *h, const char *name, T &out)
{
    void *p = dlsym(h, name);
    memcpy(&out, &p, sizeof p);
    return p != nullptr;
}

static peers load_peers()
{
    peers p;
    void *lt = open_lib("libcublasLt.so.13");
    void *bl = lt != nullptr ? open_lib("libcublas.so.13") : nullptr;
    if (lt == nullptr || bl == nullptr) {
        fprintf(stderr, "peers: cuBLAS not found (%s): set LLMQ_CUBLAS_DIR\n", dlerror());
        return p;
    }
    bool ok = sym(lt, "cublasLtCreate", p.ltCreate) &&
              sym(lt, "cublasLtMatmulDescCreate", p.descCreate) &&
              sym(lt, "cublasLtMatmulDescSetAttribute", p.descSet) &&
              sym(lt, "cublasLtMatmulDescDestroy", p.descDestroy) &&
              sym(lt, "cublasLtMatrixLayoutCreate", p.layoutCreate) &&
              sym(lt, "cublasLtMatrixLayoutDestroy", p.layoutDestroy) &&
              sym(lt, "cublasLtMatmulPreferenceCreate", p.prefCreate) &&
              sym(lt, "cublasLtMatmulPreferenceSetAttribute", p.prefSet) &&
              sym(lt, "cublasLtMatmulPreferenceDestroy", p.prefDestroy) &&
              sym(lt, "cublasLtMatmulAlgoGetHeuristic", p.heuristic) &&
              sym(lt, "cublasLtMatmul", p.matmul) && sym(bl, "cublasCreate_v2", p.create) &&
              sym(bl, "cublasSetStream_v2", p.setStream) && sym(bl, "cublasGemmEx", p.gemmEx);
    if (!ok || p.ltCreate(&p.lt) != CUBLAS_STATUS_SUCCESS ||
        p.create(&p.blas) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "peers: cuBLAS symbols or handles missing\n");
        return p;
    }
    p.setStream(p.blas, g_stream);
    CHECK_CUDA(cudaMalloc(&p.ws, p.ws_size));
    p.ok = true;
    return p;
}

/* cuBLASLt C[M, N] (row-major) = A[M, K] * B[N, K]^T with int8 inputs: in column-major terms
 * C^T = B * A^T, the "TN" form its integer kernels need. The best of its heuristics' algos. */
static double lt_int8(peers &p, int M, int N, int K, const int8_t *A, const int8_t *B, void *C,
                      bool s8_out)
{
    cublasLtMatmulDesc_t desc;
    const cudaDataType_t scale_t = s8_out ? CUDA_R_32F : CUDA_R_32I;
    p.descCreate(&desc, CUBLAS_COMPUTE_32I, scale_t);
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    p.descSet(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    p.descSet(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    cublasLtMatrixLayout_t la, lb, lc;
    p.layoutCreate(&la, CUDA_R_8I, K, N, K);
    p.layoutCreate(&lb, CUDA_R_8I, K, M, K);
    p.layoutCreate(&lc, s8_out ? CUDA_R_8I : CUDA_R_32I, N, M, N);
    cublasLtMatmulPreference_t pref;
    p.prefCreate(&pref);
    p.prefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &p.ws_size, sizeof p.ws_size);
    cublasLtMatmulHeuristicResult_t res[16];
    int n = 0;
    p.heuristic(p.lt, desc, la, lb, lc, lc, pref, 16, res, &n);
    const int32_t ai = 1, bi = 0;
    const float af = 0.01f, bf = 0.0f;
    const void *alpha = s8_out ? (const void *)&af : (const void *)&ai;
    const void *beta = s8_out ? (const void *)&bf : (const void *)&bi;
    double best = -1.0;
    for (int i = 0; i < n; i++) {
        auto run = [&] {
            p.matmul(p.lt, desc, alpha, B, la, A, lb, beta, C, lc, C, lc, &res[i].algo, p.ws,
                     p.ws_size, g_stream);
        };
        if (p.matmul(p.lt, desc, alpha, B, la, A, lb, beta, C, lc, C, lc, &res[i].algo, p.ws,
                     p.ws_size, g_stream) != CUBLAS_STATUS_SUCCESS)
            continue;
        const double t = time_ms(run, std::max(5, g_reps / 2));
        best = best < 0 || t < best ? t : best;
    }
    p.prefDestroy(pref);
    p.layoutDestroy(la);
    p.layoutDestroy(lb);
    p.layoutDestroy(lc);
    p.descDestroy(desc);
    CHECK_CUDA(cudaGetLastError());
    return best;
}

static double blas_fp16(peers &p, int M, int N, int K, const __half *A, const __half *B,
                        __half *C)
{
    const float alpha = 1.0f, beta = 0.0f;
    auto run = [&] {
        p.gemmEx(p.blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_16F, K, A,
                 CUDA_R_16F, K, &beta, C, CUDA_R_16F, N, CUBLAS_COMPUTE_32F,
                 CUBLAS_GEMM_DEFAULT);
    };
    return time_ms(run);
}

/* ---------------------------------------------------------------- llmq side */

static llmq_scheme *scheme(llmq_context *ctx, llmq_dtype dt, llmq_granularity g,
                           llmq_symmetry sym = LLMQ_SYMMETRY_SYMMETRIC, int64_t group = 0)
{
    llmq_scheme *s;
    CHECK_LLMQ(ctx, llmq_scheme_create(ctx, dt, &s));
    CHECK_LLMQ(ctx, llmq_scheme_set_granularity(s, g));
    CHECK_LLMQ(ctx, llmq_scheme_set_symmetry(s, sym));
    if (group > 0)
        CHECK_LLMQ(ctx, llmq_scheme_set_group_size(s, group));
    return s;
}

/* A device tensor over device memory p, with a scheme and random scales in [lo, hi]. */
static llmq_tensor *qwrap(llmq_context *ctx, llmq_dtype dt, int64_t rows, int64_t cols, void *p,
                          llmq_scheme *s, float lo, float hi, bool random_zp = false)
{
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *t;
    CHECK_LLMQ(ctx, llmq_tensor_wrap_device(ctx, dt, 2, shape, p, 0, &t));
    if (s == nullptr)
        return t;
    CHECK_LLMQ(ctx, llmq_tensor_set_scheme(ctx, t, s));
    llmq_tensor *sc = llmq_tensor_scale(t);
    const int64_t n = llmq_tensor_numel(sc);
    const int64_t ps[1] = {n};
    llmq_tensor *h, *hz;
    CHECK_LLMQ(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, ps, &h));
    float *v = (float *)llmq_tensor_data(h);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)((i * 7919) % 1000) / 1000.0f;
    llmq_tensor *hv;
    const int64_t pshape[2] = {llmq_tensor_dim(sc, 0), llmq_tensor_dim(sc, 1)};
    CHECK_LLMQ(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, llmq_tensor_ndim(sc), pshape, v, 0, &hv));
    CHECK_LLMQ(ctx, llmq_tensor_copy(ctx, hv, sc));
    if (random_zp) {
        llmq_tensor *zt = llmq_tensor_zero_point(t);
        CHECK_LLMQ(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 1, ps, &hz));
        int32_t *z = (int32_t *)llmq_tensor_data(hz);
        int32_t qmin, qmax;
        CHECK_LLMQ(ctx, llmq_scheme_range(s, &qmin, &qmax));
        for (int64_t i = 0; i < n; i++)
            z[i] = qmin + (int32_t)((i * 31) % (qmax - qmin + 1));
        llmq_tensor *zv;
        CHECK_LLMQ(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, llmq_tensor_ndim(zt), pshape, z, 0, &zv));
        CHECK_LLMQ(ctx, llmq_tensor_copy(ctx, zv, zt));
        llmq_tensor_destroy(zv);
        llmq_tensor_destroy(hz);
    }
    llmq_tensor_destroy(hv);
    llmq_tensor_destroy(h);
    return t;
}

static llmq_context *make_ctx(const char *arch)
{
    if (arch != nullptr)
        setenv("LLMQ_CUDA_ARCH", arch, 1);
    else
        unsetenv("LLMQ_CUDA_ARCH");
    llmq_context *ctx = nullptr;
    const llmq_status st = llmq_context_create(&ctx, "cuda");
    if (st != LLMQ_OK) {
        fprintf(stderr, "llmq cuda context: %s: %s\n", llmq_status_name(st),
                llmq_context_last_error(ctx));
        exit(77);
    }
    CHECK_LLMQ(ctx, llmq_context_set_stream(ctx, g_stream));
    unsetenv("LLMQ_CUDA_ARCH");
    return ctx;
}

static double tops(double m, double n, double k, double ms)
{
    return ms > 0 ? 2.0 * m * n * k / (ms * 1e-3) / 1e12 : 0.0;
}

static void fmt(char *buf, size_t size, double v, const char *f = "%.0f")
{
    if (v <= 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, f, v);
}

int main(int argc, char **argv)
{
    std::vector<std::vector<int>> shapes = {{1, 4096, 4096},    {16, 4096, 4096},
                                            {128, 4096, 4096},  {512, 4096, 4096},
                                            {2048, 4096, 4096}, {4096, 4096, 4096},
                                            {4096, 11008, 4096}, {8192, 8192, 8192}};
    bool do_gemm = true, do_gemv = true, no_peers = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            g_reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gemm-only") == 0)
            do_gemv = false;
        else if (strcmp(argv[i], "--gemv-only") == 0)
            do_gemm = false;
        else if (strcmp(argv[i], "--no-peers") == 0)
            no_peers = true;
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
            int m, n, k;
            if (sscanf(argv[++i], "%dx%dx%d", &m, &n, &k) != 3) {
                fprintf(stderr, "--shape MxNxK\n");
                return 2;
            }
            static bool first = true;
            if (first)
                shapes.clear();
            first = false;
            shapes.push_back({m, n, k});
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            if (strcmp(argv[++i], "cuda") != 0) {
                fprintf(stderr, "this benchmark measures --backend cuda only\n");
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: llmq-bench-cuda [--backend cuda] [--reps N] [--shape MxNxK ...] "
                    "[--gemm-only | --gemv-only] [--no-peers]\n");
            return 2;
        }
    }
    CHECK_CUDA(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    cudaDeviceProp prop;
    int dev = 0;
    CHECK_CUDA(cudaGetDevice(&dev));
    CHECK_CUDA(cudaGetDeviceProperties(&prop, dev));
    llmq_context *amp = make_ctx(nullptr), *tur = make_ctx("75");
    printf("device: %s (sm_%d%d, %d SMs, %.0f MB L2), llmq %s, contexts %s and %s, median of %d\n",
           prop.name, prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize / 1e6,
           llmq_version_string(), llmq_context_backend_name(amp), llmq_context_backend_name(tur),
           g_reps);
    peers P = no_peers ? peers() : load_peers();
    int32_t *sink;
    CHECK_CUDA(cudaMalloc(&sink, 64));

    /* ceilings */
    const int blocks = prop.multiProcessorCount * 8, threads = 256, iters = 4096;
    const double c32 = time_ms([&] { ceiling_m16n8k32<<<blocks, threads, 0, g_stream>>>(iters, sink); }, 5);
    const double c16 = time_ms([&] { ceiling_m8n8k16<<<blocks, threads, 0, g_stream>>>(iters, sink); }, 5);
    CHECK_CUDA(cudaGetLastError());
    const double warps = (double)blocks * threads / 32;
    const double ceil32 = warps * iters * 8 * (2.0 * 16 * 8 * 32) / (c32 * 1e-3) / 1e12;
    const double ceil16 = warps * iters * 8 * (2.0 * 8 * 8 * 16) / (c16 * 1e-3) / 1e12;
    printf("ceilings (register-only mma.sync loops): m16n8k32 s8 %.0f TOPS, m8n8k16 s8 %.0f TOPS\n",
           ceil32, ceil16);

    if (do_gemm) {
        printf("\n| M | N | K | AMPERE s32 TOPS (of ceiling) | TURING s32 TOPS (of ceiling) | cuBLASLt s8->s32 TOPS | AMPERE / cuBLASLt | AMPERE s8-out TOPS | cuBLASLt s8->s8 TOPS | f16-out (dequant+bias) TOPS | per-token quantize f16->s8 us | fused W8A8 f16->f16 ms | cuBLAS FP16 ms (TFLOPS) | fused / FP16 |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (const auto &sh : shapes) {
            const int M = sh[0], N = sh[1], K = sh[2];
            int8_t *A, *B;
            void *C;
            __half *Xh, *Wh, *Yh;
            float *bias;
            CHECK_CUDA(cudaMalloc(&A, (size_t)M * K));
            CHECK_CUDA(cudaMalloc(&B, (size_t)N * K));
            CHECK_CUDA(cudaMalloc(&C, (size_t)M * N * 4));
            CHECK_CUDA(cudaMalloc(&Xh, (size_t)M * K * 2));
            CHECK_CUDA(cudaMalloc(&Wh, (size_t)N * K * 2));
            CHECK_CUDA(cudaMalloc(&Yh, (size_t)M * N * 2));
            CHECK_CUDA(cudaMalloc(&bias, (size_t)N * 4));
            CHECK_CUDA(cudaMemsetAsync(bias, 0, (size_t)N * 4, g_stream));
            fill_s8<<<1024, 256, 0, g_stream>>>(A, (size_t)M * K, 1);
            fill_s8<<<1024, 256, 0, g_stream>>>(B, (size_t)N * K, 2);
            fill_f16<<<1024, 256, 0, g_stream>>>(Xh, (size_t)M * K, 3);
            fill_f16<<<1024, 256, 0, g_stream>>>(Wh, (size_t)N * K, 4);
            CHECK_CUDA(cudaStreamSynchronize(g_stream));
            double t_amp, t_tur, t_amp8, t_f16, t_fused, t_quant = 0;
            {
                llmq_context *ctxs[2] = {amp, tur};
                double *outs[2] = {&t_amp, &t_tur};
                for (int ci = 0; ci < 2; ci++) {
                    llmq_context *ctx = ctxs[ci];
                    llmq_scheme *sa = scheme(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_TOKEN);
                    llmq_scheme *sb = scheme(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_CHANNEL);
                    llmq_tensor *ta = qwrap(ctx, LLMQ_DTYPE_S8, M, K, A, sa, 0.01f, 0.02f);
                    llmq_tensor *tb = qwrap(ctx, LLMQ_DTYPE_S8, N, K, B, sb, 0.001f, 0.002f);
                    llmq_tensor *tc = qwrap(ctx, LLMQ_DTYPE_S32, M, N, C, nullptr, 0, 0);
                    *outs[ci] = time_ms([&] { CHECK_LLMQ(ctx, llmq_matmul(ctx, ta, tb, nullptr, tc)); });
                    if (ci == 0) {
                        llmq_scheme *sc = scheme(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_TENSOR);
                        llmq_tensor *c8 = qwrap(ctx, LLMQ_DTYPE_S8, M, N, C, sc, 0.5f, 0.5f);
                        t_amp8 = time_ms([&] { CHECK_LLMQ(ctx, llmq_matmul(ctx, ta, tb, nullptr, c8)); });
                        llmq_tensor *ch = qwrap(ctx, LLMQ_DTYPE_F16, M, N, Yh, nullptr, 0, 0);
                        const int64_t bs[1] = {N};
                        llmq_tensor *tbias;
                        CHECK_LLMQ(ctx, llmq_tensor_wrap_device(ctx, LLMQ_DTYPE_F32, 1, bs, bias, 0, &tbias));
                        t_f16 = time_ms([&] { CHECK_LLMQ(ctx, llmq_matmul(ctx, ta, tb, tbias, ch)); });
                        /* fused W8A8 linear: f16 x -> per-token s8 (scales computed) -> GEMM ->
                           dequant + bias -> f16 y: two kernels */
                        llmq_tensor *x = qwrap(ctx, LLMQ_DTYPE_F16, M, K, Xh, nullptr, 0, 0);
                        t_quant = time_ms([&] { CHECK_LLMQ(ctx, llmq_quantize_dynamic(ctx, x, ta)); });
                        t_fused = time_ms([&] {
                            CHECK_LLMQ(ctx, llmq_quantize_dynamic(ctx, x, ta));
                            CHECK_LLMQ(ctx, llmq_matmul(ctx, ta, tb, tbias, ch));
                        });
                        CHECK_LLMQ(ctx, llmq_context_sync(ctx));
                        llmq_tensor_destroy(x);
                        llmq_tensor_destroy(tbias);
                        llmq_tensor_destroy(ch);
                        llmq_tensor_destroy(c8);
                        llmq_scheme_destroy(sc);
                    }
                    CHECK_LLMQ(ctx, llmq_context_sync(ctx));
                    llmq_tensor_destroy(tc);
                    llmq_tensor_destroy(tb);
                    llmq_tensor_destroy(ta);
                    llmq_scheme_destroy(sb);
                    llmq_scheme_destroy(sa);
                }
            }
            double t_lt32 = -1, t_lt8 = -1, t_h = -1;
            if (P.ok) {
                t_lt32 = lt_int8(P, M, N, K, A, B, C, false);
                t_lt8 = lt_int8(P, M, N, K, A, B, C, true);
                t_h = blas_fp16(P, M, N, K, Xh, Wh, Yh);
            }
            char s1[64], s2[64], s3[32], s4[32], s5[32], s6[32], s7[32], s8[48], s9[32];
            snprintf(s1, sizeof s1, "%.0f (%.2f)", tops(M, N, K, t_amp), tops(M, N, K, t_amp) / ceil32);
            snprintf(s2, sizeof s2, "%.0f (%.2f)", tops(M, N, K, t_tur), tops(M, N, K, t_tur) / ceil16);
            fmt(s3, sizeof s3, tops(M, N, K, t_lt32));
            fmt(s4, sizeof s4, t_lt32 > 0 ? t_lt32 / t_amp : -1, "%.2f");
            fmt(s5, sizeof s5, tops(M, N, K, t_amp8));
            fmt(s6, sizeof s6, tops(M, N, K, t_lt8));
            fmt(s7, sizeof s7, tops(M, N, K, t_f16));
            if (t_h > 0)
                snprintf(s8, sizeof s8, "%.3f (%.0f)", t_h, tops(M, N, K, t_h));
            else
                snprintf(s8, sizeof s8, "-");
            fmt(s9, sizeof s9, t_h > 0 ? t_fused / t_h : -1, "%.2f");
            printf("| %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %.1f | %.3f | %s | %s |\n", M, N,
                   K, s1, s2, s3, s4, s5, s6, s7, t_quant * 1e3, t_fused, s8, s9);
            fflush(stdout);
            cudaFree(A);
            cudaFree(B);
            cudaFree(C);
            cudaFree(Xh);
            cudaFree(Wh);
            cudaFree(Yh);
            cudaFree(bias);
        }
    }

    if (do_gemv) {
        /* DRAM read bandwidth over 2 GB, far beyond L2 */
        const size_t bw_bytes = (size_t)2 << 30;
        uint4 *buf;
        CHECK_CUDA(cudaMalloc(&buf, bw_bytes));
        CHECK_CUDA(cudaMemsetAsync(buf, 1, bw_bytes, g_stream));
        const double t_bw = time_ms([&] {
            read_kernel<<<prop.multiProcessorCount * 16, 512, 0, g_stream>>>(buf, bw_bytes / 16, (uint32_t *)sink);
        }, 10);
        const double read_gbs = bw_bytes / (t_bw * 1e-3) / 1e9;
        cudaFree(buf);
        printf("\nDRAM read bandwidth (16-byte loads over 2 GB): %.0f GB/s\n", read_gbs);
        printf("\n| weights | format | M | time us | GB/s (weights + scales + zero points) | of DRAM read |\n");
        printf("| --- | --- | --- | --- | --- | --- |\n");
        struct gv {
            int n, k, m;
            llmq_dtype dt;
            llmq_symmetry sym;
            int64_t group;
            const char *name;
        };
        const gv cases[] = {
            {8192, 8192, 1, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, 128, "W4A16 u4 g128 + zp"},
            {8192, 8192, 1, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, 128, "W4A16 s4 g128"},
            {28672, 8192, 1, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, 128, "W4A16 u4 g128 + zp"},
            {28672, 8192, 1, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, 128, "W4A16 s4 g128"},
            {8192, 8192, 1, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, 0, "W8A16 s8 per-channel"},
            {8192, 8192, 16, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, 128, "W4A16 s4 g128"},
        };
        llmq_context *ctx = amp;
        for (const gv &c : cases) {
            const size_t wbytes = (size_t)c.n * c.k * llmq_dtype_bits(c.dt) / 8;
            const int copies = (int)std::max<size_t>(2, (size_t)(4 * prop.l2CacheSize) / wbytes + 1);
            std::vector<llmq_tensor *> ws(copies);
            std::vector<void *> mem(copies);
            llmq_scheme *s = scheme(ctx, c.dt, c.group ? LLMQ_GRANULARITY_PER_GROUP : LLMQ_GRANULARITY_PER_CHANNEL,
                                    c.sym, c.group);
            for (int i = 0; i < copies; i++) {
                CHECK_CUDA(cudaMalloc(&mem[i], wbytes));
                fill_s8<<<1024, 256, 0, g_stream>>>((int8_t *)mem[i], wbytes, 10 + i);
                ws[i] = qwrap(ctx, c.dt, c.n, c.k, mem[i], s, 0.001f, 0.01f,
                              c.sym == LLMQ_SYMMETRY_ASYMMETRIC);
            }
            __half *x, *y;
            CHECK_CUDA(cudaMalloc(&x, (size_t)c.m * c.k * 2));
            CHECK_CUDA(cudaMalloc(&y, (size_t)c.m * c.n * 2));
            fill_f16<<<256, 256, 0, g_stream>>>(x, (size_t)c.m * c.k, 5);
            llmq_tensor *tx = qwrap(ctx, LLMQ_DTYPE_F16, c.m, c.k, x, nullptr, 0, 0);
            llmq_tensor *ty = qwrap(ctx, LLMQ_DTYPE_F16, c.m, c.n, y, nullptr, 0, 0);
            int rot = 0;
            const double t = time_ms([&] {
                CHECK_LLMQ(ctx, llmq_matmul(ctx, tx, ws[rot], nullptr, ty));
                rot = (rot + 1) % copies;
            }, std::max(g_reps, 3 * copies));
            const size_t groups = c.group ? (size_t)c.n * (c.k / c.group) : (size_t)c.n;
            const size_t pbytes = groups * (c.sym == LLMQ_SYMMETRY_ASYMMETRIC ? 8 : 4);
            const double gbs = (wbytes + pbytes) / (t * 1e-3) / 1e9;
            printf("| %dx%d | %s | %d | %.1f | %.0f | %.2f |\n", c.n, c.k, c.name, c.m, t * 1e3, gbs,
                   gbs / read_gbs);
            fflush(stdout);
            CHECK_LLMQ(ctx, llmq_context_sync(ctx));
            llmq_tensor_destroy(tx);
            llmq_tensor_destroy(ty);
            cudaFree(x);
            cudaFree(y);
            for (int i = 0; i < copies; i++) {
                llmq_tensor_destroy(ws[i]);
                cudaFree(mem[i]);
            }
            llmq_scheme_destroy(s);
        }
    }
    llmq_context_destroy(tur);
    llmq_context_destroy(amp);
    return 0;
}
