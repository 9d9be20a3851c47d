/* test_recipe.c - YAML recipes: the shipped examples load, rules resolve first-match-wins over
 * the defaults, and every error class is reported as file:line:column: key.path: reason.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "testing.h"

static const char *examples_dir;

static llmq_recipe *parse(llmq_context *ctx, const char *text)
{
    llmq_recipe *r = NULL;
    ASSERT_OK(ctx, llmq_recipe_parse(ctx, text, strlen(text), "r.yaml", &r));
    return r;
}

static void resolve(llmq_context *ctx, const llmq_recipe *r, const char *name,
                    llmq_recipe_choice *c)
{
    ASSERT_OK(ctx, llmq_recipe_choice_defaults(c, sizeof *c));
    ASSERT_OK(ctx, llmq_recipe_resolve(ctx, r, name, c));
}

static void examples_load(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const char *files[] = {"w8a8.yaml",      "w8a8-static.yaml",   "w4a16-g32.yaml",
                                  "w4a16-g32-sym.yaml", "w4a16-g128.yaml", "w4a16-g128-sym.yaml",
                                  "w4a8-g32.yaml",  "w3a16-g32.yaml",     "w2a16-g32.yaml",
                                  "mixed.yaml",     "w8a8-smoothquant.yaml",
                                  "w8a8-static-smoothquant.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", examples_dir, files[i]);
        llmq_recipe *r = NULL;
        ASSERT_OK(ctx, llmq_recipe_load(ctx, p, &r));
        assert_true(llmq_recipe_rule_count(r) >= 1);
        llmq_recipe_choice c;
        resolve(ctx, r, "output.weight", &c);
        assert_int_equal(c.skip, 1);
        llmq_recipe_choice_clear(&c);
        resolve(ctx, r, "layers.0.feed_forward.w1.weight", &c);
        assert_int_equal(c.skip, 0);
        assert_non_null(c.weight);
        llmq_recipe_choice_clear(&c);
        llmq_recipe_destroy(r);
    }
    llmq_context_destroy(ctx);
}

static void first_match_wins_over_defaults(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_recipe *r = parse(ctx, "version: 1\n"
                                "defaults:\n"
                                "  weight: {bits: 4, symmetry: asymmetric, granularity: per_group,"
                                " group_size: 64, numerics: onnx}\n"
                                "  activation: {dtype: s8, mode: static}\n"
                                "rules:\n"
                                "  - match: [\"*.wq.weight\", \"*.wk.weight\"]\n"
                                "    weight: {bits: 8, granularity: per_channel}\n"
                                "  - match: \"*.weight\"\n"
                                "    activation: none\n"
                                "  - match: \"layers.0.*\"\n"
                                "    skip: true\n");
    llmq_recipe_choice c;
    /* rule 0: bits 8 over the defaults' asymmetric -> u8, per channel, onnx kept */
    resolve(ctx, r, "layers.0.attention.wq.weight", &c);
    assert_int_equal(c.rule, 0);
    assert_int_equal(llmq_scheme_dtype(c.weight), LLMQ_DTYPE_U8);
    assert_int_equal(llmq_scheme_granularity(c.weight), LLMQ_GRANULARITY_PER_CHANNEL);
    assert_int_equal(llmq_scheme_numerics(c.weight), LLMQ_NUMERICS_ONNX);
    assert_int_equal(llmq_scheme_dtype(c.activation), LLMQ_DTYPE_S8);
    /* static activations default to one calibrated scale per tensor */
    assert_int_equal(llmq_scheme_granularity(c.activation), LLMQ_GRANULARITY_PER_TENSOR);
    assert_int_equal(c.activation_mode, LLMQ_ACTIVATION_STATIC);
    llmq_recipe_choice_clear(&c);
    /* rule 1 before rule 2: first match wins, the skip of rule 2 is never reached */
    resolve(ctx, r, "layers.0.feed_forward.w1.weight", &c);
    assert_int_equal(c.rule, 1);
    assert_int_equal(c.skip, 0);
    assert_int_equal(llmq_scheme_dtype(c.weight), LLMQ_DTYPE_U4);
    assert_int_equal(llmq_scheme_group_size(c.weight), 64);
    assert_null(c.activation);
    assert_int_equal(c.activation_mode, LLMQ_ACTIVATION_FLOAT);
    llmq_recipe_choice_clear(&c);
    resolve(ctx, r, "layers.0.attention_norm.bias", &c);
    assert_int_equal(c.rule, 2);
    assert_int_equal(c.skip, 1);
    assert_null(c.weight);
    llmq_recipe_choice_clear(&c);
    resolve(ctx, r, "tok_embeddings", &c); /* no rule: the defaults */
    assert_int_equal(c.rule, -1);
    assert_int_equal(llmq_scheme_dtype(c.weight), LLMQ_DTYPE_U4);
    assert_int_equal(c.activation_mode, LLMQ_ACTIVATION_STATIC);
    llmq_recipe_choice_clear(&c);
    /* 3 bits: a 4-bit dtype with a narrower grid */
    llmq_recipe *r3 = parse(ctx, "version: 1\ndefaults:\n  weight: {bits: 3, symmetry: asymmetric,"
                                 " granularity: per_group, group_size: 32}\n"
                                 "rules:\n  - match: s\n    weight: {symmetry: symmetric}\n");
    int32_t qmin, qmax;
    resolve(ctx, r3, "x", &c);
    assert_int_equal(llmq_scheme_dtype(c.weight), LLMQ_DTYPE_U4);
    ASSERT_OK(ctx, llmq_scheme_range(c.weight, &qmin, &qmax));
    assert_int_equal(qmin, 0);
    assert_int_equal(qmax, 7);
    llmq_recipe_choice_clear(&c);
    resolve(ctx, r3, "s", &c);
    assert_int_equal(llmq_scheme_dtype(c.weight), LLMQ_DTYPE_S4);
    ASSERT_OK(ctx, llmq_scheme_range(c.weight, &qmin, &qmax));
    assert_int_equal(qmin, -4);
    assert_int_equal(qmax, 3);
    llmq_recipe_choice_clear(&c);
    llmq_recipe_destroy(r3);
    resolve(ctx, r, "tok_embeddings", &c);
    /* a choice holding schemes must be cleared first */
    ASSERT_FAILS(ctx, llmq_recipe_resolve(ctx, r, "x", &c), LLMQ_ERR_INVALID_ARG,
                 "call llmq_recipe_choice_clear first");
    llmq_recipe_choice_clear(&c);
    llmq_recipe_destroy(r);
    llmq_context_destroy(ctx);
}

