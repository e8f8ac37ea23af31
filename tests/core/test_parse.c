/* Size, integer and boolean parsing of option text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/parse.h"

static void ok_size(const char *text, uint64_t expected)
{
    uint64_t v = 12345;
    gen_status st = gen__parse_size("size", text, &v);
    if (st != GEN_OK)
        fail_msg("\"%s\": %s", text, gen_last_error_message());
    if (v != expected)
        fail_msg("\"%s\": got %llu, expected %llu", text, (unsigned long long)v,
                 (unsigned long long)expected);
}

static void bad_size(const char *text, const char *fragment)
{
    uint64_t v = 777;
    assert_int_equal(gen__parse_size("max_cache_ram", text, &v), GEN_EINVAL);
    assert_int_equal(v, 777); /* untouched on failure */
    const char *m = gen_last_error_message();
    assert_non_null(strstr(m, "max_cache_ram"));
    if (!strstr(m, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", m, fragment);
}

static void test_sizes(void **state)
{
    (void)state;
    ok_size("0", 0);
    ok_size("4096", 4096);
    ok_size("8GiB", 8ull << 30);
    ok_size("512MiB", 512ull << 20);
    ok_size("512 mib", 512ull << 20);
    ok_size("  3G ", 3ull << 30);
    ok_size("64k", 64ull << 10);
    ok_size("1.5GiB", 3ull << 29);
    ok_size("1.5GB", 1500000000ull);
    ok_size("2TB", 2000000000000ull);
    ok_size("100B", 100);
    ok_size(".5KiB", 512);
    ok_size("16383TiB", 16383ull << 40);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    bad_size("", "not a size");
    bad_size("GiB", "not a size");
    bad_size("-1", "not a size");
    bad_size("8 GiBs", "unknown unit");
    bad_size("8XB", "unknown unit");
    bad_size("8GiB x", "trailing");
    bad_size("1.5", "whole number");
    bad_size("99999999999999999999", "too large");
    bad_size("17000000TiB", "too large");
    bad_size("1e9", "trailing");
}

static void test_int_and_bool(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(gen__parse_int64("steps", " 20 ", 1, 1000, &v), GEN_OK);
    assert_int_equal(v, 20);
    assert_int_equal(gen__parse_int64("steps", "1001", 1, 1000, &v), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "out of range"));
    assert_int_equal(gen__parse_int64("steps", "2x", 1, 1000, &v), GEN_EINVAL);
    assert_int_equal(gen__parse_int64("steps", "", 1, 1000, &v), GEN_EINVAL);
    bool b = false;
    assert_int_equal(gen__parse_bool("tiled", "Yes", &b), GEN_OK);
    assert_true(b);
    assert_int_equal(gen__parse_bool("tiled", "off", &b), GEN_OK);
    assert_false(b);
    assert_int_equal(gen__parse_bool("tiled", "maybe", &b), GEN_EINVAL);
}

static void test_format_size(void **state)
{
    (void)state;
    char buf[32];
    gen__format_size(3ull << 30, buf, sizeof(buf));
    assert_string_equal(buf, "3 GiB");
    gen__format_size(1536ull << 10, buf, sizeof(buf));
    assert_string_equal(buf, "1.50 MiB");
    gen__format_size(100, buf, sizeof(buf));
    assert_string_equal(buf, "100 B");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_int_and_bool),
        cmocka_unit_test(test_format_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
