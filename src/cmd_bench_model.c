/* cmd_bench_model.c - `llmq bench model`: generate a large f32 safetensors model, quantize it
 * with `llmq quantize` in a child process, and report MB/s and the child's peak RSS (from the
 * OS) next to reading the file once. SPDX-License-Identifier: MIT */
/* wait4() for the child's peak RSS is a BSD/Linux call */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define ROWS 4096
#define COLS 4096 /* one tensor: 64 MiB of f32 */

static int make_model(llmq_context *ctx, const char *path, int tensors)
{
    const int64_t shape[2] = {ROWS, COLS};
    llmq_model_writer *w = NULL;
    llmq_tensor *t = NULL;
    llmq_status st = llmq_model_writer_create(ctx, path, &w);
    char name[64];
    for (int i = 0; st == LLMQ_OK && i < tensors; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        st = llmq_model_writer_declare(ctx, w, name, LLMQ_DTYPE_F32, 2, shape, NULL);
    }
    if (st == LLMQ_OK)
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &t);
    cli_rng r;
    cli_rng_seed(&r, 5);
    for (int i = 0; st == LLMQ_OK && i < tensors; i++) {
        float *v = llmq_tensor_data(t);
        for (int64_t k = 0; k < (int64_t)ROWS * COLS; k++) /* cheap, LLM-like magnitudes */
            v[k] = (float)(0.04 * (cli_rng_uniform(&r) - 0.5));
        snprintf(name, sizeof name, "layers.%d.weight", i);
        st = llmq_model_writer_write(ctx, w, name, t);
    }
    if (st == LLMQ_OK)
        st = llmq_model_writer_finish(ctx, w);
    llmq_tensor_destroy(t);
    llmq_model_writer_destroy(w);
    return st == LLMQ_OK ? 0 : cli_fail(ctx, path, st);
}

static double read_once(const char *path, double *mb)
{
    const int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1.0;
    static char buf[8 << 20];
    double bytes = 0.0;
    const double t0 = cli_now();
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        bytes += (double)n;
    const double dt = cli_now() - t0;
    close(fd);
    *mb = bytes / 1e6;
    return dt;
}

int llmq_cmd_bench_model(int argc, char **argv)
{
    int size_mb = 2048;
    const char *dir = "/tmp";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--size-mb") == 0 && i + 1 < argc)
            size_mb = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: llmq bench model [--size-mb N] [--dir D]\n");
            return 2;
        }
    }
    const int tensors = size_mb / 64 > 0 ? size_mb / 64 : 1;
    char model[512], recipe[512], out[512];
    snprintf(model, sizeof model, "%s/llmq-bench-model.safetensors", dir);
    snprintf(recipe, sizeof recipe, "%s/llmq-bench-recipe.yaml", dir);
    snprintf(out, sizeof out, "%s/llmq-bench-model-q.safetensors", dir);
    llmq_context *ctx = NULL;
    if (llmq_context_create(&ctx, "cpu") != LLMQ_OK) {
        llmq_context_destroy(ctx);
        return 1;
    }
    printf("llmq bench model: %d tensors of %dx%d f32 (%d MiB) in %s\n", tensors, ROWS, COLS,
           tensors * 64, dir);
    int rc = make_model(ctx, model, tensors);
    llmq_context_destroy(ctx);
    FILE *f = rc == 0 ? fopen(recipe, "w") : NULL;
    if (f == NULL) {
        unlink(model);
        return 1;
    }
    fputs("version: 1\ndefaults:\n  weight: {bits: 4, symmetry: asymmetric, "
          "granularity: per_group, group_size: 128}\n", f);
    fclose(f);
    double mb = 0.0;
    const double t_read = read_once(model, &mb);
    const double t0 = cli_now();
    const pid_t pid = fork();
    if (pid == 0) {
        const int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl("/proc/self/exe", "llmq", "quantize", "--recipe", recipe, model, "-o", out,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    const int waited = pid > 0 && wait4(pid, &status, 0, &ru) == pid;
    const double t_q = cli_now() - t0;
    unlink(model);
    unlink(recipe);
    unlink(out);
    if (!waited || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "llmq bench model: llmq quantize failed\n");
        return 1;
    }
    const double rss_mb = (double)ru.ru_maxrss / 1024.0, bound_mb = 3 * 64.0 * 1.048576 + 64.0;
    printf("%-28s %10s %12s %10s\n", "", "MB/s", "peak RSS MB", "ratio");
    printf("%-28s %10.0f %12s %10s\n", "peer: read the file once", mb / t_read, "-", "1.00");
    printf("%-28s %10.0f %12.0f %10.2f\n", "llmq quantize (u4 g128)", mb / t_q, rss_mb,
           (mb / t_q) / (mb / t_read));
    printf("peak RSS bound (largest tensor x 3 + 64 MB): %.0f MB: %s\n", bound_mb,
           rss_mb <= bound_mb ? "met" : "NOT met");
    return rss_mb <= bound_mb ? 0 : 1;
}