/* Each error class, with its exact location. */
static void errors_name_file_line_column_key(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"version: 1\ndefaults:\n  weight: {bits: 5}\n",
         "llmq_recipe_parse: r.yaml:3:18: defaults.weight.bits: 5: must be 2, 3, 4 or 8"},
        {"version: 1\ndefaults:\n  weight: {bits: 4, granularity: per_group, group_size: 0}\n",
         "r.yaml:3:57: defaults.weight.group_size: 0: must be in 1.."},
        {"version: 1\ndefaults:\n  weight: {bits: 4, granularity: per_group}\n",
         "r.yaml:3:11: defaults.weight: granularity per_group needs group_size"},
        {"version: 1\ndefaults:\n  calibration: {observer: magic}\n",
         "r.yaml:3:27: defaults.calibration.observer: magic: expected one of minmax, "
         "moving_average, percentile, entropy, histogram_l2, mse"},
        {"version: 1\ndefaults:\n  weight: {dtype: s8, colour: red}\n",
         "r.yaml:3:23: defaults.weight.colour: unknown key"},
        {"version: 1\nextras: 3\n", "r.yaml:2:1: extras: unknown key"},
        {"version: 2\n", "r.yaml:1:10: version: 2: unsupported (this llmq reads version 1)"},
        {"defaults: {}\n", "r.yaml:1:1: version: missing"},
        {"version: one\n", "r.yaml:1:10: version: one: must be an integer"},
        {"version: 1\nrules: {match: x}\n", "r.yaml:2:8: rules: must be a list"},
        {"version: 1\nrules:\n  - weight: {bits: 8}\n", "r.yaml:3:5: rules[0]: needs match"},
        {"version: 1\nrules:\n  - match: x\n    skip: maybe\n",
         "r.yaml:4:11: rules[0].skip: maybe: must be true or false"},
        {"version: 1\nrules:\n  - match: x\n    skip: true\n    weight: {bits: 8}\n",
         "r.yaml:3:5: rules[0]: skip: true keeps the tensor as it is"},
        {"version: 1\nrules:\n  - match: [a, [b]]\n",
         "r.yaml:3:16: rules[0].match[1]: must be a scalar"},
        {"version: 1\nrules:\n  - match: x\n    weight: {dtype: s4, bits: 8}\n",
         "r.yaml:4:13: rules[0].weight: bits=8: contradicts dtype s4"},
        {"version: 1\ndefaults:\n  weight: {symmetry: symmetric}\n",
         "r.yaml:3:11: defaults.weight: needs dtype or bits"},
        {"version: 1\ndefaults:\n  activation: {dtype: s8, mode: float}\n",
         "defaults.activation.mode: float: write `activation: none` instead"},
        {"version: 1\nversion: 1\n", "r.yaml:2:1: version: duplicate key"},
        {"version: 1\ndefaults:\n  calibration: {percentile: -3}\n",
         "r.yaml:3:29: defaults.calibration.percentile: -3: must be positive"},
        {"version: 1\ndefaults:\n  weight: [s8]\n", "r.yaml:3:11: defaults.weight: must be a mapping"},
        {"version: 1\ndefaults: {weight: {dtype: s8\n", "r.yaml:3:1: yaml: did not find expected ',' or '}'"},
        {"", "r.yaml:1:1: version: the recipe is empty"},
        {"version: 1\ndefaults:\n  weight: {dtype: s8, axis: 9}\n",
         "defaults.weight.axis: 9: must be in -4..3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmq_recipe *r = NULL;
        ASSERT_FAILS(ctx, llmq_recipe_parse(ctx, bad[i].text, strlen(bad[i].text), "r.yaml", &r),
                     LLMQ_ERR_PARSE, bad[i].message);
        assert_null(r);
    }
    llmq_recipe *r = NULL;
    ASSERT_FAILS(ctx, llmq_recipe_load(ctx, "/nonexistent/recipe.yaml", &r), LLMQ_ERR_IO,
                 "llmq_recipe_load: path=/nonexistent/recipe.yaml: No such file or directory");
    llmq_context_destroy(ctx);
}

