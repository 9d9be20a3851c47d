/* test_fake_quantize_backward.c - the fake-quant backward: the straight-through mask and the
 * LSQ gradients of scale and zero point against values worked out by hand, against an
 * independent per-element evaluation of PyTorch's formulas (every granularity, rounding and
 * numerics mode), against central finite differences (of the STE surrogate everywhere, and of
 * the forward itself where it is differentiable in the scale), plus grad_factor, f16 / bf16
 * and dx computed in place of dy. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "quant/rounding.h"
#include "testing.h"

/* The golden case of test_fake_quantize.c: u8 asymmetric, scale 0.25, zero point 10. Per
 * element (x, dy): mask, LSQ scale term (q - zp - x / scale inside, qmin - zp = -10 below,
 * qmax - zp = 245 above) and zero-point term (-scale = -0.25 outside), times dy. */
static void hand_computed_mask_and_lsq(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[] = {1.0f,   0.125f,  0.375f,   -2.5f,    -2.625f,  -2.75f,
                 61.25f, 61.375f, 61.3125f, INFINITY, -INFINITY};
    float dy[] = {1.0f, 2.0f, -1.0f, 3.0f, 1.0f, 2.0f, 1.0f, 1.0f, 4.0f, 1.0f, -1.0f};
    /* codes round(x / 0.25) + 10: 14, 10, 12, 0 (bound: inside), 0 (-10.5 to even -10: inside),
     * -1 (below), 255 (bound: inside), 256 (245.5 to even 246: above), 255, +Inf, -Inf */
    const float want_dx[] = {1.0f, 2.0f, -1.0f, 3.0f, 1.0f, 0.0f, 1.0f, 0.0f, 4.0f, 0.0f, 0.0f};
    /* scale terms dy * (...): 1*0, 2*(0 - 0.5), -1*(2 - 1.5), 3*0, 1*(-10 + 10.5), 2*(-10),
     * 1*0, 1*245, 4*(245 - 245.25), 1*245, -1*(-10): sum 478
     * zero-point terms: 2*(-0.25), 1*(-0.25), 1*(-0.25), -1*(-0.25): sum -0.75 */
    const int64_t shape[1] = {11};
    float dx[11], sv = 0.25f, zf = 10.0f, ds = 0.0f, dz = 0.0f;
    const int64_t one[1] = {1};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *tdy = test_wrap_f32(ctx, dy, 1, shape),
                *tdx = test_wrap_f32(ctx, dx, 1, shape), *sc = test_wrap_f32(ctx, &sv, 1, one),
                *zp = test_wrap_f32(ctx, &zf, 1, one), *tds = test_wrap_f32(ctx, &ds, 1, one),
                *tdz = test_wrap_f32(ctx, &dz, 1, one);
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, tds, tdz));
    for (int i = 0; i < 11; i++)
        assert_true(dx[i] == want_dx[i]);
    assert_true(signbit(dx[10])); /* dy * 0 keeps dy's sign, as PyTorch's dY * mask */
    assert_true(ds == 478.0f);
    assert_true(dz == -0.75f);
    /* grad_factor scales both sums, not dx */
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 0.5f, tdx, tds, tdz));
    assert_true(ds == 239.0f && dz == -0.375f && dx[0] == 1.0f);
    /* a float zero point 10.5 rounds to even 10: the same gradients (PyTorch's per-tensor
     * backward would use 11, see docs/qat.md) */
    zf = 10.5f;
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, tds, tdz));
    assert_true(ds == 478.0f && dz == -0.75f);
    /* plain STE: no parameter gradients wanted */
    memset(dx, 0xff, sizeof dx);
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, NULL, NULL));
    for (int i = 0; i < 11; i++)
        assert_true(dx[i] == want_dx[i]);
    /* one of the two */
    dz = 123.0f;
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, tds, NULL));
    assert_true(ds == 478.0f && dz == 123.0f);
    ds = 123.0f;
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, NULL, tdz));
    assert_true(ds == 123.0f && dz == -0.75f);
    /* dx in place of dy */
    float g[11];
    memcpy(g, dy, sizeof g);
    llmq_tensor *tg = test_wrap_f32(ctx, g, 1, shape);
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tg, 1.0f, tg, tds, tdz));
    for (int i = 0; i < 11; i++)
        assert_true(g[i] == want_dx[i]);
    assert_true(ds == 478.0f && dz == -0.75f);

    TEST_DESTROY(tx, tdy, tdx, sc, zp, tds, tdz, tg);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* The mask's bounds are inclusive on both sides, on a signed 3-bit custom range [-4, 3]. */
