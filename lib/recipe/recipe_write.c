/* recipe_write.c - a solved mixed-precision plan written as a recipe (docs/recipes.md) with
 * libyaml's emitter: one rule per tensor, matched by its exact name. The text is parsed back
 * and checked before it goes to a temporary file renamed over the target.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "algo/plan_impl.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "llmq/plan.h"
#include "llmq/recipe.h"
#include "quant/scheme_impl.h"
#include "recipe/yaml_emit.h"

static const char *const symmetry_names[] = {"symmetric", "symmetric_restricted", "asymmetric"};
static const char *const granularity_names[] = {"per_tensor", "per_channel", "per_group",
                                                "per_token"};
static const char *const rounding_names[] = {"half_even", "half_away", "stochastic"};
static const char *const numerics_names[] = {"pytorch", "onnx"};

/* The emitted text, grown through the context's allocator. */
typedef struct out_buf {
    llmq_context *ctx;
    char *data;
    size_t size, cap;
} out_buf;

static int buf_write(void *user, unsigned char *bytes, size_t n)
{
    out_buf *b = user;
    if (b->size + n > b->cap) {
        const size_t cap = 2 * (b->size + n) + 256;
        char *d = llmq_mem_alloc(b->ctx, cap);
        if (d == NULL)
            return 0;
        if (b->size)
            memcpy(d, b->data, b->size);
        llmq_mem_free(b->ctx, b->data);
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
    return 1;
}

/* Emit an event its initializer made (made != 0). */
static void emit(llmq_yaml_writer *w, yaml_event_t *ev, int made)
{
    if (made)
        llmq_yaml_emit(w, ev);
    else
        w->ok = false;
}

/* A weight scheme in the recipe's keys; `bits` states a narrowed grid. */
static void emit_scheme(llmq_yaml_writer *w, const llmq_scheme *s)
{
    llmq_yaml_collection(w, true, true, true);
    llmq_yaml_pair(w, "dtype", llmq_dtype_name(s->dtype));
    const int32_t bits = llmq_plan_narrowed_bits(s);
    if (bits > 0)
        llmq_yaml_int_pair(w, "bits", bits);
    llmq_yaml_pair(w, "symmetry", symmetry_names[s->symmetry]);
    llmq_yaml_pair(w, "granularity", granularity_names[s->granularity]);
    if (s->granularity == LLMQ_GRANULARITY_PER_CHANNEL || s->axis != 0)
        llmq_yaml_int_pair(w, "axis", s->axis);
    if (s->group_size != 0)
        llmq_yaml_int_pair(w, "group_size", (long long)s->group_size);
    llmq_yaml_pair(w, "rounding", rounding_names[s->rounding]);
    if (s->seed != 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->seed);
        llmq_yaml_pair(w, "seed", buf);
    }
    llmq_yaml_pair(w, "numerics", numerics_names[s->numerics]);
    llmq_yaml_collection(w, false, true, true);
}

/* The exact name as an fnmatch pattern: glob characters escaped. */
static char *escape_name(llmq_context *ctx, const char *name)
{
    char *e = llmq_mem_alloc(ctx, 2 * strlen(name) + 1), *o = e;
    if (e == NULL)
        return NULL;
    for (const char *c = name; *c; c++) {
        if (strchr("*?[]\\", *c) != NULL)
            *o++ = '\\';
        *o++ = *c;
    }
    *o = '\0';
    return e;
}