/* The calibration a recipe asks for becomes a quantizer: the observer and its settings from the
 * rule over the defaults. */
static void calibration_quantizers(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_recipe *r = parse(ctx, "version: 1\n"
                                "defaults:\n"
                                "  weight: {dtype: s8}\n"
                                "  activation: {dtype: u8, symmetry: asymmetric, mode: static}\n"
                                "  calibration: {observer: percentile, percentile: 99.9}\n"
                                "rules:\n"
                                "  - match: \"*.w2.weight\"\n"
                                "    calibration: {observer: histogram_l2, bins: 1024}\n"
                                "  - match: \"*.wq.weight\"\n"
                                "    activation: {mode: dynamic, granularity: per_token}\n");
    llmq_quantizer *q = NULL;
    double v;
    ASSERT_OK(ctx, llmq_recipe_create_quantizer(ctx, r, "layers.0.feed_forward.w1.weight", &q));
    assert_int_equal(llmq_quantizer_observer(q), LLMQ_OBSERVER_PERCENTILE);
    ASSERT_OK(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_PERCENTILE, &v));
    assert_true(v == 99.9);
    assert_int_equal(llmq_scheme_dtype(llmq_quantizer_scheme(q)), LLMQ_DTYPE_U8);
    llmq_quantizer_destroy(q);
    ASSERT_OK(ctx, llmq_recipe_create_quantizer(ctx, r, "layers.0.feed_forward.w2.weight", &q));
    assert_int_equal(llmq_quantizer_observer(q), LLMQ_OBSERVER_HISTOGRAM_L2);
    ASSERT_OK(ctx, llmq_quantizer_get_param(q, LLMQ_OBSERVER_PARAM_BINS, &v));
    assert_true(v == 1024.0);
    llmq_quantizer_destroy(q);
    ASSERT_FAILS(ctx, llmq_recipe_create_quantizer(ctx, r, "layers.0.attention.wq.weight", &q),
                 LLMQ_ERR_STATE, "its activations are not static in this recipe");
    assert_null(q);
    llmq_recipe_destroy(r);
    /* static settings are checked when the recipe loads */
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"version: 1\ndefaults:\n  activation: {dtype: s8, mode: static, granularity: per_token}\n",
         "r.yaml:3:15: defaults.activation: mode static: per_token parameters only exist at run"},
        {"version: 1\ndefaults:\n  activation: {dtype: s8, mode: static}\n"
         "  calibration: {observer: percentile, momentum: 0.1}\n",
         "defaults.activation: calibration.momentum: does not apply to observer percentile"},
        {"version: 1\ndefaults:\n  activation: {dtype: s8, mode: static}\n"
         "rules:\n  - match: x\n    calibration: {percentile: 99}\n",
         "r.yaml:5:5: rules[0]: calibration.percentile: does not apply to observer minmax"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_FAILS(ctx, llmq_recipe_parse(ctx, bad[i].text, strlen(bad[i].text), "r.yaml", &r),
                     LLMQ_ERR_PARSE, bad[i].message);
    llmq_context_destroy(ctx);
}

