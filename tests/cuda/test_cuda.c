/* test_cuda.c - the CUDA backend against the CPU reference: device tensors and copies,
 * streams, quantize / dequantize / dynamic quantize / ranges (bit-identical), the integer GEMM
 * of the context's tier and the generic kernel (bit-identical), the weight-only GEMV (within
 * docs/gemm.md's bound). Exits 77 (skip) without a CUDA device or module. Run it once per tier:
 * meson runs it plain and with LLMQ_CUDA_ARCH=75 (the Turing kernels on any newer GPU).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

#include "core/context_impl.h"
#include "core/half.h"
#include "core/tensor_impl.h"
#include "quant/scheme_impl.h"

static llmq_context *cuda_context(void)
{
    llmq_context *ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create(&ctx, "cuda"));
    return ctx;
}

/* ---------------------------------------------------------------- helpers */

/* A copy of t (dtype, shape, scheme and parameters) in device or host memory. */
static llmq_tensor *copy_to(llmq_context *ctx, const llmq_tensor *t, int device)
{
    llmq_tensor *c = NULL;
    int64_t shape[LLMQ_MAX_DIMS];
    for (int32_t i = 0; i < llmq_tensor_ndim(t); i++)
        shape[i] = llmq_tensor_dim(t, i);
    if (device)
        ASSERT_OK(ctx, llmq_tensor_create_device(ctx, llmq_tensor_dtype(t), llmq_tensor_ndim(t),
                                                 shape, &c));
    else
        ASSERT_OK(ctx, llmq_tensor_create(ctx, llmq_tensor_dtype(t), llmq_tensor_ndim(t), shape,
                                          &c));
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, t, c));
    return c;
}

static llmq_tensor *to_device(llmq_context *ctx, const llmq_tensor *h)
{
    return copy_to(ctx, h, 1);
}

static llmq_tensor *to_host(llmq_context *ctx, const llmq_tensor *d)
{
    return copy_to(ctx, d, 0);
}

/* Same packed bytes (row by row) in two host tensors of one shape. */
static void assert_same_bytes(const llmq_tensor *a, const llmq_tensor *b, const char *what)
{
    const size_t rows = (size_t)(llmq_tensor_numel(a) / llmq_tensor_dim(a, -1));
    size_t row_bytes = 0;
    llmq_dtype_row_bytes(llmq_tensor_dtype(a), llmq_tensor_dim(a, -1), &row_bytes);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *x = (const uint8_t *)llmq_tensor_data(a) + r * llmq_tensor_row_stride(a);
        const uint8_t *y = (const uint8_t *)llmq_tensor_data(b) + r * llmq_tensor_row_stride(b);
        if (memcmp(x, y, row_bytes) != 0) {
            size_t i = 0;
            while (x[i] == y[i])
                i++;
            fail_msg("%s: row %zu byte %zu: got 0x%02x, reference 0x%02x", what, r, i, y[i], x[i]);
        }
    }
}

static float random_normal(test_rng *r)
{
    const double u1 = test_rng_uniform(r) + 1e-12, u2 = test_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Host float tensor of dtype dt with N(0, sigma) values, some exact multiples of 0.05 (ties
 * for common scales) and, when `inf` is set, +Inf and -Inf at two places. */
static llmq_tensor *float_tensor(llmq_context *ctx, llmq_dtype dt, int32_t ndim,
                                 const int64_t *shape, test_rng *r, float sigma, int inf)
{
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, dt, ndim, shape, &t));
    const int64_t n = llmq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        float v = random_normal(r) * sigma;
        if (i % 7 == 3)
            v = (float)((int)(v * 20.0f)) * 0.05f;
        if (inf && i == n / 3)
            v = INFINITY;
        if (inf && i == n / 2)
            v = -INFINITY;
        if (dt == LLMQ_DTYPE_F32)
            ((float *)llmq_tensor_data(t))[i] = v;
        else if (dt == LLMQ_DTYPE_F16)
            ((uint16_t *)llmq_tensor_data(t))[i] = llmq_f32_to_f16(v);
        else
            ((uint16_t *)llmq_tensor_data(t))[i] = llmq_f32_to_bf16(v);
    }
    return t;
}

static float float_value(const llmq_tensor *t, int64_t i)
{
    const void *p = llmq_tensor_data(t);
    switch (llmq_tensor_dtype(t)) {
    case LLMQ_DTYPE_F32: return ((const float *)p)[i];
    case LLMQ_DTYPE_F16: return llmq_f16_to_f32(((const uint16_t *)p)[i]);
    default: return llmq_bf16_to_f32(((const uint16_t *)p)[i]);
    }
}

/* Code (row, col) of a host quantized tensor, as the reference reads it. */
static int32_t host_code(const llmq_tensor *t, int64_t row, int64_t col)
{
    const uint8_t *p = (const uint8_t *)llmq_tensor_data(t) + (size_t)row * llmq_tensor_row_stride(t);
    switch (llmq_tensor_dtype(t)) {
    case LLMQ_DTYPE_S8: return (int8_t)p[col];
    case LLMQ_DTYPE_U8: return p[col];
    case LLMQ_DTYPE_S4: return (int32_t)(int8_t)(uint8_t)((p[col / 2] >> (col % 2 * 4)) << 4) >> 4;
    case LLMQ_DTYPE_U4: return (p[col / 2] >> (col % 2 * 4)) & 15;
    case LLMQ_DTYPE_S2: return (int32_t)(int8_t)(uint8_t)((p[col / 4] >> (col % 4 * 2)) << 6) >> 6;
    default: return (p[col / 4] >> (col % 4 * 2)) & 3;
    }
}

static int grid_bits(llmq_dtype d)
{
    return (int)llmq_dtype_bits(d);
}

/* Host quantized tensor with random codes on its grid and random parameters (scales in
 * [smin, smax], zero points anywhere on the grid for asymmetric schemes). */
