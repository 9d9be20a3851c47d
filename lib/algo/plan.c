/* plan.c - mixed-precision planning: per-tensor sensitivity of candidate weight schemes and
 * the allocation of schemes under a bit budget (docs/llm-methods.md).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo/plan_impl.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "llmq/plan.h"
#include "llmq/quantize.h"
#include "quant/scheme_impl.h"

#define MAX_CANDIDATES 64
/* The dynamic program's table holds one byte per tensor and cost unit. */
#define MAX_TABLE_BYTES ((int64_t)1 << 26)

typedef struct plan_candidate {
    char *name;
    llmq_scheme *scheme;
} plan_candidate;

typedef struct plan_tensor {
    char *name;
    int64_t numel;
    int32_t calibrated;
    int32_t choice; /* -1 until solved */
    double *error, *sqnr; /* per candidate */
    int64_t *bytes;       /* per candidate */
} plan_tensor;

struct llmq_plan {
    llmq_context *ctx;
    plan_candidate *cands;
    int32_t n_cands;
    plan_tensor *tensors;
    int64_t n_tensors, cap_tensors;
    llmq_plan_objective objective;
    bool solved, exact;
    double result_objective, result_bits;
};

llmq_status llmq_plan_create(llmq_context *ctx, llmq_plan **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a plan pointer");
    *out = llmq_mem_calloc(ctx, sizeof **out);
    if (*out == NULL)
        return llmq_fail_oom(ctx, __func__, "plan", sizeof **out);
    (*out)->ctx = ctx;
    return LLMQ_OK;
}

static void tensor_free(llmq_context *ctx, plan_tensor *t)
{
    llmq_mem_free(ctx, t->name);
    llmq_mem_free(ctx, t->error);
    llmq_mem_free(ctx, t->sqnr);
    llmq_mem_free(ctx, t->bytes);
}

void llmq_plan_destroy(llmq_plan *p)
{
    if (p == NULL)
        return;
    for (int32_t i = 0; i < p->n_cands; i++) {
        llmq_mem_free(p->ctx, p->cands[i].name);
        llmq_scheme_destroy(p->cands[i].scheme);
    }
    for (int64_t i = 0; i < p->n_tensors; i++)
        tensor_free(p->ctx, &p->tensors[i]);
    llmq_mem_free(p->ctx, p->cands);
    llmq_mem_free(p->ctx, p->tensors);
    llmq_mem_free(p->ctx, p);
}

