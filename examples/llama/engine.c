/* engine.c - the forward pass of llama2.c models (RMSNorm, RoPE, grouped-query attention,
 * SwiGLU, KV cache) with every linear layer through llmq. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "eval.h"

static int fail(llmq_context *ctx, const char *what, llmq_status st)
{
    fprintf(stderr, "llmq-llama: %s: %s: %s\n", what, llmq_status_name(st),
            llmq_context_last_error(ctx));
    return -1;
}

static int weight(llama *m, const char *name, llmq_tensor **out)
{
    const llmq_status st = llmq_model_tensor(m->ctx, m->file, name, out);
    return st == LLMQ_OK ? 0 : fail(m->ctx, name, st);
}

static int linear_open(llama *m, llama_linear *l, const char *name)
{
    snprintf(l->name, sizeof l->name, "%s", name);
    if (weight(m, name, &l->w) != 0)
        return -1;
    l->out = llmq_tensor_dim(l->w, 0);
    l->in = llmq_tensor_dim(l->w, 1);
    return 0;
}

static void device_buffers_close(llama_linear *l)
{
    llmq_tensor_destroy(l->x_dev);
    llmq_tensor_destroy(l->y_dev);
    llmq_tensor_destroy(l->act_dev);
    l->x_dev = l->y_dev = l->act_dev = NULL;
    l->dev_rows = 0;
}

static void linear_close(llama_linear *l)
{
    device_buffers_close(l);
    llmq_tensor_destroy(l->wq_dev);
    llmq_tensor_destroy(l->w);
    llmq_tensor_destroy(l->wq);
    llmq_tensor_destroy(l->act_q);
    llmq_scheme_destroy(l->act);
    llmq_quantizer_destroy(l->calib);
    memset(l, 0, sizeof *l);
}

int llama_linear_count(const llama *m)
{
    return m->cfg.n_layers * 7 + 1;
}

llama_linear *llama_linear_at(llama *m, int i)
{
    if (i == m->cfg.n_layers * 7)
        return &m->cls;
    llama_layer *L = &m->layers[i / 7];
    llama_linear *all[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
    return all[i % 7];
}

static int meta_int(const llama *m, const char *key)
{
    const char *v = llmq_model_metadata(m->file, key);
    return v != NULL ? atoi(v) : 0;
}

int llama_open(llama *m, llmq_context *ctx, const char *path, int max_batch)
{
    memset(m, 0, sizeof *m);
    m->ctx = ctx;
    m->device = strncmp(llmq_context_backend_name(ctx), "cuda", 4) == 0;
    llmq_status st = llmq_model_open(ctx, path, &m->file);
    if (st != LLMQ_OK)
        return fail(ctx, path, st);
    if (llmq_model_get_format(m->file) != LLMQ_MODEL_FORMAT_LLAMA2C) {
        fprintf(stderr, "llmq-llama: %s: not a llama2.c checkpoint\n", path);
        return -1;
    }
    llama_config *c = &m->cfg;
    c->dim = meta_int(m, "llama2c.dim");
    c->hidden_dim = meta_int(m, "llama2c.hidden_dim");
    c->n_layers = meta_int(m, "llama2c.n_layers");
    c->n_heads = meta_int(m, "llama2c.n_heads");
    c->n_kv_heads = meta_int(m, "llama2c.n_kv_heads");
    c->vocab_size = meta_int(m, "llama2c.vocab_size");
    c->seq_len = meta_int(m, "llama2c.seq_len");
    c->head_size = c->dim / c->n_heads;
    c->kv_dim = c->n_kv_heads * c->head_size;
    /* positions may run past the trained context (the evaluation protocol scores 257 tokens
       even for a 256-token model): RoPE has no limit, the cache is sized for both */
    m->max_batch = max_batch;
    m->max_pos = max_batch > c->seq_len ? max_batch : c->seq_len;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (m->layers == NULL || weight(m, "tok_embeddings.weight", &m->emb_t) != 0 ||
        weight(m, "norm.weight", &m->norm_t) != 0 || linear_open(m, &m->cls, "output.weight") != 0)
        return -1;
    static const char *const lin[7] = {"attention.wq", "attention.wk", "attention.wv",
                                       "attention.wo", "feed_forward.w1", "feed_forward.w2",
                                       "feed_forward.w3"};
    char name[96];
    for (int l = 0; l < c->n_layers; l++) {
        snprintf(name, sizeof name, "layers.%d.attention_norm.weight", l);
        if (weight(m, name, &m->layers[l].rms_att) != 0)
            return -1;
        snprintf(name, sizeof name, "layers.%d.ffn_norm.weight", l);
        if (weight(m, name, &m->layers[l].rms_ffn) != 0)
            return -1;
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "layers.%d.%s.weight", l, lin[i]);
            if (linear_open(m, llama_linear_at(m, l * 7 + i), name) != 0)
                return -1;
        }
    }
    const size_t b = (size_t)m->max_batch, cache = (size_t)c->n_layers * m->max_pos * c->kv_dim;
    m->kcache = calloc(cache, sizeof(float));
    m->vcache = calloc(cache, sizeof(float));
    m->x = malloc(b * c->dim * sizeof(float));
    m->xb = malloc(b * c->dim * sizeof(float));
    m->q = malloc(b * c->dim * sizeof(float));
    m->k = malloc(b * c->kv_dim * sizeof(float));
    m->v = malloc(b * c->kv_dim * sizeof(float));
    m->att = malloc(b * c->dim * sizeof(float));
    m->hb = malloc(b * c->hidden_dim * sizeof(float));
    m->hb2 = malloc(b * c->hidden_dim * sizeof(float));
    m->scores = malloc((size_t)m->max_pos * sizeof(float));
    if (!m->kcache || !m->vcache || !m->x || !m->xb || !m->q || !m->k || !m->v || !m->att ||
        !m->hb || !m->hb2 || !m->scores) {
        fprintf(stderr, "llmq-llama: out of memory\n");
        return -1;
    }
    return 0;
}