static void smoothquant_of(llmq_context *ctx, const llmq_recipe *r, const char *name,
                           llmq_recipe_smoothquant *q)
{
    memset(q, 0xa5, sizeof *q); /* everything is written */
    q->size = sizeof *q;
    ASSERT_OK(ctx, llmq_recipe_resolve_smoothquant(ctx, r, name, q));
    assert_int_equal(q->reserved0_, 0);
    assert_int_equal(q->reserved[3], 0);
}

/* smoothquant sections: defaults and rules merged field by field, the llama fold convention,
 * fold templates, none, search, and skip. */
static void smoothquant_sections(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_recipe *r = parse(ctx, "version: 1\n"
                                "defaults:\n"
                                "  weight: {dtype: s8}\n"
                                "  smoothquant: {alpha: 0.75}\n"
                                "rules:\n"
                                "  - match: \"*.norm.weight\"\n"
                                "    skip: true\n"
                                "  - match: \"*.wk.weight\"\n"
                                "    smoothquant: {alpha: search, grid: 10}\n"
                                "  - match: \"*.w2.weight\"\n"
                                "    smoothquant: {fold: \"{1}.{2}.feed_forward.w3.weight\"}\n"
                                "  - match: \"*.w3.weight\"\n"
                                "    smoothquant: none\n"
                                "  - match: \"*.wo.weight\"\n"
                                "    smoothquant: {fold: none}\n"
                                "  - match: \"*.wz\"\n"
                                "    smoothquant: {fold: \"{3}.norm\"}\n");
    llmq_recipe_smoothquant q;
    smoothquant_of(ctx, r, "layers.3.attention.wq.weight", &q);
    assert_int_equal(q.rule, -1);
    assert_int_equal(q.enabled, 1);
    assert_int_equal(q.search, 0);
    assert_true(q.alpha == 0.75f);
    assert_int_equal(q.grid, 20);
    assert_string_equal(q.fold, "layers.3.attention_norm.weight");
    smoothquant_of(ctx, r, "layers.3.attention.wk.weight", &q);
    assert_int_equal(q.rule, 1);
    assert_int_equal(q.search, 1);
    assert_int_equal(q.grid, 10);
    assert_true(q.alpha == 0.75f); /* kept from the defaults: the fallback */
    assert_string_equal(q.fold, "layers.3.attention_norm.weight");
    smoothquant_of(ctx, r, "layers.0.feed_forward.w1.weight", &q);
    assert_string_equal(q.fold, "layers.0.ffn_norm.weight");
    smoothquant_of(ctx, r, "feed_forward.w1.weight", &q); /* the suffix alone */
    assert_string_equal(q.fold, "ffn_norm.weight");
    smoothquant_of(ctx, r, "layers.0.feed_forward.xw1.weight", &q); /* not a component */
    assert_int_equal(q.enabled, 0);
    assert_string_equal(q.fold, "");
    smoothquant_of(ctx, r, "layers.12.feed_forward.w2.weight", &q);
    assert_int_equal(q.enabled, 1);
    assert_string_equal(q.fold, "layers.12.feed_forward.w3.weight");
    smoothquant_of(ctx, r, "layers.12.feed_forward.w3.weight", &q);
    assert_int_equal(q.enabled, 0);
    smoothquant_of(ctx, r, "layers.0.attention.wo.weight", &q);
    assert_int_equal(q.enabled, 0);
    assert_true(q.alpha == 0.75f);
    smoothquant_of(ctx, r, "x.norm.weight", &q); /* skipped */
    assert_int_equal(q.enabled, 0);
    /* a template past the name's components, and a bad size */
    q.size = sizeof q;
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, r, "a.wz", &q), LLMQ_ERR_INVALID_ARG,
                 "tensor_name=a.wz: has no component 3 for fold {3}.norm");
    char longname[300];
    memset(longname, 'a', sizeof longname);
    memcpy(longname + 270, ".feed_forward.w2.weight", 24);
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, r, longname, &q),
                 LLMQ_ERR_INVALID_ARG, "expands past 255 bytes");
    q.size = 8;
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, r, "x", &q), LLMQ_ERR_ABI,
                 "out.size=8: set it to sizeof(llmq_recipe_smoothquant)");
    q.size = sizeof q;
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, NULL, "x", &q), LLMQ_ERR_INVALID_ARG,
                 "r=NULL");
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, r, NULL, &q), LLMQ_ERR_INVALID_ARG,
                 "tensor_name=NULL");
    ASSERT_FAILS(ctx, llmq_recipe_resolve_smoothquant(ctx, r, "x", NULL), LLMQ_ERR_INVALID_ARG,
                 "out=NULL");
    llmq_recipe_destroy(r);
    /* no section: never enabled, defaults reported */
    r = parse(ctx, "version: 1\ndefaults:\n  weight: {dtype: s8}\n"
                   "rules:\n  - match: \"*.wv.weight\"\n    smoothquant: {alpha: 0.25}\n");
    smoothquant_of(ctx, r, "layers.0.attention.wq.weight", &q);
    assert_int_equal(q.enabled, 0);
    assert_true(q.alpha == 0.5f);
    assert_int_equal(q.grid, 20);
    smoothquant_of(ctx, r, "layers.0.attention.wv.weight", &q); /* a rule alone enables it */
    assert_int_equal(q.enabled, 1);
    assert_true(q.alpha == 0.25f);
    llmq_recipe_destroy(r);
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"version: 1\ndefaults:\n  smoothquant: {alpha: 1.5}\n",
         "r.yaml:3:24: defaults.smoothquant.alpha: 1.5: must be in [0, 1] or search"},
        {"version: 1\ndefaults:\n  smoothquant: {alpha: lots}\n",
         "r.yaml:3:24: defaults.smoothquant.alpha: lots: must be a finite number"},
        {"version: 1\ndefaults:\n  smoothquant: {grid: 0}\n",
         "r.yaml:3:23: defaults.smoothquant.grid: 0: must be in 1..1000"},
        {"version: 1\ndefaults:\n  smoothquant: {beta: 1}\n",
         "r.yaml:3:17: defaults.smoothquant.beta: unknown key"},
        {"version: 1\ndefaults:\n  smoothquant: [0.5]\n",
         "r.yaml:3:16: defaults.smoothquant: must be a mapping"},
        {"version: 1\nrules:\n  - match: x\n    smoothquant: {fold: \"a.{0}\"}\n",
         "r.yaml:4:25: rules[0].smoothquant.fold: a.{0}: `{` must open {i}, a name component i "
         "in 1..64"},
        {"version: 1\nrules:\n  - match: x\n    smoothquant: {fold: \"a.{2\"}\n",
         "rules[0].smoothquant.fold: a.{2: `{` must open {i}"},
        {"version: 1\nrules:\n  - match: x\n    smoothquant: {fold: \"a}\"}\n",
         "rules[0].smoothquant.fold: a}: `}` without `{`"},
        {"version: 1\nrules:\n  - match: x\n    smoothquant: {fold: \"\"}\n",
         "rules[0].smoothquant.fold: empty: write `fold: none` for no fold target"},
        {"version: 1\nrules:\n  - match: x\n    skip: true\n    smoothquant: {alpha: 0.5}\n",
         "r.yaml:3:5: rules[0]: skip: true keeps the tensor as it is; drop weight, activation "
         "and smoothquant"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmq_recipe *none = NULL;
        ASSERT_FAILS(ctx, llmq_recipe_parse(ctx, bad[i].text, strlen(bad[i].text), "r.yaml",
                                            &none),
                     LLMQ_ERR_PARSE, bad[i].message);
    }
    llmq_context_destroy(ctx);
}

