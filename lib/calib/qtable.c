/* qtable.c - tables of quantization parameters in memory: entries in insertion order, each a
 * name, a scheme copy and packed copies of its parameter tensors. (YAML files: lib/recipe/.)
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <string.h>

#include "calib/calib_impl.h"
#include "calib/qtable_impl.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"

llmq_status llmq_qtable_create(llmq_context *ctx, llmq_qtable **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a table pointer");
    *out = NULL;
    llmq_qtable *t = llmq_mem_calloc(ctx, sizeof *t);
    if (t == NULL) return llmq_fail_oom(ctx, __func__, "table", sizeof *t);
    t->ctx = ctx;
    *out = t;
    return LLMQ_OK;
}

static void entry_free(llmq_context *ctx, llmq_qtable_entry *e)
{
    llmq_mem_free(ctx, e->name);
    llmq_tensor_destroy(e->scale);
    llmq_tensor_destroy(e->zero_point);
}

void llmq_qtable_destroy(llmq_qtable *table)
{
    if (table == NULL) return;
    for (int64_t i = 0; i < table->count; i++)
        entry_free(table->ctx, &table->entries[i]);
    llmq_mem_free(table->ctx, table->entries);
    llmq_mem_free(table->ctx, table);
}

int64_t llmq_qtable_find(const llmq_qtable *table, const char *name)
{
    for (int64_t i = 0; i < table->count; i++)
        if (strcmp(table->entries[i].name, name) == 0) return i;
    return -1;
}

const char *llmq_qtable_shape_problem(llmq_granularity g, int32_t ndim, const int64_t *shape)
{
    switch (g) {
    case LLMQ_GRANULARITY_PER_TENSOR:
        return ndim == 1 && shape[0] == 1 ? NULL : "per_tensor parameters are shaped [1]";
    case LLMQ_GRANULARITY_PER_GROUP:
        return ndim == 2 ? NULL : "per_group parameters are shaped [rows, groups]";
    default:
        return ndim == 1 ? NULL : "per_channel and per_token parameters are shaped [n]";
    }
}

const char *llmq_qtable_scale_problem(float scale)
{
    /* quantizing needs 1 / scale finite: the same rule as llmq_quantize */
    return scale >= FLT_MIN && scale <= FLT_MAX ? NULL : "must be a positive normal float";
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const unsigned char *s)
{
    while (*s) {
        const unsigned c = *s;
        int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xc2) || c > 0xf4) return false;
        unsigned cp = n == 0 ? c : c & (0x3fu >> n);
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i] & 0x3fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        s += n + 1;
    }
    return true;
}

/* LLMQ_REQUIRE on behalf of the public entry point fn. */
#define REQUIRE_IN(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, __VA_ARGS__);                 \
    } while (0)

static llmq_status check_entry(llmq_context *ctx, const char *fn, const char *name,
                               const llmq_scheme *scheme, const llmq_tensor *scale,
                               const llmq_tensor *zp)
{
    REQUIRE_IN(name != NULL, "name=NULL: must be a string");
    const size_t len = strlen(name);
    REQUIRE_IN(len > 0 && len <= LLMQ_QTABLE_NAME_MAX, "name=\"%.64s\": must be 1 to %d bytes long",
               name, LLMQ_QTABLE_NAME_MAX);
    REQUIRE_IN(utf8_valid((const unsigned char *)name), "name=\"%.64s\": must be valid UTF-8",
               name);
    REQUIRE_IN(scheme != NULL, "scheme=NULL: must be a scheme");
    REQUIRE_IN(scale != NULL && zp != NULL, "%s=NULL: must be a tensor",
               scale == NULL ? "scale" : "zero_point");
    REQUIRE_IN(scale->dtype == LLMQ_DTYPE_F32, "scale=%s tensor: must be f32",
               llmq_dtype_name(scale->dtype));
    REQUIRE_IN(zp->dtype == LLMQ_DTYPE_S32, "zero_point=%s tensor: must be s32",
               llmq_dtype_name(zp->dtype));
    char a[96], b[96];
    REQUIRE_IN(llmq_tensor_same_shape(scale, zp), "zero_point=%s: shape differs from scale=%s",
               llmq_shape_str(zp, a, sizeof a), llmq_shape_str(scale, b, sizeof b));
    const char *why = llmq_qtable_shape_problem(scheme->granularity, scale->ndim, scale->shape);
    REQUIRE_IN(why == NULL, "scale=%s: %s", llmq_shape_str(scale, a, sizeof a), why);
    const llmq_qgrid g = llmq_scheme_grid(scheme);
    for (int64_t r = 0; r < scale->rows; r++) {
        const float *s = (const float *)((const char *)scale->data + (size_t)r * scale->row_stride);
        const int32_t *z = (const int32_t *)((const char *)zp->data + (size_t)r * zp->row_stride);
        for (int64_t c = 0; c < scale->cols; c++) {
            const long long i = (long long)(r * scale->cols + c);
            REQUIRE_IN(llmq_qtable_scale_problem(s[c]) == NULL, "scale[%lld]=%g: %s", i,
                       (double)s[c], llmq_qtable_scale_problem(s[c]));
            REQUIRE_IN(z[c] >= g.qmin && z[c] <= g.qmax,
                       "zero_point[%lld]=%d: outside the %s grid [%d, %d]", i, (int)z[c],
                       llmq_dtype_name(scheme->dtype), (int)g.qmin, (int)g.qmax);
        }
    }
    return LLMQ_OK;
}
#undef REQUIRE_IN

