/* matmul_impl.h - what the matmul entry points share (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_GEMM_MATMUL_IMPL_H
#define LLMQ_GEMM_MATMUL_IMPL_H

#include "llmq/gemm.h"

/* Copy and check the caller's options into *o (NULL: defaults); failures name fn. */
llmq_status llmq_matmul_read_options(llmq_context *ctx, const char *fn,
                                     const llmq_matmul_options *options, llmq_matmul_options *o);

#endif
