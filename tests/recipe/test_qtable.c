/* test_qtable.c - parameter tables: misuse of every function, save -> load -> save is byte
 * identical and bit exact, every truncation of a file fails cleanly, and each validation error
 * names path:line:column, the key and the reason. SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testing.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/llmq_qtable_XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (remove(path) != 0) rmdir(path);
        }
        closedir(d);
    }
    return rmdir(dir);
}

static const char *in_dir(const char *name)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* Add entry `name` with parameters of the given shape, scales and zero points. */
static void add(llmq_context *ctx, llmq_qtable *t, const char *name, llmq_scheme *s, int32_t ndim,
                const int64_t *shape, float *scale, int32_t *zp)
{
    llmq_tensor *st = NULL, *zt = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, ndim, shape, scale, 0, &st));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, ndim, shape, zp, 0, &zt));
    ASSERT_OK(ctx, llmq_qtable_set(ctx, t, name, s, st, zt));
    llmq_tensor_destroy(st);
    llmq_tensor_destroy(zt);
}

/* A table exercising every field: granularities, dtypes, rounding, numerics, seeds, names
 * that YAML would read as other types, and floats at the edges of float32. */
static llmq_qtable *sample_table(llmq_context *ctx)
{
    llmq_qtable *t = NULL;
    ASSERT_OK(ctx, llmq_qtable_create(ctx, &t));
    test_rng rng = {77};
    float sc[64];
    int32_t zp[64];
    for (int i = 0; i < 64; i++) {
        /* any positive normal float: random exponent and mantissa */
        const uint32_t bits = (uint32_t)(1 + test_rng_next(&rng) % 253) << 23 |
                              (uint32_t)(test_rng_next(&rng) & 0x7fffff);
        memcpy(&sc[i], &bits, 4);
        zp[i] = 0;
    }
    const int64_t n64 = 64, one = 1, n5 = 5, g[2] = {3, 4};
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                 LLMQ_GRANULARITY_PER_CHANNEL, 0, 0);
    add(ctx, t, "model.layers.0.self_attn.q_proj.weight", s, 1, &n64, sc, zp);
    llmq_scheme_destroy(s);

    s = test_scheme(ctx, LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0,
                    0);
    float s1 = 0.1f;
    int32_t z1 = 128;
    add(ctx, t,
        "act \"quoted\": \xc3\xbcnic\xc3\xb6"
        "de # not a comment",
        s, 1, &one, &s1, &z1);
    llmq_scheme_destroy(s);

    s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 0,
                    32);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, LLMQ_ROUNDING_STOCHASTIC));
    ASSERT_OK(ctx, llmq_scheme_set_seed(s, 12345678901234567890ull));
    ASSERT_OK(ctx, llmq_scheme_set_numerics(s, LLMQ_NUMERICS_ONNX));
    float s12[12];
    int32_t z12[12];
    for (int i = 0; i < 12; i++) {
        s12[i] = 1.0f / (float)(i + 3);
        z12[i] = (int32_t)(test_rng_next(&rng) % 16);
    }
    add(ctx, t, "w4", s, 2, g, s12, z12);
    llmq_scheme_destroy(s);

    s = test_scheme(ctx, LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED,
                    LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    ASSERT_OK(ctx, llmq_scheme_set_rounding(s, LLMQ_ROUNDING_HALF_AWAY));
    float s5[5] = {FLT_MIN, FLT_MAX, 1.0f, 1.0f / 3.0f, nextafterf(1.0f, 2.0f)};
    int32_t z5[5] = {0, 0, 0, 0, 0};
    add(ctx, t, "true", s, 1, &n5, s5, z5);
    llmq_scheme_destroy(s);

    s = test_scheme(ctx, LLMQ_DTYPE_U2, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, -1,
                    0);
    float s2[2] = {3e-38f, 7.5f};
    int32_t z2[2] = {2, 2};
    const int64_t two = 2;
    add(ctx, t, "1.5", s, 1, &two, s2, z2);
    llmq_scheme_destroy(s);
    return t;
}

