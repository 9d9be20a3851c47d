/* llama2c.c - llama2.c checkpoints (version 0): seven little-endian int32 hyper-parameters,
 * then float32 weights in a fixed order, presented under Meta's tensor names.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "model/model_impl.h"

enum { DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ_LEN, N_HEADER };

static int32_t le32(const uint8_t *b)
{
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24);
}

/* Add the entry `name` ([rows, cols] or [cols] when rows is 0) at *at floats, advancing it. */
static llmq_status add(llmq_model *m, const char *fn, const char *name, int64_t rows,
                       int64_t cols, uint64_t *at)
{
    llmq_model_entry e;
    memset(&e, 0, sizeof e);
    e.name = (char *)name;
    strcpy(e.file_dtype, "F32");
    e.known = true;
    e.dtype = LLMQ_DTYPE_F32;
    e.ndim = rows ? 2 : 1;
    e.shape[0] = rows ? rows : cols;
    e.shape[1] = cols;
    const uint64_t n = (uint64_t)(rows ? rows : 1) * (uint64_t)cols;
    e.begin = *at * 4;
    e.end = (*at + n) * 4;
    *at += n;
    return llmq_model_add_entry(m, fn, &e);
}

/* The per-layer slices of one stacked [layers, rows, cols] array, then advance past it. */
static llmq_status add_layers(llmq_model *m, const char *fn, const char *suffix, int64_t layers,
                              int64_t rows, int64_t cols, uint64_t *at)
{
    char name[128];
    for (int64_t l = 0; l < layers; l++) {
        snprintf(name, sizeof name, "layers.%lld.%s", (long long)l, suffix);
        LLMQ_TRY(add(m, fn, name, rows, cols, at));
    }
    return LLMQ_OK;
}

llmq_status llmq_llama2c_parse(llmq_model *m, const char *fn, const char *path)
{
    m->format = LLMQ_MODEL_FORMAT_LLAMA2C;
    if (m->map_size < 4 * N_HEADER)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: neither safetensors nor a llama2.c checkpoint", path);
    int64_t h[N_HEADER];
    for (int i = 0; i < N_HEADER; i++)
        h[i] = le32((const uint8_t *)m->map + 4 * i);
    const bool shared = h[VOCAB] > 0;
    const int64_t vocab = shared ? h[VOCAB] : -h[VOCAB];
    /* limits far above any llama2.c model keep every size below 2^62 */
    const bool sane = h[DIM] > 0 && h[DIM] <= (1 << 16) && h[HIDDEN] > 0 &&
                      h[HIDDEN] <= (1 << 18) && h[LAYERS] > 0 && h[LAYERS] <= 1024 &&
                      h[HEADS] > 0 && h[KV_HEADS] > 0 && h[KV_HEADS] <= h[HEADS] &&
                      h[DIM] % h[HEADS] == 0 && h[HEADS] % h[KV_HEADS] == 0 && vocab > 0 &&
                      vocab <= (1 << 22) && h[SEQ_LEN] > 0 && h[SEQ_LEN] <= (1 << 22) &&
                      (h[DIM] / h[HEADS]) % 2 == 0;
    if (!sane)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: neither safetensors nor a llama2.c checkpoint (header dim=%lld "
                         "hidden_dim=%lld n_layers=%lld n_heads=%lld n_kv_heads=%lld "
                         "vocab_size=%lld seq_len=%lld)", path, (long long)h[DIM],
                         (long long)h[HIDDEN], (long long)h[LAYERS], (long long)h[HEADS],
                         (long long)h[KV_HEADS], (long long)h[VOCAB], (long long)h[SEQ_LEN]);
    const int64_t dim = h[DIM], hidden = h[HIDDEN], layers = h[LAYERS];
    const int64_t head_size = dim / h[HEADS], kv_dim = h[KV_HEADS] * head_size;
    m->data = (const uint8_t *)m->map + 4 * N_HEADER;
    m->data_size = m->map_size - 4 * N_HEADER;

    uint64_t at = 0; /* in floats */
    const uint64_t emb = at;
    LLMQ_TRY(add(m, fn, "tok_embeddings.weight", vocab, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "attention_norm.weight", layers, 0, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "attention.wq.weight", layers, dim, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "attention.wk.weight", layers, kv_dim, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "attention.wv.weight", layers, kv_dim, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "attention.wo.weight", layers, dim, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "ffn_norm.weight", layers, 0, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "feed_forward.w1.weight", layers, hidden, dim, &at));
    LLMQ_TRY(add_layers(m, fn, "feed_forward.w2.weight", layers, dim, hidden, &at));
    LLMQ_TRY(add_layers(m, fn, "feed_forward.w3.weight", layers, hidden, dim, &at));
    LLMQ_TRY(add(m, fn, "norm.weight", 0, dim, &at));
    at += (uint64_t)h[SEQ_LEN] * (uint64_t)head_size; /* unused RoPE tables (real, imag) */
    uint64_t cls = emb;
    if (!shared)
        cls = at;
    LLMQ_TRY(add(m, fn, "output.weight", vocab, dim, &cls));
    if (!shared)
        at = cls;
    if (at * 4 != m->data_size)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: a llama2.c checkpoint with this header has %llu bytes of "
                         "weights, the file has %llu", path, (unsigned long long)(at * 4),
                         (unsigned long long)m->data_size);
    static const char *const keys[N_HEADER] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                               "n_kv_heads", "vocab_size", "seq_len"};
    char key[64], value[32];
    for (int i = 0; i < N_HEADER; i++) {
        snprintf(key, sizeof key, "llama2c.%s", keys[i]);
        snprintf(value, sizeof value, "%lld", (long long)(i == VOCAB ? vocab : h[i]));
        LLMQ_TRY(llmq_model_add_meta(m, fn, key, value));
    }
    return llmq_model_add_meta(m, fn, "llama2c.shared_classifier", shared ? "1" : "0");
}
