/* safetensors_write.c - streaming safetensors output: tensors are declared first (so the
 * header and every offset are known), then written in any order with pwrite into a temporary
 * file that is renamed over the destination only when everything is on disk.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "model/model_impl.h"
#include "quant/scheme_impl.h"

/* One entry of the file: a tensor's data, or the scale / zero point of a quantized one. */
typedef struct out_entry {
    char *name;
    const char *file_dtype;
    int32_t ndim;
    int64_t shape[LLMQ_MAX_DIMS];
    uint64_t bytes, offset;
} out_entry;

/* One declared tensor: its entries (1, or 3 with a scheme) and whether it was written. */
typedef struct out_decl {
    char *name;
    llmq_dtype dtype;
    int32_t ndim;
    int64_t shape[LLMQ_MAX_DIMS];
    bool has_scheme, written;
    struct llmq_scheme scheme;
    int64_t entry[3];
} out_decl;

struct llmq_model_writer {
    llmq_context *ctx;
    char *path, *tmp_path;
    int fd;
    out_entry *entries;
    int64_t n_entries, cap_entries;
    out_decl *decls;
    int64_t n_decls, cap_decls;
    char **meta;
    int64_t n_meta, cap_meta;
    uint64_t data_start; /* 8 + header length */
    bool frozen, failed, finished;
};

/* Grow *items (capacity *cap) to hold one more of `elem` bytes. */
static bool push(llmq_context *ctx, void **items, int64_t *cap, int64_t n, size_t elem)
{
    if (n < *cap)
        return true;
    const int64_t c = *cap ? *cap * 2 : 16;
    void *p = llmq_mem_alloc(ctx, (size_t)c * elem);
    if (p == NULL)
        return false;
    if (n > 0)
        memcpy(p, *items, (size_t)n * elem);
    llmq_mem_free(ctx, *items);
    *items = p;
    *cap = c;
    return true;
}

void llmq_model_writer_destroy(llmq_model_writer *w)
{
    if (w == NULL)
        return;
    llmq_context *ctx = w->ctx;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->finished && w->tmp_path != NULL)
        unlink(w->tmp_path);
    for (int64_t i = 0; i < w->n_entries; i++)
        llmq_mem_free(ctx, w->entries[i].name);
    for (int64_t i = 0; i < w->n_decls; i++)
        llmq_mem_free(ctx, w->decls[i].name);
    for (int64_t i = 0; i < 2 * w->n_meta; i++)
        llmq_mem_free(ctx, w->meta[i]);
    llmq_mem_free(ctx, w->entries);
    llmq_mem_free(ctx, w->decls);
    llmq_mem_free(ctx, w->meta);
    llmq_mem_free(ctx, w->path);
    llmq_mem_free(ctx, w->tmp_path);
    llmq_mem_free(ctx, w);
}

llmq_status llmq_model_writer_create(llmq_context *ctx, const char *path, llmq_model_writer **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a writer pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, path != NULL && path[0] != '\0', "path=%s: must name a file",
                 path == NULL ? "NULL" : "\"\"");
    llmq_model_writer *w = llmq_mem_calloc(ctx, sizeof *w);
    if (w == NULL)
        return llmq_fail_oom(ctx, __func__, "writer", sizeof *w);
    w->ctx = ctx;
    w->fd = -1;
    const size_t n = strlen(path);
    w->path = llmq_strdup(ctx, path);
    w->tmp_path = llmq_mem_alloc(ctx, n + 16);
    if (w->path == NULL || w->tmp_path == NULL) {
        llmq_model_writer_destroy(w);
        return llmq_fail_oom(ctx, __func__, "path", n + 16);
    }
    /* a temporary file beside the destination, so that the final rename stays atomic */
    snprintf(w->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp_path);
    if (w->fd < 0) {
        const int err = errno;
        w->tmp_path[0] = '\0';
        llmq_model_writer_destroy(w);
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: cannot create a file beside it: %s",
                         path, strerror(err));
    }
    *out = w;
    return LLMQ_OK;
}

