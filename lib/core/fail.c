/* fail.c - per-context error messages. SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"

llmq_status llmq_fail(llmq_context *ctx, llmq_status st, const char *fn, const char *fmt, ...)
{
    if (ctx == NULL)
        return st;
    int n = snprintf(ctx->last_error, sizeof ctx->last_error, "%s: ", fn);
    if (n < 0 || (size_t)n >= sizeof ctx->last_error)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error + n, sizeof ctx->last_error - (size_t)n, fmt, ap);
    va_end(ap);
    return st;
}

llmq_status llmq_fail_oom(llmq_context *ctx, const char *fn, const char *what, size_t bytes)
{
    return llmq_fail(ctx, LLMQ_ERR_OUT_OF_MEMORY, fn, "%s=%zu bytes: allocation failed", what,
                     bytes);
}
