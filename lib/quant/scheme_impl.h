/* scheme_impl.h - the scheme's private layout and parameter rules (internal).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_QUANT_SCHEME_IMPL_H
#define LLMQ_QUANT_SCHEME_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "llmq/scheme.h"

struct llmq_scheme {
    llmq_context *ctx;
    llmq_dtype dtype;
    llmq_symmetry symmetry;
    llmq_granularity granularity;
    int32_t axis;
    int64_t group_size; /* 0 = unset */
    llmq_rounding rounding;
    uint64_t seed;
    llmq_numerics numerics;
    int32_t range_min, range_max; /* llmq_scheme_set_range; both 0 = the dtype's grid */
};

/* Integer grid of a quantized dtype under a symmetry. */
typedef struct llmq_qgrid {
    int32_t qmin, qmax;
    bool is_unsigned;
} llmq_qgrid;

/* The grid every path uses: the custom range if one is set, else the dtype's grid under the
 * symmetry. */
llmq_qgrid llmq_scheme_grid(const llmq_scheme *s);

/* Zero point of the symmetric schemes: 0, or the unsigned grid's midpoint (qmin + qmax + 1) / 2
 * (u8 128, u4 8, u2 2; restricted u8 [1, 255] also 128). */
int32_t llmq_qgrid_symmetric_zero_point(const llmq_qgrid *g);

/* PyTorch's parameters for a range (see llmq_scheme_qparams); lo, hi finite, lo <= hi. */
void llmq_qparams_from_range(const llmq_qgrid *g, llmq_symmetry symmetry, float lo, float hi,
                             float *scale, int32_t *zero_point);

/* Parameter layout of a scheme over a tensor shape: ndim/shape of the parameter tensors and
 * the element -> parameter map. Fails with a message on the scheme's context. */
typedef struct llmq_param_layout {
    int32_t ndim;
    int64_t shape[2];
    int64_t count;
    llmq_param_map map;
} llmq_param_layout;

llmq_status llmq_scheme_layout(const llmq_scheme *s, const char *fn, int32_t ndim,
                               const int64_t *shape, llmq_param_layout *out);

/* A quantized tensor used as an operand must carry a scheme (LLMQ_ERR_STATE otherwise) and,
 * when `values` is set, usable parameters: scales positive normal floats (so 1 / scale is
 * finite), zero points on the grid (LLMQ_ERR_INVALID_ARG naming `name`.scale[i]). */
llmq_status llmq_tensor_check_params(llmq_context *ctx, const char *fn, const char *name,
                                     const llmq_tensor *q, bool values);

#endif
