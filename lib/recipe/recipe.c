/* recipe.c - YAML recipes (docs/recipes.md), parsed with libyaml's document API so that every
 * error names the file, line, column and key path. SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/abi_check.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "quant/scheme_impl.h"
#include "llmq/quantizer.h"
#include "llmq/recipe.h"

#define RECIPE_VERSION 1
#define MAX_RECIPE_BYTES (16u << 20)

/* A scheme as written in the file: unset fields are -1 (0 for bits and group size). */
typedef struct spec {
    bool present, none;
    int dtype, bits, symmetry, granularity, rounding, numerics, mode;
    bool axis_set, seed_set;
    int32_t axis;
    int64_t group_size;
    uint64_t seed;
    yaml_mark_t mark;
} spec;

/* Calibration settings: an observer (-1: unset) and the settings given, indexed by
 * llmq_observer_param. */
#define N_OBSERVERS 6
#define N_CALIB_PARAMS 5
typedef struct calib_spec {
    int observer;
    double params[N_CALIB_PARAMS];
    uint32_t set;
} calib_spec;

/* A `smoothquant` section: fields unset until given; fold NULL with fold_set means none. */
typedef struct sq_spec {
    bool present, none, alpha_set, search, fold_set;
    float alpha;
    int32_t grid; /* 0: unset */
    char *fold;   /* owned template */
} sq_spec;

#define SQ_ALPHA 0.5f
#define SQ_GRID 20
#define SQ_MAX_GRID 1000
#define SQ_MAX_COMPONENT 64

typedef struct rule {
    char **patterns;
    int32_t n_patterns;
    bool skip;
    spec weight, activation;
    calib_spec calib;
    sq_spec sq;
    llmq_scheme *w, *a; /* built from the rule merged over the defaults */
    llmq_activation_mode mode;
    calib_spec merged;  /* the rule's calibration over the defaults' */
} rule;

struct llmq_recipe {
    llmq_context *ctx;
    spec weight, activation;
    calib_spec calib, merged;
    sq_spec sq;
    llmq_scheme *w, *a;
    llmq_activation_mode mode;
    rule *rules;
    int32_t n_rules;
};

static const char *const dtype_names[] = {"s8", "u8", "s4", "u4", "s2", "u2"};
static const char *const symmetry_names[] = {"symmetric", "symmetric_restricted", "asymmetric"};
static const char *const granularity_names[] = {"per_tensor", "per_channel", "per_group",
                                                "per_token"};
static const char *const rounding_names[] = {"half_even", "half_away", "stochastic"};
static const char *const numerics_names[] = {"pytorch", "onnx"};
static const char *const mode_names[] = {"float", "dynamic", "static"};
static const char *const calib_param_names[N_CALIB_PARAMS] = {"momentum", "percentile", "bins",
                                                               "grid", "upsample"};
#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

typedef struct parse_ctx {
    llmq_context *ctx;
    const char *fn, *source;
    yaml_document_t *doc;
} parse_ctx;

static llmq_status fail_at(const parse_ctx *pc, yaml_mark_t mark, const char *path,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static llmq_status fail_at(const parse_ctx *pc, yaml_mark_t mark, const char *path,
                           const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return llmq_fail(pc->ctx, LLMQ_ERR_PARSE, pc->fn, "%s:%zu:%zu: %s: %s",
                     pc->source, mark.line + 1, mark.column + 1, path, reason);
}

static yaml_node_t *node(const parse_ctx *pc, int index)
{
    return yaml_document_get_node(pc->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static llmq_status want_scalar(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                               const char **out)
{
    *out = scalar(n);
    if (*out == NULL)
        return fail_at(pc, n->start_mark, path, "must be a scalar");
    return LLMQ_OK;
}

static llmq_status get_enum(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                            const char *const *names, int count, int *out)
{
    const char *s;
    LLMQ_TRY(want_scalar(pc, n, path, &s));
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return LLMQ_OK;
        }
    char list[256] = "";
    for (int i = 0; i < count; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return fail_at(pc, n->start_mark, path, "%s: expected one of %s", s, list);
}

static llmq_status get_int(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                           long long lo, long long hi, long long *out)
{
    const char *s;
    LLMQ_TRY(want_scalar(pc, n, path, &s));
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return fail_at(pc, n->start_mark, path, "%s: must be an integer", s);
    if (v < lo || v > hi)
        return fail_at(pc, n->start_mark, path, "%lld: must be in %lld..%lld", v, lo, hi);
    *out = v;
    return LLMQ_OK;
}

static llmq_status get_number(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                              double *out)
{
    const char *s;
    LLMQ_TRY(want_scalar(pc, n, path, &s));
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
        return fail_at(pc, n->start_mark, path, "%s: must be a finite number", s);
    *out = v;
    return LLMQ_OK;
}

static llmq_status get_bool(const parse_ctx *pc, const yaml_node_t *n, const char *path, bool *out)
{
    const char *s;
    LLMQ_TRY(want_scalar(pc, n, path, &s));
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return LLMQ_OK;
    }
    return fail_at(pc, n->start_mark, path, "%s: must be true or false", s);
}

/* Iterate a mapping, refusing duplicate keys and keys outside `allowed`. */
typedef llmq_status (*field_fn)(const parse_ctx *pc, void *target, const char *key,
                                const yaml_node_t *value, const char *path);

static llmq_status each_field(const parse_ctx *pc, const yaml_node_t *map, const char *path,
                              const char *const *allowed, int n_allowed, field_fn fn,
                              void *target)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(pc, map->start_mark, path, "must be a mapping");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(pc, p->key), *v = node(pc, p->value);
        const char *key = scalar(k);
        if (key == NULL)
            return fail_at(pc, k->start_mark, path, "keys must be scalars");
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
            if (strcmp(scalar(node(pc, q->key)), key) == 0)
                return fail_at(pc, k->start_mark, sub, "duplicate key");
        bool known = false;
        for (int i = 0; i < n_allowed && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known)
            return fail_at(pc, k->start_mark, sub, "unknown key");
        LLMQ_TRY(fn(pc, target, key, v, sub));
    }
    return LLMQ_OK;
}

