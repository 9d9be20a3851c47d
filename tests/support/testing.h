/* testing.h - helpers shared by the CMocka suites. SPDX-License-Identifier: MIT */
#ifndef LLMQ_TESTING_H
#define LLMQ_TESTING_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "llmq.h"

/* Fail the test with the context's message unless expr returns LLMQ_OK. */
#define ASSERT_OK(ctx, expr)                                                                   \
    do {                                                                                       \
        llmq_status st_ = (expr);                                                              \
        if (st_ != LLMQ_OK)                                                                    \
            fail_msg("%s -> %s: %s", #expr, llmq_status_name(st_),                             \
                     llmq_context_last_error(ctx));                                            \
    } while (0)

/* expr must return `status` and leave a message on ctx that contains `needle`. */
#define ASSERT_FAILS(ctx, expr, status, needle)                                                \
    do {                                                                                       \
        const llmq_status st_ = (expr); /* before reading ctx: expr may create it */          \
        test_expect_failure((ctx), st_, (status), (needle), #expr, __FILE__, __LINE__);        \
    } while (0)

void test_expect_failure(const llmq_context *ctx, llmq_status got, llmq_status want,
                         const char *needle, const char *expr, const char *file, int line);

/* A CPU context, failing the test if it cannot be made. */
llmq_context *test_context(void);

/* An allocator for llmq_context_options that counts live allocations and bytes (and the peak
 * of live bytes), and fails allocation number fail_at (from 0; -1: never). */
typedef struct test_allocator {
    long live, total, fail_at;
    size_t live_bytes, peak_bytes;
} test_allocator;
void *test_allocator_alloc(void *user, size_t size, size_t alignment);
void test_allocator_free(void *user, void *ptr);
/* {test_allocator_alloc, test_allocator_free, a} */
llmq_allocator test_allocator_of(test_allocator *a);

/* Small deterministic generator (SplitMix64). */
typedef struct test_rng {
    uint64_t state;
} test_rng;
uint64_t test_rng_next(test_rng *r);
double test_rng_uniform(test_rng *r); /* [0, 1) */
float test_rng_range(test_rng *r, float lo, float hi);

/* Build a scheme in one call (fails the test on error). group 0 = unset. */
llmq_scheme *test_scheme(llmq_context *ctx, llmq_dtype dtype, llmq_symmetry sym,
                         llmq_granularity gran, int32_t axis, int64_t group);

/* Wrap float data of a shape as an F32 tensor (fails the test on error). */
llmq_tensor *test_wrap_f32(llmq_context *ctx, float *data, int32_t ndim, const int64_t *shape);

/* A granularity with its axis and group size (0 = none), for tables of test cases. */
typedef struct test_gran {
    llmq_granularity g;
    int32_t axis;
    int64_t group;
} test_gran;

/* Parameter index of flat element i of a row-major tensor under g, from the element's
 * coordinates (independent of the library's parameter map). */
int64_t test_param_index(const test_gran *g, int32_t ndim, const int64_t *shape, int64_t i);

/* An owned tensor of dtype shaped like the parameter tensor p (fails the test on error). */
llmq_tensor *test_tensor_like(llmq_context *ctx, const llmq_tensor *p, llmq_dtype dtype);

/* Destroy the listed tensors; NULL entries are fine. TEST_DESTROY(a, b, c). */
void test_destroy_tensors(llmq_tensor *const *t, size_t n);
#define TEST_DESTROY(...)                                                                      \
    test_destroy_tensors((llmq_tensor *[]){__VA_ARGS__},                                       \
                         sizeof((llmq_tensor *[]){__VA_ARGS__}) / sizeof(llmq_tensor *))

#endif
