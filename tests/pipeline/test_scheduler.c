/* Schedulers against diffusers (tests/fixtures/schedulers, made by
 * tools/make_scheduler_fixtures.py): timesteps, sigmas, init_noise_sigma and
 * a full step loop on a synthetic model output, for every scheduler x Karras
 * x prediction type x spacing x step count; img2img start indices. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "pipeline/rng.h"
#include "pipeline/scheduler.h"

#define TOL_REL_L2 1e-5

/* The fixtures hold -Infinity (lambda_min_clipped), which is not JSON. */
static json_t *load_json_fixture(const char *rel)
{
    char p[1024];
    size_t len;
    char *text = fixture_read_file(fixture_path(p, sizeof p, rel), &len);
    assert_non_null(text);
    for (char *q = text; (q = strstr(q, "-Infinity")) != NULL;)
        memcpy(q, "null     ", 9);
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    if (!root)
        fail_msg("%s: %s", rel, err.text);
    free(text);
    return root;
}

/* Scheduler parameters from scheduler_config.json text, the way the pipeline
 * gets them: the model module parses, the scheduler takes its class's view. */
static gen_status params_from_text(gen__sched_params *p, gen__sched_kind kind, const char *text,
                                   const char *label)
{
    gen__scheduler_config file;
    gen_status st = gen__scheduler_config_parse(label, text, strlen(text), &file);
    if (st != GEN_OK)
        return st;
    st = gen__sched_params_from_config(p, kind, &file, -1, label);
    gen__scheduler_config_free(&file);
    return st;
}

static gen_status params_from_json(gen__sched_params *p, gen__sched_kind kind, const json_t *cfg,
                                   const char *label)
{
    char *text = json_dumps(cfg, JSON_COMPACT);
    if (!text)
        return GEN_ENOMEM;
    gen_status st = params_from_text(p, kind, text, label);
    free(text);
    return st;
}

static void default_params(gen__sched_kind kind, gen__sched_params *p)
{
    if (params_from_text(p, kind, "{}", "defaults") != GEN_OK)
        fail_msg("defaults: %s", gen_last_error_message());
}

typedef struct stats {
    int cases;
    double max_rel_final, max_rel_step1, max_abs_final;
    double max_t_err, max_sigma_rel, max_init_rel;
    char worst[128];
} stats;

static void run_case(gen__sched_kind kind, json_t *c, const st_file *st, stats *S)
{
    const char *name = json_string_value(json_object_get(c, "case"));
    gen__sched_params cfg;
    if (params_from_json(&cfg, kind, json_object_get(c, "config"), name) != GEN_OK)
        fail_msg("%s: %s", name, gen_last_error_message());
    int steps = (int)json_integer_value(json_object_get(c, "steps"));
    gen__scheduler *s;
    if (gen__scheduler_create(&s, kind, &cfg, steps, 0.0f) != GEN_OK)
        fail_msg("%s: %s", name, gen_last_error_message());
    json_t *ts = json_object_get(c, "timesteps_float");
    if (gen__scheduler_num_timesteps(s) != json_array_size(ts))
        fail_msg("%s: %zu timesteps, diffusers has %zu", name, gen__scheduler_num_timesteps(s),
                 json_array_size(ts));
    for (size_t i = 0; i < json_array_size(ts); i++) {
        double want = json_number_value(json_array_get(ts, i));
        double err = fabs(gen__scheduler_timestep(s, i) - want);
        S->max_t_err = fmax(S->max_t_err, err);
        if (err > 1e-3)
            fail_msg("%s: timestep[%zu] %.9g vs %.9g", name, i, gen__scheduler_timestep(s, i), want);
    }
    json_t *sig = json_object_get(c, "sigmas");
    for (size_t i = 0; json_is_array(sig) && i < json_array_size(sig); i++) {
        double want = json_number_value(json_array_get(sig, i));
        double err = fabs(gen__scheduler_sigma(s, i) - want) / fmax(fabs(want), 1e-6);
        S->max_sigma_rel = fmax(S->max_sigma_rel, err);
        if (err > 1e-5)
            fail_msg("%s: sigma[%zu] %.9g vs %.9g", name, i, gen__scheduler_sigma(s, i), want);
    }
    double init_want = json_number_value(json_object_get(c, "init_noise_sigma"));
    float init = gen__scheduler_init_noise_sigma(s);
    S->max_init_rel = fmax(S->max_init_rel, fabs(init - init_want) / init_want);

    /* The loop of tools/make_scheduler_fixtures.py. */
    enum { N = 256 };
    float x[N], xin[N], eps[N];
    gen__rng latent_rng, step_rng;
    gen__rng_seed(&latent_rng, 0);
    gen__rng_randn(&latent_rng, x, N);
    for (int k = 0; k < N; k++)
        x[k] = x[k] * init;
    gen__rng_seed(&step_rng, 1);
    double first[N];
    for (size_t i = 0; i < gen__scheduler_num_timesteps(s); i++) {
        double t = gen__scheduler_timestep(s, i);
        gen__scheduler_scale_model_input(s, i, x, xin, N);
        float add = (float)(0.05 * sin(t));
        for (int k = 0; k < N; k++) {
            float m = 0.1f * xin[k];
            eps[k] = m + add;
        }
        assert_int_equal(gen__scheduler_step(s, i, eps, x, N, &step_rng), GEN_OK);
        if (i == 0)
            for (int k = 0; k < N; k++)
                first[k] = x[k];
    }
    char key[160];
    size_t n;
    snprintf(key, sizeof key, "%s.step1", name);
    double *ref1 = st_get(st, key, &n);
    assert_non_null(ref1);
    assert_int_equal(n, N);
    double *reff = st_get(st, name, &n);
    assert_non_null(reff);
    double xd[N];
    for (int k = 0; k < N; k++)
        xd[k] = x[k];
    double r1 = rel_l2(first, ref1, N), rf = rel_l2(xd, reff, N);
    S->max_rel_step1 = fmax(S->max_rel_step1, r1);
    if (rf > S->max_rel_final) {
        S->max_rel_final = rf;
        snprintf(S->worst, sizeof S->worst, "%s", name);
    }
    S->max_abs_final = fmax(S->max_abs_final, max_abs_diff(xd, reff, N));
    if (r1 > TOL_REL_L2 || rf > TOL_REL_L2)
        fail_msg("%s: relative L2 error step1 %.3g final %.3g", name, r1, rf);
    free(ref1);
    free(reff);
    S->cases++;
    gen__scheduler_destroy(s);
}