static bool name_taken(const llmq_model_writer *w, const char *name)
{
    for (int64_t i = 0; i < w->n_entries; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return true;
    return false;
}

llmq_status llmq_model_writer_set_metadata(llmq_context *ctx, llmq_model_writer *w,
                                           const char *key, const char *value)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, w != NULL, "w=NULL: must be a writer");
    LLMQ_REQUIRE(ctx, key != NULL && value != NULL, "%s=NULL: must be a string",
                 key == NULL ? "key" : "value");
    if (w->frozen)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "key=%s: the header is already written",
                         key);
    LLMQ_REQUIRE(ctx, strncmp(key, "llmq.", 5) != 0, "key=%s: keys starting with llmq. are "
                 "reserved", key);
    for (int64_t i = 0; i < w->n_meta; i++)
        LLMQ_REQUIRE(ctx, strcmp(w->meta[2 * i], key) != 0, "key=%s: already set", key);
    void *items = w->meta;
    int64_t cap = w->cap_meta;
    const bool ok = push(ctx, &items, &cap, w->n_meta, 2 * sizeof(char *));
    w->meta = items;
    w->cap_meta = cap;
    char *k = ok ? llmq_strdup(ctx, key) : NULL, *v = ok ? llmq_strdup(ctx, value) : NULL;
    if (k == NULL || v == NULL) {
        llmq_mem_free(ctx, k);
        llmq_mem_free(ctx, v);
        return llmq_fail_oom(ctx, __func__, "metadata", strlen(key) + strlen(value));
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return LLMQ_OK;
}

static llmq_status add_entry(llmq_model_writer *w, const char *fn, const char *name,
                             const char *file_dtype, uint64_t elem_bytes, int32_t ndim,
                             const int64_t *shape, int64_t *index)
{
    out_entry e = {.file_dtype = file_dtype, .ndim = ndim};
    uint64_t bytes = elem_bytes;
    for (int32_t i = 0; i < ndim; i++) {
        e.shape[i] = shape[i];
        bytes *= (uint64_t)shape[i];
    }
    e.bytes = bytes;
    void *items = w->entries;
    const bool ok = push(w->ctx, &items, &w->cap_entries, w->n_entries, sizeof e);
    w->entries = items;
    e.name = ok ? llmq_strdup(w->ctx, name) : NULL;
    if (e.name == NULL)
        return llmq_fail_oom(w->ctx, fn, "entry", sizeof e);
    *index = w->n_entries;
    w->entries[w->n_entries++] = e;
    return LLMQ_OK;
}

llmq_status llmq_model_writer_declare(llmq_context *ctx, llmq_model_writer *w, const char *name,
                                      llmq_dtype dtype, int32_t ndim, const int64_t *shape,
                                      const llmq_scheme *scheme)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, w != NULL, "w=NULL: must be a writer");
    LLMQ_REQUIRE(ctx, name != NULL && name[0] != '\0' && strcmp(name, "__metadata__") != 0,
                 "name=%s: must be a non-empty tensor name", name == NULL ? "NULL" : name);
    if (w->frozen)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__,
                         "name=%s: declarations end with the first write", name);
    /* validate the layout the same way tensors are validated */
    llmq_tensor *probe = NULL;
    int64_t one = 1;
    LLMQ_TRY(llmq_tensor_wrap(ctx, dtype, ndim, shape, &one, 0, &probe));
    const int64_t cols = probe->cols, rows = probe->rows;
    const size_t row_bytes = probe->row_bytes;
    llmq_tensor_destroy(probe);
    char scale_name[512], zp_name[512];
    snprintf(scale_name, sizeof scale_name, "%s.scale", name);
    snprintf(zp_name, sizeof zp_name, "%s.zero_point", name);
    LLMQ_REQUIRE(ctx, !name_taken(w, name), "name=%s: already declared", name);
    out_decl d = {.dtype = dtype, .ndim = ndim, .has_scheme = scheme != NULL};
    memcpy(d.shape, shape, (size_t)ndim * sizeof *shape);
    llmq_param_layout l = {0};
    if (scheme != NULL) {
        LLMQ_REQUIRE(ctx, scheme->dtype == dtype, "scheme=%s: differs from dtype=%s",
                     llmq_dtype_name(scheme->dtype), llmq_dtype_name(dtype));
        LLMQ_TRY(llmq_scheme_layout(scheme, __func__, ndim, shape, &l));
        LLMQ_REQUIRE(ctx, !name_taken(w, scale_name) && !name_taken(w, zp_name),
                     "name=%s: its .scale or .zero_point name is already declared", name);
        d.scheme = *scheme;
    } else {
        LLMQ_REQUIRE(ctx, llmq_dtype_bits(dtype) >= 8,
                     "dtype=%s: sub-byte tensors are stored with their scheme",
                     llmq_dtype_name(dtype));
    }
    (void)cols;
    const uint64_t bits = llmq_dtype_bits(dtype);
    if (bits >= 8) {
        LLMQ_TRY(add_entry(w, __func__, name, llmq_model_file_dtype_name(dtype), bits / 8, ndim,
                           shape, &d.entry[0]));
    } else { /* packed rows as U8 [rows..., row_bytes] */
        int64_t packed[LLMQ_MAX_DIMS];
        memcpy(packed, shape, (size_t)ndim * sizeof *shape);
        packed[ndim - 1] = (int64_t)row_bytes;
        (void)rows;
        LLMQ_TRY(add_entry(w, __func__, name, "U8", 1, ndim, packed, &d.entry[0]));
    }
    if (scheme != NULL) {
        LLMQ_TRY(add_entry(w, __func__, scale_name, "F32", 4, l.ndim, l.shape, &d.entry[1]));
        LLMQ_TRY(add_entry(w, __func__, zp_name, "I32", 4, l.ndim, l.shape, &d.entry[2]));
    }
    void *items = w->decls;
    const bool ok = push(ctx, &items, &w->cap_decls, w->n_decls, sizeof d);
    w->decls = items;
    d.name = ok ? llmq_strdup(ctx, name) : NULL;
    if (d.name == NULL)
        return llmq_fail_oom(ctx, __func__, "declaration", sizeof d);
    w->decls[w->n_decls++] = d;
    return LLMQ_OK;
}