static void assert_tables_equal(const llmq_qtable *a, const llmq_qtable *b, llmq_context *ctx)
{
    assert_int_equal(llmq_qtable_count(a), llmq_qtable_count(b));
    for (int64_t i = 0; i < llmq_qtable_count(a); i++) {
        const char *name = llmq_qtable_name_at(a, i);
        assert_string_equal(name, llmq_qtable_name_at(b, i));
        const llmq_scheme *sa, *sb;
        const llmq_tensor *ca, *cb, *za, *zb;
        ASSERT_OK(ctx, llmq_qtable_get(ctx, a, name, &sa, &ca, &za));
        ASSERT_OK(ctx, llmq_qtable_get(ctx, b, name, &sb, &cb, &zb));
        assert_int_equal(llmq_scheme_dtype(sa), llmq_scheme_dtype(sb));
        assert_int_equal(llmq_scheme_symmetry(sa), llmq_scheme_symmetry(sb));
        assert_int_equal(llmq_scheme_granularity(sa), llmq_scheme_granularity(sb));
        assert_int_equal(llmq_scheme_rounding(sa), llmq_scheme_rounding(sb));
        assert_int_equal(llmq_scheme_numerics(sa), llmq_scheme_numerics(sb));
        if (llmq_scheme_granularity(sa) == LLMQ_GRANULARITY_PER_CHANNEL)
            assert_int_equal(llmq_scheme_axis(sa), llmq_scheme_axis(sb));
        if (llmq_scheme_granularity(sa) == LLMQ_GRANULARITY_PER_GROUP)
            assert_int_equal(llmq_scheme_group_size(sa), llmq_scheme_group_size(sb));
        if (llmq_scheme_rounding(sa) == LLMQ_ROUNDING_STOCHASTIC)
            assert_true(llmq_scheme_seed(sa) == llmq_scheme_seed(sb));
        assert_int_equal(llmq_tensor_ndim(ca), llmq_tensor_ndim(cb));
        assert_int_equal(llmq_tensor_numel(ca), llmq_tensor_numel(cb));
        assert_memory_equal(llmq_tensor_data(ca), llmq_tensor_data(cb), llmq_tensor_nbytes(ca));
        assert_memory_equal(llmq_tensor_data(za), llmq_tensor_data(zb), llmq_tensor_nbytes(za));
    }
}

