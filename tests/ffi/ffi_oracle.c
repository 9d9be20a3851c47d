/* ffi_oracle.c - results of the C API that the Python binding must reproduce bit for bit.
 * SPDX-License-Identifier: MIT
 *
 * usage: ffi_oracle DIR
 * Writes DIR/manifest.txt, one line per array: "name dtype d0 d1 ...", and DIR/<name>.bin with
 * its bytes (packed rows for sub-byte dtypes, parameters as F32 / S32), plus DIR/table.yaml, a
 * parameter table of the calibration cases. Inputs come first, then the outputs of each case;
 * tests/ffi/test_binding.py repeats every case through llmq.py on the same inputs and compares
 * the bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmq.h"

static const char *dir;
static FILE *manifest;
static llmq_context *ctx;

static void check(llmq_status st, const char *what)
{
    if (st != LLMQ_OK) {
        fprintf(stderr, "ffi_oracle: %s: %s: %s\n", what, llmq_status_name(st),
                llmq_context_last_error(ctx));
        exit(1);
    }
}

/* Write t's elements (rows packed, in order) as DIR/name.bin and a manifest line. */
static void dump(const char *name, const llmq_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    const int64_t cols = llmq_tensor_dim(t, -1);
    const int64_t rows = llmq_tensor_numel(t) / cols;
    const int64_t bits = llmq_dtype_bits(llmq_tensor_dtype(t));
    const size_t row_bytes = (size_t)((cols * bits + 7) / 8);
    const unsigned char *data = llmq_tensor_data(t);
    for (int64_t r = 0; r < rows; r++)
        fwrite(data + (size_t)r * llmq_tensor_row_stride(t), 1, row_bytes, f);
    fclose(f);
    fprintf(manifest, "%s %s", name, llmq_dtype_name(llmq_tensor_dtype(t)));
    for (int32_t i = 0; i < llmq_tensor_ndim(t); i++)
        fprintf(manifest, " %lld", (long long)llmq_tensor_dim(t, i));
    fprintf(manifest, "\n");
}

/* Quantized tensor: its codes, scale and zero point. */
static void dump_quantized(const char *name, const llmq_tensor *t)
{
    char buf[256];
    dump(name, t);
    snprintf(buf, sizeof buf, "%s.scale", name);
    dump(buf, llmq_tensor_scale(t));
    snprintf(buf, sizeof buf, "%s.zero_point", name);
    dump(buf, llmq_tensor_zero_point(t));
}

static llmq_tensor *new_tensor(llmq_dtype dtype, int64_t rows, int64_t cols)
{
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *t = NULL;
    check(llmq_tensor_create(ctx, dtype, 2, shape, &t), "tensor");
    return t;
}

static llmq_scheme *new_scheme(llmq_dtype dtype, llmq_symmetry sym, llmq_granularity gran,
                               int64_t group)
{
    llmq_scheme *s = NULL;
    check(llmq_scheme_create(ctx, dtype, &s), "scheme");
    check(llmq_scheme_set_symmetry(s, sym), "symmetry");
    check(llmq_scheme_set_granularity(s, gran), "granularity");
    if (group > 0)
        check(llmq_scheme_set_group_size(s, group), "group");
    return s;
}

static llmq_tensor *quantized(const llmq_scheme *s, int64_t rows, int64_t cols)
{
    const int64_t shape[2] = {rows, cols};
    llmq_tensor *t = NULL;
    check(llmq_tensor_create_quantized(ctx, s, 2, shape, &t), "quantized tensor");
    return t;
}

static llmq_tensor *vector(llmq_dtype dtype, int64_t n)
{
    llmq_tensor *t = NULL;
    check(llmq_tensor_create(ctx, dtype, 1, &n, &t), "vector");
    return t;
}

