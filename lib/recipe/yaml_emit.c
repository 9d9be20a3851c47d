/* yaml_emit.c - libyaml emitter helpers shared by the YAML writers of lib/recipe.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "recipe/yaml_emit.h"

void llmq_yaml_emit(llmq_yaml_writer *w, yaml_event_t *ev)
{
    if (w->ok && !yaml_emitter_emit(&w->em, ev)) w->ok = false;
}

void llmq_yaml_scalar(llmq_yaml_writer *w, const char *value, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!w->ok) return;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)value, (int)strlen(value), 1,
                                      1, style)) {
        w->ok = false;
        return;
    }
    llmq_yaml_emit(w, &ev);
}

void llmq_yaml_pair(llmq_yaml_writer *w, const char *key, const char *value)
{
    llmq_yaml_scalar(w, key, YAML_PLAIN_SCALAR_STYLE);
    llmq_yaml_scalar(w, value, YAML_PLAIN_SCALAR_STYLE);
}

void llmq_yaml_int_pair(llmq_yaml_writer *w, const char *key, long long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    llmq_yaml_pair(w, key, buf);
}

void llmq_yaml_collection(llmq_yaml_writer *w, bool start, bool mapping, bool flow)
{
    yaml_event_t ev;
    if (!w->ok) return;
    int made;
    if (mapping)
        made = start ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                           flow ? YAML_FLOW_MAPPING_STYLE
                                                                : YAML_BLOCK_MAPPING_STYLE)
                     : yaml_mapping_end_event_initialize(&ev);
    else
        made = start ? yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                            flow ? YAML_FLOW_SEQUENCE_STYLE
                                                                 : YAML_BLOCK_SEQUENCE_STYLE)
                     : yaml_sequence_end_event_initialize(&ev);
    if (!made) {
        w->ok = false;
        return;
    }
    llmq_yaml_emit(w, &ev);
}
