/* cmd_bench.c - `llmq bench quantize`: quantize throughput next to memcpy bandwidth measured
 * in the same run (`llmq bench observe` is in cmd_calib.c); `llmq bench gemm`: the matmul
 * kernels on the shapes, 1 and 2 threads, weights hot, cold and streamed, next to the read
 * bandwidth measured in the same run; `llmq bench qat`: fake quantization on the context's CPU
 * tier against the scalar reference. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gemm.h"
#include "cli.h"
#include "synth.h"

typedef struct bench_case {
    const char *name;
    int dynamic;
    llmq_dtype src_dtype, dtype;
    llmq_granularity granularity;
    int64_t group;
} bench_case;

static const bench_case cases[] = {
    {"static per-channel f32->s8", 0, LLMQ_DTYPE_F32, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_CHANNEL, 0},
    {"dynamic per-token f32->s8", 1, LLMQ_DTYPE_F32, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_TOKEN, 0},
    {"dynamic g128 f32->s4", 1, LLMQ_DTYPE_F32, LLMQ_DTYPE_S4, LLMQ_GRANULARITY_PER_GROUP, 128},
    {"static per-channel f16->s8", 0, LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_CHANNEL, 0},
};

static llmq_status time_case(llmq_context *ctx, const bench_case *c, const llmq_tensor *f32,
                             int reps, double *seconds)
{
    const int64_t shape[2] = {llmq_tensor_dim(f32, 0), llmq_tensor_dim(f32, 1)};
    llmq_scheme *s = NULL;
    llmq_tensor *src = NULL, *q = NULL;
    llmq_status st = llmq_scheme_create(ctx, c->dtype, &s);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(s, c->granularity);
    if (st == LLMQ_OK && c->group)
        st = llmq_scheme_set_group_size(s, c->group);
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(ctx, s, 2, shape, &q);
    /* the f16 source is the f32 data dequantized-through-f16; values matter little here */
    if (st == LLMQ_OK && c->src_dtype != LLMQ_DTYPE_F32)
        st = llmq_tensor_create(ctx, c->src_dtype, 2, shape, &src);
    const llmq_tensor *in = src != NULL ? src : f32;
    if (st == LLMQ_OK) /* static cases use the parameters of one dynamic pass */
        st = llmq_quantize_dynamic(ctx, f32, q);
    *seconds = 1e30;
    for (int i = 0; i < reps && st == LLMQ_OK; i++) {
        const double t0 = cli_now();
        st = c->dynamic ? llmq_quantize_dynamic(ctx, in, q) : llmq_quantize(ctx, in, q);
        const double dt = cli_now() - t0;
        *seconds = dt < *seconds ? dt : *seconds;
    }
    llmq_tensor_destroy(src);
    llmq_tensor_destroy(q);
    llmq_scheme_destroy(s);
    return st;
}

static int bench_quantize(int argc, char **argv)
{
    int64_t rows = 4096, cols = 4096;
    int reps = 5;
    if (cli_bench_options("quantize", argc, argv, &rows, &cols, &reps) != 0)
        return 2;
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, NULL);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, "context", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *x = NULL;
    if ((st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &x)) != LLMQ_OK) {
        const int rc = cli_fail(ctx, "tensor", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    synth_weights(llmq_tensor_data(x), rows, cols, 7);
    const size_t bytes = (size_t)(rows * cols) * sizeof(float);
    const double mc = cli_memcpy_seconds(bytes, reps);
    const double mc_gbs = (double)bytes / mc / 1e9;
    printf("llmq bench quantize: %lldx%lld, best of %d, backend %s\n", (long long)rows,
           (long long)cols, reps, llmq_context_backend_name(ctx));
    printf("%-30s %10s %16s %10s\n", "case", "GB/s", "peer", "ratio");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double s;
        st = time_case(ctx, &cases[i], x, reps, &s);
        if (st != LLMQ_OK) {
            cli_fail(ctx, cases[i].name, st);
            break;
        }
        /* GB/s of f32-equivalent input, so the f16 row compares element rates */
        const double gbs = (double)bytes / s / 1e9;
        printf("%-30s %10.2f %9s %6.2f %10.2f\n", cases[i].name, gbs, "memcpy", mc_gbs,
               gbs / mc_gbs);
    }
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}

static int gemm_usage(void)
{
    fprintf(stderr, "usage: llmq bench gemm [--threads 1,2] [--reps N] [--quick]\n");
    return 2;
}

