/* Models on disk: the tiny committed fixtures (tools/make_tiny_model.py)
 * loaded from both layouts give identical tensors; fp16 variants; SD2
 * detection; full-size SD1.5/SD2.1-shaped sparse single files (written here)
 * map to the diffusers names with configs derived from the shapes; pickle
 * checkpoints are refused; the public gen_model_inspect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <gen/gen.h>

#include "core/alloc.h"
#include "model/model.h"
#include "sd_ldm.h"
#include "st_write.h"

#define FIX GEN_TEST_FIXTURES
static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = st_tempdir();
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_rmtree(dir);
    free(dir);
    return 0;
}

static gen__model *open_ok(const char *path, const gen__model_open_options *opts)
{
    gen__model *m = NULL;
    gen_status st = gen__model_open(&m, path, opts);
    if (st != GEN_OK)
        fail_msg("open %s: %s: %s", path, gen_status_string(st), gen_last_error_message());
    return m;
}

static float *to_f32(const gen__st_view *t)
{
    float *out = malloc((t->numel ? t->numel : 1) * sizeof(float));
    assert_non_null(out);
    assert_true(gen__st_dtype_to_f32(t->dtype, t->data, out, t->numel));
    return out;
}

/* Same part contents: names, shapes, and bit-identical values after widening to f32. */
static void assert_same_part(const gen__model *a, const gen__model *b, gen__part part)
{
    size_t n = gen__model_tensor_count(a, part);
    assert_true(n > 0);
    assert_int_equal(n, gen__model_tensor_count(b, part));
    for (size_t i = 0; i < n; i++) {
        const gen__st_view *x = gen__model_tensor_at(a, part, i);
        const gen__st_view *y = gen__model_tensor_at(b, part, i);
        if (strcmp(x->name, y->name) != 0)
            fail_msg("%s: tensor %zu is '%s' in one layout and '%s' in the other",
                     gen__part_name(part), i, x->name, y->name);
        assert_int_equal(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d])
                fail_msg("%s '%s': dim %d is %lld vs %lld", gen__part_name(part), x->name, d,
                         (long long)x->shape[d], (long long)y->shape[d]);
        float *fx = to_f32(x), *fy = to_f32(y);
        if (memcmp(fx, fy, x->numel * sizeof(float)) != 0)
            fail_msg("%s '%s': values differ", gen__part_name(part), x->name);
        free(fx);
        free(fy);
    }
}

static void test_tiny_both_layouts_identical(void **state)
{
    (void)state;
    gen__model *folder = open_ok(FIX "/tiny-sd15", NULL);
    gen__model_open_options o = GEN__MODEL_OPEN_OPTIONS_INIT;
    o.config_dir = FIX "/tiny-sd15";
    gen__model *single = open_ok(FIX "/tiny-sd15.safetensors", &o);
    assert_int_equal(gen__model_layout(folder), GEN__LAYOUT_DIFFUSERS);
    assert_int_equal(gen__model_layout(single), GEN__LAYOUT_SINGLE_FILE);
    assert_int_equal(gen__model_family(folder), GEN__FAMILY_SD1);
    assert_int_equal(gen__model_family(single), GEN__FAMILY_SD1);
    assert_int_equal(gen__model_prediction(folder), GEN__PRED_EPSILON);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        assert_same_part(folder, single, (gen__part)p);
    /* dtypes: the folder is f32, the single file f16 */
    assert_int_equal(gen__model_part_dtype(folder, GEN__PART_UNET), GEN__ST_F32);
    assert_int_equal(gen__model_part_dtype(single, GEN__PART_UNET), GEN__ST_F16);
    /* the VAE attention 1x1 convs became linear weights */
    const gen__st_view *q = gen__model_find(single, GEN__PART_VAE,
                                                "decoder.mid_block.attentions.0.to_q.weight");
    assert_non_null(q);
    assert_int_equal(q->ndim, 2);
    /* the position_ids buffer of the single file is not a weight */
    assert_null(gen__model_find(single, GEN__PART_TEXT_ENCODER,
                                "text_model.embeddings.position_ids"));
    gen__model_close(folder);
    gen__model_close(single);
}

