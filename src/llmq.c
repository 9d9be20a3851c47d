/* llmq.c - the llmq command-line tool: entry point and subcommand dispatch.
 * Written against the public API only. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: llmq <command> [options]\n"
               "\n"
               "commands:\n"
               "  --version          print the library version\n"
               "  info               backend and CPU tier chosen, build information\n"
               "  demo               quantize LLM-like synthetic data under common schemes,\n"
               "                     then static (each observer) vs dynamic quantization\n"
               "  demo observers     SQNR of every observer on Gaussian, Laplace and\n"
               "                     outlier-heavy data (the table of docs/calibration.md)\n"
               "  bench quantize     quantize throughput next to memcpy bandwidth\n"
               "  inspect FILE       tensors, dtypes, shapes and llmq metadata of a model file\n"
               "  quantize --recipe R.yaml IN -o OUT [--calib CALIB] [--report REPORT.yaml]\n"
               "                     quantize a model (safetensors or llama2.c) by a recipe\n"
               "  recipe check R.yaml [--model M]\n"
               "                     validate a recipe; show the rule of each tensor\n"
               "  plan --model M [--calib C] --budget BITS --candidates LIST -o R.yaml\n"
               "                     choose a weight scheme per matrix under an average bit\n"
               "                     budget (mixed precision); writes a recipe\n"
               "  bench observe      observer throughput next to memcpy bandwidth\n"
               "  bench gemm         matmul kernels (W8A8, W8A16, W4A16, W4A8), 1 and 2 threads\n"
               "  bench qat          fake-quant forward / backward, CPU tier against scalar\n"
               "  help               this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("llmq %s\n", llmq_version_string());
        if (llmq_version_number() != LLMQ_VERSION_NUMBER)
            printf("warning: built against headers %s\n", LLMQ_VERSION_STRING);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "info") == 0)
        return llmq_cmd_info(argc - 2, argv + 2);
    if (strcmp(cmd, "demo") == 0)
        return llmq_cmd_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0)
        return llmq_cmd_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "inspect") == 0)
        return llmq_cmd_inspect(argc - 2, argv + 2);
    if (strcmp(cmd, "quantize") == 0)
        return llmq_cmd_quantize(argc - 2, argv + 2);
    if (strcmp(cmd, "recipe") == 0)
        return llmq_cmd_recipe(argc - 2, argv + 2);
    if (strcmp(cmd, "plan") == 0)
        return llmq_cmd_plan(argc - 2, argv + 2);
    fprintf(stderr, "llmq: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
