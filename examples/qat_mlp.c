/* qat_mlp.c - quantization-aware training in plain C with llmq's fake-quant primitives.
 *
 * A 2-layer MLP (16 -> 64 tanh -> 8) learns a synthetic regression task (a random "teacher"
 * MLP of the same shape), in float32. Its weights are then quantized to 4 bits, symmetric,
 * one scale per output channel:
 *   - PTQ: scales from each row's max |w| (llmq_quantize_dynamic), no retraining;
 *   - QAT: starting from the PTQ model, fine-tune with fake-quantized weights in the forward
 *     (llmq_fake_quantize), the straight-through estimator for the weights and LSQ gradients
 *     for the scales in the backward (llmq_fake_quantize_backward).
 * The table compares the test losses; the program fails (exit 1) unless QAT recovers at least
 * half of the loss that PTQ lost. Deterministic (seeded), a few seconds on one core.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmq.h>

enum { D = 16, H = 64, O = 8, NTRAIN = 4096, NTEST = 2048, BATCH = 64 };

/* ---- a small deterministic generator (SplitMix64) ---- */
static uint64_t rng_state = 12345;

static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static float normal(void) /* Box-Muller */
{
    const double u = uniform() + 0x1p-60, v = uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ---- the network ---- */
typedef struct mlp {
    float w1[H * D], b1[H], w2[O * H], b2[O];
} mlp;

typedef struct acts {
    float h[BATCH * H], y[BATCH * O];
} acts;

static void init_mlp(mlp *m, float gain)
{
    for (int i = 0; i < H * D; i++)
        m->w1[i] = normal() * gain / sqrtf((float)D);
    for (int i = 0; i < O * H; i++)
        m->w2[i] = normal() * gain / sqrtf((float)H);
    for (int i = 0; i < H; i++)
        m->b1[i] = 0.1f * normal();
    for (int i = 0; i < O; i++)
        m->b2[i] = 0.1f * normal();
}

/* y = w2 tanh(w1 x + b1) + b2 for n <= BATCH rows of x; w1 / w2 may be fake-quantized copies. */
static void forward(const mlp *m, const float *w1, const float *w2, const float *x, int n, acts *a)
{
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < H; j++) {
            float z = m->b1[j];
            for (int k = 0; k < D; k++)
                z += w1[j * D + k] * x[r * D + k];
            a->h[r * H + j] = tanhf(z);
        }
        for (int o = 0; o < O; o++) {
            float y = m->b2[o];
            for (int j = 0; j < H; j++)
                y += w2[o * H + j] * a->h[r * H + j];
            a->y[r * O + o] = y;
        }
    }
}

/* Mean squared error over the n rows; with g != NULL also its gradients (w.r.t. the weights
 * used in the forward, w1 / w2, and the biases). */
static double loss_and_grad(const mlp *m, const float *w1, const float *w2, const float *x,
                            const float *t, int n, acts *a, mlp *g)
{
    forward(m, w1, w2, x, n, a);
    double loss = 0.0;
    float dy[BATCH * O], dh[H];
    for (int i = 0; i < n * O; i++) {
        const float e = a->y[i] - t[i];
        loss += (double)e * e;
        dy[i] = 2.0f * e / (float)(n * O);
    }
    if (g == NULL)
        return loss / (n * O);
    memset(g, 0, sizeof *g);
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < H; j++)
            dh[j] = 0.0f;
        for (int o = 0; o < O; o++) {
            const float d = dy[r * O + o];
            g->b2[o] += d;
            for (int j = 0; j < H; j++) {
                g->w2[o * H + j] += d * a->h[r * H + j];
                dh[j] += d * w2[o * H + j];
            }
        }
        for (int j = 0; j < H; j++) {
            const float hj = a->h[r * H + j], dz = dh[j] * (1.0f - hj * hj);
            g->b1[j] += dz;
            for (int k = 0; k < D; k++)
                g->w1[j * D + k] += dz * x[r * D + k];
        }
    }
    return loss / (n * O);
}