static void test_fp16_variant(void **state)
{
    (void)state;
    gen__model *f32 = open_ok(FIX "/tiny-sd15", NULL);
    gen__model_open_options o = GEN__MODEL_OPEN_OPTIONS_INIT;
    o.variant = "fp16";
    gen__model *f16 = open_ok(FIX "/tiny-sd15", &o);
    for (int p = 0; p < GEN__PART_COUNT; p++) {
        assert_int_equal(gen__model_part_dtype(f16, (gen__part)p), GEN__ST_F16);
        assert_same_part(f32, f16, (gen__part)p);
    }
    gen__model_close(f16);
    /* tiny-sd2v ships no fp16 variant: asking for it is a clear ENOTFOUND */
    gen__model *m = (gen__model *)1;
    assert_int_equal(gen__model_open(&m, FIX "/tiny-sd2v", &o), GEN_ENOTFOUND);
    assert_null(m);
    assert_non_null(strstr(gen_last_error_message(), "diffusion_pytorch_model.fp16.safetensors"));
    gen__model_close(f32);
}

static void test_tiny_configs(void **state)
{
    (void)state;
    gen__model *m = open_ok(FIX "/tiny-sd15", NULL);
    assert_true(gen__model_configs_from_files(m));
    assert_string_equal(gen__model_tokenizer_dir(m), FIX "/tiny-sd15/tokenizer");
    const gen__unet_config *u = gen__model_unet_config(m);
    assert_int_equal(u->n_blocks, 2);
    assert_int_equal(u->block_out_channels[0], 24);
    assert_int_equal(u->block_out_channels[1], 40);
    assert_int_equal(u->down_blocks[0], GEN__BLOCK_CROSS_ATTN);
    assert_int_equal(u->down_blocks[1], GEN__BLOCK_PLAIN);
    assert_int_equal(u->up_blocks[0], GEN__BLOCK_PLAIN);
    assert_int_equal(u->up_blocks[1], GEN__BLOCK_CROSS_ATTN);
    assert_int_equal(u->layers_per_block, 2);
    assert_int_equal(u->attention_heads[0], 8);
    assert_int_equal(u->cross_attention_dim, 32);
    assert_int_equal(u->norm_num_groups, 8);
    assert_false(u->use_linear_projection);
    const gen__vae_config *v = gen__model_vae_config(m);
    assert_int_equal(v->n_blocks, 4);
    assert_int_equal(v->block_out_channels[2], 24);
    assert_true(v->scaling_factor == 0.18215);
    const gen__text_config *t = gen__model_text_config(m);
    assert_int_equal(t->hidden_size, 32);
    assert_int_equal(t->num_hidden_layers, 3);
    assert_int_equal(t->vocab_size, 1014);
    assert_int_equal(t->hidden_act, GEN__ACT_QUICK_GELU);
    const gen__scheduler_config *s = gen__model_scheduler_config(m);
    assert_int_equal(s->class_id, GEN__SCHED_CLASS_PNDM);
    assert_int_equal(s->beta_schedule, GEN__BETAS_SCALED_LINEAR);
    assert_int_equal(s->steps_offset, 1);
    assert_true(s->skip_prk_steps);
    /* every text tensor is under text_model. and layer 2 exists */
    assert_non_null(gen__model_find(m, GEN__PART_TEXT_ENCODER,
                                    "text_model.encoder.layers.2.self_attn.q_proj.weight"));
    const gen__st_view *out;
    assert_int_equal(gen__model_expect(m, GEN__PART_UNET, "conv_in.weight", 4,
                                       (const int64_t[]){24, 4, 3, 3}, &out),
                     GEN_OK);
    assert_int_equal(gen__model_expect(m, GEN__PART_UNET, "conv_in.weight", 4,
                                       (const int64_t[]){24, 9, -1, -1}, &out),
                     GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "'conv_in.weight' has shape [24, 4, 3, 3], "
                                                     "expected [24, 9, -1, -1]"));
    assert_int_equal(gen__model_expect(m, GEN__PART_VAE, "nope", 1, (const int64_t[]){1}, &out),
                     GEN_ENOTFOUND);
    gen__model_close(m);
}

