/* test_qat_misuse.c - the QAT functions and llmq_scheme_set_range called wrongly: NULLs,
 * dtypes, shapes, parameter shapes and values, overlaps, a failing allocator and a backend
 * without fake-quant kernels. Each returns its documented status and a message naming the
 * argument; nothing crashes (run under ASan/UBSan in CI). Also the custom range's effect on
 * the rest of the scheme API. SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context_impl.h"
#include "testing.h"

static void set_range_rules(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    assert_int_equal(llmq_scheme_set_range(NULL, -4, 3), LLMQ_ERR_INVALID_ARG);
    llmq_scheme *s4 = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_FAILS(ctx, llmq_scheme_set_range(s4, -9, 3), LLMQ_ERR_INVALID_ARG,
                 "llmq_scheme_set_range: qmin=-9: outside the s4 grid [-8, 7]");
    ASSERT_FAILS(ctx, llmq_scheme_set_range(s4, -4, 8), LLMQ_ERR_INVALID_ARG,
                 "qmax=8: outside the s4 grid [-8, 7]");
    ASSERT_FAILS(ctx, llmq_scheme_set_range(s4, 3, 3), LLMQ_ERR_INVALID_ARG,
                 "qmin=3: must be below qmax=3");
    ASSERT_FAILS(ctx, llmq_scheme_set_range(s4, 2, -2), LLMQ_ERR_INVALID_ARG, "qmin=2");
    ASSERT_FAILS(ctx, llmq_scheme_set_range(s4, 1, 5), LLMQ_ERR_INVALID_ARG,
                 "qmin=1: a signed range must include 0");
    int32_t lo, hi;
    ASSERT_OK(ctx, llmq_scheme_range(s4, &lo, &hi)); /* unchanged: restricted [-7, 7] */
    assert_true(lo == -7 && hi == 7);
    /* the range replaces the grid; restriction drops no further code */
    ASSERT_OK(ctx, llmq_scheme_set_range(s4, -4, 3));
    ASSERT_OK(ctx, llmq_scheme_range(s4, &lo, &hi));
    assert_true(lo == -4 && hi == 3);
    /* 0, 0 clears it */
    ASSERT_OK(ctx, llmq_scheme_set_range(s4, 0, 0));
    ASSERT_OK(ctx, llmq_scheme_range(s4, &lo, &hi));
    assert_true(lo == -7 && hi == 7);
    /* unsigned: any sub-range; the symmetric zero point is the midpoint rounded up */
    llmq_scheme *u8 =
        test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_FAILS(ctx, llmq_scheme_set_range(u8, -1, 15), LLMQ_ERR_INVALID_ARG,
                 "qmin=-1: outside the u8 grid [0, 255]");
    ASSERT_OK(ctx, llmq_scheme_set_range(u8, 0, 15));
    float sc;
    int32_t zp;
    ASSERT_OK(ctx, llmq_scheme_qparams(u8, -1.0f, 2.0f, &sc, &zp));
    assert_true(sc == 2.0f / 7.5f && zp == 8); /* PyTorch: (0 + 15) // 2 = 7 (docs/qat.md) */
    ASSERT_OK(ctx, llmq_scheme_set_range(u8, 1, 200));
    ASSERT_OK(ctx, llmq_scheme_qparams(u8, -1.0f, 2.0f, &sc, &zp));
    assert_true(zp == 101);
    ASSERT_OK(ctx, llmq_scheme_set_symmetry(u8, LLMQ_SYMMETRY_ASYMMETRIC));
    ASSERT_OK(ctx, llmq_scheme_set_range(u8, 0, 15)); /* PyTorch's 4-bit quint8 observer */
    ASSERT_OK(ctx, llmq_scheme_qparams(u8, -1.0f, 2.0f, &sc, &zp));
    assert_true(sc == 3.0f / 15.0f && zp == 5);
    /* quantize honours the range, and the zero-point check uses it */
    const int64_t shape[1] = {4};
    float x[4] = {-100.0f, -0.2f, 0.2f, 100.0f};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *q = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s4, 1, shape, &q));
    ASSERT_OK(ctx, llmq_scheme_set_range(s4, -4, 3)); /* after binding: q keeps its copy */
    llmq_tensor_destroy(q);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s4, 1, shape, &q));
    ASSERT_OK(ctx, llmq_quantize(ctx, tx, q)); /* scale 1, zp 0 */
    int8_t codes[4];
    llmq_tensor *t8 = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 1, shape, codes, 0, &t8));
    ASSERT_OK(ctx, llmq_unpack(ctx, q, t8));
    assert_true(codes[0] == -4 && codes[1] == 0 && codes[3] == 3);
    ((int32_t *)llmq_tensor_data(llmq_tensor_zero_point(q)))[0] = 5;
    ASSERT_FAILS(ctx, llmq_quantize(ctx, tx, q), LLMQ_ERR_INVALID_ARG,
                 "dst.zero_point[0]=5: outside the s4 grid [-4, 3]");
    TEST_DESTROY(t8, q, tx);
    llmq_scheme_destroy(s4);
    llmq_scheme_destroy(u8);
    llmq_context_destroy(ctx);
}

