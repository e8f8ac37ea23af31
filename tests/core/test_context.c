/* Context creation: defaults, validation of directly written fields, logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

static void test_create_defaults(void **state)
{
    (void)state;
    gen_context *ctx = (gen_context *)1;
    assert_int_equal(gen_context_create(&ctx, NULL), GEN_OK);
    assert_non_null(ctx);
    const gen_context_options *o = gen_context_get_options(ctx);
    assert_string_equal(o->generation_devices, "auto");
    gen_context_destroy(ctx);
    gen_context_destroy(NULL);
}

struct log_capture {
    int count;
    char all[4096];
    gen_log_level level;
};

static void capture_log(gen_log_level level, const char *message, void *user_data)
{
    struct log_capture *c = user_data;
    c->count++;
    c->level = level;
    size_t used = strlen(c->all);
    snprintf(c->all + used, sizeof(c->all) - used, "%s\n", message);
}

static void test_log_callback(void **state)
{
    (void)state;
    struct log_capture cap = {0};
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    strcpy(o.generation_devices, "cpu:0");
    o.log_fn = capture_log;
    o.log_user_data = &cap;
    gen_context *ctx = NULL;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    assert_true(cap.count >= 1);
    assert_int_equal(cap.level, GEN_LOG_INFO);
    assert_non_null(strstr(cap.all, "context created"));
    /* The startup log lists the devices. */
    assert_non_null(strstr(cap.all, "device 0: cpu:0 (CPU)"));
    gen_context_destroy(ctx);

    /* Below the configured level nothing is delivered. */
    cap.count = 0;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    assert_int_equal(cap.count, 0);
    gen_context_destroy(ctx);
}

static void test_fields_written_directly_are_validated(void **state)
{
    (void)state;
    gen_context *ctx = (gen_context *)1;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    strcpy(o.generation_devices, "cpu:0,cpu:0,cpu:1");
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    assert_string_equal(gen_context_get_options(ctx)->generation_devices, "cpu:0,cpu:1");
    gen_context_destroy(ctx);

    strcpy(o.generation_devices, "tpu:0");
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(gen_last_error_message(), "tpu:0"));

    o = (gen_context_options)GEN_CONTEXT_OPTIONS_INIT;
    memset(o.db_path, 'x', sizeof(o.db_path)); /* no terminator */
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "db_path"));

    o = (gen_context_options)GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = 12;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_int_equal(gen_context_create(NULL, &o), GEN_EINVAL);
}

static void test_versions(void **state)
{
    (void)state;
    gen_context *ctx = (gen_context *)1;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.version = GEN_CONTEXT_OPTIONS_VERSION + 1;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EVERSION);
    assert_null(ctx);
    assert_non_null(strstr(gen_last_error_message(), "newer"));
    o.version = 0;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_log_callback),
        cmocka_unit_test(test_fields_written_directly_are_validated),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
