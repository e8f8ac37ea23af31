/* End to end against diffusers: every case of tests/fixtures/pipeline/cases.json
 * (made by tools/make_pipeline_fixtures.py) is generated through the public
 * gen_generate on a CPU device and compared with diffusers' uint8 image: at
 * most 2/255 per pixel. Also: the same seed on two devices gives the same
 * image, the diffusers folder and the single file give the same image, bad
 * jobs fail with clear errors, and cancellation from the progress callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <gen/gen.h>

#include "backend/cpu/cpu_internal.h"
#include "cases.h"
#include "model/safetensors.h"

#ifndef GEN_FIXTURES_DIR
#error GEN_FIXTURES_DIR must be defined by the build
#endif

static gen_context *cpu_context(const char *devices)
{
    gen_context_options o = GEN_CONTEXT_OPTIONS_INIT;
    o.log_level = GEN_LOG_ERROR;
    assert_int_equal(gen_context_options_set(&o, "generation_devices", devices), GEN_OK);
    gen_context *ctx = NULL;
    if (gen_context_create(&ctx, &o) != GEN_OK)
        fail_msg("context: %s", gen_last_error_message());
    return ctx;
}

static void set(gen_job *job, const char *name, const char *value)
{
    if (gen_job_set(job, name, value) != GEN_OK)
        fail_msg("%s=%s: %s", name, value, gen_last_error_message());
}

static gen_job *job_for_case(json_t *c)
{
    gen_job *job = case_job(c);
    if (!job)
        fail_msg("case %s: cannot make its job", json_string_value(json_object_get(c, "name")));
    return job;
}

static json_t *load_cases(void)
{
    json_t *root = cases_load();
    if (!root)
        fail_msg("cannot read cases.json");
    return root;
}

static int max_pixel_diff(const gen_image *img, const char *case_name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pipeline/%s.safetensors", GEN_FIXTURES_DIR, case_name);
    gen__st_file *f = NULL;
    if (gen__st_open(&f, path) != GEN_OK)
        fail_msg("%s: %s", path, gen_last_error_message());
    const gen__st_view *v = gen__st_find(f, "image_u8");
    assert_non_null(v);
    size_t n = (size_t)gen_image_width(img) * (size_t)gen_image_height(img) * 3;
    assert_int_equal(v->nbytes, n); /* [1, H, W, 3] uint8, the same layout */
    const uint8_t *want = v->data, *got = gen_image_pixels(img);
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)want[i] - (int)got[i]);
        worst = d > worst ? d : worst;
    }
    gen__st_close(f);
    return worst;
}

static void test_cases_match_diffusers(void **state)
{
    (void)state;
    gen_context *ctx = cpu_context("cpu:0");
    json_t *root = load_cases();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        gen_job *job = job_for_case(c);
        gen_image *img = NULL;
        if (gen_generate(&img, ctx, 0, job, NULL, NULL) != GEN_OK)
            fail_msg("%s: %s", name, gen_last_error_message());
        int worst = max_pixel_diff(img, name);
        print_message("%-26s max pixel difference vs diffusers: %d/255\n", name, worst);
        if (worst > 2)
            fail_msg("%s: a pixel differs by %d/255 from diffusers (limit 2)", name, worst);
        /* The metadata records the parameters. */
        json_t *meta = json_loads(gen_image_metadata(img), 0, NULL);
        assert_non_null(meta);
        assert_int_equal(json_integer_value(json_object_get(meta, "seed")),
                         json_integer_value(json_object_get(c, "seed")));
        json_decref(meta);
        gen_image_destroy(img);
        gen_job_destroy(job);
    }
    json_decref(root);
    gen_context_destroy(ctx);
}

