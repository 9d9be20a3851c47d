/* calib_impl.h - observers' histograms, the searches that read them, the quantizer's layout,
 * and binding parameters to tensors (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CALIB_IMPL_H
#define LLMQ_CALIB_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "llmq/quantizer.h"
#include "quant/scheme_impl.h"

/* ---- histograms: one per parameter set, `bins` counters each ---------------------------- */

typedef enum llmq_hist_growth {
    /* Edges cover the observed range with room to spare; a wider range merges 2^k adjacent
     * bins (and shifts by whole new bins), which is exact on the counts. */
    LLMQ_HIST_DOUBLING = 0,
    /* PyTorch HistogramObserver: edges are exactly [min, max]; a wider range rebins the old
     * counts by splitting each bin into `upsample` sub-bins assigned by their midpoints. */
    LLMQ_HIST_PYTORCH = 1,
} llmq_hist_growth;

typedef struct llmq_hist {
    int64_t count, bins;
    bool absolute; /* histograms of |x|: the lower edge stays at 0 */
    llmq_hist_growth growth;
    int64_t upsample;
    int64_t copies;     /* interleaved copies of each histogram, summed when read */
    float *lo, *hi;     /* [count] edges given to the backend; [v - 1, v + 1] while every value
                           seen equals v (torch.histc's rule for an empty range) */
    float *vmin, *vmax; /* [count] observed range of the binned values; vmin > vmax: none */
    uint64_t *counts;   /* [count][copies][bins] counts at the current edges */
    double *acc;        /* PYTORCH: [count][bins] older counts rebinned (fractional) */
    double *tmp;        /* [bins] scratch for rebinning */
} llmq_hist;

/* Allocate through ctx (no message on failure: returns false). */
bool llmq_hist_init(llmq_context *ctx, llmq_hist *h, int64_t count, int64_t bins, bool absolute,
                    llmq_hist_growth growth, int64_t upsample);
void llmq_hist_free(llmq_context *ctx, llmq_hist *h);

/* Make parameter p's edges cover the new batch's binned values [a, b] (a <= b, finite; a = 0
 * for histograms of |x|), rebinning what was counted before. */
void llmq_hist_cover(llmq_hist *h, int64_t p, float a, float b);

/* The histogram of parameter p as doubles (counts, plus the rebinned older counts). */
void llmq_hist_row(const llmq_hist *h, int64_t p, double *out);

/* ---- searches over one histogram (row of `bins` doubles over [lo, hi]) ------------------ */

/* Value of the k-th smallest binned value (1 <= k <= total), interpolated inside its bin:
 * within one bin width of the exact order statistic. */
double llmq_hist_quantile(const double *row, int64_t bins, double lo, double hi, double k);

/* Doubles of workspace the searches below and llmq_observer_clip() need. */
#define LLMQ_CLIP_WORK(bins) (4 * (size_t)(bins) + 4)

/* TensorRT's entropy calibration on a histogram of |x|: the number of bins i in
 * [levels, bins) whose clipped distribution has the least KL divergence from its quantized
 * version with `levels` levels; -1 when there is no candidate (bins <= levels). work:
 * 3 (bins + 1) doubles. When kl is not NULL it receives the divergence of every candidate i
 * at kl[i] (others untouched). */
int64_t llmq_entropy_search(const double *row, int64_t bins, int64_t levels, double *work,
                            double *kl);

/* PyTorch HistogramObserver._non_linear_param_search on a histogram over [min, max] (min <
 * max): the new range, in float32 as PyTorch computes it. work: bins doubles. */
void llmq_l2_search(const double *row, int64_t bins, float min, float max, int64_t dst_nbins,
                    double *work, float *new_min, float *new_max);

/* Its _compute_quantization_error (exposed for tests). */
double llmq_l2_error(const double *row, int64_t bins, float min, float max, int64_t dst_nbins,
                     int64_t start_bin, int64_t end_bin);

/* ---- the quantizer ----------------------------------------------------------------------- */

struct llmq_quantizer {
    llmq_context *ctx;
    llmq_scheme scheme; /* own copy */
    llmq_observer observer;
    double momentum, percentile;
    int64_t bins, grid, upsample;
    int64_t batches;
    bool finalized;
    int32_t ndim; /* of the first batch */
    int64_t shape[LLMQ_MAX_DIMS];
    llmq_param_layout layout;
    float *lo, *hi;   /* [count] running statistics: min / max, or their moving averages */
    float *blo, *bhi; /* [count] the current batch's range */
    bool has_hist;
    llmq_hist hist;
    llmq_tensor *scale, *zero_point, *range;
};

/* Clipping range of parameter p from the observer's statistics (before finalize frees them).
 * work: LLMQ_CLIP_WORK(bins) doubles. May run backend jobs (MSE). */
llmq_status llmq_observer_clip(llmq_context *ctx, const llmq_quantizer *q, int64_t p, double *work,
                               float *lo, float *hi);

/* ---- binding parameters to a tensor -------------------------------------------------------- */

/* Check that scheme's parameter layout over dst's shape is scale's shape, then bind the scheme
 * to dst and copy the values. Messages are written by `fn`. */
llmq_status llmq_bind_params(llmq_context *ctx, const char *fn, llmq_tensor *dst,
                             const llmq_scheme *scheme, const llmq_tensor *scale,
                             const llmq_tensor *zero_point);

#endif
