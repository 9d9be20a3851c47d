/* bench_gemm.c - llmq's side of the matmul benchmark (public API only).
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_gemm.h"

const int64_t bench_shapes[6][3] = {
    {1, 4096, 4096}, {8, 4096, 4096}, {32, 4096, 4096},
    {128, 4096, 4096}, {512, 4096, 4096}, {1024, 4096, 11008},
};

static const char *const kind_names[BENCH_KINDS] = {"W8A8", "W8A16", "W4A16", "W4A8", "W4A16p",
                                                     "W4A8p", "W8A16p"};

const char *bench_kind_name(bench_kind kind)
{
    return (unsigned)kind < BENCH_KINDS ? kind_names[kind] : "?";
}

double bench_weight_bytes(bench_kind kind, int64_t n, int64_t k)
{
    return kind == BENCH_W8A8 || kind == BENCH_W8A16 || kind == BENCH_W8A16P
               ? (double)n * (double)k
               : (double)n * (double)k / 2;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define EVICT_BYTES ((size_t)256 << 20)

static volatile uint64_t evict_sink; /* keeps the eviction reads */

void bench_evict(void)
{
    /* read (not memset: glibc writes large blocks with non-temporal stores, which leave the
     * cache alone) a buffer 8x the last-level cache */
    static uint64_t *buf; /* benchmark-only, single-threaded */
    if (buf == NULL) {
        buf = malloc(EVICT_BYTES);
        if (buf == NULL)
            return;
        memset(buf, 1, EVICT_BYTES);
    }
    uint64_t s = 0;
    for (size_t i = 0; i < EVICT_BYTES / 8; i += 8) /* one load per 64-byte line */
        s += buf[i];
    evict_sink = s;
}

typedef struct reader {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} reader;

/* Sum r->n words as 4 interleaved sequential streams: one stream leaves bandwidth unused on
 * the build machine (8.9 GB/s against 10.9 with 4, the most of 1, 2, 4, 8, 16 streams). */
static void *read_part(void *arg)
{
    reader *r = arg;
    const size_t q = r->n / 4;
    const uint64_t *p0 = r->p, *p1 = p0 + q, *p2 = p1 + q, *p3 = p2 + q;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= q; i += 4) {
        s0 += p0[i] + p0[i + 1] + p0[i + 2] + p0[i + 3];
        s1 += p1[i] + p1[i + 1] + p1[i + 2] + p1[i + 3];
        s2 += p2[i] + p2[i + 1] + p2[i + 2] + p2[i + 3];
        s3 += p3[i] + p3[i + 1] + p3[i + 2] + p3[i + 3];
    }
    r->sum = s0 + s1 + s2 + s3;
    return NULL;
}

double bench_read_bandwidth(int threads, int reps)
{
    const size_t bytes = (size_t)512 << 20, words = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (buf == NULL || threads < 1 || threads > 64) {
        free(buf);
        return -1.0;
    }
    for (size_t i = 0; i < words; i++)
        buf[i] = i;
    double best = 1e30;
    uint64_t sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        reader r[64];
        pthread_t t[64];
        const size_t per = words / (size_t)threads;
        const double t0 = bench_now();
        for (int i = 0; i < threads; i++) {
            r[i] = (reader){buf + (size_t)i * per, per, 0};
            if (i > 0)
                pthread_create(&t[i], NULL, read_part, &r[i]);
        }
        read_part(&r[0]);
        for (int i = 1; i < threads; i++)
            pthread_join(t[i], NULL);
        const double dt = bench_now() - t0;
        for (int i = 0; i < threads; i++)
            sink += r[i].sum;
        best = dt < best ? dt : best;
    }
    free(buf);
    if (sink == 42) /* keep the sums alive */
        printf(" ");
    return (double)bytes / best / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static llmq_status quantized(llmq_context *ctx, llmq_dtype d, llmq_granularity g, int64_t group,
                             int64_t rows, int64_t cols, uint64_t *seed, llmq_tensor **out)
{
    llmq_scheme *s = NULL;
    llmq_status st = llmq_scheme_create(ctx, d, &s);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(s, g);
    if (st == LLMQ_OK && group > 0)
        st = llmq_scheme_set_group_size(s, group);
    if (st == LLMQ_OK && (d == LLMQ_DTYPE_U4 || d == LLMQ_DTYPE_U8))
        st = llmq_scheme_set_symmetry(s, LLMQ_SYMMETRY_ASYMMETRIC);
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(ctx, s, 2, (const int64_t[]){rows, cols}, out);
    llmq_scheme_destroy(s);
    if (st != LLMQ_OK)
        return st;
    uint8_t *p = llmq_tensor_data(*out);
    const size_t bytes = llmq_tensor_nbytes(*out);
    for (size_t i = 0; i < bytes; i += 8) {
        const uint64_t r = rng_next(seed);
        memcpy(p + i, &r, bytes - i < 8 ? bytes - i : 8);
    }
    float *sc = llmq_tensor_data(llmq_tensor_scale(*out));
    int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(*out));
    for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(*out)); i++) {
        sc[i] = 0.01f + (float)(rng_next(seed) % 1000) * 1e-5f;
        zp[i] = d == LLMQ_DTYPE_U4 ? 8 : d == LLMQ_DTYPE_U8 ? 128 : 0;
    }
    return LLMQ_OK;
}

