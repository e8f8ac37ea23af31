/* Context options: defaults, the string setter for every option, bad values,
 * unknown names, environment variables, and versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

static void test_defaults(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    assert_int_equal(o.version, GEN_CONTEXT_OPTIONS_VERSION);
    assert_string_equal(o.generation_devices, "auto");
    assert_string_equal(o.db_path, "");
    assert_string_equal(o.output_dir, "outputs");
    assert_int_equal(o.max_cache_ram, 0);
    assert_int_equal(o.device_working_mem, 3ull << 30);
    assert_int_equal(o.log_level, GEN_LOG_INFO);
    assert_null(o.log_fn);
    assert_string_equal(o.gpu_dtype, "auto");
}

static void set_ok(gen_context_options *o, const char *name, const char *value)
{
    gen_status st = gen_context_options_set(o, name, value);
    if (st != GEN_OK)
        fail_msg("%s=%s: %s", name, value, gen_last_error_message());
}

static void set_bad(gen_context_options *o, const char *name, const char *value,
                    gen_status expected, const char *fragment)
{
    gen_context_options before = *o;
    gen_status st = gen_context_options_set(o, name, value);
    assert_int_equal(st, expected);
    assert_memory_equal(&before, o, sizeof(before)); /* nothing half-written */
    const char *m = gen_last_error_message();
    if (!strstr(m, fragment))
        fail_msg("%s=%s: message \"%s\" lacks \"%s\"", name, value, m, fragment);
}

static void get_equals(const gen_context_options *o, const char *name, const char *expected)
{
    char buf[256];
    assert_int_equal(gen_context_options_get(o, name, buf, sizeof(buf)), GEN_OK);
    assert_string_equal(buf, expected);
}

static void test_set_each_option(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    set_ok(&o, "generation_devices", " cpu:1, cpu:0,cpu:1 ,cpu ");
    assert_string_equal(o.generation_devices, "cpu:1,cpu:0");
    set_ok(&o, "generation_devices", "cuda:0,cuda:2");
    get_equals(&o, "generation_devices", "cuda:0,cuda:2");
    set_ok(&o, "db_path", "/tmp/q.db");
    assert_string_equal(o.db_path, "/tmp/q.db");
    set_ok(&o, "output_dir", "out/images");
    get_equals(&o, "output_dir", "out/images");
    set_ok(&o, "max_cache_ram", "8GiB");
    assert_int_equal(o.max_cache_ram, 8ull << 30);
    get_equals(&o, "max_cache_ram", "8589934592");
    set_ok(&o, "max_cache_ram", "auto");
    get_equals(&o, "max_cache_ram", "auto");
    set_ok(&o, "device_working_mem", "512MiB");
    assert_int_equal(o.device_working_mem, 512ull << 20);
    set_ok(&o, "log_level", "debug");
    assert_int_equal(o.log_level, GEN_LOG_DEBUG);
    set_ok(&o, "log_level", "0");
    get_equals(&o, "log_level", "error");
    set_ok(&o, "log_level", "warning");
    assert_int_equal(o.log_level, GEN_LOG_WARN);
    set_ok(&o, "gpu_dtype", "bf16");
    assert_string_equal(o.gpu_dtype, "bf16");
    set_ok(&o, "gpu_dtype", "f16");
    get_equals(&o, "gpu_dtype", "f16");
    set_ok(&o, "gpu_dtype", "auto");
    get_equals(&o, "gpu_dtype", "auto");
}

static void test_bad_values(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    set_bad(&o, "no_such_option", "1", GEN_ENOTFOUND, "unknown option \"no_such_option\"");
    set_bad(&o, "generation_devices", "", GEN_EINVAL, "empty");
    set_bad(&o, "generation_devices", "gpu:0", GEN_EINVAL, "unknown device kind in \"gpu:0\"");
    set_bad(&o, "generation_devices", "cuda:x", GEN_EINVAL, "malformed entry \"cuda:x\"");
    set_bad(&o, "generation_devices", "cuda:0,,cuda:1", GEN_EINVAL, "entry 2 is empty");
    set_bad(&o, "generation_devices", "auto,cpu:0", GEN_EINVAL, "cannot be combined");
    set_bad(&o, "max_cache_ram", "lots", GEN_EINVAL, "not a size");
    set_bad(&o, "device_working_mem", "3 parsecs", GEN_EINVAL, "unknown unit");
    set_bad(&o, "log_level", "loud", GEN_EINVAL, "not a log level");
    set_bad(&o, "log_level", "7", GEN_EINVAL, "not a log level");
    set_bad(&o, "output_dir", "", GEN_EINVAL, "must not be empty");
    set_bad(&o, "gpu_dtype", "fp16", GEN_EINVAL, "\"fp16\" is not a GPU dtype (use auto, f16 or bf16)");
    set_bad(&o, "gpu_dtype", "", GEN_EINVAL, "is not a GPU dtype");
    char long_path[GEN_PATH_TEXT_MAX + 10];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    set_bad(&o, "db_path", long_path, GEN_EINVAL, "at most 4095");
    assert_int_equal(gen_context_options_set(&o, NULL, "x"), GEN_EINVAL);
    assert_int_equal(gen_context_options_set(&o, "db_path", NULL), GEN_EINVAL);
    assert_int_equal(gen_context_options_set(NULL, "db_path", "x"), GEN_EINVAL);
}

static void test_get_small_buffer(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    char buf[4];
    assert_int_equal(gen_context_options_get(&o, "output_dir", buf, sizeof(buf)), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "needs 8 bytes"));
    assert_int_equal(gen_context_options_get(&o, "nope", buf, sizeof(buf)), GEN_ENOTFOUND);
}

