/* fail.h - recording failures on a context (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CORE_FAIL_H
#define LLMQ_CORE_FAIL_H

#include "llmq/context.h"
#include "llmq/status.h"

/* Write "fn: <formatted>" into ctx's last-error message and return st. The format should read
 * "argument=value: reason". ctx may be NULL (then only st is returned). */
llmq_status llmq_fail(llmq_context *ctx, llmq_status st, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Return LLMQ_ERR_INVALID_ARG with a message unless cond holds. */
#define LLMQ_REQUIRE(ctx, cond, ...)                                                           \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return llmq_fail((ctx), LLMQ_ERR_INVALID_ARG, __func__, __VA_ARGS__);             \
    } while (0)

/* Forward a non-OK status. */
#define LLMQ_TRY(expr)                                                                         \
    do {                                                                                       \
        llmq_status llmq_st_ = (expr);                                                         \
        if (llmq_st_ != LLMQ_OK)                                                               \
            return llmq_st_;                                                                   \
    } while (0)

#endif