static double test_loss(const mlp *m, const float *w1, const float *w2, const float *x,
                        const float *t)
{
    acts a;
    double sum = 0.0;
    for (int r = 0; r < NTEST; r += BATCH)
        sum += loss_and_grad(m, w1, w2, x + r * D, t + r * O, BATCH, &a, NULL) * BATCH;
    return sum / NTEST;
}

/* ---- Adam over a flat list of float arrays ---- */
typedef struct adam {
    float m[sizeof(mlp) / sizeof(float)], v[sizeof(mlp) / sizeof(float)];
    int t;
} adam;

static void adam_step(adam *opt, float *p, const float *g, int n, int offset, float lr)
{
    const float b1 = 0.9f, b2 = 0.999f;
    const float c1 = 1.0f - powf(b1, (float)opt->t), c2 = 1.0f - powf(b2, (float)opt->t);
    for (int i = 0; i < n; i++) {
        float *m = &opt->m[offset + i], *v = &opt->v[offset + i];
        *m = b1 * *m + (1.0f - b1) * g[i];
        *v = b2 * *v + (1.0f - b2) * g[i] * g[i];
        p[i] -= lr * (*m / c1) / (sqrtf(*v / c2) + 1e-8f);
    }
}

static void adam_mlp(adam *opt, mlp *m, const mlp *g, float lr)
{
    adam_step(opt, m->w1, g->w1, H * D, 0, lr);
    adam_step(opt, m->b1, g->b1, H, H * D, lr);
    adam_step(opt, m->w2, g->w2, O * H, H * D + H, lr);
    adam_step(opt, m->b2, g->b2, O, H * D + H + O * H, lr);
}

/* ---- llmq plumbing: one 4-bit weight quantizer per layer ---- */
typedef struct qlayer {
    llmq_tensor *w, *wq, *dwq, *dw; /* views of: weight, its fake quant, their gradients */
    llmq_tensor *q;                 /* the 4-bit tensor: per-channel scales and real codes */
    llmq_tensor *dscale;
    float fq[H * D], dfq[H * D], dwbuf[H * D], ds[H];
    float scale_m[H], scale_v[H]; /* Adam state of the scales */
} qlayer;

static llmq_status qlayer_init(llmq_context *ctx, const llmq_scheme *s, qlayer *l, float *w,
                               int rows, int cols)
{
    const int64_t shape[2] = {rows, cols}, pshape[1] = {rows};
    memset(l, 0, sizeof *l);
    llmq_status st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, w, 0, &l->w);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, l->fq, 0, &l->wq);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, l->dfq, 0, &l->dwq);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, shape, l->dwbuf, 0, &l->dw);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, pshape, l->ds, 0, &l->dscale);
    if (st == LLMQ_OK) /* PTQ: per-channel scales from each row's range, then 4-bit codes */
        st = llmq_tensor_create_quantized(ctx, s, 2, shape, &l->q);
    if (st == LLMQ_OK)
        st = llmq_quantize_dynamic(ctx, l->w, l->q);
    if (st == LLMQ_OK)
        st = llmq_dequantize(ctx, l->q, l->wq);
    return st;
}

static void qlayer_fini(qlayer *l)
{
    llmq_tensor *t[] = {l->w, l->wq, l->dwq, l->dw, l->q, l->dscale};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        llmq_tensor_destroy(t[i]);
}

/* Deployment: the real 4-bit codes with the layer's scales, dequantized into l->fq. */
static llmq_status qlayer_deploy(llmq_context *ctx, qlayer *l)
{
    llmq_status st = llmq_quantize(ctx, l->w, l->q);
    return st == LLMQ_OK ? llmq_dequantize(ctx, l->q, l->wq) : st;
}

typedef struct data {
    float xtr[NTRAIN * D], ttr[NTRAIN * O], xte[NTEST * D], tte[NTEST * O];
} data;

/* QAT fine-tuning of net (its latent float weights) from the PTQ state of l1 / l2: every step
 * fake-quantizes the weights (llmq_fake_quantize), back-propagates through the network, maps
 * the gradients of the fake-quantized weights to the latent weights with the straight-through
 * estimator and, when learn_scales, to the scales with LSQ (llmq_fake_quantize_backward).
 * Adam, cosine-decayed learning rate, QAT_BATCHES minibatches per step. Returns the test loss
 * of the deployed 4-bit model. */
