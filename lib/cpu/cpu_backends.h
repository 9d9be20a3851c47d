/* cpu_backends.h - the CPU backends' vtables (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CPU_BACKENDS_H
#define LLMQ_CPU_BACKENDS_H

#include "backend/backend.h"

/* The portable reference: every kernel, the oracle of every test. */
extern const llmq_backend_ops llmq_cpu_scalar_ops;

/* The reference matmul (gemm_scalar.c), also the fallback of every tier. */
llmq_status llmq_cpu_scalar_matmul(llmq_backend *be, const llmq_matmul_job *job);
/* The scalar fake-quant kernels (kern_qat_scalar.c), named so that a SIMD tier without its own
 * may point its slots at them. */
llmq_status llmq_cpu_scalar_fake_quantize(llmq_backend *be, const llmq_fq_job *job,
                                          int64_t *bad_index);
llmq_status llmq_cpu_scalar_fake_quantize_backward(llmq_backend *be, const llmq_fq_job *job,
                                                   int64_t *bad_index);

#endif