static char *dup_string(llmq_context *ctx, const char *s, size_t n)
{
    char *c = llmq_mem_alloc(ctx, n + 1);
    if (c != NULL) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

int32_t llmq_plan_narrowed_bits(const llmq_scheme *s)
{
    if (s->range_min == 0 && s->range_max == 0)
        return 0;
    const bool is_unsigned = s->dtype == LLMQ_DTYPE_U8 || s->dtype == LLMQ_DTYPE_U4 ||
                             s->dtype == LLMQ_DTYPE_U2;
    const int restricted = s->symmetry == LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED;
    /* the grids a recipe's `bits` narrows a wider dtype to (lib/recipe/recipe.c) */
    for (int32_t bits = 2; bits <= 4; bits++) {
        if ((uint32_t)bits >= llmq_dtype_bits(s->dtype))
            break;
        const int32_t half = 1 << (bits - 1);
        const int32_t qmin = is_unsigned ? 0 : -half + restricted;
        const int32_t qmax = is_unsigned ? 2 * half - 1 : half - 1;
        if (s->range_min == qmin && s->range_max == qmax)
            return bits;
    }
    return -1;
}

static llmq_status add_candidate(llmq_context *ctx, const char *fn, llmq_plan *p,
                                 const char *name, size_t name_len, const llmq_scheme *scheme)
{
    if (p->n_tensors > 0)
        return llmq_fail(ctx, LLMQ_ERR_STATE, fn,
                         "candidates must all be added before the first tensor");
    LLMQ_REQUIRE(ctx, name_len > 0, "name=\"\": a candidate needs a name");
    for (int32_t i = 0; i < p->n_cands; i++)
        LLMQ_REQUIRE(ctx, strlen(p->cands[i].name) != name_len ||
                          memcmp(p->cands[i].name, name, name_len) != 0,
                     "name=%.*s: already a candidate", (int)name_len, name);
    LLMQ_REQUIRE(ctx, p->n_cands < MAX_CANDIDATES, "name=%.*s: at most %d candidates",
                 (int)name_len, name, MAX_CANDIDATES);
    LLMQ_REQUIRE(ctx, scheme->granularity != LLMQ_GRANULARITY_PER_TOKEN,
                 "scheme: per_token weights cannot be planned (no recipe states them)");
    LLMQ_REQUIRE(ctx, llmq_plan_narrowed_bits(scheme) >= 0,
                 "scheme: range [%d, %d] is not a grid a recipe's bits can state",
                 (int)scheme->range_min, (int)scheme->range_max);
    plan_candidate *c = llmq_mem_alloc(ctx, (size_t)(p->n_cands + 1) * sizeof *c);
    char *copy = dup_string(ctx, name, name_len);
    llmq_scheme *s = NULL;
    if (c == NULL || copy == NULL || llmq_scheme_create(ctx, scheme->dtype, &s) != LLMQ_OK) {
        llmq_mem_free(ctx, c);
        llmq_mem_free(ctx, copy);
        return llmq_fail_oom(ctx, fn, "candidate", sizeof *c);
    }
    *s = *scheme;
    s->ctx = ctx;
    if (p->n_cands)
        memcpy(c, p->cands, (size_t)p->n_cands * sizeof *c);
    c[p->n_cands++] = (plan_candidate){copy, s};
    llmq_mem_free(ctx, p->cands);
    p->cands = c;
    return LLMQ_OK;
}

llmq_status llmq_plan_add_candidate(llmq_context *ctx, llmq_plan *p, const char *name,
                                    const llmq_scheme *scheme)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, p != NULL, "p=NULL: must be a plan");
    LLMQ_REQUIRE(ctx, name != NULL, "name=NULL: must be a name");
    LLMQ_REQUIRE(ctx, scheme != NULL, "scheme=NULL: must be a scheme");
    return add_candidate(ctx, __func__, p, name, strlen(name), scheme);
}

#define CANDIDATE_GRAMMAR                                                                      \
    "expected w<bits>[g<group>][s|a] with bits 2, 3, 4 or 8, e.g. w8, w4g32, w4g128s"

/* Read a positive decimal number of at most 9 digits; the number of characters, 0 if none. */
static size_t read_number(const char *s, size_t n, int64_t *v)
{
    size_t i = 0;
    *v = 0;
    while (i < n && i < 9 && s[i] >= '0' && s[i] <= '9')
        *v = *v * 10 + (s[i++] - '0');
    return i;
}

/* The scheme of one candidate name (docs/llm-methods.md); NULL-free on failure. */
static llmq_status scheme_from_name(llmq_context *ctx, const char *fn, const char *s, size_t n,
                                    llmq_scheme **out)
{
    int64_t bits = 0, group = 0;
    size_t i = 1;
    size_t k = n > 1 && s[0] == 'w' ? read_number(s + 1, n - 1, &bits) : 0;
    bool ok = k > 0 && (bits == 2 || bits == 3 || bits == 4 || bits == 8);
    i += k;
    if (ok && i < n && s[i] == 'g') {
        k = read_number(s + i + 1, n - i - 1, &group);
        ok = k > 0 && group >= 1;
        i += 1 + k;
    }
    int sym = bits == 8 ? LLMQ_SYMMETRY_SYMMETRIC : LLMQ_SYMMETRY_ASYMMETRIC;
    if (ok && i < n && (s[i] == 's' || s[i] == 'a'))
        sym = s[i++] == 's' ? LLMQ_SYMMETRY_SYMMETRIC : LLMQ_SYMMETRY_ASYMMETRIC;
    if (!ok || i != n)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "list: \"%.*s\": " CANDIDATE_GRAMMAR,
                         (int)n, s);
    const bool u = sym == LLMQ_SYMMETRY_ASYMMETRIC;
    const llmq_dtype d = bits == 8   ? (u ? LLMQ_DTYPE_U8 : LLMQ_DTYPE_S8)
                         : bits >= 3 ? (u ? LLMQ_DTYPE_U4 : LLMQ_DTYPE_S4)
                                     : (u ? LLMQ_DTYPE_U2 : LLMQ_DTYPE_S2);
    LLMQ_TRY(llmq_scheme_create(ctx, d, out));
    llmq_status st = llmq_scheme_set_symmetry(*out, (llmq_symmetry)sym);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(*out, group ? LLMQ_GRANULARITY_PER_GROUP
                                                     : LLMQ_GRANULARITY_PER_CHANNEL);
    if (st == LLMQ_OK && group)
        st = llmq_scheme_set_group_size(*out, group);
    if (st == LLMQ_OK && bits == 3) /* 3 bits live in a 4-bit dtype, as in recipes */
        st = llmq_scheme_set_range(*out, u ? 0 : -4, u ? 7 : 3);
    if (st != LLMQ_OK) {
        llmq_scheme_destroy(*out);
        *out = NULL;
    }
    return st;
}

