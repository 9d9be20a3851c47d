/* cuda_loader.c - find, check and open the CUDA module libllmq-cuda.so with dlopen, so that
 * libllmq itself never links CUDA. SPDX-License-Identifier: MIT
 *
 * Order of the checks, each with its own message: the module file ($LLMQ_CUDA_MODULE, else
 * next to libllmq, else the loader's search path), the driver (libcuda.so.1, probed before the
 * module runs any CUDA code, so machines without a driver never initialise the runtime), the
 * module's handshake (ABI and struct sizes), then the module's own open (device, tier). */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cuda_module.h"

#define MODULE_NAME "libllmq-cuda.so"

/* Directory of the object that holds this function (libllmq.so, or the program that linked
 * the static library), with a trailing '/'; "" if unknown. */
static void own_dir(char *buf, size_t size)
{
    Dl_info info;
    buf[0] = '\0';
    if (dladdr((void *)own_dir, &info) == 0 || info.dli_fname == NULL)
        return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash == NULL)
        return;
    const size_t n = (size_t)(slash - info.dli_fname) + 1;
    if (n < size) {
        memcpy(buf, info.dli_fname, n);
        buf[n] = '\0';
    }
}

/* dlopen flags: RTLD_NODELETE keeps the module (and its statically linked CUDA runtime, whose
 * exit handlers point into it) mapped after the last dlclose. */
#define OPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)

/* The driver library loads (kept mapped: the runtime will load it again). */
static bool driver_present(char *why, size_t why_size)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        snprintf(why, why_size, "no CUDA driver: libcuda.so.1 cannot be loaded");
        return false;
    }
    dlclose(h);
    return true;
}

/* Resolve and open the module file; on failure the message lists the paths tried. */
static void *open_module(char *why, size_t why_size)
{
    const char *env = getenv("LLMQ_CUDA_MODULE");
    if (env != NULL && env[0] != '\0') {
        if (access(env, R_OK) != 0) {
            snprintf(why, why_size, "module not found: LLMQ_CUDA_MODULE=%s is not readable",
                     env);
            return NULL;
        }
        if (!driver_present(why, why_size))
            return NULL;
        void *h = dlopen(env, OPEN_FLAGS);
        if (h == NULL)
            snprintf(why, why_size, "module LLMQ_CUDA_MODULE=%s: %s", env, dlerror());
        return h;
    }
    char dir[4096], path[4200];
    own_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s%s", dir, MODULE_NAME);
    const int beside = dir[0] != '\0' && access(path, R_OK) == 0;
    if (!driver_present(why, why_size))
        return NULL;
    void *h = dlopen(beside ? path : MODULE_NAME, OPEN_FLAGS);
    if (h == NULL)
        snprintf(why, why_size,
                 "module not found: tried %s and %s on the library search path (set "
                 "LLMQ_CUDA_MODULE to its path; a build without nvcc has no module)",
                 dir[0] != '\0' ? path : "(libllmq's own directory unknown)", MODULE_NAME);
    return h;
}

llmq_status llmq_cuda_load(llmq_backend *be, void **module, char *why, size_t why_size)
{
    *module = NULL;
    be->ops = NULL;
    be->state = NULL;
    void *h = open_module(why, why_size);
    if (h == NULL)
        return LLMQ_ERR_UNSUPPORTED;
    llmq_cuda_module_entry_fn entry;
    void *sym = dlsym(h, LLMQ_CUDA_MODULE_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as POSIX allows */
    const llmq_cuda_module_info *info = entry != NULL ? entry() : NULL;
    if (info == NULL || info->abi != LLMQ_CUDA_MODULE_ABI ||
        info->backend_ops_version != LLMQ_BACKEND_OPS_VERSION ||
        info->sizeof_ops != sizeof(llmq_backend_ops) ||
        info->sizeof_quant_job != sizeof(llmq_quant_job) ||
        info->sizeof_matmul_job != sizeof(llmq_matmul_job) ||
        info->sizeof_fq_job != sizeof(llmq_fq_job) || info->ops == NULL ||
        info->ops->open == NULL) {
        snprintf(why, why_size,
                 "module ABI mismatch: %s (abi %u, ops %u bytes) was built from another llmq "
                 "(this one: abi %u, ops %zu bytes)",
                 MODULE_NAME, info != NULL ? info->abi : 0u,
                 info != NULL ? info->sizeof_ops : 0u, (unsigned)LLMQ_CUDA_MODULE_ABI,
                 sizeof(llmq_backend_ops));
        dlclose(h);
        return LLMQ_ERR_UNSUPPORTED;
    }
    be->ops = info->ops;
    const llmq_status st = info->ops->open(be, why, why_size);
    if (st != LLMQ_OK) {
        be->ops = NULL;
        be->state = NULL;
        dlclose(h);
        return st;
    }
    *module = h;
    return LLMQ_OK;
}

void llmq_cuda_unload(llmq_backend *be, void *module)
{
    if (be->ops != NULL && be->ops->close != NULL)
        be->ops->close(be);
    be->state = NULL;
    if (module != NULL)
        dlclose(module);
}