static void mask_bounds_are_inclusive(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    /* scale 1, zp 0: codes round(x) must lie in [-4, 3] */
    float x[] = {-4.5f, -4.51f, -4.49f, 3.5f, 3.49f, 2.5f, -3.5f, 0.0f};
    const float want[] = {1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    /* -4.5 to even -4 inside; -4.51 -> -5 below; 3.5 to even 4 above; 2.5 -> 2; -3.5 -> -4 */
    float dy[8], dx[8], sv = 1.0f;
    for (int i = 0; i < 8; i++)
        dy[i] = 1.0f;
    const int64_t shape[1] = {8};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *tdy = test_wrap_f32(ctx, dy, 1, shape),
                *tdx = test_wrap_f32(ctx, dx, 1, shape),
                *sc = test_wrap_f32(ctx, &sv, 1, (const int64_t[]){1});
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_scheme_set_range(s, -4, 3));
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tdy, 1.0f, tdx, NULL, NULL));
    for (int i = 0; i < 8; i++)
        if (dx[i] != want[i])
            fail_msg("x=%g: dx %g, want %g", (double)x[i], (double)dx[i], (double)want[i]);
    TEST_DESTROY(tx, tdy, tdx, sc);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* PyTorch's learnable backward, element by element (the formulas of docs/qat.md, written out
 * without the kernels' runs and clamps), summed in double. */
static void reference_backward(const test_gran *g, int32_t ndim, const int64_t *shape,
                               const float *x, const float *dy, const float *scale,
                               const float *zpf, int32_t qmin, int32_t qmax, llmq_rounding rnd,
                               llmq_numerics num, uint64_t seed, float gf, float *dx,
                               double *dscale, double *dzp, int64_t np)
{
    int64_t n = 1;
    for (int32_t d = 0; d < ndim; d++)
        n *= shape[d];
    for (int64_t p = 0; p < np; p++)
        dscale[p] = dzp[p] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t p = test_param_index(g, ndim, shape, i);
        const float s = scale[p], inv = 1.0f / s;
        float zr = nearbyintf(zpf[p]);
        zr = zr < (float)qmin ? (float)qmin : zr > (float)qmax ? (float)qmax : zr;
        const int32_t zp = (int32_t)zr;
        const float v = num == LLMQ_NUMERICS_ONNX ? x[i] / s : x[i] * inv;
        const float r = rnd == LLMQ_ROUNDING_HALF_EVEN ? nearbyintf(v)
                        : rnd == LLMQ_ROUNDING_HALF_AWAY
                            ? roundf(v)
                            : llmq_round_stochastic(v, seed, (uint64_t)i);
        const int64_t q = (int64_t)r + zp;
        const bool inside = q >= qmin && q <= qmax;
        dx[i] = dy[i] * (float)inside;
        if (inside) {
            const float xfq = (float)(q - zp) * s;
            const float d = dy[i] * (xfq - x[i]);
            dscale[p] += (double)((num == LLMQ_NUMERICS_ONNX ? d / s : d * inv) * gf);
        } else {
            dscale[p] += (double)(dy[i] * (float)((q < qmin ? qmin : qmax) - zp) * gf);
            dzp[p] += (double)(dy[i] * -1.0f * s * gf);
        }
    }
}

static void fill(test_rng *rng, float *x, int64_t n, float mag)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = test_rng_range(rng, -mag, mag);
}

/* Random tensors and parameters (scales small enough to clip a fair share), every
 * granularity, dtype, rounding and numerics mode: dx bit for bit, the sums to float rounding. */
