/* test_plan.c - mixed-precision planning: the bit accounting's golden values, the sensitivity
 * against a direct computation, the allocation against brute-force enumeration, the budget,
 * the candidate grammar, and the written recipe read back. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testing.h"

/* Uniform data in [-1, 1) with a few larger values, so that schemes differ. */
static float *random_data(test_rng *r, int64_t n, float outlier)
{
    float *d = malloc((size_t)n * sizeof *d);
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = test_rng_range(r, -1.0f, 1.0f) * (i % 17 == 3 ? outlier : 1.0f);
    return d;
}

/* Add a random [rows, cols] weight, with `tokens` rows of inputs when tokens > 0. */
static void add_random(llmq_context *ctx, llmq_plan *p, test_rng *r, const char *name,
                       int64_t rows, int64_t cols, int64_t tokens)
{
    float *w = random_data(r, rows * cols, 4.0f), *x = NULL;
    const int64_t ws[2] = {rows, cols}, xs[2] = {tokens, cols};
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, ws), *xt = NULL;
    if (tokens > 0) {
        x = random_data(r, tokens * cols, 8.0f);
        xt = test_wrap_f32(ctx, x, 2, xs);
    }
    ASSERT_OK(ctx, llmq_plan_add_tensor(ctx, p, name, wt, xt));
    TEST_DESTROY(wt, xt);
    free(w);
    free(x);
}

static llmq_plan *new_plan(llmq_context *ctx, const char *candidates)
{
    llmq_plan *p = NULL;
    ASSERT_OK(ctx, llmq_plan_create(ctx, &p));
    ASSERT_OK(ctx, llmq_plan_add_candidates(ctx, p, candidates));
    return p;
}

static double bits_of(const llmq_plan *p, int64_t t, int32_t c)
{
    double bits = 0.0;
    assert_int_equal(llmq_plan_sensitivity(p, t, c, NULL, NULL, &bits, NULL), LLMQ_OK);
    return bits;
}

/* Codes packed by row at the dtype's width, plus 4 bytes of F32 scale and 4 of I32 zero point
 * per parameter set, as the model writer stores them. */
static void bits_per_weight_golden(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w4g32,w4g128,w3g32,w2g32,w8g32s");
    test_rng r = {1};
    add_random(ctx, p, &r, "a", 8, 64, 0);
    add_random(ctx, p, &r, "b", 3, 5, 0);
    /* [8, 64]: w8 8 + 64/64; w4g32 4 + 2*64/64; w4g128 one short group: 4 + 64/64;
       3 bits live in 4; w2g32 2 + 2; w8g32s 8 + 2 */
    const double a[] = {9.0, 6.0, 5.0, 6.0, 4.0, 10.0};
    /* [3, 5]: per row, ceil(5 * bits / 8) bytes of codes and 8 bytes per set, over 5 weights */
    const double b[] = {(5 + 8) * 8 / 5.0, (3 + 8) * 8 / 5.0, (3 + 8) * 8 / 5.0,
                        (3 + 8) * 8 / 5.0, (2 + 8) * 8 / 5.0, (5 + 8) * 8 / 5.0};
    for (int32_t c = 0; c < 6; c++) {
        assert_float_equal(bits_of(p, 0, c), a[c], 1e-12);
        assert_float_equal(bits_of(p, 1, c), b[c], 1e-12);
    }
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

/* ‖X·Wᵀ − X·Ŵᵀ‖² / ‖X·Wᵀ‖² computed directly in double, Ŵ from the library's quantizer. */
static double direct_error(llmq_context *ctx, const llmq_scheme *s, const float *w, int64_t rows,
                           int64_t cols, const float *x, int64_t tokens, double *sqnr)
{
    const int64_t shape[2] = {rows, cols};
    float *back = malloc((size_t)(rows * cols) * sizeof *back);
    assert_non_null(back);
    llmq_tensor *q = NULL, *wt = test_wrap_f32(ctx, (float *)w, 2, shape),
                *bt = test_wrap_f32(ctx, back, 2, shape);
    ASSERT_OK(ctx, llmq_tensor_create_quantized(ctx, s, 2, shape, &q));
    ASSERT_OK(ctx, llmq_quantize_dynamic(ctx, wt, q));
    ASSERT_OK(ctx, llmq_dequantize(ctx, q, bt));
    double sig = 0.0, err = 0.0, wsig = 0.0, werr = 0.0;
    for (int64_t i = 0; i < rows * cols; i++) {
        wsig += (double)w[i] * w[i];
        werr += ((double)w[i] - back[i]) * ((double)w[i] - back[i]);
    }
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t o = 0; o < rows; o++) {
            double y = 0.0, yq = 0.0;
            for (int64_t k = 0; k < cols; k++) {
                y += (double)x[t * cols + k] * w[o * cols + k];
                yq += (double)x[t * cols + k] * back[o * cols + k];
            }
            sig += y * y;
            err += (y - yq) * (y - yq);
        }
    *sqnr = 10.0 * log10(wsig / werr);
    TEST_DESTROY(q, wt, bt);
    free(back);
    return tokens > 0 ? err / sig : werr / wsig;
}

