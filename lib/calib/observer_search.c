/* observer_search.c - from statistics to clipping ranges: percentile, TensorRT's entropy
 * (KL) threshold, PyTorch's L2 search, the MSE clip-ratio grid. SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "core/context_impl.h"

double llmq_hist_quantile(const double *row, int64_t bins, double lo, double hi, double k)
{
    const double w = (hi - lo) / (double)bins;
    double cum = 0.0;
    int64_t last = -1;
    for (int64_t b = 0; b < bins; b++) {
        if (!(row[b] > 0.0)) continue;
        last = b;
        if (cum + row[b] >= k) {
            /* the values of a bin are taken as evenly spread: the j-th of h sits at
             * (j - 1/2) / h of the bin, so the answer stays inside the bin */
            double f = (k - cum - 0.5) / row[b];
            f = f < 0.0 ? 0.0 : f > 1.0 ? 1.0 : f;
            return lo + w * ((double)b + f);
        }
        cum += row[b];
    }
    return last >= 0 ? lo + w * (double)(last + 1) : lo;
}

/* Q mass given to a run that has P mass but no count of its own (only the run holding the
 * folded outliers can be one): the epsilon with which MXNet's and TVM's implementations of this
 * calibration smooth their distributions. Without it such a threshold would be infinitely
 * bad, and no threshold inside an empty stretch of the histogram could be chosen. */
#define ENTROPY_EPS 1e-4

/* KL(P || Q) of TensorRT's entropy calibration for the first i bins, in O(levels) from prefix
 * sums over the bins (C: counts, Z: non-zero bins, H: h ln h):
 *   P = h[0..i-1] with the outliers sum(h[i..]) added to bin i-1;
 *   Q = h[0..i-1] (without outliers) merged into `levels` runs of bins [g i / L, (g+1) i / L),
 *       each run's sum spread evenly over the run's bins where P is non-zero;
 *   both normalized. With T = sum(P), R = sum(Q) and m_g, S_g, n_g the P mass, Q mass and
 *   non-zero bins of run g:
 *   KL = (sum P ln P - sum_g m_g ln(S_g / n_g)) / T - ln T + ln R. */
static double kl_candidate(const double *h, const double *c, const double *z, const double *hl,
                           int64_t bins, int64_t i, int64_t levels)
{
    const double total = c[bins], outliers = total - c[i];
    double kept = c[i];
    const double last = h[i - 1] + outliers;
    const double plogp = hl[i - 1] + (last > 0.0 ? last * log(last) : 0.0);
    double cross = 0.0;
    for (int64_t g = 0; g < levels; g++) {
        const int64_t b0 = g * i / levels, b1 = (g + 1) * i / levels;
        double s = c[b1] - c[b0], mass = s, nz;
        if (g + 1 < levels) {
            nz = z[b1] - z[b0];
        } else {
            nz = z[i - 1] - z[b0] + (last > 0.0 ? 1.0 : 0.0);
            mass += outliers;
        }
        if (!(mass > 0.0)) continue;
        if (!(s > 0.0)) {
            s = ENTROPY_EPS * nz;
            kept += s;
        }
        cross += mass * log(s / nz);
    }
    const double kl = (plogp - cross) / total - log(total) + log(kept);
    return kl > 0.0 ? kl : 0.0; /* rounding may leave a tiny negative for an exact fit */
}

int64_t llmq_entropy_search(const double *row, int64_t bins, int64_t levels, double *work,
                            double *kl)
{
    double *c = work, *z = c + bins + 1, *hl = z + bins + 1;
    c[0] = z[0] = hl[0] = 0.0;
    for (int64_t j = 0; j < bins; j++) {
        const double v = row[j] > 0.0 ? row[j] : 0.0;
        c[j + 1] = c[j] + v;
        z[j + 1] = z[j] + (v > 0.0 ? 1.0 : 0.0);
        hl[j + 1] = hl[j] + (v > 0.0 ? v * log(v) : 0.0);
    }
    int64_t best = -1;
    double best_kl = INFINITY;
    for (int64_t i = levels; i < bins; i++) {
        const double d = kl_candidate(row, c, z, hl, bins, i, levels);
        if (kl != NULL) kl[i] = d;
        /* ties (to rounding) go to the smaller threshold */
        if (d < best_kl - 1e-12) {
            best_kl = d;
            best = i;
        }
    }
    return best;
}

