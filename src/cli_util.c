/* cli_util.c - error reporting, timing and synthetic-data generation for the CLI.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_fail(llmq_context *ctx, const char *what, llmq_status st)
{
    fprintf(stderr, "llmq: %s: %s: %s\n", what, llmq_status_name(st),
            llmq_context_last_error(ctx));
    return 1;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of `reps` timings of memcpy over n bytes (fresh buffers, so it is a memory test). */
double cli_memcpy_seconds(size_t n, int reps)
{
    char *a = malloc(n), *b = malloc(n);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return -1.0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        const double t0 = cli_now();
        memcpy(b, a, n);
        const double dt = cli_now() - t0;
        best = dt < best ? dt : best;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a);
    free(b);
    return best;
}

int cli_bench_options(const char *name, int argc, char **argv, int64_t *rows, int64_t *cols,
                      int *reps)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            *rows = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cols") == 0 && i + 1 < argc)
            *cols = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            *reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: llmq bench %s [--rows R] [--cols C] [--reps N]\n", name);
            return 2;
        }
    }
    if (*rows < 1 || *cols < 1 || *reps < 1) {
        fprintf(stderr, "llmq bench %s: rows, cols and reps must be >= 1\n", name);
        return 2;
    }
    return 0;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cli_rng_seed(cli_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) { /* SplitMix64 to spread the seed */
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        r->s[i] = z ^ (z >> 31);
    }
}

static uint64_t next(cli_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cli_rng_uniform(cli_rng *r)
{
    return (double)(next(r) >> 11) * 0x1p-53;
}

double cli_rng_normal(cli_rng *r)
{
    /* Box-Muller; 1 - u keeps the logarithm finite */
    const double u = 1.0 - cli_rng_uniform(r), v = cli_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

double cli_rng_student_t(cli_rng *r, double dof)
{
    /* t = Z / sqrt(chi2_k / k); chi2 from k normals (dof is small and integral here) */
    double chi2 = 0.0;
    const int k = (int)dof;
    for (int i = 0; i < k; i++) {
        const double z = cli_rng_normal(r);
        chi2 += z * z;
    }
    return cli_rng_normal(r) / sqrt(chi2 / (double)k);
}

const char *cli_scheme_text(const llmq_scheme *s, char *buf, size_t size)
{
    static const char *const gran[] = {"tensor", "channel", "group", "token"};
    if (s == NULL)
        return "copy";
    const llmq_granularity g = llmq_scheme_granularity(s);
    char extra[32] = "";
    if (g == LLMQ_GRANULARITY_PER_GROUP)
        snprintf(extra, sizeof extra, "%lld", (long long)llmq_scheme_group_size(s));
    snprintf(buf, size, "%s %s per-%s%s", llmq_dtype_name(llmq_scheme_dtype(s)),
             llmq_scheme_symmetry(s) == LLMQ_SYMMETRY_ASYMMETRIC ? "asym" : "sym", gran[g],
             extra);
    return buf;
}