const char *bench_temp_name(bench_temp temp)
{
    return temp == BENCH_HOT ? "hot" : temp == BENCH_COLD ? "cold" : "strm";
}

int bench_stream_copies(double bytes)
{
    const double c = (double)EVICT_BYTES / bytes + 1; /* more than 256 MiB in all */
    return c < 2 ? 2 : c > BENCH_STREAM_MAX_COPIES ? BENCH_STREAM_MAX_COPIES : (int)c;
}

double bench_llmq(llmq_context *ctx, bench_kind kind, int64_t m, int64_t n, int64_t k,
                  bench_temp temp, int reps)
{
    uint64_t seed = 1234;
    llmq_tensor *a = NULL, *c = NULL;
    llmq_status st;
    const int float_a = kind == BENCH_W8A16 || kind == BENCH_W4A16 || kind == BENCH_W4A16P ||
                        kind == BENCH_W8A16P;
    const int w8 = kind == BENCH_W8A8 || kind == BENCH_W8A16 || kind == BENCH_W8A16P;
    const int packed = kind != BENCH_W8A16 && kind != BENCH_W4A16 && kind != BENCH_W4A8;
    const int copies =
        temp == BENCH_STREAM ? bench_stream_copies(bench_weight_bytes(kind, n, k)) : 1;
    llmq_tensor **w = calloc((size_t)copies, sizeof *w); /* the weights as used */
    if (w == NULL)
        return -1.0;
    if (float_a) {
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){m, k}, &a);
        if (st == LLMQ_OK) {
            float *av = llmq_tensor_data(a);
            for (int64_t i = 0; i < m * k; i++)
                av[i] = (float)(rng_next(&seed) % 2001) * 1e-3f - 1.0f;
        }
    } else {
        st = quantized(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_TOKEN, 0, m, k, &seed, &a);
    }
    for (int i = 0; i < copies && st == LLMQ_OK; i++) {
        llmq_tensor *b = NULL;
        if (w8)
            st = quantized(ctx, LLMQ_DTYPE_S8, LLMQ_GRANULARITY_PER_CHANNEL, 0, n, k, &seed, &b);
        else
            st = quantized(ctx, LLMQ_DTYPE_U4, LLMQ_GRANULARITY_PER_GROUP, 128, n, k, &seed, &b);
        if (st == LLMQ_OK && packed) {
            st = llmq_matmul_pack_weights(ctx, b, NULL, &w[i]);
            llmq_tensor_destroy(b);
        } else {
            w[i] = b;
        }
    }
    if (st == LLMQ_OK)
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){m, n}, &c);
    double best = 1e30;
    if (st == LLMQ_OK)
        st = llmq_matmul(ctx, a, w[0], NULL, c); /* warm-up: workspace, pages */
    for (int rep = 0; rep < reps && st == LLMQ_OK; rep++) {
        if (temp == BENCH_COLD)
            bench_evict();
        const double t0 = bench_now();
        for (int i = 0; i < copies && st == LLMQ_OK; i++)
            st = llmq_matmul(ctx, a, w[i], NULL, c);
        const double dt = (bench_now() - t0) / copies;
        best = dt < best ? dt : best;
    }
    if (st != LLMQ_OK)
        fprintf(stderr, "llmq bench: %s: %s\n", llmq_status_name(st), llmq_context_last_error(ctx));
    llmq_tensor_destroy(a);
    for (int i = 0; i < copies; i++)
        llmq_tensor_destroy(w[i]);
    free(w);
    llmq_tensor_destroy(c);
    return st == LLMQ_OK ? best : -1.0;
}
