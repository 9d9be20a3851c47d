/* bench_gemm.h - llmq's side of the matmul benchmark, shared by `llmq bench gemm` and the peer
 * benchmark benchmarks/bench_gemm_peers.c (public API only). SPDX-License-Identifier: MIT */
#ifndef LLMQ_BENCH_GEMM_H
#define LLMQ_BENCH_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "llmq.h"

/* The products measured. */
typedef enum bench_kind {
    BENCH_W8A8 = 0,  /* s8 A per token x s8 B per channel (prepacked), f32 dequant epilogue */
    BENCH_W8A16 = 1, /* f32 A x s8 B per channel (as stored), f32 output */
    BENCH_W4A16 = 2, /* f32 A x u4 B in groups of 128 with zero points, f32 output */
    BENCH_W4A8 = 3,  /* s8 A per token x u4 B in groups of 128 with zero points, f32 output */
    BENCH_W4A16P = 4, /* BENCH_W4A16 with B prepacked (llmq_matmul_pack_weights) */
    BENCH_W4A8P = 5,  /* BENCH_W4A8 with B prepacked */
    BENCH_W8A16P = 6, /* BENCH_W8A16 with B prepacked */
    BENCH_KINDS = 7
} bench_kind;

const char *bench_kind_name(bench_kind kind);

/* Bytes of B for a kind (what an M = 1 product must stream). */
double bench_weight_bytes(bench_kind kind, int64_t n, int64_t k);

/* Where the weights are when a product starts. */
typedef enum bench_temp {
    BENCH_HOT = 0,   /* in cache: the previous repetition read them */
    BENCH_COLD = 1,  /* in memory: 256 MiB read before each repetition (pool threads asleep) */
    BENCH_STREAM = 2 /* a decode step: products back to back, each over other weights, 256 MiB
                      * in all (bench_stream_copies), time per product */
} bench_temp;

/* "hot", "cold" or "strm". */
const char *bench_temp_name(bench_temp temp);

/* Most copies of the weights a BENCH_STREAM rotation cycles through. */
#define BENCH_STREAM_MAX_COPIES 64

/* Copies of weights of `bytes` bytes that a BENCH_STREAM rotation cycles through (2 to
 * BENCH_STREAM_MAX_COPIES). */
int bench_stream_copies(double bytes);

/* Best-of-`reps` seconds of one llmq_matmul of kind on ctx (for BENCH_STREAM: of the mean over
 * one rotation). Returns < 0 on failure (message printed). */
double bench_llmq(llmq_context *ctx, bench_kind kind, int64_t m, int64_t n, int64_t k,
                  bench_temp temp, int reps);

/* Write to a buffer larger than the last-level cache, so that the next call reads from DRAM. */
void bench_evict(void);

/* Read bandwidth in GB/s of `threads` threads each summing its share of a 512 MiB buffer as 4
 * sequential streams (best of `reps`). */
double bench_read_bandwidth(int threads, int reps);

/* Monotonic seconds. */
double bench_now(void);

/* The shapes of the issue: (1, 8, 32, 128, 512) x 4096 x 4096 and 1024 x 4096 x 11008. */
extern const int64_t bench_shapes[6][3];

#endif