static void test_tiny_sd2v(void **state)
{
    (void)state;
    gen__model *m = open_ok(FIX "/tiny-sd2v", NULL);
    assert_int_equal(gen__model_family(m), GEN__FAMILY_SD2);
    assert_int_equal(gen__model_prediction(m), GEN__PRED_V);
    const gen__unet_config *u = gen__model_unet_config(m);
    assert_int_equal(u->attention_heads[0], 2);
    assert_int_equal(u->attention_heads[1], 5);
    assert_true(u->use_linear_projection);
    assert_true(u->upcast_attention);
    assert_int_equal(gen__model_text_config(m)->hidden_act, GEN__ACT_GELU);
    assert_int_equal(gen__model_scheduler_config(m)->class_id, GEN__SCHED_CLASS_DDIM);
    /* written by transformers 5 without the text_model. prefix: normalised */
    for (size_t i = 0; i < gen__model_tensor_count(m, GEN__PART_TEXT_ENCODER); i++)
        assert_memory_equal(gen__model_tensor_at(m, GEN__PART_TEXT_ENCODER, i)->name,
                            "text_model.", 11);
    gen__model_close(m);
}

static void test_single_file_without_config(void **state)
{
    (void)state;
    /* The tiny model's 24-channel blocks do not fit SD1's 32 norm groups:
     * deriving the config fails and says what to do. */
    gen__model *m = (gen__model *)1;
    assert_int_equal(gen__model_open(&m, FIX "/tiny-sd15.safetensors", NULL), GEN_EFORMAT);
    assert_null(m);
    const char *msg = gen_last_error_message();
    assert_non_null(strstr(msg, "deriving the config from tensor shapes"));
    assert_non_null(strstr(msg, "norm_num_groups"));
}

