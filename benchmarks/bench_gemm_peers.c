/* bench_gemm_peers.c - llmq's matmul next to its peers, measured in one run: oneDNN's int8
 * matmul with output scales (the W8A8 f32-dequant product) and OpenBLAS sgemm (the same
 * product in float32). Built only with -Dbench_peers=enabled; the peers are linked into this
 * program, never into libllmq. SPDX-License-Identifier: MIT
 *
 *   build/benchmarks/bench_gemm_peers [--reps N] [--threads 1,2] [--quick]
 *
 * Every row: shape, threads, hot (weights in cache after the previous repetition), cold
 * (caches evicted before each repetition) or, at M = 1, strm (products back to back over
 * copies of the weights, 256 MiB in all: a decode step; time per product), llmq's time, the
 * peer's time and the ratio peer / llmq (> 1: llmq is faster). M = 1 rows also give the share
 * of the read bandwidth measured in the same run (the larger of the measurements at the start
 * and just before the rows: the host's bandwidth drifts). Timings are best of N. */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gemm.h"

static int reps = 5;

#define DNNL_TRY(x)                                                                            \
    do {                                                                                       \
        dnnl_status_t s_ = (x);                                                                \
        if (s_ != dnnl_success) {                                                              \
            fprintf(stderr, "%s: oneDNN status %d\n", #x, (int)s_);                            \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* oneDNN x8 x s8 -> f32 matmul, A [M, K] (s8, or u8 with `a_u8`), B [K, N] stored [N, K]
 * (dnnl_ba: the layout of llmq's unpacked weights), per-N output scales: best-of-reps seconds.
 * oneDNN 2.6 on an AVX2 host runs this as gemm:jit; with B in format `any` it picks the plain
 * layout and repacks B on every call (~50x slower), so B is given as [N, K] and reordered once
 * outside the timing. */
static double onednn_int8(int64_t m, int64_t n, int64_t k, bench_temp temp, int a_u8)
{
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    DNNL_TRY(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    dnnl_memory_desc_t a_md, b_md, b_any, c_md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&a_md, 2, (dnnl_dims_t){m, k}, a_u8 ? dnnl_u8 : dnnl_s8,
                                          dnnl_ab));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 2, (dnnl_dims_t){k, n}, dnnl_s8, dnnl_ba));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_any, 2, (dnnl_dims_t){k, n}, dnnl_s8, dnnl_ba));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&c_md, 2, (dnnl_dims_t){m, n}, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_TRY(dnnl_matmul_desc_init(&md, &a_md, &b_any, NULL, &c_md));
    dnnl_primitive_attr_t attr;
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    float *scales = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        scales[i] = 0.01f * 0.02f + (float)(i % 7) * 1e-6f;
    DNNL_TRY(dnnl_primitive_attr_set_output_scales(attr, n, 1 << 1, scales));
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_t prim;
    DNNL_TRY(dnnl_primitive_create(&prim, pd));
    /* BENCH_STREAM cycles through copies of the weights, as bench_llmq does */
    const int copies = temp == BENCH_STREAM ? bench_stream_copies((double)n * (double)k) : 1;
    dnnl_memory_t a_mem, b_user, b_mem[BENCH_STREAM_MAX_COPIES], c_mem;
    DNNL_TRY(dnnl_memory_create(&a_mem, &a_md, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_TRY(dnnl_memory_create(&b_user, &b_md, eng, DNNL_MEMORY_ALLOCATE));
    for (int i = 0; i < copies; i++)
        DNNL_TRY(dnnl_memory_create(&b_mem[i], wmd, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_TRY(dnnl_memory_create(&c_mem, &c_md, eng, DNNL_MEMORY_ALLOCATE));
    void *p;
    DNNL_TRY(dnnl_memory_get_data_handle(a_mem, &p));
    for (int64_t i = 0; i < m * k; i++)
        ((int8_t *)p)[i] = (int8_t)((i * 7919) % 255 - 127);
    DNNL_TRY(dnnl_memory_get_data_handle(b_user, &p));
    for (int64_t i = 0; i < n * k; i++)
        ((int8_t *)p)[i] = (int8_t)((i * 104729) % 255 - 127);
    /* weights reordered once into oneDNN's blocked layout: the counterpart of llmq's packing */
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &b_md, eng, wmd, eng, NULL));
    DNNL_TRY(dnnl_primitive_create(&reorder, rpd));
    for (int i = 0; i < copies; i++) {
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, b_user}, {DNNL_ARG_TO, b_mem[i]}};
        DNNL_TRY(dnnl_primitive_execute(reorder, stream, 2, rargs));
    }
    DNNL_TRY(dnnl_stream_wait(stream));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem[0]},
                               {DNNL_ARG_DST, c_mem}};
    DNNL_TRY(dnnl_primitive_execute(prim, stream, 3, args));
    DNNL_TRY(dnnl_stream_wait(stream));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        if (temp == BENCH_COLD)
            bench_evict();
        const double t0 = bench_now();
        for (int i = 0; i < copies; i++) {
            args[1].memory = b_mem[i];
            DNNL_TRY(dnnl_primitive_execute(prim, stream, 3, args));
        }
        DNNL_TRY(dnnl_stream_wait(stream));
        const double dt = (bench_now() - t0) / copies;
        best = dt < best ? dt : best;
    }
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    dnnl_memory_destroy(a_mem);
    dnnl_memory_destroy(b_user);
    for (int i = 0; i < copies; i++)
        dnnl_memory_destroy(b_mem[i]);
    dnnl_memory_destroy(c_mem);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(eng);
    free(scales);
    return best;
}

