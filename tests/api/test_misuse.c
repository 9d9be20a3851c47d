/* test_misuse.c - every public function called wrongly: NULLs, unknown enum values, mismatched
 * shapes and dtypes, group size 0, unusable parameters. Each returns its documented status and
 * a message naming the argument; nothing crashes (run under ASan/UBSan in CI).
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "testing.h"

static void context_functions(void **state)
{
    (void)state;
    assert_int_equal(llmq_context_create(NULL, "cpu"), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_context_create_with_options(NULL, NULL), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_context_options_defaults(NULL, 64), LLMQ_ERR_INVALID_ARG);
    llmq_context_destroy(NULL);
    assert_string_equal(llmq_context_last_error(NULL), "");
    assert_string_equal(llmq_context_backend_name(NULL), "");
    assert_int_equal(llmq_context_cpu_isa(NULL), LLMQ_CPU_ISA_DEFAULT);
    assert_int_equal(llmq_context_host_isa(NULL), LLMQ_CPU_ISA_DEFAULT);
    assert_string_equal(llmq_cpu_isa_name((llmq_cpu_isa)-3), "unknown");
    assert_string_equal(llmq_status_name((llmq_status)1234), "LLMQ_ERR_UNKNOWN");
    assert_string_equal(llmq_dtype_name((llmq_dtype)-1), "unknown");
    assert_non_null(llmq_build_info());
}

static void tensor_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {2, 3};
    float buf[6];
    llmq_tensor *t = NULL;
    assert_int_equal(llmq_tensor_create(NULL, LLMQ_DTYPE_F32, 2, shape, &t), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_tensor_wrap(NULL, LLMQ_DTYPE_F32, 2, shape, buf, 0, &t),
                     LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, (llmq_dtype)-1, 2, shape, &t), LLMQ_ERR_INVALID_ARG,
                 "dtype=-1");
    ASSERT_FAILS(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, -1, shape, &t),
                 LLMQ_ERR_INVALID_ARG, "ndim=-1");
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, buf, 0, NULL),
                 LLMQ_ERR_INVALID_ARG, "out=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, NULL, buf, 0, &t),
                 LLMQ_ERR_INVALID_ARG, "shape=NULL");
    assert_null(t);
    llmq_tensor_destroy(NULL);
    assert_int_equal(llmq_tensor_dtype(NULL), LLMQ_DTYPE_F32);
    llmq_context_destroy(ctx);
}

static void scheme_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_scheme *s = NULL;
    assert_int_equal(llmq_scheme_create(NULL, LLMQ_DTYPE_S8, &s), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_scheme_create(ctx, LLMQ_DTYPE_S8, NULL), LLMQ_ERR_INVALID_ARG,
                 "out=NULL");
    ASSERT_FAILS(ctx, llmq_scheme_create(ctx, LLMQ_DTYPE_S32, &s), LLMQ_ERR_INVALID_ARG,
                 "dtype=s32");
    ASSERT_FAILS(ctx, llmq_scheme_create(ctx, (llmq_dtype)77, &s), LLMQ_ERR_INVALID_ARG,
                 "dtype=unknown");
    assert_null(s);
    /* NULL scheme: INVALID_ARG from every setter, zero from every getter */
    assert_int_equal(llmq_scheme_set_symmetry(NULL, LLMQ_SYMMETRY_SYMMETRIC), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_granularity(NULL, LLMQ_GRANULARITY_PER_TENSOR),
                     LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_axis(NULL, 0), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_group_size(NULL, 32), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_rounding(NULL, LLMQ_ROUNDING_HALF_EVEN), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_seed(NULL, 1), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_set_numerics(NULL, LLMQ_NUMERICS_ONNX), LLMQ_ERR_INVALID_ARG);
    int32_t a, b;
    float sc;
    assert_int_equal(llmq_scheme_range(NULL, &a, &b), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_qparams(NULL, 0.0f, 1.0f, &sc, &a), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_scheme_dtype(NULL), 0);
    assert_int_equal(llmq_scheme_symmetry(NULL), 0);
    assert_int_equal(llmq_scheme_granularity(NULL), 0);
    assert_int_equal(llmq_scheme_axis(NULL), 0);
    assert_int_equal(llmq_scheme_group_size(NULL), 0);
    assert_int_equal(llmq_scheme_rounding(NULL), 0);
    assert_int_equal(llmq_scheme_seed(NULL), 0);
    assert_int_equal(llmq_scheme_numerics(NULL), 0);
    llmq_scheme_destroy(NULL);

    ASSERT_OK(ctx, llmq_scheme_create(ctx, LLMQ_DTYPE_U4, &s));
    ASSERT_FAILS(ctx, llmq_scheme_set_symmetry(s, (llmq_symmetry)3), LLMQ_ERR_INVALID_ARG,
                 "llmq_scheme_set_symmetry: symmetry=3: unknown");
    ASSERT_FAILS(ctx, llmq_scheme_set_granularity(s, (llmq_granularity)-1), LLMQ_ERR_INVALID_ARG,
                 "granularity=-1");
    ASSERT_FAILS(ctx, llmq_scheme_set_axis(s, 4), LLMQ_ERR_INVALID_ARG, "axis=4");
    ASSERT_FAILS(ctx, llmq_scheme_set_axis(s, -5), LLMQ_ERR_INVALID_ARG, "axis=-5");
    ASSERT_FAILS(ctx, llmq_scheme_set_group_size(s, 0), LLMQ_ERR_INVALID_ARG,
                 "llmq_scheme_set_group_size: group_size=0: must be >= 1");
    ASSERT_FAILS(ctx, llmq_scheme_set_group_size(s, -32), LLMQ_ERR_INVALID_ARG, "group_size=-32");
    ASSERT_FAILS(ctx, llmq_scheme_set_rounding(s, (llmq_rounding)3), LLMQ_ERR_INVALID_ARG,
                 "rounding=3");
    ASSERT_FAILS(ctx, llmq_scheme_set_numerics(s, (llmq_numerics)2), LLMQ_ERR_INVALID_ARG,
                 "numerics=2");
    ASSERT_FAILS(ctx, llmq_scheme_range(s, NULL, &b), LLMQ_ERR_INVALID_ARG, "qmin=NULL");
    ASSERT_FAILS(ctx, llmq_scheme_qparams(s, 0.0f, 1.0f, &sc, NULL), LLMQ_ERR_INVALID_ARG,
                 "zero_point=NULL");
    /* the rejected values left the scheme as it was */
    assert_int_equal(llmq_scheme_symmetry(s), LLMQ_SYMMETRY_SYMMETRIC);
    assert_int_equal(llmq_scheme_group_size(s), 0);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

