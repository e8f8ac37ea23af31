/* Each GEN_*_OPTIONS_INIT macro equals its init function byte for byte, and
 * the options versions are honoured through the shared library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

/* Compare through heap copies cleared to a pattern first, so that any padding
 * byte the macro leaves unspecified would show up as a difference. */
#define CHECK_INIT(type, macro, init_fn, version)                                  \
    do {                                                                           \
        type *by_macro = malloc(sizeof(type));                                     \
        type *by_fn = malloc(sizeof(type));                                        \
        assert_non_null(by_macro);                                                 \
        assert_non_null(by_fn);                                                    \
        memset(by_macro, 0, sizeof(type));                                         \
        memset(by_fn, 0xA5, sizeof(type));                                         \
        type tmp = macro;                                                          \
        memcpy(by_macro, &tmp, sizeof(type));                                      \
        assert_int_equal(init_fn(by_fn, version), GEN_OK);                         \
        assert_memory_equal(by_macro, by_fn, sizeof(type));                        \
        free(by_macro);                                                            \
        free(by_fn);                                                               \
    } while (0)

static void test_context_options_init(void **state)
{
    (void)state;
    CHECK_INIT(gen_context_options, GEN_CONTEXT_OPTIONS_INIT, gen_context_options_init,
               GEN_CONTEXT_OPTIONS_VERSION);
}

static void test_context_options_layout(void **state)
{
    (void)state;
    /* No padding anywhere: the version field is first and the sizes add up, so
     * byte comparison and FFI mirrors (Python ctypes) are exact. */
    assert_int_equal(offsetof(gen_context_options, version), 0);
    size_t fields = sizeof(uint32_t) + sizeof(int32_t) + 2 * sizeof(uint64_t) +
                    sizeof(gen_log_fn) + sizeof(void *) + GEN_DEVICES_TEXT_MAX +
                    2 * GEN_PATH_TEXT_MAX + GEN_DTYPE_TEXT_MAX;
    assert_int_equal(sizeof(gen_context_options), fields);
}

static void test_context_versions(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    gen_context *ctx = NULL;
    /* Every version from 1 to the current one is accepted ... */
    for (uint32_t v = 1; v <= GEN_CONTEXT_OPTIONS_VERSION; v++) {
        assert_int_equal(gen_context_options_init(&o, v), GEN_OK);
        assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
        gen_context_destroy(ctx);
        ctx = NULL;
    }
    /* ... a newer one is refused with a message. */
    o.version = GEN_CONTEXT_OPTIONS_VERSION + 1;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EVERSION);
    assert_null(ctx);
    assert_true(strlen(gen_last_error_message()) > 0);
    assert_int_equal(gen_context_options_init(&o, GEN_CONTEXT_OPTIONS_VERSION + 1), GEN_EVERSION);
}

static void test_runtime_version_matches_headers(void **state)
{
    (void)state;
    assert_int_equal(gen_version_number(), GEN_VERSION_NUMBER);
    assert_string_equal(gen_version_string(), GEN_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_options_init),
        cmocka_unit_test(test_context_options_layout),
        cmocka_unit_test(test_context_versions),
        cmocka_unit_test(test_runtime_version_matches_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
