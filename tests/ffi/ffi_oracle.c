/* ffi_oracle.c - results of the C API that the Python binding must reproduce bit for bit.
 * SPDX-License-Identifier: MIT
 *
 * usage: ffi_oracle DIR
 * Writes DIR/manifest.txt, one line per array: "name dtype d0 d1 ...", and DIR/<name>.bin with
 * its bytes (packed rows for sub-byte dtypes, parameters as F32 / S32). Inputs come first,
 * then the outputs of each case; tests/ffi/test_binding.py repeats every case through llmq.py
 * on the same inputs and compares the bytes. */
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

    llmq_tensor *all[] = {x, w, bias, w4, w4_f32, w4_f16, w8, a8, x4, y_s32, y_f32, y_w4, y_u8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        llmq_tensor_destroy(all[i]);
    llmq_scheme *schemes[] = {s_w4, s_w8, s_a8, s_s4, s_out};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        llmq_scheme_destroy(schemes[i]);
    llmq_context_destroy(ctx);
    return fclose(manifest) == 0 ? 0 : 1;
}