static void round_trip_is_bit_exact_and_byte_identical(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_qtable *t = sample_table(ctx), *back = NULL, *again = NULL;
    const char *p1 = in_dir("a.yaml"), *p2 = in_dir("b.yaml");
    ASSERT_OK(ctx, llmq_qtable_save(ctx, t, p1));
    ASSERT_OK(ctx, llmq_qtable_load(ctx, p1, &back));
    assert_tables_equal(t, back, ctx);
    ASSERT_OK(ctx, llmq_qtable_save(ctx, back, p2));
    size_t n1, n2;
    char *a = read_all(p1, &n1), *b = read_all(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    /* the format: a format name, the version, floats as decimal with a dot and an exponent */
    assert_non_null(strstr(a, "format: llmq-qtable\nversion: 1\ntensors:\n"));
    assert_non_null(strstr(a, "scale: [1.0e-01]"));
    assert_non_null(strstr(a, "seed: 12345678901234567890"));
    assert_non_null(strstr(a, "\"true\":"));
    assert_true(n1 > 4 && strcmp(a + n1 - 4, "...\n") == 0);
    /* loading again gives the same table again */
    ASSERT_OK(ctx, llmq_qtable_load(ctx, p2, &again));
    assert_tables_equal(t, again, ctx);
    free(a);
    free(b);
    llmq_qtable_destroy(again);
    llmq_qtable_destroy(back);

    /* an empty table, and replacing an entry in place */
    llmq_qtable *empty = NULL;
    ASSERT_OK(ctx, llmq_qtable_create(ctx, &empty));
    ASSERT_OK(ctx, llmq_qtable_save(ctx, empty, p1));
    llmq_qtable_destroy(empty);
    ASSERT_OK(ctx, llmq_qtable_load(ctx, p1, &empty));
    assert_int_equal(llmq_qtable_count(empty), 0);
    llmq_qtable_destroy(empty);
    const llmq_scheme *s;
    const llmq_tensor *sc, *zp;
    ASSERT_OK(ctx, llmq_qtable_get(ctx, t, "true", &s, &sc, &zp));
    llmq_scheme *copy =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    ASSERT_OK(ctx, llmq_qtable_set(ctx, t, "true", copy, sc, zp));
    assert_string_equal(llmq_qtable_name_at(t, 3), "true");
    ASSERT_OK(ctx, llmq_qtable_get(ctx, t, "true", &s, NULL, NULL));
    assert_int_equal(llmq_scheme_dtype(s), LLMQ_DTYPE_S8);
    assert_int_equal(llmq_qtable_count(t), 5);
    llmq_scheme_destroy(copy);
    llmq_qtable_destroy(t);
    llmq_context_destroy(ctx);
}

/* Every prefix of a saved file either fails to load with LLMQ_ERR_PARSE and a positioned
 * message, or (when only trailing whitespace is missing) loads the same table. */
static void every_truncation_fails_cleanly(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_qtable *t = sample_table(ctx);
    const char *full = in_dir("full.yaml"), *cut = in_dir("cut.yaml");
    ASSERT_OK(ctx, llmq_qtable_save(ctx, t, full));
    size_t n;
    char *text = read_all(full, &n);
    size_t end = n;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' '))
        end--;
    for (size_t len = 0; len < n; len++) {
        write_all(cut, text, len);
        llmq_qtable *back = NULL;
        const llmq_status st = llmq_qtable_load(ctx, cut, &back);
        if (len >= end) {
            ASSERT_OK(ctx, st);
            assert_tables_equal(t, back, ctx);
            llmq_qtable_destroy(back);
            continue;
        }
        if (st != LLMQ_ERR_PARSE)
            fail_msg("prefix of %zu bytes: %s (%s)", len, llmq_status_name(st),
                     llmq_context_last_error(ctx));
        assert_null(back);
        assert_non_null(strstr(llmq_context_last_error(ctx), "llmq_qtable_load: "));
        assert_non_null(strstr(llmq_context_last_error(ctx), cut));
    }
    free(text);
    llmq_qtable_destroy(t);
    llmq_context_destroy(ctx);
}

static const char valid[] = "format: llmq-qtable\n"
                            "version: 1\n"
                            "tensors:\n"
                            "  w:\n"
                            "    dtype: s8\n"
                            "    symmetry: symmetric\n"
                            "    granularity: per_channel\n"
                            "    axis: 0\n"
                            "    shape: [2]\n"
                            "    scale: [0.5, 0.25]\n"
                            "    zero_point: [0, 0]\n"
                            "...\n";

/* Load `valid` with `from` replaced by `to`; expect PARSE and a message containing `want`. */
static void expect_error(llmq_context *ctx, const char *from, const char *to, const char *want)
{
    char text[2048];
    const char *at = strstr(valid, from);
    assert_non_null(at);
    const size_t head = (size_t)(at - valid);
    snprintf(text, sizeof text, "%.*s%s%s", (int)head, valid, to, at + strlen(from));
    const char *path = in_dir("bad.yaml");
    write_all(path, text, strlen(text));
    llmq_qtable *t = (llmq_qtable *)&t;
    char needle[512];
    if (want[0] >= '0' && want[0] <= '9') /* a position: right after the path */
        snprintf(needle, sizeof needle, "llmq_qtable_load: %s:%s", path, want);
    else
        snprintf(needle, sizeof needle, "%s", want);
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, path, &t), LLMQ_ERR_PARSE, needle);
    assert_null(t);
}

