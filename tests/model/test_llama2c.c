/* test_llama2c.c - llama2.c checkpoints: crafted files (names, shapes, shared and separate
 * classifiers, truncation, bad headers) and the real models of ../shared/models (skipped
 * cleanly when absent). SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testing.h"

static const char *models_dir;

/* A checkpoint with the given header; weights are their own float index so slices can be
 * checked. extra: floats added (or removed, if negative) at the end. */
static const char *write_ckpt(const int32_t h[7], long extra)
{
    static char path[] = "/tmp/llmq-l2c-XXXXXX";
    strcpy(path, "/tmp/llmq-l2c-XXXXXX");
    const int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    fwrite(h, 4, 7, f);
    const long dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv = h[4];
    const long vocab = labs(h[5]), seq = h[6], hs = dim / heads;
    long n = vocab * dim + layers * (dim + dim * dim + 2 * kv * hs * dim + dim * dim + dim +
                                     3 * hidden * dim) + dim + seq * hs;
    if (h[5] < 0)
        n += vocab * dim;
    n += extra;
    for (long i = 0; i < n; i++) {
        const float v = (float)i;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
    return path;
}

static const llmq_tensor *get(llmq_context *ctx, const llmq_model *m, const char *name,
                              llmq_tensor **keep)
{
    ASSERT_OK(ctx, llmq_model_tensor(ctx, m, name, keep));
    return *keep;
}

static void crafted_checkpoints(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    /* dim 8, hidden 12, 2 layers, 4 heads, 2 kv heads (head size 2, kv dim 4), vocab 10 */
    int32_t h[7] = {8, 12, 2, 4, 2, 10, 6};
    for (int shared = 1; shared >= 0; shared--) {
        h[5] = shared ? 10 : -10;
        const char *p = write_ckpt(h, 0);
        llmq_model *m = NULL;
        ASSERT_OK(ctx, llmq_model_open(ctx, p, &m));
        assert_int_equal(llmq_model_get_format(m), LLMQ_MODEL_FORMAT_LLAMA2C);
        assert_int_equal(llmq_model_tensor_count(m), 1 + 2 * 9 + 1 + 1);
        assert_string_equal(llmq_model_metadata(m, "llama2c.n_kv_heads"), "2");
        assert_string_equal(llmq_model_metadata(m, "llama2c.vocab_size"), "10");
        assert_string_equal(llmq_model_metadata(m, "llama2c.shared_classifier"), shared ? "1" : "0");
        llmq_tensor *t[6];
        const llmq_tensor *emb = get(ctx, m, "tok_embeddings.weight", &t[0]);
        const llmq_tensor *wk1 = get(ctx, m, "layers.1.attention.wk.weight", &t[1]);
        const llmq_tensor *w2 = get(ctx, m, "layers.0.feed_forward.w2.weight", &t[2]);
        const llmq_tensor *norm = get(ctx, m, "norm.weight", &t[3]);
        const llmq_tensor *out = get(ctx, m, "output.weight", &t[4]);
        const llmq_tensor *rms = get(ctx, m, "layers.1.ffn_norm.weight", &t[5]);
        assert_int_equal(llmq_tensor_dim(emb, 0), 10);
        assert_int_equal(llmq_tensor_dim(wk1, 0), 4);
        assert_int_equal(llmq_tensor_dim(wk1, 1), 8);
        assert_int_equal(llmq_tensor_dim(w2, 0), 8);
        assert_int_equal(llmq_tensor_dim(w2, 1), 12);
        assert_int_equal(llmq_tensor_ndim(norm), 1);
        /* offsets: emb 80, rms_att 16, wq 128, wk 2 x 32: layer 1's wk starts at 80+16+128+32 */
        assert_true(((const float *)llmq_tensor_data(wk1))[0] == 256.0f);
        /* rms_ffn after wo (128): 80+16+128+64+64+128 = 480, layer 1 at 488 */
        assert_true(((const float *)llmq_tensor_data(rms))[0] == 488.0f);
        if (shared)
            assert_ptr_equal(llmq_tensor_data(out), llmq_tensor_data(emb));
        else /* after norm (8 floats at 1064) and the RoPE tables (6 * 2) */
            assert_true(((const float *)llmq_tensor_data(out))[0] ==
                        ((const float *)llmq_tensor_data(norm))[0] + 8 + 12);
        for (int i = 0; i < 6; i++)
            llmq_tensor_destroy(t[i]);
        llmq_model_destroy(m);
        unlink(p);
    }
    /* truncated and padded files */
    for (int k = 0; k < 2; k++) {
        h[5] = 10;
        const char *p = write_ckpt(h, k ? 3 : -1);
        llmq_model *m = NULL;
        ASSERT_FAILS(ctx, llmq_model_open(ctx, p, &m), LLMQ_ERR_PARSE,
                     "a llama2.c checkpoint with this header has 4368 bytes of weights");
        unlink(p);
    }
    /* inconsistent header: 3 heads do not divide dim 8 */
    h[3] = 3;
    const char *p = write_ckpt((int32_t[7]){8, 12, 2, 4, 2, 10, 6}, 0);
    FILE *f = fopen(p, "r+b");
    fwrite(h, 4, 7, f);
    fclose(f);
    llmq_model *m = NULL;
    ASSERT_FAILS(ctx, llmq_model_open(ctx, p, &m), LLMQ_ERR_PARSE, "n_heads=3");
    unlink(p);
    llmq_context_destroy(ctx);
}

static void shared_models(void **state)
{
    (void)state;
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/stories260K/stories260K.bin", models_dir);
    snprintf(p2, sizeof p2, "%s/babyllama-tok105/model5000.bin", models_dir);
    if (access(p1, R_OK) != 0 || access(p2, R_OK) != 0)
        skip(); /* ../shared/models is not beside this checkout */
    llmq_context *ctx = test_context();
    llmq_model *m = NULL;
    ASSERT_OK(ctx, llmq_model_open(ctx, p1, &m));
    assert_string_equal(llmq_model_metadata(m, "llama2c.dim"), "64");
    assert_string_equal(llmq_model_metadata(m, "llama2c.hidden_dim"), "172");
    assert_string_equal(llmq_model_metadata(m, "llama2c.n_layers"), "5");
    assert_string_equal(llmq_model_metadata(m, "llama2c.n_kv_heads"), "4");
    assert_string_equal(llmq_model_metadata(m, "llama2c.vocab_size"), "512");
    assert_int_equal(llmq_model_tensor_count(m), 1 + 5 * 9 + 2);
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_model_tensor(ctx, m, "layers.4.feed_forward.w2.weight", &t));
    assert_int_equal(llmq_tensor_dim(t, 0), 64);
    assert_int_equal(llmq_tensor_dim(t, 1), 172);
    llmq_tensor_destroy(t);
    llmq_model_destroy(m);
    ASSERT_OK(ctx, llmq_model_open(ctx, p2, &m));
    assert_string_equal(llmq_model_metadata(m, "llama2c.dim"), "128");
    assert_string_equal(llmq_model_metadata(m, "llama2c.vocab_size"), "105");
    assert_string_equal(llmq_model_metadata(m, "llama2c.seq_len"), "256");
    llmq_model_destroy(m);
    llmq_context_destroy(ctx);
}

int main(int argc, char **argv)
{
    models_dir = argc > 1 ? argv[1] : "../shared/models";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crafted_checkpoints),
        cmocka_unit_test(shared_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
