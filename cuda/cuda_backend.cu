/* cuda_backend.cu - the CUDA backend's vtable: device and tier choice, device memory,
 * streams, deferred NaN reports, and the dispatch of quantize, fake-quant and matmul jobs to the
 * kernels.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.cuh"

extern "C" {
#include "backend/cuda_module.h"
}

#ifndef LLMQ_CUDA_ARCHS
#define LLMQ_CUDA_ARCHS "unknown"
#endif

namespace llmq_cuda {

llmq_status fail(state *s, cudaError_t e, const char *what)
{
    snprintf(s->msg, sizeof s->msg, "backend=%s: %s: %s: %s", s->name, what, cudaGetErrorName(e),
             cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? LLMQ_ERR_OUT_OF_MEMORY : LLMQ_ERR_BACKEND;
}

llmq_status fail_msg(state *s, llmq_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    return st;
}

llmq_status check_launch(state *s, const char *kernel)
{
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? LLMQ_OK : fail(s, e, kernel);
}

llmq_status workspace(state *s, size_t bytes, void **ptr)
{
    if (bytes > s->ws_size) {
        /* grow by half again, so that a warm-up over growing shapes allocates a few times */
        size_t want = bytes + bytes / 2;
        cudaError_t e = cudaSuccess;
        if (s->ws != NULL)
            e = s->pools ? cudaFreeAsync(s->ws, s->stream) : cudaFree(s->ws);
        s->ws = NULL;
        s->ws_size = 0;
        if (e != cudaSuccess)
            return fail(s, e, "workspace free");
        e = s->pools ? cudaMallocAsync(&s->ws, want, s->stream) : cudaMalloc(&s->ws, want);
        if (e != cudaSuccess) {
            s->ws = NULL;
            return fail(s, e, "workspace allocation");
        }
        s->ws_size = want;
    }
    *ptr = s->ws;
    return LLMQ_OK;
}

/* The runtime's current device is per host thread, and a context may move between threads. */
static llmq_status enter(state *s)
{
    int d = -1;
    cudaError_t e = cudaGetDevice(&d);
    if (e == cudaSuccess && d != s->device)
        e = cudaSetDevice(s->device);
    return e == cudaSuccess ? LLMQ_OK : fail(s, e, "cudaSetDevice");
}

__global__ void probe_kernel(int *p)
{
    if (p != nullptr)
        *p = 0;
}

/* $LLMQ_CUDA_ARCH: a cap on the kernel tier, as a compute capability (75, 80, 86, 89, 90). */
static bool parse_arch(const char *v, int *cap)
{
    char *end = nullptr;
    const long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || x < 75 || x > 1000)
        return false;
    *cap = (int)x;
    return true;
}

static llmq_status be_open(llmq_backend *be, char *msg, size_t msg_size)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        if (e == cudaErrorInsufficientDriver)
            snprintf(msg, msg_size, "CUDA driver too old for this module (built with CUDA %d.%d): "
                     "%s", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, cudaGetErrorName(e));
        else
            snprintf(msg, msg_size, "no CUDA device: %s: %s",
                     e != cudaSuccess ? cudaGetErrorName(e) : "cudaSuccess",
                     e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        cudaGetLastError();
        return LLMQ_ERR_UNSUPPORTED;
    }
    int dev = 0;
    cudaDeviceProp prop;
    if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) {
        snprintf(msg, msg_size, "device query: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
        return LLMQ_ERR_UNSUPPORTED;
    }
    const int cc = prop.major * 10 + prop.minor;
    if (cc < 75) {
        snprintf(msg, msg_size, "device %d (%s) is sm_%d: llmq's CUDA kernels need sm_75 (Turing) "
                 "or newer", dev, prop.name, cc);
        return LLMQ_ERR_UNSUPPORTED;
    }
    int cap = cc;
    const char *env = getenv("LLMQ_CUDA_ARCH");
    if (env != nullptr && env[0] != '\0' && !parse_arch(env, &cap)) {
        snprintf(msg, msg_size, "LLMQ_CUDA_ARCH=%s: expected a compute capability of 75 or more "
                 "(75 Turing, 80 Ampere, ...)", env);
        return LLMQ_ERR_INVALID_ARG;
    }
    const int eff = cap < cc ? cap : cc;
    /* the fatbin must run here: a kernel without an image for this device fails to query */
    cudaFuncAttributes attr;
    if ((e = cudaFuncGetAttributes(&attr, probe_kernel)) != cudaSuccess) {
        snprintf(msg, msg_size, "device %d (%s, sm_%d): %s: %s (the module was built for sm %s)",
                 dev, prop.name, cc, cudaGetErrorName(e), cudaGetErrorString(e), LLMQ_CUDA_ARCHS);
        cudaGetLastError();
        return LLMQ_ERR_UNSUPPORTED;
    }
    state *s = static_cast<state *>(calloc(1, sizeof(state)));
    if (s == nullptr) {
        snprintf(msg, msg_size, "out of host memory");
        return LLMQ_ERR_OUT_OF_MEMORY;
    }
    s->device = dev;
    s->cc = cc;
    s->tier = eff >= 80 ? TIER_AMPERE : TIER_TURING;
    s->sms = prop.multiProcessorCount;
    s->smem_optin = (int)prop.sharedMemPerBlockOptin;
    s->smem_per_sm = (int)prop.sharedMemPerMultiprocessor;
    int pools = 0;
    cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev);
    s->pools = pools != 0;
    s->stream = nullptr;
    const int natural = cc >= 80 ? TIER_AMPERE : TIER_TURING;
    if (s->tier != natural)
        snprintf(s->name, sizeof s->name, "cuda-sm%d-%s", cc, s->tier == TIER_TURING ? "turing"
                                                                                  : "ampere");
    else
        snprintf(s->name, sizeof s->name, "cuda-sm%d", cc);
    if ((e = cudaMalloc(&s->nan_index, sizeof *s->nan_index)) != cudaSuccess ||
        (e = cudaMemset(s->nan_index, 0xff, sizeof *s->nan_index)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess) { /* creation only, never in ops */
        snprintf(msg, msg_size, "device %d (%s): %s: %s", dev, prop.name, cudaGetErrorName(e),
                 cudaGetErrorString(e));
        cudaFree(s->nan_index);
        free(s);
        return e == cudaErrorMemoryAllocation ? LLMQ_ERR_OUT_OF_MEMORY : LLMQ_ERR_UNSUPPORTED;
    }
    be->state = s;
    return LLMQ_OK;
}