static llmq_tensor *quant_tensor(llmq_context *ctx, llmq_dtype dt, llmq_symmetry sym,
                                 llmq_granularity g, int32_t axis, int64_t group, int32_t ndim,
                                 const int64_t *shape, test_rng *r, float smin, float smax)
{
    llmq_scheme *s = test_scheme(ctx, dt, sym, g, axis, group);
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
    const int bits = grid_bits(dt);
    const int sgn = dt == LLMQ_DTYPE_S8 || dt == LLMQ_DTYPE_S4 || dt == LLMQ_DTYPE_S2;
    llmq_tensor *bytes = NULL, *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, sgn ? LLMQ_DTYPE_S8 : LLMQ_DTYPE_U8, ndim, shape,
                                      &bytes));
    uint8_t *b = llmq_tensor_data(bytes);
    for (int64_t i = 0; i < llmq_tensor_numel(bytes); i++)
        b[i] = (uint8_t)(qmin + (int32_t)(test_rng_next(r) % (uint64_t)(qmax - qmin + 1)));
    if (bits == 8) { /* the one-code-per-byte tensor already has dtype dt */
        t = bytes;
        bytes = NULL;
    } else {
        ASSERT_OK(ctx, llmq_tensor_create(ctx, dt, ndim, shape, &t));
        ASSERT_OK(ctx, llmq_pack(ctx, bytes, t));
    }
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, t, s));
    float *sv = llmq_tensor_data(llmq_tensor_scale(t));
    int32_t *zv = llmq_tensor_data(llmq_tensor_zero_point(t));
    for (int64_t i = 0; i < llmq_tensor_numel(llmq_tensor_scale(t)); i++) {
        sv[i] = test_rng_range(r, smin, smax);
        if (sym == LLMQ_SYMMETRY_ASYMMETRIC)
            zv[i] = qmin + (int32_t)(test_rng_next(r) % (uint64_t)(qmax - qmin + 1));
    }
    llmq_tensor_destroy(bytes);
    llmq_scheme_destroy(s);
    return t;
}

static llmq_tensor *empty_like(llmq_context *ctx, llmq_dtype dt, int32_t ndim,
                               const int64_t *shape, int device)
{
    llmq_tensor *t = NULL;
    if (device)
        ASSERT_OK(ctx, llmq_tensor_create_device(ctx, dt, ndim, shape, &t));
    else
        ASSERT_OK(ctx, llmq_tensor_create(ctx, dt, ndim, shape, &t));
    return t;
}

/* ---------------------------------------------------------------- memory, copies, errors */

static void copies_round_trip(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {1};
    const int64_t shape[2] = {5, 7};
    llmq_tensor *h = float_tensor(ctx, LLMQ_DTYPE_F32, 2, shape, &r, 1.0f, 0);
    llmq_tensor *d = to_device(ctx, h);
    assert_int_equal(llmq_tensor_memory(d), LLMQ_MEMORY_DEVICE);
    llmq_tensor *back = to_host(ctx, d);
    assert_same_bytes(h, back, "host -> device -> host");
    /* a strided host view and a strided wrapped device view */
    float wide[5][10];
    memset(wide, 0, sizeof wide);
    llmq_tensor *hv = NULL, *dbuf = NULL, *dv = NULL, *dd = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, wide, 40, &hv));
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, d, hv));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 7; j++)
            assert_true(wide[i][j] == ((const float *)llmq_tensor_data(h))[i * 7 + j]);
    ASSERT_OK(ctx, llmq_tensor_create_device(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){5, 16},
                                             &dbuf));
    ASSERT_OK(ctx, llmq_tensor_wrap_device(ctx, LLMQ_DTYPE_F32, 2, shape,
                                           (float *)llmq_tensor_data(dbuf) + 3, 64, &dv));
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, hv, dv));
    dd = empty_like(ctx, LLMQ_DTYPE_F32, 2, shape, 1);
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, dv, dd)); /* device to device, strided */
    llmq_tensor *back2 = to_host(ctx, dd);
    assert_same_bytes(h, back2, "strided views and a device-to-device copy");
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    llmq_tensor_destroy(back2);
    llmq_tensor_destroy(dd);
    llmq_tensor_destroy(dv);
    llmq_tensor_destroy(dbuf);
    llmq_tensor_destroy(hv);
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(d);
    llmq_tensor_destroy(h);
    llmq_context_destroy(ctx);
}

