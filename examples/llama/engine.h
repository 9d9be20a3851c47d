/* engine.h - a small llama-style inference engine whose linear layers run through llmq.
 * SPDX-License-Identifier: MIT */
#ifndef LLAMA_ENGINE_H
#define LLAMA_ENGINE_H

#include <stdint.h>

#include <llmq.h>

typedef struct llama_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int head_size, kv_dim;
} llama_config;

/* y = x W^T. In float (w only), or through llmq_matmul with quantized weights wq and, when
 * act is set, activations quantized per the activation scheme (dynamically, or statically with
 * the calibrated act_scale / act_zero_point). */
typedef struct llama_linear {
    char name[96];
    int64_t out, in;
    llmq_tensor *w;       /* float weights (a view of the checkpoint) */
    llmq_tensor *wq;      /* quantized weights, or NULL */
    llmq_scheme *act;     /* activation scheme, or NULL for float activations */
    int act_static;       /* activation parameters come from calibration */
    llmq_quantizer *calib; /* the calibration of static activations; finalized when done */
    int calibrated;
    llmq_tensor *act_q;   /* quantized activations of the last batch size */
    int64_t act_rows;
    /* on a device context: the weights uploaded once, and device buffers of the last batch */
    llmq_tensor *wq_dev, *x_dev, *y_dev, *act_dev;
    int64_t dev_rows;
} llama_linear;

typedef struct llama_layer {
    llmq_tensor *rms_att, *rms_ffn;
    llama_linear wq, wk, wv, wo, w1, w2, w3;
} llama_layer;

/* Called with every activation a linear layer sees (calibration). */
typedef int (*llama_observe_fn)(void *user, llama_linear *l, const float *x, int64_t rows);

typedef struct llama {
    llmq_context *ctx;
    llmq_model *file;
    llama_config cfg;
    llmq_tensor *emb_t, *norm_t;
    llama_layer *layers;
    llama_linear cls;
    int max_batch, max_pos; /* rows of one forward; positions the cache holds */
    float *kcache, *vcache; /* [layer][pos][kv_dim] */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *scores;
    int device; /* a CUDA context: quantized linear layers run on the device */
    llama_observe_fn observe;
    void *observe_user;
    /* > 0: layers with dynamic activations run through llmq_matmul_outlier with this
     * threshold, counting the outlier columns over all products and the columns seen */
    float outlier_threshold;
    int64_t outlier_columns, columns;
} llama;

/* Open a llama2.c checkpoint through llmq_model; max_batch bounds the rows of one forward.
 * Returns 0, or -1 with a message on stderr. */
int llama_open(llama *m, llmq_context *ctx, const char *path, int max_batch);
void llama_close(llama *m);

/* Every linear layer, in a fixed order (7 per layer, then the classifier). */
int llama_linear_count(const llama *m);
llama_linear *llama_linear_at(llama *m, int i);

/* Quantize a layer's weights with `weights` (NULL: back to float) and set its activation
 * scheme (NULL: float activations). Returns 0 or -1 with a message. */
int llama_linear_configure(llama *m, llama_linear *l, const llmq_scheme *weights,
                           const llmq_scheme *activations);

/* Calibrate the static activations of the linear layers (those configured with act_static):
 * each gets the quantizer `create(user, layer)` returns, observes every input of the forwards
 * over `text` (the evaluation protocol's paragraphs, up to max_tokens predictions) and is
 * finalized. Until then those layers run with float activations. Returns 0 or -1. */
typedef llmq_quantizer *(*llama_quantizer_fn)(void *user, llama_linear *l);
struct tokenizer;
int llama_calibrate(llama *m, const struct tokenizer *t, const char *text, int64_t max_tokens,
                    llama_quantizer_fn create, void *user);

/* Forward n tokens at positions pos0.. (n <= max_batch, pos0 + n <= max_pos), writing n rows
 * of vocab_size logits. Returns 0 or -1 with a message. */
int llama_forward(llama *m, const int32_t *tokens, int n, int pos0, float *logits);

/* Greedy decoding: the prompt in one forward, then `steps` tokens one at a time (stopping at
 * BOS / EOS or the cache's end); writes the new tokens to out and returns their count, or -1.
 * logits must hold max_batch * vocab_size floats. */
int llama_greedy(llama *m, const int32_t *prompt, int n, int steps, int32_t *out, float *logits);

/* Bytes of the linear layers' weights as stored (codes and parameters). */
double llama_weight_bytes(const llama *m);

#endif