llmq_status llmq_plan_add_candidates(llmq_context *ctx, llmq_plan *p, const char *list)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, p != NULL, "p=NULL: must be a plan");
    LLMQ_REQUIRE(ctx, list != NULL, "list=NULL: must name candidates, e.g. \"w8,w4g32\"");
    const int32_t before = p->n_cands;
    llmq_status st = LLMQ_OK;
    for (const char *s = list; st == LLMQ_OK;) {
        const char *end = strchr(s, ',');
        const size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        llmq_scheme *sc = NULL;
        st = scheme_from_name(ctx, __func__, s, n, &sc);
        if (st == LLMQ_OK)
            st = add_candidate(ctx, __func__, p, s, n, sc);
        llmq_scheme_destroy(sc);
        if (end == NULL)
            break;
        s = end + 1;
    }
    while (st != LLMQ_OK && p->n_cands > before) { /* all or nothing */
        p->n_cands--;
        llmq_mem_free(ctx, p->cands[p->n_cands].name);
        llmq_scheme_destroy(p->cands[p->n_cands].scheme);
    }
    return st;
}

/* A contiguous F32 copy of a 2-D float tensor. */
static llmq_status to_f32(llmq_context *ctx, const llmq_tensor *t, llmq_tensor **out)
{
    LLMQ_TRY(llmq_tensor_create(ctx, LLMQ_DTYPE_F32, 2, t->shape, out));
    const llmq_status st = llmq_convert(ctx, t, *out);
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(*out);
        *out = NULL;
    }
    return st;
}

/* The quadratic form used for output errors: ‖X·dᵀ‖² for each row d of D, summed. With more
 * tokens than inputs, through the Gram matrix G = XᵀX (computed once per tensor); otherwise
 * directly. Both in double. */
typedef struct quad_form {
    const float *x; /* [tokens, in] */
    int64_t tokens, in;
    double *gram;   /* [in, in], or NULL for the direct way */
    double *work;   /* [in] */
} quad_form;

static double quad_sum(const quad_form *q, const float *d, int64_t rows)
{
    double total = 0.0;
    const int64_t in = q->in;
    for (int64_t r = 0; r < rows; r++) {
        const float *dr = d + r * in;
        if (q->gram != NULL) {
            for (int64_t i = 0; i < in; i++) {
                const double *g = q->gram + i * in;
                double s = 0.0;
                for (int64_t j = 0; j < in; j++)
                    s += g[j] * dr[j];
                total += s * dr[i];
            }
        } else {
            for (int64_t t = 0; t < q->tokens; t++) {
                const float *xt = q->x + t * in;
                double s = 0.0;
                for (int64_t j = 0; j < in; j++)
                    s += (double)xt[j] * dr[j];
                total += s * s;
            }
        }
    }
    return total;
}

