/* llmq/model.h - model files: safetensors in and out, llama2.c checkpoints in.
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_MODEL_H
#define LLMQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/export.h"
#include "llmq/status.h"
#include "llmq/tensor.h"

/** @file
 * Model files: safetensors and llama2.c checkpoints read tensor by tensor, safetensors
 * written with quantized tensors (docs/models.md). */

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An opened model file, memory-mapped and read tensor by tensor. Read-only: any number of
 * threads may read tensors of one model through their own contexts (@thread read-shared), as
 * long as none destroys it.
 */
typedef struct llmq_model llmq_model;

/** A safetensors file being written; the output appears only when finished. */
typedef struct llmq_model_writer llmq_model_writer;

/** File formats llmq reads. */
typedef enum llmq_model_format {
    LLMQ_MODEL_FORMAT_SAFETENSORS = 0, /**< Hugging Face safetensors (docs/models.md) */
    LLMQ_MODEL_FORMAT_LLAMA2C = 1,     /**< llama2.c checkpoint (karpathy/llama2.c, version 0) */
    LLMQ_MODEL_FORMAT_FORCE32_ = 0x7fffffff
} llmq_model_format;

/**
 * Open a model file: safetensors or a llama2.c checkpoint, recognised by content. The file is
 * memory-mapped; every header field, offset, size and shape is validated before this returns
 * (overlaps, out-of-range offsets, sizes that disagree with shapes, a header larger than
 * 100 MB or than the file, integer overflow, duplicate names).
 * llama2.c tensors are named like Meta's checkpoints: `tok_embeddings.weight`,
 * `layers.<i>.attention.wq.weight` (wk, wv, wo), `layers.<i>.attention_norm.weight`,
 * `layers.<i>.feed_forward.w1.weight` (w2, w3), `layers.<i>.ffn_norm.weight`, `norm.weight`,
 * `output.weight` (shared with the embedding when the file says so); the hyper-parameters are
 * metadata `llama2c.dim`, `llama2c.hidden_dim`, `llama2c.n_layers`, `llama2c.n_heads`,
 * `llama2c.n_kv_heads`, `llama2c.vocab_size`, `llama2c.seq_len`, `llama2c.shared_classifier`.
 * @param ctx   context for the allocations and messages; must outlive the model
 * @param path  borrowed for the call
 * @param out   receives the model; NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_IO (cannot open or map: the message names the path and the system
 *         error); LLMQ_ERR_PARSE (malformed: the message names the field and why);
 *         LLMQ_ERR_INVALID_ARG (NULL); LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_open(llmq_context *ctx, const char *path,
                                                    llmq_model **out);

/** Unmap and free a model; tensors obtained from it must be destroyed first. NULL is a no-op.
 *  @param m  the model; invalid afterwards @thread exclusive on m @since 0.2 */
LLMQ_API void llmq_model_destroy(llmq_model *m);

/** Format of an opened model. @param m  NULL allowed @return the format (SAFETENSORS for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API llmq_model_format llmq_model_get_format(const llmq_model *m);

/** Number of tensors in the file, including the `.scale` / `.zero_point` companions of
 *  quantized tensors. @param m  NULL allowed @return the count (0 for NULL)
 *  @thread read-shared @since 0.2 */
LLMQ_API int64_t llmq_model_tensor_count(const llmq_model *m);

/** Name of tensor @p index in file order. @param m  NULL allowed @param index  0..count-1
 *  @return the name, owned by the model; NULL when out of range @thread read-shared
 *  @since 0.2 */
LLMQ_API const char *llmq_model_tensor_name(const llmq_model *m, int64_t index);

/**
 * Element type of tensor @p index as the file spells it ("F32", "BF16", "I64", ...; for
 * llama2.c always "F32").
 * @param m  the model; NULL allowed
 * @param index  0..count-1
 * @return the name, owned by the model; NULL when out of range
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API const char *llmq_model_tensor_file_dtype(const llmq_model *m, int64_t index);

/**
 * Stored shape of tensor @p index (packed bytes for quantized sub-byte data).
 * @param m      the model
 * @param index  0..count-1
 * @param ndim   receives the number of dimensions (the file may have more than LLMQ_MAX_DIMS)
 * @param shape  receives up to @p capacity sizes; may be NULL when capacity is 0
 * @param capacity  number of sizes @p shape can hold
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, index out of range; no message: there is no
 *         context)
 * @thread read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_tensor_shape(const llmq_model *m, int64_t index,
                                                            int32_t *ndim, int64_t *shape,
                                                            int32_t capacity);

/**
 * Get tensor @p name as an llmq tensor that views the mapped file (no copy, unless the data is
 * misaligned for its dtype). Tensors written by llmq with a scheme come back in their logical
 * dtype and shape (e.g. u4 [4096, 4096]) with the scheme and parameters bound, ready for
 * llmq_dequantize() or llmq_matmul(). The view is copy-on-write: writing to it never changes
 * the file. Destroy it before the model.
 * @param ctx   context of the new tensor; must outlive it
 * @param m     the model; must outlive the tensor
 * @param name  borrowed for the call
 * @param out   receives the tensor; NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_INVALID_ARG (NULL, unknown name: the message names it);
 *         LLMQ_ERR_UNSUPPORTED (a file dtype llmq has no type for, more than LLMQ_MAX_DIMS
 *         dimensions or a zero-sized dimension); LLMQ_ERR_PARSE (bad llmq metadata);
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive; the model is read-shared
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_tensor(llmq_context *ctx, const llmq_model *m,
                                                      const char *name, llmq_tensor **out);

/**
 * Let the operating system drop the pages of tensor @p name from memory, as a streaming reader
 * does after it has used a tensor, so that memory stays bounded by what is in use. The pages
 * are read again from the file if the tensor is used later; views of it stay valid, but their
 * unsaved writes are lost.
 * @param ctx   context for messages
 * @param m     the model
 * @param name  the tensor; borrowed for the call
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, unknown name: the message names it)
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_evict(llmq_context *ctx, const llmq_model *m,
                                                     const char *name);

/** Number of metadata entries (`__metadata__` of safetensors; llama2.c: its hyper-parameters).
 *  @param m  NULL allowed @return the count (0 for NULL) @thread read-shared @since 0.2 */