static llmq_status write_all(llmq_model_writer *w, const char *fn, const void *buf, size_t n,
                             uint64_t offset)
{
    const char *p = buf;
    while (n > 0) {
        const ssize_t k = pwrite(w->fd, p, n, (off_t)offset);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->failed = true;
            return llmq_fail(w->ctx, LLMQ_ERR_IO, fn, "path=%s: write: %s", w->path,
                             k < 0 ? strerror(errno) : "no progress");
        }
        p += k;
        n -= (size_t)k;
        offset += (uint64_t)k;
    }
    return LLMQ_OK;
}

/* Alignment class of an entry: 4-byte dtypes first, then 2, then bytes, so that with the
 * header padded to 8 bytes every tensor starts aligned for its dtype. */
static uint64_t elem_size(const out_entry *e)
{
    return llmq_model_file_dtype_size(e->file_dtype);
}

/* Assign offsets, build the JSON header and write it. */
static llmq_status freeze(llmq_model_writer *w, const char *fn)
{
    uint64_t at = 0;
    for (uint64_t size = 8; size >= 1; size /= 2)
        for (int64_t i = 0; i < w->n_entries; i++)
            if (elem_size(&w->entries[i]) == size) {
                w->entries[i].offset = at;
                at += w->entries[i].bytes;
            }
    json_t *root = json_object(), *meta = json_object();
    llmq_status st = root != NULL && meta != NULL ? LLMQ_OK : LLMQ_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; st == LLMQ_OK && i < w->n_meta; i++)
        if (json_object_set_new(meta, w->meta[2 * i], json_string(w->meta[2 * i + 1])) != 0)
            st = LLMQ_ERR_OUT_OF_MEMORY;
    bool any_scheme = false;
    for (int64_t i = 0; st == LLMQ_OK && i < w->n_decls; i++) {
        const out_decl *d = &w->decls[i];
        if (!d->has_scheme)
            continue;
        any_scheme = true;
        char key[600];
        snprintf(key, sizeof key, "llmq.scheme.%s", d->name);
        char *text = llmq_scheme_to_json(w->ctx, &d->scheme, d->ndim, d->shape);
        if (text == NULL || json_object_set_new(meta, key, json_string(text)) != 0)
            st = LLMQ_ERR_OUT_OF_MEMORY;
        llmq_mem_free(w->ctx, text);
    }
    if (st == LLMQ_OK && any_scheme && json_object_set_new(meta, "llmq.format", json_string("1")))
        st = LLMQ_ERR_OUT_OF_MEMORY;
    if (st == LLMQ_OK && json_object_size(meta) > 0 && json_object_set(root, "__metadata__", meta))
        st = LLMQ_ERR_OUT_OF_MEMORY;
    for (uint64_t size = 8; st == LLMQ_OK && size >= 1; size /= 2)
        for (int64_t i = 0; st == LLMQ_OK && i < w->n_entries; i++) {
            const out_entry *e = &w->entries[i];
            if (elem_size(e) != size)
                continue;
            json_t *shape = json_array();
            for (int32_t k = 0; shape != NULL && k < e->ndim; k++)
                json_array_append_new(shape, json_integer(e->shape[k]));
            json_t *v = json_pack("{s:s, s:o, s:[I, I]}", "dtype", e->file_dtype, "shape", shape,
                                  "data_offsets", (json_int_t)e->offset,
                                  (json_int_t)(e->offset + e->bytes));
            if (v == NULL || json_object_set_new(root, e->name, v) != 0)
                st = LLMQ_ERR_OUT_OF_MEMORY;
        }
    char *text = st == LLMQ_OK ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(meta);
    json_decref(root);
    if (text == NULL)
        return llmq_fail_oom(w->ctx, fn, "header", 0);
    const size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    uint8_t *hdr = llmq_mem_alloc(w->ctx, 8 + padded);
    if (hdr == NULL) {
        free(text);
        return llmq_fail_oom(w->ctx, fn, "header", 8 + padded);
    }
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(hdr + 8, text, len);
    memset(hdr + 8 + len, ' ', padded - len); /* safetensors pads the header with spaces */
    free(text);
    st = write_all(w, fn, hdr, 8 + padded, 0);
    llmq_mem_free(w->ctx, hdr);
    w->data_start = 8 + padded;
    w->frozen = true;
    return st;
}