static void binding_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {2, 3};
    llmq_tensor *t = NULL, *q = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &t));
    llmq_scheme *s8 = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_CHANNEL, 2, 0);
    llmq_scheme *u4 = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_scheme *grp = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_GROUP, 0, 0);
    assert_int_equal(llmq_tensor_set_scheme(NULL, t, s8), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, NULL, s8), LLMQ_ERR_INVALID_ARG, "t=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, t, NULL), LLMQ_ERR_INVALID_ARG, "scheme=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, t, u4), LLMQ_ERR_INVALID_ARG,
                 "t=s8 tensor: scheme quantizes to u4");
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, t, s8), LLMQ_ERR_INVALID_ARG,
                 "axis=2: out of range for a 2-dimensional tensor");
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, t, grp), LLMQ_ERR_INVALID_ARG,
                 "group_size=0: PER_GROUP needs llmq_scheme_set_group_size()");
    assert_null(llmq_tensor_scheme(t));
    ASSERT_FAILS(ctx, llmq_tensor_create_quantized(ctx, NULL, 2, shape, &q), LLMQ_ERR_INVALID_ARG,
                 "scheme=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_create_quantized(ctx, u4, 2, shape, NULL), LLMQ_ERR_INVALID_ARG,
                 "out=NULL");
    ASSERT_FAILS(ctx, llmq_tensor_create_quantized(ctx, grp, 2, shape, &q), LLMQ_ERR_INVALID_ARG,
                 "group_size=0");
    assert_null(q);
    llmq_tensor_destroy(t);
    llmq_scheme_destroy(s8);
    llmq_scheme_destroy(u4);
    llmq_scheme_destroy(grp);
    llmq_context_destroy(ctx);
}