static llmq_status spec_field(const parse_ctx *pc, void *target, const char *key,
                              const yaml_node_t *v, const char *path)
{
    spec *s = target;
    long long i;
    if (strcmp(key, "dtype") == 0)
        return get_enum(pc, v, path, dtype_names, COUNT(dtype_names), &s->dtype);
    if (strcmp(key, "bits") == 0) {
        LLMQ_TRY(get_int(pc, v, path, 1, 32, &i));
        if (i != 2 && i != 3 && i != 4 && i != 8)
            return fail_at(pc, v->start_mark, path, "%lld: must be 2, 3, 4 or 8", i);
        s->bits = (int)i;
        return LLMQ_OK;
    }
    if (strcmp(key, "symmetry") == 0)
        return get_enum(pc, v, path, symmetry_names, COUNT(symmetry_names), &s->symmetry);
    if (strcmp(key, "granularity") == 0)
        return get_enum(pc, v, path, granularity_names, COUNT(granularity_names),
                        &s->granularity);
    if (strcmp(key, "rounding") == 0)
        return get_enum(pc, v, path, rounding_names, COUNT(rounding_names), &s->rounding);
    if (strcmp(key, "numerics") == 0)
        return get_enum(pc, v, path, numerics_names, COUNT(numerics_names), &s->numerics);
    if (strcmp(key, "mode") == 0) {
        LLMQ_TRY(get_enum(pc, v, path, mode_names, COUNT(mode_names), &s->mode));
        if (s->mode == LLMQ_ACTIVATION_FLOAT)
            return fail_at(pc, v->start_mark, path, "float: write `activation: none` instead");
        return LLMQ_OK;
    }
    if (strcmp(key, "axis") == 0) {
        LLMQ_TRY(get_int(pc, v, path, -LLMQ_MAX_DIMS, LLMQ_MAX_DIMS - 1, &i));
        s->axis = (int32_t)i;
        s->axis_set = true;
        return LLMQ_OK;
    }
    if (strcmp(key, "group_size") == 0) {
        LLMQ_TRY(get_int(pc, v, path, 1, INT64_MAX, &i));
        s->group_size = i;
        return LLMQ_OK;
    }
    /* seed */
    LLMQ_TRY(get_int(pc, v, path, 0, LLONG_MAX, &i));
    s->seed = (uint64_t)i;
    s->seed_set = true;
    return LLMQ_OK;
}

static void spec_init(spec *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = s->symmetry = s->granularity = s->rounding = s->numerics = s->mode = -1;
}

static llmq_status parse_spec(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                              bool activation, spec *s)
{
    static const char *const weight_keys[] = {"dtype", "bits", "symmetry", "granularity", "axis",
                                              "group_size", "rounding", "seed", "numerics"};
    static const char *const act_keys[] = {"dtype", "bits", "symmetry", "granularity", "axis",
                                           "group_size", "rounding", "seed", "numerics", "mode"};
    spec_init(s);
    s->present = true;
    s->mark = n->start_mark;
    if (activation && scalar(n) != NULL && strcmp(scalar(n), "none") == 0) {
        s->none = true;
        return LLMQ_OK;
    }
    if (activation)
        return each_field(pc, n, path, act_keys, COUNT(act_keys), spec_field, s);
    return each_field(pc, n, path, weight_keys, COUNT(weight_keys), spec_field, s);
}

static llmq_status calib_field(const parse_ctx *pc, void *target, const char *key,
                               const yaml_node_t *v, const char *path)
{
    calib_spec *c = target;
    if (strcmp(key, "observer") == 0) {
        const char *names[N_OBSERVERS];
        for (int i = 0; i < N_OBSERVERS; i++)
            names[i] = llmq_observer_name((llmq_observer)i);
        return get_enum(pc, v, path, names, N_OBSERVERS, &c->observer);
    }
    for (int i = 0; i < N_CALIB_PARAMS; i++)
        if (strcmp(key, calib_param_names[i]) == 0) {
            LLMQ_TRY(get_number(pc, v, path, &c->params[i]));
            if (!(c->params[i] > 0.0))
                return fail_at(pc, v->start_mark, path, "%s: must be positive", scalar(v));
            c->set |= 1u << i;
            return LLMQ_OK;
        }
    return LLMQ_ERR_INTERNAL;
}

