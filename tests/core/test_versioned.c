/* The versioned-struct mechanism with a two-version struct: an older caller's
 * struct is accepted and the fields it lacks keep their defaults; a newer one
 * is refused. (gen_context_options has one version so far.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/versioned.h"

struct demo_options {
    uint32_t version;
    int32_t a; /* since 1 */
    int64_t b; /* since 2 */
};

static const size_t demo_sizes[] = {0, offsetof(struct demo_options, b),
                                    sizeof(struct demo_options)};

static void test_older_accepted(void **state)
{
    (void)state;
    struct demo_options dst = {2, 10, 20};
    struct {
        uint32_t version;
        int32_t a;
    } old = {1, 5}; /* what a program built against version 1 passes */
    assert_int_equal(gen__versioned_copy(&dst, &old, demo_sizes, 2, "demo"), GEN_OK);
    assert_int_equal(dst.version, 2);
    assert_int_equal(dst.a, 5);
    assert_int_equal(dst.b, 20); /* default kept */
}

static void test_newer_refused(void **state)
{
    (void)state;
    struct demo_options dst = {2, 10, 20};
    struct demo_options newer = {3, 1, 2};
    assert_int_equal(gen__versioned_copy(&dst, &newer, demo_sizes, 2, "demo"), GEN_EVERSION);
    assert_non_null(strstr(gen_last_error_message(), "version 3 is newer"));
    assert_int_equal(dst.a, 10);
    struct demo_options zero = {0, 1, 2};
    assert_int_equal(gen__versioned_copy(&dst, &zero, demo_sizes, 2, "demo"), GEN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_older_accepted),
        cmocka_unit_test(test_newer_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
