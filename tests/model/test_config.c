/* Typed configs: diffusers' defaults for missing keys, the attention_head_dim
 * quirk, per-class scheduler defaults, and clear errors for bad values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "core/alloc.h"
#include "model/config.h"

#define PARSE(fn, text, out) fn("cfg.json", text, strlen(text), out)

static void expect_error(gen_status st, gen_status want, const char *needle)
{
    assert_int_equal(st, want);
    const char *msg = gen_last_error_message();
    if (!strstr(msg, "cfg.json") || !strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

static void test_unet_defaults(void **state)
{
    (void)state;
    gen__unet_config c;
    assert_int_equal(PARSE(gen__unet_config_parse, "{}", &c), GEN_OK);
    assert_int_equal(c.n_blocks, 4);
    assert_int_equal(c.block_out_channels[3], 1280);
    assert_int_equal(c.cross_attention_dim, 1280);
    assert_int_equal(c.attention_heads[0], 8);
    assert_int_equal(c.layers_per_block, 2);
    assert_int_equal(c.norm_num_groups, 32);
    assert_true(c.flip_sin_to_cos);
    assert_true(c.mid_block_cross_attn);
}

static void test_unet_heads(void **state)
{
    (void)state;
    gen__unet_config c;
    /* SD2: attention_head_dim is a per-block list of head counts */
    assert_int_equal(PARSE(gen__unet_config_parse,
                           "{\"attention_head_dim\": [5, 10, 20, 20], \"cross_attention_dim\": 1024,"
                           " \"use_linear_projection\": true, \"upcast_attention\": true}",
                           &c),
                     GEN_OK);
    assert_int_equal(c.attention_heads[0], 5);
    assert_int_equal(c.attention_heads[3], 20);
    assert_true(c.use_linear_projection);
    /* num_attention_heads wins over attention_head_dim */
    assert_int_equal(PARSE(gen__unet_config_parse,
                           "{\"attention_head_dim\": 8, \"num_attention_heads\": [4, 8, 16, 16],"
                           " \"transformer_layers_per_block\": [1, 2, 3, 4],"
                           " \"only_cross_attention\": [true, false, false, false]}",
                           &c),
                     GEN_OK);
    assert_int_equal(c.attention_heads[0], 4);
    assert_int_equal(c.attention_heads[2], 16);
    assert_int_equal(c.transformer_layers[3], 4);
    assert_true(c.only_cross_attention[0]);
    assert_false(c.only_cross_attention[1]);
}

static void test_unet_errors(void **state)
{
    (void)state;
    gen__unet_config c;
    expect_error(PARSE(gen__unet_config_parse, "{\"layers_per_block\": \"two\"}", &c), GEN_EFORMAT,
                 "\"layers_per_block\" must be an integer");
    expect_error(PARSE(gen__unet_config_parse, "{\"block_out_channels\": [320, 640]}", &c),
                 GEN_EFORMAT, "block_out_channels has 2 entries but down_block_types 4");
    expect_error(PARSE(gen__unet_config_parse, "{\"attention_head_dim\": [8, 8]}", &c),
                 GEN_EFORMAT, "\"attention_head_dim\" has 2 entries, expected 4");
    expect_error(PARSE(gen__unet_config_parse,
                       "{\"down_block_types\": [\"SimpleCrossAttnDownBlock2D\", \"DownBlock2D\","
                       " \"DownBlock2D\", \"DownBlock2D\"]}",
                       &c),
                 GEN_EUNSUPPORTED, "\"down_block_types[0]\" is \"SimpleCrossAttnDownBlock2D\"");
    expect_error(PARSE(gen__unet_config_parse, "{\"norm_num_groups\": 48}", &c), GEN_EFORMAT,
                 "block_out_channels[0] = 320 is not a multiple of norm_num_groups 48");
    expect_error(PARSE(gen__unet_config_parse, "{\"attention_head_dim\": 7}", &c), GEN_EFORMAT,
                 "not divisible by its 7 attention heads");
    expect_error(PARSE(gen__unet_config_parse, "{\"class_embed_type\": \"timestep\"}", &c),
                 GEN_EUNSUPPORTED, "\"class_embed_type\"");
    expect_error(PARSE(gen__unet_config_parse, "{\"act_fn\": \"gelu\"}", &c), GEN_EUNSUPPORTED,
                 "\"act_fn\" = \"gelu\" is not supported");
    expect_error(PARSE(gen__unet_config_parse, "{\"a\": 1, \"a\": 2}", &c), GEN_EFORMAT,
                 "appears twice");
    expect_error(PARSE(gen__unet_config_parse, "[1]", &c), GEN_EFORMAT, "not a JSON object");
    expect_error(PARSE(gen__unet_config_parse, "{\"sample_size\": 64,}", &c), GEN_EFORMAT,
                 "not valid JSON");
    expect_error(PARSE(gen__unet_config_parse, "{\"norm_eps\": -1}", &c), GEN_EFORMAT,
                 "\"norm_eps\" is -1");
}

