/* llmq/version.h - compile-time version and its run-time twins. SPDX-License-Identifier: MIT */
#ifndef LLMQ_VERSION_H
#define LLMQ_VERSION_H

#include <stdint.h>

#include "llmq/export.h"

/** @file
 * Compile-time version of the headers and run-time version of the loaded library. */

#ifdef __cplusplus
extern "C" {
#endif

/** Major version of these headers (changes for a deliberate ABI break; docs/ABI.md). */
#define LLMQ_VERSION_MAJOR 0
/** Minor version of these headers (grows with each release that adds API). */
#define LLMQ_VERSION_MINOR 1
/** Patch version of these headers (fixes only). */
#define LLMQ_VERSION_PATCH 0
/** MAJOR * 10000 + MINOR * 100 + PATCH, comparable with `>=`. */
#define LLMQ_VERSION_NUMBER                                                                    \
    (LLMQ_VERSION_MAJOR * 10000 + LLMQ_VERSION_MINOR * 100 + LLMQ_VERSION_PATCH)
/** The version of these headers as text, "MAJOR.MINOR.PATCH". */
#define LLMQ_VERSION_STRING "0.1.0"

/**
 * Version of the library actually loaded, as LLMQ_VERSION_NUMBER.
 * Compare with LLMQ_VERSION_NUMBER to detect a header/library mismatch.
 * @return MAJOR * 10000 + MINOR * 100 + PATCH
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API uint32_t llmq_version_number(void);

/**
 * Version of the library actually loaded, e.g. "0.1.0".
 * @return a static string, never NULL
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API const char *llmq_version_string(void);

/**
 * What this build of the library contains, one `key: value` line each: version, compiled
 * backends, CPU instruction sets with kernels, CUDA architectures in the CUDA module, compiler.
 * @return a static string, never NULL
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API const char *llmq_build_info(void);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_VERSION_H */