typedef struct fixture {
    llmq_context *ctx;
    llmq_scheme *s;                 /* s8 asymmetric per channel on axis 0 of [2, 3] */
    float x[6], y[6], dy[6], dx[6]; /* [2, 3] */
    float scale[2], dscale[2], dzp[2], zpf[2];
    int32_t zp[2];
    llmq_tensor *tx, *ty, *tdy, *tdx, *sc, *zpt, *zpft, *ds, *dz;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->ctx = test_context();
    const int64_t shape[2] = {2, 3}, two[1] = {2};
    f->s = test_scheme(f->ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_ASYMMETRIC,
                       LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    f->scale[0] = f->scale[1] = 0.5f;
    f->tx = test_wrap_f32(f->ctx, f->x, 2, shape);
    f->ty = test_wrap_f32(f->ctx, f->y, 2, shape);
    f->tdy = test_wrap_f32(f->ctx, f->dy, 2, shape);
    f->tdx = test_wrap_f32(f->ctx, f->dx, 2, shape);
    f->sc = test_wrap_f32(f->ctx, f->scale, 1, two);
    f->ds = test_wrap_f32(f->ctx, f->dscale, 1, two);
    f->dz = test_wrap_f32(f->ctx, f->dzp, 1, two);
    f->zpft = test_wrap_f32(f->ctx, f->zpf, 1, two);
    ASSERT_OK(f->ctx, llmq_tensor_wrap(f->ctx, LLMQ_DTYPE_S32, 1, two, f->zp, 0, &f->zpt));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    TEST_DESTROY(f->tx, f->ty, f->tdy, f->tdx, f->sc, f->zpt, f->zpft, f->ds, f->dz);
    llmq_scheme_destroy(f->s);
    llmq_context_destroy(f->ctx);
    free(f);
    return 0;
}

static void forward_misuse(void **state)
{
    fixture *f = *state;
    llmq_context *ctx = f->ctx;
    llmq_scheme *s = f->s;
    const int64_t shape[2] = {2, 3}, other[2] = {3, 2}, three[1] = {3};
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, f->zpt, f->ty));
    assert_int_equal(llmq_fake_quantize(NULL, f->tx, s, f->sc, NULL, f->ty), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, NULL, s, f->sc, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "llmq_fake_quantize: x=NULL: must be a tensor");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, NULL, f->sc, NULL, f->ty),
                 LLMQ_ERR_INVALID_ARG, "scheme=NULL: must be a scheme");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, NULL, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "scale=NULL");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "y=NULL");
    /* dtypes and shapes */
    llmq_tensor *s32 = NULL, *xo = NULL, *u8p = NULL, *sc3 = NULL, *sc2d = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 2, shape, &s32));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, other, &xo));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U8, 1, (const int64_t[]){2}, &u8p));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, three, &sc3));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){2, 1}, &sc2d));
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, s32, s, f->sc, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "x=s32 tensor: must be f32, f16 or bf16");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, NULL, s32), LLMQ_ERR_INVALID_ARG,
                 "y=s32 tensor");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, NULL, xo), LLMQ_ERR_INVALID_ARG,
                 "y=[3, 2]: shape differs from x=[2, 3]");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, u8p, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "scale=u8 tensor: must be f32");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, u8p, f->ty), LLMQ_ERR_INVALID_ARG,
                 "zero_point=u8 tensor: must be f32 or s32");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, sc3, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "scale=[3]: the scheme's parameters for x=[2, 3] are shaped [2]");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, sc2d, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "scale=[2, 1]: the scheme's parameters");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, sc3, f->ty), LLMQ_ERR_INVALID_ARG,
                 "zero_point=[3]");
    /* scheme problems surface as the scheme's layout rules */
    llmq_scheme *ax = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 2, 0);
    llmq_scheme *grp =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 0, 0);
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, ax, f->sc, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "llmq_fake_quantize: axis=2: out of range for a 2-dimensional tensor");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, grp, f->sc, NULL, f->ty), LLMQ_ERR_INVALID_ARG,
                 "group_size=0: PER_GROUP needs");
    /* per-group parameters must have packed rows */
    float wide[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    llmq_tensor *strided = NULL;
    ASSERT_OK(ctx, llmq_scheme_set_group_size(grp, 2)); /* [2, 3] -> parameters [2, 2] */
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){2, 2}, wide,
                                    4 * sizeof(float), &strided));
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, grp, strided, NULL, f->ty),
                 LLMQ_ERR_INVALID_ARG, "scale: row_stride=16: parameter rows must be packed");
    /* values */
    const float bad_scales[] = {0.0f, -1.0f, NAN, INFINITY, FLT_MIN / 4};
    for (size_t i = 0; i < sizeof bad_scales / sizeof bad_scales[0]; i++) {
        f->scale[1] = bad_scales[i];
        ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, NULL, f->ty),
                     LLMQ_ERR_INVALID_ARG, "scale[1]=");
    }
    f->scale[1] = 0.5f;
    f->zp[0] = 128;
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, f->zpt, f->ty), LLMQ_ERR_INVALID_ARG,
                 "zero_point[0]=128: outside the grid [-128, 127]");
    f->zp[0] = 0;
    f->zpf[1] = NAN;
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, f->zpft, f->ty),
                 LLMQ_ERR_INVALID_ARG, "zero_point[1]=nan: must be finite");
    f->zpf[1] = -INFINITY;
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, f->zpft, f->ty),
                 LLMQ_ERR_INVALID_ARG, "zero_point[1]=-inf");
    f->zpf[1] = 1e30f; /* finite: clamped, accepted */
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, f->zpft, f->ty));
    /* overlaps: y may be x itself, nothing else */
    float buf[7] = {0};
    llmq_tensor *a = NULL, *b = NULL, *a16 = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, buf, 0, &a));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, buf + 1, 0, &b));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F16, 2, shape, buf, 0, &a16));
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, a, s, f->sc, NULL, a));
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, a, s, f->sc, NULL, b), LLMQ_ERR_INVALID_ARG,
                 "overlaps x=");
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, a, s, f->sc, NULL, a16), LLMQ_ERR_INVALID_ARG, "y=");
    llmq_tensor *over_scale = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, f->scale, 0, &over_scale));
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, s, f->sc, NULL, over_scale),
                 LLMQ_ERR_INVALID_ARG, "overlaps scale=");
    TEST_DESTROY(s32, xo, u8p, sc3, sc2d, strided, a, b, a16, over_scale);
    llmq_scheme_destroy(ax);
    llmq_scheme_destroy(grp);
}