/* A quantizer of scheme s with one setting (key < 0: none), after observing the batches. */
static llmq_quantizer *calibrated(const llmq_scheme *s, llmq_observer observer, int key,
                                  double value, llmq_tensor *const *batches, int n)
{
    llmq_quantizer *q = NULL;
    check(llmq_quantizer_create(ctx, s, observer, &q), "quantizer");
    if (key >= 0)
        check(llmq_quantizer_set_param(q, (llmq_observer_param)key, value), "set_param");
    for (int i = 0; i < n; i++)
        check(llmq_quantizer_observe(ctx, q, batches[i]), "observe");
    check(llmq_quantizer_finalize(ctx, q), "finalize");
    return q;
}

/* A quantizer's scale, zero point and clipping range as name.scale, ... */
static void dump_calibrated(const char *name, const llmq_quantizer *q)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s.scale", name);
    dump(buf, llmq_quantizer_scale(q));
    snprintf(buf, sizeof buf, "%s.zero_point", name);
    dump(buf, llmq_quantizer_zero_point(q));
    snprintf(buf, sizeof buf, "%s.range", name);
    dump(buf, llmq_quantizer_range(q));
}

/* Deterministic inputs: an LCG mapped to [-1, 1), with a few large values. */
static void fill(llmq_tensor *t, uint32_t seed)
{
    float *p = llmq_tensor_data(t);
    const int64_t n = llmq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
        if (i % 97 == 13)
            p[i] *= 6.0f;
    }
}