double llmq_l2_error(const double *row, int64_t bins, float min, float max, int64_t dst_nbins,
                     int64_t start_bin, int64_t end_bin)
{
    /* PyTorch evaluates these in float32 tensors and sums them in float32; double here */
    const double bin_width = ((double)max - (double)min) / (double)bins;
    const double dst_width = bin_width * (double)(end_bin - start_bin + 1) / (double)dst_nbins;
    if (dst_width == 0.0) return 0.0;
    const double half = dst_width / 2.0, top = (double)(dst_nbins - 1);
    const double full = (half * half * half + half * half * half) / 3.0;
    double norm = 0.0;
    for (int64_t k = 0; k < bins; k++) {
        if (row[k] == 0.0) continue;
        const double density = row[k] / bin_width;
        const double begin = (double)(k - start_bin) * bin_width, end = begin + bin_width;
        double db = floor(begin / dst_width), de = floor(end / dst_width);
        db = db < 0.0 ? 0.0 : db > top ? top : db;
        de = de < 0.0 ? 0.0 : de > top ? top : de;
        /* from the start of the source bin to the end of its destination bin, the whole
         * destination bins in between, then from the start of the last one to the end */
        const double d0 = begin - (db + 0.5) * dst_width;
        norm += density * (half * half * half - d0 * d0 * d0) / 3.0;
        norm += (de - db - 1.0) * density * full;
        const double d1 = end - (de * dst_width + half);
        norm += density * (d1 * d1 * d1 + half * half * half) / 3.0;
    }
    return norm;
}

void llmq_l2_search(const double *row, int64_t bins, float min, float max, int64_t dst_nbins,
                    double *work, float *new_min, float *new_max)
{
    double *csum = work, total = 0.0;
    for (int64_t j = 0; j < bins; j++) {
        total += row[j];
        csum[j] = total;
    }
    /* _non_linear_param_search: move whichever end crosses more bins as the quantile bounds
     * close in by 1e-5, while the L2 error does not increase */
    const double stepsize = 1e-5;
    double alpha = 0.0, beta = 1.0, norm_min = INFINITY;
    int64_t start_bin = 0, end_bin = bins - 1;
    while (alpha < beta) {
        const double next_alpha = alpha + stepsize, next_beta = beta - stepsize;
        int64_t l = start_bin, r = end_bin;
        while (l < end_bin && csum[l] < next_alpha * total)
            l++;
        while (r > start_bin && csum[r] > next_beta * total)
            r--;
        int64_t next_start = start_bin, next_end = end_bin;
        if (l - start_bin > end_bin - r) {
            next_start = l;
            alpha = next_alpha;
        } else {
            next_end = r;
            beta = next_beta;
        }
        if (next_start == start_bin && next_end == end_bin) continue;
        const double norm = llmq_l2_error(row, bins, min, max, dst_nbins, next_start, next_end);
        if (norm > norm_min) break;
        norm_min = norm;
        start_bin = next_start;
        end_bin = next_end;
    }
    const float bin_width = (max - min) / (float)bins; /* float32, as the tensors are */
    *new_min = min + bin_width * (float)start_bin;
    *new_max = min + bin_width * (float)(end_bin + 1);
}

/* MSE search: quantize the centres of the non-empty bins with each candidate range
 * [r lo, r hi], r = k / grid, through the backend's own kernels, and keep the r of least
 * count-weighted squared error (ties: the larger r). */
static llmq_status mse_clip(llmq_context *ctx, const llmq_quantizer *q, int64_t p, double *row,
                            float *lo, float *hi)
{
    const llmq_hist *h = &q->hist;
    const int64_t bins = h->bins;
    float *centre = (float *)(row + bins), *deq = centre + bins;
    uint8_t *codes = (uint8_t *)(deq + bins);
    const double e0 = h->lo[p], w = ((double)h->hi[p] - e0) / (double)bins;
    int64_t m = 0;
    for (int64_t b = 0; b < bins; b++) {
        if (row[b] > 0.0) {
            row[m] = row[b]; /* compacted in place: m <= b */
            centre[m++] = (float)(e0 + w * ((double)b + 0.5));
        }
    }
    const llmq_qgrid g = llmq_scheme_grid(&q->scheme);
    const float xmin = q->lo[p], xmax = q->hi[p];
    float scale;
    int32_t zp;
    llmq_quant_job job = {
        .src_dtype = LLMQ_DTYPE_F32,
        .dst_dtype = g.qmin < 0 ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8,
        .rows = 1,
        .cols = m,
        .map = {1, 1, 0, m},
        .scale = &scale,
        .zero_point = &zp,
        .qmin = g.qmin,
        .qmax = g.qmax,
        .rounding = q->scheme.rounding,
        .numerics = q->scheme.numerics,
        .seed = q->scheme.seed,
    };
    llmq_backend *be = llmq_backend_for(ctx, false); /* host statistics: the CPU kernels */
    double best = INFINITY, best_r = 1.0;
    for (int64_t k = q->grid; k >= 1; k--) {
        const double r = (double)k / (double)q->grid;
        llmq_qparams_from_range(&g, q->scheme.symmetry, (float)(r * xmin), (float)(r * xmax),
                                &scale, &zp);
        int64_t bad = -1;
        job.src = centre;
        job.dst = codes;
        job.src_stride = job.dst_stride = 0;
        LLMQ_TRY(be->ops->quantize(be, &job, &bad));
        llmq_quant_job back = job;
        back.src = codes;
        back.src_dtype = job.dst_dtype;
        back.dst = deq;
        back.dst_dtype = LLMQ_DTYPE_F32;
        LLMQ_TRY(be->ops->dequantize(be, &back));
        double err = 0.0;
        for (int64_t i = 0; i < m; i++) {
            const double d = (double)centre[i] - (double)deq[i];
            err += row[i] * d * d;
        }
        if (err < best) {
            best = err;
            best_r = r;
        }
    }
    *lo = (float)(best_r * xmin);
    *hi = (float)(best_r * xmax);
    return LLMQ_OK;
}