LLMQ_API int64_t llmq_model_metadata_count(const llmq_model *m);

/** Key of metadata entry @p index. @param m  NULL allowed @param index  0..count-1
 *  @return the key, owned by the model; NULL when out of range @thread read-shared @since 0.2 */
LLMQ_API const char *llmq_model_metadata_key(const llmq_model *m, int64_t index);

/** Value of metadata entry @p index. @param m  NULL allowed @param index  0..count-1
 *  @return the value, owned by the model; NULL when out of range @thread read-shared
 *  @since 0.2 */
LLMQ_API const char *llmq_model_metadata_value(const llmq_model *m, int64_t index);

/** Value of metadata @p key. @param m  NULL allowed @param key  borrowed; NULL allowed
 *  @return the value, owned by the model; NULL when absent @thread read-shared @since 0.2 */
LLMQ_API const char *llmq_model_metadata(const llmq_model *m, const char *key);

/**
 * Start writing a safetensors file at @p path. Declare every tensor first
 * (llmq_model_writer_declare()), then write them in any order, then finish. The data goes to a
 * temporary file beside @p path, renamed over it only by llmq_model_writer_finish(); any
 * failure, or destroying an unfinished writer, removes it, so no partial output ever appears.
 * @param ctx   context for the allocations and messages; must outlive the writer
 * @param path  borrowed for the call
 * @param out   receives the writer; NULL on failure
 * @return LLMQ_OK; LLMQ_ERR_IO (the directory is not writable: message names the path);
 *         LLMQ_ERR_INVALID_ARG; LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_writer_create(llmq_context *ctx, const char *path,
                                                             llmq_model_writer **out);

/**
 * Add a `__metadata__` entry (before the first write). Keys starting with "llmq." are reserved.
 * @param ctx         the writer's context
 * @param w           the writer
 * @param key, value  UTF-8, copied
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, reserved or duplicate key), LLMQ_ERR_STATE
 *         (after the first write), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_writer_set_metadata(llmq_context *ctx,
                                                                   llmq_model_writer *w,
                                                                   const char *key,
                                                                   const char *value);

/**
 * Declare tensor @p name with @p dtype and logical @p shape. With a @p scheme (quantized dtypes
 * only), the file gets three entries: `name` as I8 (s8) or U8 (u8 and the packed sub-byte
 * dtypes: shape [rows..., ceil(cols * bits / 8)]), `name.scale` F32 and `name.zero_point` I32
 * in the scheme's parameter shape, plus metadata `llmq.scheme.<name>` (JSON: dtype, logical
 * shape, symmetry, granularity, axis, group size, rounding, numerics) and `llmq.format`.
 * Float, s8/u8 and s32 tensors without a scheme are stored as themselves.
 * @param ctx     the writer's context
 * @param w       the writer
 * @param name    copied; unique in the file
 * @param dtype   element type (logical)
 * @param ndim    1..LLMQ_MAX_DIMS
 * @param shape   ndim sizes, each >= 1; borrowed for the call
 * @param scheme  NULL, or the scheme of quantized data (copied)
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (NULL, duplicate name, bad shape, scheme/dtype
 *         mismatch, sub-byte dtype without a scheme), LLMQ_ERR_STATE (after the first write),
 *         LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_writer_declare(llmq_context *ctx,
                                                              llmq_model_writer *w,
                                                              const char *name, llmq_dtype dtype,
                                                              int32_t ndim, const int64_t *shape,
                                                              const llmq_scheme *scheme);

/**
 * Write the data of declared tensor @p name (with its parameters when it was declared with a
 * scheme). @p t must have the declared dtype and shape (and a scheme of the same settings).
 * @param ctx   the writer's context
 * @param w     the writer
 * @param name  a declared name
 * @param t     read during the call only
 * @return LLMQ_OK, LLMQ_ERR_INVALID_ARG (undeclared, already written, mismatch),
 *         LLMQ_ERR_IO (write failed; the writer is then unusable), LLMQ_ERR_OUT_OF_MEMORY
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_writer_write(llmq_context *ctx,
                                                            llmq_model_writer *w,
                                                            const char *name,
                                                            const llmq_tensor *t);

/**
 * Check that every declared tensor was written, flush to disk, and rename the temporary file
 * to the path given at creation.
 * @param ctx  the writer's context
 * @param w    the writer; destroy it afterwards
 * @return LLMQ_OK, LLMQ_ERR_STATE (a tensor was not written: the message names it),
 *         LLMQ_ERR_IO
 * @thread ctx-exclusive
 * @since 0.2
 */
LLMQ_API LLMQ_NODISCARD llmq_status llmq_model_writer_finish(llmq_context *ctx,
                                                             llmq_model_writer *w);

/** Destroy a writer; an unfinished output is removed. NULL is a no-op.
 *  @param w  the writer; invalid afterwards @thread exclusive on w @since 0.2 */
LLMQ_API void llmq_model_writer_destroy(llmq_model_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_MODEL_H */
