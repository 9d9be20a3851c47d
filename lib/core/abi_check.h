/* abi_check.h - validation of size-versioned structs (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_CORE_ABI_CHECK_H
#define LLMQ_CORE_ABI_CHECK_H

#include <stddef.h>

#include "llmq/status.h"

/* A caller-compiled struct of caller_size bytes is acceptable when it is at least as large as
 * the first version (v1_size), at most 4096 bytes, and every byte from `known` (the offset of
 * the reserved tail as this library knows it) to caller_size is zero: older callers get
 * defaults for the fields they lack, newer callers must leave fields unknown here at zero. */
llmq_status llmq_abi_check(const void *p, size_t caller_size, size_t v1_size, size_t known);

#endif