static void run_fixture(const char *sched, gen__sched_kind kind)
{
    char rel[128], p[1024];
    snprintf(rel, sizeof rel, "schedulers/%s.json", sched);
    json_t *root = load_json_fixture(rel);
    st_file st;
    snprintf(rel, sizeof rel, "schedulers/%s.safetensors", sched);
    assert_int_equal(st_open(&st, fixture_path(p, sizeof p, rel)), 0);
    stats S = { 0 };
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
        run_case(kind, c, &st, &S);
    print_message("%s: %d cases; final latents max rel L2 %.3g (%s), max abs %.3g; after step 1 "
                  "max rel L2 %.3g; timesteps max abs err %.3g; sigmas max rel err %.3g; "
                  "init_noise_sigma max rel err %.3g\n", sched, S.cases, S.max_rel_final, S.worst,
                  S.max_abs_final, S.max_rel_step1, S.max_t_err, S.max_sigma_rel, S.max_init_rel);
    assert_true(S.cases >= 24);
    st_close(&st);
    json_decref(root);
}

static void test_ddim(void **state) { (void)state; run_fixture("ddim", GEN__SCHED_DDIM); }
static void test_euler(void **state) { (void)state; run_fixture("euler", GEN__SCHED_EULER); }
static void test_euler_a(void **state) { (void)state; run_fixture("euler_a", GEN__SCHED_EULER_A); }
static void test_dpmpp_2m(void **state) { (void)state; run_fixture("dpmpp_2m", GEN__SCHED_DPMPP_2M); }

/* StableDiffusionImg2ImgPipeline.get_timesteps. */
static void test_img2img_start(void **state)
{
    (void)state;
    json_t *root = load_json_fixture("schedulers/img2img.json");
    size_t i;
    json_t *c;
    int checked = 0;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        gen__sched_kind kind;
        assert_int_equal(gen__sched_kind_from_name(json_string_value(json_object_get(c, "scheduler")),
                                                   &kind), GEN_OK);
        gen__sched_params cfg;
        default_params(kind, &cfg);
        cfg.beta_start = 0.00085;
        cfg.beta_end = 0.012;
        cfg.beta_schedule = GEN__BETAS_SCALED_LINEAR;
        cfg.steps_offset = 1;
        cfg.set_alpha_to_one = false;
        cfg.clip_sample = false;
        const char *spacing = json_string_value(json_object_get(c, "spacing"));
        cfg.timestep_spacing = strcmp(spacing, "leading") == 0 ? GEN__SPACING_LEADING
                                                                 : GEN__SPACING_TRAILING;
        int steps = (int)json_integer_value(json_object_get(c, "steps"));
        gen__scheduler *s;
        assert_int_equal(gen__scheduler_create(&s, kind, &cfg, steps, 0.0f), GEN_OK);
        size_t start = gen__scheduler_img2img_start(s, json_number_value(json_object_get(c, "strength")));
        assert_int_equal(start, json_integer_value(json_object_get(c, "t_start")));
        json_t *kept = json_object_get(c, "kept_timesteps");
        assert_int_equal(gen__scheduler_num_timesteps(s) - start, json_array_size(kept));
        for (size_t k = 0; k < json_array_size(kept); k++)
            assert_true(fabs(gen__scheduler_timestep(s, start + k) -
                             json_number_value(json_array_get(kept, k))) < 1e-3);
        gen__scheduler_destroy(s);
        checked++;
    }
    print_message("img2img: %d cases\n", checked);
    json_decref(root);
}

