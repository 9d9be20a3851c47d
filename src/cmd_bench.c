/* cmd_bench.c - `llmq bench quantize`: quantize throughput next to memcpy bandwidth measured
 * in the same run (`llmq bench observe` is in cmd_calib.c). SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int llmq_cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "quantize") == 0)
        return bench_quantize(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "gemm") == 0 && llmq_cmd_bench_is_cuda(argc - 1, argv + 1))
        return llmq_cmd_bench_gemm_cuda(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "model") == 0)
        return llmq_cmd_bench_model(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "observe") == 0)
        return cli_bench_observe(argc - 1, argv + 1);
    fprintf(stderr, "usage: llmq bench quantize|observe|model [options]\n");
    return 2;
}