static void matches_elementwise_reference(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {2024};
    const test_gran grans[] = {
        {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},  {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 1, 0}, {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0},
        {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},   {LLMQ_GRANULARITY_PER_GROUP, 0, 1},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 7},   {LLMQ_GRANULARITY_PER_GROUP, 0, 128},
    };
    const llmq_dtype dts[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4, LLMQ_DTYPE_U2};
    const int64_t shapes[][3] = {{3, 4, 90}, {2, 1, 300}, {1, 5, 1}};
    for (size_t gi = 0; gi < sizeof grans / sizeof grans[0]; gi++)
        for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++)
            for (int mode = 0; mode < 6; mode++) {
                const test_gran *g = &grans[gi];
                const int64_t *shape = shapes[test_rng_next(&rng) % 3];
                const int64_t n = shape[0] * shape[1] * shape[2];
                llmq_scheme *s =
                    test_scheme(ctx, dts[di], LLMQ_SYMMETRY_ASYMMETRIC, g->g, g->axis, g->group);
                const llmq_rounding rnd = (llmq_rounding)(mode % 3);
                const llmq_numerics num = (llmq_numerics)(mode / 3);
                ASSERT_OK(ctx, llmq_scheme_set_rounding(s, rnd));
                ASSERT_OK(ctx, llmq_scheme_set_numerics(s, num));
                ASSERT_OK(ctx, llmq_scheme_set_seed(s, 99));
                int32_t qmin, qmax;
                ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
                float *x = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n),
                      *dx = malloc(sizeof(float) * n), *rdx = malloc(sizeof(float) * n);
                fill(&rng, x, n, 3.0f);
                fill(&rng, dy, n, 1.0f);
                llmq_tensor *tx = test_wrap_f32(ctx, x, 3, shape), *q = NULL,
                            *tdy = test_wrap_f32(ctx, dy, 3, shape),
                            *tdx = test_wrap_f32(ctx, dx, 3, shape);
                ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 3, shape, &q));
                llmq_tensor *sc = llmq_tensor_scale(q);
                llmq_tensor *zp = test_tensor_like(ctx, sc, LLMQ_DTYPE_F32),
                            *ds = test_tensor_like(ctx, sc, LLMQ_DTYPE_F32),
                            *dz = test_tensor_like(ctx, sc, LLMQ_DTYPE_F32);
                const int64_t np = llmq_tensor_numel(sc);
                float *scv = llmq_tensor_data(sc), *zpv = llmq_tensor_data(zp);
                for (int64_t p = 0; p < np; p++) {
                    scv[p] = 6.0f / (float)(qmax - qmin) * test_rng_range(&rng, 0.3f, 1.2f);
                    zpv[p] = test_rng_range(&rng, (float)qmin - 2.0f, (float)qmax + 2.0f);
                }
                const float gf = 0.37f;
                ASSERT_OK(ctx,
                          llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, gf, tdx, ds, dz));
                double *rds = malloc(sizeof(double) * np), *rdz = malloc(sizeof(double) * np);
                reference_backward(g, 3, shape, x, dy, scv, zpv, qmin, qmax, rnd, num, 99, gf, rdx,
                                   rds, rdz, np);
                for (int64_t i = 0; i < n; i++)
                    if (memcmp(&dx[i], &rdx[i], sizeof(float)) != 0)
                        fail_msg("gran %zu %s mode %d: dx[%lld] %a, want %a", gi,
                                 llmq_dtype_name(dts[di]), mode, (long long)i, (double)dx[i],
                                 (double)rdx[i]);
                const float *dsv = llmq_tensor_data(ds), *dzv = llmq_tensor_data(dz);
                for (int64_t p = 0; p < np; p++) {
                    if (fabs(dsv[p] - rds[p]) > 1e-6 * (1.0 + fabs(rds[p])) ||
                        fabs(dzv[p] - rdz[p]) > 1e-6 * (1.0 + fabs(rdz[p])))
                        fail_msg("gran %zu %s mode %d param %lld: dscale %g dzp %g, want %g %g", gi,
                                 llmq_dtype_name(dts[di]), mode, (long long)p, (double)dsv[p],
                                 (double)dzv[p], rds[p], rdz[p]);
                }
                free(rds);
                free(rdz);
                TEST_DESTROY(tx, q, tdy, tdx, zp, ds, dz);
                llmq_scheme_destroy(s);
                free(x);
                free(dy);
                free(dx);
                free(rdx);
            }
    llmq_context_destroy(ctx);
}

/* L = sum(dy * y~), where y~ is the STE surrogate of the forward: the rounding offset
 * delta = round(x / s0) - x / s0 is frozen at the evaluation point, so
 *   y~(x, s, z) = (clamp(x / s + delta + z, qmin, qmax) - z) * s,
 * which equals y at (x, s0, z0) and whose exact derivatives are the STE / LSQ gradients. */
