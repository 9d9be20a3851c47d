/* synth.c - LLM-like synthetic tensors. SPDX-License-Identifier: MIT */
#include <math.h>

#include "cli.h"
#include "synth.h"

void synth_weights(float *w, int64_t rows, int64_t cols, uint64_t seed)
{
    cli_rng r;
    cli_rng_seed(&r, seed);
    for (int64_t i = 0; i < rows; i++) {
        const double row_scale = 0.02 * exp(0.5 * cli_rng_normal(&r));
        for (int64_t j = 0; j < cols; j++)
            w[i * cols + j] = (float)(row_scale * cli_rng_student_t(&r, 4.0));
    }
}

void synth_activations(float *x, int64_t tokens, int64_t cols, int outliers, uint64_t seed)
{
    synth_activation_batch(x, tokens, cols, outliers, seed, seed);
}

void synth_activation_batch(float *x, int64_t tokens, int64_t cols, int outliers,
                            uint64_t channel_seed, uint64_t seed)
{
    cli_rng r;
    cli_rng_seed(&r, channel_seed);
    int64_t out_ch[64];
    double out_gain[64];
    if (outliers > 64)
        outliers = 64;
    for (int k = 0; k < outliers; k++) {
        out_ch[k] = (int64_t)(cli_rng_uniform(&r) * (double)cols);
        out_gain[k] = 20.0 + 80.0 * cli_rng_uniform(&r);
    }
    if (seed != channel_seed)
        cli_rng_seed(&r, seed);
    for (int64_t t = 0; t < tokens; t++) {
        const double tok_scale = exp(0.3 * cli_rng_normal(&r));
        for (int64_t j = 0; j < cols; j++)
            x[t * cols + j] = (float)(tok_scale * cli_rng_normal(&r));
        for (int k = 0; k < outliers; k++)
            x[t * cols + out_ch[k]] *= (float)out_gain[k];
    }
}

double synth_sqnr_db(const float *ref, const float *got, int64_t n, double *max_abs_err)
{
    double sig = 0.0, err = 0.0, mx = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)ref[i] - (double)got[i];
        sig += (double)ref[i] * ref[i];
        err += d * d;
        mx = fabs(d) > mx ? fabs(d) : mx;
    }
    *max_abs_err = mx;
    if (err == 0.0)
        return INFINITY;
    return 10.0 * log10(sig / err);
}
