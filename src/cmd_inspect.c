/* cmd_inspect.c - `llmq inspect FILE`: tensors, dtypes, shapes and llmq metadata of a model.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int llmq_cmd_inspect(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: llmq inspect FILE\n");
        return 2;
    }
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    llmq_model *m = NULL;
    if (st == LLMQ_OK)
        st = llmq_model_open(ctx, argv[0], &m);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, argv[0], st);
        llmq_context_destroy(ctx);
        return rc;
    }
    const int64_t n = llmq_model_tensor_count(m);
    printf("%s: %s, %lld tensors\n", argv[0],
           llmq_model_get_format(m) == LLMQ_MODEL_FORMAT_LLAMA2C ? "llama2.c checkpoint"
                                                                : "safetensors",
           (long long)n);
    printf("%-48s %-6s %-22s %s\n", "tensor", "dtype", "stored shape", "llmq scheme");
    for (int64_t i = 0; i < n; i++) {
        const char *name = llmq_model_tensor_name(m, i);
        int32_t nd = 0;
        int64_t shape[8];
        char dims[96] = "[";
        if (llmq_model_tensor_shape(m, i, &nd, shape, 8) == LLMQ_OK)
            for (int32_t k = 0; k < nd && k < 8; k++)
                snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld",
                         k ? ", " : "", (long long)shape[k]);
        strcat(dims, "]");
        char key[600];
        snprintf(key, sizeof key, "llmq.scheme.%s", name);
        const char *scheme = llmq_model_metadata(m, key);
        printf("%-48s %-6s %-22s %s\n", name, llmq_model_tensor_file_dtype(m, i), dims,
               scheme != NULL ? scheme : "");
    }
    const int64_t nm = llmq_model_metadata_count(m);
    for (int64_t i = 0; i < nm; i++) {
        const char *k = llmq_model_metadata_key(m, i);
        if (strncmp(k, "llmq.scheme.", 12) != 0) /* schemes are shown per tensor above */
            printf("metadata %s = %s\n", k, llmq_model_metadata_value(m, i));
    }
    llmq_model_destroy(m);
    llmq_context_destroy(ctx);
    return 0;
}
