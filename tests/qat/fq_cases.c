/* fq_cases.c - random fake-quantization problems and their comparisons (fq_cases.h).
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "fq_cases.h"

static const llmq_dtype float_dtypes[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};

void fq_case_random(test_rng *rng, const int64_t *dims, int n, fq_case *c)
{
    static const llmq_dtype qdtypes[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                         LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
    static const int64_t groups[] = {1, 3, 7, 8, 32, 100, 128, 2000};
    memset(c, 0, sizeof *c);
    c->qdtype = qdtypes[test_rng_next(rng) % 6];
    if (test_rng_next(rng) % 3 == 0) { /* a custom grid of 2 .. 8 bits inside s8 / u8 */
        const int bits = 2 + (int)(test_rng_next(rng) % 7);
        const bool sgn = test_rng_next(rng) % 2;
        c->qdtype = sgn ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8;
        c->qmin = sgn ? -(1 << (bits - 1)) : 0;
        c->qmax = sgn ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    }
    c->sym = (llmq_symmetry)(test_rng_next(rng) % 3);
    c->gran.g = (llmq_granularity)(test_rng_next(rng) % 4);
    c->ndim = 2 + (int32_t)(test_rng_next(rng) % 2);
    for (int32_t i = 0; i < c->ndim; i++)
        c->shape[i] = dims[test_rng_next(rng) % (uint64_t)n];
    if (c->ndim == 3 && c->shape[0] * c->shape[1] * c->shape[2] > 70000)
        c->shape[0] = 1;
    if (c->gran.g == LLMQ_GRANULARITY_PER_CHANNEL)
        c->gran.axis = (int32_t)(test_rng_next(rng) % (uint64_t)c->ndim) -
                       (test_rng_next(rng) % 2 ? c->ndim : 0);
    if (c->gran.g == LLMQ_GRANULARITY_PER_GROUP)
        c->gran.group = groups[test_rng_next(rng) % 8];
    c->rounding = (llmq_rounding)(test_rng_next(rng) % 3);
    c->numerics = (llmq_numerics)(test_rng_next(rng) % 2);
    c->x_dtype = float_dtypes[test_rng_next(rng) % 3];
    c->dy_dtype = float_dtypes[test_rng_next(rng) % 3];
    c->in_place = test_rng_next(rng) % 5 == 0;
    c->out_dtype = c->in_place ? c->x_dtype : float_dtypes[test_rng_next(rng) % 3];
    c->zp_kind = (int)(test_rng_next(rng) % 3);
    c->lsq = (int)(test_rng_next(rng) % 4) & (c->zp_kind != 0 ? 3 : 1);
    c->nans = test_rng_next(rng) % 8 == 0;
    c->grad_factor = test_rng_next(rng) % 2 ? 1.0f : test_rng_range(rng, 0.01f, 2.0f);
}

const char *fq_case_str(const fq_case *c, char *buf, size_t size)
{
    static const char *const syms[] = {"sym", "sym-restricted", "asym"};
    static const char *const grans[] = {"per-tensor", "per-channel", "per-group", "per-token"};
    static const char *const rounds[] = {"half_even", "half_away", "stochastic"};
    char shape[64];
    int k = snprintf(shape, sizeof shape, "[%lld", (long long)c->shape[0]);
    for (int32_t i = 1; i < c->ndim; i++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, ", %lld", (long long)c->shape[i]);
    snprintf(shape + k, sizeof shape - (size_t)k, "]");
    snprintf(buf, size,
             "%s[%d,%d] %s %s(axis=%d group=%lld) %s/%s x=%s dy=%s out=%s zp=%s lsq=%d "
             "in_place=%d nans=%d gf=%a shape=%s",
             llmq_dtype_name(c->qdtype), (int)c->qmin, (int)c->qmax, syms[c->sym],
             grans[c->gran.g], (int)c->gran.axis, (long long)c->gran.group, rounds[c->rounding],
             c->numerics == LLMQ_NUMERICS_ONNX ? "onnx" : "pytorch", llmq_dtype_name(c->x_dtype),
             llmq_dtype_name(c->dy_dtype), llmq_dtype_name(c->out_dtype),
             c->zp_kind == 0 ? "none" : c->zp_kind == 1 ? "s32" : "f32", c->lsq, (int)c->in_place,
             (int)c->nans, (double)c->grad_factor, shape);
    return buf;
}

static void put(llmq_tensor *t, int64_t i, float v)
{
    switch (llmq_tensor_dtype(t)) {
    case LLMQ_DTYPE_F32: ((float *)llmq_tensor_data(t))[i] = v; break;
    case LLMQ_DTYPE_F16: ((uint16_t *)llmq_tensor_data(t))[i] = llmq_f32_to_f16(v); break;
    default: ((uint16_t *)llmq_tensor_data(t))[i] = llmq_f32_to_bf16(v); break;
    }
}

static float get(const llmq_tensor *t, int64_t i)
{
    switch (llmq_tensor_dtype(t)) {
    case LLMQ_DTYPE_F32: return ((const float *)llmq_tensor_data(t))[i];
    case LLMQ_DTYPE_F16: return llmq_f16_to_f32(((const uint16_t *)llmq_tensor_data(t))[i]);
    default: return llmq_bf16_to_f32(((const uint16_t *)llmq_tensor_data(t))[i]);
    }
}