void llama_close(llama *m)
{
    for (int i = 0; m->layers != NULL && i < llama_linear_count(m); i++)
        linear_close(llama_linear_at(m, i));
    for (int l = 0; m->layers != NULL && l < m->cfg.n_layers; l++) {
        llmq_tensor_destroy(m->layers[l].rms_att);
        llmq_tensor_destroy(m->layers[l].rms_ffn);
    }
    if (m->layers == NULL)
        linear_close(&m->cls);
    llmq_tensor_destroy(m->emb_t);
    llmq_tensor_destroy(m->norm_t);
    llmq_model_destroy(m->file);
    free(m->layers);
    free(m->kcache);
    free(m->vcache);
    free(m->x);
    free(m->xb);
    free(m->q);
    free(m->k);
    free(m->v);
    free(m->att);
    free(m->hb);
    free(m->hb2);
    free(m->scores);
    memset(m, 0, sizeof *m);
}

int llama_linear_configure(llama *m, llama_linear *l, const llmq_scheme *weights,
                           const llmq_scheme *activations)
{
    llmq_tensor_destroy(l->wq);
    llmq_tensor_destroy(l->act_q);
    llmq_scheme_destroy(l->act);
    llmq_quantizer_destroy(l->calib);
    llmq_tensor_destroy(l->wq_dev);
    device_buffers_close(l);
    l->wq_dev = NULL;
    l->wq = l->act_q = NULL;
    l->act = NULL;
    l->calib = NULL;
    l->act_rows = 0;
    l->act_static = l->calibrated = 0;
    if (weights == NULL)
        return 0;
    const int64_t shape[2] = {l->out, l->in};
    llmq_status st = llmq_tensor_create_quantized(m->ctx, weights, 2, shape, &l->wq);
    if (st == LLMQ_OK)
        st = llmq_quantize_dynamic(m->ctx, l->w, l->wq);
    if (st == LLMQ_OK && m->device) /* upload once: the copy carries scheme and parameters */
        st = llmq_tensor_create_device(m->ctx, llmq_scheme_dtype(weights), 2, shape, &l->wq_dev);
    if (st == LLMQ_OK && m->device)
        st = llmq_tensor_copy(m->ctx, l->wq, l->wq_dev);
    if (st != LLMQ_OK)
        return fail(m->ctx, l->name, st);
    if (activations == NULL)
        return 0;
    /* keep a private copy of the activation scheme */
    st = llmq_scheme_create(m->ctx, llmq_scheme_dtype(activations), &l->act);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_symmetry(l->act, llmq_scheme_symmetry(activations));
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(l->act, llmq_scheme_granularity(activations));
    if (st == LLMQ_OK && llmq_scheme_group_size(activations) > 0)
        st = llmq_scheme_set_group_size(l->act, llmq_scheme_group_size(activations));
    if (st == LLMQ_OK)
        st = llmq_scheme_set_axis(l->act, llmq_scheme_axis(activations));
    return st == LLMQ_OK ? 0 : fail(m->ctx, l->name, st);
}