static void misuse_is_refused(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {2};
    const int64_t shape[2] = {4, 8};
    llmq_tensor *x = float_tensor(ctx, LLMQ_DTYPE_F32, 2, shape, &r, 1.0f, 0);
    llmq_tensor *xd = to_device(ctx, x);
    llmq_tensor *q = quant_tensor(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0, 2, shape, &r, 0.1f, 0.2f);
    llmq_tensor *qd = to_device(ctx, q);
    ASSERT_FAILS(ctx, llmq_quantize(ctx, x, qd), LLMQ_ERR_INVALID_ARG,
                 "llmq_quantize: dst: device tensor while src is in host memory");
    llmq_tensor *p4 = empty_like(ctx, LLMQ_DTYPE_S4, 2, shape, 1);
    ASSERT_FAILS(ctx, llmq_pack(ctx, qd, p4), LLMQ_ERR_UNSUPPORTED, "llmq_pack: src: device");
    /* the LLM methods run on the CPU only */
    float c_host[16], absmax[8] = {1, 1, 1, 1, 1, 1, 1, 1}, s[8];
    llmq_tensor *ct = test_wrap_f32(ctx, c_host, 2, (const int64_t[]){4, 4});
    llmq_tensor *at = test_wrap_f32(ctx, absmax, 1, (const int64_t[]){8});
    llmq_tensor *st = test_wrap_f32(ctx, s, 1, (const int64_t[]){8});
    ASSERT_FAILS(ctx, llmq_matmul_outlier(ctx, xd, q, NULL, ct, NULL, 6.0f, NULL),
                 LLMQ_ERR_UNSUPPORTED, "llmq_matmul_outlier: a: a device tensor");
    ASSERT_FAILS(ctx, llmq_smoothquant_apply(ctx, at, 0.5f, 1, &xd, st), LLMQ_ERR_UNSUPPORTED,
                 "llmq_smoothquant_apply: weights[0]: a device tensor");
    llmq_tensor_destroy(ct);
    llmq_tensor_destroy(at);
    llmq_tensor_destroy(st);
    /* a CPU context cannot run device tensors */
    llmq_context *cpu = test_context();
    ASSERT_FAILS(cpu, llmq_quantize(cpu, xd, qd), LLMQ_ERR_UNSUPPORTED,
                 "has no device memory");
    /* parameters reach the device checked */
    llmq_tensor *bad = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, (const int64_t[]){1}, &bad));
    ((float *)llmq_tensor_data(bad))[0] = -2.0f;
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, bad, llmq_tensor_scale(qd)), LLMQ_ERR_INVALID_ARG,
                 "llmq_tensor_copy: src[0]=-2: a scale must be a positive normal float");
    llmq_tensor *badz = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 1, (const int64_t[]){1}, &badz));
    ((int32_t *)llmq_tensor_data(badz))[0] = 300;
    ASSERT_FAILS(ctx, llmq_tensor_copy(ctx, badz, llmq_tensor_zero_point(qd)),
                 LLMQ_ERR_INVALID_ARG, "src[0]=300: a zero point outside the s8 grid");
    llmq_tensor_destroy(badz);
    llmq_tensor_destroy(bad);
    llmq_context_destroy(cpu);
    llmq_tensor_destroy(p4);
    llmq_tensor_destroy(qd);
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(xd);
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
}

/* A NaN met on the device is reported by the next sync, with its flat index. */
static void nan_reported_at_sync(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {3};
    const int64_t shape[2] = {9, 31};
    llmq_tensor *x = float_tensor(ctx, LLMQ_DTYPE_F32, 2, shape, &r, 1.0f, 0);
    ((float *)llmq_tensor_data(x))[123] = NAN;
    ((float *)llmq_tensor_data(x))[200] = NAN;
    llmq_tensor *xd = to_device(ctx, x);
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_tensor *qd = empty_like(ctx, LLMQ_DTYPE_S8, 2, shape, 1);
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qd, s));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, xd, qd));
    ASSERT_FAILS(ctx, llmq_context_sync(ctx), LLMQ_ERR_NON_FINITE,
                 "llmq_context_sync: src[123]=nan");
    ASSERT_OK(ctx, llmq_context_sync(ctx)); /* reported once */
    ASSERT_OK(ctx, llmq_quantize(ctx, xd, qd));
    ASSERT_FAILS(ctx, llmq_context_sync(ctx), LLMQ_ERR_NON_FINITE, "src[123]=nan");
    llmq_tensor_destroy(qd);
    llmq_scheme_destroy(s);
    llmq_tensor_destroy(xd);
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
}

/* The caller's stream, created through the CUDA runtime if one can be loaded. */
typedef int (*stream_create_fn)(void **);
typedef int (*stream_destroy_fn)(void *);

static void callers_stream(void **state)
{
    (void)state;
    void *rt = dlopen("libcudart.so", RTLD_NOW | RTLD_LOCAL);
    for (int v = 13; rt == NULL && v >= 11; v--) {
        char name[32];
        snprintf(name, sizeof name, "libcudart.so.%d", v);
        rt = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    }
    if (rt == NULL) {
        print_message("no libcudart to make a stream with: skipped\n");
        skip();
    }
    stream_create_fn create;
    stream_destroy_fn destroy;
    void *c = dlsym(rt, "cudaStreamCreate"), *d = dlsym(rt, "cudaStreamDestroy");
    memcpy(&create, &c, sizeof c);
    memcpy(&destroy, &d, sizeof d);
    assert_non_null(c);
    assert_non_null(d);
    void *stream = NULL;
    assert_int_equal(create(&stream), 0);
    llmq_context *ctx = cuda_context();
    ASSERT_OK(ctx, llmq_context_set_stream(ctx, stream));
    test_rng r = {4};
    const int64_t shape[2] = {64, 256};
    llmq_tensor *x = float_tensor(ctx, LLMQ_DTYPE_F16, 2, shape, &r, 1.0f, 0);
    llmq_tensor *xd = to_device(ctx, x);
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    llmq_tensor *qd = empty_like(ctx, LLMQ_DTYPE_S8, 2, shape, 1);
    llmq_tensor *qh = empty_like(ctx, LLMQ_DTYPE_S8, 2, shape, 0);
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qd, s));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qh, s));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, xd, qd));
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, x, qh));
    llmq_tensor *back = to_host(ctx, qd);
    assert_same_bytes(qh, back, "quantize on the caller's stream");
    ASSERT_OK(ctx, llmq_context_set_stream(ctx, NULL));
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(qh);
    llmq_tensor_destroy(qd);
    llmq_scheme_destroy(s);
    llmq_tensor_destroy(xd);
    llmq_tensor_destroy(x);
    llmq_context_destroy(ctx);
    assert_int_equal(destroy(stream), 0);
}

/* ---------------------------------------------------------------- quantization */

typedef struct qcase {
    llmq_dtype src, dst, deq;
    llmq_granularity gran;
    int32_t axis;
    int64_t group;
    llmq_symmetry sym;
    llmq_rounding rounding;
    llmq_numerics numerics;
    int32_t ndim;
    int64_t shape[3];
} qcase;