static llmq_status parse_calib(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                               calib_spec *c)
{
    static const char *const keys[] = {"observer", "momentum", "percentile", "bins", "grid",
                                       "upsample"};
    memset(c, 0, sizeof *c);
    c->observer = -1;
    return each_field(pc, n, path, keys, COUNT(keys), calib_field, c);
}

/* Overlay b's set fields on a. */
static spec merge(const spec *a, const spec *b)
{
    if (!b->present)
        return *a;
    if (b->none || !a->present || a->none)
        return *b;
    spec m = *a;
    m.mark = b->mark;
#define TAKE(f) if (b->f >= 0) m.f = b->f
    TAKE(dtype);
    TAKE(symmetry);
    TAKE(granularity);
    TAKE(rounding);
    TAKE(numerics);
    TAKE(mode);
#undef TAKE
    if (b->bits)
        m.bits = b->bits;
    if (b->group_size)
        m.group_size = b->group_size;
    if (b->axis_set) {
        m.axis = b->axis;
        m.axis_set = true;
    }
    if (b->seed_set) {
        m.seed = b->seed;
        m.seed_set = true;
    }
    if (b->dtype >= 0 && b->bits == 0)
        m.bits = 0; /* an explicit dtype replaces inherited bits */
    if (b->bits && b->dtype < 0)
        m.dtype = -1;
    return m;
}

/* Build the scheme a merged spec describes (NULL when absent or none). */
static llmq_status build(const parse_ctx *pc, const spec *s, const char *path, bool activation,
                         llmq_scheme **out, llmq_activation_mode *mode)
{
    *out = NULL;
    if (mode != NULL)
        *mode = LLMQ_ACTIVATION_FLOAT;
    if (!s->present || s->none)
        return LLMQ_OK;
    const int sym = s->symmetry >= 0 ? s->symmetry : LLMQ_SYMMETRY_SYMMETRIC;
    llmq_dtype d;
    if (s->dtype >= 0) {
        d = (llmq_dtype)(LLMQ_DTYPE_S8 + s->dtype);
        if (s->bits && (uint32_t)s->bits > llmq_dtype_bits(d))
            return fail_at(pc, s->mark, path, "bits=%d: contradicts dtype %s", s->bits,
                           dtype_names[s->dtype]);
    } else if (s->bits) { /* the smallest container; 3 bits live in a 4-bit dtype */
        const bool u = sym == LLMQ_SYMMETRY_ASYMMETRIC;
        d = s->bits == 8 ? (u ? LLMQ_DTYPE_U8 : LLMQ_DTYPE_S8)
            : s->bits >= 3 ? (u ? LLMQ_DTYPE_U4 : LLMQ_DTYPE_S4)
                           : (u ? LLMQ_DTYPE_U2 : LLMQ_DTYPE_S2);
    } else {
        return fail_at(pc, s->mark, path, "needs dtype or bits");
    }
    /* fewer bits than the dtype: a narrower grid inside it, as PyTorch's quant_min/max */
    const bool narrow = s->bits && (uint32_t)s->bits < llmq_dtype_bits(d);
    const bool is_unsigned = d == LLMQ_DTYPE_U8 || d == LLMQ_DTYPE_U4 || d == LLMQ_DTYPE_U2;
    const int32_t half = narrow ? 1 << (s->bits - 1) : 0;
    const int32_t qmin = is_unsigned ? 0
                                     : -half + (sym == LLMQ_SYMMETRY_SYMMETRIC_RESTRICTED ? 1 : 0);
    const int32_t qmax = is_unsigned ? 2 * half - 1 : half - 1;
    /* unset granularity: weights per output channel, dynamic activations per token, static
       (calibrated) activations per tensor */
    const int gran = s->granularity >= 0 ? s->granularity
                     : !activation       ? LLMQ_GRANULARITY_PER_CHANNEL
                     : s->mode == LLMQ_ACTIVATION_STATIC ? LLMQ_GRANULARITY_PER_TENSOR
                                                         : LLMQ_GRANULARITY_PER_TOKEN;
    if (gran == LLMQ_GRANULARITY_PER_GROUP && s->group_size < 1)
        return fail_at(pc, s->mark, path, "granularity per_group needs group_size");
    llmq_scheme *sc = NULL;
    llmq_status st = llmq_scheme_create(pc->ctx, d, &sc);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_symmetry(sc, (llmq_symmetry)sym);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(sc, (llmq_granularity)gran);
    if (st == LLMQ_OK && s->axis_set)
        st = llmq_scheme_set_axis(sc, s->axis);
    if (st == LLMQ_OK && s->group_size)
        st = llmq_scheme_set_group_size(sc, s->group_size);
    if (st == LLMQ_OK && s->rounding >= 0)
        st = llmq_scheme_set_rounding(sc, (llmq_rounding)s->rounding);
    if (st == LLMQ_OK && s->seed_set)
        st = llmq_scheme_set_seed(sc, s->seed);
    if (st == LLMQ_OK && s->numerics >= 0)
        st = llmq_scheme_set_numerics(sc, (llmq_numerics)s->numerics);
    if (st == LLMQ_OK && narrow)
        st = llmq_scheme_set_range(sc, qmin, qmax);
    if (st != LLMQ_OK) {
        llmq_scheme_destroy(sc);
        return st == LLMQ_ERR_OUT_OF_MEMORY
                   ? st
                   : fail_at(pc, s->mark, path, "%s", llmq_context_last_error(pc->ctx));
    }
    if (mode != NULL)
        *mode = s->mode >= 0 ? (llmq_activation_mode)s->mode : LLMQ_ACTIVATION_DYNAMIC;
    *out = sc;
    return LLMQ_OK;
}