/* A packed copy of a (possibly strided) parameter tensor. */
static llmq_status copy_params(llmq_context *ctx, const llmq_tensor *src, llmq_tensor **out)
{
    LLMQ_TRY(llmq_tensor_create(ctx, src->dtype, src->ndim, src->shape, out));
    for (int64_t r = 0; r < src->rows; r++)
        memcpy((char *)(*out)->data + (size_t)r * (*out)->row_stride,
               (const char *)src->data + (size_t)r * src->row_stride, src->row_bytes);
    return LLMQ_OK;
}

llmq_status llmq_qtable_put(llmq_context *ctx, const char *fn, llmq_qtable *table, const char *name,
                            const llmq_scheme *scheme, const llmq_tensor *scale,
                            const llmq_tensor *zero_point)
{
    LLMQ_TRY(check_entry(ctx, fn, name, scheme, scale, zero_point));
    llmq_context *mem = table->ctx;
    int64_t at = llmq_qtable_find(table, name);
    if (at < 0 && table->count == table->capacity) {
        const int64_t cap = table->capacity ? 2 * table->capacity : 8;
        const size_t bytes = (size_t)cap * sizeof *table->entries;
        llmq_qtable_entry *grown = llmq_mem_alloc(mem, bytes);
        if (grown == NULL) return llmq_fail_oom(ctx, fn, "entries", bytes);
        if (table->count > 0) memcpy(grown, table->entries, (size_t)table->count * sizeof *grown);
        llmq_mem_free(mem, table->entries);
        table->entries = grown;
        table->capacity = cap;
    }
    llmq_qtable_entry e = {0};
    const size_t len = strlen(name) + 1;
    llmq_status st = LLMQ_OK;
    if ((e.name = llmq_mem_alloc(mem, len)) == NULL) st = llmq_fail_oom(mem, fn, "name", len);
    if (st == LLMQ_OK) st = copy_params(mem, scale, &e.scale);
    if (st == LLMQ_OK) st = copy_params(mem, zero_point, &e.zero_point);
    if (st != LLMQ_OK) {
        if (ctx != mem) llmq_fail(ctx, st, fn, "%s", llmq_context_last_error(mem));
        entry_free(mem, &e);
        return st;
    }
    memcpy(e.name, name, len);
    e.scheme = *scheme;
    e.scheme.ctx = mem;
    if (at >= 0) {
        entry_free(mem, &table->entries[at]);
    } else {
        at = table->count++;
    }
    table->entries[at] = e;
    return LLMQ_OK;
}

llmq_status llmq_qtable_set(llmq_context *ctx, llmq_qtable *table, const char *name,
                            const llmq_scheme *scheme, const llmq_tensor *scale,
                            const llmq_tensor *zero_point)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, table != NULL, "table=NULL: must be a table");
    return llmq_qtable_put(ctx, __func__, table, name, scheme, scale, zero_point);
}

/* The entry `name`, or a failure naming it. */
static llmq_status lookup(llmq_context *ctx, const char *fn, const llmq_qtable *table,
                          const char *name, const llmq_qtable_entry **e)
{
    LLMQ_CHECK_CONTEXT(ctx);
    if (table == NULL || name == NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "%s=NULL: must not be NULL",
                         table == NULL ? "table" : "name");
    const int64_t i = llmq_qtable_find(table, name);
    if (i < 0)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "name=\"%.200s\": no such entry", name);
    *e = &table->entries[i];
    return LLMQ_OK;
}

llmq_status llmq_qtable_get(llmq_context *ctx, const llmq_qtable *table, const char *name,
                            const llmq_scheme **scheme, const llmq_tensor **scale,
                            const llmq_tensor **zero_point)
{
    if (scheme != NULL) *scheme = NULL;
    if (scale != NULL) *scale = NULL;
    if (zero_point != NULL) *zero_point = NULL;
    const llmq_qtable_entry *e = NULL;
    LLMQ_TRY(lookup(ctx, __func__, table, name, &e));
    if (scheme != NULL) *scheme = &e->scheme;
    if (scale != NULL) *scale = e->scale;
    if (zero_point != NULL) *zero_point = e->zero_point;
    return LLMQ_OK;
}

llmq_status llmq_qtable_apply(llmq_context *ctx, const llmq_qtable *table, const char *name,
                              llmq_tensor *dst)
{
    const llmq_qtable_entry *e = NULL;
    LLMQ_TRY(lookup(ctx, __func__, table, name, &e));
    LLMQ_REQUIRE(ctx, dst != NULL, "dst=NULL: must be a tensor");
    return llmq_bind_params(ctx, __func__, dst, &e->scheme, e->scale, e->zero_point);
}

int64_t llmq_qtable_count(const llmq_qtable *table)
{
    return table != NULL ? table->count : 0;
}

const char *llmq_qtable_name_at(const llmq_qtable *table, int64_t index)
{
    if (table == NULL || index < 0 || index >= table->count) return NULL;
    return table->entries[index].name;
}