static void run_qcase(llmq_context *ctx, const qcase *c, test_rng *r)
{
    char what[160];
    snprintf(what, sizeof what, "%s->%s gran %d axis %d group %lld sym %d round %d num %d [%lld, %lld, %lld]",
             llmq_dtype_name(c->src), llmq_dtype_name(c->dst), (int)c->gran, (int)c->axis,
             (long long)c->group, (int)c->sym, (int)c->rounding, (int)c->numerics,
             (long long)c->shape[0], (long long)c->shape[1],
             (long long)(c->ndim > 2 ? c->shape[2] : 0));
    llmq_scheme *s = test_scheme(ctx, c->dst, c->sym, c->gran, c->axis, c->group);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, c->rounding));
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, c->numerics));
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, 1234));
    llmq_tensor *x = float_tensor(ctx, c->src, c->ndim, c->shape, r, 2.0f, 1);
    llmq_tensor *xd = to_device(ctx, x);
    /* dynamic: parameters and codes */
    llmq_tensor *qh = empty_like(ctx, c->dst, c->ndim, c->shape, 0);
    llmq_tensor *qd = empty_like(ctx, c->dst, c->ndim, c->shape, 1);
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qh, s));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qd, s));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, x, qh));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, xd, qd));
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    llmq_tensor *back = to_host(ctx, qd);
    char w2[200];
    snprintf(w2, sizeof w2, "dynamic codes %s", what);
    assert_same_bytes(qh, back, w2);
    snprintf(w2, sizeof w2, "dynamic scales %s", what);
    assert_same_bytes(llmq_tensor_scale(qh), llmq_tensor_scale(back), w2);
    snprintf(w2, sizeof w2, "dynamic zero points %s", what);
    assert_same_bytes(llmq_tensor_zero_point(qh), llmq_tensor_zero_point(back), w2);
    /* static, with the reference's parameters uploaded */
    llmq_tensor *qs = to_device(ctx, qh);
    ASSERT_OK(ctx, llmq_tensor_copy(ctx, llmq_tensor_scale(qh), llmq_tensor_scale(qs)));
    ASSERT_OK(ctx, llmq_quantize(ctx, xd, qs));
    llmq_tensor *back2 = to_host(ctx, qs);
    snprintf(w2, sizeof w2, "static codes %s", what);
    assert_same_bytes(qh, back2, w2);
    /* dequantize */
    llmq_tensor *yh = empty_like(ctx, c->deq, c->ndim, c->shape, 0);
    llmq_tensor *yd = empty_like(ctx, c->deq, c->ndim, c->shape, 1);
    ASSERT_OK(ctx, llmq_dequantize(ctx, qh, yh));
    ASSERT_OK(ctx, llmq_dequantize(ctx, qs, yd));
    llmq_tensor *yback = to_host(ctx, yd);
    snprintf(w2, sizeof w2, "dequantize to %s %s", llmq_dtype_name(c->deq), what);
    assert_same_bytes(yh, yback, w2);
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    llmq_tensor_destroy(yback);
    llmq_tensor_destroy(yd);
    llmq_tensor_destroy(yh);
    llmq_tensor_destroy(back2);
    llmq_tensor_destroy(qs);
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(qd);
    llmq_tensor_destroy(qh);
    llmq_tensor_destroy(xd);
    llmq_tensor_destroy(x);
    llmq_scheme_destroy(s);
}