static void sensitivity_matches_direct_reference(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    /* more tokens than inputs (through the Gram matrix), fewer (directly), and none */
    const int64_t token_counts[] = {150, 9, 0};
    for (int k = 0; k < 3; k++) {
        llmq_plan *p = new_plan(ctx, "w8,w4g16,w3g32s,w2g8");
        test_rng r = {7 + (uint64_t)k};
        const int64_t rows = 6, cols = 40, tokens = token_counts[k];
        float *w = random_data(&r, rows * cols, 3.0f), *x = random_data(&r, 150 * cols, 10.0f);
        const int64_t ws[2] = {rows, cols}, xs[2] = {tokens, cols};
        llmq_tensor *wt = test_wrap_f32(ctx, w, 2, ws);
        llmq_tensor *xt = tokens > 0 ? test_wrap_f32(ctx, x, 2, xs) : NULL;
        ASSERT_OK(ctx, llmq_plan_add_tensor(ctx, p, "layer.weight", wt, xt));
        for (int32_t c = 0; c < llmq_plan_candidate_count(p); c++) {
            double err, sqnr, ref_sqnr;
            int32_t calibrated;
            const double ref = direct_error(ctx, llmq_plan_candidate_scheme(p, c), w, rows, cols,
                                            x, tokens, &ref_sqnr);
            assert_int_equal(llmq_plan_sensitivity(p, 0, c, &err, &sqnr, NULL, &calibrated),
                             LLMQ_OK);
            assert_int_equal(calibrated, tokens > 0);
            assert_true(ref > 0.0);
            assert_float_equal(err / ref, 1.0, 1e-9);
            assert_float_equal(sqnr, ref_sqnr, 1e-9);
        }
        /* more bits, less error */
        double e8, e2;
        assert_int_equal(llmq_plan_sensitivity(p, 0, 0, &e8, NULL, NULL, NULL), LLMQ_OK);
        assert_int_equal(llmq_plan_sensitivity(p, 0, 3, &e2, NULL, NULL, NULL), LLMQ_OK);
        assert_true(e8 < e2);
        TEST_DESTROY(wt, xt);
        free(w);
        free(x);
        llmq_plan_destroy(p);
    }
    llmq_context_destroy(ctx);
}

/* The tensors of the brute-force comparison: shapes whose costs differ. */
#define N_SMALL 7
static const int64_t small_rows[N_SMALL] = {4, 8, 16, 5, 3, 12, 7};
static const int64_t small_cols[N_SMALL] = {32, 64, 48, 96, 160, 40, 72};

/* Weight of tensor t in the objective. */
static double weight_of(int64_t t, bool size_weighted)
{
    double total = 0.0;
    for (int i = 0; i < N_SMALL; i++)
        total += (double)(small_rows[i] * small_cols[i]);
    return size_weighted ? (double)(small_rows[t] * small_cols[t]) / total : 1.0;
}

/* The least objective over every assignment within the budget, by enumeration. */
static double brute_force(const llmq_plan *p, double budget, bool size_weighted)
{
    const int32_t nc = llmq_plan_candidate_count(p);
    int32_t pick[N_SMALL] = {0};
    double best = INFINITY, numel_total = 0.0, bits[N_SMALL][8], err[N_SMALL][8];
    for (int64_t t = 0; t < N_SMALL; t++) {
        for (int32_t c = 0; c < nc; c++)
            assert_int_equal(llmq_plan_sensitivity(p, t, c, &err[t][c], NULL, &bits[t][c], NULL),
                             LLMQ_OK);
        numel_total += (double)(small_rows[t] * small_cols[t]);
    }
    for (;;) {
        double used = 0.0, obj = 0.0;
        for (int64_t t = 0; t < N_SMALL; t++) {
            used += bits[t][pick[t]] * (double)(small_rows[t] * small_cols[t]);
            obj += weight_of(t, size_weighted) * err[t][pick[t]];
        }
        if (used <= budget * numel_total + 1e-6 && obj < best)
            best = obj;
        int64_t t = 0;
        while (t < N_SMALL && ++pick[t] == nc)
            pick[t++] = 0;
        if (t == N_SMALL)
            return best;
    }
}