static void test_sdxl_unet_recognised(void **state)
{
    (void)state;
    gen__unet_config c;
    assert_int_equal(PARSE(gen__unet_config_parse,
                           "{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256,"
                           " \"projection_class_embeddings_input_dim\": 2816,"
                           " \"block_out_channels\": [320, 640, 1280],"
                           " \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"],"
                           " \"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"],"
                           " \"attention_head_dim\": [5, 10, 20], \"transformer_layers_per_block\": [1, 2, 10],"
                           " \"cross_attention_dim\": 2048, \"use_linear_projection\": true}",
                           &c),
                     GEN_OK);
    assert_true(c.addition_text_time);
    assert_int_equal(c.transformer_layers[2], 10);
}

static void test_vae_and_text(void **state)
{
    (void)state;
    gen__vae_config v;
    expect_error(PARSE(gen__vae_config_parse, "{\"block_out_channels\": [128, 256]}", &v),
                 GEN_EFORMAT, "one block per entry");
    assert_int_equal(PARSE(gen__vae_config_parse,
                           "{\"block_out_channels\": [128, 256], \"down_block_types\":"
                           " [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], \"up_block_types\":"
                           " [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"], \"scaling_factor\": 0.13025,"
                           " \"shift_factor\": null}",
                           &v),
                     GEN_OK);
    assert_int_equal(v.n_blocks, 2);
    assert_true(v.scaling_factor == 0.13025);
    assert_false(v.has_shift_factor);
    gen__text_config t;
    assert_int_equal(PARSE(gen__text_config_parse, "{}", &t), GEN_OK);
    assert_int_equal(t.hidden_size, 512);
    assert_int_equal(t.hidden_act, GEN__ACT_QUICK_GELU);
    assert_int_equal(PARSE(gen__text_config_parse,
                           "{\"text_config\": {\"hidden_size\": 1024, \"num_attention_heads\": 16,"
                           " \"hidden_act\": \"gelu\"}}",
                           &t),
                     GEN_OK);
    assert_int_equal(t.hidden_size, 1024);
    assert_int_equal(t.hidden_act, GEN__ACT_GELU);
    expect_error(PARSE(gen__text_config_parse, "{\"hidden_act\": \"relu\"}", &t), GEN_EUNSUPPORTED,
                 "\"hidden_act\" is \"relu\"; supported: quick_gelu, gelu");
    expect_error(PARSE(gen__text_config_parse, "{\"hidden_size\": 100, \"num_attention_heads\": 3}",
                       &t),
                 GEN_EFORMAT, "not divisible");
}

