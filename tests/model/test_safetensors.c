/* test_safetensors.c - safetensors out and in: round trips of every dtype and of quantized
 * tensors with their schemes; crafted malformed files, each refused with its own message; the
 * writer never leaves a partial output. SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testing.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/llmq-st-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d != NULL)
        closedir(d);
    return rmdir(dir);
}

static int files_in_dir(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static const char *path_of(const char *name)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Write raw bytes: an 8-byte length, the header text, then data. */
static const char *craft(const char *name, const char *header, uint64_t claimed_len,
                         const void *data, size_t data_len)
{
    const char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    uint8_t len[8];
    const uint64_t n = claimed_len ? claimed_len : strlen(header);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len)
        fwrite(data, 1, data_len, f);
    fclose(f);
    return p;
}

static void round_trip_every_dtype(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const llmq_dtype dts[] = {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16,
                                     LLMQ_DTYPE_S8,  LLMQ_DTYPE_U8,  LLMQ_DTYPE_S32};
    static const char *file_names[] = {"F32", "F16", "BF16", "I8", "U8", "I32"};
    const int64_t shapes[][4] = {{5, 0, 0, 0}, {2, 3, 0, 0}, {2, 1, 3, 0}, {1, 2, 2, 3}};
    llmq_tensor *t[6] = {0};
    test_rng rng = {9};
    llmq_model_writer *w = NULL;
    const char *out = path_of("plain.safetensors");
    ASSERT_OK(ctx, llmq_model_writer_create(ctx, out, &w));
    ASSERT_OK(ctx, llmq_model_writer_set_metadata(ctx, w, "author", "llmq tests"));
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        const int32_t nd = 1 + i % 4;
        ASSERT_OK(ctx, llmq_tensor_create(ctx, dts[i], nd, shapes[i % 4], &t[i]));
        uint8_t *b = llmq_tensor_data(t[i]);
        for (size_t k = 0; k < llmq_tensor_nbytes(t[i]); k++)
            b[k] = (uint8_t)test_rng_next(&rng);
        ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, name, dts[i], nd, shapes[i % 4], NULL));
    }
    for (int i = 5; i >= 0; i--) { /* any order */
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ASSERT_OK(ctx, llmq_model_writer_write(ctx, w, name, t[i]));
    }
    assert_int_equal(access(out, F_OK), -1); /* nothing at the destination before finish */
    ASSERT_OK(ctx, llmq_model_writer_finish(ctx, w));
    llmq_model_writer_destroy(w);
    assert_int_equal(files_in_dir(), 1);

    llmq_model *m = NULL;
    ASSERT_OK(ctx, llmq_model_open(ctx, out, &m));
    assert_int_equal(llmq_model_get_format(m), LLMQ_MODEL_FORMAT_SAFETENSORS);
    assert_int_equal(llmq_model_tensor_count(m), 6);
    assert_string_equal(llmq_model_metadata(m, "author"), "llmq tests");
    assert_null(llmq_model_metadata(m, "llmq.format")); /* no quantized tensor here */
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        llmq_tensor *back = NULL;
        ASSERT_OK(ctx, llmq_model_tensor(ctx, m, name, &back));
        assert_int_equal(llmq_tensor_dtype(back), dts[i]);
        assert_int_equal(llmq_tensor_ndim(back), 1 + i % 4);
        assert_int_equal(llmq_tensor_nbytes(back), llmq_tensor_nbytes(t[i]));
        assert_memory_equal(llmq_tensor_data(back), llmq_tensor_data(t[i]), llmq_tensor_nbytes(t[i]));
        /* aligned for its dtype: 4-byte dtypes come first and the header is padded */
        assert_int_equal((uintptr_t)llmq_tensor_data(back) % (llmq_dtype_bits(dts[i]) / 8), 0);
        int64_t idx = -1;
        for (int64_t k = 0; k < llmq_model_tensor_count(m); k++)
            if (strcmp(llmq_model_tensor_name(m, k), name) == 0)
                idx = k;
        assert_true(idx >= 0);
        assert_string_equal(llmq_model_tensor_file_dtype(m, idx), file_names[i]);
        llmq_tensor_destroy(back);
        llmq_tensor_destroy(t[i]);
    }
    llmq_model_destroy(m);
    unlink(out);
    llmq_context_destroy(ctx);
}

