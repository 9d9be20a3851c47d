/* kern_qat_scalar.c - scalar reference kernels of fake quantization for quantization-aware
 * training: the forward (quantize then dequantize) and the backward (straight-through
 * estimator with the clipping mask, LSQ gradients of scale and zero point). The oracle of
 * every other fake-quant kernel. SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "cpu/rows.h"
#include "cpu/cpu_backends.h"
#include "cpu/qat_params.h"

/* For each element of a run sharing (scale, zp), with [lo, hi] = [qmin - zp, qmax - zp]:
 *   rq = round(clamp(v, lo - 1, hi + 1)),  v = x * (1 / scale) (pytorch) or x / scale (onnx).
 * Rounding commutes with a clamp to integer bounds, so rq = clamp(round(v), lo - 1, hi + 1):
 * rq lies in [lo, hi] exactly when PyTorch's unclamped code round(v) + zp lies on the grid
 * (its backward mask), and rq = lo - 1 or hi + 1 says the element was clipped below or above.
 * The clamp keeps |rq| small for the rounding tricks of rounding.h; ±Inf is clipped like any
 * large value. Returns the offset of the first NaN, or -1. */
static int64_t round_run(const llmq_fq_job *job, const float *x, int64_t n, float scale, float lo,
                         float hi, uint64_t index0, float *rq)
{
    const float a = lo - 1.0f, b = hi + 1.0f;
    const float inv = 1.0f / scale;
    const bool onnx = job->numerics == LLMQ_NUMERICS_ONNX;
    int bad = 0;
#define ROUND_LOOP(ROUND)                                                                          \
    for (int64_t i = 0; i < n; i++) {                                                              \
        const float xi = x[i];                                                                     \
        bad |= xi != xi;                                                                           \
        float v = onnx ? xi / scale : xi * inv;                                                    \
        v = v >= a ? v : a; /* NaN lands on a: defined, and reported below */                      \
        v = v <= b ? v : b;                                                                        \
        rq[i] = (ROUND);                                                                           \
    }
    switch (job->rounding) {
    case LLMQ_ROUNDING_HALF_AWAY:
        ROUND_LOOP(llmq_round_half_away(v));
        break;
    case LLMQ_ROUNDING_STOCHASTIC:
        ROUND_LOOP(llmq_round_stochastic(v, job->seed, index0 + (uint64_t)i));
        break;
    default:
        ROUND_LOOP(llmq_round_half_even(v));
        break;
    }
#undef ROUND_LOOP
    return bad ? llmq_cpu_first_nan(x, n) : -1;
}

/* The parameter runs of one chunk of a row: elements [c, end) of the chunk share parameter p. */
typedef struct run {
    int64_t p, c, end;
} run;

static bool next_run(const llmq_fq_job *job, int64_t base, int64_t c0, int64_t n, run *rn)
{
    if (rn->end >= n)
        return false;
    const int64_t g = job->map.col_group;
    rn->c = rn->end;
    rn->p = base + (c0 + rn->c) / g;
    const int64_t end = ((c0 + rn->c) / g + 1) * g - c0;
    rn->end = end < n ? end : n;
    return true;
}

/* y of one run: (clamp(q) - zp) * scale, with q - zp = clamp(rq, lo, hi), which is the
 * dequantize of llmq_quantize's code, bit for bit. */
static void forward_run(const float *rq, int64_t n, float s, float lo, float hi, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float v = rq[i] >= lo ? rq[i] : lo;
        v = v <= hi ? v : hi;
        y[i] = v * s;
    }
}

/* dx of one run, and when wanted the run's sums of the LSQ terms. Each term is evaluated in
 * float32 in the order of PyTorch's learnable kernels (fake_quantize_learnable_*_grad):
 *   inside:  dscale += ((dy * (xfq - x)) * inv) * gf, xfq = (q - zp) * scale;  dzp += 0
 *   below:   dscale += (dy * (qmin - zp)) * gf;   dzp += ((dy * -1) * scale) * gf
 *   above:   dscale += (dy * (qmax - zp)) * gf;   dzp as below
 * and summed in double in the lanes of qat_params.h, so the sums do not depend on how the
 * elements are split. */
