/* qat_kernels.cu - fake quantization on the GPU: the forward, the straight-through backward and
 * the LSQ gradients of scale and zero point (llmq_fake_quantize*), with the CPU reference's
 * float32 operations (lib/cpu/kern_qat_scalar.c). SPDX-License-Identifier: MIT
 *
 * y and dx are bit-identical to the CPU. The LSQ terms are too, element by element; their sums
 * are taken in double in a fixed order that does not depend on the GPU or the launch: each
 * parameter's elements (its rows in order, each row's columns of the parameter in order) are
 * cut into chunks of CHUNK; one warp sums a chunk, lane l the elements l, l + 32, ..., then a
 * butterfly over the lanes; one warp per parameter then sums its chunks the same way. */
#include "cuda_internal.cuh"

namespace llmq_cuda {

namespace {

constexpr int THREADS = 256;
constexpr int WARPS = THREADS / 32;
constexpr int64_t CHUNK = 2048;

/* One parameter as the reference uses it. */
struct fq_param {
    float s, inv, lo, hi;
};

__device__ __forceinline__ fq_param load_param(const llmq_fq_job &j, int64_t p)
{
    int32_t zp = j.zero_point_default;
    if (j.zero_point != nullptr && j.zero_point_dtype == LLMQ_DTYPE_S32) {
        zp = static_cast<const int32_t *>(j.zero_point)[p];
    } else if (j.zero_point != nullptr) { /* learnable: clamp, then round half to even */
        float z = static_cast<const float *>(j.zero_point)[p];
        z = z >= (float)j.qmin ? z : (float)j.qmin;
        z = z <= (float)j.qmax ? z : (float)j.qmax;
        zp = __float2int_rn(z);
    }
    fq_param q;
    q.s = j.scale[p];
    q.inv = __fdiv_rn(1.0f, q.s);
    q.lo = (float)(j.qmin - zp);
    q.hi = (float)(j.qmax - zp);
    return q;
}

/* The reference's rq: round(clamp(v, lo - 1, hi + 1)). Ties to even by adding and subtracting
 * 1.5 * 2^23 as the CPU does (rintf gives -0 where the CPU gives +0, and y keeps the sign). */
__device__ __forceinline__ float fq_rq(const llmq_fq_job &j, const fq_param &q, float x,
                                       uint64_t index)
{
    float v = j.numerics == LLMQ_NUMERICS_ONNX ? __fdiv_rn(x, q.s) : __fmul_rn(x, q.inv);
    const float a = __fsub_rn(q.lo, 1.0f), b = __fadd_rn(q.hi, 1.0f);
    v = v >= a ? v : a; /* NaN lands on a; it is reported apart */
    v = v <= b ? v : b;
    if (j.rounding == LLMQ_ROUNDING_HALF_EVEN)
        return __fsub_rn(__fadd_rn(v, 0x1.8p23f), 0x1.8p23f);
    return round_mode(v, j.rounding, j.seed, index);
}

__device__ __forceinline__ const char *row_of(const void *base, size_t stride, int64_t r)
{
    return static_cast<const char *>(base) + (size_t)r * stride;
}

/* Element (r, c): y (forward) or dx (backward), and the LSQ terms when ts is not NULL. */
__device__ __forceinline__ void fq_element(const llmq_fq_job &j, bool backward, int64_t r,
                                           int64_t c, const fq_param &q, unsigned long long *nan,
                                           double *ts, double *tz)
{
    const float x = load_float(row_of(j.x, j.x_stride, r), j.x_dtype, c);
    const int64_t index = r * j.cols + c;
    if (x != x)
        report_nan(nan, index);
    const float rq = fq_rq(j, q, x, (uint64_t)index);
    char *orow = static_cast<char *>(j.out) + (size_t)r * j.out_stride;
    if (!backward) {
        float v = rq >= q.lo ? rq : q.lo;
        v = v <= q.hi ? v : q.hi;
        store_float(orow, j.out_dtype, c, __fmul_rn(v, q.s));
        return;
    }
    const float g = load_float(row_of(j.dy, j.dy_stride, r), j.dy_dtype, c);
    const bool inside = rq >= q.lo && rq <= q.hi;
    if (ts != nullptr) {
        const float gf = j.grad_factor;
        if (inside) {
            const float d = __fmul_rn(g, __fsub_rn(__fmul_rn(rq, q.s), x));
            *ts += (double)__fmul_rn(j.numerics == LLMQ_NUMERICS_ONNX ? __fdiv_rn(d, q.s)
                                                                      : __fmul_rn(d, q.inv),
                                     gf);
        } else {
            *ts += (double)__fmul_rn(__fmul_rn(g, rq < q.lo ? q.lo : q.hi), gf);
            *tz += (double)__fmul_rn(__fmul_rn(__fmul_rn(g, -1.0f), q.s), gf);
        }
    }
    store_float(orow, j.out_dtype, c, __fmul_rn(g, (float)inside)); /* g read first: dx may be dy */
}

/* Forward, or the backward without LSQ sums: one thread per element. */
__global__ void fq_elementwise_kernel(llmq_fq_job j, bool backward, unsigned long long *nan)
{
    const int64_t total = j.rows * j.cols, g = j.map.col_group;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / j.cols, c = e - r * j.cols;
        const fq_param q = load_param(j, param_row_base(j.map, r) + c / g);
        fq_element(j, backward, r, c, q, nan, nullptr, nullptr);
    }
}

/* The sum over a warp, the same in every lane and for every launch. */
__device__ __forceinline__ double warp_sum(double v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = __dadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Parameter p = k * ngroups + grp (map.row_mul is 0 with one k, or ngroups) owns the rows r
 * with (r / row_div) % row_mod == k, in order, and in each the columns of group grp. */
struct fq_layout {
    int64_t ngroups, chunks; /* groups per row; chunks per parameter (the largest count) */
};

__device__ __forceinline__ int64_t rows_of(const llmq_fq_job &j, int64_t k)
{
    const int64_t period = j.map.row_mod * j.map.row_div;
    const int64_t rest = j.rows % period - k * j.map.row_div;
    return j.rows / period * j.map.row_div +
           (rest < 0 ? 0 : rest < j.map.row_div ? rest : j.map.row_div);
}

/* Backward with LSQ sums: warp w takes chunk (w % chunks) of parameter (w / chunks), writes dx
 * of its elements and the chunk's two sums. */
__global__ void fq_lsq_chunks_kernel(llmq_fq_job j, fq_layout lay, double *partial,
                                     unsigned long long *nan)
{
    const int64_t warp = blockIdx.x * (int64_t)WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= j.nparams * lay.chunks)
        return;
    const int64_t p = warp / lay.chunks, chunk = warp % lay.chunks;
    const int64_t k = p / lay.ngroups, grp = p % lay.ngroups, g = j.map.col_group;
    const int64_t c0 = grp * g, glen = min(g, j.cols - c0);
    const int64_t count = rows_of(j, k) * glen;
    const int64_t e1 = min(count, (chunk + 1) * CHUNK);
    const fq_param q = load_param(j, p);
    double ss = 0.0, sz = 0.0;
    for (int64_t e = chunk * CHUNK + lane; e < e1; e += 32) {
        const int64_t i = e / glen, c = c0 + (e - i * glen);
        /* the i-th row of k */
        const int64_t r = (i / j.map.row_div * j.map.row_mod + k) * j.map.row_div +
                          i % j.map.row_div;
        fq_element(j, true, r, c, q, nan, &ss, &sz);
    }
    ss = warp_sum(ss);
    sz = warp_sum(sz);
    if (lane == 0) {
        partial[2 * warp] = ss;
        partial[2 * warp + 1] = sz;
    }
}

/* One warp per parameter: its chunks' sums, into dscale / dzero_point. */
__global__ void fq_lsq_finish_kernel(llmq_fq_job j, fq_layout lay, const double *partial)
{
    const int64_t p = blockIdx.x * (int64_t)WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (p >= j.nparams)
        return;
    double ss = 0.0, sz = 0.0;
    for (int64_t c = lane; c < lay.chunks; c += 32) {
        ss = __dadd_rn(ss, partial[2 * (p * lay.chunks + c)]);
        sz = __dadd_rn(sz, partial[2 * (p * lay.chunks + c) + 1]);
    }
    ss = warp_sum(ss);
    sz = warp_sum(sz);
    if (lane == 0 && j.dscale != nullptr)
        j.dscale[p] = (float)ss;
    if (lane == 0 && j.dzero_point != nullptr)
        j.dzero_point[p] = (float)sz;
}

int64_t blocks_for(int64_t work, int64_t per_block, int64_t cap)
{
    const int64_t b = (work + per_block - 1) / per_block;
    return b < 1 ? 1 : b < cap ? b : cap;
}

} /* namespace */