static void test_scheduler_defaults_per_class(void **state)
{
    (void)state;
    /* The SD1.5 file sets neither timestep_spacing nor prediction_type. */
    const char *sd15 = "{\"_class_name\": \"PNDMScheduler\", \"beta_end\": 0.012, \"beta_schedule\":"
                       " \"scaled_linear\", \"beta_start\": 0.00085, \"clip_sample\": false,"
                       " \"num_train_timesteps\": 1000, \"set_alpha_to_one\": false,"
                       " \"skip_prk_steps\": true, \"steps_offset\": 1, \"trained_betas\": null}";
    gen__scheduler_config file, ddim, euler, dpm;
    assert_int_equal(PARSE(gen__scheduler_config_parse, sd15, &file), GEN_OK);
    assert_int_equal(file.class_id, GEN__SCHED_CLASS_PNDM);
    assert_false(file.present & GEN__SK_TIMESTEP_SPACING);
    assert_true(file.present & GEN__SK_STEPS_OFFSET);
    assert_null(file.trained_betas);
    assert_int_equal(gen__scheduler_config_for(&file, GEN__SCHED_CLASS_DDIM, &ddim), GEN_OK);
    assert_int_equal(gen__scheduler_config_for(&file, GEN__SCHED_CLASS_EULER, &euler), GEN_OK);
    assert_int_equal(gen__scheduler_config_for(&file, GEN__SCHED_CLASS_DPM_MULTISTEP, &dpm), GEN_OK);
    /* keys from the file carry over ... */
    assert_true(ddim.beta_end == 0.012 && euler.beta_end == 0.012);
    assert_int_equal(ddim.beta_schedule, GEN__BETAS_SCALED_LINEAR);
    assert_false(ddim.clip_sample);        /* file says false, DDIM's default is true */
    assert_false(ddim.set_alpha_to_one);
    assert_int_equal(euler.steps_offset, 1);
    /* ... absent keys take each class's own default */
    assert_int_equal(ddim.timestep_spacing, GEN__SPACING_LEADING);
    assert_int_equal(euler.timestep_spacing, GEN__SPACING_LINSPACE);
    assert_int_equal(dpm.timestep_spacing, GEN__SPACING_LINSPACE);
    assert_int_equal(dpm.solver_order, 2);
    assert_int_equal(dpm.algorithm_type, GEN__DPM_ALGO_DPMSOLVER_PP);
    assert_true(dpm.lower_order_final);
    assert_true(isinf(dpm.lambda_min_clipped) && dpm.lambda_min_clipped < 0);
    assert_int_equal(euler.prediction_type, GEN__PRED_EPSILON);
    gen__scheduler_config bare;
    gen__scheduler_config_defaults(&bare, GEN__SCHED_CLASS_DDIM);
    assert_true(bare.clip_sample && bare.set_alpha_to_one);
    assert_true(bare.beta_start == 0.0001 && bare.beta_end == 0.02);
}

static void test_scheduler_values_and_errors(void **state)
{
    (void)state;
    gen__scheduler_config c, copy;
    assert_int_equal(PARSE(gen__scheduler_config_parse,
                           "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"algorithm_type\": \"deis\","
                           " \"solver_type\": \"bh2\", \"use_karras_sigmas\": true, \"prediction_type\":"
                           " \"v_prediction\", \"num_train_timesteps\": 4, \"trained_betas\": [0.1, 0.2, 0.3, 0.4],"
                           " \"sigma_min\": null, \"timestep_spacing\": \"trailing\"}",
                           &c),
                     GEN_OK);
    assert_int_equal(c.algorithm_type, GEN__DPM_ALGO_DPMSOLVER_PP); /* diffusers remaps deis */
    assert_int_equal(c.solver_type, GEN__DPM_SOLVER_MIDPOINT);
    assert_true(c.use_karras_sigmas);
    assert_int_equal(c.prediction_type, GEN__PRED_V);
    assert_int_equal(c.timestep_spacing, GEN__SPACING_TRAILING);
    assert_false(c.has_sigma_min);
    assert_int_equal(c.n_trained_betas, 4);
    assert_true(c.trained_betas[3] == 0.4f);
    assert_int_equal(gen__scheduler_config_for(&c, GEN__SCHED_CLASS_EULER, &copy), GEN_OK);
    assert_true(copy.trained_betas != c.trained_betas && copy.trained_betas[1] == 0.2f);
    assert_int_equal(copy.prediction_type, GEN__PRED_V);
    gen__scheduler_config_free(&copy);
    gen__scheduler_config_free(&c);

    expect_error(PARSE(gen__scheduler_config_parse, "{\"prediction_type\": \"flow\"}", &c),
                 GEN_EUNSUPPORTED, "\"prediction_type\" is \"flow\"");
    expect_error(PARSE(gen__scheduler_config_parse,
                       "{\"num_train_timesteps\": 3, \"trained_betas\": [0.1, 0.2]}", &c),
                 GEN_EFORMAT, "num_train_timesteps (3)");
    expect_error(PARSE(gen__scheduler_config_parse,
                       "{\"num_train_timesteps\": 2, \"trained_betas\": [0.1, \"x\"]}", &c),
                 GEN_EFORMAT, "trained_betas[1]");
    expect_error(PARSE(gen__scheduler_config_parse, "{\"beta_start\": 0.5, \"beta_end\": 0.1}", &c),
                 GEN_EFORMAT, "below beta_start");
    expect_error(PARSE(gen__scheduler_config_parse, "{\"num_train_timesteps\": 0}", &c),
                 GEN_EFORMAT, "\"num_train_timesteps\" is 0");
    expect_error(PARSE(gen__scheduler_config_parse, "{\"clip_sample\": 1}", &c), GEN_EFORMAT,
                 "\"clip_sample\" must be true or false");
}