static void validation_errors_name_position_key_reason(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_qtable *t = NULL;
    const char *path = in_dir("ok.yaml");
    write_all(path, valid, strlen(valid));
    ASSERT_OK(ctx, llmq_qtable_load(ctx, path, &t));
    assert_int_equal(llmq_qtable_count(t), 1);
    llmq_qtable_destroy(t);

    /* versions and format */
    expect_error(ctx, "version: 1", "version: 2",
                 "2:10: version: 2 is not supported (this llmq reads version 1)");
    expect_error(ctx, "version: 1", "version: one", "2:10: version: \"one\" is not an integer");
    expect_error(ctx, "format: llmq-qtable\n", "format: recipe\n",
                 "1:9: format: \"recipe\": this is not an llmq-qtable file");
    expect_error(ctx, "format: llmq-qtable\n", "", "1:1: format: missing");
    /* unknown and repeated keys */
    expect_error(ctx, "tensors:\n", "extra: 1\ntensors:\n",
                 "3:1: extra: unknown key in the table (expected format, version, tensors)");
    expect_error(ctx, "    dtype: s8\n", "    dtype: s8\n    colour: red\n",
                 "6:5: colour: unknown key in w");
    expect_error(ctx, "    dtype: s8\n", "    dtype: s8\n    dtype: u8\n",
                 "6:5: dtype: duplicate key in w (first at line 5)");
    expect_error(ctx, "    zero_point: [0, 0]\n", "    zero_point: [0, 0]\n  w:\n    dtype: s8\n",
                 "12:3: w: duplicate tensor name");
    /* missing keys */
    expect_error(ctx, "    zero_point: [0, 0]\n", "", "5:5: zero_point: missing");
    expect_error(ctx, "    axis: 0\n", "", "5:5: axis: missing (per_channel needs it)");
    expect_error(ctx, "    dtype: s8\n", "", "5:5: dtype: missing");
    /* wrong types */
    expect_error(ctx, "scale: [0.5, 0.25]", "scale: 0.5",
                 "10:12: scale: expected a sequence, found a scalar");
    expect_error(ctx, "dtype: s8", "dtype: [s8]",
                 "5:12: dtype: expected a scalar, found a "
                 "sequence");
    expect_error(ctx, "shape: [2]", "shape: {n: 2}",
                 "9:12: shape: expected a sequence, found "
                 "a mapping");
    expect_error(ctx, "  w:\n", "  [w]:\n", "4:3: tensors: expected a scalar");
    expect_error(ctx, "dtype: s8", "dtype: f32",
                 "5:12: dtype: \"f32\" is not one of s8, u8, s4, u4, s2, u2");
    expect_error(ctx, "granularity: per_channel", "granularity: per_row",
                 "7:18: granularity: \"per_row\" is not one of");
    expect_error(ctx, "axis: 0", "axis: 9", "8:11: axis: 9 is outside [-4, 3]");
    expect_error(ctx, "axis: 0", "axis: 0.5", "8:11: axis: \"0.5\" is not an integer");
    /* values */
    expect_error(ctx, "[0.5, 0.25]", "[0.5, -0.25]",
                 "10:18: scale[1]: -0.25 must be a positive normal float");
    expect_error(ctx, "[0.5, 0.25]", "[.nan, 0.25]",
                 "10:13: scale[0]: \".nan\" is not a "
                 "number");
    expect_error(ctx, "[0.5, 0.25]", "[nan, 0.25]",
                 "10:13: scale[0]: nan must be a positive normal float");
    expect_error(ctx, "[0.5, 0.25]", "[0.5, 0]", "scale[1]: 0 must be a positive normal float");
    expect_error(ctx, "[0.5, 0.25]", "[0.5, 1e-40]",
                 "scale[1]: 1e-40 must be a positive normal float");
    expect_error(ctx, "[0.5, 0.25]", "[0.5, inf]", "scale[1]: inf must be");
    expect_error(ctx, "[0.5, 0.25]", "[0.5, 0.25x]", "scale[1]: \"0.25x\" is not a number");
    expect_error(ctx, "[0.5, 0.25]", "[0.5]", "10:12: scale: 1 values, shape needs 2");
    expect_error(ctx, "zero_point: [0, 0]", "zero_point: [0, 200]",
                 "11:21: zero_point[1]: 200 is outside [-128, 127]");
    expect_error(ctx, "shape: [2]", "shape: [2, 1]",
                 "9:12: shape: per_channel and per_token parameters are shaped [n]");
    expect_error(ctx, "shape: [2]", "shape: [0]", "9:13: shape: 0 is outside");
    expect_error(ctx, "granularity: per_channel", "granularity: per_tensor",
                 "9:12: shape: per_tensor parameters are shaped [1]");
    /* YAML syntax, and more than one document */
    expect_error(ctx, "[0.5, 0.25]\n", "[0.5, 0.25\n", "syntax: did not find expected ',' or ']'");
    expect_error(ctx, "    axis: 0\n", "    axis: 0\n   bad: indent\n", "syntax:");
    expect_error(ctx, "...\n", "...\n---\nformat: x\n", "14:1: document: a second YAML document");
    expect_error(ctx, "...\n", "", "12:1: document: no end marker \"...\": the file is truncated");
    llmq_context_destroy(ctx);
}

