/* qtable_impl.h - the parameter table's private layout (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CALIB_QTABLE_IMPL_H
#define LLMQ_CALIB_QTABLE_IMPL_H

#include <stdint.h>

#include "llmq/qtable.h"
#include "quant/scheme_impl.h"

#define LLMQ_QTABLE_NAME_MAX 4096
#define LLMQ_QTABLE_VERSION 1

typedef struct llmq_qtable_entry {
    char *name;
    llmq_scheme scheme;
    llmq_tensor *scale, *zero_point; /* packed, owned */
} llmq_qtable_entry;

struct llmq_qtable {
    llmq_context *ctx;
    llmq_qtable_entry *entries;
    int64_t count, capacity;
};

/* Validate, copy and insert (or replace) an entry; messages are written by `fn`. */
llmq_status llmq_qtable_put(llmq_context *ctx, const char *fn, llmq_qtable *table, const char *name,
                            const llmq_scheme *scheme, const llmq_tensor *scale,
                            const llmq_tensor *zero_point);

/* Index of the entry `name`, or -1. */
int64_t llmq_qtable_find(const llmq_qtable *table, const char *name);

/* Reason why parameter shape [ndim: shape] cannot go with granularity g, or NULL. */
const char *llmq_qtable_shape_problem(llmq_granularity g, int32_t ndim, const int64_t *shape);

/* Reason why a scale value is refused, or NULL: a positive normal float is required. */
const char *llmq_qtable_scale_problem(float scale);

#endif