static void test_model_index(void **state)
{
    (void)state;
    gen__model_index m;
    assert_int_equal(PARSE(gen__model_index_parse,
                           "{\"_class_name\": \"StableDiffusionPipeline\", \"unet\": [\"diffusers\","
                           " \"UNet2DConditionModel\"], \"safety_checker\": [null, null],"
                           " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"]}",
                           &m),
                     GEN_OK);
    assert_string_equal(m.class_name, "StableDiffusionPipeline");
    assert_string_equal(m.unet, "UNet2DConditionModel");
    assert_string_equal(m.vae, "");
    expect_error(PARSE(gen__model_index_parse, "{\"unet\": 3}", &m), GEN_EFORMAT, "_class_name");
    expect_error(PARSE(gen__model_index_parse, "{\"_class_name\": \"X\", \"unet\": 3}", &m),
                 GEN_EFORMAT, "[library, class]");
}


/* ---------------------------------------------------------------- against diffusers' from_config */

#define ENUM_NAME(names, v) json_string((names)[(int)(v)])

/* libgen's value of a scheduler key, as the JSON diffusers would write; NULL for keys
 * libgen does not model. */
static json_t *my_value(const gen__scheduler_config *c, const char *k)
{
    static const char *const pred[] = {"epsilon", "v_prediction", "sample"};
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const spacing[] = {"leading", "linspace", "trailing"};
    static const char *const interp[] = {"linear", "log_linear"};
    static const char *const tstype[] = {"discrete", "continuous"};
    static const char *const final[] = {"zero", "sigma_min"};
    static const char *const algo[] = {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"};
    static const char *const solver[] = {"midpoint", "heun"};
    static const char *const shift[] = {"exponential", "linear"};
    static const char *const variance[] = {NULL, "learned", "learned_range", "fixed_small",
                                           "fixed_small_log", "fixed_large", "fixed_large_log"};
#define I(name, f) if (!strcmp(k, name)) return json_integer(c->f)
#define R(name, f) if (!strcmp(k, name)) return json_real(c->f)
#define B(name, f) if (!strcmp(k, name)) return json_boolean(c->f)
#define E(name, f, names) if (!strcmp(k, name)) return ENUM_NAME(names, c->f)
    I("num_train_timesteps", num_train_timesteps);
    R("beta_start", beta_start);
    R("beta_end", beta_end);
    E("beta_schedule", beta_schedule, betas);
    B("clip_sample", clip_sample);
    B("set_alpha_to_one", set_alpha_to_one);
    I("steps_offset", steps_offset);
    E("prediction_type", prediction_type, pred);
    B("thresholding", thresholding);
    R("dynamic_thresholding_ratio", dynamic_thresholding_ratio);
    R("clip_sample_range", clip_sample_range);
    R("sample_max_value", sample_max_value);
    E("timestep_spacing", timestep_spacing, spacing);
    B("rescale_betas_zero_snr", rescale_betas_zero_snr);
    E("interpolation_type", interpolation_type, interp);
    B("use_karras_sigmas", use_karras_sigmas);
    B("use_exponential_sigmas", use_exponential_sigmas);
    B("use_beta_sigmas", use_beta_sigmas);
    if (!strcmp(k, "sigma_min"))
        return c->has_sigma_min ? json_real(c->sigma_min) : json_null();
    if (!strcmp(k, "sigma_max"))
        return c->has_sigma_max ? json_real(c->sigma_max) : json_null();
    E("timestep_type", timestep_type, tstype);
    E("final_sigmas_type", final_sigmas_type, final);
    I("solver_order", solver_order);
    E("algorithm_type", algorithm_type, algo);
    E("solver_type", solver_type, solver);
    B("lower_order_final", lower_order_final);
    B("euler_at_final", euler_at_final);
    B("use_lu_lambdas", use_lu_lambdas);
    if (!strcmp(k, "lambda_min_clipped"))
        return isinf(c->lambda_min_clipped) ? json_string("-inf") : json_real(c->lambda_min_clipped);
    if (!strcmp(k, "variance_type"))
        return c->variance_type == GEN__VARIANCE_NONE ? json_null()
                                                      : json_string(variance[c->variance_type]);
    B("skip_prk_steps", skip_prk_steps);
    if (!strcmp(k, "trained_betas"))
        return c->trained_betas ? NULL : json_null();
    B("use_flow_sigmas", use_flow_sigmas);
    R("flow_shift", flow_shift);
    B("use_dynamic_shifting", use_dynamic_shifting);
    E("time_shift_type", time_shift_type, shift);
#undef I
#undef R
#undef B
#undef E
    return NULL;
}

static bool same_json(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

static void test_scheduler_matches_diffusers_from_config(void **state)
{
    (void)state;
    char *text;
    size_t len;
    assert_int_equal(gen__read_small_file(GEN_MODEL_TEST_DIR "/fixtures/scheduler_from_config.json",
                                          1 << 20, &text, &len),
                     GEN_OK);
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    gen__free(text);
    assert_non_null(root);
    json_t *sources = json_object_get(root, "sources"), *results = json_object_get(root, "results");
    size_t i, checked = 0;
    json_t *r;
    json_array_foreach(results, i, r) {
        const char *src_name = json_string_value(json_object_get(r, "source"));
        const char *cls_name = json_string_value(json_object_get(r, "class"));
        char *src = json_dumps(json_object_get(sources, src_name), 0);
        gen__scheduler_config file, mine;
        assert_int_equal(gen__scheduler_config_parse("src", src, strlen(src), &file), GEN_OK);
        free(src);
        assert_int_equal(gen__scheduler_config_for(&file, gen__sched_class_from_name(cls_name), &mine),
                         GEN_OK);
        const char *key;
        json_t *want;
        json_object_foreach(json_object_get(r, "config"), key, want) {
            json_t *got = my_value(&mine, key);
            if (!got)
                fail_msg("%s from %s: key \"%s\" is not modelled by libgen", cls_name, src_name, key);
            if (!same_json(got, want)) {
                char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
                fail_msg("%s from %s: \"%s\" is %s in libgen, %s in diffusers", cls_name, src_name,
                         key, g, w);
            }
            json_decref(got);
            checked++;
        }
        gen__scheduler_config_free(&mine);
        gen__scheduler_config_free(&file);
    }
    print_message("%zu scheduler keys checked against diffusers\n", checked);
    assert_true(checked > 200);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unet_defaults),
        cmocka_unit_test(test_unet_heads),
        cmocka_unit_test(test_unet_errors),
        cmocka_unit_test(test_sdxl_unet_recognised),
        cmocka_unit_test(test_vae_and_text),
        cmocka_unit_test(test_scheduler_defaults_per_class),
        cmocka_unit_test(test_scheduler_values_and_errors),
        cmocka_unit_test(test_model_index),
        cmocka_unit_test(test_scheduler_matches_diffusers_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
