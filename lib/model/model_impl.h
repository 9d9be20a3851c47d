/* model_impl.h - opened model files (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_MODEL_IMPL_H
#define LLMQ_MODEL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmq/model.h"

/* The most dimensions a file entry may have; llmq tensors take up to LLMQ_MAX_DIMS. */
#define LLMQ_MODEL_MAX_DIMS 8

typedef struct llmq_model_entry {
    char *name;
    char file_dtype[8];   /* as the file spells it */
    bool known;           /* file_dtype maps to an llmq dtype */
    llmq_dtype dtype;
    int32_t ndim;
    int64_t shape[LLMQ_MODEL_MAX_DIMS];
    uint64_t begin, end;  /* byte range inside the data section */
} llmq_model_entry;

struct llmq_model {
    llmq_context *ctx;
    llmq_model_format format;
    void *map;
    size_t map_size;
    bool owns_map; /* mapped by llmq_model_open: unmapped on destroy */
    const uint8_t *data; /* start of the data section inside the map */
    uint64_t data_size;
    llmq_model_entry *entries;
    int64_t count, entries_cap;
    char **meta; /* key, value, key, value, ... */
    int64_t meta_count, meta_cap;
};

/* A model over `size` bytes at buf (a map owned by the model when owns_map, else borrowed and
 * writable for copy-on-write views): format detection and validation. Used by llmq_model_open
 * and by the fuzz harness. */
llmq_status llmq_model_from_memory(llmq_context *ctx, const char *fn, void *buf, size_t size,
                                   bool owns_map, const char *name, llmq_model **out);

/* The file's name for a dtype, and back; false for names llmq has no dtype for. */
const char *llmq_model_file_dtype_name(llmq_dtype dtype);
bool llmq_model_dtype_from_file(const char *name, llmq_dtype *dtype);

/* Bytes per element of a file dtype name, 0 when unknown (all safetensors dtypes are
 * whole bytes). */
uint64_t llmq_model_file_dtype_size(const char *name);

/* Parse the format's header from the map (m->map, m->map_size already set) into entries and
 * metadata. fn and path are for messages. */
llmq_status llmq_safetensors_parse(llmq_model *m, const char *fn, const char *path);
llmq_status llmq_llama2c_parse(llmq_model *m, const char *fn, const char *path);

/* Add one metadata pair / one entry, copying strings through the context allocator. */
llmq_status llmq_model_add_meta(llmq_model *m, const char *fn, const char *key,
                                const char *value);
llmq_status llmq_model_add_entry(llmq_model *m, const char *fn, const llmq_model_entry *e);

/* The JSON of `llmq.scheme.<name>`: scheme settings plus the logical shape. */
char *llmq_scheme_to_json(llmq_context *ctx, const llmq_scheme *s, int32_t ndim,
                          const int64_t *shape);
llmq_status llmq_scheme_from_json(llmq_context *ctx, const char *fn, const char *json,
                                  llmq_scheme **scheme, int32_t *ndim, int64_t *shape);

/* Duplicate a string through the context allocator; NULL on OOM. */
char *llmq_strdup(llmq_context *ctx, const char *s);

#endif