static int bench_gemm(int argc, char **argv)
{
    int threads[2] = {1, 2}, nthreads = 2, reps = 5, quick = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = sscanf(argv[++i], "%d,%d", &threads[0], &threads[1]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            return gemm_usage();
    }
    if (reps < 1 || nthreads < 1 || threads[0] < 1 || (nthreads > 1 && threads[1] < 1))
        return gemm_usage();
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, NULL);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, "context", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    printf("llmq bench gemm: backend %s, best of %d; W8A8 weights prepacked, W8A16p / W4A16p / "
           "W4A8p the weights prepacked\n",
           llmq_context_backend_name(ctx), reps);
    double bw[2];
    for (int t = 0; t < nthreads; t++) {
        bw[t] = bench_read_bandwidth(threads[t], reps);
        printf("read bandwidth, %d thread%s: %.1f GB/s\n", threads[t], threads[t] > 1 ? "s" : "",
               bw[t]);
    }
    printf("\n%-20s %-6s %2s %10s %9s %10s %10s %6s %10s %6s\n", "shape (M, N, K)", "kind", "T",
           "hot ms", "hot GOPS", "cold ms", "cold GB/s", "%bw", "strm ms", "%bw");
    const int nshapes = quick ? 3 : 6;
    for (int s = 0; s < nshapes && st == LLMQ_OK; s++) {
        const int64_t m = bench_shapes[s][0], n = bench_shapes[s][1], k = bench_shapes[s][2];
        for (int t = 0; t < nthreads && st == LLMQ_OK; t++) {
            if ((st = llmq_context_set_threads(ctx, threads[t])) != LLMQ_OK) {
                cli_fail(ctx, "threads", st);
                break;
            }
            /* the decode kernels (weight-only and W4A8) at the decode shapes */
            const int kinds = m <= 8 ? BENCH_KINDS : 1;
            for (int kind = 0; kind < kinds; kind++) {
                const double hot = bench_llmq(ctx, (bench_kind)kind, m, n, k, BENCH_HOT, reps);
                const double cold = bench_llmq(ctx, (bench_kind)kind, m, n, k, BENCH_COLD, reps);
                /* streamed weights (a decode step) at the decode shapes only */
                const double strm =
                    m <= 8 ? bench_llmq(ctx, (bench_kind)kind, m, n, k, BENCH_STREAM, reps) : 0.0;
                if (hot < 0 || cold < 0 || strm < 0) {
                    st = LLMQ_ERR_INTERNAL;
                    break;
                }
                char shape[32];
                snprintf(shape, sizeof shape, "(%lld, %lld, %lld)", (long long)m, (long long)n,
                         (long long)k);
                const double bytes = bench_weight_bytes((bench_kind)kind, n, k);
                const double gbs = bytes / cold / 1e9;
                printf("%-20s %-6s %2d %10.3f %9.1f %10.3f %10.2f %5.0f%%", shape,
                       bench_kind_name((bench_kind)kind), threads[t], hot * 1e3,
                       2.0 * (double)m * (double)n * (double)k / hot / 1e9, cold * 1e3, gbs,
                       100.0 * gbs / bw[t]);
                if (strm > 0)
                    printf(" %10.3f %5.0f%%\n", strm * 1e3, 100.0 * bytes / strm / 1e9 / bw[t]);
                else
                    printf(" %10s %6s\n", "-", "-");
            }
        }
    }
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}

/* ---- llmq bench qat: fake quantization on the context's CPU tier against the scalar one ---- */

typedef struct qat_case {
    const char *name;
    llmq_granularity granularity;
    int64_t group;
    int backward; /* 0 forward, 1 STE backward, 2 backward with LSQ dscale */
} qat_case;

