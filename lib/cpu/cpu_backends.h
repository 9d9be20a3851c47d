/* cpu_backends.h - the CPU backends' vtables (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CPU_BACKENDS_H
#define LLMQ_CPU_BACKENDS_H

#include "backend/backend.h"

/* The portable reference: every kernel, the oracle of every test. */
extern const llmq_backend_ops llmq_cpu_scalar_ops;

/* SIMD tiers, most specialised first (kern_avx512.c, kern_avxvnni.c, kern_avx2.c). Each
 * tier's table starts from the tier below it (BLIS): a slot it does not accelerate, or a case
 * inside a slot it does not cover, goes to the tier below, down to the reference. */
extern const llmq_backend_ops llmq_cpu_avx512_ops;
extern const llmq_backend_ops llmq_cpu_avxvnni_ops;
extern const llmq_backend_ops llmq_cpu_avx2_ops;

/* The reference kernels (kern_scalar.c, gemm_scalar.c), also the fallback of every tier.
 * They are compiled for the baseline ISA, so any tier may call them. */
llmq_status llmq_cpu_scalar_quantize(llmq_backend *be, const llmq_quant_job *job,
                                     int64_t *bad_index);
llmq_status llmq_cpu_scalar_dequantize(llmq_backend *be, const llmq_quant_job *job);
llmq_status llmq_cpu_scalar_range(llmq_backend *be, const llmq_quant_job *job, float *lo,
                                  float *hi, int64_t *bad_index);
llmq_status llmq_cpu_scalar_histogram(llmq_backend *be, const llmq_quant_job *job,
                                      const llmq_hist_job *hist);
llmq_status llmq_cpu_scalar_pack(llmq_backend *be, const llmq_quant_job *job, int64_t *bad_index);
llmq_status llmq_cpu_scalar_unpack(llmq_backend *be, const llmq_quant_job *job);
llmq_status llmq_cpu_scalar_matmul(llmq_backend *be, const llmq_matmul_job *job);
/* The scalar fake-quant kernels (kern_qat_scalar.c), named so that a SIMD tier without its own
 * may point its slots at them. */
llmq_status llmq_cpu_scalar_fake_quantize(llmq_backend *be, const llmq_fq_job *job,
                                          int64_t *bad_index);
llmq_status llmq_cpu_scalar_fake_quantize_backward(llmq_backend *be, const llmq_fq_job *job,
                                                   int64_t *bad_index);

#endif