static void quantize_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {2, 3}, other[2] = {3, 2};
    float xbuf[6] = {0};
    llmq_tensor *x = test_wrap_f32(ctx, xbuf, 2, shape), *xo = NULL, *bare = NULL, *q = NULL,
                *s32 = NULL, *alias = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, other, &xo));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &bare));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S32, 2, shape, &s32));
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, shape, xbuf, 0, &alias));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, alias, s));

    typedef llmq_status (*qfn)(llmq_context *, const llmq_tensor *, llmq_tensor *);
    const qfn fns[2] = {llmq_quantize, llmq_quantize_dynamic};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fns[i](NULL, x, q), LLMQ_ERR_INVALID_ARG);
        ASSERT_FAILS(ctx, fns[i](ctx, NULL, q), LLMQ_ERR_INVALID_ARG, "src=NULL");
        ASSERT_FAILS(ctx, fns[i](ctx, x, NULL), LLMQ_ERR_INVALID_ARG, "dst=NULL");
        ASSERT_FAILS(ctx, fns[i](ctx, xo, q), LLMQ_ERR_INVALID_ARG,
                     "dst=[2, 3]: shape differs from src=[3, 2]");
        ASSERT_FAILS(ctx, fns[i](ctx, s32, q), LLMQ_ERR_INVALID_ARG, "src=s32 tensor");
        ASSERT_FAILS(ctx, fns[i](ctx, x, s32), LLMQ_ERR_INVALID_ARG, "dst=s32 tensor");
        ASSERT_FAILS(ctx, fns[i](ctx, x, bare), LLMQ_ERR_STATE, "dst: s8 tensor has no scheme");
        ASSERT_FAILS(ctx, fns[i](ctx, x, alias), LLMQ_ERR_INVALID_ARG, "overlaps src");
    }
    /* unusable parameter values */
    float *sc = llmq_tensor_data(llmq_tensor_scale(q));
    int32_t *zp = llmq_tensor_data(llmq_tensor_zero_point(q));
    const float bad_scales[] = {0.0f, -1.0f, NAN, INFINITY, FLT_MIN / 4};
    for (size_t i = 0; i < sizeof bad_scales / sizeof bad_scales[0]; i++) {
        sc[0] = bad_scales[i];
        ASSERT_FAILS(ctx, llmq_quantize(ctx, x, q), LLMQ_ERR_INVALID_ARG,
                     "dst.scale[0]=");
    }
    sc[0] = 1.0f;
    zp[0] = 200;
    ASSERT_FAILS(ctx, llmq_quantize(ctx, x, q), LLMQ_ERR_INVALID_ARG,
                 "llmq_quantize: dst.zero_point[0]=200: outside the s8 grid [-128, 127]");
    zp[0] = 0;
    ASSERT_OK(ctx, llmq_quantize(ctx, x, q));

    /* dequantize */
    assert_int_equal(llmq_dequantize(NULL, q, x), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, NULL, x), LLMQ_ERR_INVALID_ARG, "src=NULL");
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, x, q), LLMQ_ERR_INVALID_ARG, "src=f32 tensor");
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, q, s32), LLMQ_ERR_INVALID_ARG, "dst=s32 tensor");
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, bare, x), LLMQ_ERR_STATE, "src: s8 tensor has no scheme");
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, q, xo), LLMQ_ERR_INVALID_ARG, "shape differs");
    sc[0] = -2.0f;
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, q, x), LLMQ_ERR_INVALID_ARG, "src.scale[0]=-2");
    sc[0] = 1.0f;

    llmq_tensor_destroy(x);
    llmq_tensor_destroy(xo);
    llmq_tensor_destroy(bare);
    llmq_tensor_destroy(s32);
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(alias);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