static llmq_status quad_init(llmq_context *ctx, const char *fn, const llmq_tensor *x,
                             quad_form *q)
{
    q->x = x->data;
    q->tokens = x->rows;
    q->in = x->cols;
    q->gram = NULL;
    if (q->tokens <= q->in)
        return LLMQ_OK;
    const size_t bytes = (size_t)(q->in * q->in) * sizeof(double);
    q->gram = llmq_mem_calloc(ctx, bytes);
    if (q->gram == NULL)
        return llmq_fail_oom(ctx, fn, "Gram matrix of the inputs", bytes);
    for (int64_t t = 0; t < q->tokens; t++) {
        const float *xt = q->x + t * q->in;
        for (int64_t i = 0; i < q->in; i++) {
            double *g = q->gram + i * q->in;
            const double xi = xt[i];
            for (int64_t j = 0; j <= i; j++)
                g[j] += xi * xt[j];
        }
    }
    for (int64_t i = 0; i < q->in; i++) /* mirror the lower triangle */
        for (int64_t j = i + 1; j < q->in; j++)
            q->gram[i * q->in + j] = q->gram[j * q->in + i];
    return LLMQ_OK;
}

/* Quantize w under scheme s, dequantize, and measure; bytes as llmq stores them. */
static llmq_status measure(llmq_context *ctx, const llmq_scheme *s, const llmq_tensor *w,
                           const quad_form *q, double signal, double weight_energy,
                           float *diff, double *error, double *sqnr, int64_t *bytes)
{
    llmq_tensor *qt = NULL, *back = NULL;
    llmq_status st = llmq_tensor_create_quantized(ctx, s, 2, w->shape, &qt);
    if (st == LLMQ_OK)
        st = llmq_quantize_dynamic(ctx, w, qt);
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, w->shape, diff, 0, &back);
    if (st == LLMQ_OK)
        st = llmq_dequantize(ctx, qt, back);
    if (st == LLMQ_OK) {
        const float *wv = w->data;
        const int64_t n = w->rows * w->cols;
        double e = 0.0;
        for (int64_t i = 0; i < n; i++) {
            diff[i] = wv[i] - diff[i];
            e += (double)diff[i] * diff[i];
        }
        *sqnr = e > 0.0 ? 10.0 * log10(weight_energy / e) : INFINITY;
        if (q != NULL)
            e = quad_sum(q, diff, w->rows);
        else
            signal = weight_energy;
        *error = signal > 0.0 ? e / signal : 0.0;
        const int64_t row_bytes = (w->cols * (int64_t)llmq_dtype_bits(s->dtype) + 7) / 8;
        *bytes = w->rows * row_bytes + 8 * llmq_tensor_numel(qt->scale);
    }
    llmq_tensor_destroy(back);
    llmq_tensor_destroy(qt);
    return st;
}

static llmq_status check_input(llmq_context *ctx, const char *fn, const char *what,
                               const llmq_tensor *t)
{
    if (t->device)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn, "%s: device tensors are not planned; "
                         "copy it to the host", what);
    LLMQ_REQUIRE(ctx, llmq_dtype_is_float(t->dtype), "%s=%s tensor: must be f32, f16 or bf16",
                 what, llmq_dtype_name(t->dtype));
    char buf[96];
    LLMQ_REQUIRE(ctx, t->ndim == 2, "%s=%s: must be 2-D", what, llmq_shape_str(t, buf, sizeof buf));
    return LLMQ_OK;
}

static llmq_status measure_all(llmq_context *ctx, const char *fn, llmq_plan *p, plan_tensor *pt,
                               const llmq_tensor *weight, const llmq_tensor *inputs)
{
    llmq_tensor *w = NULL, *x = NULL;
    quad_form q = {0};
    const size_t n = (size_t)(weight->rows * weight->cols);
    float *diff = llmq_mem_alloc(ctx, n * sizeof *diff);
    llmq_status st = diff != NULL ? LLMQ_OK : llmq_fail_oom(ctx, fn, "weight copy", n * 4);
    if (st == LLMQ_OK)
        st = to_f32(ctx, weight, &w);
    if (st == LLMQ_OK && inputs != NULL)
        st = to_f32(ctx, inputs, &x);
    for (int64_t i = 0; st == LLMQ_OK && x != NULL && i < x->rows * x->cols; i++)
        if (!isfinite(((const float *)x->data)[i]))
            st = llmq_fail(ctx, LLMQ_ERR_NON_FINITE, fn, "inputs[%lld]: not finite",
                           (long long)i);
    if (st == LLMQ_OK && x != NULL)
        st = quad_init(ctx, fn, x, &q);
    double energy = 0.0, signal = 0.0;
    for (size_t i = 0; st == LLMQ_OK && i < n; i++)
        energy += (double)((const float *)w->data)[i] * ((const float *)w->data)[i];
    if (st == LLMQ_OK && x != NULL)
        signal = quad_sum(&q, w->data, w->rows);
    for (int32_t c = 0; st == LLMQ_OK && c < p->n_cands; c++)
        st = measure(ctx, p->cands[c].scheme, w, x != NULL ? &q : NULL, signal, energy, diff,
                     &pt->error[c], &pt->sqnr[c], &pt->bytes[c]);
    llmq_mem_free(ctx, q.gram);
    llmq_mem_free(ctx, diff);
    llmq_tensor_destroy(x);
    llmq_tensor_destroy(w);
    return st;
}