static void round_trip_quantized(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    test_rng rng = {4};
    float x[3 * 37];
    for (int i = 0; i < 3 * 37; i++)
        x[i] = test_rng_range(&rng, -3.0f, 3.0f);
    const int64_t shape[2] = {3, 37};
    llmq_tensor *src = test_wrap_f32(ctx, x, 2, shape);
    struct {
        llmq_dtype d;
        llmq_symmetry s;
        llmq_granularity g;
        int64_t group;
    } cases[] = {
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 8},
        {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0},
        {LLMQ_DTYPE_S2, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED, LLMQ_GRANULARITY_PER_TENSOR, 0},
        {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, 0},
    };
    llmq_tensor *q[4];
    llmq_scheme *s[4];
    const char *out = path_of("q.safetensors");
    llmq_model_writer *w = NULL;
    ASSERT_OK(ctx, llmq_model_writer_create(ctx, out, &w));
    for (int i = 0; i < 4; i++) {
        s[i] = test_scheme(ctx, cases[i].d, cases[i].s, cases[i].g, 0, cases[i].group);
        ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s[i], 2, shape, &q[i]));
        ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q[i]));
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, name, cases[i].d, 2, shape, s[i]));
    }
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        ASSERT_OK(ctx, llmq_model_writer_write(ctx, w, name, q[i]));
    }
    ASSERT_OK(ctx, llmq_model_writer_finish(ctx, w));
    llmq_model_writer_destroy(w);

    llmq_model *m = NULL;
    ASSERT_OK(ctx, llmq_model_open(ctx, out, &m));
    assert_int_equal(llmq_model_tensor_count(m), 12); /* data, .scale, .zero_point each */
    assert_string_equal(llmq_model_metadata(m, "llmq.format"), "1");
    assert_non_null(strstr(llmq_model_metadata(m, "llmq.scheme.w0"), "\"granularity\":\"per_group\""));
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        llmq_tensor *back = NULL;
        ASSERT_OK(ctx, llmq_model_tensor(ctx, m, name, &back));
        const llmq_scheme *bs = llmq_tensor_scheme(back);
        assert_non_null(bs);
        assert_int_equal(llmq_tensor_dtype(back), cases[i].d);
        assert_int_equal(llmq_tensor_dim(back, 1), 37);
        assert_int_equal(llmq_scheme_symmetry(bs), cases[i].s);
        assert_int_equal(llmq_scheme_granularity(bs), cases[i].g);
        assert_int_equal(llmq_scheme_group_size(bs), cases[i].group);
        assert_memory_equal(llmq_tensor_data(back), llmq_tensor_data(q[i]), llmq_tensor_nbytes(q[i]));
        const llmq_tensor *a = llmq_tensor_scale(back), *b = llmq_tensor_scale(q[i]);
        assert_memory_equal(llmq_tensor_data(a), llmq_tensor_data(b), llmq_tensor_nbytes(b));
        a = llmq_tensor_zero_point(back);
        b = llmq_tensor_zero_point(q[i]);
        assert_memory_equal(llmq_tensor_data(a), llmq_tensor_data(b), llmq_tensor_nbytes(b));
        /* and it dequantizes like the original */
        float y1[3 * 37], y2[3 * 37];
        llmq_tensor *d1 = test_wrap_f32(ctx, y1, 2, shape), *d2 = test_wrap_f32(ctx, y2, 2, shape);
        ASSERT_OK(ctx, llmq_dequantize(ctx, back, d1));
        ASSERT_OK(ctx, llmq_dequantize(ctx, q[i], d2));
        assert_memory_equal(y1, y2, sizeof y1);
        /* the packed entry has the stored shape [3, ceil(37 * bits / 8)] */
        int32_t nd;
        int64_t st[4];
        for (int64_t k = 0; k < llmq_model_tensor_count(m); k++)
            if (strcmp(llmq_model_tensor_name(m, k), name) == 0) {
                ASSERT_OK(ctx, llmq_model_tensor_shape(m, k, &nd, st, 4));
                assert_int_equal(st[1], (37 * (int64_t)llmq_dtype_bits(cases[i].d) + 7) / 8);
            }
        llmq_tensor_destroy(d1);
        llmq_tensor_destroy(d2);
        llmq_tensor_destroy(back);
        llmq_tensor_destroy(q[i]);
        llmq_scheme_destroy(s[i]);
    }
    llmq_model_destroy(m);
    llmq_tensor_destroy(src);
    unlink(out);
    llmq_context_destroy(ctx);
}