/* The host template of a static layer's quantized activations: scheme and calibrated
 * parameters bound to an [n, in] tensor. */
static llmq_status static_template(llmq_context *ctx, llama_linear *l, const int64_t *xs)
{
    if (l->act_q != NULL && l->act_rows == xs[0])
        return LLMQ_OK;
    llmq_tensor_destroy(l->act_q);
    l->act_q = NULL;
    l->act_rows = xs[0];
    llmq_status st = llmq_tensor_create_quantized(ctx, l->act, 2, xs, &l->act_q);
    if (st == LLMQ_OK)
        st = llmq_quantizer_apply(ctx, l->calib, l->act_q);
    return st;
}

/* The same product on the device: x copied up, activations quantized and the product taken
 * there, y copied back (the copy waits for the stream). */
static llmq_status linear_device(llama *m, llama_linear *l, const llmq_tensor *xt,
                                 llmq_tensor *yt, int quantize_act)
{
    llmq_context *ctx = m->ctx;
    const int64_t n = llmq_tensor_dim(xt, 0), xs[2] = {n, l->in}, ys[2] = {n, l->out};
    llmq_status st = LLMQ_OK;
    if (l->dev_rows != n || (quantize_act && l->act_dev == NULL)) {
        device_buffers_close(l);
        st = llmq_tensor_create_device(ctx, LLMQ_DTYPE_F32, 2, xs, &l->x_dev);
        if (st == LLMQ_OK)
            st = llmq_tensor_create_device(ctx, LLMQ_DTYPE_F32, 2, ys, &l->y_dev);
        if (st == LLMQ_OK && quantize_act) {
            st = llmq_tensor_create_device(ctx, llmq_scheme_dtype(l->act), 2, xs, &l->act_dev);
            if (st == LLMQ_OK && l->act_static) { /* the calibrated parameters, uploaded */
                st = static_template(ctx, l, xs);
                if (st == LLMQ_OK)
                    st = llmq_tensor_copy(ctx, l->act_q, l->act_dev);
            } else if (st == LLMQ_OK) {
                st = llmq_tensor_set_scheme(ctx, l->act_dev, l->act);
            }
        }
        l->dev_rows = n;
    }
    if (st == LLMQ_OK)
        st = llmq_tensor_copy(ctx, xt, l->x_dev);
    const llmq_tensor *a = l->x_dev;
    if (st == LLMQ_OK && quantize_act) {
        st = l->act_static ? llmq_quantize(ctx, l->x_dev, l->act_dev)
                           : llmq_quantize_dynamic(ctx, l->x_dev, l->act_dev);
        a = l->act_dev;
    }
    if (st == LLMQ_OK)
        st = llmq_matmul(ctx, a, l->wq_dev, NULL, l->y_dev);
    if (st == LLMQ_OK)
        st = llmq_tensor_copy(ctx, l->y_dev, yt);
    return st;
}

