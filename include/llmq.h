/* llmq.h - the one header llmq users include. SPDX-License-Identifier: MIT
 *
 * llmq quantizes tensors of large language models (INT8, INT4, INT2; symmetric or asymmetric;
 * per tensor, channel, group or token) with PyTorch's and ONNX's exact rules, and runs
 * quantized matrix products on CPUs and NVIDIA GPUs. Start with docs/quickstart in the source
 * tree; every declaration below is documented where it is declared. */
/** @file
 * The umbrella header: includes every public header of llmq. Programs include only this one;
 * the API is the union of the headers below it. */
#ifndef LLMQ_H
#define LLMQ_H

#include "llmq/export.h"
#include "llmq/version.h"
#include "llmq/status.h"
#include "llmq/context.h"
#include "llmq/tensor.h"
#include "llmq/scheme.h"
#include "llmq/quantize.h"
#include "llmq/gemm.h"
#include "llmq/model.h"
#include "llmq/recipe.h"
#include "llmq/qat.h"
#include "llmq/quantizer.h"
#include "llmq/qtable.h"
#include "llmq/smoothquant.h"
#include "llmq/plan.h"

#endif /* LLMQ_H */
