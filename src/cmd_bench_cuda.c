/* cmd_bench_cuda.c - `llmq bench gemm --backend cuda`: runs the CUDA benchmark program
 * llmq-bench-cuda (benchmarks/bench_gemm_cuda.cu), which links the cuBLAS peers at run time so
 * that this tool never depends on CUDA. SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int llmq_cmd_bench_is_cuda(int argc, char **argv)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--backend") == 0 && strcmp(argv[i + 1], "cuda") == 0)
            return 1;
    return 0;
}

/* The program: $LLMQ_BENCH_CUDA, else beside this executable (installed), else in the build
 * tree's benchmarks/ folder, else on $PATH. */
int llmq_cmd_bench_gemm_cuda(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "llmq bench gemm: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    const char *env = getenv("LLMQ_BENCH_CUDA");
    char self[PATH_MAX], path[PATH_MAX + 64];
    if (env != NULL && env[0] != '\0') {
        args[0] = (char *)env;
        execv(env, args);
        fprintf(stderr, "llmq bench gemm: LLMQ_BENCH_CUDA=%s: %s\n", env, strerror(errno));
        free(args);
        return 1;
    }
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            const char *tries[] = {"/llmq-bench-cuda", "/../benchmarks/llmq-bench-cuda"};
            for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
                snprintf(path, sizeof path, "%s%s", self, tries[i]);
                if (access(path, X_OK) == 0) {
                    args[0] = path;
                    execv(path, args);
                }
            }
        }
    }
    args[0] = "llmq-bench-cuda";
    execvp(args[0], args);
    fprintf(stderr, "llmq bench gemm --backend cuda: llmq-bench-cuda not found (%s); build with "
                    "nvcc (-Dcuda=enabled) or set LLMQ_BENCH_CUDA\n", strerror(errno));
    free(args);
    return 1;
}