static void be_close(llmq_backend *be)
{
    state *s = get(be);
    if (s == nullptr)
        return;
    enter(s);
    if (s->ws != nullptr)
        cudaFree(s->ws);
    cudaFree(s->nan_index);
    free(s);
    be->state = nullptr;
}

static const char *instance_name(const llmq_backend *be)
{
    return get(be)->name;
}

static const char *message(const llmq_backend *be)
{
    return get(be)->msg;
}

static llmq_status mem_alloc(llmq_backend *be, size_t bytes, void **ptr)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    *ptr = nullptr;
    const cudaError_t e = cudaMalloc(ptr, bytes > 0 ? bytes : 1);
    if (e != cudaSuccess) {
        *ptr = nullptr;
        cudaGetLastError();
        char what[64];
        snprintf(what, sizeof what, "cudaMalloc(%zu bytes)", bytes);
        return fail(s, e, what);
    }
    return LLMQ_OK;
}

static void mem_free(llmq_backend *be, void *ptr)
{
    state *s = get(be);
    if (enter(s) == LLMQ_OK)
        cudaFree(ptr);
}

static llmq_status mem_copy(llmq_backend *be, void *dst, size_t dst_stride, const void *src,
                            size_t src_stride, size_t row_bytes, int64_t rows,
                            llmq_copy_kind kind)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    cudaError_t e;
    if (rows == 1 || (dst_stride == row_bytes && src_stride == row_bytes))
        e = cudaMemcpyAsync(dst, src, row_bytes * (size_t)rows, cudaMemcpyDefault, s->stream);
    else
        e = cudaMemcpy2DAsync(dst, dst_stride, src, src_stride, row_bytes, (size_t)rows,
                              cudaMemcpyDefault, s->stream);
    if (e == cudaSuccess && kind != LLMQ_COPY_DEVICE_TO_DEVICE)
        e = cudaStreamSynchronize(s->stream); /* the host side may be used on return */
    return e == cudaSuccess ? LLMQ_OK : fail(s, e, "copy");
}

static llmq_status mem_set(llmq_backend *be, void *dst, int value, size_t bytes)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    const cudaError_t e = cudaMemsetAsync(dst, value, bytes, s->stream);
    return e == cudaSuccess ? LLMQ_OK : fail(s, e, "cudaMemsetAsync");
}

static llmq_status set_stream(llmq_backend *be, void *stream)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    cudaStream_t next = static_cast<cudaStream_t>(stream);
    if (next == s->stream)
        return LLMQ_OK;
    /* the workspace and the NaN slot were last used on the old stream */
    const cudaError_t e = cudaStreamSynchronize(s->stream);
    if (e != cudaSuccess)
        return fail(s, e, "cudaStreamSynchronize (old stream)");
    s->stream = next;
    return LLMQ_OK;
}

