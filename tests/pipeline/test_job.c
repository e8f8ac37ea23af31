/* Job parameters: every field from text, bad values with messages naming the
 * field, JSON round trip, unknown keys refused, cross-field validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <gen/gen.h>

static gen_job *new_job(void)
{
    gen_job *job = NULL;
    assert_int_equal(gen_job_create(&job), GEN_OK);
    return job;
}

static void set_ok(gen_job *job, const char *name, const char *value)
{
    if (gen_job_set(job, name, value) != GEN_OK)
        fail_msg("%s=%s: %s", name, value, gen_last_error_message());
}

static void get_eq(const gen_job *job, const char *name, const char *expected)
{
    char buf[256];
    assert_int_equal(gen_job_get(job, name, buf, sizeof(buf)), GEN_OK);
    if (strcmp(buf, expected) != 0)
        fail_msg("%s: got \"%s\", expected \"%s\"", name, buf, expected);
}

static void set_bad(gen_job *job, const char *name, const char *value, gen_status status,
                    const char *fragment)
{
    char before[4096], after[4096];
    assert_int_equal(gen_job_to_json(job, before, sizeof(before), NULL), GEN_OK);
    assert_int_equal(gen_job_set(job, name, value), status);
    if (!strstr(gen_last_error_message(), fragment))
        fail_msg("%s=%s: message \"%s\" lacks \"%s\"", name, value, gen_last_error_message(),
                 fragment);
    assert_int_equal(gen_job_to_json(job, after, sizeof(after), NULL), GEN_OK);
    assert_string_equal(before, after); /* unchanged on failure */
}

static void test_defaults_and_set(void **state)
{
    (void)state;
    gen_job *job = new_job();
    get_eq(job, "width", "512");
    get_eq(job, "steps", "20");
    get_eq(job, "scheduler", "euler_a");
    get_eq(job, "seed", "random");
    get_eq(job, "tiled_vae", "auto");
    set_ok(job, "model", "/models/sd15");
    set_ok(job, "prompt", "a red fox, \xc3\xa9t\xc3\xa9");
    set_ok(job, "negative_prompt", "");
    set_ok(job, "width", "768");
    set_ok(job, "height", "64");
    set_ok(job, "steps", "1000");
    set_ok(job, "guidance", "7.5");
    set_ok(job, "seed", "4294967295");
    set_ok(job, "scheduler", "dpmpp_2m");
    set_ok(job, "karras", "true");
    set_ok(job, "clip_skip", "1");
    set_ok(job, "strength", "0.6");
    set_ok(job, "tiled_vae", "on");
    set_ok(job, "loras", "a.safetensors:0.5,dir:with:colons/b.safetensors,c.safetensors:-1e0");
    get_eq(job, "width", "768");
    get_eq(job, "seed", "4294967295");
    get_eq(job, "karras", "true");
    get_eq(job, "guidance", "7.5");
    get_eq(job, "loras", "a.safetensors:0.5,dir:with:colons/b.safetensors:1,c.safetensors:-1");
    assert_int_equal(gen_job_validate(job), GEN_OK);
    gen_job_destroy(job);
    gen_job_destroy(NULL);
}

static void test_bad_values(void **state)
{
    (void)state;
    gen_job *job = new_job();
    set_ok(job, "prompt", "x");
    set_bad(job, "colour", "red", GEN_ENOTFOUND, "unknown job field \"colour\"");
    set_bad(job, "width", "500", GEN_EINVAL, "not a multiple of 8");
    set_bad(job, "width", "8", GEN_EINVAL, "out of range");
    set_bad(job, "height", "99999", GEN_EINVAL, "out of range");
    set_bad(job, "steps", "0", GEN_EINVAL, "steps: 0 is out of range");
    set_bad(job, "steps", "1001", GEN_EINVAL, "out of range");
    set_bad(job, "guidance", "nan", GEN_EINVAL, "not a number");
    set_bad(job, "guidance", "1e400", GEN_EINVAL, "out of range");
    set_bad(job, "guidance", "-1", GEN_EINVAL, "out of range");
    set_bad(job, "seed", "-5", GEN_EINVAL, "not a seed");
    set_bad(job, "seed", "4294967296", GEN_EINVAL, "not a seed");
    set_bad(job, "scheduler", "plms", GEN_EINVAL, "unknown scheduler \"plms\"");
    set_bad(job, "karras", "maybe", GEN_EINVAL, "not a boolean");
    set_bad(job, "strength", "0", GEN_EINVAL, "out of range (0, 1]");
    set_bad(job, "strength", "1.5", GEN_EINVAL, "out of range");
    set_bad(job, "prompt", "", GEN_EINVAL, "must not be empty");
    set_bad(job, "prompt", "bad \xff utf8", GEN_EINVAL, "not valid UTF-8");
    set_bad(job, "tiled_vae", "sometimes", GEN_EINVAL, "not auto, on or off");
    set_bad(job, "loras", "a.safetensors:1.2.3", GEN_EINVAL, "not a number");
    set_bad(job, "loras", "a.safetensors:11", GEN_EINVAL, "out of range");
    set_bad(job, "loras", ":0.5", GEN_EINVAL, "empty path");
    char *long_prompt = malloc(20000);
    memset(long_prompt, 'a', 19999);
    long_prompt[19999] = '\0';
    set_bad(job, "prompt", long_prompt, GEN_EINVAL, "at most 16384");
    free(long_prompt);
    assert_int_equal(gen_job_set(job, NULL, "x"), GEN_EINVAL);
    gen_job_destroy(job);
}

