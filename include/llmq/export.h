/* llmq/export.h - symbol visibility and attribute macros. SPDX-License-Identifier: MIT */
/** @file
 * Symbol visibility and attribute macros of the declarations (no functions). */
#ifndef LLMQ_EXPORT_H
#define LLMQ_EXPORT_H

/** @def LLMQ_API
 * Marks a declaration exported by libllmq (default visibility; dllexport when building the
 * library on Windows). Expands to nothing for compilers without attributes.
 * @since 0.1 */

/** @def LLMQ_NODISCARD
 * Makes the compiler warn when the caller ignores the returned llmq_status
 * (`warn_unused_result`). Expands to nothing for compilers without attributes.
 * @since 0.1 */

/* Only declarations marked LLMQ_API are exported from libllmq; the library is built with
 * -fvisibility=hidden and lib/llmq.map lists the same names (a test proves they agree). */
#if defined(_WIN32) && defined(LLMQ_BUILDING_LIBRARY)
#define LLMQ_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define LLMQ_API __attribute__((visibility("default")))
#else
#define LLMQ_API
#endif

/* Warn when a caller ignores a returned status. */
#if defined(__GNUC__) || defined(__clang__)
#define LLMQ_NODISCARD __attribute__((warn_unused_result))
#else
#define LLMQ_NODISCARD
#endif

#endif /* LLMQ_EXPORT_H */