/* A 3-bit grid inside u4 (a custom range) survives the file. */
static void round_trip_custom_range(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float x[8] = {-1, 0, 1, 2, 3, 4, 5, 6};
    const int64_t shape[1] = {8};
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    ASSERT_OK(ctx, llmq_scheme_set_range(s, 0, 7));
    llmq_tensor *src = test_wrap_f32(ctx, x, 1, shape), *q = NULL, *back = NULL;
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 1, shape, &q));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, src, q));
    const char *out = path_of("r3.safetensors");
    llmq_model_writer *w = NULL;
    ASSERT_OK(ctx, llmq_model_writer_create(ctx, out, &w));
    ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, "w", LLMQ_DTYPE_U4, 1, shape, s));
    ASSERT_OK(ctx, llmq_model_writer_write(ctx, w, "w", q));
    ASSERT_OK(ctx, llmq_model_writer_finish(ctx, w));
    llmq_model_writer_destroy(w);
    llmq_model *m = NULL;
    ASSERT_OK(ctx, llmq_model_open(ctx, out, &m));
    ASSERT_OK(ctx, llmq_model_tensor(ctx, m, "w", &back));
    int32_t qmin, qmax;
    ASSERT_OK(ctx, llmq_scheme_range(llmq_tensor_scheme(back), &qmin, &qmax));
    assert_int_equal(qmin, 0);
    assert_int_equal(qmax, 7);
    assert_memory_equal(llmq_tensor_data(back), llmq_tensor_data(q), llmq_tensor_nbytes(q));
    llmq_tensor_destroy(back);
    llmq_model_destroy(m);
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(src);
    llmq_scheme_destroy(s);
    unlink(out);
    llmq_context_destroy(ctx);
}

/* Each malformed file is refused with its own reason. */
static void malformed_files(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const uint8_t data[16] = {0};
    llmq_model *m = NULL;
    const struct {
        const char *header;
        uint64_t claimed;
        size_t data_len;
        const char *needle;
    } bad[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4096, 8,
         "header length 4096: larger than the file"},
        {"{}", 200ull * 1024 * 1024, 0, "larger than the 100 MB limit"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 0, 8, "header JSON"},
        {"[1, 2]", 0, 0, "the header must be a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8,
         "8 bytes, but F32 of this shape needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 16,
         "data_offsets overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 0, 16,
         "outside the 16-byte data section"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8,
         "shape[0]: must be a non-negative integer"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
         "dtype=Q4: unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 0, 8,
         "unknown key \"x\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 0, 16, "duplicate"},
        {"{\"__metadata__\":{\"k\":1}}", 0, 0, "__metadata__.k: values must be strings"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,2],\"data_offsets\":[0,8]}}",
         0, 8, "8 bytes, but U8 of this shape needs 8589934592"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,8]}}", 0, 8, "the size overflows 64 bits"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 8,
         "9 dimensions, at most 8"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,1]}}", 0, 8,
         "data_offsets=[2, 1]: outside"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, 8, "needs \"dtype\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = craft("bad.safetensors", bad[i].header, bad[i].claimed, data,
                              bad[i].data_len);
        ASSERT_FAILS(ctx, llmq_model_open(ctx, p, &m), LLMQ_ERR_PARSE, bad[i].needle);
        assert_null(m);
        unlink(p);
    }
    /* not a model at all, too short, missing */
    const char *p = path_of("junk.bin");
    FILE *f = fopen(p, "wb");
    fputs("hello, this is not a model at all......", f);
    fclose(f);
    ASSERT_FAILS(ctx, llmq_model_open(ctx, p, &m), LLMQ_ERR_PARSE, "neither safetensors nor");
    f = fopen(p, "wb");
    fputs("abc", f);
    fclose(f);
    ASSERT_FAILS(ctx, llmq_model_open(ctx, p, &m), LLMQ_ERR_PARSE, "too short");
    unlink(p);
    ASSERT_FAILS(ctx, llmq_model_open(ctx, path_of("missing"), &m), LLMQ_ERR_IO,
                 "No such file or directory");
    ASSERT_FAILS(ctx, llmq_model_open(ctx, dir, &m), LLMQ_ERR_IO, "not a regular file");
    llmq_context_destroy(ctx);
}

/* Tensors that parse but have no llmq form; misaligned data is copied, not misread. */
static void unusual_tensors(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    float vals[3] = {1.5f, -2.0f, 3.25f};
    uint8_t data[32] = {0};
    memcpy(data + 1, vals, sizeof vals); /* F32 at offset 1: misaligned */
    const char *p = craft("odd.safetensors",
                          "{\"f\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]},"
                          "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]},"
                          "\"z\":{\"dtype\":\"U8\",\"shape\":[0,4],\"data_offsets\":[13,13]}}",
                          0, data, sizeof data);
    llmq_model *m = NULL;
    ASSERT_OK(ctx, llmq_model_open(ctx, p, &m));
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_model_tensor(ctx, m, "f", &t));
    assert_memory_equal(llmq_tensor_data(t), vals, sizeof vals);
    assert_int_equal((uintptr_t)llmq_tensor_data(t) % 4, 0);
    llmq_tensor_destroy(t);
    ASSERT_FAILS(ctx, llmq_model_tensor(ctx, m, "i", &t), LLMQ_ERR_UNSUPPORTED,
                 "name=i: dtype I64 has no llmq equivalent");
    ASSERT_FAILS(ctx, llmq_model_tensor(ctx, m, "z", &t), LLMQ_ERR_UNSUPPORTED, "shape[0]=0");
    ASSERT_FAILS(ctx, llmq_model_tensor(ctx, m, "nope", &t), LLMQ_ERR_INVALID_ARG,
                 "name=nope: no such tensor");
    assert_null(t);
    llmq_model_destroy(m);
    unlink(p);
    llmq_context_destroy(ctx);
}

