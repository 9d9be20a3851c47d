/* histogram.c - the observers' histograms: memory bounded by count x bins whatever the number
 * of batches; a wider range rebins what was counted, it never keeps data.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "core/context_impl.h"

bool llmq_hist_init(llmq_context *ctx, llmq_hist *h, int64_t count, int64_t bins, bool absolute,
                    llmq_hist_growth growth, int64_t upsample)
{
    memset(h, 0, sizeof *h);
    h->count = count;
    h->bins = bins;
    h->absolute = absolute;
    h->growth = growth;
    h->upsample = upsample;
    /* a few histograms get 4 interleaved copies, so that runs of equal bins do not wait on
     * each other's increments; many (per channel) get one, to bound memory */
    h->copies = (uint64_t)count * (uint64_t)bins <= (1u << 17) ? 4 : 1;
    const size_t n = (size_t)count, cells = (size_t)count * (size_t)bins;
    h->lo = llmq_mem_alloc(ctx, 4 * n * sizeof(float));
    h->counts = llmq_mem_calloc(ctx, cells * (size_t)h->copies * sizeof(uint64_t));
    h->tmp = llmq_mem_alloc(ctx, (size_t)bins * sizeof(double));
    if (growth == LLMQ_HIST_PYTORCH) h->acc = llmq_mem_calloc(ctx, cells * sizeof(double));
    if (h->lo == NULL || h->counts == NULL || h->tmp == NULL ||
        (growth == LLMQ_HIST_PYTORCH && h->acc == NULL)) {
        llmq_hist_free(ctx, h);
        return false;
    }
    h->hi = h->lo + n;
    h->vmin = h->hi + n;
    h->vmax = h->vmin + n;
    for (size_t p = 0; p < n; p++) {
        h->lo[p] = 0.0f; /* defined edges even before any value: the kernel reads them */
        h->hi[p] = 1.0f;
        h->vmin[p] = INFINITY;
        h->vmax[p] = -INFINITY;
    }
    return true;
}

void llmq_hist_free(llmq_context *ctx, llmq_hist *h)
{
    llmq_mem_free(ctx, h->lo);
    llmq_mem_free(ctx, h->counts);
    llmq_mem_free(ctx, h->acc);
    llmq_mem_free(ctx, h->tmp);
    memset(h, 0, sizeof *h);
}

/* Parameter p's counts, with its copies added into the first (and cleared). */
static uint64_t *fold_copies(llmq_hist *h, int64_t p)
{
    uint64_t *c = h->counts + p * h->copies * h->bins;
    for (int64_t k = 1; k < h->copies; k++) {
        uint64_t *ck = c + k * h->bins;
        for (int64_t j = 0; j < h->bins; j++) {
            c[j] += ck[j];
            ck[j] = 0;
        }
    }
    return c;
}

static int64_t bin_of(const llmq_hist *h, float v, float lo, float hi)
{
    return llmq_hist_bin(v, lo, hi - lo, (float)h->bins, (float)(h->bins - 1));
}

/* Edges for a fresh range [a, b]: torch.histc widens an empty range to [v - 1, v + 1]. */
static void set_edges(llmq_hist *h, int64_t p, float a, float b)
{
    if (a == b) {
        h->lo[p] = a - 1.0f;
        h->hi[p] = b + 1.0f;
    } else {
        h->lo[p] = a;
        h->hi[p] = b;
    }
}

/* Every value seen so far equals v: move the whole mass to v's bin under the new edges (as
 * PyTorch's _combine_histograms does for a one-value histogram, with that histogram's own
 * total rather than the new batch's). */
static void move_point_mass(llmq_hist *h, int64_t p, float v)
{
    uint64_t *c = fold_copies(h, p);
    double *acc = h->acc != NULL ? h->acc + p * h->bins : NULL;
    uint64_t n = 0;
    double f = 0.0;
    for (int64_t j = 0; j < h->bins; j++) {
        n += c[j];
        c[j] = 0;
        if (acc != NULL) {
            f += acc[j];
            acc[j] = 0.0;
        }
    }
    const int64_t b = bin_of(h, v, h->lo[p], h->hi[p]);
    c[b] = n;
    if (acc != NULL) acc[b] = f;
}

/* float32 torch.linspace(start, end, steps): the first half counts up from start, the second
 * half down from end (PyTorch's scalar kernel). */
typedef struct linspace {
    float start, end, step;
    int64_t steps;
} linspace;

static linspace linspace_make(float start, float end, int64_t steps)
{
    return (linspace){start, end, (end - start) / (float)(steps - 1), steps};
}

static float linspace_at(const linspace *l, int64_t idx)
{
    if (idx < l->steps / 2) return l->start + l->step * (float)idx;
    return l->end - l->step * (float)(l->steps - idx - 1);
}