/* y[n, out] = x[n, in] W^T */
static int linear(llama *m, llama_linear *l, const float *x, int64_t n, float *y)
{
    if (m->observe != NULL && m->observe(m->observe_user, l, x, n) != 0)
        return -1;
    if (l->wq == NULL) { /* the float path: a plain dot product per output */
        const float *w = llmq_tensor_data(l->w);
        for (int64_t r = 0; r < n; r++)
            for (int64_t o = 0; o < l->out; o++) {
                const float *wr = w + o * l->in, *xr = x + r * l->in;
                float s = 0.0f;
                for (int64_t i = 0; i < l->in; i++)
                    s += wr[i] * xr[i];
                y[r * l->out + o] = s;
            }
        return 0;
    }
    llmq_context *ctx = m->ctx;
    const int64_t xs[2] = {n, l->in}, ys[2] = {n, l->out};
    llmq_tensor *xt = NULL, *yt = NULL;
    llmq_status st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, xs, (void *)x, 0, &xt);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, ys, y, 0, &yt);
    /* static layers run with float activations until their calibration is done */
    const int quantize_act = l->act != NULL && (!l->act_static || l->calibrated);
    if (st == LLMQ_OK && quantize_act && !l->act_static && m->outlier_threshold > 0.0f) {
        int64_t count = 0; /* LLM.int8(): on the CPU, whatever the context's backend */
        st = llmq_matmul_outlier(ctx, xt, l->wq, NULL, yt, l->act, m->outlier_threshold, &count);
        m->outlier_columns += count;
        m->columns += l->in;
        llmq_tensor_destroy(xt);
        llmq_tensor_destroy(yt);
        return st == LLMQ_OK ? 0 : fail(ctx, l->name, st);
    }
    if (st == LLMQ_OK && m->device) {
        st = linear_device(m, l, xt, yt, quantize_act);
        llmq_tensor_destroy(xt);
        llmq_tensor_destroy(yt);
        return st == LLMQ_OK ? 0 : fail(ctx, l->name, st);
    }
    const llmq_tensor *a = xt;
    if (st == LLMQ_OK && quantize_act) {
        if (l->act_static) { /* the calibrated scale and zero point */
            st = static_template(ctx, l, xs);
        } else if (l->act_rows != n) {
            llmq_tensor_destroy(l->act_q);
            l->act_q = NULL;
            st = llmq_tensor_create_quantized(ctx, l->act, 2, xs, &l->act_q);
            l->act_rows = n;
        }
        if (st == LLMQ_OK)
            st = l->act_static ? llmq_quantize(ctx, xt, l->act_q)
                               : llmq_quantize_dynamic(ctx, xt, l->act_q);
        a = l->act_q;
    }
    if (st == LLMQ_OK)
        st = llmq_matmul(ctx, a, l->wq, NULL, yt);
    llmq_tensor_destroy(xt);
    llmq_tensor_destroy(yt);
    return st == LLMQ_OK ? 0 : fail(ctx, l->name, st);
}

static void rmsnorm(float *out, const float *x, const float *w, int n)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + 1e-5f);
    for (int i = 0; i < n; i++)
        out[i] = w[i] * (ss * x[i]);
}

static void rope(float *v, int n, int head_size, int pos)
{
    for (int i = 0; i < n; i += 2) {
        const int hd = i % head_size;
        const float freq = 1.0f / powf(10000.0f, (float)hd / (float)head_size);
        const float a = (float)pos * freq, c = cosf(a), s = sinf(a);
        const float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * c - v1 * s;
        v[i + 1] = v0 * s + v1 * c;
    }
}

