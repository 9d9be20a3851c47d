/* calib_dump.c - run one quantizer over batches read from a file and print what it chose, in
 * hex floats, for tests/calib/torch_parity.py.
 *
 * usage: calib_dump OBSERVER DTYPE SYMMETRY GRANULARITY AXIS PARAM_KEY PARAM_VALUE FILE [hist]
 *   FILE: records of int32 ndim, int64 shape[ndim], float32 values[prod(shape)]
 *   PARAM_KEY: an llmq_observer_param number, or -1 for none
 * prints one line per parameter set: lo hi scale zero_point; with "hist", first the
 * histogram of parameter set 0 (edges, then one count per line) before finalizing.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "llmq.h"

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    fprintf(stderr, "calib_dump: unknown name %s\n", s);
    exit(2);
}

static int fail(llmq_context *ctx, const char *what, llmq_status st)
{
    fprintf(stderr, "calib_dump: %s: %s: %s\n", what, llmq_status_name(st),
            llmq_context_last_error(ctx));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "usage: calib_dump OBSERVER DTYPE SYMMETRY GRANULARITY AXIS KEY VALUE "
                        "FILE [hist]\n");
        return 2;
    }
    static const char *const obs[] = {"minmax",  "moving_average", "percentile",
                                      "entropy", "histogram_l2",   "mse"};
    static const char *const dts[] = {"f32", "f16", "bf16", "s8", "u8", "s4", "u4", "s2", "u2"};
    static const char *const syms[] = {"symmetric", "symmetric_restricted", "asymmetric"};
    static const char *const grans[] = {"per_tensor", "per_channel", "per_group"};
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st != LLMQ_OK) return fail(ctx, "context", st);
    llmq_scheme *s = NULL;
    llmq_quantizer *q = NULL;
    if ((st = llmq_scheme_create(ctx, (llmq_dtype)pick(argv[2], dts, 9), &s)) != LLMQ_OK ||
        (st = llmq_scheme_set_symmetry(s, (llmq_symmetry)pick(argv[3], syms, 3))) != LLMQ_OK ||
        (st = llmq_scheme_set_granularity(s, (llmq_granularity)pick(argv[4], grans, 3))) !=
            LLMQ_OK ||
        (st = llmq_scheme_set_axis(s, atoi(argv[5]))) != LLMQ_OK ||
        (st = llmq_quantizer_create(ctx, s, (llmq_observer)pick(argv[1], obs, 6), &q)) != LLMQ_OK)
        return fail(ctx, "setup", st);
    if (atoi(argv[6]) >= 0 && (st = llmq_quantizer_set_param(q, (llmq_observer_param)atoi(argv[6]),
                                                             atof(argv[7]))) != LLMQ_OK)
        return fail(ctx, "param", st);
    FILE *f = fopen(argv[8], "rb");
    if (f == NULL) {
        perror(argv[8]);
        return 2;
    }
    int32_t ndim;
    while (fread(&ndim, sizeof ndim, 1, f) == 1) {
        int64_t shape[LLMQ_MAX_DIMS], n = 1;
        if (ndim < 1 || ndim > LLMQ_MAX_DIMS ||
            fread(shape, sizeof shape[0], (size_t)ndim, f) != (size_t)ndim)
            return 2;
        for (int32_t d = 0; d < ndim; d++)
            n *= shape[d];
        float *x = malloc((size_t)n * sizeof *x);
        if (x == NULL || fread(x, sizeof *x, (size_t)n, f) != (size_t)n) return 2;
        llmq_tensor *t = NULL;
        if ((st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, ndim, shape, x, 0, &t)) != LLMQ_OK ||
            (st = llmq_quantizer_observe(ctx, q, t)) != LLMQ_OK)
            return fail(ctx, "observe", st);
        llmq_tensor_destroy(t);
        free(x);
    }
    fclose(f);
    if (argc > 9 && strcmp(argv[9], "hist") == 0 && q->has_hist) {
        double *row = malloc((size_t)q->hist.bins * sizeof *row);
        llmq_hist_row(&q->hist, 0, row);
        printf("%a %a\n", (double)q->hist.lo[0], (double)q->hist.hi[0]);
        for (int64_t j = 0; j < q->hist.bins; j++)
            printf("%a\n", row[j]);
        free(row);
    }
    if ((st = llmq_quantizer_finalize(ctx, q)) != LLMQ_OK) return fail(ctx, "finalize", st);
    const float *r = llmq_tensor_data(llmq_quantizer_range(q));
    const float *sc = llmq_tensor_data(llmq_quantizer_scale(q));
    const int32_t *zp = llmq_tensor_data(llmq_quantizer_zero_point(q));
    for (int64_t p = 0; p < llmq_tensor_numel(llmq_quantizer_scale(q)); p++)
        printf("%a %a %a %d\n", (double)r[2 * p], (double)r[2 * p + 1], (double)sc[p], (int)zp[p]);
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
    return 0;
}
