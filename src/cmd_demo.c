/* cmd_demo.c - `llmq demo`: quantize LLM-like weights and activations under the common schemes
 * and print accuracy and speed. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

typedef struct demo_scheme {
    const char *name;
    int activation; /* 0: weights, 1: activations */
    llmq_dtype dtype;
    llmq_symmetry symmetry;
    llmq_granularity granularity;
    int64_t group;
} demo_scheme;

static const demo_scheme schemes[] = {
    {"W8 per-tensor sym", 0, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0},
    {"W8 per-channel sym", 0, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0},
    {"W4 g128 sym", 0, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 128},
    {"W4 g128 asym", 0, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 128},
    {"W4 g32 asym", 0, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32},
    {"W2 g32 asym", 0, LLMQ_DTYPE_U2, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32},
    {"A8 per-token dynamic sym", 1, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, 0},
    {"A8 per-token dynamic asym", 1, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, 0},
    {"A8 per-tensor dynamic sym", 1, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0},
};

/* Bits per value with the parameters counted: a float32 scale per parameter set, plus a zero
 * point at the code width for asymmetric schemes. */
static double effective_bits(const demo_scheme *d, int64_t rows, int64_t cols)
{
    const double bits = llmq_dtype_bits(d->dtype);
    const double per_param = 32.0 + (d->symmetry == LLMQ_SYMMETRY_ASYMMETRIC ? bits : 0.0);
    double params = 1.0;
    switch (d->granularity) {
    case LLMQ_GRANULARITY_PER_CHANNEL:
    case LLMQ_GRANULARITY_PER_TOKEN: params = (double)rows; break;
    case LLMQ_GRANULARITY_PER_GROUP: params = (double)rows * (double)((cols + d->group - 1) / d->group); break;
    default: break;
    }
    return bits + params * per_param / ((double)rows * (double)cols);
}

static llmq_status run_scheme(llmq_context *ctx, const demo_scheme *d, llmq_tensor *src,
                              llmq_tensor *back, double *seconds)
{
    llmq_scheme *s = NULL;
    llmq_tensor *q = NULL;
    llmq_status st = llmq_scheme_create(ctx, d->dtype, &s);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_symmetry(s, d->symmetry);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(s, d->granularity);
    if (st == LLMQ_OK && d->group > 0)
        st = llmq_scheme_set_group_size(s, d->group);
    const int64_t shape[2] = {llmq_tensor_dim(src, 0), llmq_tensor_dim(src, 1)};
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(ctx, s, 2, shape, &q);
    *seconds = 1e30;
    for (int rep = 0; rep < 3 && st == LLMQ_OK; rep++) {
        const double t0 = cli_now();
        st = llmq_quantize_dynamic(ctx, src, q);
        const double dt = cli_now() - t0;
        *seconds = dt < *seconds ? dt : *seconds;
    }
    if (st == LLMQ_OK)
        st = llmq_dequantize(ctx, q, back);
    llmq_tensor_destroy(q);
    llmq_scheme_destroy(s);
    return st;
}

int llmq_cmd_demo(int argc, char **argv)
{
    uint64_t seed = 1;
    int64_t rows = 1024, cols = 4096, tokens = 256;
    if (argc >= 1 && strcmp(argv[0], "observers") == 0)
        return llmq_cmd_demo_observers(argc - 1, argv + 1);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: llmq demo [observers] [--seed N]\n");
            return 2;
        }
    }
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, NULL);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, "context", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    const int64_t wshape[2] = {rows, cols}, xshape[2] = {tokens, cols};
    llmq_tensor *w = NULL, *x = NULL, *wback = NULL, *xback = NULL;
    if ((st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, wshape, &w)) != LLMQ_OK ||
        (st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, xshape, &x)) != LLMQ_OK ||
        (st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, wshape, &wback)) != LLMQ_OK ||
        (st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, xshape, &xback)) != LLMQ_OK) {
        cli_fail(ctx, "tensors", st);
        goto done;
    }
    synth_weights(llmq_tensor_data(w), rows, cols, seed);
    synth_activations(llmq_tensor_data(x), tokens, cols, 6, seed + 1);

    printf("llmq demo: weights %lldx%lld (Student-t, per-row magnitudes), activations "
           "%lldx%lld (6 outlier channels x20-x100); backend %s\n",
           (long long)rows, (long long)cols, (long long)tokens, (long long)cols,
           llmq_context_backend_name(ctx));
    printf("bits/value counts a f32 scale per parameter set (+ zero point for asym); "
           "throughput = dynamic quantize, GB/s of f32 input\n\n");
    printf("%-28s %9s %10s %12s %10s\n", "scheme", "bits/val", "SQNR dB", "max |err|",
           "GB/s");
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        const demo_scheme *d = &schemes[i];
        llmq_tensor *src = d->activation ? x : w, *back = d->activation ? xback : wback;
        double seconds, max_err;
        st = run_scheme(ctx, d, src, back, &seconds);
        if (st != LLMQ_OK) {
            cli_fail(ctx, d->name, st);
            goto done;
        }
        const int64_t n = llmq_tensor_numel(src);
        const double sqnr = synth_sqnr_db(llmq_tensor_data(src), llmq_tensor_data(back), n,
                                          &max_err);
        printf("%-28s %9.3f %10.2f %12.3g %10.2f\n", d->name,
               effective_bits(d, llmq_tensor_dim(src, 0), cols), sqnr, max_err,
               (double)n * 4.0 / seconds / 1e9);
    }
    if (cli_demo_calibration(ctx, seed) != 0)
        st = LLMQ_ERR_INTERNAL; /* reported already */
done:
    llmq_tensor_destroy(w);
    llmq_tensor_destroy(x);
    llmq_tensor_destroy(wback);
    llmq_tensor_destroy(xback);
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}