static bool same_scheme(const struct llmq_scheme *a, const struct llmq_scheme *b)
{
    return a->dtype == b->dtype && a->symmetry == b->symmetry &&
           a->granularity == b->granularity && a->axis == b->axis &&
           a->group_size == b->group_size && a->rounding == b->rounding &&
           a->numerics == b->numerics && a->range_min == b->range_min &&
           a->range_max == b->range_max;
}

/* Write a tensor's rows back to back at entry e. */
static llmq_status write_rows(llmq_model_writer *w, const char *fn, const llmq_tensor *t,
                              const out_entry *e)
{
    const uint64_t at = w->data_start + e->offset;
    if (t->row_stride == t->row_bytes)
        return write_all(w, fn, t->data, (size_t)e->bytes, at);
    for (int64_t r = 0; r < t->rows; r++)
        LLMQ_TRY(write_all(w, fn, (const char *)t->data + (size_t)r * t->row_stride, t->row_bytes,
                           at + (uint64_t)r * t->row_bytes));
    return LLMQ_OK;
}

llmq_status llmq_model_writer_write(llmq_context *ctx, llmq_model_writer *w, const char *name,
                                    const llmq_tensor *t)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, w != NULL, "w=NULL: must be a writer");
    LLMQ_REQUIRE(ctx, name != NULL && t != NULL, "%s=NULL: must not be NULL",
                 name == NULL ? "name" : "t");
    if (w->failed || w->finished)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "w: the writer has %s",
                         w->failed ? "failed" : "finished");
    out_decl *d = NULL;
    for (int64_t i = 0; i < w->n_decls && d == NULL; i++)
        if (strcmp(w->decls[i].name, name) == 0)
            d = &w->decls[i];
    LLMQ_REQUIRE(ctx, d != NULL, "name=%s: not declared", name);
    LLMQ_REQUIRE(ctx, !d->written, "name=%s: already written", name);
    llmq_backend *be;
    const char *tn = "t";
    LLMQ_TRY(llmq_host_backend(ctx, __func__, 1, &tn, &t, &be));
    bool same = t->dtype == d->dtype && t->ndim == d->ndim;
    for (int32_t i = 0; same && i < d->ndim; i++)
        same = t->shape[i] == d->shape[i];
    LLMQ_REQUIRE(ctx, same, "t=%s tensor: differs from the declared %s %s",
                 llmq_dtype_name(t->dtype), llmq_dtype_name(d->dtype), name);
    if (d->has_scheme)
        LLMQ_REQUIRE(ctx, t->scheme != NULL && same_scheme(t->scheme, &d->scheme),
                     "t: its scheme differs from the one declared for %s", name);
    w->ctx = ctx; /* messages of this call go to the caller's context */
    if (!w->frozen)
        LLMQ_TRY(freeze(w, __func__));
    LLMQ_TRY(write_rows(w, __func__, t, &w->entries[d->entry[0]]));
    if (d->has_scheme) {
        LLMQ_TRY(write_rows(w, __func__, t->scale, &w->entries[d->entry[1]]));
        LLMQ_TRY(write_rows(w, __func__, t->zero_point, &w->entries[d->entry[2]]));
    }
    d->written = true;
    return LLMQ_OK;
}

llmq_status llmq_model_writer_finish(llmq_context *ctx, llmq_model_writer *w)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, w != NULL, "w=NULL: must be a writer");
    if (w->failed || w->finished)
        return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "w: the writer has %s",
                         w->failed ? "failed" : "finished");
    for (int64_t i = 0; i < w->n_decls; i++)
        if (!w->decls[i].written)
            return llmq_fail(ctx, LLMQ_ERR_STATE, __func__, "name=%s: declared but not written",
                             w->decls[i].name);
    w->ctx = ctx;
    if (!w->frozen) /* a file without tensors still gets its header */
        LLMQ_TRY(freeze(w, __func__));
    if (fsync(w->fd) != 0 || close(w->fd) != 0) {
        w->fd = -1;
        w->failed = true;
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: flush: %s", w->path,
                         strerror(errno));
    }
    w->fd = -1;
    if (rename(w->tmp_path, w->path) != 0) {
        w->failed = true;
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: rename: %s", w->path,
                         strerror(errno));
    }
    w->finished = true;
    return LLMQ_OK;
}