llmq_status llmq_plan_add_tensor(llmq_context *ctx, llmq_plan *p, const char *name,
                                 const llmq_tensor *weight, const llmq_tensor *inputs)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, p != NULL, "p=NULL: must be a plan");
    LLMQ_REQUIRE(ctx, name != NULL && name[0] != '\0', "name=%s: must name the tensor",
                 name == NULL ? "NULL" : "\"\"");
    LLMQ_REQUIRE(ctx, weight != NULL, "weight=NULL: must be a tensor");
    if (p->n_cands == 0)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "name=%s: add candidates before tensors", name);
    for (int64_t i = 0; i < p->n_tensors; i++)
        LLMQ_REQUIRE(ctx, strcmp(p->tensors[i].name, name) != 0, "name=%s: already in the plan",
                     name);
    LLMQ_TRY(check_input(ctx, __func__, "weight", weight));
    if (inputs != NULL) {
        LLMQ_TRY(check_input(ctx, __func__, "inputs", inputs));
        LLMQ_REQUIRE(ctx, inputs->cols == weight->cols,
                     "inputs: %lld columns, the weight has %lld inputs", (long long)inputs->cols,
                     (long long)weight->cols);
    }
    if (p->n_tensors == p->cap_tensors) {
        const int64_t cap = p->cap_tensors ? 2 * p->cap_tensors : 16;
        plan_tensor *t = llmq_mem_alloc(ctx, (size_t)cap * sizeof *t);
        if (t == NULL)
            return llmq_fail_oom(ctx, __func__, "tensor list", (size_t)cap * sizeof *t);
        if (p->n_tensors)
            memcpy(t, p->tensors, (size_t)p->n_tensors * sizeof *t);
        llmq_mem_free(ctx, p->tensors);
        p->tensors = t;
        p->cap_tensors = cap;
    }
    plan_tensor pt = {.numel = weight->rows * weight->cols, .calibrated = inputs != NULL,
                      .choice = -1};
    const size_t nc = (size_t)p->n_cands;
    pt.name = dup_string(ctx, name, strlen(name));
    pt.error = llmq_mem_alloc(ctx, nc * sizeof *pt.error);
    pt.sqnr = llmq_mem_alloc(ctx, nc * sizeof *pt.sqnr);
    pt.bytes = llmq_mem_alloc(ctx, nc * sizeof *pt.bytes);
    llmq_status st = pt.name && pt.error && pt.sqnr && pt.bytes
                         ? measure_all(ctx, __func__, p, &pt, weight, inputs)
                         : llmq_fail_oom(ctx, __func__, "tensor", nc * 24);
    if (st != LLMQ_OK) {
        tensor_free(ctx, &pt);
        return st;
    }
    p->tensors[p->n_tensors++] = pt;
    for (int64_t i = 0; i < p->n_tensors; i++) /* a new tensor voids the previous solution */
        p->tensors[i].choice = -1;
    p->solved = false;
    return LLMQ_OK;
}

int32_t llmq_plan_candidate_count(const llmq_plan *p)
{
    return p != NULL ? p->n_cands : 0;
}