static void backward_misuse(void **state)
{
    fixture *f = *state;
    llmq_context *ctx = f->ctx;
    llmq_scheme *s = f->s;
    const int64_t shape[2] = {2, 3}, other[2] = {3, 2};
#define BWD(X, SC, ZP, DY, GF, DX, DS, DZ)                                                         \
    llmq_fake_quantize_backward(ctx, X, s, SC, ZP, DY, GF, DX, DS, DZ)
    ASSERT_OK(ctx, BWD(f->tx, f->sc, f->zpft, f->tdy, 1.0f, f->tdx, f->ds, f->dz));
    assert_int_equal(
        llmq_fake_quantize_backward(NULL, f->tx, s, f->sc, NULL, f->tdy, 1.0f, f->tdx, NULL, NULL),
        LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, BWD(NULL, f->sc, NULL, f->tdy, 1.0f, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "llmq_fake_quantize_backward: x=NULL");
    ASSERT_FAILS(ctx,
                 llmq_fake_quantize_backward(ctx, f->tx, NULL, f->sc, NULL, f->tdy, 1.0f, f->tdx,
                                             NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "scheme=NULL");
    ASSERT_FAILS(ctx, BWD(f->tx, NULL, NULL, f->tdy, 1.0f, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "scale=NULL");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, NULL, 1.0f, f->tdx, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dy=NULL");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, NULL, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dx=NULL");
    llmq_tensor *s8 = NULL, *xo = NULL, *p3 = NULL, *s32p = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &s8));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, other, &xo));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, (const int64_t[]){3}, &p3));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 1, (const int64_t[]){2}, &s32p));
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, s8, 1.0f, f->tdx, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dy=s8 tensor: must be f32, f16 or bf16");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, xo, 1.0f, f->tdx, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dy=[3, 2]: shape differs from x=[2, 3]");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, xo, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dx=[3, 2]: shape differs");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, s8, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "dx=s8 tensor");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, INFINITY, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "grad_factor=inf: must be finite");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, NAN, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "grad_factor=nan");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdx, p3, NULL), LLMQ_ERR_INVALID_ARG,
                 "dscale=[3]: the scheme's parameters for x=[2, 3]");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdx, s32p, NULL),
                 LLMQ_ERR_INVALID_ARG, "dscale=s32 tensor: must be f32");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdx, NULL, f->dz),
                 LLMQ_ERR_INVALID_ARG, "needs a zero_point tensor (zero_point=NULL)");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, f->zpt, f->tdy, 1.0f, f->tdx, NULL, p3),
                 LLMQ_ERR_INVALID_ARG, "dzero_point=[3]");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, f->zpt, f->tdy, 1.0f, f->tdx, NULL, s32p),
                 LLMQ_ERR_INVALID_ARG, "dzero_point=s32 tensor");
    /* an S32 zero point has a gradient too */
    ASSERT_OK(ctx, BWD(f->tx, f->sc, f->zpt, f->tdy, 1.0f, f->tdx, f->ds, f->dz));
    /* overlaps: dx may be dy itself; nothing else may overlap */
    ASSERT_OK(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdy, NULL, NULL));
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "dx=");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdx, f->sc, NULL),
                 LLMQ_ERR_INVALID_ARG, "dscale=");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, f->zpft, f->tdy, 1.0f, f->tdx, f->ds, f->zpft),
                 LLMQ_ERR_INVALID_ARG, "overlaps zero_point=");
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, f->zpft, f->tdy, 1.0f, f->tdx, f->ds, f->ds),
                 LLMQ_ERR_INVALID_ARG, "dzero_point=");
    /* parameter values are checked as in the forward */
    f->scale[0] = -1.0f;
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, NULL, f->tdy, 1.0f, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "llmq_fake_quantize_backward: scale[0]=-1");
    f->scale[0] = 0.5f;
    f->zp[1] = -129;
    ASSERT_FAILS(ctx, BWD(f->tx, f->sc, f->zpt, f->tdy, 1.0f, f->tdx, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "zero_point[1]=-129");
    f->zp[1] = 0;
#undef BWD
    TEST_DESTROY(s8, xo, p3, s32p);
}