/* The rule's calibration over the defaults': its observer and settings win; naming another
 * observer drops the defaults' settings, which belong to theirs. */
static calib_spec merge_calib(const calib_spec *d, const calib_spec *r)
{
    calib_spec m = *d;
    if (r->observer >= 0 && r->observer != d->observer) {
        memset(&m, 0, sizeof m);
        m.observer = r->observer;
    }
    for (int i = 0; i < N_CALIB_PARAMS; i++)
        if (r->set & (1u << i)) {
            m.params[i] = r->params[i];
            m.set |= 1u << i;
        }
    if (m.observer < 0)
        m.observer = LLMQ_OBSERVER_MINMAX;
    return m;
}

/* Static activations need a scheme a quantizer can calibrate, and settings that apply to the
 * observer and lie in its bounds. */
static llmq_status check_static(const parse_ctx *pc, const llmq_scheme *a, llmq_activation_mode mode,
                                const calib_spec *c, yaml_mark_t mark, const char *path)
{
    if (a == NULL || mode != LLMQ_ACTIVATION_STATIC)
        return LLMQ_OK;
    if (llmq_scheme_granularity(a) == LLMQ_GRANULARITY_PER_TOKEN)
        return fail_at(pc, mark, path, "mode static: per_token parameters only exist at run "
                       "time; use per_tensor, per_channel or per_group");
    for (int i = 0; i < N_CALIB_PARAMS; i++) {
        double lo, hi;
        if (!(c->set & (1u << i)))
            continue;
        if (llmq_observer_param_bounds((llmq_observer)c->observer, (llmq_observer_param)i, &lo,
                                       &hi) != LLMQ_OK)
            return fail_at(pc, mark, path, "calibration.%s: does not apply to observer %s",
                           calib_param_names[i], llmq_observer_name((llmq_observer)c->observer));
        if (c->params[i] < lo || c->params[i] > hi)
            return fail_at(pc, mark, path, "calibration.%s: %g: must be in [%g, %g]",
                           calib_param_names[i], c->params[i], lo, hi);
    }
    return LLMQ_OK;
}

/* A fold template: text with {i} (1..SQ_MAX_COMPONENT) naming components of the tensor name. */
static llmq_status check_fold(const parse_ctx *pc, const yaml_node_t *v, const char *path,
                              const char *t)
{
    if (t[0] == '\0')
        return fail_at(pc, v->start_mark, path, "empty: write `fold: none` for no fold target");
    for (const char *c = t; *c != '\0'; c++) {
        if (*c == '}')
            return fail_at(pc, v->start_mark, path, "%s: `}` without `{`", t);
        if (*c != '{')
            continue;
        char *end;
        const long i = strtol(c + 1, &end, 10);
        if (end == c + 1 || *end != '}' || c[1] == '+' || c[1] == '-' || i < 1 ||
            i > SQ_MAX_COMPONENT)
            return fail_at(pc, v->start_mark, path,
                           "%s: `{` must open {i}, a name component i in 1..%d", t,
                           SQ_MAX_COMPONENT);
        c = end;
    }
    return LLMQ_OK;
}

static llmq_status sq_field(const parse_ctx *pc, void *target, const char *key,
                            const yaml_node_t *v, const char *path)
{
    sq_spec *q = target;
    const char *s;
    if (strcmp(key, "alpha") == 0) {
        LLMQ_TRY(want_scalar(pc, v, path, &s));
        if (strcmp(s, "search") == 0) {
            q->search = true;
            return LLMQ_OK;
        }
        double a;
        LLMQ_TRY(get_number(pc, v, path, &a));
        if (a < 0.0 || a > 1.0)
            return fail_at(pc, v->start_mark, path, "%s: must be in [0, 1] or search", s);
        q->alpha = (float)a;
        q->alpha_set = true;
        return LLMQ_OK;
    }
    if (strcmp(key, "grid") == 0) {
        long long g;
        LLMQ_TRY(get_int(pc, v, path, 1, SQ_MAX_GRID, &g));
        q->grid = (int32_t)g;
        return LLMQ_OK;
    }
    /* fold */
    LLMQ_TRY(want_scalar(pc, v, path, &s));
    q->fold_set = true;
    if (strcmp(s, "none") == 0)
        return LLMQ_OK;
    LLMQ_TRY(check_fold(pc, v, path, s));
    q->fold = llmq_mem_alloc(pc->ctx, strlen(s) + 1);
    if (q->fold == NULL)
        return llmq_fail_oom(pc->ctx, pc->fn, "fold", strlen(s) + 1);
    strcpy(q->fold, s);
    return LLMQ_OK;
}

