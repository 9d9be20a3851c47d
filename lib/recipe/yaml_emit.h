/* yaml_emit.h - libyaml emitter helpers shared by the YAML writers of lib/recipe (internal).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_RECIPE_YAML_EMIT_H
#define LLMQ_RECIPE_YAML_EMIT_H

#include <stdbool.h>

#include <yaml.h>

/* An emitter that remembers the first failure: after it, every call is a no-op. */
typedef struct llmq_yaml_writer {
    yaml_emitter_t em;
    bool ok;
} llmq_yaml_writer;

/* Emit an initialized event. */
void llmq_yaml_emit(llmq_yaml_writer *w, yaml_event_t *ev);
void llmq_yaml_scalar(llmq_yaml_writer *w, const char *value, yaml_scalar_style_t style);
/* A plain key and a plain value. */
void llmq_yaml_pair(llmq_yaml_writer *w, const char *key, const char *value);
void llmq_yaml_int_pair(llmq_yaml_writer *w, const char *key, long long value);
/* Start or end a mapping or a sequence, in flow or block style. */
void llmq_yaml_collection(llmq_yaml_writer *w, bool start, bool mapping, bool flow);

#endif