const char *llmq_plan_candidate_name(const llmq_plan *p, int32_t index)
{
    return p != NULL && index >= 0 && index < p->n_cands ? p->cands[index].name : NULL;
}

const llmq_scheme *llmq_plan_candidate_scheme(const llmq_plan *p, int32_t index)
{
    return p != NULL && index >= 0 && index < p->n_cands ? p->cands[index].scheme : NULL;
}

int64_t llmq_plan_tensor_count(const llmq_plan *p)
{
    return p != NULL ? p->n_tensors : 0;
}

const char *llmq_plan_tensor_name(const llmq_plan *p, int64_t index)
{
    return p != NULL && index >= 0 && index < p->n_tensors ? p->tensors[index].name : NULL;
}

llmq_status llmq_plan_sensitivity(const llmq_plan *p, int64_t tensor, int32_t candidate,
                                  double *error, double *sqnr_db, double *bits_per_weight,
                                  int32_t *calibrated)
{
    if (p == NULL || tensor < 0 || tensor >= p->n_tensors || candidate < 0 ||
        candidate >= p->n_cands)
        return LLMQ_ERR_INVALID_ARG;
    const plan_tensor *t = &p->tensors[tensor];
    if (error != NULL)
        *error = t->error[candidate];
    if (sqnr_db != NULL)
        *sqnr_db = t->sqnr[candidate];
    if (bits_per_weight != NULL)
        *bits_per_weight = 8.0 * (double)t->bytes[candidate] / (double)t->numel;
    if (calibrated != NULL)
        *calibrated = t->calibrated;
    return LLMQ_OK;
}

