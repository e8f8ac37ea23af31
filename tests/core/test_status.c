/* Status strings: every code has its own static, non-empty text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

static const gen_status all_codes[] = {
    GEN_OK, GEN_EINVAL, GEN_ENOMEM, GEN_EIO, GEN_EFORMAT, GEN_ENOTFOUND, GEN_EUNSUPPORTED,
    GEN_EVERSION, GEN_EFULL, GEN_EBUSY, GEN_ECANCELED, GEN_EDEVICE, GEN_EDEVICE_OOM,
    GEN_EDATABASE, GEN_EPERM, GEN_ESTATE, GEN_ETIMEOUT, GEN_EUSER, GEN_ENOSPC, GEN_EINTERNAL,
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void test_codes_are_stable(void **state)
{
    (void)state;
    /* The numbers are ABI: a renumbering must fail this test. */
    assert_int_equal(GEN_OK, 0);
    assert_int_equal(GEN_EINVAL, -1);
    assert_int_equal(GEN_EFORMAT, -4);
    assert_int_equal(GEN_EVERSION, -7);
    assert_int_equal(GEN_EFULL, -8);
    assert_int_equal(GEN_EDEVICE_OOM, -12);
    assert_int_equal(GEN_EINTERNAL, -19);
    for (size_t i = 0; i < NCODES; i++)
        assert_int_equal(all_codes[i], -(gen_status)i);
}

static void test_strings_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *s = gen_status_string(all_codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown status");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, gen_status_string(all_codes[j]));
    }
    assert_string_equal(gen_status_string(GEN_OK), "success");
    assert_string_equal(gen_status_string(-1000), "unknown status");
    assert_string_equal(gen_status_string(5), "unknown status");
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(gen_version_number(), GEN_VERSION_NUMBER);
    assert_string_equal(gen_version_string(), GEN_VERSION_STRING);
    assert_int_equal(GEN_VERSION_NUMBER,
                     GEN_VERSION_MAJOR * 10000 + GEN_VERSION_MINOR * 100 + GEN_VERSION_PATCH);
}

static void test_log_level_names(void **state)
{
    (void)state;
    assert_string_equal(gen_log_level_name(GEN_LOG_ERROR), "error");
    assert_string_equal(gen_log_level_name(GEN_LOG_TRACE), "trace");
    assert_string_equal(gen_log_level_name((gen_log_level)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_stable),
        cmocka_unit_test(test_strings_distinct),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_log_level_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
