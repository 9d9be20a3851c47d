/* cmd_recipe.c - `llmq recipe check R.yaml [--model M]`: validate a recipe and show the rule
 * each tensor of a model gets. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int llmq_cmd_recipe(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[0], "check") != 0 ||
        !(argc == 2 || (argc == 4 && strcmp(argv[2], "--model") == 0))) {
        fprintf(stderr, "usage: llmq recipe check R.yaml [--model M]\n");
        return 2;
    }
    llmq_context *ctx = NULL;
    llmq_recipe *r = NULL;
    llmq_model *m = NULL;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st == LLMQ_OK)
        st = llmq_recipe_load(ctx, argv[1], &r);
    if (st == LLMQ_OK && argc == 4)
        st = llmq_model_open(ctx, argv[3], &m);
    int rc = st == LLMQ_OK ? 0 : cli_fail(ctx, argc == 4 && r ? argv[3] : argv[1], st);
    if (rc == 0)
        printf("%s: valid, %d rules\n", argv[1], (int)llmq_recipe_rule_count(r));
    for (int64_t i = 0; rc == 0 && m != NULL && i < llmq_model_tensor_count(m); i++) {
        const char *name = llmq_model_tensor_name(m, i);
        llmq_recipe_choice c;
        st = llmq_recipe_choice_defaults(&c, sizeof c);
        if (st == LLMQ_OK)
            st = llmq_recipe_resolve(ctx, r, name, &c);
        if (st != LLMQ_OK) {
            rc = cli_fail(ctx, name, st);
            break;
        }
        char rule[16] = "defaults";
        if (c.rule >= 0)
            snprintf(rule, sizeof rule, "rule %d", (int)c.rule);
        printf("%-44s %-9s ", name, rule);
        char buf[64];
        if (c.skip || c.weight == NULL)
            printf("%s", c.skip ? "skip" : "weights float");
        else
            printf("weights %s", cli_scheme_text(c.weight, buf, sizeof buf));
        if (c.activation != NULL)
            printf(", activations %s %s", cli_scheme_text(c.activation, buf, sizeof buf),
                   c.activation_mode == LLMQ_ACTIVATION_STATIC ? "static" : "dynamic");
        putchar('\n');
        llmq_recipe_choice_clear(&c);
    }
    llmq_model_destroy(m);
    llmq_recipe_destroy(r);
    llmq_context_destroy(ctx);
    return rc;
}