/* OpenBLAS sgemm C = A B^T, A [M, K], B [N, K], f32. */
static double openblas_sgemm(int64_t m, int64_t n, int64_t k, int cold)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(n * k));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++)
        a[i] = (float)(i % 17) * 0.1f;
    for (int64_t i = 0; i < n * k; i++)
        b[i] = (float)(i % 13) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k,
                b, (int)k, 0.0f, c, (int)n);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        if (cold)
            bench_evict();
        const double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a,
                    (int)k, b, (int)k, 0.0f, c, (int)n);
        const double dt = bench_now() - t0;
        best = dt < best ? dt : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static void set_threads(llmq_context *ctx, int t)
{
    if (llmq_context_set_threads(ctx, t) != LLMQ_OK) {
        fprintf(stderr, "llmq_context_set_threads: %s\n", llmq_context_last_error(ctx));
        exit(1);
    }
    omp_set_num_threads(t);        /* oneDNN (Debian's build uses OpenMP) */
    openblas_set_num_threads(t);
}

int main(int argc, char **argv)
{
    int threads[2] = {1, 2}, nthreads = 2, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            nthreads = sscanf(argv[++i], "%d,%d", &threads[0], &threads[1]);
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: bench_gemm_peers [--reps N] [--threads 1,2] [--quick]\n");
            return 2;
        }
    }
    if (reps < 1 || nthreads < 1) {
        fprintf(stderr, "bench_gemm_peers: reps and threads must be >= 1\n");
        return 2;
    }
    llmq_context *ctx = NULL;
    if (llmq_context_create(&ctx, "cpu") != LLMQ_OK) {
        fprintf(stderr, "llmq_context_create: %s\n", llmq_context_last_error(ctx));
        return 1;
    }
    const dnnl_version_t *dv = dnnl_version();
    printf("llmq %s (%s) vs oneDNN %d.%d.%d (int8 matmul, output scales) and OpenBLAS %s "
           "(sgemm); best of %d\n",
           llmq_version_string(), llmq_context_backend_name(ctx), dv->major, dv->minor,
           dv->patch, openblas_get_config(), reps);
    double bw[2];
    for (int t = 0; t < nthreads; t++) {
        bw[t] = bench_read_bandwidth(threads[t], reps);
        printf("read bandwidth, %d thread%s: %.1f GB/s\n", threads[t], threads[t] > 1 ? "s" : "",
               bw[t]);
    }
    printf("\n%-22s %-6s %2s %-4s %10s %10s %7s %10s %7s %8s\n", "shape (M, N, K)", "kind", "T",
           "temp", "llmq ms", "oneDNN ms", "ratio", "sgemm ms", "ratio", "%bw");
    const int nshapes = quick ? 3 : 6;
    for (int s = 0; s < nshapes; s++) {
        const int64_t m = bench_shapes[s][0], n = bench_shapes[s][1], k = bench_shapes[s][2];
        for (int t = 0; t < nthreads; t++) {
            set_threads(ctx, threads[t]);
            if (m == 1) { /* the bandwidth again, next to the rows that use it: the larger */
                const double now = bench_read_bandwidth(threads[t], reps);
                bw[t] = now > bw[t] ? now : bw[t];
                printf("read bandwidth, %d thread%s, now: %.1f GB/s (%%bw of %.1f)\n", threads[t],
                       threads[t] > 1 ? "s" : "", now, bw[t]);
            }
            /* streamed weights (a decode step) only where the weights dominate: M = 1 */
            const int temps = m == 1 ? 3 : 2;
            for (int tp = 0; tp < temps; tp++) {
                const bench_temp temp = (bench_temp)tp;
                char shape[32];
                snprintf(shape, sizeof shape, "(%lld, %lld, %lld)", (long long)m, (long long)n,
                         (long long)k);
                const double ours = bench_llmq(ctx, BENCH_W8A8, m, n, k, temp, reps);
                /* oneDNN's faster source type on this host: u8 (its native gemm_u8s8s32) or
                 * s8 (with its compensation pass) */
                const double d_s8 = onednn_int8(m, n, k, temp, 0);
                const double d_u8 = onednn_int8(m, n, k, temp, 1);
                const double dnn = d_s8 < d_u8 ? d_s8 : d_u8;
                const double sg = m >= 8 ? openblas_sgemm(m, n, k, temp == BENCH_COLD) : -1.0;
                printf("%-22s %-6s %2d %-4s %10.3f %10.3f %7.2f", shape, "W8A8", threads[t],
                       bench_temp_name(temp), ours * 1e3, dnn * 1e3, dnn / ours);
                if (sg > 0)
                    printf(" %10.3f %7.2f", sg * 1e3, sg / ours);
                else
                    printf(" %10s %7s", "-", "-");
                if (m == 1 && temp != BENCH_HOT)
                    printf(" %7.0f%%",
                           100.0 * bench_weight_bytes(BENCH_W8A8, n, k) / ours / 1e9 / bw[t]);
                printf("\n");
                /* the decode kernels against oneDNN's int8 time */
                if (m == 1 && temp != BENCH_HOT) {
                    for (int kind = BENCH_W8A16; kind < BENCH_KINDS; kind++) {
                        const double o = bench_llmq(ctx, (bench_kind)kind, m, n, k, temp, reps);
                        printf("%-22s %-6s %2d %-4s %10.3f %10.3f %7.2f %10s %7s %7.0f%%\n", shape,
                               bench_kind_name((bench_kind)kind), threads[t],
                               bench_temp_name(temp), o * 1e3, dnn * 1e3, dnn / o, "-", "-",
                               100.0 * bench_weight_bytes((bench_kind)kind, n, k) / o / 1e9 / bw[t]);
                    }
                }
            }
        }
    }
    llmq_context_destroy(ctx);
    return 0;
}
