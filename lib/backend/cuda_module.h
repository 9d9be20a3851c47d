/* cuda_module.h - the handshake between libllmq and the loadable CUDA module
 * libllmq-cuda.so (internal, never installed). SPDX-License-Identifier: MIT
 *
 * The module is built from the same tree as the library and shares the job structs of
 * backend/backend.h, so the loader rejects a module whose idea of those structs differs: the
 * ABI number and the sizes of the shared structs must all match. */
#ifndef LLMQ_BACKEND_CUDA_MODULE_H
#define LLMQ_BACKEND_CUDA_MODULE_H

#include <stdint.h>

#include "backend/backend.h"

/* Bumped whenever the meaning of a shared struct or slot changes without changing its size. */
#define LLMQ_CUDA_MODULE_ABI 2

/* The one symbol the module exports (extern "C", default visibility). */
#define LLMQ_CUDA_MODULE_ENTRY "llmq_cuda_module_entry"

typedef struct llmq_cuda_module_info {
    uint32_t abi;                 /* LLMQ_CUDA_MODULE_ABI */
    uint32_t backend_ops_version; /* LLMQ_BACKEND_OPS_VERSION */
    uint32_t sizeof_ops;          /* sizeof(llmq_backend_ops) */
    uint32_t sizeof_quant_job;    /* sizeof(llmq_quant_job) */
    uint32_t sizeof_matmul_job;   /* sizeof(llmq_matmul_job) */
    uint32_t sizeof_fq_job;       /* sizeof(llmq_fq_job) (since ABI 2) */
    const llmq_backend_ops *ops;  /* the module's table */
    const char *archs;            /* compiled SM architectures, e.g. "75 80 86 89 90" */
} llmq_cuda_module_info;

typedef const llmq_cuda_module_info *(*llmq_cuda_module_entry_fn)(void);

#endif
