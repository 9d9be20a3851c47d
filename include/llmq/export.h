/* llmq/export.h - symbol visibility and attribute macros. SPDX-License-Identifier: MIT */
#ifndef LLMQ_EXPORT_H
#define LLMQ_EXPORT_H

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
