/* qat_params.h - what every CPU fake-quant kernel reads the same way: the zero point of a
 * parameter and the chunking of rows (internal, static inline for every CPU translation unit).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CPU_QAT_PARAMS_H
#define LLMQ_CPU_QAT_PARAMS_H

#include "backend/backend.h"
#include "quant/rounding.h"

/* Columns per step. The LSQ sums are added per run of one parameter inside a chunk, so every
 * CPU tier uses this chunking to give the reference's sums bit for bit. */
#define LLMQ_FQ_CHUNK 256

/* The LSQ sums of a run: element i of the run goes into partial sum i % LLMQ_FQ_LANES (in
 * double), and the partial sums are added pairwise at the run's end (llmq_fq_lanes_sum): an
 * order every tier follows, so a SIMD tier adds 8 terms at a time and still gives the
 * reference's bits. */
#define LLMQ_FQ_LANES 8

static inline double llmq_fq_lanes_sum(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Zero point of parameter p as an integer code. A float zero point (the learnable one of LSQ)
 * is rounded half to even and clamped onto the grid, as PyTorch's learnable forward does;
 * clamping first is exact (rounding is monotonic, the bounds are integers). */
static inline int32_t llmq_fq_zero_point(const llmq_fq_job *job, int64_t p)
{
    if (job->zero_point == NULL)
        return job->zero_point_default;
    if (job->zero_point_dtype == LLMQ_DTYPE_S32)
        return ((const int32_t *)job->zero_point)[p];
    float z = ((const float *)job->zero_point)[p];
    z = z >= (float)job->qmin ? z : (float)job->qmin;
    z = z <= (float)job->qmax ? z : (float)job->qmax;
    return (int32_t)llmq_round_half_even(z);
}

#endif