static void test_option_names(void **state)
{
    (void)state;
    size_t n = gen_context_option_count();
    assert_int_equal(n, 7);
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    for (size_t i = 0; i < n; i++) {
        char buf[GEN_PATH_TEXT_MAX];
        const char *name = gen_context_option_name(i);
        assert_non_null(name);
        /* Every listed option round-trips through get -> set. */
        assert_int_equal(gen_context_options_get(&o, name, buf, sizeof(buf)), GEN_OK);
        if (buf[0])
            set_ok(&o, name, buf);
    }
    assert_null(gen_context_option_name(n));
}

static void test_env(void **state)
{
    (void)state;
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    setenv("LIBGEN_GENERATION_DEVICES", "cpu:0,cpu:1", 1);
    setenv("LIBGEN_MAX_CACHE_RAM", "2GiB", 1);
    assert_int_equal(gen_context_options_set_from_env(&o), GEN_OK);
    assert_string_equal(o.generation_devices, "cpu:0,cpu:1");
    assert_int_equal(o.max_cache_ram, 2ull << 30);
    setenv("LIBGEN_LOG_LEVEL", "chatty", 1);
    assert_int_equal(gen_context_options_set_from_env(&o), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "LIBGEN_LOG_LEVEL"));
    unsetenv("LIBGEN_GENERATION_DEVICES");
    unsetenv("LIBGEN_MAX_CACHE_RAM");
    unsetenv("LIBGEN_LOG_LEVEL");
}

static void test_versions(void **state)
{
    (void)state;
    gen_context_options o;
    assert_int_equal(gen_context_options_init(&o, 0), GEN_EINVAL);
    assert_int_equal(gen_context_options_init(&o, GEN_CONTEXT_OPTIONS_VERSION + 1), GEN_EVERSION);
    assert_int_equal(gen_context_options_init(&o, GEN_CONTEXT_OPTIONS_VERSION), GEN_OK);
    o.version = GEN_CONTEXT_OPTIONS_VERSION + 1;
    assert_int_equal(gen_context_options_set(&o, "db_path", "x"), GEN_EVERSION);

    /* A version-1 struct (a program built against the first header) ends
     * before gpu_dtype: that option is refused, never read or written past
     * the struct, and the environment skips it. */
    size_t v1_size = offsetof(gen_context_options, gpu_dtype);
    gen_context_options *v1 = malloc(v1_size); /* exactly that many bytes: ASan sees overruns */
    assert_non_null(v1);
    assert_int_equal(gen_context_options_init(v1, 1), GEN_OK);
    uint32_t version;
    memcpy(&version, v1, sizeof(version)); /* not v1->version: the type is larger than v1 */
    assert_int_equal(version, 1);
    assert_int_equal(gen_context_options_set(v1, "gpu_dtype", "bf16"), GEN_EVERSION);
    assert_non_null(strstr(gen_last_error_message(), "needs options version 2"));
    char buf[16];
    /* get reports what a context made from it uses (programs listing every
     * option by gen_context_option_name keep working) */
    assert_int_equal(gen_context_options_get(v1, "gpu_dtype", buf, sizeof(buf)), GEN_OK);
    assert_string_equal(buf, "auto");
    assert_int_equal(gen_context_options_get(v1, "output_dir", buf, sizeof(buf)), GEN_OK);
    setenv("LIBGEN_GPU_DTYPE", "bf16", 1);
    assert_int_equal(gen_context_options_set_from_env(v1), GEN_OK);
    gen_context *ctx = NULL;
    assert_int_equal(gen_context_options_set(v1, "generation_devices", "cpu:0"), GEN_OK);
    assert_int_equal(gen_context_create(&ctx, v1), GEN_OK);
    const gen_context_options *used = gen_context_get_options(ctx);
    assert_string_equal(used->gpu_dtype, "auto"); /* the default */
    /* handed back with the caller's version: a version-1 program copies its
     * 8744 bytes and can pass the copy on without anything reading past it */
    assert_int_equal(used->version, 1);
    memcpy(v1, used, v1_size);
    assert_int_equal(gen_context_options_set(v1, "output_dir", "elsewhere"), GEN_OK);
    gen_context_destroy(ctx);
    free(v1);

    gen_context_options o2 = GEN_CONTEXT_OPTIONS_INIT;
    assert_int_equal(gen_context_options_set_from_env(&o2), GEN_OK);
    assert_string_equal(o2.gpu_dtype, "bf16");
    unsetenv("LIBGEN_GPU_DTYPE");
}

static void test_gpu_dtype_written_directly(void **state)
{
    (void)state;
    /* A field written directly is checked at context creation like a set one. */
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", "cpu:0"), GEN_OK);
    strcpy(o.gpu_dtype, "f8");
    gen_context *ctx = NULL;
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(gen_last_error_message(), "gpu_dtype: \"f8\" is not a GPU dtype"));
    memset(o.gpu_dtype, 'x', sizeof(o.gpu_dtype)); /* no NUL */
    assert_int_equal(gen_context_create(&ctx, &o), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "not NUL-terminated"));
    strcpy(o.gpu_dtype, "bf16");
    assert_int_equal(gen_context_create(&ctx, &o), GEN_OK);
    assert_string_equal(gen_context_get_options(ctx)->gpu_dtype, "bf16");
    gen_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_each_option),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_get_small_buffer),
        cmocka_unit_test(test_option_names),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_gpu_dtype_written_directly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
