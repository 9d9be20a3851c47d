/* safetensors_read.c - the safetensors header: an 8-byte little-endian length, then a JSON
 * object naming each tensor's dtype, shape and byte range. Everything is validated before any
 * tensor is used. SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "model/model_impl.h"

/* A header larger than this is refused: real headers are kilobytes to a few megabytes. */
#define MAX_HEADER_BYTES (100u * 1024 * 1024)

static uint64_t le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static llmq_status parse_metadata(llmq_model *m, const char *fn, const char *path, json_t *meta)
{
    if (!json_is_object(meta))
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn, "path=%s: __metadata__: must be an object",
                         path);
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v))
            return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                             "path=%s: __metadata__.%s: values must be strings", path, key);
        LLMQ_TRY(llmq_model_add_meta(m, fn, key, json_string_value(v)));
    }
    return LLMQ_OK;
}

/* A non-negative JSON integer. */
static bool get_u64(json_t *j, uint64_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

static llmq_status parse_entry(llmq_model *m, const char *fn, const char *path, const char *name,
                               json_t *v)
{
#define BAD(...) llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn, "path=%s: tensor \"%s\": " __VA_ARGS__)
    if (!json_is_object(v))
        return BAD("must be an object", path, name);
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0)
            return BAD("unknown key \"%s\"", path, name, key);
    }
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offsets = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
        return BAD("needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)", path,
                   name);
    llmq_model_entry e;
    memset(&e, 0, sizeof e);
    e.name = (char *)name;
    const char *dt = json_string_value(dtype);
    const uint64_t elem = llmq_model_file_dtype_size(dt);
    if (elem == 0 || strlen(dt) >= sizeof e.file_dtype)
        return BAD("dtype=%s: unknown dtype", path, name, dt);
    strcpy(e.file_dtype, dt);
    e.known = llmq_model_dtype_from_file(dt, &e.dtype);
    if (json_array_size(shape) > LLMQ_MODEL_MAX_DIMS)
        return BAD("shape: %zu dimensions, at most %d are read", path, name,
                   json_array_size(shape), LLMQ_MODEL_MAX_DIMS);
    e.ndim = (int32_t)json_array_size(shape);
    uint64_t bytes = elem;
    for (int32_t i = 0; i < e.ndim; i++) {
        uint64_t d;
        if (!get_u64(json_array_get(shape, (size_t)i), &d) || d > (uint64_t)INT64_MAX)
            return BAD("shape[%d]: must be a non-negative integer", path, name, (int)i);
        if (d != 0 && bytes > UINT64_MAX / d)
            return BAD("shape: the size overflows 64 bits", path, name);
        bytes *= d;
        e.shape[i] = (int64_t)d;
    }
    if (json_array_size(offsets) != 2 || !get_u64(json_array_get(offsets, 0), &e.begin) ||
        !get_u64(json_array_get(offsets, 1), &e.end))
        return BAD("data_offsets: must be [begin, end], non-negative integers", path, name);
    if (e.begin > e.end || e.end > m->data_size)
        return BAD("data_offsets=[%llu, %llu]: outside the %llu-byte data section", path, name,
                   (unsigned long long)e.begin, (unsigned long long)e.end,
                   (unsigned long long)m->data_size);
    if (e.end - e.begin != bytes)
        return BAD("data_offsets=[%llu, %llu]: %llu bytes, but %s of this shape needs %llu",
                   path, name, (unsigned long long)e.begin, (unsigned long long)e.end,
                   (unsigned long long)(e.end - e.begin), dt, (unsigned long long)bytes);
#undef BAD
    return llmq_model_add_entry(m, fn, &e);
}

static int by_begin(const void *a, const void *b)
{
    const llmq_model_entry *x = *(const llmq_model_entry *const *)a,
                           *y = *(const llmq_model_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* No two tensors may share bytes. */
static llmq_status check_overlaps(llmq_model *m, const char *fn, const char *path)
{
    if (m->count < 2)
        return LLMQ_OK;
    const llmq_model_entry **order = llmq_mem_alloc(m->ctx, (size_t)m->count * sizeof *order);
    if (order == NULL)
        return llmq_fail_oom(m->ctx, fn, "overlap check", (size_t)m->count * sizeof *order);
    for (int64_t i = 0; i < m->count; i++)
        order[i] = &m->entries[i];
    qsort(order, (size_t)m->count, sizeof *order, by_begin);
    llmq_status st = LLMQ_OK;
    for (int64_t i = 1; i < m->count && st == LLMQ_OK; i++)
        if (order[i]->begin < order[i - 1]->end && order[i]->begin != order[i]->end)
            st = llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                           "path=%s: tensor \"%s\": data_offsets overlap those of \"%s\"", path,
                           order[i]->name, order[i - 1]->name);
    llmq_mem_free(m->ctx, order);
    return st;
}

llmq_status llmq_safetensors_parse(llmq_model *m, const char *fn, const char *path)
{
    m->format = LLMQ_MODEL_FORMAT_SAFETENSORS;
    const uint8_t *b = m->map;
    const uint64_t n = le64(b);
    if (n > MAX_HEADER_BYTES)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: header length %llu: larger than the 100 MB limit", path,
                         (unsigned long long)n);
    if (n > m->map_size - 8)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: header length %llu: larger than the file (%zu bytes)", path,
                         (unsigned long long)n, m->map_size);
    m->data = b + 8 + n;
    m->data_size = m->map_size - 8 - n;
    json_error_t err;
    json_t *root = json_loadb((const char *)b + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn, "path=%s: header JSON, line %d column %d: %s",
                         path, err.line, err.column, err.text);
    llmq_status st = LLMQ_OK;
    if (!json_is_object(root))
        st = llmq_fail(m->ctx, LLMQ_ERR_PARSE, fn, "path=%s: the header must be a JSON object",
                       path);
    const char *key;
    json_t *v;
    if (st == LLMQ_OK) {
        json_object_foreach(root, key, v) {
            st = strcmp(key, "__metadata__") == 0 ? parse_metadata(m, fn, path, v)
                                                  : parse_entry(m, fn, path, key, v);
            if (st != LLMQ_OK)
                break;
        }
    }
    json_decref(root);
    if (st == LLMQ_OK)
        st = check_overlaps(m, fn, path);
    return st;
}