static double surrogate_loss(const test_gran *g, int32_t ndim, const int64_t *shape, const float *x,
                             const double *xd, const float *dy, const double *s, const double *z,
                             const double *delta, int32_t qmin, int32_t qmax)
{
    int64_t n = 1;
    for (int32_t d = 0; d < ndim; d++)
        n *= shape[d];
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t p = test_param_index(g, ndim, shape, i);
        const double xi = xd != NULL ? xd[i] : (double)x[i];
        double q = xi / s[p] + delta[i] + z[p];
        q = q < qmin ? qmin : q > qmax ? qmax : q;
        loss += (double)dy[i] * (q - z[p]) * s[p];
    }
    return loss;
}

/* Central differences of the surrogate agree with dx, dscale and dzero_point. The data keep
 * away from clipping edges and from rounding ties so that the surrogate is linear around the
 * evaluation point and the rounding stays put. */
static void central_differences_of_ste_surrogate(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {5};
    const test_gran grans[] = {
        {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
        {LLMQ_GRANULARITY_PER_CHANNEL, 1, 0},
        {LLMQ_GRANULARITY_PER_GROUP, 0, 3},
    };
    const int64_t shape[2] = {4, 10};
    const int64_t n = 40;
    for (size_t gi = 0; gi < sizeof grans / sizeof grans[0]; gi++) {
        const test_gran *g = &grans[gi];
        llmq_scheme *s =
            test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_ASYMMETRIC, g->g, g->axis, g->group);
        const int32_t qmin = -8, qmax = 7;
        llmq_tensor *q = NULL;
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
        llmq_tensor *sc = llmq_tensor_scale(q), *zp = test_tensor_like(ctx, sc, LLMQ_DTYPE_S32),
                    *ds = test_tensor_like(ctx, sc, LLMQ_DTYPE_F32),
                    *dz = test_tensor_like(ctx, sc, LLMQ_DTYPE_F32);
        const int64_t np = llmq_tensor_numel(sc);
        float *scv = llmq_tensor_data(sc);
        int32_t *zpv = llmq_tensor_data(zp);
        for (int64_t p = 0; p < np; p++) {
            scv[p] = ldexpf(1.0f, -(int)(test_rng_next(&rng) % 4)); /* 1 .. 1/8: x / s exact */
            zpv[p] = (int32_t)(test_rng_next(&rng) % 7) - 3;
        }
        float x[40], dy[40], dx[40];
        double delta[40];
        for (int64_t i = 0; i < n; i++) {
            const int64_t p = test_param_index(g, 2, shape, i);
            /* a code in [qmin - 3, qmax + 3] plus a fraction in +-[0.1, 0.4]: about a third
             * clip, none near a tie. Not qmin or qmax themselves: with the rounding offset
             * frozen, the surrogate sits on its clamp's kink there (one-sided derivatives;
             * the bounds are pinned by mask_bounds_are_inclusive) */
            int c = qmin - 3 + (int)(test_rng_next(&rng) % 18);
            c = c == qmin || c == qmax ? c + (c < 0 ? -1 : 1) : c;
            const double code = (double)c;
            double frac = test_rng_range(&rng, 0.1f, 0.4f);
            frac = test_rng_next(&rng) % 2 ? frac : -frac;
            x[i] = (float)((code - zpv[p] + frac) * scv[p]);
            delta[i] = nearbyint((double)x[i] / scv[p]) - (double)x[i] / scv[p];
            dy[i] = test_rng_range(&rng, -1.0f, 1.0f);
        }
        llmq_tensor *tx = test_wrap_f32(ctx, x, 2, shape), *tdy = test_wrap_f32(ctx, dy, 2, shape),
                    *tdx = test_wrap_f32(ctx, dx, 2, shape);
        ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, ds, dz));
        double sd[40], zd[40], xd[40];
        for (int64_t p = 0; p < np; p++) {
            sd[p] = scv[p];
            zd[p] = zpv[p];
        }
        const double h = 1e-6;
        const float *dsv = llmq_tensor_data(ds), *dzv = llmq_tensor_data(dz);
        for (int64_t p = 0; p < np; p++) {
            double plus, minus;
            sd[p] = scv[p] + h * scv[p];
            plus = surrogate_loss(g, 2, shape, x, NULL, dy, sd, zd, delta, qmin, qmax);
            sd[p] = scv[p] - h * scv[p];
            minus = surrogate_loss(g, 2, shape, x, NULL, dy, sd, zd, delta, qmin, qmax);
            sd[p] = scv[p];
            const double fd_s = (plus - minus) / (2 * h * scv[p]);
            assert_float_equal(dsv[p], fd_s, 1e-5 * (1.0 + fabs(fd_s)));
            zd[p] = zpv[p] + h;
            plus = surrogate_loss(g, 2, shape, x, NULL, dy, sd, zd, delta, qmin, qmax);
            zd[p] = zpv[p] - h;
            minus = surrogate_loss(g, 2, shape, x, NULL, dy, sd, zd, delta, qmin, qmax);
            zd[p] = zpv[p];
            const double fd_z = (plus - minus) / (2 * h);
            assert_float_equal(dzv[p], fd_z, 1e-5 * (1.0 + fabs(fd_z)));
        }
        for (int64_t i = 0; i < n; i++)
            xd[i] = x[i];
        for (int64_t i = 0; i < n; i++) { /* dL/dx_i = dy_i * mask_i */
            xd[i] = (double)x[i] + h;
            const double plus = surrogate_loss(g, 2, shape, x, xd, dy, sd, zd, delta, qmin, qmax);
            xd[i] = (double)x[i] - h;
            const double minus = surrogate_loss(g, 2, shape, x, xd, dy, sd, zd, delta, qmin, qmax);
            xd[i] = x[i];
            assert_float_equal(dx[i], (plus - minus) / (2 * h), 1e-6);
        }
        TEST_DESTROY(q, zp, ds, dz, tx, tdy, tdx);
        llmq_scheme_destroy(s);
    }
    llmq_context_destroy(ctx);
}