int main(int argc, char **argv)
{
    enum { M = 7, N = 48, K = 200 };
    if (argc != 2) {
        fprintf(stderr, "usage: ffi_oracle DIR\n");
        return 2;
    }
    dir = argv[1];
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    manifest = fopen(path, "w");
    if (manifest == NULL) {
        perror(path);
        return 1;
    }
    check(llmq_context_create(&ctx, "cpu"), "context");

    llmq_tensor *x = new_tensor(LLMQ_DTYPE_F32, M, K), *w = new_tensor(LLMQ_DTYPE_F32, N, K);
    llmq_tensor *bias = NULL;
    const int64_t nshape[1] = {N};
    check(llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, nshape, &bias), "bias");
    fill(x, 1);
    fill(w, 2);
    fill(bias, 3);
    dump("x", x);
    dump("w", w);
    dump("bias", bias);

    /* weights: u4 asymmetric per group of 64 (dynamic), dequantized to f32 and f16 */
    llmq_scheme *s_w4 = new_scheme(LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                   LLMQ_GRANULARITY_PER_GROUP, 64);
    llmq_tensor *w4 = quantized(s_w4, N, K);
    check(llmq_quantize_dynamic(ctx, w, w4), "w4");
    dump_quantized("w4", w4);
    llmq_tensor *w4_f32 = new_tensor(LLMQ_DTYPE_F32, N, K);
    llmq_tensor *w4_f16 = new_tensor(LLMQ_DTYPE_F16, N, K);
    check(llmq_dequantize(ctx, w4, w4_f32), "w4 f32");
    check(llmq_dequantize(ctx, w4, w4_f16), "w4 f16");
    dump("w4_f32", w4_f32);
    dump("w4_f16", w4_f16);

    /* weights: s8 symmetric per output channel; activations: s8 symmetric per token */
    llmq_scheme *s_w8 = new_scheme(LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_CHANNEL, 0);
    llmq_scheme *s_a8 = new_scheme(LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TOKEN, 0);
    llmq_tensor *w8 = quantized(s_w8, N, K), *a8 = quantized(s_a8, M, K);
    check(llmq_quantize_dynamic(ctx, w, w8), "w8");
    check(llmq_quantize_dynamic(ctx, x, a8), "a8");
    dump_quantized("w8", w8);
    dump_quantized("a8", a8);

    /* static quantization with given parameters, onnx numerics, s4 per tensor */
    llmq_scheme *s_s4 = new_scheme(LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TENSOR, 0);
    check(llmq_scheme_set_numerics(s_s4, LLMQ_NUMERICS_ONNX), "numerics");
    llmq_tensor *x4 = quantized(s_s4, M, K);
    *(float *)llmq_tensor_data(llmq_tensor_scale(x4)) = 0.125f;
    check(llmq_quantize(ctx, x, x4), "x4");
    dump_quantized("x4", x4);

    /* products: W8A8 to s32 and to f32 with bias, W4A16 to f32, W8A8 requantized to u8 */
    llmq_tensor *y_s32 = new_tensor(LLMQ_DTYPE_S32, M, N);
    llmq_tensor *y_f32 = new_tensor(LLMQ_DTYPE_F32, M, N), *y_w4 = new_tensor(LLMQ_DTYPE_F32, M, N);
    check(llmq_matmul(ctx, a8, w8, NULL, y_s32), "y_s32");
    check(llmq_matmul(ctx, a8, w8, bias, y_f32), "y_f32");
    check(llmq_matmul(ctx, x, w4, bias, y_w4), "y_w4");
    dump("y_s32", y_s32);
    dump("y_f32", y_f32);
    dump("y_w4", y_w4);
    llmq_scheme *s_out = new_scheme(LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                    LLMQ_GRANULARITY_PER_TENSOR, 0);
    llmq_tensor *y_u8 = quantized(s_out, M, N);
    *(float *)llmq_tensor_data(llmq_tensor_scale(y_u8)) = 0.05f;
    *(int32_t *)llmq_tensor_data(llmq_tensor_zero_point(y_u8)) = 100;
    check(llmq_matmul(ctx, a8, w8, NULL, y_u8), "y_u8");
    dump("y_u8", y_u8);

    /* calibration: percentile s8 per tensor over batches of two sizes, applied and used to
     * quantize x; min/max u8 per channel of the last axis; MSE u4 per group of 64 */
    llmq_tensor *const batches[] = {x, w, x};
    llmq_scheme *s_pct = new_scheme(LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                    LLMQ_GRANULARITY_PER_TENSOR, 0);
    llmq_quantizer *q_pct = calibrated(s_pct, LLMQ_OBSERVER_PERCENTILE,
                                       LLMQ_OBSERVER_PARAM_PERCENTILE, 99.9, batches, 3);
    dump_calibrated("cal_pct", q_pct);
    llmq_tensor *cal_x8 = quantized(llmq_quantizer_scheme(q_pct), M, K);
    check(llmq_quantizer_apply(ctx, q_pct, cal_x8), "apply");
    check(llmq_quantize(ctx, x, cal_x8), "cal_x8");
    dump_quantized("cal_x8", cal_x8);
    llmq_scheme *s_mm = new_scheme(LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                   LLMQ_GRANULARITY_PER_CHANNEL, 0);
    check(llmq_scheme_set_axis(s_mm, -1), "axis");
    llmq_quantizer *q_mm = calibrated(s_mm, LLMQ_OBSERVER_MINMAX, -1, 0, batches, 2);
    dump_calibrated("cal_mm", q_mm);
    llmq_tensor *const groups[] = {w, w4_f32};
    llmq_quantizer *q_mse = calibrated(s_w4, LLMQ_OBSERVER_MSE, LLMQ_OBSERVER_PARAM_GRID, 50,
                                       groups, 2);
    dump_calibrated("cal_mse", q_mse);

    /* a parameter table of the three, saved */
    llmq_qtable *table = NULL;
    check(llmq_qtable_create(ctx, &table), "qtable");
    const llmq_quantizer *entries[] = {q_pct, q_mm, q_mse};
    const char *names[] = {"act", "layers.0.chan", "layers.0.grp"};
    for (int i = 0; i < 3; i++)
        check(llmq_qtable_set(ctx, table, names[i], llmq_quantizer_scheme(entries[i]),
                              llmq_quantizer_scale(entries[i]),
                              llmq_quantizer_zero_point(entries[i])),
              "qtable_set");
    snprintf(path, sizeof path, "%s/table.yaml", dir);
    check(llmq_qtable_save(ctx, table, path), "qtable_save");

    /* fake quantization: s4 on the 3-bit grid [-4, 3] per row, learnable (f32) zero points,
     * forward and every gradient; u8 per tensor with an s32 zero point, forward */
    llmq_tensor *dy = new_tensor(LLMQ_DTYPE_F32, M, K);
    fill(dy, 4);
    dump("dy", dy);
    llmq_scheme *s_fq = new_scheme(LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_CHANNEL, 0);
    check(llmq_scheme_set_range(s_fq, -4, 3), "range");
    llmq_tensor *fq_scale = vector(LLMQ_DTYPE_F32, M), *fq_zp = vector(LLMQ_DTYPE_F32, M);
    for (int i = 0; i < M; i++) {
        ((float *)llmq_tensor_data(fq_scale))[i] = 0.1f + 0.05f * (float)i;
        ((float *)llmq_tensor_data(fq_zp))[i] = -1.3f + 0.4f * (float)i;
    }
    llmq_tensor *fq_y = new_tensor(LLMQ_DTYPE_F32, M, K), *fq_dx = new_tensor(LLMQ_DTYPE_F32, M, K);
    llmq_tensor *fq_ds = vector(LLMQ_DTYPE_F32, M), *fq_dz = vector(LLMQ_DTYPE_F32, M);
    check(llmq_fake_quantize(ctx, x, s_fq, fq_scale, fq_zp, fq_y), "fake_quantize");
    check(llmq_fake_quantize_backward(ctx, x, s_fq, fq_scale, fq_zp, dy, 0.5f, fq_dx, fq_ds,
                                      fq_dz),
          "fake_quantize_backward");
    dump("fq_y", fq_y);
    dump("fq_dx", fq_dx);
    dump("fq_dscale", fq_ds);
    dump("fq_dzero_point", fq_dz);
    llmq_scheme *s_fq8 = new_scheme(LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC,
                                    LLMQ_GRANULARITY_PER_TENSOR, 0);
    llmq_tensor *fq8_scale = vector(LLMQ_DTYPE_F32, 1), *fq8_zp = vector(LLMQ_DTYPE_S32, 1);
    *(float *)llmq_tensor_data(fq8_scale) = 0.02f;
    *(int32_t *)llmq_tensor_data(fq8_zp) = 130;
    llmq_tensor *fq8_y = new_tensor(LLMQ_DTYPE_F32, M, K);
    check(llmq_fake_quantize(ctx, x, s_fq8, fq8_scale, fq8_zp, fq8_y), "fake_quantize u8");
    dump("fq8_y", fq8_y);

    /* conversions: f32 to f16 and bf16, bf16 back to f32 */
    llmq_tensor *cv_f16 = new_tensor(LLMQ_DTYPE_F16, M, K);
    llmq_tensor *cv_bf16 = new_tensor(LLMQ_DTYPE_BF16, M, K);
    llmq_tensor *cv_back = new_tensor(LLMQ_DTYPE_F32, M, K);
    check(llmq_convert(ctx, x, cv_f16), "convert f16");
    check(llmq_convert(ctx, x, cv_bf16), "convert bf16");
    check(llmq_convert(ctx, cv_bf16, cv_back), "convert back");
    dump("cv_f16", cv_f16);
    dump("cv_bf16", cv_bf16);
    dump("cv_back", cv_back);

    llmq_qtable_destroy(table);
    llmq_quantizer *quantizers[] = {q_pct, q_mm, q_mse};
    for (size_t i = 0; i < sizeof quantizers / sizeof quantizers[0]; i++)
        llmq_quantizer_destroy(quantizers[i]);
    llmq_tensor *all[] = {x, w, bias, w4, w4_f32, w4_f16, w8, a8, x4, y_s32, y_f32, y_w4, y_u8,
                          cal_x8, dy, fq_scale, fq_zp, fq_y, fq_dx, fq_ds, fq_dz, fq8_scale,
                          fq8_zp, fq8_y, cv_f16, cv_bf16, cv_back};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        llmq_tensor_destroy(all[i]);
    llmq_scheme *schemes[] = {s_w4, s_w8, s_a8, s_s4, s_out, s_pct, s_mm, s_fq, s_fq8};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        llmq_scheme_destroy(schemes[i]);
    llmq_context_destroy(ctx);
    return fclose(manifest) == 0 ? 0 : 1;
}