static llmq_status parse_sq(const parse_ctx *pc, const yaml_node_t *n, const char *path,
                            sq_spec *q)
{
    static const char *const keys[] = {"alpha", "grid", "fold"};
    q->present = true;
    if (scalar(n) != NULL && strcmp(scalar(n), "none") == 0) {
        q->none = true;
        return LLMQ_OK;
    }
    return each_field(pc, n, path, keys, COUNT(keys), sq_field, q);
}

static llmq_status defaults_field(const parse_ctx *pc, void *target, const char *key,
                                  const yaml_node_t *v, const char *path)
{
    llmq_recipe *r = target;
    if (strcmp(key, "smoothquant") == 0)
        return parse_sq(pc, v, path, &r->sq);
    if (strcmp(key, "weight") == 0)
        return parse_spec(pc, v, path, false, &r->weight);
    if (strcmp(key, "activation") == 0)
        return parse_spec(pc, v, path, true, &r->activation);
    return parse_calib(pc, v, path, &r->calib);
}

typedef struct rule_target {
    llmq_recipe *r;
    rule *ru;
} rule_target;

static llmq_status add_pattern(const parse_ctx *pc, rule *ru, const yaml_node_t *n,
                               const char *path)
{
    const char *s;
    LLMQ_TRY(want_scalar(pc, n, path, &s));
    if (s[0] == '\0')
        return fail_at(pc, n->start_mark, path, "an empty pattern matches nothing");
    char **p = llmq_mem_alloc(pc->ctx, (size_t)(ru->n_patterns + 1) * sizeof *p);
    char *copy = llmq_mem_alloc(pc->ctx, strlen(s) + 1);
    if (p == NULL || copy == NULL) {
        llmq_mem_free(pc->ctx, p);
        llmq_mem_free(pc->ctx, copy);
        return llmq_fail_oom(pc->ctx, pc->fn, "pattern", strlen(s) + 1);
    }
    strcpy(copy, s);
    if (ru->n_patterns)
        memcpy(p, ru->patterns, (size_t)ru->n_patterns * sizeof *p);
    p[ru->n_patterns++] = copy;
    llmq_mem_free(pc->ctx, ru->patterns);
    ru->patterns = p;
    return LLMQ_OK;
}

static llmq_status rule_field(const parse_ctx *pc, void *target, const char *key,
                              const yaml_node_t *v, const char *path)
{
    rule *ru = ((rule_target *)target)->ru;
    if (strcmp(key, "match") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return add_pattern(pc, ru, v, path);
        if (v->data.sequence.items.start == v->data.sequence.items.top)
            return fail_at(pc, v->start_mark, path, "an empty list matches nothing");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            char sub[288];
            snprintf(sub, sizeof sub, "%s[%d]", path, (int)(it - v->data.sequence.items.start));
            LLMQ_TRY(add_pattern(pc, ru, node(pc, *it), sub));
        }
        return LLMQ_OK;
    }
    if (strcmp(key, "skip") == 0)
        return get_bool(pc, v, path, &ru->skip);
    if (strcmp(key, "weight") == 0)
        return parse_spec(pc, v, path, false, &ru->weight);
    if (strcmp(key, "activation") == 0)
        return parse_spec(pc, v, path, true, &ru->activation);
    if (strcmp(key, "smoothquant") == 0)
        return parse_sq(pc, v, path, &ru->sq);
    return parse_calib(pc, v, path, &ru->calib);
}

