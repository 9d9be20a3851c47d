/* model.c - opening model files, the tensor directory, and views of tensors.
 * SPDX-License-Identifier: MIT */
/* madvise(MADV_DONTNEED) is a Linux/BSD extension (posix_madvise does nothing on glibc) */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "model/model_impl.h"
#include "llmq/scheme.h"

static const struct {
    const char *name;
    uint64_t size;
    int dtype; /* -1: no llmq dtype */
} file_dtypes[] = {
    {"F32", 4, LLMQ_DTYPE_F32}, {"F16", 2, LLMQ_DTYPE_F16},  {"BF16", 2, LLMQ_DTYPE_BF16},
    {"I8", 1, LLMQ_DTYPE_S8},   {"U8", 1, LLMQ_DTYPE_U8},    {"I32", 4, LLMQ_DTYPE_S32},
    {"F64", 8, -1},             {"I64", 8, -1},              {"U64", 8, -1},
    {"I16", 2, -1},             {"U16", 2, -1},              {"U32", 4, -1},
    {"BOOL", 1, -1},            {"F8_E4M3", 1, -1},          {"F8_E5M2", 1, -1},
};
#define N_FILE_DTYPES (sizeof file_dtypes / sizeof file_dtypes[0])

const char *llmq_model_file_dtype_name(llmq_dtype dtype)
{
    for (size_t i = 0; i < N_FILE_DTYPES; i++)
        if (file_dtypes[i].dtype == (int)dtype)
            return file_dtypes[i].name;
    return NULL;
}

bool llmq_model_dtype_from_file(const char *name, llmq_dtype *dtype)
{
    for (size_t i = 0; i < N_FILE_DTYPES; i++)
        if (strcmp(file_dtypes[i].name, name) == 0 && file_dtypes[i].dtype >= 0) {
            *dtype = (llmq_dtype)file_dtypes[i].dtype;
            return true;
        }
    return false;
}

uint64_t llmq_model_file_dtype_size(const char *name)
{
    for (size_t i = 0; i < N_FILE_DTYPES; i++)
        if (strcmp(file_dtypes[i].name, name) == 0)
            return file_dtypes[i].size;
    return 0;
}

char *llmq_strdup(llmq_context *ctx, const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = llmq_mem_alloc(ctx, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Make room for `need` items of `elem` bytes in *items (capacity *cap), doubling. */
static bool reserve(llmq_context *ctx, void **items, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    int64_t n = *cap > 0 ? *cap : 8;
    while (n < need)
        n *= 2;
    void *p = llmq_mem_alloc(ctx, (size_t)n * elem);
    if (p == NULL)
        return false;
    if (*cap > 0)
        memcpy(p, *items, (size_t)*cap * elem);
    llmq_mem_free(ctx, *items);
    *items = p;
    *cap = n;
    return true;
}

llmq_status llmq_model_add_meta(llmq_model *m, const char *fn, const char *key,
                                const char *value)
{
    void *items = m->meta;
    int64_t cap = m->meta_cap / 2;
    const bool ok = reserve(m->ctx, &items, &cap, m->meta_count + 1, 2 * sizeof(char *));
    m->meta = items;
    m->meta_cap = cap * 2;
    char *k = ok ? llmq_strdup(m->ctx, key) : NULL, *v = ok ? llmq_strdup(m->ctx, value) : NULL;
    if (k == NULL || v == NULL) {
        llmq_mem_free(m->ctx, k);
        llmq_mem_free(m->ctx, v);
        return llmq_fail_oom(m->ctx, fn, "metadata", strlen(key) + strlen(value) + 2);
    }
    m->meta[2 * m->meta_count] = k;
    m->meta[2 * m->meta_count + 1] = v;
    m->meta_count++;
    return LLMQ_OK;
}

llmq_status llmq_model_add_entry(llmq_model *m, const char *fn, const llmq_model_entry *e)
{
    void *items = m->entries;
    const bool ok = reserve(m->ctx, &items, &m->entries_cap, m->count + 1, sizeof *e);
    m->entries = items;
    char *name = ok ? llmq_strdup(m->ctx, e->name) : NULL;
    if (name == NULL)
        return llmq_fail_oom(m->ctx, fn, "tensor directory", sizeof *e);
    m->entries[m->count] = *e;
    m->entries[m->count].name = name;
    m->count++;
    return LLMQ_OK;
}

void llmq_model_destroy(llmq_model *m)
{
    if (m == NULL)
        return;
    llmq_context *ctx = m->ctx;
    for (int64_t i = 0; i < m->count; i++)
        llmq_mem_free(ctx, m->entries[i].name);
    for (int64_t i = 0; i < 2 * m->meta_count; i++)
        llmq_mem_free(ctx, m->meta[i]);
    llmq_mem_free(ctx, m->entries);
    llmq_mem_free(ctx, m->meta);
    if (m->map != NULL && m->owns_map)
        munmap(m->map, m->map_size);
    llmq_mem_free(ctx, m);
}

llmq_status llmq_model_open(llmq_context *ctx, const char *path, llmq_model **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a model pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, path != NULL, "path=NULL: must name a file");
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int err = errno;
        close(fd);
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: %s", path,
                         S_ISREG(st.st_mode) ? strerror(err) : "not a regular file");
    }
    if (st.st_size < 9) { /* too short to map usefully: report it as model_from_memory does */
        close(fd);
        return llmq_fail(ctx, LLMQ_ERR_PARSE, __func__,
                         "path=%s: %lld bytes: too short for any model format", path,
                         (long long)st.st_size);
    }
    /* private and writable: views are copy-on-write, writes never reach the file */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int map_err = errno;
    close(fd);
    if (map == MAP_FAILED)
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: mmap: %s", path,
                         strerror(map_err));
    return llmq_model_from_memory(ctx, __func__, map, (size_t)st.st_size, true, path, out);
}