static void test_full_sd15_single_file(void **state)
{
    (void)state;
    const char *p = st_path(dir, "sd15-full.safetensors");
    uint64_t size = sd_ldm_write_sparse(p, &sd_ldm_sd15, "F16");
    assert_true(size > 2000000000u); /* 1.07 G parameters in f16 */
    gen__model *m = open_ok(p, NULL);
    assert_int_equal(gen__model_family(m), GEN__FAMILY_SD1);
    assert_int_equal(gen__model_prediction(m), GEN__PRED_EPSILON);
    assert_false(gen__model_configs_from_files(m));
    assert_null(gen__model_tokenizer_dir(m));
    /* the parameter counts of runwayml/stable-diffusion-v1-5 */
    assert_int_equal(gen__model_part_parameters(m, GEN__PART_UNET), 859520964);
    assert_int_equal(gen__model_part_parameters(m, GEN__PART_VAE), 83653863);
    assert_int_equal(gen__model_part_parameters(m, GEN__PART_TEXT_ENCODER), 123060480);
    const gen__unet_config *u = gen__model_unet_config(m);
    static const int ch[4] = {320, 640, 1280, 1280};
    assert_int_equal(u->n_blocks, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(u->block_out_channels[i], ch[i]);
        assert_int_equal(u->attention_heads[i], 8);
        assert_int_equal(u->down_blocks[i], i < 3 ? GEN__BLOCK_CROSS_ATTN : GEN__BLOCK_PLAIN);
        assert_int_equal(u->up_blocks[i], i > 0 ? GEN__BLOCK_CROSS_ATTN : GEN__BLOCK_PLAIN);
    }
    assert_int_equal(u->layers_per_block, 2);
    assert_int_equal(u->cross_attention_dim, 768);
    assert_int_equal(u->sample_size, 64);
    assert_false(u->use_linear_projection);
    const gen__vae_config *v = gen__model_vae_config(m);
    assert_int_equal(v->n_blocks, 4);
    assert_int_equal(v->block_out_channels[3], 512);
    assert_int_equal(v->layers_per_block, 2);
    assert_int_equal(v->latent_channels, 4);
    const gen__text_config *t = gen__model_text_config(m);
    assert_int_equal(t->hidden_size, 768);
    assert_int_equal(t->num_hidden_layers, 12);
    assert_int_equal(t->num_attention_heads, 12);
    assert_int_equal(t->intermediate_size, 3072);
    assert_int_equal(t->vocab_size, 49408);
    /* a few mapped names */
    assert_non_null(gen__model_find(m, GEN__PART_UNET, "up_blocks.2.upsamplers.0.conv.weight"));
    assert_non_null(gen__model_find(m, GEN__PART_UNET, "up_blocks.0.upsamplers.0.conv.weight"));
    assert_null(gen__model_find(m, GEN__PART_UNET, "up_blocks.3.upsamplers.0.conv.weight"));
    assert_non_null(gen__model_find(m, GEN__PART_UNET, "down_blocks.1.resnets.0.conv_shortcut.weight"));
    assert_non_null(gen__model_find(m, GEN__PART_VAE, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight"));
    const gen__st_view *up = gen__model_find(m, GEN__PART_VAE, "decoder.up_blocks.0.resnets.0.conv1.weight");
    assert_int_equal(up->shape[0], 512); /* reversed block order */
    gen__model_close(m);
    unlink(p);
}

static void test_full_sd21_single_file(void **state)
{
    (void)state;
    const char *p = st_path(dir, "sd21-full.safetensors");
    assert_true(sd_ldm_write_sparse(p, &sd_ldm_sd21, "F16") > 0);
    gen__model *m = open_ok(p, NULL);
    assert_int_equal(gen__model_family(m), GEN__FAMILY_SD2);
    assert_int_equal(gen__model_prediction(m), GEN__PRED_V); /* diffusers' assumption */
    const gen__unet_config *u = gen__model_unet_config(m);
    assert_true(u->use_linear_projection);
    assert_int_equal(u->cross_attention_dim, 1024);
    assert_int_equal(u->attention_heads[0], 5);
    assert_int_equal(u->attention_heads[2], 20);
    assert_int_equal(u->sample_size, 96);
    const gen__text_config *t = gen__model_text_config(m);
    assert_int_equal(t->num_hidden_layers, 23); /* penultimate layer: the last one dropped */
    assert_int_equal(t->num_attention_heads, 16);
    assert_int_equal(t->hidden_act, GEN__ACT_GELU);
    /* stabilityai/stable-diffusion-2-1 text encoder: 23 layers, no projection */
    assert_int_equal(gen__model_part_parameters(m, GEN__PART_TEXT_ENCODER), 340387840);
    assert_int_equal(gen__model_part_parameters(m, GEN__PART_UNET), 865910724);
    assert_null(gen__model_find(m, GEN__PART_TEXT_ENCODER,
                                "text_model.encoder.layers.23.mlp.fc1.weight"));
    gen__model_close(m);
    unlink(p);
}

/* OpenCLIP's fused in_proj splits into q/k/v views of its three row blocks. */
static void test_openclip_qkv_split(void **state)
{
    (void)state;
    sd_ldm_shape s = sd_ldm_sd21;
    const char *p = st_path(dir, "sd2-split.safetensors");
    assert_true(sd_ldm_write_sparse(p, &s, "F32") > 0);
    /* Put distinct values into resblock 3's fused bias and weight rows. */
    gen__st_file *f;
    assert_int_equal(gen__st_open(&f, p), GEN_OK);
    const gen__st_view *w = gen__st_find(f, "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight");
    const gen__st_view *b = gen__st_find(f, "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_bias");
    assert_non_null(w);
    assert_non_null(b);
    uint64_t woff = gen__st_file_offset(f, w), boff = gen__st_file_offset(f, b);
    gen__st_close(f);
    float *bias = malloc(3 * 1024 * sizeof(float));
    for (int i = 0; i < 3 * 1024; i++)
        bias[i] = (float)i;
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)boff, SEEK_SET), 0);
    assert_int_equal(fwrite(bias, sizeof(float), 3 * 1024, fp), 3 * 1024);
    for (int k = 0; k < 3; k++) { /* first element of each row block: 100 + k */
        float v = 100.0f + (float)k;
        assert_int_equal(fseek(fp, (long)(woff + (uint64_t)k * 1024 * 1024 * 4), SEEK_SET), 0);
        assert_int_equal(fwrite(&v, sizeof(v), 1, fp), 1);
    }
    assert_int_equal(fclose(fp), 0);

    gen__model *m = open_ok(p, NULL);
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int k = 0; k < 3; k++) {
        char name[128];
        snprintf(name, sizeof(name), "text_model.encoder.layers.3.self_attn.%s.weight", qkv[k]);
        const gen__st_view *t = gen__model_find(m, GEN__PART_TEXT_ENCODER, name);
        assert_non_null(t);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->shape[0], 1024);
        assert_int_equal(t->shape[1], 1024);
        assert_int_equal(t->nbytes, 1024 * 1024 * 4);
        assert_true(((const float *)t->data)[0] == 100.0f + (float)k);
        assert_true(((const float *)t->data)[1] == 0.0f);
        snprintf(name, sizeof(name), "text_model.encoder.layers.3.self_attn.%s.bias", qkv[k]);
        t = gen__model_find(m, GEN__PART_TEXT_ENCODER, name);
        assert_non_null(t);
        assert_int_equal(t->shape[0], 1024);
        for (int i = 0; i < 1024; i++)
            assert_true(((const float *)t->data)[i] == (float)(k * 1024 + i));
    }
    free(bias);
    gen__model_close(m);
    unlink(p);
}