static llmq_status parse_rules(const parse_ctx *pc, llmq_recipe *r, const yaml_node_t *n)
{
    static const char *const keys[] = {"match",       "weight", "activation",
                                       "calibration", "skip",   "smoothquant"};
    if (n->type != YAML_SEQUENCE_NODE)
        return fail_at(pc, n->start_mark, "rules", "must be a list");
    const int32_t count = (int32_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    r->rules = llmq_mem_calloc(pc->ctx, (size_t)(count ? count : 1) * sizeof *r->rules);
    if (r->rules == NULL)
        return llmq_fail_oom(pc->ctx, pc->fn, "rules", (size_t)count * sizeof *r->rules);
    for (int32_t i = 0; i < count; i++) {
        rule *ru = &r->rules[i];
        spec_init(&ru->weight);
        spec_init(&ru->activation);
        ru->calib.observer = -1;
        r->n_rules = i + 1;
        const yaml_node_t *item = node(pc, n->data.sequence.items.start[i]);
        char path[64];
        snprintf(path, sizeof path, "rules[%d]", (int)i);
        rule_target t = {r, ru};
        LLMQ_TRY(each_field(pc, item, path, keys, COUNT(keys), rule_field, &t));
        if (ru->n_patterns == 0)
            return fail_at(pc, item->start_mark, path, "needs match");
        if (ru->skip && (ru->weight.present || ru->activation.present || ru->sq.present))
            return fail_at(pc, item->start_mark, path,
                           "skip: true keeps the tensor as it is; drop weight, activation and "
                           "smoothquant");
        char sub[96];
        const spec w = merge(&r->weight, &ru->weight), a = merge(&r->activation, &ru->activation);
        snprintf(sub, sizeof sub, "%s.weight", path);
        if (!ru->skip)
            LLMQ_TRY(build(pc, &w, sub, false, &ru->w, NULL));
        snprintf(sub, sizeof sub, "%s.activation", path);
        if (!ru->skip)
            LLMQ_TRY(build(pc, &a, sub, true, &ru->a, &ru->mode));
        ru->merged = merge_calib(&r->calib, &ru->calib);
        LLMQ_TRY(check_static(pc, ru->a, ru->mode, &ru->merged, item->start_mark, path));
    }
    return LLMQ_OK;
}

static llmq_status root_field(const parse_ctx *pc, void *target, const char *key,
                              const yaml_node_t *v, const char *path)
{
    static const char *const keys[] = {"weight", "activation", "calibration", "smoothquant"};
    llmq_recipe *r = target;
    if (strcmp(key, "version") == 0) {
        long long ver;
        LLMQ_TRY(get_int(pc, v, path, LLONG_MIN, LLONG_MAX, &ver));
        if (ver != RECIPE_VERSION)
            return fail_at(pc, v->start_mark, path, "%lld: unsupported (this llmq reads version %d)",
                           ver, RECIPE_VERSION);
        return LLMQ_OK;
    }
    if (strcmp(key, "defaults") == 0)
        return each_field(pc, v, path, keys, COUNT(keys), defaults_field, r);
    return LLMQ_OK; /* rules: parsed after the defaults, wherever they appear */
}

void llmq_recipe_destroy(llmq_recipe *r)
{
    if (r == NULL)
        return;
    llmq_context *ctx = r->ctx;
    for (int32_t i = 0; i < r->n_rules; i++) {
        for (int32_t k = 0; k < r->rules[i].n_patterns; k++)
            llmq_mem_free(ctx, r->rules[i].patterns[k]);
        llmq_mem_free(ctx, r->rules[i].patterns);
        llmq_mem_free(ctx, r->rules[i].sq.fold);
        llmq_scheme_destroy(r->rules[i].w);
        llmq_scheme_destroy(r->rules[i].a);
    }
    llmq_mem_free(ctx, r->rules);
    llmq_mem_free(ctx, r->sq.fold);
    llmq_scheme_destroy(r->w);
    llmq_scheme_destroy(r->a);
    llmq_mem_free(ctx, r);
}

static llmq_status parse_document(const parse_ctx *pc, llmq_recipe *r)
{
    static const char *const keys[] = {"version", "defaults", "rules"};
    yaml_node_t *root = yaml_document_get_root_node(pc->doc);
    const yaml_mark_t start = {0, 0, 0};
    if (root == NULL)
        return fail_at(pc, start, "version", "the recipe is empty");
    LLMQ_TRY(each_field(pc, root, "", keys, COUNT(keys), root_field, r));
    const yaml_node_t *version = NULL, *rules = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const char *k = scalar(node(pc, p->key));
        if (strcmp(k, "version") == 0)
            version = node(pc, p->value);
        else if (strcmp(k, "rules") == 0)
            rules = node(pc, p->value);
    }
    if (version == NULL)
        return fail_at(pc, root->start_mark, "version", "missing (write version: %d)",
                       RECIPE_VERSION);
    LLMQ_TRY(build(pc, &r->weight, "defaults.weight", false, &r->w, NULL));
    LLMQ_TRY(build(pc, &r->activation, "defaults.activation", true, &r->a, &r->mode));
    const calib_spec none = {.observer = -1};
    r->merged = merge_calib(&r->calib, &none);
    LLMQ_TRY(check_static(pc, r->a, r->mode, &r->merged, r->activation.mark, "defaults.activation"));
    return rules != NULL ? parse_rules(pc, r, rules) : LLMQ_OK;
}

static llmq_status parse_text(llmq_context *ctx, const char *fn, const char *text, size_t size,
                              const char *source, llmq_recipe **out)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return llmq_fail_oom(ctx, fn, "YAML parser", sizeof parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), size);
    if (!yaml_parser_load(&parser, &doc)) {
        const parse_ctx pc = {ctx, fn, source, NULL};
        const llmq_status st = fail_at(&pc, parser.problem_mark, "yaml", "%s%s%s",
                                       parser.problem ? parser.problem : "syntax error",
                                       parser.context ? " " : "",
                                       parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return st;
    }
    const parse_ctx pc = {ctx, fn, source, &doc};
    llmq_recipe *r = llmq_mem_calloc(ctx, sizeof *r);
    llmq_status st = r != NULL ? LLMQ_OK : llmq_fail_oom(ctx, fn, "recipe", sizeof *r);
    if (st == LLMQ_OK) {
        r->ctx = ctx;
        spec_init(&r->weight);
        spec_init(&r->activation);
        r->calib.observer = -1;
        st = parse_document(&pc, r);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (st != LLMQ_OK) {
        llmq_recipe_destroy(r);
        return st;
    }
    *out = r;
    return LLMQ_OK;
}

llmq_status llmq_recipe_parse(llmq_context *ctx, const char *text, size_t size,
                              const char *source, llmq_recipe **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a recipe pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, text != NULL || size == 0, "text=NULL: must point to %zu bytes", size);
    return parse_text(ctx, __func__, text, size, source != NULL ? source : "<recipe>", out);
}

