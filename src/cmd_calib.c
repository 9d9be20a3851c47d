/* cmd_calib.c - calibration in the CLI: every observer (static PTQ) against dynamic
 * quantization on held-out batches (`llmq demo`, `llmq demo observers`), and observer
 * throughput (`llmq bench observe`). SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

/* A source of batches: fills x [rows, cols] with batch number `index`. */
typedef struct source {
    const char *name;
    void (*fill)(const struct source *s, float *x, int64_t rows, int64_t cols, uint64_t index);
    uint64_t seed;
} source;

typedef struct method {
    const char *name;
    int dynamic;
    llmq_observer observer;
    llmq_granularity granularity;
} method;

static const method methods[] = {
    {"static minmax", 0, LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_TENSOR},
    {"static moving_average", 0, LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_GRANULARITY_PER_TENSOR},
    {"static percentile 99.99", 0, LLMQ_OBSERVER_PERCENTILE, LLMQ_GRANULARITY_PER_TENSOR},
    {"static entropy", 0, LLMQ_OBSERVER_ENTROPY, LLMQ_GRANULARITY_PER_TENSOR},
    {"static histogram_l2", 0, LLMQ_OBSERVER_HISTOGRAM_L2, LLMQ_GRANULARITY_PER_TENSOR},
    {"static mse", 0, LLMQ_OBSERVER_MSE, LLMQ_GRANULARITY_PER_TENSOR},
    {"dynamic per-tensor", 1, LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_TENSOR},
    {"dynamic per-token", 1, LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_TOKEN},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* Calibration and held-out batches: 8 of each, [64, 512] values. */
enum { CALIB_BATCHES = 8, EVAL_BATCHES = 8, ROWS = 64, COLS = 512 };

/* Run one method at one dtype: calibrate on batches 0..7 (static), then quantize and
 * dequantize batches 1000..1007 and return the SQNR over all of them. */
static llmq_status run_method(llmq_context *ctx, const method *m, llmq_dtype dtype,
                              const source *src, int64_t rows, int64_t cols, float *x, float *back,
                              double *sqnr)
{
    const int64_t shape[2] = {rows, cols};
    llmq_scheme *s = NULL;
    llmq_quantizer *q = NULL;
    llmq_tensor *xt = NULL, *bt = NULL, *codes = NULL;
    llmq_status st = llmq_scheme_create(ctx, dtype, &s);
    if (st == LLMQ_OK) st = llmq_scheme_set_granularity(s, m->granularity);
    if (st == LLMQ_OK) st = llmq_scheme_set_axis(s, -1);
    if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, x, 0, &xt);
    if (st == LLMQ_OK) st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, back, 0, &bt);
    if (st == LLMQ_OK) st = llmq_tensor_create_quantized(ctx, s, 2, shape, &codes);
    if (st == LLMQ_OK && !m->dynamic) {
        st = llmq_quantizer_create(ctx, s, m->observer, &q);
        for (uint64_t b = 0; b < CALIB_BATCHES && st == LLMQ_OK; b++) {
            src->fill(src, x, rows, cols, b);
            st = llmq_quantizer_observe(ctx, q, xt);
        }
        if (st == LLMQ_OK) st = llmq_quantizer_finalize(ctx, q);
        if (st == LLMQ_OK) st = llmq_quantizer_apply(ctx, q, codes);
    }
    double signal = 0.0, noise = 0.0;
    for (uint64_t b = 0; b < EVAL_BATCHES && st == LLMQ_OK; b++) {
        src->fill(src, x, rows, cols, 1000 + b); /* held out: never observed */
        st = m->dynamic ? llmq_quantize_dynamic(ctx, xt, codes) : llmq_quantize(ctx, xt, codes);
        if (st == LLMQ_OK) st = llmq_dequantize(ctx, codes, bt);
        for (int64_t i = 0; st == LLMQ_OK && i < rows * cols; i++) {
            const double d = (double)x[i] - (double)back[i];
            signal += (double)x[i] * x[i];
            noise += d * d;
        }
    }
    *sqnr = noise > 0.0 ? 10.0 * log10(signal / noise) : INFINITY;
    llmq_tensor_destroy(codes);
    llmq_tensor_destroy(bt);
    llmq_tensor_destroy(xt);
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(s);
    return st;
}

static void fill_gaussian(const source *s, float *x, int64_t rows, int64_t cols, uint64_t index)
{
    cli_rng r;
    cli_rng_seed(&r, s->seed * 7919 + index);
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (float)cli_rng_normal(&r);
}