static void misuse(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    llmq_recipe *r = parse(ctx, "version: 1\n");
    llmq_recipe_choice c;
    assert_int_equal(llmq_recipe_choice_defaults(NULL, sizeof c), LLMQ_ERR_INVALID_ARG);
    assert_int_equal(llmq_recipe_choice_defaults(&c, 4), LLMQ_ERR_ABI);
    ASSERT_OK(ctx, llmq_recipe_choice_defaults(&c, sizeof c));
    ASSERT_FAILS(ctx, llmq_recipe_resolve(ctx, NULL, "x", &c), LLMQ_ERR_INVALID_ARG, "r=NULL");
    ASSERT_FAILS(ctx, llmq_recipe_resolve(ctx, r, NULL, &c), LLMQ_ERR_INVALID_ARG, "tensor_name=NULL");
    ASSERT_FAILS(ctx, llmq_recipe_resolve(ctx, r, "x", NULL), LLMQ_ERR_INVALID_ARG, "choice=NULL");
    c.reserved[2] = 1;
    ASSERT_FAILS(ctx, llmq_recipe_resolve(ctx, r, "x", &c), LLMQ_ERR_ABI, "choice.size");
    ASSERT_OK(ctx, llmq_recipe_choice_defaults(&c, sizeof c));
    ASSERT_OK(ctx, llmq_recipe_resolve(ctx, r, "x", &c)); /* no defaults: everything float */
    assert_null(c.weight);
    assert_null(c.activation);
    llmq_recipe *none = NULL;
    ASSERT_FAILS(ctx, llmq_recipe_parse(ctx, NULL, 3, "s", &none), LLMQ_ERR_INVALID_ARG,
                 "text=NULL");
    ASSERT_FAILS(ctx, llmq_recipe_load(ctx, NULL, &none), LLMQ_ERR_INVALID_ARG, "path=NULL");
    assert_int_equal(llmq_recipe_load(NULL, "x", &none), LLMQ_ERR_INVALID_ARG);
    assert_null(none);
    llmq_recipe_choice_clear(NULL);
    llmq_recipe_destroy(NULL);
    assert_int_equal(llmq_recipe_rule_count(NULL), 0);
    llmq_recipe_destroy(r);
    llmq_context_destroy(ctx);
}

int main(int argc, char **argv)
{
    examples_dir = argc > 1 ? argv[1] : "examples/recipes";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(examples_load),
        cmocka_unit_test(first_match_wins_over_defaults),
        cmocka_unit_test(errors_name_file_line_column_key),
        cmocka_unit_test(calibration_quantizers),
        cmocka_unit_test(smoothquant_sections),
        cmocka_unit_test(misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