static void test_pickle_refused(void **state)
{
    (void)state;
    static const char *const names[] = {"model.ckpt", "model.pt", "model.PTH", "pytorch_model.bin"};
    for (size_t i = 0; i < 4; i++) {
        const char *p = st_path(dir, names[i]);
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        fputs("\x80\x02}q\x00.", f);
        fclose(f);
        gen__model *m = (gen__model *)1;
        assert_int_equal(gen__model_open(&m, p, NULL), GEN_EUNSUPPORTED);
        assert_null(m);
        const char *msg = gen_last_error_message();
        assert_non_null(strstr(msg, names[i]));
        assert_non_null(strstr(msg, "execute arbitrary code"));
        assert_non_null(strstr(msg, ".safetensors"));
    }
    /* a torch zip archive renamed to .safetensors is refused by content */
    const char *p = st_path(dir, "renamed.safetensors");
    FILE *f = fopen(p, "wb");
    fputs("PK\x03\x04rest-of-zip", f);
    fclose(f);
    gen__model *m;
    assert_int_equal(gen__model_open(&m, p, NULL), GEN_EUNSUPPORTED);
    assert_non_null(strstr(gen_last_error_message(), "torch zip archive"));
    /* ... but a safetensors file whose header length is 640 (bytes 0x80 0x02) is not pickle */
    char header[641];
    memset(header, ' ', 640);
    header[0] = '{';
    header[1] = '}';
    p = st_path(dir, "len640.safetensors");
    assert_int_equal(st_write_raw(p, 640, header, 640, NULL, 0), 0);
    assert_int_equal(gen__model_refuse_pickle(p), GEN_OK);
    assert_int_equal(gen__model_open(&m, p, NULL), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "no UNet weights"));
    gen_model_info *info = (gen_model_info *)1;
    assert_int_equal(gen_model_inspect(&info, st_path(dir, "model.ckpt")), GEN_EUNSUPPORTED);
    assert_null(info);
}