/* PyTorch HistogramObserver._upscale_histogram: each old bin splits into `upsample` sub-bins
 * of equal weight, and each sub-bin goes to the new bin holding its midpoint
 * (torch.bucketize(right=True) - 1, clamped). The new edges are already in lo/hi. */
static void upscale(llmq_hist *h, int64_t p, float omin, float omax)
{
    const int64_t bins = h->bins, up = h->upsample, fine = bins * up;
    double *acc = h->acc + p * bins, *out = h->tmp;
    const linspace mids = linspace_make(omin, omax, fine + 1);
    const linspace edges = linspace_make(h->lo[p], h->hi[p], bins + 1);
    const float half = 0.5f * ((omax - omin) / (float)fine);
    memset(out, 0, (size_t)bins * sizeof *out);
    int64_t i = 0; /* edges <= mid; the midpoints rise, so this mostly moves forward */
    for (int64_t k = 0; k < fine; k++) {
        const float mid = linspace_at(&mids, k) + half;
        while (i <= bins && linspace_at(&edges, i) <= mid)
            i++;
        while (i > 0 && linspace_at(&edges, i - 1) > mid)
            i--;
        int64_t b = i - 1;
        b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
        out[b] += acc[k / up] / (double)up;
    }
    memcpy(acc, out, (size_t)bins * sizeof *out);
}

/* Smallest k >= 1 (and shift s) such that bins 2^k times wider, the first one starting s new
 * bins below the old lower edge, cover [a, b] and still hold every old bin. */
static void grow_doubling(llmq_hist *h, int64_t p, float a, float b)
{
    const int64_t n = h->bins;
    const double lo = h->lo[p], w = ((double)h->hi[p] - lo) / (double)n;
    int k = 1;
    int64_t s = 0;
    double w2 = 0.0;
    for (;; k++) {
        w2 = ldexp(w, k);
        const double need = lo > a ? ceil((lo - a) / w2) : 0.0;
        const int64_t last_old = k < 62 ? (n - 1) >> k : 0;
        if (need + (double)last_old > (double)(n - 1)) continue;
        s = (int64_t)need;
        if (lo - (double)s * w2 + (double)n * w2 >= b) break;
    }
    uint64_t *c = fold_copies(h, p);
    uint64_t *merged = (uint64_t *)h->tmp; /* same size as a row of doubles */
    memset(merged, 0, (size_t)n * sizeof *merged);
    for (int64_t j = 0; j < n; j++)
        merged[s + (k < 62 ? j >> k : 0)] += c[j];
    memcpy(c, merged, (size_t)n * sizeof *c);
    const double nlo = lo - (double)s * w2, nhi = nlo + (double)n * w2;
    h->lo[p] = (float)(nlo > -FLT_MAX ? nlo : -FLT_MAX); /* only absurd ranges are cut */
    h->hi[p] = (float)(nhi < FLT_MAX ? nhi : FLT_MAX);
}

void llmq_hist_cover(llmq_hist *h, int64_t p, float a, float b)
{
    const float omin = h->vmin[p], omax = h->vmax[p];
    if (omin > omax) { /* first values */
        h->vmin[p] = a;
        h->vmax[p] = b;
        set_edges(h, p, a, b);
        return;
    }
    const float na = a < omin ? a : omin, nb = b > omax ? b : omax;
    if (na == omin && nb == omax) return;
    h->vmin[p] = na;
    h->vmax[p] = nb;
    if (omin == omax) {
        set_edges(h, p, na, nb);
        move_point_mass(h, p, omax);
        return;
    }
    if (h->growth == LLMQ_HIST_PYTORCH) {
        uint64_t *c = fold_copies(h, p);
        double *acc = h->acc + p * h->bins;
        for (int64_t j = 0; j < h->bins; j++) { /* fold in the counts made at the old edges */
            acc[j] += (double)c[j];
            c[j] = 0;
        }
        h->lo[p] = na;
        h->hi[p] = nb;
        upscale(h, p, omin, omax);
        return;
    }
    if (na >= h->lo[p] && nb <= h->hi[p]) /* the room left by earlier growth suffices */
        return;
    grow_doubling(h, p, na, nb);
}

void llmq_hist_row(const llmq_hist *h, int64_t p, double *out)
{
    const uint64_t *c = h->counts + p * h->copies * h->bins;
    for (int64_t j = 0; j < h->bins; j++)
        out[j] = (double)c[j];
    for (int64_t k = 1; k < h->copies; k++)
        for (int64_t j = 0; j < h->bins; j++)
            out[j] += (double)c[k * h->bins + j];
    if (h->acc != NULL) {
        const double *acc = h->acc + p * h->bins;
        for (int64_t j = 0; j < h->bins; j++)
            out[j] += acc[j];
    }
}