/* No output file appears unless finish succeeds; misuse of the writer. */
static void writer_never_leaves_partial_output(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_model_writer *w = NULL;
    const int64_t shape[1] = {4};
    float v[4] = {1, 2, 3, 4};
    llmq_tensor *t = test_wrap_f32(ctx, v, 1, shape);
    /* unwritable destination */
    ASSERT_FAILS(ctx, llmq_model_writer_create(ctx, "/proc/llmq-nope/x.safetensors", &w),
                 LLMQ_ERR_IO, "cannot create a file beside it");
    assert_null(w);
    /* destroyed before finish: nothing left, not even the temporary file */
    ASSERT_OK(ctx, llmq_model_writer_create(ctx, path_of("a.safetensors"), &w));
    ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, "x", LLMQ_DTYPE_F32, 1, shape, NULL));
    ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, "y", LLMQ_DTYPE_F32, 1, shape, NULL));
    ASSERT_OK(ctx, llmq_model_writer_write(ctx, w, "x", t));
    ASSERT_FAILS(ctx, llmq_model_writer_finish(ctx, w), LLMQ_ERR_STATE,
                 "name=y: declared but not written");
    llmq_model_writer_destroy(w);
    assert_int_equal(files_in_dir(), 0);
    /* misuse */
    ASSERT_OK(ctx, llmq_model_writer_create(ctx, path_of("b.safetensors"), &w));
    ASSERT_OK(ctx, llmq_model_writer_declare(ctx, w, "x", LLMQ_DTYPE_F32, 1, shape, NULL));
    ASSERT_FAILS(ctx, llmq_model_writer_declare(ctx, w, "x", LLMQ_DTYPE_F32, 1, shape, NULL),
                 LLMQ_ERR_INVALID_ARG, "name=x: already declared");
    ASSERT_FAILS(ctx, llmq_model_writer_declare(ctx, w, "s", LLMQ_DTYPE_S4, 1, shape, NULL),
                 LLMQ_ERR_INVALID_ARG, "dtype=s4: sub-byte tensors are stored with their scheme");
    ASSERT_FAILS(ctx, llmq_model_writer_set_metadata(ctx, w, "llmq.format", "2"),
                 LLMQ_ERR_INVALID_ARG, "reserved");
    const int64_t other[1] = {5};
    ASSERT_FAILS(ctx, llmq_model_writer_declare(ctx, w, "bad", LLMQ_DTYPE_F32, 1, NULL, NULL),
                 LLMQ_ERR_INVALID_ARG, "shape=NULL");
    ASSERT_FAILS(ctx, llmq_model_writer_write(ctx, w, "zz", t), LLMQ_ERR_INVALID_ARG,
                 "name=zz: not declared");
    llmq_tensor *t5 = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 1, other, &t5));
    ASSERT_FAILS(ctx, llmq_model_writer_write(ctx, w, "x", t5), LLMQ_ERR_INVALID_ARG,
                 "differs from the declared");
    ASSERT_OK(ctx, llmq_model_writer_write(ctx, w, "x", t));
    ASSERT_FAILS(ctx, llmq_model_writer_write(ctx, w, "x", t), LLMQ_ERR_INVALID_ARG,
                 "already written");
    ASSERT_FAILS(ctx, llmq_model_writer_declare(ctx, w, "late", LLMQ_DTYPE_F32, 1, shape, NULL),
                 LLMQ_ERR_STATE, "declarations end with the first write");
    ASSERT_OK(ctx, llmq_model_writer_finish(ctx, w));
    ASSERT_FAILS(ctx, llmq_model_writer_finish(ctx, w), LLMQ_ERR_STATE, "finished");
    llmq_model_writer_destroy(w);
    assert_int_equal(files_in_dir(), 1);
    unlink(path_of("b.safetensors"));
    llmq_model_writer_destroy(NULL);
    llmq_model_destroy(NULL);
    assert_int_equal(llmq_model_tensor_count(NULL), 0);
    assert_null(llmq_model_tensor_name(NULL, 0));
    assert_null(llmq_model_metadata(NULL, "x"));
    llmq_tensor_destroy(t);
    llmq_tensor_destroy(t5);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_dtype),
        cmocka_unit_test(round_trip_quantized),
        cmocka_unit_test(round_trip_custom_range),
        cmocka_unit_test(malformed_files),
        cmocka_unit_test(unusual_tensors),
        cmocka_unit_test(writer_never_leaves_partial_output),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