static void files_and_misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_qtable *t = (llmq_qtable *)&t;
    /* load: arguments, missing files, empty files */
    assert_int_equal(llmq_qtable_load(NULL, "x", &t), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, "x", NULL), LLMQ_ERR_INVALID_ARG, "out=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, NULL, &t), LLMQ_ERR_INVALID_ARG, "path=NULL");
    assert_null(t);
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, in_dir("absent.yaml"), &t), LLMQ_ERR_IO,
                 "absent.yaml: cannot open: No such file or directory");
    const char *empty = in_dir("empty.yaml");
    write_all(empty, "", 0);
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, empty, &t), LLMQ_ERR_PARSE,
                 "empty.yaml:1:1: format: missing (the file holds no YAML document)");
    write_all(empty, "format: \xff\xfe\n", 11);
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, empty, &t), LLMQ_ERR_PARSE,
                 "syntax: invalid leading UTF-8 octet");
    ASSERT_FAILS(ctx, llmq_qtable_load(ctx, dir, &t), LLMQ_ERR_IO, dir); /* a directory */

    /* create, destroy, count, name_at */
    assert_int_equal(llmq_qtable_create(NULL, &t), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_create(ctx, NULL), LLMQ_ERR_INVALID_ARG, "out=NULL");
    llmq_qtable_destroy(NULL);
    assert_int_equal(llmq_qtable_count(NULL), 0);
    assert_null(llmq_qtable_name_at(NULL, 0));
    ASSERT_OK(ctx, llmq_qtable_create(ctx, &t));
    assert_null(llmq_qtable_name_at(t, 0));
    assert_null(llmq_qtable_name_at(t, -1));

    /* set: every argument */
    llmq_scheme *s =
        test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_TENSOR, 0, 0);
    float sv[2] = {0.5f, 0.25f};
    int32_t zv[2] = {0, 0};
    const int64_t one = 1, two = 2;
    llmq_tensor *sc = NULL, *zp = NULL, *sc2 = NULL, *zp2 = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &one, sv, 0, &sc));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, 1, &one, zv, 0, &zp));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &two, sv, 0, &sc2));
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_S32, 1, &two, zv, 0, &zp2));
    assert_int_equal(llmq_qtable_set(NULL, t, "w", s, sc, zp), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, NULL, "w", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "llmq_qtable_set: table=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, NULL, s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "llmq_qtable_set: name=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "name=\"\": must be 1 to 4096 bytes long");
    char *longname = malloc(5000);
    memset(longname, 'a', 4999);
    longname[4999] = '\0';
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, longname, s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "must be 1 to 4096 bytes long");
    free(longname);
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "bad\xc3(", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "must be valid UTF-8");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", NULL, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "scheme=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, NULL, zp), LLMQ_ERR_INVALID_ARG,
                 "scale=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, NULL), LLMQ_ERR_INVALID_ARG,
                 "zero_point=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, zp, zp), LLMQ_ERR_INVALID_ARG,
                 "scale=s32 tensor: must be f32");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, sc), LLMQ_ERR_INVALID_ARG,
                 "zero_point=f32 tensor: must be s32");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, zp2), LLMQ_ERR_INVALID_ARG,
                 "zero_point=[2]: shape differs from scale=[1]");
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc2, zp2), LLMQ_ERR_INVALID_ARG,
                 "scale=[2]: per_tensor parameters are shaped [1]");
    sv[0] = -1.0f;
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "scale[0]=-1: must be a positive normal float");
    sv[0] = NAN;
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "scale[0]=nan: must be a positive normal float");
    sv[0] = 0.5f;
    zv[0] = 128;
    ASSERT_FAILS(ctx, llmq_qtable_set(ctx, t, "w", s, sc, zp), LLMQ_ERR_INVALID_ARG,
                 "zero_point[0]=128: outside the s8 grid [-128, 127]");
    zv[0] = 0;
    assert_int_equal(llmq_qtable_count(t), 0);
    ASSERT_OK(ctx, llmq_qtable_set(ctx, t, "w", s, sc, zp));

    /* get and apply */
    const llmq_scheme *gs = (const llmq_scheme *)&gs;
    const llmq_tensor *gc = (const llmq_tensor *)&gc, *gz = (const llmq_tensor *)&gz;
    assert_int_equal(llmq_qtable_get(NULL, t, "w", &gs, &gc, &gz), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_get(ctx, NULL, "w", &gs, &gc, &gz), LLMQ_ERR_INVALID_ARG,
                 "llmq_qtable_get: table=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_get(ctx, t, NULL, &gs, &gc, &gz), LLMQ_ERR_INVALID_ARG,
                 "name=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_get(ctx, t, "v", &gs, &gc, &gz), LLMQ_ERR_INVALID_ARG,
                 "llmq_qtable_get: name=\"v\": no such entry");
    assert_null(gs);
    assert_null(gc);
    assert_null(gz);
    const int64_t shape[2] = {2, 3};
    float x[6] = {-1, 0.25f, 0.5f, 1, 2, -3};
    llmq_tensor *src = test_wrap_f32(ctx, x, 2, shape), *q = NULL, *u8 = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_S8, 2, shape, &q));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U8, 2, shape, &u8));
    assert_int_equal(llmq_qtable_apply(NULL, t, "w", q), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_apply(ctx, NULL, "w", q), LLMQ_ERR_INVALID_ARG, "table=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_apply(ctx, t, "v", q), LLMQ_ERR_INVALID_ARG, "no such entry");
    ASSERT_FAILS(ctx, llmq_qtable_apply(ctx, t, "w", NULL), LLMQ_ERR_INVALID_ARG, "dst=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_apply(ctx, t, "w", u8), LLMQ_ERR_INVALID_ARG,
                 "llmq_qtable_apply: dst=u8 tensor: the parameters are for s8 tensors");
    ASSERT_OK(ctx, llmq_qtable_apply(ctx, t, "w", q));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, q));
    const int8_t *codes = llmq_tensor_data(q);
    assert_int_equal(codes[0], -2); /* -1 / 0.5 */
    assert_int_equal(codes[5], -6);

    /* save: arguments, unwritable places; a failure leaves nothing behind */
    assert_int_equal(llmq_qtable_save(NULL, t, "x"), LLMQ_ERR_INVALID_ARG);
    ASSERT_FAILS(ctx, llmq_qtable_save(ctx, NULL, "x"), LLMQ_ERR_INVALID_ARG, "table=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_save(ctx, t, NULL), LLMQ_ERR_INVALID_ARG, "path=NULL");
    ASSERT_FAILS(ctx, llmq_qtable_save(ctx, t, ""), LLMQ_ERR_INVALID_ARG, "path=\"\"");
    ASSERT_FAILS(ctx, llmq_qtable_save(ctx, t, in_dir("no/such/dir.yaml")), LLMQ_ERR_IO,
                 "cannot create a temporary file beside it: No such file or directory");
    const char *sub = in_dir("subdir");
    assert_int_equal(mkdir(sub, 0755), 0);
    ASSERT_FAILS(ctx, llmq_qtable_save(ctx, t, sub), LLMQ_ERR_IO, "cannot write: Is a directory");
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, "subdir.")); /* no temporary file left */
    closedir(d);
    /* saving over an existing file replaces it */
    const char *p = in_dir("over.yaml");
    write_all(p, "old", 3);
    ASSERT_OK(ctx, llmq_qtable_save(ctx, t, p));
    llmq_qtable *back = NULL;
    ASSERT_OK(ctx, llmq_qtable_load(ctx, p, &back));
    assert_tables_equal(t, back, ctx);
    llmq_qtable_destroy(back);

    llmq_tensor_destroy(src);
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(u8);
    llmq_tensor_destroy(sc);
    llmq_tensor_destroy(zp);
    llmq_tensor_destroy(sc2);
    llmq_tensor_destroy(zp2);
    llmq_scheme_destroy(s);
    llmq_qtable_destroy(t);
    llmq_context_destroy(ctx);
}

