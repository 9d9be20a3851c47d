/* testing.c - helpers shared by the CMocka suites. SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "testing.h"

void test_expect_failure(const llmq_context *ctx, llmq_status got, llmq_status want,
                         const char *needle, const char *expr, const char *file, int line)
{
    if (got != want)
        fail_msg("%s:%d: %s -> %s, expected %s (message: %s)", file, line, expr,
                 llmq_status_name(got), llmq_status_name(want), llmq_context_last_error(ctx));
    if (needle != NULL && strstr(llmq_context_last_error(ctx), needle) == NULL)
        fail_msg("%s:%d: %s: message \"%s\" lacks \"%s\"", file, line, expr,
                 llmq_context_last_error(ctx), needle);
}

llmq_context *test_context(void)
{
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st != LLMQ_OK)
        fail_msg("llmq_context_create: %s: %s", llmq_status_name(st),
                 llmq_context_last_error(ctx));
    return ctx;
}

/* Each block carries its size in a 64-byte header, which keeps llmq's 64-byte alignment. */
#define HEADER 64

void *test_allocator_alloc(void *user, size_t size, size_t alignment)
{
    test_allocator *a = user;
    if (a->fail_at >= 0 && a->total == a->fail_at) {
        a->total++;
        return NULL;
    }
    a->total++;
    void *p = NULL;
    if (alignment > HEADER || posix_memalign(&p, HEADER, size + HEADER) != 0)
        return NULL;
    memcpy(p, &size, sizeof size);
    a->live++;
    a->live_bytes += size;
    a->peak_bytes = a->live_bytes > a->peak_bytes ? a->live_bytes : a->peak_bytes;
    return (char *)p + HEADER;
}

void test_allocator_free(void *user, void *ptr)
{
    test_allocator *a = user;
    if (ptr == NULL)
        return;
    char *base = (char *)ptr - HEADER;
    size_t size;
    memcpy(&size, base, sizeof size);
    a->live--;
    a->live_bytes -= size;
    free(base);
}

llmq_allocator test_allocator_of(test_allocator *a)
{
    return (llmq_allocator){test_allocator_alloc, test_allocator_free, a};
}

uint64_t test_rng_next(test_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double test_rng_uniform(test_rng *r)
{
    return (double)(test_rng_next(r) >> 11) * 0x1p-53;
}

float test_rng_range(test_rng *r, float lo, float hi)
{
    return lo + (float)test_rng_uniform(r) * (hi - lo);
}

llmq_scheme *test_scheme(llmq_context *ctx, llmq_dtype dtype, llmq_symmetry sym,
                         llmq_granularity gran, int32_t axis, int64_t group)
{
    llmq_scheme *s = NULL;
    ASSERT_OK(ctx, llmq_scheme_create(ctx, dtype, &s));
    ASSERT_OK(ctx, llmq_scheme_set_symmetry(s, sym));
    ASSERT_OK(ctx, llmq_scheme_set_granularity(s, gran));
    ASSERT_OK(ctx, llmq_scheme_set_axis(s, axis));
    if (group > 0)
        ASSERT_OK(ctx, llmq_scheme_set_group_size(s, group));
    return s;
}

llmq_tensor *test_wrap_f32(llmq_context *ctx, float *data, int32_t ndim, const int64_t *shape)
{
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, ndim, shape, data, 0, &t));
    return t;
}

int64_t test_param_index(const test_gran *g, int32_t ndim, const int64_t *shape, int64_t i)
{
    int64_t coord[LLMQ_MAX_DIMS], rest = i;
    for (int32_t d = ndim - 1; d >= 0; d--) {
        coord[d] = rest % shape[d];
        rest /= shape[d];
    }
    const int64_t cols = shape[ndim - 1], row = i / cols;
    switch (g->g) {
    case LLMQ_GRANULARITY_PER_CHANNEL:
        return coord[g->axis < 0 ? g->axis + ndim : g->axis];
    case LLMQ_GRANULARITY_PER_TOKEN:
        return row;
    case LLMQ_GRANULARITY_PER_GROUP:
        return row * ((cols + g->group - 1) / g->group) + coord[ndim - 1] / g->group;
    default:
        return 0;
    }
}

llmq_tensor *test_tensor_like(llmq_context *ctx, const llmq_tensor *p, llmq_dtype dtype)
{
    const int64_t shape[2] = {llmq_tensor_dim(p, 0), llmq_tensor_dim(p, 1)};
    llmq_tensor *t = NULL;
    ASSERT_OK(ctx, llmq_tensor_create(ctx, dtype, llmq_tensor_ndim(p), shape, &t));
    return t;
}

void test_destroy_tensors(llmq_tensor *const *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        llmq_tensor_destroy(t[i]);
}
