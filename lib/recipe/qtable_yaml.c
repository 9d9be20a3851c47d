/* qtable_yaml.c - parameter tables as YAML files (libyaml: the only code besides the recipes
 * that includes yaml.h). Writing goes through libyaml's emitter into a temporary file renamed
 * over the target; reading loads the document and validates every field, reporting
 * `path:line:column: key: reason`. Numbers are written and read in the C locale, floats with
 * the fewest digits (at most 9) that read back to the same float32.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "calib/qtable_impl.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "recipe/yaml_emit.h"

#define FORMAT_NAME "llmq-qtable"

static const char *const symmetry_names[] = {"symmetric", "symmetric_restricted", "asymmetric"};
static const char *const granularity_names[] = {"per_tensor", "per_channel", "per_group",
                                                "per_token"};
static const char *const rounding_names[] = {"half_even", "half_away", "stochastic"};
static const char *const numerics_names[] = {"pytorch", "onnx"};
#define COUNT(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* Run numeric conversions in the C locale whatever the process's LC_NUMERIC (thread-local). */
typedef struct c_locale {
    locale_t c, old;
} c_locale;

static bool c_locale_enter(c_locale *l)
{
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (l->c == (locale_t)0) return false;
    l->old = uselocale(l->c);
    return true;
}

static void c_locale_leave(c_locale *l)
{
    uselocale(l->old);
    freelocale(l->c);
}

/* Shortest "%.*e" (2 to 9 significant digits) that strtof reads back to v: always a dot and a
 * signed exponent, so that any YAML 1.1 or 1.2 reader sees a float. */