static void quantize_matches_cpu(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {5};
    static const llmq_dtype srcs[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16};
    static const llmq_dtype dsts[] = {LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4,
                                      LLMQ_DTYPE_U4, LLMQ_DTYPE_S2, LLMQ_DTYPE_U2};
    static const struct {
        llmq_granularity g;
        int32_t axis;
        int64_t group;
    } grans[] = {{LLMQ_GRANULARITY_PER_TENSOR, 0, 0},  {LLMQ_GRANULARITY_PER_CHANNEL, 0, 0},
                 {LLMQ_GRANULARITY_PER_CHANNEL, -1, 0}, {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
                 {LLMQ_GRANULARITY_PER_GROUP, 0, 16},  {LLMQ_GRANULARITY_PER_GROUP, 0, 5},
                 {LLMQ_GRANULARITY_PER_CHANNEL, 1, 0}};
    int done = 0;
    for (int i = 0; i < 300; i++) { /* every value of every axis, mixed pseudo-randomly */
        qcase c;
        memset(&c, 0, sizeof c);
        c.src = srcs[i % 3];
        c.dst = dsts[(i / 3 + i) % 6];
        c.deq = srcs[(i / 7) % 3];
        const int gi = (i / 2 + i / 11) % 7;
        c.gran = grans[gi].g;
        c.axis = grans[gi].axis;
        c.group = grans[gi].group;
        c.sym = (llmq_symmetry)((i / 5) % 3);
        c.rounding = (llmq_rounding)((i / 13 + i) % 3);
        c.numerics = (llmq_numerics)((i / 17) % 2);
        const int64_t rows = 1 + (int64_t)(test_rng_next(&r) % 40);
        const int64_t cols = 1 + (int64_t)(test_rng_next(&r) % 90);
        if (gi == 6) { /* a channel axis in the middle of a 3-D tensor */
            c.ndim = 3;
            c.shape[0] = 3;
            c.shape[1] = 1 + rows % 6;
            c.shape[2] = cols;
        } else {
            c.ndim = 2;
            c.shape[0] = rows;
            c.shape[1] = cols;
        }
        run_qcase(ctx, &c, &r);
        done++;
    }
    /* the per-token kernels (a warp per row of up to 4096 16-bit values when there are at
     * least 8 rows per multiprocessor, a block per row otherwise or for longer or unaligned
     * rows) with 16-byte loads, and long rows */
    const qcase big[] = {
        {LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_DTYPE_F16, LLMQ_GRANULARITY_PER_TOKEN, 0, 0,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH, 2, {64, 4096}},
        {LLMQ_DTYPE_BF16, LLMQ_DTYPE_U8, LLMQ_DTYPE_F32, LLMQ_GRANULARITY_PER_TOKEN, 0, 0,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH, 2, {2100, 2056}},
        {LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_DTYPE_F16, LLMQ_GRANULARITY_PER_TOKEN, 0, 0,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH, 2, {2100, 4096}},
        {LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_DTYPE_F16, LLMQ_GRANULARITY_PER_TOKEN, 0, 0,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH, 2, {3, 4104}},
        {LLMQ_DTYPE_BF16, LLMQ_DTYPE_U8, LLMQ_DTYPE_F32, LLMQ_GRANULARITY_PER_TOKEN, 0, 0,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_ONNX, 2, {33, 5000}},
        {LLMQ_DTYPE_F32, LLMQ_DTYPE_S4, LLMQ_DTYPE_BF16, LLMQ_GRANULARITY_PER_GROUP, 0, 128,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_ROUNDING_HALF_EVEN, LLMQ_NUMERICS_PYTORCH, 2, {300, 1024}},
        {LLMQ_DTYPE_F16, LLMQ_DTYPE_S8, LLMQ_DTYPE_F16, LLMQ_GRANULARITY_PER_TENSOR, 0, 0,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_ROUNDING_STOCHASTIC, LLMQ_NUMERICS_PYTORCH, 2, {512, 1000}},
        {LLMQ_DTYPE_F32, LLMQ_DTYPE_U4, LLMQ_DTYPE_F32, LLMQ_GRANULARITY_PER_CHANNEL, -1, 0,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_ROUNDING_HALF_AWAY, LLMQ_NUMERICS_PYTORCH, 2, {700, 333}},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        run_qcase(ctx, &big[i], &r);
    print_message("%d quantize cases + %zu large, bit-identical\n", done,
                  sizeof big / sizeof big[0]);
    llmq_context_destroy(ctx);
}

/* Calibration ranges (the backend's range slot) against the CPU's, per channel of the last
 * axis (activations), per tensor and per token. */
static void ranges_match_cpu(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {6};
    static const struct {
        llmq_granularity g;
        int32_t axis;
        int64_t group;
    } grans[] = {{LLMQ_GRANULARITY_PER_CHANNEL, -1, 0},
                 {LLMQ_GRANULARITY_PER_TENSOR, 0, 0},
                 {LLMQ_GRANULARITY_PER_TOKEN, 0, 0},
                 {LLMQ_GRANULARITY_PER_GROUP, 0, 64}};
    for (size_t gi = 0; gi < sizeof grans / sizeof grans[0]; gi++) {
        const int64_t shape[2] = {513, 777};
        llmq_tensor *x = float_tensor(ctx, LLMQ_DTYPE_F16, 2, shape, &r, 3.0f, 1);
        llmq_tensor *xd = to_device(ctx, x);
        llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC, grans[gi].g,
                                     grans[gi].axis, grans[gi].group);
        llmq_tensor *qh = empty_like(ctx, LLMQ_DTYPE_S8, 2, shape, 0);
        llmq_tensor *qd = empty_like(ctx, LLMQ_DTYPE_S8, 2, shape, 1);
        ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qh, s));
        ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, qd, s));
        const int64_t n = llmq_tensor_numel(llmq_tensor_scale(qh));
        llmq_tensor *lo_h = empty_like(ctx, LLMQ_DTYPE_F32, 1, &n, 0);
        llmq_tensor *hi_h = empty_like(ctx, LLMQ_DTYPE_F32, 1, &n, 0);
        llmq_tensor *lo_d = empty_like(ctx, LLMQ_DTYPE_F32, 1, &n, 1);
        llmq_tensor *hi_d = empty_like(ctx, LLMQ_DTYPE_F32, 1, &n, 1);
        llmq_quant_job job = {
            .src = x->data, .dst = qh->data, .src_dtype = x->dtype, .dst_dtype = qh->dtype,
            .src_stride = x->row_stride, .dst_stride = qh->row_stride, .rows = x->rows,
            .cols = x->cols, .map = qh->map};
        int64_t bad = -1;
        assert_int_equal(ctx->host.ops->range(&ctx->host, &job, lo_h->data, hi_h->data, &bad),
                         LLMQ_OK);
        job.src = xd->data;
        job.dst = qd->data;
        assert_int_equal(ctx->backend.ops->range(&ctx->backend, &job, lo_d->data, hi_d->data,
                                                 &bad),
                         LLMQ_OK);
        ASSERT_OK(ctx, llmq_context_sync(ctx));
        llmq_tensor *lo_b = to_host(ctx, lo_d), *hi_b = to_host(ctx, hi_d);
        for (int64_t i = 0; i < n; i++) {
            const float a = ((float *)lo_h->data)[i], b = ((float *)lo_b->data)[i];
            const float c = ((float *)hi_h->data)[i], d = ((float *)hi_b->data)[i];
            if (!(a == b && c == d))
                fail_msg("granularity %zu: range[%lld]: device [%g, %g], cpu [%g, %g]", gi,
                         (long long)i, (double)b, (double)d, (double)a, (double)c);
        }
        llmq_tensor_destroy(lo_b);
        llmq_tensor_destroy(hi_b);
        llmq_tensor_destroy(lo_h);
        llmq_tensor_destroy(hi_h);
        llmq_tensor_destroy(lo_d);
        llmq_tensor_destroy(hi_d);
        llmq_tensor_destroy(qh);
        llmq_tensor_destroy(qd);
        llmq_scheme_destroy(s);
        llmq_tensor_destroy(xd);
        llmq_tensor_destroy(x);
    }
    llmq_context_destroy(ctx);
}

/* ---------------------------------------------------------------- matmul */

