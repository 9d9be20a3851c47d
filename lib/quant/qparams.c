/* qparams.c - scale and zero point from a range, by PyTorch's observer rules.
 * SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>

#include "quant/scheme_impl.h"

int32_t llmq_qgrid_symmetric_zero_point(const llmq_qgrid *g)
{
    return g->is_unsigned ? (g->qmin + g->qmax + 1) / 2 : 0;
}

/* torch.ao.quantization observers (_calculate_qparams), evaluated in float32:
 *   min_neg = min(lo, 0), max_pos = max(hi, 0)
 *   symmetric:  scale = max(-min_neg, max_pos) / ((qmax - qmin) / 2), zp = 0 or midpoint
 *   asymmetric: scale = (max_pos - min_neg) / (qmax - qmin),
 *               zp = clamp(qmin - round_half_even(min_neg / scale), qmin, qmax)
 *   scale = max(scale, FLT_EPSILON) */
void llmq_qparams_from_range(const llmq_qgrid *g, llmq_symmetry symmetry, float lo, float hi,
                             float *scale, int32_t *zero_point)
{
    const float min_neg = lo < 0.0f ? lo : 0.0f;
    const float max_pos = hi > 0.0f ? hi : 0.0f;
    const float levels = (float)(g->qmax - g->qmin);
    if (symmetry != LLMQ_SYMMETRY_ASYMMETRIC) {
        const float amax = -min_neg > max_pos ? -min_neg : max_pos;
        const float s = amax / (levels / 2.0f);
        *scale = s > FLT_EPSILON ? s : FLT_EPSILON;
        *zero_point = llmq_qgrid_symmetric_zero_point(g);
        return;
    }
    float s = (max_pos - min_neg) / levels;
    if (isinf(s)) /* the span overflows float32 (PyTorch gives inf); divide first instead */
        s = max_pos / levels - min_neg / levels;
    if (!(s > FLT_EPSILON))
        s = FLT_EPSILON;
    const float q = nearbyintf(min_neg / s);
    /* |min_neg / s| <= levels here, so the int conversion is exact */
    int32_t zp = g->qmin - (int32_t)q;
    zp = zp < g->qmin ? g->qmin : zp > g->qmax ? g->qmax : zp;
    *scale = s;
    *zero_point = zp;
}