static void fill_laplace(const source *s, float *x, int64_t rows, int64_t cols, uint64_t index)
{
    cli_rng r;
    cli_rng_seed(&r, s->seed * 7919 + index);
    for (int64_t i = 0; i < rows * cols; i++) {
        const double u = cli_rng_uniform(&r) - 0.5;
        x[i] = (float)(-copysign(1.0, u) * log(1.0 - 2.0 * fabs(u)));
    }
}

/* Gaussian, with one value in a thousand 50 times larger. */
static void fill_outliers(const source *s, float *x, int64_t rows, int64_t cols, uint64_t index)
{
    cli_rng r;
    cli_rng_seed(&r, s->seed * 7919 + index);
    for (int64_t i = 0; i < rows * cols; i++) {
        x[i] = (float)cli_rng_normal(&r);
        if (cli_rng_uniform(&r) < 0.001) x[i] *= 50.0f;
    }
}

/* LLM-like activations: per-token magnitudes and 6 outlier channels shared by all batches. */
static void fill_llm(const source *s, float *x, int64_t rows, int64_t cols, uint64_t index)
{
    synth_activation_batch(x, rows, cols, 6, s->seed, s->seed * 7919 + index + 1);
}

/* Print one table row: the method's SQNR at 8 and 4 bits for each source. */
static llmq_status table_row(llmq_context *ctx, const method *m, const source *srcs, int nsrc,
                             int64_t rows, int64_t cols, float *x, float *back, int markdown)
{
    static const llmq_dtype dts[2] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_S4};
    printf(markdown ? "| %s |" : "%-28s", m->name);
    for (int k = 0; k < nsrc; k++) {
        for (int d = 0; d < 2; d++) {
            double sqnr;
            const llmq_status st = run_method(ctx, m, dts[d], &srcs[k], rows, cols, x, back, &sqnr);
            if (st != LLMQ_OK) return st;
            printf(markdown ? " %.2f |" : " %9.2f", sqnr);
        }
    }
    printf("\n");
    return LLMQ_OK;
}

int cli_demo_calibration(llmq_context *ctx, uint64_t seed)
{
    const int64_t rows = 64, cols = 1024;
    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    float *back = malloc((size_t)(rows * cols) * sizeof *back);
    if (x == NULL || back == NULL) {
        free(x);
        free(back);
        fprintf(stderr, "llmq: out of memory\n");
        return 1;
    }
    const source llm = {"llm", fill_llm, seed + 2};
    printf("\ncalibration: static PTQ (%d batches) vs dynamic, SQNR dB on %d held-out batches of "
           "%lldx%lld LLM-like activations (s8 / s4, symmetric)\n\n",
           CALIB_BATCHES, EVAL_BATCHES, (long long)rows, (long long)cols);
    printf("%-28s %9s %9s\n", "method", "8-bit", "4-bit");
    static const method per_channel[] = {
        {"static per-channel minmax", 0, LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_CHANNEL},
        {"static per-channel pct", 0, LLMQ_OBSERVER_PERCENTILE, LLMQ_GRANULARITY_PER_CHANNEL},
    };
    llmq_status st = LLMQ_OK;
    for (size_t i = 0; i < N_METHODS && st == LLMQ_OK; i++)
        st = table_row(ctx, &methods[i], &llm, 1, rows, cols, x, back, 0);
    for (size_t i = 0; i < 2 && st == LLMQ_OK; i++)
        st = table_row(ctx, &per_channel[i], &llm, 1, rows, cols, x, back, 0);
    free(x);
    free(back);
    return st == LLMQ_OK ? 0 : cli_fail(ctx, "calibration", st);
}

