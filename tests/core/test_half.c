/* test_half.c - f16 / bf16 conversions: every f16 value round-trips, f32 -> f16 / bf16 round to
 * nearest even (checked against the compiler's _Float16 where it has one, and against worked
 * examples everywhere). SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/half.h"
#include "testing.h"

static void every_f16_round_trips(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = llmq_f16_to_f32((uint16_t)h);
        const uint16_t back = llmq_f32_to_f16(f);
        if (isnan(f))
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);
        else
            assert_int_equal(back, h);
    }
}

static void f16_worked_examples(void **state)
{
    (void)state;
    assert_true(llmq_f16_to_f32(0x3c00) == 1.0f);
    assert_true(llmq_f16_to_f32(0x0001) == 0x1p-24f);  /* smallest subnormal */
    assert_true(llmq_f16_to_f32(0x7bff) == 65504.0f);  /* largest finite */
    assert_true(llmq_f16_to_f32(0xfc00) == -INFINITY);
    assert_int_equal(llmq_f32_to_f16(65519.0f), 0x7bff); /* below the halfway point */
    assert_int_equal(llmq_f32_to_f16(65520.0f), 0x7c00); /* tie rounds to even: Inf */
    assert_int_equal(llmq_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even (down) */
    assert_int_equal(llmq_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie to even (up) */
    assert_int_equal(llmq_f32_to_f16(0x1p-25f), 0x0000);  /* half the smallest: even, 0 */
    assert_int_equal(llmq_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 steps: even, 2 */
    assert_int_equal(llmq_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(llmq_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(llmq_f32_to_f16(FLT_MAX), 0x7c00);
}

static void bf16_worked_examples(void **state)
{
    (void)state;
    assert_true(llmq_bf16_to_f32(0x3f80) == 1.0f);
    assert_int_equal(llmq_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(llmq_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie to even: down */
    assert_int_equal(llmq_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);  /* tie to even: up */
    assert_int_equal(llmq_f32_to_bf16(1.0f + 0x1.8p-8f), 0x3f81);    /* above the tie */
    assert_int_equal(llmq_f32_to_bf16(FLT_MAX), 0x7f80);             /* rounds up to Inf */
    assert_int_equal(llmq_f32_to_bf16(-INFINITY), 0xff80);
    assert_true(isnan(llmq_bf16_to_f32(llmq_f32_to_bf16(NAN))));
    for (uint32_t b = 0; b < 0x10000; b++) {
        const float f = llmq_bf16_to_f32((uint16_t)b);
        if (!isnan(f))
            assert_int_equal(llmq_f32_to_bf16(f), b);
    }
}

#ifdef __FLT16_MAX__
/* The compiler's own conversion is the oracle for f32 -> f16 on random bit patterns. */
static void f16_matches_compiler(void **state)
{
    (void)state;
    test_rng rng = {11};
    for (int i = 0; i < 2000000; i++) {
        const float f = llmq_bits_f32((uint32_t)test_rng_next(&rng));
        const _Float16 h = (_Float16)f;
        uint16_t want;
        memcpy(&want, &h, sizeof want);
        const uint16_t got = llmq_f32_to_f16(f);
        if (isnan(f))
            assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff) != 0);
        else if (got != want)
            fail_msg("f32 %a: got 0x%04x, want 0x%04x", (double)f, got, want);
    }
}
#else
static void f16_matches_compiler(void **state)
{
    (void)state;
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_f16_round_trips),
        cmocka_unit_test(f16_worked_examples),
        cmocka_unit_test(bf16_worked_examples),
        cmocka_unit_test(f16_matches_compiler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