llmq_status llmq_model_from_memory(llmq_context *ctx, const char *fn, void *buf, size_t size,
                                   bool owns_map, const char *name, llmq_model **out)
{
    *out = NULL;
    llmq_model *m = llmq_mem_calloc(ctx, sizeof *m);
    if (m == NULL) {
        if (owns_map)
            munmap(buf, size);
        return llmq_fail_oom(ctx, fn, "model", sizeof *m);
    }
    m->ctx = ctx;
    m->map = buf;
    m->map_size = size;
    m->owns_map = owns_map;
    if (size < 9) {
        llmq_model_destroy(m);
        return llmq_fail(ctx, LLMQ_ERR_PARSE, fn,
                         "path=%s: %zu bytes: too short for any model format", name, size);
    }
    /* safetensors: a little-endian u64 header length, then JSON (possibly after blanks) */
    const uint8_t *b = buf;
    size_t i = 8;
    while (i < size && i < 72 && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    llmq_status s = i < size && (b[i] == '{' || b[i] == '[') ? llmq_safetensors_parse(m, fn, name)
                                                               : llmq_llama2c_parse(m, fn, name);
    if (s != LLMQ_OK) {
        llmq_model_destroy(m);
        return s;
    }
    *out = m;
    return LLMQ_OK;
}

llmq_model_format llmq_model_get_format(const llmq_model *m)
{
    return m != NULL ? m->format : LLMQ_MODEL_FORMAT_SAFETENSORS;
}

int64_t llmq_model_tensor_count(const llmq_model *m)
{
    return m != NULL ? m->count : 0;
}

const char *llmq_model_tensor_name(const llmq_model *m, int64_t index)
{
    return m != NULL && index >= 0 && index < m->count ? m->entries[index].name : NULL;
}

const char *llmq_model_tensor_file_dtype(const llmq_model *m, int64_t index)
{
    return m != NULL && index >= 0 && index < m->count ? m->entries[index].file_dtype : NULL;
}

llmq_status llmq_model_tensor_shape(const llmq_model *m, int64_t index, int32_t *ndim,
                                    int64_t *shape, int32_t capacity)
{
    if (m == NULL || ndim == NULL || index < 0 || index >= m->count ||
        (shape == NULL && capacity > 0))
        return LLMQ_ERR_INVALID_ARG;
    const llmq_model_entry *e = &m->entries[index];
    *ndim = e->ndim;
    for (int32_t i = 0; i < e->ndim && i < capacity; i++)
        shape[i] = e->shape[i];
    return LLMQ_OK;
}

int64_t llmq_model_metadata_count(const llmq_model *m)
{
    return m != NULL ? m->meta_count : 0;
}

const char *llmq_model_metadata_key(const llmq_model *m, int64_t index)
{
    return m != NULL && index >= 0 && index < m->meta_count ? m->meta[2 * index] : NULL;
}

const char *llmq_model_metadata_value(const llmq_model *m, int64_t index)
{
    return m != NULL && index >= 0 && index < m->meta_count ? m->meta[2 * index + 1] : NULL;
}

const char *llmq_model_metadata(const llmq_model *m, const char *key)
{
    if (m == NULL || key == NULL)
        return NULL;
    for (int64_t i = 0; i < m->meta_count; i++)
        if (strcmp(m->meta[2 * i], key) == 0)
            return m->meta[2 * i + 1];
    return NULL;
}

static const llmq_model_entry *find(const llmq_model *m, const char *name)
{
    for (int64_t i = 0; i < m->count; i++)
        if (strcmp(m->entries[i].name, name) == 0)
            return &m->entries[i];
    return NULL;
}

/* A tensor of `dtype` and `shape` over entry e's bytes: a view when aligned, else a copy. */
static llmq_status view(llmq_context *ctx, const llmq_model *m, const llmq_model_entry *e,
                        llmq_dtype dtype, int32_t ndim, const int64_t *shape, llmq_tensor **out)
{
    void *p = (void *)(m->data + e->begin);
    const size_t align = llmq_dtype_bits(dtype) >= 8 ? llmq_dtype_bits(dtype) / 8 : 1;
    if ((uintptr_t)p % align == 0)
        return llmq_tensor_wrap(ctx, dtype, ndim, shape, p, 0, out);
    LLMQ_TRY(llmq_tensor_create(ctx, dtype, ndim, shape, out));
    memcpy(llmq_tensor_data(*out), p, (size_t)(e->end - e->begin));
    return LLMQ_OK;
}

static llmq_status plain_tensor(llmq_context *ctx, const char *fn, const llmq_model *m,
                                const llmq_model_entry *e, llmq_tensor **out)
{
    if (!e->known)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "name=%s: dtype %s has no llmq equivalent", e->name, e->file_dtype);
    if (e->ndim < 1 || e->ndim > LLMQ_MAX_DIMS)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "name=%s: %d dimensions; llmq tensors have 1 to %d", e->name,
                         (int)e->ndim, LLMQ_MAX_DIMS);
    for (int32_t i = 0; i < e->ndim; i++)
        if (e->shape[i] == 0)
            return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                             "name=%s: shape[%d]=0: llmq tensors have no empty dimensions",
                             e->name, (int)i);
    return view(ctx, m, e, e->dtype, e->ndim, e->shape, out);
}