static void format_float(float v, char *buf, size_t size)
{
    for (int digits = 2; digits <= 9; digits++) {
        snprintf(buf, size, "%.*e", digits - 1, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* ---- writing ---------------------------------------------------------------------------- */

static void emit_entry(llmq_yaml_writer *w, const llmq_qtable_entry *e)
{
    const llmq_scheme *s = &e->scheme;
    char buf[32];
    llmq_yaml_scalar(w, e->name, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    llmq_yaml_collection(w, true, true, false);
    llmq_yaml_pair(w, "dtype", llmq_dtype_name(s->dtype));
    llmq_yaml_pair(w, "symmetry", symmetry_names[s->symmetry]);
    llmq_yaml_pair(w, "granularity", granularity_names[s->granularity]);
    if (s->granularity == LLMQ_GRANULARITY_PER_CHANNEL) llmq_yaml_int_pair(w, "axis", s->axis);
    if (s->granularity == LLMQ_GRANULARITY_PER_GROUP)
        llmq_yaml_int_pair(w, "group_size", (long long)s->group_size);
    llmq_yaml_pair(w, "rounding", rounding_names[s->rounding]);
    llmq_yaml_pair(w, "numerics", numerics_names[s->numerics]);
    if (s->rounding == LLMQ_ROUNDING_STOCHASTIC) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->seed);
        llmq_yaml_pair(w, "seed", buf);
    }
    llmq_yaml_scalar(w, "shape", YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_collection(w, true, false, true);
    for (int32_t d = 0; d < e->scale->ndim; d++) {
        snprintf(buf, sizeof buf, "%lld", (long long)e->scale->shape[d]);
        llmq_yaml_scalar(w, buf, YAML_PLAIN_SCALAR_STYLE);
    }
    llmq_yaml_collection(w, false, false, true);
    const int64_t n = llmq_tensor_numel(e->scale);
    const float *sv = e->scale->data;
    const int32_t *zv = e->zero_point->data;
    llmq_yaml_scalar(w, "scale", YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_collection(w, true, false, true);
    for (int64_t i = 0; i < n && w->ok; i++) {
        format_float(sv[i], buf, sizeof buf);
        llmq_yaml_scalar(w, buf, YAML_PLAIN_SCALAR_STYLE);
    }
    llmq_yaml_collection(w, false, false, true);
    llmq_yaml_scalar(w, "zero_point", YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_collection(w, true, false, true);
    for (int64_t i = 0; i < n && w->ok; i++) {
        snprintf(buf, sizeof buf, "%d", (int)zv[i]);
        llmq_yaml_scalar(w, buf, YAML_PLAIN_SCALAR_STYLE);
    }
    llmq_yaml_collection(w, false, false, true);
    llmq_yaml_collection(w, false, true, false);
}

static void emit_table(llmq_yaml_writer *w, const llmq_qtable *table)
{
    yaml_event_t ev;
    if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
        llmq_yaml_emit(w, &ev);
    else
        w->ok = false;
    if (w->ok && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))
        llmq_yaml_emit(w, &ev);
    else
        w->ok = false;
    llmq_yaml_collection(w, true, true, false);
    llmq_yaml_pair(w, "format", FORMAT_NAME);
    llmq_yaml_int_pair(w, "version", LLMQ_QTABLE_VERSION);
    llmq_yaml_scalar(w, "tensors", YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_collection(w, true, true, table->count == 0);
    for (int64_t i = 0; i < table->count && w->ok; i++)
        emit_entry(w, &table->entries[i]);
    llmq_yaml_collection(w, false, true, table->count == 0);
    llmq_yaml_collection(w, false, true, false);
    /* an explicit end marker "...": a file cut short between two entries would otherwise
     * still be a valid, shorter table */
    if (w->ok && yaml_document_end_event_initialize(&ev, 0))
        llmq_yaml_emit(w, &ev);
    else
        w->ok = false;
    if (w->ok && yaml_stream_end_event_initialize(&ev))
        llmq_yaml_emit(w, &ev);
    else
        w->ok = false;
    if (w->ok && !yaml_emitter_flush(&w->em)) w->ok = false;
}

llmq_status llmq_qtable_save(llmq_context *ctx, const llmq_qtable *table, const char *path)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, table != NULL, "table=NULL: must be a table");
    LLMQ_REQUIRE(ctx, path != NULL && path[0] != '\0', "path=%s: must name a file",
                 path == NULL ? "NULL" : "\"\"");
    const size_t len = strlen(path) + 8;
    char *tmp = llmq_mem_alloc(ctx, len);
    if (tmp == NULL) return llmq_fail_oom(ctx, __func__, "path", len);
    snprintf(tmp, len, "%s.XXXXXX", path);
    const int fd = mkstemp(tmp);
    if (fd < 0) {
        const int e = errno;
        llmq_mem_free(ctx, tmp);
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__,
                         "path=%s: cannot create a temporary file beside it: %s", path,
                         strerror(e));
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a table is no secret */
    FILE *f = fdopen(fd, "wb");
    llmq_status st = LLMQ_OK;
    int err = 0;
    if (f == NULL) {
        err = errno;
        close(fd);
        st = LLMQ_ERR_IO;
    } else {
        llmq_yaml_writer w = {.ok = true};
        c_locale loc;
        if (!yaml_emitter_initialize(&w.em) || !c_locale_enter(&loc)) {
            st = LLMQ_ERR_OUT_OF_MEMORY;
        } else {
            yaml_emitter_set_output_file(&w.em, f);
            yaml_emitter_set_unicode(&w.em, 1);
            yaml_emitter_set_indent(&w.em, 2);
            yaml_emitter_set_width(&w.em, 100);
            yaml_emitter_set_break(&w.em, YAML_LN_BREAK);
            emit_table(&w, table);
            c_locale_leave(&loc);
            if (!w.ok) st = w.em.error == YAML_MEMORY_ERROR ? LLMQ_ERR_OUT_OF_MEMORY : LLMQ_ERR_IO;
            err = errno;
        }
        yaml_emitter_delete(&w.em);
        if (st == LLMQ_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
            err = errno;
            st = LLMQ_ERR_IO;
        }
        if (fclose(f) != 0 && st == LLMQ_OK) {
            err = errno;
            st = LLMQ_ERR_IO;
        }
    }
    if (st == LLMQ_OK && rename(tmp, path) != 0) {
        err = errno;
        st = LLMQ_ERR_IO;
    }
    if (st != LLMQ_OK) unlink(tmp);
    llmq_mem_free(ctx, tmp);
    if (st == LLMQ_ERR_OUT_OF_MEMORY)
        return llmq_fail(ctx, st, __func__, "path=%s: out of memory while writing", path);
    if (st != LLMQ_OK)
        return llmq_fail(ctx, st, __func__, "path=%s: cannot write: %s", path,
                         err != 0 ? strerror(err) : "write error");
    return LLMQ_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct loader {
    llmq_context *ctx;
    const char *path;
    yaml_document_t *doc;
} loader;

/* "path:line:column: key: reason" (lines and columns from 1). */
static llmq_status bad(const loader *L, yaml_mark_t mark, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static llmq_status bad(const loader *L, yaml_mark_t mark, const char *key, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return llmq_fail(L->ctx, LLMQ_ERR_PARSE, "llmq_qtable_load", "%s:%zu:%zu: %s: %s", L->path,
                     mark.line + 1, mark.column + 1, key, reason);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static llmq_status expect(const loader *L, const yaml_node_t *n, yaml_node_type_t type,
                          const char *key)
{
    if (n->type == type) return LLMQ_OK;
    const char *want = type == YAML_SCALAR_NODE     ? "a scalar"
                       : type == YAML_SEQUENCE_NODE ? "a sequence"
                                                    : "a mapping";
    return bad(L, n->start_mark, key, "expected %s, found %s", want, node_kind(n));
}

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* One key of a mapping: its index among `keys`, rejecting unknown and repeated keys. */
static llmq_status mapping_keys(const loader *L, const yaml_node_t *map, const char *where,
                                const char *const *keys, int nkeys, yaml_node_t **values,
                                yaml_node_t **key_nodes)
{
    for (int k = 0; k < nkeys; k++)
        values[k] = key_nodes[k] = NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, pr->value);
        LLMQ_TRY(expect(L, kn, YAML_SCALAR_NODE, where));
        int k = 0;
        while (k < nkeys && strcmp(text(kn), keys[k]) != 0)
            k++;
        if (k == nkeys) {
            char list[160] = "";
            for (int j = 0; j < nkeys; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                         keys[j]);
            return bad(L, kn->start_mark, text(kn), "unknown key in %s (expected %s)", where, list);
        }
        if (values[k] != NULL)
            return bad(L, kn->start_mark, text(kn), "duplicate key in %s (first at line %zu)",
                       where, key_nodes[k]->start_mark.line + 1);
        values[k] = vn;
        key_nodes[k] = kn;
    }
    return LLMQ_OK;
}

static llmq_status parse_int(const loader *L, const yaml_node_t *n, const char *key, long long min,
                             long long max, long long *out)
{
    LLMQ_TRY(expect(L, n, YAML_SCALAR_NODE, key));
    const char *s = text(n);
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || s[0] == ' ')
        return bad(L, n->start_mark, key, "\"%.40s\" is not an integer", s);
    if (v < min || v > max)
        return bad(L, n->start_mark, key, "%lld is outside [%lld, %lld]", v, min, max);
    *out = v;
    return LLMQ_OK;
}

static llmq_status parse_name(const loader *L, const yaml_node_t *n, const char *key,
                              const char *const *names, int count, int *out)
{
    LLMQ_TRY(expect(L, n, YAML_SCALAR_NODE, key));
    for (int i = 0; i < count; i++) {
        if (strcmp(text(n), names[i]) == 0) {
            *out = i;
            return LLMQ_OK;
        }
    }
    char list[160] = "";
    for (int j = 0; j < count; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", names[j]);
    return bad(L, n->start_mark, key, "\"%.40s\" is not one of %s", text(n), list);
}

static llmq_status parse_dtype(const loader *L, const yaml_node_t *n, llmq_dtype *out)
{
    static const char *const names[] = {"s8", "u8", "s4", "u4", "s2", "u2"};
    int i;
    LLMQ_TRY(parse_name(L, n, "dtype", names, COUNT(names), &i));
    *out = (llmq_dtype)(LLMQ_DTYPE_S8 + i);
    return LLMQ_OK;
}

enum entry_key {
    K_DTYPE,
    K_SYMMETRY,
    K_GRANULARITY,
    K_AXIS,
    K_GROUP_SIZE,
    K_ROUNDING,
    K_NUMERICS,
    K_SEED,
    K_SHAPE,
    K_SCALE,
    K_ZERO_POINT,
    K_COUNT
};
static const char *const entry_keys[K_COUNT] = {"dtype",      "symmetry", "granularity", "axis",
                                                "group_size", "rounding", "numerics",    "seed",
                                                "shape",      "scale",    "zero_point"};

static llmq_status parse_scheme(const loader *L, yaml_node_t *const *v, const yaml_node_t *entry,
                                llmq_scheme *s)
{
    memset(s, 0, sizeof *s);
    s->ctx = L->ctx;
    static const enum entry_key required[] = {K_DTYPE, K_SYMMETRY, K_GRANULARITY,
                                              K_SHAPE, K_SCALE,    K_ZERO_POINT};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (v[required[i]] == NULL)
            return bad(L, entry->start_mark, entry_keys[required[i]], "missing");
    int i;
    LLMQ_TRY(parse_dtype(L, v[K_DTYPE], &s->dtype));
    LLMQ_TRY(parse_name(L, v[K_SYMMETRY], "symmetry", symmetry_names, COUNT(symmetry_names), &i));
    s->symmetry = (llmq_symmetry)i;
    LLMQ_TRY(parse_name(L, v[K_GRANULARITY], "granularity", granularity_names,
                        COUNT(granularity_names), &i));
    s->granularity = (llmq_granularity)i;
    if (v[K_ROUNDING] != NULL) {
        LLMQ_TRY(
            parse_name(L, v[K_ROUNDING], "rounding", rounding_names, COUNT(rounding_names), &i));
        s->rounding = (llmq_rounding)i;
    }
    if (v[K_NUMERICS] != NULL) {
        LLMQ_TRY(
            parse_name(L, v[K_NUMERICS], "numerics", numerics_names, COUNT(numerics_names), &i));
        s->numerics = (llmq_numerics)i;
    }
    long long x;
    if (s->granularity == LLMQ_GRANULARITY_PER_CHANNEL && v[K_AXIS] == NULL)
        return bad(L, entry->start_mark, "axis", "missing (per_channel needs it)");
    if (v[K_AXIS] != NULL) {
        LLMQ_TRY(parse_int(L, v[K_AXIS], "axis", -LLMQ_MAX_DIMS, LLMQ_MAX_DIMS - 1, &x));
        s->axis = (int32_t)x;
    }
    if (s->granularity == LLMQ_GRANULARITY_PER_GROUP && v[K_GROUP_SIZE] == NULL)
        return bad(L, entry->start_mark, "group_size", "missing (per_group needs it)");
    if (v[K_GROUP_SIZE] != NULL) {
        LLMQ_TRY(parse_int(L, v[K_GROUP_SIZE], "group_size", 1, LLONG_MAX, &x));
        s->group_size = x;
    }
    if (v[K_SEED] != NULL) {
        const yaml_node_t *n = v[K_SEED];
        LLMQ_TRY(expect(L, n, YAML_SCALAR_NODE, "seed"));
        char *end;
        errno = 0;
        const unsigned long long seed = strtoull(text(n), &end, 10);
        if (text(n)[0] < '0' || text(n)[0] > '9' || *end != '\0' || errno == ERANGE)
            return bad(L, n->start_mark, "seed", "\"%.40s\" is not an unsigned 64-bit integer",
                       text(n));
        s->seed = seed;
    }
    return LLMQ_OK;
}

/* Read one entry's parameters into tensors (owned by the caller). */
static llmq_status parse_params(const loader *L, yaml_node_t *const *v, const llmq_scheme *s,
                                llmq_tensor **scale, llmq_tensor **zp)
{
    const yaml_node_t *shape_node = v[K_SHAPE];
    LLMQ_TRY(expect(L, shape_node, YAML_SEQUENCE_NODE, "shape"));
    const yaml_node_item_t *items = shape_node->data.sequence.items.start;
    const int32_t ndim = (int32_t)(shape_node->data.sequence.items.top - items);
    if (ndim < 1 || ndim > 2)
        return bad(L, shape_node->start_mark, "shape", "%d dimensions: expected 1 or 2", (int)ndim);
    int64_t shape[2];
    int64_t n = 1;
    for (int32_t d = 0; d < ndim; d++) {
        long long x;
        LLMQ_TRY(parse_int(L, yaml_document_get_node(L->doc, items[d]), "shape", 1,
                           (long long)1 << 31, &x));
        shape[d] = x;
        n *= x;
    }
    const char *why = llmq_qtable_shape_problem(s->granularity, ndim, shape);
    if (why != NULL) return bad(L, shape_node->start_mark, "shape", "%s", why);
    if (n > ((int64_t)1 << 31))
        return bad(L, shape_node->start_mark, "shape", "%lld parameters: too many", (long long)n);
    const yaml_node_t *sn = v[K_SCALE], *zn = v[K_ZERO_POINT];
    LLMQ_TRY(expect(L, sn, YAML_SEQUENCE_NODE, "scale"));
    LLMQ_TRY(expect(L, zn, YAML_SEQUENCE_NODE, "zero_point"));
    const int64_t ns = sn->data.sequence.items.top - sn->data.sequence.items.start;
    const int64_t nz = zn->data.sequence.items.top - zn->data.sequence.items.start;
    if (ns != n)
        return bad(L, sn->start_mark, "scale", "%lld values, shape needs %lld", (long long)ns,
                   (long long)n);
    if (nz != n)
        return bad(L, zn->start_mark, "zero_point", "%lld values, shape needs %lld", (long long)nz,
                   (long long)n);
    LLMQ_TRY(llmq_tensor_create(L->ctx, LLMQ_DTYPE_F32, ndim, shape, scale));
    llmq_status st = llmq_tensor_create(L->ctx, LLMQ_DTYPE_S32, ndim, shape, zp);
    const llmq_qgrid g = llmq_scheme_grid(s);
    float *sv = (*scale)->data;
    int32_t *zv = *zp != NULL ? (*zp)->data : NULL;
    char key[48];
    for (int64_t i = 0; i < n && st == LLMQ_OK; i++) {
        const yaml_node_t *item = yaml_document_get_node(L->doc, sn->data.sequence.items.start[i]);
        snprintf(key, sizeof key, "scale[%lld]", (long long)i);
        st = expect(L, item, YAML_SCALAR_NODE, key);
        if (st != LLMQ_OK) break;
        const char *t = text(item);
        char *end;
        sv[i] = strtof(t, &end);
        if (t[0] == '\0' || *end != '\0' || t[0] == ' ')
            st = bad(L, item->start_mark, key, "\"%.40s\" is not a number", t);
        else if (llmq_qtable_scale_problem(sv[i]) != NULL)
            st = bad(L, item->start_mark, key, "%.40s %s", t, llmq_qtable_scale_problem(sv[i]));
    }
    for (int64_t i = 0; i < n && st == LLMQ_OK; i++) {
        const yaml_node_t *item = yaml_document_get_node(L->doc, zn->data.sequence.items.start[i]);
        snprintf(key, sizeof key, "zero_point[%lld]", (long long)i);
        long long x;
        st = parse_int(L, item, key, g.qmin, g.qmax, &x);
        if (st == LLMQ_OK) zv[i] = (int32_t)x;
    }
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(*scale);
        llmq_tensor_destroy(*zp);
        *scale = *zp = NULL;
    }
    return st;
}

static llmq_status load_entry(const loader *L, llmq_qtable *table, const yaml_node_t *name,
                              const yaml_node_t *entry)
{
    LLMQ_TRY(expect(L, name, YAML_SCALAR_NODE, "tensors"));
    const char *nm = text(name);
    const size_t len = strlen(nm);
    if (len == 0 || len > LLMQ_QTABLE_NAME_MAX || len != name->data.scalar.length)
        return bad(L, name->start_mark, "tensors", "tensor names are 1 to %d bytes without NUL",
                   LLMQ_QTABLE_NAME_MAX);
    if (llmq_qtable_find(table, nm) >= 0)
        return bad(L, name->start_mark, nm, "duplicate tensor name");
    LLMQ_TRY(expect(L, entry, YAML_MAPPING_NODE, nm));
    yaml_node_t *v[K_COUNT], *k[K_COUNT];
    LLMQ_TRY(mapping_keys(L, entry, nm, entry_keys, K_COUNT, v, k));
    llmq_scheme s;
    llmq_tensor *scale = NULL, *zp = NULL;
    LLMQ_TRY(parse_scheme(L, v, entry, &s));
    LLMQ_TRY(parse_params(L, v, &s, &scale, &zp));
    const llmq_status st = llmq_qtable_put(L->ctx, "llmq_qtable_load", table, nm, &s, scale, zp);
    llmq_tensor_destroy(scale);
    llmq_tensor_destroy(zp);
    return st;
}

static llmq_status load_root(const loader *L, llmq_qtable *table)
{
    const yaml_node_t *root = yaml_document_get_root_node(L->doc);
    if (root == NULL) {
        const yaml_mark_t start = {0, 0, 0};
        return bad(L, start, "format", "missing (the file holds no YAML document)");
    }
    LLMQ_TRY(expect(L, root, YAML_MAPPING_NODE, "document"));
    static const char *const keys[] = {"format", "version", "tensors"};
    yaml_node_t *v[3], *k[3];
    LLMQ_TRY(mapping_keys(L, root, "the table", keys, 3, v, k));
    for (int i = 0; i < 3; i++)
        if (v[i] == NULL) return bad(L, root->start_mark, keys[i], "missing");
    LLMQ_TRY(expect(L, v[0], YAML_SCALAR_NODE, "format"));
    if (strcmp(text(v[0]), FORMAT_NAME) != 0)
        return bad(L, v[0]->start_mark, "format", "\"%.40s\": this is not an %s file", text(v[0]),
                   FORMAT_NAME);
    long long version;
    LLMQ_TRY(parse_int(L, v[1], "version", LLONG_MIN, LLONG_MAX, &version));
    if (version != LLMQ_QTABLE_VERSION)
        return bad(L, v[1]->start_mark, "version",
                   "%lld is not supported (this llmq reads version %d)", version,
                   LLMQ_QTABLE_VERSION);
    const yaml_node_t *tensors = v[2];
    LLMQ_TRY(expect(L, tensors, YAML_MAPPING_NODE, "tensors"));
    for (yaml_node_pair_t *pr = tensors->data.mapping.pairs.start;
         pr < tensors->data.mapping.pairs.top; pr++)
        LLMQ_TRY(load_entry(L, table, yaml_document_get_node(L->doc, pr->key),
                            yaml_document_get_node(L->doc, pr->value)));
    return LLMQ_OK;
}

/* A libyaml parser failure as an llmq status and message. */
static llmq_status parser_failure(const loader *L, const yaml_parser_t *p, FILE *f)
{
    if (p->error == YAML_MEMORY_ERROR)
        return llmq_fail(L->ctx, LLMQ_ERR_OUT_OF_MEMORY, "llmq_qtable_load",
                         "path=%s: out of memory while parsing", L->path);
    if (p->error == YAML_READER_ERROR && ferror(f))
        return llmq_fail(L->ctx, LLMQ_ERR_IO, "llmq_qtable_load", "path=%s: read error: %s",
                         L->path, p->problem != NULL ? p->problem : "unknown");
    const yaml_mark_t mark = p->error == YAML_READER_ERROR
                                 ? (yaml_mark_t){p->problem_offset, p->mark.line, p->mark.column}
                                 : p->problem_mark;
    return bad(L, mark, "syntax", "%s%s%s", p->problem != NULL ? p->problem : "invalid YAML",
               p->context != NULL ? " " : "", p->context != NULL ? p->context : "");
}

llmq_status llmq_qtable_load(llmq_context *ctx, const char *path, llmq_qtable **out)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, out != NULL, "out=NULL: must point to a table pointer");
    *out = NULL;
    LLMQ_REQUIRE(ctx, path != NULL, "path=NULL: must name a file");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return llmq_fail(ctx, LLMQ_ERR_IO, __func__, "path=%s: cannot open: %s", path,
                         strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    loader L = {ctx, path, &doc};
    llmq_qtable *table = NULL;
    llmq_status st = llmq_qtable_create(ctx, &table);
    bool have_doc = false;
    c_locale loc;
    const bool in_c = st == LLMQ_OK && c_locale_enter(&loc);
    if (st == LLMQ_OK && !in_c)
        st = llmq_fail(ctx, LLMQ_ERR_OUT_OF_MEMORY, __func__, "path=%s: no C locale", path);
    if (st == LLMQ_OK && !yaml_parser_initialize(&parser))
        st = llmq_fail(ctx, LLMQ_ERR_OUT_OF_MEMORY, __func__, "path=%s: out of memory", path);
    else if (st == LLMQ_OK) {
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &doc)) {
            st = parser_failure(&L, &parser, f);
        } else {
            have_doc = true;
            st = load_root(&L, table);
            if (st == LLMQ_OK && doc.end_implicit)
                st = bad(&L, doc.end_mark, "document",
                         "no end marker \"...\": the file is truncated (llmq_qtable_save ends "
                         "every table with one)");
            /* a table is one document: anything after it is an error */
            if (st == LLMQ_OK) {
                if (!yaml_parser_load(&parser, &extra)) {
                    st = parser_failure(&L, &parser, f);
                } else {
                    const yaml_node_t *r = yaml_document_get_root_node(&extra);
                    if (r != NULL)
                        st = bad(&L, r->start_mark, "document", "a second YAML document");
                    yaml_document_delete(&extra);
                }
            }
        }
        yaml_parser_delete(&parser);
    }
    if (in_c) c_locale_leave(&loc);
    if (have_doc) yaml_document_delete(&doc);
    fclose(f);
    if (st != LLMQ_OK) {
        llmq_qtable_destroy(table);
        return st;
    }
    *out = table;
    return LLMQ_OK;
}
