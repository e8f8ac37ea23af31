/* generation_devices syntax: normalisation, de-duplication, and errors that
 * name the entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "device/device_spec.h"

static void expect(const char *text, const char *canonical)
{
    gen__device_spec spec;
    char buf[256];
    if (gen__device_spec_parse(text, &spec) != GEN_OK)
        fail_msg("\"%s\": %s", text, gen_last_error_message());
    assert_int_equal(gen__device_spec_format(&spec, buf, sizeof(buf)), GEN_OK);
    if (strcmp(buf, canonical) != 0)
        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", text, buf, canonical);
}

static void expect_error(const char *text, const char *fragment)
{
    gen__device_spec spec;
    assert_int_equal(gen__device_spec_parse(text, &spec), GEN_EINVAL);
    if (!strstr(gen_last_error_message(), fragment))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, gen_last_error_message(), fragment);
}

static void test_valid(void **state)
{
    (void)state;
    expect("auto", "auto");
    expect(" auto ", "auto");
    expect("cuda", "cuda");
    expect("cpu", "cpu:0");
    expect("cuda:0,cuda:2", "cuda:0,cuda:2");
    expect("cuda:2,cuda:0,cuda:2", "cuda:2,cuda:0");
    expect("cpu:0, cpu:1", "cpu:0,cpu:1");
    expect("cpu,cpu:0", "cpu:0");
    expect("cuda,cuda:0", "cuda,cuda:0"); /* "current" is resolved by the pool, not here */
    expect("cpu:0,cuda:1", "cpu:0,cuda:1");
}

static void test_invalid(void **state)
{
    (void)state;
    expect_error("", "empty");
    expect_error("   ", "empty");
    expect_error(",", "entry 1 is empty");
    expect_error("cuda:0,", "entry 2 is empty");
    expect_error("mps", "unknown device kind in \"mps\"");
    expect_error("CUDA:0", "unknown device kind in \"CUDA:0\"");
    expect_error("cuda:", "malformed entry \"cuda:\"");
    expect_error("cuda:-1", "malformed entry \"cuda:-1\"");
    expect_error("cpu:1x", "malformed entry \"cpu:1x\"");
    expect_error("cuda:99999", "malformed");
    expect_error("cuda:2000", "above 1023");
    expect_error("auto,auto", "cannot be combined");
    expect_error("cpu:0,auto", "cannot be combined");
}

static void test_too_many(void **state)
{
    (void)state;
    char text[2048];
    size_t used = 0;
    for (int i = 0; i <= GEN__MAX_DEVICES; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%scpu:%d", i ? "," : "", i);
    expect_error(text, "more than 64 devices");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