/* Levels on one side of zero for the entropy search: 2^(bits-1) (TensorRT's 128 at 8 bits),
 * or the whole grid when an asymmetric scheme sees values of one sign only. */
static int64_t entropy_levels(const llmq_quantizer *q, int64_t p)
{
    const int bits = (int)llmq_dtype_bits(q->scheme.dtype);
    const bool one_sided = q->lo[p] >= 0.0f || q->hi[p] <= 0.0f;
    if (q->scheme.symmetry == LLMQ_SYMMETRY_ASYMMETRIC && one_sided) return (int64_t)1 << bits;
    return (int64_t)1 << (bits - 1);
}

llmq_status llmq_observer_clip(llmq_context *ctx, const llmq_quantizer *q, int64_t p, double *work,
                               float *lo, float *hi)
{
    *lo = q->lo[p];
    *hi = q->hi[p];
    if (!q->has_hist) return LLMQ_OK; /* MINMAX, MOVING_AVERAGE: the statistics are the range */
    const llmq_hist *h = &q->hist;
    if (h->vmin[p] == h->vmax[p]) return LLMQ_OK; /* one value (or all zero): nothing to clip */
    const int64_t bins = h->bins;
    double *row = work;
    llmq_hist_row(h, p, row);
    if (q->observer == LLMQ_OBSERVER_MSE) return mse_clip(ctx, q, p, row, lo, hi);
    if (q->observer == LLMQ_OBSERVER_HISTOGRAM_L2) {
        llmq_l2_search(row, bins, h->lo[p], h->hi[p],
                       (int64_t)1 << llmq_dtype_bits(q->scheme.dtype), row + bins, lo, hi);
        return LLMQ_OK;
    }
    double total = 0.0;
    for (int64_t b = 0; b < bins; b++)
        total += row[b];
    if (q->observer == LLMQ_OBSERVER_PERCENTILE) {
        /* values clipped per tail: floor((1 - p/100) n), with slack for the decimal p */
        const double clip = floor((100.0 - q->percentile) / 100.0 * total + 1e-6);
        if (clip < 1.0) return LLMQ_OK;
        const float top = (float)llmq_hist_quantile(row, bins, h->lo[p], h->hi[p], total - clip);
        if (h->absolute) {
            const float t = top < h->vmax[p] ? top : h->vmax[p];
            *lo = *lo > -t ? *lo : -t;
            *hi = *hi < t ? *hi : t;
        } else {
            const float bottom =
                (float)llmq_hist_quantile(row, bins, h->lo[p], h->hi[p], clip + 1.0);
            *lo = bottom > *lo ? bottom : *lo;
            *hi = top < *hi ? top : *hi;
            if (*lo > *hi) *lo = *hi;
        }
        return LLMQ_OK;
    }
    /* ENTROPY: threshold (i + 1/2) bin widths, as published; never past the largest |x| */
    const int64_t i = llmq_entropy_search(row, bins, entropy_levels(q, p), row + bins, NULL);
    float t = h->vmax[p];
    if (i >= 0) {
        const float cand = (float)(((double)i + 0.5) * ((double)h->hi[p] / (double)bins));
        t = cand < t ? cand : t;
    }
    *lo = *lo > -t ? *lo : -t;
    *hi = *hi < t ? *hi : t;
    return LLMQ_OK;
}