static void plan_tensors(llmq_context *ctx, llmq_plan *p)
{
    test_rng r = {11};
    char name[32];
    for (int t = 0; t < N_SMALL; t++) {
        snprintf(name, sizeof name, "layers.%d.weight", t);
        add_random(ctx, p, &r, name, small_rows[t], small_cols[t], t % 2 ? 50 : 0);
    }
}

static void solver_finds_the_brute_force_optimum(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w4g32,w4g128,w2g32");
    plan_tensors(ctx, p);
    for (int sw = 0; sw < 2; sw++) {
        ASSERT_OK(ctx, llmq_plan_set_objective(p, sw ? LLMQ_PLAN_OBJECTIVE_SIZE_WEIGHTED
                                                     : LLMQ_PLAN_OBJECTIVE_SUM));
        double previous = INFINITY;
        for (double budget = 3.6; budget <= 9.6; budget += 0.05) {
            const double want = brute_force(p, budget, sw);
            const llmq_status st = llmq_plan_solve(ctx, p, budget);
            if (isinf(want)) {
                ASSERT_FAILS(ctx, st, LLMQ_ERR_INVALID_ARG, "below the cheapest assignment");
                assert_int_equal(llmq_plan_choice(p, 0), -1);
                continue;
            }
            ASSERT_OK(ctx, st);
            double obj, bits, sum = 0.0;
            int32_t exact;
            ASSERT_OK(ctx, llmq_plan_result(p, &obj, &bits, &exact));
            assert_int_equal(exact, 1);
            assert_true(bits <= budget);
            assert_float_equal(obj, want, 1e-12 * (1.0 + want));
            /* the reported objective is the choice's */
            for (int64_t t = 0; t < N_SMALL; t++) {
                double e;
                assert_int_equal(llmq_plan_sensitivity(p, t, llmq_plan_choice(p, t), &e, NULL,
                                                       NULL, NULL), LLMQ_OK);
                sum += weight_of(t, sw) * e;
            }
            assert_float_equal(sum, obj, 1e-12 * (1.0 + obj));
            assert_true(obj <= previous); /* a larger budget never does worse */
            previous = obj;
        }
    }
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

/* A hand-made case: a greedy pass by error per bit picks the wrong tensor. Two tensors of the
 * same shape [4, 32]; the budget affords 8 bits for exactly one of them. */
static void budget_and_infeasible_budget(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w2g32");
    test_rng r = {5};
    add_random(ctx, p, &r, "x", 4, 32, 0);
    add_random(ctx, p, &r, "y", 4, 32, 20);
    const double lo = bits_of(p, 0, 1), hi = bits_of(p, 0, 0); /* 4 and 10 bits */
    assert_float_equal(lo, 4.0, 0);
    assert_float_equal(hi, 10.0, 0);
    ASSERT_FAILS(ctx, llmq_plan_solve(ctx, p, 3.99), LLMQ_ERR_INVALID_ARG,
                 "budget_bits=3.99: below the cheapest assignment of these candidates, 4.0000");
    ASSERT_FAILS(ctx, llmq_plan_solve(ctx, p, 0.0), LLMQ_ERR_INVALID_ARG, "budget_bits=0");
    ASSERT_FAILS(ctx, llmq_plan_solve(ctx, p, NAN), LLMQ_ERR_INVALID_ARG, "positive");
    assert_int_equal(llmq_plan_result(p, NULL, NULL, NULL), LLMQ_ERR_STATE);
    /* exactly the cheapest assignment */
    ASSERT_OK(ctx, llmq_plan_solve(ctx, p, 4.0));
    assert_int_equal(llmq_plan_choice(p, 0), 1);
    assert_int_equal(llmq_plan_choice(p, 1), 1);
    /* room for one 8-bit tensor: the one that gains more */
    double ex8, ex2, ey8, ey2;
    assert_int_equal(llmq_plan_sensitivity(p, 0, 0, &ex8, NULL, NULL, NULL), LLMQ_OK);
    assert_int_equal(llmq_plan_sensitivity(p, 0, 1, &ex2, NULL, NULL, NULL), LLMQ_OK);
    assert_int_equal(llmq_plan_sensitivity(p, 1, 0, &ey8, NULL, NULL, NULL), LLMQ_OK);
    assert_int_equal(llmq_plan_sensitivity(p, 1, 1, &ey2, NULL, NULL, NULL), LLMQ_OK);
    ASSERT_OK(ctx, llmq_plan_solve(ctx, p, 7.0));
    const int32_t want_x = ex2 - ex8 > ey2 - ey8 ? 0 : 1;
    assert_int_equal(llmq_plan_choice(p, 0), want_x);
    assert_int_equal(llmq_plan_choice(p, 1), 1 - want_x);
    double bits;
    ASSERT_OK(ctx, llmq_plan_result(p, NULL, &bits, NULL));
    assert_float_equal(bits, 7.0, 0);
    ASSERT_OK(ctx, llmq_plan_solve(ctx, p, 32.0)); /* everything fits */
    assert_int_equal(llmq_plan_choice(p, 0), 0);
    assert_int_equal(llmq_plan_choice(p, 1), 0);
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

/* Many tensors with small cost steps: the table would exceed its bound, so the unit is
 * coarsened; the budget must still hold. */
static void coarse_units_respect_the_budget(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w4g32,w2g32");
    test_rng r = {9};
    char name[32];
    const int n = 2048;
    for (int t = 0; t < n; t++) {
        snprintf(name, sizeof name, "t%d", t);
        add_random(ctx, p, &r, name, 1, 40 + t % 200, 0);
    }
    double cheapest = 0.0, numel = 0.0, cheap_obj = 0.0;
    for (int64_t t = 0; t < n; t++) {
        const double cols = (double)(40 + t % 200);
        double e;
        assert_int_equal(llmq_plan_sensitivity(p, t, 2, &e, NULL, NULL, NULL), LLMQ_OK);
        cheapest += bits_of(p, t, 2) * cols;
        cheap_obj += e;
        numel += cols;
    }
    const double budget = (cheapest / numel + bits_of(p, 0, 0)) / 2;
    ASSERT_OK(ctx, llmq_plan_solve(ctx, p, budget));
    double obj, bits;
    int32_t exact;
    ASSERT_OK(ctx, llmq_plan_result(p, &obj, &bits, &exact));
    assert_int_equal(exact, 0);
    assert_true(bits <= budget);
    assert_true(bits > cheapest / numel);
    assert_true(obj < cheap_obj);
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

static void candidate_grammar(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w4g32,w4g128s,w3g32,w2g8a,w8a,w4");
    assert_int_equal(llmq_plan_candidate_count(p), 7);
    static const struct {
        llmq_dtype dtype;
        llmq_symmetry sym;
        llmq_granularity gran;
        int64_t group;
        int32_t qmin, qmax;
    } want[] = {
        {LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0, -128, 127},
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32, 0, 15},
        {LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 128, -8, 7},
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32, 0, 7},
        {LLMQ_DTYPE_U2, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 8, 0, 3},
        {LLMQ_DTYPE_U8, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, 255},
        {LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0, 0, 15},
    };
    for (int32_t c = 0; c < 7; c++) {
        const llmq_scheme *s = llmq_plan_candidate_scheme(p, c);
        int32_t qmin, qmax;
        assert_int_equal(llmq_scheme_dtype(s), want[c].dtype);
        assert_int_equal(llmq_scheme_symmetry(s), want[c].sym);
        assert_int_equal(llmq_scheme_granularity(s), want[c].gran);
        assert_int_equal(llmq_scheme_group_size(s), want[c].group);
        assert_int_equal(llmq_scheme_axis(s), 0);
        ASSERT_OK(ctx, llmq_scheme_range(s, &qmin, &qmax));
        assert_int_equal(qmin, want[c].qmin);
        assert_int_equal(qmax, want[c].qmax);
    }
    assert_string_equal(llmq_plan_candidate_name(p, 2), "w4g128s");
    assert_null(llmq_plan_candidate_name(p, 7));
    static const char *const bad[] = {"w5", "w4g", "w4g0", "x8", "w4g32x", "", "w2g64,,w2g16",
                                      "w2g64 ,w2g16", "w16", "w4g1234567890", "w4g32sa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_FAILS(ctx, llmq_plan_add_candidates(ctx, p, bad[i]), LLMQ_ERR_INVALID_ARG,
                     "expected w<bits>[g<group>][s|a]");
    /* all or nothing: a bad name after good ones adds none of them */
    ASSERT_FAILS(ctx, llmq_plan_add_candidates(ctx, p, "w2g64,w9"), LLMQ_ERR_INVALID_ARG,
                 "\"w9\"");
    ASSERT_FAILS(ctx, llmq_plan_add_candidates(ctx, p, "w2g64,w8"), LLMQ_ERR_INVALID_ARG,
                 "name=w8: already a candidate");
    assert_int_equal(llmq_plan_candidate_count(p), 7);
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

static void misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = NULL;
    ASSERT_FAILS(ctx, llmq_plan_create(ctx, NULL), LLMQ_ERR_INVALID_ARG, "out=NULL");
    ASSERT_OK(ctx, llmq_plan_create(ctx, &p));
    float w[64] = {0}, x[64] = {0};
    const int64_t ws[2] = {4, 16}, one[1] = {64}, xs[2] = {4, 12};
    llmq_tensor *wt = test_wrap_f32(ctx, w, 2, ws), *flat = test_wrap_f32(ctx, w, 1, one),
                *xt = test_wrap_f32(ctx, x, 2, xs);
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, "w", wt, NULL), LLMQ_ERR_STATE,
                 "add candidates before tensors");
    ASSERT_FAILS(ctx, llmq_plan_solve(ctx, p, 4.0), LLMQ_ERR_STATE, "no tensor");
    ASSERT_FAILS(ctx, llmq_plan_add_candidates(ctx, p, NULL), LLMQ_ERR_INVALID_ARG, "list=NULL");
    ASSERT_FAILS(ctx, llmq_plan_add_candidate(ctx, p, "x", NULL), LLMQ_ERR_INVALID_ARG,
                 "scheme=NULL");
    llmq_scheme *tok = test_scheme(ctx, LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC,
                                   LLMQ_GRANULARITY_PER_TOKEN, 0, 0);
    ASSERT_FAILS(ctx, llmq_plan_add_candidate(ctx, p, "tok", tok), LLMQ_ERR_INVALID_ARG,
                 "per_token");
    ASSERT_OK(ctx, llmq_scheme_set_granularity(tok, LLMQ_GRANULARITY_PER_TENSOR));
    ASSERT_OK(ctx, llmq_scheme_set_range(tok, -5, 5));
    ASSERT_FAILS(ctx, llmq_plan_add_candidate(ctx, p, "odd", tok), LLMQ_ERR_INVALID_ARG,
                 "range [-5, 5]");
    ASSERT_OK(ctx, llmq_scheme_set_range(tok, 0, 0));
    ASSERT_FAILS(ctx, llmq_plan_add_candidate(ctx, p, "", tok), LLMQ_ERR_INVALID_ARG, "name");
    ASSERT_OK(ctx, llmq_plan_add_candidate(ctx, p, "w8t", tok));
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, "w", flat, NULL), LLMQ_ERR_INVALID_ARG,
                 "must be 2-D");
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, "w", wt, xt), LLMQ_ERR_INVALID_ARG,
                 "inputs: 12 columns, the weight has 16 inputs");
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, NULL, wt, NULL), LLMQ_ERR_INVALID_ARG,
                 "name=NULL");
    x[17] = INFINITY;
    llmq_tensor *xbad = test_wrap_f32(ctx, x, 2, ws);
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, "w", wt, xbad), LLMQ_ERR_NON_FINITE,
                 "inputs[17]: not finite");
    ASSERT_OK(ctx, llmq_plan_add_tensor(ctx, p, "w", wt, NULL));
    ASSERT_FAILS(ctx, llmq_plan_add_tensor(ctx, p, "w", wt, NULL), LLMQ_ERR_INVALID_ARG,
                 "name=w: already in the plan");
    ASSERT_FAILS(ctx, llmq_plan_add_candidate(ctx, p, "late", tok), LLMQ_ERR_STATE,
                 "before the first tensor");
    double e, s;
    assert_int_equal(llmq_plan_sensitivity(p, 0, 0, &e, &s, NULL, NULL), LLMQ_OK);
    assert_float_equal(e, 0.0, 0); /* zero weights quantize exactly */
    assert_true(isinf(s));
    assert_int_equal(llmq_plan_sensitivity(p, 1, 0, NULL, NULL, NULL, NULL), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_plan_sensitivity(NULL, 0, 0, NULL, NULL, NULL, NULL),
                     LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_plan_set_objective(p, (llmq_plan_objective)7), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_plan_choice(p, 0), -1);
    ASSERT_FAILS(ctx, llmq_plan_write_recipe(ctx, p, "/tmp/never.yaml"), LLMQ_ERR_STATE,
                 "not solved");
    assert_int_equal(llmq_plan_tensor_count(NULL), 0);
    assert_null(llmq_plan_tensor_name(p, 1));
    llmq_scheme_destroy(tok);
    TEST_DESTROY(wt, flat, xt, xbad);
    llmq_plan_destroy(p);
    llmq_plan_destroy(NULL);
    llmq_context_destroy(ctx);
}

