/* llmq/context.h - the context: backend choice, allocator, last error.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CONTEXT_H
#define LLMQ_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/export.h"
#include "llmq/status.h"

/** @file
 * The context: backend choice, CPU tier, allocator and the message of the last failure. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Opaque context. It holds the chosen backend, the CPU features detected at creation, the
 * allocator and the message of the last failure. llmq has no global mutable state: everything
 * lives here. One thread at a time may use a context (and the objects made from it); it may
 * move between threads. Different contexts are independent.
 */
typedef struct llmq_context llmq_context;

/** CPU instruction-set tiers, lowest first. A cap can only lower the tier actually used. */
typedef enum llmq_cpu_isa {
    LLMQ_CPU_ISA_DEFAULT = 0, /**< the best the host and the build allow (or LLMQ_CPU_ISA) */
    LLMQ_CPU_ISA_SCALAR = 1,  /**< portable C, the reference every other tier is tested against */
    LLMQ_CPU_ISA_AVX2 = 2,    /**< AVX2 + FMA + F16C */
    LLMQ_CPU_ISA_AVXVNNI = 3, /**< AVX2 + AVX-VNNI (256-bit VPDPBUSD) */
    LLMQ_CPU_ISA_AVX512 = 4,  /**< AVX-512 F/BW/VL + VNNI */
    LLMQ_CPU_ISA_FORCE32_ = 0x7fffffff
} llmq_cpu_isa;

/**
 * Custom allocator. All llmq host memory of a context comes from it. `alloc` returns memory
 * aligned to `alignment` (a power of two, at most 4096) or NULL; `free` accepts NULL.
 */
typedef struct llmq_allocator {
    /** returns `size` bytes aligned to `alignment`, or NULL; called from the thread using
     *  the context */
    void *(*alloc)(void *user, size_t size, size_t alignment);
    /** frees a block that `alloc` returned; NULL is passed through and must be accepted */
    void (*free)(void *user, void *ptr);
    void *user; /**< passed back to both callbacks */
} llmq_allocator;

/**
 * Context creation options, versioned by `size` (docs/ABI.md): fill it with
 * llmq_context_options_defaults(), then change fields. Fields are only ever appended.
 */
typedef struct llmq_context_options {
    size_t size;             /**< sizeof(llmq_context_options) as compiled by the caller */
    const char *backend;     /**< "auto", "cpu" or "cuda"; NULL: $LLMQ_BACKEND, else "auto" */
    llmq_cpu_isa max_isa;    /**< cap on the CPU tier; DEFAULT: $LLMQ_CPU_ISA, else none */
    uint32_t reserved0_;     /**< must be zero */
    llmq_allocator allocator; /**< all NULL: the C library's aligned allocation */
    uint64_t reserved[4];    /**< must be zero */
} llmq_context_options;

/**
 * Fill @p options with the defaults for a caller compiled against a struct of @p size bytes.
 * @param options  written; must not be NULL
 * @param size     sizeof(llmq_context_options) as the caller sees it
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (options NULL), LLMQ_ERR_ABI (size too small/large)
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_options_defaults(llmq_context_options *options,
                                                                   size_t size);

/**
 * Create a context on the named backend: "auto" (CUDA when the module and a device are
 * present, else CPU), "cpu" or "cuda". NULL means $LLMQ_BACKEND, else "auto".
 *
 * "cuda" loads the module libllmq-cuda.so ($LLMQ_CUDA_MODULE, else the file next to libllmq,
 * else the loader's search path) and uses the CUDA device current on the calling thread. The
 * kernel tier is min(device capability, $LLMQ_CUDA_ARCH) (docs/cuda.md). A CUDA context
 * still runs every operation whose tensors are all in host memory on its CPU tier.
 *
 * Like sqlite3_open, a context is returned even when creation fails for a reason other than
 * memory, so that llmq_context_last_error() can explain the failure; destroy it either way.
 * @param out      receives the context; NULL only on LLMQ_ERR_OUT_OF_MEMORY (or when out is NULL)
 * @param backend  borrowed for the call
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (unknown backend name, bad $LLMQ_CPU_ISA);
 *         LLMQ_ERR_UNSUPPORTED ("cuda" without the module, a driver or a device: the
 *         message says which and the paths tried);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_create(llmq_context **out, const char *backend);

/**
 * Create a context from options (see llmq_context_create() for the failure rule).
 * @param out      receives the context
 * @param options  borrowed for the call; NULL means defaults
 * @return as llmq_context_create(), plus LLMQ_ERR_ABI for a bad `size` or non-zero reserved
 *         fields, and LLMQ_ERR_INVALID_ARG for a half-set allocator or an unknown max_isa
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_create_with_options(
    llmq_context **out, const llmq_context_options *options);

/**
 * Destroy a context. Destroy every object made from it first. NULL is a no-op.
 * @param ctx  the context, also one whose creation failed; invalid afterwards
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API void llmq_context_destroy(llmq_context *ctx);

/**
 * Message of the last failure on @p ctx, "function: argument=value: reason", or "" if no call
 * has failed. Success leaves it untouched. Valid until the next failing call or destroy.
 * @param ctx  any context, also one whose creation failed; NULL allowed
 * @return never NULL ("" for a NULL context); owned by the context
 * @thread ctx-exclusive
 * @since 0.1
 */