static void test_not_a_model(void **state)
{
    (void)state;
    gen__model *m;
    assert_int_equal(gen__model_open(&m, st_path(dir, "nothing-here"), NULL), GEN_ENOTFOUND);
    assert_int_equal(gen__model_open(&m, dir, NULL), GEN_ENOTFOUND); /* empty folder */
    assert_non_null(strstr(gen_last_error_message(), "not a diffusers folder"));
    st_spec specs[] = {{"foo.weight", "F32", 1, {2}, NULL}};
    const char *p = st_path(dir, "other.safetensors");
    assert_int_equal(st_write(p, specs, 1, NULL), 0);
    assert_int_equal(gen__model_open(&m, p, NULL), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "no UNet weights"));
    /* an SDXL single file is recognised and reported unsupported */
    st_spec xl[] = {{"model.diffusion_model.input_blocks.0.0.weight", "F16", 1, {4}, NULL},
                    {"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", "F16",
                     1, {4}, NULL}};
    p = st_path(dir, "xl.safetensors");
    assert_int_equal(st_write(p, xl, 2, NULL), 0);
    assert_int_equal(gen__model_open(&m, p, NULL), GEN_EUNSUPPORTED);
    assert_non_null(strstr(gen_last_error_message(), "SDXL"));
    gen_model_info *info;
    assert_int_equal(gen_model_inspect(&info, p), GEN_OK);
    assert_int_equal(gen_model_info_family(info), GEN_MODEL_FAMILY_SDXL);
    assert_int_equal(gen_model_info_supported(info), 0);
    gen_model_info_destroy(info);
}

static void test_inspect_public(void **state)
{
    (void)state;
    gen_model_info *a, *b;
    assert_int_equal(gen_model_inspect(&a, FIX "/tiny-sd15"), GEN_OK);
    assert_int_equal(gen_model_inspect(&b, FIX "/tiny-sd2v"), GEN_OK);
    assert_string_equal(gen_model_family_name(gen_model_info_family(a)), "sd1");
    assert_string_equal(gen_model_layout_name(gen_model_info_layout(a)), "diffusers");
    assert_string_equal(gen_model_prediction_name(gen_model_info_prediction(a)), "epsilon");
    assert_string_equal(gen_model_family_name(gen_model_info_family(b)), "sd2");
    assert_string_equal(gen_model_prediction_name(gen_model_info_prediction(b)), "v_prediction");
    assert_int_equal(gen_model_info_supported(a), 1);
    assert_int_equal(gen_model_info_part_count(a), 3);
    assert_string_equal(gen_model_info_part_name(a, 0), "unet");
    assert_string_equal(gen_model_info_part_name(a, 2), "text_encoder");
    assert_string_equal(gen_model_info_part_dtype(a, 0), "f32");
    assert_true(gen_model_info_part_parameters(a, 0) > 100000);
    assert_int_equal(gen_model_info_part_bytes(a, 0), 4 * gen_model_info_part_parameters(a, 0));
    assert_null(gen_model_info_part_name(a, 3));
    assert_int_equal(gen_model_info_part_parameters(a, 3), 0);
    assert_string_equal(gen_model_info_path(a), FIX "/tiny-sd15");
    gen_model_info_destroy(a);
    gen_model_info_destroy(b);
    gen_model_info_destroy(NULL);
    assert_string_equal(gen_model_family_name((gen_model_family)42), "?");
}

static void test_allocation_failures(void **state)
{
    (void)state;
    gen__alloc_fail_after(0, 0);
    gen__model *m = open_ok(FIX "/tiny-sd2v", NULL);
    long n = gen__alloc_fail_after(0, 0);
    gen__model_close(m);
    /* Walk a sample of the allocations (every one would take long under valgrind). */
    long step = n > 200 ? n / 97 : 1;
    for (long i = 1; i <= n; i += step) {
        gen__alloc_fail_after(i, 1);
        m = (gen__model *)1;
        gen_status st = gen__model_open(&m, FIX "/tiny-sd2v", NULL);
        gen__alloc_fail_after(0, 0);
        assert_int_equal(st, GEN_ENOMEM);
        assert_null(m);
    }
}


/* SD2 OpenCLIP single file (tests/model/fixtures/make_tiny_sd2v_single.py, naming checked
 * against diffusers' from_single_file) == the tiny-sd2v folder, tensor for tensor. */