llmq_status launch_fake_quantize(state *s, const llmq_fq_job *job, bool backward)
{
    const bool lsq = backward && (job->dscale != nullptr || job->dzero_point != nullptr);
    if (job->rows == 0 || job->cols == 0) { /* no element: the sums are 0 */
        const size_t bytes = (size_t)job->nparams * sizeof(float);
        cudaError_t e = cudaSuccess;
        if (lsq && job->dscale != nullptr)
            e = cudaMemsetAsync(job->dscale, 0, bytes, s->stream);
        if (lsq && job->dzero_point != nullptr && e == cudaSuccess)
            e = cudaMemsetAsync(job->dzero_point, 0, bytes, s->stream);
        return e == cudaSuccess ? LLMQ_OK : fail(s, e, "cudaMemsetAsync");
    }
    if (!lsq) {
        const int64_t blocks = blocks_for(job->rows * job->cols, THREADS, (int64_t)s->sms * 16);
        fq_elementwise_kernel<<<(unsigned)blocks, THREADS, 0, s->stream>>>(*job, backward,
                                                                           s->nan_index);
        return check_launch(s, "fq_elementwise_kernel");
    }
    const llmq_param_map &m = job->map;
    fq_layout lay;
    lay.ngroups = (job->cols + m.col_group - 1) / m.col_group;
    if (m.row_mul != (m.row_mod == 1 ? m.row_mul : lay.ngroups) ||
        job->nparams != m.row_mod * lay.ngroups)
        return fail_msg(s, LLMQ_ERR_UNSUPPORTED, "map={%lld, %lld, %lld, %lld}: a parameter "
                        "layout the LSQ kernels do not know", (long long)m.row_div,
                        (long long)m.row_mod, (long long)m.row_mul, (long long)m.col_group);
    const int64_t max_rows = (job->rows + m.row_mod * m.row_div - 1) / (m.row_mod * m.row_div) *
                             m.row_div;
    const int64_t glen = m.col_group < job->cols ? m.col_group : job->cols;
    lay.chunks = (max_rows * glen + CHUNK - 1) / CHUNK;
    const int64_t items = job->nparams * lay.chunks;
    void *ws = nullptr;
    LLMQ_TRY(workspace(s, (size_t)items * 2 * sizeof(double), &ws));
    double *partial = static_cast<double *>(ws);
    fq_lsq_chunks_kernel<<<(unsigned)blocks_for(items, WARPS, INT32_MAX), THREADS, 0,
                           s->stream>>>(*job, lay, partial, s->nan_index);
    LLMQ_TRY(check_launch(s, "fq_lsq_chunks_kernel"));
    fq_lsq_finish_kernel<<<(unsigned)blocks_for(job->nparams, WARPS, INT32_MAX), THREADS, 0,
                           s->stream>>>(*job, lay, partial);
    return check_launch(s, "fq_lsq_finish_kernel");
}

} /* namespace llmq_cuda */