typedef struct mcase {
    int64_t m, n, k;
    llmq_dtype a, b, c;
    llmq_symmetry a_sym, b_sym;
    llmq_granularity a_gran, b_gran;
    int64_t b_group;
    int kn;
    int bias;
    llmq_requant requant;
    int64_t a_pad; /* extra bytes per row of A (a strided view) */
} mcase;

/* Device result against the CPU's for one product; integer outputs and the exact float
 * epilogue must match bit for bit, weight-only outputs within docs/gemm.md's bound. */
static void run_mcase(llmq_context *ctx, const mcase *c, test_rng *r)
{
    char what[200];
    snprintf(what, sizeof what, "%s x %s -> %s, M %lld N %lld K %lld%s%s", llmq_dtype_name(c->a),
             llmq_dtype_name(c->b), llmq_dtype_name(c->c), (long long)c->m, (long long)c->n,
             (long long)c->k, c->kn ? " KN" : "", c->a_pad ? " strided A" : "");
    const int float_a = c->a == LLMQ_DTYPE_F32 || c->a == LLMQ_DTYPE_F16 ||
                        c->a == LLMQ_DTYPE_BF16;
    const int64_t ashape[2] = {c->m, c->k};
    const int64_t bshape[2] = {c->kn ? c->k : c->n, c->kn ? c->n : c->k};
    const int64_t cshape[2] = {c->m, c->n};
    llmq_tensor *a = float_a ? float_tensor(ctx, c->a, 2, ashape, r, 1.0f, 0)
                             : quant_tensor(ctx, c->a, c->a_sym, c->a_gran, 0, 0, 2, ashape, r,
                                            0.01f, 0.05f);
    llmq_tensor *b = quant_tensor(ctx, c->b, c->b_sym, c->b_gran, c->kn ? 1 : 0, c->b_group, 2,
                                  bshape, r, 0.002f, 0.02f);
    llmq_tensor *ad = NULL, *abuf = NULL;
    if (c->a_pad > 0) { /* A as a strided device view */
        size_t rb = 0;
        llmq_dtype_row_bytes(c->a, c->k, &rb);
        const int64_t wide[2] = {c->m, (int64_t)rb + c->a_pad};
        ASSERT_OK(ctx, llmq_tensor_create_device(ctx, LLMQ_DTYPE_U8, 2, wide, &abuf));
        ASSERT_OK(ctx, llmq_tensor_wrap_device(ctx, c->a, 2, ashape, llmq_tensor_data(abuf),
                                               rb + (size_t)c->a_pad, &ad));
        ASSERT_OK(ctx, llmq_tensor_copy(ctx, a, ad));
    } else {
        ad = to_device(ctx, a);
    }
    llmq_tensor *bd = to_device(ctx, b);
    llmq_tensor *bias = NULL, *biasd = NULL;
    if (c->bias) {
        bias = float_tensor(ctx, LLMQ_DTYPE_F32, 1, &c->n, r, 0.5f, 0);
        biasd = to_device(ctx, bias);
    }
    llmq_tensor *ch, *cd;
    if (c->c == LLMQ_DTYPE_S8 || c->c == LLMQ_DTYPE_U8) {
        ch = quant_tensor(ctx, c->c, LLMQ_SYMMETRY_ASYMMETRIC,
                          c->requant == LLMQ_REQUANT_EXACT ? LLMQ_GRANULARITY_PER_TENSOR
                                                           : LLMQ_GRANULARITY_PER_CHANNEL,
                          -1, 0, 2, cshape, r, 0.005f, 0.05f);
        cd = to_device(ctx, ch);
    } else {
        ch = empty_like(ctx, c->c, 2, cshape, 0);
        cd = empty_like(ctx, c->c, 2, cshape, 1);
    }
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.weight_layout = c->kn ? LLMQ_WEIGHT_LAYOUT_KN : LLMQ_WEIGHT_LAYOUT_NK;
    o.requant = c->requant;
    ASSERT_OK(ctx, llmq_matmul_with_options(ctx, a, b, bias, ch, &o));
    ASSERT_OK(ctx, llmq_matmul_with_options(ctx, ad, bd, biasd, cd, &o));
    ASSERT_OK(ctx, llmq_context_sync(ctx));
    llmq_tensor *back = to_host(ctx, cd);
    if (!float_a) {
        assert_same_bytes(ch, back, what);
    } else {
        /* |y - ref| <= 1e-6 K sum|a b| + one unit in the last place of a 16-bit output */
        const float *sv = llmq_tensor_data(llmq_tensor_scale(b));
        const int32_t *zv = llmq_tensor_data(llmq_tensor_zero_point(b));
        for (int64_t m = 0; m < c->m; m++)
            for (int64_t n = 0; n < c->n; n++) {
                double mag = 0.0;
                for (int64_t k = 0; k < c->k; k++) {
                    const int64_t br = c->kn ? k : n, bc = c->kn ? n : k;
                    const int64_t p = ((br / b->map.row_div) % b->map.row_mod) * b->map.row_mul +
                                      bc / b->map.col_group;
                    const int32_t q = host_code(b, br, bc);
                    mag += fabs((double)float_value(a, m * c->k + k) * (double)(q - zv[p]) *
                                (double)sv[p]);
                }
                const float ref = float_value(ch, m * c->n + n);
                const float got = float_value(back, m * c->n + n);
                double tol = 1e-6 * (double)c->k * mag;
                if (c->c == LLMQ_DTYPE_F16)
                    tol += fabs((double)ref) * 0x1p-10 + 0x1p-24;
                else if (c->c == LLMQ_DTYPE_BF16)
                    tol += fabs((double)ref) * 0x1p-7;
                if (!(fabs((double)got - (double)ref) <= tol))
                    fail_msg("%s: [%lld, %lld]: got %.9g, reference %.9g, bound %.3g", what,
                             (long long)m, (long long)n, (double)got, (double)ref, tol);
            }
    }
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(cd);
    llmq_tensor_destroy(ch);
    llmq_tensor_destroy(biasd);
    llmq_tensor_destroy(bias);
    llmq_tensor_destroy(bd);
    llmq_tensor_destroy(ad);
    llmq_tensor_destroy(abuf);
    llmq_tensor_destroy(b);
    llmq_tensor_destroy(a);
}