/* add_noise of each kind at an img2img start (diffusers' formulas). */
static void test_add_noise(void **state)
{
    (void)state;
    gen__sched_params cfg;
    default_params(GEN__SCHED_EULER, &cfg);
    cfg.beta_schedule = GEN__BETAS_SCALED_LINEAR;
    cfg.beta_start = 0.00085;
    cfg.beta_end = 0.012;
    gen__scheduler *s;
    assert_int_equal(gen__scheduler_create(&s, GEN__SCHED_EULER, &cfg, 10, 0.0f), GEN_OK);
    float x[3] = { 1, -2, 0.5f }, e[3] = { 0.1f, 0.2f, -0.3f }, out[3];
    size_t start = gen__scheduler_img2img_start(s, 0.5);
    assert_int_equal(start, 5);
    gen__scheduler_add_noise(s, start, x, e, out, 3);
    float sigma = (float)gen__scheduler_sigma(s, 5);
    for (int k = 0; k < 3; k++)
        assert_true(out[k] == x[k] + e[k] * sigma);
    gen__scheduler_destroy(s);
}

static void test_bad_config(void **state)
{
    (void)state;
    gen__sched_params cfg;
    const char *bad[] = {
        "{\"beta_schedule\": \"cosine\"}", "{\"trained_betas\": [0.1, 0.2]}",
        "{\"num_train_timesteps\": \"1000\"}", "{\"thresholding\": true}",
        "{\"prediction_type\": \"flow\"}", "{\"steps_offset\": -1}", "[1]",
        "{\"beta_start\": 0.5, \"beta_end\": 0.1}", "{\"algorithm_type\": \"sde-dpmsolver++\"}",
    };
    const gen_status want[] = { GEN_EUNSUPPORTED, GEN_EFORMAT, GEN_EFORMAT, GEN_EUNSUPPORTED,
                                GEN_EUNSUPPORTED, GEN_EFORMAT, GEN_EFORMAT, GEN_EFORMAT,
                                GEN_EUNSUPPORTED };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gen_status st = params_from_text(&cfg, GEN__SCHED_DPMPP_2M, bad[i], "sc.json");
        if (st != want[i] || !strstr(gen_last_error_message(), "sc.json"))
            fail_msg("%s: status %d (want %d): %s", bad[i], (int)st, (int)want[i],
                     gen_last_error_message());
    }
    gen__sched_kind k;
    assert_int_equal(gen__sched_kind_from_name("plms", &k), GEN_EINVAL);
    assert_non_null(strstr(gen_last_error_message(), "plms"));
    default_params(GEN__SCHED_EULER, &cfg);
    gen__scheduler *s = (gen__scheduler *)1;
    assert_int_equal(gen__scheduler_create(&s, GEN__SCHED_EULER, &cfg, 0, 0.0f), GEN_EINVAL);
    assert_null(s);
    assert_int_equal(gen__scheduler_create(&s, GEN__SCHED_EULER, &cfg, 1001, 0.0f), GEN_EINVAL);
    /* The real model configs load. */
    char p[1024];
    FILE *f = fopen(fixture_path(p, sizeof p, "tiny-sd2v/scheduler/scheduler_config.json"), "rb");
    assert_non_null(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    assert_int_equal(params_from_text(&cfg, GEN__SCHED_EULER, text, "tiny-sd2v"), GEN_OK);
    assert_int_equal(cfg.prediction_type, GEN__PRED_V);
    assert_int_equal(cfg.steps_offset, 1);
    /* Ancestral steps need a generator; a changed element count is refused. */
    assert_int_equal(gen__scheduler_create(&s, GEN__SCHED_EULER_A, &cfg, 4, 0.0f), GEN_OK);
    float x[4] = { 0 }, m[4] = { 0 };
    assert_int_equal(gen__scheduler_step(s, 0, m, x, 4, NULL), GEN_EINVAL);
    gen__rng rng;
    gen__rng_seed(&rng, 3);
    assert_int_equal(gen__scheduler_step(s, 0, m, x, 4, &rng), GEN_OK);
    assert_int_equal(gen__scheduler_step(s, 1, m, x, 3, &rng), GEN_EINVAL);
    assert_int_equal(gen__scheduler_step(s, 9, m, x, 4, &rng), GEN_EINVAL);
    gen__scheduler_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ddim),
        cmocka_unit_test(test_euler),
        cmocka_unit_test(test_euler_a),
        cmocka_unit_test(test_dpmpp_2m),
        cmocka_unit_test(test_img2img_start),
        cmocka_unit_test(test_add_noise),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