static void test_tiny_sd2v_single_file(void **state)
{
    (void)state;
    gen__model *folder = open_ok(FIX "/tiny-sd2v", NULL);
    gen__model_open_options o = GEN__MODEL_OPEN_OPTIONS_INIT;
    o.config_dir = FIX "/tiny-sd2v";
    gen__model *single = open_ok(GEN_MODEL_TEST_DIR "/fixtures/tiny-sd2v.safetensors", &o);
    assert_int_equal(gen__model_family(single), GEN__FAMILY_SD2);
    assert_int_equal(gen__model_prediction(single), GEN__PRED_V);
    for (int p = 0; p < GEN__PART_COUNT; p++)
        assert_same_part(folder, single, (gen__part)p);
    /* the extra (penultimate-layer) resblock 2 and text_projection were dropped */
    assert_null(gen__model_find(single, GEN__PART_TEXT_ENCODER,
                                "text_model.encoder.layers.2.self_attn.q_proj.weight"));
    gen__model_close(single);
    gen__model_close(folder);
}

/* ---------------------------------------------------------------- a hand-made diffusers folder */

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

static const char *dtype_text(gen__st_dtype d)
{
    return gen__st_dtype_name(d);
}

/* Rewrite tensors [from, to) of `src` (renamed by `rename`, may be NULL) as a new file. */
static void write_subset(const char *path, const gen__model *src, gen__part part, size_t from,
                         size_t to, void (*rename)(char *name, size_t size))
{
    size_t n = to - from;
    st_spec *specs = calloc(n, sizeof(*specs));
    char (*names)[256] = calloc(n, 256);
    for (size_t i = 0; i < n; i++) {
        const gen__st_view *t = gen__model_tensor_at(src, part, from + i);
        snprintf(names[i], 256, "%s", t->name);
        if (rename)
            rename(names[i], 256);
        specs[i].name = names[i];
        specs[i].dtype = dtype_text(t->dtype);
        specs[i].ndim = t->ndim;
        memcpy(specs[i].shape, t->shape, sizeof(specs[i].shape));
        specs[i].data = t->data;
    }
    assert_int_equal(st_write(path, specs, n, "{\"format\":\"pt\"}"), 0);
    free(specs);
    free(names);
}

