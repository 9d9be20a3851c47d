/* cmd_info.c - `llmq info`: the backend and CPU tier a context chooses, and build info.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int llmq_cmd_info(int argc, char **argv)
{
    const char *backend = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            backend = argv[++i];
        } else {
            fprintf(stderr, "usage: llmq info [--backend auto|cpu|cuda]\n");
            return 2;
        }
    }
    llmq_context *ctx = NULL;
    const llmq_status st = llmq_context_create(&ctx, backend);
    if (st != LLMQ_OK) {
        const int rc = cli_fail(ctx, "context", st);
        llmq_context_destroy(ctx);
        return rc;
    }
    printf("backend: %s\n", llmq_context_backend_name(ctx));
    printf("cpu tier used: %s\n", llmq_cpu_isa_name(llmq_context_cpu_isa(ctx)));
    printf("cpu tier of this host: %s\n", llmq_cpu_isa_name(llmq_context_host_isa(ctx)));
    fputs(llmq_build_info(), stdout);
    llmq_context_destroy(ctx);
    return 0;
}
