/* pack.c - llmq_matmul_pack_weights: weights copied once into the layout the CPU kernels read
 * (lib/backend/backend.h llmq_packed_b, docs/KERNELS.md). SPDX-License-Identifier: MIT */
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/tensor_impl.h"
#include "gemm/matmul_impl.h"
#include "quant/pack.h"
#include "quant/scheme_impl.h"
#include "llmq/gemm.h"

/* 8-bit weights, [N, K] or [K, N]: panels of 16 channels x 4 k and the per-channel sums of
 * the stored values. */
static void pack8(const llmq_tensor *b, bool kn, llmq_packed_b *info, int8_t *panels,
                  int32_t *colsum)
{
    const int64_t n = info->n, k = info->k, k4 = info->k4;
    const int32_t offset = info->offset;
    for (int64_t nn = 0; nn < n; nn++) {
        int8_t *col = panels + (size_t)(nn / LLMQ_PACK_NR) * (size_t)k4 * 64 +
                      (size_t)(nn % LLMQ_PACK_NR) * 4;
        uint32_t sum = 0; /* modulo 2^32: the corrections are exact in that ring */
        for (int64_t kk = 0; kk < k; kk++) {
            const uint8_t *src = (const uint8_t *)b->data +
                                 (kn ? (size_t)kk * b->row_stride + (size_t)nn
                                     : (size_t)nn * b->row_stride + (size_t)kk);
            const int32_t code = b->dtype == LLMQ_DTYPE_U8 ? (int32_t)*src : (int32_t)(int8_t)*src;
            const int8_t stored = (int8_t)(code - offset);
            col[(size_t)(kk / 4) * 64 + (size_t)(kk % 4)] = stored;
            sum += (uint32_t)(int32_t)stored;
        }
        colsum[nn] = (int32_t)sum;
    }
}

/* 8 codes of a row, nibble j (bits 4j) = k0 + j, as a unit's dword: byte i = nibble i | nibble
 * (4 + i) << 4. */
static inline uint32_t unit_dword(uint32_t x)
{
    uint32_t o = 0;
    for (int i = 0; i < 4; i++)
        o |= ((x >> (4 * i) & 15) | (x >> (4 * (4 + i)) & 15) << 4) << (8 * i);
    return o;
}

/* 4-bit weights [N, K]: blocks of 16 channels, each group padded to units of 8 k, and the
 * parameters of each block and group in 16 lanes (layout: backend.h). */
static void pack4(const llmq_tensor *b, llmq_packed_b *info, uint8_t *q4, float *scale,
                  int32_t *zero, int32_t *wsum)
{
    const int64_t n = info->n, k = info->k, group = info->group, ngroups = info->ngroups;
    const int32_t offset = info->offset;
    const float *sb = b->scale->data;
    const int32_t *zb = b->zero_point->data;
    for (int64_t nn = 0; nn < n; nn++) {
        const uint8_t *row = (const uint8_t *)b->data + (size_t)nn * b->row_stride;
        const int64_t base = llmq_param_row_base(&b->map, nn);
        for (int64_t g = 0; g < ngroups; g++) {
            const int64_t k0 = g * group, k1 = k0 + group < k ? k0 + group : k;
            const size_t pi = ((size_t)(nn / LLMQ_PACK_NR) * (size_t)ngroups + (size_t)g) *
                                  LLMQ_PACK_NR + (size_t)(nn % LLMQ_PACK_NR);
            const int64_t bp = base + k0 / b->map.col_group;
            const int32_t z = zb[bp] - offset;
            uint8_t *unit = q4 + ((size_t)(nn / LLMQ_PACK_NR) * (size_t)ngroups + (size_t)g) *
                                     (size_t)info->k8g * 64 + (size_t)(nn % LLMQ_PACK_NR) * 4;
            uint32_t sum = 0; /* modulo 2^32, as the kernels' corrections */
            int64_t kk = k0;
            if (k0 % 2 == 0) /* whole units from 4 bytes of the row at once */
                for (; kk + 8 <= k1; kk += 8) {
                    uint32_t x;
                    memcpy(&x, row + kk / 2, 4);
                    x ^= offset ? 0x88888888u : 0; /* s4: w = code + 8 = the nibble ^ 8 */
                    const uint32_t d = unit_dword(x);
                    memcpy(unit + (size_t)((kk - k0) / 8) * 64, &d, 4);
                    const uint32_t pairs = (x & 0x0f0f0f0fu) + (x >> 4 & 0x0f0f0f0fu);
                    sum += ((pairs * 0x01010101u) >> 24) - 8 * (uint32_t)z;
                }
            for (; kk < k1; kk++) {
                const int64_t j = kk - k0;
                const int32_t w = llmq_code_at(row, b->dtype, kk) - offset;
                unit[(size_t)(j / 8) * 64 + (size_t)(j % 4)] |= (uint8_t)(w << (j % 8 / 4 * 4));
                sum += (uint32_t)(w - z);
            }
            scale[pi] = sb[bp];
            zero[pi] = z;
            wsum[pi] = (int32_t)sum;
        }
    }
}

