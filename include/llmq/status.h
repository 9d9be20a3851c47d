/* llmq/status.h - status codes returned by every fallible llmq function.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_STATUS_H
#define LLMQ_STATUS_H

#include "llmq/export.h"

/** @file
 * Status codes and their names. Rules common to every function, so that each function's
 * `@return` lists only its own causes:
 * - a function that takes a context returns LLMQ_ERR_INVALID_ARG, without a message, for a
 *   NULL context, and LLMQ_ERR_STATE for a context whose creation failed;
 * - every failure on a context leaves "function: argument=value: reason" for
 *   llmq_context_last_error(); success leaves the message as it was;
 * - outputs are written only on LLMQ_OK, unless the function says otherwise. */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Result of a fallible call. 0 is success. ABI: values are appended, never renumbered or
 * reused. docs/ERRORS.md gives each code's causes and remedies; a test keeps the two in sync.
 */
typedef enum llmq_status {
    LLMQ_OK = 0,                /**< success */
    LLMQ_ERR_INVALID_ARG = 1,   /**< caller bug; the message names the argument and reason */
    LLMQ_ERR_OUT_OF_MEMORY = 2, /**< an allocation failed; nothing was written */
    LLMQ_ERR_UNSUPPORTED = 3,   /**< valid request that this build or machine cannot serve */
    LLMQ_ERR_BACKEND = 4,       /**< device or driver failure; the message carries its name */
    LLMQ_ERR_IO = 5,            /**< reading or writing a file failed */
    LLMQ_ERR_PARSE = 6,         /**< malformed recipe, table or model file */
    LLMQ_ERR_STATE = 7,         /**< wrong call order, e.g. quantize before parameters exist */
    LLMQ_ERR_ABI = 8,           /**< bad `size` or non-zero `reserved` in a versioned struct */
    LLMQ_ERR_INTERNAL = 9,      /**< a bug in llmq; please report it */
    LLMQ_ERR_NON_FINITE = 10,   /**< NaN in the input; the message names the element index */
    LLMQ_STATUS_FORCE32_ = 0x7fffffff /* pins the enum to 32 bits for FFI */
} llmq_status;

/**
 * Name of a status, e.g. "LLMQ_ERR_INVALID_ARG".
 * @param status any value; unknown values give "LLMQ_ERR_UNKNOWN"
 * @return a static string, never NULL
 * @thread reentrant
 * @since 0.1
 */
LLMQ_API const char *llmq_status_name(llmq_status status);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_STATUS_H */