static float draw_scale(test_rng *rng)
{
    const uint64_t r = test_rng_next(rng) % 20;
    if (r < 10) /* powers of two make (k + 0.5) * scale an exact tie */
        return ldexpf(1.0f, -(int)(2 + test_rng_next(rng) % 7));
    if (r < 17)
        return test_rng_range(rng, 0.005f, 0.1f);
    return r == 17 ? FLT_MIN : r == 18 ? 1e30f : 1.0f;
}

/* A value for a parameter with scale s and clipped codes outside [lo, hi] (q - zp units). */
static float draw_x(test_rng *rng, float s, float lo, float hi)
{
    const uint64_t r = test_rng_next(rng) % 100;
    if (r < 40)
        return test_rng_range(rng, (lo - 2.0f) * s, (hi + 2.0f) * s);
    if (r < 55) /* a tie between two codes, inside, at or beyond the bounds */
        return ((float)(int64_t)test_rng_range(rng, lo - 2.0f, hi + 2.0f) + 0.5f) * s;
    if (r < 67) { /* the bounds and the ties next to them */
        const float at[] = {lo, hi, lo - 0.5f, hi + 0.5f, lo - 1.0f, hi + 1.0f};
        return at[test_rng_next(rng) % 6] * s;
    }
    switch (r) {
    case 67: return 3.0e38f;
    case 68: return -3.0e38f;
    case 69: return INFINITY;
    case 70: return -INFINITY;
    case 71: return -0.0f;
    case 72: return 0.0f;
    case 73: return 1e-40f;
    case 74: return -1e-40f;
    default: return test_rng_range(rng, -100.0f, 100.0f);
    }
}

static float draw_dy(test_rng *rng)
{
    const uint64_t r = test_rng_next(rng) % 20;
    return r < 16 ? test_rng_range(rng, -1.0f, 1.0f)
           : r == 16 ? 0.0f
           : r == 17 ? -0.0f
                     : test_rng_range(rng, -1000.0f, 1000.0f);
}

static llmq_tensor *host_tensor(llmq_context *ctx, llmq_dtype dt, int32_t ndim,
                                const int64_t *shape)
{
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, dt, ndim, shape, &t));
    return t;
}

llmq_tensor *fq_like_x(llmq_context *ctx, const fq_problem *p, llmq_dtype dt)
{
    return host_tensor(ctx, dt, p->c.ndim, p->c.shape);
}

llmq_tensor *fq_like_params(llmq_context *ctx, const fq_problem *p)
{
    return test_tensor_like(ctx, p->scale, LLMQ_DTYPE_F32);
}