int llmq_cmd_demo_observers(int argc, char **argv)
{
    uint64_t seed = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: llmq demo observers [--seed N]\n");
            return 2;
        }
    }
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, NULL);
    float *x = malloc(ROWS * COLS * sizeof *x), *back = malloc(ROWS * COLS * sizeof *back);
    if (st != LLMQ_OK || x == NULL || back == NULL) {
        const int rc = st != LLMQ_OK ? cli_fail(ctx, "context", st) : 1;
        free(x);
        free(back);
        llmq_context_destroy(ctx);
        return rc;
    }
    const source srcs[3] = {{"gaussian", fill_gaussian, seed},
                            {"laplace", fill_laplace, seed + 1},
                            {"outliers", fill_outliers, seed + 2}};
    printf("SQNR (dB) on %d held-out %dx%d batches; static methods calibrated on %d other "
           "batches; per-tensor symmetric s8 (8-bit) and s4 (4-bit)\n\n",
           EVAL_BATCHES, ROWS, COLS, CALIB_BATCHES);
    printf("| method | Gaussian 8-bit | Gaussian 4-bit | Laplace 8-bit | Laplace 4-bit | "
           "outliers 8-bit | outliers 4-bit |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < N_METHODS && st == LLMQ_OK; i++)
        st = table_row(ctx, &methods[i], srcs, 3, ROWS, COLS, x, back, 1);
    free(x);
    free(back);
    const int rc = st == LLMQ_OK ? 0 : cli_fail(ctx, "observers", st);
    llmq_context_destroy(ctx);
    return rc;
}

/* ---- llmq bench observe ------------------------------------------------------------------ */

typedef struct observe_case {
    const char *name;
    llmq_observer observer;
    llmq_granularity granularity;
} observe_case;

static const observe_case observe_cases[] = {
    {"minmax", LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_TENSOR},
    {"minmax per-channel", LLMQ_OBSERVER_MINMAX, LLMQ_GRANULARITY_PER_CHANNEL},
    {"moving_average", LLMQ_OBSERVER_MOVING_AVERAGE, LLMQ_GRANULARITY_PER_TENSOR},
    {"percentile", LLMQ_OBSERVER_PERCENTILE, LLMQ_GRANULARITY_PER_TENSOR},
    {"entropy", LLMQ_OBSERVER_ENTROPY, LLMQ_GRANULARITY_PER_TENSOR},
    {"histogram_l2", LLMQ_OBSERVER_HISTOGRAM_L2, LLMQ_GRANULARITY_PER_TENSOR},
    {"mse", LLMQ_OBSERVER_MSE, LLMQ_GRANULARITY_PER_TENSOR},
};

/* Best of `reps` observes of x (after one untimed batch that sizes the statistics). */
static llmq_status time_observe(llmq_context *ctx, const observe_case *c, const llmq_tensor *x,
                                int reps, double *seconds)
{
    llmq_scheme *s = NULL;
    llmq_quantizer *q = NULL;
    llmq_status st = llmq_scheme_create(ctx, LLMQ_DTYPE_S8, &s);
    if (st == LLMQ_OK) st = llmq_scheme_set_granularity(s, c->granularity);
    if (st == LLMQ_OK) st = llmq_quantizer_create(ctx, s, c->observer, &q);
    if (st == LLMQ_OK) st = llmq_quantizer_observe(ctx, q, x);
    *seconds = 1e30;
    for (int i = 0; i < reps && st == LLMQ_OK; i++) {
        const double t0 = cli_now();
        st = llmq_quantizer_observe(ctx, q, x);
        const double dt = cli_now() - t0;
        *seconds = dt < *seconds ? dt : *seconds;
    }
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(s);
    return st;
}

int cli_bench_observe(int argc, char **argv)
{
    int64_t rows = 4096, cols = 4096;
    int reps = 5;
    if (cli_bench_options("observe", argc, argv, &rows, &cols, &reps) != 0) return 2;
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, NULL);
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *x = NULL;
    if (st == LLMQ_OK) st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &x);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, "setup", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    synth_weights(llmq_tensor_data(x), rows, cols, 7);
    const size_t bytes = (size_t)(rows * cols) * sizeof(float);
    const double mc_gbs = (double)bytes / cli_memcpy_seconds(bytes, reps) / 1e9;
    printf("llmq bench observe: %lldx%lld f32 per batch, best of %d, backend %s\n", (long long)rows,
           (long long)cols, reps, llmq_context_backend_name(ctx));
    printf("%-30s %10s %16s %10s\n", "observer", "GB/s", "peer", "ratio");
    for (size_t i = 0; i < sizeof observe_cases / sizeof observe_cases[0]; i++) {
        double s;
        st = time_observe(ctx, &observe_cases[i], x, reps, &s);
        if (st != LLMQ_OK) {
            cli_fail(ctx, observe_cases[i].name, st);
            break;
        }
        const double gbs = (double)bytes / s / 1e9;
        printf("%-30s %10.2f %9s %6.2f %10.2f\n", observe_cases[i].name, gbs, "memcpy", mc_gbs,
               gbs / mc_gbs);
    }
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
    return st == LLMQ_OK ? 0 : 1;
}