/* Copy a parameter entry (F32 scale or I32 zero point) into a bound parameter tensor. */
static llmq_status load_params(llmq_context *ctx, const char *fn, const llmq_model *m,
                               const char *name, const char *suffix, llmq_dtype want,
                               llmq_tensor *dst)
{
    char key[512];
    snprintf(key, sizeof key, "%s.%s", name, suffix);
    const llmq_model_entry *e = find(m, key);
    if (e == NULL || !e->known || e->dtype != want ||
        e->end - e->begin != (uint64_t)llmq_tensor_numel(dst) * llmq_dtype_bits(want) / 8)
        return llmq_fail(ctx, LLMQ_ERR_PARSE, fn,
                         "name=%s: %s is missing or does not match the scheme's %lld %s "
                         "parameters", name, key, (long long)llmq_tensor_numel(dst),
                         llmq_dtype_name(want));
    memcpy(llmq_tensor_data(dst), m->data + e->begin, (size_t)(e->end - e->begin));
    return LLMQ_OK;
}

llmq_status llmq_model_tensor(llmq_context *ctx, const llmq_model *m, const char *name,
                              llmq_tensor **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a tensor pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, m != NULL, "m=NULL: must be a model");
    LLMQ_REQUIRE(ctx, name != NULL, "name=NULL: must name a tensor");
    const llmq_model_entry *e = find(m, name);
    LLMQ_REQUIRE(ctx, e != NULL, "name=%s: no such tensor in the model", name);
    char key[512];
    snprintf(key, sizeof key, "llmq.scheme.%s", name);
    const char *json = llmq_model_metadata(m, key);
    if (json == NULL)
        return plain_tensor(ctx, __func__, m, e, out);

    llmq_scheme *s = NULL;
    int32_t ndim = 0;
    int64_t shape[LLMQ_MAX_DIMS];
    LLMQ_TRY(llmq_scheme_from_json(ctx, __func__, json, &s, &ndim, shape));
    const llmq_dtype d = llmq_scheme_dtype(s);
    llmq_tensor *t = NULL;
    /* the stored bytes must be exactly the packed logical tensor */
    size_t row_bytes = 0;
    int64_t rows = 1;
    for (int32_t i = 0; i + 1 < ndim; i++)
        rows *= shape[i];
    llmq_status st = LLMQ_OK;
    if (!llmq_dtype_row_bytes(d, shape[ndim - 1], &row_bytes) ||
        e->end - e->begin != (uint64_t)rows * row_bytes)
        st = llmq_fail(ctx, LLMQ_ERR_PARSE, __func__,
                       "name=%s: %llu stored bytes do not hold the logical %s tensor", name,
                       (unsigned long long)(e->end - e->begin), llmq_dtype_name(d));
    if (st == LLMQ_OK)
        st = view(ctx, m, e, d, ndim, shape, &t);
    if (st == LLMQ_OK)
        st = llmq_tensor_set_scheme(ctx, t, s);
    if (st == LLMQ_OK)
        st = load_params(ctx, __func__, m, name, "scale", LLMQ_DTYPE_F32, llmq_tensor_scale(t));
    if (st == LLMQ_OK)
        st = load_params(ctx, __func__, m, name, "zero_point", LLMQ_DTYPE_S32,
                         llmq_tensor_zero_point(t));
    llmq_scheme_destroy(s);
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return LLMQ_OK;
}

llmq_status llmq_model_evict(llmq_context *ctx, const llmq_model *m, const char *name)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, m != NULL, "m=NULL: must be a model");
    LLMQ_REQUIRE(ctx, name != NULL, "name=NULL: must name a tensor");
    const llmq_model_entry *e = find(m, name);
    LLMQ_REQUIRE(ctx, e != NULL, "name=%s: no such tensor in the model", name);
    if (!m->owns_map)
        return LLMQ_OK;
    /* whole pages inside the tensor only: neighbours may still be in use */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)(m->data + e->begin), hi = (uintptr_t)(m->data + e->end);
    lo = (lo + page - 1) & ~(page - 1);
    hi &= ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return LLMQ_OK;
}