enum { QAT_STEPS = 500, QAT_BATCHES = 8 };

static llmq_status qat(llmq_context *ctx, const llmq_scheme *s, mlp *net, qlayer *l1, qlayer *l2,
                       const data *dt, int learn_scales, double *loss)
{
    static adam opt;
    static mlp grad, sum;
    static acts a;
    qlayer *layers[2] = {l1, l2};
    const int64_t rows[2] = {H, O};
    /* LSQ's gradient scale, 1 / sqrt(elements per scale * qmax) */
    const float gf[2] = {1.0f / sqrtf((float)D * 7.0f), 1.0f / sqrtf((float)H * 7.0f)};
    memset(&opt, 0, sizeof opt);
    llmq_status st = LLMQ_OK;
    for (int step = 0; step < QAT_STEPS && st == LLMQ_OK; step++) {
        for (int k = 0; k < 2 && st == LLMQ_OK; k++)
            st = llmq_fake_quantize(ctx, layers[k]->w, s, llmq_tensor_scale(layers[k]->q), NULL,
                                    layers[k]->wq);
        if (st != LLMQ_OK)
            break;
        memset(&sum, 0, sizeof sum);
        for (int b = 0; b < QAT_BATCHES; b++) {
            const int r = ((step * QAT_BATCHES + b) * BATCH) % NTRAIN;
            loss_and_grad(net, l1->fq, l2->fq, dt->xtr + r * D, dt->ttr + r * O, BATCH, &a, &grad);
            const float *g = (const float *)&grad;
            float *acc = (float *)&sum;
            for (size_t i = 0; i < sizeof(mlp) / sizeof(float); i++)
                acc[i] += g[i] / QAT_BATCHES;
        }
        /* d loss / d fake-quantized weights -> d loss / d latent weights (+ d scales) */
        memcpy(l1->dfq, sum.w1, sizeof sum.w1);
        memcpy(l2->dfq, sum.w2, sizeof sum.w2);
        for (int k = 0; k < 2 && st == LLMQ_OK; k++)
            st = llmq_fake_quantize_backward(ctx, layers[k]->w, s, llmq_tensor_scale(layers[k]->q),
                                             NULL, layers[k]->dwq, gf[k], layers[k]->dw,
                                             learn_scales ? layers[k]->dscale : NULL, NULL);
        memcpy(sum.w1, l1->dwbuf, sizeof sum.w1);
        memcpy(sum.w2, l2->dwbuf, sizeof sum.w2);
        opt.t++;
        const float lr = 1e-4f * 0.5f * (1.0f + cosf(3.14159265f * (float)step / QAT_STEPS));
        adam_mlp(&opt, net, &sum, lr);
        for (int k = 0; k < 2 && learn_scales; k++) { /* Adam on the scales, kept positive */
            qlayer *l = layers[k];
            float *sc = llmq_tensor_data(llmq_tensor_scale(l->q));
            const float c1 = 1.0f - powf(0.9f, (float)opt.t),
                        c2 = 1.0f - powf(0.999f, (float)opt.t);
            for (int64_t i = 0; i < rows[k]; i++) {
                l->scale_m[i] = 0.9f * l->scale_m[i] + 0.1f * l->ds[i];
                l->scale_v[i] = 0.999f * l->scale_v[i] + 0.001f * l->ds[i] * l->ds[i];
                sc[i] -= lr * (l->scale_m[i] / c1) / (sqrtf(l->scale_v[i] / c2) + 1e-8f);
                sc[i] = sc[i] > 1e-6f ? sc[i] : 1e-6f;
            }
        }
    }
    for (int k = 0; k < 2 && st == LLMQ_OK; k++)
        st = qlayer_deploy(ctx, layers[k]);
    if (st == LLMQ_OK)
        *loss = test_loss(net, l1->fq, l2->fq, dt->xte, dt->tte);
    return st;
}