static void pack_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[1] = {5}, other[1] = {6};
    llmq_tensor *s8 = NULL, *u8 = NULL, *s4 = NULL, *u2 = NULL, *s4o = NULL, *f = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 1, shape, &s8));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U8, 1, shape, &u8));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S4, 1, shape, &s4));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U2, 1, shape, &u2));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S4, 1, other, &s4o));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, shape, &f));
    assert_int_equal(llmq_pack(NULL, s8, s4), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_pack(ctx, s8, NULL), LLMQ_ERR_INVALID_ARG, "dst=NULL");
    ASSERT_FAILS(ctx, llmq_pack(ctx, s8, u8), LLMQ_ERR_INVALID_ARG,
                 "dst=u8 tensor: must be s4, u4, s2 or u2");
    ASSERT_FAILS(ctx, llmq_pack(ctx, u8, s4), LLMQ_ERR_INVALID_ARG,
                 "src=u8 tensor: packing into s4 needs s8 codes");
    ASSERT_FAILS(ctx, llmq_pack(ctx, s8, u2), LLMQ_ERR_INVALID_ARG, "needs u8 codes");
    ASSERT_FAILS(ctx, llmq_pack(ctx, s8, s4o), LLMQ_ERR_INVALID_ARG, "shape differs");
    ((int8_t *)llmq_tensor_data(s8))[2] = -9;
    ASSERT_FAILS(ctx, llmq_pack(ctx, s8, s4), LLMQ_ERR_INVALID_ARG,
                 "llmq_pack: src[2]=-9: outside the s4 grid [-8, 7]");
    assert_int_equal(llmq_unpack(NULL, s4, s8), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_unpack(ctx, f, s8), LLMQ_ERR_INVALID_ARG, "src=f32 tensor");
    ASSERT_FAILS(ctx, llmq_unpack(ctx, s4, u8), LLMQ_ERR_INVALID_ARG,
                 "dst=u8 tensor: unpacking s4 needs s8");
    ASSERT_FAILS(ctx, llmq_unpack(ctx, s4o, s8), LLMQ_ERR_INVALID_ARG, "shape differs");
    llmq_tensor_destroy(s8);
    llmq_tensor_destroy(u8);
    llmq_tensor_destroy(s4);
    llmq_tensor_destroy(u2);
    llmq_tensor_destroy(s4o);
    llmq_tensor_destroy(f);
    llmq_context_destroy(ctx);
}