/* Causal grouped-query attention of row r (position pos) over the cache of layer l. */
static void attend(llama *m, int l, int r, int pos)
{
    const llama_config *c = &m->cfg;
    const int group = c->n_heads / c->n_kv_heads;
    const float inv = 1.0f / sqrtf((float)c->head_size);
    const float *kc = m->kcache + (size_t)l * m->max_pos * c->kv_dim;
    const float *vc = m->vcache + (size_t)l * m->max_pos * c->kv_dim;
    for (int h = 0; h < c->n_heads; h++) {
        const float *q = m->q + (size_t)r * c->dim + h * c->head_size;
        const int kvh = (h / group) * c->head_size;
        float mx = -INFINITY;
        for (int t = 0; t <= pos; t++) {
            const float *k = kc + (size_t)t * c->kv_dim + kvh;
            float s = 0.0f;
            for (int i = 0; i < c->head_size; i++)
                s += q[i] * k[i];
            m->scores[t] = s * inv;
            mx = m->scores[t] > mx ? m->scores[t] : mx;
        }
        float sum = 0.0f;
        for (int t = 0; t <= pos; t++) {
            m->scores[t] = expf(m->scores[t] - mx);
            sum += m->scores[t];
        }
        float *out = m->att + (size_t)r * c->dim + h * c->head_size;
        memset(out, 0, (size_t)c->head_size * sizeof *out);
        for (int t = 0; t <= pos; t++) {
            const float a = m->scores[t] / sum, *v = vc + (size_t)t * c->kv_dim + kvh;
            for (int i = 0; i < c->head_size; i++)
                out[i] += a * v[i];
        }
    }
}

int llama_forward(llama *m, const int32_t *tokens, int n, int pos0, float *logits)
{
    const llama_config *c = &m->cfg;
    if (n < 1 || n > m->max_batch || pos0 < 0 || pos0 + n > m->max_pos) {
        fprintf(stderr, "llmq-llama: forward of %d tokens at %d: out of range\n", n, pos0);
        return -1;
    }
    const float *emb = llmq_tensor_data(m->emb_t);
    for (int r = 0; r < n; r++)
        memcpy(m->x + (size_t)r * c->dim, emb + (size_t)tokens[r] * c->dim,
               (size_t)c->dim * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        llama_layer *L = &m->layers[l];
        for (int r = 0; r < n; r++)
            rmsnorm(m->xb + (size_t)r * c->dim, m->x + (size_t)r * c->dim,
                    llmq_tensor_data(L->rms_att), c->dim);
        if (linear(m, &L->wq, m->xb, n, m->q) || linear(m, &L->wk, m->xb, n, m->k) ||
            linear(m, &L->wv, m->xb, n, m->v))
            return -1;
        float *kc = m->kcache + (size_t)l * m->max_pos * c->kv_dim;
        float *vc = m->vcache + (size_t)l * m->max_pos * c->kv_dim;
        for (int r = 0; r < n; r++) {
            rope(m->q + (size_t)r * c->dim, c->dim, c->head_size, pos0 + r);
            rope(m->k + (size_t)r * c->kv_dim, c->kv_dim, c->head_size, pos0 + r);
            memcpy(kc + (size_t)(pos0 + r) * c->kv_dim, m->k + (size_t)r * c->kv_dim,
                   (size_t)c->kv_dim * sizeof(float));
            memcpy(vc + (size_t)(pos0 + r) * c->kv_dim, m->v + (size_t)r * c->kv_dim,
                   (size_t)c->kv_dim * sizeof(float));
        }
        for (int r = 0; r < n; r++)
            attend(m, l, r, pos0 + r);
        if (linear(m, &L->wo, m->att, n, m->xb))
            return -1;
        for (int64_t i = 0; i < (int64_t)n * c->dim; i++)
            m->x[i] += m->xb[i];
        for (int r = 0; r < n; r++)
            rmsnorm(m->xb + (size_t)r * c->dim, m->x + (size_t)r * c->dim,
                    llmq_tensor_data(L->rms_ffn), c->dim);
        if (linear(m, &L->w1, m->xb, n, m->hb) || linear(m, &L->w3, m->xb, n, m->hb2))
            return -1;
        for (int64_t i = 0; i < (int64_t)n * c->hidden_dim; i++) {
            const float h = m->hb[i];
            m->hb[i] = h / (1.0f + expf(-h)) * m->hb2[i]; /* SwiGLU */
        }
        if (linear(m, &L->w2, m->hb, n, m->xb))
            return -1;
        for (int64_t i = 0; i < (int64_t)n * c->dim; i++)
            m->x[i] += m->xb[i];
    }
    const float *norm = llmq_tensor_data(m->norm_t);
    for (int r = 0; r < n; r++)
        rmsnorm(m->xb + (size_t)r * c->dim, m->x + (size_t)r * c->dim, norm, c->dim);
    return linear(m, &m->cls, m->xb, n, logits);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        best = v[i] > v[best] ? i : best;
    return best;
}