static const qat_case qat_cases[] = {
    {"forward per-channel s4", LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
    {"forward g128 s4", LLMQ_GRANULARITY_PER_GROUP, 128, 0},
    {"backward STE per-channel s4", LLMQ_GRANULARITY_PER_CHANNEL, 0, 1},
    {"backward LSQ per-channel s4", LLMQ_GRANULARITY_PER_CHANNEL, 0, 2},
};

/* Best time of reps calls of one case on ctx; the parameters are those of one dynamic pass. */
static llmq_status time_qat(llmq_context *ctx, const qat_case *c, const llmq_tensor *x, int reps,
                            double *seconds)
{
    const int64_t shape[2] = {llmq_tensor_dim(x, 0), llmq_tensor_dim(x, 1)};
    llmq_scheme *s = NULL;
    llmq_tensor *q = NULL, *y = NULL, *ds = NULL;
    llmq_status st = llmq_scheme_create(ctx, LLMQ_DTYPE_S4, &s);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(s, c->granularity);
    if (st == LLMQ_OK && c->group)
        st = llmq_scheme_set_group_size(s, c->group);
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(ctx, s, 2, shape, &q);
    if (st == LLMQ_OK)
        st = llmq_quantize_dynamic(ctx, x, q);
    if (st == LLMQ_OK)
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &y);
    const llmq_tensor *scale = q != NULL ? llmq_tensor_scale(q) : NULL;
    int64_t pshape[2] = {0, 0};
    for (int32_t d = 0; scale != NULL && d < llmq_tensor_ndim(scale); d++)
        pshape[d] = llmq_tensor_dim(scale, d);
    if (st == LLMQ_OK && c->backward == 2)
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, llmq_tensor_ndim(scale), pshape, &ds);
    *seconds = 1e30;
    for (int i = 0; i < reps && st == LLMQ_OK; i++) {
        const double t0 = cli_now();
        /* x stands in for dy in the backward: only the time matters here */
        st = c->backward ? llmq_fake_quantize_backward(ctx, x, s, scale, NULL, x, 1.0f, y, ds, NULL)
                         : llmq_fake_quantize(ctx, x, s, scale, NULL, y);
        const double dt = cli_now() - t0;
        *seconds = dt < *seconds ? dt : *seconds;
    }
    llmq_tensor_destroy(ds);
    llmq_tensor_destroy(y);
    llmq_tensor_destroy(q);
    llmq_scheme_destroy(s);
    return st;
}

static int bench_qat(int argc, char **argv)
{
    int64_t rows = 4096, cols = 4096;
    int reps = 5;
    if (cli_bench_options("qat", argc, argv, &rows, &cols, &reps) != 0)
        return 2;
    llmq_context *ctx = NULL, *ref = NULL;
    llmq_context_options o;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st == LLMQ_OK)
        st = llmq_context_options_defaults(&o, sizeof o);
    if (st == LLMQ_OK) {
        o.backend = "cpu";
        o.max_isa = LLMQ_CPU_ISA_SCALAR;
        st = llmq_context_create_with_options(&ref, &o);
    }
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *x = NULL;
    if (st == LLMQ_OK)
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &x);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ref != NULL ? ref : ctx, "setup", st);
        llmq_context_destroy(ref);
        llmq_context_destroy(ctx);
        return rc;
    }
    synth_weights(llmq_tensor_data(x), rows, cols, 7);
    const size_t bytes = (size_t)(rows * cols) * sizeof(float);
    printf("llmq bench qat: %lldx%lld f32, best of %d, tier %s, peer cpu-scalar, one thread\n",
           (long long)rows, (long long)cols, reps, llmq_context_backend_name(ctx));
    printf("%-30s %10s %16s %10s\n", "case", "GB/s", "peer", "ratio");
    for (size_t i = 0; i < sizeof qat_cases / sizeof qat_cases[0] && st == LLMQ_OK; i++) {
        double t, tr;
        st = time_qat(ctx, &qat_cases[i], x, reps, &t);
        if (st == LLMQ_OK)
            st = time_qat(ref, &qat_cases[i], x, reps, &tr);
        if (st != LLMQ_OK) {
            cli_fail(ctx, qat_cases[i].name, st);
            break;
        }
        /* GB/s of x read, the same unit for both */
        const double gbs = (double)bytes / t / 1e9, peer = (double)bytes / tr / 1e9;
        printf("%-30s %10.2f %9s %6.2f %10.2f\n", qat_cases[i].name, gbs, "scalar", peer,
               gbs / peer);
    }
    llmq_tensor_destroy(x);
    llmq_context_destroy(ref);
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}

int llmq_cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "quantize") == 0)
        return bench_quantize(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "gemm") == 0 && llmq_cmd_bench_is_cuda(argc - 1, argv + 1))
        return llmq_cmd_bench_gemm_cuda(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "gemm") == 0)
        return bench_gemm(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "model") == 0)
        return llmq_cmd_bench_model(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "observe") == 0)
        return cli_bench_observe(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "qat") == 0)
        return bench_qat(argc - 1, argv + 1);
    fprintf(stderr, "usage: llmq bench quantize|gemm|observe|model|qat [options]\n");
    return 2;
}