/* A quantizer's parameters go through a file and come back to quantize the same codes. */
static void calibrated_parameters_through_a_file(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    const int64_t shape[2] = {16, 24};
    float x[384];
    test_rng rng = {31};
    for (int i = 0; i < 384; i++)
        x[i] = test_rng_range(&rng, -2.0f, 6.0f);
    llmq_tensor *src = test_wrap_f32(ctx, x, 2, shape), *a = NULL, *b = NULL;
    llmq_scheme *s = test_scheme(ctx, LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC,
                                 LLMQ_GRANULARITY_PER_CHANNEL, 1, 0);
    llmq_quantizer *q = NULL;
    ASSERT_OK(ctx, llmq_quantizer_create(ctx, s, LLMQ_OBSERVER_MSE, &q));
    ASSERT_OK(ctx, llmq_quantizer_observe(ctx, q, src));
    ASSERT_OK(ctx, llmq_quantizer_finalize(ctx, q));
    llmq_qtable *t = NULL, *back = NULL;
    ASSERT_OK(ctx, llmq_qtable_create(ctx, &t));
    ASSERT_OK(ctx, llmq_qtable_set(ctx, t, "layer.input", llmq_quantizer_scheme(q),
                                   llmq_quantizer_scale(q), llmq_quantizer_zero_point(q)));
    const char *p = in_dir("calib.yaml");
    ASSERT_OK(ctx, llmq_qtable_save(ctx, t, p));
    ASSERT_OK(ctx, llmq_qtable_load(ctx, p, &back));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U4, 2, shape, &a));
    ASSERT_OK(ctx, llmq_tensor_create(ctx, LLMQ_DTYPE_U4, 2, shape, &b));
    ASSERT_OK(ctx, llmq_quantizer_apply(ctx, q, a));
    ASSERT_OK(ctx, llmq_qtable_apply(ctx, back, "layer.input", b));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, a));
    ASSERT_OK(ctx, llmq_quantize(ctx, src, b));
    assert_memory_equal(llmq_tensor_data(a), llmq_tensor_data(b), llmq_tensor_nbytes(a));
    llmq_tensor_destroy(a);
    llmq_tensor_destroy(b);
    llmq_tensor_destroy(src);
    llmq_qtable_destroy(t);
    llmq_qtable_destroy(back);
    llmq_quantizer_destroy(q);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_is_bit_exact_and_byte_identical),
        cmocka_unit_test(every_truncation_fails_cleanly),
        cmocka_unit_test(validation_errors_name_position_key_reason),
        cmocka_unit_test(files_and_misuse),
        cmocka_unit_test(calibrated_parameters_through_a_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