static void test_same_seed_same_image_on_both_devices_and_layouts(void **state)
{
    (void)state;
    gen_context *ctx = cpu_context("cpu:0,cpu:1");
    json_t *root = load_cases();
    json_t *c = json_array_get(json_object_get(root, "cases"), 0);
    gen_job *job = job_for_case(c);
    gen_image *a = NULL, *b = NULL, *single = NULL;
    assert_int_equal(gen_generate(&a, ctx, 0, job, NULL, NULL), GEN_OK);
    assert_int_equal(gen_generate(&b, ctx, 1, job, NULL, NULL), GEN_OK);
    size_t n = (size_t)gen_image_width(a) * (size_t)gen_image_height(a) * 3;
    assert_memory_equal(gen_image_pixels(a), gen_image_pixels(b), n);
    /* The single-file checkpoint (f16 values, LDM names) of the same weights. */
    char path[512];
    snprintf(path, sizeof(path), "%s/tiny-sd15.safetensors", GEN_FIXTURES_DIR);
    set(job, "model", path);
    setenv("LIBGEN_TOKENIZER_DIR", GEN_FIXTURES_DIR "/tiny-sd15/tokenizer", 1);
    gen_status st = gen_generate(&single, ctx, 0, job, NULL, NULL);
    unsetenv("LIBGEN_TOKENIZER_DIR");
    if (st == GEN_OK) {
        assert_memory_equal(gen_image_pixels(a), gen_image_pixels(single), n);
    } else {
        /* Without its config folder the tiny single file cannot be described
         * from shapes alone (its odd group counts); the message says so. */
        print_message("single file: %s\n", gen_last_error_message());
        assert_int_equal(st, GEN_EFORMAT);
    }
    /* Saving as new files never overwrites: stem.png, then stem-1.png. */
    char dir[] = "/tmp/libgen-save-XXXXXX", p1[512], p2[512];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(gen_image_save_png_new(a, dir, "img", p1, sizeof(p1)), GEN_OK);
    assert_int_equal(gen_image_save_png_new(b, dir, "img", p2, sizeof(p2)), GEN_OK);
    assert_string_not_equal(p1, p2);
    assert_non_null(strstr(p1, "/img.png"));
    assert_non_null(strstr(p2, "/img-1.png"));
    char small[8];
    assert_int_equal(gen_image_save_png_new(a, dir, "img", small, sizeof(small)), GEN_EINVAL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    gen_image_destroy(a);
    gen_image_destroy(b);
    gen_image_destroy(single);
    gen_job_destroy(job);
    json_decref(root);
    gen_context_destroy(ctx);
}

static int32_t cancel_at_step_2(int32_t stage, int32_t step, int32_t total, void *user_data)
{
    (void)total;
    int *seen = user_data;
    if (stage == GEN_STAGE_DENOISE)
        *seen = step;
    return stage == GEN_STAGE_DENOISE && step == 2;
}

static void test_bad_jobs_and_cancel(void **state)
{
    (void)state;
    gen_context *ctx = cpu_context("cpu:0");
    json_t *root = load_cases();
    gen_job *job = job_for_case(json_array_get(json_object_get(root, "cases"), 0));
    gen_image *img = (gen_image *)1;

    int seen = 0;
    assert_int_equal(gen_generate(&img, ctx, 0, job, cancel_at_step_2, &seen), GEN_ECANCELED);
    assert_null(img);
    assert_int_equal(seen, 2);

    assert_int_equal(gen_generate(&img, ctx, 5, job, NULL, NULL), GEN_EINVAL);
    set(job, "width", "72"); /* a multiple of 8 the UNet cannot halve twice */
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "multiples of"));
    set(job, "width", "64");
    set(job, "model", "/nonexistent/model");
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_ENOTFOUND);
    assert_non_null(strstr(gen_last_error_message(), "/nonexistent/model"));
    char path[512];
    snprintf(path, sizeof(path), "%s/tiny-sd15", GEN_FIXTURES_DIR);
    set(job, "model", path);
    snprintf(path, sizeof(path), "%s/pipeline/init_64.png", GEN_FIXTURES_DIR);
    set(job, "init_image", path);
    set(job, "width", "128");
    set(job, "height", "128");
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "init_image"));
    set(job, "init_image", "/nonexistent/init.png");
    assert_int_equal(gen_generate(&img, ctx, 0, job, NULL, NULL), GEN_ENOTFOUND);
    assert_null(img);
    gen_job_destroy(job);
    json_decref(root);
    gen_context_destroy(ctx);
}

int main(void)
{
    /* The winograd run of this test (meson.build) sends every 3x3 convolution
     * through Winograd, which the tiny model's few channels never choose. */
    const char *algo = getenv("GEN_TEST_CONV_ALGORITHM");
    if (algo && strcmp(algo, "winograd") == 0)
        gen__cpu_conv_algorithm = GEN__CPU_CONV_WINOGRAD;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_match_diffusers),
        cmocka_unit_test(test_same_seed_same_image_on_both_devices_and_layouts),
        cmocka_unit_test(test_bad_jobs_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