/* Central differences of the forward itself in the scale, element by element (dy one-hot):
 * for a clipped element y = (qmin - zp) * s, whose derivative is exactly LSQ's term; inside,
 * y = (q - zp) * s has derivative q - zp, and LSQ's term is that minus x / s (the
 * straight-through part). s = 1/16, h = 2^-16: every product is exact in float. */
static void central_differences_of_forward_in_scale(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {77};
    const int64_t shape[1] = {48};
    float x[48], y_plus[48], y_minus[48], dy[48], dx[48];
    const float s0 = 0.0625f, h = 0x1p-16f;
    const int32_t zp0 = 3; /* s8 asymmetric: grid [-128, 127] */
    for (int i = 0; i < 48; i++) {
        const int code = -140 + (int)(test_rng_next(&rng) % 280);
        x[i] = ((float)(code - zp0) + 0.25f) * s0; /* fraction 0.25: no tie within h */
    }
    float sv = s0, ds = 0.0f;
    int32_t zv = zp0;
    const int64_t one[1] = {1};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *tp = test_wrap_f32(ctx, y_plus, 1, shape),
                *tm = test_wrap_f32(ctx, y_minus, 1, shape),
                *tdy = test_wrap_f32(ctx, dy, 1, shape), *tdx = test_wrap_f32(ctx, dx, 1, shape),
                *sc = test_wrap_f32(ctx, &sv, 1, one), *tds = test_wrap_f32(ctx, &ds, 1, one),
                *zp = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, 1, one, &zv, 0, &zp));
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    sv = s0 + h;
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zp, tp));
    sv = s0 - h;
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, zp, tm));
    sv = s0;
    int clipped = 0;
    for (int i = 0; i < 48; i++) {
        const float fd = (y_plus[i] - y_minus[i]) / (2.0f * h); /* exact */
        memset(dy, 0, sizeof dy);
        dy[i] = 1.0f;
        ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, zp, tdy, 1.0f, tdx, tds, NULL));
        const float code = nearbyintf(x[i] / s0) + (float)zp0;
        if (code < -128.0f || code > 127.0f) {
            clipped++;
            assert_true(fd == (code < 0 ? -128.0f : 127.0f) - (float)zp0);
            assert_true(ds == fd);
            assert_true(dx[i] == 0.0f);
        } else {
            assert_true(fd == code - (float)zp0);
            assert_float_equal(ds, fd - x[i] / s0, 1e-6);
            assert_true(dx[i] == 1.0f);
        }
    }
    assert_true(clipped > 0 && clipped < 48);
    TEST_DESTROY(tx, tp, tm, tdy, tdx, sc, tds, zp);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* dy and dx in f16 / bf16: dx is dy (or a zero of dy's sign) exactly, whatever the dtypes. */
static void half_gradients(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {8};
    const int64_t shape[2] = {2, 300};
    float x[600], ones[600], mask[600], fdx[600], sv = 0.02f;
    fill(&rng, x, 600, 4.0f); /* s8 with scale 0.02 holds [-2.56, 2.54]: many clip */
    for (int i = 0; i < 600; i++)
        ones[i] = 1.0f;
    llmq_tensor *tx = test_wrap_f32(ctx, x, 2, shape), *tones = test_wrap_f32(ctx, ones, 2, shape),
                *tmask = test_wrap_f32(ctx, mask, 2, shape),
                *tfdx = test_wrap_f32(ctx, fdx, 2, shape),
                *sc = test_wrap_f32(ctx, &sv, 1, (const int64_t[]){1});
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx,
              llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tones, 1.0f, tmask, NULL, NULL));
    const llmq_dtype halves[] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    for (int a = 0; a < 2; a++) {
        llmq_tensor *hdy = NULL, *hdx = NULL;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, halves[a], 2, shape, &hdy));
        ASSERT_OK(ctx, llmq_tensor_create(ctx, halves[a], 2, shape, &hdx));
        uint16_t *hd = llmq_tensor_data(hdy), *hx = llmq_tensor_data(hdx);
        for (int i = 0; i < 600; i++) {
            const float g = test_rng_range(&rng, -1.0f, 1.0f);
            hd[i] = halves[a] == LLMQ_DTYPE_F16 ? llmq_f32_to_f16(g) : llmq_f32_to_bf16(g);
        }
        ASSERT_OK(ctx,
                  llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, hdy, 1.0f, hdx, NULL, NULL));
        ASSERT_OK(ctx,
                  llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, hdy, 1.0f, tfdx, NULL, NULL));
        int clipped = 0;
        for (int i = 0; i < 600; i++) {
            const float g =
                halves[a] == LLMQ_DTYPE_F16 ? llmq_f16_to_f32(hd[i]) : llmq_bf16_to_f32(hd[i]);
            clipped += mask[i] == 0.0f;
            assert_int_equal(hx[i], mask[i] != 0.0f ? hd[i] : (hd[i] & 0x8000));
            assert_true(fdx[i] == (mask[i] != 0.0f ? g : 0.0f));
        }
        assert_true(clipped > 0 && clipped < 600);
        llmq_tensor_destroy(hdy);
        llmq_tensor_destroy(hdx);
    }
    TEST_DESTROY(tx, tones, tmask, tfdx, sc);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