static llmq_status be_sync(llmq_backend *be, int64_t *bad_index)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    cudaError_t e = cudaStreamSynchronize(s->stream);
    if (e != cudaSuccess)
        return fail(s, e, "cudaStreamSynchronize");
    if (!s->nan_pending)
        return LLMQ_OK;
    unsigned long long idx = ~0ull;
    e = cudaMemcpyAsync(&idx, s->nan_index, sizeof idx, cudaMemcpyDeviceToHost, s->stream);
    if (e == cudaSuccess)
        e = cudaMemsetAsync(s->nan_index, 0xff, sizeof idx, s->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(s->stream);
    if (e != cudaSuccess)
        return fail(s, e, "NaN report");
    s->nan_pending = false;
    if (idx != ~0ull) {
        *bad_index = (int64_t)idx;
        return LLMQ_ERR_NON_FINITE;
    }
    return LLMQ_OK;
}

static llmq_status quantize(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index)
{
    (void)bad_index; /* NaN: deferred to sync */
    state *s = get(be);
    LLMQ_TRY(enter(s));
    s->nan_pending = true;
    return launch_quantize(s, job);
}

static llmq_status dequantize(llmq_backend *be, const llmq_quant_job *job)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    return launch_dequantize(s, job);
}

static llmq_status range(llmq_backend *be, const llmq_quant_job *job, float *lo, float *hi,
                         int64_t *bad_index)
{
    (void)bad_index;
    state *s = get(be);
    LLMQ_TRY(enter(s));
    s->nan_pending = true;
    return launch_range(s, job, lo, hi);
}

static llmq_status quantize_dynamic(llmq_backend *be, const llmq_quant_job *job,
                                    llmq_symmetry symmetry, int64_t nparams, float *scale,
                                    int32_t *zero_point)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    s->nan_pending = true;
    return launch_quantize_dynamic(s, job, symmetry, nparams, scale, zero_point);
}

static llmq_status fake_quantize(llmq_backend *be, const llmq_fq_job *job, int64_t *bad_index)
{
    (void)bad_index; /* NaN: deferred to sync */
    state *s = get(be);
    LLMQ_TRY(enter(s));
    s->nan_pending = true;
    return launch_fake_quantize(s, job, false);
}

static llmq_status fake_quantize_backward(llmq_backend *be, const llmq_fq_job *job,
                                          int64_t *bad_index)
{
    (void)bad_index;
    state *s = get(be);
    LLMQ_TRY(enter(s));
    s->nan_pending = true;
    return launch_fake_quantize(s, job, true);
}

static llmq_status matmul(llmq_backend *be, const llmq_matmul_job *job)
{
    state *s = get(be);
    LLMQ_TRY(enter(s));
    bool taken = false;
    const bool float_a = job->a.dtype == LLMQ_DTYPE_F32 || job->a.dtype == LLMQ_DTYPE_F16 ||
                         job->a.dtype == LLMQ_DTYPE_BF16;
    if (float_a)
        LLMQ_TRY(launch_gemv(s, job, &taken));
    else
        LLMQ_TRY(launch_gemm_tiered(s, job, &taken));
    return taken ? LLMQ_OK : launch_matmul_generic(s, job);
}

} /* namespace llmq_cuda */

namespace {

llmq_backend_ops make_ops()
{
    llmq_backend_ops o;
    memset(&o, 0, sizeof o);
    o.version = LLMQ_BACKEND_OPS_VERSION;
    o.name = "cuda";
    o.isa = LLMQ_CPU_ISA_DEFAULT;
    o.quantize = llmq_cuda::quantize;
    o.dequantize = llmq_cuda::dequantize;
    o.range = llmq_cuda::range;
    o.matmul = llmq_cuda::matmul;
    o.fake_quantize = llmq_cuda::fake_quantize;
    o.fake_quantize_backward = llmq_cuda::fake_quantize_backward;
    o.device = true;
    o.open = llmq_cuda::be_open;
    o.close = llmq_cuda::be_close;
    o.instance_name = llmq_cuda::instance_name;
    o.message = llmq_cuda::message;
    o.mem_alloc = llmq_cuda::mem_alloc;
    o.mem_free = llmq_cuda::mem_free;
    o.mem_copy = llmq_cuda::mem_copy;
    o.mem_set = llmq_cuda::mem_set;
    o.set_stream = llmq_cuda::set_stream;
    o.sync = llmq_cuda::be_sync;
    o.quantize_dynamic = llmq_cuda::quantize_dynamic;
    return o;
}

const llmq_backend_ops cuda_ops = make_ops();

const llmq_cuda_module_info module_info = {
    LLMQ_CUDA_MODULE_ABI,
    LLMQ_BACKEND_OPS_VERSION,
    (uint32_t)sizeof(llmq_backend_ops),
    (uint32_t)sizeof(llmq_quant_job),
    (uint32_t)sizeof(llmq_matmul_job),
    (uint32_t)sizeof(llmq_fq_job),
    &cuda_ops,
    LLMQ_CUDA_ARCHS,
};

} /* namespace */

extern "C" __attribute__((visibility("default"))) const llmq_cuda_module_info *
llmq_cuda_module_entry(void)
{
    return &module_info;
}
