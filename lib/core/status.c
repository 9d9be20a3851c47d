/* status.c - names of status codes. SPDX-License-Identifier: MIT */
#include "llmq/status.h"

const char *llmq_status_name(llmq_status status)
{
    switch (status) {
    case LLMQ_OK: return "LLMQ_OK";
    case LLMQ_ERR_INVALID_ARG: return "LLMQ_ERR_INVALID_ARG";
    case LLMQ_ERR_OUT_OF_MEMORY: return "LLMQ_ERR_OUT_OF_MEMORY";
    case LLMQ_ERR_UNSUPPORTED: return "LLMQ_ERR_UNSUPPORTED";
    case LLMQ_ERR_BACKEND: return "LLMQ_ERR_BACKEND";
    case LLMQ_ERR_IO: return "LLMQ_ERR_IO";
    case LLMQ_ERR_PARSE: return "LLMQ_ERR_PARSE";
    case LLMQ_ERR_STATE: return "LLMQ_ERR_STATE";
    case LLMQ_ERR_ABI: return "LLMQ_ERR_ABI";
    case LLMQ_ERR_INTERNAL: return "LLMQ_ERR_INTERNAL";
    case LLMQ_ERR_NON_FINITE: return "LLMQ_ERR_NON_FINITE";
    case LLMQ_STATUS_FORCE32_: break;
    }
    return "LLMQ_ERR_UNKNOWN";
}