/* The tier's tensor-core GEMM on every M, N, K in {1, 3, 17, 1000}: s8 A symmetric per token
 * and u8 A asymmetric per tensor (both zero-point corrections), raw s32 accumulators. */
static void gemm_s32_all_small_shapes(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {7};
    static const int64_t sizes[4] = {1, 3, 17, 1000};
    int count = 0;
    for (int i = 0; i < 64; i++) {
        const mcase s8 = {sizes[i / 16], sizes[i / 4 % 4], sizes[i % 4], LLMQ_DTYPE_S8,
                          LLMQ_DTYPE_S8, LLMQ_DTYPE_S32, LLMQ_SYMMETRY_SYMMETRIC,
                          LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN,
                          LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, 0, LLMQ_REQUANT_EXACT, 0};
        run_mcase(ctx, &s8, &r);
        mcase u8 = s8;
        u8.a = LLMQ_DTYPE_U8;
        u8.a_sym = LLMQ_SYMMETRY_ASYMMETRIC;
        u8.a_gran = LLMQ_GRANULARITY_PER_TENSOR;
        u8.b_sym = LLMQ_SYMMETRY_ASYMMETRIC;
        run_mcase(ctx, &u8, &r);
        count += 2;
    }
    print_message("%s: %d products bit-identical\n", llmq_context_backend_name(ctx), count);
    llmq_context_destroy(ctx);
}

/* Every epilogue on shapes that take the aligned (cp.async / 16-byte) paths with tails in M
 * and N, several k tiles, and split-k for few rows; the last two have enough tiles for the
 * AMPERE tier's large ones (153 of 128 x 256, at least one per SM on an H100). */
static void gemm_epilogues(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {8};
    static const int64_t shapes[][3] = {{130, 300, 1024}, {257, 520, 2048}, {64, 256, 512},
                                        {1, 4096, 4096},  {16, 1000, 4096}, {200, 264, 48},
                                        {1000, 1000, 1008}, {5, 7, 16}, {2100, 2100, 32},
                                        {1100, 4100, 320}};
    static const llmq_dtype outs[] = {LLMQ_DTYPE_S32, LLMQ_DTYPE_F32, LLMQ_DTYPE_F16,
                                      LLMQ_DTYPE_BF16, LLMQ_DTYPE_S8, LLMQ_DTYPE_U8};
    int count = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++) {
            const int v = (int)(si + oi);
            mcase c = {shapes[si][0], shapes[si][1], shapes[si][2],
                       v % 2 ? LLMQ_DTYPE_U8 : LLMQ_DTYPE_S8, LLMQ_DTYPE_S8, outs[oi],
                       v % 3 == 0 ? LLMQ_SYMMETRY_SYMMETRIC : LLMQ_SYMMETRY_ASYMMETRIC,
                       v % 4 == 1 ? LLMQ_SYMMETRY_ASYMMETRIC : LLMQ_SYMMETRY_SYMMETRIC,
                       v % 2 ? LLMQ_GRANULARITY_PER_TENSOR : LLMQ_GRANULARITY_PER_TOKEN,
                       v % 5 == 2 ? LLMQ_GRANULARITY_PER_TENSOR : LLMQ_GRANULARITY_PER_CHANNEL,
                       0, 0, outs[oi] != LLMQ_DTYPE_S32 && outs[oi] != LLMQ_DTYPE_S8 &&
                                 outs[oi] != LLMQ_DTYPE_U8,
                       oi == 5 ? LLMQ_REQUANT_MULTIPLIER : LLMQ_REQUANT_EXACT,
                       si == 2 ? 16 : si == 5 ? 3 : 0};
            if (shapes[si][0] * shapes[si][1] * shapes[si][2] > 200000000 && oi % 3 != 0)
                continue; /* the CPU reference is slow: big shapes take s32 and bf16 only */
            run_mcase(ctx, &c, &r);
            count++;
        }
    print_message("%s: %d epilogue products bit-identical\n", llmq_context_backend_name(ctx),
                  count);
    llmq_context_destroy(ctx);
}

/* What the tiers do not take runs on the generic kernel: grouped W4A8, KN weights, u8 and
 * sub-byte B with integer A. */