int llama_greedy(llama *m, const int32_t *prompt, int n, int steps, int32_t *out, float *logits)
{
    const int vocab = m->cfg.vocab_size;
    if (llama_forward(m, prompt, n, 0, logits) != 0)
        return -1;
    int next = argmax(logits + (size_t)(n - 1) * vocab, vocab), produced = 0;
    for (int pos = n; produced < steps && pos < m->max_pos && next > 2; pos++) {
        out[produced++] = next;
        if (llama_forward(m, &next, 1, pos, logits) != 0)
            return -1;
        next = argmax(logits, vocab);
    }
    return produced;
}

double llama_weight_bytes(const llama *m)
{
    double bytes = 0.0;
    for (int i = 0; i < llama_linear_count(m); i++) {
        const llama_linear *l = llama_linear_at((llama *)m, i);
        if (l->wq == NULL) {
            bytes += (double)llmq_tensor_nbytes(l->w);
        } else {
            bytes += (double)llmq_tensor_nbytes(l->wq);
            bytes += (double)llmq_tensor_nbytes(llmq_tensor_scale(l->wq));
            if (llmq_scheme_symmetry(llmq_tensor_scheme(l->wq)) == LLMQ_SYMMETRY_ASYMMETRIC)
                bytes += (double)llmq_tensor_nbytes(llmq_tensor_zero_point(l->wq));
        }
    }
    return bytes;
}

/* The calibration hook: every input of a static layer goes to its quantizer. */
static int observe_static(void *user, llama_linear *l, const float *x, int64_t rows)
{
    llama *m = user;
    if (!l->act_static || l->calibrated || l->calib == NULL)
        return 0;
    const int64_t shape[2] = {rows, l->in};
    llmq_tensor *t = NULL;
    llmq_status st = llmq_tensor_wrap(m->ctx, LLMQ_DTYPE_F32, 2, shape, (void *)x, 0, &t);
    if (st == LLMQ_OK)
        st = llmq_quantizer_observe(m->ctx, l->calib, t);
    llmq_tensor_destroy(t);
    return st == LLMQ_OK ? 0 : fail(m->ctx, l->name, st);
}

int llama_calibrate(llama *m, const struct tokenizer *t, const char *text, int64_t max_tokens,
                    llama_quantizer_fn create, void *user)
{
    int any = 0;
    for (int i = 0; i < llama_linear_count(m); i++) {
        llama_linear *l = llama_linear_at(m, i);
        if (!l->act_static)
            continue;
        llmq_quantizer_destroy(l->calib);
        l->calib = create(user, l);
        l->calibrated = 0;
        if (l->calib == NULL)
            return -1;
        any = 1;
    }
    if (!any)
        return 0;
    m->observe = observe_static;
    m->observe_user = m;
    double nll;
    int64_t count;
    int rc = llama_eval(m, t, text, max_tokens, &nll, &count);
    m->observe = NULL;
    for (int i = 0; rc == 0 && i < llama_linear_count(m); i++) {
        llama_linear *l = llama_linear_at(m, i);
        if (!l->act_static)
            continue;
        const llmq_status st = llmq_quantizer_finalize(m->ctx, l->calib);
        if (st != LLMQ_OK)
            rc = fail(m->ctx, l->name, st);
        l->calibrated = st == LLMQ_OK;
        l->act_rows = 0; /* the next batch binds the calibrated parameters */
    }
    return rc;
}