int main(void)
{
    static data dt;
    static mlp teacher, net, trained, grad;
    static adam opt;
    static acts a;
    static qlayer l1, l2;
    init_mlp(&teacher, 1.0f);
    for (int i = 0; i < NTRAIN * D; i++)
        dt.xtr[i] = normal();
    for (int i = 0; i < NTEST * D; i++)
        dt.xte[i] = normal();
    for (int r = 0; r < NTRAIN; r += BATCH) {
        forward(&teacher, teacher.w1, teacher.w2, dt.xtr + r * D, BATCH, &a);
        memcpy(dt.ttr + r * O, a.y, sizeof a.y);
    }
    for (int r = 0; r < NTEST; r += BATCH) {
        forward(&teacher, teacher.w1, teacher.w2, dt.xte + r * D, BATCH, &a);
        memcpy(dt.tte + r * O, a.y, sizeof a.y);
    }

    /* 1. float32 training */
    init_mlp(&net, 1.0f);
    const int fp_steps = 6000;
    for (int step = 0; step < fp_steps; step++) {
        const int r = (step * BATCH) % NTRAIN;
        loss_and_grad(&net, net.w1, net.w2, dt.xtr + r * D, dt.ttr + r * O, BATCH, &a, &grad);
        opt.t++;
        adam_mlp(&opt, &net, &grad,
                 3e-3f * (step < fp_steps / 2       ? 1.0f
                          : step < fp_steps * 3 / 4 ? 0.3f
                                                    : 0.1f));
    }
    trained = net;
    const double loss_fp32 = test_loss(&net, net.w1, net.w2, dt.xte, dt.tte);

    /* 2. PTQ, then 3. QAT twice from the same start: STE with fixed scales, STE + LSQ */
    llmq_context *ctx = NULL;
    llmq_scheme *s = NULL;
    double loss_ptq = 0.0, loss_ste = 0.0, loss_lsq = 0.0;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st == LLMQ_OK) /* 4-bit symmetric: s4, zero point 0, one scale per output row */
        st = llmq_scheme_create(ctx, LLMQ_DTYPE_S4, &s);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(s, LLMQ_GRANULARITY_PER_CHANNEL);
    for (int run = 0; run < 2 && st == LLMQ_OK; run++) {
        net = trained;
        if (run > 0) {
            qlayer_fini(&l1);
            qlayer_fini(&l2);
        }
        st = qlayer_init(ctx, s, &l1, net.w1, H, D);
        if (st == LLMQ_OK)
            st = qlayer_init(ctx, s, &l2, net.w2, O, H);
        if (st == LLMQ_OK)
            loss_ptq = test_loss(&net, l1.fq, l2.fq, dt.xte, dt.tte);
        if (st == LLMQ_OK)
            st = qat(ctx, s, &net, &l1, &l2, &dt, run, run ? &loss_lsq : &loss_ste);
    }
    if (st != LLMQ_OK) {
        fprintf(stderr, "%s: %s\n", llmq_status_name(st), llmq_context_last_error(ctx));
        return 1;
    }

    const double gap_ptq = loss_ptq - loss_fp32;
    const double rec_ste = 1.0 - (loss_ste - loss_fp32) / gap_ptq;
    const double rec_lsq = 1.0 - (loss_lsq - loss_fp32) / gap_ptq;
    printf("MLP %d-%d-%d on a teacher-MLP regression; test MSE over %d samples\n\n", D, H, O,
           NTEST);
    printf("| model | weights | test MSE | PTQ gap recovered |\n| --- | --- | --- | --- |\n");
    printf("| FP32 | float32 | %.6f | |\n", loss_fp32);
    printf("| PTQ | 4-bit per-channel, max-abs scales | %.6f | |\n", loss_ptq);
    printf("| QAT | 4-bit, STE, scales fixed, %d steps | %.6f | %.1f%% |\n", QAT_STEPS, loss_ste,
           100.0 * rec_ste);
    printf("| QAT | 4-bit, STE + LSQ scales, %d steps | %.6f | %.1f%% |\n", QAT_STEPS, loss_lsq,
           100.0 * rec_lsq);
    printf("\nQAT (STE + LSQ) recovers %.1f%% of the loss PTQ lost (needs >= 50%%)\n",
           100.0 * rec_lsq);

    qlayer_fini(&l1);
    qlayer_fini(&l2);
    llmq_scheme_destroy(s);
    llmq_context_destroy(ctx);
    return rec_lsq >= 0.5 ? 0 : 1;
}