static void to_legacy_vae(char *name, size_t size)
{
    static const char *const from[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const to[] = {".query.", ".key.", ".value.", ".proj_attn."};
    for (int i = 0; i < 4; i++) {
        char *at = strstr(name, from[i]);
        if (at) {
            char tail[256];
            snprintf(tail, sizeof(tail), "%s", at + strlen(from[i]));
            snprintf(at, size - (size_t)(at - name), "%s%s", to[i], tail);
            return;
        }
    }
}

static void strip_text_model(char *name, size_t size)
{
    size_t n = strnlen(name, size);
    if (n >= 11 && memcmp(name, "text_model.", 11) == 0)
        memmove(name, name + 11, n - 11 + 1);
}

static void test_folder_variants(void **state)
{
    (void)state;
    gen__model *ref = open_ok(FIX "/tiny-sd15", NULL);
    char root[4096];
    snprintf(root, sizeof(root), "%s/folder", dir);
    static const char *const subs[] = {"", "/unet", "/vae", "/text_encoder", "/scheduler"};
    for (int i = 0; i < 5; i++) {
        char d[4200];
        snprintf(d, sizeof(d), "%s%s", root, subs[i]);
        assert_int_equal(mkdir(d, 0755), 0);
    }
    static const char *const cfgs[] = {"model_index.json", "unet/config.json", "vae/config.json",
                                       "text_encoder/config.json",
                                       "scheduler/scheduler_config.json"};
    for (int i = 0; i < 5; i++) {
        char a[4200], b[4200];
        snprintf(a, sizeof(a), "%s/%s", FIX "/tiny-sd15", cfgs[i]);
        snprintf(b, sizeof(b), "%s/%s", root, cfgs[i]);
        copy_file(a, b);
    }
    char p[4300];
    /* unet: two shards and an index */
    size_t nu = gen__model_tensor_count(ref, GEN__PART_UNET);
    snprintf(p, sizeof(p), "%s/unet/diffusion_pytorch_model-00001-of-00002.safetensors", root);
    write_subset(p, ref, GEN__PART_UNET, 0, nu / 2, NULL);
    snprintf(p, sizeof(p), "%s/unet/diffusion_pytorch_model-00002-of-00002.safetensors", root);
    write_subset(p, ref, GEN__PART_UNET, nu / 2, nu, NULL);
    snprintf(p, sizeof(p), "%s/unet/diffusion_pytorch_model.safetensors.index.json", root);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (size_t i = 0; i < nu; i++)
        fprintf(f, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                gen__model_tensor_at(ref, GEN__PART_UNET, i)->name, i < nu / 2 ? 1 : 2);
    fprintf(f, "}}");
    fclose(f);
    /* vae: names written by an old diffusers (query/key/value/proj_attn), and only
     * as the fp16 variant file (used when the plain one is absent) */
    snprintf(p, sizeof(p), "%s/vae/diffusion_pytorch_model.fp16.safetensors", root);
    write_subset(p, ref, GEN__PART_VAE, 0, gen__model_tensor_count(ref, GEN__PART_VAE),
                 to_legacy_vae);
    /* text encoder: only a pickle at first */
    snprintf(p, sizeof(p), "%s/text_encoder/model.bin", root);
    f = fopen(p, "wb");
    fputs("PK\x03\x04", f);
    fclose(f);
    gen__model *m = (gen__model *)1;
    assert_int_equal(gen__model_open(&m, root, NULL), GEN_EUNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(gen_last_error_message(), "model.bin"));
    assert_non_null(strstr(gen_last_error_message(), "arbitrary code"));
    /* then safetensors, in the transformers-5 naming (no text_model. prefix) */
    snprintf(p, sizeof(p), "%s/text_encoder/model.safetensors", root);
    write_subset(p, ref, GEN__PART_TEXT_ENCODER, 0,
                 gen__model_tensor_count(ref, GEN__PART_TEXT_ENCODER), strip_text_model);
    m = open_ok(root, NULL);
    for (int i = 0; i < GEN__PART_COUNT; i++)
        assert_same_part(ref, m, (gen__part)i);
    gen__model_close(m);

    /* a shard that lacks a tensor its index lists */
    snprintf(p, sizeof(p), "%s/unet/diffusion_pytorch_model-00002-of-00002.safetensors", root);
    write_subset(p, ref, GEN__PART_UNET, nu / 2, nu - 1, NULL);
    assert_int_equal(gen__model_open(&m, root, NULL), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "is listed in"));
    /* a shard name that leaves the folder */
    snprintf(p, sizeof(p), "%s/unet/diffusion_pytorch_model.safetensors.index.json", root);
    f = fopen(p, "w");
    fprintf(f, "{\"weight_map\": {\"conv_in.weight\": \"../vae/diffusion_pytorch_model.safetensors\"}}");
    fclose(f);
    assert_int_equal(gen__model_open(&m, root, NULL), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "must be a file in the same folder"));
    /* a broken config names its file and key */
    snprintf(p, sizeof(p), "%s/vae/config.json", root);
    f = fopen(p, "w");
    fprintf(f, "{\"latent_channels\": \"four\"}");
    fclose(f);
    assert_int_equal(gen__model_open(&m, root, NULL), GEN_EFORMAT);
    assert_non_null(strstr(gen_last_error_message(), "vae/config.json: \"latent_channels\" must be an integer"));
    gen__model_close(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_both_layouts_identical),
        cmocka_unit_test(test_fp16_variant),
        cmocka_unit_test(test_tiny_configs),
        cmocka_unit_test(test_tiny_sd2v),
        cmocka_unit_test(test_single_file_without_config),
        cmocka_unit_test(test_full_sd15_single_file),
        cmocka_unit_test(test_full_sd21_single_file),
        cmocka_unit_test(test_openclip_qkv_split),
        cmocka_unit_test(test_pickle_refused),
        cmocka_unit_test(test_not_a_model),
        cmocka_unit_test(test_inspect_public),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_folder_variants),
        cmocka_unit_test(test_tiny_sd2v_single_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