static void backward_run(const llmq_fq_job *job, const float *x, const float *dy, const float *rq,
                         int64_t n, float s, float lo, float hi, float *dx, double *sum_scale,
                         double *sum_zp)
{
    const float gf = job->grad_factor;
    const float inv = 1.0f / s;
    const bool onnx = job->numerics == LLMQ_NUMERICS_ONNX;
    if (job->dscale == NULL && job->dzero_point == NULL) { /* plain STE */
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (float)(rq[i] >= lo && rq[i] <= hi);
        return;
    }
    double ss[LLMQ_FQ_LANES] = {0}, sz[LLMQ_FQ_LANES] = {0};
    for (int64_t i = 0; i < n; i++) {
        const float g = dy[i]; /* read before dx[i] is written: dx may be dy itself */
        const bool inside = rq[i] >= lo && rq[i] <= hi;
        if (inside) {
            const float d = g * (rq[i] * s - x[i]);
            ss[i % LLMQ_FQ_LANES] += (double)((onnx ? d / s : d * inv) * gf);
        } else {
            ss[i % LLMQ_FQ_LANES] += (double)((g * (rq[i] < lo ? lo : hi)) * gf);
            sz[i % LLMQ_FQ_LANES] += (double)(((g * -1.0f) * s) * gf);
        }
        dx[i] = g * (float)inside;
    }
    *sum_scale += llmq_fq_lanes_sum(ss);
    *sum_zp += llmq_fq_lanes_sum(sz);
}

/* Both passes: rows in chunks, each chunk in runs of one parameter. The forward writes y; the
 * backward dx and, when wanted, the per-parameter sums (into job->acc, then dscale / dzp). */
static llmq_status fake_quantize_pass(const llmq_fq_job *job, bool backward, int64_t *bad_index)
{
    const bool want_params = backward && (job->dscale != NULL || job->dzero_point != NULL);
    double *acc_scale = want_params ? job->acc : NULL;
    double *acc_zp = want_params ? job->acc + job->nparams : NULL;
    for (int64_t p = 0; want_params && p < 2 * job->nparams; p++)
        job->acc[p] = 0.0;
    float xbuf[LLMQ_FQ_CHUNK], dybuf[LLMQ_FQ_CHUNK], outbuf[LLMQ_FQ_CHUNK], rq[LLMQ_FQ_CHUNK];
    double unused[2];
    for (int64_t r = 0; r < job->rows; r++) {
        const char *xrow = (const char *)job->x + (size_t)r * job->x_stride;
        const char *dyrow = backward ? (const char *)job->dy + (size_t)r * job->dy_stride : NULL;
        char *orow = (char *)job->out + (size_t)r * job->out_stride;
        const int64_t base = llmq_param_row_base(&job->map, r);
        for (int64_t c0 = 0; c0 < job->cols; c0 += LLMQ_FQ_CHUNK) {
            const int64_t n = job->cols - c0 < LLMQ_FQ_CHUNK ? job->cols - c0 : LLMQ_FQ_CHUNK;
            const float *x = llmq_cpu_load_f32(xrow, job->x_dtype, c0, n, xbuf);
            const float *dy =
                backward ? llmq_cpu_load_f32(dyrow, job->dy_dtype, c0, n, dybuf) : NULL;
            float *out = llmq_cpu_out_f32(orow, job->out_dtype, c0, outbuf);
            for (run rn = {0, 0, 0}; next_run(job, base, c0, n, &rn);) {
                const float s = job->scale[rn.p];
                const int32_t zp = llmq_fq_zero_point(job, rn.p);
                const float lo = (float)(job->qmin - zp), hi = (float)(job->qmax - zp);
                const uint64_t index0 = (uint64_t)(r * job->cols + c0 + rn.c);
                /* the whole run is read into rq before out is written: y may be x itself */
                const int64_t nan =
                    round_run(job, x + rn.c, rn.end - rn.c, s, lo, hi, index0, rq + rn.c);
                if (nan >= 0) {
                    *bad_index = r * job->cols + c0 + rn.c + nan;
                    return LLMQ_ERR_NON_FINITE;
                }
                if (!backward)
                    forward_run(rq + rn.c, rn.end - rn.c, s, lo, hi, out + rn.c);
                else
                    backward_run(job, x + rn.c, dy + rn.c, rq + rn.c, rn.end - rn.c, s, lo, hi,
                                 out + rn.c, want_params ? &acc_scale[rn.p] : &unused[0],
                                 want_params ? &acc_zp[rn.p] : &unused[1]);
            }
            llmq_cpu_store_f32(orow, job->out_dtype, c0, n, out);
        }
    }
    for (int64_t p = 0; want_params && p < job->nparams; p++) {
        if (job->dscale != NULL)
            job->dscale[p] = (float)acc_scale[p];
        if (job->dzero_point != NULL)
            job->dzero_point[p] = (float)acc_zp[p];
    }
    return LLMQ_OK;
}

llmq_status llmq_cpu_scalar_fake_quantize(llmq_backend *be, const llmq_fq_job *job,
                                          int64_t *bad_index)
{
    (void)be;
    return fake_quantize_pass(job, false, bad_index);
}

llmq_status llmq_cpu_scalar_fake_quantize_backward(llmq_backend *be, const llmq_fq_job *job,
                                                   int64_t *bad_index)
{
    (void)be;
    return fake_quantize_pass(job, true, bad_index);
}