llmq_status llmq_plan_set_objective(llmq_plan *p, llmq_plan_objective objective)
{
    if (p == NULL || (objective != LLMQ_PLAN_OBJECTIVE_SUM &&
                      objective != LLMQ_PLAN_OBJECTIVE_SIZE_WEIGHTED))
        return LLMQ_ERR_INVALID_ARG;
    p->objective = objective;
    return LLMQ_OK;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        const int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Multiple-choice knapsack by dynamic programming over cost units: best[s] is the least
 * objective of the tensors so far with extra cost at most s units; pick[t * states + s] the
 * candidate tensor t takes there. */
static llmq_status solve(llmq_context *ctx, const char *fn, llmq_plan *p, const int64_t *min_bits,
                         int64_t unit, int64_t states)
{
    const int64_t nt = p->n_tensors;
    const int32_t nc = p->n_cands;
    double *best = llmq_mem_alloc(ctx, (size_t)states * sizeof *best);
    double *next = llmq_mem_alloc(ctx, (size_t)states * sizeof *next);
    uint8_t *pick = llmq_mem_alloc(ctx, (size_t)(nt * states));
    if (best == NULL || next == NULL || pick == NULL) {
        llmq_mem_free(ctx, best);
        llmq_mem_free(ctx, next);
        llmq_mem_free(ctx, pick);
        return llmq_fail_oom(ctx, fn, "dynamic programming table", (size_t)(nt * states));
    }
    double total_numel = 0.0;
    for (int64_t t = 0; t < nt; t++)
        total_numel += (double)p->tensors[t].numel;
    for (int64_t s = 0; s < states; s++)
        best[s] = 0.0;
    for (int64_t t = 0; t < nt; t++) {
        const plan_tensor *pt = &p->tensors[t];
        const double w = p->objective == LLMQ_PLAN_OBJECTIVE_SIZE_WEIGHTED
                             ? (double)pt->numel / total_numel : 1.0;
        for (int64_t s = 0; s < states; s++) {
            next[s] = INFINITY;
            pick[t * states + s] = 0;
            for (int32_t c = 0; c < nc; c++) {
                /* rounded up, so that a coarse unit never lets the budget be exceeded */
                const int64_t cost = (8 * pt->bytes[c] - min_bits[t] + unit - 1) / unit;
                if (cost > s || !(best[s - cost] + w * pt->error[c] < next[s]))
                    continue;
                next[s] = best[s - cost] + w * pt->error[c];
                pick[t * states + s] = (uint8_t)c;
            }
        }
        double *tmp = best;
        best = next;
        next = tmp;
    }
    /* walk back from the full slack */
    int64_t s = states - 1;
    double bits = 0.0;
    p->result_objective = best[s];
    for (int64_t t = nt - 1; t >= 0; t--) {
        plan_tensor *pt = &p->tensors[t];
        const int32_t c = pick[t * states + s];
        pt->choice = c;
        s -= (8 * pt->bytes[c] - min_bits[t] + unit - 1) / unit;
        bits += 8.0 * (double)pt->bytes[c];
    }
    p->result_bits = bits / total_numel;
    llmq_mem_free(ctx, best);
    llmq_mem_free(ctx, next);
    llmq_mem_free(ctx, pick);
    return LLMQ_OK;
}

llmq_status llmq_plan_solve(llmq_context *ctx, llmq_plan *p, double budget_bits)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, p != NULL, "p=NULL: must be a plan");
    p->solved = false;
    for (int64_t t = 0; t < p->n_tensors; t++)
        p->tensors[t].choice = -1;
    LLMQ_REQUIRE(ctx, isfinite(budget_bits) && budget_bits > 0.0,
                 "budget_bits=%g: must be a positive number of bits per weight", budget_bits);
    if (p->n_tensors == 0)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "the plan has no tensor to allocate");
    const int64_t nt = p->n_tensors;
    int64_t *min_bits = llmq_mem_alloc(ctx, (size_t)nt * sizeof *min_bits);
    if (min_bits == NULL)
        return llmq_fail_oom(ctx, __func__, "costs", (size_t)nt * sizeof *min_bits);
    double numel = 0.0, cheapest = 0.0;
    int64_t unit = 0, span = 0; /* span: extra cost of the dearest assignment */
    for (int64_t t = 0; t < nt; t++) {
        const plan_tensor *pt = &p->tensors[t];
        int64_t lo = INT64_MAX, hi = 0;
        for (int32_t c = 0; c < p->n_cands; c++) {
            lo = 8 * pt->bytes[c] < lo ? 8 * pt->bytes[c] : lo;
            hi = 8 * pt->bytes[c] > hi ? 8 * pt->bytes[c] : hi;
        }
        for (int32_t c = 0; c < p->n_cands; c++)
            unit = gcd64(8 * pt->bytes[c] - lo, unit);
        min_bits[t] = lo;
        span += hi - lo;
        numel += (double)pt->numel;
        cheapest += (double)lo;
    }
    /* total bits allowed; the slack is what the budget leaves above the cheapest assignment */
    const double allowed = floor(budget_bits * numel);
    if (allowed < cheapest) {
        llmq_mem_free(ctx, min_bits);
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, __func__,
                         "budget_bits=%g: below the cheapest assignment of these candidates, "
                         "%.4f bits per weight", budget_bits, cheapest / numel);
    }
    const double slack_d = allowed - cheapest;
    const int64_t slack = slack_d < (double)span ? (int64_t)slack_d : span;
    if (unit == 0)
        unit = 1; /* every candidate costs the same */
    p->exact = true;
    int64_t limit = MAX_TABLE_BYTES / nt;
    if (limit < 2)
        limit = 2;
    if (slack / unit + 1 > limit) { /* coarser units: costs are rounded up */
        unit = (slack + limit - 2) / (limit - 1);
        p->exact = false;
    }
    const llmq_status st = solve(ctx, __func__, p, min_bits, unit, slack / unit + 1);
    llmq_mem_free(ctx, min_bits);
    p->solved = st == LLMQ_OK;
    return st;
}

int32_t llmq_plan_choice(const llmq_plan *p, int64_t tensor)
{
    return p != NULL && p->solved && tensor >= 0 && tensor < p->n_tensors
               ? p->tensors[tensor].choice
               : -1;
}

llmq_status llmq_plan_result(const llmq_plan *p, double *objective, double *bits_per_weight,
                             int32_t *exact)
{
    if (p == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (!p->solved)
        return LLMQ_ERR_STATE;
    if (objective != NULL)
        *objective = p->result_objective;
    if (bits_per_weight != NULL)
        *bits_per_weight = p->result_bits;
    if (exact != NULL)
        *exact = p->exact;
    return LLMQ_OK;
}