void fq_problem_make(llmq_context *ctx, const fq_case *c, uint64_t seed, fq_problem *p)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng rng = {seed};
    p->scheme = test_scheme(ctx, c->qdtype, c->sym, c->gran.g, c->gran.axis, c->gran.group);
    if (c->qmin != 0 || c->qmax != 0)
        ASSERT_OK(ctx, llmq_scheme_set_range(p->scheme, c->qmin, c->qmax));
    ASSERT_OK(ctx, llmq_scheme_set_rounding(p->scheme, c->rounding));
    ASSERT_OK(ctx, llmq_scheme_set_numerics(p->scheme, c->numerics));
    ASSERT_OK(ctx, llmq_scheme_set_seed(p->scheme, seed ^ 0x5eed));
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(p->scheme, &qmin, &qmax));

    const int64_t cols = c->shape[c->ndim - 1];
    const int64_t numel = c->shape[0] * c->shape[1] * (c->ndim > 2 ? c->shape[2] : 1);
    const int64_t rows = numel / cols;
    int64_t pshape[2] = {1, 0};
    int32_t pdim = 1;
    if (c->gran.g == LLMQ_GRANULARITY_PER_CHANNEL)
        pshape[0] = c->shape[c->gran.axis < 0 ? c->gran.axis + c->ndim : c->gran.axis];
    else if (c->gran.g == LLMQ_GRANULARITY_PER_TOKEN)
        pshape[0] = rows;
    else if (c->gran.g == LLMQ_GRANULARITY_PER_GROUP) {
        pshape[0] = rows;
        pshape[1] = (cols + c->gran.group - 1) / c->gran.group;
        pdim = 2;
    }
    p->nparams = pshape[0] * (pdim == 2 ? pshape[1] : 1);
    p->scale = host_tensor(ctx, LLMQ_DTYPE_F32, pdim, pshape);
    if (c->zp_kind != 0)
        p->zero_point =
            host_tensor(ctx, c->zp_kind == 1 ? LLMQ_DTYPE_S32 : LLMQ_DTYPE_F32, pdim, pshape);
    /* parameters, and each one's integer zero point as the kernels use it */
    int32_t *zpi = malloc(sizeof(int32_t) * (size_t)p->nparams);
    float *scale = llmq_tensor_data(p->scale);
    for (int64_t i = 0; i < p->nparams; i++) {
        scale[i] = draw_scale(&rng);
        zpi[i] = qmin < 0 ? 0 : (qmin + qmax + 1) / 2;
        if (c->zp_kind == 1) {
            zpi[i] = qmin + (int32_t)(test_rng_next(&rng) % (uint64_t)(qmax - qmin + 1));
            ((int32_t *)llmq_tensor_data(p->zero_point))[i] = zpi[i];
        } else if (c->zp_kind == 2) { /* off the grid and on ties now and then */
            float z = test_rng_range(&rng, (float)qmin - 3.0f, (float)qmax + 3.0f);
            if (test_rng_next(&rng) % 3 == 0)
                z = floorf(z) + 0.5f;
            ((float *)llmq_tensor_data(p->zero_point))[i] = z;
            z = fminf(fmaxf(z, (float)qmin), (float)qmax);
            zpi[i] = (int32_t)rintf(z); /* ties to even */
        }
    }
    p->x = host_tensor(ctx, c->x_dtype, c->ndim, c->shape);
    p->dy = host_tensor(ctx, c->dy_dtype, c->ndim, c->shape);
    p->count = calloc((size_t)p->nparams, sizeof *p->count);
    p->bound_s = calloc((size_t)p->nparams, sizeof *p->bound_s);
    p->bound_z = calloc((size_t)p->nparams, sizeof *p->bound_z);
    for (int64_t i = 0; i < numel; i++) {
        const int64_t q = test_param_index(&c->gran, c->ndim, c->shape, i);
        const float lo = (float)(qmin - zpi[q]), hi = (float)(qmax - zpi[q]);
        const bool nan = c->nans && test_rng_next(&rng) % 64 == 0;
        put(p->x, i, nan ? NAN : draw_x(&rng, scale[q], lo, hi));
        put(p->dy, i, draw_dy(&rng));
        /* |term| <= |dy| * max(1, |lo|, |hi|) * |gf| for dscale (inside |q - x / s| <= 1),
         * |dy| * s * |gf| for dzero_point; doubled for the float roundings of the terms */
        const double g = fabs((double)get(p->dy, i)) * fabs((double)c->grad_factor) * 2.0;
        p->bound_s[q] += g * fmax(1.0, fmax(fabs((double)lo), fabs((double)hi)));
        p->bound_z[q] += g * (double)scale[q];
        p->count[q]++;
    }
    free(zpi);
}

void fq_problem_destroy(fq_problem *p)
{
    llmq_scheme_destroy(p->scheme);
    TEST_DESTROY(p->x, p->dy, p->scale, p->zero_point);
    free(p->count);
    free(p->bound_s);
    free(p->bound_z);
    memset(p, 0, sizeof *p);
}

static void report(const fq_problem *p, const char *what, int64_t i, float got, float want,
                   const char *extra)
{
    char desc[400];
    print_error("%s: %s[%lld]: got %a (%g), want %a (%g)%s\n", fq_case_str(&p->c, desc, sizeof desc),
                what, (long long)i, (double)got, (double)got, (double)want, (double)want, extra);
}

bool fq_same_bits(const fq_problem *p, const char *what, const llmq_tensor *got,
                  const llmq_tensor *want)
{
    const size_t bytes = llmq_tensor_nbytes(want);
    if (memcmp(llmq_tensor_data(got), llmq_tensor_data(want), bytes) == 0)
        return true;
    const size_t esize = llmq_tensor_dtype(want) == LLMQ_DTYPE_F32 ? 4 : 2;
    int64_t i = 0;
    while (memcmp((const char *)llmq_tensor_data(got) + (size_t)i * esize,
                  (const char *)llmq_tensor_data(want) + (size_t)i * esize, esize) == 0)
        i++;
    char extra[96];
    snprintf(extra, sizeof extra, " (x=%a dy=%a)", (double)get(p->x, i), (double)get(p->dy, i));
    report(p, what, i, get(got, i), get(want, i), extra);
    return false;
}

bool fq_close_sums(const fq_problem *p, const char *what, const llmq_tensor *got,
                   const llmq_tensor *want, bool zero_point)
{
    const float *a = llmq_tensor_data(got), *b = llmq_tensor_data(want);
    for (int64_t i = 0; i < p->nparams; i++) {
        const double bound = zero_point ? p->bound_z[i] : p->bound_s[i];
        const double m = fmax(fabs((double)a[i]), fabs((double)b[i]));
        const double ulp = m > 0 ? ldexp(1.0, ilogb(m) - 23) : 0x1p-149;
        const double tol = ulp + 0x1p-50 * (double)p->count[i] * bound;
        const bool ok = isfinite(a[i]) && isfinite(b[i])
                            ? fabs((double)a[i] - (double)b[i]) <= tol
                            : memcmp(&a[i], &b[i], sizeof(float)) == 0 || (isnan(a[i]) && isnan(b[i]));
        if (!ok) {
            char extra[96];
            snprintf(extra, sizeof extra, " (tolerance %g over %lld elements)", tol,
                     (long long)p->count[i]);
            report(p, what, i, a[i], b[i], extra);
            return false;
        }
    }
    return true;
}
