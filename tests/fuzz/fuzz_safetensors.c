/* fuzz_safetensors.c - libFuzzer target: any bytes as a model file (safetensors header or
 * llama2.c checkpoint). Everything the directory promises must be readable without a crash:
 * every tensor is fetched and its bytes summed. SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llmq.h"
#include "model/model_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llmq_context *ctx = NULL;
    if (llmq_context_create(&ctx, "cpu") != LLMQ_OK) {
        llmq_context_destroy(ctx);
        return 0;
    }
    void *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        llmq_context_destroy(ctx);
        return 0;
    }
    memcpy(buf, data, size);
    llmq_model *m = NULL;
    if (llmq_model_from_memory(ctx, "fuzz", buf, size, false, "fuzz", &m) == LLMQ_OK) {
        volatile unsigned sum = 0;
        for (int64_t i = 0; i < llmq_model_tensor_count(m); i++) {
            llmq_tensor *t = NULL;
            if (llmq_model_tensor(ctx, m, llmq_model_tensor_name(m, i), &t) != LLMQ_OK)
                continue;
            const uint8_t *b = llmq_tensor_data(t);
            for (size_t k = 0; k < llmq_tensor_nbytes(t); k++)
                sum += b[k];
            llmq_tensor_destroy(t);
        }
        for (int64_t i = 0; i < llmq_model_metadata_count(m); i++)
            sum += (unsigned)strlen(llmq_model_metadata_value(m, i));
        (void)sum; /* the reads are the point: the sanitizers watch them */
        llmq_model_destroy(m);
    }
    free(buf);
    llmq_context_destroy(ctx);
    return 0;
}
