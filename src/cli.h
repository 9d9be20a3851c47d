/* cli.h - shared helpers of the llmq command-line tool (public API only).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CLI_H
#define LLMQ_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "llmq.h"

/* Subcommands: argc/argv start after the subcommand name; return the process exit code. */
int llmq_cmd_info(int argc, char **argv);
int llmq_cmd_demo(int argc, char **argv);
int llmq_cmd_bench(int argc, char **argv);
int llmq_cmd_inspect(int argc, char **argv);
int llmq_cmd_quantize(int argc, char **argv);
int llmq_cmd_recipe(int argc, char **argv);
int llmq_cmd_plan(int argc, char **argv);
int llmq_cmd_bench_model(int argc, char **argv);

/* Calibration (cmd_calib.c): `llmq demo observers`, the static-vs-dynamic section of
 * `llmq demo`, and `llmq bench observe`. */
int llmq_cmd_demo_observers(int argc, char **argv);
int cli_demo_calibration(llmq_context *ctx, uint64_t seed);
int cli_bench_observe(int argc, char **argv);

/* `llmq bench gemm --backend cuda` (cmd_bench_cuda.c): runs llmq-bench-cuda with the arguments
 * after "gemm"; llmq_cmd_bench_is_cuda tells whether they ask for --backend cuda. */
int llmq_cmd_bench_gemm_cuda(int argc, char **argv);
int llmq_cmd_bench_is_cuda(int argc, char **argv);

/* Print "llmq: <what>: <status name>: <last error>" to stderr and return 1. */
int cli_fail(llmq_context *ctx, const char *what, llmq_status st);

/* "u4 asym per-group128": a scheme in a few words ("copy" for NULL). */
const char *cli_scheme_text(const llmq_scheme *s, char *buf, size_t size);

/* Monotonic seconds. */
double cli_now(void);

/* Best of `reps` timings of memcpy over n bytes (fresh buffers, so it is a memory test);
 * negative when the buffers cannot be allocated. */
double cli_memcpy_seconds(size_t n, int reps);

/* Parse `--rows R --cols C --reps N` of `llmq bench <name>` (defaults already in place);
 * 0 on success, else 2 after a usage message. */
int cli_bench_options(const char *name, int argc, char **argv, int64_t *rows, int64_t *cols,
                      int *reps);

/* Deterministic generator for synthetic data (xoshiro256**). */
typedef struct cli_rng {
    uint64_t s[4];
} cli_rng;

void cli_rng_seed(cli_rng *r, uint64_t seed);
double cli_rng_uniform(cli_rng *r);  /* [0, 1) */
double cli_rng_normal(cli_rng *r);   /* N(0, 1) */
double cli_rng_student_t(cli_rng *r, double dof); /* heavy-tailed */

#endif