static void test_validate(void **state)
{
    (void)state;
    gen_job *job = new_job();
    assert_int_equal(gen_job_validate(job), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "\"model\" is not set"));
    set_ok(job, "model", "m");
    assert_int_equal(gen_job_validate(job), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "\"prompt\" is not set"));
    set_ok(job, "prompt", "p");
    set_ok(job, "scheduler", "ddim");
    set_ok(job, "karras", "on");
    assert_int_equal(gen_job_validate(job), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "karras"));
    set_ok(job, "karras", "off");
    set_ok(job, "init_image", "in.png");
    set_ok(job, "steps", "2");
    set_ok(job, "strength", "0.3");
    assert_int_equal(gen_job_validate(job), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "no denoising step"));
    set_ok(job, "strength", "0.5");
    assert_int_equal(gen_job_validate(job), GEN_OK);
    /* A random seed is chosen once and kept. */
    char seed1[32], seed2[32];
    assert_int_equal(gen_job_get(job, "seed", seed1, sizeof(seed1)), GEN_OK);
    assert_string_not_equal(seed1, "random");
    assert_int_equal(gen_job_validate(job), GEN_OK);
    assert_int_equal(gen_job_get(job, "seed", seed2, sizeof(seed2)), GEN_OK);
    assert_string_equal(seed1, seed2);
    gen_job_destroy(job);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    gen_job *job = new_job();
    set_ok(job, "model", "tests/fixtures/tiny-sd15");
    set_ok(job, "prompt", "caf\xc3\xa9 \"quoted\" \\ \xf0\x9f\x98\x80");
    set_ok(job, "seed", "42");
    set_ok(job, "init_image", "init.png");
    set_ok(job, "strength", "0.6");
    set_ok(job, "loras", "l.safetensors:0.25");
    size_t needed = 0;
    assert_int_equal(gen_job_to_json(job, NULL, 0, &needed), GEN_EINVAL);
    assert_true(needed > 10);
    char *json = malloc(needed);
    assert_int_equal(gen_job_to_json(job, json, needed, NULL), GEN_OK);
    assert_int_equal(strlen(json) + 1, needed);
    gen_job *back = NULL;
    assert_int_equal(gen_job_from_json(&back, json), GEN_OK);
    char again[4096];
    assert_int_equal(gen_job_to_json(back, again, sizeof(again), NULL), GEN_OK);
    assert_string_equal(json, again);
    get_eq(back, "prompt", "caf\xc3\xa9 \"quoted\" \\ \xf0\x9f\x98\x80");
    get_eq(back, "loras", "l.safetensors:0.25");
    free(json);
    gen_job_destroy(back);
    gen_job_destroy(job);
}

static void json_bad(const char *json, gen_status status, const char *fragment)
{
    gen_job *job = (gen_job *)1;
    assert_int_equal(gen_job_from_json(&job, json), status);
    assert_null(job);
    if (!strstr(gen_last_error_message(), fragment))
        fail_msg("%s: message \"%s\" lacks \"%s\"", json, gen_last_error_message(), fragment);
}

static void test_json_errors(void **state)
{
    (void)state;
    json_bad("{", GEN_EFORMAT, "job JSON");
    json_bad("[1,2]", GEN_EFORMAT, "not an object");
    json_bad("{\"prompt\": \"a\", \"prompt\": \"b\"}", GEN_EFORMAT, "duplicate");
    json_bad("{\"promt\": \"a\"}", GEN_ENOTFOUND, "unknown job field \"promt\"");
    json_bad("{\"steps\": \"20\"}", GEN_EINVAL, "\"steps\" must be an integer");
    json_bad("{\"steps\": 20.5}", GEN_EINVAL, "must be an integer");
    json_bad("{\"karras\": 1}", GEN_EINVAL, "true or false");
    json_bad("{\"seed\": -1}", GEN_EINVAL, "non-negative");
    json_bad("{\"width\": 333}", GEN_EINVAL, "multiple of 8");
    json_bad("{\"loras\": [{\"path\": 3}]}", GEN_EINVAL, "loras[0]");
    json_bad("{\"loras\": [{\"path\": \"a\", \"weight\": 1, \"x\": 2}]}", GEN_EINVAL, "loras[0]");
    json_bad("{\"prompt\": \"a\\u0000b\"}", GEN_EFORMAT, "\\u0000");
    gen_job *job = NULL;
    assert_int_equal(gen_job_from_json(&job, "{\"seed\": \"random\", \"guidance\": 1}"), GEN_OK);
    get_eq(job, "seed", "random");
    get_eq(job, "guidance", "1");
    gen_job_destroy(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_set),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
