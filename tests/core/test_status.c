/* test_status.c - status names, and docs/ERRORS.md documents every status (curl's test1119
 * idea: the enum, llmq_status_name() and the documentation cannot drift apart).
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

static const char *errors_md;

/* Every status up to the last one declared; keep in step with llmq/status.h. */
#define LAST_STATUS LLMQ_ERR_NON_FINITE

static void names_are_distinct_and_prefixed(void **state)
{
    (void)state;
    for (int i = 0; i <= LAST_STATUS; i++) {
        const char *n = llmq_status_name((llmq_status)i);
        assert_true(strncmp(n, "LLMQ_", 5) == 0);
        assert_string_not_equal(n, "LLMQ_ERR_UNKNOWN");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, llmq_status_name((llmq_status)j));
    }
    assert_string_equal(llmq_status_name(LLMQ_OK), "LLMQ_OK");
    assert_string_equal(llmq_status_name((llmq_status)(LAST_STATUS + 1)), "LLMQ_ERR_UNKNOWN");
    assert_string_equal(llmq_status_name((llmq_status)-1), "LLMQ_ERR_UNKNOWN");
}

static void errors_md_documents_every_status(void **state)
{
    (void)state;
    FILE *f = fopen(errors_md, "rb");
    assert_non_null(f);
    static char text[65536];
    const size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (int i = 0; i <= LAST_STATUS; i++) {
        char heading[96];
        snprintf(heading, sizeof heading, "## %s (%d)", llmq_status_name((llmq_status)i), i);
        if (strstr(text, heading) == NULL)
            fail_msg("docs/ERRORS.md lacks the heading \"%s\"", heading);
    }
}

int main(int argc, char **argv)
{
    errors_md = argc > 1 ? argv[1] : "docs/ERRORS.md";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_distinct_and_prefixed),
        cmocka_unit_test(errors_md_documents_every_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