/* A backend whose table has no fake-quant slots, and which is no CPU tier: UNSUPPORTED. */
static void backend_without_kernels(void **state)
{
    fixture *f = *state;
    llmq_context *ctx = f->ctx;
    const llmq_backend_ops *saved = ctx->backend.ops;
    llmq_backend_ops bare = *saved;
    bare.name = "bare";
    bare.fake_quantize = NULL;
    bare.fake_quantize_backward = NULL;
    ctx->backend.ops = &bare;
    ASSERT_FAILS(ctx, llmq_fake_quantize(ctx, f->tx, f->s, f->sc, NULL, f->ty),
                 LLMQ_ERR_UNSUPPORTED,
                 "llmq_fake_quantize: backend=bare: has no fake-quantization kernel");
    ASSERT_FAILS(ctx,
                 llmq_fake_quantize_backward(ctx, f->tx, f->s, f->sc, NULL, f->tdy, 1.0f, f->tdx,
                                             NULL, NULL),
                 LLMQ_ERR_UNSUPPORTED, "backend=bare");
    ctx->backend.ops = saved;
}

typedef struct failing {
    long calls, fail_at;
} failing;

static void *fail_alloc(void *user, size_t size, size_t alignment)
{
    failing *a = user;
    if (a->calls++ == a->fail_at)
        return NULL;
    void *p = NULL;
    return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

static void plain_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

/* The backward's scratch for the sums is the one allocation: its failure is reported. */
static void backward_out_of_memory(void **state)
{
    (void)state;
    failing a = {0, -1};
    llmq_context_options o;
    ASSERT_OK(NULL, llmq_context_options_defaults(&o, sizeof o));
    o.allocator = (llmq_allocator){fail_alloc, plain_free, &a};
    llmq_context *ctx = NULL;
    ASSERT_OK(ctx, llmq_context_create_with_options(&ctx, &o));
    float x[4] = {1, 2, 3, 4}, dy[4] = {1, 1, 1, 1}, dx[4], sv = 1.0f, ds;
    const int64_t shape[1] = {4}, one[1] = {1};
    llmq_tensor *tx = test_wrap_f32(ctx, x, 1, shape), *tdy = test_wrap_f32(ctx, dy, 1, shape),
                *tdx = test_wrap_f32(ctx, dx, 1, shape), *sc = test_wrap_f32(ctx, &sv, 1, one),
                *tds = test_wrap_f32(ctx, &ds, 1, one);
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    a.fail_at = a.calls; /* the next allocation */
    ASSERT_FAILS(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tdy, 1.0f, tdx, tds, NULL),
                 LLMQ_ERR_OUT_OF_MEMORY, "llmq_fake_quantize_backward: gradient sums");
    /* without parameter gradients nothing is allocated */
    a.fail_at = a.calls;
    ASSERT_OK(ctx, llmq_fake_quantize_backward(ctx, tx, s, sc, NULL, tdy, 1.0f, tdx, NULL, NULL));
    ASSERT_OK(ctx, llmq_fake_quantize(ctx, tx, s, sc, NULL, tdx));
    TEST_DESTROY(tx, tdy, tdx, sc, tds);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_range_rules),
        cmocka_unit_test_setup_teardown(forward_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(backward_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(backend_without_kernels, setup, teardown),
        cmocka_unit_test(backward_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
