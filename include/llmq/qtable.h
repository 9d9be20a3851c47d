/* llmq/qtable.h - tables of quantization parameters (tensor name -> scheme, scales, zero
 * points), saved and loaded as YAML. SPDX-License-Identifier: MIT */
#ifndef LLMQ_QTABLE_H
#define LLMQ_QTABLE_H

#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/scheme.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Tables of quantization parameters: tensor name -> scheme, scales and zero points, e.g. the
 * results of calibration (llmq/quantizer.h), saved and loaded as YAML. The file format
 * (docs/calibration.md) carries a format name and a schema version; floats are written so that
 * they read back bit-exactly, and save -> load -> save gives identical bytes. */

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque table: entries in insertion (or file) order, each a name, a scheme copy and its
 *  scale (F32) and zero-point (S32) tensors. */
typedef struct llmq_qtable llmq_qtable;

/**
 * Create an empty table.
 * @param ctx  context for memory and messages; must outlive the table
 * @param out  receives the table; NULL on failure
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_create(llmq_context *ctx, llmq_qtable **out);

/** Destroy a table and its entries; NULL is a no-op.
 *  @param table  the table; invalid afterwards, and so is everything llmq_qtable_get() and
 *                llmq_qtable_name_at() returned
 *  @thread exclusive on table
 *  @since 0.2 */
LLMQ_API void llmq_qtable_destroy(llmq_qtable *table);

/**
 * Add the entry @p name, or replace it: copies of the scheme and of the parameter tensors,
 * e.g. llmq_quantizer_scheme(q), llmq_quantizer_scale(q), llmq_quantizer_zero_point(q), or
 * the same from a quantized tensor (llmq_tensor_scheme(), ...). Replacing an entry invalidates
 * what llmq_qtable_get() returned for it.
 * @param ctx         context for messages (the table's memory comes from its own context)
 * @param table       the table
 * @param name        non-empty UTF-8, at most 4096 bytes; copied
 * @param scheme      borrowed for the call (the entry keeps a copy)
 * @param scale       borrowed for the call (copied); F32, shaped [1] per tensor, [n] per channel or token, [rows, groups] per
 *                    group; every value a positive normal float
 * @param zero_point  borrowed for the call (copied); S32, shaped as scale; every value on the
 *                    scheme's grid
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, bad name, dtypes, shapes, values: the message
 *         names the index); LLMQ_ERR_OUT_OF_MEMORY (table unchanged)
 * @thread ctx-exclusive, exclusive on table
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_set(llmq_context *ctx, llmq_qtable *table,
                                                    const char *name, const llmq_scheme *scheme,
                                                    const llmq_tensor *scale,
                                                    const llmq_tensor *zero_point);

/**
 * Look up the entry @p name. The results are owned by the table and live until the entry is
 * replaced or the table destroyed. Any output pointer may be NULL if not wanted.
 * @param ctx         context for messages
 * @param table       the table
 * @param name        the entry's name; borrowed for the call
 * @param scheme      NULL, or receives the entry's scheme (never destroy it)
 * @param scale       NULL, or receives its F32 scale tensor (never destroy or write it)
 * @param zero_point  NULL, or receives its S32 zero-point tensor (never destroy or write it)
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL table or name, no such entry); outputs are NULL
 *         on failure
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_get(llmq_context *ctx, const llmq_qtable *table,
                                                    const char *name, const llmq_scheme **scheme,
                                                    const llmq_tensor **scale,
                                                    const llmq_tensor **zero_point);

/**
 * Bind the entry @p name to the quantized tensor @p dst (its scheme and parameter values), as
 * llmq_quantizer_apply() does.
 * @param ctx    context for messages; dst's context
 * @param table  the table; only read
 * @param name   the entry's name; borrowed for the call
 * @param dst    a tensor of the entry's dtype whose parameter layout matches the entry's
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, no such entry, dtype or parameter layout of
 *         dst differs); LLMQ_ERR_OUT_OF_MEMORY (dst unchanged)
 * @thread ctx-exclusive, exclusive on dst
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_apply(llmq_context *ctx, const llmq_qtable *table,
                                                      const char *name, llmq_tensor *dst);

/** Number of entries. @param table  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int64_t llmq_qtable_count(const llmq_qtable *table);

/** Name of entry @p index, in insertion (or file) order. @param table  NULL allowed
 *  @param index  0..count-1 @return the name, owned by the table; NULL when out of range
 *  @thread read-shared @since 0.2 */
LLMQ_API const char *llmq_qtable_name_at(const llmq_qtable *table, int64_t index);

/**
 * Write the table as YAML to @p path: to a temporary file in the same directory, renamed over
 * @p path on success, so that a failure never leaves a partial file.
 * @param ctx    context for messages and scratch memory
 * @param table  the table; only read
 * @param path   the file to write (replaced if it exists); borrowed for the call
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL); LLMQ_ERR_IO (the file cannot be created,
 *         written or renamed: the message names the path and the system's reason);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive (read-shared on table)
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_save(llmq_context *ctx, const llmq_qtable *table,
                                                     const char *path);

/**
 * Read a table written by llmq_qtable_save() (or by hand). Every field is validated; unknown
 * keys, unknown versions, duplicate names or keys, wrong types, missing keys, scales or zero
 * points that llmq_qtable_set() would refuse, and a missing end marker `...` (how a truncated
 * file is told from a shorter table) are errors whose message reads
 * `path:line:column: key: reason`.
 * @param ctx   context for memory and messages; must outlive the table
 * @param path  the file to read; borrowed for the call
 * @param out   receives the table (destroy it with llmq_qtable_destroy()); NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL); LLMQ_ERR_IO (cannot open or read path);
 *         LLMQ_ERR_PARSE (YAML syntax or validation); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_qtable_load(llmq_context *ctx, const char *path,
                                                     llmq_qtable **out);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_QTABLE_H */