static void thread_and_packing_functions(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    assert_int_equal(llmq_context_set_threads(NULL, 2), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_context_threads(NULL), 0);
    assert_int_equal(llmq_context_threads(ctx), 1);
    ASSERT_FAILS(ctx, llmq_context_set_threads(ctx, -1), LLMQ_ERR_INVALID_ARG, "threads=-1");
    ASSERT_FAILS(ctx, llmq_context_set_threads(ctx, LLMQ_MAX_THREADS + 1), LLMQ_ERR_INVALID_ARG,
                 "threads=1025: must be 0 (one per online CPU) to 1024");
    assert_int_equal(llmq_context_threads(ctx), 1);
    ASSERT_OK(ctx, llmq_context_set_threads(ctx, 3));
    assert_int_equal(llmq_context_threads(ctx), 3);
    ASSERT_OK(ctx, llmq_context_set_threads(ctx, 0));
    assert_true(llmq_context_threads(ctx) >= 1);
    ASSERT_OK(ctx, llmq_context_set_threads(ctx, 1));

    int8_t bv[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
    uint8_t b4[6] = {0};
    llmq_scheme *s8 = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_scheme *sg = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_GROUP, 0, 2);
    llmq_scheme *s4 = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_scheme *s2 = test_scheme(ctx, LLMQ_DTYPE_S2, LLMQ_SYMMETRY_SYMMETRIC,
                                  LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    llmq_tensor *b = NULL, *bg = NULL, *bs4 = NULL, *bs2 = NULL, *bare = NULL, *f = NULL,
                *p = NULL;
    const int64_t shape[2] = {2, 6};
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, shape, bv, 0, &b));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, b, s8));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, shape, bv, 0, &bg));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, bg, sg));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S4, 2, shape, b4, 0, &bs4));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, bs4, s4));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S2, 2, shape, b4, 0, &bs2));
    ASSERT_OK(ctx, llmq_tensor_set_scheme(ctx, bs2, s2));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S8, 2, shape, bv, 0, &bare));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &f));
    assert_int_equal(llmq_matmul_pack_weights(NULL, b, NULL, &p), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, b, NULL, NULL), LLMQ_ERR_INVALID_ARG,
                 "packed=NULL");
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, NULL, NULL, &p), LLMQ_ERR_INVALID_ARG, "b=NULL");
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, f, NULL, &p), LLMQ_ERR_INVALID_ARG,
                 "b=f32 tensor");
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, bare, NULL, &p), LLMQ_ERR_STATE,
                 "b: s8 tensor has no scheme");
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, bg, NULL, &p), LLMQ_ERR_UNSUPPORTED,
                 "parameters vary along K=6");
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, bs2, NULL, &p), LLMQ_ERR_UNSUPPORTED,
                 "b=s2 tensor: only 8-bit and 4-bit weights are packed");
    llmq_matmul_options o;
    ASSERT_OK(ctx, llmq_matmul_options_defaults(&o, sizeof o));
    o.weight_layout = LLMQ_WEIGHT_LAYOUT_KN;
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, bs4, &o, &p), LLMQ_ERR_INVALID_ARG,
                 "options.weight_layout=KN: 4-bit weights are [N, K]");
    o.weight_layout = LLMQ_WEIGHT_LAYOUT_NK;
    ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, bs4, NULL, &p)); /* s4 per tensor: packed */
    assert_int_equal(llmq_tensor_is_packed(p), 1);
    llmq_tensor_destroy(p);
    p = NULL;
    o.reserved[1] = 7;
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, b, &o, &p), LLMQ_ERR_ABI, "options.size");
    assert_null(p);
    assert_int_equal(llmq_tensor_is_packed(NULL), 0);
    assert_int_equal(llmq_tensor_is_packed(b), 0);
    ASSERT_OK(ctx, llmq_matmul_pack_weights(ctx, b, NULL, &p));
    assert_int_equal(llmq_tensor_is_packed(p), 1);
    assert_int_equal(llmq_tensor_dim(p, 0), 2);
    assert_int_equal(llmq_tensor_dim(p, 1), 6);
    llmq_tensor *p2 = NULL;
    ASSERT_FAILS(ctx, llmq_matmul_pack_weights(ctx, p, NULL, &p2), LLMQ_ERR_INVALID_ARG,
                 "b=packed: already packed");
    /* a packed tensor is only a matmul weight */
    llmq_tensor *y = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, shape, &y));
    ASSERT_FAILS(ctx, llmq_dequantize(ctx, p, y), LLMQ_ERR_INVALID_ARG,
                 "src=packed: a tensor from llmq_matmul_pack_weights() is only usable as the "
                 "weights of llmq_matmul");
    ASSERT_FAILS(ctx, llmq_quantize(ctx, y, p), LLMQ_ERR_INVALID_ARG, "dst=packed");
    ASSERT_FAILS(ctx, llmq_tensor_set_scheme(ctx, p, s8), LLMQ_ERR_INVALID_ARG, "t=packed");
    llmq_tensor *c = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, (const int64_t[]){2, 2}, &c));
    ASSERT_FAILS(ctx, llmq_matmul(ctx, p, p, NULL, c), LLMQ_ERR_INVALID_ARG, "a=packed");
    o.reserved[1] = 0;
    o.weight_layout = LLMQ_WEIGHT_LAYOUT_KN;
    ASSERT_FAILS(ctx, llmq_matmul_with_options(ctx, b, p, NULL, c, &o), LLMQ_ERR_INVALID_ARG,
                 "options.weight_layout=KN: b is packed");
    ASSERT_OK(ctx, llmq_matmul(ctx, b, p, NULL, c));
    /* [[1..6] . [1..6], [1..6] . -[1..6]] = 91, -91 */
    assert_true(((const float *)llmq_tensor_data(c))[0] == 91.0f);
    assert_true(((const float *)llmq_tensor_data(c))[1] == -91.0f);
    llmq_tensor *all[] = {b, bg, bs4, bs2, bare, f, p, y, c};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        llmq_tensor_destroy(all[i]);
    llmq_scheme_destroy(s8);
    llmq_scheme_destroy(sg);
    llmq_scheme_destroy(s4);
    llmq_scheme_destroy(s2);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(context_functions), cmocka_unit_test(tensor_functions),
        cmocka_unit_test(scheme_functions),  cmocka_unit_test(binding_functions),
        cmocka_unit_test(quantize_functions), cmocka_unit_test(pack_functions),
        cmocka_unit_test(thread_and_packing_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
