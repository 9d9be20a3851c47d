/* scheme_json.c - the `llmq.scheme.<name>` metadata of quantized tensors in safetensors files:
 * a JSON object with the scheme's settings and the logical shape, readable by any JSON parser.
 * SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "model/model_impl.h"
#include "quant/scheme_impl.h"

static const char *const symmetry_names[] = {"symmetric", "symmetric_restricted", "asymmetric"};
static const char *const granularity_names[] = {"per_tensor", "per_channel", "per_group",
                                                "per_token"};
static const char *const rounding_names[] = {"half_even", "half_away", "stochastic"};
static const char *const numerics_names[] = {"pytorch", "onnx"};

#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (s != NULL && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

char *llmq_scheme_to_json(llmq_context *ctx, const llmq_scheme *s, int32_t ndim,
                          const int64_t *shape)
{
    json_t *shape_j = json_array();
    for (int32_t i = 0; shape_j != NULL && i < ndim; i++)
        json_array_append_new(shape_j, json_integer(shape[i]));
    json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:i, s:I, s:s, s:s, s:I}", "dtype",
                          llmq_dtype_name(s->dtype), "shape", shape_j, "symmetry",
                          symmetry_names[s->symmetry], "granularity",
                          granularity_names[s->granularity], "axis", (int)s->axis, "group_size",
                          (json_int_t)s->group_size, "rounding", rounding_names[s->rounding],
                          "numerics", numerics_names[s->numerics], "seed",
                          (json_int_t)(s->seed & 0x7fffffffffffffffull));
    if (o != NULL && (s->range_min != 0 || s->range_max != 0)) /* a custom grid (3 bits...) */
        json_object_set_new(o, "qmin", json_integer(s->range_min)),
            json_object_set_new(o, "qmax", json_integer(s->range_max));
    if (o == NULL)
        return NULL;
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return NULL;
    char *copy = llmq_strdup(ctx, text);
    free(text);
    return copy;
}

llmq_status llmq_scheme_from_json(llmq_context *ctx, const char *fn, const char *json,
                                  llmq_scheme **scheme, int32_t *ndim, int64_t *shape)
{
    json_error_t err;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    const char *dtype = NULL, *sym = NULL, *gran = NULL, *rnd = NULL, *num = NULL;
    json_t *shape_j = NULL;
    int axis = 0, qmin = 0, qmax = 0;
    json_int_t group = 0, seed = 0;
    if (o == NULL ||
        json_unpack_ex(o, &err, JSON_STRICT,
                       "{s:s, s:o, s:s, s:s, s:i, s:I, s:s, s:s, s:I, s?i, s?i}", "dtype", &dtype,
                       "shape", &shape_j, "symmetry", &sym, "granularity", &gran, "axis", &axis,
                       "group_size", &group, "rounding", &rnd, "numerics", &num, "seed", &seed,
                       "qmin", &qmin, "qmax", &qmax) != 0) {
        json_decref(o);
        return llmq_fail(ctx, LLMQ_ERR_PARSE, fn, "llmq.scheme=%.200s: %s", json, err.text);
    }
    llmq_dtype d = LLMQ_DTYPE_F32;
    for (int i = LLMQ_DTYPE_S8; i <= LLMQ_DTYPE_U2; i++)
        if (strcmp(dtype, llmq_dtype_name((llmq_dtype)i)) == 0)
            d = (llmq_dtype)i;
    const int si = lookup(symmetry_names, COUNT(symmetry_names), sym);
    const int gi = lookup(granularity_names, COUNT(granularity_names), gran);
    const int ri = lookup(rounding_names, COUNT(rounding_names), rnd);
    const int ni = lookup(numerics_names, COUNT(numerics_names), num);
    const size_t nd = json_is_array(shape_j) ? json_array_size(shape_j) : 0;
    bool ok = d != LLMQ_DTYPE_F32 && si >= 0 && gi >= 0 && ri >= 0 && ni >= 0 && nd >= 1 &&
              nd <= LLMQ_MAX_DIMS && group >= 0;
    for (size_t i = 0; ok && i < nd; i++) {
        json_t *v = json_array_get(shape_j, i);
        ok = json_is_integer(v) && json_integer_value(v) >= 1;
        if (ok)
            shape[i] = json_integer_value(v);
    }
    json_decref(o);
    if (!ok)
        return llmq_fail(ctx, LLMQ_ERR_PARSE, fn,
                         "llmq.scheme=%.200s: unknown dtype, symmetry, granularity, rounding, "
                         "numerics or a bad shape", json);
    llmq_scheme *s = NULL;
    LLMQ_TRY(llmq_scheme_create(ctx, d, &s));
    if ((qmin != 0 || qmax != 0) && llmq_scheme_set_range(s, qmin, qmax) != LLMQ_OK) {
        llmq_scheme_destroy(s);
        return llmq_fail(ctx, LLMQ_ERR_PARSE, fn, "llmq.scheme=%.200s: qmin=%d qmax=%d: %s", json,
                         qmin, qmax, "not a grid inside the dtype");
    }
    s->symmetry = (llmq_symmetry)si;
    s->granularity = (llmq_granularity)gi;
    s->rounding = (llmq_rounding)ri;
    s->numerics = (llmq_numerics)ni;
    s->axis = axis;
    s->group_size = group;
    s->seed = (uint64_t)seed;
    *scheme = s;
    *ndim = (int32_t)nd;
    return LLMQ_OK;
}
