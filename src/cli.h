/* cli.h - shared helpers of the llmq command-line tool (public API only).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CLI_H
#define LLMQ_CLI_H

#include <stdint.h>

#include "llmq.h"

/* Subcommands: argc/argv start after the subcommand name; return the process exit code. */
int llmq_cmd_info(int argc, char **argv);
int llmq_cmd_demo(int argc, char **argv);
int llmq_cmd_bench(int argc, char **argv);
/* `llmq bench gemm --backend cuda` (cmd_bench_cuda.c): runs llmq-bench-cuda with the arguments
 * after "gemm"; llmq_cmd_bench_is_cuda tells whether they ask for --backend cuda. */
int llmq_cmd_bench_gemm_cuda(int argc, char **argv);
int llmq_cmd_bench_is_cuda(int argc, char **argv);

/* Print "llmq: <what>: <status name>: <last error>" to stderr and return 1. */
int cli_fail(llmq_context *ctx, const char *what, llmq_status st);

/* Monotonic seconds. */
double cli_now(void);

/* Deterministic generator for synthetic data (xoshiro256**). */
typedef struct cli_rng {
    uint64_t s[4];
} cli_rng;

void cli_rng_seed(cli_rng *r, uint64_t seed);
double cli_rng_uniform(cli_rng *r);  /* [0, 1) */
double cli_rng_normal(cli_rng *r);   /* N(0, 1) */
double cli_rng_student_t(cli_rng *r, double dof); /* heavy-tailed */

#endif