llmq_status llmq_recipe_load(llmq_context *ctx, const char *path, llmq_recipe **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a recipe pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, path != NULL, "path=NULL: must name a file");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: %s", path, strerror(errno));
    char *buf = llmq_mem_alloc(ctx, MAX_RECIPE_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return llmq_fail_oom(ctx, __func__, "recipe text", MAX_RECIPE_BYTES + 1);
    }
    const size_t n = fread(buf, 1, MAX_RECIPE_BYTES + 1, f);
    const int err = ferror(f);
    fclose(f);
    llmq_status st;
    if (err)
        st = llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: read error", path);
    else if (n > MAX_RECIPE_BYTES)
        st = llmq_fail(ctx, LLMQ_ERR_PARSE, __func__, "path=%s: larger than 16 MB", path);
    else
        st = parse_text(ctx, __func__, buf, n, path, out);
    llmq_mem_free(ctx, buf);
    return st;
}

int32_t llmq_recipe_rule_count(const llmq_recipe *r)
{
    return r != NULL ? r->n_rules : 0;
}

llmq_status llmq_recipe_choice_defaults(llmq_recipe_choice *choice, size_t size)
{
    if (choice == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (size < sizeof(llmq_recipe_choice) || size > 4096)
        return LLMQ_ERR_ABI;
    memset(choice, 0, size);
    choice->size = size;
    choice->rule = -1;
    return LLMQ_OK;
}

void llmq_recipe_choice_clear(llmq_recipe_choice *choice)
{
    if (choice == NULL)
        return;
    llmq_scheme_destroy(choice->weight);
    llmq_scheme_destroy(choice->activation);
    const size_t size = choice->size;
    memset(choice, 0, sizeof *choice);
    choice->size = size;
    choice->rule = -1;
}

/* The first rule with a pattern matching name, or NULL; *index gets its index or -1. */
static const rule *match(const llmq_recipe *r, const char *name, int32_t *index)
{
    *index = -1;
    for (int32_t i = 0; i < r->n_rules; i++)
        for (int32_t k = 0; k < r->rules[i].n_patterns; k++)
            if (fnmatch(r->rules[i].patterns[k], name, 0) == 0) {
                *index = i;
                return &r->rules[i];
            }
    return NULL;
}

/* A caller-owned copy of a scheme. */
static llmq_status clone(llmq_context *ctx, const llmq_scheme *s, llmq_scheme **out)
{
    *out = NULL;
    if (s == NULL)
        return LLMQ_OK;
    LLMQ_TRY(llmq_scheme_create(ctx, s->dtype, out));
    llmq_context *keep = (*out)->ctx;
    **out = *s;
    (*out)->ctx = keep;
    return LLMQ_OK;
}

llmq_status llmq_recipe_resolve(llmq_context *ctx, const llmq_recipe *r, const char *tensor_name,
                                llmq_recipe_choice *choice)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, r != NULL, "r=NULL: must be a recipe");
    LLMQ_REQUIRE(ctx, tensor_name != NULL, "tensor_name=NULL: must be a name");
    LLMQ_REQUIRE(ctx, choice != NULL, "choice=NULL: must point to a llmq_recipe_choice");
    if (llmq_abi_check(choice, choice->size, sizeof *choice,
                       offsetof(llmq_recipe_choice, reserved)) != LLMQ_OK ||
        choice->reserved0_ != 0)
        return llmq_fail(ctx, LLMQ_ERR_ABI, __func__,
                         "choice.size=%zu: initialise it with llmq_recipe_choice_defaults",
                         choice->size);
    LLMQ_REQUIRE(ctx, choice->weight == NULL && choice->activation == NULL,
                 "choice: holds schemes; call llmq_recipe_choice_clear first");
    const rule *hit = match(r, tensor_name, &choice->rule);
    if (hit != NULL && hit->skip) {
        choice->skip = 1;
        return LLMQ_OK;
    }
    const llmq_scheme *w = hit != NULL ? hit->w : r->w, *a = hit != NULL ? hit->a : r->a;
    llmq_status st = clone(ctx, w, &choice->weight);
    if (st == LLMQ_OK)
        st = clone(ctx, a, &choice->activation);
    if (st != LLMQ_OK) {
        llmq_recipe_choice_clear(choice);
        return st;
    }
    choice->activation_mode = hit != NULL ? hit->mode : r->mode;
    return LLMQ_OK;
}