static void emit_recipe(llmq_yaml_writer *w, llmq_context *ctx, const llmq_plan *p)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    llmq_yaml_collection(w, true, true, false);
    llmq_yaml_int_pair(w, "version", 1);
    llmq_yaml_scalar(w, "rules", YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_collection(w, true, false, false);
    for (int64_t t = 0; t < llmq_plan_tensor_count(p) && w->ok; t++) {
        char *pattern = escape_name(ctx, llmq_plan_tensor_name(p, t));
        w->ok = pattern != NULL;
        llmq_yaml_collection(w, true, true, false);
        llmq_yaml_scalar(w, "match", YAML_PLAIN_SCALAR_STYLE);
        if (w->ok)
            llmq_yaml_scalar(w, pattern, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
        llmq_yaml_scalar(w, "weight", YAML_PLAIN_SCALAR_STYLE);
        emit_scheme(w, llmq_plan_candidate_scheme(p, llmq_plan_choice(p, t)));
        llmq_yaml_collection(w, false, true, false);
        llmq_mem_free(ctx, pattern);
    }
    llmq_yaml_collection(w, false, false, false);
    llmq_yaml_collection(w, false, true, false);
    emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
    emit(w, &ev, yaml_stream_end_event_initialize(&ev));
    if (w->ok && !yaml_emitter_flush(&w->em))
        w->ok = false;
}

static bool same_scheme(const llmq_scheme *a, const llmq_scheme *b)
{
    return a != NULL && b != NULL && a->dtype == b->dtype && a->symmetry == b->symmetry &&
           a->granularity == b->granularity && a->axis == b->axis &&
           a->group_size == b->group_size && a->rounding == b->rounding && a->seed == b->seed &&
           a->numerics == b->numerics && a->range_min == b->range_min &&
           a->range_max == b->range_max;
}

/* Parse the text back and resolve every tensor: the recipe must say what the plan chose. */
static llmq_status check_text(llmq_context *ctx, const char *fn, const llmq_plan *p,
                              const out_buf *b, const char *path)
{
    llmq_recipe *r = NULL;
    llmq_status st = llmq_recipe_parse(ctx, b->data, b->size, path, &r);
    for (int64_t t = 0; st == LLMQ_OK && t < llmq_plan_tensor_count(p); t++) {
        llmq_recipe_choice c;
        st = llmq_recipe_choice_defaults(&c, sizeof c);
        if (st == LLMQ_OK)
            st = llmq_recipe_resolve(ctx, r, llmq_plan_tensor_name(p, t), &c);
        if (st == LLMQ_OK &&
            (c.skip || c.activation != NULL || c.rule != (int32_t)t ||
             !same_scheme(c.weight, llmq_plan_candidate_scheme(p, llmq_plan_choice(p, t)))))
            st = llmq_fail(ctx, LLMQ_ERR_INTERNAL, fn,
                           "tensor %s: the written recipe does not resolve to its planned "
                           "scheme %s", llmq_plan_tensor_name(p, t),
                           llmq_plan_candidate_name(p, llmq_plan_choice(p, t)));
        llmq_recipe_choice_clear(&c);
    }
    llmq_recipe_destroy(r);
    if (st == LLMQ_ERR_PARSE) /* our own text failing to parse is our bug */
        return llmq_fail(ctx, LLMQ_ERR_INTERNAL, fn, "the written recipe does not parse: %s",
                         llmq_context_last_error(ctx));
    return st;
}

/* Write the bytes to a temporary file beside path, then rename it over path. */
static llmq_status write_file(llmq_context *ctx, const char *fn, const char *path,
                              const out_buf *b)
{
    const size_t len = strlen(path) + 8;
    char *tmp = llmq_mem_alloc(ctx, len);
    if (tmp == NULL)
        return llmq_fail_oom(ctx, fn, "path", len);
    snprintf(tmp, len, "%s.XXXXXX", path);
    const int fd = mkstemp(tmp);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        (void)fchmod(fd, 0644); /* mkstemp makes 0600; a recipe is no secret */
        for (size_t done = 0; err == 0 && done < b->size;) {
            const ssize_t n = write(fd, b->data + done, b->size - done);
            if (n < 0 && errno != EINTR)
                err = errno;
            done += n > 0 ? (size_t)n : 0;
        }
        if (err == 0 && fsync(fd) != 0)
            err = errno;
        if (close(fd) != 0 && err == 0)
            err = errno;
        if (err == 0 && rename(tmp, path) != 0)
            err = errno;
        if (err != 0)
            unlink(tmp);
    }
    llmq_mem_free(ctx, tmp);
    if (err != 0)
        return llmq_fail(ctx, LLMQ_ERR_IO, fn, "path=%s: cannot write: %s", path, strerror(err));
    return LLMQ_OK;
}

llmq_status llmq_plan_write_recipe(llmq_context *ctx, const llmq_plan *p, const char *path)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, p != NULL, "p=NULL: must be a plan");
    LLMQ_REQUIRE(ctx, path != NULL && path[0] != '\0', "path=%s: must name a file",
                 path == NULL ? "NULL" : "\"\"");
    if (llmq_plan_result(p, NULL, NULL, NULL) != LLMQ_OK)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "the plan is not solved: call "
                                                        "llmq_plan_solve first");
    out_buf b = {.ctx = ctx};
    llmq_yaml_writer w = {.ok = true};
    if (!yaml_emitter_initialize(&w.em))
        return llmq_fail_oom(ctx, __func__, "YAML emitter", sizeof w.em);
    yaml_emitter_set_output(&w.em, buf_write, &b);
    yaml_emitter_set_unicode(&w.em, 1);
    yaml_emitter_set_indent(&w.em, 2);
    yaml_emitter_set_width(&w.em, 200);
    yaml_emitter_set_break(&w.em, YAML_LN_BREAK);
    emit_recipe(&w, ctx, p);
    const bool misuse = w.em.error == YAML_EMITTER_ERROR;
    yaml_emitter_delete(&w.em);
    llmq_status st = w.ok ? check_text(ctx, __func__, p, &b, path)
                     : misuse ? llmq_fail(ctx, LLMQ_ERR_INTERNAL, __func__, "YAML emitter refused "
                                          "an event")
                              : llmq_fail_oom(ctx, __func__, "recipe text", b.size);
    if (st == LLMQ_OK)
        st = write_file(ctx, __func__, path, &b);
    llmq_mem_free(ctx, b.data);
    return st;
}