static void written_recipe_resolves_to_the_plan(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_plan *p = new_plan(ctx, "w8,w4g32,w3g16s,w2g32");
    test_rng r = {3};
    /* names with glob characters must match only themselves */
    static const char *const names[] = {"layers.0.w[qk].weight", "a*b", "plain.weight",
                                        "q?.weight", "back\\slash"};
    for (int t = 0; t < 5; t++)
        add_random(ctx, p, &r, names[t], 4 + t, 64, 40);
    ASSERT_OK(ctx, llmq_plan_solve(ctx, p, 5.0)); /* between w2g32 (4) and w4g32 (6) */
    char dir[] = "/tmp/llmq_plan_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/plan.yaml", dir);
    ASSERT_OK(ctx, llmq_plan_write_recipe(ctx, p, path));
    llmq_recipe *rec = NULL;
    ASSERT_OK(ctx, llmq_recipe_load(ctx, path, &rec));
    assert_int_equal(llmq_recipe_rule_count(rec), 5);
    int used[4] = {0};
    for (int64_t t = 0; t < 5; t++) {
        llmq_recipe_choice c;
        ASSERT_OK(ctx, llmq_recipe_choice_defaults(&c, sizeof c));
        ASSERT_OK(ctx, llmq_recipe_resolve(ctx, rec, names[t], &c));
        const llmq_scheme *want = llmq_plan_candidate_scheme(p, llmq_plan_choice(p, t));
        used[llmq_plan_choice(p, t)] = 1;
        int32_t a0, a1, b0, b1;
        assert_int_equal(c.rule, t);
        assert_int_equal(c.skip, 0);
        assert_null(c.activation);
        assert_non_null(c.weight);
        assert_int_equal(llmq_scheme_dtype(c.weight), llmq_scheme_dtype(want));
        assert_int_equal(llmq_scheme_symmetry(c.weight), llmq_scheme_symmetry(want));
        assert_int_equal(llmq_scheme_granularity(c.weight), llmq_scheme_granularity(want));
        assert_int_equal(llmq_scheme_group_size(c.weight), llmq_scheme_group_size(want));
        ASSERT_OK(ctx, llmq_scheme_range(c.weight, &a0, &a1));
        ASSERT_OK(ctx, llmq_scheme_range(want, &b0, &b1));
        assert_int_equal(a0, b0);
        assert_int_equal(a1, b1);
        llmq_recipe_choice_clear(&c);
    }
    assert_true(used[0] + used[1] + used[2] + used[3] >= 2); /* a mix, not one scheme */
    /* other tensors keep float weights; a glob name does not match its look-alikes */
    static const char *const others[] = {"layers.0.wq.weight", "aXb", "qq.weight", "norm.weight"};
    for (int i = 0; i < 4; i++) {
        llmq_recipe_choice c;
        ASSERT_OK(ctx, llmq_recipe_choice_defaults(&c, sizeof c));
        ASSERT_OK(ctx, llmq_recipe_resolve(ctx, rec, others[i], &c));
        assert_int_equal(c.rule, -1);
        assert_null(c.weight);
        llmq_recipe_choice_clear(&c);
    }
    llmq_recipe_destroy(rec);
    /* an unwritable place leaves nothing behind */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no-such-dir/plan.yaml", dir);
    ASSERT_FAILS(ctx, llmq_plan_write_recipe(ctx, p, bad), LLMQ_ERR_IO, "no-such-dir/plan.yaml");
    ASSERT_FAILS(ctx, llmq_plan_write_recipe(ctx, p, ""), LLMQ_ERR_INVALID_ARG, "path=\"\"");
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* empty: no temporary file was left */
    llmq_plan_destroy(p);
    llmq_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bits_per_weight_golden),
        cmocka_unit_test(sensitivity_matches_direct_reference),
        cmocka_unit_test(solver_finds_the_brute_force_optimum),
        cmocka_unit_test(budget_and_infeasible_budget),
        cmocka_unit_test(coarse_units_respect_the_budget),
        cmocka_unit_test(candidate_grammar),
        cmocka_unit_test(misuse),
        cmocka_unit_test(written_recipe_resolves_to_the_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