llmq_status llmq_matmul_pack_weights(llmq_context *ctx, const llmq_tensor *b,
                                     const llmq_matmul_options *options, llmq_tensor **packed)
{
    static const char fn[] = "llmq_matmul_pack_weights";
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, packed != NULL, "packed=NULL: must point to a tensor pointer");
    *packed = NULL;
    llmq_matmul_options o;
    LLMQ_TRY(llmq_matmul_read_options(ctx, fn, options, &o));
    LLMQ_REQUIRE(ctx, b != NULL, "b=NULL: must be a tensor");
    if (b->packed != NULL)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "b=packed: already packed");
    LLMQ_REQUIRE(ctx, llmq_dtype_is_quantized(b->dtype),
                 "b=%s tensor: weights must be quantized (s8, u8, s4, u4)",
                 llmq_dtype_name(b->dtype));
    char s1[96];
    LLMQ_REQUIRE(ctx, b->ndim == 2, "b=%s: weights must be 2-D", llmq_shape_str(b, s1, sizeof s1));
    if (b->device)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "b: device tensor; packed weights are for the CPU kernels");
    LLMQ_TRY(llmq_tensor_check_params(ctx, fn, "b", b, true));
    const bool kn = o.weight_layout == LLMQ_WEIGHT_LAYOUT_KN;
    const int64_t k = kn ? b->shape[0] : b->shape[1], n = kn ? b->shape[1] : b->shape[0];
    const int bits = (int)llmq_dtype_bits(b->dtype);
    if (bits != 8 && bits != 4)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "b=%s tensor: only 8-bit and 4-bit weights are packed; 2-bit weights "
                         "are read as stored", llmq_dtype_name(b->dtype));
    if (bits == 4 && kn)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "options.weight_layout=KN: 4-bit weights are [N, K] (the KN layout "
                         "takes 8-bit weights)");
    const bool uniform = kn ? b->map.row_mul == 0 : b->map.col_group >= k;
    if (bits == 8 && !uniform)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "b: parameters vary along K=%lld; 8-bit weights are packed only per "
                         "tensor or per output channel", (long long)k);
    /* the packed tensor is [N, K]: per-N parameters of a [K, N] weight become axis 0 */
    llmq_scheme scheme = *b->scheme;
    if (kn && scheme.granularity == LLMQ_GRANULARITY_PER_CHANNEL)
        scheme.axis = 0;
    const size_t nblocks = (size_t)((n + LLMQ_PACK_NR - 1) / LLMQ_PACK_NR);
    llmq_packed_b layout = {.n = n, .k = k, .bits = bits};
    size_t data_bytes, param_bytes;
    if (bits == 8) {
        layout.offset = b->dtype == LLMQ_DTYPE_U8 ? 128 : 0;
        layout.k4 = (k + 3) / 4;
        data_bytes = nblocks * (size_t)layout.k4 * 64;
        param_bytes = sizeof(int32_t) * nblocks * LLMQ_PACK_NR;
    } else {
        layout.offset = b->dtype == LLMQ_DTYPE_S4 ? -8 : 0;
        layout.group = uniform ? k : b->map.col_group;
        layout.ngroups = (k + layout.group - 1) / layout.group;
        layout.k8g = (layout.group + 7) / 8;
        const size_t units = nblocks * (size_t)layout.ngroups;
        if (units > SIZE_MAX / 64 / (size_t)layout.k8g)
            return llmq_fail_oom(ctx, fn, "packed weights", SIZE_MAX);
        data_bytes = units * (size_t)layout.k8g * 64;
        param_bytes = 3 * sizeof(int32_t) * units * LLMQ_PACK_NR;
    }
    const size_t info_bytes = sizeof(llmq_packed_b) + param_bytes;
    llmq_tensor *t = NULL;
    LLMQ_TRY(llmq_tensor_create(ctx, b->dtype, 2, (const int64_t[]){n, k}, &t));
    llmq_status st = llmq_tensor_set_scheme(ctx, t, &scheme);
    void *data = NULL;
    llmq_packed_b *info = NULL;
    if (st == LLMQ_OK) {
        data = llmq_mem_calloc(ctx, data_bytes);
        info = llmq_mem_calloc(ctx, info_bytes);
        if (data == NULL || info == NULL)
            st = llmq_fail_oom(ctx, fn, data == NULL ? "packed weights" : "packed parameters",
                               data == NULL ? data_bytes : info_bytes);
    }
    if (st != LLMQ_OK) {
        llmq_mem_free(ctx, data);
        llmq_mem_free(ctx, info);
        llmq_tensor_destroy(t);
        return st;
    }
    memcpy(t->scale->data, b->scale->data, sizeof(float) * (size_t)llmq_tensor_numel(b->scale));
    memcpy(t->zero_point->data, b->zero_point->data,
           sizeof(int32_t) * (size_t)llmq_tensor_numel(b->zero_point));
    *info = layout;
    if (bits == 8) {
        int32_t *colsum = (int32_t *)(info + 1);
        pack8(b, kn, info, data, colsum);
        info->panels = data;
        info->colsum = colsum;
    } else {
        const size_t lanes = nblocks * (size_t)layout.ngroups * LLMQ_PACK_NR;
        float *scale = (float *)(info + 1);
        int32_t *zero = (int32_t *)(scale + lanes), *wsum = zero + lanes;
        pack4(b, info, data, scale, zero, wsum);
        info->q4 = data;
        info->scale = scale;
        info->zero = zero;
        info->wsum = wsum;
    }
    llmq_tensor_zp_range(b, &t->zp_lo, &t->zp_hi);
    llmq_mem_free(ctx, t->data);
    t->data = data;
    t->packed = info;
    *packed = t;
    return LLMQ_OK;
}