/* NaN in x is an error in the backward too; NaN in dy is not checked and propagates. */
static void nan_handling(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[5] = {0.0f, 1.0f, 2.0f, 300.0f, 4.0f}, dy[5] = {1.0f, NAN, 1.0f, NAN, 1.0f}, dx[5],
          sv = 1.0f, ds;
    const int64_t shape[1] = {5}, one[1] = {1};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *tdy = test_wrap_f32(ctx, dy, 1, shape),
                *tdx = test_wrap_f32(ctx, dx, 1, shape), *sc = test_wrap_f32(ctx, &sv, 1, one),
                *tds = test_wrap_f32(ctx, &ds, 1, one);
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tdy, 1.0f, tdx, tds, NULL));
    assert_true(isnan(dx[1]) && isnan(dx[3]) && isnan(ds)); /* dy * mask, as PyTorch */
    x[2] = NAN;
    ASSERT_FAILS(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tdy, 1.0f, tdx, tds, NULL),
                 LLMQ_ERR_NON_FINITE, "llmq_fake_quantize_backward: x[2]=nan");
    TEST_DESTROY(tx, tdy, tdx, sc, tds);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_computed_mask_and_lsq),
        cmocka_unit_test(mask_bounds_are_inclusive),
        cmocka_unit_test(matches_elementwise_reference),
        cmocka_unit_test(central_differences_of_ste_surrogate),
        cmocka_unit_test(central_differences_of_forward_in_scale),
        cmocka_unit_test(half_gradients),
        cmocka_unit_test(nan_handling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