LLMQ_API const char *llmq_context_last_error(const llmq_context *ctx);

/**
 * Name of the backend chosen at creation, e.g. "cpu-scalar", "cpu-avx512", "cuda-sm90" or,
 * with the kernel tier capped below the device's by $LLMQ_CUDA_ARCH, "cuda-sm90-turing".
 * @param ctx  the context; NULL allowed
 * @return a string that lives as long as the context; "" for NULL
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API const char *llmq_context_backend_name(const llmq_context *ctx);

/**
 * Order the context's device work on the caller's CUDA stream. llmq launches everything on
 * this stream and never synchronizes the device; results are visible to the host after
 * llmq_context_sync() or a synchronization of the stream.
 * @param ctx     the context
 * @param stream  a cudaStream_t, passed as void *; NULL means the default stream. Borrowed:
 *                it must outlive its use by the context.
 * @return LLMQ_OK; LLMQ_ERR_UNSUPPORTED (a non-NULL stream on a context without a device
 *         backend); LLMQ_ERR_BACKEND (a CUDA error, named in the message)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_set_stream(llmq_context *ctx, void *stream);

/**
 * Wait until the device work queued by this context is done (a synchronization of its stream,
 * never of the whole device). On a CPU context it returns LLMQ_OK at once.
 *
 * Device kernels do not wait for the host, so a NaN met by a quantize call on device tensors
 * (which returns LLMQ_OK) is reported here as LLMQ_ERR_NON_FINITE with its flat index.
 * @param ctx  the context
 * @return LLMQ_OK; LLMQ_ERR_NON_FINITE (a NaN was quantized since the last sync; the outputs
 *         of that call are undefined); LLMQ_ERR_BACKEND (a CUDA error, named in the message)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_sync(llmq_context *ctx);

/**
 * CPU tier the context's kernels use: the lowest of what the host supports, what this build
 * has kernels for, and the cap.
 * @param ctx  the context; NULL allowed
 * @return the tier; LLMQ_CPU_ISA_DEFAULT for NULL
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API llmq_cpu_isa llmq_context_cpu_isa(const llmq_context *ctx);

/**
 * Best CPU tier the host supports (CPUID and the OS-enabled register state), whatever the build.
 * @param ctx  the context (the tier was detected when it was created); NULL allowed
 * @return the tier; LLMQ_CPU_ISA_DEFAULT for NULL
 * @thread read-shared
 * @since 0.1
 */
LLMQ_API llmq_cpu_isa llmq_context_host_isa(const llmq_context *ctx);

/** Most threads a context may use (llmq_context_set_threads()). */
#define LLMQ_MAX_THREADS 1024

/**
 * Run this context's kernels (matmul, quantize) on @p threads threads: the calling thread
 * plus threads - 1 pthreads that the context starts now and joins in llmq_context_destroy().
 * A new context uses 1 thread (no pool). Work is split over output channels or rows, never
 * along the reduction dimension, so results are bit-identical for every thread count.
 * After each parallel call the threads spin for up to 0.3 ms before they sleep, so that the
 * next call (the next layer of a decode step) need not wake them (tens of microseconds).
 * @param ctx      the context
 * @param threads  1..LLMQ_MAX_THREADS, or 0 for one thread per online CPU
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL context, threads out of range);
 *         LLMQ_ERR_OUT_OF_MEMORY (memory or pthread_create failed; the previous thread count
 *         stays in force)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_context_set_threads(llmq_context *ctx, int32_t threads);

/**
 * Threads this context's kernels use (llmq_context_set_threads()).
 * @param ctx  NULL allowed
 * @return 1 or more; 0 for NULL or a context whose creation failed
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API int32_t llmq_context_threads(const llmq_context *ctx);

/**
 * Name of a CPU tier: "default", "scalar", "avx2", "avxvnni", "avx512".
 * @param isa  any value
 * @return a static string; "unknown" for other values
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API const char *llmq_cpu_isa_name(llmq_cpu_isa isa);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_CONTEXT_H */
