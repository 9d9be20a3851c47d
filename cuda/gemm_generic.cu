/* gemm_generic.cu - every matmul of docs/gemm.md on the GPU, one thread per output, in the
 * reference's order of operations (lib/cpu/gemm_scalar.c): bit-identical to the CPU for every
 * operand combination, layout and epilogue. It serves what the tensor-core tiers and the GEMV
 * do not (KN weights, u8 or sub-byte B with integer A, grouped W4A8, ...); it is correct and
 * slow. SPDX-License-Identifier: MIT */
#include "cuda_internal.cuh"

namespace llmq_cuda {

namespace {

__device__ __forceinline__ int64_t param_at(const llmq_matmul_operand &o, int64_t row,
                                            int64_t col)
{
    return param_row_base(o.map, row) + col / o.map.col_group;
}

__device__ __forceinline__ int32_t code_at(const llmq_matmul_operand &o, int64_t row,
                                           int64_t col)
{
    return load_code(static_cast<const char *>(o.data) + (size_t)row * o.stride, o.dtype, col);
}

__device__ __forceinline__ float float_at(const llmq_matmul_operand &o, int64_t row, int64_t col)
{
    return load_float(static_cast<const char *>(o.data) + (size_t)row * o.stride, o.dtype, col);
}

__device__ __forceinline__ int32_t b_code(const llmq_matmul_job &j, int64_t n, int64_t k)
{
    return j.b_kn ? code_at(j.b, k, n) : code_at(j.b, n, k);
}

__device__ __forceinline__ int64_t b_param(const llmq_matmul_job &j, int64_t n, int64_t k)
{
    return j.b_kn ? param_at(j.b, k, n) : param_at(j.b, n, k);
}

__device__ __forceinline__ void store_c(const llmq_matmul_job &j, int64_t m, int64_t n, float v)
{
    store_float(static_cast<char *>(j.c_data) + (size_t)m * j.c.stride, j.c.dtype, n, v);
}

__device__ __forceinline__ void store_code(const llmq_matmul_job &j, int64_t m, int64_t n,
                                           int32_t q)
{
    (static_cast<uint8_t *>(j.c_data) + (size_t)m * j.c.stride)[n] = (uint8_t)q;
}

__device__ void matmul_exact(const llmq_matmul_job &j, int64_t m, int64_t n)
{
    const int64_t pa = param_at(j.a, m, 0), pb = b_param(j, n, 0);
    const int32_t za = j.a.zero_point[pa], zb = j.b.zero_point[pb];
    uint32_t acc = 0; /* wrapping: the exact result fits in int32 (checked by the caller) */
    for (int64_t k = 0; k < j.k; k++)
        acc += (uint32_t)((code_at(j.a, m, k) - za) * (b_code(j, n, k) - zb));
    const int32_t a = (int32_t)acc;
    if (j.c.dtype == LLMQ_DTYPE_S32) {
        reinterpret_cast<int32_t *>(static_cast<char *>(j.c_data) + (size_t)m * j.c.stride)[n] = a;
        return;
    }
    const float sa = j.a.scale[pa], sb = j.b.scale[pb];
    if (j.c.dtype == LLMQ_DTYPE_F32 || j.c.dtype == LLMQ_DTYPE_F16 ||
        j.c.dtype == LLMQ_DTYPE_BF16) {
        const float bias = j.bias != nullptr ? j.bias[n] : 0.0f;
        store_c(j, m, n, __fadd_rn(__fmul_rn(__fmul_rn((float)a, sa), sb), bias));
        return;
    }
    const int64_t pc = param_at(j.c, m, n);
    const float sc = j.c.scale[pc];
    const float v = j.requant == LLMQ_REQUANT_MULTIPLIER
                        ? __fmul_rn((float)a, __fdiv_rn(__fmul_rn(sa, sb), sc))
                        : __fdiv_rn(__fmul_rn(__fmul_rn((float)a, sa), sb), sc);
    store_code(j, m, n, requant(v, j.c.zero_point[pc], j.c.qmin, j.c.qmax));
}

__device__ void matmul_grouped(const llmq_matmul_job &j, int64_t m, int64_t n)
{
    float acc = 0.0f;
    int64_t k = 0;
    while (k < j.k) {
        const int64_t pa = param_at(j.a, m, k), pb = b_param(j, n, k);
        const int32_t za = j.a.zero_point[pa], zb = j.b.zero_point[pb];
        uint32_t part = 0;
        for (; k < j.k && param_at(j.a, m, k) == pa && b_param(j, n, k) == pb; k++)
            part += (uint32_t)((code_at(j.a, m, k) - za) * (b_code(j, n, k) - zb));
        acc = __fadd_rn(acc, __fmul_rn(__fmul_rn((float)(int32_t)part, j.a.scale[pa]),
                                       j.b.scale[pb]));
    }
    if (j.c.dtype == LLMQ_DTYPE_F32 || j.c.dtype == LLMQ_DTYPE_F16 ||
        j.c.dtype == LLMQ_DTYPE_BF16) {
        store_c(j, m, n, __fadd_rn(acc, j.bias != nullptr ? j.bias[n] : 0.0f));
        return;
    }
    const int64_t pc = param_at(j.c, m, n);
    store_code(j, m, n,
               requant(__fdiv_rn(acc, j.c.scale[pc]), j.c.zero_point[pc], j.c.qmin, j.c.qmax));
}

__device__ void matmul_weight_only(const llmq_matmul_job &j, int64_t m, int64_t n)
{
    float acc = 0.0f;
    int64_t k = 0;
    while (k < j.k) {
        const int64_t pb = b_param(j, n, k);
        const int32_t zb = j.b.zero_point[pb];
        float part = 0.0f;
        for (; k < j.k && b_param(j, n, k) == pb; k++)
            part = __fadd_rn(part, __fmul_rn(float_at(j.a, m, k), (float)(b_code(j, n, k) - zb)));
        acc = __fadd_rn(acc, __fmul_rn(part, j.b.scale[pb]));
    }
    store_c(j, m, n, __fadd_rn(acc, j.bias != nullptr ? j.bias[n] : 0.0f));
}

__global__ void matmul_generic_kernel(const llmq_matmul_job j)
{
    const bool float_a = j.a.dtype == LLMQ_DTYPE_F32 || j.a.dtype == LLMQ_DTYPE_F16 ||
                         j.a.dtype == LLMQ_DTYPE_BF16;
    const int64_t total = j.m * j.n;
    /* consecutive threads take consecutive n: B rows differ, A's row is shared */
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t m = i / j.n, n = i - m * j.n;
        if (float_a)
            matmul_weight_only(j, m, n);
        else if (j.a_uniform_k && j.b_uniform_k)
            matmul_exact(j, m, n);
        else
            matmul_grouped(j, m, n);
    }
}

} /* namespace */

llmq_status launch_matmul_generic(state *s, const llmq_matmul_job *job)
{
    const int64_t total = job->m * job->n;
    const int64_t blocks = (total + 127) / 128;
    const int64_t cap = (int64_t)s->sms * 32;
    matmul_generic_kernel<<<(unsigned)(blocks < cap ? blocks : cap), 128, 0, s->stream>>>(*job);
    return check_launch(s, "matmul_generic_kernel");
}

} /* namespace llmq_cuda */
