/* fuzz_qtable.c - libFuzzer target: any bytes as a YAML parameter table (read through a memory
 * file, since llmq_qtable_load takes a path). Every entry of a table that loads must be
 * readable and applicable. SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llmq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int fd = memfd_create("qtable", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    llmq_context *ctx = NULL;
    llmq_qtable *t = NULL;
    if (llmq_context_create(&ctx, "cpu") == LLMQ_OK && llmq_qtable_load(ctx, path, &t) == LLMQ_OK) {
        for (int64_t i = 0; i < llmq_qtable_count(t); i++) {
            const llmq_scheme *s = NULL;
            const llmq_tensor *scale = NULL, *zp = NULL;
            if (llmq_qtable_get(ctx, t, llmq_qtable_name_at(t, i), &s, &scale, &zp) != LLMQ_OK)
                continue;
            volatile float sum = 0.0f;
            const float *sv = llmq_tensor_data(scale);
            for (int64_t k = 0; k < llmq_tensor_numel(scale); k++)
                sum += sv[k];
            (void)sum;
        }
    }
    llmq_qtable_destroy(t);
    llmq_context_destroy(ctx);
    close(fd);
    return 0;
}