static void gemm_generic_paths(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {9};
    const mcase cases[] = {
        {17, 33, 100, LLMQ_DTYPE_S8, LLMQ_DTYPE_S4, LLMQ_DTYPE_F32, LLMQ_SYMMETRY_SYMMETRIC,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, LLMQ_GRANULARITY_PER_GROUP, 32, 0,
         1, LLMQ_REQUANT_EXACT, 0},
        {17, 33, 100, LLMQ_DTYPE_U8, LLMQ_DTYPE_U4, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, LLMQ_GRANULARITY_PER_GROUP, 16, 0,
         0, LLMQ_REQUANT_EXACT, 0},
        {20, 31, 64, LLMQ_DTYPE_S8, LLMQ_DTYPE_S8, LLMQ_DTYPE_S32, LLMQ_SYMMETRY_SYMMETRIC,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, LLMQ_GRANULARITY_PER_CHANNEL, 0, 1,
         0, LLMQ_REQUANT_EXACT, 0},
        {9, 40, 77, LLMQ_DTYPE_U8, LLMQ_DTYPE_U8, LLMQ_DTYPE_F16, LLMQ_SYMMETRY_ASYMMETRIC,
         LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, LLMQ_GRANULARITY_PER_CHANNEL, 0,
         0, 1, LLMQ_REQUANT_EXACT, 0},
        {3, 50, 65, LLMQ_DTYPE_S8, LLMQ_DTYPE_S2, LLMQ_DTYPE_BF16, LLMQ_SYMMETRY_SYMMETRIC,
         LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, LLMQ_GRANULARITY_PER_CHANNEL, 0, 0,
         0, LLMQ_REQUANT_EXACT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_mcase(ctx, &cases[i], &r);
    llmq_context_destroy(ctx);
}

/* Weight-only W8A16 / W4A16: the GEMV for aligned shapes, the generic kernel for the rest. */
static void weight_only(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {10};
    static const llmq_dtype as[] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16, LLMQ_DTYPE_F32};
    static const llmq_dtype bs[] = {LLMQ_DTYPE_S4, LLMQ_DTYPE_U4, LLMQ_DTYPE_S8, LLMQ_DTYPE_U8};
    static const llmq_dtype cs[] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_F32, LLMQ_DTYPE_BF16};
    static const int64_t ms[] = {1, 3, 16, 1, 2};
    static const int64_t ks[] = {1024, 1000, 96, 4096, 17};
    static const int64_t groups[] = {128, 32, 64, 0};
    int count = 0;
    for (int i = 0; i < 48; i++) {
        const int64_t g = groups[(i / 3) % 4];
        mcase c = {ms[i % 5], i % 7 == 0 ? 1 : 300, ks[(i / 5 + i) % 5], as[i % 3],
                   bs[(i / 3) % 4], cs[(i / 2) % 3], LLMQ_SYMMETRY_SYMMETRIC,
                   (i / 4) % 2 ? LLMQ_SYMMETRY_ASYMMETRIC : LLMQ_SYMMETRY_SYMMETRIC,
                   LLMQ_GRANULARITY_PER_TENSOR,
                   g ? LLMQ_GRANULARITY_PER_GROUP : LLMQ_GRANULARITY_PER_CHANNEL, g, 0, i % 2,
                   LLMQ_REQUANT_EXACT, 0};
        run_mcase(ctx, &c, &r);
        count++;
    }
    print_message("%d weight-only products within the bound\n", count);
    llmq_context_destroy(ctx);
}

/* More weight-only cases: every path of the tensor-core GEMV (f16 / bf16, s4 / u4, zero
 * points or not, g128 / g256 / per channel, M 1..33, row and column tails, strided A) and the
 * CUDA-core ones. */
static void weight_only_every_path(void **state)
{
    (void)state;
    llmq_context *ctx = cuda_context();
    test_rng r = {11};
    static const llmq_dtype as[] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16, LLMQ_DTYPE_F16,
                                    LLMQ_DTYPE_BF16, LLMQ_DTYPE_F32};
    static const llmq_dtype bs[] = {LLMQ_DTYPE_S4, LLMQ_DTYPE_U4, LLMQ_DTYPE_U4, LLMQ_DTYPE_S4,
                                    LLMQ_DTYPE_S8, LLMQ_DTYPE_U8, LLMQ_DTYPE_S4};
    static const llmq_dtype cs[] = {LLMQ_DTYPE_F16, LLMQ_DTYPE_F32, LLMQ_DTYPE_BF16};
    static const int64_t ms[] = {1, 2, 3, 7, 8, 9, 16, 17, 33, 1, 1};
    static const int64_t ns[] = {1, 15, 16, 17, 40, 300, 33, 1000};
    static const int64_t ks[] = {32, 96, 128, 160, 384, 1024, 4096, 4128, 2048};
    static const int64_t groups[] = {128, 256, 0, 32, 384, 128, 512, 64};
    int count = 0;
    for (int i = 0; i < 260; i++) {
        const int64_t g = groups[i % 8];
        const int64_t m = ms[(i / 3) % 11], n = ns[(i / 2 + i) % 8], k = ks[(i / 5 + 2 * i) % 9];
        if (m * n * k > 60000000)
            continue;
        mcase c = {m, n, k, as[i % 5], bs[(i / 5) % 7], cs[(i / 7) % 3], LLMQ_SYMMETRY_SYMMETRIC,
                   (i / 4) % 2 ? LLMQ_SYMMETRY_ASYMMETRIC : LLMQ_SYMMETRY_SYMMETRIC,
                   LLMQ_GRANULARITY_PER_TENSOR,
                   g ? LLMQ_GRANULARITY_PER_GROUP : LLMQ_GRANULARITY_PER_CHANNEL, g, 0, i % 2,
                   LLMQ_REQUANT_EXACT, i % 11 == 5 ? 16 : 0};
        run_mcase(ctx, &c, &r);
        count++;
    }
    print_message("%d more weight-only products within the bound\n", count);
    llmq_context_destroy(ctx);
}

int main(void)
{
    llmq_context *ctx = NULL;
    const llmq_status st = llmq_context_create(&ctx, "cuda");
    if (st != LLMQ_OK) {
        printf("skipped: %s: %s\n", llmq_status_name(st), llmq_context_last_error(ctx));
        llmq_context_destroy(ctx);
        return 77;
    }
    printf("backend %s\n", llmq_context_backend_name(ctx));
    llmq_context_destroy(ctx);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_round_trip),       cmocka_unit_test(misuse_is_refused),
        cmocka_unit_test(nan_reported_at_sync),    cmocka_unit_test(callers_stream),
        cmocka_unit_test(quantize_matches_cpu),    cmocka_unit_test(ranges_match_cpu),
        cmocka_unit_test(gemm_s32_all_small_shapes), cmocka_unit_test(gemm_epilogues),
        cmocka_unit_test(gemm_generic_paths),      cmocka_unit_test(weight_only),
        cmocka_unit_test(weight_only_every_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