llmq_status llmq_recipe_create_quantizer(llmq_context *ctx, const llmq_recipe *r,
                                         const char *tensor_name, llmq_quantizer **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a quantizer pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, r != NULL, "r=NULL: must be a recipe");
    LLMQ_REQUIRE(ctx, tensor_name != NULL, "tensor_name=NULL: must be a name");
    int32_t index;
    const rule *hit = match(r, tensor_name, &index);
    const llmq_scheme *a = hit != NULL ? hit->a : r->a;
    const llmq_activation_mode mode = hit != NULL ? hit->mode : r->mode;
    const calib_spec *c = hit != NULL ? &hit->merged : &r->merged;
    if ((hit != NULL && hit->skip) || a == NULL || mode != LLMQ_ACTIVATION_STATIC)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "tensor_name=%s: its activations are not static in this recipe",
                         tensor_name);
    llmq_quantizer *q = NULL;
    LLMQ_TRY(llmq_quantizer_create(ctx, a, (llmq_observer)c->observer, &q));
    for (int i = 0; i < N_CALIB_PARAMS; i++) {
        if (!(c->set & (1u << i)))
            continue;
        const llmq_status st = llmq_quantizer_set_param(q, (llmq_observer_param)i, c->params[i]);
        if (st != LLMQ_OK) {
            llmq_quantizer_destroy(q);
            return st;
        }
    }
    *out = q;
    return LLMQ_OK;
}

/* The rule's smoothquant section over the defaults', field by field; none wins. */
static sq_spec merge_sq(const sq_spec *d, const sq_spec *r)
{
    if (!r->present)
        return *d;
    if (r->none || !d->present || d->none)
        return *r;
    sq_spec m = *d;
    if (r->alpha_set) { /* a number replaces an inherited search */
        m.alpha_set = true;
        m.alpha = r->alpha;
        m.search = false;
    }
    m.search = m.search || r->search; /* the defaults' number stays the fallback */
    if (r->grid)
        m.grid = r->grid;
    if (r->fold_set) {
        m.fold_set = true;
        m.fold = r->fold;
    }
    return m;
}

/* The llama convention of llmq_recipe_resolve_smoothquant() (recipe.h). */
static void default_fold(const char *name, char *out, size_t size)
{
    static const char *const map[][2] = {
        {"attention.wq.weight", "attention_norm.weight"},
        {"attention.wk.weight", "attention_norm.weight"},
        {"attention.wv.weight", "attention_norm.weight"},
        {"feed_forward.w1.weight", "ffn_norm.weight"},
        {"feed_forward.w3.weight", "ffn_norm.weight"},
    };
    out[0] = '\0';
    const size_t len = strlen(name);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const size_t sl = strlen(map[i][0]);
        if (len < sl || strcmp(name + len - sl, map[i][0]) != 0 ||
            (len > sl && name[len - sl - 1] != '.'))
            continue;
        snprintf(out, size, "%.*s%s", (int)(len - sl), name, map[i][1]);
        return;
    }
}

/* Expand {i} of a fold template with the components of name. */
static llmq_status expand_fold(llmq_context *ctx, const char *fn, const char *t, const char *name,
                               char *out, size_t size)
{
    size_t o = 0;
    for (const char *c = t; *c != '\0'; c++) {
        const char *piece = c;
        size_t n = 1;
        if (*c == '{') { /* validated when the recipe loaded */
            char *end;
            const long want = strtol(c + 1, &end, 10);
            c = end;
            piece = name;
            for (long i = 1; i < want && piece != NULL; i++) {
                piece = strchr(piece, '.');
                piece = piece != NULL ? piece + 1 : NULL;
            }
            if (piece == NULL)
                return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                                 "tensor_name=%s: has no component %ld for fold %s", name, want,
                                 t);
            const char *dot = strchr(piece, '.');
            n = dot != NULL ? (size_t)(dot - piece) : strlen(piece);
        }
        if (o + n >= size)
            return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                             "tensor_name=%s: fold %s expands past %zu bytes", name, t, size - 1);
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return LLMQ_OK;
}

llmq_status llmq_recipe_resolve_smoothquant(llmq_context *ctx, const llmq_recipe *r,
                                            const char *tensor_name, llmq_recipe_smoothquant *out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, r != NULL, "r=NULL: must be a recipe");
    LLMQ_REQUIRE(ctx, tensor_name != NULL, "tensor_name=NULL: must be a name");
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a llmq_recipe_smoothquant");
    const size_t size = out->size;
    if (size < sizeof *out || size > 4096)
        return llmq_fail(ctx, LLMQ_ERR_ABI, __func__,
                         "out.size=%zu: set it to sizeof(llmq_recipe_smoothquant)", size);
    llmq_recipe_smoothquant res;
    memset(&res, 0, sizeof res);
    res.size = size;
    const rule *hit = match(r, tensor_name, &res.rule);
    const sq_spec none = {0};
    const sq_spec m = merge_sq(&r->sq, hit != NULL ? &hit->sq : &none);
    res.alpha = m.alpha_set ? m.alpha : SQ_ALPHA;
    res.search = m.search;
    res.grid = m.grid ? m.grid : SQ_GRID;
    if (m.present && !m.none && (hit == NULL || !hit->skip)) {
        if (!m.fold_set)
            default_fold(tensor_name, res.fold, sizeof res.fold);
        else if (m.fold != NULL)
            LLMQ_TRY(expand_fold(ctx, __func__, m.fold, tensor_name, res.fold, sizeof res.fold));
        res.enabled = res.fold[0] != '\0';
    }
    memset(out, 0, size);
    memcpy(out, &res, sizeof res);
    return LLMQ_OK;
}
